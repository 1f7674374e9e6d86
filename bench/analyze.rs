//! Classification throughput offline: `phonehome analyze` against Debian's
//! `ndpiReader` (nDPI 4.2, libndpi-bin) on the same capture, measured in
//! the same run, alternating over several rounds (medians of wall time,
//! each process from start to exit, output written).
//!
//! The capture is real traffic made here on the test network and taken by
//! tcpdump on the router's LAN side, offloads off so packets are
//! MTU-sized as on a real LAN:
//! - names: every domain-like string in libndpi's host list and every
//!   domain of phonehome's built-in table (so both tools have names they
//!   know), each served by openssl s_server (curl --resolve, SNI);
//! - half of them looked up first (dig against a dnsmasq in wan that
//!   answers them all), as a phone does before connecting;
//! - every name also once over plain HTTP (Host header);
//! - bulk downloads (10 MB each) for the packet volume.
//!
//! phonehome runs with the owner database a user would compile: its
//! built-in table plus the real WhoTracks.me dump (../shared/data).
//!
//! Prints packets/s of each and phonehome ÷ ndpiReader, and the agreement
//! of owner labels on the flows both name. nDPI labels applications
//! ("TLS.Google", "HTTP.Facebook"); `NDPI_OWNERS` maps each app label to
//! the company behind it (e.g. Instagram → Meta, GitHub → Microsoft); app
//! labels it does not map, bare protocols (TLS, HTTP) and DNS flows (nDPI
//! names the question, phonehome the resolver's owner) are not compared.
//!
//! Labels agree when nDPI's company is phonehome's owner or the company
//! that owner belongs to (its `parent`: Twitch is Amazon's).
//!
//! With `PHONEHOME_BASELINE_BIN=PATH` (another phonehome build, e.g. the
//! commit before a change) that binary is timed too, in the same rounds
//! on the same capture, and the ratio of the two is printed.
//!
//! Run as root: `cargo bench --bench analyze` (ROUNDS=7 HTTPS_ROUNDS=5
//! BULK=10).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use common::*;

