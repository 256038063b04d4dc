//! Instruction counts of the hot paths (Linux: the TAP offload paths are tweed-io's), under valgrind (gungraun): deterministic where wall-clock ratios on a shared
//! 2-core VM are not (the same build timed against itself varies 0.8–1.4×). Each benchmark runs its function once on
//! state built by a setup function that is not counted, and handles a known number of packets or operations, so
//! `benches/icount/check` can turn the count into instructions per packet and compare it with the committed baseline
//! `benches/icount/baseline.txt`. Criterion benches (`wire`, `switch`, `route`, tweed-overlay's `pipeline`) stay for
//! ratios against peers in one process.
//!
//! Run: `benches/icount/check` (needs valgrind and `cargo install gungraun-runner --version 0.20.0`), or
//! `cargo bench --bench icount` for gungraun's own report.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;
use std::net::Ipv4Addr;

use common::{SplitMix64, arp_from_pod, capture_frames, node_builder, peer_subnet, pod_frame, pod_mac};
use gungraun::{Callgrind, LibraryBenchmarkConfig, OutputFormat, library_benchmark, library_benchmark_group, main};
use tweed::io::offload::{
    COALESCE_ROOM, HEAD_ROOM, VNET_HDR_LEN, coalesce, coalesced_head, cut_offloaded, segment_offloaded, train_len,
};
use tweed::overlay::{Instant, Node, Outputs, Verdict};
use tweed::packet::{Batch, Pool, PoolConfig, PortId};
use tweed::route::{Lpm, NextHopId, synth};
use tweed::switch::{BridgeDomain, Fdb, FdbConfig};
use tweed::wire::dissect::dissect;
use tweed::wire::ethernet::{self, MacAddr};
use tweed::wire::{checksum, ipv4, udp};

/// Packets (or operations) per benchmark: the divisor of its instruction count.
const BATCH: usize = 32;
const FDB_OPS: usize = 1024;
const LPM_ADDRS: usize = 1024;

// ---- wire: the whole VXLAN frame dissected, and a pod's Ethernet/IPv4/UDP headers parsed ----

fn vxlan_frames() -> Vec<&'static [u8]> {
    let frames: Vec<_> = capture_frames().into_iter().filter(|f| dissect(f).is_complete()).collect();
    assert!(!frames.is_empty(), "the capture has whole VXLAN frames");
    frames.iter().copied().cycle().take(BATCH).collect()
}

#[library_benchmark]
#[bench::frames32(setup = vxlan_frames)]
fn wire_dissect_vxlan(frames: Vec<&'static [u8]>) -> usize {
    let mut depth = 0;
    for f in &frames {
        depth += usize::from(black_box(dissect(black_box(f))).is_complete());
    }
    depth
}

fn pod_frames() -> Vec<Vec<u8>> {
    (0..BATCH).map(|i| pod_frame(1, Ipv4Addr::new(10, 244, 2, 3), 64, 1000 + i as u16)).collect()
}

#[library_benchmark]
#[bench::frames32(setup = pod_frames)]
fn wire_parse_eth_ipv4_udp(frames: Vec<Vec<u8>>) -> u64 {
    let mut acc = 0u64;
    for f in &frames {
        let Ok(eth) = ethernet::Frame::new_checked(black_box(&f[..])) else { continue };
        let Ok(ip) = ipv4::Packet::new_checked(eth.payload()) else { continue };
        let Ok(u) = udp::Packet::new_checked(ip.payload()) else { continue };
        acc += u64::from(u32::from(ip.src_addr()) ^ u32::from(ip.dst_addr()))
            + u64::from(u.src_port())
            + u64::from(u.dst_port())
            + u.payload().len() as u64;
    }
    acc
}

// ---- switch: FDB learn + lookup over 4,096 hosts ----

struct FdbWork {
    fdb: Fdb,
    work: Vec<(MacAddr, tweed::switch::PortId, MacAddr)>,
}

fn fdb_work() -> FdbWork {
    const HOSTS: usize = 4096;
    let mut rng = SplitMix64(0x5eed);
    let hosts: Vec<MacAddr> = (0..HOSTS).map(|_| MacAddr::from_u64(rng.next() & 0xfeff_ffff_ffff)).collect();
    let port = |h: usize| tweed::switch::PortId(1 + (h % 32) as u16);
    // A fixed hash seed: a random one changes the probe sequences, and so the count, from run to run.
    let mut fdb =
        Fdb::new(&FdbConfig { max_learned: HOSTS as u32, hash_seed: Some(0x7765_6564), ..FdbConfig::default() });
    for (i, &mac) in hosts.iter().enumerate() {
        let _ = fdb.learn(BridgeDomain(0), mac, port(i), tweed::switch::Instant::ZERO);
    }
    let work = (0..FDB_OPS)
        .map(|_| {
            let (s, d) = (rng.next() as usize % HOSTS, rng.next() as usize % HOSTS);
            (hosts[s], port(s), hosts[d])
        })
        .collect();
    FdbWork { fdb, work }
}

