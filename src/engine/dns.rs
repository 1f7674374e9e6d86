//! The engine's DNS path: answers (over UDP and over TCP, reassembled
//! from the stream) teach the asking device which names an address stands
//! for, and an answer whose names the policy blocks for that device is
//! sinkholed in line; queries give DNS flows their name. Part of the
//! engine (`impl Engine`), split out by job.

use super::*;

impl Engine {
    /// A DNS answer over UDP to `client`: its names are learned, and when
    /// the policy blocks them for that device the answer is rewritten, or
    /// dropped when it cannot be (cut at the copy range, IPv6 extension
    /// headers, a message the rewriter cannot walk): a blocked name's real
    /// addresses never pass.
    pub(super) fn on_dns_datagram(
        &mut self,
        packet: &[u8],
        msg: &[u8],
        client: IpAddr,
        now: Now,
    ) -> Verdict {
        let Some((name, rule)) = self.judge_dns_answer(msg, client, now) else {
            return Verdict::Accept;
        };
        match crate::inspect::sinkhole::rewrite_packet(packet, self.sinkhole) {
            Some(out) => {
                self.counters.sinkholed += 1;
                self.log_sinkhole("sinkholed", &name, client, &rule);
                Verdict::AcceptPayload { payload: out }
            }
            None => {
                self.counters.dns_refused += 1;
                self.log_sinkhole(
                    "dropped the answer (cannot rewrite it) for",
                    &name,
                    client,
                    &rule,
                );
                Verdict::Drop
            }
        }
    }

    /// Keeps the first question of `msg` as the DNS flow's query, unless it
    /// has one.
    pub(super) fn learn_query(&mut self, orig: &FiveTuple, msg: &[u8]) {
        if let Some(f) = self.flows.get_mut(orig).filter(|f| f.query.is_none()) {
            f.query = names::query_name(msg).map(Into::into);
        }
    }

