//! The network-namespace harness tested for real: its guards delete what they create (also when a test panics),
//! its parsers read real `ping` and `iperf3` output, and two kernel flannel nodes built with it carry ping and
//! iperf3 between their pods (the kernel baseline the tweed tests and benchmarks compare with).

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::netns::{
    self, End, Iperf3Server, NetNs, Ping, Pod, Process, SIGKILL, TcpRun, UdpRun, iperf3_tcp, iperf3_udp,
    kernel_flannel_pair, ping, ping_until_ok, unique_ifname, veth,
};
use std::os::unix::process::ExitStatusExt;

fn alive(pid: u32) -> bool {
    // A zombie has left its namespaces: count it as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

fn wait_gone(pid: u32) -> bool {
    netns::wait_for("process to go", Duration::from_secs(2), || (!alive(pid)).then_some(())).is_ok()
}

fn root_link_exists(name: &str) -> bool {
    netns::run(&["ip", "link", "show", "dev", name]).is_ok()
}

// ---------------------------------------------------------------------------------------------------------------
// Parsers (no privilege needed)

static PING_OK: &str = "PING 10.244.2.2 (10.244.2.2) 56(84) bytes of data.
64 bytes from 10.244.2.2: icmp_seq=1 ttl=62 time=0.101 ms
64 bytes from 10.244.2.2: icmp_seq=2 ttl=62 time=0.064 ms
64 bytes from 10.244.2.2: icmp_seq=3 ttl=62 time=0.071 ms

--- 10.244.2.2 ping statistics ---
3 packets transmitted, 3 received, 0% packet loss, time 405ms
rtt min/avg/max/mdev = 0.064/0.078/0.101/0.016 ms
";

static PING_FRAG: &str = "PING 10.244.2.2 (10.244.2.2) 1400(1428) bytes of data.
From 10.244.1.1 icmp_seq=1 Frag needed and DF set (mtu = 1350)
ping: local error: message too long, mtu=1350

--- 10.244.2.2 ping statistics ---
2 packets transmitted, 0 received, +2 errors, 100% packet loss, time 203ms
";

static PING_DUP: &str = "--- 10.0.0.1 ping statistics ---
4 packets transmitted, 3 received, +1 duplicates, 25% packet loss, time 3004ms
rtt min/avg/max/mdev = 1.5/2.25/3.0/0.5 ms
";

#[test]
fn ping_output_parses() {
    let p = Ping::parse(PING_OK).unwrap();
    assert_eq!((p.transmitted, p.received, p.errors), (3, 3, 0));
    assert_eq!(p.rtt_avg_ms, Some(0.078));
    assert!(p.all_received());
    assert_eq!(p.frag_needed_mtu(), None);

    let p = Ping::parse(PING_FRAG).unwrap();
    assert_eq!((p.transmitted, p.received, p.errors), (2, 0, 2));
    assert_eq!(p.rtt_avg_ms, None);
    assert!(!p.all_received());
    assert_eq!(p.frag_needed_mtu(), Some(1350));
    let local = Ping { output: "ping: local error: message too long, mtu=1450".into(), ..p };
    assert_eq!(local.frag_needed_mtu(), Some(1450));

    let p = Ping::parse(PING_DUP).unwrap();
    assert_eq!((p.transmitted, p.received, p.errors, p.rtt_avg_ms), (4, 3, 0, Some(2.25)));
    assert_eq!(p.rtt_max_ms, Some(3.0));

    assert!(Ping::parse("connect: Network is unreachable\n").is_err());
    assert!(Ping::parse("x packets transmitted, 1 received").is_err());
}

// Trimmed from iperf3 3.12 `-J` output (veth between two namespaces).
static IPERF3_TCP: &str = r#"{"start": {"version": "iperf 3.12"}, "intervals": [],
 "end": {"sum_sent": {"start": 0, "end": 1.000271, "seconds": 1.000271, "bytes": 2674393088,
   "bits_per_second": 21389348190.64034, "retransmits": 14201, "sender": true},
  "sum_received": {"start": 0, "end": 1.000502, "seconds": 1.000502, "bytes": 2674393088,
   "bits_per_second": 21384409730.31538, "sender": true}}}"#;

