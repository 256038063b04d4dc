//! Keeping each flow on one worker: a group of underlay sockets sharing one address with `SO_REUSEPORT`, one per
//! worker, and a classic BPF program that picks, for every datagram, the socket of its *inner* flow.
//!
//! Without a program the kernel spreads a reuseport group by a hash of the outer addresses and ports. Between two
//! tweed nodes that tuple is the same for every datagram (both ends send from the backend's port), so one peer's
//! traffic would all land on one worker whatever its flows; and where it varies, it has nothing to do with the
//! inner flow's other direction, which the pod's TAP queue decides. [`Steering::InnerFlow`] attaches a program
//! (`SO_ATTACH_REUSEPORT_CBPF`) that hashes the inner IPv4 addresses and, for TCP and UDP, ports, each pair
//! combined with XOR so that both directions of a flow hash alike, and returns `hash % n`, the index of the socket
//! in the order [`UdpPort::bind_group`] bound them. [`Steering::index`] computes the same thing in Rust, so that a
//! test or the agent can tell which worker a flow lands on.
//!
//! What the program does not see, it sends to socket 0: a frame that is not IPv4 (ARP, IPv6, a VLAN tag), a
//! datagram too short to hold what it reads (classic BPF ends a program that reads beyond the packet with 0).
//! Fragments (more-fragments set or an offset) are hashed by their addresses alone, since only the first one
//! holds ports: a fragmented packet may take another worker than its flow's unfragmented packets. An index out of
//! range (not possible with this program) would make the kernel fall back to its own outer-tuple hash.
//!
//! What the kernel steers is an `skb`: a train of datagrams that arrives as one goes whole to the socket its first
//! datagram picks. A peer's UDP GSO train arrives as one over veth and loopback, so a [`UdpPort`] with
//! [`UdpOptions::steering`] set (as [`UdpPort::bind_group`] sets it) puts one inner flow in a train. A NIC's GRO
//! can also merge datagrams of one outer address and port pair on receipt, whatever their inner flows, when the
//! socket takes trains (`UdpOptions::gro`): turn `gro` off for a group behind a NIC that does GRO if a flow must
//! never visit another worker.
//!
//! The other half is the pod's multi-queue TAP, which needs no program: the kernel sends a frame the pod
//! transmits to the queue its flow's packets were last *written* to (tun keeps a table from each flow's symmetric
//! hash to the queue of the last write, aged out after 3 s idle, 4096 flows at most), else to a queue by that hash.
//! So a flow that arrives from the underlay on worker `i`, and is written into the TAP by it, is read back from
//! the pod by worker `i` too. Caveats, measured in `tests/steering.rs`: the table is updated after the written
//! frame went up the pod's stack, so what the pod sends at once in reply (an ARP reply, a TCP SYN-ACK or ACK)
//! follows the entry as it was before that write; and every ARP frame shares one entry (the symmetric hash reads
//! no ARP address), so the pod's ARP goes to the queue of the last ARP frame written, whichever worker wrote it.

mod cbpf;

use std::net::SocketAddrV4;
use std::os::fd::AsFd;

use tweed_overlay::BackendConfig;
use tweed_wire::ethernet::HEADER_LEN as ETH_LEN;

use crate::error::{Error, Result};
use crate::sys;
use crate::udp::{UdpOptions, UdpPort};
pub(crate) use cbpf::Insn;
use cbpf::{Alu, Asm, Size};

/// The most sockets in a group (a worker each).
pub const MAX_GROUP: usize = 256;

/// The multiplier that spreads the XOR-folded flow over all 32 bits (Knuth's golden-ratio constant); the
/// index comes from the top half.
const MIX: u32 = 0x9e37_79b1;

/// How a group of underlay sockets shares the datagrams among its members.
///
/// ```
/// use tweed_io::Steering;
/// // A VXLAN datagram: the 8-byte VXLAN header, then the inner frame.
/// # let frame = [0u8; 64];
/// let worker = Steering::VXLAN.index(&frame, 2);
/// assert!(worker < 2);
/// assert_eq!(Steering::Kernel.index(&frame, 2), 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Steering {
    /// The kernel's hash of the outer addresses and ports: no program.
    Kernel,
    /// By the inner IPv4 flow, found `offset` bytes into the UDP payload; `ethernet`: an Ethernet header comes
    /// first there, and frames whose EtherType is not IPv4 go to socket 0.
    InnerFlow {
        /// Where the inner frame (or packet) starts in the UDP payload.
        offset: u16,
        /// Whether it starts with an Ethernet header.
        ethernet: bool,
    },
}

