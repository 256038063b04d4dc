//! Every system call tweed makes, and the only `unsafe` code in tweed: TUN/TAP creation, interface ioctls,
//! network namespaces, AF_PACKET sockets, `recvmmsg`/`sendmmsg`, epoll, and the eventfds and signalfd
//! that wake a driver.
//!
//! Each function takes and returns safe types (`OwnedFd`, slices, `io::Result`); each `unsafe` block says why it
//! is sound. Nothing here allocates on the data path: the batch calls build their message headers on the stack.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

mod epoll;
mod event;
mod gather;
mod steer;
pub(crate) use epoll::Epoll;
#[cfg(test)]
pub(crate) use event::tgkill;
pub(crate) use event::{eventfd, eventfd_drain, eventfd_signal, read_signal, signalfd};
pub(crate) use gather::writev;
pub(crate) use steer::{attach_reuseport_cbpf, join_fanout_hash};

/// The most messages one `recvmmsg`/`sendmmsg` call takes (the headers live on the stack).
pub(crate) const MAX_BATCH: usize = 256;

/// `IFNAMSIZ` less the terminating zero.
pub(crate) const MAX_IFNAME: usize = libc::IFNAMSIZ - 1;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) }
}

/// A name the kernel takes for an interface: 1 to [`MAX_IFNAME`] bytes, no `/`, whitespace or NUL.
pub(crate) fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IFNAME
        && !name.bytes().any(|b| b == 0 || b == b'/' || b.is_ascii_whitespace())
}

/// An `ifreq` with `name` in it.
fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    if !valid_ifname(name) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid interface name {name:?}")));
    }
    // SAFETY: `ifreq` is a C struct of integers, arrays and a union of them; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { zeroed() };
    for (dst, &src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

/// Opens `/dev/net/tun` and attaches it to the TUN (`tap == false`) or TAP device `name`, created when it does not
/// exist; no packet-information header; non-blocking. With `multi_queue`, every call on the same name adds a queue.
/// Returns the descriptor and, with `probe_uso`, whether it takes UDP segmentation offload in what is written
/// ([`set_vnet_hdr`]; not asked again for a queue added to a device that is up: see there).
pub(crate) fn open_tun(
    name: &str,
    tap: bool,
    multi_queue: bool,
    vnet_hdr: bool,
    tso: bool,
    probe_uso: bool,
) -> io::Result<(OwnedFd, bool)> {
    let mut req = ifreq(name)?;
    let path = c"/dev/net/tun";
    // SAFETY: `path` is a valid NUL-terminated string; the returned descriptor is checked before use.
    let fd = cvt(unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
    // SAFETY: `fd` was just opened by us and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut flags = libc::IFF_NO_PI | if tap { libc::IFF_TAP } else { libc::IFF_TUN };
    if multi_queue {
        flags |= libc::IFF_MULTI_QUEUE;
    }
    if vnet_hdr {
        flags |= libc::IFF_VNET_HDR;
    }
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one `ifreq`, which `req` is, alive for the call.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) })?;
    let uso = vnet_hdr && set_vnet_hdr(fd.as_fd(), tso, probe_uso)?;
    Ok((fd, uso))
}

/// Makes a TAP/TUN descriptor opened with `IFF_VNET_HDR` read and write a 12-byte virtio-net header in front of
/// each frame; with `tso`, what it reads may be TCPv4 frames of up to 64 KiB and partial checksums (the header
/// says), else frames come whole, checksums done. With `probe_uso`, returns whether the kernel takes UDP
/// segmentation offload (`VIRTIO_NET_HDR_GSO_UDP_L4`, Linux 6.2) in what is written: asked by offering it for
/// reads, then taking the offer back, so that what is read stays as described. The offer is the device's, so it is
/// made only while the device is down (created, not yet up): a reader of another queue of a live device could
/// otherwise be handed a UDP train in between.
pub(crate) fn set_vnet_hdr(fd: BorrowedFd<'_>, tso: bool, probe_uso: bool) -> io::Result<bool> {
    let size: libc::c_int = crate::gro::VNET_HDR_LEN as libc::c_int;
    // SAFETY: TUNSETVNETHDRSZ reads one int, alive for the call.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETVNETHDRSZ, &size) })?;
    let uso = probe_uso
        // SAFETY: TUNSETOFFLOAD takes its flags by value; a kernel without USO refuses them with EINVAL.
        && unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD, libc::TUN_F_CSUM | TUN_F_USO4 | TUN_F_USO6) } == 0;
    let offload: libc::c_uint = if tso { libc::TUN_F_CSUM | libc::TUN_F_TSO4 } else { 0 };
    // SAFETY: TUNSETOFFLOAD takes its flags by value.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD, offload) })?;
    Ok(uso)
}

