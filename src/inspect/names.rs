//! Attribution: which name a connection is for. Pure functions over payload
//! bytes plus a bounded per-client cache:
//! - DNS answers passing through the router teach `client → (address → names)`,
//!   following CNAME chains so a cloaked tracker (`metrics.shop.example`
//!   CNAME `t.tracker.example`) keeps every name of the chain;
//! - a TLS ClientHello gives the SNI, an HTTP request its Host header.
//!
//! The ClientHello walker is hand-written: the maintained TLS parser
//! (tls-parser) pulls nom and a derive stack for one field, too much for a
//! 16 MB router. The DNS reader is hand-written too: simple-dns (used
//! before) refuses a whole message for one record it cannot read, which
//! let a hostile resolver hide its answers from the daemon behind a
//! malformed record that stub resolvers skip; this one keeps what it read.
//! So is the HTTP Host reader (see `http_host`).
//!
//! QUIC Initial packets are decrypted for their ClientHello in `quic`.
//!
//! Limits: ECH hides the real SNI (the outer
//! public name is reported); a ClientHello split over several segments is
//! reassembled by the caller (see `flows`), up to `MAX_HELLO` bytes.
//!
//! Over 600 lines: DNS answers, ClientHello and HTTP requests, the three
//! places a name comes from, with the name cache; a third of the file is
//! unit tests over captured bytes.

use crate::wire::reader::{wire_len, Reader};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Largest ClientHello we try to reassemble.
/// A whole TLS record (2^14 bytes and its 5-byte header): a ClientHello
/// padded or post-quantum-sized still fits.
pub const MAX_HELLO: usize = 16 * 1024 + 5;

/// A domain and the CNAME chain that led to it, first the name the client
/// asked for, last the name holding the address.
pub type NameChain = Arc<[String]>;

/// What one DNS response taught: addresses and the names that reach them.
#[derive(Debug, PartialEq, Eq)]
pub struct DnsAnswer {
    /// Addresses from A/AAAA records and from HTTPS/SVCB `ipv4hint` /
    /// `ipv6hint`, each with the names that lead to it and its TTL.
    pub answers: Vec<(IpAddr, NameChain, u32)>,
    /// The question and the CNAMEs the answer follows from it, whatever
    /// the record types (an HTTPS answer, a NODATA answer): what the policy
    /// judges the answer by.
    pub question: Option<NameChain>,
    /// Every other name the answer section holds (record owners, CNAME
    /// and HTTPS/SVCB targets), judged each on its own: a name cloaked
    /// behind a broken, duplicated or overlong CNAME path is judged too.
    pub other_names: Vec<String>,
}

/// The question name of a DNS response, read from the header and the
/// first question only, so a message cut short (at the queue's copy
/// range, or a TCP message still arriving) still tells what it answers.
/// None for queries and for anything that is not a DNS message.
pub fn question_name(msg: &[u8]) -> Option<String> {
    if msg.len() < 12 || msg[2] & 0x80 == 0 || be16(msg, 4)? == 0 {
        return None;
    }
    read_name(msg, 12).map(|(name, _)| name)
}

/// The name in the first question of a DNS message, query or response.
/// None when it has no question or is not a DNS message (a header of 12
/// bytes, opcode QUERY).
pub fn query_name(msg: &[u8]) -> Option<String> {
    if msg.len() < 12 || msg[2] & 0x78 != 0 || be16(msg, 4)? == 0 {
        return None;
    }
    read_name(msg, 12)
        .map(|(name, _)| name)
        .filter(|n| !n.is_empty())
}

/// A DNS name as it is kept and shown: lowercase, no trailing dot, and
/// every byte that is not a letter, digit, '-', '_' or '.' written as
/// `\DDD` (as dig prints it), so a hostile resolver's control characters
/// never reach a terminal or a log while suffix rules still match the
/// labels after them.
fn normalize(name: &str) -> String {
    let name = name.trim_end_matches('.');
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        match b.to_ascii_lowercase() {
            c @ (b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.') => out.push(char::from(c)),
            other => out.push_str(&format!("\\{other:03}")),
        }
    }
    out
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    Reader::at(b, at)?.be16().map(usize::from)
}

