//! IP fragment reassembly for `analyze`: a capture holds what the wire
//! carried, and a large DNS answer (DNSSEC, many records) or any UDP
//! datagram over the path MTU arrives as IPv4 or IPv6 fragments, of which
//! only the first has ports and none has the whole message. The daemon
//! never needs this: conntrack reassembles before the queue.
//!
//! Fragments are gathered per (family, source, destination, protocol,
//! identification) and the whole packet is rebuilt with a plain header
//! (IPv4: the first fragment's, length and checksum new, no fragment
//! flags; IPv6: the fixed header, next header the fragment's, extension
//! headers before the fragment header left out). As the Linux kernel does
//! since 2018 (and RFC 5722 asks for IPv6), a datagram whose fragments
//! overlap is dropped whole, an exact duplicate is ignored: no byte can be
//! read two ways; an IPv6 atomic fragment is whole on its own (RFC 6946).
//! Bounded: at most `MAX_DATAGRAMS` in flight, `MAX_FRAGMENTS` each, and
//! `MAX_BYTES` held (the oldest goes first), each forgotten `TIMEOUT_S`
//! capture seconds after its first fragment (the kernel's ipfrag_time);
//! a datagram over 65,535 bytes is dropped, as the kernel drops it.
//!
//! Written by hand: etherparse's `IpDefragPool` (already a dependency) is
//! documented as unbounded ("not safe against out of memory attacks") and
//! lets a later overlapping fragment overwrite an earlier one.

use std::collections::HashMap;

use crate::wire::reader::Reader;

/// Datagrams being put together at once.
pub const MAX_DATAGRAMS: usize = 1024;
/// Bytes held for them together.
pub const MAX_BYTES: usize = 16 << 20;
/// Capture seconds a datagram may take to complete.
pub const TIMEOUT_S: u64 = 30;
/// Fragments one datagram may come in (a 65,535-byte datagram in 256
/// pieces is 256 bytes each: no real path cuts finer).
pub const MAX_FRAGMENTS: usize = 256;

const PROTO_FRAGMENT: u8 = 44;

/// What became of one packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Reassembly {
    /// Not a fragment: use it as it is.
    Whole,
    /// A fragment held until the rest comes.
    Held,
    /// The last missing fragment: the datagram, rebuilt.
    Done(Vec<u8>),
    /// A fragment that cannot be used (overlapping, cut short by the snap
    /// length, past 65,535 bytes, unaligned): its datagram is dropped.
    Dropped,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    v6: bool,
    src: [u8; 16],
    dst: [u8; 16],
    proto: u8,
    id: u32,
}

struct Datagram {
    /// The header the rebuilt packet gets (from the fragment at offset 0).
    header: Option<Vec<u8>>,
    data: Vec<u8>,
    /// Byte ranges received, kept sorted and apart.
    have: Vec<(usize, usize)>,
    /// Where the last fragment (no "more" flag) ends.
    end: Option<usize>,
    first_seen: u64,
    order: u64,
}

/// One fragment, read from its packet.
struct Fragment<'a> {
    key: Key,
    offset: usize,
    more: bool,
    payload: &'a [u8],
    /// The header for the rebuilt packet (only from offset 0).
    header: Vec<u8>,
}

/// The datagrams being put together.
#[derive(Default)]
pub struct Reassembler {
    pending: HashMap<Key, Datagram>,
    bytes: usize,
    next_order: u64,
    /// Datagrams dropped: overlapping, malformed, timed out or pushed out.
    pub dropped: u64,
}

impl Reassembler {
    /// Takes one IP packet captured at `now` (Unix seconds).
    pub fn push(&mut self, ip: &[u8], now: u64) -> Reassembly {
        let fragment = match ip.first().map(|b| b >> 4) {
            Some(4) => ipv4_fragment(ip),
            Some(6) => ipv6_fragment(ip),
            _ => return Reassembly::Whole,
        };
        let fragment = match fragment {
            Parsed::NotFragment => return Reassembly::Whole,
            Parsed::Unusable(key) => {
                if let Some(key) = key {
                    self.drop_datagram(&key);
                }
                self.dropped += 1;
                return Reassembly::Dropped;
            }
            Parsed::Fragment(f) => f,
        };
        self.expire(now);
        self.add(fragment, now)
    }

