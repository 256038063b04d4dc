//! [`NodeBuilder`]: a [`NodeConfig`] in Rust.

use core::net::Ipv4Addr;

use ipnet::Ipv4Net;
use tweed_packet::PortId;
use tweed_wire::ethernet::MacAddr;

use super::{
    BackendConfig, ConfigError, Limits, NodeConfig, PeerConfig, PortAddresses, PortRoute, UdpConfig, UnderlayConfig,
    VxlanConfig,
};

/// Builds a [`NodeConfig`] (and from it a [`crate::Node`]) in Rust.
///
/// ```
/// use tweed_overlay::{NodeBuilder, PeerConfig, VxlanConfig};
/// use tweed_wire::ethernet::MacAddr;
///
/// let node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, MacAddr::new(2, 0, 0, 0, 1, 1))
///     .vxlan(VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, 1)))
///     .pod_ports([1, 2])
///     .peer(PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]).with_vtep_mac(MacAddr::new(2, 0, 0, 0, 0, 2)).with_node_mac(MacAddr::new(2, 0, 0, 0, 1, 2)))
///     .build()?;
/// assert_eq!(node.config().gateway_ip().to_string(), "10.244.1.1");
/// assert_eq!(node.peers().count(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct NodeBuilder {
    config: NodeConfig,
}

