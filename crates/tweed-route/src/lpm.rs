//! The longest-prefix-match structure: DIR-24-8 with lock-free readers.
//!
//! # Layout
//! DIR-24-8 (Gupta, Lin, McKeown 1998; DPDK's `rte_lpm`): `tbl24` has one 32-bit entry per /24, 2^24 of them
//! (64 MiB), indexed by the top 24 bits of the address. An entry holds either the answer for every address of
//! its /24, or the index of a *tbl8 group*: 256 entries, one per address of that /24, used only for /24s that
//! hold a prefix longer than /24. So a lookup is one memory read for most addresses and two for the rest.
//!
//! An entry is `VALID:1 | EXT:1 | depth:6 | value:24`: `value` is a [`NextHopId`] (hence [`NextHopId::MAX`]) or,
//! with `EXT`, a group index; `depth` is the length of the prefix that wrote the entry. Insert writes a slot only
//! where the current depth is not longer than the new prefix's; remove rewrites only slots of exactly its depth,
//! with the next-shorter covering prefix, which the writer finds in its control-plane copy of the routes (one
//! hash map per length). No update rebuilds the table: each touches `2^(24-len)` tbl24 slots (and their groups)
//! for `len ≤ 24`, or `2^(32-len)` entries of one group. tbl8 memory is allocated in chunks of 64 groups as the
//! table needs them, up to [`Config::max_tbl8_groups`].
//!
//! # Readers never wait
//! There is one writer ([`Lpm`], mutated through `&mut`) and any number of readers ([`LpmReader`], `Clone + Send +
//! Sync`), sharing the arrays through an `Arc`. Entries are `AtomicU32` updated in place, as `rte_lpm` does,
//! rather than whole tables republished RCU-style: a full table is 64 MiB and a BGP feed changes routes
//! thousands of times a second, so copying on write is out, and in-place atomic entries make every change visible
//! at once without a second copy. What a reader can see:
//! - A plain entry is a self-contained answer; a reader sees the old or the new one, each of which was the right
//!   answer for that address at some instant. Updates never pass through an empty state: remove writes the
//!   covering route directly over the removed one.
//! - A group is filled completely (with the /24's current answer, then the new longer prefix) *before* the tbl24
//!   entry pointing to it is stored with `Release`; a reader that follows the pointer loads it with `Acquire`
//!   (`SeqCst`), so it sees the filled group.
//! - When the last prefix longer than /24 of a group goes, the tbl24 entry is set back to the plain answer and
//!   the group is retired, its contents left as they were (all 256 entries equal that same answer). A reader
//!   that read the old pointer just before still reads a right answer from the retired group. The danger is
//!   *reuse*: were the group handed to another /24 while such a reader is between its two reads, it would read
//!   that other /24's next hop. So a retired group is reused only after a grace period, the
//!   one piece of epoch-based reclamation this needs: a reader that finds an `EXT` entry *pins* itself (adds one
//!   to its own counter for the current epoch parity, `SeqCst`), reloads the tbl24 entry, reads the group, and
//!   unpins. Before reusing retired groups the writer waits until the counter of the other parity drains, flips
//!   the epoch, and waits until the old parity drains: any reader that could have read a pointer to a retired
//!   group pinned before the pointer was removed, and is waited for. Readers that never meet an `EXT` entry
//!   (most lookups) pay nothing. Each [`LpmReader`] clone has its own cache-line-sized counters, so readers on
//!   different cores do not share a line; the writer waits only on readers inside a two-read section, never
//!   on a lock, and a reader never waits at all.
//!
//! ```
//! use tweed_route::{Lpm, NextHopId};
//!
//! let mut lpm = Lpm::new();
//! lpm.insert("10.0.0.0/8".parse()?, NextHopId(1))?;
//! lpm.insert("10.244.1.128/25".parse()?, NextHopId(2))?;
//! let reader = lpm.reader(); // Clone + Send + Sync: one per worker thread
//! assert_eq!(reader.lookup(0x0af4_0181), Some(NextHopId(2))); // 10.244.1.129
//! assert_eq!(reader.lookup(0x0af4_0101), Some(NextHopId(1))); // 10.244.1.1
//! assert_eq!(reader.lookup(0x0b00_0001), None); // 11.0.0.1
//! assert_eq!(lpm.remove("10.244.1.128/25".parse()?), Some(NextHopId(2)));
//! assert_eq!(reader.lookup(0x0af4_0181), Some(NextHopId(1)));
//! # Ok::<(), tweed_route::Error>(())
//! ```

