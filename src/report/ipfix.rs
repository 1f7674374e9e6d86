//! IPFIX export (RFC 7011) of finished flows, for the collectors offices
//! already run (nfdump/nfcapd, pmacct, ElastiFlow, GoFlow2). Pure encoder:
//! records in, UDP datagrams out; the daemon sends them to `option
//! ipfix_collector`. Written by hand: the format is a few fixed headers,
//! and the Rust IPFIX crates are collectors (parsers), not exporters.
//!
//! Each finished connection becomes two unidirectional records, the way
//! conntrack counts it: client → server with the bytes it sent and the
//! phone's MAC as sourceMacAddress (IE 56), and server → client with the
//! bytes it received and the MAC as destinationMacAddress (IE 80). Standard
//! fields: addresses (8/12 or 27/28), ports (7/11), protocol (4), packet
//! and octet counts (2/1), flowStart/EndMilliseconds (152/153). Owner,
//! category, domain and the owner's parent company (empty when it has
//! none) are enterprise-specific variable-length strings under `PEN`
//! (elements 1, 2, 3, 4); collectors that do not know them skip them by the
//! template, as RFC 7011 requires.
//!
//! Every datagram carries its templates (UDP may lose them; RFC 7011 8.4
//! asks exporters over UDP to resend), then data sets, at most `MTU` bytes.
//!
//! Limits: records leave when conntrack reports the connection's end (TCP:
//! after TIME_WAIT), so a long download is exported once, at its end.

use std::net::IpAddr;

use crate::policy::config::Mac;

/// Private Enterprise Number of the owner/category/domain elements: IANA's
/// example number (RFC 5612) until phonehome registers its own.
pub const PEN: u32 = 32473;
/// Datagram size limit (fits a 1500-byte MTU with IPv6 and UDP headers).
pub const MTU: usize = 1400;

const IE_OCTETS: u16 = 1;
const IE_PACKETS: u16 = 2;
const IE_PROTOCOL: u16 = 4;
const IE_SRC_PORT: u16 = 7;
const IE_SRC_V4: u16 = 8;
const IE_DST_PORT: u16 = 11;
const IE_DST_V4: u16 = 12;
const IE_SRC_V6: u16 = 27;
const IE_DST_V6: u16 = 28;
const IE_SRC_MAC: u16 = 56;
const IE_DST_MAC: u16 = 80;
const IE_START_MS: u16 = 152;
const IE_END_MS: u16 = 153;
const E_OWNER: u16 = 1;
const E_CATEGORY: u16 = 2;
const E_DOMAIN: u16 = 3;
const E_PARENT: u16 = 4;
const VARIABLE: u16 = 0xffff;

/// One direction of a finished flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    /// The phone's MAC; `from_device` says on which side it is.
    pub mac: Option<Mac>,
    pub from_device: bool,
    pub packets: u64,
    pub octets: u64,
    pub start_ms: u64,
    pub end_ms: u64,
    pub owner: String,
    pub category: String,
    pub domain: String,
    /// The company the owner belongs to; empty when none.
    pub parent: String,
}

/// Template ids: 256 + (IPv6 ? 2 : 0) + (server → client ? 1 : 0).
fn template_id(r: &FlowRecord) -> u16 {
    256 + if r.src.is_ipv6() { 2 } else { 0 } + u16::from(!r.from_device)
}

fn template(id: u16) -> Vec<u8> {
    let v6 = id >= 258;
    let down = id % 2 == 1;
    let (src, dst, addr_len) = if v6 {
        (IE_SRC_V6, IE_DST_V6, 16)
    } else {
        (IE_SRC_V4, IE_DST_V4, 4)
    };
    let fields: [(u16, u16); 10] = [
        (src, addr_len),
        (dst, addr_len),
        (IE_SRC_PORT, 2),
        (IE_DST_PORT, 2),
        (IE_PROTOCOL, 1),
        (if down { IE_DST_MAC } else { IE_SRC_MAC }, 6),
        (IE_PACKETS, 8),
        (IE_OCTETS, 8),
        (IE_START_MS, 8),
        (IE_END_MS, 8),
    ];
    let mut t = Vec::new();
    t.extend_from_slice(&id.to_be_bytes());
    t.extend_from_slice(&(fields.len() as u16 + 4).to_be_bytes());
    for (ie, len) in &fields {
        t.extend_from_slice(&ie.to_be_bytes());
        t.extend_from_slice(&len.to_be_bytes());
    }
    for e in [E_OWNER, E_CATEGORY, E_DOMAIN, E_PARENT] {
        t.extend_from_slice(&(e | 0x8000).to_be_bytes());
        t.extend_from_slice(&VARIABLE.to_be_bytes());
        t.extend_from_slice(&PEN.to_be_bytes());
    }
    t
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Short form of a variable-length field: one length byte (< 255).
    let b = &s.as_bytes()[..s.len().min(254)];
    out.push(b.len() as u8);
    out.extend_from_slice(b);
}

