//! When conntrack dumps run (byte counts for the 5 s tick and for the
//! queries that show them): at most one every `MIN_DUMP_GAP`, a wanted one
//! waiting for its turn, and the queries a dump answers (rows, and the
//! `series` and `report` documents as JSON text).

use std::time::{Duration, Instant};

use super::api::{Query, Reply, Side};
use super::clock::Clock;
use super::Asked;
use crate::engine::{Engine, Now};
use crate::report::document;
use crate::report::stats::StatusRow;
use crate::wire::conntrack::Conntrack;

/// The least time between the starts of two conntrack dumps.
pub(super) const MIN_DUMP_GAP: Duration = Duration::from_secs(1);

/// When conntrack dumps run: at most one every `MIN_DUMP_GAP`, and one
/// wanted sooner waits for its turn (`due`).
pub(super) struct DumpSchedule {
    pub(super) last_start: Option<Instant>,
    pub(super) due: Option<Instant>,
    /// When the dump under way started: the time its entries count at.
    pub(super) at: Now,
}

impl DumpSchedule {
    /// Asks for a dump: started now when its turn has come, else due then.
    pub(super) fn want(&mut self, ct: &mut Conntrack, engine: &mut Engine, now: Now) {
        if ct.dumper.dumping() {
            return;
        }
        let turn = self
            .last_start
            .map_or_else(Instant::now, |t| t + MIN_DUMP_GAP);
        if turn <= Instant::now() {
            self.start(ct, engine, now);
        } else {
            self.due = Some(self.due.map_or(turn, |d| d.min(turn)));
        }
    }

    /// Starts a conntrack dump (its entries arrive in the loop's dump
    /// branch).
    pub(super) fn start(&mut self, ct: &mut Conntrack, engine: &mut Engine, now: Now) {
        self.due = None;
        if ct.dumper.dumping() {
            return;
        }
        self.last_start = Some(Instant::now());
        self.at = now;
        match ct.dumper.start() {
            Ok(()) => engine.begin_dump(),
            Err(e) => eprintln!("phonehome: conntrack dump failed: {e}"),
        }
    }
}

/// Lines a series answer has at most (the rest are summed in one).
pub const MAX_SERIES_LINES: usize = 50;

/// The rows a query that shows byte counts asks for (after a dump); the
/// documents (`series`, `report`) as JSON text. `status` gives the
/// daemon's counters for a report.
pub(super) fn rows_reply(
    query: Query,
    engine: &Engine,
    clock: &Clock,
    status: &dyn Fn() -> StatusRow,
) -> Reply {
    let now = clock.now();
    match query {
        Query::Devices { device, range } => {
            Reply::Devices(engine.device_rows(device.as_deref(), range, now))
        }
        Query::Owners { device, range } => {
            Reply::Owners(engine.owner_rows(device.as_deref(), range, now))
        }
        Query::Flows { device } => Reply::Flows(engine.flow_rows(device.as_deref())),
        Query::Series {
            device,
            range,
            by,
            lines,
        } => json(&engine.series(
            device.as_deref(),
            by,
            range,
            (lines as usize).clamp(1, MAX_SERIES_LINES),
            now,
        )),
        Query::Report {
            device,
            range,
            by,
            lines,
            before,
            after,
        } => {
            fn side(s: &Option<Side>) -> Option<document::Side<'_>> {
                s.as_ref().map(|s| document::Side {
                    device: s.device.as_deref(),
                    range: s.range,
                    label: &s.label,
                })
            }
            let asked = document::Asked {
                device: device.as_deref(),
                range,
                by,
                lines: (lines as usize).clamp(1, MAX_SERIES_LINES),
                compare: side(&before).zip(side(&after)),
            };
            json(&document::of_engine(
                engine,
                &asked,
                now,
                &router_name(),
                status(),
            ))
        }
        _ => Reply::Error {
            message: "not a query for rows".into(),
        },
    }
}

/// A document the daemon answers as JSON text (pretty, as the CLI's
/// `--json`: one serializer for the rows in the binary).
fn json<T: serde::Serialize>(value: &T) -> Reply {
    match serde_json::to_string_pretty(value) {
        Ok(text) => Reply::Json(text),
        Err(e) => Reply::Error {
            message: e.to_string(),
        },
    }
}

/// The router's hostname (what its report is of).
fn router_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "router".into())
}

/// Queries waiting for byte counts: the ones a dump under way will answer
/// (they came before it started) and the ones the next dump will.
pub(super) type Waiting = Vec<Asked>;