/// `TUN_F_USO4` and `TUN_F_USO6` (`linux/if_tun.h`, Linux 6.2).
const TUN_F_USO4: libc::c_uint = 0x20;
const TUN_F_USO6: libc::c_uint = 0x40;

/// A datagram socket for interface ioctls.
fn ctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked.
    let fd = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: a descriptor we just created and own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn if_ioctl(req_code: libc::c_ulong, req: &mut libc::ifreq) -> io::Result<()> {
    let sock = ctl_socket()?;
    // SAFETY: the SIOC[GS]IF* requests read and write one `ifreq`, alive for the call.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), req_code, req as *mut libc::ifreq) })?;
    Ok(())
}

/// Brings interface `name` up (or down).
pub(crate) fn set_up(name: &str, up: bool) -> io::Result<()> {
    let mut req = ifreq(name)?;
    if_ioctl(libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS filled the `ifru_flags` member of the union.
    let mut flags = unsafe { req.ifr_ifru.ifru_flags };
    if up {
        flags |= libc::IFF_UP as libc::c_short;
    } else {
        flags &= !(libc::IFF_UP as libc::c_short);
    }
    req.ifr_ifru.ifru_flags = flags;
    if_ioctl(libc::SIOCSIFFLAGS, &mut req)
}

/// Sets interface `name`'s MTU.
pub(crate) fn set_mtu(name: &str, mtu: u32) -> io::Result<()> {
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_mtu = mtu as libc::c_int;
    if_ioctl(libc::SIOCSIFMTU, &mut req)
}

/// Interface `name`'s MAC address.
pub(crate) fn mac(name: &str) -> io::Result<[u8; 6]> {
    let mut req = ifreq(name)?;
    if_ioctl(libc::SIOCGIFHWADDR, &mut req)?;
    // SAFETY: SIOCGIFHWADDR filled the `ifru_hwaddr` member of the union.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (m, &b) in mac.iter_mut().zip(&sa.sa_data[..6]) {
        *m = b as u8;
    }
    Ok(mac)
}

/// Sets interface `name`'s MAC address (an Ethernet device, down or up as the driver allows).
pub(crate) fn set_mac(name: &str, mac: [u8; 6]) -> io::Result<()> {
    let mut req = ifreq(name)?;
    // SAFETY: writing plain integers into the `ifru_hwaddr` member of the union.
    unsafe {
        req.ifr_ifru.ifru_hwaddr.sa_family = libc::ARPHRD_ETHER;
        for (d, &b) in req.ifr_ifru.ifru_hwaddr.sa_data.iter_mut().zip(&mac) {
            *d = b as libc::c_char;
        }
    }
    if_ioctl(libc::SIOCSIFHWADDR, &mut req)
}

