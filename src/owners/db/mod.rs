//! The compiled owner database: one file, built by `phonehome db compile`
//! from the built-in table and imported lists, loaded by the daemon with a
//! single read and used in place (no per-entry allocation).
//!
//! Domains live in a static fingerprint hash table (`domain_table`): one
//! pass over a name hashes every label-aligned suffix, one probe of two
//! cache lines per suffix finds the longest listed one. ~8.8 bytes per
//! domain and ~9 M lookups/s on the development machine, where the FST of
//! the first format took 9.9 bytes and managed 3.5-4 M/s; why, and what a
//! fingerprint costs in certainty, is in that module's header. An entry's
//! value is an index into a table of distinct (owner, source, category,
//! flags) values; owners, sources and AS organisations are interned strings.
//!
//! The Public Suffix List (ICANN section) is an FST (the `fst` crate) keyed
//! by reversed rules, so one walk down it visits every suffix of a name:
//! ~7,400 rules in ~46 KB, used once per new flow, exact (a public suffix
//! must never be guessed). IP prefixes are sorted range starts
//! (merged where neighbours share an ASN) searched by bisection, pointing
//! into an ASN table: ASN, AS organisation, hosting owner. Countries are a
//! second pair of range tables of the same shape, whose value is the ISO
//! 3166 code: from a geolocation database (a country MMDB) when one was
//! imported, else the networks' registration country (iptoasn's column),
//! never a mix (a range of one would cut into the other's).
//!
//! File layout (little-endian): magic `PHOWNDB3`, then sections each
//! prefixed by a u64 length: strings, owners, sources, values, domain table,
//! PSL FST, ASN table, IPv4 ranges, IPv6 ranges, IPv4 country ranges, IPv6
//! country ranges; then an FNV-1a 64 checksum of everything before it.
//! Format 2 (no country sections) is still read. A file that is short, of
//! another version or fails the checksum is refused with an error saying
//! so.
//!
//! Over 600 lines: the reader of the file format (sections, checks,
//! lookups) is 600 lines; the rest is its unit tests.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use fst::raw::{Fst, Output};

use super::domain_table::{self, DomainTable};
use super::Category;

mod builder;
pub use builder::Builder;

const MAGIC: &[u8; 8] = b"PHOWNDB3";
/// Format 2: the same without the two country sections.
const MAGIC_2: &[u8; 8] = b"PHOWNDB2";
const NONE: u32 = u32::MAX;
const SECTIONS: usize = 11;

/// Entry flag: the name came from a CNAME-cloaking list (a first-party
/// alias of the tracker).
pub const FLAG_CNAME_CLOAK: u8 = 1;

/// PSL rule kinds (FST outputs).
const PSL_NORMAL: u64 = 1;
const PSL_WILDCARD: u64 = 2;
const PSL_EXCEPTION: u64 = 3;

/// FNV-1a 64, the checksum of the owner database and of the state file.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn reversed(name: &str) -> Vec<u8> {
    name.bytes().rev().collect()
}

/// A domain-table value: owner index, source index, category, flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Packed {
    owner: u32,
    source: u8,
    category: Category,
    flags: u8,
}

impl Packed {
    fn encode(self) -> u64 {
        (self.owner as u64) << 24
            | (self.source as u64) << 16
            | (self.category.index() as u64) << 8
            | self.flags as u64
    }
    fn decode(v: u64) -> Packed {
        Packed {
            owner: (v >> 24) as u32,
            source: (v >> 16) as u8,
            category: Category::from_index((v >> 8) as u8),
            flags: v as u8,
        }
    }
}

/// What a domain lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainMatch<'a> {
    pub owner: &'a str,
    pub category: Category,
    pub source: &'a str,
    pub flags: u8,
    /// The entry that matched: a suffix of the name looked up.
    pub matched_len: usize,
}

/// What an address lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpMatch<'a> {
    pub asn: u32,
    pub as_org: &'a str,
    /// The company whose network it is, when the ASN is a known hosting or
    /// CDN network (AS45102 → "Alibaba Cloud").
    pub host_owner: Option<&'a str>,
}

// ---------------------------------------------------------------- building

/// The IPv4 address an IPv6 one stands for: IPv4-mapped (`::ffff:a.b.c.d`)
/// and the NAT64 well-known prefix (`64:ff9b::/96`, RFC 6052, what a phone
/// on an IPv6-only network with NAT64 connects to) are looked up as the
/// IPv4 address they carry.
fn embedded_ipv4(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if s[..6] == [0, 0, 0, 0, 0, 0xffff] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., a, b, c, d] = v6.octets();
                IpAddr::from([a, b, c, d])
            } else {
                ip
            }
        }
        v4 => v4,
    }
}

