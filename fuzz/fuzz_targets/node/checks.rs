//! The checks on each call of `Node::process` (see the target's documentation in `node.rs`).

use std::collections::HashSet;

use tweed_overlay::{Counters, DropReason, Outputs, Verdict};
use tweed_packet::Batch;
use tweed_switch::Instant;
use tweed_wire::checksum;

use crate::frames::{self, Kind};
use crate::{Harness, allow_known, debug};

/// The difference of two counter snapshots, field by field; asserts that none went back.
fn delta(a: &Counters, b: &Counters) -> Counters {
    let d = |x: u64, y: u64, name: &str| {
        assert!(y >= x, "counter {name} went back: {x} -> {y}");
        y - x
    };
    let mut drops = [0; DropReason::COUNT];
    for r in DropReason::ALL {
        drops[*r as usize] = d(a.drop_count(*r), b.drop_count(*r), r.as_str());
    }
    // Counters added later than this target stay as they are (not a delta) until the checks use them.
    let mut c = b.clone();
    c.rx_pod = d(a.rx_pod, b.rx_pod, "rx_pod");
    c.rx_underlay = d(a.rx_underlay, b.rx_underlay, "rx_underlay");
    c.rx_host = d(a.rx_host, b.rx_host, "rx_host");
    c.switched = d(a.switched, b.switched, "switched");
    c.to_pod = d(a.to_pod, b.to_pod, "to_pod");
    c.to_peer = d(a.to_peer, b.to_peer, "to_peer");
    c.from_peer = d(a.from_peer, b.from_peer, "from_peer");
    c.to_tun = d(a.to_tun, b.to_tun, "to_tun");
    c.arp_replies = d(a.arp_replies, b.arp_replies, "arp_replies");
    c.arp_requests = d(a.arp_requests, b.arp_requests, "arp_requests");
    c.arp_consumed = d(a.arp_consumed, b.arp_consumed, "arp_consumed");
    c.arp_queued = d(a.arp_queued, b.arp_queued, "arp_queued");
    c.arp_released = d(a.arp_released, b.arp_released, "arp_released");
    c.echo_replies = d(a.echo_replies, b.echo_replies, "echo_replies");
    c.icmp_errors = d(a.icmp_errors, b.icmp_errors, "icmp_errors");
    c.icmp_rate_limited = d(a.icmp_rate_limited, b.icmp_rate_limited, "icmp_rate_limited");
    c.icmp_suppressed = d(a.icmp_suppressed, b.icmp_suppressed, "icmp_suppressed");
    c.discarded = d(a.discarded, b.discarded, "discarded");
    c.drops = drops;
    c
}

fn ipv4_ok(ip: &[u8]) -> bool {
    let Some(&vihl) = ip.first() else { return false };
    let hl = usize::from(vihl & 0x0f) * 4;
    vihl >> 4 == 4 && hl >= 20 && ip.len() >= hl && checksum::verify(&ip[..hl])
}

/// An ARP request the node sent (from the gateway MAC).
fn is_our_arp_request(f: &[u8]) -> bool {
    f.len() >= 42 && f[6..12] == frames::GW_MAC && f[12..14] == [8, 6] && f[20..22] == [0, 1]
}

