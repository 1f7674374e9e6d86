//! QUIC Initial: the TLS ClientHello a QUIC client sends first, read for
//! its SNI. Initial packets are encrypted, but with keys anyone can derive
//! from the packet itself (RFC 9001 5.2: HKDF over the Destination
//! Connection ID with the version's public salt), so the router can read
//! the name as it reads a TCP ClientHello. Pure functions over the UDP
//! payload; the engine keeps the CRYPTO bytes of a flow between datagrams.
//!
//! What is written here: the long header and frame walk, header protection
//! removal, the HKDF-Expand-Label calls and Google's CHLO tag walk; the
//! cryptography itself is RustCrypto's (`aes-gcm`, `hkdf`, `sha2`). The GCM
//! tag is checked, so a datagram that only looks like an Initial names
//! nothing. No maintained crate reads the Initials of the drafts or of
//! Google QUIC without a whole QUIC stack.
//!
//! Versions, on any port:
//! - QUIC v1 (RFC 9000), v2 (RFC 9369), IETF drafts 22-34 (each range with
//!   its own salt: 22, 23-28, 29-32, 33-34 as v1) and Facebook's mvfst
//!   versions built on them (0xfaceb001 on draft 22, 0xfaceb002 and
//!   0xfaceb00e on draft 27).
//! - Google QUIC with IETF-style protected Initials: Q050 (a CHLO inside,
//!   Google's own salt), T050 and T051 (a TLS ClientHello inside). Their
//!   CRYPTO frames are Google's (type 0x08).
//! - Google QUIC with a plaintext CHLO on the crypto stream (stream 1):
//!   Q024-Q043 with the public header, Q046 with its long header. Their
//!   12-byte message hash is not checked (the CHLO's tag structure is), so
//!   a forged one names what it says, as a forged TCP ClientHello would.
//!
//! A ClientHello (or CHLO) spread over several Initial packets
//! (post-quantum key shares make Chrome's about 1.7 KB), with CRYPTO frames
//! in any order, is put together by the caller from `CryptoPieces`.
//!
//! Limits: coalesced packets after the first Initial of a datagram are not
//! read (clients put the Initial first); ECH hides the real name as in TCP;
//! greased versions (0x?a?a?a?a) and drafts before 22 name nothing.
//!
//! Over 600 lines: the Initial protection of every QUIC version read (v1,
//! v2, drafts, Google, mvfst) with its unit tests (40 % of the file).

use crate::wire::reader::Reader;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::aes::cipher::{BlockEncrypt, KeyInit};
use aes_gcm::aes::Aes128;
use aes_gcm::{Aes128Gcm, Nonce, Tag};

use crate::inspect::names::{sni_from_handshake, Sniffed};

pub const VERSION_1: u32 = 0x0000_0001;
pub const VERSION_2: u32 = 0x6b33_43cf;
const GOOGLE_Q050: u32 = u32::from_be_bytes(*b"Q050");
const GOOGLE_T050: u32 = u32::from_be_bytes(*b"T050");
const GOOGLE_T051: u32 = u32::from_be_bytes(*b"T051");
const GOOGLE_Q046: u32 = u32::from_be_bytes(*b"Q046");

const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];
/// draft-ietf-quic-tls-22 5.2.
const SALT_DRAFT_22: [u8; 20] = [
    0x7f, 0xbc, 0xdb, 0x0e, 0x7c, 0x66, 0xbb, 0xe9, 0x19, 0x3a, 0x96, 0xcd, 0x21, 0x51, 0x9e, 0xbd,
    0x7a, 0x02, 0x64, 0x4a,
];
/// draft-ietf-quic-tls-23 to -28 5.2.
const SALT_DRAFT_23: [u8; 20] = [
    0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65,
    0xbe, 0xf9, 0xf5, 0x02,
];
/// draft-ietf-quic-tls-29 to -32 5.2.
const SALT_DRAFT_29: [u8; 20] = [
    0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0,
    0x43, 0x90, 0xa8, 0x99,
];
/// Chromium's quic_versions.cc, Q050.
const SALT_Q050: [u8; 20] = [
    0x50, 0x45, 0x74, 0xef, 0xd0, 0x66, 0xfe, 0x2f, 0x9d, 0x94, 0x5c, 0xfc, 0xdb, 0xd3, 0xa7, 0xf0,
    0xd3, 0xb5, 0x6b, 0x45,
];
/// Chromium's quic_versions.cc, T050.
const SALT_T050: [u8; 20] = [
    0x7f, 0xf5, 0x79, 0xe5, 0xac, 0xd0, 0x72, 0x91, 0x55, 0x80, 0x30, 0x4c, 0x43, 0xa2, 0x36, 0x7c,
    0x60, 0x48, 0x83, 0x10,
];
/// Chromium's quic_versions.cc, T051.
const SALT_T051: [u8; 20] = [
    0x7a, 0x4e, 0xde, 0xf4, 0xe7, 0xcc, 0xee, 0x5f, 0xa4, 0x50, 0x6c, 0x19, 0x12, 0x4f, 0xc8, 0xcc,
    0xda, 0x6e, 0x03, 0x3d,
];

