//! The table against a naive reference: a map of routes scanned for the longest match.

use std::cell::RefCell;
use std::collections::BTreeMap;

use proptest::prelude::*;
use tweed_route::{Config, Ipv4Prefix, Lpm, NextHopId};

/// The reference: every route, scanned.
#[derive(Default)]
struct Naive(BTreeMap<Ipv4Prefix, NextHopId>);

impl Naive {
    fn lookup(&self, addr: u32) -> Option<NextHopId> {
        self.0.iter().filter(|(p, _)| p.contains(addr)).max_by_key(|(p, _)| p.len()).map(|(_, &nh)| nh)
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert(Ipv4Prefix, NextHopId),
    Remove(Ipv4Prefix),
    Lookup(u32),
}

/// Addresses in three small regions, so that prefixes nest and overlap, and at both ends of the space.
fn addr() -> impl Strategy<Value = u32> {
    (prop_oneof![Just(0x0a00_0000u32), Just(0x0a01_0000), Just(0xc0a8_0000), Just(0), Just(0xffff_0000)], any::<u16>())
        .prop_map(|(base, low)| base | u32::from(low & 0x03ff) | u32::from(low & 0x3000) << 2)
}

fn len() -> impl Strategy<Value = u8> {
    prop_oneof![
        // Short prefixes touch up to 2^24 slots each: common enough to nest, rare enough to keep debug tests fast.
        2 => Just(0u8),
        3 => 1u8..8,
        40 => 8u8..16,
        150 => 16u8..=24,
        150 => 25u8..=32,
    ]
}

fn prefix() -> impl Strategy<Value = Ipv4Prefix> {
    (addr(), len()).prop_map(|(a, l)| Ipv4Prefix::new_masked(a, l).unwrap())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (prefix(), 0u32..6).prop_map(|(p, nh)| Op::Insert(p, NextHopId(nh))),
        7 => prefix().prop_map(Op::Remove),
        5 => addr().prop_map(Op::Lookup),
    ]
}

/// Addresses at and around the edges of `p`.
fn edges(p: Ipv4Prefix) -> [u32; 5] {
    [p.addr(), p.last(), p.addr().wrapping_sub(1), p.last().wrapping_add(1), p.addr() | (!p.mask() >> 1)]
}

fn check(lpm: &Lpm, naive: &Naive, addr: u32) -> Result<(), TestCaseError> {
    prop_assert_eq!(lpm.lookup(addr), naive.lookup(addr), "lookup {:#010x}", addr);
    Ok(())
}

thread_local! {
    /// A table left empty by the last case that passed: building a 64 MiB table takes most of a second in debug.
    static SPARE: RefCell<Option<Lpm>> = const { RefCell::new(None) };
}

proptest! {
    // Each case builds a 64 MiB table: few cases, many operations each.
    #![proptest_config(ProptestConfig::with_cases(20))]

    #[test]
    fn agrees_with_naive_reference(ops in prop::collection::vec(op(), 1..300)) {
        // A failing case drops its table; the next one builds a fresh one.
        let mut lpm = SPARE.take().unwrap_or_else(|| Lpm::with_config(Config { max_tbl8_groups: 64 }).unwrap());
        let mut naive = Naive::default();
        for op in ops {
            match op {
                Op::Insert(p, nh) => {
                    prop_assert_eq!(lpm.insert(p, nh), Ok(naive.0.insert(p, nh)));
                    for a in edges(p) { check(&lpm, &naive, a)?; }
                }
                Op::Remove(p) => {
                    prop_assert_eq!(lpm.remove(p), naive.0.remove(&p));
                    for a in edges(p) { check(&lpm, &naive, a)?; }
                }
                Op::Lookup(a) => check(&lpm, &naive, a)?,
            }
        }
        prop_assert_eq!(lpm.len(), naive.0.len());
        let ours: Vec<_> = lpm.iter().collect();
        let theirs: Vec<_> = naive.0.iter().map(|(&p, &nh)| (p, nh)).collect();
        prop_assert_eq!(ours, theirs);
        let addrs: Vec<u32> = naive.0.keys().flat_map(|&p| edges(p)).collect();
        let mut out = vec![None; addrs.len()];
        lpm.lookup_batch(&addrs, &mut out);
        for (&a, &o) in addrs.iter().zip(&out) {
            prop_assert_eq!(o, naive.lookup(a), "batch {:#010x}", a);
            prop_assert_eq!(lpm.get(Ipv4Prefix::new_masked(a, 32).unwrap()), naive.0.get(&Ipv4Prefix::new_masked(a, 32).unwrap()).copied());
        }
        // Removing everything leaves an empty table that answers nothing.
        for p in naive.0.keys() {
            prop_assert!(lpm.remove(*p).is_some());
        }
        prop_assert!(lpm.is_empty());
        for a in addrs { prop_assert_eq!(lpm.lookup(a), None); }
        prop_assert_eq!(lpm.memory_usage().tbl8_groups_in_use, 0);
        SPARE.set(Some(lpm));
    }
}
