//! Hostile pods against a real `tweed agent` (root; skipped with one line elsewhere): frames crafted in a pod's
//! network namespace (a packet socket on its `eth0`), what reaches the other pods captured in theirs.
//! - ARP (finding 6 of issue 12): a flood of requests from random sender addresses leaves room for a new pod; a
//!   pod's ARP claiming another pod's address takes none of its traffic; a claim of the gateway's address reaches
//!   no other pod.
//! - MAC learning (finding 7): a flood of random source MACs leaves every other pod reachable, and none of their
//!   frames is flooded to the attacker.
//! - Source addresses (finding 8): a pod sending as another local pod, a remote pod, the gateway or a peer node
//!   reaches nobody, and the agent counts the drops.
#![cfg(target_os = "linux")]

#[path = "../../tweed-io/tests/common/mod.rs"]
mod common;
mod world;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::netns::raw::{self, RawSocket, Rng, Udp};
use common::netns::{self, NetNs, Pod, gateway, node_ip, ping, ping_until_ok, underlay_pair};
use tweed_wire::ethernet::MacAddr;
use world::{
    Agent, TapPort, WARM_UP, agent_takes_pod_addresses, agent_toml, one_at_a_time, quiet_ipv6, start_agent, wait_pods,
};

/// The gateway's MAC on node 1 (the MAC-from-IP of `10.244.1.1`).
const GW_MAC: MacAddr = MacAddr::new(0x0a, 0x58, 10, 244, 1, 1);

/// Two nodes: node 1 with a pod per entry of `hosts` (`10.244.1.<host>`), node 2 with one pod (`10.244.2.2`).
struct World {
    pods: Vec<Pod>,
    far: Pod,
    nodes: [NetNs; 2],
}

/// The two agents (declared after their [`World`], so dropped, that is stopped, before its namespaces go).
struct Agents {
    node1: Agent,
    node2: Agent,
}

impl Agents {
    fn stop(self) {
        self.node1.stop();
        self.node2.stop();
    }
}

impl World {
    fn new(hosts: &[u8]) -> Self {
        let nodes = underlay_pair(1500).unwrap();
        let pods: Vec<Pod> = hosts.iter().map(|&h| Pod::new(1, h).unwrap().with_mtu(1450)).collect();
        let far = Pod::new(2, 2).unwrap().with_mtu(1450);
        for p in pods.iter().chain([&far]) {
            quiet_ipv6(&p.ns);
        }
        Self { pods, far, nodes }
    }

    /// Starts both agents; the pods whose number is in `late` are left unconfigured (a pod that comes later: its
    /// TAP exists, it has said nothing yet). `extra1` goes to node 1's file.
    fn start(&self, late: &[u8], extra1: &str) -> Agents {
        self.start_with(late, extra1, false)
    }

    /// [`start`](Self::start), and with `addresses`, each pod's address in its `[[pods]]` (when the agent takes
    /// the field: see [`agent_takes_pod_addresses`]).
    fn start_with(&self, late: &[u8], extra1: &str, addresses: bool) -> Agents {
        let addresses = addresses && agent_takes_pod_addresses();
        fn port(p: &Pod, addresses: bool) -> TapPort<'_> {
            let own = if addresses { vec![p.ip()] } else { Vec::new() };
            TapPort { addresses: own, ..TapPort::pod(p, Some(1450)) }
        }
        let ports: Vec<TapPort<'_>> = self.pods.iter().map(|p| port(p, addresses)).collect();
        let node1 = start_agent(&self.nodes[0], "agent1", &agent_toml(1, 2, &ports, extra1), WARM_UP);
        let far = [port(&self.far, addresses)];
        let node2 = start_agent(&self.nodes[1], "agent2", &agent_toml(2, 1, &far, ""), WARM_UP);
        let now: Vec<&Pod> = self.pods.iter().filter(|p| !late.contains(&p.ip().octets()[3])).collect();
        wait_pods(&now);
        wait_pods(&[&self.far]);
        Agents { node1, node2 }
    }

    fn pod(&self, host: u8) -> &Pod {
        self.pods.iter().find(|p| p.ip().octets()[3] == host).unwrap()
    }

    /// `from` reaches `to` (warm-up included), then three pings in a row get through.
    fn reach(&self, from: &Pod, to: &Pod, what: &str) {
        let (a, b) = (from.ip(), to.ip());
        ping_until_ok(&from.ns, b, WARM_UP).unwrap_or_else(|e| panic!("{what}: {a} -> {b}: {e}"));
        let p = ping(&from.ns, b, 3, &["-w", "4"]).unwrap();
        assert_eq!(p.received, 3, "{what}: {a} -> {b}: {}", p.output);
    }
}

