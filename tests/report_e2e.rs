//! The report end to end (issue 17): the daemon on the namespace test
//! network judges real traffic, `phonehome report` writes its page (with
//! yesterday's traffic from the state file as the "before"), and real
//! headless Chromium opens it (tests/browser/check_report.py): a person
//! sees the phone's companies with the counts the CLI gives, Xiaomi marked
//! blocked by its rule, the timeline's points, and what appeared and
//! vanished since yesterday. Over IPv4 and IPv6. The screenshots are left
//! in target/report-shots/ to look at.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use serde_json::{json, Value};

fn shots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("report-shots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn report_of_real_traffic(family: Family, tag: &str) {
    if !can_run() {
        return;
    }
    let mut net = Net::new();
    net.start_wan_services();
    yesterdays_state(&net.dir.join("flash/state"));
    net.start_daemon(
        &format!(
            "config phonehome 'state'\n\toption state '{}'\n\toption state_tmp '{}'\n\n\
             config device\n\toption mac '{PHONE_MAC}'\n\toption name 'phone'\n\toption maker 'Xiaomi'\n\n\
             {REJECT_XIAOMI}",
            net.dir.join("flash/state").display(),
            net.dir.join("tmpfs/state").display()
        ),
        false,
    );
    assert!(net.curl("https://www.google.com/", family.ip(GOOGLE_IP), 5.0));
    assert!(net.curl("https://oss.aliyuncs.com/", family.ip(ALIYUN_IP), 5.0));
    for _ in 0..2 {
        assert!(!net.curl("https://tracking.miui.com/", family.ip(XIAOMI_IP), 3.0));
    }

    let page = shots().join(format!("e2e-{tag}.html"));
    let out = net.cli(&[
        "report",
        "--device",
        PHONE_MAC,
        "--since",
        "1h",
        "--before",
        "2d..20h",
        "--after",
        "1h..now",
        "--out",
        page.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // What a person must see, from the CLI's own answers.
    let owners: Value = net.cli_json(&["owners", "--device", PHONE_MAC, "--since", "1h"]);
    let counts: serde_json::Map<String, Value> = owners
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["owner"].as_str().unwrap().to_string(),
                json!([r["flows"], r["blocked"]]),
            )
        })
        .collect();
    assert_eq!(counts["Xiaomi"], json!([2, 2]), "{owners:#}");
    assert_eq!(counts["Google"], json!([1, 0]), "{owners:#}");
    let expect = json!({
        "text": ["phone", "randomised MAC", PHONE_MAC, "xiaomi", "Blocked (2)", "What changed"],
        "absent_text": ["could not be drawn", "NaN", "undefined"],
        "sections": ["header", "devices", "device", "owners", "timeline", "flows", "blocked", "diff"],
        "owners": counts,
        "device_owners": { PHONE_MAC: counts },
        "devices": 1,
        "randomised_mac": 1,
        "diff": {"appeared": ["Alibaba Cloud", "Google"], "vanished": ["Meta"], "shrank": ["Xiaomi"]},
    });
    let expect_file = net.dir.join("expect.json");
    std::fs::write(&expect_file, expect.to_string()).unwrap();
    let shot = shots().join(format!("e2e-{tag}.png"));
    let check = Command::new("/usr/bin/python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/check_report.py"
        ))
        .args([
            "page",
            page.to_str().unwrap(),
            expect_file.to_str().unwrap(),
            "--shot",
        ])
        .arg(&shot)
        .output()
        .expect("/usr/bin/python3: run scripts/install-deps");
    assert!(
        check.status.success(),
        "the report page of real traffic ({tag}):\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(shot.exists());
    // The timeline has this hour's points.
    let doc: Value = serde_json::from_slice(
        &net.cli(&["report", "--device", PHONE_MAC, "--since", "1h", "--json"])
            .stdout,
    )
    .unwrap();
    let points: usize = doc["series"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["points"].as_array().unwrap().len())
        .sum();
    assert!(points >= 3, "{:#}", doc["series"]);
    assert_eq!(doc["phone_home"][PHONE_MAC]["maker"], "Xiaomi");
    assert_eq!(doc["phone_home"][PHONE_MAC]["maker_from"], "config");
    assert_eq!(doc["phone_home"][PHONE_MAC]["maker_flows"], 2);
}

#[test]
#[ignore = "needs root and network namespaces"]
fn the_report_of_real_ipv4_traffic_shows_owners_blocks_timeline_and_diff() {
    report_of_real_traffic(V4, "ipv4");
}

#[test]
#[ignore = "needs root and network namespaces"]
fn the_report_of_real_ipv6_traffic_shows_owners_blocks_timeline_and_diff() {
    report_of_real_traffic(V6, "ipv6");
}
