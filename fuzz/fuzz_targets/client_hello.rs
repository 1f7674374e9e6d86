#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = phonehome::inspect::names::sniff_client_hello(data);
    let _ = phonehome::inspect::names::sni_from_handshake(data);
});
