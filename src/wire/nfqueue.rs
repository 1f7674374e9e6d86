//! NFQUEUE engine: the nfnetlink_queue protocol, written by hand because no
//! maintained crate does batch verdicts and verdicts that set a conntrack
//! mark. The codec (`parse_packet`, `Verdicts`, `write_config`) is pure and
//! unit-tested on real kernel bytes; `Queue` is the thin socket edge.
//!
//! How a decision reaches the kernel, in one of two ways found at bind time:
//! - `MarkMode::Conntrack`: the verdict carries a nested `NFQA_CT` with
//!   `CTA_MARK`/`CTA_MARK_MASK`, so the kernel writes the connection's mark
//!   directly. Needs `CONFIG_NETFILTER_NETLINK_GLUE_CT` (OpenWrt has it).
//! - `MarkMode::Repeat`: kernels without that glue refuse
//!   `NFQA_CFG_F_CONNTRACK`; then the verdict is `NF_REPEAT` with the packet
//!   mark (`NFQA_MARK`) set, and the firewall chain's first rule copies the
//!   packet mark into the connection mark (`CONNMARK --save-mark`).
//!
//! Either way, later packets of the connection match the ct mark in the
//! kernel and never reach user space.
//!
//! A verdict can also replace the packet's bytes (`NFQA_PAYLOAD`): the DNS
//! sinkhole rewrites answers that way.
//!
//! Limits: one queue per engine; no `NFQA_EXP`.
//!
//! Over 600 lines: the NFQUEUE protocol (packet messages, verdict batches
//! and their fallbacks, binding and the socket) is one hand-written unit,
//! kept together so its ordering rules read in one place; a third of the
//! file is its unit tests.

use std::io;

use crate::wire::conntrack::{self, CtEntry};
use crate::wire::netlink::{self, MessageWriter, NLM_F_ACK, NLM_F_REQUEST};

pub const NFNL_SUBSYS_QUEUE: u16 = 3;
pub const NFQNL_MSG_PACKET: u16 = 0;
pub const NFQNL_MSG_VERDICT: u16 = 1;
pub const NFQNL_MSG_CONFIG: u16 = 2;
pub const NFQNL_MSG_VERDICT_BATCH: u16 = 3;

const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;

const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_MARK: u16 = 3;
const NFQA_IFINDEX_INDEV: u16 = 5;
const NFQA_IFINDEX_OUTDEV: u16 = 6;
const NFQA_HWADDR: u16 = 9;
const NFQA_PAYLOAD: u16 = 10;
const NFQA_CT: u16 = 11;
const NFQA_CT_INFO: u16 = 12;
const NFQA_CAP_LEN: u16 = 13;

const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_CFG_CMD_UNBIND: u8 = 2;
const NFQNL_COPY_PACKET: u8 = 2;

pub const NFQA_CFG_F_FAIL_OPEN: u32 = 0x1;
pub const NFQA_CFG_F_CONNTRACK: u32 = 0x2;
pub const NFQA_CFG_F_GSO: u32 = 0x4;

pub const NF_DROP: u32 = 0;
pub const NF_ACCEPT: u32 = 1;
pub const NF_REPEAT: u32 = 4;

pub const HOOK_LOCAL_IN: u8 = 1;
pub const HOOK_FORWARD: u8 = 2;
pub const HOOK_LOCAL_OUT: u8 = 3;

/// `ip_conntrack_info` values at or above this are reply-direction packets.
const IP_CT_IS_REPLY: u32 = 3;

const fn msg_type(kind: u16) -> u16 {
    (NFNL_SUBSYS_QUEUE << 8) | kind
}

/// One queued packet, borrowed from the receive buffer.
#[derive(Debug, Clone, Default)]
pub struct QueuedPacket<'a> {
    pub queue: u16,
    pub id: u32,
    /// Ethertype of the payload (0x0800 IPv4, 0x86dd IPv6).
    pub hw_protocol: u16,
    pub hook: u8,
    /// The packet (skb) mark.
    pub mark: u32,
    pub indev: Option<u32>,
    pub outdev: Option<u32>,
    /// Link-layer source address of the previous hop, when it is Ethernet.
    pub hwaddr: Option<[u8; 6]>,
    /// The packet from the IP header on, cut at the queue's copy range.
    pub payload: &'a [u8],
    /// Original length when the payload was cut.
    pub cap_len: Option<u32>,
    /// Conntrack entry (only with `NFQA_CFG_F_CONNTRACK`).
    pub ct: Option<CtEntry>,
    pub ct_info: Option<u32>,
}

impl QueuedPacket<'_> {
    /// True when conntrack says this packet travels in the reply direction.
    pub fn is_reply(&self) -> Option<bool> {
        self.ct_info.map(|info| info >= IP_CT_IS_REPLY)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    NotAQueuePacket,
    Truncated,
    MissingPacketHeader,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ParseError::NotAQueuePacket => "not an nfqueue packet message",
            ParseError::Truncated => "truncated nfqueue message",
            ParseError::MissingPacketHeader => "nfqueue message without NFQA_PACKET_HDR",
        })
    }
}

