//! Stats: counters per device and per device × owner — flows, blocked
//! (including would-be blocks in observe mode), bytes up/down from conntrack
//! accounting, first/last seen, the busiest domains and the countries the
//! connections went to — kept as totals and in time buckets (domains and
//! countries as totals only: a time range shows those of the pairs active
//! in it), and the row types the socket API returns (field names are the
//! interface contract).
//!
//! Buckets: per device × owner, one-minute buckets for the last hour,
//! hourly ones for 7 days and daily ones for 90 days, stored sparsely (only
//! buckets with traffic) and dropped as they age out. A query for a time
//! range sums the finest series that reaches back to its start; buckets on
//! the range's edges count whole (a range is as sharp as its buckets: a
//! minute within the hour, an hour within the week, a day beyond).
//!
//! Memory is bounded: at most `MAX_PAIRS` device × owner pairs (the least
//! recently active is dropped first, counted in `evicted_pairs`), at most
//! `MAX_DOMAINS` domains and `MAX_COUNTRIES` countries per pair, at most
//! 324 buckets per pair (24 bytes each; most pairs use a handful).
//!
//! `snapshot`/`restore` give the whole state as one serializable value for
//! persistence (see `state`).
//!
//! Over 600 lines: the counters, their per-minute series, the bounded
//! tables and the rows are one data structure's code; a quarter of the
//! file is its unit tests.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

pub const MAX_DOMAINS: usize = 32;
pub const MAX_COUNTRIES: usize = 16;
pub const MAX_PAIRS: usize = 8192;
/// Devices kept (a LAN host rotating its source MAC makes a new one with
/// each): past it the least recently active sixteenth goes, with its pairs.
pub const MAX_DEVICES: usize = 4096;

/// The three series: bucket width in seconds and how many a range can
/// reach back (an hour of minutes, a week of hours, 90 days).
const SERIES: [(u64, usize); 3] = [(60, 60), (3600, 7 * 24), (86_400, 90)];
/// Buckets kept beyond that: `--since 1h`, asked a moment before the
/// daemon answers, still finds all of its first minute.
const SPARE_BUCKETS: u64 = 2;

/// The start of the oldest bucket a series keeps, seen from `now`.
fn oldest_kept(width: u64, keep: usize, now: u64) -> u64 {
    (now - now % width).saturating_sub(width * (keep as u64 + SPARE_BUCKETS - 1))
}

/// The finest series that still holds the bucket `since` falls in.
fn finest_series_from(since: u64, now: u64) -> usize {
    SERIES
        .iter()
        .position(|(width, keep)| since >= oldest_kept(*width, *keep, now))
        .unwrap_or(SERIES.len() - 1)
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Counts {
    flows: u64,
    blocked: u64,
    bytes_up: u64,
    bytes_down: u64,
    first_seen: u64,
    last_seen: u64,
}

impl Counts {
    /// Adds another pair's counts: sums, earliest first and latest last seen.
    fn add(&mut self, other: &Counts) {
        self.flows += other.flows;
        self.blocked += other.blocked;
        self.bytes_up += other.bytes_up;
        self.bytes_down += other.bytes_down;
        if other.first_seen != 0 {
            self.first_seen = match self.first_seen {
                0 => other.first_seen,
                f => f.min(other.first_seen),
            };
        }
        self.last_seen = self.last_seen.max(other.last_seen);
    }

    fn is_empty(&self) -> bool {
        self.flows == 0 && self.bytes_up == 0 && self.bytes_down == 0
    }

    fn touch(&mut self, now: u64) {
        if self.first_seen == 0 {
            self.first_seen = now;
        }
        self.last_seen = self.last_seen.max(now);
    }
}

/// A time window in Unix seconds: `since` inclusive, `until` exclusive;
/// None = open.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    pub since: Option<u64>,
    pub until: Option<u64>,
}

