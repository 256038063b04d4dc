//! The control side of a node: [`Control`], the one writer of its tables, and its workers.

use core::net::{IpAddr, SocketAddr};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use ipnet::Ipv4Net;
use tweed_packet::PortId;
use tweed_route::{Ipv4Prefix, NextHop, NextHopId, RouteTable};
use tweed_wire::ethernet::MacAddr;

use crate::config::{ConfigError, NodeConfig, PeerConfig, overlaps};
use crate::encap::outer::{Outer, OuterSpec};
use crate::encap::{Encapsulation, Flannel, Hop, Peer, PeerTable, Transport};
use crate::node::Node;
use crate::verdict::Counters;

pub(crate) mod share;
mod writer;

pub use writer::PeerWriter;

/// What the control and its workers share and never change.
#[derive(Debug)]
pub(crate) struct Shared<E> {
    /// The configuration, without its peers (they are in the snapshots).
    pub(crate) config: NodeConfig,
    pub(crate) encap: E,
}

/// The workers' counters, as each last published them.
pub(crate) type CounterSlots = Arc<Mutex<Vec<Arc<Mutex<Counters>>>>>;

/// The control side of a node: it owns every writer (the route table, the peers, the configuration)
/// and publishes what the data path reads as snapshots; workers ([`Node`]s made by [`Control::worker`]) read them
/// without locks, each with its own bridge, ARP state, buffers and counters.
///
/// A change is made on the control: a route goes into the route table at once (so that a table that cannot take
/// it refuses the change there and then, with nothing half-made), and the peers become visible to the workers when
/// they are published ([`Control::publish`]) as one new snapshot (arc-swap, RCU style). A worker that meets a route
/// to a peer its snapshot does not hold yet drops the packet, counted
/// ([`DropReason::StaleNextHop`](crate::DropReason::StaleNextHop)), never misroutes it; a peer's route goes before
/// the peer. A node that owns its control (made by [`Node::new`] or [`Node::with_encapsulation`]) publishes as it
/// changes and at the start of each [`Node::process`] call, so it never meets such a route.
///
/// ```
/// use tweed_overlay::{Control, NodeBuilder, Outputs, PeerConfig, PeerWriter, UdpConfig};
/// use tweed_packet::{Batch, Pool, PoolConfig};
/// use tweed_switch::Instant;
///
/// let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
///     .udp(UdpConfig::default())
///     .socket_port(tweed_packet::PortId(9))
///     .into_config();
/// let mut control = Control::new(config)?;
/// let (mut a, mut b) = (control.worker(), control.worker());
/// control.add_peer(PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]))?;
/// control.publish();
/// // Each worker takes the new snapshot at its next batch (an empty one here).
/// let (mut pool, mut out) = (Pool::new(PoolConfig::default())?, Outputs::new(8));
/// for w in [&mut a, &mut b] {
///     w.process(Instant::from_secs(1), &mut pool, &mut Batch::new(1), &mut out);
/// }
/// assert_eq!((a.peers().count(), b.peers().count()), (1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Control<E: Encapsulation = Flannel> {
    shared: Arc<Shared<E>>,
    routes: RouteTable,
    /// The peers and port routes as they are now, published as a copy.
    table: PeerTable<E::Peer>,
    published: Arc<ArcSwap<PeerTable<E::Peer>>>,
    /// Every subnet a route leads to (the pod subnet, port routes, peers) by network address: the overlap check
    /// looks at two neighbours, whatever the number of peers.
    subnets: BTreeMap<u32, (Ipv4Net, NextHopId)>,
    dirty: bool,
    counters: CounterSlots,
    /// The workers' inboxes for what each learns on pod ports.
    hub: Arc<share::Hub>,
}

impl<E: Encapsulation> core::fmt::Debug for Control<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Control").field("peers", &self.table.len()).finish_non_exhaustive()
    }
}

fn route_err(e: tweed_route::Error) -> ConfigError {
    ConfigError::Route(e.to_string())
}

