//! The ports a driver moves packets between: pods (TAPs, AF_PACKET sockets) and the underlay.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

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
    pub(super) fn fd(&self) -> RawFd {
        match self {
            Self::Tap(d) => d.as_raw_fd(),
            Self::Packet(p) => p.as_raw_fd(),
        }
    }

    pub(super) fn recv(&self, buf: &mut tweed_packet::PacketBuf) -> io::Result<bool> {
        match self {
            Self::Tap(d) => d.recv(buf),
            Self::Packet(p) => p.recv(buf),
        }
    }

    /// The device or interface name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Tap(d) => d.name(),
            Self::Packet(p) => p.name(),
        }
    }

    /// Whether reads may give frames to cut or finish (a TAP with TSO, an offloaded AF_PACKET socket).
    pub(super) fn is_offloaded(&self) -> bool {
        match self {
            Self::Tap(d) => d.is_tso(),
            Self::Packet(p) => p.is_offloaded(),
        }
    }

    pub(super) fn recv_offloaded(
        &self,
        scratch: &mut [u8],
        max_frame: usize,
        max_segments: usize,
        emit: impl FnMut(&[u8]),
    ) -> io::Result<Option<Result<usize, crate::gro::OffloadError>>> {
        match self {
            Self::Tap(d) => d.recv_offloaded(scratch, max_frame, max_segments, emit),
            Self::Packet(p) => p.recv_offloaded(scratch, max_frame, max_segments, emit),
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
