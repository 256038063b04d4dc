//! The outer headers of a [`Transport`](super::Transport) towards one peer, precomputed (VPP style): on
//! encapsulation the template is copied in front of the packet and only the lengths, the IPv4 identification and
//! checksum, and the UDP source port are patched. Also the flow hash and port mapping that give a tunnel's UDP
//! source port its entropy (RFC 7348 §5).

use core::net::Ipv4Addr;

use tweed_wire::checksum;
use tweed_wire::ethernet::MacAddr;

use super::{ETH_LEN, Transport};

/// Ethernet + IPv4 + UDP.
pub(crate) const UDP_OUTER_LEN: usize = ETH_LEN + 20 + 8;

/// Offsets in the template.
mod off {
    pub(super) const IP: usize = super::ETH_LEN;
    pub(super) const IP_LEN: usize = IP + 2;
    pub(super) const IP_ID: usize = IP + 4;
    pub(super) const IP_CSUM: usize = IP + 10;
    pub(super) const UDP: usize = IP + 20;
    pub(super) const UDP_SRC: usize = UDP;
    pub(super) const UDP_LEN: usize = UDP + 4;
    pub(super) const UDP_CSUM: usize = UDP + 6;
}

/// The outer headers towards one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Outer {
    bytes: [u8; UDP_OUTER_LEN],
    /// 42 (Ethernet, IPv4, UDP) or 14 (Ethernet).
    len: usize,
    /// Folded sum of the IPv4 header with total length, identification and checksum zero.
    ip_base: u16,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    checksum: bool,
}

/// What the outer headers are for.
pub(crate) struct OuterSpec {
    pub(crate) src_mac: MacAddr,
    pub(crate) dst_mac: MacAddr,
    pub(crate) src_ip: Ipv4Addr,
    pub(crate) dst_ip: Ipv4Addr,
}

impl Outer {
    pub(crate) fn new(transport: Transport, spec: &OuterSpec) -> Self {
        let mut b = [0u8; UDP_OUTER_LEN];
        b[0..6].copy_from_slice(spec.dst_mac.as_bytes());
        b[6..12].copy_from_slice(spec.src_mac.as_bytes());
        b[12..14].copy_from_slice(&[0x08, 0x00]);
        let (len, checksum) = match transport {
            Transport::Udp { port, checksum } => {
                // IPv4: version 4, IHL 5, DSCP 0, length later, id later, no flags (the kernel's `df unset`),
                // TTL 64, UDP.
                b[off::IP] = 0x45;
                b[off::IP + 8] = 64;
                b[off::IP + 9] = 17;
                b[off::IP + 12..off::IP + 16].copy_from_slice(&spec.src_ip.octets());
                b[off::IP + 16..off::IP + 20].copy_from_slice(&spec.dst_ip.octets());
                b[off::UDP..off::UDP + 2].copy_from_slice(&port.to_be_bytes());
                b[off::UDP + 2..off::UDP + 4].copy_from_slice(&port.to_be_bytes());
                (UDP_OUTER_LEN, checksum)
            }
            Transport::Ethernet => (ETH_LEN, false),
        };
        let ip_base = checksum::sum(&b[off::IP..off::IP + 20]);
        Self { bytes: b, len, ip_base, src: spec.src_ip, dst: spec.dst_ip, checksum }
    }

    /// The headers' length: 42 (UDP) or 14 (Ethernet).
    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    /// Writes the outer headers into `frame` (exactly [`Outer::len`] bytes, followed by the payload, which the
    /// UDP checksum covers when it is on), with this identification and, if given, source port.
    #[inline]
    pub(crate) fn write(&self, frame: &mut [u8], ident: u16, src_port: Option<u16>) {
        let hdr_len = self.len;
        let Some(hdr) = frame.get_mut(..hdr_len) else { return };
        hdr.copy_from_slice(&self.bytes[..hdr_len]);
        if hdr_len == ETH_LEN {
            return;
        }
        let payload_len = frame.len() - hdr_len;
        // Callers check the MTU first: these fit in 16 bits.
        #[allow(clippy::cast_possible_truncation)]
        let (ip_total, udp_len) = ((hdr_len - off::IP + payload_len) as u16, (hdr_len - off::UDP + payload_len) as u16);
        frame[off::IP_LEN..off::IP_LEN + 2].copy_from_slice(&ip_total.to_be_bytes());
        frame[off::IP_ID..off::IP_ID + 2].copy_from_slice(&ident.to_be_bytes());
        let c = !checksum::add(checksum::add(self.ip_base, ip_total), ident);
        frame[off::IP_CSUM..off::IP_CSUM + 2].copy_from_slice(&c.to_be_bytes());
        if let Some(port) = src_port {
            frame[off::UDP_SRC..off::UDP_SRC + 2].copy_from_slice(&port.to_be_bytes());
        }
        frame[off::UDP_LEN..off::UDP_LEN + 2].copy_from_slice(&udp_len.to_be_bytes());
        if self.checksum {
            let pseudo = checksum::pseudo_header_ipv4(self.src.octets(), self.dst.octets(), 17, udp_len);
            let c = !checksum::sum_with(pseudo, &frame[off::UDP..]);
            let c = if c == 0 { 0xffff } else { c };
            frame[off::UDP_CSUM..off::UDP_CSUM + 2].copy_from_slice(&c.to_be_bytes());
        }
    }
}

