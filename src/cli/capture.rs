//! Capture: packets from a pcap or pcapng file (tcpdump, Wireshark,
//! PCAPdroid on the phone itself) for `phonehome analyze`. The file formats
//! are read by the `pcap-file` crate; this module picks the format, fixes
//! pcapng timestamps (pcap-file reads them as nanoseconds whatever the
//! interface's `if_tsresol`; the default unit is the microsecond) and
//! peels the link layer off with etherparse, so the rest of the pipeline
//! gets what NFQUEUE would hand it: the IP packet and the sender's MAC.
//!
//! Link types: Ethernet (with stacked 802.1Q/802.1ad tags and PPPoE),
//! Linux cooked v1 and v2 whatever the interface (`tcpdump -i any`,
//! Android's cellular and loopback interfaces), raw IP, IPv4, IPv6, BSD
//! loopback, PPP (with or without HDLC framing), PPPoE, Cisco HDLC and
//! NFLOG (`tcpdump -i nflog:N` on a router); IP-in-IP and VXLAN tunnels
//! are peeled to the tunnelled packet. A file with a packet of another link type is
//! refused, naming it. The link-layer headers past Ethernet and VLAN tags
//! are read by hand (etherparse knows Ethernet, VLAN and Linux cooked v1
//! only, and refuses cooked captures of interfaces it does not list).
//! `link_layer` is pure; `for_each_packet` is the I/O edge.
//!
//! Limits: GRE, Teredo and GTP tunnels are not peeled (the outer
//! flow is reported); IP fragments are put back together by `defrag`.
//!
//! Over 600 lines: a third of it is unit tests, one per link type.

use std::io::Read;
use std::time::Duration;

use etherparse::{EtherType, Ethernet2Slice, SingleVlanSlice};

use crate::policy::config::Mac;

pub const LINKTYPE_NULL: u32 = 0;
pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_PPP: u32 = 9;
/// DLT_RAW as OpenBSD numbers it.
pub const LINKTYPE_RAW_OPENBSD: u32 = 14;
pub const LINKTYPE_PPP_HDLC: u32 = 50;
pub const LINKTYPE_PPP_ETHER: u32 = 51;
pub const LINKTYPE_RAW: u32 = 101;
pub const LINKTYPE_C_HDLC: u32 = 104;
pub const LINKTYPE_LOOP: u32 = 108;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
pub const LINKTYPE_IPV4: u32 = 228;
pub const LINKTYPE_IPV6: u32 = 229;
pub const LINKTYPE_NFLOG: u32 = 239;
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// One packet as read from the file.
#[derive(Debug, Clone, Copy)]
pub struct CapturedPacket<'a> {
    /// Time since the Unix epoch.
    pub time: Duration,
    pub linktype: u32,
    /// The bytes as captured (maybe cut at the snap length).
    pub data: &'a [u8],
    /// Length on the wire.
    pub orig_len: u32,
}

/// The IP packet inside a captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpFrame<'a> {
    /// Link-layer sender, when the link layer has one.
    pub src_mac: Option<Mac>,
    /// Link-layer receiver (Ethernet only).
    pub dst_mac: Option<Mac>,
    /// From the IP header on, as far as captured.
    pub ip: &'a [u8],
    /// Bytes of link-layer header before `ip` (to get the IP length on
    /// the wire from the frame's).
    pub link_len: usize,
}

/// Why a frame holds no IP packet for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotIp {
    /// ARP, LLDP, IPX...: another protocol on the link.
    OtherProtocol,
    /// Shorter than its link-layer header.
    Truncated,
    /// A link type this reader does not know.
    LinkType(u32),
}

/// Takes the link layer off a frame of type `linktype`, and any IP-in-IP
/// tunnel headers (4in4, 6in4, 4in6, 6in6) after it: the flow is the
/// tunnelled one.
pub fn link_layer(linktype: u32, frame: &[u8]) -> Result<IpFrame<'_>, NotIp> {
    let mut f = outer_link_layer(linktype, frame)?;
    for _ in 0..MAX_TUNNELS {
        if let Some(inner) = tunnelled(f.ip) {
            f.ip = inner;
        } else if let Some(inner) = vxlan_frame(f.ip) {
            let Ok(inner) = outer_link_layer(LINKTYPE_ETHERNET, inner) else {
                break;
            };
            f = IpFrame {
                link_len: 0,
                ..inner
            };
        } else {
            break;
        }
        f.link_len = frame.len() - f.ip.len();
    }
    Ok(f)
}