use core::net::Ipv4Addr;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use crate::prefix::mask;
use crate::{Error, Ipv4Prefix, NextHopId, Result};

const TBL24_LEN: usize = 1 << 24;
const GROUP_LEN: usize = 256;
const CHUNK_GROUPS: u32 = 64;
const CHUNK_LEN: usize = CHUNK_GROUPS as usize * GROUP_LEN;

const VALID: u32 = 1 << 31;
const EXT: u32 = 1 << 30;
const DEPTH_SHIFT: u32 = 24;
const VALUE: u32 = 0x00ff_ffff;
const EMPTY: u32 = 0;

/// How many entries of a sub-batch are loaded before any is resolved.
const BATCH: usize = 32;

type Chunk = Box<[AtomicU32; CHUNK_LEN]>;
type RouteMap = HashMap<u32, NextHopId, foldhash::fast::RandomState>;

#[inline]
const fn entry(nh: NextHopId, depth: u8) -> u32 {
    VALID | (depth as u32) << DEPTH_SHIFT | (nh.0 & VALUE)
}

#[inline]
const fn depth(e: u32) -> u8 {
    ((e >> DEPTH_SHIFT) & 0x3f) as u8
}

#[inline]
const fn decode(e: u32) -> Option<NextHopId> {
    if e & VALID != 0 { Some(NextHopId(e & VALUE)) } else { None }
}

/// A boxed array of `N` zeroed atomics.
fn atomic_array<const N: usize>() -> Box<[AtomicU32; N]> {
    let v: Vec<AtomicU32> = (0..N).map(|_| AtomicU32::new(EMPTY)).collect();
    // The Vec has exactly N elements, so the conversion cannot fail.
    v.into_boxed_slice().try_into().unwrap_or_else(|_| unreachable!("length is N"))
}

/// Sizing of an [`Lpm`] table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// The most tbl8 groups (1 KiB each) the table may use: one per /24 that holds a prefix longer than /24.
    /// Memory is allocated as groups are used, 64 at a time. 1 to 2^24; default 65,536 (64 MiB at most).
    pub max_tbl8_groups: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self { max_tbl8_groups: 1 << 16 }
    }
}

/// Memory held by a table, in bytes, as the table itself counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MemoryUsage {
    /// The first level: 2^24 four-byte entries.
    pub tbl24_bytes: usize,
    /// tbl8 chunks allocated so far.
    pub tbl8_bytes: usize,
    /// tbl8 groups pointed to by tbl24 now.
    pub tbl8_groups_in_use: usize,
    /// The writer's copy of the routes (hash maps per prefix length), estimated from their capacities.
    pub control_bytes: usize,
    /// The next-hop table, when counted by a [`crate::RouteTable`].
    pub next_hop_bytes: usize,
}

impl MemoryUsage {
    /// Bytes the data path reads: tbl24 and tbl8.
    #[must_use]
    pub const fn lookup_bytes(&self) -> usize {
        self.tbl24_bytes + self.tbl8_bytes
    }

    /// All of it.
    #[must_use]
    pub const fn total(&self) -> usize {
        self.tbl24_bytes + self.tbl8_bytes + self.control_bytes + self.next_hop_bytes
    }
}

/// A reader's pin counters, one per epoch parity, on a cache line of their own.
#[repr(align(64))]
#[derive(Default)]
struct Slot {
    active: [AtomicUsize; 2],
}

struct Shared {
    tbl24: Box<[AtomicU32; TBL24_LEN]>,
    chunks: Box<[OnceLock<Chunk>]>,
    epoch: AtomicU64,
    readers: Mutex<Vec<Weak<Slot>>>,
}

impl Shared {
    #[inline]
    fn tbl8(&self, group: u32, i: u32) -> Option<&AtomicU32> {
        let chunk = self.chunks.get((group / CHUNK_GROUPS) as usize)?.get()?;
        // (group % 64) * 256 + (i & 255) < CHUNK_LEN: no bounds check survives.
        Some(&chunk[((group % CHUNK_GROUPS) as usize) << 8 | (i & 0xff) as usize])
    }

    fn register(self: &Arc<Self>) -> LpmReader {
        let slot = Arc::new(Slot::default());
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        readers.retain(|w| w.strong_count() > 0);
        readers.push(Arc::downgrade(&slot));
        drop(readers);
        LpmReader { shared: Arc::clone(self), slot }
    }
}

