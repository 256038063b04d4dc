//! Sets of ports, as bitmaps, and their iterator.

use core::fmt;

use crate::PortId;

const WORDS: usize = PortId::MAX / 64;

/// A set of ports (below [`PortId::MAX`]), as a bitmap.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PortSet([u64; WORDS]);

impl PortSet {
    /// The empty set.
    pub const EMPTY: Self = Self([0; WORDS]);

    /// Adds `port`; ports out of range are ignored.
    pub fn insert(&mut self, port: PortId) {
        if let Some(w) = self.0.get_mut(port.index() / 64) {
            *w |= 1 << (port.index() % 64);
        }
    }

    /// Removes `port`.
    pub fn remove(&mut self, port: PortId) {
        if let Some(w) = self.0.get_mut(port.index() / 64) {
            *w &= !(1 << (port.index() % 64));
        }
    }

    /// Whether `port` is in the set.
    #[must_use]
    pub fn contains(&self, port: PortId) -> bool {
        self.0.get(port.index() / 64).is_some_and(|w| w & (1 << (port.index() % 64)) != 0)
    }

    /// The number of ports in the set.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    /// The ports, in increasing order.
    #[must_use]
    pub fn iter(&self) -> PortIter<'_> {
        PortIter { set: self, word: 0, bits: self.0[0], except: None }
    }
}

impl Default for PortSet {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl fmt::Debug for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The ports of a [`PortSet`], in increasing order, maybe without one of them.
#[derive(Clone, Debug)]
pub struct PortIter<'a> {
    pub(super) set: &'a PortSet,
    pub(super) word: usize,
    pub(super) bits: u64,
    pub(super) except: Option<PortId>,
}

impl Iterator for PortIter<'_> {
    type Item = PortId;

    fn next(&mut self) -> Option<PortId> {
        loop {
            while self.bits == 0 {
                self.word += 1;
                self.bits = *self.set.0.get(self.word)?;
            }
            let bit = self.bits.trailing_zeros() as usize;
            self.bits &= self.bits - 1;
            #[allow(clippy::cast_possible_truncation)] // below PortId::MAX
            let port = PortId((self.word * 64 + bit) as u16);
            if Some(port) != self.except {
                return Some(port);
            }
        }
    }
}
