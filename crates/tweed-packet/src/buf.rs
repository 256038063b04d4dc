//! [`PacketBuf`]: one packet's bytes in a fixed-capacity buffer, with room in front of them (headroom) and behind
//! them (tailroom), so that headers are pushed and pulled by moving an offset, never the payload.

use core::fmt;

use crate::{Error, Meta, Result};

/// Length of an IEEE 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;

/// The headroom a buffer gets unless told otherwise: DPDK's `RTE_PKTMBUF_HEADROOM`. It holds a VXLAN outer header
/// with a VLAN tag (54 bytes) with room to spare for a `virtio_net_hdr` (12 bytes) in front of it.
pub const DEFAULT_HEADROOM: usize = 128;

/// The capacity a buffer gets unless told otherwise: the default headroom plus a 1500-byte-MTU frame with a VLAN
/// tag (1518 bytes) fits, with room left for a few trailer bytes. A jumbo (9000-byte MTU) pipeline needs a pool
/// configured with a capacity of at least `DEFAULT_HEADROOM + 9018`.
pub const DEFAULT_CAPACITY: usize = 2048;

// Room for the longest outer headers a tunnel of ours pushes, a VXLAN packet's over IPv4 (Ethernet, IPv4, UDP,
// VXLAN: 50 bytes; the overlay's encapsulations say their own lengths), with a VLAN tag.
const _: () = assert!(DEFAULT_HEADROOM >= 50 + VLAN_TAG_LEN);
const _: () = assert!(DEFAULT_CAPACITY >= DEFAULT_HEADROOM + 1518);

/// One packet: a fixed-capacity byte buffer with headroom and tailroom around the data, and its [`Meta`].
///
/// ```text
/// 0            head             tail            capacity
/// |  headroom  |      data       |   tailroom    |
/// ```
///
/// Buffers are made by a [`crate::Pool`] and go back to it; [`PacketBuf::new`] is for pools and tests. The data is
/// what [`PacketBuf::data`] returns; `AsRef<[u8]>` and `AsMut<[u8]>` give the same slice, so `tweed-wire` views
/// sit directly on a buffer.
///
/// # The promise
/// No method panics. An operation that does not fit (a push beyond the headroom or the tailroom, a pull beyond the
/// data, a headroom beyond the capacity) returns an [`Error`] that says what was asked and what there was, and
/// leaves the buffer as it was. Offsets never wrap: `head <= tail <= capacity` holds after every call, and a
/// property test checks every method against a `VecDeque` model.
///
/// # Stale bytes
/// The storage is zeroed once, when the buffer is made, and never again: zeroing 2 KiB per packet would cost more
/// than the packet's processing. Bytes exposed by [`PacketBuf::push_front`], [`PacketBuf::push_back`] and
/// [`PacketBuf::recv_area_mut`] hold whatever an earlier packet left there: write all of them.
///
/// ```
/// use tweed_packet::PacketBuf;
///
/// const UDP_IPV4_OUTER_LEN: usize = 20 + 8; // IPv4 and UDP headers, as flannel's udp backend pushes them
/// let mut pkt = PacketBuf::new(256, 64)?;
/// pkt.extend_from_slice(b"inner IP packet")?;
/// // Encapsulate for the udp backend: the outer IPv4 + UDP header goes in front, the inner packet stays put.
/// let outer = pkt.push_front(UDP_IPV4_OUTER_LEN)?;
/// outer.fill(0); // a real pipeline copies its precomputed header here
/// assert_eq!(pkt.len(), 28 + 15);
/// assert_eq!(pkt.headroom(), 64 - 28);
/// // Decapsulate.
/// pkt.pull_front(UDP_IPV4_OUTER_LEN)?;
/// assert_eq!(pkt.data(), b"inner IP packet");
/// # Ok::<(), tweed_packet::Error>(())
/// ```
#[derive(Clone)]
pub struct PacketBuf {
    storage: Box<[u8]>,
    /// Start of the data. Invariant: `head <= tail <= storage.len()`.
    head: usize,
    /// End of the data.
    tail: usize,
    meta: Meta,
}

