//! What a [`crate::Node`] is made of: its pod subnet and gateway, its pod ports, its underlay, its backend and its
//! peers. Built in Rust with [`NodeBuilder`], or read from TOML or JSON ([`NodeConfig::from_toml_str`],
//! [`NodeConfig::from_json_str`]); both end in the same [`NodeConfig`], which [`NodeConfig::validate`] judges.
//!
//! MAC addresses are written `"02:00:00:00:00:01"` in files; subnets `"10.244.1.0/24"`.

use core::fmt;
use core::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use tweed_packet::PortId;
use tweed_wire::ethernet::MacAddr;

/// The kernel's default local port range (`net.ipv4.ip_local_port_range`), which it draws VXLAN source ports from.
pub const KERNEL_PORT_RANGE: (u16, u16) = (32768, 60999);
/// The range RFC 7348 §5 recommends for VXLAN source ports.
pub const RFC7348_PORT_RANGE: (u16, u16) = (49152, 65535);
/// flannel's `udp` backend port.
pub const FLANNEL_UDP_PORT: u16 = 8285;

/// The encapsulation a node uses towards its peers (flannel's `Backend.Type`).
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

/// A remote node: one per remote pod subnet (one flannel lease).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's pod subnet, e.g. `10.244.2.0/24`.
    pub subnet: Ipv4Net,
    /// The peer's underlay address (its `PublicIP`).
    pub node_ip: Ipv4Addr,
    /// The peer's VTEP MAC (`BackendData.VtepMAC`); required by the `vxlan` backend.
    #[serde(default, with = "opt_mac_serde", skip_serializing_if = "Option::is_none")]
    pub vtep_mac: Option<MacAddr>,
    /// The peer's MAC on the underlay. Required by `host-gw` (the peer is the next hop); for `vxlan` and `udp` it
    /// is the outer destination MAC, and when absent the underlay's `gateway_mac` is used instead, or, when the node
    /// sends through a UDP socket (`underlay.socket_port`), none is needed (the kernel resolves the next hop; the
    /// outer destination MAC in the output frame is then zero).
    #[serde(default, with = "opt_mac_serde", skip_serializing_if = "Option::is_none")]
    pub node_mac: Option<MacAddr>,
}

impl PeerConfig {
    /// A peer with neither MAC given.
    #[must_use]
    pub const fn new(subnet: Ipv4Net, node_ip: Ipv4Addr) -> Self {
        Self { subnet, node_ip, vtep_mac: None, node_mac: None }
    }

    /// With this VTEP MAC.
    #[must_use]
    pub const fn with_vtep_mac(mut self, mac: MacAddr) -> Self {
        self.vtep_mac = Some(mac);
        self
    }

    /// With this underlay MAC.
    #[must_use]
    pub const fn with_node_mac(mut self, mac: MacAddr) -> Self {
        self.node_mac = Some(mac);
        self
    }
}

