//! The encapsulation seam: how a node carries IP packets to its peers over the underlay.
//!
//! An [`Encapsulation`] says how big its headers are (the one source of every MTU: [`Encapsulation::overhead`]), builds
//! per-peer state from a peer's [`PeerConfig`](crate::PeerConfig), writes its header into the headroom in front of an
//! inner packet ([`Encapsulation::encap`]), and checks, strips and attributes what the underlay delivered
//! ([`Encapsulation::decap`]). The node does the rest around it, the same for every encapsulation: routing, the MTU
//! rule, the outer headers of its [`Transport`] (Ethernet, IPv4 and UDP written from a per-peer template, or only
//! Ethernet), the checks of those outer headers on the way in, and the inner source check against the peer's subnet.
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

mod flannel;
mod host_gw;
pub(crate) mod outer;
mod peer;
mod seam;
mod table;
mod udp;
mod vxlan;

pub use flannel::{Flannel, FlannelPeer};
pub use host_gw::HostGw;
pub use outer::{flow_hash, port_in_range};
pub use peer::{Peer, PeerId};
pub use seam::Encapsulation;
pub(crate) use table::Hop;
pub use table::PeerTable;
pub use udp::Udp;
pub use vxlan::Vxlan;

/// The length of an Ethernet header: where the IP packet of a frame starts.
///
/// ```
/// use tweed_overlay::encap::{ETH_LEN, Encapsulation, Vxlan};
/// use tweed_wire::ethernet::MacAddr;
///
/// // VXLAN's own header is its 8 bytes and the inner frame's Ethernet header.
/// assert_eq!(Vxlan::new(MacAddr::new(2, 0, 0, 0, 0, 1), 1, 8472).header_len(), 8 + ETH_LEN);
/// ```
pub const ETH_LEN: usize = 14;

/// How the underlay carries what an encapsulation makes.
///
/// ```
/// use tweed_overlay::encap::{Encapsulation, HostGw, Transport, Udp};
///
/// assert_eq!(Udp::new(8285).transport(), Transport::Udp { port: 8285, checksum: false });
/// assert_eq!(HostGw.transport(), Transport::Ethernet);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// In UDP datagrams over IPv4 to the peer's address and `port`, from `port` unless the encapsulation picks a
    /// source port. The node writes the outer Ethernet, IPv4 and UDP headers from a per-peer template (a UDP
    /// socket sends only the payload, from [`Verdict::Underlay`](crate::Verdict::Underlay)'s `payload_offset`)
    /// and, on the way in, checks them on whole frames (or takes the sender from `meta.remote()` on a socket's
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
    ///
    /// ```
    /// use tweed_overlay::encap::Transport;
    ///
    /// assert_eq!(1500 - Transport::Udp { port: 7000, checksum: false }.overhead(), 1472);
    /// assert_eq!(Transport::Ethernet.overhead(), 0);
    /// ```
    #[must_use]
    pub const fn overhead(self) -> usize {
        match self {
            Self::Udp { .. } => 20 + 8,
            Self::Ethernet => 0,
        }
    }

    /// The outer headers' length in front of the encapsulation's own header, on a whole frame: 42 or 14.
    ///
    /// ```
    /// use tweed_overlay::encap::Transport;
    ///
    /// // Where a UDP socket's payload starts in a whole frame (`Verdict::Underlay`'s `payload_offset`).
    /// assert_eq!(Transport::Udp { port: 7000, checksum: false }.header_len(), 42);
    /// assert_eq!(Transport::Ethernet.header_len(), 14);
    /// ```
    #[must_use]
    pub const fn header_len(self) -> usize {
        ETH_LEN + self.overhead()
    }
}

/// What [`Encapsulation::decap`] found: the peer that sent it and where the inner IPv4 packet starts.
///
/// ```
/// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
/// /// One byte, 0x5a, in front of the IP packet.
/// struct Marked;
///
/// # impl Encapsulation for Marked {
/// #     type Peer = ();
/// #     fn transport(&self) -> Transport { Transport::Udp { port: 7000, checksum: false } }
/// #     fn header_len(&self) -> usize { 0 }
/// #     fn peer(&self, _: &PeerConfig) -> Result<(), ConfigError> { Ok(()) }
/// #     fn encap(&self, _: &Peer<()>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
/// #         buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?;
/// #         Ok(None)
/// #     }
///     fn decap(&self, buf: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<()>) -> Result<Decap, DropReason> {
///         let (id, _) = peers.by_addr(from.ip()).ok_or(DropReason::UnknownPeer)?;
///         if buf.data().first() != Some(&0x5a) {
///             return Err(DropReason::Unauthenticated);
///         }
///         buf.pull_front(1).map_err(|_| DropReason::UnderlayMalformed)?;
///         Ok(Decap::new(id, 0)) // the IP packet starts at 0: no Ethernet header inside
///     }
/// # }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut node = site(Marked, PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]))?;
/// assert_eq!(run(&mut node, 9, [192, 168, 0, 2], &datagram(&[0x5a])).1, Verdict::Port(PortId(1)));
/// assert_eq!(run(&mut node, 9, [192, 168, 0, 2], &datagram(&[0x00])).1, Verdict::Drop(DropReason::Unauthenticated));
/// # Ok(())
/// # }
/// ```
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
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// /// The peer's whole Ethernet frame (its own header included) inside UDP.
    /// struct Frames;
    ///
    /// # impl Encapsulation for Frames {
    /// #     type Peer = ();
    /// #     fn transport(&self) -> Transport { Transport::Udp { port: 7000, checksum: false } }
    /// #     fn header_len(&self) -> usize { 0 }
    /// #     fn peer(&self, _: &PeerConfig) -> Result<(), ConfigError> { Ok(()) }
    /// #     fn encap(&self, _: &Peer<()>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
    /// #         buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?;
    /// #         Ok(None)
    /// #     }
    ///     fn decap(&self, buf: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<()>) -> Result<Decap, DropReason> {
    ///         let (id, _) = peers.by_addr(from.ip()).ok_or(DropReason::UnknownPeer)?;
    ///         if buf.data().get(12..14) != Some(&[0x08, 0x00][..]) {
    ///             return Err(DropReason::InnerMismatch); // not IPv4
    ///         }
    ///         Ok(Decap::new(id, ETH_LEN))
    ///     }
    /// # }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut node = site(Frames, PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]))?;
    /// let frame = [&[0u8; 12][..], &[0x08, 0x00]].concat();
    /// assert_eq!(run(&mut node, 9, [192, 168, 0, 2], &datagram(&frame)).1, Verdict::Port(PortId(1)));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub const fn new(peer: PeerId, l3: usize) -> Self {
        Self { peer, l3 }
    }
}
