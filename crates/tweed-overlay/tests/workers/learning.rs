//! What one worker learns on a pod port reaches the control's other workers: a pod whose ARP worker `a` saw sends
//! through worker `b` with port security on and gets its packets from `b` without flooding or ARP; no pod takes
//! another's binding through another worker; a flood learnt through one worker leaves the others within their
//! limits, its excess dropped and counted; a binding the pod keeps confirming on one worker stays alive on the others.

use super::common::{arp_request, eth, ipv4_packet, node_ip, node_mac, peer, pod_ip, pod_mac, subnet, udp_datagram};
use tweed_overlay::{Control, DropReason, Node, NodeBuilder, Outputs, Verdict, VxlanConfig};
use tweed_packet::{Batch, Pool, PoolConfig, PortId};
use tweed_switch::{BridgeDomain, Instant, PortId as SwitchPort};
use tweed_wire::ethernet::MacAddr;
use tweed_wire::ipv4;

const BD: BridgeDomain = BridgeDomain(0);

/// A node with port security on, pods on ports `1..=ports`, node 2 as a vxlan peer.
fn secure(ports: u16) -> NodeBuilder {
    NodeBuilder::new(subnet(1), node_ip(1), node_mac(1))
        .vxlan(VxlanConfig::new(super::common::vtep_mac(1)))
        .pod_ports(1..=ports)
        .port_security(true)
        .peer(peer(2))
}

fn gw_mac(w: &Node) -> MacAddr {
    w.config().gateway_mac()
}

/// The frames (pod port, bytes) through `w` at `ms` milliseconds: every output's bytes and verdict.
fn run(w: &mut Node, pool: &mut Pool, ms: u64, frames: &[(u16, Vec<u8>)]) -> Vec<(Vec<u8>, Verdict)> {
    let (mut batch, mut out) = (Batch::new(frames.len().max(1)), Outputs::new(4 * frames.len() + 64));
    for (port, f) in frames {
        let mut b = pool.get().unwrap();
        b.extend_from_slice(f).unwrap();
        b.meta_mut().ingress = PortId(*port);
        batch.push(b).unwrap();
    }
    w.process(Instant::from_millis(ms), pool, &mut batch, &mut out);
    assert!(batch.is_empty());
    let v = out.as_slice().iter().map(|(b, v)| (b.data().to_vec(), *v)).collect();
    out.recycle(pool);
    v
}

fn verdicts(outputs: &[(Vec<u8>, Verdict)]) -> Vec<Verdict> {
    outputs.iter().map(|(_, v)| *v).collect()
}

/// Pod `n` (port `n`) asks for the gateway's MAC.
fn arp_gw(n: u8) -> Vec<u8> {
    arp_request(pod_mac(1, n), pod_ip(1, n), Ipv4Addr::new(10, 244, 1, 1))
}

use core::net::Ipv4Addr;

/// A UDP packet from `src` (with pod `n`'s MAC) to `dst`, in a frame to `dst_mac`.
fn udp(dst_mac: MacAddr, n: u8, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut f = eth(dst_mac, pod_mac(1, n), 0x0800);
    f.extend(ipv4_packet(src, dst, ipv4::Protocol::UDP, 64, false, &udp_datagram(src, dst, 4000, 9, &[7; 18])));
    f
}

const TO_NODE2: Verdict = Verdict::Underlay {
    dst: core::net::SocketAddr::new(core::net::IpAddr::V4(Ipv4Addr::new(192, 168, 0, 2)), 8472),
    payload_offset: 42,
};

#[test]
fn a_pods_arp_seen_by_one_worker_serves_its_flows_on_another() {
    let control = Control::new(secure(3).into_config()).unwrap();
    let (mut a, mut b) = (control.worker(), control.worker());
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let gw = gw_mac(&a);

    // Pod 1's ARP reaches worker a (answered there), its flow to node 2 worker b.
    assert_eq!(verdicts(&run(&mut a, &mut pool, 1000, &[(1, arp_gw(1))])), [Verdict::Port(PortId(1))]);
    assert_eq!(a.counters().learn_sent, 1);
    let flow = udp(gw, 1, pod_ip(1, 1), pod_ip(2, 1));
    assert_eq!(verdicts(&run(&mut b, &mut pool, 1001, &[(1, flow.clone())])), [TO_NODE2]);
    assert_eq!((b.counters().learn_received, b.counters().drop_count(DropReason::PortSecurity)), (1, 0));

    // Pod 2 on b sends to pod 1 through the gateway: b has pod 1's MAC, and asks nobody.
    assert_eq!(verdicts(&run(&mut b, &mut pool, 1002, &[(2, arp_gw(2))])), [Verdict::Port(PortId(2))]);
    let routed = run(&mut b, &mut pool, 1003, &[(2, udp(gw, 2, pod_ip(1, 2), pod_ip(1, 1)))]);
    assert_eq!(verdicts(&routed), [Verdict::Port(PortId(1))]);
    assert_eq!(&routed[0].0[..12], &[pod_mac(1, 1).as_bytes().as_slice(), gw.as_bytes()].concat()[..]);
    assert_eq!((b.counters().arp_requests, b.counters().to_pod), (0, 1));
    // And switched straight to pod 1's MAC: one frame out of port 1, no copy to port 3.
    let switched = run(&mut b, &mut pool, 1004, &[(2, udp(pod_mac(1, 1), 2, pod_ip(1, 2), pod_ip(1, 1)))]);
    assert_eq!(verdicts(&switched), [Verdict::Port(PortId(1))]);
    assert_eq!(b.counters().switched, 1);
    // What b learnt itself (pod 2) went the other way.
    assert_eq!((b.counters().learn_sent, a.counters().learn_received), (1, 0));
    let _ = run(&mut a, &mut pool, 1005, &[]);
    assert_eq!(a.counters().learn_received, 1);
    assert_eq!(a.bridge().arp().lookup(BD, pod_ip(1, 2)), Some(pod_mac(1, 2)));
}

