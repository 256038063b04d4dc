//! [`Node`]: one worker's pipeline. Frames from pod ports go through the bridge, then (when addressed to the
//! gateway) the router, then local delivery or the backend; frames from the underlay are checked against the
//! peers, decapsulated, routed and delivered to a pod.
//!
//! [`Node::process`] runs this stage by stage over the batch: `stage_classify` (decapsulation, the bridge),
//! `stage_route` (checks, one `lookup_batch`, TTL and MTU), `stage_rewrite` (ARP resolution or encapsulation),
//! then the emission of the verdicts. Between stages each packet's state is a `Step` in vectors allocated
//! with the node; packets the node originates itself (ICMP errors) are routed alone by `route_frame`.

use core::net::Ipv4Addr;
use std::collections::HashMap;

use foldhash::fast::RandomState;
use ipnet::Ipv4Net;
use tweed_packet::{Batch, PacketBuf, Pool, PortId};
use tweed_route::{Ipv4Prefix, NextHop, NextHopId, NextHopKind, RouteTable};
use tweed_switch::{Bridge, BridgeConfig, BridgeDomain, Decision, Instant, PortConfig};
use tweed_wire::ethernet::{EtherType, MacAddr};
use tweed_wire::icmpv4::{self, ErrorKind};
use tweed_wire::{arp, checksum, ipv4, udp, vxlan};

use crate::config::{BackendConfig, ConfigError, NodeConfig, PeerConfig};
use crate::encap::{self, Template, TemplateSpec, UDP_OUTER_LEN, VXLAN_OUTER_LEN};
use crate::verdict::{Counters, DropReason, Verdict};

const ETH: usize = 14;
const BD: BridgeDomain = BridgeDomain(0);

/// The packets one call of [`Node::process`] leaves, each with its verdict, in a vector sized up front.
#[derive(Debug)]
pub struct Outputs {
    items: Vec<(PacketBuf, Verdict)>,
}

impl Outputs {
    /// Room for `capacity` packets.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self { items: Vec::with_capacity(capacity) }
    }

    /// How many packets there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The packets and their verdicts.
    pub fn as_slice(&self) -> &[(PacketBuf, Verdict)] {
        &self.items
    }

    /// Takes the packets out, in order.
    pub fn drain(&mut self) -> std::vec::Drain<'_, (PacketBuf, Verdict)> {
        self.items.drain(..)
    }

    /// Gives every packet back to `pool`.
    pub fn recycle(&mut self, pool: &mut Pool) {
        for (buf, _) in self.items.drain(..) {
            pool.put(buf);
        }
    }

    fn is_full(&self) -> bool {
        self.items.len() == self.items.capacity()
    }
}

/// A remote node, as the data path needs it.
#[derive(Clone, Debug)]
struct Peer {
    config: PeerConfig,
    net: u32,
    mask: u32,
    /// The inner destination MAC (vxlan) or the next hop's MAC (host-gw).
    dst_mac: MacAddr,
    template: Option<Template>,
}

#[derive(Clone, Debug)]
enum Hop {
    Empty,
    Local,
    Peer(Box<Peer>),
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    Vxlan { vtep_mac: MacAddr, vni: u32, port: u16, udp_checksum: bool, source_ports: (u16, u16) },
    Udp { port: u16 },
    HostGw,
}

/// Where a packet being routed came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Pod,
    Peer,
    /// Originated by the node (ICMP errors).
    Node,
    /// From the host's TUN: the host's own packets, not forwarded (no TTL decrement).
    Host,
}

/// Packets one pass of the stages takes at most: the length of the per-packet state vectors.
const STAGE_BATCH: usize = 256;
/// Pod frames per call of [`Bridge::process`] (their list is an array on the stack).
const BRIDGE_BATCH: usize = 16;

/// Where a packet of the batch stands between stages.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// From a pod port, for the bridge.
    Bridge,
    /// For the router.
    Route { origin: Origin, from_peer: Option<(u32, u32)> },
    /// Checked by the router; its destination is in the lookup list.
    Lookup { origin: Origin },
    /// Routed: to this next hop.
    Forward { id: NextHopId, dst: Ipv4Addr },
    /// Finished: its verdict, or `None` to wait for ARP (see `deliver_pod`).
    Done(Option<Verdict>),
}

impl Step {
    /// The verdict of a finished packet (every packet is, after the last stage).
    fn verdict(self) -> Option<Verdict> {
        match self {
            Self::Done(verdict) => verdict,
            _ => {
                debug_assert!(false, "a packet left the stages unfinished: {self:?}");
                Some(Verdict::Drop(DropReason::StaleNextHop))
            }
        }
    }
}

/// The per-packet state of the stages, allocated at construction.
#[derive(Debug, Default)]
struct Scratch {
    steps: Vec<Step>,
    /// The destinations to look up, in batch order.
    addrs: Vec<u32>,
    /// Their next hops.
    hops: Vec<Option<NextHopId>>,
}

struct Pending {
    ip: Ipv4Addr,
    since: u64,
    buf: PacketBuf,
}

/// A token bucket (RFC 1812 §4.3.2.8 rate limiting of ICMP errors).
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: u64,
    last: u64,
    per_sec: u64,
    burst: u64,
}

impl Bucket {
    const SCALE: u64 = 1_000_000_000;

