//! The driver's sleep: idle, it waits for input, the node's next timer or its stop handle, and nothing else.
//! Tests that need root and network namespaces skip with one line elsewhere (a failure under
//! `TWEED_REQUIRE_ALL=1`).
#![cfg(target_os = "linux")]

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::netns::{End, NetNs, Veth, veth};
use tweed_io::{Driver, DriverConfig, PacketSocket, PodPort, Stop, UdpOptions, UdpPort, Underlay, netns_path};
use tweed_overlay::{Limits, Node, NodeBuilder, VxlanConfig};
use tweed_packet::{PacketBuf, PortId};
use tweed_wire::ethernet::MacAddr;

/// A vxlan node of 10.244.1.0/24 on 127.0.0.1 with pod ports `1..=pods` and these limits.
fn node(pods: u16, limits: Limits) -> Node {
    NodeBuilder::new("10.244.1.0/24".parse().unwrap(), Ipv4Addr::LOCALHOST, MacAddr::new(2, 0, 0, 0, 1, 1))
        .vxlan(VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, 1)))
        .socket_port(PortId(65000))
        .pod_ports(1..=pods)
        .limits(limits)
        .build()
        .unwrap()
}

fn underlay() -> Underlay {
    Underlay::Udp(UdpPort::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), UdpOptions::default()).unwrap())
}

/// `n` veth pods in `ns` (IPv6 off: no chatter): the driver's ends `h<i>` as ports `1..=n`, and sockets on the
/// far ends `p<i>`, which say nothing unless the test writes.
struct Pods {
    _links: Vec<Veth>,
    ports: Vec<(PortId, PodPort)>,
    far: Vec<PacketSocket>,
}

fn veth_pods(ns: &NetNs, n: u16) -> Pods {
    ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1").unwrap();
    let path = netns_path(std::path::Path::new(ns.name()));
    let mut pods = Pods { _links: Vec::new(), ports: Vec::new(), far: Vec::new() };
    for i in 1..=n {
        let (h, p) = (format!("h{i}"), format!("p{i}"));
        pods._links.push(veth(End::new(ns, &h), End::new(ns, &p)).unwrap());
        pods.ports.push((PortId(i), PodPort::Packet(PacketSocket::attach(&h, Some(&path)).unwrap())));
        pods.far.push(PacketSocket::attach(&p, Some(&path)).unwrap());
    }
    for i in 1..=n {
        common::netns::wait_for("veth queues", Duration::from_secs(5), || {
            let show = ns.ip(&["-o", "link", "show", "dev", &format!("p{i}")]).ok()?;
            (!show.contains("qdisc noop") && show.contains("LOWER_UP")).then_some(())
        })
        .unwrap();
    }
    pods
}

/// Runs `driver` on a thread (no limit of its own between rounds) for `idle`, then stops it through its handle;
/// hands it back with how long after `stop()` its `run` returned.
fn run_for(mut driver: Driver, idle: Duration) -> (Driver, Duration) {
    let stop = driver.stop_handle();
    let thread = std::thread::spawn(move || {
        driver.run(|_| None).unwrap();
        (driver, Instant::now())
    });
    std::thread::sleep(idle);
    let asked = Instant::now();
    stop.stop();
    let (driver, returned) = thread.join().unwrap();
    (driver, returned.saturating_duration_since(asked))
}

/// Issue 14, "No timers": a driver with pods and an underlay and no traffic, whose node has no timer pending,
/// sleeps through two idle seconds (it used to wake every `poll_ms`, 20 ms: 100 rounds).
#[test]
fn an_idle_driver_does_not_wake() {
    skip_unless!(Root, Netns, Veth);
    let ns = NetNs::new("idle").unwrap();
    let pods = veth_pods(&ns, 2);
    let driver =
        Driver::new(node(2, Limits::default()), pods.ports, underlay(), None, DriverConfig::default()).unwrap();
    // Settled: whatever the new links said is read before the count starts.
    std::thread::sleep(Duration::from_millis(200));
    let (driver, took) = run_for(driver, Duration::from_secs(2));
    let s = driver.stats();
    assert!(s.rounds <= 3, "{} rounds in two idle seconds: {s:?}", s.rounds);
    assert_eq!((s.wake_timer, s.wake_limit, s.wake_handle), (0, 0, 1), "only the stop woke it: {s:?}");
    assert_eq!(driver.node().poll_at(), None, "the node had no timer pending");
    assert!(took < Duration::from_millis(100), "the stop took {took:?}");
    drop(pods.far);
}

