//! Builders for tests over in-memory ports: two vxlan nodes (`192.168.0.1`, `.2`, pod subnets `10.244.1.0/24`,
//! `10.244.2.0/24`) and the frames their pods send.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};

use tweed_io::{DriverConfig, Medium, MemPort, Worker};
use tweed_overlay::Instant;
use tweed_overlay::{Node, NodeBuilder, NodeConfig, PeerConfig, VxlanConfig};
use tweed_packet::PortId;
use tweed_wire::checksum::checksum;
use tweed_wire::ethernet::MacAddr;

/// The node's port for the underlay socket's datagrams.
pub(crate) const SOCKET_PORT: PortId = PortId(9);

pub(crate) fn node_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 0, i)
}

pub(crate) fn node_mac(i: u8) -> MacAddr {
    MacAddr::new(2, 0, 0, 0, 1, i)
}

pub(crate) fn vtep_mac(i: u8) -> MacAddr {
    MacAddr::new(2, 0, 0, 0, 0, i)
}

pub(crate) fn subnet(i: u8) -> ipnet::Ipv4Net {
    format!("10.244.{i}.0/24").parse().unwrap()
}

pub(crate) fn pod_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, i, 2)
}

pub(crate) fn pod_mac(i: u8) -> MacAddr {
    MacAddr::new(2, 0, 0, 0, 0xaa, i)
}

/// Node `i` of two (1 or 2), one pod port (1), the other node as its peer.
pub(crate) fn config(i: u8) -> NodeConfig {
    let j = 3 - i;
    NodeBuilder::new(subnet(i), node_ip(i), node_mac(i))
        .vxlan(VxlanConfig::new(vtep_mac(i)))
        .socket_port(SOCKET_PORT)
        .pod_ports([1])
        .peer(PeerConfig::new(subnet(j), node_ip(j)).with_vtep_mac(vtep_mac(j)).with_node_mac(node_mac(j)))
        .into_config()
}

pub(crate) fn node(i: u8) -> Node {
    Node::new(config(i)).unwrap()
}

/// A worker for node `i` with a pod MemPort on port 1 and a datagram MemPort as its underlay.
pub(crate) fn worker(i: u8) -> Worker<tweed_overlay::Flannel, MemPort> {
    let mut w = Worker::new(node(i), DriverConfig::default().buffers(2048)).unwrap();
    w.add_port(PortId(1), MemPort::new(format!("pod{i}"), Medium::Ethernet)).unwrap();
    w.add_port(SOCKET_PORT, MemPort::new("udp", Medium::Datagram)).unwrap();
    w
}

pub(crate) fn eth(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend(dst.as_bytes());
    f.extend(src.as_bytes());
    f.extend(ethertype.to_be_bytes());
    f.extend(payload);
    f
}

/// An ICMP echo request from pod `from` to pod `to`, sequence `seq`, as an IPv4 packet.
pub(crate) fn ping(from: u8, to: u8, seq: u16) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0, 1];
    icmp.extend(seq.to_be_bytes());
    icmp.extend([0x55; 32]);
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let len = u16::try_from(20 + icmp.len()).unwrap();
    let mut ip = vec![0x45, 0];
    ip.extend(len.to_be_bytes());
    ip.extend([0, 1, 0x40, 0, 64, 1, 0, 0]);
    ip.extend(pod_ip(from).octets());
    ip.extend(pod_ip(to).octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend(icmp);
    ip
}

/// Pod `from`'s echo request to pod `to`, sent to its gateway's MAC (`gateway`).
pub(crate) fn ping_frame(gateway: MacAddr, from: u8, to: u8, seq: u16) -> Vec<u8> {
    eth(gateway, pod_mac(from), 0x0800, &ping(from, to, seq))
}

/// Pod `i`'s gratuitous ARP (a request for its own address): the node learns its MAC from it.
pub(crate) fn garp(i: u8) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend(pod_mac(i).as_bytes());
    a.extend(pod_ip(i).octets());
    a.extend([0; 6]);
    a.extend(pod_ip(i).octets());
    eth(MacAddr::BROADCAST, pod_mac(i), 0x0806, &a)
}

/// The underlay address node `i` sends from.
pub(crate) fn underlay_addr(i: u8) -> SocketAddr {
    SocketAddr::new(node_ip(i).into(), 40_000)
}

/// Pod `i`'s answer to an ARP request for its address (`None`: `frame` is no such request).
pub(crate) fn arp_answer(i: u8, frame: &[u8]) -> Option<Vec<u8>> {
    if frame.len() < 42 || frame[12..14] != [8, 6] || frame[20..22] != [0, 1] || frame[38..42] != pod_ip(i).octets() {
        return None;
    }
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 2];
    a.extend(pod_mac(i).as_bytes());
    a.extend(pod_ip(i).octets());
    a.extend(&frame[22..32]);
    Some(eth(MacAddr::from(<[u8; 6]>::try_from(&frame[22..28]).ok()?), pod_mac(i), 0x0806, &a))
}

/// Moves what `from` sent on its underlay into `to`'s underlay, as from `from`'s node address. Returns how many.
pub(crate) fn carry(from: &mut MemPort, from_addr: SocketAddr, to: &mut MemPort) -> usize {
    let mut n = 0;
    from.drain_sent(|bytes, dst| {
        assert!(dst.is_some(), "a datagram without its destination");
        assert!(to.inject(bytes, Some(from_addr)));
        n += 1;
    });
    n
}

/// Runs one ping from pod 1 to pod 2 through both workers, pod 2 answering node 2's ARP request: then node 2
/// knows its pod.
pub(crate) fn resolve(
    a: &mut Worker<tweed_overlay::Flannel, MemPort>,
    b: &mut Worker<tweed_overlay::Flannel, MemPort>,
) {
    let gw = a.node().config().gateway_mac();
    a.port_mut(PortId(1)).unwrap().inject(&ping_frame(gw, 1, 2, 1000), None);
    a.round(Instant::from_secs(1));
    carry(a.port_mut(SOCKET_PORT).unwrap(), underlay_addr(1), b.port_mut(SOCKET_PORT).unwrap());
    b.round(Instant::from_secs(1));
    let (req, _) = b.port_mut(PortId(1)).unwrap().take_sent().unwrap();
    b.port_mut(PortId(1)).unwrap().inject(&arp_answer(2, &req).unwrap(), None);
    b.round(Instant::from_secs(1));
    let (released, _) = b.port_mut(PortId(1)).unwrap().take_sent().unwrap();
    assert_eq!(&released[40..42], &1000u16.to_be_bytes(), "the ping that waited for ARP");
}
