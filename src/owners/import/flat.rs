//! Flat lists that carry no owner of their own: hosts files, one-domain-
//! per-line lists and AdGuard/ABP `||domain^` rules (other rules are
//! skipped). The owner and category come from the source's `,owner=` and
//! `,category=` options.

use super::*;

pub(super) const HOSTS_LOCAL: &[&str] = &[
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

pub(super) fn strip_comment(line: &str) -> &str {
    line.split('#').next().unwrap_or("").trim()
}

pub(super) fn hosts_line(line: &str) -> Result<Vec<String>, String> {
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

pub(super) fn domains_line(line: &str) -> Result<Vec<String>, String> {
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
pub(super) fn abp_line(line: &str) -> Result<Vec<String>, String> {
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
