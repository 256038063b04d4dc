//! Resolution of local pods' MACs, as the kernel's neighbour table does it: an address the ARP table does not
//! know gets an entry, INCOMPLETE while the node asks for it (a request out of every pod port, then again every
//! `arp_retry_ms`, `arp_probes` times in all), then FAILED for `arp_failed_ms` if nobody answered: packets to it are
//! then dropped at once ([`DropReason::ArpFailed`]) and no request goes out. The entry goes when the address
//! answers (any ARP frame from a pod with it as sender) or when its failed time is over. Packets wait in a queue of
//! `arp_queue` packets for at most `arp_timeout_ms`.
//!
//! Everything is bounded: `arp_entries` entries, `arp_queue` packets (`arp_queue_per_port` from one ingress
//! port), and for each address at most `arp_probes` requests per `arp_probes × arp_retry_ms + arp_failed_ms`. An
//! entry is made only for a packet that gets a place in the queue.

use super::*;

/// A packet waiting for its destination's MAC.
pub(super) struct Pending {
    pub(super) ip: Ipv4Addr,
    pub(super) since: u64,
    pub(super) buf: PacketBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Being asked for: `probes` requests sent, the next one due at `next`; started at `started`.
    Incomplete { probes: u8, next: u64, started: u64 },
    /// Nobody answered: packets to it are dropped until `until`.
    Failed { until: u64 },
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Entry {
    ip: Ipv4Addr,
    state: State,
}

/// The neighbour table and the ARP queue.
pub(super) struct Neighbours {
    pub(super) entries: Vec<Entry>,
    pub(super) pending: Vec<Pending>,
    /// Places in the queue promised (by `deliver_pod`) to packets of the batch not yet emitted.
    pub(super) promised: usize,
    /// Packets queued or promised a place, by ingress port (modulo [`PORT_SLOTS`]): no port may hold more than
    /// `per_port`, so that one pod (or the underlay, for all remote pods) cannot take the whole queue.
    by_port: Vec<u16>,
    per_port: u16,
    /// When the next timer (a retry, a failure, a timeout, the end of a failed time) is due: `service_neigh`
    /// has nothing to do before.
    next_due: u64,
    retry: u64,
    timeout: u64,
    failed: u64,
    probes: u8,
}

const MS: u64 = 1_000_000;

/// Per-port queue counters: every pod port (below [`tweed_switch::PortId::MAX`]) has its own; another port (the
/// underlay, the host) may share one with a pod port, which only makes both stricter.
const PORT_SLOTS: usize = tweed_switch::PortId::MAX;

const fn slot(port: PortId) -> usize {
    port.0 as usize % PORT_SLOTS
}

impl Neighbours {
    pub(super) fn new(limits: &crate::Limits) -> Self {
        Self {
            entries: Vec::with_capacity(usize::from(limits.arp_entries)),
            pending: Vec::with_capacity(usize::from(limits.arp_queue)),
            promised: 0,
            by_port: vec![0; PORT_SLOTS],
            per_port: limits.arp_queue_per_port,
            next_due: u64::MAX,
            retry: u64::from(limits.arp_retry_ms) * MS,
            timeout: u64::from(limits.arp_timeout_ms) * MS,
            failed: u64::from(limits.arp_failed_ms) * MS,
            probes: limits.arp_probes,
        }
    }

    fn find(&self, ip: Ipv4Addr) -> Option<usize> {
        self.entries.iter().position(|e| e.ip == ip)
    }

    fn queue_has_room(&self, port: PortId) -> bool {
        self.pending.len() + self.promised < self.pending.capacity() && self.by_port[slot(port)] < self.per_port
    }

    /// A packet left the queue (or its promised place was not used).
    fn left(&mut self, port: PortId) {
        let n = &mut self.by_port[slot(port)];
        *n = n.saturating_sub(1);
    }

    /// When the next timer is due (ns), if any.
    pub(super) fn poll_at(&self) -> Option<u64> {
        (self.next_due != u64::MAX).then_some(self.next_due)
    }

