//! Steady state allocates nothing: after warm-up, pod → underlay encapsulation on one node and underlay → pod
//! decapsulation on the other, 200 rounds of 256 frames each way, make no heap allocation (counted by a global
//! allocator), for each backend.
//!
//! When the count is not zero, set `TWEED_ALLOC_TRACE=1` to print a backtrace of the first allocations.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{arp_frame, eth, node, pod_ip, pod_mac, udp_datagram};
use tweed_overlay::{Node, Outputs, Verdict};
use tweed_packet::{Batch, Pool, PoolConfig, PortId};
use tweed_switch::Instant;
use tweed_wire::ethernet::MacAddr;
use tweed_wire::{arp, ipv4};

struct Counting;

/// Allocations (and reallocations) made on threads whose [`COUNTING`] is set.
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static TRACE: AtomicBool = AtomicBool::new(false);
static TRACED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on the thread being measured only: the other tests run (and allocate) on other threads meanwhile.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Set while a backtrace is being captured, so that its own allocations are not traced.
    static IN_TRACE: Cell<bool> = const { Cell::new(false) };
}

fn count(layout: Layout) {
    if !COUNTING.with(Cell::get) {
        return;
    }
    ALLOCS.fetch_add(1, Ordering::Relaxed);
    if !TRACE.load(Ordering::Relaxed) || IN_TRACE.with(|c| c.replace(true)) {
        return;
    }
    if TRACED.fetch_add(1, Ordering::Relaxed) < 8 {
        let bt = std::backtrace::Backtrace::force_capture();
        let _ = writeln!(std::io::stderr(), "allocation of {} bytes (align {}):\n{bt}", layout.size(), layout.align());
    }
    IN_TRACE.with(|c| c.set(false));
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        count(layout);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const POD: PortId = PortId(1);
const UNDERLAY: PortId = PortId(0);
const FRAMES: u16 = 256;
const ROUNDS: usize = 200;

/// Pod 1 of node `i` to pod 1 of the other node, through the gateway: a 64-byte UDP frame.
fn pod_frame(i: u8, sport: u16) -> Vec<u8> {
    let j = 3 - i;
    let mut f = eth(pod_mac(i, 0), pod_mac(i, 1), 0x0800);
    let udp = udp_datagram(pod_ip(i, 1), pod_ip(j, 1), sport, 9, &[0; 22]);
    f.extend_from_slice(&common::ipv4_packet(pod_ip(i, 1), pod_ip(j, 1), ipv4::Protocol::UDP, 64, false, &udp));
    assert_eq!(f.len(), 64);
    f
}

/// Pod 1 of node `i` asks for its gateway: the bridge learns the pod's MAC and address from it.
fn arp_request(i: u8) -> Vec<u8> {
    let repr = arp::Repr::request(pod_mac(i, 1), pod_ip(i, 1), pod_ip(i, 0));
    arp_frame(MacAddr::BROADCAST, &repr)
}

struct Rig {
    nodes: [Node; 2],
    pool: Pool,
    batch: Batch,
    wire: Batch,
    out: Outputs,
    frames: [Vec<Vec<u8>>; 2],
}

impl Rig {
    fn new(kind: &str) -> Self {
        Self {
            nodes: [node(kind, 1, 2), node(kind, 2, 2)],
            pool: Pool::new(PoolConfig { buffers: 1024, ..PoolConfig::default() }).unwrap(),
            batch: Batch::new(usize::from(FRAMES)),
            wire: Batch::new(usize::from(FRAMES)),
            out: Outputs::new(1024),
            frames: [1, 2].map(|i| (0..FRAMES).map(|k| pod_frame(i, 1000 + k)).collect()),
        }
    }

    /// Each pod announces itself; returns the ARP replies the pods got.
    fn announce(&mut self) -> usize {
        let mut replies = 0;
        for i in 0..2 {
            let mut b = self.pool.get().unwrap();
            b.extend_from_slice(&arp_request(i as u8 + 1)).unwrap();
            b.meta_mut().ingress = POD;
            self.batch.push(b).unwrap();
            self.nodes[i].process(Instant::from_secs(1), &mut self.pool, &mut self.batch, &mut self.out);
            for (b, v) in self.out.drain() {
                replies += usize::from(v == Verdict::Port(POD));
                self.pool.put(b);
            }
        }
        replies
    }

    /// One batch each way; returns how many frames reached the other node's pod.
    fn round(&mut self) -> usize {
        let mut delivered = 0;
        for i in 0..2 {
            for f in &self.frames[i] {
                let mut b = self.pool.get().unwrap();
                b.extend_from_slice(f).unwrap();
                b.meta_mut().ingress = POD;
                self.batch.push(b).unwrap();
            }
            self.nodes[i].process(Instant::from_secs(1), &mut self.pool, &mut self.batch, &mut self.out);
            // Encapsulated frames cross the wire to the other node, in the same buffers.
            for (mut b, v) in self.out.drain() {
                if matches!(v, Verdict::Underlay { .. }) {
                    b.meta_mut().ingress = UNDERLAY;
                    if let Err(b) = self.wire.push(b) {
                        self.pool.put(b);
                    }
                } else {
                    self.pool.put(b);
                }
            }
            self.nodes[1 - i].process(Instant::from_secs(1), &mut self.pool, &mut self.wire, &mut self.out);
            for (b, v) in self.out.drain() {
                delivered += usize::from(v == Verdict::Port(POD));
                self.pool.put(b);
            }
        }
        delivered
    }
}

/// Counts the allocations `f` makes on this thread (one test at a time holds the counter).
fn allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    TRACE.store(std::env::var_os("TWEED_ALLOC_TRACE").is_some(), Ordering::Relaxed);
    let before = ALLOCS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCS.load(Ordering::Relaxed) - before)
}

