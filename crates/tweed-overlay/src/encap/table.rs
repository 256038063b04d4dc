//! The peers of a snapshot as the data path finds them: the [`PeerTable`].

use core::net::IpAddr;
use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;
use tweed_packet::PortId;
use tweed_route::NextHopId;

use super::{Peer, PeerId};

/// What a route leads to.
#[derive(Debug)]
pub(crate) enum Hop<P> {
    /// Nothing (a freed id).
    Empty,
    /// A pod of this node, behind the bridge.
    Local,
    /// An IP port.
    Port(PortId),
    /// A peer, through the encapsulation.
    Peer(Arc<Peer<P>>),
}

impl<P> Clone for Hop<P> {
    fn clone(&self) -> Self {
        match self {
            Self::Empty => Self::Empty,
            Self::Local => Self::Local,
            Self::Port(p) => Self::Port(*p),
            Self::Peer(p) => Self::Peer(Arc::clone(p)),
        }
    }
}

/// The peers as one snapshot shows them to the data path: by id (what routes lead to), by underlay address and by
/// the key their encapsulation gives them ([`Encapsulation::peer_key`](super::Encapsulation::peer_key)). Workers
/// read it without locks; the [`Control`](crate::Control) publishes a new one on every change.
///
/// ```
/// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
/// /// Plain UDP: the peer is the sender.
/// struct Plain;
///
/// # impl Encapsulation for Plain {
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
///         Ok(Decap::new(id, 0))
///     }
/// # }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut node = site(Plain, PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]))?;
/// assert_eq!(run(&mut node, 9, [192, 168, 0, 2], &datagram(&[])).1, Verdict::Port(PortId(1)));
/// node.remove_peer("10.2.0.0/24".parse()?)?; // the next batch's snapshot has no such peer
/// assert_eq!(run(&mut node, 9, [192, 168, 0, 2], &datagram(&[])).1, Verdict::Drop(DropReason::UnknownPeer));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct PeerTable<P> {
    pub(crate) hops: Vec<Hop<P>>,
    by_ip: HashMap<u32, NextHopId, RandomState>,
    by_key: HashMap<u64, NextHopId, RandomState>,
    peers: usize,
}

impl<P> Clone for PeerTable<P> {
    fn clone(&self) -> Self {
        Self { hops: self.hops.clone(), by_ip: self.by_ip.clone(), by_key: self.by_key.clone(), peers: self.peers }
    }
}

