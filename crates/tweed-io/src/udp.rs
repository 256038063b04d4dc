//! The underlay's UDP socket, batched: `recvmmsg` straight into pool buffers (one datagram each, no copy after the
//! kernel's) and `sendmmsg` to many peers in one call. Batching is a capability: the first time the kernel refuses
//! it (`ENOSYS`, `EINVAL`), the port falls back to one datagram per call, for good; it can also be turned off (the
//! way flannel's `udp` backend works, for comparison).
//!
//! Why not `quinn-udp`: it turns on UDP_GRO, whose coalesced datagrams a driver must copy apart into per-packet
//! buffers, and it sends to one destination per call; an overlay sends small batches to many peers.

use std::io;
use std::net::SocketAddrV4;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};
use tweed_packet::{Batch, PacketBuf, Pool, PortId};

use crate::error::{Error, Result};
use crate::steer::Steering;
use crate::sys::{self, MAX_BATCH, Received};

/// How to open a [`UdpPort`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct UdpOptions {
    /// Use `recvmmsg`/`sendmmsg` (on by default); off: one datagram per system call.
    pub batching: bool,
    /// `SO_REUSEPORT`, so that one socket per worker can bind the same address (the kernel spreads flows).
    pub reuse_port: bool,
    /// `SO_RCVBUF` in bytes; `None`: the kernel's default.
    pub recv_buffer: Option<usize>,
    /// `SO_SNDBUF` in bytes; `None`: the kernel's default.
    pub send_buffer: Option<usize>,
    /// Send runs of equal-size datagrams to one peer as one train (UDP GSO, `UDP_SEGMENT`; on by default, with
    /// batching): the kernel crosses its stack once per train instead of once per datagram. Off for good after
    /// the kernel refuses it once.
    pub gso: bool,
    /// Take trains of datagrams from one sender coalesced by the kernel (UDP GRO, on by default, with batching):
    /// one receive per train, cut into pool buffers here (one copy).
    pub gro: bool,
    /// How the peers' socket groups are steered ([`UdpPort::bind_group`] sets it to the group's own): with
    /// [`Steering::InnerFlow`], a GSO train holds the datagrams of one inner flow only (equal
    /// [`Steering::flow_key`]), since the receiving kernel steers a train whole, by its first datagram. Default:
    /// [`Steering::Kernel`] (trains cut by peer and size alone).
    pub steering: Steering,
}

impl Default for UdpOptions {
    fn default() -> Self {
        Self {
            batching: true,
            reuse_port: true,
            recv_buffer: Some(4 << 20),
            send_buffer: Some(4 << 20),
            gso: true,
            gro: true,
            steering: Steering::Kernel,
        }
    }
}

crate::stats::counters! {
    /// What a [`UdpPort`] has done.
    pub struct UdpStats {
        /// Datagrams received.
        pub rx: u64,
        /// Datagrams sent.
        pub tx: u64,
        /// System calls made to receive (those that returned data or nothing alike).
        pub rx_calls: u64,
        /// System calls made to send.
        pub tx_calls: u64,
        /// Trains sent with UDP GSO (each counts its datagrams in `tx`).
        pub tx_trains: u64,
        /// Trains received coalesced by UDP GRO (each counts its datagrams in `rx`).
        pub rx_trains: u64,
        /// Datagrams of received trains dropped because the pool was empty.
        pub rx_no_buffer: u64,
        /// Datagrams dropped on receipt because they did not fit a buffer.
        pub rx_truncated: u64,
        /// Datagrams not sent: the socket's buffer was full, or the kernel refused that one (no route, ...).
        pub tx_dropped: u64,
    }
}

/// A UDP socket on the underlay, bound to the node's address and the backend's port.
#[derive(Debug)]
pub struct UdpPort {
    socket: Socket,
    local: SocketAddrV4,
    batching: bool,
    gso: bool,
    /// Trains hold one inner flow of this steering (see [`UdpOptions::steering`]).
    steering: Steering,
    /// Trains received with UDP GRO, not yet cut into buffers (`None`: GRO is off).
    rx: Option<Box<RxTrains>>,
    stats: UdpStats,
}

/// Receive calls with UDP GRO take this many trains at most.
const GRO_TRAINS: usize = 8;
/// The room for one received train.
const GRO_ROOM: usize = 65_536;

