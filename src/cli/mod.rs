//! CLI: argument parsing (lexopt, tiny) and output. Queries print a table
//! for people by default and one JSON document with `--json`. Errors are
//! one line on stderr, prefixed `phonehome:`, with exit code 2 for usage
//! mistakes and 1 for everything else.

#[cfg(feature = "pcap")]
pub mod analyze;
#[cfg(feature = "pcap")]
pub mod capture;

use std::path::PathBuf;

use lexopt::prelude::*;

use crate::daemon::api::{self, Query, Reply};
use crate::policy::config::DEFAULT_SOCKET;
use crate::policy::firewall::{self, Backend};
use crate::report::stats::{CountryCount, DeviceRow, FlowRow, OwnerRow, StatusRow, TimeRange};

pub const USAGE: &str = "\
phonehome — shows and stops what phones send home

USAGE:
    phonehome run -c FILE
    phonehome [--socket PATH] status|devices|owners|flows [--json] [--device MAC]
                              [--since WHEN] [--until WHEN]
    phonehome [--socket PATH] top [--by bytes|flows|blocked|country] [-n N] [--device MAC]
                              [--since WHEN] [--until WHEN] [--json]
    phonehome [--socket PATH] diff --device MAC --before RANGE --after RANGE [--json]
    phonehome [--socket PATH] diff --device MAC --device MAC [--range RANGE] [--json]
    phonehome [--socket PATH] watch [--device MAC] [--blocked] [--json]
    phonehome [--socket PATH] metrics [--out FILE]
    phonehome [--socket PATH] reload
    phonehome firewall up|down|print [--backend iptables|nft|fw4] [-c FILE]
                                     [--queue N] [--fail-closed]
    phonehome db compile --out FILE [--psl FILE] [--no-builtin] SOURCE...
    phonehome db lookup --db FILE NAME_OR_IP [--json]
    phonehome policy check -c FILE --device MAC|NAME [--name DOMAIN] [--ip ADDR]
                           [--proto tcp|udp] [--port N] [--time 'DAY HH:MM'] [--db FILE] [--json]
    phonehome analyze FILE|- [-c FILE] [--db FILE] [--device MAC] [--flows] [--json]
    phonehome --version | --help

COMMANDS:
    run        run the daemon in the foreground (config: UCI, e.g. /etc/config/phonehome)
    status     daemon counters: packets, verdicts, flows, memory
    devices    per device: MAC, addresses, hostname, flows, blocked, bytes
    owners     per destination owner: category, flows, blocked, bytes, domains
    flows      recent and active connections with their verdict and rule
    top        the owners with the most bytes (or flows, blocked) in a time range
    diff       what changed between two time ranges (or two devices): owners that
               appeared, vanished, grew or shrank
    watch      decisions as they happen (one line each, or JSON lines), until ^C
    metrics    Prometheus text exposition: daemon health, per-device and per-owner
               counters (--out FILE: written atomically, for node-exporter's
               textfile collector)
    reload     re-read the config; a bad config is refused, the old policy stays
    db         compile the owner database from lists (SOURCE is KIND:PATH[,owner=NAME]
               [,category=CAT]; kinds: hosts domains abp whotracksme trackerdb tds
               tracker-radar disconnect disconnect-entities iptoasn mmdb), or look a
               name or address up in one
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
";

pub enum UsageOr {
    Usage(String),
    Failed(String),
}

impl From<lexopt::Error> for UsageOr {
    fn from(e: lexopt::Error) -> Self {
        UsageOr::Usage(e.to_string())
    }
}

