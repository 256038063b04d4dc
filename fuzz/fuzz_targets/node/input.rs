//! The `node` target's input: a [`Setup`] (fixed-size, read byte by byte) and then [`Op`]s until the data runs
//! out. Every type is `arbitrary`-derived except [`Bytes`] (a little-endian `u16` length, then up to that many
//! bytes), so that `seeds/make_seeds.py` can write inputs by hand: integers are little-endian, a `bool` is one
//! byte (low bit), an `Option` a `bool` then the value, an enum a little-endian `u32` whose variant is
//! `(x * variants) >> 32`, a struct its fields in order. Keep the script in step with any change here.

use arbitrary::{Arbitrary, Result, Unstructured};

/// The node and its buffers. Plain bytes, each read modulo its range (see `node.rs`), so that every input is
/// a valid configuration.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Setup {
    /// 0 vxlan, 1 udp, 2 host-gw (modulo 3).
    pub backend: u8,
    /// bit 0 a socket port, bit 1 a host (TUN) port, bit 2 the outer UDP checksum, bit 3 an underlay gateway MAC.
    pub flags: u8,
    /// Pod ports: 1 + pods % 4.
    pub pods: u8,
    /// The peers added at the start: a bitmask over the candidates.
    pub peers: u8,
    /// An index into the MTU table.
    pub mtu: u8,
    /// `arp_queue`: 1 + arp_queue % 16.
    pub arp_queue: u8,
    /// `arp_timeout_ms`: 100 * (1 + arp_timeout % 32).
    pub arp_timeout: u8,
    /// `arp_retry_ms`: 50 * (1 + arp_retry % 32).
    pub arp_retry: u8,
    /// ICMP bucket: per second 1 + icmp % 16, burst 1 + icmp / 16.
    pub icmp: u8,
    /// Pool buffers: 8 + pool % 512.
    pub pool: u16,
    /// Batch capacity: 1 + batch % 300.
    pub batch: u16,
    /// The default room in `Outputs`: 1 + out % 300.
    pub out: u16,
}

/// Raw bytes: a little-endian `u16` length, then that many bytes (fewer if the input ends).
#[derive(Clone)]
pub struct Bytes(pub Vec<u8>);

impl core::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Bytes({} bytes", self.0.len())?;
        for b in self.0.iter().take(64) {
            write!(f, " {b:02x}")?;
        }
        f.write_str(")")
    }
}

impl<'a> Arbitrary<'a> for Bytes {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let len = usize::from(u16::arbitrary(u)?);
        let take = len.min(u.len());
        Ok(Self(u.bytes(take)?.to_vec()))
    }
}

/// One step of a run.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// A frame from the pod on port `1 + port % 8` (ports beyond the node's pods are unknown ports).
    Pod { port: u8, frame: PodFrame },
    /// A whole frame on the underlay port, built for the backend.
    Underlay(Tunnelled),
    /// A datagram's payload on the socket port, from `meta.remote()`.
    Socket(Tunnelled),
    /// An IP packet from the host's TUN.
    Host(IpSpec),
    /// Raw bytes on any port.
    Raw { port: PortSel, remote: u8, bytes: Bytes },
    /// Runs the staged frames through the node, as the driver does (with room for `out` outputs, or the setup's
    /// when 0), after time moves by `dt`.
    Process { dt: Dt, out: u16 },
    /// `count % 300` frames (`count % 10000` when `kind >= 0xf0`) from pod `1 + port % 8`, run through the node
    /// in full batches at once: a busy or hostile pod (see `Harness::storm` for the kinds).
    Storm { port: u8, kind: u8, count: u16, seed: u32 },
    /// Adds candidate peer `idx % 6`, shaped by `shape`.
    AddPeer(PeerOp),
    /// Changes a peer.
    UpdatePeer(PeerOp),
    /// Removes a peer (bit 0 of `shape`: by a subnet no peer has).
    RemovePeer(PeerOp),
}

/// A peer change: the candidate and how its config deviates from the right one.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct PeerOp {
    pub idx: u8,
    /// bit 0 no VTEP MAC, bit 1 no node MAC, bit 2 another candidate's node IP, bit 3 our node IP, bit 4 a /16
    /// (overlapping), bit 5 a multicast VTEP MAC, bit 6 a fresh node IP, bit 7 fresh MACs.
    pub shape: u8,
}

