//! The node's event loop: packets read from the TUN are sealed and sent to the peer, datagrams from the peer are
//! opened and written to the TUN. One thread, batches of pool buffers, sleeping in `poll` until either side has
//! input or the next counters line is due.

use std::fmt;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use tweed::io::{
    Device, DeviceKind, DeviceOptions, UdpOptions, UdpPort, install_signal_handlers, stats_requested, stop_requested,
};
use tweed::packet::{Batch, Pool, PoolConfig, PortId};

use crate::seal::{HEADER_LEN, Receiver, Reject, Sender, TAG_LEN};
use crate::{Args, Result};

/// Packets or datagrams taken from one side per round.
const BURST: usize = 64;
/// The ingress id of the underlay socket in the buffers' metadata.
const UNDERLAY: PortId = PortId(1);

/// What the node has done since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Packets read from the TUN, sealed and sent to the peer.
    pub(crate) sent: u64,
    /// Datagrams opened and written to the TUN.
    pub(crate) delivered: u64,
    /// Datagrams refused: too short to be sealed ones.
    pub(crate) truncated: u64,
    /// Datagrams refused: sealed by another id than the peer's.
    pub(crate) wrong_sender: u64,
    /// Datagrams refused: counter seen already or too old.
    pub(crate) replayed: u64,
    /// Datagrams refused: the tag did not match (another key, or changed on the way).
    pub(crate) unauthenticated: u64,
    /// Packets from the TUN not sent: not IPv4, too long to seal, or the socket's buffer was full.
    pub(crate) tx_dropped: u64,
    /// Opened packets not delivered: the TUN's queue was full or it refused the write.
    pub(crate) rx_dropped: u64,
}

impl Counters {
    fn refused(&mut self, why: Reject) {
        let n = match why {
            Reject::Truncated => &mut self.truncated,
            Reject::WrongSender => &mut self.wrong_sender,
            Reject::Replayed => &mut self.replayed,
            Reject::Unauthenticated => &mut self.unauthenticated,
        };
        *n += 1;
    }
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "counters sent={} delivered={} truncated={} wrong_sender={} replayed={} unauthenticated={} \
             tx_dropped={} rx_dropped={}",
            self.sent,
            self.delivered,
            self.truncated,
            self.wrong_sender,
            self.replayed,
            self.unauthenticated,
            self.tx_dropped,
            self.rx_dropped
        )
    }
}

/// Runs the node until SIGTERM or SIGINT.
pub(crate) fn run(args: &Args) -> Result<()> {
    install_signal_handlers()?;
    let tun = Device::create(&DeviceOptions::new(&args.tun, DeviceKind::Tun).mtu(args.mtu))?;
    tun.set_ipv4(args.address)?;
    for route in &args.routes {
        tun.add_route(*route)?;
    }
    let mut udp = UdpPort::bind(args.listen, UdpOptions::default())?;
    let mut pool = Pool::new(PoolConfig::default())?;
    let (mut batch, mut counters) = (Batch::new(BURST), Counters::default());
    let (sender, receiver) = (Sender::new(args.id), Receiver::new(args.peer_id));
    println!(
        "ready: tun {} {} mtu {}, udp {} to {}, id {} peer {}",
        args.tun, args.address, args.mtu, args.listen, args.peer, args.id, args.peer_id
    );
    let every = Duration::from_millis(args.stats_ms.max(1));
    let (mut printed, mut next_print) = (counters, Instant::now() + every);
    while !stop_requested() {
        let wait = next_print.saturating_duration_since(Instant::now());
        let timeout = Timespec::try_from(wait).unwrap_or(Timespec { tv_sec: 0, tv_nsec: 0 });
        let mut fds = [PollFd::new(&tun, PollFlags::IN), PollFd::new(&udp, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            // A signal: the loop's condition says whether it was a stop.
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let (tun_ready, udp_ready) = (!fds[0].revents().is_empty(), !fds[1].revents().is_empty());
        if tun_ready {
            seal_from_tun(&tun, &mut udp, &mut pool, &mut batch, &sender, args, &mut counters)?;
        }
        if udp_ready {
            open_to_tun(&tun, &mut udp, &mut pool, &mut batch, &receiver, args, &mut counters)?;
        }
        if stats_requested() {
            println!("{counters}");
            printed = counters;
        }
        if Instant::now() >= next_print {
            if counters != printed {
                println!("{counters}");
                printed = counters;
            }
            next_print = Instant::now() + every;
        }
    }
    println!("{counters}");
    println!("stopped");
    Ok(())
}

/// Reads up to a burst of packets from the TUN, seals each in its buffer (header pushed in front, tag room
/// behind) and sends them to the peer in one batch.
fn seal_from_tun(
    tun: &Device,
    udp: &mut UdpPort,
    pool: &mut Pool,
    batch: &mut Batch,
    sender: &Sender,
    args: &Args,
    counters: &mut Counters,
) -> Result<()> {
    while !batch.is_full() {
        let Some(mut buf) = pool.get() else { break };
        if !tun.recv(&mut buf)? {
            pool.put(buf);
            break;
        }
        // The tunnel carries IPv4 only; the kernel may still write something else into the TUN.
        let ipv4 = buf.data().first().is_some_and(|b| b >> 4 == 4);
        let sealed = ipv4
            && buf.push_front(HEADER_LEN).is_ok()
            && buf.push_back(TAG_LEN).is_ok()
            && sender.seal(&args.key, buf.data_mut()).is_some();
        if !sealed {
            counters.tx_dropped += 1;
            pool.put(buf);
            continue;
        }
        if let Err(buf) = batch.push(buf) {
            // Not reached: the loop stops when the batch is full.
            pool.put(buf);
        }
    }
    let mut msgs = [(&[][..], args.peer); BURST];
    let n = batch.len().min(BURST);
    for (msg, buf) in msgs.iter_mut().zip(batch.iter()) {
        msg.0 = buf.data();
    }
    let sent = udp.send_batch(&msgs[..n]) as u64;
    counters.sent += sent;
    counters.tx_dropped += batch.len() as u64 - sent;
    batch.clear_into(pool);
    Ok(())
}

/// Receives up to a burst of datagrams, opens each in its buffer and writes the packet to the TUN.
fn open_to_tun(
    tun: &Device,
    udp: &mut UdpPort,
    pool: &mut Pool,
    batch: &mut Batch,
    receiver: &Receiver,
    args: &Args,
    counters: &mut Counters,
) -> Result<()> {
    udp.recv_batch(pool, batch, BURST, UNDERLAY, 0)?;
    for buf in batch.iter_mut() {
        if let Err(why) = receiver.open(&args.key, buf.data_mut()) {
            counters.refused(why);
            continue;
        }
        // `open` succeeded, so the datagram holds a header and a tag.
        let _ = buf.pull_front(HEADER_LEN);
        let _ = buf.pull_back(TAG_LEN);
        // A full queue or a refused write (the TUN is down) loses this packet only, as a full NIC queue does.
        if tun.send(buf.data()).unwrap_or(false) {
            counters.delivered += 1;
        } else {
            counters.rx_dropped += 1;
        }
    }
    batch.clear_into(pool);
    Ok(())
}
