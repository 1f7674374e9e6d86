//! The fleet view end to end (issue 17): the daemon's `metrics --out`
//! passes Prometheus's own `promtool check metrics`, node-exporter's
//! textfile collector serves it, a real Prometheus server scrapes it and
//! answers a per-owner query over its HTTP API, and the example alert
//! (docs/prometheus/phonehome-alerts.yml) fires when the phone reaches a
//! company it never contacted before. The same first contact arrives as
//! a `watch --new-owners` event and runs `option on_new_owner`. Traffic
//! goes over IPv4 and IPv6 alike. Same namespace network as tests/e2e.rs;
//! Debian's prometheus and prometheus-node-exporter (scripts/install-deps).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn tool(name: &str) -> &str {
    assert!(
        Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success()),
        "{name} is missing: run scripts/install-deps (Debian's prometheus, prometheus-node-exporter)"
    );
    name
}

/// A Prometheus HTTP API answer (`/api/v1/...`), asked from the router
/// namespace where the server listens.
fn api(net: &Net, path: &str, query: Option<&str>) -> Value {
    let arg = query.map_or(String::new(), |q| {
        format!("--data-urlencode 'query={}'", q.replace('\'', "'\\''"))
    });
    let out = net.sh(
        &net.router,
        &format!("curl -s --max-time 5 -G {arg} http://127.0.0.1:9090{path}"),
    );
    serde_json::from_str(&out).unwrap_or(Value::Null)
}

