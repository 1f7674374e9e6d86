//! Reports: what the daemon tells. Per-device and per-owner statistics and
//! their history (`stats`), the state file that keeps them across restarts
//! (`state`), IPFIX export of finished flows (`ipfix`) and Prometheus
//! metrics (`metrics`). Pure over the engine's records. See
//! docs/ARCHITECTURE.md.

pub mod document;
pub mod html;
pub mod ipfix;
pub mod metrics;
pub mod state;
pub mod stats;