#[test]
fn no_pod_takes_another_pods_binding_through_another_worker() {
    let control = Control::new(secure(3).into_config()).unwrap();
    let (mut a, mut b) = (control.worker(), control.worker());
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let gw = gw_mac(&a);
    let _ = run(&mut a, &mut pool, 1000, &[(1, arp_gw(1))]);

    // Pod 3 claims pod 1's address through b, with its own MAC: refused, as it would be on a.
    let claim = arp_request(pod_mac(1, 3), pod_ip(1, 1), Ipv4Addr::new(10, 244, 1, 200));
    assert_eq!(verdicts(&run(&mut b, &mut pool, 1001, &[(3, claim)])), [Verdict::Drop(DropReason::ArpClaimed)]);
    // Its packets from that address are not its own; with pod 1's MAC, the MAC is held by port 1.
    let spoof = udp(gw, 3, pod_ip(1, 1), pod_ip(2, 1));
    assert_eq!(verdicts(&run(&mut b, &mut pool, 1002, &[(3, spoof)])), [Verdict::Drop(DropReason::PortSecurity)]);
    let mut stolen = eth(gw, pod_mac(1, 1), 0x88b5);
    stolen.resize(60, 0);
    assert_eq!(verdicts(&run(&mut b, &mut pool, 1003, &[(3, stolen)])), [Verdict::Drop(DropReason::MacHeld)]);
    for w in [&a, &b] {
        let e = w.bridge().arp().get(BD, pod_ip(1, 1)).unwrap();
        assert_eq!(
            (e.mac, e.kind),
            (
                pod_mac(1, 1),
                tweed_switch::ArpKind::Snooped {
                    port: SwitchPort(1),
                    confirmed: Instant::from_millis(1000 + u64::from(core::ptr::eq(w, &b)))
                }
            )
        );
    }
    // Of pod 3's frames, b told a its MAC alone, on its own port: a's binding of pod 1 stays.
    assert_eq!(b.counters().learn_sent, 1);
    let _ = run(&mut a, &mut pool, 1004, &[]);
    assert_eq!(a.bridge().fdb().lookup(BD, pod_mac(1, 3), Instant::from_millis(1004)), Some(SwitchPort(3)));
    assert_eq!(a.bridge().arp().lookup(BD, pod_ip(1, 1)), Some(pod_mac(1, 1)));
}

