//! Table sizes and rates.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Sizes and rates of a node's tables and of the messages it originates.
/// [`NodeConfig::validate`](super::NodeConfig::validate) refuses any field outside the range its documentation gives.
///
/// ```
/// use tweed_overlay::{Limits, NodeConfig};
///
/// // In a configuration file, the fields not given keep their defaults.
/// let config = NodeConfig::from_toml_str(r#"
///     pod_subnet = "10.244.1.0/24"
///     underlay = { node_ip = "192.168.0.1", node_mac = "02:00:00:00:01:01" }
///     backend = { type = "host-gw" }
///     limits = { arp_queue = 128, max_peers = 100 }
/// "#)?;
/// assert_eq!(config.limits, Limits { arp_queue: 128, max_peers: 100, ..Limits::default() });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    ///
    /// ```
    /// use tweed_overlay::Limits;
    ///
    /// let limits = Limits::default();
    /// let (field, value, min, max) = limits.ranges()[0];
    /// assert_eq!((field, value, min, max), ("arp_queue", 64, 1, 4096));
    /// assert!(limits.ranges().iter().all(|&(_, v, min, max)| (min..=max).contains(&v)));
    /// ```
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
    /// ```
    /// use tweed_overlay::{ConfigError, Limits};
    ///
    /// assert_eq!(Limits::default().validate(), Ok(()));
    /// let none = Limits { max_outputs: 0, ..Limits::default() };
    /// let err = ConfigError::LimitOutOfRange { field: "max_outputs", value: 0, min: 1, max: 65_536 };
    /// assert_eq!(none.validate(), Err(err));
    /// ```
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
