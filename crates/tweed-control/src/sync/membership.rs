//! [`Membership`]: our own lease, kept.

use std::time::SystemTime;

use ipnet::Ipv4Net;

use crate::alloc::{AllocError, SubnetManager};
use crate::lease::{Lease, LeaseAttrs};
use crate::store::{EventKind, LeaseStore, StoreError, Watch};

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
    /// A node publishing `attrs` (see [`lease_attrs`](super::lease_attrs)) through `manager`, holding no lease yet.
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
