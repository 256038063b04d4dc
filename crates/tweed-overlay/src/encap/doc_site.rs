// The hidden harness of the examples that run packets through a node (`Peer`, `PeerTable`, the `Encapsulation`
// methods, `Control`, `Node`): included by their hidden lines (`include!`), not a module of the crate.
use core::net::SocketAddr;
use tweed_overlay::encap::*;
use tweed_overlay::{ConfigError, DropReason, Instant, Node, NodeBuilder, Outputs, PeerConfig, UdpConfig, Verdict};
use tweed_packet::{Batch, PacketBuf, Pool, PoolConfig, PortId};
// A site: its TUN on port 1 (10.1.0.0/24), datagrams from its underlay socket on port 9, one peer.
fn site<E: Encapsulation>(encap: E, peer: PeerConfig) -> Result<Node<E>, ConfigError> {
    let b = NodeBuilder::routed([192, 168, 0, 1].into(), tweed_wire::ethernet::MacAddr::new(2, 0, 0, 0, 0, 1));
    let b = b.udp(UdpConfig::default()).socket_port(PortId(9)).ip_port(1).route("10.1.0.0/24".parse().unwrap(), 1);
    Node::with_encapsulation(b.peer(peer).into_config(), encap)
}
// The last output of `node` for `bytes` on `port` (from `from`, port 7000, on the socket port): the packet's own,
// after those the node originated on the way.
fn run<E: Encapsulation>(node: &mut Node<E>, port: u16, from: [u8; 4], bytes: &[u8]) -> (Vec<u8>, Verdict) {
    let (mut pool, mut batch, mut out) = (Pool::new(PoolConfig::default()).unwrap(), Batch::new(1), Outputs::new(8));
    let mut buf = pool.get().unwrap();
    buf.extend_from_slice(bytes).unwrap();
    buf.meta_mut().ingress = PortId(port);
    buf.meta_mut().set_remote((core::net::Ipv4Addr::from(from), 7000).into());
    batch.push(buf).unwrap();
    node.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
    out.drain().last().map(|(b, v)| (b.data().to_vec(), v)).unwrap()
}
// What the peer's node sends: `header`, then an IPv4 packet from 10.2.0.7 to 10.1.0.5.
fn datagram(header: &[u8]) -> Vec<u8> {
    [header, &ipv4([10, 2, 0, 7], [10, 1, 0, 5])].concat()
}
fn ipv4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    use tweed_wire::ipv4::{Packet, Protocol, Repr};
    let mut p = vec![0u8; 28];
    let (dscp, ecn, ident, dont_frag, more_frags, frag_offset) = (0, 0, 1, false, false, 0);
    let (src_addr, dst_addr, protocol, payload_len, ttl) = (src.into(), dst.into(), Protocol::UDP, 8, 64);
    Repr { src_addr, dst_addr, protocol, payload_len, ttl, dscp, ecn, ident, dont_frag, more_frags, frag_offset }
        .emit(&mut Packet::new_unchecked(&mut p[..]));
    p
}
