//! The owner database end to end through the CLI: `db compile` from the
//! real WhoTracks.me dump (../shared/data), a real iptoasn excerpt, the
//! Public Suffix List from Debian's `publicsuffix` package, and small
//! hand-written fixtures in the schemas of the lists whose data may not be
//! committed (Tracker Radar, Disconnect, TrackerDB: CC BY-NC-SA); then
//! `db lookup` against the result.

mod common;

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

/// The real WhoTracks.me dump (see `common::whotracksme_dump`).
fn whotracksme() -> String {
    common::whotracksme_dump().display().to_string()
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

/// Compiles `sources` alone (no built-in table) into a fresh file.
fn compile_only(name: &str, sources: &[String]) -> PathBuf {
    let db = temp(name);
    let mut args = vec![
        "db",
        "compile",
        "--no-builtin",
        "--out",
        db.to_str().unwrap(),
    ];
    args.extend(sources.iter().map(String::as_str));
    ok(&args);
    db
}

/// `networks=owned` (what the router package compiles): AS ranges only of
/// the networks the built-in table names an owner for, and every row's
/// country. A dropped range between two kept ones of the same AS must
/// stay a gap: 1.1.1.1 (AS7497 between Cloudflare's 1.1.1.0 and
/// 1.1.1.2-255) named Cloudflare would be a wrong owner.
#[test]
fn iptoasn_owned_networks_keep_every_country_and_no_other_network() {
    let tsv = fixture("ip2asn-v4-excerpt.tsv");
    let db = compile_only("owned.db", &[format!("iptoasn:{tsv},networks=owned")]);
    let cf = lookup(&db, "1.1.1.200");
    assert_eq!(
        (cf["asn"].as_u64(), cf["host_owner"].as_str()),
        (Some(13335), Some("Cloudflare"))
    );
    assert_eq!(lookup(&db, "1.1.1.0")["asn"], 13335);
    let gap = lookup(&db, "1.1.1.1");
    assert_eq!(
        (&gap["asn"], &gap["host_owner"], gap["country"].as_str()),
        (
            &serde_json::Value::Null,
            &serde_json::Value::Null,
            Some("CN")
        ),
        "{gap}"
    );
    let fiber = lookup(&db, "23.228.130.1");
    assert_eq!(fiber["asn"], serde_json::Value::Null, "{fiber}");
    assert_eq!(fiber["country"], "US");
    assert_eq!(lookup(&db, "8.8.8.8")["host_owner"], "Google");
    // Smaller than every network, as it should be.
    let all = compile_only("all-networks.db", &[format!("iptoasn:{tsv}")]);
    let (owned, every) = (
        std::fs::metadata(&db).unwrap().len(),
        std::fs::metadata(&all).unwrap().len(),
    );
    assert!(owned < every, "{owned} vs {every}");
    // Only network sources take it, with one of two values.
    for bad in [
        format!("iptoasn:{tsv},networks=some"),
        format!("hosts:{},networks=owned", fixture("hosts.txt")),
    ] {
        let out = phonehome(&["db", "compile", "--out", "/nonexistent/x.db", &bad]);
        assert!(!out.status.success(), "{bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("networks="),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for f in [db, all] {
        std::fs::remove_file(f).ok();
    }
}

#[cfg(feature = "mmdb")]
#[test]
fn mmdb_files_in_maxmind_and_ipinfo_schemas() {
    // Written by mmdb-writer (make-asn-mmdb.py) from real iptoasn rows.
    for schema in ["maxmind", "ipinfo"] {
        let db = compile_only(
            &format!("{schema}.db"),
            &[format!(
                "mmdb:{}",
                fixture(&format!("asn-{schema}-schema.mmdb"))
            )],
        );
        let g = lookup(&db, "8.8.8.8");
        assert_eq!(
            (
                g["asn"].as_u64(),
                g["as_org"].as_str(),
                g["host_owner"].as_str()
            ),
            (Some(15169), Some("Google LLC"), Some("Google")),
            "{schema}"
        );
        assert_eq!(lookup(&db, "1.1.1.1")["asn"], 7497, "{schema}");
        assert_eq!(lookup(&db, "1.1.1.200")["host_owner"], "Cloudflare");
        assert_eq!(lookup(&db, "34.67.255.255")["asn"], 15169);
        assert_eq!(lookup(&db, "2001:4860:4860::8888")["asn"], 15169);
        assert_eq!(lookup(&db, "2606:4700::1111")["asn"], 13335);
        assert_eq!(lookup(&db, "8.8.9.1")["asn"], serde_json::Value::Null);
        assert_eq!(lookup(&db, "2001:db8::1")["asn"], serde_json::Value::Null);
        std::fs::remove_file(&db).ok();
        // networks=owned: the clouds' networks stay, AS7497's goes.
        let owned = compile_only(
            &format!("{schema}-owned.db"),
            &[format!(
                "mmdb:{},networks=owned",
                fixture(&format!("asn-{schema}-schema.mmdb"))
            )],
        );
        assert_eq!(lookup(&owned, "8.8.8.8")["host_owner"], "Google");
        assert_eq!(lookup(&owned, "2606:4700::1111")["asn"], 13335);
        assert_eq!(
            lookup(&owned, "1.1.1.1")["asn"],
            serde_json::Value::Null,
            "{schema}"
        );
        std::fs::remove_file(&owned).ok();
    }
    // Country databases: DB-IP Country Lite's schema, and IPinfo Lite's
    // (networks and countries in one). A geolocation database's country
    // replaces iptoasn's registration country (1.1.1.1: CN there).
    let iptoasn = format!("iptoasn:{}", fixture("ip2asn-v4-excerpt.tsv"));
    let registered = compile_only("registered.db", std::slice::from_ref(&iptoasn));
    assert_eq!(lookup(&registered, "1.1.1.1")["country"], "CN");
    assert_eq!(lookup(&registered, "8.8.8.8")["country"], "US");
    for (file, asn) in [
        ("country-dbip-schema.mmdb", None),
        ("lite-ipinfo-schema.mmdb", Some(45102)),
    ] {
        let db = compile_only(
            "countries.db",
            &[iptoasn.clone(), format!("mmdb:{}", fixture(file))],
        );
        let sg = lookup(&db, "47.74.10.1");
        assert_eq!(sg["country"], "SG", "{file}");
        if let Some(asn) = asn {
            assert_eq!(sg["asn"], asn, "{file}");
        }
        assert_eq!(lookup(&db, "1.1.1.1")["country"], "AU", "{file}");
        assert_eq!(lookup(&db, "2001:4860::1")["country"], "US", "{file}");
        assert_eq!(
            lookup(&db, "192.0.2.1")["country"],
            serde_json::Value::Null,
            "{file}"
        );
        std::fs::remove_file(&db).ok();
    }
    // Not an MMDB: the file is named, nothing is written.
    let out_db = temp("never-mmdb.db");
    let out = phonehome(&[
        "db",
        "compile",
        "--out",
        out_db.to_str().unwrap(),
        &format!("mmdb:{}", fixture("hosts.txt")),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&fixture("hosts.txt")), "{err}");
    assert!(!out_db.exists());
}

/// `trackerdb.db`: the real dump loaded into SQLite by Debian's sqlite3.
#[cfg(feature = "sqlite")]
fn trackerdb_sqlite_file() -> PathBuf {
    let db = temp("trackerdb.db");
    std::fs::remove_file(&db).ok();
    let dump = std::fs::File::open(whotracksme()).unwrap();
    let status = Command::new("sqlite3")
        .arg(&db)
        .stdin(dump)
        .status()
        .expect("sqlite3 (Debian package sqlite3)");
    assert!(status.success());
    db
}

/// Every tracker domain of the real dump, as its INSERT rows name them.
#[cfg(feature = "sqlite")]
fn dump_domains() -> Vec<String> {
    let text = std::fs::read_to_string(whotracksme()).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("INSERT INTO \"tracker_domains\" VALUES('"))
        .filter_map(|rest| rest.split("','").nth(1)?.split('\'').next())
        .map(str::to_string)
        .collect()
}

#[cfg(feature = "sqlite")]
#[test]
fn trackerdb_sqlite_file_reads_like_its_sql_dump() {
    use phonehome::owners::db::OwnerDb;
    let sqlite = trackerdb_sqlite_file();
    let from_sqlite = compile_only(
        "from-sqlite.db",
        &[format!("trackerdb:{}", sqlite.display())],
    );
    let from_dump = compile_only("from-dump.db", &[format!("whotracksme:{}", whotracksme())]);
    let (a, b) = (
        OwnerDb::load(&from_sqlite).unwrap(),
        OwnerDb::load(&from_dump).unwrap(),
    );
    let domains = dump_domains();
    assert!(domains.len() > 4000);
    assert_eq!(a.domain_count(), b.domain_count());
    for d in &domains {
        let (x, y) = (a.lookup_domain(d).unwrap(), b.lookup_domain(d).unwrap());
        assert_eq!((x.owner, x.category), (y.owner, y.category), "{d}");
    }
    assert_eq!(lookup(&from_sqlite, "mmtro.com")["owner"], "1000mercis");
    for f in [sqlite, from_sqlite, from_dump] {
        std::fs::remove_file(f).ok();
    }
}
