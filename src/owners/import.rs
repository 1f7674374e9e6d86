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
//! Malformed input stops the import with `FILE:LINE: what is wrong` (JSON
//! errors carry serde_json's line, SQLite errors the table and row). Limits:
//! JSON sources are read whole into memory (they are tens of MB at most).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::db::{Builder, FLAG_CNAME_CLOAK};
use super::Category;

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

// ------------------------------------------------------------ flat lists

const HOSTS_LOCAL: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
    "0.0.0.0",
];

fn strip_comment(line: &str) -> &str {
    line.split('#').next().unwrap_or("").trim()
}

fn hosts_line(line: &str) -> Result<Vec<String>, String> {
    let line = strip_comment(line);
    if line.is_empty() {
        return Ok(Vec::new());
    }
    let mut words = line.split_whitespace();
    let addr = words.next().unwrap_or("");
    addr.parse::<IpAddr>()
        .map_err(|_| format!("'{addr}' is not an address (expected `0.0.0.0 name`)"))?;
    let mut out = Vec::new();
    for word in words {
        if HOSTS_LOCAL.contains(&word) {
            continue;
        }
        out.push(normalize_domain(word).ok_or_else(|| format!("'{word}' is not a domain name"))?);
    }
    Ok(out)
}

fn domains_line(line: &str) -> Result<Vec<String>, String> {
    let line = strip_comment(line);
    if line.is_empty() {
        return Ok(Vec::new());
    }
    let name = line.strip_prefix("*.").unwrap_or(line);
    Ok(vec![
        normalize_domain(name).ok_or_else(|| format!("'{line}' is not a domain name"))?
    ])
}

/// `||domain^` (optionally with `$modifiers`) is a domain rule; comments,
/// headers, exceptions, cosmetic and path rules are not domain rules and
/// are skipped.
fn abp_line(line: &str) -> Result<Vec<String>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('!') || line.starts_with('[') || line.starts_with("@@") {
        return Ok(Vec::new());
    }
    let Some(rest) = line.strip_prefix("||") else {
        return Ok(Vec::new());
    };
    let (pattern, modifiers) = match rest.split_once('$') {
        Some((p, m)) => (p, Some(m)),
        None => (rest, None),
    };
    // Rules limited to some resource types or sites are not whole-domain.
    if let Some(m) = modifiers {
        let whole = m.split(',').all(|o| {
            matches!(
                o,
                "third-party" | "3p" | "important" | "all" | "doc" | "document"
            )
        });
        if !whole {
            return Ok(Vec::new());
        }
    }
    let Some(domain) = pattern.strip_suffix('^') else {
        return Ok(Vec::new()); // a path or wildcard rule
    };
    if domain.contains(['*', '/']) {
        return Ok(Vec::new());
    }
    Ok(vec![normalize_domain(domain).ok_or_else(|| {
        format!("'||{domain}^' does not name a domain")
    })?])
}

// ------------------------------------------------------------ taxonomies

/// WhoTracks.me / Ghostery categories.
fn ghostery_category(name: &str) -> Category {
    match name {
        "advertising" | "pornvertising" => Category::Advertising,
        "site_analytics" | "analytics" => Category::Analytics,
        "telemetry" => Category::Telemetry,
        "social_media" | "social" => Category::Social,
        "cdn" => Category::Cdn,
        "hosting" => Category::Cloud,
        _ => Category::Services,
    }
}

/// DuckDuckGo Tracker Radar categories (several per domain: the most
/// telling one wins).
fn ddg_category(categories: &[&str]) -> Category {
    let has = |c: &str| categories.iter().any(|x| x.eq_ignore_ascii_case(c));
    if has("Advertising") || has("Ad Motivated Tracking") || has("Ad Fraud") {
        Category::Advertising
    } else if has("Analytics") || has("Audience Measurement") || has("Session Replay") {
        Category::Analytics
    } else if has("Social - Share") || has("Social - Comment") || has("Social Network") {
        Category::Social
    } else if has("CDN") {
        Category::Cdn
    } else if has("Hosting") || has("Online Payment") {
        Category::Cloud
    } else {
        Category::Services
    }
}

/// Disconnect categories.
fn disconnect_category(name: &str) -> Category {
    match name {
        "Advertising" | "Cryptomining" | "FingerprintingInvasive" | "FingerprintingGeneral" => {
            Category::Advertising
        }
        "Analytics" => Category::Analytics,
        "Social" | "Disconnect" => Category::Social,
        "Content" => Category::Cdn,
        _ => Category::Services,
    }
}

