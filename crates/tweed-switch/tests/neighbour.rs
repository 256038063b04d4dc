//! Snooped ARP entries as a neighbour table: the subnet snooping may learn, states and `Bridge::resolve`, the
//! GC threshold, per-port limits and the ports that go away.

mod common;

use core::net::Ipv4Addr;

use tweed_switch::{
    ArpConfig, ArpKind, ArpState, Bridge, BridgeConfig, BridgeError, Decision, Instant, PortConfig, PortId,
};
use tweed_wire::arp;
use tweed_wire::ethernet::MacAddr;

use common::*;

/// A request from pod `i` (MAC `pod_mac(i)`, on port `i`) with sender address `ip`, for `target`.
fn ask(b: &mut Bridge, now: Instant, i: u16, ip: Ipv4Addr, target: Ipv4Addr) -> Decision {
    let req = arp::Repr::request(pod_mac(i), ip, target);
    one(b, now, PortId(i), &arp_frame(MacAddr::BROADCAST, pod_mac(i), &req))
}

#[test]
fn snooping_learns_only_the_configured_subnet() {
    let mut b = node_bridge();
    assert_eq!(b.set_arp_subnet(BD, Ipv4Addr::new(10, 244, 1, 77), 33), Err(BridgeError::InvalidPrefix(33)));
    b.set_arp_subnet(BD, Ipv4Addr::new(10, 244, 1, 77), 24).unwrap();
    let outside = [
        Ipv4Addr::new(10, 244, 2, 5),
        Ipv4Addr::new(192, 168, 0, 1),
        Ipv4Addr::new(10, 244, 1, 0),
        Ipv4Addr::new(10, 244, 1, 255),
    ];
    for ip in outside {
        // Still answered (a request for the gateway) and not dropped: only snooping is refused.
        assert_eq!(ask(&mut b, t(1), 1, ip, GW_IP), Decision::ArpReply { mac: GW });
        assert_eq!(b.arp().lookup(BD, ip), None, "{ip}");
    }
    assert_eq!(ask(&mut b, t(1), 1, pod_ip(1), GW_IP), Decision::ArpReply { mac: GW });
    assert_eq!(b.arp().lookup(BD, pod_ip(1)), Some(pod_mac(1)));
    let c = b.port_counters(PortId(1)).unwrap();
    assert_eq!((c.arp_outside_subnet, c.arp_snoop_refused, c.arp_snooped), (4, 4, 1));
    // A /31 and a /32 have no network or broadcast address to keep out.
    b.set_arp_subnet(BD, Ipv4Addr::new(10, 244, 1, 0), 31).unwrap();
    let _ = ask(&mut b, t(1), 2, Ipv4Addr::new(10, 244, 1, 0), GW_IP);
    assert_eq!(b.arp().lookup(BD, Ipv4Addr::new(10, 244, 1, 0)), Some(pod_mac(2)));
    // Without a subnet, any host address again.
    b.clear_arp_subnet(BD);
    let _ = ask(&mut b, t(1), 3, Ipv4Addr::new(192, 168, 0, 3), GW_IP);
    assert_eq!(b.arp().lookup(BD, Ipv4Addr::new(192, 168, 0, 3)), Some(pod_mac(3)));
}

#[test]
fn resolve_follows_the_entry_state_and_traffic() {
    let mut b = node_bridge();
    assert_eq!(b.resolve(BD, GW_IP, t(1)), Some((GW, PortId::LOCAL)));
    assert_eq!(b.resolve(BD, pod_ip(1), t(1)), None);
    let _ = ask(&mut b, t(1), 1, pod_ip(1), GW_IP);
    let _ = ask(&mut b, t(1), 2, pod_ip(2), GW_IP);
    let Some(e) = b.arp().get(BD, pod_ip(1)) else { panic!("not snooped") };
    assert_eq!(e.kind, ArpKind::Snooped { port: PortId(1), confirmed: t(1) });
    assert_eq!(b.arp().state(t(1), t(30)), ArpState::Reachable);
    assert_eq!(b.arp().state(t(1), t(31)), ArpState::Stale);
    assert_eq!(b.arp().state(t(1), t(91)), ArpState::Dead);
    assert_eq!(b.arp().state(t(1), t(0)), ArpState::Reachable, "time going backwards");
    // Reachable, then stale: both resolve.
    assert_eq!(b.resolve(BD, pod_ip(1), t(2)), Some((pod_mac(1), PortId(1))));
    assert_eq!(b.resolve(BD, pod_ip(1), t(60)), Some((pod_mac(1), PortId(1))));
    // Pod 2 keeps sending: its entry never dies. Pod 1 does not: dead at 91 s, though still stored.
    for s in (10..=200).step_by(10) {
        let _ = one(&mut b, t(s), PortId(2), &ip_frame(GW, pod_mac(2)));
    }
    assert_eq!(b.resolve(BD, pod_ip(1), t(91)), None);
    assert_eq!(b.arp().lookup(BD, pod_ip(1)), Some(pod_mac(1)));
    assert_eq!(b.resolve(BD, pod_ip(2), t(200)), Some((pod_mac(2), PortId(2))));
    // A dead entry is not answered for: the request is bridged.
    assert_eq!(ask(&mut b, t(200), 2, pod_ip(2), pod_ip(1)), Decision::Flood { local: true });
    // The sweep collects it and records the traffic that kept the other one.
    assert_eq!(b.age(t(200), usize::MAX), 1);
    assert_eq!((b.arp().lookup(BD, pod_ip(1)), b.arp().collected()), (None, 1));
    assert_eq!(
        b.arp().get(BD, pod_ip(2)).map(|e| e.kind),
        Some(ArpKind::Snooped { port: PortId(2), confirmed: t(200) })
    );
    // A pod that sends pod 2's MAC moves it in the FDB, but pod 2's address does not follow the MAC there.
    let _ = one(&mut b, t(201), PortId(3), &ip_frame(GW, pod_mac(2)));
    assert_eq!(b.fdb().lookup(BD, pod_mac(2), t(201)), Some(PortId(3)));
    assert_eq!(b.resolve(BD, pod_ip(2), t(201)), None);
}

