#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cfg) = phonehome::policy::config::Config::parse(text, std::path::Path::new("fuzz")) {
            let _ = phonehome::policy::rules::Policy::from_config(&cfg);
        }
    }
});