/// A hash of an IPv4 packet's flow: addresses, protocol, and the ports of TCP, UDP and SCTP when the packet is
/// not a fragment (as the kernel's flow dissector: every fragment of a packet then takes the same path).
/// `ip` must hold at least a checked header.
///
/// ```
/// use tweed_overlay::encap::{flow_hash, port_in_range};
/// use tweed_overlay::config::KERNEL_PORT_RANGE;
///
/// // UDP from 10.244.1.2:40000 to 10.244.2.3:53 (the IPv4 checksum does not enter the hash).
/// let packet = [
///     0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 244, 1, 2, 10, 244, 2, 3, // IPv4
///     0x9c, 0x40, 0, 53, 0, 8, 0, 0, // UDP
/// ];
/// let sport = port_in_range(flow_hash(&packet), KERNEL_PORT_RANGE);
/// assert!((32768..=60999).contains(&sport));
/// let mut same_flow = packet;
/// same_flow[8] = 63; // another TTL: the same flow, the same VXLAN source port
/// assert_eq!(flow_hash(&same_flow), flow_hash(&packet));
/// let mut other_flow = packet;
/// other_flow[21] = 0x41; // another UDP source port
/// assert_ne!(flow_hash(&other_flow), flow_hash(&packet));
/// ```
#[inline]
pub fn flow_hash(ip: &[u8]) -> u32 {
    let Some(hdr) = ip.get(..20) else { return 0 };
    let ihl = usize::from(hdr[0] & 0x0f) * 4;
    let proto = hdr[9];
    let fragment = u16::from_be_bytes([hdr[6], hdr[7]]) & 0x3fff != 0;
    let ports = if !fragment && matches!(proto, 6 | 17 | 132) {
        ip.get(ihl..ihl + 4).map_or(0, |p| u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
    } else {
        0
    };
    let src = u32::from_be_bytes([hdr[12], hdr[13], hdr[14], hdr[15]]);
    let dst = u32::from_be_bytes([hdr[16], hdr[17], hdr[18], hdr[19]]);
    let mut h = (u64::from(src) << 32 | u64::from(dst)) ^ (u64::from(ports) << 8 | u64::from(proto)).rotate_left(29);
    // murmur3's 64-bit finaliser: every input bit moves every output bit.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h as u32
}

/// Maps a hash into `lo..=hi` as the kernel maps its flow hash into the port range (multiply, keep the high half).
///
/// ```
/// use tweed_overlay::encap::port_in_range;
/// use tweed_overlay::config::RFC7348_PORT_RANGE;
///
/// assert_eq!(port_in_range(0, RFC7348_PORT_RANGE), 49152);
/// assert_eq!(port_in_range(u32::MAX / 2, RFC7348_PORT_RANGE), 57343);
/// assert_eq!(port_in_range(u32::MAX, RFC7348_PORT_RANGE), 65535);
/// assert_eq!(port_in_range(12345, (4789, 4789)), 4789);
/// ```
#[inline]
pub const fn port_in_range(hash: u32, (lo, hi): (u16, u16)) -> u16 {
    let span = (hi as u64) - (lo as u64) + 1;
    lo + ((hash as u64 * span) >> 32) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_port_in_range_bounds() {
        assert_eq!(port_in_range(0, (32768, 60999)), 32768);
        assert_eq!(port_in_range(u32::MAX, (32768, 60999)), 60999);
        assert_eq!(port_in_range(u32::MAX, (0, 65535)), 65535);
        assert_eq!(port_in_range(12345, (4789, 4789)), 4789);
    }

    #[test]
    fn test_flow_hash_uses_ports_not_payload() {
        let mut a = [0u8; 40];
        a[..20].copy_from_slice(&[0x45, 0, 0, 40, 0, 0, 0, 0, 64, 17, 0, 0, 10, 244, 1, 2, 10, 244, 2, 2]);
        a[20..24].copy_from_slice(&[0x30, 0x39, 0x00, 0x35]);
        let mut b = a;
        b[30] = 0xff; // payload
        b[4] = 0x12; // ident
        assert_eq!(flow_hash(&a), flow_hash(&b));
        let mut c = a;
        c[21] = 0x3a; // source port
        assert_ne!(flow_hash(&a), flow_hash(&c));
    }

    #[test]
    fn test_outer_checksums() {
        let t = Outer::new(
            Transport::Udp { port: 8472, checksum: true },
            &OuterSpec {
                src_mac: MacAddr::new(2, 0, 0, 0, 0, 1),
                dst_mac: MacAddr::new(2, 0, 0, 0, 0, 2),
                src_ip: Ipv4Addr::new(192, 0, 2, 1),
                dst_ip: Ipv4Addr::new(192, 0, 2, 2),
            },
        );
        let mut frame = [0xabu8; UDP_OUTER_LEN + 8 + 98];
        t.write(&mut frame, 0x5626, Some(49028));
        let ip = tweed_wire::ipv4::Packet::new_checked(&frame[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(usize::from(ip.total_len()), frame.len() - 14);
        let udp = tweed_wire::udp::Packet::new_checked(&frame[34..]).unwrap();
        assert!(udp.verify_checksum(ip.src_addr(), ip.dst_addr()));
        assert_eq!((udp.src_port(), udp.dst_port(), udp.len()), (49028, 8472, 8 + 8 + 98));
        let eth = Outer::new(
            Transport::Ethernet,
            &OuterSpec {
                src_mac: MacAddr::new(2, 0, 0, 0, 0, 1),
                dst_mac: MacAddr::new(2, 0, 0, 0, 0, 2),
                src_ip: Ipv4Addr::UNSPECIFIED,
                dst_ip: Ipv4Addr::UNSPECIFIED,
            },
        );
        let mut frame = [0xabu8; 40];
        eth.write(&mut frame, 1, None);
        assert_eq!(&frame[..14], &[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
        assert_eq!(frame[14], 0xab);
    }
}
