//! Several workers share one `Control`: a peer added or removed through it reaches every worker at its next batch,
//! without a restart; a worker cannot change peers itself; the control's counters are the sum of the workers'; and
//! what one worker learns on a pod port (the pod's ARP binding, its MAC) reaches the others, within their limits.

mod common;
#[path = "workers/learning.rs"]
mod learning;

use common::{eth, node_ip, node_mac, peer, pod_ip, pod_mac, subnet, udp_datagram, vtep_mac};
use tweed_overlay::{
    ConfigError, Control, Counters, DropReason, Node, NodeBuilder, Outputs, PeerWriter, Verdict, VxlanConfig,
};
use tweed_packet::{Batch, Pool, PoolConfig, PortId};
use tweed_switch::Instant;
use tweed_wire::ipv4;

const POD: PortId = PortId(1);

/// A UDP packet from pod 1 of node 1 to pod 1 of node 2, through the gateway.
fn to_node2(sport: u16) -> Vec<u8> {
    let mut f = eth(pod_mac(1, 0), pod_mac(1, 1), 0x0800);
    let udp = udp_datagram(pod_ip(1, 1), pod_ip(2, 1), sport, 9, &[0; 22]);
    f.extend_from_slice(&common::ipv4_packet(pod_ip(1, 1), pod_ip(2, 1), ipv4::Protocol::UDP, 64, false, &udp));
    f
}

/// The verdict of the packet itself: the node outputs what it originated on the way (an ICMP error about the
/// packet, ARP for the pod it goes to) ahead of the batch's own packets.
fn send(w: &mut Node, pool: &mut Pool, sport: u16, now: Instant) -> Verdict {
    let (mut batch, mut out) = (Batch::new(4), Outputs::new(16));
    let mut b = pool.get().unwrap();
    b.extend_from_slice(&to_node2(sport)).unwrap();
    b.meta_mut().ingress = POD;
    batch.push(b).unwrap();
    w.process(now, pool, &mut batch, &mut out);
    let v = out.as_slice().last().expect("the packet's own verdict").1;
    out.recycle(pool);
    v
}

fn control() -> Control {
    let config = NodeBuilder::new(subnet(1), node_ip(1), node_mac(1))
        .vxlan(VxlanConfig::new(vtep_mac(1)))
        .pod_ports([1, 2])
        .into_config();
    Control::new(config).unwrap()
}

#[test]
fn a_peer_added_or_removed_reaches_every_worker() {
    let mut control = control();
    let mut workers = [control.worker(), control.worker()];
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let underlay = Verdict::Underlay { dst: (node_ip(2), 8472).into(), payload_offset: 42 };
    let no_route = Verdict::Drop(DropReason::NoRoute);

    for (i, w) in workers.iter_mut().enumerate() {
        assert_eq!(send(w, &mut pool, 1000 + i as u16, Instant::from_secs(1)), no_route);
    }
    control.add_peer(peer(2)).unwrap();
    // Not published yet: the route is there, the peer is not in the workers' snapshot: a counted drop, never a
    // packet sent anywhere else.
    for w in &mut workers {
        let stale = w.counters().drop_count(DropReason::StaleNextHop);
        assert_eq!(send(w, &mut pool, 2000, Instant::from_secs(2)), Verdict::Drop(DropReason::StaleNextHop));
        assert_eq!(w.counters().drop_count(DropReason::StaleNextHop), stale + 1);
    }
    control.publish();
    for w in &mut workers {
        assert_eq!(send(w, &mut pool, 3000, Instant::from_secs(3)), underlay);
        assert_eq!(w.peers().count(), 1);
    }
    // A worker may not change peers: the control owns them.
    assert_eq!(workers[0].add_peer(peer(3)), Err(ConfigError::NotOwner));
    assert_eq!(PeerWriter::remove_peer(&mut workers[1], subnet(2)), Err(ConfigError::NotOwner));

    assert_eq!(control.remove_peer(subnet(2)).unwrap(), peer(2));
    control.publish();
    for w in &mut workers {
        assert_eq!(send(w, &mut pool, 4000, Instant::from_secs(4)), no_route);
        assert_eq!(w.peers().count(), 0);
    }
    // Added again: a new next hop id (the old one is in quarantine), seen by both.
    control.add_peer(peer(2)).unwrap();
    control.publish();
    for w in &mut workers {
        assert_eq!(send(w, &mut pool, 5000, Instant::from_secs(5)), underlay);
    }
}

#[test]
fn the_controls_counters_sum_the_workers() {
    let mut control = control();
    control.add_peer(peer(2)).unwrap();
    control.publish();
    let (mut a, mut b) = (control.worker(), control.worker());
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    for i in 0..5 {
        let _ = send(&mut a, &mut pool, i, Instant::from_secs(1));
    }
    for i in 0..3 {
        let _ = send(&mut b, &mut pool, i, Instant::from_secs(1));
    }
    // A packet from an unknown port on b: a drop of its own.
    let (mut batch, mut out) = (Batch::new(1), Outputs::new(4));
    let mut buf = pool.get().unwrap();
    buf.extend_from_slice(&to_node2(1)).unwrap();
    buf.meta_mut().ingress = PortId(77);
    batch.push(buf).unwrap();
    b.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
    out.recycle(&mut pool);

    // Published at the first call (100 ms have passed since time 0), not since: nothing new yet.
    let early = control.counters();
    assert_eq!(early.received, 2, "{early:?}");
    a.publish_counters();
    b.publish_counters();
    let sum = control.counters();
    let mut expected = Counters::default();
    expected.merge(a.counters());
    expected.merge(b.counters());
    assert_eq!(sum, expected);
    assert_eq!((a.counters().to_peer, b.counters().to_peer, sum.to_peer), (5, 3, 8));
    assert_eq!((sum.received, sum.rx_pod), (9, 8));
    assert_eq!(sum.drop_count(DropReason::UnknownPort), 1);
    // Time moves on by 100 ms: each worker publishes by itself.
    let _ = send(&mut a, &mut pool, 9, Instant::from_millis(1200));
    assert_eq!(control.counters().to_peer, 9);
}
