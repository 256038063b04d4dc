//! flannel's `host-gw` backend: no tunnel. The peer node is the next hop on the underlay's segment: the IP packet
//! leaves in a frame from our node MAC to the peer's, and frames from a peer are known by their source MAC.

use core::net::SocketAddr;

use tweed_packet::PacketBuf;
use tweed_wire::ethernet::MacAddr;

use super::{Decap, ETH_LEN, Encapsulation, Peer, PeerTable, Transport};
use crate::config::{ConfigError, PeerConfig};
use crate::verdict::DropReason;

/// The `host-gw` encapsulation. Its per-peer state is the peer's node MAC, which also identifies its frames.
///
/// ```
/// use tweed_overlay::encap::{Encapsulation, HostGw, Transport};
///
/// assert_eq!(HostGw.transport(), Transport::Ethernet);
/// assert_eq!(HostGw.overhead(), 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HostGw;

impl HostGw {
    pub(super) fn peer_mac(config: &PeerConfig) -> Result<MacAddr, ConfigError> {
        config.node_mac.ok_or(ConfigError::MissingMac { subnet: config.subnet, field: "node_mac" })
    }

    #[inline]
    pub(super) fn wrap(buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
        buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?;
        Ok(None)
    }

    /// The frame's outer destination and type were checked by the node.
    #[inline]
    pub(super) fn unwrap<P>(buf: &PacketBuf, peers: &PeerTable<P>) -> Result<Decap, DropReason> {
        let src = buf.data().get(6..12).and_then(MacAddr::from_bytes).ok_or(DropReason::UnderlayMalformed)?;
        let (id, _) = peers.by_key(src.to_u64()).ok_or(DropReason::UnknownPeer)?;
        Ok(Decap::new(id, ETH_LEN))
    }
}

impl Encapsulation for HostGw {
    type Peer = MacAddr;

    fn transport(&self) -> Transport {
        Transport::Ethernet
    }

    fn header_len(&self) -> usize {
        0
    }

    fn peer(&self, config: &PeerConfig) -> Result<MacAddr, ConfigError> {
        Self::peer_mac(config)
    }

    fn peer_key(&self, peer: &Peer<MacAddr>) -> Option<u64> {
        Some(peer.state.to_u64())
    }

    #[inline]
    fn encap(&self, _peer: &Peer<MacAddr>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
        Self::wrap(buf, l3)
    }

    #[inline]
    fn decap(&self, buf: &mut PacketBuf, _from: SocketAddr, peers: &PeerTable<MacAddr>) -> Result<Decap, DropReason> {
        Self::unwrap(buf, peers)
    }
}