/// Sends `frames` from `sock`, at most `window` ahead of the frames `done` says were handled (`done(wait)` may
/// wait that long for news); a window that makes no progress for 100 ms is let go (a node that answers nothing
/// still gets every frame, paced). Returns how many were sent.
fn send_paced(
    sock: &RawSocket,
    frames: impl Iterator<Item = Vec<u8>>,
    window: u64,
    mut done: impl FnMut(Duration) -> u64,
) -> u64 {
    let (mut sent, mut acked, mut credit) = (0u64, 0u64, 0u64);
    for f in frames {
        let mut stalled = Instant::now();
        while sent >= acked + credit + window {
            let now = done(Duration::from_millis(5));
            if now > acked {
                acked = now;
                stalled = Instant::now();
            } else if stalled.elapsed() > Duration::from_millis(100) {
                credit += window;
                stalled = Instant::now();
            }
        }
        while !sock.send(&f).unwrap() {
            std::thread::yield_now();
        }
        sent += 1;
    }
    sent
}

/// Finding 6: one pod sends 12,000 ARP requests for the gateway from as many sender addresses outside the pod
/// subnet (more than the node's whole ARP table). A pod that comes up afterwards is reachable from the other node,
/// and so is one that was there before.
#[test]
fn arp_flood_leaves_room_for_a_new_pod() {
    skip_unless!(Root, Netns, Veth, Tun, Ping);
    let _serial = one_at_a_time();
    let w = World::new(&[2, 3, 5]);
    let mut agents = w.start(&[5], "");
    let (attacker, old, new) = (w.pod(2), w.pod(3), w.pod(5));
    w.reach(&w.far, attacker, "before");
    w.reach(&w.far, old, "before");
    let before = agents.node1.counters();

    let sock = RawSocket::open(&attacker.ns, "eth0").unwrap();
    let (mac, gw) = (attacker.mac(), gateway(1));
    let frames = (0..12_000u32).map(|i| {
        let spa = Ipv4Addr::from(0x0a80_0000 + i); // 10.128.0.0 + i: outside 10.244.1.0/24
        raw::arp(MacAddr::BROADCAST, mac, 1, mac, spa, MacAddr::new(0, 0, 0, 0, 0, 0), gw)
    });
    // The gateway's answers say how far the node got.
    let mut replies = 0u64;
    let mut buf = vec![0u8; 2048];
    let sent = send_paced(&sock, frames, 256, |wait| {
        let mut wait = wait;
        while let Some(n) = sock.recv(&mut buf, wait) {
            wait = Duration::ZERO;
            let f = &buf[..n];
            if raw::src_mac(f) == Some(GW_MAC) && raw::arp_sender(f).is_some_and(|(_, ip)| ip == gw) {
                replies += 1;
            }
        }
        replies
    });
    let after = agents.node1.counters();
    let read = after.get("rx_pod") - before.get("rx_pod");
    eprintln!(
        "ARP flood: {sent} sent, {replies} answered, {read} read by the agent; drops {:?}",
        after.drops_since(&before)
    );
    // More than the node's whole ARP table (8,191) reached it, or the test proves nothing.
    assert!(read > 9_000, "the agent read only {read} of the flood's {sent} frames");

    wait_pods(&[new]);
    w.reach(&w.far, new, "a pod that came after the ARP flood");
    w.reach(&w.far, old, "a pod from before the ARP flood");
    w.reach(new, old, "between the two");
    agents.stop();
}

/// The ARP frames that claim `ip` for `mac`: gratuitous requests and replies (sender = target = `ip`), a request
/// for the gateway and a reply to it from `ip`.
fn claims(mac: MacAddr, ip: Ipv4Addr, gw: Ipv4Addr) -> Vec<Vec<u8>> {
    let zero = MacAddr::new(0, 0, 0, 0, 0, 0);
    vec![
        raw::arp(MacAddr::BROADCAST, mac, 1, mac, ip, zero, ip),
        raw::arp(MacAddr::BROADCAST, mac, 2, mac, ip, MacAddr::BROADCAST, ip),
        raw::arp(MacAddr::BROADCAST, mac, 1, mac, ip, zero, gw),
        raw::arp(GW_MAC, mac, 2, mac, ip, GW_MAC, gw),
    ]
}

