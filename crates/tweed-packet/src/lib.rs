//! Packet buffers for tweed's data path: [`PacketBuf`], one packet with room in front of it for the headers an
//! encapsulation pushes; [`Batch`], the fixed-capacity vector of packets a pipeline stage runs over; and [`Pool`],
//! which makes every buffer up front and recycles them, so that the data path allocates nothing.
//!
//! The shape is DPDK's `rte_mbuf` and Linux's `sk_buff`, cut down to what an overlay needs: one contiguous buffer
//! per packet, a headroom into which [`PacketBuf::push_front`] grows the data and from which
//! [`PacketBuf::pull_front`] gives it back, without moving the payload; the same at the tail. A receive call writes
//! straight into [`PacketBuf::recv_area_mut`] (everything behind the headroom) and [`PacketBuf::commit_recv`] says
//! how much it wrote, so the headroom is in place before the first byte arrives.
//!
//! # The promises
//! - **No panics.** An operation that does not fit returns an [`Error`] saying what was asked and what there was,
//!   and leaves the buffer as it was. Offsets never wrap. (Indexing a [`Batch`] out of range panics as a slice
//!   does; [`Batch::get`] does not.)
//! - **No allocation after warm-up.** [`Pool::new`] and [`Batch::new`] allocate; `get`, `put`, `push`, `pull`,
//!   `partition_into`, `retain_or_put` and the rest do not. `tests/no_alloc.rs` counts allocations with a global
//!   allocator over 10,000 batches of 256 packets and finds none.
//! - **No `unsafe`.**
//!
//! A pool is single-threaded: one per worker, shared with nothing (it is `Send`, so it moves to its worker).
//!
//! # Example: VXLAN encapsulation and decapsulation
//! ```
//! use tweed_packet::{Pool, PoolConfig, PortId};
//!
//! const VXLAN_IPV4_OUTER_LEN: usize = 14 + 20 + 8 + 8; // Ethernet, IPv4, UDP, VXLAN
//! // Outer headers precomputed for a peer: Ethernet, IPv4 10.0.0.1 > 10.0.0.2, UDP to 8472, VXLAN VNI 1.
//! let outer: [u8; VXLAN_IPV4_OUTER_LEN] = [
//!     0x02, 0x42, 0x0a, 0x00, 0x00, 0x02, 0x02, 0x42, 0x0a, 0x00, 0x00, 0x01, 0x08, 0x00, // Ethernet
//!     0x45, 0x00, 0x00, 0x52, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x26, 0x88, // IPv4 ...
//!     0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, // ... addresses
//!     0xc3, 0x50, 0x21, 0x18, 0x00, 0x3e, 0x00, 0x00, // UDP
//!     0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, // VXLAN
//! ];
//! let inner = b"an Ethernet frame from a pod";
//!
//! let mut pool = Pool::new(PoolConfig { buffers: 16, ..PoolConfig::default() })?;
//! let mut pkt = pool.get().ok_or("pool exhausted")?;
//!
//! // The I/O layer receives into the buffer, behind its headroom.
//! pkt.recv_area_mut()[..inner.len()].copy_from_slice(inner);
//! pkt.commit_recv(inner.len())?;
//! pkt.meta_mut().ingress = PortId(1);
//!
//! // Encapsulate: the outer header goes into the headroom; the inner frame does not move.
//! pkt.prepend_from_slice(&outer)?;
//! assert_eq!(pkt.len(), 50 + inner.len());
//! assert_eq!(&pkt.data()[..50], &outer);
//! assert_eq!(&pkt.data()[50..], inner);
//!
//! // Decapsulate: pull the outer header off again.
//! assert_eq!(pkt.pull_front(VXLAN_IPV4_OUTER_LEN)?, &outer);
//! assert_eq!(pkt.data(), inner);
//!
//! pool.put(pkt);
//! assert_eq!(pool.available(), 16);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod batch;
mod buf;
mod error;
mod meta;
mod pool;

pub use batch::Batch;
pub use buf::{DEFAULT_CAPACITY, DEFAULT_HEADROOM, PacketBuf, VLAN_TAG_LEN};
pub use error::{Error, Result};
pub use meta::{Meta, PortId};
pub use pool::{Pool, PoolConfig, PoolStats};
