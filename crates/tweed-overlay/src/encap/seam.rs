//! The [`Encapsulation`] trait: the seam between the node and how it carries packets to its peers.

use core::fmt;
use core::net::SocketAddr;

use tweed_packet::PacketBuf;

use super::{Decap, Peer, PeerTable, Transport};
use crate::config::{ConfigError, PeerConfig};
use crate::verdict::DropReason;

/// An encapsulation: what a node does to carry an IP packet to a peer over the underlay, and to take it back.
///
/// The node calls [`Encapsulation::encap`] for every packet routed to a peer, after the MTU rule, with the buffer
/// holding the packet at `l3` (behind an Ethernet header when `l3` is [`ETH_LEN`](super::ETH_LEN)); the encapsulation
/// leaves its own header (and inner frame, if it carries one) at the start of the buffer, written into the headroom,
/// and the node puts the [`Transport`]'s outer headers in front. On the way in, the node checks the transport's outer
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
    ///
    /// ```
    /// use tweed_overlay::encap::{Encapsulation, HostGw, Transport, Vxlan};
    /// use tweed_wire::ethernet::MacAddr;
    ///
    /// let vxlan = Vxlan::new(MacAddr::new(2, 0, 0, 0, 0, 1), 1, 8472).with_udp_checksum(true);
    /// assert_eq!(vxlan.transport(), Transport::Udp { port: 8472, checksum: true });
    /// assert_eq!(HostGw.transport(), Transport::Ethernet);
    /// ```
    fn transport(&self) -> Transport;

    /// The bytes between the transport's headers and the inner IP packet (VXLAN: its header and the inner
    /// Ethernet header, 22).
    ///
    /// ```
    /// use tweed_overlay::encap::{Encapsulation, Udp, Vxlan};
    /// use tweed_wire::ethernet::MacAddr;
    ///
    /// assert_eq!(Vxlan::new(MacAddr::new(2, 0, 0, 0, 0, 1), 1, 8472).header_len(), 22);
    /// assert_eq!(Udp::default().header_len(), 0); // the IP packet is the whole payload
    /// ```
    fn header_len(&self) -> usize;

    /// The bytes after the inner IP packet (an authentication tag); 0 by default.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// /// An 8-byte header and a 16-byte authentication tag around the IP packet.
    /// struct Sealed;
    ///
    /// # impl Encapsulation for Sealed {
    /// #     type Peer = ();
    /// #     fn transport(&self) -> Transport { Transport::Udp { port: 7000, checksum: false } }
    /// #     fn peer(&self, _: &PeerConfig) -> Result<(), ConfigError> { Ok(()) }
    /// #     fn encap(&self, _: &Peer<()>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
    /// #         buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?;
    /// #         Ok(None)
    /// #     }
    /// #     fn decap(&self, _: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<()>) -> Result<Decap, DropReason> {
    /// #         Ok(Decap::new(peers.by_addr(from.ip()).ok_or(DropReason::UnknownPeer)?.0, 0))
    /// #     }
    ///     fn header_len(&self) -> usize {
    ///         8
    ///     }
    ///
    ///     fn trailer_len(&self) -> usize {
    ///         16
    ///     }
    /// # }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// assert_eq!(Sealed.overhead(), 20 + 8 + 8 + 16); // IPv4, UDP, header, tag
    /// let node = site(Sealed, PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]))?;
    /// assert_eq!(node.inner_mtu(), 1500 - 52);
    /// # Ok(())
    /// # }
    /// ```
    fn trailer_len(&self) -> usize {
        0
    }

    /// What it adds to an inner IP packet against the underlay's IP MTU, the transport's part included: the
    /// inner MTU is the underlay's MTU less this. The one definition of every MTU in the crate.
    ///
    /// ```
    /// use tweed_overlay::encap::Encapsulation;
    /// use tweed_overlay::{NodeBuilder, VxlanConfig};
    ///
    /// let node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .vxlan(VxlanConfig::new("02:00:00:00:00:01".parse()?))
    ///     .mtu(9000)
    ///     .build()?;
    /// assert_eq!(node.encapsulation().overhead(), 50);
    /// assert_eq!(node.inner_mtu(), 8950);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::cast_possible_truncation)] // headers are far below 64 KiB
    fn overhead(&self) -> u16 {
        (self.transport().overhead() + self.header_len() + self.trailer_len()) as u16
    }

    /// Builds its state for a peer from the peer's configuration (its MACs, its
    /// [`params`](PeerConfig::params): a key, say).
    ///
    /// ```
    /// use tweed_overlay::encap::{Encapsulation, Vxlan};
    /// use tweed_overlay::{ConfigError, PeerConfig};
    /// use tweed_wire::ethernet::MacAddr;
    ///
    /// let vxlan = Vxlan::new(MacAddr::new(2, 0, 0, 0, 0, 1), 1, 8472);
    /// let peer = PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]);
    /// let missing = ConfigError::MissingMac { subnet: peer.subnet, field: "vtep_mac" };
    /// assert_eq!(vxlan.peer(&peer), Err(missing));
    /// let vtep = MacAddr::new(2, 0, 0, 0, 0, 2);
    /// assert_eq!(vxlan.peer(&peer.with_vtep_mac(vtep))?, vtep);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A field it needs is missing or invalid.
    fn peer(&self, config: &PeerConfig) -> Result<Self::Peer, ConfigError>;

    /// A key under which [`PeerTable::by_key`] finds the peer (host-gw: its MAC), if the encapsulation identifies
    /// peers by something other than their underlay address.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// /// Peers known by the one-byte key (their `key` parameter) in front of the IP packet, wherever it comes from.
    /// struct Roaming;
    ///
    /// # impl Encapsulation for Roaming {
    /// #     type Peer = u8;
    /// #     fn transport(&self) -> Transport { Transport::Udp { port: 7000, checksum: false } }
    /// #     fn header_len(&self) -> usize { 0 }
    /// #     fn peer(&self, config: &PeerConfig) -> Result<u8, ConfigError> {
    /// #         config.param("key").and_then(|k| k.parse().ok()).ok_or(ConfigError::Parse("key".into()))
    /// #     }
    /// #     fn encap(&self, _: &Peer<u8>, _: &mut PacketBuf, _: usize) -> Result<Option<u16>, DropReason> { Ok(None) }
    ///     fn peer_key(&self, peer: &Peer<u8>) -> Option<u64> {
    ///         Some(u64::from(*peer.state()))
    ///     }
    ///
    ///     fn decap(&self, buf: &mut PacketBuf, _: SocketAddr, peers: &PeerTable<u8>) -> Result<Decap, DropReason> {
    ///         let key = buf.data().first().ok_or(DropReason::UnderlayMalformed)?;
    ///         let (id, _) = peers.by_key(u64::from(*key)).ok_or(DropReason::UnknownPeer)?;
    ///         buf.pull_front(1).map_err(|_| DropReason::UnderlayMalformed)?;
    ///         Ok(Decap::new(id, 0))
    ///     }
    /// # }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let peer = PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]).with_param("key", "42");
    /// let mut node = site(Roaming, peer)?;
    /// assert_eq!(run(&mut node, 9, [172, 16, 0, 9], &datagram(&[42])).1, Verdict::Port(PortId(1)));
    /// assert_eq!(run(&mut node, 9, [192, 168, 0, 2], &datagram(&[7])).1, Verdict::Drop(DropReason::UnknownPeer));
    /// # Ok(())
    /// # }
    /// ```
    fn peer_key(&self, _peer: &Peer<Self::Peer>) -> Option<u64> {
        None
    }

    /// Encapsulates the IPv4 packet at `buf.data()[l3..]` for `peer`: afterwards the buffer starts with the
    /// encapsulation's header. Returns the UDP source port to use, or `None` for the transport's port.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// /// The IP packet behind its length (two bytes), from UDP source port 40000.
    /// struct Prefixed;
    ///
    /// # impl Encapsulation for Prefixed {
    /// #     type Peer = ();
    /// #     fn transport(&self) -> Transport { Transport::Udp { port: 7000, checksum: false } }
    /// #     fn header_len(&self) -> usize { 0 }
    /// #     fn peer(&self, _: &PeerConfig) -> Result<(), ConfigError> { Ok(()) }
    /// #     fn decap(&self, _: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<()>) -> Result<Decap, DropReason> {
    /// #         Ok(Decap::new(peers.by_addr(from.ip()).ok_or(DropReason::UnknownPeer)?.0, 0))
    /// #     }
    ///     fn encap(&self, _peer: &Peer<()>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
    ///         buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?;
    ///         let len = u16::try_from(buf.data().len()).map_err(|_| DropReason::TooBig)?;
    ///         buf.push_front(2).map_err(|_| DropReason::NoHeadroom)?.copy_from_slice(&len.to_be_bytes());
    ///         Ok(Some(40000))
    ///     }
    /// # }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut node = site(Prefixed, PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]))?;
    /// let (frame, verdict) = run(&mut node, 1, [0; 4], &ipv4([10, 1, 0, 5], [10, 2, 0, 7]));
    /// assert_eq!(verdict, Verdict::Underlay { dst: "192.168.0.2:7000".parse()?, payload_offset: 42 });
    /// assert_eq!(frame[42..44], [0, 28]); // the length, then the 28-byte packet
    /// assert_eq!(frame[34..36], 40000u16.to_be_bytes()); // the outer UDP source port
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// The packet cannot be encapsulated ([`DropReason::NoHeadroom`], ...).
    fn encap(&self, peer: &Peer<Self::Peer>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason>;

    /// Checks what `from` sent (the buffer starts at the encapsulation's header: the UDP payload, or with
    /// [`Transport::Ethernet`] the whole frame, `from` then unspecified), finds the peer in `peers`, and strips it
    /// down to the inner packet (and inner Ethernet header, if any).
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// /// The IP packet behind its length (two bytes).
    /// struct Prefixed;
    ///
    /// # impl Encapsulation for Prefixed {
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
    ///         let Some(&[hi, lo]) = buf.data().get(..2) else { return Err(DropReason::UnderlayMalformed) };
    ///         if usize::from(u16::from_be_bytes([hi, lo])) != buf.data().len() - 2 {
    ///             return Err(DropReason::UnderlayMalformed);
    ///         }
    ///         buf.pull_front(2).map_err(|_| DropReason::UnderlayMalformed)?;
    ///         Ok(Decap::new(id, 0))
    ///     }
    /// # }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut node = site(Prefixed, PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]))?;
    /// assert_eq!(run(&mut node, 9, [192, 168, 0, 2], &datagram(&[0, 28])).1, Verdict::Port(PortId(1)));
    /// let bad_length = run(&mut node, 9, [192, 168, 0, 2], &datagram(&[0, 99])).1;
    /// assert_eq!(bad_length, Verdict::Drop(DropReason::UnderlayMalformed));
    /// assert_eq!(run(&mut node, 9, [192, 168, 0, 3], &datagram(&[0, 28])).1, Verdict::Drop(DropReason::UnknownPeer));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// The drop reason: an unknown peer, a malformed header, a failed authentication...
    fn decap(&self, buf: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<Self::Peer>) -> Result<Decap, DropReason>;
}
