//! Scaling over threads: one `Control`, N workers (`tweed::io::Worker` over in-memory ports), each on its own
//! thread with its own pool and its own pre-built input, a mix of vxlan encapsulation (a pod to 10,000 peers, one
//! flow per frame) and decapsulation (the other node to the pod). Each round measures 1 thread, then N, for the
//! same time, and prints packets per second and their ratio: with no cache line written by two workers on the data
//! path, N threads on N idle cores do N times the packets of one.
//!
//! On a machine shared with other work the wall-clock ratio says little; each thread's packets per CPU second
//! (its CPU time from `/proc/thread-self/schedstat`) say what N threads do with a core each, and the `cores` column
//! says how many cores the N threads had at once on average: the per-CPU ratio shows sharing costs only when that
//! is near N (threads that take turns on one core bounce no cache line). `WORKERS_SHARED_LINE=1` is the control
//! experiment: every thread also counts its packets in one shared atomic, the false sharing the data path must not
//! have.
//!
//! Run: `cargo bench --bench workers`; `WORKERS_SECS` per measurement (default 1), `WORKERS_ROUNDS` (default 5),
//! `WORKERS_THREADS` (N, default 2).
#![allow(missing_docs)]

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant as Clock};

use common::{arp_from_pod, node_builder, peer_subnet, pod_frame};
use tweed::io::{DriverConfig, Medium, MemPort, Worker};
use tweed::overlay::{Control, Instant, Node, Outputs, Verdict};
use tweed::packet::{Batch, Pool, PoolConfig, PortId};

const PEERS: u32 = 10_000;
const POD: PortId = PortId(1);
const UNDERLAY: PortId = PortId(0);
/// Frames of each kind injected per round (the worker reads at most 64 per port per round).
const PER_ROUND: usize = 32;

/// What node 2 sends node 1 for its pod's traffic to node 1's pod: `n` whole vxlan frames, one flow each.
fn decap_frames(n: usize) -> Vec<Vec<u8>> {
    let mut node2: Node = node_builder(2, 0).build().unwrap();
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let (mut batch, mut out) = (Batch::new(256), Outputs::new(1024));
    let mut frames = vec![arp_from_pod(2)];
    frames.extend((0..n).map(|i| pod_frame(2, Ipv4Addr::new(10, 244, 1, 2), 64, 1000 + i as u16)));
    let mut got = Vec::new();
    for f in frames {
        let mut buf = pool.get().unwrap();
        buf.extend_from_slice(&f).unwrap();
        buf.meta_mut().ingress = POD;
        batch.push(buf).unwrap();
        node2.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
        for (b, v) in out.drain() {
            if matches!(v, Verdict::Underlay { .. }) {
                got.push(b.data().to_vec());
            }
            pool.put(b);
        }
    }
    assert_eq!(got.len(), n);
    got
}

/// A worker with its ports and its input, made on the thread that runs it (its allocations come from that
/// thread's heap arena, apart from the other workers'), aligned so that no two lanes share a cache line.
#[repr(align(128))]
struct Lane {
    worker: Worker<tweed::overlay::encap::Flannel, MemPort>,
    encap: Vec<Vec<u8>>,
    decap: Vec<Vec<u8>>,
    /// The control experiment (`WORKERS_SHARED_LINE=1`): every thread counts its packets in one shared atomic as
    /// well, the false sharing the data path must not have, to show what it would cost here.
    shared_line: bool,
}

static SHARED_LINE: AtomicU64 = AtomicU64::new(0);

/// A lane's thread as the main thread sees it: what it asks, and what comes back (packets, CPU ns).
type LaneHandle = (Sender<Cmd>, Receiver<(u64, u64)>);

/// What the main thread asks of a lane's thread.
enum Cmd {
    /// One round at time 1 ns (the pod's ARP first, for lane 0), then 20 ms of traffic, checked.
    Setup { arp: bool, epoch: Clock },
    /// Rounds until then.
    Run { epoch: Clock, until: Clock },
}

/// A lane's thread: builds its lane, then does what it is asked; answers (packets, CPU ns).
fn lane_thread(
    control: &Control,
    encap: &[Vec<u8>],
    decap: &[Vec<u8>],
    cmds: &Receiver<Cmd>,
    done: &Sender<(u64, u64)>,
) {
    let mut worker = Worker::new(control.worker(), DriverConfig::default().buffers(4096)).unwrap();
    worker.add_port(POD, MemPort::new("pod1", Medium::Ethernet)).unwrap();
    worker.add_port(UNDERLAY, MemPort::new("underlay", Medium::Ethernet)).unwrap();
    let shared_line = env("WORKERS_SHARED_LINE", 0.0) != 0.0;
    let mut lane = Box::new(Lane { worker, encap: encap.to_vec(), decap: decap.to_vec(), shared_line });
    let _ = done.send((0, 0));
    while let Ok(cmd) = cmds.recv() {
        match cmd {
            Cmd::Setup { arp, epoch } => {
                if arp {
                    lane.worker.port_mut(POD).unwrap().inject(&arp_from_pod(1), None);
                }
                lane.worker.round(Instant::from_nanos(1));
                lane.worker.port_mut(POD).unwrap().drain_sent(|_, _| {});
                // Every frame does what it should: encapsulated to its peer, decapsulated to the pod; the pod
                // was learnt here, or told by lane 0.
                lane.run(epoch, Clock::now() + Duration::from_millis(20));
                let c = lane.worker.node().counters();
                assert_eq!(c.total_drops(), 0, "{:?}", c.nonzero_drops().collect::<Vec<_>>());
                assert!(c.to_peer > 0 && c.to_pod > 0 && c.to_peer.abs_diff(c.to_pod) <= PER_ROUND as u64, "{c:?}");
                assert_eq!(c.learn_received, u64::from(!arp));
                let _ = done.send((0, 0));
            }
            Cmd::Run { epoch, until } => {
                let cpu = cpu_ns();
                let packets = lane.run(epoch, until);
                let _ = done.send((packets, cpu_ns() - cpu));
            }
        }
    }
    let c = lane.worker.node().counters();
    assert_eq!(c.total_drops(), 0, "{:?}", c.nonzero_drops().collect::<Vec<_>>());
}

