//! `phonehome report` and `series` on the command line, without a daemon:
//! a saved document becomes a page, anything else is refused with what
//! is wrong, and a capture's `analyze --json` is such a document.

use std::path::PathBuf;
use std::process::{Command, Output};

fn phonehome(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phonehome"))
        .args(args)
        .output()
        .expect("run phonehome")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("phonehome-report-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn anything_but_a_report_document_is_refused_saying_what_it_is() {
    let cases: [(&str, &[u8], &str); 4] = [
        ("garbage.json", b"\x00\xff not json", "not JSON"),
        ("empty.json", b"", "not JSON"),
        (
            "other.json",
            br#"{"devices": []}"#,
            "not a phonehome report document",
        ),
        ("array.json", b"[1,2,3]", "not a phonehome report document"),
    ];
    for (name, bytes, why) in cases {
        let path = scratch(name);
        std::fs::write(&path, bytes).unwrap();
        let out = phonehome(&["report", "--from", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(why), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: nothing written");
    }
    let out = phonehome(&["report", "--from", "/nonexistent/doc.json"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/doc.json"));
}

#[test]
fn a_saved_document_becomes_one_page_that_keeps_its_names_as_text() {
    let doc = serde_json::json!({
        "format": "phonehome-report/1", "generated": 1, "source": "router",
        "name": "</title><script>alert(1)</script>",
        "owners": [{"owner": "</script><img src=x onerror=alert(1)>", "flows": 1}],
    });
    let path = scratch("doc.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    let page = scratch("page.html");
    let out = phonehome(&[
        "report",
        "--from",
        path.to_str().unwrap(),
        "--out",
        page.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Content-Security-Policy"));
    assert!(html.contains("default-src 'none'"));
    assert_eq!(
        html.matches("<script").count(),
        3,
        "the page's own three scripts"
    );
    assert!(!html.contains("<img"), "no markup from the document");
    // --json passes the document on as it is.
    let out = phonehome(&["report", "--from", path.to_str().unwrap(), "--json"]);
    let back: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(back, doc);
}

#[test]
fn bad_flags_are_usage_errors_and_no_daemon_is_said_so() {
    let socket = scratch("none.sock");
    let s = socket.to_str().unwrap();
    for (args, want) in [
        (
            vec!["series", "--by", "bytes", "--socket", s],
            "--by: 'bytes'",
        ),
        (
            vec!["report", "--by", "nope", "--socket", s],
            "--by: 'nope'",
        ),
        (
            vec!["report", "--before", "-2d..-1d", "--socket", s],
            "--before RANGE --after RANGE",
        ),
        (vec!["report", "--fail-closed"], "report"),
        (vec!["report", "--socket", s], "cannot connect"),
    ] {
        let out = phonehome(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(want),
            "{args:?}: {err}"
        );
    }
}

/// A capture's document (analyze --json) is what `report --from` draws.
#[cfg(feature = "pcap")]
#[test]
fn a_captures_analyze_json_is_a_report_document() {
    let pcap = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/phone-lan.pcap");
    let out = phonehome(&["analyze", pcap, "--json"]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["format"], "phonehome-report/1");
    assert_eq!(doc["source"], "capture");
    assert_eq!(doc["name"], "phone-lan.pcap");
    let mac = "02:00:00:00:77:02";
    assert!(doc["device_owners"][mac]
        .as_array()
        .is_some_and(|o| !o.is_empty()));
    assert_eq!(doc["phone_home"][mac]["maker"], "Xiaomi");
    assert!(!doc["series"]["lines"].as_array().unwrap().is_empty());
    let path = scratch("capture.json");
    std::fs::write(&path, &out.stdout).unwrap();
    let out = phonehome(&["report", "--from", path.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("<!doctype html>"));
}
