//! The wire: what the kernel hands the daemon and takes back. Netlink
//! framing (`netlink`), NFQUEUE messages and verdicts (`nfqueue`),
//! ctnetlink conntrack entries, marks and dumps (`conntrack`), the
//! neighbour table (`neighbours`), and the
//! checked views of the IP/TCP/UDP packets inside them (`packet`). Pure
//! parsers and builders over bytes, plus the sockets that carry them; no
//! decisions. See docs/ARCHITECTURE.md.

pub mod conntrack;
pub mod neighbours;
pub mod netlink;
pub mod nfqueue;
pub mod packet;
pub mod reader;
