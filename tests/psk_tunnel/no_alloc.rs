//! The encapsulation allocates nothing per packet: after a warm-up, rounds of packets sealed by one node and
//! opened by the other make no heap allocation on the thread that runs them (counted by a global allocator that
//! forwards to the system's).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use tweed::overlay::{Instant, Outputs, Verdict};
use tweed::packet::{Batch, Pool, PoolConfig};

use crate::encap::{SOCKET, TUN};
use crate::node::{echo, host, node, underlay};

/// Allocations made on a thread while its `COUNTING` is set.
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on the measured thread only: the other tests allocate on theirs meanwhile.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

struct Counting;

fn counted() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call goes to the system allocator as it came; the wrapper only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        counted();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const BURST: usize = 64;
const ROUNDS: u64 = 100;

#[test]
fn sealing_and_opening_allocate_nothing_in_steady_state() {
    let (mut a, mut b) = (node(1, crate::node::KEY), node(2, crate::node::KEY));
    let mut pool = Pool::new(PoolConfig { buffers: 4 * BURST, ..PoolConfig::default() }).unwrap();
    let (mut input, mut out_a, mut out_b) = (Batch::new(BURST), Outputs::new(2 * BURST), Outputs::new(2 * BURST));
    let packet = echo(host(1, 1), host(2, 1));
    let mut round = |counting: bool, t: u64| {
        COUNTING.with(|c| c.set(counting));
        for _ in 0..BURST {
            let mut buf = pool.get().expect("a buffer");
            buf.extend_from_slice(&packet).expect("room");
            buf.meta_mut().ingress = TUN;
            input.push(buf).expect("room in the batch");
        }
        a.process(Instant::from_millis(t), &mut pool, &mut input, &mut out_a);
        for (sealed, verdict) in out_a.as_slice() {
            let Verdict::Underlay { payload_offset, .. } = *verdict else { continue };
            let mut buf = pool.get().expect("a buffer");
            buf.extend_from_slice(&sealed.data()[usize::from(payload_offset)..]).expect("room");
            buf.meta_mut().ingress = SOCKET;
            buf.meta_mut().set_remote((underlay(1), 51820).into());
            input.push(buf).expect("room in the batch");
        }
        out_a.recycle(&mut pool);
        b.process(Instant::from_millis(t), &mut pool, &mut input, &mut out_b);
        let delivered = out_b.as_slice().iter().filter(|(_, v)| *v == Verdict::Port(TUN)).count();
        out_b.recycle(&mut pool);
        COUNTING.with(|c| c.set(false));
        delivered
    };
    for t in 0..2 {
        assert_eq!(round(false, t), BURST);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let delivered: usize = (0..ROUNDS).map(|t| round(true, 2 + t)).sum();
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed) - before, 0, "allocations in {ROUNDS} rounds");
    assert_eq!(delivered as u64, ROUNDS * BURST as u64);
    assert_eq!(b.counters().total_drops(), 0);
}
