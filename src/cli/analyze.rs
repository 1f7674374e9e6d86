//! Analyze: the daemon's pipeline over a packet capture, for auditing a
//! phone from a tcpdump without a router in the path. Every IP packet goes
//! through the same engine as queued packets (DNS answers teach names, TLS
//! / HTTP / QUIC first bytes are sniffed, the owner database and the policy
//! judge), and the result is summarised as the live daemon does: per
//! device, per owner, per flow, with what the policy would have blocked.
//!
//! What conntrack does for the daemon is done here from the packets: the
//! original direction of a connection is its first packet's unless that is
//! a SYN-ACK or a DNS answer, or the sender's port is the lower one (the
//! server's) when the capture starts mid-connection; bytes are the IP
//! lengths of the packets each way (as conntrack counts them), folded into
//! the per-minute statistics as the capture clock passes each minute; a
//! flow ends after an RST or FINs both ways (10 s later, like TIME_WAIT),
//! or when idle (TCP 30 min, UDP 2 min, others 1 min, in capture time).
//!
//! Sans-IO: `Analyzer` takes packets with their capture timestamps; the
//! CLI reads the file (`capture::for_each_packet`).
//!
//! Packets that cannot leave the local link (multicast, broadcast,
//! link-local, unspecified addresses) are counted apart, not as flows.
//! Unlike the daemon, which sees forwarded traffic only, a capture's
//! lookups to the router's own DNS server count as flows.
//!
//! IP fragments are put back together first (`defrag`: overlapping ones
//! drop their datagram, as the kernel does), so a fragmented DNS answer
//! teaches its names.
//!
//! Limits: no TCP stream reassembly beyond the
//! engine's in-order ClientHello buffer, one device per source address.
//!
//! Over 600 lines: half of it is unit tests (real captures, built
//! fragments and tunnels).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;

use crate::cli::capture::{self, CapturedPacket, NotIp};
use crate::cli::defrag::{Reassembler, Reassembly};
use crate::engine::{Engine, Hook, Now, Packet};
use crate::policy::config::Config;
use crate::report::stats::{DeviceRow, FlowRow, OwnerRow, SeriesBy, SeriesRows, TimeRange};
use crate::wire::packet::{self, FiveTuple, PacketError, PROTO_TCP, PROTO_UDP};

/// Idle time after which a capture's flow is over, in seconds.
const TCP_IDLE: u64 = 1800;
const TCP_CLOSED: u64 = 10;
const UDP_IDLE: u64 = 120;
const OTHER_IDLE: u64 = 60;
/// How often (capture seconds) idle flows are looked for.
const SWEEP_EVERY: u64 = 5;
/// The flow table of an analysis holds at least this many flows (a
/// capture's flows are only ended by timeouts, so more are live at once
/// than on a router whose conntrack ends them).
pub const MIN_FLOWS: usize = 100_000;

/// What a capture held, beside the rows.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct CaptureSummary {
    pub packets: u64,
    /// Packets with an IP header and a transport we read.
    pub ip_packets: u64,
    /// IP bytes (as conntrack counts them) of those.
    pub bytes: u64,
    /// ARP, LLDP, ... and frames cut inside their link header.
    pub not_ip: u64,
    /// Packets that stay on the local link (multicast, broadcast,
    /// link-local or unspecified addresses): a router never forwards them.
    pub link_local: u64,
    /// IP packets that do not parse.
    pub malformed: u64,
    /// Frames of link types this reader does not know, and which.
    pub other_link: u64,
    pub other_link_types: Vec<u32>,
    /// Unix seconds of the first and last packet.
    pub first_seen: u64,
    pub last_seen: u64,
    pub flows: u64,
    /// Flows the policy blocks or rejects (would have, on the router).
    pub blocked: u64,
    /// DNS answers the policy would have sinkholed.
    pub sinkholed: u64,
    /// Flows decided without a name after `decide_by` packets.
    pub gave_up: u64,
    /// Flows decided without a name for any reason.
    pub nameless: u64,
    /// Flows pushed out of a full table (their later bytes uncounted).
    pub evicted: u64,
    /// IP fragments, and the datagrams put back together from them and
    /// dropped (overlapping, cut short, never completed in 30 s).
    pub fragments: u64,
    pub reassembled: u64,
    pub fragments_dropped: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub capture: CaptureSummary,
    pub devices: Vec<DeviceRow>,
    pub owners: Vec<OwnerRow>,
    /// Every flow, in the order they ended (when asked for).
    pub flows: Vec<FlowRow>,
    /// Each device's owners (the first `document::MAX_DEVICES` devices).
    pub device_owners: BTreeMap<String, Vec<OwnerRow>>,
    /// Connections per owner over the capture's time.
    pub series: SeriesRows,
}

