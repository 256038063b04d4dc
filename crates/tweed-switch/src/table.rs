//! The open-addressing hash table under the FDB and the ARP table: `u64` keys, `u64` values, linear probing,
//! backward-shift deletion, a seeded hash.
//!
//! The table never grows: its callers size it up front and keep it at most half full, so that every probe
//! sequence meets an empty slot within a few steps (expected 1.5 probes for a hit, 2.5 for a miss at load ½).
//! Deleting by shifting the following entries back (instead of leaving tombstones) keeps that true under any
//! sequence of inserts and deletes: there is no tombstone for a hostile churn of keys to pile up. The hash is
//! foldhash with a per-table seed, so keys chosen by an attacker (source MACs) cannot be aimed at one cluster.

use alloc::boxed::Box;
use alloc::vec;
use core::hash::BuildHasher;

use foldhash::SharedSeed;
use foldhash::fast::SeedableRandomState;

/// The key of an empty slot. Callers never store it (it would be broadcast MAC `ff:ff:ff:ff:ff:ff` in bridge
/// domain `0xffff`, or the IPv4 broadcast address in domain `0xffff`).
pub(crate) const EMPTY: u64 = u64::MAX;

/// One slot: a key and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot<V = u64> {
    pub(crate) key: u64,
    pub(crate) val: V,
}

/// A fixed-size open-addressing table. The FDB keeps its whole entry in a `u64` value; the ARP table needs more.
#[derive(Clone, Debug)]
pub(crate) struct RawTable<V = u64> {
    slots: Box<[Slot<V>]>,
    mask: usize,
    /// `64 - log2(slots.len())`: the index is the top bits of the hash.
    shift: u32,
    len: usize,
    hasher: SeedableRandomState,
}

impl<V: Copy + Default> RawTable<V> {
    /// A table of at least `min_slots` slots (rounded up to a power of two, at least 8).
    /// `seed: None` picks a random per-process seed; `Some` gives a reproducible layout (tests).
    pub(crate) fn new(min_slots: usize, seed: Option<u64>) -> Self {
        let n = min_slots.max(8).next_power_of_two();
        let hasher = match seed {
            Some(seed) => SeedableRandomState::with_seed(seed, SharedSeed::global_fixed()),
            None => SeedableRandomState::random(),
        };
        Self {
            slots: vec![Slot { key: EMPTY, val: V::default() }; n].into_boxed_slice(),
            mask: n - 1,
            shift: 64 - n.trailing_zeros(),
            len: 0,
            hasher,
        }
    }

    /// Number of slots.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Number of keys stored.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The slot where `key`'s probe sequence starts.
    #[inline]
    pub(crate) fn home(&self, key: u64) -> usize {
        // The shift is at least 64 - 63, so the result fits a usize index below the capacity.
        #[allow(clippy::cast_possible_truncation)]
        let i = (self.hasher.hash_one(key) >> self.shift) as usize;
        i
    }

    /// `Ok(index)` of `key`, or `Err(index)` of the empty slot where it would go.
    #[inline]
    pub(crate) fn find(&self, key: u64) -> Result<usize, usize> {
        let mut i = self.home(key);
        // Terminates: callers keep the table at most half full, so an empty slot exists.
        loop {
            let k = self.slots[i].key;
            if k == key {
                return Ok(i);
            }
            if k == EMPTY {
                return Err(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The value of `key`.
    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<V> {
        self.find(key).ok().map(|i| self.slots[i].val)
    }

    /// The slot at `index` (which is below the capacity).
    #[inline]
    pub(crate) fn slot(&self, index: usize) -> Slot<V> {
        self.slots[index]
    }

    /// Overwrites the value in the occupied slot `index`.
    #[inline]
    pub(crate) fn set_val(&mut self, index: usize, val: V) {
        self.slots[index].val = val;
    }

    /// Stores `key` in the empty slot `index` that [`RawTable::find`] returned for it.
    #[inline]
    pub(crate) fn insert_at(&mut self, index: usize, key: u64, val: V) {
        debug_assert_eq!(self.slots[index].key, EMPTY);
        debug_assert!(self.len < self.capacity() - 1, "callers keep the table under its load limit");
        self.slots[index] = Slot { key, val };
        self.len += 1;
    }

    /// Removes the entry in the occupied slot `index`, shifting back the entries of the same cluster that
    /// would no longer be found past the hole. Only entries after `index` (cyclically, up to the next empty
    /// slot) move, and each moves towards its home slot.
    pub(crate) fn remove_at(&mut self, index: usize) {
        let mut hole = index;
        let mut j = index;
        loop {
            j = (j + 1) & self.mask;
            let key = self.slots[j].key;
            if key == EMPTY {
                break;
            }
            let home = self.home(key);
            // The entry at j may fill the hole when its home is not in (hole, j] cyclically.
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
        }
        self.slots[hole] = Slot { key: EMPTY, val: V::default() };
        self.len -= 1;
    }

    /// Removes every entry.
    pub(crate) fn clear(&mut self) {
        self.slots.fill(Slot { key: EMPTY, val: V::default() });
        self.len = 0;
    }

    /// The occupied slots, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Slot<V>> + '_ {
        self.slots.iter().copied().filter(|s| s.key != EMPTY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn insert_find_remove() {
        let mut t: RawTable = RawTable::new(16, Some(1));
        assert_eq!(t.capacity(), 16);
        for k in 0..7u64 {
            let Err(i) = t.find(k) else { panic!("{k} found in an empty table") };
            t.insert_at(i, k, k * 10);
        }
        assert_eq!(t.len(), 7);
        for k in 0..7u64 {
            assert_eq!(t.get(k), Some(k * 10));
        }
        let Ok(i) = t.find(3) else { panic!("3 not found") };
        t.remove_at(i);
        assert_eq!(t.get(3), None);
        for k in (0..7u64).filter(|&k| k != 3) {
            assert_eq!(t.get(k), Some(k * 10), "key {k} lost by the backward shift");
        }
        assert_eq!(t.len(), 6);
        t.clear();
        assert_eq!((t.len(), t.get(1)), (0, None));
    }

    proptest! {
        /// Any sequence of inserts and removes on a small table (long clusters, wrap-around) agrees with a
        /// `HashMap`, and no cluster holds a key that its probe from home cannot reach.
        #[test]
        fn matches_hashmap(ops in proptest::collection::vec((any::<bool>(), 0u64..24), 0..300), seed in any::<u64>()) {
            let mut t: RawTable = RawTable::new(32, Some(seed));
            let mut m = HashMap::new();
            for (insert, k) in ops {
                match (insert, t.find(k)) {
                    (true, Ok(i)) => t.set_val(i, k + 1),
                    (true, Err(i)) => t.insert_at(i, k, k + 1),
                    (false, Ok(i)) => t.remove_at(i),
                    (false, Err(_)) => {}
                }
                if insert { m.insert(k, k + 1); } else { m.remove(&k); }
                prop_assert_eq!(t.len(), m.len());
            }
            for k in 0..24 {
                prop_assert_eq!(t.get(k), m.get(&k).copied());
            }
            prop_assert_eq!(t.iter().count(), m.len());
        }
    }
}
