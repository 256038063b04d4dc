//! The agent's side of the lease store: publishing our own lease, and following everyone else's as peers of a
//! running [`Node`].
//!
//! - [`lease_attrs`] is what a node publishes: `PublicIP` is its underlay address, `BackendType` its backend, and
//!   `BackendData` what its peers need to reach it (vxlan: `{"VNI":1,"VtepMAC":"…"}`, flannel's form; host-gw:
//!   `{"NodeMAC":"…"}`, tweed's own, see below).
//! - [`Membership`] keeps that lease: acquire it, renew it when [`Membership::due`], release it on the way out.
//! - [`peer_from_lease`] turns another node's lease into a [`PeerConfig`] for our backend, or says why it cannot.
//! - [`PeerSync`] keeps the node's peers equal to the live leases: [`PeerSync::start`] installs a snapshot,
//!   [`PeerSync::poll`] applies what changed since (a watch), and a [`Watch::Reset`] is a fresh snapshot diffed
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
//! no change at all; a new `PublicIP` or MAC is a [`Node::update_peer`] (the route stays, later packets use the new
//! values); only a lease that is gone is a [`Node::remove_peer`]. Events between two polls are folded per subnet
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
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use ipnet::Ipv4Net;
use serde_json::Value;
use tweed_overlay::{BackendConfig, BackendKind, Node, NodeConfig, PeerConfig};
use tweed_wire::ethernet::MacAddr;

use crate::alloc::{AllocError, SubnetManager};
use crate::config::BackendType;
use crate::config::NetworkConfig;
use crate::lease::{Lease, LeaseAttrs, VxlanData};
use crate::store::{EventKind, Ignored, LeaseStore, Snapshot, StoreError, Watch};

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
    /// The store's history was gone and a whole snapshot was diffed instead ([`Watch::Reset`]).
    pub reset: bool,
    /// Peers added.
    pub added: Vec<Ipv4Net>,
    /// Peers whose address or MAC changed (or a static peer that a lease took over).
    pub updated: Vec<Ipv4Net>,
    /// Peers removed.
    pub removed: Vec<Ipv4Net>,
    /// Leases that did not become peers.
    pub skipped: Vec<Skipped>,
    /// Stored entries that are not leases at all (see [`Snapshot::ignored`]).
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

/// Keeps a node's peers equal to the live leases of a store (see the [module documentation](self)).
///
/// Call [`PeerSync::start`] once the node is built, then [`PeerSync::poll`] between batches (a watch never
/// blocks). A failed call (the store unavailable) changes nothing; call again later.
#[derive(Clone, Debug)]
pub struct PeerSync {
    own: Ipv4Net,
    /// The `Network` and `SubnetLen` every lease must fit, once known.
    network: Option<(Ipv4Net, u8)>,
    /// `None` until the first snapshot.
    revision: Option<u64>,
    /// The live leases other than ours, as of `revision`.
    leases: BTreeMap<Ipv4Net, Lease>,
    /// The peers this sync installed (or took over from the config file).
    installed: BTreeSet<Ipv4Net>,
    /// Leases the node refused: tried again after a poll that removed or updated a peer.
    refused: BTreeSet<Ipv4Net>,
}

/// What to do about one subnet.
enum Step {
    Remove(Ipv4Net),
    Update(PeerConfig),
    Add(PeerConfig),
}

impl PeerSync {
    /// A sync for a node whose own subnet is `own` (never made a peer).
    #[must_use]
    pub fn new(own: Ipv4Net) -> Self {
        Self {
            own: own.trunc(),
            network: None,
            revision: None,
            leases: BTreeMap::new(),
            installed: BTreeSet::new(),
            refused: BTreeSet::new(),
        }
    }

    /// The same sync refusing leases outside `config`'s `Network` or of another length than its `SubnetLen` (the
    /// agent always gives it; without it only the other checks are made).
    #[must_use]
    pub fn with_network(mut self, config: &NetworkConfig) -> Self {
        self.network = Some((config.network.trunc(), config.subnet_len));
        self
    }

    /// The node's own subnet.
    #[must_use]
    pub const fn own(&self) -> Ipv4Net {
        self.own
    }

    /// The store revision followed, or `None` before [`PeerSync::start`].
    #[must_use]
    pub const fn revision(&self) -> Option<u64> {
        self.revision
    }

