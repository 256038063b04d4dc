//! The Linux kernel's own VXLAN frames through tweed-wire.
//!
//! `tests/data/kernel-flannel-vxlan.pcap` holds 40 frames captured on the underlay between two network-namespace
//! "nodes" set up the way flannel sets up its vxlan backend (`flannel.1`, VNI 1, port 8472, VTEP MACs
//! `02:00:00:00:00:01` and `02:00:00:00:00:02`, outer UDP checksums filled, as `ip link add ... type vxlan ... udpcsum` sends them): four
//! ICMP echo frames and 36 TCP frames between pods 10.244.1.2 and 10.244.2.2.
//!
//! Every frame must dissect to the end, read the same at every layer as etherparse reads it, and re-emit from its
//! `Repr`s to the same bytes; truncations and lying length fields must stop the dissector at the right stage with
//! the exact error, whose numbers are derived here from the layer offsets of RFC 894, 791, 768 and 7348, not from the
//! code under test.

use core::net::Ipv4Addr;

use etherparse::{LinkSlice, NetSlice, SlicedPacket, TransportSlice};
use tweed_wire::dissect::{Config, Dissection, Stage, Stop, dissect_with};
use tweed_wire::ethernet::{EtherType, MacAddr};
use tweed_wire::ipv4::{ChecksumCheck, Protocol};
use tweed_wire::udp::ChecksumMode;
use tweed_wire::{Error, Layer, ethernet, icmpv4, ipv4, udp, vxlan};

static PCAP: &[u8] = include_bytes!("../../../tests/data/kernel-flannel-vxlan.pcap");

/// Where each layer of an untagged, option-less VXLAN frame starts: Ethernet 14, IPv4 20, UDP 8, VXLAN 8, Ethernet
/// 14, IPv4 20. [`frames`] checks that every captured frame has this shape.
const OUTER_IP: usize = 14;
const OUTER_UDP: usize = OUTER_IP + 20;
const VXLAN: usize = OUTER_UDP + 8;
const INNER_ETH: usize = VXLAN + 8;
const INNER_IP: usize = INNER_ETH + 14;
const INNER_L4: usize = INNER_IP + 20;

/// Frame 1 (an ICMP echo request) and frame 5 (the first TCP frame), 1-based as tshark counts.
const ICMP_FRAME: usize = 0;
const TCP_FRAME: usize = 4;

/// The dissector with every checksum verified: the kernel filled them all.
const VERIFY: Config = Config { verify_checksums: true, ..Config::DEFAULT };

fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

/// The frames of the capture, read by tweed-pcap: Ethernet, no frame cut by the snap length.
fn frames() -> Vec<&'static [u8]> {
    let mut frames = Vec::new();
    for record in tweed_pcap::Reader::new(PCAP).expect("a pcap header") {
        let record = record.expect("a whole record");
        assert_eq!(record.link_type, tweed_pcap::LinkType::ETHERNET);
        assert_eq!(record.data.len(), record.orig_len as usize, "frame {} was cut by the snap length", record.number);
        frames.push(record.data);
    }
    assert_eq!(frames.len(), 40);
    for (i, frame) in frames.iter().enumerate() {
        // Untagged IPv4 outside and inside, 20-byte IPv4 headers, UDP: the offsets above hold.
        assert_eq!(be16(frame, 12), 0x0800, "frame {}", i + 1);
        assert_eq!(frame[OUTER_IP], 0x45, "frame {}", i + 1);
        assert_eq!(frame[OUTER_IP + 9], 17, "frame {}", i + 1);
        assert_eq!(be16(frame, INNER_ETH + 12), 0x0800, "frame {}", i + 1);
        assert_eq!(frame[INNER_IP], 0x45, "frame {}", i + 1);
        // No Ethernet padding: the frames are longer than 60 bytes, so the lengths reach the end.
        assert_eq!(usize::from(be16(frame, OUTER_IP + 2)), frame.len() - OUTER_IP, "frame {}", i + 1);
        assert_eq!(usize::from(be16(frame, OUTER_UDP + 4)), frame.len() - OUTER_UDP, "frame {}", i + 1);
        assert_eq!(usize::from(be16(frame, INNER_IP + 2)), frame.len() - INNER_IP, "frame {}", i + 1);
    }
    frames
}

