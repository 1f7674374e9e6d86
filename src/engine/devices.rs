//! Devices: who is behind a LAN address. The MAC comes from the queued
//! packet's link-layer header (`NFQA_HWADDR`) when the kernel has one, else
//! from the kernel neighbour table (RTM_GETNEIGH dump);
//! hostnames come from dnsmasq's lease file and names from the UCI config.
//!
//! Limits: one MAC per address at a time (the latest seen wins), at most
//! `MAX_ADDRESSES` addresses (past it the least recently seen half is
//! forgotten, so an address scan from the LAN costs a bounded table and
//! amortized O(1) per address); leases are re-read when the file's
//! modification time changes.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::policy::config::{parse_mac, Mac};
use crate::wire::netlink;

/// Addresses remembered with their MAC.
pub const MAX_ADDRESSES: usize = 65536;

/// What the daemon knows about LAN devices.
#[derive(Default)]
pub struct DeviceBook {
    /// Address → (MAC, when last seen, in observations).
    ip_to_mac: HashMap<IpAddr, (Mac, u64)>,
    tick: u64,
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
        self.tick += 1;
        if self.ip_to_mac.len() >= MAX_ADDRESSES && !self.ip_to_mac.contains_key(&ip) {
            self.forget_older_half();
        }
        self.ip_to_mac.insert(ip, (mac, self.tick));
    }

    /// Drops the least recently seen half of the addresses.
    fn forget_older_half(&mut self) {
        let mut ticks: Vec<u64> = self.ip_to_mac.values().map(|(_, t)| *t).collect();
        let mid = ticks.len() / 2;
        let (_, median, _) = ticks.select_nth_unstable(mid);
        let median = *median;
        self.ip_to_mac.retain(|_, (_, t)| *t > median);
    }

    pub fn mac_of(&self, ip: &IpAddr) -> Option<Mac> {
        self.ip_to_mac.get(ip).map(|(m, _)| *m)
    }

    pub fn address_count(&self) -> usize {
        self.ip_to_mac.len()
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
                if !self.ip_to_mac.contains_key(&ip) {
                    self.observe(ip, mac);
                }
                if let Some(name) = name {
                    self.hostnames.insert(mac, name);
                }
            }
        }
    }

    /// Learns every neighbour-table entry that has a link-layer address.
    pub fn learn_neighbours(&mut self, entries: impl IntoIterator<Item = (IpAddr, Mac)>) {
        for (ip, mac) in entries {
            self.observe(ip, mac);
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

const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
/// `struct ndmsg`: family, 3 pad bytes, ifindex, state, flags, type.
const NDMSG_LEN: usize = 12;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;

/// The RTM_GETNEIGH dump request (every family).
fn neighbour_dump_request(seq: u32) -> Vec<u8> {
    let len = netlink::NLMSG_HDRLEN + NDMSG_LEN;
    let mut req = Vec::with_capacity(len);
    req.extend_from_slice(&(len as u32).to_ne_bytes());
    req.extend_from_slice(&RTM_GETNEIGH.to_ne_bytes());
    req.extend_from_slice(&(netlink::NLM_F_REQUEST | netlink::NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&seq.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(&[0u8; NDMSG_LEN]); // AF_UNSPEC: all families
    req
}

/// Dumps the kernel neighbour table (IPv4 and IPv6). Hand-written: two
/// attributes of one message type; netlink-packet-route cost ~330 KiB of
/// code for them.
pub async fn dump_neighbours() -> io::Result<Vec<(IpAddr, Mac)>> {
    let socket = netlink::Socket::open(netlink::Protocol::Route, 0)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    socket
        .request(&neighbour_dump_request(1), 1, &mut buf, |msg| {
            if msg.kind == RTM_NEWNEIGH {
                out.extend(neighbour_entry(msg.body));
            }
        })
        .await?;
    Ok(out)
}

/// The address and MAC of one RTM_NEWNEIGH body (ndmsg + attributes);
/// entries without a 6-byte link-layer address (incomplete, failed,
/// non-Ethernet) give None.
fn neighbour_entry(body: &[u8]) -> Option<(IpAddr, Mac)> {
    let mut ip = None;
    let mut mac = None;
    for a in netlink::attrs(body.get(NDMSG_LEN..)?) {
        match (a.kind, a.data.len()) {
            (NDA_DST, 4) => ip = Some(IpAddr::from(<[u8; 4]>::try_from(a.data).ok()?)),
            (NDA_DST, 16) => ip = Some(IpAddr::from(<[u8; 16]>::try_from(a.data).ok()?)),
            (NDA_LLADDR, 6) => mac = Some(<[u8; 6]>::try_from(a.data).ok()?),
            _ => {}
        }
    }
    let ip = ip.filter(|ip: &IpAddr| !ip.is_multicast())?;
    Some((ip, mac?))
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

    /// A real RTM_GETNEIGH dump (captured on x86_64 with a python netlink
    /// socket; see tests/fixtures/README.md): an INCOMPLETE IPv4 entry, a
    /// REACHABLE 192.168.77.2 and a STALE 2001:db8:77::2, both 02:00:00:00:77:02.
    #[test]
    fn parses_a_captured_neighbour_dump() {
        let raw = netlink::le_capture_to_host_order(
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/rtm_newneigh_dump.bin"
            )),
            NDMSG_LEN,
        );
        let entries: Vec<_> = netlink::messages(&raw)
            .filter(|m| m.kind == RTM_NEWNEIGH)
            .map(|m| neighbour_entry(m.body))
            .collect();
        let mac = [2, 0, 0, 0, 0x77, 2];
        assert_eq!(
            entries,
            vec![
                None,
                Some(("192.168.77.2".parse().unwrap(), mac)),
                Some(("2001:db8:77::2".parse().unwrap(), mac)),
            ]
        );
        for cut in 0..raw.len() {
            for m in netlink::messages(&raw[..cut]) {
                let _ = neighbour_entry(m.body);
            }
        }
        let req = neighbour_dump_request(7);
        let m = netlink::messages(&req).next().unwrap();
        assert_eq!((m.kind, m.seq, m.body.len()), (RTM_GETNEIGH, 7, NDMSG_LEN));
    }

    /// An address scan from the LAN: the book stays bounded, and the
    /// addresses seen last (the phone's own, still talking) stay known.
    #[test]
    fn an_address_scan_keeps_the_book_bounded_and_the_phone_known() {
        let mut book = DeviceBook::default();
        let phone: IpAddr = "192.168.77.2".parse().unwrap();
        for i in 0..200_000u32 {
            book.observe(
                IpAddr::from(
                    (0xfd00_0000_0000_0000_0000_0000_0000_0000u128 | u128::from(i)).to_be_bytes(),
                ),
                [2, 0, 0, 0, 0, 9],
            );
            if i % 1000 == 0 {
                book.observe(phone, [2, 0, 0, 0, 0x77, 2]);
            }
            assert!(book.address_count() <= MAX_ADDRESSES);
        }
        assert_eq!(book.mac_of(&phone), Some([2, 0, 0, 0, 0x77, 2]));
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
