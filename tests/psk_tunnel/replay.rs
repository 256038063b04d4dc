//! The replay window against exact expectations and against a model that remembers every counter.

use std::collections::HashSet;

use proptest::prelude::*;

use crate::window::{BLOCKS, ReplayWindow, WINDOW};

#[test]
fn the_window_is_the_ring_less_one_block() {
    assert_eq!((BLOCKS, WINDOW), (32, 1984));
}

#[test]
fn each_counter_is_accepted_once() {
    let mut w = ReplayWindow::new();
    assert!(w.check(0) && w.accept(0));
    assert!(!w.check(0) && !w.accept(0));
    assert!(w.accept(1) && w.accept(2));
    assert!(!w.accept(1) && !w.accept(2));
    assert!(w.accept(3));
}

#[test]
fn a_reordered_counter_within_the_window_is_accepted_once() {
    let mut w = ReplayWindow::new();
    assert!(w.accept(100));
    // 50 and 99 arrive late: never seen, within the window.
    assert!(w.accept(50));
    assert!(!w.accept(50));
    assert!(w.accept(99));
    assert!(!w.accept(99));
    assert!(!w.accept(100));
    // Ones never accepted are still open.
    assert!(w.check(0) && w.check(98) && w.check(101));
}

#[test]
fn a_counter_a_whole_window_behind_is_too_old() {
    let mut w = ReplayWindow::new();
    assert!(w.accept(5000));
    // 5000 - 1983 is the oldest still in the window, 5000 - 1984 the newest out of it.
    assert!(w.check(5000 - 1983));
    assert!(!w.check(5000 - 1984));
    assert!(!w.accept(5000 - 1984));
    assert!(!w.accept(0));
    assert!(w.accept(5000 - 1983));
    assert!(!w.accept(5000 - 1983));
}

#[test]
fn jumping_ahead_clears_the_blocks_it_passes_and_keeps_the_others() {
    let mut w = ReplayWindow::new();
    for c in 0..64 {
        assert!(w.accept(c));
    }
    assert!(w.accept(70)); // block 1, ring slot 1
    // Four blocks ahead: slots 2..=5 are cleared, blocks 0 and 1 are still in the window and remembered.
    assert!(w.accept(64 * 5 + 3));
    assert!((0..64).all(|c| !w.check(c)));
    assert!(!w.check(70) && w.check(71));
    // 29 blocks ahead: the slots of blocks 6..=34 are cleared, among them block 33's, which was block 1's, so 2118
    // (70 + 2048: its slot and bit) is new; 323, still in the window, is still seen.
    assert!(w.accept(2200));
    assert!(!w.check(64 * 5 + 3));
    assert!(w.check(2118));
    assert!(w.accept(2118));
    assert!(!w.accept(2118));
    // 70 itself is now too old.
    assert!(!w.check(70));
}

#[test]
fn a_jump_of_exactly_a_ring_reuses_the_slot_cleanly() {
    let mut w = ReplayWindow::new();
    assert!(w.accept(10));
    // 10 + 2048 lands in the slot and on the bit of 10: it is ahead, so accepted; then it is seen.
    assert!(w.accept(10 + 2048));
    assert!(!w.check(10 + 2048));
    // Every other counter of that block that is still in the window is open.
    assert!(w.check(2048) && w.check(2048 + 9) && w.check(2048 + 11));
}

#[test]
fn checking_does_not_move_the_window() {
    let mut w = ReplayWindow::new();
    assert!(w.accept(10));
    assert!(w.check(1_000_000));
    // Had the check moved it, 10's neighbours would be too old.
    assert!(w.accept(9));
}

#[test]
fn the_last_counter_is_never_accepted() {
    let mut w = ReplayWindow::new();
    assert!(!w.check(u64::MAX) && !w.accept(u64::MAX));
    assert!(w.accept(u64::MAX - 1));
    assert!(!w.accept(u64::MAX - 1) && !w.accept(u64::MAX));
    assert!(w.accept(u64::MAX - 2));
}

/// Accepts what was never accepted and is less than a window behind the highest accepted.
#[derive(Default)]
struct Model {
    seen: HashSet<u64>,
    highest: Option<u64>,
}

impl Model {
    fn accept(&mut self, c: u64) -> bool {
        let in_window = self.highest.is_none_or(|h| c > h || h - c < WINDOW);
        let ok = c != u64::MAX && in_window && !self.seen.contains(&c);
        if ok {
            self.seen.insert(c);
            self.highest = Some(self.highest.map_or(c, |h| h.max(c)));
        }
        ok
    }
}

/// Counters that wander: mostly near the last one (reorder, duplicates, the window's edges), sometimes far ahead.
fn wandering() -> impl Strategy<Value = Vec<u64>> {
    let step = prop_oneof![
        6 => -2100i64..2100,
        3 => -70i64..70,
        1 => 2000i64..5000,
    ];
    proptest::collection::vec(step, 1..600).prop_map(|steps| {
        let mut c = 3000i64;
        steps
            .into_iter()
            .map(|s| {
                c = (c + s).max(0);
                c.unsigned_abs()
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn the_window_agrees_with_a_set_of_every_counter(counters in wandering()) {
        let (mut w, mut model) = (ReplayWindow::new(), Model::default());
        for c in counters {
            let expected = model.accept(c);
            prop_assert_eq!(w.check(c), expected, "check({})", c);
            prop_assert_eq!(w.accept(c), expected, "accept({})", c);
        }
    }

    #[test]
    fn the_window_agrees_with_the_model_on_any_counters(counters in proptest::collection::vec(0u64..8000, 1..400)) {
        let (mut w, mut model) = (ReplayWindow::new(), Model::default());
        for c in counters {
            let expected = model.accept(c);
            prop_assert_eq!(w.accept(c), expected, "accept({})", c);
        }
    }
}