impl TimeRange {
    pub fn is_all(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Bucket {
    start: u64,
    flows: u32,
    blocked: u32,
    up: u64,
    down: u64,
}

/// One device × owner pair's buckets, one deque per series.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Series([VecDeque<Bucket>; 3]);

impl Series {
    fn add(&mut self, now: u64, flows: u32, blocked: u32, up: u64, down: u64) {
        for (ring, (width, keep)) in self.0.iter_mut().zip(SERIES) {
            let start = now - now % width;
            match ring.back_mut() {
                // This bucket, or a late event for an older one (a clock
                // step back): folded into the newest rather than reordered.
                Some(b) if b.start >= start => {
                    b.flows += flows;
                    b.blocked += blocked;
                    b.up += up;
                    b.down += down;
                }
                _ => ring.push_back(Bucket {
                    start,
                    flows,
                    blocked,
                    up,
                    down,
                }),
            }
            let horizon = oldest_kept(width, keep, now);
            while ring.front().is_some_and(|b| b.start < horizon) {
                ring.pop_front();
            }
        }
    }

    /// Sums over `range` from the finest series that reaches back to its
    /// start (as seen from `now`).
    fn sum(&self, range: TimeRange, now: u64) -> Counts {
        let since = range.since.unwrap_or(0);
        let until = range.until.unwrap_or(u64::MAX);
        let pick = finest_series_from(since, now);
        let width = SERIES[pick].0;
        let mut c = Counts::default();
        for b in &self.0[pick] {
            if b.start + width > since && b.start < until {
                c.flows += b.flows as u64;
                c.blocked += b.blocked as u64;
                c.bytes_up += b.up;
                c.bytes_down += b.down;
                if c.first_seen == 0 {
                    c.first_seen = b.start.max(since);
                }
                c.last_seen = (b.start + width - 1).min(until.saturating_sub(1));
            }
        }
        c
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(VecDeque::is_empty)
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DeviceStats {
    mac: Option<String>,
    ips: BTreeSet<String>,
    counts: Counts,
    /// Owners it reached for the first time (older state files have none).
    #[serde(default)]
    new_owners: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct OwnerStats {
    category: String,
    counts: Counts,
    domains: HashMap<String, u64>,
    series: Series,
    /// Connections per destination country (ISO 3166 code); older state
    /// files have none.
    #[serde(default)]
    countries: HashMap<String, u64>,
}

/// Counts one more `key` in `map`, keeping at most `max` keys: a new key
/// past it replaces the least counted one.
fn count_bounded(map: &mut HashMap<String, u64>, key: &str, max: usize) {
    if let Some(n) = map.get_mut(key) {
        *n += 1;
        return;
    }
    if map.len() >= max {
        if let Some(k) = map
            .iter()
            .min_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(k, _)| k.clone())
        {
            map.remove(&k);
        }
    }
    map.insert(key.to_string(), 1);
}

/// Countries and their connections, the most first (then by code).
fn country_counts(counts: HashMap<&str, u64>) -> Vec<CountryCount> {
    let mut out: Vec<CountryCount> = counts
        .into_iter()
        .map(|(c, flows)| CountryCount {
            country: c.to_string(),
            flows,
        })
        .collect();
    out.sort_by(|a, b| b.flows.cmp(&a.flows).then(a.country.cmp(&b.country)));
    out
}

#[derive(Default)]
pub struct Stats {
    devices: HashMap<String, DeviceStats>,
    owners: HashMap<(String, String), OwnerStats>,
    pub evicted_pairs: u64,
    pub evicted_devices: u64,
    /// Device × owner pairs seen for the first time since the start (a
    /// pair dropped to make room is new again when it comes back).
    pub new_owners: u64,
}

/// The whole statistics state, for the state file.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    devices: Vec<(String, DeviceStats)>,
    owners: Vec<(String, String, OwnerStats)>,
    evicted_pairs: u64,
    /// Decided connections still alive when saved (older files have none).
    #[serde(default)]
    pub live: Vec<crate::engine::flows::LiveFlow>,
}

impl Snapshot {
    pub fn pairs(&self) -> usize {
        self.owners.len()
    }
}

/// What a decided flow contributes.
pub struct FlowEvent<'a> {
    pub device: &'a str,
    pub mac: Option<&'a str>,
    pub ip: String,
    pub owner: &'a str,
    pub category: &'a str,
    pub domain: Option<&'a str>,
    /// The destination's country (ISO 3166 code), when known.
    pub country: Option<&'a str>,
    pub blocked: bool,
}

pub const UNKNOWN_OWNER: &str = "unknown";

impl Stats {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            devices: self
                .devices
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            owners: self
                .owners
                .iter()
                .map(|((d, o), v)| (d.clone(), o.clone(), v.clone()))
                .collect(),
            evicted_pairs: self.evicted_pairs,
            live: Vec::new(),
        }
    }

    pub fn restore(snapshot: Snapshot) -> Stats {
        Stats {
            devices: snapshot.devices.into_iter().take(MAX_DEVICES).collect(),
            owners: snapshot
                .owners
                .into_iter()
                .take(MAX_PAIRS)
                .map(|(d, o, v)| ((d, o), v))
                .collect(),
            evicted_pairs: snapshot.evicted_pairs,
            evicted_devices: 0,
            new_owners: 0,
        }
    }

    /// Makes room for one more pair: when full, the least recently active
    /// sixteenth goes at once (one pass per 512 new pairs, not one per
    /// pair).
    fn make_room(&mut self) {
        if self.owners.len() < MAX_PAIRS {
            return;
        }
        let n = (MAX_PAIRS / 16).min(self.owners.len());
        let mut ages: Vec<(u64, &(String, String))> = self
            .owners
            .iter()
            .map(|(k, o)| (o.counts.last_seen, k))
            .collect();
        ages.select_nth_unstable(n - 1);
        let gone: Vec<(String, String)> = ages[..n].iter().map(|(_, k)| (*k).clone()).collect();
        for key in gone {
            self.owners.remove(&key);
            self.evicted_pairs += 1;
        }
    }

