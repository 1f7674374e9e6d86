//! Memory benchmark: what the daemon's state costs, RSS measured in the
//! same run (each figure in a fresh process) against the engine holding
//! nothing:
//! - 100,000 tracked connections (TCP SYNs from 50 phones to distinct
//!   servers and ports, each waiting for its ClientHello as a real one
//!   without a DNS name would): bytes per flow;
//! - the same with a compiled 1,000,000-domain owner database loaded.
//!
//! Run: `cargo bench --bench memory`.

use std::hint::black_box;

use etherparse::PacketBuilder;
use phonehome::config::Config;
use phonehome::engine::{Engine, Now};
use phonehome::owners::db::{Builder, OwnerDb};
use phonehome::owners::Category;
use phonehome::queue::{QueuedPacket, HOOK_FORWARD};

const FLOWS: u32 = 100_000;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn syn(i: u32) -> Vec<u8> {
    let phone = [192, 168, 77, 2 + (i % 50) as u8];
    let server = [203, 0, (113 + (i >> 16)) as u8, (i >> 8) as u8];
    let mut out = Vec::new();
    PacketBuilder::ipv4(phone, server, 64)
        .tcp(
            40000 + (i % 20000) as u16,
            443 + (i & 0xff) as u16,
            i,
            64240,
        )
        .syn()
        .write(&mut out, &[])
        .unwrap();
    out
}

fn fill(engine: &mut Engine) {
    for i in 0..FLOWS {
        let bytes = syn(i);
        let pkt = QueuedPacket {
            id: i,
            hw_protocol: 0x0800,
            hook: HOOK_FORWARD,
            hwaddr: Some([2, 0, 0, 0, 0x77, (2 + i % 50) as u8]),
            payload: &bytes,
            ..Default::default()
        };
        black_box(engine.on_packet(
            &pkt,
            Now {
                mono: 1,
                unix: 1_795_651_200,
                ..Default::default()
            },
        ));
    }
}

fn config() -> Config {
    Config::parse(
        "config phonehome\n\toption max_flows '200000'\n\toption leases '/nonexistent'\n",
        std::path::Path::new("bench"),
    )
    .unwrap()
}

/// One measurement in a fresh process (RSS never shrinks back after a
/// free, so each figure gets its own): prints "empty full".
fn child(db: Option<&str>) {
    if let Some(path) = db {
        let db = OwnerDb::load(std::path::Path::new(path)).unwrap();
        black_box(db.lookup_domain("t1.tracker1.com"));
        phonehome::owners::install_database(db);
    }
    let cfg = config();
    let mut engine = Engine::new(&cfg);
    let empty = rss_bytes();
    fill(&mut engine);
    assert_eq!(engine.flows.len(), FLOWS as usize);
    println!("{empty} {}", rss_bytes());
}

fn measure(db: Option<&std::path::Path>) -> (u64, u64) {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.arg("--child");
    if let Some(p) = db {
        cmd.arg(p);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut it = text.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(args.get(i + 1).map(String::as_str));
    }
    // A 1,000,000-domain database (names shaped like tracker lists).
    let mut b = Builder::new();
    let source = b.source("bench").unwrap();
    for i in 0..1_000_000u32 {
        let owner = format!("Owner {}", i % 5000);
        b.add_domain(
            &format!("t{i:x}.tracker{}.com", i % 9973),
            &owner,
            Category::Advertising,
            source,
            0,
        );
    }
    let bytes = b.finish().unwrap();
    let path = std::env::temp_dir().join(format!("phonehome-membench-{}.db", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();

    let (empty, full) = measure(None);
    let (with_db, full_db) = measure(Some(&path));
    std::fs::remove_file(&path).ok();
    let per_flow = (full - empty) as f64 / FLOWS as f64;
    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
    println!("memory, RSS of a fresh process per line (same run)");
    println!(
        "{:<48} {:>14}",
        "engine with no flows (baseline)",
        mb(empty)
    );
    println!("{:<48} {:>14}", "+ 100,000 tracked flows", mb(full));
    println!(
        "{:<48} {:>14.0}",
        "flow-table memory per flow (bytes)", per_flow
    );
    println!(
        "{:<48} {:>14.2}",
        "ratio: 100k flows / baseline",
        full as f64 / empty as f64
    );
    println!(
        "{:<48} {:>14}",
        format!(
            "1M-domain database loaded ({:.1} MB file)",
            bytes.len() as f64 / 1e6
        ),
        mb(with_db)
    );
    println!("{:<48} {:>14}", "database + 100,000 flows", mb(full_db));
    println!(
        "{:<48} {:>14.2}",
        "ratio: database + 100k flows / baseline",
        full_db as f64 / empty as f64
    );
}