fn prefix(net: Ipv4Net) -> Result<Ipv4Prefix, ConfigError> {
    Ipv4Prefix::new(u32::from(net.network()), net.prefix_len()).map_err(route_err)
}

impl Control {
    /// The control of a flannel node: its backend from [`NodeConfig::backend`].
    ///
    /// ```
    /// use tweed_overlay::encap::{Encapsulation, Flannel};
    /// use tweed_overlay::{ConfigError, Control, NodeBuilder, UdpConfig};
    ///
    /// let mut config =
    ///     NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .udp(UdpConfig::default())
    ///     .into_config();
    /// assert!(matches!(Control::new(config.clone())?.encapsulation(), Flannel::Udp(_)));
    /// config.underlay.mtu = 500;
    /// assert_eq!(Control::new(config).err(), Some(ConfigError::MtuTooSmall(500)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Those of [`NodeConfig::validate`] and [`Control::with_encapsulation`].
    pub fn new(config: NodeConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let encap = Flannel::from(&config.backend);
        Self::with_encapsulation(config, encap)
    }
}

impl<E: Encapsulation> Control<E> {
    /// The control of a node that carries its packets to peers with `encap`, peers of the configuration included
    /// (published).
    ///
    /// ```
    /// use tweed_overlay::encap::Udp;
    /// use tweed_overlay::{Control, NodeBuilder};
    ///
    /// let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .into_config(); // its backend (host-gw) is not used
    /// let control = Control::with_encapsulation(config, Udp::new(9000))?;
    /// assert_eq!(control.worker().inner_mtu(), 1500 - 28);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Those of [`NodeConfig::validate`] but for the flannel backend's fields (not used: `encap` carries the
    /// packets), a UDP socket port with an Ethernet transport, and those of [`Control::add_peer`].
    pub fn with_encapsulation(mut config: NodeConfig, encap: E) -> Result<Self, ConfigError> {
        // The flannel backend's fields are checked by `Control::new`; here the encapsulation's transport decides
        // whether a UDP socket can carry it.
        config.validate_without_backend()?;
        if encap.transport() == Transport::Ethernet && config.underlay.socket_port.is_some() {
            return Err(ConfigError::InvalidPort(config.underlay.socket_port.unwrap_or_default()));
        }
        let peers = core::mem::take(&mut config.peers);
        let mut routes = RouteTable::new();
        let mut table = PeerTable::new(config.limits.max_peers as usize);
        let mut subnets = BTreeMap::new();
        if let Some(net) = config.pod_subnet {
            let net = net.trunc();
            let id = routes.add_next_hop(NextHop::new(0)).map_err(route_err)?;
            routes.insert(prefix(net)?, id).map_err(route_err)?;
            table.set(id, Hop::Local);
            subnets.insert(u32::from(net.network()), (net, id));
        }
        for r in &config.routes {
            let net = r.subnet.trunc();
            let id = routes.add_next_hop(NextHop::new(0)).map_err(route_err)?;
            routes.insert(prefix(net)?, id).map_err(route_err)?;
            table.set(id, Hop::Port(PortId(r.port)));
            subnets.insert(u32::from(net.network()), (net, id));
        }
        let published = Arc::new(ArcSwap::from_pointee(table.clone()));
        let mut control = Self {
            shared: Arc::new(Shared { config, encap }),
            routes,
            table,
            published,
            subnets,
            dirty: false,
            counters: Arc::default(),
            hub: Arc::default(),
        };
        for peer in peers {
            control.add_peer(peer)?;
        }
        control.publish();
        Ok(control)
    }

