//! Two dissectors: [`decode`], every header of any frame for people and tools, and [`dissect`], the data path's
//! one-pass walk over a VXLAN overlay frame.
//!
//! # `decode`: every layer, every field, every problem
//! [`decode`] reads an Ethernet frame as Wireshark and tcpdump do: Ethernet and 802.1Q/802.1ad tags, ARP, IPv4
//! (options named), ICMP (with the header an error quotes), UDP, TCP, VXLAN and the frame inside it, and flannel's
//! udp backend with the IPv4 packet inside it, on the UDP ports a [`Decoders`] maps (`4789=vxlan` and friends).
//! Every checksum a layer has is verified ([`Check`]); a length that says more or less than there is, a header cut
//! short and a bad checksum are each a [`Problem`] naming the layer and the field. The result ([`Decoded`]) is
//! fixed-size and holds no allocation; its `Display` is one line, [`Decoded::json`] one JSON object.
//!
//! ```
//! use tweed_wire::dissect::{decode, Decoders, Layer};
//!
//! // An ARP request from 10.0.0.1 for 10.0.0.2, broadcast.
//! let mut frame = [0u8; 42];
//! frame[..6].copy_from_slice(&[0xff; 6]);
//! frame[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
//! frame[12..14].copy_from_slice(&[0x08, 0x06]);
//! frame[14..22].copy_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
//! frame[22..28].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
//! frame[28..32].copy_from_slice(&[10, 0, 0, 1]);
//! frame[38..42].copy_from_slice(&[10, 0, 0, 2]);
//! let d = decode(&frame, &Decoders::DEFAULT);
//! assert!(matches!(d.layers()[1], Layer::Arp(_)));
//! assert_eq!(d.to_string(), "02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff ARP | arp who-has 10.0.0.2 tell 10.0.0.1");
//! assert!(!d.is_malformed());
//! ```
//!
//! # `dissect`: the overlay fast path
//! Outer Ethernet / IPv4 / UDP / VXLAN / inner Ethernet / inner IPv4 / inner UDP or ICMP, nothing else.
//!
//! [`dissect`] walks the frame once, checks each layer's lengths (the `check_len` promise of each view) and
//! records where each layer starts and ends, without allocating. It stops at the first layer that is not there (an
//! EtherType other than IPv4, a UDP port that is not a VXLAN port, a TCP inner packet, a fragment) or not valid (a
//! truncated header, a lying length field, a VXLAN header without the I flag), and says which in [`Stop`]. The
//! views it hands out afterwards are built over exactly the bytes their layer owns: an IPv4 packet's UDP view ends
//! where the IPv4 total length ends, not at the Ethernet padding.
//!
//! Checksums are not verified unless [`Config::verify_checksums`] asks for it: the dissector reads structure,
//! and verifying a 1500-byte UDP checksum would cost more than the whole walk.
//!
//! The same walk parses a plain pod frame: an Ethernet/IPv4/UDP frame to a port that is not VXLAN stops with
//! [`Stop::Absent`]`(`[`Stage::Vxlan`]`)` and its outer layers are all there.
//!
//! ```
//! use tweed_wire::dissect::{dissect, Stage, Stop};
//!
//! // Frame 1 of the kernel flannel capture in tests/data: an ICMP echo between two pods, VNI 1, port 8472.
//! # let frame: &[u8] = &[
//! #     0x62, 0xf5, 0xf9, 0xf2, 0x75, 0x3e, 0xe2, 0xc6, 0xcd, 0xac, 0x0e, 0xfd, 0x08, 0x00, 0x45, 0x00,
//! #     0x00, 0x86, 0x56, 0x26, 0x00, 0x00, 0x40, 0x11, 0xa0, 0x3d, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00,
//! #     0x02, 0x02, 0xbf, 0x84, 0x21, 0x18, 0x00, 0x72, 0x85, 0x66, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
//! #     0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,
//! #     0x45, 0x00, 0x00, 0x54, 0xe5, 0xb2, 0x40, 0x00, 0x3f, 0x01, 0x3d, 0x0b, 0x0a, 0xf4, 0x01, 0x02,
//! #     0x0a, 0xf4, 0x02, 0x02, 0x08, 0x00, 0x61, 0xbf, 0x40, 0x62, 0x00, 0x01, 0x02, 0xf2, 0x02, 0x6b,
//! #     0x00, 0x00, 0x00, 0x00, 0x8f, 0xad, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13,
//! #     0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23,
//! #     0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33,
//! #     0x34, 0x35, 0x36, 0x37,
//! # ];
//! let d = dissect(frame);
//! assert_eq!(d.stop(), Stop::Complete);
//! assert_eq!(d.vxlan().map(|v| v.vni().get()), Some(1));
//! let inner = d.inner_ipv4().expect("inner IPv4");
//! println!("{} -> {}", inner.src_addr(), inner.dst_addr());
//! assert!(d.inner_icmp().is_some());
//! ```

