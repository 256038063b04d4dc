//! The bridge against a reference model written the simple way (a `HashMap` and whole-table counts), over random
//! sequences of frames, time steps and ageing sweeps, with MAC and port spaces small enough that moves, limits,
//! static conflicts and ageing happen all the time.

use std::collections::HashMap;

use proptest::prelude::*;
use tweed_switch::{
    Bridge, BridgeConfig, BridgeDomain, Decision, DropReason, EntryKind, FdbConfig, Instant, PortConfig, PortId,
};
use tweed_wire::ethernet::MacAddr;

const AGEING_MS: u64 = 10_000;
const MAX_LEARNED: usize = 4;
/// Port 1's limit.
const PORT1_MAX: usize = 2;
const BD0: BridgeDomain = BridgeDomain(0);
const BD1: BridgeDomain = BridgeDomain(1);

/// Ports 0–2 in domain 0 (port 2 does not flood), 3–4 in domain 1 (port 4 does not learn); port 5 does not exist.
fn port_domain(port: u16) -> Option<BridgeDomain> {
    match port {
        0..=2 => Some(BD0),
        3 | 4 => Some(BD1),
        _ => None,
    }
}

/// Eight unicast hosts, then broadcast, a multicast group and the zero address.
fn mac(i: u8) -> MacAddr {
    match i {
        0..8 => MacAddr::new(0x02, 0, 0, 0, 0, i),
        8 => MacAddr::BROADCAST,
        9 => MacAddr::new(0x01, 0x00, 0x5e, 0, 0, 1),
        _ => MacAddr::ZERO,
    }
}

/// Static entries: host 6 on port 2 in domain 0 (a remote VTEP), host 7 local in domain 0.
const STATICS: [(BridgeDomain, u8, PortId); 2] = [(BD0, 6, PortId(2)), (BD0, 7, PortId::LOCAL)];

#[derive(Clone, Debug)]
enum Op {
    Frame { port: u16, src: u8, dst: u8 },
    Advance { ms: u64 },
    Age { budget: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u16..6, 0u8..11, 0u8..11).prop_map(|(port, src, dst)| Op::Frame { port, src, dst }),
        2 => prop_oneof![0u64..3_000, 9_000u64..11_000].prop_map(|ms| Op::Advance { ms }),
        1 => (0usize..80).prop_map(|budget| Op::Age { budget }),
    ]
}

#[derive(Clone, Copy, Debug)]
struct ModelEntry {
    port: PortId,
    seen_ms: u64,
    is_static: bool,
}

#[derive(Default)]
struct Model {
    fdb: HashMap<(BridgeDomain, MacAddr), ModelEntry>,
    /// learned, moved, limit hit, port limit hit, static conflict.
    events: [u64; 5],
}

impl Model {
    fn live(e: &ModelEntry, now_ms: u64) -> bool {
        e.is_static || now_ms - e.seen_ms < AGEING_MS
    }

    fn live_learned(&self, now_ms: u64, port: Option<PortId>) -> usize {
        self.fdb.values().filter(|e| !e.is_static && Self::live(e, now_ms) && port.is_none_or(|p| e.port == p)).count()
    }

    fn learn(&mut self, bd: BridgeDomain, mac: MacAddr, port: PortId, now_ms: u64) {
        let key = (bd, mac);
        let existing = self.fdb.get(&key).copied();
        if let Some(e) = existing.filter(|e| e.is_static) {
            self.events[4] += u64::from(e.port != port);
            return;
        }
        let live = existing.filter(|e| Self::live(e, now_ms));
        if let Some(e) = live
            && e.port == port
        {
            self.fdb.insert(key, ModelEntry { seen_ms: now_ms, ..e });
            return;
        }
        let moved = live.is_some();
        if port == PortId(1) && self.live_learned(now_ms, Some(port)) >= PORT1_MAX {
            // A live entry of another port stays; an expired one goes.
            if !moved {
                self.fdb.remove(&key);
            }
            self.events[3] += 1;
            return;
        }
        if !moved && self.live_learned(now_ms, None) >= MAX_LEARNED {
            self.events[2] += 1;
            return;
        }
        self.events[usize::from(moved)] += 1;
        self.fdb.insert(key, ModelEntry { port, seen_ms: now_ms, is_static: false });
    }

    fn decide(&mut self, port: u16, src: MacAddr, dst: MacAddr, now_ms: u64) -> Decision {
        let Some(bd) = port_domain(port) else { return Decision::Drop(DropReason::UnknownPort) };
        let port = PortId(port);
        if src.is_multicast() || src.is_zero() {
            return Decision::Drop(DropReason::InvalidSource);
        }
        if port != PortId(4) {
            self.learn(bd, src, port, now_ms);
        }
        if dst.is_multicast() {
            return Decision::Flood { local: bd == BD0 };
        }
        match self.fdb.get(&(bd, dst)).filter(|e| Self::live(e, now_ms)) {
            Some(e) if e.port == PortId::LOCAL => Decision::Local,
            Some(e) if e.port == port => Decision::Drop(DropReason::Filtered),
            Some(e) => Decision::Forward(e.port),
            None => Decision::Flood { local: false },
        }
    }
}

