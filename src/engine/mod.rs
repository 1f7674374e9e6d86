//! Engine: the sans-IO heart of the daemon, with a boundary in the shape
//! of quinn-proto's `Connection`. In: packets as its own `Packet` (parsed
//! once; the daemon makes them from queued netlink messages, `analyze`
//! from captured frames), conntrack entries, DNS lease text, neighbour
//! entries and queries. Out: verdicts and rows as return values, and
//! everything else as `Event`s polled with `poll_event` (the neighbour
//! table wanted, decisions for watchers, finished flows for the exporter,
//! owners a device reaches for the first time). Its state is private. It
//! never touches a socket, a file or a clock (the caller passes `now`), so
//! every path is unit-testable with captured bytes.
//!
//! When a connection is decided: at its first packet when every name DNS
//! answers gave its address is blocked, or when it is neither TCP nor QUIC;
//! else it waits for the client's first bytes (TLS ClientHello SNI, HTTP
//! Host, reassembled over a few segments, or a QUIC Initial's SNI) and
//! decides on the name the connection sends itself, which wins over the
//! DNS names (an address is shared by many). Without one it decides with
//! the DNS names (the first that blocks, if any), or after `decide_by`
//! queued packets with what it has (config; then `undecided` applies when
//! no rule does). DNS flows are judged but never marked, so every answer keeps
//! reaching the queue, and an answer whose names the policy blocks for the
//! asking device is sinkholed in line (`sinkhole`).
//!
//! A reload re-judges every live decided connection (`rejudge`): the ones
//! whose verdict changed are returned so the daemon rewrites their ct
//! marks, and the kernel enforces the new verdict from their next packet.

pub mod devices;
pub mod flows;

use std::net::IpAddr;

use crate::engine::devices::DeviceBook;
use crate::engine::flows::{Flow, FlowTable, NameSource};
use crate::inspect::names::{self, NameCache, NameChain, Sniffed};
use crate::owners;
use crate::policy::config::{format_mac, Action, Config, LocalTime, Mac};
use crate::policy::firewall::{MARK_ALLOW, MARK_BLOCK, MARK_REJECT};
use crate::policy::rules::{Decision, FlowFacts, Policy};
use crate::report::stats::{
    DeviceRow, FlowEvent, FlowRow, OwnerRow, Stats, TimeRange, UNKNOWN_OWNER,
};
use crate::wire::conntrack::CtEntry;
use crate::wire::nfqueue::{QueuedPacket, Verdict, HOOK_FORWARD, HOOK_LOCAL_IN, HOOK_LOCAL_OUT};
use crate::wire::packet::{self, FiveTuple, PacketView, PROTO_TCP, PROTO_UDP};

/// A connection with no name yet is decided at its client's n-th segment
/// with data (`option decide_by`): enough for a ClientHello padded to 4 KB
/// or cut into a dozen small segments. Server packets never count.
pub const DECIDE_BY: u32 = 16;

/// Whatever `decide_by` says, a connection is decided by its client's
/// packet number `CLIENT_DEADLINE` (data or not), two before the last one
/// the kernel queues (`firewall::FIRST_PACKETS`): after that the daemon
/// would never see it again, and it would pass unjudged.
pub const CLIENT_DEADLINE: u32 = crate::policy::firewall::FIRST_PACKETS - 2;

/// Time as the engine sees it: monotonic seconds for expiry, Unix seconds
/// for what people read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Now {
    pub mono: u64,
    pub unix: u64,
    /// The router's local time, for rule schedules.
    pub local: LocalTime,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct PacketCounters {
    pub packets: u64,
    pub malformed: u64,
    /// DNS answers rewritten by the sinkhole.
    pub sinkholed: u64,
    /// Connections decided without a name after `decide_by` packets.
    pub gave_up: u64,
    /// Connections decided without a name because reading on would have
    /// passed `max_pending` (the bytes all waiting connections may hold).
    pub pending_overflow: u64,
    /// DNS answers for blocked names that could not be rewritten and were
    /// dropped, and DNS-over-TCP connections refused for one.
    pub dns_refused: u64,
    /// Connections decided without a name, for any reason (none came,
    /// none can come, or `decide_by` was reached): `undecided` applied.
    pub nameless: u64,
}

/// Where a packet was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Forwarded between LAN and WAN (a phone's connection).
    Forward,
    /// To the router itself.
    LocalIn,
    /// From the router itself (its own resolver's answers to the LAN).
    LocalOut,
    Other,
}

/// One packet as the engine takes it: parsed once, with what the kernel
/// (or a capture's reader) knows about it. The daemon makes it from a
/// queued netlink message (`from_queued`), `analyze` from a captured frame.
pub struct Packet<'a> {
    /// The IP packet, header first (a DNS answer is rewritten from it).
    pub ip: &'a [u8],
    /// Its headers, read once.
    pub view: PacketView<'a>,
    pub hook: Hook,
    /// The link-layer source when it came from the LAN (Ethernet).
    pub mac: Option<Mac>,
    /// Its connection's original direction, when conntrack knows it.
    pub conn: Option<FiveTuple>,
}

impl<'a> Packet<'a> {
    /// A forwarded packet with nothing known but its bytes.
    pub fn parse(ip: &'a [u8]) -> Result<Packet<'a>, packet::PacketError> {
        Ok(Packet {
            ip,
            view: packet::parse(ip)?,
            hook: Hook::Forward,
            mac: None,
            conn: None,
        })
    }

    /// The packet of a queued netlink message.
    pub fn from_queued(q: &QueuedPacket<'a>) -> Result<Packet<'a>, packet::PacketError> {
        Ok(Packet {
            hook: match q.hook {
                HOOK_FORWARD => Hook::Forward,
                HOOK_LOCAL_IN => Hook::LocalIn,
                HOOK_LOCAL_OUT => Hook::LocalOut,
                _ => Hook::Other,
            },
            mac: q.hwaddr,
            conn: q.ct.as_ref().and_then(|c| c.orig),
            ..Packet::parse(q.payload)?
        })
    }
}

pub struct Engine {
    policy: Policy,
    names: NameCache,
    devices: DeviceBook,
    flows: FlowTable,
    stats: Stats,
    counters: PacketCounters,
    /// What the I/O around it is to do or hear (`poll_event`), bounded by
    /// `MAX_EVENTS`; `events_dropped` counts overflow.
    events: std::collections::VecDeque<Event>,
    pub events_dropped: u64,
    /// `Event::NeedNeighbours` is out and not yet answered.
    neighbours_wanted: bool,
    dump_gen: u64,
    decide_by: u32,
    max_pending: usize,
    sinkhole: crate::inspect::sinkhole::SinkholeMode,
    /// Finished flows become `Event::FlowFinished` (an IPFIX collector is
    /// configured).
    export: bool,
    /// Decisions become `Event::Decided` (someone runs `phonehome watch`).
    watching: bool,
    /// No log lines on stderr for sinkholed answers and `log` rules
    /// (`phonehome analyze`: its summary counts the sinkholed answers, its
    /// flows carry their rules).
    quiet: bool,
}

/// What the engine asks of the I/O around it, or tells it: polled with
/// `Engine::poll_event` after each call, in the shape of quinn-proto's
/// `Connection::poll`, instead of flags and buffers the daemon reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A packet's device could not be named from its own headers: dump
    /// the kernel neighbour table and hand it to `learn_neighbours`. Not
    /// asked again until then.
    NeedNeighbours,
    /// A connection was decided (while `set_watching(true)`).
    Decided(FlowRow),
    /// A finished connection's record, one per direction (when the config
    /// names an IPFIX collector).
    FlowFinished(crate::report::ipfix::FlowRecord),
    /// A device reached an owner its statistics did not hold yet.
    NewOwner { device: String, owner: String },
}

/// Events held between polls; past it they are dropped and counted.
pub const MAX_EVENTS: usize = 8192;

impl Engine {
    pub fn new(cfg: &Config) -> Engine {
        Engine {
            policy: Policy::from_config(cfg),
            names: NameCache::new(cfg.dns_cache_size),
            devices: DeviceBook::new(),
            flows: FlowTable::new(cfg.max_flows),
            stats: Stats::default(),
            counters: PacketCounters::default(),
            events: std::collections::VecDeque::new(),
            events_dropped: 0,
            neighbours_wanted: false,
            dump_gen: 0,
            decide_by: cfg.decide_by,
            max_pending: cfg.max_pending,
            sinkhole: cfg.sinkhole,
            export: cfg.ipfix_collector.is_some(),
            watching: false,
            quiet: false,
        }
    }

    /// Swaps in a new config; then `rejudge` brings live connections in
    /// line with it.
    pub fn reload(&mut self, cfg: &Config) {
        self.policy = Policy::from_config(cfg);
        self.flows.set_capacity(cfg.max_flows);
        self.decide_by = cfg.decide_by;
        self.max_pending = cfg.max_pending;
        self.sinkhole = cfg.sinkhole;
        self.export = cfg.ipfix_collector.is_some();
    }

    /// Judges every live decided connection again under the current policy.
    /// Returns the ones whose kernel verdict changed, with their new ct
    /// mark bits (allow, block or reject; 0 = none) for the daemon to
    /// write. Statistics keep counting each connection once.
    pub fn rejudge(&mut self, now: Now) -> Vec<(FiveTuple, u32)> {
        let tuples: Vec<FiveTuple> = self
            .flows
            .active()
            .filter(|f| f.decision.is_some())
            .map(|f| f.tuple)
            .collect();
        let mut changed = Vec::new();
        for t in tuples {
            let Some(flow) = self.flows.get_mut(&t) else {
                continue;
            };
            let old = flow.decision.clone();
            let decision = self.decide(&t, now);
            let Some(old) = old else { continue };
            let dns = is_dns(&t);
            if mark_of(&old, dns) != mark_of(&decision, dns) {
                // 0: our bits cleared (an unblocked DNS flow is queued again).
                changed.push((t, mark_of(&decision, dns).unwrap_or(0)));
            }
        }
        changed
    }

