use super::*;
use crate::write_arp_reply;
use core::net::Ipv4Addr;
use std::vec::Vec;
use tweed_wire::arp;
use tweed_wire::ethernet::VlanTag;

const BD: BridgeDomain = BridgeDomain(0);
const P0: PortId = PortId(0);
const P1: PortId = PortId(1);
const P2: PortId = PortId(2);
const VX: PortId = PortId(3);
const A: MacAddr = MacAddr::new(0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02);
const B: MacAddr = MacAddr::new(0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x03);
const GW: MacAddr = MacAddr::new(0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x01);
const VTEP: MacAddr = MacAddr::new(0x8a, 0x1c, 0x3e, 0x55, 0x20, 0x01);
const IP_A: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 2);
const IP_GW: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 1);

/// Pod `0a:58:0a:f4:01:02` (10.244.1.2) asks who has 10.244.1.1, as Linux sends it (no padding).
static ARP_REQUEST: [u8; 42] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02, 0x08, 0x06, // Ethernet
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet/IPv4, request
    0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02, 0x0a, 0xf4, 0x01, 0x02, // sender
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0xf4, 0x01, 0x01, // target
];
/// The gateway's answer: 10.244.1.1 is at `0a:58:0a:f4:01:01`.
static ARP_REPLY: [u8; 42] = [
    0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02, 0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x01, 0x08, 0x06, // Ethernet
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, // Ethernet/IPv4, reply
    0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x01, 0x0a, 0xf4, 0x01, 0x01, // sender
    0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02, 0x0a, 0xf4, 0x01, 0x02, // target
];

fn t(s: u64) -> Instant {
    Instant::from_secs(s)
}

fn frame(dst: MacAddr, src: MacAddr) -> Vec<u8> {
    let mut f = Vec::from(dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0x00]);
    f
}

fn arp_frame(dst: MacAddr, src: MacAddr, repr: &arp::Repr) -> Vec<u8> {
    let mut f = Vec::from(dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0x08, 0x06]);
    f.resize(14 + 28, 0);
    repr.emit(&mut arp::Packet::new_unchecked(&mut f[14..]));
    f
}

/// Three pod ports and a VXLAN port that neither floods nor learns, all in `BD`.
fn bridge() -> Bridge {
    let mut b = Bridge::new(&BridgeConfig {
        fdb: FdbConfig { max_learned: 64, max_static: 16, hash_seed: Some(3), ..FdbConfig::default() },
        max_arp: Some(8),
    });
    for p in [P0, P1, P2] {
        b.add_port(p, PortConfig::new(BD)).unwrap();
    }
    b.add_port(VX, PortConfig::new(BD).with_flood(false).with_learning(false)).unwrap();
    b
}

fn one(b: &mut Bridge, now: Instant, port: PortId, f: &[u8]) -> Decision {
    let mut out = [Decision::Local];
    assert_eq!(b.process(now, &[(port, f)], &mut out), 1);
    out[0]
}

#[test]
fn unknown_unicast_floods_then_known_forwards() {
    let mut b = bridge();
    assert_eq!(one(&mut b, t(1), P0, &frame(B, A)), Decision::Flood { local: false });
    assert_eq!(b.flood_ports(P0).collect::<Vec<_>>(), [P1, P2], "not the ingress, not the non-flooding VXLAN port");
    assert_eq!(one(&mut b, t(1), P2, &frame(A, B)), Decision::Forward(P0));
    assert_eq!(one(&mut b, t(1), P0, &frame(B, A)), Decision::Forward(P2));
    let c = b.port_counters(P0).unwrap();
    assert_eq!((c.rx, c.flooded_unknown, c.forwarded, c.learned), (2, 1, 1, 1));
    assert_eq!(b.counters().learned, 2);
}

#[test]
fn broadcast_and_multicast_flood() {
    let mut b = bridge();
    assert_eq!(one(&mut b, t(1), P1, &frame(MacAddr::BROADCAST, A)), Decision::Flood { local: false });
    let mcast = MacAddr::new(0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb);
    assert_eq!(one(&mut b, t(1), P1, &frame(mcast, A)), Decision::Flood { local: false });
    let c = b.port_counters(P1).unwrap();
    assert_eq!((c.flooded_broadcast, c.flooded_multicast), (1, 1));
    assert_eq!(b.flood_ports(P1).collect::<Vec<_>>(), [P0, P2]);
    // With a local MAC in the domain, the host gets a copy of broadcasts (not of unknown unicast).
    b.add_local(BD, GW).unwrap();
    assert_eq!(one(&mut b, t(1), P1, &frame(MacAddr::BROADCAST, A)), Decision::Flood { local: true });
    assert_eq!(one(&mut b, t(1), P1, &frame(B, A)), Decision::Flood { local: false });
}

