//! flannel's backends as configured (`Backend.Type` and its fields).

use serde::{Deserialize, Serialize};
use tweed_wire::ethernet::MacAddr;

use super::mac_serde;
use crate::encap::{Encapsulation, Flannel};

/// The kernel's default local port range (`net.ipv4.ip_local_port_range`), which it draws VXLAN source ports from.
///
/// ```
/// use tweed_overlay::VxlanConfig;
/// use tweed_overlay::config::KERNEL_PORT_RANGE;
/// use tweed_wire::ethernet::MacAddr;
///
/// assert_eq!(VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, 1)).source_ports, KERNEL_PORT_RANGE);
/// assert_eq!(KERNEL_PORT_RANGE, (32768, 60999));
/// ```
pub const KERNEL_PORT_RANGE: (u16, u16) = (32768, 60999);
/// The range RFC 7348 §5 recommends for VXLAN source ports.
///
/// ```
/// use tweed_overlay::config::RFC7348_PORT_RANGE;
/// use tweed_overlay::{NodeBuilder, VxlanConfig};
///
/// let vxlan = VxlanConfig { source_ports: RFC7348_PORT_RANGE, ..VxlanConfig::new("02:00:00:00:00:01".parse()?) };
/// let node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
///     .vxlan(vxlan)
///     .build()?;
/// let tweed_overlay::BackendConfig::Vxlan(v) = &node.config().backend else { panic!("not vxlan") };
/// assert_eq!(v.source_ports, (49152, 65535));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const RFC7348_PORT_RANGE: (u16, u16) = (49152, 65535);
/// flannel's `udp` backend port.
///
/// ```
/// use tweed_overlay::UdpConfig;
/// use tweed_overlay::config::FLANNEL_UDP_PORT;
///
/// assert_eq!(UdpConfig::default().port, FLANNEL_UDP_PORT);
/// assert_eq!(FLANNEL_UDP_PORT, 8285);
/// ```
pub const FLANNEL_UDP_PORT: u16 = 8285;

/// The encapsulation a node uses towards its peers (flannel's `Backend.Type`).
///
/// ```
/// use tweed_overlay::{BackendConfig, UdpConfig};
///
/// // As in a configuration file: `type` names the backend, its fields follow.
/// let udp: BackendConfig = serde_json::from_str(r#"{"type": "udp", "port": 9000}"#)?;
/// assert_eq!(udp, BackendConfig::Udp(UdpConfig { port: 9000 }));
/// let host_gw: BackendConfig = toml::from_str(r#"type = "host-gw""#)?;
/// assert_eq!(host_gw, BackendConfig::HostGw);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum BackendConfig {
    /// VXLAN, as flannel's `flannel.<VNI>` device.
    Vxlan(VxlanConfig),
    /// IP packets inside UDP, as flannel's `udp` backend over `flannel0`.
    Udp(UdpConfig),
    /// No encapsulation: the peer node is the next hop on a shared L2 segment.
    HostGw,
}

/// The `vxlan` backend.
///
/// ```
/// use tweed_overlay::VxlanConfig;
///
/// let vxlan: VxlanConfig = toml::from_str(r#"vtep_mac = "02:00:00:00:00:01"
/// vni = 4096
/// udp_checksum = true"#)?;
/// assert_eq!((vxlan.vni, vxlan.port, vxlan.udp_checksum), (4096, 8472, true));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VxlanConfig {
    /// This node's VTEP MAC (flannel's `VtepMAC`): the inner source MAC of every frame it sends.
    #[serde(with = "mac_serde")]
    pub vtep_mac: MacAddr,
    /// The VNI, 1 by default (flannel's).
    #[serde(default = "default_vni")]
    pub vni: u32,
    /// The UDP destination port, 8472 by default (the Linux and flannel default; IANA's is 4789).
    #[serde(default = "default_vxlan_port")]
    pub port: u16,
    /// Fill the outer UDP checksum (the kernel's `udpcsum`) instead of sending zero (RFC 7348's SHOULD). Off by
    /// default.
    #[serde(default)]
    pub udp_checksum: bool,
    /// The inclusive range the outer UDP source port (a hash of the inner flow) is drawn from; the kernel's
    /// 32768–60999 by default.
    #[serde(default = "default_port_range")]
    pub source_ports: (u16, u16),
}

