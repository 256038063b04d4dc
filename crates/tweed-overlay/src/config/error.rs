//! Why a configuration, or a peer change, was refused.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;
use tweed_wire::ethernet::MacAddr;

/// Why a configuration, or a peer change, was refused.
///
/// ```
/// use tweed_overlay::{ConfigError, NodeBuilder, PeerConfig};
///
/// let mut node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
///     .build()?;
/// let err = node.add_peer(PeerConfig::new("10.244.1.128/25".parse()?, [192, 168, 0, 2])).unwrap_err();
/// assert_eq!(err, ConfigError::Overlap("10.244.1.128/25".parse()?));
/// assert_eq!(err.to_string(), "subnet 10.244.1.128/25 overlaps another");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    DuplicateNodeIp(IpAddr),
    /// A peer's node address is IPv6, which the data path does not carry yet.
    Ipv6Unsupported(IpAddr),
    /// No peer has this subnet.
    UnknownPeer(Ipv4Net),
    /// A worker of a shared [`Control`](crate::Control) was asked to change peers: only the control does.
    NotOwner,
    /// The peer table is full.
    TooManyPeers,
    /// The route table refused a change.
    Route(String),
    /// A field of [`Limits`](super::Limits) is outside its range.
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
    /// A pod port's addresses ([`NodeConfig::port_addresses`](super::NodeConfig::port_addresses)) are wrong, or
    /// port security is on and a pod port has none.
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
            Self::Ipv6Unsupported(ip) => write!(f, "node ip {ip}: IPv6 underlays are not supported yet"),
            Self::UnknownPeer(n) => write!(f, "no peer has subnet {n}"),
            Self::NotOwner => f.write_str("this node shares its control: change peers through the control"),
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
