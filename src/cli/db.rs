//! `phonehome db`: `compile` builds an owner database from the built-in
//! table and the lists named as sources (written next to the target, read
//! back, then renamed into place; only with the `compile` feature, which
//! router builds leave out); `lookup` answers for a name or an address
//! from one, with the source of every answer.

use super::flags::Args;
use super::print::print_json;
use super::CliError;

/// `db compile --out FILE [--psl FILE] [--no-builtin] SOURCE...`
#[cfg(feature = "compile")]
pub fn compile(args: &Args) -> Result<(), CliError> {
    let out = args.required_path("out", "db compile")?;
    let specs = args
        .positional
        .iter()
        .map(|a| crate::owners::import::SourceSpec::parse(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::Usage)?;
    db_compile(
        &out,
        args.path("psl").as_deref(),
        !args.switch("no-builtin"),
        &specs,
    )
    .map_err(CliError::Failed)
}

/// `db lookup --db FILE NAME_OR_IP [--json]`
pub fn lookup(args: &Args) -> Result<(), CliError> {
    let db = args.required_path("db", "db lookup")?;
    let query = args
        .positional
        .first()
        .ok_or_else(|| CliError::Usage("db lookup needs a NAME or IP".into()))?;
    db_lookup(&db, query, args.json())
}

/// Without the `compile` feature (router builds): compiling is a PC's or
/// the package build's job; the importers and the database builder stay
/// out of the router's flash.
#[cfg(not(feature = "compile"))]
pub fn compile(_: &Args) -> Result<(), CliError> {
    Err(CliError::Failed(
        "db compile: this phonehome was built without the 'compile' feature (router \
         builds leave the importers out); compile on a PC with `cargo build --release \
         --features compile` and copy the file to the router (option db)"
            .into(),
    ))
}

#[cfg(feature = "compile")]
fn db_compile(
    out: &std::path::Path,
    psl: Option<&std::path::Path>,
    builtin: bool,
    specs: &[crate::owners::import::SourceSpec],
) -> Result<(), String> {
    use crate::owners::{self, db::Builder, import};
    let mut builder = Builder::new();
    if builtin {
        let n = owners::add_builtin(&mut builder)?;
        eprintln!("builtin: {n} domains");
    }
    for spec in specs {
        let count = import::import(spec, &mut builder)?;
        eprintln!(
            "{}: {} domains, {} address ranges",
            spec.source_name(),
            count.domains,
            count.ranges
        );
    }
    if let Some(psl) = psl {
        let text = std::fs::read_to_string(psl).map_err(|e| format!("{}: {e}", psl.display()))?;
        let rules = builder.set_psl(&text);
        if rules == 0 {
            return Err(format!(
                "{}: no ICANN section (not the Public Suffix List?)",
                psl.display()
            ));
        }
        eprintln!("public suffix list: {rules} ICANN rules");
    }
    let (domains, duplicates) = (builder.domain_count(), builder.duplicates);
    let bytes = builder.finish()?;
    // Read it back before it replaces anything: what is written loads.
    let check = crate::owners::db::OwnerDb::from_bytes(bytes.clone())
        .map_err(|e| format!("compiled database does not load back: {e}"))?;
    // Write next to the target, then rename: a reader never sees half a file.
    let tmp = out.with_extension("tmp");
    std::fs::write(&tmp, &bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, out).map_err(|e| format!("{}: {e}", out.display()))?;
    let (c4, c6) = check.country_range_count();
    println!(
        "{}: {domains} domains ({duplicates} already listed by an earlier source), {} bytes, \
         {}-bit fingerprints, {} country ranges",
        out.display(),
        bytes.len(),
        check.fingerprint_bits(),
        c4 + c6
    );
    Ok(())
}

#[derive(serde::Serialize)]
struct DomainAnswer<'a> {
    query: &'a str,
    owner: Option<&'a str>,
    /// The company the owner belongs to, when another.
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<&'static str>,
    category: Option<&'a str>,
    source: Option<&'a str>,
    rule: Option<&'a str>,
    cname_cloak: bool,
    registrable_domain: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct AddressAnswer<'a> {
    query: &'a str,
    asn: Option<u32>,
    as_org: Option<&'a str>,
    host_owner: Option<&'a str>,
    /// ISO 3166-1 alpha-2, where the address is (or its network is
    /// registered, without a geolocation database).
    country: Option<String>,
}

fn db_lookup(path: &std::path::Path, query: &str, json: bool) -> Result<(), CliError> {
    use crate::owners::db::{OwnerDb, FLAG_CNAME_CLOAK};
    let db = OwnerDb::load(path).map_err(CliError::Failed)?;
    if let Ok(ip) = query.parse::<std::net::IpAddr>() {
        let m = db.lookup_ip(ip);
        let answer = AddressAnswer {
            query,
            asn: m.map(|m| m.asn),
            as_org: m.map(|m| m.as_org),
            host_owner: m.and_then(|m| m.host_owner),
            country: db
                .lookup_country(ip)
                .map(|c| String::from_utf8_lossy(&c).into_owned()),
        };
        if json {
            return print_json(&answer);
        }
        let country = answer
            .country
            .as_deref()
            .map(|c| format!(", country {c}"))
            .unwrap_or_default();
        match m {
            Some(m) => println!(
                "{query}: AS{} {}{}{country}",
                m.asn,
                m.as_org,
                m.host_owner
                    .map(|h| format!(" (host: {h})"))
                    .unwrap_or_default()
            ),
            None => println!("{query}: no network known{country}"),
        }
        return Ok(());
    }
    let name = crate::owners::import::normalize_domain(query).ok_or_else(|| {
        CliError::Usage(format!("'{query}' is neither a domain name nor an address"))
    })?;
    let m = db.lookup_domain(&name);
    let answer = DomainAnswer {
        query: &name,
        owner: m.map(|m| m.owner),
        parent: m.and_then(|m| crate::owners::parent_of(m.owner)),
        category: m.map(|m| m.category.as_str()),
        source: m.map(|m| m.source),
        rule: m.map(|m| &name[name.len() - m.matched_len..]),
        cname_cloak: m.is_some_and(|m| m.flags & FLAG_CNAME_CLOAK != 0),
        registrable_domain: db.registrable_domain(&name),
    };
    if json {
        return print_json(&answer);
    }
    match m {
        Some(_) => println!(
            "{name}: {}{} ({}), source {}, rule {}{}",
            answer.owner.unwrap_or(""),
            answer.parent.map(|p| format!(" ({p})")).unwrap_or_default(),
            answer.category.unwrap_or(""),
            answer.source.unwrap_or(""),
            answer.rule.unwrap_or(""),
            if answer.cname_cloak {
                ", CNAME-cloaked tracker"
            } else {
                ""
            }
        ),
        None => println!(
            "{name}: not listed{}",
            answer
                .registrable_domain
                .map(|r| format!("; registrable domain {r}"))
                .unwrap_or_default()
        ),
    }
    Ok(())
}