use core::ops::Range;

mod decode;
mod layer;
pub mod names;
mod ports;
mod text;

pub use decode::{Decoded, MAX_LAYERS, MAX_PROBLEMS, decode, decode_captured, decode_ipv4};
pub use layer::{Arp, ArpAddresses, Check, Fault, Icmp, Ipv4, Ipv4Options, Layer, Problem, Tcp, Udp, Vlan, Vxlan};
pub use ports::{Decoders, MAX_PORTS, PortDecoder};
pub use text::Json;

use crate::ethernet::{self, EtherType};
use crate::ipv4::{self, Protocol};
use crate::{Error, Layer as ErrorLayer, icmpv4, udp, vxlan};

/// The layers of an overlay frame, in the order the dissector meets them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// The underlay's Ethernet header.
    OuterEthernet,
    /// The underlay's IPv4 header.
    OuterIpv4,
    /// The underlay's UDP header.
    OuterUdp,
    /// The VXLAN header.
    Vxlan,
    /// The overlay's Ethernet header.
    InnerEthernet,
    /// The overlay's IPv4 header.
    InnerIpv4,
    /// The overlay's UDP header or ICMP message.
    InnerTransport,
}

const STAGES: usize = 7;

impl Stage {
    /// The stage's name, lowercase.
    #[inline]
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OuterEthernet => "outer ethernet",
            Self::OuterIpv4 => "outer ipv4",
            Self::OuterUdp => "outer udp",
            Self::Vxlan => "vxlan",
            Self::InnerEthernet => "inner ethernet",
            Self::InnerIpv4 => "inner ipv4",
            Self::InnerTransport => "inner transport",
        }
    }
}

impl core::fmt::Display for Stage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where and why the walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stop {
    /// Every layer down to the inner UDP header or ICMP message is there and valid.
    Complete,
    /// The layer of this stage is not in the frame: the one before it carries something else (another
    /// EtherType, another UDP port, another IP protocol) or is a fragment without it.
    Absent(Stage),
    /// The layer of this stage is there but does not parse.
    Invalid(Stage, Error),
}

/// What the dissector accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// UDP destination ports that carry VXLAN. Both may be the same port.
    pub vxlan_ports: [u16; 2],
    /// Verify the IPv4 header checksums, and the UDP checksums that are not zero.
    pub verify_checksums: bool,
}

impl Config {
    /// VXLAN on Linux's and flannel's port 8472 and IANA's 4789; no checksum verification.
    pub const DEFAULT: Self = Self { vxlan_ports: [vxlan::LINUX_PORT, vxlan::IANA_PORT], verify_checksums: false };
}

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The layers found in one frame. Views are built on demand over the bytes each layer owns; every one of them
/// passed its `check_len`, so none of their accessors panics.
#[derive(Clone, Copy, Debug)]
pub struct Dissection<'a> {
    buf: &'a [u8],
    /// Byte range of each layer that was found valid, header and payload.
    spans: [(u32, u32); STAGES],
    /// How many stages (from the first) were found valid.
    depth: u8,
    inner_protocol: Protocol,
    stop: Stop,
}