impl Harness {
    /// One call of `process`, and every check on it.
    pub(crate) fn call(&mut self, batch: &mut Batch, cap: usize) {
        let mut out = Outputs::new(cap);
        let c0 = self.node.counters().clone();
        let (a0, p0, b0) = (self.pool.available(), self.node.arp_pending(), batch.len());
        let tags_in: Vec<u64> = batch.iter().map(|b| b.meta().timestamp).collect();

        self.node.process(Instant::from_nanos(self.now), &mut self.pool, batch, &mut out);

        let d = delta(&c0, self.node.counters());
        let (a1, p1, b1) = (self.pool.available(), self.node.arp_pending(), batch.len());
        let left: HashSet<u64> = batch.iter().map(|b| b.meta().timestamp).collect();
        let consumed: HashSet<u64> = tags_in.iter().copied().filter(|t| !left.contains(t)).collect();
        let n_in = b0 - b1;
        let drops = |r: DropReason| d.drop_count(r);
        // Packets that found `out` full: the node counts each once, under its own drop reason or `output_full`,
        // and in `discarded`; they leave no output.
        let full = d.discarded;

        if debug() {
            eprintln!(
                "call now={} in={b0} consumed={n_in} room={cap} out={} pending {p0}->{p1} pool {a0}->{a1} drops {:?}",
                self.now,
                out.len(),
                d.nonzero_drops().collect::<Vec<_>>()
            );
            for (buf, v) in out.as_slice() {
                eprintln!("  out tag={} {v:?} len={}", buf.meta().timestamp, buf.len());
            }
        }

        // Progress: the documented exception is an `out` without room, which this call never gets.
        if b0 > 0 && cap > 0 && !allow_known() {
            let arp = out.as_slice().iter().filter(|(b, _)| is_our_arp_request(b.data())).count();
            assert!(
                n_in > 0,
                "process consumed none of {b0} inputs with room for {cap} outputs: out holds {} ({arp} ARP requests), \
                 {p1} packets wait for ARP (issue 12 finding 1)",
                out.len()
            );
        }
        assert_eq!(consumed.len(), n_in, "the inputs left in the batch are the last ones, unchanged");
        assert!(out.len() <= cap, "{} outputs in room for {cap}", out.len());
        assert_eq!(a0 + b0 + p0, a1 + b1 + p1 + out.len(), "buffers conserved (pool + batch + ARP queue + out)");
        assert_eq!(
            n_in as u64,
            d.rx_pod + d.rx_underlay + d.rx_host + drops(DropReason::UnknownPort),
            "each input counted once as received (rx_pod + rx_underlay + rx_host + unknown_port)"
        );

        // Each output: its tag, its verdict's tally, its shape.
        let mut dropped = [0u64; DropReason::COUNT];
        let (mut tun, mut underlay, mut used_up, mut pod_tagged, mut pod_arp_req, mut pod_other) = (0, 0, 0, 0, 0, 0);
        let (mut from_this_call, mut from_queue) = (0, 0);
        let peers: Vec<std::net::IpAddr> = self.node.peers().map(|p| p.node_ip).collect();
        let mut seen_now = HashSet::new();
        // A flood leaves the frame itself (tagged) and copies of it (untagged, from the pool) in the same call.
        let tagged_pod: HashSet<&[u8]> = out
            .as_slice()
            .iter()
            .filter(|(b, v)| b.meta().timestamp != 0 && matches!(v, Verdict::Port(_)))
            .map(|(b, _)| b.data())
            .collect();
        let mut pod_copies = 0u64;
        for (buf, verdict) in out.as_slice() {
            let tag = buf.meta().timestamp;
            if tag != 0 {
                if consumed.contains(&tag) {
                    assert!(seen_now.insert(tag), "input {tag} came out twice in one call");
                    from_this_call += 1;
                } else {
                    assert!(self.live.remove(&tag), "output tag {tag}: not an input of this call nor one still queued");
                    from_queue += 1;
                    assert!(
                        matches!(verdict, Verdict::Port(_) | Verdict::Drop(_)),
                        "a packet from the ARP queue left as {verdict:?}"
                    );
                }
            }
            let data = buf.data();
            match *verdict {
                Verdict::Port(p) if p.0 == frames::HOST_PORT => {
                    tun += 1;
                    assert!(ipv4_ok(data), "a packet to the TUN with a bad IPv4 header");
                }
                Verdict::Port(p) => {
                    // The bridge's own MAC is at port u16::MAX (tweed_switch::PortId::LOCAL).
                    assert!(
                        (p.0 >= 1 && p.0 <= u16::from(self.pods)) || (p.0 == u16::MAX && allow_known()),
                        "output to {p}, not a pod port"
                    );
                    assert!(data.len() >= 14, "a frame to a pod shorter than an Ethernet header");
                    if tag != 0 {
                        pod_tagged += 1;
                    } else if is_our_arp_request(data) {
                        pod_arp_req += 1;
                    } else if tagged_pod.contains(data) {
                        pod_copies += 1;
                    } else {
                        // ICMP errors the node sent to a pod, now or from the ARP queue.
                        pod_other += 1;
                    }
                }
                Verdict::Underlay { dst, payload_offset } => {
                    underlay += 1;
                    assert!(peers.contains(&dst.ip()), "underlay output to {dst}, not a peer");
                    self.check_underlay(data, dst.port(), payload_offset);
                }
                Verdict::Consumed => used_up += 1,
                Verdict::Drop(r) => dropped[r as usize] += 1,
                _ => panic!("a verdict this target does not know: {verdict:?}"),
            }
        }

        // The counters against the outputs. Discarded packets leave no output: the budget for anything counted
        // that did not come out.
        let mut missing = 0;
        for r in DropReason::ALL {
            let (counted, out_n) = (drops(*r), dropped[*r as usize]);
            assert!(counted >= out_n, "{out_n} outputs dropped as {r}, counted {counted}");
            if !matches!(r, DropReason::OutputFull | DropReason::PoolExhausted | DropReason::ArpQueueFull) {
                missing += counted - out_n;
            }
        }
        let tally = |counted: u64, out_n: u64, what: &str| {
            assert!(counted >= out_n, "{out_n} outputs {what}, counted {counted}");
            counted - out_n
        };
        missing += tally(d.to_tun, tun, "to the TUN");
        missing += tally(d.to_peer, underlay, "to peers");
        missing += tally(d.arp_consumed, used_up, "consumed");
        assert!(
            missing <= full,
            "{missing} packets counted as sent or dropped did not come out, {full} discarded"
        );
        // Pod outputs: the node's own ARP requests (one per pod port per `arp_requests`), flood copies (up to
        // pods - 2 per flood, counted in `switched` once), and the rest, one for each of `to_pod`, `switched` and
        // `arp_replies`. Exact unless `out` filled (a copy whose original found `out` full is not recognised as
        // one), or, for the requests, the pool ran dry.
        let pods = u64::from(self.pods);
        let delivered = pod_tagged + pod_other;
        let pool_dry = drops(DropReason::PoolExhausted);
        assert!(
            pod_arp_req <= d.arp_requests * pods,
            "{pod_arp_req} ARP requests out, {} x {pods} pods",
            d.arp_requests
        );
        assert!(
            pod_tagged <= d.to_pod + d.switched + d.arp_replies,
            "{pod_tagged} pod outputs of inputs beyond to_pod {} + switched {} + arp_replies {}",
            d.to_pod,
            d.switched,
            d.arp_replies
        );
        assert!(
            delivered + pod_copies <= d.to_pod + d.switched * pods.saturating_sub(1).max(1) + d.arp_replies,
            "{} pod outputs beyond to_pod {} + switched {} x {} ports + arp_replies {}",
            delivered + pod_copies,
            d.to_pod,
            d.switched,
            pods.saturating_sub(1),
            d.arp_replies
        );
        if full == 0 {
            assert!(
                pod_copies <= d.switched * pods.saturating_sub(2),
                "{pod_copies} flood copies, {} switched",
                d.switched
            );
            assert_eq!(
                delivered,
                d.to_pod + d.switched + d.arp_replies,
                "pod outputs (not ARP requests or flood copies) are to_pod + switched + arp_replies"
            );
            if pool_dry == 0 {
                assert_eq!(pod_arp_req, d.arp_requests * pods, "each ARP request goes to every pod port");
            }
        }

        // The ARP queue: what left it was released, timed out, or found no port.
        assert!(p0 as u64 + d.arp_queued >= p1 as u64, "ARP queue {p0} + {} queued < {p1}", d.arp_queued);
        let queue_left = p0 as u64 + d.arp_queued - p1 as u64;
        let accounted = d.arp_released + drops(DropReason::ArpTimeout);
        assert!(
            queue_left >= accounted && queue_left <= accounted + drops(DropReason::PodPortUnknown),
            "ARP queue {p0} + {} queued - {p1} = {queue_left} left it, released {} + timed out {}",
            d.arp_queued,
            d.arp_released,
            drops(DropReason::ArpTimeout)
        );
        assert!(from_queue as usize <= p0, "{from_queue} earlier inputs came out, {p0} were queued");

        // Inputs of this call that did not come out: queued, or dropped silently.
        let silent = full + drops(DropReason::ArpQueueFull) - dropped[DropReason::ArpQueueFull as usize];
        let not_out = n_in as u64 - from_this_call;
        assert!(not_out <= d.arp_queued + silent, "{not_out} inputs neither out nor queued ({silent} silent drops)");
        self.silent += silent;
        self.live.extend(consumed.iter().filter(|t| !seen_now.contains(*t)));
        assert!(
            self.live.len() as u64 <= p1 as u64 + self.silent,
            "{} inputs never came out, {p1} wait for ARP, {} dropped silently",
            self.live.len(),
            self.silent
        );
        out.recycle(&mut self.pool);
    }

