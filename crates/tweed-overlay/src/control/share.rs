//! What the workers of one [`Control`](super::Control) tell each other they learnt on pod ports.
//!
//! The kernel picks a multi-queue TAP's queue by flow hash, so a pod's ARP may reach one worker while its flows are
//! read by another. Each worker still owns its bridge (lookups and learning stay plain memory accesses), but what
//! it learns on a pod port (an ARP binding IP → MAC, a MAC on the port) is posted to every other worker of the
//! control, which applies it at the start of its next batch by running the same learning through its own bridge:
//! the same rules and limits as a frame of its own (port and table limits, the MAC lock, never another pod's fresh
//! binding).
//!
//! Costs: a worker's [`Inbox`] is a flag and a bounded queue under a lock, both written only when a binding is
//! new, changed or refreshed (see `node/learn.rs`), never per packet. Its owner loads the flag once per batch (a
//! line no one writes in steady state) and takes the queue only when it is set. Queues never grow: a sender that
//! finds one full drops what does not fit and counts it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Bindings one inbox holds between two batches of its worker; beyond, they are dropped (and counted by the sender).
pub(crate) const INBOX: usize = 1024;

/// One binding learnt on a pod port: `ip` (0 for a MAC alone) at `mac`, behind pod port `port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Learnt {
    pub(crate) ip: u32,
    pub(crate) mac: [u8; 6],
    pub(crate) port: u16,
}

/// A worker's mailbox. Aligned to its own cache lines: its flag is read by its worker every batch and written by
/// others only when they post.
#[repr(align(128))]
#[derive(Debug)]
pub(crate) struct Inbox {
    /// Set by a sender after it queued something; cleared by the owner when it takes the queue.
    pending: AtomicBool,
    queue: Mutex<Vec<Learnt>>,
}

impl Inbox {
    /// Whether other workers posted since the owner last took the queue: one load.
    #[inline(always)]
    pub(crate) fn pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// Swaps the queue with `into` (empty, of the same capacity: no allocation either way).
    pub(crate) fn take(&self, into: &mut Vec<Learnt>) {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        self.pending.store(false, Ordering::Relaxed);
        core::mem::swap(&mut *q, into);
    }
}

/// The inboxes of a control's workers.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    inboxes: Mutex<Vec<Arc<Inbox>>>,
    /// How many workers there are: with one, nothing is posted (the learning stays where it is).
    workers: AtomicUsize,
}

impl Hub {
    /// A new worker's inbox, registered.
    pub(crate) fn join(&self) -> Arc<Inbox> {
        let inbox = Arc::new(Inbox { pending: AtomicBool::new(false), queue: Mutex::new(Vec::with_capacity(INBOX)) });
        let mut all = self.inboxes.lock().unwrap_or_else(PoisonError::into_inner);
        all.push(Arc::clone(&inbox));
        self.workers.store(all.len(), Ordering::Relaxed);
        inbox
    }

    /// A worker went: nobody posts to its inbox any more.
    pub(crate) fn leave(&self, inbox: &Arc<Inbox>) {
        let mut all = self.inboxes.lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|i| !Arc::ptr_eq(i, inbox));
        self.workers.store(all.len(), Ordering::Relaxed);
    }

    /// Whether there are other workers to tell (read on the learning paths only).
    pub(crate) fn shared(&self) -> bool {
        self.workers.load(Ordering::Relaxed) > 1
    }

    /// Posts `news` to every inbox but `from`'s; returns how many bindings did not fit (summed over inboxes).
    pub(crate) fn post(&self, from: &Arc<Inbox>, news: &[Learnt]) -> u64 {
        let mut dropped = 0;
        let all = self.inboxes.lock().unwrap_or_else(PoisonError::into_inner);
        for inbox in all.iter().filter(|i| !Arc::ptr_eq(i, from)) {
            let mut q = inbox.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let n = news.len().min(INBOX.saturating_sub(q.len()));
            q.extend_from_slice(&news[..n]);
            dropped += (news.len() - n) as u64;
            if n > 0 {
                inbox.pending.store(true, Ordering::Relaxed);
            }
        }
        dropped
    }
}
