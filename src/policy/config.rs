//! Config: the UCI file `/etc/config/phonehome` (read by `uci`) turned
//! into typed settings, devices, groups and rules: every value checked,
//! every error naming the file and line, rules that can never match
//! refused, and warnings for what the owner database cannot back.
//!
//! Over 600 lines: a third of it is unit tests, one per rule of the file's
//! grammar.

use std::path::{Path, PathBuf};

use crate::owners::Category;

use super::config_sections::{device_section, group_section, rule_section, ErrAt};
pub use super::uci::{parse_uci, ConfigError, Section};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Observe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Block,
    /// Blocks and tells the app at once: the kernel answers with a TCP
    /// reset (other protocols: ICMP port unreachable).
    Reject,
    /// Records and goes on to the next rule (like iptables LOG).
    Log,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Block => "block",
            Action::Reject => "reject",
            Action::Log => "log",
        }
    }
}

pub use crate::wire::packet::Mac;

/// A UCI boolean, as libuci and procd read them.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "on" | "true" | "yes" | "enabled" => Some(true),
        "0" | "off" | "false" | "no" | "disabled" => Some(false),
        _ => None,
    }
}

pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for byte in mac.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// `aa:bb:cc:dd:ee:ff`. Written out by hand: it runs for every new
/// connection before its verdict, and `format!` took ~1 µs of it.
pub fn format_mac(mac: &Mac) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(17);
    for (i, b) in mac.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    pub mac: Mac,
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// Who made it (`option maker 'Xiaomi'`): the report counts what it
    /// sends its maker apart from the rest.
    pub maker: Option<String>,
    /// What this device gets when no rule matches (`option default`).
    pub default: Option<Action>,
}

/// `config group 'NAME'`: settings shared by the devices that list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    pub name: String,
    pub default: Option<Action>,
}

/// When a rule applies, in the router's local time (fw4's `start_time`,
/// `stop_time` and `weekdays`). A window whose stop is before its start
/// runs over midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Minutes after midnight; None = from midnight.
    pub start: Option<u16>,
    /// Minutes after midnight, exclusive; None = until midnight.
    pub stop: Option<u16>,
    /// Bit 0 = Monday .. bit 6 = Sunday; 0 = every day.
    pub weekdays: u8,
}

/// Local time as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocalTime {
    pub minute_of_day: u16,
    /// 0 = Monday .. 6 = Sunday.
    pub weekday: u8,
}

impl Schedule {
    pub fn contains(&self, t: LocalTime) -> bool {
        if self.weekdays != 0 && self.weekdays & (1 << t.weekday) == 0 {
            return false;
        }
        let m = t.minute_of_day;
        match (self.start, self.stop) {
            (None, None) => true,
            (Some(a), None) => m >= a,
            (None, Some(b)) => m < b,
            (Some(a), Some(b)) if a <= b => m >= a && m < b,
            (Some(a), Some(b)) => m >= a || m < b,
        }
    }
}

/// `HH:MM[:SS]` as minutes after midnight.
pub fn parse_clock(s: &str) -> Option<u16> {
    let mut parts = s.split(':');
    let h: u16 = parts.next()?.parse().ok()?;
    let m: u16 = parts.next()?.parse().ok()?;
    if let Some(sec) = parts.next() {
        sec.parse::<u8>().ok().filter(|s| *s < 60)?;
    }
    // `then`, not `then_some`: the product must not be computed for an
    // hour past 1092 (it overflows u16; fuzzing found it).
    (parts.next().is_none() && h < 24 && m < 60).then(|| h * 60 + m)
}

/// `Mon`..`Sun` (any case, full names too) as 0..6.
pub fn parse_weekday(s: &str) -> Option<u8> {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let l = s.to_ascii_lowercase();
    DAYS.iter()
        .position(|d| l.starts_with(d) && d.len() <= l.len())
        .map(|i| i as u8)
}

