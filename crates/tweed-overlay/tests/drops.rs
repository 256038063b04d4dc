//! Every drop reason, the MTU rule, TTL expiry, ARP queueing, peer changes at run time, and spoofed or malformed
//! underlay frames.

mod common;

use std::net::Ipv4Addr;

use common::{Cluster, Received, node_ip, pod_ip, subnet};
use tweed_overlay::{DropReason, Instant, Limits, Node, NodeBuilder, Outputs, Verdict};
use tweed_packet::{Batch, Pool, PoolConfig, PortId};
use tweed_wire::{checksum, ipv4};

/// A two-node vxlan cluster whose pods have resolved their gateway (and node 2 its pod 1).
fn warm() -> Cluster {
    let mut c = Cluster::new("vxlan", 2);
    let f = c.pod(1, 1).ping(pod_ip(2, 1), 1, 64);
    c.send_from_pod(1, f, 1);
    c.run();
    assert_eq!(c.pod(1, 1).received.len(), 1);
    c.underlay_log.clear();
    c
}

fn drops(c: &Cluster, node: usize, reason: DropReason) -> u64 {
    c.nodes[node].counters().drop_count(reason)
}

#[test]
fn test_mtu_rule_and_rate_limit() {
    let mut c = warm();
    // 1450 = 1500 − 50 fits; 1451 with DF gets "fragmentation needed" with MTU 1450.
    let fits = vec![0u8; 1450 - 28];
    let f = c.pod(1, 1).send_udp(pod_ip(2, 1), 5000, 9, &fits);
    c.send_from_pod(1, f, 1);
    let big = vec![0u8; 1451 - 28];
    let f = c.pod(1, 1).send_udp(pod_ip(2, 1), 5000, 9, &big);
    c.send_from_pod(1, f, 1);
    c.run();
    assert_eq!(c.underlay_log.len(), 1);
    // Outer Ethernet + 1500 bytes of outer IPv4: exactly the underlay MTU.
    assert_eq!(c.underlay_log[0].2.len(), 14 + 1500);
    assert_eq!(drops(&c, 0, DropReason::TooBig), 1);
    assert_eq!(
        c.pod(1, 1).received.last(),
        Some(&Received::Icmp { from: Ipv4Addr::new(10, 244, 1, 1), msg_type: 3, code: 4, mtu: 1450 })
    );
    assert_eq!(c.nodes[0].inner_mtu(), 1450);
    // Without DF: fragmented (RFC 791): (1450 − 20) rounded down to 8 = 1424 bytes of data in the first, 7 in the
    // second.
    let u = common::udp_datagram(pod_ip(1, 1), pod_ip(2, 1), 5000, 9, &big);
    let p = common::ipv4_packet(pod_ip(1, 1), pod_ip(2, 1), ipv4::Protocol::UDP, 64, false, &u);
    let f = c.pod(1, 1).send_ip(p);
    c.send_from_pod(1, f, 1);
    c.run();
    assert_eq!(drops(&c, 0, DropReason::TooBigNoDf), 0);
    assert_eq!((c.nodes[0].counters().fragmented, c.nodes[0].counters().fragments_out), (1, 2));
    let from = pod_ip(1, 1);
    let got = &c.pod(2, 1).received;
    assert_eq!(
        got[got.len() - 2..],
        [
            Received::Fragment { from, offset: 1424, len: 7, more: false },
            Received::Fragment { from, offset: 0, len: 1424, more: true }
        ]
    );
    // Rate limit: a burst of 50, then nothing until tokens come back (100/s).
    let before = c.nodes[0].counters().icmp_errors;
    for _ in 0..60 {
        let f = c.pod(1, 1).send_udp(pod_ip(2, 1), 5000, 9, &big);
        c.send_from_pod(1, f, 1);
    }
    c.run();
    let sent = c.nodes[0].counters().icmp_errors - before;
    assert!((48..=50).contains(&sent), "sent {sent}");
    assert_eq!(c.nodes[0].counters().icmp_rate_limited, 60 - sent);
    c.now = c.now + std::time::Duration::from_millis(100);
    let f = c.pod(1, 1).send_udp(pod_ip(2, 1), 5000, 9, &big);
    c.send_from_pod(1, f, 1);
    c.run();
    assert_eq!(c.nodes[0].counters().icmp_errors - before, sent + 1);
}

