//! Readers on other threads only ever see an answer that was right for their address at some instant, while the
//! writer adds and removes routes and recycles tbl8 groups between /24s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
            thread::spawn(move || {
                let mut seen = [0u64; 5];
                let mut out = [None; 4];
                let addrs = probes.map(|(a, _)| a);
                while !done.load(Ordering::Relaxed) {
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
                }
                seen
            })
        })
        .collect();
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
    done.store(true, Ordering::Relaxed);
    for r in readers {
        let seen = r.join().unwrap();
        assert!(seen[1] > 0, "{seen:?}");
    }
    assert_eq!(lpm.len(), 1);
    assert_eq!(lpm.memory_usage().tbl8_groups_in_use, 0);
}
