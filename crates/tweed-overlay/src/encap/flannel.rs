//! flannel's three backends behind one type, picked at run time from a [`BackendConfig`] (as flannel's
//! `Backend.Type`): what the agent and the `tweed` command build their nodes with.

use core::net::SocketAddr;

use tweed_packet::PacketBuf;
use tweed_wire::ethernet::MacAddr;

use super::{Decap, Encapsulation, HostGw, Peer, PeerTable, Transport, Udp, Vxlan};
use crate::config::{BackendConfig, ConfigError, PeerConfig};
use crate::verdict::DropReason;

/// The per-peer state of [`Flannel`]: the peer's VTEP MAC (vxlan), its node MAC (host-gw), or zero (udp).
///
/// ```
/// use tweed_overlay::encap::{Encapsulation, Flannel, FlannelPeer};
/// use tweed_overlay::{BackendConfig, PeerConfig, VxlanConfig};
/// use tweed_wire::ethernet::MacAddr;
///
/// let vxlan = Flannel::from(&BackendConfig::Vxlan(VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, 1))));
/// let peer = PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2]);
/// let peer = peer.with_vtep_mac(MacAddr::new(2, 0, 0, 0, 0, 2));
/// let state: FlannelPeer = vxlan.peer(&peer)?;
/// assert_eq!(state, MacAddr::new(2, 0, 0, 0, 0, 2));
/// assert_eq!(Flannel::from(&BackendConfig::HostGw).peer(&peer).ok(), None); // host-gw needs the node MAC
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type FlannelPeer = MacAddr;

/// One of flannel's backends. [`Node::new`](crate::Node::new) builds its node with the one its configuration
/// names.
///
/// ```
/// use tweed_overlay::encap::{Encapsulation, Flannel};
/// use tweed_overlay::{BackendConfig, UdpConfig};
///
/// let udp = Flannel::from(&BackendConfig::Udp(UdpConfig::default()));
/// assert_eq!(udp.overhead(), 28);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flannel {
    /// `vxlan`.
    Vxlan(Vxlan),
    /// `udp`.
    Udp(Udp),
    /// `host-gw`.
    HostGw(HostGw),
}

impl From<&BackendConfig> for Flannel {
    fn from(c: &BackendConfig) -> Self {
        match c {
            BackendConfig::Vxlan(v) => Self::Vxlan(Vxlan::from(v)),
            BackendConfig::Udp(u) => Self::Udp(Udp::from(u)),
            BackendConfig::HostGw => Self::HostGw(HostGw),
        }
    }
}

impl Encapsulation for Flannel {
    type Peer = FlannelPeer;

    fn transport(&self) -> Transport {
        match self {
            Self::Vxlan(v) => v.transport(),
            Self::Udp(u) => u.transport(),
            Self::HostGw(h) => h.transport(),
        }
    }

    fn header_len(&self) -> usize {
        match self {
            Self::Vxlan(v) => v.header_len(),
            Self::Udp(u) => u.header_len(),
            Self::HostGw(h) => h.header_len(),
        }
    }

    fn peer(&self, config: &PeerConfig) -> Result<MacAddr, ConfigError> {
        match self {
            Self::Vxlan(_) => Vxlan::peer_mac(config),
            Self::Udp(_) => Ok(MacAddr::ZERO),
            Self::HostGw(_) => HostGw::peer_mac(config),
        }
    }

    fn peer_key(&self, peer: &Peer<MacAddr>) -> Option<u64> {
        matches!(self, Self::HostGw(_)).then(|| peer.state.to_u64())
    }

    #[inline]
    fn encap(&self, peer: &Peer<MacAddr>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
        match self {
            Self::Vxlan(v) => v.wrap(peer.state, buf, l3),
            Self::Udp(_) => Udp::wrap(buf, l3),
            Self::HostGw(_) => HostGw::wrap(buf, l3),
        }
    }

    #[inline]
    fn decap(&self, buf: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<MacAddr>) -> Result<Decap, DropReason> {
        match self {
            Self::Vxlan(v) => v.unwrap(buf, from, peers, |m| *m),
            Self::Udp(_) => Udp::unwrap(from, peers),
            Self::HostGw(_) => HostGw::unwrap(buf, peers),
        }
    }
}