/// An ISO 3166-1 alpha-2 code as stored: its two letters, uppercase, in
/// the low bytes. None for anything else (iptoasn's "None", "ZZ" is kept:
/// it is a code, "unknown or unspecified").
pub fn country_value(code: &str) -> Option<u32> {
    match code.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            Some(u32::from(a.to_ascii_uppercase()) | u32::from(b.to_ascii_uppercase()) << 8)
        }
        _ => None,
    }
}

/// A stored country value as its code; None for no country or a value
/// that is no code.
fn country_code(value: u32) -> Option<[u8; 2]> {
    let code = [value as u8, (value >> 8) as u8];
    (value >> 16 == 0 && code.iter().all(u8::is_ascii_uppercase)).then_some(code)
}

// ---------------------------------------------------------------- reading

/// A sub-slice of the shared file bytes, owned (what `fst` wants).
#[derive(Clone)]
struct Bytes {
    file: Arc<Vec<u8>>,
    range: Range<usize>,
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.file[self.range.clone()]
    }
}

/// A loaded database.
pub struct OwnerDb {
    file: Arc<Vec<u8>>,
    string_offsets: Range<usize>,
    string_blob: Range<usize>,
    string_count: usize,
    owners: Range<usize>,
    sources: Range<usize>,
    values: Range<usize>,
    domains: Range<usize>,
    psl: Fst<Bytes>,
    asns: Range<usize>,
    v4: Range<usize>,
    v6: Range<usize>,
    /// Country ranges (empty in a format 2 file).
    country_v4: Range<usize>,
    country_v6: Range<usize>,
}