    /// The live leases of the other nodes as last seen, by subnet (those skipped included).
    pub fn leases(&self) -> impl Iterator<Item = &Lease> + '_ {
        self.leases.values()
    }

    /// The subnets of the peers this sync installed (a static peer a lease took over included).
    pub fn installed(&self) -> impl Iterator<Item = Ipv4Net> + '_ {
        self.installed.iter().copied()
    }

    /// Takes a snapshot of the store and makes the node's peers match it: every live lease other than ours
    /// becomes a peer, a peer this sync installed whose lease is gone is removed, static peers stay (unless a
    /// lease for the same subnet takes them over). Calling it again later is a full resynchronisation.
    ///
    /// # Errors
    /// The store's; the node is then untouched.
    pub fn start<S: LeaseStore + ?Sized>(
        &mut self,
        store: &S,
        node: &mut Node,
        now: SystemTime,
    ) -> Result<SyncReport, StoreError> {
        let snapshot = store.leases(now)?;
        Ok(self.start_with(snapshot, node))
    }

    /// Applies the store's changes since the last call (or since [`PeerSync::start`], which it calls when it was
    /// not called yet): added, updated and removed peers, or, when the store's history is gone, a full
    /// resynchronisation against its snapshot.
    ///
    /// # Errors
    /// The store's; the node is then untouched, and the next poll asks again from the same revision.
    pub fn poll<S: LeaseStore + ?Sized>(
        &mut self,
        store: &S,
        node: &mut Node,
        now: SystemTime,
    ) -> Result<SyncReport, StoreError> {
        let Some(since) = self.revision else { return self.start(store, node, now) };
        Ok(self.apply_watch(store.watch(since, now)?, node))
    }

    /// [`PeerSync::start`] with a snapshot read elsewhere: the store is read on one thread (a control thread that
    /// may wait on the network) and the node changed on its own (the data path, which must not wait).
    pub fn start_with(&mut self, snapshot: Snapshot, node: &mut Node) -> SyncReport {
        self.resync(snapshot, node, false)
    }

    /// [`PeerSync::poll`] with the answer of a [`LeaseStore::watch`] read elsewhere, from the revision this sync
    /// followed ([`PeerSync::revision`]) or the one the previous answer ended at. Answers must be applied in the
    /// order they were read.
    pub fn apply_watch(&mut self, watch: Watch, node: &mut Node) -> SyncReport {
        match watch {
            Watch::Reset(snapshot) => self.resync(snapshot, node, true),
            Watch::Events { events, revision, ignored } => {
                let mut touched = BTreeSet::new();
                // Addresses whose holder may have changed: every lease naming one is looked at again.
                let mut addresses = BTreeSet::new();
                for event in events {
                    let subnet = event.lease.subnet.trunc();
                    if subnet == self.own {
                        continue;
                    }
                    addresses.insert(event.lease.attrs.public_ip);
                    let old = match event.kind {
                        EventKind::Added => self.leases.insert(subnet, event.lease),
                        EventKind::Removed => self.leases.remove(&subnet),
                    };
                    if let Some(old) = old {
                        addresses.insert(old.attrs.public_ip);
                    }
                    touched.insert(subnet);
                }
                if !addresses.is_empty() {
                    touched.extend(
                        self.leases.iter().filter(|(_, l)| addresses.contains(&l.attrs.public_ip)).map(|(s, _)| *s),
                    );
                }
                self.revision = Some(revision);
                let mut report = SyncReport { revision, ignored, ..SyncReport::default() };
                self.apply(node, &touched, &mut report);
                report
            }
        }
    }

    fn resync(&mut self, snapshot: Snapshot, node: &mut Node, reset: bool) -> SyncReport {
        let mut touched: BTreeSet<Ipv4Net> = self.leases.keys().copied().collect();
        touched.extend(self.installed.iter().copied());
        touched.extend(self.refused.iter().copied());
        self.leases = snapshot
            .leases
            .into_iter()
            .map(|l| (l.subnet.trunc(), l))
            .filter(|(subnet, _)| *subnet != self.own)
            .collect();
        touched.extend(self.leases.keys().copied());
        self.revision = Some(snapshot.revision);
        let mut report =
            SyncReport { revision: snapshot.revision, reset, ignored: snapshot.ignored, ..SyncReport::default() };
        self.apply(node, &touched, &mut report);
        report
    }

    /// Makes the node's peers for `touched` match `self.leases`; then, as long as that removed or updated a peer
    /// (which frees an address, or room), tries the leases the node refused once more. A lease refused again is
    /// reported once, with its last reason.
    fn apply(&mut self, node: &mut Node, touched: &BTreeSet<Ipv4Net>, report: &mut SyncReport) {
        let freeing = |r: &SyncReport| r.removed.len() + r.updated.len();
        self.reconcile(node, touched, report);
        let mut freed = freeing(report);
        // Each round that frees something settles at least one refused lease for good: the bound is never hit.
        let mut rounds = touched.len() + self.refused.len();
        while freed > 0 && !self.refused.is_empty() && rounds > 0 {
            rounds -= 1;
            let retry = core::mem::take(&mut self.refused);
            report.skipped.retain(|s| !(retry.contains(&s.subnet) && matches!(s.reason, SkipReason::Node(_))));
            let before = freeing(report);
            self.reconcile(node, &retry, report);
            freed = freeing(report) - before;
        }
    }

    /// The peer `lease` makes on its own (before another lease's claim on its address is weighed).
    fn check(&self, lease: &Lease, our_ip: Ipv4Addr, backend: &BackendConfig) -> Result<PeerConfig, SkipReason> {
        let subnet = lease.subnet.trunc();
        if let Some((network, len)) = self.network {
            if !network.contains(&subnet) {
                return Err(SkipReason::OutsideNetwork { network });
            }
            if subnet.prefix_len() != len {
                return Err(SkipReason::SubnetLen { expected: len });
            }
        }
        let ip = lease.attrs.public_ip;
        if ip == our_ip {
            return Err(SkipReason::OwnAddress(our_ip));
        }
        if ip.octets()[0] == 0 || ip.is_loopback() || ip.is_multicast() || ip.is_broadcast() {
            return Err(SkipReason::PublicIp(ip));
        }
        peer_from_lease(lease, backend)
    }

    fn reconcile(&mut self, node: &mut Node, touched: &BTreeSet<Ipv4Net>, report: &mut SyncReport) {
        let current: BTreeMap<Ipv4Net, PeerConfig> = node.peers().map(|p| (p.subnet.trunc(), p.clone())).collect();
        let our_ip = node.config().underlay.node_ip;
        let backend = node.config().backend.clone();
        // Who holds each address among the usable leases of the addresses touched: the oldest, then the lowest.
        let wanted: BTreeSet<Ipv4Addr> =
            touched.iter().filter_map(|s| self.leases.get(s)).map(|l| l.attrs.public_ip).collect();
        let mut holders: BTreeMap<Ipv4Addr, (u64, Ipv4Net)> = BTreeMap::new();
        for (subnet, lease) in &self.leases {
            let ip = lease.attrs.public_ip;
            if wanted.contains(&ip) && self.check(lease, our_ip, &backend).is_ok() {
                let entry = holders.entry(ip).or_insert((lease.created, *subnet));
                *entry = (*entry).min((lease.created, *subnet));
            }
        }
        let mut steps = Vec::new();
        for &subnet in touched {
            self.refused.remove(&subnet);
            let desired = self.leases.get(&subnet).map(|lease| {
                let peer = self.check(lease, our_ip, &backend)?;
                match holders.get(&peer.node_ip) {
                    Some(&(_, holder)) if holder != subnet => {
                        Err(SkipReason::DuplicateAddress { ip: peer.node_ip, holder })
                    }
                    _ => Ok(peer),
                }
            });
            let have = current.get(&subnet);
            match desired {
                Some(Ok(peer)) => match have {
                    Some(p) if *p == peer => {
                        self.installed.insert(subnet);
                    }
                    Some(_) => steps.push(Step::Update(peer)),
                    None => steps.push(Step::Add(peer)),
                },
                other => {
                    if let Some(Err(reason)) = other {
                        report.skipped.push(Skipped { subnet, reason });
                    }
                    if self.installed.contains(&subnet) {
                        if have.is_some() {
                            steps.push(Step::Remove(subnet));
                        } else {
                            self.installed.remove(&subnet);
                        }
                    }
                }
            }
        }
        // Removals, then updates, then additions: what leaves frees addresses and room for what comes.
        steps.sort_by_key(|s| match s {
            Step::Remove(_) => 0,
            Step::Update(_) => 1,
            Step::Add(_) => 2,
        });
        for step in steps {
            match step {
                Step::Remove(subnet) => self.remove(node, subnet, report),
                Step::Update(peer) => {
                    let subnet = peer.subnet;
                    match node.update_peer(peer) {
                        Ok(()) => {
                            self.installed.insert(subnet);
                            report.updated.push(subnet);
                        }
                        Err(e) => {
                            // The peer's old values are stale: a peer this sync installed goes (a static one
                            // stays as configured); the lease is tried again later.
                            if self.installed.contains(&subnet) {
                                self.remove(node, subnet, report);
                            }
                            self.refuse(subnet, e, report);
                        }
                    }
                }
                Step::Add(peer) => {
                    let subnet = peer.subnet;
                    match node.add_peer(peer) {
                        Ok(()) => {
                            self.installed.insert(subnet);
                            report.added.push(subnet);
                        }
                        Err(e) => self.refuse(subnet, e, report),
                    }
                }
            }
        }
    }

    fn remove(&mut self, node: &mut Node, subnet: Ipv4Net, report: &mut SyncReport) {
        self.installed.remove(&subnet);
        match node.remove_peer(subnet) {
            Ok(_) => report.removed.push(subnet),
            // Only when someone else removed it meanwhile: it is gone either way.
            Err(tweed_overlay::ConfigError::UnknownPeer(_)) => {}
            Err(e) => report.skipped.push(Skipped { subnet, reason: SkipReason::Node(e) }),
        }
    }

    fn refuse(&mut self, subnet: Ipv4Net, e: tweed_overlay::ConfigError, report: &mut SyncReport) {
        self.refused.insert(subnet);
        report.skipped.push(Skipped { subnet, reason: SkipReason::Node(e) });
    }
}

