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

/// Hosting and CDN networks by AS number: the company whose servers they
/// are, as named in this table (self-written from the operators' own
/// published AS numbers).
const HOSTING_ASNS: &[(u32, &str)] = &[
    (45102, "Alibaba Cloud"),
    (37963, "Alibaba Cloud"),
    (15169, "Google"),
    (19527, "Google"),
    (396982, "Google"),
    (16509, "Amazon AWS"),
    (14618, "Amazon AWS"),
    (8075, "Microsoft"),
    (13335, "Cloudflare"),
    (54113, "Fastly"),
    (20940, "Akamai"),
    (16625, "Akamai"),
    (63949, "Akamai"),
    (32934, "Meta"),
    (45090, "Tencent Cloud"),
    (132203, "Tencent Cloud"),
    (55990, "Huawei Cloud"),
    (136907, "Huawei Cloud"),
    (396986, "ByteDance"),
    (14061, "DigitalOcean"),
    (24940, "Hetzner"),
    (16276, "OVHcloud"),
    (20473, "Vultr"),
    (31898, "Oracle Cloud"),
];

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

use Category::*;

/// The built-in table's domains and their owners (for tools and the
/// benchmarks).
pub fn builtin_domains() -> impl Iterator<Item = (&'static str, &'static str)> {
    TABLE.iter().map(|(domain, owner, _)| (*domain, *owner))
}