/// Whether an FST's footer (its root node's address and key count) can be
/// what it says: the fst crate panics on a 32-bit router when either does
/// not fit a usize (its `u64_to_usize`), and a real FST's root lies inside
/// it. Found by fuzzing the database parser on i686.
fn fst_footer_fits(bytes: &[u8]) -> bool {
    if bytes.len() < 36 {
        return true; // fst refuses it with an error of its own
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    // Versions above 2 end with a 4-byte checksum.
    let end = if u64_at(0) <= 2 {
        bytes.len()
    } else {
        bytes.len() - 4
    };
    let (keys, root) = (u64_at(end - 16), u64_at(end - 8));
    root <= bytes.len() as u64 && usize::try_from(keys).is_ok() && keys <= bytes.len() as u64
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

impl OwnerDb {
    pub fn load(path: &Path) -> Result<OwnerDb, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        OwnerDb::from_bytes(bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<OwnerDb, String> {
        if bytes.len() < MAGIC.len() + 8 || &bytes[..7] != b"PHOWNDB" {
            return Err("not a phonehome owner database".into());
        }
        let section_count = match &bytes[..8] {
            m if m == MAGIC => SECTIONS,
            m if m == MAGIC_2 => SECTIONS - 2,
            _ => {
                return Err(format!(
                    "owner database format {} is not supported (this build reads 2 and {})",
                    bytes[7] as char, MAGIC[7] as char
                ))
            }
        };
        let body = bytes.len() - 8;
        let sum = u64::from_le_bytes(bytes[body..].try_into().expect("8 bytes"));
        if fnv1a(&bytes[..body]) != sum {
            return Err("checksum mismatch (truncated or corrupt file)".into());
        }
        let mut sections = Vec::new();
        let mut at = MAGIC.len();
        for _ in 0..section_count {
            if at + 8 > body {
                return Err("truncated section table".into());
            }
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
            at += 8;
            // Checked: `as usize` would cut a length past 4 GiB on a
            // 32-bit router into another, smaller one.
            let len = usize::try_from(len).map_err(|_| "section runs past the end")?;
            if len > body - at {
                return Err("section runs past the end".into());
            }
            sections.push(at..at + len);
            at += len;
        }
        // Format 2: no countries.
        sections.resize(SECTIONS, at..at);
        let file = Arc::new(bytes);
        let strings = sections[0].clone();
        if strings.len() < 4 {
            return Err("bad string table".into());
        }
        let count = u32_at(&file, strings.start) as usize;
        let offsets_start = strings.start + 4;
        // Checked: on a 32-bit router `(count + 1) * 4` wraps for a count
        // near 2^30 and would pass the bound.
        let offsets_end = count
            .checked_add(1)
            .and_then(|n| n.checked_mul(4))
            .and_then(|n| offsets_start.checked_add(n))
            .filter(|e| *e <= strings.end)
            .ok_or("bad string table")?;
        let blob = offsets_end..strings.end;
        for i in 0..=count {
            let off = u32_at(&file, offsets_start + i * 4) as usize;
            if off > blob.len()
                || (i > 0 && off < u32_at(&file, offsets_start + (i - 1) * 4) as usize)
            {
                return Err("bad string offsets".into());
            }
        }
        if std::str::from_utf8(&file[blob.clone()]).is_err() {
            return Err("string table is not UTF-8".into());
        }
        let fst_of = |r: &Range<usize>, what: &str| {
            if !fst_footer_fits(&file[r.clone()]) {
                return Err(format!("{what}: its footer points outside it"));
            }
            Fst::new(Bytes {
                file: file.clone(),
                range: r.clone(),
            })
            .map_err(|e| format!("{what}: {e}"))
        };
        let psl = fst_of(&sections[5], "public suffix table")?;
        let check_records = |r: &Range<usize>, size: usize, what: &str| {
            if r.len() % size == 0 {
                Ok(())
            } else {
                Err(format!("{what}: bad length"))
            }
        };
        check_records(&sections[1], 4, "owners")?;
        check_records(&sections[2], 4, "sources")?;
        check_records(&sections[3], 8, "values")?;
        check_records(&sections[6], 12, "ASN table")?;
        check_records(&sections[7], 8, "IPv4 ranges")?;
        check_records(&sections[8], 20, "IPv6 ranges")?;
        check_records(&sections[9], 8, "IPv4 country ranges")?;
        check_records(&sections[10], 20, "IPv6 country ranges")?;
        DomainTable::parse(&file[sections[4].clone()], sections[3].len() / 8)?;
        let domains = sections[4].clone();
        let db = OwnerDb {
            string_offsets: offsets_start..offsets_end,
            string_blob: blob,
            string_count: count,
            owners: sections[1].clone(),
            sources: sections[2].clone(),
            values: sections[3].clone(),
            domains,
            psl,
            asns: sections[6].clone(),
            v4: sections[7].clone(),
            v6: sections[8].clone(),
            country_v4: sections[9].clone(),
            country_v6: sections[10].clone(),
            file,
        };
        // Every index stored in the tables must point inside them.
        let ids_ok = |r: &Range<usize>, stride: usize, field: usize, max: usize| {
            (r.start..r.end).step_by(stride).all(
                |at| matches!(u32_at(&db.file, at + field), v if (v as usize) < max || v == NONE),
            )
        };
        if !ids_ok(&db.owners, 4, 0, count)
            || !ids_ok(&db.sources, 4, 0, count)
            || !ids_ok(&db.asns, 12, 4, count)
            || !ids_ok(&db.asns, 12, 8, count)
        {
            return Err("string index out of range".into());
        }
        let asn_count = db.asns.len() / 12;
        if !ids_ok(&db.v4, 8, 4, asn_count) || !ids_ok(&db.v6, 20, 16, asn_count) {
            return Err("ASN index out of range".into());
        }
        // Range starts strictly increase (the lookup bisects them).
        let sorted = |r: &Range<usize>, stride: usize| {
            let start = |at: usize| -> u128 {
                if stride == 8 {
                    u128::from(u32_at(&db.file, at))
                } else {
                    u128::from_le_bytes(db.file[at..at + 16].try_into().expect("16 bytes"))
                }
            };
            let mut starts = (r.start..r.end).step_by(stride).map(start);
            let mut prev = starts.next();
            starts.all(|s| {
                let up = prev.is_some_and(|p| p < s);
                prev = Some(s);
                up
            })
        };
        if !sorted(&db.v4, 8)
            || !sorted(&db.v6, 20)
            || !sorted(&db.country_v4, 8)
            || !sorted(&db.country_v6, 20)
        {
            return Err("address ranges out of order".into());
        }
        let codes_ok = |r: &Range<usize>, stride: usize| {
            (r.start..r.end).step_by(stride).all(|at| {
                let v = u32_at(&db.file, at + stride - 4);
                v == NONE || country_code(v).is_some()
            })
        };
        if !codes_ok(&db.country_v4, 8) || !codes_ok(&db.country_v6, 20) {
            return Err("a country range holds no country code".into());
        }
        Ok(db)
    }

    fn string(&self, id: u32) -> &str {
        let id = id as usize;
        if id >= self.string_count {
            return "";
        }
        let off = |i: usize| u32_at(&self.file, self.string_offsets.start + i * 4) as usize;
        let (a, b) = (off(id), off(id + 1));
        let blob = &self.file[self.string_blob.clone()];
        // Checked UTF-8 and monotonic offsets at load; a boundary inside a
        // character would still be refused here rather than panic.
        std::str::from_utf8(&blob[a..b]).unwrap_or("")
    }

    /// Whether `name` (case-insensitive) is an owner of some listed domain
    /// or the hosting owner of some network.
    pub fn has_owner(&self, name: &str) -> bool {
        let owners = (self.owners.end - self.owners.start) / 4;
        (0..owners as u32).any(|i| self.owner_name(i).eq_ignore_ascii_case(name))
            || (0..(self.asns.end - self.asns.start) / 12).any(|i| {
                self.asn_entry(i as u32)
                    .and_then(|m| m.host_owner)
                    .is_some_and(|h| h.eq_ignore_ascii_case(name))
            })
    }

    /// The offset of record `index` of `size` bytes in `section`, when it
    /// lies whole inside (checked: a u32 index times the size overflows a
    /// 32-bit usize).
    fn record_at(section: &Range<usize>, index: u32, size: usize) -> Option<usize> {
        let at = usize::try_from(index)
            .ok()?
            .checked_mul(size)?
            .checked_add(section.start)?;
        (at.checked_add(size)? <= section.end).then_some(at)
    }

    fn owner_name(&self, owner: u32) -> &str {
        match Self::record_at(&self.owners, owner, 4) {
            Some(at) => self.string(u32_at(&self.file, at)),
            None => "",
        }
    }

    fn source_name(&self, source: u8) -> &str {
        match Self::record_at(&self.sources, u32::from(source), 4) {
            Some(at) => self.string(u32_at(&self.file, at)),
            None => "",
        }
    }

    fn domain_table(&self) -> Option<DomainTable<'_>> {
        DomainTable::header(&self.file[self.domains.clone()]).ok()
    }

    pub fn domain_count(&self) -> usize {
        self.domain_table().map_or(0, |t| t.len())
    }

    /// Fingerprint bits per domain entry (see `domain_table`).
    pub fn fingerprint_bits(&self) -> u32 {
        self.domain_table().map_or(0, |t| t.fingerprint_bits())
    }

    pub fn psl_rule_count(&self) -> usize {
        self.psl.len()
    }

    pub fn range_count(&self) -> (usize, usize) {
        (self.v4.len() / 8, self.v6.len() / 20)
    }

    /// Country ranges (IPv4, IPv6).
    pub fn country_range_count(&self) -> (usize, usize) {
        (self.country_v4.len() / 8, self.country_v6.len() / 20)
    }

    pub fn file_size(&self) -> usize {
        self.file.len()
    }

    /// The longest entry that is `name` or a label-aligned suffix of it.
    /// `name` is lowercase ASCII without a trailing dot.
    pub fn lookup_domain(&self, name: &str) -> Option<DomainMatch<'_>> {
        let (value_id, matched_len) = self.domain_table()?.lookup(name.as_bytes())?;
        let at = Self::record_at(&self.values, value_id, 8)?;
        let value = u64::from_le_bytes(self.file[at..at + 8].try_into().ok()?);
        let p = Packed::decode(value);
        Some(DomainMatch {
            owner: self.owner_name(p.owner),
            category: p.category,
            source: self.source_name(p.source),
            flags: p.flags,
            matched_len,
        })
    }

    /// The registrable domain of `name` by the PSL's ICANN rules (the
    /// public suffix plus one label), or None when the name is itself a
    /// public suffix or no PSL was compiled in.
    pub fn registrable_domain<'n>(&self, name: &'n str) -> Option<&'n str> {
        if self.psl.is_empty() || name.is_empty() {
            return None;
        }
        let bytes = name.as_bytes();
        let mut node = self.psl.root();
        let mut out = Output::zero();
        // Length (in bytes from the end) of the public suffix found so far:
        // by default the last label ("*" rule).
        let last_label = bytes.len() - bytes.iter().rposition(|b| *b == b'.').map_or(0, |p| p + 1);
        let mut suffix_len = last_label;
        for (i, b) in bytes.iter().rev().enumerate() {
            let Some(idx) = node.find_input(*b) else {
                break;
            };
            let t = node.transition(idx);
            out = out.cat(t.out);
            node = self.psl.node(t.addr);
            let consumed = i + 1;
            let at_boundary = consumed == bytes.len() || bytes[bytes.len() - consumed - 1] == b'.';
            if !(node.is_final() && at_boundary) {
                continue;
            }
            match out.cat(node.final_output()).value() {
                PSL_NORMAL => suffix_len = suffix_len.max(consumed),
                PSL_WILDCARD => {
                    // *.rule: one more label is public too.
                    let rest = &bytes[..bytes.len() - consumed];
                    let more = match rest.strip_suffix(b".") {
                        Some(r) => {
                            r.len() - r.iter().rposition(|b| *b == b'.').map_or(0, |p| p + 1)
                        }
                        None => 0,
                    };
                    if more > 0 {
                        suffix_len = suffix_len.max(consumed + 1 + more);
                    } else {
                        suffix_len = suffix_len.max(consumed);
                    }
                }
                PSL_EXCEPTION => {
                    // !rule: the rule's name is registrable; its suffix is
                    // the rule minus its first label.
                    let rule = &name[bytes.len() - consumed..];
                    return Some(rule);
                }
                _ => {}
            }
        }
        if suffix_len >= bytes.len() {
            return None;
        }
        let head = &name[..bytes.len() - suffix_len - 1];
        let start = head.rfind('.').map_or(0, |p| p + 1);
        Some(&name[start..])
    }

    fn asn_entry(&self, idx: u32) -> Option<IpMatch<'_>> {
        if idx == NONE {
            return None;
        }
        let at = Self::record_at(&self.asns, idx, 12)?;
        let host = u32_at(&self.file, at + 8);
        Some(IpMatch {
            asn: u32_at(&self.file, at),
            as_org: self.string(u32_at(&self.file, at + 4)),
            host_owner: (host != NONE).then(|| self.string(host)),
        })
    }

    /// The network an address belongs to.
    pub fn lookup_ip(&self, ip: IpAddr) -> Option<IpMatch<'_>> {
        self.asn_entry(self.range_value(ip, &self.v4, &self.v6)?)
    }

    /// The country of an address (ISO 3166-1 alpha-2, uppercase): where a
    /// geolocation database puts it, or where its network is registered.
    pub fn lookup_country(&self, ip: IpAddr) -> Option<[u8; 2]> {
        country_code(self.range_value(ip, &self.country_v4, &self.country_v6)?)
    }

    /// The value of the range table (`v4` or `v6` by the address's family)
    /// record that covers `ip`.
    fn range_value(&self, ip: IpAddr, v4: &Range<usize>, v6: &Range<usize>) -> Option<u32> {
        let (range, stride, key): (&Range<usize>, usize, u128) = match embedded_ipv4(ip) {
            IpAddr::V4(a) => (v4, 8, u32::from(a) as u128),
            IpAddr::V6(a) => (v6, 20, u128::from(a)),
        };
        let records = &self.file[range.clone()];
        let n = records.len() / stride;
        let start_of = |i: usize| -> u128 {
            let r = &records[i * stride..];
            if stride == 8 {
                u32_at(r, 0) as u128
            } else {
                u128::from_le_bytes(r[..16].try_into().expect("16 bytes"))
            }
        };
        // The last record whose start is <= key.
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if start_of(mid) <= key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let i = lo.checked_sub(1)?;
        Some(u32_at(&records[i * stride..], stride - 4))
    }
}