/// Sizes and rates of a node's tables and of the messages it originates. [`NodeConfig::validate`] refuses any
/// field outside the range its documentation gives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// How many packets may wait, over all addresses, for a local pod's MAC to be resolved by ARP (64; 1–4096).
    pub arp_queue: u16,
    /// How many of them may come from one ingress port: a pod port, or the underlay for all remote pods
    /// (32, half the queue; 1–4096). A packet beyond is dropped
    /// ([`DropReason::ArpQueueFull`](crate::DropReason::ArpQueueFull)), so that one pod sending to absent
    /// addresses cannot keep the others' packets out of the queue.
    pub arp_queue_per_port: u16,
    /// How many addresses the node may be resolving (or have failed to resolve) at once: its neighbour table's
    /// size, the kernel's `gc_thresh3` (256; 1–4096). A packet to a new address when it is full is dropped
    /// ([`DropReason::ArpTableFull`](crate::DropReason::ArpTableFull)).
    pub arp_entries: u16,
    /// How long a packet waits for ARP before it is dropped, in milliseconds (3000; 100–60000).
    pub arp_timeout_ms: u32,
    /// How often the node asks again for an address it is resolving, in milliseconds: the kernel's
    /// `retrans_time_ms` (1000; 10–60000).
    pub arp_retry_ms: u32,
    /// How many requests the node sends for an address before it gives up: the kernel's `mcast_solicit` (3; 1–16).
    pub arp_probes: u8,
    /// How long an address that did not answer stays failed, in milliseconds: packets to it are dropped at once
    /// ([`DropReason::ArpFailed`](crate::DropReason::ArpFailed), with an ICMP host unreachable) and no request
    /// goes out meanwhile (3000; 0–600000).
    pub arp_failed_ms: u32,
    /// ICMP errors per second the node may send about the packets of one source: a pod port for a pod's packets,
    /// the source address for the others (a token bucket per source, RFC 1812 §4.3.2.8, as Linux's per-peer limit)
    /// (100; 0–1000000).
    pub icmp_per_sec: u32,
    /// The depth of each source's bucket (50; 1–1000000).
    pub icmp_burst: u32,
    /// ICMP errors per second the node may send in all, whatever their source (1000; 1–10000000).
    pub icmp_global_per_sec: u32,
    /// The depth of the global bucket (1000; 1–10000000).
    pub icmp_global_burst: u32,
    /// The most peers the node holds (4096; 0–65536).
    pub max_peers: u32,
    /// How many packets one call of [`crate::Node::process`] may output (the inputs plus what it originates): the
    /// capacity a driver gives its [`Outputs`](crate::Outputs) (1024; 1–65536).
    pub max_outputs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            arp_queue: 64,
            arp_queue_per_port: 32,
            arp_entries: 256,
            arp_timeout_ms: 3000,
            arp_retry_ms: 1000,
            arp_probes: 3,
            arp_failed_ms: 3000,
            icmp_per_sec: 100,
            icmp_burst: 50,
            icmp_global_per_sec: 1000,
            icmp_global_burst: 1000,
            max_peers: 4096,
            max_outputs: 1024,
        }
    }
}

impl Limits {
    /// Every field with its value and its inclusive range, in declaration order.
    #[must_use]
    pub fn ranges(&self) -> [(&'static str, u64, u64, u64); 13] {
        [
            ("arp_queue", u64::from(self.arp_queue), 1, 4096),
            ("arp_queue_per_port", u64::from(self.arp_queue_per_port), 1, 4096),
            ("arp_entries", u64::from(self.arp_entries), 1, 4096),
            ("arp_timeout_ms", u64::from(self.arp_timeout_ms), 100, 60_000),
            ("arp_retry_ms", u64::from(self.arp_retry_ms), 10, 60_000),
            ("arp_probes", u64::from(self.arp_probes), 1, 16),
            ("arp_failed_ms", u64::from(self.arp_failed_ms), 0, 600_000),
            ("icmp_per_sec", u64::from(self.icmp_per_sec), 0, 1_000_000),
            ("icmp_burst", u64::from(self.icmp_burst), 1, 1_000_000),
            ("icmp_global_per_sec", u64::from(self.icmp_global_per_sec), 1, 10_000_000),
            ("icmp_global_burst", u64::from(self.icmp_global_burst), 1, 10_000_000),
            ("max_peers", u64::from(self.max_peers), 0, 65_536),
            ("max_outputs", self.max_outputs as u64, 1, 65_536),
        ]
    }

    /// Checks every field against its range.
    ///
    /// # Errors
    /// [`ConfigError::LimitOutOfRange`] for the first field out of its range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value, min, max) in self.ranges() {
            if !(min..=max).contains(&value) {
                return Err(ConfigError::LimitOutOfRange { field, value, min, max });
            }
        }
        Ok(())
    }
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

/// Everything a node is made of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's pod subnet, e.g. `10.244.1.0/24`.
    pub pod_subnet: Ipv4Net,
    /// The pods' gateway address (the bridge's, `cni0`'s); the subnet's first host by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_ip: Option<Ipv4Addr>,
    /// The gateway's MAC; by default `0a:58` followed by the gateway address (the CNI bridge plugin's convention).
    #[serde(default, with = "opt_mac_serde", skip_serializing_if = "Option::is_none")]
    pub gateway_mac: Option<MacAddr>,
    /// The ports pods are attached to (veths, TAPs), as `meta.ingress` numbers them.
    #[serde(default)]
    pub pod_ports: Vec<u16>,
    /// The port number of IP packets from the host (a TUN device, no Ethernet header): the node routes them as a
    /// router would those of a directly attached host, to a local pod or through a peer, without decrementing the
    /// TTL (the host's own packets, as if the node were its kernel). The pods' replies to the host (to the gateway
    /// or node address) leave with [`Verdict::Tun`](crate::Verdict::Tun). `None` (the default): no host input. It
    /// must not be a pod port, the underlay port or the socket port.
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

