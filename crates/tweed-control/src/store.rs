//! Where leases live: the [`LeaseStore`] trait, its events, and the in-memory store.
//!
//! The trait is shaped after what etcd offers, so an etcd store (flannel's layout, see [`crate::lease::KeyLayout`])
//! fits beside [`MemoryStore`] and [`crate::file_store::FileStore`]:
//!
//! - [`LeaseStore::acquire`] is an atomic create-if-absent (an etcd transaction on the key's create revision);
//! - leases carry a TTL, and a lease past its expiration is gone (an etcd lease);
//! - every change bumps a store-wide revision, and [`LeaseStore::watch`] returns the changes after a revision, or a
//!   fresh snapshot when that history is no longer kept (etcd's compaction) or the store's revision went back (a
//!   file recreated, an etcd restored from a backup).
//!
//! # Whose clock
//! Expiry is the store's. etcd expires a lease on its own clock (the etcd lease's TTL) and ignores `now`. The
//! in-process stores have no clock of their own, so they use the `now` of whoever calls, and assume the callers'
//! clocks agree within the lease's TTL: a lease counts as lapsed only once a whole TTL has passed after its
//! expiration by the caller's clock (the TTL is kept with the lease). A node whose clock runs ahead by less than the
//! TTL removes no live lease of another node; a node whose clock runs behind by less than the TTL writes leases the
//! others keep. The price: a node that stops renewing keeps its subnet for up to twice the TTL. The first
//! operation that sees a lease lapsed removes it and records a [`EventKind::Removed`] event. Expirations are kept
//! to the millisecond.
//!
//! # Bad data
//! A stored lease that does not read (a key that names no subnet, a value that is not flannel's JSON) is no lease:
//! it is skipped, and reported in [`Snapshot::ignored`] and [`Watch::Events`]'s `ignored`, never an error for the
//! whole read (flannel: "Ignoring bad subnet node").
//!
//! The in-process stores refuse a lease that overlaps any live lease, not only one with the same key; etcd can only
//! refuse the same key, which is enough as long as every node uses the one config's `SubnetLen`.

use core::fmt;
use core::net::Ipv4Addr;
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::lease::{Lease, LeaseAttrs, parse_subnet_key, subnet_key};

/// How many events a store keeps for [`LeaseStore::watch`] before a watcher must take a snapshot again.
pub const DEFAULT_HISTORY: usize = 1024;

/// Why a store operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StoreError {
    /// The subnet (or one overlapping it) is held by another node.
    Taken {
        /// The subnet asked for.
        subnet: Ipv4Net,
        /// The live lease in the way.
        held: Ipv4Net,
        /// Its holder's public IP.
        holder: Ipv4Addr,
    },
    /// Reading or writing the store's storage failed.
    Io {
        /// What was being done, and to which file.
        context: String,
        /// The operating system's message.
        message: String,
    },
    /// The store's server did not answer in time or could not be reached (an etcd outage): the operation may or may
    /// not have happened. Retrying later, on the same store, is the remedy.
    Unavailable {
        /// What was being done, and where.
        context: String,
        /// Why it failed.
        message: String,
    },
    /// The stored data does not read.
    Corrupt {
        /// Where.
        context: String,
        /// What is wrong.
        message: String,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Taken { subnet, held, holder } if subnet == held => {
                write!(f, "subnet {subnet} is leased to {holder}")
            }
            Self::Taken { subnet, held, holder } => {
                write!(f, "subnet {subnet} overlaps {held}, leased to {holder}")
            }
            Self::Io { context, message } => write!(f, "lease store: {context}: {message}"),
            Self::Unavailable { context, message } => write!(f, "lease store unavailable: {context}: {message}"),
            Self::Corrupt { context, message } => write!(f, "lease store: {context} is corrupt: {message}"),
        }
    }
}

impl core::error::Error for StoreError {}

/// A stored entry that is not a lease: skipped, and reported so that someone fixes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ignored {
    /// Its key (`/coreos.com/network/subnets/10.244.9.0-24`, or the name in the file store).
    pub key: String,
    /// Why it is not a lease.
    pub reason: String,
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.key, self.reason)
    }
}

/// Every live lease at one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The store's revision when the snapshot was taken.
    pub revision: u64,
    /// The live leases, ordered by subnet.
    pub leases: Vec<Lease>,
    /// Entries under the leases' directory that are not leases (skipped).
    pub ignored: Vec<Ignored>,
}

