//! The driver: one worker that owns a [`Node`], its pool, and its ports, and moves packets between them.
//!
//! Each round it waits (epoll, level-triggered, any number of ports) until a port has input, the node's next timer
//! is due ([`Node::poll_at`]), or a handle ([`Stop`], [`Waker`]) wakes it, and for nothing else: an idle driver
//! with no timer pending sleeps. Then it reads each ready port its share of the round's batch straight into pool
//! buffers (the underlay first, the pods from a start that moves: see the `read` module), runs the batch through
//! [`Node::process`] (a few calls at most: a round is bounded whatever the node does; an empty batch runs the
//! node's timers), and sends each output where its verdict says: UDP payloads to the underlay in one `sendmmsg`,
//! frames to pod ports, IP packets to the TUN. A port whose device is gone is closed and reported once. Time is
//! one monotonic clock, read by the driver and handed to the node. Everything is sized when the driver is made;
//! a round allocates nothing.
//!
//! The design is one driver per queue (a multi-queue TAP has one [`Device`] per queue, the underlay one
//! `SO_REUSEPORT` socket per worker), each with its own node and buffers, sharing nothing but a [`Stop`]; their
//! [`DriverStats`] merge into one view. The agent runs one.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use tweed_overlay::{Node, Outputs};
use tweed_packet::{Batch, Pool, PoolConfig, PortId};
use tweed_switch::Instant;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::stats::counters;
use crate::sys::{self, MAX_BATCH};

mod dispatch;
mod handle;
mod ports;
mod read;

pub use handle::{Stop, Waker};
pub use ports::{PodPort, Underlay};

fn invalid(m: String) -> Error {
    Error::io("building the driver", io::Error::new(io::ErrorKind::InvalidInput, m))
}

/// Sizes of a [`Driver`]: [`DriverConfig::default`], then [`DriverConfig::batch`] and [`DriverConfig::buffers`]
/// (non-exhaustive: a new size is not a breaking change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub struct DriverConfig {
    /// The most packets read from one port per round (64 by default; at most 256). A round reads at most 256
    /// packets in all: when more ports have input, each gets an equal share of that (the underlay at least a
    /// quarter), starting from a pod that changes every round, so that busy pods cannot starve the others.
    pub batch: usize,
    /// Buffers in the pool.
    pub buffers: usize,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self { batch: 64, buffers: 4096 }
    }
}

impl DriverConfig {
    /// With `batch` packets read from one port per round at most (see the field of that name).
    pub const fn batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// With `buffers` buffers in the pool.
    pub const fn buffers(mut self, buffers: usize) -> Self {
        self.buffers = buffers;
        self
    }
}

counters! {
    /// What a [`Driver`] has done (the node's own counters are [`Node::counters`]). Each round ends its wait
    /// for one reason, counted under the first that applies: `wake_io`, `wake_handle`, `wake_timer`,
    /// `wake_limit`.
    pub struct DriverStats {
        /// Rounds run.
        pub rounds: u64,
        /// Rounds whose wait ended because a port had input.
        pub wake_io: u64,
        /// Rounds whose wait a [`Stop`] or [`Waker`] ended.
        pub wake_handle: u64,
        /// Rounds whose wait ended because the node's next timer ([`Node::poll_at`]) was due.
        pub wake_timer: u64,
        /// Rounds whose wait ended at the caller's limit (the `wait` of [`Driver::round`], or what the hook of
        /// [`Driver::run`] asked for), with nothing else to do.
        pub wake_limit: u64,
        /// Packets read from pod ports.
        pub rx_pod: u64,
        /// Packets written to pod ports.
        pub tx_pod: u64,
        /// Packets for pod ports that could not be written (queue full, device down).
        pub tx_pod_dropped: u64,
        /// Writes to a TAP that carried several TCP segments coalesced into one frame.
        pub tx_pod_coalesced: u64,
        /// Packets read from the underlay.
        pub rx_underlay: u64,
        /// Packets sent on the underlay.
        pub tx_underlay: u64,
        /// Packets for the underlay that could not be sent.
        pub tx_underlay_dropped: u64,
        /// Packets read from the TUN (the host's, for a node with a `host_port`).
        pub rx_tun: u64,
        /// Packets written to the TUN.
        pub tx_tun: u64,
        /// Packets for the host with no TUN to take them, or that it refused.
        pub tx_tun_dropped: u64,
        /// Packets not read because the pool was empty.
        pub pool_empty: u64,
        /// Frames from a TAP with TSO dropped: a header that lies or asks for what is not done, a segment larger
        /// than a buffer, or more segments than the batch or pool had room for.
        pub rx_offload_dropped: u64,
        /// Reads that failed (other than "nothing waiting").
        pub rx_errors: u64,
        /// Packets read that the node did not take within a round's calls of `process` (dropped).
        pub unprocessed: u64,
        /// Pod ports closed because their device went away (see [`Driver::take_closed`]).
        pub ports_closed: u64,
    }
}

