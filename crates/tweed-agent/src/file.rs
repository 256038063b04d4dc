//! The agent's file as serde reads it: every field optional, nothing filled in. [`AgentFile::check`] judges what
//! the file alone can say; [`crate::AgentConfig::resolve`] completes it against the host and the lease.

use core::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::{Deserialize, Deserializer};
use tweed_overlay::{BackendConfig, Limits, PeerConfig};
use tweed_wire::ethernet::MacAddr;

use crate::ConfigError;

/// The agent's file: the sections of the README's "Running the agent", each optional to serde; what must be
/// there is said by [`AgentFile::check`], naming the field.
///
/// ```
/// let file = tweed_agent::AgentFile::from_toml_str(r#"
///     [node]
///     pod_subnet = "10.244.1.0/24"
///     [node.underlay]
///     node_ip = "192.168.0.1"
///     node_mac = "02:00:00:00:01:01"
///     [node.backend]
///     type = "vxlan"
///     vtep_mac = "02:00:00:00:00:01"
///     [[pods]]
///     tap = "eth0"
///     [agent]
///     workers = 2
/// "#)?;
/// assert_eq!((file.pods.len(), file.agent.workers), (1, Some(2)));
/// assert!(file.check()?.is_empty(), "no warnings");
/// # Ok::<(), tweed_agent::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentFile {
    /// `[node]`: the node, less what the agent sets (its ports, port security).
    #[serde(default)]
    pub node: Option<NodeSection>,
    /// `[underlay]`: the underlay's interface and system-call options.
    #[serde(default)]
    pub underlay: UnderlaySpec,
    /// `[[pods]]`: the pods, on ports 1, 2, … in this order.
    #[serde(default)]
    pub pods: Vec<PodSpec>,
    /// `[agent]`: sizes, workers, logging, port security.
    #[serde(default)]
    pub agent: AgentSpec,
    /// `[store]`: subnet leases and peers from a lease store.
    #[serde(default)]
    pub store: Option<StoreSpec>,
    /// `[host]`: the host's own traffic into the overlay through a TUN.
    #[serde(default)]
    pub host: Option<HostSpec>,
}

impl AgentFile {
    /// Reads the file's text (serde only: [`AgentFile::check`] judges it).
    ///
    /// # Errors
    /// A [`ConfigError`] with the parser's message, which names the line and the field.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(e.to_string()))
    }
}

/// A field the agent sets itself: read only to be refused by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentOwned;

impl<'de> Deserialize<'de> for AgentOwned {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Self)
    }
}

fn opt_mac<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MacAddr>, D::Error> {
    let text = Option::<String>::deserialize(d)?;
    text.map(|t| t.parse().map_err(|e| serde::de::Error::custom(format!("{t:?}: {e}")))).transpose()
}

/// `[node]`: a `tweed_overlay::NodeConfig` less what the agent sets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NodeSection {
    /// The pod subnet; left out with a `[store]`, which leases one.
    pub pod_subnet: Option<Ipv4Net>,
    /// The pods' gateway address (the subnet's first host by default).
    pub gateway_ip: Option<Ipv4Addr>,
    /// The gateway's MAC (`0a:58` and the gateway address by default).
    #[serde(default, deserialize_with = "opt_mac")]
    pub gateway_mac: Option<MacAddr>,
    /// `[node.underlay]`.
    pub underlay: Option<NodeUnderlay>,
    /// `[node.backend]`: vxlan, udp or host-gw, as `tweed_overlay::BackendConfig` reads it.
    pub backend: Option<BackendConfig>,
    /// `[[node.peers]]`: static peers.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// `[node.limits]`: table sizes and rates.
    pub limits: Option<Limits>,
    /// Refused: the agent numbers the pods.
    pub pod_ports: Option<AgentOwned>,
    /// Refused: a `[host]` section gives the agent a TUN.
    pub host_port: Option<AgentOwned>,
    /// Refused: `[agent].port_security` is the switch.
    pub port_security: Option<AgentOwned>,
    /// Refused: `[[pods]].addresses` gives them.
    pub port_addresses: Option<AgentOwned>,
    /// Refused: the agent drives no IP ports but the host's TUN.
    pub ip_ports: Option<AgentOwned>,
    /// Refused: `[host].routes` are the routes to the TUN.
    pub routes: Option<AgentOwned>,
}

/// `[node.underlay]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NodeUnderlay {
    /// The node's address on the underlay; the underlay socket binds it.
    pub node_ip: Option<Ipv4Addr>,
    /// The node's MAC on the underlay; left out, `[underlay].interface`'s.
    #[serde(default, deserialize_with = "opt_mac")]
    pub node_mac: Option<MacAddr>,
    /// The underlay MTU (1500 by default).
    pub mtu: Option<u16>,
    /// The underlay router's MAC, for peers in another L2 segment.
    #[serde(default, deserialize_with = "opt_mac")]
    pub gateway_mac: Option<MacAddr>,
    /// Refused: the agent's port plan numbers the underlay.
    pub port: Option<AgentOwned>,
    /// Refused: the agent's port plan numbers the underlay socket.
    pub socket_port: Option<AgentOwned>,
}

