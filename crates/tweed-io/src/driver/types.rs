//! The driver's plain types: its sizes ([`DriverConfig`]), its counters ([`DriverStats`]) and what it reports of
//! a port it closed ([`ClosedPort`]).

use std::io;

use tweed_packet::PortId;

use crate::stats::counters;

/// Sizes of a [`Driver`](super::Driver) or [`Worker`](super::Worker): [`DriverConfig::default`], then
/// [`DriverConfig::batch`] and [`DriverConfig::buffers`] (non-exhaustive: a new size is not a breaking change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub struct DriverConfig {
    /// The most packets read from one port per round (64 by default; at most 256). A round reads at most 256
    /// packets in all: when more ports have input, each gets an equal share of that (the underlay at least a
    /// quarter), starting from a pod that changes every round, so that busy pods cannot starve the others.
    pub batch: usize,
    /// Buffers in the pool.
    pub buffers: usize,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self { batch: 64, buffers: 4096 }
    }
}

impl DriverConfig {
    /// With `batch` packets read from one port per round at most (see the field of that name).
    pub const fn batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// With `buffers` buffers in the pool.
    pub const fn buffers(mut self, buffers: usize) -> Self {
        self.buffers = buffers;
        self
    }
}

counters! {
    /// What a [`Driver`](super::Driver) or [`Worker`](super::Worker) has done (the node's own counters are
    /// [`Node::counters`](tweed_overlay::Node::counters)). Each round of a driver ends its wait for one reason,
    /// counted under the first that applies: `wake_io`, `wake_handle`, `wake_timer`, `wake_limit`.
    pub struct DriverStats {
        /// Rounds run.
        pub rounds: u64,
        /// Rounds whose wait ended because a port had input.
        pub wake_io: u64,
        /// Rounds whose wait a [`Stop`](super::Stop) or [`Waker`](super::Waker) ended.
        pub wake_handle: u64,
        /// Rounds whose wait ended because the node's next timer
        /// ([`Node::poll_at`](tweed_overlay::Node::poll_at)) was due.
        pub wake_timer: u64,
        /// Rounds whose wait ended at the caller's limit (the `wait` of [`Driver::round`](super::Driver::round),
        /// or what the hook of [`Driver::run`](super::Driver::run) asked for), with nothing else to do.
        pub wake_limit: u64,
        /// Packets read from pod ports.
        pub rx_pod: u64,
        /// Packets written to pod ports.
        pub tx_pod: u64,
        /// Packets for pod ports that could not be written (queue full, device down).
        pub tx_pod_dropped: u64,
        /// Writes to a TAP that carried several TCP segments coalesced into one frame.
        pub tx_pod_coalesced: u64,
        /// Packets read from the underlay.
        pub rx_underlay: u64,
        /// Packets sent on the underlay.
        pub tx_underlay: u64,
        /// Packets for the underlay that could not be sent.
        pub tx_underlay_dropped: u64,
        /// Packets read from the TUN (the host's, for a node with a `host_port`).
        pub rx_tun: u64,
        /// Packets written to the TUN.
        pub tx_tun: u64,
        /// Packets for the host with no TUN to take them, or that it refused.
        pub tx_tun_dropped: u64,
        /// Packets not read because the pool was empty.
        pub pool_empty: u64,
        /// Frames from a TAP with TSO dropped: a header that lies or asks for what is not done, a segment larger
        /// than a buffer, or more segments than the batch or pool had room for.
        pub rx_offload_dropped: u64,
        /// Reads that failed (other than "nothing waiting").
        pub rx_errors: u64,
        /// Packets read that the node did not take within a round's calls of `process` (dropped).
        pub unprocessed: u64,
        /// Ports closed because they are gone (see [`Driver::take_closed`](super::Driver::take_closed)).
        pub ports_closed: u64,
        /// Packets read and dropped by a port other than a pod's (too long for a buffer).
        pub rx_dropped: u64,
        /// Outputs the node consumed (`Verdict::Consumed`: nothing to send).
        pub consumed: u64,
        /// Outputs the node dropped (`Verdict::Drop`; the node counts them by reason).
        pub dropped: u64,
    }
}

/// A port the driver closed because it is gone (see [`Driver::take_closed`](super::Driver::take_closed)).
#[derive(Debug)]
pub struct ClosedPort {
    /// The node's port number (0 for a TUN of a node without a host port).
    pub port: PortId,
    /// The device or interface name.
    pub name: String,
    /// Why: the last error its reads gave.
    pub error: io::Error,
}
