//! The port seam: what a driver reads packets from and writes them to.
//!
//! A [`Port`] is anything that carries packets in one [`Medium`]: a TAP (Ethernet frames), a TUN (IP packets), an
//! AF_PACKET socket (frames), the underlay's UDP socket (datagrams, each with its peer's address), an in-memory
//! [`MemPort`], or an embedder's own type: the trait is implemented outside tweed as easily as inside it. A
//! [`Worker`](crate::Worker) holds ports of any kinds at once (as `Box<dyn Port + Send>`, the default, or all of
//! one type `P` for a simulation that wants its ports back typed) under the node's port numbers.
//!
//! Receiving goes through an [`Rx`]: it hands out pool buffers, stamps each packet it takes with its ingress port
//! and the round's time, and keeps the port within its share of the round's batch. Sending hands the port a slice
//! of [`Msg`]s (for a datagram port each with its destination, the verdict's payload offset already applied), in
//! the node's order. Nothing in either allocates.

use std::io;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::path::Path;

use tweed_packet::{Batch, PacketBuf, Pool, PortId};

mod impls;
mod mem;

pub use mem::MemPort;

/// The most segments one read of a TAP with TSO may give: a larger train (a pod-chosen tiny `gso_size`) is
/// dropped whole and counted, so that one read costs bounded work. 64 KiB in segments of 536 bytes (the
/// smallest usual MSS) is 123.
pub const MAX_TSO_SEGMENTS: usize = 128;

/// What a port carries, one packet per buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Medium {
    /// Ethernet frames (a TAP, an AF_PACKET socket): a pod port, or the underlay of host-gw.
    Ethernet,
    /// IP packets, no link header (a TUN): the host port or an IP port.
    Ip,
    /// Datagrams of a UDP socket on the underlay: each packet in comes with its sender
    /// ([`Meta::set_remote`](tweed_packet::Meta::set_remote)), each packet out goes with its destination.
    Datagram,
}

/// What one [`Port::send`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Sent {
    /// Messages that went out (the others were dropped: queue full, device down, no route).
    pub sent: usize,
    /// Writes that carried several messages at once (TCP segments coalesced into one frame for a TAP).
    pub coalesced: usize,
}

/// One packet to send: its bytes in the port's medium and, for a datagram port, where to.
#[derive(Clone, Copy, Debug)]
pub struct Msg<'a> {
    /// The frame, IP packet or datagram payload.
    pub data: &'a [u8],
    /// The destination of a datagram (`Verdict::Underlay`'s `dst`); `None` for other media.
    pub dst: Option<SocketAddr>,
}

/// A port a [`Worker`](crate::Worker) or [`Driver`](crate::Driver) moves packets through.
///
/// Implement it for your own device or socket to run a node over it: `recv` fills the [`Rx`] without waiting,
/// `send` writes what it can without waiting, `fd` says what to poll. A port without a descriptor (an in-memory
/// queue) reports its own readiness through [`Port::has_input`].
///
/// ```
/// use std::io;
/// use std::os::fd::BorrowedFd;
/// use tweed_io::{Medium, Msg, Port, Rx, Sent};
///
/// /// A port that swallows everything and never has input.
/// struct Sink;
///
/// impl Port for Sink {
///     fn name(&self) -> &str { "sink" }
///     fn medium(&self) -> Medium { Medium::Ethernet }
///     fn fd(&self) -> Option<BorrowedFd<'_>> { None }
///     fn recv(&mut self, _rx: &mut Rx<'_>) -> io::Result<()> { Ok(()) }
///     fn send(&mut self, msgs: &[Msg<'_>], _scratch: &mut [u8]) -> Sent {
///         Sent { sent: msgs.len(), coalesced: 0 }
///     }
/// }
/// ```
pub trait Port {
    /// The device, interface or socket's name, for logs and [`ClosedPort`](crate::ClosedPort).
    fn name(&self) -> &str;

