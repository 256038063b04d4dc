//! The router: RFC 1812 checks, the lookup's outcome (no route, TTL, MTU) and the next hop (a local pod or a
//! peer through the backend).

use super::*;

impl Node {
    /// RFC 1812 §5.2.2 checks on the IPv4 packet at `ETH` of `buf`, trimming link padding.
    pub(super) fn check_ipv4(buf: &mut PacketBuf) -> Result<(), DropReason> {
        let data = buf.data();
        if data.get(12..14) != Some(&[0x08, 0x00][..]) {
            return Err(DropReason::UnsupportedEthertype);
        }
        let ip_bytes = &data[ETH..];
        let ip = ipv4::Packet::new_unchecked(ip_bytes);
        if let Err(e) = ip.check_len() {
            return Err(match e {
                tweed_wire::Error::Invalid { field: "version", .. } => DropReason::Ipv4Version,
                _ => DropReason::Ipv4Malformed,
            });
        }
        if !ip.verify_checksum() {
            return Err(DropReason::Ipv4Checksum);
        }
        let src = u32::from(ip.src_addr());
        let dst = u32::from(ip.dst_addr());
        if martian(src) {
            return Err(DropReason::MartianSource);
        }
        if martian(dst) {
            return Err(DropReason::MartianDestination);
        }
        let total = usize::from(ip.total_len());
        buf.truncate(ETH + total);
        Ok(())
    }

    /// An IP packet from the host's TUN: given an Ethernet header (from the gateway to the gateway, as if the
    /// bridge had handed it to the router) and bound for the router.
    pub(super) fn rx_host(&mut self, buf: &mut PacketBuf) -> Step {
        let Ok(eth) = buf.push_front(ETH) else { return Step::Done(Some(Verdict::Drop(DropReason::NoHeadroom))) };
        set_macs(eth, self.gw_mac, self.gw_mac);
        eth[12..14].copy_from_slice(&EtherType::IPV4.0.to_be_bytes());
        Step::Route { origin: Origin::Host, from_peer: None }
    }

    /// Routes the IPv4 packet of an Ethernet frame that reached the router, alone: for packets the node
    /// originates (ICMP errors); the batch goes through [`Node::stage_route`].
    pub(super) fn route_frame(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        origin: Origin,
        from_peer: Option<(u32, u32)>,
        out: &mut Outputs,
    ) -> Option<Verdict> {
        let dst = match self.route_check(now, pool, buf, origin, from_peer, out) {
            Ok(dst) => dst,
            Err(verdict) => return verdict,
        };
        let hop = self.routes.lookup(dst);
        match self.route_hop(now, pool, buf, origin, hop, out) {
            Ok((id, dst)) => self.forward(now, pool, buf, id, dst, out),
            Err(verdict) => verdict,
        }
    }

    /// The router before the lookup: RFC 1812 §5.2.2 checks, the peer's subnet for decapsulated packets, and
    /// packets for the node itself (answered or sent to the host: `Err` with their verdict). `Ok`: the
    /// destination to look up.
    pub(super) fn route_check(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        origin: Origin,
        from_peer: Option<(u32, u32)>,
        out: &mut Outputs,
    ) -> Result<u32, Option<Verdict>> {
        Self::check_ipv4(buf).map_err(|r| Some(Verdict::Drop(r)))?;
        let ip = ipv4::Packet::new_unchecked(&buf.data()[ETH..]);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if let Some((net, mask)) = from_peer
            && u32::from(src) & mask != net
        {
            return Err(Some(Verdict::Drop(DropReason::SpoofedSource)));
        }
        if dst == self.gw_ip || dst == self.node_ip {
            if origin == Origin::Host {
                return Err(Some(Verdict::Drop(DropReason::HostToSelf)));
            }
            return Err(self.deliver_self(now, pool, buf, origin, out));
        }
        Ok(u32::from(dst))
    }