#[cfg(test)]
mod tests {
    use super::builder::flatten;
    use super::*;

    /// A string count whose `(count + 1) * 4` wraps on a 32-bit router
    /// (this runs on mipsel and armv7 under qemu too): refused, not a
    /// crash; the same for every other count near the limits.
    #[test]
    fn string_counts_that_wrap_on_32_bit_are_refused() {
        let good = sample_bytes();
        for count in [0x4000_0000u32, 0x3fff_ffff, u32::MAX, u32::MAX / 4, 1 << 31] {
            let mut bad = good.clone();
            // magic, section 0's length, then the strings section's count
            bad[16..20].copy_from_slice(&count.to_le_bytes());
            let body = bad.len() - 8;
            let sum = fnv1a(&bad[..body]);
            bad[body..].copy_from_slice(&sum.to_le_bytes());
            assert!(OwnerDb::from_bytes(bad).is_err(), "count {count:#x}");
        }
        assert!(OwnerDb::from_bytes(good).is_ok());
    }

    /// The crash the i686 fuzz run found: a public-suffix FST whose footer
    /// holds a root address past 4 GiB made the fst crate panic on 32-bit.
    /// Refused on every target, with a reason.
    #[test]
    fn an_fst_footer_that_points_outside_it_is_refused() {
        let psl = fst::Set::from_iter(["co.uk", "com"])
            .unwrap()
            .into_fst()
            .into_inner();
        assert!(fst_footer_fits(&psl));
        for (field, value) in [
            (8usize, 1u64 << 40),
            (8, psl.len() as u64 + 1),
            (16, 1 << 40),
        ] {
            let mut bad = psl.clone();
            let end = bad.len() - 4;
            bad[end - field..end - field + 8].copy_from_slice(&value.to_le_bytes());
            assert!(!fst_footer_fits(&bad), "field -{field} = {value}");
        }
    }