/// Finding 6: while one pod keeps claiming another pod's address by ARP (gratuitous or not, every 50 ms), that
/// pod's traffic from the other node still reaches it, and none of it reaches the claimant.
#[test]
fn arp_claim_of_another_pods_ip_takes_nothing() {
    skip_unless!(Root, Netns, Veth, Tun, Ping);
    let _serial = one_at_a_time();
    let w = World::new(&[2, 3]);
    let agents = w.start(&[], "");
    let (attacker, victim) = (w.pod(2), w.pod(3));
    w.reach(&w.far, victim, "before");
    w.reach(attacker, &w.far, "before");
    let sock = RawSocket::open(&attacker.ns, "eth0").unwrap();
    let frames = claims(attacker.mac(), victim.ip(), gateway(1));
    let stop = AtomicBool::new(false);
    let rounds = AtomicU64::new(0);
    let (p, stolen) = std::thread::scope(|s| {
        let claimer = s.spawn(|| {
            let mut buf = vec![0u8; 65536];
            let mut stolen = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for f in &frames {
                    sock.send(f).unwrap();
                }
                rounds.fetch_add(1, Ordering::Relaxed);
                let end = Instant::now() + Duration::from_millis(50);
                while let Some(n) = sock.recv(&mut buf, end.saturating_duration_since(Instant::now())) {
                    let f = &buf[..n];
                    if f.get(12..14) == Some(&[8, 0]) && f.get(30..34) == Some(&victim.ip().octets()) {
                        stolen += 1;
                    }
                }
            }
            stolen
        });
        // A few rounds of claims go out before the pings start.
        netns::wait_for("claims", Duration::from_secs(5), || (rounds.load(Ordering::Relaxed) >= 4).then_some(()))
            .unwrap();
        let p = ping(&w.far.ns, victim.ip(), 10, &["-w", "6"]).unwrap();
        stop.store(true, Ordering::Relaxed);
        (p, claimer.join().unwrap())
    });
    assert_eq!(stolen, 0, "{stolen} packets for {} reached the pod claiming its address", victim.ip());
    assert!(p.received >= 9, "pings to the claimed pod: {}", p.output);
    w.reach(attacker, &w.far, "the claimant itself");
    agents.stop();
}

/// Finding 6: a pod's ARP claims of the gateway's address (gratuitous or not, broadcast) are dropped: another
/// pod's capture sees none of them, only the frame the claimant sends it afterwards.
#[test]
fn arp_claim_of_the_gateway_is_not_flooded() {
    skip_unless!(Root, Netns, Veth, Tun, Ping);
    let _serial = one_at_a_time();
    let w = World::new(&[2, 3]);
    let agents = w.start(&[], "");
    let (attacker, other) = (w.pod(2), w.pod(3));
    w.reach(attacker, other, "before");
    w.reach(other, attacker, "before");
    let capture = RawSocket::open(&other.ns, "eth0").unwrap();
    let sock = RawSocket::open(&attacker.ns, "eth0").unwrap();
    let gw = gateway(1);
    let mut claims = claims(attacker.mac(), gw, gw);
    claims.push(raw::arp(MacAddr::BROADCAST, attacker.mac(), 2, attacker.mac(), gw, MacAddr::BROADCAST, other.ip()));
    for _ in 0..5 {
        for f in &claims {
            assert!(sock.send(f).unwrap());
        }
    }
    // Frames from one pod are handled in order: once this one arrives, every claim was.
    let marker = b"tweed-after-the-claims";
    let after = raw::ipv4_udp(other.mac(), attacker.mac(), Udp::new(attacker.ip(), other.ip()), marker);
    assert!(sock.send(&after).unwrap());
    let (mut flooded, mut seen) = (0, false);
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !seen && Instant::now() < deadline {
        let Some(n) = capture.recv(&mut buf, Duration::from_millis(100)) else { continue };
        let f = &buf[..n];
        if raw::arp_sender(f).is_some_and(|(_, ip)| ip == gw) && raw::src_mac(f) == Some(attacker.mac()) {
            flooded += 1;
        }
        seen |= raw::contains(f, marker);
    }
    assert_eq!(flooded, 0, "{flooded} ARP claims of the gateway {gw} reached {}", other.ip());
    assert!(seen, "the claimant's frame to {} never arrived", other.ip());
    w.reach(other, &w.far, "after the claims");
    agents.stop();
}