/// One line through every layer found, outer to inner, separated by ` | `, then why the walk stopped when it did
/// not reach the inner transport:
/// `e2:c6:cd:ac:0e:fd > 62:f5:f9:f2:75:3e | 192.0.2.1 > 192.0.2.2 ttl 64 | udp 49028 > 8472 | vxlan vni 1 | …`.
/// Any byte string has a line: a frame that is not an overlay frame says where it stopped.
impl core::fmt::Display for Dissection<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // A frame too short for Ethernet has no first layer: the separator goes only between two parts.
        let mut sep = "";
        let mut part = |f: &mut core::fmt::Formatter<'_>, args: core::fmt::Arguments<'_>| {
            let result = write!(f, "{sep}{args}");
            sep = " | ";
            result
        };
        if let Some(eth) = self.outer_ethernet() {
            part(f, format_args!("{} > {}", eth.src_addr(), eth.dst_addr()))?;
        }
        if let Some(ip) = self.outer_ipv4() {
            part(f, format_args!("{} > {} ttl {}", ip.src_addr(), ip.dst_addr(), ip.ttl()))?;
        }
        if let Some(udp) = self.outer_udp() {
            part(f, format_args!("udp {} > {}", udp.src_port(), udp.dst_port()))?;
        }
        if let Some(vx) = self.vxlan() {
            part(f, format_args!("vxlan vni {}", vx.vni()))?;
        }
        if let Some(eth) = self.inner_ethernet() {
            part(f, format_args!("{} > {}", eth.src_addr(), eth.dst_addr()))?;
        }
        if let Some(ip) = self.inner_ipv4() {
            part(f, format_args!("{} > {} ttl {} {}", ip.src_addr(), ip.dst_addr(), ip.ttl(), ip.protocol()))?;
        }
        if let Some(icmp) = self.inner_icmp() {
            part(f, format_args!("icmp type {} code {}", icmp.msg_type().0, icmp.msg_code()))?;
        }
        if let Some(udp) = self.inner_udp() {
            part(f, format_args!("udp {} > {}", udp.src_port(), udp.dst_port()))?;
        }
        match self.stop {
            Stop::Complete => Ok(()),
            Stop::Absent(stage) => part(f, format_args!("(no {stage})")),
            Stop::Invalid(stage, error) => part(f, format_args!("{stage} invalid: {error}")),
        }
    }
}

/// Dissects `frame` with [`Config::DEFAULT`].
#[inline]
#[must_use]
pub fn dissect(frame: &[u8]) -> Dissection<'_> {
    dissect_with(frame, &Config::DEFAULT)
}

/// Dissects `frame` with `config`.
///
/// Inlined, so that the caller's compiler keeps the few fields it reads in registers instead of copying the
/// whole `Dissection` through memory.
#[inline]
#[must_use]
pub fn dissect_with<'a>(frame: &'a [u8], config: &Config) -> Dissection<'a> {
    let mut d =
        Dissection { buf: frame, spans: [(0, 0); STAGES], depth: 0, inner_protocol: Protocol(0), stop: Stop::Complete };
    if let Err(stop) = d.walk(config) {
        d.stop = stop;
    }
    d
}

/// The payload's EtherType and where the payload starts, reading the tag's presence once.
#[inline(always)]
fn ethernet_next(frame: &ethernet::Frame<&[u8]>) -> (EtherType, usize) {
    if frame.is_tagged() {
        (frame.ethertype(), ethernet::VLAN_HEADER_LEN)
    } else {
        (frame.outer_ethertype(), ethernet::HEADER_LEN)
    }
}

/// What an IPv4 stage leaves for the next one.
struct Ipv4Found {
    payload: Range<usize>,
    protocol: Protocol,
    src: [u8; 4],
    dst: [u8; 4],
    first_fragment: bool,
    whole: bool,
}

impl<'a> Dissection<'a> {
    #[inline(always)]
    fn record(&mut self, stage: Stage, range: Range<usize>) {
        // Ranges never exceed the buffer, and a slice never exceeds isize::MAX; frames over 4 GiB do not exist.
        #[allow(clippy::cast_possible_truncation)]
        let span = (range.start as u32, range.end as u32);
        self.spans[stage as usize] = span;
        self.depth = stage as u8 + 1;
    }

