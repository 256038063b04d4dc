//! A learning switch for the pods of a node: what `cni0` (and the FDB of `flannel.1`) does in the kernel, in
//! userspace, sans-I/O.
//!
//! - [`Fdb`]: (bridge domain, MAC) → port, learned entries that age and static ones that do not, limits against
//!   MAC flooding, in one table allocated up front.
//! - [`ArpTable`]: IPv4 → MAC, for answering ARP requests on behalf of known hosts (ARP suppression), with
//!   snooped entries that age like the kernel's neighbours and belong to the port they came from.
//! - [`Bridge`]: the decisions for a batch of frames, each with the port it came in on: learn the source,
//!   forward to a known port, filter, flood, deliver to the host, answer ARP, drop with a reason; and
//!   [`Counters`] per port and per reason.
//!
//! Nothing here reads a clock, touches a device or allocates after construction: time is an [`Instant`]
//! argument, frames are byte slices the caller owns, decisions go into a slice the caller owns.
//!
//! # Concurrency: one bridge per worker
//! The data path must read the FDB without locks, and learning must not make readers wait. tweed's answer is
//! the one of DPDK's per-lcore tables: **shared nothing**. Each data-path worker owns a [`Bridge`] (its FDB, ARP
//! table and counters) and takes `&mut` to it, so lookups and learning are plain memory accesses with no atomic
//! instruction, no lock and no epoch. The control plane does not write into a worker's tables; it sends the same
//! change ([`Bridge::add_static`], [`Bridge::set_arp`], …) to every worker, which applies it between two
//! batches (a bounded queue per worker does; the driver owns it).
//!
//! Why not one table shared by all workers?
//! - A concurrent hash table (locks, or per-slot sequence counters) makes readers retry or wait while a writer
//!   learns, and bounces the written cache lines between cores: learning happens on nearly every frame
//!   (refreshing the last-seen time), so the table would be written from every core all the time.
//! - Publishing copies (RCU with `arc-swap`) fits tables that change rarely, like the route table, but a
//!   learned entry changes with every new MAC: copying a table per learnt MAC is out of the question, and
//!   batching the copies delays learning.
//!
//! The price: a MAC learnt by one worker is unknown to the others until they see it themselves, and until then
//! they flood frames to it. This is correct (flooding is what a bridge does with unknown unicast) and short-lived:
//! flows stay on one worker (multi-queue TAP and `SO_REUSEPORT` sockets hash by flow), so the worker that sees a
//! pod's frames is the one that forwards the replies to it; and tweed-overlay's workers of one `Control` tell
//! each other what they learn on pod ports (a pod's MAC, its ARP binding), which each runs through its own bridge. Static entries, the entries that must be right
//! everywhere, reach every worker through the control plane. Memory grows with the number of workers (16 bytes
//! × 4 × the entry limit each), and limits apply per worker.
//!
//! # Bridge domains
//! One process can run several bridges: every port belongs to one [`BridgeDomain`] (given in its
//! [`PortConfig`]), FDB and ARP keys include the domain, and frames are forwarded and flooded only within the
//! domain of their ingress port. 802.1Q tags are carried as they are and do not select the domain (as a Linux
//! bridge without `vlan_filtering`); a VLAN-aware setup gives each VLAN its own ports.
//!
//! ```
//! use tweed_switch::{Bridge, BridgeConfig, BridgeDomain, Decision, Instant, PortConfig, PortId};
//!
//! let mut bridge = Bridge::new(&BridgeConfig::default());
//! for port in [PortId(0), PortId(1), PortId(2)] {
//!     bridge.add_port(port, PortConfig::new(BridgeDomain(0)))?;
//! }
//! let a = [0x02, 0, 0, 0, 0, 0xaa];
//! let b = [0x02, 0, 0, 0, 0, 0xbb];
//! // a (port 0) → b: b unknown, flooded to 1 and 2; then b (port 2) → a: a was learnt on port 0.
//! let frame_ab = [&b[..], &a[..], &[0x08, 0x00]].concat();
//! let frame_ba = [&a[..], &b[..], &[0x08, 0x00]].concat();
//! let mut out = [Decision::Local; 2];
//! let batch = [(PortId(0), &frame_ab[..]), (PortId(2), &frame_ba[..])];
//! bridge.process(Instant::from_secs(1), &batch, &mut out);
//! assert_eq!(out, [Decision::Flood { local: false }, Decision::Forward(PortId(0))]);
//! assert_eq!(bridge.flood_ports(PortId(0)).collect::<Vec<_>>(), [PortId(1), PortId(2)]);
//! # Ok::<(), tweed_switch::BridgeError>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod bridge;
mod counters;
pub mod fdb;
pub mod responder;
mod table;

use core::fmt;
use core::ops::Add;
use core::time::Duration;

pub use bridge::{Bridge, BridgeConfig, BridgeError, Decision, DropReason, PortConfig, PortIter, PortSet};
pub use counters::Counters;
pub use fdb::{Entry, EntryKind, Fdb, FdbConfig, FdbError, Learned};
pub use responder::{ArpConfig, ArpEntry, ArpError, ArpKind, ArpState, ArpTable, write_arp_reply};

/// A point in time, in nanoseconds since an epoch the caller chooses (boot, process start, …). The switch never
/// reads a clock: every call that needs the time takes one of these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The epoch.
    pub const ZERO: Self = Self(0);

    /// `nanos` nanoseconds after the epoch.
    #[must_use]
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// `millis` milliseconds after the epoch (saturating).
    #[must_use]
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(1_000_000))
    }

    /// `secs` seconds after the epoch (saturating).
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the epoch.
    #[must_use]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Whole milliseconds since the epoch.
    #[must_use]
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000_000
    }
}

impl Add<Duration> for Instant {
    type Output = Self;

    /// Saturating: the far future stays the far future.
    fn add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)))
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}s", self.0 / 1_000_000_000, self.0 % 1_000_000_000)
    }
}

/// A port of a [`Bridge`]: a pod's veth/TAP, a VXLAN tunnel, an uplink. Ports are numbered below
/// [`PortId::MAX`]; [`PortId::LOCAL`] stands for the host (the bridge's own MACs, the router).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PortId(pub u16);

impl PortId {
    /// The number of ports a bridge can have (Kubernetes nodes host up to a few hundred pods).
    pub const MAX: usize = 1024;
    /// The host: frames to the bridge's own MACs ([`Bridge::add_local`]).
    pub const LOCAL: Self = Self(u16::MAX);

    /// The port number as an index.
    #[must_use]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::LOCAL { f.write_str("local") } else { write!(f, "{}", self.0) }
    }
}

/// A bridge domain: one broadcast domain, one bridge (`cni0` is one; a second bridge in the same process is
/// another). FDB and ARP entries of different domains never meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BridgeDomain(pub u16);

impl fmt::Display for BridgeDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bd{}", self.0)
    }
}
