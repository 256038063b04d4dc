//! What the hostile-pod and neighbour tests share: a bridge built as the node builds it (pod ports 0..=10 with
//! ARP snooping, the gateway local with its ARP entry), pod addresses, and frames.
#![allow(dead_code)] // each test file uses a part

use core::net::Ipv4Addr;

use tweed_switch::{Bridge, BridgeConfig, BridgeDomain, Decision, Instant, PortConfig, PortId};
use tweed_wire::arp;
use tweed_wire::ethernet::MacAddr;

pub(crate) const BD: BridgeDomain = BridgeDomain(0);
/// Pods 1..=PODS, pod `i` on port `i` (port 0: the attacker, in the hostile tests).
pub(crate) const PODS: u16 = 10;
pub(crate) const GW: MacAddr = MacAddr::new(0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x01);
pub(crate) const GW_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 1);

pub(crate) fn pod_mac(i: u16) -> MacAddr {
    MacAddr::new(0x0a, 0x58, 0x0a, 0xf4, 0x01, u8::try_from(i + 1).unwrap())
}

pub(crate) fn pod_ip(i: u16) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, 1, u8::try_from(i + 1).unwrap())
}

pub(crate) fn t(s: u64) -> Instant {
    Instant::from_secs(s)
}

pub(crate) fn node_bridge() -> Bridge {
    let mut b = Bridge::new(&BridgeConfig::default());
    for p in 0..=PODS {
        b.add_port(PortId(p), PortConfig::new(BD).with_arp_snoop(true)).unwrap();
    }
    b.add_local(BD, GW).unwrap();
    b.set_arp(BD, GW_IP, GW).unwrap();
    b
}

/// An Ethernet frame with an IPv4 EtherType (and the first byte of a header).
pub(crate) fn ip_frame(dst: MacAddr, src: MacAddr) -> [u8; 18] {
    let mut f = [0u8; 18];
    f[..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&src.0);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f
}

pub(crate) fn arp_frame(dst: MacAddr, src: MacAddr, repr: &arp::Repr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&src.0);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    repr.emit(&mut arp::Packet::new_unchecked(&mut f[14..]));
    f
}

/// The bridge's decision on one frame.
pub(crate) fn one(b: &mut Bridge, now: Instant, port: PortId, f: &[u8]) -> Decision {
    let mut out = [Decision::Local];
    assert_eq!(b.process(now, &[(port, f)], &mut out), 1);
    out[0]
}
