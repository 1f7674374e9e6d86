//! `phonehome policy check`: explains which rule a device's connection
//! hits, from the config file alone (no daemon, no root).

use std::process::Command;

const CONFIG: &str = "\
config phonehome 'main'
\toption block_dot '1'

config group 'lockdown'
\toption default 'block'

config device
\toption mac '02:00:00:00:77:02'
\toption name 'kid'
\tlist group 'lockdown'

config device
\toption mac '02:00:00:00:77:03'
\toption name 'laptop'

config rule 'schoolwork'
\toption device 'lockdown'
\tlist owner 'Google'
\toption action 'allow'

config rule 'night'
\toption device 'kid'
\toption start_time '22:00'
\toption stop_time '07:00'
\toption action 'reject'

config rule 'ads'
\tlist category 'advertising'
\toption port '443'
\toption action 'block'
";

/// Runs `phonehome policy check -c CONFIG ARGS...` (CONFIG written to a
/// directory of its own per test, so tests may run in parallel).
fn policy_check(tag: &str, args: &[&str]) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!(
        "phonehome-policy-check-{tag}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("phonehome");
    std::fs::write(&cfg, CONFIG).unwrap();
    Command::new(env!("CARGO_BIN_EXE_phonehome"))
        .args(["policy", "check", "-c"])
        .arg(&cfg)
        .args(args)
        .output()
        .unwrap()
}

fn check(args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = policy_check("json", &all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn explains_rules_defaults_schedules_and_the_sinkhole() {
    let v = check(&[
        "--device",
        "kid",
        "--name",
        "www.google.com",
        "--time",
        "Tue 23:30",
    ]);
    assert_eq!(
        (v["action"].as_str(), v["rule"].as_str()),
        (Some("allow"), Some("schoolwork"))
    );
    assert_eq!(
        v["rule_line"], 16,
        "first match wins over the later night rule"
    );
    let v = check(&[
        "--device",
        "kid",
        "--name",
        "tracking.miui.com",
        "--time",
        "Tue 23:30",
    ]);
    assert_eq!(
        (v["action"].as_str(), v["rule"].as_str()),
        (Some("reject"), Some("night"))
    );
    let v = check(&[
        "--device",
        "kid",
        "--name",
        "tracking.miui.com",
        "--time",
        "Tue 12:00",
    ]);
    assert_eq!(
        (v["action"].as_str(), v["rule"].as_str()),
        (Some("block"), Some("default:lockdown"))
    );
    assert_eq!(v["owner"], "Xiaomi");
    assert_eq!(v["dns_sinkholed"], true);
    // The laptop: no default, the ads rule needs port 443.
    let v = check(&[
        "--device",
        "laptop",
        "--name",
        "doubleclick.net",
        "--port",
        "443",
    ]);
    assert_eq!(
        (v["action"].as_str(), v["rule"].as_str()),
        (Some("block"), Some("ads"))
    );
    assert_eq!(
        v["dns_sinkholed"], false,
        "a port rule cannot be judged from DNS"
    );
    let v = check(&[
        "--device",
        "laptop",
        "--name",
        "doubleclick.net",
        "--port",
        "80",
    ]);
    assert_eq!(v["action"], "allow");
    let v = check(&[
        "--device",
        "02:00:00:00:77:03",
        "--ip",
        "9.9.9.9",
        "--port",
        "853",
    ]);
    assert_eq!(
        (v["action"].as_str(), v["rule"].as_str()),
        (Some("reject"), Some("block_dot"))
    );
}

#[test]
fn unknown_device_is_a_usage_error() {
    let out = policy_check("usage", &["--device", "nobody", "--name", "x.example"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no device named 'nobody'"));
}
