//! `option on_new_owner '/path/to/hook'`: a command run when a device
//! reaches an owner for the first time, with the device and owner as its
//! arguments (`hook DEVICE OWNER CATEGORY [DOMAIN]`) and in its environment
//! (`PHONEHOME_DEVICE`, `PHONEHOME_OWNER`, `PHONEHOME_CATEGORY`,
//! `PHONEHOME_DOMAIN`, `PHONEHOME_TIME`; as arguments, never through a
//! shell: the domain is what the phone sent). Off the packet path: the
//! loop starts a run after a burst (its packets judged) and never waits
//! for it; at most `HOOKS_AT_ONCE` run, each killed after `HOOK_TIMEOUT`
//! with its process group, and whatever it left behind is reaped (in the
//! jail's PID namespace the daemon is their init).
//! At most `HOOK_RUNS_PER_MINUTE` runs start a minute and `HOOK_QUEUE`
//! wait; the rest are skipped and counted in the log, so a device rotating
//! its address cannot fork the router to its knees.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::report::stats::NewOwnerRow;

pub const HOOK_RUNS_PER_MINUTE: u32 = 10;
pub const HOOK_QUEUE: usize = 16;
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Hooks running at once; the rest wait in the queue.
pub const HOOKS_AT_ONCE: usize = 2;

/// The first-contact hook's runs: started from the loop after a burst (the
/// packets are judged by then), never waited for there; finished ones are
/// reaped and overdue ones killed on `reap`, which the loop calls every
/// tick (and every `offer`).
#[derive(Default)]
pub(super) struct NewOwnerHook {
    running: Vec<(Child, Instant)>,
    waiting: VecDeque<(PathBuf, NewOwnerRow)>,
    minute: u64,
    started: u32,
    skipped: u64,
}

impl NewOwnerHook {
    /// Takes a first contact for the hook, unless this minute's runs are
    /// used up or the queue is full (then it is counted, and logged when
    /// the minute is over).
    pub(super) fn offer(&mut self, hook: &Path, first: &NewOwnerRow, minute: u64) {
        if minute != self.minute {
            if self.skipped > 0 {
                eprintln!(
                    "phonehome: on_new_owner: {} runs skipped (at most {HOOK_RUNS_PER_MINUTE} a minute)",
                    self.skipped
                );
            }
            self.minute = minute;
            self.started = 0;
            self.skipped = 0;
        }
        if self.started >= HOOK_RUNS_PER_MINUTE || self.waiting.len() >= HOOK_QUEUE {
            self.skipped += 1;
            return;
        }
        self.started += 1;
        self.waiting.push_back((hook.to_path_buf(), first.clone()));
        self.reap();
    }

    /// Reaps finished runs, kills overdue ones, starts waiting ones.
    pub(super) fn reap(&mut self) {
        self.running
            .retain_mut(|(child, started)| match child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        eprintln!("phonehome: on_new_owner exited with {status}");
                    }
                    false
                }
                Ok(None) if started.elapsed() > HOOK_TIMEOUT => {
                    // The whole process group: what the hook started too.
                    if let Ok(group) = i32::try_from(child.id()) {
                        // SAFETY: kill(2) of our child's own process group.
                        unsafe { libc::kill(-group, libc::SIGKILL) };
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    eprintln!(
                        "phonehome: on_new_owner killed after {} s",
                        HOOK_TIMEOUT.as_secs()
                    );
                    false
                }
                Ok(None) => true,
                Err(_) => false,
            });
        // What hooks left running in the background and then ended: in
        // the jail (a PID namespace) the daemon is PID 1, their init, and
        // must reap them, or they stay zombies. (Anywhere else the
        // system's init does, and another child's status is not ours to
        // take.)
        if std::process::id() == 1 {
            // SAFETY: waitpid(2) with WNOHANG never blocks; -1: any child.
            while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
        }
        while self.running.len() < HOOKS_AT_ONCE {
            let Some((hook, first)) = self.waiting.pop_front() else {
                break;
            };
            match start(&hook, &first) {
                Ok(child) => self.running.push((child, Instant::now())),
                Err(e) => eprintln!("phonehome: on_new_owner {}: {e}", hook.display()),
            }
        }
    }
}

fn start(hook: &Path, first: &NewOwnerRow) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    Command::new(hook)
        // Its own process group, killed whole when overdue.
        .process_group(0)
        .args([&first.device, &first.owner, &first.category])
        .args(first.domain.as_deref())
        .env("PHONEHOME_DEVICE", &first.device)
        .env("PHONEHOME_OWNER", &first.owner)
        .env("PHONEHOME_CATEGORY", &first.category)
        .env("PHONEHOME_DOMAIN", first.domain.as_deref().unwrap_or(""))
        .env("PHONEHOME_TIME", first.time.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(owner: &str) -> NewOwnerRow {
        NewOwnerRow {
            device: "02:00:00:00:77:02".into(),
            owner: owner.into(),
            category: "analytics".into(),
            domain: Some("ulogs.umeng.com".into()),
            time: 1,
        }
    }

    #[test]
    fn the_hook_gets_device_and_owner_and_runs_are_bounded_a_minute() {
        let dir = std::env::temp_dir().join(format!("phonehome-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let hook = dir.join("hook");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\necho \"$1|$2|$3|$4|$PHONEHOME_OWNER|$PHONEHOME_TIME\" >> {}\n",
                out.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut h = NewOwnerHook::default();
        for i in 0..25 {
            h.offer(&hook, &first(&format!("Owner{i}")), 7);
        }
        assert_eq!((h.started, h.skipped), (HOOK_RUNS_PER_MINUTE, 15));
        assert!(h.running.len() <= HOOKS_AT_ONCE, "the rest wait");
        h.offer(&hook, &first("Next minute"), 8);
        assert_eq!((h.started, h.skipped), (1, 0));
        let deadline = Instant::now() + Duration::from_secs(20);
        let lines = loop {
            h.reap();
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            if (text.lines().count() == 11 && h.running.is_empty()) || Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines.len(), 11, "{lines:?}");
        assert!(
            lines.contains(&"02:00:00:00:77:02|Owner0|analytics|ulogs.umeng.com|Owner0|1"),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l.contains("|Next minute|")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_overdue_hook_is_killed_with_what_it_started() {
        let dir = std::env::temp_dir().join(format!("phonehome-hook-kill-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pid_file = dir.join("pid");
        let hook = dir.join("hook");
        // Ignores TERM, starts a child that would outlive it.
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\ntrap '' TERM\nsleep 300 &\necho $! > {}\nsleep 300\n",
                pid_file.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut h = NewOwnerHook::default();
        h.offer(&hook, &first("Umeng"), 1);
        assert_eq!(h.running.len(), 1);
        while !pid_file.exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let sleeper: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Overdue: its start moved back past the timeout.
        h.running[0].1 -= HOOK_TIMEOUT + Duration::from_secs(1);
        h.reap();
        assert!(h.running.is_empty());
        // The background sleep went with it (gone, or a zombie of ours
        // already reaped by the next reap).
        std::thread::sleep(Duration::from_millis(200));
        h.reap();
        let alive = std::fs::read_to_string(format!("/proc/{sleeper}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false);
        assert!(!alive, "the hook's child {sleeper} survived the kill");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