    /// Takes the `i`th queued packet out.
    fn take(&mut self, i: usize) -> Pending {
        let p = self.pending.swap_remove(i);
        self.left(p.buf.meta().ingress);
        p
    }
}

impl<E: Encapsulation> Node<E> {
    /// Delivers to a local pod, or queues the packet while asking for the pod's MAC. The IPv4 packet is at `l3`:
    /// behind an Ethernet header (rewritten here), or alone (one is put in front).
    pub(super) fn deliver_pod(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        dst: Ipv4Addr,
        l3: usize,
        out: &mut Outputs,
    ) -> Step {
        if l3 != ETH {
            let Ok(eth) = buf.push_front(ETH) else { return Step::drop(DropReason::NoHeadroom) };
            ethernet::Frame::new_unchecked(eth).set_outer_ethertype(EtherType::IPV4);
        }
        // A pod's entry while it is not dead, and only to the port that holds it; else ask again, as the kernel
        // does.
        if let Some((mac, port)) = self.bridge.resolve(BD, dst, Instant::from_nanos(now)) {
            if port == tweed_switch::PortId::LOCAL {
                // The bridge's own MAC (the gateway's address, routed back here): not a pod.
                return Step::drop(DropReason::PodPortUnknown);
            }
            set_macs(buf.data_mut(), mac, self.gw_mac);
            self.counters.to_pod += 1;
            return Step::Done(Verdict::Port(PortId(port.0)));
        }
        self.resolve(now, pool, buf, dst, out)
    }

    /// The slow path of `deliver_pod`: the address is not in the ARP table. The frame has its Ethernet header.
    #[inline(never)]
    fn resolve(&mut self, now: u64, pool: &mut Pool, buf: &mut PacketBuf, dst: Ipv4Addr, out: &mut Outputs) -> Step {
        let found = self.neigh.find(dst);
        if let Some(i) = found
            && let State::Failed { until } = self.neigh.entries[i].state
        {
            if now < until {
                let kind = ErrorKind::DstUnreachable(icmpv4::DstUnreachable::HostUnreachable);
                self.icmp_error(now, pool, buf, ETH, kind, out);
                return Step::drop(DropReason::ArpFailed);
            }
            self.neigh.entries.swap_remove(i);
            return self.resolve(now, pool, buf, dst, out);
        }
        // No entry without a place in the queue: that is what leaked before.
        let port = buf.meta().ingress;
        if !self.neigh.queue_has_room(port) {
            return Step::drop(DropReason::ArpQueueFull);
        }
        if found.is_none() {
            if self.neigh.entries.len() == self.neigh.entries.capacity() && !self.evict(now) {
                return Step::drop(DropReason::ArpTableFull);
            }
            self.neigh.entries.push(Entry { ip: dst, state: State::Incomplete { probes: 0, next: now, started: now } });
            let i = self.neigh.entries.len() - 1;
            self.probe(now, i, pool, out);
        }
        // `emit` queues the packet in the place promised here.
        self.neigh.promised += 1;
        self.neigh.by_port[slot(port)] += 1;
        Step::Arp(dst)
    }

