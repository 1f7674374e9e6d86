#![no_main]

use phonehome::owners::db::{fnv1a, OwnerDb};
use phonehome::owners::domain_table::DomainTable;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(db) = OwnerDb::from_bytes(data.to_vec()) {
        let _ = db.lookup_domain("a.b.example.com");
        let _ = db.lookup_ip("192.0.2.1".parse().unwrap());
    }
    // The same bytes as a file with the right magic and checksum, so the
    // fuzzer reaches every section's checks (a checksum keeps random bytes
    // out of them above): as the current format and as format 2.
    for magic in [b"PHOWNDB3", b"PHOWNDB2"] {
        let mut file = magic.to_vec();
        file.extend_from_slice(data);
        let sum = fnv1a(&file);
        file.extend_from_slice(&sum.to_le_bytes());
        if let Ok(db) = OwnerDb::from_bytes(file) {
            for name in ["a.b.example.com", "xiaomi.com", "", "x.co.uk"] {
                let _ = db.lookup_domain(name);
                let _ = db.registrable_domain(name);
            }
            for ip in [
                "192.0.2.1",
                "0.0.0.0",
                "255.255.255.255",
                "2001:db8::1",
                "::",
                "::ffff:192.0.2.1",
                "64:ff9b::c000:201",
            ] {
                let ip = ip.parse().unwrap();
                let _ = db.lookup_ip(ip);
                let _ = db.lookup_country(ip);
            }
            let _ = db.has_owner("Xiaomi");
        }
    }
    // The domain table on its own.
    if let Ok(t) = DomainTable::parse(data, 1000) {
        for name in ["example.com", "a.b.c.example.org", "", "x"] {
            let _ = t.lookup(name.as_bytes());
        }
    }
});
