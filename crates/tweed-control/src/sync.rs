//! The agent's side of the lease store: publishing our own lease, and following everyone else's as peers of a
//! running [`Node`](tweed_overlay::Node).
//!
//! - [`lease_attrs`] is what a node publishes: `PublicIP` is its underlay address, `BackendType` its backend, and
//!   `BackendData` what its peers need to reach it (vxlan: `{"VNI":1,"VtepMAC":"…"}`, flannel's form; host-gw:
//!   `{"NodeMAC":"…"}`, tweed's own, see below).
//! - [`Membership`] keeps that lease: acquire it, renew it when [`Membership::due`], release it on the way out.
//! - [`peer_from_lease`] turns another node's lease into a [`PeerConfig`] for our backend, or says why it cannot.
//! - [`PeerSync`] keeps the node's peers equal to the live leases: [`PeerSync::start`] installs a snapshot,
//!   [`PeerSync::poll`] applies what changed since (a watch), and a [`Watch::Reset`](crate::store::Watch::Reset) is a fresh snapshot diffed
//!   against what is installed. Each call returns a [`SyncReport`] to log.
//!
//! # What a lease must carry
//! - **vxlan**: `BackendType` `vxlan` and `BackendData.VtepMAC` (flannel's). A `VNI` other than ours is refused (the
//!   peer would drop our packets and we theirs); a lease without `VNI` is taken.
//! - **udp**: `BackendType` `udp` and the `PublicIP`.
//! - **host-gw**: `BackendType` `host-gw` and the peer's underlay MAC, which a userspace node needs (the kernel would
//!   ask ARP) and flannel's leases do not carry. tweed writes it as `BackendData.NodeMAC` ([`NODE_MAC`]) and reads
//!   it from there; flannel ignores the field. A host-gw lease written by flannel itself has no `NodeMAC` and is
//!   skipped, so a tweed host-gw node cannot peer with a kernel flannel host-gw node through the store (give such
//!   peers in the node's config file instead).
//!
//! For vxlan and udp the peer's underlay MAC is not taken from the lease: the node's `underlay.gateway_mac`, or its
//! UDP socket, decides where the outer frame goes.
//!
//! # What a lease may not do
//! Any node can write any lease, so a lease is checked before it becomes a route ([`PeerSync::with_network`]): its
//! subnet must lie in the `Network` and have the config's `SubnetLen`; its `PublicIP` must be a unicast host
//! address (not in 0/8, 127/8, 224/4, nor 255.255.255.255) and not ours. Two leases naming one `PublicIP` cannot
//! both be peers: the older (by [`Lease::created`]: etcd's create revision) keeps its place, so a newcomer cannot
//! push a node out by claiming its address under a lower subnet; the younger is refused until the older goes.
//! Stored entries that are no lease at all are reported by the store ([`SyncReport::ignored`]).
//!
//! A lease that does not fit (another backend, data missing) is *skipped*: reported in the [`SyncReport`], never an
//! error that stops the others. So is a peer the node refuses ([`tweed_overlay::ConfigError`]: an overlap, a
//! node address already used by another peer, a full table); such a lease is tried again after a later poll
//! removed or updated a peer, which may have made room.
//!
//! # Whose peers
//! The sync owns the peers it installed and no others. Peers from the node's config file (static peers) stay,
//! with one exception: a live lease for the very same subnet replaces the static peer (an update, no route
//! withdrawn), and from then on that peer follows its lease, and goes when the lease goes. The node's own subnet
//! is never a peer, and neither is a lease under another subnet that names our own `PublicIP` (a stale lease of
//! ours).
//!
//! # Changes, not rebuilds
//! A lease whose peer is installed with the same values (a renewal, a restarted node that got its subnet back) is
//! no change at all; a new `PublicIP` or MAC is a [`Node::update_peer`](tweed_overlay::Node::update_peer) (the route stays, later packets use the new
//! values); only a lease that is gone is a [`Node::remove_peer`](tweed_overlay::Node::remove_peer). Events between two polls are folded per subnet
//! first, so a lease that lapsed and was taken by another node within one poll is an update, not a removal and an
//! addition. Within one poll removals run first, then updates, then additions, so a `PublicIP` that moved from one
//! subnet to another does not collide with itself.
//!
//! Nothing here reads a clock: `now` is an argument.
//!
//! ```
//! use core::time::Duration;
//! use std::time::SystemTime;
//! use tweed_control::alloc::SubnetManager;
//! use tweed_control::config::NetworkConfig;
//! use tweed_control::store::MemoryStore;
//! use tweed_control::sync::{Membership, PeerSync, lease_attrs};
//! use tweed_overlay::{NodeBuilder, VxlanConfig};
//! use tweed_wire::ethernet::MacAddr;
//!
//! let store = MemoryStore::new();
//! let config = NetworkConfig::from_json(r#"{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}"#)?;
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
//! // Another node, 192.168.0.2, already holds a subnet.
//! let other = NodeBuilder::new("10.244.0.0/24".parse()?, "192.168.0.2".parse()?, MacAddr::new(2, 0, 0, 0, 1, 2))
//!     .vxlan(VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, 2)))
//!     .into_config();
//! let mut theirs = Membership::new(SubnetManager::new(store.clone(), config.clone()), lease_attrs(&other));
//! let their_subnet = theirs.acquire(now)?.subnet;
//!
//! // We get ours, build the node on it, and follow the store.
//! let vxlan = VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, 1));
//! let me = NodeBuilder::new("10.244.0.0/24".parse()?, "192.168.0.1".parse()?, MacAddr::new(2, 0, 0, 0, 1, 1))
//!     .vxlan(vxlan.clone())
//!     .underlay_gateway_mac(MacAddr::new(2, 0, 0, 0, 9, 9));
//! let mut ours = Membership::new(SubnetManager::new(store.clone(), config), lease_attrs(&me.clone().into_config()));
//! let subnet = ours.acquire(now)?.subnet;
//! let mut node = NodeBuilder::new(subnet, "192.168.0.1".parse()?, MacAddr::new(2, 0, 0, 0, 1, 1))
//!     .vxlan(vxlan)
//!     .underlay_gateway_mac(MacAddr::new(2, 0, 0, 0, 9, 9))
//!     .build()?;
//! let mut sync = PeerSync::new(subnet);
//! let report = sync.start(&store, &mut node, now)?;
//! assert_eq!(report.added, vec![their_subnet]);
//! assert_eq!(node.peers().next().and_then(|p| p.vtep_mac), Some(MacAddr::new(2, 0, 0, 0, 0, 2)));
//!
//! // The other node leaves: its peer goes at the next poll.
//! theirs.release(now)?;
//! let report = sync.poll(&store, &mut node, now + Duration::from_secs(1))?;
//! assert_eq!(report.removed, vec![their_subnet]);
//! assert_eq!(node.peers().count(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::Value;
use tweed_overlay::{BackendConfig, BackendKind, NodeConfig, PeerConfig};
use tweed_wire::ethernet::MacAddr;