    fn add(&mut self, f: Fragment<'_>, now: u64) -> Reassembly {
        let start = f.offset;
        let end = start + f.payload.len();
        // IPv4's total length counts the header; IPv6's payload length does not.
        let packet_len = if f.key.v6 { end } else { f.header.len() + end };
        if f.key.v6 && start == 0 && !f.more {
            // An atomic fragment (RFC 6946): whole on its own, whatever
            // else shares its identification.
            return Reassembly::Done(rebuild(&f.key, f.header, f.payload));
        }
        if packet_len > 65_535 || (f.more && f.payload.len() % 8 != 0) {
            self.drop_datagram(&f.key);
            self.dropped += 1;
            return Reassembly::Dropped;
        }
        if !self.pending.contains_key(&f.key) {
            self.make_room(end);
            let order = self.next_order;
            self.next_order += 1;
            self.pending.insert(
                f.key.clone(),
                Datagram {
                    header: None,
                    data: Vec::new(),
                    have: Vec::new(),
                    end: None,
                    first_seen: now,
                    order,
                },
            );
        }
        // The bytes this fragment adds must fit too: others make room, or
        // it goes.
        let have = self.pending.get(&f.key).map_or(0, |d| d.data.len());
        let grow = end.saturating_sub(have);
        while self.bytes + grow > MAX_BYTES {
            let oldest = self
                .pending
                .iter()
                .filter(|(k, _)| **k != f.key)
                .min_by_key(|(_, d)| d.order)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    self.drop_datagram(&k);
                    self.dropped += 1;
                }
                None => {
                    self.drop_datagram(&f.key);
                    self.dropped += 1;
                    return Reassembly::Dropped;
                }
            }
        }
        let d = self.pending.get_mut(&f.key).expect("inserted above");
        if d.have.len() >= MAX_FRAGMENTS {
            self.drop_datagram(&f.key);
            self.dropped += 1;
            return Reassembly::Dropped;
        }
        // An exact duplicate changes nothing; any other overlap (or a
        // second, different end) makes the datagram ambiguous: dropped.
        if d.have.contains(&(start, end)) && d.data.get(start..end) == Some(f.payload) {
            return Reassembly::Held;
        }
        let overlaps = d.have.iter().any(|&(a, b)| start < b && a < end);
        let bad_end = match (f.more, d.end) {
            (false, Some(e)) => e != end,
            (false, None) => d.have.iter().any(|&(_, b)| b > end),
            (true, Some(e)) => end > e,
            (true, None) => false,
        };
        if overlaps || bad_end {
            self.drop_datagram(&f.key);
            self.dropped += 1;
            return Reassembly::Dropped;
        }
        if !f.more {
            d.end = Some(end);
        }
        if start == 0 {
            d.header = Some(f.header);
        }
        if d.data.len() < end {
            d.data.resize(end, 0);
        }
        d.data[start..end].copy_from_slice(f.payload);
        let at = d.have.partition_point(|&(a, _)| a < start);
        d.have.insert(at, (start, end));
        self.bytes += grow;
        let complete = d.end.is_some_and(|e| {
            let mut reached = 0;
            for &(a, b) in &d.have {
                if a > reached {
                    return false;
                }
                reached = reached.max(b);
            }
            reached == e
        }) && d.header.is_some();
        if !complete {
            return Reassembly::Held;
        }
        let d = self.pending.remove(&f.key).expect("present");
        self.bytes -= d.data.len();
        Reassembly::Done(rebuild(&f.key, d.header.expect("checked"), &d.data))
    }

    /// Forgets the datagrams that took longer than `TIMEOUT_S`.
    fn expire(&mut self, now: u64) {
        let before = self.pending.len();
        let bytes = &mut self.bytes;
        self.pending.retain(|_, d| {
            let keep = now.saturating_sub(d.first_seen) < TIMEOUT_S;
            if !keep {
                *bytes -= d.data.len();
            }
            keep
        });
        self.dropped += (before - self.pending.len()) as u64;
    }

    /// Pushes out the oldest datagrams until one more, of `len` bytes, fits.
    fn make_room(&mut self, len: usize) {
        while !self.pending.is_empty()
            && (self.pending.len() >= MAX_DATAGRAMS || self.bytes + len > MAX_BYTES)
        {
            let oldest = self
                .pending
                .iter()
                .min_by_key(|(_, d)| d.order)
                .map(|(k, _)| k.clone())
                .expect("not empty");
            self.drop_datagram(&oldest);
            self.dropped += 1;
        }
    }

    fn drop_datagram(&mut self, key: &Key) {
        if let Some(d) = self.pending.remove(key) {
            self.bytes -= d.data.len();
        }
    }

    /// Datagrams being put together.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