#[test]
fn test_ttl_expired_and_no_route() {
    let mut c = warm();
    let f = c.pod(1, 1).ping(pod_ip(2, 1), 2, 1);
    c.send_from_pod(1, f, 1);
    c.run();
    assert_eq!(drops(&c, 0, DropReason::TtlExpired), 1);
    assert_eq!(
        c.pod(1, 1).received.last(),
        Some(&Received::Icmp { from: Ipv4Addr::new(10, 244, 1, 1), msg_type: 11, code: 0, mtu: 0 })
    );
    // TTL 2 leaves node 1 with 1 and expires at node 2, whose error travels back over the overlay.
    let f = c.pod(1, 1).ping(pod_ip(2, 1), 3, 2);
    c.send_from_pod(1, f, 1);
    c.run();
    assert_eq!(drops(&c, 1, DropReason::TtlExpired), 1);
    assert_eq!(
        c.pod(1, 1).received.last(),
        Some(&Received::Icmp { from: Ipv4Addr::new(10, 244, 2, 1), msg_type: 11, code: 0, mtu: 0 })
    );
    let f = c.pod(1, 1).ping(Ipv4Addr::new(8, 8, 8, 8), 4, 64);
    c.send_from_pod(1, f, 1);
    c.run();
    assert_eq!(drops(&c, 0, DropReason::NoRoute), 1);
    assert_eq!(
        c.pod(1, 1).received.last(),
        Some(&Received::Icmp { from: Ipv4Addr::new(10, 244, 1, 1), msg_type: 3, code: 0, mtu: 0 })
    );
}

#[test]
fn test_peer_changes_at_run_time() {
    let mut c = warm();
    let old = c.nodes[0].remove_peer(subnet(2)).unwrap();
    assert_eq!(old.node_ip, node_ip(2));
    let f = c.pod(1, 1).ping(pod_ip(2, 1), 5, 64);
    c.send_from_pod(1, f, 1);
    c.run();
    assert_eq!(drops(&c, 0, DropReason::NoRoute), 1);
    // Node 2 still knows node 1, but node 1 no longer accepts node 2's frames.
    let f = c.pod(2, 1).ping(pod_ip(1, 1), 6, 64);
    c.send_from_pod(2, f, 1);
    c.run();
    assert_eq!(drops(&c, 0, DropReason::UnknownPeer), 1);
    c.nodes[0].add_peer(common::peer(2)).unwrap();
    let f = c.pod(1, 1).ping(pod_ip(2, 1), 7, 64);
    c.send_from_pod(1, f, 1);
    c.run();
    assert_eq!(c.pod(1, 1).received.last(), Some(&Received::EchoReply { from: pod_ip(2, 1), seq: 7, ttl: 62 }));
    // Node 2 moves to a new underlay address: node 1 sends there (no such node in the wire: check the verdict).
    let mut moved = common::peer(2);
    moved.node_ip = Ipv4Addr::new(192, 168, 0, 22).into();
    c.nodes[0].update_peer(moved).unwrap();
    assert_eq!(c.nodes[0].peers().next().unwrap().node_ip, Ipv4Addr::new(192, 168, 0, 22));
    assert!(c.nodes[0].add_peer(common::peer(2)).is_err(), "overlapping subnet");
    assert!(c.nodes[0].remove_peer(subnet(3)).is_err());
    assert!(c.nodes[0].update_peer(common::peer(3)).is_err());
}

