//! The forwarding database: (bridge domain, MAC) → port, with learned entries that age and static ones that
//! do not.
//!
//! # Rules
//! - **Keys.** A key is a [`BridgeDomain`] and a unicast, non-zero [`MacAddr`], packed into a `u64`. Broadcast,
//!   multicast and all-zero addresses are never stored ([`Learned::Invalid`], [`FdbError::InvalidMac`]).
//! - **Ageing.** A learned entry whose last sighting is [`FdbConfig::ageing`] or more in the past is *expired*:
//!   lookups treat it as absent at once (lazy ageing), and its slot is reclaimed by [`Fdb::age`] or when the
//!   table needs room. Time is an argument ([`Instant`]), kept with millisecond resolution; it should not go
//!   backwards, and when it does nothing panics and no entry's last sighting moves back.
//! - **Static entries** (remote VTEPs, the bridge's own MACs) never age, count against
//!   [`FdbConfig::max_static`] only, and learning never changes them ([`Learned::Static`]).
//! - **Moves.** A live learned MAC seen on another port is re-learnt there ([`Learned::Moved`]).
//! - **Limits.** At most [`FdbConfig::max_learned`] live learned entries, and at most the port's limit
//!   ([`Fdb::set_port_limit`]) per port. At a limit a new MAC is not learnt ([`Learned::LimitHit`],
//!   [`Learned::PortLimitHit`]); entries already there keep working. A MAC live on another port stays there
//!   when a port at its limit sends it: a port over its limit cannot evict (or steal) other ports' entries.
//!   Frames whose source is not learnt are still forwarded, as the Linux bridge does.
//!
//! The limits count *live* entries exactly: when a limit seems reached, expired entries are reclaimed first
//! (a scan from a cursor that stops as soon as there is room). The scan is skipped altogether while the time is
//! before a lower bound of the earliest expiry, which a complete scan recomputes; so a table full of live
//! entries under a flood of new MACs costs one failed comparison per frame, and a full scan happens at most once
//! per change of the earliest expiry (at most once per entry per ageing time, since an entry leaves the
//! minimum only by being refreshed or removed).
//!
//! # Memory and cost
//! The table is allocated once, with `2 × (max_learned + max_static)` slots rounded up to a power of two, 16
//! bytes each, and never more than half full. A learn or lookup is one seeded hash (a folded multiply) and a
//! linear probe of about two slots.
//!
//! ```
//! use core::time::Duration;
//! use tweed_switch::{BridgeDomain, Fdb, FdbConfig, Instant, Learned, PortId};
//! use tweed_wire::ethernet::MacAddr;
//!
//! let mut fdb = Fdb::new(&FdbConfig { ageing: Duration::from_secs(300), ..FdbConfig::default() });
//! let (bd, pod) = (BridgeDomain(1), MacAddr::new(0x0a, 0x58, 10, 244, 1, 2));
//! let t0 = Instant::from_secs(10);
//! assert_eq!(fdb.learn(bd, pod, PortId(3), t0), Learned::New);
//! assert_eq!(fdb.lookup(bd, pod, t0), Some(PortId(3)));
//! assert_eq!(fdb.lookup(BridgeDomain(2), pod, t0), None); // another bridge
//! assert_eq!(fdb.lookup(bd, pod, t0 + Duration::from_secs(300)), None); // aged out
//! ```

use core::fmt;
use core::time::Duration;

use alloc::vec;
use alloc::vec::Vec;
use tweed_wire::ethernet::MacAddr;

use crate::table::{EMPTY, RawTable};
use crate::{BridgeDomain, Instant, PortId};

/// The `seen` field of a static entry's value.
const STATIC_SEEN: u64 = 0xffff_ffff_ffff;
/// The latest millisecond a learned entry can record (later times saturate; that is 8,900 years).
const MAX_SEEN: u64 = STATIC_SEEN - 1;

/// Packs a key: the domain in the top 16 bits, the MAC in the low 48.
#[inline]
const fn key(domain: BridgeDomain, mac: MacAddr) -> u64 {
    ((domain.0 as u64) << 48) | mac.to_u64()
}