// ------------------------------------------------------------ WhoTracks.me SQL

/// One SQL value of an INSERT statement.
#[derive(Debug, Clone, PartialEq)]
enum SqlValue {
    Null,
    Int(i64),
    Text(String),
}

impl SqlValue {
    fn text(&self) -> Option<&str> {
        match self {
            SqlValue::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// Reads `INSERT INTO "table" VALUES(...);` statements of an SQLite dump,
/// in order: (line, table, values). Strings may span lines; `''` is a quote.
fn sql_inserts(text: &str, path: &Path) -> Result<Vec<(usize, String, Vec<SqlValue>)>, String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut line = 1;
    let mut at = 0;
    while at < bytes.len() {
        // Find the start of the next statement at a line start.
        let rest = &text[at..];
        let stmt_line = line;
        let end_of_line = rest.find('\n').map_or(rest.len(), |n| n + 1);
        let head = "INSERT INTO ";
        if !rest.starts_with(head) {
            at += end_of_line;
            line += 1;
            continue;
        }
        let mut p = at + head.len();
        let table_end = text[p..]
            .find(" VALUES(")
            .map(|n| p + n)
            .ok_or_else(|| err_at(path, stmt_line, "INSERT without VALUES("))?;
        let table = text[p..table_end].trim_matches('"').to_string();
        p = table_end + " VALUES(".len();
        let mut values = Vec::new();
        loop {
            // one value
            match bytes.get(p) {
                Some(b'\'') => {
                    let mut s = String::new();
                    p += 1;
                    loop {
                        let Some(q) = text[p..].find('\'') else {
                            return Err(err_at(path, stmt_line, "unterminated string"));
                        };
                        let piece = &text[p..p + q];
                        line += piece.matches('\n').count();
                        s.push_str(piece);
                        p += q + 1;
                        if bytes.get(p) == Some(&b'\'') {
                            s.push('\'');
                            p += 1;
                        } else {
                            break;
                        }
                    }
                    values.push(SqlValue::Text(s));
                }
                Some(b'N') if text[p..].starts_with("NULL") => {
                    values.push(SqlValue::Null);
                    p += 4;
                }
                Some(b'-' | b'0'..=b'9') => {
                    let n = text[p..]
                        .find([',', ')'])
                        .ok_or_else(|| err_at(path, stmt_line, "unterminated number"))?;
                    let v = text[p..p + n].trim();
                    values.push(
                        v.parse::<i64>()
                            .map(SqlValue::Int)
                            .or_else(|_| v.parse::<f64>().map(|f| SqlValue::Int(f as i64)))
                            .map_err(|_| err_at(path, stmt_line, format!("bad number '{v}'")))?,
                    );
                    p += n;
                }
                _ => return Err(err_at(path, stmt_line, "expected a value")),
            }
            match bytes.get(p) {
                Some(b',') => p += 1,
                Some(b')') => {
                    p += 1;
                    break;
                }
                _ => return Err(err_at(path, stmt_line, "expected ',' or ')' after a value")),
            }
        }
        if bytes.get(p) != Some(&b';') {
            return Err(err_at(path, stmt_line, "expected ';' after VALUES(...)"));
        }
        p += 1;
        out.push((stmt_line, table, values));
        // to the end of this line
        let rest = &text[p..];
        let eol = rest.find('\n').map_or(rest.len(), |n| n + 1);
        at = p + eol;
        line += 1;
    }
    Ok(out)
}

/// Where a row of the tracker database came from, for error messages.
#[derive(Debug, Clone, Copy)]
enum RowAt {
    /// Line of an SQL dump.
    Line(usize),
    /// Row number (from 1) of a table in an SQLite file.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Row(usize),
}

fn row_err(path: &Path, at: RowAt, table: &str, msg: impl std::fmt::Display) -> String {
    match at {
        RowAt::Line(line) => err_at(path, line, msg),
        RowAt::Row(row) => format!("{}: table {table}, row {row}: {msg}", path.display()),
    }
}

/// WhoTracks.me / Ghostery tracker database as an SQL dump (what
/// `sqlite3 trackerdb.db .dump` prints).
fn whotracksme(path: &Path, builder: &mut Builder, source: u8) -> Result<(), String> {
    let text = read_text(path)?;
    let inserts = sql_inserts(&text, path)?
        .into_iter()
        .map(|(line, table, values)| (RowAt::Line(line), table, values))
        .collect::<Vec<_>>();
    tracker_rows(path, &inserts, builder, source)
}

/// The tracker database's tables (`categories`, `companies`, `trackers`,
/// `tracker_domains`; columns in their CREATE TABLE order), from either
/// reader.
fn tracker_rows(
    path: &Path,
    inserts: &[(RowAt, String, Vec<SqlValue>)],
    builder: &mut Builder,
    source: u8,
) -> Result<(), String> {
    let mut categories: HashMap<i64, String> = HashMap::new();
    let mut companies: HashMap<String, String> = HashMap::new();
    // tracker id -> (name, category id, company id)
    let mut trackers: HashMap<String, (String, Option<i64>, Option<String>)> = HashMap::new();
    let mut domains: Vec<(RowAt, String, String)> = Vec::new();
    let field = |v: &[SqlValue], i: usize, at: RowAt, what: &str| -> Result<SqlValue, String> {
        v.get(i)
            .cloned()
            .ok_or_else(|| row_err(path, at, what, format!("{what}: too few columns")))
    };
    for (line, table, v) in inserts {
        match table.as_str() {
            "categories" => {
                if let (SqlValue::Int(id), SqlValue::Text(name)) = (
                    field(v, 0, *line, "categories")?,
                    field(v, 1, *line, "categories")?,
                ) {
                    categories.insert(id, name);
                }
            }
            "companies" => {
                let id = field(v, 0, *line, "companies")?;
                let name = field(v, 1, *line, "companies")?;
                if let (Some(id), Some(name)) = (id.text(), name.text()) {
                    companies.insert(id.to_string(), name.to_string());
                }
            }
            "trackers" => {
                let id = field(v, 0, *line, "trackers")?;
                let name = field(v, 1, *line, "trackers")?;
                let cat = match field(v, 2, *line, "trackers")? {
                    SqlValue::Int(c) => Some(c),
                    _ => None,
                };
                let company = field(v, 4, *line, "trackers")?.text().map(str::to_string);
                let (Some(id), Some(name)) = (id.text(), name.text()) else {
                    return Err(row_err(
                        path,
                        *line,
                        table,
                        "trackers: id and name must be text",
                    ));
                };
                trackers.insert(id.to_string(), (name.to_string(), cat, company));
            }
            "tracker_domains" => {
                let tracker = field(v, 0, *line, "tracker_domains")?;
                let domain = field(v, 1, *line, "tracker_domains")?;
                let (Some(t), Some(d)) = (tracker.text(), domain.text()) else {
                    return Err(row_err(
                        path,
                        *line,
                        table,
                        "tracker_domains: tracker and domain must be text",
                    ));
                };
                domains.push((*line, t.to_string(), d.to_string()));
            }
            _ => {}
        }
    }
    if domains.is_empty() {
        return Err(format!(
            "{}: no tracker_domains rows (not a WhoTracks.me dump?)",
            path.display()
        ));
    }
    for (line, tracker, domain) in domains {
        let Some((name, cat, company)) = trackers.get(&tracker) else {
            return Err(row_err(
                path,
                line,
                "tracker_domains",
                format!("tracker_domains names unknown tracker '{tracker}'"),
            ));
        };
        let owner = company
            .as_ref()
            .and_then(|c| companies.get(c))
            .unwrap_or(name);
        let category = cat
            .and_then(|c| categories.get(&c))
            .map_or(Category::Services, |c| ghostery_category(c));
        let Some(domain) = normalize_domain(&domain) else {
            return Err(row_err(
                path,
                line,
                "tracker_domains",
                format!("'{domain}' is not a domain name"),
            ));
        };
        builder.add_domain(&domain, owner, category, source, 0);
    }
    Ok(())
}

/// SQLite files start with this header.
fn is_sqlite(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"SQLite format 3\0"
}

/// The tracker database as the SQLite file itself (`trackerdb.db`): the
/// same four tables, read with rusqlite.
#[cfg(feature = "sqlite")]
fn trackerdb_sqlite(path: &Path, builder: &mut Builder, source: u8) -> Result<(), String> {
    use rusqlite::types::ValueRef;
    let fail = |e: rusqlite::Error| format!("{}: {e}", path.display());
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(fail)?;
    let mut rows = Vec::new();
    for table in ["categories", "companies", "trackers", "tracker_domains"] {
        let mut stmt = db
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .map_err(|e| format!("{}: table {table}: {e}", path.display()))?;
        let columns = stmt.column_count();
        let mut result = stmt.query([]).map_err(fail)?;
        let mut n = 0;
        while let Some(row) = result.next().map_err(fail)? {
            n += 1;
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i).map_err(fail)? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(v) => SqlValue::Int(v),
                    ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Real(_) | ValueRef::Blob(_) => SqlValue::Null,
                });
            }
            rows.push((RowAt::Row(n), table.to_string(), values));
        }
    }
    tracker_rows(path, &rows, builder, source)
}

