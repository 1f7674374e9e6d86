//! The JSON tracker lists and their taxonomies: Ghostery TrackerDB JSON,
//! DuckDuckGo's blocklist (TDS) and Tracker Radar checkout (with its
//! CNAME-cloaking data), and Disconnect's services and entities. Each
//! list's categories map onto phonehome's; JSON errors carry serde_json's
//! line. Files are read whole (tens of MB at most).

use super::*;

/// WhoTracks.me / Ghostery categories.
pub(super) fn ghostery_category(name: &str) -> Category {
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
pub(super) fn ddg_category(categories: &[&str]) -> Category {
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
pub(super) fn disconnect_category(name: &str) -> Category {
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

// ------------------------------------------------------------ JSON lists

pub(super) fn str_list(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

pub(super) fn add_checked(
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
pub(super) fn trackerdb_json(path: &Path, builder: &mut Builder, source: u8) -> Result<(), String> {
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

pub(super) fn display_name(owner: &Value) -> Option<&str> {
    owner
        .get("displayName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| owner.get("name").and_then(Value::as_str))
}

/// DuckDuckGo TDS (`tds.json`): `trackers` (domain → owner, categories),
/// `entities` (owner → domains), `cnames` (cloaked name → tracker).
pub(super) fn tds(path: &Path, builder: &mut Builder, source: u8) -> Result<(), String> {
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
pub(super) fn tracker_radar(dir: &Path, builder: &mut Builder, source: u8) -> Result<(), String> {
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
pub(super) fn disconnect_services(
    path: &Path,
    builder: &mut Builder,
    source: u8,
) -> Result<(), String> {
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
pub(super) fn disconnect_entities(
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
