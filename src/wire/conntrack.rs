//! Conntrack over ctnetlink: decodes conntrack entries (from `NFQA_CT` in
//! queued packets, from table dumps and from destroy events) and reads the
//! kernel's per-connection byte and packet accounting, which is where
//! phonehome's byte counts come from (queued packets are only the first few).
//!
//! Hand-written for the same reason as `nfqueue`: no maintained crate speaks
//! ctnetlink. Limits: reads only the fields phonehome uses; counters need
//! `net.netfilter.nf_conntrack_acct=1` (the daemon turns it on).

/// The ct/packet mark bits phonehome owns: the verdict a connection got,
/// which the kernel rules (`policy::firewall`) enforce from then on.
pub const MARK_MASK: u32 = 0x3000_0000;
pub const MARK_ALLOW: u32 = 0x1000_0000;
pub const MARK_BLOCK: u32 = 0x2000_0000;
pub const MARK_REJECT: u32 = 0x3000_0000;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::netlink::{self, Attr, MessageWriter, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use crate::wire::packet::FiveTuple;

pub const NFNL_SUBSYS_CTNETLINK: u16 = 1;
pub const IPCTNL_MSG_CT_NEW: u16 = 0;
pub const IPCTNL_MSG_CT_GET: u16 = 1;
pub const IPCTNL_MSG_CT_DELETE: u16 = 2;
/// Multicast group of destroy events, as a bind bitmask (group 3).
pub const GROUP_DESTROY: u32 = 1 << 2;

const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_STATUS: u16 = 3;
pub const CTA_MARK: u16 = 8;
const CTA_COUNTERS_ORIG: u16 = 9;
const CTA_COUNTERS_REPLY: u16 = 10;
const CTA_ID: u16 = 12;
pub const CTA_MARK_MASK: u16 = 21;

const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_COUNTERS_PACKETS: u16 = 1;
const CTA_COUNTERS_BYTES: u16 = 2;

/// Packets and bytes in one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
}

/// The parts of a conntrack entry phonehome reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CtEntry {
    pub id: Option<u32>,
    pub orig: Option<FiveTuple>,
    pub reply: Option<FiveTuple>,
    pub mark: Option<u32>,
    pub status: Option<u32>,
    pub orig_counters: Option<Counters>,
    pub reply_counters: Option<Counters>,
}

/// Decodes the attribute area of a conntrack entry. Malformed parts are
/// left out, never fatal.
pub fn parse_entry(buf: &[u8]) -> CtEntry {
    let mut e = CtEntry::default();
    for a in netlink::attrs(buf) {
        match a.kind {
            CTA_TUPLE_ORIG => e.orig = parse_tuple(&a),
            CTA_TUPLE_REPLY => e.reply = parse_tuple(&a),
            CTA_STATUS => e.status = a.be_u32(),
            CTA_MARK => e.mark = a.be_u32(),
            CTA_ID => e.id = a.be_u32(),
            CTA_COUNTERS_ORIG => e.orig_counters = Some(parse_counters(&a)),
            CTA_COUNTERS_REPLY => e.reply_counters = Some(parse_counters(&a)),
            _ => {}
        }
    }
    e
}

