//! TAP (L2) and TUN (L3) devices, and AF_PACKET sockets on existing interfaces: the ports that carry one frame
//! (or IP packet) per system call.
//!
//! A [`Device`] is created by tweed and lives as long as its descriptors: dropping the last one deletes the
//! device from the kernel, so a stopped driver leaves nothing behind. It can be created inside another network
//! namespace (a pod's `eth0` that the tweed process holds), non-blocking, without a packet-information header.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use tweed_packet::PacketBuf;
use tweed_wire::ethernet::MacAddr;

use crate::error::{Error, Result};
use crate::gro::{self, VNET_HDR_LEN};
use crate::sys;

/// A TAP or a TUN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// Ethernet frames (L2).
    Tap,
    /// IP packets (L3).
    Tun,
}

/// How to create a [`Device`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct DeviceOptions {
    /// The device's name (at most 15 bytes).
    pub name: String,
    /// TAP or TUN.
    pub kind: DeviceKind,
    /// The network namespace to create it in (a path such as `/var/run/netns/pod1`); `None`: the process's own.
    pub netns: Option<PathBuf>,
    /// The MTU to set; `None` leaves the kernel's default (1500).
    pub mtu: Option<u32>,
    /// The MAC to set (TAP only); `None` leaves the kernel's random one.
    pub mac: Option<MacAddr>,
    /// Bring the device up.
    pub up: bool,
    /// Create it with several queues (`IFF_MULTI_QUEUE`): one [`Device::add_queue`] per worker.
    pub multi_queue: bool,
    /// Read and write a virtio-net header in front of each frame (`IFF_VNET_HDR`, TAP only), which lets the
    /// driver write TCP segments coalesced into one large frame ([`Device::send_coalesced`]). [`Device::recv`]
    /// and [`Device::send`] handle the header themselves.
    pub vnet_hdr: bool,
    /// With `vnet_hdr`: let the kernel hand over TCP segments unsegmented (up to 64 KiB, TSO) and checksums
    /// unfinished; the driver cuts and finishes them ([`Device::recv`] refuses such frames).
    pub tso: bool,
}

impl DeviceOptions {
    /// A device of this kind and name, in the process's namespace, brought up, single queue.
    pub fn new(name: impl Into<String>, kind: DeviceKind) -> Self {
        Self {
            name: name.into(),
            kind,
            netns: None,
            mtu: None,
            mac: None,
            up: true,
            multi_queue: false,
            vnet_hdr: false,
            tso: false,
        }
    }

    /// In this network namespace: a name (looked up under `/var/run/netns`) or a path.
    pub fn netns(mut self, netns: impl AsRef<Path>) -> Self {
        self.netns = Some(netns_path(netns.as_ref()));
        self
    }

    /// With this MTU.
    pub const fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// With this MAC.
    pub const fn mac(mut self, mac: MacAddr) -> Self {
        self.mac = Some(mac);
        self
    }

    /// With several queues.
    pub const fn multi_queue(mut self, on: bool) -> Self {
        self.multi_queue = on;
        self
    }

    /// With a virtio-net header on each frame (TAP), for coalesced writes.
    pub const fn vnet_hdr(mut self, on: bool) -> Self {
        self.vnet_hdr = on;
        self
    }

    /// With TCP segmentation and checksums left to tweed on what it reads (needs `vnet_hdr`).
    pub const fn tso(mut self, on: bool) -> Self {
        self.tso = on;
        self
    }
}

/// A network namespace's file: `name` under `/var/run/netns`, or `name` itself when it is a path.
#[must_use]
pub fn netns_path(name: &Path) -> PathBuf {
    if name.components().count() > 1 { name.to_path_buf() } else { Path::new("/var/run/netns").join(name) }
}

/// Runs `f` in `netns` (or here when `None`).
fn within<T: Send>(netns: Option<&Path>, f: impl FnOnce() -> io::Result<T> + Send) -> Result<T> {
    match netns {
        None => f().map_err(|e| Error::io("", e)),
        Some(ns) => {
            if !ns.exists() {
                return Err(Error::NoSuchNetns(ns.to_path_buf()));
            }
            sys::in_netns(ns, f).map_err(|e| Error::io(format!("entering network namespace {}", ns.display()), e))
        }
    }
}

