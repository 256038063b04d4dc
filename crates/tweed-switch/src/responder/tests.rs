use super::*;
use proptest::prelude::*;
use std::vec::Vec;

const BD: BridgeDomain = BridgeDomain(0);
const PORT_LIMIT: u32 = 3;

fn ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, 1, i)
}

fn mac(i: u8) -> MacAddr {
    MacAddr::new(0x02, 0, 0, 0, 0, i)
}

#[derive(Clone, Debug)]
enum Op {
    Snoop { ip: u8, mac: u8, port: u16 },
    Configure { ip: u8, mac: u8 },
    Remove { ip: u8 },
    Flush { port: u16 },
    Age { budget: usize },
    Time { ms: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..20, 1u8..6, 0u16..4).prop_map(|(ip, mac, port)| Op::Snoop { ip, mac, port }),
        1 => (1u8..20, 1u8..6).prop_map(|(ip, mac)| Op::Configure { ip, mac }),
        1 => (1u8..20).prop_map(|ip| Op::Remove { ip }),
        1 => (0u16..4).prop_map(|port| Op::Flush { port }),
        1 => (0usize..40).prop_map(|budget| Op::Age { budget }),
        3 => prop_oneof![-5_000i64..0, 0i64..40_000, 80_000i64..100_000].prop_map(|ms| Op::Time { ms }),
    ]
}

proptest! {
    /// Whatever happens, counts match the entries, limits hold, configured entries resist snooping and a
    /// reachable entry is never taken by another port.
    #[test]
    fn invariants(ops in proptest::collection::vec(op(), 1..300), seed in any::<u64>()) {
        let mut t = ArpTable::new(12, Some(seed));
        t.set_config(&ArpConfig { gc_thresh: 8, ..ArpConfig::default() });
        for p in 0..4 {
            t.set_port_limit(PortId(p), Some(PORT_LIMIT));
        }
        let none = |_, _, _| 0;
        let mut now_ms: u64 = 1_000_000;
        for op in ops {
            match op {
                Op::Snoop { ip: i, mac: m, port } => {
                    let before = t.get(BD, ip(i));
                    let r = t.snoop(BD, ip(i), mac(m), PortId(port), now_ms, &none);
                    if let Some(e) = before {
                        match e.kind {
                            ArpKind::Configured => prop_assert_eq!(t.get(BD, ip(i)), Some(e)),
                            ArpKind::Snooped { port: owner, confirmed }
                                if owner != PortId(port)
                                    && t.state(confirmed, Instant::from_millis(now_ms)) == ArpState::Reachable =>
                            {
                                prop_assert_eq!(r, Err(Refused::Claimed));
                                prop_assert_eq!(t.get(BD, ip(i)), Some(e));
                            }
                            ArpKind::Snooped { .. } => {}
                        }
                    }
                    if r.is_ok() && !t.is_configured(BD, ip(i)) {
                        prop_assert_eq!(t.get(BD, ip(i)).map(|e| e.mac), Some(mac(m)));
                    }
                }
                Op::Configure { ip: i, mac: m } => {
                    if t.insert(BD, ip(i), mac(m)).is_ok() {
                        prop_assert!(t.is_configured(BD, ip(i)));
                    }
                }
                Op::Remove { ip: i } => {
                    let _ = t.remove(BD, ip(i));
                    prop_assert_eq!(t.get(BD, ip(i)), None);
                }
                Op::Flush { port } => {
                    let _ = t.flush_port(PortId(port));
                    prop_assert_eq!(t.port_len(PortId(port)), 0);
                }
                Op::Age { budget } => {
                    let _ = t.age(now_ms, budget, &none);
                }
                Op::Time { ms } => now_ms = now_ms.saturating_add_signed(ms),
            }
            prop_assert!(t.len() <= 12);
            let entries: Vec<_> = t.iter().collect();
            prop_assert_eq!(entries.len(), t.len());
            for p in 0..4 {
                let owned = t
                    .table
                    .iter()
                    .filter(|s| !s.val.configured() && s.val.port() == p)
                    .count();
                prop_assert_eq!(owned, t.port_len(PortId(p)));
                prop_assert!(owned <= PORT_LIMIT as usize);
            }
            for (_, ip, _, _) in entries {
                prop_assert!(t.get(BD, ip).is_some(), "every stored entry is found from its home slot");
            }
        }
        // A whole sweep long after everything was confirmed leaves only the configured entries.
        let _ = t.age(now_ms + 1_000_000, usize::MAX, &none);
        prop_assert!(t.iter().all(|e| e.3));
        prop_assert_eq!((0..4).map(|p| t.port_len(PortId(p))).sum::<usize>(), 0);
    }
}
