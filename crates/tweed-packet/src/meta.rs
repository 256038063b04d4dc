//! What the pipeline knows about a packet besides its bytes: where it came in, where it goes, its flow hash, when it
//! arrived, and a word of scratch for a stage to leave a note for the next.
//!
//! [`Meta`] is small (32 bytes) and `Copy`, so stages read and write it freely; a [`crate::Pool`] resets it to
//! [`Meta::default`] when a buffer comes back.

use core::fmt;
use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// `0.0.0.0:0`: no remote.
const UNSPECIFIED: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

/// A port of the node's pipeline: a TAP device, a UDP socket, a VXLAN tunnel endpoint. Which number means which
/// device is the pipeline's business; this crate only carries it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);

impl PortId {
    /// The port with number `id`.
    #[must_use]
    pub const fn new(id: u16) -> Self {
        Self(id)
    }

    /// The port's number.
    #[must_use]
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl From<u16> for PortId {
    fn from(id: u16) -> Self {
        Self(id)
    }
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port {}", self.0)
    }
}

/// Per-packet metadata, carried in each [`crate::PacketBuf`].
///
/// ```
/// use tweed_packet::{Meta, PortId};
///
/// let meta = Meta { ingress: PortId(1), timestamp: 1_000, ..Meta::default() };
/// assert_eq!(meta.egress, None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Meta {
    /// The port the packet came in on.
    pub ingress: PortId,
    /// The port the packet must leave on, once a stage has decided; `None` while undecided (or dropped: a stage
    /// that drops a packet returns its buffer to the pool).
    pub egress: Option<PortId>,
    /// When the packet was received, in nanoseconds since an epoch the I/O layer picks (the core reads no clock).
    pub timestamp: u64,
    /// The underlay address and port a packet came from when a UDP socket received it (the kernel took the outer
    /// headers off, so the source is only known from the socket); `0.0.0.0:0` otherwise. A socket address, not
    /// its IPv4 form, so that an IPv6 underlay fits the same seam.
    pub remote: SocketAddr,
}

impl Default for Meta {
    fn default() -> Self {
        Self { ingress: PortId(0), egress: None, timestamp: 0, remote: UNSPECIFIED }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_port_id() {
        assert_eq!(PortId::new(7), PortId(7));
        assert_eq!(PortId::from(7), PortId(7));
        assert_eq!(PortId(7).get(), 7);
        assert_eq!(PortId(7).to_string(), "port 7");
        assert!(PortId(1) < PortId(2));
        assert_eq!(PortId::default(), PortId(0));
    }

    #[test]
    fn test_meta_is_small() {
        // Moved with every buffer: the remote is a socket address (IPv6-ready), 32 bytes of the 48.
        assert!(core::mem::size_of::<Meta>() <= 48, "Meta is {} bytes", core::mem::size_of::<Meta>());
    }

    #[test]
    fn test_meta_default() {
        let meta = Meta::default();
        assert_eq!(meta.ingress, PortId(0));
        assert_eq!(meta.egress, None);
        assert_eq!(meta.timestamp, 0);
        assert_eq!(meta.remote, UNSPECIFIED);
    }
}
