//! `tweed bench --workers N`: the encapsulation workload on one worker, then on `N` workers of one control plane at
//! once, each on its own thread with its own ports, pool and node (`Control::worker`: the route table and the
//! peers shared, read without locks). What it shows is how the data path scales with cores: any cache line the
//! workers wrote in common would cost it.

use std::sync::Barrier;
use std::time::{Duration, Instant as WallClock};

use tweed_overlay::Control;
use tweed_packet::PortId;

use super::{Bench, bench_worker, feed, round};

/// Packets and the longest time taken by `n` workers of `control`, each running rounds of `frames` from its pod
/// port 1 for `seconds` (after a tenth of that to warm up), all started together.
fn run(control: &Control, frames: &[Vec<u8>], batch: usize, n: usize, seconds: f64) -> Result<(u64, Duration), String> {
    let mut workers: Vec<Bench> = (0..n).map(|_| bench_worker(control.worker(), batch)).collect::<Result<_, _>>()?;
    for w in &mut workers {
        feed(w, PortId(1), frames);
    }
    let start = Barrier::new(n);
    let results: Vec<Result<(u64, Duration), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .into_iter()
            .map(|mut w| {
                let start = &start;
                s.spawn(move || {
                    let warm = WallClock::now();
                    while warm.elapsed().as_secs_f64() < seconds / 10.0 {
                        round(&mut w, PortId(1))?;
                    }
                    start.wait();
                    let t = WallClock::now();
                    let mut rounds = 0u64;
                    while t.elapsed().as_secs_f64() < seconds {
                        for _ in 0..16 {
                            round(&mut w, PortId(1))?;
                        }
                        rounds += 16;
                    }
                    let elapsed = t.elapsed();
                    if w.node().counters().total_drops() != 0 {
                        return Err("a worker dropped packets while timed; this is a bug".to_owned());
                    }
                    Ok((rounds * frames.len() as u64, elapsed))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a worker thread panicked".to_owned()))).collect()
    });
    let mut total = (0, Duration::ZERO);
    for r in results {
        let (packets, elapsed) = r?;
        total = (total.0 + packets, total.1.max(elapsed));
    }
    Ok(total)
}

/// The line `tweed bench --workers N` adds: packets per second on one worker and on `n`, and their ratio.
pub(super) fn scaling(
    control: &Control,
    frames: &[Vec<u8>],
    batch: usize,
    n: usize,
    seconds: f64,
) -> Result<String, String> {
    let mpps = |(packets, elapsed): (u64, Duration)| packets as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6;
    let one = mpps(run(control, frames, batch, 1, seconds)?);
    let many = mpps(run(control, frames, batch, n, seconds)?);
    Ok(format!(
        "encap vxlan on {n} workers (a thread each, one control): {many:.2} Mpps, {:.2}x one worker's {one:.2} Mpps\n",
        many / one.max(1e-9)
    ))
}
