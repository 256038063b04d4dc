//! The learning switch against `std::collections::HashMap` (default SipHash hasher) doing the same work.
//!
//! - `fdb_learn_lookup/{uniform,zipf}`: per frame, learn the source (a refresh: every host is known, on its own
//!   port) and look up the destination, on a table of 65,536 learned entries. Sources and destinations are drawn
//!   uniformly, or from a Zipf distribution (s = 1.0) over the hosts, as real traffic is skewed.
//! - `bridge_batch/{32,256}`: whole batches of 60-byte frames through [`Bridge::process`] (parse, validate the
//!   source, learn, decide), against a `HashMap` bridge doing the same steps.
//!
//! Time advances by 1 ms per iteration so that refreshes write, and the ageing time is long enough that nothing
//! expires during the run. Throughput is in frames: criterion reports time per frame as time / elements.

use std::collections::HashMap;
mod common;

use std::hint::black_box;
use std::time::Duration;

use common::SplitMix64;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tweed::switch::{
    Bridge, BridgeConfig, BridgeDomain, Decision, DropReason, Fdb, FdbConfig, Instant, PortConfig, PortId,
};
use tweed::wire::ethernet::{Frame, MacAddr};

const HOSTS: usize = 65_536;
const PORTS: u16 = 64;
const OPS: usize = 4096;
const BD: BridgeDomain = BridgeDomain(0);
const AGEING: Duration = Duration::from_secs(1 << 30);

/// Random locally administered unicast MACs, distinct.
fn hosts(rng: &mut SplitMix64) -> Vec<MacAddr> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(HOSTS);
    while out.len() < HOSTS {
        let v = (rng.next() & 0xfeff_ffff_ffff) | 0x0200_0000_0000;
        if seen.insert(v) {
            out.push(MacAddr::from_u64(v));
        }
    }
    out
}

fn port_of(host: usize) -> PortId {
    PortId((host % usize::from(PORTS)) as u16)
}

/// Host indices: uniform, or Zipf(1.0) by inverse CDF (a precomputed table and a binary search).
fn draws(rng: &mut SplitMix64, n: usize, zipf: bool) -> Vec<usize> {
    if !zipf {
        return (0..n).map(|_| (rng.next() % HOSTS as u64) as usize).collect();
    }
    let mut cdf = Vec::with_capacity(HOSTS);
    let mut sum = 0.0f64;
    for rank in 1..=HOSTS {
        sum += 1.0 / rank as f64;
        cdf.push(sum);
    }
    (0..n)
        .map(|_| {
            let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * sum;
            cdf.partition_point(|&c| c < u).min(HOSTS - 1)
        })
        .collect()
}

/// The same rules as the FDB's fast path, with a `HashMap`: learn (refresh, move, or insert under the limit)
/// and lookup with lazy ageing.
struct MapFdb {
    map: HashMap<u64, (u16, u64)>,
    ageing_ms: u64,
    max: usize,
}

impl MapFdb {
    fn key(mac: MacAddr) -> u64 {
        (u64::from(BD.0) << 48) | mac.to_u64()
    }

    fn learn(&mut self, mac: MacAddr, port: PortId, now_ms: u64) {
        let len = self.map.len();
        match self.map.entry(Self::key(mac)) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let v = e.get_mut();
                *v = (port.0, now_ms.max(v.1));
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                if len < self.max {
                    e.insert((port.0, now_ms));
                }
            }
        }
    }

    fn lookup(&self, mac: MacAddr, now_ms: u64) -> Option<PortId> {
        let &(port, seen) = self.map.get(&Self::key(mac))?;
        (now_ms.saturating_sub(seen) < self.ageing_ms).then_some(PortId(port))
    }
}

fn fdb_learn_lookup(c: &mut Criterion) {
    let mut rng = SplitMix64(0x5eed);
    let hosts = hosts(&mut rng);
    let mut group = c.benchmark_group("fdb_learn_lookup");
    group.throughput(Throughput::Elements(OPS as u64));
    for (name, zipf) in [("uniform", false), ("zipf", true)] {
        let src = draws(&mut rng, OPS, zipf);
        let dst = draws(&mut rng, OPS, zipf);
        let work: Vec<(MacAddr, PortId, MacAddr)> =
            src.iter().zip(&dst).map(|(&s, &d)| (hosts[s], port_of(s), hosts[d])).collect();

        let mut fdb =
            Fdb::new(&FdbConfig { max_learned: HOSTS as u32, max_static: 0, ageing: AGEING, hash_seed: None });
        for (i, &mac) in hosts.iter().enumerate() {
            assert_eq!(fdb.learn(BD, mac, port_of(i), Instant::ZERO), tweed::switch::Learned::New);
        }
        let mut now = Instant::ZERO;
        group.bench_function(BenchmarkId::new("tweed", name), |b| {
            b.iter(|| {
                now = now + Duration::from_millis(1);
                let mut hit = 0u32;
                for &(s, port, d) in &work {
                    let _ = black_box(fdb.learn(BD, s, port, now));
                    hit += u32::from(fdb.lookup(BD, d, now).is_some());
                }
                black_box(hit)
            });
        });

        let mut map = MapFdb { map: HashMap::with_capacity(HOSTS), ageing_ms: AGEING.as_millis() as u64, max: HOSTS };
        for (i, &mac) in hosts.iter().enumerate() {
            map.learn(mac, port_of(i), 0);
        }
        let mut now_ms = 0;
        group.bench_function(BenchmarkId::new("std_hashmap", name), |b| {
            b.iter(|| {
                now_ms += 1;
                let mut hit = 0u32;
                for &(s, port, d) in &work {
                    map.learn(s, port, now_ms);
                    hit += u32::from(map.lookup(d, now_ms).is_some());
                }
                black_box(hit)
            });
        });
    }
    group.finish();
}