#[test]
fn known_destination_on_ingress_port_is_filtered() {
    let mut b = bridge();
    let _ = one(&mut b, t(1), P0, &frame(MacAddr::BROADCAST, A));
    let _ = one(&mut b, t(1), P0, &frame(MacAddr::BROADCAST, B));
    assert_eq!(one(&mut b, t(1), P0, &frame(B, A)), Decision::Drop(DropReason::Filtered));
    assert_eq!(b.port_counters(P0).unwrap().drop_filtered, 1);
}

#[test]
fn frames_to_own_macs_go_to_the_host() {
    let mut b = bridge();
    b.add_local(BD, GW).unwrap();
    assert_eq!(one(&mut b, t(1), P0, &frame(GW, A)), Decision::Local);
    assert_eq!(b.port_counters(P0).unwrap().to_local, 1);
    // A pod spoofing the gateway as a source is not learnt; the gateway stays local.
    assert_eq!(one(&mut b, t(1), P1, &frame(MacAddr::BROADCAST, GW)), Decision::Flood { local: true });
    assert_eq!(b.port_counters(P1).unwrap().static_conflict, 1);
    assert_eq!(one(&mut b, t(1), P0, &frame(GW, A)), Decision::Local);
    assert!(b.remove_static(BD, GW));
    assert_eq!(one(&mut b, t(1), P1, &frame(MacAddr::BROADCAST, A)), Decision::Flood { local: false });
}

#[test]
fn static_entries_for_remote_vteps() {
    let mut b = bridge();
    b.add_static(BD, VTEP, VX).unwrap();
    assert_eq!(one(&mut b, t(1), P0, &frame(VTEP, A)), Decision::Forward(VX));
    // Learning never moves it, and it never ages.
    assert_eq!(one(&mut b, t(2), P1, &frame(A, VTEP)), Decision::Forward(P0));
    assert_eq!(b.port_counters(P1).unwrap().static_conflict, 1);
    assert_eq!(one(&mut b, t(100_000), P0, &frame(VTEP, A)), Decision::Forward(VX));
    assert_eq!(b.add_static(BD, VTEP, PortId(40)), Err(BridgeError::InvalidPort(PortId(40))));
    b.add_port(PortId(9), PortConfig::new(BridgeDomain(2))).unwrap();
    assert_eq!(
        b.add_static(BD, VTEP, PortId(9)),
        Err(BridgeError::WrongDomain { port: PortId(9), domain: BridgeDomain(2) })
    );
}

#[test]
fn non_learning_port_learns_nothing() {
    let mut b = bridge();
    let _ = one(&mut b, t(1), VX, &frame(MacAddr::BROADCAST, VTEP));
    assert_eq!(b.fdb().learned_len(), 0);
    assert_eq!(one(&mut b, t(1), P0, &frame(VTEP, A)), Decision::Flood { local: false });
}

#[test]
fn bad_frames_are_counted_drops() {
    let mut b = bridge();
    let good = frame(B, A);
    assert_eq!(one(&mut b, t(1), P0, &good[..13]), Decision::Drop(DropReason::Truncated));
    // A tagged frame needs 18 bytes.
    let mut tagged = Vec::from(&good[..12]);
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x64, 0x08]);
    assert_eq!(one(&mut b, t(1), P0, &tagged), Decision::Drop(DropReason::Truncated));
    for src in [MacAddr::BROADCAST, MacAddr::new(0x01, 0, 0x5e, 0, 0, 1), MacAddr::ZERO] {
        assert_eq!(one(&mut b, t(1), P0, &frame(B, src)), Decision::Drop(DropReason::InvalidSource));
    }
    assert_eq!(one(&mut b, t(1), PortId(77), &good), Decision::Drop(DropReason::UnknownPort));
    assert_eq!(one(&mut b, t(1), PortId(u16::MAX), &good), Decision::Drop(DropReason::UnknownPort));
    assert_eq!(b.fdb().learned_len(), 0);
    let c = b.counters();
    assert_eq!((c.rx, c.drop_truncated, c.drop_invalid_source, c.drop_unknown_port), (7, 2, 3, 2));
    assert_eq!(std::format!("{c}"), "rx 7, drop_unknown_port 2, drop_truncated 2, drop_invalid_source 3");
}

