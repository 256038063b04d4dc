//! The port seam without root: in-memory ports through the worker's round, a port type of this file (outside
//! tweed-io) in the driver, a node of another encapsulation in the driver, the round's fair shares, and ports
//! that are gone closed once.
#![cfg(target_os = "linux")]

mod mem;

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use mem::{SOCKET_PORT, carry, config, node_ip, ping_frame, pod_ip, resolve, underlay_addr, worker};
use tweed_io::{Driver, DriverConfig, Medium, MemPort, Msg, Port, Rx, Sent, Worker};
use tweed_overlay::encap::Udp;
use tweed_overlay::{Instant, Node, NodeBuilder};
use tweed_packet::PortId;
use tweed_wire::ethernet::MacAddr;

/// A ping from node 1's pod crosses the underlay to node 2 over MemPorts: node 1 sends one datagram to node 2's
/// VXLAN port; node 2 decapsulates it and asks for its pod's MAC (ARP) on its pod port.
#[test]
fn mem_ports_carry_a_packet_between_two_workers() {
    let (mut a, mut b) = (worker(1), worker(2));
    let gw = a.node().config().gateway_mac();
    assert!(a.port_mut(PortId(1)).unwrap().inject(&ping_frame(gw, 1, 2, 1), None));
    assert_eq!(a.round(Instant::from_secs(1)), 1);
    let (bytes, dst) = a.port_mut(SOCKET_PORT).unwrap().take_sent().unwrap();
    assert_eq!(dst, Some(SocketAddr::new(node_ip(2).into(), 8472)));
    // VXLAN header (8) + inner frame (14 + 20 + 8 + 32).
    assert_eq!(bytes.len(), 8 + 14 + 60);
    assert!(b.port_mut(SOCKET_PORT).unwrap().inject(&bytes, Some(underlay_addr(1))));
    assert_eq!(b.round(Instant::from_secs(1)), 1);
    let (arp, _) = b.port_mut(PortId(1)).unwrap().take_sent().unwrap();
    assert_eq!((&arp[..6], &arp[12..14]), (&[0xff; 6][..], &[8, 6][..]), "a broadcast ARP");
    assert_eq!(&arp[38..42], &pod_ip(2).octets(), "asking for pod 2's address");
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sa.rx_pod, sa.tx_underlay, sb.rx_underlay, sb.tx_pod), (1, 1, 1, 1));
    assert_eq!(a.port_stats(SOCKET_PORT).unwrap().tx, 1);
    assert_eq!(b.port_stats(PortId(1)).unwrap().tx, 1);
}

/// Once node 2 knows its pod, a train of pings goes pod to pod through both workers, each in order.
#[test]
fn mem_ports_round_trip_in_order() {
    let (mut a, mut b) = (worker(1), worker(2));
    let gw = a.node().config().gateway_mac();
    resolve(&mut a, &mut b);
    for seq in 0..100 {
        assert!(a.port_mut(PortId(1)).unwrap().inject(&ping_frame(gw, 1, 2, seq), None));
    }
    let t = Instant::from_secs(2);
    let mut got = Vec::new();
    for _ in 0..4 {
        a.round(t);
        let (from, to) = (a.port_mut(SOCKET_PORT).unwrap(), b.port_mut(SOCKET_PORT).unwrap());
        carry(from, underlay_addr(1), to);
        b.round(t);
        b.port_mut(PortId(1)).unwrap().drain_sent(|f, _| got.push(u16::from_be_bytes([f[40], f[41]])));
    }
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    assert_eq!(b.node().counters().total_drops(), 0);
}

/// A pod port of this test's own type: one end of a Unix datagram socket pair, one frame per datagram.
struct Pipe(UnixDatagram, String);

impl Port for Pipe {
    fn name(&self) -> &str {
        &self.1
    }
    fn medium(&self) -> Medium {
        Medium::Ethernet
    }
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.0.as_fd())
    }
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

fn pipe(name: &str) -> (Pipe, UnixDatagram) {
    let (ours, theirs) = UnixDatagram::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    theirs.set_nonblocking(true).unwrap();
    (Pipe(ours, name.to_owned()), theirs)
}

