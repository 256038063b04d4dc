//! The node's public face beyond `process`: what it is made of, its counters and tables, its peers (through the
//! control it owns), its timers, and a one-packet call for tools that do not batch.

use super::*;
use crate::control::PeerWriter;

impl<E: Encapsulation> Node<E> {
    /// The configuration (peers not included: [`Node::peers`]).
    ///
    /// ```
    /// use tweed_overlay::{NodeBuilder, PeerConfig};
    ///
    /// let mut node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .pod_ports([1])
    ///     .build()?;
    /// let peer = PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]);
    /// node.add_peer(peer.with_node_mac("02:00:00:00:01:02".parse()?))?;
    /// assert_eq!((node.config().pod_ports.as_slice(), node.config().peers.len()), (&[1][..], 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn config(&self) -> &NodeConfig {
        &self.shared.config
    }

    /// The configuration with the peers as this worker sees them now: what builds the same node again.
    ///
    /// ```
    /// use tweed_overlay::{Node, NodeBuilder, PeerConfig};
    ///
    /// let node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .peer(PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]).with_node_mac("02:00:00:00:01:02".parse()?))
    ///     .build()?;
    /// assert!(node.config().peers.is_empty());
    /// let again = Node::new(node.to_config())?;
    /// assert_eq!(again.peers().count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn to_config(&self) -> NodeConfig {
        let mut config = self.shared.config.clone();
        config.peers = self.peers().cloned().collect();
        config
    }

    /// The encapsulation.
    ///
    /// ```
    /// use tweed_overlay::encap::Flannel;
    /// use tweed_overlay::{NodeBuilder, VxlanConfig};
    ///
    /// let vxlan = VxlanConfig { vni: 42, ..VxlanConfig::new("02:00:00:00:00:01".parse()?) };
    /// let node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .vxlan(vxlan)
    ///     .build()?;
    /// assert!(matches!(node.encapsulation(), Flannel::Vxlan(v) if v.vni() == 42));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn encapsulation(&self) -> &E {
        &self.shared.encap
    }

    /// This worker's counters.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .pod_ports([1])
    ///     .build()?;
    /// run(&mut node, 1, [0; 4], &[0; 10]); // a runt frame from a pod
    /// let counters = node.counters();
    /// assert_eq!((counters.rx_pod, counters.received, counters.outputs), (1, 1, 1));
    /// assert_eq!(counters.drop_count(DropReason::BridgeTruncated), 1);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub const fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The bridge (its FDB, ARP table and per-port counters).
    ///
    /// ```
    /// use tweed_overlay::NodeBuilder;
    ///
    /// let node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .pod_ports([1, 2])
    ///     .build()?;
    /// assert_eq!(node.bridge().ports().map(|p| p.0).collect::<Vec<_>>(), [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub const fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    /// The control, if this node owns it ([`Node::new`], [`Node::with_encapsulation`]).
    ///
    /// ```
    /// use tweed_overlay::{Control, NodeBuilder};
    ///
    /// let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .into_config();
    /// let node = tweed_overlay::Node::new(config.clone())?;
    /// assert_eq!(node.control().map(|c| c.config().pod_subnet), Some(config.pod_subnet));
    /// assert!(Control::new(config)?.worker().control().is_none()); // a worker of a shared control
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn control(&self) -> Option<&Control<E>> {
        self.control.as_deref()
    }

    /// The control, if this node owns it: to add routes to IP ports, make more workers...
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut node = NodeBuilder::routed([192, 168, 0, 1].into(), "02:00:00:00:01:01".parse()?)
    ///     .ip_port(1)
    ///     .ip_port(2)
    ///     .build()?;
    /// node.control_mut().ok_or("a worker")?.add_route("10.3.0.0/24".parse()?, 2)?;
    /// // Published at the next batch: from port 1 to 10.3.0.9 is out of port 2.
    /// assert_eq!(run(&mut node, 1, [0; 4], &ipv4([10, 1, 0, 5], [10, 3, 0, 9])).1, Verdict::Port(PortId(2)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn control_mut(&mut self) -> Option<&mut Control<E>> {
        self.control.as_deref_mut()
    }

    /// The largest IP packet a pod can send to a peer without "fragmentation needed": the underlay MTU minus the
    /// encapsulation's [`overhead`](Encapsulation::overhead) (what flannel sets as the MTU of `flannel.1` or
    /// `flannel0`).
    ///
    /// ```
    /// use tweed_overlay::encap::Udp;
    /// use tweed_overlay::{Node, NodeBuilder, VxlanConfig};
    ///
    /// let node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .vxlan(VxlanConfig::new("02:00:00:00:00:01".parse()?))
    ///     .build()?;
    /// assert_eq!(node.inner_mtu(), 1450);
    /// // The encapsulation's overhead, not the backend's:
    /// let own = Node::with_encapsulation(node.to_config(), Udp::new(9000))?;
    /// assert_eq!(own.inner_mtu(), 1472);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub const fn inner_mtu(&self) -> u16 {
        self.inner_mtu
    }

    /// The peers, as this worker sees them (a node that owns its control sees its changes at once).
    ///
    /// ```
    /// use tweed_overlay::{NodeBuilder, PeerConfig};
    ///
    /// let mut node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .build()?;
    /// let peer = PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]);
    /// node.add_peer(peer.with_node_mac("02:00:00:00:01:02".parse()?))?;
    /// let subnets: Vec<String> = node.peers().map(|p| p.subnet.to_string()).collect();
    /// assert_eq!(subnets, ["10.244.2.0/24"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn peers(&self) -> impl Iterator<Item = &PeerConfig> + '_ {
        self.snap.iter().map(|p| &p.config)
    }

    /// How many packets wait for ARP.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let (subnet, ip, mac) = ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// # let mut node = NodeBuilder::new(subnet, ip, mac)
    /// #     .pod_ports([1]).ip_port(5).route("10.9.0.0/16".parse()?, 5).build()?;
    /// // From IP port 5 to a pod of the node whose MAC it does not know yet: it asks, and the packet waits.
    /// let (request, verdict) = run(&mut node, 5, [0; 4], &ipv4([10, 9, 0, 1], [10, 244, 1, 7]));
    /// assert_eq!((verdict, &request[12..14]), (Verdict::Port(PortId(1)), &[0x08, 0x06][..])); // an ARP request
    /// assert_eq!(node.arp_pending(), 1);
    /// assert_eq!(node.counters().held(), 1);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn arp_pending(&self) -> usize {
        self.neigh.pending.len()
    }

    /// How many addresses are in the neighbour table (being resolved, or failed), at most
    /// [`Limits::arp_entries`](crate::Limits::arp_entries).
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let (subnet, ip, mac) = ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// # let mut node = NodeBuilder::new(subnet, ip, mac)
    /// #     .pod_ports([1]).ip_port(5).route("10.9.0.0/16".parse()?, 5).build()?;
    /// for pod in [7, 8] {
    ///     // An ARP request for each address, whose packet waits.
    ///     assert_eq!(run(&mut node, 5, [0; 4], &ipv4([10, 9, 0, 1], [10, 244, 1, pod])).1, Verdict::Port(PortId(1)));
    /// }
    /// assert_eq!((node.arp_entries(), node.arp_pending()), (2, 2));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn arp_entries(&self) -> usize {
        self.neigh.entries.len()
    }

    fn owned(&mut self) -> Result<&mut Control<E>, ConfigError> {
        self.control.as_deref_mut().ok_or(ConfigError::NotOwner)
    }

    /// Adds a peer (see [`PeerWriter::add_peer`]), seen by this node's next batch. Call it between two batches.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let site = || NodeBuilder::routed([192, 168, 0, 1].into(), "02:00:00:00:01:01".parse().unwrap())
    /// #     .udp(UdpConfig::default()).socket_port(PortId(9)).ip_port(1).route("10.1.0.0/24".parse().unwrap(), 1);
    /// let mut node = site().build()?;
    /// let packet = ipv4([10, 1, 0, 5], [10, 2, 0, 7]);
    /// assert_eq!(run(&mut node, 1, [0; 4], &packet).1, Verdict::Drop(DropReason::NoRoute));
    /// node.add_peer(PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]))?;
    /// let to_peer = Verdict::Underlay { dst: "192.168.0.2:8285".parse()?, payload_offset: 42 };
    /// assert_eq!(run(&mut node, 1, [0; 4], &packet).1, to_peer);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// Those of [`PeerWriter::add_peer`]; [`ConfigError::NotOwner`] on a worker of a shared [`Control`].
    pub fn add_peer(&mut self, cfg: PeerConfig) -> Result<(), ConfigError> {
        self.owned()?.add_peer(cfg)?;
        self.refresh();
        Ok(())
    }

    /// Changes a peer (see [`PeerWriter::update_peer`]).
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let site = || NodeBuilder::routed([192, 168, 0, 1].into(), "02:00:00:00:01:01".parse().unwrap())
    /// #     .udp(UdpConfig::default()).socket_port(PortId(9)).ip_port(1).route("10.1.0.0/24".parse().unwrap(), 1);
    /// let mut node = site().peer(PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2])).build()?;
    /// node.update_peer(PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 9]))?; // the peer node moved
    /// let (_, verdict) = run(&mut node, 1, [0; 4], &ipv4([10, 1, 0, 5], [10, 2, 0, 7]));
    /// assert_eq!(verdict, Verdict::Underlay { dst: "192.168.0.9:8285".parse()?, payload_offset: 42 });
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// Those of [`PeerWriter::update_peer`]; [`ConfigError::NotOwner`] on a worker of a shared [`Control`].
    pub fn update_peer(&mut self, cfg: PeerConfig) -> Result<(), ConfigError> {
        self.owned()?.update_peer(cfg)?;
        self.refresh();
        Ok(())
    }

    /// Removes a peer and its route (see [`PeerWriter::remove_peer`]).
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let site = || NodeBuilder::routed([192, 168, 0, 1].into(), "02:00:00:00:01:01".parse().unwrap())
    /// #     .udp(UdpConfig::default()).socket_port(PortId(9)).ip_port(1).route("10.1.0.0/24".parse().unwrap(), 1);
    /// let mut node = site().peer(PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2])).build()?;
    /// let removed = node.remove_peer("10.2.0.0/24".parse()?)?;
    /// assert_eq!(removed.node_ip.to_string(), "192.168.0.2");
    /// let (_, verdict) = run(&mut node, 1, [0; 4], &ipv4([10, 1, 0, 5], [10, 2, 0, 7]));
    /// assert_eq!(verdict, Verdict::Drop(DropReason::NoRoute));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// Those of [`PeerWriter::remove_peer`]; [`ConfigError::NotOwner`] on a worker of a shared [`Control`].
    pub fn remove_peer(&mut self, subnet: ipnet::Ipv4Net) -> Result<PeerConfig, ConfigError> {
        let peer = self.owned()?.remove_peer(subnet)?;
        self.refresh();
        Ok(peer)
    }

    /// Runs one packet through the pipeline (a [`Node::process`] of a batch of one, for tools that do not batch,
    /// as quinn's `Endpoint::handle`): what the node outputs for it, and what it originated on the way, goes to
    /// `out`. Returns `false`, with the buffer back in the pool, if `out` had no room at all.
    ///
    /// ```
    /// use tweed_overlay::{NodeBuilder, Outputs, Verdict};
    /// use tweed_packet::{Pool, PoolConfig, PortId};
    /// use tweed_switch::Instant;
    ///
    /// let mut node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .pod_ports([1])
    ///     .build()?;
    /// let mut pool = Pool::new(PoolConfig::default())?;
    /// let mut out = Outputs::new(8);
    /// let mut buf = pool.get().ok_or("pool")?;
    /// buf.extend_from_slice(&[0u8; 10])?; // too short for Ethernet
    /// buf.meta_mut().ingress = PortId(1);
    /// assert!(node.handle(Instant::from_secs(1), &mut pool, buf, &mut out));
    /// assert!(matches!(out.as_slice()[0].1, Verdict::Drop(_)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle(&mut self, now: Instant, pool: &mut Pool, buf: PacketBuf, out: &mut Outputs) -> bool {
        if out.room() == 0 {
            pool.put(buf);
            return false;
        }
        let mut one = core::mem::take(&mut self.one);
        if let Err(buf) = one.push(buf) {
            pool.put(buf);
            self.one = one;
            return false;
        }
        self.process(now, pool, &mut one, out);
        // Progress: with room in `out`, the packet was taken.
        while let Some(buf) = one.pop() {
            pool.put(buf);
        }
        self.one = one;
        true
    }

    /// When the node next has work of its own (an ARP retry, an address to give up on, a queued packet's
    /// timeout, a failed address to forget), if it has any: a driver with nothing to read calls
    /// [`Node::process`] then, with an empty batch (smoltcp's `poll_at`), and may sleep until then. It may be
    /// early, never late.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let (subnet, ip, mac) = ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// # let mut node = NodeBuilder::new(subnet, ip, mac)
    /// #     .pod_ports([1]).ip_port(5).route("10.9.0.0/16".parse()?, 5).build()?;
    /// assert_eq!(node.poll_at(), None); // nothing to do until a packet comes
    /// run(&mut node, 5, [0; 4], &ipv4([10, 9, 0, 1], [10, 244, 1, 7])); // at 1 s: waits for ARP
    /// let next = node.poll_at().ok_or("an ARP timer")?;
    /// // The retry, 1 s later at most.
    /// assert!(next > Instant::from_secs(1) && next <= Instant::from_secs(2), "{next:?}");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn poll_at(&self) -> Option<Instant> {
        self.neigh.poll_at().map(Instant::from_nanos)
    }
}

impl<E: Encapsulation> PeerWriter for Node<E> {
    fn node_config(&self) -> &NodeConfig {
        &self.shared.config
    }

    fn peers(&self) -> Vec<PeerConfig> {
        match self.control.as_deref() {
            Some(c) => c.peers(),
            None => self.snap.iter().map(|p| p.config.clone()).collect(),
        }
    }

    fn add_peer(&mut self, cfg: PeerConfig) -> Result<(), ConfigError> {
        self.owned()?.add_peer(cfg)
    }

    fn update_peer(&mut self, cfg: PeerConfig) -> Result<(), ConfigError> {
        self.owned()?.update_peer(cfg)
    }

    fn remove_peer(&mut self, subnet: ipnet::Ipv4Net) -> Result<PeerConfig, ConfigError> {
        self.owned()?.remove_peer(subnet)
    }

    fn publish(&mut self) {
        self.refresh();
    }
}
