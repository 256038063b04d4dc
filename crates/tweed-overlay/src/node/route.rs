//! The router: RFC 1812 checks, the lookup's outcome (no route, TTL, MTU) and the next hop (a local pod, an IP
//! port, or a peer through the encapsulation). It works on the IPv4 header at `l3`: behind an Ethernet header
//! (14) or at the start of the buffer (0).

use super::*;

impl<E: Encapsulation> Node<E> {
    /// RFC 1812 §5.2.2 checks on the IPv4 packet at `l3` of `buf`, trimming link padding.
    pub(super) fn check_ipv4(buf: &mut PacketBuf, l3: usize) -> Result<(), DropReason> {
        let data = buf.data();
        if l3 == ETH && ethertype(data) != Some(EtherType::IPV4) {
            return Err(DropReason::UnsupportedEthertype);
        }
        let ip = ipv4::Packet::new_unchecked(data.get(l3..).unwrap_or_default());
        if let Err(e) = ip.check_len() {
            return Err(match e {
                tweed_wire::Error::Invalid { field: "version", .. } => DropReason::Ipv4Version,
                _ => DropReason::Ipv4Malformed,
            });
        }
        if !ip.verify_checksum() {
            return Err(DropReason::Ipv4Checksum);
        }
        if martian(u32::from(ip.src_addr())) {
            return Err(DropReason::MartianSource);
        }
        if martian(u32::from(ip.dst_addr())) {
            return Err(DropReason::MartianDestination);
        }
        let total = usize::from(ip.total_len());
        buf.truncate(l3 + total);
        Ok(())
    }

    /// Routes the IPv4 packet at `l3` of `buf` alone: for packets the node originates (ICMP errors); the batch
    /// goes through [`Node::stage_route`].
    #[allow(clippy::too_many_arguments)]
    pub(super) fn route_frame(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        origin: Origin,
        from_peer: Option<(u32, u32)>,
        l3: usize,
        out: &mut Outputs,
    ) -> Step {
        let dst = match self.route_check(now, pool, buf, origin, from_peer, l3, out) {
            Ok(dst) => dst,
            Err(step) => return step,
        };
        let hop = self.routes.lookup(dst);
        match self.route_hop(now, pool, buf, origin, hop, l3, out) {
            Ok((id, dst)) => self.forward(now, pool, buf, id, dst, l3, out),
            Err(step) => step,
        }
    }