fn record(r: &FlowRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    for a in [r.src, r.dst] {
        match a {
            IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
            IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
        }
    }
    out.extend_from_slice(&r.sport.to_be_bytes());
    out.extend_from_slice(&r.dport.to_be_bytes());
    out.push(r.proto);
    out.extend_from_slice(&r.mac.unwrap_or([0; 6]));
    out.extend_from_slice(&r.packets.to_be_bytes());
    out.extend_from_slice(&r.octets.to_be_bytes());
    out.extend_from_slice(&r.start_ms.to_be_bytes());
    out.extend_from_slice(&r.end_ms.to_be_bytes());
    put_str(&mut out, &r.owner);
    put_str(&mut out, &r.category);
    put_str(&mut out, &r.domain);
    put_str(&mut out, &r.parent);
    out
}

/// Encodes `records` into datagrams. `sequence` is the count of data
/// records sent before (RFC 7011 3.1) and is advanced.
pub fn encode(
    records: &[FlowRecord],
    sequence: &mut u32,
    export_time: u32,
    domain: u32,
) -> Vec<Vec<u8>> {
    // Records of one address family and direction share a data set.
    let mut datagrams = Vec::new();
    let mut rest: Vec<&FlowRecord> = records.iter().collect();
    rest.sort_by_key(|r| template_id(r));
    let templates: Vec<u8> = {
        let mut set = Vec::new();
        for id in 256..260 {
            set.extend_from_slice(&template(id));
        }
        let mut t = Vec::new();
        t.extend_from_slice(&2u16.to_be_bytes()); // template set
        t.extend_from_slice(&((4 + set.len()) as u16).to_be_bytes());
        t.extend_from_slice(&set);
        t
    };
    let mut i = 0;
    while i < rest.len() {
        let mut msg = vec![0u8; 16];
        msg.extend_from_slice(&templates);
        let first_seq = *sequence;
        while i < rest.len() {
            let id = template_id(rest[i]);
            let set_start = msg.len();
            msg.extend_from_slice(&id.to_be_bytes());
            msg.extend_from_slice(&[0, 0]);
            let mut n = 0;
            while i < rest.len() && template_id(rest[i]) == id {
                let rec = record(rest[i]);
                // Over the MTU: the next datagram takes it, unless it is
                // the first record of the datagram (one record always fits
                // a datagram of its own: strings are cut at 254 bytes).
                if msg.len() + rec.len() > MTU && (n > 0 || set_start > 16 + templates.len()) {
                    break;
                }
                msg.extend_from_slice(&rec);
                n += 1;
                i += 1;
            }
            if n == 0 {
                msg.truncate(set_start); // no room for this set's first record
                break;
            }
            let set_len = (msg.len() - set_start) as u16;
            msg[set_start + 2..set_start + 4].copy_from_slice(&set_len.to_be_bytes());
            *sequence = sequence.wrapping_add(n);
            if msg.len() >= MTU - 64 {
                break;
            }
        }
        let len = msg.len() as u16;
        msg[0..2].copy_from_slice(&10u16.to_be_bytes());
        msg[2..4].copy_from_slice(&len.to_be_bytes());
        msg[4..8].copy_from_slice(&export_time.to_be_bytes());
        msg[8..12].copy_from_slice(&first_seq.to_be_bytes());
        msg[12..16].copy_from_slice(&domain.to_be_bytes());
        datagrams.push(msg);
    }
    datagrams
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(from_device: bool, i: u16) -> FlowRecord {
        let (phone, server): (IpAddr, IpAddr) = (
            "192.168.77.2".parse().unwrap(),
            "203.0.113.20".parse().unwrap(),
        );
        FlowRecord {
            src: if from_device { phone } else { server },
            dst: if from_device { server } else { phone },
            sport: if from_device { 40000 + i } else { 443 },
            dport: if from_device { 443 } else { 40000 + i },
            proto: 6,
            mac: Some([2, 0, 0, 0, 0x77, 2]),
            from_device,
            packets: 7,
            octets: 1234,
            start_ms: 1_000,
            end_ms: 2_000,
            owner: "Google".into(),
            category: "services".into(),
            domain: "www.google.com".into(),
            parent: String::new(),
        }
    }

    /// Walks a message the way a collector does: header, sets, templates
    /// (field lengths), data records by the template.
    fn walk(msg: &[u8]) -> Vec<(u16, Vec<u8>)> {
        assert_eq!(u16::from_be_bytes([msg[0], msg[1]]), 10);
        assert_eq!(u16::from_be_bytes([msg[2], msg[3]]) as usize, msg.len());
        let mut templates: std::collections::HashMap<u16, Vec<(u16, u16)>> = Default::default();
        let mut out = Vec::new();
        let mut at = 16;
        while at < msg.len() {
            let id = u16::from_be_bytes([msg[at], msg[at + 1]]);
            let len = u16::from_be_bytes([msg[at + 2], msg[at + 3]]) as usize;
            let body = &msg[at + 4..at + len];
            if id == 2 {
                let mut p = 0;
                while p < body.len() {
                    let tid = u16::from_be_bytes([body[p], body[p + 1]]);
                    let n = u16::from_be_bytes([body[p + 2], body[p + 3]]);
                    p += 4;
                    let mut fields = Vec::new();
                    for _ in 0..n {
                        let ie = u16::from_be_bytes([body[p], body[p + 1]]);
                        let l = u16::from_be_bytes([body[p + 2], body[p + 3]]);
                        p += 4 + if ie & 0x8000 != 0 { 4 } else { 0 };
                        fields.push((ie, l));
                    }
                    templates.insert(tid, fields);
                }
            } else {
                let fields = &templates[&id];
                let mut p = 0;
                while p < body.len() {
                    let start = p;
                    for (_, l) in fields {
                        p += if *l == 0xffff {
                            1 + body[p] as usize
                        } else {
                            *l as usize
                        };
                    }
                    out.push((id, body[start..p].to_vec()));
                }
            }
            at += len;
        }
        out
    }

    #[test]
    fn records_follow_their_templates() {
        let mut seq = 5;
        let msgs = encode(&[rec(true, 1), rec(false, 1)], &mut seq, 100, 7);
        assert_eq!(msgs.len(), 1);
        assert_eq!(seq, 7);
        let m = &msgs[0];
        assert_eq!(u32::from_be_bytes(m[8..12].try_into().unwrap()), 5);
        assert_eq!(u32::from_be_bytes(m[12..16].try_into().unwrap()), 7);
        let recs = walk(m);
        assert_eq!(recs.len(), 2);
        let (id, up) = &recs[0];
        assert_eq!(*id, 256);
        assert_eq!(&up[0..4], &[192, 168, 77, 2]);
        assert_eq!(u16::from_be_bytes([up[8], up[9]]), 40001);
        assert_eq!(&up[13..19], &[2, 0, 0, 0, 0x77, 2]);
        assert_eq!(u64::from_be_bytes(up[27..35].try_into().unwrap()), 1234);
        assert_eq!(&up[52..58], b"Google");
        assert_eq!(recs[1].0, 257, "server to client");
    }

    #[test]
    fn many_records_split_into_datagrams_under_the_mtu() {
        let records: Vec<FlowRecord> = (0..100).map(|i| rec(i % 2 == 0, i)).collect();
        let mut seq = 0;
        let msgs = encode(&records, &mut seq, 1, 1);
        assert!(msgs.len() > 1);
        assert_eq!(seq, 100);
        let mut total = 0;
        for m in &msgs {
            assert!(m.len() <= MTU, "{}", m.len());
            total += walk(m).len();
        }
        assert_eq!(total, 100);
        let v6 = FlowRecord {
            src: "2001:db8::2".parse().unwrap(),
            dst: "2001:db8::20".parse().unwrap(),
            ..rec(true, 1)
        };
        let m = &encode(&[v6], &mut seq, 1, 1)[0];
        assert_eq!(walk(m)[0].0, 258);
        assert!(encode(&[], &mut seq, 1, 1).is_empty());
    }
}
