#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = phonehome::attribution::sniff_client_hello(data);
    let _ = phonehome::attribution::sni_from_handshake(data);
});
