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
use tweed_wire::ethernet::{self, EtherType, MacAddr};
use tweed_wire::icmpv4::{self, ErrorKind};
use tweed_wire::{arp, checksum, ipv4, udp};

use crate::config::{ConfigError, NodeConfig, PeerConfig};
use crate::control::{Control, Shared};
use crate::encap::{ETH_LEN as ETH, Encapsulation, Flannel, Hop, PeerTable, Transport};
use crate::verdict::{Counters, DropReason, Verdict};

const BD: BridgeDomain = BridgeDomain(0);

mod api;
mod build;
mod frag;
mod icmp;
mod learn;
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
    /// The underlay through a UDP socket: datagrams' payloads, the sender in `meta.remote()`.
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
///
/// ```
/// use tweed_overlay::encap::Udp;
/// use tweed_overlay::{Node, NodeBuilder};
///
/// let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
///     .pod_ports([1])
///     .into_config();
/// let flannel: Node = Node::new(config.clone())?; // host-gw, the configuration's backend
/// let custom: Node<Udp> = Node::with_encapsulation(config, Udp::new(9000))?;
/// assert_eq!((flannel.inner_mtu(), custom.inner_mtu()), (1500, 1472));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    /// What this worker tells the control's other workers it learnt on pod ports, and what they told it.
    share: learn::Sharing,
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

/// Rewrites a frame's MACs (`data` holds at least an Ethernet header: every caller checked or wrote one).
#[inline(always)]
fn set_macs(data: &mut [u8], dst: MacAddr, src: MacAddr) {
    let mut frame = ethernet::Frame::new_unchecked(data);
    frame.set_dst_addr(dst);
    frame.set_src_addr(src);
}

/// The outer EtherType of the frame in `data` (a tag's TPID when it is tagged), or `None` when it is shorter than
/// an Ethernet header.
#[inline(always)]
fn ethertype(data: &[u8]) -> Option<EtherType> {
    (data.len() >= ETH).then(|| ethernet::Frame::new_unchecked(data).outer_ethertype())
}

/// RFC 1812 §5.3.7: addresses a router neither forwards from nor to (0/8, 127/8, 224/3), by first octet: one
/// load for the two compares of every routed packet.
const MARTIAN: [bool; 256] = {
    let mut t = [false; 256];
    let mut a = 0;
    while a < 256 {
        t[a] = a == 0 || a == 127 || a >= 224;
        a += 1;
    }
    t
};

#[inline(always)]
const fn martian(ip: u32) -> bool {
    MARTIAN[(ip >> 24) as usize]
}

impl<E: Encapsulation> Node<E> {
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
    ///
    /// ```
    /// # use tweed_overlay::{DropReason, Instant, NodeBuilder, Outputs, Verdict};
    /// # use tweed_packet::{Batch, Pool, PoolConfig, PortId};
    /// # let (subnet, ip, mac) = ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// # let mut node = NodeBuilder::new(subnet, ip, mac)
    /// #     .pod_ports([1])
    /// #     .build()?;
    /// # let mut pool = Pool::new(PoolConfig::default())?;
    /// # let mut batch = Batch::new(8);
    /// # for n in [10, 11] { // two runt frames from a pod, 10 and 11 bytes long
    /// #     let mut buf = pool.get().ok_or("pool")?;
    /// #     buf.extend_from_slice(&vec![0; n])?;
    /// #     buf.meta_mut().ingress = PortId(1);
    /// #     batch.push(buf).map_err(|_| "batch")?;
    /// # }
    /// # batch.push(pool.get().ok_or("pool")?).map_err(|_| "batch")?; // and an empty one
    /// # batch.as_mut_slice()[2].meta_mut().ingress = PortId(1);
    /// // A driver's loop over three packets, with room for two outputs at a time.
    /// let mut out = Outputs::new(2);
    /// let mut rounds = 0;
    /// while !batch.is_empty() {
    ///     node.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
    ///     for (buf, verdict) in out.drain() {
    ///         assert_eq!(verdict, Verdict::Drop(DropReason::BridgeTruncated)); // too short for Ethernet
    ///         pool.put(buf);
    ///     }
    ///     rounds += 1;
    /// }
    /// assert_eq!((rounds, node.counters().received), (2, 3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn process(&mut self, now: Instant, pool: &mut Pool, input: &mut Batch, out: &mut Outputs) {
        let now = now.as_nanos();
        self.refresh();
        // The ARP timers' packets (retries, timeouts) leave room for the input, or for half the room.
        out.reserved = input.len().min(STAGE_BATCH).min(out.room().div_ceil(2));
        if self.share.pending() {
            self.take_shared(now, pool, out);
        }
        self.service_neigh(now, pool, out);
        if now.saturating_sub(self.aged_at) >= AGE_EVERY_NS {
            // A bounded step of the bridge's garbage collection: dead ARP entries and expired MACs leave without
            // waiting for a table to fill (a whole sweep of the default tables takes a few seconds).
            self.aged_at = now;
            self.bridge.age(Instant::from_nanos(now), AGE_BUDGET);
            if self.share.tracking() {
                self.refresh_learnt(now);
            }
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
        if self.share.outgoing() {
            self.post_learnt();
        }
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
    ///
    /// ```
    /// use tweed_overlay::{Control, Instant, NodeBuilder, Outputs};
    /// use tweed_packet::{Batch, Pool, PoolConfig, PortId};
    ///
    /// let control = Control::new(
    ///     NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .pod_ports([1])
    ///     .into_config())?;
    /// let mut worker = control.worker();
    /// let (mut pool, mut batch, mut out) = (Pool::new(PoolConfig::default())?, Batch::new(1), Outputs::new(8));
    /// let mut runt = pool.get().ok_or("pool")?;
    /// runt.meta_mut().ingress = PortId(1);
    /// batch.push(runt).map_err(|_| "batch")?;
    /// worker.process(Instant::from_nanos(50_000_000), &mut pool, &mut batch, &mut out); // at 50 ms
    /// assert_eq!(control.counters().received, 0); // not published yet
    /// worker.publish_counters();
    /// assert_eq!(control.counters().received, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
