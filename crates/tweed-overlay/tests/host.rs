//! The host's own packets into the overlay (`NodeConfig::host_port`, a TUN): routed to local pods and through peers
//! as a kernel node routes its own packets through `cni0` and `flannel.1`, the pods' answers back to the TUN, and
//! every bad packet from the host a counted drop.

mod common;

use std::net::Ipv4Addr;

use common::{Cluster, Received, icmp_echo, ipv4_packet, pod_ip};
use tweed_overlay::{DropReason, Node};
use tweed_packet::PortId;
use tweed_wire::{icmpv4, ipv4};

const HOST: PortId = PortId(9);

/// Node `i`'s gateway (the address the host has on its TUN, as `cni0` has on a kernel node).
fn gateway(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, i, 1)
}

fn with_host(mut c: Cluster) -> Cluster {
    for node in &mut c.nodes {
        let mut config = node.to_config();
        config.host_port = Some(HOST.0);
        *node = Node::new(config).unwrap();
    }
    c
}

fn echo(src: Ipv4Addr, dst: Ipv4Addr, seq: u16, ttl: u8) -> Vec<u8> {
    let icmp = icmp_echo(icmpv4::Message::ECHO_REQUEST, 0x4054, seq, &[0x33; 40]);
    ipv4_packet(src, dst, ipv4::Protocol::ICMP, ttl, true, &icmp)
}

#[test]
fn the_host_reaches_local_and_remote_pods() {
    for kind in ["vxlan", "udp", "host-gw"] {
        for sockets in [false, true] {
            if sockets && kind == "host-gw" {
                continue;
            }
            let c = if sockets { Cluster::over_sockets(kind, 2) } else { Cluster::new(kind, 2) };
            let mut c = with_host(c);
            c.inject(0, HOST, echo(gateway(1), pod_ip(1, 2), 1, 64));
            c.inject(0, HOST, echo(gateway(1), pod_ip(2, 1), 2, 64));
            c.run();
            let what = format!("{kind} sockets={sockets}");
            // The host's own packets are not forwarded by node 1 (TTL as sent); node 2 routes the remote one.
            assert_eq!(c.pod(1, 2).received, [Received::EchoRequest { from: gateway(1), seq: 1, ttl: 64 }], "{what}");
            assert_eq!(c.pod(2, 1).received, [Received::EchoRequest { from: gateway(1), seq: 2, ttl: 63 }], "{what}");
            // Both answers come back to node 1's TUN, bare IP packets to the host's address.
            let mut replies: Vec<(Ipv4Addr, Ipv4Addr, u8, u16)> = c
                .tun_log
                .iter()
                .map(|(node, bytes)| {
                    assert_eq!(*node, 0, "{what}: a TUN packet from node {node}");
                    let ip = ipv4::Packet::new_checked(&bytes[..]).unwrap();
                    assert!(ip.verify_checksum());
                    let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
                    assert_eq!(icmp.msg_type(), icmpv4::Message::ECHO_REPLY, "{what}");
                    (ip.src_addr(), ip.dst_addr(), ip.ttl(), icmp.echo_seq_no())
                })
                .collect();
            replies.sort_by_key(|r| r.3);
            assert_eq!(
                replies,
                [(pod_ip(1, 2), gateway(1), 64, 1), (pod_ip(2, 1), gateway(1), 63, 2)],
                "{what}: delivered to the node's own address, the local reply is not forwarded; the remote one is, once"
            );
            let n1 = c.nodes[0].counters();
            assert_eq!((n1.rx_host, n1.to_tun, n1.total_drops()), (2, 2, 0), "{what}: {n1:?}");
            assert!(c.drops.is_empty(), "{what}: {:?}", c.drops);
        }
    }
}

