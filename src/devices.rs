//! Devices: who is behind a LAN address. The MAC comes from the queued
//! packet's link-layer header (`NFQA_HWADDR`) when the kernel has one, else
//! from the kernel neighbour table (RTM_GETNEIGH via netlink-packet-route);
//! hostnames come from dnsmasq's lease file and names from the UCI config.
//!
//! Limits: one MAC per address at a time (the latest seen wins); leases are
//! re-read when the file's modification time changes.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
use netlink_packet_route::RouteNetlinkMessage;

use crate::config::{parse_mac, Mac};
use crate::netlink;

/// What the daemon knows about LAN devices.
#[derive(Default)]
pub struct DeviceBook {
    ip_to_mac: HashMap<IpAddr, Mac>,
    hostnames: HashMap<Mac, String>,
    leases_path: PathBuf,
    leases_mtime: Option<SystemTime>,
}

impl DeviceBook {
    pub fn new(leases_path: &Path) -> Self {
        DeviceBook {
            leases_path: leases_path.to_path_buf(),
            ..Default::default()
        }
    }

    pub fn set_leases_path(&mut self, path: &Path) {
        if self.leases_path != path {
            self.leases_path = path.to_path_buf();
            self.leases_mtime = None;
        }
    }

    /// Remembers that `ip` was seen with link-layer source `mac`.
    pub fn observe(&mut self, ip: IpAddr, mac: Mac) {
        if self.ip_to_mac.len() > 65536 && !self.ip_to_mac.contains_key(&ip) {
            self.ip_to_mac.clear(); // crude bound against address scans
        }
        self.ip_to_mac.insert(ip, mac);
    }

    pub fn mac_of(&self, ip: &IpAddr) -> Option<Mac> {
        self.ip_to_mac.get(ip).copied()
    }

    pub fn hostname(&self, mac: &Mac) -> Option<&str> {
        self.hostnames.get(mac).map(String::as_str)
    }

    /// Re-reads the dnsmasq lease file if it changed. Missing file = no
    /// leases (the router may not run dnsmasq's DHCP).
    pub fn refresh_leases(&mut self) {
        let mtime = std::fs::metadata(&self.leases_path)
            .and_then(|m| m.modified())
            .ok();
        if mtime.is_none() || mtime == self.leases_mtime {
            return;
        }
        self.leases_mtime = mtime;
        if let Ok(text) = std::fs::read_to_string(&self.leases_path) {
            for (mac, ip, name) in parse_leases(&text) {
                self.ip_to_mac.entry(ip).or_insert(mac);
                if let Some(name) = name {
                    self.hostnames.insert(mac, name);
                }
            }
        }
    }

    /// Learns every neighbour-table entry that has a link-layer address.
    pub fn learn_neighbours(&mut self, entries: impl IntoIterator<Item = (IpAddr, Mac)>) {
        for (ip, mac) in entries {
            self.ip_to_mac.insert(ip, mac);
        }
    }
}

/// Lines of a dnsmasq lease file: `expiry mac ip hostname client-id`;
/// a hostname of `*` means none.
pub fn parse_leases(text: &str) -> Vec<(Mac, IpAddr, Option<String>)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let mac = parse_mac(f.get(1)?)?;
            let ip = f.get(2)?.parse().ok()?;
            let name = f.get(3).filter(|n| **n != "*").map(|n| n.to_string());
            Some((mac, ip, name))
        })
        .collect()
}

/// Dumps the kernel neighbour table (IPv4 and IPv6).
pub async fn dump_neighbours() -> io::Result<Vec<(IpAddr, Mac)>> {
    let socket = netlink::Socket::open(netlink::Protocol::Route, 0)?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = 1;
    let mut msg = NetlinkMessage::new(
        header,
        NetlinkPayload::from(RouteNetlinkMessage::GetNeighbour(
            NeighbourMessage::default(),
        )),
    );
    msg.finalize();
    let mut req = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut req);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    socket.send(&req)?;
    'recv: loop {
        let n = socket.recv(&mut buf).await?;
        let mut at = 0;
        while at + netlink::NLMSG_HDRLEN <= n {
            let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
            if len < netlink::NLMSG_HDRLEN || at + len > n {
                break 'recv;
            }
            if let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[at..at + len]) {
                match m.payload {
                    NetlinkPayload::Done(_) => break 'recv,
                    NetlinkPayload::Error(e) => return Err(e.to_io()),
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(n)) => {
                        out.extend(neighbour_entry(&n));
                    }
                    _ => {}
                }
            }
            at += netlink::align4(len);
        }
    }
    Ok(out)
}

fn neighbour_entry(n: &NeighbourMessage) -> Option<(IpAddr, Mac)> {
    let mut ip = None;
    let mut mac = None;
    for a in &n.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                ip = Some(IpAddr::V4(*v4))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                ip = Some(IpAddr::V6(*v6))
            }
            NeighbourAttribute::LinkLayerAddress(l) if l.len() == 6 => {
                let mut m = [0u8; 6];
                m.copy_from_slice(l);
                mac = Some(m);
            }
            _ => {}
        }
    }
    Some((ip?, mac?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dnsmasq_leases() {
        let text = "1764150000 02:00:00:00:77:02 192.168.77.2 redmi-note * \n\
                    1764150000 02:00:00:00:77:03 192.168.77.3 * 01:02:00:00:00:77:03\n\
                    garbage line\n";
        let leases = parse_leases(text);
        assert_eq!(leases.len(), 2);
        assert_eq!(leases[0].2.as_deref(), Some("redmi-note"));
        assert_eq!(leases[1].2, None);
    }

    #[test]
    fn book_prefers_observed_macs() {
        let mut book = DeviceBook::new(Path::new("/nonexistent"));
        let ip: IpAddr = "192.168.77.2".parse().unwrap();
        book.observe(ip, [2, 0, 0, 0, 0x77, 2]);
        assert_eq!(book.mac_of(&ip), Some([2, 0, 0, 0, 0x77, 2]));
        book.refresh_leases();
    }
}
