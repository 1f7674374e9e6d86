//! The report document (docs/REPORT-DATA.md): the rows a report shows, in
//! one serializable value that `phonehome report --json` and `analyze
//! --json` print, `report` embeds in its HTML page and the LuCI app
//! draws. Pure: rows in, document out. The one thing worked out here is
//! each device's phone-home share (`phone_home`): of its connections, how
//! many went to its maker, to others' advertising, analytics and
//! telemetry, and to everything else. Its maker is the config's (`option
//! maker`), else a guess: the phone maker it talks to most (Google only
//! when no other, since every Android phone talks to Google), marked as a
//! guess.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::engine::{Engine, Now};
use crate::report::stats::{
    DeviceRow, FlowRow, OwnerRow, SeriesBy, SeriesRows, StatusRow, TimeRange,
};

pub const FORMAT: &str = "phonehome-report/1";
/// Devices a report shows one by one (the most connections first).
pub const MAX_DEVICES: usize = 50;
/// Decisions a report lists (the latest).
pub const MAX_FLOWS: usize = 500;
/// Owners a router's report lists (the most connections first), and
/// domains per owner row: a hostile LAN that fills the tables (4,096
/// devices, 8,192 pairs with 32 domains each) must not make a 12 MB
/// document. The counts say how many there were in all.
pub const MAX_OWNERS: usize = 1000;
pub const MAX_DOMAINS_SHOWN: usize = 5;

/// Companies that make phones, as the owner table names them.
pub const PHONE_MAKERS: &[&str] = &[
    "Apple",
    "Samsung",
    "Xiaomi",
    "Huawei",
    "Honor",
    "OPPO",
    "OnePlus",
    "realme",
    "vivo",
    "Motorola",
    "Lenovo",
    "Transsion",
    "Google",
];

/// Only ever written (JSON): the daemon's and `analyze`'s.
#[derive(Debug, Clone, Serialize)]
pub struct Document<C> {
    pub format: String,
    pub generated: u64,
    /// router | capture
    pub source: String,
    /// The router's hostname or the capture's file name.
    pub name: String,
    pub device: Option<String>,
    pub range: TimeRange,
    pub status: Option<StatusRow>,
    /// The capture's summary (a capture only).
    pub capture: Option<C>,
    pub devices: Vec<DeviceRow>,
    pub owners: Vec<OwnerRow>,
    /// Devices and owners in all, and owners with some connection blocked
    /// (the lists above may be cut short).
    pub device_count: usize,
    pub owner_count: usize,
    pub owners_blocked: usize,
    pub device_owners: BTreeMap<String, Vec<OwnerRow>>,
    pub phone_home: BTreeMap<String, PhoneHome>,
    pub series: Option<SeriesRows>,
    pub flows: Vec<FlowRow>,
    pub diff: Option<Diff>,
}

/// A device's phone-home share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneHome {
    pub maker: Option<String>,
    /// config | traffic (guessed)
    pub maker_from: Option<String>,
    pub maker_flows: u64,
    pub tracking_flows: u64,
    pub other_flows: u64,
}

/// A before/after comparison (`OwnerChange` rows from `diff`).
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub device: Option<String>,
    pub before: String,
    pub after: String,
    pub changes: Vec<OwnerChange>,
}

/// One owner's change between two summaries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnerChange {
    pub owner: String,
    pub category: String,
    /// appeared | vanished | grew | shrank | same
    pub change: String,
    pub flows_before: u64,
    pub flows_after: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub blocked_before: u64,
    pub blocked_after: u64,
}

