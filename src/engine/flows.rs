//! Flows: the bounded table of connections the daemon has seen, keyed by
//! the conntrack original-direction tuple, plus a ring of recently finished
//! ones for `phonehome flows`. A flow is pending until it has a name (or
//! cannot get one), then decided; its byte counters follow conntrack.
//!
//! Limits: when full, the least recently active flows are evicted (their
//! later bytes are no longer counted; `evicted` says how many).

use std::collections::{HashMap, VecDeque};

use crate::inspect::names::NameChain;
use crate::owners::Owner;
use crate::policy::config::Mac;
use crate::policy::rules::Decision;
use crate::wire::conntrack::Counters;
use crate::wire::packet::FiveTuple;

/// Where a flow's name came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameSource {
    Dns,
    Sni,
    Http,
    /// The SNI of a QUIC Initial's ClientHello.
    Quic,
}

impl NameSource {
    pub fn as_str(self) -> &'static str {
        match self {
            NameSource::Dns => "dns",
            NameSource::Sni => "sni",
            NameSource::Http => "http",
            NameSource::Quic => "quic",
        }
    }
}

/// Client bytes gathered while waiting for a ClientHello/request to end.
#[derive(Debug, Default)]
pub struct Pending {
    pub hello: Vec<u8>,
    pub next_seq: Option<u32>,
    /// CRYPTO frame data of a QUIC flow's Initial packets.
    pub crypto: crate::inspect::quic::CryptoPieces,
    /// First seen mid-stream: the server's data does not say the client
    /// sends no name (it may answer a request sent before).
    pub joined_mid_stream: bool,
    /// The names DNS answers gave the server's address, newest first,
    /// while the flow waits for the name it sends itself.
    pub dns_candidates: Vec<NameChain>,
}

/// A decided connection as the state file keeps it, so a daemon restart
/// (or crash, from the tmpfs copy) loses none of its bytes: the next
/// conntrack dump folds in what it sent since.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LiveFlow {
    pub tuple: FiveTuple,
    pub mac: Option<Mac>,
    pub device: String,
    pub names: Vec<String>,
    pub name_source: Option<String>,
    /// allow | block | reject | log (as `Action::as_str`).
    pub action: String,
    pub rule: Option<String>,
    pub enforced: bool,
    pub counted_up: u64,
    pub counted_down: u64,
    pub first_seen: u64,
    pub last_seen: u64,
}

impl NameSource {
    pub fn parse(s: &str) -> Option<NameSource> {
        [
            NameSource::Dns,
            NameSource::Sni,
            NameSource::Http,
            NameSource::Quic,
        ]
        .into_iter()
        .find(|n| n.as_str() == s)
    }
}

/// A DNS-over-TCP answer stream followed in order (see
/// `Engine::on_dns_segment`): the next sequence number expected from the
/// server and the bytes of a message not yet complete.
#[derive(Debug, Default)]
pub struct DnsStream {
    pub next_seq: Option<u32>,
    pub buf: Vec<u8>,
    /// A message of it was sinkholed in place: retransmissions (which would
    /// carry the original bytes) are dropped.
    pub rewrote: bool,
}

#[derive(Debug)]
pub struct Flow {
    pub tuple: FiveTuple,
    pub mac: Option<Mac>,
    /// Stats key of the device: its MAC, or its address when unknown.
    pub device: String,
    pub names: Option<NameChain>,
    pub name_source: Option<NameSource>,
    pub owner: Option<Owner>,
    /// The company whose network the destination address is in (from the
    /// owner database's IP ranges), e.g. "Alibaba Cloud".
    pub host: Option<&'static str>,
    /// The destination's country (ISO 3166-1 alpha-2), when known.
    pub country: Option<[u8; 2]>,
    /// For a DNS flow: the name its first question asked (the flow's
    /// owner stays the resolver's).
    pub query: Option<Box<str>>,
    pub decision: Option<Decision>,
    pub pending: Pending,
    /// The server's answers, for a DNS-over-TCP flow.
    pub dns_stream: DnsStream,
    /// Packets of this flow that reached user space.
    pub queued: u32,
    /// Of those, the client's (original direction), and the client's that
    /// carried data: a nameless connection is decided by these, never by
    /// the server's ACKs.
    pub client_packets: u32,
    pub client_segments: u32,
    /// Bytes of `pending` and `dns_stream` counted in the table's
    /// `pending_bytes` (see `FlowTable::recount`).
    held: usize,
    pub first_seen: u64,
    pub last_seen: u64,
    /// Packets and bytes so far, each way (conntrack's counters, or the
    /// packets of a capture).
    pub up: Counters,
    pub down: Counters,
    /// Bytes of `up`/`down` already in the statistics (the rest arrived
    /// before the flow was decided, or since the last fold).
    pub counted_up: u64,
    pub counted_down: u64,
    /// Generation of the last conntrack dump that still listed this flow.
    pub seen_gen: u64,
}

impl Flow {
    pub fn new(tuple: FiveTuple, now: u64) -> Flow {
        Flow {
            tuple,
            mac: None,
            device: tuple.src.to_string(),
            names: None,
            name_source: None,
            owner: None,
            host: None,
            country: None,
            query: None,
            decision: None,
            pending: Pending::default(),
            dns_stream: DnsStream::default(),
            queued: 0,
            client_packets: 0,
            client_segments: 0,
            held: 0,
            first_seen: now,
            last_seen: now,
            up: Counters::default(),
            down: Counters::default(),
            counted_up: 0,
            counted_down: 0,
            seen_gen: 0,
        }
    }

