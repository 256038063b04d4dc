//! [`Pool`]: a fixed set of buffers, made up front, handed out and taken back, so that the data path allocates
//! nothing.

use core::fmt;

use crate::{Batch, DEFAULT_CAPACITY, DEFAULT_HEADROOM, Error, PacketBuf, Result};

/// How many buffers a pool makes, and how.
///
/// ```
/// use tweed_packet::{Pool, PoolConfig};
///
/// // A pool for a 9000-byte-MTU underlay.
/// let pool = Pool::new(PoolConfig { buffers: 64, capacity: 128 + 9018, headroom: 128 })?;
/// assert_eq!(pool.available(), 64);
/// # Ok::<(), tweed_packet::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolConfig {
    /// The number of buffers, all made by [`Pool::new`].
    pub buffers: usize,
    /// Each buffer's capacity in bytes: headroom + the largest frame + tailroom.
    pub capacity: usize,
    /// The headroom of a buffer handed out by [`Pool::get`].
    pub headroom: usize,
}

impl PoolConfig {
    /// The default number of buffers: four batches of [`Batch::DEFAULT_CAPACITY`].
    pub const DEFAULT_BUFFERS: usize = 4 * Batch::DEFAULT_CAPACITY;
}

impl Default for PoolConfig {
    /// [`PoolConfig::DEFAULT_BUFFERS`] buffers of [`DEFAULT_CAPACITY`] bytes with [`DEFAULT_HEADROOM`].
    fn default() -> Self {
        Self { buffers: Self::DEFAULT_BUFFERS, capacity: DEFAULT_CAPACITY, headroom: DEFAULT_HEADROOM }
    }
}

/// A pool's counters. They only grow (until they saturate at `u64::MAX`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PoolStats {
    /// Buffers handed out.
    pub gets: u64,
    /// Buffers taken back.
    pub puts: u64,
    /// Calls to [`Pool::get`] that found the pool empty ([`Pool::get_batch`] counts one when it runs short).
    pub exhausted: u64,
    /// Buffers refused on the way back: a capacity other than the pool's, or more buffers than the pool made.
    pub refused: u64,
}

/// A pool of packet buffers for one worker.
///
/// # One pool per worker
/// A pool is single-threaded: `get` and `put` take `&mut self`, with no lock and no atomic. tweed runs one worker
/// per queue, sharing nothing, and each worker owns its pool (a `Pool` is `Send`, so it can be made on one thread
/// and moved to its worker). A buffer may leave its worker inside a batch and come back to another pool of the same
/// buffer capacity; a pool takes back at most as many buffers as it made, so its free list never grows.
///
/// # The promise
/// After [`Pool::new`], `get`, `put`, `try_put`, `get_batch` and `put_batch` never allocate: the free list's
/// capacity is reserved for every buffer the pool made, and a buffer that would not fit is refused (and counted),
/// never accommodated (`put` frees a refused buffer; `try_put` hands it back). When the pool is empty, `get`
/// returns `None` and counts it; it never makes a new buffer.
///
/// ```
/// use tweed_packet::{Pool, PoolConfig};
///
/// let mut pool = Pool::new(PoolConfig { buffers: 2, ..PoolConfig::default() })?;
/// let a = pool.get().expect("two buffers");
/// let b = pool.get().expect("two buffers");
/// assert!(pool.get().is_none()); // exhausted: counted, nothing allocated
/// pool.put(a);
/// pool.put(b);
/// let stats = pool.stats();
/// assert_eq!((stats.gets, stats.puts, stats.exhausted), (2, 2, 1));
/// # Ok::<(), tweed_packet::Error>(())
/// ```
pub struct Pool {
    /// A LIFO stack: the buffer put back last is handed out first, while its bytes are still in cache.
    /// Invariant: `free.len() <= config.buffers <= free.capacity()`.
    free: Vec<PacketBuf>,
    config: PoolConfig,
    stats: PoolStats,
}

impl Pool {
    /// Makes all `config.buffers` buffers (the only allocation the pool ever does).
    ///
    /// # Errors
    /// [`Error::TooLarge`] when `config.headroom > config.capacity`.
    pub fn new(config: PoolConfig) -> Result<Self> {
        if config.headroom > config.capacity {
            return Err(Error::TooLarge { required: config.headroom, available: config.capacity });
        }
        let mut free = Vec::with_capacity(config.buffers);
        for _ in 0..config.buffers {
            free.push(PacketBuf::new(config.capacity, config.headroom)?);
        }
        Ok(Self { free, config, stats: PoolStats::default() })
    }