    /// Makes room for one more device the same way; its pairs go with it.
    fn make_room_for_device(&mut self) {
        if self.devices.len() < MAX_DEVICES {
            return;
        }
        let n = (MAX_DEVICES / 16).min(self.devices.len());
        let mut ages: Vec<(u64, &String)> = self
            .devices
            .iter()
            .map(|(k, d)| (d.counts.last_seen, k))
            .collect();
        ages.select_nth_unstable(n - 1);
        let gone: std::collections::HashSet<String> =
            ages[..n].iter().map(|(_, k)| (*k).clone()).collect();
        self.devices.retain(|k, _| !gone.contains(k));
        let before = self.owners.len();
        self.owners.retain(|(d, _), _| !gone.contains(d));
        self.evicted_pairs += (before - self.owners.len()) as u64;
        self.evicted_devices += n as u64;
    }

    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// Counts a decided flow. True when its (device, owner) pair is new
    /// to the statistics.
    pub fn on_decided(&mut self, ev: &FlowEvent<'_>, now: u64) -> bool {
        if !self.devices.contains_key(ev.device) {
            self.make_room_for_device();
        }
        let key = (ev.device.to_string(), ev.owner.to_string());
        let new_pair = !self.owners.contains_key(&key);
        if new_pair {
            self.new_owners += 1;
            self.make_room();
        }
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
        dev.new_owners += u64::from(new_pair);
        let o = self.owners.entry(key).or_default();
        o.category = ev.category.to_string();
        o.counts.flows += 1;
        o.counts.blocked += u64::from(ev.blocked);
        o.counts.touch(now);
        o.series.add(now, 1, u32::from(ev.blocked), 0, 0);
        if let Some(d) = ev.domain {
            count_bounded(&mut o.domains, d, MAX_DOMAINS);
        }
        if let Some(c) = ev.country {
            count_bounded(&mut o.countries, c, MAX_COUNTRIES);
        }
        new_pair
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
            o.series.add(now, 0, 0, up, down);
        }
    }

    /// A pair's counts: totals, or summed over a range.
    fn counts_of(o: &OwnerStats, range: TimeRange, now: u64) -> Counts {
        if range.is_all() {
            o.counts.clone()
        } else {
            o.series.sum(range, now)
        }
    }

    pub fn device_rows(
        &self,
        filter: Option<&str>,
        range: TimeRange,
        now: u64,
        names: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<DeviceRow> {
        // In a range: each device's counts summed from its owner pairs, in
        // one pass over the pairs; its countries from the pairs active in
        // the range (all of them without one).
        let mut in_range: HashMap<&str, Counts> = HashMap::new();
        let mut countries: HashMap<&str, HashMap<&str, u64>> = HashMap::new();
        for ((dev, _), o) in &self.owners {
            if filter.is_some_and(|f| !f.eq_ignore_ascii_case(dev)) {
                continue;
            }
            if !range.is_all() {
                let c = o.series.sum(range, now);
                if c.is_empty() {
                    continue;
                }
                in_range.entry(dev.as_str()).or_default().add(&c);
            }
            let per = countries.entry(dev.as_str()).or_default();
            for (c, n) in &o.countries {
                *per.entry(c.as_str()).or_default() += n;
            }
        }
        let mut rows: Vec<DeviceRow> = self
            .devices
            .iter()
            .filter(|(k, _)| filter.is_none_or(|f| f.eq_ignore_ascii_case(k)))
            .filter_map(|(k, d)| {
                let c = if range.is_all() {
                    d.counts.clone()
                } else {
                    in_range.remove(k.as_str()).filter(|c| !c.is_empty())?
                };
                Some(DeviceRow {
                    mac: d.mac.clone().unwrap_or_default(),
                    ips: d.ips.iter().cloned().collect(),
                    hostname: names(k),
                    flows: c.flows,
                    blocked: c.blocked,
                    bytes_up: c.bytes_up,
                    bytes_down: c.bytes_down,
                    first_seen: c.first_seen,
                    last_seen: c.last_seen,
                    countries: country_counts(countries.remove(k.as_str()).unwrap_or_default()),
                    new_owners: d.new_owners,
                    maker: None,
                })
            })
            .collect();
        rows.sort_by(|a, b| b.flows.cmp(&a.flows).then(a.mac.cmp(&b.mac)));
        rows
    }

    /// Owner rows summed over devices (or for one device), in a range.
    pub fn owner_rows(&self, filter: Option<&str>, range: TimeRange, now: u64) -> Vec<OwnerRow> {
        let matches = |device: &str| filter.is_none_or(|f| f.eq_ignore_ascii_case(device));
        self.owner_rows_grouped(|device| matches(device).then_some(""), range, now)
            .remove("")
            .unwrap_or_default()
    }

    /// Each of `devices`' owner rows, in one pass over the pairs (a report
    /// asks for fifty devices' at once).
    pub fn owner_rows_by_device(
        &self,
        devices: &[&str],
        range: TimeRange,
        now: u64,
    ) -> HashMap<String, Vec<OwnerRow>> {
        let wanted: HashMap<String, &str> = devices
            .iter()
            .map(|d| (d.to_ascii_lowercase(), *d))
            .collect();
        self.owner_rows_grouped(
            |device| wanted.get(&device.to_ascii_lowercase()).copied(),
            range,
            now,
        )
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Owner rows per group in one pass over the pairs: `group_of` puts a
    /// pair's device in a group (None: left out); within a group a pair's
    /// counts, domains and countries are summed per owner.
    fn owner_rows_grouped<'g>(
        &self,
        group_of: impl Fn(&str) -> Option<&'g str>,
        range: TimeRange,
        now: u64,
    ) -> HashMap<&'g str, Vec<OwnerRow>> {
        type Merged<'s> = (String, Counts, HashMap<&'s str, u64>, HashMap<&'s str, u64>);
        let mut merged: HashMap<(&'g str, &str), Merged<'_>> = HashMap::new();
        for ((device, owner), o) in &self.owners {
            let Some(group) = group_of(device) else {
                continue;
            };
            let c = Self::counts_of(o, range, now);
            if !range.is_all() && c.is_empty() {
                continue;
            }
            let m = merged.entry((group, owner.as_str())).or_insert_with(|| {
                (
                    o.category.clone(),
                    Counts::default(),
                    HashMap::new(),
                    HashMap::new(),
                )
            });
            m.1.add(&c);
            for (d, n) in &o.domains {
                *m.2.entry(d.as_str()).or_default() += n;
            }
            for (country, n) in &o.countries {
                *m.3.entry(country.as_str()).or_default() += n;
            }
        }
        let mut groups: HashMap<&'g str, Vec<OwnerRow>> = HashMap::new();
        for ((group, owner), (category, c, domains, countries)) in merged {
            let mut domains: Vec<(&str, u64)> = domains.into_iter().collect();
            domains.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            groups.entry(group).or_default().push(OwnerRow {
                owner: owner.to_string(),
                parent: crate::owners::parent_of(owner).map(str::to_string),
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
                countries: country_counts(countries),
            });
        }
        for rows in groups.values_mut() {
            rows.sort_by(|a, b| b.flows.cmp(&a.flows).then(a.owner.cmp(&b.owner)));
        }
        groups
    }

    /// Connections over time in `range` (default: as far back as kept),
    /// one line per owner, category or device (of one device, or all),
    /// from the finest series that reaches back to the range's start. At
    /// most `lines` lines, the most connections first; the rest are summed
    /// in one line keyed `(other)`.
    pub fn series(
        &self,
        filter: Option<&str>,
        by: SeriesBy,
        range: TimeRange,
        lines: usize,
        now: u64,
    ) -> SeriesRows {
        let since = range.since.unwrap_or(0);
        let pick = finest_series_from(since, now);
        let (step, keep) = SERIES[pick];
        let since = since.max(oldest_kept(step, keep, now));
        let since = since - since % step;
        let until = range.until.unwrap_or(u64::MAX).min(now.saturating_add(1));
        let mut per_key: HashMap<&str, BTreeMap<u64, [u64; 3]>> = HashMap::new();
        for ((device, owner), o) in &self.owners {
            if filter.is_some_and(|f| !f.eq_ignore_ascii_case(device)) {
                continue;
            }
            let key = match by {
                SeriesBy::Owner => owner,
                SeriesBy::Category => &o.category,
                SeriesBy::Device => device,
            };
            let mut points = o.series.0[pick]
                .iter()
                .filter(|b| b.start + step > since && b.start < until)
                .peekable();
            if points.peek().is_none() {
                continue;
            }
            let line = per_key.entry(key.as_str()).or_default();
            for b in points {
                let p = line.entry(b.start).or_default();
                p[0] += u64::from(b.flows);
                p[1] += u64::from(b.blocked);
                p[2] += b.up + b.down;
            }
        }
        let total = |points: &BTreeMap<u64, [u64; 3]>| {
            points
                .values()
                .fold((0, 0), |(f, b), p| (f + p[0], b + p[2]))
        };
        let mut keyed: Vec<(&str, BTreeMap<u64, [u64; 3]>)> = per_key.into_iter().collect();
        keyed.sort_by(|a, b| {
            let (ta, tb) = (total(&a.1), total(&b.1));
            tb.cmp(&ta).then(a.0.cmp(b.0))
        });
        let mut other: BTreeMap<u64, [u64; 3]> = BTreeMap::new();
        for (_, points) in keyed.drain(lines.min(keyed.len())..) {
            for (t, p) in points {
                let o = other.entry(t).or_default();
                for i in 0..3 {
                    o[i] += p[i];
                }
            }
        }
        if !other.is_empty() {
            keyed.push((OTHER_KEY, other));
        }
        SeriesRows {
            by,
            step,
            since,
            until: until.div_ceil(step).saturating_mul(step),
            lines: keyed
                .into_iter()
                .map(|(key, points)| SeriesLine {
                    key: key.to_string(),
                    points: points
                        .into_iter()
                        .map(|(t, p)| [t, p[0], p[1], p[2]])
                        .collect(),
                })
                .collect(),
        }
    }

    /// Drops pairs whose buckets have all aged out and whose totals are
    /// older than the longest series (90 days).
    pub fn expire(&mut self, now: u64) {
        let horizon = now.saturating_sub(SERIES[2].0 * SERIES[2].1 as u64);
        self.owners
            .retain(|_, o| !(o.series.is_empty() && o.counts.last_seen < horizon));
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
    /// Where its connections went: countries, the most first.
    #[serde(default)]
    pub countries: Vec<CountryCount>,
    /// Owners it reached for the first time since the statistics began
    /// (whatever the range).
    #[serde(default)]
    pub new_owners: u64,
    /// Who made it, when its config says (`option maker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maker: Option<String>,
}

/// A destination country (ISO 3166-1 alpha-2) and the connections to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountryCount {
    pub country: String,
    pub flows: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRow {
    pub owner: String,
    /// The company the owner belongs to (Umeng: Alibaba), when another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub category: String,
    pub flows: u64,
    pub blocked: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub domains: Vec<String>,
    /// Where its connections went: countries, the most first.
    #[serde(default)]
    pub countries: Vec<CountryCount>,
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
    /// The company the owner belongs to, when another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Hosting owner of the destination address, when the owner database
    /// knows its network (a flow to Xiaomi on Alibaba Cloud: owner Xiaomi,
    /// host Alibaba Cloud).
    pub host: Option<String>,
    /// The destination's country (ISO 3166-1 alpha-2): where a geolocation
    /// database puts the address, else where its network is registered.
    #[serde(default)]
    pub country: Option<String>,
    /// For a DNS flow (port 53): the name its first question asked. The
    /// flow's domain and owner stay those of the resolver it went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
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

/// A device reached an owner for the first time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOwnerRow {
    pub device: String,
    pub owner: String,
    pub category: String,
    /// The name it was reached by, when known.
    pub domain: Option<String>,
    /// Unix seconds.
    pub time: u64,
}

/// What a series line is per: owner, category or device.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesBy {
    #[default]
    Owner,
    Category,
    Device,
}

