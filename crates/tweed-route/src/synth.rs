//! Seeded generators of route tables and addresses for tests and benchmarks.
//!
//! [`internet_table`] makes a table shaped like today's IPv4 Internet table: prefix lengths drawn with the
//! weights of [`INTERNET_LEN_WEIGHTS`] (a full BGP table of March 2024), addresses in unicast space, a quarter of
//! them nested inside an earlier shorter prefix, as deaggregated announcements are. Everything is deterministic
//! in the seed: [`SplitMix64`], no `rand`.
//!
//! ```
//! use tweed_route::synth;
//!
//! let table = synth::internet_table(10_000, 7);
//! assert_eq!(table.len(), 10_000);
//! assert_eq!(table, synth::internet_table(10_000, 7));
//! let slash24 = table.iter().filter(|p| p.len() == 24).count();
//! assert!((5_500..6_400).contains(&slash24)); // about 60 %
//! ```

use std::collections::HashSet;

use crate::{Error, Ipv4Prefix, Result};

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast, seedable generator; not for secrets.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A number in `0..n` (0 when `n` is 0), by multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Prefix lengths of a full IPv4 BGP table (March 2024, 901,899 prefixes) with their counts; the 984 prefixes
/// longer than /24 are spread over /25–/32 by guess, as the source gives only their total.
pub const INTERNET_LEN_WEIGHTS: [(u8, u32); 25] = [
    (8, 16),
    (9, 13),
    (10, 38),
    (11, 103),
    (12, 299),
    (13, 581),
    (14, 1_203),
    (15, 2_100),
    (16, 13_490),
    (17, 8_235),
    (18, 13_798),
    (19, 24_870),
    (20, 42_611),
    (21, 50_750),
    (22, 108_623),
    (23, 96_510),
    (24, 537_698),
    (25, 200),
    (26, 160),
    (27, 140),
    (28, 120),
    (29, 130),
    (30, 80),
    (31, 14),
    (32, 140),
];

/// `n` distinct prefixes shaped like the Internet table (see the [module documentation](self)), in random
/// order. Fewer than `n` only if `n` is beyond what the weights can make distinct (many millions).
#[must_use]
pub fn internet_table(n: usize, seed: u64) -> Vec<Ipv4Prefix> {
    let total: u64 = INTERNET_LEN_WEIGHTS.iter().map(|&(_, w)| u64::from(w)).sum();
    let mut rng = SplitMix64::new(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    let mut tries = 0usize;
    while out.len() < n && tries < n.saturating_mul(20).max(1000) {
        tries += 1;
        let mut pick = rng.below(total);
        let mut len = 24;
        for &(l, w) in &INTERNET_LEN_WEIGHTS {
            if pick < u64::from(w) {
                len = l;
                break;
            }
            pick -= u64::from(w);
        }
        // Unicast space 1.0.0.0 – 223.255.255.255.
        let mut addr = 0x0100_0000 + rng.below(0xdf00_0000) as u32;
        if !out.is_empty() && rng.below(4) == 0 {
            // Nest inside an earlier, shorter prefix.
            let parent: Ipv4Prefix = out[rng.below(out.len() as u64) as usize];
            if parent.len() < len {
                addr = parent.addr() | (addr & !parent.mask());
            }
        }
        let Ok(p) = Ipv4Prefix::new_masked(addr, len) else { continue };
        if seen.insert(p) {
            out.push(p);
        }
    }
    out
}

/// `n` uniformly random addresses.
#[must_use]
pub fn random_addrs(n: usize, seed: u64) -> Vec<u32> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| rng.next_u32()).collect()
}

/// `n` addresses each drawn uniformly inside a prefix drawn uniformly from `prefixes` (empty if it is).
#[must_use]
pub fn addrs_in(prefixes: &[Ipv4Prefix], n: usize, seed: u64) -> Vec<u32> {
    if prefixes.is_empty() {
        return Vec::new();
    }
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let p = prefixes[rng.below(prefixes.len() as u64) as usize];
            p.addr() | (rng.next_u32() & !p.mask())
        })
        .collect()
}

/// Parses a table written one prefix a line (`a.b.c.d/len`); blank lines and `#` comments are skipped.
/// Returns the first bad line's number (from 1) with its error.
pub fn parse_table(text: &str) -> core::result::Result<Vec<Ipv4Prefix>, (usize, Error)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| l.parse().map_err(|e| (i + 1, e)))
        .collect::<Result<_, _>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 0 of the reference implementation (Vigna, splitmix64.c).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
        let mut r = SplitMix64::new(1);
        assert!((0..1000).all(|_| r.below(10) < 10));
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn table_shape() {
        let t = internet_table(20_000, 42);
        assert_eq!(t.len(), 20_000);
        assert_eq!(t.iter().collect::<HashSet<_>>().len(), 20_000);
        let count = |l: u8| t.iter().filter(|p| p.len() == l).count();
        // Expected 59.6 %, 12.0 %, 10.7 %, 1.5 % of 20,000, within a few standard deviations.
        assert!((11_600..12_250).contains(&count(24)), "{}", count(24));
        assert!((2_200..2_620).contains(&count(22)), "{}", count(22));
        assert!((1_950..2_350).contains(&count(23)), "{}", count(23));
        assert!((230..380).contains(&count(16)), "{}", count(16));
        assert!(t.iter().all(|p| p.len() >= 8 && p.addr() >= 0x0100_0000 && p.addr() < 0xe000_0000));
        // Some nesting happened.
        let nested = t.iter().filter(|p| t.iter().any(|q| q.len() < p.len() && q.covers(p))).take(50).count();
        assert_eq!(nested, 50);
    }

    #[test]
    fn addrs_lie_in_prefixes() {
        let t = internet_table(100, 1);
        let a = addrs_in(&t, 1000, 2);
        assert!(a.iter().all(|&x| t.iter().any(|p| p.contains(x))));
        assert!(addrs_in(&[], 5, 0).is_empty());
        assert_eq!(random_addrs(3, 9), random_addrs(3, 9));
    }

    #[test]
    fn parse_table_lines() {
        let t = parse_table("# comment\n1.0.0.0/24\n\n  10.0.0.0/8 \n").unwrap();
        assert_eq!(t, vec!["1.0.0.0/24".parse().unwrap(), "10.0.0.0/8".parse().unwrap()]);
        assert_eq!(
            parse_table("1.0.0.0/24\n1.0.0.1/24\n"),
            Err((2, Error::HostBits { addr: [1, 0, 0, 1].into(), len: 24 }))
        );
    }
}
