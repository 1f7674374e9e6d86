//! Stats: counters per device and per device × owner — flows, blocked
//! (including would-be blocks in observe mode), bytes up/down from conntrack
//! accounting, first/last seen and the busiest domains — and the row types
//! the socket API returns (field names are the interface contract).
//!
//! Limits: totals since the daemon started; no time buckets yet. Each
//! device × owner pair keeps at most `MAX_DOMAINS` domains.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

pub const MAX_DOMAINS: usize = 32;

#[derive(Debug, Default, Clone)]
struct Counts {
    flows: u64,
    blocked: u64,
    bytes_up: u64,
    bytes_down: u64,
    first_seen: u64,
    last_seen: u64,
}

impl Counts {
    fn touch(&mut self, now: u64) {
        if self.first_seen == 0 {
            self.first_seen = now;
        }
        self.last_seen = self.last_seen.max(now);
    }
}

#[derive(Debug, Default)]
struct DeviceStats {
    mac: Option<String>,
    ips: BTreeSet<String>,
    counts: Counts,
}

#[derive(Debug, Default)]
struct OwnerStats {
    category: String,
    counts: Counts,
    domains: HashMap<String, u64>,
}

#[derive(Default)]
pub struct Stats {
    devices: HashMap<String, DeviceStats>,
    owners: HashMap<(String, String), OwnerStats>,
}

/// What a decided flow contributes.
pub struct FlowEvent<'a> {
    pub device: &'a str,
    pub mac: Option<&'a str>,
    pub ip: String,
    pub owner: &'a str,
    pub category: &'a str,
    pub domain: Option<&'a str>,
    pub blocked: bool,
}

pub const UNKNOWN_OWNER: &str = "unknown";

impl Stats {
    pub fn on_decided(&mut self, ev: &FlowEvent<'_>, now: u64) {
        let dev = self.devices.entry(ev.device.to_string()).or_default();
        if dev.mac.is_none() {
            dev.mac = ev.mac.map(str::to_string);
        }
        if dev.ips.len() < 16 {
            dev.ips.insert(ev.ip.clone());
        }
        dev.counts.flows += 1;
        dev.counts.blocked += u64::from(ev.blocked);
        dev.counts.touch(now);
        let o = self
            .owners
            .entry((ev.device.to_string(), ev.owner.to_string()))
            .or_default();
        o.category = ev.category.to_string();
        o.counts.flows += 1;
        o.counts.blocked += u64::from(ev.blocked);
        o.counts.touch(now);
        if let Some(d) = ev.domain {
            if let Some(n) = o.domains.get_mut(d) {
                *n += 1;
            } else {
                if o.domains.len() >= MAX_DOMAINS {
                    // Make room by dropping the least used domain.
                    if let Some(k) = o
                        .domains
                        .iter()
                        .min_by_key(|(_, n)| **n)
                        .map(|(k, _)| k.clone())
                    {
                        o.domains.remove(&k);
                    }
                }
                o.domains.insert(d.to_string(), 1);
            }
        }
    }

    /// Adds conntrack byte deltas for a flow.
    pub fn add_bytes(&mut self, device: &str, owner: &str, up: u64, down: u64, now: u64) {
        if up == 0 && down == 0 {
            return;
        }
        if let Some(d) = self.devices.get_mut(device) {
            d.counts.bytes_up += up;
            d.counts.bytes_down += down;
            d.counts.touch(now);
        }
        if let Some(o) = self
            .owners
            .get_mut(&(device.to_string(), owner.to_string()))
        {
            o.counts.bytes_up += up;
            o.counts.bytes_down += down;
            o.counts.touch(now);
        }
    }

