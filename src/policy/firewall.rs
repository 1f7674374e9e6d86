//! Firewall: exactly the kernel rules the daemon needs, in one chain of
//! its own (`phonehome`, mangle table), installed and removed atomically
//! with `iptables-restore --noflush` (IPv4 and IPv6):
//!
//! 1. connections marked "allow" leave the chain (one match for nearly
//!    every packet);
//! 2. a packet mark set by a repeat verdict is saved into the ct mark, and
//!    the repeated packet of a newly allowed connection leaves at once (it
//!    would otherwise meet the queue rule again: two queued packets per
//!    connection instead of one);
//! 3. connections marked "block" are dropped in the kernel, connections
//!    marked "reject" are refused (TCP reset, else ICMP port unreachable)
//!    so apps fail at once instead of timing out;
//! 4. DNS answers, over UDP and TCP, always go to the queue (names are
//!    learned from them, and blocked names are sinkholed in them): packets
//!    from port 53 in the reply direction of a tracked connection only, so
//!    a LAN host sending from port 53, or anyone forging "answers" nobody
//!    asked for, is not taken for a resolver;
//! 5. only the first packets of undecided connections (connbytes) are
//!    queued, with `--queue-bypass` (fail-open) unless `--fail-closed`.
//!
//! iptables allows REJECT only in the filter table, so there the reject
//! rule is a second chain, `phonehome_reject` in filter FORWARD, and the
//! mangle chain lets reject-marked connections pass on to it; nft rejects
//! in the same chain.
//!
//! The rule model (`Rule`) is rendered three ways from one list:
//! `iptables` (iptables-restore input, the backend the test network uses),
//! `nft` (a `table inet phonehome` replaced atomically with `nft -f`), and
//! `fw4` (the same chains as an OpenWrt fw4 `table-post` include, shipped in
//! openwrt-package/ and checked against this renderer by the tests).
//! Both nft forms hook forward and output at priority mangle + 10.
//!
//! Limits: the nft backend cannot be exercised end to end on a kernel
//! without nft `queue` (the test machine's); it is checked with `nft -c`
//! with the queue statement swapped out. With fw4 flow offloading, packets
//! of offloaded connections skip these hooks (see openwrt-package/README.md).
//!
//! Over 600 lines: the three backends' rules (iptables, nft, fw4) from one
//! rule model, with unit tests (a quarter of the file).

use std::io::Write;
use std::process::{Command, Stdio};

/// The ct/packet mark bits phonehome owns (defined with the conntrack wire
/// format, which carries them).
pub use crate::wire::conntrack::{MARK_ALLOW, MARK_BLOCK, MARK_MASK, MARK_REJECT};
/// Connections are queued up to this many packets (both directions); the
/// daemon decides well before (`engine::DECIDE_BY`).
pub const FIRST_PACKETS: u32 = 20;
pub const CHAIN: &str = "phonehome";
/// The iptables filter-table chain that refuses reject-marked connections.
pub const REJECT_CHAIN: &str = "phonehome_reject";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Iptables,
    Nft,
    /// Print-only: the OpenWrt fw4 include (fw4 installs it).
    Fw4,
}

/// The nft table of the `nft` backend, and the chain-name prefix.
pub const NFT_TABLE: &str = "phonehome";
/// The fw4 include's install path on OpenWrt.
pub const FW4_INCLUDE_PATH: &str = "/usr/share/nftables.d/table-post/30-phonehome.nft";

#[derive(Clone, Debug)]
pub struct Options {
    pub backend: Backend,
    pub queue: u16,
    pub fail_closed: bool,
}

/// One rule of the chain, independent of the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    SaveMark {
        bits: u32,
    },
    DropIfConnMarked {
        bits: u32,
    },
    RejectIfConnMarked {
        bits: u32,
    },
    /// Every DNS answer of `proto` ("udp" or "tcp"), not only the first
    /// packets: a TCP answer stream can be long, and each answer is judged.
    QueueDnsAnswers {
        proto: &'static str,
    },
    ReturnIfConnMarked {
        bits: u32,
    },
    /// The packet itself carries the mark (a repeat verdict just set it).
    ReturnIfMarked {
        bits: u32,
    },
    QueueFirstPackets {
        packets: u32,
    },
}

