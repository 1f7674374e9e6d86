//! Forwarding benchmark: iperf3 TCP throughput from the phone namespace to
//! the wan namespace through the router, kernel-only (no rules, no daemon)
//! against `phonehome firewall up` with the daemon running, measured in the
//! same run, alternating the two setups over several rounds and taking each
//! one's median. Two loads:
//! - one iperf3 flow alone: what the rules cost (its packets stay in the
//!   kernel once its SYN is decided);
//! - four iperf3 flows while the phone holds 1,000 other connections open
//!   and opens one new connection every millisecond, closing the oldest
//!   (tests/tools/churn.py against tests/tools/hold_server.py): ~1,000 new
//!   flows a second for the daemon to judge and a flow table that stays
//!   full, as a busy LAN's. Also prints the churn each setup reached.
//!
//! Run as root: `cargo bench --bench forwarding` (ROUNDS=3 SECONDS=3
//! FLOWS=1000).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;

const SERVER: &str = NEUTRAL_IP;

const CHURN_PORT: u16 = 9100;

fn iperf(net: &Net, seconds: u32) -> f64 {
    iperf_parallel(net, seconds, 1)
}

fn iperf_parallel(net: &Net, seconds: u32, streams: u32) -> f64 {
    let out = net.sh(
        &net.phone,
        &format!("iperf3 -c {SERVER} -t {seconds} -P {streams} -J --connect-timeout 3000"),
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
    let rounds: usize = env_or("ROUNDS", 3);
    let seconds: u32 = env_or("SECONDS", 3);
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
    // Under churn: FLOWS held connections, one new one a millisecond, and
    // four iperf3 streams meanwhile.
    let flows: usize = env_or("FLOWS", 1000);
    let tools = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools");
    let hold = tools.join("hold_server.py");
    net.spawn(
        "hold-server",
        &wan,
        &[
            "python3",
            hold.to_str().unwrap(),
            SERVER,
            &CHURN_PORT.to_string(),
        ],
    );
    net.wait_for(&wan, &format!("ss -ltn | grep -q ':{CHURN_PORT} '"));
    let churn_script = tools.join("churn.py");
    let churned = |net: &mut Net| -> (f64, f64) {
        let out = net.dir.join("churn.out");
        let _ = std::fs::remove_file(&out);
        let phone = net.phone.clone();
        let churn_for = seconds + 4;
        net.spawn(
            "churn",
            &phone,
            &[
                "sh",
                "-c",
                &format!(
                    "exec python3 {} {SERVER} {CHURN_PORT} {flows} {churn_for} > {}",
                    churn_script.display(),
                    out.display()
                ),
            ],
        );
        // The held flows open first; then iperf3 runs inside the churn.
        std::thread::sleep(std::time::Duration::from_secs(3));
        let bits = iperf_parallel(net, seconds, 4);
        wait_for_file(&out, 60, "the churn client's result");
        let mut text = String::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !text.ends_with('\n') && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
            text = std::fs::read_to_string(&out).unwrap_or_default();
        }
        let rate = text
            .split_whitespace()
            .next()
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("churn client: {text:?}"));
        (bits, rate)
    };
    let (mut kernel_churn, mut daemon_churn) = (Vec::new(), Vec::new());
    let (mut kernel_rate, mut daemon_rate) = (Vec::new(), Vec::new());
    let mut churn_queued = 0;
    for _ in 0..rounds {
        net.firewall_down();
        let (bits, rate) = churned(&mut net);
        kernel_churn.push(bits);
        kernel_rate.push(rate);
        net.firewall_up(false);
        net.start_daemon_process();
        let before = net.queued_packets();
        let (bits, rate) = churned(&mut net);
        churn_queued += net.queued_packets() - before;
        daemon_churn.push(bits);
        daemon_rate.push(rate);
        net.signal("daemon", "TERM");
    }
    net.firewall_down();

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
    let (kc, dc) = (median(kernel_churn), median(daemon_churn));
    println!();
    println!(
        "under churn: 4 iperf3 streams while {flows} connections stay open and one new one opens every ms"
    );
    println!("{:<28} {:>12} {:>14}", "setup", "Gbit/s", "new conn/s");
    println!(
        "{:<28} {:>12.2} {:>14.0}",
        "kernel only (baseline)",
        kc / 1e9,
        median(kernel_rate.clone())
    );
    println!(
        "{:<28} {:>12.2} {:>14.0}",
        "phonehome rules + daemon",
        dc / 1e9,
        median(daemon_rate.clone())
    );
    println!("{:<28} {:>12.3}", "ratio (phonehome/kernel)", dc / kc);
    println!(
        "churn reached, phonehome/kernel: {:.3}; packets queued per round: {:.0}",
        median(daemon_rate) / median(kernel_rate),
        churn_queued as f64 / rounds as f64
    );
}