enum Parsed<'a> {
    NotFragment,
    /// A fragment of `key` (when it could be read) that cannot be used.
    Unusable(Option<Key>),
    Fragment(Fragment<'a>),
}

fn ipv4_fragment(ip: &[u8]) -> Parsed<'_> {
    let mut r = Reader::new(ip);
    let (Some(ver_ihl), Some(_tos), Some(total), Some(id), Some(flags_offset)) =
        (r.u8(), r.u8(), r.be16(), r.be16(), r.be16())
    else {
        return Parsed::NotFragment; // not even a header: not ours to judge
    };
    let (Some(_ttl), Some(proto), Some(_sum)) = (r.u8(), r.u8(), r.be16()) else {
        return Parsed::NotFragment;
    };
    let (Some(src), Some(dst)) = (r.take(4), r.take(4)) else {
        return Parsed::NotFragment;
    };
    let more = flags_offset & 0x2000 != 0;
    let offset = usize::from(flags_offset & 0x1fff) * 8;
    if !more && offset == 0 {
        return Parsed::NotFragment;
    }
    let mut key = Key {
        v6: false,
        src: [0; 16],
        dst: [0; 16],
        proto,
        id: u32::from(id),
    };
    key.src[..4].copy_from_slice(src);
    key.dst[..4].copy_from_slice(dst);
    let header_len = usize::from(ver_ihl & 0x0f) * 4;
    let total = usize::from(total);
    // Cut by the snap length, or lengths that contradict each other.
    let (Some(header), Some(payload)) = (ip.get(..header_len), ip.get(header_len..total)) else {
        return Parsed::Unusable(Some(key));
    };
    if header_len < 20 {
        return Parsed::Unusable(Some(key));
    }
    Parsed::Fragment(Fragment {
        key,
        offset,
        more,
        payload,
        header: header.to_vec(),
    })
}

fn ipv6_fragment(ip: &[u8]) -> Parsed<'_> {
    let mut r = Reader::new(ip);
    let (Some(_vtf), Some(payload_len), Some(mut next), Some(_hops)) =
        (r.be32(), r.be16(), r.u8(), r.u8())
    else {
        return Parsed::NotFragment;
    };
    let (Some(src), Some(dst)) = (r.take(16), r.take(16)) else {
        return Parsed::NotFragment;
    };
    let Some(end) = 40usize.checked_add(usize::from(payload_len)) else {
        return Parsed::NotFragment;
    };
    // The extension headers before the fragment header (hop-by-hop,
    // routing, destination options), as many as a packet can hold.
    for _ in 0..8 {
        match next {
            0 | 43 | 60 => {
                let (Some(n), Some(len)) = (r.u8(), r.u8()) else {
                    return Parsed::NotFragment;
                };
                if r.skip(usize::from(len) * 8 + 6).is_none() {
                    return Parsed::NotFragment;
                }
                next = n;
            }
            PROTO_FRAGMENT => break,
            _ => return Parsed::NotFragment,
        }
    }
    if next != PROTO_FRAGMENT {
        return Parsed::NotFragment;
    }
    let (Some(inner), Some(_reserved), Some(offset_flags), Some(id)) =
        (r.u8(), r.u8(), r.be16(), r.be32())
    else {
        return Parsed::NotFragment;
    };
    let mut key = Key {
        v6: true,
        src: [0; 16],
        dst: [0; 16],
        proto: inner,
        id,
    };
    key.src.copy_from_slice(src);
    key.dst.copy_from_slice(dst);
    let Some(payload) = ip.get(r.position()..end) else {
        return Parsed::Unusable(Some(key));
    };
    // The rebuilt packet's header: the fixed header, next header the
    // fragment's protocol (its length is set when it is rebuilt).
    let mut header = ip[..40].to_vec();
    header[6] = inner;
    Parsed::Fragment(Fragment {
        key,
        offset: usize::from(offset_flags >> 3) * 8,
        more: offset_flags & 1 != 0,
        payload,
        header,
    })
}

