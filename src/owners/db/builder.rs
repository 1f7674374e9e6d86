//! Compiling an owner database (`phonehome db compile`): domains with
//! their (owner, source, category, flags) values, the Public Suffix List,
//! AS ranges and country ranges (overlaps flattened, the most specific
//! range winning, neighbours of one value merged), written in the file
//! layout `OwnerDb` reads.

use super::*;

/// Collects entries, then writes the file. The first source to name a
/// domain wins (the built-in table goes first unless left out).
#[derive(Default)]
pub struct Builder {
    strings: Vec<String>,
    string_ids: HashMap<String, u32>,
    owners: Vec<u32>,
    owner_ids: HashMap<String, u32>,
    sources: Vec<u32>,
    /// Domain → index into `values`.
    domains: HashMap<String, u32>,
    /// Distinct packed values; the domain table stores indexes into them
    /// (a few bits instead of 64).
    values: Vec<u64>,
    value_ids: HashMap<u64, u32>,
    psl: BTreeMap<Vec<u8>, u64>,
    asns: BTreeMap<u32, (u32, u32)>,
    v4: Vec<(u32, u32, u32)>,
    v6: Vec<(u128, u128, u32)>,
    /// Country ranges (code as `country_value`), by where they came from:
    /// a geolocation database, or the networks' registration country.
    geo_v4: Vec<(u32, u32, u32)>,
    geo_v6: Vec<(u128, u128, u32)>,
    registered_v4: Vec<(u32, u32, u32)>,
    registered_v6: Vec<(u128, u128, u32)>,
    pub duplicates: usize,
}

