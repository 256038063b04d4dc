//! The stages of [`Node::process`], each over the whole batch: classify (ports, decapsulation, the bridge), route
//! (checks, one lookup for the batch, TTL and MTU), rewrite (local delivery, an IP port, or the encapsulation).

use super::*;

/// The bridge's decisions for `frames`: its one call site in the node (the learning other workers tell goes
/// through here too), so that its per-frame work is inlined here, in one copy, whatever calls it.
#[inline(never)]
pub(super) fn bridge_frames(
    bridge: &mut Bridge,
    at: Instant,
    frames: &[(tweed_switch::PortId, &[u8])],
    decisions: &mut [Decision],
) {
    bridge.process(at, frames, decisions);
}

impl<E: Encapsulation> Node<E> {
    /// Stage 1, classify: by ingress. Underlay frames are checked against the peers and decapsulated (their
    /// outer headers pulled off); pod frames go through the bridge, [`BRIDGE_BATCH`] frames per call of
    /// [`Bridge::process`], and its decisions are carried out (switching, flooding, ARP replies); frames the
    /// bridge hands to the host are bound for the router.
    pub(super) fn stage_classify(
        &mut self,
        now: u64,
        pool: &mut Pool,
        bufs: &mut [PacketBuf],
        steps: &mut Vec<Step>,
        out: &mut Outputs,
    ) {
        let mut pods = 0;
        for buf in bufs.iter_mut() {
            let ingress = buf.meta().ingress;
            let step = match self.kinds[usize::from(ingress.0)] {
                PortKind::UnderlayFrame => {
                    self.counters.rx_underlay += 1;
                    self.rx_underlay(buf, false)
                }
                PortKind::UnderlayDatagram => {
                    self.counters.rx_underlay += 1;
                    self.rx_underlay(buf, true)
                }
                PortKind::Pod => {
                    self.counters.rx_pod += 1;
                    match self.check_pod_source(usize::from(ingress.0), buf.data(), now) {
                        Ok(()) => {
                            pods += 1;
                            Step::Bridge
                        }
                        Err(reason) => Step::drop(reason),
                    }
                }
                PortKind::Host => {
                    self.counters.rx_host += 1;
                    Step::Route { origin: Origin::Host, from_peer: None, l3: 0 }
                }
                PortKind::Ip => {
                    self.counters.rx_port += 1;
                    Step::Route { origin: Origin::Port, from_peer: None, l3: 0 }
                }
                PortKind::Unknown => Step::drop(DropReason::UnknownPort),
            };
            steps.push(step);
        }
        if pods == 0 {
            return;
        }
        let at = Instant::from_nanos(now);
        // The other workers hear of MACs learnt here (see `learn.rs`): two loads per batch in steady state.
        let learnt = self.bridge.fdb().learned_len();
        let mut i = 0;
        while i < bufs.len() {
            let mut idx = [0u16; BRIDGE_BATCH];
            let mut decisions = [Decision::Local; BRIDGE_BATCH];
            let mut m = 0;
            {
                let mut frames: [(tweed_switch::PortId, &[u8]); BRIDGE_BATCH] =
                    [(tweed_switch::PortId(0), &[]); BRIDGE_BATCH];
                while i < bufs.len() && m < BRIDGE_BATCH {
                    if matches!(steps[i], Step::Bridge) {
                        frames[m] = (sw(bufs[i].meta().ingress), bufs[i].data());
                        idx[m] = i as u16;
                        m += 1;
                    }
                    i += 1;
                }
                if m == 0 {
                    break;
                }
                bridge_frames(&mut self.bridge, at, &frames[..m], &mut decisions[..m]);
            }
            for (&i, &decision) in idx[..m].iter().zip(&decisions[..m]) {
                let i = usize::from(i);
                steps[i] = self.rx_pod_frame(now, pool, &mut bufs[i], decision, out);
            }
        }
        if self.bridge.fdb().learned_len() != learnt {
            self.fdb_learnt(now, bufs);
        }
    }

    /// Stage 2, route: the RFC 1812 checks of every packet bound for the router (packets for the node itself
    /// are answered or sent to the host here), then one LPM lookup over the batch's destinations, then per
    /// packet: no route, TTL, MTU, TTL decrement.
    pub(super) fn stage_route(
        &mut self,
        now: u64,
        pool: &mut Pool,
        bufs: &mut [PacketBuf],
        s: &mut Scratch,
        out: &mut Outputs,
    ) {
        s.addrs.clear();
        for (buf, step) in bufs.iter_mut().zip(s.steps.iter_mut()) {
            if let Step::Route { origin, from_peer, l3 } = *step {
                *step = match self.route_check(now, pool, buf, origin, from_peer, usize::from(l3), out) {
                    Ok(dst) => {
                        s.addrs.push(dst);
                        Step::Lookup { origin, l3 }
                    }
                    Err(step) => step,
                };
            }
        }
        if s.addrs.is_empty() {
            return;
        }
        s.hops.clear();
        s.hops.resize(s.addrs.len(), None);
        let found = self.routes.lookup_batch(&s.addrs, &mut s.hops);
        debug_assert_eq!(found, s.addrs.len());
        let mut hops = s.hops.iter();
        for (buf, step) in bufs.iter_mut().zip(s.steps.iter_mut()) {
            if let Step::Lookup { origin, l3 } = *step {
                let hop = hops.next().copied().flatten();
                *step = match self.route_hop(now, pool, buf, origin, hop, usize::from(l3), out) {
                    Ok((id, dst)) => Step::Forward { id, dst, l3 },
                    Err(step) => step,
                };
            }
        }
    }

    /// Stage 3, rewrite: every routed packet to its next hop: local delivery (the pod's MAC from the ARP table,
    /// or the ARP queue), an IP port, or the encapsulation and the peer's outer headers.
    pub(super) fn stage_rewrite(
        &mut self,
        now: u64,
        pool: &mut Pool,
        bufs: &mut [PacketBuf],
        steps: &mut [Step],
        out: &mut Outputs,
    ) {
        for (buf, step) in bufs.iter_mut().zip(steps.iter_mut()) {
            if let Step::Forward { id, dst, l3 } = *step {
                *step = self.forward(now, pool, buf, id, dst, usize::from(l3), out);
            }
        }
    }
}
