//! Capture: packets from a pcap or pcapng file (tcpdump, Wireshark,
//! PCAPdroid on the phone itself) for `phonehome analyze`. The file formats
//! are read by the `pcap-file` crate; this module picks the format, fixes
//! pcapng timestamps (pcap-file reads them as nanoseconds whatever the
//! interface's `if_tsresol`; the default unit is the microsecond) and
//! peels the link layer off with etherparse, so the rest of the pipeline
//! gets what NFQUEUE would hand it: the IP packet and the sender's MAC.
//!
//! Link types: Ethernet (with 802.1Q/802.1ad tags), Linux cooked v1 and v2
//! (`tcpdump -i any`), raw IP, IPv4, IPv6 and BSD loopback. Others are
//! counted as skipped. `link_layer` is pure; `for_each_packet` is the I/O
//! edge.

use std::io::Read;
use std::time::Duration;

use etherparse::{EtherType, Ethernet2Slice, LinuxSllProtocolType, LinuxSllSlice, SingleVlanSlice};

use crate::config::Mac;

pub const LINKTYPE_NULL: u32 = 0;
pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_RAW: u32 = 101;
pub const LINKTYPE_LOOP: u32 = 108;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
pub const LINKTYPE_IPV4: u32 = 228;
pub const LINKTYPE_IPV6: u32 = 229;
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

/// Takes the link layer off a frame of type `linktype`.
pub fn link_layer(linktype: u32, frame: &[u8]) -> Result<IpFrame<'_>, NotIp> {
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
            // Up to two VLAN tags (802.1ad outer, 802.1Q inner).
            for _ in 0..2 {
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
            let mut ip = ip_payload(
                frame,
                payload.ether_type,
                payload.payload,
                Some(eth.source()),
            )?;
            ip.dst_mac = Some(eth.destination());
            Ok(ip)
        }
        LINKTYPE_LINUX_SLL => {
            let sll = LinuxSllSlice::from_slice(frame).map_err(|_| NotIp::Truncated)?;
            let mac = (sll.sender_address_valid_length() == 6).then(|| {
                let full = sll.sender_address_full();
                [full[0], full[1], full[2], full[3], full[4], full[5]]
            });
            let payload = sll.payload();
            match payload.protocol_type {
                LinuxSllProtocolType::EtherType(t) => ip_payload(frame, t, payload.payload, mac),
                _ => Err(NotIp::OtherProtocol),
            }
        }
        LINKTYPE_LINUX_SLL2 => {
            // 20 bytes: protocol, reserved, ifindex, ARPHRD, packet type,
            // address length, 8 address bytes (etherparse has v1 only).
            let header = frame.get(..20).ok_or(NotIp::Truncated)?;
            let protocol = EtherType(u16::from_be_bytes([header[0], header[1]]));
            let mac = (header[11] == 6).then(|| {
                let mut m = [0u8; 6];
                m.copy_from_slice(&header[12..18]);
                m
            });
            ip_payload(frame, protocol, &frame[20..], mac)
        }
        LINKTYPE_RAW | LINKTYPE_IPV4 | LINKTYPE_IPV6 => ip_only(0),
        // BSD loopback: a 4-byte address family in the writer's byte order.
        LINKTYPE_NULL | LINKTYPE_LOOP => ip_only(4),
        other => Err(NotIp::LinkType(other)),
    }
}

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
        let file = include_bytes!("../tests/fixtures/phone-lan.pcap");
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