pub struct Analyzer {
    engine: Engine,
    defrag: Reassembler,
    summary: CaptureSummary,
    /// TCP flows that saw an RST or FINs: bit 0 FIN from the client, bit 1
    /// FIN from the server, bit 2 RST.
    closing: HashMap<FiveTuple, u8>,
    first_time: Option<Duration>,
    /// `Now` of the current capture second (local time is worked out once
    /// per second).
    now: Now,
    next_sweep: u64,
    keep_flows: bool,
    flows: Vec<FlowRow>,
}

impl Analyzer {
    /// An analysis under `cfg`'s policy; `keep_flows` keeps every flow's
    /// row for the report.
    pub fn new(cfg: &Config, keep_flows: bool) -> Analyzer {
        let mut cfg = cfg.clone();
        cfg.max_flows = cfg.max_flows.max(MIN_FLOWS);
        cfg.ipfix_collector = None;
        let mut engine = Engine::new(&cfg);
        engine.set_quiet(true);
        Analyzer {
            engine,
            summary: CaptureSummary::default(),
            defrag: Reassembler::default(),
            closing: HashMap::new(),
            first_time: None,
            now: Now::default(),
            next_sweep: 0,
            keep_flows,
            flows: Vec::new(),
        }
    }

    fn clock(&mut self, time: Duration) -> Now {
        let unix = time.as_secs();
        let first_packet = self.first_time.is_none();
        let first = *self.first_time.get_or_insert(time);
        if first_packet {
            self.summary.first_seen = unix;
        }
        if first_packet || unix != self.now.unix {
            self.now = Now {
                mono: time.saturating_sub(first).as_secs(),
                unix,
                local: crate::daemon::local_time(unix),
            };
        }
        self.summary.last_seen = self.summary.last_seen.max(unix);
        self.now
    }

