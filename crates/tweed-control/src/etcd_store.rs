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
//! - `<prefix>/tweed/expirations/10.244.1.0-24`: tweed's one addition, the lease's expiration in milliseconds since
//!   the Unix epoch, written in the same transaction and attached to the same etcd lease. It exists because the
//!   [`LeaseStore`] contract takes time as an argument (`now`): a lease whose expiration is at or before `now` counts
//!   as absent and is removed by the first operation that sees it lapsed. flannel never reads this directory. A
//!   lease without one (written by flannel) expires when its etcd lease does; its expiration is read from etcd's
//!   time-to-live, and a key without an etcd lease (a flannel reservation) never expires.
//!
//! Nodes should pass the wall clock as `now`: a node whose clock runs ahead removes other nodes' leases that much
//! early (flannel's renew margin, an hour, makes a few seconds of skew harmless).
//!
//! # Operations
//!
//! - [`LeaseStore::acquire`] and [`LeaseStore::renew`] read every lease at a revision `R`, check the subnet against
//!   them (no overlap, or only the node's own lease for a renewal), grant an etcd lease, and write in one
//!   transaction guarded by "no key under `subnets/` changed after `R`": two nodes racing for one subnet, or for two
//!   overlapping ones, never both win. A guard that fails because of an unrelated change is retried.
//! - A renewal writes the lease again with a new etcd lease and revokes the old one, as flannel's renewal does; it
//!   works unchanged after the old etcd lease was lost (an etcd restart that outlived it).
//! - [`LeaseStore::release`] deletes the lease if it still holds what was read (a transaction on its modification
//!   revision).
//! - [`LeaseStore::watch`] serves the changes from a buffer that a background task fills from an etcd watch on the
//!   prefix (from revision 1, or from etcd's compaction revision), keeping [`EtcdOptions::history`] events. Asking
//!   for a revision older than what the buffer holds (the buffer dropped it, or etcd compacted it before the task
//!   saw it) gives [`Watch::Reset`]. A store's own writes are in the buffer before `watch` returns; other nodes'
//!   writes appear when etcd has delivered them (milliseconds).
//!
//! # Outages
//!
//! Every call has a deadline ([`EtcdOptions::request_timeout`]; connecting has [`EtcdOptions::connect_timeout`]). A
//! call that cannot reach etcd fails with [`StoreError::Unavailable`]; the next call reconnects, and the watch task
//! reconnects by itself and resumes from the last revision it saw, so an etcd restart loses no event (and a
//! compaction meanwhile turns into a [`Watch::Reset`]).
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
//! let store = EtcdStore::connect(&["http://127.0.0.1:2379".to_owned()], DEFAULT_PREFIX, EtcdOptions::default())?;
//! let manager = SubnetManager::from_store(store)?;
//! let lease = manager.acquire(&LeaseAttrs::new("192.168.0.1".parse()?, BackendType::Vxlan), SystemTime::now())?;
//! println!("this node's subnet: {}", lease.subnet);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::net::Ipv4Addr;
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, KeyValue, PutOptions, Txn, TxnOp, WatchOptions,
};
use ipnet::Ipv4Net;
use tokio::runtime::Runtime;
use tokio::sync::watch as tokio_watch;

use crate::lease::{KeyLayout, Lease, LeaseAttrs, parse_subnet_key, subnet_key};
use crate::store::{DEFAULT_HISTORY, Event, EventKind, LeaseStore, Snapshot, StoreError, Watch, to_ms};

/// How many times an operation retries when its transaction's guard fails because the leases changed meanwhile.
const ATTEMPTS: usize = 32;

/// The expiration given to a lease without an etcd lease (a flannel reservation): 2106-02-07, never in practice.
const NO_EXPIRY_MS: u64 = u32::MAX as u64 * 1000;

/// Timeouts and history of an [`EtcdStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdOptions {
    /// How long to wait for a connection to an etcd endpoint (default 2 s).
    pub connect_timeout: Duration,
    /// How long one call to etcd may take, and so roughly how long a [`LeaseStore`] call may block (default 5 s).
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
    /// The connected client, or `None` after a failure: the next call connects again.
    client: Mutex<Option<Client>>,
    /// The watch task's buffer.
    buffer: Mutex<Buffer>,
    /// The newest revision the watch task has seen.
    seen: tokio_watch::Sender<u64>,
    /// The newest revision this store wrote to `subnets/`.
    written: AtomicU64,
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

