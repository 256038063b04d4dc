//! [`Counters`]: what a node did, by packet and by drop reason.

use super::DropReason;

/// What a node (one worker) did, since it was made. Several workers' counters sum with [`Counters::merge`]
/// ([`Control::counters`](crate::Control::counters) does it).
///
/// ```
/// # use tweed_overlay::{Instant, NodeBuilder, Outputs};
/// # use tweed_packet::{Batch, Pool, PoolConfig, PortId};
/// # let (subnet, ip, mac) = ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
/// # let mut node = NodeBuilder::new(subnet, ip, mac)
/// #     .pod_ports([1])
/// #     .build()?;
/// # let (mut pool, mut batch, mut out) = (Pool::new(PoolConfig::default())?, Batch::new(1), Outputs::new(8));
/// # let mut runt = pool.get().ok_or("pool")?;
/// # runt.meta_mut().ingress = PortId(1);
/// # batch.push(runt).map_err(|_| "batch")?;
/// // A frame too short for Ethernet from a pod.
/// node.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
/// let c = node.counters();
/// assert_eq!((c.rx_pod, c.received, c.outputs, c.switched), (1, 1, 1, 0));
/// assert_eq!(c.drop_count(tweed_overlay::DropReason::BridgeTruncated), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Packets received from pod ports.
    pub rx_pod: u64,
    /// Packets received from the underlay.
    pub rx_underlay: u64,
    /// IP packets received from the host (see [`NodeConfig::host_port`](crate::NodeConfig::host_port)).
    pub rx_host: u64,
    /// IP packets received from IP ports (see [`NodeConfig::ip_ports`](crate::NodeConfig::ip_ports)).
    pub rx_port: u64,
    /// Frames switched between pods of this node.
    pub switched: u64,
    /// Packets routed to a local pod.
    pub to_pod: u64,
    /// Packets encapsulated (or, host-gw, routed) to a peer.
    pub to_peer: u64,
    /// Packets decapsulated from a peer.
    pub from_peer: u64,
    /// Packets handed to the host (its TUN, the host port).
    pub to_tun: u64,
    /// Packets routed out of IP ports other than the host's.
    pub to_port: u64,
    /// ARP requests for the gateway answered.
    pub arp_replies: u64,
    /// ARP requests the node sent for local pods.
    pub arp_requests: u64,
    /// ARP frames to the gateway MAC used up (replies to the node's requests).
    pub arp_consumed: u64,
    /// Packets queued waiting for ARP.
    pub arp_queued: u64,
    /// Packets released from the ARP queue.
    pub arp_released: u64,
    /// ICMP echo requests to the gateway answered.
    pub echo_replies: u64,
    /// ICMP errors sent.
    pub icmp_errors: u64,
    /// ICMP errors not sent: rate limit.
    pub icmp_rate_limited: u64,
    /// ICMP errors not sent: RFC 1812 §4.3.2.7 forbids one (error about an error, a fragment, a broadcast...).
    pub icmp_suppressed: u64,
    /// Packets without DF too big for the underlay, fragmented (RFC 791).
    pub fragmented: u64,
    /// The fragments they became (each a packet of its own, counted in `to_peer` too).
    pub fragments_out: u64,
    /// Local addresses that did not answer ARP: their neighbour entry failed.
    pub arp_failed: u64,
    /// Packets [`Node::process`](crate::Node::process) took from its input.
    pub received: u64,
    /// Buffers the node took from the pool for packets of its own: ARP requests, ICMP errors, flood copies,
    /// fragments beyond the first.
    pub originated: u64,
    /// Packets put in an [`Outputs`](crate::Outputs), whatever their verdict (drops included).
    pub outputs: u64,
    /// Packets given back to the pool without an output (their drop counted: [`DropReason::OutputFull`], or their
    /// own reason when the output had no room for the drop).
    pub discarded: u64,
    /// Bindings learnt on pod ports (a pod's ARP binding, or its MAC alone) told to the other workers of the
    /// control, refreshes included (see [`Control::worker`](crate::Control::worker)).
    pub learn_sent: u64,
    /// Bindings other workers told this one, run through its bridge (which may refuse them, as it would the pod's
    /// own frames).
    pub learn_received: u64,
    /// Bindings lost on the way: another worker's inbox was full (one for each inbox it did not reach).
    pub learn_dropped: u64,
    /// Drops, indexed by `DropReason as usize`.
    pub drops: [u64; DropReason::COUNT],
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            rx_pod: 0,
            rx_underlay: 0,
            rx_host: 0,
            rx_port: 0,
            switched: 0,
            to_pod: 0,
            to_peer: 0,
            from_peer: 0,
            to_tun: 0,
            to_port: 0,
            arp_replies: 0,
            arp_requests: 0,
            arp_consumed: 0,
            arp_queued: 0,
            arp_released: 0,
            echo_replies: 0,
            icmp_errors: 0,
            icmp_rate_limited: 0,
            icmp_suppressed: 0,
            fragmented: 0,
            fragments_out: 0,
            arp_failed: 0,
            received: 0,
            originated: 0,
            outputs: 0,
            discarded: 0,
            learn_sent: 0,
            learn_received: 0,
            learn_dropped: 0,
            drops: [0; DropReason::COUNT],
        }
    }
}

