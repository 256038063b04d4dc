//! The agent file's checks that serde's types do not make: what must be there, what the agent sets itself, ranges
//! of sizes, pods' MTUs and addresses, names. Each error names its field.

use core::net::Ipv4Addr;

use ipnet::Ipv4Net;
use tweed_overlay::{BackendConfig, Limits};

use crate::ConfigError;
use crate::config::{build_node, default_gateway};
use crate::file::{AgentFile, AgentSpec, NodeSection, NodeUnderlay, PodSpec, StoreKind, StoreSpec};

/// The ranges of the agent's own sizes, and of the node limits the driver depends on.
pub(crate) const BATCH: (usize, usize) = (1, 256);
pub(crate) const BUFFERS: (usize, usize) = (1, 262_144);
pub(crate) const STATS_INTERVAL_S: (u64, u64) = (0, 86_400);
/// At least one round's reading (256 packets), so that one call of `process` takes it all; at most what a pool
/// of [`BUFFERS`] holds.
pub(crate) const MAX_OUTPUTS: (usize, usize) = (256, 65_536);

/// The most workers an agent runs: each costs a thread, a pool, a TAP queue per pod and a socket, and a machine
/// with more cores than this gains little from more workers of one agent (the kernel's TAP takes 256 queues).
pub const MAX_WORKERS: usize = 64;

/// `value` within `range`, or an error naming `field`, the range and why it matters.
pub(crate) fn check_range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    range: (T, T),
    why: &str,
) -> Result<(), ConfigError> {
    if value < range.0 || value > range.1 {
        return Err(ConfigError(format!("{field}: {value} is out of range {} to {} ({why})", range.0, range.1)));
    }
    Ok(())
}

impl AgentSpec {
    /// Checks every size against its range.
    ///
    /// ```
    /// let spec = tweed_agent::AgentSpec { workers: Some(0), ..Default::default() };
    /// assert!(spec.validate().unwrap_err().0.starts_with("agent.workers: 0 is out of range 1 to 64"));
    /// ```
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field and its range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("agent.batch", self.batch, BATCH, "packets read from one port per round")?;
        check_range("agent.buffers", self.buffers, BUFFERS, "2 KiB packet buffers")?;
        check_range("agent.stats_interval_s", self.stats_interval_s, STATS_INTERVAL_S, "0: no periodic counters")?;
        if let Some(n) = self.workers {
            check_range("agent.workers", n, (1, MAX_WORKERS), "threads, each with its own queues and sockets")?;
        }
        Ok(())
    }
}

/// A lease's TTL in seconds (tests use a few seconds), at most a year.
const STORE_TTL_S: (u64, u64) = (1, 31_536_000);
/// How often the store's changes are read, in milliseconds.
const STORE_POLL_MS: (u64, u64) = (10, 60_000);

/// Checks the `[store]`: what its kind needs, its sizes and prefix.
fn check_store(store: &StoreSpec) -> Result<(), ConfigError> {
    match store.kind {
        StoreKind::File if store.path.is_none() => {
            return Err(ConfigError("store.path: a file store needs its path".into()));
        }
        StoreKind::Etcd if store.endpoints.is_empty() => {
            return Err(ConfigError("store.endpoints: an etcd store needs at least one endpoint".into()));
        }
        _ => {}
    }
    check_range("store.ttl_s", store.ttl_s, STORE_TTL_S, "the lease's lifetime; it is renewed before it ends")?;
    check_range("store.poll_ms", store.poll_ms, STORE_POLL_MS, "how often the store's changes are read")?;
    if !store.prefix.starts_with('/') || store.prefix.len() < 2 || store.prefix.ends_with('/') {
        return Err(ConfigError(format!(
            "store.prefix: {:?} is not a key prefix (starts with '/', does not end with one, e.g. \
             \"/coreos.com/network\")",
            store.prefix
        )));
    }
    Ok(())
}

/// The most addresses one pod may have (the node's limit per port).
const MAX_POD_ADDRESSES: usize = tweed_overlay::MAX_PORT_ADDRESSES;

