//! Wire benchmarks: tweed against etherparse and smoltcp on the same frames, in the same criterion groups, so the
//! report shows the ratio directly.
//!
//! - `parse_eth_ipv4_udp/*`: Ethernet → IPv4 → UDP, reading addresses, ports and payload length, on a 64-byte pod
//!   frame and on two frames of the kernel flannel capture (as underlay Ethernet/IPv4/UDP).
//! - `dissect_vxlan/*`: the whole VXLAN frame, outer and inner layers down to the inner transport.
//! - `emit_vxlan_outer`: the 50-byte outer Ethernet/IPv4/UDP/VXLAN header, IPv4 checksum filled.
//! - `checksum/*`: the Internet checksum of 20 and 1500 bytes, against etherparse and the RFC 1071 loop.
//! - `copy_sum/*`: a copy that sums what it copies (`checksum::copy_sum`) against a copy then a sum, for one
//!   1,398-byte TCP segment and for the 46 segments of a 64 KiB TSO frame, each into a buffer of its own.
//!
//! Run: `cargo bench --bench wire`.

mod common;

use std::hint::black_box;
use std::net::Ipv4Addr;

use common::capture_frames;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tweed::wire::dissect::{Stop, dissect};
use tweed::wire::ethernet::{self, EtherType, MacAddr};
use tweed::wire::ipv4::{self, Protocol};
use tweed::wire::{checksum, icmpv4, udp, vxlan};

/// A 64-byte Ethernet/IPv4/UDP frame as a pod sends it (a small DNS-sized query).
fn pod_udp_frame() -> Vec<u8> {
    let payload_len = 64 - 14 - 20 - 8;
    let mut frame = vec![0u8; 64];
    let eth = ethernet::Repr {
        src_addr: MacAddr::new(0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02),
        dst_addr: MacAddr::new(0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x01),
        vlan: None,
        ethertype: EtherType::IPV4,
    };
    eth.emit(&mut ethernet::Frame::new_unchecked(&mut frame[..]));
    let (src, dst) = (Ipv4Addr::new(10, 244, 1, 2), Ipv4Addr::new(10, 244, 2, 3));
    let udp_repr = udp::Repr { src_port: 40000, dst_port: 53 };
    udp_repr.emit(&mut udp::Packet::new_unchecked(&mut frame[34..]), src, dst, payload_len, udp::ChecksumMode::Compute);
    let ip = ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: Protocol::UDP,
        payload_len: 8 + payload_len,
        ttl: 64,
        dscp: 0,
        ecn: 0,
        ident: 0x1234,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    ip.emit(&mut ipv4::Packet::new_unchecked(&mut frame[14..]));
    frame
}

/// What every parser reads, folded into one number the optimiser cannot drop.
fn fold(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, len: usize) -> u64 {
    u64::from(src.to_bits())
        ^ (u64::from(dst.to_bits()) << 1)
        ^ (u64::from(sport) << 32)
        ^ (u64::from(dport) << 48)
        ^ len as u64
}

fn tweed_eth_ipv4_udp(frame: &[u8]) -> Option<u64> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::IPV4 {
        return None;
    }
    let ip = ipv4::Packet::new_checked(eth.payload()).ok()?;
    if ip.protocol() != Protocol::UDP {
        return None;
    }
    let udp = udp::Packet::new_checked(ip.payload()).ok()?;
    Some(fold(ip.src_addr(), ip.dst_addr(), udp.src_port(), udp.dst_port(), udp.payload().len()))
}

fn etherparse_eth_ipv4_udp(frame: &[u8]) -> Option<u64> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let sliced = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(NetSlice::Ipv4(ip)) = sliced.net else { return None };
    let Some(TransportSlice::Udp(udp)) = sliced.transport else { return None };
    let header = ip.header();
    Some(fold(
        header.source_addr(),
        header.destination_addr(),
        udp.source_port(),
        udp.destination_port(),
        udp.payload().len(),
    ))
}

fn smoltcp_eth_ipv4_udp(frame: &[u8]) -> Option<u64> {
    use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, UdpPacket};
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Udp {
        return None;
    }
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    Some(fold(ip.src_addr(), ip.dst_addr(), udp.src_port(), udp.dst_port(), udp.payload().len()))
}

