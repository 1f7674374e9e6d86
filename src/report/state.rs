//! State file: the statistics (`stats::Snapshot`) kept across restarts,
//! with flash wear in mind. The daemon writes a copy to tmpfs every minute
//! (`option state_tmp`, survives a daemon crash or restart) and to the
//! persistent path at most every `state_interval` minutes and on SIGTERM
//! (`option state`, survives a reboot); at start it takes the newest valid
//! of the two.
//!
//! Format: magic `PHSTATE1`, the save time (u64 LE, Unix seconds), the
//! CBOR snapshot's length (u64 LE), the snapshot, and an FNV-1a 64
//! checksum of everything before it. Written to `PATH.tmp`, synced, then
//! renamed over `PATH`, so a reader sees the old file or the new one, never
//! half of one. A file that is torn, of another version or fails its
//! checksum is reported and skipped (the daemon starts with empty counts).

use std::io::Write;
use std::path::Path;

use crate::owners::db::fnv1a;
use crate::report::stats::Snapshot;

const MAGIC: &[u8; 8] = b"PHSTATE1";

/// The file's bytes.
pub fn encode(snapshot: &Snapshot, saved_at: u64) -> Vec<u8> {
    let mut body = Vec::new();
    ciborium::into_writer(snapshot, &mut body).expect("CBOR encoding to memory cannot fail");
    let mut out = Vec::with_capacity(body.len() + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&saved_at.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    let sum = fnv1a(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// Reads a state file's bytes: the snapshot and when it was saved.
pub fn decode(bytes: &[u8]) -> Result<(Snapshot, u64), String> {
    if bytes.len() < 32 || &bytes[..7] != b"PHSTATE" {
        return Err("not a phonehome state file (or torn)".into());
    }
    if &bytes[..8] != MAGIC {
        return Err(format!(
            "state format {} is not supported (this build reads {})",
            bytes[7] as char, MAGIC[7] as char
        ));
    }
    let body_end = bytes.len() - 8;
    let sum = u64::from_le_bytes(bytes[body_end..].try_into().expect("8 bytes"));
    if fnv1a(&bytes[..body_end]) != sum {
        return Err("checksum mismatch (torn or corrupt)".into());
    }
    let saved_at = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    // Compared as u64: `as usize` would cut a length past 4 GiB on a
    // 32-bit router to one that may match.
    let len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    if u64::try_from(body_end - 24).ok() != Some(len) {
        return Err("length mismatch".into());
    }
    Ok((decode_snapshot(&bytes[24..body_end])?, saved_at))
}

/// The CBOR snapshot inside a state file (after its checks; public for
/// the fuzzer, which cannot forge checksums).
pub fn decode_snapshot(body: &[u8]) -> Result<Snapshot, String> {
    ciborium::from_reader(body).map_err(|e| format!("unreadable snapshot: {e}"))
}

/// Writes `path` atomically (write, sync, rename).
pub fn save(path: &Path, snapshot: &Snapshot, saved_at: u64) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    // Never replace a file that is not a state file: a config naming
    // /etc/passwd as its state must not overwrite it.
    let mut head = [0u8; 7];
    if let Ok(mut existing) = std::fs::File::open(path) {
        use std::io::Read;
        let n = existing.read(&mut head).map_err(fail)?;
        if n > 0 && head[..n] != MAGIC[..n] {
            return Err(format!(
                "{}: not a phonehome state file; refusing to replace it (option state names another file?)",
                path.display()
            ));
        }
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(fail)?;
    f.write_all(&encode(snapshot, saved_at)).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(fail)
}

/// Reads `path`: None when there is no file, Err when it is unusable.
pub fn load(path: &Path) -> Result<Option<(Snapshot, u64)>, String> {
    match std::fs::read(path) {
        Ok(bytes) => decode(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The newest valid snapshot among `paths`, and a line for every file
/// that was there but could not be used.
pub fn load_newest(paths: &[&Path]) -> (Option<(Snapshot, u64)>, Vec<String>) {
    let mut best: Option<(Snapshot, u64)> = None;
    let mut problems = Vec::new();
    for path in paths {
        match load(path) {
            Ok(Some((snap, at))) => {
                if best.as_ref().is_none_or(|(_, b)| at > *b) {
                    best = Some((snap, at));
                }
            }
            Ok(None) => {}
            Err(e) => problems.push(e),
        }
    }
    (best, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::stats::{FlowEvent, Stats, TimeRange};

    fn sample() -> Snapshot {
        let mut s = Stats::default();
        s.on_decided(
            &FlowEvent {
                device: "02:00:00:00:77:02",
                mac: Some("02:00:00:00:77:02"),
                ip: "192.168.77.2".into(),
                owner: "Xiaomi",
                category: "telemetry",
                domain: Some("tracking.miui.com"),
                country: Some("SG"),
                blocked: true,
            },
            1_000_000,
        );
        s.add_bytes("02:00:00:00:77:02", "Xiaomi", 10, 20, 1_000_001);
        s.snapshot()
    }

    #[test]
    fn round_trips_and_refuses_every_damage() {
        let snap = sample();
        let bytes = encode(&snap, 42);
        let (back, at) = decode(&bytes).unwrap();
        assert_eq!((back.clone(), at), (snap, 42));
        let rows = Stats::restore(back).owner_rows(None, TimeRange::default(), 1_000_002);
        assert_eq!(
            (rows[0].flows, rows[0].blocked, rows[0].bytes_down),
            (1, 1, 20)
        );
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "torn at {cut}");
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(decode(&bad).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn a_file_that_is_not_a_state_file_is_never_replaced() {
        let dir =
            std::env::temp_dir().join(format!("phonehome-state-foreign-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let passwd = dir.join("passwd");
        std::fs::write(&passwd, b"root:x:0:0:root:/root:/bin/ash\n").unwrap();
        let err = save(&passwd, &sample(), 10).unwrap_err();
        assert!(err.contains("not a phonehome state file"), "{err}");
        assert!(std::fs::read(&passwd).unwrap().starts_with(b"root:x"));
        // An empty file and an older state file are replaced.
        let empty = dir.join("empty");
        std::fs::write(&empty, b"").unwrap();
        save(&empty, &sample(), 10).unwrap();
        save(&empty, &sample(), 11).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn saves_atomically_and_picks_the_newest_valid_file() {
        let dir = std::env::temp_dir().join(format!("phonehome-state-{}", std::process::id()));
        let (a, b, c) = (
            dir.join("a/state"),
            dir.join("b/state"),
            dir.join("c/state"),
        );
        save(&a, &sample(), 10).unwrap();
        save(&b, &Snapshot::default(), 20).unwrap();
        assert!(!a.with_extension("tmp").exists());
        std::fs::create_dir_all(c.parent().unwrap()).unwrap();
        std::fs::write(&c, b"PHSTATE1 torn").unwrap();
        let (best, problems) = load_newest(&[&a, &b, &c, &dir.join("missing")]);
        assert_eq!(best.unwrap().1, 20);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("c/state"), "{problems:?}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
