//! The route table against `prefix-trie` on Internet-sized tables: the real BGP table of `tests/data` (when
//! present; `TWEED_BGP_TABLE` overrides the path) and a seeded synthetic 1M-prefix table.
//!
//! One criterion group per comparison, so that ratios are read off one group: lookups of random addresses and
//! of addresses inside the table's prefixes (tweed one at a time, tweed in batches of 256, prefix-trie one at a
//! time), then insert and remove rates. Memory is printed before the groups run.
//!
//! `cargo bench --bench route` (a few minutes).

use std::hint::black_box;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use prefix_trie::PrefixMap;
use tweed_route::{Ipv4Prefix, Lpm, NextHopId, synth};

/// Addresses per iteration of a lookup benchmark.
const LOOKUPS: usize = 1 << 20;
/// Addresses per `lookup_batch` call: a large packet batch.
const BATCH: usize = 256;

type Trie = PrefixMap<(u32, u8), u32>;

/// The next hop given to the `i`th prefix: a few hundred peers, as a real router has.
fn nh(i: usize) -> u32 {
    (i % 512) as u32
}

fn real_table() -> Option<Vec<Ipv4Prefix>> {
    let path = std::env::var_os("TWEED_BGP_TABLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ipv4-full-table-2024.txt.gz"));
    let file = std::fs::File::open(&path).ok()?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(file).read_to_string(&mut text).ok()?;
    synth::parse_table(&text).ok()
}

fn build_tweed(prefixes: &[Ipv4Prefix]) -> Lpm {
    let mut lpm = Lpm::new();
    for (i, &p) in prefixes.iter().enumerate() {
        lpm.insert(p, NextHopId(nh(i))).expect("table fits");
    }
    lpm
}

fn build_trie(prefixes: &[Ipv4Prefix]) -> Trie {
    let mut trie = Trie::new();
    for (i, p) in prefixes.iter().enumerate() {
        trie.insert((p.addr(), p.len()), nh(i));
    }
    trie
}

fn configure(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sampling_mode(SamplingMode::Flat).sample_size(10).warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
}

fn lookups(c: &mut Criterion, name: &str, lpm: &Lpm, trie: &Trie, addrs: &[u32]) {
    let reader = lpm.reader();
    let mut g = c.benchmark_group(format!("route/lookup/{name}"));
    configure(&mut g);
    g.throughput(Throughput::Elements(addrs.len() as u64));
    g.bench_function("tweed/single", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &a in addrs {
                acc = acc.wrapping_add(reader.lookup(a).map_or(u32::MAX, |n| n.0));
            }
            black_box(acc)
        });
    });
    g.bench_function("tweed/batch", |b| {
        let mut out = [None; BATCH];
        b.iter(|| {
            let mut acc = 0u32;
            for chunk in addrs.chunks(BATCH) {
                let n = reader.lookup_batch(chunk, &mut out);
                for o in &out[..n] {
                    acc = acc.wrapping_add(o.map_or(u32::MAX, |n| n.0));
                }
            }
            black_box(acc)
        });
    });
    g.bench_function("prefix-trie/single", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &a in addrs {
                acc = acc.wrapping_add(trie.get_lpm(&(a, 32)).map_or(u32::MAX, |(_, &n)| n));
            }
            black_box(acc)
        });
    });
    g.finish();
}

fn updates(c: &mut Criterion, name: &str, prefixes: &[Ipv4Prefix]) {
    let mut g = c.benchmark_group(format!("route/insert/{name}"));
    configure(&mut g);
    g.throughput(Throughput::Elements(prefixes.len() as u64));
    g.bench_function("tweed", |b| {
        b.iter_batched(
            Lpm::new,
            |mut lpm| {
                for (i, &p) in prefixes.iter().enumerate() {
                    let _ = black_box(lpm.insert(p, NextHopId(nh(i))));
                }
                lpm
            },
            BatchSize::PerIteration,
        );
    });
    g.bench_function("prefix-trie", |b| {
        b.iter_batched(
            Trie::new,
            |mut t| {
                for (i, p) in prefixes.iter().enumerate() {
                    black_box(t.insert((p.addr(), p.len()), nh(i)));
                }
                t
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();

    let mut g = c.benchmark_group(format!("route/remove/{name}"));
    configure(&mut g);
    g.throughput(Throughput::Elements(prefixes.len() as u64));
    g.bench_function("tweed", |b| {
        b.iter_batched(
            || build_tweed(prefixes),
            |mut lpm| {
                for &p in prefixes {
                    black_box(lpm.remove(p));
                }
                lpm
            },
            BatchSize::PerIteration,
        );
    });
    g.bench_function("prefix-trie", |b| {
        b.iter_batched(
            || build_trie(prefixes),
            |mut t| {
                for p in prefixes {
                    black_box(t.remove(&(p.addr(), p.len())));
                }
                t
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

fn table(c: &mut Criterion, name: &str, prefixes: &[Ipv4Prefix]) {
    let lpm = build_tweed(prefixes);
    let trie = build_trie(prefixes);
    let m = lpm.memory_usage();
    println!(
        "{name}: {} prefixes; tweed lookup memory {:.1} MiB (tbl24 {:.1} MiB + tbl8 {:.2} MiB, {} groups in use), \
         control-plane routes {:.1} MiB, total {:.1} MiB; prefix-trie mem_size {:.1} MiB",
        prefixes.len(),
        mib(m.lookup_bytes()),
        mib(m.tbl24_bytes),
        mib(m.tbl8_bytes),
        m.tbl8_groups_in_use,
        mib(m.control_bytes),
        mib(m.total()),
        mib(trie.mem_size()),
    );
    // Same answers, or the comparison means nothing.
    let random = synth::random_addrs(LOOKUPS, 11);
    let inside = synth::addrs_in(prefixes, LOOKUPS, 12);
    for &a in random.iter().chain(&inside).step_by(97) {
        assert_eq!(lpm.lookup(a).map(|n| n.0), trie.get_lpm(&(a, 32)).map(|(_, &n)| n), "{a:#x}");
    }
    lookups(c, &format!("{name}/random"), &lpm, &trie, &random);
    lookups(c, &format!("{name}/inside"), &lpm, &trie, &inside);
    drop((lpm, trie));
    updates(c, name, prefixes);
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn benches(c: &mut Criterion) {
    match real_table() {
        Some(real) => table(c, "bgp", &real),
        None => println!("no real BGP table found (set TWEED_BGP_TABLE): synthetic table only"),
    }
    table(c, "synth1m", &synth::internet_table(1_000_000, 2024));
}

criterion_group!(route, benches);
criterion_main!(route);
