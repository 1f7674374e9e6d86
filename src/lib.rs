//! phonehome: a router firewall daemon that shows and stops what phones send
//! home. Data flow (see DESIGN.md): `queue` (NFQUEUE) → `packet` →
//! `attribution` (DNS, SNI, Host) + `owners` → `policy` → verdict with a
//! conntrack mark; `flows` and `stats` keep the record; `api` serves it to
//! the `cli`. `engine` is the sans-IO core; `daemon` is its I/O loop.

#[cfg(feature = "pcap")]
pub mod analyze;
pub mod api;
pub mod attribution;
#[cfg(feature = "pcap")]
pub mod capture;
pub mod cli;
pub mod config;
pub mod conntrack;
pub mod daemon;
pub mod devices;
pub mod engine;
pub mod firewall;
pub mod flows;
pub mod idn;
pub mod ipfix;
pub mod metrics;
pub mod netlink;
pub mod owners;
pub mod packet;
pub mod policy;
pub mod queue;
pub mod quic;
pub mod sinkhole;
pub mod state;
pub mod stats;
