//! Policy: which verdict a connection gets. A pure function of the compiled
//! rules and the facts known about a flow (device, names, owners).
//!
//! Semantics: rules are tried in file order; `log` rules record a hit and
//! go on; the first `allow`/`block`/`reject` rule that matches decides; no
//! match means allow. Within a rule every given criterion must match (AND);
//! a criterion with several values matches any of them (OR). Names are
//! matched along the whole CNAME chain, so an alias of a blocked name is
//! blocked. `mode observe` turns blocks into counted would-be blocks.
//!
//! Limits: no schedules, ports or ASNs yet.

use std::collections::HashMap;

use crate::config::{parse_mac, Action, Config, Mac, Mode};
use crate::owners::{Category, Owner};

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    /// Empty = every device.
    macs: Vec<Mac>,
    owners: Vec<String>,
    categories: Vec<Category>,
    domains: Vec<String>,
    action: Action,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Mode,
    rules: Vec<Rule>,
    /// Configured device names.
    names: HashMap<Mac, String>,
}

/// What is known about a flow when it is judged.
#[derive(Debug, Clone, Default)]
pub struct FlowFacts<'a> {
    pub mac: Option<Mac>,
    /// The CNAME chain (or the single SNI/Host name); empty when unknown.
    pub names: &'a [String],
    /// Owner of each name that has one.
    pub owners: &'a [Owner],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The action that decided (`Allow` when no rule matched).
    pub action: Action,
    /// The deciding rule's name, if any.
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

impl Policy {
    pub fn from_config(cfg: &Config) -> Policy {
        let mut by_label: HashMap<&str, Vec<Mac>> = HashMap::new();
        let mut names = HashMap::new();
        for d in &cfg.devices {
            if let Some(n) = &d.name {
                by_label.entry(n).or_default().push(d.mac);
                names.insert(d.mac, n.clone());
            }
            for g in &d.groups {
                by_label.entry(g).or_default().push(d.mac);
            }
        }
        let rules = cfg
            .rules
            .iter()
            .map(|r| Rule {
                name: r.name.clone(),
                macs: r
                    .devices
                    .iter()
                    .flat_map(|d| match parse_mac(d) {
                        Some(mac) => vec![mac],
                        None => by_label.get(d.as_str()).cloned().unwrap_or_default(),
                    })
                    .collect(),
                owners: r.owners.iter().map(|o| o.to_ascii_lowercase()).collect(),
                categories: r.categories.clone(),
                domains: r.domains.clone(),
                action: r.action,
            })
            .collect();
        Policy {
            mode: cfg.mode,
            rules,
            names,
        }
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    pub fn device_name(&self, mac: &Mac) -> Option<&str> {
        self.names.get(mac).map(String::as_str)
    }

    pub fn decide(&self, facts: &FlowFacts<'_>) -> Decision {
        let mut logged = Vec::new();
        for rule in &self.rules {
            if !rule.matches(facts) {
                continue;
            }
            if rule.action == Action::Log {
                logged.push(rule.name.clone());
                continue;
            }
            let enforced = self.mode == Mode::Enforce;
            return Decision {
                action: rule.action,
                rule: Some(rule.name.clone()),
                logged,
                enforced,
            };
        }
        Decision {
            action: Action::Allow,
            rule: None,
            logged,
            enforced: true,
        }
    }
}

impl Rule {
    fn matches(&self, f: &FlowFacts<'_>) -> bool {
        if !self.macs.is_empty() && !f.mac.is_some_and(|m| self.macs.contains(&m)) {
            return false;
        }
        if !self.owners.is_empty()
            && !f.owners.iter().any(|o| {
                self.owners
                    .iter()
                    .any(|want| o.name.eq_ignore_ascii_case(want))
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