fn is_icmp(frame: &[u8]) -> bool {
    frame[INNER_IP + 9] == 1
}

/// RFC 1071, a byte pair at a time: the test's own.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 =
        data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(u16::MAX)
}

fn refill_ipv4_checksum(frame: &mut [u8], at: usize) {
    frame[at + 10..at + 12].fill(0);
    let c = internet_checksum(&frame[at..at + 20]);
    frame[at + 10..at + 12].copy_from_slice(&c.to_be_bytes());
}

fn set16(frame: &mut [u8], at: usize, value: u16) {
    frame[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

fn dissect(frame: &[u8]) -> Dissection<'_> {
    dissect_with(frame, &VERIFY)
}

fn truncated(stage: Stage, layer: Layer, required: usize, actual: usize) -> Stop {
    Stop::Invalid(stage, Error::Truncated { layer, required, actual })
}

#[test]
fn every_frame_dissects_to_the_end() {
    let frames = frames();
    assert_eq!(frames.iter().filter(|f| is_icmp(f)).count(), 4);
    assert_eq!(frames.iter().filter(|f| f[INNER_IP + 9] == 6).count(), 36);
    for (i, frame) in frames.iter().enumerate() {
        let d = dissect(frame);
        let expected = if is_icmp(frame) { Stop::Complete } else { Stop::Absent(Stage::InnerTransport) };
        assert_eq!(d.stop(), expected, "frame {}", i + 1);
        assert_eq!(d.span(Stage::OuterIpv4), Some(OUTER_IP..frame.len()));
        assert_eq!(d.span(Stage::OuterUdp), Some(OUTER_UDP..frame.len()));
        assert_eq!(d.span(Stage::Vxlan), Some(VXLAN..frame.len()));
        assert_eq!(d.span(Stage::InnerEthernet), Some(INNER_ETH..frame.len()));
        assert_eq!(d.span(Stage::InnerIpv4), Some(INNER_IP..frame.len()));
        assert_eq!(d.span(Stage::InnerTransport), is_icmp(frame).then_some(INNER_L4..frame.len()));
    }
}

#[test]
fn the_frames_are_what_interop_says_the_kernel_sends() {
    let vtep = [MacAddr::new(2, 0, 0, 0, 0, 1), MacAddr::new(2, 0, 0, 0, 0, 2)];
    let nodes = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)];
    for (i, frame) in frames().iter().enumerate() {
        let d = dissect(frame);
        let outer = d.outer_ipv4().expect("outer IPv4");
        assert_eq!(outer.ttl(), 64, "frame {}: ttl auto", i + 1);
        assert!(!outer.dont_frag(), "frame {}: df unset", i + 1);
        assert!(nodes.contains(&outer.src_addr()) && nodes.contains(&outer.dst_addr()));
        assert_ne!(outer.src_addr(), outer.dst_addr());
        let udp = d.outer_udp().expect("outer UDP");
        assert_eq!(udp.dst_port(), vxlan::LINUX_PORT, "frame {}", i + 1);
        assert!((32768..=60999).contains(&udp.src_port()), "frame {}: the local port range", i + 1);
        assert_ne!(udp.checksum(), 0, "frame {}: udpcsum is the kernel's default", i + 1);
        let vx = d.vxlan().expect("VXLAN");
        assert_eq!((vx.flags(), vx.vni(), vx.has_reserved_bits()), (vxlan::FLAG_VNI, vxlan::Vni::FLANNEL, false));
        let inner = d.inner_ethernet().expect("inner Ethernet");
        // Routed, not bridged: the inner frame goes from the local VTEP's MAC to the peer VTEP's.
        assert!(vtep.contains(&inner.src_addr()) && vtep.contains(&inner.dst_addr()), "frame {}", i + 1);
        assert_ne!(inner.src_addr(), inner.dst_addr());
        let inner_ip = d.inner_ipv4().expect("inner IPv4");
        assert_eq!(inner_ip.ttl(), 63, "frame {}: the pod's 64, decremented by the node", i + 1);
        // The VTEP MAC of node i belongs with the node address 192.0.2.i.
        let node = |mac: MacAddr| Ipv4Addr::new(192, 0, 2, mac.0[5]);
        assert_eq!((node(inner.src_addr()), node(inner.dst_addr())), (outer.src_addr(), outer.dst_addr()));
    }
}

