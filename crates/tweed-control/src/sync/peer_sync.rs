//! [`PeerSync`]: the node's peers kept equal to the live leases.

use core::net::Ipv4Addr;
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use ipnet::Ipv4Net;
use tweed_overlay::{BackendConfig, PeerConfig, PeerWriter};

use super::{SkipReason, Skipped, SyncReport, peer_from_lease};
use crate::config::NetworkConfig;
use crate::lease::Lease;
use crate::store::{EventKind, LeaseStore, Snapshot, StoreError, Watch};

/// Keeps a node's peers equal to the live leases of a store (see the [module documentation](super)).
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
        node: &mut impl PeerWriter,
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
        node: &mut impl PeerWriter,
        now: SystemTime,
    ) -> Result<SyncReport, StoreError> {
        let Some(since) = self.revision else { return self.start(store, node, now) };
        Ok(self.apply_watch(store.watch(since, now)?, node))
    }

    /// [`PeerSync::start`] with a snapshot read elsewhere: the store is read on one thread (a control thread that
    /// may wait on the network) and the node changed on its own (the data path, which must not wait).
    pub fn start_with(&mut self, snapshot: Snapshot, node: &mut impl PeerWriter) -> SyncReport {
        self.resync(snapshot, node, false)
    }

    /// [`PeerSync::poll`] with the answer of a [`LeaseStore::watch`] read elsewhere, from the revision this sync
    /// followed ([`PeerSync::revision`]) or the one the previous answer ended at. Answers must be applied in the
    /// order they were read.
    pub fn apply_watch(&mut self, watch: Watch, node: &mut impl PeerWriter) -> SyncReport {
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

    fn resync(&mut self, snapshot: Snapshot, node: &mut impl PeerWriter, reset: bool) -> SyncReport {
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
    fn apply(&mut self, node: &mut impl PeerWriter, touched: &BTreeSet<Ipv4Net>, report: &mut SyncReport) {
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
        // The workers see the whole round at once.
        node.publish();
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

    fn reconcile(&mut self, node: &mut impl PeerWriter, touched: &BTreeSet<Ipv4Net>, report: &mut SyncReport) {
        let current: BTreeMap<Ipv4Net, PeerConfig> = node.peers().into_iter().map(|p| (p.subnet.trunc(), p)).collect();
        let our_ip = node.node_config().underlay.node_ip;
        let backend = node.node_config().backend.clone();
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
                let holder = match peer.node_ip {
                    core::net::IpAddr::V4(ip) => holders.get(&ip).map(|&(_, holder)| (ip, holder)),
                    core::net::IpAddr::V6(_) => None,
                };
                match holder {
                    Some((ip, holder)) if holder != subnet => Err(SkipReason::DuplicateAddress { ip, holder }),
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

    fn remove(&mut self, node: &mut impl PeerWriter, subnet: Ipv4Net, report: &mut SyncReport) {
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