static IPERF3_UDP: &str = r#"{"end": {"sum": {"seconds": 1.000088, "bytes": 16747520,
  "bits_per_second": 133974801.0, "lost_packets": 1804, "packets": 261680, "sender": true},
 "sum_sent": {"seconds": 1.00004, "bytes": 16747520, "bits_per_second": 133974801.0, "lost_packets": 0,
  "packets": 261680, "sender": true},
 "sum_received": {"seconds": 1.000088, "bytes": 16632064, "bits_per_second": 133044804.05724294,
  "lost_packets": 1804, "packets": 261680, "sender": false}}}"#;

static IPERF3_ERROR: &str = r#"{"start": {"connected": []}, "intervals": [], "end": {},
 "error": "unable to connect to server: Connection refused"}"#;

#[test]
fn iperf3_json_parses() {
    let t = TcpRun::from_json(IPERF3_TCP).unwrap();
    assert!((t.sent_gbps - 21.389348).abs() < 1e-5, "{t:?}");
    assert!((t.received_gbps - 21.384409).abs() < 1e-5, "{t:?}");
    assert_eq!((t.received_bytes, t.retransmits), (2_674_393_088, 14201));

    let u = UdpRun::from_json(IPERF3_UDP).unwrap();
    assert_eq!((u.packets, u.lost), (261_680, 1804));
    assert!((u.sent_pps() - 261_656.97).abs() < 0.1, "{}", u.sent_pps());
    assert!((u.received_pps() - 259_853.08).abs() < 0.1, "{}", u.received_pps());
    assert!((u.received_gbps - 0.133_044_804).abs() < 1e-6);

    let e = TcpRun::from_json(IPERF3_ERROR).unwrap_err();
    assert!(e.to_string().contains("Connection refused"), "{e}");
    assert!(UdpRun::from_json(IPERF3_TCP).is_err(), "a TCP report is no UDP report");
    assert!(TcpRun::from_json("iperf3: error - unable to connect").is_err());
}

#[test]
fn unique_ifnames_fit_and_differ() {
    let a = unique_ifname("twv");
    let b = unique_ifname("twv");
    assert_ne!(a, b);
    assert!(a.len() <= 15 && b.len() <= 15, "{a} {b}");
    assert!(a.starts_with("twv"));
}

// ---------------------------------------------------------------------------------------------------------------
// Guards

#[test]
fn guards_delete_their_world() {
    skip_unless!(Root, Netns, Veth);
    let root_if = unique_ifname("twr");
    let (ns_name, pid, orphan) = {
        let ns = NetNs::new("guards").unwrap();
        let pair = veth(End::root(&root_if), End::new(&ns, "eth0").addr("10.1.2.3/24".parse().unwrap())).unwrap();
        assert_eq!(pair.root_ends(), [root_if.as_str()]);
        assert!(root_link_exists(&root_if));
        assert!(ns.ip(&["addr", "show", "dev", "eth0"]).unwrap().contains("10.1.2.3/24"));
        assert!(NetNs::exists(ns.name()));
        // A guarded process and one left behind in the background.
        let sleeper = ns.spawn("sleeper", &["sleep", "60"]).unwrap();
        let orphan: u32 = ns.run(&["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"]).unwrap().trim().parse().unwrap();
        assert!(alive(sleeper.pid()) && alive(orphan));
        let mut expected = vec![sleeper.pid(), orphan];
        expected.sort_unstable();
        // The sleeper is in the namespace once `ip netns exec` has entered it, a moment after the spawn.
        let mut inside = Vec::new();
        let entered = netns::wait_for("both processes in the namespace", Duration::from_secs(5), || {
            inside = ns.pids();
            inside.sort_unstable();
            (inside == expected).then_some(())
        });
        assert!(entered.is_ok(), "in the namespace: {inside:?}, expected {expected:?}");
        (ns.name().to_owned(), sleeper.pid(), orphan)
        // Dropped in reverse order: sleeper, pair, ns.
    };
    assert!(!NetNs::exists(&ns_name), "namespace {ns_name} left behind");
    assert!(!root_link_exists(&root_if), "root link {root_if} left behind");
    assert!(wait_gone(pid), "guarded process {pid} left behind");
    assert!(wait_gone(orphan), "background process {orphan} left behind");
}