/// Parses the command line and runs it.
pub fn main(args: Vec<std::ffi::OsString>) -> Result<(), UsageOr> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut socket = PathBuf::from(DEFAULT_SOCKET);
    let mut command: Option<String> = None;
    let mut json = false;
    let mut device: Option<String> = None;
    let mut devices: Vec<String> = Vec::new();
    let mut since: Option<String> = None;
    let mut until: Option<String> = None;
    let mut before: Option<String> = None;
    let mut after: Option<String> = None;
    let mut range_arg: Option<String> = None;
    let mut by = String::from("bytes");
    let mut top_n: usize = 10;
    let mut watch_blocked = false;
    let mut config: Option<PathBuf> = None;
    let mut positional: Vec<String> = Vec::new();
    let mut backend = Backend::Iptables;
    let mut queue: u16 = 0;
    let mut fail_closed = false;
    let mut out: Option<PathBuf> = None;
    let mut db: Option<PathBuf> = None;
    let mut psl: Option<PathBuf> = None;
    let mut builtin = true;
    let mut check = PolicyQuery::default();
    let mut with_flows = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("socket") => socket = parser.value()?.into(),
            Long("json") => json = true,
            Long("device") => {
                let d = parser.value()?.string()?.to_ascii_lowercase();
                devices.push(d.clone());
                device.get_or_insert(d);
            }
            Long("since") => since = Some(parser.value()?.string()?),
            Long("until") => until = Some(parser.value()?.string()?),
            Long("before") => before = Some(parser.value()?.string()?),
            Long("after") => after = Some(parser.value()?.string()?),
            Long("range") => range_arg = Some(parser.value()?.string()?),
            Long("by") => by = parser.value()?.string()?,
            Short('n') => top_n = parser.value()?.parse()?,
            Long("blocked") => watch_blocked = true,
            Short('c') | Long("config") => config = Some(parser.value()?.into()),
            Long("backend") => {
                backend = match parser.value()?.string()?.as_str() {
                    "iptables" => Backend::Iptables,
                    "nft" => Backend::Nft,
                    "fw4" => Backend::Fw4,
                    other => {
                        return Err(UsageOr::Usage(format!(
                            "unknown backend '{other}' (iptables, nft or fw4)"
                        )))
                    }
                }
            }
            Long("queue") => queue = parser.value()?.parse()?,
            Long("fail-closed") => fail_closed = true,
            Long("out") => out = Some(parser.value()?.into()),
            Long("db") => db = Some(parser.value()?.into()),
            Long("psl") => psl = Some(parser.value()?.into()),
            Long("no-builtin") => builtin = false,
            Long("flows") => with_flows = true,
            Long("name") => check.name = Some(parser.value()?.string()?),
            Long("ip") => {
                let v = parser.value()?.string()?;
                check.ip = Some(
                    v.parse()
                        .map_err(|_| UsageOr::Usage(format!("--ip: '{v}' is not an address")))?,
                )
            }
            Long("port") => check.port = parser.value()?.parse()?,
            Long("proto") => check.proto = parser.value()?.string()?,
            Long("time") => check.time = Some(parser.value()?.string()?),
            Long("version") | Short('V') => {
                println!("phonehome {}", env!("CARGO_PKG_VERSION"));
                return Ok(());
            }
            Long("help") | Short('h') => {
                print!("{USAGE}");
                return Ok(());
            }
            Value(v) => {
                let v = v.string()?;
                if command.is_none() {
                    command = Some(v);
                } else {
                    positional.push(v);
                }
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    let Some(command) = command else {
        return Err(UsageOr::Usage("no command given (try --help)".into()));
    };
    let failed = UsageOr::Failed;
    // Queries filter by the key the daemon counts under: a MAC, or the
    // address of a device whose MAC is unknown. (`policy check` also takes
    // a device name from the config.)
    if command != "policy" {
        for d in &devices {
            if crate::policy::config::parse_mac(d).is_none()
                && d.parse::<std::net::IpAddr>().is_err()
            {
                return Err(UsageOr::Usage(format!(
                    "--device: '{d}' is not a MAC (aa:bb:cc:dd:ee:ff) or an address"
                )));
            }
        }
    }
    if socket.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(UsageOr::Usage("--socket: the path holds a NUL byte".into()));
    }
    if command != "run" {
        // A reader that goes away (`phonehome analyze x.pcap | head`) ends
        // the CLI quietly, as it does C tools. Not the daemon: it writes to
        // client sockets that may close.
        // SAFETY: restoring a default signal disposition before any thread.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match command.as_str() {
        "run" => {
            let config = config.ok_or_else(|| UsageOr::Usage("run needs -c FILE".into()))?;
            crate::daemon::run(&config).map_err(failed)
        }
        "status" => match api::query(&socket, Query::Status).map_err(failed)? {
            Reply::Status(s) => print_status(&s, json),
            other => unexpected(other),
        },
        "devices" => {
            let range = time_range(since.as_deref(), until.as_deref())?;
            match api::query(&socket, Query::Devices { device, range }).map_err(failed)? {
                Reply::Devices(rows) => print_devices(&rows, json),
                other => unexpected(other),
            }
        }
        "owners" => {
            let range = time_range(since.as_deref(), until.as_deref())?;
            match api::query(&socket, Query::Owners { device, range }).map_err(failed)? {
                Reply::Owners(rows) => print_owners(&rows, json),
                other => unexpected(other),
            }
        }
        "watch" => {
            let query = Query::Watch {
                device,
                blocked: watch_blocked,
            };
            let mut out = std::io::stdout();
            api::stream(&socket, query, |reply| {
                use std::io::Write;
                let line = match reply {
                    Reply::Decision(r) if json => serde_json::to_string(&r).unwrap_or_default(),
                    Reply::Decision(r) => format!(
                        "{} {} {} {}:{} {} {} ({}) {}{}",
                        r.first_seen,
                        r.device,
                        r.proto,
                        r.dst,
                        r.dport,
                        r.domain.as_deref().unwrap_or("-"),
                        r.owner,
                        r.category,
                        r.verdict,
                        r.rule.map(|x| format!(" [{x}]")).unwrap_or_default()
                    ),
                    Reply::Skipped { decisions } => {
                        format!("({decisions} decisions skipped: too slow)")
                    }
                    Reply::Error { message } => format!("error: {message}"),
                    _ => return true,
                };
                writeln!(out, "{line}").and_then(|_| out.flush()).is_ok()
            })
            .map_err(failed)
        }
        "metrics" => {
            let status = match api::query(&socket, Query::Status).map_err(failed)? {
                Reply::Status(s) => s,
                other => return unexpected(other),
            };
            let all = TimeRange::default();
            let devices = match api::query(
                &socket,
                Query::Devices {
                    device: None,
                    range: all,
                },
            )
            .map_err(failed)?
            {
                Reply::Devices(rows) => rows,
                other => return unexpected(other),
            };
            let owners = owners_in(&socket, None, all)?;
            let text = crate::report::metrics::render(&status, &devices, &owners);
            match &out {
                Some(path) => {
                    let tmp = path.with_extension("tmp");
                    std::fs::write(&tmp, &text)
                        .and_then(|_| std::fs::rename(&tmp, path))
                        .map_err(|e| failed(format!("{}: {e}", path.display())))
                }
                None => {
                    print!("{text}");
                    Ok(())
                }
            }
        }
        "top" => {
            let range = time_range(since.as_deref(), until.as_deref())?;
            if !matches!(by.as_str(), "bytes" | "flows" | "blocked" | "country") {
                return Err(UsageOr::Usage(format!(
                    "--by: '{by}' (bytes, flows, blocked or country)"
                )));
            }
            let mut rows = owners_in(&socket, device, range)?;
            if by == "country" {
                let mut countries = countries_of(&rows);
                countries.truncate(top_n);
                return print_countries(&countries, json);
            }
            let key = |r: &OwnerRow| match by.as_str() {
                "flows" => r.flows,
                "blocked" => r.blocked,
                _ => r.bytes_up + r.bytes_down,
            };
            rows.sort_by(|a, b| key(b).cmp(&key(a)).then(a.owner.cmp(&b.owner)));
            rows.truncate(top_n);
            print_owners(&rows, json)
        }
        "diff" => {
            let (first, second, label) = match (devices.as_slice(), &before, &after) {
                ([d], Some(b), Some(a)) => (
                    (d.clone(), parse_range(b)?),
                    (d.clone(), parse_range(a)?),
                    ("before", "after"),
                ),
                ([a, b], None, None) => {
                    let r = match &range_arg {
                        Some(r) => parse_range(r)?,
                        None => TimeRange::default(),
                    };
                    ((a.clone(), r), (b.clone(), r), ("first", "second"))
                }
                _ => {
                    return Err(UsageOr::Usage(
                        "diff needs --device MAC --before RANGE --after RANGE, \
                         or --device MAC --device MAC [--range RANGE]"
                            .into(),
                    ))
                }
            };
            let old = owners_in(&socket, Some(first.0), first.1)?;
            let new = owners_in(&socket, Some(second.0), second.1)?;
            print_diff(&owner_diff(&old, &new), label, json)
        }
        "flows" => match api::query(&socket, Query::Flows { device }).map_err(failed)? {
            Reply::Flows(rows) => print_flows(&rows, json),
            other => unexpected(other),
        },
        "reload" => match api::query(&socket, Query::Reload).map_err(failed)? {
            Reply::Reloaded { rules } => {
                println!("reloaded: {rules} rules");
                Ok(())
            }
            other => unexpected(other),
        },
        "db" => match positional.first().map(String::as_str) {
            Some("compile") => {
                let out =
                    out.ok_or_else(|| UsageOr::Usage("db compile needs --out FILE".into()))?;
                let specs = positional[1..]
                    .iter()
                    .map(|a| crate::owners::import::SourceSpec::parse(a))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(UsageOr::Usage)?;
                db_compile(&out, psl.as_deref(), builtin, &specs).map_err(failed)
            }
            Some("lookup") => {
                let db = db.ok_or_else(|| UsageOr::Usage("db lookup needs --db FILE".into()))?;
                let query = positional
                    .get(1)
                    .ok_or_else(|| UsageOr::Usage("db lookup needs a NAME or IP".into()))?;
                db_lookup(&db, query, json)
            }
            _ => Err(UsageOr::Usage("db needs 'compile' or 'lookup'".into())),
        },
        "policy" => match positional.first().map(String::as_str) {
            Some("check") => {
                let config =
                    config.ok_or_else(|| UsageOr::Usage("policy check needs -c FILE".into()))?;
                check.device = device;
                policy_check(&config, db.as_deref(), &check, json)
            }
            _ => Err(UsageOr::Usage("policy needs 'check'".into())),
        },
        "analyze" => {
            let file = match positional.as_slice() {
                [file] => file,
                _ => {
                    return Err(UsageOr::Usage(
                        "analyze needs one capture FILE (or -)".into(),
                    ))
                }
            };
            #[cfg(feature = "pcap")]
            return analyze(
                file,
                config.as_deref(),
                db.as_deref(),
                device.as_deref(),
                with_flows,
                json,
            );
            #[cfg(not(feature = "pcap"))]
            {
                let _ = with_flows;
                Err(failed(format!(
                    "{file}: this phonehome was built without the 'pcap' feature (router \
                     builds leave it out); build one with `cargo build --release --features \
                     pcap` (e.g. on a PC)"
                )))
            }
        }
        "firewall" => {
            let mut opts = firewall::Options {
                backend,
                queue,
                fail_closed,
            };
            if let Some(path) = &config {
                let cfg =
                    crate::policy::config::Config::load(path).map_err(|e| failed(e.to_string()))?;
                opts.queue = cfg.queue;
                opts.fail_closed = cfg.fail_closed;
            }
            match positional.first().map(String::as_str) {
                Some("up") => firewall::up(&opts).map_err(failed),
                Some("down") => firewall::down(&opts).map_err(failed),
                Some("print") => {
                    print!("{}", firewall::render(&opts));
                    Ok(())
                }
                _ => Err(UsageOr::Usage(
                    "firewall needs 'up', 'down' or 'print'".into(),
                )),
            }
        }
        other => Err(UsageOr::Usage(format!(
            "unknown command '{other}' (try --help)"
        ))),
    }
}