/// Why a configuration, or a peer change, was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A TOML or JSON file did not parse.
    Parse(String),
    /// The gateway address is not a host of the pod subnet.
    GatewayOutsideSubnet(Ipv4Addr),
    /// A MAC that must be a unicast address is not.
    InvalidMac {
        /// The field.
        field: &'static str,
        /// The address.
        mac: MacAddr,
    },
    /// The VNI does not fit in 24 bits.
    InvalidVni(u32),
    /// The source port range is empty.
    InvalidPortRange(u16, u16),
    /// The underlay MTU is too small to carry anything after encapsulation (576 is the least accepted).
    MtuTooSmall(u16),
    /// A pod port is also the underlay port, or is listed twice, or is out of the bridge's range.
    InvalidPort(u16),
    /// A peer lacks a MAC its backend needs.
    MissingMac {
        /// The peer's subnet.
        subnet: Ipv4Net,
        /// `"vtep_mac"` or `"node_mac"`.
        field: &'static str,
    },
    /// A peer's subnet overlaps the node's own, or another peer's.
    Overlap(Ipv4Net),
    /// Another peer already has this node address.
    DuplicateNodeIp(Ipv4Addr),
    /// No peer has this subnet.
    UnknownPeer(Ipv4Net),
    /// The peer table is full.
    TooManyPeers,
    /// The route table refused a change.
    Route(String),
    /// A field of [`Limits`] is outside its range.
    LimitOutOfRange {
        /// The field, e.g. `"max_outputs"`.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The least accepted.
        min: u64,
        /// The most accepted.
        max: u64,
    },
    /// A pod port's addresses ([`NodeConfig::port_addresses`]) are wrong, or port security is on and a pod port
    /// has none.
    PortAddress {
        /// The port.
        port: u16,
        /// The address at fault, if one is.
        ip: Option<Ipv4Addr>,
        /// What is wrong.
        problem: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(e) => write!(f, "config does not parse: {e}"),
            Self::GatewayOutsideSubnet(ip) => write!(f, "gateway {ip} is not a host of the pod subnet"),
            Self::InvalidMac { field, mac } => write!(f, "{field} {mac} is not a unicast MAC"),
            Self::InvalidVni(v) => write!(f, "vni {v} does not fit in 24 bits"),
            Self::InvalidPortRange(a, b) => write!(f, "source port range {a}-{b} is empty"),
            Self::MtuTooSmall(m) => write!(f, "underlay mtu {m} is below 576"),
            Self::InvalidPort(p) => write!(f, "port {p} is invalid or used twice"),
            Self::MissingMac { subnet, field } => write!(f, "peer {subnet} needs a {field}"),
            Self::Overlap(n) => write!(f, "subnet {n} overlaps another"),
            Self::DuplicateNodeIp(ip) => write!(f, "node ip {ip} belongs to another peer"),
            Self::UnknownPeer(n) => write!(f, "no peer has subnet {n}"),
            Self::TooManyPeers => f.write_str("peer table is full"),
            Self::Route(e) => write!(f, "route table: {e}"),
            Self::LimitOutOfRange { field, value, min, max } => {
                write!(f, "limits.{field} = {value} is out of range {min}..={max}")
            }
            Self::PortAddress { port, ip: Some(ip), problem } => {
                write!(f, "port_addresses: port {port}, {ip}: {problem}")
            }
            Self::PortAddress { port, ip: None, problem } => write!(f, "port_addresses: port {port}: {problem}"),
        }
    }
}

impl core::error::Error for ConfigError {}

