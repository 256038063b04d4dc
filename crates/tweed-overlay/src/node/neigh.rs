//! Resolution of local pods' MACs: the ARP queue and the node's requests.

use super::*;

pub(super) struct Pending {
    pub(super) ip: Ipv4Addr,
    pub(super) since: u64,
    pub(super) buf: PacketBuf,
}

impl Node {
    /// Delivers to a local pod, or queues the packet while asking for the pod's MAC.
    pub(super) fn deliver_pod(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        dst: Ipv4Addr,
        out: &mut Outputs,
    ) -> Option<Verdict> {
        let at = Instant::from_nanos(now);
        if let Some(mac) = self.bridge.arp().lookup(BD, dst) {
            let Some(port) = self.bridge.fdb().lookup(BD, mac, at) else {
                return Some(Verdict::Drop(DropReason::PodPortUnknown));
            };
            set_macs(buf.data_mut(), mac, self.gw_mac);
            self.counters.to_pod += 1;
            return Some(Verdict::Pod(PortId(port.0)));
        }
        if self.pending.len() == self.pending.capacity() {
            return Some(Verdict::Drop(DropReason::ArpQueueFull));
        }
        // `None` tells `emit` to queue the packet; the address it waits for rides in the scratch word.
        buf.meta_mut().user = u64::from(u32::from(dst));
        self.ask(now, dst, pool, out);
        None
    }

    /// Sends an ARP request for `ip` to every pod port, unless one went out less than the retry time ago.
    pub(super) fn ask(&mut self, now: u64, ip: Ipv4Addr, pool: &mut Pool, out: &mut Outputs) {
        let retry = u64::from(self.config.limits.arp_retry_ms) * 1_000_000;
        if let Some(entry) = self.asked.iter_mut().find(|(a, _)| *a == ip) {
            if now.saturating_sub(entry.1) < retry {
                return;
            }
            entry.1 = now;
        } else if self.asked.len() < self.asked.capacity() {
            self.asked.push((ip, now));
        }
        let mut frame = [0u8; ETH + arp::HEADER_LEN];
        set_macs(&mut frame, MacAddr::BROADCAST, self.gw_mac);
        frame[12..14].copy_from_slice(&EtherType::ARP.0.to_be_bytes());
        arp::Repr::request(self.gw_mac, self.gw_ip, ip).emit(&mut arp::Packet::new_unchecked(&mut frame[ETH..]));
        self.counters.arp_requests += 1;
        for i in 0..self.config.pod_ports.len() {
            let port = PortId(self.config.pod_ports[i]);
            let Some(mut req) = pool.get() else {
                self.counters.count_drop(DropReason::PoolExhausted);
                return;
            };
            if req.extend_from_slice(&frame).is_err() {
                pool.put(req);
                continue;
            }
            self.emit(now, req, Some(Verdict::Pod(port)), pool, out);
        }
    }

    /// After an ARP frame from a pod (the bridge snooped its sender): sends the packets that waited for it.
    pub(super) fn release_pending(&mut self, now: u64, frame: &[u8], pool: &mut Pool, out: &mut Outputs) {
        let Some(sender) = frame.get(ETH + 14..ETH + 18) else { return };
        let sender = Ipv4Addr::new(sender[0], sender[1], sender[2], sender[3]);
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].ip != sender {
                i += 1;
                continue;
            }
            let Pending { ip, mut buf, .. } = self.pending.swap_remove(i);
            let at = Instant::from_nanos(now);
            // The bridge processed the ARP frame before this: its sender is in the ARP table and the FDB.
            let verdict =
                match self.bridge.arp().lookup(BD, ip).and_then(|m| Some((m, self.bridge.fdb().lookup(BD, m, at)?))) {
                    Some((mac, port)) => {
                        set_macs(buf.data_mut(), mac, self.gw_mac);
                        self.counters.arp_released += 1;
                        self.counters.to_pod += 1;
                        Verdict::Pod(PortId(port.0))
                    }
                    None => Verdict::Drop(DropReason::PodPortUnknown),
                };
            self.emit(now, buf, Some(verdict), pool, out);
        }
        self.asked.retain(|(a, _)| *a != sender);
    }

    /// Drops packets that waited too long for ARP, and asks again for the others.
    pub(super) fn service_pending(&mut self, now: u64, pool: &mut Pool, out: &mut Outputs) {
        if self.pending.is_empty() {
            return;
        }
        let timeout = u64::from(self.config.limits.arp_timeout_ms) * 1_000_000;
        let mut i = 0;
        while i < self.pending.len() {
            if now.saturating_sub(self.pending[i].since) >= timeout {
                let p = self.pending.swap_remove(i);
                self.asked.retain(|(a, _)| *a != p.ip);
                self.emit(now, p.buf, Some(Verdict::Drop(DropReason::ArpTimeout)), pool, out);
            } else {
                let ip = self.pending[i].ip;
                self.ask(now, ip, pool, out);
                i += 1;
            }
        }
    }
}
