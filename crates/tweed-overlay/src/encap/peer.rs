//! A remote node as the data path sees it ([`Peer`]) and its handle ([`PeerId`]).

use core::fmt;
use core::net::SocketAddr;

use tweed_route::NextHopId;

use super::outer;
use crate::config::PeerConfig;

/// A peer's handle in a [`PeerTable`](super::PeerTable), as routes hold it.
///
/// ```
/// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
/// /// Plain UDP that remembers who sent the last datagram.
/// #[derive(Default)]
/// struct Last(std::sync::Mutex<Option<PeerId>>);
///
/// # impl Encapsulation for Last {
/// #     type Peer = ();
/// #     fn transport(&self) -> Transport { Transport::Udp { port: 7000, checksum: false } }
/// #     fn header_len(&self) -> usize { 0 }
/// #     fn peer(&self, _: &PeerConfig) -> Result<(), ConfigError> { Ok(()) }
/// #     fn encap(&self, _: &Peer<()>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
/// #         buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?;
/// #         Ok(None)
/// #     }
///     fn decap(&self, _buf: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<()>) -> Result<Decap, DropReason> {
///         let (id, _) = peers.by_addr(from.ip()).ok_or(DropReason::UnknownPeer)?;
///         *self.0.lock().map_err(|_| DropReason::UnknownPeer)? = Some(id);
///         Ok(Decap::new(id, 0))
///     }
/// # }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut node = site(Last::default(), PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]))?;
/// run(&mut node, 9, [192, 168, 0, 2], &datagram(&[]));
/// let id = node.encapsulation().0.lock().map_err(|_| "poisoned")?.ok_or("no datagram")?;
/// assert!(id.to_string().starts_with("peer"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub(crate) NextHopId);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer{}", self.0.0)
    }
}

/// A remote node as the data path sees it: its configuration, the encapsulation's state for it (`P`), and the
/// outer headers towards it.
///
/// ```
/// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
/// /// A one-byte key, the peer's `key` parameter, in front of the IP packet.
/// struct Keyed;
///
/// impl Encapsulation for Keyed {
///     type Peer = u8;
/// #     fn transport(&self) -> Transport { Transport::Udp { port: 7000, checksum: false } }
/// #     fn header_len(&self) -> usize { 0 }
/// #     fn decap(&self, _: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<u8>) -> Result<Decap, DropReason> {
/// #         Ok(Decap::new(peers.by_addr(from.ip()).ok_or(DropReason::UnknownPeer)?.0, 1))
/// #     }
///     fn peer(&self, config: &PeerConfig) -> Result<u8, ConfigError> {
///         let key = config.param("key").and_then(|k| k.parse().ok());
///         key.ok_or_else(|| ConfigError::Parse(format!("peer {} needs a key from 0 to 255", config.subnet)))
///     }
///
///     fn encap(&self, peer: &Peer<u8>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
///         buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?;
///         buf.push_front(1).map_err(|_| DropReason::NoHeadroom)?[0] = *peer.state();
///         Ok(None)
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut node = site(Keyed, PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]).with_param("key", "42"))?;
/// let (datagram, verdict) = run(&mut node, 1, [0; 4], &ipv4([10, 1, 0, 5], [10, 2, 0, 7]));
/// assert!(matches!(verdict, Verdict::Underlay { payload_offset: 42, .. }));
/// assert_eq!(datagram[42], 42);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Peer<P> {
    pub(crate) config: PeerConfig,
    pub(crate) state: P,
    /// The peer's subnet as network and mask (host order): inner sources must be in it.
    pub(crate) net: u32,
    pub(crate) mask: u32,
    pub(crate) underlay: SocketAddr,
    pub(crate) outer: outer::Outer,
}