/// nDPI 4.2 application labels → the company that owns them, spelt as
/// phonehome's owner database spells it. Compared case-insensitively.
const NDPI_OWNERS: &[(&str, &str)] = &[
    ("Google", "Google"),
    ("GoogleServices", "Google"),
    ("GooglePlus", "Google"),
    ("GMail", "Google"),
    ("GoogleMaps", "Google"),
    ("GoogleDocs", "Google"),
    ("GoogleDrive", "Google"),
    ("GoogleClassroom", "Google"),
    ("GoogleHangoutDuo", "Google"),
    ("YouTube", "Google"),
    ("YouTubeUpload", "Google"),
    ("PlayStore", "Google"),
    ("Crashlytics", "Google"),
    ("Waze", "Google"),
    ("Facebook", "Meta"),
    ("FacebookVoip", "Meta"),
    ("Messenger", "Meta"),
    ("Instagram", "Meta"),
    ("WhatsApp", "Meta"),
    ("WhatsAppCall", "Meta"),
    ("WhatsAppFiles", "Meta"),
    ("Microsoft", "Microsoft"),
    ("Microsoft365", "Microsoft"),
    ("MS_OneDrive", "Microsoft"),
    ("Hotmail", "Microsoft"),
    ("Skype_Teams", "Microsoft"),
    ("SkypeCall", "Microsoft"),
    ("Teams", "Microsoft"),
    ("Xbox", "Microsoft"),
    ("Azure", "Microsoft"),
    ("WindowsUpdate", "Microsoft"),
    ("LinkedIn", "Microsoft"),
    ("Github", "Microsoft"),
    ("Apple", "Apple"),
    ("AppleiCloud", "Apple"),
    ("AppleiTunes", "Apple"),
    ("AppleStore", "Apple"),
    ("ApplePush", "Apple"),
    ("AppleSiri", "Apple"),
    ("iCloudPrivateRelay", "Apple"),
    ("Amazon", "Amazon"),
    ("AmazonVideo", "Amazon"),
    ("AmazonAlexa", "Amazon"),
    ("Twitch", "Amazon"),
    ("AmazonAWS", "Amazon AWS"),
    ("TikTok", "ByteDance"),
    ("QQ", "Tencent"),
    ("QQLive", "Tencent"),
    ("WeChat", "Tencent"),
    ("Alibaba", "Alibaba"),
    ("Twitter", "X"),
    ("Snapchat", "Snap"),
    ("SnapchatCall", "Snap"),
    ("Cloudflare", "Cloudflare"),
    ("Yahoo", "Yahoo"),
    ("Tumblr", "Automattic"),
    ("NetFlix", "Netflix"),
    ("Spotify", "Spotify"),
    ("Dropbox", "Dropbox"),
    ("eBay", "eBay"),
    ("Pinterest", "Pinterest"),
    ("Reddit", "Reddit"),
    ("Zoom", "Zoom"),
    ("Telegram", "Telegram"),
    ("Signal", "Signal"),
    ("Discord", "Discord"),
    ("Steam", "Valve"),
    ("Slack", "Salesforce"),
    ("Salesforce", "Salesforce"),
    ("Webex", "Cisco"),
    ("DisneyPlus", "Disney"),
    ("Hulu", "Disney"),
    ("Wikipedia", "Wikimedia"),
    ("Vimeo", "Vimeo"),
    ("Deezer", "Deezer"),
    ("Viber", "Rakuten"),
    ("KakaoTalk", "Kakao"),
    ("Likee", "JOYY"),
    ("Badoo", "Bumble"),
    ("AccuWeather", "AccuWeather"),
    ("Bloomberg", "Bloomberg"),
    ("CNN", "Warner Bros. Discovery"),
    ("Sina(Weibo)", "Sina"),
    ("TeamViewer", "TeamViewer"),
    ("AnyDesk", "AnyDesk"),
    ("Ookla", "Ookla"),
    ("Playstation", "Sony"),
    ("Nintendo", "Nintendo"),
    ("Activision", "Microsoft"),
    ("GenshinImpact", "miHoYo"),
];

const TLDS: &[&str] = &[
    "com", "net", "org", "io", "tv", "cn", "me", "co", "fm", "gl", "ru", "jp", "de", "uk", "info",
    "app", "be", "ly", "us", "to", "ai", "cc",
];

/// Each name gets its own server address in wan, as distinct services
/// mostly have (so a DNS answer names one service's address).
fn server_of(i: usize) -> String {
    format!("100.64.{}.{}", i / 250, i % 250 + 1)
}
/// A second resolver in wan that answers every benchmark name.
const BENCH_DNS: &str = "198.51.100.54";

/// Domain-like strings in a binary (nDPI's host match list lives in
/// libndpi's read-only data): NUL-bounded runs of [a-z0-9.-], a leading
/// dot (suffix match) dropped, ending in a common TLD.
fn domains_in(binary: &[u8]) -> BTreeSet<String> {
    binary
        .split(|&b| b == 0)
        .filter_map(|run| std::str::from_utf8(run).ok())
        .map(|s| s.trim_start_matches('.'))
        .filter(|s| {
            s.len() >= 5
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
                && !s.contains("..")
                && !s.starts_with('-')
                && s.rsplit_once('.')
                    .is_some_and(|(head, tld)| !head.is_empty() && TLDS.contains(&tld))
        })
        .map(str::to_string)
        .collect()
}

fn libndpi() -> PathBuf {
    let out = Command::new("ldd")
        .arg("/usr/bin/ndpiReader")
        .output()
        .expect("ldd");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.contains("libndpi"))
        .and_then(|l| l.split("=>").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .map(PathBuf::from)
        .expect("ndpiReader (scripts/install-deps installs libndpi-bin)")
}

