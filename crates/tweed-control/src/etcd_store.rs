//! The lease store in etcd (cargo feature `etcd`), in flannel's layout so flannel and its tooling read what tweed
//! writes, and tweed reads what flannel writes.
//!
//! # Layout
//!
//! Under a prefix (flannel's `--etcd-prefix`, [`crate::lease::DEFAULT_PREFIX`] by default):
//!
//! - `<prefix>/config`: the network config, flannel's JSON, as given to [`LeaseStore::put_config`];
//! - `<prefix>/subnets/10.244.1.0-24`: a lease, with flannel's value
//!   `{"PublicIP":"192.168.0.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"…"}}`
//!   ([`LeaseAttrs::to_json`]), attached to an etcd lease of the lease's TTL, so etcd deletes it when its holder
//!   stops renewing, exactly as flannel's leases;
//! - `<prefix>/tweed/expirations/10.244.1.0-24`: tweed's one addition, the lease's expiration by its writer's clock
//!   in milliseconds since the Unix epoch, written in the same transaction and attached to the same etcd lease, so
//!   that [`Lease::expiration`] reads back as written. flannel never reads this directory. A lease without one
//!   (written by flannel) has its expiration from etcd's time-to-live when a snapshot is taken, and a key without an
//!   etcd lease (a flannel reservation) never expires.
//!
//! # Expiry is etcd's
//! A lease is live for as long as etcd keeps its key: etcd deletes it when the etcd lease's TTL runs out, on etcd's
//! clock. No node deletes or hides a lease because its own clock says it expired, so a node whose clock is off by a
//! day removes nothing and writes leases the others keep; `now` only dates the expiration written with a lease.
//!
//! # Operations
//!
//! - [`LeaseStore::acquire`] and [`LeaseStore::renew`] read every lease at a revision `R`, check the subnet against
//!   them (no overlap, or only the node's own lease for a renewal), grant an etcd lease, and write in one
//!   transaction guarded by "no key under `subnets/` changed after `R`": two nodes racing for one subnet, or for two
//!   overlapping ones, never both win. A guard that fails because of an unrelated change is retried.
//! - A renewal writes the lease again with a new etcd lease and revokes the old one, as flannel's renewal does; it
//!   works unchanged after the old etcd lease was lost (an etcd restart that outlived it, or etcd expiring it while
//!   the node could not reach it).
//! - [`LeaseStore::release`] deletes the lease if it still holds what was read (a transaction on its modification
//!   revision).
//! - [`LeaseStore::leases`] reads everything (one range, and one time-to-live lookup per flannel-written lease).
//! - [`LeaseStore::watch`] reads nothing: it answers from a buffer that a background task fills from one etcd
//!   watch on the prefix, started at the revision the store connected at, keeping [`EtcdOptions::history`] events.
//!   An idle watcher costs etcd nothing but that stream, however many leases there are. Asking from before what the
//!   buffer holds (it dropped it, etcd compacted it before the task saw it, or it predates the store), or from
//!   beyond where etcd is (etcd went back: restored from a backup), gives [`Watch::Reset`]. A store's own writes
//!   are in the buffer before `watch` returns; other nodes' writes, and etcd's expiries, appear when etcd has
//!   delivered them (milliseconds).
//!
//! # Bad data
//! An entry under `subnets/` whose name is no subnet or whose value is no lease is skipped and reported
//! ([`Snapshot::ignored`], the `ignored` of [`Watch::Events`]), the same on both paths, never an error for the whole
//! read; a lease overwritten by such a value is removed.
//!
//! # Outages and clusters
//!
//! Give every member of the etcd cluster: the store keeps one client per endpoint and sends each call to the member
//! that answered last, and on to the next one when that one refuses, fails or times out, so one member down costs a
//! call a refused connection, not the lease. Every call has a deadline ([`EtcdOptions::request_timeout`] per member
//! tried; connecting has [`EtcdOptions::connect_timeout`]). A call that no member answers fails with
//! [`StoreError::Unavailable`]; the next call tries again, and the watch task reconnects by itself (to the next
//! member) and resumes from the last revision it saw, so a restart loses no event (and a compaction meanwhile turns
//! into a [`Watch::Reset`]).
//!
//! # Threads
//!
//! The store owns a small tokio runtime (one worker thread) and blocks on it: call it from ordinary threads, or from
//! `spawn_blocking` in an async program, never from inside an async task (tokio forbids blocking on a runtime from
//! within one).
//!
//! ```no_run
//! use std::time::SystemTime;
//! use tweed_control::alloc::SubnetManager;
//! use tweed_control::config::BackendType;
//! use tweed_control::etcd_store::{EtcdOptions, EtcdStore};
//! use tweed_control::lease::{DEFAULT_PREFIX, LeaseAttrs};
//!
//! let endpoints = ["http://10.0.0.1:2379", "http://10.0.0.2:2379", "http://10.0.0.3:2379"].map(String::from);
//! let store = EtcdStore::connect(&endpoints, DEFAULT_PREFIX, EtcdOptions::default())?;
//! let manager = SubnetManager::from_store(store)?;
//! let lease = manager.acquire(&LeaseAttrs::new("192.168.0.1".parse()?, BackendType::Vxlan), SystemTime::now())?;
//! println!("this node's subnet: {}", lease.subnet);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod endpoints;
mod follow;
mod writes;

