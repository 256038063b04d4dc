//! The data path allocates nothing once the pool and the batches are made.
//!
//! A global allocator counts the allocations (and frees) of the thread under test; the test warms up, then runs
//! 10,000 batches of 256 packets through the operations an overlay pipeline does (receive, encapsulate with a
//! 50-byte VXLAN outer header, decapsulate, split by port, drop some, return to the pool) and asserts the count did
//! not move.
// A global allocator needs `unsafe impl GlobalAlloc`; the library itself forbids unsafe code, and this test file is
// a crate of its own.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::thread::LocalKey;

use tweed_packet::{Batch, Pool, PoolConfig, PortId};

/// Ethernet, IPv4, UDP and VXLAN headers.
const VXLAN_IPV4_OUTER_LEN: usize = 50;

thread_local! {
    // Const-initialised `Cell`s without destructors: reading them never allocates, so the allocator may use them.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static FREES: Cell<u64> = const { Cell::new(0) };
}

fn note(counter: &'static LocalKey<Cell<u64>>) {
    // `try_with`: the allocator can be called while the thread's locals are being torn down.
    let on = COUNTING.try_with(Cell::get).unwrap_or(false);
    if on {
        let _ = counter.try_with(|c| c.set(c.get() + 1));
    }
}

/// `System`, counting.
struct Counting;

// SAFETY: every method forwards its arguments unchanged to `System`, which implements `GlobalAlloc` correctly;
// counting touches only thread-local `Cell`s and neither allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(&ALLOCS);
        // SAFETY: the caller upholds `alloc`'s contract for `layout`, which is `System.alloc`'s contract too.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(&ALLOCS);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(&FREES);
        // SAFETY: `ptr` was allocated by this allocator, that is by `System`, with `layout`, as the caller promises.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(&ALLOCS);
        // SAFETY: `ptr` was allocated by `System` with `layout`, and `new_size` is valid, as the caller promises.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f`, returning its result and the allocations and frees it made on this thread.
fn counted<R>(f: impl FnOnce() -> R) -> (R, u64, u64) {
    let before = (ALLOCS.with(Cell::get), FREES.with(Cell::get));
    COUNTING.with(|c| c.set(true));
    let result = f();
    COUNTING.with(|c| c.set(false));
    (result, ALLOCS.with(Cell::get) - before.0, FREES.with(Cell::get) - before.1)
}

#[test]
fn the_counter_counts() {
    // Without this, a broken counter would make the real test pass.
    let (v, allocs, _) = counted(|| std::hint::black_box(Vec::<u8>::with_capacity(64)));
    assert_eq!(allocs, 1);
    let ((), _, frees) = counted(|| drop(v));
    assert_eq!(frees, 1);
    let (mut v, _, _) = counted(|| vec![0u8; 1]);
    let ((), allocs, _) = counted(|| v.extend_from_slice(&[0; 4096]));
    assert_eq!(allocs, 1, "a realloc counts");
}

/// The outer headers of a flannel VXLAN packet: Ethernet, IPv4 10.0.0.1 > 10.0.0.2, UDP to 8472, VXLAN VNI 1.
static OUTER: [u8; VXLAN_IPV4_OUTER_LEN] = [
    0x02, 0x42, 0x0a, 0x00, 0x00, 0x02, 0x02, 0x42, 0x0a, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45, 0x00, 0x00, 0x52, 0x00,
    0x00, 0x40, 0x00, 0x40, 0x11, 0x26, 0x88, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0xc3, 0x50, 0x21, 0x18,
    0x00, 0x3e, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
];

const BATCH: usize = 256;

struct World {
    pool: Pool,
    rx: Batch,
    port1: Batch,
    inner: [u8; 98],
}

/// One batch through a pipeline's buffer operations. Returns a checksum of what it saw, so that nothing is
/// optimised away and the test can check the work was done.
fn one_batch(w: &mut World, round: u64) -> u64 {
    assert_eq!(w.pool.get_batch(&mut w.rx, BATCH), BATCH);
    let mut sum = 0u64;
    for (i, pkt) in w.rx.iter_mut().enumerate() {
        // Receive.
        let n = w.inner.len() - (i % 8);
        pkt.recv_area_mut()[..n].copy_from_slice(&w.inner[..n]);
        pkt.commit_recv(n).unwrap();
        let meta = pkt.meta_mut();
        // The packet's index in the batch, and the round, in one word.
        meta.timestamp = round << 32 | u64::try_from(i).unwrap();
        meta.ingress = PortId(u16::try_from(i % 2).unwrap());
        // Encapsulate, then decapsulate.
        pkt.prepend_from_slice(&OUTER).unwrap();
        assert_eq!(pkt.len(), 50 + n);
        assert_eq!(pkt.pull_front(VXLAN_IPV4_OUTER_LEN).unwrap(), &OUTER);
        // A VLAN tag in and out, a trailer on and off.
        pkt.push_front(4).unwrap().copy_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        pkt.pull_front(4).unwrap();
        pkt.push_back(4).unwrap().fill(0);
        pkt.pull_back(4).unwrap();
        sum += u64::from(pkt.data()[n - 1]) + pkt.len() as u64;
    }
    // Split by egress port, drop a few, and return everything.
    let moved = w.rx.partition_into(&mut w.port1, |pkt| pkt.meta().ingress == PortId(1));
    assert_eq!(moved, BATCH / 2);
    w.rx.retain_or_put(&mut w.pool, |pkt| (pkt.meta().timestamp & 0xffff_ffff) % 8 != 0);
    assert_eq!(w.rx.len(), BATCH / 2 - BATCH / 8);
    let taken = w.port1.swap_remove(0).unwrap();
    w.pool.put(taken);
    w.port1.clear_into(&mut w.pool);
    w.pool.put_batch(&mut w.rx);
    // With every buffer out, the pool says so (and counts it); it does not make another.
    assert_eq!(w.pool.get_batch(&mut w.rx, BATCH), BATCH);
    assert!(w.pool.get().is_none());
    w.rx.clear_into(&mut w.pool);
    sum
}

#[test]
fn data_path_allocates_nothing_after_warm_up() {
    let mut inner = [0u8; 98];
    for (i, b) in inner.iter_mut().enumerate() {
        *b = u8::try_from(i).unwrap();
    }
    let mut w = World {
        pool: Pool::new(PoolConfig { buffers: BATCH, ..PoolConfig::default() }).unwrap(),
        rx: Batch::new(BATCH),
        port1: Batch::new(BATCH),
        inner,
    };
    for round in 0..10 {
        one_batch(&mut w, round);
    }

    let rounds = 10_000;
    let (sum, allocs, frees) = counted(|| (10..10 + rounds).map(|round| one_batch(&mut w, round)).sum::<u64>());
    assert_eq!(allocs, 0, "allocations on the data path");
    assert_eq!(frees, 0, "frees on the data path");

    // The work was done: per batch, 32 packets of each length 91..=98, each adding its last byte and its length.
    let per_batch: u64 = (91..=98u64).map(|n| 32 * ((n - 1) + n)).sum();
    assert_eq!(sum, rounds * per_batch);
    let stats = w.pool.stats();
    assert_eq!(stats.gets, stats.puts);
    assert_eq!(stats.gets, (rounds + 10) * 2 * BATCH as u64);
    assert_eq!(stats.exhausted, rounds + 10);
    assert_eq!(stats.refused, 0);
    assert_eq!(w.pool.available(), BATCH);
}
