use super::*;

const BD: BridgeDomain = BridgeDomain(7);
const A: MacAddr = MacAddr::new(0x0a, 0x58, 10, 244, 1, 2);
const B: MacAddr = MacAddr::new(0x0a, 0x58, 10, 244, 1, 3);
const VTEP: MacAddr = MacAddr::new(0x8a, 0x1c, 0x3e, 0x55, 0x20, 0x01);

fn mac(i: u32) -> MacAddr {
    let b = i.to_be_bytes();
    MacAddr::new(0x02, 0, b[0], b[1], b[2], b[3])
}

fn fdb(max_learned: u32, max_static: u32, ageing_secs: u64) -> Fdb {
    Fdb::new(&FdbConfig { max_learned, max_static, ageing: Duration::from_secs(ageing_secs), hash_seed: Some(42) })
}

fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

#[test]
fn learn_then_lookup_per_domain() {
    let mut f = fdb(16, 4, 300);
    assert_eq!(f.learn(BD, A, PortId(1), secs(1)), Learned::New);
    assert_eq!(f.learn(BD, A, PortId(1), secs(2)), Learned::Refreshed);
    assert_eq!(f.lookup(BD, A, secs(2)), Some(PortId(1)));
    assert_eq!(f.lookup(BridgeDomain(8), A, secs(2)), None);
    assert_eq!(f.lookup(BD, B, secs(2)), None);
    // The same MAC in another domain is another entry.
    assert_eq!(f.learn(BridgeDomain(8), A, PortId(2), secs(2)), Learned::New);
    assert_eq!(f.lookup(BridgeDomain(8), A, secs(2)), Some(PortId(2)));
    assert_eq!(f.lookup(BD, A, secs(2)), Some(PortId(1)));
    assert_eq!(f.learned_len(), 2);
    assert_eq!(
        f.get(BD, A, secs(3)),
        Some(Entry { domain: BD, mac: A, port: PortId(1), kind: EntryKind::Learned { last_seen: secs(2) } })
    );
}

#[test]
fn default_ageing_is_300_seconds() {
    let mut f = Fdb::new(&FdbConfig::default());
    assert_eq!(f.ageing_ms(), 300_000);
    let _ = f.learn(BD, A, PortId(1), secs(100));
    assert_eq!(f.lookup(BD, A, Instant::from_millis(399_999)), Some(PortId(1)));
    assert_eq!(f.lookup(BD, A, secs(400)), None);
}

#[test]
fn entries_age_lazily_and_refresh_extends() {
    let mut f = fdb(16, 4, 10);
    let _ = f.learn(BD, A, PortId(1), secs(0));
    let _ = f.learn(BD, B, PortId(1), secs(0));
    assert_eq!(f.learn(BD, A, PortId(1), secs(8)), Learned::Refreshed);
    // B expired at 10 s; A lives until 18 s.
    assert_eq!(f.lookup(BD, B, secs(10)), None);
    assert_eq!(f.get(BD, B, secs(10)), None);
    assert_eq!(f.lookup(BD, A, Instant::from_millis(17_999)), Some(PortId(1)));
    assert_eq!(f.lookup(BD, A, secs(18)), None);
    // An expired entry seen again is learnt anew.
    assert_eq!(f.learn(BD, B, PortId(1), secs(11)), Learned::New);
    assert_eq!(f.lookup(BD, B, secs(11)), Some(PortId(1)));
    assert_eq!(f.learned_len(), 2);
}

#[test]
fn age_sweep_removes_and_counts_expired() {
    let mut f = fdb(64, 4, 10);
    for i in 0..20 {
        let _ = f.learn(BD, mac(i), PortId(1), secs(u64::from(i % 2)));
    }
    f.add_static(BD, VTEP, PortId(9)).unwrap();
    assert_eq!(f.age(secs(5), usize::MAX), 0);
    // At 10 s the ten entries learnt at 0 s are expired; a sweep in small steps removes them all.
    let mut removed = 0;
    for _ in 0..f.capacity() / 16 {
        removed += f.age(secs(10), 16);
    }
    assert_eq!(removed, 10);
    assert_eq!(f.aged(), 10);
    assert_eq!(f.learned_len(), 10);
    assert_eq!(f.static_len(), 1);
    assert_eq!(f.live_learned_len(secs(10)), 10);
    assert_eq!(f.age(secs(11), usize::MAX), 10);
    assert_eq!(f.learned_len(), 0);
    assert_eq!(f.lookup(BD, VTEP, secs(1_000_000)), Some(PortId(9)));
}