#[test]
fn bad_packets_from_the_host_are_counted_drops() {
    let mut c = with_host(Cluster::new("vxlan", 2));
    let good = echo(gateway(1), pod_ip(2, 1), 1, 64);
    let mut bad_checksum = good.clone();
    bad_checksum[10] ^= 0xff;
    let mut v6 = good.clone();
    v6[0] = 0x60;
    let mut lying_length = good.clone();
    lying_length[2..4].copy_from_slice(&4000u16.to_be_bytes());
    let mut big = echo(gateway(1), pod_ip(2, 1), 2, 64);
    big.resize(1480, 0);
    big[2..4].copy_from_slice(&1480u16.to_be_bytes());
    big[10..12].copy_from_slice(&[0, 0]);
    let sum = tweed_wire::checksum::checksum(&big[..20]);
    big[10..12].copy_from_slice(&sum.to_be_bytes());
    // (packet, the node that drops it: 0 is the host's, 1 the far one, reason)
    let cases = [
        (vec![], 0, DropReason::Ipv4Malformed),
        (good[..10].to_vec(), 0, DropReason::Ipv4Malformed),
        (lying_length, 0, DropReason::Ipv4Malformed),
        (bad_checksum, 0, DropReason::Ipv4Checksum),
        (v6, 0, DropReason::Ipv4Version),
        (echo(gateway(1), gateway(1), 3, 64), 0, DropReason::HostToSelf),
        (echo(gateway(1), Ipv4Addr::new(192, 168, 0, 1), 4, 64), 0, DropReason::HostToSelf),
        (echo(gateway(1), Ipv4Addr::new(8, 8, 8, 8), 5, 64), 0, DropReason::NoRoute),
        // The host's own TTL of 1 leaves its node as it is (as from a kernel node's host); the far node, the
        // first to forward it, drops it.
        (echo(gateway(1), pod_ip(2, 1), 6, 1), 1, DropReason::TtlExpired),
        (big, 0, DropReason::TooBig),
    ];
    for (packet, at, reason) in &cases {
        let before = c.nodes[*at].counters().drop_count(*reason);
        c.inject(0, HOST, packet.clone());
        c.run();
        assert_eq!(c.nodes[*at].counters().drop_count(*reason), before + 1, "{reason}: {:?}", c.nodes[*at].counters());
        assert!(c.pod(2, 1).received.is_empty(), "{reason}: it reached the pod");
    }
    let n1 = c.nodes[0].counters();
    assert_eq!(n1.rx_host, cases.len() as u64);
    assert_eq!(n1.total_drops(), cases.len() as u64 - 1);
    // No route, TTL 1 (from node 2) and too big were answered with ICMP errors to the host, through the TUN.
    let errors: Vec<(Ipv4Addr, u8, u8, u16)> = c
        .tun_log
        .iter()
        .map(|(_, bytes)| {
            let ip = ipv4::Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(ip.dst_addr(), gateway(1));
            let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
            (ip.src_addr(), icmp.msg_type().0, icmp.msg_code(), icmp.next_hop_mtu())
        })
        .collect();
    assert_eq!(errors, [(gateway(1), 3, 0, 0), (gateway(2), 11, 0, 0), (gateway(1), 3, 4, 1450)], "{:?}", c.tun_log);
    // A TTL of 1 to a pod of the host's own node arrives: nothing forwards it.
    c.inject(0, HOST, echo(gateway(1), pod_ip(1, 1), 7, 1));
    c.run();
    assert_eq!(c.pod(1, 1).received, [Received::EchoRequest { from: gateway(1), seq: 7, ttl: 1 }]);
}

#[test]
fn the_host_port_must_be_its_own() {
    let c = Cluster::new("vxlan", 2);
    for port in [0, 1, 2] {
        let mut config = c.nodes[0].to_config();
        config.host_port = Some(port);
        assert!(Node::new(config).is_err(), "host port {port} accepted");
    }
    let mut config = c.nodes[0].to_config();
    config.underlay.socket_port = Some(100);
    config.host_port = Some(100);
    assert!(Node::new(config).is_err(), "the socket port accepted as host port");
}