fn parse_tuple(attr: &Attr<'_>) -> Option<FiveTuple> {
    let (mut src, mut dst, mut proto, mut sport, mut dport) = (None, None, None, 0, 0);
    for part in attr.nested() {
        match part.kind {
            CTA_TUPLE_IP => {
                for ip in part.nested() {
                    match (ip.kind, ip.data.len()) {
                        (CTA_IP_V4_SRC, 4) => src = Some(IpAddr::V4(v4(ip.data))),
                        (CTA_IP_V4_DST, 4) => dst = Some(IpAddr::V4(v4(ip.data))),
                        (CTA_IP_V6_SRC, 16) => src = Some(IpAddr::V6(v6(ip.data))),
                        (CTA_IP_V6_DST, 16) => dst = Some(IpAddr::V6(v6(ip.data))),
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for p in part.nested() {
                    match p.kind {
                        CTA_PROTO_NUM => proto = p.data.first().copied(),
                        CTA_PROTO_SRC_PORT => sport = p.be_u16().unwrap_or(0),
                        CTA_PROTO_DST_PORT => dport = p.be_u16().unwrap_or(0),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some(FiveTuple {
        proto: proto?,
        src: src?,
        dst: dst?,
        sport,
        dport,
    })
}

fn v4(d: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(d[0], d[1], d[2], d[3])
}

fn v6(d: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(d);
    Ipv6Addr::from(a)
}

fn parse_counters(attr: &Attr<'_>) -> Counters {
    let mut c = Counters::default();
    for a in attr.nested() {
        match a.kind {
            CTA_COUNTERS_PACKETS => c.packets = a.be_u64().unwrap_or(0),
            CTA_COUNTERS_BYTES => c.bytes = a.be_u64().unwrap_or(0),
            _ => {}
        }
    }
    c
}

/// Is this a ctnetlink entry message (dump reply or event)?
pub fn entry_of<'a>(msg: &netlink::Message<'a>) -> Option<(u16, &'a [u8])> {
    if msg.kind >> 8 != NFNL_SUBSYS_CTNETLINK {
        return None;
    }
    let (_, _, body) = msg.nfgen()?;
    Some((msg.kind & 0xff, body))
}

/// Writes a request to dump the whole conntrack table (all families).
pub fn write_dump_request(buf: &mut Vec<u8>, seq: u32) {
    let w = MessageWriter::nfnl(
        buf,
        (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        0,
        0,
    );
    w.finish();
}

/// Writes a request that changes the mark of the existing connection
/// `orig` (original direction): only the bits in `mask` become `bits`
/// (IPCTNL_MSG_CT_NEW without NLM_F_CREATE updates; CTA_MARK_MASK keeps
/// other users' bits).
pub fn write_mark_request(buf: &mut Vec<u8>, seq: u32, orig: &FiveTuple, bits: u32, mask: u32) {
    let family = match orig.src {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    };
    let mut w = MessageWriter::nfnl(
        buf,
        (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        family,
        0,
    );
    w.begin_nested(CTA_TUPLE_ORIG).begin_nested(CTA_TUPLE_IP);
    match (orig.src, orig.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            w.attr(CTA_IP_V4_SRC, &s.octets())
                .attr(CTA_IP_V4_DST, &d.octets());
        }
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            w.attr(CTA_IP_V6_SRC, &v6(s)).attr(CTA_IP_V6_DST, &v6(d));
        }
    }
    w.end_nested()
        .begin_nested(CTA_TUPLE_PROTO)
        .attr(CTA_PROTO_NUM, &[orig.proto])
        .attr(CTA_PROTO_SRC_PORT, &orig.sport.to_be_bytes())
        .attr(CTA_PROTO_DST_PORT, &orig.dport.to_be_bytes())
        .end_nested()
        .end_nested()
        .attr_be32(CTA_MARK, bits & mask)
        .attr_be32(CTA_MARK_MASK, mask);
    w.finish();
}

/// The ctnetlink sockets, each on its own so the event loop can wait on
/// them side by side: table dumps (streamed, see `Dumper`), destroy events,
/// and mark updates.
pub struct Conntrack {
    pub dumper: Dumper,
    pub events: netlink::Socket,
    pub control: Control,
}

impl Conntrack {
    pub fn open() -> io::Result<Conntrack> {
        let events = netlink::Socket::open(netlink::Protocol::Netfilter, GROUP_DESTROY)?;
        events.tune_for_queue(4 << 20)?;
        Ok(Conntrack {
            dumper: Dumper {
                socket: netlink::Socket::open(netlink::Protocol::Netfilter, 0)?,
                seq: 1000,
                in_progress: None,
                buf: vec![0u8; 64 * 1024],
            },
            events,
            control: Control {
                socket: netlink::Socket::open(netlink::Protocol::Netfilter, 0)?,
                seq: 1,
                buf: vec![0u8; 8 * 1024],
            },
        })
    }
}

/// A table dump read one datagram at a time (`step`), so the caller goes
/// on answering queued packets between datagrams however large the table:
/// a dump never holds the event loop for longer than one datagram's
/// entries (64 KB, a few hundred).
pub struct Dumper {
    socket: netlink::Socket,
    seq: u32,
    in_progress: Option<u32>,
    buf: Vec<u8>,
}

impl Dumper {
    /// Whether a dump is under way.
    pub fn dumping(&self) -> bool {
        self.in_progress.is_some()
    }

    /// Asks the kernel for the whole table (no-op when a dump is already
    /// under way).
    pub fn start(&mut self) -> io::Result<()> {
        if self.in_progress.is_some() {
            return Ok(());
        }
        self.seq = self.seq.wrapping_add(1);
        let mut req = Vec::new();
        write_dump_request(&mut req, self.seq);
        self.socket.send(&req)?;
        self.in_progress = Some(self.seq);
        Ok(())
    }

    /// Waits for the next datagram of the dump under way and returns its
    /// entries, and whether the dump is complete (true, too, when none is
    /// under way); an error ends the dump.
    pub async fn step(&mut self) -> io::Result<(Vec<CtEntry>, bool)> {
        let mut entries = Vec::new();
        let Some(seq) = self.in_progress else {
            return Ok((entries, true));
        };
        let n = match self.socket.recv(&mut self.buf).await {
            Ok(n) => n,
            Err(e) => {
                self.in_progress = None;
                return Err(e);
            }
        };
        for msg in netlink::messages(&self.buf[..n]) {
            if msg.seq != seq {
                continue;
            }
            match msg.kind {
                netlink::NLMSG_DONE => {
                    self.in_progress = None;
                    return Ok((entries, true));
                }
                netlink::NLMSG_ERROR => {
                    self.in_progress = None;
                    let code = msg.error_code().unwrap_or(-libc::EIO);
                    return if code == 0 {
                        Ok((entries, true))
                    } else {
                        Err(io::Error::from_raw_os_error(-code))
                    };
                }
                _ => {
                    if let Some((IPCTNL_MSG_CT_NEW, body)) = entry_of(&msg) {
                        entries.push(parse_entry(body));
                    }
                }
            }
        }
        Ok((entries, false))
    }
}

/// Requests that change the table (a connection's mark).
pub struct Control {
    socket: netlink::Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Control {
    /// Sets the ct mark bits of a live connection (see `write_mark_request`).
    pub async fn set_mark(&mut self, orig: &FiveTuple, bits: u32, mask: u32) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut req = Vec::new();
        write_mark_request(&mut req, self.seq, orig, bits, mask);
        self.socket
            .request(&req, self.seq, &mut self.buf, |_| {})
            .await
    }
}

/// Turns on conntrack accounting in this network namespace.
pub fn enable_accounting() -> io::Result<()> {
    let path = "/proc/sys/net/netfilter/nf_conntrack_acct";
    if std::fs::read_to_string(path)?.trim() != "1" {
        std::fs::write(path, "1")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an entry the way the kernel lays it out.
    fn entry_bytes() -> Vec<u8> {
        let mut buf = Vec::new();
        let mut w = MessageWriter::nfnl(&mut buf, 0x0100, 0, 1, 2, 0);
        w.begin_nested(CTA_TUPLE_ORIG)
            .begin_nested(CTA_TUPLE_IP)
            .attr(CTA_IP_V4_SRC, &[192, 168, 77, 2])
            .attr(CTA_IP_V4_DST, &[203, 0, 113, 10])
            .end_nested()
            .begin_nested(CTA_TUPLE_PROTO)
            .attr(CTA_PROTO_NUM, &[6])
            .attr(CTA_PROTO_SRC_PORT, &40000u16.to_be_bytes())
            .attr(CTA_PROTO_DST_PORT, &443u16.to_be_bytes())
            .end_nested()
            .end_nested()
            .begin_nested(CTA_COUNTERS_ORIG)
            .attr(CTA_COUNTERS_PACKETS, &7u64.to_be_bytes())
            .attr(CTA_COUNTERS_BYTES, &1234u64.to_be_bytes())
            .end_nested()
            .attr_be32(CTA_MARK, 0x1000_0000)
            .attr_be32(CTA_ID, 99);
        w.finish();
        buf
    }

    #[test]
    fn parses_tuple_counters_mark_and_id() {
        let bytes = entry_bytes();
        let msg = netlink::messages(&bytes).next().unwrap();
        let (kind, body) = entry_of(&msg).unwrap();
        assert_eq!(kind, IPCTNL_MSG_CT_NEW);
        let e = parse_entry(body);
        let t = e.orig.unwrap();
        assert_eq!(t.to_string(), "tcp 192.168.77.2:40000 -> 203.0.113.10:443");
        assert_eq!(e.orig_counters.unwrap().bytes, 1234);
        assert_eq!(e.mark, Some(0x1000_0000));
        assert_eq!(e.id, Some(99));
    }

    #[test]
    fn mark_update_names_the_connection_and_only_our_bits() {
        let t = FiveTuple {
            proto: 6,
            src: "192.168.77.2".parse().unwrap(),
            dst: "203.0.113.10".parse().unwrap(),
            sport: 40000,
            dport: 443,
        };
        let mut buf = Vec::new();
        write_mark_request(&mut buf, 7, &t, 0x2000_0000, 0x3000_0000);
        let msg = netlink::messages(&buf).next().unwrap();
        assert_eq!(msg.flags, NLM_F_REQUEST | NLM_F_ACK, "update, never create");
        let (kind, body) = entry_of(&msg).unwrap();
        assert_eq!(kind, IPCTNL_MSG_CT_NEW);
        let e = parse_entry(body);
        assert_eq!(e.orig, Some(t));
        assert_eq!(e.mark, Some(0x2000_0000));
        let mask = netlink::attrs(body)
            .find(|a| a.kind == CTA_MARK_MASK)
            .and_then(|a| a.be_u32());
        assert_eq!(mask, Some(0x3000_0000));
    }

    #[test]
    fn truncated_entries_do_not_panic() {
        let bytes = entry_bytes();
        for cut in 0..bytes.len() {
            let _ = parse_entry(&bytes[20.min(cut)..cut]);
        }
    }
}