/// What happened to a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// Created or renewed (flannel's `EventAdded`: an etcd put).
    Added,
    /// Released, or lapsed (flannel's `EventRemoved`).
    Removed,
}

/// One change to the leases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The revision this change produced.
    pub revision: u64,
    /// Added or removed.
    pub kind: EventKind,
    /// The lease as it was added, or as it was last before removal.
    pub lease: Lease,
}

/// The answer to [`LeaseStore::watch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Watch {
    /// The changes after the revision asked for, oldest first (possibly none), and the revision to ask from next.
    Events {
        /// The changes.
        events: Vec<Event>,
        /// The store's revision: pass it to the next `watch`.
        revision: u64,
        /// Entries written meanwhile that are not leases (skipped). One that replaced a lease also removed it (a
        /// [`EventKind::Removed`] event), as a fresh snapshot would not have it either.
        ignored: Vec<Ignored>,
    },
    /// The history asked for is gone: here is everything instead, to diff against what the watcher knew.
    Reset(Snapshot),
}

/// A place leases live, shared by every node of the cluster. Object safe.
pub trait LeaseStore: Send + Sync {
    /// The network config document as stored (flannel's JSON), or `None` when none was put.
    fn get_config(&self) -> Result<Option<String>, StoreError>;

    /// Stores the network config document; returns the new revision.
    fn put_config(&self, config: &str) -> Result<u64, StoreError>;

    /// Every lease live at `now`.
    fn leases(&self, now: SystemTime) -> Result<Snapshot, StoreError>;

    /// Atomically creates a lease on `subnet` for `ttl` from `now`, or fails with [`StoreError::Taken`] when a live
    /// lease holds it. Two concurrent calls for one subnet never both succeed.
    fn acquire(&self, subnet: Ipv4Net, attrs: &LeaseAttrs, ttl: Duration, now: SystemTime)
    -> Result<Lease, StoreError>;

    /// Extends the lease on `subnet` to `now + ttl` with `attrs`. Succeeds when the subnet is held by the same
    /// `attrs.public_ip`, or is free (a lease that lapsed and was not taken is taken back); fails with
    /// [`StoreError::Taken`] when another node holds it.
    fn renew(&self, subnet: Ipv4Net, attrs: &LeaseAttrs, ttl: Duration, now: SystemTime) -> Result<Lease, StoreError>;

    /// Gives up the lease on `subnet` held by `public_ip`. Releasing a free subnet succeeds; releasing another
    /// node's lease fails with [`StoreError::Taken`].
    fn release(&self, subnet: Ipv4Net, public_ip: Ipv4Addr, now: SystemTime) -> Result<(), StoreError>;

    /// The changes after `since` (a revision from [`Snapshot::revision`] or a previous [`Watch::Events`]), without
    /// waiting; or [`Watch::Reset`] when they are no longer kept, or when `since` is ahead of the store (its
    /// revision went back: a file recreated, an etcd restored from a backup).
    fn watch(&self, since: u64, now: SystemTime) -> Result<Watch, StoreError>;
}

/// A boxed or shared store is a store, so a driver can pick one at run time (`Box<dyn LeaseStore>`) or share one
/// between tasks (`Arc<S>`).
macro_rules! forward_lease_store {
    ($($ptr:ident),*) => {$(
        impl<T: LeaseStore + ?Sized> LeaseStore for $ptr<T> {
            fn get_config(&self) -> Result<Option<String>, StoreError> {
                (**self).get_config()
            }
            fn put_config(&self, config: &str) -> Result<u64, StoreError> {
                (**self).put_config(config)
            }
            fn leases(&self, now: SystemTime) -> Result<Snapshot, StoreError> {
                (**self).leases(now)
            }
            fn acquire(
                &self,
                subnet: Ipv4Net,
                attrs: &LeaseAttrs,
                ttl: Duration,
                now: SystemTime,
            ) -> Result<Lease, StoreError> {
                (**self).acquire(subnet, attrs, ttl, now)
            }
            fn renew(
                &self,
                subnet: Ipv4Net,
                attrs: &LeaseAttrs,
                ttl: Duration,
                now: SystemTime,
            ) -> Result<Lease, StoreError> {
                (**self).renew(subnet, attrs, ttl, now)
            }
            fn release(&self, subnet: Ipv4Net, public_ip: Ipv4Addr, now: SystemTime) -> Result<(), StoreError> {
                (**self).release(subnet, public_ip, now)
            }
            fn watch(&self, since: u64, now: SystemTime) -> Result<Watch, StoreError> {
                (**self).watch(since, now)
            }
        }
    )*};
}