/// The Ethernet frame inside a VXLAN packet (UDP to port 4789, the 8-byte
/// VXLAN header with its VNI flag set).
fn vxlan_frame(ip: &[u8]) -> Option<&[u8]> {
    const VXLAN_PORT: u16 = 4789;
    let udp = match ip.first()? >> 4 {
        4 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
            if ihl < 20 || frag & 0x3fff != 0 || *ip.get(9)? != 17 {
                return None;
            }
            ip.get(ihl..)?
        }
        6 if *ip.get(6)? == 17 => ip.get(40..)?,
        _ => return None,
    };
    let port = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    let vxlan = udp.get(8..16)?;
    (port == VXLAN_PORT && vxlan[0] & 0x08 != 0).then(|| &udp[16..])
}

/// Nested IP-in-IP headers peeled off at most.
const MAX_TUNNELS: usize = 4;

/// The packet inside an IP-in-IP packet (protocol 4 or 41, unfragmented,
/// no IPv6 extension headers), when it holds one.
pub(crate) fn tunnelled(ip: &[u8]) -> Option<&[u8]> {
    let (proto, header) = match ip.first()? >> 4 {
        4 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
            // More fragments, or not the first: not a whole inner packet.
            if ihl < 20 || frag & 0x3fff != 0 {
                return None;
            }
            (*ip.get(9)?, ihl)
        }
        6 => (*ip.get(6)?, 40),
        _ => return None,
    };
    let inner = ip.get(header..)?;
    match (proto, inner.first()? >> 4) {
        (4, 4) | (41, 6) => Some(inner),
        _ => None,
    }
}

fn outer_link_layer(linktype: u32, frame: &[u8]) -> Result<IpFrame<'_>, NotIp> {
    let ip_only = |link_len: usize| {
        let ip = frame.get(link_len..).ok_or(NotIp::Truncated)?;
        match ip.first().map(|b| b >> 4) {
            Some(4 | 6) => Ok(IpFrame {
                src_mac: None,
                dst_mac: None,
                ip,
                link_len,
            }),
            Some(_) => Err(NotIp::OtherProtocol),
            None => Err(NotIp::Truncated),
        }
    };
    match linktype {
        LINKTYPE_ETHERNET => {
            let eth =
                Ethernet2Slice::from_slice_without_fcs(frame).map_err(|_| NotIp::Truncated)?;
            let mut payload = eth.payload();
            // VLAN tags, stacked (802.1ad outer, 802.1Q inner, QinQ).
            for _ in 0..MAX_VLAN_TAGS {
                if !matches!(
                    payload.ether_type,
                    EtherType::VLAN_TAGGED_FRAME
                        | EtherType::PROVIDER_BRIDGING
                        | EtherType::VLAN_DOUBLE_TAGGED_FRAME
                ) {
                    break;
                }
                payload = SingleVlanSlice::from_slice(payload.payload)
                    .map_err(|_| NotIp::Truncated)?
                    .payload();
            }
            let mut ip = match payload.ether_type {
                // PPPoE session: version/type, code, session, length, then
                // the PPP protocol.
                ETHERTYPE_PPPOE_SESSION => {
                    let pppoe = payload.payload;
                    let body = pppoe.get(6..).ok_or(NotIp::Truncated)?;
                    ppp_payload(frame, body, Some(eth.source()))?
                }
                t => ip_payload(frame, t, payload.payload, Some(eth.source()))?,
            };
            ip.dst_mac = Some(eth.destination());
            Ok(ip)
        }
        // Linux cooked v1, 16 bytes: packet type, ARPHRD type, address
        // length, 8 address bytes, protocol. Read by hand whatever the
        // ARPHRD type (etherparse refuses those it does not list, such as
        // Android's cellular raw-IP interfaces).
        LINKTYPE_LINUX_SLL => {
            let header = frame.get(..16).ok_or(NotIp::Truncated)?;
            let protocol = EtherType(u16::from_be_bytes([header[14], header[15]]));
            let mac = sll_mac(u16::from_be_bytes([header[4], header[5]]), &header[6..14]);
            ip_payload(frame, protocol, &frame[16..], mac)
        }
        // v2, 20 bytes: protocol, reserved, ifindex, ARPHRD, packet type,
        // address length, 8 address bytes.
        LINKTYPE_LINUX_SLL2 => {
            let header = frame.get(..20).ok_or(NotIp::Truncated)?;
            let protocol = EtherType(u16::from_be_bytes([header[0], header[1]]));
            let mac = sll_mac(u16::from(header[11]), &header[12..20]);
            ip_payload(frame, protocol, &frame[20..], mac)
        }
        LINKTYPE_RAW | LINKTYPE_IPV4 | LINKTYPE_IPV6 | LINKTYPE_RAW_OPENBSD => ip_only(0),
        // BSD loopback: a 4-byte address family in the writer's byte order.
        LINKTYPE_NULL | LINKTYPE_LOOP => ip_only(4),
        // PPP: the protocol, after an HDLC address and control (ff 03)
        // when the link kept them.
        LINKTYPE_PPP | LINKTYPE_PPP_HDLC => {
            let body = frame.strip_prefix(&[0xff, 0x03]).unwrap_or(frame);
            ppp_payload(frame, body, None)
        }
        // PPPoE without the Ethernet header: the 6-byte PPPoE header, then
        // PPP.
        LINKTYPE_PPP_ETHER => {
            let body = frame.get(6..).ok_or(NotIp::Truncated)?;
            ppp_payload(frame, body, None)
        }
        // Cisco HDLC: address, control, then an EtherType.
        LINKTYPE_C_HDLC => {
            let header = frame.get(..4).ok_or(NotIp::Truncated)?;
            let protocol = EtherType(u16::from_be_bytes([header[2], header[3]]));
            ip_payload(frame, protocol, &frame[4..], None)
        }
        LINKTYPE_NFLOG => nflog_payload(frame),
        other => Err(NotIp::LinkType(other)),
    }
}