/// The (possibly compressed) name at `at` in `msg`, normalized, and the
/// offset just past it where it is written. None when it is malformed:
/// past the end, a reserved label type, over 255 bytes, or more than 64
/// compression jumps than the message has pointers' room for (a loop).
pub fn read_name(msg: &[u8], at: usize) -> Option<(String, usize)> {
    let mut labels: Vec<String> = Vec::new();
    let (mut end, mut jumps, mut wire_len) = (None, 0, 1);
    // Stub resolvers bound pointer loops by the message's size, not a
    // count: so does this (each pointer takes two bytes of it).
    let max_jumps = msg.len() / 2 + 1;
    let mut r = Reader::at(msg, at)?;
    loop {
        let len = r.u8()?;
        match len & 0xc0 {
            0 if len == 0 => break,
            0 => {
                let label = r.take(usize::from(len))?;
                wire_len += 1 + usize::from(len);
                if wire_len > 255 {
                    return None;
                }
                labels.push(normalize(&String::from_utf8_lossy(label)));
            }
            0xc0 => {
                jumps += 1;
                if jumps > max_jumps {
                    return None;
                }
                let low = r.u8()?;
                end.get_or_insert(r.position());
                r = Reader::at(msg, (usize::from(len & 0x3f) << 8) | usize::from(low))?;
            }
            _ => return None,
        }
    }
    Some((labels.join("."), end.unwrap_or(r.position())))
}

/// The `ipv4hint` and `ipv6hint` addresses of an HTTPS/SVCB record's data
/// (priority, target name, then key/length/value parameters); a parameter
/// that runs past the record ends the walk, keeping what came before.
fn svcb_hints(msg: &[u8], rdata: std::ops::Range<usize>) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let Some((_, at)) = read_name(msg, rdata.start + 2) else {
        return out;
    };
    if at > rdata.end {
        return out;
    }
    let Some(mut params) = msg.get(at..rdata.end).map(Reader::new) else {
        return out;
    };
    while params.left() >= 4 {
        let (Some(key), Some(value)) = (params.be16(), params.be16_prefixed()) else {
            break;
        };
        let value = value.rest();
        match key {
            4 => out.extend(
                value
                    .chunks_exact(4)
                    .map(|c| IpAddr::from(<[u8; 4]>::try_from(c).expect("4 bytes"))),
            ),
            6 => out.extend(
                value
                    .chunks_exact(16)
                    .map(|c| IpAddr::from(<[u8; 16]>::try_from(c).expect("16 bytes"))),
            ),
            _ => {}
        }
    }
    out
}

