//! The owner database end to end through the CLI: `db compile` from the
//! real WhoTracks.me dump (../shared/data), a real iptoasn excerpt, the
//! Public Suffix List from Debian's `publicsuffix` package, and small
//! hand-written fixtures in the schemas of the lists whose data may not be
//! committed (Tracker Radar, Disconnect, TrackerDB: CC BY-NC-SA); then
//! `db lookup` against the result.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> String {
    root()
        .join("tests/fixtures/owners")
        .join(name)
        .display()
        .to_string()
}

/// The real WhoTracks.me dump: `../shared/data/` beside the checkout (as
/// DESIGN.md places it), `/work/shared/data/`, or `$PHONEHOME_SHARED_DATA`.
fn whotracksme() -> String {
    const FILE: &str = "whotracksme-trackerdb-2022-08.sql";
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("PHONEHOME_SHARED_DATA") {
        candidates.push(PathBuf::from(dir).join(FILE));
    }
    candidates.push(root().join("../shared/data").join(FILE));
    candidates.push(PathBuf::from("/work/shared/data").join(FILE));
    candidates
        .iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the WhoTracks.me dump is not at any of {candidates:?} (set PHONEHOME_SHARED_DATA)"
            )
        })
        .display()
        .to_string()
}
const PSL: &str = "/usr/share/publicsuffix/public_suffix_list.dat";

fn phonehome(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phonehome"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run phonehome")
}