/// A port type defined outside tweed-io runs in the driver beside a MemPort: the driver sleeps on its descriptor,
/// wakes when a frame comes, and the bridge floods it to the other pods, ours and the MemPort.
#[test]
fn an_embedders_port_runs_in_the_driver() {
    let node = NodeBuilder::new(mem::subnet(1), node_ip(1), mem::node_mac(1)).host_gw().pod_ports([1, 2, 3]);
    let mut driver: Driver = Driver::empty(node.build().unwrap(), DriverConfig::default()).unwrap();
    let ((p1, far1), (p2, far2)) = (pipe("p1"), pipe("p2"));
    driver.add_port(PortId(1), Box::new(p1)).unwrap();
    driver.add_port(PortId(2), Box::new(p2)).unwrap();
    driver.add_port(PortId(3), Box::new(MemPort::new("m3", Medium::Ethernet))).unwrap();
    let err = driver.add_port(PortId(4), Box::new(MemPort::new("m4", Medium::Ethernet))).unwrap_err();
    assert!(err.to_string().contains("m4 is on port 4, which is not a port of the node"), "{err}");
    let err = driver.add_port(PortId(3), Box::new(MemPort::new("m3", Medium::Ip))).unwrap_err();
    assert!(err.to_string().contains("carries Ip but port 3 of the node takes Ethernet"), "{err}");
    // Idle: the wait ends at its limit.
    assert_eq!(driver.round(Some(Duration::from_millis(20))).unwrap(), 0);
    assert_eq!(driver.stats().wake_limit, 1);
    let frame = mem::eth(MacAddr::BROADCAST, mem::pod_mac(1), 0x88b5, &[7; 46]);
    far1.send(&frame).unwrap();
    assert_eq!(driver.round(Some(Duration::from_secs(5))).unwrap(), 1);
    let s = driver.stats();
    assert_eq!((s.wake_io, s.rx_pod, s.tx_pod), (1, 1, 2));
    let mut buf = [0u8; 2048];
    let n = far2.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], &frame[..]);
    assert!(far1.recv(&mut buf).is_err(), "not back to the sender");
    let w = driver.worker_mut();
    assert_eq!(w.port_stats(PortId(3)).unwrap().tx, 1);
    assert_eq!(w.port_as::<MemPort>(PortId(3)).unwrap().take_sent(), Some((frame, None)));
    assert!(w.port_as::<MemPort>(PortId(1)).is_none(), "a Pipe is no MemPort");
    assert_eq!(
        driver.pods().iter().map(|(id, p)| (id.0, p.name())).collect::<Vec<_>>(),
        [(1, "p1"), (2, "p2"), (3, "m3")]
    );
}

/// The driver runs a node of another encapsulation (flannel's `udp` as an embedder builds it, through
/// `Node::with_encapsulation`) over MemPorts: a MemPort with input means no sleep.
#[test]
fn a_driver_over_another_encapsulation() {
    let node = |i| Node::with_encapsulation(config(i), Udp::new(9000)).unwrap();
    let mut a: Driver<Udp, MemPort> =
        Driver::from_worker(Worker::new(node(1), DriverConfig::default()).unwrap()).unwrap();
    let mut b: Driver<Udp, MemPort> =
        Driver::from_worker(Worker::new(node(2), DriverConfig::default()).unwrap()).unwrap();
    for d in [&mut a, &mut b] {
        d.add_port(PortId(1), MemPort::new("pod", Medium::Ethernet)).unwrap();
        d.add_port(SOCKET_PORT, MemPort::new("udp", Medium::Datagram)).unwrap();
    }
    let gw = a.node().config().gateway_mac();
    a.worker_mut().port_mut(PortId(1)).unwrap().inject(&ping_frame(gw, 1, 2, 7), None);
    // Would sleep an hour but for the MemPort's input.
    assert_eq!(a.round(Some(Duration::from_secs(3600))).unwrap(), 1);
    let (bytes, dst) = a.worker_mut().port_mut(SOCKET_PORT).unwrap().take_sent().unwrap();
    assert_eq!(dst, Some(SocketAddr::new(node_ip(2).into(), 9000)));
    // Flannel's udp: the inner IP packet alone, its TTL decremented by node 1's router.
    let sent = mem::ping(1, 2, 7);
    assert_eq!((bytes.len(), bytes[8], &bytes[12..]), (sent.len(), 63, &sent[12..]));
    b.worker_mut().port_mut(SOCKET_PORT).unwrap().inject(&bytes, Some(underlay_addr(1)));
    assert_eq!(b.round(Some(Duration::from_secs(3600))).unwrap(), 1);
    assert_eq!(b.stats().wake_io, 1);
    let (arp, _) = b.worker_mut().port_mut(PortId(1)).unwrap().take_sent().unwrap();
    assert_eq!(&arp[38..42], &pod_ip(2).octets());
}