    fn take(&mut self, now: u64) -> bool {
        let elapsed = now.saturating_sub(self.last);
        self.last = self.last.max(now);
        let cap = self.burst * Self::SCALE;
        self.tokens = self.tokens.saturating_add(elapsed.saturating_mul(self.per_sec)).min(cap);
        if self.tokens >= Self::SCALE {
            self.tokens -= Self::SCALE;
            true
        } else {
            false
        }
    }
}

/// One node of the pod network: see the [crate documentation](crate).
pub struct Node {
    config: NodeConfig,
    bridge: Bridge,
    routes: RouteTable,
    hops: Vec<Hop>,
    peers_by_subnet: HashMap<Ipv4Net, NextHopId, RandomState>,
    peers_by_ip: HashMap<u32, NextHopId, RandomState>,
    peers_by_mac: HashMap<u64, NextHopId, RandomState>,
    pod_port: Vec<bool>,
    underlay_port: PortId,
    socket_port: Option<PortId>,
    host_port: Option<PortId>,
    backend: Backend,
    gw_ip: Ipv4Addr,
    gw_mac: MacAddr,
    node_ip: Ipv4Addr,
    node_mac: MacAddr,
    /// The largest inner IP packet the backend carries.
    inner_mtu: u16,
    ident: u16,
    icmp: Bucket,
    pending: Vec<Pending>,
    asked: Vec<(Ipv4Addr, u64)>,
    counters: Counters,
    scratch: Scratch,
}

impl core::fmt::Debug for Node {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Node").field("config", &self.config).field("counters", &self.counters).finish_non_exhaustive()
    }
}

fn sw(port: PortId) -> tweed_switch::PortId {
    tweed_switch::PortId(port.0)
}

fn net_mask(net: Ipv4Net) -> (u32, u32) {
    let mask = u32::from(net.netmask());
    (u32::from(net.network()) & mask, mask)
}

fn set_macs(data: &mut [u8], dst: MacAddr, src: MacAddr) {
    data[0..6].copy_from_slice(dst.as_bytes());
    data[6..12].copy_from_slice(src.as_bytes());
}

/// RFC 1812 §5.3.7: addresses a router neither forwards from nor to.
const fn martian(ip: u32) -> bool {
    let a = ip >> 24;
    a == 0 || a == 127 || a >= 224
}

impl Node {
    /// Builds a node from its configuration, peers included.
    ///
    /// # Errors
    /// Those of [`NodeConfig::validate`] and [`Node::add_peer`].
    pub fn new(config: NodeConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut bridge = Bridge::new(&BridgeConfig::default());
        let mut pod_port = vec![false; tweed_switch::PortId::MAX];
        for &p in &config.pod_ports {
            bridge
                .add_port(tweed_switch::PortId(p), PortConfig::new(BD).with_arp_snoop(true))
                .map_err(|_| ConfigError::InvalidPort(p))?;
            pod_port[usize::from(p)] = true;
        }
        let gw_ip = config.gateway_ip();
        let gw_mac = config.gateway_mac();
        let bridge_err = |e: tweed_switch::BridgeError| ConfigError::Route(e.to_string());
        bridge.add_local(BD, gw_mac).map_err(bridge_err)?;
        bridge.set_arp(BD, gw_ip, gw_mac).map_err(bridge_err)?;
        let backend = match &config.backend {
            BackendConfig::Vxlan(v) => Backend::Vxlan {
                vtep_mac: v.vtep_mac,
                vni: v.vni,
                port: v.port,
                udp_checksum: v.udp_checksum,
                source_ports: v.source_ports,
            },
            BackendConfig::Udp(u) => Backend::Udp { port: u.port },
            BackendConfig::HostGw => Backend::HostGw,
        };
        let mut routes = RouteTable::new();
        let route_err = |e: tweed_route::Error| ConfigError::Route(e.to_string());
        let local = routes.add_next_hop(NextHop::new(NextHopKind::Local)).map_err(route_err)?;
        let subnet = config.pod_subnet.trunc();
        let prefix = Ipv4Prefix::new(u32::from(subnet.network()), subnet.prefix_len()).map_err(route_err)?;
        routes.insert(prefix, local).map_err(route_err)?;
        let mut hops = vec![Hop::Empty; local.0 as usize + 1];
        hops[local.0 as usize] = Hop::Local;
        let limits = config.limits.clone();
        let peers = config.peers.clone();
        let mut node = Self {
            bridge,
            routes,
            hops,
            peers_by_subnet: HashMap::with_hasher(RandomState::default()),
            peers_by_ip: HashMap::with_capacity_and_hasher(limits.max_peers as usize, RandomState::default()),
            peers_by_mac: HashMap::with_capacity_and_hasher(limits.max_peers as usize, RandomState::default()),
            pod_port,
            underlay_port: PortId(config.underlay.port),
            socket_port: config.underlay.socket_port.map(PortId),
            host_port: config.host_port.map(PortId),
            backend,
            gw_ip,
            gw_mac,
            node_ip: config.underlay.node_ip,
            node_mac: config.underlay.node_mac,
            inner_mtu: config.inner_mtu(),
            ident: 0,
            icmp: Bucket {
                tokens: u64::from(limits.icmp_burst) * Bucket::SCALE,
                last: 0,
                per_sec: u64::from(limits.icmp_per_sec),
                burst: u64::from(limits.icmp_burst),
            },
            pending: Vec::with_capacity(usize::from(limits.arp_queue)),
            asked: Vec::with_capacity(usize::from(limits.arp_queue)),
            counters: Counters::default(),
            scratch: Scratch {
                steps: Vec::with_capacity(STAGE_BATCH),
                addrs: Vec::with_capacity(STAGE_BATCH),
                hops: Vec::with_capacity(STAGE_BATCH),
            },
            config: NodeConfig { peers: Vec::new(), ..config },
        };
        for peer in peers {
            node.add_peer(peer)?;
        }
        Ok(node)
    }