/// `addr` as the `sockaddr` the SIOC* requests take.
fn sockaddr_v4(addr: std::net::Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(addr.octets()) },
        sin_zero: [0; 8],
    };
    // SAFETY: `sockaddr_in` and `sockaddr` are both 16-byte C structs of integers, and the kernel reads a
    // `sockaddr` with family AF_INET as a `sockaddr_in`.
    unsafe { core::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// Gives interface `name` the IPv4 address `addr` with `netmask` (replacing the one it had).
pub(crate) fn set_ipv4_addr(name: &str, addr: std::net::Ipv4Addr, netmask: std::net::Ipv4Addr) -> io::Result<()> {
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_addr = sockaddr_v4(addr);
    if_ioctl(libc::SIOCSIFADDR, &mut req)?;
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_netmask = sockaddr_v4(netmask);
    if_ioctl(libc::SIOCSIFNETMASK, &mut req)
}

/// Adds a route to `net` with `netmask` out of interface `name`, with no gateway (an error of kind
/// `AlreadyExists` when there is one).
pub(crate) fn add_route(name: &str, net: std::net::Ipv4Addr, netmask: std::net::Ipv4Addr) -> io::Result<()> {
    let dev = CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: `rtentry` is a C struct of integers, `sockaddr`s and one pointer; all zeroes is a valid value.
    let mut rt: libc::rtentry = unsafe { zeroed() };
    rt.rt_dst = sockaddr_v4(net);
    rt.rt_genmask = sockaddr_v4(netmask);
    rt.rt_flags = libc::RTF_UP;
    rt.rt_dev = dev.as_ptr().cast_mut();
    let sock = ctl_socket()?;
    // SAFETY: SIOCADDRT reads one `rtentry`, alive for the call, and the device name it points to (`dev`, alive
    // until the end of the function); the kernel does not write through `rt_dev`.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCADDRT, &raw const rt) })?;
    Ok(())
}

/// Interface `name`'s index, or `None` when the calling thread's network namespace has no such interface.
pub(crate) fn if_index(name: &str) -> io::Result<Option<u32>> {
    let c = CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: `c` is a valid NUL-terminated string alive for the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENODEV) { Ok(None) } else { Err(e) };
    }
    Ok(Some(index))
}

/// Runs `f` on a new thread that has entered the network namespace `netns` (a file such as
/// `/var/run/netns/pod1`), and returns what it returns. Devices `f` creates are created in that namespace, and
/// descriptors it opens stay usable from any thread; the calling thread's namespace is untouched.
pub(crate) fn in_netns<T: Send>(netns: &Path, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    let ns = File::open(netns)?;
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: setns(2) on a descriptor we hold open; it changes only this thread's namespace.
            cvt(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) })?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("thread in network namespace panicked")))
    })
}

/// Sets an int option of `SOL_PACKET` to 1.
fn set_packet_opt(fd: RawFd, opt: libc::c_int) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: the SOL_PACKET options set here take an int; `one` lives for the call.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            opt,
            (&raw const one).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// An AF_PACKET raw socket bound to interface `ifindex`, receiving every protocol, non-blocking, not looping back
/// what it sends itself (an error when the kernel cannot promise that). With `vnet_hdr` (`PACKET_VNET_HDR`), each
/// frame read or written has a 10-byte virtio-net header in front: what the interface hands over unsegmented
/// (GSO) or with a partial checksum (its offloads on) is said so, rather than read truncated or unfinished.
pub(crate) fn packet_socket(ifindex: u32, vnet_hdr: bool) -> io::Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2); the result is checked.
    let fd = cvt(unsafe {
        libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, i32::from(proto))
    })?;
    // SAFETY: a descriptor we just created and own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `sockaddr_ll` is plain integers; all zeroes is valid.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a valid `sockaddr_ll` of the length passed.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const sll).cast::<libc::sockaddr>(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })?;
    // A deep receive queue (4 MiB): the default (about 200 KiB) overflows under a TCP stream while the driver
    // waits for a CPU. FORCE passes the sysctl limit when we have CAP_NET_ADMIN; otherwise the plain option.
    let bytes: libc::c_int = 4 << 20;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: SO_RCVBUF(FORCE) takes an int; `bytes` lives for the call.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&raw const bytes).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            break;
        }
    }
    // Without it, every frame we send comes back to us as input (kernels before 4.20 refuse it).
    set_packet_opt(fd.as_raw_fd(), libc::PACKET_IGNORE_OUTGOING).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "PACKET_IGNORE_OUTGOING refused ({e}; it needs Linux 4.20): the port would read back every frame \
                 tweed sends on it"
            ),
        )
    })?;
    if vnet_hdr {
        set_packet_opt(fd.as_raw_fd(), libc::PACKET_VNET_HDR)
            .map_err(|e| io::Error::new(e.kind(), format!("PACKET_VNET_HDR refused: {e}")))?;
    }
    Ok(fd)
}

