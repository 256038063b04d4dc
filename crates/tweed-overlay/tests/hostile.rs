//! Issue 12, the node's side: what a hostile or busy pod can do to the node's own state. ARP resolution of absent
//! local addresses (bounded, rate-limited, never stalls `process`), pod source addresses (spoofing, port
//! security), fragmentation of oversized packets without DF, per-source ICMP error limits, and the validation
//! of every limit.

mod common;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use common::{Cluster, arp_request, drop_named, eth, node_ip, pod_ip, pod_mac, pod_udp, run, subnet};
use tweed_overlay::{DropReason, Instant, Limits, Node, NodeBuilder, NodeConfig, Outputs, Verdict};
use tweed_packet::{Batch, Pool, PoolConfig, PortId};
use tweed_wire::ethernet::MacAddr;
use tweed_wire::{arp, ipv4};

const P1: PortId = PortId(1);
const P2: PortId = PortId(2);

/// Finding 1: a pod sends to 10,000 absent addresses of a /16 pod subnet, into an output with room for 4. Every
/// call consumes input, the node asks for each address a bounded number of times, and its queues stay bounded.
#[test]
fn test_absent_local_ips_always_progress() {
    let sub: ipnet::Ipv4Net = "10.244.0.0/16".parse().unwrap();
    let mut node = NodeBuilder::new(sub, node_ip(1), common::node_mac(1)).pod_ports([1, 2]).build().unwrap();
    let mut pool = Pool::new(PoolConfig { buffers: 256, ..PoolConfig::default() }).unwrap();
    let me = Ipv4Addr::new(10, 244, 0, 2);
    let gw = node.config().gateway_ip();
    let gw_mac = node.config().gateway_mac();
    let mac = MacAddr::new(2, 0, 0, 0, 0xaa, 1);
    let frame = |dst: Ipv4Addr| {
        let u = common::udp_datagram(me, dst, 5000, 9, &[0; 8]);
        let mut f = eth(gw_mac, mac, 0x0800);
        f.extend(common::ipv4_packet(me, dst, ipv4::Protocol::UDP, 64, false, &u));
        f
    };
    let absent = |i: u32| Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 10, 0)) + i);
    let mut asked: HashMap<Ipv4Addr, u64> = HashMap::new();
    let mut out = Outputs::new(4);
    let mut now = Instant::from_secs(1);
    let start = now;
    // The pod first announces itself (ARP for the gateway).
    let mut batch = Batch::new(8);
    let mut b = pool.get().unwrap();
    b.extend_from_slice(&arp_request(mac, me, gw)).unwrap();
    b.meta_mut().ingress = P1;
    batch.push(b).unwrap();
    node.process(now, &mut pool, &mut batch, &mut out);
    out.recycle(&mut pool);
    let mut next = 0u32;
    let mut calls = 0;
    // 40 simulated seconds, a call every 4 ms, 8 packets each: the 10,000 addresses four times over.
    while now < start + Duration::from_secs(40) {
        while !batch.is_full() {
            let mut b = pool.get().expect("pool: the node holds buffers it should have given back");
            b.extend_from_slice(&frame(absent(next % 10_000))).unwrap();
            b.meta_mut().ingress = P1;
            batch.push(b).unwrap();
            next += 1;
        }
        let before = batch.len();
        node.process(now, &mut pool, &mut batch, &mut out);
        assert!(batch.len() < before, "call {calls} at {now:?} consumed nothing with {} outputs", out.len());
        for (buf, verdict) in out.as_slice() {
            let d = buf.data();
            if matches!(verdict, Verdict::Port(_)) && d[12..14] == [0x08, 0x06] {
                let a = arp::Repr::parse(&arp::Packet::new_checked(&d[14..]).unwrap()).unwrap();
                *asked.entry(a.target_protocol_addr).or_default() += 1;
            }
        }
        out.recycle(&mut pool);
        assert!(node.arp_pending() <= 64);
        assert!(node.arp_entries() <= 256);
        assert_eq!(node.counters().held(), node.arp_pending() as u64, "a packet unaccounted for");
        now = now + Duration::from_millis(4);
        calls += 1;
    }
    // Two pod ports: each request goes out twice. The kernel's defaults: 3 probes a second apart, then the entry
    // fails for a while; over 40 s no address is asked more than 3 × ⌈40 / 4⌉ times.
    let worst = asked.values().copied().max().unwrap_or(0);
    eprintln!("asked {} addresses, at most {worst} requests for one; {:?}", asked.len(), node.counters());
    assert!(worst <= 2 * 3 * 10, "an address was asked {worst} times in 40 s");
    assert!(!asked.is_empty(), "the node never asked");
    assert!(pool.available() >= 256 - 64 - 8, "buffers held: {}", 256 - pool.available());
}

