//! Hostile pods against a bridge built the way the node builds it (`BridgeConfig::default()`, pod ports from
//! `PortConfig::new(..).with_arp_snoop(true)`, the gateway local with its ARP entry): MAC floods, ARP floods,
//! ARP claims of other pods' and of the gateway's addresses (issue 12, findings 6 and 7).

mod common;

use core::net::Ipv4Addr;
use core::time::Duration;

use tweed_switch::{Bridge, BridgeConfig, Counters, Decision, DropReason, Instant, PortConfig, PortId};
use tweed_wire::arp;
use tweed_wire::ethernet::MacAddr;

use common::*;

const ATTACKER: PortId = PortId(0);
const EVIL: MacAddr = MacAddr::new(0x0a, 0x58, 0x0a, 0xf4, 0x01, 0xee);

/// A counter by name, so that tests of counters this change adds compile against the old code and fail there.
fn counter(c: &Counters, name: &str) -> u64 {
    c.iter().find(|&(n, _)| n == name).map_or(u64::MAX, |(_, v)| v)
}

/// Pod `i` says who it is (ARP for the gateway, as a pod does first).
fn hello(b: &mut Bridge, now: Instant, i: u16) -> Decision {
    let req = arp::Repr::request(pod_mac(i), pod_ip(i), GW_IP);
    one(b, now, PortId(i), &arp_frame(MacAddr::BROADCAST, pod_mac(i), &req))
}

/// Distinct locally administered unicast MACs, none of them a pod's (those start with 0a:58).
fn attack_mac(i: u64) -> MacAddr {
    MacAddr::from_u64((0x02 << 40) | (i.wrapping_mul(0x9e37_79b9_7f4b) & 0xff_ffff_ffff))
}

#[test]
fn pod_ports_have_a_small_default_learned_limit() {
    let limit = PortConfig::new(BD).max_learned;
    assert!(limit.is_some_and(|m| (1..=128).contains(&m)), "{limit:?}");
    assert_eq!(PortConfig::new(BD).with_max_learned(None).max_learned, None);
}

/// Finding 7: one pod sends 1,000,000 frames with random source MACs. It keeps at most its own limit of FDB
/// entries; pods known before and pods that arrive afterwards are learnt and reached by forwarding, never by a
/// flood that would reach the attacker.
#[test]
fn million_random_macs_from_one_pod_leave_every_other_pod_reachable() {
    const FLOOD: u64 = 1_000_000;
    let mut b = node_bridge();
    let limit = PortConfig::new(BD).max_learned.map_or(u64::MAX, u64::from);
    for i in 1..=PODS / 2 {
        assert_eq!(
            one(&mut b, t(0), PortId(i), &ip_frame(MacAddr::BROADCAST, pod_mac(i))),
            Decision::Flood { local: true }
        );
    }
    // 100 simulated seconds of flood towards pod 1 (well within the 300 s FDB ageing).
    let mut batch = vec![(ATTACKER, [0u8; 18]); 256];
    let mut out = [Decision::Local; 256];
    let (mut sent, mut now) = (0, t(1));
    while sent < FLOOD {
        let n = usize::try_from((FLOOD - sent).min(256)).unwrap();
        for (k, (_, f)) in batch.iter_mut().enumerate().take(n) {
            *f = ip_frame(pod_mac(1), attack_mac(sent + k as u64));
        }
        assert_eq!(b.process(now, &batch[..n], &mut out), n);
        assert!(out[..n].iter().all(|d| *d == Decision::Forward(PortId(1))), "traffic to a known pod is forwarded");
        sent += n as u64;
        now = now + Duration::from_micros(100);
    }
    // Pods that show up after the flood are learnt; every pod reaches every other by forwarding.
    let later = t(150);
    for i in PODS / 2 + 1..=PODS {
        let _ = one(&mut b, later, PortId(i), &ip_frame(MacAddr::BROADCAST, pod_mac(i)));
    }
    for i in 1..=PODS {
        assert_eq!(b.fdb().lookup(BD, pod_mac(i), later), Some(PortId(i)), "pod {i}");
        for j in (1..=PODS).filter(|&j| j != i) {
            assert_eq!(one(&mut b, later, PortId(j), &ip_frame(pod_mac(i), pod_mac(j))), Decision::Forward(PortId(i)));
        }
        // Even the attacker's frames to a pod go to that pod only (from a source it had learnt).
        assert_eq!(one(&mut b, later, ATTACKER, &ip_frame(pod_mac(i), attack_mac(7))), Decision::Forward(PortId(i)));
    }
    let flooded: u64 = (1..=PODS).map(|i| b.port_counters(PortId(i)).unwrap().flooded_unknown).sum();
    assert_eq!(flooded, 0, "no unicast to a pod was flooded (to the attacker or anyone)");
    let c = *b.port_counters(ATTACKER).unwrap();
    assert_eq!((c.rx, c.forwarded), (FLOOD + u64::from(PODS), FLOOD + u64::from(PODS)), "not learnt, still forwarded");
    assert_eq!((c.learned, c.port_limit_hit, c.limit_hit), (limit, FLOOD - limit, 0));
    assert_eq!(b.fdb().port_learned_len(ATTACKER), usize::try_from(limit).unwrap());
}

