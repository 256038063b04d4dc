//! Frames and datagrams from the underlay: checked against the peers, the backend's encapsulation pulled off.

use super::*;

impl Node {
    /// A frame (or, from a UDP socket, a datagram's payload) from the underlay: only from a known peer, with the
    /// backend's encapsulation, which is pulled off.
    pub(super) fn rx_underlay(&mut self, buf: &mut PacketBuf, datagram: bool) -> Step {
        let checked = if datagram { self.check_datagram(buf) } else { self.check_underlay(buf) };
        let id = match checked {
            Ok(id) => id,
            Err(r) => return Step::Done(Some(Verdict::Drop(r))),
        };
        let Some(Hop::Peer(peer)) = self.hops.get(id.0 as usize) else {
            return Step::Done(Some(Verdict::Drop(DropReason::UnknownPeer)));
        };
        let subnet = (peer.net, peer.mask);
        self.counters.from_peer += 1;
        Step::Route { origin: Origin::Peer, from_peer: Some(subnet) }
    }

    /// Checks the outer headers and pulls them off; leaves an Ethernet frame with the inner IPv4 packet.
    pub(super) fn check_underlay(&self, buf: &mut PacketBuf) -> Result<NextHopId, DropReason> {
        let data = buf.data();
        if data.len() < ETH || data[0..6] != *self.node_mac.as_bytes() {
            return Err(DropReason::UnderlayNotForUs);
        }
        if data[12..14] != [0x08, 0x00] {
            return Err(DropReason::UnderlayNotForUs);
        }
        if let Backend::HostGw = self.backend {
            let src_mac = MacAddr::from_bytes(&data[6..12]).unwrap_or(MacAddr::ZERO);
            return self.peers_by_mac.get(&src_mac.to_u64()).copied().ok_or(DropReason::UnknownPeer);
        }
        let ip = ipv4::Packet::new_checked(&data[ETH..]).map_err(|_| DropReason::UnderlayMalformed)?;
        if !ip.verify_checksum() {
            return Err(DropReason::UnderlayMalformed);
        }
        if ip.dst_addr() != self.node_ip {
            return Err(DropReason::UnderlayNotForUs);
        }
        if ip.is_fragment() {
            return Err(DropReason::UnderlayFragment);
        }
        if ip.protocol() != ipv4::Protocol::UDP {
            return Err(DropReason::UnderlayWrongPort);
        }
        let hl = ip.header_len();
        let udp = udp::Packet::new_checked(ip.payload()).map_err(|_| DropReason::UnderlayMalformed)?;
        let port = match self.backend {
            Backend::Vxlan { port, .. } | Backend::Udp { port } => port,
            Backend::HostGw => 0,
        };
        if udp.dst_port() != port {
            return Err(DropReason::UnderlayWrongPort);
        }
        let src = ip.src_addr();
        let id = self.peers_by_ip.get(&u32::from(src)).copied().ok_or(DropReason::UnknownPeer)?;
        if udp.checksum() != 0 && !udp.verify_checksum(src, ip.dst_addr()) {
            return Err(DropReason::UnderlayChecksum);
        }
        let end = ETH + hl + usize::from(udp.len());
        self.check_payload(id, buf, ETH + hl + udp::HEADER_LEN, end)?;
        Ok(id)
    }

    /// Checks the payload of a datagram a UDP socket on the backend's port received from `meta.remote`, and
    /// pulls the VXLAN header off (vxlan) or puts an Ethernet header in front of the IP packet (udp).
    pub(super) fn check_datagram(&self, buf: &mut PacketBuf) -> Result<NextHopId, DropReason> {
        if let Backend::HostGw = self.backend {
            return Err(DropReason::UnderlayWrongPort);
        }
        let core::net::IpAddr::V4(src) = buf.meta().remote.ip() else { return Err(DropReason::UnknownPeer) };
        let id = self.peers_by_ip.get(&u32::from(src)).copied().ok_or(DropReason::UnknownPeer)?;
        let end = buf.len();
        self.check_payload(id, buf, 0, end)?;
        Ok(id)
    }

    /// Checks the UDP payload at `start..end` of the buffer, from peer `id`, and leaves the inner packet behind an
    /// Ethernet header.
    pub(super) fn check_payload(
        &self,
        id: NextHopId,
        buf: &mut PacketBuf,
        start: usize,
        end: usize,
    ) -> Result<(), DropReason> {
        let pull = match self.backend {
            Backend::Vxlan { vni, vtep_mac, .. } => {
                let vx = vxlan::Packet::new_checked(&buf.data()[start..end]).map_err(|_| DropReason::VxlanMalformed)?;
                if vx.flags() != vxlan::FLAG_VNI {
                    return Err(DropReason::VxlanMalformed);
                }
                if vx.vni().get() != vni {
                    return Err(DropReason::WrongVni);
                }
                let inner = vx.payload();
                let Some(Hop::Peer(peer)) = self.hops.get(id.0 as usize) else {
                    return Err(DropReason::UnknownPeer);
                };
                if inner.len() < ETH || inner[0..6] != *vtep_mac.as_bytes() || inner[6..12] != *peer.dst_mac.as_bytes()
                {
                    return Err(DropReason::InnerMismatch);
                }
                start + vxlan::HEADER_LEN
            }
            Backend::Udp { .. } | Backend::HostGw => start,
        };
        buf.truncate(end);
        buf.pull_front(pull).map_err(|_| DropReason::UnderlayMalformed)?;
        if let Backend::Udp { .. } = self.backend {
            let eth = buf.push_front(ETH).map_err(|_| DropReason::NoHeadroom)?;
            eth[0..6].copy_from_slice(self.gw_mac.as_bytes());
            eth[6..12].copy_from_slice(self.gw_mac.as_bytes());
            eth[12..14].copy_from_slice(&[0x08, 0x00]);
        }
        Ok(())
    }
}
