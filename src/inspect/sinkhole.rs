//! DNS sinkhole: rewrites a DNS answer passing through the queue so a
//! blocked name resolves to nothing, and apps never connect. Pure functions
//! over the queued IP packet; the engine decides when (see `Policy::
//! decide_name`), the queue verdict carries the new bytes.
//!
//! Two ways, chosen by `option sinkhole`:
//! - `zero` (default): every A record becomes 0.0.0.0 and every AAAA ::,
//!   in every section, in place (same length: the message keeps its layout,
//!   names, CNAMEs and TTLs), so resolvers and apps cache an answer that
//!   goes nowhere. An answer that carries other records (HTTPS/SVCB with
//!   address hints and ECH keys, or anything else) becomes NODATA instead:
//!   the question only, no records;
//! - `nxdomain`: the answer becomes "no such name" (RCODE 3) with the
//!   question only.
//!
//! Over TCP the message is part of a stream and must keep its length, so
//! only the in-place form exists there (`rewrite_in_place`); the engine
//! refuses the connection when that is not possible.
//!
//! The IP and UDP headers are rebuilt with etherparse (lengths and both
//! checksums: the kernel takes a rewritten packet's checksums as given).
//! The DNS walk that finds the records' data is written here: simple-dns
//! parses and rebuilds messages but does not say where a record's bytes
//! are, and a rebuilt message would change what the resolver sent.
//!
//! Limits: IPv6 extension headers, a packet cut at the queue's copy range
//! or a malformed message cannot be rewritten (None): the engine drops
//! such an answer when its name is blocked.

use crate::wire::reader::Reader;
use etherparse::{IpNumber, Ipv4Header, Ipv6Header, UdpHeader};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkholeMode {
    Off,
    Zero,
    NxDomain,
}

impl SinkholeMode {
    pub fn parse(s: &str) -> Option<SinkholeMode> {
        match s {
            "off" | "0" => Some(SinkholeMode::Off),
            "zero" | "0.0.0.0" | "1" => Some(SinkholeMode::Zero),
            "nxdomain" => Some(SinkholeMode::NxDomain),
            _ => None,
        }
    }
}

const TYPE_A: u16 = 1;
const TYPE_NS: u16 = 2;
const TYPE_CNAME: u16 = 5;
const TYPE_SOA: u16 = 6;
const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Reader::at(b, at)?.be16()
}

/// Reads past the (possibly compressed) name at the reader.
fn skip_name(r: &mut Reader<'_>) -> Option<()> {
    for _ in 0..128 {
        match r.u8()? {
            0 => return Some(()),
            l if l & 0xc0 == 0xc0 => return r.skip(1), // a pointer ends it
            l if l & 0xc0 == 0 => r.skip(usize::from(l))?,
            _ => return None,
        }
    }
    None
}

/// The end of a response's question section, or None when `msg` is not a
/// response or cannot be walked.
fn questions_end(msg: &[u8]) -> Option<usize> {
    let mut r = Reader::new(msg);
    let (_id, flags, questions) = (r.be16()?, r.be16()?, r.be16()?);
    if flags & 0x8000 == 0 {
        return None;
    }
    r.skip(6)?; // the three record counts
    for _ in 0..questions {
        skip_name(&mut r)?;
        r.skip(4)?; // QTYPE, QCLASS
    }
    Some(r.position())
}

/// Zeroes the address of every A and AAAA record, in all three sections.
/// Some(true) when the message then points nowhere (every other record is
/// one that carries no address: CNAME, NS, SOA, OPT); Some(false) when it
/// holds records of other types; None when it cannot be walked.
fn zero_addresses(msg: &mut [u8]) -> Option<bool> {
    let mut at = questions_end(msg)?;
    let records =
        usize::from(be16(msg, 6)?) + usize::from(be16(msg, 8)?) + usize::from(be16(msg, 10)?);
    let mut only_addresses = true;
    for _ in 0..records {
        // NAME, TYPE, CLASS, TTL, RDLENGTH, RDATA.
        let mut r = Reader::at(msg, at)?;
        skip_name(&mut r)?;
        let rtype = r.be16()?;
        r.skip(6)?;
        let rdata = r.be16_prefixed()?;
        let (data, end) = (r.position() - rdata.left(), r.position());
        match rtype {
            TYPE_A | TYPE_AAAA => msg[data..end].fill(0),
            TYPE_CNAME | TYPE_NS | TYPE_SOA | TYPE_OPT => {}
            _ => only_addresses = false,
        }
        at = end;
    }
    Some(only_addresses)
}

