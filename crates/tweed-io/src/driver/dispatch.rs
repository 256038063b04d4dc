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
        let Self { out, slots, index, stats, scratch, targets: next, chains, node, pool, msgs: kept, .. } = self;
        // The list of one port's messages, kept between rounds: `Vec<Msg<'static>>` is a `Vec<Msg<'_>>`.
        let mut msgs: Vec<Msg<'_>> = std::mem::take(kept);
        let items = out.as_slice();
        let host_port = node.config().host_port;
        let underlay = slots.iter().position(|s| s.role == Role::Underlay);
        // Each port's outputs chained in order: `chains[k]` is the first and last of port `k`'s, `next[i]` the one
        // after output `i` (within the capacities made when the ports were added: no allocation).
        chains.clear();
        chains.resize(slots.len(), (NONE, NONE));
        next.clear();
        next.resize(items.len(), NONE);
        for (i, (_, verdict)) in items.iter().enumerate() {
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
                Verdict::Consumed => {
                    stats.consumed += 1;
                    NONE
                }
                Verdict::Drop(_) => {
                    stats.dropped += 1;
                    NONE
                }
                // A verdict this driver does not know: back to the pool.
                _ => NONE,
            };
            if let Some(chain) = chains.get_mut(target as usize) {
                // Fewer than 2^32 outputs.
                let i = i as u32;
                match *chain {
                    (NONE, _) => *chain = (i, i),
                    (_, last) => {
                        next[last as usize] = i;
                        chain.1 = i;
                    }
                }
            }
        }
        for (slot, &(first, _)) in slots.iter_mut().zip(chains.iter()) {
            if first == NONE {
                continue;
            }
            let datagram = slot.port.medium() == Medium::Datagram;
            msgs.clear();
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
            let mut i = first;
            while let Some((buf, verdict)) = items.get(i as usize) {
                i = next[i as usize];
                msgs.push(match *verdict {
                    Verdict::Underlay { dst, payload_offset } if datagram => {
                        Msg { data: buf.data().get(usize::from(payload_offset)..).unwrap_or(&[]), dst: Some(dst) }
                    }
                    Verdict::Underlay { dst, .. } => Msg { data: buf.data(), dst: Some(dst) },
                    _ => Msg { data: buf.data(), dst: None },
                });
                if msgs.len() == MAX_BATCH {
                    send(&msgs, scratch);
                    msgs.clear();
                }
            }
            if !msgs.is_empty() {
                send(&msgs, scratch);
            }
        }
        // Back to `'static` for keeping, empty: collected in place, the allocation is reused.
        msgs.clear();
        *kept = msgs.into_iter().map(|m| Msg { data: &[], dst: m.dst }).collect();
        out.recycle(pool);
    }
}
