//! The node's promises under arbitrary traffic (proptest): every call with input and room consumes input, the
//! output never exceeds its room, every packet is accounted for once (`Counters::held` equals the packets waiting
//! for ARP, and every pool buffer is in the pool, the queue, the input or the output), and the tables stay within
//! their limits. Frames are pod ARP and IPv4 (any source, destination, size, TTL, DF), underlay frames from a
//! real peer, and random bytes, on pod, underlay, host and unknown ports, with time moving on.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::{eth, pod_ip, pod_mac};
use proptest::prelude::*;
use tweed_overlay::{Instant, Limits, Node, Outputs, Verdict};
use tweed_packet::{Batch, Pool, PoolConfig, PortId};
use tweed_wire::ethernet::MacAddr;
use tweed_wire::{arp, ipv4};

const BUFFERS: usize = 256;

#[derive(Clone, Debug)]
enum Frame {
    /// An ARP request from pod port `port` with this sender address (last octet, in or out of the subnet).
    Arp { port: u16, sender: Ipv4Addr, target: Ipv4Addr },
    /// An IPv4 UDP packet from a pod port.
    Ip { port: u16, src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, df: bool, len: usize },
    /// A vxlan frame node 2 sent for one of its pod's packets.
    Underlay { dst: Ipv4Addr, len: usize },
    /// Random bytes on a port.
    Junk { port: u16, bytes: Vec<u8> },
}

fn addr() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        (0u8..=255).prop_map(|h| Ipv4Addr::new(10, 244, 1, h)),
        (0u8..=255).prop_map(|h| Ipv4Addr::new(10, 244, 2, h)),
        any::<u32>().prop_map(Ipv4Addr::from),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (1u16..=2, addr(), addr()).prop_map(|(port, sender, target)| Frame::Arp { port, sender, target }),
        (1u16..=2, addr(), addr(), 0u8..=3, any::<bool>(), 0usize..3000)
            .prop_map(|(port, src, dst, ttl, df, len)| Frame::Ip { port, src, dst, ttl: ttl * 40 + 1, df, len }),
        (addr(), 0usize..1400).prop_map(|(dst, len)| Frame::Underlay { dst, len }),
        (prop_oneof![Just(0u16), Just(1), Just(2), Just(7), Just(9)], prop::collection::vec(any::<u8>(), 0..80))
            .prop_map(|(port, bytes)| Frame::Junk { port, bytes }),
    ]
}

#[derive(Clone, Debug)]
struct Step {
    advance_ms: u64,
    room: usize,
    frames: Vec<Frame>,
}

fn step() -> impl Strategy<Value = Step> {
    (0u64..2500, 1usize..10, prop::collection::vec(frame(), 0..12)).prop_map(|(advance_ms, room, frames)| Step {
        advance_ms,
        room,
        frames,
    })
}

fn limits() -> Limits {
    Limits { arp_queue: 4, arp_entries: 3, ..Limits::default() }
}

fn node(i: u8) -> Node {
    let mut config = common::node("vxlan", i, 2).to_config();
    config.limits = limits();
    config.host_port = Some(7);
    Node::new(config).unwrap()
}