/// Decodes one `NFQNL_MSG_PACKET` message.
pub fn parse_packet<'a>(msg: &netlink::Message<'a>) -> Result<QueuedPacket<'a>, ParseError> {
    if msg.kind != msg_type(NFQNL_MSG_PACKET) {
        return Err(ParseError::NotAQueuePacket);
    }
    let (_family, queue, body) = msg.nfgen().ok_or(ParseError::Truncated)?;
    let mut pkt = QueuedPacket {
        queue,
        ..Default::default()
    };
    let mut have_header = false;
    for attr in netlink::attrs(body) {
        match attr.kind {
            NFQA_PACKET_HDR => {
                // struct nfqnl_msg_packet_hdr { __be32 id; __be16 proto; u8 hook; }
                let d = attr.data;
                if d.len() < 7 {
                    return Err(ParseError::Truncated);
                }
                pkt.id = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
                pkt.hw_protocol = u16::from_be_bytes([d[4], d[5]]);
                pkt.hook = d[6];
                have_header = true;
            }
            NFQA_MARK => pkt.mark = attr.be_u32().unwrap_or(0),
            NFQA_IFINDEX_INDEV => pkt.indev = attr.be_u32(),
            NFQA_IFINDEX_OUTDEV => pkt.outdev = attr.be_u32(),
            NFQA_HWADDR => {
                // struct nfqnl_msg_packet_hw { __be16 len; u16 pad; u8 addr[8]; }
                let d = attr.data;
                if d.len() >= 10 && u16::from_be_bytes([d[0], d[1]]) == 6 {
                    let mut mac = [0u8; 6];
                    mac.copy_from_slice(&d[4..10]);
                    pkt.hwaddr = Some(mac);
                }
            }
            NFQA_PAYLOAD => pkt.payload = attr.data,
            NFQA_CT => pkt.ct = Some(conntrack::parse_entry(attr.data)),
            NFQA_CT_INFO => pkt.ct_info = attr.be_u32(),
            NFQA_CAP_LEN => pkt.cap_len = attr.be_u32(),
            _ => {}
        }
    }
    if !have_header {
        return Err(ParseError::MissingPacketHeader);
    }
    Ok(pkt)
}

/// struct nfqnl_msg_verdict_hdr { __be32 verdict; __be32 id; }
fn verdict_hdr(verdict: u32, id: u32) -> [u8; 8] {
    let mut hdr = [0u8; 8];
    hdr[..4].copy_from_slice(&verdict.to_be_bytes());
    hdr[4..].copy_from_slice(&id.to_be_bytes());
    hdr
}

/// How marks reach the connection (see the module header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkMode {
    Conntrack,
    Repeat,
}

/// What the daemon decided for one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let this packet through; the connection stays undecided.
    Accept,
    /// Drop this packet only; the connection stays as it is (an answer
    /// that must not pass, a segment out of order).
    Drop,
    /// Let it through and mark the connection with `bits` (under `mask`).
    AcceptMark { bits: u32 },
    /// Drop it and mark the connection with `bits`.
    DropMark { bits: u32 },
    /// Mark the connection with `bits` and let the packet go on to the
    /// kernel rule that refuses such connections (TCP reset / ICMP).
    RejectMark { bits: u32 },
    /// Let it through with its bytes replaced (a rewritten DNS answer;
    /// checksums already fixed by the caller).
    AcceptPayload { payload: Vec<u8> },
}

/// Builds one send buffer of verdicts, in the order the packets came:
/// packets that need a mark, a drop or new bytes get their own
/// `NFQNL_MSG_VERDICT`; each run of plain accepts between them is folded
/// into one `NFQNL_MSG_VERDICT_BATCH` for the run's highest id, written
/// before the next special verdict (a batch accepts every queued id up to
/// its own, so it never reaches past a special one still queued).
pub struct Verdicts {
    buf: Vec<u8>,
    queue: u16,
    mode: MarkMode,
    mask: u32,
    batch_max: Option<u32>,
    pub accepted: u64,
    pub dropped: u64,
}

impl Verdicts {
    pub fn new(queue: u16, mode: MarkMode, mask: u32) -> Self {
        Verdicts {
            buf: Vec::with_capacity(16 * 1024),
            queue,
            mode,
            mask,
            batch_max: None,
            accepted: 0,
            dropped: 0,
        }
    }

    pub fn mode(&self) -> MarkMode {
        self.mode
    }

    /// Adds the verdict for a queued packet. In conntrack mode a packet
    /// that came without its conntrack entry (untracked) gets a plain
    /// accept or drop, and every other packet keeps ct-mark verdicts.
    pub fn push_packet(&mut self, pkt: &QueuedPacket<'_>, verdict: Verdict) {
        if self.mode == MarkMode::Conntrack && pkt.ct.is_none() {
            // Untracked: no connection to mark, and a repeat verdict would
            // bring it back to the queue for ever. Its own fate only.
            let plain = match verdict {
                Verdict::AcceptMark { .. } => Verdict::Accept,
                Verdict::DropMark { .. } | Verdict::RejectMark { .. } => Verdict::Drop,
                other => other,
            };
            return self.push_in(pkt.id, pkt.mark, plain, MarkMode::Conntrack);
        }
        self.push_in(pkt.id, pkt.mark, verdict, self.mode);
    }

    /// Adds the verdict for packet `id` whose current packet mark is `mark`.
    pub fn push(&mut self, id: u32, mark: u32, verdict: Verdict) {
        self.push_in(id, mark, verdict, self.mode);
    }