/// ISO 3166-1 alpha-2 codes, and the few others geolocation data uses
/// (XK Kosovo, EU and AP for networks spread over a continent, ZZ
/// unknown), two letters each.
const COUNTRY_CODES: &str = "ADAEAFAGAIALAMAOAQARASATAUAWAXAZBABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZ\
CACCCDCFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZDEDJDKDMDODZECEEEGEHERESETFIFJFKFMFOFRGAGBGDGEGFGGGHGIGLGMGNGP\
GQGRGSGTGUGWGYHKHMHNHRHTHUIDIEILIMINIOIQIRISITJEJMJOJPKEKGKHKIKMKNKPKRKWKYKZLALBLCLILKLRLSLTLULVLYMA\
MCMDMEMFMGMHMKMLMMMNMOMPMQMRMSMTMUMVMWMXMYMZNANCNENFNGNINLNONPNRNUNZOMPAPEPFPGPHPKPLPMPNPRPSPTPWPYQA\
RERORSRURWSASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZTCTDTFTGTHTJTKTLTMTNTOTRTTTVTWTZUAUGUMUSUYUZVAVC\
VEVGVIVNVUWFWSYEYTZAZMZWXKEUAPZZ";

/// A rule's country: an ISO 3166-1 alpha-2 code, any case. A code that is
/// none (UK, EL) would never match, so it is refused, with the right one
/// where it is a common mistake.
pub(super) fn country_code(c: &str) -> Result<[u8; 2], String> {
    let code = match c.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            [a.to_ascii_uppercase(), b.to_ascii_uppercase()]
        }
        _ => {
            return Err(format!(
                "country: '{c}' is not a two-letter country code (ISO 3166-1, e.g. CN, SG)"
            ))
        }
    };
    let known = COUNTRY_CODES
        .as_bytes()
        .chunks(2)
        .any(|k| k == code.as_slice());
    if !known {
        let hint = match &code {
            b"UK" => " (the United Kingdom is GB)",
            b"EL" => " (Greece is GR)",
            _ => "",
        };
        return Err(format!(
            "country: '{c}' is no ISO 3166-1 country code{hint}; it would never match"
        ));
    }
    Ok(code)
}

