//! The tunnel as a tweed encapsulation: the node routes, checks and counts; this module only seals what the node
//! sends to a peer and opens what the underlay delivered.
//!
//! Each node has one [`Sender`] (its id and counter: the nonces it seals under the shared key) and, per peer, a
//! [`Receiver`] built from the peer's configuration (its id, the `psk_id` parameter, and the replay window of
//! what it sealed). A datagram names its sender in its header, so the peer is found by that id
//! ([`Encapsulation::peer_key`]), not by the address it came from.

use std::net::{Ipv4Addr, SocketAddr};

use ipnet::Ipv4Net;
use tweed::overlay::encap::{Decap, Encapsulation, Peer, PeerTable, Transport};
use tweed::overlay::{ConfigError, DropReason, Node, NodeBuilder, PeerConfig};
use tweed::packet::{PacketBuf, PortId};
use tweed::wire::ethernet::MacAddr;

use crate::seal::{HEADER_LEN, Header, Key, Receiver, Reject, Sender, TAG_LEN};

/// The peer parameter that holds the peer's sender id.
pub(crate) const PEER_ID: &str = "psk_id";
/// The TUN's port number in the node.
pub(crate) const TUN: PortId = PortId(1);
/// The UDP socket's port number in the node: datagrams' payloads, the sender in `meta.remote()`.
pub(crate) const SOCKET: PortId = PortId(2);
/// The underlay's MTU: the TUN's is this less the encapsulation's overhead, as the node computes it.
pub(crate) const UNDERLAY_MTU: u16 = 1500;

/// A site's node: at `underlay` on the underlay, `site` routed to the TUN, the peer's site to the peer (its
/// sender id in the [`PEER_ID`] parameter) through `psk`. No bridge: the TUN is its only port.
///
/// # Errors
/// The node's configuration checks, and [`Psk`]'s of the peer.
pub(crate) fn site_node(
    psk: Psk,
    underlay: Ipv4Addr,
    site: Ipv4Net,
    peer: PeerConfig,
) -> Result<Node<Psk>, ConfigError> {
    // The node MAC goes into the outer Ethernet header of frames; a UDP socket sends only the payload.
    let config = NodeBuilder::routed(underlay, MacAddr::new(2, 0, 0, 0, 0, 1))
        .mtu(UNDERLAY_MTU)
        .socket_port(SOCKET)
        .ip_port(TUN.0)
        .route(site.trunc(), TUN.0)
        .peer(peer)
        .into_config();
    Node::with_encapsulation(config, psk)
}

/// The peer at `ip` on the underlay with `site` behind it, sealing as `id`.
pub(crate) fn peer_config(site: Ipv4Net, ip: Ipv4Addr, id: u32) -> PeerConfig {
    PeerConfig::new(site.trunc(), ip).with_param(PEER_ID, id.to_string())
}

/// ChaCha20-Poly1305 under a pre-shared key, in UDP datagrams to and from `port`.
#[derive(Debug)]
pub(crate) struct Psk {
    port: u16,
    key: Key,
    sender: Sender,
}

impl Psk {
    /// This node's encapsulation: its sender id, the shared key, the UDP port.
    pub(crate) const fn new(id: u32, key: Key, port: u16) -> Self {
        Self { port, key, sender: Sender::new(id) }
    }
}

impl Encapsulation for Psk {
    type Peer = Receiver;

    fn transport(&self) -> Transport {
        // A UDP socket sends the datagrams: the kernel fills the checksum, not the node.
        Transport::Udp { port: self.port, checksum: false }
    }

    fn header_len(&self) -> usize {
        HEADER_LEN
    }

    fn trailer_len(&self) -> usize {
        TAG_LEN
    }

    fn peer(&self, config: &PeerConfig) -> Result<Receiver, ConfigError> {
        let bad = |why: &str| ConfigError::Parse(format!("peer {}: {PEER_ID} {why}", config.subnet));
        let id = config.param(PEER_ID).ok_or_else(|| bad("is required"))?;
        let id = id.parse::<u32>().map_err(|_| bad(&format!("is not a 32-bit number: {id:?}")))?;
        if id == self.sender.id() {
            // Both directions would seal under the same nonces.
            return Err(bad(&format!("is this node's own id ({id})")));
        }
        Ok(Receiver::new(id))
    }

    fn peer_key(&self, peer: &Peer<Receiver>) -> Option<u64> {
        Some(u64::from(peer.state().peer()))
    }

    fn encap(&self, _peer: &Peer<Receiver>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
        // Only the IP packet crosses: an Ethernet header in front of it, if any, stays behind.
        buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?;
        buf.push_front(HEADER_LEN).map_err(|_| DropReason::NoHeadroom)?;
        if buf.push_back(TAG_LEN).is_err() {
            return Err(DropReason::NoHeadroom);
        }
        // `None`: the datagram is long enough, so the counters are spent; nothing is sent under a used nonce.
        self.sender.seal(&self.key, buf.data_mut()).ok_or(DropReason::Unauthenticated)?;
        Ok(None)
    }

    fn decap(&self, buf: &mut PacketBuf, _from: SocketAddr, peers: &PeerTable<Receiver>) -> Result<Decap, DropReason> {
        let header = Header::parse(buf.data()).map_err(|_| DropReason::UnderlayMalformed)?;
        let (id, peer) = peers.by_key(u64::from(header.sender)).ok_or(DropReason::UnknownPeer)?;
        peer.state().open(&self.key, buf.data_mut()).map_err(|why| match why {
            Reject::Replayed => DropReason::Replayed,
            Reject::Truncated => DropReason::UnderlayMalformed,
            Reject::WrongSender => DropReason::UnknownPeer,
            Reject::Unauthenticated => DropReason::Unauthenticated,
        })?;
        // `open` succeeded, so the datagram holds a header and a tag.
        let _ = buf.pull_front(HEADER_LEN);
        let _ = buf.pull_back(TAG_LEN);
        Ok(Decap::new(id, 0))
    }
}
