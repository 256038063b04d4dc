//! Raw bytes through both dissectors.
//!
//! The overlay fast path (`dissect`): nothing panics; the layers it reports are nested inside each other and
//! inside the frame; every layer it found parses as a `Repr`; and re-emitting those `Repr`s in place (parse →
//! emit → parse) gives a frame that dissects the same way.
//!
//! The full decoder (`decode`: VLAN tags, ARP, IPv4 options, ICMP and the headers its errors quote, UDP, TCP,
//! VXLAN, flannel's udp backend, checksums and lying lengths): nothing panics, as an Ethernet frame, a snapped
//! one or a bare IPv4 packet; its line and its JSON are written whole; its tables stay within their bounds; with
//! no port mapped it finds no tunnel; and on a frame the fast path walks completely it finds the same VNI.
#![no_main]

use core::net::Ipv4Addr;
use libfuzzer_sys::fuzz_target;
use tweed_wire::dissect::{
    Decoded, Decoders, Fault, Layer, MAX_LAYERS, MAX_PROBLEMS, Stage, decode, decode_captured, decode_ipv4, dissect,
};
use tweed_wire::{ethernet, ipv4, udp, vxlan};

const STAGES: [Stage; 7] = [
    Stage::OuterEthernet,
    Stage::OuterIpv4,
    Stage::OuterUdp,
    Stage::Vxlan,
    Stage::InnerEthernet,
    Stage::InnerIpv4,
    Stage::InnerTransport,
];

/// The invariants of one decoded frame; its VNIs, outer to inner.
fn check(decoded: &Decoded<'_>) -> Vec<u32> {
    assert!(decoded.layers().len() <= MAX_LAYERS);
    assert!(decoded.problems().len() <= MAX_PROBLEMS);
    assert!(!decoded.more_problems() || decoded.problems().len() == MAX_PROBLEMS);
    let line = decoded.to_string();
    assert!(!line.contains('\n'), "one line: {line}");
    let json = decoded.json().to_string();
    assert!(json.starts_with("{\"layers\":[") && json.ends_with('}'), "{json}");
    assert_eq!(json.matches('{').count(), json.matches('}').count(), "{json}");
    // Every problem but a snapped capture is either malformed or a bad checksum.
    let judged = decoded.problems().iter().any(|p| !matches!(p.fault, Fault::Snapped { .. }));
    assert_eq!(decoded.is_malformed() || decoded.has_bad_checksum(), judged);
    decoded.layers().iter().filter_map(|l| if let Layer::Vxlan(v) = l { Some(v.vni) } else { None }).collect()
}

fuzz_target!(|data: &[u8]| {
    let full = decode(data, &Decoders::DEFAULT);
    let vnis = check(&full);
    check(&decode_captured(data, data.len() + 100, &Decoders::DEFAULT));
    check(&decode_ipv4(data, data.len(), &Decoders::DEFAULT));
    let plain = decode(data, &Decoders::NONE);
    assert!(check(&plain).is_empty(), "no port mapped, no VXLAN");
    assert!(!plain.layers().iter().any(|l| matches!(l, Layer::FlannelUdp)));

    let d = dissect(data);
    if d.is_complete() {
        let vni = d.vxlan().map(|v| v.vni().get());
        assert_eq!(vnis.first().copied(), vni, "the fast path and the decoder find the same tunnel");
    }

    // Spans are present for a prefix of the stages, nested, and inside the buffer.
    let mut outer = 0..data.len();
    let mut seen_gap = false;
    for stage in STAGES {
        match d.span(stage) {
            Some(span) => {
                assert!(!seen_gap, "{stage} present after an absent stage");
                assert!(span.start >= outer.start && span.end <= outer.end, "{stage} {span:?} outside {outer:?}");
                outer = span;
            }
            None => seen_gap = true,
        }
    }

    // Every layer found parses as a Repr.
    let eth = d.outer_ethernet().map(|f| ethernet::Repr::parse(&f).expect("outer ethernet"));
    let ip = d.outer_ipv4().map(|p| ipv4::Repr::parse(&p, ipv4::ChecksumCheck::Ignore).expect("outer ipv4"));
    let (src, dst) = ip.map_or((Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED), |ip| (ip.src_addr, ip.dst_addr));
    let udp = d.outer_udp().map(|p| udp::Repr::parse(&p, src, dst, udp::ChecksumMode::None).expect("outer udp"));
    let vx = d.vxlan().map(|p| vxlan::Repr::parse(&p).expect("vxlan"));
    let inner_eth = d.inner_ethernet().map(|f| ethernet::Repr::parse(&f).expect("inner ethernet"));
    let inner_ip = d.inner_ipv4().map(|p| ipv4::Repr::parse(&p, ipv4::ChecksumCheck::Ignore).expect("inner ipv4"));

    // Emit them back in place over a copy and dissect again: same walk, same layers.
    let mut copy = data.to_vec();
    if let (Some(repr), Some(span)) = (eth, d.span(Stage::OuterEthernet)) {
        repr.emit(&mut ethernet::Frame::new_unchecked(&mut copy[span]));
    }
    if let (Some(repr), Some(span), Some(view)) = (ip, d.span(Stage::OuterIpv4), d.outer_ipv4()) {
        // Reprs do not keep options: only an option-less header can be re-emitted in place.
        if view.header_len() == ipv4::HEADER_LEN {
            repr.emit(&mut ipv4::Packet::new_unchecked(&mut copy[span]));
        }
    }
    if let (Some(repr), Some(span)) = (udp, d.span(Stage::OuterUdp)) {
        let payload_len = span.len() - udp::HEADER_LEN;
        repr.emit(&mut udp::Packet::new_unchecked(&mut copy[span]), src, dst, payload_len, udp::ChecksumMode::None);
    }
    if let (Some(repr), Some(span)) = (vx, d.span(Stage::Vxlan)) {
        repr.emit(&mut vxlan::Packet::new_unchecked(&mut copy[span]));
    }
    if let (Some(repr), Some(span)) = (inner_eth, d.span(Stage::InnerEthernet)) {
        repr.emit(&mut ethernet::Frame::new_unchecked(&mut copy[span]));
    }
    if let (Some(repr), Some(span), Some(view)) = (inner_ip, d.span(Stage::InnerIpv4), d.inner_ipv4()) {
        if view.header_len() == ipv4::HEADER_LEN {
            repr.emit(&mut ipv4::Packet::new_unchecked(&mut copy[span]));
        }
    }
    let again = dissect(&copy);
    assert_eq!(again.stop(), d.stop());
    for stage in STAGES {
        assert_eq!(again.span(stage), d.span(stage), "{stage}");
    }
});
