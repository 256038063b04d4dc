//! Readers on other threads only ever see an answer that was right for their address at some instant, while the
//! writer adds and removes routes and recycles tbl8 groups between /24s.
//!
//! The test proves that reads and writes overlapped: every 64 flips the writer leaves the table in its "more
//! specific routes present" state and waits until every reader has finished a whole round since, so each reader
//! must have seen the /24 and /25 answers, which exist only while the writer is at work.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use tweed_route::{Config, Ipv4Prefix, Lpm, NextHopId};

fn p(s: &str) -> Ipv4Prefix {
    s.parse().unwrap()
}

#[test]
fn readers_see_only_answers_that_were_valid() {
    // Two groups at most, so the writer must recycle a retired group for the other /24 over and over.
    let mut lpm = Lpm::with_config(Config { max_tbl8_groups: 1 }).unwrap();
    lpm.insert(p("10.0.0.0/8"), NextHopId(1)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    // The readers are running before the writer starts (the writer takes a tenth of a second).
    let start = Arc::new(Barrier::new(3));
    // Rounds each reader has finished.
    let rounds: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    // (address, answers that are ever right for it)
    let probes: [(u32, &[u32]); 4] = [
        (0x0a01_02c8, &[1, 2, 3]), // 10.1.2.200: /8, /24 flip, /25 flip
        (0x0a01_0205, &[1, 2]),    // 10.1.2.5: /8, /24 flip
        (0x0a01_03c8, &[1, 4]),    // 10.1.3.200: /8, /25 flip in another /24
        (0x0b00_0000, &[]),        // 11.0.0.0: nothing
    ];
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let reader = lpm.reader();
            let done = Arc::clone(&done);
            let start = Arc::clone(&start);
            let rounds = Arc::clone(&rounds);
            thread::spawn(move || {
                let mut seen = [0u64; 5];
                let mut out = [None; 4];
                let addrs = probes.map(|(a, _)| a);
                start.wait();
                // One more round after the writer is done, however late this thread ran: that round sees the final
                // table, where every probe but 11.0.0.0 answers the /8.
                loop {
                    let finished = done.load(Ordering::Acquire);
                    if r == 0 {
                        reader.lookup_batch(&addrs, &mut out);
                    } else {
                        out = addrs.map(|a| reader.lookup(a));
                    }
                    for ((addr, valid), got) in probes.iter().zip(out) {
                        match got {
                            Some(nh) => {
                                assert!(valid.contains(&nh.0), "{addr:#x} -> {nh:?}");
                                seen[nh.0 as usize] += 1;
                            }
                            None => assert!(valid.is_empty(), "{addr:#x} -> none"),
                        }
                    }
                    rounds[r].fetch_add(1, Ordering::Release);
                    if finished {
                        break;
                    }
                }
                seen
            })
        })
        .collect();
    start.wait();
    let mut handshakes = 0;
    for i in 0..4_000 {
        if i % 2 == 0 {
            lpm.insert(p("10.1.2.0/24"), NextHopId(2)).unwrap();
            lpm.insert(p("10.1.2.128/25"), NextHopId(3)).unwrap();
            lpm.remove(p("10.1.2.128/25")).unwrap();
            lpm.insert(p("10.1.3.128/25"), NextHopId(4)).unwrap();
            if i % 64 == 0 {
                // Two rounds: the first may have begun before the inserts.
                let want = rounds.each_ref().map(|n| n.load(Ordering::Acquire) + 2);
                let deadline = Instant::now() + Duration::from_secs(20);
                while rounds.iter().zip(want).any(|(n, w)| n.load(Ordering::Acquire) < w) {
                    assert!(Instant::now() < deadline, "a reader made no progress while the writer waited");
                    thread::yield_now();
                }
                handshakes += 1;
            }
        } else {
            lpm.remove(p("10.1.2.0/24")).unwrap();
            lpm.remove(p("10.1.3.128/25")).unwrap();
            lpm.insert(p("10.1.2.128/25"), NextHopId(3)).unwrap();
            lpm.remove(p("10.1.2.128/25")).unwrap();
        }
    }
    done.store(true, Ordering::Release);
    assert_eq!(handshakes, 4_000 / 64 + 1);
    for r in readers {
        let seen = r.join().unwrap();
        // Each handshake left the /24 (2) and the /25 in 10.1.3.0/24 (4) in place for a whole round of each reader.
        assert!(seen[2] >= handshakes && seen[4] >= handshakes, "reads did not overlap the writer: {seen:?}");
        assert!(seen[1] > 0, "{seen:?}");
    }
    assert_eq!(lpm.len(), 1);
    assert_eq!(lpm.memory_usage().tbl8_groups_in_use, 0);
}
