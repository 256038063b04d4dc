//! Next hops: where a route sends a packet, kept in a table beside the prefixes.
//!
//! A route stores only a [`NextHopId`]; what the id means (deliver locally, send to a peer over VXLAN, drop…)
//! lives in a [`NextHops`] snapshot. The writer publishes a new snapshot on every change (RCU-style, with
//! `arc-swap`); next hops change seldom and are few (one per peer node), so copying the table is cheap, and a data
//! path that loads one snapshot per batch never takes a lock.
//!
//! A next hop can be removed only when no route points to it ([`crate::Error::NextHopInUse`]), and a removed id is
//! not handed out again until [`ID_QUARANTINE`] other ids have been freed after it, so an id read from a route an
//! instant before the route and its next hop were removed resolves to nothing (a counted drop), not to a
//! different peer.

use core::fmt;
use core::net::Ipv4Addr;

use tweed_wire::ethernet::MacAddr;

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

/// What to do with a packet whose destination matched a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NextHopKind {
    /// Deliver to this node: its own address or a pod behind its bridge.
    Local,
    /// Send out of a bridge port (an interface or switch port index).
    Bridge {
        /// The port.
        port: u32,
    },
    /// Encapsulate in VXLAN to a peer node's VTEP (flannel `vxlan`).
    Vxlan {
        /// The peer's underlay address (outer destination IP).
        peer_ip: Ipv4Addr,
        /// The peer's VTEP MAC (inner destination MAC).
        vtep_mac: MacAddr,
    },
    /// Send the IP packet whole inside UDP to a peer node (flannel `udp`).
    Udp {
        /// The peer's underlay address.
        peer_ip: Ipv4Addr,
    },
    /// Route in the clear to a peer on the same L2 segment (flannel `host-gw`).
    HostGw {
        /// The peer's address, the gateway.
        peer_ip: Ipv4Addr,
        /// The peer's MAC on the shared segment.
        peer_mac: MacAddr,
    },
    /// Drop silently.
    Blackhole,
    /// Drop and answer with ICMP destination unreachable.
    Unreachable,
}

/// A next hop: the entry a [`NextHopId`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NextHop {
    /// What to do with the packet.
    pub kind: NextHopKind,
}

impl NextHop {
    /// A next hop of this kind.
    #[must_use]
    pub const fn new(kind: NextHopKind) -> Self {
        Self { kind }
    }
}

impl From<NextHopKind> for NextHop {
    fn from(kind: NextHopKind) -> Self {
        Self { kind }
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