use core::future::Future;
use core::net::Ipv4Addr;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use etcd_client::{Client, GetOptions};
use ipnet::Ipv4Net;
use tokio::runtime::Runtime;
use tokio::sync::watch as tokio_watch;

use self::follow::{Buffer, Item, parse_value};
use crate::lease::{KeyLayout, Lease, LeaseAttrs, parse_subnet_key, subnet_key};
use crate::store::{DEFAULT_HISTORY, Event, EventKind, Ignored, LeaseStore, Snapshot, StoreError, Watch, to_ms};

/// How many times an operation retries when its transaction's guard fails because the leases changed meanwhile.
const ATTEMPTS: usize = 32;

/// The expiration given to a lease without an etcd lease (a flannel reservation): 2106-02-07, never in practice.
const NO_EXPIRY_MS: u64 = u32::MAX as u64 * 1000;

/// How many time-to-live lookups a snapshot has in flight at once.
const TTL_LOOKUPS: usize = 64;

/// Timeouts and history of an [`EtcdStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdOptions {
    /// How long to wait for a connection to an etcd endpoint (default 2 s).
    pub connect_timeout: Duration,
    /// How long one call to one etcd member may take (default 5 s); a [`LeaseStore`] call may try each member.
    pub request_timeout: Duration,
    /// How many lease events to keep for [`LeaseStore::watch`] (default [`DEFAULT_HISTORY`]).
    pub history: usize,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            history: DEFAULT_HISTORY,
        }
    }
}

/// A lease store in etcd, in flannel's layout. See the [module docs](self).
#[derive(Debug)]
pub struct EtcdStore {
    inner: Arc<Inner>,
    /// Dropped (shut down in the background) when the store is.
    runtime: Option<Runtime>,
}

struct Inner {
    endpoints: Vec<String>,
    layout: KeyLayout,
    options: EtcdOptions,
    /// One client per endpoint, or `None` before the first call or after a failure: the next call connects again.
    clients: Mutex<Vec<Option<Client>>>,
    /// The endpoint calls go to first: the last one that answered.
    current: AtomicUsize,
    /// The watch task's buffer.
    buffer: Mutex<Buffer>,
    /// The newest lease revision the watch task has seen.
    seen: tokio_watch::Sender<u64>,
    /// The newest revision this store wrote to `subnets/`.
    written: AtomicU64,
    /// The newest revision etcd answered with: a watcher asking from beyond it is of a history etcd went back on.
    known: AtomicU64,
}

impl core::fmt::Debug for Inner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.layout.prefix())
            .field("options", &self.options)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

/// One lease as read from etcd.
#[derive(Clone, Debug)]
struct Entry {
    key: String,
    attrs: LeaseAttrs,
    mod_revision: i64,
    created: u64,
    lease_id: i64,
    /// From the expiration key written with it, when there is one.
    expires_ms: Option<u64>,
}

