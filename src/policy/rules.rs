//! Policy: which verdict a connection gets. A pure function of the compiled
//! rules and the facts known about a flow (device, names, owners, network,
//! protocol and port, local time).
//!
//! Semantics: rules are tried in file order; `log` rules record a hit and
//! go on; the first `allow`/`block`/`reject` rule that matches decides.
//! Within a rule every given criterion must match (AND); a criterion with
//! several values matches any of them (OR). Names are matched along the
//! whole CNAME chain, so an alias of a blocked name is blocked. With no
//! matching rule the device's default applies: its own `option default`,
//! else the first of its groups that sets one, else the global `option
//! default` (allow unless set) — a "lockdown" group with `default block`
//! reaches only what rules allow. DNS flows are exempt from defaults (only
//! rules stop them), so a locked-down phone can still resolve the names
//! it is allowed. `mode observe` turns blocks into counted would-be blocks.
//!
//! The encrypted-DNS options become rules ahead of the file's
//! (`block_dot`: port 853; `block_doh`: the well-known DoH names;
//! `block_quic`: UDP 443), all `reject` so apps fall back at once.
//!
//! At DNS time (`decide_name`) only names, owners, device and time are
//! known: a rule that also needs a port, protocol or network cannot be
//! judged then; an `allow` one stops the sinkhole (the connection may be
//! allowed), a blocking one is passed over (the connection is judged when
//! it comes).
//!
//! Over 600 lines: 40 % of it is unit tests of the rule semantics.

use std::collections::HashMap;

use crate::owners::{Category, Owner};
use crate::policy::config::{parse_mac, Action, Config, LocalTime, Mac, Mode, Schedule};

/// DNS-over-HTTPS endpoints that phones and browsers use by default or
/// offer as presets (Android, iOS, Chrome, Firefox).
pub const DOH_NAMES: &[&str] = &[
    "dns.google",
    "dns.google.com",
    "cloudflare-dns.com",
    "mozilla.cloudflare-dns.com",
    "chrome.cloudflare-dns.com",
    "one.one.one.one",
    "dns.quad9.net",
    "dns9.quad9.net",
    "dns10.quad9.net",
    "dns11.quad9.net",
    "doh.opendns.com",
    "dns.adguard-dns.com",
    "dns.adguard.com",
    "dns.nextdns.io",
    "doh.cleanbrowsing.org",
    "doh.dns.sb",
    "dns.alidns.com",
    "doh.pub",
    "dns.cloudflare.com",
    "doh.mullvad.net",
];

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    /// None = every device; Some of an empty list (a group without
    /// members) = no device.
    macs: Option<Vec<Mac>>,
    owners: Vec<String>,
    parents: Vec<String>,
    categories: Vec<Category>,
    domains: Vec<String>,
    asns: Vec<u32>,
    /// ISO 3166-1 alpha-2 codes, uppercase.
    countries: Vec<[u8; 2]>,
    proto: Option<u8>,
    ports: Vec<(u16, u16)>,
    schedule: Option<Schedule>,
    action: Action,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Mode,
    rules: Vec<Rule>,
    /// Configured device names.
    names: HashMap<Mac, String>,
    /// Configured device makers (`option maker`).
    makers: HashMap<Mac, String>,
    /// Per-device defaults, with where they came from (device or group).
    defaults: HashMap<Mac, (Action, String)>,
    default: Action,
    undecided: Action,
    /// See `depends_on_device`; fixed when the policy is built.
    device_specific: bool,
    /// See `can_block`.
    blocking: bool,
    /// Whether `decide_before_name` can ever block: an enforced blocking
    /// rule with no owner, category or domain criteria.
    blocks_before_name: bool,
}

