//! Packet view: the queued IPv4/IPv6 bytes (no link layer: NFQUEUE hands
//! over the packet from the IP header on) as a 5-tuple, TCP details and
//! the L4 payload. etherparse's lax parser does the work, so a payload cut
//! at the queue's copy range still yields its headers.
//!
//! Limits: no IP reassembly (non-first fragments have no ports and are
//! reported without them), no tunnel decapsulation.

/// A device's link-layer (Ethernet) address.
pub type Mac = [u8; 6];

use std::fmt;
use std::net::IpAddr;

use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
use serde::{Deserialize, Serialize};

pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// A connection's identity in its original direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FiveTuple {
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

impl FiveTuple {
    pub fn reversed(&self) -> FiveTuple {
        FiveTuple {
            proto: self.proto,
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
        }
    }
}

pub fn proto_name(proto: u8) -> &'static str {
    match proto {
        PROTO_TCP => "tcp",
        PROTO_UDP => "udp",
        1 => "icmp",
        58 => "icmpv6",
        _ => "other",
    }
}

impl fmt::Display for FiveTuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}:{} -> {}:{}",
            proto_name(self.proto),
            self.src,
            self.sport,
            self.dst,
            self.dport
        )
    }
}

/// TCP header facts the attribution and policy need.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpInfo {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub seq: u32,
}

/// A parsed packet borrowing the queue's buffer.
#[derive(Clone, Debug)]
pub struct PacketView<'a> {
    pub tuple: FiveTuple,
    pub tcp: Option<TcpInfo>,
    /// Transport payload as far as it was copied.
    pub payload: &'a [u8],
}

#[derive(Debug, PartialEq, Eq)]
pub enum PacketError {
    /// Not IPv4/IPv6 or headers cut short.
    Malformed(String),
    /// No transport header we understand (ARP, fragments, ...).
    NoTransport,
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::Malformed(why) => write!(f, "malformed packet: {why}"),
            PacketError::NoTransport => f.write_str("no transport header"),
        }
    }
}

/// The packet's length from its IP header (IPv4 total length, IPv6
/// payload length + 40): what conntrack counts, even when the bytes at hand
/// were cut. None when the header does not say (too short, or 0 as in a
/// GSO packet or an IPv6 jumbogram).
pub fn ip_len(bytes: &[u8]) -> Option<u32> {
    let field = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u32::from(u16::from_be_bytes([b[0], b[1]])))
    };
    match bytes.first()? >> 4 {
        4 => field(2).filter(|&n| n > 0),
        6 => field(4).filter(|&n| n > 0).map(|n| n + 40),
        _ => None,
    }
}

/// Parses an IP packet. Never panics, whatever the bytes.
pub fn parse(bytes: &[u8]) -> Result<PacketView<'_>, PacketError> {
    let sliced =
        LaxSlicedPacket::from_ip(bytes).map_err(|e| PacketError::Malformed(e.to_string()))?;
    let (src, dst): (IpAddr, IpAddr) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            (h.source_addr().into(), h.destination_addr().into())
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            (h.source_addr().into(), h.destination_addr().into())
        }
        _ => return Err(PacketError::NoTransport),
    };
    match sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => Ok(PacketView {
            tuple: FiveTuple {
                proto: PROTO_TCP,
                src,
                dst,
                sport: tcp.source_port(),
                dport: tcp.destination_port(),
            },
            tcp: Some(TcpInfo {
                syn: tcp.syn(),
                ack: tcp.ack(),
                fin: tcp.fin(),
                rst: tcp.rst(),
                seq: tcp.sequence_number(),
            }),
            payload: tcp.payload(),
        }),
        Some(TransportSlice::Udp(udp)) => Ok(PacketView {
            tuple: FiveTuple {
                proto: PROTO_UDP,
                src,
                dst,
                sport: udp.source_port(),
                dport: udp.destination_port(),
            },
            tcp: None,
            payload: udp.payload(),
        }),
        Some(TransportSlice::Icmpv4(_)) | Some(TransportSlice::Icmpv6(_)) => Ok(PacketView {
            tuple: FiveTuple {
                proto: if src.is_ipv4() { 1 } else { 58 },
                src,
                dst,
                sport: 0,
                dport: 0,
            },
            tcp: None,
            payload: &[],
        }),
        _ => Err(PacketError::NoTransport),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv4 packet inside the captured NFQUEUE message of queue.rs: a
    /// SYN from the phone (192.168.77.2) to 203.0.113.10:443.
    fn captured_syn() -> Vec<u8> {
        let raw = crate::wire::netlink::le_capture_to_host_order(
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/nfq_syn_forward.bin"
            )),
            crate::wire::netlink::NFGENMSG_LEN,
        );
        let msg = crate::wire::netlink::messages(&raw).next().unwrap();
        crate::wire::nfqueue::parse_packet(&msg)
            .unwrap()
            .payload
            .to_vec()
    }

    #[test]
    fn real_syn_gives_tuple_and_flags() {
        let bytes = captured_syn();
        let view = parse(&bytes).unwrap();
        assert_eq!(view.tuple.proto, PROTO_TCP);
        assert_eq!(view.tuple.src, "192.168.77.2".parse::<IpAddr>().unwrap());
        assert_eq!(view.tuple.dst, "203.0.113.10".parse::<IpAddr>().unwrap());
        assert_eq!(view.tuple.dport, 443);
        let tcp = view.tcp.unwrap();
        assert!(tcp.syn && !tcp.ack);
        assert!(view.payload.is_empty());
    }

    #[test]
    fn truncated_and_garbage_input_never_panics() {
        let bytes = captured_syn();
        for cut in 0..bytes.len() {
            let _ = parse(&bytes[..cut]);
        }
        let mut x: u32 = 0x9e37_79b9;
        for len in 0..200 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = parse(&junk);
        }
        assert!(parse(&[]).is_err());
    }
}