#[test]
fn above_the_gc_threshold_stale_entries_go_too() {
    let mut b = node_bridge();
    b.set_arp_config(&ArpConfig { gc_thresh: 4, ..ArpConfig::default() });
    for i in 1..=6 {
        let _ = ask(&mut b, t(1), i, pod_ip(i), GW_IP);
    }
    let _ = ask(&mut b, t(35), 6, pod_ip(6), GW_IP);
    assert_eq!(b.arp().len(), 7);
    // At 40 s pods 1-5 are stale, pod 6 reachable: stale ones go until 4 entries are left.
    assert_eq!(b.age(t(40), usize::MAX), 3);
    assert_eq!(b.arp().len(), 4);
    assert_eq!(b.arp().lookup(BD, pod_ip(6)), Some(pod_mac(6)));
    assert_eq!(b.arp().lookup(BD, GW_IP), Some(GW));
    // Below the threshold, stale entries stay until they are dead.
    assert_eq!(b.age(t(60), usize::MAX), 0);
    assert_eq!(b.age(t(95), usize::MAX), 2);
    assert_eq!(b.arp().len(), 2);
}

#[test]
fn per_port_arp_limits() {
    let mut b = node_bridge();
    assert_eq!(PortConfig::new(BD).max_arp, Some(PortConfig::DEFAULT_MAX_ARP));
    b.add_port(PortId(1), PortConfig::new(BD).with_arp_snoop(true).with_max_arp(Some(2))).unwrap();
    for k in 0..3 {
        let _ = ask(&mut b, t(1), 1, Ipv4Addr::new(10, 244, 1, 100 + k), GW_IP);
    }
    assert_eq!(b.arp().port_len(PortId(1)), 2);
    assert_eq!(b.port_counters(PortId(1)).unwrap().arp_port_limit_hit, 1);
    // Its own address, already owned, is still confirmed at the limit.
    let _ = ask(&mut b, t(2), 1, Ipv4Addr::new(10, 244, 1, 100), GW_IP);
    assert_eq!(b.port_counters(PortId(1)).unwrap().arp_snooped, 3);
    // Once its entries are dead, they make room (the table is small enough for the bounded reclaim to reach).
    let mut small = Bridge::new(&BridgeConfig { max_arp: Some(16), ..BridgeConfig::default() });
    small.add_port(PortId(1), PortConfig::new(BD).with_arp_snoop(true).with_max_arp(Some(2))).unwrap();
    // (From MACs the port stops using: traffic from a MAC confirms every address bound to it.)
    for k in 0..2 {
        let mac = pod_mac(20 + u16::from(k));
        let req = arp::Repr::request(mac, Ipv4Addr::new(10, 244, 1, 100 + k), GW_IP);
        let _ = one(&mut small, t(1), PortId(1), &arp_frame(MacAddr::BROADCAST, mac, &req));
    }
    assert_eq!(small.arp().port_len(PortId(1)), 2);
    let _ = ask(&mut small, t(100), 1, Ipv4Addr::new(10, 244, 1, 102), GW_IP);
    assert_eq!(small.arp().lookup(BD, Ipv4Addr::new(10, 244, 1, 102)), Some(pod_mac(1)));
    // The reclaim stops as soon as there is room; the sweep takes the other dead entry.
    assert_eq!(small.arp().port_len(PortId(1)), 2);
    assert_eq!(small.age(t(100), usize::MAX), 1);
    assert_eq!(small.arp().port_len(PortId(1)), 1);
    // No limit.
    b.add_port(PortId(2), PortConfig::new(BD).with_arp_snoop(true).with_max_arp(None)).unwrap();
    for k in 0..100 {
        let _ = ask(&mut b, t(3), 2, Ipv4Addr::new(10, 245, 0, k), GW_IP);
    }
    assert_eq!(b.arp().port_len(PortId(2)), 100);
}

#[test]
fn a_port_that_goes_away_takes_its_addresses() {
    let mut b = node_bridge();
    let _ = ask(&mut b, t(1), 1, pod_ip(1), GW_IP);
    let _ = ask(&mut b, t(1), 2, pod_ip(2), GW_IP);
    assert!(b.remove_port(PortId(1)));
    assert_eq!(b.arp().lookup(BD, pod_ip(1)), None);
    assert_eq!(b.arp().port_len(PortId(1)), 0);
    assert_eq!(b.arp().lookup(BD, pod_ip(2)), Some(pod_mac(2)));
    // A new pod on another port gets the address at once.
    let req = arp::Repr::request(pod_mac(5), pod_ip(1), GW_IP);
    let _ = one(&mut b, t(2), PortId(5), &arp_frame(MacAddr::BROADCAST, pod_mac(5), &req));
    assert_eq!(b.resolve(BD, pod_ip(1), t(2)), Some((pod_mac(5), PortId(5))));
    // A pod may change its MAC on its own port.
    let req = arp::Repr::request(pod_mac(9), pod_ip(2), GW_IP);
    let _ = one(&mut b, t(3), PortId(2), &arp_frame(MacAddr::BROADCAST, pod_mac(9), &req));
    assert_eq!(b.resolve(BD, pod_ip(2), t(3)), Some((pod_mac(9), PortId(2))));
}
