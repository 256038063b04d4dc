//! tweed: a userspace overlay dataplane.
//!
//! This crate is the facade: it re-exports the workspace's crates so that an embedder depends on one crate.
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`wire`] | `tweed-wire` | `no_std` zero-copy parsers and encoders: Ethernet, ARP, IPv4, ICMPv4, UDP, VXLAN |
//! | [`packet`] | `tweed-packet` | packet buffers with headroom, batches and a pool: no allocation in steady state |
//! | [`switch`] | `tweed-switch` | the learning switch: FDB with ageing and limits, flooding, ARP responder |
//! | [`route`] | `tweed-route` | IPv4 longest-prefix-match route table with next hops |
//! | [`overlay`] | `tweed-overlay` | the node pipeline, sans-I/O: bridge, router, vxlan / udp / host-gw backends |
//! | [`control`] | `tweed-control` | CIDR math, flannel network config, subnet allocation, lease stores |
//! | `io` (Linux) | `tweed-io` | TAP/TUN devices, AF_PACKET ports, batched UDP sockets, the driver of a node on them |
#![forbid(unsafe_code)]

pub use tweed_control as control;
#[cfg(target_os = "linux")]
pub use tweed_io as io;
pub use tweed_overlay as overlay;
pub use tweed_packet as packet;
pub use tweed_route as route;
pub use tweed_switch as switch;
pub use tweed_wire as wire;

/// The README's code blocks, compiled and run as doc tests so that the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
