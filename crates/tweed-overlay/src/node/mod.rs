//! [`Node`]: one worker's pipeline. Frames from pod ports go through the bridge, then (when addressed to the
//! gateway) the router, then local delivery, an IP port or the encapsulation; packets from IP ports go to the
//! router; what the underlay delivers is checked, decapsulated, routed and delivered.
//!
//! [`Node::process`] runs this stage by stage over the batch: `stage_classify` (ports, decapsulation, the
//! bridge), `stage_route` (checks, one `lookup_batch`, TTL and MTU), `stage_rewrite` (ARP resolution, an IP port
//! or the encapsulation), then the emission of the verdicts. Between stages each packet's state is a `Step` in
//! vectors allocated with the node; packets the node originates itself (ICMP errors) are routed alone by
//! `route_frame`. The router works from the IPv4 header's offset (`l3`: 14 behind an Ethernet header, 0 for IP
//! ports and IP decapsulations).

use core::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use tweed_packet::{Batch, PacketBuf, Pool, PortId};
use tweed_route::{NextHopId, RouteReader};
use tweed_switch::{Bridge, BridgeConfig, BridgeDomain, Decision, Instant, PortConfig};
use tweed_wire::ethernet::{EtherType, MacAddr};
use tweed_wire::icmpv4::{self, ErrorKind};
use tweed_wire::{arp, checksum, ipv4, udp};

use crate::config::{ConfigError, NodeConfig, PeerConfig};
use crate::control::{Control, Shared};
use crate::encap::{ETH_LEN as ETH, Encapsulation, Flannel, Hop, PeerTable, Transport};
use crate::verdict::{Counters, DropReason, Verdict};

const BD: BridgeDomain = BridgeDomain(0);

mod api;
mod frag;
mod icmp;
mod neigh;
mod outputs;
mod pod;
mod route;
mod stages;
mod underlay;

use icmp::IcmpLimit;
use neigh::Neighbours;
pub use outputs::Outputs;
use pod::PortAddrs;

/// What a port number is, looked up in one load per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PortKind {
    Unknown,
    /// A pod port: Ethernet, behind the bridge.
    Pod,
    /// An IP port: IP packets, routed.
    Ip,
    /// The host's IP port.
    Host,
    /// The underlay: whole frames.
    UnderlayFrame,
    /// The underlay through a UDP socket: datagrams' payloads, the sender in `meta.remote`.
    UnderlayDatagram,
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
    /// From an IP port: forwarded.
    Port,
}

/// How often `process` publishes the worker's counters.
const COUNTERS_EVERY_NS: u64 = 100_000_000;

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
    /// For the router, its IPv4 header at `l3`.
    Route { origin: Origin, from_peer: Option<(u32, u32)>, l3: u8 },
    /// Checked by the router; its destination is in the lookup list.
    Lookup { origin: Origin, l3: u8 },
    /// Routed: to this next hop.
    Forward { id: NextHopId, dst: Ipv4Addr, l3: u8 },
    /// Finished, with its verdict.
    Done(Verdict),
    /// Waits for the MAC of this local address: `deliver_pod` promised it a place in the ARP queue.
    Arp(Ipv4Addr),
}