impl VxlanConfig {
    /// The defaults of flannel with this VTEP MAC: VNI 1, port 8472, no outer UDP checksum, kernel port range.
    ///
    /// ```
    /// use tweed_overlay::VxlanConfig;
    ///
    /// let vxlan = VxlanConfig::new("02:00:00:00:00:01".parse()?);
    /// assert_eq!((vxlan.vni, vxlan.port, vxlan.udp_checksum, vxlan.source_ports), (1, 8472, false, (32768, 60999)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub const fn new(vtep_mac: MacAddr) -> Self {
        Self {
            vtep_mac,
            vni: 1,
            port: tweed_wire::vxlan::LINUX_PORT,
            udp_checksum: false,
            source_ports: KERNEL_PORT_RANGE,
        }
    }
}

/// The `udp` backend.
///
/// ```
/// use tweed_overlay::UdpConfig;
///
/// assert_eq!(toml::from_str::<UdpConfig>("")?, UdpConfig { port: 8285 });
/// assert!(toml::from_str::<UdpConfig>("prot = 8285").is_err()); // a misspelt field is refused
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpConfig {
    /// The UDP port, source and destination (8285 by default, flannel's).
    #[serde(default = "default_udp_port")]
    pub port: u16,
}

impl Default for UdpConfig {
    fn default() -> Self {
        Self { port: FLANNEL_UDP_PORT }
    }
}

const fn default_vni() -> u32 {
    1
}
const fn default_vxlan_port() -> u16 {
    tweed_wire::vxlan::LINUX_PORT
}
const fn default_udp_port() -> u16 {
    FLANNEL_UDP_PORT
}
const fn default_port_range() -> (u16, u16) {
    KERNEL_PORT_RANGE
}
/// Which backend, without its parameters.
///
/// ```
/// use tweed_overlay::{BackendKind, NodeConfig};
///
/// let config = NodeConfig::from_toml_str(r#"
///     pod_subnet = "10.244.1.0/24"
///     underlay = { node_ip = "192.168.0.1", node_mac = "02:00:00:00:01:01" }
///     backend = { type = "udp" }
/// "#)?;
/// assert_eq!(config.backend.kind(), BackendKind::Udp);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// `vxlan`.
    Vxlan,
    /// `udp`.
    Udp,
    /// `host-gw`.
    HostGw,
}

impl BackendConfig {
    /// The backend's kind.
    ///
    /// ```
    /// use tweed_overlay::{BackendConfig, BackendKind, UdpConfig};
    ///
    /// assert_eq!(BackendConfig::Udp(UdpConfig::default()).kind(), BackendKind::Udp);
    /// assert_eq!(BackendConfig::HostGw.kind(), BackendKind::HostGw);
    /// ```
    #[must_use]
    pub const fn kind(&self) -> BackendKind {
        match self {
            Self::Vxlan(_) => BackendKind::Vxlan,
            Self::Udp(_) => BackendKind::Udp,
            Self::HostGw => BackendKind::HostGw,
        }
    }

    /// What the backend adds to an IP packet against the underlay's IP MTU: its encapsulation's
    /// [`overhead`](Encapsulation::overhead) (50 for VXLAN: outer IPv4, UDP, VXLAN, inner Ethernet; 28 for UDP; 0
    /// for host-gw).
    ///
    /// ```
    /// use tweed_overlay::{BackendConfig, UdpConfig, VxlanConfig};
    ///
    /// assert_eq!(BackendConfig::Vxlan(VxlanConfig::new("02:00:00:00:00:01".parse()?)).overhead(), 50);
    /// assert_eq!(BackendConfig::Udp(UdpConfig::default()).overhead(), 28);
    /// assert_eq!(BackendConfig::HostGw.overhead(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn overhead(&self) -> u16 {
        Flannel::from(self).overhead()
    }
}
