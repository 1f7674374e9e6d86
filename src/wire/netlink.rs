//! Netlink framing shared by the NFQUEUE engine (`nfqueue`) and the conntrack
//! reader (`conntrack`): message headers, attribute walking and building, and a
//! non-blocking `NETLINK_NETFILTER` socket registered with tokio.
//!
//! Hand-written on purpose: the maintained netlink crates (netlink-packet-*)
//! have no nfnetlink_queue or ctnetlink codecs, and the framing is small.
//! Byte order: the netlink header and attribute headers are host order; the
//! payload of every nfnetlink attribute is big-endian (network order).
//!
//! Limits: only what nfnetlink needs; no generic-netlink family resolution.

use super::reader::{wire_len, Reader};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use rustix::net::{netlink, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use tokio::io::unix::AsyncFd;

pub const NLMSG_HDRLEN: usize = 16;
pub const NLA_HDRLEN: usize = 4;
pub const NFGENMSG_LEN: usize = 4;

pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;

pub const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

const SOL_NETLINK: libc::c_int = 270;
const NETLINK_NO_ENOBUFS: libc::c_int = 5;

/// Round up to the 4-byte netlink alignment.
pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One netlink message borrowed from a receive buffer.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    /// Everything after the 16-byte header.
    pub body: &'a [u8],
}

impl<'a> Message<'a> {
    /// For nfnetlink messages: the nfgenmsg header (family, version,
    /// res_id) and the attribute area after it.
    pub fn nfgen(&self) -> Option<(u8, u16, &'a [u8])> {
        let mut r = Reader::new(self.body);
        let (family, _version, res_id) = (r.u8()?, r.u8()?, r.be16()?);
        Some((family, res_id, r.rest()))
    }

    /// For `NLMSG_ERROR`: the errno (0 = ack) and the sequence it answers.
    pub fn error_code(&self) -> Option<i32> {
        if self.kind != NLMSG_ERROR {
            return None;
        }
        // The errno is a C int in native order: the same four bytes.
        Some(i32::from_ne_bytes(
            Reader::new(self.body).ne32()?.to_ne_bytes(),
        ))
    }
}

/// Iterates over the messages packed in one datagram. Stops (without
/// panicking) at the first malformed length.
pub struct Messages<'a> {
    rest: &'a [u8],
}

pub fn messages(buf: &[u8]) -> Messages<'_> {
    Messages { rest: buf }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Message<'a>;
    fn next(&mut self) -> Option<Message<'a>> {
        let mut r = Reader::new(self.rest);
        let (Some(len), Some(kind), Some(flags), Some(seq), Some(_pid)) =
            (r.ne32(), r.ne16(), r.ne16(), r.ne32(), r.ne32())
        else {
            self.rest = &[];
            return None;
        };
        let body = wire_len(len)
            .and_then(|len| len.checked_sub(NLMSG_HDRLEN))
            .and_then(|n| r.take(n));
        let Some(body) = body else {
            self.rest = &[];
            return None;
        };
        let msg = Message {
            kind,
            flags,
            seq,
            body,
        };
        // Messages are 4-byte aligned; the last one's padding may be cut.
        let _ = r.skip(align4(r.position()) - r.position());
        self.rest = r.rest();
        Some(msg)
    }
}

/// One attribute: its type (flags stripped) and payload.
#[derive(Debug, Clone, Copy)]
pub struct Attr<'a> {
    pub kind: u16,
    pub data: &'a [u8],
}

impl<'a> Attr<'a> {
    pub fn be_u16(&self) -> Option<u16> {
        Reader::new(self.data).be16()
    }
    pub fn be_u32(&self) -> Option<u32> {
        Reader::new(self.data).be32()
    }
    pub fn be_u64(&self) -> Option<u64> {
        Some(u64::from_be_bytes(self.data.get(..8)?.try_into().ok()?))
    }
    pub fn nested(&self) -> Attrs<'a> {
        attrs(self.data)
    }
}