/// Compares owner rows: what appeared, vanished, grew or shrank (by
/// flows, then bytes), biggest changes first within each kind.
pub fn owner_diff(before: &[OwnerRow], after: &[OwnerRow]) -> Vec<OwnerChange> {
    let mut names: Vec<&str> = before
        .iter()
        .chain(after)
        .map(|r| r.owner.as_str())
        .collect();
    names.sort();
    names.dedup();
    fn index(rows: &[OwnerRow]) -> HashMap<&str, &OwnerRow> {
        rows.iter().map(|r| (r.owner.as_str(), r)).collect()
    }
    let (before_by, after_by) = (index(before), index(after));
    let find = |rows: &HashMap<&str, &OwnerRow>, n: &str| rows.get(n).map(|r| (*r).clone());
    let mut out: Vec<OwnerChange> = names
        .into_iter()
        .map(|n| {
            let (b, a) = (find(&before_by, n), find(&after_by, n));
            let flows = |r: &Option<OwnerRow>| r.as_ref().map_or(0, |r| r.flows);
            let bytes = |r: &Option<OwnerRow>| r.as_ref().map_or(0, |r| r.bytes_up + r.bytes_down);
            let blocked = |r: &Option<OwnerRow>| r.as_ref().map_or(0, |r| r.blocked);
            let change = match (&b, &a) {
                (None, Some(_)) => "appeared",
                (Some(_), None) => "vanished",
                _ => match (flows(&a).cmp(&flows(&b)), bytes(&a).cmp(&bytes(&b))) {
                    (std::cmp::Ordering::Greater, _) => "grew",
                    (std::cmp::Ordering::Less, _) => "shrank",
                    (_, std::cmp::Ordering::Greater) => "grew",
                    (_, std::cmp::Ordering::Less) => "shrank",
                    _ => "same",
                },
            };
            OwnerChange {
                owner: n.to_string(),
                category: a
                    .as_ref()
                    .or(b.as_ref())
                    .map(|r| r.category.clone())
                    .unwrap_or_default(),
                change: change.to_string(),
                flows_before: flows(&b),
                flows_after: flows(&a),
                bytes_before: bytes(&b),
                bytes_after: bytes(&a),
                blocked_before: blocked(&b),
                blocked_after: blocked(&a),
            }
        })
        .collect();
    let rank = |c: &str| match c {
        "appeared" => 0,
        "grew" => 1,
        "shrank" => 2,
        "vanished" => 3,
        _ => 4,
    };
    out.sort_by(|x, y| {
        rank(&x.change).cmp(&rank(&y.change)).then_with(|| {
            let d = |c: &OwnerChange| c.flows_after.abs_diff(c.flows_before);
            d(y).cmp(&d(x)).then(x.owner.cmp(&y.owner))
        })
    });
    out
}

/// The key a device goes by: its MAC, else its address.
pub fn device_key(d: &DeviceRow) -> &str {
    match (d.mac.as_str(), d.ips.first()) {
        ("", Some(ip)) => ip,
        (mac, _) => mac,
    }
}

fn is_tracking(category: &str) -> bool {
    matches!(category, "advertising" | "analytics" | "telemetry")
}

/// A device's phone-home share over its owner rows.
pub fn phone_home(device: &DeviceRow, owners: &[OwnerRow]) -> PhoneHome {
    let company = |r: &OwnerRow| r.parent.clone().unwrap_or_else(|| r.owner.clone());
    let (maker, from) = match &device.maker {
        Some(m) => (Some(m.clone()), Some("config")),
        None => {
            let mut per: BTreeMap<String, u64> = BTreeMap::new();
            for r in owners {
                let c = company(r);
                if PHONE_MAKERS.contains(&c.as_str()) {
                    *per.entry(c).or_default() += r.flows;
                }
            }
            let google = per.remove("Google");
            let best = per
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                .map(|(m, _)| m)
                .or_else(|| google.map(|_| "Google".to_string()));
            let from = best.as_ref().map(|_| "traffic");
            (best, from)
        }
    };
    let mut share = PhoneHome {
        maker_from: from.map(str::to_string),
        maker: maker.clone(),
        maker_flows: 0,
        tracking_flows: 0,
        other_flows: 0,
    };
    for r in owners {
        let own = maker.as_deref().is_some_and(|m| {
            m.eq_ignore_ascii_case(&r.owner)
                || r.parent
                    .as_deref()
                    .is_some_and(|p| m.eq_ignore_ascii_case(p))
        });
        if own {
            share.maker_flows += r.flows;
        } else if is_tracking(&r.category) {
            share.tracking_flows += r.flows;
        } else {
            share.other_flows += r.flows;
        }
    }
    share
}