/// The response with its question only: `rcode` (0 = NODATA, 3 =
/// NXDOMAIN), not truncated, no records.
fn question_only(msg: &[u8], rcode: u8) -> Option<Vec<u8>> {
    let mut out = msg[..questions_end(msg)?].to_vec();
    out[3] = (out[3] & 0xf0) | rcode;
    out[2] &= !0x02; // not truncated
    out[6..12].fill(0); // no answer, authority or additional records
    Some(out)
}

/// The DNS message with its answers sinkholed, or None when it is not a
/// response or cannot be walked.
pub fn rewrite_message(msg: &[u8], mode: SinkholeMode) -> Option<Vec<u8>> {
    match mode {
        SinkholeMode::Off => None,
        SinkholeMode::NxDomain => question_only(msg, 3),
        SinkholeMode::Zero => {
            let mut out = msg.to_vec();
            if zero_addresses(&mut out)? {
                Some(out)
            } else {
                question_only(msg, 0)
            }
        }
    }
}

/// Sinkholes `msg` without changing its length (a message inside a TCP
/// stream): addresses zeroed, and with `nxdomain` the RCODE set too.
/// False (the message may be half-written) when that cannot make it point
/// nowhere: other record types, or a message that cannot be walked.
pub fn rewrite_in_place(msg: &mut [u8], mode: SinkholeMode) -> bool {
    if mode == SinkholeMode::Off || zero_addresses(msg) != Some(true) {
        return false;
    }
    if mode == SinkholeMode::NxDomain {
        msg[3] = (msg[3] & 0xf0) | 3;
    }
    true
}

/// The IP header of a queued packet (IPv4, or IPv6 without extension
/// headers), the one place the rewriters below read and write it.
enum IpHeader {
    V4(Ipv4Header),
    V6(Ipv6Header),
}

/// The IP header of `packet` when it carries `proto` and is not an IPv4
/// fragment, the bytes after it, and whether the packet is whole (not cut
/// at the queue's copy range, not padded).
fn ip_header(packet: &[u8], proto: IpNumber) -> Option<(IpHeader, &[u8], bool)> {
    match packet.first()? >> 4 {
        4 => {
            let (ip, rest) = Ipv4Header::from_slice(packet).ok()?;
            if ip.protocol != proto || ip.is_fragmenting_payload() {
                return None;
            }
            let whole = ip.total_len as usize == packet.len();
            Some((IpHeader::V4(ip), rest, whole))
        }
        6 => {
            let (ip, rest) = Ipv6Header::from_slice(packet).ok()?;
            if ip.next_header != proto {
                return None; // extension headers: leave it alone
            }
            let whole = Ipv6Header::LEN + ip.payload_length as usize == packet.len();
            Some((IpHeader::V6(ip), rest, whole))
        }
        _ => None,
    }
}

impl IpHeader {
    /// Sets the length of what follows the header (and the IPv4 header
    /// checksum).
    fn set_payload_len(&mut self, len: usize) -> Option<()> {
        match self {
            IpHeader::V4(ip) => {
                ip.set_payload_len(len).ok()?;
                ip.header_checksum = ip.calc_header_checksum();
            }
            IpHeader::V6(ip) => ip.set_payload_length(len).ok()?,
        }
        Some(())
    }

    fn tcp_checksum(&self, tcp: &etherparse::TcpHeader, payload: &[u8]) -> Option<u16> {
        match self {
            IpHeader::V4(ip) => tcp.calc_checksum_ipv4(ip, payload).ok(),
            IpHeader::V6(ip) => tcp.calc_checksum_ipv6(ip, payload).ok(),
        }
    }