/// Owner rows of one device (or all) in a range.
fn owners_in(
    socket: &std::path::Path,
    device: Option<String>,
    range: TimeRange,
) -> Result<Vec<OwnerRow>, UsageOr> {
    match api::query(socket, Query::Owners { device, range }).map_err(UsageOr::Failed)? {
        Reply::Owners(rows) => Ok(rows),
        Reply::Error { message } => Err(UsageOr::Failed(message)),
        other => Err(UsageOr::Failed(format!("unexpected reply: {other:?}"))),
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A point in time: `now`, `90m`/`2h`/`7d`/`1w` ago (a leading `-` is
/// allowed), Unix seconds, or `YYYY-MM-DD[THH:MM[:SS]]` in UTC.
pub fn parse_when(s: &str, now: u64) -> Option<u64> {
    let t = s.trim();
    if t == "now" {
        return Some(now);
    }
    if t.len() >= 10 && t.as_bytes()[4] == b'-' {
        let (date, time) = t.split_once(['T', ' ']).unwrap_or((t, "00:00"));
        let mut d = date.split('-');
        let y: i64 = d.next()?.parse().ok()?;
        let m: u32 = d.next()?.parse().ok().filter(|m| (1..=12).contains(m))?;
        let day: u32 = d.next()?.parse().ok().filter(|d| (1..=31).contains(d))?;
        let mut hms = time.split(':');
        let h: u64 = hms.next()?.parse().ok().filter(|h| *h < 24)?;
        let mi: u64 = hms.next()?.parse().ok().filter(|m| *m < 60)?;
        let sec: u64 = hms
            .next()
            .map_or(Some(0), |x| x.parse().ok().filter(|s| *s < 60))?;
        let days = days_from_civil(y, m, day);
        return u64::try_from(days)
            .ok()
            .map(|d| d * 86_400 + h * 3600 + mi * 60 + sec);
    }
    let rel = t.strip_prefix('-').unwrap_or(t);
    let unit = match rel.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        c if c.is_ascii_digit() && !t.starts_with('-') => {
            return t.parse().ok();
        }
        _ => return None,
    };
    let n: u64 = rel[..rel.len() - 1].parse().ok()?;
    Some(now.saturating_sub(n.checked_mul(unit)?))
}

fn when(s: &str, what: &str) -> Result<u64, UsageOr> {
    parse_when(s, now_unix()).ok_or_else(|| {
        UsageOr::Usage(format!(
            "{what}: '{s}' (expected now, 90m, 2h, 7d, Unix seconds or YYYY-MM-DD[THH:MM])"
        ))
    })
}

fn time_range(since: Option<&str>, until: Option<&str>) -> Result<TimeRange, UsageOr> {
    Ok(TimeRange {
        since: since.map(|s| when(s, "--since")).transpose()?,
        until: until.map(|s| when(s, "--until")).transpose()?,
    })
}

/// `WHEN..WHEN` (the end may be left out: now).
fn parse_range(s: &str) -> Result<TimeRange, UsageOr> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| UsageOr::Usage(format!("range '{s}': expected WHEN..WHEN")))?;
    let range = TimeRange {
        since: Some(when(a, "range start")?),
        until: Some(if b.is_empty() {
            now_unix()
        } else {
            when(b, "range end")?
        }),
    };
    if range.since >= range.until {
        return Err(UsageOr::Usage(format!("range '{s}' is empty")));
    }
    Ok(range)
}

