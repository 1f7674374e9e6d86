#![no_main]

use phonehome::owners::db::OwnerDb;
use phonehome::owners::domain_table::DomainTable;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(db) = OwnerDb::from_bytes(data.to_vec()) {
        let _ = db.lookup_domain("a.b.example.com");
        let _ = db.lookup_ip("192.0.2.1".parse().unwrap());
    }
    // The domain table on its own (the file checksum keeps the fuzzer out
    // of it above).
    if let Ok(t) = DomainTable::parse(data, 1000) {
        for name in ["example.com", "a.b.c.example.org", "", "x"] {
            let _ = t.lookup(name.as_bytes());
        }
    }
});