forward_lease_store!(Box, Arc);

/// Milliseconds since the Unix epoch (0 before it, saturating far after).
pub(crate) fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_ms(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

/// A lease as kept by the in-process stores: flannel's value, and the expiration etcd would keep as a TTL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stored {
    value: LeaseAttrs,
    expires_ms: u64,
    /// The TTL it was written with: the grace after `expires_ms` before it counts as lapsed (see the module docs).
    /// Files written before tweed kept it have none: those leases lapse at their expiration.
    #[serde(default)]
    ttl_ms: u64,
    /// The revision that created it (see [`Lease::created`]).
    #[serde(default)]
    created: u64,
}

impl Stored {
    fn lapsed(&self, now_ms: u64) -> bool {
        self.expires_ms.saturating_add(self.ttl_ms) <= now_ms
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredEvent {
    revision: u64,
    kind: EventKind,
    subnet: String,
    value: LeaseAttrs,
    expires_ms: u64,
    #[serde(default)]
    created: u64,
}

/// The whole state of an in-process store: what [`MemoryStore`] holds and [`crate::file_store::FileStore`] writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    revision: u64,
    #[serde(default)]
    config: Option<String>,
    /// Keyed by flannel's key name (`10.244.1.0-24`).
    #[serde(default)]
    leases: Leases,
    #[serde(default)]
    events: VecDeque<StoredEvent>,
    /// The newest revision whose event was dropped from `events`: watching from before it needs a snapshot.
    #[serde(default)]
    compacted: u64,
    #[serde(skip, default = "default_history")]
    history: usize,
}

fn default_history() -> usize {
    DEFAULT_HISTORY
}

/// The leases of an in-process store, and the entries among them that do not read as leases (a file edited by
/// hand): those are skipped and reported, never an error for the whole file, and written back as they were.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Leases {
    good: BTreeMap<String, Stored>,
    /// The entry as found, and why it is no lease.
    bad: BTreeMap<String, (serde_json::Value, String)>,
}

impl core::ops::Deref for Leases {
    type Target = BTreeMap<String, Stored>;
    fn deref(&self) -> &Self::Target {
        &self.good
    }
}

impl core::ops::DerefMut for Leases {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.good
    }
}

impl Serialize for Leases {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.good.len() + self.bad.len()))?;
        for (k, v) in &self.good {
            map.serialize_entry(k, v)?;
        }
        for (k, (v, _)) in self.bad.iter().filter(|(k, _)| !self.good.contains_key(*k)) {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Leases {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, serde_json::Value>::deserialize(deserializer)?;
        let mut leases = Self::default();
        for (k, v) in raw {
            match serde_json::from_value::<Stored>(v.clone()) {
                Ok(stored) => {
                    leases.good.insert(k, stored);
                }
                Err(e) => {
                    leases.bad.insert(k, (v, format!("the entry is not a lease: {e}")));
                }
            }
        }
        Ok(leases)
    }
}

impl State {
    pub(crate) fn new(history: usize) -> Self {
        Self { revision: 0, config: None, leases: Leases::default(), events: VecDeque::new(), compacted: 0, history }
    }

    pub(crate) fn set_history(&mut self, history: usize) {
        self.history = history;
        self.trim();
    }

    fn trim(&mut self) {
        while self.events.len() > self.history {
            if let Some(e) = self.events.pop_front() {
                self.compacted = e.revision;
            }
        }
    }

    fn lease(key: &str, s: &Stored) -> Option<Lease> {
        Some(Lease {
            subnet: parse_subnet_key(key)?,
            attrs: s.value.clone(),
            expiration: from_ms(s.expires_ms),
            created: s.created,
        })
    }

    fn record(&mut self, kind: EventKind, key: &str, stored: &Stored) {
        self.revision += 1;
        self.events.push_back(StoredEvent {
            revision: self.revision,
            kind,
            subnet: key.to_owned(),
            value: stored.value.clone(),
            expires_ms: stored.expires_ms,
            created: stored.created,
        });
        self.trim();
    }

