//! The engine's boundary: what goes in (`Packet`, parsed once, with where
//! it was queued) and what comes out besides verdicts and rows (`Event`,
//! polled with `Engine::poll_event`).

use super::*;

/// Where a packet was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Forwarded between LAN and WAN (a phone's connection).
    Forward,
    /// To the router itself.
    LocalIn,
    /// From the router itself (its own resolver's answers to the LAN).
    LocalOut,
    Other,
}

/// One packet as the engine takes it: parsed once, with what the kernel
/// (or a capture's reader) knows about it. The daemon makes it from a
/// queued netlink message (`from_queued`), `analyze` from a captured frame.
pub struct Packet<'a> {
    /// The IP packet, header first (a DNS answer is rewritten from it).
    pub ip: &'a [u8],
    /// Its headers, read once.
    pub view: PacketView<'a>,
    pub hook: Hook,
    /// The link-layer source when it came from the LAN (Ethernet).
    pub mac: Option<Mac>,
    /// Its connection's original direction, when conntrack knows it.
    pub conn: Option<FiveTuple>,
}

/// What the engine asks of the I/O around it, or tells it: polled with
/// `Engine::poll_event` after each call, in the shape of quinn-proto's
/// `Connection::poll`, instead of flags and buffers the daemon reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A packet's device could not be named from its own headers: dump
    /// the kernel neighbour table and hand it to `learn_neighbours`. Not
    /// asked again until then.
    NeedNeighbours,
    /// A connection was decided (while `set_watching(true)`).
    Decided(FlowRow),
    /// A finished connection's record, one per direction (when the config
    /// names an IPFIX collector).
    FlowFinished(crate::report::ipfix::FlowRecord),
    /// A device reached an owner its statistics did not hold yet.
    NewOwner(crate::report::stats::NewOwnerRow),
}

/// Events held between polls; past it they are dropped and counted.
pub const MAX_EVENTS: usize = 8192;

impl<'a> Packet<'a> {
    /// A forwarded packet with nothing known but its bytes.
    pub fn parse(ip: &'a [u8]) -> Result<Packet<'a>, packet::PacketError> {
        Ok(Packet {
            ip,
            view: packet::parse(ip)?,
            hook: Hook::Forward,
            mac: None,
            conn: None,
        })
    }

    /// The packet of a queued netlink message.
    pub fn from_queued(q: &QueuedPacket<'a>) -> Result<Packet<'a>, packet::PacketError> {
        Ok(Packet {
            hook: match q.hook {
                HOOK_FORWARD => Hook::Forward,
                HOOK_LOCAL_IN => Hook::LocalIn,
                HOOK_LOCAL_OUT => Hook::LocalOut,
                _ => Hook::Other,
            },
            mac: q.hwaddr,
            conn: q.ct.as_ref().and_then(|c| c.orig),
            ..Packet::parse(q.payload)?
        })
    }
}
