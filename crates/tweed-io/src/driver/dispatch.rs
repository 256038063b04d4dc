//! A round's sending: each output where its verdict says, UDP payloads gathered into `sendmmsg` calls, runs of
//! frames for one TAP written coalesced.

use std::net::{SocketAddr, SocketAddrV4};

use tweed_overlay::Verdict;

use super::{Driver, PodPort, Underlay};
use crate::sys::MAX_BATCH;

impl Driver {
    /// Sends every output where its verdict says, then gives the buffers back. Consecutive frames for one TAP
    /// pod go through [`Device::send_coalesced`](crate::Device::send_coalesced), so that TCP segments of a flow reach the pod as one frame.
    pub(super) fn dispatch(&mut self) {
        let Self { out, pods, pod_index, underlay, tun, host_port, stats, scratch, .. } = self;
        let items = out.as_slice();
        let mut msgs: [(&[u8], SocketAddrV4); MAX_BATCH] =
            [(&[][..], SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0)); MAX_BATCH];
        let mut m = 0;
        let mut i = 0;
        while i < items.len() {
            let (buf, verdict) = &items[i];
            match *verdict {
                // The host's TUN is an IP port of the node.
                Verdict::Port(port) if Some(port) == *host_port => match tun.as_ref().map(|t| t.send(buf.data())) {
                    Some(Ok(true)) => stats.tx_tun += 1,
                    _ => stats.tx_tun_dropped += 1,
                },
                Verdict::Port(port) => {
                    let Some(k) = pod_index.get(usize::from(port.0)).copied().flatten() else {
                        stats.tx_pod_dropped += 1;
                        i += 1;
                        continue;
                    };
                    // The run of frames for this port, as the node left them.
                    let mut frames: [&[u8]; RUN] = [&[]; RUN];
                    let mut r = 0;
                    while i + r < items.len() && r < RUN && items[i + r].1 == Verdict::Port(port) {
                        frames[r] = items[i + r].0.data();
                        r += 1;
                    }
                    let mut j = 0;
                    while j < r {
                        let took = match &pods[k].1 {
                            PodPort::Tap(d) => d.send_coalesced(&frames[j..r], scratch).unwrap_or(0),
                            PodPort::Packet(p) => usize::from(matches!(p.send(frames[j]), Ok(true))),
                        };
                        if took == 0 {
                            stats.tx_pod_dropped += 1;
                            j += 1;
                        } else {
                            stats.tx_pod += took as u64;
                            stats.tx_pod_coalesced += u64::from(took > 1);
                            j += took;
                        }
                    }
                    i += r;
                    continue;
                }
                Verdict::Underlay { dst, payload_offset } => match (&*underlay, dst) {
                    (Underlay::Udp(_), SocketAddr::V4(dst)) => {
                        let payload = buf.data().get(usize::from(payload_offset)..).unwrap_or(&[]);
                        msgs[m] = (payload, dst);
                        m += 1;
                    }
                    // An IPv4 socket cannot send there.
                    (Underlay::Udp(_), SocketAddr::V6(_)) => stats.tx_underlay_dropped += 1,
                    (Underlay::Packet(p), _) => match p.send(buf.data()) {
                        Ok(true) => stats.tx_underlay += 1,
                        _ => stats.tx_underlay_dropped += 1,
                    },
                },
                // Consumed, dropped, or a verdict this driver does not know: back to the pool.
                _ => {}
            }
            i += 1;
            // UDP payloads are gathered (in order) and sent in one call per full array.
            if m == MAX_BATCH
                && let Underlay::Udp(u) = underlay
            {
                let sent = u.send_batch(&msgs[..m]);
                stats.tx_underlay += sent as u64;
                stats.tx_underlay_dropped += (m - sent) as u64;
                m = 0;
            }
        }
        if m > 0
            && let Underlay::Udp(u) = underlay
        {
            let sent = u.send_batch(&msgs[..m]);
            stats.tx_underlay += sent as u64;
            stats.tx_underlay_dropped += (m - sent) as u64;
        }
        out.recycle(&mut self.pool);
    }
}

/// The most frames for one pod port looked at together for coalescing (the kernel's GSO limit).
const RUN: usize = 64;
