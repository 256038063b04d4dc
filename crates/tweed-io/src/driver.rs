//! The driver: one worker that owns a [`Node`], its pool, and its ports, and moves packets between them.
//!
//! Each round it waits for input on every port (`poll`, with a short timeout so that the node's timers run),
//! reads up to a batch from each ready port straight into pool buffers, runs the whole batch through
//! [`Node::process`], and sends each output where its verdict says: UDP payloads to the underlay in one
//! `sendmmsg`, frames to pod ports, IP packets to the TUN. Everything is sized when the driver is made; a round
//! allocates nothing.
//!
//! The design is one driver per queue (a multi-queue TAP has one [`Device`] per queue, the underlay one
//! `SO_REUSEPORT` socket per worker), each with its own node and buffers: shared nothing, as DESIGN.md says. The
//! agent runs one.

use std::io;
use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;

use tweed_overlay::{Node, Outputs, Verdict};
use tweed_packet::{Batch, Pool, PoolConfig, PortId};
use tweed_switch::Instant;

use crate::device::{Device, PacketSocket};
use crate::error::{Error, Result};
use crate::sys::{self, MAX_BATCH};
use crate::udp::UdpPort;

/// A pod's port: a TAP that tweed created (the pod's `eth0`), or an AF_PACKET socket on the host end of a veth.
#[derive(Debug)]
pub enum PodPort {
    /// A TAP device.
    Tap(Device),
    /// An existing interface.
    Packet(PacketSocket),
}

impl PodPort {
    fn fd(&self) -> RawFd {
        match self {
            Self::Tap(d) => d.as_raw_fd(),
            Self::Packet(p) => p.as_raw_fd(),
        }
    }

    fn recv(&self, buf: &mut tweed_packet::PacketBuf) -> io::Result<bool> {
        match self {
            Self::Tap(d) => d.recv(buf),
            Self::Packet(p) => p.recv(buf),
        }
    }

    /// The device or interface name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Tap(d) => d.name(),
            Self::Packet(p) => p.name(),
        }
    }
}

/// The underlay: a UDP socket (vxlan, udp: the kernel routes and resolves the peers) or an AF_PACKET socket on
/// the underlay interface (host-gw, or whole frames as the node builds them).
#[derive(Debug)]
pub enum Underlay {
    /// A UDP socket; the node must have a `socket_port`.
    Udp(UdpPort),
    /// An interface; frames come in on the node's underlay port.
    Packet(PacketSocket),
}

/// Sizes and timing of a [`Driver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct DriverConfig {
    /// The most packets read from one port per round (64 by default; at most 256).
    pub batch: usize,
    /// The longest wait for input, in milliseconds: how late the node's timers (ARP retries) may run.
    pub poll_ms: i32,
    /// Buffers in the pool.
    pub buffers: usize,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self { batch: 64, poll_ms: 20, buffers: 4096 }
    }
}

/// What a [`Driver`] has done (the node's own counters are [`Node::counters`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Rounds run.
    pub rounds: u64,
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
    /// Frames from a TAP with TSO dropped: a header that lies or asks for what is not done, a segment larger than
    /// a buffer, or more segments than the batch or pool had room for.
    pub rx_offload_dropped: u64,
    /// Reads that failed (other than "nothing waiting").
    pub rx_errors: u64,
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
    epoch: std::time::Instant,
    stats: DriverStats,
    fds: Vec<RawFd>,
    ready: Vec<bool>,
    /// Where coalesced TCP segments are laid out before a TAP write.
    scratch: Vec<u8>,
    /// Where a TAP with TSO reads a frame of up to 64 KiB before it is cut.
    rx_scratch: Vec<u8>,
}