fn annotate(e: Error, what: &str) -> Error {
    match e {
        Error::Io { what: w, source } if w.is_empty() => Error::io(what, source),
        Error::Privilege { what: w } if w.is_empty() => Error::Privilege { what: what.to_owned() },
        e => e,
    }
}

/// A TAP or TUN device tweed created; each [`Device`] value is one queue of it.
#[derive(Debug)]
pub struct Device {
    fd: OwnedFd,
    options: DeviceOptions,
    /// The kernel takes UDP datagrams coalesced into one write (with `vnet_hdr`; Linux 6.2): said by the kernel
    /// when the device was made, unsaid for good by the first such write it refuses.
    uso: AtomicBool,
}

impl Device {
    /// Creates the device, in its namespace, with its MTU and MAC, up.
    ///
    /// # Errors
    /// [`Error::Exists`] when the namespace has an interface of that name already, [`Error::Privilege`] without
    /// `CAP_NET_ADMIN`, [`Error::NoSuchNetns`], [`Error::Io`] for anything else.
    pub fn create(options: &DeviceOptions) -> Result<Self> {
        let what = format!("creating {:?} device {}", options.kind, options.name);
        let o = options.clone();
        let created = within(options.netns.as_deref(), move || {
            if sys::if_index(&o.name)?.is_some() {
                return Ok(None);
            }
            let tap = o.kind == DeviceKind::Tap;
            // Made here and brought up below: the kernel's UDP segmentation offload is asked about while down.
            let opened = sys::open_tun(&o.name, tap, o.multi_queue, o.vnet_hdr, o.tso && o.vnet_hdr, tap)?;
            if let Some(mtu) = o.mtu {
                sys::set_mtu(&o.name, mtu)?;
            }
            if let (Some(mac), DeviceKind::Tap) = (o.mac, o.kind) {
                sys::set_mac(&o.name, *mac.as_bytes())?;
            }
            if o.up {
                sys::set_up(&o.name, true)?;
            }
            Ok(Some(opened))
        })
        .map_err(|e| annotate(e, &what))?;
        let (fd, uso) =
            created.ok_or_else(|| Error::Exists { name: options.name.clone(), netns: options.netns.clone() })?;
        Ok(Self { fd, options: options.clone(), uso: AtomicBool::new(uso) })
    }

    /// Opens one more queue of a multi-queue device (for another worker).
    ///
    /// # Errors
    /// [`Error::Io`] when the device is not multi-queue or the kernel refuses.
    pub fn add_queue(&self) -> Result<Self> {
        let o = self.options.clone();
        let (fd, _) = within(self.options.netns.as_deref(), move || {
            sys::open_tun(&o.name, o.kind == DeviceKind::Tap, true, o.vnet_hdr, o.tso && o.vnet_hdr, false)
        })
        .map_err(|e| annotate(e, &format!("adding a queue to {}", self.options.name)))?;
        // The device's answer: asking again would offer a live device's readers UDP trains for a moment.
        Ok(Self { fd, options: self.options.clone(), uso: AtomicBool::new(self.coalesces_udp()) })
    }

    /// The options it was created with.
    pub const fn options(&self) -> &DeviceOptions {
        &self.options
    }

    /// Whether [`Device::send_coalesced`] merges UDP datagrams too, not only TCP segments: a TAP with
    /// [`DeviceOptions::vnet_hdr`] on a kernel that takes UDP segmentation offload (Linux 6.2). A kernel that
    /// said so when the device was made but refuses such a write (`EINVAL`) turns it off for good, that frame's
    /// datagrams then written one by one.
    #[must_use]
    pub fn coalesces_udp(&self) -> bool {
        self.uso.load(Ordering::Relaxed) && matches!(self.options.kind, DeviceKind::Tap)
    }