/// Finding 7: a port at its limit that sends another port's MAC as its source neither moves nor removes that
/// port's entry (removing it would flood the victim's traffic to every port, the attacker's included).
#[test]
fn port_at_its_limit_cannot_evict_another_ports_mac() {
    let mut b = node_bridge();
    b.add_port(ATTACKER, PortConfig::new(BD).with_max_learned(Some(1))).unwrap();
    let _ = one(&mut b, t(1), ATTACKER, &ip_frame(MacAddr::BROADCAST, EVIL));
    let _ = one(&mut b, t(1), PortId(1), &ip_frame(MacAddr::BROADCAST, pod_mac(1)));
    assert_eq!(one(&mut b, t(2), ATTACKER, &ip_frame(MacAddr::BROADCAST, pod_mac(1))), Decision::Flood { local: true });
    assert_eq!(b.port_counters(ATTACKER).unwrap().port_limit_hit, 1);
    assert_eq!(b.fdb().lookup(BD, pod_mac(1), t(2)), Some(PortId(1)));
    assert_eq!(one(&mut b, t(2), PortId(2), &ip_frame(pod_mac(1), pod_mac(2))), Decision::Forward(PortId(1)));
}

/// Finding 6: one pod sends ARP with 10,000 different sender addresses; the pods after it are still snooped.
#[test]
fn arp_flood_from_one_pod_leaves_room_for_the_others() {
    let mut b = node_bridge();
    for k in 0..10_000u32 {
        let ip = Ipv4Addr::from_bits(u32::from(Ipv4Addr::new(10, 250, 0, 0)) + 2 + k);
        let req = arp::Repr::request(EVIL, ip, GW_IP);
        assert_eq!(
            one(&mut b, t(1), ATTACKER, &arp_frame(MacAddr::BROADCAST, EVIL, &req)),
            Decision::ArpReply { mac: GW }
        );
    }
    let evil_entries = b.arp().iter().filter(|e| e.2 == EVIL).count();
    assert!((1..=64).contains(&evil_entries), "{evil_entries} entries for one pod");
    for i in 1..=PODS {
        assert_eq!(hello(&mut b, t(2), i), Decision::ArpReply { mac: GW });
        assert_eq!(b.arp().lookup(BD, pod_ip(i)), Some(pod_mac(i)), "pod {i}");
    }
    let c = b.port_counters(ATTACKER).unwrap();
    assert_eq!(c.arp_snooped + c.arp_snoop_refused, 10_000);
    assert_eq!(counter(c, "arp_port_limit_hit"), c.arp_snoop_refused);
}