    #[inline(always)]
    fn bytes(&self, range: Range<usize>) -> &'a [u8] {
        // Every range handed here was cut from the buffer's own length by the walk below.
        self.buf.get(range).unwrap_or_default()
    }

    #[inline(always)]
    fn walk(&mut self, config: &Config) -> Result<(), Stop> {
        let len = self.buf.len();
        let eth = ethernet::Frame::new_checked(self.buf).map_err(|e| Stop::Invalid(Stage::OuterEthernet, e))?;
        self.record(Stage::OuterEthernet, 0..len);
        let (ethertype, eth_len) = ethernet_next(&eth);
        if ethertype != EtherType::IPV4 {
            return Err(Stop::Absent(Stage::OuterIpv4));
        }

        let outer = self.ipv4(Stage::OuterIpv4, eth_len..len, config)?;
        // A tunnel never fragments its outer packets (RFC 7348 §4.3); a fragment needs reassembly, not dissection.
        if outer.protocol != Protocol::UDP || !outer.whole {
            return Err(Stop::Absent(Stage::OuterUdp));
        }

        let udp_range = outer.payload;
        let udp =
            udp::Packet::new_checked(self.bytes(udp_range.clone())).map_err(|e| Stop::Invalid(Stage::OuterUdp, e))?;
        if config.verify_checksums && !udp.verify_checksum(outer.src.into(), outer.dst.into()) {
            return Err(Stop::Invalid(Stage::OuterUdp, Error::Checksum { layer: ErrorLayer::Udp }));
        }
        let udp_end = udp_range.start + usize::from(udp.len());
        self.record(Stage::OuterUdp, udp_range.start..udp_end);
        if !config.vxlan_ports.contains(&udp.dst_port()) {
            return Err(Stop::Absent(Stage::Vxlan));
        }

        let vxlan_start = udp_range.start + udp::HEADER_LEN;
        let vx =
            vxlan::Packet::new_checked(self.bytes(vxlan_start..udp_end)).map_err(|e| Stop::Invalid(Stage::Vxlan, e))?;
        if !vx.has_vni_flag() {
            let error = Error::Invalid { layer: ErrorLayer::Vxlan, field: "flags", value: u32::from(vx.flags()) };
            return Err(Stop::Invalid(Stage::Vxlan, error));
        }
        self.record(Stage::Vxlan, vxlan_start..udp_end);

        let inner_start = vxlan_start + vxlan::HEADER_LEN;
        let inner = ethernet::Frame::new_checked(self.bytes(inner_start..udp_end))
            .map_err(|e| Stop::Invalid(Stage::InnerEthernet, e))?;
        self.record(Stage::InnerEthernet, inner_start..udp_end);
        let (ethertype, inner_eth_len) = ethernet_next(&inner);
        if ethertype != EtherType::IPV4 {
            return Err(Stop::Absent(Stage::InnerIpv4));
        }

        let ip = self.ipv4(Stage::InnerIpv4, inner_start + inner_eth_len..udp_end, config)?;
        self.inner_protocol = ip.protocol;
        if !ip.first_fragment {
            return Err(Stop::Absent(Stage::InnerTransport));
        }
        let transport = ip.payload;
        let stage = Stage::InnerTransport;
        match ip.protocol {
            Protocol::UDP => {
                let inner_udp =
                    udp::Packet::new_checked(self.bytes(transport.clone())).map_err(|e| Stop::Invalid(stage, e))?;
                let end = transport.start + usize::from(inner_udp.len());
                self.record(stage, transport.start..end);
            }
            Protocol::ICMP => {
                icmpv4::Packet::new_checked(self.bytes(transport.clone())).map_err(|e| Stop::Invalid(stage, e))?;
                self.record(stage, transport);
            }
            _ => return Err(Stop::Absent(stage)),
        }
        Ok(())
    }

    #[inline(always)]
    fn ipv4(&mut self, stage: Stage, range: Range<usize>, config: &Config) -> Result<Ipv4Found, Stop> {
        let start = range.start;
        // check_len judges version, IHL and total length against the buffer.
        let ip = ipv4::Packet::new_checked(self.bytes(range)).map_err(|e| Stop::Invalid(stage, e))?;
        if config.verify_checksums && !ip.verify_checksum() {
            return Err(Stop::Invalid(stage, Error::Checksum { layer: ErrorLayer::Ipv4 }));
        }
        let end = start + usize::from(ip.total_len());
        self.record(stage, start..end);
        Ok(Ipv4Found {
            payload: start + ip.header_len()..end,
            protocol: ip.protocol(),
            src: ip.src_addr().octets(),
            dst: ip.dst_addr().octets(),
            first_fragment: ip.frag_offset() == 0,
            whole: ip.frag_offset() == 0 && !ip.more_frags(),
        })
    }

    #[inline]
    fn slice(&self, stage: Stage) -> Option<&'a [u8]> {
        if (stage as u8) < self.depth {
            let (start, end) = self.spans[stage as usize];
            self.buf.get(start as usize..end as usize)
        } else {
            None
        }
    }

    /// Where and why the walk stopped.
    #[inline]
    #[must_use]
    pub const fn stop(&self) -> Stop {
        self.stop
    }

    /// Whether every layer down to the inner UDP or ICMP message was found.
    #[inline]
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.stop == Stop::Complete
    }

    /// The last stage found valid, if any.
    #[inline]
    #[must_use]
    pub const fn last_stage(&self) -> Option<Stage> {
        match self.depth {
            0 => None,
            1 => Some(Stage::OuterEthernet),
            2 => Some(Stage::OuterIpv4),
            3 => Some(Stage::OuterUdp),
            4 => Some(Stage::Vxlan),
            5 => Some(Stage::InnerEthernet),
            6 => Some(Stage::InnerIpv4),
            _ => Some(Stage::InnerTransport),
        }
    }

    /// The byte range of a layer that was found valid: its header and its payload.
    #[inline]
    #[must_use]
    pub fn span(&self, stage: Stage) -> Option<Range<usize>> {
        self.slice(stage).map(|_| {
            let (start, end) = self.spans[stage as usize];
            start as usize..end as usize
        })
    }

    /// The whole frame.
    #[inline]
    #[must_use]
    pub const fn frame(&self) -> &'a [u8] {
        self.buf
    }

    /// The outer Ethernet header.
    #[inline]
    #[must_use]
    pub fn outer_ethernet(&self) -> Option<ethernet::Frame<&'a [u8]>> {
        self.slice(Stage::OuterEthernet).map(ethernet::Frame::new_unchecked)
    }

    /// The outer IPv4 packet, up to its total length.
    #[inline]
    #[must_use]
    pub fn outer_ipv4(&self) -> Option<ipv4::Packet<&'a [u8]>> {
        self.slice(Stage::OuterIpv4).map(ipv4::Packet::new_unchecked)
    }

    /// The outer UDP datagram, up to its length field.
    #[inline]
    #[must_use]
    pub fn outer_udp(&self) -> Option<udp::Packet<&'a [u8]>> {
        self.slice(Stage::OuterUdp).map(udp::Packet::new_unchecked)
    }

    /// The VXLAN header and the inner frame behind it.
    #[inline]
    #[must_use]
    pub fn vxlan(&self) -> Option<vxlan::Packet<&'a [u8]>> {
        self.slice(Stage::Vxlan).map(vxlan::Packet::new_unchecked)
    }

    /// The inner Ethernet frame.
    #[inline]
    #[must_use]
    pub fn inner_ethernet(&self) -> Option<ethernet::Frame<&'a [u8]>> {
        self.slice(Stage::InnerEthernet).map(ethernet::Frame::new_unchecked)
    }

    /// The inner IPv4 packet, up to its total length.
    #[inline]
    #[must_use]
    pub fn inner_ipv4(&self) -> Option<ipv4::Packet<&'a [u8]>> {
        self.slice(Stage::InnerIpv4).map(ipv4::Packet::new_unchecked)
    }

    /// The inner UDP datagram, when the inner packet carries UDP.
    #[inline]
    #[must_use]
    pub fn inner_udp(&self) -> Option<udp::Packet<&'a [u8]>> {
        if self.inner_protocol == Protocol::UDP {
            self.slice(Stage::InnerTransport).map(udp::Packet::new_unchecked)
        } else {
            None
        }
    }

    /// The inner ICMP message, when the inner packet carries ICMP.
    #[inline]
    #[must_use]
    pub fn inner_icmp(&self) -> Option<icmpv4::Packet<&'a [u8]>> {
        if self.inner_protocol == Protocol::ICMP {
            self.slice(Stage::InnerTransport).map(icmpv4::Packet::new_unchecked)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn display_has_no_separator_before_the_first_part() {
        // Too short for Ethernet: only the reason, no leading " | ".
        assert_eq!(
            dissect(&[0u8; 5]).to_string(),
            "outer ethernet invalid: ethernet: truncated: need 14 bytes, have 5"
        );
        // Ethernet carrying ARP: the addresses, then where the walk stopped.
        let mut frame = [0u8; 14];
        frame[..6].copy_from_slice(&[0xff; 6]);
        frame[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        frame[12..].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(dissect(&frame).to_string(), "02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff | (no outer ipv4)");
    }

    #[test]
    fn display_of_a_vxlan_frame_lists_every_layer() {
        let capture = include_bytes!("../../../../tests/data/kernel-flannel-vxlan.pcap");
        let first = tweed_pcap::Reader::new(capture).ok().and_then(|mut r| r.next()).and_then(Result::ok);
        let frame = first.expect("the kernel capture's first frame").data;
        assert_eq!(
            dissect(frame).to_string(),
            "e2:c6:cd:ac:0e:fd > 62:f5:f9:f2:75:3e | 192.0.2.1 > 192.0.2.2 ttl 64 | udp 49028 > 8472 | vxlan vni 1 \
             | 02:00:00:00:00:01 > 02:00:00:00:00:02 | 10.244.1.2 > 10.244.2.2 ttl 63 ICMP | icmp type 8 code 0"
        );
    }
}