    /// Decides one packet.
    pub fn on_packet(&mut self, pkt: &Packet<'_>, now: Now) -> Verdict {
        self.counters.packets += 1;
        let view = &pkt.view;
        let t = view.tuple;

        // DNS answers teach names to the client they are addressed to, and
        // are sinkholed when the policy blocks their names for it. (A
        // blocked DNS flow is dropped in the kernel before the queue.)
        // Only a reply to a query is an answer: conntrack says so, or the
        // query's flow is known (or the router's own resolver sent it). A
        // LAN host sending from port 53, or a forged "answer" nobody asked
        // for, takes the normal path and is judged as a connection.
        let dns_reply = t.sport == 53
            && match pkt.conn {
                Some(o) => o != t,
                None => pkt.hook == Hook::LocalOut || self.flows.contains(&t.reversed()),
            };
        if dns_reply && t.proto == PROTO_UDP {
            // A capture (or daemon) that missed the query still learns
            // what the flow asked from the answer's question.
            self.learn_query(&t.reversed(), view.payload);
            return self.on_dns_datagram(pkt.ip, view.payload, t.dst, now);
        }
        if let (true, PROTO_TCP, Some(tcp)) = (dns_reply, t.proto, view.tcp) {
            return self.on_dns_segment(pkt.ip, view, tcp, now);
        }

        // The original-direction tuple and which way this packet goes.
        let (orig, is_reply) = match pkt.conn {
            Some(o) => (o, o != t),
            None if self.flows.contains(&t) => (t, false),
            None if self.flows.contains(&t.reversed()) => (t.reversed(), true),
            None => (t, false),
        };
        // A packet from the LAN (forwarded, or a DNS query to the router's
        // own resolver) names its sender's MAC: learned before any answer
        // to that address is judged.
        if !is_reply && matches!(pkt.hook, Hook::Forward | Hook::LocalIn) {
            if let Some(mac) = pkt.mac {
                self.devices.observe(orig.src, mac);
            }
        }
        let mac = self.devices.mac_of(&orig.src);
        if mac.is_none() && !self.neighbours_wanted {
            self.neighbours_wanted = true;
            self.emit(Event::NeedNeighbours);
        }
        // What the client's bytes may still add to what all connections
        // waiting for a name hold.
        let room = self.max_pending.saturating_sub(self.flows.pending_bytes());
        // A TCP connection first seen mid-stream (evicted from the table,
        // older than the daemon, or a capture that starts after its SYN):
        // where the client's stream starts is unknown.
        let mid_stream =
            !self.flows.contains(&orig) && view.tcp.is_some_and(|tcp| !tcp.syn || is_reply);

        let flow = self.flows.entry(orig, now.unix);
        flow.last_seen = now.unix;
        flow.queued += 1;
        if !is_reply {
            flow.client_packets += 1;
            if !view.payload.is_empty() {
                flow.client_segments += 1;
            }
        }
        if flow.mac.is_none() {
            if let Some(mac) = mac {
                flow.mac = Some(mac);
                flow.device = format_mac(&mac);
            }
        }
        if flow.query.is_none() && !is_reply && is_dns(&orig) {
            flow.query = dns_query_of(view.payload, orig.proto).map(Into::into);
        }
        if let Some(d) = &flow.decision {
            return verdict_for(d, is_dns(&orig));
        }
        // What DNS says the address is: decided now only when every name
        // it had blocks (nothing the flow could send would let it pass);
        // otherwise the flow's own name (SNI, Host, QUIC) is waited for,
        // and wins. A connection never names itself with a name it did
        // not send: the names are candidates until it sends none.
        let cached = if flow.names.is_none() && flow.pending.dns_candidates.is_empty() {
            self.names.lookup(mac, orig.src, orig.dst, now.mono)
        } else {
            Vec::new()
        };
        if !cached.is_empty() {
            if let Some(blocking) = all_block(&self.policy, flow, &cached, now) {
                flow.names = Some(blocking);
                flow.name_source = Some(NameSource::Dns);
            } else {
                flow.pending.dns_candidates = cached;
            }
        }

        let sniffed = if flow.names.is_some() {
            Sniff::Done
        } else if mid_stream {
            // The client's next data may still be a request or ClientHello
            // (a capture that starts at the SYN-ACK or between requests, a
            // daemon that started while the connection was idle): the first
            // client data seen is read as the stream's start. Waiting is
            // bounded by the client's packets as for any connection.
            flow.pending.joined_mid_stream = true;
            match (is_reply, view.tcp) {
                (false, Some(tcp)) if !view.payload.is_empty() => {
                    sniff_segment(flow, tcp.seq, view.payload, room)
                }
                _ => Sniff::Wait,
            }
        } else {
            match orig.proto {
                PROTO_TCP => match (is_reply, view.payload.is_empty(), view.tcp) {
                    // The client's SYN fixes where its byte stream starts.
                    (false, true, Some(tcp)) if tcp.syn => {
                        flow.pending.next_seq = Some(tcp.seq.wrapping_add(1));
                        Sniff::Wait
                    }
                    // Server speaks first (SSH, SMTP...): no client name
                    // coming, unless it answers a request sent before.
                    (true, false, _) if !flow.pending.joined_mid_stream => Sniff::Done,
                    (false, false, Some(tcp)) => sniff_segment(flow, tcp.seq, view.payload, room),
                    _ => Sniff::Wait,
                },
                // QUIC: the ClientHello is in the client's Initial packets.
                PROTO_UDP if !is_reply && crate::inspect::quic::is_initial(view.payload) => {
                    sniff_quic(flow, view.payload, room)
                }
                _ => Sniff::Done,
            }
        };
        let ready = match sniffed {
            Sniff::Done => true,
            Sniff::Wait => waited_long_enough(flow, self.decide_by),
            Sniff::OverBudget => {
                self.counters.pending_overflow += 1;
                true
            }
        };
        self.flows.recount(&orig);
        if !ready && !self.blocked_whatever_its_name(&orig, now) {
            return Verdict::Accept;
        }
        let decision = self.decide(&orig, now);
        verdict_for(&decision, is_dns(&orig))
    }

    /// A DNS answer over UDP to `client`: its names are learned, and when
    /// the policy blocks them for that device the answer is rewritten, or
    /// dropped when it cannot be (cut at the copy range, IPv6 extension
    /// headers, a message the rewriter cannot walk): a blocked name's real
    /// addresses never pass.
    fn on_dns_datagram(&mut self, packet: &[u8], msg: &[u8], client: IpAddr, now: Now) -> Verdict {
        let Some((name, rule)) = self.judge_dns_answer(msg, client, now) else {
            return Verdict::Accept;
        };
        match crate::inspect::sinkhole::rewrite_packet(packet, self.sinkhole) {
            Some(out) => {
                self.counters.sinkholed += 1;
                self.log_sinkhole("sinkholed", &name, client, &rule);
                Verdict::AcceptPayload { payload: out }
            }
            None => {
                self.counters.dns_refused += 1;
                self.log_sinkhole(
                    "dropped the answer (cannot rewrite it) for",
                    &name,
                    client,
                    &rule,
                );
                Verdict::Drop
            }
        }
    }

    /// Keeps the first question of `msg` as the DNS flow's query, unless it
    /// has one.
    fn learn_query(&mut self, orig: &FiveTuple, msg: &[u8]) {
        if let Some(f) = self.flows.get_mut(orig).filter(|f| f.query.is_none()) {
            f.query = names::query_name(msg).map(Into::into);
        }
    }

    /// A segment of a DNS-over-TCP answer stream (server to `client`). The
    /// stream is followed from the SYN-ACK on, in order: every complete
    /// message is judged like a UDP answer. A blocked message that lies
    /// whole in this segment is rewritten in place (same length, checksum
    /// fixed); one that cannot be (it spans segments, or carries records
    /// other than addresses) gets the connection refused: this segment and
    /// everything after it are dropped, so the client never holds the
    /// message whole. Out-of-order segments are dropped (the server sends
    /// them again in order); retransmissions of bytes already judged pass
    /// unless the stream was rewritten (a retransmission would carry the
    /// original bytes), and a stream whose start was never seen (older
    /// than the daemon) is refused.
    fn on_dns_segment(
        &mut self,
        packet: &[u8],
        view: &packet::PacketView<'_>,
        tcp: packet::TcpInfo,
        now: Now,
    ) -> Verdict {
        let orig = view.tuple.reversed();
        let client = orig.src;
        let payload = view.payload;
        let room = self.max_pending.saturating_sub(self.flows.pending_bytes());
        let flow = self.flows.entry(orig, now.unix);
        flow.last_seen = now.unix;
        flow.queued += 1;
        if let Some(d) = flow.decision.as_ref().filter(|d| d.blocks()) {
            return verdict_for(d, true);
        }
        let s = &mut flow.dns_stream;
        if tcp.syn {
            if !payload.is_empty() {
                // BSD stacks take data on a SYN-ACK: none is let through.
                return self.refuse_dns_stream(
                    &orig,
                    packet,
                    0,
                    client,
                    "data on its SYN-ACK",
                    now,
                );
            }
            // The first SYN-ACK fixes the stream's start; a later one (the
            // client ignores it) must not move it back over bytes held.
            s.next_seq.get_or_insert(tcp.seq.wrapping_add(1));
            return Verdict::Accept;
        }
        if payload.is_empty() {
            return Verdict::Accept;
        }
        let Some(next) = s.next_seq else {
            return self.refuse_dns_stream(&orig, packet, 0, client, "its start was not seen", now);
        };
        let ahead = tcp.seq.wrapping_sub(next) as i32;
        if ahead > 0 {
            return Verdict::Drop;
        }
        let seen = ahead.unsigned_abs() as usize;
        if seen >= payload.len() || (seen > 0 && s.rewrote) {
            return if s.rewrote {
                Verdict::Drop
            } else {
                Verdict::Accept
            };
        }
        if packet::ip_len(packet).is_some_and(|n| n as usize > packet.len()) {
            return self.refuse_dns_stream(
                &orig,
                packet,
                seen,
                client,
                "a segment was cut at the copy range",
                now,
            );
        }
        let held = s.buf.len();
        if payload.len() - seen > room {
            self.counters.pending_overflow += 1;
            return self.refuse_dns_stream(
                &orig,
                packet,
                seen,
                client,
                "it would pass max_pending",
                now,
            );
        }
        s.buf.extend_from_slice(&payload[seen..]);
        s.next_seq = Some(tcp.seq.wrapping_add(payload.len() as u32));
        // The complete messages: (offset of the length prefix in the
        // buffer, message).
        let mut messages: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut at = 0;
        while s.buf.len() >= at + 2 {
            let len = usize::from(u16::from_be_bytes([s.buf[at], s.buf[at + 1]]));
            let Some(msg) = s.buf.get(at + 2..at + 2 + len) else {
                break;
            };
            messages.push((at, msg.to_vec()));
            at += 2 + len;
        }
        s.buf.drain(..at);
        if s.buf.is_empty() {
            s.buf = Vec::new(); // its capacity goes too
        }
        self.flows.recount(&orig);
        let mut rewritten: Option<Vec<u8>> = None;
        for (offset, mut msg) in messages {
            self.learn_query(&orig, &msg);
            let Some((name, rule)) = self.judge_dns_answer(&msg, client, now) else {
                continue;
            };
            // Whole in this segment: the length prefix at or after the
            // bytes held from earlier segments.
            if offset < held || !crate::inspect::sinkhole::rewrite_in_place(&mut msg, self.sinkhole)
            {
                return self.refuse_dns_stream(
                    &orig,
                    packet,
                    seen,
                    client,
                    &format!("it answers {name} ({rule})"),
                    now,
                );
            }
            let start = offset - held + seen + 2;
            rewritten.get_or_insert_with(|| payload.to_vec())[start..start + msg.len()]
                .copy_from_slice(&msg);
            self.counters.sinkholed += 1;
            self.log_sinkhole("sinkholed (DNS over TCP)", &name, client, &rule);
        }
        let Some(new_payload) = rewritten else {
            return Verdict::Accept;
        };
        match crate::inspect::sinkhole::rebuild_tcp_segment(packet, &new_payload) {
            Some(out) => {
                if let Some(f) = self.flows.get_mut(&orig) {
                    f.dns_stream.rewrote = true;
                }
                Verdict::AcceptPayload { payload: out }
            }
            None => self.refuse_dns_stream(
                &orig,
                packet,
                seen,
                client,
                "its segment cannot be rebuilt",
                now,
            ),
        }
    }

