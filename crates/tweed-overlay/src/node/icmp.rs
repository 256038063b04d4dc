//! Packets for the node itself (echo replies) and the ICMP errors it sends, rate-limited.

use super::*;

/// A token bucket (RFC 1812 §4.3.2.8 rate limiting of ICMP errors).
#[derive(Clone, Copy, Debug)]
pub(super) struct Bucket {
    pub(super) tokens: u64,
    pub(super) last: u64,
    pub(super) per_sec: u64,
    pub(super) burst: u64,
}

impl Bucket {
    pub(super) const SCALE: u64 = 1_000_000_000;

    pub(super) fn take(&mut self, now: u64) -> bool {
        let elapsed = now.saturating_sub(self.last);
        self.last = self.last.max(now);
        let cap = self.burst * Self::SCALE;
        self.tokens = self.tokens.saturating_add(elapsed.saturating_mul(self.per_sec)).min(cap);
        if self.tokens >= Self::SCALE {
            self.tokens -= Self::SCALE;
            true
        } else {
            false
        }
    }
}

impl Node {
    /// A packet for the node itself: echo requests are answered, the rest goes to the host.
    pub(super) fn deliver_self(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        origin: Origin,
        out: &mut Outputs,
    ) -> Option<Verdict> {
        let data = buf.data_mut();
        let ip = ipv4::Packet::new_unchecked(&data[ETH..]);
        let hl = ip.header_len();
        let is_echo = ip.protocol() == ipv4::Protocol::ICMP
            && !ip.is_fragment()
            && data.get(ETH + hl) == Some(&icmpv4::Message::ECHO_REQUEST.0)
            && data.len() >= ETH + hl + icmpv4::HEADER_LEN;
        if !is_echo || origin == Origin::Node {
            if buf.pull_front(ETH).is_err() {
                return Some(Verdict::Drop(DropReason::Ipv4Malformed));
            }
            self.counters.to_tun += 1;
            return Some(Verdict::Tun);
        }
        // Answer in place: swap the addresses (the header checksum does not change), type 8 → 0.
        let mut ipm = ipv4::Packet::new_unchecked(&mut data[ETH..]);
        let (src, dst) = (ipm.src_addr(), ipm.dst_addr());
        ipm.set_src_addr(dst);
        ipm.set_dst_addr(src);
        let old_ttl = ipm.ttl();
        ipm.set_ttl(64);
        let c = checksum::update16(
            ipm.checksum(),
            u16::from_be_bytes([old_ttl, ipm.protocol().0]),
            u16::from_be_bytes([64, ipm.protocol().0]),
        );
        ipm.set_checksum(c);
        let mut icmp = icmpv4::Packet::new_unchecked(&mut ipm.payload_mut()[..]);
        icmp.set_msg_type(icmpv4::Message::ECHO_REPLY);
        let c = checksum::update16(icmp.checksum(), 0x0800, 0x0000);
        icmp.set_checksum(c);
        self.counters.echo_replies += 1;
        let Some(id) = self.routes.lookup(u32::from(src)) else {
            return Some(Verdict::Drop(DropReason::NoRoute));
        };
        self.forward(now, pool, buf, id, src, out)
    }

    /// Sends an ICMP error about the IPv4 packet in `buf` (not yet changed) back to its source, routed as any
    /// packet, unless RFC 1812 §4.3.2.7 forbids it or the rate limit says no.
    pub(super) fn icmp_error(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &PacketBuf,
        kind: ErrorKind,
        out: &mut Outputs,
    ) {
        let original = &buf.data()[ETH..];
        if !icmpv4::may_send_error(&ipv4::Packet::new_unchecked(original)) {
            self.counters.icmp_suppressed += 1;
            return;
        }
        if !self.icmp.take(now) {
            self.counters.icmp_rate_limited += 1;
            return;
        }
        let Some(mut err) = pool.get() else {
            self.counters.count_drop(DropReason::PoolExhausted);
            return;
        };
        let mut frame = [0u8; ETH + 96];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        let Ok(len) = icmpv4::emit_error(kind, self.gw_ip, original, &mut frame[ETH..]) else {
            pool.put(err);
            return;
        };
        if err.extend_from_slice(&frame[..ETH + len]).is_err() {
            pool.put(err);
            return;
        }
        err.meta_mut().ingress = buf.meta().ingress;
        self.counters.icmp_errors += 1;
        let verdict = self.route_frame(now, pool, &mut err, Origin::Node, None, out);
        self.emit(now, err, verdict, pool, out);
    }
}
