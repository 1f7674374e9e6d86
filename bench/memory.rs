//! Memory benchmark: what the daemon's state costs, RSS measured in the
//! same run (each figure in a fresh process) against the engine holding
//! nothing:
//! - 100,000 tracked connections (TCP SYNs from 50 phones to distinct
//!   servers and ports, each waiting for its ClientHello as a real one
//!   without a DNS name would): bytes per flow;
//! - the same with a compiled 1,000,000-domain owner database loaded;
//! - a hostile LAN with the router's default caps: 50,000 rotating source
//!   MACs (a device each) and 16,384 connections stalled halfway through a
//!   2 KB ClientHello, checked against the caps (`max_flows`,
//!   `max_pending`, `stats::MAX_DEVICES`).
//!
//! Run: `cargo bench --bench memory`.

use std::hint::black_box;

use etherparse::PacketBuilder;
use phonehome::engine::{Engine, Now};
use phonehome::owners::db::{Builder, OwnerDb};
use phonehome::owners::Category;
use phonehome::policy::config::Config;
use phonehome::wire::nfqueue::{QueuedPacket, HOOK_FORWARD};

const FLOWS: u32 = 100_000;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The process's peak RSS (VmHWM).
fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
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
        black_box(engine.on_queued(
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
    assert_eq!(engine.flow_count(), FLOWS as usize);
    println!("{empty} {}", rss_bytes());
}

/// The hostile LAN in a fresh process, with the default config's caps:
/// prints "empty full".
fn hostile_child() {
    let cfg = Config::parse(
        "config phonehome\n\toption leases '/nonexistent'\n",
        std::path::Path::new("bench"),
    )
    .unwrap();
    let mut engine = Engine::new(&cfg);
    let empty = rss_bytes();
    let now = Now {
        mono: 1,
        unix: 1_795_651_200,
        ..Default::default()
    };
    let mut peak_pending = 0;
    let packet = |src: [u8; 4], dst: [u8; 4], sport: u16, syn: bool, payload: &[u8], udp: bool| {
        let b = PacketBuilder::ipv4(src, dst, 64);
        let mut out = Vec::new();
        if udp {
            b.udp(sport, 9).write(&mut out, payload).unwrap();
        } else {
            let t = b.tcp(sport, 443, 0, 64240);
            let t = if syn { t.syn() } else { t.ack(1) };
            t.write(&mut out, payload).unwrap();
        }
        out
    };
    // 16,384 connections, each stalled after the first 2 KB of a hello.
    let mut hello = vec![0x16, 0x03, 0x01, 0x10, 0x00, 0x01, 0x00, 0x0f, 0xfc];
    hello.resize(2048, 0);
    for i in 0..16_384u32 {
        let server = [203, 0, 114 + (i >> 8 & 3) as u8, i as u8];
        let sport = 20000 + (i % 40000) as u16;
        for (syn, payload) in [(true, &[][..]), (false, &hello[..])] {
            let bytes = packet([192, 168, 77, 2], server, sport, syn, payload, false);
            let seq_fixed = if syn {
                bytes
            } else {
                // the data segment starts right after the SYN's sequence
                let mut b = bytes;
                b[24..28].copy_from_slice(&1u32.to_be_bytes());
                let tcp = etherparse::TcpHeader::from_slice(&b[20..]).unwrap().0;
                let ip = etherparse::Ipv4Header::from_slice(&b).unwrap().0;
                let c = tcp.calc_checksum_ipv4(&ip, payload).unwrap();
                b[36..38].copy_from_slice(&c.to_be_bytes());
                b
            };
            let pkt = QueuedPacket {
                hw_protocol: 0x0800,
                hook: HOOK_FORWARD,
                hwaddr: Some([2, 0, 0, 0, 0x77, 2]),
                payload: &seq_fixed,
                ..Default::default()
            };
            black_box(engine.on_queued(&pkt, now));
        }
        peak_pending = peak_pending.max(engine.pending_bytes());
    }
    // 50,000 MACs, one UDP flow each (decided at once: a device each).
    for i in 0..50_000u32 {
        let mac = [2, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8, 1];
        let bytes = packet(
            [192, 168, 77, 9],
            [203, 0, 113, 50],
            1024 + (i % 60000) as u16,
            false,
            b"x",
            true,
        );
        let pkt = QueuedPacket {
            hw_protocol: 0x0800,
            hook: HOOK_FORWARD,
            hwaddr: Some(mac),
            payload: &bytes,
            ..Default::default()
        };
        black_box(engine.on_queued(&pkt, now));
    }
    assert!(
        engine.flow_count() <= cfg.max_flows,
        "{} flows",
        engine.flow_count()
    );
    assert!(
        engine.pending_bytes() <= cfg.max_pending,
        "{} pending",
        engine.pending_bytes()
    );
    assert!(engine.device_count() <= phonehome::report::stats::MAX_DEVICES);
    assert!(peak_pending <= cfg.max_pending);
    println!(
        "{empty} {} {peak_pending} {} {}",
        peak_rss_bytes(),
        engine.counters().pending_overflow,
        engine.device_count()
    );
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
    if args.iter().any(|a| a == "--hostile-child") {
        return hostile_child();
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
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--hostile-child")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<u64> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    println!(
        "{:<48} {:>14}",
        "hostile LAN: 16,384 half hellos + 50k MACs (peak)",
        mb(v[1])
    );
    println!(
        "{:<48} {:>14}",
        "  held for names at most (max_pending 4 MiB)",
        mb(v[2])
    );
    println!("{:<48} {:>14}", "  decided early at max_pending", v[3]);
    println!("{:<48} {:>14}", "  devices kept (cap 4096)", v[4]);
    println!(
        "{:<48} {:>14.2}",
        "ratio: hostile LAN / its own empty baseline",
        v[1] as f64 / v[0] as f64
    );
}
