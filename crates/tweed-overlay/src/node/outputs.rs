//! [`Outputs`]: what one call of [`Node::process`](super::Node::process) leaves.

use super::*;

/// The packets one call of [`Node::process`] leaves, each with its verdict, in a vector sized up front.
#[derive(Debug)]
pub struct Outputs {
    pub(super) items: Vec<(PacketBuf, Verdict)>,
}

impl Outputs {
    /// Room for `capacity` packets.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self { items: Vec::with_capacity(capacity) }
    }

    /// How many packets there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The packets and their verdicts.
    pub fn as_slice(&self) -> &[(PacketBuf, Verdict)] {
        &self.items
    }

    /// Takes the packets out, in order.
    pub fn drain(&mut self) -> std::vec::Drain<'_, (PacketBuf, Verdict)> {
        self.items.drain(..)
    }

    /// Gives every packet back to `pool`.
    pub fn recycle(&mut self, pool: &mut Pool) {
        for (buf, _) in self.items.drain(..) {
            pool.put(buf);
        }
    }

    pub(super) fn is_full(&self) -> bool {
        self.items.len() == self.items.capacity()
    }
}