#[test]
fn a_flood_learnt_through_one_worker_leaves_the_others_within_their_limits() {
    let control = Control::new(secure(20).into_config()).unwrap();
    let (mut a, mut b) = (control.worker(), control.worker());
    let mut pool = Pool::new(PoolConfig { buffers: 4096, ..PoolConfig::default() }).unwrap();
    // Port 2 announces 100 addresses, each from a MAC of its own: a keeps 32 bindings (the port's ARP limit) and 64
    // MACs (its FDB limit), and tells b just those.
    let flood: Vec<_> = (0..100u8)
        .map(|i| {
            (
                2,
                arp_request(
                    MacAddr::new(0x0a, 0x58, 0, 0, 2, i),
                    Ipv4Addr::new(10, 244, 1, 10 + i),
                    Ipv4Addr::new(10, 244, 1, 1),
                ),
            )
        })
        .collect();
    let _ = run(&mut a, &mut pool, 1000, &flood);
    assert_eq!((a.bridge().arp().port_len(SwitchPort(2)), a.bridge().fdb().port_learned_len(SwitchPort(2))), (32, 64));
    assert_eq!(a.counters().learn_sent, 64);
    let _ = run(&mut b, &mut pool, 1001, &[]);
    assert_eq!(b.counters().learn_received, 64);
    assert_eq!((b.bridge().arp().port_len(SwitchPort(2)), b.bridge().fdb().port_learned_len(SwitchPort(2))), (32, 64));
    // The same frames again tell nothing new.
    let _ = run(&mut a, &mut pool, 2000, &flood);
    assert_eq!(a.counters().learn_sent, 64);

    // 20 ports, 64 new MACs each (frames the router drops), while b does not run: b's inbox takes 1024, the rest is
    // dropped and counted; b's memory does not move.
    for p in 1..=20u16 {
        let frames: Vec<_> = (0..64u8)
            .map(|i| {
                let mut f = eth(
                    MacAddr::new(0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
                    MacAddr::new(0x0a, 0x58, 1, p as u8, 0, i),
                    0x88b5,
                );
                f.resize(60, 0);
                (p, f)
            })
            .collect();
        let _ = run(&mut a, &mut pool, 3000, &frames);
    }
    let sent = 64 + 19 * 64; // port 2 holds 64 MACs of the first flood still: none new
    assert_eq!((a.counters().learn_sent, a.counters().learn_dropped), (sent, sent - 64 - 1024));
    let _ = run(&mut b, &mut pool, 3001, &[]);
    assert_eq!(b.counters().learn_received, 64 + 1024);
    assert_eq!(b.bridge().fdb().learned_len(), 64 + 1024);
}

#[test]
fn a_binding_the_pod_keeps_confirming_on_one_worker_stays_alive_on_another() {
    let control = Control::new(secure(3).into_config()).unwrap();
    let (mut a, mut b) = (control.worker(), control.worker());
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let gw = gw_mac(&a);
    let _ = run(&mut a, &mut pool, 1000, &[(1, arp_gw(1))]);
    // Pod 1 talks through a every second for 100 s (an ARP entry is stale after 30 s, dead after 90 s); b only runs.
    for s in 2..=100 {
        let flow = udp(gw, 1, pod_ip(1, 1), pod_ip(2, 1));
        assert_eq!(verdicts(&run(&mut a, &mut pool, s * 1000, &[(1, flow)])), [TO_NODE2]);
        let _ = run(&mut b, &mut pool, s * 1000 + 1, &[]);
    }
    // Told at 1 s, then again every 5 s while confirmed: 6, 11, ..., 96.
    assert_eq!((a.counters().learn_sent, b.counters().learn_received), (20, 20));
    // On b: still pod 1's, reachable (a claim is refused), and its flows pass port security.
    let claim = arp_request(pod_mac(1, 3), pod_ip(1, 1), Ipv4Addr::new(10, 244, 1, 200));
    assert_eq!(verdicts(&run(&mut b, &mut pool, 100_002, &[(3, claim)])), [Verdict::Drop(DropReason::ArpClaimed)]);
    let flow = udp(gw, 1, pod_ip(1, 1), pod_ip(2, 1));
    assert_eq!(verdicts(&run(&mut b, &mut pool, 100_003, &[(1, flow)])), [TO_NODE2]);
}

#[test]
fn a_node_alone_learns_as_before_and_tells_nobody() {
    let mut node = secure(3).build().unwrap();
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let gw = gw_mac(&node);
    let flow = udp(gw, 1, pod_ip(1, 1), pod_ip(2, 1));
    assert_eq!(
        verdicts(&run(&mut node, &mut pool, 1000, &[(1, flow.clone())])),
        [Verdict::Drop(DropReason::PortSecurity)]
    );
    assert_eq!(verdicts(&run(&mut node, &mut pool, 1001, &[(1, arp_gw(1))])), [Verdict::Port(PortId(1))]);
    assert_eq!(verdicts(&run(&mut node, &mut pool, 1002, &[(1, flow)])), [TO_NODE2]);
    let c = node.counters();
    assert_eq!((c.learn_sent, c.learn_received, c.learn_dropped), (0, 0, 0));
}

#[test]
fn a_worker_dropped_is_told_nothing_and_one_left_alone_tells_nobody() {
    let control = Control::new(secure(3).into_config()).unwrap();
    let (mut a, mut b) = (control.worker(), control.worker());
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    drop(control.worker());
    let _ = run(&mut a, &mut pool, 1000, &[(1, arp_gw(1))]);
    // Told to b only: nothing waits in the dropped worker's inbox, nothing is lost.
    assert_eq!((a.counters().learn_sent, a.counters().learn_dropped), (1, 0));
    let _ = run(&mut b, &mut pool, 1001, &[]);
    assert_eq!(b.counters().learn_received, 1);
    // With b gone, a is alone: what it learns stays with it.
    drop(b);
    let _ = run(&mut a, &mut pool, 1002, &[(2, arp_gw(2))]);
    assert_eq!(a.counters().learn_sent, 1);
    // A worker made now hears of what is learnt from now on.
    let mut c = control.worker();
    let _ = run(&mut a, &mut pool, 1003, &[(3, arp_gw(3))]);
    let _ = run(&mut c, &mut pool, 1004, &[]);
    assert_eq!((a.counters().learn_sent, c.counters().learn_received), (2, 1));
    assert_eq!(c.bridge().arp().lookup(BD, pod_ip(1, 3)), Some(pod_mac(1, 3)));
    assert_eq!(c.bridge().arp().lookup(BD, pod_ip(1, 2)), None);
}
