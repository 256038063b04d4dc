//! [`NodeConfig`]: everything a node is made of, read from a file or built, and judged by
//! [`NodeConfig::validate`].

use core::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use tweed_wire::ethernet::MacAddr;

use super::{
    BackendConfig, BackendKind, ConfigError, Limits, MAX_PORT_ADDRESSES, PeerConfig, PortAddresses, PortRoute,
    UnderlayConfig, opt_mac_serde,
};

/// Everything a node is made of.
///
/// ```
/// use tweed_overlay::{Node, NodeConfig};
///
/// let config = NodeConfig::from_toml_str(r#"
///     pod_subnet = "10.244.1.0/24"
///     pod_ports = [1, 2]
///     underlay = { node_ip = "192.168.0.1", node_mac = "02:00:00:00:01:01" }
///     backend = { type = "vxlan", vtep_mac = "02:00:00:00:00:01" }
///
///     [[peers]]
///     subnet = "10.244.2.0/24"
///     node_ip = "192.168.0.2"
///     vtep_mac = "02:00:00:00:00:02"
///     node_mac = "02:00:00:00:01:02"
/// "#)?;
/// let node = Node::new(config)?;
/// assert_eq!((node.inner_mtu(), node.peers().count()), (1450, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NodeConfig {
    /// This node's pod subnet, e.g. `10.244.1.0/24`: the pods behind its bridge, which their gateway's address
    /// (the bridge's) is part of. `None`: a node without a bridge, whose only ports are IP ports (a VPN's TUNs):
    /// no pod ports, gateway or port addresses then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_subnet: Option<Ipv4Net>,
    /// The pods' gateway address (the bridge's, `cni0`'s); the subnet's first host by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_ip: Option<Ipv4Addr>,
    /// The gateway's MAC; by default `0a:58` followed by the gateway address (the CNI bridge plugin's convention).
    #[serde(default, with = "opt_mac_serde", skip_serializing_if = "Option::is_none")]
    pub gateway_mac: Option<MacAddr>,
    /// The ports pods are attached to (veths, TAPs), as `meta.ingress` numbers them: Ethernet ports behind the
    /// bridge.
    #[serde(default)]
    pub pod_ports: Vec<u16>,
    /// IP ports (TUN-like: IP packets without an Ethernet header, no bridge, no ARP): packets from them are
    /// routed (their TTL decremented, as a router does); [`NodeConfig::routes`] send packets out of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_ports: Vec<u16>,
    /// Routes to IP ports (or to the host port).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<PortRoute>,
    /// The host's IP port (a TUN device, no Ethernet header): the node routes its packets as a router would those
    /// of a directly attached host, to a local pod or through a peer, without decrementing the TTL (the host's own
    /// packets, as if the node were its kernel). Packets for the node itself (to the gateway or node address) that
    /// the node does not answer leave there ([`Verdict::Port`](crate::Verdict::Port)). `None` (the default): no
    /// host port; such packets are dropped ([`DropReason::NoHostPort`](crate::DropReason::NoHostPort)). It must not
    /// be any other port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    /// Port security: a pod may send IPv4 packets and ARP only from its own port's addresses; others are dropped
    /// ([`DropReason::PortSecurity`](crate::DropReason::PortSecurity)). A port's own addresses are those given in
    /// [`NodeConfig::port_addresses`]; a port given none owns the addresses the bridge learnt from its ARP and
    /// holds for it (inside the pod subnet, a few per port, never another port's while that one's entry is
    /// fresh): its ARP may claim an address, its IPv4 packets must come from one it holds. Off by default in the
    /// library; the agent turns it on. Whether on or off, a pod's source outside the pod subnet, or the
    /// gateway's, is always dropped ([`DropReason::PodSourceSpoofed`](crate::DropReason::PodSourceSpoofed)).
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub port_security: bool,
    /// Each pod port's own addresses (see [`NodeConfig::port_security`]). Ports not listed have none given: with
    /// port security on, they own what they hold in the bridge's ARP table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_addresses: Vec<PortAddresses>,
    /// The node's underlay.
    pub underlay: UnderlayConfig,
    /// The backend.
    pub backend: BackendConfig,
    /// The remote nodes.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Table sizes and rates.
    #[serde(default)]
    pub limits: Limits,
}

/// Whether two subnets share an address.
pub(crate) fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn check_unicast(field: &'static str, mac: MacAddr) -> Result<(), ConfigError> {
    if mac.is_multicast() || mac.is_zero() { Err(ConfigError::InvalidMac { field, mac }) } else { Ok(()) }
}