    fn udp_header(&self, sport: u16, dport: u16, payload: &[u8]) -> Option<UdpHeader> {
        match self {
            IpHeader::V4(ip) => UdpHeader::with_ipv4_checksum(sport, dport, ip, payload).ok(),
            IpHeader::V6(ip) => UdpHeader::with_ipv6_checksum(sport, dport, ip, payload).ok(),
        }
    }

    fn write(&self, out: &mut Vec<u8>) -> Option<()> {
        match self {
            IpHeader::V4(ip) => ip.write(out).ok(),
            IpHeader::V6(ip) => ip.write(out).ok(),
        }
    }
}

/// The queued TCP segment (IPv4 or IPv6) turned into a reset of the same
/// connection from the same sender, at the same sequence number: what the
/// receiver gets instead of a segment that must not reach it, so it fails
/// at once rather than waiting for bytes that never come; `skip` moves it
/// past the bytes of the segment the receiver already has. None when the
/// packet is not a TCP segment with a plain IP header.
pub fn tcp_reset_instead(packet: &[u8], skip: u32) -> Option<Vec<u8>> {
    // A cut segment still makes a reset: only its headers are needed.
    let (mut ip, rest, _) = ip_header(packet, IpNumber::TCP)?;
    let (mut tcp, _) = etherparse::TcpHeader::from_slice(rest).ok()?;
    tcp.sequence_number = tcp.sequence_number.wrapping_add(skip);
    tcp.rst = true;
    tcp.ack = true;
    tcp.psh = false;
    tcp.fin = false;
    tcp.syn = false;
    tcp.urg = false;
    tcp.window_size = 0;
    ip.set_payload_len(tcp.header_len())?;
    tcp.checksum = ip.tcp_checksum(&tcp, &[])?;
    let mut out = Vec::with_capacity(80);
    ip.write(&mut out)?;
    tcp.write(&mut out).ok()?;
    Some(out)
}

/// The queued TCP segment (IPv4 or IPv6) with its payload replaced by
/// `payload` of the same length and its checksum fixed; None when the
/// packet is not such a segment (cut, extension headers, other length).
pub fn rebuild_tcp_segment(packet: &[u8], payload: &[u8]) -> Option<Vec<u8>> {
    let (ip, rest, whole) = ip_header(packet, IpNumber::TCP)?;
    let (mut tcp, old) = etherparse::TcpHeader::from_slice(rest).ok()?;
    if !whole || old.len() != payload.len() {
        return None;
    }
    tcp.checksum = ip.tcp_checksum(&tcp, payload)?;
    let mut out = Vec::with_capacity(packet.len());
    ip.write(&mut out)?;
    tcp.write(&mut out).ok()?;
    out.extend_from_slice(payload);
    Some(out)
}