impl<C> Document<C> {
    /// A document of `source` with the rows every report has; the caller
    /// adds what it has of the rest (status, capture, series, diff).
    pub fn new(source: &str, name: &str, generated: u64) -> Document<C> {
        Document {
            format: FORMAT.to_string(),
            generated,
            source: source.to_string(),
            name: name.to_string(),
            device: None,
            range: TimeRange::default(),
            status: None,
            capture: None,
            devices: Vec::new(),
            owners: Vec::new(),
            device_count: 0,
            owner_count: 0,
            owners_blocked: 0,
            device_owners: BTreeMap::new(),
            phone_home: BTreeMap::new(),
            series: None,
            flows: Vec::new(),
            diff: None,
        }
    }

    /// Sets the devices (the first `MAX_DEVICES`) with their owners, asked
    /// of `owners_of` per device, and works out each one's share.
    pub fn set_devices(
        &mut self,
        mut devices: Vec<DeviceRow>,
        mut owners_of: impl FnMut(&str) -> Vec<OwnerRow>,
    ) {
        self.device_count = devices.len();
        devices.truncate(MAX_DEVICES);
        for d in &devices {
            let key = device_key(d).to_string();
            let owners = owners_of(&key);
            self.phone_home.insert(key.clone(), phone_home(d, &owners));
            self.device_owners.insert(key, owners);
        }
        self.devices = devices;
    }

    /// Sets the owners: the counts of all, the first `MAX_OWNERS` listed.
    pub fn set_owners(&mut self, mut owners: Vec<OwnerRow>) {
        self.owner_count = owners.len();
        self.owners_blocked = owners.iter().filter(|o| o.blocked > 0).count();
        owners.truncate(MAX_OWNERS);
        self.owners = owners;
    }

    /// Cuts every owner row's domains to `MAX_DOMAINS_SHOWN` (a router's
    /// report; a capture's keeps them all).
    pub fn cut_domains(&mut self) {
        let rows = self
            .owners
            .iter_mut()
            .chain(self.device_owners.values_mut().flatten());
        for row in rows {
            row.domains.truncate(MAX_DOMAINS_SHOWN);
        }
    }

    /// Keeps the latest `MAX_FLOWS` decisions, oldest first.
    pub fn set_flows(&mut self, mut flows: Vec<FlowRow>) {
        flows.sort_by_key(|r| (r.first_seen, r.last_seen));
        let cut = flows.len().saturating_sub(MAX_FLOWS);
        flows.drain(..cut);
        self.flows = flows;
    }
}

/// One side of a comparison: a device (or all), a range, its label.
pub struct Side<'a> {
    pub device: Option<&'a str>,
    pub range: TimeRange,
    pub label: &'a str,
}

/// What a report is of.
pub struct Asked<'a> {
    pub device: Option<&'a str>,
    pub range: TimeRange,
    pub by: SeriesBy,
    pub lines: usize,
    pub compare: Option<(Side<'a>, Side<'a>)>,
}