/// One owner's change between two summaries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OwnerChange {
    pub owner: String,
    pub category: String,
    /// appeared | vanished | grew | shrank | same
    pub change: String,
    pub flows_before: u64,
    pub flows_after: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub blocked_before: u64,
    pub blocked_after: u64,
}

/// Compares owner rows: what appeared, vanished, grew or shrank (by
/// flows, then bytes), biggest changes first within each kind.
pub fn owner_diff(before: &[OwnerRow], after: &[OwnerRow]) -> Vec<OwnerChange> {
    let mut names: Vec<&str> = before
        .iter()
        .chain(after)
        .map(|r| r.owner.as_str())
        .collect();
    names.sort();
    names.dedup();
    let find = |rows: &[OwnerRow], n: &str| rows.iter().find(|r| r.owner == n).cloned();
    let mut out: Vec<OwnerChange> = names
        .into_iter()
        .map(|n| {
            let (b, a) = (find(before, n), find(after, n));
            let flows = |r: &Option<OwnerRow>| r.as_ref().map_or(0, |r| r.flows);
            let bytes = |r: &Option<OwnerRow>| r.as_ref().map_or(0, |r| r.bytes_up + r.bytes_down);
            let blocked = |r: &Option<OwnerRow>| r.as_ref().map_or(0, |r| r.blocked);
            let change = match (&b, &a) {
                (None, Some(_)) => "appeared",
                (Some(_), None) => "vanished",
                _ => match (flows(&a).cmp(&flows(&b)), bytes(&a).cmp(&bytes(&b))) {
                    (std::cmp::Ordering::Greater, _) => "grew",
                    (std::cmp::Ordering::Less, _) => "shrank",
                    (_, std::cmp::Ordering::Greater) => "grew",
                    (_, std::cmp::Ordering::Less) => "shrank",
                    _ => "same",
                },
            };
            OwnerChange {
                owner: n.to_string(),
                category: a
                    .as_ref()
                    .or(b.as_ref())
                    .map(|r| r.category.clone())
                    .unwrap_or_default(),
                change: change.to_string(),
                flows_before: flows(&b),
                flows_after: flows(&a),
                bytes_before: bytes(&b),
                bytes_after: bytes(&a),
                blocked_before: blocked(&b),
                blocked_after: blocked(&a),
            }
        })
        .collect();
    let rank = |c: &str| match c {
        "appeared" => 0,
        "grew" => 1,
        "shrank" => 2,
        "vanished" => 3,
        _ => 4,
    };
    out.sort_by(|x, y| {
        rank(&x.change).cmp(&rank(&y.change)).then_with(|| {
            let d = |c: &OwnerChange| c.flows_after.abs_diff(c.flows_before);
            d(y).cmp(&d(x)).then(x.owner.cmp(&y.owner))
        })
    });
    out
}

fn print_diff(changes: &[OwnerChange], label: (&str, &str), json: bool) -> Result<(), UsageOr> {
    if json {
        return print_json(&changes);
    }
    let (b, a) = label;
    table(
        &[
            "CHANGE",
            "OWNER",
            "CATEGORY",
            &format!("FLOWS {}", b.to_uppercase()),
            &format!("FLOWS {}", a.to_uppercase()),
            &format!("BYTES {}", b.to_uppercase()),
            &format!("BYTES {}", a.to_uppercase()),
        ],
        changes
            .iter()
            .filter(|c| c.change != "same")
            .map(|c| {
                vec![
                    c.change.clone(),
                    c.owner.clone(),
                    c.category.clone(),
                    c.flows_before.to_string(),
                    c.flows_after.to_string(),
                    human_bytes(c.bytes_before),
                    human_bytes(c.bytes_after),
                ]
            })
            .collect(),
    );
    Ok(())
}

/// What `policy check` asks about.
#[derive(Default)]
struct PolicyQuery {
    device: Option<String>,
    name: Option<String>,
    ip: Option<std::net::IpAddr>,
    port: u16,
    proto: String,
    time: Option<String>,
}

#[derive(serde::Serialize)]
struct PolicyAnswer {
    device: String,
    names: Vec<String>,
    owner: Option<String>,
    category: Option<String>,
    source: Option<String>,
    host: Option<String>,
    asn: Option<u32>,
    country: Option<String>,
    action: String,
    rule: Option<String>,
    rule_line: Option<usize>,
    logged: Vec<String>,
    enforced: bool,
    dns_sinkholed: bool,
}

/// `DAY HH:MM` (e.g. `Mon 23:00`) or `HH:MM` (today).
fn parse_check_time(
    s: &str,
    now: crate::policy::config::LocalTime,
) -> Option<crate::policy::config::LocalTime> {
    let (day, clock) = match s.split_once(' ') {
        Some((d, c)) => (Some(d), c),
        None => (None, s),
    };
    let minute = crate::policy::config::parse_clock(clock)?;
    let weekday = match day {
        Some(d) => crate::policy::config::parse_weekday(d)?,
        None => now.weekday,
    };
    Some(crate::policy::config::LocalTime {
        minute_of_day: minute,
        weekday,
    })
}