pub fn rules() -> Vec<Rule> {
    vec![
        // First, for speed: the packets of allowed connections (nearly all
        // traffic) leave after one match. Safe ahead of the mark saving: a
        // connection's mark only changes from "allow" by a ctnetlink update
        // after a reload, never by a repeat verdict; DNS flows, whose
        // answers must reach the queue, are never marked "allow".
        Rule::ReturnIfConnMarked { bits: MARK_ALLOW },
        Rule::SaveMark { bits: MARK_ALLOW },
        Rule::ReturnIfMarked { bits: MARK_ALLOW },
        Rule::SaveMark { bits: MARK_BLOCK },
        Rule::SaveMark { bits: MARK_REJECT },
        Rule::DropIfConnMarked { bits: MARK_BLOCK },
        Rule::RejectIfConnMarked { bits: MARK_REJECT },
        Rule::QueueDnsAnswers { proto: "udp" },
        Rule::QueueDnsAnswers { proto: "tcp" },
        Rule::QueueFirstPackets {
            packets: FIRST_PACKETS,
        },
    ]
}

/// Where the chain is entered: (hook, iptables matches, one rule each;
/// nft match). Forwarded traffic; answers of a DNS server on the router
/// itself; and the queries to it, whose sender's MAC tells the daemon
/// which device the answer is for before the answer comes.
fn entry_points() -> [(&'static str, &'static [&'static str], &'static str); 3] {
    [
        ("forward", &[""], ""),
        (
            "output",
            &["! -o lo -p udp --sport 53 ", "! -o lo -p tcp --sport 53 "],
            "oifname != \"lo\" meta l4proto { tcp, udp } th sport 53 ",
        ),
        (
            "input",
            &["! -i lo -p udp --dport 53 ", "! -i lo -p tcp --dport 53 "],
            "iifname != \"lo\" meta l4proto { tcp, udp } th dport 53 ",
        ),
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
            // On to filter FORWARD, where `REJECT_CHAIN` refuses it.
            Rule::RejectIfConnMarked { bits } => {
                format!("-m connmark --mark {bits:#x}/{m} -j RETURN")
            }
            Rule::QueueDnsAnswers { proto } => {
                format!("-p {proto} --sport 53 -m conntrack --ctdir REPLY {queue}")
            }
            Rule::ReturnIfConnMarked { bits } => {
                format!("-m connmark --mark {bits:#x}/{m} -j RETURN")
            }
            Rule::ReturnIfMarked { bits } => format!("-m mark --mark {bits:#x}/{m} -j RETURN"),
            Rule::QueueFirstPackets { packets } => format!(
                "-m connbytes --connbytes 0:{packets} --connbytes-dir original --connbytes-mode packets {queue}"
            ),
        };
        out.push_str(&format!("-A {CHAIN} {line}\n"));
    }
    for (hook, matches, _) in entry_points() {
        for m in matches {
            out.push_str(&format!(
                "-I {} 1 {m}-j {CHAIN}\n",
                hook.to_ascii_uppercase()
            ));
        }
    }
    out.push_str("COMMIT\n*filter\n");
    out.push_str(&format!(":{REJECT_CHAIN} - [0:0]\n"));
    for rule in rules() {
        if let Rule::RejectIfConnMarked { bits } = rule {
            let mark = format!("-m connmark --mark {bits:#x}/{m}");
            out.push_str(&format!(
                "-A {REJECT_CHAIN} {mark} -p tcp -j REJECT --reject-with tcp-reset\n\
                 -A {REJECT_CHAIN} {mark} -j REJECT\n"
            ));
        }
    }
    // Only reject-marked connections enter the chain: one match per
    // forwarded packet.
    out.push_str(&format!(
        "-I FORWARD 1 -m connmark --mark {MARK_REJECT:#x}/{m} -j {REJECT_CHAIN}\nCOMMIT\n"
    ));
    out
}

