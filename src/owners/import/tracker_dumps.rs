//! The WhoTracks.me / Ghostery tracker database as an SQL dump (a small
//! parser of SQLite's `.dump` INSERT statements, hand-written: the dump is
//! the published form and no crate reads it without SQLite itself) or, with
//! the host-side `sqlite` feature, as the SQLite file (`trackerdb.db`).
//! Errors name the file and line, or the table and row.

use super::*;

/// One SQL value of an INSERT statement.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum SqlValue {
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
pub(super) fn sql_inserts(
    text: &str,
    path: &Path,
) -> Result<Vec<(usize, String, Vec<SqlValue>)>, String> {
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
pub(super) enum RowAt {
    /// Line of an SQL dump.
    Line(usize),
    /// Row number (from 1) of a table in an SQLite file.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Row(usize),
}

pub(super) fn row_err(path: &Path, at: RowAt, table: &str, msg: impl std::fmt::Display) -> String {
    match at {
        RowAt::Line(line) => err_at(path, line, msg),
        RowAt::Row(row) => format!("{}: table {table}, row {row}: {msg}", path.display()),
    }
}

/// WhoTracks.me / Ghostery tracker database as an SQL dump (what
/// `sqlite3 trackerdb.db .dump` prints).
pub(super) fn whotracksme(path: &Path, builder: &mut Builder, source: u8) -> Result<(), String> {
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
pub(super) fn tracker_rows(
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
pub(super) fn is_sqlite(path: &Path) -> bool {
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
pub(super) fn trackerdb_sqlite(
    path: &Path,
    builder: &mut Builder,
    source: u8,
) -> Result<(), String> {
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
pub(super) fn trackerdb_sqlite(path: &Path, _: &mut Builder, _: u8) -> Result<(), String> {
    Err(format!(
        "{}: an SQLite file, and this phonehome was built without the `sqlite` feature; \
         dump it (`sqlite3 {0} .dump > trackerdb.sql`) and import whotracksme:trackerdb.sql",
        path.display()
    ))
}