fn steady_state_allocates_nothing(kind: &str) {
    let mut rig = Rig::new(kind);
    // Warm-up: both pods announce themselves before any traffic (else the first frames wait in the bounded ARP
    // queue, and the ones past its limit are dropped), then one round fills whatever fills on first use.
    assert_eq!(rig.announce(), 2);
    assert_eq!(rig.round(), 2 * usize::from(FRAMES));

    let (delivered, allocs) = allocations(|| (0..ROUNDS).map(|_| rig.round()).sum::<usize>());
    assert_eq!(delivered, ROUNDS * 2 * usize::from(FRAMES));
    assert_eq!(allocs, 0, "{kind}: {allocs} allocations in {} process calls", ROUNDS * 4);
    for n in &rig.nodes {
        assert_eq!(n.counters().nonzero_drops().collect::<Vec<_>>(), []);
    }
    // Every buffer came back.
    assert_eq!(rig.pool.available(), 1024);
}

#[test]
fn test_vxlan_steady_state_allocates_nothing() {
    steady_state_allocates_nothing("vxlan");
}

#[test]
fn test_udp_steady_state_allocates_nothing() {
    steady_state_allocates_nothing("udp");
}

#[test]
fn test_host_gw_steady_state_allocates_nothing() {
    steady_state_allocates_nothing("host-gw");
}

/// The counter sees an allocation made inside the counted section: the tests above can fail.
#[test]
fn test_counter_counts() {
    let (v, allocs) = allocations(|| std::hint::black_box(vec![0u8; 100]));
    assert_eq!(v.len(), 100);
    assert!(allocs >= 1);
}

