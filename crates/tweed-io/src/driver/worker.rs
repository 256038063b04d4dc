//! The waiting-free core of a driver: a node, its pool and its ports, and the round that moves packets between
//! them. [`Driver`](super::Driver) is this plus the wait; a simulation or an embedder's own loop runs
//! [`Worker::round`] with its own clock.

use std::io;

use tweed_overlay::{Flannel, Node, Outputs, encap::Encapsulation};
use tweed_packet::{Batch, Pool, PoolConfig, PortId};
use tweed_switch::Instant;

use super::{ClosedPort, DriverConfig, DriverStats, invalid};
use crate::error::Result;
use crate::port::{Medium, Port};
use crate::stats::counters;
use crate::sys::MAX_BATCH;

/// The most calls of [`Node::process`] in one round: a node that takes nothing cannot hold a round; what it
/// left is dropped and counted ([`DriverStats::unprocessed`]).
pub(super) const MAX_PROCESS_CALLS: usize = 4;

counters! {
    /// What one port of a [`Worker`] has done ([`Worker::port_stats`]).
    pub struct PortStats {
        /// Packets read.
        pub rx: u64,
        /// Packets read and dropped by the port (too long, a lying offload header).
        pub rx_dropped: u64,
        /// Reads that failed.
        pub rx_errors: u64,
        /// Packets sent.
        pub tx: u64,
        /// Packets for it that could not be sent.
        pub tx_dropped: u64,
    }
}

/// What a port is to the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Underlay,
    Pod,
    /// The host port or an IP port.
    Ip,
    /// A TUN of a node without a host port: read and dropped, so that its queue never fills.
    Drain,
}

#[derive(Debug)]
pub(super) struct Slot<P> {
    pub(super) id: PortId,
    pub(super) port: P,
    pub(super) role: Role,
    pub(super) ready: bool,
    /// Consecutive failed reads; [`GONE`](super::read::GONE) marks one to close.
    pub(super) failures: u32,
    /// The port's epoll token in a driver.
    pub(super) token: u64,
    pub(super) stats: PortStats,
}

/// One worker's node, pool and ports, and its round: read the ready ports their fair shares of a batch, run it
/// through the node (a bounded number of calls), send each output where its verdict says, close the ports that
/// are gone. It never waits and never reads a clock: time is the round's argument.
///
/// `P` is the ports' type: `Box<dyn Port + Send>` by default (any kinds at once), or one type (a simulation's
/// [`MemPort`](crate::MemPort)s, given back typed by [`Worker::port_mut`]).
///
/// ```
/// use tweed_io::{DriverConfig, Medium, MemPort, Worker};
/// use tweed_overlay::{Instant, NodeBuilder};
/// use tweed_packet::PortId;
///
/// let node = NodeBuilder::new("10.244.1.0/24".parse()?, [192, 168, 0, 1].into(), "02:00:00:00:01:01".parse()?)
///     .host_gw()
///     .pod_ports([1, 2])
///     .build()?;
/// let mut worker: Worker<_, MemPort> = Worker::new(node, DriverConfig::default().buffers(1024))?;
/// worker.add_port(PortId(1), MemPort::new("pod1", Medium::Ethernet))?;
/// worker.add_port(PortId(2), MemPort::new("pod2", Medium::Ethernet))?;
/// // A broadcast frame from pod 1 is flooded to pod 2.
/// let mut frame = vec![0xff; 6];
/// frame.extend([2, 0, 0, 0, 0, 1, 0x88, 0xb5]);
/// frame.resize(60, 0);
/// worker.port_mut(PortId(1)).unwrap().inject(&frame, None);
/// assert_eq!(worker.round(Instant::from_secs(1)), 1);
/// let (got, _) = worker.port_mut(PortId(2)).unwrap().take_sent().unwrap();
/// assert_eq!(got, frame);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Worker<E: Encapsulation = Flannel, P: Port = Box<dyn Port + Send>> {
    pub(super) node: Node<E>,
    pub(super) pool: Pool,
    pub(super) batch: Batch,
    pub(super) out: Outputs,
    pub(super) slots: Vec<Slot<P>>,
    /// Port number → index in `slots`.
    pub(super) index: Vec<Option<u16>>,
    pub(super) config: DriverConfig,
    pub(super) stats: DriverStats,
    /// Where the next round starts reading the ports other than the underlay: the first one the last round
    /// left unread, or the one after the last round's start, so that no port is always read last.
    pub(super) next: usize,
    pub(super) closed: Vec<ClosedPort>,
    /// Where coalesced TCP segments are laid out before a TAP write.
    pub(super) scratch: Vec<u8>,
    /// Where a TAP with TSO reads a frame of up to 64 KiB before it is cut.
    pub(super) rx_scratch: Vec<u8>,
    /// Each output's port (index in `slots`), worked out before sending.
    pub(super) targets: Vec<u32>,
    /// The node's time at the last call of [`Node::process`] (see the driver's timers).
    pub(super) processed_at: u64,
    next_token: u64,
}