fn policy_check(
    config: &std::path::Path,
    db: Option<&std::path::Path>,
    q: &PolicyQuery,
    json: bool,
) -> Result<(), UsageOr> {
    use crate::policy::config::{parse_mac, Config};
    use crate::policy::rules::{FlowFacts, Policy};
    let failed = UsageOr::Failed;
    let cfg = Config::load(config).map_err(|e| failed(e.to_string()))?;
    if let Some(path) = db.or(cfg.db.as_deref()) {
        let database = crate::owners::db::OwnerDb::load(path).map_err(failed)?;
        crate::owners::install_database(database);
    }
    for w in cfg.warnings() {
        eprintln!("warning: {w}");
    }
    let device = q
        .device
        .as_deref()
        .ok_or_else(|| UsageOr::Usage("policy check needs --device MAC|NAME".into()))?;
    let mac = parse_mac(device)
        .or_else(|| {
            cfg.devices
                .iter()
                .find(|d| {
                    d.name
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(device))
                })
                .map(|d| d.mac)
        })
        .ok_or_else(|| {
            UsageOr::Usage(format!(
                "--device: no device named '{device}' in the config"
            ))
        })?;
    if q.name.is_none() && q.ip.is_none() {
        return Err(UsageOr::Usage(
            "policy check needs --name DOMAIN or --ip ADDR".into(),
        ));
    }
    let names: Vec<String> = q
        .name
        .iter()
        .filter_map(|n| crate::owners::import::normalize_domain(n))
        .collect();
    let proto = match q.proto.as_str() {
        "" | "tcp" => crate::wire::packet::PROTO_TCP,
        "udp" => crate::wire::packet::PROTO_UDP,
        other => return Err(UsageOr::Usage(format!("--proto: '{other}' (tcp or udp)"))),
    };
    let port = if q.port == 0 { 443 } else { q.port };
    let now = crate::daemon::local_time_now();
    let time = match &q.time {
        Some(t) => parse_check_time(t, now).ok_or_else(|| {
            UsageOr::Usage(format!("--time: '{t}' (expected 'Mon 23:00' or '23:00')"))
        })?,
        None => now,
    };
    let ip = q.ip.unwrap_or(std::net::IpAddr::from([0u8, 0, 0, 0]));
    let a = crate::owners::attribute(&names, ip);
    let policy = Policy::from_config(&cfg);
    let facts = FlowFacts {
        mac: Some(mac),
        names: &names,
        owners: &a.owners,
        asn: a.asn,
        country: a.country,
        proto,
        dport: port,
        time,
        dns: port == 53,
        nameless: names.is_empty(),
    };
    let d = policy.decide(&facts);
    let sinkholed = cfg.sinkhole != crate::inspect::sinkhole::SinkholeMode::Off
        && policy.decide_name(&facts).is_some_and(|d| d.enforced);
    let rule_line = d
        .rule
        .as_ref()
        .and_then(|r| cfg.rules.iter().find(|c| &c.name == r))
        .map(|c| c.line);
    let answer = PolicyAnswer {
        device: crate::policy::config::format_mac(&mac),
        names: names.clone(),
        owner: a.owner.map(|o| o.name.to_string()),
        category: a.owner.map(|o| o.category.as_str().to_string()),
        source: a.owner.map(|o| o.source.to_string()),
        host: a.host.map(str::to_string),
        asn: a.asn,
        country: a.country.map(|c| String::from_utf8_lossy(&c).into_owned()),
        action: d.action.as_str().to_string(),
        rule: d.rule.clone(),
        rule_line,
        logged: d.logged.clone(),
        enforced: d.enforced,
        dns_sinkholed: sinkholed,
    };
    if json {
        return print_json(&answer);
    }
    let what = names.first().cloned().unwrap_or_else(|| ip.to_string());
    println!(
        "{} -> {what} ({} {port}): {}{}",
        answer.device,
        crate::wire::packet::proto_name(proto),
        answer.action,
        if d.enforced {
            ""
        } else {
            " (observe mode: not enforced)"
        }
    );
    match (answer.rule.as_deref(), rule_line) {
        (Some(r), Some(line)) => println!("  rule '{r}' at {}:{line}", config.display()),
        (Some(r), None) => match r.strip_prefix("default:") {
            Some(from) => println!("  no rule matched: the default of '{from}'"),
            None if r == "default" => println!("  no rule matched: the global default"),
            None => println!("  built-in rule '{r}' (option {r})"),
        },
        (None, _) => println!("  no rule matched: allowed by default"),
    }
    println!(
        "  owner {} ({}, source {}){}{}",
        answer.owner.as_deref().unwrap_or("unknown"),
        answer.category.as_deref().unwrap_or("unknown"),
        answer.source.as_deref().unwrap_or("-"),
        answer
            .host
            .as_deref()
            .map(|h| format!(", host {h}"))
            .unwrap_or_default(),
        answer.asn.map(|a| format!(", AS{a}")).unwrap_or_default()
    );
    for l in &answer.logged {
        println!("  logged by rule '{l}'");
    }
    if !names.is_empty() {
        println!(
            "  DNS answer for it: {}",
            if sinkholed {
                "sinkholed"
            } else {
                "passed as is"
            }
        );
    }
    Ok(())
}