impl SeriesBy {
    pub fn parse(s: &str) -> Option<SeriesBy> {
        Some(match s {
            "owner" => SeriesBy::Owner,
            "category" => SeriesBy::Category,
            "device" => SeriesBy::Device,
            _ => return None,
        })
    }
}

/// The key of the line that sums the lines past the limit.
pub const OTHER_KEY: &str = "(other)";

/// Connections over time: buckets `step` seconds wide from `since` to
/// `until`. Only ever written (as JSON, by the daemon).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesRows {
    pub by: SeriesBy,
    pub step: u64,
    pub since: u64,
    pub until: u64,
    pub lines: Vec<SeriesLine>,
}

/// One key's buckets with traffic: `[start, flows, blocked, bytes]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesLine {
    pub key: String,
    pub points: Vec<[u64; 4]>,
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
    /// Connections decided without a name for any reason (`undecided`
    /// applied to them).
    #[serde(default)]
    pub nameless: u64,
    /// DNS answers for blocked names dropped because they could not be
    /// rewritten, and DNS-over-TCP connections refused for one.
    #[serde(default)]
    pub dns_refused: u64,
    /// Bytes the connections waiting for a name hold now (at most
    /// `max_pending`), and how many were decided without a name because
    /// reading on would have passed it.
    #[serde(default)]
    pub pending_bytes: u64,
    #[serde(default)]
    pub pending_overflow: u64,
    /// Packets the kernel dropped unjudged because the queue was full
    /// (`queue_dropped`) or the daemon's socket buffer was
    /// (`queue_user_dropped`), from /proc/net/netfilter/nfnetlink_queue.
    #[serde(default)]
    pub queue_dropped: u64,
    #[serde(default)]
    pub queue_user_dropped: u64,
    /// Live connections whose verdict changed at a reload.
    pub rejudged: u64,
    /// Device × owner pairs seen for the first time since the start.
    #[serde(default)]
    pub new_owners: u64,
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
            country: None,
            blocked,
        };
        s.on_decided(&ev("Xiaomi", true, Some("tracking.miui.com")), 10);
        s.on_decided(&ev("Xiaomi", false, Some("api.xiaomi.com")), 11);
        s.on_decided(&ev("Google", false, None), 12);
        s.add_bytes("02:00:00:00:77:02", "Google", 100, 5000, 13);
        let d = s.device_rows(None, TimeRange::default(), 13, &|_| None);
        assert_eq!((d[0].flows, d[0].blocked, d[0].bytes_down), (3, 1, 5000));
        assert_eq!((d[0].first_seen, d[0].last_seen), (10, 13));
        let o = s.owner_rows(Some("02:00:00:00:77:02"), TimeRange::default(), 13);
        assert_eq!(o[0].owner, "Xiaomi");
        assert_eq!((o[0].flows, o[0].blocked), (2, 1));
        assert_eq!(o[1].bytes_up, 100);
        assert!(s
            .owner_rows(Some("aa:bb:cc:dd:ee:ff"), TimeRange::default(), 13)
            .is_empty());
    }

    /// Countries: per owner and per device, the most connections first;
    /// a pair keeps at most `MAX_COUNTRIES` (a new one replaces the least
    /// counted); a state saved before countries existed loads without.
    #[test]
    fn countries_are_counted_per_owner_and_device() {
        let mut s = Stats::default();
        fn ev<'a>(owner: &'a str, country: Option<&'a str>) -> FlowEvent<'a> {
            FlowEvent {
                device: "02:00:00:00:77:02",
                mac: Some("02:00:00:00:77:02"),
                ip: "192.168.77.2".into(),
                owner,
                category: "cloud",
                domain: None,
                country,
                blocked: false,
            }
        }
        for (owner, country) in [
            ("Alibaba Cloud", Some("SG")),
            ("Alibaba Cloud", Some("SG")),
            ("Alibaba Cloud", Some("CN")),
            ("Google", Some("US")),
            ("Google", None),
        ] {
            s.on_decided(&ev(owner, country), 10);
        }
        let o = s.owner_rows(None, TimeRange::default(), 10);
        let of = |name: &str| {
            o.iter()
                .find(|r| r.owner == name)
                .unwrap()
                .countries
                .clone()
        };
        let cc = |c: &str, flows| CountryCount {
            country: c.into(),
            flows,
        };
        assert_eq!(of("Alibaba Cloud"), [cc("SG", 2), cc("CN", 1)]);
        assert_eq!(of("Google"), [cc("US", 1)]);
        let d = s.device_rows(None, TimeRange::default(), 10, &|_| None);
        assert_eq!(d[0].countries, [cc("SG", 2), cc("CN", 1), cc("US", 1)]);
        for i in 0..100u8 {
            let code = format!("{}{}", (b'A' + i / 26) as char, (b'A' + i % 26) as char);
            s.on_decided(&ev("Google", Some(&code)), 11);
        }
        let google = s.owner_rows(None, TimeRange::default(), 11);
        let google = google.iter().find(|r| r.owner == "Google").unwrap();
        assert_eq!(google.countries.len(), MAX_COUNTRIES);
        // An older state file's pair, without countries.
        let old: OwnerStats = serde_json::from_str(
            r#"{"category":"cloud","counts":{"flows":1,"blocked":0,"bytes_up":0,"bytes_down":0,"first_seen":1,"last_seen":1},"domains":{},"series":[[],[],[]]}"#,
        )
        .unwrap();
        assert!(old.countries.is_empty());
    }

    /// 50,000 rotating source MACs: devices stay bounded, eviction comes in
    /// batches, and the newest devices are the ones kept.
    #[test]
    fn rotating_macs_keep_devices_and_pairs_bounded() {
        let mut s = Stats::default();
        for i in 0..50_000u64 {
            let mac = format!(
                "02:00:{:02x}:{:02x}:{:02x}:01",
                i >> 16,
                (i >> 8) & 0xff,
                i & 0xff
            );
            let ev = FlowEvent {
                device: &mac,
                mac: Some(&mac),
                ip: "192.168.77.9".into(),
                owner: "Xiaomi",
                category: "telemetry",
                domain: None,
                country: None,
                blocked: false,
            };
            s.on_decided(&ev, 1000 + i);
            assert!(s.device_count() <= MAX_DEVICES && s.owners.len() <= MAX_PAIRS);
        }
        assert_eq!(s.device_count() + s.evicted_devices as usize, 50_000);
        let newest = "02:00:00:c3:4f:01"; // i = 49,999
        assert_eq!(
            s.device_rows(Some(newest), TimeRange::default(), 60_000, &|_| None)
                .len(),
            1
        );
        assert!(s
            .device_rows(
                Some("02:00:00:00:00:01"),
                TimeRange::default(),
                60_000,
                &|_| None
            )
            .is_empty());
    }

    fn event(owner: &str) -> FlowEvent<'_> {
        FlowEvent {
            device: "d",
            mac: None,
            ip: "1.1.1.1".into(),
            owner,
            category: "c",
            domain: None,
            country: None,
            blocked: false,
        }
    }

    #[test]
    fn time_ranges_use_minutes_hours_and_days() {
        let mut s = Stats::default();
        let day = 86_400;
        let t0 = 100 * day; // midnight
                            // Yesterday at noon: Xiaomi; today 10:00 and 10:30: Google.
        s.on_decided(&event("Xiaomi"), t0 - day / 2);
        s.add_bytes("d", "Xiaomi", 10, 1000, t0 - day / 2);
        s.on_decided(&event("Google"), t0 + 10 * 3600);
        s.on_decided(&event("Google"), t0 + 10 * 3600 + 1800);
        let now = t0 + 10 * 3600 + 1830;
        fn owners(s: &Stats, since: u64, until: Option<u64>, now: u64) -> Vec<(String, u64)> {
            s.owner_rows(
                None,
                TimeRange {
                    since: Some(since),
                    until,
                },
                now,
            )
            .into_iter()
            .map(|r| (r.owner, r.flows))
            .collect()
        }
        // The last 10 minutes: minute buckets, only the 10:30 flow.
        assert_eq!(owners(&s, now - 600, None, now), vec![("Google".into(), 1)]);
        // The last day: hour buckets.
        assert_eq!(
            owners(&s, now - day, None, now),
            vec![("Google".into(), 2), ("Xiaomi".into(), 1)]
        );
        // Yesterday only.
        assert_eq!(
            owners(&s, t0 - day, Some(t0), now),
            vec![("Xiaomi".into(), 1)]
        );
        let x = s.owner_rows(
            None,
            TimeRange {
                since: Some(t0 - day),
                until: Some(t0),
            },
            now,
        );
        assert_eq!(x[0].bytes_down, 1000);
        // Devices in a range are summed from their owners.
        let d = s.device_rows(
            None,
            TimeRange {
                since: Some(now - 600),
                until: None,
            },
            now,
            &|_| None,
        );
        assert_eq!(d[0].flows, 1);
        // 100 days later the hourly and minute series are gone, the daily
        // one too after 90 days; the totals stay.
        let later = now + 100 * day;
        s.on_decided(&event("Other"), later);
        assert!(owners(&s, later - 95 * day, None, later)
            .iter()
            .all(|(o, _)| o == "Other"));
        assert_eq!(s.owner_rows(None, TimeRange::default(), later).len(), 3);
    }

    #[test]
    fn pairs_are_bounded_and_snapshots_round_trip() {
        let mut s = Stats::default();
        for i in 0..MAX_PAIRS + 10 {
            s.on_decided(&event(&format!("owner{i}")), 1 + i as u64);
        }
        // One batch of the least recently active sixteenth made room.
        assert_eq!(s.evicted_pairs, MAX_PAIRS as u64 / 16);
        let rows = s.owner_rows(None, TimeRange::default(), 1 << 20);
        assert_eq!(rows.len(), MAX_PAIRS + 10 - MAX_PAIRS / 16);
        assert!(rows
            .iter()
            .any(|r| r.owner == format!("owner{}", MAX_PAIRS / 16)));
        assert!(
            !rows.iter().any(|r| r.owner == "owner0"),
            "oldest went first"
        );
        let snap = s.snapshot();
        let back = Stats::restore(snap.clone());
        assert_eq!(back.snapshot().pairs(), snap.pairs());
        assert_eq!(back.owner_rows(None, TimeRange::default(), 1 << 20), rows);
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
                    country: None,
                    blocked: false,
                },
                1,
            );
        }
        assert!(s.owner_rows(None, TimeRange::default(), 1)[0].domains.len() <= MAX_DOMAINS);
    }

    #[test]
    fn series_are_per_key_in_buckets_with_the_rest_summed() {
        let mut s = Stats::default();
        let ev = |device, owner, category, blocked| FlowEvent {
            device,
            mac: None,
            ip: "192.168.77.2".into(),
            owner,
            category,
            domain: None,
            country: None,
            blocked,
        };
        let now = 1_000_000 * 60;
        let a = "02:00:00:00:77:02";
        s.on_decided(&ev(a, "Xiaomi", "telemetry", true), now - 600);
        s.on_decided(&ev(a, "Xiaomi", "telemetry", false), now - 590);
        s.on_decided(&ev(a, "Google", "services", false), now - 60);
        s.on_decided(&ev("192.168.77.9", "Meta", "social", false), now - 30);
        s.add_bytes(a, "Google", 10, 90, now - 50);
        let last_hour = TimeRange {
            since: Some(now - 3600),
            until: None,
        };
        let r = s.series(None, SeriesBy::Owner, last_hour, 10, now);
        assert_eq!((r.step, r.since, r.until), (60, now - 3600, now + 60));
        let keys: Vec<&str> = r.lines.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(keys, ["Xiaomi", "Google", "Meta"]);
        assert_eq!(r.lines[0].points, vec![[now - 600, 2, 1, 0]]);
        assert_eq!(r.lines[1].points, vec![[now - 60, 1, 0, 100]]);
        // One device; by category; past the limit the rest is one line.
        let r = s.series(Some(a), SeriesBy::Category, last_hour, 1, now);
        let keys: Vec<&str> = r.lines.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(keys, ["telemetry", OTHER_KEY]);
        // A week back: hourly buckets; no range: daily.
        let week = TimeRange {
            since: Some(now - 7 * 86_400 + 3600),
            until: None,
        };
        assert_eq!(s.series(None, SeriesBy::Device, week, 10, now).step, 3600);
        let all = s.series(None, SeriesBy::Device, TimeRange::default(), 10, now);
        assert_eq!(all.step, 86_400);
        assert_eq!(all.lines.len(), 2);
        // An empty range has no lines.
        let later = TimeRange {
            since: Some(now + 10),
            until: None,
        };
        assert!(s
            .series(None, SeriesBy::Owner, later, 10, now)
            .lines
            .is_empty());
        assert_eq!(s.new_owners, 3);
        let d = s.device_rows(Some(a), TimeRange::default(), now, &|_| None);
        assert_eq!(d[0].new_owners, 2);
    }

    #[test]
    fn hostile_ranges_neither_overflow_nor_panic() {
        let mut s = Stats::default();
        s.on_decided(
            &FlowEvent {
                device: "d",
                mac: None,
                ip: "192.168.77.2".into(),
                owner: "Google",
                category: "services",
                domain: None,
                country: None,
                blocked: false,
            },
            1000,
        );
        for (since, until) in [
            (Some(u64::MAX), None),
            (None, Some(u64::MAX)),
            (Some(u64::MAX), Some(0)),
            (Some(0), Some(0)),
            (Some(u64::MAX - 1), Some(u64::MAX)),
        ] {
            let range = TimeRange { since, until };
            for now in [0, 1000, u64::MAX] {
                let r = s.series(None, SeriesBy::Owner, range, usize::MAX, now);
                assert!(r.since <= r.until || r.lines.is_empty(), "{range:?} {now}");
                let _ = s.owner_rows(None, range, now);
                let _ = s.device_rows(None, range, now, &|_| None);
            }
        }
    }

    #[test]
    fn owner_rows_by_device_agree_with_one_device_at_a_time() {
        let mut s = Stats::default();
        let devices = ["02:00:00:00:77:02", "02:00:00:00:77:03", "192.168.77.9"];
        for (i, owner) in ["Google", "Xiaomi", "Umeng", "Meta", "Google"]
            .iter()
            .enumerate()
        {
            for d in &devices[..1 + i % 3] {
                s.on_decided(
                    &FlowEvent {
                        device: d,
                        mac: None,
                        ip: "192.168.77.2".into(),
                        owner,
                        category: "analytics",
                        domain: Some("a.example"),
                        country: Some("SG"),
                        blocked: i % 2 == 0,
                    },
                    1000 + i as u64,
                );
            }
        }
        for range in [
            TimeRange::default(),
            TimeRange {
                since: Some(1002),
                until: None,
            },
        ] {
            let all = s.owner_rows_by_device(&devices, range, 2000);
            for d in devices {
                assert_eq!(
                    all.get(d).cloned().unwrap_or_default(),
                    s.owner_rows(Some(d), range, 2000),
                    "{d} {range:?}"
                );
            }
            // Asked in another case, answered under the key asked with.
            let upper =
                s.owner_rows_by_device(&["02:00:00:00:77:02".to_uppercase().as_str()], range, 2000);
            assert_eq!(upper.len(), 1);
        }
    }

    #[test]
    fn a_range_counts_its_oldest_minute_and_hour() {
        for (age, since, step) in [
            (3590, 3600, 60),
            (3600, 3600, 60),
            (7 * 86_400 - 60, 7 * 86_400, 3600),
            (7 * 86_400 - 3600 + 1, 7 * 86_400 - 3600, 3600),
        ] {
            for asked_early in [0, 1, 30, 59] {
                let mut s = Stats::default();
                let now = 1_800_000_000 + 17;
                let ev = |owner| FlowEvent {
                    device: "d",
                    mac: None,
                    ip: "192.168.77.2".into(),
                    owner,
                    category: "services",
                    domain: None,
                    country: None,
                    blocked: false,
                };
                s.on_decided(&ev("Old"), now - age);
                s.on_decided(&ev("New"), now);
                // The CLI worked out `since` a moment before the daemon
                // answered.
                let range = TimeRange {
                    since: Some(now - asked_early - since),
                    until: None,
                };
                let r = s.series(None, SeriesBy::Owner, range, 10, now);
                assert_eq!(r.step, step, "age {age}, asked {asked_early} s early");
                let flows: u64 = s.owner_rows(None, range, now).iter().map(|o| o.flows).sum();
                assert_eq!(flows, 2, "age {age}, asked {asked_early} s early");
                assert_eq!(r.lines.len(), 2, "age {age}");
            }
        }
    }
}