#[library_benchmark]
#[bench::ops1024(setup = fdb_work)]
fn switch_fdb_learn_lookup(mut w: FdbWork) -> (u32, FdbWork) {
    let now = tweed::switch::Instant::from_secs(1);
    let mut hit = 0u32;
    for &(s, port, d) in &w.work {
        let _ = black_box(w.fdb.learn(BridgeDomain(0), s, port, now));
        hit += u32::from(w.fdb.lookup(BridgeDomain(0), d, now).is_some());
    }
    (hit, w)
}

// ---- route: one batch lookup of 1,024 random addresses in a 20,000-prefix Internet-like table ----

struct LpmWork {
    lpm: Lpm,
    addrs: Vec<u32>,
    out: Vec<Option<NextHopId>>,
}

fn lpm_work() -> LpmWork {
    let mut lpm = Lpm::new();
    for (i, p) in synth::internet_table(20_000, 2024).into_iter().enumerate() {
        let _ = lpm.insert(p, NextHopId(1 + (i % 1000) as u32));
    }
    let mut rng = SplitMix64(7);
    let addrs = (0..LPM_ADDRS).map(|_| rng.next() as u32).collect();
    LpmWork { lpm, addrs, out: vec![None; LPM_ADDRS] }
}

#[library_benchmark]
#[bench::addrs1024(setup = lpm_work)]
fn route_lpm_lookup_batch(mut w: LpmWork) -> (usize, LpmWork) {
    let found = w.lpm.lookup_batch(black_box(&w.addrs), &mut w.out);
    (found, w)
}

// ---- the node pipeline: 64-byte frames, batch 32, vxlan encapsulation and decapsulation ----

const PEERS: u32 = 100;

fn node(i: u8) -> Node {
    node_builder(i, PEERS).build().unwrap()
}

struct Pipeline {
    node: Node,
    pool: Pool,
    batch: Batch,
    out: Outputs,
}

impl Pipeline {
    fn load(&mut self, frames: &[Vec<u8>], port: PortId) {
        for f in frames {
            let mut buf = self.pool.get().unwrap();
            buf.extend_from_slice(f).unwrap();
            buf.meta_mut().ingress = port;
            self.batch.push(buf).unwrap();
        }
    }

    fn run(&mut self, frames: &[Vec<u8>], port: PortId) {
        self.load(frames, port);
        self.node.process(Instant::from_secs(1), &mut self.pool, &mut self.batch, &mut self.out);
    }
}

/// Node 1 with its pod learnt, and one warm-up round of the same work, with `BATCH` frames loaded for the count.
fn pipeline(decap: bool) -> Pipeline {
    let pool = Pool::new(PoolConfig { buffers: 1024, ..PoolConfig::default() }).unwrap();
    let mut p = Pipeline { node: node(1), pool, batch: Batch::new(256), out: Outputs::new(1024) };
    p.run(&[arp_from_pod(1)], PortId(1));
    p.out.recycle(&mut p.pool);
    let frames: Vec<Vec<u8>> = if decap {
        // What node 2 sends node 1 for its pod's traffic to node 1's pod.
        let pool = Pool::new(PoolConfig { buffers: 1024, ..PoolConfig::default() }).unwrap();
        let mut n2 = Pipeline { node: node(2), pool, batch: Batch::new(256), out: Outputs::new(1024) };
        n2.run(&[arp_from_pod(2)], PortId(1));
        n2.out.recycle(&mut n2.pool);
        let to_n1: Vec<_> =
            (0..BATCH).map(|i| pod_frame(2, Ipv4Addr::new(10, 244, 1, 2), 64, 1000 + i as u16)).collect();
        n2.run(&to_n1, PortId(1));
        n2.out
            .drain()
            .map(|(b, v)| {
                assert!(matches!(v, Verdict::Underlay { .. }), "{v:?}");
                b.data().to_vec()
            })
            .collect()
    } else {
        (0..BATCH)
            .map(|i| {
                let k = (i as u32 * 7919) % PEERS;
                pod_frame(1, Ipv4Addr::from(u32::from(peer_subnet(k).network()) + 2), 64, 1000 + i as u16)
            })
            .collect()
    };
    assert_eq!(frames.len(), BATCH);
    let port = if decap { PortId(0) } else { PortId(1) };
    p.run(&frames, port);
    assert_eq!(p.out.len(), BATCH);
    let want_pod =
        |v: &Verdict| if decap { *v == Verdict::Port(PortId(1)) } else { matches!(v, Verdict::Underlay { .. }) };
    assert!(p.out.as_slice().iter().all(|(_, v)| want_pod(v)), "{:?}", p.node.counters());
    p.out.recycle(&mut p.pool);
    p.load(&frames, port);
    p
}