/// Finding 8: a pod's packet with a source outside the pod subnet (a remote pod's, a peer node's underlay
/// address) or the gateway's is a counted drop, whether routed to a peer, to a local pod or to the host.
#[test]
fn test_pod_spoofed_sources_dropped() {
    let mut c = Cluster::new("vxlan", 2);
    let f = c.pod(1, 1).ping(pod_ip(2, 1), 1, 64);
    c.send_from_pod(1, f, 1);
    let f = c.pod(1, 2).ping(pod_ip(1, 1), 1, 64);
    c.send_from_pod(1, f, 2);
    c.run();
    c.underlay_log.clear();
    let seen = c.pod(1, 2).frames_seen;
    let gw = c.nodes[0].config().gateway_ip();
    let sources = [pod_ip(2, 5), node_ip(2), gw, Ipv4Addr::new(10, 244, 1, 255), Ipv4Addr::new(10, 244, 1, 0)];
    for (i, src) in sources.into_iter().enumerate() {
        for dst in [pod_ip(2, 1), pod_ip(1, 2), Ipv4Addr::new(10, 244, 1, 1)] {
            let f = pod_udp(&c.nodes[0], 1, src, dst, 16, true);
            c.inject(0, P1, f);
            c.run();
            assert_eq!(c.underlay_log.len(), 0, "source {i} {src} reached the underlay");
            assert_eq!(c.pod(1, 2).frames_seen, seen, "source {src} reached pod 2");
            assert!(c.tun_log.is_empty());
        }
    }
    assert_eq!(drop_named(&c.nodes[0], "pod_source_spoofed"), 15);
    // Control: the pod's own address still goes through.
    let f = pod_udp(&c.nodes[0], 1, pod_ip(1, 1), pod_ip(2, 1), 16, true);
    c.inject(0, P1, f);
    c.run();
    assert_eq!(c.underlay_log.len(), 1);
    // A gratuitous ARP claiming the gateway: dropped before the bridge, never flooded to pod 2.
    let garp = arp_request(pod_mac(1, 1), gw, gw);
    c.inject(0, P1, garp);
    c.run();
    assert_eq!(c.pod(1, 2).frames_seen, seen);
    assert_eq!(drop_named(&c.nodes[0], "pod_source_spoofed"), 16);
}

/// Node 1 of a two-node vxlan cluster with port security: pod 1 (port 1) is 10.244.1.2, pod 2 (port 2)
/// 10.244.1.3.
fn secure_node() -> Node {
    let toml = r#"
pod_subnet = "10.244.1.0/24"
pod_ports = [1, 2]
port_security = true

[[port_addresses]]
port = 1
ips = ["10.244.1.2"]

[[port_addresses]]
port = 2
ips = ["10.244.1.3"]

[underlay]
node_ip = "192.168.0.1"
node_mac = "02:00:c0:a8:00:01"

[backend]
type = "vxlan"
vtep_mac = "02:00:00:00:00:01"

[[peers]]
subnet = "10.244.2.0/24"
node_ip = "192.168.0.2"
vtep_mac = "02:00:00:00:00:02"
node_mac = "02:00:c0:a8:00:02"
"#;
    Node::new(NodeConfig::from_toml_str(toml).expect("port security config")).unwrap()
}

/// Finding 8 with port security: a pod may use only its port's own addresses, in IPv4 and in ARP.
#[test]
fn test_port_security() {
    let mut node = secure_node();
    let mut pool = Pool::new(PoolConfig { buffers: 64, ..PoolConfig::default() }).unwrap();
    let gw = node.config().gateway_ip();
    // Pod 1 announces itself; pod 1 claiming pod 2's address, in ARP and in IPv4, is dropped.
    let v = run(&mut node, &mut pool, &[(P1, arp_request(pod_mac(1, 1), pod_ip(1, 1), gw))]);
    assert_eq!(v, [Verdict::Port(P1)]);
    let v = run(&mut node, &mut pool, &[(P1, arp_request(pod_mac(1, 1), pod_ip(1, 2), gw))]);
    assert_eq!(v.len(), 1);
    assert!(matches!(v[0], Verdict::Drop(_)), "{v:?}");
    let steal = pod_udp(&node, 1, pod_ip(1, 2), pod_ip(2, 1), 16, true);
    let v = run(&mut node, &mut pool, &[(P1, steal)]);
    assert!(matches!(v[..], [Verdict::Drop(_)]), "{v:?}");
    assert_eq!(drop_named(&node, "port_security"), 2);
    // The bridge never learnt pod 2's address on port 1.
    assert_eq!(node.bridge().arp().lookup(tweed_switch::BridgeDomain(0), pod_ip(1, 2)), None);
    // Its own address goes through; an ARP probe (sender 0.0.0.0) too.
    let own = pod_udp(&node, 1, pod_ip(1, 1), pod_ip(2, 1), 16, true);
    let v = run(&mut node, &mut pool, &[(P1, own)]);
    assert!(matches!(v[..], [Verdict::Underlay { .. }]), "{v:?}");
    let probe = arp_request(pod_mac(1, 1), Ipv4Addr::UNSPECIFIED, pod_ip(1, 1));
    let v = run(&mut node, &mut pool, &[(P1, probe)]);
    assert!(!v.iter().any(|v| matches!(v, Verdict::Drop(_))), "{v:?}");
}