/// A read handle on an [`Lpm`] table: lookups without locks, from any thread, while the writer changes routes.
///
/// Cloning registers a new handle with its own pin counters: give each worker thread its own clone (sharing
/// one between threads is correct, only slower).
pub struct LpmReader {
    shared: Arc<Shared>,
    slot: Arc<Slot>,
}

impl Clone for LpmReader {
    fn clone(&self) -> Self {
        self.shared.register()
    }
}

impl core::fmt::Debug for LpmReader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LpmReader").finish_non_exhaustive()
    }
}

impl LpmReader {
    /// The next hop of the longest prefix containing `addr` (host order), or `None` if no prefix does.
    #[must_use]
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<NextHopId> {
        let e = self.shared.tbl24[(addr >> 8) as usize].load(Relaxed);
        if e & EXT == 0 { decode(e) } else { decode(self.lookup_ext(addr)) }
    }

    /// [`LpmReader::lookup`] for an [`Ipv4Addr`].
    #[must_use]
    #[inline]
    pub fn lookup_addr(&self, addr: Ipv4Addr) -> Option<NextHopId> {
        self.lookup(addr.to_bits())
    }

    /// Looks up `addrs[i]` into `out[i]` for every `i` below the shorter of the two lengths, and returns that
    /// count.
    ///
    /// Faster than a loop of [`LpmReader::lookup`]: the tbl24 entries of a sub-batch of 32 are loaded first,
    /// independent loads whose cache misses overlap, then the few that point to tbl8 are resolved under one pin.
    #[inline]
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [Option<NextHopId>]) -> usize {
        let n = addrs.len().min(out.len());
        let tbl24 = &*self.shared.tbl24;
        for (a, o) in addrs[..n].chunks(BATCH).zip(out[..n].chunks_mut(BATCH)) {
            let mut e = [EMPTY; BATCH];
            let mut ext = 0;
            for (e, &addr) in e.iter_mut().zip(a) {
                *e = tbl24[(addr >> 8) as usize].load(Relaxed);
                ext |= *e;
            }
            if ext & EXT != 0 {
                let parity = self.pin();
                for (e, &addr) in e.iter_mut().zip(a) {
                    if *e & EXT != 0 {
                        *e = self.load_pinned(addr);
                    }
                }
                self.unpin(parity);
            }
            for (o, &e) in o.iter_mut().zip(&e) {
                *o = decode(e);
            }
        }
        n
    }

    #[inline(never)]
    fn lookup_ext(&self, addr: u32) -> u32 {
        let parity = self.pin();
        let e = self.load_pinned(addr);
        self.unpin(parity);
        e
    }

    #[inline]
    fn pin(&self) -> usize {
        let parity = (self.shared.epoch.load(SeqCst) & 1) as usize;
        self.slot.active[parity].fetch_add(1, SeqCst);
        parity
    }

    #[inline]
    fn unpin(&self, parity: usize) {
        self.slot.active[parity].fetch_sub(1, Release);
    }

    /// The final entry for `addr`; only between `pin` and `unpin`.
    #[inline]
    fn load_pinned(&self, addr: u32) -> u32 {
        let e = self.shared.tbl24[(addr >> 8) as usize].load(SeqCst);
        if e & EXT == 0 {
            return e;
        }
        // A group pointed to by a published entry always exists; EMPTY keeps the promise never to panic.
        self.shared.tbl8(e & VALUE, addr).map_or(EMPTY, |s| s.load(Relaxed))
    }
}

/// The writer of a DIR-24-8 longest-prefix-match table from IPv4 prefixes to [`NextHopId`]s.
///
/// See the [module documentation](self) for the layout and the concurrency argument.
pub struct Lpm {
    shared: Arc<Shared>,
    reader: LpmReader,
    /// The routes by length: `routes[len][addr]`.
    routes: Vec<RouteMap>,
    /// Bit `len` set when `routes[len]` is not empty.
    lens: u64,
    /// For lengths up to 24, one bit per possible prefix ([`Lpm::present_bit`]): whether it is a route. 4 MiB
    /// of address space, touched only where routes are; it spares remove the hash-map misses of the search for
    /// the covering route.
    present: Vec<u64>,
    count: usize,
    max_groups: u32,
    next_fresh: u32,
    free: Vec<u32>,
    retired: Vec<u32>,
    groups_in_use: usize,
}

impl core::fmt::Debug for Lpm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Lpm")
            .field("routes", &self.count)
            .field("tbl8_groups_in_use", &self.groups_in_use)
            .finish_non_exhaustive()
    }
}

impl Default for Lpm {
    fn default() -> Self {
        Self::new()
    }
}

