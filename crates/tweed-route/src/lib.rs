//! The IPv4 route table of a tweed node: longest-prefix match over an Internet-sized table at memory speed,
//! sans-I/O, with lookups that never wait for the control plane.
//!
//! - [`Lpm`] / [`LpmReader`]: the prefix → [`NextHopId`] structure, DIR-24-8 (one memory read for prefixes up to
//!   /24, two beyond), updated in place by one writer while readers look up without locks. The
//!   [`lpm`] module documents the layout and why readers are safe.
//! - [`RouteTable`] / [`RouteReader`]: the same beside a [`NextHops`] table of what each id means: a
//!   [`NextHop`], an opaque `u64` the table's user interprets (an index into its peer table, a port…).
//! - [`Ipv4Prefix`]: `a.b.c.d/len` with host bits clear.
//! - [`synth`]: seeded generators of Internet-shaped tables and of addresses, for tests and benchmarks.
//!
//! No operation panics on bad input; each returns an [`Error`]. No `unsafe`.
//!
//! ```
//! use tweed_route::{Lpm, NextHopId};
//!
//! let mut lpm = Lpm::new();
//! lpm.insert("0.0.0.0/0".parse()?, NextHopId(0))?;
//! lpm.insert("10.244.0.0/16".parse()?, NextHopId(1))?;
//! lpm.insert("10.244.3.7/32".parse()?, NextHopId(2))?;
//! let addrs = [0x0af4_0307, 0x0af4_0308, 0x0808_0808];
//! let mut out = [None; 3];
//! lpm.lookup_batch(&addrs, &mut out);
//! assert_eq!(out, [Some(NextHopId(2)), Some(NextHopId(1)), Some(NextHopId(0))]);
//! assert_eq!(lpm.iter().map(|(p, _)| p.to_string()).collect::<Vec<_>>(), ["0.0.0.0/0", "10.244.0.0/16", "10.244.3.7/32"]);
//! # Ok::<(), tweed_route::Error>(())
//! ```
#![forbid(unsafe_code)]

mod error;
pub mod lpm;
mod nexthop;
mod prefix;
pub mod synth;
mod table;

pub use error::{Error, Result};
pub use lpm::{Config, Lpm, LpmReader, MemoryUsage};
pub use nexthop::{ID_QUARANTINE, NextHop, NextHopId, NextHops};
pub use prefix::Ipv4Prefix;
pub use table::{NextHopsGuard, RouteReader, RouteTable};
