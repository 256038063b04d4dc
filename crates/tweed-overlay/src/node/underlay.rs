//! What the underlay delivers: the transport's outer headers checked (on whole frames) and pulled off, then the
//! encapsulation's [`decap`](Encapsulation::decap), which identifies the peer.

use core::net::{IpAddr, SocketAddr};

use super::*;

/// No sender: frames of [`Transport::Ethernet`].
const NOBODY: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

impl<E: Encapsulation> Node<E> {
    /// A frame (or, from a UDP socket, a datagram's payload) from the underlay: only from a known peer, with the
    /// encapsulation, which is pulled off.
    pub(super) fn rx_underlay(&mut self, buf: &mut PacketBuf, datagram: bool) -> Step {
        let from = if datagram { self.check_datagram(buf) } else { self.check_frame(buf) };
        let from = match from {
            Ok(from) => from,
            Err(r) => return Step::drop(r),
        };
        let decap = match self.shared.encap.decap(buf, from, &self.snap) {
            Ok(d) => d,
            Err(r) => return Step::drop(r),
        };
        let Some(peer) = self.snap.get(decap.peer) else { return Step::drop(DropReason::UnknownPeer) };
        let subnet = (peer.net, peer.mask);
        self.counters.from_peer += 1;
        // The inner packet starts at the buffer (an IP packet) or behind an Ethernet header: nothing else.
        let l3 = match decap.l3 {
            0 => 0,
            ETH => ETH as u8,
            _ => return Step::drop(DropReason::UnderlayMalformed),
        };
        Step::Route { origin: Origin::Peer, from_peer: Some(subnet), l3 }
    }

    /// Checks a whole frame's outer headers: to our node MAC, IPv4; for UDP, to our address, unfragmented, to the
    /// transport's port, with a good checksum; and pulls them off (UDP). Returns the sender.
    fn check_frame(&self, buf: &mut PacketBuf) -> Result<SocketAddr, DropReason> {
        let data = buf.data();
        // The destination and EtherType in one bounds check (the frame path's first test: most frames pass).
        let Some(head) = data.get(..ETH) else { return Err(DropReason::UnderlayNotForUs) };
        let eth = ethernet::Frame::new_unchecked(head);
        if eth.dst_addr() != self.node_mac || eth.outer_ethertype() != EtherType::IPV4 {
            return Err(DropReason::UnderlayNotForUs);
        }
        let Transport::Udp { port, .. } = self.transport else { return Ok(NOBODY) };
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
        if udp.dst_port() != port {
            return Err(DropReason::UnderlayWrongPort);
        }
        let src = ip.src_addr();
        if udp.checksum() != 0 && !udp.verify_checksum(src, ip.dst_addr()) {
            return Err(DropReason::UnderlayChecksum);
        }
        let from = SocketAddr::new(IpAddr::V4(src), udp.src_port());
        let end = ETH + hl + usize::from(udp.len());
        buf.truncate(end);
        buf.pull_front(ETH + hl + udp::HEADER_LEN).map_err(|_| DropReason::UnderlayMalformed)?;
        Ok(from)
    }

    /// A datagram's payload from a UDP socket on the transport's port: the sender is in `meta.remote()`.
    fn check_datagram(&self, buf: &PacketBuf) -> Result<SocketAddr, DropReason> {
        match self.transport {
            Transport::Ethernet => Err(DropReason::UnderlayWrongPort),
            _ => Ok(buf.meta().remote()),
        }
    }
}
