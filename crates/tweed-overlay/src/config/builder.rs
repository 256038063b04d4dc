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
    pub fn ip_port(mut self, port: u16) -> Self {
        self.config.ip_ports.push(port);
        self
    }

    /// Routes `subnet` to IP port `port` (see [`NodeConfig::routes`]).
    pub fn route(mut self, subnet: Ipv4Net, port: u16) -> Self {
        self.config.routes.push(PortRoute { subnet, port });
        self
    }

    /// The gateway address and MAC.
    pub const fn gateway(mut self, ip: Ipv4Addr, mac: MacAddr) -> Self {
        self.config.gateway_ip = Some(ip);
        self.config.gateway_mac = Some(mac);
        self
    }

    /// The `vxlan` backend.
    pub fn vxlan(mut self, vxlan: VxlanConfig) -> Self {
        self.config.backend = BackendConfig::Vxlan(vxlan);
        self
    }

    /// The `udp` backend.
    pub fn udp(mut self, udp: UdpConfig) -> Self {
        self.config.backend = BackendConfig::Udp(udp);
        self
    }

    /// The `host-gw` backend.
    pub fn host_gw(mut self) -> Self {
        self.config.backend = BackendConfig::HostGw;
        self
    }

    /// Any backend.
    pub fn backend(mut self, backend: BackendConfig) -> Self {
        self.config.backend = backend;
        self
    }

    /// Port security on or off (see [`NodeConfig::port_security`]).
    pub const fn port_security(mut self, on: bool) -> Self {
        self.config.port_security = on;
        self
    }

    /// Gives a pod port its own addresses (see [`NodeConfig::port_addresses`]).
    pub fn port_addresses(mut self, port: u16, ips: impl IntoIterator<Item = Ipv4Addr>) -> Self {
        self.config.port_addresses.push(PortAddresses { port, ips: ips.into_iter().collect() });
        self
    }

    /// Adds pod ports.
    pub fn pod_ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.config.pod_ports.extend(ports);
        self
    }

    /// The underlay MTU.
    pub const fn mtu(mut self, mtu: u16) -> Self {
        self.config.underlay.mtu = mtu;
        self
    }

    /// The underlay port number.
    pub const fn underlay_port(mut self, port: PortId) -> Self {
        self.config.underlay.port = port.0;
        self
    }

    /// The port number of UDP payloads from an underlay socket (see [`UnderlayConfig::socket_port`]).
    pub const fn socket_port(mut self, port: PortId) -> Self {
        self.config.underlay.socket_port = Some(port.0);
        self
    }

    /// The port number of IP packets from the host (see [`NodeConfig::host_port`]).
    pub const fn host_port(mut self, port: PortId) -> Self {
        self.config.host_port = Some(port.0);
        self
    }

    /// The underlay router's MAC.
    pub const fn underlay_gateway_mac(mut self, mac: MacAddr) -> Self {
        self.config.underlay.gateway_mac = Some(mac);
        self
    }

    /// Adds a peer.
    pub fn peer(mut self, peer: PeerConfig) -> Self {
        self.config.peers.push(peer);
        self
    }

    /// The limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// The configuration built so far.
    #[must_use]
    pub fn into_config(self) -> NodeConfig {
        self.config
    }

    /// Builds the node.
    ///
    /// # Errors
    /// Those of [`crate::Node::new`].
    pub fn build(self) -> Result<crate::Node, ConfigError> {
        crate::Node::new(self.config)
    }
}