#[test]
fn domains_are_separate_bridges() {
    let mut b = bridge();
    let (q0, q1) = (PortId(10), PortId(11));
    b.add_port(q0, PortConfig::new(BridgeDomain(5))).unwrap();
    b.add_port(q1, PortConfig::new(BridgeDomain(5))).unwrap();
    let _ = one(&mut b, t(1), P0, &frame(MacAddr::BROADCAST, A));
    // A known in BD 0 is unknown in BD 5: flooded to BD 5's ports only.
    assert_eq!(one(&mut b, t(1), q0, &frame(A, B)), Decision::Flood { local: false });
    assert_eq!(b.flood_ports(q0).collect::<Vec<_>>(), [q1]);
    assert_eq!(one(&mut b, t(1), q1, &frame(B, A)), Decision::Forward(q0));
    // Moving a port to another domain forgets what it learnt.
    b.add_port(q0, PortConfig::new(BD)).unwrap();
    assert_eq!(one(&mut b, t(1), q1, &frame(B, A)), Decision::Flood { local: false });
    assert_eq!(b.flood_ports(P0).collect::<Vec<_>>(), [P1, P2, q0]);
}

#[test]
fn ageing_and_removing_ports() {
    let mut b = bridge();
    let _ = one(&mut b, t(0), P0, &frame(MacAddr::BROADCAST, A));
    assert_eq!(one(&mut b, t(299), P1, &frame(A, B)), Decision::Forward(P0));
    assert_eq!(one(&mut b, t(300), P1, &frame(A, B)), Decision::Flood { local: false });
    assert_eq!(b.age(t(600), usize::MAX), 2);
    assert_eq!(b.fdb().learned_len(), 0);
    let _ = one(&mut b, t(700), P0, &frame(MacAddr::BROADCAST, A));
    assert!(b.remove_port(P0));
    assert!(!b.remove_port(P0));
    assert_eq!(b.port_counters(P0), None);
    assert_eq!(one(&mut b, t(700), P1, &frame(A, B)), Decision::Flood { local: false });
    assert_eq!(b.flood_ports(P1).collect::<Vec<_>>(), [P2]);
    assert_eq!(b.ports().collect::<Vec<_>>(), [P1, P2, VX]);
}

#[test]
fn port_limits_count_and_keep_known_hosts() {
    let mut b = bridge();
    b.add_port(P0, PortConfig::new(BD).with_max_learned(Some(1))).unwrap();
    let _ = one(&mut b, t(1), P0, &frame(MacAddr::BROADCAST, A));
    let _ = one(&mut b, t(1), P0, &frame(MacAddr::BROADCAST, B));
    let c = b.port_counters(P0).unwrap();
    assert_eq!((c.learned, c.port_limit_hit), (1, 1));
    assert_eq!(one(&mut b, t(1), P1, &frame(A, VTEP)), Decision::Forward(P0));
    assert_eq!(one(&mut b, t(1), P1, &frame(B, VTEP)), Decision::Flood { local: false });
    // Moves are counted.
    let _ = one(&mut b, t(2), P2, &frame(MacAddr::BROADCAST, VTEP));
    assert_eq!(b.port_counters(P2).unwrap().moved, 1);
}

#[test]
fn arp_request_for_known_ip_is_answered_not_flooded() {
    let mut b = bridge();
    b.set_arp(BD, IP_GW, GW).unwrap();
    assert_eq!(one(&mut b, t(1), P0, &ARP_REQUEST), Decision::ArpReply { mac: GW });
    assert_eq!(b.port_counters(P0).unwrap().arp_answered, 1);
    assert_eq!(b.port_counters(P0).unwrap().flooded_broadcast, 0);
    // The source was learnt all the same.
    assert_eq!(b.fdb().lookup(BD, A, t(1)), Some(P0));
    let mut out = [0u8; 64];
    assert_eq!(write_arp_reply(&ARP_REQUEST, GW, &mut out), Ok(42));
    assert_eq!(out[..42], ARP_REPLY);
    assert!(matches!(write_arp_reply(&ARP_REQUEST, GW, &mut out[..41]), Err(tweed_wire::Error::Truncated { .. })));
    // Ethernet padding after the ARP packet is fine.
    let mut padded = Vec::from(ARP_REQUEST);
    padded.resize(60, 0);
    assert_eq!(one(&mut b, t(1), P0, &padded), Decision::ArpReply { mac: GW });
    // Another domain does not see the entry.
    b.add_port(PortId(20), PortConfig::new(BridgeDomain(1))).unwrap();
    assert_eq!(one(&mut b, t(1), PortId(20), &ARP_REQUEST), Decision::Flood { local: false });
}