impl Step {
    const fn drop(reason: DropReason) -> Self {
        Self::Done(Verdict::Drop(reason))
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

/// One worker of a node: see the [crate documentation](crate). Made by [`Node::new`] or
/// [`Node::with_encapsulation`] (a node that owns its [`Control`]), or by [`Control::worker`] (one of several
/// workers sharing a control).
pub struct Node<E: Encapsulation = Flannel> {
    shared: Arc<Shared<E>>,
    /// The control, when this node owns it.
    control: Option<Box<Control<E>>>,
    routes: RouteReader,
    published: Arc<ArcSwap<PeerTable<E::Peer>>>,
    /// The peers as of the current batch.
    snap: Arc<PeerTable<E::Peer>>,
    bridge: Bridge,
    /// By port number.
    kinds: Box<[PortKind]>,
    /// The pod subnet's hosts, which pods' sources must be: the first, and how many more there are.
    pod_hosts: (u32, u32),
    port_security: bool,
    /// By port number: a pod port's own addresses.
    port_addrs: Vec<PortAddrs>,
    host_port: Option<PortId>,
    transport: Transport,
    gw_ip: Ipv4Addr,
    gw_mac: MacAddr,
    node_ip: Ipv4Addr,
    /// The source of the ICMP errors the node sends: the gateway's address, or the node's without a bridge.
    icmp_src: Ipv4Addr,
    node_mac: MacAddr,
    /// The largest inner IP packet the encapsulation carries.
    inner_mtu: u16,
    ident: u16,
    icmp: IcmpLimit,
    neigh: Neighbours,
    /// When the bridge's tables were last swept for dead entries (ns).
    aged_at: u64,
    counters: Counters,
    /// Where the counters are published for [`Control::counters`], and when they last were (ns).
    counters_slot: Arc<Mutex<Counters>>,
    counters_at: u64,
    scratch: Scratch,
    /// The batch of [`Node::handle`].
    one: Batch,
}

impl<E: Encapsulation> core::fmt::Debug for Node<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Node")
            .field("config", &self.shared.config)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

fn sw(port: PortId) -> tweed_switch::PortId {
    tweed_switch::PortId(port.0)
}

#[inline(always)]
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
    /// Builds a flannel node from its configuration (its backend from [`NodeConfig::backend`]), peers included.
    /// The node owns its [`Control`]: [`Node::add_peer`] and the like change it.
    ///
    /// # Errors
    /// Those of [`NodeConfig::validate`] and [`Node::add_peer`].
    pub fn new(config: NodeConfig) -> Result<Self, ConfigError> {
        let encap = Flannel::from(&config.backend);
        Self::with_encapsulation(config, encap)
    }
}

impl<E: Encapsulation> Node<E> {
    /// Builds a node that carries its packets to peers with `encap` (an embedder's own encapsulation, say), peers
    /// of the configuration included; [`NodeConfig::backend`] is not used. The node owns its [`Control`].
    ///
    /// # Errors
    /// Those of [`NodeConfig::validate`] and [`Node::add_peer`].
    pub fn with_encapsulation(config: NodeConfig, encap: E) -> Result<Self, ConfigError> {
        let control = Control::with_encapsulation(config, encap)?;
        let mut node = control.worker();
        node.control = Some(Box::new(control));
        Ok(node)
    }

