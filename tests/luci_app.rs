//! openwrt-package/luci-app-phonehome: what can be checked without a
//! router or a browser. Its JSON files parse; the menu leads to views that
//! exist and need the app's ACL; the views are valid JavaScript (node);
//! the ACL grants nothing beyond the allow-list below, every command line
//! the views run is granted by it (matched as rpcd matches it) and is a
//! command line the real `phonehome` accepts, and every grant is used;
//! router data only ever reaches the page as text; every option and value
//! the Settings view offers is accepted by the daemon's config parser, and
//! every option the daemon reads is offered; the Overview's block action
//! writes a rule the daemon accepts; the Makefile builds with luci.mk.
//!
//! How rpcd matches an `exec` ACL entry (this is what the ACL is built
//! on). The views run commands with `fs.exec_direct`, which posts the
//! command line to cgi-io's `cgi-exec`; cgi-io (openwrt/cgi-io main.c,
//! `main_exec`) first needs the session's `"cgi-io": ["exec"]` grant, then
//! asks rpcd's session (`session_access(sid, "file", args[0], "exec")`)
//! about the WHOLE command line, the executable and every argument joined
//! with single spaces, and only if that is refused about the executable
//! path alone. rpcd's `file.exec` (`fs.exec` over ubus, openwrt/rpcd
//! file.c, `rpc_file_exec_run`) does the same in the other order: the
//! canonical executable path alone, then "path arg1 arg2 ...". rpcd
//! compares each ACL key with `fnmatch(pattern, object, FNM_NOESCAPE)`
//! (session.c, `uh_foreach_matching_acl`): `*` matches anything including
//! spaces and slashes, `?` one character, `[...]` a class. So an entry
//! `"/usr/sbin/phonehome flows --json"` allows exactly that command line,
//! a bare `"/usr/sbin/phonehome"` would allow every argument (`reload`,
//! `run -c FILE`, `db compile --out FILE` as root), and a trailing `*`
//! would allow `--socket ANY`. The ACL therefore lists whole command
//! lines, with `[0-9a-f]` classes for the MAC of `--device`, and no `*`.
//! (rpcd's `file.exec` stops joining at the first argument that would
//! pass 1024 bytes and checks only what came before, yet runs them all: a
//! session that may call ubus `file.exec` could append anything, such as
//! `report --out FILE`, to a granted line. cgi-io has no such limit: the
//! views use cgi-io only, and the ACL grants no ubus `file.exec`.)
//!
//! Over 600 lines: the app has three views, a menu, an ACL and a
//! Makefile, each checked on its own, plus a small fnmatch and the block
//! action run in node; the checks share nothing but the file readers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn app() -> PathBuf {
    root().join("openwrt-package/luci-app-phonehome")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const VIEWS_DIR: &str = "htdocs/luci-static/resources/view";
const VIEWS: &[&str] = &[
    "phonehome/overview",
    "phonehome/connections",
    "phonehome/settings",
];
const MENU: &str = "root/usr/share/luci/menu.d/luci-app-phonehome.json";
const ACL: &str = "root/usr/share/rpcd/acl.d/luci-app-phonehome.json";
const ACL_NAME: &str = "luci-app-phonehome";

fn view_source(view: &str) -> String {
    read(&app().join(VIEWS_DIR).join(format!("{view}.js")))
}

/// Where the phonehome package installs the CLI the views run.
fn installed_cli() -> String {
    let makefile = read(&root().join("openwrt-package/Makefile"));
    let line = makefile
        .lines()
        .find(|l| l.contains("$(INSTALL_BIN)") && l.contains("bin/phonehome"))
        .expect("openwrt-package/Makefile installs no phonehome binary");
    let target = line.split_whitespace().last().unwrap();
    target
        .strip_prefix("$(1)")
        .unwrap_or_else(|| panic!("unexpected install target {target}"))
        .to_string()
}

// --- the allow-list -------------------------------------------------------

/// A MAC as the ACL spells it: six pairs of lowercase hex digits.
fn mac_class() -> String {
    ["[0-9a-f][0-9a-f]"; 6].join(":")
}

/// Every command line the app may run: the read-only queries, nothing
/// that changes the daemon (the config reaches it through UCI and procd's
/// reload trigger, so `phonehome reload` is not needed).
fn allowed_exec(cli: &str) -> BTreeSet<String> {
    let mac = mac_class();
    let mut out = BTreeSet::new();
    out.insert(format!("{cli} devices --json"));
    out.insert(format!("{cli} flows --json"));
    out.insert(format!("{cli} flows --json --device {mac}"));
    for since in ["1h", "24h", "7d"] {
        out.insert(format!("{cli} report --json --since {since}"));
        out.insert(format!(
            "{cli} report --json --since {since} --device {mac}"
        ));
    }
    out
}

/// `fnmatch(pattern, s, FNM_NOESCAPE)` as rpcd calls it (no FNM_PATHNAME,
/// no FNM_PERIOD: `*` crosses `/` and spaces).
fn fnmatch(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|i| fnmatch(&p[1..], &s[i..])),
        Some(b'?') => !s.is_empty() && fnmatch(&p[1..], &s[1..]),
        Some(b'[') => {
            let mut i = 1;
            let negate = matches!(p.get(i), Some(b'!') | Some(b'^'));
            if negate {
                i += 1;
            }
            let start = i;
            let mut matched = false;
            let Some(&c) = s.first() else { return false };
            loop {
                match p.get(i) {
                    // No closing bracket: a literal '['.
                    None => return c == b'[' && fnmatch(&p[1..], &s[1..]),
                    Some(b']') if i > start => break,
                    Some(&lo) => {
                        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&h| h != b']') {
                            matched |= lo <= c && c <= p[i + 2];
                            i += 3;
                        } else {
                            matched |= lo == c;
                            i += 1;
                        }
                    }
                }
            }
            matched != negate && fnmatch(&p[i + 1..], &s[1..])
        }
        Some(&c) => s.first() == Some(&c) && fnmatch(&p[1..], &s[1..]),
    }
}

