//! [`Outputs`]: what one call of [`Node::process`](super::Node::process) leaves.

use super::*;

/// The packets one call of [`Node::process`] leaves, each with its verdict, in a vector sized up front.
///
/// ```
/// # use tweed_overlay::{DropReason, Instant, NodeBuilder, Outputs, Verdict};
/// # use tweed_packet::{Batch, Pool, PoolConfig, PortId};
/// # let (subnet, ip, mac) = ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
/// # let mut node = NodeBuilder::new(subnet, ip, mac)
/// #     .pod_ports([1])
/// #     .build()?;
/// # let mut pool = Pool::new(PoolConfig::default())?;
/// # let mut batch = Batch::new(8);
/// # for n in [10, 11] { // two runt frames from a pod, 10 and 11 bytes long
/// #     let mut buf = pool.get().ok_or("pool")?;
/// #     buf.extend_from_slice(&vec![0; n])?;
/// #     buf.meta_mut().ingress = PortId(1);
/// #     batch.push(buf).map_err(|_| "batch")?;
/// # }
/// let mut out = Outputs::new(node.config().limits.max_outputs);
/// node.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
/// // What a driver does with each output.
/// for (buf, verdict) in out.drain() {
///     match verdict {
///         Verdict::Port(_port) => { /* write buf.data() to the port's device */ }
///         Verdict::Underlay { .. } => { /* send the frame, or data()[payload_offset..] to dst */ }
///         _ => {} // dropped (and counted) or used up
///     }
///     pool.put(buf);
/// }
/// assert_eq!(node.counters().total_drops(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Outputs {
    pub(super) items: Vec<(PacketBuf, Verdict)>,
    /// Room held back, during a call of [`Node::process`], for the batch's packets not yet emitted: the packets
    /// the node originates (ARP requests, ICMP errors, flood copies, fragments) and those it releases from the
    /// ARP queue take only the room beyond it, so that they never crowd out the batch.
    pub(super) reserved: usize,
}