#[cfg(feature = "pcap")]
/// `phonehome analyze`: reads the capture, prints the report. A capture
/// that breaks off (tcpdump killed mid-write) is summarised up to there
/// with a warning; one damaged inside is summarised too, then it fails.
fn analyze(
    file: &str,
    config: Option<&std::path::Path>,
    db: Option<&std::path::Path>,
    device: Option<&str>,
    with_flows: bool,
    json: bool,
) -> Result<(), UsageOr> {
    use crate::policy::config::Config;
    let failed = UsageOr::Failed;
    let cfg = match config {
        Some(path) => Config::load(path).map_err(|e| failed(e.to_string()))?,
        None => Config::parse("", std::path::Path::new("(no config)"))
            .map_err(|e| failed(e.to_string()))?,
    };
    if let Some(path) = db.or(cfg.db.as_deref()) {
        let database = crate::owners::db::OwnerDb::load(path).map_err(failed)?;
        crate::owners::install_database(database);
    }
    let input: Box<dyn std::io::Read> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(file).map_err(|e| failed(format!("{file}: {e}")))?)
    };
    let input = std::io::BufReader::with_capacity(1 << 16, input);
    let mut analyzer = crate::cli::analyze::Analyzer::new(&cfg, with_flows || json);
    let read = crate::cli::capture::for_each_packet(input, |p| analyzer.on_packet(p));
    let damage = match read {
        Ok(_) => None,
        Err(e) if e.packets == 0 => return Err(failed(format!("{file}: {}", e.message))),
        Err(e) => Some(e),
    };
    let report = analyzer.finish(device);
    if json {
        print_json(&report)?;
    } else {
        print_capture(file, &report, with_flows)?;
    }
    match damage {
        Some(e) if e.truncated => {
            eprintln!("phonehome: warning: {file}: {e} (summarised up to there)");
            Ok(())
        }
        Some(e) => Err(failed(format!(
            "{file}: damaged {e} (summarised up to there)"
        ))),
        None => Ok(()),
    }
}

#[cfg(feature = "pcap")]
fn print_capture(
    file: &str,
    report: &crate::cli::analyze::Report,
    with_flows: bool,
) -> Result<(), UsageOr> {
    let c = &report.capture;
    println!(
        "{file}: {} packets, {} IP ({}), {} flows, {} s from {}",
        c.packets,
        c.ip_packets,
        human_bytes(c.bytes),
        c.flows,
        c.last_seen.saturating_sub(c.first_seen),
        format_utc(c.first_seen)
    );
    let mut notes = Vec::new();
    if c.blocked > 0 {
        notes.push(format!("{} flows the policy blocks", c.blocked));
    }
    if c.sinkholed > 0 {
        notes.push(format!("{} DNS answers it would sinkhole", c.sinkholed));
    }
    if c.not_ip > 0 {
        notes.push(format!("{} packets not IP/TCP/UDP/ICMP", c.not_ip));
    }
    if c.link_local > 0 {
        notes.push(format!("{} link-local/multicast packets", c.link_local));
    }
    if c.malformed > 0 {
        notes.push(format!("{} malformed", c.malformed));
    }
    if c.other_link > 0 {
        notes.push(format!(
            "{} of unknown link types {:?} skipped",
            c.other_link, c.other_link_types
        ));
    }
    if c.evicted > 0 {
        notes.push(format!("{} flows evicted from a full table", c.evicted));
    }
    if !notes.is_empty() {
        println!("{}", notes.join(", "));
    }
    println!();
    print_devices(&report.devices, false)?;
    println!();
    print_owners(&report.owners, false)?;
    if with_flows {
        println!();
        print_flows(&report.flows, false)?;
    }
    Ok(())
}

/// Unix seconds as 'YYYY-MM-DD HH:MM:SS UTC'.
#[cfg(feature = "pcap")]
fn format_utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn db_compile(
    out: &std::path::Path,
    psl: Option<&std::path::Path>,
    builtin: bool,
    specs: &[crate::owners::import::SourceSpec],
) -> Result<(), String> {
    use crate::owners::{self, db::Builder, import};
    let mut builder = Builder::new();
    if builtin {
        let n = owners::add_builtin(&mut builder)?;
        eprintln!("builtin: {n} domains");
    }
    for spec in specs {
        let count = import::import(spec, &mut builder)?;
        eprintln!(
            "{}: {} domains, {} address ranges",
            spec.source_name(),
            count.domains,
            count.ranges
        );
    }
    if let Some(psl) = psl {
        let text = std::fs::read_to_string(psl).map_err(|e| format!("{}: {e}", psl.display()))?;
        let rules = builder.set_psl(&text);
        if rules == 0 {
            return Err(format!(
                "{}: no ICANN section (not the Public Suffix List?)",
                psl.display()
            ));
        }
        eprintln!("public suffix list: {rules} ICANN rules");
    }
    let (domains, duplicates) = (builder.domain_count(), builder.duplicates);
    let bytes = builder.finish()?;
    // Read it back before it replaces anything: what is written loads.
    let check = crate::owners::db::OwnerDb::from_bytes(bytes.clone())
        .map_err(|e| format!("compiled database does not load back: {e}"))?;
    // Write next to the target, then rename: a reader never sees half a file.
    let tmp = out.with_extension("tmp");
    std::fs::write(&tmp, &bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, out).map_err(|e| format!("{}: {e}", out.display()))?;
    let (c4, c6) = check.country_range_count();
    println!(
        "{}: {domains} domains ({duplicates} already listed by an earlier source), {} bytes, \
         {}-bit fingerprints, {} country ranges",
        out.display(),
        bytes.len(),
        check.fingerprint_bits(),
        c4 + c6
    );
    Ok(())
}

#[derive(serde::Serialize)]
struct DomainAnswer<'a> {
    query: &'a str,
    owner: Option<&'a str>,
    /// The company the owner belongs to, when another.
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<&'static str>,
    category: Option<&'a str>,
    source: Option<&'a str>,
    rule: Option<&'a str>,
    cname_cloak: bool,
    registrable_domain: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct AddressAnswer<'a> {
    query: &'a str,
    asn: Option<u32>,
    as_org: Option<&'a str>,
    host_owner: Option<&'a str>,
    /// ISO 3166-1 alpha-2, where the address is (or its network is
    /// registered, without a geolocation database).
    country: Option<String>,
}