    fn sample() -> OwnerDb {
        let mut b = Builder::new();
        let s = b.source("test").unwrap();
        b.add_domain("google-analytics.com", "Google", Category::Analytics, s, 0);
        b.add_domain("xiaomi.com", "Xiaomi", Category::Services, s, 0);
        b.add_domain("mistat.xiaomi.com", "Xiaomi", Category::Telemetry, s, 0);
        b.add_domain("amazonaws.com", "Amazon", Category::Cloud, s, 0);
        assert!(!b.add_domain("xiaomi.com", "Other", Category::Advertising, s, 0));
        b.add_asn(
            45102,
            "ALIBABA-CN-NET Alibaba US Technology Co., Ltd.",
            Some("Alibaba Cloud"),
        );
        b.add_range(
            "47.74.0.0".parse().unwrap(),
            "47.74.255.255".parse().unwrap(),
            45102,
        )
        .unwrap();
        b.add_range(
            "47.75.0.0".parse().unwrap(),
            "47.75.255.255".parse().unwrap(),
            45102,
        )
        .unwrap();
        b.add_range(
            "8.8.8.0".parse().unwrap(),
            "8.8.8.255".parse().unwrap(),
            15169,
        )
        .unwrap();
        b.add_range(
            "2001:db8::".parse().unwrap(),
            "2001:db8::ffff".parse().unwrap(),
            45102,
        )
        .unwrap();
        b.set_psl(
            "// ===BEGIN ICANN DOMAINS===\ncom\nuk\nco.uk\n*.ck\n!www.ck\n// ===END ICANN DOMAINS===\n\
             // ===BEGIN PRIVATE DOMAINS===\ns3.amazonaws.com\n// ===END PRIVATE DOMAINS===\n",
        );
        OwnerDb::from_bytes(b.finish().unwrap()).unwrap()
    }