/// Every lease at one revision.
#[derive(Debug)]
struct Read {
    revision: i64,
    leases: BTreeMap<Ipv4Net, Entry>,
    ignored: Vec<Ignored>,
}

fn rev(r: i64) -> u64 {
    u64::try_from(r).unwrap_or(0)
}

fn from_ms(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

/// The end of the key range of everything starting with `prefix` (etcd's `WithPrefix`).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (never, for a text prefix): to the end of the key space.
    vec![0]
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(b) || b.contains(a)
}

impl Inner {
    fn expirations_dir(&self) -> String {
        format!("{}/tweed/expirations/", self.layout.prefix())
    }

    fn expiration_key(&self, subnet: &Ipv4Net) -> String {
        format!("{}{}", self.expirations_dir(), subnet_key(subnet))
    }

    fn all_prefix(&self) -> String {
        format!("{}/", self.layout.prefix())
    }

    fn wrote(&self, revision: i64) {
        self.written.fetch_max(rev(revision), Ordering::SeqCst);
        self.observe(revision);
    }

    async fn get_config(&self) -> Result<Option<String>, StoreError> {
        let key = self.layout.config_key();
        let resp = self
            .call("reading the config", |mut c| {
                let key = key.clone();
                async move { c.get(key, None).await }
            })
            .await?;
        match resp.kvs().first() {
            None => Ok(None),
            Some(kv) => kv
                .value_str()
                .map(|s| Some(s.to_owned()))
                .map_err(|e| StoreError::Corrupt { context: self.layout.config_key(), message: e.to_string() }),
        }
    }

    async fn put_config(&self, config: &str) -> Result<u64, StoreError> {
        let (key, value) = (self.layout.config_key(), config.to_owned());
        let resp = self
            .call("writing the config", |mut c| {
                let (key, value) = (key.clone(), value.clone());
                async move { c.put(key, value, None).await }
            })
            .await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        self.observe(revision);
        Ok(rev(revision))
    }

    /// Where etcd is now (a linearizable read of nothing).
    async fn head(&self) -> Result<i64, StoreError> {
        let prefix = self.all_prefix();
        let resp = self
            .call("reading the revision", |mut c| {
                let prefix = prefix.clone();
                async move { c.get(prefix, Some(GetOptions::new().with_prefix().with_count_only())).await }
            })
            .await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        self.observe(revision);
        Ok(revision)
    }

