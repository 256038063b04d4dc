//! [`Outputs`]: what one call of [`Node::process`](super::Node::process) leaves.

use super::*;

/// The packets one call of [`Node::process`] leaves, each with its verdict, in a vector sized up front.
#[derive(Debug)]
pub struct Outputs {
    pub(super) items: Vec<(PacketBuf, Verdict)>,
    /// Room held back, during a call of [`Node::process`], for the batch's packets not yet emitted: the packets
    /// the node originates (ARP requests, ICMP errors, flood copies, fragments) and those it releases from the
    /// ARP queue take only the room beyond it, so that they never crowd out the batch.
    pub(super) reserved: usize,
}

impl Outputs {
    /// Room for `capacity` packets.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self { items: Vec::with_capacity(capacity), reserved: 0 }
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

    /// The room left.
    pub(super) fn room(&self) -> usize {
        self.items.capacity().saturating_sub(self.items.len())
    }

    /// The room beyond the reserve: what packets outside the batch may take.
    pub(super) fn spare(&self) -> usize {
        self.room().saturating_sub(self.reserved)
    }
}