/// Turns path-MTU discovery off on a UDP socket (`IP_PMTUDISC_DONT`): datagrams go out with DF clear, and the
/// kernel fragments them rather than refusing them.
pub(crate) fn set_pmtudisc_dont(fd: BorrowedFd<'_>) -> io::Result<()> {
    let v: libc::c_int = libc::IP_PMTUDISC_DONT;
    // SAFETY: IP_MTU_DISCOVER takes an int; `v` lives for the call.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            (&raw const v).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// One `read(2)`.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length for the call.
    cvt_size(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// One `writev(2)` of two pieces (a header and a frame), without copying them together.
pub(crate) fn write2(fd: BorrowedFd<'_>, a: &[u8], b: &[u8]) -> io::Result<usize> {
    let iov = [
        libc::iovec { iov_base: a.as_ptr().cast_mut().cast(), iov_len: a.len() },
        libc::iovec { iov_base: b.as_ptr().cast_mut().cast(), iov_len: b.len() },
    ];
    // SAFETY: both iovecs point at the caller's slices, valid for reads of their lengths for the call.
    cvt_size(unsafe { libc::writev(fd.as_raw_fd(), iov.as_ptr(), 2) })
}

/// One `write(2)`.
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of its length for the call.
    cvt_size(unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })
}

/// What one received datagram was: its length, its sender, whether it was cut short, and, for a train of
/// datagrams the kernel coalesced (UDP GRO), the size of each but the last (0 otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Received {
    pub(crate) len: usize,
    pub(crate) from: SocketAddrV4,
    pub(crate) truncated: bool,
    pub(crate) segment: usize,
}

impl Default for Received {
    fn default() -> Self {
        Self { len: 0, from: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), truncated: false, segment: 0 }
    }
}

fn to_sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: `sockaddr_in` is plain integers; all zeroes is valid.
    let mut sa: libc::sockaddr_in = unsafe { zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = addr.port().to_be();
    sa.sin_addr.s_addr = u32::from(*addr.ip()).to_be();
    sa
}

fn from_sockaddr(sa: &libc::sockaddr_in) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)), u16::from_be(sa.sin_port))
}

/// Room for one `cmsghdr` with an `int`, aligned as `cmsghdr` wants.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Cmsg([u8; 32]);

/// Asks the kernel to hand trains of datagrams from one sender over coalesced (`UDP_GRO`); each then comes with its
/// segment size ([`Received::segment`]).
pub(crate) fn set_udp_gro(fd: BorrowedFd<'_>) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: UDP_GRO takes an int; `one` lives for the call.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_GRO,
            (&raw const one).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `recvmmsg(2)` without waiting: receives up to `bufs.len()` (at most [`MAX_BATCH`]) datagrams, one into each
/// buffer, and says what each was in `meta`. Returns how many arrived (0 when none is waiting).
pub(crate) fn recvmmsg(fd: BorrowedFd<'_>, bufs: &mut [&mut [u8]], meta: &mut [Received]) -> io::Result<usize> {
    let n = bufs.len().min(meta.len()).min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    let mut iovs = [MaybeUninit::<libc::iovec>::uninit(); MAX_BATCH];
    let mut addrs = [MaybeUninit::<libc::sockaddr_in>::zeroed(); MAX_BATCH];
    let mut hdrs = [MaybeUninit::<libc::mmsghdr>::zeroed(); MAX_BATCH];
    let mut cmsgs = [Cmsg([0; 32]); MAX_BATCH];
    for i in 0..n {
        iovs[i].write(libc::iovec { iov_base: bufs[i].as_mut_ptr().cast(), iov_len: bufs[i].len() });
        // SAFETY: all zeroes is a valid `mmsghdr`; we fill the fields recvmmsg reads.
        let h = unsafe { hdrs[i].assume_init_mut() };
        h.msg_hdr.msg_name = addrs[i].as_mut_ptr().cast();
        h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        h.msg_hdr.msg_iov = iovs[i].as_mut_ptr();
        h.msg_hdr.msg_iovlen = 1;
        // Room for the UDP_GRO segment size, when the socket asked for coalescing.
        h.msg_hdr.msg_control = cmsgs[i].0.as_mut_ptr().cast();
        h.msg_hdr.msg_controllen = cmsgs[i].0.len();
    }
    // SAFETY: the first `n` headers are initialised and point at iovecs and addresses on this stack frame and at
    // the caller's buffers, all alive for the call; the kernel writes at most each iovec's length.
    let r = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr().cast(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    let got = match cvt(r) {
        Ok(got) => got as usize,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
        Err(e) => return Err(e),
    };
    for i in 0..got {
        // SAFETY: initialised above and written by the kernel.
        let h = unsafe { hdrs[i].assume_init_ref() };
        // SAFETY: zero-initialised above; the kernel wrote the sender (an IPv4 socket gives `sockaddr_in`).
        let sa = unsafe { addrs[i].assume_init_ref() };
        let mut segment = 0;
        // SAFETY: the kernel filled `msg_controllen` bytes of our control buffer with well-formed cmsghdrs;
        // CMSG_FIRSTHDR/CMSG_NXTHDR walk them within that length.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&h.msg_hdr);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == libc::UDP_GRO {
                    segment = libc::CMSG_DATA(c).cast::<libc::c_int>().read_unaligned() as usize;
                }
                c = libc::CMSG_NXTHDR(&h.msg_hdr, c);
            }
        }
        meta[i] = Received {
            len: (h.msg_len as usize).min(bufs[i].len()),
            from: from_sockaddr(sa),
            truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            segment,
        };
    }
    Ok(got)
}

