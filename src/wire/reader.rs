//! The one reader for untrusted bytes, after rustls's `codec::Reader` and
//! smoltcp's checked views: a cursor over a slice where every read is
//! bounds-checked and gives None past the end, never a panic, and where
//! lengths from the wire become `usize` only by checked conversion (a
//! 32-bit router's `usize` does not hold every u64). The TLS ClientHello
//! walker, the DNS walkers (names, sinkhole), QUIC Initials and the
//! netlink message and attribute walks all read through it.
//!
//! Written by hand: it is forty lines, and the crates that have one
//! (rustls, smoltcp) do not export it.

/// A cursor over `buf`, at `at`.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, at: 0 }
    }

    /// A reader of `buf` from offset `at`; None past its end.
    pub fn at(buf: &'a [u8], at: usize) -> Option<Reader<'a>> {
        (at <= buf.len()).then_some(Reader { buf, at })
    }

    /// How far into the buffer it has read.
    pub fn position(&self) -> usize {
        self.at
    }

    /// What is left to read.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.at..]
    }

    pub fn left(&self) -> usize {
        self.buf.len() - self.at
    }

    pub fn is_empty(&self) -> bool {
        self.left() == 0
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let bytes = self.buf.get(self.at..end)?;
        self.at = end;
        Some(bytes)
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    /// The next `n` bytes as a reader of their own.
    pub fn sub(&mut self, n: usize) -> Option<Reader<'a>> {
        self.take(n).map(Reader::new)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    pub fn be16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.array()?))
    }

    pub fn be24(&mut self) -> Option<u32> {
        let [a, b, c] = self.array()?;
        Some(u32::from_be_bytes([0, a, b, c]))
    }

    pub fn be32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.array()?))
    }

    /// Native byte order (netlink headers).
    pub fn ne16(&mut self) -> Option<u16> {
        Some(u16::from_ne_bytes(self.array()?))
    }

    pub fn ne32(&mut self) -> Option<u32> {
        Some(u32::from_ne_bytes(self.array()?))
    }

    /// A QUIC variable-length integer (RFC 9000 16): 1, 2, 4 or 8 bytes,
    /// the first two bits saying which.
    pub fn varint(&mut self) -> Option<u64> {
        let first = *self.buf.get(self.at)?;
        let bytes = self.take(1 << (first >> 6))?;
        Some(
            bytes[1..]
                .iter()
                .fold(u64::from(first & 0x3f), |v, b| (v << 8) | u64::from(*b)),
        )
    }

    /// A varint that is a length or count: None where it does not fit this
    /// platform's `usize` (`as usize` would cut 2^32 + 5 to 5 on a 32-bit
    /// router and read on from the wrong place).
    pub fn varint_len(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok()
    }

    /// A one-byte length, then that many bytes.
    pub fn u8_prefixed(&mut self) -> Option<Reader<'a>> {
        let n = self.u8()?;
        self.sub(usize::from(n))
    }

    /// A two-byte (big-endian) length, then that many bytes.
    pub fn be16_prefixed(&mut self) -> Option<Reader<'a>> {
        let n = self.be16()?;
        self.sub(usize::from(n))
    }
}

/// A length from the wire as `usize`, or None where this platform's
/// `usize` cannot hold it.
pub fn wire_len(n: impl TryInto<usize>) -> Option<usize> {
    n.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_read_is_checked() {
        let mut r = Reader::new(&[1, 0, 2, 0, 0, 3, 9]);
        assert_eq!(r.u8(), Some(1));
        assert_eq!(r.be16(), Some(2));
        assert_eq!(r.be24(), Some(3));
        assert_eq!(r.position(), 6);
        assert_eq!(r.be16(), None, "past the end");
        assert_eq!(r.position(), 6, "a failed read moves nothing");
        assert_eq!(r.take(usize::MAX), None, "no overflow");
        assert_eq!(r.rest(), &[9]);
        assert!(Reader::at(&[1], 2).is_none());
        assert_eq!(Reader::at(&[1], 1).map(|r| r.is_empty()), Some(true));
    }

    #[test]
    fn quic_varints_of_rfc_9000_appendix_a() {
        for (bytes, value) in [
            (
                &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c][..],
                151_288_809_941_952_652,
            ),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
            (&[0x40, 0x25], 37),
        ] {
            assert_eq!(Reader::new(bytes).varint(), Some(value), "{bytes:?}");
        }
        assert_eq!(Reader::new(&[0x80, 1, 2]).varint(), None, "cut");
        // 2^32 + 5: a length no 32-bit usize holds.
        let big = [0xc0, 0, 0, 1, 0, 0, 0, 5];
        assert_eq!(
            Reader::new(&big).varint_len(),
            usize::try_from(0x1_0000_0005u64).ok()
        );
    }

    #[test]
    fn length_prefixed_parts_stay_inside_their_bounds() {
        let mut r = Reader::new(&[0, 2, 7, 8, 9]);
        let mut inner = r.be16_prefixed().unwrap();
        assert_eq!(
            (inner.u8(), inner.u8(), inner.u8()),
            (Some(7), Some(8), None)
        );
        assert_eq!(r.rest(), &[9]);
        assert!(Reader::new(&[3, 1]).u8_prefixed().is_none());
        assert_eq!(wire_len(u64::MAX).is_some(), usize::BITS == 64);
    }
}