    /// Makes room in a full table: an expired failed entry, else the oldest failed one, else an incomplete one
    /// no packet waits for. `false`: every entry has packets waiting.
    fn evict(&mut self, now: u64) -> bool {
        let n = &self.neigh;
        let failed = n
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e.state {
                State::Failed { until } => Some((until.min(now), i)),
                State::Incomplete { .. } => None,
            })
            .min()
            .map(|(_, i)| i);
        let idle = || n.entries.iter().position(|e| !n.pending.iter().any(|p| p.ip == e.ip));
        match failed.or_else(idle) {
            Some(i) => {
                self.neigh.entries.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Sends a request for entry `i` out of every pod port (into the room beyond the batch's: without it, the
    /// request is lost as on a full link, and counted).
    fn probe(&mut self, now: u64, i: usize, pool: &mut Pool, out: &mut Outputs) {
        let State::Incomplete { probes, started, .. } = self.neigh.entries[i].state else { return };
        let ip = self.neigh.entries[i].ip;
        let next = now.saturating_add(self.neigh.retry);
        self.neigh.entries[i].state = State::Incomplete { probes: probes + 1, next, started };
        self.neigh.next_due = self.neigh.next_due.min(next);
        let mut frame = [0u8; ETH + arp::HEADER_LEN];
        set_macs(&mut frame, MacAddr::BROADCAST, self.gw_mac);
        ethernet::Frame::new_unchecked(&mut frame[..]).set_outer_ethertype(EtherType::ARP);
        arp::Repr::request(self.gw_mac, self.gw_ip, ip).emit(&mut arp::Packet::new_unchecked(&mut frame[ETH..]));
        self.counters.arp_requests += 1;
        for p in 0..self.shared.config.pod_ports.len() {
            let port = PortId(self.shared.config.pod_ports[p]);
            let Some(mut req) = pool.get() else {
                self.counters.count_drop(DropReason::PoolExhausted);
                return;
            };
            if req.extend_from_slice(&frame).is_err() {
                pool.put(req);
                continue;
            }
            self.counters.originated += 1;
            self.emit_extra(now, req, Step::Done(Verdict::Port(port)), pool, out);
        }
    }

    /// Queues a packet waiting for `ip` (`resolve` promised it its place), or drops it if the queue is full.
    pub(super) fn enqueue(&mut self, now: u64, ip: Ipv4Addr, buf: PacketBuf, pool: &mut Pool) {
        self.neigh.promised = self.neigh.promised.saturating_sub(1);
        if self.neigh.pending.len() < self.neigh.pending.capacity() {
            self.neigh.pending.push(Pending { ip, since: now, buf });
            self.neigh.next_due = self.neigh.next_due.min(now.saturating_add(self.neigh.timeout));
            self.counters.arp_queued += 1;
        } else {
            self.neigh.left(buf.meta().ingress);
            self.counters.count_drop(DropReason::ArpQueueFull);
            self.counters.discarded += 1;
            pool.put(buf);
        }
    }

    /// After an ARP frame from a pod (the bridge snooped its sender): its entry goes, and the packets that waited
    /// for it are sent.
    pub(super) fn release_pending(&mut self, now: u64, frame: &[u8], pool: &mut Pool, out: &mut Outputs) {
        let Some(Ok(arp)) = frame.get(ETH..).map(arp::Packet::new_checked) else { return };
        let sender = arp.source_protocol_addr();
        if let Some(i) = self.neigh.find(sender) {
            self.neigh.entries.swap_remove(i);
        }
        let mut i = 0;
        while i < self.neigh.pending.len() {
            if self.neigh.pending[i].ip != sender {
                i += 1;
                continue;
            }
            let Pending { ip, mut buf, .. } = self.neigh.take(i);
            let at = Instant::from_nanos(now);
            // The bridge processed the ARP frame before this: its sender is in the ARP table and the FDB.
            let verdict = match self.bridge.resolve(BD, ip, at).filter(|&(_, p)| p != tweed_switch::PortId::LOCAL) {
                Some((mac, port)) => {
                    set_macs(buf.data_mut(), mac, self.gw_mac);
                    self.counters.arp_released += 1;
                    self.counters.to_pod += 1;
                    Verdict::Port(PortId(port.0))
                }
                None => Verdict::Drop(DropReason::PodPortUnknown),
            };
            self.emit_extra(now, buf, Step::Done(verdict), pool, out);
        }
    }

    /// The table's timers: packets that waited too long are dropped, due requests go out, entries asked enough
    /// fail (their packets dropped), failed entries whose time is over go. Does nothing before the next timer.
    pub(super) fn service_neigh(&mut self, now: u64, pool: &mut Pool, out: &mut Outputs) {
        if now < self.neigh.next_due {
            return;
        }
        self.neigh.next_due = u64::MAX;
        let timeout = self.neigh.timeout;
        let mut i = 0;
        while i < self.neigh.pending.len() {
            let since = self.neigh.pending[i].since;
            if now.saturating_sub(since) >= timeout {
                let p = self.neigh.take(i);
                self.emit_extra(now, p.buf, Step::drop(DropReason::ArpTimeout), pool, out);
            } else {
                self.neigh.next_due = self.neigh.next_due.min(since.saturating_add(timeout));
                i += 1;
            }
        }
        let (retry, failed, max) = (self.neigh.retry, self.neigh.failed, self.neigh.probes);
        let mut i = 0;
        while i < self.neigh.entries.len() {
            match self.neigh.entries[i].state {
                State::Failed { until } if now >= until => {
                    self.neigh.entries.swap_remove(i);
                    continue;
                }
                State::Failed { until } => self.neigh.next_due = self.neigh.next_due.min(until),
                State::Incomplete { next, .. } if now < next => self.neigh.next_due = self.neigh.next_due.min(next),
                State::Incomplete { probes, started, .. } => {
                    // Asked enough, or the node was not called for longer than the whole resolution takes.
                    if probes >= max || now >= started.saturating_add(u64::from(max) * retry) {
                        self.fail(now, i, failed, pool, out);
                    } else {
                        self.probe(now, i, pool, out);
                    }
                }
            }
            i += 1;
        }
    }

    /// Entry `i` did not answer: it fails for a while, and its packets are dropped.
    fn fail(&mut self, now: u64, i: usize, failed: u64, pool: &mut Pool, out: &mut Outputs) {
        let until = now.saturating_add(failed);
        let ip = self.neigh.entries[i].ip;
        self.neigh.entries[i].state = State::Failed { until };
        self.neigh.next_due = self.neigh.next_due.min(until);
        self.counters.arp_failed += 1;
        let mut j = 0;
        while j < self.neigh.pending.len() {
            if self.neigh.pending[j].ip == ip {
                let p = self.neigh.take(j);
                self.emit_extra(now, p.buf, Step::drop(DropReason::ArpTimeout), pool, out);
            } else {
                j += 1;
            }
        }
    }
}