/// VLAN tags read at most in one frame.
const MAX_VLAN_TAGS: usize = 4;
const ETHERTYPE_PPPOE_SESSION: EtherType = EtherType(0x8864);

/// The sender's MAC of a Linux cooked header, when its link is Ethernet-like
/// (a 6-byte address; ARPHRD_ETHER, or the IEEE 802.11 types).
fn sll_mac(address_len: u16, address: &[u8]) -> Option<Mac> {
    (address_len == 6).then(|| {
        let mut m = [0u8; 6];
        m.copy_from_slice(&address[..6]);
        m
    })
}

/// The IP packet after a PPP protocol field (0x0021 IPv4, 0x0057 IPv6;
/// one byte when the link compressed it).
fn ppp_payload<'a>(
    frame: &'a [u8],
    body: &'a [u8],
    mac: Option<Mac>,
) -> Result<IpFrame<'a>, NotIp> {
    let (protocol, ip) = match body {
        [p, rest @ ..] if p & 0x01 == 1 => (u16::from(*p), rest),
        [hi, lo, rest @ ..] => (u16::from_be_bytes([*hi, *lo]), rest),
        _ => return Err(NotIp::Truncated),
    };
    let ether_type = match protocol {
        0x0021 => EtherType::IPV4,
        0x0057 => EtherType::IPV6,
        _ => return Err(NotIp::OtherProtocol),
    };
    ip_payload(frame, ether_type, ip, mac)
}

/// The packet of an NFLOG record (`tcpdump -i nflog:N`): a 4-byte header
/// (address family, version, group), then TLVs of length (including their
/// 4-byte header, padded to 4) and type; type 9 holds the packet. The TLV
/// integers are in the capturing host's byte order, which the file does
/// not say, so both are tried: the reading whose TLVs tile the record is
/// taken.
fn nflog_payload(frame: &[u8]) -> Result<IpFrame<'_>, NotIp> {
    const NFULA_PAYLOAD: u16 = 9;
    let tlvs = frame.get(4..).ok_or(NotIp::Truncated)?;
    let walk = |little: bool| -> Option<Option<&[u8]>> {
        let mut at = 0;
        let mut found = None;
        while at < tlvs.len() {
            let word = |i: usize| -> Option<u16> {
                let b = [*tlvs.get(i)?, *tlvs.get(i + 1)?];
                Some(if little {
                    u16::from_le_bytes(b)
                } else {
                    u16::from_be_bytes(b)
                })
            };
            let len = usize::from(word(at)?);
            let kind = word(at + 2)?;
            if len < 4 {
                return None;
            }
            let value = tlvs.get(at + 4..at + len)?;
            if kind & 0x7fff == NFULA_PAYLOAD && found.is_none() {
                found = Some(value);
            }
            at += len.div_ceil(4) * 4;
        }
        Some(found)
    };
    let payload = walk(cfg!(target_endian = "little"))
        .or_else(|| walk(!cfg!(target_endian = "little")))
        .ok_or(NotIp::Truncated)?
        .ok_or(NotIp::OtherProtocol)?;
    let ether_type = match payload.first().map(|b| b >> 4) {
        Some(4) => EtherType::IPV4,
        Some(6) => EtherType::IPV6,
        _ => return Err(NotIp::OtherProtocol),
    };
    ip_payload(frame, ether_type, payload, None)
}

