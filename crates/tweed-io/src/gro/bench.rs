//! An in-process benchmark of both offload directions, before and after, in one run (ignored: run by hand).

use super::tests::{train, tso_read};
use super::*;

/// Best of 30 rounds, in nanoseconds per call of `f`.
fn best_ns(mut f: impl FnMut() -> usize) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..30 {
        let t = std::time::Instant::now();
        let mut acc = 0;
        for _ in 0..200 {
            acc ^= f();
        }
        std::hint::black_box(acc);
        best = best.min(t.elapsed().as_nanos() as f64 / 200.0);
    }
    best
}

/// The userspace work of the two offload directions, before and after, in one run (best of 30 rounds each):
/// cutting a 64 KiB TSO frame into 46 buffers (in place then copied, against cut and copied with the checksum in
/// the copy's pass), and laying a train of 46 segments out for the TAP (copied into one frame, against the head
/// and slices of a gathered write).
/// `cargo test -p tweed-io --release --lib offload_work -- --ignored --nocapture`
#[test]
#[ignore = "a benchmark: run by hand"]
fn bench_offload_work() {
    let data: Vec<u8> = (0..46 * 1398u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let (hdr, frame) = tso_read(&data, 12, 1398, FLAG_ACK);
    let mut bufs = vec![[0u8; 2048]; 46];
    let mut read = frame.clone();
    for round in 0..2 {
        let in_place = best_ns(|| {
            read.copy_from_slice(&frame);
            let mut k = 0;
            let _ = segment_offloaded(&hdr, &mut read, 2048, 64, |f| {
                bufs[k][..f.len()].copy_from_slice(f);
                k += 1;
            });
            std::hint::black_box(&mut bufs);
            k
        });
        let cut = best_ns(|| {
            read.copy_from_slice(&frame);
            let mut k = 0;
            let _ = cut_offloaded(&hdr, &mut read, 2048, 64, |c| {
                c.copy_to(&mut bufs[k]);
                k += 1;
            });
            std::hint::black_box(&mut bufs);
            k
        });
        let reset = best_ns(|| {
            read.copy_from_slice(&frame);
            1
        });
        let (a, b) = (in_place - reset, cut - reset);
        eprintln!(
            "r{round} cut 64 KiB into 46 buffers: in place + copy {a:.0} ns, cut + copy_sum {b:.0} ns: {:.2}x",
            a / b
        );
    }
    let segs = train(46, 1398, 1398);
    let mut out = vec![0u8; COALESCE_ROOM];
    for round in 0..2 {
        let copied = best_ns(|| {
            let n = coalesce(std::hint::black_box(&segs), &mut out);
            std::hint::black_box(&mut out);
            n
        });
        let gathered = best_ns(|| {
            let mut head = [0u8; HEAD_ROOM];
            let n = coalesced_head(std::hint::black_box(&segs), &mut head);
            let mut parts = [std::io::IoSlice::new(&[]); 1 + MAX_SEGMENTS];
            parts[0] = std::io::IoSlice::new(&head[..n]);
            for (p, f) in parts[1..].iter_mut().zip(&segs) {
                *p = std::io::IoSlice::new(payload(f));
            }
            std::hint::black_box(&parts);
            n
        });
        eprintln!(
            "r{round} lay out a 46-segment train: copied {copied:.0} ns, gathered {gathered:.0} ns: {:.1}x",
            copied / gathered
        );
    }
}
