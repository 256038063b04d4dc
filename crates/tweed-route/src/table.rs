//! The route table: prefixes → next-hop ids ([`Lpm`]) beside the next hops themselves ([`NextHops`]).

use core::net::Ipv4Addr;
use std::collections::VecDeque;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::lpm::{Config, Lpm, LpmReader, MemoryUsage};
use crate::nexthop::{ID_QUARANTINE, NextHop, NextHopId, NextHops};
use crate::{Error, Ipv4Prefix, Result};

/// A node's IPv4 route table: the writer half, owned by the control plane.
///
/// Routes point to next hops by id; a route can only point to a next hop the table holds, and a next hop can
/// only be removed when no route points to it, so a lookup never resolves to a dangling id.
///
/// What a [`NextHop`] means is the caller's: here its value indexes the caller's peer list, and one value the
/// caller reserved says "this node".
///
/// ```
/// use core::net::Ipv4Addr;
/// use tweed_route::{NextHop, RouteTable};
///
/// const LOCAL: NextHop = NextHop::new(u64::MAX);
/// let peers = [Ipv4Addr::new(192, 168, 0, 2), Ipv4Addr::new(192, 168, 0, 3)];
///
/// let mut table = RouteTable::new();
/// let local = table.add_next_hop(LOCAL)?;
/// let node2 = table.add_next_hop(NextHop::new(0))?; // peers[0]
/// table.insert("10.244.1.0/24".parse()?, local)?;
/// table.insert("10.244.2.0/24".parse()?, node2)?;
///
/// let reader = table.reader(); // hand a clone to each worker
/// let hop = reader.resolve(Ipv4Addr::new(10, 244, 2, 7)).expect("10.244.2.0/24 routes it");
/// let peer = usize::try_from(hop.value()).ok().and_then(|i| peers.get(i));
/// assert_eq!(peer, Some(&Ipv4Addr::new(192, 168, 0, 2)));
/// assert_eq!(reader.resolve(Ipv4Addr::new(10, 244, 1, 9)), Some(LOCAL));
/// assert_eq!(reader.resolve(Ipv4Addr::new(10, 245, 0, 1)), None);
/// assert!(table.remove_next_hop(node2).is_err()); // still used by 10.244.2.0/24
/// // The peer moved to another slot of the caller's list: every route through node2 follows at once.
/// assert_eq!(table.replace_next_hop(node2, NextHop::new(1)), Ok(NextHop::new(0)));
/// assert_eq!(reader.resolve(Ipv4Addr::new(10, 244, 2, 7)), Some(NextHop::new(1)));
/// # Ok::<(), tweed_route::Error>(())
/// ```
#[derive(Debug)]
pub struct RouteTable {
    lpm: Lpm,
    hops: Vec<Option<NextHop>>,
    refs: Vec<usize>,
    free_ids: VecDeque<u32>,
    published: Arc<ArcSwap<NextHops>>,
}

/// The read half of a [`RouteTable`]: `Clone + Send + Sync`, never waits for the writer.
#[derive(Clone, Debug)]
pub struct RouteReader {
    lpm: LpmReader,
    hops: Arc<ArcSwap<NextHops>>,
}

/// A loaded snapshot of the next-hop table; hold it for a batch, not for long.
pub struct NextHopsGuard(arc_swap::Guard<Arc<NextHops>>);

impl core::ops::Deref for NextHopsGuard {
    type Target = NextHops;
    fn deref(&self) -> &NextHops {
        &self.0
    }
}

impl core::fmt::Debug for NextHopsGuard {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&**self.0, f)
    }
}

impl RouteReader {
    /// The next-hop id of the longest prefix containing `addr` (host order).
    #[must_use]
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<NextHopId> {
        self.lpm.lookup(addr)
    }

    /// See [`LpmReader::lookup_batch`].
    #[inline]
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [Option<NextHopId>]) -> usize {
        self.lpm.lookup_batch(addrs, out)
    }

    /// The current next-hop table.
    #[must_use]
    #[inline]
    pub fn next_hops(&self) -> NextHopsGuard {
        NextHopsGuard(self.hops.load())
    }

    /// The next hop for `addr`: a lookup, then the next-hop table.
    #[must_use]
    pub fn resolve(&self, addr: Ipv4Addr) -> Option<NextHop> {
        let id = self.lookup(addr.to_bits())?;
        self.next_hops().get(id).copied()
    }

    /// The prefix-level reader.
    #[must_use]
    pub fn lpm(&self) -> &LpmReader {
        &self.lpm
    }
}

impl Default for RouteTable {
    fn default() -> Self {
        Self::new()
    }
}

impl RouteTable {
    /// An empty table with the default [`Config`].
    #[must_use]
    pub fn new() -> Self {
        Self::from_lpm(Lpm::new())
    }

