#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = phonehome::api::decode::<phonehome::api::Request>(data);
    let _ = phonehome::api::decode::<phonehome::api::Response>(data);
});