/// Finding 6: a pod's address is its own while its entry is fresh (confirmed by ARP or by traffic): a claim
/// from another port is refused, counted, and not flooded to poison the other pods' caches. Once the entry is
/// stale, another port may take the address over.
#[test]
fn fresh_entries_belong_to_their_port() {
    let mut b = node_bridge();
    let _ = hello(&mut b, t(1), 1);
    let claim = arp::Repr::request(EVIL, pod_ip(1), pod_ip(3));
    let claim = arp_frame(MacAddr::BROADCAST, EVIL, &claim);
    let d = one(&mut b, t(2), ATTACKER, &claim);
    assert!(matches!(d, Decision::Drop(_)), "{d:?}");
    assert_eq!(b.arp().lookup(BD, pod_ip(1)), Some(pod_mac(1)));
    let c = b.port_counters(ATTACKER).unwrap();
    assert_eq!((c.arp_snooped, counter(c, "arp_claim_refused"), counter(c, "drop_arp_claimed")), (0, 1, 1));
    // A claim of another pod's address that asks for the gateway is still answered (a pod whose address was
    // just reused must reach its gateway), but not snooped.
    let ask_gw = arp_frame(MacAddr::BROADCAST, EVIL, &arp::Repr::request(EVIL, pod_ip(1), GW_IP));
    assert_eq!(one(&mut b, t(2), ATTACKER, &ask_gw), Decision::ArpReply { mac: GW });
    assert_eq!(b.arp().lookup(BD, pod_ip(1)), Some(pod_mac(1)));
    // Traffic from pod 1 keeps its entry fresh past the ARP confirmation.
    for s in [20, 40, 60] {
        let _ = one(&mut b, t(s), PortId(1), &ip_frame(GW, pod_mac(1)));
    }
    assert!(matches!(one(&mut b, t(70), ATTACKER, &claim), Decision::Drop(_)));
    assert_eq!(b.arp().lookup(BD, pod_ip(1)), Some(pod_mac(1)));
    // Pod 1 went quiet at 60 s: at 100 s its entry is stale and the address can move.
    assert_eq!(one(&mut b, t(100), ATTACKER, &claim), Decision::Flood { local: true });
    assert_eq!(b.arp().lookup(BD, pod_ip(1)), Some(EVIL));
}

/// Finding 6: ARP claiming the gateway's address (configured by `set_arp`) is dropped and counted: never
/// snooped, flooded or answered.
#[test]
fn gateway_claims_are_dropped_not_flooded() {
    let mut b = node_bridge();
    let claims = [
        // A gratuitous ARP for the gateway's address.
        arp_frame(MacAddr::BROADCAST, EVIL, &arp::Repr::gratuitous(EVIL, GW_IP)),
        // A reply to a pod: "the gateway is at EVIL".
        arp_frame(pod_mac(1), EVIL, &arp::Repr::reply_to(&arp::Repr::request(pod_mac(1), pod_ip(1), GW_IP), EVIL)),
        // A request from the gateway's address, which would update the pods' caches.
        arp_frame(MacAddr::BROADCAST, EVIL, &arp::Repr::request(EVIL, GW_IP, pod_ip(2))),
        // The same with the gateway's own MAC as source: the bridge's MAC does not live on a pod port.
        arp_frame(MacAddr::BROADCAST, GW, &arp::Repr::request(GW, GW_IP, pod_ip(2))),
        // A request for the gateway itself, from its address.
        arp_frame(MacAddr::BROADCAST, EVIL, &arp::Repr::request(EVIL, GW_IP, GW_IP)),
    ];
    for (k, f) in claims.iter().enumerate() {
        let d = one(&mut b, t(1), ATTACKER, f);
        assert!(matches!(d, Decision::Drop(_)), "claim {k}: {d:?}");
        assert_eq!(reason(d), "drop_arp_spoofed", "claim {k}");
    }
    let c = b.port_counters(ATTACKER).unwrap();
    assert_eq!(counter(c, "drop_arp_spoofed"), 5);
    assert_eq!((c.flooded_broadcast, c.forwarded, c.arp_answered, c.arp_snooped), (0, 0, 0, 0));
    assert_eq!(b.arp().lookup(BD, GW_IP), Some(GW));
    assert_eq!(b.arp().len(), 1);
}

fn reason(d: Decision) -> String {
    match d {
        Decision::Drop(r) => r.to_string(),
        d => format!("{d:?}"),
    }
}