/// How a version protects its client Initial and frames its CRYPTO data.
#[derive(Clone, Copy)]
struct Protection {
    salt: &'static [u8; 20],
    /// HKDF label prefix: "quic" ("quic key"...), "quicv2" for v2.
    labels: &'static str,
    /// The long-header packet type of an Initial.
    initial_type: u8,
    /// Google's frames (CRYPTO is type 0x08) rather than the IETF's.
    google_frames: bool,
}

/// The protection of a version's Initial, when it is one we open.
fn protection(version: u32) -> Option<Protection> {
    let ietf = |salt| Protection {
        salt,
        labels: "quic",
        initial_type: 0,
        google_frames: false,
    };
    let google = |salt| Protection {
        google_frames: true,
        ..ietf(salt)
    };
    Some(match version {
        VERSION_1 => ietf(&SALT_V1),
        VERSION_2 => Protection {
            labels: "quicv2",
            initial_type: 1,
            ..ietf(&SALT_V2)
        },
        0xff00_0016 | 0xface_b001 => ietf(&SALT_DRAFT_22),
        0xff00_0017..=0xff00_001c | 0xface_b002 | 0xface_b00e => ietf(&SALT_DRAFT_23),
        0xff00_001d..=0xff00_0020 => ietf(&SALT_DRAFT_29),
        0xff00_0021 | 0xff00_0022 => ietf(&SALT_V1),
        GOOGLE_Q050 => google(&SALT_Q050),
        GOOGLE_T050 => google(&SALT_T050),
        GOOGLE_T051 => google(&SALT_T051),
        _ => return None,
    })
}

/// Largest ClientHello we put together (then the flow is decided anyway).
pub const MAX_CRYPTO: usize = 16 * 1024;

/// CRYPTO frame data of one flow's Initial packets: (offset, bytes).
pub type CryptoPieces = Vec<(u64, Vec<u8>)>;

fn varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut r = Reader::at(b, *at)?;
    let v = r.varint()?;
    *at = r.position();
    Some(v)
}

/// A varint that is a length or count, as `usize` where it fits (see
/// `Reader::varint_len`).
fn varint_len(b: &[u8], at: &mut usize) -> Option<usize> {
    let mut r = Reader::at(b, *at)?;
    let v = r.varint_len()?;
    *at = r.position();
    Some(v)
}

/// HKDF-Expand-Label (TLS 1.3) with an empty context.
fn expand_label(secret: &[u8], label: &str, out: &mut [u8]) -> Option<()> {
    let hk = hkdf::Hkdf::<sha2::Sha256>::from_prk(secret).ok()?;
    let full = format!("tls13 {label}");
    let mut info = Vec::with_capacity(4 + full.len());
    info.extend_from_slice(&(out.len() as u16).to_be_bytes());
    info.push(full.len() as u8);
    info.extend_from_slice(full.as_bytes());
    info.push(0);
    hk.expand(&info, out).ok()
}

struct Keys {
    key: [u8; 16],
    iv: [u8; 12],
    hp: [u8; 16],
}

