//! Owners: which company is behind a domain, and what kind of traffic it is.
//! The built-in table below is self-written from the companies' own
//! published domains (their developer, privacy and SDK documentation), not
//! copied from any third-party list. Lookup walks a name's suffixes, longest
//! first, so `data.mistat.xiaomi.com` hits the telemetry entry before the
//! generic `xiaomi.com` one.
//!
//! With a compiled owner database installed (`db`, built by `phonehome db
//! compile` from this table and imported lists; config `option db`), lookups
//! go to it instead, and addresses get their network (ASN, AS organisation,
//! hosting owner). Attribution order: the name's longest listed suffix →
//! along its CNAME chain → its registrable domain (PSL) as an unlisted
//! owner → the address's hosting owner → unknown (`attribute`).
//!
//! Limits: one database per daemon run (changing it needs a restart).

pub mod db;
pub mod domain_table;
pub mod import;
mod table;

use table::{HOSTING_ASNS, HOSTING_OWNERS, PARENTS, TABLE};

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Advertising,
    Analytics,
    Telemetry,
    Social,
    Cdn,
    Cloud,
    Services,
    /// No list names the destination.
    Unknown,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::Advertising,
        Category::Analytics,
        Category::Telemetry,
        Category::Social,
        Category::Cdn,
        Category::Cloud,
        Category::Services,
        Category::Unknown,
    ];

    /// Stable small number for the compiled database.
    pub fn index(self) -> u8 {
        Category::ALL.iter().position(|c| *c == self).unwrap_or(7) as u8
    }

    pub fn from_index(i: u8) -> Category {
        Category::ALL
            .get(i as usize)
            .copied()
            .unwrap_or(Category::Unknown)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Advertising => "advertising",
            Category::Analytics => "analytics",
            Category::Telemetry => "telemetry",
            Category::Social => "social",
            Category::Cdn => "cdn",
            Category::Cloud => "cloud",
            Category::Services => "services",
            Category::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Some(match s.to_ascii_lowercase().as_str() {
            "advertising" | "ads" => Category::Advertising,
            "analytics" => Category::Analytics,
            "telemetry" => Category::Telemetry,
            "social" => Category::Social,
            "cdn" => Category::Cdn,
            "cloud" => Category::Cloud,
            "services" => Category::Services,
            "unknown" => Category::Unknown,
            _ => return None,
        })
    }
}

/// The owner of a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub name: &'static str,
    pub category: Category,
    /// Where the answer came from: `builtin`, a database source such as
    /// `whotracksme:trackerdb.sql`, `psl` (registrable domain of an
    /// unlisted name) or `asn` (the address's network).
    pub source: &'static str,
}

/// The source name of the self-written table in databases.
pub const BUILTIN_SOURCE: &str = "builtin";

/// The hosting owner of an AS number, when it is a known cloud or CDN.
pub fn hosting_owner(asn: u32) -> Option<&'static str> {
    HOSTING_ASNS
        .iter()
        .find(|(a, _)| *a == asn)
        .map(|(_, o)| *o)
}

/// Adds the self-written table to a database being compiled.
pub fn add_builtin(builder: &mut db::Builder) -> Result<usize, String> {
    let source = builder.source(BUILTIN_SOURCE)?;
    let mut n = 0;
    for (domain, owner, category) in TABLE {
        n += builder.add_domain(domain, owner, *category, source, 0) as usize;
    }
    Ok(n)
}

static DATABASE: OnceLock<db::OwnerDb> = OnceLock::new();

/// Makes `database` the owner source for the rest of the process (the
/// daemon does this once at start). Returns false if one was installed.
pub fn install_database(database: db::OwnerDb) -> bool {
    DATABASE.set(database).is_ok()
}

pub fn database() -> Option<&'static db::OwnerDb> {
    DATABASE.get()
}

/// The built-in table's domains and their owners (for tools and the
/// benchmarks).
pub fn builtin_domains() -> impl Iterator<Item = (&'static str, &'static str)> {
    TABLE.iter().map(|(domain, owner, _)| (*domain, *owner))
}

fn index() -> &'static HashMap<&'static str, (&'static str, Category)> {
    static INDEX: OnceLock<HashMap<&'static str, (&'static str, Category)>> = OnceLock::new();
    INDEX.get_or_init(|| TABLE.iter().map(|(d, o, c)| (*d, (*o, *c))).collect())
}

