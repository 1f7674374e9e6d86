//! End-to-end tests of the summaries (issue 6): time ranges, diff,
//! persistence across restarts, a corrupt state file, access control and
//! hostile clients on the socket. Same namespace network as tests/e2e.rs.

mod common;

use common::*;
use serde_json::Value;

fn state_config(net: &Net) -> String {
    format!(
        "config phonehome 'state'\n\toption state '{}'\n\toption state_tmp '{}'\n",
        net.dir.join("flash/state").display(),
        net.dir.join("tmpfs/state").display()
    )
}

fn owners(net: &Net, args: &[&str]) -> Vec<(String, u64)> {
    let mut all = vec!["owners"];
    all.extend_from_slice(args);
    let v = net.cli_json(&all);
    let mut rows: Vec<(String, u64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["owner"].as_str().unwrap().to_string(),
                r["flows"].as_u64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[test]
#[ignore = "needs root and network namespaces"]
fn restart_keeps_yesterdays_counts_and_diff_names_what_changed() {
    if !can_run() {
        return;
    }
    let mut net = Net::new();
    net.start_wan_services();
    yesterdays_state(&net.dir.join("flash/state"));
    let config = state_config(&net);
    net.start_daemon(&config, false);
    let y = |s: &str| s.to_string();
    assert_eq!(
        owners(&net, &["--since", "2d", "--until", "20h"]),
        vec![(y("Meta"), 5), (y("Xiaomi"), 3)],
        "yesterday, from the state file"
    );
    // Today: Google.
    net.dig(WAN_DNS, "www.google.com");
    assert!(net.curl("https://www.google.com/", GOOGLE_IP, 5.0));
    assert!(owners(&net, &["--since", "1h"])
        .iter()
        .any(|(o, _)| o == "Google"));

    // Restart (SIGTERM writes the state): yesterday's and today's counts stay.
    net.signal("daemon", "TERM");
    net.start_daemon_process();
    assert_eq!(
        owners(&net, &["--since", "2d", "--until", "20h"]),
        vec![(y("Meta"), 5), (y("Xiaomi"), 3)]
    );
    let today = owners(&net, &["--since", "1h"]);
    assert!(today.iter().any(|(o, _)| o == "Google"), "{today:?}");

    // What changed between yesterday and the last hour.
    let diff = net.cli_json(&[
        "diff", "--device", PHONE_MAC, "--before", "2d..20h", "--after", "1h..now",
    ]);
    let change = |owner: &str| -> String {
        diff.as_array()
            .unwrap()
            .iter()
            .find(|c| c["owner"] == owner)
            .map(|c| c["change"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(change("Google"), "appeared", "{diff:#}");
    assert_eq!(change("Xiaomi"), "vanished", "{diff:#}");
    assert_eq!(change("Meta"), "vanished");
    let table = String::from_utf8(
        net.cli(&[
            "diff", "--device", PHONE_MAC, "--before", "2d..20h", "--after", "1h..now",
        ])
        .stdout,
    )
    .unwrap();
    assert!(
        table.contains("appeared") && table.contains("Google"),
        "{table}"
    );
    // Prometheus text for node-exporter's textfile collector.
    let prom = net.dir.join("phonehome.prom");
    assert!(net
        .cli(&["metrics", "--out", prom.to_str().unwrap()])
        .status
        .success());
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(text.contains("phonehome_up{"), "{text}");
    assert!(
        text.contains("phonehome_owner_flows_total{owner=\"Meta\",category=\"telemetry\"} 5\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "phonehome_device_flows_total{{device=\"{PHONE_MAC}\",mac=\"{PHONE_MAC}\",hostname=\"phone\"}}"
        )),
        "{text}"
    );
    // top: the busiest owners over two days, by bytes.
    let top: Value = net.cli_json(&["top", "--since", "2d", "-n", "2"]);
    assert_eq!(top.as_array().unwrap().len(), 2);
    assert_eq!(top[0]["owner"], "Meta", "{top:#}");
}

/// A download that spans a daemon restart (SIGTERM, then a new daemon):
/// one flow, and every byte of it counted, over IPv4 and IPv6.
#[test]
#[ignore = "needs root and network namespaces"]
fn a_download_across_a_restart_keeps_its_bytes() {
    if !can_run() {
        return;
    }
    let mut net = Net::new();
    net.start_wan_services();
    let config = state_config(&net);
    net.start_daemon(&config, false);
    for ip in [NEUTRAL_IP, NEUTRAL_IP6] {
        assert_eq!(
            net.dig_with(
                if ip.contains(':') { WAN_DNS6 } else { WAN_DNS },
                "files.example.org",
                if ip.contains(':') { "AAAA" } else { "A" },
                ""
            ),
            ip
        );
    }
    let phone = net.phone.clone();
    for (i, ip) in [NEUTRAL_IP, NEUTRAL_IP6].iter().enumerate() {
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        net.spawn(
            &format!("download-{i}"),
            &phone,
            &[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{size_download}",
                "--limit-rate",
                "1M",
                "--max-time",
                "20",
                "--resolve",
                &format!("files.example.org:80:{host}"),
                "http://files.example.org/10mb.bin",
            ],
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(3000));
    net.signal("daemon", "TERM");
    net.start_daemon_process();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !(net.log("download-0").contains("10485760")
        && net.log("download-1").contains("10485760"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "downloads: {} {}",
            net.log("download-0"),
            net.log("download-1")
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Two flows (not four: the restart made no new ones), all bytes.
    let flows = net.cli_json(&["flows"]);
    let downloads: Vec<_> = flows
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["dport"] == 80)
        .collect();
    assert_eq!(downloads.len(), 2, "{flows:#}");
    let v = net.cli_json(&["owners"]);
    let row = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["domains"]
                .as_array()
                .is_some_and(|d| d.iter().any(|x| x == "files.example.org"))
        })
        .cloned()
        .unwrap_or_default();
    // Its owner also holds the two DNS lookups (no name, no owner).
    assert_eq!(row["flows"], 4, "{v:#}");
    assert!(
        row["bytes_down"].as_u64().unwrap() >= 2 * (10 << 20),
        "{v:#}"
    );
    assert!(
        net.log("daemon").contains("live connections taken back"),
        "{}",
        net.log("daemon")
    );
}

#[test]
#[ignore = "needs root and network namespaces"]
fn corrupt_state_file_is_reported_and_skipped() {
    if !can_run() {
        return;
    }
    let mut net = Net::new();
    net.start_wan_services();
    let path = net.dir.join("flash/state");
    yesterdays_state(&path);
    // A torn write: the file cut in the middle.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let config = state_config(&net);
    net.start_daemon(&config, false);
    assert!(owners(&net, &[]).is_empty());
    let log = net.log("daemon");
    assert!(
        log.contains("state file skipped") && log.contains("flash/state"),
        "{log}"
    );
    // And the daemon works: it counts, and writes a good file at stop.
    net.dig(WAN_DNS, "www.google.com");
    assert!(net.curl("https://www.google.com/", GOOGLE_IP, 5.0));
    net.signal("daemon", "TERM");
    let (snap, _) = phonehome::report::state::load(&path).unwrap().unwrap();
    assert!(snap.pairs() >= 1);
}

/// Lets `nobody` reach the socket in this network's directory.
fn open_dir_to_nobody(net: &Net) {
    std::fs::set_permissions(
        &net.dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
}

/// Runs the CLI as `nobody` (uid and gid 65534, no other groups).
fn cli_as_nobody(net: &Net, args: &[&str]) -> std::process::Output {
    std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin())
        .arg("--socket")
        .arg(&net.socket)
        .args(args)
        .output()
        .expect("setpriv (util-linux)")
}

#[test]
#[ignore = "needs root and network namespaces"]
fn readers_read_and_only_root_or_the_admin_group_change_policy() {
    // nobody's primary group may connect (read), not reload.
    let Some(mut net) = network("config phonehome 'access'\n\toption socket_group 'nogroup'\n")
    else {
        return;
    };
    open_dir_to_nobody(&net);
    let status = cli_as_nobody(&net, &["status", "--json"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let reload = cli_as_nobody(&net, &["reload"]);
    assert!(!reload.status.success());
    let err = String::from_utf8_lossy(&reload.stderr);
    assert!(
        err.contains("permission denied") && err.contains("uid 65534"),
        "{err}"
    );
    assert!(net.cli(&["reload"]).status.success(), "root may");

    // With nogroup as the admin group, nobody may reload too.
    net.append_config("\toption admin_group 'nogroup'\n");
    net.signal("daemon", "TERM");
    net.start_daemon_process();
    let reload = cli_as_nobody(&net, &["reload"]);
    assert!(
        reload.status.success(),
        "{}",
        String::from_utf8_lossy(&reload.stderr)
    );
}

#[test]
#[ignore = "needs root and network namespaces"]
fn a_thousand_garbage_and_idle_clients_leave_the_daemon_answering() {
    use std::io::Write;
    let Some(net) = network("") else { return };
    let mut idle = Vec::new();
    for i in 0..1000 {
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(&net.socket) else {
            continue; // the listen backlog may refuse some: fine
        };
        match i % 4 {
            0 => {
                let _ = s.write_all(b"\xff\xff\xff\xff garbage");
            }
            1 => {
                let _ = s.write_all(b"\x00\x00\x00\x10half a frame");
                idle.push(s);
            }
            2 => {
                let _ = s.write_all(b"GET / HTTP/1.1\r\n\r\n");
            }
            _ => idle.push(s), // connects and says nothing
        }
    }
    // Hundreds of clients still connected and stalling: a real one gets in.
    let t = std::time::Instant::now();
    let status = net.cli_json(&["status"]);
    assert!(status["uptime_s"].is_u64());
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    drop(idle);
    assert!(net.cli_json(&["owners"]).is_array());
    // An older phonehome's query (protocol 2: `{"version": 2, "query":
    // "status"}`) is told why it gets nothing, not just hung up on.
    use std::io::Read;
    let body = b"\xa2\x67version\x02\x65query\x66status";
    let mut old = std::os::unix::net::UnixStream::connect(&net.socket).unwrap();
    old.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    old.write_all(body).unwrap();
    let mut len = [0u8; 4];
    old.read_exact(&mut len).unwrap();
    let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
    old.read_exact(&mut reply).unwrap();
    let response: phonehome::daemon::api::Response =
        phonehome::daemon::api::decode(&reply).unwrap();
    match response.reply {
        phonehome::daemon::api::Reply::Error { message } => assert!(
            message.contains("protocol version 2 not supported"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
#[ignore = "needs root and network namespaces"]
fn nfcapd_receives_the_ipfix_export() {
    if !can_run() {
        return;
    }
    let mut net = Net::new();
    net.start_wan_services();
    let router = net.router.clone();
    // Connections end (and are exported) a second after they close.
    net.sh(
        &router,
        "sysctl -q -w net.netfilter.nf_conntrack_tcp_timeout_time_wait=1",
    );
    let flows_dir = net.dir.join("nfcapd");
    std::fs::create_dir_all(&flows_dir).unwrap();
    net.spawn(
        "nfcapd",
        &router,
        &[
            "nfcapd",
            "-w",
            flows_dir.to_str().unwrap(),
            "-b",
            "127.0.0.1",
            "-p",
            "4739",
            "-t",
            "60",
        ],
    );
    net.wait_for(&router, "ss -lun | grep -q '127.0.0.1:4739 '");
    net.start_daemon(
        "config phonehome 'export'\n\toption ipfix_collector '127.0.0.1:4739'\n",
        false,
    );
    net.dig(WAN_DNS, "files.example.org");
    let out = net.sh(
        &net.phone,
        &format!(
            "curl -s -o /dev/null -w '%{{local_port}}' --local-port 41000-41999 \
             --resolve files.example.org:80:{NEUTRAL_IP} http://files.example.org/10mb.bin"
        ),
    );
    let port: u16 = out.trim().parse().unwrap();
    // Wait until the daemon has seen the connection end (then exported it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let flows = net.cli_json(&["flows"]);
        let done = flows
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["sport"] == port && f["proto"] == "tcp" && f["active"] == false);
        if done {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "connection never ended: {flows:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // nfcapd writes its file when it stops.
    net.signal("nfcapd", "TERM");
    let dump = std::process::Command::new("nfdump")
        .args([
            "-R",
            flows_dir.to_str().unwrap(),
            "-q",
            "-o",
            "fmt:%pr|%sa|%sp|%da|%dp|%pkt|%byt|%ismc|%idmc",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&dump.stdout);
    eprintln!("nfdump:\n{text}{}", String::from_utf8_lossy(&dump.stderr));
    let rows: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split('|').map(|f| f.trim().to_string()).collect())
        .collect();
    let find = |sa: &str, sp: u16| {
        rows.iter()
            .find(|r| r.len() == 9 && r[1] == sa && r[2] == sp.to_string())
            .unwrap_or_else(|| panic!("no flow from {sa}:{sp} in:\n{text}"))
            .clone()
    };
    let up = find(PHONE_IP, port);
    // The phone's MAC: source MAC of what it sent (IE 56), destination MAC
    // of what it received (IE 80).
    assert_eq!(up[7], PHONE_MAC);
    assert_eq!(
        (up[0].as_str(), up[3].as_str(), up[4].as_str()),
        ("TCP", NEUTRAL_IP, "80")
    );
    let down = find(NEUTRAL_IP, 80);
    assert_eq!(
        (down[3].as_str(), down[4].as_str()),
        (PHONE_IP, port.to_string().as_str())
    );
    assert_eq!(down[8], PHONE_MAC);
    // nfdump prints large counts scaled ("10.5 M"): the download is there.
    let bytes = |s: &str| -> f64 {
        let mut it = s.split_whitespace();
        let n: f64 = it.next().unwrap().parse().unwrap();
        match it.next() {
            Some("M") => n * 1e6,
            Some("K") => n * 1e3,
            Some("G") => n * 1e9,
            _ => n,
        }
    };
    assert!(bytes(&down[6]) >= 10.0e6, "{down:?}");
    assert!(bytes(&up[6]) > 0.0 && bytes(&up[6]) < 1.0e6, "{up:?}");
}

/// `watch` streams count against the client limit and are evicted like
/// idle clients, oldest first: 70 of them (as nobody) lock no one out, and
/// root always gets in.
#[test]
#[ignore = "needs root and network namespaces"]
fn watch_streams_lock_no_one_out() {
    let Some(mut net) = network("config phonehome 'access'\n\toption socket_group 'nogroup'\n")
    else {
        return;
    };
    open_dir_to_nobody(&net);
    let (bin, socket) = (bin(), net.socket.clone());
    let router = net.router.clone();
    for i in 0..70 {
        net.spawn(
            &format!("watch-{i}"),
            &router,
            &[
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                bin.to_str().unwrap(),
                "--socket",
                socket.to_str().unwrap(),
                "watch",
            ],
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = cli_as_nobody(&net, &["status", "--json"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let reload = net.cli(&["reload"]);
    assert!(
        reload.status.success(),
        "root: {}",
        String::from_utf8_lossy(&reload.stderr)
    );
}

#[test]
#[ignore = "needs root and network namespaces"]
fn watch_streams_decisions_as_they_happen() {
    let Some(mut net) = network(REJECT_XIAOMI) else {
        return;
    };
    let router = net.router.clone();
    let (bin, socket) = (bin(), net.socket.clone());
    net.spawn(
        "watch",
        &router,
        &[
            bin.to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
            "watch",
            "--json",
            "--blocked",
        ],
    );
    net.spawn(
        "watch-all",
        &router,
        &[
            bin.to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
            "watch",
        ],
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    net.dig(WAN_DNS, "tracking.miui.com");
    net.dig(WAN_DNS, "www.google.com");
    assert!(!net.curl("https://tracking.miui.com/", XIAOMI_IP, 3.0));
    assert!(net.curl("https://www.google.com/", GOOGLE_IP, 5.0));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !net.log("watch-all").contains("www.google.com") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            net.log("watch-all")
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let blocked: Vec<Value> = net
        .log("watch")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert_eq!(
        (
            blocked[0]["domain"].as_str(),
            blocked[0]["verdict"].as_str(),
            blocked[0]["rule"].as_str()
        ),
        (Some("tracking.miui.com"), Some("reject"), Some("xiaomi"))
    );
    let all = net.log("watch-all");
    assert!(
        all.contains("tracking.miui.com Xiaomi (telemetry) reject [xiaomi]"),
        "{all}"
    );
    assert!(all.contains("www.google.com Google"), "{all}");
}
