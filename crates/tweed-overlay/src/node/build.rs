//! How a [`Node`] is made: from its configuration, alone ([`Node::new`], [`Node::with_encapsulation`]) or as a
//! worker of a shared [`Control`].

use super::*;

impl Node {
    /// Builds a flannel node from its configuration (its backend from [`NodeConfig::backend`]), peers included.
    /// The node owns its [`Control`]: [`Node::add_peer`] and the like change it.
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, Node, NodeConfig};
    ///
    /// let toml = r#"
    ///     pod_subnet = "10.244.1.0/24"
    ///     pod_ports = [1]
    ///     underlay = { node_ip = "192.168.0.1", node_mac = "02:00:00:00:01:01" }
    ///     backend = { type = "udp" }
    /// "#;
    /// assert_eq!(Node::new(NodeConfig::from_toml_str(toml)?)?.inner_mtu(), 1472);
    /// let mut config = NodeConfig::from_toml_str(toml)?;
    /// config.gateway_ip = Some("10.9.0.1".parse()?);
    /// assert_eq!(Node::new(config).err(), Some(ConfigError::GatewayOutsideSubnet("10.9.0.1".parse()?)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Those of [`NodeConfig::validate`] and [`Node::add_peer`].
    pub fn new(config: NodeConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let encap = Flannel::from(&config.backend);
        Self::with_encapsulation(config, encap)
    }
}

impl<E: Encapsulation> Node<E> {
    /// Builds a node that carries its packets to peers with `encap` (an embedder's own encapsulation, say), peers
    /// of the configuration included; [`NodeConfig::backend`] is not used. The node owns its [`Control`].
    ///
    /// ```
    /// use tweed_overlay::encap::{Encapsulation, Transport, Vxlan};
    /// use tweed_overlay::{BackendConfig, Node, NodeBuilder};
    ///
    /// let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .into_config();
    /// let vxlan = Vxlan::new("02:00:00:00:00:01".parse()?, 7, 4789).with_udp_checksum(true);
    /// let node = Node::with_encapsulation(config, vxlan)?;
    /// assert_eq!(node.encapsulation().transport(), Transport::Udp { port: 4789, checksum: true });
    /// assert_eq!((node.config().backend.clone(), node.inner_mtu()), (BackendConfig::HostGw, 1450));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
        hub: &Arc<crate::control::share::Hub>,
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
            share: learn::Sharing::new(hub),
            control: None,
            routes,
            published,
            snap,
            shared,
        }
    }
}