    pub fn device_rows(
        &self,
        filter: Option<&str>,
        names: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<DeviceRow> {
        let mut rows: Vec<DeviceRow> = self
            .devices
            .iter()
            .filter(|(k, _)| filter.is_none_or(|f| f.eq_ignore_ascii_case(k)))
            .map(|(k, d)| DeviceRow {
                mac: d.mac.clone().unwrap_or_default(),
                ips: d.ips.iter().cloned().collect(),
                hostname: names(k),
                flows: d.counts.flows,
                blocked: d.counts.blocked,
                bytes_up: d.counts.bytes_up,
                bytes_down: d.counts.bytes_down,
                first_seen: d.counts.first_seen,
                last_seen: d.counts.last_seen,
            })
            .collect();
        rows.sort_by(|a, b| b.flows.cmp(&a.flows).then(a.mac.cmp(&b.mac)));
        rows
    }

    /// Owner rows summed over devices (or for one device).
    pub fn owner_rows(&self, filter: Option<&str>) -> Vec<OwnerRow> {
        let mut merged: HashMap<&str, (String, Counts, HashMap<&str, u64>)> = HashMap::new();
        for ((device, owner), o) in &self.owners {
            if filter.is_some_and(|f| !f.eq_ignore_ascii_case(device)) {
                continue;
            }
            let m = merged
                .entry(owner.as_str())
                .or_insert_with(|| (o.category.clone(), Counts::default(), HashMap::new()));
            m.1.flows += o.counts.flows;
            m.1.blocked += o.counts.blocked;
            m.1.bytes_up += o.counts.bytes_up;
            m.1.bytes_down += o.counts.bytes_down;
            for (d, n) in &o.domains {
                *m.2.entry(d.as_str()).or_default() += n;
            }
        }
        let mut rows: Vec<OwnerRow> = merged
            .into_iter()
            .map(|(owner, (category, c, domains))| {
                let mut domains: Vec<(&str, u64)> = domains.into_iter().collect();
                domains.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                OwnerRow {
                    owner: owner.to_string(),
                    category,
                    flows: c.flows,
                    blocked: c.blocked,
                    bytes_up: c.bytes_up,
                    bytes_down: c.bytes_down,
                    domains: domains
                        .into_iter()
                        .take(MAX_DOMAINS)
                        .map(|(d, _)| d.to_string())
                        .collect(),
                }
            })
            .collect();
        rows.sort_by(|a, b| b.flows.cmp(&a.flows).then(a.owner.cmp(&b.owner)));
        rows
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRow {
    pub mac: String,
    pub ips: Vec<String>,
    pub hostname: Option<String>,
    pub flows: u64,
    pub blocked: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Unix time, seconds.
    pub first_seen: u64,
    pub last_seen: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRow {
    pub owner: String,
    pub category: String,
    pub flows: u64,
    pub blocked: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub domains: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRow {
    pub device: String,
    pub proto: String,
    pub src: String,
    pub sport: u16,
    pub dst: String,
    pub dport: u16,
    pub domain: Option<String>,
    /// dns | sni | http, when the domain is known.
    pub name_source: Option<String>,
    pub owner: String,
    /// Hosting owner of the destination address, when the owner database
    /// knows its network (a flow to Xiaomi on Alibaba Cloud: owner Xiaomi,
    /// host Alibaba Cloud).
    pub host: Option<String>,
    pub category: String,
    /// allow | block (policy verdict; see `enforced`), `pending` if undecided.
    pub verdict: String,
    pub rule: Option<String>,
    /// False when observe mode let a block through.
    pub enforced: bool,
    pub active: bool,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub first_seen: u64,
    pub last_seen: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRow {
    pub version: String,
    pub uptime_s: u64,
    pub mode: String,
    /// conntrack | repeat: how verdicts mark connections.
    pub mark_mode: String,
    pub queue: u16,
    pub packets: u64,
    pub malformed: u64,
    pub verdicts_accept: u64,
    pub verdicts_drop: u64,
    pub flows_active: u64,
    pub flows_evicted: u64,
    pub dns_names: u64,
    /// DNS answers rewritten by the sinkhole.
    pub dns_sinkholed: u64,
    /// Connections decided without a name after `decide_by` packets.
    pub gave_up: u64,
    /// Live connections whose verdict changed at a reload.
    pub rejudged: u64,
    pub rules: u64,
    pub rss_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_flows_blocks_and_bytes_per_device_and_owner() {
        let mut s = Stats::default();
        let ev = |owner, blocked, domain| FlowEvent {
            device: "02:00:00:00:77:02",
            mac: Some("02:00:00:00:77:02"),
            ip: "192.168.77.2".into(),
            owner,
            category: "telemetry",
            domain,
            blocked,
        };
        s.on_decided(&ev("Xiaomi", true, Some("tracking.miui.com")), 10);
        s.on_decided(&ev("Xiaomi", false, Some("api.xiaomi.com")), 11);
        s.on_decided(&ev("Google", false, None), 12);
        s.add_bytes("02:00:00:00:77:02", "Google", 100, 5000, 13);
        let d = s.device_rows(None, &|_| None);
        assert_eq!((d[0].flows, d[0].blocked, d[0].bytes_down), (3, 1, 5000));
        assert_eq!((d[0].first_seen, d[0].last_seen), (10, 13));
        let o = s.owner_rows(Some("02:00:00:00:77:02"));
        assert_eq!(o[0].owner, "Xiaomi");
        assert_eq!((o[0].flows, o[0].blocked), (2, 1));
        assert_eq!(o[1].bytes_up, 100);
        assert!(s.owner_rows(Some("aa:bb:cc:dd:ee:ff")).is_empty());
    }

    #[test]
    fn domains_per_owner_are_bounded() {
        let mut s = Stats::default();
        for i in 0..100 {
            let d = format!("h{i}.example");
            s.on_decided(
                &FlowEvent {
                    device: "d",
                    mac: None,
                    ip: "1.1.1.1".into(),
                    owner: "o",
                    category: "c",
                    domain: Some(&d),
                    blocked: false,
                },
                1,
            );
        }
        assert!(s.owner_rows(None)[0].domains.len() <= MAX_DOMAINS);
    }
}