/// (domain suffix, owner, category)
const TABLE: &[(&str, &str, Category)] = &[
    // Xiaomi / MIUI / HyperOS
    ("xiaomi.com", "Xiaomi", Services),
    ("xiaomi.net", "Xiaomi", Services),
    ("xiaomi.cn", "Xiaomi", Services),
    ("mi.com", "Xiaomi", Services),
    ("miui.com", "Xiaomi", Services),
    ("mi-img.com", "Xiaomi", Cdn),
    ("mifile.cn", "Xiaomi", Cdn),
    ("tracking.miui.com", "Xiaomi", Telemetry),
    ("tracking.intl.miui.com", "Xiaomi", Telemetry),
    ("tracking.rus.miui.com", "Xiaomi", Telemetry),
    ("tracking.india.miui.com", "Xiaomi", Telemetry),
    ("mistat.xiaomi.com", "Xiaomi", Telemetry),
    ("mistat.intl.xiaomi.com", "Xiaomi", Telemetry),
    ("mistat.rus.xiaomi.com", "Xiaomi", Telemetry),
    ("mistat.india.xiaomi.com", "Xiaomi", Telemetry),
    ("ad.xiaomi.com", "Xiaomi", Advertising),
    ("ad.intl.xiaomi.com", "Xiaomi", Advertising),
    ("ad.mi.com", "Xiaomi", Advertising),
    ("ad.miui.com", "Xiaomi", Advertising),
    ("miwifi.com", "Xiaomi", Services),
    ("mi-idc.com", "Xiaomi", Services),
    ("xiaomiyoupin.com", "Xiaomi", Services),
    // Alibaba group
    ("alibaba.com", "Alibaba", Services),
    ("alibaba-inc.com", "Alibaba", Services),
    ("alicdn.com", "Alibaba", Cdn),
    ("taobao.com", "Alibaba", Services),
    ("tmall.com", "Alibaba", Services),
    ("alipay.com", "Alibaba", Services),
    ("alipayobjects.com", "Alibaba", Cdn),
    ("alimama.com", "Alibaba", Advertising),
    ("tanx.com", "Alibaba", Advertising),
    ("mmstat.com", "Alibaba", Analytics),
    ("ucweb.com", "Alibaba", Services),
    ("uc.cn", "Alibaba", Services),
    ("aliexpress.com", "Alibaba", Services),
    ("youku.com", "Alibaba", Services),
    ("dingtalk.com", "Alibaba", Services),
    ("alibabadns.com", "Alibaba", Services),
    ("tbcdn.cn", "Alibaba", Cdn),
    // Amap (AutoNavi, Alibaba's since 2014): the location service of
    // many Chinese phones' system apps.
    ("amap.com", "Alibaba", Services),
    ("autonavi.com", "Alibaba", Services),
    ("aliyun.com", "Alibaba Cloud", Cloud),
    ("aliyuncs.com", "Alibaba Cloud", Cloud),
    ("alibabacloud.com", "Alibaba Cloud", Cloud),
    ("alikunlun.com", "Alibaba Cloud", Cdn),
    ("umeng.com", "Umeng", Analytics),
    ("umeng.co", "Umeng", Analytics),
    ("umengcloud.com", "Umeng", Analytics),
    ("umtrack.com", "Umeng", Analytics),
    ("umsns.com", "Umeng", Analytics),
    // Tencent
    ("qq.com", "Tencent", Services),
    ("tencent.com", "Tencent", Services),
    ("wechat.com", "Tencent", Social),
    ("weixin.qq.com", "Tencent", Social),
    ("gtimg.com", "Tencent", Cdn),
    ("gtimg.cn", "Tencent", Cdn),
    ("qpic.cn", "Tencent", Cdn),
    ("qlogo.cn", "Tencent", Cdn),
    ("myqcloud.com", "Tencent Cloud", Cloud),
    ("tencentcloudapi.com", "Tencent Cloud", Cloud),
    ("tencent-cloud.net", "Tencent Cloud", Cloud),
    ("gdt.qq.com", "Tencent", Advertising),
    ("e.qq.com", "Tencent", Advertising),
    ("beacon.qq.com", "Tencent", Analytics),
    ("bugly.qq.com", "Tencent", Telemetry),
    ("qcloud.com", "Tencent Cloud", Cloud),
    ("tenpay.com", "Tencent", Services),
    ("weixinbridge.com", "Tencent", Social),
    ("idqqimg.com", "Tencent", Cdn),
    // Huawei
    ("huawei.com", "Huawei", Services),
    ("hicloud.com", "Huawei", Services),
    ("data.hicloud.com", "Huawei", Telemetry),
    ("dbankcloud.com", "Huawei", Cloud),
    ("dbankcloud.cn", "Huawei", Cloud),
    ("dbankcdn.com", "Huawei", Cdn),
    ("huaweicloud.com", "Huawei Cloud", Cloud),
    ("myhuaweicloud.com", "Huawei Cloud", Cloud),
    ("dbankcloud.eu", "Huawei", Cloud),
    ("dbankcloud.ru", "Huawei", Cloud),
    ("dbankcloud.asia", "Huawei", Cloud),
    ("dbankcdn.cn", "Huawei", Cdn),
    // HiAnalytics and the HMS log service; Huawei Ads (PPS).
    ("dt.hicloud.com", "Huawei", Telemetry),
    ("logservice.hicloud.com", "Huawei", Telemetry),
    ("logservice1.hicloud.com", "Huawei", Telemetry),
    ("op.hicloud.com", "Huawei", Advertising),
    ("ads.huawei.com", "Huawei", Advertising),
    ("vmall.com", "Huawei", Services),
    ("petalsearch.com", "Huawei", Services),
    ("petalmaps.com", "Huawei", Services),
    ("petalmail.com", "Huawei", Services),
    ("harmonyos.com", "Huawei", Services),
    // Honor: its own company since Huawei sold it in 2020.
    ("hihonor.com", "Honor", Services),
    ("hihonorcloud.com", "Honor", Cloud),
    ("honor.com", "Honor", Services),
    // ByteDance
    ("bytedance.com", "ByteDance", Services),
    ("bytedance.net", "ByteDance", Services),
    ("byteoversea.com", "ByteDance", Services),
    ("snssdk.com", "ByteDance", Services),
    ("isnssdk.com", "ByteDance", Services),
    ("toutiao.com", "ByteDance", Services),
    ("tiktok.com", "ByteDance", Social),
    ("tiktokv.com", "ByteDance", Social),
    ("tiktokcdn.com", "ByteDance", Cdn),
    ("ibytedtos.com", "ByteDance", Cdn),
    ("byteimg.com", "ByteDance", Cdn),
    ("douyin.com", "ByteDance", Social),
    ("pangle.io", "ByteDance", Advertising),
    ("pangolin-sdk-toutiao.com", "ByteDance", Advertising),
    ("pglstatp-toutiao.com", "ByteDance", Advertising),
    ("volces.com", "ByteDance", Cloud),
    ("ttwstatic.com", "ByteDance", Cdn),
    ("pangleglobal.com", "ByteDance", Advertising),
    ("capcut.com", "ByteDance", Services),
    ("musical.ly", "ByteDance", Social),
    ("larksuite.com", "ByteDance", Services),
    ("feishu.cn", "ByteDance", Services),
    ("amemv.com", "ByteDance", Social),
    ("zijieapi.com", "ByteDance", Services),
    ("bytecdn.cn", "ByteDance", Cdn),
    ("pstatp.com", "ByteDance", Cdn),
    ("ixigua.com", "ByteDance", Social),
    ("lemon8-app.com", "ByteDance", Social),
    // Samsung
    ("samsung.com", "Samsung", Services),
    ("samsungcloud.com", "Samsung", Cloud),
    ("samsungapps.com", "Samsung", Services),
    ("samsungosp.com", "Samsung", Services),
    ("samsungdm.com", "Samsung", Services),
    ("samsungads.com", "Samsung", Advertising),
    ("samsungacr.com", "Samsung", Telemetry),
    // Knox (secb2b.com, samsungknox.com), firmware updates
    // (ospserver.net), Samsung Cloud and TV services
    // (samsungcloudsolution.*, samsungqbe.com, samsungotn.net),
    // SmartThings, Samsung Health, Samsung's positioning service.
    ("secb2b.com", "Samsung", Services),
    ("samsungknox.com", "Samsung", Services),
    ("ospserver.net", "Samsung", Services),
    ("samsungcloudsolution.com", "Samsung", Cloud),
    ("samsungcloudsolution.net", "Samsung", Cloud),
    ("samsungqbe.com", "Samsung", Services),
    ("samsungotn.net", "Samsung", Services),
    ("smartthings.com", "Samsung", Services),
    ("samsungiotcloud.com", "Samsung", Cloud),
    ("samsungpositioning.com", "Samsung", Services),
    ("samsunghealth.com", "Samsung", Services),
    ("samsungelectronics.com", "Samsung", Services),
    // Google, including ads and analytics
    ("google.com", "Google", Services),
    ("googleapis.com", "Google", Services),
    ("gstatic.com", "Google", Cdn),
    ("googleusercontent.com", "Google", Cloud),
    ("googlevideo.com", "Google", Cdn),
    ("gvt1.com", "Google", Cdn),
    ("gvt2.com", "Google", Cdn),
    ("ggpht.com", "Google", Cdn),
    ("android.com", "Google", Services),
    ("youtube.com", "Google", Social),
    ("ytimg.com", "Google", Cdn),
    // Customers' apps on Google's clouds (App Engine, Cloud Functions,
    // Firebase): anyone's, hosted by Google.
    ("appspot.com", "Google Cloud", Cloud),
    ("cloudfunctions.net", "Google Cloud", Cloud),
    ("firebaseio.com", "Google Cloud", Cloud),
    ("doubleclick.net", "Google", Advertising),
    ("googlesyndication.com", "Google", Advertising),
    ("googleadservices.com", "Google", Advertising),
    ("googletagservices.com", "Google", Advertising),
    ("adservice.google.com", "Google", Advertising),
    ("admob.com", "Google", Advertising),
    ("2mdn.net", "Google", Advertising),
    ("google-analytics.com", "Google", Analytics),
    ("googletagmanager.com", "Google", Analytics),
    ("app-measurement.com", "Google", Analytics),
    ("firebaselogging-pa.googleapis.com", "Google", Telemetry),
    ("crashlytics.com", "Google", Telemetry),
    ("gvt3.com", "Google", Cdn),
    ("1e100.net", "Google", Services),
    ("firebaseapp.com", "Google Cloud", Cloud),
    ("web.app", "Google Cloud", Cloud),
    ("page.link", "Google", Services),
    ("goo.gl", "Google", Services),
    ("youtube-nocookie.com", "Google", Social),
    ("youtu.be", "Google", Social),
    ("gmail.com", "Google", Services),
    ("chrome.com", "Google", Services),
    ("googlezip.net", "Google", Services),
    ("google.de", "Google", Services),
    ("google.fr", "Google", Services),
    ("google.it", "Google", Services),
    ("google.es", "Google", Services),
    ("google.nl", "Google", Services),
    ("google.pl", "Google", Services),
    ("google.ru", "Google", Services),
    ("google.ca", "Google", Services),
    ("google.co.uk", "Google", Services),
    ("google.co.in", "Google", Services),
    ("google.co.jp", "Google", Services),
    ("google.co.id", "Google", Services),
    ("google.com.br", "Google", Services),
    ("google.com.mx", "Google", Services),
    ("google.com.tr", "Google", Services),
    ("google.com.au", "Google", Services),
    // Meta
    ("facebook.com", "Meta", Social),
    ("fb.com", "Meta", Social),
    ("facebook.net", "Meta", Analytics),
    ("fbcdn.net", "Meta", Cdn),
    ("fbsbx.com", "Meta", Cdn),
    ("instagram.com", "Meta", Social),
    ("cdninstagram.com", "Meta", Cdn),
    ("whatsapp.com", "Meta", Social),
    ("whatsapp.net", "Meta", Social),
    ("messenger.com", "Meta", Social),
    ("meta.com", "Meta", Services),
    ("graph.facebook.com", "Meta", Analytics),
    ("an.facebook.com", "Meta", Advertising),
    ("wa.me", "Meta", Social),
    ("threads.net", "Meta", Social),
    ("m.me", "Meta", Social),
    ("fb.me", "Meta", Social),
    ("oculus.com", "Meta", Services),
    ("oculuscdn.com", "Meta", Cdn),
    // Amazon
    ("amazon.com", "Amazon", Services),
    ("amazon.de", "Amazon", Services),
    ("amazon.co.uk", "Amazon", Services),
    ("a2z.com", "Amazon", Services),
    ("media-amazon.com", "Amazon", Cdn),
    ("ssl-images-amazon.com", "Amazon", Cdn),
    ("primevideo.com", "Amazon", Services),
    ("amazon-adsystem.com", "Amazon", Advertising),
    ("device-metrics-us.amazon.com", "Amazon", Telemetry),
    ("device-metrics-us-2.amazon.com", "Amazon", Telemetry),
    ("amazonaws.com", "Amazon AWS", Cloud),
    ("cloudfront.net", "Amazon AWS", Cdn),
    ("awsstatic.com", "Amazon AWS", Cdn),
    ("amazon.in", "Amazon", Services),
    ("amazon.co.jp", "Amazon", Services),
    ("amazon.fr", "Amazon", Services),
    ("amazon.it", "Amazon", Services),
    ("amazon.es", "Amazon", Services),
    ("amazon.ca", "Amazon", Services),
    ("amazon.com.br", "Amazon", Services),
    ("amazonalexa.com", "Amazon", Services),
    ("amazonvideo.com", "Amazon", Services),
    ("aiv-cdn.net", "Amazon", Cdn),
    ("aiv-delivery.net", "Amazon", Cdn),
    ("amazontrust.com", "Amazon", Services),
    ("imdb.com", "Amazon", Services),
    ("ring.com", "Amazon", Services),
    ("audible.com", "Amazon", Services),
    ("twitch.tv", "Twitch", Social),
    ("ttvnw.net", "Twitch", Cdn),
    ("jtvnw.net", "Twitch", Cdn),
    // Microsoft
    ("microsoft.com", "Microsoft", Services),
    ("windows.com", "Microsoft", Services),
    ("windowsupdate.com", "Microsoft", Services),
    ("live.com", "Microsoft", Services),
    ("msn.com", "Microsoft", Services),
    ("bing.com", "Microsoft", Services),
    ("office.com", "Microsoft", Services),
    ("office.net", "Microsoft", Services),
    ("outlook.com", "Microsoft", Services),
    ("skype.com", "Microsoft", Social),
    ("xbox.com", "Microsoft", Services),
    ("linkedin.com", "Microsoft", Social),
    ("licdn.com", "Microsoft", Cdn),
    ("msedge.net", "Microsoft", Cdn),
    // Azure hosts its customers' apps and content under these: Microsoft
    // Azure's, like AWS's and Google Cloud's (azure.com is Microsoft's own).
    ("azureedge.net", "Microsoft Azure", Cdn),
    ("azure.com", "Microsoft", Cloud),
    ("azurewebsites.net", "Microsoft Azure", Cloud),
    ("cloudapp.net", "Microsoft Azure", Cloud),
    ("trafficmanager.net", "Microsoft Azure", Cloud),
    ("events.data.microsoft.com", "Microsoft", Telemetry),
    ("vortex.data.microsoft.com", "Microsoft", Telemetry),
    ("appcenter.ms", "Microsoft", Telemetry),
    ("clarity.ms", "Microsoft", Analytics),
    ("bat.bing.com", "Microsoft", Advertising),
    ("adnxs.com", "Microsoft", Advertising),
    ("telemetry.microsoft.com", "Microsoft", Telemetry),
    ("microsoftonline.com", "Microsoft", Services),
    ("msauth.net", "Microsoft", Services),
    ("msftconnecttest.com", "Microsoft", Services),
    ("msftncsi.com", "Microsoft", Services),
    ("office365.com", "Microsoft", Services),
    ("onedrive.com", "Microsoft", Cloud),
    ("1drv.com", "Microsoft", Cloud),
    ("sharepoint.com", "Microsoft", Cloud),
    ("msecnd.net", "Microsoft", Cdn),
    ("bing.net", "Microsoft", Services),
    ("visualstudio.com", "Microsoft", Services),
    ("swiftkey.com", "SwiftKey", Services),
    ("github.com", "GitHub", Services),
    ("githubusercontent.com", "GitHub", Cdn),
    // Apple
    ("apple.com", "Apple", Services),
    ("icloud.com", "Apple", Cloud),
    ("icloud-content.com", "Apple", Cloud),
    ("apple-cloudkit.com", "Apple", Cloud),
    ("mzstatic.com", "Apple", Cdn),
    ("cdn-apple.com", "Apple", Cdn),
    ("aaplimg.com", "Apple", Cdn),
    ("xp.apple.com", "Apple", Telemetry),
    ("metrics.icloud.com", "Apple", Telemetry),
    ("iadsdk.apple.com", "Apple", Advertising),
    ("apple-dns.net", "Apple", Services),
    ("applemediaservices.com", "Apple", Services),
    ("apple-mapkit.com", "Apple", Services),
    ("itunes.com", "Apple", Services),
    ("apple.news", "Apple", Services),
    ("apple.com.cn", "Apple", Services),
    ("icloud.com.cn", "Apple", Cloud),
    ("me.com", "Apple", Cloud),
    ("mac.com", "Apple", Cloud),
    // The .apple top-level domain is Apple's own.
    ("apple", "Apple", Services),
    // Other phone makers. OPPO's HeyTap and allawnos/allawntech services
    // run on OPPO, realme and OnePlus phones alike.
    ("heytapmobi.com", "OPPO", Telemetry),
    ("ads.heytapmobi.com", "OPPO", Advertising),
    ("heytapmobile.com", "OPPO", Services),
    ("heytap.com", "OPPO", Services),
    ("heytapimage.com", "OPPO", Cdn),
    ("oppomobile.com", "OPPO", Services),
    ("ads.oppomobile.com", "OPPO", Advertising),
    ("oppo.com", "OPPO", Services),
    ("coloros.com", "OPPO", Services),
    ("allawnos.com", "OPPO", Services),
    ("allawntech.com", "OPPO", Services),
    ("realme.com", "realme", Services),
    ("realmemobile.com", "realme", Services),
    ("oneplus.com", "OnePlus", Services),
    ("oneplus.net", "OnePlus", Services),
    ("oneplus.cn", "OnePlus", Services),
    ("oneplus.in", "OnePlus", Services),
    ("vivo.com", "vivo", Services),
    ("vivo.com.cn", "vivo", Services),
    ("vivoglobal.com", "vivo", Services),
    ("iqoo.com", "vivo", Services),
    ("transsion.com", "Transsion", Services),
    ("shalltry.com", "Transsion", Telemetry),
    ("tecno-mobile.com", "Transsion", Services),
    ("infinixmobility.com", "Transsion", Services),
    ("itel-life.com", "Transsion", Services),
    ("motorola.com", "Motorola", Services),
    ("lenovo.com", "Lenovo", Services),
    ("lenovo.com.cn", "Lenovo", Services),
    ("lenovomm.com", "Lenovo", Services),
    // Baidu, Yandex
    ("baidu.com", "Baidu", Services),
    ("bcebos.com", "Baidu Cloud", Cloud),
    ("baidubce.com", "Baidu Cloud", Cloud),
    ("bdimg.com", "Baidu", Cdn),
    ("baidustatic.com", "Baidu", Cdn),
    ("bdstatic.com", "Baidu", Cdn),
    ("hm.baidu.com", "Baidu", Analytics),
    ("pos.baidu.com", "Baidu", Advertising),
    ("mobads.baidu.com", "Baidu", Advertising),
    ("yandex.ru", "Yandex", Services),
    ("yandex.net", "Yandex", Services),
    ("yandex.com", "Yandex", Services),
    ("mc.yandex.ru", "Yandex", Analytics),
    ("appmetrica.yandex.com", "Yandex", Analytics),
    ("adfox.ru", "Yandex", Advertising),
    // Social networks
    ("twitter.com", "X", Social),
    ("x.com", "X", Social),
    ("twimg.com", "X", Cdn),
    ("ads-twitter.com", "X", Advertising),
    ("snapchat.com", "Snap", Social),
    ("sc-cdn.net", "Snap", Cdn),
    // Mobile ad networks and mediation
    ("applovin.com", "AppLovin", Advertising),
    ("applvn.com", "AppLovin", Advertising),
    ("unityads.unity3d.com", "Unity", Advertising),
    ("unity3d.com", "Unity", Services),
    ("ironsrc.com", "Unity", Advertising),
    ("ironsrc.net", "Unity", Advertising),
    ("supersonicads.com", "Unity", Advertising),
    ("vungle.com", "Liftoff", Advertising),
    ("liftoff.io", "Liftoff", Advertising),
    ("inmobi.com", "InMobi", Advertising),
    ("mintegral.com", "Mintegral", Advertising),
    ("rayjump.com", "Mintegral", Advertising),
    ("chartboost.com", "Chartboost", Advertising),
    ("criteo.com", "Criteo", Advertising),
    ("criteo.net", "Criteo", Advertising),
    ("taboola.com", "Taboola", Advertising),
    ("outbrain.com", "Outbrain", Advertising),
    ("adsrvr.org", "The Trade Desk", Advertising),
    ("pubmatic.com", "PubMatic", Advertising),
    ("rubiconproject.com", "Magnite", Advertising),
    ("openx.net", "OpenX", Advertising),
    ("casalemedia.com", "Index Exchange", Advertising),
    // Attribution and product analytics SDKs
    ("appsflyer.com", "AppsFlyer", Analytics),
    ("appsflyersdk.com", "AppsFlyer", Analytics),
    ("adjust.com", "Adjust", Analytics),
    ("adjust.io", "Adjust", Analytics),
    ("branch.io", "Branch", Analytics),
    ("app.link", "Branch", Analytics),
    ("kochava.com", "Kochava", Analytics),
    ("singular.net", "Singular", Analytics),
    ("mixpanel.com", "Mixpanel", Analytics),
    ("amplitude.com", "Amplitude", Analytics),
    ("segment.io", "Twilio Segment", Analytics),
    ("segment.com", "Twilio Segment", Analytics),
    ("braze.com", "Braze", Analytics),
    ("appboy.com", "Braze", Analytics),
    ("onesignal.com", "OneSignal", Analytics),
    ("scorecardresearch.com", "Comscore", Analytics),
    ("quantserve.com", "Quantcast", Analytics),
    ("hotjar.com", "Hotjar", Analytics),
    ("onelink.me", "AppsFlyer", Analytics),
    // Adobe Experience Cloud: Analytics (2o7.net, omtrdc.net), Audience
    // Manager (demdex.net), its tag manager, Advertising (everesttech.net).
    ("2o7.net", "Adobe", Analytics),
    ("omtrdc.net", "Adobe", Analytics),
    ("demdex.net", "Adobe", Advertising),
    ("adobedtm.com", "Adobe", Analytics),
    ("everesttech.net", "Adobe", Advertising),
    ("typekit.net", "Adobe", Cdn),
    ("adobe.com", "Adobe", Services),
    ("adobe.io", "Adobe", Services),
    ("adobelogin.com", "Adobe", Services),
    // Apps and services makers and carriers preinstall: antivirus,
    // caller ID, video and music, travel, browsers, lock screens, app
    // installers.
    ("avast.com", "Avast", Services),
    ("avcdn.net", "Avast", Cdn),
    ("avg.com", "AVG", Services),
    ("360.cn", "Qihoo 360", Services),
    ("360.com", "Qihoo 360", Services),
    ("360safe.com", "Qihoo 360", Services),
    ("qhimg.com", "Qihoo 360", Cdn),
    ("hiya.com", "Hiya", Services),
    ("truecaller.com", "Truecaller", Services),
    ("dailymotion.com", "Dailymotion", Social),
    ("dmcdn.net", "Dailymotion", Cdn),
    ("netflix.com", "Netflix", Services),
    ("netflix.net", "Netflix", Services),
    ("nflxvideo.net", "Netflix", Cdn),
    ("nflxso.net", "Netflix", Cdn),
    ("nflximg.net", "Netflix", Cdn),
    ("nflxext.com", "Netflix", Cdn),
    ("spotify.com", "Spotify", Services),
    ("scdn.co", "Spotify", Cdn),
    ("spotifycdn.com", "Spotify", Cdn),
    ("booking.com", "Booking.com", Services),
    ("opera.com", "Opera", Services),
    ("glance.com", "Glance", Advertising),
    ("digitalturbine.com", "Digital Turbine", Advertising),
    // Crash and performance telemetry
    ("sentry.io", "Sentry", Telemetry),
    ("bugsnag.com", "SmartBear", Telemetry),
    ("nr-data.net", "New Relic", Telemetry),
    ("newrelic.com", "New Relic", Telemetry),
    ("datadoghq.com", "Datadog", Telemetry),
    // CDNs and clouds
    ("akamai.net", "Akamai", Cdn),
    ("akamaiedge.net", "Akamai", Cdn),
    ("akamaihd.net", "Akamai", Cdn),
    ("akamaized.net", "Akamai", Cdn),
    ("edgekey.net", "Akamai", Cdn),
    ("edgesuite.net", "Akamai", Cdn),
    ("cloudflare.com", "Cloudflare", Cdn),
    ("cloudflare.net", "Cloudflare", Cdn),
    ("cloudflare-dns.com", "Cloudflare", Services),
    ("fastly.net", "Fastly", Cdn),
    ("fastlylb.net", "Fastly", Cdn),
    ("digitaloceanspaces.com", "DigitalOcean", Cloud),
];

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