impl<P> PeerTable<P> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            hops: Vec::new(),
            by_ip: HashMap::with_capacity_and_hasher(capacity, RandomState::default()),
            by_key: HashMap::with_hasher(RandomState::default()),
            peers: 0,
        }
    }

    /// The peer whose underlay address is `ip`.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// /// Plain UDP: the peer is the sender.
    /// struct Plain;
    ///
    /// # impl Encapsulation for Plain {
    /// #     type Peer = ();
    /// #     fn transport(&self) -> Transport { Transport::Udp { port: 7000, checksum: false } }
    /// #     fn header_len(&self) -> usize { 0 }
    /// #     fn peer(&self, _: &PeerConfig) -> Result<(), ConfigError> { Ok(()) }
    /// #     fn encap(&self, _: &Peer<()>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
    /// #         buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?;
    /// #         Ok(None)
    /// #     }
    ///     fn decap(&self, _: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<()>) -> Result<Decap, DropReason> {
    ///         let (id, _) = peers.by_addr(from.ip()).ok_or(DropReason::UnknownPeer)?;
    ///         Ok(Decap::new(id, 0))
    ///     }
    /// # }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut node = site(Plain, PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]))?;
    /// assert_eq!(run(&mut node, 9, [192, 168, 0, 2], &datagram(&[])).1, Verdict::Port(PortId(1)));
    /// assert_eq!(run(&mut node, 9, [192, 168, 0, 3], &datagram(&[])).1, Verdict::Drop(DropReason::UnknownPeer));
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    #[must_use]
    pub fn by_addr(&self, ip: IpAddr) -> Option<(PeerId, &Peer<P>)> {
        let IpAddr::V4(ip) = ip else { return None };
        let id = *self.by_ip.get(&u32::from(ip))?;
        Some((PeerId(id), self.peer(id)?))
    }

    /// The peer its encapsulation keyed `key` ([`Encapsulation::peer_key`](super::Encapsulation::peer_key)).
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
    /// assert_eq!(run(&mut node, 9, [192, 168, 0, 2], &datagram(&[7])).1, Verdict::Drop(DropReason::UnknownPeer));
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    #[must_use]
    pub fn by_key(&self, key: u64) -> Option<(PeerId, &Peer<P>)> {
        let id = *self.by_key.get(&key)?;
        Some((PeerId(id), self.peer(id)?))
    }

    /// The peer `id`.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// use std::sync::Mutex;
    ///
    /// /// Plain UDP; a datagram that starts with 1 comes from the last peer heard from, whatever its address.
    /// #[derive(Default)]
    /// struct Sticky(Mutex<Option<PeerId>>);
    ///
    /// # impl Encapsulation for Sticky {
    /// #     type Peer = ();
    /// #     fn transport(&self) -> Transport { Transport::Udp { port: 7000, checksum: false } }
    /// #     fn header_len(&self) -> usize { 0 }
    /// #     fn peer(&self, _: &PeerConfig) -> Result<(), ConfigError> { Ok(()) }
    /// #     fn encap(&self, _: &Peer<()>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
    /// #         buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?;
    /// #         Ok(None)
    /// #     }
    ///     fn decap(&self, buf: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<()>) -> Result<Decap, DropReason> {
    ///         let mut last = self.0.lock().map_err(|_| DropReason::UnknownPeer)?;
    ///         let id = match buf.data().first() {
    ///             Some(1) => last.filter(|&id| peers.get(id).is_some()).ok_or(DropReason::UnknownPeer)?,
    ///             _ => peers.by_addr(from.ip()).ok_or(DropReason::UnknownPeer)?.0,
    ///         };
    ///         *last = Some(id);
    ///         buf.pull_front(1).map_err(|_| DropReason::UnderlayMalformed)?;
    ///         Ok(Decap::new(id, 0))
    ///     }
    /// # }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut node = site(Sticky::default(), PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]))?;
    /// assert_eq!(run(&mut node, 9, [192, 168, 0, 2], &datagram(&[0])).1, Verdict::Port(PortId(1)));
    /// assert_eq!(run(&mut node, 9, [10, 9, 9, 9], &datagram(&[1])).1, Verdict::Port(PortId(1)));
    /// node.remove_peer("10.2.0.0/24".parse()?)?;
    /// assert_eq!(run(&mut node, 9, [10, 9, 9, 9], &datagram(&[1])).1, Verdict::Drop(DropReason::UnknownPeer));
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    #[must_use]
    pub fn get(&self, id: PeerId) -> Option<&Peer<P>> {
        self.peer(id.0)
    }

    /// How many peers there are.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// /// Plain UDP that remembers how many peers the last datagram's snapshot had.
    /// #[derive(Default)]
    /// struct Counting(AtomicUsize);
    /// # impl Encapsulation for Counting {
    /// #     type Peer = ();
    /// #     fn transport(&self) -> Transport { Transport::Udp { port: 7000, checksum: false } }
    /// #     fn header_len(&self) -> usize { 0 }
    /// #     fn peer(&self, _: &PeerConfig) -> Result<(), ConfigError> { Ok(()) }
    /// #     fn encap(&self, _: &Peer<()>, _: &mut PacketBuf, _: usize) -> Result<Option<u16>, DropReason> { Ok(None) }
    ///     fn decap(&self, _: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<()>) -> Result<Decap, DropReason> {
    ///         self.0.store(peers.len(), Ordering::Relaxed);
    ///         let (id, _) = peers.by_addr(from.ip()).ok_or(DropReason::UnknownPeer)?;
    ///         Ok(Decap::new(id, 0))
    ///     }
    /// # }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut node = site(Counting::default(), PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]))?;
    /// node.add_peer(PeerConfig::new("10.3.0.0/24".parse()?, [192, 168, 0, 3]))?;
    /// run(&mut node, 9, [192, 168, 0, 2], &datagram(&[]));
    /// assert_eq!(node.encapsulation().0.load(Ordering::Relaxed), 2);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub const fn len(&self) -> usize {
        self.peers
    }

    /// Whether there is none.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// /// Plain UDP that remembers whether the last datagram's snapshot had no peer.
    /// #[derive(Default)]
    /// struct Lonely(AtomicBool);
    ///
    /// # impl Encapsulation for Lonely {
    /// #     type Peer = ();
    /// #     fn transport(&self) -> Transport { Transport::Udp { port: 7000, checksum: false } }
    /// #     fn header_len(&self) -> usize { 0 }
    /// #     fn peer(&self, _: &PeerConfig) -> Result<(), ConfigError> { Ok(()) }
    /// #     fn encap(&self, _: &Peer<()>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
    /// #         buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?;
    /// #         Ok(None)
    /// #     }
    ///     fn decap(&self, _: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<()>) -> Result<Decap, DropReason> {
    ///         self.0.store(peers.is_empty(), Ordering::Relaxed);
    ///         let (id, _) = peers.by_addr(from.ip()).ok_or(DropReason::UnknownPeer)?;
    ///         Ok(Decap::new(id, 0))
    ///     }
    /// # }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut node = site(Lonely::default(), PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]))?;
    /// node.remove_peer("10.2.0.0/24".parse()?)?;
    /// assert_eq!(run(&mut node, 9, [192, 168, 0, 2], &datagram(&[])).1, Verdict::Drop(DropReason::UnknownPeer));
    /// assert!(node.encapsulation().0.load(Ordering::Relaxed));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.peers == 0
    }

    /// Every peer.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// /// A point-to-point tunnel: with one peer, datagrams from any address are that peer's (it roams).
    /// struct PointToPoint;
    ///
    /// # impl Encapsulation for PointToPoint {
    /// #     type Peer = ();
    /// #     fn transport(&self) -> Transport { Transport::Udp { port: 7000, checksum: false } }
    /// #     fn header_len(&self) -> usize { 0 }
    /// #     fn peer(&self, _: &PeerConfig) -> Result<(), ConfigError> { Ok(()) }
    /// #     fn encap(&self, _: &Peer<()>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
    /// #         buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?;
    /// #         Ok(None)
    /// #     }
    ///     fn decap(&self, _: &mut PacketBuf, _: SocketAddr, peers: &PeerTable<()>) -> Result<Decap, DropReason> {
    ///         let mut all = peers.iter();
    ///         let (Some(peer), None) = (all.next(), all.next()) else { return Err(DropReason::UnknownPeer) };
    ///         let (id, _) = peers.by_addr(peer.underlay().ip()).ok_or(DropReason::UnknownPeer)?;
    ///         Ok(Decap::new(id, 0))
    ///     }
    /// # }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut node = site(PointToPoint, PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]))?;
    /// assert_eq!(run(&mut node, 9, [10, 9, 9, 9], &datagram(&[])).1, Verdict::Port(PortId(1)));
    /// node.add_peer(PeerConfig::new("10.3.0.0/24".parse()?, [192, 168, 0, 3]))?;
    /// assert_eq!(run(&mut node, 9, [10, 9, 9, 9], &datagram(&[])).1, Verdict::Drop(DropReason::UnknownPeer));
    /// # Ok(())
    /// # }
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = &Peer<P>> + '_ {
        self.hops.iter().filter_map(|h| match h {
            Hop::Peer(p) => Some(&**p),
            _ => None,
        })
    }

    #[inline]
    fn peer(&self, id: NextHopId) -> Option<&Peer<P>> {
        match self.hops.get(id.0 as usize) {
            Some(Hop::Peer(p)) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn hop(&self, id: NextHopId) -> Option<&Hop<P>> {
        self.hops.get(id.0 as usize)
    }

    pub(crate) fn set(&mut self, id: NextHopId, hop: Hop<P>) {
        let slot = id.0 as usize;
        if self.hops.len() <= slot {
            self.hops.resize(slot + 1, Hop::Empty);
        }
        if let Hop::Peer(old) = &self.hops[slot] {
            self.by_ip.remove(&old.config.ip_key());
            self.by_key.retain(|_, v| *v != id);
            self.peers -= 1;
        }
        self.hops[slot] = hop;
    }

    pub(crate) fn index(&mut self, id: NextHopId, key: Option<u64>) {
        if let Some(Hop::Peer(p)) = self.hops.get(id.0 as usize) {
            self.by_ip.insert(p.config.ip_key(), id);
            if let Some(k) = key {
                self.by_key.insert(k, id);
            }
            self.peers += 1;
        }
    }

    pub(crate) fn has_ip(&self, ip: IpAddr) -> Option<NextHopId> {
        let IpAddr::V4(ip) = ip else { return None };
        self.by_ip.get(&u32::from(ip)).copied()
    }
}