fn ok(args: &[&str]) -> String {
    let out = phonehome(args);
    assert!(
        out.status.success(),
        "phonehome {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("phonehome-ownerdb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Compiles the full test database once per test (it takes ~0.1 s).
fn compile_all(out: &Path) -> String {
    let sources = [
        format!("whotracksme:{}", whotracksme()),
        format!("iptoasn:{}", fixture("ip2asn-v4-excerpt.tsv")),
        format!("tds:{}", fixture("tds.json")),
        format!("tracker-radar:{}", fixture("tracker-radar")),
        format!("disconnect:{}", fixture("disconnect-services.json")),
        format!(
            "disconnect-entities:{}",
            fixture("disconnect-entities.json")
        ),
        format!("trackerdb:{}", fixture("trackerdb.json")),
        format!(
            "hosts:{},owner=Hosts List,category=advertising",
            fixture("hosts.txt")
        ),
        format!(
            "abp:{},owner=ABP List,category=analytics",
            fixture("abp.txt")
        ),
    ];
    let mut args = vec![
        "db",
        "compile",
        "--out",
        out.to_str().unwrap(),
        "--psl",
        PSL,
    ];
    args.extend(sources.iter().map(String::as_str));
    let out = phonehome(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn lookup(db: &Path, query: &str) -> serde_json::Value {
    let text = ok(&[
        "db",
        "lookup",
        "--db",
        db.to_str().unwrap(),
        query,
        "--json",
    ]);
    serde_json::from_str(&text).unwrap()
}

#[test]
fn whotracksme_dump_and_iptoasn_excerpt() {
    let db = temp("all.db");
    let log = compile_all(&db);
    // The real dump: 4,327 tracker_domains rows; the built-in table comes
    // first, so the ones it already names are counted there.
    let wtm: usize = log
        .lines()
        .find(|l| l.starts_with("whotracksme:"))
        .and_then(|l| l.split(": ").nth(1)?.split(' ').next()?.parse().ok())
        .expect("whotracksme count");
    assert!(wtm > 4000, "{log}");

    // The check: google-analytics.com names Google.
    let ga = lookup(&db, "google-analytics.com");
    assert_eq!(ga["owner"], "Google");
    assert_eq!(ga["category"], "analytics");
    assert_eq!(ga["source"], "builtin");
    // Rows only the dump has: company names, categories mapped.
    let m = lookup(&db, "www.mmtro.com");
    assert_eq!(
        (m["owner"].as_str(), m["category"].as_str()),
        (Some("1000mercis"), Some("analytics"))
    );
    assert_eq!(m["rule"], "mmtro.com");
    assert_eq!(m["source"], "whotracksme:whotracksme-trackerdb-2022-08.sql");
    let li = lookup(&db, "licdn.com");
    assert_eq!(li["owner"], "Microsoft", "LinkedIn's company in the dump");

    // iptoasn rows (real, public domain): networks and hosting owners.
    let g = lookup(&db, "8.8.8.8");
    assert_eq!(
        (g["asn"].as_u64(), g["host_owner"].as_str()),
        (Some(15169), Some("Google"))
    );
    assert_eq!(g["as_org"], "GOOGLE - Google LLC");
    assert_eq!(lookup(&db, "1.1.1.1")["asn"], 7497);
    assert_eq!(lookup(&db, "1.1.1.2")["host_owner"], "Cloudflare");
    assert_eq!(
        lookup(&db, "74.125.139.132")["asn"],
        serde_json::Value::Null,
        "gap in the excerpt"
    );
    assert_eq!(lookup(&db, "34.113.0.1")["as_org"], "GOOGLE-2 - Google LLC");

    // PSL (ICANN section): unlisted names group under their registrable domain.
    let u = lookup(&db, "a.b.example.co.uk");
    assert_eq!(u["owner"], serde_json::Value::Null);
    assert_eq!(u["registrable_domain"], "example.co.uk");
    let s3 = lookup(&db, "bucket.s3.ap-southeast-1.amazonaws.com");
    assert_eq!(s3["registrable_domain"], "amazonaws.com");
    assert_eq!(s3["owner"], "Amazon AWS");

    let text = ok(&[
        "db",
        "lookup",
        "--db",
        db.to_str().unwrap(),
        "google-analytics.com",
    ]);
    assert_eq!(
        text.trim(),
        "google-analytics.com: Google (analytics), source builtin, rule google-analytics.com"
    );
    std::fs::remove_file(&db).ok();
}

#[test]
fn schema_fixtures_of_the_non_free_lists() {
    let db = temp("fixtures.db");
    compile_all(&db);
    // TDS: tracker owner display name and category; CNAME-cloaked alias.
    let t = lookup(&db, "pixel.ads-tracker.example");
    assert_eq!(
        (t["owner"].as_str(), t["category"].as_str()),
        (Some("Example Ads"), Some("advertising"))
    );
    let c = lookup(&db, "stats.news.example");
    assert_eq!(c["owner"], "Metrics Example");
    assert_eq!(c["cname_cloak"], true);
    assert_eq!(lookup(&db, "ads-static.example")["owner"], "Example Ads");
    // Tracker Radar: cname "original" names are cloaked trackers.
    let tr = lookup(&db, "t.shop.example");
    assert_eq!(
        (tr["owner"].as_str(), tr["cname_cloak"].as_bool()),
        (Some("Example Ads"), Some(true))
    );
    assert_eq!(lookup(&db, "exampleads.example")["owner"], "Example Ads");
    // Disconnect: category mapping (Content → cdn).
    let v = lookup(&db, "video-cdn.example");
    assert_eq!(
        (v["owner"].as_str(), v["category"].as_str()),
        (Some("Video Example"), Some("cdn"))
    );
    // TrackerDB JSON: organisation name, or the pattern name without one.
    assert_eq!(lookup(&db, "counter.example")["owner"], "Lonely Counter");
    assert_eq!(lookup(&db, "counter.example")["category"], "analytics");
    // Flat lists with per-source owner and category.
    let h = lookup(&db, "tracker.hosts.example");
    assert_eq!(
        (h["owner"].as_str(), h["category"].as_str()),
        (Some("Hosts List"), Some("advertising"))
    );
    let a = lookup(&db, "pixel.abp.example");
    assert_eq!(
        (a["owner"].as_str(), a["category"].as_str()),
        (Some("ABP List"), Some("analytics"))
    );
    assert_eq!(
        lookup(&db, "ok.abp.example")["owner"],
        serde_json::Value::Null,
        "exception rule"
    );
    assert_eq!(
        lookup(&db, "abp.example")["owner"],
        serde_json::Value::Null,
        "path rule"
    );
    std::fs::remove_file(&db).ok();
}

#[test]
fn malformed_input_names_file_and_line_and_writes_nothing() {
    let bad = temp("bad-hosts.txt");
    std::fs::write(&bad, "# list\n0.0.0.0 fine.example\n0.0.0.0 not..valid\n").unwrap();
    let out_db = temp("never.db");
    let out = phonehome(&[
        "db",
        "compile",
        "--out",
        out_db.to_str().unwrap(),
        &format!("hosts:{}", bad.display()),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "{}:3: 'not..valid' is not a domain name",
            bad.display()
        )),
        "{err}"
    );
    assert!(!out_db.exists());

    let bad_tsv = temp("bad.tsv");
    std::fs::write(
        &bad_tsv,
        "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n1.0.1.0\tnope\t1\tUS\tX\n",
    )
    .unwrap();
    let out = phonehome(&[
        "db",
        "compile",
        "--out",
        out_db.to_str().unwrap(),
        &format!("iptoasn:{}", bad_tsv.display()),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":2: 'nope' is not an address"), "{err}");

    let bad_json = temp("bad-tds.json");
    std::fs::write(&bad_json, "{\n  \"trackers\": {\n    \"x.example\": \n}\n").unwrap();
    let out = phonehome(&[
        "db",
        "compile",
        "--out",
        out_db.to_str().unwrap(),
        &format!("tds:{}", bad_json.display()),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad-tds.json:4:"), "{err}");

    let out = phonehome(&[
        "db",
        "compile",
        "--out",
        out_db.to_str().unwrap(),
        "gopher:/x",
    ]);
    assert_eq!(out.status.code(), Some(2), "usage error");
}

#[test]
fn corrupt_database_is_refused() {
    let db = temp("corrupt.db");
    ok(&["db", "compile", "--out", db.to_str().unwrap()]);
    let mut bytes = std::fs::read(&db).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&db, &bytes).unwrap();
    let out = phonehome(&["db", "lookup", "--db", db.to_str().unwrap(), "xiaomi.com"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum mismatch"));
    std::fs::remove_file(&db).ok();
}