#[test]
fn guards_delete_their_world_when_the_test_panics() {
    skip_unless!(Root, Netns, Veth);
    let root_if = unique_ifname("twp");
    let mut seen = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let ns = NetNs::new("panics").unwrap();
        let _pair = veth(End::root(&root_if), End::new(&ns, "eth0")).unwrap();
        let sleeper = ns.spawn("sleeper", &["sleep", "60"]).unwrap();
        seen = Some((ns.name().to_owned(), sleeper.pid()));
        panic!("a test failing with its world up");
    }));
    assert!(result.is_err());
    let (ns_name, pid) = seen.unwrap();
    assert!(!NetNs::exists(&ns_name), "namespace {ns_name} left behind");
    assert!(!root_link_exists(&root_if), "root link {root_if} left behind");
    assert!(wait_gone(pid), "process {pid} left behind");
}

#[test]
fn process_stops_with_sigterm_then_sigkill_and_keeps_its_log() {
    skip_unless!(Root, Netns);
    let ns = NetNs::new("proc").unwrap();
    // A well-behaved agent: says it is ready, exits 0 on SIGTERM. The trap is set before it says so, or the
    // SIGTERM sent on "ready" could come first.
    let script = "trap 'echo bye; exit 0' TERM; echo ready >&2; while :; do sleep 0.02; done";
    let mut p = ns.spawn("polite", &["sh", "-c", script]).unwrap();
    p.wait_for_log("ready", Duration::from_secs(5)).unwrap();
    assert_eq!(p.exited(), None);
    let status = p.stop(Duration::from_secs(5));
    assert!(status.success(), "{status}");
    assert_eq!(p.log(), "ready\nbye\n");

    // One that ignores SIGTERM is killed after the grace period.
    let mut stubborn =
        ns.spawn("stubborn", &["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.02; done"]).unwrap();
    stubborn.wait_for_log("ready", Duration::from_secs(5)).unwrap();
    let t = Instant::now();
    let status = stubborn.stop(Duration::from_millis(300));
    assert_eq!(status.signal(), Some(SIGKILL), "{status}");
    assert!(t.elapsed() >= Duration::from_millis(300) && t.elapsed() < Duration::from_secs(3));

    // One that dies early: waiting for its ready line fails at once with its log, not after the timeout.
    let mut dead = ns.spawn("dead", &["sh", "-c", "echo 'bad config: pod_cidr' >&2; exit 3"]).unwrap();
    let t = Instant::now();
    let e = dead.wait_for_log("ready", Duration::from_secs(10)).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(e.to_string().contains("bad config: pod_cidr"), "{e}");
    assert_eq!(dead.exited().and_then(|s| s.code()), Some(3));

    // Commands have timeouts too.
    let t = Instant::now();
    let e = ns.run_timeout(&["sleep", "30"], Duration::from_millis(200)).unwrap_err();
    assert!(matches!(e, netns::Error::Timeout { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
    let e = ns.run(&["ip", "link", "show", "dev", "nosuch0"]).unwrap_err();
    assert!(e.to_string().contains("nosuch0"), "stderr is in the error: {e}");
}

#[test]
fn process_in_root_namespace_is_stopped_on_drop() {
    skip_unless!(Root);
    let p = Process::spawn("root-sleeper", &["sleep", "60"]).unwrap();
    let pid = p.pid();
    assert!(alive(pid));
    drop(p);
    assert!(!alive(pid));
}

// ---------------------------------------------------------------------------------------------------------------
// Pods

#[test]
fn pod_configures_an_eth0_that_appears_later() {
    skip_unless!(Root, Netns, Tun);
    let pod = Pod::new(3, 7).unwrap().with_mtu(1450);
    assert_eq!((pod.ip(), pod.gateway()), (Ipv4Addr::new(10, 244, 3, 7), Ipv4Addr::new(10, 244, 3, 1)));
    let ns_name = pod.ns.name().to_owned();
    // Taken before the spawn: eth0 cannot appear sooner than 300 ms after this, however late the thread starts.
    let t = Instant::now();
    // Stands in for the agent: a TAP named eth0 shows up in the pod after a while.
    let maker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        netns::run(&["ip", "-n", &ns_name, "tuntap", "add", "dev", "eth0", "mode", "tap"])
    });
    pod.wait_eth0(Duration::from_secs(5)).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(250));
    maker.join().unwrap().unwrap();

    let link = pod.ns.ip(&["link", "show", "dev", "eth0"]).unwrap();
    assert!(link.contains("mtu 1450") && link.contains("link/ether 0a:58:0a:f4:03:07"), "{link}");
    let addr = pod.ns.ip(&["-4", "addr", "show", "dev", "eth0"]).unwrap();
    assert!(addr.contains("inet 10.244.3.7/24"), "{addr}");
    let routes = pod.ns.ip(&["route", "show", "default"]).unwrap();
    assert!(routes.contains("default via 10.244.3.1 dev eth0"), "{routes}");

    // Nobody makes eth0 here: a bounded failure.
    let empty = Pod::new(3, 8).unwrap();
    let t = Instant::now();
    let e = empty.wait_eth0(Duration::from_millis(200)).unwrap_err();
    assert!(matches!(e, netns::Error::Timeout { .. }) && t.elapsed() < Duration::from_secs(2), "{e}");
}

