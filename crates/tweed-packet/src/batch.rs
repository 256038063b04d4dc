//! [`Batch`]: the vector of packets a pipeline stage runs over, of a capacity fixed when it is made.

use core::fmt;
use core::ops::{Index, IndexMut};

use crate::{PacketBuf, Pool};

/// A fixed-capacity vector of packet buffers, each with its [`crate::Meta`] (ingress port, egress port, flow hash,
/// …): the unit of work of every pipeline stage.
///
/// A batch allocates its slots when it is made and never again: [`Batch::push`] on a full batch hands the buffer
/// back instead of growing, and every helper below (`drain`, `swap_remove`, `retain_or_put`, `partition_into`,
/// `append`) moves buffers within the slots it has. Order is kept wherever a method does not say otherwise, so
/// that the packets of a flow leave in the order they came.
///
/// ```
/// use tweed_packet::{Batch, Pool, PoolConfig, PortId};
///
/// let mut pool = Pool::new(PoolConfig { buffers: 8, ..PoolConfig::default() })?;
/// let mut rx = Batch::new(8);
/// assert_eq!(pool.get_batch(&mut rx, 4), 4);
/// for (i, pkt) in rx.iter_mut().enumerate() {
///     pkt.extend_from_slice(&[i as u8; 60])?;
///     pkt.meta_mut().ingress = PortId(i as u16 % 2);
/// }
/// // Split by egress port, keeping each side in order.
/// let mut port1 = Batch::new(8);
/// rx.partition_into(&mut port1, |pkt| pkt.meta().ingress == PortId(1));
/// assert_eq!((rx.len(), port1.len()), (2, 2));
/// assert_eq!(port1[0].data()[0], 1);
/// assert_eq!(port1[1].data()[0], 3);
/// rx.clear_into(&mut pool);
/// port1.clear_into(&mut pool);
/// assert_eq!(pool.available(), 8);
/// # Ok::<(), tweed_packet::Error>(())
/// ```
pub struct Batch {
    /// Invariant: `bufs.len() <= capacity <= bufs.capacity()`.
    bufs: Vec<PacketBuf>,
    /// Empty between calls; `partition_into` swaps it with `bufs` to move buffers stably without allocating.
    /// Invariant: `capacity <= scratch.capacity()`.
    scratch: Vec<PacketBuf>,
    capacity: usize,
}

impl Batch {
    /// The batch size tweed's pipeline uses unless told otherwise (VPP's frame size).
    pub const DEFAULT_CAPACITY: usize = 256;

