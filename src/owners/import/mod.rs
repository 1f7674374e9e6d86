//! Importers: the lists people already trust, read into the owner database
//! builder. Each source is named on the command line as `KIND:PATH`, with
//! optional `,owner=NAME` and `,category=CATEGORY` for lists that carry no
//! owner of their own (hosts files, domain lists, AdGuard/ABP lists), and
//! every importer maps its source's taxonomy onto phonehome's categories.
//! Network sources (`iptoasn`, `mmdb`) take `,networks=owned`: only the
//! networks of the AS numbers the built-in table names a hosting owner for
//! (the clouds and the companies' own networks) are kept, every range's
//! country still is: what a database for a router's flash holds.
//!
//! | kind | format |
//! |---|---|
//! | `hosts` | hosts file: `0.0.0.0 name [name...]` |
//! | `domains` | one domain per line |
//! | `abp` | AdGuard / Adblock Plus: `\|\|domain^` rules (others skipped) |
//! | `whotracksme` | WhoTracks.me / Ghostery tracker database as an SQL dump |
//! | `trackerdb` | Ghostery TrackerDB JSON (`trackerdb.json`) |
//! | `tds` | DuckDuckGo blocklist TDS JSON (`tds.json`) |
//! | `tracker-radar` | DuckDuckGo Tracker Radar checkout (`entities/`, `domains/<region>/`) |
//! | `disconnect` | Disconnect `services.json` |
//! | `disconnect-entities` | Disconnect `entities.json` |
//! | `iptoasn` | iptoasn.com `ip2asn-v4.tsv` / `ip2asn-v6.tsv` / `ip2asn-combined.tsv` (networks and their registration country) |
//! | `mmdb` | any ASN or country MaxMind DB: GeoLite2-ASN, DB-IP ASN Lite, DB-IP Country Lite, GeoLite2-Country, IPinfo ASN / Lite (host-side feature `mmdb`) |
//!
//! `whotracksme:` and `trackerdb:` also take the SQLite file itself
//! (`trackerdb.db`, recognised by its header) when built with the host-side
//! feature `sqlite`; without it the error says how to dump it to SQL.
//!
//! The importers live by family: `flat` (hosts, domains, ABP),
//! `tracker_dumps` (the WhoTracks.me SQL dump and TrackerDB SQLite),
//! `tracker_lists` (the JSON lists and their taxonomies) and `networks`
//! (iptoasn, MMDB); this module parses source specs and dispatches.
//!
//! Malformed input stops the import with `FILE:LINE: what is wrong` (JSON
//! errors carry serde_json's line, SQLite errors the table and row). Limits:
//! JSON sources are read whole into memory (they are tens of MB at most).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::db::{Builder, FLAG_CNAME_CLOAK};
use super::Category;

mod flat;
mod networks;
mod tracker_dumps;
mod tracker_lists;
use flat::*;
use networks::*;
use tracker_dumps::*;
use tracker_lists::*;

/// One `KIND:PATH[,owner=NAME][,category=CAT][,networks=owned]` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    pub kind: String,
    pub path: PathBuf,
    pub owner: Option<String>,
    pub category: Option<Category>,
    pub networks: Networks,
}

/// Which AS networks a network source adds (countries are always added).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Networks {
    /// Every range with an AS number.
    #[default]
    All,
    /// Only ranges of AS numbers with a hosting owner in the built-in table.
    Owned,
}

impl Networks {
    fn keeps(self, asn: u32) -> bool {
        self == Networks::All || super::hosting_owner(asn).is_some()
    }
}

/// The kinds that read networks (and so take `networks=`).
const NETWORK_KINDS: &[&str] = &["iptoasn", "mmdb"];

pub const KINDS: &[&str] = &[
    "hosts",
    "domains",
    "abp",
    "whotracksme",
    "trackerdb",
    "tds",
    "tracker-radar",
    "disconnect",
    "disconnect-entities",
    "iptoasn",
    "mmdb",
];

