//! The world of the demo: `N` tweed nodes in the seeds' topology, each with `P` smoltcp pods on its pod ports,
//! joined by an in-memory underlay, under a simulated clock.
//!
//! Node `i` (1-based) owns `10.244.i.0/24` with gateway `10.244.i.1`, sits at `192.168.0.i` on the underlay and
//! has its pods on ports `1..=P` (pod `p` is `10.244.i.(p+1)`); port 0 is its underlay port. Each node is a
//! `tweed_io::Worker` whose ports are `MemPort`s, run a round at a time on the simulated clock: tweed's one event
//! loop, as the agent's driver runs it. A frame a pod sends goes into its node's pod port; what a node sends goes
//! where its verdict said: a pod's `eth0`, or the underlay port of the node whose underlay address is the
//! verdict's destination (the buffer holds a whole Ethernet frame). Every frame that crosses a link can be recorded
//! (pcap, hop-by-hop trace).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant as WallInstant};

use tweed_io::{DriverConfig, Medium, MemPort, Worker};
use tweed_overlay::{
    BackendConfig, BackendKind, Counters, Flannel, Instant, Node, NodeBuilder, PeerConfig, UdpConfig, VxlanConfig,
};
use tweed_packet::PortId;
use tweed_wire::ethernet::MacAddr;

use super::pod::Pod;
use crate::pcap_write::PcapWriter;

/// The port frames from the underlay come in on, at every node.
pub(crate) const UNDERLAY_PORT: PortId = PortId(0);
/// How many frames each port of a node's worker holds at most, each way.
const QUEUE: usize = 1 << 16;
/// The least the simulated clock moves when it moves.
const MIN_STEP_US: u64 = 100;

/// Node `i`'s underlay address.
pub(crate) const fn node_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 0, i)
}

/// Node `i`'s underlay MAC.
pub(crate) const fn node_mac(i: u8) -> MacAddr {
    MacAddr::new(0x02, 0x00, 0xc0, 0xa8, 0x00, i)
}

/// Node `i`'s VTEP MAC (flannel's `VtepMAC`).
pub(crate) const fn vtep_mac(i: u8) -> MacAddr {
    MacAddr::new(0x02, 0x00, 0x00, 0x00, 0x00, i)
}

/// Node `i`'s pod subnet.
pub(crate) fn subnet(i: u8) -> ipnet::Ipv4Net {
    // A /24 is always a valid prefix length.
    ipnet::Ipv4Net::new(Ipv4Addr::new(10, 244, i, 0), 24).unwrap_or_default()
}

/// Node `i`'s gateway for its pods.
pub(crate) const fn gateway_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, i, 1)
}

/// Pod `p` (1-based) of node `i`.
pub(crate) const fn pod_ip(i: u8, p: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, i, p + 1)
}

/// Pod `p`'s MAC: `0a:58` and its address, the CNI bridge plugin's convention.
pub(crate) const fn pod_mac(i: u8, p: u8) -> [u8; 6] {
    [0x0a, 0x58, 10, 244, i, p + 1]
}

/// Where a frame was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    /// Sent by pod `pod` of node `node` on its `eth0`, into the node's pod port.
    PodToNode {
        /// The node (1-based).
        node: u8,
        /// The pod (1-based, also its port).
        pod: u8,
    },
    /// Sent by node `node` to its pod `pod`.
    NodeToPod {
        /// The node (1-based).
        node: u8,
        /// The pod (1-based, also its port).
        pod: u8,
    },
    /// Sent by node `from` on the underlay to node `to`.
    Underlay {
        /// The sending node (1-based).
        from: u8,
        /// The receiving node (1-based).
        to: u8,
    },
}

/// What crossed the links, for the summary table.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Traffic {
    /// Frames pods sent.
    pub(crate) pod_frames: u64,
    /// Their bytes.
    pub(crate) pod_bytes: u64,
    /// Frames on the underlay.
    pub(crate) underlay_frames: u64,
    /// Their bytes.
    pub(crate) underlay_bytes: u64,
    /// The bytes of the pod frames they carry (inner IPv4 packet + 14): the rest is the backend's overhead.
    pub(crate) underlay_inner_bytes: u64,
    /// Packets the nodes processed (pod and underlay inputs).
    pub(crate) processed: u64,
    /// Wall time spent in the nodes' rounds.
    pub(crate) process_time: Duration,
}

/// A node: its worker, over a MemPort per pod and one for the underlay.
type Station = Worker<Flannel, MemPort>;

/// The cluster.
pub(crate) struct World {
    kind: BackendKind,
    stations: Vec<Station>,
    /// Pods of node `i`, pod `p` at `(i-1)*P + (p-1)`.
    pods: Vec<Pod>,
    pods_per_node: u8,
    now_us: u64,
    traffic: Traffic,
    /// Every frame, when a pcap file is written.
    pcap: Option<PcapWriter>,
    /// Every frame with where it was seen, while tracing.
    trace: Option<Vec<(Link, Vec<u8>)>>,
    /// The underlay loses every frame (tests of the demo's failure messages).
    underlay_cut: bool,
}