#[test]
fn arp_reply_keeps_the_vlan_tag() {
    let mut tagged = Vec::from(&ARP_REQUEST[..12]);
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
    tagged.extend_from_slice(&ARP_REQUEST[12..]);
    let mut b = bridge();
    b.set_arp(BD, IP_GW, GW).unwrap();
    assert_eq!(one(&mut b, t(1), P0, &tagged), Decision::ArpReply { mac: GW });
    let mut out = [0u8; 64];
    assert_eq!(write_arp_reply(&tagged, GW, &mut out), Ok(46));
    let f = Frame::new_checked(&out[..46]).unwrap();
    assert_eq!(f.vlan(), Some(VlanTag { pcp: 0, dei: false, vid: 100 }));
    assert_eq!(f.payload(), &ARP_REPLY[14..]);
}

#[test]
fn arp_requests_not_answered_are_bridged() {
    let mut b = bridge();
    b.set_arp(BD, IP_GW, GW).unwrap();
    // Unknown target.
    let req = arp::Repr::request(A, IP_A, Ipv4Addr::new(10, 244, 1, 77));
    assert_eq!(one(&mut b, t(1), P0, &arp_frame(MacAddr::BROADCAST, A, &req)), Decision::Flood { local: false });
    // Gratuitous: an announcement, not a question.
    let grat = arp::Repr::gratuitous(A, IP_A);
    assert_eq!(one(&mut b, t(1), P0, &arp_frame(MacAddr::BROADCAST, A, &grat)), Decision::Flood { local: false });
    // An announcement of the gateway's address by anyone but the gateway is spoofing: dropped.
    let grat = arp::Repr::gratuitous(A, IP_GW);
    let d = one(&mut b, t(1), P0, &arp_frame(MacAddr::BROADCAST, A, &grat));
    assert_eq!(d, Decision::Drop(DropReason::ArpSpoofed));
    // A sender hardware address that is not the frame's source (broadcast here): no reply aimed elsewhere.
    let spoof = arp::Repr::request(MacAddr::BROADCAST, IP_A, IP_GW);
    assert_eq!(one(&mut b, t(1), P0, &arp_frame(MacAddr::BROADCAST, A, &spoof)), Decision::Flood { local: false });
    // The owner asking about itself.
    let own = arp::Repr::request(GW, Ipv4Addr::UNSPECIFIED, IP_GW);
    assert_eq!(one(&mut b, t(1), P1, &arp_frame(MacAddr::BROADCAST, GW, &own)), Decision::Flood { local: false });
    // Replies are bridged.
    let reply = arp::Repr::reply_to(&req, B);
    assert_eq!(one(&mut b, t(1), P1, &arp_frame(A, B, &reply)), Decision::Forward(P0));
    assert_eq!(b.counters().arp_answered, 0);
    assert!(write_arp_reply(&arp_frame(A, B, &reply), GW, &mut [0; 64]).is_err());
}

#[test]
fn malformed_arp_is_dropped_and_changes_nothing() {
    let mut b = bridge();
    b.add_port(P2, PortConfig::new(BD).with_arp_snoop(true)).unwrap();
    b.set_arp(BD, IP_GW, GW).unwrap();
    for len in 14..42 {
        assert_eq!(one(&mut b, t(1), P2, &ARP_REQUEST[..len]), Decision::Drop(DropReason::ArpMalformed), "{len}");
    }
    let mut bad = ARP_REQUEST;
    bad[18] = 8; // hardware length
    assert_eq!(one(&mut b, t(1), P2, &bad), Decision::Drop(DropReason::ArpMalformed));
    let mut bad = ARP_REQUEST;
    bad[21] = 9; // operation
    assert_eq!(one(&mut b, t(1), P2, &bad), Decision::Drop(DropReason::ArpMalformed));
    assert_eq!(b.port_counters(P2).unwrap().drop_arp_malformed, 30);
    assert_eq!(b.arp().len(), 1);
}

