//! The driver: one worker that owns a [`Node`], its pool, and its ports, and moves packets between them.
//!
//! It is made of two parts. The [`Worker`] is the waiting-free core: the node, the pool, the ports (anything that
//! implements [`Port`](crate::Port)), and its round (read, process, send, close what is gone), with time passed
//! in; simulations and an embedder's own event loop run it with their own clock. The [`Driver`] is a worker and
//! the waiting: epoll over the ports' descriptors, the [`Stop`] and [`Waker`] handles, the node's timers, and
//! [`Driver::run`]'s hook. Both are generic over the node's encapsulation (`Node<E>`).
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
//! `SO_REUSEPORT` socket per worker), each with its own node and buffers, sharing nothing but a [`Stop`] (and
//! their nodes' `Control`); their [`DriverStats`] merge into one view. The agent (`tweed_agent`) runs one per
//! worker.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use tweed_overlay::encap::Encapsulation;
use tweed_overlay::{Flannel, Node};
use tweed_packet::PortId;
use tweed_switch::Instant;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::port::Port;
use crate::sys;

mod dispatch;
mod handle;
mod ports;
mod read;
mod types;
mod worker;

pub use handle::{Stop, Waker};
pub use ports::{PodPort, Underlay};
pub use types::{ClosedPort, DriverConfig, DriverStats};
pub use worker::{PortStats, Worker};

fn invalid(m: String) -> Error {
    Error::io("building the driver", io::Error::new(io::ErrorKind::InvalidInput, m))
}

/// One worker and its waiting: a node, its ports, and the epoll set over them.
///
/// `E` is the node's encapsulation ([`Flannel`] by default), `P` the ports' type (`Box<dyn Port + Send>` by
/// default: any kinds at once).
#[derive(Debug)]
pub struct Driver<E: Encapsulation = Flannel, P: Port = Box<dyn Port + Send>> {
    worker: Worker<E, P>,
    /// The driver's clock: the node's time is nanoseconds since this (monotonic).
    epoch: std::time::Instant,
    /// Ends [`Driver::run`]; never drained (other drivers may hold it), so it leaves the epoll set once seen
    /// stopped: later rounds wait as before.
    stop: Stop,
    /// Whether `stop` is in the epoll set.
    stop_watched: bool,
    /// The last round had a port without a descriptor saying it had input, and read nothing: such a port is
    /// polled again a millisecond later rather than in a spin.
    stalled: bool,
    /// Ends a wait; in the epoll set, drained when it does.
    waker: Waker,
    /// Every port with a descriptor registered once (level-triggered) under its token: any number of ports,
    /// each wait costs what is ready.
    epoll: sys::Epoll,
}

/// The epoll token of the [`Stop`] (ports' tokens count up from 0).
const TOKEN_STOP: u64 = u64::MAX - 1;
/// The epoll token of the [`Waker`].
const TOKEN_WAKE: u64 = u64::MAX;

impl<E: Encapsulation> Driver<E> {
    /// A driver for `node` over these ports: each pod port under the number the node's config gives it, the
    /// underlay, and a TUN for the packets the node hands to the host (`None`: they are dropped and counted). When
    /// the node has a `host_port`, what the host writes to the TUN goes into the node on that port; without one it
    /// is read and dropped, so that the TUN's queue never fills. (Ports of any other kind: [`Driver::empty`] and
    /// [`Driver::add_port`].)
    ///
    /// # Errors
    /// [`Error::Io`] (kind `InvalidInput`) when a port number is not one of the node's pod ports or is given
    /// twice, when a UDP underlay is given to a node without `underlay.socket_port`, or when the pool cannot be
    /// made; [`Error::Io`] when epoll refuses a descriptor.
    pub fn new(
        node: Node<E>,
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
        let host_port = cfg.host_port.map(PortId);
        let mut driver = Self::empty(node, config)?;
        driver.add_port(underlay_port, Box::new(underlay))?;
        if let Some(tun) = tun {
            match host_port {
                Some(id) => driver.add_port(id, Box::new(tun))?,
                None => {
                    let token = driver.worker.add_drain(Box::new(tun))?;
                    driver.watch(token)?;
                }
            }
        }
        for (id, port) in pods {
            driver.add_pod(id, port)?;
        }
        Ok(driver)
    }

