//! The command line's flags, after ripgrep's `flags/`: every flag is
//! defined once (`FLAGS`: its names, the value it takes, its help), every
//! command says which flags it takes (`COMMANDS`), and parsing happens in
//! two steps. The first (`parse`) turns the arguments into low-level
//! `Args` with lexopt: the command, its flags' values and the positional
//! arguments. A flag the command does not take is refused, naming the
//! ones it does (`status --fail-closed` is a usage error). The second is
//! each command's own: it turns `Args` into what it needs with the
//! checked accessors here (`device`, `range`, `number`), so a bad value
//! is a usage error that names the flag.

use std::ffi::OsString;
use std::path::PathBuf;

use lexopt::prelude::*;

use super::CliError;
use crate::policy::config::DEFAULT_SOCKET;
use crate::report::stats::TimeRange;

/// One flag: `--long`, an optional `-s`, the value it takes (its name in
/// the help) or None for a switch, and a line of help.
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    pub value: Option<&'static str>,
    pub help: &'static str,
}

const fn flag(long: &'static str, value: Option<&'static str>, help: &'static str) -> Flag {
    Flag {
        long,
        short: None,
        value,
        help,
    }
}

pub const FLAGS: &[Flag] = &[
    flag(
        "socket",
        Some("PATH"),
        "daemon socket [default: /var/run/phonehome.sock]",
    ),
    flag("json", None, "print one JSON document instead of a table"),
    flag(
        "device",
        Some("MAC"),
        "only this device (a MAC, or the address of a device without one)",
    ),
    flag(
        "since",
        Some("WHEN"),
        "from WHEN: now, 90m, 2h, 7d (ago), Unix seconds, YYYY-MM-DD[THH:MM] (UTC)",
    ),
    flag("until", Some("WHEN"), "up to WHEN (default now)"),
    flag(
        "before",
        Some("RANGE"),
        "the earlier range, WHEN..WHEN (e.g. -2d..-1d)",
    ),
    flag(
        "after",
        Some("RANGE"),
        "the later range, WHEN..WHEN (e.g. 1d..now)",
    ),
    flag(
        "range",
        Some("RANGE"),
        "the range both devices are compared in [default: all]",
    ),
    flag(
        "by",
        Some("KEY"),
        "top: rank by bytes, flows, blocked or country [default: bytes]; \
         series, report: a line per owner, category or device [default: owner]",
    ),
    Flag {
        short: Some('n'),
        ..flag("n", Some("N"), "how many [default: 10]")
    },
    flag("blocked", None, "only blocked connections"),
    flag(
        "new-owners",
        None,
        "only first contacts: a device reaching an owner it never had",
    ),
    Flag {
        short: Some('c'),
        ..flag(
            "config",
            Some("FILE"),
            "the UCI config (e.g. /etc/config/phonehome)",
        )
    },
    flag(
        "backend",
        Some("KIND"),
        "iptables, nft or fw4 [default: iptables]",
    ),
    flag(
        "queue",
        Some("N"),
        "NFQUEUE number [default: 0; -c FILE's option queue]",
    ),
    flag(
        "fail-closed",
        None,
        "drop undecided connections while the daemon is down",
    ),
    flag("out", Some("FILE"), "write to FILE"),
    flag(
        "from",
        Some("FILE"),
        "a saved report document (report --json, analyze --json) instead of the daemon",
    ),
    flag("db", Some("FILE"), "a compiled owner database"),
    flag(
        "psl",
        Some("FILE"),
        "the Public Suffix List (public_suffix_list.dat)",
    ),
    flag("no-builtin", None, "leave the built-in owner table out"),
    flag("flows", None, "also print every flow"),
    flag("name", Some("DOMAIN"), "the name the device connects to"),
    flag("ip", Some("ADDR"), "the address it connects to"),
    flag("proto", Some("PROTO"), "tcp or udp [default: tcp]"),
    flag("port", Some("N"), "destination port [default: 443]"),
    flag(
        "time",
        Some("WHEN"),
        "'Mon 23:00' or '23:00' [default: now]",
    ),
];

/// One command (or command and verb: `db compile`): the flags it takes,
/// its positional arguments as the help shows them, and what it does.
pub struct Command {
    pub name: &'static str,
    pub flags: &'static [&'static str],
    pub positional: &'static str,
    pub about: &'static str,
}

const QUERY: &[&str] = &["socket", "json", "device", "since", "until"];

