//! The watch task: one etcd watch on the prefix for as long as the store lives, filling the buffer that
//! [`LeaseStore::watch`](crate::store::LeaseStore::watch) answers from, so that following the leases costs etcd
//! one stream and no reads.

use core::sync::atomic::Ordering;
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, PoisonError};

use etcd_client::{EventType, GetOptions, KeyValue, WatchOptions};
use ipnet::Ipv4Net;

use super::{Inner, rev};
use crate::lease::{LeaseAttrs, parse_subnet_key};
use crate::store::{EventKind, Ignored, StoreError};

/// One lease change as the watch task keeps it.
#[derive(Clone, Debug)]
pub(super) struct Raw {
    pub(super) revision: u64,
    pub(super) kind: EventKind,
    pub(super) subnet: Ipv4Net,
    pub(super) attrs: LeaseAttrs,
    /// From the expiration key written with it, when there is one.
    pub(super) expires_ms: Option<u64>,
    pub(super) lease_id: i64,
    pub(super) created: u64,
}

/// What the buffer holds: lease changes, and entries written under `subnets/` that are not leases.
#[derive(Clone, Debug)]
pub(super) enum Item {
    Lease(Raw),
    Ignored { revision: u64, ignored: Ignored },
}

impl Item {
    pub(super) const fn revision(&self) -> u64 {
        match self {
            Self::Lease(r) => r.revision,
            Self::Ignored { revision, .. } => *revision,
        }
    }
}

#[derive(Debug)]
pub(super) struct Buffer {
    pub(super) items: VecDeque<Item>,
    /// The buffer holds every lease event after this revision.
    pub(super) complete_after: u64,
    pub(super) history: usize,
}

impl Buffer {
    fn push(&mut self, item: Item) {
        self.items.push_back(item);
        while self.items.len() > self.history {
            if let Some(old) = self.items.pop_front() {
                self.complete_after = self.complete_after.max(old.revision());
            }
        }
    }

    /// Forgets everything before `revision`: whoever asks from before it gets a snapshot.
    fn restart_at(&mut self, revision: u64) {
        self.items.clear();
        self.complete_after = revision;
    }
}

/// A lease's value, or why it is none.
pub(super) fn parse_value(kv: &KeyValue) -> Result<LeaseAttrs, String> {
    let text = kv.value_str().map_err(|e| format!("the value is not UTF-8: {e}"))?;
    LeaseAttrs::from_json(text).map_err(|e| format!("the value is not a lease: {e}"))
}

const BAD_KEY: &str = "the key names no IPv4 subnet";

impl Inner {
    /// A revision etcd answered with: the store has reached it.
    pub(super) fn observe(&self, revision: i64) {
        self.known.fetch_max(rev(revision), Ordering::SeqCst);
    }