/// One lease change as the watch task keeps it.
#[derive(Clone, Debug)]
struct Raw {
    revision: u64,
    kind: EventKind,
    subnet: Ipv4Net,
    attrs: LeaseAttrs,
    /// From the expiration key written with it, when there is one.
    expires_ms: Option<u64>,
    lease_id: i64,
}

#[derive(Debug)]
struct Buffer {
    events: VecDeque<Raw>,
    /// The buffer holds every lease event after this revision.
    complete_after: u64,
    history: usize,
}

impl Buffer {
    fn push(&mut self, raw: Raw) {
        self.events.push_back(raw);
        while self.events.len() > self.history {
            if let Some(old) = self.events.pop_front() {
                self.complete_after = self.complete_after.max(old.revision);
            }
        }
    }
}

/// One lease as read from etcd.
#[derive(Clone, Debug)]
struct Entry {
    key: String,
    attrs: LeaseAttrs,
    mod_revision: i64,
    lease_id: i64,
    expires_ms: u64,
}

/// Every lease at one revision.
#[derive(Debug)]
struct Read {
    revision: i64,
    /// The newest modification revision of any key under the prefix: the watch task must have seen it.
    newest: i64,
    leases: BTreeMap<Ipv4Net, Entry>,
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

    fn unavailable(&self, context: &str, message: impl ToString) -> StoreError {
        StoreError::Unavailable {
            context: format!("{context} (etcd at {})", self.endpoints.join(",")),
            message: message.to_string(),
        }
    }

    /// Maps a client error; transport failures drop the client so the next call reconnects.
    fn error(&self, context: &str, e: &etcd_client::Error) -> StoreError {
        let unavailable = match e {
            etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
            // gRPC's Cancelled (1), Unknown (2), DeadlineExceeded (4) and Unavailable (14): the server is away.
            etcd_client::Error::GRpcStatus(s) => matches!(i32::from(s.code()), 1 | 2 | 4 | 14),
            _ => false,
        };
        if unavailable {
            self.forget_client();
            self.unavailable(context, e)
        } else {
            StoreError::Io { context: format!("etcd: {context}"), message: e.to_string() }
        }
    }

    fn forget_client(&self) {
        *self.client.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    async fn client(&self) -> Result<Client, StoreError> {
        if let Some(c) = self.client.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            return Ok(c);
        }
        let options = ConnectOptions::new()
            .with_connect_timeout(self.options.connect_timeout)
            .with_timeout(self.options.request_timeout)
            .with_keep_alive(Duration::from_secs(10), self.options.request_timeout);
        let client = match tokio::time::timeout(
            self.options.connect_timeout,
            Client::connect(self.endpoints.clone(), Some(options)),
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(self.unavailable("connecting", e)),
            Err(_) => return Err(self.unavailable("connecting", "timed out")),
        };
        *self.client.lock().unwrap_or_else(PoisonError::into_inner) = Some(client.clone());
        Ok(client)
    }

    /// Runs one request on the client with the request deadline.
    async fn call<T, F, Fut>(&self, context: &str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let client = self.client().await?;
        match tokio::time::timeout(self.options.request_timeout, f(client)).await {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => Err(self.error(context, &e)),
            Err(_) => {
                self.forget_client();
                Err(self.unavailable(context, format!("no answer within {:?}", self.options.request_timeout)))
            }
        }
    }

    fn wrote(&self, revision: i64) {
        self.written.fetch_max(rev(revision), Ordering::SeqCst);
    }

    async fn get_config(&self) -> Result<Option<String>, StoreError> {
        let key = self.layout.config_key();
        let resp = self.call("reading the config", |mut c| async move { c.get(key, None).await }).await?;
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
        let resp = self.call("writing the config", |mut c| async move { c.put(key, value, None).await }).await?;
        Ok(resp.header().map_or(0, |h| rev(h.revision())))
    }

    /// The expiration of a lease written without an expiration key (by flannel): from its etcd lease's TTL.
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