    /// A worker of `shared`'s node (see [`Control::worker`]); the configuration was validated.
    pub(crate) fn worker(
        shared: Arc<Shared<E>>,
        routes: RouteReader,
        published: Arc<ArcSwap<PeerTable<E::Peer>>>,
        counters_slot: Arc<Mutex<Counters>>,
    ) -> Self {
        let config = &shared.config;
        let mut bridge = Bridge::new(&BridgeConfig::default());
        let mut kinds = vec![PortKind::Unknown; usize::from(u16::MAX) + 1].into_boxed_slice();
        for &p in &config.pod_ports {
            // `validate` checked the port numbers against the bridge's range.
            let _ =
                bridge.add_port(tweed_switch::PortId(p), PortConfig::new(BD).with_arp_snoop(true).with_mac_lock(true));
            kinds[usize::from(p)] = PortKind::Pod;
        }
        for &p in &config.ip_ports {
            kinds[usize::from(p)] = PortKind::Ip;
        }
        if let Some(p) = config.host_port {
            kinds[usize::from(p)] = PortKind::Host;
        }
        kinds[usize::from(config.underlay.port)] = PortKind::UnderlayFrame;
        if let Some(p) = config.underlay.socket_port {
            kinds[usize::from(p)] = PortKind::UnderlayDatagram;
        }
        let mut port_addrs = Vec::new();
        if !config.port_addresses.is_empty() {
            port_addrs = vec![PortAddrs::NONE; tweed_switch::PortId::MAX];
            for pa in &config.port_addresses {
                port_addrs[usize::from(pa.port)].set(&pa.ips);
            }
        }
        let gw_ip = config.gateway_ip();
        let gw_mac = config.gateway_mac();
        let mut pod_hosts = (0, 0);
        if let Some(subnet) = config.pod_subnet {
            let subnet = subnet.trunc();
            let mask = u32::from(subnet.netmask());
            // `validate` refused /31 and /32 (no room for a gateway): there are at least two hosts.
            pod_hosts = (u32::from(subnet.network()).wrapping_add(1), (!mask).saturating_sub(2));
            // The gateway and the pods' ARP subnet; `validate` checked both.
            let _ = bridge.add_local(BD, gw_mac);
            let _ = bridge.set_arp(BD, gw_ip, gw_mac);
            let _ = bridge.set_arp_subnet(BD, subnet.network(), subnet.prefix_len());
        }
        let limits = &config.limits;
        let snap = published.load_full();
        Self {
            bridge,
            kinds,
            pod_hosts,
            port_security: config.port_security,
            port_addrs,
            host_port: config.host_port.map(PortId),
            transport: shared.encap.transport(),
            gw_ip,
            gw_mac,
            node_ip: config.underlay.node_ip,
            icmp_src: if config.pod_subnet.is_some() { gw_ip } else { config.underlay.node_ip },
            node_mac: config.underlay.node_mac,
            inner_mtu: config.underlay.mtu.saturating_sub(shared.encap.overhead()),
            ident: 0,
            icmp: IcmpLimit::new(limits),
            neigh: Neighbours::new(limits),
            aged_at: 0,
            counters: Counters::default(),
            counters_slot,
            counters_at: 0,
            scratch: Scratch {
                steps: Vec::with_capacity(STAGE_BATCH),
                addrs: Vec::with_capacity(STAGE_BATCH),
                hops: Vec::with_capacity(STAGE_BATCH),
            },
            one: Batch::new(1),
            control: None,
            routes,
            published,
            snap,
            shared,
        }
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
        self.refresh();
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
                for (buf, &step) in input.drain().zip(&s.steps) {
                    self.emit(now, buf, step, pool, out);
                }
            } else {
                // The first `k` to the back, last first, so that popping takes them in order without shifting.
                input.as_mut_slice()[..k].reverse();
                input.as_mut_slice().rotate_left(k);
                for &step in &s.steps {
                    let Some(buf) = input.pop() else { break };
                    self.emit(now, buf, step, pool, out);
                }
            }
        }
        out.reserved = 0;
        self.scratch = s;
        if now.saturating_sub(self.counters_at) >= COUNTERS_EVERY_NS {
            self.counters_at = now;
            self.publish_counters();
        }
    }

    /// Takes the control's changes, if this node owns it, and the latest snapshot of the peers.
    #[inline]
    fn refresh(&mut self) {
        if let Some(control) = self.control.as_deref_mut() {
            control.publish();
        }
        let current = self.published.load();
        if !Arc::ptr_eq(&current, &self.snap) {
            self.snap = Arc::clone(&current);
        }
    }

    /// Publishes this worker's counters for [`Control::counters`] (which sums the workers'). [`Node::process`]
    /// does it at least every 100 ms of the time it is given.
    pub fn publish_counters(&self) {
        self.counters_slot.lock().unwrap_or_else(PoisonError::into_inner).clone_from(&self.counters);
    }

    // The stages are in `stages.rs`.
    /// Puts a packet of the batch in `out` with its verdict (its room was held back), or in the ARP queue.
    #[inline(always)]
    fn emit(&mut self, now: u64, buf: PacketBuf, step: Step, pool: &mut Pool, out: &mut Outputs) {
        let verdict = match step {
            Step::Done(verdict) => verdict,
            Step::Arp(ip) => return self.enqueue(now, ip, buf, pool),
            _ => {
                debug_assert!(false, "a packet left the stages unfinished: {step:?}");
                Verdict::Drop(DropReason::StaleNextHop)
            }
        };
        let room = out.items.len() < out.items.capacity();
        self.put(buf, verdict, pool, out, room);
    }

    /// Puts a packet from outside the batch (originated by the node, or released from the ARP queue) in `out`,
    /// in the room beyond what the batch holds back, or in the ARP queue.
    fn emit_extra(&mut self, now: u64, buf: PacketBuf, step: Step, pool: &mut Pool, out: &mut Outputs) {
        let verdict = match step {
            Step::Done(verdict) => verdict,
            Step::Arp(ip) => return self.enqueue(now, ip, buf, pool),
            _ => Verdict::Drop(DropReason::StaleNextHop),
        };
        let room = out.spare() > 0;
        self.put(buf, verdict, pool, out, room);
    }

    /// Into `out` if `room`; else back to the pool, its drop counted once: its own reason, or `OutputFull`.
    #[inline(always)]
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