/// The fields of one IPv4 header, as tweed and etherparse read them.
fn assert_same_ipv4(ours: &ipv4::Packet<&[u8]>, theirs: &etherparse::Ipv4HeaderSlice<'_>, what: &str) {
    assert_eq!(usize::from(theirs.ihl()) * 4, ours.header_len(), "{what}");
    assert_eq!(theirs.dcp().value(), ours.dscp(), "{what}");
    assert_eq!(theirs.ecn().value(), ours.ecn(), "{what}");
    assert_eq!(theirs.total_len(), ours.total_len(), "{what}");
    assert_eq!(theirs.identification(), ours.ident(), "{what}");
    assert_eq!(theirs.dont_fragment(), ours.dont_frag(), "{what}");
    assert_eq!(theirs.more_fragments(), ours.more_frags(), "{what}");
    assert_eq!(theirs.fragments_offset().value() * 8, ours.frag_offset(), "{what}");
    assert_eq!(theirs.ttl(), ours.ttl(), "{what}");
    assert_eq!(theirs.protocol().0, ours.protocol().0, "{what}");
    assert_eq!(theirs.header_checksum(), ours.checksum(), "{what}");
    assert_eq!(theirs.to_header().calc_header_checksum(), ours.checksum(), "{what}");
    assert_eq!(theirs.source_addr(), ours.src_addr(), "{what}");
    assert_eq!(theirs.destination_addr(), ours.dst_addr(), "{what}");
    assert!(ours.verify_checksum(), "{what}");
}

fn assert_same_ethernet(ours: &ethernet::Frame<&[u8]>, theirs: &SlicedPacket<'_>, what: &str) {
    let Some(LinkSlice::Ethernet2(link)) = &theirs.link else { panic!("{what}: etherparse read no Ethernet header") };
    assert_eq!(link.destination(), ours.dst_addr().0, "{what}");
    assert_eq!(link.source(), ours.src_addr().0, "{what}");
    assert_eq!(link.ether_type().0, ours.ethertype().0, "{what}");
    assert!(theirs.link_exts.is_empty() && ours.vlan().is_none(), "{what}");
}

#[test]
fn every_layer_reads_as_etherparse_reads_it() {
    for (i, frame) in frames().iter().enumerate() {
        let n = i + 1;
        let d = dissect(frame);

        let outer = SlicedPacket::from_ethernet(frame).expect("etherparse reads the frame");
        assert_same_ethernet(&d.outer_ethernet().expect("outer Ethernet"), &outer, &format!("frame {n} outer"));
        let Some(NetSlice::Ipv4(outer_ip)) = &outer.net else { panic!("frame {n}: no outer IPv4") };
        let ours_ip = d.outer_ipv4().expect("outer IPv4");
        assert_same_ipv4(&ours_ip, &outer_ip.header(), &format!("frame {n} outer IPv4"));
        let Some(TransportSlice::Udp(outer_udp)) = &outer.transport else { panic!("frame {n}: no outer UDP") };
        let ours_udp = d.outer_udp().expect("outer UDP");
        assert_eq!(
            (outer_udp.source_port(), outer_udp.destination_port(), outer_udp.length(), outer_udp.checksum()),
            (ours_udp.src_port(), ours_udp.dst_port(), ours_udp.len(), ours_udp.checksum()),
            "frame {n} outer UDP"
        );
        assert_eq!(outer_udp.payload(), ours_udp.payload());
        // etherparse recomputes the kernel's UDP checksum.
        let recomputed = outer_udp
            .to_header()
            .calc_checksum_ipv4_raw(outer_ip.header().source(), outer_ip.header().destination(), outer_udp.payload())
            .expect("short datagram");
        assert_eq!(recomputed, ours_udp.checksum(), "frame {n}");
        assert!(ours_udp.verify_checksum(ours_ip.src_addr(), ours_ip.dst_addr()));

        // VXLAN: etherparse has no VXLAN; its UDP payload is the VXLAN header and the inner frame.
        let vx = d.vxlan().expect("VXLAN");
        assert_eq!(vx.as_ref(), outer_udp.payload());
        assert_eq!(vx.payload(), &outer_udp.payload()[vxlan::HEADER_LEN..]);

        let inner = SlicedPacket::from_ethernet(vx.payload()).expect("etherparse reads the inner frame");
        assert_same_ethernet(&d.inner_ethernet().expect("inner Ethernet"), &inner, &format!("frame {n} inner"));
        let Some(NetSlice::Ipv4(inner_ip)) = &inner.net else { panic!("frame {n}: no inner IPv4") };
        let ours_inner_ip = d.inner_ipv4().expect("inner IPv4");
        assert_same_ipv4(&ours_inner_ip, &inner_ip.header(), &format!("frame {n} inner IPv4"));
        assert_eq!(inner_ip.payload().payload, ours_inner_ip.payload());
        match &inner.transport {
            Some(TransportSlice::Icmpv4(icmp)) => {
                let ours = d.inner_icmp().expect("inner ICMP");
                assert_eq!(
                    (icmp.type_u8(), icmp.code_u8(), icmp.checksum()),
                    (ours.msg_type().0, ours.msg_code(), ours.checksum())
                );
                assert_eq!(icmp.slice(), ours.as_ref());
                assert!(ours.verify_checksum());
            }
            Some(TransportSlice::Tcp(tcp)) => {
                // tweed has no TCP parser: the dissection stops at the inner IPv4 payload, which etherparse reads.
                assert_eq!(ours_inner_ip.protocol(), Protocol::TCP);
                assert!(d.inner_icmp().is_none() && d.inner_udp().is_none());
                assert_eq!(tcp.slice(), ours_inner_ip.payload());
            }
            other => panic!("frame {n}: etherparse reads {other:?}"),
        }
    }
}