impl PacketBuf {
    /// An empty buffer of `capacity` bytes with `headroom` bytes in front of the (empty) data. It allocates
    /// `capacity` bytes, zeroed.
    ///
    /// # Errors
    /// [`Error::TooLarge`] when `headroom > capacity`.
    pub fn new(capacity: usize, headroom: usize) -> Result<Self> {
        if headroom > capacity {
            return Err(Error::TooLarge { required: headroom, available: capacity });
        }
        Ok(Self {
            storage: vec![0; capacity].into_boxed_slice(),
            head: headroom,
            tail: headroom,
            meta: Meta::default(),
        })
    }

    /// The whole buffer's size: headroom + data + tailroom.
    #[must_use]
    #[inline]
    pub fn capacity(&self) -> usize {
        self.storage.len()
    }

    /// Bytes of data.
    #[must_use]
    #[inline]
    pub const fn len(&self) -> usize {
        self.tail - self.head
    }

    /// There are no bytes of data.
    #[must_use]
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.tail == self.head
    }

    /// Bytes free in front of the data.
    #[must_use]
    #[inline]
    pub const fn headroom(&self) -> usize {
        self.head
    }

    /// Bytes free behind the data.
    #[must_use]
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.capacity() - self.tail
    }

    /// The data.
    #[must_use]
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.storage[self.head..self.tail]
    }

    /// The data, mutable.
    #[must_use]
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.head..self.tail]
    }

    /// The packet's metadata.
    #[must_use]
    #[inline]
    pub const fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The packet's metadata, mutable.
    #[must_use]
    #[inline]
    pub const fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }

    /// Grows the data by `n` bytes at the front, into the headroom, and returns those `n` bytes to be written
    /// (they hold stale bytes: write all of them).
    ///
    /// # Errors
    /// [`Error::NoHeadroom`] when `n > self.headroom()`.
    #[inline(always)]
    pub fn push_front(&mut self, n: usize) -> Result<&mut [u8]> {
        if n > self.head {
            return Err(Error::NoHeadroom { required: n, available: self.head });
        }
        self.head -= n;
        Ok(&mut self.storage[self.head..self.head + n])
    }

    /// Copies `bytes` in front of the data (a precomputed outer header, say).
    ///
    /// # Errors
    /// [`Error::NoHeadroom`] when `bytes.len() > self.headroom()`.
    #[inline]
    pub fn prepend_from_slice(&mut self, bytes: &[u8]) -> Result<()> {
        self.push_front(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// Shrinks the data by `n` bytes at the front (they become headroom) and returns the bytes removed.
    ///
    /// # Errors
    /// [`Error::ShortData`] when `n > self.len()`.
    #[inline(always)]
    pub fn pull_front(&mut self, n: usize) -> Result<&[u8]> {
        if n > self.len() {
            return Err(Error::ShortData { required: n, available: self.len() });
        }
        let start = self.head;
        self.head += n;
        Ok(&self.storage[start..self.head])
    }

    /// Grows the data by `n` bytes at the back, into the tailroom, and returns those `n` bytes to be written (they
    /// hold stale bytes: write all of them).
    ///
    /// # Errors
    /// [`Error::NoTailroom`] when `n > self.tailroom()`.
    #[inline]
    pub fn push_back(&mut self, n: usize) -> Result<&mut [u8]> {
        if n > self.tailroom() {
            return Err(Error::NoTailroom { required: n, available: self.tailroom() });
        }
        let start = self.tail;
        self.tail += n;
        Ok(&mut self.storage[start..self.tail])
    }

    /// Copies `bytes` behind the data.
    ///
    /// # Errors
    /// [`Error::NoTailroom`] when `bytes.len() > self.tailroom()`.
    #[inline]
    pub fn extend_from_slice(&mut self, bytes: &[u8]) -> Result<()> {
        self.push_back(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// Shrinks the data by `n` bytes at the back (they become tailroom) and returns the bytes removed.
    ///
    /// # Errors
    /// [`Error::ShortData`] when `n > self.len()`.
    #[inline]
    pub fn pull_back(&mut self, n: usize) -> Result<&[u8]> {
        if n > self.len() {
            return Err(Error::ShortData { required: n, available: self.len() });
        }
        self.tail -= n;
        Ok(&self.storage[self.tail..self.tail + n])
    }

    /// Keeps the first `len` bytes of data and drops the rest, as `Vec::truncate` does: when `len >= self.len()`
    /// nothing changes. (Use [`PacketBuf::pull_back`] to be told when there is less data than expected.)
    #[inline]
    pub const fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.tail = self.head + len;
        }
    }

    /// Drops the data; the headroom stays as it is.
    #[inline]
    pub const fn clear(&mut self) {
        self.tail = self.head;
    }

    /// Empties the buffer, puts `headroom` bytes in front of the data and resets the metadata: the buffer is as
    /// [`PacketBuf::new`] made it, except for the stale bytes.
    ///
    /// # Errors
    /// [`Error::TooLarge`] when `headroom > self.capacity()`; the buffer is left as it was.
    pub fn reset(&mut self, headroom: usize) -> Result<()> {
        if headroom > self.capacity() {
            return Err(Error::TooLarge { required: headroom, available: self.capacity() });
        }
        self.head = headroom;
        self.tail = headroom;
        self.meta = Meta::default();
        Ok(())
    }

    /// Moves the data so that `headroom` bytes are in front of it. This copies the data (`memmove`) when it is not
    /// empty: it is for the rare packet that needs more headroom than it got, not for the data path.
    ///
    /// # Errors
    /// [`Error::TooLarge`] when `headroom + self.len() > self.capacity()`; the buffer is left as it was.
    pub fn set_headroom(&mut self, headroom: usize) -> Result<()> {
        let len = self.len();
        // `len <= capacity`, so the subtraction cannot wrap, and comparing against it avoids `headroom + len`
        // overflowing.
        if headroom > self.capacity() - len {
            return Err(Error::TooLarge { required: headroom.saturating_add(len), available: self.capacity() });
        }
        if headroom != self.head {
            self.storage.copy_within(self.head..self.tail, headroom);
            self.head = headroom;
            self.tail = headroom + len;
        }
        Ok(())
    }

    /// Everything behind the headroom, data and tailroom together, for a receive call (`read`, `recvmmsg`) to write
    /// a packet into; [`PacketBuf::commit_recv`] then says how many bytes it wrote. The headroom is left in front,
    /// for the headers a later stage pushes.
    #[must_use]
    #[inline]
    pub fn recv_area_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.head..]
    }

    /// Makes the first `n` bytes of [`PacketBuf::recv_area_mut`] the data (what was there before is replaced).
    ///
    /// # Errors
    /// [`Error::TooLarge`] when `n` is longer than the receive area; the buffer is left as it was.
    #[inline]
    pub fn commit_recv(&mut self, n: usize) -> Result<()> {
        let area = self.capacity() - self.head;
        if n > area {
            return Err(Error::TooLarge { required: n, available: area });
        }
        self.tail = self.head + n;
        Ok(())
    }
}