impl Outputs {
    /// Room for `capacity` packets.
    ///
    /// ```
    /// # use tweed_overlay::{DropReason, Instant, NodeBuilder, Outputs, Verdict};
    /// # use tweed_packet::{Batch, Pool, PoolConfig, PortId};
    /// # let (subnet, ip, mac) = ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// # let mut node = NodeBuilder::new(subnet, ip, mac)
    /// #     .pod_ports([1])
    /// #     .build()?;
    /// # let mut pool = Pool::new(PoolConfig::default())?;
    /// # let mut batch = Batch::new(8);
    /// # for n in [10, 11] { // two runt frames from a pod, 10 and 11 bytes long
    /// #     let mut buf = pool.get().ok_or("pool")?;
    /// #     buf.extend_from_slice(&vec![0; n])?;
    /// #     buf.meta_mut().ingress = PortId(1);
    /// #     batch.push(buf).map_err(|_| "batch")?;
    /// # }
    /// let mut out = Outputs::new(1); // room for one: the other input stays
    /// node.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
    /// assert_eq!((out.len(), batch.len()), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self { items: Vec::with_capacity(capacity), reserved: 0 }
    }

    /// How many packets there are.
    ///
    /// ```
    /// # use tweed_overlay::{DropReason, Instant, NodeBuilder, Outputs, Verdict};
    /// # use tweed_packet::{Batch, Pool, PoolConfig, PortId};
    /// # let (subnet, ip, mac) = ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// # let mut node = NodeBuilder::new(subnet, ip, mac)
    /// #     .pod_ports([1])
    /// #     .build()?;
    /// # let mut pool = Pool::new(PoolConfig::default())?;
    /// # let mut batch = Batch::new(8);
    /// # for n in [10, 11] { // two runt frames from a pod, 10 and 11 bytes long
    /// #     let mut buf = pool.get().ok_or("pool")?;
    /// #     buf.extend_from_slice(&vec![0; n])?;
    /// #     buf.meta_mut().ingress = PortId(1);
    /// #     batch.push(buf).map_err(|_| "batch")?;
    /// # }
    /// let mut out = Outputs::new(8);
    /// node.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
    /// assert_eq!(out.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there is none.
    ///
    /// ```
    /// # use tweed_overlay::{DropReason, Instant, NodeBuilder, Outputs, Verdict};
    /// # use tweed_packet::{Batch, Pool, PoolConfig, PortId};
    /// # let (subnet, ip, mac) = ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// # let mut node = NodeBuilder::new(subnet, ip, mac)
    /// #     .pod_ports([1])
    /// #     .build()?;
    /// # let mut pool = Pool::new(PoolConfig::default())?;
    /// # let mut batch = Batch::new(8);
    /// # for n in [10, 11] { // two runt frames from a pod, 10 and 11 bytes long
    /// #     let mut buf = pool.get().ok_or("pool")?;
    /// #     buf.extend_from_slice(&vec![0; n])?;
    /// #     buf.meta_mut().ingress = PortId(1);
    /// #     batch.push(buf).map_err(|_| "batch")?;
    /// # }
    /// let mut out = Outputs::new(8);
    /// assert!(out.is_empty());
    /// node.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
    /// out.recycle(&mut pool);
    /// assert!(out.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The packets and their verdicts.
    ///
    /// ```
    /// # use tweed_overlay::{DropReason, Instant, NodeBuilder, Outputs, Verdict};
    /// # use tweed_packet::{Batch, Pool, PoolConfig, PortId};
    /// # let (subnet, ip, mac) = ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// # let mut node = NodeBuilder::new(subnet, ip, mac)
    /// #     .pod_ports([1])
    /// #     .build()?;
    /// # let mut pool = Pool::new(PoolConfig::default())?;
    /// # let mut batch = Batch::new(8);
    /// # for n in [10, 11] { // two runt frames from a pod, 10 and 11 bytes long
    /// #     let mut buf = pool.get().ok_or("pool")?;
    /// #     buf.extend_from_slice(&vec![0; n])?;
    /// #     buf.meta_mut().ingress = PortId(1);
    /// #     batch.push(buf).map_err(|_| "batch")?;
    /// # }
    /// let mut out = Outputs::new(8);
    /// node.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
    /// let lens: Vec<usize> = out.as_slice().iter().map(|(buf, _)| buf.data().len()).collect();
    /// assert_eq!(lens, [10, 11]); // in order of arrival
    /// assert!(out.as_slice().iter().all(|(_, v)| *v == Verdict::Drop(DropReason::BridgeTruncated)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_slice(&self) -> &[(PacketBuf, Verdict)] {
        &self.items
    }

    /// Takes the packets out, in order.
    ///
    /// ```
    /// # use tweed_overlay::{DropReason, Instant, NodeBuilder, Outputs, Verdict};
    /// # use tweed_packet::{Batch, Pool, PoolConfig, PortId};
    /// # let (subnet, ip, mac) = ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// # let mut node = NodeBuilder::new(subnet, ip, mac)
    /// #     .pod_ports([1])
    /// #     .build()?;
    /// # let mut pool = Pool::new(PoolConfig::default())?;
    /// # let mut batch = Batch::new(8);
    /// # for n in [10, 11] { // two runt frames from a pod, 10 and 11 bytes long
    /// #     let mut buf = pool.get().ok_or("pool")?;
    /// #     buf.extend_from_slice(&vec![0; n])?;
    /// #     buf.meta_mut().ingress = PortId(1);
    /// #     batch.push(buf).map_err(|_| "batch")?;
    /// # }
    /// let mut out = Outputs::new(8);
    /// node.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
    /// let mut lens = Vec::new();
    /// for (buf, _verdict) in out.drain() {
    ///     lens.push(buf.data().len()); // sent, say
    ///     pool.put(buf);
    /// }
    /// assert_eq!((lens.as_slice(), out.len()), (&[10, 11][..], 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drain(&mut self) -> std::vec::Drain<'_, (PacketBuf, Verdict)> {
        self.items.drain(..)
    }

    /// Gives every packet back to `pool`.
    ///
    /// ```
    /// # use tweed_overlay::{DropReason, Instant, NodeBuilder, Outputs, Verdict};
    /// # use tweed_packet::{Batch, Pool, PoolConfig, PortId};
    /// # let (subnet, ip, mac) = ("10.244.1.0/24".parse()?, "192.168.0.1".parse()?, "02:00:00:00:01:01".parse()?);
    /// # let mut node = NodeBuilder::new(subnet, ip, mac)
    /// #     .pod_ports([1])
    /// #     .build()?;
    /// # let mut pool = Pool::new(PoolConfig::default())?;
    /// # let mut batch = Batch::new(8);
    /// # for n in [10, 11] { // two runt frames from a pod, 10 and 11 bytes long
    /// #     let mut buf = pool.get().ok_or("pool")?;
    /// #     buf.extend_from_slice(&vec![0; n])?;
    /// #     buf.meta_mut().ingress = PortId(1);
    /// #     batch.push(buf).map_err(|_| "batch")?;
    /// # }
    /// let mut out = Outputs::new(8);
    /// let free = pool.available();
    /// node.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
    /// out.recycle(&mut pool);
    /// assert_eq!(pool.available(), free + 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recycle(&mut self, pool: &mut Pool) {
        for (buf, _) in self.items.drain(..) {
            pool.put(buf);
        }
    }

    /// The room left.
    pub(super) fn room(&self) -> usize {
        self.items.capacity().saturating_sub(self.items.len())
    }

    /// The room beyond the reserve: what packets outside the batch may take.
    pub(super) fn spare(&self) -> usize {
        self.room().saturating_sub(self.reserved)
    }
}