    /// An empty buffer with the pool's headroom and default metadata, or `None` (counted in
    /// [`PoolStats::exhausted`]) when every buffer is out.
    #[must_use]
    #[inline]
    pub fn get(&mut self) -> Option<PacketBuf> {
        if let Some(buf) = self.free.pop() {
            self.stats.gets = self.stats.gets.saturating_add(1);
            Some(buf)
        } else {
            self.stats.exhausted = self.stats.exhausted.saturating_add(1);
            None
        }
    }

    /// Takes a buffer back, emptied, with the pool's headroom and default metadata. A buffer the pool cannot take
    /// (see [`Pool::try_put`]) is dropped and counted in [`PoolStats::refused`].
    #[inline]
    pub fn put(&mut self, buf: PacketBuf) {
        // A refused buffer is freed here: a caller that wants it back uses `try_put`.
        drop(self.try_put(buf));
    }

    /// Takes a buffer back, as [`Pool::put`] does, or hands it back when the pool cannot take it.
    ///
    /// # Errors
    /// The buffer itself (counted in [`PoolStats::refused`]) when its capacity is not the pool's, or when the pool
    /// already holds as many free buffers as it made: taking it would grow the free list.
    #[inline]
    pub fn try_put(&mut self, mut buf: PacketBuf) -> core::result::Result<(), PacketBuf> {
        // `reset` cannot fail once the capacity matches (the config's headroom fits its capacity), but the check
        // costs nothing and keeps the refusal in one place.
        if buf.capacity() != self.config.capacity
            || self.free.len() >= self.config.buffers
            || buf.reset(self.config.headroom).is_err()
        {
            self.stats.refused = self.stats.refused.saturating_add(1);
            return Err(buf);
        }
        self.free.push(buf);
        self.stats.puts = self.stats.puts.saturating_add(1);
        Ok(())
    }

    /// Fills `batch` with up to `n` buffers, as many as the batch has room for and the pool has, and returns how
    /// many it added.
    pub fn get_batch(&mut self, batch: &mut Batch, n: usize) -> usize {
        let want = n.min(batch.capacity() - batch.len());
        for added in 0..want {
            let Some(buf) = self.get() else { return added };
            if let Err(buf) = batch.push(buf) {
                // Unreachable: `want` leaves room for every push. Giving the buffer back keeps the count honest.
                self.put(buf);
                return added;
            }
        }
        want
    }

    /// Takes back every buffer of `batch`, which is left empty.
    pub fn put_batch(&mut self, batch: &mut Batch) {
        for buf in batch.drain() {
            self.put(buf);
        }
    }

    /// Buffers in the pool, ready to be handed out.
    #[must_use]
    #[inline]
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Buffers handed out and not yet back: `size() - available()`.
    #[must_use]
    #[inline]
    pub fn in_use(&self) -> usize {
        self.config.buffers - self.free.len()
    }

    /// The number of buffers the pool made.
    #[must_use]
    #[inline]
    pub const fn size(&self) -> usize {
        self.config.buffers
    }

    /// The pool's configuration.
    #[must_use]
    #[inline]
    pub const fn config(&self) -> PoolConfig {
        self.config
    }

    /// The pool's counters.
    #[must_use]
    #[inline]
    pub const fn stats(&self) -> PoolStats {
        self.stats
    }
}

