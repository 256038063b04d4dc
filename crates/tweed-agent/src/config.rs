//! The agent's complete configuration: the file ([`AgentFile`]) resolved against the host ([`Host`]: interfaces'
//! MACs, cores, devices) and the lease ([`Leased`]), with every port numbered by a [`PortPlan`].

use core::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;
use tweed_control::LeaseAttrs;
use tweed_overlay::{BackendConfig, NodeBuilder, NodeConfig};
use tweed_packet::PortId;
use tweed_wire::ethernet::MacAddr;

use crate::ConfigError;
use crate::check::{MAX_WORKERS, NodeParts, check_pods};
use crate::file::{AgentFile, HostSpec, PodSpec, StoreSpec, UnderlaySpec};

/// How the agent numbers the node's ports: the pods 1 to n in the file's order, then the underlay (its socket, or
/// its interface for host-gw), then the host's TUN.
///
/// ```
/// let plan = tweed_agent::PortPlan::new(2)?;
/// let pods: Vec<u16> = plan.pods().map(|p| p.0).collect();
/// assert_eq!((pods, plan.underlay().0, plan.host().0), (vec![1, 2], 3, 4));
/// # Ok::<(), tweed_agent::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortPlan {
    pods: u16,
}

impl PortPlan {
    /// The plan for `pods` pods.
    ///
    /// # Errors
    /// More pods than port numbers (65,533).
    pub fn new(pods: usize) -> Result<Self, ConfigError> {
        u16::try_from(pods)
            .ok()
            .filter(|&n| n <= u16::MAX - 2)
            .map(|pods| Self { pods })
            .ok_or_else(|| ConfigError(format!("pods: {pods} [[pods]] are more than the node has port numbers for")))
    }

    /// The pods' ports, 1 to n.
    pub fn pods(&self) -> impl Iterator<Item = PortId> + use<> {
        (1..=self.pods).map(PortId)
    }

    /// The port of the pod at `index` in the file (from 0).
    #[must_use]
    pub fn pod(&self, index: usize) -> Option<PortId> {
        u16::try_from(index).ok().filter(|&i| i < self.pods).map(|i| PortId(i + 1))
    }

    /// The underlay's port: its UDP socket (vxlan, udp) or its interface (host-gw).
    #[must_use]
    pub const fn underlay(&self) -> PortId {
        PortId(self.pods + 1)
    }

    /// The host's TUN.
    #[must_use]
    pub const fn host(&self) -> PortId {
        PortId(self.pods + 2)
    }
}

/// What the agent asks of the machine it runs on.
pub trait Host {
    /// The MAC of the interface `name` in the agent's network namespace.
    ///
    /// # Errors
    /// Why it cannot be read (no such interface).
    fn interface_mac(&self, name: &str) -> Result<MacAddr, String>;

    /// How many workers can run at once: the cores the agent may use.
    fn cores(&self) -> usize;

    /// Whether ports read with AF_PACKET (`interface = …` pods, host-gw's underlay) can be shared by several
    /// workers with each flow kept on one (a fanout group). Without it such an agent runs one worker. No by
    /// default.
    fn packet_fanout(&self) -> bool {
        false
    }
}

/// The machine the agent runs on.
#[cfg(target_os = "linux")]
#[derive(Clone, Copy, Debug, Default)]
pub struct System;

#[cfg(target_os = "linux")]
impl Host for System {
    fn interface_mac(&self, name: &str) -> Result<MacAddr, String> {
        tweed_io::interface_mac(name, None).map_err(|e| e.to_string())
    }

    fn cores(&self) -> usize {
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    }

    /// Linux 6.2 or later: a fanout group that ignores outgoing frames itself (`tweed_io::PacketSocket::attach_group`).
    fn packet_fanout(&self) -> bool {
        std::fs::read_to_string("/proc/sys/kernel/osrelease").is_ok_and(|r| kernel_at_least(&r, (6, 2)))
    }
}

/// Whether a kernel release (`6.8.0-45-generic`) is `want` or later.
#[cfg(target_os = "linux")]
fn kernel_at_least(release: &str, want: (u32, u32)) -> bool {
    let mut parts = release.trim().split(['.', '-']).map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= want,
        _ => false,
    }
}

#[cfg(all(test, target_os = "linux"))]
#[test]
fn kernel_releases() {
    for (release, want) in [
        ("6.2.0", true),
        ("6.8.0-45-generic\n", true),
        ("10.0", true),
        ("6.1.99", false),
        ("5.15.0", false),
        ("x", false),
    ] {
        assert_eq!(kernel_at_least(release, (6, 2)), want, "{release}");
    }
}

