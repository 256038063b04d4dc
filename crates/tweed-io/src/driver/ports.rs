//! The ports the driver's first constructor ([`Driver::new`](super::Driver::new)) takes: pods (TAPs, AF_PACKET
//! sockets) and the underlay. Both implement [`Port`](crate::Port), as each of their variants does.

use crate::device::{Device, PacketSocket};
use crate::udp::UdpPort;

/// A pod's port: a TAP that tweed created (the pod's `eth0`), or an AF_PACKET socket on the host end of a veth.
#[derive(Debug)]
pub enum PodPort {
    /// A TAP device.
    Tap(Device),
    /// An existing interface.
    Packet(PacketSocket),
}

impl PodPort {
    /// The device or interface name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Tap(d) => d.name(),
            Self::Packet(p) => p.name(),
        }
    }

    /// The network namespace the port is in (`None`: the process's own).
    #[must_use]
    pub fn netns(&self) -> Option<&std::path::Path> {
        match self {
            Self::Tap(d) => d.options().netns.as_deref(),
            Self::Packet(p) => p.netns(),
        }
    }
}

/// The underlay: a UDP socket (vxlan, udp: the kernel routes and resolves the peers) or an AF_PACKET socket on
/// the underlay interface (host-gw, or whole frames as the node builds them).
#[derive(Debug)]
pub enum Underlay {
    /// A UDP socket; the node must have a `socket_port`.
    Udp(UdpPort),
    /// An interface; frames come in on the node's underlay port.
    Packet(PacketSocket),
}