    /// A driver for `node` with no ports yet of any kinds (add them with [`Driver::add_port`]).
    /// A driver of ports all of one type: [`Driver::from_worker`].
    ///
    /// # Errors
    /// [`Error::Io`] when the pool, the epoll set or a handle cannot be made.
    pub fn empty(node: Node<E>, config: DriverConfig) -> Result<Self> {
        Self::from_worker(Worker::new(node, config)?)
    }

    /// Adds a pod port under the node's port number `id` and starts reading it.
    ///
    /// # Errors
    /// [`Error::Io`] (kind `InvalidInput`) when `id` is not a pod port of the node or has a port already;
    /// [`Error::Io`] when epoll refuses the descriptor.
    pub fn add_pod(&mut self, id: PortId, port: PodPort) -> Result<()> {
        if !self.worker.node.config().pod_ports.contains(&id.0) {
            return Err(invalid(format!("{} is on port {}, which is not a pod port of the node", port.name(), id.0)));
        }
        self.add_port(id, Box::new(port))
    }

    /// Stops reading and writing the pod port `id` and hands it back (`None`: there is none). What the node sends
    /// it from then on is dropped and counted (`tx_pod_dropped`).
    pub fn remove_pod(&mut self, id: PortId) -> Option<Box<dyn Port + Send>> {
        if !self.worker.node.config().pod_ports.contains(&id.0) {
            return None;
        }
        self.remove_port(id)
    }
}

impl<E: Encapsulation, P: Port> Driver<E, P> {
    /// A driver around `worker`, watching its ports.
    ///
    /// # Errors
    /// [`Error::Io`] when the epoll set or a handle cannot be made, or epoll refuses a descriptor.
    pub fn from_worker(worker: Worker<E, P>) -> Result<Self> {
        let mut epoll = sys::Epoll::new().map_err(|e| Error::io("epoll_create", e))?;
        let (stop, waker) = (Stop::new()?, Waker::new()?);
        epoll.add(stop.fd(), TOKEN_STOP).map_err(|e| Error::io("watching the stop handle", e))?;
        epoll.add(waker.fd(), TOKEN_WAKE).map_err(|e| Error::io("watching the waker", e))?;
        let mut driver =
            Self { worker, epoch: std::time::Instant::now(), stop, stop_watched: true, stalled: false, waker, epoll };
        let tokens: Vec<u64> = driver.worker.slots.iter().map(|s| s.token).collect();
        for t in tokens {
            driver.watch(t)?;
        }
        Ok(driver)
    }

    /// Puts the port with `token` in the epoll set (a port without a descriptor is asked each round instead).
    fn watch(&mut self, token: u64) -> Result<()> {
        let Some(s) = self.worker.slots.iter().find(|s| s.token == token) else { return Ok(()) };
        let Some(fd) = s.port.fd() else { return Ok(()) };
        self.epoll.add(fd.as_raw_fd(), token).map_err(|e| Error::io(format!("watching {}", s.port.name()), e))
    }

    /// Adds `port` under the node's port number `id` (see [`Worker::add_port`]) and starts reading it.
    ///
    /// # Errors
    /// What [`Worker::add_port`] returns; [`Error::Io`] when epoll refuses the descriptor (the port is not
    /// added).
    pub fn add_port(&mut self, id: PortId, port: P) -> Result<()> {
        let token = self.worker.add_port(id, port)?;
        if let Err(e) = self.watch(token) {
            drop(self.worker.remove_port(id));
            return Err(e);
        }
        Ok(())
    }

    /// Stops reading and writing the port `id` and hands it back (`None`: there is none).
    pub fn remove_port(&mut self, id: PortId) -> Option<P> {
        let port = self.worker.remove_port(id)?;
        if let Some(fd) = port.fd() {
            // The descriptor is still open: removing it cannot fail but for a bug, and dropping the port removes
            // it from the epoll set with its last descriptor anyway.
            let _ = self.epoll.remove(fd.as_raw_fd());
        }
        Some(port)
    }

    /// The ports closed since the last call because they are gone (deleted, or their namespace with them): each
    /// once, for the caller to log. The driver carries on with the others.
    pub fn take_closed(&mut self) -> Vec<ClosedPort> {
        self.worker.take_closed()
    }

    /// Closes the ports whose network namespace's file is gone (`ip netns del`, or a container runtime removing
    /// a pod's namespace): the port's own descriptor keeps such a namespace and its device alive, so nothing else
    /// would ever tell. Reported by [`Driver::take_closed`]; returns how many. A `stat` per port in another
    /// namespace: call it every second or so, not every round.
    pub fn close_orphaned(&mut self) -> usize {
        let Self { worker, epoll, .. } = self;
        worker.close_orphaned_with(|s| {
            if let Some(fd) = s.port.fd() {
                let _ = epoll.remove(fd.as_raw_fd());
            }
        })
    }