impl Lane {
    /// Runs rounds until `until`, time from `epoch`; returns the packets output.
    fn run(&mut self, epoch: Clock, until: Clock) -> u64 {
        let mut packets = 0u64;
        let mut k = 0;
        loop {
            let now = Clock::now();
            if now >= until {
                return packets;
            }
            for _ in 0..PER_ROUND {
                let i = k % self.encap.len();
                k += 1;
                self.worker.port_mut(POD).unwrap().inject(&self.encap[i], None);
                self.worker.port_mut(UNDERLAY).unwrap().inject(&self.decap[i % self.decap.len()], None);
            }
            let at = Instant::from_nanos(u64::try_from(now.duration_since(epoch).as_nanos()).unwrap_or(u64::MAX));
            self.worker.round(at);
            let shared = self.shared_line;
            for port in [POD, UNDERLAY] {
                self.worker.port_mut(port).unwrap().drain_sent(|_, _| {
                    packets += 1;
                    if shared {
                        SHARED_LINE.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        }
    }
}

/// The CPU time this thread has had (ns), from the scheduler's statistics: on a machine shared with other
/// work, a thread's packets per CPU second say what it does when it runs, whatever the others take.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// What `threads` lanes did in `secs`: packets per second of wall time in all, packets per CPU second of the
/// threads (their sum over their CPU time: 1 thread's rate when nothing is shared between them), and the cores
/// they had on average (their CPU time over the wall time: the per-CPU rate says something about sharing only
/// when the threads did run at the same time, near N for N threads).
fn measure(lanes: &[LaneHandle], threads: usize, epoch: Clock, secs: f64) -> (f64, f64, f64) {
    let start = Clock::now();
    let until = start + Duration::from_secs_f64(secs);
    for (cmds, _) in &lanes[..threads] {
        cmds.send(Cmd::Run { epoch, until }).unwrap();
    }
    let (packets, cpu) =
        lanes[..threads].iter().map(|(_, done)| done.recv().unwrap()).fold((0, 0), |(p, c), (p1, c1)| (p + p1, c + c1));
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu.max(1) as f64 / 1e9;
    (packets as f64 / wall, packets as f64 / cpu, cpu / wall)
}

fn env(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it as a quick check.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (secs, rounds) =
        if quick { (0.05, 1) } else { (env("WORKERS_SECS", 1.0), env("WORKERS_ROUNDS", 5.0) as usize) };

    let mut control = Control::new(node_builder(1, PEERS).into_config()).unwrap();
    control.publish();
    let decap = decap_frames(256);
    let encap: Vec<Vec<u8>> = (0..256u32)
        .map(|i| {
            let k = (i * 7919) % PEERS;
            pod_frame(1, Ipv4Addr::from(u32::from(peer_subnet(k).network()) + 2), 64, 1000 + i as u16)
        })
        .collect();
    let epoch = Clock::now();
    let threads = (env("WORKERS_THREADS", 2.0) as usize).max(2);
    std::thread::scope(|scope| {
        let lanes: Vec<_> = (0..threads)
            .map(|_| {
                let (cmd_tx, cmd_rx) = channel();
                let (done_tx, done_rx) = channel();
                let (control, encap, decap) = (&control, &encap, &decap);
                scope.spawn(move || lane_thread(control, encap, decap, &cmd_rx, &done_tx));
                done_rx.recv().unwrap();
                (cmd_tx, done_rx)
            })
            .collect();
        // The pod announces itself to lane 0 only: the others learn it from lane 0 (at their first round).
        for (i, (cmds, done)) in lanes.iter().enumerate() {
            cmds.send(Cmd::Setup { arp: i == 0, epoch }).unwrap();
            done.recv().unwrap();
        }
        report(&lanes, threads, epoch, secs, rounds);
    });
}

fn report(lanes: &[LaneHandle], threads: usize, epoch: Clock, secs: f64, rounds: usize) {
    println!("workers: {PEERS} peers, {PER_ROUND} encap + {PER_ROUND} decap frames (64 B) per round, {secs} s each");
    println!(
        "{:<6}{:>14}{:>14}{:>7}{:>15}{:>15}{:>7}{:>7}",
        "round",
        "1 thread pps",
        format!("{threads} threads pps"),
        "ratio",
        "1: pps/cpu-s",
        format!("{threads}: pps/cpu-s"),
        "ratio",
        "cores"
    );
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let (one, one_cpu, _) = measure(lanes, 1, epoch, secs);
        let (two, two_cpu, cores) = measure(lanes, threads, epoch, secs);
        wall.push(two / one);
        // Threads that share nothing each do at their CPU rate what one does: N × the rate per CPU second.
        cpu.push(threads as f64 * two_cpu / one_cpu);
        println!(
            "{r:<6}{one:>14.0}{two:>14.0}{:>7.2}{one_cpu:>15.0}{two_cpu:>15.0}{:>7.2}{cores:>7.2}",
            wall[r], cpu[r]
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median {threads}/1 threads: {:.2} (wall clock), {:.2} (per CPU second: the scaling with a core each)",
        median(&mut wall),
        median(&mut cpu)
    );
}
