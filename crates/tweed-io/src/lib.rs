//! tweed's Linux edges: TAP/TUN devices, AF_PACKET ports, batched UDP sockets, the [`Port`] trait they implement
//! (with an in-memory [`MemPort`], and any embedder's own), and the [`Worker`] and [`Driver`] that run a
//! [`tweed_overlay::Node`] over them.
//!
//! This is the only tweed crate with `unsafe` code, all of it in the private `sys` module, each block with the
//! reason it is sound. Everything above the system calls is ordinary Rust: the [`Device`] (TAP/TUN, created by
//! tweed, deleted when dropped), the [`PacketSocket`] (an existing interface), the [`UdpPort`] (the underlay,
//! `recvmmsg`/`sendmmsg`), and the [`Driver`]: one worker, its node, its pool and its ports, sleeping until input
//! or the node's next timer, running batches through the node and sending each packet where its verdict says,
//! until its [`Stop`] handle stops it. [`Signals`] turns SIGINT and SIGTERM into such a stop.
#![cfg(target_os = "linux")]

mod device;
mod driver;
mod error;
mod gro;
mod port;
mod signals;
mod stats;
mod steer;
mod sys;
mod udp;

pub use device::{Device, DeviceKind, DeviceOptions, PacketSocket, has_net_admin, interface_mac, netns_path};
pub use driver::{ClosedPort, Driver, DriverConfig, DriverStats, PodPort, PortStats, Stop, Underlay, Waker, Worker};
pub use error::{Error, Result};
pub use port::{MAX_TSO_SEGMENTS, Medium, MemPort, Msg, Port, Rx, Sent, gone};
pub use signals::Signals;
pub use steer::{MAX_GROUP, Steering, inner_flow_hash};
pub use udp::{UdpOptions, UdpPort, UdpStats};

/// The TAP offload helpers (TSO cutting, TCP and UDP GRO coalescing), for the project's instruction-count benches only: not a
/// stable API.
#[doc(hidden)]
pub mod offload {
    pub use crate::gro::{
        COALESCE_ROOM, Cut, HEAD_ROOM, OffloadError, VNET_HDR_LEN, coalesce, coalesced_head, cut_offloaded,
        segment_offloaded, train_len,
    };
}