/// A value: the last sighting in milliseconds (or [`STATIC_SEEN`]) above the port.
#[inline]
const fn val(seen_ms: u64, port: u16) -> u64 {
    (seen_ms << 16) | port as u64
}

#[inline]
const fn seen_of(val: u64) -> u64 {
    val >> 16
}

#[inline]
#[allow(clippy::cast_possible_truncation)] // the low 16 bits are the port
const fn port_of(val: u64) -> u16 {
    val as u16
}

/// Sizes and times of an [`Fdb`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdbConfig {
    /// The most learned entries the table holds (the Linux bridge's `fdb_max_learned`). Default 8,192: a node
    /// hosts a few hundred pods, so more learned MACs than that is a flood.
    pub max_learned: u32,
    /// The most static entries (flannel adds one per remote node). Default 8,192.
    pub max_static: u32,
    /// How long a learned entry lives after its last sighting. Default 300 s, as the Linux bridge.
    pub ageing: Duration,
    /// Seed of the table's hash. `None` (the default) picks a random one, which is what a data path wants: source
    /// MACs are chosen by whoever sends frames. `Some` makes the layout reproducible, for tests.
    pub hash_seed: Option<u64>,
}

impl Default for FdbConfig {
    fn default() -> Self {
        Self { max_learned: 8192, max_static: 8192, ageing: Duration::from_secs(300), hash_seed: None }
    }
}

/// What [`Fdb::learn`] did with a source address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use]
pub enum Learned {
    /// A new entry (or one that had expired) now points at the port.
    New,
    /// The entry already pointed at the port; its age was reset.
    Refreshed,
    /// The MAC was live on another port and now points at this one.
    Moved {
        /// The port it was on.
        from: PortId,
    },
    /// A static entry holds the MAC; it was left alone. `port` is where it points (compare with the ingress port
    /// to spot a spoofed or looped address).
    Static {
        /// The static entry's port.
        port: PortId,
    },
    /// The table holds `max_learned` live entries: not learnt.
    LimitHit,
    /// The port holds as many live entries as its limit allows: not learnt (a live entry on another port stays
    /// there).
    PortLimitHit,
    /// The MAC is live on another port (`port`) and the learning port is locked ([`Fdb::set_port_lock`]): it
    /// stays where it is.
    Held {
        /// The port that holds it.
        port: PortId,
    },
    /// Broadcast, multicast or all-zero address, or a port that cannot learn ([`PortId::LOCAL`], out of range).
    Invalid,
}

/// What a control-plane change of the [`Fdb`] could not do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FdbError {
    /// [`FdbConfig::max_static`] static entries already exist.
    StaticLimit {
        /// The limit.
        max: u32,
    },
    /// The address is broadcast, multicast or all zeros.
    InvalidMac(MacAddr),
    /// The port is neither below [`PortId::MAX`] nor [`PortId::LOCAL`].
    InvalidPort(PortId),
}

impl fmt::Display for FdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StaticLimit { max } => write!(f, "fdb: static entry limit {max} reached"),
            Self::InvalidMac(mac) => write!(f, "fdb: {mac} is not a unicast address"),
            Self::InvalidPort(port) => write!(f, "fdb: invalid port {port}"),
        }
    }
}

impl core::error::Error for FdbError {}

/// Whether an entry was learnt or configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Learnt from a source address; ages.
    Learned {
        /// The last sighting (millisecond resolution).
        last_seen: Instant,
    },
    /// Configured; never ages, never overwritten by learning.
    Static,
}

/// An entry of the [`Fdb`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The bridge domain.
    pub domain: BridgeDomain,
    /// The address.
    pub mac: MacAddr,
    /// Where frames to it go.
    pub port: PortId,
    /// Learned or static.
    pub kind: EntryKind,
}

