//! Reading a connection's own name from its client's first bytes: TLS
//! ClientHello SNI and HTTP Host gathered in order over a few segments
//! (bounded), QUIC Initials' CRYPTO frames, and when waiting has lasted
//! long enough (`decide_by`).

use super::*;

pub(super) fn waited_long_enough(flow: &Flow, decide_by: u32) -> bool {
    flow.client_segments >= decide_by || flow.client_packets >= CLIENT_DEADLINE
}

/// Where sniffing a connection's first bytes stands.
pub(super) enum Sniff {
    /// A name was found, or none is coming: decide now.
    Done,
    /// The name may be in bytes still to come.
    Wait,
    /// Reading on would take more than the connections waiting for a name
    /// may hold together (`option max_pending`): decide now, without it.
    OverBudget,
}

/// Adds a QUIC client Initial's CRYPTO data to the flow (when `room`
/// allows) and says whether the flow can be decided now.
pub(super) fn sniff_quic(flow: &mut Flow, payload: &[u8], room: usize) -> Sniff {
    if payload.len() > room {
        return Sniff::OverBudget;
    }
    let pieces = &mut flow.pending.crypto;
    if crate::inspect::quic::read_initial(payload, pieces).is_none() {
        return Sniff::Done; // not an Initial we can open: judge with what is known
    }
    match crate::inspect::quic::sni(pieces) {
        Sniffed::Name(name) => {
            flow.name_source = Some(NameSource::Quic);
            flow.names = Some(vec![name].into());
            Sniff::Done
        }
        Sniffed::NeedMore => Sniff::Wait,
        Sniffed::NoName | Sniffed::Unknown => Sniff::Done,
    }
}

/// Adds an in-order client segment to the flow's hello buffer (when `room`
/// allows) and says whether the flow can be decided now. The stream starts
/// where the SYN said; segments before or after the next expected byte
/// (retransmissions, reordering, or bytes the server would not take) are
/// not read.
pub(super) fn sniff_segment(flow: &mut Flow, mut seq: u32, payload: &[u8], room: usize) -> Sniff {
    let p = &mut flow.pending;
    let mut payload = payload;
    if let Some(next) = p.next_seq.filter(|next| *next != seq) {
        // A segment that starts before the next expected byte and goes
        // past it (a client that sent a byte or two, then all of it again)
        // adds its new bytes, as the server's TCP takes them; one entirely
        // behind or ahead adds nothing.
        let behind = next.wrapping_sub(seq);
        if behind > i32::MAX as u32 || behind as usize >= payload.len() {
            return Sniff::Wait;
        }
        payload = &payload[behind as usize..];
        seq = next;
    }
    if payload.len() > room {
        return Sniff::OverBudget;
    }
    let take = payload.len().min(names::MAX_HELLO - p.hello.len());
    p.hello.reserve_exact(take);
    p.hello.extend_from_slice(&payload[..take]);
    p.next_seq = Some(seq.wrapping_add(payload.len() as u32));
    match names::sniff_client_hello(&p.hello) {
        Sniffed::Name(name) => {
            flow.name_source = Some(if p.hello[0] == 0x16 {
                NameSource::Sni
            } else {
                NameSource::Http
            });
            flow.names = Some(vec![name].into());
            Sniff::Done
        }
        Sniffed::NeedMore if p.hello.len() >= names::MAX_HELLO => Sniff::Done,
        Sniffed::NeedMore => Sniff::Wait,
        Sniffed::NoName | Sniffed::Unknown => Sniff::Done,
    }
}