/// An RFC 5227 probe (sender 0.0.0.0) is bridged as usual and teaches the table nothing, without counting as a
/// refusal.
#[test]
fn arp_probes_are_flooded_not_snooped() {
    let mut b = node_bridge();
    let probe = arp::Repr::request(pod_mac(1), Ipv4Addr::UNSPECIFIED, pod_ip(1));
    assert_eq!(
        one(&mut b, t(1), PortId(1), &arp_frame(MacAddr::BROADCAST, pod_mac(1), &probe)),
        Decision::Flood { local: true }
    );
    let c = b.port_counters(PortId(1)).unwrap();
    assert_eq!((c.arp_snooped, c.arp_snoop_refused, c.flooded_broadcast), (0, 0, 1));
    assert_eq!(b.arp().len(), 1);
}

/// Finding 6: snooped entries age like the kernel's neighbours: an entry that is confirmed neither by ARP nor by
/// traffic is collected; one whose pod keeps sending stays.
#[test]
fn snooped_entries_age_unless_confirmed() {
    let mut b = node_bridge();
    let _ = hello(&mut b, t(1), 1);
    let _ = hello(&mut b, t(1), 2);
    for s in (10..=1000).step_by(10) {
        let _ = one(&mut b, t(s), PortId(2), &ip_frame(GW, pod_mac(2)));
    }
    let _ = b.age(t(1000), usize::MAX);
    assert_eq!(b.arp().lookup(BD, pod_ip(1)), None, "pod 1 went quiet");
    assert_eq!(b.arp().lookup(BD, pod_ip(2)), Some(pod_mac(2)), "pod 2 kept sending");
    assert_eq!(b.arp().lookup(BD, GW_IP), Some(GW), "configured entries never age");
    assert_eq!(b.arp().len(), 2);
}

/// A port with the MAC lock (as the node's pod ports are) cannot take over a MAC that is live on another port,
/// nor the bridge's own: such frames are dropped (`drop_mac_held`) and the MAC stays where it was, so frames for
/// it keep going to its owner. Once the owner's entry has expired, the MAC may move. A port without the lock moves
/// a live MAC as a Linux bridge does.
#[test]
fn a_locked_port_cannot_take_another_ports_mac() {
    let mut b = Bridge::new(&BridgeConfig::default());
    for p in 1..=2 {
        b.add_port(PortId(p), PortConfig::new(BD).with_mac_lock(true)).unwrap();
    }
    b.add_port(PortId(3), PortConfig::new(BD)).unwrap();
    b.add_local(BD, GW).unwrap();
    let victim = pod_mac(1);
    assert!(matches!(one(&mut b, t(1), PortId(1), &ip_frame(MacAddr::BROADCAST, victim)), Decision::Flood { .. }));
    // Port 2 sends as the victim, and as the gateway: both dropped, nothing moved.
    assert_eq!(one(&mut b, t(2), PortId(2), &ip_frame(pod_mac(3), victim)), Decision::Drop(DropReason::MacHeld));
    assert_eq!(one(&mut b, t(2), PortId(2), &ip_frame(pod_mac(3), GW)), Decision::Drop(DropReason::MacHeld));
    assert_eq!(b.fdb().lookup(BD, victim, t(2)), Some(PortId(1)));
    assert_eq!(b.port_counters(PortId(2)).unwrap().drop_mac_held, 2);
    assert_eq!(b.port_counters(PortId(2)).unwrap().moved, 0);
    // Frames for the victim still reach port 1.
    assert_eq!(one(&mut b, t(3), PortId(3), &ip_frame(victim, pod_mac(3))), Decision::Forward(PortId(1)));
    // The victim silent past the ageing (300 s): its MAC is nobody's, and port 2 may use it.
    assert!(matches!(one(&mut b, t(400), PortId(2), &ip_frame(MacAddr::BROADCAST, victim)), Decision::Flood { .. }));
    assert_eq!(b.fdb().lookup(BD, victim, t(400)), Some(PortId(2)));
    // An unlocked port moves a live MAC.
    assert!(matches!(one(&mut b, t(401), PortId(3), &ip_frame(MacAddr::BROADCAST, victim)), Decision::Flood { .. }));
    assert_eq!(b.fdb().lookup(BD, victim, t(401)), Some(PortId(3)));
    assert_eq!(b.port_counters(PortId(3)).unwrap().moved, 1);
}
