//! Zero-copy parsers and encoders for the protocols of an overlay network: Ethernet II (with an optional 802.1Q
//! tag), ARP, IPv4, ICMPv4, UDP and VXLAN, plus the RFC 1071 checksum and a one-pass dissector for a whole
//! VXLAN-encapsulated frame.
//!
//! `no_std`, no allocation, no `unsafe`.
//!
//! # Two levels per protocol
//! Each protocol module has a *view* (`Frame`/`Packet`/`Header` over any `T: AsRef<[u8]>`) that reads fields
//! without judging them, and a `Repr`, the validated meaning of a header, with `parse`, `buffer_len` and `emit`.
//!
//! # The length promise
//! Every view has `new_unchecked`, `new_checked` and `check_len`. Once `check_len` has returned `Ok` (which
//! `new_checked` does for you), no accessor of that view panics, whatever the bytes say. `Repr::emit` never panics
//! on a buffer of at least `Repr::buffer_len()` bytes. Both promises are tested on every truncation of valid
//! packets and fuzzed.
//!
//! ```
//! use tweed_wire::ethernet::{EtherType, Frame, MacAddr};
//!
//! let bytes = [
//!     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination
//!     0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source
//!     0x08, 0x06, // ARP
//! ];
//! let frame = Frame::new_checked(&bytes[..])?;
//! assert_eq!(frame.dst_addr(), MacAddr::BROADCAST);
//! assert_eq!(frame.ethertype(), EtherType::ARP);
//! # Ok::<(), tweed_wire::Error>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Tests use std; so does the code `arbitrary`'s derive generates (the `arbitrary` crate needs std itself).
#[cfg(any(test, feature = "arbitrary"))]
extern crate std;

mod error;
mod field;

pub mod arp;
pub mod checksum;
pub mod dissect;
pub mod ethernet;
pub mod icmpv4;
pub mod ipv4;
pub mod udp;
pub mod vxlan;

pub use error::{Error, Layer, Result};