impl Counters {
    /// Adds `other`'s counts to these (every field: the sum of several workers).
    ///
    /// ```
    /// use tweed_overlay::Counters;
    ///
    /// use tweed_overlay::DropReason;
    ///
    /// // Two workers' counters.
    /// let (mut a, mut b) = (Counters::default(), Counters::default());
    /// (a.received, b.received) = (2, 3);
    /// b.drops[DropReason::NoRoute as usize] = 1;
    /// a.merge(&b);
    /// assert_eq!((a.received, a.drop_count(DropReason::NoRoute)), (5, 1));
    /// ```
    pub fn merge(&mut self, other: &Self) {
        let Self {
            rx_pod,
            rx_underlay,
            rx_host,
            rx_port,
            switched,
            to_pod,
            to_peer,
            from_peer,
            to_tun,
            to_port,
            arp_replies,
            arp_requests,
            arp_consumed,
            arp_queued,
            arp_released,
            echo_replies,
            icmp_errors,
            icmp_rate_limited,
            icmp_suppressed,
            fragmented,
            fragments_out,
            arp_failed,
            received,
            originated,
            outputs,
            discarded,
            learn_sent,
            learn_received,
            learn_dropped,
            drops,
        } = other;
        // Destructured, so that a new field cannot be forgotten here.
        for (a, b) in [
            (&mut self.rx_pod, rx_pod),
            (&mut self.rx_underlay, rx_underlay),
            (&mut self.rx_host, rx_host),
            (&mut self.rx_port, rx_port),
            (&mut self.switched, switched),
            (&mut self.to_pod, to_pod),
            (&mut self.to_peer, to_peer),
            (&mut self.from_peer, from_peer),
            (&mut self.to_tun, to_tun),
            (&mut self.to_port, to_port),
            (&mut self.arp_replies, arp_replies),
            (&mut self.arp_requests, arp_requests),
            (&mut self.arp_consumed, arp_consumed),
            (&mut self.arp_queued, arp_queued),
            (&mut self.arp_released, arp_released),
            (&mut self.echo_replies, echo_replies),
            (&mut self.icmp_errors, icmp_errors),
            (&mut self.icmp_rate_limited, icmp_rate_limited),
            (&mut self.icmp_suppressed, icmp_suppressed),
            (&mut self.fragmented, fragmented),
            (&mut self.fragments_out, fragments_out),
            (&mut self.arp_failed, arp_failed),
            (&mut self.received, received),
            (&mut self.originated, originated),
            (&mut self.outputs, outputs),
            (&mut self.discarded, discarded),
            (&mut self.learn_sent, learn_sent),
            (&mut self.learn_received, learn_received),
            (&mut self.learn_dropped, learn_dropped),
        ] {
            *a = a.wrapping_add(*b);
        }
        for (a, b) in self.drops.iter_mut().zip(drops) {
            *a = a.wrapping_add(*b);
        }
    }