/// The bridge's steps with a `HashMap` FDB: parse, validate the source, learn, look up, decide.
struct MapBridge {
    fdb: MapFdb,
}

impl MapBridge {
    fn process(&mut self, now: Instant, frames: &[(PortId, Vec<u8>)], out: &mut [Decision]) {
        let now_ms = now.as_millis();
        for ((port, frame), o) in frames.iter().zip(out.iter_mut()) {
            let Ok(eth) = Frame::new_checked(&frame[..]) else {
                *o = Decision::Drop(DropReason::Truncated);
                continue;
            };
            let src = eth.src_addr();
            if src.is_multicast() || src.is_zero() {
                *o = Decision::Drop(DropReason::InvalidSource);
                continue;
            }
            self.fdb.learn(src, *port, now_ms);
            let dst = eth.dst_addr();
            *o = if dst.is_multicast() {
                Decision::Flood { local: false }
            } else {
                match self.fdb.lookup(dst, now_ms) {
                    Some(p) if p == *port => Decision::Drop(DropReason::Filtered),
                    Some(p) => Decision::Forward(p),
                    None => Decision::Flood { local: false },
                }
            };
        }
    }
}

fn bridge_batch(c: &mut Criterion) {
    let mut rng = SplitMix64(0xba7c);
    let hosts = hosts(&mut rng);
    let mut bridge = Bridge::new(&BridgeConfig {
        fdb: FdbConfig { max_learned: HOSTS as u32, max_static: 0, ageing: AGEING, hash_seed: None },
        max_arp: None,
    });
    for p in 0..PORTS {
        // 65,536 hosts over 64 ports: lift the per-port default (64 MACs) so that the bench measures learn + lookup.
        bridge.add_port(PortId(p), PortConfig::new(BD).with_max_learned(None)).unwrap();
    }
    let mut map = MapBridge {
        fdb: MapFdb { map: HashMap::with_capacity(HOSTS), ageing_ms: AGEING.as_millis() as u64, max: HOSTS },
    };
    for (i, &mac) in hosts.iter().enumerate() {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&mac.0);
        f.extend_from_slice(&[0x08, 0x00]);
        let mut out = [Decision::Local];
        bridge.process(Instant::ZERO, &[(port_of(i), &f[..])], &mut out);
        map.fdb.learn(mac, port_of(i), 0);
    }
    assert_eq!(bridge.fdb().learned_len(), HOSTS);

    let mut group = c.benchmark_group("bridge_batch");
    for batch in [32usize, 256] {
        // Many batches, cycled, so that the table (not one batch's entries) is what the caches hold.
        let sets: Vec<Vec<(PortId, Vec<u8>)>> = (0..OPS / batch * 4)
            .map(|_| {
                (0..batch)
                    .map(|_| {
                        let s = (rng.next() % HOSTS as u64) as usize;
                        let d = (rng.next() % HOSTS as u64) as usize;
                        let mut f = Vec::with_capacity(60);
                        f.extend_from_slice(&hosts[d].0);
                        f.extend_from_slice(&hosts[s].0);
                        f.extend_from_slice(&[0x08, 0x00]);
                        f.resize(60, 0x45);
                        (port_of(s), f)
                    })
                    .collect()
            })
            .collect();
        group.throughput(Throughput::Elements(batch as u64));
        let mut out = vec![Decision::Local; batch];
        let (mut now, mut next) = (Instant::ZERO, 0);
        group.bench_function(BenchmarkId::new("tweed", batch), |b| {
            b.iter(|| {
                now = now + Duration::from_millis(1);
                next = (next + 1) % sets.len();
                black_box(bridge.process(now, &sets[next], &mut out));
            });
        });
        let (mut now, mut next) = (Instant::ZERO, 0);
        group.bench_function(BenchmarkId::new("std_hashmap", batch), |b| {
            b.iter(|| {
                now = now + Duration::from_millis(1);
                next = (next + 1) % sets.len();
                map.process(now, &sets[next], &mut out);
                black_box(&out);
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(40);
    targets = fdb_learn_lookup, bridge_batch
}
criterion_main!(benches);
