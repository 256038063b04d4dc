//! The driver's rounds against real ports: bounded whatever the node does, any number of ports watched, the
//! round's reading shared fairly between ports, dead ports closed. Tests that need root and network namespaces
//! skip with one line elsewhere (a failure under `TWEED_REQUIRE_ALL=1`).
#![cfg(target_os = "linux")]

mod common;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::netns::{End, NetNs, veth};
use tweed_io::{
    Device, DeviceKind, DeviceOptions, Driver, DriverConfig, PacketSocket, PodPort, Stop, UdpOptions, UdpPort,
    Underlay, netns_path,
};
use tweed_overlay::{Limits, Node, NodeBuilder, VxlanConfig};
use tweed_packet::{PacketBuf, PortId};
use tweed_wire::ethernet::MacAddr;

const SOCKET_PORT: u16 = 65000;

fn path(ns: &NetNs) -> std::path::PathBuf {
    netns_path(std::path::Path::new(ns.name()))
}

/// A vxlan node of 10.244.1.0/24 on 127.0.0.1 with pod ports `1..=pods` and these limits.
fn node(pods: u16, limits: Limits) -> Node {
    try_node(pods, limits).unwrap()
}

fn try_node(pods: u16, limits: Limits) -> Result<Node, tweed_overlay::ConfigError> {
    NodeBuilder::new("10.244.1.0/24".parse().unwrap(), Ipv4Addr::LOCALHOST, MacAddr::new(2, 0, 0, 0, 1, 1))
        .vxlan(VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, 1)))
        .socket_port(PortId(SOCKET_PORT))
        .pod_ports(1..=pods)
        .limits(limits)
        .build()
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A UDP underlay on a free loopback port, and a socket to send to it from.
fn underlay() -> (Underlay, UdpSocket, SocketAddrV4) {
    let u = UdpPort::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), UdpOptions::default()).unwrap();
    let to = u.local_addr();
    (Underlay::Udp(u), UdpSocket::bind("127.0.0.1:0").unwrap(), to)
}

/// Finding 1 (driver side): a node that consumes nothing (no room for any output) cannot hold a round forever:
/// the round returns, and what it could not process is dropped and counted.
#[test]
fn a_round_returns_when_the_node_consumes_nothing() {
    // No room for any output: the node takes nothing. Should the node come to refuse that, one output per call
    // still cannot take ten packets in the round's four calls.
    let (outputs, node) = [0, 1]
        .into_iter()
        .find_map(|max_outputs| Some((max_outputs, try_node(0, Limits { max_outputs, ..Limits::default() }).ok()?)))
        .expect("the node refuses max_outputs 0 and 1: this test needs another way to make it take little");
    let (underlay, tx, to) = underlay();
    let mut driver = Driver::new(node, Vec::new(), underlay, None, DriverConfig::default()).unwrap();
    for _ in 0..10 {
        tx.send_to(&[0u8; 100], to).unwrap();
    }
    // All ten in the socket before the first round, so that one round reads them all.
    std::thread::sleep(Duration::from_millis(50));
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let mut read = 0;
        // Loopback may deliver after the first wait: a few rounds take everything.
        for _ in 0..20 {
            read += driver.round(Some(ms(100))).unwrap();
            if read == 10 {
                break;
            }
        }
        let _ = done.send((read, driver.stats()));
    });
    let (read, stats) = finished.recv_timeout(Duration::from_secs(10)).expect("the round never returned");
    assert_eq!(read, 10);
    assert_eq!(stats.rx_underlay, 10);
    assert_eq!(stats.unprocessed, 10 - 4 * outputs as u64, "what the node did not take is dropped and counted");
}