/// The forwarding database. See the [module documentation](self) for its rules.
#[derive(Clone, Debug)]
pub struct Fdb {
    table: RawTable,
    ageing_ms: u64,
    max_learned: u32,
    max_static: u32,
    /// Stored learned entries, live or expired-but-not-yet-reclaimed.
    learned: u32,
    statics: u32,
    /// Stored learned entries per port, and each port's limit (`u32::MAX`: none).
    port_learned: Vec<u32>,
    port_limit: Vec<u32>,
    /// Ports that may not take over a MAC live on another port.
    port_lock: Vec<bool>,
    /// No learned entry expires before this millisecond.
    next_expiry: u64,
    /// The reclaim scan: the next slot to look at, the slots looked at since the scan window began, and the
    /// earliest expiry seen (or inserted) in that window.
    cursor: usize,
    window_steps: usize,
    window_min: u64,
    aged: u64,
}

impl Fdb {
    /// An empty table, allocated once for the configured limits.
    #[must_use]
    pub fn new(config: &FdbConfig) -> Self {
        let entries = config.max_learned as usize + config.max_static as usize;
        Self {
            table: RawTable::new(entries.saturating_mul(2), config.hash_seed),
            ageing_ms: u64::try_from(config.ageing.as_millis()).unwrap_or(u64::MAX),
            max_learned: config.max_learned,
            max_static: config.max_static,
            learned: 0,
            statics: 0,
            port_learned: vec![0; PortId::MAX],
            port_limit: vec![u32::MAX; PortId::MAX],
            port_lock: vec![false; PortId::MAX],
            next_expiry: u64::MAX,
            cursor: 0,
            window_steps: 0,
            window_min: u64::MAX,
            aged: 0,
        }
    }

    /// The ageing time, in milliseconds.
    #[must_use]
    pub const fn ageing_ms(&self) -> u64 {
        self.ageing_ms
    }

    /// The limit of learned entries.
    #[must_use]
    pub const fn max_learned(&self) -> u32 {
        self.max_learned
    }

    /// The number of slots of the hash table.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Learned entries stored, including expired ones not yet reclaimed; never above the limit.
    #[must_use]
    pub const fn learned_len(&self) -> usize {
        self.learned as usize
    }

    /// Static entries.
    #[must_use]
    pub const fn static_len(&self) -> usize {
        self.statics as usize
    }

    /// Learned entries stored for `port` (including expired ones not yet reclaimed).
    #[must_use]
    pub fn port_learned_len(&self, port: PortId) -> usize {
        self.port_learned.get(port.index()).map_or(0, |&n| n as usize)
    }

    /// Learned entries removed because they had expired, since the table was made.
    #[must_use]
    pub const fn aged(&self) -> u64 {
        self.aged
    }

    /// Sets (`Some`) or lifts (`None`) the limit of learned entries on `port`. Entries above a lowered limit stay
    /// until they age out. Ports out of range are ignored.
    pub fn set_port_limit(&mut self, port: PortId, limit: Option<u32>) {
        if let Some(l) = self.port_limit.get_mut(port.index()) {
            *l = limit.unwrap_or(u32::MAX);
        }
    }

    /// Locks (`true`) or unlocks `port`: a locked port cannot move to itself a MAC that is live on another port
    /// ([`Learned::Held`]), so a host behind it cannot take over another port's host by sending with its MAC (a
    /// Linux bridge port moves it). An expired entry may move. Ports out of range are ignored.
    pub fn set_port_lock(&mut self, port: PortId, locked: bool) {
        if let Some(l) = self.port_lock.get_mut(port.index()) {
            *l = locked;
        }
    }

    #[inline]
    fn now_ms(now: Instant) -> u64 {
        now.as_millis().min(MAX_SEEN)
    }

    #[inline]
    const fn expired(&self, seen: u64, now_ms: u64) -> bool {
        now_ms.saturating_sub(seen) >= self.ageing_ms
    }

    /// The port of a live entry for `mac` in `domain`, static or learned.
    #[inline]
    #[must_use]
    pub fn lookup(&self, domain: BridgeDomain, mac: MacAddr, now: Instant) -> Option<PortId> {
        let v = self.table.get(key(domain, mac))?;
        let seen = seen_of(v);
        if seen == STATIC_SEEN || !self.expired(seen, Self::now_ms(now)) { Some(PortId(port_of(v))) } else { None }
    }