/// Owners that belong to another company, as the companies say (annual
/// reports, acquisition announcements), under the names the built-in table
/// and the imported lists (WhoTracks.me's company names) give them. Only
/// the direct, current parent: Honor is its own company since Huawei sold
/// it in 2020, and is listed under no one.
const PARENTS: &[(&str, &str)] = &[
    // Alibaba Group: Umeng since 2013, its cloud.
    ("Umeng", "Alibaba"),
    ("Alibaba Cloud", "Alibaba"),
    // Meta Platforms: Facebook, Instagram (2012), WhatsApp (2014), Oculus.
    ("Facebook", "Meta"),
    ("Instagram", "Meta"),
    ("WhatsApp", "Meta"),
    ("Oculus", "Meta"),
    // Alphabet's Google: DoubleClick (2008), AdMob (2010), YouTube (2006),
    // Firebase (2014), Crashlytics (2017), Fitbit (2021), Nest.
    ("DoubleClick", "Google"),
    ("AdMob", "Google"),
    ("YouTube", "Google"),
    ("Firebase", "Google"),
    ("Crashlytics", "Google"),
    ("Fitbit", "Google"),
    ("Nest", "Google"),
    // Microsoft: LinkedIn (2016), GitHub (2018), SwiftKey (2016), Skype,
    // Xandr (2022).
    ("LinkedIn", "Microsoft"),
    ("GitHub", "Microsoft"),
    ("SwiftKey", "Microsoft"),
    ("Skype", "Microsoft"),
    ("Xandr", "Microsoft"),
    // Amazon: AWS, Twitch (2014).
    ("Amazon AWS", "Amazon"),
    ("Twitch", "Amazon"),
    // Tencent's and Huawei's clouds.
    ("Tencent Cloud", "Tencent"),
    ("Huawei Cloud", "Huawei"),
    // OnePlus is an OPPO brand since 2021.
    ("OnePlus", "OPPO"),
    // AppLovin bought Adjust (2021) and MoPub (2022); Unity merged with
    // ironSource (2022); Twilio bought Segment (2020); Mobvista owns
    // Mintegral; Liftoff merged with Vungle (2021).
    ("Adjust", "AppLovin"),
    ("MoPub", "AppLovin"),
    ("ironSource", "Unity"),
    ("Twilio Segment", "Twilio"),
    ("Segment", "Twilio"),
    ("Mintegral", "Mobvista"),
    ("Vungle", "Liftoff"),
    // Lenovo bought Motorola Mobility (2014); Glance is InMobi's;
    // Dailymotion went to Havas when Vivendi split up (2024).
    ("Motorola", "Lenovo"),
    ("Glance", "InMobi"),
    ("Dailymotion", "Havas"),
    // Gen Digital: Avast (2022), AVG (Avast's since 2016).
    ("Avast", "Gen Digital"),
    ("AVG", "Avast"),
    // The clouds that host customers' names under Google's and Baidu's
    // domains (App Engine, Firebase Hosting; Baidu AI Cloud).
    ("Google Cloud", "Google"),
    ("Baidu Cloud", "Baidu"),
    ("Microsoft Azure", "Microsoft"),
];

/// Owners that are clouds and CDNs: they serve other companies' names.
const HOSTING_OWNERS: &[&str] = &[
    "Alibaba Cloud",
    "Amazon AWS",
    "Tencent Cloud",
    "Huawei Cloud",
    "Google Cloud",
    "Baidu Cloud",
    "Microsoft Azure",
];

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
