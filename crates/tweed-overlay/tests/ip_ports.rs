//! IP ports: TUN-like ports that carry IP packets without an Ethernet header, routed (no bridge, no ARP). A node
//! whose only ports are IP ports (a VPN's site) is valid; routes may send packets out of an IP port.

mod common;

use core::net::Ipv4Addr;

use common::{eth, pod_ip, pod_mac, subnet, udp_datagram};
use tweed_overlay::{ConfigError, DropReason, Node, NodeBuilder, Outputs, PeerConfig, UdpConfig, Verdict};
use tweed_packet::{Batch, Pool, PoolConfig, PortId};
use tweed_switch::Instant;
use tweed_wire::{icmpv4, ipv4};

const TUN: PortId = PortId(1);
const SOCKET: PortId = PortId(9);
const NODE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 2);

fn site(a: u8) -> ipnet::Ipv4Net {
    format!("10.{a}.0.0/24").parse().unwrap()
}

fn host(a: u8, h: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, a, 0, h)
}

/// Site 1's node: its TUN on port 1 with 10.1.0.0/24 behind it, site 2 through udp over a socket.
fn routed() -> Node {
    NodeBuilder::routed(NODE_IP, "02:00:00:00:07:01".parse().unwrap())
        .udp(UdpConfig::default())
        .socket_port(SOCKET)
        .ip_port(TUN.0)
        .route(site(1), TUN.0)
        .peer(PeerConfig::new(site(2), PEER_IP))
        .build()
        .unwrap()
}

fn run(node: &mut Node, pool: &mut Pool, port: PortId, bytes: &[u8]) -> Vec<(Vec<u8>, Verdict)> {
    let (mut batch, mut out) = (Batch::new(1), Outputs::new(16));
    let mut b = pool.get().unwrap();
    b.extend_from_slice(bytes).unwrap();
    b.meta_mut().ingress = port;
    b.meta_mut().set_remote((PEER_IP, 8285).into());
    batch.push(b).unwrap();
    node.process(Instant::from_secs(1), pool, &mut batch, &mut out);
    let v = out.as_slice().iter().map(|(b, v)| (b.data().to_vec(), *v)).collect();
    out.recycle(pool);
    v
}

fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8) -> Vec<u8> {
    let udp = udp_datagram(src, dst, 4000, 53, b"site to site");
    common::ipv4_packet(src, dst, ipv4::Protocol::UDP, ttl, false, &udp)
}

#[test]
fn a_node_without_a_bridge_routes_between_its_tun_and_a_peer() {
    let mut node = routed();
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    assert_eq!(node.config().pod_subnet, None);
    assert_eq!(node.inner_mtu(), 1500 - 28);

    // Out: from the TUN, an IP packet without an Ethernet header, to the peer, TTL decremented.
    let out = run(&mut node, &mut pool, TUN, &udp_packet(host(1, 5), host(2, 7), 64));
    let [(frame, verdict)] = &out[..] else { panic!("{out:?}") };
    assert_eq!(*verdict, Verdict::Underlay { dst: (PEER_IP, 8285).into(), payload_offset: 42 });
    let inner = ipv4::Packet::new_checked(&frame[42..]).unwrap();
    assert_eq!((inner.src_addr(), inner.dst_addr(), inner.ttl()), (host(1, 5), host(2, 7), 63));
    assert!(inner.verify_checksum());

    // In: the peer's datagram to a host behind the TUN leaves there as an IP packet.
    let out = run(&mut node, &mut pool, SOCKET, &udp_packet(host(2, 7), host(1, 5), 64));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].1, Verdict::Port(TUN));
    let ip = ipv4::Packet::new_checked(&out[0].0[..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.ttl()), (host(2, 7), host(1, 5), 63));
    let c = node.counters();
    assert_eq!((c.rx_port, c.to_port, c.to_peer, c.from_peer), (1, 1, 1, 1));

    // The peer may speak only for its own subnet.
    let out = run(&mut node, &mut pool, SOCKET, &udp_packet(host(3, 7), host(1, 5), 64));
    assert_eq!(out[0].1, Verdict::Drop(DropReason::SpoofedSource));
    // Nothing is relayed from one peer to another, nor back.
    let out = run(&mut node, &mut pool, SOCKET, &udp_packet(host(2, 7), host(2, 8), 64));
    assert_eq!(out[0].1, Verdict::Drop(DropReason::NotLocal));
    // Nowhere to go.
    let out = run(&mut node, &mut pool, TUN, &udp_packet(host(1, 5), host(9, 1), 64));
    assert!(out.iter().any(|(_, v)| *v == Verdict::Drop(DropReason::NoRoute)), "{out:?}");
}

