//! The daemon's small I/O edges: the dnsmasq lease file (read when it
//! changes), the state file's writes, the IPFIX socket and its sends,
//! rejudged connections' new ct marks, config reloads, and the names and
//! numbers `status` shows.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::api::{self, Reply};
use super::clock::Clock;
use crate::engine::Engine;
use crate::policy::config::{Config, Mode};
use crate::policy::firewall::MARK_MASK;
use crate::report::state;
use crate::wire::conntrack::Conntrack;
use crate::wire::nfqueue::MarkMode;

/// A file read again only when its modification time changes. Missing
/// file = nothing (the router may not run dnsmasq's DHCP).
pub(super) struct LeasesFile {
    path: PathBuf,
    mtime: Option<SystemTime>,
}

impl LeasesFile {
    pub(super) fn new(path: &Path) -> LeasesFile {
        LeasesFile {
            path: path.to_path_buf(),
            mtime: None,
        }
    }

    /// After a reload: another path is read afresh.
    pub(super) fn set_path(&mut self, path: &Path) {
        if self.path != path {
            *self = LeasesFile::new(path);
        }
    }

    /// The file's text when it changed since the last call.
    pub(super) fn changed(&mut self) -> Option<String> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if mtime.is_none() || mtime == self.mtime {
            return None;
        }
        self.mtime = mtime;
        std::fs::read_to_string(&self.path).ok()
    }
}

/// A UDP socket for IPFIX export to `addr`, of its address family.
pub(super) fn ipfix_socket(
    addr: std::net::SocketAddr,
) -> Result<(std::net::UdpSocket, std::net::SocketAddr), String> {
    let bind: std::net::SocketAddr = if addr.is_ipv6() {
        "[::]:0".parse().expect("address")
    } else {
        "0.0.0.0:0".parse().expect("address")
    };
    let socket = std::net::UdpSocket::bind(bind).map_err(|e| format!("IPFIX socket: {e}"))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("IPFIX socket: {e}"))?;
    eprintln!("phonehome: exporting finished flows over IPFIX to {addr}");
    Ok((socket, addr))
}

/// Sends the finished flows waiting in the engine to the IPFIX collector.
/// A send that fails (no route, buffer full) loses those records, as UDP
/// export does; the sequence number tells the collector.
pub(super) fn export_flows(
    exporter: &Option<(std::net::UdpSocket, std::net::SocketAddr)>,
    records: &mut Vec<crate::report::ipfix::FlowRecord>,
    sequence: &mut u32,
    cfg: &Config,
    now: u64,
) {
    let records = std::mem::take(records);
    let Some((socket, addr)) = exporter else {
        return;
    };
    if records.is_empty() {
        return;
    }
    for datagram in crate::report::ipfix::encode(&records, sequence, now as u32, cfg.ipfix_domain) {
        if let Err(e) = socket.send_to(&datagram, addr) {
            eprintln!("phonehome: IPFIX to {addr}: {e}");
        }
    }
}

/// Writes the statistics to `path` (when configured); a failure is logged,
/// the daemon goes on.
pub(super) fn save_state(path: Option<&Path>, engine: &Engine, now: u64) {
    if let Some(path) = path {
        if let Err(e) = state::save(path, &engine.snapshot(), now) {
            eprintln!("phonehome: cannot save statistics: {e}");
        }
    }
}

/// After a reload: live connections whose verdict changed get their new
/// ct mark, so the kernel enforces it from their next packet. Returns how
/// many changed.
pub(super) async fn rejudge(engine: &mut Engine, ct: &mut Conntrack, clock: &Clock) -> u64 {
    let changed = engine.rejudge(clock.now());
    let mut n = 0;
    for (tuple, bits) in &changed {
        match ct.control.set_mark(tuple, *bits, MARK_MASK).await {
            Ok(()) => n += 1,
            // Gone meanwhile (ENOENT) is fine; anything else is worth a line.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => eprintln!("phonehome: cannot re-mark {tuple}: {e}"),
        }
    }
    if n > 0 {
        eprintln!("phonehome: {n} live connections re-judged under the new policy");
    }
    n
}