impl Default for PacketBuf {
    /// An empty buffer of [`DEFAULT_CAPACITY`] bytes with [`DEFAULT_HEADROOM`].
    fn default() -> Self {
        Self {
            storage: vec![0; DEFAULT_CAPACITY].into_boxed_slice(),
            head: DEFAULT_HEADROOM,
            tail: DEFAULT_HEADROOM,
            meta: Meta::default(),
        }
    }
}

impl AsRef<[u8]> for PacketBuf {
    /// The data.
    fn as_ref(&self) -> &[u8] {
        self.data()
    }
}

impl AsMut<[u8]> for PacketBuf {
    /// The data, mutable.
    fn as_mut(&mut self) -> &mut [u8] {
        self.data_mut()
    }
}

impl fmt::Debug for PacketBuf {
    /// Offsets and metadata, not the 2 KiB of storage.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketBuf")
            .field("capacity", &self.capacity())
            .field("headroom", &self.headroom())
            .field("len", &self.len())
            .field("meta", &self.meta)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    /// Ethernet, IPv4, UDP and VXLAN headers.
    const VXLAN_IPV4_OUTER_LEN: usize = 50;
    use super::*;
    use crate::PortId;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    /// The outer headers of a flannel VXLAN packet (VNI 1, UDP port 8472) from node 10.0.0.1 to 10.0.0.2.
    static OUTER: [u8; VXLAN_IPV4_OUTER_LEN] = [
        0x02, 0x42, 0x0a, 0x00, 0x00, 0x02, 0x02, 0x42, 0x0a, 0x00, 0x00, 0x01, 0x08, 0x00, // Ethernet
        0x45, 0x00, 0x00, 0x52, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x26, 0x88, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00,
        0x00, 0x02, // IPv4
        0xc3, 0x50, 0x21, 0x18, 0x00, 0x3e, 0x00, 0x00, // UDP
        0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, // VXLAN
    ];
    /// An inner frame: Ethernet header of an IPv4 packet between two pods, and its first payload bytes.
    static INNER: [u8; 18] =
        [0x0a, 0x58, 0x0a, 0xf4, 0x02, 0x02, 0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02, 0x08, 0x00, 0x45, 0x00, 0x00, 0x54];

