//! Frames crafted by hand: a packet socket on an interface inside a namespace ([`RawSocket`]), to inject what a
//! hostile pod sends and to capture what reaches another, and builders for the frames ([`arp`], [`ipv4_udp`]).

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use tweed_wire::ethernet::MacAddr;

use super::{Error, NETNS_DIR, NetNs, Result};

/// An AF_PACKET socket bound to one interface of a namespace (made on a thread that entered the namespace; the
/// socket stays in it): every frame the interface sends or receives comes up, every frame written goes out of it
/// as if the namespace's stack had sent it.
#[derive(Debug)]
pub struct RawSocket {
    fd: OwnedFd,
    what: String,
}

fn last_os_error(what: &str) -> Error {
    Error::Spawn { cmd: what.to_owned(), source: io::Error::last_os_error() }
}

impl RawSocket {
    /// Opens a packet socket on `ifname` inside `ns`.
    pub fn open(ns: &NetNs, ifname: &str) -> Result<Self> {
        let what = format!("packet socket on {ifname} in {}", ns.name());
        let path = std::path::Path::new(NETNS_DIR).join(ns.name());
        let (w, ifname) = (what.clone(), ifname.to_owned());
        let fd = thread::spawn(move || open_in(&path, &ifname, &w))
            .join()
            .unwrap_or_else(|_| Err(Error::Spawn { cmd: what.clone(), source: io::Error::other("thread panicked") }))?;
        Ok(Self { fd, what })
    }

    /// Sends one frame; `false` when the interface's queue is full (the frame is lost), an error otherwise.
    pub fn send(&self, frame: &[u8]) -> Result<bool> {
        // SAFETY: `frame` is a valid buffer of its length for the call; the descriptor is ours.
        #[allow(unsafe_code)]
        let r = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), libc::MSG_DONTWAIT) };
        if r >= 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS) {
            Ok(false)
        } else {
            Err(Error::Spawn { cmd: format!("send on the {}", self.what), source: e })
        }
    }

    /// Receives one frame into `buf` (its length), waiting at most `timeout`; `None` when none came.
    pub fn recv(&self, buf: &mut [u8], timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            // SAFETY: `buf` is a valid writable buffer of its length for the call; the descriptor is ours.
            #[allow(unsafe_code)]
            let r = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            if let Ok(n) = usize::try_from(r) {
                return Some(n);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let ms = (deadline - now).as_millis().clamp(1, 100) as libc::c_int;
            let mut p = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid `pollfd` for the call.
            #[allow(unsafe_code)]
            let _ = unsafe { libc::poll(&raw mut p, 1, ms) };
        }
    }

    /// Reads frames until none arrives for `quiet`, or `max` has passed; calls `each` on every one.
    pub fn drain(&self, quiet: Duration, max: Duration, mut each: impl FnMut(&[u8])) {
        let mut buf = vec![0u8; 65536];
        let end = Instant::now() + max;
        while Instant::now() < end {
            match self.recv(&mut buf, quiet) {
                Some(n) => each(&buf[..n]),
                None => return,
            }
        }
    }
}

fn open_in(path: &std::path::Path, ifname: &str, what: &str) -> Result<OwnedFd> {
    let ns = File::open(path).map_err(|source| Error::Spawn { cmd: what.to_owned(), source })?;
    // SAFETY: setns(2) on a descriptor we own; it moves only this (short-lived) thread into the namespace.
    #[allow(unsafe_code)]
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(last_os_error(what));
    }
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2); the result is checked.
    #[allow(unsafe_code)]
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, i32::from(proto)) };
    if fd < 0 {
        return Err(last_os_error(what));
    }
    // SAFETY: a descriptor we just created and own.
    #[allow(unsafe_code)]
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let name = std::ffi::CString::new(ifname).map_err(|e| Error::Spawn { cmd: what.to_owned(), source: e.into() })?;
    // SAFETY: a NUL-terminated name, valid for the call.
    #[allow(unsafe_code)]
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(last_os_error(what));
    }
    // SAFETY: `sockaddr_ll` is plain integers; all zeroes is valid.
    #[allow(unsafe_code)]
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = index as i32;
    // SAFETY: `sll` is a valid `sockaddr_ll` of the length passed.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const sll).cast::<libc::sockaddr>(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(last_os_error(what));
    }
    // A deep receive queue, so that a capture running beside a flood loses nothing it is asked about.
    let bytes: libc::c_int = 8 << 20;
    // SAFETY: SO_RCVBUFFORCE takes an int; `bytes` lives for the call.
    #[allow(unsafe_code)]
    let _ = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&raw const bytes).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    Ok(fd)
}