#[test]
fn arp_table_changes_only_from_allowed_sources() {
    let mut b = bridge();
    b.set_arp(BD, IP_GW, GW).unwrap();
    let frames = [
        // A reply from A claiming the gateway's address (ARP spoofing).
        arp_frame(B, A, &arp::Repr::reply_to(&arp::Repr::request(B, Ipv4Addr::new(10, 244, 1, 3), IP_GW), A)),
        // A gratuitous reply.
        arp_frame(
            MacAddr::BROADCAST,
            A,
            &arp::Repr { operation: arp::Operation::REPLY, ..arp::Repr::gratuitous(A, IP_A) },
        ),
        // A plain request from A.
        arp_frame(MacAddr::BROADCAST, A, &arp::Repr::request(A, IP_A, Ipv4Addr::new(10, 244, 1, 9))),
    ];
    // Without snooping, nothing changes.
    for f in &frames {
        let _ = one(&mut b, t(1), P0, f);
    }
    assert_eq!(b.arp().iter().collect::<Vec<_>>(), [(BD, IP_GW, GW, true)]);
    // With snooping, the plain request teaches A's address; the spoof and the gratuitous reply do not.
    b.add_port(P0, PortConfig::new(BD).with_arp_snoop(true)).unwrap();
    for f in &frames {
        let _ = one(&mut b, t(1), P0, f);
    }
    assert_eq!(b.arp().lookup(BD, IP_GW), Some(GW));
    assert_eq!(b.arp().lookup(BD, IP_A), Some(A));
    assert!(!b.arp().is_configured(BD, IP_A));
    let c = b.port_counters(P0).unwrap();
    // The spoof never reaches the snooper: it is dropped, with or without snooping.
    assert_eq!((c.arp_snooped, c.arp_snoop_refused, c.drop_arp_spoofed), (1, 1, 2));
    // Snooped entries answer like configured ones.
    let req = arp::Repr::request(B, Ipv4Addr::new(10, 244, 1, 3), IP_A);
    assert_eq!(one(&mut b, t(1), P1, &arp_frame(MacAddr::BROADCAST, B, &req)), Decision::ArpReply { mac: A });
    assert_eq!(b.remove_arp(BD, IP_A), Some(A));
}

#[test]
fn arp_table_limits() {
    let mut t = ArpTable::new(2, Some(1));
    t.insert(BD, IP_A, A).unwrap();
    t.insert(BD, IP_GW, GW).unwrap();
    assert_eq!(t.insert(BD, IP_GW, B), Ok(Some(GW)));
    assert_eq!(t.insert(BD, Ipv4Addr::new(10, 0, 0, 1), A), Err(ArpError::Full { max: 2 }));
    let none = |_, _, _| 0;
    assert_eq!(
        t.snoop(BD, IP_GW, A, P0, 1, &none),
        Err(crate::responder::Refused::Configured),
        "configured entries resist snooping"
    );
    for ip in [Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, Ipv4Addr::new(224, 0, 0, 1)] {
        assert_eq!(t.insert(BD, ip, A), Err(ArpError::InvalidIp(ip)));
    }
    assert_eq!(t.insert(BD, IP_A, MacAddr::BROADCAST), Err(ArpError::InvalidMac(MacAddr::BROADCAST)));
    assert_eq!(t.remove(BD, IP_A), Some(A));
    assert_eq!(t.len(), 1);
}

#[test]
fn batch_processing_and_short_outputs() {
    let mut b = bridge();
    let f1 = frame(MacAddr::BROADCAST, A);
    let f2 = frame(A, B);
    let f3 = frame(B, A);
    let frames = [(P0, &f1[..]), (P1, &f2[..]), (P0, &f3[..])];
    let mut out = [Decision::Local; 2];
    assert_eq!(b.process(t(1), &frames, &mut out), 2);
    assert_eq!(out, [Decision::Flood { local: false }, Decision::Forward(P0)]);
    let mut out = [Decision::Local; 4];
    assert_eq!(b.process(t(1), &frames, &mut out), 3);
    assert_eq!(out[2], Decision::Forward(P1));
}

#[test]
fn port_sets() {
    let mut s = PortSet::default();
    assert!(s.is_empty());
    for p in [0, 63, 64, 700, 1023, 1024, 5000] {
        s.insert(PortId(p));
    }
    assert_eq!(s.iter().map(|p| p.0).collect::<Vec<_>>(), [0, 63, 64, 700, 1023]);
    assert_eq!(s.len(), 5);
    s.remove(PortId(63));
    assert!(!s.contains(PortId(63)) && s.contains(PortId(64)));
    assert_eq!(std::format!("{s:?}"), "{PortId(0), PortId(64), PortId(700), PortId(1023)}");
}
