//! The node on tweed's driver: a routed tweed node (no bridge) whose only port is the TUN, with the [`Psk`]
//! encapsulation to its one peer, run by `tweed::io::Driver<Psk>` over the TUN and the UDP socket. The driver
//! sleeps until either side has input, the node has timers due (`Node::poll_at`) or the next counters line is
//! (what `run`'s hook asks for), reads both into pool buffers, runs them through the node and writes each output
//! where its verdict says.

use std::fmt;
use std::net::SocketAddrV4;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant as Clock};

use tweed::io::{Device, DeviceKind, DeviceOptions, Driver, DriverConfig, Signals, Stop, UdpOptions, UdpPort};
use tweed::overlay::DropReason;

use crate::encap::{Psk, SOCKET, TUN, peer_config, site_node};
use crate::{Args, Result};

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
    let psk = Psk::new(args.id, args.key.clone(), args.port);
    let peer = peer_config(args.peer_site, args.peer, args.peer_id);
    let node = site_node(psk, args.underlay, args.address.trunc(), peer)?;
    let mtu = node.inner_mtu();
    let tun = Device::create(&DeviceOptions::new(&args.tun, DeviceKind::Tun).mtu(u32::from(mtu)))?;
    // The TUN holds one address of the site: the kernel routes only the peer's site into it, and the node routes
    // the whole site back out of it.
    tun.set_ipv4(ipnet::Ipv4Net::new(args.address.addr(), 32)?)?;
    tun.add_route(args.peer_site)?;
    let udp = UdpPort::bind(SocketAddrV4::new(args.underlay, args.port), UdpOptions::default())?;
    let mut driver: Driver<Psk> = Driver::empty(node, DriverConfig::default().buffers(1024))?;
    driver.add_port(TUN, Box::new(tun))?;
    driver.add_port(SOCKET, Box::new(udp))?;
    // The signals go to a thread of tweed's, which turns them into calls: a stop, or a request for the counters
    // (which wakes the driver, so that its hook prints them at once).
    let (stop, usr1) = (Stop::new()?, Arc::new(AtomicBool::new(false)));
    driver.set_stop(stop.clone())?;
    let (requested, waker) = (Arc::clone(&usr1), driver.waker());
    let _signals = Signals::start(stop, move || {
        requested.store(true, Ordering::Relaxed);
        waker.wake();
    })?;
    let mut report = Report::default();
    println!(
        "ready: tun {} {} mtu {mtu}, udp {}:{} to {} ({}), id {} peer {}",
        args.tun, args.address, args.underlay, args.port, args.peer, args.peer_site, args.id, args.peer_id
    );
    println!("{report}");
    let every = Duration::from_millis(args.stats_ms.max(1));
    let (mut printed, mut next_print) = (report, Clock::now() + every);
    driver.run(|d| {
        report = report_of(d);
        if usr1.swap(false, Ordering::Relaxed) || (Clock::now() >= next_print && report != printed) {
            println!("{report}");
            printed = report;
        }
        if Clock::now() >= next_print {
            next_print = Clock::now() + every;
        }
        Some(next_print.saturating_duration_since(Clock::now()))
    })?;
    println!("{}", report_of(&driver));
    let mut drops = String::from("drops");
    for (reason, n) in driver.node().counters().nonzero_drops() {
        drops.push_str(&format!(" {reason}={n}"));
    }
    println!("{drops}");
    println!("stopped");
    Ok(())
}

/// The node's and the driver's counters as the report's line.
fn report_of(d: &Driver<Psk>) -> Report {
    let (c, s) = (d.node().counters(), d.stats());
    let (unauthenticated, replayed) = (c.drop_count(DropReason::Unauthenticated), c.drop_count(DropReason::Replayed));
    Report {
        sent: c.to_peer,
        delivered: c.to_port,
        unauthenticated,
        replayed,
        other_drops: c.total_drops() - unauthenticated - replayed,
        tx_dropped: s.tx_underlay_dropped,
        rx_dropped: s.tx_tun_dropped,
    }
}