    /// Every lease, as etcd holds it (lapsed ones included).
    async fn read(&self, now: SystemTime) -> Result<Read, StoreError> {
        let prefix = self.all_prefix();
        let resp =
            self.call("reading the leases", |mut c| async move {
                c.get(prefix, Some(GetOptions::new().with_prefix())).await
            })
            .await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let subnets_dir = self.layout.subnets_dir();
        let exp_dir = self.expirations_dir();
        let mut expirations: BTreeMap<Ipv4Net, (i64, u64)> = BTreeMap::new();
        let mut found: Vec<(Ipv4Net, &KeyValue)> = Vec::new();
        let newest = resp.kvs().iter().map(KeyValue::mod_revision).max().unwrap_or(0);
        for kv in resp.kvs() {
            let Ok(key) = kv.key_str() else { continue };
            if let Some(name) = key.strip_prefix(&exp_dir) {
                let ms = kv.value_str().ok().and_then(|v| v.parse::<u64>().ok());
                if let (Some(subnet), Some(ms)) = (parse_subnet_key(name), ms) {
                    expirations.insert(subnet, (kv.mod_revision(), ms));
                }
            } else if key.starts_with(&subnets_dir) {
                // Keys that are not subnet names are not leases (flannel ignores them too).
                if let Some(subnet) = self.layout.parse_subnet_key(key) {
                    found.push((subnet, kv));
                }
            }
        }
        let mut leases = BTreeMap::new();
        for (subnet, kv) in found {
            let key = kv.key_str().unwrap_or_default().to_owned();
            let attrs = kv
                .value_str()
                .map_err(|e| e.to_string())
                .and_then(|v| LeaseAttrs::from_json(v).map_err(|e| e.to_string()))
                .map_err(|message| StoreError::Corrupt { context: key.clone(), message })?;
            // The expiration key counts only when written with this value (same transaction, same revision).
            let expires_ms = match expirations.get(&subnet) {
                Some(&(m, ms)) if m == kv.mod_revision() => ms,
                _ => self.foreign_expiration(kv.lease(), now).await?,
            };
            leases.insert(
                subnet,
                Entry { key, attrs, mod_revision: kv.mod_revision(), lease_id: kv.lease(), expires_ms },
            );
        }
        Ok(Read { revision, newest, leases })
    }

    /// Deletes `entry` (and its expiration key) if it is unchanged; true when it was.
    async fn delete_if_unchanged(&self, subnet: &Ipv4Net, entry: &Entry) -> Result<bool, StoreError> {
        let txn = Txn::new()
            .when([Compare::mod_revision(entry.key.clone(), CompareOp::Equal, entry.mod_revision)])
            .and_then([TxnOp::delete(entry.key.clone(), None), TxnOp::delete(self.expiration_key(subnet), None)]);
        let resp = self.call("deleting a lease", |mut c| async move { c.txn(txn).await }).await?;
        if resp.succeeded() {
            self.wrote(resp.header().map_or(0, |h| h.revision()));
            self.revoke(entry.lease_id).await;
        }
        Ok(resp.succeeded())
    }

    /// Revokes an etcd lease no key uses any more; best effort (it expires by itself otherwise).
    async fn revoke(&self, lease_id: i64) {
        if lease_id != 0 {
            let _ = self.call("revoking a lease", |mut c| async move { c.lease_revoke(lease_id).await }).await;
        }
    }

    /// The leases live at `now`, after removing the lapsed ones.
    async fn read_live(&self, now: SystemTime) -> Result<Read, StoreError> {
        let now_ms = to_ms(now);
        for _ in 0..ATTEMPTS {
            let read = self.read(now).await?;
            let lapsed: Vec<(&Ipv4Net, &Entry)> = read.leases.iter().filter(|(_, e)| e.expires_ms <= now_ms).collect();
            if lapsed.is_empty() {
                return Ok(read);
            }
            for (subnet, entry) in lapsed {
                self.delete_if_unchanged(subnet, entry).await?;
            }
        }
        Err(self.unavailable("reading the leases", format!("they kept changing {ATTEMPTS} times in a row")))
    }

