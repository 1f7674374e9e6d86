//! `phonehome report`: the report document (docs/REPORT-DATA.md) of the
//! running daemon (which writes it whole, from one moment of its state:
//! `report::document::of_engine`) or of a saved document (`--from`, e.g.
//! the `analyze --json` of a capture), printed as JSON (`--json`) or as
//! one self-contained HTML page (`report::html`) to `--out FILE` or
//! stdout. A before/after pair (`--before RANGE --after RANGE`, or two
//! `--device`) adds the comparison.

use super::flags::Args;
use super::time::{now_unix, parse_range};
use super::CliError;
use crate::daemon::api::{self, Query, Reply, Side};

/// A document read from a file is refused past this size.
const MAX_DOCUMENT: u64 = 256 << 20;

fn failed(e: String) -> CliError {
    CliError::Failed(e)
}

pub fn run(args: &Args) -> Result<(), CliError> {
    // Pretty, as every `--json` of the CLI: one serializer for the rows
    // in the router binary, not two.
    let (json, name) = match args.path("from") {
        Some(path) => read_document(&path)?,
        None => from_daemon(args)?,
    };
    let text = if args.json() {
        json
    } else {
        crate::report::html::page(&format!("phonehome report: {name}"), &json)
    };
    match args.path("out") {
        Some(path) => std::fs::write(&path, text + "\n")
            .map_err(|e| failed(format!("{}: {e}", path.display()))),
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{text}").map_err(|e| failed(format!("stdout: {e}")))
        }
    }
}

/// What `--from` checks of a document (the rest is passed on as it is,
/// a newer phonehome's fields kept).
#[derive(serde::Deserialize)]
struct Head {
    format: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// A saved report document: read whole (up to `MAX_DOCUMENT`), checked
/// to be JSON and a report document, and passed on as it is.
fn read_document(path: &std::path::Path) -> Result<(String, String), CliError> {
    let at = |e: String| failed(format!("{}: {e}", path.display()));
    let size = std::fs::metadata(path)
        .map_err(|e| at(e.to_string()))?
        .len();
    if size > MAX_DOCUMENT {
        return Err(at(format!(
            "{size} bytes, over the {MAX_DOCUMENT} a report reads"
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| at(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| at(format!("not JSON: not UTF-8 ({e})")))?;
    let not_a_report = || {
        at(
            "not a phonehome report document (no \"format\": \"phonehome-report/1\"; \
            make one with `phonehome report --json` or `phonehome analyze FILE --json`)"
                .into(),
        )
    };
    let head: Head = match serde_json::from_str(&text) {
        Ok(head) => head,
        Err(e) if e.is_data() => return Err(not_a_report()),
        Err(e) => return Err(at(format!("not JSON: {e}"))),
    };
    match head.format {
        Some(f) if f.starts_with("phonehome-report/") => Ok((
            text.trim_end().to_string(),
            head.name.unwrap_or_else(|| path.display().to_string()),
        )),
        _ => Err(not_a_report()),
    }
}

/// The daemon's document (as JSON text, with the name it is of): the
/// devices and owners in the range (default: the last 24 hours), each
/// device's owners, the series, the latest decisions and, when asked, a
/// before/after comparison.
fn from_daemon(args: &Args) -> Result<(String, String), CliError> {
    let devices = args.devices()?;
    let device = match devices.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    };
    let mut range = args.range()?;
    if range.is_all() {
        range.since = Some(now_unix().saturating_sub(86_400));
    }
    let (before, after) = match diff_asked(args, &devices)? {
        Some(d) => (Some(d.before), Some(d.after)),
        None => (None, None),
    };
    let query = Query::Report {
        device,
        range,
        by: super::queries::series_by(args)?,
        lines: args.number("n", 10)?,
        before,
        after,
    };
    match api::query(&args.socket()?, query).map_err(failed)? {
        Reply::Json(text) => {
            // The name, for the page's title, from the document's head.
            let name = serde_json::from_str::<Head>(&text)
                .ok()
                .and_then(|h| h.name)
                .unwrap_or_else(|| "router".into());
            Ok((text, name))
        }
        other => Err(unexpected(other)),
    }
}

struct DiffAsked {
    before: Side,
    after: Side,
}

/// The comparison asked for: `--before RANGE --after RANGE` (of the one
/// `--device`, or all), or two `--device` (over the report's range).
fn diff_asked(args: &Args, devices: &[String]) -> Result<Option<DiffAsked>, CliError> {
    let side = |device: Option<&String>, range, label: &str| Side {
        device: device.cloned(),
        range,
        label: label.to_string(),
    };
    match (devices, args.value("before"), args.value("after")) {
        ([] | [_], Some(b), Some(a)) => Ok(Some(DiffAsked {
            before: side(devices.first(), parse_range(b)?, b),
            after: side(devices.first(), parse_range(a)?, a),
        })),
        ([x, y], None, None) => {
            let r = args.range()?;
            Ok(Some(DiffAsked {
                before: side(Some(x), r, x),
                after: side(Some(y), r, y),
            }))
        }
        ([] | [_], None, None) => Ok(None),
        _ => Err(CliError::Usage(
            "report compares --before RANGE --after RANGE (both, with at most one \
             --device), or two --device"
                .into(),
        )),
    }
}

fn unexpected(reply: Reply) -> CliError {
    match super::print::unexpected(reply) {
        Err(e) => e,
        Ok(()) => failed("unexpected reply from the daemon".into()),
    }
}