/// How time moves before a `Process`.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Dt {
    Same,
    Millis(u16),
    Secs(u8),
    /// Backwards (a clock stepped back; the node must neither panic nor misbehave).
    Back(u16),
}

/// Which port raw bytes arrive on.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum PortSel {
    Pod(u8),
    Underlay,
    Socket,
    Host,
    Other(u16),
}

/// A frame a pod sends.
#[derive(Arbitrary, Debug, Clone)]
pub enum PodFrame {
    /// The pod asks for the gateway's MAC (the node learns the pod from it).
    Hello,
    /// An ARP packet.
    Arp(ArpSpec),
    /// An IPv4 packet, by default to the gateway MAC from the pod's own.
    Ip { dst: MacSel, src: MacSel, ip: IpSpec },
    /// Another Ethernet frame: `len` bytes of payload.
    L2 { dst: MacSel, src: MacSel, ethertype: u16, len: u8, tweak: Tweak },
}

/// An ARP packet from a pod.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct ArpSpec {
    /// 1 request, 2 reply, anything else as is.
    pub op: u16,
    pub eth_dst: MacSel,
    pub sender_mac: MacSel,
    pub sender_ip: Addr,
    pub target_mac: MacSel,
    pub target_ip: Addr,
    pub tweak: Tweak,
}

/// A MAC address, by role.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum MacSel {
    /// The sending pod's own, or the right one for the field.
    Own,
    Gateway,
    Pod(u8),
    Broadcast,
    Multicast(u8),
    Zero,
    OurVtep,
    OurNode,
    PeerVtep(u8),
    PeerNode(u8),
    Any([u8; 6]),
}

/// An IPv4 address, by role.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Addr {
    /// The sender's own (a pod's address, the host's gateway address, a peer's pod).
    Own,
    Gateway,
    NodeIp,
    /// Local pod `n % 8` (only the first few have a port).
    Pod(u8),
    /// Host `host` of candidate peer `peer % 6`'s subnet.
    Remote {
        peer: u8,
        host: u8,
    },
    PeerNode(u8),
    /// 0/8, 127/8, 224/4, 240/4 or limited broadcast, by `n % 5`.
    Martian(u8),
    /// Our subnet's broadcast address.
    SubnetBroadcast,
    Any(u32),
}

/// An IPv4 packet.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct IpSpec {
    pub src: Addr,
    pub dst: Addr,
    pub ttl: u8,
    /// bit 0 DF, bit 1 MF, bit 2 a fragment offset, bit 3 4 bytes of options, bit 4 a bad header checksum,
    /// bit 5 a total length beyond the frame, bit 6 link padding after the packet.
    pub flags: u8,
    pub l4: L4,
    /// Payload bytes after the L4 header: `len % 1700`.
    pub len: u16,
    pub tweak: Tweak,
}

/// The transport header of an [`IpSpec`].
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum L4 {
    EchoRequest {
        ident: u16,
        seq: u16,
    },
    EchoReply,
    Udp {
        sport: u16,
        dport: u16,
    },
    Tcp {
        sport: u16,
        dport: u16,
        flags: u8,
    },
    /// An ICMP error quoting a packet (`quoted_proto`: the quoted packet's protocol, 1 is itself ICMP).
    IcmpError {
        msg_type: u8,
        code: u8,
        quoted_proto: u8,
    },
    Other(u8),
}

/// A change to the built bytes, to go past what the builders make right.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Tweak {
    None,
    Xor { at: u16, val: u8 },
    Truncate(u16),
    Extend(u8),
}

/// A packet from a peer: the inner IPv4 packet and the encapsulation around it.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Tunnelled {
    /// Candidate peer `peer % 8` (6 and 7 are unknown).
    pub peer: u8,
    pub inner: IpSpec,
    /// bit 0 outer destination MAC not ours, bit 1 outer destination IP not ours, bit 2 outer fragment, bit 3
    /// wrong UDP port, bit 4 wrong VNI, bit 5 bad VXLAN flags, bit 6 fill the outer UDP checksum, bit 7 outer
    /// protocol not UDP.
    pub outer: u8,
    /// bit 0 inner source MAC not the peer's VTEP, bit 1 inner destination not our VTEP, bit 2 inner ethertype
    /// not IPv4, bit 3 a wrong outer UDP checksum.
    pub inner_eth: u8,
    pub vni: u32,
    pub tweak: Tweak,
}