/// Makes the traffic and returns the capture's path.
fn capture(net: &mut Net, names: &[String], https_rounds: usize, bulk: usize) -> PathBuf {
    let dir = net.dir.clone();
    let (phone, router, wan) = (net.phone.clone(), net.router.clone(), net.wan.clone());
    // Every name's address on wan, one TLS server answering on all of
    // them, and HTTP (tests/common's python http.server listens on all).
    let batch: String = (0..names.len())
        .map(|i| format!("addr add {}/32 dev up0\n", server_of(i)))
        .collect();
    std::fs::write(dir.join("addresses"), batch).unwrap();
    net.sh(
        &wan,
        &format!("ip -batch {}", dir.join("addresses").display()),
    );
    net.spawn_tls_server("https-all", "0.0.0.0:8443");
    net.wait_for(&wan, "ss -ltn | grep -q ':8443 '");
    // 8443 on the wire would not look like a phone's traffic: the
    // addresses' 443 goes to it.
    net.sh(
        &wan,
        "iptables -w -t nat -A PREROUTING -d 100.64.0.0/16 -p tcp --dport 443 -j REDIRECT --to-ports 8443",
    );
    // MTU-sized packets on every hop, as on a real LAN.
    for (ns, dev) in [
        (&phone, "ph0"),
        (&router, "lan0"),
        (&router, "wan0"),
        (&wan, "up0"),
    ] {
        net.sh(
            ns,
            &format!("ethtool -K {dev} tso off gso off gro off 2>/dev/null || true"),
        );
    }
    let hosts: String = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{} {n}\n", server_of(i)))
        .collect();
    std::fs::write(dir.join("bench.hosts"), hosts).unwrap();
    net.sh(&wan, &format!("ip addr add {BENCH_DNS}/32 dev up0"));
    let hosts_file = format!("--addn-hosts={}", dir.join("bench.hosts").display());
    net.spawn_dnsmasq("dnsmasq-bench", &wan, BENCH_DNS, &[hosts_file]);
    net.wait_for(&wan, &format!("ss -lun | grep -q '{BENCH_DNS}:53 '"));

    let pcap = net.start_lan_capture("bench.pcap");

    let looked_up: Vec<&str> = names.iter().step_by(2).map(String::as_str).collect();
    std::fs::write(dir.join("lookups"), looked_up.join("\n") + "\n").unwrap();
    net.sh(
        &phone,
        &format!(
            "dig +short +time=2 +tries=1 @{BENCH_DNS} -f {} > /dev/null",
            dir.join("lookups").display()
        ),
    );
    // curl config files: one URL after another, each to its own address.
    let curl_config = |scheme: &str, port: u16| -> String {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "url = \"{scheme}://{n}/\"\nresolve = \"{n}:{port}:{}\"\noutput = \"/dev/null\"\n",
                    server_of(i)
                )
            })
            .collect()
    };
    std::fs::write(dir.join("https.curl"), curl_config("https", 443)).unwrap();
    std::fs::write(dir.join("http.curl"), curl_config("http", 80)).unwrap();
    for _ in 0..https_rounds {
        // Failures of single fetches do not matter (the packets do).
        net.sh_out(
            &phone,
            &format!(
                "curl -sk --max-time 3 -K {}",
                dir.join("https.curl").display()
            ),
        );
    }
    net.sh_out(
        &phone,
        &format!(
            "curl -s --max-time 3 -K {}",
            dir.join("http.curl").display()
        ),
    );
    for _ in 0..bulk {
        assert!(net.curl("http://files.example.org/10mb.bin", NEUTRAL_IP, 30.0));
    }
    net.stop_lan_capture();
    pcap
}

/// One flow's identity, either way round, with the second of its first
/// packet (ports are reused over a long capture).
fn key(proto: &str, a: (&str, u16), b: (&str, u16), first: u64) -> FlowKey {
    let (x, y) = if (a.0, a.1) <= (b.0, b.1) {
        (a, b)
    } else {
        (b, a)
    };
    (
        proto.to_string(),
        (x.0.to_string(), x.1),
        (y.0.to_string(), y.1),
        first,
    )
}

type FlowKey = (String, (String, u16), (String, u16), u64);

