#![no_main]

use phonehome::wire::{netlink, nfqueue};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for msg in netlink::messages(data) {
        let _ = nfqueue::parse_packet(&msg);
    }
});
