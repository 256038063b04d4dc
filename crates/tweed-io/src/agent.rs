//! The node agent's configuration file, and the building of a [`Driver`] from it: a node on real devices.
//!
//! ```toml
//! [node]                       # a tweed_overlay::NodeConfig; pod_ports and socket_port are set by the agent
//! pod_subnet = "10.244.1.0/24"
//! [node.underlay]
//! node_ip = "192.168.0.1"      # the address the underlay socket binds
//! mtu = 1500                   # node_mac may be left out when [underlay].interface is given
//! [node.backend]
//! type = "vxlan"
//! vtep_mac = "02:00:00:00:00:01"
//! [[node.peers]]
//! subnet = "10.244.2.0/24"
//! node_ip = "192.168.0.2"
//! vtep_mac = "02:00:00:00:00:02"
//!
//! [underlay]
//! interface = "eth0"           # host-gw: tweed sends and receives frames on it (AF_PACKET)
//! batching = true              # recvmmsg/sendmmsg; false: one datagram per system call
//! gso = true                   # equal-size datagrams to one peer as one UDP GSO train
//! gro = true                   # and trains from a peer received coalesced (UDP GRO)
//!
//! [agent]                      # optional; the defaults shown
//! batch = 64                   # packets read from one port per round (1 to 256)
//! buffers = 4096               # 2 KiB packet buffers (1 to 262144)
//! stats_interval_s = 0         # counters every this many seconds (0: on SIGUSR1 and at exit; at most 86400)
//! port_security = true         # a pod may send only from its own addresses (given, or learnt from its ARP)
//!
//! [[pods]]
//! tap = "eth0"                 # a TAP created by tweed...
//! netns = "pod1"               # ...inside this network namespace (the pod's eth0)
//! addresses = ["10.244.1.2"]   # the pod's own addresses (port security)
//! [[pods]]
//! interface = "veth-pod2"      # or an existing interface (a veth's host end), attached with AF_PACKET
//!
//! [store]                      # optional: subnet leases and peers from a lease store, as flannel does
//! kind = "file"                # "file" (path = …) or "etcd" (endpoints = […], with the `etcd` feature)
//! path = "/var/lib/tweed/leases.json"
//! ttl_s = 86400                # the lease's TTL, renewed before it runs out
//! subnet_file = "/run/tweed/subnet.env"  # optional: flannel's subnet.env, written and read back on restart
//!
//! [host]                       # optional: the host's own traffic into the overlay
//! tun = "tweed0"               # a TUN with the gateway address, routes to the pod subnets through it
//! ```
//!
//! With a `[store]`, `node.pod_subnet` may be left out: the agent acquires a subnet from the network config in the
//! store (flannel's `Network`, `SubnetLen`, …), keeps it across restarts, and follows the other nodes' leases as
//! its peers.

use std::net::SocketAddrV4;
use std::path::PathBuf;

use serde::Deserialize;
use tweed_overlay::{BackendConfig, Node, NodeConfig, PortAddresses};
use tweed_packet::PortId;

use crate::device::{Device, DeviceKind, DeviceOptions, PacketSocket, interface_mac, netns_path};
use crate::driver::{Driver, DriverConfig, PodPort, Underlay};
use crate::error::Error;
use crate::udp::{UdpOptions, UdpPort};

mod check;
use check::{MAX_OUTPUTS, check_ifname, check_pods, check_range, check_store, pod_mtu};

/// The port number the agent gives the underlay's UDP socket in the node.
pub const SOCKET_PORT: u16 = 65000;

/// The port number the agent gives the host's TUN in the node (see [`HostSpec`]).
pub const HOST_PORT: u16 = 65001;

/// The host's own traffic into the overlay (the agent's `[host]`): a TUN in the agent's network namespace with the
/// pods' gateway address (as a /32) and routes to the overlay through it, as `cni0` and `flannel.1` give a kernel
/// node's host its way to the pods. The host's packets go through the node's router (see
/// `NodeConfig::host_port`), the pods' answers come back through the TUN.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// The TUN's name, e.g. `"tweed0"`.
    pub tun: String,
    /// The subnets routed through it. Left out: the pod subnet and the static peers' subnets, or, with a
    /// `[store]`, its whole `Network`.
    #[serde(default)]
    pub routes: Vec<ipnet::Ipv4Net>,
}

