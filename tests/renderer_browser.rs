//! The report renderer (openwrt-package/.../phonehome/render.js) in a real
//! browser: each recorded report document in tests/fixtures/report/ (and a
//! generated one with 500 owners and 50 devices) goes through
//! `phonehome report --from DOC --out PAGE.html`, and
//! tests/browser/check_report.py opens the page in headless Chromium and
//! checks what a person sees: it renders with no console error, nothing
//! from the data became markup or ran, nothing is wider than the window,
//! the bars, cards, timeline points, decisions and diff groups agree with
//! the document and with tests/browser/expect/NAME.json, the Block buttons
//! call back, malformed documents draw without throwing (the time to draw
//! again is printed, not judged). Screenshots land in
//! target/report-shots/NAME.png (look at them).
//! Also: `node --check` on render.js and its helpers' unit tests in node.
//!
//! Needs Debian's chromium, chromium-driver, python3-selenium and nodejs
//! (scripts/install-deps); without them these tests fail, they do not skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

const PYTHON: &str = "/usr/bin/python3";
const RENDERER: &str =
    "openwrt-package/luci-app-phonehome/htdocs/luci-static/resources/phonehome/render.js";

/// One Chromium at a time: the machines running these have few cores.
static BROWSER: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let dir = target.join("report-shots");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (run scripts/install-deps)"))
}

/// Chromium, its driver and Selenium are there, or the test fails saying
/// how to get them.
fn require_browser() {
    let mut missing: Vec<String> = ["/usr/bin/chromium", "/usr/bin/chromedriver", PYTHON]
        .iter()
        .filter(|p| !Path::new(p).exists())
        .map(|p| p.to_string())
        .collect();
    if missing.is_empty() {
        let out = run(Command::new(PYTHON).args(["-c", "import selenium.webdriver"]));
        if !out.status.success() {
            missing.push(format!("python3-selenium ({})", text(&out).trim()));
        }
    }
    assert!(
        missing.is_empty(),
        "missing {missing:?}: run scripts/install-deps (it installs chromium, chromium-driver and python3-selenium)"
    );
}

/// `phonehome report --from doc`, then the browser checks of `expect`
/// (a name under tests/browser/expect/); the screenshot is NAME.png.
fn render_and_check(name: &str, doc: &Path) {
    require_browser();
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = shots();
    let html = dir.join(format!("{name}.html"));
    let out = run(Command::new(env!("CARGO_BIN_EXE_phonehome"))
        .args(["report", "--from"])
        .arg(doc)
        .arg("--out")
        .arg(&html));
    assert!(
        out.status.success(),
        "phonehome report --from {}: {}",
        doc.display(),
        text(&out)
    );
    let out = run(Command::new(PYTHON)
        .arg(root().join("tests/browser/check_report.py"))
        .arg("page")
        .arg(&html)
        .arg(name)
        .arg("--shot")
        .arg(dir.join(format!("{name}.png"))));
    assert!(out.status.success(), "{name}: {}", text(&out));
}

fn fixture(name: &str) -> PathBuf {
    root()
        .join("tests/fixtures/report")
        .join(format!("{name}.json"))
}

/// Nothing recorded yet: a friendly "nothing to show" page, no chart.
#[test]
fn empty_document_says_nothing_to_show() {
    render_and_check("empty", &fixture("empty"));
}

/// One Xiaomi phone (randomised MAC) with Xiaomi telemetry and Umeng
/// blocked: headline, phone-home share, owner bars, timeline, decisions.
#[test]
fn one_xiaomi_phone() {
    render_and_check("one-device", &fixture("one-device"));
}

/// Names, domains, hostnames, rules, countries and series keys holding
/// HTML and script, a 5,000-character name, an RTL override and empty
/// strings: shown as text, cut, nothing runs, the layout holds.
#[test]
fn hostile_names_stay_text() {
    render_and_check("hostile", &fixture("hostile"));
}

/// A before/after diff: appeared, vanished, grew and shrank owners and the
/// mirrored chart.
#[test]
fn before_after_diff() {
    render_and_check("diff", &fixture("diff"));
}

/// 500 owners, 50 devices, a week of hourly buckets, 500 decisions: the
/// limits hold and drawing takes well under a second.
#[test]
fn five_hundred_owners_fifty_devices() {
    require_browser();
    let doc = shots().join("many.json");
    let out = run(Command::new(PYTHON)
        .arg(root().join("tests/browser/check_report.py"))
        .arg("make-many")
        .arg(&doc));
    assert!(out.status.success(), "make-many: {}", text(&out));
    render_and_check("many", &doc);
}

/// render.js parses as a classic script and its pure helpers (random MAC,
/// phone-home share, percentages, time axis ticks, formatting) pass their
/// unit tests in node; its source has no markup sink, eval or network use.
#[test]
fn renderer_parses_and_its_helpers_pass_in_node() {
    let node = ["/usr/bin/node", "/usr/bin/nodejs"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("node is missing: run scripts/install-deps (it installs nodejs)");
    let out = run(Command::new(node).arg("--check").arg(root().join(RENDERER)));
    assert!(
        out.status.success(),
        "node --check render.js: {}",
        text(&out)
    );
    let out = run(Command::new(node).arg(root().join("tests/browser/render_helpers.test.js")));
    assert!(out.status.success(), "render.js helpers: {}", text(&out));
}