/// The client's Initial keys under `p` for the Destination Connection ID.
fn client_keys(p: Protection, dcid: &[u8]) -> Option<Keys> {
    let (initial, _) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(p.salt), dcid);
    let mut client = [0u8; 32];
    expand_label(&initial, "client in", &mut client)?;
    let mut keys = Keys {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    let prefix = p.labels;
    expand_label(&client, &format!("{prefix} key"), &mut keys.key)?;
    expand_label(&client, &format!("{prefix} iv"), &mut keys.iv)?;
    expand_label(&client, &format!("{prefix} hp"), &mut keys.hp)?;
    Some(keys)
}

/// The version of a long-header packet.
fn long_header_version(payload: &[u8]) -> Option<u32> {
    let first = *payload.first()?;
    if first & 0xc0 != 0xc0 || payload.len() < 7 {
        return None;
    }
    Some(u32::from_be_bytes(payload[1..5].try_into().ok()?))
}

/// Whether a UDP payload starts with a client Initial of a version we read
/// (protected, or one of Google's plaintext CHLO packets).
pub fn is_initial(payload: &[u8]) -> bool {
    if gquic_plain_frames(payload).is_some() {
        return true;
    }
    let Some(version) = long_header_version(payload) else {
        return false;
    };
    let kind = (payload[0] >> 4) & 0x03;
    protection(version).is_some_and(|p| p.initial_type == kind)
}