/// The bytes of `frame` as they reach node 1 (an underlay frame is made by node 2 from its pod's packet).
fn bytes(frame: &Frame, n1: &Node, n2: &mut Node, pool: &mut Pool) -> Option<(PortId, Vec<u8>)> {
    let gw = n1.config().gateway_mac();
    Some(match frame {
        Frame::Arp { port, sender, target } => {
            let mac = pod_mac(1, *port as u8);
            (PortId(*port), common::arp_frame(MacAddr::BROADCAST, &arp::Repr::request(mac, *sender, *target)))
        }
        Frame::Ip { port, src, dst, ttl, df, len } => {
            let u = common::udp_datagram(*src, *dst, 5000, 9, &vec![0x5a; *len]);
            let mut f = eth(gw, pod_mac(1, *port as u8), 0x0800);
            f.extend(common::ipv4_packet(*src, *dst, ipv4::Protocol::UDP, *ttl, *df, &u));
            (PortId(*port), f)
        }
        Frame::Underlay { dst, len } => {
            let gw2 = n2.config().gateway_mac();
            let u = common::udp_datagram(pod_ip(2, 1), *dst, 5000, 9, &vec![0x5a; *len]);
            let mut f = eth(gw2, pod_mac(2, 1), 0x0800);
            f.extend(common::ipv4_packet(pod_ip(2, 1), *dst, ipv4::Protocol::UDP, 64, false, &u));
            let mut batch = Batch::new(1);
            let mut b = pool.get()?;
            b.extend_from_slice(&f).ok()?;
            b.meta_mut().ingress = PortId(1);
            batch.push(b).ok()?;
            let mut out = Outputs::new(8);
            n2.process(Instant::from_secs(1), pool, &mut batch, &mut out);
            let frame = out
                .as_slice()
                .iter()
                .find(|(_, v)| matches!(v, Verdict::Underlay { .. }))
                .map(|(b, _)| b.data().to_vec());
            out.recycle(pool);
            (common::UNDERLAY, frame?)
        }
        Frame::Junk { port, bytes } => (PortId(*port), bytes.clone()),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn test_node_invariants(steps in prop::collection::vec(step(), 1..16)) {
        let mut n1 = node(1);
        let mut n2 = node(2);
        let cfg = PoolConfig { buffers: BUFFERS, capacity: 128 + 9018, ..PoolConfig::default() };
        let mut pool = Pool::new(cfg).unwrap();
        let mut side = Pool::new(PoolConfig { buffers: 16, ..PoolConfig::default() }).unwrap();
        // Node 2's pod 1 announces itself, so that node 2 sends its packets.
        let gw2 = n2.config().gateway_ip();
        let mut batch = Batch::new(16);
        let mut b = side.get().unwrap();
        b.extend_from_slice(&common::arp_frame(
            MacAddr::BROADCAST,
            &arp::Repr::request(pod_mac(2, 1), pod_ip(2, 1), gw2),
        ))
        .unwrap();
        b.meta_mut().ingress = PortId(1);
        batch.push(b).unwrap();
        let mut out = Outputs::new(8);
        n2.process(Instant::from_secs(1), &mut side, &mut batch, &mut out);
        out.recycle(&mut side);
        let mut now = Instant::from_secs(1);
        for step in steps {
            now = now + Duration::from_millis(step.advance_ms);
            let mut batch = Batch::new(16);
            for f in &step.frames {
                let Some((port, data)) = bytes(f, &n1, &mut n2, &mut side) else { continue };
                let mut b = pool.get().expect("the node keeps no more than its queue");
                b.extend_from_slice(&data).unwrap();
                b.meta_mut().ingress = port;
                batch.push(b).unwrap();
            }
            let mut out = Outputs::new(step.room);
            let mut calls = 0;
            loop {
                let before = batch.len();
                n1.process(now, &mut pool, &mut batch, &mut out);
                prop_assert!(out.len() <= step.room);
                prop_assert!(before == 0 || batch.len() < before, "no progress with {before} inputs");
                let c = n1.counters();
                prop_assert_eq!(c.held(), n1.arp_pending() as u64);
                prop_assert!(n1.arp_pending() <= usize::from(limits().arp_queue));
                prop_assert!(n1.arp_entries() <= usize::from(limits().arp_entries));
                prop_assert_eq!(pool.available() + n1.arp_pending() + batch.len() + out.len(), BUFFERS);
                for (_, v) in out.as_slice() {
                    prop_assert!(!matches!(v, Verdict::Drop(tweed_overlay::DropReason::StaleNextHop)));
                }
                out.recycle(&mut pool);
                calls += 1;
                prop_assert!(calls <= 17);
                if batch.is_empty() {
                    break;
                }
            }
            if let Some(at) = n1.poll_at() {
                prop_assert!(at >= Instant::from_secs(1));
            }
        }
    }
}