fn bridge(seed: u64) -> Bridge {
    let fdb = FdbConfig {
        max_learned: MAX_LEARNED as u32,
        max_static: 4,
        ageing: core::time::Duration::from_millis(AGEING_MS),
        hash_seed: Some(seed),
    };
    let mut b = Bridge::new(&BridgeConfig { fdb, max_arp: Some(4) });
    for port in 0..5 {
        let mut config = PortConfig::new(port_domain(port).unwrap());
        config.flood = port != 2;
        config.learning = port != 4;
        config.max_learned = (port == 1).then_some(PORT1_MAX as u32);
        b.add_port(PortId(port), config).unwrap();
    }
    for (bd, m, port) in STATICS {
        b.add_static(bd, mac(m), port).unwrap();
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn bridge_matches_model(ops in proptest::collection::vec(op(), 1..200), seed in any::<u64>()) {
        let mut b = bridge(seed);
        let mut model = Model::default();
        for (bd, m, port) in STATICS {
            model.fdb.insert((bd, mac(m)), ModelEntry { port, seen_ms: 0, is_static: true });
        }
        let mut now_ms = 1_000;
        let mut frame = [0u8; 16];
        frame[12..].copy_from_slice(&[0x08, 0x00, 0x45, 0x00]);
        for op in ops {
            let now = Instant::from_millis(now_ms);
            match op {
                Op::Frame { port, src, dst } => {
                    frame[..6].copy_from_slice(&mac(dst).0);
                    frame[6..12].copy_from_slice(&mac(src).0);
                    let mut out = [Decision::Local];
                    b.process(now, &[(PortId(port), &frame[..])], &mut out);
                    prop_assert_eq!(out[0], model.decide(port, mac(src), mac(dst), now_ms), "{:?}", op);
                }
                Op::Advance { ms } => now_ms += ms,
                Op::Age { budget } => {
                    let before = b.fdb().learned_len();
                    let removed = b.age(now, budget);
                    prop_assert_eq!(b.fdb().learned_len(), before - removed);
                    if budget >= b.fdb().capacity() {
                        // A whole sweep leaves no expired entry stored.
                        prop_assert_eq!(b.fdb().learned_len(), model.live_learned(now_ms, None));
                    }
                }
            }
            let now = Instant::from_millis(now_ms);
            // Limits hold for what is stored, not only for what is live.
            prop_assert!(b.fdb().learned_len() <= MAX_LEARNED);
            prop_assert!(b.fdb().port_learned_len(PortId(1)) <= PORT1_MAX);
            // The live entries are the model's: statics survive, aged entries are gone.
            let mut live: Vec<_> = b.fdb().iter(now).map(|e| (e.domain, e.mac, e.port, e.kind == EntryKind::Static)).collect();
            let mut expected: Vec<_> = model.fdb.iter()
                .filter(|(_, e)| Model::live(e, now_ms))
                .map(|(&(bd, m), e)| (bd, m, e.port, e.is_static))
                .collect();
            live.sort();
            expected.sort();
            prop_assert_eq!(live, expected);
        }
        let c = b.counters();
        let fates = c.forwarded + c.flooded_broadcast + c.flooded_multicast + c.flooded_unknown + c.to_local
            + c.arp_answered + c.drop_unknown_port + c.drop_truncated + c.drop_invalid_source + c.drop_filtered
            + c.drop_arp_malformed + c.drop_arp_spoofed + c.drop_arp_claimed;
        prop_assert_eq!(c.rx, fates, "every frame has exactly one fate");
        prop_assert_eq!([c.learned, c.moved, c.limit_hit, c.port_limit_hit, c.static_conflict], model.events);
    }
}

/// A full sweep right after expiry, then time jumps: counts stay exact across reclaim windows.
#[test]
fn limit_counts_live_entries_after_mass_expiry() {
    let mut b = bridge(9);
    let mut frame = [0u8; 16];
    frame[12..].copy_from_slice(&[0x08, 0x00, 0x45, 0x00]);
    let mut send = |b: &mut Bridge, ms: u64, port: u16, src: u8| {
        frame[..6].copy_from_slice(&MacAddr::BROADCAST.0);
        frame[6..12].copy_from_slice(&mac(src).0);
        let mut out = [Decision::Local];
        b.process(Instant::from_millis(ms), &[(PortId(port), &frame[..])], &mut out);
    };
    for src in 0..4 {
        send(&mut b, 0, 0, src);
    }
    assert_eq!(b.counters().learned, 4);
    send(&mut b, 1, 0, 4);
    assert_eq!(b.counters().limit_hit, 1);
    // All four expire together; the next four new MACs take their place without any sweep by the caller.
    for src in 4..6 {
        send(&mut b, AGEING_MS, 0, src);
        send(&mut b, AGEING_MS, 3, src);
    }
    assert_eq!(b.counters().learned, 8);
    assert_eq!(b.fdb().learned_len(), 4);
    assert_eq!(b.fdb().aged(), 4);
}
