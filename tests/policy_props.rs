//! Property tests of the policy engine: random rule sets and connections,
//! checked against a reference evaluator written here from the documented
//! semantics (first match decides, log rules go on, every criterion must
//! match, defaults device → group → global, DNS exempt from defaults), and
//! the DNS-time decision checked for soundness: a name sinkholed at DNS
//! time is blocked for every connection to it. Also: a policy built from a
//! reloaded config decides exactly like one built fresh from it.

use std::path::Path;

use phonehome::owners::Owner;
use phonehome::policy::config::{Action, Config, LocalTime};
use phonehome::policy::rules::{FlowFacts, Policy};
use proptest::prelude::*;

const MACS: [[u8; 6]; 4] = [
    [2, 0, 0, 0, 0x77, 2],
    [2, 0, 0, 0, 0x77, 3],
    [2, 0, 0, 0, 0x77, 4],
    [2, 0, 0, 0, 0x77, 9], // not in the config
];
/// "nobody" is a group with no members: its rules match no device.
const DEVICE_LABELS: [&str; 5] = ["phone", "kids", "laptop", "02:00:00:00:77:04", "nobody"];
const OWNERS: [&str; 3] = ["Xiaomi", "Google", "Meta"];
const CATEGORIES: [&str; 4] = ["advertising", "analytics", "telemetry", "services"];
const DOMAINS: [&str; 3] = ["miui.com", "google.com", "example.org"];
const NAME_CHAINS: [&[&str]; 6] = [
    &[],
    &["tracking.miui.com"],
    &["www.google.com"],
    &["cdn.innocent.test", "tracking.miui.com"],
    &["files.example.org"],
    &["graph.facebook.com"],
];

#[derive(Clone, Debug)]
struct RuleSpec {
    device: Option<usize>,
    owners: Vec<usize>,
    category: Option<usize>,
    domain: Option<usize>,
    proto: Option<u8>,
    port: Option<(u16, u16)>,
    asn: bool,
    country: bool,
    schedule: Option<(u16, u16, u8)>,
    action: Action,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Allow),
        Just(Action::Block),
        Just(Action::Reject),
        Just(Action::Log)
    ]
}

fn rule() -> impl Strategy<Value = RuleSpec> {
    (
        proptest::option::weighted(0.4, 0..5usize),
        proptest::collection::vec(0..3usize, 0..3),
        proptest::option::weighted(0.2, 0..4usize),
        proptest::option::weighted(0.3, 0..3usize),
        proptest::option::weighted(0.3, prop_oneof![Just(6u8), Just(17u8)]),
        proptest::option::weighted(
            0.3,
            prop_oneof![Just((443u16, 443u16)), Just((80, 80)), Just((8000, 8100))],
        ),
        proptest::bool::weighted(0.15),
        proptest::bool::weighted(0.15),
        proptest::option::weighted(
            0.2,
            prop_oneof![
                Just((22 * 60, 7 * 60, 0u8)),
                Just((8 * 60, 17 * 60, 0b0011111u8))
            ],
        ),
        action(),
    )
        .prop_map(
            |(device, owners, category, domain, proto, port, asn, country, schedule, action)| {
                RuleSpec {
                    device,
                    owners,
                    category,
                    domain,
                    proto,
                    port,
                    asn,
                    country,
                    schedule,
                    action,
                }
            },
        )
}

#[derive(Clone, Debug)]
struct Setup {
    rules: Vec<RuleSpec>,
    global_block: bool,
    kids_default: Option<Action>,
    laptop_default: Option<Action>,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        proptest::collection::vec(rule(), 0..8),
        any::<bool>(),
        proptest::option::of(prop_oneof![Just(Action::Block), Just(Action::Allow)]),
        proptest::option::of(prop_oneof![Just(Action::Reject), Just(Action::Allow)]),
    )
        .prop_map(
            |(rules, global_block, kids_default, laptop_default)| Setup {
                rules,
                global_block,
                kids_default,
                laptop_default,
            },
        )
}

