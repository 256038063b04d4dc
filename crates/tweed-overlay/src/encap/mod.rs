//! The encapsulation seam: how a node carries IP packets to its peers over the underlay.
//!
//! An [`Encapsulation`] says how big its headers are (the one source of every MTU: [`Encapsulation::overhead`]),
//! builds per-peer state from a peer's [`PeerConfig`], writes its header into the headroom in front of an inner
//! packet ([`Encapsulation::encap`]), and checks, strips and attributes what the underlay delivered
//! ([`Encapsulation::decap`]). The node does the rest around it, the same for every encapsulation: routing, the
//! MTU rule, the outer headers of its [`Transport`] (Ethernet, IPv4 and UDP written from a per-peer template, or
//! only Ethernet), the checks of those outer headers on the way in, and the inner source check against the peer's
//! subnet.
//!
//! flannel's backends are implementations in this module: [`Vxlan`], [`Udp`], [`HostGw`], and [`Flannel`], which
//! picks one of them from a [`BackendConfig`](crate::BackendConfig) at run time. An embedder's own (an encrypted
//! tunnel, say) implements the trait in its own crate and builds its node with
//! [`Node::with_encapsulation`](crate::Node::with_encapsulation).
//!
//! ```
//! use tweed_overlay::encap::{Encapsulation, HostGw, Udp, Vxlan};
//! use tweed_wire::ethernet::MacAddr;
//!
//! // What flannel sets as the MTU of flannel.1 / flannel0 on a 1500-byte underlay.
//! assert_eq!(1500 - Vxlan::new(MacAddr::new(2, 0, 0, 0, 0, 1), 1, 8472).overhead(), 1450);
//! assert_eq!(1500 - Udp::new(8285).overhead(), 1472);
//! assert_eq!(1500 - HostGw.overhead(), 1500);
//! ```

use core::fmt;
use core::net::SocketAddr;

use tweed_packet::PacketBuf;

use crate::config::{ConfigError, PeerConfig};
use crate::verdict::DropReason;

mod flannel;
mod host_gw;
pub(crate) mod outer;
mod peer;
mod table;
mod udp;
mod vxlan;

pub use flannel::{Flannel, FlannelPeer};
pub use host_gw::HostGw;
pub use outer::{flow_hash, port_in_range};
pub use peer::{Peer, PeerId};
pub(crate) use table::Hop;
pub use table::PeerTable;
pub use udp::Udp;
pub use vxlan::Vxlan;

/// The length of an Ethernet header: where the IP packet of a frame starts.
pub const ETH_LEN: usize = 14;

/// How the underlay carries what an encapsulation makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// In UDP datagrams over IPv4 to the peer's address and `port`, from `port` unless the encapsulation picks a
    /// source port. The node writes the outer Ethernet, IPv4 and UDP headers from a per-peer template (a UDP
    /// socket sends only the payload, from [`Verdict::Underlay`](crate::Verdict::Underlay)'s `payload_offset`)
    /// and, on the way in, checks them on whole frames (or takes the sender from `meta.remote` on a socket's
    /// datagrams).
    Udp {
        /// The UDP port, destination and default source.
        port: u16,
        /// Whether the outer UDP checksum is filled (zero otherwise, which UDP over IPv4 allows).
        checksum: bool,
    },
    /// In Ethernet frames on the underlay's segment, from the node's MAC to the peer's: no outer IP (host-gw).
    Ethernet,
}

impl Transport {
    /// What the transport adds to an IP packet against the underlay's IP MTU: 28 (IPv4 + UDP) or 0.
    #[must_use]
    pub const fn overhead(self) -> usize {
        match self {
            Self::Udp { .. } => 20 + 8,
            Self::Ethernet => 0,
        }
    }

    /// The outer headers' length in front of the encapsulation's own header, on a whole frame: 42 or 14.
    #[must_use]
    pub const fn header_len(self) -> usize {
        ETH_LEN + self.overhead()
    }
}

/// What [`Encapsulation::decap`] found: the peer that sent it and where the inner IPv4 packet starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decap {
    /// The sending peer.
    pub peer: PeerId,
    /// Where the inner IPv4 packet starts in the buffer: [`ETH_LEN`] behind an inner Ethernet header (which the
    /// node rewrites for local delivery), or 0.
    pub l3: usize,
}

impl Decap {
    /// A decapsulated packet from `peer`, its IPv4 packet at `l3`.
    #[must_use]
    pub const fn new(peer: PeerId, l3: usize) -> Self {
        Self { peer, l3 }
    }
}