/// The defences allocate nothing either: packets to absent local addresses (ARP resolution, failures, the queue),
/// TTL 1 (ICMP errors through the per-source limits), spoofed sources, and packets without DF too big for vxlan
/// (fragments in pool buffers), with time moving over many ARP retry and failure periods.
#[test]
fn test_hostile_traffic_allocates_nothing() {
    let mut n = node("vxlan", 1, 2);
    let mut pool = Pool::new(PoolConfig { buffers: 512, capacity: 128 + 9018, ..PoolConfig::default() }).unwrap();
    let mut batch = Batch::new(64);
    let mut out = Outputs::new(256);
    let gw = n.config().gateway_mac();
    let ip_frame = |src: std::net::Ipv4Addr, dst: std::net::Ipv4Addr, ttl: u8, len: usize| {
        let mut f = eth(gw, pod_mac(1, 1), 0x0800);
        let udp = udp_datagram(src, dst, 5000, 9, &vec![0; len]);
        f.extend_from_slice(&common::ipv4_packet(src, dst, ipv4::Protocol::UDP, ttl, false, &udp));
        f
    };
    let mut frames = vec![arp_request(1)];
    for k in 0..8u8 {
        frames.push(ip_frame(pod_ip(1, 1), std::net::Ipv4Addr::new(10, 244, 1, 100 + k), 64, 8));
        frames.push(ip_frame(pod_ip(1, 1), pod_ip(2, 1), 1, 8));
        frames.push(ip_frame(pod_ip(2, 9), pod_ip(2, 1), 64, 8));
        frames.push(ip_frame(pod_ip(1, 1), pod_ip(2, 1), 64, 3000));
    }
    let mut now = Instant::from_secs(1);
    let round = |n: &mut Node, now: Instant, pool: &mut Pool, batch: &mut Batch, out: &mut Outputs| {
        for f in &frames {
            let mut b = pool.get().unwrap();
            b.extend_from_slice(f).unwrap();
            b.meta_mut().ingress = POD;
            batch.push(b).unwrap();
        }
        while !batch.is_empty() {
            n.process(now, pool, batch, out);
            out.recycle(pool);
        }
    };
    round(&mut n, now, &mut pool, &mut batch, &mut out);
    let ((), allocs) = allocations(|| {
        for _ in 0..ROUNDS {
            now = now + std::time::Duration::from_millis(250);
            round(&mut n, now, &mut pool, &mut batch, &mut out);
            // With no input: the ARP timers alone.
            n.process(now, &mut pool, &mut batch, &mut out);
            out.recycle(&mut pool);
        }
    });
    assert_eq!(allocs, 0, "{allocs} allocations");
    let c = n.counters();
    assert!(c.fragmented >= ROUNDS as u64 && c.icmp_errors > 0 && c.arp_failed > 0, "{c:?}");
    assert!(c.drop_count(tweed_overlay::DropReason::PodSourceSpoofed) >= ROUNDS as u64);
    assert_eq!(pool.available() + n.arp_pending(), 512);
}

/// Workers of one control telling each other what they learn allocate nothing either: every round, worker a sees
/// four pods announce themselves with a MAC that changes (new bindings to tell), worker b takes and applies them,
/// and time moves by 100 ms (the refresh of what a told).
#[test]
fn test_learning_shared_between_workers_allocates_nothing() {
    let config = tweed_overlay::NodeBuilder::new(common::subnet(1), common::node_ip(1), common::node_mac(1))
        .pod_ports(1..=4)
        .port_security(true)
        .into_config();
    let control = tweed_overlay::Control::new(config).unwrap();
    let (mut a, mut b) = (control.worker(), control.worker());
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let (mut batch, mut out) = (Batch::new(8), Outputs::new(64));
    let frames: Vec<Vec<Vec<u8>>> = (0..2u8)
        .map(|v| {
            (1..=4u8)
                .map(|p| {
                    let mac = MacAddr::new(0x0a, 0x58, 0, v, 0, p);
                    arp_frame(MacAddr::BROADCAST, &arp::Repr::request(mac, pod_ip(1, p), pod_ip(1, 0)))
                })
                .collect()
        })
        .collect();
    let mut round = |r: usize| {
        let now = Instant::from_millis(1000 + 100 * r as u64);
        for (p, f) in frames[r % 2].iter().enumerate() {
            let mut buf = pool.get().unwrap();
            buf.extend_from_slice(f).unwrap();
            buf.meta_mut().ingress = PortId(p as u16 + 1);
            batch.push(buf).unwrap();
        }
        a.process(now, &mut pool, &mut batch, &mut out);
        out.recycle(&mut pool);
        b.process(now, &mut pool, &mut batch, &mut out);
        out.recycle(&mut pool);
    };
    round(0);
    round(1);
    let ((), allocs) = allocations(|| (2..2 + ROUNDS).for_each(&mut round));
    assert_eq!(allocs, 0, "{allocs} allocations");
    assert_eq!(
        (a.counters().learn_sent, b.counters().learn_received),
        (4 * (ROUNDS as u64 + 2), 4 * (ROUNDS as u64 + 2))
    );
    assert_eq!(
        b.bridge().arp().lookup(tweed_switch::BridgeDomain(0), pod_ip(1, 1)),
        Some(MacAddr::new(0x0a, 0x58, 0, 1, 0, 1))
    );
}