impl fmt::Debug for Pool {
    /// The configuration, the free count and the counters, not every buffer.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.config)
            .field("available", &self.available())
            .field("stats", &self.stats)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Meta, PortId};

    fn small(buffers: usize) -> Pool {
        Pool::new(PoolConfig { buffers, capacity: 256, headroom: 64 }).unwrap()
    }

    #[test]
    fn test_new() {
        let pool = small(8);
        assert_eq!(pool.size(), 8);
        assert_eq!(pool.available(), 8);
        assert_eq!(pool.in_use(), 0);
        assert_eq!(pool.config(), PoolConfig { buffers: 8, capacity: 256, headroom: 64 });
        assert_eq!(pool.stats(), PoolStats::default());
        assert!(pool.free.capacity() >= 8);
    }

    #[test]
    fn test_new_errors_and_edges() {
        assert_eq!(
            Pool::new(PoolConfig { buffers: 4, capacity: 64, headroom: 65 }).unwrap_err(),
            Error::TooLarge { required: 65, available: 64 }
        );
        let mut empty = small(0);
        assert!(empty.get().is_none());
        assert_eq!(empty.stats().exhausted, 1);
    }

    #[test]
    fn test_default_config() {
        let config = PoolConfig::default();
        assert_eq!(config, PoolConfig { buffers: 1024, capacity: DEFAULT_CAPACITY, headroom: DEFAULT_HEADROOM });
        let mut pool = Pool::new(config).unwrap();
        let buf = pool.get().unwrap();
        assert_eq!((buf.capacity(), buf.headroom(), buf.len()), (2048, 128, 0));
    }

    #[test]
    fn test_get_put() {
        let mut pool = small(2);
        let a = pool.get().unwrap();
        assert_eq!((a.capacity(), a.headroom(), a.len()), (256, 64, 0));
        assert_eq!(pool.in_use(), 1);
        let b = pool.get().unwrap();
        assert!(pool.get().is_none());
        assert!(pool.get().is_none());
        assert_eq!(pool.stats(), PoolStats { gets: 2, puts: 0, exhausted: 2, refused: 0 });
        pool.put(a);
        pool.put(b);
        assert_eq!(pool.available(), 2);
        assert_eq!(pool.stats(), PoolStats { gets: 2, puts: 2, exhausted: 2, refused: 0 });
    }

    #[test]
    fn test_put_resets() {
        let mut pool = small(1);
        let mut buf = pool.get().unwrap();
        buf.extend_from_slice(&[1, 2, 3]).unwrap();
        buf.push_front(60).unwrap().fill(0);
        buf.meta_mut().ingress = PortId(5);
        buf.meta_mut().timestamp = 77;
        pool.put(buf);
        let buf = pool.get().unwrap();
        assert!(buf.is_empty());
        assert_eq!(buf.headroom(), 64);
        assert_eq!(*buf.meta(), Meta::default());
    }

    #[test]
    fn test_lifo() {
        let mut pool = small(3);
        let mut a = pool.get().unwrap();
        let b = pool.get().unwrap();
        // Tell `a` apart after a reset by its stale bytes.
        a.extend_from_slice(&[0xaa]).unwrap();
        pool.put(b);
        pool.put(a);
        let mut again = pool.get().unwrap();
        assert_eq!(again.recv_area_mut()[0], 0xaa, "the buffer put back last comes out first");
    }

    #[test]
    fn test_refuses_other_capacity() {
        let mut pool = small(2);
        let taken = pool.get().unwrap();
        let foreign = PacketBuf::new(512, 64).unwrap();
        let back = pool.try_put(foreign).unwrap_err();
        assert_eq!(back.capacity(), 512);
        pool.put(PacketBuf::new(128, 0).unwrap());
        assert_eq!(pool.stats().refused, 2);
        assert_eq!(pool.stats().puts, 0);
        assert_eq!(pool.available(), 1);
        assert!(pool.try_put(taken).is_ok());
        assert_eq!(pool.available(), 2);
    }

    #[test]
    fn test_refuses_beyond_size() {
        let mut pool = small(2);
        // Same capacity, but the pool made only two and has both: taking a third would grow the free list.
        let stranger = PacketBuf::new(256, 0).unwrap();
        let back = pool.try_put(stranger).unwrap_err();
        assert_eq!(back.capacity(), 256);
        assert_eq!(pool.available(), 2);
        assert_eq!(pool.stats().refused, 1);
        // A stranger of the right capacity is welcome while one of the pool's own is out (and gets its headroom).
        let _out = pool.get().unwrap();
        pool.try_put(PacketBuf::new(256, 0).unwrap()).unwrap();
        assert_eq!(pool.get().unwrap().headroom(), 64);
    }

    #[test]
    fn test_get_batch_put_batch() {
        let mut pool = small(10);
        let mut batch = Batch::new(4);
        assert_eq!(pool.get_batch(&mut batch, 3), 3);
        assert_eq!(batch.len(), 3);
        // Only one slot left in the batch.
        assert_eq!(pool.get_batch(&mut batch, 5), 1);
        assert_eq!(pool.get_batch(&mut batch, 5), 0);
        assert_eq!(pool.available(), 6);
        assert_eq!(pool.stats().exhausted, 0);
        pool.put_batch(&mut batch);
        assert!(batch.is_empty());
        assert_eq!(pool.available(), 10);

        // The pool runs short.
        let mut big = Batch::new(16);
        assert_eq!(pool.get_batch(&mut big, 16), 10);
        assert_eq!(pool.stats().exhausted, 1);
        assert_eq!(pool.get_batch(&mut big, 0), 0);
        pool.put_batch(&mut big);
        assert_eq!(pool.stats(), PoolStats { gets: 14, puts: 14, exhausted: 1, refused: 0 });
    }

    #[test]
    fn test_debug() {
        let pool = small(3);
        assert_eq!(
            format!("{pool:?}"),
            "Pool { config: PoolConfig { buffers: 3, capacity: 256, headroom: 64 }, available: 3, \
             stats: PoolStats { gets: 0, puts: 0, exhausted: 0, refused: 0 } }"
        );
    }

    #[test]
    fn test_send() {
        fn is_send<T: Send>() {}
        is_send::<Pool>();
        let pool = small(1);
        let back = std::thread::spawn(move || {
            let mut pool = pool;
            let buf = pool.get();
            (pool, buf.is_some())
        })
        .join()
        .unwrap();
        assert!(back.1);
        assert_eq!(back.0.in_use(), 1);
    }
}
