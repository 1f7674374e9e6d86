#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = phonehome::conntrack::parse_entry(data);
    for msg in phonehome::netlink::messages(data) {
        let _ = phonehome::conntrack::entry_of(&msg);
    }
});