fn encap_setup() -> Pipeline {
    pipeline(false)
}

fn decap_setup() -> Pipeline {
    pipeline(true)
}

#[library_benchmark]
#[bench::b64_32(setup = encap_setup)]
fn pipeline_encap_vxlan(mut p: Pipeline) -> Pipeline {
    p.node.process(Instant::from_secs(1), &mut p.pool, &mut p.batch, &mut p.out);
    p
}

#[library_benchmark]
#[bench::b64_32(setup = decap_setup)]
fn pipeline_decap_vxlan(mut p: Pipeline) -> Pipeline {
    p.node.process(Instant::from_secs(1), &mut p.pool, &mut p.batch, &mut p.out);
    p
}

// ---- TAP offloads: a pod's TSO frame cut into 32 segments, and 32 segments coalesced into one frame for a pod ----

const SEGMENTS: usize = 32;
const MSS: usize = 1448;

/// What a pod's kernel hands a TAP with TSO on: a TCP/IPv4 frame with 32 segments' payload behind a virtio-net
/// header (NEEDS_CSUM, GSO_TCPV4, gso_size 1448), the TCP checksum field holding the pseudo-header sum.
fn tso_frame() -> ([u8; VNET_HDR_LEN], Vec<u8>) {
    let payload = SEGMENTS * MSS;
    let mut f = vec![0u8; 14 + 20 + 20 + payload];
    f[0..6].copy_from_slice(MacAddr::new(0x0a, 0x58, 10, 244, 1, 1).as_bytes());
    f[6..12].copy_from_slice(pod_mac(1).as_bytes());
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let total = (20 + 20 + payload) as u16;
    f[14..34].copy_from_slice(&[0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 244, 1, 2, 10, 244, 2, 2]);
    f[16..18].copy_from_slice(&total.to_be_bytes());
    let c = checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    // Ports 49153 → 5201, sequence 1000, ack 7, data offset 5, ACK|PSH, window 502.
    f[34..54]
        .copy_from_slice(&[0xc0, 0x01, 0x14, 0x51, 0, 0, 0x03, 0xe8, 0, 0, 0, 7, 0x50, 0x18, 0x01, 0xf6, 0, 0, 0, 0]);
    for (i, b) in f[54..].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let pseudo = checksum::pseudo_header_ipv4([10, 244, 1, 2], [10, 244, 2, 2], 6, (20 + payload) as u16);
    f[50..52].copy_from_slice(&pseudo.to_be_bytes());
    let mut hdr = [0u8; VNET_HDR_LEN];
    hdr[0] = 1; // NEEDS_CSUM
    hdr[1] = 1; // GSO_TCPV4
    hdr[2..4].copy_from_slice(&54u16.to_ne_bytes());
    hdr[4..6].copy_from_slice(&(MSS as u16).to_ne_bytes());
    hdr[6..8].copy_from_slice(&34u16.to_ne_bytes());
    hdr[8..10].copy_from_slice(&16u16.to_ne_bytes());
    (hdr, f)
}

/// A TSO frame and the pool buffers its segments are read into (2 KiB each, as the pool's).
fn tso_frame_and_buffers() -> ([u8; VNET_HDR_LEN], Vec<u8>, Vec<u8>) {
    let (hdr, frame) = tso_frame();
    (hdr, frame, vec![0u8; SEGMENTS * 2048])
}

// What the driver does with a pod's TSO frame: cut it and copy each segment into its buffer, the TCP checksum
// finished in the copy's pass.
#[library_benchmark]
#[bench::segments32(setup = tso_frame_and_buffers)]
fn offload_tso_cut((hdr, mut frame, mut bufs): ([u8; VNET_HDR_LEN], Vec<u8>, Vec<u8>)) -> (usize, Vec<u8>, Vec<u8>) {
    let mut chunks = bufs.chunks_exact_mut(2048);
    let mut bytes = 0;
    let n = cut_offloaded(&hdr, &mut frame, 65_535, 128, |cut| {
        if let Some(buf) = chunks.next() {
            bytes += cut.copy_to(buf);
        }
    });
    assert_eq!(n, Ok(SEGMENTS));
    (black_box(bytes), frame, bufs)
}

// The same frame cut in place, each segment's checksum computed over it, then copied into its buffer: what the
// driver did before the copy finished the checksum (for comparison in the same run).
#[library_benchmark]
#[bench::segments32(setup = tso_frame_and_buffers)]
fn offload_tso_cut_then_copy(
    (hdr, mut frame, mut bufs): ([u8; VNET_HDR_LEN], Vec<u8>, Vec<u8>),
) -> (usize, Vec<u8>, Vec<u8>) {
    let mut chunks = bufs.chunks_exact_mut(2048);
    let mut bytes = 0;
    let n = segment_offloaded(&hdr, &mut frame, 65_535, 128, |seg| {
        if let Some(buf) = chunks.next() {
            buf[..seg.len()].copy_from_slice(seg);
            bytes += seg.len();
        }
    });
    assert_eq!(n, Ok(SEGMENTS));
    (black_box(bytes), frame, bufs)
}

