//! A round allocates nothing: after warm-up, pings from a pod of one worker to a pod of a driver's worker over
//! MemPorts (encapsulation, the underlay, decapsulation, the driver's wait included) make no heap allocation,
//! counted by a global allocator on the measuring thread only.
#![cfg(target_os = "linux")]

mod mem;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mem::{SOCKET_PORT, carry, ping_frame, resolve, underlay_addr, worker};
use tweed_io::{Driver, MemPort, Worker};
use tweed_overlay::{Flannel, Instant};
use tweed_packet::PortId;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on the measuring thread only: other tests run (and allocate) on other threads meanwhile.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTING.with(Cell::get) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn rounds_allocate_nothing() {
    let (mut a, mut b) = (worker(1), worker(2));
    resolve(&mut a, &mut b);
    let mut b = Driver::from_worker(b).unwrap();
    let gw = a.node().config().gateway_mac();
    let frames: Vec<Vec<u8>> = (0..64).map(|seq| ping_frame(gw, 1, 2, seq)).collect();
    let mut delivered = 0u64;
    let mut step = |a: &mut Worker<Flannel, MemPort>, b: &mut Driver<Flannel, MemPort>, t: u64| {
        for f in &frames {
            a.port_mut(PortId(1)).unwrap().inject(f, None);
        }
        a.round(Instant::from_millis(t));
        carry(a.port_mut(SOCKET_PORT).unwrap(), underlay_addr(1), b.worker_mut().port_mut(SOCKET_PORT).unwrap());
        b.round(Some(Duration::ZERO)).unwrap();
        b.worker_mut().port_mut(PortId(1)).unwrap().drain_sent(|_, _| delivered += 1);
    };
    for t in 0..20 {
        step(&mut a, &mut b, 2000 + t);
    }
    COUNTING.with(|c| c.set(true));
    for t in 0..200 {
        step(&mut a, &mut b, 2100 + t);
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(ALLOCS.load(Ordering::Relaxed), 0, "allocations in 200 steady rounds");
    assert_eq!(delivered, 220 * 64);
    assert_eq!(b.node().counters().total_drops(), 0);
}
