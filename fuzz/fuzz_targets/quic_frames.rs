#![no_main]

use phonehome::inspect::quic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut pieces = quic::CryptoPieces::new();
    let _ = quic::parse_frames(data, &mut pieces);
    let _ = quic::sni(&pieces);
    let _ = quic::read_initial(data, &mut quic::CryptoPieces::new());
});