#[test]
fn static_entries_never_age_and_resist_learning() {
    let mut f = fdb(16, 4, 10);
    f.add_static(BD, VTEP, PortId(5)).unwrap();
    assert_eq!(f.learn(BD, VTEP, PortId(2), secs(1)), Learned::Static { port: PortId(5) });
    assert_eq!(f.learn(BD, VTEP, PortId(5), secs(1)), Learned::Static { port: PortId(5) });
    assert_eq!(f.lookup(BD, VTEP, secs(1 << 40)), Some(PortId(5)));
    assert_eq!(f.get(BD, VTEP, secs(1)).map(|e| e.kind), Some(EntryKind::Static));
    assert_eq!(f.learned_len(), 0);
    // A static entry replaces a learned one.
    let _ = f.learn(BD, A, PortId(1), secs(1));
    f.add_static(BD, A, PortId(3)).unwrap();
    assert_eq!((f.learned_len(), f.static_len(), f.port_learned_len(PortId(1))), (0, 2, 0));
    assert_eq!(f.lookup(BD, A, secs(100)), Some(PortId(3)));
    // Local entries.
    f.add_static(BD, B, PortId::LOCAL).unwrap();
    assert_eq!(f.lookup(BD, B, secs(100)), Some(PortId::LOCAL));
}

#[test]
fn static_limit_and_invalid_entries() {
    let mut f = fdb(16, 2, 10);
    f.add_static(BD, A, PortId(1)).unwrap();
    f.add_static(BD, B, PortId(1)).unwrap();
    // Replacing is fine at the limit; a third is not.
    f.add_static(BD, B, PortId(2)).unwrap();
    assert_eq!(f.add_static(BD, VTEP, PortId(1)), Err(FdbError::StaticLimit { max: 2 }));
    assert_eq!(f.add_static(BD, MacAddr::BROADCAST, PortId(1)), Err(FdbError::InvalidMac(MacAddr::BROADCAST)));
    assert_eq!(f.add_static(BD, MacAddr::ZERO, PortId(1)), Err(FdbError::InvalidMac(MacAddr::ZERO)));
    assert_eq!(f.add_static(BD, A, PortId(5000)), Err(FdbError::InvalidPort(PortId(5000))));
}

#[test]
fn group_and_zero_sources_are_never_learnt() {
    let mut f = fdb(16, 4, 10);
    for bad in [
        MacAddr::BROADCAST,
        MacAddr::new(0x01, 0x00, 0x5e, 0, 0, 1),
        MacAddr::new(0x33, 0x33, 0, 0, 0, 1),
        MacAddr::ZERO,
    ] {
        assert_eq!(f.learn(BD, bad, PortId(1), secs(1)), Learned::Invalid, "{bad}");
        assert_eq!(f.lookup(BD, bad, secs(1)), None);
    }
    assert_eq!(f.learn(BD, A, PortId::LOCAL, secs(1)), Learned::Invalid);
    assert_eq!(f.learned_len(), 0);
}

#[test]
fn moves_are_relearnt() {
    let mut f = fdb(16, 4, 10);
    let _ = f.learn(BD, A, PortId(1), secs(1));
    assert_eq!(f.learn(BD, A, PortId(2), secs(2)), Learned::Moved { from: PortId(1) });
    assert_eq!(f.lookup(BD, A, secs(2)), Some(PortId(2)));
    assert_eq!((f.port_learned_len(PortId(1)), f.port_learned_len(PortId(2)), f.learned_len()), (0, 1, 1));
    // After ageing, a MAC seen elsewhere is new, not moved.
    assert_eq!(f.learn(BD, A, PortId(3), secs(30)), Learned::New);
}

#[test]
fn global_limit_keeps_existing_entries_working() {
    let mut f = fdb(4, 4, 10);
    f.add_static(BD, VTEP, PortId(9)).unwrap();
    for i in 0..4 {
        assert_eq!(f.learn(BD, mac(i), PortId(1), secs(1)), Learned::New);
    }
    assert_eq!(f.learn(BD, mac(4), PortId(1), secs(2)), Learned::LimitHit);
    assert_eq!(f.lookup(BD, mac(4), secs(2)), None);
    assert_eq!(f.learned_len(), 4);
    // Existing entries still refresh and move; statics still work.
    assert_eq!(f.learn(BD, mac(0), PortId(1), secs(5)), Learned::Refreshed);
    assert_eq!(f.learn(BD, mac(1), PortId(2), secs(5)), Learned::Moved { from: PortId(1) });
    assert_eq!(f.lookup(BD, VTEP, secs(5)), Some(PortId(9)));
    // Once some entries expire (2 and 3 at 11 s), new MACs take their place.
    assert_eq!(f.learn(BD, mac(5), PortId(1), secs(10)), Learned::LimitHit);
    assert_eq!(f.learn(BD, mac(5), PortId(1), secs(11)), Learned::New);
    assert_eq!(f.learn(BD, mac(6), PortId(1), secs(11)), Learned::New);
    assert_eq!(f.learn(BD, mac(7), PortId(1), secs(11)), Learned::LimitHit);
    assert_eq!(f.live_learned_len(secs(11)), 4);
    assert_eq!(f.lookup(BD, mac(0), secs(11)), Some(PortId(1)));
    assert_eq!(f.lookup(BD, mac(1), secs(11)), Some(PortId(2)));
}

