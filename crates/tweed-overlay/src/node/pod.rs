//! Frames from pod ports after the bridge: its decisions carried out (switching, flooding, ARP replies).

use super::*;
use crate::config::MAX_PORT_ADDRESSES;

/// A pod port's own addresses (for port security), in an array indexed by port number so that the check costs
/// no lookup.
#[derive(Clone, Copy, Debug)]
pub(super) struct PortAddrs {
    len: u8,
    addrs: [u32; MAX_PORT_ADDRESSES],
}

impl PortAddrs {
    pub(super) const NONE: Self = Self { len: 0, addrs: [0; MAX_PORT_ADDRESSES] };

    /// `ips` were validated: at most [`MAX_PORT_ADDRESSES`].
    pub(super) fn set(&mut self, ips: &[Ipv4Addr]) {
        for (slot, ip) in self.addrs.iter_mut().zip(ips) {
            *slot = u32::from(*ip);
        }
        #[allow(clippy::cast_possible_truncation)] // at most MAX_PORT_ADDRESSES
        let len = ips.len().min(MAX_PORT_ADDRESSES) as u8;
        self.len = len;
    }

    #[inline]
    fn owns(&self, ip: u32) -> bool {
        self.addrs[..usize::from(self.len)].contains(&ip)
    }
}

impl<E: Encapsulation> Node<E> {
    /// Checks the source of a frame from pod port `port` before the bridge sees it: the IPv4 source (of a version
    /// 4 packet), or the sender address of an ARP frame (0.0.0.0, an RFC 5227 probe, is allowed), must be a host of
    /// the pod subnet other than the gateway, and with port security one of the port's own. Other frames, and
    /// frames too short to say, go on (the bridge and the router judge them). It runs for every pod frame: one
    /// bounds check, then integer compares.
    #[inline]
    pub(super) fn check_pod_source(&self, port: usize, data: &[u8], now: u64) -> Result<(), DropReason> {
        // The EtherType and the next 20 bytes: an IPv4 header, or an ARP header up to the sender address.
        let Some(h) = data.get(12..ETH + 20) else { return Ok(()) };
        // EtherType and the IPv4 version nibble in one compare (only version 4: a receiving kernel drops anything
        // else in an IPv4 frame, and the router too).
        let head = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let src = if head & 0xffff_f000 == 0x0800_4000 {
            u32::from_be_bytes([h[14], h[15], h[16], h[17]])
        } else if head >> 16 == 0x0806 {
            match u32::from_be_bytes([h[16], h[17], h[18], h[19]]) {
                0 => return Ok(()),
                ip => ip,
            }
        } else {
            return Ok(());
        };
        // A host of the subnet (first host + at most `span`), not the gateway.
        let (first, span) = self.pod_hosts;
        if src.wrapping_sub(first) > span || src == u32::from(self.gw_ip) {
            return Err(DropReason::PodSourceSpoofed);
        }
        if self.port_security && !self.port_owns(port, src, head >> 16 == 0x0806, now) {
            return Err(DropReason::PortSecurity);
        }
        Ok(())
    }

    /// Whether `src` is one of pod port `port`'s own addresses: its configured ones, or, for a port given none,
    /// those the bridge learnt from its ARP and holds for it (inside the pod subnet, at most
    /// [`PortConfig::DEFAULT_MAX_ARP`](tweed_switch::PortConfig::DEFAULT_MAX_ARP), not another port's while that
    /// one's entry is fresh). Such a port's ARP may claim an address (the bridge refuses claims of other ports'
    /// fresh addresses); its IPv4 packets must come from one it holds.
    #[inline]
    fn port_owns(&self, port: usize, src: u32, is_arp: bool, now: u64) -> bool {
        match self.port_addrs.get(port) {
            Some(a) if a.len > 0 => a.owns(src),
            _ => {
                is_arp
                    || self
                        .bridge
                        .resolve(BD, Ipv4Addr::from(src), Instant::from_nanos(now))
                        .is_some_and(|(_, owner)| usize::from(owner.0) == port)
            }
        }
    }