    /// Ends a DNS-over-TCP connection whose answers must not reach the
    /// client: this segment reaches it as a TCP reset instead (the client
    /// fails at once, as for a refused connection), and the connection is
    /// marked blocked, so the kernel drops every later packet of it, both
    /// ways (`packet` is the segment; when it cannot be turned into a reset
    /// it is dropped).
    fn refuse_dns_stream(
        &mut self,
        orig: &FiveTuple,
        packet: &[u8],
        seen: usize,
        client: IpAddr,
        why: &str,
        now: Now,
    ) -> Verdict {
        self.counters.dns_refused += 1;
        let decision = Decision {
            action: Action::Block,
            rule: Some("dns-refused".into()),
            logged: Vec::new(),
            enforced: true,
        };
        let mut first = false;
        if let Some(f) = self.flows.get_mut(orig) {
            first = f.decision.is_none();
            f.decision = Some(decision.clone());
            f.dns_stream = Default::default();
            f.last_seen = now.unix;
        }
        if first {
            // Refused before anything else decided it: counted as blocked.
            self.record_decision(orig, now.unix);
        }
        self.flows.recount(orig);
        self.log_sinkhole("refused a DNS-over-TCP connection:", why, client, "-");
        // The reset at the client's next expected byte (`seen` bytes of the
        // segment it has already), else it would answer a challenge ACK.
        match crate::inspect::sinkhole::tcp_reset_instead(packet, seen as u32) {
            Some(reset) => Verdict::AcceptPayload { payload: reset },
            None => verdict_for(&decision, true),
        }
    }

    /// Learns what a DNS message to `client` teaches; when the sinkhole is
    /// on and the policy blocks its names for that device, returns the
    /// name and the rule. Judged on the question and its CNAME chain (so an
    /// HTTPS/SVCB or NODATA answer counts as much as an A answer), and on
    /// every name that leads to an address in it. The question is read even
    /// from a message cut short.
    fn judge_dns_answer(
        &mut self,
        msg: &[u8],
        client: IpAddr,
        now: Now,
    ) -> Option<(String, String)> {
        let answer = names::parse_dns_response(msg);
        let mac = self.devices.mac_of(&client);
        if let Some(a) = &answer {
            self.names
                .learn(names::Asker::new(mac, client), a, now.mono);
        }
        if self.sinkhole == crate::inspect::sinkhole::SinkholeMode::Off {
            return None;
        }
        let question: Option<NameChain> = match &answer {
            Some(a) => a.question.clone(),
            None => names::question_name(msg).map(|q| vec![q].into()),
        };
        if answer.is_none() && self.policy.can_block() {
            // A reply this reader cannot read may still be one a stub
            // resolver reads: it does not pass unjudged.
            let name = question.as_ref().and_then(|q| q.first().cloned());
            return Some((
                name.unwrap_or_else(|| "an unreadable answer".into()),
                "-".into(),
            ));
        }
        let mut chains: Vec<NameChain> = question.into_iter().collect();
        for (_, chain, _) in answer.iter().flat_map(|a| &a.answers) {
            if !chains.contains(chain) {
                chains.push(chain.clone());
            }
        }
        for name in answer.iter().flat_map(|a| &a.other_names) {
            chains.push(vec![name.clone()].into());
        }
        chains.iter().find_map(|chain| {
            let owners = owners::attribute(chain, IpAddr::from([0u8, 0, 0, 0])).owners; // names only
            self.policy
                .decide_name(&FlowFacts {
                    mac,
                    names: chain,
                    owners: &owners,
                    time: now.local,
                    ..Default::default()
                })
                .filter(|d| d.enforced)
                .map(|d| {
                    let name = chain.first().cloned().unwrap_or_default();
                    (name, d.rule.unwrap_or_else(|| "-".into()))
                })
        })
    }

    fn log_sinkhole(&self, what: &str, name: &str, client: IpAddr, rule: &str) {
        if self.quiet {
            return;
        }
        let mac = self.devices.mac_of(&client);
        eprintln!(
            "phonehome: {what} {name} for {} (rule {rule})",
            mac.map_or_else(|| client.to_string(), |m| format_mac(&m)),
        );
    }

    /// Whether the flow `orig`, still waiting for its name, is blocked by a
    /// rule no name could change (a port, protocol, network or device
    /// rule): then it is decided at this packet, and a blocked port's SYN
    /// never leaves.
    fn blocked_whatever_its_name(&mut self, orig: &FiveTuple, now: Now) -> bool {
        if !self.policy.may_block_before_name() {
            return false;
        }
        let Some(flow) = self.flows.get_mut(orig) else {
            return false;
        };
        let a = owners::attribute(&[], flow.tuple.dst);
        self.policy
            .decide_before_name(&flow_facts(flow, &[], &a, now, false))
            .is_some()
    }

    /// Judges the flow `orig` with what is known and records the outcome
    /// (statistics count it the first time only). A flow still without a
    /// name at its `decide_by`-th packet is judged as given up.
    fn decide(&mut self, orig: &FiveTuple, now: Now) -> Decision {
        let Some(flow) = self.flows.get_mut(orig) else {
            return Decision {
                action: Action::Allow,
                rule: None,
                logged: Vec::new(),
                enforced: true,
            };
        };
        if flow.names.is_none() && !flow.pending.dns_candidates.is_empty() {
            // No name of its own: the DNS names, the first that blocks if
            // any does (the address is one a blocked name resolved to).
            let candidates = std::mem::take(&mut flow.pending.dns_candidates);
            let pick = candidates
                .iter()
                .find(|c| verdict_with(&self.policy, flow, c, now).blocks())
                .unwrap_or(&candidates[0])
                .clone();
            flow.names = Some(pick);
            flow.name_source = Some(NameSource::Dns);
        }
        let nameless = flow.names.is_none() && !is_dns(&flow.tuple);
        let gave_up = nameless && waited_long_enough(flow, self.decide_by);
        let chain: &[String] = flow.names.as_deref().unwrap_or(&[]);
        let a = owners::attribute(chain, flow.tuple.dst);
        let (owner, host) = (a.owner, a.host);
        let decision = self
            .policy
            .decide(&flow_facts(flow, chain, &a, now, nameless));
        flow.owner = owner;
        flow.host = host;
        flow.country = a.country;
        flow.pending = Default::default();
        let tuple = flow.tuple;
        self.flows.recount(&tuple);
        let Some(flow) = self.flows.get_mut(&tuple) else {
            return decision;
        };
        let first = flow.decision.is_none();
        flow.decision = Some(decision.clone());
        if !first {
            // Re-judged after a reload: logged and counted when first decided.
            return decision;
        }
        if gave_up {
            self.counters.gave_up += 1;
        }
        if nameless {
            self.counters.nameless += 1;
        }
        self.record_decision(&tuple, now.unix);
        decision
    }

    /// A connection's first decision: its `log` rule lines, its `watch`
    /// row and its statistics.
    fn record_decision(&mut self, tuple: &FiveTuple, unix: u64) {
        let Some(flow) = self.flows.get_mut(tuple) else {
            return;
        };
        let Some(decision) = flow.decision.as_ref() else {
            return;
        };
        for rule in decision.logged.iter().filter(|_| !self.quiet) {
            eprintln!(
                "phonehome: log rule '{rule}': {} {} ({})",
                flow.device,
                flow.tuple,
                flow.domain().unwrap_or("no name")
            );
        }
        let watched = self.watching.then(|| flow_row(flow, true));
        let owner = flow.owner;
        let mac_str = flow.mac.map(|m| format_mac(&m));
        let new_pair = self.stats.on_decided(
            &FlowEvent {
                device: &flow.device,
                mac: mac_str.as_deref(),
                ip: flow.tuple.src.to_string(),
                owner: owner.map_or(UNKNOWN_OWNER, |o| o.name),
                category: owner.map_or(UNKNOWN_OWNER, |o| o.category.as_str()),
                domain: flow.domain(),
                country: flow
                    .country
                    .as_ref()
                    .and_then(|c| std::str::from_utf8(c).ok()),
                blocked: decision.blocks(),
            },
            unix,
        );
        let new_owner = new_pair.then(|| Event::NewOwner {
            device: flow.device.clone(),
            owner: owner.map_or(UNKNOWN_OWNER, |o| o.name).to_string(),
        });
        if let Some(row) = watched {
            self.emit(Event::Decided(row));
        }
        if let Some(event) = new_owner {
            self.emit(event);
        }
    }