#[cfg(not(feature = "sqlite"))]
fn trackerdb_sqlite(path: &Path, _: &mut Builder, _: u8) -> Result<(), String> {
    Err(format!(
        "{}: an SQLite file, and this phonehome was built without the `sqlite` feature; \
         dump it (`sqlite3 {0} .dump > trackerdb.sql`) and import whotracksme:trackerdb.sql",
        path.display()
    ))
}

// ------------------------------------------------------------ JSON lists

fn str_list(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn add_checked(
    builder: &mut Builder,
    path: &Path,
    domain: &str,
    owner: &str,
    category: Category,
    source: u8,
    flags: u8,
) -> Result<(), String> {
    let name = normalize_domain(domain)
        .ok_or_else(|| format!("{}: '{domain}' is not a domain name", path.display()))?;
    builder.add_domain(&name, owner, category, source, flags);
    Ok(())
}

/// Ghostery TrackerDB JSON: `patterns` (trackers with `organization`,
/// `category` and `domains`) and `organizations` (id → name).
fn trackerdb_json(path: &Path, builder: &mut Builder, source: u8) -> Result<(), String> {
    let json = read_json(path)?;
    let patterns = top_object(&json, "patterns", path, "a TrackerDB export")?;
    let orgs = json.get("organizations").and_then(Value::as_object);
    for (id, p) in patterns {
        let name = p.get("name").and_then(Value::as_str).unwrap_or(id);
        let owner = p
            .get("organization")
            .and_then(Value::as_str)
            .and_then(|o| orgs?.get(o)?.get("name")?.as_str())
            .unwrap_or(name);
        let category = ghostery_category(p.get("category").and_then(Value::as_str).unwrap_or(""));
        for d in str_list(p.get("domains").unwrap_or(&Value::Null)) {
            add_checked(builder, path, d, owner, category, source, 0)?;
        }
    }
    Ok(())
}

fn display_name(owner: &Value) -> Option<&str> {
    owner
        .get("displayName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| owner.get("name").and_then(Value::as_str))
}

/// DuckDuckGo TDS (`tds.json`): `trackers` (domain → owner, categories),
/// `entities` (owner → domains), `cnames` (cloaked name → tracker).
fn tds(path: &Path, builder: &mut Builder, source: u8) -> Result<(), String> {
    let json = read_json(path)?;
    let trackers = top_object(&json, "trackers", path, "a TDS file")?;
    let mut tracker_owner: HashMap<String, (String, Category)> = HashMap::new();
    for (domain, t) in trackers {
        let owner = t.get("owner").and_then(display_name).unwrap_or(domain);
        let category = ddg_category(&str_list(t.get("categories").unwrap_or(&Value::Null)));
        add_checked(builder, path, domain, owner, category, source, 0)?;
        tracker_owner.insert(domain.to_ascii_lowercase(), (owner.to_string(), category));
    }
    if let Some(entities) = json.get("entities").and_then(Value::as_object) {
        for (name, e) in entities {
            let owner = e.get("displayName").and_then(Value::as_str).unwrap_or(name);
            for d in str_list(e.get("domains").unwrap_or(&Value::Null)) {
                add_checked(builder, path, d, owner, Category::Services, source, 0)?;
            }
        }
    }
    if let Some(cnames) = json.get("cnames").and_then(Value::as_object) {
        for (cloaked, target) in cnames {
            let target = target.as_str().unwrap_or("").to_ascii_lowercase();
            let tracker = tracker_owner
                .iter()
                .find(|(d, _)| target == **d || target.ends_with(&format!(".{d}")));
            if let Some((_, (owner, category))) = tracker {
                let (owner, category) = (owner.clone(), *category);
                add_checked(
                    builder,
                    path,
                    cloaked,
                    &owner,
                    category,
                    source,
                    FLAG_CNAME_CLOAK,
                )?;
            }
        }
    }
    Ok(())
}

/// DuckDuckGo Tracker Radar checkout: `domains/<region>/<domain>.json`
/// (owner, categories, cnames) and `entities/<name>.json` (properties).
fn tracker_radar(dir: &Path, builder: &mut Builder, source: u8) -> Result<(), String> {
    let list = |d: PathBuf| -> Result<Vec<PathBuf>, String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
            .map_err(|e| format!("{}: {e}", d.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        Ok(files)
    };
    let domains_dir = dir.join("domains");
    for region in list(domains_dir)? {
        if !region.is_dir() {
            continue;
        }
        for file in list(region)? {
            if file.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let json = read_json(&file)?;
            let domain = json
                .get("domain")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{}: no \"domain\"", file.display()))?;
            let owner = json.get("owner").and_then(display_name).unwrap_or(domain);
            let category = ddg_category(&str_list(json.get("categories").unwrap_or(&Value::Null)));
            add_checked(builder, &file, domain, owner, category, source, 0)?;
            for c in json
                .get("cnames")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(original) = c.get("original").and_then(Value::as_str) {
                    add_checked(
                        builder,
                        &file,
                        original,
                        owner,
                        category,
                        source,
                        FLAG_CNAME_CLOAK,
                    )?;
                }
            }
        }
    }
    let entities_dir = dir.join("entities");
    if entities_dir.is_dir() {
        for file in list(entities_dir)? {
            if file.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let json = read_json(&file)?;
            let owner = display_name(&json)
                .ok_or_else(|| format!("{}: no \"name\"", file.display()))?
                .to_string();
            for d in str_list(json.get("properties").unwrap_or(&Value::Null)) {
                add_checked(builder, &file, d, &owner, Category::Services, source, 0)?;
            }
        }
    }
    Ok(())
}

