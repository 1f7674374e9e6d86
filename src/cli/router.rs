//! The commands that act on this router: `run` (the daemon, in the
//! foreground) and `firewall up|down|print` (the kernel rules it needs,
//! for iptables, nft or fw4; the queue and fail-closed settings come from
//! `-c FILE` when given, else from the flags).

use super::flags::Args;
use super::CliError;
use crate::policy::firewall::{self, Backend};

/// `run -c FILE`
pub fn run(args: &Args) -> Result<(), CliError> {
    let config = args.required_path("config", "run")?;
    crate::daemon::run(&config).map_err(CliError::Failed)
}

/// `firewall up|down|print [--backend KIND] [-c FILE] [--queue N] [--fail-closed]`
pub fn firewall(args: &Args) -> Result<(), CliError> {
    let failed = CliError::Failed;
    let backend = match args.value("backend").unwrap_or("iptables") {
        "iptables" => Backend::Iptables,
        "nft" => Backend::Nft,
        "fw4" => Backend::Fw4,
        other => {
            return Err(CliError::Usage(format!(
                "unknown backend '{other}' (iptables, nft or fw4)"
            )))
        }
    };
    let mut opts = firewall::Options {
        backend,
        queue: args.number("queue", 0)?,
        fail_closed: args.switch("fail-closed"),
    };
    if let Some(path) = args.path("config") {
        let cfg = crate::policy::config::Config::load(&path).map_err(|e| failed(e.to_string()))?;
        // On the router, as the daemon does: the init script renders the
        // rules with this before it restarts anything, so a config the
        // daemon would refuse stops the reload with the old daemon running.
        cfg.check_groups(|g| crate::daemon::api::group_id(g).is_some())
            .map_err(|e| failed(e.to_string()))?;
        opts.queue = cfg.queue;
        opts.fail_closed = cfg.fail_closed;
    }
    match args.positional.first().map(String::as_str) {
        Some("up") => firewall::up(&opts).map_err(failed),
        Some("down") => firewall::down(&opts).map_err(failed),
        Some("print") => {
            print!("{}", firewall::render(&opts));
            Ok(())
        }
        _ => Err(CliError::Usage(
            "firewall needs 'up', 'down' or 'print'".into(),
        )),
    }
}
