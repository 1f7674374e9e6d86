//! New-connection rate and setup latency through the router: short TCP
//! connections (connect, then close) from the phone namespace to a server
//! in wan, in three setups measured in the same run, alternating over
//! several rounds (medians):
//! - kernel only: no rules, no queue (the ceiling);
//! - the C loop: phonehome's kernel rules with `bench/c/nfq_accept.c`, the
//!   smallest NFQUEUE loop, built here against Debian's libnetfilter_queue
//!   (the floor of any user-space path), giving the verdict phonehome
//!   gives an allowed connection (the allow mark, repeated) where phonehome
//!   gives it (`until-data`: at the first packet with data, FIN or RST,
//!   the handshake accepted unmarked), so both queue the same packets;
//! - phonehome: the same rules with the daemon, the server's name known
//!   from DNS first (as a phone's connection would have it). An allowed
//!   DNS name does not decide the connection: its own name (SNI, Host)
//!   does, so it waits for the client's first data, here its FIN.
//!
//! Prints connections/s with phonehome ÷ the C loop (target ≥ 1.0) and the
//! setup latency each adds over kernel-only at p50 and p99. Run as root:
//! `cargo bench --bench connections` (CONNS=2000 ROUNDS=3).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;

const SERVER: &str = NEUTRAL_IP;
const PORT: u16 = 9000;

fn run(net: &Net, n: usize) -> Setups {
    net.connect_setups(n, SERVER, PORT)
}

fn main() {
    if !is_root() {
        eprintln!("bench: needs root (network namespaces and netfilter rules)");
        std::process::exit(2);
    }
    let (n, rounds) = (env_or("CONNS", 2000), env_or("ROUNDS", 3));
    let c_loop = build_c_loop("nfq-accept");

    let mut net = Net::new();
    net.start_wan_services();
    net.start_accept_server(SERVER, PORT);
    net.write_config("config rule\n\toption owner 'Xiaomi'\n\toption action 'block'\n");
    // Shorter TIME_WAIT so thousands of connections do not pile up.
    net.sh(
        &net.router,
        "sysctl -q -w net.netfilter.nf_conntrack_tcp_timeout_time_wait=1",
    );

    let (mut kernel, mut c, mut ph) = (Vec::new(), Vec::new(), Vec::new());
    // Packets each connection put through the queue: the same work.
    let (mut c_queued, mut ph_queued) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        net.firewall_down();
        kernel.push(run(&net, n));

        net.firewall_up(false);
        let router = net.router.clone();
        net.spawn(
            "c-loop",
            &router,
            &[c_loop.to_str().unwrap(), "0", "until-data"],
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        let before = net.queued_packets();
        c.push(run(&net, n));
        c_queued.push((net.queued_packets() - before) as f64 / n as f64);
        net.signal("c-loop", "TERM");

        net.start_daemon_process();
        net.dig(WAN_DNS, "files.example.org");
        let before = net.queued_packets();
        ph.push(run(&net, n));
        ph_queued.push((net.queued_packets() - before) as f64 / n as f64);
        net.signal("daemon", "TERM");
    }
    net.firewall_down();
    std::fs::remove_file(&c_loop).ok();
    let m = |v: &[Setups], f: fn(&Setups) -> f64| median(v.iter().map(f).collect());
    let (k_rate, c_rate, p_rate) = (
        m(&kernel, |r| r.rate),
        m(&c, |r| r.rate),
        m(&ph, |r| r.rate),
    );
    println!("new TCP connections phone → router → wan, {n} per run, {rounds} rounds, medians");
    println!(
        "{:<34} {:>10} {:>12} {:>12}",
        "setup", "conn/s", "p50 setup", "p99 setup"
    );
    for (name, v) in [
        ("kernel only (ceiling)", &kernel),
        ("C NFQUEUE loop, same verdict (floor)", &c),
        ("phonehome", &ph),
    ] {
        println!(
            "{:<34} {:>10.0} {:>10.0}µs {:>10.0}µs",
            name,
            m(v, |r| r.rate),
            m(v, |r| r.p50),
            m(v, |r| r.p99)
        );
    }
    println!(
        "{:<34} {:>10.3}",
        "ratio phonehome / C loop (≥ 1.0)",
        p_rate / c_rate
    );
    println!(
        "{:<34} {:>10.3}",
        "ratio phonehome / kernel only",
        p_rate / k_rate
    );
    println!(
        "packets queued per connection: C loop {:.2}, phonehome {:.2}",
        median(c_queued),
        median(ph_queued)
    );
    println!(
        "added setup latency over kernel only: phonehome p50 {:+.0} µs, p99 {:+.0} µs; C loop p50 {:+.0} µs, p99 {:+.0} µs",
        m(&ph, |r| r.p50) - m(&kernel, |r| r.p50),
        m(&ph, |r| r.p99) - m(&kernel, |r| r.p99),
        m(&c, |r| r.p50) - m(&kernel, |r| r.p50),
        m(&c, |r| r.p99) - m(&kernel, |r| r.p99),
    );
}