    /// Folds a conntrack entry (from a dump) into the flow's byte counts.
    pub fn on_ct_entry(&mut self, entry: &CtEntry, now: Now) {
        let Some(orig) = entry.orig else { return };
        let gen = self.dump_gen;
        let Some(flow) = self.flows.get_mut(&orig) else {
            return;
        };
        flow.seen_gen = gen;
        self.account(&orig, entry, now);
    }

    /// A connection ended: final counts, then the flow leaves the table.
    pub fn on_ct_destroy(&mut self, entry: &CtEntry, now: Now) {
        let Some(orig) = entry.orig else { return };
        if !self.flows.contains(&orig) {
            return;
        }
        self.account(&orig, entry, now);
        self.finish(&orig, now);
    }

    fn account(&mut self, orig: &FiveTuple, entry: &CtEntry, now: Now) {
        let Some(flow) = self.flows.get_mut(orig) else {
            return;
        };
        let up = entry.orig_counters.unwrap_or(flow.up);
        let down = entry.reply_counters.unwrap_or(flow.down);
        if up.bytes > flow.up.bytes || down.bytes > flow.down.bytes {
            flow.last_seen = now.unix;
        }
        flow.up = up;
        flow.down = down;
        self.fold_bytes(orig, now.unix);
    }

    /// Adds the flow's bytes not yet counted to the statistics, at time
    /// `unix`, once the flow is decided (until then they wait, so the
    /// first bytes of a connection land on its owner too).
    pub fn fold_bytes(&mut self, orig: &FiveTuple, unix: u64) {
        let Some(flow) = self.flows.get_mut(orig) else {
            return;
        };
        if flow.decision.is_none() {
            return;
        }
        let d_up = flow.up.bytes.saturating_sub(flow.counted_up);
        let d_down = flow.down.bytes.saturating_sub(flow.counted_down);
        if d_up == 0 && d_down == 0 {
            return;
        }
        flow.counted_up = flow.up.bytes;
        flow.counted_down = flow.down.bytes;
        let owner = flow.owner.map_or(UNKNOWN_OWNER, |o| o.name);
        self.stats
            .add_bytes(&flow.device, owner, d_up, d_down, unix);
    }

    fn finish(&mut self, orig: &FiveTuple, now: Now) {
        let Some(flow) = self.flows.get_mut(orig) else {
            return;
        };
        if flow.decision.is_none() {
            // It ended (or escaped the queue) before a name appeared.
            self.decide(orig, now);
        }
        let last_seen = self.flows.get_mut(orig).map_or(now.unix, |f| f.last_seen);
        self.fold_bytes(orig, last_seen);
        if self.export {
            if let Some(f) = self.flows.get_mut(orig) {
                for record in export_records(f) {
                    self.emit(Event::FlowFinished(record));
                }
            }
        }
        self.flows.finish(orig);
    }

    /// Ends a flow whose connection is over (a capture's flow after its
    /// FIN/RST or idle timeout): judged if it was not yet, its last bytes
    /// counted, and it moves to the recent ones. Returns its final row.
    pub fn end_flow(&mut self, orig: &FiveTuple, now: Now) -> Option<FlowRow> {
        self.finish(orig, now);
        self.flows
            .recent()
            .last()
            .filter(|f| f.tuple == *orig)
            .map(|f| flow_row(f, false))
    }

    /// The statistics and the decided connections, for the state file.
    pub fn snapshot(&self) -> crate::report::stats::Snapshot {
        let mut s = self.stats.snapshot();
        s.live = self.flows.active().filter_map(Flow::to_live).collect();
        s
    }

    /// Takes back a saved state: the statistics, and the connections that
    /// were alive, decided as they were (their ct marks are still in the
    /// kernel), with the bytes already counted, so the next dumps add only
    /// what came since. Connections that ended meanwhile are finished by
    /// the first dump that does not list them.
    pub fn restore(&mut self, snapshot: crate::report::stats::Snapshot, now: Now) {
        let live = snapshot.live.clone();
        self.stats = Stats::restore(snapshot);
        for l in live {
            let Some(action) = crate::policy::config::parse_action_name(&l.action) else {
                continue;
            };
            let names: Option<NameChain> = (!l.names.is_empty()).then(|| l.names.clone().into());
            let a = owners::attribute(names.as_deref().unwrap_or(&[]), l.tuple.dst);
            let flow = self.flows.entry(l.tuple, now.unix);
            flow.mac = l.mac;
            flow.device = l.device;
            flow.names = names;
            flow.name_source = l.name_source.as_deref().and_then(NameSource::parse);
            flow.owner = a.owner;
            flow.host = a.host;
            flow.country = a.country;
            flow.decision = Some(Decision {
                action,
                rule: l.rule,
                logged: Vec::new(),
                enforced: l.enforced,
            });
            flow.counted_up = l.counted_up;
            flow.counted_down = l.counted_down;
            flow.up.bytes = l.counted_up;
            flow.down.bytes = l.counted_down;
            // Saved times from a clock later than now (a router without a
            // real-time clock boots at its build date) would keep the flow
            // from ever looking stale.
            flow.first_seen = l.first_seen.min(now.unix);
            flow.last_seen = now.unix;
        }
    }

    /// Starts a conntrack dump generation (call before feeding entries).
    pub fn begin_dump(&mut self) {
        self.dump_gen += 1;
    }

    /// After a complete dump: flows whose connection vanished are finished.
    pub fn end_dump(&mut self, now: Now) {
        for t in self.flows.stale(self.dump_gen, now.unix, 5) {
            self.finish(&t, now);
        }
    }

    fn hostname(&self, device: &str) -> Option<String> {
        let mac = crate::policy::config::parse_mac(device)?;
        self.policy
            .device_name(&mac)
            .or_else(|| self.devices.hostname(&mac))
            .map(str::to_string)
    }

    pub fn device_rows(&self, filter: Option<&str>, range: TimeRange, now: Now) -> Vec<DeviceRow> {
        self.stats
            .device_rows(filter, range, now.unix, &|d| self.hostname(d))
    }

    pub fn owner_rows(&self, filter: Option<&str>, range: TimeRange, now: Now) -> Vec<OwnerRow> {
        self.stats.owner_rows(filter, range, now.unix)
    }

    pub fn flow_rows(&self, filter: Option<&str>) -> Vec<FlowRow> {
        let mut rows: Vec<FlowRow> = self
            .flows
            .recent()
            .map(|f| flow_row(f, false))
            .chain(self.flows.active().map(|f| flow_row(f, true)))
            .filter(|r| filter.is_none_or(|d| d.eq_ignore_ascii_case(&r.device)))
            .collect();
        rows.sort_by_key(|r| (r.first_seen, r.last_seen));
        rows
    }

    /// Learns the MAC behind an address from outside (neighbour table).
    pub fn learn_neighbours(&mut self, entries: Vec<(IpAddr, Mac)>) {
        self.devices.learn_neighbours(entries);
        self.neighbours_wanted = false;
    }

    /// Learns hostnames (and addresses) from a dnsmasq lease file's text,
    /// which the daemon reads when the file changes.
    pub fn learn_leases(&mut self, text: &str) {
        self.devices.learn_leases(text);
    }

    /// The daemon's path: a queued netlink message as a `Packet`, or an
    /// unreadable one (`on_unreadable`).
    pub fn on_queued(&mut self, queued: &QueuedPacket<'_>, now: Now) -> Verdict {
        match Packet::from_queued(queued) {
            Ok(pkt) => self.on_packet(&pkt, now),
            Err(_) => self.on_unreadable(),
        }
    }

    /// A queued packet that does not parse as IP/TCP/UDP/ICMP: counted,
    /// and accepted unmarked (the kernel path keeps working).
    pub fn on_unreadable(&mut self) -> Verdict {
        self.counters.packets += 1;
        self.counters.malformed += 1;
        Verdict::Accept
    }

    /// What the engine counted of the packets it was given.
    pub fn counters(&self) -> &PacketCounters {
        &self.counters
    }

    /// The rules it judges by.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Connections in the flow table.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Connections pushed out of a full flow table.
    pub fn flows_evicted(&self) -> u64 {
        self.flows.evicted
    }

    /// Bytes held by connections waiting for a name.
    pub fn pending_bytes(&self) -> usize {
        self.flows.pending_bytes()
    }

    /// Names learned from DNS answers and held.
    pub fn dns_name_count(&self) -> usize {
        self.names.len()
    }

    /// Devices in the statistics.
    pub fn device_count(&self) -> usize {
        self.stats.device_count()
    }

    /// Drops history older than the statistics keep.
    pub fn expire_history(&mut self, unix: u64) {
        self.stats.expire(unix);
    }

    /// The link layer says `ip` is `mac` (a capture's frame, where the
    /// phone is the receiver of its server's packets).
    pub fn observe_device(&mut self, ip: IpAddr, mac: Mac) {
        if self.devices.mac_of(&ip) != Some(mac) {
            self.devices.observe(ip, mac);
        }
    }

    pub fn has_flow(&self, orig: &FiveTuple) -> bool {
        self.flows.contains(orig)
    }

    /// Whether the connection is decided, and when it was last seen.
    pub fn flow_activity(&self, orig: &FiveTuple) -> Option<(bool, u64)> {
        self.flows
            .get(orig)
            .map(|f| (f.decision.is_some(), f.last_seen))
    }

    /// The connections still open, with when each was last seen.
    pub fn active_flows(&self) -> Vec<(FiveTuple, u64)> {
        self.flows
            .active()
            .map(|f| (f.tuple, f.last_seen))
            .collect()
    }

    /// Counts a captured packet of `len` bytes on its connection (offline,
    /// where conntrack's accounting is not there). False when the engine
    /// holds no such connection.
    pub fn count_captured(
        &mut self,
        orig: &FiveTuple,
        is_reply: bool,
        len: u64,
        unix: u64,
    ) -> bool {
        let Some(flow) = self.flows.get_mut(orig) else {
            return false;
        };
        let counters = if is_reply {
            &mut flow.down
        } else {
            &mut flow.up
        };
        counters.packets += 1;
        counters.bytes += len;
        flow.last_seen = flow.last_seen.max(unix);
        true
    }

