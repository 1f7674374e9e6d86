//! Does a second queue scale? New TCP connections/s through the router
//! from several phone clients at once, with phonehome's iptables rules and
//! `bench/c/nfq_accept.c` (the smallest NFQUEUE loop, phonehome's allow
//! verdict) as the user-space side, in three setups measured in the same
//! run, alternating over several rounds (medians):
//! - kernel only: no rules, no queue (the ceiling);
//! - one queue, one loop;
//! - the rules' queueing rule switched to `--queue-balance 0:1
//!   --queue-cpu-fanout` with one loop per queue, each its own process:
//!   the queue is the CPU that handles the packet. (Without the fanout the
//!   kernel picks the queue by a hash of the addresses and protocol only,
//!   not the ports: every connection between one phone and one server
//!   lands in the same queue, and this bench's would all go to one.)
//!
//! This measures the kernel's and the loops' side of `option queues '2'`
//! before the daemon gets a worker per queue: if two C loops do not scale,
//! neither would two workers. Prints connections/s and two queues ÷ one
//! (the bar: ≥ 1.7). Run as root: `cargo bench --bench queues`
//! (CLIENTS=4 CONNS=1500 ROUNDS=3).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;

const SERVER: &str = NEUTRAL_IP;
const PORT: u16 = 9000;

/// CLIENTS processes in the phone, CONNS connects each, all at once:
/// connections/s over the slowest one's time.
fn parallel_setups(net: &Net, clients: usize, n: usize) -> f64 {
    let out = net.sh(
        &net.phone,
        &format!(
            "for i in $(seq {clients}); do python3 -c \"{CONNECT_CLIENT_PY}\" {n} {SERVER} {PORT} & done; wait"
        ),
    );
    let slowest = out
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .fold(0.0, f64::max);
    assert!(slowest > 0.0, "clients printed: {out}");
    (clients * n) as f64 / slowest
}

fn main() {
    if !is_root() {
        eprintln!("bench: needs root (network namespaces and netfilter rules)");
        std::process::exit(2);
    }
    let (clients, n, rounds) = (
        env_or("CLIENTS", 4),
        env_or("CONNS", 1500),
        env_or("ROUNDS", 3),
    );
    let c_loop = build_c_loop("nfq-queues");

    let mut net = Net::new();
    net.start_accept_server(SERVER, PORT);
    net.write_config("");
    net.sh(
        &net.router,
        "sysctl -q -w net.netfilter.nf_conntrack_tcp_timeout_time_wait=1",
    );
    let c = c_loop.to_str().unwrap().to_string();
    let (mut kernel, mut one, mut two) = (Vec::new(), Vec::new(), Vec::new());
    let mut shares = Vec::new();
    for _ in 0..rounds {
        net.firewall_down();
        kernel.push(parallel_setups(&net, clients, n));

        net.firewall_up(false);
        let router = net.router.clone();
        net.spawn("c-loop-0", &router, &[&c, "0"]);
        std::thread::sleep(std::time::Duration::from_millis(300));
        one.push(parallel_setups(&net, clients, n));

        // The same rules, the connection rule balanced over queues 0 and 1.
        let rules = net.sh(&net.router, "iptables -t mangle -S phonehome");
        let (at, rule) = rules
            .lines()
            .filter(|l| l.starts_with("-A phonehome"))
            .enumerate()
            .find(|(_, l)| l.contains("--connbytes") && l.contains("--queue-num 0"))
            .expect("the queueing rule");
        let balanced = rule
            .replacen("-A phonehome", &format!("-R phonehome {}", at + 1), 1)
            .replace("--queue-num 0", "--queue-balance 0:1 --queue-cpu-fanout");
        net.sh(&net.router, &format!("iptables -t mangle {balanced}"));
        net.spawn("c-loop-1", &router, &[&c, "1"]);
        std::thread::sleep(std::time::Duration::from_millis(300));
        two.push(parallel_setups(&net, clients, n));
        // Both queues took their share (columns: queue, port id, waiting,
        // copy mode, copy range, dropped, user dropped, last id).
        let per_queue = net.sh(&net.router, "cat /proc/net/netfilter/nfnetlink_queue");
        shares.push(per_queue.split_whitespace().collect::<Vec<_>>().join(" "));
        net.signal("c-loop-0", "TERM");
        net.signal("c-loop-1", "TERM");
    }
    net.firewall_down();
    std::fs::remove_file(&c_loop).ok();
    let (k, o, t) = (median(kernel), median(one), median(two));
    println!(
        "new TCP connections/s, {clients} phone clients at once × {n} each, {rounds} rounds, medians, {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("{:<40} {:>10.0}", "kernel only (ceiling)", k);
    println!("{:<40} {:>10.0}", "one queue, one C loop", o);
    println!("{:<40} {:>10.0}", "2 queues (cpu fanout), a C loop each", t);
    println!("{:<40} {:>10.3}", "ratio two queues / one (≥ 1.7)", t / o);
    println!("{:<40} {:>10.3}", "ratio one queue / kernel only", o / k);
    println!(
        "queues after the last two-queue round: {}",
        shares.last().unwrap()
    );
}