/// `recvfrom(2)` without waiting: one datagram, or `None` when none is waiting.
pub(crate) fn recvfrom(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<Received>> {
    let mut sa = MaybeUninit::<libc::sockaddr_in>::zeroed();
    let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `buf` is valid for writes of its length, `sa` for a `sockaddr_in` of `len` bytes, for the call.
    let r = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            sa.as_mut_ptr().cast(),
            &mut len,
        )
    };
    match cvt_size(r) {
        Ok(n) => {
            // SAFETY: zero-initialised, then written by the kernel.
            let from = from_sockaddr(unsafe { sa.assume_init_ref() });
            Ok(Some(Received { len: n.min(buf.len()), from, truncated: n > buf.len(), segment: 0 }))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

/// One message of [`sendmmsg`]: the bytes of `parts[first..first + count]`, gathered by the kernel (no copy
/// here), to `dst`; with `seg` not 0 a train of datagrams of that size cut by the kernel (UDP GSO), else one
/// datagram.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gather {
    pub(crate) first: usize,
    pub(crate) count: usize,
    pub(crate) dst: SocketAddrV4,
    pub(crate) seg: u16,
}

/// `sendmmsg(2)` without waiting: sends each message of `msgs` (at most [`MAX_BATCH`]; see [`Gather`]) with its
/// bytes gathered from `parts` (at most [`MAX_BATCH`] in all), as one datagram or, where its `seg` is not 0, as a
/// train of datagrams of that size cut by the kernel (UDP GSO, `UDP_SEGMENT`: the stack is crossed once for the
/// whole train, and the pieces of the train need not lie end to end). Returns how many messages the kernel took;
/// the rest were not sent (the socket's buffer is full, or an error stopped it after the first message).
///
/// # Errors
/// The kernel's for the first message; `InvalidInput` when a message names parts that are not there.
pub(crate) fn sendmmsg(fd: BorrowedFd<'_>, parts: &[&[u8]], msgs: &[Gather]) -> io::Result<usize> {
    let n = msgs.len().min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    if parts.len() > MAX_BATCH || msgs[..n].iter().any(|m| m.count == 0 || m.first + m.count > parts.len()) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "sendmmsg: a message names parts that are not there"));
    }
    let mut iovs = [MaybeUninit::<libc::iovec>::uninit(); MAX_BATCH];
    for (iov, bytes) in iovs.iter_mut().zip(parts) {
        iov.write(libc::iovec { iov_base: bytes.as_ptr().cast_mut().cast(), iov_len: bytes.len() });
    }
    let mut addrs = [MaybeUninit::<libc::sockaddr_in>::uninit(); MAX_BATCH];
    let mut hdrs = [MaybeUninit::<libc::mmsghdr>::zeroed(); MAX_BATCH];
    let mut cmsgs = [Cmsg([0; 32]); MAX_BATCH];
    for (i, m) in msgs[..n].iter().enumerate() {
        addrs[i].write(to_sockaddr(m.dst));
        // SAFETY: all zeroes is a valid `mmsghdr`; we fill the fields sendmmsg reads.
        let h = unsafe { hdrs[i].assume_init_mut() };
        h.msg_hdr.msg_name = addrs[i].as_mut_ptr().cast();
        h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // The message's iovecs, `first..first + count`, were written above (checked against `parts`).
        h.msg_hdr.msg_iov = iovs[m.first].as_mut_ptr();
        h.msg_hdr.msg_iovlen = m.count;
        let seg = m.seg;
        if seg != 0 {
            // SAFETY: CMSG_SPACE and CMSG_LEN are arithmetic on a length.
            let (space, len) = unsafe { (libc::CMSG_SPACE(2) as usize, libc::CMSG_LEN(2) as usize) };
            debug_assert!(space <= cmsgs[i].0.len());
            h.msg_hdr.msg_control = cmsgs[i].0.as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = space;
            // SAFETY: the control buffer is `space` bytes, aligned for `cmsghdr`, and holds one header with a
            // `u16` after it: CMSG_FIRSTHDR and CMSG_DATA stay inside it.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(&h.msg_hdr);
                (*c).cmsg_level = libc::SOL_UDP;
                (*c).cmsg_type = libc::UDP_SEGMENT;
                (*c).cmsg_len = len;
                libc::CMSG_DATA(c).cast::<u16>().write_unaligned(seg);
            }
        }
    }
    // SAFETY: the first `n` headers are initialised and point at initialised iovecs (each message's range was
    // checked against `parts`, whose iovecs were all written), addresses, control buffers and the caller's bytes,
    // all alive for the call; the kernel only reads them (and writes `msg_len`).
    let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), hdrs.as_mut_ptr().cast(), n as libc::c_uint, libc::MSG_DONTWAIT) };
    match cvt(r) {
        Ok(sent) => Ok(sent as usize),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        Err(e) => Err(e),
    }
}

