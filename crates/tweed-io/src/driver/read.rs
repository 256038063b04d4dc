//! A round's reading: which ports are read, how much from each, and what happens to a port that is gone.
//!
//! The round's batch (256 packets) is shared: each ready port gets an equal share (at most
//! [`DriverConfig::batch`](super::DriverConfig::batch)), the underlay at least a quarter, since it carries every
//! remote pod's traffic, and is read first; the other ports are read from a start that moves every round, so that
//! no port is always last, and a port left unread because the batch filled up is read first in the next round.

use std::io;

use tweed_packet::Pool;

use super::worker::{Role, Slot, Worker};
use super::{ClosedPort, DriverStats};
use crate::port::{Port, Rx};
use tweed_overlay::encap::Encapsulation;

/// Consecutive failed reads after which a port is closed whatever the error (a port that fails every read
/// would otherwise be ready at every wait: a spin).
const MAX_FAILURES: u32 = 64;

/// The mark in a slot's `failures` of a port to close.
pub(super) const GONE: u32 = u32::MAX;

impl<E: Encapsulation, P: Port> Worker<E, P> {
    /// Reads every ready port its share (see the module's comment) and clears the marks. Returns how many packets
    /// were read.
    pub(super) fn read_ready(&mut self, now: u64) -> usize {
        let ports = self.slots.iter().filter(|s| s.ready).count();
        if ports == 0 {
            return 0;
        }
        let budget = self.batch.remaining();
        let share = (budget / ports).clamp(1, self.config.batch);
        let underlay_share = share.max(budget / 4).min(self.config.batch);
        let mut read = 0;
        for k in 0..self.slots.len() {
            if self.slots[k].ready && self.slots[k].role == Role::Underlay {
                read += self.read_slot(k, now, underlay_share);
            }
        }
        let n = self.slots.len();
        let start = self.next % n;
        let mut unread = None;
        for j in 0..n {
            let k = (start + j) % n;
            let s = &self.slots[k];
            if !s.ready || s.role == Role::Underlay {
                continue;
            }
            let segments = s.port.rx_segments();
            if self.batch.is_full() || (segments > 1 && self.batch.remaining() < segments) {
                unread.get_or_insert(k);
                continue;
            }
            read += self.read_slot(k, now, share);
        }
        let mut next = unread.unwrap_or((start + 1) % n);
        // Past the underlay, which is not in the rotation.
        for _ in 0..n {
            if self.slots[next].role != Role::Underlay {
                break;
            }
            next = (next + 1) % n;
        }
        self.next = next;
        self.slots.iter_mut().for_each(|s| s.ready = false);
        read
    }

    /// Reads up to `max` packets from the port in slot `k` and counts them.
    fn read_slot(&mut self, k: usize, now: u64, max: usize) -> usize {
        let Self { slots, pool, batch, stats, rx_scratch, closed, .. } = self;
        let slot = &mut slots[k];
        let before = batch.len();
        let mut rx = Rx::new(pool, batch, rx_scratch, slot.id, now, max);
        let result = slot.port.recv(&mut rx);
        let (taken, dropped, pool_empty) = (rx.taken, rx.dropped, rx.pool_empty);
        stats.pool_empty += pool_empty;
        if slot.role == Role::Drain {
            drain(batch, before, pool);
        }
        let n = if slot.role == Role::Drain { 0 } else { taken };
        slot.stats.rx += n as u64;
        slot.stats.rx_dropped += dropped;
        match slot.role {
            Role::Underlay => stats.rx_underlay += n as u64,
            Role::Pod => {
                stats.rx_pod += n as u64;
                stats.rx_offload_dropped += dropped;
            }
            Role::Ip | Role::Drain => stats.rx_tun += n as u64,
        }
        if slot.role != Role::Pod {
            stats.rx_dropped += dropped;
        }
        match result {
            // A read that gave only dropped packets still shows the port works.
            Ok(()) if taken > 0 || dropped > 0 => slot.failures = 0,
            Ok(()) => {}
            Err(e) => note_failure(slot, e, stats, closed),
        }
        n
    }
}

/// Gives back what a drained port read.
fn drain(batch: &mut tweed_packet::Batch, keep: usize, pool: &mut Pool) {
    while batch.len() > keep {
        if let Some(buf) = batch.pop() {
            pool.put(buf);
        }
    }
}

/// Counts a failed read; marks the port to close when it is gone, or (but for the underlay) failed
/// [`MAX_FAILURES`] times in a row.
fn note_failure<P: Port>(slot: &mut Slot<P>, e: io::Error, stats: &mut DriverStats, closed: &mut Vec<ClosedPort>) {
    stats.rx_errors += 1;
    slot.stats.rx_errors += 1;
    slot.failures = slot.failures.saturating_add(1);
    let too_many = slot.role != Role::Underlay && slot.failures >= MAX_FAILURES;
    if slot.port.is_gone(&e) || too_many {
        slot.failures = GONE;
        closed.push(ClosedPort { port: slot.id, name: slot.port.name().to_owned(), error: e });
    }
}