/// A port or `FIRST-LAST` range.
pub(super) fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once(['-', ':']) {
        Some((a, b)) => {
            let (a, b) = (a.parse().ok()?, b.parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => s.parse().ok().map(|p| (p, p)),
    }
}

/// An action by the name `Action::as_str` gives it (the state file).
pub fn parse_action_name(v: &str) -> Option<Action> {
    parse_action(v)
}

pub(super) fn parse_action(v: &str) -> Option<Action> {
    match v {
        "allow" | "accept" => Some(Action::Allow),
        "block" | "drop" => Some(Action::Block),
        "reject" => Some(Action::Reject),
        "log" => Some(Action::Log),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleConfig {
    /// `option name`, else the section name, else `rule#N` (1-based).
    pub name: String,
    pub line: usize,
    /// Device names, group names or MACs; empty = every device.
    pub devices: Vec<String>,
    pub owners: Vec<String>,
    /// Companies whose owners the rule is about (`option parent 'Meta'`:
    /// Meta, Instagram, WhatsApp...).
    pub parents: Vec<String>,
    pub categories: Vec<Category>,
    pub domains: Vec<String>,
    /// Destination networks (AS numbers, from the owner database).
    pub asns: Vec<u32>,
    /// Destination countries (ISO 3166-1 alpha-2, uppercase; from the
    /// owner database's country ranges).
    pub countries: Vec<[u8; 2]>,
    /// IP protocol number (`option proto tcp|udp|icmp`); None = any.
    pub proto: Option<u8>,
    /// Destination port ranges; empty = any.
    pub ports: Vec<(u16, u16)>,
    pub schedule: Option<Schedule>,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub path: PathBuf,
    pub socket: PathBuf,
    pub queue: u16,
    /// Whether the kernel rules drop (true) or pass (false) undecided
    /// traffic while no daemon listens on the queue.
    pub fail_closed: bool,
    pub mode: Mode,
    /// Bytes copied per queued packet (enough for a ClientHello segment).
    pub copy_range: u32,
    pub leases: PathBuf,
    /// Compiled owner database (`phonehome db compile`); None: the
    /// built-in table.
    pub db: Option<PathBuf>,
    pub max_flows: usize,
    pub dns_cache_size: usize,
    /// How a DNS answer for a blocked name is rewritten.
    pub sinkhole: crate::inspect::sinkhole::SinkholeMode,
    /// What a device gets when no rule matches and neither it nor a group
    /// of it says otherwise (`option default`, allow unless set).
    pub default: Action,
    /// Refuse DNS over TLS/QUIC (port 853) so names stay visible.
    pub block_dot: bool,
    /// Refuse the well-known DNS-over-HTTPS endpoints (by name).
    pub block_doh: bool,
    /// Refuse QUIC (UDP 443) so apps fall back to TCP + TLS, whose SNI is
    /// read.
    pub block_quic: bool,
    /// A connection still without a name is decided at its n-th queued
    /// packet (1..=10; the kernel stops queueing at 12).
    pub decide_by: u32,
    /// Bytes all connections waiting for a name may hold together
    /// (`option max_pending`, in KiB; 4096 by default): past it, a
    /// connection that needs more is decided without a name.
    pub max_pending: usize,
    /// What such a connection gets when no rule decides it: allow (fail
    /// open) or block (fail closed).
    pub undecided: Action,
    /// Statistics kept across reboots (flash): written at most every
    /// `state_interval` minutes and at stop. None: not kept.
    pub state: Option<PathBuf>,
    /// Statistics kept across daemon restarts (tmpfs), written every minute.
    pub state_tmp: Option<PathBuf>,
    pub state_interval: u64,
    /// IPFIX collector for finished flows (`ipfix_collector 'ADDR:PORT'`).
    pub ipfix_collector: Option<std::net::SocketAddr>,
    /// A command run when a device reaches an owner for the first time
    /// (`option on_new_owner '/path'`; see `daemon::hook`).
    pub on_new_owner: Option<PathBuf>,
    pub ipfix_domain: u32,
    /// Group allowed to connect to the socket (read-only queries).
    pub socket_group: Option<String>,
    /// Group allowed to change the policy over the socket (besides root).
    pub admin_group: Option<String>,
    /// (option, group, line) of `socket_group` and `admin_group`, for
    /// `check_groups`.
    pub group_options: Vec<(String, String, usize)>,
    pub devices: Vec<DeviceConfig>,
    pub groups: Vec<GroupConfig>,
    pub rules: Vec<RuleConfig>,
}

pub const DEFAULT_SOCKET: &str = "/var/run/phonehome.sock";
/// Largest config file read (a thousand rules fit in a tenth of it).
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;
/// Most rules in one config.
pub const MAX_RULES: usize = 4096;

/// A rule's `list domain` value as names are on the wire: lowercase, `*.`
/// and a trailing dot dropped, Unicode labels in their IDNA (`xn--`) form.
/// URLs and anything else that can never equal a name are refused.
pub fn rule_domain(v: &str) -> Result<String, String> {
    let trimmed = v.trim();
    if trimmed.contains("://") || trimmed.contains('/') || trimmed.contains('@') {
        let host = trimmed
            .split_once("://")
            .map_or(trimmed, |(_, rest)| rest)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or(host);
        let host = host.split(':').next().unwrap_or(host);
        return Err(format!(
            "domain: '{v}' is a URL, not a domain (write '{host}')"
        ));
    }
    let d = trimmed.trim_start_matches("*.").trim_end_matches('.');
    let ascii = crate::inspect::idn::to_ascii(d)
        .ok_or_else(|| format!("domain: '{v}' cannot be written in its IDNA form"))?;
    let labels_ok = ascii.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if ascii.is_empty() || ascii.len() > 253 || !labels_ok {
        return Err(format!(
            "domain: '{v}' is not a domain (letters, digits, '-' and '_' in dot-separated labels)"
        ));
    }
    Ok(ascii)
}

impl Config {
    /// Reads and parses `path`; a file over `MAX_CONFIG_BYTES` is refused
    /// without being read whole.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        use std::io::Read;
        let fail = |message: String| ConfigError {
            path: path.to_path_buf(),
            line: 0,
            message,
        };
        let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(fail(format!(
                "larger than {} KiB; a policy that big is not meant for a router (use groups, owners and categories instead of long lists)",
                MAX_CONFIG_BYTES / 1024
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = 1 + e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count();
            ConfigError {
                path: path.to_path_buf(),
                line,
                message: "not UTF-8 text".into(),
            }
        })?;
        Config::parse(&text, path)
    }

    /// What can never match but is not an error: rules naming an owner no
    /// table or database knows (a typo, or a database not loaded), and
    /// rules for a group nobody is in. Call once the owner database is
    /// installed; each line names the file and line.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let countries = crate::owners::database().map_or((0, 0), |d| d.country_range_count());
        for rule in &self.rules {
            let at = format!(
                "{}:{}: rule '{}'",
                self.path.display(),
                rule.line,
                rule.name
            );
            let mut warn = |what: String| out.push(format!("{at}: {what}"));
            for owner in &rule.owners {
                // Unlisted names are owned by their registrable domain.
                if !owner.contains('.') && !crate::owners::known_owner(owner) {
                    warn(format!("owner '{owner}' is in neither the built-in table nor the owner database; the rule never matches it"));
                }
            }
            let lacking = match countries {
                _ if rule.countries.is_empty() => None,
                (0, 0) => Some("an owner database with countries (option db, compiled from iptoasn or a country MMDB); without one the rule never matches"),
                (0, _) => Some("countries for IPv4 too: the owner database has IPv6 countries only, so the rule never matches an IPv4 destination"),
                (_, 0) => Some("countries for IPv6 too: the owner database has IPv4 countries only, so the rule never matches an IPv6 destination other than NAT64 and IPv4-mapped ones (import ip2asn-combined.tsv or a dual-stack country MMDB)"),
                _ => None,
            };
            if let Some(what) = lacking {
                warn(format!("country needs {what}"));
            }
            for parent in &rule.parents {
                let hosts = crate::owners::hosting_children(parent);
                if !hosts.is_empty() {
                    warn(format!("parent '{parent}' includes {}, which hosts other companies' names: a name served from there (a CNAME to its CDN or cloud) matches too; name the owners you mean with `list owner` to leave those out", hosts.join(" and ")));
                }
                if !crate::owners::known_parent(parent) {
                    warn(format!("parent '{parent}' owns no owner the built-in table or the owner database knows; the rule never matches it"));
                }
            }
            for d in &rule.devices {
                let members = parse_mac(d).is_some()
                    || self.devices.iter().any(|dev| {
                        dev.name.as_deref() == Some(d.as_str()) || dev.groups.iter().any(|g| g == d)
                    });
                if !members {
                    warn(format!(
                        "group '{d}' has no devices; the rule applies to nobody until one lists it"
                    ));
                }
            }
        }
        out
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let sections = parse_uci(text, path)?;
        let err = |line: usize, message: String| ConfigError {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut cfg = Config::defaults(path);
        let mut rule_no = 0;
        for s in &sections {
            match s.kind.as_str() {
                "phonehome" => {
                    for (k, v, line) in &s.options {
                        cfg.set_main_option(k, v, line, &err)?;
                    }
                }
                "device" => cfg.devices.push(device_section(s, &err)?),
                "group" => cfg.groups.push(group_section(s, &err)?),
                "rule" => {
                    rule_no += 1;
                    if rule_no > MAX_RULES {
                        return Err(err(s.line, format!("more than {MAX_RULES} rules")));
                    }
                    cfg.rules.push(rule_section(s, rule_no, &err)?);
                }
                other => {
                    return Err(err(
                        s.line,
                        format!(
                            "unknown section type '{other}' (expected phonehome, device, group or rule)"
                        ),
                    ))
                }
            }
        }
        cfg.check_rules(&err)?;
        Ok(cfg)
    }

    /// Refuses a `socket_group` or `admin_group` that `exists` (the
    /// router's group database, read by the daemon) does not know, with
    /// the line that names it.
    pub fn check_groups(&self, exists: impl Fn(&str) -> bool) -> Result<(), ConfigError> {
        match self.group_options.iter().find(|(_, g, _)| !exists(g)) {
            Some((k, g, line)) => Err(ConfigError {
                path: self.path.clone(),
                line: *line,
                message: format!("{k}: no group '{g}'"),
            }),
            None => Ok(()),
        }
    }

    /// The settings a config without a `phonehome` section has.
    fn defaults(path: &Path) -> Config {
        Config {
            path: path.to_path_buf(),
            socket: DEFAULT_SOCKET.into(),
            queue: 0,
            fail_closed: false,
            mode: Mode::Enforce,
            copy_range: 65535,
            leases: "/tmp/dhcp.leases".into(),
            db: None,
            max_flows: 16384,
            dns_cache_size: 8192,
            sinkhole: crate::inspect::sinkhole::SinkholeMode::Zero,
            default: Action::Allow,
            block_dot: false,
            block_doh: false,
            block_quic: false,
            decide_by: 16,
            max_pending: 4 << 20,
            undecided: Action::Allow,
            state: None,
            state_tmp: None,
            state_interval: 60,
            socket_group: None,
            admin_group: None,
            group_options: Vec::new(),
            ipfix_collector: None,
            on_new_owner: None,
            ipfix_domain: 1,
            devices: Vec::new(),
            groups: Vec::new(),
            rules: Vec::new(),
        }
    }

    /// Rule names are unique (`flows`, `watch` and `policy check` name
    /// rules: one name, one rule), and every device a rule names exists.
    fn check_rules(&self, err: &ErrAt<'_>) -> Result<(), ConfigError> {
        let cfg = self;
        // Rules are named by `flows`, `watch` and `policy check`: one name,
        // one rule.
        let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for rule in &cfg.rules {
            if let Some(first) = seen.insert(&rule.name, rule.line) {
                return Err(err(
                    rule.line,
                    format!("rule '{}' is defined twice (first at line {first}); rule names must be unique", rule.name),
                ));
            }
        }
        // Every device named by a rule must exist as a device, group or MAC.
        for rule in &cfg.rules {
            for d in &rule.devices {
                let known = parse_mac(d).is_some()
                    || cfg.groups.iter().any(|g| &g.name == d)
                    || cfg.devices.iter().any(|dev| {
                        dev.name.as_deref() == Some(d.as_str()) || dev.groups.iter().any(|g| g == d)
                    });
                if !known {
                    return Err(err(
                        rule.line,
                        format!("rule '{}': no device or group named '{d}'", rule.name),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_written_as_lowercase_hex_pairs() {
        assert_eq!(
            format_mac(&[0x02, 0, 0xab, 0xcd, 0xef, 0x1f]),
            "02:00:ab:cd:ef:1f"
        );
        assert_eq!(format_mac(&[0xff; 6]), "ff:ff:ff:ff:ff:ff");
        for mac in [
            [0u8; 6],
            [1, 2, 3, 4, 5, 6],
            [0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34],
        ] {
            assert_eq!(parse_mac(&format_mac(&mac)), Some(mac));
        }
    }

    const SAMPLE: &str = "\
config phonehome 'main'
\toption socket '/tmp/ph.sock'
\toption queue '3'
\toption mode 'observe'   # comment

config device
\toption mac '02:00:00:00:77:02'
\toption name 'phone'
\tlist group 'kids'

config rule 'no_xiaomi'
\toption device 'kids'
\tlist owner 'Xiaomi'
\tlist owner \"Alibaba Cloud\"
\toption action 'block'

config rule
\toption category advertising
\toption action log
";

    #[test]
    fn groups_are_checked_by_the_router_not_the_parser() {
        let text = "config phonehome 'main'\n\toption socket_group 'phonehome'\n\toption admin_group 'wheel'\n";
        let cfg = Config::parse(text, Path::new("t.conf")).unwrap();
        assert_eq!(cfg.socket_group.as_deref(), Some("phonehome"));
        assert!(cfg.check_groups(|_| true).is_ok());
        let e = cfg.check_groups(|g| g == "phonehome").unwrap_err();
        assert_eq!(e.to_string(), "t.conf:3: admin_group: no group 'wheel'");
    }

    #[test]
    fn parses_the_design_example() {
        let cfg = Config::parse(SAMPLE, Path::new("t")).unwrap();
        assert_eq!(cfg.socket, PathBuf::from("/tmp/ph.sock"));
        assert_eq!((cfg.queue, cfg.mode), (3, Mode::Observe));
        assert_eq!(cfg.devices[0].groups, vec!["kids"]);
        assert_eq!(cfg.rules[0].name, "no_xiaomi");
        assert_eq!(cfg.rules[0].owners, vec!["Xiaomi", "Alibaba Cloud"]);
        assert_eq!(cfg.rules[1].name, "rule#2");
        assert_eq!(cfg.rules[1].action, Action::Log);
    }

    /// Hours that overflow `h * 60` in a u16 are refused, not a panic.
    #[test]
    fn clock_times_out_of_range_are_refused() {
        for bad in ["2220:0", "65535:59", "24:00", "12:60", "1:2:60"] {
            assert_eq!(parse_clock(bad), None, "{bad}");
        }
        assert_eq!(parse_clock("23:59"), Some(23 * 60 + 59));
    }

    #[test]
    fn errors_name_the_line() {
        let bad = SAMPLE.replace("option action 'block'", "option action 'blokc'");
        let e = Config::parse(&bad, Path::new("/etc/config/phonehome")).unwrap_err();
        assert_eq!(e.line, 15);
        assert!(e
            .to_string()
            .starts_with("/etc/config/phonehome:15: action: 'blokc'"));
        let e = Config::parse("config rule\n\toption owner 'x\n", Path::new("f")).unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "unterminated single quote")
        );
        let e = Config::parse("\toption a b\n", Path::new("f")).unwrap_err();
        assert_eq!(e.line, 1);
        let e = Config::parse(
            "config rule\n\toption device 'nobody'\n\toption action block\n",
            Path::new("f"),
        )
        .unwrap_err();
        assert_eq!(e.line, 1);
    }

    /// What can never match is refused with its line (or converted to
    /// what is on the wire), and what may match later is a warning.
    #[test]
    fn rules_that_can_never_match_are_refused_or_converted() {
        let rule = |body: &str| {
            format!("config device\n\toption mac '02:00:00:00:77:02'\n\toption name 'phone'\n\nconfig rule 'r'\n{body}\toption action 'block'\n")
        };
        let cfg = Config::parse(
            &rule("\tlist domain 'Bücher.Example.'\n\tlist domain '*.miui.com'\n"),
            Path::new("f"),
        )
        .unwrap();
        assert_eq!(cfg.rules[0].domains, ["xn--bcher-kva.example", "miui.com"]);
        for (bad, says) in [
            (
                "https://miui.com/",
                "is a URL, not a domain (write 'miui.com')",
            ),
            ("miui.com/path", "is a URL"),
            (
                "http://user@tracker.example:8080/x",
                "(write 'tracker.example')",
            ),
            ("miui com", "is not a domain"),
            ("a..b", "is not a domain"),
            ("", "is not a domain"),
        ] {
            let e = Config::parse(&rule(&format!("\tlist domain '{bad}'\n")), Path::new("f"))
                .unwrap_err();
            assert_eq!(e.line, 6, "{bad}");
            assert!(e.message.contains(says), "{bad}: {}", e.message);
        }
        // Two rules of one name: `flows` and `policy check` could not tell
        // them apart.
        let twice =
            "config rule 'x'\n\toption action block\nconfig rule 'x'\n\toption action allow\n";
        let e = Config::parse(twice, Path::new("f")).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.message.contains("defined twice (first at line 1)"),
            "{}",
            e.message
        );
        // Unknown owners and empty groups: warnings with file and line.
        let cfg = Config::parse(
            &format!("config group 'kids'\n{}", rule("\tlist owner 'Xiaomy'\n\tlist owner 'Xiaomi'\n\tlist owner 'example.org'\n\toption device 'kids'\n")),
            Path::new("f"),
        )
        .unwrap();
        let w = cfg.warnings();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("f:6: rule 'r': owner 'Xiaomy' is in neither"),
            "{w:?}"
        );
        assert!(w[1].contains("group 'kids' has no devices"), "{w:?}");
    }

    #[test]
    fn huge_configs_are_refused_before_they_are_read_whole() {
        let dir = std::env::temp_dir().join(format!("phonehome-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big");
        let one = "config rule\n\tlist owner 'Xiaomi'\n\toption action block\n";
        std::fs::write(&path, one.repeat(MAX_CONFIG_BYTES / one.len() + 1)).unwrap();
        let e = Config::load(&path).unwrap_err();
        assert!(e.to_string().contains("larger than 1024 KiB"), "{e}");
        let many = one.repeat(MAX_RULES + 1);
        assert!(many.len() < MAX_CONFIG_BYTES);
        let e = Config::parse(&many, &path).unwrap_err();
        assert_eq!(e.line, MAX_RULES * 3 + 1);
        assert!(e.message.contains("more than 4096 rules"));
        let e =
            Config::parse("config phonehome\n\toption socket '/tmp/a\0b'\n", &path).unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "control character U+0000 in the line")
        );
        std::fs::write(&path, b"config rule\n\toption owner '\xff'\n").unwrap();
        assert_eq!(Config::load(&path).unwrap_err().line, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn enforcement_options_and_their_errors() {
        let cfg = Config::parse(
            "config phonehome\n\toption sinkhole nxdomain\n\toption default block\n             \toption block_dot 1\n\toption block_quic yes\n\toption decide_by 4\n\toption undecided block\n             config group 'lockdown'\n\toption default reject\n             config device\n\toption mac '02:00:00:00:77:02'\n\toption default allow\n\tlist group lockdown\n             config rule\n\toption device lockdown\n\tlist asn 'AS45102 4134'\n\toption proto udp\n\tlist port '443'\n\tlist port '8000-8100'\n             \toption start_time '22:30'\n\toption stop_time '06:00:00'\n\toption weekdays 'Sat Sun'\n\toption action reject\n",
            Path::new("t"),
        )
        .unwrap();
        assert_eq!(
            cfg.sinkhole,
            crate::inspect::sinkhole::SinkholeMode::NxDomain
        );
        assert_eq!(
            (cfg.default, cfg.undecided, cfg.decide_by),
            (Action::Block, Action::Block, 4)
        );
        assert!(cfg.block_dot && cfg.block_quic && !cfg.block_doh);
        assert_eq!(cfg.groups[0].default, Some(Action::Reject));
        assert_eq!(cfg.devices[0].default, Some(Action::Allow));
        let r = &cfg.rules[0];
        assert_eq!(r.asns, vec![45102, 4134]);
        assert_eq!(
            (r.proto, r.ports.clone()),
            (Some(17), vec![(443, 443), (8000, 8100)])
        );
        let s = r.schedule.unwrap();
        assert_eq!(
            (s.start, s.stop, s.weekdays),
            (Some(22 * 60 + 30), Some(6 * 60), 0b110_0000)
        );
        assert!(s.contains(LocalTime {
            minute_of_day: 23 * 60,
            weekday: 5
        }));
        assert!(!s.contains(LocalTime {
            minute_of_day: 23 * 60,
            weekday: 4
        }));
        assert!(!s.contains(LocalTime {
            minute_of_day: 12 * 60,
            weekday: 6
        }));
        for (bad, line, msg) in [
            (
                "config phonehome\n\toption sinkhole maybe\n",
                2,
                "sinkhole: 'maybe'",
            ),
            (
                "config phonehome\n\n\toption decide_by 17\n",
                3,
                "decide_by",
            ),
            (
                "config rule\n\toption port 70000\n\toption action block\n",
                2,
                "port: '70000'",
            ),
            (
                "config rule\n\toption start_time 25:00\n\toption action block\n",
                2,
                "start_time",
            ),
            (
                "config rule\n\toption weekdays Funday\n\toption action block\n",
                2,
                "weekdays: 'Funday'",
            ),
            (
                "config rule\n\toption asn ASX\n\toption action block\n",
                2,
                "asn: 'ASX'",
            ),
            (
                "config rule\n\toption proto icmp\n\toption port 1\n\toption action block\n",
                1,
                "ports need",
            ),
            (
                "config group\n\toption default block\n",
                1,
                "group section without a name",
            ),
            (
                "config device\n\toption mac '02:00:00:00:77:02'\n\toption default log\n",
                3,
                "default: 'log'",
            ),
        ] {
            let e = Config::parse(bad, Path::new("f")).unwrap_err();
            assert_eq!(e.line, line, "{bad}: {e}");
            assert!(e.message.contains(msg), "{bad}: {e}");
        }
    }

    #[test]
    fn macs() {
        assert_eq!(parse_mac("02:00:00:00:77:02"), Some([2, 0, 0, 0, 0x77, 2]));
        assert_eq!(
            parse_mac("02-00-00-00-77-0A")
                .map(|m| format_mac(&m))
                .as_deref(),
            Some("02:00:00:00:77:0a")
        );
        assert!(parse_mac("02:00:00:00:77").is_none());
        assert!(parse_mac("02:00:00:00:77:02:01").is_none());
    }
}
