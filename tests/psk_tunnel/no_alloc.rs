//! The encapsulation allocates nothing per packet: after a warm-up, rounds of packets sealed by one node and
//! opened by the other, each node a `tweed::io::Worker` over in-memory ports (the TUN's, the socket's), make no
//! heap allocation on the thread that runs them (counted by a global allocator that forwards to the system's).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use tweed::io::{DriverConfig, Medium, MemPort, Worker};
use tweed::overlay::Instant;

use crate::encap::{Psk, SOCKET, TUN};
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

/// Site `i`'s node in a worker, its TUN and socket MemPorts.
fn worker(i: u8) -> Worker<Psk, MemPort> {
    let mut w = Worker::new(node(i, crate::node::KEY), DriverConfig::default().buffers(4 * BURST)).unwrap();
    w.add_port(TUN, MemPort::new("tun", Medium::Ip)).unwrap();
    w.add_port(SOCKET, MemPort::new("udp", Medium::Datagram)).unwrap();
    w
}

#[test]
fn sealing_and_opening_allocate_nothing_in_steady_state() {
    let (mut a, mut b) = (worker(1), worker(2));
    let packet = echo(host(1, 1), host(2, 1));
    let from = (underlay(1), 51820).into();
    let mut round = |counting: bool, t: u64| {
        COUNTING.with(|c| c.set(counting));
        for _ in 0..BURST {
            assert!(a.port_mut(TUN).unwrap().inject(&packet, None));
        }
        a.round(Instant::from_millis(t));
        let (sent, to) = (a.port_mut(SOCKET).unwrap(), b.port_mut(SOCKET).unwrap());
        sent.drain_sent(|sealed, _| assert!(to.inject(sealed, Some(from))));
        b.round(Instant::from_millis(t));
        let mut delivered = 0;
        b.port_mut(TUN).unwrap().drain_sent(|_, _| delivered += 1);
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
    assert_eq!(b.node().counters().total_drops(), 0);
}