    /// The node.
    #[must_use]
    pub const fn node(&self) -> &Node<E> {
        &self.worker.node
    }

    /// The node, to change its peers between rounds.
    pub const fn node_mut(&mut self) -> &mut Node<E> {
        &mut self.worker.node
    }

    /// The worker: the node, its ports and the round without the waiting.
    #[must_use]
    pub const fn worker(&self) -> &Worker<E, P> {
        &self.worker
    }

    /// The worker, to reach a port ([`Worker::port_mut`]). Add and remove ports through the driver
    /// ([`Driver::add_port`]), which watches their descriptors.
    pub const fn worker_mut(&mut self) -> &mut Worker<E, P> {
        &mut self.worker
    }

    /// What the driver has done.
    #[must_use]
    pub const fn stats(&self) -> DriverStats {
        self.worker.stats
    }

    /// The pod ports with their numbers (a list made for the caller: for logs, not for every round).
    #[must_use]
    pub fn pods(&self) -> Vec<(PortId, &P)> {
        let pods = &self.worker.node.config().pod_ports;
        self.worker.ports().filter(|(id, _)| pods.contains(&id.0)).collect()
    }

    /// Every port with its number.
    pub fn ports(&self) -> impl Iterator<Item = (PortId, &P)> {
        self.worker.ports()
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
        let timer = self.worker.node.poll_at().map(|at| {
            let now = self.now();
            // A timer the last call did not service (a node that breaks `poll_at`'s promise) is retried a
            // millisecond later rather than in a spin.
            if at.as_nanos() <= self.worker.processed_at { 1 } else { to_ms(at.as_nanos().saturating_sub(now)) }
        });
        match (limit, timer) {
            (Some(l), Some(t)) if t <= l => (t, true),
            (Some(l), _) => (l, false),
            (None, Some(t)) => (t, true),
            (None, None) => (-1, false),
        }
    }

    /// One round: wait until a port has input, the node's next timer is due, a handle wakes the driver, or
    /// `wait` is over (`None`: no limit; `Some(Duration::ZERO)`: do not wait), then run the worker's round
    /// ([`Worker::round`]) at the driver's clock. Returns how many packets were read.
    ///
    /// # Errors
    /// A failure of `epoll_wait`.
    pub fn round(&mut self, wait: Option<Duration>) -> Result<usize> {
        let (timeout_ms, by_timer) = self.timeout(wait);
        // A port without a descriptor with input waiting: no sleep, unless it gave nothing last time (a port
        // whose `has_input` is wrong, or a full pool), when the wait is a millisecond at most.
        let mem_input = self.worker.has_input();
        let timeout_ms = match (mem_input, self.stalled) {
            (true, false) => 0,
            (true, true) if !(0..=1).contains(&timeout_ms) => 1,
            _ => timeout_ms,
        };
        let Self { epoll, worker, waker, .. } = self;
        let (mut io, mut handle) = (mem_input, false);
        epoll
            .wait(timeout_ms, |token| match token {
                TOKEN_STOP => handle = true,
                TOKEN_WAKE => {
                    waker.clear();
                    handle = true;
                }
                t => io |= worker.set_ready_token(t),
            })
            .map_err(|e| Error::io("epoll_wait", e))?;
        if handle && self.stop_watched && self.stop.is_stopped() {
            // Seen: a stop stays readable, and would end every later wait at once.
            let _ = self.epoll.remove(self.stop.fd());
            self.stop_watched = false;
        }
        let s = &mut self.worker.stats;
        match (io, handle, by_timer) {
            (true, _, _) => s.wake_io += 1,
            (false, true, _) => s.wake_handle += 1,
            (false, false, true) => s.wake_timer += 1,
            (false, false, false) => s.wake_limit += 1,
        }
        let now = Instant::from_nanos(self.now());
        let Self { epoll, worker, .. } = self;
        let read = worker.round_with(now, |s| {
            if let Some(fd) = s.port.fd() {
                // Still open: removing it cannot fail but for a bug, and dropping the port removes it anyway.
                let _ = epoll.remove(fd.as_raw_fd());
            }
        });
        self.stalled = mem_input && read == 0;
        Ok(read)
    }
}