    /// Takes one captured packet.
    pub fn on_packet(&mut self, p: &CapturedPacket<'_>) {
        self.summary.packets += 1;
        let now = self.clock(p.time);
        if now.mono >= self.next_sweep {
            self.sweep(now);
            self.next_sweep = now.mono + SWEEP_EVERY;
        }
        let frame = match capture::link_layer(p.linktype, p.data) {
            Ok(f) => f,
            Err(NotIp::LinkType(t)) => {
                self.summary.other_link += 1;
                if !self.summary.other_link_types.contains(&t) {
                    self.summary.other_link_types.push(t);
                }
                return;
            }
            Err(_) => {
                self.summary.not_ip += 1;
                return;
            }
        };
        // A fragment waits for the rest of its datagram.
        let rebuilt;
        let (ip, from_fragments): (&[u8], bool) = match self.defrag.push(frame.ip, now.unix) {
            Reassembly::Whole => (frame.ip, false),
            Reassembly::Held | Reassembly::Dropped => {
                self.summary.fragments += 1;
                self.summary.bytes += u64::from(packet::ip_len(frame.ip).unwrap_or(0));
                return;
            }
            Reassembly::Done(datagram) => {
                self.summary.fragments += 1;
                self.summary.reassembled += 1;
                rebuilt = datagram;
                // A tunnel's outer packet, fragmented: its inner packet.
                (capture::tunnelled(&rebuilt).unwrap_or(&rebuilt), true)
            }
        };
        let view = match packet::parse(ip) {
            Ok(v) => v,
            Err(PacketError::NoTransport) => {
                self.summary.not_ip += 1;
                return;
            }
            Err(PacketError::Malformed(_)) => {
                self.summary.malformed += 1;
                return;
            }
        };
        self.summary.ip_packets += 1;
        if stays_on_the_link(&view.tuple) {
            self.summary.link_local += 1;
            return;
        }
        let len = u64::from(
            packet::ip_len(ip).unwrap_or_else(|| p.orig_len.saturating_sub(frame.link_len as u32)),
        );
        // A datagram's other fragments were counted as they came.
        self.summary.bytes += if from_fragments {
            u64::from(packet::ip_len(frame.ip).unwrap_or(0))
        } else {
            len
        };

        let t = view.tuple;
        let known = |t: &FiveTuple| self.engine.has_flow(t);
        let (orig, is_reply) = if known(&t) {
            (t, false)
        } else if known(&t.reversed()) || started_by_other_side(&t, view.tcp) {
            (t.reversed(), true)
        } else {
            (t, false)
        };
        // The flow as this packet finds it: decided or not, last seen when.
        let before = self.engine.flow_activity(&orig);
        let decided = before.is_some_and(|(decided, _)| decided);
        let dns_answer = t.proto == PROTO_UDP && t.sport == 53;
        if !decided || dns_answer {
            // The client's MAC: the sender of its packets, the receiver of
            // its server's (so a flow first seen from the server side is
            // still the phone's).
            let client_mac = if is_reply {
                frame.dst_mac
            } else {
                frame.src_mac
            };
            if let Some(mac) = client_mac.filter(|m| m[0] & 1 == 0) {
                self.engine.observe_device(orig.src, mac);
            }
            let packet = Packet {
                ip,
                view: view.clone(),
                hook: Hook::Forward,
                mac: frame.src_mac,
                conn: Some(orig),
            };
            self.engine.on_packet(&packet, now);
            // Nothing to do with them offline (no neighbour table, no
            // watchers, no exporter): taken so none are held.
            while self.engine.poll_event().is_some() {}
        }

        if let Some((_, last)) = before.filter(|(_, last)| last / 60 != now.unix / 60) {
            // A new minute: the bytes so far belong to the last one.
            self.engine.fold_bytes(&orig, last);
        }
        if !self.engine.count_captured(&orig, is_reply, len, now.unix) {
            return; // a DNS answer without its question in the capture
        }
        if let Some(tcp) = view.tcp.filter(|tcp| tcp.fin || tcp.rst) {
            let bit = match (tcp.rst, is_reply) {
                (true, _) => 4,
                (false, false) => 1,
                (false, true) => 2,
            };
            *self.closing.entry(orig).or_default() |= bit;
        }
    }

    /// Ends the flows that are over at `now`.
    fn sweep(&mut self, now: Now) {
        let closing = &self.closing;
        let mut over: Vec<FiveTuple> = self
            .engine
            .active_flows()
            .into_iter()
            .filter(|(tuple, last_seen)| {
                let idle = now.unix.saturating_sub(*last_seen);
                let limit = match tuple.proto {
                    PROTO_TCP => match closing.get(tuple) {
                        Some(bits) if bits & 4 != 0 || bits & 3 == 3 => TCP_CLOSED,
                        _ => TCP_IDLE,
                    },
                    PROTO_UDP => UDP_IDLE,
                    _ => OTHER_IDLE,
                };
                idle >= limit
            })
            .map(|(tuple, _)| tuple)
            .collect();
        over.sort();
        for t in over {
            self.end(&t, now);
        }
    }

    fn end(&mut self, t: &FiveTuple, now: Now) {
        self.closing.remove(t);
        let row = self.engine.end_flow(t, now);
        while self.engine.poll_event().is_some() {}
        self.summary.flows += 1;
        if let Some(row) = row {
            if row.verdict == "block" || row.verdict == "reject" {
                self.summary.blocked += 1;
            }
            if self.keep_flows {
                self.flows.push(row);
            }
        }
    }