    /// Every lease, as etcd holds it, and the entries that are not leases.
    async fn read(&self) -> Result<Read, StoreError> {
        let prefix = self.all_prefix();
        let resp = self
            .call("reading the leases", |mut c| {
                let prefix = prefix.clone();
                async move { c.get(prefix, Some(GetOptions::new().with_prefix())).await }
            })
            .await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        self.observe(revision);
        let exp_dir = self.expirations_dir();
        let mut expirations: BTreeMap<Ipv4Net, (i64, u64)> = BTreeMap::new();
        let mut read = Read { revision, leases: BTreeMap::new(), ignored: Vec::new() };
        let mut found = Vec::new();
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            if let Some(name) = key.strip_prefix(&exp_dir) {
                let ms = kv.value_str().ok().and_then(|v| v.parse::<u64>().ok());
                if let (Some(subnet), Some(ms)) = (parse_subnet_key(name), ms) {
                    expirations.insert(subnet, (kv.mod_revision(), ms));
                }
                continue;
            }
            match self.subnet_of(&key) {
                None => {}
                Some(Err(ignored)) => read.ignored.push(ignored),
                Some(Ok(subnet)) => match parse_value(kv) {
                    Ok(attrs) => found.push((subnet, key, attrs, kv)),
                    Err(reason) => read.ignored.push(Ignored { key, reason }),
                },
            }
        }
        for (subnet, key, attrs, kv) in found {
            // The expiration key counts only when written with this value (same transaction, same revision).
            let expires_ms = expirations.get(&subnet).filter(|(m, _)| *m == kv.mod_revision()).map(|(_, ms)| *ms);
            let entry = Entry {
                key,
                attrs,
                mod_revision: kv.mod_revision(),
                created: rev(kv.create_revision()),
                lease_id: kv.lease(),
                expires_ms,
            };
            read.leases.insert(subnet, entry);
        }
        Ok(read)
    }

    /// The expirations of leases written without an expiration key (by flannel), from their etcd leases' TTLs, a
    /// few lookups at a time.
    async fn foreign_expirations(&self, ids: Vec<i64>, now: SystemTime) -> Result<BTreeMap<i64, u64>, StoreError> {
        let mut found = BTreeMap::new();
        for chunk in ids.chunks(TTL_LOOKUPS) {
            let mut tasks = tokio::task::JoinSet::new();
            for &id in chunk {
                let (member, client) = self.any_client().await?;
                let deadline = self.options.request_timeout;
                tasks.spawn(async move {
                    let mut c = client;
                    (id, member, tokio::time::timeout(deadline, c.lease_time_to_live(id, None)).await)
                });
            }
            while let Some(done) = tasks.join_next().await {
                let Ok((id, member, answer)) = done else { continue };
                match answer {
                    Ok(Ok(resp)) => {
                        let ttl = u64::try_from(resp.ttl()).unwrap_or(0);
                        found.insert(id, to_ms(now).saturating_add(ttl.saturating_mul(1000)));
                    }
                    Ok(Err(e)) => {
                        self.fail_over(member);
                        return Err(self.unavailable("reading a lease's time to live", e));
                    }
                    Err(_) => {
                        self.fail_over(member);
                        return Err(self.unavailable("reading a lease's time to live", "timed out"));
                    }
                }
            }
        }
        Ok(found)
    }

    /// The member calls go to now, and its client.
    async fn any_client(&self) -> Result<(usize, Client), StoreError> {
        let n = self.endpoints.len().max(1);
        let i = self.current.load(Ordering::SeqCst) % n;
        Ok((i, self.client(i).await?))
    }

    /// The expiration of one lease written without an expiration key.
    async fn foreign_expiration(&self, lease_id: i64, now: SystemTime) -> Result<u64, StoreError> {
        if lease_id == 0 {
            return Ok(NO_EXPIRY_MS);
        }
        let resp = self
            .call("reading a lease's time to live", |mut c| async move { c.lease_time_to_live(lease_id, None).await })
            .await?;
        let ttl = u64::try_from(resp.ttl()).unwrap_or(0);
        Ok(to_ms(now).saturating_add(ttl.saturating_mul(1000)))
    }

    async fn snapshot(&self, now: SystemTime) -> Result<Snapshot, StoreError> {
        let read = self.read().await?;
        let foreign: Vec<i64> =
            read.leases.values().filter(|e| e.expires_ms.is_none() && e.lease_id != 0).map(|e| e.lease_id).collect();
        let ttls = self.foreign_expirations(foreign, now).await?;
        let leases = read
            .leases
            .into_iter()
            .map(|(subnet, e)| {
                let ms = e.expires_ms.or_else(|| ttls.get(&e.lease_id).copied()).unwrap_or(NO_EXPIRY_MS);
                Lease { subnet, attrs: e.attrs, expiration: from_ms(ms), created: e.created }
            })
            .collect();
        Ok(Snapshot { revision: rev(read.revision), leases, ignored: read.ignored })
    }

    async fn watch(&self, since: u64, now: SystemTime) -> Result<Watch, StoreError> {
        // Before answering, the buffer holds this store's own writes (others' come as etcd delivers them).
        let target = self.written.load(Ordering::SeqCst);
        let mut seen = self.seen.subscribe();
        if tokio::time::timeout(self.options.request_timeout, seen.wait_for(|s| *s >= target)).await.is_err() {
            return Err(self.unavailable("watching the leases", "the watch stream is behind"));
        }
        let (items, complete_after, seen) = {
            let buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
            let items: Vec<Item> = buffer.items.iter().filter(|r| r.revision() > since).cloned().collect();
            (items, buffer.complete_after, *self.seen.borrow())
        };
        if since < complete_after || since > self.known.load(Ordering::SeqCst) {
            return Ok(Watch::Reset(self.snapshot(now).await?));
        }
        let mut events = Vec::with_capacity(items.len());
        let mut ignored = Vec::new();
        for item in items {
            let r = match item {
                Item::Lease(r) => r,
                Item::Ignored { ignored: i, .. } => {
                    ignored.push(i);
                    continue;
                }
            };
            let expires_ms = match (r.expires_ms, r.kind) {
                (Some(ms), _) => ms,
                (None, EventKind::Removed) => to_ms(now),
                (None, EventKind::Added) => self.foreign_expiration(r.lease_id, now).await?,
            };
            let lease = Lease { subnet: r.subnet, attrs: r.attrs, expiration: from_ms(expires_ms), created: r.created };
            events.push(Event { revision: r.revision, kind: r.kind, lease });
        }
        Ok(Watch::Events { events, revision: since.max(seen), ignored })
    }
}

