//! A round's reading: which ports are read, how much from each, and what happens to a port whose device went.
//!
//! The round's batch (256 packets) is shared: each ready port gets an equal share (at most
//! [`DriverConfig::batch`](super::DriverConfig::batch)), the underlay at least a quarter, since it carries every
//! remote pod's traffic, and is read first; pods are read from a start that moves every round, so that no pod is
//! always last, and a pod left unread because the batch filled up is read first in the next round.

use std::io;

use tweed_packet::{Batch, PacketBuf, Pool, PortId};

use super::{ClosedPort, Driver, DriverStats, Underlay};

/// The most segments one read of a TAP with TSO may give: a larger train (a pod-chosen tiny `gso_size`) is
/// dropped whole and counted, so that one read costs bounded work. 64 KiB in segments of 536 bytes (the
/// smallest usual MSS) is 123.
pub(crate) const MAX_TSO_SEGMENTS: usize = 128;

/// Consecutive failed reads after which a pod port is closed whatever the error (a port that fails every read
/// would otherwise be ready at every wait: a spin).
const MAX_FAILURES: u32 = 64;

/// The mark in `failures` of a port to close.
pub(super) const GONE: u32 = u32::MAX;

/// Whether a read error says the device is gone for good: a TAP whose interface was deleted (or its namespace
/// with it) reads `EBADFD`; an interface gone under a socket gives `ENODEV` or `ENXIO`.
fn gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBADFD | libc::ENODEV | libc::ENXIO))
}

impl Driver {
    /// Reads every ready port its share (see the module's comment). Returns how many packets were read.
    pub(super) fn read_ready(&mut self, now: u64) -> usize {
        let pods_ready = self.ready.iter().filter(|&&r| r).count();
        let ports = pods_ready + usize::from(self.underlay_ready) + usize::from(self.tun_ready);
        if ports == 0 {
            return 0;
        }
        let budget = self.batch.remaining();
        let share = (budget / ports).clamp(1, self.config.batch);
        let mut read = 0;
        if self.underlay_ready {
            read += self.read_underlay(now, share.max(budget / 4).min(self.config.batch));
        }
        if self.tun_ready {
            read += self.read_tun(now, share);
        }
        let n = self.pods.len();
        if n == 0 {
            return read;
        }
        let start = self.next_pod % n;
        let mut unread = None;
        for k in 0..n {
            let i = (start + k) % n;
            if !self.ready[i] {
                continue;
            }
            let tso = self.pods[i].1.is_offloaded();
            if self.batch.is_full() || (tso && self.batch.remaining() < MAX_TSO_SEGMENTS) {
                unread.get_or_insert(i);
                continue;
            }
            read += if tso { self.read_pod_offloaded(i, now, share) } else { self.read_pod(i, now, share) };
        }
        self.next_pod = unread.unwrap_or((start + 1) % n);
        read
    }

    /// Counts a pod's read: a success clears its failures; a failure is counted, and marks the port to close
    /// when its device is gone or it failed [`MAX_FAILURES`] times in a row.
    fn note_read(&mut self, i: usize, n: usize, error: Option<io::Error>) {
        let Some(e) = error else {
            if n > 0 {
                self.failures[i] = 0;
            }
            return;
        };
        self.stats.rx_errors += 1;
        let f = &mut self.failures[i];
        *f = f.saturating_add(1);
        if gone(&e) || *f >= MAX_FAILURES {
            *f = GONE;
            let (port, name) = (self.pods[i].0, self.pods[i].1.name().to_owned());
            self.closed.push(ClosedPort { port, name, error: e });
        }
    }

    /// Closes the pods [`Driver::note_read`] marked.
    pub(super) fn close_gone(&mut self) {
        while let Some(i) = self.failures.iter().position(|&f| f == GONE) {
            let id = self.pods[i].0;
            self.remove_pod(id);
            self.stats.ports_closed += 1;
        }
    }

