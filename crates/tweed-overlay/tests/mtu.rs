//! The MTU rule against hostile and busy senders: echo replies as big as their requests, fragmentation of
//! oversized packets without DF (RFC 791), and "fragmentation needed" that a flood of TTL-expired packets cannot
//! crowd out (ICMP errors are limited per source).

mod common;

use std::net::Ipv4Addr;

use common::{Cluster, Received, arp_request, drop_named, eth, node_ip, pod_ip, pod_mac, run_bytes, subnet};
use tweed_overlay::{NodeBuilder, Verdict};
use tweed_packet::{Pool, PoolConfig, PortId};
use tweed_wire::ipv4;

const P1: PortId = PortId(1);

/// An echo request to the gateway from a peer whose inner MTU is larger (9000-byte underlay): the reply is as big
/// as the request, so it obeys the MTU rule like any packet: fragmented without DF, dropped (no ICMP about the
/// node's own packet) with DF. Found by the `node` fuzz target (`fuzz/regressions/node/echo-reply-over-mtu`).
#[test]
fn test_echo_reply_obeys_the_mtu() {
    let mut n1 = common::node("vxlan", 1, 2);
    let mut n2 = NodeBuilder::new(subnet(2), node_ip(2), common::node_mac(2))
        .backend(common::backend("vxlan", 2))
        .pod_ports([1, 2])
        .peer(common::peer(1))
        .mtu(9000)
        .build()
        .unwrap();
    let cfg = PoolConfig { buffers: 64, capacity: 128 + 9018, ..PoolConfig::default() };
    let mut pool = Pool::new(cfg).unwrap();
    let run = run_bytes;
    let gw1 = n1.config().gateway_ip();
    let gw2 = n2.config().gateway_ip();
    run(&mut n2, &mut pool, P1, vec![arp_request(pod_mac(2, 1), pod_ip(2, 1), gw2)]);
    for df in [false, true] {
        // 1468 bytes of IPv4: more than node 1's inner MTU (1450), less than node 2's.
        let echo = common::icmp_echo(tweed_wire::icmpv4::Message::ECHO_REQUEST, 7, 1, &[0x5a; 1440]);
        let request = common::ipv4_packet(pod_ip(2, 1), gw1, ipv4::Protocol::ICMP, 64, df, &echo);
        assert_eq!(request.len(), 1468);
        let mut f = eth(n2.config().gateway_mac(), pod_mac(2, 1), 0x0800);
        f.extend_from_slice(&request);
        let wire = run(&mut n2, &mut pool, P1, vec![f]);
        assert!(matches!(wire[..], [(_, Verdict::Underlay { .. })]), "{df}: {wire:?}");
        let out = run(&mut n1, &mut pool, common::UNDERLAY, wire.into_iter().map(|(b, _)| b).collect());
        let replies: Vec<_> = out.iter().filter(|(_, v)| matches!(v, Verdict::Underlay { .. })).collect();
        for (bytes, _) in &replies {
            assert!(bytes.len() <= 14 + 1500, "df {df}: a reply of {} bytes on a 1500-byte underlay", bytes.len());
        }
        let want = if df { 0 } else { 2 };
        assert_eq!(replies.len(), want, "df {df}: {out:?}");
    }
    assert_eq!(n1.counters().echo_replies, 2);
    assert_eq!((n1.counters().fragmented, drop_named(&n1, "too_big")), (1, 1));
}