/// The warning for a pod MTU above the node's inner MTU, if it is.
fn mtu_warning(i: usize, mtu: u32, inner: u32) -> Option<String> {
    (mtu > inner).then(|| {
        format!(
            "pods[{i}].mtu: {mtu} is above the node's inner MTU {inner} (what the backend carries): the pod's \
             larger packets to other nodes are answered \"fragmentation needed\" (DF) or fragmented, which costs \
             a round trip or fragments; leave it out for the inner MTU"
        )
    })
}

/// The pods' MTUs (68 to 65,535; above the node's inner MTU a warning, pushed on `warnings`) and addresses
/// (hosts of the pod subnet, not the gateway, each on one pod; the subnet is checked only when it is known).
pub(crate) fn check_pods(
    pods: &[PodSpec],
    subnet: Option<Ipv4Net>,
    gateway: Option<Ipv4Addr>,
    inner: u32,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for (i, pod) in pods.iter().enumerate() {
        match (&pod.tap, &pod.interface) {
            (Some(tap), None) => check_ifname(&format!("pods[{i}].tap"), tap)?,
            (None, Some(name)) => check_ifname(&format!("pods[{i}].interface"), name)?,
            _ => return Err(ConfigError(format!("pods[{i}]: give exactly one of tap = \"…\" or interface = \"…\""))),
        }
        if let Some(mtu) = pod.mtu {
            check_range(&format!("pods[{i}].mtu"), mtu, (68, 65_535), "an IPv4 interface's MTU")?;
            if let Some(w) = mtu_warning(i, mtu, inner) {
                warnings.push(w);
            }
        }
        let field = format!("pods[{i}].addresses");
        if pod.addresses.len() > MAX_POD_ADDRESSES {
            return Err(ConfigError(format!("{field}: at most {MAX_POD_ADDRESSES} addresses per pod")));
        }
        for &a in &pod.addresses {
            if let Some(subnet) = subnet.map(|s| s.trunc())
                && (!subnet.contains(&a) || a == subnet.network() || a == subnet.broadcast())
            {
                return Err(ConfigError(format!("{field}: {a} is not a host of the pod subnet {subnet}")));
            }
            if gateway == Some(a) {
                return Err(ConfigError(format!("{field}: {a} is the gateway's address")));
            }
            if !seen.insert(a) {
                return Err(ConfigError(format!("{field}: {a} is given to another pod already")));
            }
        }
    }
    Ok(())
}

/// The longest interface name the kernel takes (`IFNAMSIZ` less its NUL).
const MAX_IFNAME: usize = 15;

/// A device name the kernel takes (1 to 15 bytes, no `/`, whitespace or NUL), or an error naming `field`.
pub(crate) fn check_ifname(field: &str, name: &str) -> Result<(), ConfigError> {
    let ok =
        (1..=MAX_IFNAME).contains(&name.len()) && !name.bytes().any(|b| b == b'/' || b == 0 || b.is_ascii_whitespace());
    if !ok {
        return Err(ConfigError(format!(
            "{field}: {name:?} is not an interface name (1 to {MAX_IFNAME} bytes, no '/' or spaces)"
        )));
    }
    Ok(())
}

/// The parts of `[node]` the agent cannot do without.
pub(crate) struct NodeParts<'a> {
    pub(crate) node: &'a NodeSection,
    pub(crate) underlay: &'a NodeUnderlay,
    pub(crate) node_ip: Ipv4Addr,
    pub(crate) backend: &'a BackendConfig,
}

impl NodeParts<'_> {
    /// The underlay MTU (1500 by default, as the node's).
    pub(crate) fn mtu(&self) -> u16 {
        self.underlay.mtu.unwrap_or(1500)
    }

    /// What the backend carries: the underlay MTU less its overhead.
    pub(crate) fn inner_mtu(&self) -> u16 {
        self.mtu().saturating_sub(self.backend.overhead())
    }
}