/// Finding 7: one pod sends frames from random source MACs for 3 s, as fast as it can (hundreds of thousands,
/// many times the node's whole MAC table). Afterwards a new pod comes up: it and the older pods are reachable from
/// their own node and the other, and the attacker's capture sees no frame addressed to any of them.
#[test]
fn mac_flood_leaves_others_reachable_and_unflooded() {
    skip_unless!(Root, Netns, Veth, Tun, Ping);
    let _serial = one_at_a_time();
    let w = World::new(&[2, 3, 4, 5]);
    let mut agents = w.start(&[5], "");
    let (attacker, b, c, new) = (w.pod(2), w.pod(3), w.pod(4), w.pod(5));
    w.reach(&w.far, b, "before");
    w.reach(&w.far, c, "before");
    w.reach(attacker, &w.far, "before");
    let before = agents.node1.counters();

    let sock = RawSocket::open(&attacker.ns, "eth0").unwrap();
    // To the gateway, an IPv4 header with a wrong checksum: learnt by the bridge, then dropped by the router.
    let mut frame =
        raw::ethernet(GW_MAC, attacker.mac(), raw::ETH_IPV4, &[0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0xde, 0xad]);
    frame.extend_from_slice(&[10, 244, 1, 2, 10, 244, 1, 1]);
    let mut rng = Rng(0x7eed_f00d);
    let (mut sent, start) = (0u64, Instant::now());
    while start.elapsed() < Duration::from_secs(3) {
        for _ in 0..256 {
            frame[6..12].copy_from_slice(rng.mac().as_bytes());
            if sock.send(&frame).unwrap() {
                sent += 1;
            }
        }
    }
    drop(sock);
    let after = agents.node1.counters();
    let read = after.get("rx_pod") - before.get("rx_pod");
    eprintln!("MAC flood: {sent} frames sent, {read} read by the agent; drops {:?}", after.drops_since(&before));
    assert!(read > 3 * 8192, "the agent read only {read} frames of the flood: the test proves nothing");

    let capture = RawSocket::open(&attacker.ns, "eth0").unwrap();
    wait_pods(&[new]);
    let others = [b.mac(), c.mac(), new.mac()];
    let assert_unflooded = |after: &str| {
        let mut leaked = Vec::new();
        capture.drain(Duration::from_millis(300), Duration::from_secs(5), |f| {
            if raw::src_mac(f) != Some(attacker.mac()) && raw::dst_mac(f).is_some_and(|m| others.contains(&m)) {
                leaked.push(raw::dst_mac(f).unwrap());
            }
        });
        let some = &leaked[..leaked.len().min(8)];
        assert!(leaked.is_empty(), "{after}: {} frames for other pods reached the attacker: {some:?}", leaked.len());
    };
    w.reach(b, new, "same node, to the pod that came after the flood");
    assert_unflooded("a ping between pods of its node");
    w.reach(&w.far, new, "other node, to the pod that came after the flood");
    w.reach(c, b, "same node, between older pods");
    w.reach(&w.far, c, "other node, to an older pod");
    assert_unflooded("pings from the other node");
    agents.stop();
}

/// Finding 8: a pod sends UDP as a pod of the other node, the gateway, the other node's underlay address and an
/// address of nowhere (see [`spoof`]): none of it arrives, each is a counted drop.
#[test]
fn spoofed_sources_are_dropped_and_counted() {
    skip_unless!(Root, Netns, Veth, Tun, Ping);
    let _serial = one_at_a_time();
    spoof(false, |_, gw| {
        vec![
            ("a remote pod", Ipv4Addr::new(10, 244, 2, 9)),
            ("the gateway", gw),
            ("the peer node", node_ip(2)),
            ("nowhere", Ipv4Addr::new(198, 51, 100, 7)),
        ]
    });
}

/// Finding 8, port security (on by default in the agent; it needs each pod's addresses in its `[[pods]]`, given
/// here when the agent takes the field, and an agent from before runs as its files were written then): a pod
/// sends UDP as another pod of its node and as an unused address of the pod subnet (see [`spoof`]): none of it
/// arrives, each is a counted drop.
#[test]
fn port_security_drops_other_addresses_of_the_subnet() {
    skip_unless!(Root, Netns, Veth, Tun, Ping);
    let _serial = one_at_a_time();
    spoof(true, |other, _| {
        vec![("another local pod", other), ("an unused address of the pod subnet", Ipv4Addr::new(10, 244, 1, 77))]
    });
}