/// The owner of `name` (lowercase, no trailing dot), by longest suffix:
/// in the installed database, else in the built-in table.
pub fn lookup(name: &str) -> Option<Owner> {
    if let Some(database) = database() {
        return database.lookup_domain(name).map(|m| Owner {
            name: m.owner,
            category: m.category,
            source: m.source,
        });
    }
    lookup_builtin(name)
}

/// The owner of `name` in the built-in table only.
pub fn lookup_builtin(name: &str) -> Option<Owner> {
    let index = index();
    let mut at = name;
    loop {
        if let Some((owner, category)) = index.get(at) {
            return Some(Owner {
                name: owner,
                category: *category,
                source: BUILTIN_SOURCE,
            });
        }
        match at.find('.') {
            Some(dot) => at = &at[dot + 1..],
            None => return None,
        }
    }
}

/// The owner of a CNAME chain: the first name in it with a known owner, so
/// a first-party alias of a tracker (CNAME cloaking) is named for the
/// tracker, unless the name the client asked for is itself known.
/// Returns the owner and the name that matched.
pub fn lookup_chain(chain: &[String]) -> Option<(Owner, &str)> {
    let listed: Vec<(Owner, &str)> = chain
        .iter()
        .filter_map(|n| lookup(n).map(|o| (o, n.as_str())))
        .collect();
    chain_owner(&listed)
}

/// Picks the chain's owner from its listed names (in chain order): the
/// most specific answer along the chain wins, since `shop.example` CNAME
/// `t.tracker.example` is the tracker's traffic. Services, CDNs and clouds
/// are hosts, not specific: `api.account.xiaomi.com` CNAME an AWS load
/// balancer is Xiaomi's traffic on AWS.
fn chain_owner<'n>(listed: &[(Owner, &'n str)]) -> Option<(Owner, &'n str)> {
    listed
        .iter()
        .find(|(o, _)| {
            !matches!(
                o.category,
                Category::Services | Category::Cdn | Category::Cloud
            )
        })
        .or_else(|| listed.first())
        .copied()
}

/// What `attribute` found for a destination.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attribution {
    /// The flow's owner, in the attribution order.
    pub owner: Option<Owner>,
    /// The hosting owner of the address (Alibaba Cloud for AS45102).
    pub host: Option<&'static str>,
    /// The address's network, when the database knows it.
    pub asn: Option<u32>,
    /// The address's country (ISO 3166-1 alpha-2), when the database
    /// knows it.
    pub country: Option<[u8; 2]>,
    /// Every distinct owner along the name chain, and the flow's owner:
    /// what owner rules of the policy are matched against.
    pub owners: Vec<Owner>,
}

/// Who a destination belongs to, in the attribution order: listed names
/// (and their CNAME chain), then the registrable domain of an unlisted name
/// (needs a database with the PSL), then the hosting owner of the address.
/// Also returns the address's hosting owner (a flow to Xiaomi on Alibaba
/// Cloud: owner Xiaomi, host Alibaba Cloud). Each name of the chain is
/// looked up once. With the unspecified address (0.0.0.0) only the names
/// are attributed.
pub fn attribute(chain: &[String], addr: std::net::IpAddr) -> Attribution {
    let database = database();
    // The unspecified address: attribute the names only (DNS time).
    let network = database
        .filter(|_| !addr.is_unspecified())
        .and_then(|d| d.lookup_ip(addr));
    let host = network.and_then(|m| m.host_owner);
    let listed: Vec<(Owner, &str)> = chain
        .iter()
        .filter_map(|n| lookup(n).map(|o| (o, n.as_str())))
        .collect();
    let mut owners: Vec<Owner> = Vec::with_capacity(listed.len() + 1);
    for (o, _) in &listed {
        if !owners.iter().any(|a| a.name == o.name) {
            owners.push(*o);
        }
    }
    let owner = chain_owner(&listed).map(|(o, _)| o).or_else(|| {
        // Unlisted: grouped under its registrable domain, interned
        // (bounded) so it can live in flows and stats like listed names.
        let registrable = database
            .zip(chain.first())
            .and_then(|(d, name)| d.registrable_domain(name));
        match (registrable, host) {
            (Some(reg), _) => Some(Owner {
                name: intern_unlisted(reg),
                category: Category::Unknown,
                source: "psl",
            }),
            (None, Some(h)) => Some(Owner {
                name: h,
                category: Category::Cloud,
                source: "asn",
            }),
            (None, None) => None,
        }
    });
    if let Some(o) = owner {
        if !owners.iter().any(|a| a.name == o.name) {
            owners.push(o);
        }
    }
    Attribution {
        owner,
        host,
        asn: network.map(|m| m.asn),
        country: database
            .filter(|_| !addr.is_unspecified())
            .and_then(|d| d.lookup_country(addr)),
        owners,
    }
}

