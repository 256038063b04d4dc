//! A VXLAN tunnel between two tweed nodes over real UDP sockets on loopback; no root needed.
//!
//! ```text
//! cargo run --example vxlan_tunnel
//! ```
//!
//! Node A (pods 10.244.1.0/24, underlay 127.0.0.1) and node B (10.244.2.0/24, 127.0.0.2) each have a pod port and
//! a *socket port*: what a `std::net::UdpSocket` receives (the VXLAN header and the inner frame) enters there, with
//! the sender's address in `meta.remote()`. Pod 10.244.1.2 on A pings pod 10.244.2.2 on B: A routes and
//! encapsulates, the UDP payload (`data()[payload_offset..]` of the `Verdict::Underlay` frame) crosses loopback, B
//! checks it comes from its peer, decapsulates and delivers to its pod; the reply goes back the same way.

use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use tweed::overlay::{Instant, Node, NodeBuilder, Outputs, PeerConfig, Verdict, VxlanConfig};
use tweed::packet::{Batch, Pool, PoolConfig, PortId};
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

/// Runs `bytes` (from `ingress`, sent by `remote`) through `node`; returns what came out.
fn feed(
    node: &mut Node,
    pool: &mut Pool,
    bytes: &[u8],
    ingress: PortId,
    remote: Ipv4Addr,
) -> Result<Vec<(Vec<u8>, Verdict)>> {
    let (mut batch, mut out) = (Batch::new(1), Outputs::new(16));
    let mut buf = pool.get().ok_or("pool empty")?;
    buf.extend_from_slice(bytes)?;
    buf.meta_mut().ingress = ingress;
    buf.meta_mut().set_remote((remote, 8472).into());
    batch.push(buf).map_err(|_| "batch full")?;
    node.process(Instant::from_secs(1), pool, &mut batch, &mut out);
    let mut frames = vec![];
    for (buf, verdict) in out.drain() {
        frames.push((buf.data().to_vec(), verdict));
        pool.put(buf);
    }
    Ok(frames)
}

/// One way through the tunnel: `frame` from the pod on `from`, over the sockets, to what `to` outputs.
fn leg(
    from: (&mut Node, &UdpSocket),
    to: (&mut Node, &UdpSocket),
    pool: &mut Pool,
    frame: &[u8],
) -> Result<Vec<Vec<u8>>> {
    for (bytes, verdict) in feed(from.0, pool, frame, POD, Ipv4Addr::UNSPECIFIED)? {
        let Verdict::Underlay { dst, payload_offset } = verdict else {
            return Err(format!("{verdict:?}").into());
        };
        from.1.send_to(&bytes[usize::from(payload_offset)..], dst)?;
    }
    let mut datagram = [0u8; 2048];
    let (n, sender) = to.1.recv_from(&mut datagram)?;
    let SocketAddr::V4(sender) = sender else { return Err("an IPv6 sender".into()) };
    let mut delivered = vec![];
    for (bytes, verdict) in feed(to.0, pool, &datagram[..n], SOCKET, *sender.ip())? {
        println!("{verdict:?}: {}", dissect(&bytes));
        delivered.push(bytes);
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
    let sock_b = UdpSocket::bind("127.0.0.2:0")?;
    let port = sock_b.local_addr()?.port();
    let sock_a = UdpSocket::bind(("127.0.0.1", port))?;
    for s in [&sock_a, &sock_b] {
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
    }
    let (mut a, mut b) = (node(1, 2, port)?, node(2, 1, port)?);
    let mut pool = Pool::new(PoolConfig::default())?;
    let (pod_a, pod_b) = (MacAddr::new(2, 0, 0, 0, 0xaa, 1), MacAddr::new(2, 0, 0, 0, 0xbb, 2));
    let (ip_a, ip_b) = (Ipv4Addr::new(10, 244, 1, 2), Ipv4Addr::new(10, 244, 2, 2));
    // Each pod asks for its gateway's MAC: its node learns where the pod is.
    for (node, mac, ip) in [(&mut a, pod_a, ip_a), (&mut b, pod_b, ip_b)] {
        let gw = node.config().gateway_ip();
        let mut req = [0u8; 42];
        ethernet::Repr { src_addr: mac, dst_addr: MacAddr::BROADCAST, vlan: None, ethertype: ethernet::EtherType::ARP }
            .emit(&mut ethernet::Frame::new_unchecked(&mut req[..]));
        arp::Repr::request(mac, ip, gw).emit(&mut arp::Packet::new_unchecked(&mut req[14..]));
        feed(node, &mut pool, &req, POD, Ipv4Addr::UNSPECIFIED)?; // the ARP reply, to the pod
    }
    let request = echo(pod_a, a.config().gateway_mac(), ip_a, ip_b, true);
    let mut delivered = leg((&mut a, &sock_a), (&mut b, &sock_b), &mut pool, &request)?;
    let reply = echo(pod_b, b.config().gateway_mac(), ip_b, ip_a, false);
    delivered.extend(leg((&mut b, &sock_b), (&mut a, &sock_a), &mut pool, &reply)?);
    Ok(delivered)
}

fn main() -> Result<()> {
    let frames = run()?;
    println!("{} frames crossed the tunnel", frames.len());
    Ok(())
}