/// Our own lease, kept: acquired once, renewed when due, released on the way out. Small enough to call between
/// driver rounds.
///
/// ```
/// use core::time::Duration;
/// use std::time::SystemTime;
/// use tweed_control::alloc::SubnetManager;
/// use tweed_control::config::{BackendType, NetworkConfig};
/// use tweed_control::lease::LeaseAttrs;
/// use tweed_control::store::MemoryStore;
/// use tweed_control::sync::Membership;
///
/// let config = NetworkConfig::from_json(r#"{"Network": "10.244.0.0/16", "Backend": {"Type": "udp"}}"#)?;
/// let manager = SubnetManager::new(MemoryStore::new(), config).with_ttl(Duration::from_secs(60));
/// let mut me = Membership::new(manager, LeaseAttrs::new("192.168.0.1".parse()?, BackendType::Udp));
/// let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
/// let subnet = me.acquire(t0)?.subnet;
/// // A 60 s TTL is renewed after 30 s.
/// assert!(!me.due(t0 + Duration::from_secs(29)));
/// assert!(me.due(t0 + Duration::from_secs(30)));
/// assert_eq!(me.renew(t0 + Duration::from_secs(30))?.expiration, t0 + Duration::from_secs(90));
/// assert_eq!(me.subnet(), Some(subnet));
/// me.release(t0 + Duration::from_secs(31))?;
/// assert_eq!(me.subnet(), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Membership<S> {
    manager: SubnetManager<S>,
    attrs: LeaseAttrs,
    lease: Option<Lease>,
    previous: Option<Ipv4Net>,
}