/// What the lease store gave: this node's subnet in the cluster's network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leased {
    /// The node's pod subnet.
    pub subnet: Ipv4Net,
    /// The cluster's network (flannel's `Network`).
    pub network: Ipv4Net,
}

/// The host's TUN, resolved: its routes given or defaulted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTun {
    /// The TUN's name.
    pub tun: String,
    /// The subnets routed through it: `[host].routes`, or the lease's network, or the pod subnet and the static
    /// peers' subnets.
    pub routes: Vec<Ipv4Net>,
}

/// The agent's complete configuration: nothing left to fill in, every port numbered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentConfig {
    /// The node: its pod subnet (given or leased), node MAC (given or the interface's), pod ports, underlay
    /// socket or port, host port, port security and pods' addresses.
    pub node: NodeConfig,
    /// How the ports are numbered.
    pub ports: PortPlan,
    /// The pods, on [`PortPlan::pods`] in this order.
    pub pods: Vec<PodSpec>,
    /// The underlay's interface and system-call options.
    pub underlay: UnderlaySpec,
    /// The host's TUN, if any.
    pub host: Option<HostTun>,
    /// Workers: threads with a node, pool, TAP queue per pod and underlay socket each.
    pub workers: usize,
    /// The most packets read from one port per round (1 when batching is off).
    pub batch: usize,
    /// Buffers in each worker's pool.
    pub buffers: usize,
    /// How often the counters are logged (`None`: on request and at exit only).
    pub stats_interval: Option<Duration>,
    /// The lease store, if any.
    pub store: Option<StoreSpec>,
    /// What is accepted but probably not meant, for the agent to log.
    pub warnings: Vec<String>,
}

/// The gateway of a pod subnet when none is given: its first host.
pub(crate) fn default_gateway(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.trunc().network()).wrapping_add(1))
}

/// The node of the file, with its subnet, MAC and ports.
pub(crate) fn build_node(
    file: &AgentFile,
    parts: &NodeParts<'_>,
    subnet: Ipv4Net,
    mac: MacAddr,
    plan: &PortPlan,
) -> NodeConfig {
    let mut b = NodeBuilder::new(subnet, parts.node_ip, mac)
        .backend(parts.backend.clone())
        .mtu(parts.mtu())
        .pod_ports(plan.pods().map(|p| p.0))
        .port_security(file.agent.port_security);
    b = if matches!(parts.backend, BackendConfig::HostGw) {
        b.underlay_port(plan.underlay())
    } else {
        b.socket_port(plan.underlay())
    };
    if file.host.is_some() {
        b = b.host_port(plan.host());
    }
    if let Some(mac) = parts.underlay.gateway_mac {
        b = b.underlay_gateway_mac(mac);
    }
    if let Some(limits) = &parts.node.limits {
        b = b.limits(limits.clone());
    }
    for (port, pod) in plan.pods().zip(&file.pods) {
        if !pod.addresses.is_empty() {
            b = b.port_addresses(port.0, pod.addresses.iter().copied());
        }
    }
    for peer in &parts.node.peers {
        b = b.peer(peer.clone());
    }
    let mut config = b.into_config();
    config.gateway_ip = parts.node.gateway_ip;
    config.gateway_mac = parts.node.gateway_mac;
    config
}

impl AgentFile {
    /// The node's MAC on the underlay: the file's, or `[underlay].interface`'s.
    fn node_mac(&self, parts: &NodeParts<'_>, host: &impl Host) -> Result<MacAddr, ConfigError> {
        match (parts.underlay.node_mac, &self.underlay.interface) {
            (Some(mac), _) => Ok(mac),
            (None, Some(name)) => host
                .interface_mac(name)
                .map_err(|e| ConfigError(format!("underlay.interface: cannot read {name}'s MAC: {e}"))),
            (None, None) => Err(ConfigError("node.underlay.node_mac: missing".into())),
        }
    }

    /// What this node writes in its lease (its underlay address, backend, VTEP or node MAC), before it has a
    /// subnet: the lease is acquired before the node is built.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field (see [`AgentFile::check`]), or the interface's MAC unreadable.
    pub fn lease_attrs(&self, host: &impl Host) -> Result<LeaseAttrs, ConfigError> {
        let parts = self.parts()?;
        let mac = self.node_mac(&parts, host)?;
        // The node's underlay side alone: what a lease says of a node.
        let underlay = NodeBuilder::routed(parts.node_ip, mac).backend(parts.backend.clone()).into_config();
        Ok(tweed_control::lease_attrs(&underlay))
    }