    /// Bytes this flow holds while it waits for a name (ClientHello or
    /// request, QUIC CRYPTO data, a DNS-over-TCP message).
    pub fn held_bytes(&self) -> usize {
        self.pending.hello.len()
            + self
                .pending
                .crypto
                .iter()
                .map(|(_, d)| d.len())
                .sum::<usize>()
            + self.dns_stream.buf.capacity()
    }

    /// The flow as the state file keeps it, when it is decided.
    pub fn to_live(&self) -> Option<LiveFlow> {
        let d = self.decision.as_ref()?;
        Some(LiveFlow {
            tuple: self.tuple,
            mac: self.mac,
            device: self.device.clone(),
            names: self.names.as_deref().unwrap_or(&[]).to_vec(),
            name_source: self.name_source.map(|s| s.as_str().to_string()),
            action: d.action.as_str().to_string(),
            rule: d.rule.clone(),
            enforced: d.enforced,
            counted_up: self.counted_up,
            counted_down: self.counted_down,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
        })
    }

    /// The name shown for this flow: the one the client asked for.
    pub fn domain(&self) -> Option<&str> {
        self.names
            .as_ref()
            .and_then(|c| c.first())
            .map(String::as_str)
    }
}

pub struct FlowTable {
    active: HashMap<FiveTuple, Flow>,
    recent: VecDeque<Flow>,
    capacity: usize,
    recent_capacity: usize,
    pub evicted: u64,
    /// Bytes all active flows hold while they wait for a name.
    pending_bytes: usize,
}

impl FlowTable {
    pub fn new(capacity: usize) -> Self {
        FlowTable {
            active: HashMap::new(),
            recent: VecDeque::new(),
            capacity: capacity.max(64),
            recent_capacity: 1024,
            evicted: 0,
            pending_bytes: 0,
        }
    }

    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(64);
    }

    pub fn len(&self) -> usize {
        self.active.len()
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    pub fn contains(&self, t: &FiveTuple) -> bool {
        self.active.contains_key(t)
    }

    pub fn get(&self, t: &FiveTuple) -> Option<&Flow> {
        self.active.get(t)
    }

    pub fn get_mut(&mut self, t: &FiveTuple) -> Option<&mut Flow> {
        self.active.get_mut(t)
    }

    /// The flow for `tuple`, created if new. Evicts when full: the least
    /// recently active go to the recent ring (`evicted` counts them).
    pub fn entry(&mut self, tuple: FiveTuple, now: u64) -> &mut Flow {
        if !self.active.contains_key(&tuple) && self.active.len() >= self.capacity {
            self.evict_oldest();
        }
        self.active
            .entry(tuple)
            .or_insert_with(|| Flow::new(tuple, now))
    }

    fn evict_oldest(&mut self) {
        let n = (self.capacity / 16).max(1);
        let mut ages: Vec<(u64, FiveTuple)> =
            self.active.iter().map(|(k, f)| (f.last_seen, *k)).collect();
        let n = n.min(ages.len());
        ages.select_nth_unstable(n - 1);
        for (_, key) in ages.into_iter().take(n) {
            if let Some(flow) = self.active.remove(&key) {
                self.evicted += 1;
                self.push_recent(flow);
            }
        }
    }

    /// Moves a flow from the active table to the recent ring.
    pub fn finish(&mut self, tuple: &FiveTuple) -> Option<&Flow> {
        let flow = self.active.remove(tuple)?;
        self.push_recent(flow);
        self.recent.back()
    }

    /// Bytes all active flows hold while they wait for a name.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Brings the table's `pending_bytes` in line with what the flow `t`
    /// holds now; call after changing its buffers.
    pub fn recount(&mut self, t: &FiveTuple) {
        if let Some(f) = self.active.get_mut(t) {
            let now = f.held_bytes();
            self.pending_bytes = self.pending_bytes - f.held + now;
            f.held = now;
        }
    }

    fn push_recent(&mut self, mut flow: Flow) {
        self.pending_bytes -= flow.held;
        flow.held = 0;
        flow.pending = Pending::default();
        flow.dns_stream = DnsStream::default();
        if self.recent.len() >= self.recent_capacity {
            self.recent.pop_front();
        }
        self.recent.push_back(flow);
    }

    /// Flows not seen in the conntrack dump of generation `gen`, older than
    /// `min_age` seconds: their connections are gone.
    pub fn stale(&self, gen: u64, now: u64, min_age: u64) -> Vec<FiveTuple> {
        self.active
            .values()
            .filter(|f| f.seen_gen < gen && now.saturating_sub(f.last_seen) >= min_age)
            .map(|f| f.tuple)
            .collect()
    }

    pub fn active(&self) -> impl Iterator<Item = &Flow> {
        self.active.values()
    }

    pub fn recent(&self) -> impl Iterator<Item = &Flow> {
        self.recent.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(port: u16) -> FiveTuple {
        FiveTuple {
            proto: 6,
            src: "192.168.77.2".parse().unwrap(),
            dst: "203.0.113.10".parse().unwrap(),
            sport: port,
            dport: 443,
        }
    }

    #[test]
    fn table_is_bounded_and_evicts_oldest() {
        let mut t = FlowTable::new(64);
        for i in 0..200u16 {
            t.entry(tuple(i), u64::from(i));
        }
        assert!(t.len() <= 64);
        assert!(t.evicted >= 136);
        assert!(t.contains(&tuple(199)));
        assert!(!t.contains(&tuple(0)));
    }

    #[test]
    fn finished_flows_move_to_recent() {
        let mut t = FlowTable::new(64);
        t.entry(tuple(1), 5);
        assert!(t.finish(&tuple(1)).is_some());
        assert!(t.is_empty());
        assert_eq!(t.recent().count(), 1);
        assert_eq!(t.stale(1, 100, 10).len(), 0);
    }
}