    /// The next thing the I/O around the engine is to do or hear.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether decisions become `Event::Decided` (someone is watching).
    pub fn set_watching(&mut self, watching: bool) {
        self.watching = watching;
    }

    /// No log lines for sinkholed answers and `log` rules.
    pub fn set_quiet(&mut self, quiet: bool) {
        self.quiet = quiet;
    }

    fn emit(&mut self, event: Event) {
        if self.events.len() >= MAX_EVENTS {
            self.events_dropped += 1;
        } else {
            self.events.push_back(event);
        }
    }
}

/// The first question of a DNS query a client sent: the UDP payload, or a
/// TCP segment starting with the message's length prefix.
fn dns_query_of(payload: &[u8], proto: u8) -> Option<String> {
    let msg = if proto == PROTO_TCP {
        payload.get(2..)?
    } else {
        payload
    };
    names::query_name(msg)
}

fn is_dns(t: &FiveTuple) -> bool {
    t.dport == 53 && (t.proto == PROTO_UDP || t.proto == PROTO_TCP)
}

/// The verdict a decision gives. DNS flows are never marked "allow", so
/// their answers keep coming through the queue.
fn verdict_for(d: &Decision, dns: bool) -> Verdict {
    if d.blocks() && d.enforced {
        match d.action {
            Action::Reject => Verdict::RejectMark { bits: MARK_REJECT },
            _ => Verdict::DropMark { bits: MARK_BLOCK },
        }
    } else if dns {
        Verdict::Accept
    } else {
        Verdict::AcceptMark { bits: MARK_ALLOW }
    }
}

/// A flow as the API shows it.
fn flow_row(f: &Flow, active: bool) -> FlowRow {
    FlowRow {
        device: f.device.clone(),
        proto: packet::proto_name(f.tuple.proto).to_string(),
        src: f.tuple.src.to_string(),
        sport: f.tuple.sport,
        dst: f.tuple.dst.to_string(),
        dport: f.tuple.dport,
        domain: f.domain().map(str::to_string),
        name_source: f.name_source.map(|s| s.as_str().to_string()),
        owner: f.owner.map_or(UNKNOWN_OWNER, |o| o.name).to_string(),
        parent: f
            .owner
            .and_then(|o| owners::parent_of(o.name))
            .map(str::to_string),
        host: f.host.map(str::to_string),
        country: f.country.map(|c| String::from_utf8_lossy(&c).into_owned()),
        query: f.query.as_deref().map(str::to_string),
        category: f
            .owner
            .map_or(UNKNOWN_OWNER, |o| o.category.as_str())
            .to_string(),
        verdict: match &f.decision {
            Some(d) if d.blocks() => d.action.as_str(),
            Some(_) => "allow",
            None => "pending",
        }
        .to_string(),
        rule: f.decision.as_ref().and_then(|d| d.rule.clone()),
        enforced: f.decision.as_ref().is_none_or(|d| d.enforced),
        active,
        bytes_up: f.up.bytes,
        bytes_down: f.down.bytes,
        first_seen: f.first_seen,
        last_seen: f.last_seen,
    }
}

/// A finished flow as two IPFIX records (client → server, server → client).
fn export_records(f: &Flow) -> [crate::report::ipfix::FlowRecord; 2] {
    let t = f.tuple;
    let owner = f.owner.map_or(UNKNOWN_OWNER, |o| o.name).to_string();
    let category = f
        .owner
        .map_or(UNKNOWN_OWNER, |o| o.category.as_str())
        .to_string();
    let domain = f.domain().unwrap_or("").to_string();
    let parent = f
        .owner
        .and_then(|o| owners::parent_of(o.name))
        .unwrap_or("")
        .to_string();
    let up = crate::report::ipfix::FlowRecord {
        src: t.src,
        dst: t.dst,
        sport: t.sport,
        dport: t.dport,
        proto: t.proto,
        mac: f.mac,
        from_device: true,
        packets: f.up.packets,
        octets: f.up.bytes,
        start_ms: f.first_seen * 1000,
        end_ms: f.last_seen * 1000,
        owner,
        category,
        domain,
        parent,
    };
    let down = crate::report::ipfix::FlowRecord {
        src: t.dst,
        dst: t.src,
        sport: t.dport,
        dport: t.sport,
        from_device: false,
        packets: f.down.packets,
        octets: f.down.bytes,
        ..up.clone()
    };
    [up, down]
}

/// The ct mark bits a decision leaves on its connection (None: unmarked,
/// as DNS flows that are allowed stay).
fn mark_of(d: &Decision, dns: bool) -> Option<u32> {
    match verdict_for(d, dns) {
        Verdict::AcceptMark { bits }
        | Verdict::DropMark { bits }
        | Verdict::RejectMark { bits } => Some(bits),
        _ => None,
    }
}

/// Whether a connection still without a name has waited for one as long
/// as it may: its client's `decide_by`-th data segment, or its
/// `CLIENT_DEADLINE`-th packet of any kind.
/// What the policy is told of `flow` when it is judged with `names` and
/// their attribution `a`.
fn flow_facts<'a>(
    flow: &Flow,
    names: &'a [String],
    a: &'a owners::Attribution,
    now: Now,
    nameless: bool,
) -> FlowFacts<'a> {
    FlowFacts {
        mac: flow.mac,
        names,
        owners: &a.owners,
        asn: a.asn,
        country: a.country,
        proto: flow.tuple.proto,
        dport: flow.tuple.dport,
        time: now.local,
        dns: is_dns(&flow.tuple),
        nameless,
    }
}

/// The policy's decision for `flow` were it named `chain`.
fn verdict_with(policy: &Policy, flow: &Flow, chain: &[String], now: Now) -> Decision {
    let a = owners::attribute(chain, flow.tuple.dst);
    policy.decide(&flow_facts(flow, chain, &a, now, false))
}

/// The first of `candidates` when every one of them is blocked (by the
/// same action), else None.
fn all_block(
    policy: &Policy,
    flow: &Flow,
    candidates: &[NameChain],
    now: Now,
) -> Option<NameChain> {
    let mut action = None;
    for chain in candidates {
        let d = verdict_with(policy, flow, chain, now);
        if !d.blocks() || action.is_some_and(|a| a != d.action) {
            return None;
        }
        action = Some(d.action);
    }
    candidates.first().cloned()
}

fn waited_long_enough(flow: &Flow, decide_by: u32) -> bool {
    flow.client_segments >= decide_by || flow.client_packets >= CLIENT_DEADLINE
}

/// Where sniffing a connection's first bytes stands.
enum Sniff {
    /// A name was found, or none is coming: decide now.
    Done,
    /// The name may be in bytes still to come.
    Wait,
    /// Reading on would take more than the connections waiting for a name
    /// may hold together (`option max_pending`): decide now, without it.
    OverBudget,
}

/// Adds a QUIC client Initial's CRYPTO data to the flow (when `room`
/// allows) and says whether the flow can be decided now.
fn sniff_quic(flow: &mut Flow, payload: &[u8], room: usize) -> Sniff {
    if payload.len() > room {
        return Sniff::OverBudget;
    }
    let pieces = &mut flow.pending.crypto;
    if crate::inspect::quic::read_initial(payload, pieces).is_none() {
        return Sniff::Done; // not an Initial we can open: judge with what is known
    }
    match crate::inspect::quic::sni(pieces) {
        Sniffed::Name(name) => {
            flow.name_source = Some(NameSource::Quic);
            flow.names = Some(vec![name].into());
            Sniff::Done
        }
        Sniffed::NeedMore => Sniff::Wait,
        Sniffed::NoName | Sniffed::Unknown => Sniff::Done,
    }
}

