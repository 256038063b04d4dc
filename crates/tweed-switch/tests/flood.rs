//! A MAC flood: one port sends 1,000,000 frames with random source addresses at a bridge limited to 4,096
//! learned entries. The table must end with exactly 4,096 learned entries, and every host it knew before must
//! still be reachable (no flooding of their traffic, no eviction by the attacker).

use tweed_switch::{Bridge, BridgeConfig, BridgeDomain, Decision, FdbConfig, Instant, PortConfig, PortId};
use tweed_wire::ethernet::MacAddr;

const LIMIT: u32 = 4096;
const FLOOD: u64 = 1_000_000;
const HOSTS: u16 = 200;
const BD: BridgeDomain = BridgeDomain(0);
const ATTACKER: PortId = PortId(0);
const VXLAN: PortId = PortId(99);

/// A bijection of the low 40 bits: distinct attack addresses, spread over the whole key space.
fn attack_mac(i: u64) -> MacAddr {
    let x = i.wrapping_mul(0x9e37_79b9_7f4b) & 0xff_ffff_ffff;
    // Locally administered unicast (0x02 in the first byte), as a spoofing attacker would pick.
    MacAddr::from_u64((0x02 << 40) | x)
}

fn host_mac(i: u16) -> MacAddr {
    let b = i.to_be_bytes();
    MacAddr::new(0x0a, 0x58, 0x0a, 0xf4, b[0], b[1])
}

fn host_port(i: u16) -> PortId {
    PortId(1 + i % 8)
}

fn frame(dst: MacAddr, src: MacAddr) -> [u8; 14] {
    let mut f = [0u8; 14];
    f[..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&src.0);
    f[12..].copy_from_slice(&[0x08, 0x00]);
    f
}

#[test]
fn million_random_sources_against_a_4096_limit() {
    let mut b = Bridge::new(&BridgeConfig {
        fdb: FdbConfig { max_learned: LIMIT, ..FdbConfig::default() },
        ..BridgeConfig::default()
    });
    // The attacker's port without its own limit: this is about the bridge's limit (tests/hostile.rs has the
    // per-port one).
    b.add_port(ATTACKER, PortConfig::new(BD).with_max_learned(None)).unwrap();
    for port in 1..=8 {
        b.add_port(PortId(port), PortConfig::new(BD)).unwrap();
    }
    b.add_port(VXLAN, PortConfig::new(BD).with_flood(false).with_learning(false)).unwrap();
    let vtep = MacAddr::new(0x8a, 0x1c, 0x3e, 0x55, 0x20, 0x01);
    b.add_static(BD, vtep, VXLAN).unwrap();

    let mut t = Instant::from_secs(1000);
    let mut out = [Decision::Local; 256];
    for i in 0..HOSTS {
        let f = frame(MacAddr::BROADCAST, host_mac(i));
        b.process(t, &[(host_port(i), &f[..])], &mut out);
    }
    assert_eq!(b.fdb().learned_len(), usize::from(HOSTS));

    // The flood, in batches of 256, over 10 simulated seconds (well within the 300 s ageing time).
    let mut batch = vec![(ATTACKER, [0u8; 14]); 256];
    let mut sent = 0;
    while sent < FLOOD {
        let n = (FLOOD - sent).min(256);
        for (k, (_, f)) in batch.iter_mut().enumerate().take(n as usize) {
            *f = frame(host_mac(0), attack_mac(sent + k as u64));
        }
        assert_eq!(b.process(t, &batch[..n as usize], &mut out), n as usize);
        // Frames to a known host keep going to it during the flood.
        assert!(out[..n as usize].iter().all(|d| *d == Decision::Forward(host_port(0))));
        sent += n;
        t = t + core::time::Duration::from_micros(10);
    }

    let c = b.port_counters(ATTACKER).unwrap();
    assert_eq!(c.rx, FLOOD);
    assert_eq!(c.learned, u64::from(LIMIT) - u64::from(HOSTS));
    assert_eq!(c.limit_hit, FLOOD - c.learned);
    assert_eq!(b.fdb().learned_len(), LIMIT as usize);
    assert_eq!(b.fdb().live_learned_len(t), LIMIT as usize);

    // Every host known before the flood is still reachable, from every other host and from the tunnel.
    for i in 0..HOSTS {
        let from = (i + 1) % HOSTS;
        let f = frame(host_mac(i), host_mac(from));
        let mut one = [Decision::Local];
        b.process(t, &[(host_port(from), &f[..])], &mut one);
        let expected = if host_port(from) == host_port(i) {
            Decision::Drop(tweed_switch::DropReason::Filtered)
        } else {
            Decision::Forward(host_port(i))
        };
        assert_eq!(one[0], expected, "host {i}");
        b.process(t, &[(VXLAN, &frame(host_mac(i), vtep)[..])], &mut one);
        assert_eq!(one[0], Decision::Forward(host_port(i)));
    }
    let f = frame(vtep, host_mac(3));
    b.process(t, &[(host_port(3), &f[..])], &mut out[..1]);
    assert_eq!(out[0], Decision::Forward(VXLAN));
    // And a new host that arrives once the attacker's entries age out is learnt again.
    let later = t + core::time::Duration::from_secs(300);
    let f = frame(MacAddr::BROADCAST, host_mac(HOSTS + 1));
    b.process(later, &[(PortId(5), &f[..])], &mut out[..1]);
    assert_eq!(b.fdb().lookup(BD, host_mac(HOSTS + 1), later), Some(PortId(5)));
}