/// The name libpcap gives a link type (`DLT_` without the prefix), for
/// saying which one a file has.
pub fn link_type_name(linktype: u32) -> &'static str {
    match linktype {
        LINKTYPE_NULL => "NULL",
        LINKTYPE_ETHERNET => "EN10MB",
        6 => "IEEE802",
        LINKTYPE_PPP => "PPP",
        LINKTYPE_RAW_OPENBSD => "RAW",
        LINKTYPE_PPP_HDLC => "PPP_SERIAL",
        LINKTYPE_PPP_ETHER => "PPP_ETHER",
        LINKTYPE_RAW => "RAW",
        LINKTYPE_C_HDLC => "C_HDLC",
        105 => "IEEE802_11",
        LINKTYPE_LOOP => "LOOP",
        LINKTYPE_LINUX_SLL => "LINUX_SLL",
        119 => "PRISM_HEADER",
        127 => "IEEE802_11_RADIO",
        147..=162 => "USER0-15",
        187 => "BLUETOOTH_HCI_H4",
        189 => "USB_LINUX",
        192 => "PPI",
        195 => "IEEE802_15_4",
        201 => "BLUETOOTH_HCI_H4_WITH_PHDR",
        220 => "USB_LINUX_MMAPPED",
        LINKTYPE_IPV4 => "IPV4",
        LINKTYPE_IPV6 => "IPV6",
        LINKTYPE_NFLOG => "NFLOG",
        249 => "USBPCAP",
        251 => "BLUETOOTH_LE_LL",
        253 => "NETLINK",
        LINKTYPE_LINUX_SLL2 => "LINUX_SLL2",
        _ => "unknown",
    }
}

/// Whether `link_layer` reads frames of this link type.
pub fn reads_link_type(linktype: u32) -> bool {
    !matches!(outer_link_layer(linktype, &[]), Err(NotIp::LinkType(_)))
}

/// The link types `link_layer` reads, as their libpcap names.
pub const READ_LINK_TYPES: &str = "EN10MB (with VLAN tags and PPPoE), LINUX_SLL, LINUX_SLL2, RAW, IPV4, IPV6, NULL, LOOP, PPP, PPP_SERIAL, PPP_ETHER, C_HDLC, NFLOG";

fn ip_payload<'a>(
    frame: &'a [u8],
    ether_type: EtherType,
    payload: &'a [u8],
    src_mac: Option<Mac>,
) -> Result<IpFrame<'a>, NotIp> {
    if ether_type != EtherType::IPV4 && ether_type != EtherType::IPV6 {
        return Err(NotIp::OtherProtocol);
    }
    Ok(IpFrame {
        src_mac,
        dst_mac: None,
        ip: payload,
        link_len: frame.len() - payload.len(),
    })
}

/// The pcapng timestamp unit of an interface, as a divisor of seconds
/// (`if_tsresol`: 10^-n, or 2^-n with the high bit set; default 10^-6).
fn units_per_second(tsresol: Option<u8>) -> u64 {
    match tsresol {
        Some(r) if r & 0x80 != 0 => 1u64.checked_shl(u32::from(r & 0x7f)).unwrap_or(1),
        Some(r) => 10u64.checked_pow(u32::from(r)).unwrap_or(1),
        None => 1_000_000,
    }
}

fn scale(raw: u64, units: u64) -> Duration {
    let units = units.max(1);
    let secs = raw / units;
    let frac = raw % units;
    Duration::new(
        secs,
        (u128::from(frac) * 1_000_000_000 / u128::from(units)) as u32,
    )
}

/// How reading stopped early.
#[derive(Debug)]
pub struct ReadError {
    /// Packets handed over before the error.
    pub packets: u64,
    /// The file ends inside a record (tcpdump killed while writing): what
    /// came before is whole.
    pub truncated: bool,
    pub message: String,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "after {} packets: {}", self.packets, self.message)
    }
}