    /// An empty table sized by `config`.
    pub fn with_config(config: Config) -> Result<Self> {
        Lpm::with_config(config).map(Self::from_lpm)
    }

    fn from_lpm(lpm: Lpm) -> Self {
        Self {
            lpm,
            hops: Vec::new(),
            refs: Vec::new(),
            free_ids: VecDeque::new(),
            published: Arc::new(ArcSwap::from_pointee(NextHops::default())),
        }
    }

    /// A new read handle.
    #[must_use]
    pub fn reader(&self) -> RouteReader {
        RouteReader { lpm: self.lpm.reader(), hops: Arc::clone(&self.published) }
    }

    fn publish(&self) {
        self.published.store(Arc::new(NextHops { slots: self.hops.clone() }));
    }

    /// Adds a next hop and returns its id.
    pub fn add_next_hop(&mut self, hop: NextHop) -> Result<NextHopId> {
        let id = if self.free_ids.len() > ID_QUARANTINE {
            self.free_ids.pop_front().ok_or(Error::NextHopsFull)?
        } else if self.hops.len() <= NextHopId::MAX.0 as usize {
            self.hops.push(None);
            self.refs.push(0);
            (self.hops.len() - 1) as u32
        } else {
            self.free_ids.pop_front().ok_or(Error::NextHopsFull)?
        };
        self.hops[id as usize] = Some(hop);
        self.publish();
        Ok(NextHopId(id))
    }

    /// Changes the value next hop `id` holds (its peer moved to another slot, say); every route using it follows
    /// at once. Returns the old value.
    pub fn replace_next_hop(&mut self, id: NextHopId, hop: NextHop) -> Result<NextHop> {
        let slot = self.hops.get_mut(id.0 as usize).and_then(Option::as_mut).ok_or(Error::UnknownNextHop { id })?;
        let old = core::mem::replace(slot, hop);
        self.publish();
        Ok(old)
    }

    /// Removes next hop `id`, which no route may use.
    pub fn remove_next_hop(&mut self, id: NextHopId) -> Result<NextHop> {
        let i = id.0 as usize;
        let hop = self.hops.get(i).copied().flatten().ok_or(Error::UnknownNextHop { id })?;
        if self.refs[i] != 0 {
            return Err(Error::NextHopInUse { id, routes: self.refs[i] });
        }
        self.hops[i] = None;
        self.free_ids.push_back(id.0);
        self.publish();
        Ok(hop)
    }

    /// Next hop `id`.
    #[must_use]
    pub fn next_hop(&self, id: NextHopId) -> Option<&NextHop> {
        self.hops.get(id.0 as usize).and_then(Option::as_ref)
    }

    /// How many routes use next hop `id`.
    #[must_use]
    pub fn next_hop_routes(&self, id: NextHopId) -> usize {
        self.refs.get(id.0 as usize).copied().unwrap_or(0)
    }

    /// Adds a route to next hop `id`, or moves an existing route to it; returns the next hop it replaced.
    pub fn insert(&mut self, prefix: Ipv4Prefix, id: NextHopId) -> Result<Option<NextHopId>> {
        if id > NextHopId::MAX {
            return Err(Error::NextHopOutOfRange { id });
        }
        if self.next_hop(id).is_none() {
            return Err(Error::UnknownNextHop { id });
        }
        let old = self.lpm.insert(prefix, id)?;
        self.refs[id.0 as usize] += 1;
        if let Some(old) = old {
            self.refs[old.0 as usize] -= 1;
        }
        Ok(old)
    }

    /// Removes a route; returns its next hop.
    pub fn remove(&mut self, prefix: Ipv4Prefix) -> Option<NextHopId> {
        let old = self.lpm.remove(prefix)?;
        self.refs[old.0 as usize] -= 1;
        Some(old)
    }

    /// The next hop of exactly this prefix.
    #[must_use]
    pub fn get(&self, prefix: Ipv4Prefix) -> Option<NextHopId> {
        self.lpm.get(prefix)
    }

    /// See [`LpmReader::lookup`].
    #[must_use]
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<NextHopId> {
        self.lpm.lookup(addr)
    }