    fn sample_bytes() -> Vec<u8> {
        sample().file.as_ref().clone()
    }

    #[test]
    fn longest_label_aligned_suffix_wins() {
        let db = sample();
        let m = db.lookup_domain("data.mistat.xiaomi.com").unwrap();
        assert_eq!(
            (m.owner, m.category, m.matched_len),
            ("Xiaomi", Category::Telemetry, 17)
        );
        assert_eq!(
            db.lookup_domain("xiaomi.com").unwrap().category,
            Category::Services
        );
        assert_eq!(
            db.lookup_domain("www.google-analytics.com").unwrap().owner,
            "Google"
        );
        assert_eq!(
            db.lookup_domain("google-analytics.com").unwrap().source,
            "test"
        );
        assert!(
            db.lookup_domain("notxiaomi.com").is_none(),
            "label boundary"
        );
        // Deeper than any entry: the walk leaves the transducer, the last
        // match found on the way stands.
        let m = db
            .lookup_domain("bucket.s3.ap-southeast-1.amazonaws.com")
            .unwrap();
        assert_eq!((m.owner, m.matched_len), ("Amazon", 13));
        assert_eq!(
            db.lookup_domain("x.y.www.google-analytics.com")
                .unwrap()
                .owner,
            "Google"
        );
        assert!(db.lookup_domain("com").is_none());
        assert!(db.lookup_domain("").is_none());
        assert_eq!(db.domain_count(), 4);
    }

    #[test]
    fn ip_ranges_merge_and_name_the_host() {
        let db = sample();
        let m = db.lookup_ip("47.75.1.2".parse().unwrap()).unwrap();
        assert_eq!((m.asn, m.host_owner), (45102, Some("Alibaba Cloud")));
        assert!(m.as_org.starts_with("ALIBABA-CN-NET"));
        let g = db.lookup_ip("8.8.8.8".parse().unwrap()).unwrap();
        assert_eq!((g.asn, g.as_org, g.host_owner), (15169, "AS15169", None));
        assert!(db.lookup_ip("8.8.9.1".parse().unwrap()).is_none());
        assert!(db.lookup_ip("1.1.1.1".parse().unwrap()).is_none());
        assert!(db.lookup_ip("255.255.255.255".parse().unwrap()).is_none());
        assert_eq!(
            db.lookup_ip("2001:db8::1".parse().unwrap()).unwrap().asn,
            45102
        );
        assert!(db.lookup_ip("2001:db9::1".parse().unwrap()).is_none());
        // 8.8.8/24, the gap after it, 47.74/16 and 47.75/16 merged, the
        // gap after them.
        assert_eq!(db.range_count().0, 4);
    }

