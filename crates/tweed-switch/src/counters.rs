//! Counters of a bridge port (or of a whole bridge: their sum), one named field per event and drop reason.

use core::fmt;
use core::ops::AddAssign;

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// What happened to the frames received on a port (the ingress port counts each frame's fate), or on a
        /// whole bridge ([`crate::Bridge::counters`] sums the ports).
        ///
        /// Every frame counts once in `rx` and once in exactly one of the fate counters: `forwarded`,
        /// `flooded_*`, `to_local`, `arp_answered` or a `drop_*`. The learning counters (`learned`, `moved`,
        /// `limit_hit`, …) count events on the way and do not add up to anything.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub struct Counters {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl Counters {
            /// Every counter with its name, in declaration order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$((stringify!($name), self.$name),)*].into_iter()
            }
        }

        impl AddAssign<&Counters> for Counters {
            fn add_assign(&mut self, other: &Self) {
                $(self.$name += other.$name;)*
            }
        }
    };
}

counters! {
    /// Frames received.
    rx,
    /// Unicast frames sent to the one port their destination was learnt or configured on.
    forwarded,
    /// Broadcast frames flooded.
    flooded_broadcast,
    /// Multicast frames flooded.
    flooded_multicast,
    /// Unicast frames to an unknown (or aged) destination flooded.
    flooded_unknown,
    /// Frames to one of the bridge's own MACs, handed to the host.
    to_local,
    /// ARP requests answered from the ARP table (not flooded).
    arp_answered,
    /// Dropped: received on a port the bridge does not have (only in the bridge's total).
    drop_unknown_port,
    /// Dropped: shorter than an Ethernet header (with its 802.1Q tag, if any).
    drop_truncated,
    /// Dropped: broadcast, multicast or all-zero source address.
    drop_invalid_source,
    /// Dropped: the destination was learnt on the port the frame came from (the Linux bridge's "filtered").
    drop_filtered,
    /// Dropped: an ARP frame that is not well-formed Ethernet/IPv4 ARP.
    drop_arp_malformed,
    /// Dropped: ARP claiming a configured address (the gateway's) from another MAC or port: ARP spoofing.
    drop_arp_spoofed,
    /// Dropped: ARP claiming an address that another port owns (a reachable snooped entry), not answered.
    drop_arp_claimed,
    /// Dropped: on a port with the MAC lock, a source MAC another port holds (or a static entry binds elsewhere).
    drop_mac_held,
    /// Source addresses learnt (new, or re-learnt after ageing out).
    learned,
    /// Source addresses that moved here from another port.
    moved,
    /// Source addresses not learnt: the bridge's learned-entry limit was reached.
    limit_hit,
    /// Source addresses not learnt: this port's learned-entry limit was reached.
    port_limit_hit,
    /// Source addresses that a static entry binds to another port (or to the host): not learnt. A spoofed
    /// address, or a loop.
    static_conflict,
    /// ARP entries learnt by snooping (on ports that allow it).
    arp_snooped,
    /// ARP packets that snooping refused, for any reason: gratuitous, a sender address that does not match the
    /// frame, a configured entry in the way, a full table, and the reasons counted on their own below.
    arp_snoop_refused,
    /// ARP packets whose sender address another port owns (its entry is reachable): not snooped.
    arp_claim_refused,
    /// ARP packets not snooped because the port owns its limit of entries ([`crate::PortConfig::max_arp`]).
    arp_port_limit_hit,
    /// ARP packets not snooped because their sender address is outside the domain's subnet
    /// ([`crate::Bridge::set_arp_subnet`]).
    arp_outside_subnet,
}

impl fmt::Display for Counters {
    /// The non-zero counters, `name value` separated by commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, value) in self.iter().filter(|&(_, v)| v != 0) {
            if !first {
                f.write_str(", ")?;
            }
            write!(f, "{name} {value}")?;
            first = false;
        }
        Ok(())
    }
}