pub const COMMANDS: &[Command] = &[
    Command { name: "run", flags: &["config"], positional: "", about: "run the daemon in the foreground" },
    Command { name: "status", flags: &["socket", "json"], positional: "", about: "daemon counters: packets, verdicts, flows, memory" },
    Command { name: "devices", flags: QUERY, positional: "", about: "per device: MAC, addresses, hostname, flows, blocked, bytes" },
    Command { name: "owners", flags: QUERY, positional: "", about: "per destination owner: category, flows, blocked, bytes, domains" },
    Command { name: "flows", flags: &["socket", "json", "device"], positional: "", about: "recent and active connections with their verdict and rule" },
    Command { name: "top", flags: &["socket", "json", "device", "since", "until", "by", "n"], positional: "", about: "the owners (or countries) with the most bytes, flows or blocked" },
    Command { name: "diff", flags: &["socket", "json", "device", "before", "after", "range"], positional: "", about: "what changed between two ranges or two devices" },
    Command { name: "series", flags: &["socket", "json", "device", "since", "until", "by", "n"], positional: "", about: "connections over time per owner, category or device, as JSON (default: the last 24 hours)" },
    Command { name: "report", flags: &["socket", "json", "device", "since", "until", "before", "after", "by", "n", "out", "from"], positional: "", about: "one HTML page to open in a browser or attach: who the devices talk to, what was blocked, how it changed (--json: the document)" },
    Command { name: "watch", flags: &["socket", "json", "device", "blocked", "new-owners"], positional: "", about: "decisions and first contacts as they happen, until ^C" },
    Command { name: "metrics", flags: &["socket", "out"], positional: "", about: "Prometheus text exposition (--out: written atomically)" },
    Command { name: "reload", flags: &["socket"], positional: "", about: "re-read the config; a bad one is refused, the old policy stays" },
    Command { name: "firewall", flags: &["backend", "config", "queue", "fail-closed"], positional: "up|down|print", about: "install, remove or print the kernel rules the daemon needs" },
    Command { name: "db compile", flags: &["out", "psl", "no-builtin"], positional: "SOURCE...", about: "compile an owner database (SOURCE: KIND:PATH[,owner=NAME][,category=CAT][,networks=owned])" },
    Command { name: "db lookup", flags: &["db", "json"], positional: "NAME_OR_IP", about: "look a name or address up in an owner database" },
    Command { name: "policy check", flags: &["config", "device", "name", "ip", "proto", "port", "time", "db", "json"], positional: "", about: "which rule a device's connection hits" },
    Command { name: "analyze", flags: &["config", "db", "device", "flows", "json"], positional: "FILE|-", about: "the daemon's pipeline over a capture" },
];

/// The commands that take a verb: `db compile`, `policy check`.
const WITH_VERB: &[&str] = &["db", "policy"];

pub const USAGE: &str = "\
phonehome — shows and stops what phones send home

USAGE:
    phonehome run -c FILE
    phonehome [--socket PATH] status [--json]
    phonehome [--socket PATH] devices|owners [--json] [--device MAC] [--since WHEN] [--until WHEN]
    phonehome [--socket PATH] flows [--json] [--device MAC]
    phonehome [--socket PATH] top [--by bytes|flows|blocked|country] [-n N] [--device MAC]
                              [--since WHEN] [--until WHEN] [--json]
    phonehome [--socket PATH] diff --device MAC --before RANGE --after RANGE [--json]
    phonehome [--socket PATH] diff --device MAC --device MAC [--range RANGE] [--json]
    phonehome [--socket PATH] series [--by owner|category|device] [-n N] [--device MAC]
                              [--since WHEN] [--until WHEN] [--json]
    phonehome [--socket PATH] report [--out FILE.html] [--device MAC] [--since WHEN] [--until WHEN]
                              [--before RANGE --after RANGE] [--json]
    phonehome report --from DOCUMENT.json [--out FILE.html]
    phonehome [--socket PATH] watch [--device MAC] [--blocked | --new-owners] [--json]
    phonehome [--socket PATH] metrics [--out FILE]
    phonehome [--socket PATH] reload
    phonehome firewall up|down|print [--backend iptables|nft|fw4] [-c FILE]
                                     [--queue N] [--fail-closed]
    phonehome db compile --out FILE [--psl FILE] [--no-builtin] SOURCE...
    phonehome db lookup --db FILE NAME_OR_IP [--json]
    phonehome policy check -c FILE --device MAC|NAME [--name DOMAIN] [--ip ADDR]
                           [--proto tcp|udp] [--port N] [--time 'DAY HH:MM'] [--db FILE] [--json]
    phonehome analyze FILE|- [-c FILE] [--db FILE] [--device MAC] [--flows] [--json]
    phonehome COMMAND --help | --version | --help