    /// Countries: the registration country when nothing better was
    /// imported, a geolocation database's when one was (never a mix);
    /// format 2 files (no countries) still load; a country range that
    /// holds no code is refused.
    #[test]
    fn countries_come_from_geolocation_before_registration() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let mut b = Builder::new();
        b.add_country_range(ip("47.74.0.0"), ip("47.75.255.255"), "CN", false)
            .unwrap();
        b.add_country_range(ip("2001:db8::"), ip("2001:db8::ffff"), "cn", false)
            .unwrap();
        assert!(b
            .add_country_range(ip("1.0.0.0"), ip("1.0.0.255"), "None", false)
            .is_err());
        assert!(b
            .add_country_range(ip("1.0.0.9"), ip("1.0.0.1"), "US", false)
            .is_err());
        let registered = OwnerDb::from_bytes(b.finish().unwrap()).unwrap();
        assert_eq!(registered.lookup_country(ip("47.75.1.2")), Some(*b"CN"));
        assert_eq!(registered.lookup_country(ip("2001:db8::1")), Some(*b"CN"));
        assert_eq!(registered.lookup_country(ip("47.76.0.1")), None);
        assert_eq!(registered.lookup_country(ip("8.8.8.8")), None);

        let mut b = Builder::new();
        b.add_country_range(ip("47.74.0.0"), ip("47.75.255.255"), "CN", false)
            .unwrap();
        // Alibaba Cloud's Singapore servers, by a geolocation database.
        b.add_country_range(ip("47.74.0.0"), ip("47.74.255.255"), "SG", true)
            .unwrap();
        let geo = OwnerDb::from_bytes(b.finish().unwrap()).unwrap();
        assert_eq!(geo.lookup_country(ip("47.74.1.2")), Some(*b"SG"));
        assert_eq!(geo.lookup_country(ip("47.75.1.2")), None, "no mix");
        assert_eq!(geo.country_range_count(), (2, 0));

        // Without countries the file is format 2 (older builds read it).
        let v2 = sample_bytes();
        assert_eq!(&v2[..8], MAGIC_2);
        let old = OwnerDb::from_bytes(v2).unwrap();
        assert_eq!(old.lookup_ip(ip("8.8.8.8")).unwrap().asn, 15169);
        assert_eq!(old.lookup_country(ip("8.8.8.8")), None);
        assert_eq!(&geo.file[..8], MAGIC);

        // Per family: a geolocation database for IPv4 only leaves IPv6
        // its registration countries.
        let mut b = Builder::new();
        b.add_country_range(ip("47.74.0.0"), ip("47.74.255.255"), "SG", true)
            .unwrap();
        b.add_country_range(ip("2001:db8::"), ip("2001:db8::ffff"), "CN", false)
            .unwrap();
        let mixed = OwnerDb::from_bytes(b.finish().unwrap()).unwrap();
        assert_eq!(mixed.lookup_country(ip("47.74.0.1")), Some(*b"SG"));
        assert_eq!(mixed.lookup_country(ip("2001:db8::1")), Some(*b"CN"));
        // IPv4-mapped and NAT64 (64:ff9b::/96) addresses are their IPv4.
        assert_eq!(mixed.lookup_country(ip("::ffff:47.74.0.1")), Some(*b"SG"));
        assert_eq!(mixed.lookup_country(ip("64:ff9b::2f4a:1")), Some(*b"SG"));
        assert_eq!(mixed.lookup_country(ip("64:ff9b:1::2f4a:1")), None);

