//! Output for people and programs: one JSON document with `--json`, else
//! aligned tables (devices, owners, flows, countries, status) with bytes in
//! K/M/G and owners with their parents.

use super::CliError;
use crate::daemon::api::Reply;
use crate::report::stats::{CountryCount, DeviceRow, FlowRow, OwnerRow, StatusRow};

pub fn unexpected(reply: Reply) -> Result<(), CliError> {
    Err(CliError::Failed(match reply {
        Reply::Error { message } => message,
        other => format!(
            "unexpected reply from the daemon ({}; another phonehome version?)",
            other.kind()
        ),
    }))
}

pub fn print_json<T: serde::Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Failed(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// Prints rows as aligned columns; the last column is not padded.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) {
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

pub fn print_status(s: &StatusRow, json: bool) -> Result<(), CliError> {
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

pub fn print_devices(rows: &[DeviceRow], json: bool) -> Result<(), CliError> {
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
pub struct CountryRow {
    country: String,
    flows: u64,
    /// Owners with connections to it, the most first.
    owners: Vec<String>,
}

/// Owner rows turned around: per destination country, its connections and
/// owners, the most connections first (then by code).
pub fn countries_of(rows: &[OwnerRow]) -> Vec<CountryRow> {
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

pub fn print_countries(rows: &[CountryRow], json: bool) -> Result<(), CliError> {
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

pub fn print_owners(rows: &[OwnerRow], json: bool) -> Result<(), CliError> {
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

pub fn print_flows(rows: &[FlowRow], json: bool) -> Result<(), CliError> {
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

/// Unix seconds as 'YYYY-MM-DD HH:MM:SS UTC'.
#[cfg(feature = "pcap")]
pub fn format_utc(unix: u64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_for_people() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(1536), "1.5K");
        assert_eq!(human_bytes(10 << 20), "10.0M");
    }
}