/// Iterates over a run of attributes; stops at the first malformed one.
pub struct Attrs<'a> {
    rest: &'a [u8],
}

pub fn attrs(buf: &[u8]) -> Attrs<'_> {
    Attrs { rest: buf }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Attr<'a>;
    fn next(&mut self) -> Option<Attr<'a>> {
        let mut r = Reader::new(self.rest);
        let (Some(len), Some(kind)) = (r.ne16(), r.ne16()) else {
            self.rest = &[];
            return None;
        };
        let Some(data) = usize::from(len)
            .checked_sub(NLA_HDRLEN)
            .and_then(|n| r.take(n))
        else {
            self.rest = &[];
            return None;
        };
        let _ = r.skip(align4(r.position()) - r.position());
        self.rest = r.rest();
        Some(Attr {
            kind: kind & NLA_TYPE_MASK,
            data,
        })
    }
}

/// Appends netlink messages to a reusable buffer.
pub struct MessageWriter<'b> {
    buf: &'b mut Vec<u8>,
    start: usize,
    nests: Vec<usize>,
}

impl<'b> MessageWriter<'b> {
    /// Starts an nfnetlink message: netlink header plus nfgenmsg.
    pub fn nfnl(
        buf: &'b mut Vec<u8>,
        kind: u16,
        flags: u16,
        seq: u32,
        family: u8,
        res_id: u16,
    ) -> Self {
        let start = buf.len();
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.push(family);
        buf.push(0); // NFNETLINK_V0
        buf.extend_from_slice(&res_id.to_be_bytes());
        MessageWriter {
            buf,
            start,
            nests: Vec::new(),
        }
    }

    pub fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Self {
        let len = NLA_HDRLEN + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    pub fn attr_be32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.attr(kind, &value.to_be_bytes())
    }