fn bench_parse(c: &mut Criterion) {
    let frames = capture_frames();
    let cases: [(&str, Vec<u8>); 3] = [
        ("pod_udp_64B", pod_udp_frame()),
        ("vxlan_icmp_148B", frames[0].to_vec()),
        ("vxlan_tcp_1514B", frames[23].to_vec()),
    ];
    for (name, frame) in &cases {
        // All three must read the same thing before their speed means anything.
        let expected = tweed_eth_ipv4_udp(frame);
        assert!(expected.is_some(), "{name}");
        assert_eq!(etherparse_eth_ipv4_udp(frame), expected, "{name}: etherparse disagrees");
        assert_eq!(smoltcp_eth_ipv4_udp(frame), expected, "{name}: smoltcp disagrees");

        let mut group = c.benchmark_group(format!("parse_eth_ipv4_udp/{name}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("tweed", |b| b.iter(|| tweed_eth_ipv4_udp(black_box(frame))));
        group.bench_function("etherparse_sliced_packet", |b| b.iter(|| etherparse_eth_ipv4_udp(black_box(frame))));
        group.bench_function("smoltcp", |b| b.iter(|| smoltcp_eth_ipv4_udp(black_box(frame))));
        group.finish();
    }
}

fn tweed_dissect(frame: &[u8]) -> Option<u64> {
    let d = dissect(frame);
    if d.stop() != Stop::Complete {
        return None;
    }
    let ip = d.inner_ipv4()?;
    let vni = d.vxlan()?.vni().get();
    let icmp = d.inner_icmp()?;
    Some(fold(ip.src_addr(), ip.dst_addr(), icmp.echo_ident(), icmp.echo_seq_no(), vni as usize))
}

/// etherparse has no VXLAN: slice the outer frame, check and skip the 8-byte header, slice the inner frame.
fn etherparse_dissect(frame: &[u8]) -> Option<u64> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let outer = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(TransportSlice::Udp(udp)) = outer.transport else { return None };
    if udp.destination_port() != vxlan::LINUX_PORT {
        return None;
    }
    let vx = udp.payload();
    if vx.len() < 8 || vx[0] & 0x08 == 0 {
        return None;
    }
    let vni = u32::from_be_bytes([0, vx[4], vx[5], vx[6]]);
    let inner = SlicedPacket::from_ethernet(&vx[8..]).ok()?;
    let Some(NetSlice::Ipv4(ip)) = inner.net else { return None };
    let Some(TransportSlice::Icmpv4(icmp)) = inner.transport else { return None };
    let header = ip.header();
    let bytes = icmp.slice();
    let (ident, seq) = (u16::from_be_bytes([bytes[4], bytes[5]]), u16::from_be_bytes([bytes[6], bytes[7]]));
    Some(fold(header.source_addr(), header.destination_addr(), ident, seq, vni as usize))
}

/// smoltcp has no VXLAN either: checked views layer by layer, the 8-byte header by hand.
fn smoltcp_dissect(frame: &[u8]) -> Option<u64> {
    use smoltcp::wire::{EthernetFrame, EthernetProtocol, Icmpv4Packet, IpProtocol, Ipv4Packet, UdpPacket};
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Udp {
        return None;
    }
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    if udp.dst_port() != vxlan::LINUX_PORT {
        return None;
    }
    let vx = udp.payload();
    if vx.len() < 8 || vx[0] & 0x08 == 0 {
        return None;
    }
    let vni = u32::from_be_bytes([0, vx[4], vx[5], vx[6]]);
    let inner = EthernetFrame::new_checked(&vx[8..]).ok()?;
    if inner.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let iip = Ipv4Packet::new_checked(inner.payload()).ok()?;
    if iip.next_header() != IpProtocol::Icmp {
        return None;
    }
    let icmp = Icmpv4Packet::new_checked(iip.payload()).ok()?;
    Some(fold(iip.src_addr(), iip.dst_addr(), icmp.echo_ident(), icmp.echo_seq_no(), vni as usize))
}

fn bench_dissect(c: &mut Criterion) {
    let frames = capture_frames();
    let frame = frames[0];
    let expected = tweed_dissect(frame);
    assert!(expected.is_some());
    assert_eq!(etherparse_dissect(frame), expected, "etherparse disagrees");
    assert_eq!(smoltcp_dissect(frame), expected, "smoltcp disagrees");

    let mut group = c.benchmark_group("dissect_vxlan/icmp_148B");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tweed", |b| b.iter(|| tweed_dissect(black_box(frame))));
    group.bench_function("etherparse_sliced_packet_x2", |b| b.iter(|| etherparse_dissect(black_box(frame))));
    group.bench_function("smoltcp", |b| b.iter(|| smoltcp_dissect(black_box(frame))));
    group.finish();

    // The whole capture, TCP frames included (the walk stops before the inner TCP header).
    let mut group = c.benchmark_group("dissect_vxlan/capture_40_frames");
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function("tweed", |b| {
        b.iter(|| {
            frames
                .iter()
                .map(|f| dissect(black_box(f)).span(tweed::wire::dissect::Stage::InnerIpv4).map_or(0, |s| s.end))
                .sum::<usize>()
        })
    });
    group.finish();
}

/// The outer header of one VXLAN packet, as a node sends it to a peer.
struct Outer {
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    src_port: u16,
    ident: u16,
    inner_len: usize,
}

const OUTER: Outer = Outer {
    src_mac: MacAddr::new(0xe2, 0xc6, 0xcd, 0xac, 0x0e, 0xfd),
    dst_mac: MacAddr::new(0x62, 0xf5, 0xf9, 0xf2, 0x75, 0x3e),
    src_ip: Ipv4Addr::new(192, 0, 2, 1),
    dst_ip: Ipv4Addr::new(192, 0, 2, 2),
    src_port: 49028,
    ident: 0x5626,
    inner_len: 98,
};

fn tweed_emit_outer(o: &Outer, out: &mut [u8; 50]) {
    ethernet::Repr { src_addr: o.src_mac, dst_addr: o.dst_mac, vlan: None, ethertype: EtherType::IPV4 }
        .emit(&mut ethernet::Frame::new_unchecked(&mut out[..]));
    ipv4::Repr {
        src_addr: o.src_ip,
        dst_addr: o.dst_ip,
        protocol: Protocol::UDP,
        payload_len: 8 + 8 + o.inner_len,
        ttl: 64,
        dscp: 0,
        ecn: 0,
        ident: o.ident,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
    }
    .emit(&mut ipv4::Packet::new_unchecked(&mut out[14..]));
    udp::Repr { src_port: o.src_port, dst_port: vxlan::LINUX_PORT }.emit_header(&mut out[34..], 8 + o.inner_len);
    vxlan::Repr { vni: vxlan::Vni::FLANNEL }.emit(&mut vxlan::Packet::new_unchecked(&mut out[42..]));
}

fn etherparse_emit_outer(o: &Outer, out: &mut [u8; 50]) {
    use etherparse::{EtherType as EpEtherType, Ethernet2Header, IpNumber, Ipv4Header, UdpHeader};
    let eth = Ethernet2Header { source: o.src_mac.0, destination: o.dst_mac.0, ether_type: EpEtherType::IPV4 };
    out[..14].copy_from_slice(&eth.to_bytes());
    let payload_len = u16::try_from(8 + 8 + o.inner_len).expect("small");
    let mut ip = Ipv4Header::new(payload_len, 64, IpNumber::UDP, o.src_ip.octets(), o.dst_ip.octets()).expect("valid");
    ip.identification = o.ident;
    ip.dont_fragment = false;
    ip.header_checksum = ip.calc_header_checksum();
    out[14..34].copy_from_slice(&ip.to_bytes());
    let udp =
        UdpHeader { source_port: o.src_port, destination_port: vxlan::LINUX_PORT, length: payload_len, checksum: 0 };
    out[34..42].copy_from_slice(&udp.to_bytes());
    out[42..50].copy_from_slice(&[0x08, 0, 0, 0, 0, 0, 1, 0]);
}

fn smoltcp_emit_outer(o: &Outer, out: &mut [u8; 50]) {
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket,
    };
    EthernetRepr {
        src_addr: EthernetAddress(o.src_mac.0),
        dst_addr: EthernetAddress(o.dst_mac.0),
        ethertype: EthernetProtocol::Ipv4,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
    let mut ip = Ipv4Packet::new_unchecked(&mut out[14..]);
    Ipv4Repr {
        src_addr: o.src_ip,
        dst_addr: o.dst_ip,
        next_header: IpProtocol::Udp,
        payload_len: 8 + 8 + o.inner_len,
        hop_limit: 64,
    }
    .emit(&mut ip, &ChecksumCapabilities::default());
    // smoltcp's Repr has no identification and always sets DF: patch both as the kernel sends them.
    ip.set_ident(o.ident);
    ip.set_dont_frag(false);
    ip.fill_checksum();
    let mut udp = UdpPacket::new_unchecked(&mut out[34..]);
    udp.set_src_port(o.src_port);
    udp.set_dst_port(vxlan::LINUX_PORT);
    udp.set_len(u16::try_from(8 + 8 + o.inner_len).expect("small"));
    udp.set_checksum(0);
    out[42..50].copy_from_slice(&[0x08, 0, 0, 0, 0, 0, 1, 0]);
}

fn bench_emit(c: &mut Criterion) {
    let (mut a, mut b, mut s) = ([0u8; 50], [0u8; 50], [0u8; 50]);
    tweed_emit_outer(&OUTER, &mut a);
    etherparse_emit_outer(&OUTER, &mut b);
    smoltcp_emit_outer(&OUTER, &mut s);
    assert_eq!(a, b, "etherparse wrote other bytes");
    assert_eq!(a, s, "smoltcp wrote other bytes");
    // And they are the kernel's, but for the UDP checksum the kernel filled and tweed leaves zero by default.
    let kernel = capture_frames()[0];
    assert_eq!(a[..40], kernel[..40]);
    assert_eq!(a[42..], kernel[42..50]);

    let mut group = c.benchmark_group("emit_vxlan_outer_50B");
    group.throughput(Throughput::Elements(1));
    let mut out = [0u8; 50];
    group.bench_function("tweed", |bench| bench.iter(|| tweed_emit_outer(black_box(&OUTER), black_box(&mut out))));
    group.bench_function("etherparse", |bench| {
        bench.iter(|| etherparse_emit_outer(black_box(&OUTER), black_box(&mut out)))
    });
    group.bench_function("smoltcp", |bench| bench.iter(|| smoltcp_emit_outer(black_box(&OUTER), black_box(&mut out))));
    group.finish();
}

/// RFC 1071 §4.1 as written: 16-bit words into a 32-bit sum (smoltcp's checksum is not public API).
fn naive_checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn bench_checksum(c: &mut Criterion) {
    let data: Vec<u8> = (0..1500u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    for len in [20usize, 1500] {
        let bytes = &data[..len];
        let expected = checksum::checksum(bytes);
        assert_eq!(naive_checksum(bytes), expected);
        // etherparse sums in native byte order; its own headers call `to_be` on the result.
        assert_eq!(etherparse::checksum::Sum16BitWords::new().add_slice(bytes).ones_complement().to_be(), expected);

        let mut group = c.benchmark_group(format!("checksum/{len}B"));
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function("tweed", |b| b.iter(|| checksum::checksum(black_box(bytes))));
        group.bench_function("naive_rfc1071", |b| b.iter(|| naive_checksum(black_box(bytes))));
        group.bench_function("etherparse", |b| {
            b.iter(|| etherparse::checksum::Sum16BitWords::new().add_slice(black_box(bytes)).ones_complement().to_be())
        });
        group.finish();
    }
    // Keep the ICMP error builder honest too: the router's slow path.
    let frame = capture_frames()[0];
    let original = &frame[64..];
    let mut out = [0u8; 128];
    c.bench_function("icmp_error/frag_needed", |b| {
        b.iter(|| {
            icmpv4::emit_error(
                icmpv4::ErrorKind::FragRequired { next_hop_mtu: 1450 },
                Ipv4Addr::new(10, 244, 1, 1),
                black_box(original),
                &mut out,
            )
        })
    });
}

/// A copy followed by a pass that sums the copy: what cutting a TSO frame into buffers did before `copy_sum`.
fn copy_then_sum(dst: &mut [u8], src: &[u8]) -> u16 {
    dst.copy_from_slice(src);
    checksum::sum(dst)
}

fn bench_copy_sum(c: &mut Criterion) {
    // A TSO frame's payload as the read left it (behind 12 + 66 bytes of headers: an odd-looking offset), cut into
    // segments of 1,398 bytes, each copied behind 66 bytes of headers in a 2 KiB buffer of its own.
    const MSS: usize = 1398;
    let frame: Vec<u8> = (0..78 + 64_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let payload = &frame[78..];
    let mut bufs = vec![[0u8; 2048]; payload.len().div_ceil(MSS)];
    for (i, chunk) in payload.chunks(MSS).enumerate() {
        assert_eq!(checksum::copy_sum(&mut bufs[i][66..66 + chunk.len()], chunk), checksum::sum(chunk));
    }
    let mut group = c.benchmark_group(format!("copy_sum/{MSS}B"));
    group.throughput(Throughput::Bytes(MSS as u64));
    let one = &payload[..MSS];
    group.bench_function("copy_sum", |b| b.iter(|| checksum::copy_sum(&mut bufs[0][66..66 + MSS], black_box(one))));
    group.bench_function("copy_then_sum", |b| b.iter(|| copy_then_sum(&mut bufs[0][66..66 + MSS], black_box(one))));
    group.finish();
    let mut group = c.benchmark_group("copy_sum/64KiB_in_segments");
    group.throughput(Throughput::Bytes(payload.len() as u64));
    let run = |bufs: &mut [[u8; 2048]], f: fn(&mut [u8], &[u8]) -> u16| {
        let mut acc = 0u16;
        for (buf, chunk) in bufs.iter_mut().zip(black_box(payload).chunks(MSS)) {
            acc ^= f(&mut buf[66..66 + chunk.len()], chunk);
        }
        acc
    };
    group.bench_function("copy_sum", |b| b.iter(|| run(&mut bufs, checksum::copy_sum)));
    group.bench_function("copy_then_sum", |b| b.iter(|| run(&mut bufs, copy_then_sum)));
    group.finish();
}

criterion_group!(benches, bench_parse, bench_dissect, bench_emit, bench_checksum, bench_copy_sum);
criterion_main!(benches);