fn config_text(s: &Setup) -> String {
    let mut t = format!(
        "config phonehome 'main'\n\toption default '{}'\n",
        if s.global_block { "block" } else { "allow" }
    );
    t.push_str("config group 'nobody'\n");
    t.push_str("config group 'kids'\n");
    if let Some(a) = s.kids_default {
        t.push_str(&format!("\toption default '{}'\n", a.as_str()));
    }
    t.push_str("config device\n\toption mac '02:00:00:00:77:02'\n\toption name 'phone'\n\tlist group 'kids'\n");
    t.push_str("config device\n\toption mac '02:00:00:00:77:03'\n\toption name 'laptop'\n");
    if let Some(a) = s.laptop_default {
        t.push_str(&format!("\toption default '{}'\n", a.as_str()));
    }
    t.push_str("config device\n\toption mac '02:00:00:00:77:04'\n");
    for (i, r) in s.rules.iter().enumerate() {
        t.push_str(&format!("config rule 'r{i}'\n"));
        if let Some(d) = r.device {
            t.push_str(&format!("\toption device '{}'\n", DEVICE_LABELS[d]));
        }
        for o in &r.owners {
            t.push_str(&format!("\tlist owner '{}'\n", OWNERS[*o]));
        }
        if let Some(c) = r.category {
            t.push_str(&format!("\tlist category '{}'\n", CATEGORIES[c]));
        }
        if let Some(d) = r.domain {
            t.push_str(&format!("\tlist domain '{}'\n", DOMAINS[d]));
        }
        if let Some(p) = r.proto {
            t.push_str(&format!(
                "\toption proto '{}'\n",
                if p == 6 { "tcp" } else { "udp" }
            ));
        }
        if let Some((a, b)) = r.port {
            t.push_str(&format!("\tlist port '{a}-{b}'\n"));
        }
        if r.asn {
            t.push_str("\tlist asn 'AS45102'\n");
        }
        if r.country {
            t.push_str("\tlist country 'sg'\n");
        }
        if let Some((start, stop, days)) = r.schedule {
            t.push_str(&format!(
                "\toption start_time '{:02}:{:02}'\n\toption stop_time '{:02}:{:02}'\n",
                start / 60,
                start % 60,
                stop / 60,
                stop % 60
            ));
            if days != 0 {
                let names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
                let list: Vec<&str> = (0..7)
                    .filter(|d| days & (1 << d) != 0)
                    .map(|d| names[d])
                    .collect();
                t.push_str(&format!("\toption weekdays '{}'\n", list.join(" ")));
            }
        }
        t.push_str(&format!("\toption action '{}'\n", r.action.as_str()));
    }
    t
}

#[derive(Clone, Debug)]
struct Conn {
    mac: usize,
    names: usize,
    asn: bool,
    /// In Singapore, in the US, or where no database says.
    country: u8,
    proto: u8,
    port: u16,
    minute: u16,
    weekday: u8,
}

fn conn() -> impl Strategy<Value = Conn> {
    (
        0..4usize,
        0..NAME_CHAINS.len(),
        any::<bool>(),
        0..3u8,
        prop_oneof![Just(6u8), Just(17u8)],
        prop_oneof![Just(80u16), Just(443), Just(8050), Just(53)],
        0..1440u16,
        0..7u8,
    )
        .prop_map(
            |(mac, names, asn, country, proto, port, minute, weekday)| Conn {
                mac,
                names,
                asn,
                country,
                proto,
                port,
                minute,
                weekday,
            },
        )
}

/// The documented semantics, written independently of `policy.rs`.
fn reference(
    s: &Setup,
    c: &Conn,
    names: &[String],
    owners: &[Owner],
) -> (Action, Option<String>, Vec<String>) {
    let mac = MACS[c.mac];
    let members = |label: usize| -> Vec<[u8; 6]> {
        match label {
            0 | 1 => vec![MACS[0]],
            2 => vec![MACS[1]],
            3 => vec![MACS[2]],
            _ => vec![],
        }
    };
    let mut logged = Vec::new();
    for (i, r) in s.rules.iter().enumerate() {
        let ok = r.device.is_none_or(|d| members(d).contains(&mac))
            && (r.owners.is_empty()
                || owners.iter().any(|o| {
                    r.owners
                        .iter()
                        .any(|w| o.name.eq_ignore_ascii_case(OWNERS[*w]))
                }))
            && r.category.is_none_or(|cat| {
                owners
                    .iter()
                    .any(|o| o.category.as_str() == CATEGORIES[cat])
            })
            && r.domain.is_none_or(|d| {
                let d = DOMAINS[d];
                names
                    .iter()
                    .any(|n| n == d || n.ends_with(&format!(".{d}")))
            })
            && r.schedule.is_none_or(|(a, b, days)| {
                (days == 0 || days & (1 << c.weekday) != 0)
                    && if a <= b {
                        c.minute >= a && c.minute < b
                    } else {
                        c.minute >= a || c.minute < b
                    }
            })
            && (!r.asn || c.asn)
            && (!r.country || c.country == 0)
            && r.proto.is_none_or(|p| p == c.proto)
            && r.port.is_none_or(|(a, b)| (a..=b).contains(&c.port));
        if !ok {
            continue;
        }
        if r.action == Action::Log {
            logged.push(format!("r{i}"));
            continue;
        }
        return (r.action, Some(format!("r{i}")), logged);
    }
    if c.port == 53 {
        return (Action::Allow, None, logged);
    }
    let device_default = match c.mac {
        0 => s.kids_default.map(|a| (a, "kids")),
        1 => s.laptop_default.map(|a| (a, "laptop")),
        _ => None,
    };
    match device_default {
        Some((Action::Allow, _)) => (Action::Allow, None, logged),
        Some((a, from)) => (a, Some(format!("default:{from}")), logged),
        None if s.global_block => (Action::Block, Some("default".into()), logged),
        None => (Action::Allow, None, logged),
    }
}