    fn with_inner(capacity: usize, headroom: usize) -> PacketBuf {
        let mut pkt = PacketBuf::new(capacity, headroom).unwrap();
        pkt.extend_from_slice(&INNER).unwrap();
        pkt
    }

    #[test]
    fn test_new() {
        let pkt = PacketBuf::new(256, 64).unwrap();
        assert_eq!(pkt.capacity(), 256);
        assert_eq!(pkt.headroom(), 64);
        assert_eq!(pkt.len(), 0);
        assert!(pkt.is_empty());
        assert_eq!(pkt.tailroom(), 192);
        assert_eq!(pkt.data(), &[] as &[u8]);
        assert_eq!(*pkt.meta(), Meta::default());
    }

    #[test]
    fn test_new_edges() {
        let pkt = PacketBuf::new(64, 64).unwrap();
        assert_eq!((pkt.headroom(), pkt.tailroom()), (64, 0));
        let pkt = PacketBuf::new(0, 0).unwrap();
        assert_eq!((pkt.capacity(), pkt.headroom(), pkt.tailroom()), (0, 0, 0));
        assert_eq!(PacketBuf::new(64, 65).unwrap_err(), Error::TooLarge { required: 65, available: 64 });
    }

    #[test]
    fn test_default() {
        let pkt = PacketBuf::default();
        assert_eq!(pkt.capacity(), DEFAULT_CAPACITY);
        assert_eq!(pkt.headroom(), DEFAULT_HEADROOM);
        assert!(pkt.is_empty());
        assert!(pkt.headroom() >= VXLAN_IPV4_OUTER_LEN + VLAN_TAG_LEN);
    }

    #[test]
    fn test_jumbo() {
        let mut pkt = PacketBuf::new(DEFAULT_HEADROOM + 9018, DEFAULT_HEADROOM).unwrap();
        pkt.push_back(9018).unwrap().fill(0xab);
        pkt.prepend_from_slice(&OUTER).unwrap();
        assert_eq!(pkt.len(), 9068);
        assert_eq!(pkt.tailroom(), 0);
    }

    #[test]
    fn test_encap_decap_vxlan() {
        let mut pkt = with_inner(2048, DEFAULT_HEADROOM);
        pkt.prepend_from_slice(&OUTER).unwrap();
        assert_eq!(pkt.len(), 68);
        assert_eq!(pkt.headroom(), DEFAULT_HEADROOM - 50);
        assert_eq!(&pkt.data()[..50], &OUTER);
        assert_eq!(&pkt.data()[50..], &INNER);
        assert_eq!(pkt.pull_front(VXLAN_IPV4_OUTER_LEN).unwrap(), &OUTER);
        assert_eq!(pkt.data(), &INNER);
        assert_eq!(pkt.headroom(), DEFAULT_HEADROOM);
    }