/// What is known about a flow when it is judged.
#[derive(Debug, Clone, Default)]
pub struct FlowFacts<'a> {
    pub mac: Option<Mac>,
    /// The CNAME chain (or the single SNI/Host name); empty when unknown.
    pub names: &'a [String],
    /// Owner of each name that has one (and the flow's owner).
    pub owners: &'a [Owner],
    /// The destination's network, when the owner database knows it.
    pub asn: Option<u32>,
    /// The destination's country (ISO 3166-1 alpha-2), when known.
    pub country: Option<[u8; 2]>,
    /// IP protocol and destination port (0 for protocols without ports).
    pub proto: u8,
    pub dport: u16,
    pub time: LocalTime,
    /// A DNS query flow (exempt from device defaults).
    pub dns: bool,
    /// Judged without a name: none came (TLS without SNI, HTTP without
    /// Host, other protocols) or none by `decide_by` packets. `undecided`
    /// then replaces the default.
    pub nameless: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The action that decided (`Allow` when nothing blocked).
    pub action: Action,
    /// The deciding rule's name, or `default:<device or group>` /
    /// `default` / `undecided` when no rule matched but a default blocked.
    pub rule: Option<String>,
    /// Names of `log` rules that matched on the way.
    pub logged: Vec<String>,
    /// False in observe mode: a block is recorded, not enforced.
    pub enforced: bool,
}

impl Decision {
    pub fn blocks(&self) -> bool {
        matches!(self.action, Action::Block | Action::Reject)
    }
}

/// How a rule relates to what is known.
#[derive(PartialEq, Eq)]
enum Match {
    No,
    Yes,
    /// Matches on everything known, but needs facts not known yet.
    Undetermined,
}

impl Policy {
    pub fn from_config(cfg: &Config) -> Policy {
        let mut by_label: HashMap<&str, Vec<Mac>> = HashMap::new();
        let mut names = HashMap::new();
        let mut defaults = HashMap::new();
        for d in &cfg.devices {
            if let Some(n) = &d.name {
                by_label.entry(n).or_default().push(d.mac);
                names.insert(d.mac, n.clone());
            }
            for g in &d.groups {
                by_label.entry(g).or_default().push(d.mac);
            }
            let own = d.default.map(|a| {
                (
                    a,
                    d.name
                        .clone()
                        .unwrap_or_else(|| crate::policy::config::format_mac(&d.mac)),
                )
            });
            let group = d.groups.iter().find_map(|g| {
                cfg.groups
                    .iter()
                    .find(|c| &c.name == g)
                    .and_then(|c| c.default)
                    .map(|a| (a, g.clone()))
            });
            if let Some(d_default) = own.or(group) {
                defaults.insert(d.mac, d_default);
            }
        }
        let mut rules = Vec::new();
        let builtin = |name: &str, action: Action| Rule {
            name: name.to_string(),
            macs: None,
            owners: Vec::new(),
            parents: Vec::new(),
            categories: Vec::new(),
            domains: Vec::new(),
            asns: Vec::new(),
            countries: Vec::new(),
            proto: None,
            ports: Vec::new(),
            schedule: None,
            action,
        };
        if cfg.block_dot {
            rules.push(Rule {
                ports: vec![(853, 853)],
                ..builtin("block_dot", Action::Reject)
            });
        }
        if cfg.block_doh {
            rules.push(Rule {
                domains: DOH_NAMES.iter().map(|d| d.to_string()).collect(),
                ..builtin("block_doh", Action::Reject)
            });
        }
        if cfg.block_quic {
            rules.push(Rule {
                proto: Some(crate::wire::packet::PROTO_UDP),
                ports: vec![(443, 443)],
                ..builtin("block_quic", Action::Reject)
            });
        }
        rules.extend(cfg.rules.iter().map(|r| Rule {
            name: r.name.clone(),
            macs: (!r.devices.is_empty()).then(|| {
                r.devices
                    .iter()
                    .flat_map(|d| match parse_mac(d) {
                        Some(mac) => vec![mac],
                        None => by_label.get(d.as_str()).cloned().unwrap_or_default(),
                    })
                    .collect()
            }),
            owners: r.owners.iter().map(|o| o.to_ascii_lowercase()).collect(),
            parents: r.parents.clone(),
            categories: r.categories.clone(),
            domains: r.domains.clone(),
            asns: r.asns.clone(),
            countries: r.countries.clone(),
            proto: r.proto,
            ports: r.ports.clone(),
            schedule: r.schedule,
            action: r.action,
        }));
        Policy {
            mode: cfg.mode,
            blocking: cfg.default != Action::Allow
                || defaults.values().any(|(a, _)| *a != Action::Allow)
                || rules
                    .iter()
                    .any(|r| matches!(r.action, Action::Block | Action::Reject)),
            device_specific: !defaults.is_empty() || rules.iter().any(|r| r.macs.is_some()),
            blocks_before_name: cfg.mode == Mode::Enforce
                && rules.iter().any(|r| {
                    matches!(r.action, Action::Block | Action::Reject) && !r.has_name_criteria()
                }),
            rules,
            names,
            makers: cfg
                .devices
                .iter()
                .filter_map(|d| Some((d.mac, d.maker.clone()?)))
                .collect(),
            defaults,
            default: cfg.default,
            undecided: cfg.undecided,
        }
    }