/// Pod `.2` of node 1 sends ten UDP datagrams from each of the `sources` (given pod `.4`'s address and the
/// gateway's), to pod `.3` of its node (routed and switched), to the other node's pod and to the host (the
/// gateway's address, which the node hands to the host's TUN). Captures at each destination see none of it,
/// but do see the pod's own packets sent afterwards; the agent counts a drop for each.
fn spoof(addresses: bool, sources: impl FnOnce(Ipv4Addr, Ipv4Addr) -> Vec<(&'static str, Ipv4Addr)>) {
    let w = World::new(&[2, 3, 4]);
    let mut agents = w.start_with(&[], "[host]\ntun = \"tweed0\"\n", addresses);
    let (attacker, dst, other) = (w.pod(2), w.pod(3), w.pod(4));
    w.reach(attacker, &w.far, "before");
    w.reach(attacker, dst, "before");
    w.reach(other, dst, "before");
    w.reach(&w.far, dst, "before");
    let gw = gateway(1);
    let sources = sources(other.ip(), gw);
    // (what, destination MAC, destination IP, where to capture, interface)
    let dests: [(&str, MacAddr, Ipv4Addr, &NetNs, &str); 4] = [
        ("a local pod, routed", GW_MAC, dst.ip(), &dst.ns, "eth0"),
        ("a local pod, switched", dst.mac(), dst.ip(), &dst.ns, "eth0"),
        ("the other node's pod", GW_MAC, w.far.ip(), &w.far.ns, "eth0"),
        ("the host", GW_MAC, gw, &w.nodes[0], "tweed0"),
    ];
    let captures: Vec<RawSocket> = dests.iter().map(|d| RawSocket::open(d.3, d.4).unwrap()).collect();
    let before = agents.node1.counters();
    let sock = RawSocket::open(&attacker.ns, "eth0").unwrap();
    const EACH: u64 = 10;
    let mut spoofed = 0;
    for (s, (_, src)) in sources.iter().enumerate() {
        for (d, (_, mac, ip, _, _)) in dests.iter().enumerate() {
            let marker = format!("tweed-spoof-{s}-{d}");
            let f = raw::ipv4_udp(*mac, attacker.mac(), Udp::new(*src, *ip), marker.as_bytes());
            for _ in 0..EACH {
                assert!(sock.send(&f).unwrap());
                spoofed += 1;
            }
        }
    }
    // The attacker's own packets, after the spoofed ones: when one arrives, everything sent before it was handled.
    for (d, (_, mac, ip, _, _)) in dests.iter().enumerate() {
        let f =
            raw::ipv4_udp(*mac, attacker.mac(), Udp::new(attacker.ip(), *ip), format!("tweed-legit-{d}").as_bytes());
        assert!(sock.send(&f).unwrap());
    }
    let mut arrived = Vec::new();
    for (d, cap) in captures.iter().enumerate() {
        let legit = format!("tweed-legit-{d}");
        let mut seen = false;
        let mut buf = vec![0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(5);
        while !seen && Instant::now() < deadline {
            let Some(n) = cap.recv(&mut buf, Duration::from_millis(100)) else { continue };
            let f = &buf[..n];
            seen |= raw::contains(f, legit.as_bytes());
            for (s, (what, _)) in sources.iter().enumerate() {
                if raw::contains(f, format!("tweed-spoof-{s}-{d}").as_bytes()) {
                    arrived.push(format!("from {what} to {}", dests[d].0));
                }
            }
        }
        assert!(seen, "the attacker's own packet to {} never arrived", dests[d].0);
    }
    arrived.dedup();
    assert!(arrived.is_empty(), "spoofed packets arrived: {arrived:#?}");
    let after = agents.node1.counters();
    let drops = after.total_drops() - before.total_drops();
    assert!(drops >= spoofed, "{spoofed} spoofed packets, {drops} drops counted: {:?}", after.drops_since(&before));
    eprintln!("spoofing: {spoofed} packets, drops {:?}", after.drops_since(&before));
    w.reach(attacker, &w.far, "the attacker itself, after");
    agents.stop();
}

/// The agent's `counters` line as the tests read it: the drop reasons apart from the other counters.
#[test]
fn counters_line_parses() {
    let line = "2026-12-06T07:32:10Z  INFO tweed::agent: counters rx_pod=242 tx_pod=75 rx_errors=0 unprocessed=2 \
                to_peer=19 switched=37 drops=ipv4_version=1 pod_source_spoofed=160";
    let c = world::Counters::parse(line);
    assert_eq!((c.get("rx_pod"), c.get("unprocessed"), c.get("pod_source_spoofed")), (242, 2, 160));
    assert_eq!(c.total_drops(), 161);
    let before = world::Counters::parse("counters rx_pod=1 drops=ipv4_version=1");
    assert_eq!(c.drops_since(&before).into_iter().collect::<Vec<_>>(), [("pod_source_spoofed".to_owned(), 160)]);
    assert_eq!(world::Counters::parse("counters rx_pod=1 drops=").total_drops(), 0);
}