    /// See [`LpmReader::lookup_batch`].
    #[inline]
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [Option<NextHopId>]) -> usize {
        self.lpm.lookup_batch(addrs, out)
    }

    /// Every route in prefix order; see [`Lpm::iter`].
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Prefix, NextHopId)> + use<> {
        self.lpm.iter()
    }

    /// How many routes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lpm.len()
    }

    /// Whether there is no route.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lpm.is_empty()
    }

    /// Memory held, next hops included.
    #[must_use]
    pub fn memory_usage(&self) -> MemoryUsage {
        let mut m = self.lpm.memory_usage();
        m.next_hop_bytes = self.hops.capacity() * size_of::<Option<NextHop>>()
            + self.refs.capacity() * size_of::<usize>()
            + self.free_ids.capacity() * 4
            + self.published.load().heap_bytes();
        m
    }

    /// The prefix-level table.
    #[must_use]
    pub fn lpm(&self) -> &Lpm {
        &self.lpm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Ipv4Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn next_hops_are_counted_and_guarded() {
        let mut t = RouteTable::new();
        let reader = t.reader();
        assert_eq!(t.insert(p("10.0.0.0/8"), NextHopId(0)), Err(Error::UnknownNextHop { id: NextHopId(0) }));
        let a = t.add_next_hop(NextHop::new(100)).unwrap();
        let b = t.add_next_hop(NextHop::new(200)).unwrap();
        assert_eq!((a, b), (NextHopId(0), NextHopId(1)));
        t.insert(p("10.0.0.0/8"), a).unwrap();
        t.insert(p("10.1.0.0/16"), a).unwrap();
        assert_eq!(t.next_hop_routes(a), 2);
        assert_eq!(t.insert(p("10.1.0.0/16"), b), Ok(Some(a)));
        assert_eq!((t.next_hop_routes(a), t.next_hop_routes(b)), (1, 1));
        assert_eq!(t.remove_next_hop(b), Err(Error::NextHopInUse { id: b, routes: 1 }));
        assert_eq!(reader.resolve(Ipv4Addr::new(10, 1, 0, 1)), Some(NextHop::new(200)));
        assert_eq!(t.replace_next_hop(b, NextHop::new(201)), Ok(NextHop::new(200)));
        assert_eq!(reader.resolve(Ipv4Addr::new(10, 1, 0, 1)), Some(NextHop::new(201)));
        assert_eq!(t.remove(p("10.1.0.0/16")), Some(b));
        assert_eq!(t.remove_next_hop(b), Ok(NextHop::new(201)));
        assert_eq!(t.remove_next_hop(b), Err(Error::UnknownNextHop { id: b }));
        assert_eq!(t.replace_next_hop(b, NextHop::new(1)), Err(Error::UnknownNextHop { id: b }));
        assert_eq!(reader.next_hops().get(b), None);
        assert_eq!(reader.next_hops().len(), 1);
        // A removed id is not handed out again at once.
        let c = t.add_next_hop(NextHop::new(300)).unwrap();
        assert_eq!(c, NextHopId(2));
        assert_eq!(reader.resolve(Ipv4Addr::new(10, 1, 0, 1)), Some(NextHop::new(100)));
        assert_eq!(t.len(), 1);
        assert!(t.memory_usage().next_hop_bytes > 0);
        assert_eq!(t.iter().collect::<Vec<_>>(), [(p("10.0.0.0/8"), a)]);
        let snapshot = reader.next_hops();
        assert_eq!(snapshot.iter().collect::<Vec<_>>(), [(a, &NextHop::new(100)), (c, &NextHop::new(300))]);
    }

    /// Routes store 24-bit ids, but a next hop's value is the caller's whole u64: none of it may be lost.
    #[test]
    fn next_hop_values_keep_all_64_bits() {
        assert_eq!(NextHop::default(), NextHop::new(0));
        assert_eq!(NextHop::from(0xdead_beef_u64), NextHop::new(0xdead_beef));
        let mut t = RouteTable::new();
        let reader = t.reader();
        let values = [0, 1, (1 << 24) - 1, 1 << 24, 1 << 32, 0x8000_0000_0000_0001, u64::MAX];
        for (i, &v) in values.iter().enumerate() {
            let id = t.add_next_hop(NextHop::new(v)).unwrap();
            t.insert(Ipv4Prefix::new(Ipv4Addr::new(10, i as u8, 0, 0), 16).unwrap(), id).unwrap();
        }
        for (i, &v) in values.iter().enumerate() {
            assert_eq!(reader.resolve(Ipv4Addr::new(10, i as u8, 7, 7)).map(NextHop::value), Some(v));
            assert_eq!(t.next_hop(NextHopId(i as u32)).copied(), Some(NextHop::new(v)));
        }
    }

    #[test]
    fn freed_ids_wait_in_quarantine() {
        let mut t = RouteTable::new();
        let ids: Vec<_> = (0..=ID_QUARANTINE as u64).map(|v| t.add_next_hop(NextHop::new(v)).unwrap()).collect();
        for &id in &ids {
            t.remove_next_hop(id).unwrap();
        }
        // More than ID_QUARANTINE ids wait: the oldest comes back.
        assert_eq!(t.add_next_hop(NextHop::new(7)), Ok(ids[0]));
        assert_eq!(t.add_next_hop(NextHop::new(7)), Ok(NextHopId(ids.len() as u32)));
    }
}