fn db_lookup(path: &std::path::Path, query: &str, json: bool) -> Result<(), UsageOr> {
    use crate::owners::db::{OwnerDb, FLAG_CNAME_CLOAK};
    let db = OwnerDb::load(path).map_err(UsageOr::Failed)?;
    if let Ok(ip) = query.parse::<std::net::IpAddr>() {
        let m = db.lookup_ip(ip);
        let answer = AddressAnswer {
            query,
            asn: m.map(|m| m.asn),
            as_org: m.map(|m| m.as_org),
            host_owner: m.and_then(|m| m.host_owner),
            country: db
                .lookup_country(ip)
                .map(|c| String::from_utf8_lossy(&c).into_owned()),
        };
        if json {
            return print_json(&answer);
        }
        let country = answer
            .country
            .as_deref()
            .map(|c| format!(", country {c}"))
            .unwrap_or_default();
        match m {
            Some(m) => println!(
                "{query}: AS{} {}{}{country}",
                m.asn,
                m.as_org,
                m.host_owner
                    .map(|h| format!(" (host: {h})"))
                    .unwrap_or_default()
            ),
            None => println!("{query}: no network known{country}"),
        }
        return Ok(());
    }
    let name = crate::owners::import::normalize_domain(query).ok_or_else(|| {
        UsageOr::Usage(format!("'{query}' is neither a domain name nor an address"))
    })?;
    let m = db.lookup_domain(&name);
    let answer = DomainAnswer {
        query: &name,
        owner: m.map(|m| m.owner),
        parent: m.and_then(|m| crate::owners::parent_of(m.owner)),
        category: m.map(|m| m.category.as_str()),
        source: m.map(|m| m.source),
        rule: m.map(|m| &name[name.len() - m.matched_len..]),
        cname_cloak: m.is_some_and(|m| m.flags & FLAG_CNAME_CLOAK != 0),
        registrable_domain: db.registrable_domain(&name),
    };
    if json {
        return print_json(&answer);
    }
    match m {
        Some(_) => println!(
            "{name}: {}{} ({}), source {}, rule {}{}",
            answer.owner.unwrap_or(""),
            answer.parent.map(|p| format!(" ({p})")).unwrap_or_default(),
            answer.category.unwrap_or(""),
            answer.source.unwrap_or(""),
            answer.rule.unwrap_or(""),
            if answer.cname_cloak {
                ", CNAME-cloaked tracker"
            } else {
                ""
            }
        ),
        None => println!(
            "{name}: not listed{}",
            answer
                .registrable_domain
                .map(|r| format!("; registrable domain {r}"))
                .unwrap_or_default()
        ),
    }
    Ok(())
}

