//! `phonehome analyze FILE|-`: reads a capture through `capture`, runs
//! the daemon's pipeline over it (`analyze`) and prints the devices, owners
//! and (with `--flows`) every flow, with what the policy of `-c FILE` would
//! have blocked. A capture that breaks off is summarised up to there.

use super::flags::Args;
use super::print::{format_utc, human_bytes, print_devices, print_flows, print_json, print_owners};
use super::CliError;

/// `analyze FILE|- [-c FILE] [--db FILE] [--device MAC] [--flows] [--json]`
pub fn run(args: &Args) -> Result<(), CliError> {
    let file = match args.positional.as_slice() {
        [file] => file,
        _ => {
            return Err(CliError::Usage(
                "analyze needs one capture FILE (or -)".into(),
            ))
        }
    };
    let device = args.device()?;
    analyze(
        file,
        args.path("config").as_deref(),
        args.path("db").as_deref(),
        device.as_deref(),
        args.switch("flows"),
        args.json(),
    )
}

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
) -> Result<(), CliError> {
    use crate::policy::config::Config;
    let failed = CliError::Failed;
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
        print_json(&document(file, device, report))?;
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

fn print_capture(
    file: &str,
    report: &crate::cli::analyze::Report,
    with_flows: bool,
) -> Result<(), CliError> {
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
    if c.fragments > 0 {
        notes.push(format!(
            "{} IP fragments ({} datagrams put back together, {} dropped)",
            c.fragments, c.reassembled, c.fragments_dropped
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

/// The capture's report document (docs/REPORT-DATA.md): what `report
/// --from` draws, the same as a router's.
fn document(
    file: &str,
    device: Option<&str>,
    report: crate::cli::analyze::Report,
) -> crate::report::document::Document<crate::cli::analyze::CaptureSummary> {
    use crate::report::document::{device_key, phone_home, Document};
    let name = std::path::Path::new(file)
        .file_name()
        .map_or_else(|| file.to_string(), |n| n.to_string_lossy().into_owned());
    let mut doc = Document::new("capture", &name, super::time::now_unix());
    doc.device = device.map(str::to_string);
    doc.range = crate::report::stats::TimeRange {
        since: Some(report.capture.first_seen),
        until: Some(report.capture.last_seen + 1),
    };
    for d in &report.devices {
        let key = device_key(d);
        if let Some(owners) = report.device_owners.get(key) {
            doc.phone_home
                .insert(key.to_string(), phone_home(d, owners));
        }
    }
    doc.device_owners = report.device_owners;
    doc.device_count = report.devices.len();
    doc.devices = report.devices;
    doc.owner_count = report.owners.len();
    doc.owners_blocked = report.owners.iter().filter(|o| o.blocked > 0).count();
    doc.owners = report.owners;
    doc.flows = report.flows;
    doc.series = Some(report.series);
    doc.capture = Some(report.capture);
    doc
}