/// A pod port the driver closed because its device is gone (see [`Driver::take_closed`]).
#[derive(Debug)]
pub struct ClosedPort {
    /// The node's port number.
    pub port: PortId,
    /// The device or interface name.
    pub name: String,
    /// Why: the last error its reads gave.
    pub error: io::Error,
}

/// One worker: a node and its ports.
#[derive(Debug)]
pub struct Driver {
    node: Node,
    pool: Pool,
    batch: Batch,
    out: Outputs,
    pods: Vec<(PortId, PodPort)>,
    /// Port number → index in `pods`.
    pod_index: Vec<Option<usize>>,
    underlay: Underlay,
    underlay_port: PortId,
    tun: Option<Device>,
    /// The node's port for the host's packets: the TUN is read into it (without one, the TUN is drained).
    host_port: Option<PortId>,
    config: DriverConfig,
    /// The driver's clock: the node's time is nanoseconds since this (monotonic).
    epoch: std::time::Instant,
    /// The node's time at the last call of [`Node::process`]: a timer not later than it that the node still
    /// reports was not serviced, and is waited for at least a millisecond (not in a spin).
    processed_at: u64,
    stats: DriverStats,
    /// Ends [`Driver::run`]; never drained (other drivers may hold it), so it leaves the epoll set once seen
    /// stopped: later rounds wait as before.
    stop: Stop,
    /// Whether `stop` is in the epoll set.
    stop_watched: bool,
    /// Ends a wait; in the epoll set, drained when it does.
    waker: Waker,
    /// Every port registered once (level-triggered): any number of ports, each wait costs what is ready.
    epoll: sys::Epoll,
    /// Which pods (by index in `pods`) the last wait reported.
    ready: Vec<bool>,
    underlay_ready: bool,
    tun_ready: bool,
    /// Consecutive failed reads per pod (index in `pods`); [`read::GONE`] marks one to close.
    failures: Vec<u32>,
    /// Where the next round starts reading pods: the first one the last round left unread, or the one after
    /// the last round's start, so that no pod is always read last.
    next_pod: usize,
    /// Pods closed and not yet taken by [`Driver::take_closed`].
    closed: Vec<ClosedPort>,
    /// Where coalesced TCP segments are laid out before a TAP write.
    scratch: Vec<u8>,
    /// Where a TAP with TSO reads a frame of up to 64 KiB before it is cut.
    rx_scratch: Vec<u8>,
}

/// The epoll token of the underlay (pods are their port number, below 2^16).
const TOKEN_UNDERLAY: u64 = 1 << 16;
/// The epoll token of the TUN.
const TOKEN_TUN: u64 = TOKEN_UNDERLAY + 1;
/// The epoll token of the [`Stop`].
const TOKEN_STOP: u64 = TOKEN_UNDERLAY + 2;
/// The epoll token of the [`Waker`].
const TOKEN_WAKE: u64 = TOKEN_UNDERLAY + 3;
/// The most calls of [`Node::process`] in one round: a node that takes nothing cannot hold a round; what it
/// left is dropped and counted ([`DriverStats::unprocessed`]).
const MAX_PROCESS_CALLS: usize = 4;

