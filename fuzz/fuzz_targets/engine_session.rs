#![no_main]
//! A whole session through one engine: the input is a program of steps
//! (packets of eight flows from four devices over IPv4 and IPv6, in either
//! direction, TCP and UDP; DNS answers over UDP and TCP for blocked and
//! allowed names; conntrack dumps and destroys; reloads; queries), so state
//! carried across packets, flows and devices is exercised. After every step
//! the invariants that make the product trustworthy are checked:
//! - memory is bounded: flows, bytes waiting for names, devices;
//! - a connection named by a blocked name is never allowed, in either
//!   policy the session reloads between;
//! - a DNS answer whose question is a blocked name never passes as it is;
//! - a verdict exists for every packet (no panic, no stall).

use std::net::IpAddr;
use std::sync::OnceLock;

use etherparse::PacketBuilder;
use phonehome::policy::config::Config;
use phonehome::wire::conntrack::{Counters, CtEntry};
use phonehome::engine::{Engine, Now};
use phonehome::wire::packet::FiveTuple;
use phonehome::wire::nfqueue::{QueuedPacket, Verdict, HOOK_FORWARD, HOOK_LOCAL_IN, HOOK_LOCAL_OUT};
use phonehome::report::stats::TimeRange;

const BASE: &str = "config phonehome\n\toption leases '/nonexistent'\n\toption max_flows '64'\n\
    \toption max_pending '64'\n\toption decide_by '4'\n\
    config device\n\toption mac '02:00:00:00:77:02'\n\toption name 'phone'\n\tlist group 'kids'\n";
const POLICIES: [&str; 2] = [
    "config rule 'x'\n\toption owner 'Xiaomi'\n\toption action 'reject'\n",
    "config group 'empty'\nconfig rule 'e'\n\toption device 'empty'\n\toption action 'allow'\n\
     config rule 'x'\n\tlist domain 'miui.com'\n\tlist domain 'xiaomi.com'\n\toption action 'block'\n\
     config rule 'k'\n\toption device 'kids'\n\tlist owner 'Google'\n\toption action 'block'\n",
];
/// Names the session uses; the first three are blocked by both policies.
const NAMES: [&str; 6] = [
    "tracking.miui.com",
    "api.ad.xiaomi.com",
    "data.mistat.xiaomi.com",
    "www.example.org",
    "cdn.innocent.test",
    "files.example.org",
];
const BLOCKED: usize = 3;

fn configs() -> &'static [Config; 2] {
    static C: OnceLock<[Config; 2]> = OnceLock::new();
    C.get_or_init(|| {
        POLICIES.map(|p| Config::parse(&format!("{BASE}{p}"), std::path::Path::new("fuzz")).unwrap())
    })
}

struct Program<'a> {
    data: &'a [u8],
}

impl Program<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(*b)
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (a, rest) = self.data.split_at(n);
        self.data = rest;
        a
    }
}

fn device(i: u8, v6: bool) -> (IpAddr, [u8; 6]) {
    let mac = [2, 0, 0, 0, 0x77, 2 + (i % 4)];
    let ip = if v6 {
        IpAddr::from([0xfd, 0, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2 + (i % 4)])
    } else {
        IpAddr::from([192, 168, 77, 2 + (i % 4)])
    };
    (ip, mac)
}

fn server(i: u8, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::from([0x20, 1, 0xd, 0xb8, 1, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 + (i % 4)])
    } else {
        IpAddr::from([203, 0, 113, 10 + (i % 4)])
    }
}

fn build(src: IpAddr, dst: IpAddr, tcp: Option<(u16, u16, u32, u8)>, udp: (u16, u16), payload: &[u8]) -> Vec<u8> {
    let b = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => unreachable!(),
    };
    let mut out = Vec::new();
    match tcp {
        Some((sp, dp, seq, flags)) => {
            let mut t = b.tcp(sp, dp, seq, 64240);
            if flags & 1 != 0 {
                t = t.syn();
            }
            if flags & 2 != 0 {
                t = t.ack(1);
            }
            if flags & 4 != 0 {
                t = t.fin();
            }
            let _ = t.write(&mut out, payload);
        }
        None => {
            let _ = b.udp(udp.0, udp.1).write(&mut out, payload);
        }
    }
    out
}

