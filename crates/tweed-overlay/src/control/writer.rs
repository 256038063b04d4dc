//! [`PeerWriter`]: what changes a node's peers, the control plane's view of a [`Control`] or of a node that owns
//! its control.

use std::sync::Arc;

use ipnet::Ipv4Net;

use super::Control;
use crate::config::{ConfigError, NodeConfig, PeerConfig};
use crate::encap::{Encapsulation, Hop};

/// What changes a node's peers: a [`Control`], or a [`Node`](crate::Node) that owns its control. What the control plane
/// (`tweed-control`'s `PeerSync`) drives.
///
/// ```
/// use tweed_overlay::{ConfigError, Control, NodeBuilder, PeerConfig, PeerWriter, UdpConfig};
///
/// /// Makes `writer`'s peers those of `leases`, as a control plane does after reading them.
/// fn sync(writer: &mut impl PeerWriter, leases: &[PeerConfig]) -> Result<(), ConfigError> {
///     for old in writer.peers() {
///         if !leases.iter().any(|l| l.subnet == old.subnet) {
///             writer.remove_peer(old.subnet)?;
///         }
///     }
///     for lease in leases {
///         match writer.peers().iter().any(|p| p.subnet == lease.subnet) {
///             true => writer.update_peer(lease.clone())?,
///             false => writer.add_peer(lease.clone())?,
///         }
///     }
///     writer.publish();
///     Ok(())
/// }
///
/// # let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
/// #     .udp(UdpConfig::default()).underlay_gateway_mac("02:00:00:00:00:fe".parse()?).into_config();
/// let leases = [PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2])];
/// let mut node = tweed_overlay::Node::new(config.clone())?; // a node that owns its control
/// let mut control = Control::new(config)?; // a control with workers
/// sync(&mut node, &leases)?;
/// sync(&mut control, &leases)?;
/// assert_eq!((node.peers().count(), PeerWriter::peers(&control).len()), (1, 1));
/// sync(&mut node, &[])?;
/// assert_eq!(node.peers().count(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait PeerWriter {
    /// The node's configuration (its own subnet, underlay and backend; peers not included).
    ///
    /// ```
    /// use tweed_overlay::{Control, NodeBuilder, PeerWriter, UdpConfig};
    ///
    /// fn describe(writer: &impl PeerWriter) -> String {
    ///     let config = writer.node_config();
    ///     format!("{} via {:?}", config.underlay.node_ip, config.backend.kind())
    /// }
    /// # let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    /// #     .udp(UdpConfig::default()).underlay_gateway_mac("02:00:00:00:00:fe".parse()?).into_config();
    /// assert_eq!(describe(&Control::new(config)?), "192.168.0.1 via Udp");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn node_config(&self) -> &NodeConfig;

    /// The peers' configurations.
    ///
    /// ```
    /// use tweed_overlay::{Control, NodeBuilder, PeerConfig, PeerWriter, UdpConfig};
    ///
    /// # let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    /// #     .udp(UdpConfig::default()).underlay_gateway_mac("02:00:00:00:00:fe".parse()?).into_config();
    /// let mut control = Control::new(config)?;
    /// control.add_peer(PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]))?;
    /// let peers = PeerWriter::peers(&control); // before publication, too
    /// assert_eq!(peers.iter().map(|p| p.subnet.to_string()).collect::<Vec<_>>(), ["10.244.2.0/24"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn peers(&self) -> Vec<PeerConfig>;

    /// Adds a peer: a route to its subnet through the encapsulation, visible to the workers once published.
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, Control, NodeBuilder, PeerConfig, PeerWriter, UdpConfig};
    ///
    /// # let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    /// #     .udp(UdpConfig::default()).underlay_gateway_mac("02:00:00:00:00:fe".parse()?).into_config();
    /// let mut control = Control::new(config)?;
    /// control.add_peer(PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]))?;
    /// let same_node = PeerConfig::new("10.244.3.0/24".parse()?, [192, 168, 0, 2]);
    /// assert_eq!(control.add_peer(same_node), Err(ConfigError::DuplicateNodeIp("192.168.0.2".parse()?)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A field its encapsulation needs is missing or invalid, its subnet overlaps the node's or another route's,
    /// its node address is another peer's (or ours), it is not IPv4, or the table is full.
    fn add_peer(&mut self, cfg: PeerConfig) -> Result<(), ConfigError>;

    /// Changes a peer (found by its subnet): its node address, MACs or parameters. Later batches use the new
    /// values; the route is not withdrawn meanwhile.
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, Control, NodeBuilder, PeerConfig, PeerWriter, UdpConfig};
    ///
    /// # let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    /// #     .udp(UdpConfig::default()).underlay_gateway_mac("02:00:00:00:00:fe".parse()?).into_config();
    /// let mut control = Control::new(config)?;
    /// control.add_peer(PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]))?;
    /// control.update_peer(PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 9]))?; // the peer node moved
    /// assert_eq!(PeerWriter::peers(&control)[0].node_ip.to_string(), "192.168.0.9");
    /// let unknown = PeerConfig::new("10.244.3.0/24".parse()?, [192, 168, 0, 3]);
    /// assert_eq!(control.update_peer(unknown), Err(ConfigError::UnknownPeer("10.244.3.0/24".parse()?)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::UnknownPeer`], and those of [`PeerWriter::add_peer`] about the new values.
    fn update_peer(&mut self, cfg: PeerConfig) -> Result<(), ConfigError>;

    /// Removes a peer and its route; packets to its subnet are then dropped
    /// ([`DropReason::NoRoute`](crate::DropReason::NoRoute)).
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, Control, NodeBuilder, PeerConfig, PeerWriter, UdpConfig};
    ///
    /// # let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    /// #     .udp(UdpConfig::default()).underlay_gateway_mac("02:00:00:00:00:fe".parse()?).into_config();
    /// let mut control = Control::new(config)?;
    /// control.add_peer(PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]).with_param("psk_id", "7"))?;
    /// let removed = control.remove_peer("10.244.2.0/24".parse()?)?;
    /// assert_eq!(removed.param("psk_id"), Some("7"));
    /// assert_eq!(control.remove_peer("10.244.2.0/24".parse()?), Err(ConfigError::UnknownPeer(removed.subnet)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::UnknownPeer`].
    fn remove_peer(&mut self, subnet: Ipv4Net) -> Result<PeerConfig, ConfigError>;

    /// Makes the changes visible to the workers ([`Control::publish`]).
    ///
    /// ```
    /// use tweed_overlay::{Control, Instant, NodeBuilder, Outputs, PeerConfig, PeerWriter, UdpConfig};
    /// use tweed_packet::{Batch, Pool, PoolConfig};
    ///
    /// # let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    /// #     .udp(UdpConfig::default()).underlay_gateway_mac("02:00:00:00:00:fe".parse()?).into_config();
    /// let mut control = Control::new(config)?;
    /// let mut worker = control.worker();
    /// control.add_peer(PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]))?;
    /// PeerWriter::publish(&mut control);
    /// // The worker takes the new snapshot at its next batch.
    /// let (mut pool, mut out) = (Pool::new(PoolConfig::default())?, Outputs::new(8));
    /// worker.process(Instant::from_secs(1), &mut pool, &mut Batch::new(1), &mut out);
    /// assert_eq!(worker.peers().count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn publish(&mut self);
}