/// Reads a DNS response. `None` for queries and junk. Tolerant by design:
/// a record it cannot read ends the walk but keeps what came before, so a
/// hostile resolver cannot hide an answer's addresses behind one malformed
/// record that stub resolvers skip. Learns from the answer section: A,
/// AAAA, CNAME, and the address hints of HTTPS/SVCB records.
pub fn parse_dns_response(msg: &[u8]) -> Option<DnsAnswer> {
    if msg.len() < 12 || msg[2] & 0x80 == 0 {
        return None;
    }
    let mut at = 12;
    let mut question = None;
    for i in 0..be16(msg, 4)? {
        let (name, next) = read_name(msg, at)?;
        if i == 0 {
            question = Some(name);
        }
        at = next + 4;
    }
    if at > msg.len() {
        return None;
    }
    let mut cnames: HashMap<String, String> = HashMap::new();
    let mut held: Vec<(String, IpAddr, u32)> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let note = |names: &mut Vec<String>, n: &str| {
        if !n.is_empty() && names.len() < 64 && !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    };
    for _ in 0..be16(msg, 6)? {
        let Some((name, next)) = read_name(msg, at) else {
            break;
        };
        // TYPE, CLASS, TTL, RDLENGTH, RDATA.
        let Some(mut r) = Reader::at(msg, next) else {
            break;
        };
        let (Some(rtype), Some(_class), Some(ttl)) = (r.be16(), r.be16(), r.be32()) else {
            break;
        };
        let Some(rdata) = r.be16_prefixed().map(|d| d.rest()) else {
            break;
        };
        let (rtype, rdlen, data) = (usize::from(rtype), rdata.len(), next + 10);
        note(&mut names, &name);
        match (rtype, rdlen) {
            (1, 4) => held.push((
                name,
                IpAddr::from(<[u8; 4]>::try_from(rdata).expect("4")),
                ttl,
            )),
            (28, 16) => held.push((
                name,
                IpAddr::from(<[u8; 16]>::try_from(rdata).expect("16")),
                ttl,
            )),
            (5, _) => {
                if let Some((target, _)) = read_name(msg, data) {
                    note(&mut names, &target);
                    // The first CNAME of a name is the one stub resolvers
                    // follow.
                    cnames.entry(name).or_insert(target);
                }
            }
            (64 | 65, 3..) => {
                // The hints are the target's addresses ("." = the owner).
                let target = read_name(msg, data + 2).map(|(t, _)| t).unwrap_or_default();
                note(&mut names, &target);
                let holder = if target.is_empty() {
                    name.clone()
                } else {
                    target
                };
                if holder != name {
                    cnames.entry(name.clone()).or_insert_with(|| holder.clone());
                }
                for ip in svcb_hints(msg, data..data + rdlen).into_iter().take(64) {
                    held.push((holder.clone(), ip, ttl));
                }
            }
            _ => {}
        }
        at = data + rdlen;
    }
    let mut chain_cache: HashMap<String, NameChain> = HashMap::new();
    let answers: Vec<(IpAddr, NameChain, u32)> = held
        .into_iter()
        .map(|(holder, ip, ttl)| {
            let chain = chain_cache
                .entry(holder.clone())
                .or_insert_with(|| chain_to(question.as_deref(), &holder, &cnames))
                .clone();
            (ip, chain, ttl)
        })
        .collect();
    let question = question.map(|q| cname_path(&q, &cnames));
    let in_chains = |n: &String| {
        question.as_deref().is_some_and(|q| q.contains(n))
            || answers.iter().any(|(_, c, _)| c.contains(n))
    };
    let other_names = names.into_iter().filter(|n| !in_chains(n)).collect();
    Some(DnsAnswer {
        answers,
        question,
        other_names,
    })
}

/// The question followed along the answer's CNAMEs as far as they go
/// (bounded against loops).
fn cname_path(question: &str, cnames: &HashMap<String, String>) -> NameChain {
    let mut chain = vec![question.to_string()];
    while let Some(next) = cnames.get(chain.last().expect("not empty")) {
        if chain.len() >= 16 || chain.contains(next) {
            break;
        }
        chain.push(next.clone());
    }
    chain.into()
}

/// The CNAME path from the question to `holder`; just `[holder]` when the
/// answer does not link them (bounded against CNAME loops).
fn chain_to(question: Option<&str>, holder: &str, cnames: &HashMap<String, String>) -> NameChain {
    if let Some(q) = question {
        let mut chain = vec![q.to_string()];
        let mut at = q;
        while at != holder && chain.len() < 16 {
            match cnames.get(at) {
                Some(next) => {
                    chain.push(next.clone());
                    at = next;
                }
                None => break,
            }
        }
        if at == holder {
            return chain.into();
        }
    }
    vec![holder.to_string()].into()
}

/// Outcome of looking for a name in the first bytes a client sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// A name was found (SNI or Host).
    Name(String),
    /// Looks like TLS/HTTP, but the name is in bytes not yet seen.
    NeedMore,
    /// Complete, and there is no name (TLS without SNI, HTTP/1.0 no Host).
    NoName,
    /// Not a protocol we read.
    Unknown,
}

/// Looks for SNI (TLS) or Host (HTTP/1.x) in the client's first bytes.
pub fn sniff_client_hello(data: &[u8]) -> Sniffed {
    if data.is_empty() {
        return Sniffed::NeedMore;
    }
    if data[0] == 0x16 {
        return tls_sni(data);
    }
    if data[0].is_ascii_uppercase() {
        return http_host(data);
    }
    Sniffed::Unknown
}

