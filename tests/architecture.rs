//! docs/ARCHITECTURE.md's dependency rule, checked on the sources: a
//! folder of `src/` uses only the folders before it in the data flow
//! (wire → inspect → owners → policy → engine ⇄ report → daemon → cli),
//! outside its unit tests. `engine` and `report` use each other (the engine
//! records into the statistics; they read its flow records). The
//! exceptions still to remove are listed with their reason; one that is
//! gone fails the test too, so the list stays true.

use std::collections::BTreeSet;
use std::path::Path;

const ORDER: &[&str] = &[
    "wire", "inspect", "owners", "policy", "engine", "report", "daemon", "cli",
];

/// (folder, the folder it may not use but does, why). None left: the last,
/// `policy::config` reading /etc/group through `daemon::api`, became
/// `Config::check_groups`, which the daemon calls with the lookup.
const EXCEPTIONS: &[(&str, &str, &str)] = &[];

fn rank(folder: &str) -> usize {
    match folder {
        // engine and report share a rank: they use each other.
        "report" => rank("engine"),
        _ => ORDER.iter().position(|f| *f == folder).unwrap(),
    }
}

/// The `crate::FOLDER` paths of a file's code before its unit tests.
fn uses(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let code = text.split("#[cfg(test)]").next().unwrap();
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if ORDER.contains(&name.as_str()) {
            out.insert(name);
        }
    }
    out
}

/// The `.rs` files under `dir`, subfolders included.
fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

#[test]
fn folders_use_only_the_stages_before_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = BTreeSet::new();
    let mut wrong = Vec::new();
    for folder in ORDER {
        for path in rust_files(&src.join(folder)) {
            for used in uses(&path) {
                if rank(&used) <= rank(folder) {
                    continue;
                }
                if EXCEPTIONS.iter().any(|(f, u, _)| f == folder && *u == used) {
                    found.insert((folder.to_string(), used));
                } else {
                    wrong.push(format!("{} uses crate::{used}", path.display()));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "against the data flow:\n{}",
        wrong.join("\n")
    );
    for (folder, used, why) in EXCEPTIONS {
        assert!(
            found.contains(&(folder.to_string(), used.to_string())),
            "exception {folder} → {used} ({why}) is gone: take it off the list"
        );
    }
    // Every folder of src/ is in the order.
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            assert!(ORDER.contains(&name.as_str()), "src/{name} is not in ORDER");
        }
    }
}