    /// What it carries. It must match the node's port it is given to: [`Medium::Ethernet`] for a pod port or an
    /// AF_PACKET underlay, [`Medium::Ip`] for the host port and IP ports, [`Medium::Datagram`] for a socket
    /// underlay (`underlay.socket_port`).
    fn medium(&self) -> Medium;

    /// The descriptor a driver polls for input (epoll, level-triggered); `None` for a port with none, which is
    /// then asked [`Port::has_input`] each round instead.
    fn fd(&self) -> Option<BorrowedFd<'_>>;

    /// For a port without a descriptor: whether input is waiting (a driver does not sleep while it is).
    fn has_input(&self) -> bool {
        false
    }

    /// The most buffers one read may give: more than 1 for a port that cuts offloaded frames (a TAP with TSO:
    /// [`MAX_TSO_SEGMENTS`]). A worker reads such a port only when the batch has that much room left, and leaves
    /// it for the next round otherwise.
    fn rx_segments(&self) -> usize {
        1
    }

    /// Receives without waiting, into `rx`, until it is full ([`Rx::room`] is 0) or nothing is waiting.
    ///
    /// # Errors
    /// A read that failed; packets taken before it stay taken. "Nothing waiting" is not an error. A worker
    /// closes the port when [`Port::is_gone`] says the error is for good, or after 64 failed reads in a row.
    fn recv(&mut self, rx: &mut Rx<'_>) -> io::Result<()>;

    /// Sends `msgs` in order, without waiting, using `scratch` (64 KiB and more) for whatever needs laying out.
    /// What it could not send is dropped and counted by the caller.
    fn send(&mut self, msgs: &[Msg<'_>], scratch: &mut [u8]) -> Sent;

    /// Whether a read error says the port is gone for good (its device deleted, its interface or namespace
    /// gone): by default `EBADFD`, `ENODEV` and `ENXIO`.
    fn is_gone(&self, error: &io::Error) -> bool {
        gone(error)
    }

    /// The network namespace the port is in, if it is not the process's own: a namespace whose file disappears
    /// takes the port with it ([`Driver::close_orphaned`](crate::Driver::close_orphaned)).
    fn netns(&self) -> Option<&Path> {
        None
    }
}

impl<T: Port + ?Sized> Port for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn medium(&self) -> Medium {
        (**self).medium()
    }
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        (**self).fd()
    }
    fn has_input(&self) -> bool {
        (**self).has_input()
    }
    fn rx_segments(&self) -> usize {
        (**self).rx_segments()
    }
    fn recv(&mut self, rx: &mut Rx<'_>) -> io::Result<()> {
        (**self).recv(rx)
    }
    fn send(&mut self, msgs: &[Msg<'_>], scratch: &mut [u8]) -> Sent {
        (**self).send(msgs, scratch)
    }
    fn is_gone(&self, error: &io::Error) -> bool {
        (**self).is_gone(error)
    }
    fn netns(&self) -> Option<&Path> {
        (**self).netns()
    }
}

/// Whether a read error says the device is gone for good: a TAP whose interface was deleted (or its namespace
/// with it) reads `EBADFD`; an interface gone under a socket gives `ENODEV` or `ENXIO`.
#[must_use]
pub fn gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBADFD | libc::ENODEV | libc::ENXIO))
}

/// A port's share of a round's batch: pool buffers to read into, and the packets taken so far.
///
/// Every packet pushed is stamped with the port's number (`meta.ingress`) and the round's time
/// (`meta.timestamp`); a datagram port also sets the sender ([`Meta::set_remote`](tweed_packet::Meta::set_remote)).
#[derive(Debug)]
pub struct Rx<'a> {
    pub(crate) pool: &'a mut Pool,
    pub(crate) batch: &'a mut Batch,
    pub(crate) scratch: &'a mut [u8],
    pub(crate) ingress: PortId,
    pub(crate) now: u64,
    pub(crate) max: usize,
    pub(crate) taken: usize,
    /// Buffers not read because the pool was empty.
    pub(crate) pool_empty: u64,
    /// Packets read and dropped: an offloaded frame that lies or does not fit, a datagram too long.
    pub(crate) dropped: u64,
}

