//! The pipeline of a tweed node, sans-I/O: what `cni0`, the route table and `flannel.1` (or `flannel0`, or
//! host-gw routes) do in the kernel of a flannel node, in userspace, over batches of packets.
//!
//! A [`Node`] is built from a [`NodeConfig`] (in Rust with [`NodeBuilder`], or from TOML/JSON): its pod subnet
//! and gateway, its pod ports, its underlay, its backend (`vxlan`, `udp` or `host-gw`) and its peers, which
//! [`Node::add_peer`], [`Node::update_peer`] and [`Node::remove_peer`] change between batches.
//! [`Node::process`] takes a [`Batch`](tweed_packet::Batch) of received buffers, each with `meta().ingress` set
//! to a pod port or the underlay port, and leaves each in [`Outputs`] with a [`Verdict`]: a pod port, the
//! underlay (with the peer's address and where the UDP payload starts), the host's TUN, or a drop with its
//! [`DropReason`], counted in [`Counters`].
//!
//! # The data path
//! [`Node::process`] runs stage by stage over the batch, as VPP does: each stage runs over every packet of the
//! batch (up to 256 at a time) while its code and tables are hot, and each packet leaves a stage with its state
//! for the next one or a verdict (a drop counted by its reason).
//! 1. **Classify**, by ingress: underlay frames are checked against the peers and decapsulated (the outer headers
//!    pulled off); pod frames go through the bridge, 16 frames per call of
//!    [`Bridge::process`](tweed_switch::Bridge::process), which switches, floods, answers ARP or hands the frame to
//!    the router.
//! 2. **Route**, every packet for the router: the RFC 1812 checks (packets for the node itself are answered or
//!    go to the host here), then one LPM lookup over all the batch's destinations
//!    ([`RouteTable::lookup_batch`](tweed_route::RouteTable::lookup_batch)), then no route, TTL, MTU and the TTL
//!    decrement.
//! 3. **Rewrite**, every routed packet: local delivery (the pod's MAC from the ARP table, or the ARP queue) or
//!    the backend's encapsulation with the peer's template.
//! 4. **Emit**: every packet to [`Outputs`] with its verdict, in order of arrival, after the packets the node
//!    originated on the way (ARP, ICMP errors, flood copies).
//!
//! What each stage does, by where the packet comes from:
//! - **From a pod:** first its source: an IPv4 source or ARP sender address outside the pod subnet, or the
//!   gateway's, is dropped, and with [`port_security`](NodeConfig::port_security) one that is not the port's own
//!   ([`port_addresses`](NodeConfig::port_addresses)). Then the bridge learns the source, answers ARP requests for
//!   the gateway, switches frames between pods of the node, and hands frames for the gateway MAC to the router:
//!   RFC 1812 §5.2.2 checks, martian addresses, echo requests to the gateway answered, TTL check (ICMP time
//!   exceeded), LPM route lookup (ICMP net unreachable), the MTU rule (ICMP fragmentation needed with the inner
//!   MTU when DF is set; fragmentation, RFC 791, otherwise), TTL decrement with an incremental checksum, then
//!   local delivery (the pod's MAC from the ARP table, which the node fills by asking as the kernel's neighbour
//!   table does, queueing the packet meanwhile) or the backend. ICMP errors are rate-limited per source address
//!   and in all.
//! - **vxlan** rewrites the inner Ethernet header as `flannel.1` does (our VTEP MAC → the peer's VTEP MAC) and
//!   prepends the peer's 50-byte outer template (outer Ethernet, IPv4 TTL 64 without DF, UDP with a source port
//!   hashed from the inner flow, VXLAN) in the headroom, patching lengths, identification and checksum; the outer
//!   UDP checksum is zero unless configured. **udp** replaces the Ethernet header with a 42-byte
//!   Ethernet/IPv4/UDP template. **host-gw** rewrites the MACs (our node MAC → the peer's node MAC).
//! - **From the underlay:** a whole frame on the underlay port (a raw socket, a pcap), or, on the
//!   [`socket_port`](UnderlayConfig::socket_port), the payload a UDP socket received with the sender in
//!   `meta.remote()` (the kernel already checked the outer headers). Only frames to our node MAC, from a known peer's node address (host-gw: node MAC),
//!   to the backend's port, unfragmented, with the configured VNI, the peer's VTEP MAC to ours inside, and an inner
//!   source in the peer's subnet; everything else is a counted drop. The outer headers are pulled off and the
//!   inner packet is routed to a local pod (never relayed to another peer).
//!
//! Nothing here reads a clock (time is an argument), makes a syscall or allocates after construction: buffers
//! come from the caller's [`Pool`](tweed_packet::Pool), tables are sized up front (`tests/no_alloc.rs`).
//!
//! # Bounds and accounting
//! Every table has a size fixed by [`Limits`] (checked by [`NodeConfig::validate`]), and whatever a pod sends,
//! [`Node::process`] consumes input whenever `out` has room (see its "Progress" section). Every packet is
//! accounted for once: [`Counters::received`] and [`Counters::originated`] come out as
//! [`Counters::outputs`] (an output, whatever its verdict) or [`Counters::discarded`] (a drop counted without
//! an output), or wait for ARP: [`Counters::held`] always equals [`Node::arp_pending`].
//!
//! ```
//! use tweed_overlay::{NodeBuilder, Outputs, PeerConfig, Verdict, VxlanConfig};
//! use tweed_packet::{Batch, Pool, PoolConfig, PortId};
//! use tweed_switch::Instant;
//! use tweed_wire::ethernet::MacAddr;
//!
//! let mut node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, MacAddr::new(2, 0, 0, 0, 1, 1))
//!     .vxlan(VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, 1)))
//!     .pod_ports([1])
//!     .peer(PeerConfig::new("10.244.2.0/24".parse()?, [192, 168, 0, 2])
//!         .with_vtep_mac(MacAddr::new(2, 0, 0, 0, 0, 2))
//!         .with_node_mac(MacAddr::new(2, 0, 0, 0, 1, 2)))
//!     .build()?;
//! let mut pool = Pool::new(PoolConfig::default())?;
//! let mut batch = Batch::new(32);
//! let mut out = Outputs::new(64);
//!
//! // A pod asks for its gateway's MAC.
//! let pod = MacAddr::new(2, 0, 0, 0, 0xaa, 1);
//! let mut req = [0u8; 42];
//! req[..6].copy_from_slice(&[0xff; 6]);
//! req[6..12].copy_from_slice(pod.as_bytes());
//! req[12..14].copy_from_slice(&[0x08, 0x06]);
//! tweed_wire::arp::Repr::request(pod, "10.244.1.2".parse()?, "10.244.1.1".parse()?)
//!     .emit(&mut tweed_wire::arp::Packet::new_unchecked(&mut req[14..]));
//! let mut buf = pool.get().ok_or("pool")?;
//! buf.extend_from_slice(&req)?;
//! buf.meta_mut().ingress = PortId(1);
//! batch.push(buf).map_err(|_| "batch")?;
//!
//! node.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
//! let (reply, verdict) = &out.as_slice()[0];
//! assert_eq!(*verdict, Verdict::Port(PortId(1)));
//! assert_eq!(&reply.data()[6..12], node.config().gateway_mac().as_bytes());
//! out.recycle(&mut pool);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod config;
mod control;
pub mod encap;
mod node;
mod verdict;

pub use config::{
    BackendConfig, BackendKind, ConfigError, Limits, MAX_PORT_ADDRESSES, NodeBuilder, NodeConfig, PeerConfig,
    PortAddresses, PortRoute, UdpConfig, UnderlayConfig, VxlanConfig,
};
pub use control::{Control, PeerWriter};
pub use encap::{Encapsulation, Flannel};
pub use node::{Node, Outputs};
pub use tweed_switch::Instant;
pub use verdict::{Counters, DropReason, Verdict};