COMMANDS:
    run        run the daemon in the foreground (config: UCI, e.g. /etc/config/phonehome)
    status     daemon counters: packets, verdicts, flows, memory
    devices    per device: MAC, addresses, hostname, flows, blocked, bytes
    owners     per destination owner: category, flows, blocked, bytes, domains
    flows      recent and active connections with their verdict and rule
    top        the owners with the most bytes (or flows, blocked) in a time range
    diff       what changed between two time ranges (or two devices): owners that
               appeared, vanished, grew or shrank
    series     connections over time per owner (or category, device) in minute, hour
               or day buckets, as JSON for charts [default: the last 24 hours]
    report     one self-contained HTML page (no network needed to open it): which
               companies each device talks to, what was blocked, the timeline, and
               with --before/--after what changed; to --out FILE or stdout. --json
               prints the document; --from draws a saved one (analyze --json of a
               capture) [default range: the last 24 hours]
    watch      decisions as they happen (one line each, or JSON lines), until ^C
    metrics    Prometheus text exposition: daemon health, per-device and per-owner
               counters (--out FILE: written atomically, for node-exporter's
               textfile collector)
    reload     re-read the config; a bad config is refused, the old policy stays
    db         compile the owner database from lists (SOURCE is KIND:PATH[,owner=NAME]
               [,category=CAT][,networks=owned]; kinds: hosts domains abp whotracksme
               trackerdb tds tracker-radar disconnect disconnect-entities iptoasn mmdb),
               or look a name or address up in one
    firewall   install, remove or print the kernel rules the daemon needs
               (queue number and fail_closed from -c FILE, else the flags)
    analyze    the daemon's pipeline over a capture (pcap or pcapng from tcpdump,
               Wireshark or a phone app; - reads standard input): devices, owners
               and, with --flows, every flow, with what the policy of -c FILE
               would have blocked (without -c: everything allowed)
    policy     check: which rule a device's connection to a name/address hits
               (and whether its DNS answer would be sinkholed), with the config
               and owner database the daemon would use; --time defaults to now

OPTIONS:
    --socket PATH   daemon socket [default: /var/run/phonehome.sock]
    --json          print one JSON document instead of a table
    --device MAC    only this device
    --since WHEN    from WHEN: 'now', '90m', '2h', '7d' (ago), Unix seconds, or
                    'YYYY-MM-DD[THH:MM]' (UTC); --until WHEN: up to (default now)
    RANGE           WHEN..WHEN, e.g. '-2d..-1d', '1h..now'
    `phonehome COMMAND --help` lists the flags a command takes.
";