/// Finding 8 with port security and no configured addresses (the agent's default): a port owns the addresses
/// the bridge learnt from its ARP. IPv4 from any other source is dropped, and another pod's ARP claim of a fresh
/// address is dropped too (`arp_claimed`), so it cannot take the address over.
#[test]
fn test_port_security_learns_from_arp() {
    let mut node = NodeBuilder::new(subnet(1), node_ip(1), common::node_mac(1))
        .vxlan(tweed_overlay::VxlanConfig::new(common::vtep_mac(1)))
        .pod_ports([1, 2])
        .peer(common::peer(2))
        .port_security(true)
        .build()
        .unwrap();
    let mut pool = Pool::new(PoolConfig { buffers: 64, ..PoolConfig::default() }).unwrap();
    let gw = node.config().gateway_ip();
    // Before any ARP, pod 1 owns nothing: its IPv4 is dropped.
    let early = pod_udp(&node, 1, pod_ip(1, 1), pod_ip(2, 1), 16, true);
    assert_eq!(run(&mut node, &mut pool, &[(P1, early)]), [Verdict::Drop(DropReason::PortSecurity)]);
    // Pod 1 announces 10.244.1.2 (its ARP for the gateway): from then on that source passes.
    let v = run(&mut node, &mut pool, &[(P1, arp_request(pod_mac(1, 1), pod_ip(1, 1), gw))]);
    assert_eq!(v, [Verdict::Port(P1)]);
    let own = pod_udp(&node, 1, pod_ip(1, 1), pod_ip(2, 1), 16, true);
    assert!(matches!(run(&mut node, &mut pool, &[(P1, own)])[..], [Verdict::Underlay { .. }]));
    // An address pod 1 never announced is not its own.
    let other = pod_udp(&node, 1, pod_ip(1, 9), pod_ip(2, 1), 16, true);
    assert_eq!(run(&mut node, &mut pool, &[(P1, other)]), [Verdict::Drop(DropReason::PortSecurity)]);
    // Pod 2 claiming pod 1's fresh address (a gratuitous ARP): dropped, not flooded to pod 1; its IPv4 too.
    let claim = arp_request(pod_mac(1, 2), pod_ip(1, 1), pod_ip(1, 1));
    assert_eq!(run(&mut node, &mut pool, &[(PortId(2), claim)]), [Verdict::Drop(DropReason::ArpClaimed)]);
    let steal = pod_udp(&node, 2, pod_ip(1, 1), pod_ip(2, 1), 16, true);
    assert_eq!(run(&mut node, &mut pool, &[(PortId(2), steal)]), [Verdict::Drop(DropReason::PortSecurity)]);
    assert_eq!((drop_named(&node, "port_security"), drop_named(&node, "arp_claimed")), (3, 1));
}

/// A pod sending with another pod's MAC as its source (to take its switched traffic) is dropped (`mac_held`) and
/// the MAC stays with its owner, whose routed traffic keeps arriving.
#[test]
fn test_pod_cannot_take_another_pods_mac() {
    let mut node = common::node("vxlan", 1, 2);
    let mut pool = Pool::new(PoolConfig { buffers: 64, ..PoolConfig::default() }).unwrap();
    let gw = node.config().gateway_ip();
    assert_eq!(run(&mut node, &mut pool, &[(P1, arp_request(pod_mac(1, 1), pod_ip(1, 1), gw))]), [Verdict::Port(P1)]);
    // Port 2 uses pod 1's MAC (and its own address): dropped before it can move the MAC.
    let mut theft = pod_udp(&node, 2, pod_ip(1, 2), pod_ip(2, 1), 16, true);
    theft[6..12].copy_from_slice(pod_mac(1, 1).as_bytes());
    assert_eq!(run(&mut node, &mut pool, &[(PortId(2), theft)]), [Verdict::Drop(DropReason::MacHeld)]);
    // Pod 1 still gets what is routed to it.
    let to_pod1 = pod_udp(&node, 2, pod_ip(1, 2), pod_ip(1, 1), 16, true);
    let v =
        run(&mut node, &mut pool, &[(PortId(2), arp_request(pod_mac(1, 2), pod_ip(1, 2), gw)), (PortId(2), to_pod1)]);
    assert_eq!(v, [Verdict::Port(PortId(2)), Verdict::Port(P1)]);
    assert_eq!(drop_named(&node, "mac_held"), 1);
}

