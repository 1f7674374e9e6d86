#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = phonehome::wire::conntrack::parse_entry(data);
    for msg in phonehome::wire::netlink::messages(data) {
        let _ = phonehome::wire::conntrack::entry_of(&msg);
    }
});