    /// The router after the lookup (`hop`): no route (ICMP net unreachable), TTL (ICMP time exceeded), the MTU
    /// rule, then the TTL decrement. `Ok`: the next hop and the destination.
    pub(super) fn route_hop(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        origin: Origin,
        hop: Option<NextHopId>,
        out: &mut Outputs,
    ) -> Result<(NextHopId, Ipv4Addr), Option<Verdict>> {
        let ip = ipv4::Packet::new_unchecked(&buf.data()[ETH..]);
        let dst = ip.dst_addr();
        let Some(id) = hop else {
            self.icmp_error(now, pool, buf, ErrorKind::DstUnreachable(icmpv4::DstUnreachable::NetUnreachable), out);
            return Err(Some(Verdict::Drop(DropReason::NoRoute)));
        };
        // The node forwards what pods and peers send; its own packets and the host's leave as they are, and any
        // TTL is theirs to send (the next router checks it).
        let forwards = matches!(origin, Origin::Pod | Origin::Peer);
        if forwards && ip.ttl() <= 1 {
            self.icmp_error(now, pool, buf, ErrorKind::TTL_EXPIRED, out);
            return Err(Some(Verdict::Drop(DropReason::TtlExpired)));
        }
        let is_local = matches!(self.hops.get(id.0 as usize), Some(Hop::Local));
        if origin == Origin::Peer && !is_local {
            return Err(Some(Verdict::Drop(DropReason::NotLocal)));
        }
        if !is_local && ip.total_len() > self.inner_mtu {
            return self.too_big(now, pool, buf, origin, (id, dst), out);
        }
        if forwards {
            let mut ipm = ipv4::Packet::new_unchecked(&mut buf.data_mut()[ETH..]);
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
    fn too_big(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        origin: Origin,
        (id, dst): (NextHopId, Ipv4Addr),
        out: &mut Outputs,
    ) -> Result<(NextHopId, Ipv4Addr), Option<Verdict>> {
        let forwards = matches!(origin, Origin::Pod | Origin::Peer);
        if ipv4::Packet::new_unchecked(&buf.data()[ETH..]).dont_frag() {
            if origin != Origin::Node {
                let mtu = self.inner_mtu;
                self.icmp_error(now, pool, buf, ErrorKind::FragRequired { next_hop_mtu: mtu }, out);
            }
            return Err(Some(Verdict::Drop(DropReason::TooBig)));
        }
        if forwards {
            // TTL > 1 was checked by the caller.
            let _ = ipv4::Packet::new_unchecked(&mut buf.data_mut()[ETH..]).decrement_ttl();
        }
        self.fragment(now, pool, buf, id, dst, out).map_err(|r| Some(Verdict::Drop(r)))?;
        Ok((id, dst))
    }

    /// Sends a routed packet on to its next hop.
    pub(super) fn forward(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        id: NextHopId,
        dst: Ipv4Addr,
        out: &mut Outputs,
    ) -> Option<Verdict> {
        match self.hops.get(id.0 as usize) {
            Some(Hop::Local) => self.deliver_pod(now, pool, buf, dst, out),
            Some(Hop::Peer(peer)) => {
                let verdict = match self.backend {
                    Backend::Vxlan { vtep_mac, port, udp_checksum, source_ports, .. } => {
                        set_macs(buf.data_mut(), peer.dst_mac, vtep_mac);
                        let sport = encap::port_in_range(encap::flow_hash(&buf.data()[ETH..]), source_ports);
                        encap_with(buf, peer, &mut self.ident, Some(sport), udp_checksum, VXLAN_OUTER_LEN, port)
                    }
                    Backend::Udp { port } => {
                        if buf.pull_front(ETH).is_err() {
                            Verdict::Drop(DropReason::Ipv4Malformed)
                        } else {
                            encap_with(buf, peer, &mut self.ident, None, false, UDP_OUTER_LEN, port)
                        }
                    }
                    Backend::HostGw => {
                        set_macs(buf.data_mut(), peer.dst_mac, self.node_mac);
                        Verdict::Underlay { dst: peer.config.node_ip, port: 0, payload_offset: ETH as u16 }
                    }
                };
                if matches!(verdict, Verdict::Underlay { .. }) {
                    self.counters.to_peer += 1;
                }
                Some(verdict)
            }
            Some(Hop::Empty) | None => Some(Verdict::Drop(DropReason::StaleNextHop)),
        }
    }
}

#[inline]
fn encap_with(
    buf: &mut PacketBuf,
    peer: &Peer,
    ident: &mut u16,
    sport: Option<u16>,
    udp_checksum: bool,
    len: usize,
    port: u16,
) -> Verdict {
    let Some(template) = &peer.template else { return Verdict::Drop(DropReason::StaleNextHop) };
    debug_assert_eq!(template.len(), len);
    if buf.push_front(len).is_err() {
        return Verdict::Drop(DropReason::NoHeadroom);
    }
    *ident = ident.wrapping_add(1);
    template.write(buf.data_mut(), *ident, sport, udp_checksum);
    Verdict::Underlay { dst: peer.config.node_ip, port, payload_offset: UDP_OUTER_LEN as u16 }
}
