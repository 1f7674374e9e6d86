//! QUIC Initial: the TLS ClientHello a QUIC client sends first, read for
//! its SNI. Initial packets are encrypted, but with keys anyone can derive
//! from the packet itself (RFC 9001 5.2: HKDF over the Destination
//! Connection ID with the version's public salt), so the router can read
//! the name as it reads a TCP ClientHello. Pure functions over the UDP
//! payload; the engine keeps the CRYPTO bytes of a flow between datagrams.
//!
//! What is written here: the long header and frame walk, header protection
//! removal and the HKDF-Expand-Label calls; the cryptography itself is
//! RustCrypto's (`aes-gcm`, `hkdf`, `sha2`). The GCM tag is checked, so a
//! datagram that only looks like an Initial names nothing.
//!
//! Versions: QUIC v1 (RFC 9000) and v2 (RFC 9369). A ClientHello spread
//! over several Initial packets (post-quantum key shares make Chrome's about
//! 1.7 KB), with CRYPTO frames in any order, is put together by the caller
//! from `CryptoPieces`.
//!
//! Limits: coalesced packets after the first Initial of a datagram are not
//! read (clients put the Initial first); ECH hides the real name as in TCP.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::aes::cipher::{BlockEncrypt, KeyInit};
use aes_gcm::aes::Aes128;
use aes_gcm::{Aes128Gcm, Nonce, Tag};

use crate::attribution::{sni_from_handshake, Sniffed};

pub const VERSION_1: u32 = 0x0000_0001;
pub const VERSION_2: u32 = 0x6b33_43cf;

const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];

/// Largest ClientHello we put together (then the flow is decided anyway).
pub const MAX_CRYPTO: usize = 16 * 1024;

/// CRYPTO frame data of one flow's Initial packets: (offset, bytes).
pub type CryptoPieces = Vec<(u64, Vec<u8>)>;

fn varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let first = *b.get(*at)?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(*at..*at + len)?;
    let mut v = (first & 0x3f) as u64;
    for x in &bytes[1..] {
        v = (v << 8) | *x as u64;
    }
    *at += len;
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

/// The client's Initial keys for `version` and the Destination Connection ID.
fn client_keys(version: u32, dcid: &[u8]) -> Option<Keys> {
    let (salt, prefix) = match version {
        VERSION_1 => (&SALT_V1, "quic"),
        VERSION_2 => (&SALT_V2, "quicv2"),
        _ => return None,
    };
    let (initial, _) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(salt), dcid);
    let mut client = [0u8; 32];
    expand_label(&initial, "client in", &mut client)?;
    let mut keys = Keys {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    expand_label(&client, &format!("{prefix} key"), &mut keys.key)?;
    expand_label(&client, &format!("{prefix} iv"), &mut keys.iv)?;
    expand_label(&client, &format!("{prefix} hp"), &mut keys.hp)?;
    Some(keys)
}

/// Whether a UDP payload starts with a client Initial of a version we read.
pub fn is_initial(payload: &[u8]) -> bool {
    let Some(first) = payload.first() else {
        return false;
    };
    if first & 0xc0 != 0xc0 || payload.len() < 7 {
        return false;
    }
    let version = u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
    let kind = (first >> 4) & 0x03;
    matches!((version, kind), (VERSION_1, 0) | (VERSION_2, 1))
}

/// Decrypts the first (Initial) packet of a datagram and appends its CRYPTO
/// frames to `pieces`. None when it is not a client Initial we can open.
pub fn read_initial(payload: &[u8], pieces: &mut CryptoPieces) -> Option<()> {
    if !is_initial(payload) {
        return None;
    }
    let version = u32::from_be_bytes(payload[1..5].try_into().ok()?);
    let mut at = 5;
    let dcid_len = *payload.get(at)? as usize;
    let dcid = payload.get(at + 1..at + 1 + dcid_len)?;
    at += 1 + dcid_len;
    let scid_len = *payload.get(at)? as usize;
    at += 1 + scid_len;
    let token_len = varint(payload, &mut at)? as usize;
    at = at.checked_add(token_len)?;
    let length = varint(payload, &mut at)? as usize;
    let pn_offset = at;
    let end = pn_offset.checked_add(length)?;
    if end > payload.len() || length < 20 {
        return None;
    }
    let keys = client_keys(version, dcid)?;

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

    parse_frames(&plain, pieces)
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
                let len = varint(plain, &mut at)? as usize;
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
    match sni_from_handshake(&hs) {
        Sniffed::NeedMore if hs.len() >= MAX_CRYPTO => Sniffed::Unknown,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first datagrams of aioquic clients connecting to
    /// tracking.miui.com (tests/fixtures/make-quic-initial.py).
    const V1: &[u8] = include_bytes!("../tests/fixtures/quic_initial_v1_aioquic.bin");
    const V2: &[u8] = include_bytes!("../tests/fixtures/quic_initial_v2_aioquic.bin");

    #[test]
    fn keys_match_rfc_9001_appendix_a() {
        // RFC 9001 A.1: DCID 0x8394c8f03e515708.
        let k = client_keys(VERSION_1, &[0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08]).unwrap();
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