impl Lpm {
    /// An empty table with the default [`Config`].
    #[must_use]
    pub fn new() -> Self {
        Self::build(Config::default())
    }

    /// An empty table sized by `config`.
    pub fn with_config(config: Config) -> Result<Self> {
        if config.max_tbl8_groups == 0 || config.max_tbl8_groups > 1 << 24 {
            return Err(Error::Config { field: "max_tbl8_groups", value: config.max_tbl8_groups });
        }
        Ok(Self::build(config))
    }

    fn build(config: Config) -> Self {
        let chunks = config.max_tbl8_groups.div_ceil(CHUNK_GROUPS) as usize;
        let shared = Arc::new(Shared {
            tbl24: atomic_array(),
            chunks: (0..chunks).map(|_| OnceLock::new()).collect(),
            epoch: AtomicU64::new(0),
            readers: Mutex::new(Vec::new()),
        });
        let hasher = foldhash::fast::RandomState::default();
        Self {
            reader: shared.register(),
            shared,
            routes: (0..=32).map(|_| HashMap::with_hasher(hasher.clone())).collect(),
            lens: 0,
            // Zeroed allocation: the OS maps pages as bits are set.
            present: vec![0; ((1 << 16) + (1 << 16) * 512) / 64],
            count: 0,
            max_groups: config.max_tbl8_groups,
            next_fresh: 0,
            free: Vec::new(),
            retired: Vec::new(),
            groups_in_use: 0,
        }
    }

    /// A new read handle.
    #[must_use]
    pub fn reader(&self) -> LpmReader {
        self.shared.register()
    }

    /// How many routes the table holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the table holds no route.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds a route, or replaces the next hop of an existing one; returns the next hop it replaced.
    ///
    /// Fails, changing nothing, when `nh` is over [`NextHopId::MAX`] or the prefix is longer than /24 and needs a
    /// tbl8 group when all are taken.
    pub fn insert(&mut self, prefix: Ipv4Prefix, nh: NextHopId) -> Result<Option<NextHopId>> {
        if nh > NextHopId::MAX {
            return Err(Error::NextHopOutOfRange { id: nh });
        }
        let (addr, len) = (prefix.addr(), prefix.len());
        if let Some(old) = self.routes[len as usize].get_mut(&addr) {
            let old = core::mem::replace(old, nh);
            if old != nh {
                self.fill(addr, len, |e| depth(e) == len, entry(nh, len));
            }
            return Ok(Some(old));
        }
        if len > 24 {
            self.expand((addr >> 8) as usize)?;
        }
        self.routes[len as usize].insert(addr, nh);
        self.lens |= 1 << len;
        self.set_present(addr, len, true);
        self.count += 1;
        self.fill(addr, len, |e| depth(e) <= len, entry(nh, len));
        Ok(None)
    }

    /// Removes a route; returns its next hop, or `None` if there was no such route. Addresses it covered fall
    /// back to the next-shorter covering route, if any.
    pub fn remove(&mut self, prefix: Ipv4Prefix) -> Option<NextHopId> {
        let (addr, len) = (prefix.addr(), prefix.len());
        let nh = self.routes[len as usize].remove(&addr)?;
        if self.routes[len as usize].is_empty() {
            self.lens &= !(1 << len);
        }
        self.set_present(addr, len, false);
        self.count -= 1;
        let cover = self.covering(addr, len).map_or(EMPTY, |(l, nh)| entry(nh, l));
        self.fill(addr, len, |e| depth(e) == len, cover);
        if len > 24 {
            self.collapse((addr >> 8) as usize);
        }
        Some(nh)
    }

    /// The next hop of exactly this prefix.
    #[must_use]
    pub fn get(&self, prefix: Ipv4Prefix) -> Option<NextHopId> {
        self.routes[prefix.len() as usize].get(&prefix.addr()).copied()
    }

    /// The longest route containing `addr`, as a prefix and its next hop (a control-plane query: up to 33 hash
    /// lookups; the data path uses [`Lpm::lookup`]).
    #[must_use]
    pub fn longest_match(&self, addr: u32) -> Option<(Ipv4Prefix, NextHopId)> {
        let (len, nh) = self.covering(addr, 33)?;
        Ipv4Prefix::new_masked(addr, len).ok().map(|p| (p, nh))
    }

    /// See [`LpmReader::lookup`].
    #[must_use]
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<NextHopId> {
        self.reader.lookup(addr)
    }

