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

mod frag;
mod icmp;
mod neigh;
mod outputs;
mod peers;
mod pod;
mod route;
mod underlay;

use icmp::IcmpLimit;
use neigh::Neighbours;
pub use outputs::Outputs;
use pod::PortAddrs;

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

/// How often `process` lets the bridge sweep its tables, and how many slots of each one step looks at.
const AGE_EVERY_NS: u64 = 100_000_000;
const AGE_BUDGET: usize = 256;

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
    /// The pod subnet's hosts, which pods' sources must be: the first, and how many more there are.
    pod_hosts: (u32, u32),
    port_security: bool,
    /// By port number: a pod port's own addresses.
    port_addrs: Vec<PortAddrs>,
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
    icmp: IcmpLimit,
    neigh: Neighbours,
    /// When the bridge's tables were last swept for dead entries (ns).
    aged_at: u64,
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
                .add_port(tweed_switch::PortId(p), PortConfig::new(BD).with_arp_snoop(true).with_mac_lock(true))
                .map_err(|_| ConfigError::InvalidPort(p))?;
            pod_port[usize::from(p)] = true;
        }
        let mut port_addrs = Vec::new();
        if !config.port_addresses.is_empty() {
            port_addrs = vec![PortAddrs::NONE; tweed_switch::PortId::MAX];
            for pa in &config.port_addresses {
                port_addrs[usize::from(pa.port)].set(&pa.ips);
            }
        }
        let (net, mask) = net_mask(config.pod_subnet);
        let gw_ip = config.gateway_ip();
        let gw_mac = config.gateway_mac();
        let bridge_err = |e: tweed_switch::BridgeError| ConfigError::Route(e.to_string());
        bridge.add_local(BD, gw_mac).map_err(bridge_err)?;
        bridge.set_arp(BD, gw_ip, gw_mac).map_err(bridge_err)?;
        // Pods' ARP may teach the bridge only addresses of the pod subnet.
        let subnet = config.pod_subnet.trunc();
        bridge.set_arp_subnet(BD, subnet.network(), subnet.prefix_len()).map_err(bridge_err)?;
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
            // `validate` refused /31 and /32 (no room for a gateway): there are at least two hosts.
            pod_hosts: (net.wrapping_add(1), (!mask).saturating_sub(2)),
            port_security: config.port_security,
            port_addrs,
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
            icmp: IcmpLimit::new(&limits),
            neigh: Neighbours::new(&limits),
            aged_at: 0,
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
        self.neigh.pending.len()
    }

    /// How many addresses are in the neighbour table (being resolved, or failed), at most
    /// [`Limits::arp_entries`](crate::Limits::arp_entries).
    #[must_use]
    pub fn arp_entries(&self) -> usize {
        self.neigh.entries.len()
    }

    /// Runs every packet of `input` (each with `meta().ingress` set to a pod port or the underlay port) through
    /// the pipeline at time `now`, stage by stage over the batch (see [the data path](crate#the-data-path)),
    /// leaving `input` empty. Every packet ends in `out` with its verdict, unless it waits for ARP (it comes out,
    /// delivered or dropped, in a later call); packets the node originates (ARP replies and requests, ICMP errors
    /// and echo replies, flood copies) come from `pool` and go to `out` too, ahead of the batch's own packets.
    ///
    /// The stages run over at most 256 packets at a time, and over no more than `out` has room for: inputs
    /// beyond the room left in `out` stay in `input`, in order.
    ///
    /// # Progress
    /// Every call with a non-empty `input` and room in `out` consumes at least one packet of `input`. The
    /// packets the node originates (ARP requests, ICMP errors, flood copies, fragments) or releases from the ARP
    /// queue never take the room the batch needs: the ARP timers' packets at the start of a call leave room for
    /// the whole input, or for half of the room if that is less, and while the batch runs, room is held back for
    /// all of its packets, the others taking only what is left (beyond it they are dropped,
    /// [`DropReason::OutputFull`]). A driver that loops while `input` is not empty and empties `out` between calls
    /// therefore always ends.
    pub fn process(&mut self, now: Instant, pool: &mut Pool, input: &mut Batch, out: &mut Outputs) {
        let now = now.as_nanos();
        // The ARP timers' packets (retries, timeouts) leave room for the input, or for half the room.
        out.reserved = input.len().min(STAGE_BATCH).min(out.room().div_ceil(2));
        self.service_neigh(now, pool, out);
        if now.saturating_sub(self.aged_at) >= AGE_EVERY_NS {
            // A bounded step of the bridge's garbage collection: dead ARP entries and expired MACs leave without
            // waiting for a table to fill (a whole sweep of the default tables takes a few seconds).
            self.aged_at = now;
            self.bridge.age(Instant::from_nanos(now), AGE_BUDGET);
        }
        // The per-packet state lives in vectors sized at construction; taken out of `self` for the call.
        let mut s = core::mem::take(&mut self.scratch);
        loop {
            let k = input.len().min(out.room()).min(STAGE_BATCH);
            if k == 0 {
                break;
            }
            out.reserved = k;
            self.counters.received += k as u64;
            let bufs = &mut input.as_mut_slice()[..k];
            s.steps.clear();
            self.stage_classify(now, pool, bufs, &mut s.steps, out);
            self.stage_route(now, pool, bufs, &mut s, out);
            self.stage_rewrite(now, pool, bufs, &mut s.steps, out);
            // Emit, in order of arrival: nothing else is output meanwhile, the batch has the room it held.
            out.reserved = 0;
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
        out.reserved = 0;
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
                match self.check_pod_source(usize::from(ingress.0), buf.data(), now) {
                    Ok(()) => {
                        pods += 1;
                        Step::Bridge
                    }
                    Err(reason) => Step::Done(Some(Verdict::Drop(reason))),
                }
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

    /// Puts a packet of the batch in `out` with its verdict (its room was held back); `None` queues it for ARP
    /// (see `deliver_pod`, which promised it a place in the queue).
    fn emit(&mut self, now: u64, buf: PacketBuf, verdict: Option<Verdict>, pool: &mut Pool, out: &mut Outputs) {
        let Some(verdict) = verdict else {
            self.enqueue(now, buf, pool);
            return;
        };
        let room = out.items.len() < out.items.capacity();
        self.put(buf, verdict, pool, out, room);
    }

    /// Puts a packet from outside the batch (originated by the node, or released from the ARP queue) in `out`,
    /// in the room beyond what the batch holds back; `None` queues it for ARP.
    fn emit_extra(&mut self, now: u64, buf: PacketBuf, verdict: Option<Verdict>, pool: &mut Pool, out: &mut Outputs) {
        let Some(verdict) = verdict else {
            self.enqueue(now, buf, pool);
            return;
        };
        let room = out.spare() > 0;
        self.put(buf, verdict, pool, out, room);
    }

    /// Into `out` if `room`; else back to the pool, its drop counted once: its own reason, or `OutputFull`.
    #[inline]
    fn put(&mut self, buf: PacketBuf, verdict: Verdict, pool: &mut Pool, out: &mut Outputs, room: bool) {
        if let Verdict::Drop(reason) = verdict {
            self.counters.count_drop(reason);
        }
        if !room {
            if !matches!(verdict, Verdict::Drop(_)) {
                self.counters.count_drop(DropReason::OutputFull);
            }
            self.counters.discarded += 1;
            pool.put(buf);
        } else {
            self.counters.outputs += 1;
            out.items.push((buf, verdict));
        }
    }
}