    /// Writes a lease for `subnet`, guarded by "nothing under `subnets/` changed since `read`".
    async fn write_lease(
        &self,
        read: &Read,
        subnet: Ipv4Net,
        attrs: &LeaseAttrs,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Option<Lease>, StoreError> {
        // etcd's TTLs are whole seconds: round up, so etcd never drops a lease before its expiration.
        let secs = i64::try_from(ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).unwrap_or(i64::MAX).max(1);
        let grant = self.call("granting an etcd lease", |mut c| async move { c.lease_grant(secs, None).await }).await?;
        let lease_id = grant.id();
        let expires_ms = to_ms(now).saturating_add(ttl_ms(ttl));
        let dir = self.layout.subnets_dir();
        let txn = Txn::new()
            .when([Compare::mod_revision(dir.clone(), CompareOp::Less, read.revision + 1).with_range(prefix_end(&dir))])
            .and_then([
                TxnOp::put(
                    self.layout.subnet_key(&subnet),
                    attrs.to_json(),
                    Some(PutOptions::new().with_lease(lease_id)),
                ),
                TxnOp::put(
                    self.expiration_key(&subnet),
                    expires_ms.to_string(),
                    Some(PutOptions::new().with_lease(lease_id)),
                ),
            ]);
        let resp = match self.call("writing a lease", |mut c| async move { c.txn(txn).await }).await {
            Ok(r) => r,
            Err(e) => {
                self.revoke(lease_id).await;
                return Err(e);
            }
        };
        if !resp.succeeded() {
            self.revoke(lease_id).await;
            return Ok(None);
        }
        self.wrote(resp.header().map_or(0, |h| h.revision()));
        Ok(Some(Lease { subnet, attrs: attrs.clone(), expiration: from_ms(expires_ms) }))
    }

    async fn acquire(
        &self,
        subnet: Ipv4Net,
        attrs: &LeaseAttrs,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Lease, StoreError> {
        let subnet = subnet.trunc();
        for _ in 0..ATTEMPTS {
            let read = self.read_live(now).await?;
            if let Some((held, e)) = read.leases.iter().find(|(held, _)| overlaps(held, &subnet)) {
                return Err(StoreError::Taken { subnet, held: *held, holder: e.attrs.public_ip });
            }
            if let Some(lease) = self.write_lease(&read, subnet, attrs, ttl, now).await? {
                return Ok(lease);
            }
        }
        Err(self.unavailable("acquiring a lease", format!("the leases kept changing {ATTEMPTS} times in a row")))
    }

    async fn renew(
        &self,
        subnet: Ipv4Net,
        attrs: &LeaseAttrs,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Lease, StoreError> {
        let subnet = subnet.trunc();
        for _ in 0..ATTEMPTS {
            let read = self.read_live(now).await?;
            if let Some((held, e)) = read
                .leases
                .iter()
                .find(|(held, e)| overlaps(held, &subnet) && (**held != subnet || e.attrs.public_ip != attrs.public_ip))
            {
                return Err(StoreError::Taken { subnet, held: *held, holder: e.attrs.public_ip });
            }
            let old = read.leases.get(&subnet).map(|e| e.lease_id);
            if let Some(lease) = self.write_lease(&read, subnet, attrs, ttl, now).await? {
                if let Some(old) = old {
                    self.revoke(old).await;
                }
                return Ok(lease);
            }
        }
        Err(self.unavailable("renewing a lease", format!("the leases kept changing {ATTEMPTS} times in a row")))
    }

    async fn release(&self, subnet: Ipv4Net, public_ip: Ipv4Addr, now: SystemTime) -> Result<(), StoreError> {
        let subnet = subnet.trunc();
        for _ in 0..ATTEMPTS {
            let read = self.read_live(now).await?;
            match read.leases.get(&subnet) {
                None => return Ok(()),
                Some(e) if e.attrs.public_ip != public_ip => {
                    return Err(StoreError::Taken { subnet, held: subnet, holder: e.attrs.public_ip });
                }
                Some(e) => {
                    if self.delete_if_unchanged(&subnet, e).await? {
                        return Ok(());
                    }
                }
            }
        }
        Err(self.unavailable("releasing a lease", format!("the lease kept changing {ATTEMPTS} times in a row")))
    }

    async fn snapshot(&self, now: SystemTime) -> Result<Snapshot, StoreError> {
        let read = self.read_live(now).await?;
        Ok(Snapshot {
            revision: rev(read.revision),
            leases: read
                .leases
                .into_iter()
                .map(|(subnet, e)| Lease { subnet, attrs: e.attrs, expiration: from_ms(e.expires_ms) })
                .collect(),
        })
    }

    async fn watch(&self, since: u64, now: SystemTime) -> Result<Watch, StoreError> {
        // Lapsed leases become events first, as in the other stores.
        let read = self.read_live(now).await?;
        // Before answering, the buffer holds this store's own writes and every key's latest write. (Only other
        // nodes' deletions can still be on their way; they come with a later call.)
        let target = self.written.load(Ordering::SeqCst).max(rev(read.newest));
        let mut seen = self.seen.subscribe();
        if tokio::time::timeout(self.options.request_timeout, seen.wait_for(|s| *s >= target)).await.is_err() {
            return Err(self.unavailable("watching the leases", "the watch stream is behind"));
        }
        let (raws, complete_after, seen) = {
            let buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
            let raws: Vec<Raw> = buffer.events.iter().filter(|r| r.revision > since).cloned().collect();
            (raws, buffer.complete_after, *self.seen.borrow())
        };
        if since < complete_after {
            return Ok(Watch::Reset(self.snapshot(now).await?));
        }
        let mut events = Vec::with_capacity(raws.len());
        for r in raws {
            let expires_ms = match (r.expires_ms, r.kind) {
                (Some(ms), _) => ms,
                (None, EventKind::Removed) => to_ms(now),
                (None, EventKind::Added) => self.foreign_expiration(r.lease_id, now).await?,
            };
            let lease = Lease { subnet: r.subnet, attrs: r.attrs, expiration: from_ms(expires_ms) };
            events.push(Event { revision: r.revision, kind: r.kind, lease });
        }
        Ok(Watch::Events { events, revision: since.max(seen) })
    }

    /// The watch task: follows `<prefix>/` from revision 1 for as long as the store lives, reconnecting as needed.
    async fn follow(self: Arc<Self>) {
        let mut next: i64 = 1;
        let mut backoff = Duration::from_millis(50);
        loop {
            if let Err(_e) = self.follow_once(&mut next, &mut backoff).await {
                // Reconnect after a pause; `next` says where to resume.
                self.forget_client();
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    async fn follow_once(&self, next: &mut i64, backoff: &mut Duration) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let options = WatchOptions::new().with_prefix().with_prev_key().with_start_revision(*next);
        let prefix = self.all_prefix();
        let mut stream =
            match tokio::time::timeout(self.options.request_timeout, client.watch(prefix, Some(options))).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(self.error("watching", &e)),
                Err(_) => return Err(self.unavailable("watching", "timed out")),
            };
        loop {
            let resp = match stream.message().await {
                Ok(Some(resp)) => resp,
                Ok(None) => return Err(self.unavailable("watching", "the stream ended")),
                Err(e) => return Err(self.error("watching", &e)),
            };
            *backoff = Duration::from_millis(50);
            if resp.canceled() {
                let compacted = resp.compact_revision();
                if compacted > 0 {
                    // History up to `compacted` is gone: whoever asks for it gets a snapshot.
                    let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
                    buffer.events.clear();
                    buffer.complete_after = buffer.complete_after.max(rev(compacted));
                    *next = compacted + 1;
                    drop(buffer);
                    self.seen.send_modify(|s| *s = (*s).max(rev(compacted)));
                }
                return Err(self.unavailable("watching", format!("canceled: {}", resp.cancel_reason())));
            }
            let mut newest = 0;
            let raws = self.decode(resp.events());
            {
                let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
                for r in raws {
                    buffer.push(r);
                }
            }
            for e in resp.events() {
                if let Some(kv) = e.kv() {
                    newest = newest.max(kv.mod_revision());
                }
            }
            if newest > 0 {
                *next = newest + 1;
                self.seen.send_modify(|s| *s = (*s).max(rev(newest)));
            }
        }
    }

    /// The lease events in one watch response, pairing each with its expiration key's change.
    fn decode(&self, events: &[etcd_client::Event]) -> Vec<Raw> {
        let exp_dir = self.expirations_dir();
        // (revision, subnet) -> expiration, for puts (new value) and deletes (previous value).
        let mut expirations: BTreeMap<(i64, Ipv4Net), u64> = BTreeMap::new();
        for e in events {
            let (Some(kv), kind) = (e.kv(), e.event_type()) else { continue };
            let Some(name) = kv.key_str().ok().and_then(|k| k.strip_prefix(&exp_dir)) else { continue };
            let Some(subnet) = parse_subnet_key(name) else { continue };
            let value = match kind {
                EventType::Put => Some(kv),
                EventType::Delete => e.prev_kv(),
            };
            if let Some(ms) = value.and_then(|v| v.value_str().ok()).and_then(|v| v.parse::<u64>().ok()) {
                expirations.insert((kv.mod_revision(), subnet), ms);
            }
        }
        let mut raws = Vec::new();
        for e in events {
            let Some(kv) = e.kv() else { continue };
            let Some(subnet) = kv.key_str().ok().and_then(|k| self.layout.parse_subnet_key(k)) else { continue };
            let (kind, value) = match e.event_type() {
                EventType::Put => (EventKind::Added, Some(kv)),
                EventType::Delete => (EventKind::Removed, e.prev_kv()),
            };
            // A value that does not read (or a delete whose previous value etcd no longer has) is not a lease.
            let Some(attrs) = value.and_then(|v| v.value_str().ok()).and_then(|v| LeaseAttrs::from_json(v).ok()) else {
                continue;
            };
            let lease_id = value.map_or(0, KeyValue::lease);
            raws.push(Raw {
                revision: rev(kv.mod_revision()),
                kind,
                subnet,
                attrs,
                expires_ms: expirations.get(&(kv.mod_revision(), subnet)).copied(),
                lease_id,
            });
        }
        raws
    }
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(b) || b.contains(a)
}

impl EtcdStore {
    /// Connects to etcd at `endpoints` (`http://host:2379`, …) and keeps leases under `prefix`
    /// (`/coreos.com/network` is flannel's default). Fails with [`StoreError::Unavailable`] when etcd does not
    /// answer within the timeouts; once connected, the store rides out later outages by itself.
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
            buffer: Mutex::new(Buffer { events: VecDeque::new(), complete_after: 0, history: options.history }),
            options,
            client: Mutex::new(None),
            seen,
            written: AtomicU64::new(0),
        });
        // Answers once, or fails now.
        runtime.block_on(inner.get_config())?;
        runtime.spawn(Arc::clone(&inner).follow());
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

    fn release(&self, subnet: Ipv4Net, public_ip: Ipv4Addr, now: SystemTime) -> Result<(), StoreError> {
        self.run(self.inner.release(subnet, public_ip, now))
    }

    fn watch(&self, since: u64, now: SystemTime) -> Result<Watch, StoreError> {
        self.run(self.inner.watch(since, now))
    }
}

/// The etcd server the tests start (shared with `tests/etcd.rs`).
#[cfg(test)]
#[path = "../tests/etcd_harness/mod.rs"]
mod test_harness;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::{basic, compaction};
    use test_harness as harness;

    /// The contract every store meets (`store::conformance`), against a real etcd. One server per run, used in turn
    /// under two prefixes: the suite expects consecutive revisions, so nothing else may write meanwhile.
    #[test]
    fn etcd_store_conformance() {
        let Some(etcd) = harness::Etcd::start() else { return };
        let basic_store =
            EtcdStore::connect(&etcd.endpoints(), "/tweed-test/basic", EtcdOptions::default()).expect("connects");
        basic(&basic_store);
        let two = EtcdOptions { history: 2, ..EtcdOptions::default() };
        let compaction_store = EtcdStore::connect(&etcd.endpoints(), "/tweed-test/compaction", two).expect("connects");
        compaction(&compaction_store);
    }

    #[test]
    fn prefix_end_is_the_next_key() {
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
        assert_eq!(prefix_end(""), vec![0]);
    }

    #[test]
    fn unreachable_etcd_is_a_clear_error_in_bounded_time() {
        // A port nothing listens on: bound, so no test running beside this one can start a server there, but not
        // listening, so a connection is refused as on a free port.
        let held = tokio::net::TcpSocket::new_v4().expect("a socket");
        held.bind((std::net::Ipv4Addr::LOCALHOST, 0).into()).expect("a free loopback port");
        let port = held.local_addr().expect("bound").port();
        let options = EtcdOptions {
            connect_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_millis(500),
            ..EtcdOptions::default()
        };
        let started = std::time::Instant::now();
        let err = EtcdStore::connect(&[format!("http://127.0.0.1:{port}")], "/x", options).expect_err("nobody there");
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
        assert!(err.to_string().starts_with("lease store unavailable: "), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
        drop(held);
    }
}
