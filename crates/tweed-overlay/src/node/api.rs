//! The node's public face beyond `process`: what it is made of, its counters and tables, its peers (through the
//! control it owns), its timers, and a one-packet call for tools that do not batch.

use super::*;
use crate::control::PeerWriter;

impl<E: Encapsulation> Node<E> {
    /// The configuration (peers not included: [`Node::peers`]).
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
    #[must_use]
    pub fn encapsulation(&self) -> &E {
        &self.shared.encap
    }

    /// This worker's counters.
    #[must_use]
    pub const fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The bridge (its FDB, ARP table and per-port counters).
    #[must_use]
    pub const fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    /// The control, if this node owns it ([`Node::new`], [`Node::with_encapsulation`]).
    #[must_use]
    pub fn control(&self) -> Option<&Control<E>> {
        self.control.as_deref()
    }

    /// The control, if this node owns it: to add routes to IP ports, make more workers...
    pub fn control_mut(&mut self) -> Option<&mut Control<E>> {
        self.control.as_deref_mut()
    }

    /// The largest IP packet a pod can send to a peer without "fragmentation needed": the underlay MTU minus the
    /// encapsulation's [`overhead`](Encapsulation::overhead) (what flannel sets as the MTU of `flannel.1` or
    /// `flannel0`).
    #[must_use]
    pub const fn inner_mtu(&self) -> u16 {
        self.inner_mtu
    }

    /// The peers, as this worker sees them (a node that owns its control sees its changes at once).
    pub fn peers(&self) -> impl Iterator<Item = &PeerConfig> + '_ {
        self.snap.iter().map(|p| &p.config)
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

    fn owned(&mut self) -> Result<&mut Control<E>, ConfigError> {
        self.control.as_deref_mut().ok_or(ConfigError::NotOwner)
    }

    /// Adds a peer (see [`PeerWriter::add_peer`]), seen by this node's next batch. Call it between two batches.
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
    /// # Errors
    /// Those of [`PeerWriter::update_peer`]; [`ConfigError::NotOwner`] on a worker of a shared [`Control`].
    pub fn update_peer(&mut self, cfg: PeerConfig) -> Result<(), ConfigError> {
        self.owned()?.update_peer(cfg)?;
        self.refresh();
        Ok(())
    }

    /// Removes a peer and its route (see [`PeerWriter::remove_peer`]).
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
