//! What a [`crate::Node`] is made of: its pod subnet and gateway, its ports, its underlay, its backend and its
//! peers. Built in Rust with [`NodeBuilder`], or read from TOML or JSON ([`NodeConfig::from_toml_str`],
//! [`NodeConfig::from_json_str`]); both end in the same [`NodeConfig`], which [`NodeConfig::validate`] judges.
//!
//! MAC addresses are written `"02:00:00:00:00:01"` in files; subnets `"10.244.1.0/24"`.
//!
//! ```
//! use tweed_overlay::{NodeBuilder, NodeConfig, PeerConfig, VxlanConfig};
//!
//! let from_file = NodeConfig::from_toml_str(r#"
//!     pod_subnet = "10.244.1.0/24"
//!     pod_ports = [1]
//!     underlay = { node_ip = "192.168.0.1", node_mac = "02:00:00:00:01:01" }
//!     backend = { type = "vxlan", vtep_mac = "02:00:00:00:00:01" }
//!     peers = [{ subnet = "10.244.2.0/24", node_ip = "192.168.0.2", vtep_mac = "02:00:00:00:00:02" }]
//! "#)?;
//! let built = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
//!     .vxlan(VxlanConfig::new("02:00:00:00:00:01".parse()?))
//!     .pod_ports([1])
//!     .peer(PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]).with_vtep_mac("02:00:00:00:00:02".parse()?))
//!     .into_config();
//! assert_eq!(from_file, built);
//! assert_eq!(from_file.validate(), Ok(()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use tweed_wire::ethernet::MacAddr;

mod backend;
mod builder;
mod error;
mod limits;
mod node;
mod peer;
#[cfg(test)]
mod tests;

pub use backend::{
    BackendConfig, BackendKind, FLANNEL_UDP_PORT, KERNEL_PORT_RANGE, RFC7348_PORT_RANGE, UdpConfig, VxlanConfig,
};
pub use builder::NodeBuilder;
pub use error::ConfigError;
pub use limits::Limits;
pub use node::NodeConfig;
pub(crate) use node::overlaps;
pub use peer::PeerConfig;

const fn default_mtu() -> u16 {
    1500
}
const fn default_underlay_port() -> u16 {
    0
}

/// The node's side of the underlay network.
///
/// ```
/// use tweed_overlay::UnderlayConfig;
///
/// let underlay: UnderlayConfig = toml::from_str(r#"node_ip = "192.168.0.1"
/// node_mac = "02:00:00:00:01:01"
/// gateway_mac = "02:00:00:00:00:fe""#)?;
/// assert_eq!((underlay.mtu, underlay.port, underlay.socket_port), (1500, 0, None)); // the defaults
/// assert_eq!(underlay.gateway_mac.map(|m| m.to_string()).as_deref(), Some("02:00:00:00:00:fe"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    /// holds the UDP payload (the VXLAN header and the inner frame, or the inner IP packet), and `meta.remote()` the
    /// sender's address, which must be a peer's. `None` (the default): the underlay gives whole Ethernet frames
    /// only. It must not be a pod port or the underlay port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_port: Option<u16>,
}

/// The most addresses one pod port may have ([`PortAddresses::ips`]).
///
/// ```
/// use tweed_overlay::{ConfigError, MAX_PORT_ADDRESSES, NodeBuilder};
///
/// let ips = (10..).take(MAX_PORT_ADDRESSES + 1).map(|h| std::net::Ipv4Addr::new(10, 244, 1, h));
/// let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
///     .pod_ports([1])
///     .port_addresses(1, ips)
///     .into_config();
/// let err = config.validate().unwrap_err();
/// assert!(matches!(err, ConfigError::PortAddress { port: 1, problem: "more than 4 addresses", .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const MAX_PORT_ADDRESSES: usize = 4;

/// A pod port's own addresses: with [`NodeConfig::port_security`] on, the only IPv4 sources (and ARP sender
/// addresses) its pod may use.
///
/// ```
/// use tweed_overlay::{NodeConfig, PortAddresses};
///
/// let config = NodeConfig::from_toml_str(r#"
///     pod_subnet = "10.244.1.0/24"
///     pod_ports = [1, 2]
///     port_security = true
///     port_addresses = [{ port = 1, ips = ["10.244.1.5", "10.244.1.6"] }]
///     underlay = { node_ip = "192.168.0.1", node_mac = "02:00:00:00:01:01" }
///     backend = { type = "host-gw" }
/// "#)?;
/// config.validate()?;
/// let ips = vec!["10.244.1.5".parse()?, "10.244.1.6".parse()?];
/// assert_eq!(config.port_addresses, [PortAddresses { port: 1, ips }]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// ```
/// use tweed_overlay::{NodeConfig, PortRoute};
///
/// let config = NodeConfig::from_toml_str(r#"
///     ip_ports = [1]
///     routes = [{ subnet = "10.1.0.0/24", port = 1 }]
///     underlay = { node_ip = "192.168.0.1", node_mac = "02:00:00:00:01:01", socket_port = 9 }
///     backend = { type = "udp" }
/// "#)?;
/// config.validate()?;
/// assert_eq!(config.routes, [PortRoute { subnet: "10.1.0.0/24".parse()?, port: 1 }]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRoute {
    /// The destinations, e.g. `10.1.0.0/24`.
    pub subnet: Ipv4Net,
    /// The IP port.
    pub port: u16,
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