    /// For [`crate::Bridge::resolve`], per packet: the port and last sighting in milliseconds (`now` for a static
    /// entry) of a live entry.
    #[inline]
    pub(crate) fn lookup_seen(&self, domain: BridgeDomain, mac: MacAddr, now_ms: u64) -> Option<(u16, u64)> {
        let now_ms = now_ms.min(MAX_SEEN);
        let v = self.table.get(key(domain, mac))?;
        let seen = seen_of(v);
        if seen == STATIC_SEEN {
            Some((port_of(v), now_ms))
        } else if self.expired(seen, now_ms) {
            None
        } else {
            Some((port_of(v), seen))
        }
    }

    /// The live entry for `mac` in `domain`.
    #[must_use]
    pub fn get(&self, domain: BridgeDomain, mac: MacAddr, now: Instant) -> Option<Entry> {
        let v = self.table.get(key(domain, mac))?;
        self.entry(key(domain, mac), v, Self::now_ms(now))
    }

    fn entry(&self, key: u64, v: u64, now_ms: u64) -> Option<Entry> {
        let seen = seen_of(v);
        let kind = if seen == STATIC_SEEN {
            EntryKind::Static
        } else if self.expired(seen, now_ms) {
            return None;
        } else {
            EntryKind::Learned { last_seen: Instant::from_millis(seen) }
        };
        #[allow(clippy::cast_possible_truncation)] // the top 16 bits
        let domain = BridgeDomain((key >> 48) as u16);
        Some(Entry { domain, mac: MacAddr::from_u64(key), port: PortId(port_of(v)), kind })
    }