#[test]
fn port_limit() {
    let mut f = fdb(100, 4, 10);
    f.set_port_limit(PortId(1), Some(2));
    assert_eq!(f.learn(BD, mac(0), PortId(1), secs(1)), Learned::New);
    assert_eq!(f.learn(BD, mac(1), PortId(1), secs(1)), Learned::New);
    assert_eq!(f.learn(BD, mac(2), PortId(1), secs(1)), Learned::PortLimitHit);
    // Other ports are not affected.
    assert_eq!(f.learn(BD, mac(2), PortId(2), secs(1)), Learned::New);
    // A MAC live on another port stays there when the full port sends it: a port at its limit cannot evict
    // (or steal) another port's entry.
    assert_eq!(f.learn(BD, mac(2), PortId(1), secs(2)), Learned::PortLimitHit);
    assert_eq!(f.lookup(BD, mac(2), secs(2)), Some(PortId(2)));
    assert_eq!(f.port_learned_len(PortId(2)), 1);
    // An expired entry of another port is not kept for it.
    assert_eq!(f.learn(BD, mac(3), PortId(2), secs(2)), Learned::New);
    assert_eq!(f.learn(BD, mac(0), PortId(1), secs(9)), Learned::Refreshed);
    assert_eq!(f.learn(BD, mac(1), PortId(1), secs(9)), Learned::Refreshed);
    assert_eq!(f.learn(BD, mac(3), PortId(1), secs(12)), Learned::PortLimitHit);
    assert_eq!((f.lookup(BD, mac(3), secs(12)), f.port_learned_len(PortId(2))), (None, 0));
    // Lifting the limit: the MAC moves.
    f.set_port_limit(PortId(1), None);
    assert_eq!(f.learn(BD, mac(2), PortId(1), secs(12)), Learned::New);
    assert_eq!(f.port_learned_len(PortId(1)), 3);
}

#[test]
fn remove_and_flush() {
    let mut f = fdb(100, 8, 10);
    for i in 0..10 {
        let _ = f.learn(BD, mac(i), PortId(u16::try_from(i % 2).unwrap()), secs(1));
    }
    f.add_static(BD, VTEP, PortId(1)).unwrap();
    assert!(f.remove(BD, mac(0)));
    assert!(!f.remove(BD, mac(0)));
    assert_eq!(f.flush_port(PortId(1), false), 5);
    assert_eq!(f.lookup(BD, VTEP, secs(1)), Some(PortId(1)));
    assert_eq!(f.flush_port(PortId(1), true), 1);
    assert_eq!((f.learned_len(), f.static_len()), (4, 0));
    for i in (2..10).step_by(2) {
        assert_eq!(f.lookup(BD, mac(i), secs(1)), Some(PortId(0)));
    }
    f.clear();
    assert_eq!(f.iter(secs(1)).count(), 0);
}

#[test]
fn time_going_backwards_changes_no_age() {
    let mut f = fdb(4, 4, 10);
    let _ = f.learn(BD, A, PortId(1), secs(100));
    assert_eq!(f.learn(BD, A, PortId(2), secs(50)), Learned::Moved { from: PortId(1) });
    assert_eq!(
        f.get(BD, A, secs(50)).map(|e| e.kind),
        Some(EntryKind::Learned { last_seen: secs(100) }),
        "last seen never moves back"
    );
    assert_eq!(f.lookup(BD, A, secs(109)), Some(PortId(2)));
    assert_eq!(f.lookup(BD, A, secs(110)), None);
    assert_eq!(f.lookup(BD, A, Instant::from_nanos(u64::MAX)), None);
}

#[test]
fn zero_ageing_learns_nothing_that_lasts() {
    let mut f = Fdb::new(&FdbConfig { ageing: Duration::ZERO, ..FdbConfig::default() });
    let _ = f.learn(BD, A, PortId(1), secs(1));
    assert_eq!(f.lookup(BD, A, secs(1)), None);
}
