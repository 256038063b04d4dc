//! Encapsulation and decapsulation of a batch of 256 packets: push a 50-byte VXLAN outer header in front of a
//! received 98-byte inner frame, then pull it off, as a VXLAN node does on the way out and on the way in.
//!
//! - `packet_buf`: tweed-packet. Buffers from a `Pool`, the frame received behind the headroom, the header pushed
//!   into the headroom and pulled off again; no allocation, the payload never moves.
//! - `vec_reuse`: one reused `Vec<u8>` per packet (no allocation either), the header inserted at the front with
//!   `splice` and removed with `drain`: the payload moves twice.
//! - `vec_alloc`: the naive way: a new `Vec` for the encapsulated packet and another for the decapsulated one.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tweed_packet::{Batch, Pool, PoolConfig};

/// Ethernet, IPv4, UDP and VXLAN headers.
const VXLAN_IPV4_OUTER_LEN: usize = 50;

const BATCH: usize = 256;
const OUTER: [u8; VXLAN_IPV4_OUTER_LEN] = [0x45; VXLAN_IPV4_OUTER_LEN];

fn inner() -> [u8; 98] {
    core::array::from_fn(|i| i as u8)
}

fn encap_decap(c: &mut Criterion) {
    let inner = inner();
    let mut group = c.benchmark_group("encap_decap_256");
    group.throughput(Throughput::Elements(BATCH as u64));

    let mut pool = Pool::new(PoolConfig { buffers: BATCH, ..PoolConfig::default() }).unwrap();
    let mut batch = Batch::new(BATCH);
    group.bench_function("packet_buf", |b| {
        b.iter(|| {
            pool.get_batch(&mut batch, BATCH);
            for pkt in &mut batch {
                // Stands in for the kernel's write in recvmmsg.
                pkt.recv_area_mut()[..inner.len()].copy_from_slice(black_box(&inner));
                pkt.commit_recv(inner.len()).unwrap();
                pkt.prepend_from_slice(black_box(&OUTER)).unwrap();
                black_box(pkt.data());
                pkt.pull_front(VXLAN_IPV4_OUTER_LEN).unwrap();
                black_box(pkt.data());
            }
            pool.put_batch(&mut batch);
        });
    });

    let mut vecs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(2048)).collect();
    group.bench_function("vec_reuse", |b| {
        b.iter(|| {
            for v in &mut vecs {
                v.clear();
                v.extend_from_slice(black_box(&inner));
                v.splice(0..0, black_box(&OUTER).iter().copied());
                black_box(v.as_slice());
                v.drain(..VXLAN_IPV4_OUTER_LEN);
                black_box(v.as_slice());
            }
        });
    });

    group.bench_function("vec_alloc", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                let received = black_box(&inner).to_vec();
                let mut encapsulated = Vec::with_capacity(VXLAN_IPV4_OUTER_LEN + received.len());
                encapsulated.extend_from_slice(black_box(&OUTER));
                encapsulated.extend_from_slice(&received);
                black_box(&encapsulated);
                let decapsulated = encapsulated[VXLAN_IPV4_OUTER_LEN..].to_vec();
                black_box(decapsulated);
            }
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = encap_decap
}
criterion_main!(benches);