#[test]
fn the_node_answers_pings_to_itself_on_an_ip_port() {
    let mut node = routed();
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let echo = common::icmp_echo(icmpv4::Message::ECHO_REQUEST, 7, 1, b"hello");
    let ping = common::ipv4_packet(host(1, 5), NODE_IP, ipv4::Protocol::ICMP, 64, false, &echo);
    let out = run(&mut node, &mut pool, TUN, &ping);
    let [(reply, Verdict::Port(TUN))] = &out[..] else { panic!("{out:?}") };
    let ip = ipv4::Packet::new_checked(&reply[..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (NODE_IP, host(1, 5)));
    assert_eq!(ip.payload()[0], icmpv4::Message::ECHO_REPLY.0);
    // Anything else for the node itself: no host port to hand it to.
    let out = run(&mut node, &mut pool, TUN, &udp_packet(host(1, 5), NODE_IP, 64));
    assert_eq!(out[0].1, Verdict::Drop(DropReason::NoHostPort));
    // A TTL that runs out here: time exceeded from the node's own address (it has no gateway address).
    let out = run(&mut node, &mut pool, TUN, &udp_packet(host(1, 5), host(2, 7), 1));
    let err = out.iter().find(|(_, v)| *v == Verdict::Port(TUN)).expect("an ICMP error to the TUN");
    let ip = ipv4::Packet::new_checked(&err.0[..]).unwrap();
    assert_eq!((ip.src_addr(), ip.protocol()), (NODE_IP, ipv4::Protocol::ICMP));
    assert_eq!(ip.payload()[0], icmpv4::Message::TIME_EXCEEDED.0);
}

#[test]
fn pods_reach_an_ip_port_through_a_route() {
    let mut node = NodeBuilder::new(subnet(1), NODE_IP, "02:00:00:00:07:01".parse().unwrap())
        .pod_ports([1])
        .ip_port(5)
        .route("10.9.0.0/16".parse().unwrap(), 5)
        .build()
        .unwrap();
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let mut f = eth(pod_mac(1, 0), pod_mac(1, 1), 0x0800);
    f.extend(udp_packet(pod_ip(1, 1), Ipv4Addr::new(10, 9, 1, 1), 64));
    let out = run(&mut node, &mut pool, PortId(1), &f);
    let [(packet, Verdict::Port(PortId(5)))] = &out[..] else { panic!("{out:?}") };
    let ip = ipv4::Packet::new_checked(&packet[..]).unwrap();
    assert_eq!((ip.dst_addr(), ip.ttl()), (Ipv4Addr::new(10, 9, 1, 1), 63));
    // From the IP port to a pod: the node asks for the pod's MAC first (an ARP request out of its port).
    let out = run(&mut node, &mut pool, PortId(5), &udp_packet(Ipv4Addr::new(10, 9, 1, 1), pod_ip(1, 1), 64));
    assert_eq!(out.iter().map(|(_, v)| *v).collect::<Vec<_>>(), [Verdict::Port(PortId(1))]);
    assert_eq!(&out[0].0[12..14], &[0x08, 0x06]);
    assert_eq!(node.arp_pending(), 1);
}

#[test]
fn ip_ports_and_routes_are_checked() {
    let base = || {
        NodeBuilder::routed(NODE_IP, "02:00:00:00:07:01".parse().unwrap())
            .udp(UdpConfig::default())
            .socket_port(SOCKET)
            .ip_port(1)
    };
    // A routed node has no pod ports, and routes go to IP ports without overlapping.
    assert_eq!(base().pod_ports([2]).build().err(), Some(ConfigError::InvalidPort(2)));
    assert_eq!(base().route(site(1), 3).build().err(), Some(ConfigError::InvalidPort(3)));
    assert_eq!(
        base().route(site(1), 1).route("10.1.0.128/25".parse().unwrap(), 1).build().err(),
        Some(ConfigError::Overlap("10.1.0.128/25".parse().unwrap()))
    );
    assert_eq!(base().ip_port(0).build().err(), Some(ConfigError::InvalidPort(0)), "the underlay's port");
    // A peer may not overlap a route, nor a route a peer.
    let mut node = base().route(site(1), 1).build().unwrap();
    let err = node.add_peer(PeerConfig::new("10.1.0.0/16".parse().unwrap(), PEER_IP)).unwrap_err();
    assert_eq!(err, ConfigError::Overlap("10.1.0.0/16".parse().unwrap()));
    node.add_peer(PeerConfig::new(site(2), PEER_IP)).unwrap();
    let control = node.control_mut().unwrap();
    assert_eq!(control.add_route(site(2), 1), Err(ConfigError::Overlap(site(2))));
    control.add_route(site(3), 1).unwrap();
    control.remove_route(site(3)).unwrap();
    assert_eq!(control.remove_route(site(2)), Err(ConfigError::UnknownPeer(site(2))), "a peer, not a route");
    // An IPv6 underlay is not carried yet.
    let v6: core::net::IpAddr = "2001:db8::2".parse().unwrap();
    assert_eq!(node.add_peer(PeerConfig::new(site(4), v6)), Err(ConfigError::Ipv6Unsupported(v6)));
}