/// A pod's port in the agent's file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodSpec {
    /// Create a TAP device of this name (the pod's `eth0`).
    #[serde(default)]
    pub tap: Option<String>,
    /// Attach to this existing interface instead (AF_PACKET).
    #[serde(default)]
    pub interface: Option<String>,
    /// The network namespace of the TAP or the interface: a name under `/var/run/netns` or a path. `None`: the
    /// agent's own.
    #[serde(default)]
    pub netns: Option<PathBuf>,
    /// The TAP's MTU: by default the node's inner MTU (`NodeConfig::inner_mtu`: the underlay's less the
    /// backend's overhead, 1450 for vxlan over 1500), what the backend carries. A larger one is accepted with a
    /// warning ([`AgentConfig::warnings`]): it works (the node answers "fragmentation needed" to the pod's
    /// larger DF packets to other nodes, and pods on the node reach each other at the larger MTU), but costs the
    /// pod's TCP a round trip per path and its DF-less packets fragments.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The pod's own IPv4 addresses, for port security (see [`AgentSpec::port_security`]): with it on, the node
    /// drops what this port sends from any other source. Each must be a host of the pod subnet, not the gateway,
    /// and belong to one pod only.
    #[serde(default)]
    pub addresses: Vec<std::net::Ipv4Addr>,
    /// Offloads between the pod and tweed (on by default): for a TAP (with a virtio-net header), TCP segments for
    /// the pod are written coalesced into large frames, and the pod's large TCP frames (TSO) and unfinished
    /// checksums are cut and finished by tweed; for an interface (a veth, its offloads on as the kernel makes
    /// it), the large frames and unfinished checksums it hands over are cut and finished (`PACKET_VNET_HDR`).
    /// Off for an interface: its offloads must be off (`ethtool -K … tso off gso off tx off`), or large frames
    /// are read truncated and checksums unfinished.
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

/// Sizes, timing, logging and port security (the agent's `[agent]`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSpec {
    /// The most packets read from one port per round (1 to 256; 64 by default).
    pub batch: usize,
    /// Buffers in the pool (1 to 262,144, 2 KiB each; 4,096 by default; never fewer than the driver needs).
    pub buffers: usize,
    /// Ignored, with a warning ([`AgentConfig::warnings`]): it was the longest wait for input, when the driver
    /// woke that often to run the node's timers; it now sleeps until input or the node's next timer.
    pub poll_ms: Option<u32>,
    /// Print the counters every this many seconds (0: only on SIGUSR1 and at exit; at most 86,400).
    pub stats_interval_s: u64,
    /// Port security (on by default): the node drops what a pod sends from a source other than its own
    /// addresses, as a cloud's port security or the bridge's anti-spoofing rules do: those given in
    /// `[[pods]].addresses`, or, for a pod given none, those it holds in the node's ARP table.
    pub port_security: bool,
}

