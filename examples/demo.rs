//! The demo: builds the test network of DESIGN.md (phone — router — wan),
//! runs the daemon in the router with a policy that blocks Xiaomi
//! telemetry and ads, lets the phone do what phones do, and prints what
//! phonehome saw. Run as root: `scripts/demo` (README).

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
    net.start_daemon(
        "config rule 'no_xiaomi_tracking'\n\toption device 'phone'\n\toption owner 'Xiaomi'\n\toption action 'block'\n",
        false,
    );
    println!("== the phone resolves and connects (dnsmasq on the router, curl, dig)");
    let steps: &[(&str, &str, Option<(&str, u16, &str)>)] = &[
        ("www.google.com", "https://www.google.com/", None),
        ("www.google-analytics.com", "https://www.google-analytics.com/", None),
        ("tracking.miui.com", "https://tracking.miui.com/", None),
        ("cdn.innocent.test", "https://cdn.innocent.test/", None),
        ("files.example.org", "http://files.example.org/", None),
        ("", "https://api.ad.xiaomi.com/", Some(("api.ad.xiaomi.com", 443, XIAOMI_IP))),
        ("", "http://data.mistat.xiaomi.com/", Some(("data.mistat.xiaomi.com", 80, XIAOMI_IP))),
    ];
    for (name, url, resolve) in steps {
        if !name.is_empty() {
            let answer = net.dig(ROUTER_LAN_IP, name);
            println!("   dig {name:<28} -> {}", answer.trim().replace('\n', " "));
        }
        let resolve = resolve.or_else(|| {
            let ip = net.dig(ROUTER_LAN_IP, name).lines().last().map(str::to_string)?;
            let port = if url.starts_with("https") { 443 } else { 80 };
            Some((Box::leak(name.to_string().into_boxed_str()) as &str, port, Box::leak(ip.into_boxed_str()) as &str))
        });
        let ok = net.curl(url, resolve, 2.0);
        println!("   curl {url:<40} {}", if ok { "fetched" } else { "BLOCKED (timed out)" });
    }
    for cmd in [&["status"][..], &["devices"], &["owners"], &["flows"]] {
        println!("\n== phonehome {}", cmd.join(" "));
        let out = net.cli(cmd);
        print!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    println!("\n== queued packets in total: {}", net.queued_packets());
    if std::env::var_os("PHONEHOME_KEEP").is_some() {
        println!("state kept in {}", net.dir.display());
    }
}
