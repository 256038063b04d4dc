//! flannel's `udp` backend, as its `flannel0` TUN device: the inner IP packet whole inside UDP (port 8285), no
//! header of its own.

use core::net::SocketAddr;

use tweed_packet::PacketBuf;

use super::{Decap, Encapsulation, Peer, PeerTable, Transport};
use crate::config::{ConfigError, FLANNEL_UDP_PORT, PeerConfig, UdpConfig};
use crate::verdict::DropReason;

/// The `udp` encapsulation: the IP packet is the UDP payload. No per-peer state.
///
/// ```
/// use tweed_overlay::encap::{Encapsulation, Transport, Udp};
///
/// let udp = Udp::default();
/// assert_eq!(udp.transport(), Transport::Udp { port: 8285, checksum: false });
/// assert_eq!(udp.overhead(), 28);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Udp {
    port: u16,
}

impl Udp {
    /// To and from this UDP port.
    ///
    /// ```
    /// use tweed_overlay::encap::{Encapsulation, Transport, Udp};
    /// use tweed_overlay::{Node, NodeBuilder};
    ///
    /// assert_eq!(Udp::new(9000).transport(), Transport::Udp { port: 9000, checksum: false });
    /// let config = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .into_config();
    /// let node = Node::with_encapsulation(config, Udp::new(9000))?;
    /// assert_eq!(node.inner_mtu(), 1472);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub const fn new(port: u16) -> Self {
        Self { port }
    }

    #[inline]
    pub(super) fn wrap(buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
        buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?;
        Ok(None)
    }

    #[inline]
    pub(super) fn unwrap<P>(from: SocketAddr, peers: &PeerTable<P>) -> Result<Decap, DropReason> {
        let (id, _) = peers.by_addr(from.ip()).ok_or(DropReason::UnknownPeer)?;
        Ok(Decap::new(id, 0))
    }
}

impl Default for Udp {
    fn default() -> Self {
        Self::new(FLANNEL_UDP_PORT)
    }
}

impl From<&UdpConfig> for Udp {
    fn from(c: &UdpConfig) -> Self {
        Self::new(c.port)
    }
}

impl Encapsulation for Udp {
    type Peer = ();

    fn transport(&self) -> Transport {
        Transport::Udp { port: self.port, checksum: false }
    }

    fn header_len(&self) -> usize {
        0
    }

    fn peer(&self, _config: &PeerConfig) -> Result<(), ConfigError> {
        Ok(())
    }

    #[inline]
    fn encap(&self, _peer: &Peer<()>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
        Self::wrap(buf, l3)
    }

    #[inline]
    fn decap(&self, _buf: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<()>) -> Result<Decap, DropReason> {
        Self::unwrap(from, peers)
    }
}