    #[test]
    fn test_push_front() {
        let mut pkt = with_inner(128, 60);
        let front = pkt.push_front(4).unwrap();
        assert_eq!(front.len(), 4);
        front.copy_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        assert_eq!(pkt.headroom(), 56);
        assert_eq!(&pkt.data()[..4], &[0x81, 0x00, 0x00, 0x64]);
        assert_eq!(&pkt.data()[4..], &INNER);
        // Zero bytes is a no-op that succeeds.
        assert_eq!(pkt.push_front(0).unwrap(), &mut [] as &mut [u8]);
        assert_eq!(pkt.len(), 22);
    }

    #[test]
    fn test_push_front_beyond_headroom() {
        let mut pkt = with_inner(128, 49);
        assert_eq!(pkt.push_front(50).unwrap_err(), Error::NoHeadroom { required: 50, available: 49 });
        assert_eq!(pkt.prepend_from_slice(&OUTER).unwrap_err(), Error::NoHeadroom { required: 50, available: 49 });
        assert_eq!(pkt.push_front(usize::MAX).unwrap_err(), Error::NoHeadroom { required: usize::MAX, available: 49 });
        // Unchanged.
        assert_eq!(pkt.headroom(), 49);
        assert_eq!(pkt.data(), &INNER);
        // Exactly the headroom fits.
        pkt.push_front(49).unwrap();
        assert_eq!(pkt.headroom(), 0);
        assert_eq!(pkt.push_front(1).unwrap_err(), Error::NoHeadroom { required: 1, available: 0 });
    }

    #[test]
    fn test_pull_front() {
        let mut pkt = with_inner(128, 0);
        assert_eq!(pkt.pull_front(14).unwrap(), &INNER[..14]);
        assert_eq!(pkt.data(), &INNER[14..]);
        assert_eq!(pkt.headroom(), 14);
        assert_eq!(pkt.pull_front(0).unwrap(), &[] as &[u8]);
        assert_eq!(pkt.pull_front(5).unwrap_err(), Error::ShortData { required: 5, available: 4 });
        assert_eq!(pkt.pull_front(usize::MAX).unwrap_err(), Error::ShortData { required: usize::MAX, available: 4 });
        assert_eq!(pkt.data(), &INNER[14..]);
        assert_eq!(pkt.pull_front(4).unwrap(), &INNER[14..]);
        assert!(pkt.is_empty());
        assert_eq!(pkt.headroom(), 18);
    }

    #[test]
    fn test_push_back() {
        let mut pkt = with_inner(24, 0);
        assert_eq!(pkt.tailroom(), 6);
        pkt.push_back(2).unwrap().copy_from_slice(&[0xde, 0xad]);
        assert_eq!(&pkt.data()[18..], &[0xde, 0xad]);
        assert_eq!(pkt.push_back(5).unwrap_err(), Error::NoTailroom { required: 5, available: 4 });
        assert_eq!(pkt.push_back(usize::MAX).unwrap_err(), Error::NoTailroom { required: usize::MAX, available: 4 });
        assert_eq!(pkt.len(), 20);
        pkt.extend_from_slice(&[1, 2, 3, 4]).unwrap();
        assert_eq!(pkt.tailroom(), 0);
        assert_eq!(&pkt.data()[18..], &[0xde, 0xad, 1, 2, 3, 4]);
        assert_eq!(pkt.extend_from_slice(&[5]).unwrap_err(), Error::NoTailroom { required: 1, available: 0 });
        assert_eq!(pkt.len(), 24);
    }

    #[test]
    fn test_pull_back() {
        let mut pkt = with_inner(128, 10);
        assert_eq!(pkt.pull_back(4).unwrap(), &INNER[14..]);
        assert_eq!(pkt.data(), &INNER[..14]);
        assert_eq!(pkt.tailroom(), 128 - 10 - 14);
        assert_eq!(pkt.pull_back(15).unwrap_err(), Error::ShortData { required: 15, available: 14 });
        assert_eq!(pkt.pull_back(usize::MAX).unwrap_err(), Error::ShortData { required: usize::MAX, available: 14 });
        assert_eq!(pkt.data(), &INNER[..14]);
        assert_eq!(pkt.pull_back(14).unwrap(), &INNER[..14]);
        assert!(pkt.is_empty());
        assert_eq!(pkt.headroom(), 10);
    }