impl Driver {
    /// A driver for `node` over these ports: each pod port under the number the node's config gives it, the
    /// underlay, and a TUN for the packets the node hands to the host (`None`: they are dropped and counted). When
    /// the node has a `host_port`, what the host writes to the TUN goes into the node on that port; without one it
    /// is read and dropped, so that the TUN's queue never fills.
    ///
    /// # Errors
    /// [`Error::Io`] (kind `InvalidInput`) when a port number is not one of the node's pod ports or is given
    /// twice, when a UDP underlay is given to a node without `underlay.socket_port`, or when the pool cannot be
    /// made; [`Error::Io`] when epoll refuses a descriptor.
    pub fn new(
        node: Node,
        pods: Vec<(PortId, PodPort)>,
        underlay: Underlay,
        tun: Option<Device>,
        config: DriverConfig,
    ) -> Result<Self> {
        let cfg = node.config();
        let underlay_port = match &underlay {
            Underlay::Udp(_) => PortId(
                cfg.underlay
                    .socket_port
                    .ok_or_else(|| invalid("a UDP underlay needs the node's underlay.socket_port".to_owned()))?,
            ),
            Underlay::Packet(_) => PortId(cfg.underlay.port),
        };
        let batch_size = config.batch.clamp(1, MAX_BATCH);
        let outputs = cfg.limits.max_outputs;
        let pool =
            Pool::new(PoolConfig { buffers: config.buffers.max(4 * MAX_BATCH + outputs), ..PoolConfig::default() })
                .map_err(|e| invalid(format!("pool: {e}")))?;
        let mut epoll = sys::Epoll::new().map_err(|e| Error::io("epoll_create", e))?;
        let fd = match &underlay {
            Underlay::Udp(u) => u.as_raw_fd(),
            Underlay::Packet(p) => p.as_raw_fd(),
        };
        epoll.add(fd, TOKEN_UNDERLAY).map_err(|e| Error::io("watching the underlay", e))?;
        if let Some(t) = &tun {
            epoll.add(t.as_raw_fd(), TOKEN_TUN).map_err(|e| Error::io(format!("watching {}", t.name()), e))?;
        }
        let (stop, waker) = (Stop::new()?, Waker::new()?);
        epoll.add(stop.fd(), TOKEN_STOP).map_err(|e| Error::io("watching the stop handle", e))?;
        epoll.add(waker.fd(), TOKEN_WAKE).map_err(|e| Error::io("watching the waker", e))?;
        let host_port = cfg.host_port.map(PortId);
        let slots = usize::from(cfg.pod_ports.iter().copied().max().unwrap_or(0)) + 1;
        let mut driver = Self {
            node,
            pool,
            batch: Batch::new(MAX_BATCH),
            out: Outputs::new(outputs),
            pods: Vec::with_capacity(pods.len()),
            pod_index: vec![None; slots],
            underlay,
            underlay_port,
            host_port,
            tun,
            config: DriverConfig { batch: batch_size, ..config },
            epoch: std::time::Instant::now(),
            processed_at: 0,
            stats: DriverStats::default(),
            stop,
            stop_watched: true,
            waker,
            epoll,
            ready: Vec::with_capacity(pods.len()),
            underlay_ready: false,
            tun_ready: false,
            failures: Vec::with_capacity(pods.len()),
            next_pod: 0,
            closed: Vec::new(),
            scratch: vec![0; crate::gro::COALESCE_ROOM],
            rx_scratch: vec![0; crate::gro::COALESCE_ROOM],
        };
        for (id, port) in pods {
            driver.add_pod(id, port)?;
        }
        Ok(driver)
    }

    /// Adds a pod port under the node's port number `id` and starts reading it.
    ///
    /// # Errors
    /// [`Error::Io`] (kind `InvalidInput`) when `id` is not a pod port of the node or has a port already;
    /// [`Error::Io`] when epoll refuses the descriptor.
    pub fn add_pod(&mut self, id: PortId, port: PodPort) -> Result<()> {
        let slot = usize::from(id.0);
        if !self.node.config().pod_ports.contains(&id.0) || self.pod_index.get(slot).is_none() {
            return Err(invalid(format!("{} is on port {}, which is not a pod port of the node", port.name(), id.0)));
        }
        if self.pod_index[slot].is_some() {
            return Err(invalid(format!("{} is on port {}, which has a port already", port.name(), id.0)));
        }
        self.epoll.add(port.fd(), u64::from(id.0)).map_err(|e| Error::io(format!("watching {}", port.name()), e))?;
        self.pod_index[slot] = Some(self.pods.len());
        self.pods.push((id, port));
        self.ready.push(false);
        self.failures.push(0);
        Ok(())
    }