fn acl() -> Value {
    serde_json::from_str(&read(&app().join(ACL))).unwrap_or_else(|e| panic!("{ACL}: {e}"))
}

/// The command lines the ACL lets a session with the app's read access
/// run (read and write grants together: write users have both).
fn acl_exec_patterns(acl: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for level in ["read", "write"] {
        if let Some(files) = acl[ACL_NAME][level]["file"].as_object() {
            for (pattern, perms) in files {
                if perms
                    .as_array()
                    .is_some_and(|p| p.iter().any(|x| x == "exec"))
                {
                    out.push(pattern.clone());
                }
            }
        }
    }
    out
}

fn acl_allows(patterns: &[String], cmdline: &str) -> bool {
    patterns
        .iter()
        .any(|p| fnmatch(p.as_bytes(), cmdline.as_bytes()))
}

// --- a JavaScript tokenizer, enough for the views ------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Ident(String),
    Num,
    Regex,
    Template,
    Punct(String),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

impl Token {
    fn is(&self, p: &str) -> bool {
        matches!(&self.tok, Tok::Punct(x) | Tok::Ident(x) if x == p)
    }
    fn ident(&self) -> Option<&str> {
        match &self.tok {
            Tok::Ident(x) => Some(x),
            _ => None,
        }
    }
    fn string(&self) -> Option<&str> {
        match &self.tok {
            Tok::Str(x) => Some(x),
            _ => None,
        }
    }
}

/// Tokens of `src` without comments. A `/` starts a regular expression
/// where an operand is expected (after punctuation other than `)` and
/// `]`, or after `return`), as in JavaScript.
fn tokenize(src: &str, file: &str) -> Vec<Token> {
    let b: Vec<char> = src.chars().collect();
    let mut out: Vec<Token> = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                line += usize::from(b[i] == '\n');
                i += 1;
            }
            i += 2;
        } else if c == '\'' || c == '"' || c == '`' {
            let start_line = line;
            let mut s = String::new();
            i += 1;
            loop {
                match b.get(i) {
                    None => panic!("{file}:{start_line}: unterminated string"),
                    Some(&q) if q == c => break,
                    Some('\\') => {
                        match b.get(i + 1) {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(&e) => s.push(e),
                            None => {}
                        }
                        i += 1;
                    }
                    Some(&ch) => {
                        line += usize::from(ch == '\n');
                        s.push(ch);
                    }
                }
                i += 1;
            }
            i += 1;
            let tok = if c == '`' { Tok::Template } else { Tok::Str(s) };
            out.push(Token {
                tok,
                line: start_line,
            });
        } else if c == '/' && {
            match out.last().map(|t| &t.tok) {
                None => true,
                Some(Tok::Punct(p)) => p != ")" && p != "]",
                Some(Tok::Ident(w)) => w == "return" || w == "typeof",
                _ => false,
            }
        } {
            // A regular expression literal, classes included.
            let mut class = false;
            i += 1;
            while i < b.len() {
                match b[i] {
                    '\\' => i += 1,
                    '[' => class = true,
                    ']' => class = false,
                    '/' if !class => break,
                    '\n' => panic!("{file}:{line}: unterminated regular expression"),
                    _ => {}
                }
                i += 1;
            }
            i += 1;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Regex,
                line,
            });
        } else if c.is_ascii_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '_' || b[i] == '$') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Ident(b[start..i].iter().collect()),
                line,
            });
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '.') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Num,
                line,
            });
        } else {
            out.push(Token {
                tok: Tok::Punct(c.to_string()),
                line,
            });
            i += 1;
        }
    }
    out
}

/// The arguments of the call whose `(` is at `open`: token ranges split
/// at top-level commas, and the index after the closing `)`.
fn call_args(toks: &[Token], open: usize) -> (Vec<Vec<Token>>, usize) {
    assert!(toks[open].is("("));
    let (mut depth, mut args, mut cur) = (0usize, Vec::new(), Vec::new());
    let mut i = open + 1;
    loop {
        let t = &toks[i];
        match &t.tok {
            Tok::Punct(p) if p == "(" || p == "[" || p == "{" => depth += 1,
            Tok::Punct(p) if (p == ")" || p == "]" || p == "}") && depth > 0 => depth -= 1,
            Tok::Punct(p) if p == ")" => {
                if !cur.is_empty() {
                    args.push(cur);
                }
                return (args, i + 1);
            }
            Tok::Punct(p) if p == "," && depth == 0 => {
                args.push(std::mem::take(&mut cur));
                i += 1;
                continue;
            }
            _ => {}
        }
        cur.push(t.clone());
        i += 1;
    }
}