/// Received trains, cut into datagrams as the batch has room: `items[next..n]` are left, the current one from
/// byte `pos`.
#[derive(Debug)]
struct RxTrains {
    arena: Vec<u8>,
    items: [Received; GRO_TRAINS],
    n: usize,
    next: usize,
    pos: usize,
}

/// The most datagrams in one GSO train (the kernel's `UDP_MAX_SEGMENTS`).
const MAX_SEGMENTS: usize = 64;
/// The most bytes in one GSO train (an IPv4 datagram's payload).
const MAX_TRAIN: usize = 65_000;
/// A message of a send call: datagrams `first..first + count` of the input, either one as it is (`count == 1`,
/// `seg == 0`) or a train of `seg`-byte datagrams that the kernel gathers from where each lies (no copy here)
/// and cuts again (UDP GSO).
#[derive(Clone, Copy, Default)]
struct Plan {
    first: usize,
    count: usize,
    seg: u16,
}

impl UdpPort {
    /// Binds `addr`, non-blocking, without path-MTU discovery (the outer DF bit is clear, as the kernel's VXLAN
    /// sends it: the node has already enforced the MTU on the inner packet).
    ///
    /// # Errors
    /// [`Error::Bind`] when the address is taken or not local, [`Error::Io`] for anything else.
    pub fn bind(addr: SocketAddrV4, options: UdpOptions) -> Result<Self> {
        let io = |what: &'static str| move |e| Error::io(format!("{what} (UDP {addr})"), e);
        let socket = Socket::new(Domain::IPV4, Type::DGRAM.nonblocking().cloexec(), Some(Protocol::UDP))
            .map_err(io("socket"))?;
        if options.reuse_port {
            socket.set_reuse_port(true).map_err(io("SO_REUSEPORT"))?;
        }
        if let Some(n) = options.recv_buffer {
            socket.set_recv_buffer_size(n).map_err(io("SO_RCVBUF"))?;
        }
        if let Some(n) = options.send_buffer {
            socket.set_send_buffer_size(n).map_err(io("SO_SNDBUF"))?;
        }
        sys::set_pmtudisc_dont(socket.as_fd()).map_err(io("IP_MTU_DISCOVER"))?;
        socket.bind(&addr.into()).map_err(|source| Error::Bind { addr, source })?;
        let local = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket_ipv4())
            .ok_or_else(|| Error::io("getsockname", io::Error::other("not an IPv4 socket")))?;
        let gso = options.batching && options.gso;
        // A kernel without UDP GRO (before 5.0) refuses the option: then datagrams come one by one.
        let gro = options.batching && options.gro && sys::set_udp_gro(socket.as_fd()).is_ok();
        let rx = gro.then(|| {
            Box::new(RxTrains {
                arena: vec![0; GRO_TRAINS * GRO_ROOM],
                items: [Received::default(); GRO_TRAINS],
                n: 0,
                next: 0,
                pos: 0,
            })
        });
        Ok(Self {
            socket,
            local,
            batching: options.batching,
            gso,
            steering: options.steering,
            rx,
            stats: UdpStats::default(),
        })
    }

    /// The bound address (with the port the kernel chose, if 0 was asked).
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// Whether it still batches.
    #[must_use]
    pub const fn is_batching(&self) -> bool {
        self.batching
    }

    /// Whether it takes trains coalesced by UDP GRO.
    #[must_use]
    pub const fn is_gro(&self) -> bool {
        self.rx.is_some()
    }

    /// Whether it still sends trains with UDP GSO.
    #[must_use]
    pub const fn is_gso(&self) -> bool {
        self.gso
    }

    /// What it has done.
    #[must_use]
    pub const fn stats(&self) -> UdpStats {
        self.stats
    }

    /// Receives up to `max` datagrams without waiting, each into a buffer from `pool` pushed onto `batch`, with
    /// `meta.ingress = ingress`, `meta.remote()` = the sender's address, `meta.timestamp = now_ns`. Returns how many.
    /// Datagrams too long for a buffer are dropped and counted.
    ///
    /// # Errors
    /// The kernel's, except "nothing waiting" (0).
    pub fn recv_batch(
        &mut self,
        pool: &mut Pool,
        batch: &mut Batch,
        max: usize,
        ingress: PortId,
        now_ns: u64,
    ) -> io::Result<usize> {
        if self.rx.is_some() {
            return self.recv_trains(pool, batch, max, ingress, now_ns);
        }
        let start = batch.len();
        let want = max.min(batch.remaining()).min(MAX_BATCH);
        let got = pool.get_batch(batch, want);
        if got == 0 {
            return Ok(0);
        }
        let received = if self.batching { self.recv_mmsg(&mut batch.as_mut_slice()[start..]) } else { Ok(None) };
        let received = match received {
            Ok(Some(n)) => Ok(n),
            Ok(None) => self.recv_one_by_one(&mut batch.as_mut_slice()[start..]),
            Err(e) => Err(e),
        };
        // Keep the buffers that got a datagram, give the others back.
        let n = *received.as_ref().unwrap_or(&0);
        while batch.len() > start + n {
            let Some(buf) = batch.pop() else { break };
            pool.put(buf);
        }
        // Drop the truncated ones (the receivers left them empty), keeping the order, and stamp the rest.
        let mut kept = n;
        let mut i = start;
        while i < start + kept {
            if batch.as_slice()[i].is_empty() {
                batch.as_mut_slice()[i..].rotate_left(1);
                if let Some(buf) = batch.pop() {
                    pool.put(buf);
                }
                kept -= 1;
                continue;
            }
            let meta = batch.as_mut_slice()[i].meta_mut();
            meta.ingress = ingress;
            meta.timestamp = now_ns;
            i += 1;
        }
        self.stats.rx += kept as u64;
        received.map(|_| kept)
    }

    /// With UDP GRO: cuts the trains left from the last call, then receives more, into buffers from `pool`,
    /// until `max` datagrams or the batch is full; what does not fit waits for the next call.
    fn recv_trains(
        &mut self,
        pool: &mut Pool,
        batch: &mut Batch,
        max: usize,
        ingress: PortId,
        now_ns: u64,
    ) -> io::Result<usize> {
        let Self { socket, rx, stats, .. } = self;
        let Some(rx) = rx.as_deref_mut() else { return Ok(0) };
        let want = max.min(batch.remaining());
        let mut got = 0;
        loop {
            while rx.next < rx.n && got < want {
                let m = rx.items[rx.next];
                let seg = if m.segment == 0 { m.len } else { m.segment }.max(1);
                let base = rx.next * GRO_ROOM;
                let end = (rx.pos + seg).min(m.len);
                let datagram = &rx.arena[base + rx.pos..base + end];
                rx.pos = end;
                if rx.pos >= m.len {
                    rx.next += 1;
                    rx.pos = 0;
                }
                let Some(mut buf) = pool.get() else {
                    stats.rx_no_buffer += 1;
                    continue;
                };
                let area = buf.recv_area_mut();
                if datagram.len() > area.len() {
                    stats.rx_truncated += 1;
                    pool.put(buf);
                    continue;
                }
                area[..datagram.len()].copy_from_slice(datagram);
                // The length fits the receive area: checked above.
                let _ = buf.commit_recv(datagram.len());
                let meta = buf.meta_mut();
                meta.ingress = ingress;
                meta.timestamp = now_ns;
                meta.set_remote(m.from.into());
                // There is room: `want` is at most what the batch has left.
                let _ = batch.push(buf);
                got += 1;
            }
            if got >= want {
                break;
            }
            let mut areas: [&mut [u8]; GRO_TRAINS] = std::array::from_fn(|_| &mut [][..]);
            for (area, chunk) in areas.iter_mut().zip(rx.arena.chunks_mut(GRO_ROOM)) {
                *area = chunk;
            }
            let mut meta = [Received::default(); GRO_TRAINS];
            stats.rx_calls += 1;
            let n = sys::recvmmsg(socket.as_fd(), &mut areas, &mut meta)?;
            if n == 0 {
                break;
            }
            let mut kept = 0;
            for (i, m) in meta[..n].iter().enumerate() {
                if m.truncated {
                    stats.rx_truncated += 1;
                    continue;
                }
                stats.rx_trains += u64::from(m.segment != 0 && m.segment < m.len);
                // A train after a dropped one moves down, so that item `k` is in area `k`.
                if kept != i {
                    rx.arena.copy_within(i * GRO_ROOM..i * GRO_ROOM + m.len, kept * GRO_ROOM);
                }
                rx.items[kept] = *m;
                kept += 1;
            }
            rx.n = kept;
            rx.next = 0;
            rx.pos = 0;
        }
        stats.rx += got as u64;
        Ok(got)
    }

    /// `Ok(None)`: batching is refused by this kernel, use the fallback.
    fn recv_mmsg(&mut self, bufs: &mut [PacketBuf]) -> io::Result<Option<usize>> {
        let mut areas: [&mut [u8]; MAX_BATCH] = std::array::from_fn(|_| &mut [][..]);
        let n = bufs.len().min(MAX_BATCH);
        for (area, buf) in areas.iter_mut().zip(bufs.iter_mut()) {
            *area = buf.recv_area_mut();
        }
        let mut meta = [Received::default(); MAX_BATCH];
        self.stats.rx_calls += 1;
        let got = match sys::recvmmsg(self.socket.as_fd(), &mut areas[..n], &mut meta[..n]) {
            Ok(got) => got,
            Err(e) if refused(&e) => {
                self.batching = false;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        for (buf, m) in bufs.iter_mut().zip(&meta[..got]) {
            self.commit(buf, m);
        }
        Ok(Some(got))
    }

    fn recv_one_by_one(&mut self, bufs: &mut [PacketBuf]) -> io::Result<usize> {
        let mut got = 0;
        for buf in bufs {
            self.stats.rx_calls += 1;
            let Some(m) = sys::recvfrom(self.socket.as_fd(), buf.recv_area_mut())? else { break };
            self.commit(buf, &m);
            got += 1;
        }
        Ok(got)
    }

    fn commit(&mut self, buf: &mut PacketBuf, m: &Received) {
        if m.truncated || buf.commit_recv(m.len).is_err() {
            self.stats.rx_truncated += 1;
            buf.truncate(0);
            return;
        }
        buf.meta_mut().set_remote(m.from.into());
    }

    /// Sends each `(bytes, destination)`, batched when it can, runs of equal-size datagrams to one peer as GSO
    /// trains. Returns how many went out; the others are counted in [`UdpStats::tx_dropped`] (a full socket buffer
    /// drops, as a NIC queue does).
    pub fn send_batch(&mut self, msgs: &[(&[u8], SocketAddrV4)]) -> usize {
        let mut sent = 0;
        for chunk in msgs.chunks(MAX_BATCH) {
            sent += if self.batching { self.send_chunk(chunk) } else { self.send_one_by_one(chunk) };
        }
        self.stats.tx += sent as u64;
        self.stats.tx_dropped += (msgs.len() - sent) as u64;
        sent
    }

    fn send_one_by_one(&mut self, msgs: &[(&[u8], SocketAddrV4)]) -> usize {
        let mut sent = 0;
        for &(bytes, dst) in msgs {
            self.stats.tx_calls += 1;
            match sys::sendto(self.socket.as_fd(), bytes, dst) {
                Ok(true) => sent += 1,
                Ok(false) => break,
                Err(_) => {}
            }
        }
        sent
    }

    /// Groups runs of datagrams to one destination, all of one size but the last (which may be shorter), into
    /// trains.
    fn plan(&self, msgs: &[(&[u8], SocketAddrV4)], plans: &mut [Plan; MAX_BATCH]) -> usize {
        let (mut n, mut i) = (0, 0);
        while i < msgs.len() {
            let (first, dst) = msgs[i];
            let seg = first.len();
            let mut j = i + 1;
            let mut len = seg;
            if self.gso && seg > 0 && seg <= usize::from(u16::MAX) {
                let flow = self.steering.flow_key(first);
                while j < msgs.len()
                    && j - i < MAX_SEGMENTS
                    && msgs[j].1 == dst
                    && msgs[j].0.len() <= seg
                    && self.steering.flow_key(msgs[j].0) == flow
                {
                    let l = msgs[j].0.len();
                    if len + l > MAX_TRAIN {
                        break;
                    }
                    len += l;
                    j += 1;
                    if l < seg {
                        break;
                    }
                }
            }
            plans[n] = if j - i >= 2 {
                Plan { first: i, count: j - i, seg: seg as u16 }
            } else {
                j = i + 1;
                Plan { first: i, count: 1, seg: 0 }
            };
            n += 1;
            i = j;
        }
        n
    }

    fn send_chunk(&mut self, msgs: &[(&[u8], SocketAddrV4)]) -> usize {
        let mut plans = [Plan::default(); MAX_BATCH];
        let n = self.plan(msgs, &mut plans);
        let mut parts: [&[u8]; MAX_BATCH] = [&[]; MAX_BATCH];
        for (part, (bytes, _)) in parts.iter_mut().zip(msgs) {
            *part = bytes;
        }
        let unspecified = SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0);
        let mut out = [sys::Gather { first: 0, count: 0, dst: unspecified, seg: 0 }; MAX_BATCH];
        for (o, p) in out.iter_mut().zip(&plans[..n]) {
            *o = sys::Gather { first: p.first, count: p.count, dst: msgs[p.first].1, seg: p.seg };
        }
        let (mut sent, mut k, mut calls, mut trains) = (0, 0, 0, 0);
        let mut refused_at = None;
        while k < n {
            calls += 1;
            match sys::sendmmsg(self.socket.as_fd(), &parts[..msgs.len()], &out[k..n]) {
                Ok(0) => break,
                Ok(m) => {
                    for p in &plans[k..k + m] {
                        sent += p.count;
                        trains += u64::from(p.seg != 0);
                    }
                    k += m;
                }
                Err(e) if refused(&e) => {
                    refused_at = Some(k);
                    break;
                }
                Err(e) if plans[k].seg != 0 && gso_refused(&e) => {
                    refused_at = Some(k);
                    break;
                }
                // The first message was refused (e.g. no route to that peer): skip it, go on with the rest.
                Err(_) => k += 1,
            }
        }
        self.stats.tx_calls += calls;
        self.stats.tx_trains += trains;
        if let Some(k) = refused_at {
            // Batching or GSO is refused by this kernel: never again; the rest goes the plain way.
            if plans[k].seg != 0 {
                self.gso = false;
            } else {
                self.batching = false;
            }
            let rest = &msgs[plans[k].first..];
            sent += if self.batching { self.send_chunk(rest) } else { self.send_one_by_one(rest) };
        }
        sent
    }
}

