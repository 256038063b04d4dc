//! `Node::process` runs its stages over passes of at most 256 packets, each no larger than the room left in
//! `Outputs`: batches longer than one pass, and outputs with less room than the batch, keep the order of arrival.

mod common;

use common::{eth, node, node_ip, pod_ip, pod_mac, udp_datagram};
use tweed_overlay::{Outputs, Verdict};
use tweed_packet::{Batch, Pool, PoolConfig, PortId};
use tweed_switch::Instant;
use tweed_wire::ipv4;

const POD: PortId = PortId(1);

/// Pod 1 of node 1 to pod 1 of node 2, through the gateway, from UDP port `sport`.
fn pod_frame(sport: u16) -> Vec<u8> {
    let mut f = eth(pod_mac(1, 0), pod_mac(1, 1), 0x0800);
    let udp = udp_datagram(pod_ip(1, 1), pod_ip(2, 1), sport, 9, &[0; 22]);
    f.extend_from_slice(&common::ipv4_packet(pod_ip(1, 1), pod_ip(2, 1), ipv4::Protocol::UDP, 64, false, &udp));
    f
}

fn fill(pool: &mut Pool, batch: &mut Batch, sports: core::ops::Range<u16>) {
    for sport in sports {
        let mut b = pool.get().unwrap();
        b.extend_from_slice(&pod_frame(sport)).unwrap();
        b.meta_mut().ingress = POD;
        batch.push(b).unwrap();
    }
}

/// The inner UDP source port of an encapsulated frame (50 bytes of outer headers, 14 + 20 inside).
fn inner_sport(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[50 + 34], frame[50 + 35]])
}

/// The identification of the outer IPv4 header.
fn outer_ident(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[18], frame[19]])
}

#[test]
fn test_batch_of_several_passes_keeps_order() {
    let mut n = node("vxlan", 1, 2);
    let mut pool = Pool::new(PoolConfig { buffers: 1024, ..PoolConfig::default() }).unwrap();
    let mut batch = Batch::new(600);
    let mut out = Outputs::new(1024);
    fill(&mut pool, &mut batch, 1000..1600);
    n.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
    assert!(batch.is_empty());
    assert_eq!(out.len(), 600);
    let first = outer_ident(out.as_slice()[0].0.data());
    for (k, (b, v)) in out.as_slice().iter().enumerate() {
        assert!(matches!(v, Verdict::Underlay { dst, .. } if dst.ip() == node_ip(2)), "{v:?}");
        assert_eq!(b.len(), 64 + 50);
        assert_eq!(inner_sport(b.data()), 1000 + k as u16);
        // Encapsulated in order of arrival: one identification after the other.
        assert_eq!(outer_ident(b.data()), first.wrapping_add(k as u16));
    }
    assert_eq!(n.counters().to_peer, 600);
    assert_eq!(n.counters().total_drops(), 0);
    out.recycle(&mut pool);
}

#[test]
fn test_inputs_beyond_the_room_of_out_stay_in_order() {
    let mut n = node("vxlan", 1, 2);
    let mut pool = Pool::new(PoolConfig { buffers: 64, ..PoolConfig::default() }).unwrap();
    let mut batch = Batch::new(32);
    let mut out = Outputs::new(10);
    fill(&mut pool, &mut batch, 1000..1025);
    let mut sent = Vec::new();
    for left in [15, 5, 0] {
        n.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
        assert_eq!(batch.len(), left);
        // What is left is what came last, in order.
        let rest: Vec<u16> = batch.iter().map(|b| u16::from_be_bytes([b.data()[34], b.data()[35]])).collect();
        assert_eq!(rest, (1025 - left as u16..1025).collect::<Vec<_>>());
        for (b, v) in out.drain() {
            assert!(matches!(v, Verdict::Underlay { .. }), "{v:?}");
            sent.push(inner_sport(b.data()));
            pool.put(b);
        }
    }
    assert_eq!(sent, (1000..1025).collect::<Vec<_>>());
    assert_eq!(n.counters().total_drops(), 0);
    assert_eq!(pool.available(), 64);
}
