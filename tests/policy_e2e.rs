//! End-to-end tests of enforcement on the real kernel path (issue 5):
//! reject vs block, the DNS sinkhole on both DNS paths, encrypted-DNS
//! blocking, hot reload that re-judges live connections, give-up after N
//! packets, and fail-open/closed across a daemon crash and restart. Same
//! namespace network as tests/e2e.rs (tests/common). Run as root.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn network(config: &str) -> Option<Net> {
    if !can_run() {
        return None;
    }
    let mut net = Net::new();
    net.start_wan_services();
    net.start_daemon(config, false);
    Some(net)
}

/// How long a curl from the phone takes to fail (or succeed), and whether
/// it fetched the page.
fn timed_curl(net: &Net, url: &str, ip: &str, max_time: f32) -> (bool, Duration) {
    let t = Instant::now();
    let ok = net.curl(url, ip, max_time);
    (ok, t.elapsed())
}

#[test]
fn reject_fails_a_blocked_connection_at_once_while_block_times_out() {
    let rules = "config rule 'xiaomi'\n\toption owner 'Xiaomi'\n\toption action 'reject'\n\n\
                 config rule 'ga'\n\toption owner 'Google'\n\toption action 'block'\n";
    let Some(net) = network(rules) else { return };
    assert_eq!(net.dig(WAN_DNS, "tracking.miui.com").trim(), XIAOMI_IP);
    assert_eq!(net.dig(WAN_DNS, "www.google.com").trim(), GOOGLE_IP);
    let (ok, rejected) = timed_curl(&net, "https://tracking.miui.com/", XIAOMI_IP, 3.0);
    assert!(!ok);
    let (ok, blocked) = timed_curl(&net, "https://www.google.com/", GOOGLE_IP, 3.0);
    assert!(!ok);
    eprintln!("reject failed curl in {rejected:?}, block in {blocked:?}");
    assert!(
        rejected < Duration::from_secs(1),
        "reject took {rejected:?}"
    );
    assert!(
        blocked >= Duration::from_millis(2900),
        "block took {blocked:?}"
    );
    // The rejected connection's later packets are refused in the kernel
    // too: a second try is as quick and reaches the daemon at most once.
    let (_, again) = timed_curl(&net, "http://tracking.miui.com/", XIAOMI_IP, 3.0);
    assert!(again < Duration::from_secs(1), "{again:?}");
    let flows = net.cli_json(&["flows"]);
    let verdicts: Vec<(&str, &str)> = flows
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["proto"] == "tcp")
        .map(|f| (f["owner"].as_str().unwrap(), f["verdict"].as_str().unwrap()))
        .collect();
    assert!(verdicts.contains(&("Xiaomi", "reject")), "{verdicts:?}");
    assert!(verdicts.contains(&("Google", "block")), "{verdicts:?}");
}
