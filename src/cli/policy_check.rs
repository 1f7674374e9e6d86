//! `phonehome policy check`: which rule a device's connection to a name or
//! address hits, and whether its DNS answer would be sinkholed, with the
//! config and owner database the daemon would use, at a given time.

use super::flags::Args;
use super::print::print_json;
use super::CliError;

/// `policy check -c FILE --device MAC|NAME [--name D] [--ip A] ...`
pub fn run(args: &Args) -> Result<(), CliError> {
    let config = args.required_path("config", "policy check")?;
    let ip = match args.value("ip") {
        Some(v) => Some(
            v.parse()
                .map_err(|_| CliError::Usage(format!("--ip: '{v}' is not an address")))?,
        ),
        None => None,
    };
    let query = PolicyQuery {
        // The first, as the query commands take it.
        device: args
            .values("device")
            .first()
            .map(|d| d.to_ascii_lowercase()),
        name: args.value("name").map(str::to_string),
        ip,
        port: args.number("port", 0)?,
        proto: args.value("proto").unwrap_or("").to_string(),
        time: args.value("time").map(str::to_string),
    };
    policy_check(&config, args.path("db").as_deref(), &query, args.json())
}

/// What `policy check` asks about.
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
) -> Result<(), CliError> {
    use crate::policy::config::{parse_mac, Config};
    use crate::policy::rules::{FlowFacts, Policy};
    let failed = CliError::Failed;
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
        .ok_or_else(|| CliError::Usage("policy check needs --device MAC|NAME".into()))?;
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
            CliError::Usage(format!(
                "--device: no device named '{device}' in the config"
            ))
        })?;
    if q.name.is_none() && q.ip.is_none() {
        return Err(CliError::Usage(
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
        other => return Err(CliError::Usage(format!("--proto: '{other}' (tcp or udp)"))),
    };
    let port = if q.port == 0 { 443 } else { q.port };
    let now = crate::daemon::local_time_now();
    let time = match &q.time {
        Some(t) => parse_check_time(t, now).ok_or_else(|| {
            CliError::Usage(format!("--time: '{t}' (expected 'Mon 23:00' or '23:00')"))
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
