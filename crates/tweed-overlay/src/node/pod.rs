//! Frames from pod ports after the bridge: its decisions carried out (switching, flooding, ARP replies).

use super::*;

impl Node {
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
        let is_arp = buf.data().get(12..14) == Some(&[0x08, 0x06][..]);
        if is_arp && !self.pending.is_empty() {
            self.release_pending(now, buf.data(), pool, out);
        }
        Step::Done(Some(match decision {
            Decision::Forward(p) => {
                self.counters.switched += 1;
                Verdict::Pod(PortId(p.0))
            }
            Decision::Flood { .. } => self.flood(buf, ingress, pool, out),
            Decision::ArpReply { mac } => {
                let mut reply = [0u8; 64];
                let Ok(len) = tweed_switch::write_arp_reply(buf.data(), mac, &mut reply) else {
                    return Step::Done(Some(Verdict::Drop(DropReason::ArpMalformed)));
                };
                buf.truncate(0);
                if buf.extend_from_slice(&reply[..len]).is_err() {
                    return Step::Done(Some(Verdict::Drop(DropReason::NoHeadroom)));
                }
                self.counters.arp_replies += 1;
                Verdict::Pod(ingress)
            }
            Decision::Local => {
                if is_arp {
                    self.counters.arp_consumed += 1;
                    return Step::Done(Some(Verdict::Consumed));
                }
                return Step::Route { origin: Origin::Pod, from_peer: None };
            }
            Decision::Drop(r) => Verdict::Drop(match r {
                tweed_switch::DropReason::Truncated => DropReason::BridgeTruncated,
                tweed_switch::DropReason::InvalidSource => DropReason::BridgeInvalidSource,
                tweed_switch::DropReason::Filtered => DropReason::BridgeFiltered,
                tweed_switch::DropReason::ArpMalformed => DropReason::ArpMalformed,
                _ => DropReason::UnknownPort,
            }),
        }))
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
            if out.is_full() {
                self.counters.count_drop(DropReason::OutputFull);
                pool.put(copy);
            } else {
                out.items.push((copy, Verdict::Pod(PortId(port.0))));
            }
        }
        self.counters.switched += 1;
        Verdict::Pod(PortId(last.0))
    }
}
