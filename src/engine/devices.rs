//! Devices: who is behind a LAN address. The MAC comes from the queued
//! packet's link-layer header (`NFQA_HWADDR`) when the kernel has one, else
//! from the kernel neighbour table (which the daemon dumps through
//! `wire::neighbours` and hands over); hostnames come from dnsmasq's lease
//! file (read by the daemon when it changes) and names from the UCI config.
//!
//! Limits: one MAC per address at a time (the latest seen wins), at most
//! `MAX_ADDRESSES` addresses (past it the least recently seen half is
//! forgotten, so an address scan from the LAN costs a bounded table and
//! amortized O(1) per address). No I/O here.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::policy::config::{parse_mac, Mac};

/// Addresses remembered with their MAC.
pub const MAX_ADDRESSES: usize = 65536;

/// What the daemon knows about LAN devices.
#[derive(Default)]
pub struct DeviceBook {
    /// Address → (MAC, when last seen, in observations).
    ip_to_mac: HashMap<IpAddr, (Mac, u64)>,
    tick: u64,
    hostnames: HashMap<Mac, String>,
}

impl DeviceBook {
    pub fn new() -> Self {
        DeviceBook::default()
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

    /// Learns the hostnames (and addresses not seen yet) of a dnsmasq
    /// lease file's text; the daemon reads the file when it changes.
    pub fn learn_leases(&mut self, text: &str) {
        for (mac, ip, name) in parse_leases(text) {
            if !self.ip_to_mac.contains_key(&ip) {
                self.observe(ip, mac);
            }
            if let Some(name) = name {
                self.hostnames.insert(mac, name);
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
        let mut book = DeviceBook::new();
        let ip: IpAddr = "192.168.77.2".parse().unwrap();
        book.observe(ip, [2, 0, 0, 0, 0x77, 2]);
        assert_eq!(book.mac_of(&ip), Some([2, 0, 0, 0, 0x77, 2]));
        // A lease for the address does not override what was seen.
        book.learn_leases("1764150000 02:00:00:00:77:09 192.168.77.2 other *\n");
        assert_eq!(book.mac_of(&ip), Some([2, 0, 0, 0, 0x77, 2]));
        assert_eq!(book.hostname(&[2, 0, 0, 0, 0x77, 9]), Some("other"));
    }
}