impl AgentFile {
    /// `[node]`'s required parts, or the first one missing, named.
    pub(crate) fn parts(&self) -> Result<NodeParts<'_>, ConfigError> {
        let node = self.node.as_ref().ok_or_else(|| ConfigError("node: missing (the [node] section)".into()))?;
        let underlay = node.underlay.as_ref().ok_or_else(|| {
            ConfigError("node.underlay: missing (node_ip, and node_mac or [underlay].interface)".into())
        })?;
        let node_ip = underlay.node_ip.ok_or_else(|| ConfigError("node.underlay.node_ip: missing".into()))?;
        let backend = node
            .backend
            .as_ref()
            .ok_or_else(|| ConfigError("node.backend: missing (type = \"vxlan\", \"udp\" or \"host-gw\")".into()))?;
        Ok(NodeParts { node, underlay, node_ip, backend })
    }

    /// Checks what the file alone can say, each error naming its field; what needs the machine (the underlay
    /// interface's MAC, the cores, the devices) or the lease is checked when the file is resolved
    /// ([`crate::AgentConfig::resolve`]). Returns what is accepted but probably not meant, for the agent to log.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field.
    pub fn check(&self) -> Result<Vec<String>, ConfigError> {
        let parts = self.parts()?;
        let node = parts.node;
        let refused = [
            (node.pod_ports.is_some(), "node.pod_ports: leave it out, the agent numbers the [[pods]] 1, 2, …"),
            (node.host_port.is_some(), "node.host_port: leave it out, a [host] section gives the agent a TUN"),
            (node.port_security.is_some(), "node.port_security: leave it out, set [agent].port_security"),
            (node.port_addresses.is_some(), "node.port_addresses: leave it out, give [[pods]].addresses"),
            (node.ip_ports.is_some(), "node.ip_ports: leave it out, the agent drives pods and the host's TUN only"),
            (node.routes.is_some(), "node.routes: leave it out, give [host].routes"),
            (parts.underlay.socket_port.is_some(), "node.underlay.socket_port: leave it out, the agent sets it"),
            (parts.underlay.port.is_some(), "node.underlay.port: leave it out, the agent sets it"),
        ];
        if let Some((_, message)) = refused.iter().find(|(given, _)| *given) {
            return Err(ConfigError((*message).into()));
        }
        if node.pod_subnet.is_none() && self.store.is_none() {
            return Err(ConfigError("node.pod_subnet: missing (give it, or a [store] to lease one from)".into()));
        }
        if let Some(store) = &self.store {
            check_store(store)?;
        }
        if parts.underlay.node_mac.is_none() && self.underlay.interface.is_none() {
            return Err(ConfigError(
                "node.underlay.node_mac: missing (give it, or [underlay].interface to read it from)".into(),
            ));
        }
        if let Some(name) = &self.underlay.interface {
            check_ifname("underlay.interface", name)?;
        }
        if matches!(parts.backend, BackendConfig::HostGw) && self.underlay.interface.is_none() {
            return Err(ConfigError("underlay.interface: host-gw needs the underlay interface".into()));
        }
        if let Some(host) = &self.host {
            check_ifname("host.tun", &host.tun)?;
        }
        self.agent.validate()?;
        let max_outputs = node.limits.as_ref().map_or_else(|| Limits::default().max_outputs, |l| l.max_outputs);
        check_range(
            "node.limits.max_outputs",
            max_outputs,
            MAX_OUTPUTS,
            "packets one call of the node may output; the agent reads up to 256 per round",
        )?;
        let mut warnings = Vec::new();
        if let Some(ms) = self.agent.poll_ms {
            warnings.push(format!(
                "agent.poll_ms = {ms} is ignored (remove it): the driver no longer wakes on a fixed tick, it sleeps \
                 until input or the node's next timer"
            ));
        }
        let gateway = node.gateway_ip.or_else(|| node.pod_subnet.map(default_gateway));
        let inner = u32::from(parts.inner_mtu());
        check_pods(&self.pods, node.pod_subnet, gateway, inner, &mut warnings)?;
        crate::config::PortPlan::new(self.pods.len())?;
        // The whole node, when the file alone makes it (its MAC given, its subnet not leased).
        if let (Some(subnet), Some(mac)) = (node.pod_subnet, parts.underlay.node_mac) {
            let plan = crate::config::PortPlan::new(self.pods.len())?;
            let config = build_node(self, &parts, subnet, mac, &plan);
            config.validate().map_err(|e| ConfigError(format!("node: {e}")))?;
        }
        Ok(warnings)
    }
}