impl core::fmt::Debug for World {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("World").field("kind", &self.kind).field("now_us", &self.now_us).finish_non_exhaustive()
    }
}

fn backend(kind: BackendKind, i: u8) -> BackendConfig {
    match kind {
        BackendKind::Vxlan => BackendConfig::Vxlan(VxlanConfig::new(vtep_mac(i))),
        BackendKind::Udp => BackendConfig::Udp(UdpConfig::default()),
        BackendKind::HostGw => BackendConfig::HostGw,
    }
}

impl World {
    /// `nodes` nodes of `pods` pods each with the backend `kind`, the clock starting at `start_us`.
    ///
    /// # Errors
    /// A node the overlay refuses to build (a message naming it).
    pub(crate) fn new(
        kind: BackendKind,
        nodes: u8,
        pods: u8,
        start_us: u64,
        pcap: Option<PcapWriter>,
    ) -> Result<Self, String> {
        let mut stations = Vec::with_capacity(usize::from(nodes));
        let mut all_pods = Vec::with_capacity(usize::from(nodes) * usize::from(pods));
        for i in 1..=nodes {
            let mut b = NodeBuilder::new(subnet(i), node_ip(i), node_mac(i))
                .backend(backend(kind, i))
                .pod_ports((1..=u16::from(pods)).collect::<Vec<_>>());
            for j in (1..=nodes).filter(|&j| j != i) {
                b = b
                    .peer(PeerConfig::new(subnet(j), node_ip(j)).with_vtep_mac(vtep_mac(j)).with_node_mac(node_mac(j)));
            }
            let node = b.build().map_err(|e| format!("node {i}: {e}"))?;
            let mtu = node.inner_mtu();
            let mut station = Worker::new(node, DriverConfig::default().batch(256).buffers(0))
                .map_err(|e| format!("node {i}: {e}"))?;
            let port = |name: String| MemPort::new(name, Medium::Ethernet).with_limit(QUEUE);
            station.add_port(UNDERLAY_PORT, port(format!("node{i} underlay"))).map_err(|e| format!("node {i}: {e}"))?;
            for p in 1..=pods {
                let seed = u64::from(i) << 8 | u64::from(p);
                all_pods.push(Pod::new(pod_ip(i, p), pod_mac(i, p), gateway_ip(i), mtu, seed));
                station
                    .add_port(PortId(u16::from(p)), port(format!("node{i} pod{p}")))
                    .map_err(|e| format!("node {i}: {e}"))?;
            }
            stations.push(station);
        }
        Ok(Self {
            kind,
            stations,
            pods: all_pods,
            pods_per_node: pods,
            now_us: start_us,
            traffic: Traffic::default(),
            pcap,
            trace: None,
            underlay_cut: false,
        })
    }

    /// The backend.
    pub(crate) const fn kind(&self) -> BackendKind {
        self.kind
    }

    /// The simulated time, in microseconds.
    pub(crate) const fn now_us(&self) -> u64 {
        self.now_us
    }

    /// Node `i` (1-based).
    pub(crate) fn node(&self, i: u8) -> Option<&Node> {
        self.stations.get(usize::from(i).checked_sub(1)?).map(Worker::node)
    }

    /// Pod `p` of node `i` (both 1-based).
    pub(crate) fn pod(&mut self, i: u8, p: u8) -> Option<&mut Pod> {
        let index = self.pod_index(i, p)?;
        self.pods.get_mut(index)
    }

    fn pod_index(&self, i: u8, p: u8) -> Option<usize> {
        if p == 0 || p > self.pods_per_node || i == 0 {
            return None;
        }
        Some(usize::from(i - 1) * usize::from(self.pods_per_node) + usize::from(p - 1))
    }

    /// The traffic so far.
    pub(crate) const fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// Every node's counters, summed.
    pub(crate) fn counters(&self) -> Counters {
        let mut sum = Counters::default();
        for s in &self.stations {
            let c = s.node().counters();
            sum.rx_pod += c.rx_pod;
            sum.rx_underlay += c.rx_underlay;
            sum.switched += c.switched;
            sum.to_pod += c.to_pod;
            sum.to_peer += c.to_peer;
            sum.from_peer += c.from_peer;
            sum.to_tun += c.to_tun;
            sum.arp_replies += c.arp_replies;
            sum.arp_requests += c.arp_requests;
            for (total, n) in sum.drops.iter_mut().zip(c.drops.iter()) {
                *total += n;
            }
        }
        sum
    }