impl Steering {
    /// flannel's `vxlan` backend: an 8-byte VXLAN header, then an Ethernet frame.
    pub const VXLAN: Self = Self::InnerFlow { offset: 8, ethernet: true };
    /// flannel's `udp` backend: the IPv4 packet alone.
    pub const FLANNEL_UDP: Self = Self::InnerFlow { offset: 0, ethernet: false };

    /// The steering for flannel's `backend`: by the inner flow for `vxlan` and `udp`, the kernel's for `host-gw`
    /// (which has no UDP socket: its workers share frames with [`crate::PacketSocket::attach_group`]).
    ///
    /// ```
    /// use tweed_io::Steering;
    /// use tweed_overlay::BackendConfig;
    /// assert_eq!(Steering::for_backend(&BackendConfig::HostGw), Steering::Kernel);
    /// ```
    #[must_use]
    pub const fn for_backend(backend: &BackendConfig) -> Self {
        match backend {
            BackendConfig::Vxlan(_) => Self::VXLAN,
            BackendConfig::Udp(_) => Self::FLANNEL_UDP,
            BackendConfig::HostGw => Self::Kernel,
        }
    }

    /// Where the inner IPv4 header starts in the UDP payload (`None`: [`Steering::Kernel`]).
    #[must_use]
    pub const fn ipv4_offset(self) -> Option<usize> {
        match self {
            Self::Kernel => None,
            Self::InnerFlow { offset, ethernet } => Some(offset as usize + if ethernet { ETH_LEN } else { 0 }),
        }
    }

    /// The socket of a group of `n` that the program picks for a datagram with this UDP `payload` (for
    /// [`Steering::Kernel`], and for `n` 0 or 1: 0, though the kernel's choice there is its own).
    #[must_use]
    pub fn index(self, payload: &[u8], n: usize) -> usize {
        let Ok(n) = u32::try_from(n) else { return 0 };
        match self.flow_key(payload) {
            Some(h) if n > 1 => ((h.wrapping_mul(MIX) >> 16) % n) as usize,
            _ => 0,
        }
    }

    /// What the program steers a datagram with this UDP `payload` by: its inner flow's [`inner_flow_hash`];
    /// `None` when it reads none (not IPv4, too short, [`Steering::Kernel`]): such datagrams go to socket 0.
    /// Datagrams with equal keys go to the same socket, whatever the group's size.
    #[must_use]
    pub fn flow_key(self, payload: &[u8]) -> Option<u32> {
        let Self::InnerFlow { offset, ethernet } = self else { return None };
        let at = usize::from(offset);
        if ethernet && payload.get(at + ETH_LEN - 2..at + ETH_LEN) != Some(&[0x08, 0x00][..]) {
            return None;
        }
        inner_flow_hash(payload.get(at + if ethernet { ETH_LEN } else { 0 }..)?)
    }

    /// The classic BPF program for a group of `n` (`None`: no program, for [`Steering::Kernel`] or `n` < 2).
    fn program(self, n: usize) -> Option<Vec<Insn>> {
        let ip = u32::try_from(self.ipv4_offset()?).ok()?;
        let n = u32::try_from(n).ok().filter(|n| *n >= 2)?;
        let mut asm = Asm::new();
        let (ipv4, ports, addresses, mix, other) =
            (asm.new_label(), asm.new_label(), asm.new_label(), asm.new_label(), asm.new_label());
        if let Self::InnerFlow { ethernet: true, .. } = self {
            asm.ld_abs(Size::H, ip - 2).jeq(0x0800, ipv4, other);
        }
        let (version4, whole) = (asm.new_label(), asm.new_label());
        asm.label(ipv4)
            .ld_abs(Size::B, ip)
            .alu_k(Alu::And, 0xf0)
            .jeq(0x40, version4, other)
            .label(version4)
            // M[0] = source ^ destination.
            .ld_abs(Size::W, ip + 12)
            .tax()
            .ld_abs(Size::W, ip + 16)
            .alu_x(Alu::Xor)
            .st(0)
            // Any fragment: the addresses alone (only the first holds ports).
            .ld_abs(Size::H, ip + 6)
            .jset(0x3fff, addresses, whole)
            .label(whole)
            .ld_abs(Size::B, ip + 9);
        let is_udp = asm.new_label();
        asm.jeq(6, ports, is_udp).label(is_udp).jeq(17, ports, addresses);
        asm.label(ports)
            .ldx_ihl(ip)
            .ld_ind(Size::H, ip)
            .st(1)
            .ld_ind(Size::H, ip + 2)
            .ldx_mem(1)
            .alu_x(Alu::Xor)
            .ldx_mem(0)
            .alu_x(Alu::Xor)
            .ja(mix)
            .label(addresses)
            .ld_mem(0)
            .label(mix)
            .alu_k(Alu::Mul, MIX)
            .alu_k(Alu::Rsh, 16)
            .alu_k(Alu::Mod, n)
            .ret_a()
            .label(other)
            .ret_k(0);
        // The program above has no backward jump, no long one, every label placed once, and n >= 2.
        asm.finish().ok()
    }
}