/// Where the bracket opened at `open` closes.
fn matching(toks: &[Token], open: usize) -> usize {
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match &t.tok {
            Tok::Punct(p) if p == "(" || p == "[" || p == "{" => depth += 1,
            Tok::Punct(p) if p == ")" || p == "]" || p == "}" => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced brackets from line {}", toks[open].line)
}

/// Calls of `name(` (or `obj.name(` with `obj`), not member calls of other
/// objects and not the function's own definition: index of the `(`.
fn calls(toks: &[Token], obj: Option<&str>, name: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for i in 0..toks.len().saturating_sub(1) {
        if toks[i].ident() != Some(name) || !toks[i + 1].is("(") {
            continue;
        }
        let before = i.checked_sub(1).map(|j| &toks[j]);
        match obj {
            None => {
                if before.is_some_and(|t| t.is(".") || t.is("function")) {
                    continue;
                }
            }
            Some(o) => {
                if !(before.is_some_and(|t| t.is(".")) && i >= 2 && toks[i - 2].ident() == Some(o))
                {
                    continue;
                }
            }
        }
        out.push(i + 1);
    }
    out
}

fn text(toks: &[Token]) -> String {
    toks.iter()
        .map(|t| match &t.tok {
            Tok::Str(s) => format!("'{s}'"),
            Tok::Ident(s) | Tok::Punct(s) => s.clone(),
            Tok::Num => "0".into(),
            Tok::Regex => "/re/".into(),
            Tok::Template => "`...`".into(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// An argument that LuCI's dom.append() turns into text nodes or takes as
/// nodes: an array (literal, or `.map(...)`/`.concat(...)` of one) or an
/// `E(...)` call. A bare string would be set as innerHTML.
fn is_safe_children(arg: &[Token]) -> bool {
    // `cond ? A : B`: both branches.
    let (mut depth, mut question) = (0usize, None);
    for (i, t) in arg.iter().enumerate() {
        match &t.tok {
            Tok::Punct(p) if p == "(" || p == "[" || p == "{" => depth += 1,
            Tok::Punct(p) if p == ")" || p == "]" || p == "}" => depth = depth.saturating_sub(1),
            Tok::Punct(p) if p == "?" && depth == 0 && question.is_none() => question = Some(i),
            Tok::Punct(p) if p == ":" && depth == 0 => {
                if let Some(q) = question {
                    return is_safe_children(&arg[q + 1..i]) && is_safe_children(&arg[i + 1..]);
                }
            }
            _ => {}
        }
    }
    let Some(first) = arg.first() else {
        return false;
    };
    if first.is("[") {
        let end = matching(arg, 0);
        // `[...]` alone or followed by array methods.
        return end + 1 == arg.len() || arg[end + 1].is(".");
    }
    if first.ident() == Some("E") && arg.get(1).is_some_and(|t| t.is("(")) {
        return matching(arg, 1) + 1 == arg.len();
    }
    // `list.map(function ...)`: an array of what the callback returns.
    let n = arg.len();
    n >= 4
        && arg[n - 1].is(")")
        && (0..n).any(|i| {
            arg[i].is(".")
                && matches!(arg.get(i + 1).and_then(Token::ident), Some("map"))
                && arg.get(i + 2).is_some_and(|t| t.is("("))
                && matching(arg, i + 2) == n - 1
        })
}

/// `null` or a translated literal `_('...')`: a title LuCI puts into the
/// page as HTML must not carry data.
fn is_literal_title(arg: &[Token]) -> bool {
    (arg.len() == 1 && arg[0].is("null"))
        || (arg.len() == 4
            && arg[0].ident() == Some("_")
            && arg[1].is("(")
            && arg[2].string().is_some()
            && arg[3].is(")"))
}

// --- tests ---------------------------------------------------------------

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn every_json_file_parses() {
    let mut files = Vec::new();
    files_under(&app(), &mut files);
    let json: Vec<_> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(
        json.len() >= 2,
        "no menu.d or acl.d JSON found under {}",
        app().display()
    );
    for path in json {
        if let Err(e) = serde_json::from_str::<Value>(&read(path)) {
            panic!("{} is not valid JSON: {e}", path.display());
        }
    }
}

#[test]
fn menu_entries_lead_to_views_that_exist_and_need_the_acl() {
    let menu: Value = serde_json::from_str(&read(&app().join(MENU))).unwrap();
    let entries = menu.as_object().expect("menu.d: an object of entries");
    let top = "admin/services/phonehome";
    for child in ["overview", "connections", "settings"] {
        let path = format!("{top}/{child}");
        let entry = entries
            .get(&path)
            .unwrap_or_else(|| panic!("menu.d has no {path}"));
        assert_eq!(entry["action"]["type"], "view", "{path}: action type");
        assert_eq!(
            entry["action"]["path"],
            format!("phonehome/{child}"),
            "{path}: view path"
        );
    }
    assert_eq!(
        entries[top]["action"]["type"], "alias",
        "{top}: an alias to the overview"
    );
    assert_eq!(entries[top]["action"]["path"], format!("{top}/overview"));
    for (path, entry) in entries {
        assert!(path.starts_with(top), "menu entry {path} outside {top}");
        let acl = &entry["depends"]["acl"];
        assert_eq!(
            *acl,
            serde_json::json!([ACL_NAME]),
            "{path}: depends.acl must be [\"{ACL_NAME}\"]"
        );
        match entry["action"]["type"].as_str() {
            Some("view") => {
                let view = entry["action"]["path"].as_str().unwrap();
                let file = app().join(VIEWS_DIR).join(format!("{view}.js"));
                assert!(
                    file.is_file(),
                    "{path}: view {} does not exist",
                    file.display()
                );
            }
            Some("alias") => {
                let target = entry["action"]["path"].as_str().unwrap();
                assert!(
                    entries.contains_key(target),
                    "{path}: alias to {target}, which is no entry"
                );
            }
            other => panic!("{path}: unexpected action type {other:?}"),
        }
    }
}

/// LuCI compiles a view as the body of a function (its top level ends in
/// `return view.extend(...)`), so each is checked wrapped in one.
#[test]
fn views_are_valid_javascript() {
    let node = ["/usr/bin/node", "/usr/bin/nodejs"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("node is needed to check the views (Debian: apt-get install nodejs)");
    let dir = std::env::temp_dir().join(format!("phonehome-luci-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for view in VIEWS {
        let wrapped = dir.join(format!("{}.js", view.replace('/', "_")));
        std::fs::write(
            &wrapped,
            format!("(function () {{\n{}\n}});\n", view_source(view)),
        )
        .unwrap();
        let out = Command::new(node)
            .arg("--check")
            .arg(&wrapped)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{view}.js is not valid JavaScript (line numbers +1): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn acl_grants_nothing_beyond_the_allow_list() {
    let acl = acl();
    let cli = installed_cli();
    let groups = acl.as_object().unwrap();
    assert_eq!(
        groups.keys().collect::<Vec<_>>(),
        [ACL_NAME],
        "{ACL}: one group, {ACL_NAME}"
    );
    let group = groups[ACL_NAME].as_object().unwrap();
    for key in group.keys() {
        assert!(
            ["description", "read", "write"].contains(&key.as_str()),
            "{ACL}: unexpected key {key}"
        );
    }
    let allowed = allowed_exec(&cli);
    for level in ["read", "write"] {
        let Some(grants) = group.get(level).and_then(Value::as_object) else {
            panic!("{ACL}: no {level} section")
        };
        for (scope, grant) in grants {
            match scope.as_str() {
                "uci" => assert_eq!(
                    *grant,
                    serde_json::json!(["phonehome"]),
                    "{level}.uci: only phonehome"
                ),
                "cgi-io" if level == "read" => {
                    assert_eq!(
                        *grant,
                        serde_json::json!(["exec"]),
                        "read.cgi-io: only exec (fs.exec_direct)"
                    )
                }
                "file" if level == "read" => {
                    for (pattern, perms) in grant.as_object().unwrap() {
                        assert_eq!(
                            *perms,
                            serde_json::json!(["exec"]),
                            "read.file {pattern:?}: exec only, no read/write"
                        );
                        assert!(
                            allowed.contains(pattern),
                            "read.file grants {pattern:?}, which is not on the allow-list"
                        );
                    }
                }
                other => {
                    panic!("{ACL}: {level} grants scope {other:?}, which the app must not have")
                }
            }
        }
    }
    assert!(group["write"].get("file").is_none(), "write grants files");
    // What no session with this ACL may run.
    let patterns = acl_exec_patterns(&acl);
    let mac = "02:00:00:00:77:02";
    for bad in [
        cli.clone(),
        format!("{cli} reload"),
        format!("{cli} run -c /tmp/evil"),
        format!("{cli} firewall down"),
        format!("{cli} db compile --out /etc/shadow hosts:/tmp/x"),
        format!("{cli} status --json"),
        format!("{cli} devices --json --socket /tmp/x.sock"),
        format!("{cli} flows --json --socket /tmp/x.sock"),
        format!("{cli} flows --json --device {mac} --socket /tmp/x.sock"),
        format!("{cli} flows --json --device 192.168.1.2"),
        format!("{cli} flows --json --device 02:00:00:00:77:0"),
        format!("{cli} report --json --since 24h --socket /tmp/x.sock"),
        format!("{cli} report --json --since 24h --device {mac} --socket /tmp/x.sock"),
        format!("{cli} report --json --since 30d"),
        format!("{cli} report --json --since 24h --out /etc/passwd"),
        "/bin/sh -c id".to_string(),
        format!("/bin/sh {cli} devices --json"),
    ] {
        assert!(!acl_allows(&patterns, &bad), "the ACL allows {bad:?}");
    }
}

/// A command line a view runs, as the words after the executable.
struct Run {
    view: &'static str,
    line: usize,
    words: Vec<String>,
}

/// Every `phonehome([...])` of every view, variables replaced by each of
/// their possible values: `range` by the view's RANGES, `mac` (only
/// passed after `isMac(mac)`) by sample MACs.
fn view_runs() -> (String, Vec<Run>) {
    let cli = installed_cli();
    let mut runs = Vec::new();
    for view in VIEWS {
        let file = format!("{view}.js");
        let toks = tokenize(&view_source(view), &file);
        for name in [
            "read",
            "write",
            "list",
            "stat",
            "remove",
            "lines",
            "trimmed",
            "read_direct",
            "exec",
        ] {
            assert!(
                calls(&toks, Some("fs"), name).is_empty(),
                "{file}: fs.{name}() needs a grant the app does not have"
            );
        }
        assert!(
            calls(&toks, Some("rpc"), "declare").is_empty(),
            "{file}: rpc.declare(): ubus calls the ACL does not grant"
        );
        let execs = calls(&toks, Some("fs"), "exec_direct");
        if execs.is_empty() {
            continue;
        }
        // One exec, in `function phonehome(args)`, of PHONEHOME.
        assert_eq!(
            execs.len(),
            1,
            "{file}: run commands through its phonehome(args) helper only"
        );
        let (args, _) = call_args(&toks, execs[0]);
        assert_eq!(
            text(&args[0]),
            "PHONEHOME",
            "{file}: fs.exec_direct runs {} (not PHONEHOME)",
            text(&args[0])
        );
        assert_eq!(
            text(&args[1]),
            "args",
            "{file}: fs.exec_direct's arguments are not the helper's"
        );
        let helper = toks.windows(5).any(|w| {
            w[0].is("function")
                && w[1].ident() == Some("phonehome")
                && w[2].is("(")
                && w[3].ident() == Some("args")
                && w[4].is(")")
        });
        assert!(
            helper,
            "{file}: fs.exec_direct outside `function phonehome(args)`"
        );
        let constant = toks
            .windows(4)
            .find(|w| w[0].is("var") && w[1].ident() == Some("PHONEHOME") && w[2].is("="));
        let path = constant
            .and_then(|w| w[3].string())
            .unwrap_or_else(|| panic!("{file}: no `var PHONEHOME = '...'`"));
        assert_eq!(
            path, cli,
            "{file}: PHONEHOME is {path}, the package installs {cli}"
        );
        let ranges: Vec<String> = toks
            .windows(4)
            .position(|w| {
                w[0].is("var") && w[1].ident() == Some("RANGES") && w[2].is("=") && w[3].is("[")
            })
            .map(|i| {
                let end = matching(&toks, i + 3);
                toks[i + 4..end]
                    .iter()
                    .filter_map(|t| t.string().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        for open in calls(&toks, None, "phonehome") {
            let line = toks[open].line;
            let (args, _) = call_args(&toks, open);
            assert!(
                args.len() == 1
                    && args[0].first().is_some_and(|t| t.is("["))
                    && matching(&args[0], 0) + 1 == args[0].len(),
                "{file}:{line}: phonehome() takes one array literal (the test reads its words)"
            );
            let mut lines: Vec<Vec<String>> = vec![vec![]];
            for word in args[0][1..args[0].len() - 1].iter().filter(|t| !t.is(",")) {
                let values: Vec<String> = match (&word.tok, word.ident()) {
                    (Tok::Str(s), _) => vec![s.clone()],
                    (_, Some("range")) => {
                        assert!(
                            !ranges.is_empty(),
                            "{file}:{line}: passes `range` but has no `var RANGES = [...]`"
                        );
                        let guarded = toks.windows(7).any(|w| {
                            w[0].ident() == Some("RANGES")
                                && w[2].ident() == Some("indexOf")
                                && w[4].ident() == Some("range")
                        });
                        assert!(
                            guarded,
                            "{file}: `range` is not checked against RANGES before it is run"
                        );
                        ranges.clone()
                    }
                    (_, Some("mac")) => {
                        // `if (isMac(mac)) return phonehome([...mac...])`
                        let guard = &toks[open.saturating_sub(9)..open - 1];
                        assert_eq!(
                            text(guard),
                            "if ( isMac ( mac ) ) return",
                            "{file}:{line}: `mac` is run without `if (isMac(mac)) return`"
                        );
                        assert!(
                            view_source(view).contains("/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test("),
                            "{file}: isMac() is not the lowercase MAC check the ACL's [0-9a-f] classes expect"
                        );
                        vec!["02:00:00:00:77:02".into(), "a4:5e:60:e1:2b:3c".into()]
                    }
                    _ => panic!(
                        "{file}:{line}: phonehome() gets {}: the test knows no values for it",
                        text(std::slice::from_ref(word))
                    ),
                };
                lines = lines
                    .into_iter()
                    .flat_map(|l| {
                        values.iter().map(move |v| {
                            let mut l = l.clone();
                            l.push(v.clone());
                            l
                        })
                    })
                    .collect();
            }
            for words in lines {
                runs.push(Run { view, line, words });
            }
        }
    }
    (cli, runs)
}

#[test]
fn every_command_the_views_run_is_granted_and_accepted_by_the_cli() {
    let (cli, runs) = view_runs();
    assert!(
        runs.iter().any(|r| r.words[0] == "report"),
        "the overview runs no `phonehome report`"
    );
    assert!(
        runs.iter().any(|r| r.words[0] == "flows"),
        "the connections view runs no `phonehome flows`"
    );
    let patterns = acl_exec_patterns(&acl());
    let bin = env!("CARGO_BIN_EXE_phonehome");
    let socket =
        std::env::temp_dir().join(format!("phonehome-luci-{}-none.sock", std::process::id()));
    let mut commands = BTreeSet::new();
    for run in &runs {
        let cmdline = format!("{cli} {}", run.words.join(" "));
        assert!(
            acl_allows(&patterns, &cmdline),
            "{}.js:{}: runs {cmdline:?}, which {ACL} does not grant",
            run.view,
            run.line
        );
        commands.insert(run.words[0].clone());
        // The real CLI takes these words: with no daemon behind the socket
        // it fails to connect (exit 1), not on its arguments (exit 2).
        let out = Command::new(bin)
            .args(&run.words)
            .arg("--socket")
            .arg(&socket)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}.js:{}: `phonehome {}` is refused by the CLI: {err}",
            run.view,
            run.line,
            run.words.join(" ")
        );
    }
    for command in &commands {
        let out = Command::new(bin)
            .args([command.as_str(), "--help"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the views run `phonehome {command}`, but `phonehome {command} --help` fails: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every grant is used by some view.
    for pattern in &patterns {
        let used = runs.iter().any(|r| {
            fnmatch(
                pattern.as_bytes(),
                format!("{cli} {}", r.words.join(" ")).as_bytes(),
            )
        });
        assert!(used, "{ACL} grants {pattern:?}, which no view runs");
    }
}

#[test]
fn views_insert_router_data_as_text_only() {
    for view in VIEWS {
        let file = format!("{view}.js");
        let toks = tokenize(&view_source(view), &file);
        for t in &toks {
            if let Some(w) = t.ident() {
                assert!(
                    ![
                        "innerHTML",
                        "outerHTML",
                        "insertAdjacentHTML",
                        "write",
                        "eval",
                        "rawhtml"
                    ]
                    .contains(&w),
                    "{file}:{}: uses {w}",
                    t.line
                );
            }
            if let Some(s) = t.string() {
                let markup = s.char_indices().any(|(i, c)| {
                    c == '<'
                        && s[i + 1..]
                            .chars()
                            .next()
                            .is_some_and(|n| n.is_ascii_alphabetic() || n == '/' || n == '!')
                });
                assert!(!markup, "{file}:{}: a string with markup: {s:?}", t.line);
            }
        }
        for open in calls(&toks, None, "E") {
            let line = toks[open].line;
            let (args, _) = call_args(&toks, open);
            let first = args
                .first()
                .unwrap_or_else(|| panic!("{file}:{line}: E() without a tag"));
            assert!(
                first.len() == 1 && first[0].string().is_some_and(|s| !s.starts_with('<')),
                "{file}:{line}: E({}): the tag must be a literal tag name",
                text(first)
            );
            let children = match args.len() {
                1 => None,
                2 if args[1][0].is("{") => None,
                2 => Some(&args[1]),
                3 => Some(&args[2]),
                n => panic!("{file}:{line}: E() with {n} arguments"),
            };
            if let Some(children) = children {
                assert!(
                    is_safe_children(children),
                    "{file}:{line}: E()'s children `{}` are not an array or a node: LuCI would set a string as innerHTML",
                    text(children)
                );
            }
        }
        for (obj, name) in [("dom", "content"), ("dom", "append")] {
            for open in calls(&toks, Some(obj), name) {
                let (args, _) = call_args(&toks, open);
                assert!(
                    args.len() == 2 && is_safe_children(&args[1]),
                    "{file}:{}: {obj}.{name}() with children `{}`",
                    toks[open].line,
                    args.get(1).map(|a| text(a)).unwrap_or_default()
                );
            }
        }
        for name in ["addNotification", "showModal"] {
            for open in calls(&toks, Some("ui"), name) {
                let line = toks[open].line;
                let (args, _) = call_args(&toks, open);
                assert!(
                    args.len() >= 2,
                    "{file}:{line}: ui.{name}() without content"
                );
                assert!(
                    is_literal_title(&args[0]),
                    "{file}:{line}: ui.{name}()'s title `{}` is not a literal",
                    text(&args[0])
                );
                assert!(
                    is_safe_children(&args[1]),
                    "{file}:{line}: ui.{name}()'s content `{}` is not a node or an array",
                    text(&args[1])
                );
            }
        }
    }
}

#[test]
fn makefile_builds_with_luci_mk() {
    let makefile = read(&app().join("Makefile"));
    for needed in [
        "include $(TOPDIR)/rules.mk",
        "include $(TOPDIR)/feeds/luci/luci.mk",
        "LUCI_PKGARCH:=all",
        "PKG_LICENSE:=GPL-2.0-or-later",
        "# call BuildPackage - OpenWrt buildroot signature",
    ] {
        assert!(
            makefile.contains(needed),
            "luci-app-phonehome/Makefile lacks {needed:?}"
        );
    }
    let depends = makefile
        .lines()
        .find_map(|l| l.strip_prefix("LUCI_DEPENDS:="))
        .expect("luci-app-phonehome/Makefile sets no LUCI_DEPENDS");
    let depends: Vec<&str> = depends.split_whitespace().collect();
    for dep in ["+phonehome", "+luci-base"] {
        assert!(
            depends.contains(&dep),
            "LUCI_DEPENDS lacks {dep}: {depends:?}"
        );
    }
    let rules = makefile.find("include $(TOPDIR)/rules.mk").unwrap();
    let luci = makefile
        .find("include $(TOPDIR)/feeds/luci/luci.mk")
        .unwrap();
    let title = makefile.find("LUCI_TITLE:=").expect("no LUCI_TITLE");
    assert!(
        rules < title && title < luci,
        "rules.mk, then the LUCI_* variables, then luci.mk"
    );
    // luci.mk names the package after the directory.
    assert_eq!(app().file_name().unwrap(), "luci-app-phonehome");
}

// --- the settings against the daemon's parser -----------------------------

/// One option of the Settings view: its section type, widget, name, and
/// the values it offers or defaults to.
#[derive(Debug)]
struct SettingsOption {
    section: String,
    widget: String,
    name: String,
    values: Vec<String>,
    line: usize,
}

fn settings_options() -> Vec<SettingsOption> {
    let file = "phonehome/settings.js";
    let toks = tokenize(&view_source("phonehome/settings"), file);
    let mut out: Vec<SettingsOption> = Vec::new();
    let mut section = None;
    for i in 0..toks.len() {
        let t = &toks[i];
        if t.is("section")
            && i > 0
            && toks[i - 1].is(".")
            && toks.get(i + 1).is_some_and(|t| t.is("("))
        {
            let (args, _) = call_args(&toks, i + 1);
            let kind = text(&args[0]);
            let ty = match kind.as_str() {
                "form . NamedSection" => args[2][0].string(),
                _ => args[1][0].string(),
            };
            section = Some(
                ty.unwrap_or_else(|| panic!("{file}:{}: section type not a literal", t.line))
                    .to_string(),
            );
        }
        if (t.is("option") || t.is("taboption"))
            && i > 0
            && toks[i - 1].is(".")
            && toks.get(i + 1).is_some_and(|t| t.is("("))
        {
            let (args, _) = call_args(&toks, i + 1);
            let args = if t.is("taboption") {
                &args[1..]
            } else {
                &args[..]
            };
            let widget = text(&args[0]);
            let name = args[1][0]
                .string()
                .unwrap_or_else(|| panic!("{file}:{}: option name not a literal", t.line));
            out.push(SettingsOption {
                section: section
                    .clone()
                    .unwrap_or_else(|| panic!("{file}:{}: option before any section", t.line)),
                widget: widget.trim_start_matches("form . ").to_string(),
                name: name.to_string(),
                values: Vec::new(),
                line: t.line,
            });
        }
        // LIST.forEach(function(x) { o.value(x); }): every string of `var LIST = [...]`
        if t.is("forEach") && i > 1 && toks[i - 1].is(".") && toks[i + 1].is("(") {
            let body = &toks[i + 1..matching(&toks, i + 1)];
            let adds_values = body
                .windows(3)
                .any(|w| w[0].ident() == Some("o") && w[1].is(".") && w[2].is("value"));
            let list = toks[i - 2].ident().and_then(|name| {
                toks.windows(4).position(|w| {
                    w[0].is("var") && w[1].ident() == Some(name) && w[2].is("=") && w[3].is("[")
                })
            });
            if let (true, Some(at), Some(last)) = (adds_values, list, out.last_mut()) {
                let end = matching(&toks, at + 3);
                last.values.extend(
                    toks[at + 4..end]
                        .iter()
                        .filter_map(|t| t.string().map(String::from)),
                );
            }
        }
        // o.value('x'...) and o.default = 'x'
        if t.is("value")
            && i > 1
            && toks[i - 1].is(".")
            && toks[i - 2].ident() == Some("o")
            && toks[i + 1].is("(")
        {
            if let (Some(v), Some(last)) = (toks[i + 2].string(), out.last_mut()) {
                last.values.push(v.to_string());
            }
        }
        if t.is("default")
            && i > 1
            && toks[i - 1].is(".")
            && toks[i - 2].ident() == Some("o")
            && toks[i + 1].is("=")
        {
            if let (Some(v), Some(last)) = (toks[i + 2].string(), out.last_mut()) {
                last.values.push(v.to_string());
            }
        }
    }
    out
}

/// A value to try for an option that offers none: one the daemon must
/// accept, and the form checks it the same way.
fn sample_values(name: &str) -> &'static [&'static str] {
    match name {
        "queue" => &["0", "65535"],
        "decide_by" => &["1", "16"],
        "max_pending" => &["64", "1048576"],
        "copy_range" => &["128", "65535"],
        "max_flows" | "dns_cache_size" => &["0", "10000000"],
        "state_interval" => &["1", "1440"],
        "ipfix_collector" => &["192.0.2.9:4739", "[2001:db8::9]:4739"],
        "ipfix_domain" => &["0", "4294967295"],
        "state" | "state_tmp" | "db" | "leases" | "socket" | "on_new_owner" => {
            &["/tmp/phonehome-test/x"]
        }
        "socket_group" | "admin_group" => &["phonehome"],
        "mac" | "device" => &["02:00:00:00:77:02"],
        "name" => &["phone"],
        "group" => &["kids"],
        "maker" | "owner" => &["Xiaomi", "Alibaba Cloud"],
        "parent" => &["Meta"],
        "domain" => &["tracking.miui.com"],
        "country" => &["CN", "sg"],
        "asn" => &["AS45102", "4134"],
        "port" => &["443", "8000-8100"],
        "start_time" | "stop_time" => &["22:30", "06:00:00"],
        _ => &[],
    }
}

/// A config with one section of `section` holding `option NAME 'VALUE'`.
fn config_with(section: &str, name: &str, value: &str) -> String {
    let head = match section {
        "phonehome" => "config phonehome 'main'\n".to_string(),
        "device" => "config device\n\toption mac '02:00:00:00:77:02'\n".to_string(),
        "group" => "config group 'kids'\n".to_string(),
        "rule" => "config rule 'r'\n\toption action 'block'\n".to_string(),
        other => panic!("no fixture for section type {other}"),
    };
    format!("{head}\toption {name} '{value}'\n")
}

fn parse(text: &str) -> Result<phonehome::policy::config::Config, String> {
    phonehome::policy::config::Config::parse(text, Path::new("settings.js"))
        .map_err(|e| e.to_string())
}

#[test]
fn settings_offer_what_the_daemon_reads_and_nothing_else() {
    let options = settings_options();
    assert!(
        options.len() > 20,
        "settings.js: only {} options found",
        options.len()
    );
    let mut offered: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for o in &options {
        offered
            .entry(o.section.clone())
            .or_default()
            .insert(o.name.clone());
        let mut values: Vec<&str> = o
            .values
            .iter()
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .collect();
        if o.widget == "Flag" {
            values.extend(["0", "1"]);
        }
        if !matches!(o.widget.as_str(), "ListValue" | "MultiValue" | "Flag") {
            values.extend(sample_values(&o.name));
        }
        assert!(
            !values.is_empty(),
            "settings.js:{}: the test has no sample value for {}",
            o.line,
            o.name
        );
        for v in values {
            if let Err(e) = parse(&config_with(&o.section, &o.name, v)) {
                panic!(
                    "settings.js:{}: offers {} {:?} = {v:?}, which the daemon refuses: {e}",
                    o.line, o.section, o.name
                );
            }
        }
    }
    // What the daemon reads: every quoted word of config_sections.rs that
    // its parser does not call an unknown option.
    let source = read(&root().join("src/policy/config_sections.rs"));
    let words: BTreeSet<&str> = source
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .collect();
    // Aliases the daemon takes for files written by hand; the form writes
    // the canonical name (and a rule's name is its section's).
    let aliases = [
        ("rule", "target"),
        ("rule", "dest_port"),
        ("rule", "group"),
        ("rule", "name"),
    ];
    for section in ["phonehome", "device", "group", "rule"] {
        for word in &words {
            let refused = parse(&config_with(section, word, "x"))
                .err()
                .is_some_and(|e| e.contains(&format!("unknown option '{word}'")));
            let offered = offered.get(section).is_some_and(|s| s.contains(*word));
            if !refused && !offered && !aliases.contains(&(section, word)) {
                panic!("the daemon reads option {word:?} of `config {section}`, which settings.js does not offer");
            }
        }
    }
}

// --- the block action, run in node -----------------------------------------

/// Runs the Overview's `addBlockRule(mac, owner)` with LuCI stubbed out,
/// over a config that holds one rule; returns the UCI calls it made.
fn add_block_rule(mac: &str, owner: &str, existing: &[&str]) -> Value {
    let source = view_source("phonehome/overview");
    let harness = format!(
        r#"
String.prototype.format = function() {{
    var args = arguments, i = 0;
    return this.replace(/%[sd]/g, function() {{ return String(args[i++]); }});
}};
var calls = [], existing = {existing};
var sections = [{{ '.name': 'no_ads', '.type': 'rule', category: ['advertising'], action: 'reject' }}]
    .concat(existing.map(function(n) {{ return {{ '.name': n, '.type': 'rule', action: 'block' }}; }}));
var L = {{ hasViewPermission: function() {{ return true; }}, env: {{}}, isObject: function(o) {{ return o !== null && typeof o == 'object'; }},
          resolveDefault: function(p, d) {{ return p; }}, bind: function(f, s) {{ return f.bind(s); }} }};
var uci = {{
    sections: function(c, t, cb) {{ var l = sections.filter(function(s) {{ return !t || s['.type'] == t; }}); if (cb) l.forEach(function(s) {{ cb(s, s['.name']); }}); return l; }},
    get: function(c, s, o) {{ var x = sections.filter(function(y) {{ return y['.name'] == s; }})[0]; return x == null ? null : (o ? x[o] : x); }},
    add: function(c, t, n) {{ calls.push(['add', c, t, n]); return n; }},
    set: function(c, s, o, v) {{ calls.push(['set', c, s, o, v]); }},
    move: function(c, a, b, after) {{ calls.push(['move', c, a, b, !!after]); return true; }}
}};
var view = {{ extend: function(o) {{ return o; }} }};
var factory = new Function('L', 'E', '_', 'view', 'dom', 'fs', 'ui', 'uci', {source});
var v = factory(L, function() {{ return {{}}; }}, function(s) {{ return s; }}, view, {{}}, {{}}, {{}}, uci);
var name = v.addBlockRule({mac}, {owner});
process.stdout.write(JSON.stringify({{ name: name, calls: calls }}));
"#,
        existing = serde_json::to_string(existing).unwrap(),
        source = serde_json::to_string(&source).unwrap(),
        mac = serde_json::to_string(mac).unwrap(),
        owner = serde_json::to_string(owner).unwrap(),
    );
    let out = Command::new("node")
        .arg("-e")
        .arg(&harness)
        .output()
        .expect("node is needed");
    assert!(
        out.status.success(),
        "addBlockRule in node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The config the calls leave: the new section where `move` put it.
fn config_after(calls: &Value) -> String {
    let mut new_name = String::new();
    let mut options = Vec::new();
    let mut before = None;
    for call in calls.as_array().unwrap() {
        let c: Vec<&Value> = call.as_array().unwrap().iter().collect();
        assert_eq!(
            c[1], "phonehome",
            "the block action changes config {}",
            c[1]
        );
        match c[0].as_str().unwrap() {
            "add" => {
                assert_eq!(c[2], "rule");
                new_name = c[3].as_str().unwrap().to_string();
            }
            "set" => {
                assert_eq!(
                    c[2].as_str().unwrap(),
                    new_name,
                    "sets an option of another section"
                );
                let (opt, val) = (c[3].as_str().unwrap(), c[4].clone());
                match val {
                    Value::Array(items) => {
                        for item in items {
                            options.push(format!("\tlist {opt} '{}'\n", item.as_str().unwrap()));
                        }
                    }
                    Value::String(s) => options.push(format!("\toption {opt} '{s}'\n")),
                    other => panic!("set {opt} to {other}"),
                }
            }
            "move" => {
                assert_eq!(c[2].as_str().unwrap(), new_name);
                assert_eq!(c[4], false, "moved after, not before");
                before = Some(c[3].as_str().unwrap().to_string());
            }
            other => panic!("unexpected uci call {other}"),
        }
    }
    let new = format!("config rule '{new_name}'\n{}", options.concat());
    let old = "config rule 'no_ads'\n\tlist category 'advertising'\n\toption action 'reject'\n";
    match before.as_deref() {
        Some("no_ads") => format!("{new}\n{old}"),
        None => format!("{old}\n{new}"),
        Some(other) => panic!("moved before {other}"),
    }
}

#[test]
fn block_action_writes_a_rule_the_daemon_accepts_first() {
    let mac = "02:00:00:00:77:02";
    let mut names = BTreeSet::new();
    for owner in [
        "Xiaomi",
        "Alibaba Cloud",
        "Ad <script> & Co. \"GmbH\"",
        "Яндекс",
        "Яндекс Реклама",
        "example.org",
    ] {
        let out = add_block_rule(mac, owner, &[]);
        let name = out["name"]
            .as_str()
            .unwrap_or_else(|| panic!("{owner}: no rule added: {out}"));
        assert!(
            name.starts_with("block_")
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{owner}: rule name {name:?} is no UCI section name"
        );
        assert!(
            names.insert(name.to_string()),
            "{owner}: rule name {name} is another owner's too"
        );
        let config = config_after(&out["calls"]);
        let cfg = parse(&config)
            .unwrap_or_else(|e| panic!("{owner}: the daemon refuses the rule: {e}\n{config}"));
        let rule = &cfg.rules[0];
        assert_eq!(
            rule.name, name,
            "{owner}: the new rule does not come first:\n{config}"
        );
        assert_eq!(rule.devices, [mac]);
        assert_eq!(rule.owners, [owner]);
        assert_eq!(rule.action, phonehome::policy::config::Action::Block);
    }
    assert!(names.contains("block_Xiaomi_020000007702"), "{names:?}");
    // A rule of that name exists already: nothing is added.
    let out = add_block_rule(mac, "Xiaomi", &["block_Xiaomi_020000007702"]);
    assert!(
        out["name"].is_null() && out["calls"].as_array().unwrap().is_empty(),
        "{out}"
    );
}

#[test]
fn fnmatch_matches_as_rpcd_does() {
    let m = |p: &str, s: &str| fnmatch(p.as_bytes(), s.as_bytes());
    assert!(m("/bin/ping *", "/bin/ping -c 1 host"));
    assert!(m("/a*", "/a/b c"));
    assert!(!m("/bin/ping *", "/bin/ping"));
    assert!(m("x [0-9a-f]", "x e") && !m("x [0-9a-f]", "x E") && !m("x [0-9a-f]", "x "));
    assert!(m("[!a]b", "cb") && !m("[!a]b", "ab"));
    assert!(m("a?c", "abc") && !m("a?c", "ac"));
    assert!(m("a\\b", "a\\b"), "FNM_NOESCAPE: a backslash is itself");
}