    /// An empty batch with room for `capacity` buffers (it allocates the slots, twice `capacity` pointers' worth
    /// of buffer headers).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self { bufs: Vec::with_capacity(capacity), scratch: Vec::with_capacity(capacity), capacity }
    }

    /// The number of buffers the batch can hold.
    #[must_use]
    #[inline]
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of buffers in the batch.
    #[must_use]
    #[inline]
    pub fn len(&self) -> usize {
        self.bufs.len()
    }

    /// There are no buffers in the batch.
    #[must_use]
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    /// The batch holds [`Batch::capacity`] buffers.
    #[must_use]
    #[inline]
    pub fn is_full(&self) -> bool {
        self.bufs.len() >= self.capacity
    }

    /// Slots free.
    #[must_use]
    #[inline]
    pub fn remaining(&self) -> usize {
        self.capacity - self.bufs.len()
    }

    /// Adds `buf` at the end.
    ///
    /// # Errors
    /// `buf` itself when the batch is full.
    #[inline]
    pub fn push(&mut self, buf: PacketBuf) -> Result<(), PacketBuf> {
        if self.is_full() {
            return Err(buf);
        }
        self.bufs.push(buf);
        Ok(())
    }

    /// Removes the last buffer.
    #[must_use]
    #[inline]
    pub fn pop(&mut self) -> Option<PacketBuf> {
        self.bufs.pop()
    }

    /// Removes the buffer at `index` and puts the last one in its place (O(1); the order changes), or `None` when
    /// `index` is out of range.
    #[must_use]
    #[inline]
    pub fn swap_remove(&mut self, index: usize) -> Option<PacketBuf> {
        (index < self.bufs.len()).then(|| self.bufs.swap_remove(index))
    }

    /// The buffer at `index`, or `None` when out of range.
    #[must_use]
    #[inline]
    pub fn get(&self, index: usize) -> Option<&PacketBuf> {
        self.bufs.get(index)
    }

    /// The buffer at `index`, mutable, or `None` when out of range.
    #[must_use]
    #[inline]
    pub fn get_mut(&mut self, index: usize) -> Option<&mut PacketBuf> {
        self.bufs.get_mut(index)
    }

    /// The buffers, in order.
    #[must_use]
    #[inline]
    pub fn as_slice(&self) -> &[PacketBuf] {
        &self.bufs
    }

    /// The buffers, in order, mutable (for an I/O layer that needs every receive area at once).
    #[must_use]
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [PacketBuf] {
        &mut self.bufs
    }

    /// Iterates over the buffers in order.
    #[inline]
    pub fn iter(&self) -> core::slice::Iter<'_, PacketBuf> {
        self.bufs.iter()
    }

    /// Iterates over the buffers in order, mutably.
    #[inline]
    pub fn iter_mut(&mut self) -> core::slice::IterMut<'_, PacketBuf> {
        self.bufs.iter_mut()
    }

    /// Removes every buffer, in order. The batch is empty afterwards, even if the iterator is not run to its end
    /// (the buffers left are dropped, which frees them: hand them to a pool instead).
    #[inline]
    pub fn drain(&mut self) -> std::vec::Drain<'_, PacketBuf> {
        self.bufs.drain(..)
    }

    /// Gives every buffer back to `pool`; the batch is empty afterwards.
    #[inline]
    pub fn clear_into(&mut self, pool: &mut Pool) {
        pool.put_batch(self);
    }

    /// Keeps the buffers for which `keep` returns `true`, in order, and gives the others back to `pool`.
    pub fn retain_or_put(&mut self, pool: &mut Pool, mut keep: impl FnMut(&mut PacketBuf) -> bool) {
        // Swap each kept buffer down to the end of the kept prefix: the kept ones stay in order, the dropped ones
        // collect, in some order, behind them.
        let mut kept = 0;
        for i in 0..self.bufs.len() {
            if keep(&mut self.bufs[i]) {
                self.bufs.swap(kept, i);
                kept += 1;
            }
        }
        for buf in self.bufs.drain(kept..) {
            pool.put(buf);
        }
    }

    /// Moves the buffers for which `take` returns `true` to the end of `other`, in order, and keeps the others,
    /// in order; returns how many moved. When `other` fills up, the buffers that did not fit stay here (in their
    /// place in the order).
    pub fn partition_into(&mut self, other: &mut Self, mut take: impl FnMut(&mut PacketBuf) -> bool) -> usize {
        // `scratch` is empty with room for `capacity`; after the swap `bufs` is, and every buffer goes back to
        // one of the two batches, so neither Vec outgrows what it was given.
        core::mem::swap(&mut self.bufs, &mut self.scratch);
        let mut moved = 0;
        for mut buf in self.scratch.drain(..) {
            let stay = if take(&mut buf) {
                match other.push(buf) {
                    Ok(()) => {
                        moved += 1;
                        continue;
                    }
                    Err(buf) => buf,
                }
            } else {
                buf
            };
            self.bufs.push(stay);
        }
        moved
    }

    /// Moves buffers from the front of `other` to the end of this batch, in order, as many as fit; returns how
    /// many moved. The ones that did not fit stay in `other`, in order.
    pub fn append(&mut self, other: &mut Self) -> usize {
        let n = other.len().min(self.remaining());
        self.bufs.extend(other.bufs.drain(..n));
        n
    }
}

impl Default for Batch {
    /// An empty batch of [`Batch::DEFAULT_CAPACITY`].
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl Index<usize> for Batch {
    type Output = PacketBuf;

    /// The buffer at `index`.
    ///
    /// # Panics
    /// When `index >= self.len()`, as slices do; [`Batch::get`] returns an `Option` instead.
    fn index(&self, index: usize) -> &PacketBuf {
        &self.bufs[index]
    }
}

impl IndexMut<usize> for Batch {
    /// The buffer at `index`, mutable.
    ///
    /// # Panics
    /// When `index >= self.len()`, as slices do; [`Batch::get_mut`] returns an `Option` instead.
    fn index_mut(&mut self, index: usize) -> &mut PacketBuf {
        &mut self.bufs[index]
    }
}

impl<'a> IntoIterator for &'a Batch {
    type Item = &'a PacketBuf;
    type IntoIter = core::slice::Iter<'a, PacketBuf>;