/// Runt frames (dropped by the node) on a host-gw node's underlay (port 0) and seven pod ports.
fn crowded() -> Worker<tweed_overlay::Flannel, MemPort> {
    let node = NodeBuilder::new(mem::subnet(1), node_ip(1), mem::node_mac(1)).host_gw().pod_ports(1..=7).build();
    let mut w = Worker::new(node.unwrap(), DriverConfig::default().batch(256)).unwrap();
    w.add_port(PortId(0), MemPort::new("eth0", Medium::Ethernet)).unwrap();
    for i in 1..=7 {
        w.add_port(PortId(i), MemPort::new(format!("pod{i}"), Medium::Ethernet)).unwrap();
    }
    for i in 0..=7 {
        let p = w.port_mut(PortId(i)).unwrap();
        for _ in 0..200 {
            p.inject(&[1; 10], None);
        }
    }
    w
}

fn rx(w: &Worker<tweed_overlay::Flannel, MemPort>) -> Vec<u64> {
    (0..=7).map(|i| w.port_stats(PortId(i)).unwrap().rx).collect()
}

/// Eight ready ports share a round of 256: the underlay a quarter (64) and first, the pods 32 each from a
/// moving start; the pod the full batch left unread is read first in the next round.
#[test]
fn a_round_is_shared_fairly() {
    let mut w = crowded();
    assert_eq!(w.round(Instant::from_secs(1)), 256);
    assert_eq!(rx(&w), [64, 32, 32, 32, 32, 32, 32, 0]);
    assert_eq!(w.round(Instant::from_secs(1)), 256);
    assert_eq!(rx(&w), [128, 64, 64, 64, 64, 64, 32, 32]);
    assert_eq!(w.round(Instant::from_secs(1)), 256);
    assert_eq!(rx(&w), [192, 96, 96, 96, 96, 64, 64, 64]);
    let s = w.stats();
    assert_eq!((s.rounds, s.rx_underlay, s.rx_pod, s.unprocessed), (3, 192, 576, 0));
}

/// A port that is gone (its reads fail with ENODEV) is closed and reported once; the others carry on.
#[test]
fn a_gone_port_is_closed_once() {
    let mut w = crowded();
    w.port_mut(PortId(3)).unwrap().close();
    w.round(Instant::from_secs(1));
    let closed = w.take_closed();
    assert_eq!(closed.len(), 1);
    assert_eq!((closed[0].port, closed[0].name.as_str()), (PortId(3), "pod3"));
    assert_eq!(closed[0].error.raw_os_error(), Some(libc::ENODEV));
    assert!(w.take_closed().is_empty(), "reported once");
    assert!(w.port(PortId(3)).is_none());
    assert_eq!(w.ports().map(|(id, _)| id.0).collect::<Vec<_>>(), [0, 1, 2, 4, 5, 6, 7]);
    let s = w.stats();
    assert_eq!((s.ports_closed, s.rx_errors), (1, 1));
    w.round(Instant::from_secs(1));
    assert_eq!(w.stats().ports_closed, 1);
}

/// A port without a descriptor that always says it has input, and whose reads fail with `error` (an OS error
/// number) or, with `None`, give nothing.
struct AlwaysReady {
    error: Option<i32>,
}