    fn push_in(&mut self, id: u32, mark: u32, verdict: Verdict, mode: MarkMode) {
        if verdict != Verdict::Accept {
            // The plain accepts so far go first: the kernel reinjects in
            // the order it reads verdicts, and two packets of one
            // connection must leave in the order they came (a reset
            // written in place of a segment must not overtake the segment
            // before it). The batch covers only ids below this one.
            self.write_batch();
        }
        match verdict {
            Verdict::Accept => {
                self.accepted += 1;
                self.batch_max = Some(self.batch_max.map_or(id, |m| m.max(id)));
            }
            Verdict::Drop => {
                self.dropped += 1;
                self.write_plain(id, NF_DROP, None);
            }
            Verdict::AcceptMark { bits } => {
                self.accepted += 1;
                self.write_marked(id, mark, bits, NF_ACCEPT, mode);
            }
            Verdict::DropMark { bits } => {
                self.dropped += 1;
                self.write_marked(id, mark, bits, NF_DROP, mode);
            }
            // Sent back through the chain, where the reject rule meets it
            // (repeat mode: after its mark is saved; ct mode: by the ct
            // mark the verdict sets). An accept would end the hook: with
            // the nft backend the reject rule sits in the queue's own
            // chain, so a rejected connection's first packet (a SYN, a
            // whole UDP beacon) reached the tracker.
            Verdict::RejectMark { bits } => {
                self.dropped += 1;
                self.write_marked(id, mark, bits, NF_REPEAT, mode);
            }
            Verdict::AcceptPayload { payload } => {
                self.accepted += 1;
                self.write_plain(id, NF_ACCEPT, Some(&payload));
            }
        }
    }

    /// A verdict of its own for packet `id`, with new bytes when given.
    fn write_plain(&mut self, id: u32, verdict: u32, payload: Option<&[u8]>) {
        let mut w = MessageWriter::nfnl(
            &mut self.buf,
            msg_type(NFQNL_MSG_VERDICT),
            NLM_F_REQUEST,
            0,
            0,
            self.queue,
        );
        w.attr(NFQA_VERDICT_HDR, &verdict_hdr(verdict, id));
        if let Some(p) = payload {
            w.attr(NFQA_PAYLOAD, p);
        }
        w.finish();
    }

    fn write_marked(&mut self, id: u32, mark: u32, bits: u32, verdict: u32, mode: MarkMode) {
        let mut w = MessageWriter::nfnl(
            &mut self.buf,
            msg_type(NFQNL_MSG_VERDICT),
            NLM_F_REQUEST,
            0,
            0,
            self.queue,
        );
        match mode {
            MarkMode::Conntrack => {
                w.attr(NFQA_VERDICT_HDR, &verdict_hdr(verdict, id))
                    .begin_nested(NFQA_CT)
                    .attr_be32(conntrack::CTA_MARK, bits & self.mask)
                    .attr_be32(conntrack::CTA_MARK_MASK, self.mask)
                    .end_nested();
            }
            MarkMode::Repeat => {
                // The firewall chain saves the packet mark into the ct mark
                // and then accepts or drops by it, so even drops repeat.
                let new_mark = (mark & !self.mask) | (bits & self.mask);
                w.attr(NFQA_VERDICT_HDR, &verdict_hdr(NF_REPEAT, id))
                    .attr_be32(NFQA_MARK, new_mark);
            }
        }
        w.finish();
    }

    /// The bytes to send, closing the batch; empty when nothing is pending.
    pub fn finish(&mut self) -> &[u8] {
        self.write_batch();
        &self.buf
    }

    /// Writes the pending plain accepts as one batch verdict.
    fn write_batch(&mut self) {
        if let Some(max) = self.batch_max.take() {
            let mut w = MessageWriter::nfnl(
                &mut self.buf,
                msg_type(NFQNL_MSG_VERDICT_BATCH),
                NLM_F_REQUEST,
                0,
                0,
                self.queue,
            );
            w.attr(NFQA_VERDICT_HDR, &verdict_hdr(NF_ACCEPT, max));
            w.finish();
        }
    }

    /// Empties the buffer after a send, keeping its allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.batch_max = None;
    }
}

/// Queue parameters set at bind time.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    pub queue: u16,
    /// Bytes of each packet copied to user space.
    pub copy_range: u32,
    pub max_len: u32,
    /// Ask for conntrack info and ct-mark verdicts (falls back if refused).
    pub want_conntrack: bool,
}

/// The flags the bind sets or clears (`NFQA_CFG_MASK`). Never
/// `NFQA_CFG_F_FAIL_OPEN`: with it the kernel lets a packet pass unjudged
/// when the queue is full or the socket's receive buffer is, so a burst of
/// DNS answers (or any flood a phone sends while the daemon is busy) got
/// real addresses past a block. A full queue drops instead (TCP resends, a
/// resolver asks again). A daemon that is not running at all is what the
/// rules' `--queue-bypass` (nft `flags bypass`) covers.
const CONFIG_FLAGS_MASK: u32 = NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_CONNTRACK | NFQA_CFG_F_GSO;

/// Writes the bind sequence: bind, copy parameters, queue length, flags.
/// Each message asks for an ack so refusals surface as errors.
pub fn write_config(buf: &mut Vec<u8>, cfg: &QueueConfig, flags: u32, seq: u32) {
    let cfg_type = msg_type(NFQNL_MSG_CONFIG);
    let mut w = MessageWriter::nfnl(buf, cfg_type, NLM_F_REQUEST | NLM_F_ACK, seq, 0, cfg.queue);
    // struct nfqnl_msg_config_cmd { u8 command; u8 pad; __be16 pf; }
    w.attr(NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, 0]);
    w.finish();
    let mut w = MessageWriter::nfnl(
        buf,
        cfg_type,
        NLM_F_REQUEST | NLM_F_ACK,
        seq + 1,
        0,
        cfg.queue,
    );
    // struct nfqnl_msg_config_params { __be32 copy_range; u8 copy_mode; } packed
    let mut params = [0u8; 5];
    params[..4].copy_from_slice(&cfg.copy_range.to_be_bytes());
    params[4] = NFQNL_COPY_PACKET;
    w.attr(NFQA_CFG_PARAMS, &params)
        .attr_be32(NFQA_CFG_QUEUE_MAXLEN, cfg.max_len)
        .attr_be32(NFQA_CFG_FLAGS, flags)
        .attr_be32(NFQA_CFG_MASK, flags | CONFIG_FLAGS_MASK);
    w.finish();
}