impl NodeConfig {
    /// Reads a configuration from TOML.
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, NodeConfig};
    ///
    /// let config = NodeConfig::from_toml_str(r#"
    ///     pod_subnet = "10.244.1.0/24"
    ///     pod_ports = [1, 2]
    ///     underlay = { node_ip = "192.168.0.1", node_mac = "02:00:00:00:01:01" }
    ///     backend = { type = "vxlan", vtep_mac = "02:00:00:00:00:01" }
    ///
    ///     [[peers]]
    ///     subnet = "10.244.2.0/24"
    ///     node_ip = "192.168.0.2"
    ///     vtep_mac = "02:00:00:00:00:02"
    ///     node_mac = "02:00:00:00:01:02"
    /// "#)?;
    /// assert_eq!((config.pod_ports.as_slice(), config.peers.len()), (&[1, 2][..], 1));
    /// let typo = NodeConfig::from_toml_str("pod_subnet = \"10.244.1.0/24\"\npod_prots = [1]");
    /// assert!(matches!(typo, Err(ConfigError::Parse(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::Parse`] with the parser's message.
    pub fn from_toml_str(s: &str) -> Result<Self, ConfigError> {
        toml::from_str(s).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// Reads a configuration from JSON.
    ///
    /// ```
    /// use tweed_overlay::{NodeBuilder, NodeConfig};
    ///
    /// let built = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .pod_ports([1])
    ///     .into_config();
    /// let json = serde_json::to_string(&built)?;
    /// assert_eq!(NodeConfig::from_json_str(&json)?, built);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::Parse`] with the parser's message.
    pub fn from_json_str(s: &str) -> Result<Self, ConfigError> {
        serde_json::from_str(s).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// The largest IP packet a pod (or the host) can send to a peer with the flannel backend of
    /// [`NodeConfig::backend`]: the underlay MTU minus its overhead (what flannel sets as the MTU of `flannel.1` or
    /// `flannel0`, and writes as `FLANNEL_MTU`). A node built with its own encapsulation:
    /// [`Node::inner_mtu`](crate::Node::inner_mtu).
    ///
    /// ```
    /// use tweed_overlay::{NodeBuilder, VxlanConfig};
    ///
    /// let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .vxlan(VxlanConfig::new("02:00:00:00:00:01".parse()?))
    ///     .mtu(9001)
    ///     .into_config();
    /// assert_eq!(config.inner_mtu(), 8951); // FLANNEL_MTU
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn inner_mtu(&self) -> u16 {
        self.underlay.mtu.saturating_sub(self.backend.overhead())
    }

    /// The gateway address: the configured one, or the pod subnet's first host; `0.0.0.0` (an address no packet
    /// can have as destination) for a node without a pod subnet.
    ///
    /// ```
    /// use tweed_overlay::NodeBuilder;
    ///
    /// let (ip, mac) = ("192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// assert_eq!(NodeBuilder::new("10.244.1.0/24".parse()?, ip, mac)
    ///     .into_config()
    ///     .gateway_ip()
    ///     .to_string(), "10.244.1.1");
    /// assert_eq!(NodeBuilder::routed(ip, mac).into_config().gateway_ip().to_string(), "0.0.0.0");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn gateway_ip(&self) -> Ipv4Addr {
        match (self.gateway_ip, self.pod_subnet) {
            (Some(ip), _) => ip,
            (None, Some(net)) => Ipv4Addr::from(u32::from(net.network()).wrapping_add(1)),
            (None, None) => Ipv4Addr::UNSPECIFIED,
        }
    }

    /// The ports that carry IP packets: [`NodeConfig::ip_ports`] and the host port.
    ///
    /// ```
    /// use tweed_overlay::NodeBuilder;
    /// use tweed_packet::PortId;
    ///
    /// let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .pod_ports([1])
    ///     .ip_port(5)
    ///     .host_port(PortId(3))
    ///     .into_config();
    /// assert_eq!(config.ip_port_numbers().collect::<Vec<_>>(), [5, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ip_port_numbers(&self) -> impl Iterator<Item = u16> + '_ {
        self.ip_ports.iter().copied().chain(self.host_port)
    }

    /// The gateway MAC: the configured one, or `0a:58:` followed by the gateway address.
    ///
    /// ```
    /// use tweed_overlay::NodeBuilder;
    ///
    /// let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .into_config();
    /// assert_eq!(config.gateway_mac().to_string(), "0a:58:0a:f4:01:01"); // 0a:58, then 10.244.1.1
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn gateway_mac(&self) -> MacAddr {
        self.gateway_mac.unwrap_or_else(|| {
            let [a, b, c, d] = self.gateway_ip().octets();
            MacAddr::new(0x0a, 0x58, a, b, c, d)
        })
    }

    /// Checks everything that can be checked without building the node (peers are checked as they are added).
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, NodeBuilder, VxlanConfig};
    ///
    /// let mut config =
    ///     NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .vxlan(VxlanConfig::new("02:00:00:00:00:01".parse()?))
    ///     .into_config();
    /// assert_eq!(config.validate(), Ok(()));
    /// let vxlan = VxlanConfig { vni: 1 << 24, ..VxlanConfig::new("02:00:00:00:00:01".parse()?) };
    /// config.backend = tweed_overlay::BackendConfig::Vxlan(vxlan);
    /// assert_eq!(config.validate(), Err(ConfigError::InvalidVni(1 << 24)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check(true)
    }

    /// [`NodeConfig::validate`] without the flannel backend's checks: for a node built with its own
    /// encapsulation, which does not use [`NodeConfig::backend`].
    pub(crate) fn validate_without_backend(&self) -> Result<(), ConfigError> {
        self.check(false)
    }

    fn check(&self, backend: bool) -> Result<(), ConfigError> {
        if let Some(subnet) = self.pod_subnet {
            let subnet = subnet.trunc();
            let gw = self.gateway_ip();
            if !subnet.contains(&gw) || gw == subnet.network() || gw == subnet.broadcast() {
                return Err(ConfigError::GatewayOutsideSubnet(gw));
            }
            check_unicast("gateway_mac", self.gateway_mac())?;
        } else if let Some(&p) = self.pod_ports.first() {
            return Err(ConfigError::InvalidPort(p));
        } else if let Some(ip) = self.gateway_ip {
            return Err(ConfigError::GatewayOutsideSubnet(ip));
        }
        check_unicast("underlay.node_mac", self.underlay.node_mac)?;
        if let Some(mac) = self.underlay.gateway_mac {
            check_unicast("underlay.gateway_mac", mac)?;
        }
        if self.underlay.mtu < 576 {
            return Err(ConfigError::MtuTooSmall(self.underlay.mtu));
        }
        if let (true, BackendConfig::Vxlan(v)) = (backend, &self.backend) {
            check_unicast("backend.vtep_mac", v.vtep_mac)?;
            if v.vni > 0xff_ffff {
                return Err(ConfigError::InvalidVni(v.vni));
            }
            if v.source_ports.0 > v.source_ports.1 {
                return Err(ConfigError::InvalidPortRange(v.source_ports.0, v.source_ports.1));
            }
        }
        if let Some(p) = self.underlay.socket_port
            && (p == self.underlay.port || (backend && self.backend.kind() == BackendKind::HostGw))
        {
            return Err(ConfigError::InvalidPort(p));
        }
        if let Some(p) = self.host_port
            && (p == self.underlay.port || Some(p) == self.underlay.socket_port || self.pod_ports.contains(&p))
        {
            return Err(ConfigError::InvalidPort(p));
        }
        for (i, &p) in self.pod_ports.iter().enumerate() {
            if p == self.underlay.port
                || Some(p) == self.underlay.socket_port
                || usize::from(p) >= tweed_switch::PortId::MAX
                || self.pod_ports[..i].contains(&p)
            {
                return Err(ConfigError::InvalidPort(p));
            }
        }
        for (i, &p) in self.ip_ports.iter().enumerate() {
            if p == self.underlay.port
                || Some(p) == self.underlay.socket_port
                || Some(p) == self.host_port
                || self.pod_ports.contains(&p)
                || self.ip_ports[..i].contains(&p)
            {
                return Err(ConfigError::InvalidPort(p));
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            if !self.ip_port_numbers().any(|p| p == r.port) {
                return Err(ConfigError::InvalidPort(r.port));
            }
            let taken = self.pod_subnet.iter().chain(self.routes[..i].iter().map(|o| &o.subnet));
            if taken.into_iter().any(|&o| overlaps(o, r.subnet)) {
                return Err(ConfigError::Overlap(r.subnet.trunc()));
            }
        }
        self.limits.validate()?;
        self.validate_port_addresses()
    }

    fn validate_port_addresses(&self) -> Result<(), ConfigError> {
        let Some(subnet) = self.pod_subnet.map(|s| s.trunc()) else {
            return match self.port_addresses.first() {
                Some(pa) => Err(ConfigError::PortAddress { port: pa.port, ip: None, problem: "not a pod port" }),
                None => Ok(()),
            };
        };
        let gw = self.gateway_ip();
        let err = |port, ip, problem| Err(ConfigError::PortAddress { port, ip, problem });
        for (i, pa) in self.port_addresses.iter().enumerate() {
            if !self.pod_ports.contains(&pa.port) {
                return err(pa.port, None, "not a pod port");
            }
            if self.port_addresses[..i].iter().any(|o| o.port == pa.port) {
                return err(pa.port, None, "listed twice");
            }
            if pa.ips.len() > MAX_PORT_ADDRESSES {
                return err(pa.port, None, "more than 4 addresses");
            }
            for (j, &ip) in pa.ips.iter().enumerate() {
                if !subnet.contains(&ip) || ip == subnet.network() || ip == subnet.broadcast() || ip == gw {
                    return err(pa.port, Some(ip), "not a pod address of the subnet");
                }
                let taken = pa.ips[..j].contains(&ip) || self.port_addresses[..i].iter().any(|o| o.ips.contains(&ip));
                if taken {
                    return err(pa.port, Some(ip), "given twice");
                }
            }
        }
        Ok(())
    }
}
