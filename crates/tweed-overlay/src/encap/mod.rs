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
use core::net::{IpAddr, SocketAddr};
use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;
use tweed_packet::{PacketBuf, PortId};
use tweed_route::NextHopId;

use crate::config::{ConfigError, PeerConfig};
use crate::verdict::DropReason;

mod flannel;
mod host_gw;
pub(crate) mod outer;
mod udp;
mod vxlan;

pub use flannel::{Flannel, FlannelPeer};
pub use host_gw::HostGw;
pub use outer::{flow_hash, port_in_range};
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

/// A peer's handle in a [`PeerTable`], as routes hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub(crate) NextHopId);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer{}", self.0.0)
    }
}

/// A remote node as the data path sees it: its configuration, the encapsulation's state for it (`P`), and the
/// outer headers towards it.
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
    #[must_use]
    pub const fn config(&self) -> &PeerConfig {
        &self.config
    }

    /// The encapsulation's state for it, built by [`Encapsulation::peer`].
    #[must_use]
    pub const fn state(&self) -> &P {
        &self.state
    }

    /// Where its packets go on the underlay (port 0 with [`Transport::Ethernet`]).
    #[must_use]
    pub const fn underlay(&self) -> SocketAddr {
        self.underlay
    }
}

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
/// the key their encapsulation gives them ([`Encapsulation::peer_key`]). Workers read it without locks; the
/// [`Control`](crate::Control) publishes a new one on every change.
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
    #[inline]
    #[must_use]
    pub fn by_addr(&self, ip: IpAddr) -> Option<(PeerId, &Peer<P>)> {
        let IpAddr::V4(ip) = ip else { return None };
        let id = *self.by_ip.get(&u32::from(ip))?;
        Some((PeerId(id), self.peer(id)?))
    }

    /// The peer its encapsulation keyed `key` ([`Encapsulation::peer_key`]).
    #[inline]
    #[must_use]
    pub fn by_key(&self, key: u64) -> Option<(PeerId, &Peer<P>)> {
        let id = *self.by_key.get(&key)?;
        Some((PeerId(id), self.peer(id)?))
    }

    /// The peer `id`.
    #[inline]
    #[must_use]
    pub fn get(&self, id: PeerId) -> Option<&Peer<P>> {
        self.peer(id.0)
    }

    /// How many peers there are.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.peers
    }

    /// Whether there is none.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.peers == 0
    }

    /// Every peer.
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
/// The example of the crate's repository `examples/psk_tunnel.rs` implements one outside this crate: an
/// authenticated, encrypted tunnel with a pre-shared key.
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