/// Registrable domains of unlisted names, kept for the process lifetime
/// and bounded: past `UNLISTED_MAX` distinct names they all report as
/// "unlisted" (memory stays bounded on a router).
const UNLISTED_MAX: usize = 4096;

fn intern_unlisted(name: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(n) = names.get(name) {
        return n;
    }
    if names.len() >= UNLISTED_MAX {
        return "unlisted";
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// The clouds and CDNs `company` owns (a `parent` rule on it covers the
/// names they host).
pub fn hosting_children(company: &str) -> Vec<&'static str> {
    HOSTING_OWNERS
        .iter()
        .copied()
        .filter(|o| {
            owned_by(o, company) && !bare_company(o).eq_ignore_ascii_case(bare_company(company))
        })
        .collect()
}

/// A company name as lists write it, without legal suffixes ("GitHub,
/// Inc." and "Adjust GmbH" are GitHub and Adjust).
fn bare_company(name: &str) -> &str {
    let mut name = name.trim();
    for suffix in [
        ", Inc.",
        " Inc.",
        " Inc",
        " GmbH",
        " LLC",
        " Ltd.",
        " Ltd",
        " Corporation",
        " Corp.",
    ] {
        if name.len() > suffix.len()
            && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        {
            name = name[..name.len() - suffix.len()].trim_end();
        }
    }
    name
}

/// The company `owner` belongs to, when it belongs to another: its
/// direct parent (AVG: Avast, whose parent is Gen Digital).
pub fn parent_of(owner: &str) -> Option<&'static str> {
    let owner = bare_company(owner);
    PARENTS
        .iter()
        .find(|(o, _)| o.eq_ignore_ascii_case(owner))
        .map(|(_, p)| *p)
}

/// Whether `owner` is `company` or belongs to it, directly or through
/// its parents (AVG belongs to Avast and to Gen Digital).
pub fn owned_by(owner: &str, company: &str) -> bool {
    let company = bare_company(company);
    let mut at = Some(bare_company(owner));
    // PARENTS has no cycles; the bound keeps a mistaken one from looping.
    for _ in 0..4 {
        match at {
            Some(o) if o.eq_ignore_ascii_case(company) => return true,
            Some(o) => at = parent_of(o),
            None => return false,
        }
    }
    false
}

/// Whether a rule on `company` as a parent could match anything: it owns
/// a listed company, or is itself an owner.
pub fn known_parent(company: &str) -> bool {
    let company = bare_company(company);
    PARENTS.iter().any(|(_, p)| p.eq_ignore_ascii_case(company)) || known_owner(company)
}