/// ndpiReader's CSV: flow → its label (e.g. "TLS.Google").
fn ndpi_flows(csv: &str) -> HashMap<FlowKey, (String, String)> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .expect("CSV header")
        .trim_start_matches('#')
        .split(',')
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column"))
    };
    let (first, proto, sip, sport, dip, dport, label, sni) = (
        col("first_seen"),
        col("protocol"),
        col("src_ip"),
        col("src_port"),
        col("dst_ip"),
        col("dst_port"),
        col("ndpi_proto"),
        col("server_name_sni"),
    );
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let p = match *f.get(proto)? {
                "6" => "tcp",
                "17" => "udp",
                _ => return None,
            };
            let k = key(
                p,
                (f[sip], f[sport].parse().ok()?),
                (f[dip], f[dport].parse().ok()?),
                f[first].split('.').next()?.parse().ok()?,
            );
            Some((k, (f[label].to_string(), f[sni].to_string())))
        })
        .collect()
}

/// The owner nDPI's label names, when it is an application we map.
fn ndpi_owner(label: &str, map: &HashMap<&str, &str>) -> Option<String> {
    // "TLS.Google" → Google; "Google" → Google; "TLS" → none.
    let app = label.rsplit('.').next().unwrap_or(label);
    map.get(app).map(|o| o.to_string())
}

fn timed(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64()
}

