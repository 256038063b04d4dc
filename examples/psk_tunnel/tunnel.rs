//! The node and its event loop: a routed tweed node (no bridge) whose only port is the TUN, with the [`Psk`]
//! encapsulation to its one peer; the loop reads the TUN and the UDP socket into pool buffers, runs them through
//! the node, and writes each output where its verdict says. One thread, sleeping in `poll` until either side has
//! input, the node has timers due (`Node::poll_at`) or the next counters line is.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant as Clock};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use tweed::io::{Device, DeviceKind, DeviceOptions, Signals, Stop, UdpOptions, UdpPort};
use tweed::overlay::{DropReason, Instant, Outputs, Verdict};
use tweed::packet::{Batch, Pool, PoolConfig};

use crate::encap::{Psk, SOCKET, TUN, peer_config, site_node};
use crate::{Args, Result};

/// Packets or datagrams taken from one side per round.
const BURST: usize = 64;

/// What the node has done, as one line: what the example's tests read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Report {
    /// Packets from the TUN sealed for the peer.
    sent: u64,
    /// Packets to the TUN (the peer's, opened).
    delivered: u64,
    /// Datagrams that failed authentication: another key, or changed on the way.
    unauthenticated: u64,
    /// Datagrams whose counter was seen already, or too old.
    replayed: u64,
    /// Every other drop of the node (no route, a datagram from no known sender, a malformed one...).
    other_drops: u64,
    /// Datagrams the socket did not send.
    tx_dropped: u64,
    /// Packets the TUN did not take.
    rx_dropped: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "counters sent={} delivered={} unauthenticated={} replayed={} other_drops={} tx_dropped={} rx_dropped={}",
            self.sent,
            self.delivered,
            self.unauthenticated,
            self.replayed,
            self.other_drops,
            self.tx_dropped,
            self.rx_dropped
        )
    }
}

/// Runs the node until SIGTERM or SIGINT.
pub(crate) fn run(args: &Args) -> Result<()> {
    // The signals go to a thread of tweed's, which turns them into calls: a stop, or a request for the counters.
    // The loop sees either when it next wakes, within `--stats-ms`.
    let (stop, usr1) = (Stop::new()?, Arc::new(AtomicBool::new(false)));
    let requested = Arc::clone(&usr1);
    let _signals = Signals::start(stop.clone(), move || requested.store(true, Ordering::Relaxed))?;
    let psk = Psk::new(args.id, args.key.clone(), args.port);
    let peer = peer_config(args.peer_site, args.peer, args.peer_id);
    let mut node = site_node(psk, args.underlay, args.address.trunc(), peer)?;
    let mtu = node.inner_mtu();
    let tun = Device::create(&DeviceOptions::new(&args.tun, DeviceKind::Tun).mtu(u32::from(mtu)))?;
    // The TUN holds one address of the site: the kernel routes only the peer's site into it, and the node routes
    // the whole site back out of it.
    tun.set_ipv4(ipnet::Ipv4Net::new(args.address.addr(), 32)?)?;
    tun.add_route(args.peer_site)?;
    let mut udp = UdpPort::bind(SocketAddrV4::new(args.underlay, args.port), UdpOptions::default())?;
    let mut pool = Pool::new(PoolConfig::default())?;
    let (mut batch, mut out) = (Batch::new(2 * BURST), Outputs::new(4 * BURST));
    let mut report = Report::default();
    println!(
        "ready: tun {} {} mtu {mtu}, udp {}:{} to {} ({}), id {} peer {}",
        args.tun, args.address, args.underlay, args.port, args.peer, args.peer_site, args.id, args.peer_id
    );
    println!("{report}");
    let start = Clock::now();
    let now = || Instant::from_nanos(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
    let every = Duration::from_millis(args.stats_ms.max(1));
    let (mut printed, mut next_print) = (report, Clock::now() + every);
    while !stop.is_stopped() {
        let mut wait = next_print.saturating_duration_since(Clock::now());
        if let Some(at) = node.poll_at() {
            wait = wait.min(Duration::from_nanos(at.as_nanos().saturating_sub(now().as_nanos())));
        }
        let timeout = Timespec::try_from(wait).unwrap_or(Timespec { tv_sec: 0, tv_nsec: 0 });
        let mut fds = [PollFd::new(&tun, PollFlags::IN), PollFd::new(&udp, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        if !fds[0].revents().is_empty() {
            read_tun(&tun, &mut pool, &mut batch)?;
        }
        if !fds[1].revents().is_empty() {
            let t = now().as_nanos();
            udp.recv_batch(&mut pool, &mut batch, BURST, SOCKET, t)?;
        }
        // Also with nothing read: the node's timers may be due.
        loop {
            node.process(now(), &mut pool, &mut batch, &mut out);
            write_out(&tun, &mut udp, &mut pool, &mut out, &mut report);
            if batch.is_empty() {
                break;
            }
        }
        let c = node.counters();
        let (unauthenticated, replayed) =
            (c.drop_count(DropReason::Unauthenticated), c.drop_count(DropReason::Replayed));
        report = Report {
            sent: c.to_peer,
            delivered: c.to_port,
            unauthenticated,
            replayed,
            other_drops: c.total_drops() - unauthenticated - replayed,
            tx_dropped: udp.stats().tx_dropped,
            ..report
        };
        if usr1.swap(false, Ordering::Relaxed) || (Clock::now() >= next_print && report != printed) {
            println!("{report}");
            printed = report;
        }
        if Clock::now() >= next_print {
            next_print = Clock::now() + every;
        }
    }
    println!("{report}");
    let mut drops = String::from("drops");
    for (reason, n) in node.counters().nonzero_drops() {
        drops.push_str(&format!(" {reason}={n}"));
    }
    println!("{drops}");
    println!("stopped");
    Ok(())
}

/// Reads up to a burst of IP packets from the TUN into the batch, as input of the TUN's port.
fn read_tun(tun: &Device, pool: &mut Pool, batch: &mut Batch) -> Result<()> {
    for _ in 0..BURST {
        if batch.is_full() {
            break;
        }
        let Some(mut buf) = pool.get() else { break };
        if !tun.recv(&mut buf)? {
            pool.put(buf);
            break;
        }
        buf.meta_mut().ingress = TUN;
        if let Err(buf) = batch.push(buf) {
            // Not reached: the loop stops when the batch is full.
            pool.put(buf);
        }
    }
    Ok(())
}

/// Sends what the node routed to the peer in one batch, writes what it routed to the TUN, gives every buffer
/// back to the pool (the node counted its drops).
fn write_out(tun: &Device, udp: &mut UdpPort, pool: &mut Pool, out: &mut Outputs, report: &mut Report) {
    let mut msgs = [(&[][..], SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)); 4 * BURST];
    let mut n = 0;
    for (buf, verdict) in out.as_slice() {
        match *verdict {
            Verdict::Underlay { dst: SocketAddr::V4(dst), payload_offset } if n < msgs.len() => {
                msgs[n] = (buf.data().get(usize::from(payload_offset)..).unwrap_or_default(), dst);
                n += 1;
            }
            // A full queue or a refused write (the TUN is down) loses this packet only, as a NIC queue does.
            Verdict::Port(TUN) => report.rx_dropped += u64::from(!tun.send(buf.data()).unwrap_or(false)),
            _ => {}
        }
    }
    udp.send_batch(&msgs[..n]);
    out.recycle(pool);
}
