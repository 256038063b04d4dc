//! Embedding a node in one's own event loop: std sockets, one's own clock, no root, no async runtime.
//!
//! ```text
//! cargo run --example event_loop
//! ```
//!
//! The node is sans-I/O: it never reads a clock or touches a socket. Here its two pod ports are UDP sockets on
//! loopback, each carrying one Ethernet frame per datagram to and from a "pod" socket: a port type of this
//! example's own (`Wire`), plugged into tweed through the `tweed::io::Port` trait. A `tweed::io::Worker` holds
//! the node and the ports; each turn of the loop runs one of its rounds (read whatever waits on the ports straight
//! into pool buffers, run the batch through the node, send each output where its verdict says) at the loop's own
//! `std::time::Instant` turned into a `tweed::overlay::Instant`. The pods ARP for their gateway, pod 1 pings the
//! gateway and sends a frame to pod 2 (switched by the node's bridge); the loop stops when it has been idle for
//! 100 ms.

use std::error::Error;
use std::io;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant as Clock};

use tweed::io::{DriverConfig, Medium, Msg, Port, Rx, Sent, Worker};
use tweed::overlay::{Flannel, Instant, NodeBuilder};
use tweed::packet::PortId;
use tweed::wire::ethernet::{EtherType, Frame, MacAddr, Repr};
use tweed::wire::{arp, dissect::dissect};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// A pod: its socket, MAC and address.
struct Pod(UdpSocket, MacAddr, Ipv4Addr);

/// The node's end of a pod's wire: a non-blocking socket connected to the pod's, one frame per datagram.
struct Wire(UdpSocket, String);

impl Port for Wire {
    fn name(&self) -> &str {
        &self.1
    }

    fn medium(&self) -> Medium {
        Medium::Ethernet
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.0.as_fd())
    }

    /// Straight into pool buffers: `recv_area_mut`, then `commit_recv` of what the datagram held.
    fn recv(&mut self, rx: &mut Rx<'_>) -> io::Result<()> {
        rx.recv_each(|buf| match self.0.recv(buf.recv_area_mut()) {
            Ok(n) => buf.commit_recv(n).map(|()| true).map_err(io::Error::other),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        })
    }

    fn send(&mut self, msgs: &[Msg<'_>], _scratch: &mut [u8]) -> Sent {
        Sent { sent: msgs.iter().filter(|m| self.0.send(m.data).is_ok()).count(), coalesced: 0 }
    }
}

fn frame(src: MacAddr, dst: MacAddr, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + payload.len()];
    Repr { src_addr: src, dst_addr: dst, vlan: None, ethertype }.emit(&mut Frame::new_unchecked(&mut f[..]));
    f[14..].copy_from_slice(payload);
    f
}

/// Runs the scenario; returns the frames each pod received, dissected.
pub(crate) fn run() -> Result<[Vec<String>; 2]> {
    let node =
        NodeBuilder::new("10.244.1.0/24".parse()?, Ipv4Addr::new(192, 168, 0, 1), MacAddr::new(2, 0, 0, 0, 1, 1))
            .host_gw()
            .pod_ports([1, 2])
            .build()?;
    let (gw_ip, gw_mac) = (node.config().gateway_ip(), node.config().gateway_mac());
    let mut worker: Worker<Flannel, Wire> = Worker::new(node, DriverConfig::default().buffers(256))?;
    // The node's ports and the pods at their other ends.
    let mut pods = vec![];
    for i in 1..=2u8 {
        let (port, pod) = (UdpSocket::bind("127.0.0.1:0")?, UdpSocket::bind("127.0.0.1:0")?);
        port.connect(pod.local_addr()?)?;
        pod.connect(port.local_addr()?)?;
        port.set_nonblocking(true)?;
        pod.set_nonblocking(true)?;
        worker.add_port(PortId(u16::from(i)), Wire(port, format!("wire{i}")))?;
        pods.push(Pod(pod, MacAddr::new(2, 0, 0, 0, 0xaa, i), Ipv4Addr::new(10, 244, 1, 1 + i)));
    }
    for Pod(sock, mac, ip) in &pods {
        let mut req = [0u8; 28];
        arp::Repr::request(*mac, *ip, gw_ip).emit(&mut arp::Packet::new_unchecked(&mut req[..]));
        sock.send(&frame(*mac, MacAddr::BROADCAST, EtherType::ARP, &req))?;
    }
    // Pod 1 to pod 2 (bridged) and a ping to the gateway (answered by the node's router): an echo request, checksums
    // included, written out byte by byte.
    let ping =
        [0x45, 0, 0, 28, 0, 1, 0x40, 0, 64, 1, 0x22, 0xf6, 10, 244, 1, 2, 10, 244, 1, 1, 8, 0, 0xf7, 0xfe, 0, 1, 0, 0];
    pods[0].0.send(&frame(pods[0].1, pods[1].1, EtherType(0x88b5), b"hello, pod 2"))?;
    pods[0].0.send(&frame(pods[0].1, gw_mac, EtherType::IPV4, &ping))?;

    let start = Clock::now();
    let mut idle_since = Clock::now();
    while idle_since.elapsed() < Duration::from_millis(100) {
        // No poll here: every port is read each turn (a read that finds nothing costs one system call).
        worker.set_all_ready();
        let now = Instant::from_nanos(u64::try_from(start.elapsed().as_nanos())?);
        if worker.round(now) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        } else {
            idle_since = Clock::now();
        }
    }
    let mut received = [vec![], vec![]];
    for (Pod(sock, ..), seen) in pods.iter().zip(&mut received) {
        let mut buf = [0u8; 2048];
        while let Ok(n) = sock.recv(&mut buf) {
            seen.push(dissect(&buf[..n]).to_string());
        }
    }
    Ok(received)
}

fn main() -> Result<()> {
    for (i, frames) in run()?.iter().enumerate() {
        println!("pod {} received {} frames:", i + 1, frames.len());
        for f in frames {
            println!("  {f}");
        }
    }
    Ok(())
}
