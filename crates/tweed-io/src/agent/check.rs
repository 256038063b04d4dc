//! The agent file's checks that serde's types do not make: ranges of sizes, pods' MTUs and addresses, names.

use tweed_overlay::NodeConfig;

use super::{AgentSpec, ConfigError, PodSpec, StoreSpec};

/// The ranges of the agent's own sizes, and of the node limits the driver depends on.
pub(super) const BATCH: (usize, usize) = (1, 256);
pub(super) const BUFFERS: (usize, usize) = (1, 262_144);
pub(super) const STATS_INTERVAL_S: (u64, u64) = (0, 86_400);
/// At least one round's reading (256 packets), so that one call of `process` takes it all; at most what a pool
/// of [`BUFFERS`] holds.
pub(super) const MAX_OUTPUTS: (usize, usize) = (256, 65_536);

/// `value` within `range`, or an error naming `field`, the range and why it matters.
pub(super) fn check_range<T: PartialOrd + std::fmt::Display>(
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
    /// # Errors
    /// A [`ConfigError`] naming the field and its range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("agent.batch", self.batch, BATCH, "packets read from one port per round")?;
        check_range("agent.buffers", self.buffers, BUFFERS, "2 KiB packet buffers")?;
        check_range("agent.stats_interval_s", self.stats_interval_s, STATS_INTERVAL_S, "0: no periodic counters")
    }
}

/// A lease's TTL in seconds (tests use a few seconds), at most a year.
const STORE_TTL_S: (u64, u64) = (1, 31_536_000);
/// How often the store's changes are read, in milliseconds.
const STORE_POLL_MS: (u64, u64) = (10, 60_000);

/// Checks the `[store]` sizes and prefix.
pub(super) fn check_store(store: &StoreSpec) -> Result<(), ConfigError> {
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
const MAX_POD_ADDRESSES: usize = 4;

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

/// The pods' MTUs (68 to 65,535; above the node's inner MTU a warning, pushed on `warnings`) and addresses (hosts of the pod subnet, not the gateway, each
/// on one pod; the subnet is checked only when it is known, not while it comes from a lease).
pub(super) fn check_pods(
    pods: &[PodSpec],
    node: &NodeConfig,
    subnet_known: bool,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let inner = u32::from(node.inner_mtu());
    // The agent runs flannel nodes: a pod subnet, given or leased.
    let Some(subnet) = node.pod_subnet.map(|s| s.trunc()) else {
        return Err(ConfigError("node.pod_subnet: missing".into()));
    };
    let mut seen = std::collections::HashSet::new();
    for (i, pod) in pods.iter().enumerate() {
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
            if subnet_known && (!subnet.contains(&a) || a == subnet.network() || a == subnet.broadcast()) {
                return Err(ConfigError(format!("{field}: {a} is not a host of the pod subnet {subnet}")));
            }
            if subnet_known && a == node.gateway_ip() {
                return Err(ConfigError(format!("{field}: {a} is the gateway's address")));
            }
            if !seen.insert(a) {
                return Err(ConfigError(format!("{field}: {a} is given to another pod already")));
            }
        }
    }
    Ok(())
}

/// A device name the kernel takes (1 to 15 bytes, no `/`, whitespace or NUL), or an error naming `field`.
pub(super) fn check_ifname(field: &str, name: &str) -> Result<(), ConfigError> {
    if !crate::sys::valid_ifname(name) {
        return Err(ConfigError(format!(
            "{field}: {name:?} is not an interface name (1 to {} bytes, no '/' or spaces)",
            crate::sys::MAX_IFNAME
        )));
    }
    Ok(())
}

/// A TAP pod's MTU: the one given, or the node's inner MTU (what the backend carries, once a `[store]` has
/// set the backend).
pub(super) fn pod_mtu(pod: &PodSpec, node: &NodeConfig) -> u32 {
    pod.mtu.unwrap_or_else(|| u32::from(node.inner_mtu()))
}
