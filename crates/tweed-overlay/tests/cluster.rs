//! The seeds' topology (three nodes, 10.244.{1,2,3}.0/24, underlay 192.168.0.0/24, two pods per node) for each
//! backend: ARP, ping and UDP between pods on one node and across nodes, hop by hop through the pipelines.

mod common;

use common::{Cluster, Received, pod_ip, vtep_mac};
use std::net::{Ipv4Addr, SocketAddr};
use tweed_overlay::Verdict;
use tweed_wire::dissect;

fn exchange(kind: &str) -> Cluster {
    exchange_in(Cluster::new(kind, 3))
}

fn exchange_in(mut c: Cluster) -> Cluster {
    // Same node: switched by the bridge, TTL untouched, nothing on the underlay.
    let f = c.pod(1, 1).ping(pod_ip(1, 2), 1, 64);
    c.send_from_pod(1, f, 1);
    c.run();
    assert_eq!(c.pod(1, 2).received, [Received::EchoRequest { from: pod_ip(1, 1), seq: 1, ttl: 64 }]);
    assert_eq!(c.pod(1, 1).received, [Received::EchoReply { from: pod_ip(1, 2), seq: 1, ttl: 64 }]);
    assert!(c.underlay_log.is_empty());
    assert!(c.nodes[0].counters().switched >= 2);

    // Across nodes: routed twice (TTL − 2), ARP for the gateway answered by node 1, node 2 asks for pod 2.1.
    let f = c.pod(1, 1).ping(pod_ip(2, 1), 2, 64);
    c.send_from_pod(1, f, 1);
    c.run();
    assert_eq!(c.pod(2, 1).received, [Received::EchoRequest { from: pod_ip(1, 1), seq: 2, ttl: 62 }]);
    assert_eq!(c.pod(1, 1).received[1], Received::EchoReply { from: pod_ip(2, 1), seq: 2, ttl: 62 });
    let gw_mac = c.nodes[0].config().gateway_mac();
    assert_eq!(c.pod(1, 1).neigh.get(&Ipv4Addr::new(10, 244, 1, 1)), Some(&gw_mac));
    assert_eq!(c.underlay_log.len(), 2);

    // UDP from node 1's second pod to node 3, echoed back.
    let f = c.pod(1, 2).send_udp(pod_ip(3, 1), 40000, 7, b"hello from 10.244.1.3");
    c.send_from_pod(1, f, 2);
    c.run();
    assert_eq!(
        c.pod(3, 1).received,
        [Received::Udp {
            from: pod_ip(1, 2),
            sport: 40000,
            dport: 7,
            data: b"hello from 10.244.1.3".to_vec(),
            ttl: 62
        }]
    );
    assert_eq!(
        c.pod(1, 2).received.last(),
        Some(&Received::Udp {
            from: pod_ip(3, 1),
            sport: 7,
            dport: 40000,
            data: b"hello from 10.244.1.3".to_vec(),
            ttl: 62
        })
    );

    // A pod pings its gateway: answered by the node.
    let f = c.pod(2, 2).ping(Ipv4Addr::new(10, 244, 2, 1), 3, 64);
    c.send_from_pod(2, f, 2);
    c.run();
    assert_eq!(c.pod(2, 2).received, [Received::EchoReply { from: Ipv4Addr::new(10, 244, 2, 1), seq: 3, ttl: 64 }]);

    // A pod of node 3 pings node 2's gateway across the overlay.
    let f = c.pod(3, 2).ping(Ipv4Addr::new(10, 244, 2, 1), 4, 64);
    c.send_from_pod(3, f, 2);
    c.run();
    assert_eq!(c.pod(3, 2).received, [Received::EchoReply { from: Ipv4Addr::new(10, 244, 2, 1), seq: 4, ttl: 63 }]);

    assert!(c.drops.is_empty(), "drops: {:?}", c.drops);
    for n in &c.nodes {
        assert_eq!(n.counters().total_drops(), 0, "{:?}", n.counters());
    }
    c
}

#[test]
fn test_cluster_vxlan() {
    let c = exchange("vxlan");
    for (from, verdict, bytes) in &c.underlay_log {
        let d = dissect::dissect(bytes);
        assert!(d.is_complete(), "{:?}", d.stop());
        let vx = d.vxlan().unwrap();
        assert_eq!(vx.vni().get(), 1);
        let udp = d.outer_udp().unwrap();
        assert_eq!(udp.dst_port(), 8472);
        assert!((32768..=60999).contains(&udp.src_port()));
        assert_eq!(udp.checksum(), 0);
        let ip = d.outer_ipv4().unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.ttl(), ip.dont_frag()), (64, false));
        let inner = d.inner_ethernet().unwrap();
        assert_eq!(inner.src_addr(), vtep_mac(*from as u8 + 1));
        let Verdict::Underlay { dst: SocketAddr::V4(dst), payload_offset } = *verdict else { panic!() };
        assert_eq!((dst.port(), payload_offset), (8472, 42));
        assert_eq!(ip.dst_addr(), *dst.ip());
        assert_eq!(inner.dst_addr(), vtep_mac(dst.ip().octets()[3]));
    }
}