    /// Ends every flow still open and returns the summary, rows for devices
    /// (`device`: only that one) and owners, and the flows.
    pub fn finish(mut self, device: Option<&str>) -> Report {
        let now = self.now;
        let mut open: Vec<FiveTuple> = self
            .engine
            .active_flows()
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        open.sort();
        for t in open {
            self.end(&t, now);
        }
        let c = *self.engine.counters();
        self.summary.sinkholed = c.sinkholed;
        self.summary.gave_up = c.gave_up;
        self.summary.nameless = c.nameless;
        self.summary.evicted = self.engine.flows_evicted();
        self.summary.fragments_dropped = self.defrag.dropped + self.defrag.pending() as u64;
        let all = TimeRange::default();
        let mut owners = self.engine.owner_rows(device, all, now);
        owners.sort_by(|a, b| {
            (b.bytes_up + b.bytes_down)
                .cmp(&(a.bytes_up + a.bytes_down))
                .then(b.flows.cmp(&a.flows))
                .then(a.owner.cmp(&b.owner))
        });
        let mut flows = self.flows;
        if let Some(d) = device {
            flows.retain(|r| r.device.eq_ignore_ascii_case(d));
        }
        flows.sort_by_key(|r| (r.first_seen, r.last_seen));
        let devices = self.engine.device_rows(device, all, now);
        let device_owners = devices
            .iter()
            .take(crate::report::document::MAX_DEVICES)
            .map(|d| {
                let key = crate::report::document::device_key(d);
                (key.to_string(), self.engine.owner_rows(Some(key), all, now))
            })
            .collect();
        let over_the_capture = TimeRange {
            since: Some(self.summary.first_seen),
            until: None,
        };
        let series = self
            .engine
            .series(device, SeriesBy::Owner, over_the_capture, 10, now);
        Report {
            capture: self.summary,
            devices,
            owners,
            flows,
            device_owners,
            series,
        }
    }
}

