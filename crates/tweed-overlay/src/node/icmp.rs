//! Packets for the node itself (echo replies) and the ICMP errors it sends, rate-limited.

use core::hash::BuildHasher as _;

use foldhash::fast::RandomState;

use super::*;

/// A token bucket (RFC 1812 §4.3.2.8 rate limiting of ICMP errors), in nanotokens.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: u64,
    last: u64,
}

const SCALE: u64 = 1_000_000_000;

impl Bucket {
    const fn full(burst: u64, now: u64) -> Self {
        Self { tokens: burst * SCALE, last: now }
    }

    fn take(&mut self, now: u64, per_sec: u64, burst: u64) -> bool {
        let elapsed = now.saturating_sub(self.last);
        self.last = self.last.max(now);
        self.tokens = self.tokens.saturating_add(elapsed.saturating_mul(per_sec)).min(burst * SCALE);
        if self.tokens >= SCALE {
            self.tokens -= SCALE;
            true
        } else {
            false
        }
    }
}

/// Source buckets: a fixed table, so that its memory does not grow with the sources an attacker can make up.
const SOURCES: usize = 256;

/// The ICMP error limits: a bucket per source of the offending packets, then a global bucket. The source is the
/// pod port for a pod's packets (whatever address it claims: without port security a pod may use any address of
/// the subnet, and must not get a bucket per address), and the source address for the others (as Linux's per-peer
/// limit). Buckets live in a fixed table indexed by a hash with a seed of the node's own (so that nobody can choose
/// sources that share a bucket). One source sending TTL 1 as fast as it can uses up its own bucket, and the global
/// one only up to its own rate, far below the global one's.
pub(super) struct IcmpLimit {
    /// (source, bucket) per slot; a source that finds another in its slot takes the slot with a full bucket (a
    /// collision gives both sources more errors, never fewer; the global bucket bounds the total). Keys: a pod
    /// port is `1 << 32 | port`, an address its 32 bits (0.0.0.0, a martian, never gets an error: an unused
    /// slot's key).
    slots: Box<[(u64, Bucket)]>,
    hasher: RandomState,
    global: Bucket,
    per_sec: u64,
    burst: u64,
    global_per_sec: u64,
    global_burst: u64,
}

impl IcmpLimit {
    pub(super) fn new(limits: &crate::Limits) -> Self {
        let burst = u64::from(limits.icmp_burst);
        let global_burst = u64::from(limits.icmp_global_burst);
        Self {
            slots: vec![(0, Bucket::full(burst, 0)); SOURCES].into_boxed_slice(),
            hasher: RandomState::default(),
            global: Bucket::full(global_burst, 0),
            per_sec: u64::from(limits.icmp_per_sec),
            burst,
            global_per_sec: u64::from(limits.icmp_global_per_sec),
            global_burst,
        }
    }

    /// Whether an error about a packet from source `key` may go now (and if so, its tokens are taken).
    fn allow(&mut self, key: u64, now: u64) -> bool {
        #[allow(clippy::cast_possible_truncation)] // the remainder is below SOURCES
        let i = (self.hasher.hash_one(key) % SOURCES as u64) as usize;
        let slot = &mut self.slots[i];
        if slot.0 != key {
            *slot = (key, Bucket::full(self.burst, now));
        }
        slot.1.take(now, self.per_sec, self.burst) && self.global.take(now, self.global_per_sec, self.global_burst)
    }
}

impl<E: Encapsulation> Node<E> {
    /// A packet for the node itself: echo requests are answered, the rest goes to the host.
    pub(super) fn deliver_self(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        origin: Origin,
        l3: usize,
        out: &mut Outputs,
    ) -> Step {
        let data = buf.data_mut();
        let ip = ipv4::Packet::new_unchecked(&data[l3..]);
        let hl = ip.header_len();
        let is_echo = ip.protocol() == ipv4::Protocol::ICMP
            && !ip.is_fragment()
            && data.get(l3 + hl) == Some(&icmpv4::Message::ECHO_REQUEST.0)
            && data.len() >= l3 + hl + icmpv4::HEADER_LEN;
        if !is_echo || origin == Origin::Node {
            return match self.host_port {
                Some(host) => self.out_of_ip_port(buf, host, l3),
                None => Step::drop(DropReason::NoHostPort),
            };
        }
        // Answer in place: swap the addresses (the header checksum does not change), type 8 → 0.
        let mut ipm = ipv4::Packet::new_unchecked(&mut data[l3..]);
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
            return Step::drop(DropReason::NoRoute);
        };
        // The reply is as big as the request, which a peer may have sent over the inner MTU: the MTU rule too.
        match self.route_hop(now, pool, buf, Origin::Node, Some(id), l3, out) {
            Ok((id, dst)) => self.forward(now, pool, buf, id, dst, l3, out),
            Err(step) => step,
        }
    }

    /// Sends an ICMP error about the IPv4 packet in `buf` (not yet changed) back to its source, routed as any
    /// packet, unless RFC 1812 §4.3.2.7 forbids it or the rate limit says no.
    pub(super) fn icmp_error(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &PacketBuf,
        l3: usize,
        kind: ErrorKind,
        out: &mut Outputs,
    ) {
        let original = &buf.data()[l3..];
        if !icmpv4::may_send_error(&ipv4::Packet::new_unchecked(original)) {
            self.counters.icmp_suppressed += 1;
            return;
        }
        let ingress = buf.meta().ingress;
        let key = if self.kinds[usize::from(ingress.0)] == PortKind::Pod {
            1 << 32 | u64::from(ingress.0)
        } else {
            u64::from(u32::from(ipv4::Packet::new_unchecked(original).src_addr()))
        };
        if !self.icmp.allow(key, now) {
            self.counters.icmp_rate_limited += 1;
            return;
        }
        let Some(mut err) = pool.get() else {
            self.counters.count_drop(DropReason::PoolExhausted);
            return;
        };
        let mut frame = [0u8; ETH + 96];
        ethernet::Frame::new_unchecked(&mut frame[..]).set_outer_ethertype(EtherType::IPV4);
        let Ok(len) = icmpv4::emit_error(kind, self.icmp_src, original, &mut frame[ETH..]) else {
            pool.put(err);
            return;
        };
        if err.extend_from_slice(&frame[..ETH + len]).is_err() {
            pool.put(err);
            return;
        }
        err.meta_mut().ingress = buf.meta().ingress;
        self.counters.icmp_errors += 1;
        self.counters.originated += 1;
        let step = self.route_frame(now, pool, &mut err, Origin::Node, None, ETH, out);
        self.emit_extra(now, err, step, pool, out);
    }
}
