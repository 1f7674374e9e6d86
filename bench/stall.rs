//! Verdict stalls under a hostile LAN and a hostile socket reader: the
//! phone opens short TCP connections to a server in wan, one after
//! another, each SYN queued and answered by the daemon, and every setup is
//! timed. The same run measures, alternating over several rounds:
//! - quiet: nothing else happens (the baseline);
//! - hostile: meanwhile a LAN host sprays UDP from port 53 to random
//!   addresses (every such packet is queued as a DNS answer; it once also
//!   triggered a synchronous neighbour-table dump per address), and a
//!   socket clients ask `flows`, `owners`, `devices` and `report` back to back, 16
//!   at a time (each query once ran a full conntrack dump inside the event
//!   loop).
//!
//! Prints the worst and p99 setup time of each, and hostile ÷ quiet (how
//! much longer a packet can wait for its verdict under attack). Run as
//! root: `cargo bench --bench stall` (CONNS=5000 ROUNDS=3).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::*;
use phonehome::daemon::api::{self, Query};
use phonehome::report::stats::TimeRange;

const SERVER: &str = NEUTRAL_IP;
const PORT: u16 = 9000;

fn probe(net: &Net, n: usize) -> Setups {
    net.connect_setups(n, SERVER, PORT)
}

/// The probe while the LAN sprays port-53 UDP and a socket client floods
/// queries; returns the probe's figures and how many queries were answered.
fn hostile(net: &mut Net, n: usize) -> (Setups, u64) {
    let load = std::env::var("STALL_LOAD").unwrap_or_else(|_| "both".into());
    let phone = net.phone.clone();
    // 20,000 packets/s from source port 53 to random wan addresses, for as
    // long as the probe runs (bounded: at most 30 s).
    if load != "flood" {
        net.spawn(
            "spray",
            &phone,
            &[
                "timeout",
                "30",
                "hping3",
                "--udp",
                "-s",
                "53",
                "-k",
                "-p",
                "9",
                "-i",
                "u50",
                "--rand-dest",
                "203.0.x.x",
                "-q",
            ],
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    // 16 readers at once, each asking again as soon as it is answered.
    let flood: Vec<_> = (0..16)
        .map(|reader| {
            let (stop, answered, socket, load) = (
                stop.clone(),
                answered.clone(),
                net.socket.clone(),
                load.clone(),
            );
            std::thread::spawn(move || {
                let query = match reader % 4 {
                    0 => Query::Flows { device: None },
                    1 => Query::Owners {
                        device: None,
                        range: TimeRange::default(),
                    },
                    // The whole report document, built in the daemon's loop.
                    2 => Query::Report {
                        device: None,
                        range: TimeRange::default(),
                        by: phonehome::report::stats::SeriesBy::Owner,
                        lines: 50,
                        before: None,
                        after: None,
                    },
                    _ => Query::Devices {
                        device: None,
                        range: TimeRange::default(),
                    },
                };
                // Frames written and replies read raw, not decoded: the
                // readers cost the daemon its work, not this machine's CPU.
                let frame = api::encode(&api::Request {
                    version: api::PROTOCOL_VERSION,
                    query,
                });
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                while load != "spray"
                    && !stop.load(Ordering::Relaxed)
                    && std::time::Instant::now() < deadline
                {
                    use std::io::{Read, Write};
                    let Ok(mut s) = std::os::unix::net::UnixStream::connect(&socket) else {
                        continue;
                    };
                    let mut len = [0u8; 4];
                    let ok = s.write_all(&frame).is_ok()
                        && s.read_exact(&mut len).is_ok()
                        && std::io::copy(
                            &mut (&mut s).take(u64::from(u32::from_be_bytes(len))),
                            &mut std::io::sink(),
                        )
                        .is_ok();
                    if ok {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let run = probe(net, n);
    stop.store(true, Ordering::Relaxed);
    for reader in flood {
        reader.join().unwrap();
    }
    net.signal("spray", "KILL");
    (run, answered.load(Ordering::Relaxed))
}

fn main() {
    if !is_root() {
        eprintln!("bench: needs root (network namespaces and netfilter rules)");
        std::process::exit(2);
    }
    let (n, rounds) = (env_or("CONNS", 5000), env_or("ROUNDS", 3));
    let mut net = Net::new();
    net.start_wan_services();
    net.start_accept_server(SERVER, PORT);
    net.start_daemon("", false);
    let mut quiet = Vec::new();
    let mut loud = Vec::new();
    let mut queries = 0;
    for _ in 0..rounds {
        quiet.push(probe(&net, n));
        let (run, answered) = hostile(&mut net, n);
        loud.push(run);
        queries += answered;
    }
    let med = |runs: &[Setups], f: fn(&Setups) -> f64| median(runs.iter().map(f).collect());
    let status = net.cli_json(&["status"]);
    println!(
        "verdict stalls: {n} TCP connection setups per round, {rounds} rounds (medians), same run"
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "", "p50 µs", "p99 µs", "worst µs"
    );
    for (label, runs) in [
        ("quiet (baseline)", &quiet),
        ("hostile LAN + socket flood", &loud),
    ] {
        println!(
            "{label:<44} {:>10.0} {:>10.0} {:>10.0}",
            med(runs, |r| r.p50),
            med(runs, |r| r.p99),
            med(runs, |r| r.worst)
        );
    }
    println!(
        "{:<44} {:>10.2} {:>10.2} {:>10.2}",
        "ratio: hostile / quiet",
        med(&loud, |r| r.p50) / med(&quiet, |r| r.p50),
        med(&loud, |r| r.p99) / med(&quiet, |r| r.p99),
        med(&loud, |r| r.worst) / med(&quiet, |r| r.worst)
    );
    println!(
        "socket queries answered meanwhile: {queries}; packets judged in all: {}; flows evicted: {}",
        status["packets"], status["flows_evicted"]
    );
}