/// `sendto(2)` without waiting: one datagram. `Ok(false)` when the socket's buffer is full.
pub(crate) fn sendto(fd: BorrowedFd<'_>, bytes: &[u8], dst: SocketAddrV4) -> io::Result<bool> {
    let sa = to_sockaddr(dst);
    // SAFETY: `bytes` is valid for reads of its length and `sa` is a `sockaddr_in`, both alive for the call.
    let r = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT,
            (&raw const sa).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    match cvt_size(r) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// `poll(2)` on `fds` (each asking for input, at most 64: a test helper; the driver uses [`Epoll`]); sets
/// `ready[i]` for each descriptor with input (or an error to report). Returns how many are ready; 0 on timeout or
/// when a signal interrupted the wait.
#[cfg(test)]
pub(crate) fn poll_in(fds: &[RawFd], ready: &mut [bool], timeout_ms: i32) -> io::Result<usize> {
    const MAX_FDS: usize = 64;
    let n = fds.len().min(MAX_FDS).min(ready.len());
    let mut pfds = [libc::pollfd { fd: -1, events: 0, revents: 0 }; MAX_FDS];
    for (p, &fd) in pfds.iter_mut().zip(&fds[..n]) {
        *p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    }
    // SAFETY: `pfds` holds `n` initialised `pollfd`s, alive for the call.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
    match cvt(r) {
        Ok(k) => {
            for (r, p) in ready.iter_mut().zip(&pfds[..n]) {
                *r = p.revents != 0;
            }
            Ok(k as usize)
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            ready.iter_mut().for_each(|r| *r = false);
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

/// Whether the process runs with the capability to administer the network (`CAP_NET_ADMIN` in its effective set).
pub(crate) fn has_net_admin() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("CapEff:"))?;
            u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << 12) != 0)
}

#[cfg(test)]
mod tests;
