//! The commands that ask the daemon over its socket: `status`, `devices`,
//! `owners`, `flows`, `top`, `diff`, `watch`, `metrics`, `reload`. Each
//! builds its query from its own flags, sends it (`daemon::api`) and
//! prints the reply; `diff` compares two owner summaries on the client
//! (`report::document::owner_diff`).

use super::flags::Args;
use super::print::{
    countries_of, human_bytes, print_countries, print_devices, print_flows, print_json,
    print_owners, print_status, table, unexpected,
};
use super::time::parse_range;
use super::CliError;
use crate::daemon::api::{self, Query, Reply};
use crate::report::document::{owner_diff, OwnerChange};
use crate::report::stats::{OwnerRow, SeriesBy, TimeRange};

fn failed(e: String) -> CliError {
    CliError::Failed(e)
}

pub fn status(args: &Args) -> Result<(), CliError> {
    match api::query(&args.socket()?, Query::Status).map_err(failed)? {
        Reply::Status(s) => print_status(&s, args.json()),
        other => unexpected(other),
    }
}

pub fn devices(args: &Args) -> Result<(), CliError> {
    let (device, range) = (args.device()?, args.range()?);
    match api::query(&args.socket()?, Query::Devices { device, range }).map_err(failed)? {
        Reply::Devices(rows) => print_devices(&rows, args.json()),
        other => unexpected(other),
    }
}

pub fn owners(args: &Args) -> Result<(), CliError> {
    let (device, range) = (args.device()?, args.range()?);
    match api::query(&args.socket()?, Query::Owners { device, range }).map_err(failed)? {
        Reply::Owners(rows) => print_owners(&rows, args.json()),
        other => unexpected(other),
    }
}

pub fn flows(args: &Args) -> Result<(), CliError> {
    let device = args.device()?;
    match api::query(&args.socket()?, Query::Flows { device }).map_err(failed)? {
        Reply::Flows(rows) => print_flows(&rows, args.json()),
        other => unexpected(other),
    }
}

pub fn reload(args: &Args) -> Result<(), CliError> {
    match api::query(&args.socket()?, Query::Reload).map_err(failed)? {
        Reply::Reloaded { rules } => {
            println!("reloaded: {rules} rules");
            Ok(())
        }
        other => unexpected(other),
    }
}

pub fn watch(args: &Args) -> Result<(), CliError> {
    let json = args.json();
    if args.switch("blocked") && args.switch("new-owners") {
        return Err(CliError::Usage(
            "watch: --blocked (decisions) or --new-owners (first contacts), not both".into(),
        ));
    }
    let query = Query::Watch {
        device: args.device()?,
        blocked: args.switch("blocked"),
        new_owners: args.switch("new-owners"),
    };
    let mut out = std::io::stdout();
    api::stream(&args.socket()?, query, |reply| {
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
            Reply::NewOwner(n) if json => {
                #[derive(serde::Serialize)]
                struct Line<'a> {
                    new_owner: &'a crate::report::stats::NewOwnerRow,
                }
                serde_json::to_string(&Line { new_owner: &n }).unwrap_or_default()
            }
            Reply::NewOwner(n) => format!(
                "{} {} first contact: {} ({}){}",
                n.time,
                n.device,
                n.owner,
                n.category,
                n.domain.map(|d| format!(" via {d}")).unwrap_or_default()
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

pub fn metrics(args: &Args) -> Result<(), CliError> {
    let socket = args.socket()?;
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
    match args.path("out") {
        Some(path) => {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &text)
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|e| failed(format!("{}: {e}", path.display())))
        }
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// `series`: connections over time per owner, category or device, as
/// the daemon writes it (JSON: it is data for a chart, not a table).
pub fn series(args: &Args) -> Result<(), CliError> {
    let mut range = args.range()?;
    if range.is_all() {
        range.since = Some(super::time::now_unix().saturating_sub(86_400));
    }
    let query = Query::Series {
        device: args.device()?,
        range,
        by: series_by(args)?,
        lines: args.number("n", 10)?,
    };
    match api::query(&args.socket()?, query).map_err(failed)? {
        Reply::Json(text) => {
            println!("{text}");
            Ok(())
        }
        other => unexpected(other),
    }
}

/// `--by` of `series` and `report`.
pub fn series_by(args: &Args) -> Result<SeriesBy, CliError> {
    match args.value("by") {
        None => Ok(SeriesBy::Owner),
        Some(b) => SeriesBy::parse(b)
            .ok_or_else(|| CliError::Usage(format!("--by: '{b}' (owner, category or device)"))),
    }
}

pub fn top(args: &Args) -> Result<(), CliError> {
    let range = args.range()?;
    let by = args.value("by").unwrap_or("bytes");
    if !matches!(by, "bytes" | "flows" | "blocked" | "country") {
        return Err(CliError::Usage(format!(
            "--by: '{by}' (bytes, flows, blocked or country)"
        )));
    }
    let top_n: usize = args.number("n", 10)?;
    let mut rows = owners_in(&args.socket()?, args.device()?, range)?;
    if by == "country" {
        let mut countries = countries_of(&rows);
        countries.truncate(top_n);
        return print_countries(&countries, args.json());
    }
    let key = |r: &OwnerRow| match by {
        "flows" => r.flows,
        "blocked" => r.blocked,
        _ => r.bytes_up + r.bytes_down,
    };
    rows.sort_by(|a, b| key(b).cmp(&key(a)).then(a.owner.cmp(&b.owner)));
    rows.truncate(top_n);
    print_owners(&rows, args.json())
}

pub fn diff(args: &Args) -> Result<(), CliError> {
    let devices = args.devices()?;
    let (before, after) = (args.value("before"), args.value("after"));
    let (first, second, label) = match (devices.as_slice(), before, after) {
        ([d], Some(b), Some(a)) => (
            (d.clone(), parse_range(b)?),
            (d.clone(), parse_range(a)?),
            ("before", "after"),
        ),
        ([a, b], None, None) => {
            let r = match args.value("range") {
                Some(r) => parse_range(r)?,
                None => TimeRange::default(),
            };
            ((a.clone(), r), (b.clone(), r), ("first", "second"))
        }
        _ => {
            return Err(CliError::Usage(
                "diff needs --device MAC --before RANGE --after RANGE, \
                 or --device MAC --device MAC [--range RANGE]"
                    .into(),
            ))
        }
    };
    let socket = args.socket()?;
    let old = owners_in(&socket, Some(first.0), first.1)?;
    let new = owners_in(&socket, Some(second.0), second.1)?;
    print_diff(&owner_diff(&old, &new), label, args.json())
}

/// Owner rows of one device (or all) in a range.
fn owners_in(
    socket: &std::path::Path,
    device: Option<String>,
    range: TimeRange,
) -> Result<Vec<OwnerRow>, CliError> {
    match api::query(socket, Query::Owners { device, range }).map_err(CliError::Failed)? {
        Reply::Owners(rows) => Ok(rows),
        Reply::Error { message } => Err(CliError::Failed(message)),
        other => unexpected(other).map(|_| Vec::new()),
    }
}

fn print_diff(changes: &[OwnerChange], label: (&str, &str), json: bool) -> Result<(), CliError> {
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