/// The kernel refuses a GSO train (no `UDP_SEGMENT` before 4.18, a device without checksum offload).
fn gso_refused(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP))
}

/// The kernel does not do this call at all (as opposed to failing this once).
fn refused(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP))
}

impl AsFd for UdpPort {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for UdpPort {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use tweed_packet::PoolConfig;

    /// Says that a check is skipped, in a line that shows (straight to the stderr descriptor, in one write:
    /// libtest hides `eprintln!` of passing tests), or fails the test under `TWEED_REQUIRE_ALL=1` (CI, whose
    /// kernel has UDP GSO and GRO).
    #[track_caller]
    fn skip(reason: &str) {
        let current = std::thread::current();
        let test = current.name().unwrap_or("test");
        assert!(
            std::env::var_os("TWEED_REQUIRE_ALL").is_none_or(|v| v != "1"),
            "{test}: {reason} (TWEED_REQUIRE_ALL=1 makes this a failure)"
        );
        let _ = io::Write::write_all(&mut io::stderr(), format!("skipped {test}: {reason}\n").as_bytes());
    }

    fn lo() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)
    }

    /// Receives with `max` per call until `batch` holds `want` datagrams, waiting for more (at most 2 s in all)
    /// when a call finds none: loopback delivers in the sender's system call only when the kernel does not defer
    /// its softirq work. Returns what each call gave, the empty ones included.
    fn recv_until(
        port: &mut UdpPort,
        pool: &mut Pool,
        batch: &mut Batch,
        max: usize,
        ingress: PortId,
        want: usize,
    ) -> Vec<usize> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut calls = Vec::new();
        while batch.len() < want {
            let n = port.recv_batch(pool, batch, max, ingress, calls.len() as u64).unwrap();
            calls.push(n);
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if n == 0 {
                assert!(!left.is_zero(), "{} of {want} datagrams after 2 s", batch.len());
                let _ = sys::poll_in(&[port.as_raw_fd()], &mut [false], left.as_millis().max(1) as i32).unwrap();
            }
        }
        calls
    }

    fn exchange(batching: bool) {
        let opts = UdpOptions { batching, reuse_port: false, gso: false, gro: false, ..UdpOptions::default() };
        let mut a = UdpPort::bind(lo(), opts).unwrap();
        let mut b = UdpPort::bind(lo(), opts).unwrap();
        let payloads: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 64 + usize::from(i)]).collect();
        let msgs: Vec<(&[u8], SocketAddrV4)> = payloads.iter().map(|p| (p.as_slice(), b.local_addr())).collect();
        assert_eq!(a.send_batch(&msgs), 40);
        let mut pool = Pool::new(PoolConfig { buffers: 64, ..PoolConfig::default() }).unwrap();
        let mut batch = Batch::new(64);
        // Usually [32, 8]: all forty are there at once. At most 32 a call, whatever has arrived.
        let mut calls = recv_until(&mut b, &mut pool, &mut batch, 32, PortId(9), 40);
        assert!(calls.iter().all(|&n| n <= 32), "{calls:?}");
        calls.push(b.recv_batch(&mut pool, &mut batch, 32, PortId(9), 7).unwrap());
        assert_eq!(calls.last(), Some(&0), "nothing more was sent");
        assert_eq!(batch.len(), 40);
        assert_eq!(pool.available(), 24, "unused buffers go back");
        for (buf, p) in batch.iter().zip(&payloads) {
            assert_eq!(buf.data(), &p[..]);
            assert_eq!(buf.meta().ingress, PortId(9));
            assert_eq!(buf.meta().remote().ip(), Ipv4Addr::LOCALHOST);
        }
        let s = b.stats();
        assert_eq!(s.rx, 40);
        if batching {
            assert_eq!(a.stats().tx_calls, 1);
            // One system call a call (3 when all forty were there at once).
            assert_eq!(s.rx_calls, calls.len() as u64, "{calls:?}");
        } else {
            assert_eq!(a.stats().tx_calls, 40);
            // One per datagram, plus one that found none in each call that came back short (42 when all forty
            // were there at once).
            let short = calls.iter().filter(|&&n| n < 32).count() as u64;
            assert_eq!(s.rx_calls, 40 + short, "{calls:?}");
        }
    }

    /// Runs of equal-size datagrams to one peer go as GSO trains (fewer calls), interleaved with other peers and
    /// sizes; every datagram arrives whole, in order per peer.
    #[test]
    fn gso_trains_arrive_as_datagrams_in_order() {
        let mut a = UdpPort::bind(lo(), UdpOptions { reuse_port: false, ..UdpOptions::default() }).unwrap();
        let mut b = UdpPort::bind(lo(), UdpOptions { reuse_port: false, ..UdpOptions::default() }).unwrap();
        let mut c = UdpPort::bind(lo(), UdpOptions { reuse_port: false, ..UdpOptions::default() }).unwrap();
        // 100 to b: runs of 1400-byte datagrams, a short one closing every tenth, and 20 to c in between.
        let mut payloads = Vec::new();
        for i in 0..120u32 {
            let to_c = i % 6 == 5;
            let len = if to_c {
                300
            } else if i % 10 == 9 {
                200
            } else {
                1400
            };
            let mut p = vec![0u8; len];
            p[..4].copy_from_slice(&i.to_be_bytes());
            payloads.push((p, if to_c { c.local_addr() } else { b.local_addr() }));
        }
        let msgs: Vec<(&[u8], SocketAddrV4)> = payloads.iter().map(|(p, d)| (p.as_slice(), *d)).collect();
        assert_eq!(a.send_batch(&msgs), 120);
        let mut pool = Pool::new(PoolConfig { buffers: 256, ..PoolConfig::default() }).unwrap();
        for (port, want) in [(&mut b, payloads.iter().filter(|(_, d)| *d != c.local_addr()).count()), (&mut c, 20)] {
            // A few datagrams per call: trains are cut across calls, and nothing is lost or reordered.
            let mut batch = Batch::new(256);
            recv_until(port, &mut pool, &mut batch, 7, PortId(1), want);
            assert_eq!(port.recv_batch(&mut pool, &mut batch, 7, PortId(1), 0).unwrap(), 0, "nothing more was sent");
            assert_eq!(batch.len(), want);
            let dst = port.local_addr();
            let expect: Vec<&Vec<u8>> = payloads.iter().filter(|(_, d)| *d == dst).map(|(p, _)| p).collect();
            for (buf, p) in batch.iter().zip(expect) {
                assert_eq!(buf.data(), &p[..]);
            }
            batch.clear_into(&mut pool);
        }
        let s = a.stats();
        assert_eq!((s.tx, s.tx_dropped), (120, 0));
        // A kernel without UDP GSO (before 4.18) or GRO (before 5.0) falls back: a skip that shows, a failure in
        // CI (`TWEED_REQUIRE_ALL=1`), so that a regression turning them off cannot pass as an old kernel.
        if !a.is_gso() || !b.is_gro() {
            skip(&format!("UDP GSO or GRO is off (gso {}, gro {}): trains not checked", a.is_gso(), b.is_gro()));
        }
        if a.is_gso() {
            assert!(s.tx_trains > 0 && s.tx_calls <= 2, "{s:?}");
        }
        if a.is_gso() && b.is_gro() {
            assert!(b.stats().rx_trains > 0, "{:?}", b.stats());
        }
        assert_eq!(b.stats().rx, 100);
    }

    /// A VXLAN payload of 100 bytes carrying a TCP packet from port `sport` to 5201.
    fn vxlan(sport: u16) -> Vec<u8> {
        let mut p = vec![0u8; 100];
        p[0] = 0x08;
        p[20..22].copy_from_slice(&[0x08, 0x00]);
        p[22] = 0x45;
        p[31] = 6;
        p[34..38].copy_from_slice(&[10, 244, 1, 2]);
        p[38..42].copy_from_slice(&[10, 244, 2, 3]);
        p[42..44].copy_from_slice(&sport.to_be_bytes());
        p[44..46].copy_from_slice(&5201u16.to_be_bytes());
        p
    }

    /// With inner-flow steering, a GSO train holds one inner flow: the receiving kernel steers a train whole.
    #[test]
    fn gso_trains_hold_one_inner_flow_when_steered() {
        let (a, b) = (vxlan(40000), vxlan(40001));
        assert_ne!(Steering::VXLAN.flow_key(&a), Steering::VXLAN.flow_key(&b));
        let payloads = [&a, &a, &a, &b, &b, &a];
        for (steering, trains) in [(Steering::Kernel, 1), (Steering::VXLAN, 2)] {
            let opts = UdpOptions { reuse_port: false, steering, ..UdpOptions::default() };
            let mut tx = UdpPort::bind(lo(), opts).unwrap();
            let mut rx = UdpPort::bind(lo(), opts).unwrap();
            if !tx.is_gso() {
                skip("UDP GSO is off: trains not checked");
                return;
            }
            let msgs: Vec<(&[u8], SocketAddrV4)> = payloads.iter().map(|p| (p.as_slice(), rx.local_addr())).collect();
            assert_eq!(tx.send_batch(&msgs), 6);
            // Kernel: one train of six; steered: [a a a] [b b] and a alone.
            assert_eq!(tx.stats().tx_trains, trains, "{steering:?}");
            let mut pool = Pool::new(PoolConfig { buffers: 16, ..PoolConfig::default() }).unwrap();
            let mut batch = Batch::new(16);
            recv_until(&mut rx, &mut pool, &mut batch, 16, PortId(1), 6);
            let got: Vec<&[u8]> = batch.iter().map(PacketBuf::data).collect();
            assert_eq!(got, payloads.iter().map(|p| p.as_slice()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn batched_exchange() {
        exchange(true);
    }

    #[test]
    fn unbatched_exchange() {
        exchange(false);
    }

    /// A datagram longer than a buffer is dropped and counted; the next one is received.
    #[test]
    fn oversized_datagram_is_a_counted_drop() {
        let mut a = UdpPort::bind(lo(), UdpOptions::default()).unwrap();
        let mut b = UdpPort::bind(lo(), UdpOptions::default()).unwrap();
        let big = vec![1u8; 4000];
        let small = vec![2u8; 10];
        assert_eq!(a.send_batch(&[(&big, b.local_addr()), (&small, b.local_addr())]), 2);
        let mut pool = Pool::new(PoolConfig { buffers: 8, ..PoolConfig::default() }).unwrap();
        let mut batch = Batch::new(8);
        recv_until(&mut b, &mut pool, &mut batch, 8, PortId(1), 1);
        assert_eq!(b.recv_batch(&mut pool, &mut batch, 8, PortId(1), 0).unwrap(), 0, "nothing more was sent");
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.get(0).map(PacketBuf::data), Some(&small[..]));
        assert_eq!(b.stats().rx_truncated, 1);
        assert_eq!(pool.available(), 7);
    }

    #[test]
    fn bind_conflict_names_the_address() {
        let a = UdpPort::bind(lo(), UdpOptions { reuse_port: false, ..UdpOptions::default() }).unwrap();
        let e = UdpPort::bind(a.local_addr(), UdpOptions { reuse_port: false, ..UdpOptions::default() }).unwrap_err();
        assert!(e.to_string().starts_with(&format!("cannot bind {}", a.local_addr())), "{e}");
    }
}
