//! What becomes of each packet ([`Verdict`]), why a packet was dropped ([`DropReason`]), and the node's
//! [`Counters`].

use core::fmt;
use core::net::SocketAddr;

use tweed_packet::PortId;

mod counters;

pub use counters::Counters;

/// Where a packet leaves the node, or why it does not.
///
/// ```
/// use tweed_overlay::{DropReason, Verdict};
/// use tweed_packet::PortId;
///
/// // What a driver does with each output.
/// fn describe(v: Verdict) -> String {
///     match v {
///         Verdict::Port(p) => format!("out of port {}", p.0),
///         Verdict::Underlay { dst, .. } => format!("to {dst} on the underlay"),
///         Verdict::Drop(reason) => format!("dropped: {reason}"),
///         _ => "given back to the pool".into(),
///     }
/// }
/// assert_eq!(describe(Verdict::Drop(DropReason::NoRoute)), "dropped: no_route");
/// assert_eq!(describe(Verdict::Port(PortId(3))), "out of port 3");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use]
#[non_exhaustive]
pub enum Verdict {
    /// Send it out of this port, in the port's medium: an Ethernet frame on a pod port, an IP packet (the buffer
    /// holds it without an Ethernet header) on an IP port (a TUN, the host's).
    Port(PortId),
    /// Send the frame on the underlay, to the peer node `dst`.
    ///
    /// The buffer holds a whole frame with the transport's outer headers (a raw socket or pcap sends it as is);
    /// `data()[payload_offset..]` is what a UDP socket sends to `dst` (the UDP payload), or, with an Ethernet
    /// transport (host-gw, `dst` with port 0), the IP packet.
    Underlay {
        /// The peer node's underlay address and port.
        dst: SocketAddr,
        /// Where the UDP payload (or, for host-gw, the IP packet) starts in the frame.
        payload_offset: u16,
    },
    /// The node used the packet up (an ARP reply to its own request): give the buffer back to the pool.
    Consumed,
    /// The packet was dropped; give the buffer back to the pool.
    Drop(DropReason),
}

