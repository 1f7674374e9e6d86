//! openwrt-package/: what can be checked without an OpenWrt SDK. The
//! files the Makefile copies build with `--locked` (as rust-package.mk's
//! `cargo install --locked` will), the version is valid for opkg and apk,
//! the recipe has the parts the SDK needs, the init script is valid shell
//! and has nft check a new fw4 include before fw4 loads it,
//! the default config is accepted by the daemon's parser and renders the
//! shipped fw4 include, the capabilities file grants CAP_NET_ADMIN only,
//! and the recipe's owner-database step (run through make with stand-ins
//! for the SDK's files) compiles the shipped database from the real
//! WhoTracks.me 2022-08 dump and iptoasn rows, and from nothing else.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// apk's version grammar (digits, dots, optional letter, `_suffix[N]`)
/// restricted to what opkg also orders the same way: digits and dots.
fn valid_for_opkg_and_apk(v: &str) -> bool {
    !v.is_empty()
        && v.split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// make reads the version out of the Cargo.toml it is pointed at: this
/// one's is valid for opkg and apk and comes out as the package's; one
/// that opkg or apk would misorder (a pre-release suffix) stops make with
/// the file named instead of building a package with an empty version.
#[test]
fn package_version_is_cargos_and_valid_for_opkg_and_apk() {
    for bad in ["0.1.0-beta", "1..2", "", "1.2a"] {
        assert!(!valid_for_opkg_and_apk(bad));
    }
    let sdk = stub_sdk("sdk-version");
    let out = make_in_stub_sdk(&sdk, &[]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("VERSION="))
        .unwrap_or_else(|| panic!("no VERSION: {text}{out:?}"));
    let (cargo, release) = version.rsplit_once('-').unwrap();
    assert_eq!((cargo, release), (env!("CARGO_PKG_VERSION"), "1"));
    assert!(valid_for_opkg_and_apk(cargo), "{cargo}");
    for bad in ["0.2.0-beta.1", "0.2.0+git"] {
        let src = sdk.join(format!("src-{bad}"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(
            src.join("Cargo.toml"),
            format!("[package]\nname = \"phonehome\"\nversion = \"{bad}\"\n"),
        )
        .unwrap();
        let out = make_in_stub_sdk(&sdk, &[format!("PHONEHOME_SRC={}", src.display())]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: make went on");
        assert!(
            err.contains("Cargo.toml: no version of digits and dots"),
            "{bad}: {err}"
        );
    }
    std::fs::remove_dir_all(&sdk).ok();
}

#[test]
fn makefile_has_what_the_sdk_needs() {
    let makefile = read("openwrt-package/Makefile");
    for needed in [
        "include $(TOPDIR)/rules.mk",
        "PKG_BUILD_DEPENDS:=rust/host",
        "include $(INCLUDE_DIR)/package.mk",
        "include $(TOPDIR)/feeds/packages/lang/rust/rust-package.mk",
        "DEPENDS:=$(RUST_ARCH_DEPENDS)",
        "+kmod-nft-queue",
        "+kmod-nfnetlink-queue",
        "+kmod-nf-conntrack-netlink",
        "define Package/phonehome/conffiles\n/etc/config/phonehome\nendef",
        "$(eval $(call RustBinPackage,phonehome))",
        "$(eval $(call BuildPackage,phonehome))",
        "$(INSTALL_BIN) $(PKG_INSTALL_DIR)/bin/phonehome $(1)/usr/sbin/phonehome",
        "/usr/share/nftables.d/table-post/30-phonehome.nft",
    ] {
        assert!(makefile.contains(needed), "Makefile lacks {needed:?}");
    }
    assert_eq!(
        phonehome::policy::firewall::FW4_INCLUDE_PATH,
        "/usr/share/nftables.d/table-post/30-phonehome.nft"
    );
    // Recipe lines (Build/* and */install) start with a tab, or make stops
    // with "missing separator".
    let mut in_recipe = false;
    for (no, line) in makefile.lines().enumerate() {
        if let Some(name) = line.strip_prefix("define ") {
            in_recipe = name.starts_with("Build/") || name.ends_with("/install");
        } else if line == "endef" {
            in_recipe = false;
        } else if in_recipe && !line.is_empty() && !line.starts_with('\t') {
            panic!("Makefile:{}: recipe line not indented with a tab", no + 1);
        }
    }
    // Every file the install step names exists.
    for line in makefile.lines().filter(|l| l.contains("./files/")) {
        let file = line
            .split_whitespace()
            .find(|w| w.starts_with("./files/"))
            .unwrap();
        assert!(
            root().join("openwrt-package").join(file).is_file(),
            "{file} is missing"
        );
    }
}

/// Copies what Build/Prepare copies and builds it `--locked`, as the SDK
/// will (a separate target directory keeps the test's own build unlocked).
#[test]
fn the_copied_source_builds_locked() {
    let makefile = read("openwrt-package/Makefile");
    let prepare = makefile
        .split("define Build/Prepare")
        .nth(1)
        .and_then(|s| s.split("endef").next())
        .expect("Build/Prepare");
    let renderer_dir = makefile
        .lines()
        .find_map(|l| l.strip_prefix("RENDERER_DIR:="))
        .expect("RENDERER_DIR");
    let copied: Vec<String> = prepare
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("$(PHONEHOME_SRC)/"))
        .map(|w| w.replace("$(RENDERER_DIR)", renderer_dir))
        .collect();
    for needed in ["Cargo.lock", "src", "build.rs"] {
        assert!(copied.iter().any(|c| c == needed), "{needed} is not copied");
    }
    let build_dir = std::env::temp_dir().join(format!("phonehome-pkg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&build_dir);
    std::fs::create_dir_all(&build_dir).unwrap();
    for item in &copied {
        // Copied to the same place under the build directory (the
        // renderer to its folder, made by the recipe's mkdir -p).
        let to = build_dir.join(item);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let status = Command::new("cp")
            .arg("-r")
            .arg(root().join(item))
            .arg(to.parent().unwrap())
            .status()
            .unwrap();
        assert!(status.success(), "cp {item}");
    }
    let out = Command::new(env!("CARGO"))
        .args(["check", "--locked", "--offline", "--bins", "--quiet"])
        .arg("--manifest-path")
        .arg(build_dir.join("Cargo.toml"))
        .env(
            "CARGO_TARGET_DIR",
            root().join("target/openwrt-package-check"),
        )
        .output()
        .unwrap();
    std::fs::remove_dir_all(&build_dir).ok();
    assert!(
        out.status.success(),
        "the files Build/Prepare copies do not build --locked:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn init_script_is_valid_shell_with_the_procd_parts() {
    let path = root().join("openwrt-package/files/phonehome.init");
    let status = Command::new("sh").arg("-n").arg(&path).status().unwrap();
    assert!(status.success(), "sh -n phonehome.init");
    let init = read("openwrt-package/files/phonehome.init");
    for needed in [
        "#!/bin/sh /etc/rc.common",
        "USE_PROCD=1",
        "procd_set_param command \"$PROG\" run -c \"$CONFIG\"",
        "procd_set_param respawn",
        "procd_add_reload_trigger phonehome",
        "procd_send_signal phonehome '*' HUP",
        "procd_set_param capabilities /etc/capabilities/phonehome.json",
        "[ -x /sbin/ujail ]",
        "\"$PROG\" firewall print --backend fw4 -c \"$CONFIG\"",
    ] {
        assert!(init.contains(needed), "init script lacks {needed:?}");
    }
}

#[test]
fn default_config_parses_and_renders_the_shipped_include() {
    let path = root().join("openwrt-package/files/phonehome.config");
    let cfg = phonehome::policy::config::Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((cfg.queue, cfg.fail_closed), (0, false));
    let out = Command::new(env!("CARGO_BIN_EXE_phonehome"))
        .args(["firewall", "print", "--backend", "fw4", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        read("openwrt-package/files/phonehome.nft")
    );
}

#[test]
fn capabilities_grant_cap_net_admin_only() {
    let caps: serde_json::Value =
        serde_json::from_str(&read("openwrt-package/files/phonehome.capabilities.json")).unwrap();
    let sets = caps.as_object().unwrap();
    for set in [
        "bounding",
        "effective",
        "ambient",
        "permitted",
        "inheritable",
    ] {
        assert_eq!(
            sets[set],
            serde_json::json!(["CAP_NET_ADMIN"]),
            "capability set {set}"
        );
    }
    assert!(Path::new(&root().join("openwrt-package/README.md")).is_file());
}

/// A directory with stand-ins for the SDK files the recipe includes
/// (rules.mk, package.mk, rust-package.mk) that only print what the recipe
/// asks for, and a `stub-owners-db` goal that runs the recipe's
/// owner-database step with `PHONEHOME_BIN`.
fn stub_sdk(name: &str) -> PathBuf {
    let sdk = std::env::temp_dir().join(format!("phonehome-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&sdk);
    std::fs::create_dir_all(sdk.join("include")).unwrap();
    std::fs::create_dir_all(sdk.join("feeds/packages/lang/rust")).unwrap();
    std::fs::write(sdk.join("rules.mk"), "INSTALL_DIR:=install -d -m0755\nINSTALL_BIN:=install -m0755\nINSTALL_CONF:=install -m0600\nINSTALL_DATA:=install -m0644\nCP:=cp -fpR\n").unwrap();
    std::fs::write(
        sdk.join("include/package.mk"),
        "PKG_BUILD_DIR:=/build/phonehome\nPKG_INSTALL_DIR:=/build/phonehome/ipkg-install\n\
         DL_DIR:=/sdk/dl\n\
         define BuildPackage\n\
         $(eval $(Package/$(1)))\n\
         $(info VERSION=$(PKG_VERSION)-$(PKG_RELEASE))\n\
         $(info DEPENDS=$(strip $(DEPENDS)))\n\
         $(info CONFFILES=$(strip $(Package/$(1)/conffiles)))\n\
         $(info PREPARE=$(strip $(Build/Prepare)))\n\
         $(info COMPILE=$(strip $(Build/Compile)))\n\
         $(info INSTALL=$(strip $(call Package/$(1)/install,/root)))\n\
         endef\n\
         stub-sdk-done:\n\t@true\n\
         stub-owners-db:\n\t$(call Build/Compile/OwnersDb,$(PHONEHOME_BIN))\n",
    )
    .unwrap();
    std::fs::write(
        sdk.join("feeds/packages/lang/rust/rust-package.mk"),
        "RUST_ARCH_DEPENDS:=@(aarch64||arm||mips||mipsel)\ndefine RustBinPackage\nendef\n\
         define Build/Compile/Cargo\ncargo install --target mipsel-unknown-linux-musl\nendef\n",
    )
    .unwrap();
    sdk
}

fn make_in_stub_sdk(sdk: &Path, args: &[String]) -> std::process::Output {
    Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(root().join("openwrt-package"))
        .arg(format!("TOPDIR={}", sdk.display()))
        .arg(format!("INCLUDE_DIR={}", sdk.join("include").display()))
        .args(args)
        .output()
        .expect("run make (scripts/install-deps installs it)")
}

/// GNU make reads the recipe with stand-ins for the SDK's include files
/// (rules.mk, package.mk, rust-package.mk) that only print what the recipe
/// defines: it parses, `$$` escapes are right, PKG_VERSION comes out of
/// Cargo.toml, and the compile and install steps expand to the expected commands.
#[test]
fn make_reads_the_recipe_with_sdk_stand_ins() {
    let sdk = stub_sdk("sdk-stub");
    let out = make_in_stub_sdk(&sdk, &[]);
    std::fs::remove_dir_all(&sdk).ok();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let line = |key: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("make printed no {key}:\n{text}"))
            .to_string()
    };
    assert_eq!(line("VERSION"), format!("{}-1", env!("CARGO_PKG_VERSION")));
    assert_eq!(
        line("DEPENDS"),
        "@(aarch64||arm||mips||mipsel) +kmod-nft-queue +kmod-nfnetlink-queue +kmod-nf-conntrack-netlink"
    );
    assert_eq!(line("CONFFILES"), "/etc/config/phonehome");
    let prepare = line("PREPARE");
    assert!(
        prepare.contains(&format!("{}/Cargo.lock", root().display())),
        "{prepare}"
    );
    let install = line("INSTALL");
    for expected in [
        "install -m0755 /build/phonehome/ipkg-install/bin/phonehome /root/usr/sbin/phonehome",
        "install -m0755 ./files/phonehome.init /root/etc/init.d/phonehome",
        "install -m0600 ./files/phonehome.config /root/etc/config/phonehome",
        "install -m0644 ./files/phonehome.nft /root/usr/share/nftables.d/table-post/30-phonehome.nft",
        "install -m0644 ./files/phonehome.capabilities.json /root/etc/capabilities/phonehome.json",
        "install -m0644 ./files/DATA-SOURCES /root/usr/share/phonehome/DATA-SOURCES",
        "install -m0644 /build/phonehome/owners.db /root/usr/share/phonehome/owners.db",
    ] {
        assert!(install.contains(expected), "install step lacks {expected:?}:\n{install}");
    }
    // The router binary, then a host phonehome (no target) that compiles
    // the database from what is in dl/ (none here: built-in table only).
    let compile = line("COMPILE");
    let host_build =
        compile.find("cargo build --release --locked --features compile --bin phonehome");
    let target_build = compile.find("cargo install --target");
    assert!(
        matches!((target_build, host_build), (Some(t), Some(h)) if t < h),
        "{compile}"
    );
    assert!(
        compile.contains(
            "./build-owners-db --phonehome /build/phonehome/host-target/release/phonehome \
             --out /build/phonehome/owners.db"
        ),
        "{compile}"
    );
    assert!(
        compile.contains("/sdk/dl/whotracksme-trackerdb-2022-08.sql not found"),
        "{compile}"
    );
    assert!(
        !text.contains("missing separator") && !text.contains("***"),
        "{text}"
    );
}

fn lookup(db: &Path, query: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_phonehome"))
        .args(["db", "lookup", "--db"])
        .arg(db)
        .args([query, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{query}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The recipe's owner-database step, run by make: from the real
/// WhoTracks.me 2022-08 dump, iptoasn rows (gzipped, as iptoasn serves
/// them) and Debian's Public Suffix List, the database names the dump's
/// companies, the clouds' networks and every range's country, and nothing
/// of the networks it has no owner for. Another dump (a later TrackerDB is
/// CC BY-NC-SA) is refused and nothing is written.
#[test]
fn the_package_compiles_its_owner_database_from_permissive_sources_only() {
    let sdk = stub_sdk("sdk-db");
    let (dl, build) = (sdk.join("dl"), sdk.join("build"));
    std::fs::create_dir_all(&dl).unwrap();
    std::fs::create_dir_all(&build).unwrap();
    let dump = dl.join("whotracksme-trackerdb-2022-08.sql");
    std::fs::copy(common::whotracksme_dump(), &dump).unwrap();
    let gz = Command::new("gzip")
        .arg("-c")
        .arg(root().join("tests/fixtures/owners/ip2asn-v4-excerpt.tsv"))
        .output()
        .unwrap();
    std::fs::write(dl.join("ip2asn-combined.tsv.gz"), gz.stdout).unwrap();
    let args = [
        format!("DL_DIR={}", dl.display()),
        format!("PKG_BUILD_DIR={}", build.display()),
        format!("PHONEHOME_BIN={}", env!("CARGO_BIN_EXE_phonehome")),
        "stub-owners-db".to_string(),
    ];
    let out = make_in_stub_sdk(&sdk, &args);
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{log}{out:?}");
    assert!(!log.contains("not found"), "{log}");
    let db = build.join("owners.db");
    let m = lookup(&db, "www.mmtro.com");
    assert_eq!(
        (m["owner"].as_str(), m["source"].as_str()),
        (
            Some("1000mercis"),
            Some("whotracksme:whotracksme-trackerdb-2022-08.sql")
        )
    );
    assert_eq!(lookup(&db, "google-analytics.com")["source"], "builtin");
    assert_eq!(
        lookup(&db, "news.bbc.co.uk")["registrable_domain"],
        "bbc.co.uk"
    );
    let google = lookup(&db, "8.8.8.8");
    assert_eq!(
        (google["host_owner"].as_str(), google["country"].as_str()),
        (Some("Google"), Some("US"))
    );
    let unowned = lookup(&db, "1.1.1.1");
    assert_eq!(
        (&unowned["asn"], unowned["country"].as_str()),
        (&serde_json::Value::Null, Some("CN"))
    );
    assert!(log.contains("iptoasn:ip2asn-combined.tsv:"), "{log}");
    // No unpacked leftovers beside the database.
    let left: Vec<_> = std::fs::read_dir(&build)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["owners.db"]);

    // Another dump: refused, nothing written.
    std::fs::remove_file(&db).unwrap();
    let mut other = std::fs::read(&dump).unwrap();
    other.extend_from_slice(b"INSERT INTO \"tracker_domains\" VALUES('x','y.example');\n");
    std::fs::write(&dump, other).unwrap();
    let out = make_in_stub_sdk(&sdk, &args);
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("CC BY-NC-SA"), "{log}");
    assert!(!db.exists());
    std::fs::remove_dir_all(&sdk).ok();
}

/// Whether the running kernel takes an nft `queue` statement (`nft -c`
/// in a throw-away network namespace).
fn kernel_has_nft_queue() -> bool {
    let probe =
        std::env::temp_dir().join(format!("phonehome-queue-probe-{}.nft", std::process::id()));
    std::fs::write(
        &probe,
        "table inet probe {\n\tchain c {\n\t\ttype filter hook forward priority 0;\n\t\tqueue to 3\n\t}\n}\n",
    )
    .unwrap();
    let out = Command::new("unshare")
        .args(["--net", "nft", "-c", "-f"])
        .arg(&probe)
        .output()
        .expect("run unshare --net nft (root and nftables needed)");
    std::fs::remove_file(&probe).ok();
    out.status.success()
}

/// The init script's include update, against the real nft in a throw-away
/// network namespace, with a stand-in `fw4` on PATH that renders a `table
/// inet fw4` with the table-post includes at its end (as fw4's template
/// places them) and checks (`fw4 check`) or loads (`fw4 reload`, which
/// exits 0 whatever nft says, as fw4's does) it. A config with a new queue
/// number makes a new include. Where nft refuses it (this CI kernel has no
/// nft `queue`) the old include goes back and the update fails with nft's
/// reason, so fw4 keeps a firewall; where nft takes it (the stock kernel
/// of scripts/test-vm) it is installed and loaded.
#[test]
fn init_script_checks_a_new_include_before_fw4_loads_it() {
    if unsafe { libc::geteuid() } != 0 {
        assert!(std::env::var_os("CI").is_none(), "needs root in CI");
        return;
    }
    let dir = std::env::temp_dir().join(format!("phonehome-init-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["bin", "table-post", "run"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let shipped = read("openwrt-package/files/phonehome.nft");
    let include = dir.join("table-post/30-phonehome.nft");
    std::fs::write(&include, &shipped).unwrap();
    std::fs::write(
        dir.join("config"),
        "config phonehome 'main'\n\toption queue '3'\n",
    )
    .unwrap();
    let fw4 = dir.join("bin/fw4");
    std::fs::write(
        &fw4,
        format!(
            "#!/bin/sh\n[ \"$1\" = -q ] && shift\n\
             render() {{ printf 'table inet fw4\\ndelete table inet fw4\\ntable inet fw4 {{\\n\\tchain forward {{\\n\\t\\ttype filter hook forward priority filter; policy drop;\\n\\t}}\\n'; cat {d}/table-post/*.nft; printf '}}\\n'; }}\n\
             case \"$1\" in\n\
             check) render | nft -c -f - && echo 'Ruleset passes nftables check.' ;;\n\
             reload) render | nft -f - ; exit 0 ;;\n\
             *) exit 2 ;;\n\
             esac\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let script = format!(
        "logger() {{ echo \"logger $*\" >> {d}/log; }}\n\
         . {init}\n\
         PROG={bin} CONFIG={d}/config FW4_INCLUDE={inc} RUN_DIR={d}/run\n\
         PATH={d}/bin:$PATH\n\
         if update_fw4_include 2> {d}/err; then echo \"installed $FW4_CHANGED\"; nft list table inet fw4; else echo refused; fi\n",
        d = dir.display(),
        init = root().join("openwrt-package/files/phonehome.init").display(),
        bin = env!("CARGO_BIN_EXE_phonehome"),
        inc = include.display(),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fw4, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let err = std::fs::read_to_string(dir.join("err")).unwrap_or_default();
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    let now = std::fs::read_to_string(&include).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("run"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(leftovers.is_empty(), "left in the run dir: {leftovers:?}");
    if kernel_has_nft_queue() {
        assert!(stdout.starts_with("installed 1"), "{stdout}{err}");
        assert!(now.contains("queue flags bypass to 3"), "{now}");
        assert!(
            stdout.contains("queue flags bypass to 3"),
            "loaded: {stdout}"
        );
    } else {
        assert!(stdout.starts_with("refused"), "{stdout}{err}");
        assert_eq!(now, shipped, "the old include is back");
        assert!(
            err.contains("fw4 check refused the new rules, the old ones stay")
                && err.contains("Error"),
            "{err}"
        );
        assert!(log.contains("fw4 check refused"), "{log}");
    }
}

/// The offload rule the README recommends waits out the queued window
/// (`firewall::FIRST_PACKETS`): a smaller number offloaded connections
/// whose name comes late before the daemon judged them
/// (tests/offload_e2e.rs shows it on a stock kernel).
#[test]
fn recommended_offload_rule_waits_out_the_queued_window() {
    let readme = read("openwrt-package/README.md");
    let rule = format!(
        "ct original packets > {} flow offload @ft;",
        phonehome::policy::firewall::FIRST_PACKETS
    );
    assert!(
        readme.contains(&rule),
        "the README should recommend {rule:?}"
    );
    let init = read("openwrt-package/files/phonehome.init");
    assert!(init.contains("ct mark & 0x30000000 == 0x10000000 flow offload"));
}

/// A reload that names another first-contact hook (or a first one)
/// restarts the daemon, as another owner database does: the jail mounts
/// the hook at start, so a HUP alone would leave it unreachable. Any other
/// change is a HUP.
#[test]
fn init_script_restarts_when_the_hook_or_database_changes() {
    let dir = std::env::temp_dir().join(format!("phonehome-init-hook-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("run")).unwrap();
    std::fs::write(dir.join("run/db.path"), "/usr/share/phonehome/owners.db\n").unwrap();
    std::fs::write(dir.join("run/hook.path"), "\n").unwrap();
    let script = format!(
        ". {init}\n\
         RUN_DIR={d}/run\n\
         config_load() {{ :; }}\n\
         config_get() {{ eval \"$1=\\\"\\${{CFG_$3:-$4}}\\\"\"; }}\n\
         update_fw4_include() {{ FW4_CHANGED=0; }}\n\
         restart() {{ echo restart; }}\n\
         procd_send_signal() {{ echo hup; }}\n\
         CFG_db=/usr/share/phonehome/owners.db reload_service\n\
         CFG_db=/usr/share/phonehome/owners.db CFG_on_new_owner=/etc/phonehome/hook reload_service\n\
         CFG_db=/tmp/other.db reload_service\n",
        d = dir.display(),
        init = root().join("openwrt-package/files/phonehome.init").display(),
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hup\nrestart\nrestart\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