#[test]
fn test_cluster_udp() {
    let c = exchange("udp");
    for (from, verdict, bytes) in &c.underlay_log {
        let ip = tweed_wire::ipv4::Packet::new_checked(&bytes[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.src_addr(), common::node_ip(*from as u8 + 1));
        let udp = tweed_wire::udp::Packet::new_checked(ip.payload()).unwrap();
        assert_eq!((udp.src_port(), udp.dst_port()), (8285, 8285));
        let inner = tweed_wire::ipv4::Packet::new_checked(udp.payload()).unwrap();
        assert!(inner.verify_checksum());
        assert_eq!(*verdict, Verdict::Underlay { dst: (ip.dst_addr(), 8285).into(), payload_offset: 42 });
    }
}

#[test]
fn test_cluster_host_gw() {
    let c = exchange("host-gw");
    for (from, verdict, bytes) in &c.underlay_log {
        let Verdict::Underlay { dst: SocketAddr::V4(dst), payload_offset: 14 } = *verdict else {
            panic!("{verdict:?}")
        };
        assert_eq!(dst.port(), 0);
        assert_eq!(&bytes[0..6], common::node_mac(dst.ip().octets()[3]).as_bytes());
        assert_eq!(&bytes[6..12], common::node_mac(*from as u8 + 1).as_bytes());
        let inner = tweed_wire::ipv4::Packet::new_checked(&bytes[14..]).unwrap();
        assert_eq!(u32::from(inner.src_addr()) >> 16, 0x0af4);
    }
}

/// The same exchanges with the underlay as a UDP socket gives it (payload + sender), for the two backends that
/// run over UDP; the checks on the datagram are those on a frame.
#[test]
fn test_cluster_over_sockets() {
    for kind in ["vxlan", "udp"] {
        let c = exchange_in(Cluster::over_sockets(kind, 3));
        for n in &c.nodes {
            assert_eq!(n.counters().total_drops(), 0, "{kind}: {:?}", n.counters().nonzero_drops().collect::<Vec<_>>());
            assert!(n.counters().from_peer > 0, "{kind}");
        }
    }
}

/// A datagram from an address that is no peer's, or whose VXLAN header is wrong, is a counted drop; a socket port
/// is refused for host-gw and when it is a pod port.
#[test]
fn test_socket_datagram_checks() {
    use common::{SOCKET, node_ip};
    use tweed_overlay::{ConfigError, DropReason, Node, Outputs};
    use tweed_packet::{Batch, Pool, PoolConfig};
    use tweed_switch::Instant;

    let mut c = Cluster::over_sockets("vxlan", 2);
    let f = c.pod(1, 1).ping(pod_ip(2, 1), 1, 64);
    c.send_from_pod(1, f, 1);
    c.run();
    let (_, verdict, frame) = c.underlay_log.last().cloned().expect("a tunnelled packet");
    let Verdict::Underlay { payload_offset, .. } = verdict else { panic!("{verdict:?}") };
    let payload = frame[usize::from(payload_offset)..].to_vec();
    let mut bad_flags = payload.clone();
    bad_flags[0] = 0;
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    for (remote, bytes, reason) in [
        (Ipv4Addr::new(192, 168, 0, 9), &payload, DropReason::UnknownPeer),
        (node_ip(1), &bad_flags, DropReason::VxlanMalformed),
        (node_ip(1), &payload[..4].to_vec(), DropReason::VxlanMalformed),
    ] {
        let node = &mut c.nodes[1];
        let before = node.counters().drop_count(reason);
        let mut buf = pool.get().unwrap();
        buf.extend_from_slice(bytes).unwrap();
        buf.meta_mut().ingress = SOCKET;
        buf.meta_mut().set_remote(core::net::SocketAddr::from((remote, 8472)));
        let mut batch = Batch::new(4);
        batch.push(buf).unwrap();
        let mut out = Outputs::new(8);
        node.process(Instant::from_secs(2), &mut pool, &mut batch, &mut out);
        assert_eq!(out.as_slice().last().map(|(_, v)| *v), Some(Verdict::Drop(reason)));
        assert_eq!(node.counters().drop_count(reason), before + 1, "{reason:?}");
        out.recycle(&mut pool);
    }

    // Through a socket, a peer needs no underlay MAC (the kernel resolves it); without one it does.
    let mut config = c.nodes[0].to_config();
    config.peers[0].node_mac = None;
    assert!(Node::new(config.clone()).is_ok());
    config.underlay.socket_port = None;
    assert_eq!(
        Node::new(config).err(),
        Some(ConfigError::MissingMac { subnet: "10.244.2.0/24".parse().unwrap(), field: "node_mac" })
    );
    let mut config = c.nodes[0].to_config();
    config.underlay.socket_port = Some(1);
    assert_eq!(Node::new(config).err(), Some(ConfigError::InvalidPort(1)));
    let mut config = Cluster::new("host-gw", 2).nodes[0].to_config();
    config.underlay.socket_port = Some(SOCKET.0);
    assert_eq!(Node::new(config).err(), Some(ConfigError::InvalidPort(SOCKET.0)));
}