/// Finding 2: with 200 pod ports (more than `poll`'s old 64), the underlay and the last pod are still read.
#[test]
fn two_hundred_pods_and_the_underlay_are_all_watched() {
    skip_unless!(Root, Netns, Tun, Ping);
    let ns = NetNs::new("many").unwrap();
    let n = 200u16;
    let mut pods = Vec::new();
    for i in 1..=n {
        // Down (no IPv6 chatter), but the last one, which gets an address and is pinged through.
        let mut o = DeviceOptions::new(format!("p{i}"), DeviceKind::Tap).netns(path(&ns));
        o.up = i == n;
        pods.push((PortId(i), PodPort::Tap(Device::create(&o).unwrap())));
    }
    ns.ip(&["addr", "add", "10.244.1.200/24", "dev", &format!("p{n}")]).unwrap();
    let (underlay, tx, to) = underlay();
    let mut driver = Driver::new(node(n, Limits::default()), pods, underlay, None, DriverConfig::default()).unwrap();
    tx.send_to(&[0u8; 100], to).unwrap();
    // The ping's ARP request for 10.244.1.9 comes out of the last TAP (nobody answers: it fails, that is fine).
    let pinger = std::thread::spawn({
        let name = ns.name().to_owned();
        move || {
            common::netns::run_timeout(
                &["ip", "netns", "exec", &name, "ping", "-c", "1", "-W", "1", "10.244.1.9"],
                Duration::from_secs(5),
            )
        }
    });
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        driver.round(Some(ms(50))).unwrap();
        let s = driver.stats();
        if s.rx_underlay == 1 && s.rx_pod >= 1 {
            break;
        }
    }
    let _ = pinger.join();
    let s = driver.stats();
    assert_eq!(s.rx_underlay, 1, "the underlay behind 200 pods was never read: {s:?}");
    assert!(s.rx_pod >= 1, "the 200th pod was never read: {s:?}");
}

/// An injector on the far end of a pod's veth.
struct Far {
    sock: PacketSocket,
    mac: MacAddr,
}

fn frame(dst: MacAddr, src: MacAddr, ethertype: [u8; 2], body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + body.len());
    f.extend_from_slice(dst.as_bytes());
    f.extend_from_slice(src.as_bytes());
    f.extend_from_slice(&ethertype);
    f.extend_from_slice(body);
    f.resize(f.len().max(60), 0);
    f
}

fn arp_request(src_mac: MacAddr, src_ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut body = vec![0, 1, 8, 0, 6, 4, 0, 1];
    body.extend_from_slice(src_mac.as_bytes());
    body.extend_from_slice(&src_ip.octets());
    body.extend_from_slice(&[0; 6]);
    body.extend_from_slice(&target.octets());
    frame(MacAddr::BROADCAST, src_mac, [0x08, 0x06], &body)
}