impl Driver {
    /// A driver for `node` over these ports: each pod port under the number the node's config gives it, the
    /// underlay, and a TUN for the packets the node hands to the host (`None`: they are dropped and counted). When
    /// the node has a `host_port`, what the host writes to the TUN goes into the node on that port; without one it
    /// is read and dropped, so that the TUN's queue never fills.
    ///
    /// # Errors
    /// [`Error::Io`] (kind `InvalidInput`) when a port number is not one of the node's pod ports, when a
    /// UDP underlay is given to a node without `underlay.socket_port`, or when the pool cannot be made.
    pub fn new(
        node: Node,
        pods: Vec<(PortId, PodPort)>,
        underlay: Underlay,
        tun: Option<Device>,
        config: DriverConfig,
    ) -> Result<Self> {
        let invalid = |m: String| Error::io("building the driver", io::Error::new(io::ErrorKind::InvalidInput, m));
        let cfg = node.config();
        let mut pod_index = vec![None; usize::from(cfg.pod_ports.iter().copied().max().unwrap_or(0)) + 1];
        for (i, (id, port)) in pods.iter().enumerate() {
            if !cfg.pod_ports.contains(&id.0) {
                return Err(invalid(format!(
                    "{} is on port {}, which is not a pod port of the node",
                    port.name(),
                    id.0
                )));
            }
            pod_index[usize::from(id.0)] = Some(i);
        }
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
        let mut fds: Vec<RawFd> = pods.iter().map(|(_, p)| p.fd()).collect();
        fds.push(match &underlay {
            Underlay::Udp(u) => u.as_raw_fd(),
            Underlay::Packet(p) => p.as_raw_fd(),
        });
        if let Some(t) = &tun {
            fds.push(t.as_raw_fd());
        }
        let ready = vec![false; fds.len()];
        let host_port = cfg.host_port.map(PortId);
        Ok(Self {
            node,
            pool,
            batch: Batch::new(MAX_BATCH),
            out: Outputs::new(outputs),
            pods,
            pod_index,
            underlay,
            underlay_port,
            host_port,
            tun,
            config: DriverConfig { batch: batch_size, ..config },
            epoch: std::time::Instant::now(),
            stats: DriverStats::default(),
            fds,
            ready,
            scratch: vec![0; crate::gro::COALESCE_ROOM],
            rx_scratch: vec![0; crate::gro::COALESCE_ROOM],
        })
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

    /// Runs rounds until `stop()` says so (checked at least every `poll_ms`).
    ///
    /// # Errors
    /// A failure of `poll` itself (not of a port's read or write, which are counted).
    pub fn run(&mut self, mut stop: impl FnMut(&mut Self) -> bool) -> Result<()> {
        while !stop(self) {
            self.round(self.config.poll_ms)?;
        }
        Ok(())
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// One round: wait up to `timeout_ms` for input, read, process, send. Returns how many packets were read.
    ///
    /// # Errors
    /// A failure of `poll`.
    pub fn round(&mut self, timeout_ms: i32) -> Result<usize> {
        self.stats.rounds += 1;
        sys::poll_in(&self.fds, &mut self.ready, timeout_ms).map_err(|e| Error::io("poll", e))?;
        let now = self.now();
        let mut read = 0;
        for i in 0..self.pods.len() {
            if self.ready[i] {
                read += self.read_pod(i, now);
            }
        }
        let u = self.pods.len();
        if self.ready[u] {
            read += self.read_underlay(now);
        }
        if self.tun.is_some() && self.ready[u + 1] {
            read += self.read_tun(now);
        }
        // Always run the node, even with nothing read: its ARP timers live in `process`.
        while !self.batch.is_empty() || read == 0 {
            self.node.process(Instant::from_nanos(now), &mut self.pool, &mut self.batch, &mut self.out);
            self.dispatch();
            if self.batch.is_empty() {
                break;
            }
        }
        Ok(read)
    }

    /// Reads from a TAP with TSO: each read may be many segments, cut into pool buffers.
    fn read_pod_offloaded(&mut self, i: usize, now: u64) -> usize {
        let Self { pods, pool, batch, stats, rx_scratch, config, .. } = self;
        let (id, PodPort::Tap(dev)) = &pods[i] else { return 0 };
        let max_frame = pool.config().capacity.saturating_sub(pool.config().headroom);
        let mut n = 0;
        // Room for a whole train before each read: what does not fit is dropped and counted.
        while n < config.batch && batch.remaining() >= RUN {
            let mut dropped = 0u64;
            let got = dev.recv_offloaded(rx_scratch, max_frame, |frame| {
                let Some(mut buf) = pool.get() else {
                    dropped += 1;
                    return;
                };
                let area = buf.recv_area_mut();
                area[..frame.len()].copy_from_slice(frame);
                // `frame` is at most `max_frame`, the receive area's size.
                let _ = buf.commit_recv(frame.len());
                let meta = buf.meta_mut();
                meta.ingress = *id;
                meta.timestamp = now;
                if let Err(buf) = batch.push(buf) {
                    pool.put(buf);
                    dropped += 1;
                } else {
                    n += 1;
                }
            });
            stats.rx_offload_dropped += dropped;
            match got {
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_))) => stats.rx_offload_dropped += 1,
                Ok(None) => break,
                Err(_) => {
                    stats.rx_errors += 1;
                    break;
                }
            }
        }
        stats.rx_pod += n as u64;
        n
    }

    fn read_pod(&mut self, i: usize, now: u64) -> usize {
        if matches!(&self.pods[i].1, PodPort::Tap(d) if d.is_tso()) {
            return self.read_pod_offloaded(i, now);
        }
        let Self { pods, pool, batch, stats, config, .. } = self;
        let (id, port) = &pods[i];
        let n = read_frames(|buf| port.recv(buf), *id, now, config.batch, pool, batch, stats);
        stats.rx_pod += n as u64;
        n
    }

    fn read_underlay(&mut self, now: u64) -> usize {
        let Self { underlay, pool, batch, stats, config, underlay_port, .. } = self;
        let n = match underlay {
            Underlay::Udp(u) => u.recv_batch(pool, batch, config.batch, *underlay_port, now).unwrap_or_else(|_| {
                stats.rx_errors += 1;
                0
            }),
            Underlay::Packet(p) => {
                read_frames(|buf| p.recv(buf), *underlay_port, now, config.batch, pool, batch, stats)
            }
        };
        stats.rx_underlay += n as u64;
        n
    }

    /// Reads the host's packets into the node's host port, or drains them when the node has none.
    fn read_tun(&mut self, now: u64) -> usize {
        let Self { tun: Some(tun), pool, batch, stats, config, host_port, .. } = self else { return 0 };
        let Some(port) = *host_port else {
            let Some(mut buf) = pool.get() else { return 0 };
            for _ in 0..config.batch {
                if !matches!(tun.recv(&mut buf), Ok(true)) {
                    break;
                }
            }
            pool.put(buf);
            return 0;
        };
        let n = read_frames(|buf| tun.recv(buf), port, now, config.batch, pool, batch, stats);
        stats.rx_tun += n as u64;
        n
    }

    /// Sends every output where its verdict says, then gives the buffers back. Consecutive frames for one TAP
    /// pod go through [`Device::send_coalesced`], so that TCP segments of a flow reach the pod as one frame.
    fn dispatch(&mut self) {
        let Self { out, pods, pod_index, underlay, tun, stats, scratch, .. } = self;
        let items = out.as_slice();
        let mut msgs: [(&[u8], SocketAddrV4); MAX_BATCH] =
            [(&[][..], SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0)); MAX_BATCH];
        let mut m = 0;
        let mut i = 0;
        while i < items.len() {
            let (buf, verdict) = &items[i];
            match *verdict {
                Verdict::Pod(port) => {
                    let Some(k) = pod_index.get(usize::from(port.0)).copied().flatten() else {
                        stats.tx_pod_dropped += 1;
                        i += 1;
                        continue;
                    };
                    // The run of frames for this port, as the node left them.
                    let mut frames: [&[u8]; RUN] = [&[]; RUN];
                    let mut r = 0;
                    while i + r < items.len() && r < RUN && items[i + r].1 == Verdict::Pod(port) {
                        frames[r] = items[i + r].0.data();
                        r += 1;
                    }
                    let mut j = 0;
                    while j < r {
                        let took = match &pods[k].1 {
                            PodPort::Tap(d) => d.send_coalesced(&frames[j..r], scratch).unwrap_or(0),
                            PodPort::Packet(p) => usize::from(matches!(p.send(frames[j]), Ok(true))),
                        };
                        if took == 0 {
                            stats.tx_pod_dropped += 1;
                            j += 1;
                        } else {
                            stats.tx_pod += took as u64;
                            stats.tx_pod_coalesced += u64::from(took > 1);
                            j += took;
                        }
                    }
                    i += r;
                    continue;
                }
                Verdict::Underlay { dst, port, payload_offset } => match underlay {
                    Underlay::Udp(_) => {
                        let payload = buf.data().get(usize::from(payload_offset)..).unwrap_or(&[]);
                        msgs[m] = (payload, SocketAddrV4::new(dst, port));
                        m += 1;
                    }
                    Underlay::Packet(p) => match p.send(buf.data()) {
                        Ok(true) => stats.tx_underlay += 1,
                        _ => stats.tx_underlay_dropped += 1,
                    },
                },
                Verdict::Tun => match tun.as_ref().map(|t| t.send(buf.data())) {
                    Some(Ok(true)) => stats.tx_tun += 1,
                    _ => stats.tx_tun_dropped += 1,
                },
                Verdict::Consumed | Verdict::Drop(_) => {}
            }
            i += 1;
            // UDP payloads are gathered (in order) and sent in one call per full array.
            if m == MAX_BATCH
                && let Underlay::Udp(u) = underlay
            {
                let sent = u.send_batch(&msgs[..m]);
                stats.tx_underlay += sent as u64;
                stats.tx_underlay_dropped += (m - sent) as u64;
                m = 0;
            }
        }
        if m > 0
            && let Underlay::Udp(u) = underlay
        {
            let sent = u.send_batch(&msgs[..m]);
            stats.tx_underlay += sent as u64;
            stats.tx_underlay_dropped += (m - sent) as u64;
        }
        out.recycle(&mut self.pool);
    }
}