/// The nft chains (no table around them): a regular chain `phonehome` with
/// the rules, and one base chain per entry point, `phonehome_forward` and
/// `phonehome_output`, at priority mangle + 10 (after conntrack and the
/// mangle table, before fw4's filter chains). Tab-indented, one level.
pub fn nft_chains(opts: &Options) -> String {
    let queue = format!(
        "queue {}to {}",
        if opts.fail_closed {
            ""
        } else {
            "flags bypass "
        },
        opts.queue
    );
    let m = format!("{MARK_MASK:#010x}");
    let keep = format!("{:#010x}", !MARK_MASK);
    let mut out = format!("chain {NFT_TABLE} {{\n");
    for rule in rules() {
        let line = match rule {
            Rule::SaveMark { bits } => format!(
                "meta mark & {m} == {bits:#010x} ct mark set ct mark & {keep} | {bits:#010x}"
            ),
            Rule::DropIfConnMarked { bits } => format!("ct mark & {m} == {bits:#010x} drop"),
            Rule::RejectIfConnMarked { bits } => format!(
                "ct mark & {m} == {bits:#010x} meta l4proto tcp reject with tcp reset\n\t\
                 ct mark & {m} == {bits:#010x} reject"
            ),
            Rule::QueueDnsAnswers { proto } => {
                format!("{proto} sport 53 ct direction reply {queue}")
            }
            Rule::ReturnIfConnMarked { bits } => format!("ct mark & {m} == {bits:#010x} return"),
            Rule::ReturnIfMarked { bits } => format!("meta mark & {m} == {bits:#010x} return"),
            Rule::QueueFirstPackets { packets } => {
                format!("ct original packets <= {packets} {queue}")
            }
        };
        out.push_str(&format!("\t{line}\n"));
    }
    out.push_str("}\n");
    for (hook, _, matches) in entry_points() {
        out.push_str(&format!(
            "\nchain {NFT_TABLE}_{hook} {{\n\ttype filter hook {hook} priority mangle + 10; policy accept;\n\t{matches}jump {NFT_TABLE}\n}}\n"
        ));
    }
    out
}

/// The `nft -f` input of the nft backend: replaces `table inet phonehome`
/// atomically (declare, delete, define in one transaction).
pub fn nft_ruleset_up(opts: &Options) -> String {
    let mut out = format!(
        "table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\ntable inet {NFT_TABLE} {{\n"
    );
    for line in nft_chains(opts).lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            out.push_str(&format!("\t{line}\n"));
        }
    }
    out.push_str("}\n");
    out
}

/// The fw4 include (`/usr/share/nftables.d/table-post/30-phonehome.nft`):
/// the same chains, placed by fw4 inside its `table inet fw4`.
pub fn fw4_include(opts: &Options) -> String {
    format!(
        "# phonehome: chains for OpenWrt fw4, included into table inet fw4.\n\
         # Generated by `phonehome firewall print --backend fw4` (queue {}, {}).\n\
         # The init script regenerates it when /etc/config/phonehome changes\n\
         # the queue number or fail_closed.\n\n{}",
        opts.queue,
        if opts.fail_closed {
            "fail-closed"
        } else {
            "fail-open"
        },
        nft_chains(opts)
    )
}

/// What `phonehome firewall print` writes for the chosen backend.
pub fn render(opts: &Options) -> String {
    match opts.backend {
        Backend::Iptables => iptables_restore_up(opts),
        Backend::Nft => nft_ruleset_up(opts),
        Backend::Fw4 => fw4_include(opts),
    }
}

const FW4_NOTE: &str = "on OpenWrt the fw4 include installs the rules (openwrt-package/); \
     use `firewall print --backend fw4` to see them";

