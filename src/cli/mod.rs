//! The command line: `main` reads the arguments (`flags`: every flag
//! defined once, each command taking only its own), then runs the command:
//! socket queries (`queries`), the daemon and its firewall rules
//! (`router`), the owner database (`db`), `policy check`
//! (`policy_check`) and captures (`capture_report` over `capture` and
//! `analyze`). Queries print a table for people by default and one JSON
//! document with `--json` (`print`). Errors are one line on stderr,
//! prefixed `phonehome:`, with exit code 2 for usage mistakes and 1 for
//! everything else (`CliError`).

#[cfg(feature = "pcap")]
pub mod analyze;
#[cfg(feature = "pcap")]
pub mod capture;
#[cfg(feature = "pcap")]
mod capture_report;
mod db;
#[cfg(feature = "pcap")]
pub mod defrag;
pub mod flags;
mod policy_check;
mod print;
mod queries;
mod report;
mod router;
pub mod time;

pub use crate::report::document::{owner_diff, OwnerChange};
pub use print::human_bytes;
pub use time::parse_when;

/// How a command failed: a usage mistake (exit 2, with a hint to --help)
/// or anything else (exit 1).
#[derive(Debug)]
pub enum CliError {
    Usage(String),
    Failed(String),
}

impl From<lexopt::Error> for CliError {
    fn from(e: lexopt::Error) -> Self {
        CliError::Usage(e.to_string())
    }
}

/// Parses the command line and runs it.
pub fn main(args: Vec<std::ffi::OsString>) -> Result<(), CliError> {
    let (command, args) = match flags::parse(args)? {
        flags::Parsed::Version => {
            println!("phonehome {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        flags::Parsed::Help(commands) if commands.is_empty() => {
            print!("{}", flags::USAGE);
            return Ok(());
        }
        flags::Parsed::Help(commands) => {
            let pages: Vec<String> = commands.into_iter().map(flags::command_help).collect();
            print!("{}", pages.join("\n"));
            return Ok(());
        }
        flags::Parsed::Run(command, args) => (command, args),
    };
    if command.name != "run" {
        // A reader that goes away (`phonehome analyze x.pcap | head`) ends
        // the CLI quietly, as it does C tools. Not the daemon: it writes to
        // client sockets that may close.
        // SAFETY: restoring a default signal disposition before any thread.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let run: fn(&flags::Args) -> Result<(), CliError> = match command.name {
        "run" => router::run,
        "firewall" => router::firewall,
        "status" => queries::status,
        "devices" => queries::devices,
        "owners" => queries::owners,
        "flows" => queries::flows,
        "top" => queries::top,
        "diff" => queries::diff,
        "watch" => queries::watch,
        "metrics" => queries::metrics,
        "series" => queries::series,
        "report" => report::run,
        "reload" => queries::reload,
        "db compile" => db::compile,
        "db lookup" => db::lookup,
        "policy check" => policy_check::run,
        "analyze" => analyze_command,
        other => unreachable!("command {other} has no function"),
    };
    run(&args)
}

#[cfg(feature = "pcap")]
use capture_report::run as analyze_command;

#[cfg(not(feature = "pcap"))]
fn analyze_command(args: &flags::Args) -> Result<(), CliError> {
    Err(CliError::Failed(format!(
        "{}: this phonehome was built without the 'pcap' feature (router \
         builds leave it out); build one with `cargo build --release --features \
         pcap` (e.g. on a PC)",
        args.positional.first().map_or("-", String::as_str)
    )))
}