/// Reads the server_name extension of a TLS ClientHello in TLS records.
pub fn tls_sni(data: &[u8]) -> Sniffed {
    // Record layer: type 22, version, length; the handshake may span
    // several records, so gather their bodies first.
    let mut hs = Vec::new();
    let mut records = Reader::new(data);
    loop {
        let mut r = records;
        let (Some(0x16), Some(_version), Some(len)) = (r.u8(), r.be16(), r.be16()) else {
            break;
        };
        let len = usize::from(len);
        let have = r.left().min(len);
        let Some(body) = r.take(have) else {
            break;
        };
        hs.extend_from_slice(body);
        if have < len {
            break;
        }
        records = r;
        let mut h = Reader::new(&hs);
        if let (Some(_), Some(hlen)) = (h.u8(), h.be24().and_then(wire_len)) {
            if h.left() >= hlen {
                break;
            }
        }
    }
    if data[0] != 0x16 || (data.len() >= 2 && data[1] != 3) {
        return Sniffed::Unknown;
    }
    sni_from_handshake(&hs)
}

/// The SNI of a ClientHello handshake message (type, 3-byte length, body),
/// as TLS records carry it and QUIC CRYPTO frames do.
pub fn sni_from_handshake(hs: &[u8]) -> Sniffed {
    let mut r = Reader::new(hs);
    let (Some(kind), Some(hlen)) = (r.u8(), r.be24()) else {
        return Sniffed::NeedMore;
    };
    if kind != 1 {
        return Sniffed::Unknown; // not a ClientHello
    }
    let Some(hlen) = wire_len(hlen) else {
        return Sniffed::Unknown;
    };
    let complete = r.left() >= hlen;
    let body = &r.rest()[..hlen.min(r.left())];
    match sni_from_client_hello(body) {
        Some(Some(name)) => Sniffed::Name(name),
        Some(None) if complete => Sniffed::NoName,
        Some(None) => Sniffed::NeedMore,
        None if complete => Sniffed::Unknown,
        None => Sniffed::NeedMore,
    }
}

/// The SNI inside a ClientHello body: `Some(None)` when it has none, None
/// when the body is cut short before the name (or its extensions end).
fn sni_from_client_hello(body: &[u8]) -> Option<Option<String>> {
    let mut r = Reader::new(body);
    r.skip(2 + 32)?; // legacy_version, random
    r.u8_prefixed()?; // session id
    r.be16_prefixed()?; // cipher suites
    r.u8_prefixed()?; // compression methods
    if r.is_empty() {
        return Some(None); // no extensions at all
    }
    let ext_len = usize::from(r.be16()?);
    let truncated = r.left() < ext_len;
    let mut exts = r.sub(ext_len.min(r.left()))?;
    while !exts.is_empty() {
        let kind = exts.be16()?;
        let mut data = exts.be16_prefixed()?;
        if kind == 0 {
            data.be16()?; // server_name_list length
            while !data.is_empty() {
                let name_type = data.u8()?;
                let host = data.be16_prefixed()?;
                if name_type == 0 {
                    return Some(valid_hostname(host.rest()));
                }
            }
        }
    }
    if truncated {
        return None;
    }
    Some(None)
}

/// Accepts a DNS host name (letters, digits, '-', '_', '.'), lowercased.
pub(crate) fn valid_hostname(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() || bytes.len() > 253 {
        return None;
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return None;
    }
    Some(normalize(std::str::from_utf8(bytes).ok()?))
}

/// Reads the Host of an HTTP/1.x request: the host of an absolute-form
/// target (`GET http://host/ HTTP/1.1`, which servers prefer over the
/// header), else the first `Host` header. Written by hand rather than with
/// httparse, whose fixed header array made a request with more headers
/// than it holds before `Host` unreadable; this reads any number of
/// headers within `MAX_HELLO`, with CRLF or bare LF line ends.
pub fn http_host(data: &[u8]) -> Sniffed {
    let Some(method_len) = data.iter().position(|b| *b == b' ') else {
        return if data.len() < 24 && data.iter().all(u8::is_ascii_uppercase) {
            Sniffed::NeedMore
        } else {
            Sniffed::Unknown
        };
    };
    if method_len == 0 || !data[..method_len].iter().all(u8::is_ascii_uppercase) {
        return Sniffed::Unknown;
    }
    if !data.contains(&b'\n') {
        return Sniffed::NeedMore; // the request line is not complete yet
    }
    let mut lines = data.split(|b| *b == b'\n');
    let request_line = lines.next().unwrap_or_default();
    let target = request_line[method_len..]
        .split(|b| *b == b' ')
        .find(|w| !w.is_empty())
        .unwrap_or_default();
    for scheme in [&b"http://"[..], b"https://"] {
        if target.len() > scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let authority = target[scheme.len()..]
                .split(|b| matches!(b, b'/' | b'?' | b'#'))
                .next()
                .unwrap_or_default();
            return host_value(authority);
        }
    }
    let complete_lines = data.iter().filter(|b| **b == b'\n').count();
    for (i, line) in lines.enumerate() {
        if i + 1 >= complete_lines {
            return Sniffed::NeedMore; // this line is not complete yet
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Sniffed::NoName; // end of the headers, no Host
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        if line[..colon].trim_ascii().eq_ignore_ascii_case(b"host") {
            return host_value(&line[colon + 1..]);
        }
    }
    Sniffed::NeedMore
}