    /// Stops reading and writing the pod port `id` and hands it back (`None`: there is none). What the node sends
    /// it from then on is dropped and counted (`tx_pod_dropped`).
    pub fn remove_pod(&mut self, id: PortId) -> Option<PodPort> {
        let i = self.pod_index.get(usize::from(id.0)).copied().flatten()?;
        // The descriptor is still open: removing it cannot fail but for a bug, and then the port is dropped
        // below anyway, which removes it from the epoll set with its last descriptor.
        let _ = self.epoll.remove(self.pods[i].1.fd());
        let (_, port) = self.pods.remove(i);
        self.ready.remove(i);
        self.failures.remove(i);
        self.pod_index.iter_mut().for_each(|x| *x = None);
        for (k, (pid, _)) in self.pods.iter().enumerate() {
            self.pod_index[usize::from(pid.0)] = Some(k);
        }
        if self.next_pod >= self.pods.len() {
            self.next_pod = 0;
        }
        Some(port)
    }

    /// The pod ports closed since the last call because their device went away (deleted, or its namespace
    /// with it): each once, for the caller to log. The driver carries on with the others.
    pub fn take_closed(&mut self) -> Vec<ClosedPort> {
        std::mem::take(&mut self.closed)
    }

    /// Closes the pod ports whose network namespace's file is gone (`ip netns del`, or a container runtime
    /// removing a pod's namespace): the port's own descriptor keeps such a namespace and its device alive, so
    /// nothing else would ever tell. Reported by [`Driver::take_closed`]; returns how many. A `stat` per pod:
    /// call it every second or so, not every round.
    pub fn close_orphaned(&mut self) -> usize {
        let mut n = 0;
        while let Some(i) = self.pods.iter().position(|(_, p)| p.netns().is_some_and(|ns| !ns.exists())) {
            let (port, name) = (self.pods[i].0, self.pods[i].1.name().to_owned());
            let ns = self.pods[i].1.netns().map(|p| p.display().to_string()).unwrap_or_default();
            let error = io::Error::new(io::ErrorKind::NotFound, format!("network namespace {ns} is gone"));
            self.remove_pod(port);
            self.closed.push(ClosedPort { port, name, error });
            self.stats.ports_closed += 1;
            n += 1;
        }
        n
    }

    /// The node.
    #[must_use]
    pub const fn node(&self) -> &Node {
        &self.node
    }

    /// The node, to change its peers between rounds.
    pub const fn node_mut(&mut self) -> &mut Node {
        &mut self.node
    }

    /// What the driver has done.
    #[must_use]
    pub const fn stats(&self) -> DriverStats {
        self.stats
    }

    /// The underlay port.
    #[must_use]
    pub const fn underlay(&self) -> &Underlay {
        &self.underlay
    }

    /// The pod ports.
    #[must_use]
    pub fn pods(&self) -> &[(PortId, PodPort)] {
        &self.pods
    }

    /// A handle that stops this driver's [`Driver::run`] (and every other driver given a clone of it).
    #[must_use]
    pub fn stop_handle(&self) -> Stop {
        self.stop.clone()
    }

    /// Makes `stop` this driver's stop handle in place of its own: one handle for several workers, or one made
    /// before the driver (for a signal thread). A stopped handle makes [`Driver::run`] return at once.
    ///
    /// # Errors
    /// [`Error::Io`] when epoll refuses the descriptor (the old handle stays).
    pub fn set_stop(&mut self, stop: Stop) -> Result<()> {
        if stop.fd() == self.stop.fd() {
            return Ok(());
        }
        self.epoll.add(stop.fd(), TOKEN_STOP).map_err(|e| Error::io("watching the stop handle", e))?;
        if self.stop_watched {
            // Still open: removing it cannot fail but for a bug, and dropping the last clone removes it anyway.
            let _ = self.epoll.remove(self.stop.fd());
        }
        self.stop = stop;
        self.stop_watched = true;
        Ok(())
    }

    /// A handle that ends this driver's current wait (see [`Waker`]).
    #[must_use]
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// Makes `waker` this driver's waker in place of its own (one made before the driver, for a thread started
    /// first). Give each driver its own: a wake is taken by the first driver that sees it.
    ///
    /// # Errors
    /// [`Error::Io`] when epoll refuses the descriptor (the old waker stays).
    pub fn set_waker(&mut self, waker: Waker) -> Result<()> {
        if waker.fd() == self.waker.fd() {
            return Ok(());
        }
        self.epoll.add(waker.fd(), TOKEN_WAKE).map_err(|e| Error::io("watching the waker", e))?;
        let _ = self.epoll.remove(self.waker.fd());
        self.waker = waker;
        Ok(())
    }