    #[test]
    fn test_truncate_and_clear() {
        let mut pkt = with_inner(128, 10);
        pkt.truncate(100);
        assert_eq!(pkt.data(), &INNER);
        pkt.truncate(18);
        assert_eq!(pkt.data(), &INNER);
        pkt.truncate(14);
        assert_eq!(pkt.data(), &INNER[..14]);
        assert_eq!(pkt.headroom(), 10);
        pkt.clear();
        assert!(pkt.is_empty());
        assert_eq!(pkt.headroom(), 10);
        assert_eq!(pkt.tailroom(), 118);
    }

    #[test]
    fn test_reset() {
        let mut pkt = with_inner(128, 10);
        pkt.meta_mut().ingress = PortId(3);
        pkt.meta_mut().timestamp = 42;
        pkt.reset(64).unwrap();
        assert!(pkt.is_empty());
        assert_eq!(pkt.headroom(), 64);
        assert_eq!(*pkt.meta(), Meta::default());
        pkt.reset(128).unwrap();
        assert_eq!((pkt.headroom(), pkt.tailroom()), (128, 0));

        let mut pkt = with_inner(128, 10);
        pkt.meta_mut().timestamp = 42;
        assert_eq!(pkt.reset(129).unwrap_err(), Error::TooLarge { required: 129, available: 128 });
        assert_eq!(pkt.data(), &INNER);
        assert_eq!(pkt.headroom(), 10);
        assert_eq!(pkt.meta().timestamp, 42);
    }

    #[test]
    fn test_set_headroom() {
        let mut pkt = with_inner(128, 10);
        pkt.set_headroom(100).unwrap();
        assert_eq!(pkt.data(), &INNER);
        assert_eq!((pkt.headroom(), pkt.tailroom()), (100, 10));
        pkt.set_headroom(0).unwrap();
        assert_eq!(pkt.data(), &INNER);
        assert_eq!((pkt.headroom(), pkt.tailroom()), (0, 110));
        pkt.set_headroom(110).unwrap();
        assert_eq!(pkt.data(), &INNER);
        assert_eq!(pkt.tailroom(), 0);
        assert_eq!(pkt.set_headroom(111).unwrap_err(), Error::TooLarge { required: 129, available: 128 });
        assert_eq!(pkt.set_headroom(usize::MAX).unwrap_err(), Error::TooLarge { required: usize::MAX, available: 128 });
        assert_eq!(pkt.data(), &INNER);
        assert_eq!(pkt.headroom(), 110);
        // Overlapping moves both ways.
        pkt.set_headroom(105).unwrap();
        assert_eq!(pkt.data(), &INNER);
        pkt.set_headroom(107).unwrap();
        assert_eq!(pkt.data(), &INNER);
    }

    #[test]
    fn test_recv() {
        let mut pkt = with_inner(128, 64);
        let area = pkt.recv_area_mut();
        assert_eq!(area.len(), 64);
        // What is in the area is the old data followed by the tailroom.
        assert_eq!(&area[..18], &INNER);
        area[..4].copy_from_slice(&[9, 8, 7, 6]);
        pkt.commit_recv(4).unwrap();
        assert_eq!(pkt.data(), &[9, 8, 7, 6]);
        assert_eq!(pkt.headroom(), 64);
        pkt.commit_recv(64).unwrap();
        assert_eq!(pkt.len(), 64);
        assert_eq!(pkt.tailroom(), 0);
        pkt.commit_recv(0).unwrap();
        assert!(pkt.is_empty());
        assert_eq!(pkt.commit_recv(65).unwrap_err(), Error::TooLarge { required: 65, available: 64 });
        assert!(pkt.is_empty());
        // The headroom stays usable for encapsulation after a receive.
        pkt.recv_area_mut()[..18].copy_from_slice(&INNER);
        pkt.commit_recv(18).unwrap();
        pkt.prepend_from_slice(&OUTER).unwrap();
        assert_eq!(&pkt.data()[50..], &INNER);
    }

