//! A round's sending: each output to the port its verdict names, in the node's order, each port's outputs handed
//! to it in one call (UDP payloads in `sendmmsg` calls, runs of frames for one TAP coalesced).

use tweed_overlay::Verdict;
use tweed_overlay::encap::Encapsulation;

use super::worker::{Role, Worker};
use crate::port::{Medium, Msg, Port};
use crate::sys::MAX_BATCH;

/// No port: the output is not sent.
const NONE: u32 = u32::MAX;

impl<E: Encapsulation, P: Port> Worker<E, P> {
    /// Sends every output where its verdict says, then gives the buffers back.
    pub(super) fn dispatch(&mut self) {
        let Self { out, slots, index, stats, scratch, targets, node, pool, .. } = self;
        let items = out.as_slice();
        let host_port = node.config().host_port;
        let underlay = slots.iter().position(|s| s.role == Role::Underlay);
        targets.clear();
        for (_, verdict) in items {
            let target = match *verdict {
                Verdict::Port(port) => match index.get(usize::from(port.0)).copied().flatten() {
                    Some(k) if slots[usize::from(k)].role != Role::Underlay => u32::from(k),
                    _ => {
                        let ip = host_port == Some(port.0) || node.config().ip_ports.contains(&port.0);
                        if ip {
                            stats.tx_tun_dropped += 1
                        } else {
                            stats.tx_pod_dropped += 1
                        }
                        NONE
                    }
                },
                Verdict::Underlay { .. } => match underlay {
                    // Fewer than 2^32 ports.
                    Some(k) => k as u32,
                    None => {
                        stats.tx_underlay_dropped += 1;
                        NONE
                    }
                },
                // Consumed, dropped, or a verdict this driver does not know: back to the pool.
                _ => NONE,
            };
            targets.push(target);
        }
        for (k, slot) in slots.iter_mut().enumerate() {
            let k = k as u32;
            let Some(first) = targets.iter().position(|&t| t == k) else { continue };
            let datagram = slot.port.medium() == Medium::Datagram;
            let mut msgs = [Msg { data: &[], dst: None }; MAX_BATCH];
            let mut m = 0;
            let mut send = |msgs: &[Msg<'_>], scratch: &mut [u8]| {
                let done = slot.port.send(msgs, scratch);
                let (sent, dropped) = (done.sent as u64, (msgs.len().saturating_sub(done.sent)) as u64);
                slot.stats.tx += sent;
                slot.stats.tx_dropped += dropped;
                match slot.role {
                    Role::Underlay => {
                        (stats.tx_underlay, stats.tx_underlay_dropped) =
                            (stats.tx_underlay + sent, stats.tx_underlay_dropped + dropped)
                    }
                    Role::Pod => {
                        (stats.tx_pod, stats.tx_pod_dropped) = (stats.tx_pod + sent, stats.tx_pod_dropped + dropped);
                        stats.tx_pod_coalesced += done.coalesced as u64;
                    }
                    Role::Ip | Role::Drain => {
                        (stats.tx_tun, stats.tx_tun_dropped) = (stats.tx_tun + sent, stats.tx_tun_dropped + dropped);
                    }
                }
            };
            for (i, (buf, verdict)) in items.iter().enumerate().skip(first) {
                if targets[i] != k {
                    continue;
                }
                msgs[m] = match *verdict {
                    Verdict::Underlay { dst, payload_offset } if datagram => {
                        Msg { data: buf.data().get(usize::from(payload_offset)..).unwrap_or(&[]), dst: Some(dst) }
                    }
                    Verdict::Underlay { dst, .. } => Msg { data: buf.data(), dst: Some(dst) },
                    _ => Msg { data: buf.data(), dst: None },
                };
                m += 1;
                if m == MAX_BATCH {
                    send(&msgs[..m], scratch);
                    m = 0;
                }
            }
            if m > 0 {
                send(&msgs[..m], scratch);
            }
        }
        out.recycle(pool);
    }
}