    /// Some lease has lapsed at `now` (see the module docs: a whole TTL after its expiration).
    pub(crate) fn any_lapsed(&self, now: SystemTime) -> bool {
        let now = to_ms(now);
        self.leases.values().any(|s| s.lapsed(now))
    }

    /// Removes the leases lapsed at `now`; true when anything changed.
    pub(crate) fn expire(&mut self, now: SystemTime) -> bool {
        let now = to_ms(now);
        let lapsed: Vec<String> = self.leases.iter().filter(|(_, s)| s.lapsed(now)).map(|(k, _)| k.clone()).collect();
        for key in &lapsed {
            if let Some(stored) = self.leases.remove(key) {
                self.record(EventKind::Removed, key, &stored);
            }
        }
        !lapsed.is_empty()
    }

    /// The live lease overlapping `subnet`, if any (call after [`State::expire`]).
    fn conflict(&self, subnet: &Ipv4Net) -> Option<(Ipv4Net, Ipv4Addr)> {
        self.leases.iter().find_map(|(k, s)| {
            let held = parse_subnet_key(k)?;
            (held.contains(subnet) || subnet.contains(&held)).then_some((held, s.value.public_ip))
        })
    }

    pub(crate) fn config(&self) -> Option<String> {
        self.config.clone()
    }

    pub(crate) fn put_config(&mut self, config: &str) -> u64 {
        self.config = Some(config.to_owned());
        self.revision += 1;
        self.revision
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot { revision: self.revision, ..Snapshot::default() };
        for (k, s) in self.leases.iter() {
            match Self::lease(k, s) {
                Some(lease) => snapshot.leases.push(lease),
                None => snapshot.ignored.push(bad_key(k)),
            }
        }
        for (key, (_, reason)) in self.leases.bad.iter().filter(|(k, _)| !self.leases.contains_key(*k)) {
            snapshot.ignored.push(Ignored { key: key.clone(), reason: reason.clone() });
        }
        snapshot
    }

    fn put(&mut self, subnet: Ipv4Net, attrs: &LeaseAttrs, ttl: Duration, now: SystemTime) -> Lease {
        let key = subnet_key(&subnet);
        // A renewal keeps the creation; a new lease is created by the revision `record` is about to make.
        let created = self.leases.get(&key).map_or(self.revision + 1, |s| s.created);
        let ttl_ms = ttl_ms(ttl);
        let stored = Stored { value: attrs.clone(), expires_ms: to_ms(now).saturating_add(ttl_ms), ttl_ms, created };
        self.record(EventKind::Added, &key, &stored);
        // A lease replaces an entry that was none.
        self.leases.bad.remove(&key);
        let lease = Lease { subnet, attrs: attrs.clone(), expiration: from_ms(stored.expires_ms), created };
        self.leases.insert(key, stored);
        lease
    }

