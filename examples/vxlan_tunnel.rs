//! A VXLAN tunnel between two tweed nodes over real UDP sockets on loopback; no root needed.
//!
//! ```text
//! cargo run --example vxlan_tunnel
//! ```
//!
//! Node A (pods 10.244.1.0/24, underlay 127.0.0.1) and node B (10.244.2.0/24, 127.0.0.2) each run in a
//! `tweed::io::Driver` with two ports: the pod's, an in-memory `MemPort` standing for the pod's `eth0`, and the
//! underlay, a `UdpPort` whose datagrams (the VXLAN header and the inner frame) enter the node on its *socket
//! port*, with the sender's address in `meta.remote()`. Pod 10.244.1.2 on A pings pod 10.244.2.2 on B: A routes
//! and encapsulates, the UDP payload crosses loopback, B's driver wakes on its socket, checks the datagram comes
//! from its peer, decapsulates and delivers to its pod; the reply goes back the same way.

use std::error::Error;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use tweed::io::{Driver, DriverConfig, Medium, MemPort, UdpOptions, UdpPort};
use tweed::overlay::{Node, NodeBuilder, PeerConfig, VxlanConfig};
use tweed::packet::PortId;
use tweed::wire::ethernet::{self, MacAddr};
use tweed::wire::{arp, dissect::dissect, icmpv4, ipv4};

const POD: PortId = PortId(1);
const SOCKET: PortId = PortId(9);

fn node(me: u8, peer: u8, port: u16) -> Result<Node> {
    let subnet = |i: u8| format!("10.244.{i}.0/24").parse();
    Ok(NodeBuilder::new(subnet(me)?, Ipv4Addr::new(127, 0, 0, me), MacAddr::new(2, 0, 0, 0, 1, me))
        .vxlan(VxlanConfig { port, ..VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, me)) })
        .pod_ports([POD.0])
        .socket_port(SOCKET)
        .peer(
            PeerConfig::new(subnet(peer)?, Ipv4Addr::new(127, 0, 0, peer))
                .with_vtep_mac(MacAddr::new(2, 0, 0, 0, 0, peer)),
        )
        .build()?)
}

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// A driver for node `me` with its pod's MemPort and a UDP socket on 127.0.0.`me`:`port` (0: one the kernel
/// picks); the port.
fn driver(me: u8, peer: u8, port: u16) -> Result<(Driver, u16)> {
    let udp = UdpPort::bind(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, me), port), UdpOptions::default())?;
    let port = udp.local_addr().port();
    let mut d = Driver::empty(node(me, peer, port)?, DriverConfig::default().buffers(256))?;
    d.add_port(POD, Box::new(MemPort::new(format!("pod{me}"), Medium::Ethernet)))?;
    d.add_port(SOCKET, Box::new(udp))?;
    Ok((d, port))
}

/// The pod's side of `d`'s pod port.
fn pod(d: &mut Driver) -> Result<&mut MemPort> {
    Ok(d.worker_mut().port_as::<MemPort>(POD).ok_or("no pod port")?)
}

/// Every frame the node sent its pod.
fn received(d: &mut Driver) -> Result<Vec<Vec<u8>>> {
    let mut frames = vec![];
    pod(d)?.drain_sent(|f, _| frames.push(f.to_vec()));
    Ok(frames)
}

/// One way through the tunnel: `frame` from the pod of `from`, over the sockets, to what `to` gives its pod.
fn leg(from: &mut Driver, to: &mut Driver, frame: &[u8]) -> Result<Vec<Vec<u8>>> {
    pod(from)?.inject(frame, None);
    from.round(Some(Duration::ZERO))?;
    // The driver sleeps until the datagram is on its socket.
    to.round(Some(Duration::from_secs(2)))?;
    let delivered = received(to)?;
    for f in &delivered {
        println!("to the pod: {}", dissect(f));
    }
    Ok(delivered)
}

/// An ICMP echo request (or reply) in an Ethernet frame.
fn echo(src_mac: MacAddr, dst_mac: MacAddr, src: Ipv4Addr, dst: Ipv4Addr, request: bool) -> Vec<u8> {
    let data = b"hello through the tunnel";
    let icmp = if request {
        icmpv4::Repr::EchoRequest { ident: 7, seq_no: 1, data }
    } else {
        icmpv4::Repr::EchoReply { ident: 7, seq_no: 1, data }
    };
    let ip = ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: ipv4::Protocol::ICMP,
        payload_len: icmp.buffer_len(),
        ttl: 64,
        dscp: 0,
        ecn: 0,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let eth = ethernet::Repr { src_addr: src_mac, dst_addr: dst_mac, vlan: None, ethertype: ethernet::EtherType::IPV4 };
    let mut f = vec![0u8; eth.buffer_len() + ip.total_len()];
    eth.emit(&mut ethernet::Frame::new_unchecked(&mut f[..]));
    ip.emit(&mut ipv4::Packet::new_unchecked(&mut f[14..]));
    icmp.emit(&mut icmpv4::Packet::new_unchecked(&mut f[34..]));
    f
}

/// The ping and its reply: the frames the two pods receive.
pub(crate) fn run() -> Result<Vec<Vec<u8>>> {
    // Both sockets on one port, as VXLAN nodes are: B's ephemeral port, then A on the same port of 127.0.0.1.
    let (mut b, port) = driver(2, 1, 0)?;
    let (mut a, _) = driver(1, 2, port)?;
    let (pod_a, pod_b) = (MacAddr::new(2, 0, 0, 0, 0xaa, 1), MacAddr::new(2, 0, 0, 0, 0xbb, 2));
    let (ip_a, ip_b) = (Ipv4Addr::new(10, 244, 1, 2), Ipv4Addr::new(10, 244, 2, 2));
    // Each pod asks for its gateway's MAC: its node learns where the pod is.
    for (d, mac, ip) in [(&mut a, pod_a, ip_a), (&mut b, pod_b, ip_b)] {
        let gw = d.node().config().gateway_ip();
        let mut req = [0u8; 42];
        ethernet::Repr { src_addr: mac, dst_addr: MacAddr::BROADCAST, vlan: None, ethertype: ethernet::EtherType::ARP }
            .emit(&mut ethernet::Frame::new_unchecked(&mut req[..]));
        arp::Repr::request(mac, ip, gw).emit(&mut arp::Packet::new_unchecked(&mut req[14..]));
        pod(d)?.inject(&req, None);
        d.round(Some(Duration::ZERO))?;
        received(d)?; // the ARP reply, to the pod
    }
    let request = echo(pod_a, a.node().config().gateway_mac(), ip_a, ip_b, true);
    let mut delivered = leg(&mut a, &mut b, &request)?;
    let reply = echo(pod_b, b.node().config().gateway_mac(), ip_b, ip_a, false);
    delivered.extend(leg(&mut b, &mut a, &reply)?);
    Ok(delivered)
}

fn main() -> Result<()> {
    let frames = run()?;
    println!("{} frames crossed the tunnel", frames.len());
    Ok(())
}
