#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = phonehome::daemon::api::decode::<phonehome::daemon::api::Request>(data);
    let _ = phonehome::daemon::api::decode::<phonehome::daemon::api::Response>(data);
});