    /// Reads from a TAP with TSO or an offloaded AF_PACKET socket: each read may be many segments, cut into pool
    /// buffers.
    fn read_pod_offloaded(&mut self, i: usize, now: u64, max: usize) -> usize {
        let Self { pods, pool, batch, stats, rx_scratch, .. } = self;
        let (id, dev) = &pods[i];
        let max_frame = pool.config().capacity.saturating_sub(pool.config().headroom);
        let mut n = 0;
        let mut error = None;
        // Room for a whole train before each read: what does not fit is dropped and counted.
        while n < max && batch.remaining() >= MAX_TSO_SEGMENTS {
            let mut dropped = 0u64;
            let got = dev.recv_offloaded(rx_scratch, max_frame, MAX_TSO_SEGMENTS, |frame| {
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
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        stats.rx_pod += n as u64;
        // A read that gave only dropped frames still shows the port works.
        let ok = if error.is_none() { n.max(1) } else { n };
        self.note_read(i, ok, error);
        n
    }

    fn read_pod(&mut self, i: usize, now: u64, max: usize) -> usize {
        let Self { pods, pool, batch, stats, .. } = self;
        let (id, port) = &pods[i];
        let (n, error) = read_frames(|buf| port.recv(buf), *id, now, max, pool, batch, stats);
        stats.rx_pod += n as u64;
        self.note_read(i, n, error);
        n
    }

    fn read_underlay(&mut self, now: u64, max: usize) -> usize {
        let Self { underlay, pool, batch, stats, underlay_port, .. } = self;
        let n = match underlay {
            Underlay::Udp(u) => u.recv_batch(pool, batch, max, *underlay_port, now).unwrap_or_else(|_| {
                stats.rx_errors += 1;
                0
            }),
            Underlay::Packet(p) => {
                let (n, error) = read_frames(|buf| p.recv(buf), *underlay_port, now, max, pool, batch, stats);
                stats.rx_errors += u64::from(error.is_some());
                n
            }
        };
        stats.rx_underlay += n as u64;
        n
    }

    /// Reads the host's packets into the node's host port, or drains them when the node has none. A TUN whose
    /// device is gone is closed (reported by `take_closed` under the host port, or port 0 without one): it would
    /// be ready at every wait.
    fn read_tun(&mut self, now: u64, max: usize) -> usize {
        let Self { tun: Some(tun), pool, batch, stats, host_port, .. } = self else { return 0 };
        let (n, error) = match *host_port {
            Some(port) => read_frames(|buf| tun.recv(buf), port, now, max, pool, batch, stats),
            None => {
                let Some(mut buf) = pool.get() else { return 0 };
                let mut error = None;
                for _ in 0..max {
                    match tun.recv(&mut buf) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
                pool.put(buf);
                (0, error)
            }
        };
        stats.rx_tun += n as u64;
        if let Some(e) = error {
            stats.rx_errors += 1;
            if gone(&e) {
                let port = host_port.unwrap_or(PortId(0));
                let name = tun.name().to_owned();
                // Still open: removing it cannot fail but for a bug, and dropping it below removes it anyway.
                let _ = self.epoll.remove(std::os::fd::AsRawFd::as_raw_fd(tun));
                self.tun = None;
                self.closed.push(ClosedPort { port, name, error: e });
                self.stats.ports_closed += 1;
            }
        }
        n
    }
}

/// Reads up to `max` frames, one per call of `recv`, into buffers from `pool` pushed onto `batch` with this ingress
/// and time; stops at the first "nothing waiting", error (returned) or full batch or empty pool (counted).
fn read_frames(
    recv: impl Fn(&mut PacketBuf) -> io::Result<bool>,
    ingress: PortId,
    now: u64,
    max: usize,
    pool: &mut Pool,
    batch: &mut Batch,
    stats: &mut DriverStats,
) -> (usize, Option<io::Error>) {
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
            Err(e) => {
                pool.put(buf);
                return (n, Some(e));
            }
        }
    }
    (n, None)
}