    /// Makes the underlay lose every frame from now on.
    #[cfg(test)]
    pub(crate) const fn cut_underlay(&mut self) {
        self.underlay_cut = true;
    }

    /// Starts recording every frame with where it was seen.
    pub(crate) fn start_trace(&mut self) {
        self.trace = Some(Vec::new());
    }

    /// Stops recording; what was recorded.
    pub(crate) fn take_trace(&mut self) -> Vec<(Link, Vec<u8>)> {
        self.trace.take().unwrap_or_default()
    }

    /// Gives back the pcap writer, for the next world.
    pub(crate) fn into_pcap(self) -> Option<PcapWriter> {
        self.pcap
    }

    fn record(&mut self, link: Link, frame: &[u8]) -> Result<(), String> {
        if let Some(pcap) = &mut self.pcap {
            let (name, description) = link.capture_point();
            pcap.write(&name, &description, self.now_us, frame)
                .map_err(|e| format!("cannot write the pcap file: {e}"))?;
        }
        if let Some(trace) = &mut self.trace {
            trace.push((link, frame.to_vec()));
        }
        Ok(())
    }

    /// Moves frames between pods and nodes until none is in flight at this instant.
    ///
    /// # Errors
    /// The pcap file cannot be written, or the frames never stop moving.
    pub(crate) fn settle(&mut self) -> Result<(), String> {
        for _ in 0..100_000 {
            let mut moved = false;
            for index in 0..self.pods.len() {
                self.pods[index].poll(self.now_us);
                // Pods are numbered within their node: index / P is the node, index % P the pod, both 0-based
                // and below 256 since nodes and pods are u8.
                let per = usize::from(self.pods_per_node);
                let (node, pod) = ((index / per + 1) as u8, (index % per + 1) as u8);
                while let Some(frame) = self.pods[index].take_sent() {
                    moved = true;
                    self.traffic.pod_frames += 1;
                    self.traffic.pod_bytes += frame.len() as u64;
                    self.record(Link::PodToNode { node, pod }, &frame)?;
                    self.inject(usize::from(node - 1), PortId(u16::from(pod)), &frame)?;
                }
            }
            for i in 0..self.stations.len() {
                while self.stations[i].has_input() {
                    moved = true;
                    self.run_node(i)?;
                }
            }
            if !moved && !self.pods.iter().any(Pod::has_input) {
                return Ok(());
            }
        }
        Err("the cluster never settled: frames kept moving at one instant".to_owned())
    }

    /// Queues `frame` into port `port` of node `i` (0-based).
    fn inject(&mut self, i: usize, port: PortId, frame: &[u8]) -> Result<(), String> {
        let queued = self.stations[i].port_mut(port).is_some_and(|p| p.inject(frame, None));
        if queued { Ok(()) } else { Err(format!("node {}: port {} cannot take a frame", i + 1, port.0)) }
    }

    /// One round of node `i`'s worker (0-based) at the simulated time, and the delivery of what it sent.
    fn run_node(&mut self, i: usize) -> Result<(), String> {
        let station = &mut self.stations[i];
        let dropped = |s: &Station| s.stats().rx_offload_dropped + s.stats().rx_dropped;
        let before = dropped(station);
        let start = WallInstant::now();
        let read = station.round(Instant::from_nanos(self.now_us.saturating_mul(1000)));
        self.traffic.process_time += start.elapsed();
        self.traffic.processed += read as u64;
        if dropped(station) > before {
            return Err(format!("node {}: a frame does not fit a pool buffer", i + 1));
        }
        if read == 0 {
            return Err(format!("node {}: the buffer pool is empty", i + 1));
        }
        let from = (i + 1) as u8;
        let ports: Vec<PortId> = station.ports().map(|(id, _)| id).collect();
        for port in ports {
            while let Some((frame, dst)) = self.stations[i].port_mut(port).and_then(MemPort::take_sent) {
                if port == UNDERLAY_PORT {
                    self.deliver_underlay(from, dst, &frame)?;
                } else {
                    self.deliver_pod(from, port, frame)?;
                }
            }
        }
        Ok(())
    }

    fn deliver_pod(&mut self, from: u8, PortId(port): PortId, frame: Vec<u8>) -> Result<(), String> {
        let pod = u8::try_from(port).map_err(|_| format!("node {from}: output to unknown pod port {port}"))?;
        let index = self.pod_index(from, pod).ok_or_else(|| format!("node {from}: no pod on port {port}"))?;
        self.record(Link::NodeToPod { node: from, pod }, &frame)?;
        self.pods[index].deliver(frame);
        Ok(())
    }