    /// Whether any decision can depend on which device asks (a rule names
    /// devices or groups, or a device or group has its own default).
    pub fn depends_on_device(&self) -> bool {
        self.device_specific
    }

    /// Whether anything can be blocked at all (a blocking rule or default).
    pub fn can_block(&self) -> bool {
        self.blocking
    }

    /// Whether `decide_before_name` can ever block (fixed when the policy
    /// is built): callers skip the lookups it needs when it cannot.
    pub fn may_block_before_name(&self) -> bool {
        self.blocks_before_name
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    pub fn device_name(&self, mac: &Mac) -> Option<&str> {
        self.names.get(mac).map(String::as_str)
    }

    /// The maker its config names (`option maker`), for the report.
    pub fn device_maker(&self, mac: &Mac) -> Option<&str> {
        self.makers.get(mac).map(String::as_str)
    }

    fn decision(&self, action: Action, rule: Option<String>, logged: Vec<String>) -> Decision {
        let enforced =
            !matches!(action, Action::Block | Action::Reject) || self.mode == Mode::Enforce;
        Decision {
            action,
            rule,
            logged,
            enforced,
        }
    }

    /// What applies when no rule matched.
    fn fallback(&self, f: &FlowFacts<'_>) -> (Action, Option<String>) {
        if f.dns {
            return (Action::Allow, None);
        }
        if f.nameless && f.names.is_empty() && self.undecided != Action::Allow {
            return (self.undecided, Some("undecided".into()));
        }
        match f.mac.and_then(|m| self.defaults.get(&m)) {
            Some((Action::Allow, _)) => (Action::Allow, None),
            Some((a, from)) => (*a, Some(format!("default:{from}"))),
            None if self.default != Action::Allow => (self.default, Some("default".into())),
            None => (Action::Allow, None),
        }
    }

    pub fn decide(&self, facts: &FlowFacts<'_>) -> Decision {
        let mut logged = Vec::new();
        for rule in &self.rules {
            if rule.matches(facts, false) != Match::Yes {
                continue;
            }
            if rule.action == Action::Log {
                logged.push(rule.name.clone());
                continue;
            }
            return self.decision(rule.action, Some(rule.name.clone()), logged);
        }
        let (action, rule) = self.fallback(facts);
        self.decision(action, rule, logged)
    }

    /// Before a connection's name is known (its first packets, while the
    /// SNI or Host may still come): the decision when it blocks and no
    /// name could change it, so a port, protocol, network or device rule
    /// stops the first packet rather than the handshake's end; None when a
    /// name could matter (a rule on owners, categories or domains that
    /// matches on everything else comes first) or nothing blocks.
    pub fn decide_before_name(&self, facts: &FlowFacts<'_>) -> Option<Decision> {
        let mut logged = Vec::new();
        for rule in &self.rules {
            match rule.matches_before_name(facts) {
                Match::No => {}
                Match::Undetermined => return None,
                Match::Yes if rule.action == Action::Log => logged.push(rule.name.clone()),
                Match::Yes => {
                    let decision = self.decision(rule.action, Some(rule.name.clone()), logged);
                    return (decision.blocks() && decision.enforced).then_some(decision);
                }
            }
        }
        None
    }

    /// At DNS time: the decision for a connection to these names, when the
    /// names alone settle it as blocked (then the answer is sinkholed);
    /// None when it is allowed or depends on what the connection will be.
    pub fn decide_name(&self, facts: &FlowFacts<'_>) -> Option<Decision> {
        if facts.names.is_empty() {
            return None;
        }
        let mut logged = Vec::new();
        for rule in &self.rules {
            match (rule.matches(facts, true), rule.action) {
                (Match::No, _) | (Match::Undetermined, Action::Log) => {}
                (Match::Yes, Action::Log) => logged.push(rule.name.clone()),
                (_, Action::Allow) => return None,
                (Match::Undetermined, _) => {}
                (Match::Yes, action) => {
                    return Some(self.decision(action, Some(rule.name.clone()), logged))
                }
            }
        }
        let (action, rule) = self.fallback(&FlowFacts {
            dns: false,
            ..facts.clone()
        });
        matches!(action, Action::Block | Action::Reject)
            .then(|| self.decision(action, rule, logged))
    }
}

impl Rule {
    /// Whether the rule matches; with `dns_time`, criteria that need the
    /// connection (protocol, port, network) make it `Undetermined`.
    fn matches(&self, f: &FlowFacts<'_>, dns_time: bool) -> Match {
        if !self.device_and_time_match(f) || !self.names_match(f) {
            return Match::No;
        }
        let needs_connection = !self.asns.is_empty()
            || !self.countries.is_empty()
            || self.proto.is_some()
            || !self.ports.is_empty();
        if dns_time {
            return if needs_connection {
                Match::Undetermined
            } else {
                Match::Yes
            };
        }
        if self.connection_matches(f) {
            Match::Yes
        } else {
            Match::No
        }
    }