        // A country value that is no code: refused at load.
        let mut bad = geo.file.as_ref().clone();
        let body = bad.len() - 8;
        let at = geo.country_v4.start + 4;
        bad[at..at + 4].copy_from_slice(&0x0000_3131u32.to_le_bytes()); // "11"
        let sum = fnv1a(&bad[..body]);
        bad[body..].copy_from_slice(&sum.to_le_bytes());
        assert!(OwnerDb::from_bytes(bad)
            .err()
            .is_some_and(|e| e.contains("country")));
    }

    /// Overlapping ranges (two sources, or a block inside a bigger one):
    /// the most specific wins, the enclosing one resumes after it, equal
    /// ranges go to the one added last, gaps are no one's.
    #[test]
    fn overlapping_ranges_give_the_most_specific_its_addresses() {
        let r = |a: u32, b: u32, v: u32| (a, b, v);
        let flat = |ranges: Vec<(u32, u32, u32)>| flatten(ranges, u32::MAX, |v| v);
        // 0-100 A with 50-60 B inside: A, B, A, nothing.
        assert_eq!(
            flat(vec![r(0, 100, 1), r(50, 60, 2)]),
            [(0, 1), (50, 2), (61, 1), (101, NONE)]
        );
        // The same, added the other way round.
        assert_eq!(
            flat(vec![r(50, 60, 2), r(0, 100, 1)]),
            [(0, 1), (50, 2), (61, 1), (101, NONE)]
        );
        // Partial overlap: the later start takes over to its end.
        assert_eq!(
            flat(vec![r(0, 10, 1), r(5, 15, 2)]),
            [(0, 1), (5, 2), (16, NONE)]
        );
        // One start, two lengths: the shorter first, then the longer.
        assert_eq!(
            flat(vec![r(0, 10, 2), r(0, 100, 1)]),
            [(0, 2), (11, 1), (101, NONE)]
        );
        // Equal ranges: the one added last.
        assert_eq!(flat(vec![r(0, 9, 1), r(0, 9, 2)]), [(0, 2), (10, NONE)]);
        // Three deep, ending together, up to the last address, merging.
        assert_eq!(
            flat(vec![
                r(0, u32::MAX, 1),
                r(10, 20, 2),
                r(15, 20, 3),
                r(21, 30, 1),
                r(40, 49, 4),
                r(50, 59, 4)
            ]),
            [(0, 1), (10, 2), (15, 3), (21, 1), (40, 4), (60, 1)]
        );
        assert_eq!(flat(vec![]), []);
        // Through the file: a country database's /24 inside another's /16.
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let mut b = Builder::new();
        b.add_country_range(ip("10.0.0.0"), ip("10.0.255.255"), "US", true)
            .unwrap();
        b.add_country_range(ip("10.0.5.0"), ip("10.0.5.255"), "CN", true)
            .unwrap();
        let db = OwnerDb::from_bytes(b.finish().unwrap()).unwrap();
        assert_eq!(db.lookup_country(ip("10.0.5.1")), Some(*b"CN"));
        assert_eq!(db.lookup_country(ip("10.0.6.1")), Some(*b"US"));
    }

    /// Range starts out of order (a hostile file: the bisection would give
    /// wrong answers) are refused.
    #[test]
    fn ranges_out_of_order_are_refused() {
        let good = sample().file.as_ref().clone();
        // The IPv4 ranges section: its first two starts swapped.
        let db = sample();
        let at = db.v4.start;
        let mut bad = good.clone();
        let (a, b) = (bad[at..at + 4].to_vec(), bad[at + 8..at + 12].to_vec());
        bad[at..at + 4].copy_from_slice(&b);
        bad[at + 8..at + 12].copy_from_slice(&a);
        let body = bad.len() - 8;
        let sum = fnv1a(&bad[..body]);
        bad[body..].copy_from_slice(&sum.to_le_bytes());
        assert!(OwnerDb::from_bytes(bad)
            .err()
            .is_some_and(|e| e.contains("out of order")));
    }

    #[test]
    fn registrable_domain_by_icann_rules() {
        let db = sample();
        let r = |n: &'static str| db.registrable_domain(n);
        assert_eq!(r("www.example.co.uk"), Some("example.co.uk"));
        assert_eq!(r("example.com"), Some("example.com"));
        assert_eq!(r("a.b.example.com"), Some("example.com"));
        assert_eq!(r("co.uk"), None);
        assert_eq!(r("com"), None);
        // Private section left out: S3 buckets group under amazonaws.com.
        assert_eq!(r("bucket.s3.amazonaws.com"), Some("amazonaws.com"));
        // *.ck and !www.ck
        assert_eq!(r("a.b.foo.ck"), Some("b.foo.ck"));
        assert_eq!(r("www.ck"), Some("www.ck"));
        // Unknown TLD: the default "*" rule.
        assert_eq!(r("x.example.zz"), Some("example.zz"));
    }

    #[test]
    fn damaged_files_are_refused_not_trusted() {
        let mut b = Builder::new();
        let s = b.source("t").unwrap();
        b.add_domain("a.example", "A", Category::Cdn, s, 0);
        let good = b.finish().unwrap();
        assert!(OwnerDb::from_bytes(good.clone()).is_ok());
        for cut in 0..good.len() {
            assert!(OwnerDb::from_bytes(good[..cut].to_vec()).is_err());
        }
        for i in (0..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert!(OwnerDb::from_bytes(bad).is_err(), "flip at {i}");
        }
        let mut other = good.clone();
        other[7] = b'9';
        let e = OwnerDb::from_bytes(other).err().unwrap();
        assert!(e.contains("format 9"), "{e}");
    }
}