    #[test]
    fn test_data_mut_and_as_ref() {
        let mut pkt = with_inner(128, 10);
        pkt.data_mut()[0] = 0xff;
        assert_eq!(pkt.data()[0], 0xff);
        AsMut::<[u8]>::as_mut(&mut pkt)[1] = 0xee;
        assert_eq!(AsRef::<[u8]>::as_ref(&pkt)[..2], [0xff, 0xee]);
        assert_eq!(AsRef::<[u8]>::as_ref(&pkt).len(), 18);
    }

    #[test]
    fn test_meta() {
        let mut pkt = PacketBuf::default();
        let mut meta = Meta::new(PortId(1));
        meta.timestamp = 1_000;
        meta.set_remote(core::net::SocketAddr::from(([192, 168, 0, 2], 8472)));
        *pkt.meta_mut() = meta;
        assert_eq!(*pkt.meta(), meta);
        let copy = pkt.clone();
        assert_eq!(*copy.meta(), meta);
    }

    #[test]
    fn test_clone_is_deep() {
        let pkt = with_inner(128, 10);
        let mut copy = pkt.clone();
        copy.data_mut()[0] = 0;
        assert_eq!(pkt.data(), &INNER);
        assert_eq!(copy.headroom(), 10);
        assert_eq!(copy.capacity(), 128);
    }

    #[test]
    fn test_debug() {
        let pkt = with_inner(128, 10);
        let text = format!("{pkt:?}");
        assert!(text.starts_with("PacketBuf { capacity: 128, headroom: 10, len: 18, meta: Meta {"), "{text}");
    }

    #[test]
    fn test_send() {
        fn is_send<T: Send>() {}
        is_send::<PacketBuf>();
    }