/// Disconnect `services.json`: categories → [{company: {url: [domains]}}].
fn disconnect_services(path: &Path, builder: &mut Builder, source: u8) -> Result<(), String> {
    let json = read_json(path)?;
    let categories = top_object(&json, "categories", path, "services.json")?;
    for (cat, entries) in categories {
        let category = disconnect_category(cat);
        for entry in entries.as_array().into_iter().flatten() {
            for (company, sites) in entry.as_object().into_iter().flatten() {
                for (key, domains) in sites.as_object().into_iter().flatten() {
                    if !key.starts_with("http") {
                        continue; // flags such as "dnt", "session-replay"
                    }
                    for d in str_list(domains) {
                        add_checked(builder, path, d, company, category, source, 0)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Disconnect `entities.json`: entities → {properties, resources}.
fn disconnect_entities(
    path: &Path,
    builder: &mut Builder,
    source: u8,
    spec: &SourceSpec,
) -> Result<(), String> {
    let json = read_json(path)?;
    let entities = top_object(&json, "entities", path, "entities.json")?;
    let category = spec.category.unwrap_or(Category::Services);
    for (company, e) in entities {
        for key in ["resources", "properties"] {
            for d in str_list(e.get(key).unwrap_or(&Value::Null)) {
                add_checked(builder, path, d, company, category, source, 0)?;
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------ iptoasn

/// iptoasn TSV: `first last asn country description`; AS 0 ("Not
/// routed") rows are skipped. The country column (where the network is
/// registered; "None" when unknown) becomes the range's country unless a
/// geolocation database is imported too. `networks` picks the AS ranges
/// kept; every row's country is.
fn iptoasn(path: &Path, builder: &mut Builder, networks: Networks) -> Result<(), String> {
    let text = read_text(path)?;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 5 {
            return Err(err_at(path, i + 1, "expected 5 tab-separated columns"));
        }
        let ip = |s: &str| {
            s.parse::<IpAddr>()
                .map_err(|_| err_at(path, i + 1, format!("'{s}' is not an address")))
        };
        let (first, last) = (ip(cols[0])?, ip(cols[1])?);
        let asn: u32 = cols[2]
            .parse()
            .map_err(|_| err_at(path, i + 1, format!("'{}' is not an AS number", cols[2])))?;
        if asn == 0 {
            continue;
        }
        if networks.keeps(asn) {
            builder.add_asn(asn, cols[4].trim(), super::hosting_owner(asn));
            builder
                .add_range(first, last, asn)
                .map_err(|e| err_at(path, i + 1, e))?;
        }
        if super::db::country_value(cols[3].trim()).is_some() {
            builder
                .add_country_range(first, last, cols[3].trim(), false)
                .map_err(|e| err_at(path, i + 1, e))?;
        }
    }
    Ok(())
}

/// One network's record in an ASN or country MaxMind DB. MaxMind's
/// GeoLite2-ASN and DB-IP's ASN Lite use `autonomous_system_*`; IPinfo's
/// ASN and Lite databases use `asn` ("AS15169") with `name` or `as_name`.
/// Countries: `country.iso_code` in MaxMind's and DB-IP's country and city
/// databases, `country_code` in IPinfo's. Other fields are ignored.
#[cfg(feature = "mmdb")]
#[derive(serde::Deserialize)]
struct NetworkRecord {
    autonomous_system_number: Option<u32>,
    autonomous_system_organization: Option<String>,
    asn: Option<String>,
    name: Option<String>,
    as_name: Option<String>,
    country: Option<CountryField>,
    country_code: Option<String>,
}

/// `country`: a record with the code (MaxMind, DB-IP), or IPinfo's name.
#[cfg(feature = "mmdb")]
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum CountryField {
    Record { iso_code: Option<String> },
    Name(#[allow(dead_code)] String),
}

/// The first and last address of `ip/prefix`.
#[cfg(feature = "mmdb")]
fn prefix_range(ip: IpAddr, prefix: u8) -> (IpAddr, IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let host = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
            let start = u32::from(v4) & !host;
            (
                std::net::Ipv4Addr::from(start).into(),
                std::net::Ipv4Addr::from(start | host).into(),
            )
        }
        IpAddr::V6(v6) => {
            let host = u128::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
            let start = u128::from(v6) & !host;
            (
                std::net::Ipv6Addr::from(start).into(),
                std::net::Ipv6Addr::from(start | host).into(),
            )
        }
    }
}

/// Any ASN or country MaxMind DB: every network with an AS number becomes
/// a range of that network, every network with a country a geolocated
/// country range (IPinfo's Lite has both).
#[cfg(feature = "mmdb")]
fn mmdb(path: &Path, builder: &mut Builder, networks: Networks) -> Result<(), String> {
    let fail = |e: maxminddb::MaxMindDbError| format!("{}: {e}", path.display());
    let reader = maxminddb::Reader::open_readfile(path).map_err(fail)?;
    let kind = reader.metadata().database_type.clone();
    let (mut seen_asn, mut seen_country) = (false, false);
    for network in reader.networks(Default::default()).map_err(fail)? {
        let network = network.map_err(fail)?;
        let net = network.network().map_err(fail)?;
        let Some(record) = network.decode::<NetworkRecord>().map_err(|e| {
            format!(
                "{}: {net}: not an ASN or country record ({e})",
                path.display()
            )
        })?
        else {
            continue;
        };
        let (first, last) = prefix_range(net.ip(), net.prefix());
        let country = match &record.country {
            Some(CountryField::Record { iso_code }) => iso_code.as_deref(),
            _ => None,
        }
        .or(record.country_code.as_deref());
        if let Some(code) = country.filter(|c| super::db::country_value(c).is_some()) {
            seen_country = true;
            builder
                .add_country_range(first, last, code, true)
                .map_err(|e| format!("{}: {net}: {e}", path.display()))?;
        }
        let asn = match (record.autonomous_system_number, &record.asn) {
            (Some(n), _) => n,
            (None, Some(text)) => text
                .strip_prefix("AS")
                .unwrap_or(text)
                .parse()
                .map_err(|_| format!("{}: {net}: '{text}' is not an AS number", path.display()))?,
            (None, None) => continue,
        };
        if asn == 0 {
            continue;
        }
        seen_asn = true;
        if !networks.keeps(asn) {
            continue;
        }
        let org = record
            .autonomous_system_organization
            .or(record.name)
            .or(record.as_name)
            .unwrap_or_else(|| format!("AS{asn}"));
        builder.add_asn(asn, &org, super::hosting_owner(asn));
        builder
            .add_range(first, last, asn)
            .map_err(|e| format!("{}: {net}: {e}", path.display()))?;
    }
    if !seen_asn && !seen_country {
        return Err(format!(
            "{}: no network carries an AS number or a country (a {kind} database, not an ASN or country one?)",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(feature = "mmdb"))]
fn mmdb(path: &Path, _: &mut Builder, _: Networks) -> Result<(), String> {
    Err(format!(
        "{}: this phonehome was built without the `mmdb` feature \
         (cargo build --release --features mmdb)",
        path.display()
    ))
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