macro_rules! reasons {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// Why a packet was dropped. Each reason has a counter ([`Counters::drops`]) under [`DropReason::as_str`].
        ///
        /// ```
        /// use tweed_overlay::{DropReason, Verdict};
        ///
        /// // Every reason has a name, for logs and metrics.
        /// let verdict = Verdict::Drop(DropReason::TtlExpired);
        /// assert_eq!(format!("{verdict:?}"), "Drop(TtlExpired)");
        /// assert!(matches!(verdict, Verdict::Drop(reason) if reason.to_string() == "ttl_expired"));
        /// ```
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum DropReason {
            $($(#[doc = $doc])* $variant,)*
        }

        impl DropReason {
            /// Every reason, in declaration order.
            ///
            /// ```
            /// use tweed_overlay::DropReason;
            ///
            /// assert_eq!(DropReason::ALL.first(), Some(&DropReason::UnknownPort));
            /// // A reason's index in `ALL` is its index in `Counters::drops`.
            /// assert!(DropReason::ALL.iter().enumerate().all(|(i, &r)| r as usize == i));
            /// ```
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];
            /// How many reasons there are.
            ///
            /// ```
            /// use tweed_overlay::{Counters, DropReason};
            ///
            /// assert_eq!(Counters::default().drops.len(), DropReason::COUNT);
            /// let per_reason = [0u64; DropReason::COUNT]; // a driver's own table, say
            /// assert_eq!(per_reason.len(), DropReason::ALL.len());
            /// ```
            pub const COUNT: usize = Self::ALL.len();

            /// The reason's counter name.
            ///
            /// ```
            /// use tweed_overlay::DropReason;
            ///
            /// let metric = format!("tweed_drops_total{{reason=\"{}\"}} {}", DropReason::NoRoute.as_str(), 3);
            /// assert_eq!(metric, r#"tweed_drops_total{reason="no_route"} 3"#);
            /// ```
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

reasons! {
    /// Received on a port that is neither a pod port nor the underlay.
    UnknownPort => "unknown_port",
    /// The bridge dropped it: truncated Ethernet header.
    BridgeTruncated => "bridge_truncated",
    /// The bridge dropped it: broadcast, multicast or zero source MAC.
    BridgeInvalidSource => "bridge_invalid_source",
    /// The bridge dropped it: destination on the ingress port.
    BridgeFiltered => "bridge_filtered",
    /// The bridge dropped it: malformed ARP.
    ArpMalformed => "arp_malformed",
    /// A broadcast or multicast frame that is not an ARP request for the gateway, and no other pod port to flood it to.
    FloodNoPort => "flood_no_port",
    /// A frame to the gateway MAC that is neither IPv4 nor ARP (or is 802.1Q-tagged).
    UnsupportedEthertype => "unsupported_ethertype",
    /// IPv4 shorter than its header, IHL < 5, total length shorter than the header or longer than the frame
    /// (RFC 1812 §5.2.2).
    Ipv4Malformed => "ipv4_malformed",
    /// IPv4 version other than 4 (RFC 1812 §5.2.2).
    Ipv4Version => "ipv4_version",
    /// Bad IPv4 header checksum (RFC 1812 §5.2.2).
    Ipv4Checksum => "ipv4_checksum",
    /// A source address no router forwards from: 0/8, 127/8, multicast, broadcast (RFC 1812 §5.3.7).
    MartianSource => "martian_source",
    /// A destination no router forwards to: 0/8, 127/8, class E, limited broadcast (RFC 1812 §5.3.7).
    MartianDestination => "martian_destination",
    /// TTL expired (an ICMP time exceeded was sent, unless suppressed or rate-limited).
    TtlExpired => "ttl_expired",
    /// No route to the destination.
    NoRoute => "no_route",
    /// The route's next hop is not a peer in the snapshot of the peers the worker took for its batch. A worker of a
    /// shared [`Control`](crate::Control) reads the route table as it is, and can find the route of a peer the
    /// control added but has not published yet: the packet is dropped and counted here, never sent to another peer
    /// (a freed next hop's id is not handed out again at once), and the worker's first batch after the publication
    /// sees the peer. A node that owns its control publishes as it changes and never gives it: there, a non-zero
    /// counter is a bug.
    StaleNextHop => "stale_next_hop",
    /// Too big for the underlay after encapsulation with DF set (an ICMP fragmentation needed was sent, unless
    /// rate-limited).
    TooBig => "too_big",
    /// Too big for the underlay after encapsulation without DF, and its header leaves no room for 8 bytes of data
    /// within the inner MTU, so it cannot be fragmented. A valid configuration (MTU 576 or more) never gives it:
    /// such packets are fragmented ([`Counters::fragmented`]).
    TooBigNoDf => "too_big_no_df",
    /// The headroom cannot hold the outer headers.
    NoHeadroom => "no_headroom",
    /// A packet for a local pod whose MAC is unknown, and the ARP queue is full (or holds as many packets from its
    /// ingress port as [`Limits::arp_queue_per_port`](crate::Limits::arp_queue_per_port) allows).
    ArpQueueFull => "arp_queue_full",
    /// A packet waited for ARP longer than the timeout.
    ArpTimeout => "arp_timeout",
    /// A local pod's MAC is known but not the port it is on.
    PodPortUnknown => "pod_port_unknown",
    /// The output was full: a packet the node originates (ARP, ICMP, flood copy) could not be added.
    OutputFull => "output_full",
    /// The pool had no buffer for a packet the node originates.
    PoolExhausted => "pool_exhausted",
    /// Underlay: not addressed to this node's MAC (or broadcast), or not IPv4.
    UnderlayNotForUs => "underlay_not_for_us",
    /// Underlay: outer IPv4 malformed or with a bad checksum.
    UnderlayMalformed => "underlay_malformed",
    /// Underlay: outer IPv4 fragment (never reassembled).
    UnderlayFragment => "underlay_fragment",
    /// Underlay: the outer protocol or UDP port is not the backend's.
    UnderlayWrongPort => "underlay_wrong_port",
    /// Underlay: the outer source is not a known peer's node address (or MAC, for host-gw).
    UnknownPeer => "unknown_peer",
    /// Underlay: the outer UDP checksum is non-zero and wrong.
    UnderlayChecksum => "underlay_checksum",
    /// Underlay: VXLAN header malformed (I flag clear, reserved flags set) or truncated.
    VxlanMalformed => "vxlan_malformed",
    /// Underlay: VXLAN with another VNI.
    WrongVni => "wrong_vni",
    /// Underlay: inner Ethernet not from the peer's VTEP MAC to ours, or not IPv4.
    InnerMismatch => "inner_mismatch",
    /// Underlay: the inner source address is not in the sending peer's subnet.
    SpoofedSource => "spoofed_source",
    /// Underlay: the inner destination is not a pod of this node (the node does not relay between peers).
    NotLocal => "not_local",
    /// From the host: addressed to the node itself (the gateway or node address), which is the host's own.
    HostToSelf => "host_to_self",
    /// For the node itself (the gateway or node address) and not answered by it, and the node has no host port
    /// ([`NodeConfig::host_port`](crate::NodeConfig::host_port)) to hand it to.
    NoHostPort => "no_host_port",
    /// Underlay: the encapsulation's integrity check failed (a wrong key, a forged or corrupted message).
    Unauthenticated => "unauthenticated",
    /// Underlay: the encapsulation saw this message before, or it is too old for its replay window.
    Replayed => "replayed",
    /// The bridge dropped it for a reason this version of the node does not know by name.
    BridgeOther => "bridge_other",
    /// For a local address that did not answer ARP lately (its neighbour entry is failed, see
    /// [`Limits::arp_failed_ms`](crate::Limits::arp_failed_ms)): dropped at once, with an ICMP host unreachable
    /// to the sender (rate-limited).
    ArpFailed => "arp_failed",
    /// For a local address the node has not resolved, and its neighbour table
    /// ([`Limits::arp_entries`](crate::Limits::arp_entries)) is full of addresses being resolved.
    ArpTableFull => "arp_table_full",
    /// From a pod: an IPv4 source (or ARP sender address) outside the node's pod subnet, or the gateway's, or the
    /// subnet's network or broadcast address. Always checked.
    PodSourceSpoofed => "pod_source_spoofed",
    /// From a pod, with [`NodeConfig::port_security`](crate::NodeConfig::port_security) on: an IPv4 source (or ARP
    /// sender address) that is not one of its port's own addresses.
    PortSecurity => "port_security",
    /// Too big for the underlay without DF, and the pool had no buffer for every fragment (or the output no
    /// room): the whole packet is dropped rather than a part of it sent.
    FragNoBuffer => "frag_no_buffer",
    /// From a pod: ARP claiming an address the node configured (the gateway's); never flooded nor answered.
    ArpSpoofed => "arp_spoofed",
    /// From a pod: ARP claiming an address another pod's port holds while its entry is fresh (or, with port
    /// security and no configured addresses, one the port may not take); never flooded nor answered.
    ArpClaimed => "arp_claimed",
    /// From a pod: a source MAC that another pod's port holds (a live entry) or the gateway's: a pod taking over
    /// another's MAC. The MAC stays where it is.
    MacHeld => "mac_held",
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_reason_names_unique_and_indexed() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert!(DropReason::ALL[..i].iter().all(|o| o.as_str() != r.as_str()));
        }
        let mut c = Counters::default();
        c.count_drop(DropReason::NoRoute);
        c.count_drop(DropReason::NoRoute);
        assert_eq!(c.drop_count(DropReason::NoRoute), 2);
        assert_eq!(c.nonzero_drops().collect::<Vec<_>>(), [("no_route", 2)]);
        assert_eq!(DropReason::WrongVni.to_string(), "wrong_vni");
    }
}
