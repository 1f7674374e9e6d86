//! `phonehome analyze` against the live daemon: the same traffic, seen
//! by the daemon on the router's queue and by tcpdump on the router's LAN
//! side, must give the same summary (devices, owners, flows, verdicts,
//! bytes). Same namespace network as tests/e2e.rs; needs root and tcpdump,
//! and the `pcap` feature (scripts/test builds with it).
#![cfg(feature = "pcap")]

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn row<'a>(rows: &'a Value, key: &str, value: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r[key] == value)
        .unwrap_or_else(|| panic!("no {key} {value} in {rows:#}"))
}

fn analyze(args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .arg("analyze")
        .args(args)
        .output()
        .expect("phonehome analyze runs")
}

fn analyze_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = analyze(&all);
    assert!(
        out.status.success(),
        "analyze {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

#[test]
#[ignore = "needs root and network namespaces"]
fn a_capture_of_the_lan_gives_the_live_daemons_summary() {
    if which("tcpdump").is_none() {
        panic!("tcpdump is needed (scripts/install-deps installs it)");
    }
    let Some(mut net) = network(REJECT_XIAOMI) else {
        return;
    };
    let pcap = net.start_lan_capture("lan.pcap");

    // DNS through the router to the wan resolver, then connections named
    // by it, by SNI alone and by HTTP Host alone; one download.
    assert_eq!(
        net.dig(WAN_DNS, "www.google-analytics.com").trim(),
        GOOGLE_IP
    );
    assert!(net.curl("https://www.google-analytics.com/", GOOGLE_IP, 5.0));
    assert!(net.curl("https://oss.aliyuncs.com/", ALIYUN_IP, 5.0));
    assert!(net.curl("http://files.example.org/10mb.bin", NEUTRAL_IP, 10.0));
    assert!(!net.curl("https://api.ad.xiaomi.com/", XIAOMI_IP, 2.0));
    net.stop_lan_capture();

    let live_owners = net.cli_json(&["owners"]);
    let live_devices = net.cli_json(&["devices"]);
    let config = net.config_path();
    let report = analyze_json(&[pcap.to_str().unwrap(), "-c", config.to_str().unwrap()]);

    let capture = &report["capture"];
    assert!(capture["packets"].as_u64().unwrap() > 100, "{capture:#}");
    assert_eq!(capture["malformed"], 0, "{capture:#}");
    assert_eq!(capture["blocked"], 1, "{capture:#}");

    // The phone, by its MAC and with its configured name, as live.
    let live_phone = row(&live_devices, "mac", PHONE_MAC);
    let phone = row(&report["devices"], "mac", PHONE_MAC);
    assert_eq!(phone["hostname"], "phone");
    for field in ["flows", "blocked"] {
        assert_eq!(
            phone[field], live_phone[field],
            "{field}: {report:#} {live_devices:#}"
        );
    }

    // Every named owner: same flows and verdicts, bytes as conntrack
    // counted them (the capture may miss the last ACK or two).
    // (The download and the DNS lookup are "unknown": no database here.)
    for owner in ["Google", "Alibaba Cloud", "unknown", "Xiaomi"] {
        let live = row(&live_owners, "owner", owner);
        let seen = row(&report["owners"], "owner", owner);
        for field in ["flows", "blocked", "category"] {
            assert_eq!(
                seen[field], live[field],
                "{owner} {field}: {seen:#} vs {live:#}"
            );
        }
        for field in ["bytes_up", "bytes_down"] {
            let (a, b) = (seen[field].as_u64().unwrap(), live[field].as_u64().unwrap());
            assert!(
                a.abs_diff(b) <= 200 + b / 100,
                "{owner} {field}: capture {a}, live {b}"
            );
        }
        assert_eq!(seen["domains"], live["domains"], "{owner}");
    }
    let download = row(&report["owners"], "owner", "unknown");
    assert!(download["bytes_down"].as_u64().unwrap() > 10 << 20);

    // Each flow with its name's source and verdict.
    let flows = &report["flows"];
    let named = |domain: &str| row(flows, "domain", domain);
    // Resolved first, but named by its own ClientHello.
    assert_eq!(named("www.google-analytics.com")["name_source"], "sni");
    assert_eq!(named("oss.aliyuncs.com")["name_source"], "sni");
    assert_eq!(named("files.example.org")["name_source"], "http");
    let xiaomi = named("api.ad.xiaomi.com");
    assert_eq!(
        (xiaomi["verdict"].as_str(), xiaomi["rule"].as_str()),
        (Some("reject"), Some("xiaomi"))
    );

    // The same capture through standard input, as a table, and only the
    // phone's rows.
    let piped = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} analyze - -c {} --flows --device {PHONE_MAC} < {}",
            bin().display(),
            config.display(),
            pcap.display()
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&piped.stdout);
    assert!(piped.status.success(), "{text}");
    assert!(text.contains("1 flows the policy blocks"), "{text}");
    assert!(
        text.contains("OWNER") && text.contains("example.org"),
        "{text}"
    );
    assert!(
        text.contains("api.ad.xiaomi.com") && text.contains("reject"),
        "{text}"
    );
}

#[test]
fn damaged_and_foreign_files_are_refused_or_summarised_up_to_the_damage() {
    let dir = std::env::temp_dir().join(format!("phonehome-analyze-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/phone-lan.pcap");
    let whole = std::fs::read(fixture).unwrap();

    // Not a capture at all: refused with the reason, nothing printed.
    let text = dir.join("notes.txt");
    std::fs::write(&text, "hello\n").unwrap();
    let out = analyze(&[text.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a pcap or pcapng file"), "{err}");

    // Cut inside the last record (tcpdump killed): summarised, warned.
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &whole[..whole.len() - 7]).unwrap();
    let out = analyze(&[cut.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning") && err.contains("ends inside a packet"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("OWNER"));

    // A record claiming 1 GB reads as a file that ends inside it.
    let mut bad = whole.clone();
    let second = 24 + 16 + u32::from_le_bytes(whole[32..36].try_into().unwrap()) as usize;
    bad[second + 8..second + 12].copy_from_slice(&(1u32 << 30).to_le_bytes());
    let damaged = dir.join("damaged.pcap");
    std::fs::write(&damaged, &bad).unwrap();
    let out = analyze(&[damaged.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("after 1 packets") && err.contains("damaged"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": 1 packets"));

    // A record with an impossible timestamp: summarised up to it, failed.
    let mut bad = whole.clone();
    bad[second + 4..second + 8].copy_from_slice(&2_000_000u32.to_le_bytes());
    std::fs::write(&damaged, &bad).unwrap();
    let out = analyze(&[damaged.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("record 2 has a bad timestamp"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(": 1 packets"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}