fn unexpected(reply: Reply) -> Result<(), UsageOr> {
    Err(UsageOr::Failed(match reply {
        Reply::Error { message } => message,
        other => format!("unexpected reply from daemon: {other:?}"),
    }))
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), UsageOr> {
    let text = serde_json::to_string_pretty(value).map_err(|e| UsageOr::Failed(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// Prints rows as aligned columns; the last column is not padded.
fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let n = cells.len();
        let mut out = String::new();
        for (i, (cell, w)) in cells.into_iter().zip(&widths).enumerate() {
            if i + 1 == n {
                out.push_str(&cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

/// 1536 → "1.5K", human-readable byte counts.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

fn print_status(s: &StatusRow, json: bool) -> Result<(), UsageOr> {
    if json {
        return print_json(s);
    }
    println!(
        "phonehome {}, up {}s, {} mode, queue {} ({} verdicts)",
        s.version, s.uptime_s, s.mode, s.queue, s.mark_mode
    );
    println!(
        "packets {}  accepted {}  dropped {}  malformed {}",
        s.packets, s.verdicts_accept, s.verdicts_drop, s.malformed
    );
    println!(
        "flows active {}  evicted {}  dns names {}  rules {}",
        s.flows_active, s.flows_evicted, s.dns_names, s.rules
    );
    println!(
        "dns sinkholed {}  refused {}  decided without a name {} (gave up waiting {})  re-judged at reload {}",
        s.dns_sinkholed, s.dns_refused, s.nameless, s.gave_up, s.rejudged
    );
    println!(
        "memory {}  waiting for names {} (over max_pending {})",
        human_bytes(s.rss_bytes),
        human_bytes(s.pending_bytes),
        s.pending_overflow
    );
    println!(
        "dropped by the kernel, queue full {}  socket buffer full {}",
        s.queue_dropped, s.queue_user_dropped
    );
    Ok(())
}

fn print_devices(rows: &[DeviceRow], json: bool) -> Result<(), UsageOr> {
    if json {
        return print_json(&rows);
    }
    table(
        &[
            "MAC",
            "HOSTNAME",
            "FLOWS",
            "BLOCKED",
            "UP",
            "DOWN",
            "COUNTRIES",
            "IPS",
        ],
        rows.iter()
            .map(|r| {
                vec![
                    r.mac.clone(),
                    r.hostname.clone().unwrap_or_else(|| "-".into()),
                    r.flows.to_string(),
                    r.blocked.to_string(),
                    human_bytes(r.bytes_up),
                    human_bytes(r.bytes_down),
                    countries_cell(&r.countries),
                    r.ips.join(","),
                ]
            })
            .collect(),
    );
    Ok(())
}

/// A destination country and who was contacted there (`top --by country`).
#[derive(Debug, PartialEq, Eq, serde::Serialize)]
struct CountryRow {
    country: String,
    flows: u64,
    /// Owners with connections to it, the most first.
    owners: Vec<String>,
}

/// Owner rows turned around: per destination country, its connections and
/// owners, the most connections first (then by code).
fn countries_of(rows: &[OwnerRow]) -> Vec<CountryRow> {
    /// Per country: its connections, and (connections, owner) pairs.
    type Tally<'r> = (u64, Vec<(u64, &'r str)>);
    let mut by_country: std::collections::BTreeMap<&str, Tally<'_>> = Default::default();
    for r in rows {
        for c in &r.countries {
            let e = by_country.entry(c.country.as_str()).or_default();
            e.0 += c.flows;
            e.1.push((c.flows, r.owner.as_str()));
        }
    }
    let mut out: Vec<CountryRow> = by_country
        .into_iter()
        .map(|(country, (flows, mut owners))| {
            owners.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
            CountryRow {
                country: country.to_string(),
                flows,
                owners: owners.into_iter().map(|(_, o)| o.to_string()).collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| b.flows.cmp(&a.flows).then(a.country.cmp(&b.country)));
    out
}

fn print_countries(rows: &[CountryRow], json: bool) -> Result<(), UsageOr> {
    if json {
        return print_json(&rows);
    }
    table(
        &["COUNTRY", "FLOWS", "OWNERS"],
        rows.iter()
            .map(|r| {
                let mut owners = r
                    .owners
                    .iter()
                    .take(4)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(",");
                if r.owners.len() > 4 {
                    owners.push_str(&format!(" +{}", r.owners.len() - 4));
                }
                vec![r.country.clone(), r.flows.to_string(), owners]
            })
            .collect(),
    );
    Ok(())
}

/// Countries as tables show them: the three with the most connections,
/// "SG:12,CN:3 +2"; "-" when none is known.
fn countries_cell(countries: &[CountryCount]) -> String {
    if countries.is_empty() {
        return "-".into();
    }
    let mut cell = countries
        .iter()
        .take(3)
        .map(|c| format!("{}:{}", c.country, c.flows))
        .collect::<Vec<_>>()
        .join(",");
    if countries.len() > 3 {
        cell.push_str(&format!(" +{}", countries.len() - 3));
    }
    cell
}

/// An owner as tables show it: "Umeng (Alibaba)" when it belongs to another.
fn owner_with_parent(owner: &str, parent: Option<&str>) -> String {
    match parent {
        Some(p) => format!("{owner} ({p})"),
        None => owner.to_string(),
    }
}

fn print_owners(rows: &[OwnerRow], json: bool) -> Result<(), UsageOr> {
    if json {
        return print_json(&rows);
    }
    table(
        &[
            "OWNER",
            "CATEGORY",
            "FLOWS",
            "BLOCKED",
            "UP",
            "DOWN",
            "COUNTRIES",
            "DOMAINS",
        ],
        rows.iter()
            .map(|r| {
                let mut domains = r
                    .domains
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(",");
                if r.domains.len() > 3 {
                    domains.push_str(&format!(" +{}", r.domains.len() - 3));
                }
                vec![
                    owner_with_parent(&r.owner, r.parent.as_deref()),
                    r.category.clone(),
                    r.flows.to_string(),
                    r.blocked.to_string(),
                    human_bytes(r.bytes_up),
                    human_bytes(r.bytes_down),
                    countries_cell(&r.countries),
                    domains,
                ]
            })
            .collect(),
    );
    Ok(())
}

fn print_flows(rows: &[FlowRow], json: bool) -> Result<(), UsageOr> {
    if json {
        return print_json(&rows);
    }
    table(
        &[
            "DEVICE",
            "PROTO",
            "DESTINATION",
            "CC",
            "DOMAIN",
            "OWNER",
            "VERDICT",
            "RULE",
            "UP",
            "DOWN",
        ],
        rows.iter()
            .map(|r| {
                let verdict = if r.enforced {
                    r.verdict.clone()
                } else {
                    format!("{} (observe)", r.verdict)
                };
                vec![
                    r.device.clone(),
                    r.proto.clone(),
                    format!("{}:{}", r.dst, r.dport),
                    r.country.clone().unwrap_or_else(|| "-".into()),
                    r.domain.clone().unwrap_or_else(|| "-".into()),
                    owner_with_parent(&r.owner, r.parent.as_deref()),
                    verdict,
                    r.rule.clone().unwrap_or_else(|| "-".into()),
                    human_bytes(r.bytes_up),
                    human_bytes(r.bytes_down),
                ]
            })
            .collect(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_relative_absolute_and_ranges() {
        let now = 1_795_651_200 + 3600; // 2026-11-26 01:00 UTC
        assert_eq!(parse_when("now", now), Some(now));
        assert_eq!(parse_when("90m", now), Some(now - 5400));
        assert_eq!(parse_when("-2h", now), Some(now - 7200));
        assert_eq!(parse_when("7d", now), Some(now - 7 * 86_400));
        assert_eq!(parse_when("1700000000", now), Some(1_700_000_000));
        assert_eq!(parse_when("2026-11-26", now), Some(1_795_651_200));
        assert_eq!(parse_when("2026-11-26T01:00", now), Some(now));
        assert_eq!(parse_when("1970-01-01T00:00:01", now), Some(1));
        for bad in [
            "",
            "yesterday",
            "2h30",
            "-5",
            "2026-13-01",
            "2026-11-26T25:00",
            "5x",
        ] {
            assert_eq!(parse_when(bad, now), None, "{bad}");
        }
    }

    fn row(owner: &str, flows: u64, bytes: u64) -> OwnerRow {
        OwnerRow {
            owner: owner.into(),
            parent: None,
            category: "c".into(),
            flows,
            blocked: 0,
            bytes_up: 0,
            bytes_down: bytes,
            domains: vec![],
            countries: vec![],
        }
    }

    #[test]
    fn diff_names_what_appeared_vanished_grew_and_shrank() {
        let before = [
            row("Google", 10, 100),
            row("Xiaomi", 5, 50),
            row("Meta", 3, 30),
            row("Same", 1, 1),
        ];
        let after = [
            row("Google", 20, 100),
            row("Meta", 1, 10),
            row("Umeng", 7, 70),
            row("Same", 1, 1),
        ];
        let d: Vec<(String, String)> = owner_diff(&before, &after)
            .into_iter()
            .map(|c| (c.change, c.owner))
            .collect();
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            d,
            vec![
                s("appeared", "Umeng"),
                s("grew", "Google"),
                s("shrank", "Meta"),
                s("vanished", "Xiaomi"),
                s("same", "Same")
            ]
        );
    }

    #[test]
    fn bytes_for_people() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(1536), "1.5K");
        assert_eq!(human_bytes(10 << 20), "10.0M");
    }
}
