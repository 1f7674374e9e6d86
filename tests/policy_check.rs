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
    // (arguments, action, deciding rule)
    let cases: [(&[&str], &str, Option<&str>); 6] = [
        // First match wins over the later night rule.
        (
            &[
                "--device",
                "kid",
                "--name",
                "www.google.com",
                "--time",
                "Tue 23:30",
            ],
            "allow",
            Some("schoolwork"),
        ),
        (
            &[
                "--device",
                "kid",
                "--name",
                "tracking.miui.com",
                "--time",
                "Tue 23:30",
            ],
            "reject",
            Some("night"),
        ),
        (
            &[
                "--device",
                "kid",
                "--name",
                "tracking.miui.com",
                "--time",
                "Tue 12:00",
            ],
            "block",
            Some("default:lockdown"),
        ),
        // The laptop: no default, the ads rule needs port 443.
        (
            &[
                "--device",
                "laptop",
                "--name",
                "doubleclick.net",
                "--port",
                "443",
            ],
            "block",
            Some("ads"),
        ),
        (
            &[
                "--device",
                "laptop",
                "--name",
                "doubleclick.net",
                "--port",
                "80",
            ],
            "allow",
            None,
        ),
        (
            &[
                "--device",
                "02:00:00:00:77:03",
                "--ip",
                "9.9.9.9",
                "--port",
                "853",
            ],
            "reject",
            Some("block_dot"),
        ),
    ];
    let answers: Vec<serde_json::Value> = cases.iter().map(|(args, _, _)| check(args)).collect();
    for ((args, action, rule), v) in cases.iter().zip(&answers) {
        assert_eq!(
            (v["action"].as_str(), v["rule"].as_str()),
            (Some(*action), *rule),
            "{args:?}"
        );
    }
    assert_eq!(answers[0]["rule_line"], 16);
    assert_eq!(answers[2]["owner"], "Xiaomi");
    assert_eq!(answers[2]["dns_sinkholed"], true);
    assert_eq!(
        answers[3]["dns_sinkholed"], false,
        "a port rule cannot be judged from DNS"
    );
}

#[test]
fn unknown_device_is_a_usage_error() {
    let out = policy_check("usage", &["--device", "nobody", "--name", "x.example"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no device named 'nobody'"));
}

/// A router's config names its socket's group; the PC checking it has no
/// such group. `policy check` answers all the same (the group is the
/// router's business), and the daemon itself refuses to start on it, with
/// the line, as it did before the check moved out of the parser.
#[test]
fn a_router_group_the_pc_lacks_is_the_daemons_to_refuse() {
    let dir = std::env::temp_dir().join(format!("phonehome-pc-groups-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("phonehome");
    let text = format!(
        "config phonehome 'main'\n\toption socket '{}'\n\toption socket_group 'no-such-group-on-this-pc'\n\n\
         config rule 'ads'\n\tlist category 'advertising'\n\toption action 'block'\n",
        dir.join("sock").display()
    );
    std::fs::write(&cfg, text).unwrap();
    let bin = env!("CARGO_BIN_EXE_phonehome");
    let out = Command::new(bin)
        .args(["policy", "check", "-c"])
        .arg(&cfg)
        .args([
            "--device",
            "02:00:00:00:77:02",
            "--name",
            "doubleclick.net",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["action"], "block");
    let out = Command::new(bin)
        .arg("run")
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{}:3: socket_group: no group 'no-such-group-on-this-pc'",
            cfg.display()
        )),
        "{err}"
    );
    // The init script renders the kernel rules with the config before it
    // restarts the daemon: that fails the same way, so a reload stops
    // with the old daemon running instead of a restart into nothing.
    let out = Command::new(bin)
        .args(["firewall", "print", "--backend", "fw4", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("socket_group: no group 'no-such-group-on-this-pc'"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