/// Finding 12: every limit out of its range is refused, naming the field.
#[test]
fn test_limits_out_of_range_rejected() {
    let base = common::node("vxlan", 1, 2).to_config();
    let cases: Vec<(&str, Limits)> = vec![
        ("max_outputs", Limits { max_outputs: 0, ..Limits::default() }),
        ("max_outputs", Limits { max_outputs: usize::MAX, ..Limits::default() }),
        ("max_peers", Limits { max_peers: u32::MAX, ..Limits::default() }),
        ("arp_queue", Limits { arp_queue: 0, ..Limits::default() }),
        ("arp_timeout_ms", Limits { arp_timeout_ms: 0, ..Limits::default() }),
        ("arp_timeout_ms", Limits { arp_timeout_ms: u32::MAX, ..Limits::default() }),
        ("arp_retry_ms", Limits { arp_retry_ms: 0, ..Limits::default() }),
        ("icmp_per_sec", Limits { icmp_per_sec: u32::MAX, ..Limits::default() }),
        ("icmp_burst", Limits { icmp_burst: u32::MAX, ..Limits::default() }),
    ];
    for (field, limits) in cases {
        let mut config = base.clone();
        config.limits = limits;
        let err = config.validate().expect_err(field);
        assert!(err.to_string().contains(field), "{field}: {err}");
        assert!(Node::new(config).is_err());
    }
    let mut config = base;
    config.limits = Limits::default();
    assert_eq!(config.validate(), Ok(()));
}

/// Finding 8: port addresses are checked.
#[test]
fn test_port_addresses_validated() {
    let base = || NodeBuilder::new(subnet(1), node_ip(1), common::node_mac(1)).pod_ports([1, 2]);
    let ok = base().port_security(true).port_addresses(1, [pod_ip(1, 1)]).port_addresses(2, [pod_ip(1, 2)]);
    assert_eq!(ok.into_config().validate(), Ok(()));
    let cases = [
        (base().port_addresses(3, [pod_ip(1, 1)]), "port 3: not a pod port"),
        (base().port_addresses(1, [pod_ip(2, 1)]), "port 1, 10.244.2.2: not a pod address"),
        (base().port_addresses(1, [Ipv4Addr::new(10, 244, 1, 1)]), "port 1, 10.244.1.1: not a pod address"),
        (base().port_addresses(1, [pod_ip(1, 1)]).port_addresses(2, [pod_ip(1, 1)]), "port 2, 10.244.1.2: given twice"),
        (base().port_addresses(1, [pod_ip(1, 1)]).port_addresses(1, [pod_ip(1, 2)]), "port 1: listed twice"),
        (base().port_addresses(1, (2..7).map(|i| pod_ip(1, i))), "port 1: more than 4"),
    ];
    for (b, want) in cases {
        let err = b.into_config().validate().expect_err(want).to_string();
        assert!(err.contains(want), "{err:?} lacks {want:?}");
    }
}