    /// A segment of a DNS-over-TCP answer stream (server to `client`). The
    /// stream is followed from the SYN-ACK on, in order: every complete
    /// message is judged like a UDP answer. A blocked message that lies
    /// whole in this segment is rewritten in place (same length, checksum
    /// fixed); one that cannot be (it spans segments, or carries records
    /// other than addresses) gets the connection refused: this segment and
    /// everything after it are dropped, so the client never holds the
    /// message whole. Out-of-order segments are dropped (the server sends
    /// them again in order); retransmissions of bytes already judged pass
    /// unless the stream was rewritten (a retransmission would carry the
    /// original bytes), and a stream whose start was never seen (older
    /// than the daemon) is refused.
    pub(super) fn on_dns_segment(
        &mut self,
        packet: &[u8],
        view: &packet::PacketView<'_>,
        tcp: packet::TcpInfo,
        now: Now,
    ) -> Verdict {
        let orig = view.tuple.reversed();
        let client = orig.src;
        let payload = view.payload;
        let room = self.max_pending.saturating_sub(self.flows.pending_bytes());
        let flow = self.flows.entry(orig, now.unix);
        flow.last_seen = now.unix;
        flow.queued += 1;
        if let Some(d) = flow.decision.as_ref().filter(|d| d.blocks()) {
            return verdict_for(d, true);
        }
        let s = &mut flow.dns_stream;
        if tcp.syn {
            if !payload.is_empty() {
                // BSD stacks take data on a SYN-ACK: none is let through.
                return self.refuse_dns_stream(
                    &orig,
                    packet,
                    0,
                    client,
                    "data on its SYN-ACK",
                    now,
                );
            }
            // The first SYN-ACK fixes the stream's start; a later one (the
            // client ignores it) must not move it back over bytes held.
            s.next_seq.get_or_insert(tcp.seq.wrapping_add(1));
            return Verdict::Accept;
        }
        if payload.is_empty() {
            return Verdict::Accept;
        }
        let Some(next) = s.next_seq else {
            return self.refuse_dns_stream(&orig, packet, 0, client, "its start was not seen", now);
        };
        let ahead = tcp.seq.wrapping_sub(next) as i32;
        if ahead > 0 {
            return Verdict::Drop;
        }
        let seen = ahead.unsigned_abs() as usize;
        if seen >= payload.len() || (seen > 0 && s.rewrote) {
            return if s.rewrote {
                Verdict::Drop
            } else {
                Verdict::Accept
            };
        }
        if packet::ip_len(packet).is_some_and(|n| n as usize > packet.len()) {
            return self.refuse_dns_stream(
                &orig,
                packet,
                seen,
                client,
                "a segment was cut at the copy range",
                now,
            );
        }
        let held = s.buf.len();
        if payload.len() - seen > room {
            self.counters.pending_overflow += 1;
            return self.refuse_dns_stream(
                &orig,
                packet,
                seen,
                client,
                "it would pass max_pending",
                now,
            );
        }
        s.buf.extend_from_slice(&payload[seen..]);
        s.next_seq = Some(tcp.seq.wrapping_add(payload.len() as u32));
        // The complete messages: (offset of the length prefix in the
        // buffer, message).
        let mut messages: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut at = 0;
        while s.buf.len() >= at + 2 {
            let len = usize::from(u16::from_be_bytes([s.buf[at], s.buf[at + 1]]));
            let Some(msg) = s.buf.get(at + 2..at + 2 + len) else {
                break;
            };
            messages.push((at, msg.to_vec()));
            at += 2 + len;
        }
        s.buf.drain(..at);
        if s.buf.is_empty() {
            s.buf = Vec::new(); // its capacity goes too
        }
        self.flows.recount(&orig);
        let mut rewritten: Option<Vec<u8>> = None;
        for (offset, mut msg) in messages {
            self.learn_query(&orig, &msg);
            let Some((name, rule)) = self.judge_dns_answer(&msg, client, now) else {
                continue;
            };
            // Whole in this segment: the length prefix at or after the
            // bytes held from earlier segments.
            if offset < held || !crate::inspect::sinkhole::rewrite_in_place(&mut msg, self.sinkhole)
            {
                return self.refuse_dns_stream(
                    &orig,
                    packet,
                    seen,
                    client,
                    &format!("it answers {name} ({rule})"),
                    now,
                );
            }
            let start = offset - held + seen + 2;
            rewritten.get_or_insert_with(|| payload.to_vec())[start..start + msg.len()]
                .copy_from_slice(&msg);
            self.counters.sinkholed += 1;
            self.log_sinkhole("sinkholed (DNS over TCP)", &name, client, &rule);
        }
        let Some(new_payload) = rewritten else {
            return Verdict::Accept;
        };
        match crate::inspect::sinkhole::rebuild_tcp_segment(packet, &new_payload) {
            Some(out) => {
                if let Some(f) = self.flows.get_mut(&orig) {
                    f.dns_stream.rewrote = true;
                }
                Verdict::AcceptPayload { payload: out }
            }
            None => self.refuse_dns_stream(
                &orig,
                packet,
                seen,
                client,
                "its segment cannot be rebuilt",
                now,
            ),
        }
    }

    /// Ends a DNS-over-TCP connection whose answers must not reach the
    /// client: this segment reaches it as a TCP reset instead (the client
    /// fails at once, as for a refused connection), and the connection is
    /// marked blocked, so the kernel drops every later packet of it, both
    /// ways (`packet` is the segment; when it cannot be turned into a reset
    /// it is dropped).
    pub(super) fn refuse_dns_stream(
        &mut self,
        orig: &FiveTuple,
        packet: &[u8],
        seen: usize,
        client: IpAddr,
        why: &str,
        now: Now,
    ) -> Verdict {
        self.counters.dns_refused += 1;
        let decision = Decision {
            action: Action::Block,
            rule: Some("dns-refused".into()),
            logged: Vec::new(),
            enforced: true,
        };
        let mut first = false;
        if let Some(f) = self.flows.get_mut(orig) {
            first = f.decision.is_none();
            f.decision = Some(decision.clone());
            f.dns_stream = Default::default();
            f.last_seen = now.unix;
        }
        if first {
            // Refused before anything else decided it: counted as blocked.
            self.record_decision(orig, now.unix);
        }
        self.flows.recount(orig);
        self.log_sinkhole("refused a DNS-over-TCP connection:", why, client, "-");
        // The reset at the client's next expected byte (`seen` bytes of the
        // segment it has already), else it would answer a challenge ACK.
        match crate::inspect::sinkhole::tcp_reset_instead(packet, seen as u32) {
            Some(reset) => Verdict::AcceptPayload { payload: reset },
            None => verdict_for(&decision, true),
        }
    }