impl EtcdStore {
    /// Connects to etcd at `endpoints` (`http://host:2379`, …: every member of the cluster) and keeps leases under
    /// `prefix` (`/coreos.com/network` is flannel's default). Fails with [`StoreError::Unavailable`] when no member
    /// answers within the timeouts; once connected, the store rides out later outages by itself.
    pub fn connect(endpoints: &[String], prefix: &str, options: EtcdOptions) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tweed-etcd")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Io {
                context: "starting the etcd client's runtime".into(),
                message: e.to_string(),
            })?;
        let (seen, _) = tokio_watch::channel(0);
        let inner = Arc::new(Inner {
            endpoints: endpoints.to_vec(),
            layout: KeyLayout::new(prefix),
            buffer: Mutex::new(Buffer { items: VecDeque::new(), complete_after: 0, history: options.history }),
            options,
            clients: Mutex::new(vec![None; endpoints.len()]),
            current: AtomicUsize::new(0),
            seen,
            written: AtomicU64::new(0),
            known: AtomicU64::new(0),
        });
        // Answers once, or fails now; the watch follows from there.
        let start = runtime.block_on(inner.head())?;
        {
            let mut buffer = inner.buffer.lock().unwrap_or_else(PoisonError::into_inner);
            buffer.complete_after = rev(start);
        }
        inner.seen.send_replace(rev(start));
        runtime.spawn(Arc::clone(&inner).follow(start + 1));
        Ok(Self { inner, runtime: Some(runtime) })
    }

    /// Where the keys live.
    #[must_use]
    pub fn layout(&self) -> &KeyLayout {
        &self.inner.layout
    }

    /// The options the store was built with.
    #[must_use]
    pub fn options(&self) -> &EtcdOptions {
        &self.inner.options
    }

    fn run<T>(&self, f: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        match &self.runtime {
            Some(rt) => rt.block_on(f),
            None => Err(StoreError::Io { context: "etcd store".into(), message: "shut down".into() }),
        }
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl LeaseStore for EtcdStore {
    fn get_config(&self) -> Result<Option<String>, StoreError> {
        self.run(self.inner.get_config())
    }

    fn put_config(&self, config: &str) -> Result<u64, StoreError> {
        self.run(self.inner.put_config(config))
    }

    fn leases(&self, now: SystemTime) -> Result<Snapshot, StoreError> {
        self.run(self.inner.snapshot(now))
    }

    fn acquire(
        &self,
        subnet: Ipv4Net,
        attrs: &LeaseAttrs,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Lease, StoreError> {
        self.run(self.inner.acquire(subnet, attrs, ttl, now))
    }

    fn renew(&self, subnet: Ipv4Net, attrs: &LeaseAttrs, ttl: Duration, now: SystemTime) -> Result<Lease, StoreError> {
        self.run(self.inner.renew(subnet, attrs, ttl, now))
    }

    fn release(&self, subnet: Ipv4Net, public_ip: Ipv4Addr, _now: SystemTime) -> Result<(), StoreError> {
        self.run(self.inner.release(subnet, public_ip))
    }

    fn watch(&self, since: u64, now: SystemTime) -> Result<Watch, StoreError> {
        self.run(self.inner.watch(since, now))
    }
}

#[cfg(test)]
mod tests;