impl NodeBuilder {
    /// A node of `pod_subnet` at `node_ip`/`node_mac` on the underlay, with the `host-gw` backend until another
    /// is chosen, no pod port and no peer.
    ///
    /// ```
    /// use tweed_overlay::{BackendConfig, NodeBuilder};
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let node = NodeBuilder::new(subnet, ip, mac).build()?;
    /// assert_eq!(node.config().backend, BackendConfig::HostGw);
    /// assert_eq!(node.config().gateway_ip().to_string(), "10.244.1.1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(pod_subnet: Ipv4Net, node_ip: Ipv4Addr, node_mac: MacAddr) -> Self {
        Self {
            config: NodeConfig {
                pod_subnet: Some(pod_subnet),
                ip_ports: Vec::new(),
                routes: Vec::new(),
                gateway_ip: None,
                gateway_mac: None,
                pod_ports: Vec::new(),
                host_port: None,
                port_security: false,
                port_addresses: Vec::new(),
                underlay: UnderlayConfig {
                    node_ip,
                    node_mac,
                    mtu: 1500,
                    gateway_mac: None,
                    port: 0,
                    socket_port: None,
                },
                backend: BackendConfig::HostGw,
                peers: Vec::new(),
                limits: Limits::default(),
            },
        }
    }

    /// A node without a bridge (no pod subnet, no pod ports) at `node_ip`/`node_mac` on the underlay: its ports
    /// are IP ports ([`NodeBuilder::ip_port`]) with routes to them ([`NodeBuilder::route`]); a VPN's site, say.
    ///
    /// ```
    /// use tweed_overlay::{NodeBuilder, PeerConfig, UdpConfig};
    /// use tweed_packet::PortId;
    /// use tweed_wire::ethernet::MacAddr;
    ///
    /// let node = NodeBuilder::routed("192.168.0.1".parse()?, MacAddr::new(2, 0, 0, 0, 1, 1))
    ///     .udp(UdpConfig::default())
    ///     .socket_port(PortId(9))
    ///     .ip_port(1)
    ///     .route("10.1.0.0/24".parse()?, 1)
    ///     .peer(PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]))
    ///     .build()?;
    /// assert_eq!(node.config().pod_subnet, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn routed(node_ip: Ipv4Addr, node_mac: MacAddr) -> Self {
        let mut b = Self::new(Ipv4Net::default(), node_ip, node_mac);
        b.config.pod_subnet = None;
        b
    }

    /// Adds an IP port (see [`NodeConfig::ip_ports`]).
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, NodeBuilder};
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let node = NodeBuilder::routed(ip, mac).ip_port(1).ip_port(2).build()?;
    /// assert_eq!(node.config().ip_ports, [1, 2]);
    /// let taken = NodeBuilder::routed(ip, mac).ip_port(0).build(); // 0 is the underlay port
    /// assert_eq!(taken.err(), Some(ConfigError::InvalidPort(0)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ip_port(mut self, port: u16) -> Self {
        self.config.ip_ports.push(port);
        self
    }

    /// Routes `subnet` to IP port `port` (see [`NodeConfig::routes`]).
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, NodeBuilder, PortRoute};
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let node = NodeBuilder::routed(ip, mac).ip_port(1).route("10.1.0.0/24".parse()?, 1).build()?;
    /// assert_eq!(node.config().routes, [PortRoute { subnet: "10.1.0.0/24".parse()?, port: 1 }]);
    /// let nowhere = NodeBuilder::routed(ip, mac).route("10.1.0.0/24".parse()?, 2).build();
    /// assert_eq!(nowhere.err(), Some(ConfigError::InvalidPort(2)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn route(mut self, subnet: Ipv4Net, port: u16) -> Self {
        self.config.routes.push(PortRoute { subnet, port });
        self
    }

    /// The gateway address and MAC.
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, NodeBuilder};
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let node = NodeBuilder::new(subnet, ip, mac)
    ///     .gateway("10.244.1.254".parse()?, "02:00:00:00:00:fe".parse()?)
    ///     .build()?;
    /// assert_eq!(node.config().gateway_ip().to_string(), "10.244.1.254");
    /// let outside = NodeBuilder::new(subnet, ip, mac)
    ///     .gateway("10.9.9.9".parse()?, "02:00:00:00:00:fe".parse()?)
    ///     .build();
    /// assert_eq!(outside.err(), Some(ConfigError::GatewayOutsideSubnet("10.9.9.9".parse()?)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn gateway(mut self, ip: Ipv4Addr, mac: MacAddr) -> Self {
        self.config.gateway_ip = Some(ip);
        self.config.gateway_mac = Some(mac);
        self
    }

    /// The `vxlan` backend.
    ///
    /// ```
    /// use tweed_overlay::{NodeBuilder, VxlanConfig};
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let node = NodeBuilder::new(subnet, ip, mac).vxlan(VxlanConfig::new("02:00:00:00:00:01".parse()?)).build()?;
    /// assert_eq!(node.inner_mtu(), 1450); // flannel.1's MTU on a 1500-byte underlay
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn vxlan(mut self, vxlan: VxlanConfig) -> Self {
        self.config.backend = BackendConfig::Vxlan(vxlan);
        self
    }

    /// The `udp` backend.
    ///
    /// ```
    /// use tweed_overlay::{NodeBuilder, UdpConfig};
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let node = NodeBuilder::new(subnet, ip, mac).udp(UdpConfig { port: 9000 }).build()?;
    /// assert_eq!(node.inner_mtu(), 1472); // flannel0's MTU on a 1500-byte underlay
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn udp(mut self, udp: UdpConfig) -> Self {
        self.config.backend = BackendConfig::Udp(udp);
        self
    }

    /// The `host-gw` backend.
    ///
    /// ```
    /// use tweed_overlay::{BackendKind, NodeBuilder, UdpConfig};
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let node = NodeBuilder::new(subnet, ip, mac).udp(UdpConfig::default()).host_gw().build()?;
    /// assert_eq!((node.config().backend.kind(), node.inner_mtu()), (BackendKind::HostGw, 1500));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn host_gw(mut self) -> Self {
        self.config.backend = BackendConfig::HostGw;
        self
    }

    /// Any backend.
    ///
    /// ```
    /// use tweed_overlay::{BackendConfig, NodeBuilder};
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let json = r#"{"type": "vxlan", "vtep_mac": "02:00:00:00:00:01", "vni": 2}"#;
    /// let backend: BackendConfig = serde_json::from_str(json)?;
    /// let node = NodeBuilder::new(subnet, ip, mac).backend(backend).build()?;
    /// assert_eq!(node.inner_mtu(), 1450);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn backend(mut self, backend: BackendConfig) -> Self {
        self.config.backend = backend;
        self
    }

    /// Port security on or off (see [`NodeConfig::port_security`]).
    ///
    /// ```
    /// use tweed_overlay::NodeBuilder;
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let node = NodeBuilder::new(subnet, ip, mac).pod_ports([1]).port_security(true).build()?;
    /// assert!(node.config().port_security);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn port_security(mut self, on: bool) -> Self {
        self.config.port_security = on;
        self
    }

    /// Gives a pod port its own addresses (see [`NodeConfig::port_addresses`]).
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, NodeBuilder};
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let node = NodeBuilder::new(subnet, ip, mac).pod_ports([1]).port_addresses(1, ["10.244.1.5".parse()?]).build()?;
    /// assert_eq!(node.config().port_addresses[0].ips, ["10.244.1.5".parse::<std::net::Ipv4Addr>()?]);
    /// let outside = NodeBuilder::new(subnet, ip, mac).pod_ports([1]).port_addresses(1, ["10.9.0.5".parse()?]).build();
    /// assert!(matches!(outside, Err(ConfigError::PortAddress { port: 1, .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn port_addresses(mut self, port: u16, ips: impl IntoIterator<Item = Ipv4Addr>) -> Self {
        self.config.port_addresses.push(PortAddresses { port, ips: ips.into_iter().collect() });
        self
    }

    /// Adds pod ports.
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, NodeBuilder};
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let node = NodeBuilder::new(subnet, ip, mac).pod_ports([1, 2]).pod_ports([3]).build()?;
    /// assert_eq!(node.config().pod_ports, [1, 2, 3]);
    /// let twice = NodeBuilder::new(subnet, ip, mac).pod_ports([1, 1]).build();
    /// assert_eq!(twice.err(), Some(ConfigError::InvalidPort(1)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pod_ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.config.pod_ports.extend(ports);
        self
    }

    /// The underlay MTU.
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, NodeBuilder, UdpConfig};
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let node = NodeBuilder::new(subnet, ip, mac).udp(UdpConfig::default()).mtu(9000).build()?;
    /// assert_eq!(node.inner_mtu(), 9000 - 28);
    /// assert_eq!(NodeBuilder::new(subnet, ip, mac).mtu(500).build().err(), Some(ConfigError::MtuTooSmall(500)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn mtu(mut self, mtu: u16) -> Self {
        self.config.underlay.mtu = mtu;
        self
    }

    /// The underlay port number.
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, NodeBuilder};
    /// use tweed_packet::PortId;
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let node = NodeBuilder::new(subnet, ip, mac).underlay_port(PortId(7)).pod_ports([0, 1]).build()?;
    /// assert_eq!(node.config().underlay.port, 7);
    /// let taken = NodeBuilder::new(subnet, ip, mac).underlay_port(PortId(1)).pod_ports([1]).build();
    /// assert_eq!(taken.err(), Some(ConfigError::InvalidPort(1)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn underlay_port(mut self, port: PortId) -> Self {
        self.config.underlay.port = port.0;
        self
    }

    /// The port number of UDP payloads from an underlay socket (see [`UnderlayConfig::socket_port`]).
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, NodeBuilder, UdpConfig};
    /// use tweed_packet::PortId;
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let node = NodeBuilder::new(subnet, ip, mac).udp(UdpConfig::default()).socket_port(PortId(9)).build()?;
    /// assert_eq!(node.config().underlay.socket_port, Some(9));
    /// let host_gw = NodeBuilder::new(subnet, ip, mac).socket_port(PortId(9)).build(); // no UDP to receive
    /// assert_eq!(host_gw.err(), Some(ConfigError::InvalidPort(9)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn socket_port(mut self, port: PortId) -> Self {
        self.config.underlay.socket_port = Some(port.0);
        self
    }

    /// The port number of IP packets from the host (see [`NodeConfig::host_port`]).
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, NodeBuilder};
    /// use tweed_packet::PortId;
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let node = NodeBuilder::new(subnet, ip, mac).pod_ports([1]).host_port(PortId(2)).build()?;
    /// assert_eq!(node.config().host_port, Some(2));
    /// let taken = NodeBuilder::new(subnet, ip, mac).pod_ports([1]).host_port(PortId(1)).build();
    /// assert_eq!(taken.err(), Some(ConfigError::InvalidPort(1)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn host_port(mut self, port: PortId) -> Self {
        self.config.host_port = Some(port.0);
        self
    }

    /// The underlay router's MAC.
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, NodeBuilder, PeerConfig, UdpConfig};
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let far = PeerConfig::new("10.244.2.0/24".parse()?, [10, 0, 0, 2]); // behind a router: no node MAC
    /// let routed = NodeBuilder::new(subnet, ip, mac).udp(UdpConfig::default()).peer(far.clone());
    /// assert_eq!(routed.clone().underlay_gateway_mac("02:00:00:00:00:fe".parse()?).build()?.peers().count(), 1);
    /// assert!(matches!(routed.build(), Err(ConfigError::MissingMac { field: "node_mac", .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn underlay_gateway_mac(mut self, mac: MacAddr) -> Self {
        self.config.underlay.gateway_mac = Some(mac);
        self
    }

    /// Adds a peer.
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, NodeBuilder, PeerConfig};
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let peer = PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]);
    /// let peer = peer.with_node_mac("02:00:00:00:01:02".parse()?);
    /// let node = NodeBuilder::new(subnet, ip, mac).peer(peer.clone()).build()?;
    /// assert_eq!(node.peers().collect::<Vec<_>>(), [&peer]);
    /// let ours = NodeBuilder::new(subnet, ip, mac).peer(PeerConfig::new(subnet, [192, 168, 0, 3])).build();
    /// assert_eq!(ours.err(), Some(ConfigError::Overlap(subnet)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn peer(mut self, peer: PeerConfig) -> Self {
        self.config.peers.push(peer);
        self
    }

    /// The limits.
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, Limits, NodeBuilder, PeerConfig};
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// # let peer = |n: u8| PeerConfig::new(format!("10.244.{n}.0/24").parse().unwrap(), [192, 168, 0, n])
    /// #     .with_node_mac(tweed_wire::ethernet::MacAddr::new(2, 0, 0, 0, 1, n));
    /// let one = NodeBuilder::new(subnet, ip, mac).limits(Limits { max_peers: 1, ..Limits::default() });
    /// assert_eq!(one.clone().peer(peer(2)).build()?.peers().count(), 1);
    /// assert_eq!(one.peer(peer(2)).peer(peer(3)).build().err(), Some(ConfigError::TooManyPeers));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// The configuration built so far.
    ///
    /// ```
    /// use tweed_overlay::{Node, NodeBuilder};
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let mut config = NodeBuilder::new(subnet, ip, mac).pod_ports([1]).into_config();
    /// config.limits.arp_queue = 16; // what the builder has no method for
    /// assert_eq!(Node::new(config)?.config().limits.arp_queue, 16);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn into_config(self) -> NodeConfig {
        self.config
    }

    /// Builds the node.
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, NodeBuilder};
    ///
    /// # let (subnet, ip, mac): (ipnet::Ipv4Net, std::net::Ipv4Addr, tweed_wire::ethernet::MacAddr) =
    /// #     ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// let node = NodeBuilder::new(subnet, ip, mac).pod_ports([1]).build()?;
    /// assert_eq!(node.peers().count(), 0);
    /// assert_eq!(NodeBuilder::new(subnet, "192.168.0.1".parse()?, "ff:ff:ff:ff:ff:ff".parse()?)
    ///     .build()
    ///     .err()
    ///     .map(|e| e.to_string()),
    ///     Some("underlay.node_mac ff:ff:ff:ff:ff:ff is not a unicast MAC".into()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Those of [`crate::Node::new`].
    pub fn build(self) -> Result<crate::Node, ConfigError> {
        crate::Node::new(self.config)
    }
}
