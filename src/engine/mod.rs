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
//! By job: `io` (the boundary types), `dns` (answers and queries),
//! `sniff` (names in the client's first bytes), `accounting` (conntrack
//! bytes, finished flows, dumps, saved state), `views` (counters and
//! rows), `rows` (a flow's row and IPFIX records); this file keeps the
//! decision path (`on_packet`, `decide`, `record_decision`). Its unit
//! tests are in `tests.rs`.
//!
//! A reload re-judges every live decided connection (`rejudge`): the ones
//! whose verdict changed are returned so the daemon rewrites their ct
//! marks, and the kernel enforces the new verdict from their next packet.
//!
//! Over 600 lines: the decision path (`on_packet` → `decide` →
//! `record_decision`) is kept in one file so a verdict can be followed
//! from packet to ct mark; every other job is in its own file.

mod accounting;
pub mod devices;
mod dns;
pub mod flows;
mod io;
mod rows;
mod sniff;
mod views;

use dns::{dns_query_of, is_dns};
pub use io::{Event, Hook, Packet, MAX_EVENTS};
use rows::{export_records, flow_row};
use sniff::{sniff_quic, sniff_segment, waited_long_enough, Sniff};

use std::net::IpAddr;

use crate::engine::devices::DeviceBook;
use crate::engine::flows::{Flow, FlowTable, NameSource};
use crate::inspect::names::{self, NameCache, NameChain, Sniffed};
use crate::owners;
use crate::policy::config::{format_mac, Action, Config, LocalTime, Mac};
use crate::policy::firewall::{MARK_ALLOW, MARK_BLOCK, MARK_REJECT};
use crate::policy::rules::{Decision, FlowFacts, Policy};
use crate::report::stats::{
    DeviceRow, FlowEvent, FlowRow, NewOwnerRow, OwnerRow, SeriesBy, SeriesRows, Stats, TimeRange,
    UNKNOWN_OWNER,
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
        // Asked once until answered; an ask the full event queue dropped
        // is asked again by the next such packet.
        if mac.is_none() && !self.neighbours_wanted {
            self.neighbours_wanted = self.emit(Event::NeedNeighbours);
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
        let new_owner = new_pair.then(|| {
            Event::NewOwner(NewOwnerRow {
                device: flow.device.clone(),
                owner: owner.map_or(UNKNOWN_OWNER, |o| o.name).to_string(),
                category: owner
                    .map_or(UNKNOWN_OWNER, |o| o.category.as_str())
                    .to_string(),
                domain: flow.domain().map(str::to_string),
                time: unix,
            })
        });
        if let Some(row) = watched {
            self.emit(Event::Decided(row));
        }
        if let Some(event) = new_owner {
            self.emit(event);
        }
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

    /// Queues an event; false when the queue was full and it was dropped.
    fn emit(&mut self, event: Event) -> bool {
        if self.events.len() >= MAX_EVENTS {
            self.events_dropped += 1;
            false
        } else {
            self.events.push_back(event);
            true
        }
    }
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

#[cfg(test)]
mod tests;
