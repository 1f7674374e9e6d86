//! Network sources: iptoasn.com's TSV and any ASN or country MaxMind DB
//! (GeoLite2, DB-IP Lite, IPinfo; host-side feature `mmdb`). AS ranges
//! feed the address → network → hosting owner lookup, countries the
//! country tables; `networks=owned` keeps only the networks of the AS
//! numbers the built-in table names an owner for.

use super::*;

/// iptoasn TSV: `first last asn country description`; AS 0 ("Not
/// routed") rows are skipped. The country column (where the network is
/// registered; "None" when unknown) becomes the range's country unless a
/// geolocation database is imported too. `networks` picks the AS ranges
/// kept; every row's country is.
pub(super) fn iptoasn(
    path: &Path,
    builder: &mut Builder,
    networks: Networks,
) -> Result<(), String> {
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
            builder.add_asn(asn, cols[4].trim(), crate::owners::hosting_owner(asn));
            builder
                .add_range(first, last, asn)
                .map_err(|e| err_at(path, i + 1, e))?;
        }
        if crate::owners::db::country_value(cols[3].trim()).is_some() {
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
pub(super) struct NetworkRecord {
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
pub(super) enum CountryField {
    Record { iso_code: Option<String> },
    Name(#[allow(dead_code)] String),
}

/// The first and last address of `ip/prefix`.
#[cfg(feature = "mmdb")]
pub(super) fn prefix_range(ip: IpAddr, prefix: u8) -> (IpAddr, IpAddr) {
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
pub(super) fn mmdb(path: &Path, builder: &mut Builder, networks: Networks) -> Result<(), String> {
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
        if let Some(code) = country.filter(|c| crate::owners::db::country_value(c).is_some()) {
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
        builder.add_asn(asn, &org, crate::owners::hosting_owner(asn));
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
pub(super) fn mmdb(path: &Path, _: &mut Builder, _: Networks) -> Result<(), String> {
    Err(format!(
        "{}: this phonehome was built without the `mmdb` feature \
         (cargo build --release --features mmdb)",
        path.display()
    ))
}