    /// The device's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.options.name
    }

    /// Gives the device the IPv4 address and prefix length of `addr` (in its namespace), replacing the one it had.
    ///
    /// # Errors
    /// [`Error::Io`] when the kernel refuses.
    pub fn set_ipv4(&self, addr: ipnet::Ipv4Net) -> Result<()> {
        let name = self.options.name.clone();
        within(self.options.netns.as_deref(), move || sys::set_ipv4_addr(&name, addr.addr(), addr.netmask()))
            .map_err(|e| annotate(e, &format!("giving {} the address {addr}", self.options.name)))
    }

    /// Routes `net` out of the device (in its namespace), with no gateway: what a TUN into tweed needs. A route
    /// that exists already is left as it is.
    ///
    /// # Errors
    /// [`Error::Io`] when the kernel refuses.
    pub fn add_route(&self, net: ipnet::Ipv4Net) -> Result<()> {
        let name = self.options.name.clone();
        let net = net.trunc();
        within(self.options.netns.as_deref(), move || match sys::add_route(&name, net.network(), net.netmask()) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        })
        .map_err(|e| annotate(e, &format!("routing {net} to {}", self.options.name)))
    }

    /// Reads one frame (TAP) or IP packet (TUN) into `buf`'s receive area. `Ok(false)` when none is waiting.
    ///
    /// # Errors
    /// The kernel's.
    pub fn recv(&self, buf: &mut PacketBuf) -> io::Result<bool> {
        if !recv_one(self.fd.as_fd(), buf)? {
            return Ok(false);
        }
        if self.options.vnet_hdr {
            // No GSO and no checksum to finish (DATA_VALID, bit 1, may be set: it only vouches for the checksum).
            let plain = buf.data().get(..2).is_some_and(|h| h[0] & 1 == 0 && h[1] == 0);
            if buf.pull_front(VNET_HDR_LEN).is_err() || !plain {
                // Shorter than its header, or offloaded: nothing whole to hand on.
                buf.truncate(0);
            }
        }
        Ok(true)
    }

    /// Whether reads may give offloaded frames ([`DeviceOptions::tso`]).
    pub(crate) const fn is_tso(&self) -> bool {
        self.options.vnet_hdr && self.options.tso
    }

    /// With TSO: reads one frame (up to 64 KiB) into `scratch` and hands each complete frame it is made of to
    /// `emit` as a [`gro::Cut`], none longer than `max_frame`, at most `max_segments` of them (more: refused
    /// whole), for the caller to copy into its own buffer ([`gro::Cut::copy_to`], which finishes the checksum in
    /// the copy's pass instead of a pass of its own). `Ok(None)` when nothing is waiting.
    pub(crate) fn recv_cuts(
        &self,
        scratch: &mut [u8],
        max_frame: usize,
        max_segments: usize,
        emit: impl FnMut(&gro::Cut<'_>),
    ) -> io::Result<Option<Result<usize, gro::OffloadError>>> {
        recv_offloaded(self.fd.as_fd(), VNET_HDR_LEN, scratch, |h, f| {
            gro::cut_offloaded(h, f, max_frame, max_segments, emit)
        })
    }

    /// Writes one frame or packet. `Ok(false)` when the device's queue is full (the packet is not sent).
    ///
    /// # Errors
    /// The kernel's (`EIO` while the device is down).
    pub fn send(&self, bytes: &[u8]) -> io::Result<bool> {
        if !self.options.vnet_hdr {
            return send_one(self.fd.as_fd(), bytes);
        }
        match sys::write2(self.fd.as_fd(), &gro::PLAIN, bytes) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes consecutive TCP segments (or UDP datagrams: [`Device::coalesces_udp`]) of one flow from `frames` as
    /// one frame when they can be (see the `gro` module; the device must have [`DeviceOptions::vnet_hdr`]), else
    /// the first one as it is. The frame is
    /// gathered (`writev`: its headers, then each segment's payload where it lies), never copied; `scratch` is
    /// not used any more. Returns how many of `frames` it took (0: the queue is full).
    ///
    /// # Errors
    /// The kernel's.
    pub fn send_coalesced(&self, frames: &[&[u8]], scratch: &mut [u8]) -> io::Result<usize> {
        let _ = scratch;
        let n = if self.options.vnet_hdr { gro::train_len(frames, self.coalesces_udp()) } else { 1 };
        let mut head = [0u8; gro::HEAD_ROOM];
        let head_len = if n < 2 { 0 } else { gro::coalesced_head(&frames[..n], &mut head) };
        if head_len == 0 {
            // Not a train (`train_len` and `coalesced_head` read the frames alike, so a train always has a head).
            return Ok(usize::from(self.send(frames[0])?));
        }
        let mut parts = [IoSlice::new(&[]); 1 + gro::MAX_SEGMENTS];
        parts[0] = IoSlice::new(&head[..head_len]);
        for (part, frame) in parts[1..].iter_mut().zip(&frames[..n]) {
            *part = IoSlice::new(gro::payload(frame));
        }
        match sys::writev(self.fd.as_fd(), &parts[..=n]) {
            Ok(_) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS) => Ok(0),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && head[1] == gro::GSO_UDP_L4 => {
                // The kernel offered UDP segmentation offload but refuses the frame: no more UDP trains here.
                self.uso.store(false, Ordering::Relaxed);
                Ok(usize::from(self.send(frames[0])?))
            }
            Err(e) => Err(e),
        }
    }
}

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Device {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Reads one frame behind a virtio-net header of `hdr_len` bytes (12 for a TAP, 10 for AF_PACKET) into
/// `scratch` and hands the header and the frame to `cut` ([`gro::segment_offloaded`] or [`gro::cut_offloaded`]).
fn recv_offloaded(
    fd: BorrowedFd<'_>,
    hdr_len: usize,
    scratch: &mut [u8],
    cut: impl FnOnce(&[u8; VNET_HDR_LEN], &mut [u8]) -> Result<usize, gro::OffloadError>,
) -> io::Result<Option<Result<usize, gro::OffloadError>>> {
    let n = match sys::read(fd, scratch) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) => return Err(e),
    };
    if n < hdr_len {
        return Ok(Some(Err(gro::OffloadError::Malformed)));
    }
    let mut hdr = [0u8; VNET_HDR_LEN];
    hdr[..hdr_len].copy_from_slice(&scratch[..hdr_len]);
    Ok(Some(cut(&hdr, &mut scratch[hdr_len..n])))
}