pub use self::membership::Membership;
pub use self::peer_sync::PeerSync;
use crate::config::BackendType;
use crate::lease::{Lease, LeaseAttrs, VxlanData};
use crate::store::Ignored;

/// The `BackendData` field tweed writes (host-gw) and reads for a node's underlay MAC: `{"NodeMAC":"…"}`.
pub const NODE_MAC: &str = "NodeMAC";

/// The lease field names `BackendData` fields are reported under.
const VTEP_MAC: &str = "VtepMAC";
const VNI: &str = "VNI";

/// The flannel backend name of a node's backend.
#[must_use]
pub const fn backend_type(kind: BackendKind) -> BackendType {
    match kind {
        BackendKind::Vxlan => BackendType::Vxlan,
        BackendKind::Udp => BackendType::Udp,
        BackendKind::HostGw => BackendType::HostGw,
    }
}

/// What a node with `config` publishes in its lease: its underlay address, its backend, and for vxlan
/// `{"VNI":…,"VtepMAC":…}` (flannel's form), for host-gw `{"NodeMAC":…}` (tweed's, see the [module
/// documentation](self)), for udp nothing.
///
/// ```
/// use tweed_control::sync::lease_attrs;
/// use tweed_overlay::NodeBuilder;
/// use tweed_wire::ethernet::MacAddr;
///
/// let node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, MacAddr::new(2, 0, 0, 0, 1, 1))
///     .host_gw()
///     .into_config();
/// assert_eq!(
///     lease_attrs(&node).to_json(),
///     r#"{"PublicIP":"192.168.0.1","BackendType":"host-gw","BackendData":{"NodeMAC":"02:00:00:00:01:01"}}"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn lease_attrs(config: &NodeConfig) -> LeaseAttrs {
    let ip = config.underlay.node_ip;
    match &config.backend {
        BackendConfig::Vxlan(v) => LeaseAttrs::vxlan(ip, VxlanData { vni: v.vni, vtep_mac: v.vtep_mac }),
        BackendConfig::Udp(_) => LeaseAttrs::new(ip, BackendType::Udp),
        BackendConfig::HostGw => {
            let mut data = serde_json::Map::new();
            data.insert(NODE_MAC.to_owned(), Value::from(config.underlay.node_mac.to_string()));
            LeaseAttrs { backend_data: Some(Value::Object(data)), ..LeaseAttrs::new(ip, BackendType::HostGw) }
        }
    }
}

