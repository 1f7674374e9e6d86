//! phonehome: a router firewall daemon that shows and stops what phones send
//! home. The folders follow the data flow (docs/ARCHITECTURE.md):
//! `wire` (NFQUEUE, conntrack, packets) → `inspect` (DNS, SNI, Host, QUIC
//! names) + `owners` (who is behind a name or address) → `policy` (the
//! rules) → `engine` (the sans-IO core: flows, devices, verdicts) →
//! `report` (statistics, state, IPFIX, metrics); `daemon` is the I/O loop
//! and socket server around the engine, `cli` the command line.

pub mod cli;
pub mod daemon;
pub mod engine;
pub mod inspect;
pub mod owners;
pub mod policy;
pub mod report;
pub mod wire;