    /// What the backend carries over the file's underlay MTU: the pods' MTU.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the missing field.
    pub fn inner_mtu(&self) -> Result<u16, ConfigError> {
        Ok(self.parts()?.inner_mtu())
    }
}

impl AgentConfig {
    /// The file completed: checked ([`AgentFile::check`]), its node MAC read from the host when not given, its
    /// pod subnet from the lease when it leaves it to the store, the workers decided (given, or the host's cores;
    /// one when a port is read with AF_PACKET and the host cannot share it), every port numbered.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field: the file's, a lease where the file gives a subnet or none where it
    /// leaves it out, an interface whose MAC cannot be read, the node's configuration refused.
    pub fn resolve(file: &AgentFile, host: &impl Host, lease: Option<&Leased>) -> Result<Self, ConfigError> {
        let mut warnings = file.check()?;
        let parts = file.parts()?;
        let subnet = match (parts.node.pod_subnet, lease) {
            (Some(subnet), None) => subnet,
            (None, Some(lease)) => lease.subnet,
            (Some(_), Some(_)) => {
                return Err(ConfigError("node.pod_subnet: leave it out with a [store], which leases one".into()));
            }
            (None, None) => return Err(ConfigError("node.pod_subnet: missing (no lease was given)".into())),
        };
        let mac = file.node_mac(&parts, host)?;
        let ports = PortPlan::new(file.pods.len())?;
        let node = build_node(file, &parts, subnet, mac, &ports);
        if lease.is_some() {
            // The pods' addresses against the leased subnet (the file could not say).
            check_pods(
                &file.pods,
                Some(subnet),
                Some(node.gateway_ip()),
                u32::from(node.inner_mtu()),
                &mut Vec::new(),
            )?;
        }
        node.validate().map_err(|e| ConfigError(format!("node: {e}")))?;
        let host_tun = file.host.as_ref().map(|HostSpec { tun, routes }| {
            let routes = match (routes.is_empty(), lease) {
                (false, _) => routes.clone(),
                (true, Some(lease)) => vec![lease.network],
                (true, None) => node.pod_subnet.into_iter().chain(node.peers.iter().map(|p| p.subnet)).collect(),
            };
            HostTun { tun: tun.clone(), routes }
        });
        let workers = workers(file, host, &mut warnings);
        Ok(Self {
            node,
            ports,
            pods: file.pods.clone(),
            underlay: file.underlay.clone(),
            host: host_tun,
            workers,
            batch: if file.underlay.batching { file.agent.batch } else { 1 },
            buffers: file.agent.buffers,
            stats_interval: (file.agent.stats_interval_s > 0).then(|| Duration::from_secs(file.agent.stats_interval_s)),
            store: file.store.clone(),
            warnings,
        })
    }

    /// Each pod's own addresses, by the node's port number, for port security.
    pub fn pod_addresses(&self) -> impl Iterator<Item = (PortId, Ipv4Addr)> + '_ {
        self.ports.pods().zip(&self.pods).flat_map(|(port, pod)| pod.addresses.iter().map(move |&a| (port, a)))
    }

    /// Whether a port is read with AF_PACKET: an `interface = …` pod, or host-gw's underlay.
    #[must_use]
    pub fn has_packet_ports(&self) -> bool {
        packet_ports(&self.pods, &self.node.backend)
    }
}

fn packet_ports(pods: &[PodSpec], backend: &BackendConfig) -> bool {
    matches!(backend, BackendConfig::HostGw) || pods.iter().any(|p| p.interface.is_some())
}

/// The workers: `[agent].workers`, or the host's cores (at most [`MAX_WORKERS`]); one when a port is read with
/// AF_PACKET and the host cannot share it between workers.
fn workers(file: &AgentFile, host: &impl Host, warnings: &mut Vec<String>) -> usize {
    let wanted = file.agent.workers.unwrap_or_else(|| host.cores().clamp(1, MAX_WORKERS));
    let backend = file.node.as_ref().and_then(|n| n.backend.as_ref());
    let packet = backend.is_some_and(|b| packet_ports(&file.pods, b));
    if wanted > 1 && packet && !host.packet_fanout() {
        if file.agent.workers.is_some() {
            warnings.push(format!(
                "agent.workers = {wanted}: one worker runs (ports read with AF_PACKET, an interface pod or host-gw's \
                 underlay, share a fanout group from Linux 6.2 on, not before)"
            ));
        }
        return 1;
    }
    wanted
}