impl<'a> Rx<'a> {
    /// An `Rx` over `batch` taking at most `max` packets from `pool`, for a port `ingress` at time `now`
    /// (nanoseconds); `scratch` is lent to ports that read whole offloaded trains before cutting them.
    pub fn new(
        pool: &'a mut Pool,
        batch: &'a mut Batch,
        scratch: &'a mut [u8],
        ingress: PortId,
        now: u64,
        max: usize,
    ) -> Self {
        Self { pool, batch, scratch, ingress, now, max, taken: 0, pool_empty: 0, dropped: 0 }
    }

    /// How many more packets this port may push.
    #[must_use]
    pub fn room(&self) -> usize {
        self.max.saturating_sub(self.taken).min(self.batch.remaining())
    }

    /// How many packets were pushed.
    #[must_use]
    pub const fn taken(&self) -> usize {
        self.taken
    }

    /// The port's number in the node.
    #[must_use]
    pub const fn ingress(&self) -> PortId {
        self.ingress
    }

    /// The round's time, in nanoseconds of the caller's clock.
    #[must_use]
    pub const fn now(&self) -> u64 {
        self.now
    }

    /// A buffer to read into (`None`: the pool is empty, counted).
    pub fn buffer(&mut self) -> Option<PacketBuf> {
        let b = self.pool.get();
        self.pool_empty += u64::from(b.is_none());
        b
    }

    /// Gives back a buffer that got nothing.
    pub fn put_back(&mut self, buf: PacketBuf) {
        self.pool.put(buf);
    }

    /// Takes a filled buffer, stamped. `false` (the buffer back in the pool, counted as dropped) when there is
    /// no room ([`Rx::room`]).
    pub fn push(&mut self, mut buf: PacketBuf) -> bool {
        if self.room() == 0 {
            self.pool.put(buf);
            self.dropped += 1;
            return false;
        }
        let meta = buf.meta_mut();
        meta.ingress = self.ingress;
        meta.timestamp = self.now;
        match self.batch.push(buf) {
            Ok(()) => {
                self.taken += 1;
                true
            }
            Err(buf) => {
                self.pool.put(buf);
                self.dropped += 1;
                false
            }
        }
    }

    /// Copies `bytes` into a buffer and takes it, with the sender `from` for a datagram. `false` when there is
    /// no room, no buffer, or the bytes do not fit one (counted).
    pub fn push_copy(&mut self, bytes: &[u8], from: Option<SocketAddr>) -> bool {
        if self.room() == 0 {
            self.dropped += 1;
            return false;
        }
        let Some(mut buf) = self.buffer() else { return false };
        if buf.extend_from_slice(bytes).is_err() {
            self.pool.put(buf);
            self.dropped += 1;
            return false;
        }
        if let Some(from) = from {
            buf.meta_mut().set_remote(from);
        }
        self.push(buf)
    }

    /// Reads packets one per call of `recv` (which fills the buffer and says `Ok(true)`, or says `Ok(false)`
    /// when nothing is waiting) until there is no room, no buffer, or nothing waiting.
    ///
    /// # Errors
    /// The first error of `recv`.
    pub fn recv_each(&mut self, mut recv: impl FnMut(&mut PacketBuf) -> io::Result<bool>) -> io::Result<()> {
        while self.room() > 0 {
            let Some(mut buf) = self.buffer() else { break };
            match recv(&mut buf) {
                Ok(true) => {
                    self.push(buf);
                }
                Ok(false) => {
                    self.pool.put(buf);
                    break;
                }
                Err(e) => {
                    self.pool.put(buf);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Counts packets the port read and dropped (too long, malformed offload).
    pub const fn count_dropped(&mut self, n: u64) {
        self.dropped += n;
    }

    /// The scratch area (64 KiB and more) for a port that reads a whole offloaded train before cutting it.
    pub const fn scratch(&mut self) -> &mut [u8] {
        self.scratch
    }
}