impl SourceSpec {
    pub fn parse(arg: &str) -> Result<SourceSpec, String> {
        let (kind, rest) = arg
            .split_once(':')
            .ok_or_else(|| format!("'{arg}': expected KIND:PATH (kinds: {})", KINDS.join(", ")))?;
        if !KINDS.contains(&kind) {
            return Err(format!(
                "unknown source kind '{kind}' (kinds: {})",
                KINDS.join(", ")
            ));
        }
        let mut parts = rest.split(',');
        let path = PathBuf::from(parts.next().unwrap_or(""));
        let mut spec = SourceSpec {
            kind: kind.to_string(),
            path,
            owner: None,
            category: None,
            networks: Networks::All,
        };
        for opt in parts {
            match opt.split_once('=') {
                Some(("owner", v)) if !v.is_empty() => spec.owner = Some(v.to_string()),
                Some(("category", v)) => {
                    spec.category = Some(
                        Category::parse(v)
                            .ok_or_else(|| format!("'{arg}': unknown category '{v}'"))?,
                    )
                }
                Some(("networks", v)) if NETWORK_KINDS.contains(&kind) => {
                    spec.networks = match v {
                        "all" => Networks::All,
                        "owned" => Networks::Owned,
                        _ => {
                            return Err(format!(
                                "'{arg}': networks= takes 'all' or 'owned', not '{v}'"
                            ))
                        }
                    }
                }
                Some(("networks", _)) => {
                    return Err(format!(
                        "'{arg}': networks= is for network sources ({})",
                        NETWORK_KINDS.join(", ")
                    ))
                }
                _ => {
                    return Err(format!(
                        "'{arg}': unknown option '{opt}' (owner=, category=, networks=)"
                    ))
                }
            }
        }
        if spec.path.as_os_str().is_empty() {
            return Err(format!("'{arg}': no path"));
        }
        Ok(spec)
    }

    /// The name this source is recorded under in the database.
    pub fn source_name(&self) -> String {
        let file = self
            .path
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        format!("{}:{file}", self.kind)
    }
}

/// What one import added.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportCount {
    pub domains: usize,
    pub ranges: usize,
}

fn err_at(path: &Path, line: usize, msg: impl std::fmt::Display) -> String {
    format!("{}:{line}: {msg}", path.display())
}

/// A lowercase DNS name without a trailing dot, or None.
pub fn normalize_domain(s: &str) -> Option<String> {
    let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
    if s.is_empty() || s.len() > 253 {
        return None;
    }
    let ok = s.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    ok.then_some(s)
}

fn read_text(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{}: not UTF-8 text (byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|e| err_at(path, e.line(), e))
}

/// The top-level object `key` of a JSON list, or an error saying the file
/// is not the expected kind (`what`).
fn top_object<'a>(
    json: &'a Value,
    key: &str,
    path: &Path,
    what: &str,
) -> Result<&'a serde_json::Map<String, Value>, String> {
    json.get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| format!("{}: no \"{key}\" object (not {what}?)", path.display()))
}