/// Runs `tool args...` with `input` on stdin (iptables-restore, nft -f -);
/// its stderr becomes the error.
fn feed(tool: &str, args: &[&str], input: &str) -> Result<(), String> {
    let mut child = Command::new(tool)
        .args(args)
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

fn restore(tool: &str, input: &str) -> Result<(), String> {
    feed(tool, &["--noflush", "--wait"], input)
}

fn nft(input: &str) -> Result<(), String> {
    feed("nft", &["-f", "-"], input)
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

/// Installs the rules (removing an older copy first). Where ip6tables is
/// missing but the kernel has IPv6, nothing is left installed and the
/// error says so: IPv4 judged and IPv6 passing unjudged would look like
/// protection and not be it. Only a kernel without IPv6 skips those rules.
pub fn up(opts: &Options) -> Result<(), String> {
    match opts.backend {
        Backend::Nft => return nft(&nft_ruleset_up(opts)),
        Backend::Fw4 => return Err(FW4_NOTE.into()),
        Backend::Iptables => {}
    }
    down(opts)?;
    let input = iptables_restore_up(opts);
    for (i, (tool, restore_tool)) in families().into_iter().enumerate() {
        match restore(restore_tool, &input) {
            Ok(()) => {}
            Err(e) if i == 1 && !run_quiet(tool, &["--version"]) => {
                if !kernel_has_ipv6() {
                    eprintln!("phonehome: this kernel has no IPv6: IPv6 rules skipped");
                    continue;
                }
                let _ = down(opts);
                return Err(format!(
                    "{e}\nip6tables is missing, so IPv6 traffic would pass unjudged: nothing \
                     was installed (install ip6tables, or use --backend nft)"
                ));
            }
            Err(e) => {
                let _ = down(opts);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Whether this network namespace's kernel speaks IPv6 at all.
fn kernel_has_ipv6() -> bool {
    std::path::Path::new("/proc/net/if_inet6").exists()
}

/// Removes the jumps and the chain; succeeds when they are already gone.
pub fn down(opts: &Options) -> Result<(), String> {
    match opts.backend {
        Backend::Nft => {
            return nft(&format!(
                "table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n"
            ))
        }
        Backend::Fw4 => return Err(FW4_NOTE.into()),
        Backend::Iptables => {}
    }
    for (tool, _) in families() {
        if !run_quiet(tool, &["--version"]) {
            continue;
        }
        for (hook, matches, _) in entry_points() {
            let hook = hook.to_ascii_uppercase();
            for m in matches {
                let mut args = vec!["-w", "-t", "mangle", "-D", &hook];
                args.extend(m.split_whitespace());
                args.extend(["-j", CHAIN]);
                for _ in 0..64 {
                    if !run_quiet(tool, &args) {
                        break;
                    }
                }
            }
        }
        for _ in 0..64 {
            let mark = format!("{MARK_REJECT:#x}/{MARK_MASK:#x}");
            let args = [
                "-w",
                "-t",
                "filter",
                "-D",
                "FORWARD",
                "-m",
                "connmark",
                "--mark",
                &mark,
                "-j",
                REJECT_CHAIN,
            ];
            if !run_quiet(tool, &args) {
                break;
            }
        }
        if run_quiet(tool, &["-w", "-t", "filter", "-n", "-L", REJECT_CHAIN]) {
            run_quiet(tool, &["-w", "-t", "filter", "-F", REJECT_CHAIN]);
            if !run_quiet(tool, &["-w", "-t", "filter", "-X", REJECT_CHAIN]) {
                return Err(format!(
                    "{tool}: cannot delete chain {REJECT_CHAIN} (still referenced?)"
                ));
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
        assert!(up.contains("--connbytes 0:20 --connbytes-dir original --connbytes-mode packets"));
        let ret = up.find("-j RETURN").unwrap();
        let save = up.find("--save-mark").unwrap();
        let drop = up.find("-j DROP").unwrap();
        let first = up.find("--connbytes").unwrap();
        assert!(
            ret < save && save < drop && drop < first,
            "rule order matters"
        );
        opts.fail_closed = true;
        assert!(!iptables_restore_up(&opts).contains("--queue-bypass"));
    }

    fn defaults() -> Options {
        Options {
            backend: Backend::Nft,
            queue: 0,
            fail_closed: false,
        }
    }

    /// Each rule of the model becomes one line in each backend, in order,
    /// with the same queue and fail-open choice.
    #[test]
    fn iptables_and_nft_render_the_same_rules_in_the_same_order() {
        for fail_closed in [false, true] {
            let opts = Options {
                queue: 7,
                fail_closed,
                ..defaults()
            };
            let ipt_text = iptables_restore_up(&opts);
            let ipt: Vec<String> = ipt_text
                .lines()
                .filter(|l| l.starts_with(&format!("-A {CHAIN} ")))
                .map(String::from)
                .collect();
            let chains = nft_chains(&opts);
            let mut nft: Vec<String> = Vec::new();
            for line in chains.split("\n}\n").next().unwrap().lines().skip(1) {
                // The reject rule is two nft lines (TCP reset, then ICMP).
                match nft.last_mut() {
                    Some(last) if last.ends_with(" reject with tcp reset") => {
                        last.push_str(" / ");
                        last.push_str(line.trim());
                    }
                    _ => nft.push(line.trim().to_string()),
                }
            }
            assert_eq!(ipt.len(), rules().len());
            assert_eq!(nft.len(), rules().len());
            for ((rule, i), n) in rules().iter().zip(&ipt).zip(&nft) {
                let (ipt_verdict, nft_verdict) = match rule {
                    Rule::SaveMark { .. } => ("CONNMARK --save-mark", "ct mark set"),
                    Rule::DropIfConnMarked { .. } => ("-j DROP", " drop"),
                    Rule::RejectIfConnMarked { .. } => {
                        // iptables: on to the filter table's reject chain.
                        assert!(ipt_text.contains(&format!(
                            "-A {REJECT_CHAIN} -m connmark --mark 0x30000000/0x30000000 -p tcp -j REJECT --reject-with tcp-reset\n\
                             -A {REJECT_CHAIN} -m connmark --mark 0x30000000/0x30000000 -j REJECT\n\
                             -I FORWARD 1 -m connmark --mark 0x30000000/0x30000000 -j {REJECT_CHAIN}\nCOMMIT\n"
                        )));
                        assert!(n.ends_with(" reject"), "{n}");
                        ("-j RETURN", " reject with tcp reset")
                    }
                    Rule::ReturnIfConnMarked { .. } | Rule::ReturnIfMarked { .. } => {
                        ("-j RETURN", " return")
                    }
                    Rule::QueueDnsAnswers { .. } | Rule::QueueFirstPackets { .. } => {
                        ("--queue-num 7", "queue ")
                    }
                };
                assert!(i.contains(ipt_verdict), "{rule:?}: {i}");
                assert!(n.contains(nft_verdict), "{rule:?}: {n}");
                if matches!(
                    rule,
                    Rule::QueueFirstPackets { .. } | Rule::QueueDnsAnswers { .. }
                ) {
                    assert_eq!(i.contains("--queue-bypass"), !fail_closed);
                    assert_eq!(n.contains("flags bypass"), !fail_closed, "{n}");
                    assert!(n.ends_with("to 7"));
                }
            }
            assert!(nft[9].starts_with("ct original packets <= 20 "));
            assert!(ipt[9].contains("--connbytes 0:20 --connbytes-dir original"));
            assert!(nft[7].starts_with("udp sport 53 ct direction reply queue"));
            assert!(nft[8].starts_with("tcp sport 53 ct direction reply queue"));
            assert!(ipt[7].contains("-p udp --sport 53 -m conntrack --ctdir REPLY "));
            assert!(ipt[8].contains("-p tcp --sport 53 -m conntrack --ctdir REPLY "));
            // The repeated packet of an allowed connection leaves right
            // after its mark is saved, before any queue rule.
            assert!(ipt[2].starts_with(&format!(
                "-A {CHAIN} -m mark --mark 0x10000000/0x30000000 -j RETURN"
            )));
            assert!(nft[2].starts_with("meta mark & 0x30000000 == 0x10000000 return"));
        }
    }

    #[test]
    fn nft_hooks_forward_and_router_dns_answers_at_mangle_plus_10() {
        let chains = nft_chains(&defaults());
        assert!(chains.contains(
            "chain phonehome_forward {\n\ttype filter hook forward priority mangle + 10; policy accept;\n\tjump phonehome\n}"
        ));
        assert!(chains.contains("hook output priority mangle + 10; policy accept;\n\toifname != \"lo\" meta l4proto { tcp, udp } th sport 53 jump phonehome\n}"));
        assert!(chains.contains("hook input priority mangle + 10; policy accept;\n\tiifname != \"lo\" meta l4proto { tcp, udp } th dport 53 jump phonehome\n}"));
        let ipt = iptables_restore_up(&defaults());
        for jump in [
            "-I OUTPUT 1 ! -o lo -p udp --sport 53 -j phonehome\n",
            "-I OUTPUT 1 ! -o lo -p tcp --sport 53 -j phonehome\n",
            "-I INPUT 1 ! -i lo -p udp --dport 53 -j phonehome\n",
            "-I INPUT 1 ! -i lo -p tcp --dport 53 -j phonehome\n",
        ] {
            assert!(ipt.contains(jump), "{jump}");
        }
        let ruleset = nft_ruleset_up(&defaults());
        assert!(ruleset.starts_with(
            "table inet phonehome\ndelete table inet phonehome\ntable inet phonehome {\n\tchain phonehome {\n"
        ));
        assert_eq!(ruleset.matches('{').count(), ruleset.matches('}').count());
    }

    /// The include shipped in the OpenWrt package is exactly what the nft
    /// backend renders for the default config (queue 0, fail-open).
    #[test]
    fn openwrt_fw4_include_is_the_rendered_rule_model() {
        let shipped = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/openwrt-package/files/phonehome.nft"
        ));
        let rendered = fw4_include(&Options {
            backend: Backend::Fw4,
            ..defaults()
        });
        assert_eq!(
            shipped, rendered,
            "regenerate with: phonehome firewall print --backend fw4 > openwrt-package/files/phonehome.nft"
        );
        // And the nft backend's table holds the very same chains.
        let standalone = nft_ruleset_up(&defaults());
        let body: String = standalone
            .lines()
            .skip(3)
            .take_while(|l| *l != "}")
            .map(|l| format!("{}\n", l.strip_prefix('\t').unwrap_or(l)))
            .collect();
        assert_eq!(body, nft_chains(&defaults()));
    }
}
