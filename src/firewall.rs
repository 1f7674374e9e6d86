//! Firewall: exactly the kernel rules the daemon needs, in one chain of
//! its own (`phonehome`, mangle table), installed and removed atomically
//! with `iptables-restore --noflush` (IPv4 and IPv6):
//!
//! 1. a packet mark set by a repeat verdict is saved into the ct mark;
//! 2. connections marked "block" are dropped in the kernel;
//! 3. DNS answers always go to the queue (names are learned from them);
//! 4. connections marked "allow" leave the chain in the kernel;
//! 5. only the first packets of undecided connections (connbytes) are
//!    queued, with `--queue-bypass` (fail-open) unless `--fail-closed`.
//!
//! The rule model (`Rule`) is separate from its rendering so other
//! backends can render the same rules. Limits: the iptables backend only
//! (this kernel lacks nft `queue`).

use std::io::Write;
use std::process::{Command, Stdio};

/// The ct/packet mark bits phonehome owns.
pub const MARK_MASK: u32 = 0x3000_0000;
pub const MARK_ALLOW: u32 = 0x1000_0000;
pub const MARK_BLOCK: u32 = 0x2000_0000;
/// Connections are queued up to this many packets (both directions); the
/// daemon decides well before (`engine::DECIDE_BY`).
pub const FIRST_PACKETS: u32 = 12;
pub const CHAIN: &str = "phonehome";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Iptables,
    Nft,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub backend: Backend,
    pub queue: u16,
    pub fail_closed: bool,
}

/// One rule of the chain, independent of the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    SaveMark { bits: u32 },
    DropIfConnMarked { bits: u32 },
    QueueDnsAnswers,
    ReturnIfConnMarked { bits: u32 },
    QueueFirstPackets { packets: u32 },
}

pub fn rules() -> Vec<Rule> {
    vec![
        Rule::SaveMark { bits: MARK_ALLOW },
        Rule::SaveMark { bits: MARK_BLOCK },
        Rule::DropIfConnMarked { bits: MARK_BLOCK },
        Rule::QueueDnsAnswers,
        Rule::ReturnIfConnMarked { bits: MARK_ALLOW },
        Rule::QueueFirstPackets {
            packets: FIRST_PACKETS,
        },
    ]
}

/// The iptables-restore input that installs the chain and its jumps.
pub fn iptables_restore_up(opts: &Options) -> String {
    let queue = format!(
        "-j NFQUEUE --queue-num {}{}",
        opts.queue,
        if opts.fail_closed {
            ""
        } else {
            " --queue-bypass"
        }
    );
    let m = format!("{MARK_MASK:#x}");
    let mut out = format!("*mangle\n:{CHAIN} - [0:0]\n");
    for rule in rules() {
        let line = match rule {
            Rule::SaveMark { bits } => format!(
                "-m mark --mark {bits:#x}/{m} -j CONNMARK --save-mark --nfmask {m} --ctmask {m}"
            ),
            Rule::DropIfConnMarked { bits } => format!("-m connmark --mark {bits:#x}/{m} -j DROP"),
            Rule::QueueDnsAnswers => format!("-p udp --sport 53 {queue}"),
            Rule::ReturnIfConnMarked { bits } => {
                format!("-m connmark --mark {bits:#x}/{m} -j RETURN")
            }
            Rule::QueueFirstPackets { packets } => format!(
                "-m connbytes --connbytes 0:{packets} --connbytes-dir both --connbytes-mode packets {queue}"
            ),
        };
        out.push_str(&format!("-A {CHAIN} {line}\n"));
    }
    // Forwarded traffic, and answers of a DNS server on the router itself.
    out.push_str(&format!("-I FORWARD 1 -j {CHAIN}\n"));
    out.push_str(&format!(
        "-I OUTPUT 1 ! -o lo -p udp --sport 53 -j {CHAIN}\n"
    ));
    out.push_str("COMMIT\n");
    out
}

fn restore(tool: &str, input: &str) -> Result<(), String> {
    let mut child = Command::new(tool)
        .args(["--noflush", "--wait"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {tool}: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())
        .map_err(|e| format!("{tool}: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{tool}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{tool} refused the rules: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn run_quiet(tool: &str, args: &[&str]) -> bool {
    Command::new(tool)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn families() -> [(&'static str, &'static str); 2] {
    [
        ("iptables", "iptables-restore"),
        ("ip6tables", "ip6tables-restore"),
    ]
}

/// Installs the rules (removing an older copy first). IPv6 is skipped with
/// a warning when ip6tables is missing.
pub fn up(opts: &Options) -> Result<(), String> {
    if opts.backend == Backend::Nft {
        return Err("the nft backend is not available yet; use --backend iptables".into());
    }
    down(opts)?;
    let input = iptables_restore_up(opts);
    for (i, (tool, restore_tool)) in families().into_iter().enumerate() {
        match restore(restore_tool, &input) {
            Ok(()) => {}
            Err(e) if i == 1 && !run_quiet(tool, &["--version"]) => {
                eprintln!("phonehome: IPv6 rules skipped: {e}");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes the jumps and the chain; succeeds when they are already gone.
pub fn down(opts: &Options) -> Result<(), String> {
    if opts.backend == Backend::Nft {
        return Err("the nft backend is not available yet; use --backend iptables".into());
    }
    for (tool, _) in families() {
        if !run_quiet(tool, &["--version"]) {
            continue;
        }
        for _ in 0..64 {
            if !run_quiet(tool, &["-w", "-t", "mangle", "-D", "FORWARD", "-j", CHAIN]) {
                break;
            }
        }
        for _ in 0..64 {
            let args = [
                "-w", "-t", "mangle", "-D", "OUTPUT", "!", "-o", "lo", "-p", "udp", "--sport",
                "53", "-j", CHAIN,
            ];
            if !run_quiet(tool, &args) {
                break;
            }
        }
        if run_quiet(tool, &["-w", "-t", "mangle", "-n", "-L", CHAIN]) {
            run_quiet(tool, &["-w", "-t", "mangle", "-F", CHAIN]);
            if !run_quiet(tool, &["-w", "-t", "mangle", "-X", CHAIN]) {
                return Err(format!(
                    "{tool}: cannot delete chain {CHAIN} (still referenced?)"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_open_by_default_and_closed_on_request() {
        let mut opts = Options {
            backend: Backend::Iptables,
            queue: 3,
            fail_closed: false,
        };
        let up = iptables_restore_up(&opts);
        assert!(up.contains("--queue-num 3 --queue-bypass"));
        assert!(up.contains("--connbytes 0:12 --connbytes-dir both --connbytes-mode packets"));
        let save = up.find("--save-mark").unwrap();
        let drop = up.find("-j DROP").unwrap();
        let ret = up.find("-j RETURN").unwrap();
        let first = up.find("--connbytes").unwrap();
        assert!(
            save < drop && drop < ret && ret < first,
            "rule order matters"
        );
        opts.fail_closed = true;
        assert!(!iptables_restore_up(&opts).contains("--queue-bypass"));
    }
}
