//! The nft backend and the OpenWrt fw4 include, checked by the real `nft`
//! against the running kernel (`nft -c`: parsed, resolved and validated
//! in the kernel, then rolled back) in a throw-away network namespace.
//!
//! This kernel has no nft `queue` expression, so the checked ruleset has
//! each `queue ...` statement swapped for `counter`; the unmodified ruleset
//! must fail on those statements and nowhere else. Needs root and nft
//! (scripts/install-deps installs nftables). The iptables backend refuses
//! to leave IPv6 unjudged when ip6tables is missing.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn phonehome(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_phonehome"))
        .args(args)
        .output()
        .expect("run phonehome");
    assert!(out.status.success(), "phonehome {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// `nft -c -f -` in a new network namespace (nothing of the host's is seen
/// or touched).
fn nft_check(ruleset: &str) -> Output {
    let mut child = Command::new("unshare")
        .args(["--net", "nft", "-c", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run unshare --net nft (root and nftables needed)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ruleset.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn without_queue(ruleset: &str) -> String {
    ruleset
        .lines()
        .map(|line| match line.find("queue ") {
            Some(at) => format!("{}counter", &line[..at]),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn assert_valid_but_for_queue(what: &str, ruleset: &str) {
    let checked = nft_check(&without_queue(ruleset));
    assert!(
        checked.status.success(),
        "{what} refused by nft -c:\n{}\n{ruleset}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let full = nft_check(ruleset);
    if !full.status.success() {
        // Only the queue statements may fail (no nft_queue in this kernel):
        // every error's caret line points under a `queue` statement.
        let err = String::from_utf8_lossy(&full.stderr);
        let errors: Vec<&str> = err.lines().filter(|l| l.contains(": Error: ")).collect();
        assert!(!errors.is_empty(), "{err}");
        for quoted in err.lines().filter(|l| {
            !l.contains(": Error: ") && !l.trim_start().starts_with('^') && !l.trim().is_empty()
        }) {
            assert!(
                quoted.contains("queue "),
                "{what}: unexpected error on {quoted}\n{err}"
            );
        }
    }
}

#[test]
#[ignore = "needs root and network namespaces"]
fn nft_backend_ruleset_is_accepted_by_the_kernel() {
    for args in [
        &["firewall", "print", "--backend", "nft"][..],
        &[
            "firewall",
            "print",
            "--backend",
            "nft",
            "--queue",
            "5",
            "--fail-closed",
        ][..],
    ] {
        let ruleset = phonehome(args);
        assert!(ruleset.contains("table inet phonehome {"));
        assert_valid_but_for_queue("nft backend", &ruleset);
    }
}

#[test]
#[ignore = "needs root and network namespaces"]
fn fw4_include_is_accepted_inside_the_fw4_table() {
    let include = phonehome(&["firewall", "print", "--backend", "fw4"]);
    assert_eq!(
        include,
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/openwrt-package/files/phonehome.nft"
        ))
        .unwrap(),
        "the shipped fw4 include and `firewall print --backend fw4` differ"
    );
    // fw4 places table-post includes at the end of its `table inet fw4`.
    let ruleset = format!(
        "table inet fw4 {{\n\tchain forward {{\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tct state established,related accept\n\t}}\n{include}}}\n"
    );
    assert_valid_but_for_queue("fw4 include", &ruleset);
}

#[test]
fn config_file_sets_queue_and_fail_closed() {
    let dir = std::env::temp_dir().join(format!("phonehome-nft-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("phonehome");
    std::fs::write(
        &cfg,
        "config phonehome 'main'\n\toption queue '9'\n\toption fail_closed '1'\n",
    )
    .unwrap();
    let ruleset = phonehome(&[
        "firewall",
        "print",
        "--backend",
        "nft",
        "-c",
        cfg.to_str().unwrap(),
    ]);
    assert!(
        ruleset.contains("ct original packets <= 20 queue to 9\n"),
        "{ruleset}"
    );
    assert!(!ruleset.contains("bypass"));
    std::fs::write(
        &cfg,
        "config phonehome 'main'\n\toption fail_closed 'maybe'\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_phonehome"))
        .args(["firewall", "print", "-c", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(":2:") && err.contains("fail_closed"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `firewall up/down --backend nft` against the kernel, in a throw-away
/// network namespace: down is idempotent; up installs `table inet
/// phonehome` where the kernel has nft `queue`, and otherwise fails with
/// nft's own message (the transaction is atomic: nothing half-installed).
#[test]
#[ignore = "needs root and network namespaces"]
fn nft_backend_up_and_down_in_a_namespace() {
    let bin = env!("CARGO_BIN_EXE_phonehome");
    let script = format!(
        "set -e\n\
         {bin} firewall down --backend nft\n\
         {bin} firewall down --backend nft\n\
         if {bin} firewall up --backend nft 2>err; then\n\
           nft list table inet phonehome | grep -q 'ct original packets <= 20 queue'\n\
           echo installed\n\
         else\n\
           grep -q 'nft refused the rules' err\n\
           ! nft list table inet phonehome 2>/dev/null\n\
           echo refused\n\
         fi\n\
         {bin} firewall down --backend nft\n\
         ! nft list table inet phonehome 2>/dev/null\n"
    );
    let dir = std::env::temp_dir().join(format!("phonehome-nft-up-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .current_dir(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("installed") || stdout.contains("refused"));
}

/// `firewall up` with the iptables backend where ip6tables is missing but
/// the kernel has IPv6 (a PATH without it stands for a router without the
/// package): it fails, says why, and leaves no IPv4 rules behind. It once
/// installed IPv4 only and went on: IPv4 judged and IPv6 passing unjudged
/// looks like protection and is not.
#[test]
#[ignore = "needs root and network namespaces"]
fn iptables_backend_without_ip6tables_installs_nothing() {
    let bin = env!("CARGO_BIN_EXE_phonehome");
    let dir = std::env::temp_dir().join(format!("phonehome-no-ip6tables-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    for tool in ["iptables", "iptables-restore"] {
        let out = Command::new("sh")
            .args(["-c", &format!("readlink -f \"$(command -v {tool})\"")])
            .output()
            .unwrap();
        let target = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            !target.is_empty(),
            "{tool} not found (scripts/install-deps installs iptables)"
        );
        std::os::unix::fs::symlink(&target, dir.join("bin").join(tool)).unwrap();
    }
    let script = format!(
        "if env PATH={d}/bin {bin} firewall up 2>{d}/err; then echo installed; else echo refused; fi\n\
         cat {d}/err\n\
         echo rules: $(iptables -w -t mangle -S | grep -c phonehome)\n",
        d = dir.display()
    );
    let out = Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("refused"), "{stdout}");
    assert!(stdout.contains("ip6tables is missing"), "{stdout}");
    assert!(
        stdout.contains("rules: 0"),
        "IPv4 rules left behind: {stdout}"
    );
}