#[test]
fn pod_on_a_veth_to_its_node() {
    skip_unless!(Root, Netns, Veth, Ping, Ethtool);
    let node = NetNs::new("vnode").unwrap();
    let pod = Pod::new(4, 2).unwrap();
    pod.veth_to(&node, "vethpod2").unwrap();
    // The node end: an address for the gateway, so the pod can reach it.
    node.ip(&["addr", "add", "10.244.4.1/24", "dev", "vethpod2"]).unwrap();
    let p = ping_until_ok(&pod.ns, pod.gateway(), Duration::from_secs(5)).unwrap();
    assert!(p.all_received(), "{}", p.output);
    let p = ping(&node, pod.ip(), 3, &[]).unwrap();
    assert_eq!((p.transmitted, p.received), (3, 3), "{}", p.output);
    // The node learnt the pod's MAC.
    let neigh = node.ip(&["neigh", "show", "dev", "vethpod2"]).unwrap();
    assert!(neigh.contains("10.244.4.2 lladdr 0a:58:0a:f4:04:02"), "{neigh}");

    netns::disable_offloads(&pod.ns, "eth0").unwrap();
    let features = pod.ns.run(&["ethtool", "-k", "eth0"]).unwrap();
    for off in ["tx-checksumming: off", "tcp-segmentation-offload: off", "generic-segmentation-offload: off"] {
        assert!(features.contains(off), "{off} not in {features}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Two kernel flannel nodes: the baseline

#[test]
fn two_kernel_flannel_nodes_carry_ping_and_iperf3_both_ways() {
    skip_unless!(Root, Netns, Veth, Bridge, Vxlan, Ping, Iperf3);
    let [k1, k2] = kernel_flannel_pair(1500).unwrap();
    assert_eq!(k1.mtu(), 1450);
    let a = k1.add_pod(2).unwrap();
    let b = k1.add_pod(3).unwrap();
    let c = k2.add_pod(2).unwrap();

    // Same node: bridged by cni0. Across nodes: routed into flannel.1, VXLAN over the underlay.
    let tx_before = k1.ns.link_stat("flannel.1", "tx_packets").unwrap();
    ping_until_ok(&a.ns, b.ip(), Duration::from_secs(5)).unwrap();
    ping_until_ok(&a.ns, c.ip(), Duration::from_secs(5)).unwrap();
    let p = ping(&a.ns, c.ip(), 5, &[]).unwrap();
    assert_eq!((p.transmitted, p.received, p.errors), (5, 5, 0), "{}", p.output);
    // Two routers on the way: TTL 64 − 2.
    assert!(p.output.contains("ttl=62"), "{}", p.output);
    let back = ping(&c.ns, a.ip(), 5, &[]).unwrap();
    assert!(back.all_received(), "{}", back.output);
    assert!(k1.ns.link_stat("flannel.1", "tx_packets").unwrap() >= tx_before + 5, "went through flannel.1");
    assert!(k2.ns.link_stat("flannel.1", "rx_packets").unwrap() >= 5);

    // The pods' MTU is flannel's: 1450 − 28 of headers fits, one byte more does not leave the pod.
    let fits = ping(&a.ns, c.ip(), 1, &["-M", "do", "-s", "1422"]).unwrap();
    assert!(fits.all_received(), "{}", fits.output);
    let too_big = ping(&a.ns, c.ip(), 1, &["-M", "do", "-s", "1423"]).unwrap();
    assert_eq!((too_big.received, too_big.frag_needed_mtu()), (0, Some(1450)), "{}", too_big.output);

    let server = Iperf3Server::start(&c.ns, c.ip()).unwrap();
    let up = iperf3_tcp(&a.ns, &server, 2, false).unwrap();
    let down = iperf3_tcp(&a.ns, &server, 2, true).unwrap();
    let udp = iperf3_udp(&a.ns, &server, 1, 64, "0", false).unwrap();
    eprintln!(
        "kernel flannel vxlan, pod to pod across nodes: ping avg {:.3} ms; TCP {:.2} Gbit/s ({} retransmits), \
         reverse {:.2} Gbit/s ({} retransmits); UDP 64 B: {:.0} pps sent, {:.0} pps received ({} of {} lost)",
        p.rtt_avg_ms.unwrap_or(f64::NAN),
        up.received_gbps,
        up.retransmits,
        down.received_gbps,
        down.retransmits,
        udp.sent_pps(),
        udp.received_pps(),
        udp.lost,
        udp.packets,
    );
    // Loose floors: a working kernel path does gigabits here; a broken one does nothing.
    for run in [&up, &down] {
        assert!(run.received_gbps > 0.1 && run.seconds > 1.5, "{run:?}");
        assert!(run.received_bytes > 10_000_000, "{run:?}");
    }
    assert!(udp.received_pps() > 1000.0, "{udp:?}");
    assert!(udp.lost < udp.packets, "{udp:?}");
}

#[test]
fn dead_dataplane_fails_in_bounded_time() {
    skip_unless!(Root, Netns, Veth, Bridge, Vxlan, Ping, Iperf3);
    // Node 2 does not know node 1: no route back, so nothing answers.
    let [n1, n2] = netns::underlay_pair(1500).unwrap();
    let k1 = netns::KernelFlannel::new(n1, 1, "eth0", 1500).unwrap();
    let k2 = netns::KernelFlannel::new(n2, 2, "eth0", 1500).unwrap();
    k1.add_peer(2, netns::vtep_mac(2), netns::node_ip(2)).unwrap();
    let a = k1.add_pod(2).unwrap();
    let c = k2.add_pod(2).unwrap();
    let t = Instant::now();
    let e = ping_until_ok(&a.ns, c.ip(), Duration::from_millis(1500)).unwrap_err();
    assert!(matches!(e, netns::Error::Timeout { .. }), "{e}");
    let p = ping(&a.ns, c.ip(), 2, &[]).unwrap();
    assert_eq!((p.transmitted, p.received), (2, 0), "{}", p.output);
    let server = Iperf3Server::start(&c.ns, c.ip()).unwrap();
    assert!(iperf3_tcp(&a.ns, &server, 1, false).is_err());
    // Each step is bounded (ping_until_ok 1.5 s, ping 5.4 s, the server's start 15 s, iperf3 11 s, a connection
    // that times out is not retried); it usually takes a few seconds. 40 s catches a hang, not a slow machine.
    assert!(t.elapsed() < Duration::from_secs(40), "{:?}", t.elapsed());
    assert!(Path::new("/run/netns").join(a.ns.name()).exists());
}

// ---------------------------------------------------------------------------------------------------------------
// Frames crafted and captured in namespaces

#[test]
fn crafted_frames_have_valid_checksums_and_fields() {
    use common::netns::raw::{self, Udp};
    use tweed_wire::ethernet::MacAddr;
    let (a, b) = (MacAddr::new(2, 0, 0, 0, 0, 1), MacAddr::new(2, 0, 0, 0, 0, 2));
    let f = raw::ipv4_udp(b, a, Udp::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)), b"hello");
    assert_eq!(f.len(), 14 + 20 + 8 + 5);
    assert_eq!(raw::checksum(&f[14..34]), 0, "the IPv4 header checksums to zero");
    assert_eq!((raw::dst_mac(&f), raw::src_mac(&f)), (Some(b), Some(a)));
    assert!(raw::contains(&f, b"hello") && !raw::contains(&f, b"olleh"));
    let arp = raw::arp(MacAddr::BROADCAST, a, 1, a, Ipv4Addr::new(10, 0, 0, 1), b, Ipv4Addr::new(10, 0, 0, 2));
    assert_eq!(arp.len(), 42);
    assert_eq!(raw::arp_sender(&arp), Some((a, Ipv4Addr::new(10, 0, 0, 1))));
    assert_eq!(raw::arp_sender(&f), None);
    let mut rng = raw::Rng(1);
    let m = rng.mac();
    assert!(m.is_unicast() && m.is_local() && m != rng.mac());
}

/// A frame crafted in one namespace arrives, as sent, at a capture in another, and the receiving kernel takes
/// the datagram (its UDP counters say so): the checksums are right.
#[test]
fn raw_sockets_send_and_capture_across_namespaces() {
    use common::netns::raw::{self, RawSocket, Udp};
    skip_unless!(Root, Netns, Veth);
    let (x, y) = (NetNs::new("rawx").unwrap(), NetNs::new("rawy").unwrap());
    let (xa, ya) = ("10.9.0.1/24".parse().unwrap(), "10.9.0.2/24".parse().unwrap());
    let _link = veth(End::new(&x, "eth0").addr(xa), End::new(&y, "eth0").addr(ya)).unwrap();
    let mac = |ns: &NetNs| {
        let text = ns.run(&["cat", "/sys/class/net/eth0/address"]).unwrap();
        tweed_wire::ethernet::MacAddr::from_bytes(
            &text.trim().split(':').map(|h| u8::from_str_radix(h, 16).unwrap()).collect::<Vec<_>>(),
        )
        .unwrap()
    };
    let (xm, ym) = (mac(&x), mac(&y));
    let capture = RawSocket::open(&y, "eth0").unwrap();
    let send = RawSocket::open(&x, "eth0").unwrap();
    let udp = Udp { dport: 7777, ..Udp::new(Ipv4Addr::new(10, 9, 0, 1), Ipv4Addr::new(10, 9, 0, 2)) };
    let frame = raw::ipv4_udp(ym, xm, udp, b"tweed-raw-marker");
    assert!(send.send(&frame).unwrap());
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = None;
    while got.is_none() && Instant::now() < deadline {
        if let Some(n) = capture.recv(&mut buf, Duration::from_millis(100))
            && raw::contains(&buf[..n], b"tweed-raw-marker")
        {
            got = Some(buf[..n].to_vec());
        }
    }
    assert_eq!(got.as_deref(), Some(&frame[..]), "the frame arrives as sent");
    // Nobody listens on 7777: the kernel answers port unreachable, which it does only for a datagram it took.
    let mut unreachable = false;
    let deadline = Instant::now() + Duration::from_secs(5);
    let x_capture = RawSocket::open(&x, "eth0").unwrap();
    assert!(send.send(&frame).unwrap());
    while !unreachable && Instant::now() < deadline {
        if let Some(n) = x_capture.recv(&mut buf, Duration::from_millis(100)) {
            let f = &buf[..n];
            unreachable = f.get(23) == Some(&1) && f.get(34..36) == Some(&[3, 3]);
        }
    }
    assert!(unreachable, "no port unreachable: the kernel did not take the crafted datagram");
    assert!(capture.recv(&mut buf, Duration::ZERO).is_some(), "the second frame was captured too");
}