/// Address ranges as sorted starts, each with its value until the next
/// start: where ranges overlap, the most specific (the one that starts
/// later, or of two with one start the shorter) wins, and of two equal
/// ranges the one added last; gaps get NONE; neighbours with the same
/// value are merged. The value is an ASN's index, or a country code.
pub(super) fn flatten<T: Copy + Ord + std::ops::Add<Output = T> + From<u8>>(
    mut ranges: Vec<(T, T, u32)>,
    max: T,
    value_of: impl Fn(u32) -> u32,
) -> Vec<(T, u32)> {
    // Enclosing ranges before what they enclose (stable: equal ranges keep
    // the order they were added in).
    ranges.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut out: Vec<(T, u32)> = Vec::new();
    let emit = |out: &mut Vec<(T, u32)>, start: T, value: u32| {
        if let Some(last) = out.last_mut() {
            if last.0 == start {
                last.1 = value;
                let n = out.len();
                if n >= 2 && out[n - 2].1 == value {
                    out.pop();
                }
                return;
            }
            if last.1 == value {
                return;
            }
        }
        out.push((start, value));
    };
    // The ranges covering the current address, innermost last: (last
    // address, value).
    let mut open: Vec<(T, u32)> = Vec::new();
    // Closes every open range that ends before `before` (all of them for
    // None): after each, the range around it (or nothing) resumes.
    let close = |out: &mut Vec<(T, u32)>, open: &mut Vec<(T, u32)>, before: Option<T>| {
        while let Some(&(end, _)) = open.last() {
            if before.is_some_and(|b| end >= b) {
                break;
            }
            open.pop();
            // Ranges that ended inside this one are over too.
            while open.last().is_some_and(|&(e, _)| e <= end) {
                open.pop();
            }
            if end < max {
                emit(out, end + T::from(1), open.last().map_or(NONE, |o| o.1));
            }
        }
    };
    for (first, last, value) in ranges {
        close(&mut out, &mut open, Some(first));
        let v = value_of(value);
        emit(&mut out, first, v);
        open.push((last, v));
    }
    close(&mut out, &mut open, None);
    out
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(id) = self.string_ids.get(s) {
            return *id;
        }
        let id = self.strings.len() as u32;
        self.strings.push(s.to_string());
        self.string_ids.insert(s.to_string(), id);
        id
    }

    fn owner_id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.owner_ids.get(name) {
            return *id;
        }
        let sid = self.intern(name);
        let id = self.owners.len() as u32;
        self.owners.push(sid);
        self.owner_ids.insert(name.to_string(), id);
        id
    }

    /// Registers a source (list) by name; at most 255.
    pub fn source(&mut self, name: &str) -> Result<u8, String> {
        let sid = self.intern(name);
        if let Some(i) = self.sources.iter().position(|s| *s == sid) {
            return Ok(i as u8);
        }
        if self.sources.len() >= 255 {
            return Err("more than 255 sources".into());
        }
        self.sources.push(sid);
        Ok((self.sources.len() - 1) as u8)
    }

    /// Adds `domain` (and everything under it). Returns false when an
    /// earlier source already named it.
    pub fn add_domain(
        &mut self,
        domain: &str,
        owner: &str,
        category: Category,
        source: u8,
        flags: u8,
    ) -> bool {
        if self.domains.contains_key(domain) {
            self.duplicates += 1;
            return false;
        }
        let owner = self.owner_id(owner);
        let packed = Packed {
            owner,
            source,
            category,
            flags,
        };
        let encoded = packed.encode();
        let next = self.values.len() as u32;
        let id = *self.value_ids.entry(encoded).or_insert(next);
        if id == next {
            self.values.push(encoded);
        }
        self.domains.insert(domain.to_string(), id);
        true
    }

    pub fn domain_count(&self) -> usize {
        self.domains.len()
    }

    /// Names an ASN (first description wins) and, when known, its
    /// hosting owner.
    pub fn add_asn(&mut self, asn: u32, as_org: &str, host_owner: Option<&str>) {
        if self.asns.contains_key(&asn) {
            return;
        }
        let org = self.intern(as_org);
        let host = match host_owner {
            Some(h) => self.intern(h),
            None => NONE,
        };
        self.asns.insert(asn, (org, host));
    }

    pub fn add_range(&mut self, first: IpAddr, last: IpAddr, asn: u32) -> Result<(), String> {
        match (first, last) {
            (IpAddr::V4(a), IpAddr::V4(b)) if u32::from(a) <= u32::from(b) => {
                self.v4.push((a.into(), b.into(), asn))
            }
            (IpAddr::V6(a), IpAddr::V6(b)) if u128::from(a) <= u128::from(b) => {
                self.v6.push((a.into(), b.into(), asn))
            }
            _ => return Err(format!("bad range {first} - {last}")),
        }
        Ok(())
    }

    /// The country of the addresses `first..=last`: `geolocated` from a
    /// geolocation database (where the servers are), else the country the
    /// network is registered in. `code` must pass `country_value`.
    pub fn add_country_range(
        &mut self,
        first: IpAddr,
        last: IpAddr,
        code: &str,
        geolocated: bool,
    ) -> Result<(), String> {
        let value = country_value(code).ok_or_else(|| format!("'{code}' is not a country code"))?;
        let (v4, v6) = if geolocated {
            (&mut self.geo_v4, &mut self.geo_v6)
        } else {
            (&mut self.registered_v4, &mut self.registered_v6)
        };
        match (first, last) {
            (IpAddr::V4(a), IpAddr::V4(b)) if u32::from(a) <= u32::from(b) => {
                v4.push((a.into(), b.into(), value))
            }
            (IpAddr::V6(a), IpAddr::V6(b)) if u128::from(a) <= u128::from(b) => {
                v6.push((a.into(), b.into(), value))
            }
            _ => return Err(format!("bad range {first} - {last}")),
        }
        Ok(())
    }

    pub fn range_count(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Country ranges added (both kinds).
    pub fn country_range_count(&self) -> usize {
        self.geo_v4.len() + self.geo_v6.len() + self.registered_v4.len() + self.registered_v6.len()
    }

    /// Loads the Public Suffix List's ICANN section (the PRIVATE section is
    /// left out on purpose: `s3.amazonaws.com` buckets group under Amazon).
    pub fn set_psl(&mut self, text: &str) -> usize {
        self.psl.clear();
        let mut icann = false;
        for line in text.lines() {
            let line = line.trim();
            if line.contains("===BEGIN ICANN DOMAINS===") {
                icann = true;
            } else if line.contains("===END ICANN DOMAINS===") {
                icann = false;
            }
            if !icann || line.is_empty() || line.starts_with("//") {
                continue;
            }
            let rule = line.split_whitespace().next().unwrap_or("").to_lowercase();
            let (name, kind) = if let Some(r) = rule.strip_prefix("*.") {
                (r.to_string(), PSL_WILDCARD)
            } else if let Some(r) = rule.strip_prefix('!') {
                (r.to_string(), PSL_EXCEPTION)
            } else {
                (rule, PSL_NORMAL)
            };
            // A wildcard and a plain rule for the same name: keep both
            // meanings by preferring the wildcard (it implies the plain).
            let e = self.psl.entry(reversed(&name)).or_insert(kind);
            if kind == PSL_WILDCARD {
                *e = kind;
            }
        }
        self.psl.len()
    }

    /// Writes the database file's bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, String> {
        for asn in self
            .v4
            .iter()
            .map(|r| r.2)
            .chain(self.v6.iter().map(|r| r.2))
            .collect::<Vec<_>>()
        {
            if !self.asns.contains_key(&asn) {
                let name = format!("AS{asn}");
                self.add_asn(asn, &name, None);
            }
        }
        let asn_list: Vec<(u32, (u32, u32))> = self.asns.iter().map(|(a, v)| (*a, *v)).collect();
        let asn_index: HashMap<u32, u32> = asn_list
            .iter()
            .enumerate()
            .map(|(i, (a, _))| (*a, i as u32))
            .collect();
        let index_of = |asn: u32| asn_index.get(&asn).copied().unwrap_or(NONE);
        let v4 = flatten(std::mem::take(&mut self.v4), u32::MAX, index_of);
        let v6 = flatten(std::mem::take(&mut self.v6), u128::MAX, index_of);
        // Countries, per address family: a geolocation database's when one
        // was imported for that family, else the registration countries.
        fn geo_or<R>(geo: Vec<R>, registered: Vec<R>) -> Vec<R> {
            if geo.is_empty() {
                registered
            } else {
                geo
            }
        }
        let c4 = geo_or(
            std::mem::take(&mut self.geo_v4),
            std::mem::take(&mut self.registered_v4),
        );
        let c6 = geo_or(
            std::mem::take(&mut self.geo_v6),
            std::mem::take(&mut self.registered_v6),
        );
        let c4 = flatten(c4, u32::MAX, |v| v);
        let c6 = flatten(c6, u128::MAX, |v| v);
        // Without countries the file is format 2, which older phonehome
        // builds read too.
        let format_2 = c4.is_empty() && c6.is_empty();

        let mut out = if format_2 { MAGIC_2 } else { MAGIC }.to_vec();
        let section = |out: &mut Vec<u8>, bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        };
        // strings: count, offsets (count + 1), blob
        let mut strings = Vec::new();
        strings.extend_from_slice(&(self.strings.len() as u32).to_le_bytes());
        let mut at = 0u32;
        strings.extend_from_slice(&at.to_le_bytes());
        for s in &self.strings {
            at += s.len() as u32;
            strings.extend_from_slice(&at.to_le_bytes());
        }
        for s in &self.strings {
            strings.extend_from_slice(s.as_bytes());
        }
        section(&mut out, &strings);
        let ids = |v: &[u32]| v.iter().flat_map(|i| i.to_le_bytes()).collect::<Vec<u8>>();
        section(&mut out, &ids(&self.owners));
        section(&mut out, &ids(&self.sources));
        let values: Vec<u8> = self.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        section(&mut out, &values);
        let mut names: Vec<(&str, u32)> =
            self.domains.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        // A fixed insertion order makes the file a function of its input.
        names.sort_unstable();
        section(&mut out, &domain_table::build(&names, self.values.len())?);
        let psl = fst::Map::from_iter(self.psl.iter().map(|(k, v)| (k, *v)))
            .map_err(|e| format!("public suffix list: {e}"))?;
        section(&mut out, psl.as_fst().as_bytes());
        let mut asns = Vec::with_capacity(asn_list.len() * 12);
        for (asn, (org, host)) in &asn_list {
            asns.extend_from_slice(&asn.to_le_bytes());
            asns.extend_from_slice(&org.to_le_bytes());
            asns.extend_from_slice(&host.to_le_bytes());
        }
        section(&mut out, &asns);
        let tables = if format_2 {
            &[(&v4, &v6)][..]
        } else {
            &[(&v4, &v6), (&c4, &c6)][..]
        };
        for (r4, r6) in tables {
            let mut bytes = Vec::with_capacity(r4.len() * 8);
            for (start, value) in r4.iter() {
                bytes.extend_from_slice(&start.to_le_bytes());
                bytes.extend_from_slice(&value.to_le_bytes());
            }
            section(&mut out, &bytes);
            let mut bytes = Vec::with_capacity(r6.len() * 20);
            for (start, value) in r6.iter() {
                bytes.extend_from_slice(&start.to_le_bytes());
                bytes.extend_from_slice(&value.to_le_bytes());
            }
            section(&mut out, &bytes);
        }
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        Ok(out)
    }
}