    /// The drop counter of `reason`.
    ///
    /// ```
    /// # use tweed_overlay::{Instant, NodeBuilder, Outputs};
    /// # use tweed_packet::{Batch, Pool, PoolConfig, PortId};
    /// # let (subnet, ip, mac) = ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// # let mut node = NodeBuilder::new(subnet, ip, mac)
    /// #     .pod_ports([1])
    /// #     .build()?;
    /// # let (mut pool, mut batch, mut out) = (Pool::new(PoolConfig::default())?, Batch::new(1), Outputs::new(8));
    /// # let mut runt = pool.get().ok_or("pool")?;
    /// # runt.meta_mut().ingress = PortId(1);
    /// # batch.push(runt).map_err(|_| "batch")?;
    /// // A frame too short for Ethernet from a pod.
    /// node.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
    /// use tweed_overlay::DropReason;
    /// assert_eq!(node.counters().drop_count(DropReason::BridgeTruncated), 1);
    /// assert_eq!(node.counters().drop_count(DropReason::NoRoute), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub const fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// All drops.
    ///
    /// ```
    /// # use tweed_overlay::{Instant, NodeBuilder, Outputs};
    /// # use tweed_packet::{Batch, Pool, PoolConfig, PortId};
    /// # let (subnet, ip, mac) = ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// # let mut node = NodeBuilder::new(subnet, ip, mac)
    /// #     .pod_ports([1])
    /// #     .build()?;
    /// # let (mut pool, mut batch, mut out) = (Pool::new(PoolConfig::default())?, Batch::new(1), Outputs::new(8));
    /// # let mut runt = pool.get().ok_or("pool")?;
    /// # runt.meta_mut().ingress = PortId(1);
    /// # batch.push(runt).map_err(|_| "batch")?;
    /// // A frame too short for Ethernet from a pod.
    /// node.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
    /// assert_eq!(node.counters().total_drops(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// The packets the node holds between calls: every packet it received or originated, less those it output or
    /// discarded. Every packet is accounted for once, so this always equals
    /// [`Node::arp_pending`](crate::Node::arp_pending) (the packets waiting for ARP): a fuzzer's invariant.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut node = NodeBuilder::new("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?)
    ///     .pod_ports([1])
    ///     .ip_port(5)
    ///     .route("10.9.0.0/16".parse()?, 5)
    ///     .build()?;
    /// // From IP port 5 to a pod whose MAC the node asks for: the packet waits.
    /// run(&mut node, 5, [0; 4], &ipv4([10, 9, 0, 1], [10, 244, 1, 7]));
    /// assert_eq!((node.counters().held(), node.arp_pending()), (1, 1));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub const fn held(&self) -> u64 {
        self.received.wrapping_add(self.originated).wrapping_sub(self.outputs).wrapping_sub(self.discarded)
    }

    /// The non-zero drop counters with their names.
    ///
    /// ```
    /// # use tweed_overlay::{Instant, NodeBuilder, Outputs};
    /// # use tweed_packet::{Batch, Pool, PoolConfig, PortId};
    /// # let (subnet, ip, mac) = ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// # let mut node = NodeBuilder::new(subnet, ip, mac)
    /// #     .pod_ports([1])
    /// #     .build()?;
    /// # let (mut pool, mut batch, mut out) = (Pool::new(PoolConfig::default())?, Batch::new(1), Outputs::new(8));
    /// # let mut runt = pool.get().ok_or("pool")?;
    /// # runt.meta_mut().ingress = PortId(1);
    /// # batch.push(runt).map_err(|_| "batch")?;
    /// // A frame too short for Ethernet from a pod.
    /// node.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
    /// assert_eq!(node.counters().nonzero_drops().collect::<Vec<_>>(), [("bridge_truncated", 1)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn nonzero_drops(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (r.as_str(), self.drops[*r as usize])).filter(|(_, n)| *n != 0)
    }

    pub(crate) const fn count_drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }
}