    pub fn begin_nested(&mut self, kind: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    pub fn end_nested(&mut self) -> &mut Self {
        if let Some(at) = self.nests.pop() {
            let len = (self.buf.len() - at) as u16;
            self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    /// Writes the final length into the header.
    pub fn finish(self) {
        let len = (self.buf.len() - self.start) as u32;
        self.buf[self.start..self.start + 4].copy_from_slice(&len.to_ne_bytes());
    }
}

/// Which netlink protocol a socket speaks.
#[derive(Clone, Copy, Debug)]
pub enum Protocol {
    Netfilter,
    Route,
}

/// A non-blocking netlink socket bound to the kernel, driven by tokio.
pub struct Socket {
    fd: AsyncFd<OwnedFd>,
}

impl Socket {
    /// Opens and binds a socket; `groups` is the multicast group bitmask.
    pub fn open(protocol: Protocol, groups: u32) -> io::Result<Self> {
        // NETLINK_ROUTE is protocol 0, which rustix spells `None`.
        let proto = match protocol {
            Protocol::Netfilter => Some(netlink::NETFILTER),
            Protocol::Route => None,
        };
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            proto,
        )?;
        rustix::net::bind(&fd, &netlink::SocketAddrNetlink::new(0, groups))?;
        // SAFETY: `fd` is an open socket owned by the AsyncFd from here on,
        // and OwnedFd always returns that same descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Socket { fd })
    }

    /// Asks for a large receive buffer (beyond rmem_max when we have
    /// CAP_NET_ADMIN in the initial namespace) and for no ENOBUFS errors: a
    /// burst that overflows the buffer then loses packets (the queue drops
    /// them) instead of failing every later `recv`. Returns the limit the
    /// kernel granted (SO_RCVBUF: twice the size asked, for overhead).
    pub fn tune_for_queue(&self, rcvbuf: usize) -> io::Result<usize> {
        let fd = self.fd.get_ref();
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(fd, rcvbuf).is_err() {
            rustix::net::sockopt::set_socket_recv_buffer_size(fd, rcvbuf)?;
        }
        let granted = rustix::net::sockopt::socket_recv_buffer_size(fd)?;
        let one: libc::c_int = 1;
        // SAFETY: a valid fd and a pointer to a c_int that outlives the call.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                SOL_NETLINK,
                NETLINK_NO_ENOBUFS,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(granted)
    }

    /// Sends one buffer of (possibly several) messages as one datagram
    /// (the kernel handles it whole or refuses it). A full socket buffer
    /// (EAGAIN, ENOBUFS: the kernel processes netlink requests inline, so
    /// this is memory pressure) is retried a few times, 1 ms apart, then
    /// reported: never a busy loop, at most ~3 ms in the event loop.
    pub fn send(&self, buf: &[u8]) -> io::Result<()> {
        let mut tries = 0;
        loop {
            match rustix::net::send(self.fd.get_ref(), buf, SendFlags::empty()) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::NOBUFS) if tries < 3 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Receives one datagram without waiting; `Ok(None)` when none is ready.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            match rustix::net::recv(self.fd.get_ref(), &mut *buf, RecvFlags::DONTWAIT) {
                Ok((_, n)) => return Ok(Some(n.min(buf.len()))),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => return Ok(None),
                // ENOBUFS can still be reported once if NO_ENOBUFS failed.
                Err(rustix::io::Errno::NOBUFS) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waits until a datagram is ready, then receives it.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match self.try_recv(buf)? {
                Some(n) => return Ok(n),
                None => guard.clear_ready(),
            }
        }
    }

    /// Waits for at least one datagram, then hands every ready datagram
    /// (at most `max`) to `each`; returns how many it handled. Draining a
    /// burst before answering is what lets verdicts go out batched.
    pub async fn recv_burst(
        &self,
        buf: &mut [u8],
        max: usize,
        mut each: impl FnMut(&[u8]),
    ) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut handled = 0;
            while handled < max {
                match self.try_recv(buf)? {
                    Some(len) => {
                        each(&buf[..len]);
                        handled += 1;
                    }
                    None => {
                        guard.clear_ready();
                        break;
                    }
                }
            }
            if handled > 0 {
                return Ok(handled);
            }
        }
    }