/// A Host value (or an authority) as a name: userinfo and port dropped.
fn host_value(value: &[u8]) -> Sniffed {
    let value = value.trim_ascii();
    let value = value.rsplit(|b| *b == b'@').next().unwrap_or(value);
    let host = value.split(|b| *b == b':').next().unwrap_or(value);
    match valid_hostname(host) {
        Some(name) => Sniffed::Name(name),
        None => Sniffed::NoName,
    }
}

/// Who asked a DNS question: the device when its MAC is known, so a
/// dual-stack phone that asks AAAA over IPv4 (or A over IPv6, or from a
/// new privacy address) has the answer name its connections from any of
/// its addresses; else the address that asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Asker {
    Device(crate::wire::packet::Mac),
    Address(IpAddr),
}

impl Asker {
    pub fn new(mac: Option<crate::wire::packet::Mac>, ip: IpAddr) -> Asker {
        mac.map_or(Asker::Address(ip), Asker::Device)
    }
}

/// Per-client DNS memory: which names a device (or address) resolved to
/// which address. An address shared by several names (a CDN, a cloud
/// front end) keeps the last `NAMES_PER_ADDRESS` of them, newest first:
/// a connection to it may be for any. Bounded: past `capacity` addresses
/// the ones closest to expiry go first.
pub struct NameCache {
    entries: HashMap<(Asker, IpAddr), Vec<(NameChain, u64)>>,
    capacity: usize,
    /// Names outlive their TTL by this much: apps keep using an address
    /// after the record expired, and the name is still the best we know.
    pub grace_s: u64,
}

/// Names kept per (asker, address).
pub const NAMES_PER_ADDRESS: usize = 4;

