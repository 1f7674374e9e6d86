//! Read-only views of the engine's state: its counters and policy, the
//! flow table's size, and the rows `devices`, `owners` and `flows` show.

use super::*;

impl Engine {
    pub(super) fn hostname(&self, device: &str) -> Option<String> {
        let mac = crate::policy::config::parse_mac(device)?;
        self.policy
            .device_name(&mac)
            .or_else(|| self.devices.hostname(&mac))
            .map(str::to_string)
    }

    pub fn device_rows(&self, filter: Option<&str>, range: TimeRange, now: Now) -> Vec<DeviceRow> {
        let mut rows = self
            .stats
            .device_rows(filter, range, now.unix, &|d| self.hostname(d));
        for row in &mut rows {
            row.maker = crate::policy::config::parse_mac(&row.mac)
                .and_then(|mac| self.policy.device_maker(&mac))
                .map(str::to_string);
        }
        rows
    }

    pub fn owner_rows(&self, filter: Option<&str>, range: TimeRange, now: Now) -> Vec<OwnerRow> {
        self.stats.owner_rows(filter, range, now.unix)
    }

    /// Each of `devices`' owner rows, in one pass.
    pub fn owner_rows_by_device(
        &self,
        devices: &[&str],
        range: TimeRange,
        now: Now,
    ) -> std::collections::HashMap<String, Vec<OwnerRow>> {
        self.stats.owner_rows_by_device(devices, range, now.unix)
    }

    pub fn flow_rows(&self, filter: Option<&str>) -> Vec<FlowRow> {
        let mut rows: Vec<FlowRow> = self
            .flows
            .recent()
            .map(|f| flow_row(f, false))
            .chain(self.flows.active().map(|f| flow_row(f, true)))
            .filter(|r| filter.is_none_or(|d| d.eq_ignore_ascii_case(&r.device)))
            .collect();
        rows.sort_by_key(|r| (r.first_seen, r.last_seen));
        rows
    }

    /// Device × owner pairs seen for the first time since the start.
    pub fn new_owner_count(&self) -> u64 {
        self.stats.new_owners
    }

    /// Connections over time (`Stats::series`).
    pub fn series(
        &self,
        filter: Option<&str>,
        by: SeriesBy,
        range: TimeRange,
        lines: usize,
        now: Now,
    ) -> SeriesRows {
        self.stats.series(filter, by, range, lines, now.unix)
    }

    /// What the engine counted of the packets it was given.
    pub fn counters(&self) -> &PacketCounters {
        &self.counters
    }

    /// The rules it judges by.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Connections in the flow table.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Connections pushed out of a full flow table.
    pub fn flows_evicted(&self) -> u64 {
        self.flows.evicted
    }

    /// Bytes held by connections waiting for a name.
    pub fn pending_bytes(&self) -> usize {
        self.flows.pending_bytes()
    }

    /// Names learned from DNS answers and held.
    pub fn dns_name_count(&self) -> usize {
        self.names.len()
    }

    /// Devices in the statistics.
    pub fn device_count(&self) -> usize {
        self.stats.device_count()
    }

    pub fn has_flow(&self, orig: &FiveTuple) -> bool {
        self.flows.contains(orig)
    }

    /// Whether the connection is decided, and when it was last seen.
    pub fn flow_activity(&self, orig: &FiveTuple) -> Option<(bool, u64)> {
        self.flows
            .get(orig)
            .map(|f| (f.decision.is_some(), f.last_seen))
    }

    /// The connections still open, with when each was last seen.
    pub fn active_flows(&self) -> Vec<(FiveTuple, u64)> {
        self.flows
            .active()
            .map(|f| (f.tuple, f.last_seen))
            .collect()
    }
}
