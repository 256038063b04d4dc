//! [`MemPort`]: a port made of two queues in memory, for tests, simulations, replays and benchmarks.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::BorrowedFd;

use super::{Medium, Msg, Port, Rx, Sent};

/// The packets each queue holds by default.
const DEFAULT_LIMIT: usize = 1024;

/// A port whose "wire" is two bounded queues: what the test or simulation [injects](MemPort::inject) is what the
/// worker receives, and what the worker sends waits in the other queue to be [taken](MemPort::take_sent). It has
/// no descriptor: a worker reads it when it [has input](Port::has_input).
///
/// Byte vectors are recycled between the queues, so that once they have grown to what is in flight, moving
/// packets through a `MemPort` allocates nothing.
///
/// ```
/// use tweed_io::{MemPort, Medium, Port};
///
/// let mut port = MemPort::new("pod1", Medium::Ethernet);
/// assert!(port.inject(&[0xff; 60], None));
/// assert!(port.has_input());
/// assert_eq!(port.take_sent(), None);
/// ```
#[derive(Debug)]
pub struct MemPort {
    name: String,
    medium: Medium,
    inbox: VecDeque<(Vec<u8>, SocketAddr)>,
    outbox: VecDeque<(Vec<u8>, SocketAddr)>,
    spare: Vec<Vec<u8>>,
    limit: usize,
    gone: bool,
    in_dropped: u64,
    out_dropped: u64,
}

/// The address a packet without one carries in the queues.
const NOWHERE: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

impl MemPort {
    /// An empty port named `name` carrying `medium`, each queue holding 1024 packets at most.
    #[must_use]
    pub fn new(name: impl Into<String>, medium: Medium) -> Self {
        Self {
            name: name.into(),
            medium,
            inbox: VecDeque::new(),
            outbox: VecDeque::new(),
            spare: Vec::new(),
            limit: DEFAULT_LIMIT,
            gone: false,
            in_dropped: 0,
            out_dropped: 0,
        }
    }

    /// With each queue holding `limit` packets at most (at least 1).
    #[must_use]
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit.max(1);
        self
    }

    fn stored(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut v = self.spare.pop().unwrap_or_default();
        v.clear();
        v.extend_from_slice(bytes);
        v
    }

    /// Queues `bytes` for the worker to receive, from `from` on a datagram port (`None`: `0.0.0.0:0`). `false`
    /// when the queue is full (the packet is dropped and counted: [`MemPort::in_dropped`]).
    pub fn inject(&mut self, bytes: &[u8], from: Option<SocketAddr>) -> bool {
        if self.inbox.len() >= self.limit {
            self.in_dropped += 1;
            return false;
        }
        let v = self.stored(bytes);
        self.inbox.push_back((v, from.unwrap_or(NOWHERE)));
        true
    }

    /// The oldest packet the worker sent, with its destination on a datagram port. Give the vector back with
    /// [`MemPort::recycle`] to keep the port from allocating.
    pub fn take_sent(&mut self) -> Option<(Vec<u8>, Option<SocketAddr>)> {
        let medium = self.medium;
        self.outbox.pop_front().map(|(v, dst)| (v, (medium == Medium::Datagram).then_some(dst)))
    }

    /// Hands every packet the worker sent to `f`, oldest first, and keeps their vectors for reuse.
    pub fn drain_sent(&mut self, mut f: impl FnMut(&[u8], Option<SocketAddr>)) {
        let datagram = self.medium == Medium::Datagram;
        while let Some((v, dst)) = self.outbox.pop_front() {
            f(&v, datagram.then_some(dst));
            self.recycle(v);
        }
    }

    /// Takes back a vector from [`MemPort::take_sent`] for reuse.
    pub fn recycle(&mut self, v: Vec<u8>) {
        if self.spare.len() < 2 * self.limit {
            self.spare.push(v);
        }
    }

    /// Packets waiting for the worker.
    #[must_use]
    pub fn pending_in(&self) -> usize {
        self.inbox.len()
    }

    /// Packets the worker sent, not yet taken.
    #[must_use]
    pub fn pending_out(&self) -> usize {
        self.outbox.len()
    }

    /// Packets [`MemPort::inject`] refused because the queue to the worker was full.
    #[must_use]
    pub const fn in_dropped(&self) -> u64 {
        self.in_dropped
    }

    /// Packets the worker sent that did not fit the queue from it (also counted as dropped by the worker).
    #[must_use]
    pub const fn out_dropped(&self) -> u64 {
        self.out_dropped
    }

    /// Makes the port gone for good, as a deleted device is: its next read fails with `ENODEV`.
    pub fn close(&mut self) {
        self.gone = true;
    }
}

impl Port for MemPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn medium(&self) -> Medium {
        self.medium
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    fn has_input(&self) -> bool {
        self.gone || !self.inbox.is_empty()
    }

    fn recv(&mut self, rx: &mut Rx<'_>) -> io::Result<()> {
        if self.gone {
            return Err(io::Error::from_raw_os_error(libc::ENODEV));
        }
        while rx.room() > 0 && !self.inbox.is_empty() {
            let Some(mut buf) = rx.buffer() else { break };
            let Some((v, from)) = self.inbox.pop_front() else { break };
            if buf.extend_from_slice(&v).is_err() {
                rx.put_back(buf);
                rx.count_dropped(1);
            } else {
                if self.medium == Medium::Datagram {
                    buf.meta_mut().set_remote(from);
                }
                rx.push(buf);
            }
            self.recycle(v);
        }
        Ok(())
    }

    fn send(&mut self, msgs: &[Msg<'_>], _scratch: &mut [u8]) -> Sent {
        let mut sent = 0;
        for m in msgs {
            if self.outbox.len() >= self.limit {
                self.out_dropped += 1;
                continue;
            }
            let v = self.stored(m.data);
            self.outbox.push_back((v, m.dst.unwrap_or(NOWHERE)));
            sent += 1;
        }
        Sent { sent, coalesced: 0 }
    }
}