    pub(crate) fn acquire(
        &mut self,
        subnet: Ipv4Net,
        attrs: &LeaseAttrs,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Lease, StoreError> {
        let subnet = subnet.trunc();
        if let Some((held, holder)) = self.conflict(&subnet) {
            return Err(StoreError::Taken { subnet, held, holder });
        }
        Ok(self.put(subnet, attrs, ttl, now))
    }

    pub(crate) fn renew(
        &mut self,
        subnet: Ipv4Net,
        attrs: &LeaseAttrs,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Lease, StoreError> {
        let subnet = subnet.trunc();
        if let Some((held, holder)) = self.conflict(&subnet)
            && (held != subnet || holder != attrs.public_ip)
        {
            return Err(StoreError::Taken { subnet, held, holder });
        }
        Ok(self.put(subnet, attrs, ttl, now))
    }

    /// True when a lease was removed.
    pub(crate) fn release(&mut self, subnet: Ipv4Net, public_ip: Ipv4Addr) -> Result<bool, StoreError> {
        let subnet = subnet.trunc();
        let key = subnet_key(&subnet);
        match self.leases.get(&key) {
            None => Ok(false),
            Some(s) if s.value.public_ip != public_ip => {
                Err(StoreError::Taken { subnet, held: subnet, holder: s.value.public_ip })
            }
            Some(_) => {
                if let Some(stored) = self.leases.remove(&key) {
                    self.record(EventKind::Removed, &key, &stored);
                }
                Ok(true)
            }
        }
    }

    pub(crate) fn watch(&self, since: u64) -> Watch {
        // A revision the store never reached: it went back (a file recreated), and what the watcher knows is of
        // another history.
        if since < self.compacted || since > self.revision {
            return Watch::Reset(self.snapshot());
        }
        let mut events = Vec::new();
        let mut ignored = Vec::new();
        for e in self.events.iter().filter(|e| e.revision > since) {
            let Some(subnet) = parse_subnet_key(&e.subnet) else {
                ignored.push(bad_key(&e.subnet));
                continue;
            };
            let lease = Lease { subnet, attrs: e.value.clone(), expiration: from_ms(e.expires_ms), created: e.created };
            events.push(Event { revision: e.revision, kind: e.kind, lease });
        }
        Watch::Events { events, revision: self.revision, ignored }
    }
}

fn bad_key(key: &str) -> Ignored {
    Ignored { key: key.to_owned(), reason: "the key names no IPv4 subnet".into() }
}

/// A store in memory, for tests and demos. Cloning shares it (an `Arc` inside), so two "nodes" in two threads can
/// race on one store.
///
/// ```
/// use core::time::Duration;
/// use std::time::SystemTime;
/// use tweed_control::config::BackendType;
/// use tweed_control::lease::LeaseAttrs;
/// use tweed_control::store::{LeaseStore, MemoryStore, StoreError};
///
/// let store = MemoryStore::new();
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
/// let a = LeaseAttrs::new("192.168.0.1".parse()?, BackendType::Vxlan);
/// let b = LeaseAttrs::new("192.168.0.2".parse()?, BackendType::Vxlan);
/// let subnet = "10.244.1.0/24".parse()?;
/// store.acquire(subnet, &a, Duration::from_secs(60), now)?;
/// assert!(matches!(store.acquire(subnet, &b, Duration::from_secs(60), now), Err(StoreError::Taken { .. })));
/// // Expired after a minute, the lease lapses a minute later (the grace for clock skew) and the subnet is free.
/// let later = now + Duration::from_secs(119);
/// assert!(store.acquire(subnet, &b, Duration::from_secs(60), later).is_err());
/// let later = now + Duration::from_secs(120);
/// assert!(store.acquire(subnet, &b, Duration::from_secs(60), later).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store keeping [`DEFAULT_HISTORY`] events.
    #[must_use]
    pub fn new() -> Self {
        Self::with_history(DEFAULT_HISTORY)
    }

    /// An empty store keeping `history` events for watchers.
    #[must_use]
    pub fn with_history(history: usize) -> Self {
        Self { state: Arc::new(Mutex::new(State::new(history))) }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A panic while holding the lock cannot leave `State` half-changed in a way that breaks its invariants
        // (each mutation is a map insert or remove plus an event), so a poisoned lock is still usable.
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}

impl LeaseStore for MemoryStore {
    fn get_config(&self) -> Result<Option<String>, StoreError> {
        Ok(self.with(|s| s.config()))
    }

    fn put_config(&self, config: &str) -> Result<u64, StoreError> {
        Ok(self.with(|s| s.put_config(config)))
    }

    fn leases(&self, now: SystemTime) -> Result<Snapshot, StoreError> {
        Ok(self.with(|s| {
            s.expire(now);
            s.snapshot()
        }))
    }

    fn acquire(
        &self,
        subnet: Ipv4Net,
        attrs: &LeaseAttrs,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Lease, StoreError> {
        self.with(|s| {
            s.expire(now);
            s.acquire(subnet, attrs, ttl, now)
        })
    }

    fn renew(&self, subnet: Ipv4Net, attrs: &LeaseAttrs, ttl: Duration, now: SystemTime) -> Result<Lease, StoreError> {
        self.with(|s| {
            s.expire(now);
            s.renew(subnet, attrs, ttl, now)
        })
    }

    fn release(&self, subnet: Ipv4Net, public_ip: Ipv4Addr, now: SystemTime) -> Result<(), StoreError> {
        self.with(|s| {
            s.expire(now);
            s.release(subnet, public_ip).map(|_| ())
        })
    }

    fn watch(&self, since: u64, now: SystemTime) -> Result<Watch, StoreError> {
        Ok(self.with(|s| {
            s.expire(now);
            s.watch(since)
        }))
    }
}

/// The behaviour every store must show, run against each store by its own tests.
#[cfg(test)]
pub(crate) mod conformance;

#[cfg(test)]
pub(crate) mod tests;