/// What every cut of `frame` to `len` bytes must give: the outer IPv4 total length (the whole frame's) is what runs
/// out first, once the outer IPv4 header is there.
fn expected_plain_truncation(frame: &[u8], len: usize) -> Stop {
    let outer_total = usize::from(be16(frame, OUTER_IP + 2));
    match len {
        0..OUTER_IP => truncated(Stage::OuterEthernet, Layer::Ethernet, 14, len),
        OUTER_IP..OUTER_UDP => truncated(Stage::OuterIpv4, Layer::Ipv4, 20, len - OUTER_IP),
        _ => truncated(Stage::OuterIpv4, Layer::Ipv4, outer_total, len - OUTER_IP),
    }
}

#[test]
fn every_truncation_stops_at_the_outer_ipv4_total_length() {
    let frames = frames();
    for frame in [frames[ICMP_FRAME], frames[TCP_FRAME]] {
        for len in 0..frame.len() {
            assert_eq!(dissect(&frame[..len]).stop(), expected_plain_truncation(frame, len), "cut to {len}");
        }
    }
}

/// `frame` cut to `len` bytes as a sender would have sent a shorter packet: outer IPv4 total length and UDP length
/// shrunk to match (outer IPv4 checksum refilled, UDP checksum zeroed: "none"), so that each inner layer in turn
/// is the one that runs out.
fn consistent_truncation(frame: &[u8], len: usize) -> Vec<u8> {
    let mut cut = frame[..len].to_vec();
    if len >= OUTER_UDP {
        set16(&mut cut, OUTER_IP + 2, u16::try_from(len - OUTER_IP).expect("a frame"));
        refill_ipv4_checksum(&mut cut, OUTER_IP);
    }
    if len >= VXLAN {
        set16(&mut cut, OUTER_UDP + 4, u16::try_from(len - OUTER_UDP).expect("a frame"));
        set16(&mut cut, OUTER_UDP + 6, 0);
    }
    cut
}

fn expected_consistent_truncation(frame: &[u8], len: usize) -> Stop {
    let inner_total = usize::from(be16(frame, INNER_IP + 2));
    if len == frame.len() {
        return if is_icmp(frame) { Stop::Complete } else { Stop::Absent(Stage::InnerTransport) };
    }
    match len {
        0..OUTER_UDP => expected_plain_truncation(frame, len),
        OUTER_UDP..VXLAN => truncated(Stage::OuterUdp, Layer::Udp, 8, len - OUTER_UDP),
        VXLAN..INNER_ETH => truncated(Stage::Vxlan, Layer::Vxlan, 8, len - VXLAN),
        INNER_ETH..INNER_IP => truncated(Stage::InnerEthernet, Layer::Ethernet, 14, len - INNER_ETH),
        INNER_IP..INNER_L4 => truncated(Stage::InnerIpv4, Layer::Ipv4, 20, len - INNER_IP),
        _ => truncated(Stage::InnerIpv4, Layer::Ipv4, inner_total, len - INNER_IP),
    }
}

