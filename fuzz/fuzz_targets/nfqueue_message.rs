#![no_main]

use phonehome::{netlink, queue};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for msg in netlink::messages(data) {
        let _ = queue::parse_packet(&msg);
    }
});