    fn into_iter(self) -> Self::IntoIter {
        self.bufs.iter()
    }
}

impl<'a> IntoIterator for &'a mut Batch {
    type Item = &'a mut PacketBuf;
    type IntoIter = core::slice::IterMut<'a, PacketBuf>;

    fn into_iter(self) -> Self::IntoIter {
        self.bufs.iter_mut()
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch").field("capacity", &self.capacity).field("bufs", &self.bufs).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PoolConfig, PortId};

    fn pool(buffers: usize) -> Pool {
        Pool::new(PoolConfig { buffers, capacity: 128, headroom: 32 }).unwrap()
    }

    /// A batch of `n` buffers from `pool`, the i-th holding the single byte `i`.
    fn numbered(pool: &mut Pool, capacity: usize, n: usize) -> Batch {
        let mut batch = Batch::new(capacity);
        assert_eq!(pool.get_batch(&mut batch, n), n);
        for (i, pkt) in batch.iter_mut().enumerate() {
            pkt.extend_from_slice(&[u8::try_from(i).unwrap()]).unwrap();
        }
        batch
    }

    fn bytes(batch: &Batch) -> Vec<u8> {
        batch.iter().map(|pkt| pkt.data()[0]).collect()
    }

    #[test]
    fn test_new_and_default() {
        let batch = Batch::new(32);
        assert_eq!(batch.capacity(), 32);
        assert_eq!(batch.len(), 0);
        assert!(batch.is_empty());
        assert!(!batch.is_full());
        assert_eq!(batch.remaining(), 32);
        assert_eq!(Batch::default().capacity(), 256);
        assert!(Batch::new(0).is_full());
    }

    #[test]
    fn test_push_pop() {
        let mut batch = Batch::new(2);
        batch.push(PacketBuf::new(16, 0).unwrap()).unwrap();
        batch.push(PacketBuf::new(32, 0).unwrap()).unwrap();
        assert!(batch.is_full());
        assert_eq!(batch.remaining(), 0);
        let back = batch.push(PacketBuf::new(48, 0).unwrap()).unwrap_err();
        assert_eq!(back.capacity(), 48);
        assert_eq!(batch.len(), 2);
        assert!(batch.bufs.capacity() >= 2);
        assert_eq!(batch.pop().unwrap().capacity(), 32);
        assert_eq!(batch.pop().unwrap().capacity(), 16);
        assert!(batch.pop().is_none());
    }

    #[test]
    fn test_get_and_index() {
        let mut pool = pool(4);
        let mut batch = numbered(&mut pool, 4, 3);
        assert_eq!(batch.get(2).unwrap().data(), &[2]);
        assert!(batch.get(3).is_none());
        batch.get_mut(1).unwrap().data_mut()[0] = 9;
        assert!(batch.get_mut(3).is_none());
        assert_eq!(batch[1].data(), &[9]);
        batch[0].data_mut()[0] = 7;
        assert_eq!(bytes(&batch), [7, 9, 2]);
        assert_eq!(batch.as_slice().len(), 3);
        batch.as_mut_slice()[2].data_mut()[0] = 5;
        assert_eq!(bytes(&batch), [7, 9, 5]);
    }

    #[test]
    #[should_panic(expected = "index out of bounds")]
    fn test_index_out_of_range_panics_like_a_slice() {
        let batch = Batch::new(4);
        let _ = &batch[0];
    }

    #[test]
    fn test_iterators() {
        let mut pool = pool(4);
        let mut batch = numbered(&mut pool, 4, 4);
        for pkt in &mut batch {
            pkt.data_mut()[0] *= 2;
        }
        let doubled: Vec<u8> = (&batch).into_iter().map(|pkt| pkt.data()[0]).collect();
        assert_eq!(doubled, [0, 2, 4, 6]);
        assert_eq!(batch.iter().count(), 4);
        assert_eq!(batch.iter_mut().len(), 4);
    }

    #[test]
    fn test_swap_remove() {
        let mut pool = pool(4);
        let mut batch = numbered(&mut pool, 4, 4);
        assert_eq!(batch.swap_remove(1).unwrap().data(), &[1]);
        assert_eq!(bytes(&batch), [0, 3, 2]);
        assert!(batch.swap_remove(3).is_none());
        assert_eq!(batch.swap_remove(2).unwrap().data(), &[2]);
        assert_eq!(bytes(&batch), [0, 3]);
    }

    #[test]
    fn test_drain_and_clear_into() {
        let mut pool = pool(4);
        let mut batch = numbered(&mut pool, 4, 4);
        let drained: Vec<u8> = batch.drain().map(|pkt| pkt.data()[0]).collect();
        assert_eq!(drained, [0, 1, 2, 3]);
        assert!(batch.is_empty());
        // The drained buffers were dropped, not returned: the pool has lost them.
        assert_eq!(pool.available(), 0);

        let mut pool = self::pool(4);
        let mut batch = numbered(&mut pool, 4, 3);
        // A partly run drain still empties the batch.
        assert_eq!(batch.drain().next().unwrap().data(), &[0]);
        assert!(batch.is_empty());
        let mut batch = numbered(&mut pool, 4, 1);
        batch.clear_into(&mut pool);
        assert!(batch.is_empty());
        assert_eq!(pool.available(), 1, "the three drained buffers are gone");
        assert_eq!(pool.stats().puts, 1);
    }

    #[test]
    fn test_retain_or_put() {
        let mut pool = pool(8);
        let mut batch = numbered(&mut pool, 8, 8);
        batch.retain_or_put(&mut pool, |pkt| pkt.data()[0] % 3 != 0);
        assert_eq!(bytes(&batch), [1, 2, 4, 5, 7]);
        assert_eq!(pool.available(), 3);
        // The closure may change what it keeps.
        batch.retain_or_put(&mut pool, |pkt| {
            pkt.meta_mut().ingress = PortId(1);
            true
        });
        assert!(batch.iter().all(|pkt| pkt.meta().ingress == PortId(1)));
        batch.retain_or_put(&mut pool, |_| false);
        assert!(batch.is_empty());
        assert_eq!(pool.available(), 8);
        batch.retain_or_put(&mut pool, |_| unreachable!("no buffers to look at"));
    }

    #[test]
    fn test_partition_into() {
        let mut pool = pool(8);
        let mut batch = numbered(&mut pool, 8, 8);
        let mut odd = Batch::new(8);
        assert_eq!(batch.partition_into(&mut odd, |pkt| pkt.data()[0] % 2 == 1), 4);
        assert_eq!(bytes(&batch), [0, 2, 4, 6]);
        assert_eq!(bytes(&odd), [1, 3, 5, 7]);
        // Appends behind what `other` holds.
        assert_eq!(batch.partition_into(&mut odd, |pkt| pkt.data()[0] == 4), 1);
        assert_eq!(bytes(&batch), [0, 2, 6]);
        assert_eq!(bytes(&odd), [1, 3, 5, 7, 4]);
        assert!(batch.scratch.is_empty());
        assert!(batch.bufs.capacity() >= 8 && batch.scratch.capacity() >= 8);
    }

    #[test]
    fn test_partition_into_full_other() {
        let mut pool = pool(8);
        let mut batch = numbered(&mut pool, 8, 6);
        let mut small = Batch::new(2);
        assert_eq!(batch.partition_into(&mut small, |pkt| pkt.data()[0] >= 1), 2);
        assert_eq!(bytes(&small), [1, 2]);
        // 3, 4 and 5 wanted to move but did not fit: they stay, in their places.
        assert_eq!(bytes(&batch), [0, 3, 4, 5]);
    }

    #[test]
    fn test_append() {
        let mut pool = pool(8);
        let mut a = numbered(&mut pool, 5, 2);
        let mut b = numbered(&mut pool, 8, 5);
        assert_eq!(a.append(&mut b), 3);
        assert_eq!(bytes(&a), [0, 1, 0, 1, 2]);
        assert_eq!(bytes(&b), [3, 4]);
        assert_eq!(a.append(&mut b), 0);
        assert_eq!(bytes(&b), [3, 4]);
    }

    #[test]
    fn test_debug() {
        let mut batch = Batch::new(2);
        batch.push(PacketBuf::new(16, 4).unwrap()).unwrap();
        let text = format!("{batch:?}");
        assert!(
            text.starts_with("Batch { capacity: 2, bufs: [PacketBuf { capacity: 16, headroom: 4, len: 0"),
            "{text}"
        );
    }

    #[test]
    fn test_send() {
        fn is_send<T: Send>() {}
        is_send::<Batch>();
    }
}