/// Finding 10: a 3000-byte UDP packet without DF from a pod of node 1 to a pod of node 2 crosses vxlan as
/// fragments (each within the underlay MTU) that node 2 delivers and that reassemble to the original.
#[test]
fn test_non_df_packet_is_fragmented() {
    let mut n1 = common::node("vxlan", 1, 2);
    let mut n2 = common::node("vxlan", 2, 2);
    let cfg = PoolConfig { buffers: 64, capacity: 128 + 9018, ..PoolConfig::default() };
    let mut pool = Pool::new(cfg).unwrap();
    let gw1 = n1.config().gateway_ip();
    let gw2 = n2.config().gateway_ip();
    let run = run_bytes;
    run(&mut n1, &mut pool, P1, vec![arp_request(pod_mac(1, 1), pod_ip(1, 1), gw1)]);
    run(&mut n2, &mut pool, P1, vec![arp_request(pod_mac(2, 1), pod_ip(2, 1), gw2)]);
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let u = common::udp_datagram(pod_ip(1, 1), pod_ip(2, 1), 5000, 9, &payload);
    let original = common::ipv4_packet(pod_ip(1, 1), pod_ip(2, 1), ipv4::Protocol::UDP, 64, false, &u);
    let mut f = eth(n1.config().gateway_mac(), pod_mac(1, 1), 0x0800);
    f.extend_from_slice(&original);
    let wire = run(&mut n1, &mut pool, P1, vec![f]);
    assert!(wire.len() >= 3, "{:?}", wire.iter().map(|(_, v)| v).collect::<Vec<_>>());
    for (bytes, v) in &wire {
        assert!(matches!(v, Verdict::Underlay { .. }), "{v:?}");
        assert!(bytes.len() <= 14 + 1500, "fragment of {} bytes", bytes.len());
    }
    let delivered = run(&mut n2, &mut pool, common::UNDERLAY, wire.into_iter().map(|(b, _)| b).collect());
    // Reassemble (RFC 791): by offset, the last one without MF.
    let mut whole = vec![0u8; 0];
    let mut pieces: Vec<(usize, Vec<u8>, bool)> = Vec::new();
    let mut header = None;
    for (bytes, v) in &delivered {
        assert_eq!(*v, Verdict::Port(P1));
        let ip = ipv4::Packet::new_checked(&bytes[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert!(!ip.dont_frag());
        assert_eq!(ip.ident(), 0x1234);
        assert_eq!(ip.ttl(), 62);
        pieces.push((usize::from(ip.frag_offset()), ip.payload().to_vec(), ip.more_frags()));
        if ip.frag_offset() == 0 {
            header = Some(bytes[14..34].to_vec());
        }
    }
    pieces.sort_by_key(|p| p.0);
    for (off, data, more) in &pieces {
        assert_eq!(*off, whole.len(), "a hole or an overlap at {off}");
        whole.extend_from_slice(data);
        assert_eq!(*more, *off + data.len() < u.len());
    }
    assert_eq!(whole, u);
    let header = header.expect("no first fragment");
    assert_eq!(header[12..20], original[12..20]);
    assert_eq!(n1.counters().to_peer, pieces.len() as u64);
}

/// Finding 10: one pod sending TTL 1 as fast as it can uses up its own ICMP budget only: another pod's
/// "fragmentation needed" still comes back.
#[test]
fn test_ttl_flood_leaves_frag_needed_intact() {
    let mut c = Cluster::new("vxlan", 2);
    for p in [1, 2] {
        let f = c.pod(1, p).ping(pod_ip(2, 1), 1, 64);
        c.send_from_pod(1, f, p);
    }
    c.run();
    for _ in 0..3 {
        for _ in 0..200 {
            let f = c.pod(1, 1).ping(pod_ip(2, 1), 2, 1);
            c.send_from_pod(1, f, 1);
        }
        c.run();
    }
    // Pod 1 got its burst (50) and no more.
    assert_eq!(c.nodes[0].counters().icmp_errors, 50);
    assert_eq!(c.nodes[0].counters().icmp_rate_limited, 550);
    frag_needed_still_answered(&mut c);
}

/// After a TTL flood from pod 1 of node 1: pod 2's too-big DF datagram still gets its "fragmentation needed".
fn frag_needed_still_answered(c: &mut Cluster) {
    let f = c.pod(1, 2).send_udp(pod_ip(2, 1), 5000, 9, &[0u8; 1460]);
    c.send_from_pod(1, f, 2);
    c.run();
    assert_eq!(
        c.pod(1, 2).received.last(),
        Some(&Received::Icmp { from: Ipv4Addr::new(10, 244, 1, 1), msg_type: 3, code: 4, mtu: 1450 })
    );
}

/// Finding 10, without port security: a pod flooding TTL 1 from 240 addresses of the subnet (5 packets each) is
/// still one source for the ICMP limit (its port), and cannot use up the global budget that another pod's
/// "fragmentation needed" needs.
#[test]
fn test_ttl_flood_from_many_addresses_is_one_source() {
    let mut c = Cluster::new("vxlan", 2);
    for p in [1, 2] {
        let f = c.pod(1, p).ping(pod_ip(2, 1), 1, 64);
        c.send_from_pod(1, f, p);
    }
    c.run();
    let gw = c.nodes[0].config().gateway_mac();
    for round in 0..6u32 {
        for k in 0..200u32 {
            let src = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 1, 10)) + (round * 200 + k) % 240);
            let u = common::udp_datagram(src, pod_ip(2, 1), 5000, 9, &[0; 8]);
            let mut f = eth(gw, pod_mac(1, 1), 0x0800);
            f.extend(common::ipv4_packet(src, pod_ip(2, 1), ipv4::Protocol::UDP, 1, false, &u));
            c.inject(0, P1, f);
        }
        c.run();
    }
    assert_eq!(c.nodes[0].counters().icmp_errors, 50);
    assert_eq!(c.nodes[0].counters().icmp_rate_limited, 1150);
    frag_needed_still_answered(&mut c);
}