impl Default for AgentSpec {
    fn default() -> Self {
        let d = DriverConfig::default();
        Self { batch: d.batch, buffers: d.buffers, poll_ms: None, stats_interval_s: 0, port_security: true }
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
    /// flannel's `--subnet-file` (flannel uses `/run/flannel/subnet.env`): the agent writes the network, its subnet
    /// and the pods' MTU there in flannel's format (`FLANNEL_NETWORK=…`, `FLANNEL_SUBNET=…`, `FLANNEL_MTU=…`,
    /// `FLANNEL_IPMASQ=false`, what flannel's CNI plugin reads), and on a restart takes the subnet found there again
    /// when its lease has expired meanwhile and nobody took it.
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

/// The placeholder pod subnet of a file that leaves it to the store (TEST-NET-1, never a real pod subnet).
pub const PENDING_SUBNET: &str = "192.0.2.0/24";

/// The agent's configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    /// The node (with `pod_ports` and `underlay.socket_port` filled in by [`AgentConfig::from_toml_str`]).
    pub node: NodeConfig,
    /// The underlay.
    pub underlay: UnderlaySpec,
    /// The pods, on ports 1, 2, … in this order (see [`AgentConfig::pod_addresses`]).
    pub pods: Vec<PodSpec>,
    /// Sizes and logging.
    pub agent: AgentSpec,
    /// The node section gave no `node_mac`: [`AgentConfig::resolve`] reads `[underlay].interface`'s.
    pub node_mac_from_interface: bool,
    /// The lease store, if any.
    pub store: Option<StoreSpec>,
    /// The host's TUN, if any.
    pub host: Option<HostSpec>,
    /// The node section gave no `pod_subnet`: it comes from a lease ([`PENDING_SUBNET`] until then).
    pub pod_subnet_from_store: bool,
    /// What is accepted but probably not meant (a pod MTU above the inner MTU), for the agent to log.
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    node: toml::Table,
    #[serde(default)]
    underlay: UnderlaySpec,
    #[serde(default)]
    pods: Vec<PodSpec>,
    #[serde(default)]
    agent: AgentSpec,
    #[serde(default)]
    store: Option<StoreSpec>,
    #[serde(default)]
    host: Option<HostSpec>,
}

/// Why a configuration file was refused: what to fix, in which field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl AgentConfig {
    /// Reads the file's text. The node section is a [`NodeConfig`] without `pod_ports` (the agent numbers the
    /// pods) and, when `[underlay].interface` is given, optionally without `underlay.node_mac` (the interface's
    /// MAC is read then: see [`AgentConfig::resolve`]).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let file: File = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        let mut node = file.node;
        if node.contains_key("pod_ports") {
            return Err(ConfigError("node.pod_ports: leave it out, the agent numbers the [[pods]] 1, 2, …".into()));
        }
        let pod_subnet_from_store = !node.contains_key("pod_subnet");
        if pod_subnet_from_store {
            if file.store.is_none() {
                return Err(ConfigError("node.pod_subnet: missing (give it, or a [store] to lease one from)".into()));
            }
            node.insert("pod_subnet".into(), toml::Value::String(PENDING_SUBNET.into()));
        }
        if let Some(store) = &file.store {
            match store.kind {
                StoreKind::File if store.path.is_none() => {
                    return Err(ConfigError("store.path: a file store needs its path".into()));
                }
                StoreKind::Etcd if store.endpoints.is_empty() => {
                    return Err(ConfigError("store.endpoints: an etcd store needs at least one endpoint".into()));
                }
                _ => {}
            }
            check_store(store)?;
        }
        // Port security is the agent's switch (on by default), given to the node by the agent.
        let node_has_port_security = node.contains_key("port_security");
        let n = u16::try_from(file.pods.len()).map_err(|_| ConfigError("too many [[pods]]".into()))?;
        node.insert("pod_ports".into(), toml::Value::Array((1..=n).map(|p| toml::Value::Integer(p.into())).collect()));
        let underlay = node.get_mut("underlay").and_then(toml::Value::as_table_mut).ok_or_else(|| {
            ConfigError("node.underlay: missing (node_ip, and node_mac or [underlay].interface)".into())
        })?;
        if underlay.contains_key("socket_port") {
            return Err(ConfigError("node.underlay.socket_port: leave it out, the agent sets it".into()));
        }
        if node_has_port_security {
            return Err(ConfigError("node.port_security: leave it out, set [agent].port_security".into()));
        }
        let node_mac_from_interface = !underlay.contains_key("node_mac");
        if node_mac_from_interface {
            if file.underlay.interface.is_none() {
                return Err(ConfigError(
                    "node.underlay.node_mac: missing (give it, or [underlay].interface to read it from)".into(),
                ));
            }
            // A placeholder until `resolve` reads the interface's MAC.
            underlay.insert("node_mac".into(), toml::Value::String("02:00:00:00:00:00".into()));
        }
        let mut config: NodeConfig =
            toml::Value::Table(node).try_into().map_err(|e: toml::de::Error| ConfigError(format!("node: {e}")))?;
        if !matches!(config.backend, BackendConfig::HostGw) {
            config.underlay.socket_port = Some(SOCKET_PORT);
        }
        if config.host_port.is_some() {
            return Err(ConfigError("node.host_port: leave it out, a [host] section gives the agent a TUN".into()));
        }
        if let Some(host) = &file.host {
            check_ifname("host.tun", &host.tun)?;
            config.host_port = Some(HOST_PORT);
        }
        for (i, pod) in file.pods.iter().enumerate() {
            match (&pod.tap, &pod.interface) {
                (Some(tap), None) => check_ifname(&format!("pods[{i}].tap"), tap)?,
                (None, Some(_)) => {}
                _ => {
                    return Err(ConfigError(format!(
                        "pods[{i}]: give exactly one of tap = \"…\" or interface = \"…\""
                    )));
                }
            }
        }
        if matches!(config.backend, BackendConfig::HostGw) && file.underlay.interface.is_none() {
            return Err(ConfigError("underlay.interface: host-gw needs the underlay interface".into()));
        }
        config.validate().map_err(|e| ConfigError(format!("node: {e}")))?;
        file.agent.validate()?;
        check_range(
            "node.limits.max_outputs",
            config.limits.max_outputs,
            MAX_OUTPUTS,
            "packets one call of the node may output; the agent reads up to 256 per round",
        )?;
        let mut warnings = Vec::new();
        if let Some(ms) = file.agent.poll_ms {
            warnings.push(format!(
                "agent.poll_ms = {ms} is ignored (remove it): the driver no longer wakes on a fixed tick, it sleeps \
                 until input or the node's next timer"
            ));
        }
        check_pods(&file.pods, &config, !pod_subnet_from_store, &mut warnings)?;
        let agent = Self {
            node: config,
            underlay: file.underlay,
            pods: file.pods,
            agent: file.agent,
            node_mac_from_interface,
            store: file.store,
            host: file.host,
            pod_subnet_from_store,
            warnings,
        };
        // With a leased subnet the pods' addresses are checked once it is known, when the driver is built.
        if !pod_subnet_from_store {
            agent.node_config().validate().map_err(|e| ConfigError(format!("node: {e}")))?;
        }
        Ok(agent)
    }

    /// Whether the node runs with port security ([`AgentSpec::port_security`], on by default). A pod with
    /// `addresses` may send only from those; one without sends only from the addresses it holds in the node's
    /// ARP table (learnt from its own ARP, inside the pod subnet, never another pod's fresh one).
    #[must_use]
    pub const fn port_security(&self) -> bool {
        self.agent.port_security
    }

    /// The node's configuration as the driver builds the node from it: [`AgentConfig::node`] with port security
    /// ([`AgentConfig::port_security`]) and each pod's addresses ([`AgentConfig::pod_addresses`]).
    #[must_use]
    pub fn node_config(&self) -> NodeConfig {
        let mut node = self.node.clone();
        node.port_security = self.port_security();
        node.port_addresses = (1u16..)
            .zip(&self.pods)
            .filter(|(_, pod)| !pod.addresses.is_empty())
            .map(|(port, pod)| PortAddresses { port, ips: pod.addresses.clone() })
            .collect();
        node
    }

    /// Each pod's own addresses, by the node's port number (the pods are ports 1, 2, …), for the node's port
    /// security ([`AgentSpec::port_security`]).
    pub fn pod_addresses(&self) -> impl Iterator<Item = (u16, std::net::Ipv4Addr)> + '_ {
        self.pods.iter().zip(1u16..).flat_map(|(pod, port)| pod.addresses.iter().map(move |&a| (port, a)))
    }

    /// Reads what the file left to the machine: the node MAC from `[underlay].interface` when the node section
    /// gave none.
    ///
    /// # Errors
    /// [`Error::NoSuchInterface`].
    pub fn resolve(&mut self) -> Result<(), Error> {
        if self.node_mac_from_interface
            && let Some(name) = &self.underlay.interface
        {
            self.node.underlay.node_mac = interface_mac(name, None)?;
        }
        Ok(())
    }
}