    /// etcd is at `revision`, behind revisions it gave before: it was restored from a backup (or replaced by a new
    /// one). What the buffer holds is of another history; every watcher is sent a snapshot.
    fn went_back(&self, revision: u64) {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner).restart_at(revision);
        self.known.store(revision, Ordering::SeqCst);
        self.written.fetch_min(revision, Ordering::SeqCst);
        self.seen.send_replace(revision);
    }

    /// The watch task: follows `<prefix>/` from `start` for as long as the store lives, reconnecting (to the next
    /// member when one fails) as needed.
    pub(super) async fn follow(self: Arc<Self>, start: i64) {
        let mut next = start;
        let mut backoff = Duration::from_millis(50);
        loop {
            // An error only means: connect again after a pause; `next` says where to resume.
            let _ = self.follow_once(&mut next, &mut backoff).await;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    async fn follow_once(&self, next: &mut i64, backoff: &mut Duration) -> Result<(), StoreError> {
        let prefix = self.all_prefix();
        // Where etcd is now: a linearizable read, so a revision below one seen before means it went back.
        let (resp, member) = self
            .call_at("watching", |mut c| {
                let prefix = prefix.clone();
                async move { c.get(prefix, Some(GetOptions::new().with_prefix().with_count_only())).await }
            })
            .await?;
        let head = resp.header().map_or(0, |h| h.revision());
        if rev(head) < self.known.load(Ordering::SeqCst) {
            self.went_back(rev(head));
            *next = head + 1;
        }
        self.observe(head);
        let mut client = self.client(member).await?;
        let options = WatchOptions::new().with_prefix().with_prev_key().with_start_revision(*next);
        let mut stream =
            match tokio::time::timeout(self.options.request_timeout, client.watch(prefix, Some(options))).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    self.fail_over(member);
                    return Err(self.unavailable("watching", e));
                }
                Err(_) => {
                    self.fail_over(member);
                    return Err(self.unavailable("watching", "timed out"));
                }
            };
        loop {
            let resp = match stream.message().await {
                Ok(Some(resp)) => resp,
                Ok(None) => {
                    self.fail_over(member);
                    return Err(self.unavailable("watching", "the stream ended"));
                }
                Err(e) => {
                    self.fail_over(member);
                    return Err(self.unavailable("watching", e));
                }
            };
            *backoff = Duration::from_millis(50);
            if resp.canceled() {
                let compacted = resp.compact_revision();
                if compacted > 0 {
                    // History up to `compacted` is gone: whoever asks for it gets a snapshot.
                    let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
                    let after = buffer.complete_after.max(rev(compacted));
                    buffer.restart_at(after);
                    drop(buffer);
                    *next = compacted + 1;
                    self.seen.send_modify(|s| *s = (*s).max(rev(compacted)));
                } else {
                    // No leader on that member, or another refusal: try the next one.
                    self.fail_over(member);
                }
                return Err(self.unavailable("watching", format!("canceled: {}", resp.cancel_reason())));
            }
            let items = self.decode(resp.events());
            let newest = resp.events().iter().filter_map(|e| e.kv()).map(KeyValue::mod_revision).max().unwrap_or(0);
            if !items.is_empty() {
                let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
                for item in items {
                    buffer.push(item);
                }
            }
            if let Some(h) = resp.header() {
                self.observe(h.revision());
            }
            if newest > 0 {
                *next = newest + 1;
                self.seen.send_modify(|s| *s = (*s).max(rev(newest)));
            }
        }
    }

    /// The subnet a key under `subnets/` names: `Some(Ok(subnet))`, `Some(Err(ignored))` for a name that is none,
    /// `None` for keys that are not leases at all (elsewhere under the prefix, or in a subdirectory).
    pub(super) fn subnet_of(&self, key: &str) -> Option<Result<Ipv4Net, Ignored>> {
        let name = key.strip_prefix(&self.layout.subnets_dir())?;
        if name.contains('/') {
            return None;
        }
        Some(parse_subnet_key(name).ok_or_else(|| Ignored { key: key.to_owned(), reason: BAD_KEY.into() }))
    }

    /// The lease events in one watch response, pairing each with its expiration key's change. A value that is not
    /// a lease is reported; one that replaced a lease removes that lease (a snapshot would not have it either).
    fn decode(&self, events: &[etcd_client::Event]) -> Vec<Item> {
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
        let mut items = Vec::new();
        for e in events {
            let Some(kv) = e.kv() else { continue };
            let revision = rev(kv.mod_revision());
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let subnet = match self.subnet_of(&key) {
                None => continue,
                Some(Ok(subnet)) => subnet,
                Some(Err(ignored)) => {
                    if e.event_type() == EventType::Put {
                        items.push(Item::Ignored { revision, ignored });
                    }
                    continue;
                }
            };
            let raw = |kind, attrs, value: &KeyValue| Raw {
                revision,
                kind,
                subnet,
                attrs,
                expires_ms: expirations.get(&(kv.mod_revision(), subnet)).copied(),
                lease_id: value.lease(),
                created: rev(value.create_revision()),
            };
            // The lease that was there before, if it read.
            let previous = e.prev_kv().and_then(|p| parse_value(p).ok().map(|attrs| (attrs, p)));
            match e.event_type() {
                EventType::Put => match parse_value(kv) {
                    Ok(attrs) => items.push(Item::Lease(raw(EventKind::Added, attrs, kv))),
                    Err(reason) => {
                        if let Some((attrs, p)) = previous {
                            items.push(Item::Lease(Raw { expires_ms: None, ..raw(EventKind::Removed, attrs, p) }));
                        }
                        items.push(Item::Ignored { revision, ignored: Ignored { key, reason } });
                    }
                },
                EventType::Delete => {
                    if let Some((attrs, p)) = previous {
                        items.push(Item::Lease(raw(EventKind::Removed, attrs, p)));
                    }
                }
            }
        }
        items
    }
}