    /// A frame from a pod, after the bridge: carries out its decision.
    pub(super) fn rx_pod_frame(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        decision: Decision,
        out: &mut Outputs,
    ) -> Step {
        let ingress = buf.meta().ingress;
        let is_arp = ethertype(buf.data()) == Some(EtherType::ARP);
        if is_arp {
            self.pod_arp(now, buf, pool, out);
        }
        Step::Done(match decision {
            Decision::Forward(p) => {
                self.counters.switched += 1;
                Verdict::Port(PortId(p.0))
            }
            Decision::Flood { .. } => self.flood(buf, ingress, pool, out),
            Decision::ArpReply { mac } => {
                let mut reply = [0u8; 64];
                let Ok(len) = tweed_switch::write_arp_reply(buf.data(), mac, &mut reply) else {
                    return Step::drop(DropReason::ArpMalformed);
                };
                buf.truncate(0);
                if buf.extend_from_slice(&reply[..len]).is_err() {
                    return Step::drop(DropReason::NoHeadroom);
                }
                self.counters.arp_replies += 1;
                Verdict::Port(ingress)
            }
            Decision::Local => {
                if is_arp {
                    self.counters.arp_consumed += 1;
                    return Step::Done(Verdict::Consumed);
                }
                return Step::Route { origin: Origin::Pod, from_peer: None, l3: ETH as u8 };
            }
            Decision::Drop(r) => Verdict::Drop(match r {
                tweed_switch::DropReason::Truncated => DropReason::BridgeTruncated,
                tweed_switch::DropReason::InvalidSource => DropReason::BridgeInvalidSource,
                tweed_switch::DropReason::Filtered => DropReason::BridgeFiltered,
                tweed_switch::DropReason::ArpMalformed => DropReason::ArpMalformed,
                tweed_switch::DropReason::ArpSpoofed => DropReason::ArpSpoofed,
                tweed_switch::DropReason::ArpClaimed => DropReason::ArpClaimed,
                tweed_switch::DropReason::MacHeld => DropReason::MacHeld,
                tweed_switch::DropReason::UnknownPort => DropReason::UnknownPort,
                _ => DropReason::BridgeOther,
            }),
        })
    }

    /// An ARP frame from a pod, after the bridge: what it learnt told to the other workers, and the packets that
    /// waited for the sender released.
    #[cold]
    #[inline(never)]
    fn pod_arp(&mut self, now: u64, buf: &PacketBuf, pool: &mut Pool, out: &mut Outputs) {
        self.arp_learnt(now, buf.data(), buf.meta().ingress);
        if !(self.neigh.pending.is_empty() && self.neigh.entries.is_empty()) {
            self.release_pending(now, buf.data(), pool, out);
        }
    }

    /// Copies of `buf` to every other pod port; `buf` itself goes to the last one.
    pub(super) fn flood(&mut self, buf: &PacketBuf, ingress: PortId, pool: &mut Pool, out: &mut Outputs) -> Verdict {
        let count = self.bridge.flood_ports(sw(ingress)).count();
        let Some(last) = self.bridge.flood_ports(sw(ingress)).last() else {
            return Verdict::Drop(DropReason::FloodNoPort);
        };
        for (i, port) in self.bridge.flood_ports(sw(ingress)).enumerate() {
            if i + 1 == count {
                break;
            }
            let Some(mut copy) = pool.get() else {
                self.counters.count_drop(DropReason::PoolExhausted);
                continue;
            };
            if copy.extend_from_slice(buf.data()).is_err() {
                pool.put(copy);
                continue;
            }
            copy.meta_mut().ingress = ingress;
            // As `put` does (the bridge is borrowed by the loop).
            self.counters.originated += 1;
            if out.spare() == 0 {
                self.counters.count_drop(DropReason::OutputFull);
                self.counters.discarded += 1;
                pool.put(copy);
            } else {
                self.counters.outputs += 1;
                out.items.push((copy, Verdict::Port(PortId(port.0))));
            }
        }
        self.counters.switched += 1;
        Verdict::Port(PortId(last.0))
    }
}