    /// Runs rounds until the stop handle ([`Driver::stop_handle`], [`Driver::set_stop`]) is stopped. Before each
    /// round, `between` runs (to take closed ports, apply a control plane's news, log, or stop) and says how long
    /// that round may wait at most (`None`: until input, the node's next timer or a handle, however long that
    /// is): the caller's own timers. It runs again after every round, whatever woke it: a [`Waker`] gets it
    /// called at once.
    ///
    /// # Errors
    /// A failure of the wait itself (not of a port's read or write, which are counted).
    pub fn run(&mut self, mut between: impl FnMut(&mut Self) -> Option<Duration>) -> Result<()> {
        while !self.stop.is_stopped() {
            let wait = between(self);
            if self.stop.is_stopped() {
                break;
            }
            self.round(wait)?;
        }
        Ok(())
    }

    /// The node's time now: nanoseconds of the driver's monotonic clock.
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// How long the next wait may last: until the node's next timer, and at most `limit`; in epoll's
    /// milliseconds (-1: no end), rounded up so that the timer is due when the wait ends. Whether the node's timer
    /// is what ends it.
    fn timeout(&self, limit: Option<Duration>) -> (i32, bool) {
        let to_ms = |ns: u64| i32::try_from(ns.div_ceil(1_000_000)).unwrap_or(i32::MAX);
        let limit = limit.map(|d| to_ms(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)));
        let timer = self.node.poll_at().map(|at| {
            let now = self.now();
            // A timer the last call did not service (a node that breaks `poll_at`'s promise) is retried a
            // millisecond later rather than in a spin.
            if at.as_nanos() <= self.processed_at { 1 } else { to_ms(at.as_nanos().saturating_sub(now)) }
        });
        match (limit, timer) {
            (Some(l), Some(t)) if t <= l => (t, true),
            (Some(l), _) => (l, false),
            (None, Some(t)) => (t, true),
            (None, None) => (-1, false),
        }
    }

    /// One round: wait until a port has input, the node's next timer is due, a handle wakes the driver, or
    /// `wait` is over (`None`: no limit; `Some(Duration::ZERO)`: do not wait), then read (each ready port its
    /// share of the batch: see [`DriverConfig::batch`]), process, send. Returns how many packets were read.
    /// Bounded whatever the node does: at most a few calls of [`Node::process`]; what it did not take by then is
    /// dropped and counted.
    ///
    /// # Errors
    /// A failure of `epoll_wait`.
    pub fn round(&mut self, wait: Option<Duration>) -> Result<usize> {
        self.stats.rounds += 1;
        let (timeout_ms, by_timer) = self.timeout(wait);
        let Self { epoll, ready, pod_index, underlay_ready, tun_ready, waker, .. } = self;
        ready.fill(false);
        (*underlay_ready, *tun_ready) = (false, false);
        let (mut io, mut handle) = (false, false);
        epoll
            .wait(timeout_ms, |token| match token {
                TOKEN_UNDERLAY => (*underlay_ready, io) = (true, true),
                TOKEN_TUN => (*tun_ready, io) = (true, true),
                TOKEN_STOP => handle = true,
                TOKEN_WAKE => {
                    waker.clear();
                    handle = true;
                }
                t => {
                    if let Some(Some(i)) = usize::try_from(t).ok().and_then(|t| pod_index.get(t)) {
                        ready[*i] = true;
                        io = true;
                    }
                }
            })
            .map_err(|e| Error::io("epoll_wait", e))?;
        if handle && self.stop_watched && self.stop.is_stopped() {
            // Seen: a stop stays readable, and would end every later wait at once.
            let _ = self.epoll.remove(self.stop.fd());
            self.stop_watched = false;
        }
        let s = &mut self.stats;
        match (io, handle, by_timer) {
            (true, _, _) => s.wake_io += 1,
            (false, true, _) => s.wake_handle += 1,
            (false, false, true) => s.wake_timer += 1,
            (false, false, false) => s.wake_limit += 1,
        }
        let now = self.now();
        let read = self.read_ready(now);
        self.close_gone();
        // At least once, even with nothing read: an empty batch runs the node's timers.
        self.processed_at = now;
        for _ in 0..MAX_PROCESS_CALLS {
            self.node.process(Instant::from_nanos(now), &mut self.pool, &mut self.batch, &mut self.out);
            self.dispatch();
            if self.batch.is_empty() {
                return Ok(read);
            }
        }
        self.stats.unprocessed += self.batch.len() as u64;
        self.batch.clear_into(&mut self.pool);
        Ok(read)
    }
}