/// Imports one source into the builder.
pub fn import(spec: &SourceSpec, builder: &mut Builder) -> Result<ImportCount, String> {
    let source = builder.source(&spec.source_name())?;
    let before = (builder.domain_count(), builder.range_count());
    let flat_owner = spec.owner.clone().unwrap_or_else(|| spec.source_name());
    let flat_category = spec.category.unwrap_or(Category::Advertising);
    match spec.kind.as_str() {
        "hosts" | "domains" | "abp" => {
            let text = read_text(&spec.path)?;
            let parse = match spec.kind.as_str() {
                "hosts" => hosts_line,
                "domains" => domains_line,
                _ => abp_line,
            };
            for (i, line) in text.lines().enumerate() {
                for name in parse(line).map_err(|e| err_at(&spec.path, i + 1, e))? {
                    builder.add_domain(&name, &flat_owner, flat_category, source, 0);
                }
            }
        }
        "whotracksme" | "trackerdb" if is_sqlite(&spec.path) => {
            trackerdb_sqlite(&spec.path, builder, source)?
        }
        "whotracksme" => whotracksme(&spec.path, builder, source)?,
        "trackerdb" => trackerdb_json(&spec.path, builder, source)?,
        "mmdb" => mmdb(&spec.path, builder, spec.networks)?,
        "tds" => tds(&spec.path, builder, source)?,
        "tracker-radar" => tracker_radar(&spec.path, builder, source)?,
        "disconnect" => disconnect_services(&spec.path, builder, source)?,
        "disconnect-entities" => disconnect_entities(&spec.path, builder, source, spec)?,
        "iptoasn" => iptoasn(&spec.path, builder, spec.networks)?,
        other => return Err(format!("unknown source kind '{other}'")),
    }
    Ok(ImportCount {
        domains: builder.domain_count() - before.0,
        ranges: builder.range_count() - before.1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_list_lines() {
        assert_eq!(
            hosts_line("0.0.0.0 ads.example.com tracker.example # x")
                .unwrap()
                .len(),
            2
        );
        assert!(hosts_line("127.0.0.1 localhost").unwrap().is_empty());
        assert!(hosts_line("# comment").unwrap().is_empty());
        assert!(hosts_line("ads.example.com")
            .unwrap_err()
            .contains("not an address"));
        assert!(hosts_line("0.0.0.0 bad..name")
            .unwrap_err()
            .contains("not a domain"));
        assert_eq!(
            domains_line("*.Tracker.Example.").unwrap(),
            vec!["tracker.example"]
        );
        assert_eq!(
            abp_line("||ads.example.com^").unwrap(),
            vec!["ads.example.com"]
        );
        assert_eq!(abp_line("||ads.example.com^$third-party").unwrap().len(), 1);
        assert!(abp_line("||ads.example.com^$script").unwrap().is_empty());
        assert!(abp_line("||example.com/ads/*").unwrap().is_empty());
        assert!(abp_line("@@||example.com^").unwrap().is_empty());
        assert!(abp_line("example.com##.banner").unwrap().is_empty());
        assert!(abp_line("! Title: list").unwrap().is_empty());
        assert!(abp_line("||exa mple.com^").is_err());
    }

    #[test]
    fn sql_values_with_quotes_nulls_and_newlines() {
        let text = "CREATE TABLE t(a);\nINSERT INTO \"t\" VALUES('it''s','two\nlines',NULL,-3,4.5);\nINSERT INTO \"u\" VALUES(1);\n";
        let rows = sql_inserts(text, Path::new("x.sql")).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, 2);
        assert_eq!(
            rows[0].2,
            vec![
                SqlValue::Text("it's".into()),
                SqlValue::Text("two\nlines".into()),
                SqlValue::Null,
                SqlValue::Int(-3),
                SqlValue::Int(4)
            ]
        );
        assert_eq!((rows[1].0, rows[1].1.as_str()), (4, "u"));
        let e = sql_inserts("INSERT INTO \"t\" VALUES('open);\n", Path::new("x.sql")).unwrap_err();
        assert_eq!(e, "x.sql:1: unterminated string");
        let e = sql_inserts("\nINSERT INTO \"t\" VALUES(1 2);\n", Path::new("x.sql")).unwrap_err();
        assert!(e.starts_with("x.sql:2: "), "{e}");
    }

    #[test]
    fn host_side_formats_say_which_feature_reads_them() {
        let dir = std::env::temp_dir().join(format!("phonehome-import-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("trackerdb.db");
        std::fs::write(&file, b"SQLite format 3\0 and then pages").unwrap();
        assert!(is_sqlite(&file));
        let mut b = Builder::new();
        let spec = SourceSpec::parse(&format!("trackerdb:{}", file.display())).unwrap();
        let err = import(&spec, &mut b).err().unwrap_or_default();
        if cfg!(feature = "sqlite") {
            assert!(!err.contains("feature"), "{err}");
        } else {
            assert!(
                err.contains("`sqlite` feature") && err.contains(".dump"),
                "{err}"
            );
        }
        let spec = SourceSpec::parse(&format!("mmdb:{}", file.display())).unwrap();
        let err = import(&spec, &mut b).err().unwrap_or_default();
        assert!(err.starts_with(&file.display().to_string()), "{err}");
        assert_eq!(
            err.contains("`mmdb` feature"),
            !cfg!(feature = "mmdb"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn source_specs() {
        let s = SourceSpec::parse("hosts:/tmp/a.txt,owner=EasyList,category=analytics").unwrap();
        assert_eq!(s.owner.as_deref(), Some("EasyList"));
        assert_eq!(s.category, Some(Category::Analytics));
        assert_eq!(s.source_name(), "hosts:a.txt");
        assert!(SourceSpec::parse("nope:/x")
            .unwrap_err()
            .contains("unknown source kind"));
        assert!(SourceSpec::parse("hosts:/x,color=red").is_err());
        assert!(SourceSpec::parse("/x").is_err());
    }
}
