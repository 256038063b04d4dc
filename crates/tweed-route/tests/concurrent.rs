//! Readers on other threads only ever see an answer that was right for their address at some instant, while the
//! writer adds and removes routes and recycles tbl8 groups between /24s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

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
                    if finished {
                        break;
                    }
                }
                seen
            })
        })
        .collect();
    start.wait();
    for i in 0..4_000 {
        if i % 2 == 0 {
            lpm.insert(p("10.1.2.0/24"), NextHopId(2)).unwrap();
            lpm.insert(p("10.1.2.128/25"), NextHopId(3)).unwrap();
            lpm.remove(p("10.1.2.128/25")).unwrap();
            lpm.insert(p("10.1.3.128/25"), NextHopId(4)).unwrap();
        } else {
            lpm.remove(p("10.1.2.0/24")).unwrap();
            lpm.remove(p("10.1.3.128/25")).unwrap();
            lpm.insert(p("10.1.2.128/25"), NextHopId(3)).unwrap();
            lpm.remove(p("10.1.2.128/25")).unwrap();
        }
        if i % 64 == 0 {
            thread::yield_now();
        }
    }
    done.store(true, Ordering::Release);
    for r in readers {
        let seen = r.join().unwrap();
        assert!(seen[1] > 0, "{seen:?}");
    }
    assert_eq!(lpm.len(), 1);
    assert_eq!(lpm.memory_usage().tbl8_groups_in_use, 0);
}