fn read_error(packets: u64, e: pcap_file::PcapError) -> ReadError {
    use pcap_file::PcapError;
    // pcap-file reports a record running past the end as an early EOF;
    // any other I/O error is the disk's or the pipe's, not the file's end.
    let truncated = match &e {
        PcapError::IncompleteBuffer => true,
        PcapError::IoError(io) => io.kind() == std::io::ErrorKind::UnexpectedEof,
        _ => false,
    };
    let message = match e {
        _ if truncated => {
            "the file ends inside a packet record (or a record's length is damaged)".into()
        }
        PcapError::IoError(io) => format!("cannot read: {io}"),
        other => other.to_string(),
    };
    ReadError {
        packets,
        truncated,
        message,
    }
}

/// The error for a link type `link_layer` does not read.
fn refuse_unread_link_type(linktype: u32, packets: u64) -> Result<(), ReadError> {
    if reads_link_type(linktype) {
        return Ok(());
    }
    Err(ReadError {
        packets,
        truncated: false,
        message: format!(
            "link type {linktype} ({}) is not one phonehome reads; it reads {READ_LINK_TYPES}",
            link_type_name(linktype)
        ),
    })
}

/// Reads every packet of a pcap or pcapng stream in order and hands it to
/// `each`. Fails before the first packet when the stream is neither.
pub fn for_each_packet<R: Read>(
    mut input: R,
    mut each: impl FnMut(&CapturedPacket<'_>),
) -> Result<u64, ReadError> {
    let mut magic = [0u8; 4];
    input.read_exact(&mut magic).map_err(|e| ReadError {
        packets: 0,
        truncated: false,
        message: format!("not a capture file (cannot read its first 4 bytes: {e})"),
    })?;
    let input = std::io::Cursor::new(magic).chain(input);
    let mut packets = 0u64;
    match magic {
        [0x0a, 0x0d, 0x0d, 0x0a] => {
            let mut reader =
                pcap_file::pcapng::PcapNgReader::new(input).map_err(|e| read_error(0, e))?;
            // (link type, timestamp units per second) of each interface of
            // the current section.
            let mut interfaces: Vec<(u32, u64)> = Vec::new();
            while let Some(block) = reader.next_block() {
                use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
                use pcap_file::pcapng::Block;
                let block = block.map_err(|e| read_error(packets, e))?;
                let (interface, raw_time, orig_len, data) = match &block {
                    Block::SectionHeader(_) => {
                        interfaces.clear();
                        continue;
                    }
                    Block::InterfaceDescription(idb) => {
                        let tsresol = idb.options.iter().find_map(|o| match o {
                            InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
                            _ => None,
                        });
                        interfaces.push((u32::from(idb.linktype), units_per_second(tsresol)));
                        continue;
                    }
                    Block::EnhancedPacket(p) => (
                        p.interface_id as usize,
                        p.timestamp.as_nanos() as u64,
                        p.original_len,
                        &p.data[..],
                    ),
                    // No timestamp and no interface id: interface 0.
                    Block::SimplePacket(p) => (0, 0, p.original_len, &p.data[..]),
                    _ => continue,
                };
                let Some(&(linktype, units)) = interfaces.get(interface) else {
                    return Err(ReadError {
                        packets,
                        truncated: false,
                        message: format!("packet of undeclared interface {interface}"),
                    });
                };
                refuse_unread_link_type(linktype, packets)?;
                each(&CapturedPacket {
                    time: scale(raw_time, units),
                    linktype,
                    data,
                    orig_len,
                });
                packets += 1;
            }
        }
        [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0xc3, 0xd4]
        | [0x4d, 0x3c, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d] => {
            let mut reader =
                pcap_file::pcap::PcapReader::new(input).map_err(|e| read_error(0, e))?;
            let header = reader.header();
            let linktype = u32::from(header.datalink);
            refuse_unread_link_type(linktype, 0)?;
            let nanos_per_unit = match header.ts_resolution {
                pcap_file::TsResolution::MicroSecond => 1000,
                pcap_file::TsResolution::NanoSecond => 1,
            };
            // Raw records: pcap-file's checked ones refuse a packet longer
            // on the wire than the snap length, which is what a snap
            // length is for.
            while let Some(p) = reader.next_raw_packet() {
                let p = p.map_err(|e| read_error(packets, e))?;
                let nanos = u64::from(p.ts_frac) * nanos_per_unit;
                if nanos >= 1_000_000_000 {
                    return Err(ReadError {
                        packets,
                        truncated: false,
                        message: format!("packet record {} has a bad timestamp", packets + 1),
                    });
                }
                each(&CapturedPacket {
                    time: Duration::new(u64::from(p.ts_sec), nanos as u32),
                    linktype,
                    data: &p.data,
                    orig_len: p.orig_len,
                });
                packets += 1;
            }
        }
        _ => {
            return Err(ReadError {
                packets: 0,
                truncated: false,
                message: format!(
                    "not a pcap or pcapng file (it starts with {:02x} {:02x} {:02x} {:02x})",
                    magic[0], magic[1], magic[2], magic[3]
                ),
            })
        }
    }
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real frame from the test network (tests/fixtures/phone-lan.pcap,
    /// tcpdump on the router's LAN veth): the phone's SYN to
    /// 203.0.113.20:443.
    const PHONE_SYN: &str = "ba4b22ff608102000000770208004500003c020a40004006eef2c0a84d02\
        cb007114c23201bb8f23e27500000000a002faf049ee0000020405b40402080a9a978f66000000000103030a";

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn ethernet_frames_give_the_sender_and_the_ip_packet() {
        let frame = hex(PHONE_SYN);
        let f = link_layer(LINKTYPE_ETHERNET, &frame).unwrap();
        assert_eq!(f.src_mac, Some([2, 0, 0, 0, 0x77, 2]));
        assert_eq!(f.dst_mac, Some([0xba, 0x4b, 0x22, 0xff, 0x60, 0x81]));
        assert_eq!(f.link_len, 14);
        assert_eq!(f.ip[0], 0x45);
        // The same packet behind an 802.1Q tag.
        let mut tagged = frame[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        tagged.extend_from_slice(&frame[12..]);
        let f = link_layer(LINKTYPE_ETHERNET, &tagged).unwrap();
        assert_eq!((f.link_len, f.ip[0]), (18, 0x45));
    }

    #[test]
    fn other_link_types() {
        let frame = hex(PHONE_SYN);
        let ip = &frame[14..];
        assert_eq!(link_layer(LINKTYPE_RAW, ip).unwrap().ip, ip);
        let mut null = vec![2, 0, 0, 0];
        null.extend_from_slice(ip);
        assert_eq!(link_layer(LINKTYPE_NULL, &null).unwrap().link_len, 4);
        // Linux cooked v1: packet type, ARPHRD_ETHER, address length 6.
        let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0x77, 2, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(ip);
        let f = link_layer(LINKTYPE_LINUX_SLL, &sll).unwrap();
        assert_eq!((f.src_mac, f.link_len), (Some([2, 0, 0, 0, 0x77, 2]), 16));
        // v2: protocol first, address at 12.
        let mut sll2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0x77, 2, 0, 0,
        ];
        sll2.extend_from_slice(ip);
        let f = link_layer(LINKTYPE_LINUX_SLL2, &sll2).unwrap();
        assert_eq!((f.src_mac, f.link_len), (Some([2, 0, 0, 0, 0x77, 2]), 20));
        // ARP, a cut frame, an unknown link type.
        let mut arp = frame[..12].to_vec();
        arp.extend_from_slice(&[0x08, 0x06, 0, 1]);
        assert_eq!(
            link_layer(LINKTYPE_ETHERNET, &arp),
            Err(NotIp::OtherProtocol)
        );
        assert_eq!(
            link_layer(LINKTYPE_ETHERNET, &frame[..9]),
            Err(NotIp::Truncated)
        );
        assert_eq!(link_layer(147, &frame), Err(NotIp::LinkType(147)));
    }

    #[test]
    fn ppp_pppoe_hdlc_and_cooked_links_give_the_ip_packet() {
        let frame = hex(PHONE_SYN);
        let ip = &frame[14..];
        let with = |head: &[u8]| {
            let mut v = head.to_vec();
            v.extend_from_slice(ip);
            v
        };
        let pppoe_ppp: &[u8] = &[0x11, 0x00, 0x55, 0x6a, 0x00, 0x3e, 0x00, 0x21];
        for (linktype, head) in [
            (LINKTYPE_PPP, &[0x00, 0x21][..]),
            (LINKTYPE_PPP, &[0xff, 0x03, 0x00, 0x21]),
            (LINKTYPE_PPP, &[0x21]), // protocol field compressed
            (LINKTYPE_PPP_HDLC, &[0xff, 0x03, 0x00, 0x21]),
            (LINKTYPE_C_HDLC, &[0x0f, 0x00, 0x08, 0x00]),
            (LINKTYPE_PPP_ETHER, pppoe_ppp),
        ] {
            let framed = with(head);
            let f = link_layer(linktype, &framed).unwrap();
            assert_eq!(
                (f.ip, f.link_len),
                (ip, head.len()),
                "{linktype} {head:02x?}"
            );
        }
        // PPPoE session frames on Ethernet.
        let mut pppoe = frame[..12].to_vec();
        pppoe.extend_from_slice(&[0x88, 0x64]);
        pppoe.extend_from_slice(&with(pppoe_ppp));
        let f = link_layer(LINKTYPE_ETHERNET, &pppoe).unwrap();
        assert_eq!(
            (f.src_mac, f.ip, f.link_len),
            (Some([2, 0, 0, 0, 0x77, 2]), ip, 22)
        );
        // PPP's own protocols (LCP), and cut headers.
        assert_eq!(
            link_layer(LINKTYPE_PPP, &[0xc0, 0x21, 1, 2, 3]),
            Err(NotIp::OtherProtocol)
        );
        assert_eq!(link_layer(LINKTYPE_PPP, &[]), Err(NotIp::Truncated));
        for linktype in [LINKTYPE_PPP_ETHER, LINKTYPE_C_HDLC, LINKTYPE_LINUX_SLL] {
            assert_eq!(
                link_layer(linktype, &[0xff]),
                Err(NotIp::Truncated),
                "{linktype}"
            );
        }
        // Linux cooked v1 of an Android cellular interface: ARPHRD_RAWIP
        // (519), no link address.
        let cellular = with(&[0, 4, 0x02, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00]);
        let f = link_layer(LINKTYPE_LINUX_SLL, &cellular).unwrap();
        assert_eq!((f.src_mac, f.ip, f.link_len), (None, ip, 16));
        // Three VLAN tags (QinQ and an inner 802.1Q).
        let mut tagged = frame[..12].to_vec();
        for tag in [[0x88, 0xa8, 0, 10], [0x81, 0, 0, 20], [0x81, 0, 0, 30]] {
            tagged.extend_from_slice(&tag);
        }
        tagged.extend_from_slice(&frame[12..]);
        let f = link_layer(LINKTYPE_ETHERNET, &tagged).unwrap();
        assert_eq!((f.ip, f.link_len), (ip, 26));
    }

    /// An NFLOG TLV: length (with its header) and type in `little` or big
    /// endian, padded to 4.
    fn nflog_tlv(little: bool, kind: u16, value: &[u8]) -> Vec<u8> {
        let word = |x: u16| {
            if little {
                x.to_le_bytes()
            } else {
                x.to_be_bytes()
            }
        };
        let mut v = word(4 + value.len() as u16).to_vec();
        v.extend_from_slice(&word(kind));
        v.extend_from_slice(value);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn nflog_records_give_their_packet_in_either_byte_order() {
        let frame = hex(PHONE_SYN);
        let ip = &frame[14..];
        for little in [true, false] {
            let mut record = vec![2, 0, 0, 5]; // AF_INET, version 0, group 5
            record.extend(nflog_tlv(little, 1, &[0x08, 0x00, 0x01, 0x00]));
            record.extend(nflog_tlv(little, 10, b"phonehome\0"));
            record.extend(nflog_tlv(little, 9, ip));
            let f = link_layer(LINKTYPE_NFLOG, &record).unwrap();
            assert_eq!(f.ip, ip, "little-endian {little}");
            // Without its payload TLV; with a TLV running past the record.
            let no_payload = &record[..record.len() - ip.len() - 4];
            assert_eq!(
                link_layer(LINKTYPE_NFLOG, no_payload),
                Err(NotIp::OtherProtocol)
            );
            let mut overlong = record.clone();
            overlong.truncate(record.len() - 1);
            assert!(link_layer(LINKTYPE_NFLOG, &overlong).is_err());
            for cut in 0..record.len() {
                let _ = link_layer(LINKTYPE_NFLOG, &record[..cut]);
            }
        }
    }

    #[test]
    fn ip_in_ip_and_vxlan_are_peeled_to_the_tunnelled_packet() {
        let frame = hex(PHONE_SYN);
        let inner = &frame[14..];
        let ipv4 = |proto: u8, payload: &[u8]| {
            let mut v = vec![
                0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
            ];
            v[2..4].copy_from_slice(&(20 + payload.len() as u16).to_be_bytes());
            v.extend_from_slice(payload);
            v
        };
        // 4in6.
        let mut v6 = vec![0x60, 0, 0, 0];
        v6.extend_from_slice(&(inner.len() as u16).to_be_bytes());
        v6.extend_from_slice(&[4, 64]);
        v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        v6.extend_from_slice(inner);
        let f = link_layer(LINKTYPE_RAW, &v6).unwrap();
        assert_eq!((f.ip, f.link_len), (inner, 40));
        // 4in4, twice nested.
        let twice = ipv4(4, &ipv4(4, inner));
        let f = link_layer(LINKTYPE_RAW, &twice).unwrap();
        assert_eq!((f.ip, f.link_len), (inner, 40));
        // A fragment is not a whole inner packet; protocol 41 must carry IPv6.
        let mut fragment = ipv4(4, inner);
        fragment[6] = 0x20;
        assert_eq!(link_layer(LINKTYPE_RAW, &fragment).unwrap().link_len, 0);
        assert_eq!(
            link_layer(LINKTYPE_RAW, &ipv4(41, inner)).unwrap().link_len,
            0
        );
        // VXLAN: UDP to 4789, the VXLAN header (VNI flag), the phone's frame.
        let mut udp = vec![0x12, 0x34, 0x12, 0xb5, 0, 0, 0, 0];
        udp.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 0x64, 0]);
        udp.extend_from_slice(&frame);
        let packet = ipv4(17, &udp);
        let f = link_layer(LINKTYPE_RAW, &packet).unwrap();
        assert_eq!(
            (f.ip, f.src_mac, f.link_len),
            (inner, Some([2, 0, 0, 0, 0x77, 2]), 20 + 16 + 14)
        );
        // Nested deeper than MAX_TUNNELS: peeled that far, no further.
        let mut deep = inner.to_vec();
        for _ in 0..MAX_TUNNELS + 2 {
            deep = ipv4(4, &deep);
        }
        assert_eq!(
            link_layer(LINKTYPE_RAW, &deep).unwrap().link_len,
            20 * MAX_TUNNELS
        );
    }

    #[test]
    fn a_link_type_phonehome_does_not_read_is_refused_by_name() {
        let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        pcap.extend_from_slice(&[0; 8]);
        pcap.extend_from_slice(&65535u32.to_le_bytes());
        pcap.extend_from_slice(&127u32.to_le_bytes()); // IEEE802_11_RADIO
        let err = for_each_packet(&pcap[..], |_| {}).unwrap_err();
        assert!(
            err.message.contains("link type 127 (IEEE802_11_RADIO)"),
            "{}",
            err.message
        );
        for known in [
            LINKTYPE_ETHERNET,
            LINKTYPE_NFLOG,
            LINKTYPE_PPP,
            LINKTYPE_LINUX_SLL2,
        ] {
            assert!(reads_link_type(known), "{known}");
        }
        assert!(!reads_link_type(147));
    }

    #[test]
    fn pcapng_timestamp_units() {
        assert_eq!(
            scale(1_700_000_000_123_456, units_per_second(None)),
            Duration::new(1_700_000_000, 123_456_000)
        );
        assert_eq!(
            scale(1_700_000_000_123_456_789, units_per_second(Some(9))),
            Duration::new(1_700_000_000, 123_456_789)
        );
        assert_eq!(
            scale(3 << 10 | 512, units_per_second(Some(0x8a))),
            Duration::new(3, 500_000_000)
        );
    }

    #[test]
    fn a_read_error_is_not_taken_for_the_end_of_the_file() {
        // The whole capture, then the disk fails.
        struct Failing<'a>(&'a [u8]);
        impl Read for Failing<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::Error::other("disk on fire"));
                }
                let n = self.0.read(buf)?;
                Ok(n)
            }
        }
        let file = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/phone-lan.pcap"
        ));
        let mut seen = 0;
        let e = for_each_packet(Failing(file), |_| seen += 1).unwrap_err();
        assert_eq!((e.packets, seen, e.truncated), (50, 50, false));
        assert!(e.message.contains("disk on fire"), "{e}");
        // A file cut inside a record is the truncated kind.
        let e = for_each_packet(&file[..file.len() - 7], |_| {}).unwrap_err();
        assert!(e.truncated, "{e}");
    }

    #[test]
    fn not_a_capture_is_refused_before_any_packet() {
        let e = for_each_packet(&b"hello world"[..], |_| panic!()).unwrap_err();
        assert!(e.message.contains("not a pcap or pcapng file"), "{e}");
        let e = for_each_packet(&b"ab"[..], |_| panic!()).unwrap_err();
        assert!(e.message.contains("first 4 bytes"), "{e}");
    }
}
