#![no_main]
//! The socket's requests and replies from hostile bytes, and what the
//! daemon does with a decoded query's ranges: series and rows over any
//! time range (u64 edges, until before since) neither panic nor overflow.

use phonehome::daemon::api::{decode, Query, Request, Response};
use phonehome::report::stats::{FlowEvent, SeriesBy, Stats, TimeRange};

fn stats() -> Stats {
    let mut s = Stats::default();
    for (i, owner) in ["Google", "Xiaomi", "Umeng"].iter().enumerate() {
        s.on_decided(
            &FlowEvent {
                device: "02:00:00:00:77:02",
                mac: Some("02:00:00:00:77:02"),
                ip: "192.168.77.2".into(),
                owner,
                category: "analytics",
                domain: None,
                country: Some("SG"),
                blocked: i == 1,
            },
            1_800_000_000 + i as u64 * 4000,
        );
    }
    s
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = decode::<Response>(data);
    let Ok(request) = decode::<Request>(data) else {
        return;
    };
    let (range, by, lines): (TimeRange, SeriesBy, u32) = match request.query {
        Query::Series {
            range, by, lines, ..
        }
        | Query::Report {
            range, by, lines, ..
        } => (range, by, lines),
        Query::Devices { range, .. } | Query::Owners { range, .. } => (range, SeriesBy::Owner, 10),
        _ => return,
    };
    let s = stats();
    for now in [0, 1_800_004_000, u64::MAX] {
        let _ = s.series(None, by, range, lines as usize, now);
        let _ = s.owner_rows(None, range, now);
        let _ = s.device_rows(None, range, now, &|_| None);
    }
});
