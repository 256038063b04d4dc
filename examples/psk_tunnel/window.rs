//! The receiver's sliding replay window (RFC 6479, as WireGuard keeps it): a ring of 64-bit blocks, one bit per
//! counter, behind the highest counter accepted so far.
//!
//! A counter is accepted once: when it is ahead of everything accepted (the window slides to it, clearing the
//! blocks it passes), or when it is within [`WINDOW`] of the highest and its bit is clear (a datagram reordered by
//! the underlay). Anything older, or seen, is a replay. The window has no other state than its bitmap and the next
//! counter: no allocation, O(1) per datagram whatever the jump (at most [`BLOCKS`] blocks are cleared).
//!
//! [`check`](ReplayWindow::check) only looks, so the receiver can refuse a replay before spending a decryption on
//! it; [`accept`](ReplayWindow::accept) looks again and marks, and is called only once the datagram authenticated,
//! so that a forged counter far ahead cannot slide the window over the genuine ones.

/// 64-bit blocks in the ring: 2048 bits.
pub(crate) const BLOCKS: usize = 32;
/// How far behind the highest accepted counter a counter may be and still be accepted: the ring less one block,
/// the block that the highest counter shares with the counters just ahead of it (RFC 6479, section 2).
pub(crate) const WINDOW: u64 = (BLOCKS as u64 - 1) * 64;

/// The counters seen from one sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReplayWindow {
    /// One more than the highest counter accepted; 0 before the first.
    next: u64,
    bitmap: [u64; BLOCKS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

/// The ring slot of a block of 64 counters.
const fn slot(block: u64) -> usize {
    // The modulo keeps the slot below BLOCKS, so the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation)]
    let slot = (block % BLOCKS as u64) as usize;
    slot
}

/// The ring slot of a counter's block and the counter's bit in it.
const fn position(counter: u64) -> (usize, u64) {
    (slot(counter / 64), 1 << (counter % 64))
}

impl ReplayWindow {
    /// A window that has seen nothing.
    #[must_use]
    pub(crate) const fn new() -> Self {
        Self { next: 0, bitmap: [0; BLOCKS] }
    }

    /// Whether `counter` would be accepted now. `u64::MAX` never is: no sender gets there, and the window could
    /// not move past it.
    #[must_use]
    pub(crate) const fn check(&self, counter: u64) -> bool {
        if counter == u64::MAX {
            return false;
        }
        if counter >= self.next {
            return true;
        }
        // `next - 1` is the highest accepted: `counter` is at most that, so this does not underflow.
        if self.next - 1 - counter >= WINDOW {
            return false;
        }
        let (slot, bit) = position(counter);
        self.bitmap[slot] & bit == 0
    }

    /// Marks `counter` as seen if [`check`](Self::check) accepts it, sliding the window when it is ahead. Returns
    /// whether it was accepted.
    pub(crate) fn accept(&mut self, counter: u64) -> bool {
        if !self.check(counter) {
            return false;
        }
        if counter >= self.next {
            if self.next > 0 {
                // Clear the blocks after the highest one up to the counter's: their bits belong to counters a whole
                // ring ago. A jump of a ring or more clears them all.
                let (from, to) = ((self.next - 1) / 64, counter / 64);
                let n = (to - from).min(BLOCKS as u64);
                for i in 1..=n {
                    self.bitmap[slot(from + i)] = 0;
                }
            }
            // `check` refused u64::MAX.
            self.next = counter + 1;
        }
        let (slot, bit) = position(counter);
        self.bitmap[slot] |= bit;
        true
    }
}