/// A Google QUIC packet with a plaintext CHLO: where its frames start and
/// the version's number (24 for Q024).
fn gquic_plain_frames(payload: &[u8]) -> Option<(usize, u32)> {
    let first = *payload.first()?;
    if first & 0x80 != 0 {
        // Q046: long header, Initial type, 8-byte DCID and no SCID, 4-byte
        // packet number, then the 12-byte message hash.
        let version = u32::from_be_bytes(payload.get(1..5)?.try_into().ok()?);
        if version != GOOGLE_Q046 || first & 0x33 != 0x03 || *payload.get(5)? != 0x50 {
            return None;
        }
        return (payload.len() > 30).then_some((30, 46));
    }
    // Public header: flags (version present, 8-byte connection ID, 1-byte
    // packet number, no reset), connection ID, version, packet number, then
    // the 12-byte message hash.
    if first & 0x3b != 0x09 || first & 0x40 != 0 {
        return None;
    }
    let version = payload.get(9..13)?;
    if version[0] != b'Q' || !version[1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let number: u32 = std::str::from_utf8(&version[1..]).ok()?.parse().ok()?;
    if !(24..=43).contains(&number) {
        return None;
    }
    // Before Q034 a private-flags byte follows the hash.
    let at = 14 + 12 + usize::from(number < 34);
    (payload.len() > at).then_some((at, number))
}

/// Appends the crypto-stream data of a plaintext Google QUIC packet: STREAM
/// frames (flags 1FDOOOSS: fin, data length present, offset length, stream
/// ID length) of stream 1, after any PADDING. Integers are little-endian
/// before Q039.
fn read_gquic_plain(
    payload: &[u8],
    at: usize,
    number: u32,
    pieces: &mut CryptoPieces,
) -> Option<()> {
    let uint = |b: &[u8]| -> u64 {
        let fold = |v: u64, x: &u8| (v << 8) | u64::from(*x);
        if number < 39 {
            b.iter().rev().fold(0, fold)
        } else {
            b.iter().fold(0, fold)
        }
    };
    let mut at = at;
    let mut found = false;
    while at < payload.len() {
        let kind = payload[at];
        if kind == 0 {
            at += 1;
            continue;
        }
        if kind & 0x80 == 0 || kind & 0x20 == 0 {
            break; // not a STREAM frame with a length
        }
        let offset_len = match (kind >> 2) & 0x07 {
            0 => 0,
            n => usize::from(n) + 1,
        };
        let id_len = usize::from(kind & 0x03) + 1;
        at += 1;
        let id = uint(payload.get(at..at + id_len)?);
        at += id_len;
        let offset = uint(payload.get(at..at + offset_len)?);
        at += offset_len;
        let len = uint(payload.get(at..at + 2)?) as usize;
        at += 2;
        let data = payload.get(at..at + len)?;
        at += len;
        if id == 1 && offset.saturating_add(len as u64) <= MAX_CRYPTO as u64 {
            pieces.push((offset, data.to_vec()));
            found = true;
        }
    }
    found.then_some(())
}

/// Decrypts the first (Initial) packet of a datagram and appends its CRYPTO
/// frames to `pieces`. None when it is not a client Initial we can open.
pub fn read_initial(payload: &[u8], pieces: &mut CryptoPieces) -> Option<()> {
    if let Some((at, number)) = gquic_plain_frames(payload) {
        return read_gquic_plain(payload, at, number, pieces);
    }
    if !is_initial(payload) {
        return None;
    }
    let p = protection(long_header_version(payload)?)?;
    let mut at = 5;
    let dcid_len = *payload.get(at)? as usize;
    let dcid = payload.get(at + 1..at + 1 + dcid_len)?;
    at += 1 + dcid_len;
    let scid_len = *payload.get(at)? as usize;
    at += 1 + scid_len;
    let token_len = varint_len(payload, &mut at)?;
    at = at.checked_add(token_len)?;
    let length = varint_len(payload, &mut at)?;
    let pn_offset = at;
    let end = pn_offset.checked_add(length)?;
    if end > payload.len() || length < 20 {
        return None;
    }
    if dcid_len > 20 || scid_len > 20 {
        return None;
    }
    let keys = client_keys(p, dcid)?;

    // Header protection: the mask comes from 16 bytes sampled 4 bytes
    // after the packet number's start.
    let sample: [u8; 16] = payload
        .get(pn_offset + 4..pn_offset + 20)?
        .try_into()
        .ok()?;
    let mut mask = aes_gcm::aes::Block::from(sample);
    Aes128::new(&keys.hp.into()).encrypt_block(&mut mask);
    let first = payload[0] ^ (mask[0] & 0x0f);
    let pn_len = (first & 0x03) as usize + 1;
    let mut header = payload[..pn_offset + pn_len].to_vec();
    header[0] = first;
    let mut pn: u64 = 0;
    for i in 0..pn_len {
        header[pn_offset + i] ^= mask[1 + i];
        pn = (pn << 8) | header[pn_offset + i] as u64;
    }

    // Payload protection: AES-128-GCM, nonce = iv XOR packet number.
    let mut nonce = keys.iv;
    for (i, b) in pn.to_be_bytes().iter().enumerate() {
        nonce[4 + i] ^= b;
    }
    let sealed = payload.get(pn_offset + pn_len..end)?;
    let (ciphertext, tag) = sealed.split_at(sealed.len().checked_sub(16)?);
    let mut plain = ciphertext.to_vec();
    Aes128Gcm::new(&keys.key.into())
        .decrypt_in_place_detached(
            Nonce::from_slice(&nonce),
            &header,
            &mut plain,
            Tag::from_slice(tag),
        )
        .ok()?;

    if p.google_frames {
        parse_google_frames(&plain, pieces)
    } else {
        parse_frames(&plain, pieces)
    }
}

/// Walks the frames of a decrypted Initial payload and appends its CRYPTO
/// data to `pieces`. CRYPTO carries the ClientHello; PADDING, PING and ACK
/// may sit around it. Anything else is not a client's first flight.
pub fn parse_frames(plain: &[u8], pieces: &mut CryptoPieces) -> Option<()> {
    let mut at = 0;
    while at < plain.len() {
        let kind = varint(plain, &mut at)?;
        match kind {
            0x00 | 0x01 => {}
            0x02 | 0x03 => {
                varint(plain, &mut at)?; // largest acknowledged
                varint(plain, &mut at)?; // delay
                let ranges = varint(plain, &mut at)?;
                varint(plain, &mut at)?; // first range
                for _ in 0..ranges.min(256) {
                    varint(plain, &mut at)?;
                    varint(plain, &mut at)?;
                }
                if kind == 0x03 {
                    for _ in 0..3 {
                        varint(plain, &mut at)?;
                    }
                }
            }
            0x06 => {
                let offset = varint(plain, &mut at)?;
                let len = varint_len(plain, &mut at)?;
                let data = plain.get(at..at.checked_add(len)?)?;
                at += len;
                if offset.saturating_add(len as u64) <= MAX_CRYPTO as u64 {
                    pieces.push((offset, data.to_vec()));
                }
            }
            _ => break,
        }
    }
    Some(())
}

/// Walks the frames of a decrypted Q050/T050/T051 Initial and appends its
/// CRYPTO data: Google's CRYPTO frame is type 0x08 (offset, length, data),
/// and PADDING (0x00) may sit around it; anything else ends the walk.
fn parse_google_frames(plain: &[u8], pieces: &mut CryptoPieces) -> Option<()> {
    let mut at = 0;
    while at < plain.len() {
        match plain[at] {
            0x00 => at += 1,
            0x08 => {
                at += 1;
                let offset = varint(plain, &mut at)?;
                let len = usize::try_from(varint(plain, &mut at)?).ok()?;
                let data = plain.get(at..at.checked_add(len)?)?;
                at += len;
                if offset.saturating_add(len as u64) <= MAX_CRYPTO as u64 {
                    pieces.push((offset, data.to_vec()));
                }
            }
            _ => break,
        }
    }
    Some(())
}

/// The SNI tag of a Google CHLO: "CHLO", the tag count and two bytes of
/// padding, (tag, end offset) pairs, then the values; integers
/// little-endian, end offsets never decreasing.
fn chlo_sni(hs: &[u8]) -> Sniffed {
    let Some(head) = hs.get(..8) else {
        return Sniffed::NeedMore;
    };
    let count = usize::from(u16::from_le_bytes([head[4], head[5]]));
    let values = 8 + 8 * count;
    if values > MAX_CRYPTO {
        return Sniffed::Unknown;
    }
    let Some(tags) = hs.get(8..values) else {
        return Sniffed::NeedMore;
    };
    let mut start = 0usize;
    for entry in tags.chunks_exact(8) {
        let end = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]) as usize;
        if end < start || end > MAX_CRYPTO {
            return Sniffed::Unknown;
        }
        if &entry[..4] == b"SNI\0" {
            return match hs.get(values + start..values + end) {
                Some(name) => match crate::inspect::names::valid_hostname(name) {
                    Some(name) => Sniffed::Name(name),
                    None => Sniffed::NoName,
                },
                None => Sniffed::NeedMore,
            };
        }
        start = end;
    }
    Sniffed::NoName
}