/// Finding 3: four pods with full queues, a fifth with one ARP request for the gateway, the underlay with
/// datagrams waiting: the first round reads the quiet pod (its answer comes back) and gives the underlay its share.
#[test]
fn one_round_shares_its_batch_between_busy_and_quiet_ports() {
    skip_unless!(Root, Netns, Veth);
    let ns = NetNs::new("fair").unwrap();
    ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1").unwrap();
    let mut guards = Vec::new();
    let mut pods = Vec::new();
    let mut far = Vec::new();
    for i in 1..=5u16 {
        let (h, p) = (format!("h{i}"), format!("p{i}"));
        guards.push(veth(End::new(&ns, &h), End::new(&ns, &p)).unwrap());
        pods.push((PortId(i), PodPort::Packet(PacketSocket::attach(&h, Some(&path(&ns))).unwrap())));
        let sock = PacketSocket::attach(&p, Some(&path(&ns))).unwrap();
        let mac = sock.mac();
        far.push(Far { sock, mac });
    }
    // Until the link watch has started a new veth's queue, what is sent on it is lost: wait for it.
    for i in 1..=5 {
        common::netns::wait_for("veth queues", Duration::from_secs(5), || {
            let show = ns.ip(&["-o", "link", "show", "dev", &format!("p{i}")]).ok()?;
            (!show.contains("qdisc noop") && show.contains("LOWER_UP")).then_some(())
        })
        .unwrap();
    }
    let node = node(5, Limits::default());
    let gw_mac = node.config().gateway_mac();
    let gw_ip = node.config().gateway_ip();
    let (underlay, tx, to) = underlay();
    let mut driver = Driver::new(node, pods, underlay, None, DriverConfig::default()).unwrap();
    // The busy pods' frames: addressed to the gateway, of no protocol the node serves (dropped, counted).
    const BUSY: u64 = 400;
    for f in &far[..4] {
        let junk = frame(gw_mac, f.mac, [0x88, 0xb5], b"busy");
        for _ in 0..BUSY {
            assert!(f.sock.send(&junk).unwrap());
        }
    }
    let quiet = &far[4];
    let pod_ip = Ipv4Addr::new(10, 244, 1, 5);
    assert!(quiet.sock.send(&arp_request(quiet.mac, pod_ip, gw_ip)).unwrap());
    for _ in 0..100 {
        tx.send_to(&[0u8; 100], to).unwrap();
    }
    // Everything is queued on the driver's side before the first round.
    common::netns::wait_for("frames queued", Duration::from_secs(5), || {
        let all = (1..=4).all(|i| ns.link_stat(&format!("h{i}"), "rx_packets").unwrap_or(0) >= BUSY);
        (all && ns.link_stat("h5", "rx_packets").unwrap_or(0) >= 1).then_some(())
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    driver.round(Some(ms(100))).unwrap();
    let s = driver.stats();
    // Six ports ready: a share of 256 / 6 = 42 each, the underlay a quarter (64), read first.
    assert_eq!(s.rx_underlay, 64, "the underlay did not get its share of the round: {s:?}");
    assert_eq!(s.rx_pod, 4 * 42 + 1, "{s:?}");
    // The quiet pod was read in that round: the gateway's ARP reply is on its way back.
    let mut buf = PacketBuf::default();
    let start = Instant::now();
    let mut answered = false;
    while !answered && start.elapsed() < Duration::from_secs(1) {
        if quiet.sock.recv(&mut buf).unwrap() {
            let d = buf.data();
            answered = d.get(12..14) == Some(&[0x08, 0x06][..]) && d.get(20..22) == Some(&[0, 2][..]);
        } else {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert!(answered, "the quiet pod's ARP request was not read in the first round: {s:?}");
    // Then five ready: 51 each, the underlay what it has left.
    driver.round(Some(ms(100))).unwrap();
    let s = driver.stats();
    assert_eq!((s.rx_underlay, s.rx_pod), (100, 4 * 42 + 1 + 4 * 51), "{s:?}");
    drop(guards);
}

/// A TAP pod `eth0` in its own namespace with address `10.244.1.<host>/24`.
fn tap_pod(label: &str, host: u8) -> (NetNs, Device) {
    let ns = NetNs::new(label).unwrap();
    ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1").unwrap();
    let o = DeviceOptions::new("eth0", DeviceKind::Tap).netns(path(&ns)).vnet_hdr(true).tso(true);
    let tap = Device::create(&o).unwrap();
    ns.ip(&["addr", "add", &format!("10.244.1.{host}/24"), "dev", "eth0"]).unwrap();
    (ns, tap)
}

/// Finding 13: a pod's namespace deleted, another pod's TAP deleted, under a running driver: the driver does not
/// spin (rounds over an idle second, each waiting at most 20 ms, stay near 50), closes what is gone, and the third pod still
/// reaches its gateway.
#[test]
fn pods_deleted_under_a_running_driver() {
    skip_unless!(Root, Netns, Tun, Ping);
    let (ns1, tap1) = tap_pod("gone1", 2);
    let (ns2, tap2) = tap_pod("gone2", 3);
    let (ns3, tap3) = tap_pod("stays", 4);
    let pods = vec![(PortId(1), PodPort::Tap(tap1)), (PortId(2), PodPort::Tap(tap2)), (PortId(3), PodPort::Tap(tap3))];
    let (underlay, _tx, _to) = underlay();
    let config = DriverConfig::default();
    let driver = Driver::new(node(3, Limits::default()), pods, underlay, None, config).unwrap();
    let running = Running::start(driver);
    assert!(common::netns::ping(&ns3, Ipv4Addr::new(10, 244, 1, 1), 1, &["-W", "2"]).unwrap().all_received());
    drop(ns1);
    ns2.ip(&["link", "del", "eth0"]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let before = Instant::now();
    let mut driver = running.finish();
    let rounds0 = driver.stats().rounds;
    // One idle second, measured on the driver's own thread now.
    while before.elapsed() < Duration::from_secs(1) + Duration::from_millis(300) {
        driver.round(Some(ms(20))).unwrap();
    }
    let idle_rounds = driver.stats().rounds - rounds0;
    assert!(idle_rounds <= 80, "{idle_rounds} rounds in an idle second: the driver spins ({:?})", driver.stats());
    let running = Running::start(driver);
    let p = common::netns::ping(&ns3, Ipv4Addr::new(10, 244, 1, 1), 3, &["-W", "2"]).unwrap();
    let mut driver = running.finish();
    assert!(p.all_received(), "the third pod lost its gateway: {}", p.output);
    // The deleted TAP was closed by its reads' error; the TAP of the deleted namespace keeps that namespace alive
    // (its descriptor holds it) and reads nothing: closed when the agent's periodic check sees the file gone.
    assert_eq!(driver.close_orphaned(), 1);
    assert_eq!(driver.close_orphaned(), 0);
    closed_check(&mut driver);
}

/// The two pods that went are closed, each reported once, with the device's error.
fn closed_check(driver: &mut Driver) {
    let closed = driver.take_closed();
    let mut ports: Vec<u16> = closed.iter().map(|c| c.port.0).collect();
    ports.sort_unstable();
    assert_eq!(ports, [1, 2], "{closed:?}");
    assert_eq!(driver.stats().ports_closed, 2);
    assert!(driver.take_closed().is_empty(), "reported once");
    assert_eq!(driver.pods().iter().map(|(id, _)| id.0).collect::<Vec<_>>(), [3]);
}

/// Runs `driver` on a thread until the returned guard's `finish`, which hands it back.
struct Running {
    stop: Stop,
    thread: std::thread::JoinHandle<Driver>,
}

impl Running {
    /// Runs it with a new stop handle (the one a driver ran with before stays stopped).
    fn start(mut driver: Driver) -> Self {
        let stop = Stop::new().unwrap();
        driver.set_stop(stop.clone()).unwrap();
        let thread = std::thread::spawn(move || {
            driver.run(|_| None).unwrap();
            driver
        });
        Self { stop, thread }
    }

    fn finish(self) -> Driver {
        self.stop.stop();
        self.thread.join().unwrap()
    }
}

/// Finding 13 (veth offloads): two veth pods with the kernel's default offloads (TSO, GSO, checksum offload on
/// their `eth0`) carry TCP both ways through the driver: the large frames and partial checksums their veths hand
/// over are cut and finished.
#[test]
fn veth_pods_with_default_offloads_carry_tcp() {
    skip_unless!(Root, Netns, Veth, Iperf3, Ping);
    let node_ns = NetNs::new("offl").unwrap();
    let a = common::netns::Pod::new(1, 2).unwrap().with_mtu(1450);
    let b = common::netns::Pod::new(1, 3).unwrap().with_mtu(1450);
    a.veth_to(&node_ns, "vpod2").unwrap();
    b.veth_to(&node_ns, "vpod3").unwrap();
    let pods = ["vpod2", "vpod3"]
        .iter()
        .zip(1u16..)
        .map(|(name, id)| (PortId(id), PodPort::Packet(attach_pod(name, &path(&node_ns)))))
        .collect();
    let (underlay, _tx, _to) = underlay();
    let driver = Driver::new(node(2, Limits::default()), pods, underlay, None, DriverConfig::default()).unwrap();
    let running = Running::start(driver);
    common::netns::ping_until_ok(&a.ns, b.ip(), Duration::from_secs(5)).unwrap();
    let srv = common::netns::Iperf3Server::start(&b.ns, b.ip()).unwrap();
    let fwd = common::netns::iperf3_tcp(&a.ns, &srv, 1, false);
    let rev = common::netns::iperf3_tcp(&a.ns, &srv, 1, true);
    let driver = running.finish();
    let s = driver.stats();
    for (dir, run) in [("forward", fwd), ("reverse", rev)] {
        let run = run.unwrap_or_else(|e| panic!("{dir}: {e} ({s:?})"));
        assert!(run.received_bytes > 1 << 20, "{dir}: only {} bytes arrived ({s:?})", run.received_bytes);
    }
    assert_eq!(s.rx_offload_dropped, 0, "{s:?}");
}

fn attach_pod(name: &str, ns: &std::path::Path) -> PacketSocket {
    PacketSocket::attach_offloaded(name, Some(ns)).unwrap()
}

/// Finding 13: the host's TUN deleted under a running driver is closed, not polled in a spin.
#[test]
fn a_deleted_tun_is_closed() {
    skip_unless!(Root, Netns, Tun);
    let ns = NetNs::new("tungone").unwrap();
    let tun = Device::create(&DeviceOptions::new("tun0", DeviceKind::Tun).netns(path(&ns))).unwrap();
    let (underlay, _tx, _to) = underlay();
    let config = DriverConfig::default();
    let mut driver = Driver::new(node(0, Limits::default()), Vec::new(), underlay, Some(tun), config).unwrap();
    driver.round(Some(ms(0))).unwrap();
    ns.ip(&["link", "del", "tun0"]).unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        driver.round(Some(ms(20))).unwrap();
    }
    let s = driver.stats();
    assert!(s.rounds <= 80, "{} rounds in an idle second: the driver spins ({s:?})", s.rounds);
    assert_eq!(s.ports_closed, 1, "{s:?}");
    let closed = driver.take_closed();
    assert_eq!(closed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["tun0"]);
}