/// An encapsulation: what a node does to carry an IP packet to a peer over the underlay, and to take it back.
///
/// The node calls [`Encapsulation::encap`] for every packet routed to a peer, after the MTU rule, with the buffer
/// holding the packet at `l3` (behind an Ethernet header when `l3` is [`ETH_LEN`]); the encapsulation leaves its
/// own header (and inner frame, if it carries one) at the start of the buffer, written into the headroom, and the
/// node puts the [`Transport`]'s outer headers in front. On the way in, the node checks the transport's outer
/// headers and calls [`Encapsulation::decap`] with the buffer at the encapsulation's header, which checks it,
/// identifies the peer in the [`PeerTable`], strips what is not the inner packet and says where that starts.
///
/// A failure is a [`DropReason`]: the node counts it. Neither call may panic, whatever the bytes, nor allocate.
/// Per-peer state that changes on the data path (a counter, a replay window) needs interior mutability: peers
/// are shared between workers through snapshots.
///
/// The repository's `examples/psk_tunnel/` implements one outside this crate: an authenticated, encrypted tunnel
/// with a pre-shared key.
///
/// A complete one, four bytes of magic in front of the IP packet over UDP port 7000, between two sites whose only
/// ports are TUNs (IP ports): one packet from site 1's TUN leaves node `a` as a frame that node `b` takes from the
/// underlay and sends out of site 2's TUN.
///
/// ```
/// use core::net::SocketAddr;
///
/// use tweed_overlay::encap::{Decap, Encapsulation, Peer, PeerTable, Transport};
/// use tweed_overlay::{ConfigError, DropReason, Instant, Node, NodeBuilder, Outputs, PeerConfig, Verdict};
/// use tweed_packet::{Batch, PacketBuf, Pool, PoolConfig, PortId};
///
/// const MAGIC: [u8; 4] = *b"TWD1";
///
/// /// The IP packet behind [`MAGIC`], in UDP to port 7000.
/// struct Magic;
///
/// impl Encapsulation for Magic {
///     type Peer = ();
///
///     fn transport(&self) -> Transport {
///         Transport::Udp { port: 7000, checksum: false }
///     }
///
///     fn header_len(&self) -> usize {
///         MAGIC.len()
///     }
///
///     fn peer(&self, _config: &PeerConfig) -> Result<(), ConfigError> {
///         Ok(())
///     }
///
///     fn encap(&self, _peer: &Peer<()>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
///         buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?; // no Ethernet header inside
///         buf.push_front(MAGIC.len()).map_err(|_| DropReason::NoHeadroom)?.copy_from_slice(&MAGIC);
///         Ok(None)
///     }
///
///     fn decap(&self, buf: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<()>) -> Result<Decap, DropReason> {
///         let (id, _) = peers.by_addr(from.ip()).ok_or(DropReason::UnknownPeer)?;
///         if buf.data().get(..MAGIC.len()) != Some(&MAGIC[..]) {
///             return Err(DropReason::Unauthenticated);
///         }
///         buf.pull_front(MAGIC.len()).map_err(|_| DropReason::UnderlayMalformed)?;
///         Ok(Decap::new(id, 0))
///     }
/// }
///
/// // A site: its TUN on port 1 with `lan` behind it, the other site's `remote` through its peer at `peer_ip`.
/// let site = |ip: [u8; 4], mac: &str, lan: &str, peer_ip: [u8; 4], peer_mac: &str, remote: &str| {
///     let config = NodeBuilder::routed(ip.into(), mac.parse()?)
///         .ip_port(1)
///         .route(lan.parse()?, 1)
///         .peer(PeerConfig::new(remote.parse()?, peer_ip).with_node_mac(peer_mac.parse()?))
///         .into_config();
///     Ok::<_, Box<dyn std::error::Error>>(Node::with_encapsulation(config, Magic)?)
/// };
/// let (mac_a, mac_b) = ("02:00:00:00:00:01", "02:00:00:00:00:02");
/// let mut a = site([192, 168, 0, 1], mac_a, "10.1.0.0/24", [192, 168, 0, 2], mac_b, "10.2.0.0/24")?;
/// let mut b = site([192, 168, 0, 2], mac_b, "10.2.0.0/24", [192, 168, 0, 1], mac_a, "10.1.0.0/24")?;
/// assert_eq!(a.inner_mtu(), 1500 - 20 - 8 - 4);
///
/// let mut pool = Pool::new(PoolConfig::default())?;
/// let (mut batch, mut out) = (Batch::new(1), Outputs::new(8));
/// let mut buf = pool.get().ok_or("pool")?;
/// buf.extend_from_slice(&ipv4_packet([10, 1, 0, 5], [10, 2, 0, 7], 64))?;
/// buf.meta_mut().ingress = PortId(1); // from site 1's TUN
/// batch.push(buf).map_err(|_| "batch")?;
/// a.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
/// let (mut frame, verdict) = out.drain().next().ok_or("no output")?;
/// // Outer Ethernet, IPv4 and UDP (42 bytes) written by the node, then the magic.
/// assert_eq!(verdict, Verdict::Underlay { dst: "192.168.0.2:7000".parse()?, payload_offset: 42 });
/// assert_eq!(&frame.data()[42..46], b"TWD1");
///
/// frame.meta_mut().ingress = PortId(0); // the underlay port: whole frames
/// batch.push(frame).map_err(|_| "batch")?;
/// b.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
/// let (packet, verdict) = &out.as_slice()[0];
/// assert_eq!(*verdict, Verdict::Port(PortId(1))); // out of site 2's TUN
/// let ip = tweed_wire::ipv4::Packet::new_checked(packet.data())?;
/// assert_eq!((ip.src_addr().octets(), ip.dst_addr().octets(), ip.ttl()), ([10, 1, 0, 5], [10, 2, 0, 7], 62));
/// assert_eq!(b.counters().from_peer, 1);
/// out.recycle(&mut pool);
/// # fn ipv4_packet(src: [u8; 4], dst: [u8; 4], ttl: u8) -> Vec<u8> {
/// #     use tweed_wire::ipv4::{Packet, Protocol, Repr};
/// #     let mut p = vec![0u8; 28];
/// #     let repr = Repr { src_addr: src.into(), dst_addr: dst.into(), protocol: Protocol::UDP, payload_len: 8, ttl,
/// #         dscp: 0, ecn: 0, ident: 1, dont_frag: false, more_frags: false, frag_offset: 0 };
/// #     repr.emit(&mut Packet::new_unchecked(&mut p[..]));
/// #     p
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Encapsulation: Send + Sync + 'static {
    /// The encapsulation's state for one peer.
    type Peer: Send + Sync + fmt::Debug + 'static;

    /// How the underlay carries it.
    fn transport(&self) -> Transport;

    /// The bytes between the transport's headers and the inner IP packet (VXLAN: its header and the inner
    /// Ethernet header, 22).
    fn header_len(&self) -> usize;

    /// The bytes after the inner IP packet (an authentication tag); 0 by default.
    fn trailer_len(&self) -> usize {
        0
    }

    /// What it adds to an inner IP packet against the underlay's IP MTU, the transport's part included: the
    /// inner MTU is the underlay's MTU less this. The one definition of every MTU in the crate.
    #[allow(clippy::cast_possible_truncation)] // headers are far below 64 KiB
    fn overhead(&self) -> u16 {
        (self.transport().overhead() + self.header_len() + self.trailer_len()) as u16
    }

    /// Builds its state for a peer from the peer's configuration (its MACs, its
    /// [`params`](PeerConfig::params): a key, say).
    ///
    /// # Errors
    /// A field it needs is missing or invalid.
    fn peer(&self, config: &PeerConfig) -> Result<Self::Peer, ConfigError>;

    /// A key under which [`PeerTable::by_key`] finds the peer (host-gw: its MAC), if the encapsulation identifies
    /// peers by something other than their underlay address.
    fn peer_key(&self, _peer: &Peer<Self::Peer>) -> Option<u64> {
        None
    }

    /// Encapsulates the IPv4 packet at `buf.data()[l3..]` for `peer`: afterwards the buffer starts with the
    /// encapsulation's header. Returns the UDP source port to use, or `None` for the transport's port.
    ///
    /// # Errors
    /// The packet cannot be encapsulated ([`DropReason::NoHeadroom`], ...).
    fn encap(&self, peer: &Peer<Self::Peer>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason>;

    /// Checks what `from` sent (the buffer starts at the encapsulation's header: the UDP payload, or with
    /// [`Transport::Ethernet`] the whole frame, `from` then unspecified), finds the peer in `peers`, and strips it
    /// down to the inner packet (and inner Ethernet header, if any).
    ///
    /// # Errors
    /// The drop reason: an unknown peer, a malformed header, a failed authentication...
    fn decap(&self, buf: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<Self::Peer>) -> Result<Decap, DropReason>;
}