/// Re-reads the config; a bad one is refused and the running policy stays.
pub(super) fn reload(cfg: &mut Config, engine: &mut Engine) -> Reply {
    let loaded = Config::load(&cfg.path).and_then(|new| {
        new.check_groups(|g| api::group_id(g).is_some())?;
        Ok(new)
    });
    match loaded {
        Ok(new) => {
            if new.queue != cfg.queue
                || new.socket != cfg.socket
                || new.copy_range != cfg.copy_range
                || new.db != cfg.db
            {
                eprintln!(
                    "phonehome: queue, socket, copy_range and db changes take effect on restart"
                );
            }
            for w in new.warnings() {
                eprintln!("phonehome: warning: {w}");
            }
            engine.reload(&new);
            let rules = engine.policy().rule_count() as u64;
            eprintln!("phonehome: reloaded {}: {rules} rules", new.path.display());
            *cfg = Config {
                queue: cfg.queue,
                socket: cfg.socket.clone(),
                copy_range: cfg.copy_range,
                db: cfg.db.clone(),
                ..new
            };
            Reply::Reloaded { rules }
        }
        Err(e) => Reply::Error {
            message: format!("config refused, keeping the running policy: {e}"),
        },
    }
}

pub(super) fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce => "enforce",
        Mode::Observe => "observe",
    }
}

pub(super) fn mark_mode_name(mode: MarkMode) -> &'static str {
    match mode {
        MarkMode::Conntrack => "conntrack",
        MarkMode::Repeat => "repeat",
    }
}

/// Lines logged a minute for owners a device reaches for the first time:
/// past it they are counted and summed up in one line, so a device that is
/// new on every connection (a phone rotating IPv6 addresses with no MAC
/// known) cannot push everything else out of the router's small log.
pub(super) const NEW_OWNER_LINES_PER_MINUTE: u32 = 20;

#[derive(Default)]
pub(super) struct NewOwnerLog {
    minute: u64,
    logged: u32,
    held_back: u64,
}

impl NewOwnerLog {
    pub(super) fn log(&mut self, device: &str, owner: &str) {
        if let Some(line) = self.line(device, owner, now_minute()) {
            eprintln!("{line}");
        }
    }

    /// The lines to log at `minute` for this pair (the summary of the last
    /// minute's held-back ones first, when there were any).
    fn line(&mut self, device: &str, owner: &str, minute: u64) -> Option<String> {
        let mut out = Vec::new();
        if minute != self.minute {
            if self.held_back > 0 {
                out.push(format!(
                    "phonehome: {} more devices reached owners for the first time (not logged one by one)",
                    self.held_back
                ));
            }
            *self = NewOwnerLog {
                minute,
                ..Default::default()
            };
        }
        if self.logged < NEW_OWNER_LINES_PER_MINUTE {
            self.logged += 1;
            out.push(format!(
                "phonehome: {device} reached {owner} for the first time"
            ));
        } else {
            self.held_back += 1;
        }
        (!out.is_empty()).then(|| out.join("\n"))
    }
}

fn now_minute() -> u64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_owner_lines_are_bounded_a_minute() {
        let mut log = NewOwnerLog::default();
        let lines: Vec<Option<String>> = (0..25)
            .map(|i| log.line(&format!("fd00::{i}"), "Google", 7))
            .collect();
        assert_eq!(lines.iter().filter(|l| l.is_some()).count(), 20);
        let next = log.line("02:00:00:00:77:02", "Xiaomi", 8).unwrap();
        assert!(next.starts_with("phonehome: 5 more devices"), "{next}");
        assert!(
            next.ends_with("02:00:00:00:77:02 reached Xiaomi for the first time"),
            "{next}"
        );
    }
}
