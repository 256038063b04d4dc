//! What a [`crate::Node`] is made of: its pod subnet and gateway, its ports, its underlay, its backend and its
//! peers. Built in Rust with [`NodeBuilder`], or read from TOML or JSON ([`NodeConfig::from_toml_str`],
//! [`NodeConfig::from_json_str`]); both end in the same [`NodeConfig`], which [`NodeConfig::validate`] judges.
//!
//! MAC addresses are written `"02:00:00:00:00:01"` in files; subnets `"10.244.1.0/24"`.

use core::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use tweed_wire::ethernet::MacAddr;

mod backend;
mod builder;
mod error;
mod limits;
mod peer;
#[cfg(test)]
mod tests;

pub use backend::{
    BackendConfig, BackendKind, FLANNEL_UDP_PORT, KERNEL_PORT_RANGE, RFC7348_PORT_RANGE, UdpConfig, VxlanConfig,
};
pub use builder::NodeBuilder;
pub use error::ConfigError;
pub use limits::Limits;
pub use peer::PeerConfig;

const fn default_mtu() -> u16 {
    1500
}
const fn default_underlay_port() -> u16 {
    0
}

/// The node's side of the underlay network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnderlayConfig {
    /// The node's address on the underlay (flannel's `PublicIP`): the outer source address.
    pub node_ip: Ipv4Addr,
    /// The node's MAC on the underlay: the outer source MAC, and the destination the node accepts frames for.
    #[serde(with = "mac_serde")]
    pub node_mac: MacAddr,
    /// The underlay MTU (1500 by default). Packets that do not fit after encapsulation are refused with ICMP
    /// "fragmentation needed" when they have DF set, and fragmented (RFC 791) when they have not.
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// The MAC of the underlay's router: the outer destination MAC for a peer whose `node_mac` is not given
    /// (a peer in another L2 segment). `None`: such peers must have a `node_mac`.
    #[serde(default, with = "opt_mac_serde", skip_serializing_if = "Option::is_none")]
    pub gateway_mac: Option<MacAddr>,
    /// The port number packets from the underlay carry in `meta.ingress` (0 by default). It must not be a pod
    /// port.
    #[serde(default = "default_underlay_port")]
    pub port: u16,
    /// The port number of packets a UDP socket received from the underlay (`vxlan` and `udp` only): their buffer
    /// holds the UDP payload (the VXLAN header and the inner frame, or the inner IP packet), and `meta.remote` the
    /// sender's address, which must be a peer's. `None` (the default): the underlay gives whole Ethernet frames
    /// only. It must not be a pod port or the underlay port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_port: Option<u16>,
}

/// The most addresses one pod port may have ([`PortAddresses::ips`]).
pub const MAX_PORT_ADDRESSES: usize = 4;

/// A pod port's own addresses: with [`NodeConfig::port_security`] on, the only IPv4 sources (and ARP sender
/// addresses) its pod may use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortAddresses {
    /// The pod port.
    pub port: u16,
    /// Its addresses, hosts of the pod subnet (at most [`MAX_PORT_ADDRESSES`]).
    pub ips: Vec<Ipv4Addr>,
}

/// A route to an IP port ([`NodeConfig::ip_ports`], or the host port): packets to `subnet` leave there, as IP
/// packets without an Ethernet header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRoute {
    /// The destinations, e.g. `10.1.0.0/24`.
    pub subnet: Ipv4Net,
    /// The IP port.
    pub port: u16,
}

/// Everything a node is made of.
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
    /// # Errors
    /// [`ConfigError::Parse`] with the parser's message.
    pub fn from_toml_str(s: &str) -> Result<Self, ConfigError> {
        toml::from_str(s).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// Reads a configuration from JSON.
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
    #[must_use]
    pub fn inner_mtu(&self) -> u16 {
        self.underlay.mtu.saturating_sub(self.backend.overhead())
    }

    /// The gateway address: the configured one, or the pod subnet's first host; `0.0.0.0` (an address no packet
    /// can have as destination) for a node without a pod subnet.
    #[must_use]
    pub fn gateway_ip(&self) -> Ipv4Addr {
        match (self.gateway_ip, self.pod_subnet) {
            (Some(ip), _) => ip,
            (None, Some(net)) => Ipv4Addr::from(u32::from(net.network()).wrapping_add(1)),
            (None, None) => Ipv4Addr::UNSPECIFIED,
        }
    }

    /// The ports that carry IP packets: [`NodeConfig::ip_ports`] and the host port.
    pub fn ip_port_numbers(&self) -> impl Iterator<Item = u16> + '_ {
        self.ip_ports.iter().copied().chain(self.host_port)
    }

    /// The gateway MAC: the configured one, or `0a:58:` followed by the gateway address.
    #[must_use]
    pub fn gateway_mac(&self) -> MacAddr {
        self.gateway_mac.unwrap_or_else(|| {
            let [a, b, c, d] = self.gateway_ip().octets();
            MacAddr::new(0x0a, 0x58, a, b, c, d)
        })
    }

    /// Checks everything that can be checked without building the node (peers are checked as they are added).
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
        if let BackendConfig::Vxlan(v) = &self.backend {
            check_unicast("backend.vtep_mac", v.vtep_mac)?;
            if v.vni > 0xff_ffff {
                return Err(ConfigError::InvalidVni(v.vni));
            }
            if v.source_ports.0 > v.source_ports.1 {
                return Err(ConfigError::InvalidPortRange(v.source_ports.0, v.source_ports.1));
            }
        }
        if let Some(p) = self.underlay.socket_port
            && (p == self.underlay.port || self.backend.kind() == BackendKind::HostGw)
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

pub(crate) mod mac_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use tweed_wire::ethernet::MacAddr;

    pub(super) fn serialize<S: Serializer>(mac: &MacAddr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(mac)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MacAddr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|_| serde::de::Error::custom(format_args!("invalid MAC address {s:?}")))
    }
}

pub(crate) mod opt_mac_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use tweed_wire::ethernet::MacAddr;

    // serde's `with` hands `&Option<T>` to serialize.
    #[allow(clippy::ref_option)]
    pub(super) fn serialize<S: Serializer>(mac: &Option<MacAddr>, s: S) -> Result<S::Ok, S::Error> {
        match mac {
            Some(mac) => s.collect_str(mac),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MacAddr>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| s.parse().map_err(|_| serde::de::Error::custom(format_args!("invalid MAC address {s:?}"))))
            .transpose()
    }
}
