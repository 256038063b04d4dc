//! One line of text for one frame, through every layer the dissector found.

use core::fmt::Write as _;

use tweed_wire::dissect::{Stop, dissect};

/// Each layer found, outer to inner, separated by ` | `, then why the walk stopped if it did not reach the inner
/// transport. Any byte string is accepted: a frame that is not an overlay frame says where it stopped.
pub(crate) fn describe(frame: &[u8]) -> String {
    let d = dissect(frame);
    let mut line = String::new();
    // Writing to a `String` cannot fail; the `fmt::Result`s are dropped on purpose.
    if let Some(eth) = d.outer_ethernet() {
        let _ = write!(line, "{} > {}", eth.src_addr(), eth.dst_addr());
    }
    if let Some(ip) = d.outer_ipv4() {
        let _ = write!(line, " | {} > {} ttl {}", ip.src_addr(), ip.dst_addr(), ip.ttl());
    }
    if let Some(udp) = d.outer_udp() {
        let _ = write!(line, " | udp {} > {}", udp.src_port(), udp.dst_port());
    }
    if let Some(vx) = d.vxlan() {
        let _ = write!(line, " | vxlan vni {}", vx.vni());
    }
    if let Some(eth) = d.inner_ethernet() {
        let _ = write!(line, " | {} > {}", eth.src_addr(), eth.dst_addr());
    }
    if let Some(ip) = d.inner_ipv4() {
        let _ = write!(line, " | {} > {} ttl {} {}", ip.src_addr(), ip.dst_addr(), ip.ttl(), ip.protocol());
    }
    if let Some(icmp) = d.inner_icmp() {
        let _ = write!(line, " | icmp type {} code {}", icmp.msg_type().0, icmp.msg_code());
    }
    if let Some(udp) = d.inner_udp() {
        let _ = write!(line, " | udp {} > {}", udp.src_port(), udp.dst_port());
    }
    match d.stop() {
        Stop::Complete => {}
        Stop::Absent(stage) => {
            let _ = write!(line, " | (no {stage})");
        }
        Stop::Invalid(stage, error) => {
            let _ = write!(line, " | {stage} invalid: {error}");
        }
    }
    // A frame too short for Ethernet has no first layer to follow.
    match line.strip_prefix(" | ") {
        Some(rest) => rest.to_owned(),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frame 1 of `tests/data/kernel-flannel-vxlan.pcap`: an ICMP echo request between two pods, VNI 1.
    static FRAME_1: [u8; 148] = [
        0x62, 0xf5, 0xf9, 0xf2, 0x75, 0x3e, 0xe2, 0xc6, 0xcd, 0xac, 0x0e, 0xfd, 0x08, 0x00, 0x45, 0x00, 0x00, 0x86,
        0x56, 0x26, 0x00, 0x00, 0x40, 0x11, 0xa0, 0x3d, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02, 0xbf, 0x84,
        0x21, 0x18, 0x00, 0x72, 0x85, 0x66, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00,
        0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45, 0x00, 0x00, 0x54, 0xe5, 0xb2, 0x40, 0x00,
        0x3f, 0x01, 0x3d, 0x0b, 0x0a, 0xf4, 0x01, 0x02, 0x0a, 0xf4, 0x02, 0x02, 0x08, 0x00, 0x61, 0xbf, 0x40, 0x62,
        0x00, 0x01, 0x02, 0xf2, 0x02, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x8f, 0xad, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21,
        0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33,
        0x34, 0x35, 0x36, 0x37,
    ];

    #[test]
    fn overlay_frame_every_layer() {
        assert_eq!(
            describe(&FRAME_1),
            "e2:c6:cd:ac:0e:fd > 62:f5:f9:f2:75:3e | 192.0.2.1 > 192.0.2.2 ttl 64 | udp 49028 > 8472 | vxlan vni 1 \
             | 02:00:00:00:00:01 > 02:00:00:00:00:02 | 10.244.1.2 > 10.244.2.2 ttl 63 ICMP | icmp type 8 code 0"
        );
    }

    #[test]
    fn truncated_and_empty_frames_say_where_they_stopped() {
        for len in 0..FRAME_1.len() {
            let line = describe(&FRAME_1[..len]);
            assert!(line.contains(" invalid: "), "len {len}: {line}");
        }
        assert_eq!(
            describe(&FRAME_1[..60]),
            "e2:c6:cd:ac:0e:fd > 62:f5:f9:f2:75:3e | outer ipv4 invalid: ipv4: truncated: need 134 bytes, have 46"
        );
        assert_eq!(describe(&[]), "outer ethernet invalid: ethernet: truncated: need 14 bytes, have 0");
    }
}
