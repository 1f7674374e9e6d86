//! Floods through the router (issue 7): a SYN flood over every port and a
//! random-destination scan, made by hping3 in the phone's namespace. The
//! daemon must keep its memory bounded (the flow table evicts and counts),
//! stay up, and keep deciding the phone's real connections meanwhile.

mod common;

use std::time::Duration;

use common::*;

fn flood(net: &mut Net, name: &str, args: &str) {
    let phone = net.phone.clone();
    net.spawn(
        name,
        &phone,
        &[
            "sh",
            "-c",
            &format!("exec timeout 6 hping3 {args} >/dev/null 2>&1"),
        ],
    );
}

#[test]
#[ignore = "needs root and network namespaces"]
fn syn_flood_and_scan_keep_memory_bounded_and_decisions_coming() {
    let config = format!("config phonehome 'limits'\n\toption max_flows '2000'\n\n{REJECT_XIAOMI}");
    let Some(mut net) = network(&config) else {
        return;
    };
    net.dig(WAN_DNS, "www.google.com");
    net.dig(WAN_DNS, "tracking.miui.com");
    let rss_before = net.cli_json(&["status"])["rss_bytes"].as_u64().unwrap();
    // SYNs to every port of one server, and to random addresses of the
    // documentation /24: each one a new connection for the daemon.
    flood(
        &mut net,
        "syn-flood",
        &format!("-S -p ++1 -i u100 {NEUTRAL_IP}"),
    );
    flood(&mut net, "scan", "-S -p 80 -i u200 --rand-dest 203.0.113.x");
    std::thread::sleep(Duration::from_secs(2));
    // In the middle of it, the phone's own connections are decided. The
    // bound is generous, as for the fail-open probes: on a stock kernel
    // under TCG the emulated CPUs spend the flood's seconds on hping3's
    // packets (an allowed TLS fetch, which waits for its SNI, once missed
    // 5 s there while passing on every other run); what is checked is
    // that it completes, and is allowed, not how fast.
    assert!(
        net.curl("https://www.google.com/", GOOGLE_IP, 15.0),
        "allowed under flood"
    );
    // Refused by a reset, not left to time out. Under the flood the queue
    // may drop a SYN (never pass it), so the refusal can come at a resent
    // SYN: what counts is how it ends (curl's 7, not its 28 for a timeout).
    let code = net.curl_exit("https://tracking.miui.com/", XIAOMI_IP, 15.0);
    assert_eq!(
        code, 7,
        "a rejected connection under the flood ended with curl exit {code}"
    );
    std::thread::sleep(Duration::from_secs(5));
    let status = net.cli_json(&["status"]);
    eprintln!("after the floods: {status:#}");
    let (active, evicted) = (
        status["flows_active"].as_u64().unwrap(),
        status["flows_evicted"].as_u64().unwrap(),
    );
    let rss = status["rss_bytes"].as_u64().unwrap();
    assert!(active <= 2000, "{active} flows");
    assert!(evicted > 0, "the table filled and evicted");
    assert!(
        status["packets"].as_u64().unwrap() > 4000,
        "the floods reached the queue"
    );
    assert!(
        rss < rss_before + (16 << 20),
        "RSS grew from {rss_before} to {rss}"
    );
    // Still answering and deciding.
    assert!(net.curl("http://www.google.com/", GOOGLE_IP, 5.0));
}
