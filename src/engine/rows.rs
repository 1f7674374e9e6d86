//! What a flow looks like to the outside: its row for `flows`, `watch`
//! and `analyze`, and its IPFIX records (one per direction).

use super::*;

/// A flow as the API shows it.
pub(super) fn flow_row(f: &Flow, active: bool) -> FlowRow {
    FlowRow {
        device: f.device.clone(),
        proto: packet::proto_name(f.tuple.proto).to_string(),
        src: f.tuple.src.to_string(),
        sport: f.tuple.sport,
        dst: f.tuple.dst.to_string(),
        dport: f.tuple.dport,
        domain: f.domain().map(str::to_string),
        name_source: f.name_source.map(|s| s.as_str().to_string()),
        owner: f.owner.map_or(UNKNOWN_OWNER, |o| o.name).to_string(),
        parent: f
            .owner
            .and_then(|o| owners::parent_of(o.name))
            .map(str::to_string),
        host: f.host.map(str::to_string),
        country: f.country.map(|c| String::from_utf8_lossy(&c).into_owned()),
        query: f.query.as_deref().map(str::to_string),
        category: f
            .owner
            .map_or(UNKNOWN_OWNER, |o| o.category.as_str())
            .to_string(),
        verdict: match &f.decision {
            Some(d) if d.blocks() => d.action.as_str(),
            Some(_) => "allow",
            None => "pending",
        }
        .to_string(),
        rule: f.decision.as_ref().and_then(|d| d.rule.clone()),
        enforced: f.decision.as_ref().is_none_or(|d| d.enforced),
        active,
        bytes_up: f.up.bytes,
        bytes_down: f.down.bytes,
        first_seen: f.first_seen,
        last_seen: f.last_seen,
    }
}

/// A finished flow as two IPFIX records (client → server, server → client).
pub(super) fn export_records(f: &Flow) -> [crate::report::ipfix::FlowRecord; 2] {
    let t = f.tuple;
    let owner = f.owner.map_or(UNKNOWN_OWNER, |o| o.name).to_string();
    let category = f
        .owner
        .map_or(UNKNOWN_OWNER, |o| o.category.as_str())
        .to_string();
    let domain = f.domain().unwrap_or("").to_string();
    let parent = f
        .owner
        .and_then(|o| owners::parent_of(o.name))
        .unwrap_or("")
        .to_string();
    let up = crate::report::ipfix::FlowRecord {
        src: t.src,
        dst: t.dst,
        sport: t.sport,
        dport: t.dport,
        proto: t.proto,
        mac: f.mac,
        from_device: true,
        packets: f.up.packets,
        octets: f.up.bytes,
        start_ms: f.first_seen * 1000,
        end_ms: f.last_seen * 1000,
        owner,
        category,
        domain,
        parent,
    };
    let down = crate::report::ipfix::FlowRecord {
        src: t.dst,
        dst: t.src,
        sport: t.dport,
        dport: t.sport,
        from_device: false,
        packets: f.down.packets,
        octets: f.down.bytes,
        ..up.clone()
    };
    [up, down]
}