    /// The router before the lookup: RFC 1812 §5.2.2 checks, the peer's subnet for decapsulated packets, and
    /// packets for the node itself (answered or sent to the host: `Err` with their step). `Ok`: the destination
    /// to look up.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn route_check(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        origin: Origin,
        from_peer: Option<(u32, u32)>,
        l3: usize,
        out: &mut Outputs,
    ) -> Result<u32, Step> {
        Self::check_ipv4(buf, l3).map_err(Step::drop)?;
        let ip = ipv4::Packet::new_unchecked(&buf.data()[l3..]);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if let Some((net, mask)) = from_peer
            && u32::from(src) & mask != net
        {
            return Err(Step::drop(DropReason::SpoofedSource));
        }
        if dst == self.gw_ip || dst == self.node_ip {
            if origin == Origin::Host {
                return Err(Step::drop(DropReason::HostToSelf));
            }
            return Err(self.deliver_self(now, pool, buf, origin, l3, out));
        }
        Ok(u32::from(dst))
    }

    /// The router after the lookup (`hop`): no route (ICMP net unreachable), TTL (ICMP time exceeded), the MTU
    /// rule, then the TTL decrement. `Ok`: the next hop and the destination.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn route_hop(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        origin: Origin,
        hop: Option<NextHopId>,
        l3: usize,
        out: &mut Outputs,
    ) -> Result<(NextHopId, Ipv4Addr), Step> {
        let ip = ipv4::Packet::new_unchecked(&buf.data()[l3..]);
        let dst = ip.dst_addr();
        let Some(id) = hop else {
            let kind = ErrorKind::DstUnreachable(icmpv4::DstUnreachable::NetUnreachable);
            self.icmp_error(now, pool, buf, l3, kind, out);
            return Err(Step::drop(DropReason::NoRoute));
        };
        // The node forwards what pods, peers and IP ports send; its own packets and the host's leave as they are,
        // and any TTL is theirs to send (the next router checks it).
        let forwards = matches!(origin, Origin::Pod | Origin::Peer | Origin::Port);
        if forwards && ip.ttl() <= 1 {
            self.icmp_error(now, pool, buf, l3, ErrorKind::TTL_EXPIRED, out);
            return Err(Step::drop(DropReason::TtlExpired));
        }
        let to_peer = matches!(self.snap.hop(id), Some(Hop::Peer(_)));
        if origin == Origin::Peer && to_peer {
            return Err(Step::drop(DropReason::NotLocal));
        }
        if to_peer && ip.total_len() > self.inner_mtu {
            return self.too_big(now, pool, buf, origin, (id, dst), l3, out);
        }
        if forwards {
            let mut ipm = ipv4::Packet::new_unchecked(&mut buf.data_mut()[l3..]);
            // TTL > 1 was checked above.
            let _ = ipm.decrement_ttl();
        }
        Ok((id, dst))
    }

    /// The MTU rule, out of the hot path: with DF, ICMP "fragmentation needed" and a drop (no ICMP about the
    /// node's own packets: an echo reply as big as its request); without, RFC 1812 §5.2.6 / RFC 791 fragmentation
    /// after the TTL decrement (which every fragment carries): the fragments after the first are forwarded here,
    /// the first goes on as the packet.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn too_big(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        origin: Origin,
        (id, dst): (NextHopId, Ipv4Addr),
        l3: usize,
        out: &mut Outputs,
    ) -> Result<(NextHopId, Ipv4Addr), Step> {
        let forwards = matches!(origin, Origin::Pod | Origin::Peer | Origin::Port);
        if ipv4::Packet::new_unchecked(&buf.data()[l3..]).dont_frag() {
            if origin != Origin::Node {
                let mtu = self.inner_mtu;
                self.icmp_error(now, pool, buf, l3, ErrorKind::FragRequired { next_hop_mtu: mtu }, out);
            }
            return Err(Step::drop(DropReason::TooBig));
        }
        if forwards {
            // TTL > 1 was checked by the caller.
            let _ = ipv4::Packet::new_unchecked(&mut buf.data_mut()[l3..]).decrement_ttl();
        }
        self.fragment(now, pool, buf, id, dst, l3, out).map_err(Step::drop)?;
        Ok((id, dst))
    }

    /// Sends a routed packet on to its next hop.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn forward(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        id: NextHopId,
        dst: Ipv4Addr,
        l3: usize,
        out: &mut Outputs,
    ) -> Step {
        match self.snap.hop(id) {
            Some(Hop::Peer(peer)) => {
                let sport = match self.shared.encap.encap(peer, buf, l3) {
                    Ok(sport) => sport,
                    Err(reason) => return Step::drop(reason),
                };
                let len = peer.outer.len();
                let Ok(_) = buf.push_front(len) else { return Step::drop(DropReason::NoHeadroom) };
                self.ident = self.ident.wrapping_add(1);
                peer.outer.write(buf.data_mut(), self.ident, sport);
                self.counters.to_peer += 1;
                #[allow(clippy::cast_possible_truncation)] // 42 or 14
                Step::Done(Verdict::Underlay { dst: peer.underlay, payload_offset: len as u16 })
            }
            Some(Hop::Local) => self.deliver_pod(now, pool, buf, dst, l3, out),
            Some(&Hop::Port(port)) => self.out_of_ip_port(buf, port, l3),
            Some(Hop::Empty) | None => Step::drop(DropReason::StaleNextHop),
        }
    }

    /// Out of an IP port: the IP packet alone.
    pub(super) fn out_of_ip_port(&mut self, buf: &mut PacketBuf, port: PortId, l3: usize) -> Step {
        if buf.pull_front(l3).is_err() {
            return Step::drop(DropReason::Ipv4Malformed);
        }
        if Some(port) == self.host_port {
            self.counters.to_tun += 1;
        } else {
            self.counters.to_port += 1;
        }
        Step::Done(Verdict::Port(port))
    }
}
