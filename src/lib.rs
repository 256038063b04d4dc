//! tweed: a userspace overlay dataplane.
//!
//! This crate is the facade: it re-exports the workspace's crates so that an embedder depends on one crate.
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`wire`] | `tweed-wire` | `no_std` zero-copy parsers and encoders: Ethernet, ARP, IPv4, ICMPv4, UDP, VXLAN |
//! | [`packet`] | `tweed-packet` | packet buffers with headroom, batches and a pool: no allocation in steady state |
//! | [`switch`] | `tweed-switch` | the learning switch: FDB with ageing and limits, flooding, ARP responder |
//! | [`route`] | `tweed-route` | IPv4 longest-prefix-match route table with opaque next hops |
//! | [`overlay`] | `tweed-overlay` | the node pipeline, sans-I/O: ports, bridge, router, the encapsulation seam, control and workers |
//! | [`control`] | `tweed-control` | CIDR math, flannel network config, subnet allocation, lease stores, peer sync |
//! | `io` (Linux) | `tweed-io` | TAP/TUN devices, AF_PACKET ports, batched UDP sockets, the driver of a node on them |
//!
//! # Where to start
//! - **A node**: [`overlay::NodeBuilder`] makes an [`overlay::Node`]; [`overlay::Node::process`] takes a
//!   [`packet::Batch`] of buffers from a [`packet::Pool`], each with the port it came in on, and leaves each in
//!   [`overlay::Outputs`] with an [`overlay::Verdict`]: a port, the underlay, or a counted
//!   [`overlay::DropReason`]. It reads no clock and makes no system call: time is an argument, and
//!   [`overlay::Node::poll_at`] says when the node next needs to run.
//! - **Ports**: pod ports carry Ethernet frames behind the bridge; IP ports ([`overlay::NodeConfig::ip_ports`],
//!   routes to them with [`overlay::PortRoute`]) carry IP packets, as TUNs do. A node may have only IP ports.
//! - **Your own tunnel**: implement [`overlay::encap::Encapsulation`] (its overhead sets the inner MTU) and build
//!   the node with [`overlay::Node::with_encapsulation`]; flannel's vxlan, udp and host-gw are implementations
//!   of it ([`overlay::encap::Vxlan`], [`overlay::encap::Udp`], [`overlay::encap::HostGw`]).
//! - **Several workers**: one [`overlay::Control`] owns the routes and peers and publishes them as snapshots;
//!   [`overlay::Control::worker`] makes each worker's node, and [`overlay::Control::counters`] sums theirs.
//! - **Peers from subnet leases**: [`control::PeerSync`] keeps a node's peers equal to the leases of a
//!   [`control::LeaseStore`], through [`overlay::PeerWriter`].
//! - **Devices and sockets** (Linux): `io::Driver` runs a node over TAPs, TUNs and a batched UDP socket.
//! - **Parsing and tables alone**: [`wire`] views and `Repr`s, [`switch::Bridge`], [`route::RouteTable`].
//!
//! `ARCHITECTURE.md`, at the root of the repository, is the map: the crates and their layers, the seams, the
//! stages of the data path, the promises (no allocation after construction, progress, every packet accounted
//! for), where each kind of test lives, and how to add an encapsulation or a kind of port.
//!
//! # Example: two sites joined by a tunnel
//! Two nodes whose only ports are IP ports (a TUN each, port 1), with their sites `10.1.0.0/24` and
//! `10.2.0.0/24` behind them, and flannel's udp encapsulation between their UDP sockets (port 9). A packet from
//! site 1 leaves node A for the underlay; what a socket would send is handed to node B, which routes it into its
//! TUN.
//!
//! ```
//! use tweed::overlay::{Instant, Node, NodeBuilder, Outputs, PeerConfig, UdpConfig, Verdict};
//! use tweed::packet::{Batch, Pool, PoolConfig, PortId};
//! use tweed::wire::ipv4;
//!
//! const TUN: PortId = PortId(1);
//! const SOCKET: PortId = PortId(9);
//! let site = |ip: &str, mac: &str, mine: &str, peer_ip: [u8; 4], theirs: &str| -> Result<Node, Box<dyn std::error::Error>> {
//!     Ok(NodeBuilder::routed(ip.parse()?, mac.parse()?)
//!         .udp(UdpConfig::default())
//!         .socket_port(SOCKET)
//!         .ip_port(TUN.0)
//!         .route(mine.parse()?, TUN.0)
//!         .peer(PeerConfig::new(theirs.parse()?, peer_ip))
//!         .build()?)
//! };
//! let mut a = site("192.168.0.1", "02:00:00:00:00:01", "10.1.0.0/24", [192, 168, 0, 2], "10.2.0.0/24")?;
//! let mut b = site("192.168.0.2", "02:00:00:00:00:02", "10.2.0.0/24", [192, 168, 0, 1], "10.1.0.0/24")?;
//! assert_eq!(a.inner_mtu(), 1500 - 28); // the underlay's MTU less the encapsulation's overhead
//!
//! // 10.1.0.5 -> 10.2.0.7, UDP, TTL 64, as a TUN gives it (no Ethernet header).
//! let mut ip = [0u8; 28];
//! ip[..20].copy_from_slice(&[0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 1, 0, 5, 10, 2, 0, 7]);
//! ip[20..28].copy_from_slice(&[0x0f, 0xa0, 0, 53, 0, 8, 0, 0]);
//! ipv4::Packet::new_unchecked(&mut ip[..]).fill_checksum();
//!
//! let mut pool = Pool::new(PoolConfig::default())?;
//! let (mut batch, mut out) = (Batch::new(8), Outputs::new(8));
//! let mut buf = pool.get().ok_or("pool")?;
//! buf.extend_from_slice(&ip)?;
//! buf.meta_mut().ingress = TUN;
//! batch.push(buf).map_err(|_| "batch")?;
//! a.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
//!
//! // Node A: to node B's socket; the UDP payload starts after the outer Ethernet, IPv4 and UDP headers.
//! let (mut frame, verdict) = out.drain().next().ok_or("no output")?;
//! let Verdict::Underlay { dst, payload_offset } = verdict else { return Err(format!("{verdict:?}").into()) };
//! assert_eq!(dst, "192.168.0.2:8285".parse()?);
//! assert_eq!(payload_offset, 42);
//!
//! // Node B: the datagram as its socket receives it, from node A.
//! frame.pull_front(usize::from(payload_offset))?;
//! frame.meta_mut().ingress = SOCKET;
//! frame.meta_mut().set_remote("192.168.0.1:8285".parse()?);
//! batch.push(frame).map_err(|_| "batch")?;
//! b.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
//! let (packet, verdict) = &out.as_slice()[0];
//! assert_eq!(*verdict, Verdict::Port(TUN));
//! let delivered = ipv4::Packet::new_checked(packet.data())?;
//! assert_eq!(delivered.dst_addr().to_string(), "10.2.0.7");
//! assert_eq!(delivered.ttl(), 62); // each node routed it once
//! assert_eq!((a.counters().to_peer, b.counters().from_peer, b.counters().to_port), (1, 1, 1));
//! out.recycle(&mut pool);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub use tweed_agent as agent;
pub use tweed_control as control;
#[cfg(target_os = "linux")]
pub use tweed_io as io;
pub use tweed_overlay as overlay;
pub use tweed_packet as packet;
pub use tweed_pcap as pcap;
pub use tweed_route as route;
pub use tweed_switch as switch;
pub use tweed_wire as wire;

/// The README's code blocks, compiled and run as doc tests so that the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
