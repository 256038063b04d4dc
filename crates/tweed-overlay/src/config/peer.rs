//! Peers: remote nodes, one per remote subnet.

use core::net::IpAddr;
use std::collections::BTreeMap;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use tweed_wire::ethernet::MacAddr;

use super::opt_mac_serde;

/// A remote node: one per remote pod subnet (one flannel lease).
///
/// ```
/// use tweed_overlay::PeerConfig;
///
/// // As the control plane writes it: the MACs and any parameter of its encapsulation.
/// let peer: PeerConfig = serde_json::from_str(r#"{"subnet": "10.244.2.0/24", "node_ip": "192.168.0.2",
///     "vtep_mac": "02:00:00:00:00:02", "params": {"psk_id": "7"}}"#)?;
/// assert_eq!(peer.vtep_mac.map(|m| m.to_string()).as_deref(), Some("02:00:00:00:00:02"));
/// assert_eq!((peer.node_mac, peer.param("psk_id")), (None, Some("7")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PeerConfig {
    /// The peer's pod subnet, e.g. `10.244.2.0/24`.
    pub subnet: Ipv4Net,
    /// The peer's underlay address (its `PublicIP`). An IP address, not its IPv4 form, so that the seam is ready
    /// for IPv6; only IPv4 is carried for now (a peer with an IPv6 address is refused).
    pub node_ip: IpAddr,
    /// The peer's VTEP MAC (`BackendData.VtepMAC`); required by the `vxlan` backend.
    #[serde(default, with = "opt_mac_serde", skip_serializing_if = "Option::is_none")]
    pub vtep_mac: Option<MacAddr>,
    /// The peer's MAC on the underlay. Required by `host-gw` (the peer is the next hop); for `vxlan` and `udp` it
    /// is the outer destination MAC, and when absent the underlay's `gateway_mac` is used instead, or, when the node
    /// sends through a UDP socket (`underlay.socket_port`), none is needed (the kernel resolves the next hop; the
    /// outer destination MAC in the output frame is then zero).
    #[serde(default, with = "opt_mac_serde", skip_serializing_if = "Option::is_none")]
    pub node_mac: Option<MacAddr>,
    /// What else the peer's encapsulation needs, by name (a public key, a pre-shared key...): a backend brings its
    /// own fields here without a change to the node. flannel's backends need none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

impl PeerConfig {
    /// A peer with neither MAC given and no parameter.
    ///
    /// ```
    /// use tweed_overlay::PeerConfig;
    ///
    /// let peer = PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]).with_param("psk_id", "7");
    /// assert_eq!(peer.node_ip.to_string(), "192.168.0.2");
    /// assert_eq!(peer.param("psk_id"), Some("7"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn new(subnet: Ipv4Net, node_ip: impl Into<IpAddr>) -> Self {
        Self { subnet, node_ip: node_ip.into(), vtep_mac: None, node_mac: None, params: BTreeMap::new() }
    }

    /// With this parameter for its encapsulation.
    ///
    /// ```
    /// use tweed_overlay::PeerConfig;
    ///
    /// let peer = PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]);
    /// let peer = peer.with_param("key", "a").with_param("key", "b");
    /// assert_eq!(peer.params.len(), 1); // the last value given
    /// assert_eq!(peer.param("key"), Some("b"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }

    /// A parameter for its encapsulation.
    ///
    /// ```
    /// use tweed_overlay::PeerConfig;
    ///
    /// let peer = PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]).with_param("psk_id", "7");
    /// assert_eq!(peer.param("psk_id").map(str::parse::<u8>).transpose()?, Some(7));
    /// assert_eq!(peer.param("psk"), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The IPv4 node address as the data path indexes it (validated to be IPv4 before use).
    pub(crate) fn ip_key(&self) -> u32 {
        match self.node_ip {
            IpAddr::V4(ip) => u32::from(ip),
            IpAddr::V6(_) => 0,
        }
    }

    /// With this VTEP MAC.
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, NodeBuilder, PeerConfig, VxlanConfig};
    ///
    /// let mut node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .vxlan(VxlanConfig::new("02:00:00:00:00:01".parse()?))
    ///     .build()?;
    /// let peer = PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]);
    /// let peer = peer.with_node_mac("02:00:00:00:01:02".parse()?);
    /// assert!(matches!(node.add_peer(peer.clone()), Err(ConfigError::MissingMac { field: "vtep_mac", .. })));
    /// node.add_peer(peer.with_vtep_mac("02:00:00:00:00:02".parse()?))?;
    /// let vtep = node.peers().next().and_then(|p| p.vtep_mac);
    /// assert_eq!(vtep.map(|m| m.to_string()).as_deref(), Some("02:00:00:00:00:02"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub const fn with_vtep_mac(mut self, mac: MacAddr) -> Self {
        self.vtep_mac = Some(mac);
        self
    }

    /// With this underlay MAC.
    ///
    /// ```
    /// use tweed_overlay::{ConfigError, NodeBuilder, PeerConfig};
    ///
    /// // host-gw: the peer is the next hop, its MAC is the frame's destination.
    /// let mut node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .build()?;
    /// let peer = PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]);
    /// assert!(matches!(node.add_peer(peer.clone()), Err(ConfigError::MissingMac { field: "node_mac", .. })));
    /// node.add_peer(peer.with_node_mac("02:00:00:00:01:02".parse()?))?;
    /// assert_eq!(node.peers().count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub const fn with_node_mac(mut self, mac: MacAddr) -> Self {
        self.node_mac = Some(mac);
        self
    }
}