/// The symmetric hash of an IPv4 packet's flow that [`Steering::InnerFlow`] steers by: source XOR destination
/// address, XOR (for TCP and UDP, not fragmented) source port XOR destination port. Both directions of a flow
/// hash alike. `None` when it is not IPv4 or too short for what is read (the program sends those to socket 0).
///
/// ```
/// use tweed_io::inner_flow_hash;
/// let mut ip = [0u8; 24];
/// ip[0] = 0x45; // IPv4, 20-byte header
/// ip[9] = 6; // TCP
/// ip[12..16].copy_from_slice(&[10, 1, 0, 2]);
/// ip[16..20].copy_from_slice(&[10, 2, 0, 3]);
/// ip[20..24].copy_from_slice(&[0x9c, 0x40, 0x14, 0x51]); // 40000 -> 5201
/// let there = inner_flow_hash(&ip);
/// ip[12..16].copy_from_slice(&[10, 2, 0, 3]);
/// ip[16..20].copy_from_slice(&[10, 1, 0, 2]);
/// ip[20..24].copy_from_slice(&[0x14, 0x51, 0x9c, 0x40]);
/// assert_eq!(inner_flow_hash(&ip), there);
/// assert_eq!(there, Some(0x0a01_0002 ^ 0x0a02_0003 ^ 40000 ^ 5201));
/// ```
#[must_use]
pub fn inner_flow_hash(ip: &[u8]) -> Option<u32> {
    let word = |at: usize| ip.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let half = |at: usize| ip.get(at..at + 2).map(|b| u32::from(u16::from_be_bytes([b[0], b[1]])));
    if ip.first()? & 0xf0 != 0x40 {
        return None;
    }
    let addresses = word(12)? ^ word(16)?;
    if half(6)? & 0x3fff != 0 || !matches!(ip.get(9)?, 6 | 17) {
        return Some(addresses);
    }
    // As the program's `ldxb 4*([k]&0xf)`: a header length below 20 is used as it is (the hash only needs to be
    // the same on both sides, not meaningful).
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    Some(addresses ^ half(ihl)? ^ half(ihl + 2)?)
}

impl UdpPort {
    /// Binds `n` sockets to `addr`, all with `SO_REUSEPORT` (whatever `options.reuse_port` says), in order, and
    /// steers the group as `steering` says: the socket at index `i` of the result is the one the program picks
    /// with [`Steering::index`] `== i`. With port 0, the first socket's port is the group's.
    ///
    /// Another socket of the same user that binds the same address with `SO_REUSEPORT` joins the group and
    /// shifts nothing here (it is appended), but gets no datagram from the program either.
    ///
    /// ```no_run
    /// # fn main() -> tweed_io::Result<()> {
    /// use tweed_io::{Steering, UdpOptions, UdpPort};
    /// let workers = UdpPort::bind_group("10.0.0.1:8472".parse().unwrap(), 2, UdpOptions::default(), Steering::VXLAN)?;
    /// assert_eq!(workers.len(), 2);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Bind`] when the address is taken or not local, [`Error::Io`] when `n` is 0 or above
    /// [`MAX_GROUP`], or the kernel refuses the program.
    pub fn bind_group(addr: SocketAddrV4, n: usize, options: UdpOptions, steering: Steering) -> Result<Vec<Self>> {
        if n == 0 || n > MAX_GROUP {
            let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{n} sockets (1 to {MAX_GROUP})"));
            return Err(Error::io(format!("binding a group on {addr}"), e));
        }
        let options = UdpOptions { reuse_port: true, steering, ..options };
        let mut group: Vec<Self> = Vec::with_capacity(n);
        let mut at = addr;
        for _ in 0..n {
            let port = Self::bind(at, options)?;
            at = port.local_addr();
            group.push(port);
        }
        if let Some(prog) = steering.program(n) {
            sys::attach_reuseport_cbpf(group[0].as_fd(), &prog)
                .map_err(|e| Error::io(format!("SO_ATTACH_REUSEPORT_CBPF (UDP {at})"), e))?;
        }
        Ok(group)
    }
}

#[cfg(test)]
mod tests;
