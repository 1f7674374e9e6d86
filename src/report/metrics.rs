//! Prometheus text exposition (format 0.0.4) of the daemon's health and its
//! per-device and per-owner counters, for node-exporter's textfile
//! collector (`phonehome metrics --out /var/lib/node_exporter/phonehome.prom`
//! from cron) or any scraper that reads a file. Pure: rows in, text out.
//!
//! Cardinality stays bounded by the daemon's own limits: devices seen, and
//! owners (at most `stats::MAX_PAIRS` device × owner pairs); no per-flow or
//! per-domain series.

use std::fmt::Write;

use crate::report::stats::{DeviceRow, OwnerRow, StatusRow};

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

const UP: &str = ",direction=\"up\"";
const DOWN: &str = ",direction=\"down\"";

/// A counter family with one sample per row (and per extra label, e.g. the
/// direction): `name{row labels extra} value`.
fn per_row<T>(
    out: &mut String,
    name: &str,
    help: &str,
    rows: &[(String, &T)],
    samples: impl Fn(&T) -> Vec<(&'static str, u64)>,
) {
    family(out, name, "counter", help);
    for (labels, row) in rows {
        for (extra, value) in samples(row) {
            let _ = writeln!(out, "{name}{{{labels}{extra}}} {value}");
        }
    }
}

pub fn render(status: &StatusRow, devices: &[DeviceRow], owners: &[OwnerRow]) -> String {
    let mut o = String::new();
    let scalar = |o: &mut String, name: &str, kind: &str, help: &str, v: u64| {
        family(o, name, kind, help);
        let _ = writeln!(o, "{name} {v}");
    };
    family(
        &mut o,
        "phonehome_up",
        "gauge",
        "1 when the daemon answered.",
    );
    let _ = writeln!(
        o,
        "phonehome_up{{version=\"{}\",mode=\"{}\",mark_mode=\"{}\"}} 1",
        label(&status.version),
        label(&status.mode),
        label(&status.mark_mode)
    );
    scalar(
        &mut o,
        "phonehome_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
        status.uptime_s,
    );
    scalar(
        &mut o,
        "phonehome_packets_total",
        "counter",
        "Packets judged from the queue.",
        status.packets,
    );
    scalar(
        &mut o,
        "phonehome_malformed_packets_total",
        "counter",
        "Queued packets that could not be read (accepted).",
        status.malformed,
    );
    family(
        &mut o,
        "phonehome_verdicts_total",
        "counter",
        "Verdicts sent to the kernel.",
    );
    let _ = writeln!(
        o,
        "phonehome_verdicts_total{{verdict=\"accept\"}} {}",
        status.verdicts_accept
    );
    let _ = writeln!(
        o,
        "phonehome_verdicts_total{{verdict=\"drop\"}} {}",
        status.verdicts_drop
    );
    scalar(
        &mut o,
        "phonehome_flows_active",
        "gauge",
        "Connections in the flow table.",
        status.flows_active,
    );
    scalar(
        &mut o,
        "phonehome_flows_evicted_total",
        "counter",
        "Connections evicted from the full flow table.",
        status.flows_evicted,
    );
    scalar(
        &mut o,
        "phonehome_dns_names",
        "gauge",
        "Names remembered from DNS answers.",
        status.dns_names,
    );
    scalar(
        &mut o,
        "phonehome_dns_sinkholed_total",
        "counter",
        "DNS answers rewritten for blocked names.",
        status.dns_sinkholed,
    );
    scalar(
        &mut o,
        "phonehome_undecided_total",
        "counter",
        "Connections decided without a name after decide_by packets.",
        status.gave_up,
    );
    scalar(
        &mut o,
        "phonehome_dns_refused_total",
        "counter",
        "DNS answers for blocked names dropped (they could not be rewritten), and DNS-over-TCP connections refused.",
        status.dns_refused,
    );
    scalar(
        &mut o,
        "phonehome_pending_bytes",
        "gauge",
        "Bytes held by connections waiting for a name (ClientHello, request, QUIC CRYPTO, DNS-over-TCP message).",
        status.pending_bytes,
    );
    scalar(
        &mut o,
        "phonehome_pending_overflow_total",
        "counter",
        "Connections decided without a name because reading on would have passed max_pending.",
        status.pending_overflow,
    );
    scalar(
        &mut o,
        "phonehome_queue_dropped_total",
        "counter",
        "Packets the kernel dropped unjudged because the queue held its maximum.",
        status.queue_dropped,
    );
    scalar(
        &mut o,
        "phonehome_queue_user_dropped_total",
        "counter",
        "Packets the kernel dropped unjudged because the daemon's socket buffer was full.",
        status.queue_user_dropped,
    );
    scalar(
        &mut o,
        "phonehome_nameless_total",
        "counter",
        "Connections decided without a name, for any reason (option undecided applied).",
        status.nameless,
    );
    scalar(
        &mut o,
        "phonehome_rejudged_total",
        "counter",
        "Live connections whose verdict changed at a reload.",
        status.rejudged,
    );
    scalar(
        &mut o,
        "phonehome_new_owners_total",
        "counter",
        "Device and owner pairs seen for the first time (a device reached an owner it never had).",
        status.new_owners,
    );
    scalar(
        &mut o,
        "phonehome_rules",
        "gauge",
        "Policy rules loaded.",
        status.rules,
    );
    scalar(
        &mut o,
        "phonehome_resident_memory_bytes",
        "gauge",
        "Resident memory of the daemon.",
        status.rss_bytes,
    );

    // Each row's labels are formatted once and serve all its families.
    let devices: Vec<(String, &DeviceRow)> = devices
        .iter()
        .map(|d| {
            // `device` is the MAC, or the address of a device without one
            // (so two such devices are two series).
            let key = match (d.mac.as_str(), d.ips.first()) {
                ("", Some(ip)) => ip.as_str(),
                (mac, _) => mac,
            };
            let labels = format!(
                "device=\"{}\",mac=\"{}\",hostname=\"{}\"",
                label(key),
                label(&d.mac),
                label(d.hostname.as_deref().unwrap_or(""))
            );
            (labels, d)
        })
        .collect();
    let owners: Vec<(String, &OwnerRow)> = owners
        .iter()
        .map(|r| {
            let labels = format!(
                "owner=\"{}\",category=\"{}\"",
                label(&r.owner),
                label(&r.category)
            );
            (labels, r)
        })
        .collect();
    per_row(
        &mut o,
        "phonehome_device_flows_total",
        "Connections per device.",
        &devices,
        |d| vec![("", d.flows)],
    );
    per_row(
        &mut o,
        "phonehome_device_blocked_total",
        "Blocked connections per device (observe mode: would-be blocks).",
        &devices,
        |d| vec![("", d.blocked)],
    );
    per_row(
        &mut o,
        "phonehome_device_bytes_total",
        "Bytes per device and direction (conntrack accounting).",
        &devices,
        |d| vec![(UP, d.bytes_up), (DOWN, d.bytes_down)],
    );
    per_row(
        &mut o,
        "phonehome_device_new_owners_total",
        "Owners each device reached for the first time.",
        &devices,
        |d| vec![("", d.new_owners)],
    );
    per_row(
        &mut o,
        "phonehome_owner_flows_total",
        "Connections per destination owner.",
        &owners,
        |r| vec![("", r.flows)],
    );
    per_row(
        &mut o,
        "phonehome_owner_blocked_total",
        "Blocked connections per destination owner.",
        &owners,
        |r| vec![("", r.blocked)],
    );
    per_row(
        &mut o,
        "phonehome_owner_bytes_total",
        "Bytes per destination owner and direction.",
        &owners,
        |r| vec![(UP, r.bytes_up), (DOWN, r.bytes_down)],
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_lines_and_escaping() {
        let status = StatusRow {
            version: "0.1.0".into(),
            uptime_s: 5,
            mode: "enforce".into(),
            mark_mode: "repeat".into(),
            queue: 0,
            packets: 10,
            malformed: 0,
            verdicts_accept: 9,
            verdicts_drop: 1,
            flows_active: 2,
            flows_evicted: 0,
            dns_names: 3,
            dns_sinkholed: 1,
            gave_up: 0,
            nameless: 0,
            dns_refused: 0,
            pending_bytes: 0,
            pending_overflow: 0,
            queue_dropped: 0,
            queue_user_dropped: 0,
            rejudged: 0,
            new_owners: 2,
            rules: 1,
            rss_bytes: 4096,
        };
        let dev = DeviceRow {
            mac: "02:00:00:00:77:02".into(),
            ips: vec![],
            hostname: Some("Ann's \"phone\"".into()),
            flows: 4,
            blocked: 1,
            bytes_up: 10,
            bytes_down: 20,
            first_seen: 1,
            last_seen: 2,
            countries: vec![],
            new_owners: 2,
            maker: None,
        };
        let owner = OwnerRow {
            owner: "Xiaomi".into(),
            parent: None,
            category: "telemetry".into(),
            flows: 3,
            blocked: 1,
            bytes_up: 5,
            bytes_down: 6,
            domains: vec![],
            countries: vec![],
        };
        let text = render(&status, &[dev], &[owner]);
        assert!(text.contains("phonehome_verdicts_total{verdict=\"drop\"} 1\n"));
        assert!(text.contains(
            "phonehome_device_bytes_total{device=\"02:00:00:00:77:02\",mac=\"02:00:00:00:77:02\",hostname=\"Ann's \\\"phone\\\"\",direction=\"down\"} 20\n"
        ));
        assert!(text.contains(
            "phonehome_owner_blocked_total{owner=\"Xiaomi\",category=\"telemetry\"} 1\n"
        ));
        // Every sample line belongs to a family declared before it.
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(declared.contains(name), "{line}");
                assert!(
                    line.rsplit(' ').next().unwrap().parse::<u64>().is_ok(),
                    "{line}"
                );
            }
        }
    }
}
