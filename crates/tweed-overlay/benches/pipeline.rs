//! The node pipeline over batches of 1, 32 and 256 frames of 64 and 1400 bytes: pod → vxlan encapsulation, and
//! vxlan decapsulation → pod, with 10,000 peers (10,000 routes) in the table. Each iteration copies the frames
//! into pool buffers (what a receive call does), runs `Node::process` and gives the outputs back to the pool.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tweed_overlay::{Instant, Limits, Node, NodeBuilder, Outputs, PeerConfig, Verdict, VxlanConfig};
use tweed_packet::{Batch, Pool, PoolConfig, PortId};
use tweed_wire::ethernet::MacAddr;
use tweed_wire::{arp, checksum};

const PEERS: u32 = 10_000;

fn peer_subnet(k: u32) -> ipnet::Ipv4Net {
    // 10.0.0.0/24 … 10.39.15.0/24, skipping the nodes' own subnets 10.244.{1,2}.0/24.
    ipnet::Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (k << 8)), 24).unwrap()
}

fn node(i: u8) -> Node {
    let mut b = NodeBuilder::new(
        format!("10.244.{i}.0/24").parse().unwrap(),
        Ipv4Addr::new(192, 168, 0, i),
        MacAddr::new(2, 0, 0xc0, 0xa8, 0, i),
    )
    .vxlan(VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, i)))
    .pod_ports([1, 2])
    .limits(Limits { max_peers: PEERS + 16, max_outputs: 1024, ..Limits::default() });
    let other = 3 - i;
    b = b.peer(
        PeerConfig::new(format!("10.244.{other}.0/24").parse().unwrap(), Ipv4Addr::new(192, 168, 0, other))
            .with_vtep_mac(MacAddr::new(2, 0, 0, 0, 0, other))
            .with_node_mac(MacAddr::new(2, 0, 0xc0, 0xa8, 0, other)),
    );
    for k in 0..PEERS {
        b = b.peer(
            PeerConfig::new(peer_subnet(k), Ipv4Addr::from(0xac10_0000 + k))
                .with_vtep_mac(MacAddr::from_u64(0x0200_0001_0000 + u64::from(k)))
                .with_node_mac(MacAddr::from_u64(0x0200_0002_0000 + u64::from(k))),
        );
    }
    b.build().unwrap()
}

fn pod_mac(node: u8) -> MacAddr {
    MacAddr::new(0x0a, 0x58, 10, 244, node, 2)
}

/// A pod frame of `len` bytes (UDP inside IPv4) to `dst`.
fn pod_frame(node: u8, dst: Ipv4Addr, len: usize, sport: u16) -> Vec<u8> {
    let gw = MacAddr::new(0x0a, 0x58, 10, 244, node, 1);
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(gw.as_bytes());
    f[6..12].copy_from_slice(pod_mac(node).as_bytes());
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip_len = (len - 14) as u16;
    f[14..34].copy_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 244, node, 2, 0, 0, 0, 0]);
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[30..34].copy_from_slice(&dst.octets());
    let c = checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    f
}

