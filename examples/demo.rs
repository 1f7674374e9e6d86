//! The demo: builds the test network of docs/ARCHITECTURE.md (phone — router — wan),
//! runs the daemon in the router with a policy that blocks Xiaomi
//! telemetry and ads, lets the phone do what phones do, and prints what
//! phonehome saw, with an owner database that places the wan's addresses
//! in countries (the demo's own iptoasn rows: Xiaomi's server on Alibaba
//! Cloud in China, Alibaba Cloud's in Singapore, Google's in the US). Run
//! as root: `scripts/demo` (README).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;

fn main() {
    if !is_root() {
        eprintln!("demo: needs root (network namespaces and netfilter rules)");
        std::process::exit(2);
    }
    let mut net = Net::new();
    net.start_wan_services();
    net.start_router_dns();
    let rows = net.dir.join("demo-ip2asn.tsv");
    std::fs::write(
        &rows,
        "203.0.113.0\t203.0.113.15\t45102\tCN\tALIBABA-CN-NET Alibaba US Technology Co., Ltd.\n\
         203.0.113.16\t203.0.113.23\t15169\tUS\tGOOGLE - Google LLC\n\
         203.0.113.40\t203.0.113.47\t45102\tSG\tALIBABA-CN-NET Alibaba US Technology Co., Ltd.\n",
    )
    .expect("write the demo's iptoasn rows");
    let db = net.dir.join("owners.db");
    compile_owner_db(&db, &[format!("iptoasn:{}", rows.display())]);
    net.start_daemon(
        &format!(
            "config phonehome 'main'\n\toption db '{}'\n\
             config rule 'no_xiaomi_tracking'\n\toption device 'phone'\n\toption owner 'Xiaomi'\n\toption action 'block'\n",
            db.display()
        ),
        false,
    );
    // tcpdump on the router's LAN side sees the same traffic, for
    // `phonehome analyze` at the end.
    let pcap = net.start_lan_capture("lan.pcap");
    println!("== the phone connects: names from SNI/Host only, then via dnsmasq on the router");
    // (name, https or http, address when the phone skips DNS)
    struct Step {
        name: &'static str,
        https: bool,
        without_dns: Option<&'static str>,
    }
    let steps = [
        Step {
            name: "api.ad.xiaomi.com",
            https: true,
            without_dns: Some(XIAOMI_IP),
        },
        Step {
            name: "data.mistat.xiaomi.com",
            https: false,
            without_dns: Some(XIAOMI_IP),
        },
        Step {
            name: "oss.aliyuncs.com",
            https: true,
            without_dns: Some(ALIYUN_IP),
        },
        Step {
            name: "www.google.com",
            https: true,
            without_dns: None,
        },
        Step {
            name: "www.google-analytics.com",
            https: true,
            without_dns: None,
        },
        Step {
            name: "cdn.innocent.test",
            https: false,
            without_dns: None,
        },
        Step {
            name: "files.example.org",
            https: false,
            without_dns: None,
        },
    ];
    for step in &steps {
        let ip = match step.without_dns {
            Some(ip) => ip.to_string(),
            None => {
                let answer = net.dig(ROUTER_LAN_IP, step.name);
                println!(
                    "   dig  {:<26} -> {}",
                    step.name,
                    answer.trim().replace('\n', " ")
                );
                answer.lines().last().unwrap_or_default().to_string()
            }
        };
        let scheme = if step.https { "https" } else { "http" };
        let url = format!("{scheme}://{}/", step.name);
        let ok = net.curl(&url, &ip, 2.0);
        println!(
            "   curl {url:<36} {}",
            if ok { "fetched" } else { "BLOCKED (timed out)" }
        );
    }
    for cmd in [
        &["status"][..],
        &["devices"],
        &["owners"],
        &["flows"],
        &["top", "--by", "country"],
    ] {
        println!("\n== phonehome {}", cmd.join(" "));
        let out = net.cli(cmd);
        print!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The page a person opens instead of reading the tables.
    let page = std::env::current_dir()
        .unwrap()
        .join("target/phonehome-report.html");
    let out = net.cli(&["report", "--out", page.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "phonehome report: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "\n== phonehome report --out {}\n   open it in a browser: which companies the phone talked to, what was blocked, when",
        page.display()
    );
    println!("\n== queued packets in total: {}", net.queued_packets());
    net.stop_lan_capture();
    let config = net.config_path();
    println!("\n== the same traffic from tcpdump on the router's LAN side: phonehome analyze lan.pcap -c CONFIG --flows");
    let out = std::process::Command::new(bin())
        .arg("analyze")
        .arg(&pcap)
        .arg("-c")
        .arg(&config)
        .arg("--flows")
        .output()
        .expect("phonehome analyze");
    print!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The capture's report: the same document, from analyze --json.
    let document = net.dir.join("lan.json");
    let capture_page = std::env::current_dir()
        .unwrap()
        .join("target/phonehome-capture-report.html");
    let json = std::process::Command::new(bin())
        .arg("analyze")
        .arg(&pcap)
        .arg("-c")
        .arg(&config)
        .arg("--json")
        .output()
        .expect("phonehome analyze --json");
    std::fs::write(&document, &json.stdout).unwrap();
    let out = std::process::Command::new(bin())
        .args(["report", "--from"])
        .arg(&document)
        .arg("--out")
        .arg(&capture_page)
        .output()
        .expect("phonehome report --from");
    assert!(
        out.status.success(),
        "phonehome report --from: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "\n== phonehome analyze lan.pcap --json > lan.json; phonehome report --from lan.json --out {}",
        capture_page.display()
    );
    if std::env::var_os("PHONEHOME_KEEP").is_some() {
        println!("state kept in {}", net.dir.display());
    }
}
