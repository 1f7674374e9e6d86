//! The domain section of the owner database: a static hash table of
//! fingerprints that answers "which listed domain is the longest
//! label-aligned suffix of this name, and what is its value" with one
//! backward pass over the name and two cache lines per label.
//!
//! Why a fingerprint table and not an FST: the first version of this file
//! format kept the domains in an FST (the `fst` crate) keyed by reversed
//! names. It was small (9.9 bytes/domain for 1,000,000 synthetic names) but
//! a walk decodes one transducer state per byte of the name: 4.1 M
//! lookups/s at opt-level 3 and 5.8 M/s even when the whole transducer sat
//! in L2, so the 5 M/s target was out of reach however it was laid out.
//! This table does per name what the hardware is good at: one multiply per
//! byte to hash every label-aligned suffix in a single pass from the right,
//! and per suffix a probe of two 8-slot buckets (bucketed cuckoo hashing:
//! a name lives in one of two buckets chosen by its hash), independent
//! loads the CPU overlaps. Entries are 8 bytes (fingerprint + value index)
//! at 95 % load: ~8.4 bytes per domain, smaller than the FST, and faster
//! (`cargo bench --bench ownerdb`, figures in the README). A linear-probing
//! layout at 90 % load was tried first: misses scan ~50 slots, slower than
//! the FST.
//!
//! The price is that it stores fingerprints, not names:
//! - Every listed name is found with its own value: the builder refuses any
//!   layout in which a listed name's two buckets hold another name with the
//!   same fingerprint, and rehashes with another seed.
//! - A name that is *not* listed matches a listed one only if one of its
//!   label-aligned suffixes has the same fingerprint as an entry in that
//!   suffix's two buckets: at most 16 × labels comparisons of
//!   (64 − value bits)-bit fingerprints. With 65,536 distinct values (48-bit
//!   fingerprints) that is about 2^-42 per 4-label lookup; the floor, at
//!   2^32 values, is 2^-26. `phonehome db compile` prints the bits in use.
//! - The table cannot list its names back (nothing here needs to).
//!
//! Layout (little-endian): seed u64, name count u32, value bits u8, three
//! zero bytes, bucket count u64, then bucket count × 8 entries of u64:
//! `fingerprint << value_bits | value`, 0 = empty slot.

const SLOTS: usize = 8;
const HEADER: usize = 24;
/// Two-choice cuckoo hashing with 8-slot buckets fills past 98 %; 95 %
/// builds in one pass with few evictions.
const LOAD: f64 = 0.95;
const MAX_KICKS: usize = 1000;