    /// Sends `request` and collects every reply message until the kernel's
    /// ack or `NLMSG_DONE`, handing each non-control message to `each`.
    /// A negative errno in an error message becomes an `io::Error`.
    pub async fn request(
        &self,
        request: &[u8],
        seq: u32,
        buf: &mut [u8],
        mut each: impl FnMut(Message<'_>),
    ) -> io::Result<()> {
        self.send(request)?;
        loop {
            let n = self.recv(buf).await?;
            for msg in messages(&buf[..n]) {
                if msg.seq != seq {
                    continue;
                }
                match msg.kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let code = msg.error_code().unwrap_or(-libc::EIO);
                        return if code == 0 {
                            Ok(())
                        } else {
                            Err(io::Error::from_raw_os_error(-code))
                        };
                    }
                    NLMSG_NOOP => {}
                    _ => {
                        each(msg);
                        if msg.flags & NLM_F_MULTI == 0 {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}

/// Test support: re-frames netlink messages captured on a little-endian
/// host (the fixtures in `tests/fixtures/`) into the running host's order,
/// so the same real bytes are decoded on big-endian MIPS under qemu.
/// Message and attribute headers are host order; attribute payloads are
/// network order and stay as they are. Nested attributes (NLA_F_NESTED)
/// are walked too. `family_header_len` is the fixed header before the
/// attributes (4 for nfgenmsg, 12 for rtnetlink's ndmsg); it is left as is.
#[cfg(test)]
pub fn le_capture_to_host_order(le: &[u8], family_header_len: usize) -> Vec<u8> {
    fn swap16(b: &mut [u8]) {
        let v = u16::from_le_bytes([b[0], b[1]]);
        b[..2].copy_from_slice(&v.to_ne_bytes());
    }
    fn swap32(b: &mut [u8]) {
        let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        b[..4].copy_from_slice(&v.to_ne_bytes());
    }
    fn attrs_in_place(buf: &mut [u8]) {
        let mut at = 0;
        while at + NLA_HDRLEN <= buf.len() {
            let len = u16::from_le_bytes([buf[at], buf[at + 1]]) as usize;
            let kind = u16::from_le_bytes([buf[at + 2], buf[at + 3]]);
            if len < NLA_HDRLEN || at + len > buf.len() {
                return;
            }
            swap16(&mut buf[at..]);
            swap16(&mut buf[at + 2..]);
            if kind & NLA_F_NESTED != 0 {
                attrs_in_place(&mut buf[at + NLA_HDRLEN..at + len]);
            }
            at += align4(len);
        }
    }
    let mut out = le.to_vec();
    let mut at = 0;
    while at + NLMSG_HDRLEN <= out.len() {
        let len = u32::from_le_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]) as usize;
        if len < NLMSG_HDRLEN || at + len > out.len() {
            break;
        }
        swap32(&mut out[at..]);
        swap16(&mut out[at + 4..]);
        swap16(&mut out[at + 6..]);
        swap32(&mut out[at + 8..]);
        swap32(&mut out[at + 12..]);
        let body = at + NLMSG_HDRLEN + family_header_len;
        if body <= at + len {
            attrs_in_place(&mut out[body..at + len]);
        }
        at += align4(len);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_agree_on_nested_attributes() {
        let mut buf = Vec::new();
        let mut w = MessageWriter::nfnl(&mut buf, 0x0301, NLM_F_REQUEST, 7, 0, 513);
        w.attr_be32(3, 0xdead_beef)
            .begin_nested(11)
            .attr_be32(8, 0x1000_0000)
            .attr_be32(21, 0x3000_0000)
            .end_nested()
            .attr(10, &[1, 2, 3]);
        w.finish();
        assert_eq!(buf.len() % 4, 0);
        let msgs: Vec<_> = messages(&buf).collect();
        assert_eq!(msgs.len(), 1);
        let (family, res_id, body) = msgs[0].nfgen().unwrap();
        assert_eq!(
            (family, res_id, msgs[0].seq, msgs[0].kind),
            (0, 513, 7, 0x0301)
        );
        // res_id is big-endian on the wire whatever the host order.
        assert_eq!(&msgs[0].body[2..4], &[0x02, 0x01]);
        let a: Vec<_> = attrs(body).collect();
        assert_eq!(a.len(), 3);
        assert_eq!(a[0].be_u32(), Some(0xdead_beef));
        assert_eq!(&a[0].data, &[0xde, 0xad, 0xbe, 0xef]);
        let inner: Vec<_> = a[1].nested().collect();
        assert_eq!(a[1].kind, 11, "nested flag is masked off");
        assert_eq!(inner[0].be_u32(), Some(0x1000_0000));
        assert_eq!(inner[1].kind, 21);
        assert_eq!(a[2].data, &[1, 2, 3]);
    }

    #[test]
    fn malformed_lengths_stop_iteration_without_panic() {
        let mut junk = vec![0xffu8; 40];
        assert_eq!(messages(&junk).count(), 0);
        junk[0..4].copy_from_slice(&8u32.to_ne_bytes()); // shorter than a header
        assert_eq!(messages(&junk).count(), 0);
        let attr_junk = [0x02, 0x00, 0x01, 0x00, 0xff];
        assert_eq!(attrs(&attr_junk).count(), 0);
        let huge = [0xff, 0x7f, 0x01, 0x00];
        assert_eq!(attrs(&huge).count(), 0);
        for cut in 0..20 {
            let _ = messages(&junk[..cut]).count();
        }
    }
}