    /// Whether the rule matches a connection whose name is not known yet:
    /// `Undetermined` when only its owner, category or domain criteria are
    /// left to decide.
    fn matches_before_name(&self, f: &FlowFacts<'_>) -> Match {
        if !self.device_and_time_match(f) || !self.connection_matches(f) {
            return Match::No;
        }
        if self.has_name_criteria() {
            Match::Undetermined
        } else {
            Match::Yes
        }
    }

    /// Whether the rule asks about the name: its owners, parents,
    /// categories or domains.
    fn has_name_criteria(&self) -> bool {
        !self.owners.is_empty()
            || !self.parents.is_empty()
            || !self.categories.is_empty()
            || !self.domains.is_empty()
    }

    fn device_and_time_match(&self, f: &FlowFacts<'_>) -> bool {
        if let Some(macs) = &self.macs {
            if !f.mac.is_some_and(|m| macs.contains(&m)) {
                return false;
            }
        }
        self.schedule.is_none_or(|s| s.contains(f.time))
    }

    fn names_match(&self, f: &FlowFacts<'_>) -> bool {
        if !self.owners.is_empty()
            && !f.owners.iter().any(|o| {
                self.owners
                    .iter()
                    .any(|want| o.name.eq_ignore_ascii_case(want))
            })
        {
            return false;
        }
        if !self.parents.is_empty()
            && !f.owners.iter().any(|o| {
                self.parents
                    .iter()
                    .any(|want| crate::owners::owned_by(o.name, want))
            })
        {
            return false;
        }
        if !self.categories.is_empty()
            && !f
                .owners
                .iter()
                .any(|o| self.categories.contains(&o.category))
        {
            return false;
        }
        if !self.domains.is_empty()
            && !f
                .names
                .iter()
                .any(|n| self.domains.iter().any(|d| domain_within(n, d)))
        {
            return false;
        }
        true
    }