    fn deliver_underlay(&mut self, from: u8, dst: Option<SocketAddr>, frame: &[u8]) -> Result<(), String> {
        let dst = dst.ok_or_else(|| format!("node {from}: a frame on the underlay without its destination"))?;
        let to = self
            .stations
            .iter()
            .position(|s| dst.ip() == s.node().config().underlay.node_ip)
            .ok_or_else(|| format!("node {from}: sent a frame on the underlay to {dst}, which is no node"))?;
        self.traffic.underlay_frames += 1;
        self.traffic.underlay_bytes += frame.len() as u64;
        self.traffic.underlay_inner_bytes += inner_frame_len(self.kind, frame);
        self.record(Link::Underlay { from, to: (to + 1) as u8 }, frame)?;
        if !self.underlay_cut {
            self.inject(to, UNDERLAY_PORT, frame)?;
        }
        Ok(())
    }

    /// Runs the world until `done` says so, or `limit_us` of simulated time have passed (then `Ok(false)`).
    /// Between checks, the clock moves to the next instant a pod's stack wants to act.
    ///
    /// # Errors
    /// What `done` or [`Self::settle`] returns.
    pub(crate) fn run_until(
        &mut self,
        limit_us: u64,
        mut done: impl FnMut(&mut Self) -> Result<bool, String>,
    ) -> Result<bool, String> {
        let deadline = self.now_us.saturating_add(limit_us);
        loop {
            self.settle()?;
            if done(self)? {
                return Ok(true);
            }
            if self.now_us >= deadline {
                return Ok(false);
            }
            let now = self.now_us;
            let next = self.pods.iter_mut().filter_map(|p| p.poll_delay(now)).min().unwrap_or(u64::MAX);
            self.now_us = now.saturating_add(next.max(MIN_STEP_US)).min(deadline);
        }
    }
}

/// The length of the pod frame an underlay frame carries: its inner IPv4 total length plus an Ethernet header
/// (0 when the frame does not hold one).
pub(crate) fn inner_frame_len(kind: BackendKind, frame: &[u8]) -> u64 {
    let ip_offset = match kind {
        BackendKind::Vxlan => 14 + 20 + 8 + 8 + 14,
        BackendKind::Udp => 14 + 20 + 8,
        BackendKind::HostGw => 14,
    };
    frame.get(ip_offset + 2..ip_offset + 4).map_or(0, |b| u64::from(u16::from_be_bytes([b[0], b[1]])) + 14)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_addresses_follow_the_seeds() {
        assert_eq!(node_ip(2), Ipv4Addr::new(192, 168, 0, 2));
        assert_eq!(subnet(3).to_string(), "10.244.3.0/24");
        assert_eq!(pod_ip(1, 1), Ipv4Addr::new(10, 244, 1, 2));
        assert_eq!(pod_mac(2, 3), [0x0a, 0x58, 10, 244, 2, 4]);
        assert_eq!(gateway_ip(2), Ipv4Addr::new(10, 244, 2, 1));
    }

    #[test]
    fn test_inner_frame_len_per_backend() {
        // A VXLAN frame whose inner IPv4 says 84 bytes: a 98-byte pod frame inside 148 bytes.
        let mut vx = vec![0u8; 148];
        vx[64 + 2..64 + 4].copy_from_slice(&84u16.to_be_bytes());
        assert_eq!(inner_frame_len(BackendKind::Vxlan, &vx), 98);
        let mut udp = vec![0u8; 126];
        udp[42 + 2..42 + 4].copy_from_slice(&84u16.to_be_bytes());
        assert_eq!(inner_frame_len(BackendKind::Udp, &udp), 98);
        let mut hg = vec![0u8; 98];
        hg[16..18].copy_from_slice(&84u16.to_be_bytes());
        assert_eq!(inner_frame_len(BackendKind::HostGw, &hg), 98);
        assert_eq!(inner_frame_len(BackendKind::Vxlan, &vx[..60]), 0);
    }

    #[test]
    fn test_two_nodes_ping_across_and_settle() {
        for kind in [BackendKind::Vxlan, BackendKind::Udp, BackendKind::HostGw] {
            let mut w = World::new(kind, 2, 1, 1_000_000, None).expect("world");
            w.pod(1, 1).expect("pod").ping(pod_ip(2, 1), 1).expect("queued");
            let mut replies = Vec::new();
            let ok = w
                .run_until(2_000_000, |w| {
                    replies.extend(w.pod(1, 1).expect("pod").take_echo_replies()?);
                    Ok(!replies.is_empty())
                })
                .expect("runs");
            assert!(ok, "{kind:?}: no reply");
            assert_eq!(replies, [(pod_ip(2, 1), 1)]);
            assert_eq!(w.counters().total_drops(), 0, "{kind:?}");
            let t = w.traffic();
            // ARP + echo on each side, and exactly the request and the reply on the underlay.
            assert_eq!(t.underlay_frames, 2, "{kind:?}");
            assert_eq!(t.underlay_bytes - t.underlay_inner_bytes, 2 * u64::from(backend(kind, 1).overhead()));
        }
    }
}