fn write_unbind(buf: &mut Vec<u8>, queue: u16, seq: u32) {
    let mut w = MessageWriter::nfnl(
        buf,
        msg_type(NFQNL_MSG_CONFIG),
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        0,
        queue,
    );
    w.attr(NFQA_CFG_CMD, &[NFQNL_CFG_CMD_UNBIND, 0, 0, 0]);
    w.finish();
}

/// A bound queue: the socket, one reused receive buffer, the verdict buffer.
pub struct Queue {
    socket: netlink::Socket,
    pub config: QueueConfig,
    pub mode: MarkMode,
    recv_buf: Vec<u8>,
}

impl Queue {
    /// Binds the queue. Tries ct-mark verdicts first and falls back to
    /// repeat-with-packet-mark when the kernel refuses `NFQA_CFG_F_CONNTRACK`.
    pub async fn bind(config: QueueConfig) -> io::Result<Queue> {
        let socket = netlink::Socket::open(netlink::Protocol::Netfilter, 0)?;
        let asked = 8 << 20;
        let granted = socket.tune_for_queue(asked)?;
        if granted < 2 * asked {
            eprintln!(
                "phonehome: warning: queue receive buffer {} KiB (asked {} KiB; raising it past \
                 net.core.rmem_max needs CAP_NET_ADMIN in the initial namespace): a burst \
                 larger than it is dropped (status: queue_user_dropped)",
                granted >> 10,
                (2 * asked) >> 10
            );
        }
        let recv_buf = vec![0u8; (config.copy_range as usize + 4096).max(65536)];
        let mut queue = Queue {
            socket,
            config,
            mode: MarkMode::Repeat,
            recv_buf,
        };
        // No NFQA_CFG_F_GSO: the kernel then cuts a segment-offload packet
        // into wire-sized segments before queueing them, so each queued
        // packet is whole within the copy range (with it, a 4.3 KB
        // ClientHello or a 5 KB DNS answer came as one packet cut at the
        // copy range, and the bytes after the cut were never seen).
        let base = 0;
        if queue.config.want_conntrack {
            match queue.configure(base | NFQA_CFG_F_CONNTRACK, 1).await {
                Ok(()) => {
                    queue.mode = MarkMode::Conntrack;
                    return Ok(queue);
                }
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                    // The bind itself went through; a second bind from the
                    // same socket is refused with EBUSY, so unbind first.
                    let mut unbind = Vec::new();
                    write_unbind(&mut unbind, queue.config.queue, 10);
                    let mut buf = std::mem::take(&mut queue.recv_buf);
                    let _ = queue.request_acks(&unbind, 10, 1, &mut buf).await;
                    queue.recv_buf = buf;
                }
                Err(e) => return Err(bind_error(e, queue.config.queue)),
            }
        }
        queue
            .configure(base, 11)
            .await
            .map_err(|e| bind_error(e, queue.config.queue))?;
        Ok(queue)
    }

    async fn configure(&mut self, flags: u32, seq: u32) -> io::Result<()> {
        let mut req = Vec::new();
        write_config(&mut req, &self.config, flags, seq);
        let mut buf = std::mem::take(&mut self.recv_buf);
        let result = self.request_acks(&req, seq, 2, &mut buf).await;
        self.recv_buf = buf;
        result
    }

    async fn request_acks(
        &self,
        req: &[u8],
        first_seq: u32,
        count: u32,
        buf: &mut [u8],
    ) -> io::Result<()> {
        self.socket.send(req)?;
        let mut acked = 0;
        let mut first_err = None;
        while acked < count {
            let n = self.socket.recv(buf).await?;
            for msg in netlink::messages(&buf[..n]) {
                if msg.kind == netlink::NLMSG_ERROR
                    && (first_seq..first_seq + count).contains(&msg.seq)
                {
                    acked += 1;
                    let code = msg.error_code().unwrap_or(-libc::EIO);
                    if code != 0 && first_err.is_none() {
                        first_err = Some(io::Error::from_raw_os_error(-code));
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Waits for queued packets and hands each (with its verdict sink) to
    /// `decide`; then sends all verdicts of the burst in one `send`.
    pub async fn process_burst(
        &mut self,
        verdicts: &mut Verdicts,
        mut decide: impl FnMut(&[u8], Result<QueuedPacket<'_>, ParseError>, &mut Verdicts),
    ) -> io::Result<usize> {
        let Queue {
            socket, recv_buf, ..
        } = self;
        let n = socket
            .recv_burst(recv_buf, 64, |datagram| {
                for msg in netlink::messages(datagram) {
                    if msg.kind == netlink::NLMSG_ERROR {
                        if let Some(code) = msg.error_code().filter(|c| *c != 0) {
                            eprintln!(
                                "phonehome: kernel refused a verdict: {}",
                                io::Error::from_raw_os_error(-code)
                            );
                        }
                        continue;
                    }
                    decide(datagram, parse_packet(&msg), verdicts);
                }
            })
            .await?;
        let out = verdicts.finish();
        send_verdicts(socket, out);
        verdicts.clear();
        Ok(n)
    }
}

/// Verdict bytes per send: well under the default netlink send buffer
/// (`net.core.wmem_default`, 208 KiB; 160 KiB on small routers), which a
/// burst of 64 rewritten DNS answers of 4 KB each would exceed.
pub const MAX_VERDICT_SEND: usize = 32 * 1024;

/// The buffer cut at message boundaries into pieces of at most `max` bytes
/// (a single larger message is a piece of its own).
pub fn verdict_chunks(buf: &[u8], max: usize) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    let (mut start, mut at) = (0, 0);
    while at + 4 <= buf.len() {
        let len = u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
        let next = (at + netlink::align4(len.max(netlink::NLMSG_HDRLEN))).min(buf.len());
        if next - start > max && at > start {
            chunks.push(&buf[start..at]);
            start = at;
        }
        at = next;
    }
    if buf.len() > start {
        chunks.push(&buf[start..]);
    }
    chunks
}

/// The verdict to fall back on when the kernel would not take `msg` (one
/// verdict message): the same fate without the extras that can fail. A
/// rewritten payload that cannot be delivered is dropped (the original
/// bytes are what the policy forbade), a repeat verdict becomes the accept
/// or drop its mark stood for. None for messages that are not verdicts.
pub fn fallback_verdict(msg: &netlink::Message<'_>, queue: u16) -> Option<Vec<u8>> {
    if msg.kind != msg_type(NFQNL_MSG_VERDICT) {
        return None;
    }
    let (_, _, body) = msg.nfgen()?;
    let (mut verdict, mut id, mut payload, mut mark) = (None, 0, false, None);
    for attr in netlink::attrs(body) {
        match attr.kind {
            NFQA_VERDICT_HDR if attr.data.len() >= 8 => {
                let d = attr.data;
                verdict = Some(u32::from_be_bytes([d[0], d[1], d[2], d[3]]));
                id = u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
            }
            NFQA_PAYLOAD => payload = true,
            NFQA_MARK => mark = attr.be_u32(),
            _ => {}
        }
    }
    let verdict = match verdict? {
        NF_ACCEPT if payload => NF_DROP,
        NF_REPEAT => match mark.map(|m| m & crate::wire::conntrack::MARK_MASK) {
            Some(crate::wire::conntrack::MARK_ALLOW) => NF_ACCEPT,
            _ => NF_DROP,
        },
        v => v,
    };
    let mut out = Vec::new();
    let mut w = MessageWriter::nfnl(
        &mut out,
        msg_type(NFQNL_MSG_VERDICT),
        NLM_F_REQUEST,
        0,
        0,
        queue,
    );
    w.attr(NFQA_VERDICT_HDR, &verdict_hdr(verdict, id));
    w.finish();
    Some(out)
}

/// Sends a burst's verdicts in pieces the socket takes. A piece the kernel
/// refuses is sent again message by message, and a message it still
/// refuses is replaced by its fallback (`fallback_verdict`), so no packet
/// is left waiting in the queue and one bad verdict never stops the
/// daemon. Failures are logged.
fn send_verdicts(socket: &netlink::Socket, buf: &[u8]) {
    for chunk in verdict_chunks(buf, MAX_VERDICT_SEND) {
        let Err(e) = socket.send(chunk) else { continue };
        eprintln!(
            "phonehome: verdict send of {} bytes failed ({e}); sending them one by one",
            chunk.len()
        );
        for one in verdict_chunks(chunk, 0) {
            if let Err(e) = socket.send(one) {
                let queue = netlink::messages(one)
                    .next()
                    .and_then(|m| m.nfgen())
                    .map_or(0, |(_, q, _)| q);
                let fallback = netlink::messages(one)
                    .next()
                    .and_then(|m| fallback_verdict(&m, queue));
                match fallback.map(|f| socket.send(&f)) {
                    Some(Ok(())) => {
                        eprintln!("phonehome: a verdict was refused ({e}); sent its fallback")
                    }
                    Some(Err(e2)) => {
                        eprintln!("phonehome: a verdict and its fallback were refused ({e}, {e2})")
                    }
                    None => eprintln!("phonehome: a verdict batch was refused ({e})"),
                }
            }
        }
    }
}

fn bind_error(e: io::Error, queue: u16) -> io::Error {
    let holder = std::fs::read_to_string("/proc/net/netfilter/nfnetlink_queue")
        .ok()
        .and_then(|text| queue_holder(&text, queue));
    let hint = bind_hint(e.raw_os_error(), holder, has_net_admin());
    io::Error::new(e.kind(), format!("cannot bind NFQUEUE {queue}: {e}{hint}"))
}

/// Why a bind failed, for people. The kernel answers EPERM both to a
/// process without CAP_NET_ADMIN and to anyone binding a queue that
/// another socket holds, so the queue table and our capabilities decide.
fn bind_hint(errno: Option<i32>, holder: Option<u32>, net_admin: bool) -> String {
    match (errno, holder) {
        (Some(libc::EPERM | libc::EBUSY), Some(port)) => format!(
            " (another process holds this queue: netlink port id {port}, usually its pid; stop it or choose another queue)"
        ),
        (Some(libc::EBUSY), None) => " (another process holds this queue)".into(),
        (Some(libc::EPERM), None) if net_admin => {
            " (refused although we have CAP_NET_ADMIN: another process may hold this queue)".into()
        }
        (Some(libc::EPERM), None) => " (needs CAP_NET_ADMIN)".into(),
        _ => String::new(),
    }
}

/// The netlink port id bound to `queue`, from
/// `/proc/net/netfilter/nfnetlink_queue`.
fn queue_holder(text: &str, queue: u16) -> Option<u32> {
    proc_queue_rows(text)
        .into_iter()
        .find(|r| r.queue == queue)
        .map(|r| r.portid)
}

/// Whether this process has CAP_NET_ADMIN (bit 12 of CapEff).
fn has_net_admin() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_string();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << 12) != 0)
}

/// One line of `/proc/net/netfilter/nfnetlink_queue` (the kernel's
/// `seq_show` in nfnetlink_queue.c).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcQueueRow {
    pub queue: u16,
    /// The netlink port id bound to it.
    pub portid: u32,
    /// Packets waiting for a verdict now.
    pub waiting: u64,
    /// Packets dropped because the queue held `max_len` already.
    pub queue_dropped: u64,
    /// Packets dropped because the daemon's socket buffer was full.
    pub user_dropped: u64,
    /// Packets handed to user space so far (the last packet id).
    pub id_sequence: u64,
}