impl<P> Peer<P> {
    /// Its configuration.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// /// Plain UDP, but a peer whose `accept` parameter is `no` is not heard.
    /// struct Choosy;
    ///
    /// # impl Encapsulation for Choosy {
    /// #     type Peer = ();
    /// #     fn transport(&self) -> Transport { Transport::Udp { port: 7000, checksum: false } }
    /// #     fn header_len(&self) -> usize { 0 }
    /// #     fn peer(&self, _: &PeerConfig) -> Result<(), ConfigError> { Ok(()) }
    /// #     fn encap(&self, _: &Peer<()>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
    /// #         buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?;
    /// #         Ok(None)
    /// #     }
    ///     fn decap(&self, _: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<()>) -> Result<Decap, DropReason> {
    ///         let (id, peer) = peers.by_addr(from.ip()).ok_or(DropReason::UnknownPeer)?;
    ///         if peer.config().param("accept") == Some("no") {
    ///             return Err(DropReason::Unauthenticated);
    ///         }
    ///         Ok(Decap::new(id, 0))
    ///     }
    /// # }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut node = site(Choosy, PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]))?;
    /// assert_eq!(run(&mut node, 9, [192, 168, 0, 2], &datagram(&[])).1, Verdict::Port(PortId(1)));
    /// node.update_peer(PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]).with_param("accept", "no"))?;
    /// assert_eq!(run(&mut node, 9, [192, 168, 0, 2], &datagram(&[])).1, Verdict::Drop(DropReason::Unauthenticated));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub const fn config(&self) -> &PeerConfig {
        &self.config
    }

    /// The encapsulation's state for it, built by [`Encapsulation::peer`](super::Encapsulation::peer).
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// /// A one-byte key, the peer's `key` parameter, in front of the IP packet.
    /// struct Keyed;
    ///
    /// # impl Encapsulation for Keyed {
    /// #     type Peer = u8;
    /// #     fn transport(&self) -> Transport { Transport::Udp { port: 7000, checksum: false } }
    /// #     fn header_len(&self) -> usize { 0 }
    /// #     fn peer(&self, config: &PeerConfig) -> Result<u8, ConfigError> {
    /// #         let key = config.param("key").and_then(|k| k.parse().ok());
    /// #         key.ok_or_else(|| ConfigError::Parse(format!("peer {} needs a key from 0 to 255", config.subnet)))
    /// #     }
    /// #     fn encap(&self, peer: &Peer<u8>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
    /// #         buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?;
    /// #         buf.push_front(1).map_err(|_| DropReason::NoHeadroom)?[0] = *peer.state();
    /// #         Ok(None)
    /// #     }
    ///     fn decap(&self, buf: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<u8>) -> Result<Decap, DropReason> {
    ///         let (id, peer) = peers.by_addr(from.ip()).ok_or(DropReason::UnknownPeer)?;
    ///         if buf.data().first() != Some(peer.state()) {
    ///             return Err(DropReason::Unauthenticated);
    ///         }
    ///         buf.pull_front(1).map_err(|_| DropReason::UnderlayMalformed)?;
    ///         Ok(Decap::new(id, 0))
    ///     }
    /// # }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut node = site(Keyed, PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]).with_param("key", "42"))?;
    /// assert_eq!(run(&mut node, 9, [192, 168, 0, 2], &datagram(&[42])).1, Verdict::Port(PortId(1)));
    /// assert_eq!(run(&mut node, 9, [192, 168, 0, 2], &datagram(&[7])).1, Verdict::Drop(DropReason::Unauthenticated));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub const fn state(&self) -> &P {
        &self.state
    }

    /// Where its packets go on the underlay (port 0 with [`Transport::Ethernet`](super::Transport::Ethernet)).
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// /// Peers known by a one-byte key in front of the IP packet, and only from their own address.
    /// struct Keyed;
    ///
    /// # impl Encapsulation for Keyed {
    /// #     type Peer = u8;
    /// #     fn transport(&self) -> Transport { Transport::Udp { port: 7000, checksum: false } }
    /// #     fn header_len(&self) -> usize { 0 }
    /// #     fn peer(&self, config: &PeerConfig) -> Result<u8, ConfigError> {
    /// #         let key = config.param("key").and_then(|k| k.parse().ok());
    /// #         key.ok_or_else(|| ConfigError::Parse(format!("peer {} needs a key from 0 to 255", config.subnet)))
    /// #     }
    /// #     fn encap(&self, peer: &Peer<u8>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
    /// #         buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?;
    /// #         buf.push_front(1).map_err(|_| DropReason::NoHeadroom)?[0] = *peer.state();
    /// #         Ok(None)
    /// #     }
    ///     fn peer_key(&self, peer: &Peer<u8>) -> Option<u64> {
    ///         Some(u64::from(*peer.state()))
    ///     }
    ///
    ///     fn decap(&self, buf: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<u8>) -> Result<Decap, DropReason> {
    ///         let key = buf.data().first().ok_or(DropReason::UnderlayMalformed)?;
    ///         let (id, peer) = peers.by_key(u64::from(*key)).ok_or(DropReason::UnknownPeer)?;
    ///         if peer.underlay().ip() != from.ip() {
    ///             return Err(DropReason::UnknownPeer);
    ///         }
    ///         buf.pull_front(1).map_err(|_| DropReason::UnderlayMalformed)?;
    ///         Ok(Decap::new(id, 0))
    ///     }
    /// # }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut node = site(Keyed, PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]).with_param("key", "42"))?;
    /// assert_eq!(run(&mut node, 9, [192, 168, 0, 2], &datagram(&[42])).1, Verdict::Port(PortId(1)));
    /// assert_eq!(run(&mut node, 9, [192, 168, 0, 9], &datagram(&[42])).1, Verdict::Drop(DropReason::UnknownPeer));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub const fn underlay(&self) -> SocketAddr {
        self.underlay
    }
}