/// Why a lease did not become a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The lease is for another backend than the node's (or names none).
    Backend {
        /// The node's backend.
        ours: BackendType,
        /// The lease's `BackendType`, as written.
        theirs: String,
    },
    /// A `BackendData` field the node's backend needs is absent: `VtepMAC` (vxlan) or `NodeMAC` (host-gw).
    MissingData {
        /// The field.
        field: &'static str,
    },
    /// A `BackendData` field does not read, or is not a unicast MAC address.
    InvalidData {
        /// The field.
        field: &'static str,
        /// Its value, as JSON.
        value: String,
    },
    /// A vxlan lease of another VNI.
    Vni {
        /// The node's VNI.
        ours: u32,
        /// The lease's.
        theirs: u64,
    },
    /// The lease names this node's own `PublicIP` under a subnet that is not the node's (a stale lease of ours).
    OwnAddress(Ipv4Addr),
    /// The subnet is not inside the network's `Network`.
    OutsideNetwork {
        /// The `Network`.
        network: Ipv4Net,
    },
    /// The subnet's length is not the network's `SubnetLen`.
    SubnetLen {
        /// `SubnetLen`.
        expected: u8,
    },
    /// The `PublicIP` is no unicast host address: in 0.0.0.0/8, 127.0.0.0/8 or 224.0.0.0/4, or 255.255.255.255.
    PublicIp(Ipv4Addr),
    /// An older lease names the same `PublicIP`, and keeps its place.
    DuplicateAddress {
        /// The address.
        ip: Ipv4Addr,
        /// The older lease's subnet.
        holder: Ipv4Net,
    },
    /// The node refused the peer (an overlap, a node address another peer has, a full table, …).
    Node(tweed_overlay::ConfigError),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Backend { ours, theirs } if theirs.is_empty() => {
                write!(f, "the lease names no BackendType, this node runs {ours}")
            }
            Self::Backend { ours, theirs } => write!(f, "a {theirs:?} lease, this node runs {ours}"),
            Self::MissingData { field } => write!(f, "no {field} in its BackendData"),
            Self::InvalidData { field, value } => write!(f, "{field} {value} in its BackendData does not read"),
            Self::Vni { ours, theirs } => write!(f, "VNI {theirs}, this node's is {ours}"),
            Self::OwnAddress(ip) => write!(f, "it names this node's own address {ip}"),
            Self::OutsideNetwork { network } => write!(f, "the subnet is outside the network {network}"),
            Self::SubnetLen { expected } => write!(f, "the subnet's length is not the network's SubnetLen {expected}"),
            Self::PublicIp(ip) => write!(f, "PublicIP {ip} is no unicast host address"),
            Self::DuplicateAddress { ip, holder } => write!(f, "PublicIP {ip} belongs to the older lease {holder}"),
            Self::Node(e) => write!(f, "the node refused it: {e}"),
        }
    }
}

impl core::error::Error for SkipReason {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Node(e) => Some(e),
            _ => None,
        }
    }
}

/// A unicast MAC from `BackendData.<field>`.
fn data_mac(data: Option<&Value>, field: &'static str) -> Result<MacAddr, SkipReason> {
    let value = data.and_then(|d| d.get(field)).ok_or(SkipReason::MissingData { field })?;
    let invalid = || SkipReason::InvalidData { field, value: value.to_string() };
    let mac: MacAddr = value.as_str().ok_or_else(invalid)?.parse().map_err(|_| invalid())?;
    if mac.is_multicast() || mac.is_zero() {
        return Err(invalid());
    }
    Ok(mac)
}