impl<E: Encapsulation> PeerWriter for Control<E> {
    fn node_config(&self) -> &NodeConfig {
        &self.shared.config
    }

    fn peers(&self) -> Vec<PeerConfig> {
        self.table.iter().map(|p| p.config.clone()).collect()
    }

    fn add_peer(&mut self, cfg: PeerConfig) -> Result<(), ConfigError> {
        let net = cfg.subnet.trunc();
        self.check_free(net)?;
        self.check_node_ip(cfg.node_ip, None)?;
        if self.table.len() >= self.shared.config.limits.max_peers as usize {
            return Err(ConfigError::TooManyPeers);
        }
        let peer = self.build_peer(&cfg)?;
        let key = self.shared.encap.peer_key(&peer);
        let id = self.route_to(net)?;
        self.table.set(id, Hop::Peer(Arc::new(peer)));
        self.table.index(id, key);
        self.subnets.insert(u32::from(net.network()), (net, id));
        self.dirty = true;
        Ok(())
    }

    fn update_peer(&mut self, cfg: PeerConfig) -> Result<(), ConfigError> {
        let net = cfg.subnet.trunc();
        let id = self.peer_id(net).ok_or(ConfigError::UnknownPeer(net))?;
        self.check_node_ip(cfg.node_ip, Some(id))?;
        let peer = self.build_peer(&cfg)?;
        let key = self.shared.encap.peer_key(&peer);
        self.table.set(id, Hop::Peer(Arc::new(peer)));
        self.table.index(id, key);
        self.dirty = true;
        Ok(())
    }

    fn remove_peer(&mut self, subnet: Ipv4Net) -> Result<PeerConfig, ConfigError> {
        let net = subnet.trunc();
        let id = self.peer_id(net).ok_or(ConfigError::UnknownPeer(net))?;
        let Some(Hop::Peer(peer)) = self.table.hop(id) else { return Err(ConfigError::UnknownPeer(net)) };
        let config = peer.config.clone();
        self.withdraw(net, id)?;
        Ok(config)
    }

    fn publish(&mut self) {
        Self::publish(self);
    }
}