#[test]
fn every_consistent_truncation_stops_at_the_layer_that_runs_out() {
    let frames = frames();
    for frame in [frames[ICMP_FRAME], frames[TCP_FRAME]] {
        // Up to the whole frame, whose only change is the UDP checksum "none".
        for len in 0..=frame.len() {
            let cut = consistent_truncation(frame, len);
            assert_eq!(dissect(&cut).stop(), expected_consistent_truncation(frame, len), "cut to {len}");
        }
    }
}

#[test]
fn lying_length_fields_stop_at_the_right_stage() {
    let frame = frames()[ICMP_FRAME];
    let outer_total = frame.len() - OUTER_IP;
    let udp_len = frame.len() - OUTER_UDP;
    let lie = |at: usize, value: u16| {
        let mut bytes = frame.to_vec();
        set16(&mut bytes, at, value);
        refill_ipv4_checksum(&mut bytes, OUTER_IP);
        bytes
    };
    let lie_udp = |at: usize, value: u16| {
        let mut bytes = lie(at, value);
        // Checksum "none", so that the UDP length is what is judged, not the checksum it breaks.
        set16(&mut bytes, OUTER_UDP + 6, 0);
        bytes
    };
    let stop = |bytes: &[u8]| dissect(bytes).stop();
    let invalid = |stage, layer, field, value| Stop::Invalid(stage, Error::Invalid { layer, field, value });

    // Outer IPv4 total length longer than the buffer.
    for total in [outer_total + 1, usize::from(u16::MAX)] {
        let bytes = lie(OUTER_IP + 2, u16::try_from(total).expect("16 bits"));
        assert_eq!(stop(&bytes), truncated(Stage::OuterIpv4, Layer::Ipv4, total, outer_total));
    }
    // Outer IPv4 total length shorter than its header, and IHL below 5.
    assert_eq!(stop(&lie(OUTER_IP + 2, 19)), invalid(Stage::OuterIpv4, Layer::Ipv4, "total length", 19));
    let mut bytes = frame.to_vec();
    bytes[OUTER_IP] = 0x44;
    refill_ipv4_checksum(&mut bytes, OUTER_IP);
    assert_eq!(stop(&bytes), invalid(Stage::OuterIpv4, Layer::Ipv4, "ihl", 4));

    // Outer UDP length longer than the IPv4 payload; shorter than the UDP header.
    let too_long = u16::try_from(udp_len + 1).expect("16 bits");
    assert_eq!(stop(&lie_udp(OUTER_UDP + 4, too_long)), truncated(Stage::OuterUdp, Layer::Udp, udp_len + 1, udp_len));
    for short in [0u16, 7] {
        assert_eq!(stop(&lie_udp(OUTER_UDP + 4, short)), invalid(Stage::OuterUdp, Layer::Udp, "length", short.into()));
    }
    // A UDP length one short of the IPv4 payload is legal, and takes the last byte from the inner frame: its
    // IPv4 total length then reaches past the datagram.
    let one_short = u16::try_from(udp_len - 1).expect("16 bits");
    let inner_total = frame.len() - INNER_IP;
    assert_eq!(
        stop(&lie_udp(OUTER_UDP + 4, one_short)),
        truncated(Stage::InnerIpv4, Layer::Ipv4, inner_total, inner_total - 1)
    );

    // Inner IPv4 IHL below 5. Changed alone, the byte breaks the kernel's outer UDP checksum, which catches it
    // first; with the outer checksum "none", the inner header is judged, its IHL before its checksum.
    for ihl in [0u8, 4] {
        let mut bytes = frame.to_vec();
        bytes[INNER_IP] = 0x40 | ihl;
        assert_eq!(stop(&bytes), Stop::Invalid(Stage::OuterUdp, Error::Checksum { layer: Layer::Udp }));
        set16(&mut bytes, OUTER_UDP + 6, 0);
        assert_eq!(stop(&bytes), invalid(Stage::InnerIpv4, Layer::Ipv4, "ihl", ihl.into()));
        // A liar who also refills the inner header checksum leaves the outer UDP sum as it was (a header with a
        // right checksum sums to 0xffff whatever it holds), so the kernel's outer checksum still verifies and the
        // inner IHL is what is caught.
        let mut bytes = frame.to_vec();
        bytes[INNER_IP] = 0x40 | ihl;
        refill_ipv4_checksum(&mut bytes, INNER_IP);
        assert_eq!(stop(&bytes), invalid(Stage::InnerIpv4, Layer::Ipv4, "ihl", ihl.into()));
    }
    // Inner IPv4 total length longer than the inner frame.
    let mut bytes = frame.to_vec();
    set16(&mut bytes, INNER_IP + 2, u16::try_from(inner_total + 8).expect("16 bits"));
    refill_ipv4_checksum(&mut bytes, INNER_IP);
    set16(&mut bytes, OUTER_UDP + 6, 0);
    assert_eq!(stop(&bytes), truncated(Stage::InnerIpv4, Layer::Ipv4, inner_total + 8, inner_total));
}