impl<S: LeaseStore> Membership<S> {
    /// A node publishing `attrs` (see [`lease_attrs`]) through `manager`, holding no lease yet.
    #[must_use]
    pub fn new(manager: SubnetManager<S>, attrs: LeaseAttrs) -> Self {
        Self { manager, attrs, lease: None, previous: None }
    }

    /// The same node, remembering `subnet` as the one it held before (flannel's `--subnet-file`): an acquisition
    /// without a live lease of its own takes it again when it is free (see [`SubnetManager::acquire_preferring`]).
    #[must_use]
    pub fn with_previous(mut self, subnet: Option<Ipv4Net>) -> Self {
        self.previous = subnet;
        self
    }

    /// The manager (its store, config and TTL).
    #[must_use]
    pub const fn manager(&self) -> &SubnetManager<S> {
        &self.manager
    }

    /// What the node publishes.
    #[must_use]
    pub const fn attrs(&self) -> &LeaseAttrs {
        &self.attrs
    }

    /// The lease held, if any.
    #[must_use]
    pub const fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// The subnet held, if any.
    #[must_use]
    pub fn subnet(&self) -> Option<Ipv4Net> {
        self.lease.as_ref().map(|l| l.subnet)
    }

    /// When the lease is due for renewal (see [`SubnetManager::renew_at`]), or `None` when none is held.
    #[must_use]
    pub fn renew_at(&self) -> Option<SystemTime> {
        self.lease.as_ref().map(|l| self.manager.renew_at(l))
    }

    /// Gets the node a subnet: its own live lease from before a restart when it has one, else the subnet it held
    /// last (see [`Membership::with_previous`]) when that is free, else a free one (see
    /// [`SubnetManager::acquire_preferring`]).
    ///
    /// # Errors
    /// Those of [`SubnetManager::acquire`]; the lease held before, if any, is kept.
    pub fn acquire(&mut self, now: SystemTime) -> Result<&Lease, AllocError> {
        // The subnet of the lease held, if any (every acquisition and relocation keeps it), else the one given.
        let lease = self.manager.acquire_preferring(&self.attrs, self.previous, now)?;
        self.previous = Some(lease.subnet);
        Ok(self.lease.insert(lease))
    }