// ---------------------------------------------------------------------------------------------------------------
// Frames

/// EtherType of ARP.
pub const ETH_ARP: u16 = 0x0806;
/// EtherType of IPv4.
pub const ETH_IPV4: u16 = 0x0800;

/// An Ethernet header followed by `payload`.
pub fn ethernet(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(dst.as_bytes());
    f.extend_from_slice(src.as_bytes());
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ARP frame (`op` 1: request, 2: reply) from `src` to `dst` (Ethernet), sender `sha`/`spa`, target
/// `tha`/`tpa`.
#[allow(clippy::too_many_arguments)]
pub fn arp(dst: MacAddr, src: MacAddr, op: u16, sha: MacAddr, spa: Ipv4Addr, tha: MacAddr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0, 1, 8, 0, 6, 4];
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(sha.as_bytes());
    p.extend_from_slice(&spa.octets());
    p.extend_from_slice(tha.as_bytes());
    p.extend_from_slice(&tpa.octets());
    ethernet(dst, src, ETH_ARP, &p)
}

/// The Internet checksum of `bytes`.
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Fields of an IPv4 UDP datagram for [`ipv4_udp`].
#[derive(Clone, Copy, Debug)]
pub struct Udp {
    /// IPv4 source.
    pub src: Ipv4Addr,
    /// IPv4 destination.
    pub dst: Ipv4Addr,
    /// Time to live.
    pub ttl: u8,
    /// UDP source port.
    pub sport: u16,
    /// UDP destination port.
    pub dport: u16,
}

impl Udp {
    /// `src` to `dst`, TTL 64, ports 40000 to 9 (discard).
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        Self { src, dst, ttl: 64, sport: 40000, dport: 9 }
    }
}

/// An Ethernet frame from `src` to `dst` carrying an IPv4 UDP datagram (DF set, UDP checksum 0) with `payload`.
pub fn ipv4_udp(dst: MacAddr, src: MacAddr, udp: Udp, payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&(total as u16).to_be_bytes());
    ip.extend_from_slice(&[0x12, 0x34, 0x40, 0, udp.ttl, 17, 0, 0]);
    ip.extend_from_slice(&udp.src.octets());
    ip.extend_from_slice(&udp.dst.octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&udp.sport.to_be_bytes());
    ip.extend_from_slice(&udp.dport.to_be_bytes());
    ip.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 0]);
    ip.extend_from_slice(payload);
    ethernet(dst, src, ETH_IPV4, &ip)
}

/// The destination MAC of a frame.
pub fn dst_mac(frame: &[u8]) -> Option<MacAddr> {
    MacAddr::from_bytes(frame.get(0..6)?)
}

/// The source MAC of a frame.
pub fn src_mac(frame: &[u8]) -> Option<MacAddr> {
    MacAddr::from_bytes(frame.get(6..12)?)
}

/// True when `haystack` contains `needle` (a marker in a payload).
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The ARP sender (MAC, IP) of an ARP frame.
pub fn arp_sender(frame: &[u8]) -> Option<(MacAddr, Ipv4Addr)> {
    if frame.get(12..14)? != ETH_ARP.to_be_bytes() {
        return None;
    }
    let mac = MacAddr::from_bytes(frame.get(22..28)?)?;
    let ip: [u8; 4] = frame.get(28..32)?.try_into().ok()?;
    Some((mac, Ipv4Addr::from(ip)))
}

/// SplitMix64: random but the same on every run.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A random unicast, locally administered MAC.
    pub fn mac(&mut self) -> MacAddr {
        let v = self.next().to_be_bytes();
        MacAddr::new((v[0] & 0xfc) | 0x02, v[1], v[2], v[3], v[4], v[5])
    }
}
