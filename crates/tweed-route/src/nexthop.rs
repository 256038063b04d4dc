//! Next hops: where a route sends a packet, kept in a table beside the prefixes.
//!
//! A route stores only a [`NextHopId`]; the [`NextHop`] the id names lives in a [`NextHops`] snapshot. A next hop
//! is an opaque `u64` its user interprets (an index into its own peer table, a port, a verdict…): the table knows
//! nothing of encapsulations or backends, so a new kind of next hop never changes it. The writer publishes a new
//! snapshot on every change (RCU-style, with `arc-swap`); next hops change seldom and are few (one per peer node),
//! so copying the table is cheap, and a data path that loads one snapshot per batch never takes a lock.
//!
//! A next hop can be removed only when no route points to it ([`crate::Error::NextHopInUse`]), and a removed id is
//! not handed out again until [`ID_QUARANTINE`] other ids have been freed after it, so an id read from a route an
//! instant before the route and its next hop were removed resolves to nothing (a counted drop), not to a
//! different peer.

use core::fmt;

/// The index of a next hop in the [`NextHops`] table; what routes store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NextHopId(pub u32);

impl NextHopId {
    /// The largest id a route can hold: ids share the 32-bit table entry with flags and the prefix length.
    pub const MAX: Self = Self((1 << 24) - 1);
}

impl fmt::Display for NextHopId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nh{}", self.0)
    }
}

/// How many freed next-hop ids wait before the first of them is reused.
pub const ID_QUARANTINE: usize = 1024;

/// A next hop, opaque to the table: a value its user gives meaning to (an index into its own peer table, a port...).
///
/// The table only stores, publishes and hands back the value; it never looks inside, so the node, not the route
/// table, decides what kinds of next hop exist and how a packet reaches each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct NextHop(u64);

impl NextHop {
    /// The next hop holding `value`.
    #[must_use]
    #[inline]
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The value this next hop was made from.
    #[must_use]
    #[inline]
    pub const fn value(self) -> u64 {
        self.0
    }
}

impl From<u64> for NextHop {
    #[inline]
    fn from(value: u64) -> Self {
        Self(value)
    }
}

/// One published version of the next-hop table: id → next hop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NextHops {
    pub(crate) slots: Vec<Option<NextHop>>,
}

impl NextHops {
    /// The next hop `id` names, or `None` if there is none (never added, or removed).
    #[must_use]
    #[inline]
    pub fn get(&self, id: NextHopId) -> Option<&NextHop> {
        self.slots.get(id.0 as usize).and_then(Option::as_ref)
    }

    /// How many next hops the table holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Whether the table holds no next hop.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// The next hops with their ids, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (NextHopId, &NextHop)> + '_ {
        // Ids fit in u32: slots never grow past NextHopId::MAX + 1.
        self.slots.iter().enumerate().filter_map(|(i, s)| s.as_ref().map(|h| (NextHopId(i as u32), h)))
    }

    /// Heap bytes held by this snapshot.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * core::mem::size_of::<Option<NextHop>>()
    }
}