/// Reads up to `max` frames, one per call of `recv`, into buffers from `pool` pushed onto `batch` with this ingress
/// and time; stops at the first "nothing waiting", error (counted) or full batch or empty pool (counted).
fn read_frames(
    recv: impl Fn(&mut tweed_packet::PacketBuf) -> io::Result<bool>,
    ingress: PortId,
    now: u64,
    max: usize,
    pool: &mut Pool,
    batch: &mut Batch,
    stats: &mut DriverStats,
) -> usize {
    let mut n = 0;
    while n < max && !batch.is_full() {
        let Some(mut buf) = pool.get() else {
            stats.pool_empty += 1;
            break;
        };
        match recv(&mut buf) {
            Ok(true) => {
                let meta = buf.meta_mut();
                meta.ingress = ingress;
                meta.timestamp = now;
                // The batch has room: checked above.
                let _ = batch.push(buf);
                n += 1;
            }
            Ok(false) => {
                pool.put(buf);
                break;
            }
            Err(_) => {
                pool.put(buf);
                stats.rx_errors += 1;
                break;
            }
        }
    }
    n
}

/// The most frames for one pod port looked at together for coalescing (the kernel's GSO limit).
const RUN: usize = 64;

/// Makes SIGINT and SIGTERM request a stop ([`stop_requested`]) and SIGUSR1 request the counters
/// ([`stats_requested`]), interrupting a driver's wait at once.
///
/// # Errors
/// [`Error::Io`] when `sigaction` fails.
pub fn install_signal_handlers() -> Result<()> {
    sys::install_signal_flags().map_err(|e| Error::io("installing signal handlers", e))
}

/// Whether SIGINT or SIGTERM arrived (or [`request_stop`] was called).
#[must_use]
pub fn stop_requested() -> bool {
    sys::STOP.load(Ordering::Relaxed)
}

/// Asks every driver loop that checks [`stop_requested`] to stop.
pub fn request_stop() {
    sys::STOP.store(true, Ordering::Relaxed);
}

/// Whether SIGUSR1 arrived since the last call (which clears it).
#[must_use]
pub fn stats_requested() -> bool {
    sys::DUMP.swap(false, Ordering::Relaxed)
}