/// The SNI from the CRYPTO bytes gathered so far: the contiguous run from
/// offset 0 read as a ClientHello.
pub fn sni(pieces: &CryptoPieces) -> Sniffed {
    let mut sorted: Vec<&(u64, Vec<u8>)> = pieces.iter().collect();
    sorted.sort_by_key(|p| p.0);
    let mut hs: Vec<u8> = Vec::new();
    for (offset, data) in sorted {
        let offset = *offset as usize;
        if offset > hs.len() {
            break; // a gap: later bytes wait for the missing ones
        }
        let skip = hs.len() - offset;
        if skip < data.len() {
            hs.extend_from_slice(&data[skip..]);
        }
    }
    if hs.is_empty() {
        return Sniffed::NeedMore;
    }
    let found = if hs.starts_with(b"CHLO") {
        chlo_sni(&hs)
    } else if b"CHLO".starts_with(&hs[..hs.len().min(4)]) {
        Sniffed::NeedMore
    } else {
        sni_from_handshake(&hs)
    };
    match found {
        Sniffed::NeedMore if hs.len() >= MAX_CRYPTO => Sniffed::Unknown,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first datagrams of aioquic clients connecting to
    /// tracking.miui.com (tests/fixtures/make-quic-initial.py).
    const V1: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/quic_initial_v1_aioquic.bin"
    ));
    const V2: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/quic_initial_v2_aioquic.bin"
    ));

    #[test]
    fn keys_match_rfc_9001_appendix_a() {
        // RFC 9001 A.1: DCID 0x8394c8f03e515708.
        let k = client_keys(
            protection(VERSION_1).unwrap(),
            &[0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08],
        )
        .unwrap();
        assert_eq!(
            k.key,
            [
                0x1f, 0x36, 0x96, 0x13, 0xdd, 0x76, 0xd5, 0x46, 0x77, 0x30, 0xef, 0xcb, 0xe3, 0xb1,
                0xa2, 0x2d
            ]
        );
        assert_eq!(
            k.iv,
            [0xfa, 0x04, 0x4b, 0x2f, 0x42, 0xa3, 0xfd, 0x3b, 0x46, 0xfb, 0x25, 0x5c]
        );
        assert_eq!(
            k.hp,
            [
                0x9f, 0x50, 0x44, 0x9e, 0x04, 0xa0, 0xe8, 0x10, 0x28, 0x3a, 0x1e, 0x99, 0x33, 0xad,
                0xed, 0xd2
            ]
        );
    }

    #[test]
    fn real_initials_name_their_server() {
        for (datagram, version) in [(V1, "v1"), (V2, "v2")] {
            assert!(is_initial(datagram), "{version}");
            let mut pieces = CryptoPieces::new();
            read_initial(datagram, &mut pieces).unwrap_or_else(|| panic!("{version}"));
            assert_eq!(
                sni(&pieces),
                Sniffed::Name("tracking.miui.com".into()),
                "{version}"
            );
        }
    }

    #[test]
    fn a_client_hello_split_and_reordered_is_put_together() {
        let mut pieces = CryptoPieces::new();
        read_initial(V1, &mut pieces).unwrap();
        let whole = pieces.concat_bytes();
        // The same bytes as three out-of-order pieces, one still missing.
        let (a, rest) = whole.split_at(40);
        let (b, c) = rest.split_at(60);
        let mut split: CryptoPieces = vec![(100, c.to_vec()), (0, a.to_vec())];
        assert_eq!(sni(&split), Sniffed::NeedMore);
        split.push((40, b.to_vec()));
        assert_eq!(sni(&split), Sniffed::Name("tracking.miui.com".into()));
    }

    /// A client Initial of `version` sealed as a client would (the
    /// inverse of `read_initial`): long header with a 4-byte packet
    /// number, AES-128-GCM under the version's keys, header protection.
    fn seal(version: u32, dcid: &[u8], frames: &[u8]) -> Vec<u8> {
        seal_with(
            protection(version).expect("a version we open"),
            version,
            dcid,
            frames,
        )
    }

    /// `seal` under the keys of `p`, whatever `version` the header says.
    fn seal_with(p: Protection, version: u32, dcid: &[u8], frames: &[u8]) -> Vec<u8> {
        let keys = client_keys(p, dcid).unwrap();
        let pn: u32 = 2;
        let length = 4 + frames.len() + 16;
        let mut packet = vec![0xc0 | (p.initial_type << 4) | 0x03];
        packet.extend_from_slice(&version.to_be_bytes());
        packet.push(dcid.len() as u8);
        packet.extend_from_slice(dcid);
        packet.push(0); // no SCID
        packet.push(0); // no token
        packet.extend_from_slice(&(0x4000 | length as u16).to_be_bytes());
        let pn_offset = packet.len();
        packet.extend_from_slice(&pn.to_be_bytes());
        let mut nonce = keys.iv;
        for (i, b) in u64::from(pn).to_be_bytes().iter().enumerate() {
            nonce[4 + i] ^= b;
        }
        let mut sealed = frames.to_vec();
        let tag = Aes128Gcm::new(&keys.key.into())
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &packet, &mut sealed)
            .unwrap();
        packet.extend_from_slice(&sealed);
        packet.extend_from_slice(&tag);
        let sample: [u8; 16] = packet[pn_offset + 4..pn_offset + 20].try_into().unwrap();
        let mut mask = aes_gcm::aes::Block::from(sample);
        Aes128::new(&keys.hp.into()).encrypt_block(&mut mask);
        packet[0] ^= mask[0] & 0x0f;
        for i in 0..4 {
            packet[pn_offset + i] ^= mask[1 + i];
        }
        packet
    }

    /// The real aioquic ClientHello as CRYPTO frames of `kind` (0x06 IETF,
    /// 0x08 Google), padded as a client pads its first Initial.
    fn hello_frames(kind: u8) -> Vec<u8> {
        let mut pieces = CryptoPieces::new();
        read_initial(V1, &mut pieces).unwrap();
        let hello = pieces.concat_bytes();
        let mut frames = vec![kind, 0x00];
        frames.extend_from_slice(&(0x4000 | hello.len() as u16).to_be_bytes());
        frames.extend_from_slice(&hello);
        frames.resize(1160, 0);
        frames
    }

    /// Every version family opens with its own salt and labels, on the
    /// real ClientHello: the IETF drafts, mvfst, Google's T051 (Google
    /// frames); one sealed under another version's salt opens under none.
    #[test]
    fn drafts_mvfst_and_google_initials_name_their_server() {
        let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
        for (version, google) in [
            (0xff00_0016, false),
            (0xff00_001b, false),
            (0xff00_001d, false),
            (0xff00_0020, false),
            (0xff00_0022, false),
            (0xface_b001, false),
            (0xface_b002, false),
            (0xface_b00e, false),
            (GOOGLE_T050, true),
            (GOOGLE_T051, true),
            (VERSION_2, false),
        ] {
            let frames = hello_frames(if google { 0x08 } else { 0x06 });
            let datagram = seal(version, &dcid, &frames);
            assert!(is_initial(&datagram), "{version:08x}");
            let mut pieces = CryptoPieces::new();
            read_initial(&datagram, &mut pieces).unwrap_or_else(|| panic!("{version:08x}"));
            assert_eq!(
                sni(&pieces),
                Sniffed::Name("tracking.miui.com".into()),
                "{version:08x}"
            );
        }
        // Sealed with another version's salt: the tag check fails.
        for (sealed_as, says) in [
            (0xff00_001d, 0xff00_001b),
            (VERSION_1, 0xff00_001d),
            (0xff00_001b, GOOGLE_T051),
        ] {
            let p = protection(sealed_as).unwrap();
            let datagram = seal_with(p, says, &dcid, &hello_frames(0x06));
            let mut pieces = CryptoPieces::new();
            assert!(
                read_initial(&datagram, &mut pieces).is_none(),
                "{sealed_as:08x} as {says:08x}"
            );
            assert!(pieces.is_empty());
        }
        // Greased and unknown versions, drafts before 22: not read.
        for version in [0x1a2a_3a4a, 0xff00_0015, 0x5130_3531, 0x0000_0000] {
            let mut datagram = seal(VERSION_1, &dcid, &hello_frames(0x06));
            datagram[1..5].copy_from_slice(&u32::to_be_bytes(version));
            assert!(!is_initial(&datagram), "{version:08x}");
        }
    }

    /// A CHLO as Google's clients write it: tag count, padding, (tag, end
    /// offset) pairs, values.
    fn chlo(tags: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut out = b"CHLO".to_vec();
        out.extend_from_slice(&(tags.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        let mut end = 0u32;
        for (tag, value) in tags {
            end += value.len() as u32;
            out.extend_from_slice(*tag);
            out.extend_from_slice(&end.to_le_bytes());
        }
        for (_, value) in tags {
            out.extend_from_slice(value);
        }
        out
    }

    #[test]
    fn a_google_chlo_names_its_server_in_every_packet_form() {
        let hello = chlo(&[
            (b"PAD\0", &[0x2d; 40]),
            (b"SNI\0", b"www.youtube.com"),
            (b"VER\0", b"Q043"),
        ]);
        // Q050: protected like an IETF Initial, Google's CRYPTO frame.
        let mut frames = vec![0x08, 0x00];
        frames.extend_from_slice(&(0x4000 | hello.len() as u16).to_be_bytes());
        frames.extend_from_slice(&hello);
        frames.resize(1160, 0);
        let q050 = seal(GOOGLE_Q050, &[7; 8], &frames);
        // Q043: public header (version, 8-byte connection ID, 1-byte packet
        // number), 12-byte hash, a STREAM frame of stream 1 (offset 0, a
        // 2-byte length, big-endian from Q039).
        let stream_frame = |little: bool| {
            let mut f = vec![0xa0, 0x01];
            let len = hello.len() as u16;
            f.extend_from_slice(&if little {
                len.to_le_bytes()
            } else {
                len.to_be_bytes()
            });
            f.extend_from_slice(&hello);
            f
        };
        let mut q043 = vec![0x09];
        q043.extend_from_slice(&[1; 8]);
        q043.extend_from_slice(b"Q043");
        q043.push(1);
        q043.extend_from_slice(&[0xee; 12]);
        q043.extend_from_slice(&stream_frame(false));
        // Q035: the same, little-endian; Q033: a private-flags byte too.
        let mut q035 = q043.clone();
        q035[9..13].copy_from_slice(b"Q035");
        q035.truncate(26);
        q035.extend_from_slice(&stream_frame(true));
        let mut q033 = q035.clone();
        q033[9..13].copy_from_slice(b"Q033");
        q033.insert(26, 0);
        // Q046: long header, 8-byte DCID, 4-byte packet number, hash.
        let mut q046 = vec![0xc3];
        q046.extend_from_slice(b"Q046");
        q046.push(0x50);
        q046.extend_from_slice(&[1; 8]);
        q046.extend_from_slice(&[0, 0, 0, 1]);
        q046.extend_from_slice(&[0xee; 12]);
        q046.extend_from_slice(&stream_frame(false));
        for (what, datagram) in [
            ("Q050", &q050),
            ("Q043", &q043),
            ("Q035", &q035),
            ("Q033", &q033),
            ("Q046", &q046),
        ] {
            assert!(is_initial(datagram), "{what}");
            let mut pieces = CryptoPieces::new();
            read_initial(datagram, &mut pieces).unwrap_or_else(|| panic!("{what}"));
            assert_eq!(
                sni(&pieces),
                Sniffed::Name("www.youtube.com".into()),
                "{what}"
            );
            // Cut anywhere: never a panic, never another name.
            for cut in 0..datagram.len() {
                let mut pieces = CryptoPieces::new();
                if read_initial(&datagram[..cut], &mut pieces).is_some() {
                    match sni(&pieces) {
                        Sniffed::Name(n) => assert_eq!(n, "www.youtube.com", "{what} cut at {cut}"),
                        Sniffed::NeedMore | Sniffed::NoName | Sniffed::Unknown => {}
                    }
                }
            }
        }
    }

    #[test]
    fn hostile_chlos_name_nothing_or_ask_for_more() {
        let whole = chlo(&[(b"PAD\0", &[0; 8]), (b"SNI\0", b"a.example")]);
        for cut in 0..whole.len() {
            assert_eq!(chlo_sni(&whole[..cut]), Sniffed::NeedMore, "cut at {cut}");
        }
        assert_eq!(chlo_sni(&whole), Sniffed::Name("a.example".into()));
        // End offsets going backwards, or past what a CHLO may hold.
        let mut backwards = whole.clone();
        backwards[12..16].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(chlo_sni(&backwards), Sniffed::Unknown);
        let mut huge = whole.clone();
        huge[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(chlo_sni(&huge), Sniffed::Unknown);
        let mut many = whole.clone();
        many[4..6].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(chlo_sni(&many), Sniffed::Unknown);
        // No SNI tag; an SNI that is no host name.
        assert_eq!(chlo_sni(&chlo(&[(b"PAD\0", &[0; 8])])), Sniffed::NoName);
        assert_eq!(
            chlo_sni(&chlo(&[(b"SNI\0", b"evil\x1b[2J.example")])),
            Sniffed::NoName
        );
        assert_eq!(chlo_sni(&chlo(&[])), Sniffed::NoName);
    }

    trait Concat {
        fn concat_bytes(&self) -> Vec<u8>;
    }
    impl Concat for CryptoPieces {
        fn concat_bytes(&self) -> Vec<u8> {
            let mut v = self.clone();
            v.sort_by_key(|p| p.0);
            v.into_iter().flat_map(|p| p.1).collect()
        }
    }

    #[test]
    fn damaged_or_foreign_datagrams_name_nothing() {
        let mut pieces = CryptoPieces::new();
        // The Initial is the datagram's first 522 bytes (padding follows).
        for i in [0usize, 1, 5, 7, 20, 30, 300, 521] {
            let mut bad = V1.to_vec();
            bad[i] ^= 0x01;
            pieces.clear();
            let opened = read_initial(&bad, &mut pieces).is_some();
            // A flipped bit anywhere the tag covers fails it.
            assert!(!opened || pieces.is_empty(), "flip at {i}");
        }
        for cut in 0..V1.len() {
            let _ = read_initial(&V1[..cut], &mut CryptoPieces::new());
        }
        assert!(!is_initial(b"GET / HTTP/1.1"));
        assert!(!is_initial(&[]));
        // A short-header (1-RTT) packet.
        assert!(!is_initial(&[0x40, 1, 2, 3, 4, 5, 6, 7]));
    }
}