/// Adds an in-order client segment to the flow's hello buffer (when `room`
/// allows) and says whether the flow can be decided now. The stream starts
/// where the SYN said; segments before or after the next expected byte
/// (retransmissions, reordering, or bytes the server would not take) are
/// not read.
fn sniff_segment(flow: &mut Flow, mut seq: u32, payload: &[u8], room: usize) -> Sniff {
    let p = &mut flow.pending;
    let mut payload = payload;
    if let Some(next) = p.next_seq.filter(|next| *next != seq) {
        // A segment that starts before the next expected byte and goes
        // past it (a client that sent a byte or two, then all of it again)
        // adds its new bytes, as the server's TCP takes them; one entirely
        // behind or ahead adds nothing.
        let behind = next.wrapping_sub(seq);
        if behind > i32::MAX as u32 || behind as usize >= payload.len() {
            return Sniff::Wait;
        }
        payload = &payload[behind as usize..];
        seq = next;
    }
    if payload.len() > room {
        return Sniff::OverBudget;
    }
    let take = payload.len().min(names::MAX_HELLO - p.hello.len());
    p.hello.reserve_exact(take);
    p.hello.extend_from_slice(&payload[..take]);
    p.next_seq = Some(seq.wrapping_add(payload.len() as u32));
    match names::sniff_client_hello(&p.hello) {
        Sniffed::Name(name) => {
            flow.name_source = Some(if p.hello[0] == 0x16 {
                NameSource::Sni
            } else {
                NameSource::Http
            });
            flow.names = Some(vec![name].into());
            Sniff::Done
        }
        Sniffed::NeedMore if p.hello.len() >= names::MAX_HELLO => Sniff::Done,
        Sniffed::NeedMore => Sniff::Wait,
        Sniffed::NoName | Sniffed::Unknown => Sniff::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::conntrack::Counters;
    use etherparse::PacketBuilder;

    const NOW: Now = Now {
        mono: 10,
        unix: 1_795_651_200,
        local: LocalTime {
            minute_of_day: 0,
            weekday: 0,
        },
    };

    fn tcp(seq: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv4([192, 168, 77, 2], [203, 0, 113, 20], 64)
            .tcp(40000, 80, seq, 64240);
        let b = if syn { b.syn() } else { b.ack(1) };
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    fn queue(engine: &mut Engine, bytes: &[u8]) -> Verdict {
        engine.on_packet(
            &Packet::from_queued(&QueuedPacket {
                hw_protocol: 0x0800,
                hook: HOOK_FORWARD,
                hwaddr: Some([2, 0, 0, 0, 0x77, 2]),
                payload: bytes,
                ..Default::default()
            })
            .expect("an IP packet"),
            NOW,
        )
    }

    fn entry(up: u64, down: u64) -> CtEntry {
        let orig = packet::parse(&tcp(0, true, &[])).unwrap().tuple;
        CtEntry {
            orig: Some(orig),
            orig_counters: Some(Counters {
                packets: 1,
                bytes: up,
            }),
            reply_counters: Some(Counters {
                packets: 1,
                bytes: down,
            }),
            ..Default::default()
        }
    }

    fn engine(cfg: &str) -> Engine {
        Engine::new(&Config::parse(cfg, std::path::Path::new("t.conf")).unwrap())
    }

    /// `undecided 'block'` holds for every way a connection can end up
    /// without a name, not only for the `decide_by` give-up: TLS without
    /// SNI, HTTP/1.0 without Host, bytes of no known protocol, a server
    /// that speaks first, a connection that ends before any data.
    #[test]
    fn every_nameless_connection_gets_the_undecided_policy() {
        let hello_without_sni = {
            // The real curl ClientHello with its server_name extension
            // renamed to an unknown type (0xfafa): complete, but no SNI.
            let mut h = names::tests_support::CURL_HELLO.to_vec();
            let at = names::tests_support::sni_extension_offset(&h).unwrap();
            h[at] = 0xfa;
            h[at + 1] = 0xfa;
            assert_eq!(names::sniff_client_hello(&h), Sniffed::NoName);
            h
        };
        let first_bytes: [&[u8]; 3] = [
            &hello_without_sni,
            b"GET / HTTP/1.0\r\nUser-Agent: x\r\n\r\n",
            b"\x00\x01\x02 custom binary protocol",
        ];
        for bytes in first_bytes {
            let mut e = engine("config phonehome\n\toption undecided block\n");
            assert_eq!(queue(&mut e, &tcp(0, true, &[])), Verdict::Accept);
            assert_eq!(
                queue(&mut e, &tcp(1, false, bytes)),
                Verdict::DropMark { bits: MARK_BLOCK },
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!((e.counters.nameless, e.counters.gave_up), (1, 0));
            let rows = e.flow_rows(None);
            assert_eq!(rows[0].rule.as_deref(), Some("undecided"));
            // And open by default.
            let mut e = engine("");
            queue(&mut e, &tcp(0, true, &[]));
            assert_eq!(
                queue(&mut e, &tcp(1, false, bytes)),
                Verdict::AcceptMark { bits: MARK_ALLOW }
            );
            assert_eq!(e.counters.nameless, 1);
        }
        // A connection that ends before it sent anything is counted too.
        let mut e = engine("config phonehome\n\toption undecided block\n");
        queue(&mut e, &tcp(0, true, &[]));
        e.on_ct_destroy(&entry(60, 60), NOW);
        assert_eq!(e.counters.nameless, 1);
        assert_eq!(e.flow_rows(None)[0].verdict, "block");
    }

    /// What is counted for a connection: one that ends undecided (decided
    /// as it finishes, its bytes with it) and one decided by its request,
    /// each counted once.
    #[test]
    fn each_connection_is_counted_once_with_its_bytes() {
        let count = |e: &Engine| {
            e.device_rows(None, TimeRange::default(), NOW)
                .first()
                .map(|d| (d.flows, d.blocked, d.bytes_up, d.bytes_down))
        };
        let mut e = engine("config phonehome\n\toption undecided block\n");
        queue(&mut e, &tcp(0, true, &[]));
        e.on_ct_destroy(&entry(60, 70), NOW);
        assert_eq!(count(&e), Some((1, 1, 60, 70)));

        let request = b"GET / HTTP/1.1\r\nHost: tracking.miui.com\r\n\r\n";
        let mut e = engine("config rule\n\toption owner 'Xiaomi'\n\toption action block\n");
        queue(&mut e, &tcp(0, true, &[]));
        queue(&mut e, &tcp(1, false, request));
        assert_eq!(count(&e), Some((1, 1, 0, 0)));
        e.on_ct_destroy(&entry(60, 70), NOW);
        assert_eq!(count(&e), Some((1, 1, 60, 70)));
    }

    fn events(e: &mut Engine) -> Vec<Event> {
        std::iter::from_fn(|| e.poll_event()).collect()
    }

    /// What the engine has for the I/O around it comes as events: the
    /// first owner a device reaches, decisions only while someone watches,
    /// finished flows only for a configured exporter (both directions),
    /// and the neighbour table asked for once until it is given.
    #[test]
    fn outputs_are_polled_as_events() {
        let request = b"GET / HTTP/1.1\r\nHost: tracking.miui.com\r\n\r\n";
        let mut e = engine("config rule\n\toption owner 'Xiaomi'\n\toption action block\n");
        queue(&mut e, &tcp(0, true, &[]));
        queue(&mut e, &tcp(1, false, request));
        let new_owner = Event::NewOwner {
            device: "02:00:00:00:77:02".into(),
            owner: "Xiaomi".into(),
        };
        assert_eq!(events(&mut e), vec![new_owner.clone()]);
        e.on_ct_destroy(&entry(60, 70), NOW);
        assert_eq!(events(&mut e), vec![], "no exporter configured");

        let mut e = engine(
            "config phonehome\n\toption ipfix_collector '127.0.0.1:4739'\n\
             config rule\n\toption owner 'Xiaomi'\n\toption action block\n",
        );
        e.set_watching(true);
        queue(&mut e, &tcp(0, true, &[]));
        queue(&mut e, &tcp(1, false, request));
        let got = events(&mut e);
        assert!(
            matches!(&got[..], [Event::Decided(row), n] if row.owner == "Xiaomi" && *n == new_owner),
            "{got:?}"
        );
        e.on_ct_destroy(&entry(60, 70), NOW);
        let got = events(&mut e);
        assert!(
            matches!(&got[..], [Event::FlowFinished(_), Event::FlowFinished(_)]),
            "{got:?}"
        );

        // A packet without its link-layer source: the neighbour table is
        // wanted, once, until it comes.
        let mut e = engine("");
        let bare = |e: &mut Engine, seq| {
            e.on_packet(
                &Packet::from_queued(&QueuedPacket {
                    hw_protocol: 0x0800,
                    hook: HOOK_FORWARD,
                    payload: &tcp(seq, true, &[]),
                    ..Default::default()
                })
                .expect("an IP packet"),
                NOW,
            )
        };
        bare(&mut e, 0);
        bare(&mut e, 7);
        let got = events(&mut e);
        assert_eq!(
            got.iter().filter(|x| **x == Event::NeedNeighbours).count(),
            1,
            "{got:?}"
        );
        e.learn_neighbours(vec![]);
        bare(&mut e, 9);
        assert!(events(&mut e).contains(&Event::NeedNeighbours));
    }

    /// A rule no name could change (port, protocol, device) stops a
    /// connection at its SYN: a blocked port's server never sees the
    /// phone's handshake. One a name could still change waits for it.
    #[test]
    fn a_rule_no_name_can_change_stops_the_first_syn() {
        let syn_to = |port: u16| {
            let mut out = Vec::new();
            PacketBuilder::ipv4([192, 168, 77, 2], [203, 0, 113, 20], 64)
                .tcp(40000, port, 0, 64240)
                .syn()
                .write(&mut out, &[])
                .unwrap();
            out
        };
        let reject = Verdict::RejectMark { bits: MARK_REJECT };
        let block = Verdict::DropMark { bits: MARK_BLOCK };
        let dot = "config phonehome\n\toption block_dot 1\n";
        let cases = [
            (dot.to_string(), 853, reject.clone()),
            (dot.to_string(), 443, Verdict::Accept),
            (
                "config rule\n\toption device '02:00:00:00:77:02'\n\tlist port 8000-8100\n\toption action block\n".into(),
                8080,
                block,
            ),
            // Another device's rule, and observe mode: the SYN passes.
            (
                "config rule\n\toption device '02:00:00:00:77:09'\n\tlist port 8080\n\toption action block\n".into(),
                8080,
                Verdict::Accept,
            ),
            (format!("{dot}\toption mode observe\n"), 853, Verdict::Accept),
            // A domain rule that would allow comes first: its name decides.
            (
                "config rule\n\tlist domain example.org\n\toption action allow\n\
                 config rule\n\tlist port 853\n\toption action reject\n"
                    .into(),
                853,
                Verdict::Accept,
            ),
            // A name-free log rule first is noted and passed over.
            (
                "config rule 'seen'\n\tlist port 853\n\toption action log\n\
                 config rule\n\tlist port 853\n\toption action reject\n"
                    .into(),
                853,
                reject,
            ),
        ];
        for (cfg, port, want) in cases {
            let mut e = engine(&cfg);
            assert_eq!(queue(&mut e, &syn_to(port)), want, "{cfg} port {port}");
        }
    }

    /// A segment of the connection from client port `sport` to
    /// 203.0.113.10:443, or back (`reply`).
    fn seg(sport: u16, seq: u32, syn: bool, reply: bool, payload: &[u8]) -> Vec<u8> {
        let (c, srv) = ([192, 168, 77, 2], [203, 0, 113, 10]);
        let b = if reply {
            PacketBuilder::ipv4(srv, c, 64).tcp(443, sport, seq, 64240)
        } else {
            PacketBuilder::ipv4(c, srv, 64).tcp(sport, 443, seq, 64240)
        };
        let b = if syn { b.syn() } else { b.ack(1) };
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    /// The real curl ClientHello with a padding extension of `pad` bytes
    /// put before its SNI, lengths fixed (one TLS record).
    fn padded_hello(pad: usize) -> Vec<u8> {
        let h = names::tests_support::CURL_HELLO;
        let at = names::tests_support::sni_extension_offset(h).unwrap();
        let mut out = h[..at].to_vec();
        out.extend([0x00, 0x15]);
        out.extend((pad as u16).to_be_bytes());
        out.extend(std::iter::repeat_n(0u8, pad));
        out.extend(&h[at..]);
        let grow = |v: &mut [u8], i: usize| {
            let n = u16::from_be_bytes([v[i], v[i + 1]]) as usize + pad + 4;
            v[i..i + 2].copy_from_slice(&(n as u16).to_be_bytes());
        };
        grow(&mut out, 3); // record length
        let hs = u32::from_be_bytes([0, out[6], out[7], out[8]]) as usize + pad + 4;
        out[6..9].copy_from_slice(&(hs as u32).to_be_bytes()[1..]);
        // extensions length: after version, random, session id, suites, compression
        let mut e = 9 + 2 + 32;
        e += 1 + out[e] as usize;
        e += 2 + u16::from_be_bytes([out[e], out[e + 1]]) as usize;
        e += 1 + out[e] as usize;
        grow(&mut out, e);
        out
    }

    /// Names late in the stream: a ClientHello padded to 4 KB over three
    /// segments, and one cut into twelve small segments with the server's
    /// ACK after each (they once counted toward `decide_by`).
    #[test]
    fn names_late_in_the_client_stream_are_read() {
        let cfg = "config rule 'x'\n\tlist owner 'Xiaomi'\n\toption action 'block'\n";
        let padded = padded_hello(4000);
        assert_eq!(
            names::sniff_client_hello(&padded),
            Sniffed::Name("api.ad.xiaomi.com".into())
        );
        for (hello, pieces) in [(padded.clone(), 3), (padded_hello(700), 12)] {
            let mut e = engine(cfg);
            assert_eq!(
                queue(&mut e, &seg(41000, 0, true, false, &[])),
                Verdict::Accept
            );
            let step = hello.len().div_ceil(pieces);
            let mut verdicts = Vec::new();
            for (i, piece) in hello.chunks(step).enumerate() {
                verdicts.push(queue(
                    &mut e,
                    &seg(41000, 1 + (i * step) as u32, false, false, piece),
                ));
                verdicts.push(queue(&mut e, &seg(41000, 1, false, true, &[])));
            }
            // Decided at the piece that completes the SNI, past the padding.
            let at = verdicts.iter().position(|v| *v != Verdict::Accept).unwrap();
            assert!(at >= pieces, "{pieces} pieces: decided at packet {at}");
            assert_eq!(verdicts[at], Verdict::DropMark { bits: MARK_BLOCK });
            assert_eq!((e.counters.nameless, e.counters.gave_up), (0, 0));
        }
        // Retransmissions and bytes before the SYN's sequence are not read:
        // the genuine hello still names the flow.
        let mut e = engine(cfg);
        queue(&mut e, &seg(41001, 99, true, false, &[]));
        queue(
            &mut e,
            &seg(
                41001,
                5000,
                false,
                false,
                b"GET / HTTP/1.1\r\nHost: benign.example\r\n\r\n",
            ),
        );
        assert_eq!(
            queue(&mut e, &seg(41001, 100, false, false, &padded)),
            Verdict::DropMark { bits: MARK_BLOCK }
        );
    }

    /// A client that never finishes its hello is decided by its own
    /// segments, at `decide_by`, and always before the kernel stops
    /// queueing it; it gave up, and `undecided` applies.
    #[test]
    fn a_drip_fed_hello_is_decided_by_the_clients_segments() {
        let mut e = engine("config phonehome\n\toption decide_by 16\n\toption undecided block\n");
        queue(&mut e, &seg(42000, 0, true, false, &[]));
        let hello = names::tests_support::CURL_HELLO;
        for i in 0..15 {
            assert_eq!(
                queue(
                    &mut e,
                    &seg(
                        42000,
                        1 + i,
                        false,
                        false,
                        &hello[i as usize..i as usize + 1]
                    )
                ),
                Verdict::Accept
            );
            for _ in 0..3 {
                assert_eq!(
                    queue(&mut e, &seg(42000, 1, false, true, &[])),
                    Verdict::Accept,
                    "server packets do not count"
                );
            }
        }
        assert_eq!(
            queue(&mut e, &seg(42000, 16, false, false, &hello[15..16])),
            Verdict::DropMark { bits: MARK_BLOCK }
        );
        assert_eq!((e.counters.nameless, e.counters.gave_up), (1, 1));
        // Pure ACKs count toward the kernel's limit: decided by the last
        // client packet the kernel still queues, whatever decide_by says.
        let mut e = engine("config phonehome\n\toption undecided block\n");
        queue(&mut e, &seg(42001, 0, true, false, &[]));
        let mut n = 1;
        while queue(&mut e, &seg(42001, 1, false, false, &[])) == Verdict::Accept {
            n += 1;
            assert!(
                n < crate::policy::firewall::FIRST_PACKETS,
                "still undecided at packet {n}"
            );
        }
        assert_eq!(n + 1, CLIENT_DEADLINE);
    }

    /// Half ClientHellos from many connections hold at most `max_pending`
    /// bytes together; past it a connection is decided without a name,
    /// counted, and nothing is held for the decided ones.
    #[test]
    fn connections_waiting_for_a_name_hold_at_most_max_pending() {
        let mut e = engine("config phonehome\n\toption max_pending 64\n\toption undecided block\n");
        let half = &padded_hello(3000)[..2000];
        let mut blocked = 0;
        for port in 0..100u16 {
            queue(&mut e, &seg(43000 + port, 0, true, false, &[]));
            if queue(&mut e, &seg(43000 + port, 1, false, false, half)) != Verdict::Accept {
                blocked += 1;
            }
            assert!(e.flows.pending_bytes() <= 64 * 1024);
        }
        assert_eq!(blocked, 100 - 64 * 1024 / 2000);
        assert_eq!(e.counters.pending_overflow, blocked);
        // The waiting ones finish their hellos: named, and their bytes let go.
        let rest = &padded_hello(3000)[2000..];
        assert_eq!(
            queue(&mut e, &seg(43000, 2001, false, false, rest)),
            Verdict::AcceptMark { bits: MARK_ALLOW }
        );
        assert_eq!(e.flows.pending_bytes(), (64 * 1024 / 2000 - 1) * 2000);
        e.on_ct_destroy(
            &CtEntry {
                orig: packet::parse(&seg(43001, 0, true, false, &[]))
                    .ok()
                    .map(|v| v.tuple),
                ..Default::default()
            },
            NOW,
        );
        assert_eq!(e.flows.pending_bytes(), (64 * 1024 / 2000 - 2) * 2000);
    }

    /// Queues `bytes` as the daemon gets them: with conntrack's original
    /// direction, the client (192.168.77.2) to the server.
    fn queue_tracked(engine: &mut Engine, bytes: &[u8]) -> Verdict {
        let t = packet::parse(bytes).unwrap().tuple;
        let orig = if t.src == IpAddr::from([192, 168, 77, 2]) {
            t
        } else {
            t.reversed()
        };
        engine.on_packet(
            &Packet::from_queued(&QueuedPacket {
                hw_protocol: 0x0800,
                hook: HOOK_FORWARD,
                hwaddr: Some([2, 0, 0, 0, 0x77, 2]),
                payload: bytes,
                ct: Some(CtEntry {
                    orig: Some(orig),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .expect("an IP packet"),
            NOW,
        )
    }

    /// A connection first seen mid-stream (a capture started late, a
    /// daemon started while it was idle) is named by the first data its
    /// client sends, whatever came before it: the server's data, a bare
    /// ACK, a SYN-ACK; a request over two segments is put together.
    #[test]
    fn a_connection_first_seen_mid_stream_is_named_by_its_clients_data() {
        let request = b"GET /x HTTP/1.1\r\nHost: tracking.miui.com\r\n\r\n";
        let cases: [&[Vec<u8>]; 4] = [
            &[seg(50001, 700, false, false, request)],
            &[
                seg(50002, 9000, false, true, b"HTTP/1.1 200 OK\r\n\r\n"),
                seg(50002, 9500, false, true, b"more of the answer"),
                seg(50002, 700, false, false, request),
            ],
            &[
                seg(50003, 700, false, false, &[]),
                seg(50003, 700, false, false, request),
            ],
            &[
                seg(50004, 700, false, false, &request[..20]),
                seg(50004, 720, false, false, &request[20..]),
            ],
        ];
        for packets in cases {
            let mut e =
                engine("config rule 'x'\n\toption owner 'Xiaomi'\n\toption action 'block'\n");
            let verdicts: Vec<Verdict> = packets.iter().map(|p| queue_tracked(&mut e, p)).collect();
            assert_eq!(
                verdicts.last(),
                Some(&Verdict::DropMark { bits: MARK_BLOCK }),
                "{verdicts:?}"
            );
            let f = only_flow(&e);
            assert_eq!(
                (f.domain.as_deref(), f.name_source.as_deref()),
                (Some("tracking.miui.com"), Some("http"))
            );
        }
    }

    /// A client that sends a byte or two, then the whole ClientHello again
    /// from the same sequence number, is read as the server's TCP reads
    /// it: the overlap adds only its new bytes.
    #[test]
    fn an_overlapping_resend_adds_its_new_bytes() {
        let mut e = engine("config rule 'x'\n\toption owner 'Xiaomi'\n\toption action 'block'\n");
        let hello = names::tests_support::CURL_HELLO;
        assert_eq!(
            queue_tracked(&mut e, &seg(50005, 0, true, false, &[])),
            Verdict::Accept
        );
        assert_eq!(
            queue_tracked(&mut e, &seg(50005, 1, false, false, &hello[..2])),
            Verdict::Accept
        );
        assert_eq!(
            queue_tracked(&mut e, &seg(50005, 1, false, false, hello)),
            Verdict::DropMark { bits: MARK_BLOCK }
        );
        assert_eq!(only_flow(&e).domain.as_deref(), Some("api.ad.xiaomi.com"));
    }

    /// A DNS flow says what it asked (from the query, or from the answer
    /// when the query was not seen); its owner stays the resolver's.
    #[test]
    fn a_dns_flow_keeps_the_name_its_first_question_asked() {
        let query = |id: u8, name: &str| {
            let mut m = vec![0, id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
            for label in name.split('.') {
                m.push(label.len() as u8);
                m.extend_from_slice(label.as_bytes());
            }
            m.extend_from_slice(&[0, 0, 1, 0, 1]);
            m
        };
        let udp = |sport: u16, payload: &[u8]| {
            let mut out = Vec::new();
            PacketBuilder::ipv4([192, 168, 77, 2], [8, 8, 8, 8], 64)
                .udp(sport, 53)
                .write(&mut out, payload)
                .unwrap();
            out
        };
        let mut e = engine("");
        queue_tracked(&mut e, &udp(40001, &query(1, "Tracking.MIUI.com")));
        queue_tracked(&mut e, &udp(40001, &query(2, "second.example")));
        let f = only_flow(&e);
        assert_eq!(
            (f.query.as_deref(), f.domain.as_deref()),
            (Some("tracking.miui.com"), None)
        );
        // Not a DNS message, or an empty question: no query name.
        let mut e = engine("");
        queue_tracked(&mut e, &udp(40002, b"\x00\x01 not dns"));
        assert_eq!(only_flow(&e).query, None);
        assert_eq!(names::query_name(&query(3, "")), None);
        assert_eq!(names::query_name(&[0; 11]), None);
    }

    /// A connection alive across a restart: its bytes before and after the
    /// restart land on its owner once, through the state file's bytes.
    #[test]
    fn a_connection_alive_across_a_restart_loses_no_bytes() {
        let mut a = engine("");
        queue(&mut a, &tcp(0, true, &[]));
        let request = b"GET / HTTP/1.1\r\nHost: www.google-analytics.com\r\n\r\n";
        assert_eq!(
            queue(&mut a, &tcp(1, false, request)),
            Verdict::AcceptMark { bits: MARK_ALLOW }
        );
        a.begin_dump();
        a.on_ct_entry(&entry(300, 2_000_000), NOW);
        let file = crate::report::state::encode(&a.snapshot(), NOW.unix);
        let (snapshot, _) = crate::report::state::decode(&file).unwrap();
        let mut b = engine("");
        b.restore(snapshot, NOW);
        assert_eq!(b.flows.len(), 1);
        b.begin_dump();
        b.on_ct_entry(&entry(400, 5_000_000), NOW);
        b.on_ct_destroy(&entry(400, 5_000_000), NOW);
        let rows = b.owner_rows(None, TimeRange::default(), NOW);
        assert_eq!(
            (
                rows[0].owner.as_str(),
                rows[0].flows,
                rows[0].bytes_up,
                rows[0].bytes_down
            ),
            ("Google", 1, 400, 5_000_000)
        );
        assert_eq!(
            b.flow_rows(None)[0].domain.as_deref(),
            Some("www.google-analytics.com")
        );
    }

    /// A hostile resolver replays its SYN-ACK mid-stream to move the
    /// daemon's idea of the stream back over bytes it holds (the client
    /// ignores the replay): the blocked answer is still read as the client
    /// reads it.
    #[test]
    fn a_replayed_syn_ack_does_not_desync_a_dns_stream() {
        let mut e = engine("config rule 'x'\n\tlist owner 'Xiaomi'\n\toption action 'block'\n");
        let mut msg = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        msg.extend(b"\x08tracking\x04miui\x03com\x00\x00\x01\x00\x01");
        msg.extend(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xcb\x00\x71\x0a");
        let framed = [&(msg.len() as u16).to_be_bytes()[..], &msg].concat();
        let dns = |seq: u32, syn: bool, payload: &[u8]| {
            let b = PacketBuilder::ipv4([198, 51, 100, 53], [192, 168, 77, 2], 64)
                .tcp(53, 45000, seq, 64240);
            let b = if syn { b.syn().ack(1) } else { b.ack(1) };
            let mut out = Vec::new();
            b.write(&mut out, payload).unwrap();
            out
        };
        // The client's SYN: its query's flow makes the resolver's packets
        // answers.
        let mut syn = Vec::new();
        PacketBuilder::ipv4([192, 168, 77, 2], [198, 51, 100, 53], 64)
            .tcp(45000, 53, 7, 64240)
            .syn()
            .write(&mut syn, &[])
            .unwrap();
        assert_eq!(queue(&mut e, &syn), Verdict::Accept);
        assert_eq!(queue(&mut e, &dns(999, true, &[])), Verdict::Accept);
        assert_eq!(
            queue(&mut e, &dns(1000, false, &framed[..10])),
            Verdict::Accept
        );
        assert_eq!(queue(&mut e, &dns(999, true, &[])), Verdict::Accept);
        // The rest, as the client takes it (from byte 10 on): refused.
        let v = queue(&mut e, &dns(1000, false, &framed));
        assert!(matches!(v, Verdict::AcceptPayload { .. }), "{v:?}");
        assert_eq!(e.counters.dns_refused, 1);
        // Counted once, as blocked: nothing else had decided the connection.
        let rows = e.device_rows(None, TimeRange::default(), NOW);
        assert_eq!(
            rows.iter()
                .map(|d| (d.flows, d.blocked))
                .collect::<Vec<_>>(),
            [(1, 1)]
        );
    }

    /// Teaches the engine that the phone resolved each of `names` (oldest
    /// first) to the test server 203.0.113.20.
    fn resolved(engine: &mut Engine, names: &[&str]) {
        for name in names {
            let answer = names::DnsAnswer {
                answers: vec![(
                    IpAddr::from([203, 0, 113, 20]),
                    vec![name.to_string()].into(),
                    300,
                )],
                question: None,
                other_names: Vec::new(),
            };
            let phone = names::Asker::Device([2, 0, 0, 0, 0x77, 2]);
            engine.names.learn(phone, &answer, NOW.mono);
        }
    }

    fn only_flow(engine: &Engine) -> FlowRow {
        let rows = engine.flow_rows(None);
        assert_eq!(rows.len(), 1, "{rows:#?}");
        rows[0].clone()
    }

    /// A hostile tracker on a shared address: the phone resolved an
    /// allowed name to it, then sends the blocked name in its ClientHello.
    /// The flow's own SNI is judged (before, the DNS name decided the SYN
    /// and the tracker passed).
    #[test]
    fn an_allowed_dns_name_does_not_carry_a_blocked_sni_through() {
        let mut e = engine("config rule 'x'\n\toption owner 'Xiaomi'\n\toption action 'block'\n");
        resolved(&mut e, &["www.google-analytics.com"]);
        assert_eq!(queue(&mut e, &tcp(0, true, &[])), Verdict::Accept);
        let hello = names::tests_support::CURL_HELLO;
        assert_eq!(
            queue(&mut e, &tcp(1, false, hello)),
            Verdict::DropMark { bits: MARK_BLOCK }
        );
        let f = only_flow(&e);
        assert_eq!(
            (
                f.domain.as_deref(),
                f.name_source.as_deref(),
                f.verdict.as_str()
            ),
            (Some("api.ad.xiaomi.com"), Some("sni"), "block")
        );
    }

    /// Every name the address had is blocked: nothing the client could
    /// send would let it pass, so its SYN is decided (and never leaves).
    #[test]
    fn an_address_only_blocked_names_resolved_to_is_decided_at_the_syn() {
        let mut e = engine("config rule 'x'\n\toption owner 'Xiaomi'\n\toption action 'block'\n");
        resolved(&mut e, &["api.ad.xiaomi.com", "tracking.miui.com"]);
        assert_eq!(
            queue(&mut e, &tcp(0, true, &[])),
            Verdict::DropMark { bits: MARK_BLOCK }
        );
        let f = only_flow(&e);
        assert_eq!(
            (f.domain.as_deref(), f.name_source.as_deref()),
            (Some("tracking.miui.com"), Some("dns"))
        );
    }

    /// An address shared by an allowed and a blocked name: the name the
    /// connection sends decides; when it sends none, the blocked one does
    /// (the address is one a blocked name resolved to).
    #[test]
    fn a_shared_address_is_judged_by_the_name_the_connection_sends() {
        let rules = "config rule 'x'\n\toption owner 'Xiaomi'\n\toption action 'block'\n";
        let names = ["api.ad.xiaomi.com", "www.google-analytics.com"];
        let mut e = engine(rules);
        resolved(&mut e, &names);
        assert_eq!(queue(&mut e, &tcp(0, true, &[])), Verdict::Accept);
        let request = b"GET / HTTP/1.1\r\nHost: www.google-analytics.com\r\n\r\n";
        assert_eq!(
            queue(&mut e, &tcp(1, false, request)),
            Verdict::AcceptMark { bits: MARK_ALLOW }
        );
        let f = only_flow(&e);
        assert_eq!(
            (
                f.domain.as_deref(),
                f.name_source.as_deref(),
                f.owner.as_str()
            ),
            (Some("www.google-analytics.com"), Some("http"), "Google")
        );

        let mut e = engine(rules);
        resolved(&mut e, &names);
        assert_eq!(queue(&mut e, &tcp(0, true, &[])), Verdict::Accept);
        assert_eq!(
            queue(&mut e, &tcp(1, false, b"\x00\x01 a binary protocol")),
            Verdict::DropMark { bits: MARK_BLOCK }
        );
        let f = only_flow(&e);
        assert_eq!(
            (
                f.domain.as_deref(),
                f.name_source.as_deref(),
                f.owner.as_str()
            ),
            (Some("api.ad.xiaomi.com"), Some("dns"), "Xiaomi")
        );
    }

    #[test]
    fn bytes_before_the_decision_land_on_the_owner() {
        let cfg = Config::parse("", std::path::Path::new("t.conf")).unwrap();
        let mut engine = Engine::new(&cfg);
        // The SYN: no name yet, so no decision; conntrack already counts.
        assert_eq!(queue(&mut engine, &tcp(0, true, &[])), Verdict::Accept);
        engine.begin_dump();
        engine.on_ct_entry(&entry(60, 60), NOW);
        assert!(engine
            .owner_rows(None, TimeRange::default(), NOW)
            .is_empty());
        // The request names it; the connection then ends with its totals.
        let request = b"GET / HTTP/1.1\r\nHost: www.google-analytics.com\r\n\r\n";
        assert_eq!(
            queue(&mut engine, &tcp(1, false, request)),
            Verdict::AcceptMark { bits: MARK_ALLOW }
        );
        engine.on_ct_destroy(&entry(300, 1000), NOW);
        let rows = engine.owner_rows(None, TimeRange::default(), NOW);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].owner.as_str(), rows[0].bytes_up, rows[0].bytes_down),
            ("Google", 300, 1000)
        );
    }
}