impl Port for AlwaysReady {
    fn name(&self) -> &str {
        "always-ready"
    }
    fn medium(&self) -> Medium {
        Medium::Ethernet
    }
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    fn has_input(&self) -> bool {
        true
    }
    fn recv(&mut self, _rx: &mut Rx<'_>) -> io::Result<()> {
        self.error.map_or(Ok(()), |e| Err(io::Error::from_raw_os_error(e)))
    }
    fn send(&mut self, _msgs: &[Msg<'_>], _scratch: &mut [u8]) -> Sent {
        Sent::default()
    }
}

/// A port that fails every read with an error that does not say "gone" (EIO) is closed after 64 failures in a
/// row, not before: it would be ready at every wait.
#[test]
fn a_port_failing_every_read_is_closed_after_64() {
    let node = NodeBuilder::new(mem::subnet(1), node_ip(1), mem::node_mac(1)).host_gw().pod_ports([1]).build();
    let mut w: Worker = Worker::new(node.unwrap(), DriverConfig::default()).unwrap();
    w.add_port(PortId(1), Box::new(AlwaysReady { error: Some(libc::EIO) })).unwrap();
    for _ in 0..63 {
        w.round(Instant::from_secs(1));
    }
    assert!(w.take_closed().is_empty());
    w.round(Instant::from_secs(1));
    let closed = w.take_closed();
    assert_eq!((closed.len(), closed[0].error.raw_os_error()), (1, Some(libc::EIO)));
    assert_eq!(w.stats().rx_errors, 64);
}

/// Outputs for several ports, interleaved by the node (each broadcast flooded to two pods), reach each port in
/// the node's order, each port's in one call.
#[test]
fn interleaved_outputs_keep_their_order_per_port() {
    let node = NodeBuilder::new(mem::subnet(1), node_ip(1), mem::node_mac(1)).host_gw().pod_ports([1, 2, 3]).build();
    let mut w: Worker<tweed_overlay::Flannel, MemPort> = Worker::new(node.unwrap(), DriverConfig::default()).unwrap();
    for i in 1..=3 {
        w.add_port(PortId(i), MemPort::new(format!("pod{i}"), Medium::Ethernet)).unwrap();
    }
    for seq in 0..50u8 {
        let frame = mem::eth(MacAddr::BROADCAST, mem::pod_mac(1), 0x88b5, &[seq; 46]);
        w.port_mut(PortId(1)).unwrap().inject(&frame, None);
    }
    assert_eq!(w.round(Instant::from_secs(1)), 50);
    for i in [2, 3] {
        let mut seqs = Vec::new();
        w.port_mut(PortId(i)).unwrap().drain_sent(|f, _| seqs.push(f[14]));
        assert_eq!(seqs, (0..50).collect::<Vec<u8>>(), "pod {i}");
        assert_eq!(w.port_stats(PortId(i)).unwrap().tx, 50);
    }
    assert_eq!(w.port_mut(PortId(1)).unwrap().pending_out(), 0);
    assert_eq!(w.stats().tx_pod, 100);
}

/// A port that keeps saying it has input but gives none does not make the driver spin: after a round that read
/// nothing from it, the wait lasts up to a millisecond (here 200 ms of rounds: at most ~200 of them, where a
/// spin makes hundreds of thousands).
#[test]
fn a_port_that_says_input_and_gives_none_does_not_spin() {
    let node = NodeBuilder::new(mem::subnet(1), node_ip(1), mem::node_mac(1)).host_gw().pod_ports([1]).build();
    let mut driver: Driver = Driver::empty(node.unwrap(), DriverConfig::default()).unwrap();
    driver.add_port(PortId(1), Box::new(AlwaysReady { error: None })).unwrap();
    let start = std::time::Instant::now();
    driver
        .run(|d| {
            if start.elapsed() >= Duration::from_millis(200) {
                d.stop_handle().stop();
            }
            None
        })
        .unwrap();
    let rounds = driver.stats().rounds;
    assert!((2..=260).contains(&rounds), "{rounds} rounds in 200 ms");
}