/// What the command line asks for.
pub enum Parsed {
    /// The help of these commands (none: the general usage).
    Help(Vec<&'static Command>),
    Version,
    Run(&'static Command, Args),
}

/// Low-level arguments: each flag's values in the order given, and the
/// positional arguments after the command (and its verb).
pub struct Args {
    values: Vec<(&'static str, String)>,
    switches: Vec<&'static str>,
    pub positional: Vec<String>,
}

fn find_flag(long: &str) -> Option<&'static Flag> {
    FLAGS.iter().find(|f| f.long == long)
}

fn find_command(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Reads the arguments: flags may come before or after the command; each
/// must be one the command takes.
pub fn parse(args: Vec<OsString>) -> Result<Parsed, CliError> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut given: Vec<(&'static Flag, Option<String>)> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut help = false;
    while let Some(arg) = parser.next()? {
        let flag = match &arg {
            Long("help") | Short('h') => {
                help = true;
                continue;
            }
            Long("version") | Short('V') => return Ok(Parsed::Version),
            Long(name) => find_flag(name),
            Short(c) => FLAGS.iter().find(|f| f.short == Some(*c)),
            Value(v) => {
                words.push(v.clone().string()?);
                continue;
            }
        };
        let Some(flag) = flag else {
            return Err(arg.unexpected().into());
        };
        let value = match flag.value {
            Some(_) => Some(parser.value()?.string()?),
            None => None,
        };
        given.push((flag, value));
    }
    let mut words = words.into_iter();
    let Some(first) = words.next() else {
        if help {
            return Ok(Parsed::Help(Vec::new()));
        }
        return Err(CliError::Usage("no command given (try --help)".into()));
    };
    let name = if WITH_VERB.contains(&first.as_str()) {
        match words.next() {
            Some(verb) => format!("{first} {verb}"),
            // `db --help`: the help of every `db` command.
            None if help => {
                let prefix = format!("{first} ");
                return Ok(Parsed::Help(
                    COMMANDS
                        .iter()
                        .filter(|c| c.name.starts_with(&prefix))
                        .collect(),
                ));
            }
            None => return Err(CliError::Usage(verbs_of(&first))),
        }
    } else {
        first.clone()
    };
    let Some(command) = find_command(&name) else {
        if WITH_VERB.contains(&first.as_str()) {
            return Err(CliError::Usage(verbs_of(&first)));
        }
        if help {
            return Ok(Parsed::Help(Vec::new()));
        }
        return Err(CliError::Usage(format!(
            "unknown command '{first}' (try --help)"
        )));
    };
    if help {
        return Ok(Parsed::Help(vec![command]));
    }
    let mut args = Args {
        values: Vec::new(),
        switches: Vec::new(),
        positional: words.collect(),
    };
    for (flag, value) in given {
        if !command.flags.contains(&flag.long) {
            return Err(CliError::Usage(format!(
                "{} does not take --{} (it takes: {})",
                command.name,
                flag.long,
                takes(command)
            )));
        }
        match value {
            Some(v) => args.values.push((flag.long, v)),
            None => args.switches.push(flag.long),
        }
    }
    Ok(Parsed::Run(command, args))
}

/// How the help and errors name a flag: `-n`, `--json`.
fn flag_name(long: &str) -> String {
    if long.len() == 1 {
        format!("-{long}")
    } else {
        format!("--{long}")
    }
}

fn verbs_of(word: &str) -> String {
    let verbs: Vec<&str> = COMMANDS
        .iter()
        .filter_map(|c| c.name.strip_prefix(word)?.strip_prefix(' '))
        .map(|v| v.trim())
        .collect();
    format!("{word} needs '{}'", verbs.join("' or '"))
}

fn takes(command: &Command) -> String {
    if command.flags.is_empty() {
        return "no flags".into();
    }
    command
        .flags
        .iter()
        .map(|f| flag_name(f))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `phonehome COMMAND --help`: the command's flags, from their definitions.
pub fn command_help(command: &Command) -> String {
    let mut out = format!(
        "phonehome {} — {}\n\nUSAGE:\n    phonehome {}{}{}\n",
        command.name,
        command.about,
        command.name,
        if command.flags.is_empty() {
            ""
        } else {
            " [FLAGS]"
        },
        if command.positional.is_empty() {
            String::new()
        } else {
            format!(" {}", command.positional)
        }
    );
    if !command.flags.is_empty() {
        out.push_str("\nFLAGS:\n");
        for long in command.flags {
            let f = find_flag(long).expect("every command's flag is defined");
            let names = match f.short {
                Some(_) if f.long.len() == 1 => flag_name(f.long),
                Some(s) => format!("-{s}, --{}", f.long),
                None => format!("--{}", f.long),
            };
            let names = match f.value {
                Some(v) => format!("{names} {v}"),
                None => names,
            };
            out.push_str(&format!("    {names:<22} {}\n", f.help));
        }
    }
    out
}

impl Args {
    /// The flag's last value.
    pub fn value(&self, long: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(l, _)| *l == long)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a flag given more than once (`diff --device A --device B`).
    pub fn values(&self, long: &str) -> Vec<&str> {
        self.values
            .iter()
            .filter(|(l, _)| *l == long)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn switch(&self, long: &str) -> bool {
        self.switches.contains(&long)
    }

    pub fn json(&self) -> bool {
        self.switch("json")
    }

    pub fn path(&self, long: &str) -> Option<PathBuf> {
        self.value(long).map(PathBuf::from)
    }

    /// A path the command cannot go without.
    pub fn required_path(&self, long: &str, command: &str) -> Result<PathBuf, CliError> {
        let what = match find_flag(long) {
            Some(Flag {
                short: Some(s),
                value: Some(v),
                ..
            }) => format!("-{s} {v}"),
            Some(Flag { value: Some(v), .. }) => format!("--{long} {v}"),
            _ => format!("--{long}"),
        };
        self.path(long)
            .ok_or_else(|| CliError::Usage(format!("{command} needs {what}")))
    }

    pub fn socket(&self) -> Result<PathBuf, CliError> {
        let socket = self.path("socket").unwrap_or_else(|| DEFAULT_SOCKET.into());
        if socket.as_os_str().as_encoded_bytes().contains(&0) {
            return Err(CliError::Usage(
                "--socket: the path holds a NUL byte".into(),
            ));
        }
        Ok(socket)
    }

    /// A number flag, or its default.
    pub fn number<T: std::str::FromStr>(&self, long: &str, default: T) -> Result<T, CliError> {
        match self.value(long) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                CliError::Usage(format!("{}: '{v}' is not a number", flag_name(long)))
            }),
        }
    }

    /// Every `--device`, lowercased: the key the daemon counts under (a
    /// MAC, or the address of a device whose MAC is unknown).
    pub fn devices(&self) -> Result<Vec<String>, CliError> {
        self.values("device")
            .into_iter()
            .map(|d| {
                let d = d.to_ascii_lowercase();
                if crate::policy::config::parse_mac(&d).is_none()
                    && d.parse::<std::net::IpAddr>().is_err()
                {
                    return Err(CliError::Usage(format!(
                        "--device: '{d}' is not a MAC (aa:bb:cc:dd:ee:ff) or an address"
                    )));
                }
                Ok(d)
            })
            .collect()
    }

    /// The first `--device`, checked as `devices` does.
    pub fn device(&self) -> Result<Option<String>, CliError> {
        Ok(self.devices()?.into_iter().next())
    }

    /// `--since` and `--until`.
    pub fn range(&self) -> Result<TimeRange, CliError> {
        super::time::time_range(self.value("since"), self.value("until"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Parsed, CliError> {
        parse(args.iter().map(OsString::from).collect())
    }

    fn usage_error(args: &[&str]) -> String {
        match parse_str(args) {
            Err(CliError::Usage(m)) => m,
            _ => panic!("{args:?} parsed"),
        }
    }

    #[test]
    fn each_command_takes_only_its_own_flags() {
        let m = usage_error(&["status", "--fail-closed"]);
        assert_eq!(
            m,
            "status does not take --fail-closed (it takes: --socket, --json)"
        );
        assert!(usage_error(&["run", "--json", "-c", "x"]).contains("run does not take --json"));
        assert!(usage_error(&["db", "lookup", "--out", "x"]).contains("--out"));
        assert!(usage_error(&["--nope", "status"]).contains("nope"));
        assert_eq!(usage_error(&["db"]), "db needs 'compile' or 'lookup'");
        assert_eq!(usage_error(&["policy", "nope"]), "policy needs 'check'");
        assert_eq!(usage_error(&[]), "no command given (try --help)");
        assert!(usage_error(&["frobnicate"]).contains("unknown command 'frobnicate'"));
    }

    #[test]
    fn flags_before_or_after_the_command_and_repeated() {
        let Ok(Parsed::Run(c, a)) = parse_str(&[
            "--socket",
            "/tmp/s",
            "diff",
            "--device",
            "AA:bb:cc:dd:ee:01",
            "--json",
            "--device",
            "10.0.0.2",
        ]) else {
            panic!("not parsed")
        };
        assert_eq!(c.name, "diff");
        assert_eq!(a.socket().unwrap(), PathBuf::from("/tmp/s"));
        assert!(a.json());
        assert_eq!(
            a.devices().unwrap(),
            ["aa:bb:cc:dd:ee:01".to_string(), "10.0.0.2".to_string()]
        );
        let Ok(Parsed::Run(c, a)) = parse_str(&["db", "compile", "--out", "o.db", "hosts:h"])
        else {
            panic!("not parsed")
        };
        assert_eq!(
            (c.name, a.positional.as_slice()),
            ("db compile", &["hosts:h".to_string()][..])
        );
        let Ok(Parsed::Run(_, a)) = parse_str(&["top", "-n", "x"]) else {
            panic!("not parsed")
        };
        assert!(
            matches!(a.number("n", 10usize), Err(CliError::Usage(m)) if m == "-n: 'x' is not a number")
        );
    }

    #[test]
    fn help_for_a_command_lists_its_flags_from_their_definitions() {
        let Ok(Parsed::Help(c)) = parse_str(&["top", "--help"]) else {
            panic!("no help")
        };
        let text = command_help(c[0]);
        assert!(text.contains("--by KEY"), "{text}");
        assert!(text.contains("    -n N "), "{text}");
        assert!(!text.contains("--fail-closed"), "{text}");
        assert!(matches!(parse_str(&["--help"]), Ok(Parsed::Help(c)) if c.is_empty()));
        let Ok(Parsed::Help(db)) = parse_str(&["db", "--help"]) else {
            panic!("no help for db")
        };
        let names: Vec<&str> = db.iter().map(|c| c.name).collect();
        assert_eq!(names, ["db compile", "db lookup"]);
        assert!(matches!(parse_str(&["status", "-V"]), Ok(Parsed::Version)));
        // Every command's flags are defined, and every flag is used.
        for c in COMMANDS {
            command_help(c);
        }
        for f in FLAGS {
            assert!(
                COMMANDS.iter().any(|c| c.flags.contains(&f.long)),
                "{}",
                f.long
            );
        }
    }
}