#[test]
fn test_spoofed_and_malformed_underlay() {
    let mut c = warm();
    let f = c.pod(2, 1).ping(pod_ip(1, 1), 8, 64);
    c.send_from_pod(2, f, 1);
    c.run();
    let good = c.underlay_log.iter().find(|(from, ..)| *from == 1).unwrap().2.clone();
    let fix_ip = |f: &mut Vec<u8>| {
        f[24..26].copy_from_slice(&[0, 0]);
        let s = checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&s.to_be_bytes());
    };
    let fix_inner = |f: &mut Vec<u8>| {
        let mut ip = ipv4::Packet::new_checked(&mut f[64..]).unwrap();
        ip.fill_checksum();
    };
    type Mutation = (DropReason, Box<dyn Fn(&mut Vec<u8>)>);
    let cases: Vec<Mutation> = vec![
        (DropReason::UnderlayNotForUs, Box::new(|f| f[0] ^= 0x40)),
        (DropReason::UnderlayNotForUs, Box::new(|f| f[12] = 0x86)),
        (DropReason::UnderlayMalformed, Box::new(|f| f[24] ^= 1)),
        (
            DropReason::UnknownPeer,
            Box::new(move |f| {
                f[29] = 9;
                fix_ip(f)
            }),
        ),
        (
            DropReason::UnderlayNotForUs,
            Box::new(move |f| {
                f[33] = 7;
                fix_ip(f)
            }),
        ),
        (
            DropReason::UnderlayFragment,
            Box::new(move |f| {
                f[20] |= 0x20;
                fix_ip(f)
            }),
        ),
        (DropReason::UnderlayWrongPort, Box::new(|f| f[37] = 0x19)),
        (DropReason::UnderlayChecksum, Box::new(|f| f[40..42].copy_from_slice(&[0x12, 0x34]))),
        (DropReason::VxlanMalformed, Box::new(|f| f[42] = 0)),
        (DropReason::VxlanMalformed, Box::new(|f| f[42] = 0x0c)),
        (DropReason::WrongVni, Box::new(|f| f[48] = 2)),
        (DropReason::InnerMismatch, Box::new(|f| f[50] ^= 0x40)),
        (DropReason::InnerMismatch, Box::new(|f| f[61] = 3)),
        (
            DropReason::SpoofedSource,
            Box::new(move |f| {
                f[78] = 3;
                fix_inner(f)
            }),
        ),
        (
            DropReason::NotLocal,
            Box::new(move |f| {
                // To node 2's own subnet: the node does not relay between peers.
                f[82] = 2;
                fix_inner(f)
            }),
        ),
        (DropReason::Ipv4Checksum, Box::new(|f| f[74] ^= 1)),
        (
            DropReason::MartianDestination,
            Box::new(move |f| {
                f[80..84].copy_from_slice(&[224, 0, 0, 1]);
                fix_inner(f)
            }),
        ),
    ];
    for (i, (reason, mutate)) in cases.iter().enumerate() {
        let mut f = good.clone();
        mutate(&mut f);
        let before = drops(&c, 0, *reason);
        c.inject(0, common::UNDERLAY, f);
        c.run();
        assert_eq!(drops(&c, 0, *reason), before + 1, "case {i}: {reason}");
    }
    // Every truncation: a counted drop, never a panic, never a delivery.
    let delivered = c.pod(1, 1).frames_seen;
    let before = c.nodes[0].counters().total_drops();
    for len in 0..good.len() {
        c.inject(0, common::UNDERLAY, good[..len].to_vec());
    }
    c.run();
    assert_eq!(c.nodes[0].counters().total_drops() - before, good.len() as u64);
    assert_eq!(c.pod(1, 1).frames_seen, delivered);
    // The intact frame still goes through.
    c.inject(0, common::UNDERLAY, good);
    c.run();
    assert_eq!(c.pod(1, 1).frames_seen, delivered + 1);
}

#[test]
fn test_pod_side_drops() {
    let mut c = warm();
    let gw = c.nodes[0].config().gateway_mac();
    let pod = common::pod_mac(1, 1);
    let ip = |src, dst| {
        let icmp = common::icmp_echo(tweed_wire::icmpv4::Message::ECHO_REQUEST, 1, 1, &[0; 8]);
        let mut f = common::eth(gw, pod, 0x0800);
        f.extend(common::ipv4_packet(src, dst, ipv4::Protocol::ICMP, 64, false, &icmp));
        f
    };
    let good = ip(pod_ip(1, 1), pod_ip(2, 1));
    let cases: Vec<(DropReason, PortId, Vec<u8>)> = vec![
        (DropReason::UnknownPort, PortId(9), good.clone()),
        (DropReason::BridgeTruncated, PortId(1), good[..10].to_vec()),
        (DropReason::BridgeInvalidSource, PortId(1), [&gw.as_bytes()[..], &[0x01; 6], &good[12..]].concat()),
        (DropReason::UnsupportedEthertype, PortId(1), [&good[..12], &[0x86, 0xdd], &good[14..]].concat()),
        (DropReason::Ipv4Checksum, PortId(1), {
            let mut f = good.clone();
            f[24] ^= 1;
            f
        }),
        (DropReason::Ipv4Version, PortId(1), {
            let mut f = good.clone();
            f[14] = 0x65;
            f
        }),
        (DropReason::Ipv4Malformed, PortId(1), good[..30].to_vec()),
        // Outside the pod subnet: a pod's source is checked before the router's martian check.
        (DropReason::PodSourceSpoofed, PortId(1), ip(Ipv4Addr::new(127, 0, 0, 1), pod_ip(2, 1))),
        (DropReason::MartianDestination, PortId(1), ip(pod_ip(1, 1), Ipv4Addr::new(240, 0, 0, 1))),
        (DropReason::FloodNoPort, PortId(1), {
            // A pod alone in its domain: node with one pod port.
            good.clone()
        }),
    ];
    for (i, (reason, port, frame)) in cases.into_iter().enumerate() {
        if reason == DropReason::FloodNoPort {
            continue; // below, on a node of its own
        }
        let before = drops(&c, 0, reason);
        c.inject(0, port, frame);
        c.run();
        assert_eq!(drops(&c, 0, reason), before + 1, "case {i}: {reason}");
    }
    let mut lone = NodeBuilder::new(subnet(1), node_ip(1), common::node_mac(1)).pod_ports([1]).build().unwrap();
    let mut pool = Pool::new(PoolConfig { buffers: 64, ..PoolConfig::default() }).unwrap();
    let out =
        run_one(&mut lone, &mut pool, PortId(1), &common::eth(tweed_wire::ethernet::MacAddr::BROADCAST, pod, 0x0800));
    assert_eq!(out, [Verdict::Drop(DropReason::FloodNoPort)]);
}

