//! The engine's unit tests: real and built packets through `on_packet`,
//! conntrack entries and events, checked against rows and verdicts.
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
    let b =
        PacketBuilder::ipv4([192, 168, 77, 2], [203, 0, 113, 20], 64).tcp(40000, 80, seq, 64240);
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
    let new_owner = Event::NewOwner(NewOwnerRow {
        device: "02:00:00:00:77:02".into(),
        owner: "Xiaomi".into(),
        category: "telemetry".into(),
        domain: Some("tracking.miui.com".into()),
        time: NOW.unix,
    });
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

    // An ask the full queue dropped is asked again, not lost for good.
    let mut e = engine("");
    for _ in 0..MAX_EVENTS {
        assert!(e.emit(Event::NewOwner(NewOwnerRow {
            device: String::new(),
            owner: String::new(),
            category: String::new(),
            domain: None,
            time: 0,
        })));
    }
    bare(&mut e, 0);
    assert_eq!(e.events_dropped, 1);
    events(&mut e);
    bare(&mut e, 7);
    assert_eq!(events(&mut e), vec![Event::NeedNeighbours]);
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
        let mut e = engine("config rule 'x'\n\toption owner 'Xiaomi'\n\toption action 'block'\n");
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