impl NameCache {
    pub fn new(capacity: usize) -> Self {
        NameCache {
            entries: HashMap::new(),
            capacity: capacity.max(16),
            grace_s: 3600,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records what a DNS answer to `client` taught, at time `now` (s).
    pub fn learn(&mut self, client: Asker, answer: &DnsAnswer, now: u64) {
        for (ip, chain, ttl) in &answer.answers {
            let expires = now + u64::from(*ttl) + self.grace_s;
            let names = self.entries.entry((client, *ip)).or_default();
            // The same question again moves to the front with its new expiry.
            names.retain(|(known, exp)| *exp > now && known.first() != chain.first());
            names.insert(0, (chain.clone(), expires));
            names.truncate(NAMES_PER_ADDRESS);
        }
        if self.entries.len() > self.capacity {
            self.evict(now);
        }
    }

    fn evict(&mut self, now: u64) {
        let latest = |names: &Vec<(NameChain, u64)>| names.iter().map(|n| n.1).max().unwrap_or(0);
        self.entries.retain(|_, names| latest(names) > now);
        let excess = self.entries.len().saturating_sub(self.capacity * 7 / 8);
        if excess > 0 {
            let mut by_expiry: Vec<_> = self.entries.iter().map(|(k, n)| (latest(n), *k)).collect();
            by_expiry.sort_unstable();
            for (_, key) in by_expiry.into_iter().take(excess) {
                self.entries.remove(&key);
            }
        }
    }

    /// The names the device `mac` (else the address `client`) resolved
    /// for `server` and still fresh, newest first. A device's own answers
    /// come first; answers to the address from before its MAC was known
    /// next (a name in both, once).
    pub fn lookup(
        &self,
        mac: Option<crate::wire::packet::Mac>,
        client: IpAddr,
        server: IpAddr,
        now: u64,
    ) -> Vec<NameChain> {
        let mut out: Vec<NameChain> = Vec::new();
        let askers = [mac.map(Asker::Device), Some(Asker::Address(client))];
        for asker in askers.into_iter().flatten() {
            for (chain, exp) in self.entries.get(&(asker, server)).into_iter().flatten() {
                if *exp > now && !out.iter().any(|c| c.first() == chain.first()) {
                    out.push(chain.clone());
                }
            }
        }
        out
    }
}

/// Real captured bytes and helpers shared with other modules' unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    /// The TLS ClientHello curl sent for https://api.ad.xiaomi.com/.
    pub const CURL_HELLO: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tls_client_hello_curl.bin"
    ));

    /// Offset of the server_name extension's type field in a ClientHello
    /// record (one record, one handshake message).
    pub fn sni_extension_offset(record: &[u8]) -> Option<usize> {
        let body = 5 + 4;
        let mut at = body + 2 + 32;
        at += 1 + *record.get(at)? as usize;
        at += 2 + u16::from_be_bytes([*record.get(at)?, *record.get(at + 1)?]) as usize;
        at += 1 + *record.get(at)? as usize;
        let end = at + 2 + u16::from_be_bytes([*record.get(at)?, *record.get(at + 1)?]) as usize;
        at += 2;
        while at + 4 <= end {
            let kind = u16::from_be_bytes([record[at], record[at + 1]]);
            if kind == 0 {
                return Some(at);
            }
            at += 4 + u16::from_be_bytes([record[at + 2], record[at + 3]]) as usize;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real DNS response captured from dnsmasq in the test network:
    // `dig @198.51.100.53 cdn.innocent.test` → CNAME tracking.miui.com →
    // A 203.0.113.10. See tests/fixtures/README.md.
    const CNAME_ANSWER: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dns_cname_answer.bin"
    ));
    // The TLS ClientHello curl sent for https://api.ad.xiaomi.com/.
    const CURL_HELLO: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tls_client_hello_curl.bin"
    ));

    #[test]
    fn dns_answer_keeps_the_cname_chain() {
        let a = parse_dns_response(CNAME_ANSWER).unwrap();
        assert_eq!(a.answers.len(), 1);
        let (ip, chain, _ttl) = &a.answers[0];
        assert_eq!(ip.to_string(), "203.0.113.10");
        assert_eq!(&chain[..], &["cdn.innocent.test", "tracking.miui.com"]);
    }

    /// A hostile resolver's names with terminal escapes and other bytes:
    /// kept (rules on their labels still match), never printable as such.
    #[test]
    fn dns_names_with_control_characters_are_escaped() {
        use simple_dns::rdata::{self, RData};
        use simple_dns::{Name, Packet, ResourceRecord, CLASS};
        let mut p = Packet::new_reply(7);
        p.questions.push(simple_dns::Question::new(
            Name::new_unchecked("x\x1b[2Jevil\x07.tracking.miui.com"),
            simple_dns::TYPE::A.into(),
            CLASS::IN.into(),
            false,
        ));
        p.answers.push(ResourceRecord::new(
            Name::new_unchecked("x\x1b[2Jevil\x07.tracking.miui.com"),
            CLASS::IN,
            60,
            RData::A(rdata::A {
                address: 0xcb00_710a,
            }),
        ));
        let bytes = p.build_bytes_vec().unwrap();
        let a = parse_dns_response(&bytes).unwrap();
        let name = &a.answers[0].1[0];
        assert_eq!(name, "x\\027\\0912jevil\\007.tracking.miui.com");
        assert!(name.bytes().all(|b| b.is_ascii_graphic()));
        assert!(crate::policy::rules::domain_within(name, "miui.com"));
    }

    /// An answer as a tracker's resolver writes it (the bytes of
    /// tests/tools/hostile_dns.py): an A record, an HTTPS record whose ECH
    /// value is not a well-formed ECHConfigList (simple-dns refused the
    /// whole message for it), then a record that runs past the end.
    #[test]
    fn a_malformed_record_hides_nothing_read_before_it() {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
        m.extend(b"\x08tracking\x04miui\x03com\x00\x00\x41\x00\x01");
        m.extend(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xcb\x00\x71\x0a");
        let mut params = b"\x00\x01\x00\x03\x02h2\x00\x04\x00\x04\xcb\x00\x71\x0b".to_vec();
        params.extend(b"\x00\x05\x00\x08ECHCONFG\x00\x06\x00\x10");
        params.extend([
            0x20, 0x01, 0x0d, 0xb8, 0x01, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ]);
        let rdata = [&b"\x00\x01\x00"[..], &params].concat();
        m.extend(b"\xc0\x0c\x00\x41\x00\x01\x00\x00\x00\x3c");
        m.extend((rdata.len() as u16).to_be_bytes());
        m.extend(&rdata);
        m.extend(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xcb");
        let a = parse_dns_response(&m).unwrap();
        let ips: Vec<String> = a.answers.iter().map(|(ip, _, _)| ip.to_string()).collect();
        assert_eq!(ips, ["203.0.113.10", "203.0.113.11", "2001:db8:113::10"]);
        assert_eq!(&a.question.unwrap()[..], &["tracking.miui.com"]);
        assert_eq!(question_name(&m[..20]), None, "the question itself cut");
        assert_eq!(
            question_name(&m[..40]).as_deref(),
            Some("tracking.miui.com")
        );
        // Compression loops and pointers past the end end the walk.
        let mut looped = m[..12].to_vec();
        looped.extend(b"\xc0\x0c");
        assert!(parse_dns_response(&looped).is_none());
    }

    #[test]
    fn dns_garbage_and_truncation_are_rejected_quietly() {
        for cut in 0..CNAME_ANSWER.len() {
            let _ = parse_dns_response(&CNAME_ANSWER[..cut]);
        }
        assert!(parse_dns_response(b"\xff\xff\xff").is_none());
    }

    #[test]
    fn sni_from_a_real_curl_client_hello() {
        assert_eq!(
            sniff_client_hello(CURL_HELLO),
            Sniffed::Name("api.ad.xiaomi.com".into())
        );
    }

    #[test]
    fn client_hello_cut_anywhere_asks_for_more_or_finds_the_name() {
        for cut in 1..CURL_HELLO.len() {
            match sniff_client_hello(&CURL_HELLO[..cut]) {
                Sniffed::Name(n) => assert_eq!(n, "api.ad.xiaomi.com"),
                Sniffed::NeedMore => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn http_host_header() {
        let req = b"GET /x HTTP/1.1\r\nUser-Agent: curl\r\nHost: Data.Mistat.Xiaomi.com:80\r\n\r\n";
        assert_eq!(
            sniff_client_hello(req),
            Sniffed::Name("data.mistat.xiaomi.com".into())
        );
        assert_eq!(
            sniff_client_hello(b"GET / HTTP/1.1\r\nUser-"),
            Sniffed::NeedMore
        );
        assert_eq!(sniff_client_hello(b"\x00\x01binary"), Sniffed::Unknown);
    }

    /// Requests as a hostile client writes them: hundreds of headers (4 KB)
    /// before Host, bare LF, an absolute-form target naming another host,
    /// odd spacing; cut anywhere, they ask for more, never name wrongly.
    #[test]
    fn http_host_however_the_request_is_written() {
        let mut padded = b"GET /x HTTP/1.1\r\n".to_vec();
        for i in 0..300 {
            padded.extend(format!("X-Pad-{i}: y\r\n").bytes());
        }
        padded.extend(b"hOsT :  tracking.miui.com:8080 \r\n\r\n");
        assert!(padded.len() > 4096);
        let cases: [(&[u8], Sniffed); 6] = [
            (&padded, Sniffed::Name("tracking.miui.com".into())),
            (
                b"GET / HTTP/1.1\nUser-Agent: x\nHost: api.ad.xiaomi.com\n\n",
                Sniffed::Name("api.ad.xiaomi.com".into()),
            ),
            (
                b"GET http://tracking.miui.com/p HTTP/1.1\r\nHost: benign.example\r\n\r\n",
                Sniffed::Name("tracking.miui.com".into()),
            ),
            (
                b"GET    /   HTTP/1.1\r\nHost:files.example.org\r\n\r\n",
                Sniffed::Name("files.example.org".into()),
            ),
            (b"GET / HTTP/1.0\r\nAccept: */*\r\n\r\n", Sniffed::NoName),
            (b"GET / HTTP/1.1\r\nHost: bad host\r\n\r\n", Sniffed::NoName),
        ];
        for (req, want) in cases {
            assert_eq!(http_host(req), want, "{}", String::from_utf8_lossy(req));
            for cut in 1..req.len() {
                match http_host(&req[..cut]) {
                    Sniffed::NeedMore => {}
                    got => assert_eq!(got, want, "cut at {cut}"),
                }
            }
        }
        assert_eq!(http_host(b"\x16\x03"), Sniffed::Unknown);
        assert_eq!(http_host(b"lowercase / HTTP/1.1\r\n"), Sniffed::Unknown);
    }

    #[test]
    fn cache_is_per_client_and_bounded() {
        let mut cache = NameCache::new(16);
        let phone: IpAddr = "192.168.77.2".parse().unwrap();
        let other: IpAddr = "192.168.77.3".parse().unwrap();
        let phone_v6: IpAddr = "fd00:77::2".parse().unwrap();
        let mac = [2, 0, 0, 0, 0x77, 2];
        let a = parse_dns_response(CNAME_ANSWER).unwrap();
        cache.learn(Asker::Address(phone), &a, 100);
        let server = a.answers[0].0;
        assert!(cache.lookup(None, phone, server, 101).len() == 1);
        assert!(cache.lookup(Some(mac), phone, server, 101).len() == 1);
        assert!(cache.lookup(None, other, server, 101).is_empty());
        assert!(cache
            .lookup(None, phone, server, 100 + 3600 + 86400)
            .is_empty());
        // Asked by the device over IPv4, used from its IPv6 address.
        cache.learn(Asker::Device(mac), &a, 100);
        assert!(cache.lookup(Some(mac), phone_v6, server, 101).len() == 1);
        assert!(cache.lookup(None, phone_v6, server, 101).is_empty());
        assert!(cache
            .lookup(Some([2, 0, 0, 0, 0x77, 3]), other, server, 101)
            .is_empty());
        for i in 0..100u32 {
            let ans = DnsAnswer {
                answers: vec![(
                    IpAddr::from(i.to_be_bytes()),
                    vec!["x".to_string()].into(),
                    i,
                )],
                question: None,
                other_names: Vec::new(),
            };
            cache.learn(Asker::Address(phone), &ans, 200);
        }
        assert!(cache.len() <= 16);
    }

    /// One address behind several names (a CDN): the last four are kept,
    /// newest first, each once, and each expires on its own.
    #[test]
    fn an_address_shared_by_names_keeps_them_all() {
        let mut cache = NameCache::new(16);
        let phone: IpAddr = "192.168.77.2".parse().unwrap();
        let cdn: IpAddr = "203.0.113.9".parse().unwrap();
        let answer = |name: &str, ttl: u32| DnsAnswer {
            answers: vec![(cdn, vec![name.to_string()].into(), ttl)],
            question: None,
            other_names: Vec::new(),
        };
        cache.grace_s = 0;
        for (i, name) in ["a.example", "b.example", "c.example", "a.example"]
            .iter()
            .enumerate()
        {
            cache.learn(Asker::Address(phone), &answer(name, 100), 10 + i as u64);
        }
        let first = |cache: &NameCache, now| -> Vec<String> {
            cache
                .lookup(None, phone, cdn, now)
                .iter()
                .map(|c| c[0].clone())
                .collect()
        };
        assert_eq!(first(&cache, 20), ["a.example", "c.example", "b.example"]);
        // b expires first (learned at 11 with TTL 100; c at 12).
        assert_eq!(first(&cache, 111), ["a.example", "c.example"]);
        for name in ["d", "e", "f", "g", "h"] {
            cache.learn(Asker::Address(phone), &answer(name, 100), 20);
        }
        assert_eq!(first(&cache, 21), ["h", "g", "f", "e"]);
    }
}
