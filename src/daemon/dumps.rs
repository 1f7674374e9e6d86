//! When conntrack dumps run (byte counts for the 5 s tick and for the
//! queries that show them): at most one every `MIN_DUMP_GAP`, a wanted one
//! waiting for its turn, and the queries a dump answers.

use std::time::{Duration, Instant};

use super::api::{Query, Reply};
use super::clock::Clock;
use super::Asked;
use crate::engine::{Engine, Now};
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

/// The rows a query that shows byte counts asks for (after a dump).
pub(super) fn rows_reply(query: Query, engine: &Engine, clock: &Clock) -> Reply {
    match query {
        Query::Devices { device, range } => {
            Reply::Devices(engine.device_rows(device.as_deref(), range, clock.now()))
        }
        Query::Owners { device, range } => {
            Reply::Owners(engine.owner_rows(device.as_deref(), range, clock.now()))
        }
        Query::Flows { device } => Reply::Flows(engine.flow_rows(device.as_deref())),
        _ => Reply::Error {
            message: "not a query for rows".into(),
        },
    }
}

/// Queries waiting for byte counts: the ones a dump under way will answer
/// (they came before it started) and the ones the next dump will.
pub(super) type Waiting = Vec<Asked>;