/// Whether a packet cannot leave the local link (so no router forwards
/// it and the daemon never sees it): multicast, broadcast, link-local or
/// unspecified addresses.
fn stays_on_the_link(t: &FiveTuple) -> bool {
    use std::net::IpAddr;
    let local = |a: &IpAddr| match a {
        IpAddr::V4(a) => {
            a.is_multicast() || a.is_broadcast() || a.is_link_local() || a.is_unspecified()
        }
        IpAddr::V6(a) => {
            a.is_multicast() || a.is_unspecified() || (a.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    local(&t.src) || local(&t.dst)
}

/// Whether the first packet seen of a connection was sent by its server:
/// a SYN-ACK, a DNS answer, or (mid-connection) a packet from the lower
/// port to a higher one.
fn started_by_other_side(t: &FiveTuple, tcp: Option<packet::TcpInfo>) -> bool {
    match tcp {
        Some(tcp) if tcp.syn => tcp.ack,
        _ if t.proto == PROTO_UDP && t.sport == 53 => true,
        _ if t.proto == PROTO_TCP || t.proto == PROTO_UDP => t.sport < t.dport,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::capture::for_each_packet;

    /// A real capture (tcpdump on the test network's LAN veth, the router
    /// rejecting Xiaomi): a DNS lookup of www.google-analytics.com and
    /// HTTPS to it, to oss.aliyuncs.com (SNI only) and to
    /// api.ad.xiaomi.com (SNI only, rejected: SYN, RST), plus ARP and
    /// IPv6 link-local chatter.
    const PHONE_LAN: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/phone-lan.pcap"
    ));
    const PHONE: &str = "02:00:00:00:77:02";

    fn config(text: &str) -> Config {
        Config::parse(text, std::path::Path::new("test.conf")).unwrap()
    }

    fn packets(file: &[u8]) -> Vec<(Duration, u32, Vec<u8>, u32)> {
        let mut all = Vec::new();
        for_each_packet(file, |p| {
            all.push((p.time, p.linktype, p.data.to_vec(), p.orig_len))
        })
        .unwrap();
        all
    }

    fn analyze<'a>(
        cfg: &Config,
        packets: impl IntoIterator<Item = &'a (Duration, u32, Vec<u8>, u32)>,
    ) -> Report {
        let mut a = Analyzer::new(cfg, true);
        for (time, linktype, data, orig_len) in packets {
            a.on_packet(&CapturedPacket {
                time: *time,
                linktype: *linktype,
                data,
                orig_len: *orig_len,
            });
        }
        a.finish(None)
    }

    fn flow<'a>(r: &'a Report, dst: &str) -> &'a FlowRow {
        r.flows
            .iter()
            .find(|f| f.dst == dst)
            .unwrap_or_else(|| panic!("no flow to {dst}: {:#?}", r.flows))
    }

    #[test]
    fn a_real_capture_is_named_counted_and_judged() {
        let cfg =
            config("config rule 'xiaomi'\n\toption owner 'Xiaomi'\n\toption action 'reject'\n");
        let r = analyze(&cfg, &packets(PHONE_LAN));
        let c = &r.capture;
        assert_eq!(
            (c.packets, c.ip_packets, c.not_ip, c.link_local),
            (50, 48, 2, 4)
        );
        assert_eq!((c.flows, c.blocked, c.malformed), (4, 1, 0));

        // Names: the flow's own SNI (its DNS answer named the address too),
        // and SNI alone.
        let google = flow(&r, "203.0.113.20");
        assert_eq!(
            (
                google.domain.as_deref(),
                google.name_source.as_deref(),
                google.owner.as_str()
            ),
            (Some("www.google-analytics.com"), Some("sni"), "Google")
        );
        assert_eq!(flow(&r, "203.0.113.40").name_source.as_deref(), Some("sni"));
        let xiaomi = flow(&r, "203.0.113.10");
        assert_eq!(
            (xiaomi.verdict.as_str(), xiaomi.rule.as_deref()),
            ("reject", Some("xiaomi"))
        );
        // Bytes each way: the IP lengths tcpdump -v prints, summed.
        for (dst, up, down) in [
            ("203.0.113.20", 1311, 6979),
            ("203.0.113.40", 1199, 7031),
            ("203.0.113.10", 681, 100),
            ("198.51.100.53", 93, 97),
        ] {
            let f = flow(&r, dst);
            assert_eq!((f.bytes_up, f.bytes_down), (up, down), "{dst}");
            assert_eq!(f.device, PHONE);
        }
        // The summaries agree with the flows.
        assert_eq!(r.devices.len(), 1);
        let phone = &r.devices[0];
        assert_eq!(
            (phone.mac.as_str(), phone.flows, phone.blocked),
            (PHONE, 4, 1)
        );
        assert_eq!(
            (phone.bytes_up, phone.bytes_down),
            (1311 + 1199 + 681 + 93, 6979 + 7031 + 100 + 97)
        );
        let google = r.owners.iter().find(|o| o.owner == "Google").unwrap();
        assert_eq!((google.flows, google.bytes_down), (1, 6979));
    }

    /// A DNS answer for `name` too large for one packet (149 other
    /// addresses first, `addr` last, so only the last fragment holds it).
    fn large_answer(name: &str, addr: std::net::IpAddr) -> Vec<u8> {
        let (rtype, rdata): (u16, Vec<u8>) = match addr {
            std::net::IpAddr::V4(a) => (1, a.octets().to_vec()),
            std::net::IpAddr::V6(a) => (28, a.octets().to_vec()),
        };
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 150, 0, 0, 0, 0];
        for label in name.split('.') {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&rtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        for i in 0..150u8 {
            m.extend_from_slice(&[0xc0, 12]);
            m.extend_from_slice(&rtype.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 1, 0]);
            m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            if i == 149 {
                m.extend_from_slice(&rdata);
            } else {
                let mut other = rdata.clone();
                other[0] = 198;
                *other.last_mut().unwrap() = i;
                m.extend_from_slice(&other);
            }
        }
        m
    }

    /// A large DNS answer arrives fragmented; its name reaches the
    /// connection that follows only when the fragments are put back
    /// together (before: the connection went unnamed and allowed). IPv4
    /// and IPv6, fragments out of order.
    #[test]
    fn a_fragmented_dns_answer_names_the_connection_after_it() {
        use etherparse::PacketBuilder;
        let cfg =
            config("config rule 'xiaomi'\n\toption owner 'Xiaomi'\n\toption action 'reject'\n");
        for v6 in [false, true] {
            let (phone, resolver, server): (std::net::IpAddr, std::net::IpAddr, std::net::IpAddr) =
                if v6 {
                    (
                        "fd00:77::2".parse().unwrap(),
                        "2001:db8::53".parse().unwrap(),
                        "2001:db8::20".parse().unwrap(),
                    )
                } else {
                    (
                        "192.168.77.2".parse().unwrap(),
                        "203.0.113.53".parse().unwrap(),
                        "203.0.113.20".parse().unwrap(),
                    )
                };
            let builder = |src: std::net::IpAddr, dst: std::net::IpAddr| match (src, dst) {
                (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
                    PacketBuilder::ipv4(s.octets(), d.octets(), 64)
                }
                (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) => {
                    PacketBuilder::ipv6(s.octets(), d.octets(), 64)
                }
                _ => unreachable!(),
            };
            let mut answer = Vec::new();
            builder(resolver, phone)
                .udp(53, 40000)
                .write(&mut answer, &large_answer("tracking.miui.com", server))
                .unwrap();
            assert!(answer.len() > 1500);
            let mut parts = crate::cli::defrag::tests::fragments(&answer, 1232, 77);
            let pieces = parts.len() as u64;
            parts.reverse();
            let mut syn = Vec::new();
            builder(phone, server)
                .tcp(40001, 443, 1, 64240)
                .syn()
                .write(&mut syn, &[])
                .unwrap();
            let mut capture: Vec<(Duration, u32, Vec<u8>, u32)> = parts
                .into_iter()
                .map(|p| {
                    (
                        Duration::from_secs(1_795_651_200),
                        crate::cli::capture::LINKTYPE_RAW,
                        p.clone(),
                        p.len() as u32,
                    )
                })
                .collect();
            capture.push((
                Duration::from_secs(1_795_651_201),
                crate::cli::capture::LINKTYPE_RAW,
                syn.clone(),
                syn.len() as u32,
            ));
            let report = analyze(&cfg, &capture);
            let f = flow(&report, &server.to_string());
            assert_eq!(
                f.domain.as_deref(),
                Some("tracking.miui.com"),
                "v6: {v6}: {f:?}"
            );
            assert_eq!(
                (f.owner.as_str(), f.verdict.as_str()),
                ("Xiaomi", "reject"),
                "v6: {v6}"
            );
            assert_eq!(
                (report.capture.fragments, report.capture.reassembled),
                (pieces, 1),
                "v6: {v6}"
            );
            assert_eq!(report.capture.fragments_dropped, 0);
        }
    }

    /// The same through a 6in4 tunnel whose outer packets are fragmented
    /// (tunnels are where the MTU runs out): the rebuilt outer packet is
    /// peeled like a whole one.
    #[test]
    fn a_fragmented_tunnel_packet_is_peeled_once_whole() {
        use etherparse::{IpNumber, Ipv4Header, PacketBuilder};
        let cfg =
            config("config rule 'xiaomi'\n\toption owner 'Xiaomi'\n\toption action 'reject'\n");
        let (phone, resolver, server) = (
            [0xfd, 0, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53],
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20],
        );
        let mut inner = Vec::new();
        PacketBuilder::ipv6(resolver, phone, 64)
            .udp(53, 40000)
            .write(
                &mut inner,
                &large_answer("tracking.miui.com", server.into()),
            )
            .unwrap();
        let mut outer = Vec::new();
        Ipv4Header::new(
            inner.len() as u16,
            64,
            IpNumber::IPV6,
            [198, 51, 100, 1],
            [198, 51, 100, 2],
        )
        .unwrap()
        .write(&mut outer)
        .unwrap();
        outer.extend_from_slice(&inner);
        let t = Duration::from_secs(1_795_651_200);
        let mut capture: Vec<(Duration, u32, Vec<u8>, u32)> =
            crate::cli::defrag::tests::fragments(&outer, 1480, 5)
                .into_iter()
                .map(|p| {
                    (
                        t,
                        crate::cli::capture::LINKTYPE_RAW,
                        p.clone(),
                        p.len() as u32,
                    )
                })
                .collect();
        let mut syn = Vec::new();
        PacketBuilder::ipv6(phone, server, 64)
            .tcp(40001, 443, 1, 64240)
            .syn()
            .write(&mut syn, &[])
            .unwrap();
        capture.push((
            t,
            crate::cli::capture::LINKTYPE_RAW,
            syn.clone(),
            syn.len() as u32,
        ));
        let report = analyze(&cfg, &capture);
        let f = flow(&report, "2001:db8::20");
        assert_eq!(f.domain.as_deref(), Some("tracking.miui.com"), "{f:?}");
        assert_eq!(f.verdict, "reject");
    }

    #[test]
    fn packets_cut_at_the_snap_length_still_count_whole() {
        // tcpdump -s 96: headers, the first bytes of payloads.
        let cut: Vec<_> = packets(PHONE_LAN)
            .into_iter()
            .map(|(t, l, data, orig)| (t, l, data[..data.len().min(96)].to_vec(), orig))
            .collect();
        let r = analyze(&config(""), &cut);
        let google = flow(&r, "203.0.113.20");
        assert_eq!((google.bytes_up, google.bytes_down), (1311, 6979));
        // The name came from DNS, whose answer was cut too: no name now.
        assert_eq!(google.domain, None);
        assert_eq!(
            r.capture.bytes,
            analyze(&config(""), &packets(PHONE_LAN)).capture.bytes
        );
    }

    #[test]
    fn a_capture_starting_mid_connection_keeps_client_and_server_apart() {
        let all = packets(PHONE_LAN);
        // Start at every packet of the Google connection in turn: the
        // phone stays the client as long as one of its packets is left.
        let first = all
            .iter()
            .position(|p| p.2.len() > 40 && p.2[30..34] == [203, 0, 113, 20])
            .unwrap();
        for skip in first..first + 12 {
            let r = analyze(&config(""), &all[skip..]);
            let Some(f) = r
                .flows
                .iter()
                .find(|f| f.dst == "203.0.113.20" || f.src == "203.0.113.20")
            else {
                continue;
            };
            assert_eq!(
                (f.src.as_str(), f.dst.as_str(), f.dport),
                ("192.168.77.2", "203.0.113.20", 443),
                "from packet {skip}"
            );
            assert_eq!(f.device, PHONE, "from packet {skip}");
        }
    }

    #[test]
    fn pcapng_with_nanosecond_stamps_reads_as_the_pcap() {
        use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
        use pcap_file::pcapng::blocks::interface_description::{
            InterfaceDescriptionBlock, InterfaceDescriptionOption,
        };
        use pcap_file::pcapng::PcapNgWriter;
        let all = packets(PHONE_LAN);
        let mut writer = PcapNgWriter::new(Vec::new()).unwrap();
        let mut idb = InterfaceDescriptionBlock::new(pcap_file::DataLink::ETHERNET, 2048);
        idb.options.push(InterfaceDescriptionOption::IfTsResol(9));
        writer.write_pcapng_block(idb).unwrap();
        for (time, _, data, orig_len) in &all {
            writer
                .write_pcapng_block(EnhancedPacketBlock {
                    interface_id: 0,
                    // pcap-file writes the raw count of the interface's units.
                    timestamp: *time,
                    original_len: *orig_len,
                    data: data.as_slice().into(),
                    options: vec![],
                })
                .unwrap();
        }
        let ng = writer.into_inner();
        let again = packets(&ng);
        assert_eq!(again.len(), all.len());
        assert_eq!(again[7].0, all[7].0, "timestamps");
        let (a, b) = (analyze(&config(""), &all), analyze(&config(""), &again));
        assert_eq!(a.capture, b.capture);
        assert_eq!(a.flows, b.flows);
    }

    #[test]
    fn idle_flows_end_and_come_back_as_new_ones() {
        let mut all = packets(PHONE_LAN);
        // The DNS question again, five minutes later: a second flow.
        let question = all
            .iter()
            .position(|p| p.2.len() > 40 && p.2[37] == 53)
            .unwrap();
        let mut late = all[question].clone();
        late.0 += Duration::from_secs(300);
        all.push(late);
        let r = analyze(&config(""), &all);
        assert_eq!(r.capture.flows, 5);
        let dns: Vec<&FlowRow> = r.flows.iter().filter(|f| f.dport == 53).collect();
        assert_eq!(dns.len(), 2);
        assert_eq!(dns[1].first_seen - dns[0].first_seen, 300);
    }

    #[test]
    fn hostile_bytes_never_stop_the_analysis() {
        let mut a = Analyzer::new(&config(""), false);
        let frames: [&[u8]; 5] = [
            &[],
            &[0x45],
            &[0xff; 60],
            &[0x60; 80],
            &[0x45, 0, 0, 0x14, 0, 0, 0, 0, 64, 6],
        ];
        for (i, data) in frames.iter().enumerate() {
            for linktype in [1, 101, 113, 276, 0, 9999] {
                a.on_packet(&CapturedPacket {
                    time: Duration::from_secs(i as u64),
                    linktype,
                    data,
                    orig_len: u32::MAX,
                });
            }
        }
        let r = a.finish(None);
        assert_eq!(r.capture.packets, 30);
        assert_eq!(r.capture.other_link, 5);
        assert_eq!(r.capture.other_link_types, vec![9999]);
    }
}