fn arp_from_pod(node: u8) -> Vec<u8> {
    let mut f = vec![0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(pod_mac(node).as_bytes());
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    arp::Repr::request(pod_mac(node), Ipv4Addr::new(10, 244, node, 2), Ipv4Addr::new(10, 244, node, 1))
        .emit(&mut arp::Packet::new_unchecked(&mut f[14..]));
    f
}

fn run(node: &mut Node, pool: &mut Pool, batch: &mut Batch, out: &mut Outputs, frames: &[Vec<u8>], port: PortId) {
    for f in frames {
        let mut buf = pool.get().unwrap();
        buf.extend_from_slice(f).unwrap();
        buf.meta_mut().ingress = port;
        batch.push(buf).unwrap();
    }
    node.process(Instant::from_secs(1), pool, batch, out);
}

fn bench(c: &mut Criterion) {
    let mut n1 = node(1);
    let mut n2 = node(2);
    let mut pool = Pool::new(PoolConfig { buffers: 2048, ..PoolConfig::default() }).unwrap();
    let mut batch = Batch::new(256);
    let mut out = Outputs::new(1024);
    // Both nodes learn their pod (MAC, port and address) from its ARP request for the gateway.
    run(&mut n1, &mut pool, &mut batch, &mut out, &[arp_from_pod(1)], PortId(1));
    out.recycle(&mut pool);
    run(&mut n2, &mut pool, &mut batch, &mut out, &[arp_from_pod(2)], PortId(1));
    out.recycle(&mut pool);

    let mut group = c.benchmark_group("pipeline");
    for len in [64usize, 1400] {
        for size in [1usize, 32, 256] {
            // Encap: node 1's pod to pods behind many peers (one flow per frame).
            let encap: Vec<Vec<u8>> = (0..size)
                .map(|i| {
                    let k = (i as u32 * 7919) % PEERS;
                    let dst = Ipv4Addr::from(u32::from(peer_subnet(k).network()) + 2);
                    pod_frame(1, dst, len, 1000 + i as u16)
                })
                .collect();
            // Decap: what node 2 sends node 1 for its pod's traffic to node 1's pod.
            let to_n1: Vec<Vec<u8>> =
                (0..size).map(|i| pod_frame(2, Ipv4Addr::new(10, 244, 1, 2), len, 1000 + i as u16)).collect();
            run(&mut n2, &mut pool, &mut batch, &mut out, &to_n1, PortId(1));
            let decap: Vec<Vec<u8>> = out
                .drain()
                .map(|(b, v)| {
                    assert!(matches!(v, Verdict::Underlay { .. }), "{v:?}");
                    let bytes = b.data().to_vec();
                    pool.put(b);
                    bytes
                })
                .collect();
            assert_eq!(decap.len(), size);

            // What is timed below does what it says: every frame encapsulated to its peer, every frame decapsulated
            // to the pod (checked once per case here, outside the timing).
            run(&mut n1, &mut pool, &mut batch, &mut out, &encap, PortId(1));
            assert_eq!(out.len(), size);
            for ((b, v), k) in out.as_slice().iter().zip((0..size as u32).map(|i| (i * 7919) % PEERS)) {
                let node_ip = Ipv4Addr::from(0xac10_0000 + k);
                assert!(matches!(v, Verdict::Underlay { dst, .. } if dst.ip() == node_ip), "{v:?}");
                assert_eq!(b.len(), len + 50);
            }
            out.recycle(&mut pool);
            run(&mut n1, &mut pool, &mut batch, &mut out, &decap, PortId(0));
            assert_eq!(out.len(), size);
            for (b, v) in out.as_slice() {
                assert_eq!(*v, Verdict::Port(PortId(1)));
                assert_eq!(b.len(), len);
            }
            out.recycle(&mut pool);

            group.throughput(Throughput::Elements(size as u64));
            group.bench_with_input(BenchmarkId::new(format!("encap_vxlan/{len}B"), size), &encap, |b, frames| {
                b.iter(|| {
                    run(&mut n1, &mut pool, &mut batch, &mut out, frames, PortId(1));
                    debug_assert!(out.as_slice().iter().all(|(_, v)| matches!(v, Verdict::Underlay { .. })));
                    black_box(out.len());
                    out.recycle(&mut pool);
                });
            });
            group.bench_with_input(BenchmarkId::new(format!("decap_vxlan/{len}B"), size), &decap, |b, frames| {
                b.iter(|| {
                    run(&mut n1, &mut pool, &mut batch, &mut out, frames, PortId(0));
                    debug_assert!(out.as_slice().iter().all(|(_, v)| *v == Verdict::Port(PortId(1))));
                    black_box(out.len());
                    out.recycle(&mut pool);
                });
            });
        }
    }
    group.finish();
    assert_eq!(n1.counters().total_drops(), 0, "{:?}", n1.counters().nonzero_drops().collect::<Vec<_>>());
}

criterion_group!(benches, bench);
criterion_main!(benches);