/// The host's own traffic into the overlay (the agent's `[host]`): a TUN in the agent's network namespace with the
/// pods' gateway address (as a /32) and routes to the overlay through it, as `cni0` and `flannel.1` give a kernel
/// node's host its way to the pods.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// The TUN's name, e.g. `"tweed0"`.
    pub tun: String,
    /// The subnets routed through it. Left out: the pod subnet and the static peers' subnets, or, with a
    /// `[store]`, its whole `Network`.
    #[serde(default)]
    pub routes: Vec<Ipv4Net>,
}

/// A pod's port in the agent's file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodSpec {
    /// Create a TAP device of this name (the pod's `eth0`), one queue per worker.
    #[serde(default)]
    pub tap: Option<String>,
    /// Attach to this existing interface instead (AF_PACKET).
    #[serde(default)]
    pub interface: Option<String>,
    /// The network namespace of the TAP or the interface: a name under `/var/run/netns` or a path. `None`: the
    /// agent's own.
    #[serde(default)]
    pub netns: Option<PathBuf>,
    /// The TAP's MTU: by default the node's inner MTU (the underlay's less the backend's overhead, 1450 for vxlan
    /// over 1500). A larger one is accepted with a warning: the node answers "fragmentation needed" to the pod's
    /// larger DF packets to other nodes, which costs the pod's TCP a round trip per path.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The pod's own IPv4 addresses, for port security: each a host of the pod subnet, not the gateway, on one
    /// pod only.
    #[serde(default)]
    pub addresses: Vec<Ipv4Addr>,
    /// Offloads between the pod and tweed (on by default): TSO/GRO (TCP; UDP too on Linux 6.2) behind a
    /// virtio-net header for a TAP, the veth's large frames and partial checksums for an interface (whose
    /// offloads must be off when this is off).
    #[serde(default = "yes")]
    pub coalesce: bool,
}

/// The underlay section of the agent's file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnderlaySpec {
    /// The underlay interface: host-gw sends and receives frames on it; its MAC is the node's `node_mac` when the
    /// node section gives none.
    #[serde(default)]
    pub interface: Option<String>,
    /// Batch system calls (on by default).
    #[serde(default = "yes")]
    pub batching: bool,
    /// Send runs of equal-size datagrams to one peer as UDP GSO trains (on by default, with batching).
    #[serde(default = "yes")]
    pub gso: bool,
    /// Take trains of datagrams coalesced by the kernel's UDP GRO (on by default, with batching).
    #[serde(default = "yes")]
    pub gro: bool,
}

impl Default for UnderlaySpec {
    fn default() -> Self {
        Self { interface: None, batching: true, gso: true, gro: true }
    }
}

const fn yes() -> bool {
    true
}

/// Sizes, workers, timing, logging and port security (the agent's `[agent]`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSpec {
    /// The most packets read from one port per round (1 to 256; 64 by default).
    pub batch: usize,
    /// Buffers in each worker's pool (1 to 262,144, 2 KiB each; 4,096 by default; never fewer than a driver
    /// needs).
    pub buffers: usize,
    /// Workers: threads, each with its own node, pool, TAP queue per pod and underlay socket (1 to
    /// [`crate::MAX_WORKERS`]; by default the number of cores). Ports read with AF_PACKET are shared in a fanout
    /// group (Linux 6.2 and later; before, one worker runs).
    pub workers: Option<usize>,
    /// Ignored, with a warning: it was the longest wait for input; the driver now sleeps until input or the
    /// node's next timer.
    pub poll_ms: Option<u32>,
    /// Print the counters every this many seconds (0: only on SIGUSR1 and at exit; at most 86,400).
    pub stats_interval_s: u64,
    /// Port security (on by default): the node drops what a pod sends from a source other than its own
    /// addresses: those given in `[[pods]].addresses`, or, for a pod given none, those it holds in the node's ARP
    /// table.
    pub port_security: bool,
}

impl Default for AgentSpec {
    fn default() -> Self {
        Self { batch: 64, buffers: 4096, workers: None, poll_ms: None, stats_interval_s: 0, port_security: true }
    }
}

/// Where subnet leases live (the agent's `[store]`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSpec {
    /// `"file"` or `"etcd"`.
    pub kind: StoreKind,
    /// The file store's path.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The etcd endpoints, e.g. `["http://127.0.0.1:2379"]`.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// The key prefix (flannel's `/coreos.com/network` by default).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// The lease's TTL in seconds (24 h by default, as flannel's).
    #[serde(default = "default_ttl")]
    pub ttl_s: u64,
    /// How often the agent reads the store's changes, in milliseconds.
    #[serde(default = "default_poll")]
    pub poll_ms: u64,
    /// flannel's network config (JSON, e.g. `{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}`),
    /// written to the store when it holds none yet; a store that holds one keeps its own.
    #[serde(default)]
    pub network: Option<String>,
    /// flannel's `--subnet-file`: the agent writes the network, its subnet and the pods' MTU there in flannel's
    /// format, and on a restart takes the subnet found there again when its lease has expired meanwhile and nobody
    /// took it.
    #[serde(default)]
    pub subnet_file: Option<PathBuf>,
}

/// A kind of lease store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// A JSON file on this machine (a single host or a static cluster sharing a file).
    File,
    /// An etcd cluster, in flannel's key layout.
    Etcd,
}

fn default_prefix() -> String {
    "/coreos.com/network".to_owned()
}

const fn default_ttl() -> u64 {
    24 * 3600
}

const fn default_poll() -> u64 {
    500
}