/// Whether any rule could ever see `name` as an owner: the built-in
/// table's owners and hosting networks, and the loaded database's.
pub fn known_owner(name: &str) -> bool {
    TABLE.iter().any(|(_, o, _)| o.eq_ignore_ascii_case(name))
        || HOSTING_ASNS
            .iter()
            .any(|(_, o)| o.eq_ignore_ascii_case(name))
        || database().is_some_and(|db| db.has_owner(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Category::*;

    #[test]
    fn owners_report_the_company_they_belong_to() {
        for (owner, parent) in [
            ("Umeng", Some("Alibaba")),
            ("Instagram", Some("Meta")),
            ("WhatsApp", Some("Meta")),
            ("Facebook", Some("Meta")),
            ("SwiftKey", Some("Microsoft")),
            ("LinkedIn", Some("Microsoft")),
            ("GitHub, Inc.", Some("Microsoft")),
            ("DoubleClick", Some("Google")),
            ("Adjust GmbH", Some("AppLovin")),
            ("alibaba cloud", Some("Alibaba")),
            // Sold by Huawei in 2020: its own company.
            ("Honor", None),
            ("Huawei", None),
            ("Google", None),
        ] {
            assert_eq!(parent_of(owner), parent, "{owner}");
        }
        assert!(owned_by("Umeng", "Alibaba") && owned_by("Alibaba", "alibaba"));
        // Two levels: AVG is Avast's, Avast is Gen Digital's.
        assert_eq!(parent_of("AVG"), Some("Avast"));
        assert!(owned_by("AVG", "Avast") && owned_by("AVG", "Gen Digital"));
        assert!(!owned_by("Avast", "AVG"));
        // A parent rule on a company that owns a cloud covers the names it
        // hosts: said at config time.
        assert_eq!(hosting_children("Amazon"), ["Amazon AWS"]);
        assert_eq!(hosting_children("Google"), ["Google Cloud"]);
        assert_eq!(hosting_children("Microsoft"), ["Microsoft Azure"]);
        assert_eq!(
            lookup("tracker.azurewebsites.net").map(|o| o.name),
            Some("Microsoft Azure")
        );
        assert!(hosting_children("Meta").is_empty());
        assert!(hosting_children("Amazon AWS").is_empty());
        assert!(!owned_by("Honor", "Huawei") && !owned_by("Alibaba", "Umeng"));
        // The built-in table's Umeng domains carry Alibaba as their parent.
        let o = lookup("alog.umeng.com").unwrap();
        assert_eq!((o.name, parent_of(o.name)), ("Umeng", Some("Alibaba")));
        assert!(
            known_parent("Meta") && known_parent("Gen Digital") && !known_parent("Nobody Inc.")
        );
    }

    #[test]
    fn longest_suffix_wins() {
        let o = lookup("data.mistat.xiaomi.com").unwrap();
        assert_eq!((o.name, o.category), ("Xiaomi", Telemetry));
        let o = lookup("account.xiaomi.com").unwrap();
        assert_eq!((o.name, o.category), ("Xiaomi", Services));
        assert_eq!(lookup("www.google-analytics.com").unwrap().name, "Google");
        assert_eq!(
            lookup("bucket.s3.amazonaws.com").unwrap().name,
            "Amazon AWS"
        );
        assert!(lookup("example.org").is_none());
        assert!(
            lookup("notxiaomi.com").is_none(),
            "suffix match is label-aligned"
        );
    }

    #[test]
    fn chain_names_the_cloaked_tracker() {
        let chain = vec![
            "metrics.shop.example".to_string(),
            "tracking.miui.com".to_string(),
        ];
        let (o, matched) = lookup_chain(&chain).unwrap();
        assert_eq!((o.name, matched), ("Xiaomi", "tracking.miui.com"));
        // A services name first, the tracker behind it: the tracker owns
        // the flow, and the policy sees both owners, each once.
        let chain = vec![
            "www.google.com".to_string(),
            "tracking.miui.com".to_string(),
            "data.mistat.xiaomi.com".to_string(),
        ];
        let a = attribute(&chain, "192.0.2.1".parse().unwrap());
        assert_eq!(a.owner.map(|o| o.name), Some("Xiaomi"));
        let names: Vec<&str> = a.owners.iter().map(|o| o.name).collect();
        assert_eq!(names, ["Google", "Xiaomi"]);
        assert_eq!(a.host, None);
        assert_eq!(
            attribute(&[], "192.0.2.1".parse().unwrap()),
            Attribution::default()
        );
        // A maker's name hosted on a cloud or CDN (Xiaomi's services on
        // AWS load balancers, Samsung's on CloudFront): the name asked for
        // owns the flow, the cloud only hosts it; the policy still sees
        // both.
        for chain in [
            [
                "api.account.xiaomi.com",
                "sgp-lb-1.elb.ap-southeast-1.amazonaws.com",
            ],
            ["api.samsungcloudsolution.net", "d1x.cloudfront.net"],
            ["ota.coloros.com", "ota.oss-ap-southeast-1.aliyuncs.com"],
        ] {
            let chain: Vec<String> = chain.iter().map(|n| n.to_string()).collect();
            let a = attribute(&chain, "192.0.2.1".parse().unwrap());
            assert_eq!(
                a.owner.map(|o| o.name),
                lookup(&chain[0]).map(|o| o.name),
                "{chain:?}"
            );
            assert_eq!(a.owners.len(), 2, "{chain:?}");
        }
    }

    #[test]
    fn covers_the_required_companies() {
        for owner in [
            "Xiaomi",
            "Alibaba",
            "Alibaba Cloud",
            "Umeng",
            "Tencent",
            "Huawei",
            "ByteDance",
            "Samsung",
            "Google",
            "Meta",
            "Amazon",
            "Amazon AWS",
            "Microsoft",
            "Apple",
            "AppLovin",
            "Criteo",
            "AppsFlyer",
        ] {
            assert!(known_owner(owner), "{owner}");
        }
        let mut seen = std::collections::HashSet::new();
        for (d, _, _) in TABLE {
            assert!(seen.insert(*d), "duplicate entry {d}");
            assert_eq!(*d, d.to_ascii_lowercase());
        }
    }
}