/// A DNS answer for `name` with `n` A/AAAA records of `addr`.
fn dns_answer(name: &str, addr: IpAddr, n: u8) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, n, 0, 0, 0, 0];
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    let (t, data): (u16, Vec<u8>) = match addr {
        IpAddr::V4(a) => (1, a.octets().to_vec()),
        IpAddr::V6(a) => (28, a.octets().to_vec()),
    };
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&t.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    for _ in 0..n {
        m.extend_from_slice(&[0xc0, 0x0c]);
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        m.extend_from_slice(&(data.len() as u16).to_be_bytes());
        m.extend_from_slice(&data);
    }
    m
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let cfgs = configs();
    let mut engine = Engine::new(&cfgs[0]);
    engine.set_quiet(true);
    let mut p = Program { data };
    let mut clock = 1u64;
    let mut id = 0u32;
    let mut seqs = [1u32; 16];
    let mut dns_port = 50000u16;
    while let Some(op) = p.byte() {
        clock += 1;
        let now = Now { mono: clock, unix: 1_795_651_200 + clock, ..Default::default() };
        let arg = p.byte().unwrap_or(0);
        let v6 = arg & 0x80 != 0;
        let flow = arg & 0x07;
        let (client, mac) = device(arg >> 3, v6);
        let srv = server(flow, v6);
        let sport = 40000 + u16::from(flow);
        let mut queued = |engine: &mut Engine, payload: &[u8], hook: u8, from_lan: bool| {
            id += 1;
            let pkt = QueuedPacket {
                id,
                hw_protocol: if v6 { 0x86dd } else { 0x0800 },
                hook,
                hwaddr: from_lan.then_some(mac),
                payload,
                ..Default::default()
            };
            engine.on_queued(&pkt, now)
        };
        match op % 10 {
            // A client segment: SYN, data (of the program's bytes), FIN.
            0..=2 => {
                let len = usize::from(p.byte().unwrap_or(0));
                let payload = p.bytes(len).to_vec();
                let flags = match op % 3 {
                    0 => 1,
                    1 => 2,
                    _ => 6,
                };
                let seq = seqs[usize::from(flow)];
                if flags & 1 == 0 {
                    seqs[usize::from(flow)] = seq.wrapping_add(payload.len() as u32);
                }
                let pkt = build(client, srv, Some((sport, 443, seq, flags)), (0, 0), &payload);
                queued(&mut engine, &pkt, HOOK_FORWARD, true);
            }
            // A server segment back.
            3 => {
                let len = usize::from(p.byte().unwrap_or(0) % 64);
                let payload = p.bytes(len).to_vec();
                let pkt = build(srv, client, Some((443, sport, 1, 2)), (0, 0), &payload);
                queued(&mut engine, &pkt, HOOK_FORWARD, false);
            }
            // UDP from the client (QUIC-ish or not).
            4 => {
                let len = usize::from(p.byte().unwrap_or(0));
                let payload = p.bytes(len).to_vec();
                let pkt = build(client, srv, None, (sport, 443), &payload);
                queued(&mut engine, &pkt, HOOK_FORWARD, true);
            }
            // A DNS answer over UDP, forwarded or from the router's own
            // resolver: a blocked question never passes as it is.
            5 => {
                let name = usize::from(p.byte().unwrap_or(0)) % NAMES.len();
                let n = p.byte().unwrap_or(1) % 8;
                let msg = dns_answer(NAMES[name], srv, n);
                let resolver = server(7, v6);
                let hook = if op & 0x10 != 0 { HOOK_LOCAL_OUT } else { HOOK_FORWARD };
                // The query first (its flow makes the reply an answer).
                let query = build(client, resolver, None, (sport, 53), &msg[..12]);
                let query_hook = if hook == HOOK_LOCAL_OUT { HOOK_LOCAL_IN } else { HOOK_FORWARD };
                queued(&mut engine, &query, query_hook, true);
                let pkt = build(resolver, client, None, (53, sport), &msg);
                let verdict = queued(&mut engine, &pkt, hook, false);
                if name < BLOCKED {
                    assert_ne!(verdict, Verdict::Accept, "blocked answer for {} passed", NAMES[name]);
                }
            }
            // A DNS-over-TCP answer segment (the stream starts at seq 1000).
            6 => {
                let name = usize::from(p.byte().unwrap_or(0)) % NAMES.len();
                let msg = dns_answer(NAMES[name], srv, 1 + p.byte().unwrap_or(0) % 4);
                let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&msg);
                let cut = usize::from(p.byte().unwrap_or(255)).min(framed.len());
                let resolver = server(6, v6);
                // A connection of its own each time (the client's port).
                dns_port = dns_port.wrapping_add(1).max(50000);
                let syn = build(client, resolver, Some((dns_port, 53, 7, 1)), (0, 0), &[]);
                queued(&mut engine, &syn, HOOK_FORWARD, true);
                let synack = build(resolver, client, Some((53, dns_port, 999, 3)), (0, 0), &[]);
                queued(&mut engine, &synack, HOOK_FORWARD, false);
                let pkt = build(resolver, client, Some((53, dns_port, 1000, 2)), (0, 0), &framed[..cut]);
                let verdict = queued(&mut engine, &pkt, HOOK_FORWARD, false);
                if name < BLOCKED && cut == framed.len() {
                    assert_ne!(verdict, Verdict::Accept, "blocked TCP answer for {} passed", NAMES[name]);
                }
            }
            // Conntrack: a dump listing this flow with some bytes, or its end.
            7 => {
                let orig = FiveTuple { proto: 6, src: client, dst: srv, sport, dport: 443 };
                let entry = CtEntry {
                    orig: Some(orig),
                    orig_counters: Some(Counters { packets: 1, bytes: u64::from(arg) * 100 }),
                    reply_counters: Some(Counters { packets: 1, bytes: u64::from(arg) * 1000 }),
                    ..Default::default()
                };
                if op & 0x10 != 0 {
                    engine.on_ct_destroy(&entry, now);
                } else {
                    engine.begin_dump();
                    engine.on_ct_entry(&entry, now);
                    engine.end_dump(now);
                }
            }
            // A reload to either policy, live connections judged again.
            8 => {
                engine.reload(&cfgs[usize::from(arg & 1)]);
                let _ = engine.rejudge(now);
            }
            // Queries.
            _ => {
                let _ = engine.device_rows(None, TimeRange::default(), now);
                let _ = engine.owner_rows(None, TimeRange::default(), now);
            }
        }
        // The I/O around the engine takes its events after every step;
        // the queue stays bounded whatever the session.
        let mut polled = 0;
        while engine.poll_event().is_some() {
            polled += 1;
        }
        assert!(polled <= phonehome::engine::MAX_EVENTS);
        // The invariants, after every step.
        assert!(engine.flow_count() <= 64, "{} flows", engine.flow_count());
        assert!(engine.pending_bytes() <= 64 * 1024, "{} pending", engine.pending_bytes());
        assert!(engine.device_count() <= phonehome::report::stats::MAX_DEVICES);
        for row in engine.flow_rows(None) {
            let blocked_name = row.domain.as_deref().is_some_and(|d| NAMES[..BLOCKED].contains(&d));
            if blocked_name && row.active {
                assert_ne!(row.verdict, "allow", "{row:?}");
            }
        }
    }
});