/// Polls `check` for up to `secs` seconds; panics with `what` and the last
/// answer when it never holds.
fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match check() {
            Ok(()) => return,
            Err(last) if Instant::now() > deadline => panic!("{what}: {last}"),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

fn write_metrics(net: &Net, file: &Path) {
    let out = net.cli(&["metrics", "--out", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "needs root and network namespaces"]
fn prometheus_scrapes_the_metrics_and_the_new_owner_alert_fires() {
    let (promtool, prometheus, exporter) = (
        tool("promtool"),
        tool("prometheus"),
        tool("prometheus-node-exporter"),
    );
    let Some(mut net) = ({
        if !can_run() {
            None
        } else {
            let mut net = Net::new();
            net.start_wan_services();
            let hook = net.dir.join("on-new-owner.sh");
            let hook_out = net.dir.join("new-owners.txt");
            std::fs::write(
                &hook,
                format!(
                    "#!/bin/sh\necho \"$1|$2|$3|$4\" >> {}\n",
                    hook_out.display()
                ),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
            net.start_daemon(
                &format!(
                    "config phonehome 'hook'\n\toption on_new_owner '{}'\n\n\
                     config device\n\toption mac '{PHONE_MAC}'\n\toption name 'phone'\n\n{REJECT_XIAOMI}",
                    hook.display()
                ),
                false,
            );
            Some(net)
        }
    }) else {
        return;
    };
    // First traffic: Google over IPv4, Xiaomi (rejected) over IPv6.
    assert!(net.curl("https://www.google.com/", GOOGLE_IP, 5.0));
    assert!(!net.curl("https://tracking.miui.com/", XIAOMI_IP6, 3.0));

    // The metrics pass promtool's lint.
    let textfiles = net.dir.join("textfile");
    std::fs::create_dir_all(&textfiles).unwrap();
    let prom = textfiles.join("phonehome.prom");
    write_metrics(&net, &prom);
    let check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&prom).unwrap())
        .output()
        .unwrap();
    assert!(
        check.status.success() && check.stdout.is_empty() && check.stderr.is_empty(),
        "promtool check metrics: {}{}\n{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr),
        std::fs::read_to_string(&prom).unwrap()
    );

    // node-exporter's textfile collector, and Prometheus scraping it every
    // second with the example rules loaded.
    let router = net.router.clone();
    let collector_dir = format!("--collector.textfile.directory={}", textfiles.display());
    net.spawn(
        "node-exporter",
        &router,
        &[
            exporter,
            "--web.listen-address=127.0.0.1:9100",
            "--collector.disable-defaults",
            "--collector.textfile",
            &collector_dir,
        ],
    );
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/prometheus/phonehome-alerts.yml");
    let config = net.dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:9100']\n",
            rules.display()
        ),
    )
    .unwrap();
    let config_arg = format!("--config.file={}", config.display());
    let tsdb_arg = format!("--storage.tsdb.path={}", net.dir.join("tsdb").display());
    net.spawn(
        "prometheus",
        &router,
        &[
            prometheus,
            &config_arg,
            &tsdb_arg,
            "--web.listen-address=127.0.0.1:9090",
        ],
    );

    // A per-owner series, as the CLI counts it.
    let google_flows = net
        .cli_json(&["owners"])
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["owner"] == "Google")
        .map(|r| r["flows"].as_u64().unwrap())
        .expect("Google in owners");
    eventually(60, "Prometheus never had the Google series", || {
        let v = api(
            &net,
            "/api/v1/query",
            Some("phonehome_owner_flows_total{owner=\"Google\"}"),
        );
        let got = v["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_string);
        match got {
            Some(n) if n == google_flows.to_string() => Ok(()),
            _ => Err(format!(
                "{v}\n{}\n{}",
                net.log("prometheus"),
                net.log("node-exporter")
            )),
        }
    });
    let blocked = api(
        &net,
        "/api/v1/query",
        Some("phonehome_owner_blocked_total{owner=\"Xiaomi\"}"),
    );
    assert_eq!(blocked["data"]["result"][0]["value"][1], "1", "{blocked}");
    // No first contact yet in the window: the alert is quiet.
    let rules_state = api(&net, "/api/v1/rules", None);
    assert!(
        rules_state.to_string().contains("PhonehomeNewOwner"),
        "the example rules are loaded: {rules_state}"
    );
    let firing = |net: &Net| api(net, "/api/v1/alerts", None)["data"]["alerts"].clone();
    assert!(
        !firing(&net).to_string().contains("PhonehomeNewOwner"),
        "{}",
        firing(&net)
    );

    // A first contact: the phone reaches Alibaba Cloud (IPv6) and an
    // unknown owner (IPv4), watched as it happens.
    let sock = net.socket.to_str().unwrap().to_string();
    let bin = bin();
    net.spawn(
        "watch",
        &router,
        &[
            bin.to_str().unwrap(),
            "--socket",
            &sock,
            "watch",
            "--new-owners",
            "--json",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(net.curl("https://oss.aliyuncs.com/", ALIYUN_IP6, 5.0));
    assert!(net.curl("https://files.example.org/", NEUTRAL_IP, 5.0));
    write_metrics(&net, &prom);
    eventually(60, "the new-owner alert never fired", || {
        let alerts = firing(&net);
        let ours = alerts
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["labels"]["alertname"] == "PhonehomeNewOwner");
        match ours {
            Some(a) if a["labels"]["device"] == PHONE_MAC && a["labels"]["hostname"] == "phone" => {
                Ok(())
            }
            _ => Err(alerts.to_string()),
        }
    });

    // The watch stream named the first contacts, and nothing else.
    eventually(10, "watch --new-owners", || {
        let log = net.log("watch");
        if log.contains("\"owner\":\"Alibaba Cloud\"") {
            Ok(())
        } else {
            Err(log)
        }
    });
    let log = net.log("watch");
    for line in log.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["new_owner"]["owner"].is_string(), "{line}");
        assert_eq!(v["new_owner"]["device"], PHONE_MAC, "{line}");
    }
    assert!(!log.contains("Google"), "Google was not new: {log}");
    // The hook ran with device, owner, category and name, off the packet
    // path (the connection above went through while it ran).
    let hook_out = net.dir.join("new-owners.txt");
    eventually(15, "the on_new_owner hook", || {
        let text = std::fs::read_to_string(&hook_out).unwrap_or_default();
        if text.contains(&format!("{PHONE_MAC}|Alibaba Cloud|cloud|oss.aliyuncs.com")) {
            Ok(())
        } else {
            Err(text)
        }
    });
    let status = net.cli_json(&["status"]);
    assert!(status["new_owners"].as_u64().unwrap() >= 4, "{status}");
    let devices = net.cli_json(&["devices"]);
    assert!(devices[0]["new_owners"].as_u64().unwrap() >= 4, "{devices}");
}

/// The example rules pass `promtool check rules`, and their unit tests
/// (the alert fires on a first contact and only then, the stale-file
/// alert after ten minutes) pass `promtool test rules`.
#[test]
fn the_example_alert_rules_check_and_pass_their_unit_tests() {
    let promtool = tool("promtool");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for args in [
        vec!["check", "rules", "docs/prometheus/phonehome-alerts.yml"],
        vec!["test", "rules", "tests/fixtures/prometheus/alerts.test.yml"],
    ] {
        let out = Command::new(promtool)
            .args(&args)
            .current_dir(root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