/// Reads `/proc/net/netfilter/nfnetlink_queue`. Columns: queue portid
/// queue_total copy_mode copy_range queue_dropped user_dropped
/// id_sequence 1. Lines it cannot read are skipped.
pub fn proc_queue_rows(text: &str) -> Vec<ProcQueueRow> {
    text.lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| cols.get(i)?.parse::<u64>().ok();
            Some(ProcQueueRow {
                queue: cols.first()?.parse().ok()?,
                portid: cols.get(1)?.parse().ok()?,
                waiting: num(2)?,
                queue_dropped: num(5)?,
                user_dropped: num(6)?,
                id_sequence: num(7)?,
            })
        })
        .collect()
}

/// The kernel's row for `queue` in this network namespace, if bound.
pub fn proc_queue_row(queue: u16) -> Option<ProcQueueRow> {
    let text = std::fs::read_to_string("/proc/net/netfilter/nfnetlink_queue").ok()?;
    proc_queue_rows(&text)
        .into_iter()
        .find(|r| r.queue == queue)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real `NFQNL_MSG_PACKET` as the kernel sent it (x86_64, queue 0):
    /// a TCP SYN from 192.168.77.2 to 203.0.113.10:443 in the FORWARD hook,
    /// with NFQA_HWADDR 02:00:00:00:77:02. Captured with `phonehome run` and
    /// `PHONEHOME_CAPTURE`; see tests/fixtures/README.md.
    const SYN_MSG: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/nfq_syn_forward.bin"
    ));

    fn host_msg(bytes: &[u8]) -> netlink::Message<'_> {
        netlink::messages(bytes).next().expect("one message")
    }

    /// The capture re-framed for this host's byte order.
    fn syn_msg() -> Vec<u8> {
        netlink::le_capture_to_host_order(SYN_MSG, netlink::NFGENMSG_LEN)
    }

    /// 64 rewritten DNS answers of 4 KB go out in pieces under the send
    /// limit, cut between messages, nothing lost; each verdict has a
    /// fallback that cannot carry what failed.
    #[test]
    fn verdict_bursts_are_cut_between_messages_with_fallbacks() {
        let mut v = Verdicts::new(0, MarkMode::Repeat, crate::wire::conntrack::MARK_MASK);
        for id in 0..64 {
            v.push(
                id,
                0,
                Verdict::AcceptPayload {
                    payload: vec![0x45; 4000],
                },
            );
        }
        v.push(
            100,
            0,
            Verdict::DropMark {
                bits: crate::wire::conntrack::MARK_BLOCK,
            },
        );
        v.push(
            101,
            0,
            Verdict::AcceptMark {
                bits: crate::wire::conntrack::MARK_ALLOW,
            },
        );
        v.push(102, 0, Verdict::Accept);
        let buf = v.finish().to_vec();
        assert!(buf.len() > 256 * 1024 - 4096);
        let chunks = verdict_chunks(&buf, MAX_VERDICT_SEND);
        assert!(chunks.iter().all(|c| c.len() <= MAX_VERDICT_SEND));
        assert_eq!(chunks.concat(), buf);
        let messages: usize = chunks.iter().map(|c| netlink::messages(c).count()).sum();
        assert_eq!(messages, 64 + 3);
        assert_eq!(verdict_chunks(&buf, 0).len(), 67);
        let fallbacks: Vec<(u32, u32)> = netlink::messages(&buf)
            .filter_map(|m| fallback_verdict(&m, 0))
            .map(|f| {
                let m = netlink::messages(&f).next().unwrap();
                let (_, _, body) = m.nfgen().unwrap();
                let hdr = netlink::attrs(body).next().unwrap().data;
                assert_eq!(netlink::attrs(body).count(), 1, "only the verdict header");
                (
                    u32::from_be_bytes(hdr[4..8].try_into().unwrap()),
                    u32::from_be_bytes(hdr[..4].try_into().unwrap()),
                )
            })
            .collect();
        assert_eq!(fallbacks.len(), 66, "the batch message has none");
        assert!(fallbacks[..64]
            .iter()
            .all(|(_, verdict)| *verdict == NF_DROP));
        assert_eq!(fallbacks[64], (100, NF_DROP));
        assert_eq!(fallbacks[65], (101, NF_ACCEPT));
        assert!(verdict_chunks(&buf[..3], 10).len() == 1);
        assert!(verdict_chunks(&[], 10).is_empty());
    }

    #[test]
    fn parses_a_captured_forward_syn() {
        let bytes = syn_msg();
        let pkt = parse_packet(&host_msg(&bytes)).unwrap();
        assert_eq!(pkt.queue, 0);
        assert_eq!(pkt.hook, HOOK_FORWARD);
        assert_eq!(pkt.hw_protocol, 0x0800);
        assert_eq!(pkt.hwaddr, Some([0x02, 0, 0, 0, 0x77, 0x02]));
        assert_eq!(pkt.payload[0] >> 4, 4, "payload starts at the IPv4 header");
        assert_eq!(&pkt.payload[16..20], &[203, 0, 113, 10]);
        assert!(pkt.indev.is_some() && pkt.outdev.is_some());
    }

    #[test]
    fn every_truncation_of_a_real_message_is_handled() {
        let bytes = syn_msg();
        let msg = host_msg(&bytes);
        for cut in 0..msg.body.len() {
            let m = netlink::Message {
                body: &msg.body[..cut],
                ..msg
            };
            let _ = parse_packet(&m);
        }
    }

    #[test]
    fn verdicts_keep_packet_order_with_one_batch_per_run_of_accepts() {
        let mut v = Verdicts::new(3, MarkMode::Conntrack, 0x3000_0000);
        v.push(9, 0, Verdict::Accept);
        v.push(10, 0, Verdict::Accept);
        v.push(11, 0, Verdict::DropMark { bits: 0x2000_0000 });
        v.push(12, 0, Verdict::Accept);
        let bytes = v.finish().to_vec();
        let msgs: Vec<_> = netlink::messages(&bytes).collect();
        // batch(<= 10), the marked drop of 11, batch(<= 12): each batch
        // reaches only ids before the next special verdict.
        assert_eq!(msgs.len(), 3);
        assert_eq!(
            [msgs[0].kind, msgs[1].kind, msgs[2].kind],
            [0x0303, 0x0301, 0x0303]
        );
        let hdr = |m: &netlink::Message<'_>| {
            netlink::attrs(m.nfgen().unwrap().2)
                .next()
                .unwrap()
                .data
                .to_vec()
        };
        assert_eq!(hdr(&msgs[0]), [0, 0, 0, 1, 0, 0, 0, 10]);
        let (_, queue, body) = msgs[1].nfgen().unwrap();
        assert_eq!(queue, 3);
        let attrs: Vec<_> = netlink::attrs(body).collect();
        // verdict header: __be32 verdict, __be32 id — big-endian on every host
        assert_eq!(attrs[0].data, &[0, 0, 0, 0, 0, 0, 0, 11]);
        let ct: Vec<_> = attrs[1].nested().collect();
        assert_eq!(attrs[1].kind, NFQA_CT);
        assert_eq!((ct[0].kind, ct[0].data), (8, &[0x20, 0, 0, 0][..]));
        assert_eq!((ct[1].kind, ct[1].data), (21, &[0x30, 0, 0, 0][..]));
        assert_eq!(hdr(&msgs[2]), [0, 0, 0, 1, 0, 0, 0, 12]);
        assert_eq!((v.accepted, v.dropped), (3, 1));
        v.clear();
        assert!(v.finish().is_empty());
    }

    #[test]
    fn repeat_mode_sets_packet_mark_and_keeps_foreign_bits() {
        let mut v = Verdicts::new(0, MarkMode::Repeat, 0x3000_0000);
        v.push(5, 0x0000_00ff, Verdict::AcceptMark { bits: 0x1000_0000 });
        let bytes = v.finish().to_vec();
        let msg = netlink::messages(&bytes).next().unwrap();
        let (_, _, body) = msg.nfgen().unwrap();
        let attrs: Vec<_> = netlink::attrs(body).collect();
        assert_eq!(attrs[0].data, &[0, 0, 0, 4, 0, 0, 0, 5]);
        assert_eq!(
            (attrs[1].kind, attrs[1].be_u32()),
            (NFQA_MARK, Some(0x1000_00ff))
        );
    }

    /// One untracked packet (no `NFQA_CT`) once switched the daemon to
    /// repeat verdicts for good; now only that packet gets one.
    /// A verdict message: verdict, packet id, NFQA_CT's mark and mask.
    type CtVerdict = (u32, u32, Option<(u32, u32)>);

    fn ct_verdicts(bytes: &[u8]) -> Vec<CtVerdict> {
        netlink::messages(bytes)
            .map(|m| {
                let (_, _, body) = m.nfgen().unwrap();
                let attrs: Vec<_> = netlink::attrs(body).collect();
                let h = attrs[0].data;
                let ct = attrs.iter().find(|a| a.kind == NFQA_CT).map(|a| {
                    let inner: Vec<_> = netlink::attrs(a.data).collect();
                    (inner[0].be_u32().unwrap(), inner[1].be_u32().unwrap())
                });
                (
                    u32::from_be_bytes(h[..4].try_into().unwrap()),
                    u32::from_be_bytes(h[4..8].try_into().unwrap()),
                    ct,
                )
            })
            .collect()
    }

    /// In ct mode a reject sets the ct mark and repeats the packet, so it
    /// meets the reject rule; accept and drop end with the ct mark set.
    #[test]
    fn conntrack_mode_repeats_a_rejected_packet_into_the_reject_rule() {
        let mut v = Verdicts::new(0, MarkMode::Conntrack, 0x3000_0000);
        let tracked = |id| QueuedPacket {
            id,
            ct: Some(CtEntry::default()),
            ..Default::default()
        };
        v.push_packet(&tracked(1), Verdict::RejectMark { bits: 0x3000_0000 });
        v.push_packet(&tracked(2), Verdict::AcceptMark { bits: 0x1000_0000 });
        v.push_packet(&tracked(3), Verdict::DropMark { bits: 0x2000_0000 });
        let mask = 0x3000_0000;
        assert_eq!(
            ct_verdicts(v.finish()),
            [
                (NF_REPEAT, 1, Some((0x3000_0000, mask))),
                (NF_ACCEPT, 2, Some((0x1000_0000, mask))),
                (NF_DROP, 3, Some((0x2000_0000, mask))),
            ]
        );
    }

    #[test]
    fn a_packet_without_conntrack_gets_a_plain_verdict_and_only_it() {
        let mut v = Verdicts::new(0, MarkMode::Conntrack, 0x3000_0000);
        let untracked = |id| QueuedPacket {
            id,
            ..Default::default()
        };
        let tracked = QueuedPacket {
            id: 2,
            ct: Some(CtEntry::default()),
            ..Default::default()
        };
        v.push_packet(&untracked(1), Verdict::AcceptMark { bits: 0x1000_0000 });
        v.push_packet(&tracked, Verdict::AcceptMark { bits: 0x1000_0000 });
        v.push_packet(&untracked(3), Verdict::DropMark { bits: 0x2000_0000 });
        let bytes = v.finish().to_vec();
        // (message kind, verdict, id, attributes): a batch accept for 1, the
        // ct-mark accept of 2, a plain drop of 3; no repeat (it would loop:
        // no connection to save a mark into).
        let got: Vec<(u16, u32, u32, usize)> = netlink::messages(&bytes)
            .map(|m| {
                let (_, _, body) = m.nfgen().unwrap();
                let attrs: Vec<_> = netlink::attrs(body).collect();
                let h = attrs[0].data;
                (
                    m.kind,
                    u32::from_be_bytes(h[..4].try_into().unwrap()),
                    u32::from_be_bytes(h[4..8].try_into().unwrap()),
                    attrs.len(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (0x0303, NF_ACCEPT, 1, 1),
                (0x0301, NF_ACCEPT, 2, 2),
                (0x0301, NF_DROP, 3, 1)
            ]
        );
        assert_eq!(v.mode(), MarkMode::Conntrack);
    }

    #[test]
    fn config_messages_encode_copy_range_and_flags_big_endian() {
        let mut buf = Vec::new();
        let cfg = QueueConfig {
            queue: 258,
            copy_range: 4096,
            max_len: 1024,
            want_conntrack: true,
        };
        write_config(&mut buf, &cfg, NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO, 1);
        let msgs: Vec<_> = netlink::messages(&buf).collect();
        assert_eq!(msgs.len(), 2);
        assert!(msgs.iter().all(|m| m.flags == NLM_F_REQUEST | NLM_F_ACK));
        assert_eq!(&msgs[0].body[2..4], &[1, 2], "queue number big-endian");
        let (_, _, body) = msgs[1].nfgen().unwrap();
        let attrs: Vec<_> = netlink::attrs(body).collect();
        assert_eq!(attrs[0].data, &[0, 0, 0x10, 0, NFQNL_COPY_PACKET]);
        assert_eq!(attrs[1].be_u32(), Some(1024));
        assert_eq!(attrs[2].be_u32(), Some(5));
        assert_eq!(attrs[3].be_u32(), Some(7));
        // Flags left out are cleared: fail-open most of all.
        buf.clear();
        write_config(&mut buf, &cfg, 0, 1);
        let msgs: Vec<_> = netlink::messages(&buf).collect();
        let (_, _, body) = msgs[1].nfgen().unwrap();
        let attrs: Vec<_> = netlink::attrs(body).collect();
        assert_eq!(attrs[2].be_u32(), Some(0));
        assert_eq!(attrs[3].be_u32(), Some(7));
    }

    #[test]
    fn a_queue_held_by_another_process_is_named_as_such() {
        let table = "    0  4242     0 2  4096     0     0       17  1\n    3  77     0 2  4096     0     0       1  1\n";
        assert_eq!(queue_holder(table, 0), Some(4242));
        assert_eq!(queue_holder(table, 3), Some(77));
        assert_eq!(queue_holder(table, 1), None);
        let held = bind_hint(Some(libc::EPERM), Some(4242), true);
        assert!(
            held.contains("another process holds this queue: netlink port id 4242"),
            "{held}"
        );
        assert!(!held.contains("CAP_NET_ADMIN"));
        assert_eq!(
            bind_hint(Some(libc::EPERM), None, false),
            " (needs CAP_NET_ADMIN)"
        );
        assert!(bind_hint(Some(libc::EPERM), None, true).contains("another process may hold"));
    }

    #[test]
    fn reads_proc_queue_counters() {
        // Read off the router namespace after the burst test with a 208 KB
        // receive buffer: 59 packets dropped at the socket.
        let text = "    0  12345     3 2 65535     0    59      401  1\nnot a row\n    1 9 0 2\n";
        assert_eq!(
            proc_queue_rows(text),
            vec![ProcQueueRow {
                queue: 0,
                portid: 12345,
                waiting: 3,
                queue_dropped: 0,
                user_dropped: 59,
                id_sequence: 401,
            }]
        );
    }
}