impl<E: Encapsulation, P: Port> Worker<E, P> {
    /// A worker for `node` with no ports yet, its pool and batch sized by `config`.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) (kind `InvalidInput`) when the pool cannot be made.
    pub fn new(node: Node<E>, config: DriverConfig) -> Result<Self> {
        let outputs = node.config().limits.max_outputs;
        let pool =
            Pool::new(PoolConfig { buffers: config.buffers.max(4 * MAX_BATCH + outputs), ..PoolConfig::default() })
                .map_err(|e| invalid(format!("pool: {e}")))?;
        Ok(Self {
            node,
            pool,
            batch: Batch::new(MAX_BATCH),
            out: Outputs::new(outputs),
            slots: Vec::new(),
            index: Vec::new(),
            config: DriverConfig { batch: config.batch.clamp(1, MAX_BATCH), ..config },
            stats: DriverStats::default(),
            next: 0,
            closed: Vec::new(),
            scratch: vec![0; crate::gro::COALESCE_ROOM],
            rx_scratch: vec![0; crate::gro::COALESCE_ROOM],
            targets: Vec::with_capacity(outputs),
            processed_at: 0,
            next_token: 0,
        })
    }

    /// What `id` is to the node, for a port of `medium`.
    fn role(&self, id: PortId, medium: Medium, name: &str) -> Result<Role> {
        let cfg = self.node.config();
        let (want, role) = if medium == Medium::Datagram && cfg.underlay.socket_port == Some(id.0) {
            (Medium::Datagram, Role::Underlay)
        } else if cfg.pod_ports.contains(&id.0) {
            (Medium::Ethernet, Role::Pod)
        } else if cfg.host_port == Some(id.0) || cfg.ip_ports.contains(&id.0) {
            (Medium::Ip, Role::Ip)
        } else if cfg.underlay.port == id.0 || cfg.underlay.socket_port == Some(id.0) {
            (if cfg.underlay.socket_port == Some(id.0) { Medium::Datagram } else { Medium::Ethernet }, Role::Underlay)
        } else {
            return Err(invalid(format!("{name} is on port {}, which is not a port of the node", id.0)));
        };
        if medium != want {
            return Err(invalid(format!("{name} carries {medium:?} but port {} of the node takes {want:?}", id.0)));
        }
        Ok(role)
    }

