//! The engine's conntrack side: byte counts from dumps and destroy events
//! folded into the flows and the statistics (per minute), flows finished
//! and recorded for the exporter, dumps marked so a flow the table no
//! longer holds ends, and the statistics saved and taken back across a
//! restart (with the live connections).

use super::*;

impl Engine {
    /// Folds a conntrack entry (from a dump) into the flow's byte counts.
    pub fn on_ct_entry(&mut self, entry: &CtEntry, now: Now) {
        let Some(orig) = entry.orig else { return };
        let gen = self.dump_gen;
        let Some(flow) = self.flows.get_mut(&orig) else {
            return;
        };
        flow.seen_gen = gen;
        self.account(&orig, entry, now);
    }

    /// A connection ended: final counts, then the flow leaves the table.
    pub fn on_ct_destroy(&mut self, entry: &CtEntry, now: Now) {
        let Some(orig) = entry.orig else { return };
        if !self.flows.contains(&orig) {
            return;
        }
        self.account(&orig, entry, now);
        self.finish(&orig, now);
    }

    pub(super) fn account(&mut self, orig: &FiveTuple, entry: &CtEntry, now: Now) {
        let Some(flow) = self.flows.get_mut(orig) else {
            return;
        };
        let up = entry.orig_counters.unwrap_or(flow.up);
        let down = entry.reply_counters.unwrap_or(flow.down);
        if up.bytes > flow.up.bytes || down.bytes > flow.down.bytes {
            flow.last_seen = now.unix;
        }
        flow.up = up;
        flow.down = down;
        self.fold_bytes(orig, now.unix);
    }

    /// Adds the flow's bytes not yet counted to the statistics, at time
    /// `unix`, once the flow is decided (until then they wait, so the
    /// first bytes of a connection land on its owner too).
    pub fn fold_bytes(&mut self, orig: &FiveTuple, unix: u64) {
        let Some(flow) = self.flows.get_mut(orig) else {
            return;
        };
        if flow.decision.is_none() {
            return;
        }
        let d_up = flow.up.bytes.saturating_sub(flow.counted_up);
        let d_down = flow.down.bytes.saturating_sub(flow.counted_down);
        if d_up == 0 && d_down == 0 {
            return;
        }
        flow.counted_up = flow.up.bytes;
        flow.counted_down = flow.down.bytes;
        let owner = flow.owner.map_or(UNKNOWN_OWNER, |o| o.name);
        self.stats
            .add_bytes(&flow.device, owner, d_up, d_down, unix);
    }

    pub(super) fn finish(&mut self, orig: &FiveTuple, now: Now) {
        let Some(flow) = self.flows.get_mut(orig) else {
            return;
        };
        if flow.decision.is_none() {
            // It ended (or escaped the queue) before a name appeared.
            self.decide(orig, now);
        }
        let last_seen = self.flows.get_mut(orig).map_or(now.unix, |f| f.last_seen);
        self.fold_bytes(orig, last_seen);
        if self.export {
            if let Some(f) = self.flows.get_mut(orig) {
                for record in export_records(f) {
                    self.emit(Event::FlowFinished(record));
                }
            }
        }
        self.flows.finish(orig);
    }

    /// Ends a flow whose connection is over (a capture's flow after its
    /// FIN/RST or idle timeout): judged if it was not yet, its last bytes
    /// counted, and it moves to the recent ones. Returns its final row.
    pub fn end_flow(&mut self, orig: &FiveTuple, now: Now) -> Option<FlowRow> {
        self.finish(orig, now);
        self.flows
            .recent()
            .last()
            .filter(|f| f.tuple == *orig)
            .map(|f| flow_row(f, false))
    }

    /// The statistics and the decided connections, for the state file.
    pub fn snapshot(&self) -> crate::report::stats::Snapshot {
        let mut s = self.stats.snapshot();
        s.live = self.flows.active().filter_map(Flow::to_live).collect();
        s
    }

    /// Takes back a saved state: the statistics, and the connections that
    /// were alive, decided as they were (their ct marks are still in the
    /// kernel), with the bytes already counted, so the next dumps add only
    /// what came since. Connections that ended meanwhile are finished by
    /// the first dump that does not list them.
    pub fn restore(&mut self, snapshot: crate::report::stats::Snapshot, now: Now) {
        let live = snapshot.live.clone();
        self.stats = Stats::restore(snapshot);
        for l in live {
            let Some(action) = crate::policy::config::parse_action_name(&l.action) else {
                continue;
            };
            let names: Option<NameChain> = (!l.names.is_empty()).then(|| l.names.clone().into());
            let a = owners::attribute(names.as_deref().unwrap_or(&[]), l.tuple.dst);
            let flow = self.flows.entry(l.tuple, now.unix);
            flow.mac = l.mac;
            flow.device = l.device;
            flow.names = names;
            flow.name_source = l.name_source.as_deref().and_then(NameSource::parse);
            flow.owner = a.owner;
            flow.host = a.host;
            flow.country = a.country;
            flow.decision = Some(Decision {
                action,
                rule: l.rule,
                logged: Vec::new(),
                enforced: l.enforced,
            });
            flow.counted_up = l.counted_up;
            flow.counted_down = l.counted_down;
            flow.up.bytes = l.counted_up;
            flow.down.bytes = l.counted_down;
            // Saved times from a clock later than now (a router without a
            // real-time clock boots at its build date) would keep the flow
            // from ever looking stale.
            flow.first_seen = l.first_seen.min(now.unix);
            flow.last_seen = now.unix;
        }
    }

    /// Starts a conntrack dump generation (call before feeding entries).
    pub fn begin_dump(&mut self) {
        self.dump_gen += 1;
    }

    /// After a complete dump: flows whose connection vanished are finished.
    pub fn end_dump(&mut self, now: Now) {
        for t in self.flows.stale(self.dump_gen, now.unix, 5) {
            self.finish(&t, now);
        }
    }
}