/// Bytes of the virtio-net header of an AF_PACKET socket with `PACKET_VNET_HDR` (no `num_buffers`).
const PACKET_VNET_HDR_LEN: usize = 10;

fn recv_one(fd: BorrowedFd<'_>, buf: &mut PacketBuf) -> io::Result<bool> {
    match sys::read(fd, buf.recv_area_mut()) {
        Ok(n) => {
            // The kernel wrote at most the area's length.
            buf.commit_recv(n).map_err(|e| io::Error::other(e.to_string()))?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

fn send_one(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<bool> {
    match sys::write(fd, bytes) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock) || e.raw_os_error() == Some(libc::ENOBUFS) => Ok(false),
        Err(e) => Err(e),
    }
}

/// An AF_PACKET socket on an existing interface (the host end of a pod's veth, or the underlay interface for
/// host-gw): every frame the interface receives comes up, every frame written goes out of it.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    name: String,
    mac: MacAddr,
    netns: Option<PathBuf>,
    vnet_hdr: bool,
}

impl PacketSocket {
    /// Attaches to interface `name` in `netns` (or the process's namespace).
    ///
    /// # Errors
    /// [`Error::NoSuchInterface`], [`Error::Privilege`] without `CAP_NET_RAW`, [`Error::Io`] (also when the
    /// kernel cannot keep the frames sent on the socket from being read back: before Linux 4.20).
    pub fn attach(name: &str, netns: Option<&Path>) -> Result<Self> {
        Self::attach_with(name, netns, false)
    }

    /// Attaches to interface `name` as [`PacketSocket::attach`] does, reading with the kernel's offload
    /// metadata (`PACKET_VNET_HDR`): a veth with the kernel's default offloads (TSO, GSO, checksum offload) hands
    /// over TCP segments unsegmented (up to 64 KiB) and checksums unfinished; [`PacketSocket::recv`] finishes
    /// partial checksums, and the driver cuts large frames into segments as it does a TAP's with TSO.
    ///
    /// # Errors
    /// As [`PacketSocket::attach`].
    pub fn attach_offloaded(name: &str, netns: Option<&Path>) -> Result<Self> {
        Self::attach_with(name, netns, true)
    }

    /// Attaches `n` sockets to interface `name` (as [`PacketSocket::attach`], or
    /// [`PacketSocket::attach_offloaded`] when `offloaded`), all in one new fanout group that spreads frames by
    /// the kernel's flow hash (`PACKET_FANOUT_HASH`): every frame goes to one socket of the group, and the frames
    /// of one flow to the same one, one worker each.
    ///
    /// The kernel's hash there is its symmetric one (`__skb_get_hash_symmetric`: addresses and ports sorted
    /// before hashing), so both directions of a flow that cross the interface meet on one socket. IP fragments
    /// are hashed by their addresses alone (the kernel's dissector reads no ports from any fragment), so a
    /// fragmented packet may reach another socket than its flow's other packets. Which socket a flow reaches is
    /// the kernel's choice (its hash is seeded at boot): unlike [`crate::Steering`], it cannot be predicted here.
    /// As with one socket, frames leaving the interface (sent by the group or anyone else) are not read back: the
    /// group asks the kernel for that itself (`PACKET_FANOUT_FLAG_IGNORE_OUTGOING`, Linux 6.2).
    ///
    /// # Errors
    /// As [`PacketSocket::attach`]; [`Error::Io`] when `n` is 0 or above [`crate::MAX_GROUP`], or the kernel
    /// refuses the fanout group (before Linux 6.2).
    pub fn attach_group(name: &str, netns: Option<&Path>, n: usize, offloaded: bool) -> Result<Vec<Self>> {
        if n == 0 || n > crate::MAX_GROUP {
            let e = io::Error::new(io::ErrorKind::InvalidInput, format!("{n} sockets (1 to {})", crate::MAX_GROUP));
            return Err(Error::io(format!("attaching a group to {name}"), e));
        }
        let ifname = name.to_owned();
        let found = within(netns, move || {
            let Some(index) = sys::if_index(&ifname)? else { return Ok(None) };
            let mut fds = Vec::with_capacity(n);
            let mut id = None;
            for _ in 0..n {
                let fd = sys::packet_socket(index, offloaded)?;
                id = Some(sys::join_fanout_hash(fd.as_fd(), id)?);
                fds.push(fd);
            }
            Ok(Some((fds, sys::mac(&ifname)?)))
        })
        .map_err(|e| annotate(e, &format!("attaching a fanout group to {name}")))?;
        let (fds, mac) = found
            .ok_or_else(|| Error::NoSuchInterface { name: name.to_owned(), netns: netns.map(Path::to_path_buf) })?;
        Ok(fds.into_iter().map(|fd| Self::from_parts(fd, name, mac, netns, offloaded)).collect())
    }

    fn attach_with(name: &str, netns: Option<&Path>, vnet_hdr: bool) -> Result<Self> {
        let n = name.to_owned();
        let found = within(netns, move || {
            let Some(index) = sys::if_index(&n)? else { return Ok(None) };
            let fd = sys::packet_socket(index, vnet_hdr)?;
            Ok(Some((fd, sys::mac(&n)?)))
        })
        .map_err(|e| annotate(e, &format!("attaching to {name}")))?;
        let (fd, mac) = found
            .ok_or_else(|| Error::NoSuchInterface { name: name.to_owned(), netns: netns.map(Path::to_path_buf) })?;
        Ok(Self::from_parts(fd, name, mac, netns, vnet_hdr))
    }

    fn from_parts(fd: OwnedFd, name: &str, mac: [u8; 6], netns: Option<&Path>, vnet_hdr: bool) -> Self {
        Self { fd, name: name.to_owned(), mac: MacAddr::from(mac), netns: netns.map(Path::to_path_buf), vnet_hdr }
    }

    /// The interface's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface's MAC.
    #[must_use]
    pub const fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The network namespace it was attached in (`None`: the process's own).
    #[must_use]
    pub fn netns(&self) -> Option<&Path> {
        self.netns.as_deref()
    }

    /// Whether it reads and writes with offload metadata ([`PacketSocket::attach_offloaded`]).
    #[must_use]
    pub const fn is_offloaded(&self) -> bool {
        self.vnet_hdr
    }

    /// Reads one frame into `buf`. `Ok(false)` when none is waiting. On an offloaded socket, a partial checksum
    /// is finished, and a frame too large for `buf` (unsegmented) or that lies comes out empty.
    ///
    /// # Errors
    /// The kernel's.
    pub fn recv(&self, buf: &mut PacketBuf) -> io::Result<bool> {
        if !recv_one(self.fd.as_fd(), buf)? {
            return Ok(false);
        }
        if self.vnet_hdr {
            let mut hdr = [0u8; VNET_HDR_LEN];
            let whole = match buf.data_mut().split_at_mut_checked(PACKET_VNET_HDR_LEN) {
                Some((h, frame)) => {
                    hdr[..PACKET_VNET_HDR_LEN].copy_from_slice(h);
                    // Not GSO (one segment at most): finishes a partial checksum in place.
                    hdr[1] == 0 && gro::segment_offloaded(&hdr, frame, usize::MAX, 1, |_| {}).is_ok()
                }
                None => false,
            };
            if buf.pull_front(PACKET_VNET_HDR_LEN).is_err() || !whole {
                buf.truncate(0);
            }
        }
        Ok(true)
    }

    /// On an offloaded socket: reads one frame (up to 64 KiB) into `scratch` and hands each complete frame it is
    /// made of to `emit` as a [`gro::Cut`] (see [`Device::recv_cuts`]).
    pub(crate) fn recv_cuts(
        &self,
        scratch: &mut [u8],
        max_frame: usize,
        max_segments: usize,
        emit: impl FnMut(&gro::Cut<'_>),
    ) -> io::Result<Option<Result<usize, gro::OffloadError>>> {
        recv_offloaded(self.fd.as_fd(), PACKET_VNET_HDR_LEN, scratch, |h, f| {
            gro::cut_offloaded(h, f, max_frame, max_segments, emit)
        })
    }

    /// Sends one frame. `Ok(false)` when the interface's queue is full.
    ///
    /// # Errors
    /// The kernel's.
    pub fn send(&self, frame: &[u8]) -> io::Result<bool> {
        if !self.vnet_hdr {
            return send_one(self.fd.as_fd(), frame);
        }
        match sys::write2(self.fd.as_fd(), &gro::PLAIN[..PACKET_VNET_HDR_LEN], frame) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The MAC of interface `name` in `netns` (or the process's namespace).
///
/// # Errors
/// [`Error::NoSuchInterface`], [`Error::Io`].
pub fn interface_mac(name: &str, netns: Option<&Path>) -> Result<MacAddr> {
    let n = name.to_owned();
    let mac = within(netns, move || if sys::if_index(&n)?.is_some() { sys::mac(&n).map(Some) } else { Ok(None) })
        .map_err(|e| annotate(e, &format!("reading the MAC of {name}")))?;
    mac.map(MacAddr::from)
        .ok_or_else(|| Error::NoSuchInterface { name: name.to_owned(), netns: netns.map(Path::to_path_buf) })
}

/// Whether this process may create devices and raw sockets (`CAP_NET_ADMIN`).
#[must_use]
pub fn has_net_admin() -> bool {
    sys::has_net_admin()
}
