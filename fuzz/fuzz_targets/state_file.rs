#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = phonehome::report::state::decode(data);
    // Past the checksum: the snapshot itself.
    if let Ok(snapshot) = phonehome::report::state::decode_snapshot(data) {
        let stats = phonehome::report::stats::Stats::restore(snapshot);
        let _ = stats.owner_rows(None, Default::default(), 1_795_651_200);
    }
});
