//! Structure-aware: arbitrary `Repr`s (feature `arbitrary`) are emitted into a whole VXLAN frame, which must
//! dissect completely and give the same `Repr`s back.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tweed_wire::dissect::{Config, Stop, dissect_with};
use tweed_wire::ethernet::{self, EtherType};
use tweed_wire::ipv4::{self, Protocol};
use tweed_wire::{udp, vxlan};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    outer_eth: ethernet::Repr,
    outer_ip: ipv4::Repr,
    outer_udp: udp::Repr,
    vxlan: vxlan::Repr,
    inner_eth: ethernet::Repr,
    inner_ip: ipv4::Repr,
    inner_udp: udp::Repr,
    payload: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let Input { mut outer_eth, mut outer_ip, mut outer_udp, vxlan, mut inner_eth, mut inner_ip, inner_udp, payload } =
        input;
    // Make the layers say what follows them, and the outer packet a whole (unfragmented) one.
    outer_eth.ethertype = EtherType::IPV4;
    inner_eth.ethertype = EtherType::IPV4;
    outer_ip.protocol = Protocol::UDP;
    inner_ip.protocol = Protocol::UDP;
    outer_ip.more_frags = false;
    outer_ip.frag_offset = 0;
    inner_ip.more_frags = false;
    inner_ip.frag_offset = 0;
    outer_udp.dst_port = vxlan::LINUX_PORT;
    let payload = &payload[..payload.len().min(1400)];

    let inner_udp_len = udp::HEADER_LEN + payload.len();
    inner_ip.payload_len = inner_udp_len;
    let inner_len = inner_eth.buffer_len() + inner_ip.buffer_len() + inner_udp_len;
    let vxlan_len = vxlan::HEADER_LEN + inner_len;
    outer_ip.payload_len = udp::HEADER_LEN + vxlan_len;
    let total = outer_eth.buffer_len() + outer_ip.buffer_len() + outer_ip.payload_len;

    let mut frame = vec![0u8; total];
    let mut at = 0;
    outer_eth.emit(&mut ethernet::Frame::new_unchecked(&mut frame[at..]));
    at += outer_eth.buffer_len();
    let outer_ip_at = at;
    at += outer_ip.buffer_len();
    let outer_udp_at = at;
    at += udp::HEADER_LEN;
    vxlan.emit(&mut vxlan::Packet::new_unchecked(&mut frame[at..]));
    at += vxlan::HEADER_LEN;
    inner_eth.emit(&mut ethernet::Frame::new_unchecked(&mut frame[at..]));
    at += inner_eth.buffer_len();
    let inner_ip_at = at;
    at += inner_ip.buffer_len();
    frame[at + udp::HEADER_LEN..].copy_from_slice(payload);
    let (isrc, idst) = (inner_ip.src_addr, inner_ip.dst_addr);
    inner_udp.emit(&mut udp::Packet::new_unchecked(&mut frame[at..]), isrc, idst, payload.len(), udp::ChecksumMode::Compute);
    inner_ip.emit(&mut ipv4::Packet::new_unchecked(&mut frame[inner_ip_at..]));
    let (osrc, odst) = (outer_ip.src_addr, outer_ip.dst_addr);
    outer_udp.emit(&mut udp::Packet::new_unchecked(&mut frame[outer_udp_at..]), osrc, odst, vxlan_len, udp::ChecksumMode::Compute);
    outer_ip.emit(&mut ipv4::Packet::new_unchecked(&mut frame[outer_ip_at..]));

    let config = Config { verify_checksums: true, ..Config::DEFAULT };
    let d = dissect_with(&frame, &config);
    assert_eq!(d.stop(), Stop::Complete, "{input_summary}", input_summary = outer_eth);
    assert_eq!(ethernet::Repr::parse(&d.outer_ethernet().unwrap()).unwrap(), outer_eth);
    assert_eq!(ipv4::Repr::parse(&d.outer_ipv4().unwrap(), ipv4::ChecksumCheck::Verify).unwrap(), outer_ip);
    let got_udp = udp::Repr::parse(&d.outer_udp().unwrap(), osrc, odst, udp::ChecksumMode::Compute).unwrap();
    assert_eq!(got_udp, outer_udp);
    assert_eq!(vxlan::Repr::parse(&d.vxlan().unwrap()).unwrap(), vxlan);
    assert_eq!(ethernet::Repr::parse(&d.inner_ethernet().unwrap()).unwrap(), inner_eth);
    assert_eq!(ipv4::Repr::parse(&d.inner_ipv4().unwrap(), ipv4::ChecksumCheck::Verify).unwrap(), inner_ip);
    let inner = d.inner_udp().unwrap();
    assert_eq!(udp::Repr::parse(&inner, isrc, idst, udp::ChecksumMode::Compute).unwrap(), inner_udp);
    assert_eq!(inner.payload(), payload);
});