#[inline(always)]
fn fmix64(mut h: u64) -> u64 {
    // MurmurHash3's finaliser: every input bit flips each output bit with
    // probability ~1/2.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Calls `f(hash, length)` for every label-aligned suffix of `name`, the
/// shortest first and the whole name last: FNV-1a over the bytes from the
/// last one back, finalised at each label boundary. The one hashing both a
/// listed name (its last call) and a looked-up name's suffixes use.
#[inline(always)]
fn for_each_suffix_hash(name: &[u8], seed: u64, mut f: impl FnMut(u64, usize)) {
    if name.is_empty() {
        return;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for (i, b) in name.iter().enumerate().rev() {
        if *b == b'.' {
            f(fmix64(h ^ seed), name.len() - i - 1);
        }
        h = (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    f(fmix64(h ^ seed), name.len());
}

/// The hash of a listed name (that of its longest suffix: itself).
fn whole_hash(name: &[u8], seed: u64) -> u64 {
    let mut whole = 0;
    for_each_suffix_hash(name, seed, |h, _| whole = h);
    whole
}

fn value_bits(values: usize) -> u32 {
    (usize::BITS - values.saturating_sub(1).leading_zeros()).max(1)
}

/// A hash's two buckets: the first from its high bits, the second from a
/// re-mix (distinct when there is more than one bucket).
#[inline(always)]
fn buckets_of(h: u64, buckets: u64) -> (usize, usize) {
    let pick = |x: u64| ((x as u128 * buckets as u128) >> 64) as usize;
    let first = pick(h);
    let mut second = pick(fmix64(h ^ 0x9e37_79b9_7f4a_7c15));
    if second == first && buckets > 1 {
        second = (first + 1) % buckets as usize;
    }
    (first, second)
}

/// The low bits of the hash, never 0 (0 marks an empty slot).
#[inline(always)]
fn fingerprint(h: u64, vbits: u32) -> u64 {
    let fp = h & (u64::MAX >> vbits);
    fp.max(1)
}

/// Places every name by cuckoo insertion; None when some name could not be
/// placed within `MAX_KICKS` evictions (the caller grows the table).
fn place(hashes: &[u64], buckets: u64, seed: u64) -> Option<Vec<u32>> {
    const EMPTY: u32 = u32::MAX;
    let mut slots = vec![EMPTY; buckets as usize * SLOTS];
    let mut rng = seed | 1;
    let mut next = || {
        // xorshift64
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for key in 0..hashes.len() as u32 {
        let mut moving = key;
        let mut placed = false;
        for _ in 0..MAX_KICKS {
            let (a, b) = buckets_of(hashes[moving as usize], buckets);
            let free = |bucket: usize, slots: &[u32]| {
                (bucket * SLOTS..(bucket + 1) * SLOTS).find(|s| slots[*s] == EMPTY)
            };
            if let Some(s) = free(a, &slots).or_else(|| free(b, &slots)) {
                slots[s] = moving;
                placed = true;
                break;
            }
            let r = next();
            let bucket = if r & 1 == 0 { a } else { b };
            let s = bucket * SLOTS + (r >> 1) as usize % SLOTS;
            std::mem::swap(&mut slots[s], &mut moving);
        }
        if !placed {
            return None;
        }
    }
    Some(slots)
}

/// Builds the section for `names` (distinct, lowercase, no trailing dot)
/// mapped to value indexes below `values`.
pub fn build(names: &[(&str, u32)], values: usize) -> Result<Vec<u8>, String> {
    let vbits = value_bits(values);
    if vbits > 32 {
        return Err(format!("{values} distinct values: too many"));
    }
    if let Some((name, value)) = names.iter().find(|(_, v)| *v as usize >= values) {
        return Err(format!("{name}: value {value} out of range"));
    }
    let mut buckets = ((names.len() as f64 / (SLOTS as f64 * LOAD)).ceil() as u64).max(1);
    'seed: for attempt in 0..32u64 {
        let seed = fmix64(attempt.wrapping_add(0x0070_686f_6e65_686f));
        let hashes: Vec<u64> = names
            .iter()
            .map(|(n, _)| whole_hash(n.as_bytes(), seed))
            .collect();
        let Some(slots) = place(&hashes, buckets, seed) else {
            buckets += buckets / 50 + 1;
            continue;
        };
        let table: Vec<u64> = slots
            .iter()
            .map(|k| match names.get(*k as usize) {
                Some((_, value)) => {
                    fingerprint(hashes[*k as usize], vbits) << vbits | *value as u64
                }
                None => 0,
            })
            .collect();
        // No listed name may meet another with its fingerprint in its own
        // two buckets.
        for (key, h) in hashes.iter().enumerate() {
            let (a, b) = buckets_of(*h, buckets);
            let fp = fingerprint(*h, vbits);
            for s in (a * SLOTS..(a + 1) * SLOTS).chain(b * SLOTS..(b + 1) * SLOTS) {
                if slots[s] as usize != key && table[s] != 0 && table[s] >> vbits == fp {
                    continue 'seed;
                }
            }
        }
        let mut out = Vec::with_capacity(HEADER + table.len() * 8);
        out.extend_from_slice(&seed.to_le_bytes());
        out.extend_from_slice(&(names.len() as u32).to_le_bytes());
        out.extend_from_slice(&[vbits as u8, 0, 0, 0]);
        out.extend_from_slice(&buckets.to_le_bytes());
        for e in table {
            out.extend_from_slice(&e.to_le_bytes());
        }
        return Ok(out);
    }
    Err("domain table: no hash seed separates these names".into())
}

/// A domain section, read in place.
#[derive(Clone, Copy)]
pub struct DomainTable<'a> {
    seed: u64,
    count: u32,
    vbits: u32,
    buckets: u64,
    entries: &'a [u8],
}

impl<'a> DomainTable<'a> {
    /// Checks the section: header, size, every value index below
    /// `values` and the count of filled slots.
    pub fn parse(section: &'a [u8], values: usize) -> Result<DomainTable<'a>, String> {
        let table = DomainTable::header(section)?;
        let mut filled = 0u64;
        for e in table.entries.chunks_exact(8) {
            let e = u64::from_le_bytes(e.try_into().expect("8 bytes"));
            if e != 0 {
                filled += 1;
                if (e & ((1u64 << table.vbits) - 1)) as usize >= values {
                    return Err("domain table: value index out of range".into());
                }
            }
        }
        if filled != table.count as u64 {
            return Err("domain table: slot count does not match".into());
        }
        Ok(table)
    }

    /// The header and size checks only, for a section `parse` accepted
    /// before (what every lookup does: a few loads, no scan).
    pub fn header(section: &'a [u8]) -> Result<DomainTable<'a>, String> {
        if section.len() < HEADER {
            return Err("domain table: truncated".into());
        }
        let seed = u64::from_le_bytes(section[0..8].try_into().expect("8 bytes"));
        let count = u32::from_le_bytes(section[8..12].try_into().expect("4 bytes"));
        let vbits = section[12] as u32;
        let buckets = u64::from_le_bytes(section[16..24].try_into().expect("8 bytes"));
        let entries = &section[HEADER..];
        if !(1..=32).contains(&vbits) || buckets == 0 {
            return Err("domain table: bad header".into());
        }
        if (entries.len() as u64) != buckets.saturating_mul((SLOTS * 8) as u64) {
            return Err("domain table: size does not match its bucket count".into());
        }
        Ok(DomainTable {
            seed,
            count,
            vbits,
            buckets,
            entries,
        })
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bits of fingerprint per entry (what bounds false matches).
    pub fn fingerprint_bits(&self) -> u32 {
        64 - self.vbits
    }

    #[inline(always)]
    fn entry(&self, slot: usize) -> u64 {
        let at = slot * 8;
        u64::from_le_bytes(self.entries[at..at + 8].try_into().expect("8 bytes"))
    }

    #[inline(always)]
    fn probe(&self, h: u64) -> Option<u32> {
        let fp = fingerprint(h, self.vbits);
        let (a, b) = buckets_of(h, self.buckets);
        for bucket in [a, b] {
            for slot in bucket * SLOTS..(bucket + 1) * SLOTS {
                let e = self.entry(slot);
                if e >> self.vbits == fp {
                    return Some((e & ((1u64 << self.vbits) - 1)) as u32);
                }
            }
        }
        None
    }

    /// The value of the longest listed name that is `name` or a
    /// label-aligned suffix of it, with that suffix's length: hash every
    /// label-aligned suffix in one pass from the right, then probe longest
    /// first and stop at the first hit. (Measured alternatives, both
    /// slower: probing each suffix as its hash is known and keeping the
    /// last hit; touching every bucket before probing any.)
    pub fn lookup(&self, name: &[u8]) -> Option<(u32, usize)> {
        if self.count == 0 || name.is_empty() {
            return None;
        }
        const MAX: usize = 16;
        let mut hashes = [0u64; MAX];
        let mut lens = [0u8; MAX];
        let mut n = 0;
        let mut too_long = name.len() > 255;
        for_each_suffix_hash(name, self.seed, |h, len| {
            if n == MAX {
                too_long = true;
            } else {
                hashes[n] = h;
                lens[n] = len as u8;
                n += 1;
            }
        });
        if too_long {
            return self.lookup_long(name);
        }
        (0..n)
            .rev()
            .find_map(|i| self.probe(hashes[i]).map(|v| (v, lens[i] as usize)))
    }

    /// The same answer for names with more than 15 dots or over 255 bytes
    /// (not valid DNS names, but they may still arrive): each suffix probed
    /// as its hash is known, the last hit the longest.
    fn lookup_long(&self, name: &[u8]) -> Option<(u32, usize)> {
        let mut best = None;
        for_each_suffix_hash(name, self.seed, |h, len| {
            if let Some(v) = self.probe(h) {
                best = Some((v, len));
            }
        });
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_listed_suffix_on_a_label_boundary() {
        let names = [("example.com", 0), ("t.example.com", 1), ("com.cn", 2)];
        let bytes = build(&names, 3).unwrap();
        let t = DomainTable::parse(&bytes, 3).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(b"example.com"), Some((0, 11)));
        assert_eq!(t.lookup(b"www.example.com"), Some((0, 11)));
        assert_eq!(t.lookup(b"x.t.example.com"), Some((1, 13)));
        assert_eq!(t.lookup(b"notexample.com"), None);
        assert_eq!(t.lookup(b"com"), None);
        assert_eq!(t.lookup(b"a.com.cn"), Some((2, 6)));
        assert_eq!(t.lookup(b""), None);
        assert_eq!(t.fingerprint_bits(), 62);
        // More labels than the fast path holds, and over 255 bytes.
        let deep = format!("{}t.example.com", "a.".repeat(20));
        assert_eq!(t.lookup(deep.as_bytes()), Some((1, 13)));
        let long = format!("{}.example.com", "x".repeat(300));
        assert_eq!(t.lookup(long.as_bytes()), Some((0, 11)));
        let listed_deep = format!("{}example.com", "a.".repeat(20));
        let b2 = build(&[(listed_deep.as_str(), 0)], 1).unwrap();
        let t2 = DomainTable::parse(&b2, 1).unwrap();
        assert_eq!(
            t2.lookup(format!("z.{listed_deep}").as_bytes()),
            Some((0, listed_deep.len()))
        );
    }

    #[test]
    fn every_listed_name_finds_its_own_value_in_a_full_table() {
        // Many names, few buckets' worth of spare room, small fingerprints
        // would be where confusion shows first: use many values.
        let names: Vec<String> = (0..20_000).map(|i| format!("n{i}.example")).collect();
        let pairs: Vec<(&str, u32)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as u32))
            .collect();
        let bytes = build(&pairs, names.len()).unwrap();
        let t = DomainTable::parse(&bytes, names.len()).unwrap();
        assert!(bytes.len() < names.len() * 10);
        for (name, value) in &pairs {
            assert_eq!(t.lookup(name.as_bytes()), Some((*value, name.len())));
        }
        let misses = (0..20_000)
            .filter(|i| t.lookup(format!("m{i}.example").as_bytes()).is_some())
            .count();
        assert_eq!(misses, 0);
    }

    #[test]
    fn damaged_sections_are_refused() {
        let bytes = build(&[("a.example", 0)], 1).unwrap();
        assert!(DomainTable::parse(&bytes, 1).is_ok());
        assert!(DomainTable::parse(&bytes, 0).is_err(), "value out of range");
        for cut in 0..bytes.len() {
            assert!(DomainTable::parse(&bytes[..cut], 1).is_err());
        }
        let mut more = bytes.clone();
        more[HEADER..HEADER + 8].copy_from_slice(&(6u64 << 1).to_le_bytes());
        more[HEADER + 8..HEADER + 16].copy_from_slice(&(6u64 << 1).to_le_bytes());
        assert!(DomainTable::parse(&more, 1).is_err(), "count mismatch");
        let empty = build(&[], 1).unwrap();
        let t = DomainTable::parse(&empty, 1).unwrap();
        assert!(t.is_empty());
        assert_eq!(t.lookup(b"a.example"), None);
    }
}