    /// A new worker: a [`Node`] with its own bridge, ARP state and counters, reading this control's snapshots.
    /// Its pod ports are the configuration's: give each worker its own queues of them (multi-queue TAP), so that
    /// a flow stays on one worker.
    ///
    /// What a worker learns on a pod port (a pod's ARP binding, its MAC on the port) reaches the control's other
    /// workers at the start of their next batch, through the same rules and limits as their own learning: a pod
    /// whose ARP one worker saw may send through another with port security on, and the other delivers to it
    /// without flooding or asking. A worker refreshes what it learnt at most every 5 s while the pod's traffic
    /// confirms it, so a binding kept alive on one worker stays alive on all. Bindings learnt before a worker was
    /// made are not sent to it: make the workers before the traffic starts.
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, Control, NodeBuilder, PeerConfig, UdpConfig};
    ///
    /// # let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    /// #     .udp(UdpConfig::default()).underlay_gateway_mac("02:00:00:00:00:fe".parse()?).into_config();
    /// let control = Control::new(config)?;
    /// let mut worker = control.worker();
    /// assert!(worker.control().is_none());
    /// // Peers change on the control, never on a worker.
    /// let peer = PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]);
    /// assert_eq!(worker.add_peer(peer), Err(ConfigError::NotOwner));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn worker(&self) -> Node<E> {
        let slot = Arc::new(Mutex::new(Counters::default()));
        self.counters.lock().unwrap_or_else(PoisonError::into_inner).push(Arc::clone(&slot));
        Node::worker(Arc::clone(&self.shared), self.routes.reader(), Arc::clone(&self.published), slot, &self.hub)
    }

    /// The configuration, peers not included ([`PeerWriter::peers`] lists them).
    ///
    /// ```
    /// use tweed_overlay::{Control, NodeBuilder, PeerConfig, PeerWriter, UdpConfig};
    ///
    /// # let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    /// #     .udp(UdpConfig::default()).underlay_gateway_mac("02:00:00:00:00:fe".parse()?)
    /// #     .peer(PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2])).into_config();
    /// let control = Control::new(config)?;
    /// assert_eq!(control.config().gateway_ip().to_string(), "10.244.1.1");
    /// assert_eq!((control.config().peers.len(), PeerWriter::peers(&control).len()), (0, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn config(&self) -> &NodeConfig {
        &self.shared.config
    }

    /// The encapsulation.
    ///
    /// ```
    /// use tweed_overlay::encap::Encapsulation;
    /// use tweed_overlay::{Control, NodeBuilder, UdpConfig};
    ///
    /// # let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    /// #     .udp(UdpConfig::default()).underlay_gateway_mac("02:00:00:00:00:fe".parse()?).into_config();
    /// let control = Control::new(config)?;
    /// assert_eq!(control.encapsulation().overhead(), 28);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn encapsulation(&self) -> &E {
        &self.shared.encap
    }

    /// The sum of the counters its workers last published (each does at least every 100 ms of the time it is
    /// given, and on [`Node::publish_counters`]).
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .pod_ports([1])
    ///     .into_config();
    /// let control = tweed_overlay::Control::new(config)?;
    /// let (mut a, mut b) = (control.worker(), control.worker());
    /// // A runt frame on each worker's pod port (a batch each), then each publishes its counters.
    /// for worker in [&mut a, &mut b] {
    ///     let (_, verdict) = run(worker, 1, [0; 4], &[0; 10]);
    ///     assert_eq!(verdict, Verdict::Drop(DropReason::BridgeTruncated));
    ///     worker.publish_counters();
    /// }
    /// let sum = control.counters();
    /// assert_eq!((sum.received, sum.drop_count(DropReason::BridgeTruncated)), (2, 2));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn counters(&self) -> Counters {
        let slots = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut sum = Counters::default();
        for slot in slots.iter() {
            sum.merge(&slot.lock().unwrap_or_else(PoisonError::into_inner));
        }
        sum
    }

    /// Makes the changes since the last publication visible to the workers (at their next batch). Cheap when
    /// nothing changed.
    ///
    /// ```
    /// use tweed_overlay::{Control, Instant, NodeBuilder, Outputs, PeerConfig, PeerWriter, UdpConfig};
    /// use tweed_packet::{Batch, Pool, PoolConfig};
    ///
    /// # let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    /// #     .udp(UdpConfig::default()).underlay_gateway_mac("02:00:00:00:00:fe".parse()?).into_config();
    /// let mut control = Control::new(config)?;
    /// let mut worker = control.worker();
    /// let (mut pool, mut out) = (Pool::new(PoolConfig::default())?, Outputs::new(8));
    /// control.add_peer(PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]))?;
    /// worker.process(Instant::from_secs(1), &mut pool, &mut Batch::new(1), &mut out);
    /// assert_eq!(worker.peers().count(), 0); // not published yet
    /// control.publish();
    /// worker.process(Instant::from_secs(1), &mut pool, &mut Batch::new(1), &mut out);
    /// assert_eq!(worker.peers().count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish(&mut self) {
        if !self.dirty {
            return;
        }
        self.published.store(Arc::new(self.table.clone()));
        self.dirty = false;
    }

    /// Adds a route from `subnet` to IP port `port` (one of [`NodeConfig::ip_ports`] or the host port).
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = NodeBuilder::routed([192, 168, 0, 1].into(), "02:00:00:00:01:01".parse()?)
    ///     .ip_port(1)
    ///     .ip_port(2)
    ///     .into_config();
    /// let mut control = tweed_overlay::Control::new(config)?;
    /// control.add_route("10.3.0.0/24".parse()?, 2)?;
    /// assert_eq!(control.add_route("10.4.0.0/24".parse()?, 7), Err(ConfigError::InvalidPort(7)));
    /// control.publish();
    /// let mut worker = control.worker();
    /// // From port 1 to 10.3.0.9: out of port 2.
    /// assert_eq!(run(&mut worker, 1, [0; 4], &ipv4([10, 1, 0, 5], [10, 3, 0, 9])).1, Verdict::Port(PortId(2)));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::InvalidPort`], [`ConfigError::Overlap`], or the route table's refusal.
    pub fn add_route(&mut self, subnet: Ipv4Net, port: u16) -> Result<(), ConfigError> {
        let net = subnet.trunc();
        if !self.shared.config.ip_port_numbers().any(|p| p == port) {
            return Err(ConfigError::InvalidPort(port));
        }
        self.check_free(net)?;
        let id = self.route_to(net)?;
        self.table.set(id, Hop::Port(PortId(port)));
        self.subnets.insert(u32::from(net.network()), (net, id));
        self.dirty = true;
        Ok(())
    }

    /// Removes a route to an IP port.
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, Control, NodeBuilder};
    ///
    /// let config = NodeBuilder::routed("192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?).ip_port(1).into_config();
    /// let mut control = Control::new(config)?;
    /// control.add_route("10.3.0.0/24".parse()?, 1)?;
    /// control.remove_route("10.3.0.0/24".parse()?)?;
    /// assert_eq!(control.remove_route("10.3.0.0/24".parse()?), Err(ConfigError::UnknownPeer("10.3.0.0/24".parse()?)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::UnknownPeer`] when no port route has this subnet.
    pub fn remove_route(&mut self, subnet: Ipv4Net) -> Result<(), ConfigError> {
        let net = subnet.trunc();
        let id = match self.subnets.get(&u32::from(net.network())) {
            Some(&(n, id)) if n == net && matches!(self.table.hop(id), Some(Hop::Port(_))) => id,
            _ => return Err(ConfigError::UnknownPeer(net)),
        };
        self.withdraw(net, id)
    }

    /// A new next hop and the route from `net` to it, or neither: the route table's refusal (its next hops or its
    /// arrays for long prefixes full) leaves nothing behind.
    pub(crate) fn route_to(&mut self, net: Ipv4Net) -> Result<NextHopId, ConfigError> {
        let prefix = prefix(net)?;
        let id = self.routes.add_next_hop(NextHop::new(0)).map_err(route_err)?;
        if let Err(e) = self.routes.insert(prefix, id) {
            // Nothing points to the id yet.
            let _ = self.routes.remove_next_hop(id);
            return Err(route_err(e));
        }
        Ok(id)
    }

    /// Refuses a subnet that shares an address with one a route already leads to.
    fn check_free(&self, net: Ipv4Net) -> Result<(), ConfigError> {
        let start = u32::from(net.network());
        let end = u32::from(net.broadcast());
        // Existing subnets do not overlap each other: the one starting at or before ours, and the first after it,
        // are the only candidates.
        let before = self.subnets.range(..=start).next_back().map(|(_, v)| v.0);
        let after = self.subnets.range(start..=end).next().map(|(_, v)| v.0);
        if before.into_iter().chain(after).any(|o| overlaps(o, net)) {
            return Err(ConfigError::Overlap(net));
        }
        Ok(())
    }

    fn build_peer(&self, cfg: &PeerConfig) -> Result<Peer<E::Peer>, ConfigError> {
        let config = &self.shared.config;
        let IpAddr::V4(node_ip) = cfg.node_ip else { return Err(ConfigError::Ipv6Unsupported(cfg.node_ip)) };
        for (field, mac) in [("vtep_mac", cfg.vtep_mac), ("node_mac", cfg.node_mac)] {
            if let Some(mac) = mac
                && (mac.is_multicast() || mac.is_zero())
            {
                return Err(ConfigError::InvalidMac { field, mac });
            }
        }
        let transport = self.shared.encap.transport();
        // Through a UDP socket the kernel picks the next hop's MAC: the frame's outer destination is then zero.
        let socket = config.underlay.socket_port.map(|_| MacAddr::ZERO);
        let dst_mac = match transport {
            Transport::Ethernet => cfg.node_mac,
            _ => cfg.node_mac.or(config.underlay.gateway_mac).or(socket),
        };
        let state = self.shared.encap.peer(cfg)?;
        let dst_mac = dst_mac.ok_or(ConfigError::MissingMac { subnet: cfg.subnet, field: "node_mac" })?;
        let spec =
            OuterSpec { src_mac: config.underlay.node_mac, dst_mac, src_ip: config.underlay.node_ip, dst_ip: node_ip };
        let port = match transport {
            Transport::Udp { port, .. } => port,
            Transport::Ethernet => 0,
        };
        let net = cfg.subnet.trunc();
        let mask = u32::from(net.netmask());
        Ok(Peer {
            config: PeerConfig { subnet: net, ..cfg.clone() },
            state,
            net: u32::from(net.network()) & mask,
            mask,
            underlay: SocketAddr::new(IpAddr::V4(node_ip), port),
            outer: Outer::new(transport, &spec),
        })
    }

    fn peer_id(&self, subnet: Ipv4Net) -> Option<NextHopId> {
        match self.subnets.get(&u32::from(subnet.network())) {
            Some(&(n, id)) if n == subnet && matches!(self.table.hop(id), Some(Hop::Peer(_))) => Some(id),
            _ => None,
        }
    }

    fn check_node_ip(&self, ip: IpAddr, except: Option<NextHopId>) -> Result<(), ConfigError> {
        let ours = ip == IpAddr::V4(self.shared.config.underlay.node_ip);
        match self.table.has_ip(ip) {
            Some(other) if Some(other) != except => Err(ConfigError::DuplicateNodeIp(ip)),
            _ if ours => Err(ConfigError::DuplicateNodeIp(ip)),
            _ => Ok(()),
        }
    }

    fn withdraw(&mut self, net: Ipv4Net, id: NextHopId) -> Result<(), ConfigError> {
        // The route first: a worker that still finds the id finds its hop in the snapshot it holds.
        let p = prefix(net)?;
        self.routes.remove(p);
        self.routes.remove_next_hop(id).map_err(route_err)?;
        self.table.set(id, Hop::Empty);
        self.subnets.remove(&u32::from(net.network()));
        self.dirty = true;
        Ok(())
    }
}