/// The queued IP packet (IPv4 or IPv6, UDP) with its DNS answer
/// sinkholed and lengths and checksums fixed, or None to leave it alone.
pub fn rewrite_packet(packet: &[u8], mode: SinkholeMode) -> Option<Vec<u8>> {
    if mode == SinkholeMode::Off {
        return None;
    }
    let (mut ip, rest, whole) = ip_header(packet, IpNumber::UDP)?;
    if !whole {
        return None; // cut at the copy range, or padded
    }
    let (udp, msg) = UdpHeader::from_slice(rest).ok()?;
    let msg = msg.get(..(udp.length as usize).checked_sub(8)?)?;
    let new = rewrite_message(msg, mode)?;
    ip.set_payload_len(8 + new.len())?;
    let udp = ip.udp_header(udp.source_port, udp.destination_port, &new)?;
    let mut out = Vec::with_capacity(packet.len());
    ip.write(&mut out)?;
    udp.write(&mut out).ok()?;
    out.extend_from_slice(&new);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::names::parse_dns_response;

    /// dnsmasq's answer for cdn.innocent.test: CNAME tracking.miui.com,
    /// A 203.0.113.10 (captured, see tests/fixtures/README.md).
    const ANSWER: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dns_cname_answer.bin"
    ));

    fn ipv4_udp(payload: &[u8]) -> Vec<u8> {
        let ip = Ipv4Header::new(
            (8 + payload.len()) as u16,
            64,
            IpNumber::UDP,
            [198, 51, 100, 53],
            [192, 168, 77, 2],
        )
        .unwrap();
        let mut ip = ip;
        ip.header_checksum = ip.calc_header_checksum();
        let udp = UdpHeader::with_ipv4_checksum(53, 40000, &ip, payload).unwrap();
        let mut out = Vec::new();
        ip.write(&mut out).unwrap();
        udp.write(&mut out).unwrap();
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn zero_keeps_the_chain_and_points_it_nowhere() {
        let before = parse_dns_response(ANSWER).unwrap();
        assert_eq!(before.answers[0].0.to_string(), "203.0.113.10");
        let after =
            parse_dns_response(&rewrite_message(ANSWER, SinkholeMode::Zero).unwrap()).unwrap();
        assert_eq!(after.answers.len(), before.answers.len());
        assert_eq!(after.answers[0].0.to_string(), "0.0.0.0");
        assert_eq!(after.answers[0].1, before.answers[0].1, "same CNAME chain");
    }

    #[test]
    fn nxdomain_keeps_only_the_question() {
        let out = rewrite_message(ANSWER, SinkholeMode::NxDomain).unwrap();
        let p = simple_dns::Packet::parse(&out).unwrap();
        assert_eq!(p.rcode(), simple_dns::RCODE::NameError);
        assert!(p.answers.is_empty());
        assert_eq!(p.questions[0].qname.to_string(), "cdn.innocent.test");
        assert_eq!(p.id(), simple_dns::Packet::parse(ANSWER).unwrap().id());
    }

    #[test]
    fn packets_get_lengths_and_checksums_fixed() {
        for mode in [SinkholeMode::Zero, SinkholeMode::NxDomain] {
            let pkt = ipv4_udp(ANSWER);
            let out = rewrite_packet(&pkt, mode).unwrap();
            let (ip, rest) = Ipv4Header::from_slice(&out).unwrap();
            assert_eq!(ip.total_len as usize, out.len());
            assert_eq!(ip.header_checksum, ip.calc_header_checksum());
            let (udp, msg) = UdpHeader::from_slice(rest).unwrap();
            assert_eq!(udp.length as usize, 8 + msg.len());
            assert_eq!(udp.checksum, udp.calc_checksum_ipv4(&ip, msg).unwrap());
            assert!(parse_dns_response(msg).is_some());
        }
        // IPv6 too.
        let ip6 = Ipv6Header {
            payload_length: (8 + ANSWER.len()) as u16,
            next_header: IpNumber::UDP,
            hop_limit: 64,
            source: [
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
            ],
            destination: [
                0x20, 0x01, 0x0d, 0xb8, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
            ],
            ..Default::default()
        };
        let udp = UdpHeader::with_ipv6_checksum(53, 40000, &ip6, ANSWER).unwrap();
        let mut pkt = Vec::new();
        ip6.write(&mut pkt).unwrap();
        udp.write(&mut pkt).unwrap();
        pkt.extend_from_slice(ANSWER);
        let out = rewrite_packet(&pkt, SinkholeMode::Zero).unwrap();
        let (ip, rest) = Ipv6Header::from_slice(&out).unwrap();
        let (udp, msg) = UdpHeader::from_slice(rest).unwrap();
        assert_eq!(udp.checksum, udp.calc_checksum_ipv6(&ip, msg).unwrap());
        assert_eq!(
            parse_dns_response(msg).unwrap().answers[0].0.to_string(),
            "0.0.0.0"
        );
    }

    /// A DNS-over-TCP segment becomes a reset at its own sequence number
    /// (IPv4 and IPv6), checksums right; rewritten in place, it keeps its
    /// length and gets its checksum fixed.
    #[test]
    fn tcp_segments_become_resets_or_are_rewritten_in_place() {
        use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
        let framed = [&(ANSWER.len() as u16).to_be_bytes()[..], ANSWER].concat();
        let v4 = {
            let mut out = Vec::new();
            PacketBuilder::ipv4([198, 51, 100, 53], [192, 168, 77, 2], 64)
                .tcp(53, 40000, 1000, 64)
                .ack(61)
                .psh()
                .write(&mut out, &framed)
                .unwrap();
            out
        };
        let v6 = {
            let mut out = Vec::new();
            let (a, b) = (
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53],
                [0xfd, 0, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            );
            PacketBuilder::ipv6(a, b, 64)
                .tcp(53, 40000, 1000, 64)
                .ack(61)
                .psh()
                .write(&mut out, &framed)
                .unwrap();
            out
        };
        for pkt in [v4, v6] {
            let reset = tcp_reset_instead(&pkt, 0).unwrap();
            let s = SlicedPacket::from_ip(&reset).unwrap();
            let Some(TransportSlice::Tcp(tcp)) = s.transport else {
                panic!()
            };
            assert!(tcp.rst() && tcp.ack() && !tcp.psh());
            assert_eq!(
                (tcp.sequence_number(), tcp.acknowledgment_number()),
                (1000, 61)
            );
            assert!(tcp.payload().is_empty());
            let (ip, checksum) = match s.net.unwrap() {
                etherparse::NetSlice::Ipv4(ip) => {
                    let h = ip.header().to_header();
                    assert_eq!(h.header_checksum, h.calc_header_checksum());
                    assert_eq!(h.total_len as usize, reset.len());
                    (4, tcp.to_header().calc_checksum_ipv4(&h, &[]).unwrap())
                }
                etherparse::NetSlice::Ipv6(ip) => {
                    let h = ip.header().to_header();
                    assert_eq!(40 + h.payload_length as usize, reset.len());
                    (6, tcp.to_header().calc_checksum_ipv6(&h, &[]).unwrap())
                }
                _ => panic!(),
            };
            assert_eq!(tcp.checksum(), checksum, "IPv{ip}");
            let mut msg = framed[2..].to_vec();
            assert!(rewrite_in_place(&mut msg, SinkholeMode::Zero));
            let new_payload = [&framed[..2], &msg].concat();
            let out = rebuild_tcp_segment(&pkt, &new_payload).unwrap();
            assert_eq!(out.len(), pkt.len());
            let s = SlicedPacket::from_ip(&out).unwrap();
            let Some(TransportSlice::Tcp(tcp)) = s.transport else {
                panic!()
            };
            assert_eq!(tcp.payload(), &new_payload[..]);
            assert_eq!(
                parse_dns_response(&new_payload[2..]).unwrap().answers[0]
                    .0
                    .to_string(),
                "0.0.0.0"
            );
            assert!(
                rebuild_tcp_segment(&pkt, &new_payload[1..]).is_none(),
                "other length"
            );
        }
    }

    #[test]
    fn junk_and_cut_packets_are_left_alone() {
        let pkt = ipv4_udp(ANSWER);
        assert!(rewrite_packet(&pkt[..pkt.len() - 3], SinkholeMode::Zero).is_none());
        assert!(rewrite_packet(&pkt, SinkholeMode::Off).is_none());
        assert!(rewrite_message(&ANSWER[..20], SinkholeMode::Zero).is_none());
        let mut query = ANSWER.to_vec();
        query[2] &= 0x7f;
        assert!(rewrite_message(&query, SinkholeMode::Zero).is_none());
        for cut in 0..ANSWER.len() {
            let _ = rewrite_message(&ANSWER[..cut], SinkholeMode::Zero);
            let _ = rewrite_message(&ANSWER[..cut], SinkholeMode::NxDomain);
        }
        assert!(rewrite_packet(&[], SinkholeMode::Zero).is_none());
    }
}