/// Builds the node and its devices: creates the TAPs (in their namespaces), attaches to the interfaces, binds
/// the underlay socket (vxlan, udp) or attaches to the underlay interface (host-gw). Dropping the driver deletes
/// every TAP it created.
///
/// # Errors
/// The first device or socket that could not be made ([`Error::Exists`], [`Error::Privilege`], …), or the node's
/// configuration error.
pub fn build_driver(config: &AgentConfig) -> Result<Driver, Error> {
    let node = Node::new(config.node_config()).map_err(|e| {
        Error::io("building the node", std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))
    })?;
    let mut pods = Vec::with_capacity(config.pods.len());
    for (i, pod) in config.pods.iter().enumerate() {
        let id = PortId(u16::try_from(i + 1).unwrap_or(u16::MAX));
        let port = if let Some(tap) = &pod.tap {
            // A virtio-net header on each frame, so that TCP segments for the pod are written coalesced.
            let mut o = DeviceOptions::new(tap.clone(), DeviceKind::Tap).vnet_hdr(pod.coalesce).tso(pod.coalesce);
            if let Some(ns) = &pod.netns {
                o = o.netns(ns);
            }
            o = o.mtu(pod_mtu(pod, &config.node));
            PodPort::Tap(Device::create(&o)?)
        } else {
            let name = pod.interface.as_deref().unwrap_or_default();
            let ns = pod.netns.as_deref().map(netns_path);
            // The veth's offloads stay as the pod's runtime left them (on, by default): their large frames and
            // partial checksums are said so in a header, and cut and finished by the driver.
            let port = if pod.coalesce {
                PacketSocket::attach_offloaded(name, ns.as_deref())?
            } else {
                PacketSocket::attach(name, ns.as_deref())?
            };
            PodPort::Packet(port)
        };
        pods.push((id, port));
    }
    let underlay = match &config.node.backend {
        BackendConfig::HostGw => {
            let name = config.underlay.interface.as_deref().unwrap_or_default();
            Underlay::Packet(PacketSocket::attach(name, None)?)
        }
        backend => {
            let port = match backend {
                BackendConfig::Vxlan(v) => v.port,
                BackendConfig::Udp(u) => u.port,
                BackendConfig::HostGw => 0,
            };
            let u = &config.underlay;
            let options = UdpOptions { batching: u.batching, gso: u.gso, gro: u.gro, ..UdpOptions::default() };
            Underlay::Udp(UdpPort::bind(SocketAddrV4::new(config.node.underlay.node_ip, port), options)?)
        }
    };
    let tun = match &config.host {
        Some(host) => Some(host_tun(host, &config.node)?),
        None => None,
    };
    let driver_config = DriverConfig {
        batch: if config.underlay.batching { config.agent.batch } else { 1 },
        buffers: config.agent.buffers,
    };
    Driver::new(node, pods, underlay, tun, driver_config)
}

/// The host's TUN: the inner MTU, the gateway address as a /32, and its routes (see [`HostSpec`]).
fn host_tun(host: &HostSpec, node: &NodeConfig) -> Result<Device, Error> {
    let tun = Device::create(&DeviceOptions::new(host.tun.clone(), DeviceKind::Tun).mtu(u32::from(node.inner_mtu())))?;
    tun.set_ipv4(ipnet::Ipv4Net::from(node.gateway_ip()))?;
    let routes = if host.routes.is_empty() {
        node.pod_subnet.into_iter().chain(node.peers.iter().map(|p| p.subnet)).collect()
    } else {
        host.routes.clone()
    };
    for net in routes {
        tun.add_route(net)?;
    }
    Ok(tun)
}

#[cfg(test)]
mod tests;