/// The whole packet: `header` with its lengths (and IPv4 checksum) made
/// right for `data`, fragment fields cleared.
fn rebuild(key: &Key, mut header: Vec<u8>, data: &[u8]) -> Vec<u8> {
    if key.v6 {
        let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
        header[4..6].copy_from_slice(&len.to_be_bytes());
    } else {
        let total = u16::try_from(header.len() + data.len()).unwrap_or(u16::MAX);
        header[2..4].copy_from_slice(&total.to_be_bytes());
        header[6] &= 0x40; // DF stays; MF and the offset go
        header[7] = 0;
        header[10..12].fill(0);
        let sum = header
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum::<u32>();
        let folded = (sum & 0xffff) + (sum >> 16);
        let folded = (folded & 0xffff) + (folded >> 16);
        header[10..12].copy_from_slice(&(!(folded as u16)).to_be_bytes());
    }
    header.extend_from_slice(data);
    header
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    /// A UDP datagram of `len` payload bytes from 203.0.113.53:53 to the
    /// phone (or over IPv6), as one packet.
    fn datagram(v6: bool, len: usize) -> Vec<u8> {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let b = if v6 {
            PacketBuilder::ipv6(
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53],
                [0xfd, 0, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                64,
            )
        } else {
            PacketBuilder::ipv4([203, 0, 113, 53], [192, 168, 77, 2], 64)
        };
        let mut out = Vec::new();
        b.udp(53, 40000).write(&mut out, &payload).unwrap();
        out
    }

    /// `packet` split as a router would: fragments of `size` bytes
    /// (a multiple of 8) of what follows the IP header.
    pub(crate) fn fragments(packet: &[u8], size: usize, id: u32) -> Vec<Vec<u8>> {
        let v6 = packet[0] >> 4 == 6;
        let hl = if v6 {
            40
        } else {
            usize::from(packet[0] & 0xf) * 4
        };
        let body = &packet[hl..];
        let mut out = Vec::new();
        for (i, chunk) in body.chunks(size).enumerate() {
            let offset = i * size;
            let more = offset + chunk.len() < body.len();
            let mut p = packet[..hl].to_vec();
            if v6 {
                let next = p[6];
                p[6] = PROTO_FRAGMENT;
                let len = (8 + chunk.len()) as u16;
                p[4..6].copy_from_slice(&len.to_be_bytes());
                p.extend_from_slice(&[next, 0]);
                let of = ((offset / 8) as u16) << 3 | u16::from(more);
                p.extend_from_slice(&of.to_be_bytes());
                p.extend_from_slice(&id.to_be_bytes());
            } else {
                let total = (hl + chunk.len()) as u16;
                p[2..4].copy_from_slice(&total.to_be_bytes());
                p[4..6].copy_from_slice(&(id as u16).to_be_bytes());
                let fo = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
                p[6..8].copy_from_slice(&fo.to_be_bytes());
            }
            p.extend_from_slice(chunk);
            out.push(p);
        }
        out
    }

    fn udp_payload(ip: &[u8]) -> Vec<u8> {
        crate::wire::packet::parse(ip).unwrap().payload.to_vec()
    }

    #[test]
    fn fragments_in_any_order_make_the_datagram_again() {
        for v6 in [false, true] {
            let whole = datagram(v6, 3000);
            let mut parts = fragments(&whole, 1232, 7);
            parts.reverse();
            let mut r = Reassembler::default();
            assert_eq!(r.push(&whole, 0), Reassembly::Whole);
            let (last, rest) = parts.split_last().unwrap();
            for p in rest {
                assert_eq!(r.push(p, 0), Reassembly::Held);
                // A retransmitted copy changes nothing.
                assert_eq!(r.push(p, 0), Reassembly::Held);
            }
            let Reassembly::Done(rebuilt) = r.push(last, 1) else {
                panic!("not rebuilt (v6: {v6})")
            };
            assert_eq!(udp_payload(&rebuilt), udp_payload(&whole), "v6: {v6}");
            let view = crate::wire::packet::parse(&rebuilt).unwrap();
            assert_eq!((view.tuple.sport, view.tuple.dport), (53, 40000));
            assert_eq!(r.pending(), 0);
            if !v6 {
                // A valid IPv4 header: checksum and all.
                let (h, _) = etherparse::Ipv4Header::from_slice(&rebuilt).unwrap();
                assert_eq!(h.calc_header_checksum(), h.header_checksum);
            }
        }
    }

    /// Fragments that overlap could be read two ways (the evasion trick):
    /// the datagram goes, as it does in the kernel.
    #[test]
    fn overlapping_fragments_drop_the_datagram() {
        for v6 in [false, true] {
            let whole = datagram(v6, 2000);
            let parts = fragments(&whole, 808, 9);
            // The second fragment again, shifted back by 8 bytes over the first.
            let mut shifted = parts[1].clone();
            if v6 {
                let of = u16::from_be_bytes([shifted[42], shifted[43]]);
                let moved = (((of >> 3) - 1) << 3) | (of & 7);
                shifted[42..44].copy_from_slice(&moved.to_be_bytes());
            } else {
                let fo = u16::from_be_bytes([shifted[6], shifted[7]]);
                shifted[6..8].copy_from_slice(&(fo - 1).to_be_bytes());
            }
            let mut r = Reassembler::default();
            assert_eq!(r.push(&parts[0], 0), Reassembly::Held);
            assert_eq!(r.push(&shifted, 0), Reassembly::Dropped, "v6: {v6}");
            assert_eq!(r.pending(), 0);
            // What comes after starts a new datagram that never completes.
            for p in &parts[1..] {
                assert_ne!(r.push(p, 0), Reassembly::Whole);
            }
            assert_eq!(r.pending(), 1);
        }
    }

    #[test]
    fn cut_short_late_or_endless_fragments_are_bounded() {
        let whole = datagram(false, 3000);
        let parts = fragments(&whole, 1480, 1);
        let mut r = Reassembler::default();
        // Cut by the snap length: unusable.
        assert_eq!(r.push(&parts[0][..100], 0), Reassembly::Dropped);
        // The rest after the timeout: the first is forgotten.
        assert_eq!(r.push(&parts[0], 0), Reassembly::Held);
        assert_eq!(r.push(&parts[1], TIMEOUT_S + 1), Reassembly::Held);
        assert_eq!(r.pending(), 1);
        // A flood of first fragments that never finish: bounded.
        let mut r = Reassembler::default();
        for id in 0..(MAX_DATAGRAMS as u32 + 100) {
            let p = fragments(&whole, 1480, id).remove(0);
            r.push(&p, 0);
        }
        assert_eq!(r.pending(), MAX_DATAGRAMS);
        assert!(r.bytes <= MAX_BYTES);
        // Sparse fragments far apart (8 bytes at 0 and at 65,520) cannot
        // hold more than MAX_BYTES however many datagrams they open.
        let mut r = Reassembler::default();
        for id in 0..MAX_DATAGRAMS as u32 {
            let mut first = fragments(&whole, 8, id).remove(0);
            first.truncate(28);
            first[2..4].copy_from_slice(&28u16.to_be_bytes());
            r.push(&first, 0);
            let mut far = first.clone();
            far[6..8].copy_from_slice(&(0x2000u16 | (65_504 / 8)).to_be_bytes());
            r.push(&far, 0);
            assert!(r.bytes <= MAX_BYTES, "{} held after {id}", r.bytes);
        }
        // An IPv6 atomic fragment (offset 0, no more) is whole at once,
        // even while a datagram of its identification is being gathered.
        let v6 = datagram(true, 3000);
        let mut r = Reassembler::default();
        assert_eq!(r.push(&fragments(&v6, 1232, 4)[0], 0), Reassembly::Held);
        let atomic = fragments(&v6, 4096, 4).remove(0);
        let Reassembly::Done(rebuilt) = r.push(&atomic, 0) else {
            panic!("atomic fragment held")
        };
        assert_eq!(udp_payload(&rebuilt), udp_payload(&v6));
        assert_eq!(r.pending(), 1, "the other datagram stays");
        // Past 65,535 bytes with its IPv4 header: dropped, as the kernel does.
        let mut r = Reassembler::default();
        let mut last = fragments(&whole, 8, 3).remove(0);
        last.truncate(20 + 16);
        last[2..4].copy_from_slice(&36u16.to_be_bytes());
        last[6..8].copy_from_slice(&(65_520u16 / 8).to_be_bytes());
        assert_eq!(r.push(&last, 0), Reassembly::Dropped);
        // Garbage never panics.
        for cut in 0..parts[1].len() {
            let _ = r.push(&parts[1][..cut], 0);
        }
        let _ = r.push(&[0x45, 0, 0xff, 0xff, 0, 1, 0x20, 0], 0);
        let _ = r.push(&[0x60], 0);
    }
}
