//! Owner coverage of what phones actually contact: every host of
//! `tests/fixtures/vendor_endpoints.tsv` (the telemetry, update, cloud, ad
//! and analytics hosts of the big phone makers and of the third parties
//! they preinstall, assembled from the companies' own documentation) is
//! looked up with `phonehome db lookup` in a database compiled from the
//! built-in table alone, and again with the WhoTracks.me dump imported.
//! Prints the coverage per vendor for both; fails on any host the built-in
//! table misses or names wrongly (owner, or category where the list gives
//! one), and on any host the imported dump turns to another owner.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Endpoint {
    vendor: String,
    host: String,
    owner: String,
    /// None = any category.
    category: Option<String>,
}

fn endpoints() -> Vec<Endpoint> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vendor_endpoints.tsv");
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "{}:{}: {l:?}", path.display(), i + 1);
            Endpoint {
                vendor: f[0].into(),
                host: f[1].into(),
                owner: f[2].into(),
                category: (f[3] != "*").then(|| f[3].into()),
            }
        })
        .collect()
}

fn phonehome(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_phonehome"))
        .args(args)
        .output()
        .expect("run phonehome");
    assert!(
        out.status.success(),
        "phonehome {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn compile(name: &str, sources: &[String]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("phonehome-vendors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    common::compile_owner_db(&out, sources);
    out
}

/// (owner, category, parent) that `db lookup --json` gives `host`.
fn lookup(db: &Path, host: &str) -> (Option<String>, Option<String>, Option<String>) {
    let text = phonehome(&["db", "lookup", "--db", db.to_str().unwrap(), host, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let s = |k: &str| v[k].as_str().map(str::to_string);
    (s("owner"), s("category"), s("parent"))
}

/// A company name without legal suffixes ("GitHub, Inc." is GitHub).
fn bare(name: &str) -> &str {
    name.trim_end_matches(", Inc.")
        .trim_end_matches(" Inc.")
        .trim_end_matches(" GmbH")
}

/// Per vendor: (hosts, named right, named wrong), and the problems. With
/// `imported`, `db` is a database with other lists imported: a host is
/// right when it is named for the same company (the owner, or the company
/// the built-in table's owner belongs to: WhoTracks.me names Twitch
/// "Amazon" and GitHub "GitHub, Inc."), whatever category the list gives.
fn coverage(
    db: &Path,
    list: &[Endpoint],
    imported: Option<&Path>,
) -> (BTreeMap<String, [usize; 3]>, Vec<String>) {
    let mut per: BTreeMap<String, [usize; 3]> = BTreeMap::new();
    let mut problems = Vec::new();
    for e in list {
        let row = per.entry(e.vendor.clone()).or_default();
        row[0] += 1;
        let (owner, category, parent) = lookup(db, &e.host);
        let Some(owner) = owner else {
            problems.push(format!("{}: no owner (want {})", e.host, e.owner));
            continue;
        };
        let same_company = bare(&owner) == e.owner
            || imported.is_some_and(|builtin| {
                let (_, _, builtin_parent) = lookup(builtin, &e.host);
                parent.as_deref() == Some(&e.owner)
                    || builtin_parent.is_some_and(|p| p == owner || Some(&p) == parent.as_ref())
            });
        if !same_company {
            row[2] += 1;
            problems.push(format!("{}: owner {owner}, want {}", e.host, e.owner));
            continue;
        }
        match (&e.category, &category) {
            (Some(want), Some(got)) if want != got && imported.is_none() => {
                row[2] += 1;
                problems.push(format!("{}: category {got}, want {want}", e.host));
            }
            _ => row[1] += 1,
        }
    }
    (per, problems)
}

fn print(title: &str, per: &BTreeMap<String, [usize; 3]>) {
    println!("{title}");
    let (mut all, mut right, mut wrong) = (0, 0, 0);
    for (vendor, [n, r, w]) in per {
        println!(
            "  {vendor:<14} {r:>3}/{n:<3} {:>5.1} %  wrong {w}",
            100.0 * *r as f64 / *n as f64
        );
        all += n;
        right += r;
        wrong += w;
    }
    println!(
        "  {:<14} {right:>3}/{all:<3} {:>5.1} %  wrong {wrong}",
        "all",
        100.0 * right as f64 / all as f64
    );
}

#[test]
fn the_makers_hosts_are_named_by_their_owners() {
    let list = endpoints();
    assert!(list.len() > 300, "{} hosts", list.len());
    let builtin = compile("builtin.db", &[]);
    let (per, problems) = coverage(&builtin, &list, None);
    print("owner coverage, built-in table", &per);
    let with_dump = compile(
        "whotracksme.db",
        &[format!(
            "whotracksme:{}",
            common::whotracksme_dump().display()
        )],
    );
    let (per_dump, problems_dump) = coverage(&with_dump, &list, Some(&builtin));
    print(
        "owner coverage, built-in table + WhoTracks.me 2022-08",
        &per_dump,
    );
    assert!(
        problems.is_empty(),
        "built-in table:\n{}\nwith WhoTracks.me:\n{}",
        problems.join("\n"),
        problems_dump.join("\n")
    );
    assert!(
        problems_dump.is_empty(),
        "with WhoTracks.me:\n{}",
        problems_dump.join("\n")
    );
    // Owners that belong to another company say so.
    for (host, parent) in [
        ("ulogs.umeng.com", Some("Alibaba")),
        ("api.swiftkey.com", Some("Microsoft")),
        ("www.oneplus.com", Some("OPPO")),
        ("www.motorola.com", Some("Lenovo")),
        ("ff.avast.com", Some("Gen Digital")),
        ("www.avg.com", Some("Avast")),
        ("project.web.app", Some("Google")),
        ("www.hihonor.com", None),
    ] {
        assert_eq!(lookup(&builtin, host).2.as_deref(), parent, "{host}");
    }
}