/// The segments of [`tso_frame`], each with full checksums: what the pipeline hands a TAP pod after decapsulation.
fn segments() -> (Vec<Vec<u8>>, Vec<u8>) {
    let (hdr, mut frame) = tso_frame();
    let mut segs = Vec::new();
    let n = segment_offloaded(&hdr, &mut frame, 65_535, 128, |seg| segs.push(seg.to_vec()));
    assert_eq!(n, Ok(SEGMENTS));
    assert_eq!(train_len(&segs, false), SEGMENTS, "the segments form one train");
    (segs, vec![0u8; COALESCE_ROOM])
}

// What the driver does with a train of segments for a TAP pod: check it is one train and write the coalesced
// frame's headers; the payloads are gathered from their buffers by the kernel (`writev`), not copied here.
#[library_benchmark]
#[bench::segments32(setup = segments)]
fn offload_gro_coalesce((segs, out): (Vec<Vec<u8>>, Vec<u8>)) -> (usize, Vec<Vec<u8>>, Vec<u8>) {
    let n = train_len(black_box(&segs), false);
    let mut head = [0u8; HEAD_ROOM];
    let len = coalesced_head(&segs[..n], &mut head);
    (black_box(len) + usize::from(black_box(head)[0]), segs, out)
}

// The same train copied into one frame: what the driver did before it gathered (for comparison in the same run).
#[library_benchmark]
#[bench::segments32(setup = segments)]
fn offload_gro_copy((segs, mut out): (Vec<Vec<u8>>, Vec<u8>)) -> (usize, Vec<Vec<u8>>, Vec<u8>) {
    let n = train_len(black_box(&segs), false);
    let len = coalesce(&segs[..n], &mut out);
    (len, segs, out)
}

/// 32 UDP datagrams of one flow, 64 bytes of data each, checksums right: what the pipeline hands a TAP pod after
/// decapsulating a small-packet flow.
fn datagrams() -> Vec<Vec<u8>> {
    let segs: Vec<Vec<u8>> = (0..SEGMENTS as u16)
        .map(|i| {
            let mut f = vec![0x0a, 0x58, 10, 244, 2, 2, 0x0a, 0x58, 10, 244, 2, 1, 0x08, 0x00];
            f.extend_from_slice(&[0x45, 0, 0, 92, 0, 0, 0, 0, 62, 17, 0, 0, 10, 244, 1, 2, 10, 244, 2, 2]);
            f[18..20].copy_from_slice(&(100 + i).to_be_bytes());
            let c = checksum::checksum(&f[14..34]);
            f[24..26].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&[0xc0, 0x01, 0x14, 0x51, 0, 72, 0, 0]);
            f.extend((0..64u16).map(|k| (k ^ i) as u8));
            let pseudo = checksum::pseudo_header_ipv4([10, 244, 1, 2], [10, 244, 2, 2], 17, 72);
            let c = !checksum::sum_with(pseudo, &f[34..]);
            f[40..42].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
            f
        })
        .collect();
    assert_eq!(train_len(&segs, true), SEGMENTS, "the datagrams form one train");
    segs
}

// What the driver does with a run of small UDP datagrams for a TAP pod that takes UDP segmentation offload:
// check it is one train (each datagram's checksum verified) and write the coalesced frame's headers.
#[library_benchmark]
#[bench::datagrams32(setup = datagrams)]
fn offload_udp_coalesce(segs: Vec<Vec<u8>>) -> (usize, Vec<Vec<u8>>) {
    let n = train_len(black_box(&segs), true);
    let mut head = [0u8; HEAD_ROOM];
    let len = coalesced_head(&segs[..n], &mut head);
    (black_box(len) + usize::from(black_box(head)[0]), segs)
}

library_benchmark_group!(
    name = hot_paths;
    benchmarks = wire_dissect_vxlan, wire_parse_eth_ipv4_udp, switch_fdb_learn_lookup, route_lpm_lookup_batch,
        pipeline_encap_vxlan, pipeline_decap_vxlan, offload_tso_cut, offload_tso_cut_then_copy, offload_gro_coalesce,
        offload_gro_copy, offload_udp_coalesce
);

main!(
    config = LibraryBenchmarkConfig::default()
        .tool(Callgrind::with_args(["--cache-sim=no"]))
        .output_format(OutputFormat::default());
    library_benchmark_groups = hot_paths
);