/// The router's report document from the engine's state, all of it from
/// one moment: the devices and owners in the range, each device's owners
/// and share, the series, the latest decisions, and the comparison.
pub fn of_engine(
    engine: &Engine,
    asked: &Asked<'_>,
    now: Now,
    name: &str,
    status: StatusRow,
) -> Document<()> {
    let mut doc = Document::new("router", name, now.unix);
    doc.status = Some(status);
    doc.device = asked.device.map(str::to_string);
    doc.range = asked.range;
    doc.set_owners(engine.owner_rows(asked.device, asked.range, now));
    let devices = engine.device_rows(asked.device, asked.range, now);
    let keys: Vec<String> = devices
        .iter()
        .take(MAX_DEVICES)
        .map(|d| device_key(d).to_string())
        .collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut per_device = engine.owner_rows_by_device(&keys, asked.range, now);
    doc.set_devices(devices, |key| per_device.remove(key).unwrap_or_default());
    doc.cut_domains();
    doc.series = Some(engine.series(asked.device, asked.by, asked.range, asked.lines, now));
    doc.set_flows(engine.flow_rows(asked.device));
    if let Some((before, after)) = &asked.compare {
        let old = engine.owner_rows(before.device, before.range, now);
        let new = engine.owner_rows(after.device, after.range, now);
        doc.diff = Some(Diff {
            device: asked.device.map(str::to_string),
            before: before.label.to_string(),
            after: after.label.to_string(),
            changes: owner_diff(&old, &new),
        });
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(name: &str, parent: Option<&str>, category: &str, flows: u64) -> OwnerRow {
        OwnerRow {
            owner: name.into(),
            parent: parent.map(str::to_string),
            category: category.into(),
            flows,
            blocked: 0,
            bytes_up: 0,
            bytes_down: 0,
            domains: vec![],
            countries: vec![],
        }
    }

    fn device(maker: Option<&str>) -> DeviceRow {
        DeviceRow {
            mac: String::new(),
            ips: vec!["192.168.77.2".into()],
            hostname: None,
            flows: 0,
            blocked: 0,
            bytes_up: 0,
            bytes_down: 0,
            first_seen: 0,
            last_seen: 0,
            countries: vec![],
            new_owners: 0,
            maker: maker.map(str::to_string),
        }
    }

    #[test]
    fn the_share_splits_maker_tracking_and_the_rest() {
        let rows = [
            owner("Google", None, "services", 30),
            owner("Xiaomi", None, "telemetry", 20),
            owner("Umeng", Some("Alibaba"), "analytics", 9),
            owner("DoubleClick", Some("Google"), "advertising", 3),
            owner("Cloudflare", None, "cdn", 1),
        ];
        // Guessed: Xiaomi over Google (every Android phone talks to Google).
        let s = phone_home(&device(None), &rows);
        assert_eq!(s.maker.as_deref(), Some("Xiaomi"));
        assert_eq!(s.maker_from.as_deref(), Some("traffic"));
        assert_eq!(
            (s.maker_flows, s.tracking_flows, s.other_flows),
            (20, 12, 31)
        );
        // The config's maker wins; Google's ad network counts as Google's.
        let s = phone_home(&device(Some("Google")), &rows);
        assert_eq!(s.maker_from.as_deref(), Some("config"));
        assert_eq!(
            (s.maker_flows, s.tracking_flows, s.other_flows),
            (33, 29, 1)
        );
        // A Pixel: Google is the maker when no other maker shows.
        let s = phone_home(&device(None), &rows[2..]);
        assert_eq!(s.maker.as_deref(), Some("Google"));
        // No maker in sight: none guessed.
        let s = phone_home(&device(None), &rows[4..]);
        assert_eq!((s.maker, s.maker_from), (None, None));
        assert_eq!(device_key(&device(None)), "192.168.77.2");
    }

    fn row(owner: &str, flows: u64, bytes: u64) -> OwnerRow {
        OwnerRow {
            owner: owner.into(),
            parent: None,
            category: "c".into(),
            flows,
            blocked: 0,
            bytes_up: 0,
            bytes_down: bytes,
            domains: vec![],
            countries: vec![],
        }
    }

    #[test]
    fn diff_names_what_appeared_vanished_grew_and_shrank() {
        let before = [
            row("Google", 10, 100),
            row("Xiaomi", 5, 50),
            row("Meta", 3, 30),
            row("Same", 1, 1),
        ];
        let after = [
            row("Google", 20, 100),
            row("Meta", 1, 10),
            row("Umeng", 7, 70),
            row("Same", 1, 1),
        ];
        let d: Vec<(String, String)> = owner_diff(&before, &after)
            .into_iter()
            .map(|c| (c.change, c.owner))
            .collect();
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            d,
            vec![
                s("appeared", "Umeng"),
                s("grew", "Google"),
                s("shrank", "Meta"),
                s("vanished", "Xiaomi"),
                s("same", "Same")
            ]
        );
    }
}