fn run_one(node: &mut Node, pool: &mut Pool, port: PortId, frame: &[u8]) -> Vec<Verdict> {
    run_at(node, pool, port, frame, Instant::from_secs(1))
}

fn run_at(node: &mut Node, pool: &mut Pool, port: PortId, frame: &[u8], now: Instant) -> Vec<Verdict> {
    let mut batch = Batch::new(8);
    if !frame.is_empty() {
        let mut b = pool.get().unwrap();
        b.extend_from_slice(frame).unwrap();
        b.meta_mut().ingress = port;
        batch.push(b).unwrap();
    }
    let mut out = Outputs::new(64);
    node.process(now, pool, &mut batch, &mut out);
    let v = out.as_slice().iter().map(|(_, v)| *v).collect();
    out.recycle(pool);
    v
}

#[test]
fn test_arp_queue_timeout_and_full() {
    let limits = Limits { arp_queue: 2, ..Limits::default() };
    let mut node =
        NodeBuilder::new(subnet(1), node_ip(1), common::node_mac(1)).pod_ports([1, 2]).limits(limits).build().unwrap();
    let mut pool = Pool::new(PoolConfig { buffers: 64, ..PoolConfig::default() }).unwrap();
    let gw = node.config().gateway_mac();
    let pod = common::pod_mac(1, 1);
    let frame = |dst| {
        let icmp = common::icmp_echo(tweed_wire::icmpv4::Message::ECHO_REQUEST, 1, 1, &[0; 8]);
        let mut f = common::eth(gw, pod, 0x0800);
        f.extend(common::ipv4_packet(pod_ip(1, 1), dst, ipv4::Protocol::ICMP, 64, false, &icmp));
        f
    };
    // Unknown neighbour: queued, and an ARP request goes out of both pod ports.
    let v = run_one(&mut node, &mut pool, PortId(1), &frame(Ipv4Addr::new(10, 244, 1, 200)));
    assert_eq!(v, [Verdict::Port(PortId(1)), Verdict::Port(PortId(2))]);
    assert_eq!(node.arp_pending(), 1);
    // A second packet to the same address: queued, no new request within the retry time.
    assert_eq!(run_one(&mut node, &mut pool, PortId(1), &frame(Ipv4Addr::new(10, 244, 1, 200))), []);
    assert_eq!(
        run_one(&mut node, &mut pool, PortId(1), &frame(Ipv4Addr::new(10, 244, 1, 201))),
        [Verdict::Drop(DropReason::ArpQueueFull)]
    );
    // Three seconds later both time out.
    let v = run_at(&mut node, &mut pool, PortId(1), &[], Instant::from_secs(5));
    assert_eq!(v, [Verdict::Drop(DropReason::ArpTimeout), Verdict::Drop(DropReason::ArpTimeout)]);
    assert_eq!(node.arp_pending(), 0);
    assert_eq!(node.counters().drop_count(DropReason::ArpTimeout), 2);
}

#[test]
fn test_arp_resolution_releases_queue() {
    // Node 2's pods have never spoken: the first packet for one waits for ARP, then is delivered.
    let mut c = Cluster::new("vxlan", 2);
    let f = c.pod(1, 1).ping(pod_ip(2, 2), 9, 64);
    c.send_from_pod(1, f, 1);
    c.run();
    assert_eq!(c.pod(1, 1).received, [Received::EchoReply { from: pod_ip(2, 2), seq: 9, ttl: 62 }]);
    assert_eq!(c.nodes[1].counters().arp_released, 1);
    assert!(c.nodes[1].counters().arp_requests >= 1);
    assert_eq!(c.nodes[1].counters().total_drops(), 0);
}
