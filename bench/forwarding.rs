//! Forwarding benchmark: iperf3 TCP throughput from the phone namespace to
//! the wan namespace through the router, first kernel-only (no rules, no
//! daemon), then with `phonehome firewall up` and the daemon running.
//! Prints both and their ratio, measured in the same run, alternating the
//! two setups over several rounds and taking each one's median.
//! Run as root: `cargo bench --bench forwarding`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;

const SERVER: &str = NEUTRAL_IP;

fn iperf(net: &Net, seconds: u32) -> f64 {
    let out = net.sh(
        &net.phone,
        &format!("iperf3 -c {SERVER} -t {seconds} -J --connect-timeout 3000"),
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("iperf3 JSON");
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("bits_per_second")
}

fn main() {
    if !is_root() {
        eprintln!("bench: needs root (network namespaces and netfilter rules)");
        std::process::exit(2);
    }
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let seconds: u32 = std::env::var("SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mut net = Net::new();
    let wan = net.wan.clone();
    net.spawn("iperf3", &wan, &["iperf3", "-s", "-B", SERVER]);
    net.wait_for(&wan, "ss -ltn | grep -q ':5201 '");
    net.write_config("config rule\n\toption owner 'Xiaomi'\n\toption action 'block'\n");

    let (mut kernel, mut daemon) = (Vec::new(), Vec::new());
    let mut queued = 0;
    for _ in 0..rounds {
        net.firewall_down();
        kernel.push(iperf(&net, seconds));
        net.firewall_up(false);
        net.start_daemon_process();
        let before = net.queued_packets();
        daemon.push(iperf(&net, seconds));
        queued += net.queued_packets() - before;
        net.signal("daemon", "TERM");
    }
    let (k, d) = (median(kernel), median(daemon));
    println!("forwarding throughput, iperf3 TCP phone → router → wan, {rounds} rounds × {seconds} s, medians");
    println!("{:<28} {:>12}", "setup", "Gbit/s");
    println!("{:<28} {:>12.2}", "kernel only (baseline)", k / 1e9);
    println!("{:<28} {:>12.2}", "phonehome rules + daemon", d / 1e9);
    println!("{:<28} {:>12.3}", "ratio (phonehome/kernel)", d / k);
    println!(
        "packets queued to user space per iperf3 run: {:.1}",
        queued as f64 / rounds as f64
    );
}
