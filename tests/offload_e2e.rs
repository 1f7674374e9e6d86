//! fw4's flow offloading with the offload rules openwrt-package/README.md
//! recommends, read from that README, on a kernel with the nft `queue`
//! expression and flowtables: the stock kernel of scripts/test-vm, with
//! the fw4 backend (`PHONEHOME_TEST_BACKEND=fw4`). Offloaded packets skip
//! every netfilter hook, phonehome's included, so what has to hold is
//! that nothing is offloaded before phonehome has decided it. Elsewhere
//! (this CI kernel has no nft `queue`) the tests say so and return.
//! IPv4 and IPv6. Needs root.

mod common;

use common::*;

/// The rules in the README's code block after "to" in its Flow
/// offloading section.
fn readme_offload_rules() -> Vec<String> {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openwrt-package/README.md"),
    )
    .unwrap();
    let section = &readme[readme
        .find("## Flow offloading")
        .expect("a Flow offloading section")..];
    let after = &section[section
        .find("\nto\n")
        .expect("'to' before the recommended rules")..];
    let block = after.split("```").nth(1).expect("a code block");
    let rules: Vec<String> = block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.trim_end_matches(';').to_string())
        .collect();
    assert!(!rules.is_empty() && rules.iter().all(|r| r.contains("flow offload @ft")));
    rules
}

/// The network with fw4's flowtable and the README's offload rules, or
/// None where the fw4 backend does not run.
fn offloading_network(config: &str) -> Option<Net> {
    if backend() != "fw4" {
        eprintln!(
            "skipping: flow offloading is tested with PHONEHOME_TEST_BACKEND=fw4 (scripts/test-vm)"
        );
        return None;
    }
    let mut net = network(config)?;
    net.offload = readme_offload_rules();
    net.firewall_up(false);
    Some(net)
}

/// Connections named by DNS, by SNI, by Host and by a name late in the
/// stream are blocked as without offloading; an allowed download is
/// offloaded once decided (the flowtable holds it) and its bytes are still
/// counted (fw4's flowtable has `counter`).
#[test]
#[ignore = "needs root and network namespaces"]
fn offloading_decided_connections_keeps_every_verdict() {
    let Some(mut net) = offloading_network(REJECT_XIAOMI) else {
        return;
    };
    // A small receive window, so a rate-limited download is still running
    // when the table is read (with the default, the server sends it all
    // into the phone's buffer and closes: its FIN ends the offload).
    net.sh(
        &net.phone,
        "sysctl -qw net.ipv4.tcp_rmem='4096 65536 131072'",
    );
    net.start_http_sink(8080);
    for (xiaomi, neutral, rtype) in [
        (XIAOMI_IP, NEUTRAL_IP, "A"),
        (v6_of(XIAOMI_IP), v6_of(NEUTRAL_IP), "AAAA"),
    ] {
        // Named by DNS, decided at the SYN.
        assert_eq!(
            net.dig_with(WAN_DNS, "tracking.miui.com", rtype, ""),
            xiaomi
        );
        assert!(
            !net.curl("https://tracking.miui.com/", xiaomi, 3.0),
            "{rtype}"
        );
        // Named by SNI or Host alone, after the handshake.
        assert!(
            !net.curl("https://api.ad.xiaomi.com/", neutral, 3.0),
            "{rtype}"
        );
        assert!(
            !net.curl("http://data.mistat.xiaomi.com/", neutral, 3.0),
            "{rtype}"
        );
        // Named in the 12th small segment, 50 ms apart.
        for (port, kind) in [(443, "tls --pad 700"), (8080, "http --headers 300")] {
            let out = net.late_name(
                neutral,
                port,
                &format!("--kind {kind} --pieces 12 --delay 50"),
            );
            assert!(out.starts_with("refused"), "{rtype} {kind}: {out}");
        }
        // Allowed: loads, and while it does it is offloaded (a flow leaves
        // the flowtable at its FIN, so this looks mid-download: 10 MB at
        // 2 MB/s).
        let host = if neutral.contains(':') {
            format!("[{neutral}]")
        } else {
            neutral.to_string()
        };
        let done = net.dir.join(format!("download-{rtype}"));
        let phone = net.phone.clone();
        net.spawn(
            &format!("download-{rtype}"),
            &phone,
            &[
                "sh",
                "-c",
                &format!(
                    "curl -sg -o /dev/null -w '%{{size_download}}' --limit-rate 2M --max-time 60 --resolve files.example.org:80:{host} http://files.example.org/10mb.bin > {d}.part && mv {d}.part {d}",
                    d = done.display()
                ),
            ],
        );
        std::thread::sleep(std::time::Duration::from_secs(2));
        let table = net.sh(&net.router, "cat /proc/net/nf_conntrack");
        let offloaded = table.lines().filter(|l| l.contains("[OFFLOAD]")).count();
        wait_for_file(&done, 60, &format!("{rtype}: the download did not end"));
        let size = std::fs::read_to_string(&done).unwrap();
        assert_eq!(size.trim(), (10u64 << 20).to_string(), "{rtype}");
        assert!(
            offloaded > 0,
            "{rtype}: the allowed download was not offloaded:\n{table}\n{}",
            net.sh(&net.router, "nft list table inet fw4")
        );
    }
    let devices = net.cli_json(&["devices"]);
    assert!(
        devices[0]["bytes_down"].as_u64().unwrap() >= 20 << 20,
        "offloaded bytes are counted: {devices:#}"
    );
    assert_eq!(net.cli_json(&["status"])["nameless"], 0);
}