fn facts<'a>(c: &Conn, names: &'a [String], owners: &'a [Owner]) -> FlowFacts<'a> {
    FlowFacts {
        mac: Some(MACS[c.mac]),
        names,
        owners,
        asn: c.asn.then_some(45102),
        country: match c.country {
            0 => Some(*b"SG"),
            1 => Some(*b"US"),
            _ => None,
        },
        proto: c.proto,
        dport: c.port,
        time: LocalTime {
            minute_of_day: c.minute,
            weekday: c.weekday,
        },
        dns: c.port == 53,
        nameless: false,
    }
}

fn chain(i: usize) -> Vec<String> {
    NAME_CHAINS[i].iter().map(|s| s.to_string()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn first_match_semantics(s in setup(), conns in proptest::collection::vec(conn(), 1..16)) {
        let text = config_text(&s);
        let cfg = Config::parse(&text, Path::new("prop")).unwrap();
        let policy = Policy::from_config(&cfg);
        for c in &conns {
            let names = chain(c.names);
            let owners = phonehome::owners::attribute(&names, "0.0.0.0".parse().unwrap()).owners;
            let d = policy.decide(&facts(c, &names, &owners));
            let (action, rule, logged) = reference(&s, c, &names, &owners);
            prop_assert_eq!((d.action, d.rule, d.logged), (action, rule, logged), "{}\n{:?}", text, c);
        }
    }

    #[test]
    fn a_name_sinkholed_at_dns_time_is_blocked_for_every_connection(s in setup(), c in conn()) {
        let cfg = Config::parse(&config_text(&s), Path::new("prop")).unwrap();
        let policy = Policy::from_config(&cfg);
        let names = chain(c.names);
        let owners = phonehome::owners::attribute(&names, "0.0.0.0".parse().unwrap()).owners;
        let at_dns = FlowFacts { proto: 0, dport: 0, asn: None, country: None, dns: false, ..facts(&c, &names, &owners) };
        if let Some(d) = policy.decide_name(&at_dns) {
            prop_assert!(d.blocks());
            for proto in [6u8, 17] {
                for port in [80u16, 443, 8050] {
                    for (asn, country) in [(false, 0), (true, 0), (false, 1), (true, 1), (false, 2), (true, 2)] {
                        let conn = Conn { proto, port, asn, country, ..c.clone() };
                        let later = policy.decide(&facts(&conn, &names, &owners));
                        prop_assert!(later.blocks(), "sinkholed by {:?} but {:?} for {:?}", d.rule, later, conn);
                    }
                }
            }
        }
    }

    #[test]
    fn a_reloaded_policy_decides_like_a_fresh_one(a in setup(), b in setup(), conns in proptest::collection::vec(conn(), 1..8)) {
        // Through the engine: built on A, reloaded with B.
        let cfg_a = Config::parse(&config_text(&a), Path::new("a")).unwrap();
        let cfg_b = Config::parse(&config_text(&b), Path::new("b")).unwrap();
        let mut engine = phonehome::engine::Engine::new(&cfg_a);
        engine.reload(&cfg_b);
        let fresh = Policy::from_config(&cfg_b);
        for c in &conns {
            let names = chain(c.names);
            let owners = phonehome::owners::attribute(&names, "0.0.0.0".parse().unwrap()).owners;
            let f = facts(c, &names, &owners);
            prop_assert_eq!(engine.policy().decide(&f), fresh.decide(&f));
            prop_assert_eq!(engine.policy().decide_name(&f), fresh.decide_name(&f));
        }
    }
}