    fn connection_matches(&self, f: &FlowFacts<'_>) -> bool {
        if !self.asns.is_empty() && !f.asn.is_some_and(|a| self.asns.contains(&a)) {
            return false;
        }
        if !self.countries.is_empty() && !f.country.is_some_and(|c| self.countries.contains(&c)) {
            return false;
        }
        if self.proto.is_some_and(|p| p != f.proto) {
            return false;
        }
        self.ports.is_empty() || self.ports.iter().any(|(a, b)| (*a..=*b).contains(&f.dport))
    }
}

/// `name` is `domain` or a subdomain of it.
pub fn domain_within(name: &str, domain: &str) -> bool {
    name == domain
        || (name.len() > domain.len()
            && name.ends_with(domain)
            && name.as_bytes()[name.len() - domain.len() - 1] == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owners;
    use std::path::Path;

    fn policy(text: &str) -> Policy {
        Policy::from_config(&Config::parse(text, Path::new("t")).unwrap())
    }

    const PHONE: Mac = [2, 0, 0, 0, 0x77, 2];
    const LAPTOP: Mac = [2, 0, 0, 0, 0x77, 3];

    fn facts<'a>(mac: Mac, names: &'a [String], owners: &'a [Owner]) -> FlowFacts<'a> {
        FlowFacts {
            mac: Some(mac),
            names,
            owners,
            proto: 6,
            dport: 443,
            ..Default::default()
        }
    }

    fn owners_of(names: &[String]) -> Vec<Owner> {
        crate::owners::attribute(names, "192.0.2.1".parse().unwrap()).owners
    }

    #[test]
    fn ports_protocols_networks_and_schedules() {
        let p = policy(
            "config device\n\toption mac '02:00:00:00:77:02'\n\toption name 'phone'\n             config rule 'night'\n\toption device phone\n\toption start_time '22:00'\n\toption stop_time '07:00'\n\toption weekdays 'Mon Tue Wed Thu Sun'\n\toption action reject\n             config rule 'alibaba_net'\n\tlist asn 'AS45102'\n\toption action block\n             config rule 'no_quic'\n\toption proto udp\n\toption port '443 8443-8450'\n\toption action block\n",
        );
        let names = vec!["www.example.org".to_string()];
        let mut f = facts(PHONE, &names, &[]);
        let at = |h: u16, wd: u8| LocalTime {
            minute_of_day: h * 60,
            weekday: wd,
        };
        f.time = at(12, 0);
        assert_eq!(p.decide(&f).action, Action::Allow);
        f.time = at(23, 0); // Monday night
        assert_eq!(p.decide(&f).rule.as_deref(), Some("night"));
        f.time = at(3, 1); // Tuesday early: over midnight
        assert_eq!(p.decide(&f).action, Action::Reject);
        f.time = at(23, 4); // Friday: not listed
        assert_eq!(p.decide(&f).action, Action::Allow);
        f.asn = Some(45102);
        assert_eq!(p.decide(&f).rule.as_deref(), Some("alibaba_net"));
        f.asn = None;
        f.proto = 17;
        assert_eq!(p.decide(&f).rule.as_deref(), Some("no_quic"));
        f.dport = 8449;
        assert_eq!(p.decide(&f).rule.as_deref(), Some("no_quic"));
        f.dport = 53;
        assert_eq!(p.decide(&f).action, Action::Allow);
    }

    #[test]
    fn defaults_per_device_group_and_global_but_not_for_dns() {
        let p = policy(
            "config phonehome\n\toption default allow\n             config group 'lockdown'\n\toption default block\n             config device\n\toption mac '02:00:00:00:77:02'\n\toption name 'kid'\n\tlist group lockdown\n             config device\n\toption mac '02:00:00:00:77:03'\n\toption name 'laptop'\n\toption default reject\n             config rule 'schoolwork'\n\toption device lockdown\n\tlist owner Google\n\toption action allow\n",
        );
        let g = vec!["www.google.com".to_string()];
        let x = vec!["tracking.miui.com".to_string()];
        let (go, xo) = (owners_of(&g), owners_of(&x));
        assert_eq!(
            p.decide(&facts(PHONE, &g, &go)).rule.as_deref(),
            Some("schoolwork")
        );
        let d = p.decide(&facts(PHONE, &x, &xo));
        assert_eq!(
            (d.action, d.rule.as_deref()),
            (Action::Block, Some("default:lockdown"))
        );
        let d = p.decide(&facts(LAPTOP, &x, &xo));
        assert_eq!(
            (d.action, d.rule.as_deref()),
            (Action::Reject, Some("default:laptop"))
        );
        let mut dns = facts(PHONE, &[], &[]);
        dns.dns = true;
        dns.dport = 53;
        assert_eq!(
            p.decide(&dns).action,
            Action::Allow,
            "DNS is exempt from defaults"
        );
        // Unknown devices: the global default.
        assert_eq!(p.decide(&facts([9; 6], &x, &xo)).action, Action::Allow);
    }

    #[test]
    fn names_alone_decide_the_sinkhole_only_when_certain() {
        let p = policy(
            "config device\n\toption mac '02:00:00:00:77:02'\n\toption name 'phone'\n             config rule 'xiaomi_https_ok'\n\toption domain 'api.ad.xiaomi.com'\n\toption port 443\n\toption action allow\n             config rule 'ga_web'\n\tlist owner Google\n\toption port 80\n\toption action block\n             config rule 'xiaomi'\n\tlist owner Xiaomi\n\toption action block\n",
        );
        let at_dns = |names: &[String]| {
            let owners = owners_of(names);
            p.decide_name(&FlowFacts {
                mac: Some(PHONE),
                names,
                owners: &owners,
                ..Default::default()
            })
            .map(|d| d.rule.unwrap_or_default())
        };
        assert_eq!(
            at_dns(&["tracking.miui.com".into()]).as_deref(),
            Some("xiaomi")
        );
        // CNAME alias of a blocked name.
        assert_eq!(
            at_dns(&["cdn.innocent.test".into(), "tracking.miui.com".into()]).as_deref(),
            Some("xiaomi")
        );
        // An allow rule that needs the port may apply: no sinkhole.
        assert_eq!(at_dns(&["api.ad.xiaomi.com".into()]), None);
        // A block rule that needs the port is passed over.
        assert_eq!(at_dns(&["www.google-analytics.com".into()]), None);
        assert_eq!(at_dns(&[]), None);
    }

    #[test]
    fn encrypted_dns_options_reject_ahead_of_the_rules() {
        let p = policy(
            "config phonehome\n\toption block_dot 1\n\toption block_doh 1\n\toption block_quic 1\n             config rule 'all_ok'\n\toption action allow\n",
        );
        let mut f = facts(PHONE, &[], &[]);
        f.dport = 853;
        assert_eq!(p.decide(&f).rule.as_deref(), Some("block_dot"));
        f.proto = 17;
        assert_eq!(p.decide(&f).action, Action::Reject, "DNS over QUIC too");
        f.dport = 443;
        assert_eq!(p.decide(&f).rule.as_deref(), Some("block_quic"));
        let doh = vec!["dns.google".to_string()];
        let d = p.decide(&facts(PHONE, &doh, &[]));
        assert_eq!(
            (d.action, d.rule.as_deref()),
            (Action::Reject, Some("block_doh"))
        );
        assert!(p
            .decide_name(&FlowFacts {
                names: &doh,
                ..Default::default()
            })
            .is_some());
        assert_eq!(
            p.decide(&facts(PHONE, &[], &[])).rule.as_deref(),
            Some("all_ok")
        );
    }

    /// A group nobody is in matches nobody (an empty member list once
    /// meant "every device"): its block rule leaves others alone, its
    /// allow rule exempts no one.
    #[test]
    fn a_group_without_members_matches_no_device() {
        let p = policy(
            "config phonehome\n\toption default block\n\
             config group 'kids'\n\
             config device\n\toption mac '02:00:00:00:77:02'\n\toption name 'laptop'\n\
             config rule 'kids_no_google'\n\toption device kids\n\tlist owner Google\n\toption action block\n\
             config rule 'kids_all'\n\toption device kids\n\toption action allow\n",
        );
        let names = ["www.google.com".to_string()];
        let owners = owners_of(&names);
        let d = p.decide(&facts(PHONE, &names, &owners));
        assert_eq!(
            (d.action, d.rule.as_deref()),
            (Action::Block, Some("default"))
        );
        assert!(p.depends_on_device());
    }

    #[test]
    fn undecided_connections_fail_open_or_closed() {
        let closed = policy("config phonehome\n\toption undecided block\n");
        let mut f = facts(PHONE, &[], &[]);
        assert_eq!(
            closed.decide(&f).action,
            Action::Allow,
            "not judged nameless"
        );
        f.nameless = true;
        let d = closed.decide(&f);
        assert_eq!(
            (d.action, d.rule.as_deref()),
            (Action::Block, Some("undecided"))
        );
        assert_eq!(policy("").decide(&f).action, Action::Allow);
    }

    /// `list country`: the destination's country, known from its address
    /// alone, so a blocking country rule stops the first packet; at DNS
    /// time (no address yet) it cannot decide; codes are checked with
    /// their line.
    #[test]
    fn a_country_rule_matches_the_destination_country() {
        let p = policy("config rule 'no_sg'\n\tlist country 'sg cn'\n\toption action 'block'\n");
        let names = vec!["www.google.com".to_string()];
        let owners = owners_of(&names);
        let mut f = facts(PHONE, &names, &owners);
        for (country, blocked) in [
            (Some(*b"SG"), true),
            (Some(*b"CN"), true),
            (Some(*b"US"), false),
            (None, false),
        ] {
            f.country = country;
            assert_eq!(p.decide(&f).blocks(), blocked, "{country:?}");
            assert_eq!(
                p.decide_before_name(&f).is_some_and(|d| d.blocks()),
                blocked,
                "before the name: {country:?}"
            );
        }
        f.country = Some(*b"SG");
        assert!(p.decide_name(&f).is_none(), "no address at DNS time");
        for bad in ["S", "SGP", "S1", "'*'", "UK", "el", "''"] {
            let text = format!("config rule\n\toption action 'block'\n\tlist country {bad}\n");
            let e = Config::parse(&text, Path::new("t"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("t:3") && e.contains("country"), "{bad}: {e}");
        }
        let e = Config::parse(
            "config rule\n\toption action 'block'\n\tlist country 'uk'\n",
            Path::new("t"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("GB"), "{e}");
        // An empty criterion would match every connection: refused, for
        // every criterion that takes a list.
        for k in [
            "country", "asn", "port", "owner", "parent", "device", "weekdays",
        ] {
            let text = format!("config rule\n\tlist {k} ''\n\toption action 'allow'\n");
            let e = Config::parse(&text, Path::new("t"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("t:2") && e.contains("empty"), "{k}: {e}");
        }
    }

    /// `option parent` matches the company and everything it owns.
    #[test]
    fn a_parent_rule_matches_the_company_and_what_it_owns() {
        let p =
            policy("config rule 'alibaba'\n\toption parent 'Alibaba'\n\toption action 'block'\n");
        for (name, blocked) in [
            ("alog.umeng.com", true),
            ("oss.aliyuncs.com", true),
            ("www.google.com", false),
        ] {
            let names = vec![name.to_string()];
            let owners: Vec<_> = names.iter().filter_map(|n| owners::lookup(n)).collect();
            assert_eq!(
                p.decide(&facts(PHONE, &names, &owners)).blocks(),
                blocked,
                "{name}"
            );
        }
        // A parent nobody owns (a typo), and one that owns a cloud (names
        // it hosts match too): both said, at the rule's line.
        for (parent, says) in [("Alibabba", "Alibabba"), ("Amazon", "Amazon AWS")] {
            let text =
                format!("config rule 'r'\n\toption parent '{parent}'\n\toption action 'block'\n");
            let warnings = Config::parse(&text, std::path::Path::new("t.conf"))
                .unwrap()
                .warnings();
            assert!(
                warnings
                    .iter()
                    .any(|w| w.contains("t.conf:1") && w.contains(says)),
                "{parent}: {warnings:?}"
            );
        }
    }

    const CFG: &str = "
config device
\toption mac '02:00:00:00:77:02'
\toption name 'phone'
config rule
\toption category 'advertising'
\toption action 'log'
config rule 'allow_maps'
\toption domain 'maps.xiaomi.com'
\toption action 'allow'
config rule 'xiaomi'
\toption device 'phone'
\toption owner 'xiaomi'
\toption action 'block'
";

    #[test]
    fn first_match_wins_and_log_continues() {
        let p = policy(CFG);
        let names = vec!["api.ad.xiaomi.com".to_string()];
        let owners: Vec<_> = names.iter().filter_map(|n| owners::lookup(n)).collect();
        let d = p.decide(&facts(PHONE, &names, &owners));
        assert_eq!(d.action, Action::Block);
        assert_eq!(d.rule.as_deref(), Some("xiaomi"));
        assert_eq!(d.logged, vec!["rule#1"]);
        let names = vec!["maps.xiaomi.com".to_string()];
        let owners: Vec<_> = names.iter().filter_map(|n| owners::lookup(n)).collect();
        assert_eq!(
            p.decide(&facts(PHONE, &names, &owners)).action,
            Action::Allow
        );
        let names = vec!["api.ad.xiaomi.com".to_string()];
        let owners: Vec<_> = names.iter().filter_map(|n| owners::lookup(n)).collect();
        let d = p.decide(&facts(LAPTOP, &names, &owners));
        assert_eq!(
            (d.action, d.rule),
            (Action::Allow, None),
            "rule is for the phone only"
        );
    }

    #[test]
    fn cname_chain_alias_is_blocked() {
        let p = policy(CFG);
        let names = vec![
            "cdn.innocent.test".to_string(),
            "tracking.miui.com".to_string(),
        ];
        let owners: Vec<_> = names.iter().filter_map(|n| owners::lookup(n)).collect();
        assert!(p.decide(&facts(PHONE, &names, &owners)).blocks());
    }

    #[test]
    fn observe_mode_records_without_enforcing() {
        let p = policy(&format!("config phonehome\n\toption mode observe\n{CFG}"));
        let names = vec!["tracking.miui.com".to_string()];
        let owners: Vec<_> = names.iter().filter_map(|n| owners::lookup(n)).collect();
        let d = p.decide(&facts(PHONE, &names, &owners));
        assert!(d.blocks() && !d.enforced);
    }

    #[test]
    fn unknown_names_match_only_name_free_rules() {
        let p = policy(CFG);
        let d = p.decide(&facts(PHONE, &[], &[]));
        assert_eq!(d.action, Action::Allow);
        let p = policy("config rule\n\toption device '02:00:00:00:77:02'\n\toption action block\n");
        assert!(p.decide(&facts(PHONE, &[], &[])).blocks());
    }

    #[test]
    fn domain_suffix_is_label_aligned() {
        assert!(domain_within("a.b.example.com", "example.com"));
        assert!(domain_within("example.com", "example.com"));
        assert!(!domain_within("badexample.com", "example.com"));
    }
}