    /// The lease must be renewed now: the renewal time is reached, or no lease is held (then [`Membership::renew`]
    /// acquires one).
    #[must_use]
    pub fn due(&self, now: SystemTime) -> bool {
        self.renew_at().is_none_or(|at| now >= at)
    }

    /// Extends the lease by the TTL from `now`, publishing [`Membership::attrs`]; acquires one when none is held.
    ///
    /// When the attributes name another `PublicIP` than the lease (see [`Membership::set_attrs`]), the store cannot
    /// renew it (a lease belongs to an address): the old lease is released and the same subnet taken under the new
    /// address, or another subnet when someone took it meanwhile.
    ///
    /// # Errors
    /// Those of [`SubnetManager::renew`]. When the lease lapsed and another node took the subnet
    /// ([`StoreError::Taken`]), the lease is dropped ([`Membership::lease`] is `None`): the node has lost its
    /// subnet, and the next call acquires another, which needs a node built on it. Any other error keeps the lease;
    /// try again.
    pub fn renew(&mut self, now: SystemTime) -> Result<&Lease, AllocError> {
        let Some(held) = self.lease.clone() else { return self.acquire(now) };
        if held.attrs.public_ip != self.attrs.public_ip {
            return self.relocate(&held, now);
        }
        let want = Lease { attrs: self.attrs.clone(), ..held };
        match self.manager.renew(&want, now) {
            Ok(lease) => Ok(self.lease.insert(lease)),
            Err(e) => {
                if matches!(e, AllocError::Store(StoreError::Taken { .. })) {
                    self.lease = None;
                }
                Err(e)
            }
        }
    }

    /// Moves `held` to our new `PublicIP`.
    fn relocate(&mut self, held: &Lease, now: SystemTime) -> Result<&Lease, AllocError> {
        match self.manager.release(held, now) {
            // Taken: it lapsed and is someone else's now; ours is gone either way.
            Ok(()) | Err(AllocError::Store(StoreError::Taken { .. })) => self.lease = None,
            Err(e) => return Err(e),
        }
        match self.manager.store().acquire(held.subnet, &self.attrs, self.manager.ttl(), now) {
            Ok(lease) => Ok(self.lease.insert(lease)),
            Err(StoreError::Taken { .. }) => self.acquire(now),
            Err(e) => Err(e.into()),
        }
    }

    /// Publishes new attributes (a new VTEP MAC, a new `PublicIP`) at once: a [`Membership::renew`] with them (the
    /// others see an update; after a `PublicIP` change, a removal and an addition unless they see both in one
    /// poll). Without a lease they wait for the next acquisition and this returns `Ok(None)`.
    ///
    /// # Errors
    /// Those of [`Membership::renew`]; the new attributes are kept either way, and the next renewal publishes
    /// them.
    pub fn set_attrs(&mut self, attrs: LeaseAttrs, now: SystemTime) -> Result<Option<&Lease>, AllocError> {
        self.attrs = attrs;
        if self.lease.is_none() {
            return Ok(None);
        }
        self.renew(now).map(Some)
    }

    /// `watch` (read from the store after this node's lease was acquired) shows the lease gone: removed (expired in
    /// etcd while the store was away, deleted by hand) or taken over by another address. The node should then
    /// [`Membership::renew`] at once, which writes the lease again, or finds the subnet taken.
    #[must_use]
    pub fn lost_in(&self, watch: &Watch) -> bool {
        let Some(held) = &self.lease else { return false };
        let ours = |l: &Lease| l.subnet.trunc() == held.subnet.trunc();
        let mine = |l: &Lease| l.attrs.public_ip == held.attrs.public_ip;
        match watch {
            Watch::Events { events, .. } => events
                .iter()
                .rev()
                .find(|e| ours(&e.lease))
                .is_some_and(|e| e.kind == EventKind::Removed || !mine(&e.lease)),
            Watch::Reset(snapshot) => !snapshot.leases.iter().any(|l| ours(l) && mine(l)),
        }
    }

    /// Gives the lease back (a node leaving for good; a node restarting keeps it instead, to get its subnet back).
    ///
    /// # Errors
    /// Those of [`SubnetManager::release`]; the lease is then kept.
    pub fn release(&mut self, now: SystemTime) -> Result<(), AllocError> {
        if let Some(lease) = &self.lease {
            self.manager.release(lease, now)?;
            self.lease = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