    /// Learns what a DNS message to `client` teaches; when the sinkhole is
    /// on and the policy blocks its names for that device, returns the
    /// name and the rule. Judged on the question and its CNAME chain (so an
    /// HTTPS/SVCB or NODATA answer counts as much as an A answer), and on
    /// every name that leads to an address in it. The question is read even
    /// from a message cut short.
    pub(super) fn judge_dns_answer(
        &mut self,
        msg: &[u8],
        client: IpAddr,
        now: Now,
    ) -> Option<(String, String)> {
        let answer = names::parse_dns_response(msg);
        let mac = self.devices.mac_of(&client);
        if let Some(a) = &answer {
            self.names
                .learn(names::Asker::new(mac, client), a, now.mono);
        }
        if self.sinkhole == crate::inspect::sinkhole::SinkholeMode::Off {
            return None;
        }
        let question: Option<NameChain> = match &answer {
            Some(a) => a.question.clone(),
            None => names::question_name(msg).map(|q| vec![q].into()),
        };
        if answer.is_none() && self.policy.can_block() {
            // A reply this reader cannot read may still be one a stub
            // resolver reads: it does not pass unjudged.
            let name = question.as_ref().and_then(|q| q.first().cloned());
            return Some((
                name.unwrap_or_else(|| "an unreadable answer".into()),
                "-".into(),
            ));
        }
        let mut chains: Vec<NameChain> = question.into_iter().collect();
        for (_, chain, _) in answer.iter().flat_map(|a| &a.answers) {
            if !chains.contains(chain) {
                chains.push(chain.clone());
            }
        }
        for name in answer.iter().flat_map(|a| &a.other_names) {
            chains.push(vec![name.clone()].into());
        }
        chains.iter().find_map(|chain| {
            let owners = owners::attribute(chain, IpAddr::from([0u8, 0, 0, 0])).owners; // names only
            self.policy
                .decide_name(&FlowFacts {
                    mac,
                    names: chain,
                    owners: &owners,
                    time: now.local,
                    ..Default::default()
                })
                .filter(|d| d.enforced)
                .map(|d| {
                    let name = chain.first().cloned().unwrap_or_default();
                    (name, d.rule.unwrap_or_else(|| "-".into()))
                })
        })
    }

    pub(super) fn log_sinkhole(&self, what: &str, name: &str, client: IpAddr, rule: &str) {
        if self.quiet {
            return;
        }
        let mac = self.devices.mac_of(&client);
        eprintln!(
            "phonehome: {what} {name} for {} (rule {rule})",
            mac.map_or_else(|| client.to_string(), |m| format_mac(&m)),
        );
    }
}

/// The first question of a DNS query a client sent: the UDP payload, or a
/// TCP segment starting with the message's length prefix.
pub(super) fn dns_query_of(payload: &[u8], proto: u8) -> Option<String> {
    let msg = if proto == PROTO_TCP {
        payload.get(2..)?
    } else {
        payload
    };
    names::query_name(msg)
}

pub(super) fn is_dns(t: &FiveTuple) -> bool {
    t.dport == 53 && (t.proto == PROTO_UDP || t.proto == PROTO_TCP)
}