/// Every frame, rebuilt in a zeroed buffer from the `Repr` of each of its layers (TCP, which tweed does not parse,
/// copied as it is), is the captured frame, byte for byte: the outer UDP checksum tweed fills is the kernel's.
#[test]
fn every_frame_re_emits_from_its_reprs() {
    for (i, frame) in frames().iter().enumerate() {
        let n = i + 1;
        let d = dissect(frame);
        let mut out = vec![0u8; frame.len()];

        let eth = ethernet::Repr::parse(&d.outer_ethernet().expect("outer Ethernet")).expect("parses");
        assert_eq!(eth.ethertype, EtherType::IPV4);
        eth.emit(&mut ethernet::Frame::new_unchecked(&mut out[..OUTER_IP]));
        let ip = ipv4::Repr::parse(&d.outer_ipv4().expect("outer IPv4"), ChecksumCheck::Verify).expect("parses");
        ip.emit(&mut ipv4::Packet::new_unchecked(&mut out[OUTER_IP..OUTER_UDP]));
        let vx = vxlan::Repr::parse(&d.vxlan().expect("VXLAN")).expect("parses");
        vx.emit(&mut vxlan::Packet::new_unchecked(&mut out[VXLAN..INNER_ETH]));
        let inner_eth = ethernet::Repr::parse(&d.inner_ethernet().expect("inner Ethernet")).expect("parses");
        inner_eth.emit(&mut ethernet::Frame::new_unchecked(&mut out[INNER_ETH..INNER_IP]));
        let inner_ip = ipv4::Repr::parse(&d.inner_ipv4().expect("inner IPv4"), ChecksumCheck::Verify).expect("parses");
        inner_ip.emit(&mut ipv4::Packet::new_unchecked(&mut out[INNER_IP..INNER_L4]));
        if let Some(icmp) = d.inner_icmp() {
            let icmp = icmpv4::Repr::parse(&icmp, ChecksumCheck::Verify).expect("parses");
            assert_eq!(icmp.buffer_len(), frame.len() - INNER_L4);
            icmp.emit(&mut icmpv4::Packet::new_unchecked(&mut out[INNER_L4..]));
        } else {
            out[INNER_L4..].copy_from_slice(&frame[INNER_L4..]);
        }
        // UDP last: its checksum covers everything behind it.
        let outer_udp = d.outer_udp().expect("outer UDP");
        let udp = udp::Repr::parse(&outer_udp, ip.src_addr, ip.dst_addr, ChecksumMode::Compute).expect("parses");
        let payload_len = frame.len() - VXLAN;
        udp.emit(
            &mut udp::Packet::new_unchecked(&mut out[OUTER_UDP..]),
            ip.src_addr,
            ip.dst_addr,
            payload_len,
            ChecksumMode::Compute,
        );

        for (name, range) in [
            ("outer Ethernet", 0..OUTER_IP),
            ("outer IPv4", OUTER_IP..OUTER_UDP),
            ("outer UDP", OUTER_UDP..VXLAN),
            ("VXLAN", VXLAN..INNER_ETH),
            ("inner Ethernet", INNER_ETH..INNER_IP),
            ("inner IPv4", INNER_IP..INNER_L4),
            ("inner transport", INNER_L4..frame.len()),
        ] {
            assert_eq!(&out[range.clone()], &frame[range], "frame {n}: {name}");
        }
    }
}