    /// The configuration, with the peers as they are now.
    #[must_use]
    pub const fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The counters.
    #[must_use]
    pub const fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The bridge (its FDB, ARP table and per-port counters).
    #[must_use]
    pub const fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    /// The largest IP packet a pod can send to a peer without "fragmentation needed": the underlay MTU minus
    /// the backend's overhead (what flannel sets as the MTU of `flannel.1` or `flannel0`).
    #[must_use]
    pub const fn inner_mtu(&self) -> u16 {
        self.inner_mtu
    }

    /// The peers.
    pub fn peers(&self) -> impl Iterator<Item = &PeerConfig> + '_ {
        self.config.peers.iter()
    }

    /// How many packets wait for ARP.
    #[must_use]
    pub fn arp_pending(&self) -> usize {
        self.pending.len()
    }

    fn build_peer(&self, cfg: &PeerConfig) -> Result<(Peer, NextHopKind), ConfigError> {
        let missing = |field| ConfigError::MissingMac { subnet: cfg.subnet, field };
        // Through a UDP socket the kernel picks the next hop's MAC; the frame's outer destination is then zero.
        let outer_mac = cfg.node_mac.or(self.config.underlay.gateway_mac).or(self.socket_port.map(|_| MacAddr::ZERO));
        for (field, mac) in [("vtep_mac", cfg.vtep_mac), ("node_mac", cfg.node_mac)] {
            if let Some(mac) = mac
                && (mac.is_multicast() || mac.is_zero())
            {
                return Err(ConfigError::InvalidMac { field, mac });
            }
        }
        let spec = |dst_mac, src_port, dst_port, vni| TemplateSpec {
            src_mac: self.node_mac,
            dst_mac,
            src_ip: self.node_ip,
            dst_ip: cfg.node_ip,
            src_port,
            dst_port,
            vni,
        };
        let (dst_mac, template, kind) = match self.backend {
            Backend::Vxlan { vni, port, .. } => {
                let vtep = cfg.vtep_mac.ok_or_else(|| missing("vtep_mac"))?;
                let outer = outer_mac.ok_or_else(|| missing("node_mac"))?;
                let t = Template::new(&spec(outer, 0, port, Some(vni)));
                (vtep, Some(t), NextHopKind::Vxlan { peer_ip: cfg.node_ip, vtep_mac: vtep })
            }
            Backend::Udp { port } => {
                let outer = outer_mac.ok_or_else(|| missing("node_mac"))?;
                let t = Template::new(&spec(outer, port, port, None));
                (outer, Some(t), NextHopKind::Udp { peer_ip: cfg.node_ip })
            }
            Backend::HostGw => {
                let mac = cfg.node_mac.ok_or_else(|| missing("node_mac"))?;
                (mac, None, NextHopKind::HostGw { peer_ip: cfg.node_ip, peer_mac: mac })
            }
        };
        let (net, mask) = net_mask(cfg.subnet);
        let peer =
            Peer { config: PeerConfig { subnet: cfg.subnet.trunc(), ..cfg.clone() }, net, mask, dst_mac, template };
        Ok((peer, kind))
    }

    fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
        a.contains(&b.network()) || b.contains(&a.network())
    }

    /// Adds a peer: a route to its subnet through its backend. Call it between two batches.
    ///
    /// # Errors
    /// A MAC its backend needs is missing or invalid, its subnet overlaps ours or another peer's, its node address
    /// is another peer's, or the table is full.
    pub fn add_peer(&mut self, cfg: PeerConfig) -> Result<(), ConfigError> {
        let subnet = cfg.subnet.trunc();
        if Self::overlaps(subnet, self.config.pod_subnet)
            || self.config.peers.iter().any(|p| Self::overlaps(p.subnet, subnet))
        {
            return Err(ConfigError::Overlap(subnet));
        }
        if self.peers_by_ip.contains_key(&u32::from(cfg.node_ip)) || cfg.node_ip == self.node_ip {
            return Err(ConfigError::DuplicateNodeIp(cfg.node_ip));
        }
        if self.config.peers.len() >= self.config.limits.max_peers as usize {
            return Err(ConfigError::TooManyPeers);
        }
        let (peer, kind) = self.build_peer(&cfg)?;
        let route_err = |e: tweed_route::Error| ConfigError::Route(e.to_string());
        let prefix = Ipv4Prefix::new(u32::from(subnet.network()), subnet.prefix_len()).map_err(route_err)?;
        let id = self.routes.add_next_hop(NextHop::new(kind)).map_err(route_err)?;
        if let Err(e) = self.routes.insert(prefix, id) {
            // The id was just added and nothing points to it.
            let _ = self.routes.remove_next_hop(id);
            return Err(route_err(e));
        }
        self.index_peer(id, &peer);
        let slot = id.0 as usize;
        if self.hops.len() <= slot {
            self.hops.resize(slot + 1, Hop::Empty);
        }
        self.config.peers.push(peer.config.clone());
        self.hops[slot] = Hop::Peer(Box::new(peer));
        self.peers_by_subnet.insert(subnet, id);
        Ok(())
    }

    fn index_peer(&mut self, id: NextHopId, peer: &Peer) {
        self.peers_by_ip.insert(u32::from(peer.config.node_ip), id);
        if let Some(mac) = peer.config.node_mac {
            self.peers_by_mac.insert(mac.to_u64(), id);
        }
    }

    fn unindex_peer(&mut self, peer: &PeerConfig) {
        self.peers_by_ip.remove(&u32::from(peer.node_ip));
        if let Some(mac) = peer.node_mac {
            self.peers_by_mac.remove(&mac.to_u64());
        }
    }

    /// Changes a peer (found by its subnet): its node address or MACs. Packets in later batches use the new
    /// values; the route is not withdrawn meanwhile.
    ///
    /// # Errors
    /// [`ConfigError::UnknownPeer`], and those of [`Node::add_peer`] about the new values.
    pub fn update_peer(&mut self, cfg: PeerConfig) -> Result<(), ConfigError> {
        let subnet = cfg.subnet.trunc();
        let id = *self.peers_by_subnet.get(&subnet).ok_or(ConfigError::UnknownPeer(subnet))?;
        if let Some(&other) = self.peers_by_ip.get(&u32::from(cfg.node_ip))
            && other != id
        {
            return Err(ConfigError::DuplicateNodeIp(cfg.node_ip));
        }
        let (peer, kind) = self.build_peer(&cfg)?;
        self.routes.replace_next_hop(id, NextHop::new(kind)).map_err(|e| ConfigError::Route(e.to_string()))?;
        if let Some(Hop::Peer(old)) = self.hops.get(id.0 as usize) {
            let old = old.config.clone();
            self.unindex_peer(&old);
        }
        self.index_peer(id, &peer);
        if let Some(p) = self.config.peers.iter_mut().find(|p| p.subnet == subnet) {
            *p = peer.config.clone();
        }
        self.hops[id.0 as usize] = Hop::Peer(Box::new(peer));
        Ok(())
    }

    /// Removes a peer and its route; packets to its subnet are then dropped ([`DropReason::NoRoute`]).
    ///
    /// # Errors
    /// [`ConfigError::UnknownPeer`].
    pub fn remove_peer(&mut self, subnet: Ipv4Net) -> Result<PeerConfig, ConfigError> {
        let subnet = subnet.trunc();
        let id = self.peers_by_subnet.remove(&subnet).ok_or(ConfigError::UnknownPeer(subnet))?;
        let route_err = |e: tweed_route::Error| ConfigError::Route(e.to_string());
        let prefix = Ipv4Prefix::new(u32::from(subnet.network()), subnet.prefix_len()).map_err(route_err)?;
        self.routes.remove(prefix);
        self.routes.remove_next_hop(id).map_err(route_err)?;
        let hop = core::mem::replace(&mut self.hops[id.0 as usize], Hop::Empty);
        let Hop::Peer(peer) = hop else { return Err(ConfigError::UnknownPeer(subnet)) };
        self.unindex_peer(&peer.config);
        self.config.peers.retain(|p| p.subnet != subnet);
        Ok(peer.config)
    }

    /// Runs every packet of `input` (each with `meta().ingress` set to a pod port or the underlay port) through
    /// the pipeline at time `now`, stage by stage over the batch (see [the data path](crate#the-data-path)),
    /// leaving `input` empty. Every packet ends in `out` with its verdict, unless it waits for ARP (it comes out,
    /// delivered or dropped, in a later call); packets the node originates (ARP replies and requests, ICMP errors
    /// and echo replies, flood copies) come from `pool` and go to `out` too, ahead of the batch's own packets.
    ///
    /// The stages run over at most 256 packets at a time, and over no more than `out` has room for: inputs
    /// beyond the room left in `out` stay in `input`, in order.
    pub fn process(&mut self, now: Instant, pool: &mut Pool, input: &mut Batch, out: &mut Outputs) {
        let now = now.as_nanos();
        self.service_pending(now, pool, out);
        // The per-packet state lives in vectors sized at construction; taken out of `self` for the call.
        let mut s = core::mem::take(&mut self.scratch);
        loop {
            let k = input.len().min(out.items.capacity() - out.items.len()).min(STAGE_BATCH);
            if k == 0 {
                break;
            }
            let bufs = &mut input.as_mut_slice()[..k];
            s.steps.clear();
            self.stage_classify(now, pool, bufs, &mut s.steps, out);
            self.stage_route(now, pool, bufs, &mut s, out);
            self.stage_rewrite(now, pool, bufs, &mut s.steps, out);
            // Emit, in order of arrival.
            if k == input.len() {
                for (buf, step) in input.drain().zip(&s.steps) {
                    self.emit(now, buf, step.verdict(), pool, out);
                }
            } else {
                // The first `k` to the back, last first, so that popping takes them in order without shifting.
                input.as_mut_slice()[..k].reverse();
                input.as_mut_slice().rotate_left(k);
                for step in &s.steps {
                    let Some(buf) = input.pop() else { break };
                    self.emit(now, buf, step.verdict(), pool, out);
                }
            }
        }
        self.scratch = s;
    }

    /// Stage 1, classify: by ingress. Underlay frames are checked against the peers and decapsulated (their
    /// outer headers pulled off); pod frames go through the bridge, [`BRIDGE_BATCH`] frames per call of
    /// [`Bridge::process`], and its decisions are carried out (switching, flooding, ARP replies); frames the
    /// bridge hands to the host are bound for the router.
    fn stage_classify(
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
            let step = if ingress == self.underlay_port {
                self.counters.rx_underlay += 1;
                self.rx_underlay(buf, false)
            } else if Some(ingress) == self.socket_port {
                self.counters.rx_underlay += 1;
                self.rx_underlay(buf, true)
            } else if Some(ingress) == self.host_port {
                self.counters.rx_host += 1;
                self.rx_host(buf)
            } else if self.pod_port.get(usize::from(ingress.0)).copied().unwrap_or(false) {
                self.counters.rx_pod += 1;
                pods += 1;
                Step::Bridge
            } else {
                Step::Done(Some(Verdict::Drop(DropReason::UnknownPort)))
            };
            steps.push(step);
        }
        if pods == 0 {
            return;
        }
        let at = Instant::from_nanos(now);
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
                self.bridge.process(at, &frames[..m], &mut decisions[..m]);
            }
            for (&i, &decision) in idx[..m].iter().zip(&decisions[..m]) {
                let i = usize::from(i);
                steps[i] = self.rx_pod_frame(now, pool, &mut bufs[i], decision, out);
            }
        }
    }

    /// Stage 2, route: the RFC 1812 checks of every packet bound for the router (packets for the node itself
    /// are answered or sent to the host here), then one LPM lookup over the batch's destinations, then per
    /// packet: no route, TTL, MTU, TTL decrement.
    fn stage_route(&mut self, now: u64, pool: &mut Pool, bufs: &mut [PacketBuf], s: &mut Scratch, out: &mut Outputs) {
        s.addrs.clear();
        for (buf, step) in bufs.iter_mut().zip(s.steps.iter_mut()) {
            if let Step::Route { origin, from_peer } = *step {
                *step = match self.route_check(now, pool, buf, origin, from_peer, out) {
                    Ok(dst) => {
                        s.addrs.push(dst);
                        Step::Lookup { origin }
                    }
                    Err(verdict) => Step::Done(verdict),
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
            if let Step::Lookup { origin } = *step {
                let hop = hops.next().copied().flatten();
                *step = match self.route_hop(now, pool, buf, origin, hop, out) {
                    Ok((id, dst)) => Step::Forward { id, dst },
                    Err(verdict) => Step::Done(verdict),
                };
            }
        }
    }

    /// Stage 3, rewrite: every routed packet to its next hop: local delivery (the pod's MAC from the ARP table,
    /// or the ARP queue) or the backend's encapsulation with the peer's template.
    fn stage_rewrite(
        &mut self,
        now: u64,
        pool: &mut Pool,
        bufs: &mut [PacketBuf],
        steps: &mut [Step],
        out: &mut Outputs,
    ) {
        for (buf, step) in bufs.iter_mut().zip(steps.iter_mut()) {
            if let Step::Forward { id, dst } = *step {
                *step = Step::Done(self.forward(now, pool, buf, id, dst, out));
            }
        }
    }

    /// Puts `buf` in `out` with its verdict; `None` queues it for ARP (see `deliver_pod`).
    fn emit(&mut self, now: u64, buf: PacketBuf, verdict: Option<Verdict>, pool: &mut Pool, out: &mut Outputs) {
        let Some(verdict) = verdict else {
            if self.pending.len() < self.pending.capacity() {
                #[allow(clippy::cast_possible_truncation)] // `deliver_pod` stored an IPv4 address
                let ip = Ipv4Addr::from(buf.meta().user as u32);
                self.pending.push(Pending { ip, since: now, buf });
                self.counters.arp_queued += 1;
            } else {
                self.counters.count_drop(DropReason::ArpQueueFull);
                pool.put(buf);
            }
            return;
        };
        if let Verdict::Drop(reason) = verdict {
            self.counters.count_drop(reason);
        }
        if out.is_full() {
            self.counters.count_drop(DropReason::OutputFull);
            pool.put(buf);
        } else {
            out.items.push((buf, verdict));
        }
    }

    /// A frame from a pod, after the bridge: carries out its decision.
    fn rx_pod_frame(
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
    fn flood(&mut self, buf: &PacketBuf, ingress: PortId, pool: &mut Pool, out: &mut Outputs) -> Verdict {
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

    /// RFC 1812 §5.2.2 checks on the IPv4 packet at `ETH` of `buf`, trimming link padding.
    fn check_ipv4(buf: &mut PacketBuf) -> Result<(), DropReason> {
        let data = buf.data();
        if data.get(12..14) != Some(&[0x08, 0x00][..]) {
            return Err(DropReason::UnsupportedEthertype);
        }
        let ip_bytes = &data[ETH..];
        let ip = ipv4::Packet::new_unchecked(ip_bytes);
        if let Err(e) = ip.check_len() {
            return Err(match e {
                tweed_wire::Error::Invalid { field: "version", .. } => DropReason::Ipv4Version,
                _ => DropReason::Ipv4Malformed,
            });
        }
        if !ip.verify_checksum() {
            return Err(DropReason::Ipv4Checksum);
        }
        let src = u32::from(ip.src_addr());
        let dst = u32::from(ip.dst_addr());
        if martian(src) {
            return Err(DropReason::MartianSource);
        }
        if martian(dst) {
            return Err(DropReason::MartianDestination);
        }
        let total = usize::from(ip.total_len());
        buf.truncate(ETH + total);
        Ok(())
    }

    /// An IP packet from the host's TUN: given an Ethernet header (from the gateway to the gateway, as if the
    /// bridge had handed it to the router) and bound for the router.
    fn rx_host(&mut self, buf: &mut PacketBuf) -> Step {
        let Ok(eth) = buf.push_front(ETH) else { return Step::Done(Some(Verdict::Drop(DropReason::NoHeadroom))) };
        set_macs(eth, self.gw_mac, self.gw_mac);
        eth[12..14].copy_from_slice(&EtherType::IPV4.0.to_be_bytes());
        Step::Route { origin: Origin::Host, from_peer: None }
    }

    /// Routes the IPv4 packet of an Ethernet frame that reached the router, alone: for packets the node
    /// originates (ICMP errors); the batch goes through [`Node::stage_route`].
    fn route_frame(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        origin: Origin,
        from_peer: Option<(u32, u32)>,
        out: &mut Outputs,
    ) -> Option<Verdict> {
        let dst = match self.route_check(now, pool, buf, origin, from_peer, out) {
            Ok(dst) => dst,
            Err(verdict) => return verdict,
        };
        let hop = self.routes.lookup(dst);
        match self.route_hop(now, pool, buf, origin, hop, out) {
            Ok((id, dst)) => self.forward(now, pool, buf, id, dst, out),
            Err(verdict) => verdict,
        }
    }

    /// The router before the lookup: RFC 1812 §5.2.2 checks, the peer's subnet for decapsulated packets, and
    /// packets for the node itself (answered or sent to the host: `Err` with their verdict). `Ok`: the
    /// destination to look up.
    fn route_check(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        origin: Origin,
        from_peer: Option<(u32, u32)>,
        out: &mut Outputs,
    ) -> Result<u32, Option<Verdict>> {
        Self::check_ipv4(buf).map_err(|r| Some(Verdict::Drop(r)))?;
        let ip = ipv4::Packet::new_unchecked(&buf.data()[ETH..]);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if let Some((net, mask)) = from_peer
            && u32::from(src) & mask != net
        {
            return Err(Some(Verdict::Drop(DropReason::SpoofedSource)));
        }
        if dst == self.gw_ip || dst == self.node_ip {
            if origin == Origin::Host {
                return Err(Some(Verdict::Drop(DropReason::HostToSelf)));
            }
            return Err(self.deliver_self(now, pool, buf, origin, out));
        }
        Ok(u32::from(dst))
    }

    /// The router after the lookup (`hop`): no route (ICMP net unreachable), TTL (ICMP time exceeded), the MTU
    /// rule, then the TTL decrement. `Ok`: the next hop and the destination.
    fn route_hop(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        origin: Origin,
        hop: Option<NextHopId>,
        out: &mut Outputs,
    ) -> Result<(NextHopId, Ipv4Addr), Option<Verdict>> {
        let ip = ipv4::Packet::new_unchecked(&buf.data()[ETH..]);
        let dst = ip.dst_addr();
        let Some(id) = hop else {
            self.icmp_error(now, pool, buf, ErrorKind::DstUnreachable(icmpv4::DstUnreachable::NetUnreachable), out);
            return Err(Some(Verdict::Drop(DropReason::NoRoute)));
        };
        // The node forwards what pods and peers send; its own packets and the host's leave as they are, and any
        // TTL is theirs to send (the next router checks it).
        let forwards = matches!(origin, Origin::Pod | Origin::Peer);
        if forwards && ip.ttl() <= 1 {
            self.icmp_error(now, pool, buf, ErrorKind::TTL_EXPIRED, out);
            return Err(Some(Verdict::Drop(DropReason::TtlExpired)));
        }
        let is_local = matches!(self.hops.get(id.0 as usize), Some(Hop::Local));
        if origin == Origin::Peer && !is_local {
            return Err(Some(Verdict::Drop(DropReason::NotLocal)));
        }
        if !is_local {
            let total = ip.total_len();
            if total > self.inner_mtu {
                if !ip.dont_frag() {
                    return Err(Some(Verdict::Drop(DropReason::TooBigNoDf)));
                }
                let mtu = self.inner_mtu;
                self.icmp_error(now, pool, buf, ErrorKind::FragRequired { next_hop_mtu: mtu }, out);
                return Err(Some(Verdict::Drop(DropReason::TooBig)));
            }
        }
        if forwards {
            let mut ipm = ipv4::Packet::new_unchecked(&mut buf.data_mut()[ETH..]);
            // TTL > 1 was checked above.
            let _ = ipm.decrement_ttl();
        }
        Ok((id, dst))
    }

    /// Sends a routed packet on to its next hop.
    fn forward(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        id: NextHopId,
        dst: Ipv4Addr,
        out: &mut Outputs,
    ) -> Option<Verdict> {
        match self.hops.get(id.0 as usize) {
            Some(Hop::Local) => self.deliver_pod(now, pool, buf, dst, out),
            Some(Hop::Peer(peer)) => {
                let verdict = match self.backend {
                    Backend::Vxlan { vtep_mac, port, udp_checksum, source_ports, .. } => {
                        set_macs(buf.data_mut(), peer.dst_mac, vtep_mac);
                        let sport = encap::port_in_range(encap::flow_hash(&buf.data()[ETH..]), source_ports);
                        encap_with(buf, peer, &mut self.ident, Some(sport), udp_checksum, VXLAN_OUTER_LEN, port)
                    }
                    Backend::Udp { port } => {
                        if buf.pull_front(ETH).is_err() {
                            Verdict::Drop(DropReason::Ipv4Malformed)
                        } else {
                            encap_with(buf, peer, &mut self.ident, None, false, UDP_OUTER_LEN, port)
                        }
                    }
                    Backend::HostGw => {
                        set_macs(buf.data_mut(), peer.dst_mac, self.node_mac);
                        Verdict::Underlay { dst: peer.config.node_ip, port: 0, payload_offset: ETH as u16 }
                    }
                };
                if matches!(verdict, Verdict::Underlay { .. }) {
                    self.counters.to_peer += 1;
                }
                Some(verdict)
            }
            Some(Hop::Empty) | None => Some(Verdict::Drop(DropReason::StaleNextHop)),
        }
    }

    /// Delivers to a local pod, or queues the packet while asking for the pod's MAC.
    fn deliver_pod(
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
    fn ask(&mut self, now: u64, ip: Ipv4Addr, pool: &mut Pool, out: &mut Outputs) {
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
    fn release_pending(&mut self, now: u64, frame: &[u8], pool: &mut Pool, out: &mut Outputs) {
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
    fn service_pending(&mut self, now: u64, pool: &mut Pool, out: &mut Outputs) {
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

    /// A packet for the node itself: echo requests are answered, the rest goes to the host.
    fn deliver_self(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        origin: Origin,
        out: &mut Outputs,
    ) -> Option<Verdict> {
        let data = buf.data_mut();
        let ip = ipv4::Packet::new_unchecked(&data[ETH..]);
        let hl = ip.header_len();
        let is_echo = ip.protocol() == ipv4::Protocol::ICMP
            && !ip.is_fragment()
            && data.get(ETH + hl) == Some(&icmpv4::Message::ECHO_REQUEST.0)
            && data.len() >= ETH + hl + icmpv4::HEADER_LEN;
        if !is_echo || origin == Origin::Node {
            if buf.pull_front(ETH).is_err() {
                return Some(Verdict::Drop(DropReason::Ipv4Malformed));
            }
            self.counters.to_tun += 1;
            return Some(Verdict::Tun);
        }
        // Answer in place: swap the addresses (the header checksum does not change), type 8 → 0.
        let mut ipm = ipv4::Packet::new_unchecked(&mut data[ETH..]);
        let (src, dst) = (ipm.src_addr(), ipm.dst_addr());
        ipm.set_src_addr(dst);
        ipm.set_dst_addr(src);
        let old_ttl = ipm.ttl();
        ipm.set_ttl(64);
        let c = checksum::update16(
            ipm.checksum(),
            u16::from_be_bytes([old_ttl, ipm.protocol().0]),
            u16::from_be_bytes([64, ipm.protocol().0]),
        );
        ipm.set_checksum(c);
        let mut icmp = icmpv4::Packet::new_unchecked(&mut ipm.payload_mut()[..]);
        icmp.set_msg_type(icmpv4::Message::ECHO_REPLY);
        let c = checksum::update16(icmp.checksum(), 0x0800, 0x0000);
        icmp.set_checksum(c);
        self.counters.echo_replies += 1;
        let Some(id) = self.routes.lookup(u32::from(src)) else {
            return Some(Verdict::Drop(DropReason::NoRoute));
        };
        self.forward(now, pool, buf, id, src, out)
    }

    /// Sends an ICMP error about the IPv4 packet in `buf` (not yet changed) back to its source, routed as any
    /// packet, unless RFC 1812 §4.3.2.7 forbids it or the rate limit says no.
    fn icmp_error(&mut self, now: u64, pool: &mut Pool, buf: &PacketBuf, kind: ErrorKind, out: &mut Outputs) {
        let original = &buf.data()[ETH..];
        if !icmpv4::may_send_error(&ipv4::Packet::new_unchecked(original)) {
            self.counters.icmp_suppressed += 1;
            return;
        }
        if !self.icmp.take(now) {
            self.counters.icmp_rate_limited += 1;
            return;
        }
        let Some(mut err) = pool.get() else {
            self.counters.count_drop(DropReason::PoolExhausted);
            return;
        };
        let mut frame = [0u8; ETH + 96];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        let Ok(len) = icmpv4::emit_error(kind, self.gw_ip, original, &mut frame[ETH..]) else {
            pool.put(err);
            return;
        };
        if err.extend_from_slice(&frame[..ETH + len]).is_err() {
            pool.put(err);
            return;
        }
        err.meta_mut().ingress = buf.meta().ingress;
        self.counters.icmp_errors += 1;
        let verdict = self.route_frame(now, pool, &mut err, Origin::Node, None, out);
        self.emit(now, err, verdict, pool, out);
    }

    /// A frame (or, from a UDP socket, a datagram's payload) from the underlay: only from a known peer, with the
    /// backend's encapsulation, which is pulled off.
    fn rx_underlay(&mut self, buf: &mut PacketBuf, datagram: bool) -> Step {
        let checked = if datagram { self.check_datagram(buf) } else { self.check_underlay(buf) };
        let id = match checked {
            Ok(id) => id,
            Err(r) => return Step::Done(Some(Verdict::Drop(r))),
        };
        let Some(Hop::Peer(peer)) = self.hops.get(id.0 as usize) else {
            return Step::Done(Some(Verdict::Drop(DropReason::UnknownPeer)));
        };
        let subnet = (peer.net, peer.mask);
        self.counters.from_peer += 1;
        Step::Route { origin: Origin::Peer, from_peer: Some(subnet) }
    }

    /// Checks the outer headers and pulls them off; leaves an Ethernet frame with the inner IPv4 packet.
    fn check_underlay(&self, buf: &mut PacketBuf) -> Result<NextHopId, DropReason> {
        let data = buf.data();
        if data.len() < ETH || data[0..6] != *self.node_mac.as_bytes() {
            return Err(DropReason::UnderlayNotForUs);
        }
        if data[12..14] != [0x08, 0x00] {
            return Err(DropReason::UnderlayNotForUs);
        }
        if let Backend::HostGw = self.backend {
            let src_mac = MacAddr::from_bytes(&data[6..12]).unwrap_or(MacAddr::ZERO);
            return self.peers_by_mac.get(&src_mac.to_u64()).copied().ok_or(DropReason::UnknownPeer);
        }
        let ip = ipv4::Packet::new_checked(&data[ETH..]).map_err(|_| DropReason::UnderlayMalformed)?;
        if !ip.verify_checksum() {
            return Err(DropReason::UnderlayMalformed);
        }
        if ip.dst_addr() != self.node_ip {
            return Err(DropReason::UnderlayNotForUs);
        }
        if ip.is_fragment() {
            return Err(DropReason::UnderlayFragment);
        }
        if ip.protocol() != ipv4::Protocol::UDP {
            return Err(DropReason::UnderlayWrongPort);
        }
        let hl = ip.header_len();
        let udp = udp::Packet::new_checked(ip.payload()).map_err(|_| DropReason::UnderlayMalformed)?;
        let port = match self.backend {
            Backend::Vxlan { port, .. } | Backend::Udp { port } => port,
            Backend::HostGw => 0,
        };
        if udp.dst_port() != port {
            return Err(DropReason::UnderlayWrongPort);
        }
        let src = ip.src_addr();
        let id = self.peers_by_ip.get(&u32::from(src)).copied().ok_or(DropReason::UnknownPeer)?;
        if udp.checksum() != 0 && !udp.verify_checksum(src, ip.dst_addr()) {
            return Err(DropReason::UnderlayChecksum);
        }
        let end = ETH + hl + usize::from(udp.len());
        self.check_payload(id, buf, ETH + hl + udp::HEADER_LEN, end)?;
        Ok(id)
    }

    /// Checks the payload of a datagram a UDP socket on the backend's port received from `meta.remote`, and
    /// pulls the VXLAN header off (vxlan) or puts an Ethernet header in front of the IP packet (udp).
    fn check_datagram(&self, buf: &mut PacketBuf) -> Result<NextHopId, DropReason> {
        if let Backend::HostGw = self.backend {
            return Err(DropReason::UnderlayWrongPort);
        }
        let src = buf.meta().remote;
        let id = self.peers_by_ip.get(&u32::from(src)).copied().ok_or(DropReason::UnknownPeer)?;
        let end = buf.len();
        self.check_payload(id, buf, 0, end)?;
        Ok(id)
    }

    /// Checks the UDP payload at `start..end` of the buffer, from peer `id`, and leaves the inner packet behind an
    /// Ethernet header.
    fn check_payload(&self, id: NextHopId, buf: &mut PacketBuf, start: usize, end: usize) -> Result<(), DropReason> {
        let pull = match self.backend {
            Backend::Vxlan { vni, vtep_mac, .. } => {
                let vx = vxlan::Packet::new_checked(&buf.data()[start..end]).map_err(|_| DropReason::VxlanMalformed)?;
                if vx.flags() != vxlan::FLAG_VNI {
                    return Err(DropReason::VxlanMalformed);
                }
                if vx.vni().get() != vni {
                    return Err(DropReason::WrongVni);
                }
                let inner = vx.payload();
                let Some(Hop::Peer(peer)) = self.hops.get(id.0 as usize) else {
                    return Err(DropReason::UnknownPeer);
                };
                if inner.len() < ETH || inner[0..6] != *vtep_mac.as_bytes() || inner[6..12] != *peer.dst_mac.as_bytes()
                {
                    return Err(DropReason::InnerMismatch);
                }
                start + vxlan::HEADER_LEN
            }
            Backend::Udp { .. } | Backend::HostGw => start,
        };
        buf.truncate(end);
        buf.pull_front(pull).map_err(|_| DropReason::UnderlayMalformed)?;
        if let Backend::Udp { .. } = self.backend {
            let eth = buf.push_front(ETH).map_err(|_| DropReason::NoHeadroom)?;
            eth[0..6].copy_from_slice(self.gw_mac.as_bytes());
            eth[6..12].copy_from_slice(self.gw_mac.as_bytes());
            eth[12..14].copy_from_slice(&[0x08, 0x00]);
        }
        Ok(())
    }
}

#[inline]
fn encap_with(
    buf: &mut PacketBuf,
    peer: &Peer,
    ident: &mut u16,
    sport: Option<u16>,
    udp_checksum: bool,
    len: usize,
    port: u16,
) -> Verdict {
    let Some(template) = &peer.template else { return Verdict::Drop(DropReason::StaleNextHop) };
    debug_assert_eq!(template.len(), len);
    if buf.push_front(len).is_err() {
        return Verdict::Drop(DropReason::NoHeadroom);
    }
    *ident = ident.wrapping_add(1);
    template.write(buf.data_mut(), *ident, sport, udp_checksum);
    Verdict::Underlay { dst: peer.config.node_ip, port, payload_offset: UDP_OUTER_LEN as u16 }
}
