#![no_main]

use phonehome::inspect::names::parse_dns_response;
use phonehome::inspect::sinkhole::{rewrite_message, rewrite_packet, SinkholeMode};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = parse_dns_response(data);
    for mode in [SinkholeMode::Zero, SinkholeMode::NxDomain] {
        if let Some(out) = rewrite_message(data, mode) {
            // A rewritten answer must still be a readable message.
            assert!(out.len() >= 12);
        }
        let _ = rewrite_packet(data, mode);
    }
});