    /// See [`LpmReader::lookup_batch`].
    #[inline]
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [Option<NextHopId>]) -> usize {
        self.reader.lookup_batch(addrs, out)
    }

    /// Every route, in prefix order (by address, then length). Collects and sorts: O(n log n).
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Prefix, NextHopId)> + use<> {
        let mut all = Vec::with_capacity(self.count);
        for (len, map) in self.routes.iter().enumerate() {
            // len ≤ 32 and every stored address has clear host bits.
            all.extend(map.iter().filter_map(|(&a, &nh)| Ipv4Prefix::new(a, len as u8).ok().map(|p| (p, nh))));
        }
        all.sort_unstable_by_key(|&(p, _)| p);
        all.into_iter()
    }

    /// How many routes there are of each length, 0 to 32.
    #[must_use]
    pub fn len_histogram(&self) -> [usize; 33] {
        core::array::from_fn(|l| self.routes[l].len())
    }

    /// Memory held, as counted by the table.
    #[must_use]
    pub fn memory_usage(&self) -> MemoryUsage {
        let allocated = self.shared.chunks.iter().filter(|c| c.get().is_some()).count();
        let control = self
            .routes
            .iter()
            .map(|m| {
                let cap = m.capacity();
                // hashbrown: buckets a power of two ≥ cap·8/7, each an entry and a control byte.
                let buckets = if cap == 0 { 0 } else { (cap * 8 / 7).next_power_of_two() };
                buckets * (size_of::<(u32, NextHopId)>() + 1)
            })
            .sum::<usize>()
            + self.routes.capacity() * size_of::<RouteMap>()
            + (self.free.capacity() + self.retired.capacity()) * 4
            + self.present.capacity() * 8;
        MemoryUsage {
            tbl24_bytes: TBL24_LEN * 4,
            tbl8_bytes: allocated * CHUNK_LEN * 4,
            tbl8_groups_in_use: self.groups_in_use,
            control_bytes: control,
            next_hop_bytes: 0,
        }
    }

    /// The bit of `addr/len` in `present`, for `len ≤ 24`. Lengths below 16 share the first 2^16 bits
    /// (`2^len - 1 + index`); lengths 16 to 24 of one /16 share a 64-byte line after them (a heap-ordered binary
    /// tree, 511 bits), so that the covering search of a prefix touches one line, not one per length.
    const fn present_bit(addr: u32, len: u8) -> usize {
        if len < 16 {
            (1usize << len) - 1 + if len == 0 { 0 } else { (addr >> (32 - len)) as usize }
        } else {
            let depth = len - 16;
            let local = (1usize << depth) - 1 + ((addr >> (32 - len)) as usize & ((1 << depth) - 1));
            (1 << 16) + ((addr >> 16) as usize) * 512 + local
        }
    }

    fn set_present(&mut self, addr: u32, len: u8, on: bool) {
        if len <= 24 {
            let bit = Self::present_bit(addr, len);
            if let Some(word) = self.present.get_mut(bit / 64) {
                if on {
                    *word |= 1 << (bit % 64);
                } else {
                    *word &= !(1 << (bit % 64));
                }
            }
        }
    }

    /// The longest route of length below `len` containing `addr`.
    fn covering(&self, addr: u32, len: u8) -> Option<(u8, NextHopId)> {
        let mut lens = self.lens & ((1u64 << len) - 1);
        while lens != 0 {
            let l = 63 - lens.leading_zeros() as u8;
            lens &= !(1 << l);
            if l <= 24 {
                let bit = Self::present_bit(addr, l);
                if self.present.get(bit / 64).is_none_or(|w| w & (1 << (bit % 64)) == 0) {
                    continue;
                }
            }
            if let Some(&nh) = self.routes[l as usize].get(&(addr & mask(l))) {
                return Some((l, nh));
            }
        }
        None
    }

    /// Stores `new` in every final entry of `addr/len` whose current value satisfies `pick`.
    fn fill(&self, addr: u32, len: u8, pick: impl Fn(u32) -> bool, new: u32) {
        let sh = &*self.shared;
        let group = |g: u32, range: core::ops::Range<u32>| {
            for i in range {
                if let Some(slot) = sh.tbl8(g, i)
                    && pick(slot.load(Relaxed))
                {
                    slot.store(new, Relaxed);
                }
            }
        };
        if len <= 24 {
            let first = (addr >> 8) as usize;
            for slot in &sh.tbl24[first..first + (1 << (24 - len))] {
                let e = slot.load(Relaxed);
                if e & EXT != 0 {
                    group(e & VALUE, 0..256);
                } else if pick(e) {
                    slot.store(new, Relaxed);
                }
            }
        } else {
            let e = sh.tbl24[(addr >> 8) as usize].load(Relaxed);
            // insert expanded this /24 and collapse keeps it expanded while a longer prefix remains.
            if e & EXT != 0 {
                let first = addr & 0xff;
                group(e & VALUE, first..first + (1 << (32 - len)));
            }
        }
    }

    /// Gives tbl24 slot `s` a tbl8 group, if it has none, filled with the slot's answer.
    fn expand(&mut self, s: usize) -> Result<()> {
        let e = self.shared.tbl24[s].load(Relaxed);
        if e & EXT != 0 {
            return Ok(());
        }
        let g = self.alloc_group()?;
        for i in 0..256 {
            if let Some(slot) = self.shared.tbl8(g, i) {
                slot.store(e, Relaxed);
            }
        }
        // Release: the filled group is visible to whoever sees the pointer.
        self.shared.tbl24[s].store(EXT | g, Release);
        self.groups_in_use += 1;
        Ok(())
    }

    /// Points tbl24 slot `s` back to a plain answer when its group holds nothing longer than /24.
    fn collapse(&mut self, s: usize) {
        let e = self.shared.tbl24[s].load(Relaxed);
        if e & EXT == 0 {
            return;
        }
        let g = e & VALUE;
        let mut answer = EMPTY;
        for i in 0..256 {
            let v = self.shared.tbl8(g, i).map_or(EMPTY, |slot| slot.load(Relaxed));
            if depth(v) > 24 {
                return;
            }
            answer = v;
        }
        // SeqCst: ordered before the epoch flip of the grace period that precedes reuse.
        self.shared.tbl24[s].store(answer, SeqCst);
        self.retired.push(g);
        self.groups_in_use -= 1;
    }

    fn alloc_group(&mut self) -> Result<u32> {
        if let Some(g) = self.free.pop() {
            return Ok(g);
        }
        // Fresh groups in a chunk already allocated cost nothing; then recycle retired ones; then grow.
        if !self.next_fresh.is_multiple_of(CHUNK_GROUPS) && self.next_fresh < self.max_groups {
            self.next_fresh += 1;
            return Ok(self.next_fresh - 1);
        }
        if !self.retired.is_empty() {
            self.synchronize();
            self.free.append(&mut self.retired);
            if let Some(g) = self.free.pop() {
                return Ok(g);
            }
        }
        if self.next_fresh < self.max_groups {
            let g = self.next_fresh;
            if let Some(chunk) = self.shared.chunks.get((g / CHUNK_GROUPS) as usize) {
                chunk.get_or_init(atomic_array);
                self.next_fresh += 1;
                return Ok(g);
            }
        }
        Err(Error::Tbl8Exhausted { max_groups: self.max_groups })
    }

    /// Waits until no reader can still be reading a group retired before this call.
    fn synchronize(&self) {
        let sh = &*self.shared;
        let slots: Vec<Arc<Slot>> = {
            let mut readers = sh.readers.lock().unwrap_or_else(PoisonError::into_inner);
            readers.retain(|w| w.strong_count() > 0);
            readers.iter().filter_map(Weak::upgrade).collect()
        };
        let epoch = sh.epoch.load(Relaxed);
        let wait = |parity: usize| {
            for slot in &slots {
                let mut spins = 0u32;
                while slot.active[parity].load(SeqCst) != 0 {
                    spins += 1;
                    if spins < 128 {
                        core::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
            }
        };
        // Stragglers that read the epoch before the previous flip pinned the other parity.
        wait(((epoch + 1) & 1) as usize);
        sh.epoch.store(epoch + 1, SeqCst);
        wait((epoch & 1) as usize);
        core::sync::atomic::fence(Acquire);
    }

    #[cfg(test)]
    pub(crate) fn groups_retired(&self) -> usize {
        self.retired.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Ipv4Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn entry_encoding() {
        let e = entry(NextHopId::MAX, 32);
        assert_eq!(e, 0xa0ff_ffff);
        assert_eq!((depth(e), decode(e)), (32, Some(NextHopId::MAX)));
        assert_eq!((depth(EMPTY), decode(EMPTY)), (0, None));
        assert_eq!(decode(entry(NextHopId(0), 0)), Some(NextHopId(0)));
    }

    #[test]
    fn insert_replace_remove_and_fallback() {
        let mut t = Lpm::new();
        assert_eq!(t.insert(p("10.0.0.0/8"), NextHopId(1)), Ok(None));
        assert_eq!(t.insert(p("10.1.0.0/16"), NextHopId(2)), Ok(None));
        assert_eq!(t.insert(p("10.1.1.0/24"), NextHopId(3)), Ok(None));
        assert_eq!(t.insert(p("10.1.1.64/26"), NextHopId(4)), Ok(None));
        assert_eq!(t.insert(p("10.1.1.70/32"), NextHopId(5)), Ok(None));
        let at = |t: &Lpm, a: [u8; 4]| t.lookup(u32::from_be_bytes(a));
        assert_eq!(at(&t, [10, 1, 1, 70]), Some(NextHopId(5)));
        assert_eq!(at(&t, [10, 1, 1, 71]), Some(NextHopId(4)));
        assert_eq!(at(&t, [10, 1, 1, 128]), Some(NextHopId(3)));
        assert_eq!(at(&t, [10, 1, 2, 0]), Some(NextHopId(2)));
        assert_eq!(at(&t, [10, 2, 0, 0]), Some(NextHopId(1)));
        assert_eq!(at(&t, [11, 0, 0, 0]), None);
        // A shorter prefix inserted after longer ones does not override them.
        assert_eq!(t.insert(p("10.1.0.0/17"), NextHopId(6)), Ok(None));
        assert_eq!(at(&t, [10, 1, 1, 71]), Some(NextHopId(4)));
        assert_eq!(at(&t, [10, 1, 2, 0]), Some(NextHopId(6)));
        // Replace.
        assert_eq!(t.insert(p("10.1.1.64/26"), NextHopId(7)), Ok(Some(NextHopId(4))));
        assert_eq!(at(&t, [10, 1, 1, 71]), Some(NextHopId(7)));
        assert_eq!(at(&t, [10, 1, 1, 70]), Some(NextHopId(5)));
        assert_eq!(t.len(), 6);
        // Remove falls back to the next-shorter covering route, level by level.
        assert_eq!(t.remove(p("10.1.1.64/26")), Some(NextHopId(7)));
        assert_eq!(at(&t, [10, 1, 1, 71]), Some(NextHopId(3)));
        assert_eq!(t.remove(p("10.1.1.0/24")), Some(NextHopId(3)));
        assert_eq!(at(&t, [10, 1, 1, 71]), Some(NextHopId(6)));
        assert_eq!(at(&t, [10, 1, 1, 70]), Some(NextHopId(5)));
        assert_eq!(t.remove(p("10.1.1.0/24")), None);
        assert_eq!(t.memory_usage().tbl8_groups_in_use, 1);
        assert_eq!(t.remove(p("10.1.1.70/32")), Some(NextHopId(5)));
        assert_eq!(t.memory_usage().tbl8_groups_in_use, 0);
        assert_eq!(t.groups_retired(), 1);
        assert_eq!(at(&t, [10, 1, 1, 70]), Some(NextHopId(6)));
        assert_eq!(t.get(p("10.1.0.0/17")), Some(NextHopId(6)));
        assert_eq!(t.longest_match(0x0a01_0146), Some((p("10.1.0.0/17"), NextHopId(6))));
        assert_eq!(t.longest_match(0x0b00_0000), None);
    }

    #[test]
    fn default_route_and_host_routes() {
        let mut t = Lpm::new();
        t.insert(Ipv4Prefix::DEFAULT, NextHopId(9)).unwrap();
        t.insert(p("255.255.255.255/32"), NextHopId(1)).unwrap();
        t.insert(p("0.0.0.0/32"), NextHopId(2)).unwrap();
        assert_eq!(t.lookup(u32::MAX), Some(NextHopId(1)));
        assert_eq!(t.lookup(u32::MAX - 1), Some(NextHopId(9)));
        assert_eq!(t.lookup(0), Some(NextHopId(2)));
        assert_eq!(t.lookup(1), Some(NextHopId(9)));
        assert_eq!(t.lookup(0x8000_0000), Some(NextHopId(9)));
        assert_eq!(t.remove(Ipv4Prefix::DEFAULT), Some(NextHopId(9)));
        assert_eq!(t.lookup(0x8000_0000), None);
        assert_eq!(t.lookup(1), None);
        assert_eq!(t.lookup(0), Some(NextHopId(2)));
        let all: Vec<_> = t.iter().collect();
        assert_eq!(all, [(p("0.0.0.0/32"), NextHopId(2)), (p("255.255.255.255/32"), NextHopId(1))]);
    }

    #[test]
    fn groups_are_recycled_after_grace_and_exhaustion_is_an_error() {
        let mut t = Lpm::with_config(Config { max_tbl8_groups: 2 }).unwrap();
        t.insert(p("10.0.0.0/25"), NextHopId(1)).unwrap();
        t.insert(p("10.0.1.0/25"), NextHopId(2)).unwrap();
        assert_eq!(t.insert(p("10.0.2.0/25"), NextHopId(3)), Err(Error::Tbl8Exhausted { max_groups: 2 }));
        assert_eq!(t.get(p("10.0.2.0/25")), None);
        assert_eq!(t.lookup(0x0a00_0201), None);
        // A second prefix in an expanded /24 needs no group.
        t.insert(p("10.0.1.128/25"), NextHopId(4)).unwrap();
        t.remove(p("10.0.0.0/25")).unwrap();
        // The retired group is reused for another /24, after a grace period with a live reader.
        let reader = t.reader();
        t.insert(p("10.0.2.0/25"), NextHopId(3)).unwrap();
        assert_eq!(reader.lookup(0x0a00_0201), Some(NextHopId(3)));
        assert_eq!(reader.lookup(0x0a00_0001), None);
        assert_eq!(reader.lookup(0x0a00_0181), Some(NextHopId(4)));
        assert_eq!(t.memory_usage().tbl8_groups_in_use, 2);
        assert_eq!(
            t.insert(p("10.0.0.0/8"), NextHopId(NextHopId::MAX.0 + 1)),
            Err(Error::NextHopOutOfRange { id: NextHopId(1 << 24) })
        );
        assert!(Lpm::with_config(Config { max_tbl8_groups: 0 }).is_err());
        assert!(Lpm::with_config(Config { max_tbl8_groups: (1 << 24) + 1 }).is_err());
    }

    #[test]
    fn batch_agrees_with_single_and_handles_short_output() {
        let mut t = Lpm::new();
        for (i, s) in ["1.0.0.0/8", "1.2.3.0/24", "1.2.3.4/30", "1.2.3.5/32", "8.0.0.0/7"].iter().enumerate() {
            t.insert(p(s), NextHopId(i as u32)).unwrap();
        }
        let addrs: Vec<u32> = (0..100u32).map(|i| 0x0102_0300 + i).chain((0..100).map(|i| i << 24)).collect();
        let mut out = vec![None; addrs.len()];
        assert_eq!(t.lookup_batch(&addrs, &mut out), addrs.len());
        for (a, o) in addrs.iter().zip(&out) {
            assert_eq!(*o, t.lookup(*a), "{a:#x}");
        }
        let mut short = [Some(NextHopId(77)); 3];
        assert_eq!(t.lookup_batch(&addrs[4..], &mut short), 3);
        assert_eq!(short, [Some(NextHopId(2)), Some(NextHopId(3)), Some(NextHopId(2))]);
    }

    #[test]
    fn presence_bits_are_distinct_and_in_range() {
        let mut seen = std::collections::HashSet::new();
        for len in 0..=24u8 {
            let step = if len == 0 { 0 } else { 1u32 << (32 - len) };
            // Every prefix of lengths below 16, and those inside 10.1.0.0/16 and its last /16 above.
            let addrs: Vec<u32> = if len < 16 {
                (0..1u32 << len).map(|i| i.checked_mul(step).unwrap_or(0)).collect()
            } else {
                (0..1u32 << (len - 16)).flat_map(|i| [0x0a01_0000 + i * step, 0xffff_0000 + i * step]).collect()
            };
            for a in addrs {
                let bit = Lpm::present_bit(a, len);
                assert!(bit < ((1 << 16) + (1 << 16) * 512), "{a:#x}/{len}");
                assert!(seen.insert(bit), "{a:#x}/{len}");
                if len >= 16 {
                    assert_eq!((bit - (1 << 16)) / 512, (a >> 16) as usize);
                }
            }
        }
    }

    #[test]
    fn memory_is_reported() {
        let mut t = Lpm::new();
        let m = t.memory_usage();
        assert_eq!((m.tbl24_bytes, m.tbl8_bytes, m.tbl8_groups_in_use), (64 << 20, 0, 0));
        t.insert(p("10.0.0.0/32"), NextHopId(1)).unwrap();
        let m = t.memory_usage();
        assert_eq!((m.tbl8_bytes, m.tbl8_groups_in_use), (64 * 1024, 1));
        assert!(m.control_bytes > 0 && m.total() == m.lookup_bytes() + m.control_bytes);
    }
}