    /// The live entries, in no particular order.
    pub fn iter(&self, now: Instant) -> impl Iterator<Item = Entry> + '_ {
        let now_ms = Self::now_ms(now);
        self.table.iter().filter_map(move |s| self.entry(s.key, s.val, now_ms))
    }

    /// The number of live learned entries: a scan of the whole table, for tests and statistics.
    #[must_use]
    pub fn live_learned_len(&self, now: Instant) -> usize {
        self.iter(now).filter(|e| matches!(e.kind, EntryKind::Learned { .. })).count()
    }

    /// Learns that `mac` was seen as a source on `port` of `domain` at `now`. See [`Learned`] for the outcomes.
    #[inline]
    pub fn learn(&mut self, domain: BridgeDomain, mac: MacAddr, port: PortId, now: Instant) -> Learned {
        if mac.is_multicast() || mac.is_zero() || port.index() >= PortId::MAX {
            return Learned::Invalid;
        }
        let now_ms = Self::now_ms(now);
        let key = key(domain, mac);
        match self.table.find(key) {
            Ok(i) => {
                let v = self.table.slot(i).val;
                let seen = seen_of(v);
                if seen == STATIC_SEEN {
                    return Learned::Static { port: PortId(port_of(v)) };
                }
                let live = !self.expired(seen, now_ms);
                if port_of(v) == port.0 {
                    if now_ms > seen {
                        self.table.set_val(i, val(now_ms, port.0));
                    }
                    return if live { Learned::Refreshed } else { Learned::New };
                }
                self.learn_on_other_port(key, port, now_ms)
            }
            Err(i) => {
                let p = port.index();
                if self.learned < self.max_learned && self.port_learned[p] < self.port_limit[p] {
                    self.insert_learned(i, key, port.0, now_ms);
                    return Learned::New;
                }
                self.learn_at_limit(key, port, now_ms)
            }
        }
    }

    /// The key is stored, learned, on another port than `port`.
    #[cold]
    fn learn_on_other_port(&mut self, key: u64, port: PortId, now_ms: u64) -> Learned {
        let p = port.index();
        if self.port_lock[p]
            && let Ok(i) = self.table.find(key)
        {
            let v = self.table.slot(i).val;
            if !self.expired(seen_of(v), now_ms) {
                return Learned::Held { port: PortId(port_of(v)) };
            }
        }
        if self.port_learned[p] >= self.port_limit[p] && !self.reclaim(now_ms, false, p) {
            // A live entry stays where it is: a port at its limit must not be able to evict other ports' hosts
            // (their traffic would flood, to that port too). An expired one is nobody's any more.
            if let Ok(i) = self.table.find(key)
                && self.expired(seen_of(self.table.slot(i).val), now_ms)
            {
                self.remove_learned_at(i);
                self.aged += 1;
                self.reset_window();
            }
            return Learned::PortLimitHit;
        }
        // The reclaim may have removed (expired) or shifted the entry.
        let i = match self.table.find(key) {
            Ok(i) => i,
            Err(i) => {
                // Reclaiming removed an entry of `port` besides this one: there is room.
                self.insert_learned(i, key, port.0, now_ms);
                return Learned::New;
            }
        };
        let v = self.table.slot(i).val;
        let (seen, from) = (seen_of(v), port_of(v));
        let live = !self.expired(seen, now_ms);
        self.table.set_val(i, val(seen.max(now_ms), port.0));
        self.port_learned[usize::from(from)] -= 1;
        self.port_learned[p] += 1;
        if live { Learned::Moved { from: PortId(from) } } else { Learned::New }
    }

    /// The key is absent and a limit seems reached.
    #[cold]
    fn learn_at_limit(&mut self, key: u64, port: PortId, now_ms: u64) -> Learned {
        let p = port.index();
        if !self.reclaim(now_ms, true, p) {
            return if self.port_learned[p] >= self.port_limit[p] { Learned::PortLimitHit } else { Learned::LimitHit };
        }
        match self.table.find(key) {
            Err(i) => {
                self.insert_learned(i, key, port.0, now_ms);
                Learned::New
            }
            // Reclaiming only removes entries, so the key is still absent; answer sanely anyway.
            Ok(_) => Learned::Refreshed,
        }
    }

    fn insert_learned(&mut self, i: usize, key: u64, port: u16, now_ms: u64) {
        self.table.insert_at(i, key, val(now_ms, port));
        self.learned += 1;
        self.port_learned[usize::from(port)] += 1;
        let expiry = now_ms.saturating_add(self.ageing_ms);
        self.next_expiry = self.next_expiry.min(expiry);
        self.window_min = self.window_min.min(expiry);
    }

    fn remove_learned_at(&mut self, i: usize) {
        let port = port_of(self.table.slot(i).val);
        self.table.remove_at(i);
        self.learned -= 1;
        self.port_learned[usize::from(port)] -= 1;
    }

    /// A removal away from the cursor may shift an entry the current scan window has not seen into the part it
    /// has: start the window again so that its minimum stays a true bound.
    fn reset_window(&mut self) {
        self.window_steps = 0;
        self.window_min = u64::MAX;
    }

    /// Looks at the slot under the cursor: removes an expired learned entry there (the cursor stays, the slot
    /// now holds the next entry of the cluster, or nothing) and returns `true`, or moves on and returns `false`.
    fn scan_step(&mut self, now_ms: u64) -> bool {
        let s = self.table.slot(self.cursor);
        if s.key != EMPTY {
            let seen = seen_of(s.val);
            if seen != STATIC_SEEN {
                if self.expired(seen, now_ms) {
                    self.remove_learned_at(self.cursor);
                    self.aged += 1;
                    return true;
                }
                self.window_min = self.window_min.min(seen.saturating_add(self.ageing_ms));
            }
        }
        self.cursor = (self.cursor + 1) & (self.table.capacity() - 1);
        self.window_steps += 1;
        if self.window_steps >= self.table.capacity() {
            self.next_expiry = self.window_min;
            self.reset_window();
        }
        false
    }

    /// Removes expired entries until the global limit (when `global`) and port `p`'s limit leave room, or every
    /// slot has been looked at. Returns whether there is room.
    fn reclaim(&mut self, now_ms: u64, global: bool, p: usize) -> bool {
        let full = |s: &Self| (global && s.learned >= s.max_learned) || s.port_learned[p] >= s.port_limit[p];
        if now_ms < self.next_expiry {
            return !full(self);
        }
        let mut steps = 0;
        while full(self) && steps < self.table.capacity() {
            if !self.scan_step(now_ms) {
                steps += 1;
            }
        }
        !full(self)
    }

    /// Removes expired entries among the next `budget` slots of the table (in slot order, continuing where the
    /// last call stopped) and returns how many. Call it between batches with a small budget to keep the table
    /// clean without a pause; `budget >= capacity()` sweeps the whole table.
    pub fn age(&mut self, now: Instant, budget: usize) -> usize {
        let now_ms = Self::now_ms(now);
        if now_ms < self.next_expiry {
            return 0;
        }
        let (mut removed, mut steps) = (0, 0);
        while steps < budget.min(self.table.capacity()) {
            if self.scan_step(now_ms) {
                removed += 1;
            } else {
                steps += 1;
            }
        }
        removed
    }

    /// Adds or replaces a static entry: `mac` in `domain` goes to `port` (which may be [`PortId::LOCAL`]). A
    /// learned entry for the same address is replaced.
    pub fn add_static(&mut self, domain: BridgeDomain, mac: MacAddr, port: PortId) -> Result<(), FdbError> {
        if mac.is_multicast() || mac.is_zero() {
            return Err(FdbError::InvalidMac(mac));
        }
        if port.index() >= PortId::MAX && port != PortId::LOCAL {
            return Err(FdbError::InvalidPort(port));
        }
        let key = key(domain, mac);
        match self.table.find(key) {
            Ok(i) => {
                let v = self.table.slot(i).val;
                if seen_of(v) != STATIC_SEEN {
                    if self.statics >= self.max_static {
                        return Err(FdbError::StaticLimit { max: self.max_static });
                    }
                    self.learned -= 1;
                    self.port_learned[usize::from(port_of(v))] -= 1;
                    self.statics += 1;
                }
                self.table.set_val(i, val(STATIC_SEEN, port.0));
            }
            Err(i) => {
                if self.statics >= self.max_static {
                    return Err(FdbError::StaticLimit { max: self.max_static });
                }
                self.table.insert_at(i, key, val(STATIC_SEEN, port.0));
                self.statics += 1;
            }
        }
        Ok(())
    }

    /// Removes the entry of `mac` in `domain`, static or learned (even expired); returns whether there was one.
    pub fn remove(&mut self, domain: BridgeDomain, mac: MacAddr) -> bool {
        let Ok(i) = self.table.find(key(domain, mac)) else { return false };
        if seen_of(self.table.slot(i).val) == STATIC_SEEN {
            self.table.remove_at(i);
            self.statics -= 1;
        } else {
            self.remove_learned_at(i);
        }
        self.reset_window();
        true
    }

    /// Removes the learned entries on `port`, and its static ones too when `statics`; returns how many went.
    /// A scan of the whole table: a control-plane operation (a port went down or away).
    pub fn flush_port(&mut self, port: PortId, statics: bool) -> usize {
        let mut removed = 0;
        let mut i = 0;
        while i < self.table.capacity() {
            let s = self.table.slot(i);
            let is_static = seen_of(s.val) == STATIC_SEEN;
            if s.key != EMPTY && port_of(s.val) == port.0 && (statics || !is_static) {
                if is_static {
                    self.table.remove_at(i);
                    self.statics -= 1;
                } else {
                    self.remove_learned_at(i);
                }
                removed += 1;
                // The slot now holds the next entry of the cluster: look at it again.
            } else {
                i += 1;
            }
        }
        if removed > 0 {
            self.reset_window();
        }
        removed
    }

    /// Removes every entry, learned and static.
    pub fn clear(&mut self) {
        self.table.clear();
        self.learned = 0;
        self.statics = 0;
        self.port_learned.fill(0);
        self.next_expiry = u64::MAX;
        self.reset_window();
    }
}

#[cfg(test)]
mod tests;