/// The peer a node with `backend` makes of `lease`, or why it makes none (see the [module documentation](self)
/// for what each backend needs).
///
/// ```
/// use std::time::SystemTime;
/// use tweed_control::lease::{Lease, LeaseAttrs};
/// use tweed_control::sync::{SkipReason, peer_from_lease};
/// use tweed_overlay::{BackendConfig, VxlanConfig};
/// use tweed_wire::ethernet::MacAddr;
///
/// let text = r#"{"PublicIP":"192.168.0.2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:2a:5b:7c:11:02"}}"#;
/// let lease =
///     Lease { subnet: "10.244.2.0/24".parse()?, attrs: LeaseAttrs::from_json(text)?, expiration: SystemTime::UNIX_EPOCH, created: 1 };
/// let vxlan = BackendConfig::Vxlan(VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, 1)));
/// let peer = peer_from_lease(&lease, &vxlan)?;
/// assert_eq!(peer.node_ip.to_string(), "192.168.0.2");
/// assert_eq!(peer.vtep_mac, Some("0e:2a:5b:7c:11:02".parse()?));
/// // A host-gw node needs the peer's NodeMAC, which this lease lacks (and it is a vxlan lease anyway).
/// assert!(matches!(peer_from_lease(&lease, &BackendConfig::HostGw), Err(SkipReason::Backend { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn peer_from_lease(lease: &Lease, backend: &BackendConfig) -> Result<PeerConfig, SkipReason> {
    let ours = backend_type(backend.kind());
    if lease.attrs.backend_type != ours.as_str() {
        return Err(SkipReason::Backend { ours, theirs: lease.attrs.backend_type.clone() });
    }
    let peer = PeerConfig::new(lease.subnet.trunc(), lease.attrs.public_ip);
    let data = lease.attrs.backend_data.as_ref();
    match backend {
        BackendConfig::Vxlan(v) => {
            let vtep = data_mac(data, VTEP_MAC)?;
            if let Some(value) = data.and_then(|d| d.get(VNI)) {
                let vni =
                    value.as_u64().ok_or_else(|| SkipReason::InvalidData { field: VNI, value: value.to_string() })?;
                if vni != u64::from(v.vni) {
                    return Err(SkipReason::Vni { ours: v.vni, theirs: vni });
                }
            }
            Ok(peer.with_vtep_mac(vtep))
        }
        BackendConfig::Udp(_) => Ok(peer),
        BackendConfig::HostGw => Ok(peer.with_node_mac(data_mac(data, NODE_MAC)?)),
    }
}

/// A lease that did not become a peer, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The lease's subnet.
    pub subnet: Ipv4Net,
    /// Why.
    pub reason: SkipReason,
}

/// What one [`PeerSync::start`] or [`PeerSync::poll`] did to the node's peers. Subnets are in the order the
/// changes were made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct SyncReport {
    /// The store revision the node's peers now follow.
    pub revision: u64,
    /// The store's history was gone and a whole snapshot was diffed instead ([`Watch::Reset`](crate::store::Watch::Reset)).
    pub reset: bool,
    /// Peers added.
    pub added: Vec<Ipv4Net>,
    /// Peers whose address or MAC changed (or a static peer that a lease took over).
    pub updated: Vec<Ipv4Net>,
    /// Peers removed.
    pub removed: Vec<Ipv4Net>,
    /// Leases that did not become peers.
    pub skipped: Vec<Skipped>,
    /// Stored entries that are not leases at all (see [`Snapshot::ignored`](crate::store::Snapshot::ignored)).
    pub ignored: Vec<Ignored>,
}

impl SyncReport {
    /// No peer was added, updated or removed.
    #[must_use]
    pub fn is_unchanged(&self) -> bool {
        self.added.is_empty() && self.updated.is_empty() && self.removed.is_empty()
    }

    /// Nothing worth a log line: no change, nothing skipped, no reset.
    #[must_use]
    pub fn is_quiet(&self) -> bool {
        self.is_unchanged() && self.skipped.is_empty() && self.ignored.is_empty() && !self.reset
    }
}

/// `revision 7 (reset): added 10.244.2.0/24; removed 10.244.3.0/24; skipped 10.244.9.0/24 (no VtepMAC in its
/// BackendData)`, or `revision 7: no change`.
impl fmt::Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "revision {}", self.revision)?;
        if self.reset {
            f.write_str(" (reset)")?;
        }
        f.write_str(":")?;
        if self.is_unchanged() && self.skipped.is_empty() && self.ignored.is_empty() {
            return f.write_str(" no change");
        }
        let mut sep = " ";
        for (what, nets) in [("added", &self.added), ("updated", &self.updated), ("removed", &self.removed)] {
            for (i, n) in nets.iter().enumerate() {
                if i == 0 {
                    write!(f, "{sep}{what} {n}")?;
                    sep = "; ";
                } else {
                    write!(f, ", {n}")?;
                }
            }
        }
        for (i, s) in self.skipped.iter().enumerate() {
            if i == 0 {
                write!(f, "{sep}skipped {} ({})", s.subnet, s.reason)?;
            } else {
                write!(f, ", {} ({})", s.subnet, s.reason)?;
            }
        }
        for (i, ig) in self.ignored.iter().enumerate() {
            if i == 0 {
                write!(f, "{sep}ignored {ig}")?;
            } else {
                write!(f, ", {ig}")?;
            }
        }
        Ok(())
    }
}

mod membership;
mod peer_sync;

#[cfg(test)]
mod tests;