    /// One operation of the model test.
    #[derive(Clone, Debug)]
    enum Op {
        PushFront(usize, u8),
        PullFront(usize),
        PushBack(usize, u8),
        PullBack(usize),
        Prepend(Vec<u8>),
        Extend(Vec<u8>),
        Truncate(usize),
        Clear,
        Reset(usize),
        SetHeadroom(usize),
        Recv(usize, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Sizes range a little beyond the 64-byte buffer, so that every error path is taken.
        let n = 0usize..80;
        prop_oneof![
            (n.clone(), any::<u8>()).prop_map(|(n, b)| Op::PushFront(n, b)),
            n.clone().prop_map(Op::PullFront),
            (n.clone(), any::<u8>()).prop_map(|(n, b)| Op::PushBack(n, b)),
            n.clone().prop_map(Op::PullBack),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Prepend),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Extend),
            n.clone().prop_map(Op::Truncate),
            Just(Op::Clear),
            n.clone().prop_map(Op::Reset),
            n.clone().prop_map(Op::SetHeadroom),
            (n, any::<u8>()).prop_map(|(n, b)| Op::Recv(n, b)),
        ]
    }

    const CAP: usize = 64;

    /// Applies `op` to the model (`headroom`, `data`) and returns the error the buffer must give, if any.
    fn model(op: &Op, headroom: &mut usize, data: &mut VecDeque<u8>) -> core::result::Result<(), Error> {
        let tailroom = CAP - *headroom - data.len();
        match *op {
            Op::PushFront(n, b) => {
                if n > *headroom {
                    return Err(Error::NoHeadroom { required: n, available: *headroom });
                }
                *headroom -= n;
                (0..n).for_each(|_| data.push_front(b));
            }
            Op::Prepend(ref bytes) => {
                if bytes.len() > *headroom {
                    return Err(Error::NoHeadroom { required: bytes.len(), available: *headroom });
                }
                *headroom -= bytes.len();
                bytes.iter().rev().for_each(|&b| data.push_front(b));
            }
            Op::PullFront(n) => {
                if n > data.len() {
                    return Err(Error::ShortData { required: n, available: data.len() });
                }
                *headroom += n;
                data.drain(..n);
            }
            Op::PushBack(n, b) => {
                if n > tailroom {
                    return Err(Error::NoTailroom { required: n, available: tailroom });
                }
                (0..n).for_each(|_| data.push_back(b));
            }
            Op::Extend(ref bytes) => {
                if bytes.len() > tailroom {
                    return Err(Error::NoTailroom { required: bytes.len(), available: tailroom });
                }
                data.extend(bytes);
            }
            Op::PullBack(n) => {
                if n > data.len() {
                    return Err(Error::ShortData { required: n, available: data.len() });
                }
                data.truncate(data.len() - n);
            }
            Op::Truncate(n) => data.truncate(n),
            Op::Clear => data.clear(),
            Op::Reset(h) => {
                if h > CAP {
                    return Err(Error::TooLarge { required: h, available: CAP });
                }
                *headroom = h;
                data.clear();
            }
            Op::SetHeadroom(h) => {
                if h + data.len() > CAP {
                    return Err(Error::TooLarge { required: h + data.len(), available: CAP });
                }
                *headroom = h;
            }
            Op::Recv(n, b) => {
                if n > CAP - *headroom {
                    return Err(Error::TooLarge { required: n, available: CAP - *headroom });
                }
                data.clear();
                (0..n).for_each(|_| data.push_back(b));
            }
        }
        Ok(())
    }

    /// Applies `op` to the buffer, checking the bytes each method returns.
    fn apply(op: &Op, pkt: &mut PacketBuf) -> core::result::Result<(), Error> {
        match *op {
            Op::PushFront(n, b) => pkt.push_front(n)?.fill(b),
            Op::Prepend(ref bytes) => pkt.prepend_from_slice(bytes)?,
            Op::PullFront(n) => {
                let expected = pkt.data().get(..n).map(<[u8]>::to_vec);
                assert_eq!(Some(pkt.pull_front(n)?.to_vec()), expected);
            }
            Op::PushBack(n, b) => pkt.push_back(n)?.fill(b),
            Op::Extend(ref bytes) => pkt.extend_from_slice(bytes)?,
            Op::PullBack(n) => {
                let expected = pkt.data().len().checked_sub(n).map(|at| pkt.data()[at..].to_vec());
                assert_eq!(Some(pkt.pull_back(n)?.to_vec()), expected);
            }
            Op::Truncate(n) => pkt.truncate(n),
            Op::Clear => pkt.clear(),
            Op::Reset(h) => pkt.reset(h)?,
            Op::SetHeadroom(h) => pkt.set_headroom(h)?,
            Op::Recv(n, b) => {
                // The kernel writes at most the area; on a too-long commit the caller wrote nothing.
                if let Some(received) = pkt.recv_area_mut().get_mut(..n) {
                    received.fill(b);
                }
                pkt.commit_recv(n)?;
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn prop_matches_vecdeque_model(start in 0..=CAP, ops in proptest::collection::vec(op(), 0..64)) {
            let mut pkt = PacketBuf::new(CAP, start).unwrap();
            let mut headroom = start;
            let mut data = VecDeque::new();
            for op in &ops {
                let before = (pkt.headroom(), pkt.data().to_vec());
                let expected = model(op, &mut headroom, &mut data);
                let got = apply(op, &mut pkt);
                prop_assert_eq!(got, expected, "{:?}", op);
                if got.is_err() {
                    prop_assert_eq!((pkt.headroom(), pkt.data().to_vec()), before, "an error changed the buffer");
                }
                let model: Vec<u8> = data.iter().copied().collect();
                prop_assert_eq!(pkt.data(), model.as_slice());
                prop_assert_eq!(pkt.headroom(), headroom);
                prop_assert_eq!(pkt.len(), data.len());
                prop_assert_eq!(pkt.headroom() + pkt.len() + pkt.tailroom(), CAP);
                prop_assert_eq!(pkt.recv_area_mut().len(), CAP - headroom);
            }
        }
    }
}