fn main() {
    if !is_root() {
        eprintln!("bench: needs root (network namespaces, tcpdump)");
        std::process::exit(2);
    }
    let (rounds, https_rounds, bulk) = (
        env_or("ROUNDS", 7),
        env_or("HTTPS_ROUNDS", 5),
        env_or("BULK", 10),
    );
    let ndpi_lib = libndpi();
    let mut names: BTreeSet<String> = domains_in(&std::fs::read(&ndpi_lib).unwrap());
    let from_ndpi = names.len();
    names.extend(phonehome::owners::builtin_domains().map(|(d, _)| d.to_string()));
    let names: Vec<String> = names.into_iter().collect();

    let mut net = Net::new();
    net.start_wan_services();
    let t = Instant::now();
    let pcap = capture(&mut net, &names, https_rounds, bulk);
    eprintln!("capture made in {:.0} s", t.elapsed().as_secs_f64());

    let db = net.dir.join("owners.db");
    let compiled = Command::new(bin())
        .args(["db", "compile", "--out"])
        .arg(&db)
        .arg(format!("whotracksme:{}", whotracksme_dump().display()))
        .output()
        .unwrap();
    assert!(
        compiled.status.success(),
        "{}",
        String::from_utf8_lossy(&compiled.stderr)
    );

    let json_out = net.dir.join("analyze.json");
    let csv_out = net.dir.join("ndpi.csv");
    let baseline = std::env::var_os("PHONEHOME_BASELINE_BIN").map(PathBuf::from);
    let analyze = |bin: &std::path::Path, out: &std::path::Path| {
        timed(Command::new("sh").arg("-c").arg(format!(
            "{} analyze {} --db {} --json > {}",
            bin.display(),
            pcap.display(),
            db.display(),
            out.display()
        )))
    };
    let (mut ph, mut nd, mut base) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // The two phonehome builds take turns going first: the run right
        // after ndpiReader is the slower one (0.83-0.88 in fixed order,
        // 0.98 alternated, for the same binaries).
        let baseline_first = round % 2 == 1;
        if let (true, Some(b)) = (baseline_first, &baseline) {
            base.push(analyze(b, &net.dir.join("baseline.json")));
        }
        nd.push(timed(
            Command::new("ndpiReader")
                .arg("-i")
                .arg(&pcap)
                .arg("-C")
                .arg(&csv_out)
                .arg("-q")
                .stdout(std::process::Stdio::null()),
        ));
        ph.push(analyze(&bin(), &json_out));
        if let (false, Some(b)) = (baseline_first, &baseline) {
            base.push(analyze(b, &net.dir.join("baseline.json")));
        }
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_out).unwrap()).unwrap();
    let packets = report["capture"]["packets"].as_u64().unwrap() as f64;
    let (ph_s, nd_s) = (median(ph), median(nd));

    // Owner labels, flow by flow.
    let map: HashMap<&str, &str> = NDPI_OWNERS.iter().copied().collect();
    let ndpi = ndpi_flows(&std::fs::read_to_string(&csv_out).unwrap());
    let (mut compared, mut agree, mut ndpi_named, mut ph_named, mut both_seen) = (0, 0, 0, 0, 0);
    let mut disagreements: BTreeMap<(String, String), (usize, String)> = BTreeMap::new();
    let flows = report["flows"].as_array().unwrap();
    for f in flows {
        if f["dport"] == 53 {
            continue;
        }
        let k = key(
            f["proto"].as_str().unwrap(),
            (
                f["src"].as_str().unwrap(),
                f["sport"].as_u64().unwrap() as u16,
            ),
            (
                f["dst"].as_str().unwrap(),
                f["dport"].as_u64().unwrap() as u16,
            ),
            f["first_seen"].as_u64().unwrap(),
        );
        let Some((label, sni)) = ndpi.get(&k) else {
            continue;
        };
        both_seen += 1;
        let ours = f["owner"].as_str().unwrap();
        let parent = f["parent"].as_str();
        let theirs = ndpi_owner(label, &map);
        ph_named += usize::from(ours != "unknown");
        ndpi_named += usize::from(theirs.is_some());
        let (Some(theirs), false) = (theirs, ours == "unknown") else {
            continue;
        };
        compared += 1;
        if theirs.eq_ignore_ascii_case(ours)
            || parent.is_some_and(|p| theirs.eq_ignore_ascii_case(p))
        {
            agree += 1;
        } else {
            let e = disagreements
                .entry((label.clone(), ours.to_string()))
                .or_insert((0, String::new()));
            e.0 += 1;
            if e.1.is_empty() {
                e.1 = f["domain"].as_str().unwrap_or(sni).to_string();
            }
        }
    }

    let c = &report["capture"];
    println!(
        "capture: {} packets ({:.1} MB of IP), {} flows; {} names ({from_ndpi} from {}, the rest phonehome's built-in table), \
         each {https_rounds}x HTTPS + 1x HTTP, half looked up by DNS first, {bulk}x 10 MB download",
        c["packets"],
        c["bytes"].as_f64().unwrap() / 1e6,
        c["flows"],
        names.len(),
        ndpi_lib.display(),
    );
    println!(
        "{:<32} {:>10} {:>12} {:>8}",
        "", "median s", "packets/s", "ratio"
    );
    println!(
        "{:<32} {:>10.3} {:>12.0} {:>8}",
        "ndpiReader -C (nDPI 4.2)",
        nd_s,
        packets / nd_s,
        "1.00"
    );
    println!(
        "{:<32} {:>10.3} {:>12.0} {:>8.2}",
        "phonehome analyze --json",
        ph_s,
        packets / ph_s,
        nd_s / ph_s
    );
    if !base.is_empty() {
        let base_s = median(base);
        println!(
            "{:<32} {:>10.3} {:>12.0} {:>8.2}",
            "baseline phonehome analyze",
            base_s,
            packets / base_s,
            nd_s / base_s
        );
        println!(
            "phonehome ÷ baseline, packets/s, same run: {:.3}",
            base_s / ph_s
        );
    }
    println!(
        "owner labels on {both_seen} TCP/UDP flows both list (DNS left out): nDPI names an owner for {ndpi_named}, \
         phonehome for {ph_named}; both for {compared}, agreeing on {agree} ({:.1}%)",
        100.0 * agree as f64 / compared.max(1) as f64
    );
    let mut worst: Vec<_> = disagreements.into_iter().collect();
    worst.sort_by_key(|w| std::cmp::Reverse(w.1 .0));
    for ((label, ours), (n, example)) in worst.iter().take(12) {
        println!("  disagree x{n}: nDPI {label} vs phonehome {ours} (e.g. {example})");
    }
}