/// Which backend, without its parameters.
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
    #[must_use]
    pub const fn kind(&self) -> BackendKind {
        match self {
            Self::Vxlan(_) => BackendKind::Vxlan,
            Self::Udp(_) => BackendKind::Udp,
            Self::HostGw => BackendKind::HostGw,
        }
    }

    /// The bytes the backend adds in front of an IP packet on the underlay, beyond the underlay's own Ethernet
    /// header: 50 − 14 + 14 = 50 for VXLAN (outer IPv4, UDP, VXLAN, inner Ethernet), 28 for UDP, 0 for host-gw.
    #[must_use]
    pub const fn overhead(&self) -> u16 {
        match self {
            Self::Vxlan(_) => 50,
            Self::Udp(_) => 28,
            Self::HostGw => 0,
        }
    }
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

    /// The largest IP packet a pod (or the host) can send to a peer: the underlay MTU minus the backend's overhead
    /// (what flannel sets as the MTU of `flannel.1` or `flannel0`, and writes as `FLANNEL_MTU`).
    #[must_use]
    pub const fn inner_mtu(&self) -> u16 {
        self.underlay.mtu.saturating_sub(self.backend.overhead())
    }

    /// The gateway address: the configured one, or the subnet's first host.
    #[must_use]
    pub fn gateway_ip(&self) -> Ipv4Addr {
        self.gateway_ip.unwrap_or_else(|| Ipv4Addr::from(u32::from(self.pod_subnet.network()).wrapping_add(1)))
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
        let subnet = self.pod_subnet.trunc();
        let gw = self.gateway_ip();
        if !subnet.contains(&gw) || gw == subnet.network() || gw == subnet.broadcast() {
            return Err(ConfigError::GatewayOutsideSubnet(gw));
        }
        check_unicast("gateway_mac", self.gateway_mac())?;
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
        self.limits.validate()?;
        self.validate_port_addresses()
    }

    fn validate_port_addresses(&self) -> Result<(), ConfigError> {
        let subnet = self.pod_subnet.trunc();
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

/// Builds a [`NodeConfig`] (and from it a [`crate::Node`]) in Rust.
///
/// ```
/// use tweed_overlay::{NodeBuilder, PeerConfig, VxlanConfig};
/// use tweed_wire::ethernet::MacAddr;
///
/// let node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, MacAddr::new(2, 0, 0, 0, 1, 1))
///     .vxlan(VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, 1)))
///     .pod_ports([1, 2])
///     .peer(PeerConfig::new("10.244.2.0/24".parse()?, "192.168.0.2".parse()?).with_vtep_mac(MacAddr::new(2, 0, 0, 0, 0, 2)).with_node_mac(MacAddr::new(2, 0, 0, 0, 1, 2)))
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
                pod_subnet,
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

mod mac_serde {
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

mod opt_mac_serde {
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

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
pod_subnet = "10.244.1.0/24"
pod_ports = [1, 2]

[underlay]
node_ip = "192.168.0.1"
node_mac = "02:00:00:00:01:01"
mtu = 1450

[backend]
type = "vxlan"
vtep_mac = "02:00:00:00:00:01"

[[peers]]
subnet = "10.244.2.0/24"
node_ip = "192.168.0.2"
vtep_mac = "02:00:00:00:00:02"
"#;

    #[test]
    fn test_toml_defaults() {
        let c = NodeConfig::from_toml_str(TOML).unwrap();
        assert_eq!(c.gateway_ip(), Ipv4Addr::new(10, 244, 1, 1));
        assert_eq!(c.gateway_mac(), MacAddr::new(0x0a, 0x58, 10, 244, 1, 1));
        assert_eq!(c.underlay.mtu, 1450);
        assert_eq!(c.underlay.port, 0);
        let BackendConfig::Vxlan(v) = &c.backend else { panic!("not vxlan: {:?}", c.backend) };
        assert_eq!((v.vni, v.port, v.udp_checksum, v.source_ports), (1, 8472, false, (32768, 60999)));
        assert_eq!(c.peers[0].vtep_mac, Some(MacAddr::new(2, 0, 0, 0, 0, 2)));
        assert_eq!(c.peers[0].node_mac, None);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn test_json_round_trip_equals_builder() {
        let built = NodeBuilder::new(
            "10.244.1.0/24".parse().unwrap(),
            Ipv4Addr::new(192, 168, 0, 1),
            MacAddr::new(2, 0, 0, 0, 1, 1),
        )
        .vxlan(VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, 1)))
        .pod_ports([1, 2])
        .mtu(1450)
        .peer(
            PeerConfig::new("10.244.2.0/24".parse().unwrap(), Ipv4Addr::new(192, 168, 0, 2))
                .with_vtep_mac(MacAddr::new(2, 0, 0, 0, 0, 2)),
        )
        .into_config();
        assert_eq!(built, NodeConfig::from_toml_str(TOML).unwrap());
        let json = serde_json::to_string(&built).unwrap();
        assert_eq!(NodeConfig::from_json_str(&json).unwrap(), built);
    }

    #[test]
    fn test_udp_and_host_gw_backends() {
        let s = TOML.replace("type = \"vxlan\"\nvtep_mac = \"02:00:00:00:00:01\"", "type = \"udp\"");
        let c = NodeConfig::from_toml_str(&s).unwrap();
        assert_eq!(c.backend, BackendConfig::Udp(UdpConfig { port: 8285 }));
        let s = TOML.replace("type = \"vxlan\"\nvtep_mac = \"02:00:00:00:00:01\"", "type = \"host-gw\"");
        assert_eq!(NodeConfig::from_toml_str(&s).unwrap().backend, BackendConfig::HostGw);
    }

    #[test]
    fn test_port_security_and_limits_from_toml() {
        let s = TOML.replacen(
            "pod_ports = [1, 2]\n",
            "pod_ports = [1, 2]\nport_security = true\n[[port_addresses]]\nport = 1\nips = [\"10.244.1.2\"]\n\
             [[port_addresses]]\nport = 2\nips = [\"10.244.1.3\", \"10.244.1.4\"]\n[limits]\narp_probes = 5\n",
            1,
        );
        let c = NodeConfig::from_toml_str(&s).unwrap();
        assert!(c.port_security);
        assert_eq!(c.port_addresses[1].ips, [Ipv4Addr::new(10, 244, 1, 3), Ipv4Addr::new(10, 244, 1, 4)]);
        assert_eq!((c.limits.arp_probes, c.limits.arp_entries), (5, 256));
        assert_eq!(c.validate(), Ok(()));
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(NodeConfig::from_json_str(&json).unwrap(), c);
        // Off and empty: left out of what is written.
        let plain = NodeConfig::from_toml_str(TOML).unwrap();
        assert!(!serde_json::to_string(&plain).unwrap().contains("port_"));
        let mut bad = c;
        bad.limits.arp_probes = 0;
        let err = bad.validate().unwrap_err();
        assert_eq!(err, ConfigError::LimitOutOfRange { field: "arp_probes", value: 0, min: 1, max: 16 });
        assert_eq!(err.to_string(), "limits.arp_probes = 0 is out of range 1..=16");
        // Every default is within its range.
        for (field, value, min, max) in Limits::default().ranges() {
            assert!((min..=max).contains(&value), "{field}");
        }
    }

    #[test]
    fn test_invalid() {
        assert!(matches!(NodeConfig::from_toml_str("pod_subnet = 3"), Err(ConfigError::Parse(_))));
        let bad_mac = TOML.replace("02:00:00:00:00:02", "02:00:00:00:00");
        assert!(matches!(NodeConfig::from_toml_str(&bad_mac), Err(ConfigError::Parse(_))));
        let mut c = NodeConfig::from_toml_str(TOML).unwrap();
        c.gateway_ip = Some(Ipv4Addr::new(10, 244, 2, 1));
        assert_eq!(c.validate(), Err(ConfigError::GatewayOutsideSubnet(Ipv4Addr::new(10, 244, 2, 1))));
        let mut c = NodeConfig::from_toml_str(TOML).unwrap();
        c.pod_ports.push(0);
        assert_eq!(c.validate(), Err(ConfigError::InvalidPort(0)));
        let mut c = NodeConfig::from_toml_str(TOML).unwrap();
        c.underlay.mtu = 500;
        assert_eq!(c.validate(), Err(ConfigError::MtuTooSmall(500)));
        let mut c = NodeConfig::from_toml_str(TOML).unwrap();
        c.underlay.node_mac = MacAddr::BROADCAST;
        assert!(matches!(c.validate(), Err(ConfigError::InvalidMac { field: "underlay.node_mac", .. })));
        let mut c = NodeConfig::from_toml_str(TOML).unwrap();
        c.backend =
            BackendConfig::Vxlan(VxlanConfig { vni: 1 << 24, ..VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, 1)) });
        assert_eq!(c.validate(), Err(ConfigError::InvalidVni(1 << 24)));
    }
}