/// An IPv4 packet from `src` to `dst` (TTL 64, no payload), in a frame from `from` to the gateway `gw`.
fn ip_frame(gw: MacAddr, from: MacAddr, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut ip = vec![0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 253, 0, 0];
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let sum = ip.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    #[allow(clippy::cast_possible_truncation)] // folded twice: 16 bits
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(gw.as_bytes());
    f.extend_from_slice(from.as_bytes());
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.resize(60, 0);
    f
}

/// Issue 14, "No timers": a packet for a local pod nobody answers for: the node asks at once, then again every
/// `arp_retry_ms` (200 ms here) until it gives up after three requests, although no input arrives meanwhile: its
/// timers wake the driver, on time, and nothing else does.
#[test]
fn a_pending_arp_timer_wakes_the_driver_on_time() {
    skip_unless!(Root, Netns, Veth);
    let ns = NetNs::new("arpt").unwrap();
    let pods = veth_pods(&ns, 2);
    let limits = Limits { arp_retry_ms: 200, arp_probes: 3, ..Limits::default() };
    let node = node(2, limits);
    let gw = node.config().gateway_mac();
    let driver = Driver::new(node, pods.ports, underlay(), None, DriverConfig::default()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let stop = driver.stop_handle();
    let thread = std::thread::spawn(move || {
        let mut driver = driver;
        driver.run(|_| None).unwrap();
        driver
    });
    let (pod1, pod2) = (&pods.far[0], &pods.far[1]);
    let target = Ipv4Addr::new(10, 244, 1, 9);
    assert!(pod1.send(&ip_frame(gw, pod1.mac(), Ipv4Addr::new(10, 244, 1, 2), target)).unwrap());
    // The requests for the target out of pod 2's port, and when each came.
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut buf = PacketBuf::default();
    while start.elapsed() < Duration::from_millis(1200) {
        if !pod2.recv(&mut buf).unwrap() {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let d = buf.data();
        if d.get(12..14) == Some(&[0x08, 0x06][..])
            && d.get(20..22) == Some(&[0, 1][..])
            && d.get(38..42) == Some(&target.octets()[..])
        {
            seen.push(start.elapsed());
        }
    }
    stop.stop();
    let driver = thread.join().unwrap();
    let s = driver.stats();
    let c = driver.node().counters();
    assert_eq!(seen.len(), 3, "requests at {seen:?}: {s:?}");
    for w in seen.windows(2) {
        let gap = w[1] - w[0];
        assert!(gap >= Duration::from_millis(195) && gap <= Duration::from_millis(300), "requests at {seen:?}");
    }
    assert_eq!((c.arp_requests, c.arp_failed), (3, 1), "{c:?}");
    // The input (pod 1's packet); the two retries and the failure a request later, each on the node's timer;
    // the stop. Nothing else.
    assert_eq!((s.wake_io, s.wake_timer, s.wake_handle, s.wake_limit), (1, 3, 1, 0), "{s:?}");
    assert_eq!(s.rounds, 5, "{s:?}");
}

/// Issue 14, "stop and stats are process-wide statics": a driver sleeping with no timer and no limit stops
/// within 100 ms of `stop()` from another thread: its handle wakes it (no tick does: it ran two rounds).
#[test]
fn stop_wakes_a_sleeping_driver() {
    let driver =
        Driver::new(node(0, Limits::default()), Vec::new(), underlay(), None, DriverConfig::default()).unwrap();
    let (driver, took) = run_for(driver, Duration::from_millis(300));
    assert!(took < Duration::from_millis(100), "the stop took {took:?}");
    let s = driver.stats();
    assert_eq!((s.rounds, s.wake_handle), (1, 1), "{s:?}");
    assert!(driver.stop_handle().is_stopped());
    // Stopped, it still waits: the stop, seen, no longer ends every wait at once.
    let mut driver = driver;
    let t = Instant::now();
    driver.round(Some(Duration::from_millis(50))).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(50), "{:?}", t.elapsed());
    assert_eq!(driver.stats().wake_limit, 1);
}

/// One stop handle for two drivers stops both; a stopped handle stops a driver at once, before it waits.
#[test]
fn one_stop_for_several_drivers() {
    let stop = Stop::new().unwrap();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let mut d =
                Driver::new(node(0, Limits::default()), Vec::new(), underlay(), None, DriverConfig::default()).unwrap();
            d.set_stop(stop.clone()).unwrap();
            // Given twice: the same handle, nothing to change.
            d.set_stop(stop.clone()).unwrap();
            std::thread::spawn(move || {
                d.run(|_| None).unwrap();
                d.stats().rounds
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let asked = Instant::now();
    stop.stop();
    for t in threads {
        assert_eq!(t.join().unwrap(), 1);
    }
    assert!(asked.elapsed() < Duration::from_millis(100), "{:?}", asked.elapsed());
    let mut d = Driver::new(node(0, Limits::default()), Vec::new(), underlay(), None, DriverConfig::default()).unwrap();
    d.set_stop(stop).unwrap();
    d.run(|_| None).unwrap();
    assert_eq!(d.stats().rounds, 0);
}

/// A waker ends one wait (the hook runs at once), and only one: the next round sleeps again, here until its
/// limit.
#[test]
fn a_waker_ends_one_wait() {
    let mut driver =
        Driver::new(node(0, Limits::default()), Vec::new(), underlay(), None, DriverConfig::default()).unwrap();
    let waker = driver.waker();
    let stop = driver.stop_handle();
    let hooks = Arc::new(AtomicUsize::new(0));
    let thread = std::thread::spawn({
        let hooks = hooks.clone();
        move || {
            driver
                .run(|_| {
                    hooks.fetch_add(1, Ordering::Relaxed);
                    None
                })
                .unwrap();
            driver
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(hooks.load(Ordering::Relaxed), 1, "before the first round");
    let asked = Instant::now();
    waker.wake();
    common::netns::wait_for("the hook after a wake", Duration::from_millis(100), || {
        (hooks.load(Ordering::Relaxed) == 2).then_some(())
    })
    .unwrap();
    assert!(asked.elapsed() < Duration::from_millis(100));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(hooks.load(Ordering::Relaxed), 2, "one wake, one round");
    stop.stop();
    let driver = thread.join().unwrap();
    let s = driver.stats();
    assert_eq!((s.rounds, s.wake_handle, s.wake_limit), (2, 2, 0), "{s:?}");
    // A round's own limit ends its wait when nothing else does.
    let mut driver = driver;
    let t = Instant::now();
    driver.round(Some(Duration::from_millis(50))).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert_eq!(driver.stats().wake_limit, 1);
}

/// The hook of `run` bounds each wait, the first included: the caller's own timers (here every 100 ms) wake an
/// idle driver, and nothing more does.
#[test]
fn the_hook_bounds_each_wait() {
    let mut driver =
        Driver::new(node(0, Limits::default()), Vec::new(), underlay(), None, DriverConfig::default()).unwrap();
    let stop = driver.stop_handle();
    let thread = std::thread::spawn(move || {
        driver.run(|_| Some(Duration::from_millis(100))).unwrap();
        driver
    });
    std::thread::sleep(Duration::from_millis(550));
    stop.stop();
    let s = thread.join().unwrap().stats();
    assert_eq!((s.rounds, s.wake_limit, s.wake_handle, s.wake_timer, s.wake_io), (6, 5, 1, 0, 0), "{s:?}");
}
