//! Policy: what the user asked for. The UCI syntax (`uci`), the config (`config`), the
//! rules it holds and how a connection is judged against them (`rules`),
//! and the kernel firewall rules rendered for each backend (`firewall`:
//! iptables, nft, fw4). Sans-IO apart from loading the file. See
//! docs/ARCHITECTURE.md.

pub mod config;
mod config_sections;
pub mod firewall;
pub mod rules;
pub mod uci;
