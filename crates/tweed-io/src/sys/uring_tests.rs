//! `TapReader` against a real TAP in a network namespace of its own, fed by a UDP socket in that namespace
//! (root; skipped otherwise, failed under `TWEED_REQUIRE_ALL=1`).

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::TapReader;
use crate::sys;
use crate::{Device, DeviceKind, DeviceOptions};

/// The port the test datagrams go to: how a frame of ours is told from the kernel's own (IPv6 router
/// solicitations and the like).
const PORT: u16 = 47_999;
const PEER: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

#[track_caller]
fn skip(reason: &str) {
    assert!(
        std::env::var_os("TWEED_REQUIRE_ALL").is_none_or(|v| v != "1"),
        "{reason} (TWEED_REQUIRE_ALL=1 makes this a failure)"
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("skipped: {reason}\n").as_bytes());
}

/// A network namespace of the test's own, deleted on drop (and with it the TAP).
struct Netns(String);

impl Netns {
    fn new() -> Option<Self> {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("twu{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let ok = Command::new("ip").args(["netns", "add", &name]).status().is_ok_and(|s| s.success());
        ok.then_some(Self(name))
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.0)
    }

    fn ip(&self, args: &[&str]) {
        let status = Command::new("ip").args(["-n", &self.0]).args(args).status().expect("ip runs");
        assert!(status.success(), "ip -n {} {args:?}", self.0);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A TAP `tu0` in a new namespace with 10.99.0.1/24 and a permanent neighbour 10.99.0.2 (no ARP), and a UDP
/// socket in that namespace whose datagrams to 10.99.0.2 come out of the TAP as frames.
fn world() -> Option<(Netns, Device, UdpSocket)> {
    if !sys::has_net_admin() {
        skip("needs CAP_NET_ADMIN (a TAP in a network namespace)");
        return None;
    }
    let Some(ns) = Netns::new() else {
        skip("`ip netns add` failed");
        return None;
    };
    let tap = Device::create(&DeviceOptions::new("tu0", DeviceKind::Tap).netns(ns.path()).mtu(1500)).expect("TAP");
    ns.ip(&["addr", "add", "10.99.0.1/24", "dev", "tu0"]);
    ns.ip(&["neigh", "add", "10.99.0.2", "lladdr", "02:00:00:00:00:02", "dev", "tu0", "nud", "permanent"]);
    ns.ip(&["link", "set", "tu0", "txqueuelen", "10000"]);
    let sock = sys::in_netns(&ns.path(), || UdpSocket::bind("10.99.0.1:0")).expect("socket in the namespace");
    Some((ns, tap, sock))
}

/// The sequence number of a frame that is one of our datagrams (Ethernet/IPv4/UDP to `PORT`), else `None`.
fn seq(frame: &[u8]) -> Option<u32> {
    let udp = frame.get(34..)?;
    (frame.get(12..14)? == [0x08, 0x00] && frame[23] == 17 && u16::from_be_bytes([udp[2], udp[3]]) == PORT)
        .then(|| u32::from_be_bytes([udp[8], udp[9], udp[10], udp[11]]))
}

/// 300 datagrams queued on the TAP come out of the reader whole, in order, 32 reads per system call.
#[test]
fn reads_many_frames_per_system_call_in_order() {
    let Some((_ns, tap, sock)) = world() else { return };
    let to = SocketAddrV4::new(PEER, PORT);
    for i in 0u32..300 {
        sock.send_to(&i.to_be_bytes(), to).expect("send");
    }
    let mut reader = TapReader::new(std::os::fd::AsFd::as_fd(&tap), 32, 2048).expect("io_uring");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while got.len() < 300 && Instant::now() < deadline {
        reader.read_batch(64, |f| got.extend(seq(f))).expect("read_batch");
    }
    assert_eq!(got, (0..300).collect::<Vec<u32>>(), "every datagram, in order");
    // 300 frames (and a few of the kernel's own) in batches of 32: ten calls, give or take the kernel's frames.
    assert!(reader.enters() <= 13, "{} io_uring_enter calls for 300 frames", reader.enters());
    // Nothing of ours waiting: no frame of ours, and no error.
    assert!(reader.read_batch(64, |f| assert_eq!(seq(f), None)).is_ok());
    // `max` bounds a batch.
    for i in 0u32..10 {
        sock.send_to(&i.to_be_bytes(), to).expect("send");
    }
    std::thread::sleep(Duration::from_millis(50));
    let mut first = Vec::new();
    assert!(reader.read_batch(4, |f| first.extend(seq(f))).expect("read_batch") <= 4);
    assert!(first.len() <= 4 && first.iter().copied().eq(0..first.len() as u32), "{first:?}");
}

/// Reads wait in the ring while the TAP is empty; frames queued later complete them, which makes the ring's
/// descriptor readable: what a driver polls. Dropping the reader with reads waiting cancels them.
#[test]
fn waiting_reads_complete_when_frames_come() {
    let Some((_ns, tap, sock)) = world() else { return };
    let mut reader = TapReader::new(std::os::fd::AsFd::as_fd(&tap), 16, 2048).expect("io_uring");
    // Whatever the kernel sent on its own so far; then the reads wait.
    while reader.read_batch(16, |_| {}).expect("read_batch") > 0 {}
    let mut ready = [false];
    assert_eq!(sys::poll_in(&[reader.ring_fd().as_raw_fd()], &mut ready, 0).expect("poll"), 0, "nothing yet");
    for i in 0u32..5 {
        sock.send_to(&i.to_be_bytes(), SocketAddrV4::new(PEER, PORT)).expect("send");
    }
    assert_eq!(sys::poll_in(&[reader.ring_fd().as_raw_fd()], &mut ready, 2000).expect("poll"), 1, "completions");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while got.len() < 5 && Instant::now() < deadline {
        reader.read_batch(16, |f| got.extend(seq(f))).expect("read_batch");
    }
    assert_eq!(got, [0, 1, 2, 3, 4]);
    drop(reader);
    // The TAP still works for a plain read after the reader's reads were cancelled.
    sock.send_to(&9u32.to_be_bytes(), SocketAddrV4::new(PEER, PORT)).expect("send");
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut seen = None;
    while seen.is_none() && Instant::now() < deadline {
        if let Ok(n) = sys::read(std::os::fd::AsFd::as_fd(&tap), &mut buf) {
            seen = seq(&buf[..n]);
        }
    }
    assert_eq!(seen, Some(9));
}

/// A blocking descriptor is refused (its reads would sit in the ring), and so are sizes the ring cannot take.
#[test]
fn refuses_blocking_descriptors_and_bad_sizes() {
    let blocking = UdpSocket::bind("127.0.0.1:0").expect("socket");
    let fd = std::os::fd::AsFd::as_fd(&blocking);
    assert_eq!(TapReader::new(fd, 8, 2048).map(|_| ()).map_err(|e| e.kind()), Err(std::io::ErrorKind::InvalidInput));
    blocking.set_nonblocking(true).expect("non-blocking");
    assert_eq!(TapReader::new(fd, 0, 2048).map(|_| ()).map_err(|e| e.kind()), Err(std::io::ErrorKind::InvalidInput));
    assert_eq!(TapReader::new(fd, 8, 0).map(|_| ()).map_err(|e| e.kind()), Err(std::io::ErrorKind::InvalidInput));
}

/// The micro-benchmark: a sender thread blasts 64-byte datagrams into the TAP for a second while the reader
/// drains it (wait for input with `poll`, then read until nothing is left), once with a `read` per frame and
/// once with `TapReader`; prints frames per second and system calls per frame of each.
/// `cargo test -p tweed-io --release --lib uring -- --ignored --nocapture`
#[test]
#[ignore = "a benchmark: run by hand"]
fn bench_tap_reads() {
    let Some((_ns, tap, sock)) = world() else { return };
    let to = SocketAddrV4::new(PEER, PORT);
    let fd = std::os::fd::AsFd::as_fd(&tap);
    for (name, uring) in [("read loop", false), ("io_uring x64", true), ("read loop", false), ("io_uring x64", true)] {
        let stop = AtomicBool::new(false);
        let (frames, calls, secs, cpu) = std::thread::scope(|s| {
            s.spawn(|| {
                let payload = [0u8; 64];
                while !stop.load(Ordering::Relaxed) {
                    let _ = sock.send_to(&payload, to);
                }
            });
            // Only the io_uring round has a reader: its reads wait in the ring and would take the frames.
            let mut reader = uring.then(|| TapReader::new(fd, 64, 2048).expect("io_uring"));
            let mut buf = [0u8; 2048];
            let (mut frames, mut calls) = (0u64, 0u64);
            let cpu0 = thread_cpu_ns();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(1) {
                let wait = reader.as_ref().map_or(std::os::fd::AsRawFd::as_raw_fd(&tap), |r| r.ring_fd().as_raw_fd());
                let mut ready = [false];
                calls += 1;
                if sys::poll_in(&[wait], &mut ready, 100).unwrap_or(0) == 0 {
                    continue;
                }
                loop {
                    let n = if let Some(r) = reader.as_mut() {
                        let before = r.enters();
                        let n = r.read_batch(64, |_| {}).unwrap_or(0);
                        calls += r.enters() - before;
                        n as u64
                    } else {
                        calls += 1;
                        u64::from(sys::read(fd, &mut buf).is_ok())
                    };
                    if n == 0 {
                        break;
                    }
                    frames += n;
                }
            }
            let secs = t0.elapsed().as_secs_f64();
            let cpu = thread_cpu_ns() - cpu0;
            stop.store(true, Ordering::Relaxed);
            (frames, calls, secs, cpu)
        });
        let pps = frames as f64 / secs;
        let per = calls as f64 / frames.max(1) as f64;
        let ns = cpu as f64 / frames.max(1) as f64;
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!(
                "{name:<13} {pps:>10.0} frames/s  {per:.3} system calls and {ns:.0} ns of the reader's CPU per frame\n"
            )
            .as_bytes(),
        );
    }
}

/// The calling thread's time on a CPU so far, in nanoseconds (its schedstat), kernel work done for it included.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