    /// Adds `port` under the node's port number `id` (a pod port, the host port, an IP port, or the underlay
    /// port: `underlay.socket_port` for a datagram port, `underlay.port` for frames), read from the next round.
    /// Returns the port's token (an epoll token in a driver).
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) (kind `InvalidInput`) when `id` is none of the node's ports, its medium
    /// is not the port's, or `id` has a port already.
    pub fn add_port(&mut self, id: PortId, port: P) -> Result<u64> {
        let role = self.role(id, port.medium(), port.name())?;
        self.insert(id, port, role)
    }

    /// Adds a port that is read and dropped (a TUN for a node without a host port).
    pub(super) fn add_drain(&mut self, port: P) -> Result<u64> {
        if port.medium() != Medium::Ip {
            return Err(invalid(format!("{} carries {:?}, not IP packets", port.name(), port.medium())));
        }
        self.insert(PortId(0), port, Role::Drain)
    }

    fn insert(&mut self, id: PortId, port: P, role: Role) -> Result<u64> {
        let slot = usize::from(id.0);
        if role != Role::Drain {
            if self.index.get(slot).copied().flatten().is_some() {
                return Err(invalid(format!("{} is on port {}, which has a port already", port.name(), id.0)));
            }
            if self.index.len() <= slot {
                self.index.resize(slot + 1, None);
            }
        }
        let token = self.next_token;
        self.next_token += 1;
        self.slots.push(Slot { id, port, role, ready: false, failures: 0, token, stats: PortStats::default() });
        self.reindex();
        Ok(token)
    }

    fn reindex(&mut self) {
        self.index.iter_mut().for_each(|x| *x = None);
        for (k, s) in self.slots.iter().enumerate() {
            if s.role != Role::Drain {
                // At most 65,536 port numbers, one slot each (and drains, which are not indexed).
                self.index[usize::from(s.id.0)] = u16::try_from(k).ok();
            }
        }
    }

    /// Stops reading and writing the port `id` and hands it back (`None`: there is none). What the node sends it
    /// from then on is dropped and counted.
    pub fn remove_port(&mut self, id: PortId) -> Option<P> {
        let k = usize::from(self.index.get(usize::from(id.0)).copied().flatten()?);
        Some(self.remove_slot(k).port)
    }

    pub(super) fn remove_slot(&mut self, k: usize) -> Slot<P> {
        let slot = self.slots.remove(k);
        self.reindex();
        if self.next >= self.slots.len() {
            self.next = 0;
        }
        slot
    }

    /// The port on `id`.
    #[must_use]
    pub fn port(&self, id: PortId) -> Option<&P> {
        let k = self.index.get(usize::from(id.0)).copied().flatten()?;
        self.slots.get(usize::from(k)).map(|s| &s.port)
    }

    /// The port on `id`, to feed it or take what it got (a [`MemPort`](crate::MemPort)).
    pub fn port_mut(&mut self, id: PortId) -> Option<&mut P> {
        let k = self.index.get(usize::from(id.0)).copied().flatten()?;
        self.slots.get_mut(usize::from(k)).map(|s| &mut s.port)
    }

    /// Every port with its number, in the order they were added.
    pub fn ports(&self) -> impl Iterator<Item = (PortId, &P)> {
        self.slots.iter().filter(|s| s.role != Role::Drain).map(|s| (s.id, &s.port))
    }

    /// What the port on `id` has done.
    #[must_use]
    pub fn port_stats(&self, id: PortId) -> Option<PortStats> {
        let k = self.index.get(usize::from(id.0)).copied().flatten()?;
        self.slots.get(usize::from(k)).map(|s| s.stats)
    }

    /// Marks the port `id` as having input: the next round reads it. Ports without a descriptor are marked by
    /// the round itself when they [have input](Port::has_input).
    pub fn set_ready(&mut self, id: PortId) {
        if let Some(Some(k)) = self.index.get(usize::from(id.0)) {
            self.slots[usize::from(*k)].ready = true;
        }
    }

    /// Marks every port as having input (a loop that does not poll: reads that find nothing cost a system call).
    pub fn set_all_ready(&mut self) {
        self.slots.iter_mut().for_each(|s| s.ready = true);
    }

    pub(super) fn set_ready_token(&mut self, token: u64) -> bool {
        self.slots.iter_mut().find(|s| s.token == token).is_some_and(|s| {
            s.ready = true;
            true
        })
    }

    /// Whether a port without a descriptor has input waiting (a driver does not sleep then).
    #[must_use]
    pub fn has_input(&self) -> bool {
        self.slots.iter().any(|s| s.port.fd().is_none() && s.port.has_input())
    }

    /// The node.
    #[must_use]
    pub const fn node(&self) -> &Node<E> {
        &self.node
    }

    /// The node, to change its peers between rounds.
    pub const fn node_mut(&mut self) -> &mut Node<E> {
        &mut self.node
    }

    /// What the worker has done.
    #[must_use]
    pub const fn stats(&self) -> DriverStats {
        self.stats
    }

    /// The pool's buffers not in use.
    #[must_use]
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The ports closed since the last call because they are gone (a device deleted, or its namespace with it),
    /// each once, for the caller to log. The worker carries on with the others.
    pub fn take_closed(&mut self) -> Vec<ClosedPort> {
        std::mem::take(&mut self.closed)
    }

    /// One round at `now`: read the ready ports (and those without a descriptor that have input) their shares of
    /// the batch, run it through the node, send the outputs, close the ports that are gone. Returns how many
    /// packets were read. Bounded whatever the node does: at most a few calls of [`Node::process`]; what it did
    /// not take by then is dropped and counted. With nothing read, the node still runs its timers.
    pub fn round(&mut self, now: Instant) -> usize {
        self.round_with(now, |_| {})
    }

    /// [`Worker::round`], handing each port it closes to `closing` before it is dropped.
    pub(super) fn round_with(&mut self, now: Instant, closing: impl FnMut(&Slot<P>)) -> usize {
        self.stats.rounds += 1;
        for s in &mut self.slots {
            if !s.ready && s.port.fd().is_none() && s.port.has_input() {
                s.ready = true;
            }
        }
        let now = now.as_nanos();
        let read = self.read_ready(now);
        self.close_gone(closing);
        // At least once, even with nothing read: an empty batch runs the node's timers.
        self.processed_at = now;
        for _ in 0..MAX_PROCESS_CALLS {
            self.node.process(Instant::from_nanos(now), &mut self.pool, &mut self.batch, &mut self.out);
            self.dispatch();
            if self.batch.is_empty() {
                return read;
            }
        }
        self.stats.unprocessed += self.batch.len() as u64;
        self.batch.clear_into(&mut self.pool);
        read
    }

    /// Closes the ports marked gone by their reads.
    fn close_gone(&mut self, mut closing: impl FnMut(&Slot<P>)) {
        while let Some(k) = self.slots.iter().position(|s| s.failures == super::read::GONE) {
            closing(&self.slots[k]);
            drop(self.remove_slot(k));
            self.stats.ports_closed += 1;
        }
    }

    /// Closes the ports whose network namespace's file is gone (see
    /// [`Driver::close_orphaned`](super::Driver::close_orphaned)). Returns how many.
    pub fn close_orphaned(&mut self) -> usize {
        self.close_orphaned_with(|_| {})
    }

    pub(super) fn close_orphaned_with(&mut self, mut closing: impl FnMut(&Slot<P>)) -> usize {
        let mut n = 0;
        while let Some(k) = self.slots.iter().position(|s| s.port.netns().is_some_and(|ns| !ns.exists())) {
            let s = &self.slots[k];
            let ns = s.port.netns().map(|p| p.display().to_string()).unwrap_or_default();
            let error = io::Error::new(io::ErrorKind::NotFound, format!("network namespace {ns} is gone"));
            let (port, name) = (s.id, s.port.name().to_owned());
            closing(s);
            drop(self.remove_slot(k));
            self.closed.push(ClosedPort { port, name, error });
            self.stats.ports_closed += 1;
            n += 1;
        }
        n
    }
}
