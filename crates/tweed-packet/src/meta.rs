//! What the pipeline knows about a packet besides its bytes: where it came in, when it arrived, and which
//! underlay address sent it.
//!
//! [`Meta`] is small (32 bytes, so that a [`crate::PacketBuf`] is one 64-byte cache line: every buffer moves through
//! batches and outputs by value) and `Copy`; a [`crate::Pool`] resets it to [`Meta::default`] when a buffer comes
//! back.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

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
/// let mut meta = Meta::new(PortId(1));
/// meta.timestamp = 1_000;
/// meta.set_remote("192.168.0.2:8472".parse()?);
/// assert_eq!(meta.remote().to_string(), "192.168.0.2:8472");
/// assert_eq!(Meta::default().remote().to_string(), "0.0.0.0:0");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Meta {
    /// The port the packet came in on.
    pub ingress: PortId,
    /// When the packet was received, in nanoseconds since an epoch the I/O layer picks (the core reads no clock).
    pub timestamp: u64,
    /// The sender's address, packed (see [`Meta::remote`]).
    remote: Remote,
}

/// A socket address in 19 bytes instead of `SocketAddr`'s 32: an IPv6 address's flow info and scope id, which an
/// underlay peer's address does not use, are not kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Remote {
    addr: [u8; 16],
    port: u16,
    v6: bool,
}

impl Meta {
    /// The metadata of a packet that came in on `ingress`, nothing else known.
    #[must_use]
    pub const fn new(ingress: PortId) -> Self {
        Self { ingress, timestamp: 0, remote: Remote { addr: [0; 16], port: 0, v6: false } }
    }

    /// The underlay address and port a packet came from when a UDP socket received it (the kernel took the outer
    /// headers off, so the source is only known from the socket); `0.0.0.0:0` otherwise. A socket address, not
    /// its IPv4 form, so that an IPv6 underlay fits the same seam (an IPv6 address's flow info and scope id read
    /// back as 0).
    #[must_use]
    #[inline]
    pub fn remote(&self) -> SocketAddr {
        let Remote { addr, port, v6 } = self.remote;
        if v6 {
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(addr), port, 0, 0))
        } else {
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]), port))
        }
    }

    /// Sets [`Meta::remote`].
    #[inline]
    pub fn set_remote(&mut self, remote: SocketAddr) {
        let mut addr = [0; 16];
        let v6 = match remote.ip() {
            IpAddr::V4(ip) => {
                addr[..4].copy_from_slice(&ip.octets());
                false
            }
            IpAddr::V6(ip) => {
                addr = ip.octets();
                true
            }
        };
        self.remote = Remote { addr, port: remote.port(), v6 };
    }
}

impl Default for Meta {
    fn default() -> Self {
        Self::new(PortId(0))
    }
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Meta")
            .field("ingress", &self.ingress)
            .field("timestamp", &self.timestamp)
            .field("remote", &self.remote())
            .finish()
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
        // A buffer is one cache line: moving it through batches and outputs by value stays cheap (an 80-byte
        // buffer cost the pipeline 15-20 % in wall clock).
        assert!(core::mem::size_of::<Meta>() <= 32, "Meta is {} bytes", core::mem::size_of::<Meta>());
        assert_eq!(core::mem::size_of::<crate::PacketBuf>(), 64);
    }

    #[test]
    fn test_meta_default() {
        let meta = Meta::default();
        assert_eq!(meta.ingress, PortId(0));
        assert_eq!(meta.remote(), SocketAddr::from(([0, 0, 0, 0], 0)));
        assert_eq!(meta.timestamp, 0);
    }

    #[test]
    fn test_remote_round_trips() {
        let mut meta = Meta::default();
        for addr in ["192.168.0.2:8472", "[2001:db8::1]:51820", "0.0.0.0:0", "[::ffff:10.0.0.1]:1"] {
            let addr: SocketAddr = addr.parse().unwrap();
            meta.set_remote(addr);
            assert_eq!(meta.remote(), addr);
        }
    }
}