    /// An underlay frame is the backend's encapsulation, with valid outer and inner IPv4 headers.
    fn check_underlay(&self, f: &[u8], port: u16, payload_offset: u16) {
        let (want_port, want_offset, inner) = match self.kind {
            Kind::Vxlan => (frames::VXLAN_PORT, 42, 42 + 8 + 14),
            Kind::Udp => (frames::UDP_PORT, 42, 42),
            Kind::HostGw => (0, 14, 14),
        };
        assert_eq!((port, payload_offset), (want_port, want_offset), "underlay verdict's port and offset");
        assert!(f.len() > inner, "underlay frame of {} bytes", f.len());
        assert_eq!(&f[6..12], &frames::NODE_MAC, "underlay frame not from our node MAC");
        if self.kind != Kind::HostGw {
            assert!(ipv4_ok(&f[14..]), "bad outer IPv4 header");
            let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
            assert_eq!(total, f.len() - 14, "outer IPv4 total length");
            assert_eq!(&f[26..30], &frames::NODE_IP.octets(), "outer source");
            let udp_len = usize::from(u16::from_be_bytes([f[38], f[39]]));
            assert_eq!(udp_len, f.len() - 34, "outer UDP length");
        }
        if self.kind == Kind::Vxlan {
            assert_eq!(&f[42..50], &[8, 0, 0, 0, 0, 0, frames::VNI as u8, 0], "VXLAN header");
            assert_eq!(&f[56..62], &frames::VTEP_MAC, "inner source MAC");
        }
        assert!(ipv4_ok(&f[inner..]), "bad inner IPv4 header in an underlay frame");
        let len = usize::from(u16::from_be_bytes([f[inner + 2], f[inner + 3]]));
        assert_eq!(len, f.len() - inner, "inner IPv4 total length is the frame's rest");
        let echo_reply = f[inner + 9] == 1 && f.get(inner + usize::from(f[inner] & 0x0f) * 4) == Some(&0);
        assert!(
            len <= usize::from(self.node.inner_mtu()) || (echo_reply && allow_known()),
            "inner packet of {len} bytes over the inner MTU {}",
            self.node.inner_mtu()
        );
    }
}