/// Finding 1: an address that did not answer fails for `arp_failed_ms`: packets to it are dropped at once with an
/// ICMP host unreachable, no request goes out meanwhile; after it, the node asks again.
#[test]
fn test_failed_neighbour_drops_at_once() {
    let mut node = NodeBuilder::new(subnet(1), node_ip(1), common::node_mac(1)).pod_ports([1, 2]).build().unwrap();
    let mut pool = Pool::new(PoolConfig { buffers: 64, ..PoolConfig::default() }).unwrap();
    let gw = node.config().gateway_ip();
    let absent = Ipv4Addr::new(10, 244, 1, 200);
    let to_absent = pod_udp(&node, 1, pod_ip(1, 1), absent, 8, false);
    let at = |ms: u64| Instant::from_secs(1) + Duration::from_millis(ms);
    let step = |node: &mut Node, pool: &mut Pool, ms: u64, frames: &[(PortId, Vec<u8>)]| {
        common::run_at(node, pool, at(ms), frames)
    };
    assert_eq!(
        step(&mut node, &mut pool, 0, &[(P1, arp_request(pod_mac(1, 1), pod_ip(1, 1), gw))]),
        [Verdict::Port(P1)]
    );
    // Queued; three probes a second apart (out of both ports), then the entry fails and the packet goes.
    assert_eq!(node.poll_at(), None);
    assert_eq!(step(&mut node, &mut pool, 0, &[(P1, to_absent.clone())]), [Verdict::Port(P1), Verdict::Port(P2)]);
    assert_eq!(node.poll_at(), Some(at(1000)));
    assert_eq!(step(&mut node, &mut pool, 500, &[]), []);
    assert_eq!(step(&mut node, &mut pool, 1000, &[]), [Verdict::Port(P1), Verdict::Port(P2)]);
    assert_eq!(step(&mut node, &mut pool, 2000, &[]), [Verdict::Port(P1), Verdict::Port(P2)]);
    assert_eq!(step(&mut node, &mut pool, 3000, &[]), [Verdict::Drop(tweed_overlay::DropReason::ArpTimeout)]);
    assert_eq!((node.counters().arp_requests, node.counters().arp_failed), (3, 1));
    assert_eq!(node.arp_entries(), 1);
    // Failed: dropped at once, an ICMP host unreachable back to pod 1, no request.
    let v = step(&mut node, &mut pool, 4000, &[(P1, to_absent.clone())]);
    assert_eq!(v, [Verdict::Port(P1), Verdict::Drop(tweed_overlay::DropReason::ArpFailed)]);
    assert_eq!(node.counters().arp_requests, 3);
    // The failed time over (3 s after the failure), the node asks again.
    assert_eq!(step(&mut node, &mut pool, 6000, &[]), []);
    assert_eq!(node.arp_entries(), 0);
    assert_eq!(step(&mut node, &mut pool, 6000, &[(P1, to_absent)]), [Verdict::Port(P1), Verdict::Port(P2)]);
    assert_eq!(node.counters().arp_requests, 4);
    assert_eq!(node.counters().held(), node.arp_pending() as u64);
}

/// Finding 1: one pod sending to absent addresses takes at most its share of the ARP queue
/// (`arp_queue_per_port`, 32): another pod's packet still waits for its neighbour, and the share comes back as the
/// packets leave.
#[test]
fn test_arp_queue_share_per_port() {
    let mut node = NodeBuilder::new(subnet(1), node_ip(1), common::node_mac(1)).pod_ports([1, 2]).build().unwrap();
    let mut pool = Pool::new(PoolConfig { buffers: 128, ..PoolConfig::default() }).unwrap();
    let gw = node.config().gateway_ip();
    let mut batch = Batch::new(64);
    let mut out = Outputs::new(256);
    let mut send = |node: &mut Node, secs: u64, frames: Vec<(PortId, Vec<u8>)>| {
        for (port, f) in frames {
            let mut b = pool.get().unwrap();
            b.extend_from_slice(&f).unwrap();
            b.meta_mut().ingress = port;
            batch.push(b).unwrap();
        }
        node.process(Instant::from_secs(secs), &mut pool, &mut batch, &mut out);
        assert!(batch.is_empty());
        let full = out.as_slice().iter().filter(|(_, v)| *v == Verdict::Drop(DropReason::ArpQueueFull)).count();
        out.recycle(&mut pool);
        full
    };
    let hello =
        vec![(P1, arp_request(pod_mac(1, 1), pod_ip(1, 1), gw)), (P2, arp_request(pod_mac(1, 2), pod_ip(1, 2), gw))];
    assert_eq!(send(&mut node, 1, hello), 0);
    let flood = |node: &Node, first: u8| -> Vec<(PortId, Vec<u8>)> {
        (0..40).map(|k| (P1, pod_udp(node, 1, pod_ip(1, 1), Ipv4Addr::new(10, 244, 1, first + k), 8, false))).collect()
    };
    let frames = flood(&node, 100);
    assert_eq!(send(&mut node, 1, frames), 8);
    assert_eq!(node.arp_pending(), 32);
    let other = pod_udp(&node, 2, pod_ip(1, 2), Ipv4Addr::new(10, 244, 1, 200), 8, false);
    assert_eq!(send(&mut node, 1, vec![(P2, other)]), 0);
    assert_eq!(node.arp_pending(), 33);
    // Three seconds on, all have timed out: pod 1 has its share again (for other addresses: those it asked for
    // have failed).
    assert_eq!(send(&mut node, 5, vec![]), 0);
    assert_eq!(node.arp_pending(), 0);
    let frames = flood(&node, 150);
    assert_eq!(send(&mut node, 5, frames), 8);
    assert_eq!(node.arp_pending(), 32);
}
