//! `dissect::decode` at its edges: the port table, stacked tags, tunnels nested past the layer table, more
//! problems than the problem table holds, bare IPv4 packets, and every truncation of a deep frame.

use tweed_wire::checksum;
use tweed_wire::dissect::{
    Check, Decoders, Fault, Layer, MAX_LAYERS, MAX_PORTS, MAX_PROBLEMS, PortDecoder, decode, decode_ipv4,
};

/// An IPv4 packet from 10.0.0.1 to 10.0.0.2 with a right header checksum.
fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
    h[2..4].copy_from_slice(&total.to_be_bytes());
    let c = checksum::checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// A UDP datagram with no checksum.
fn udp(dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = vec![0xc0, 0x00];
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

fn eth(etype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    f.extend_from_slice(&etype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// `frame` in VXLAN (VNI `vni`) in UDP to 4789 in IPv4 in Ethernet.
fn in_vxlan(vni: u32, frame: &[u8]) -> Vec<u8> {
    let mut vx = vec![0x08, 0, 0, 0];
    vx.extend_from_slice(&(vni << 8).to_be_bytes());
    vx.extend_from_slice(frame);
    eth(0x0800, &ipv4(17, &udp(4789, &vx)))
}

fn echo() -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0, 0, 7, 0, 1, 0xaa, 0xbb];
    let c = checksum::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

#[test]
fn the_port_table_maps_replaces_and_fills_up() {
    let mut d = Decoders::DEFAULT;
    assert_eq!(
        (d.get(4789), d.get(8472), d.get(8285), d.get(53)),
        (Some(PortDecoder::Vxlan), Some(PortDecoder::Vxlan), Some(PortDecoder::FlannelUdp), None)
    );
    d.apply("8472=data").expect("replace");
    assert_eq!(d.get(8472), Some(PortDecoder::Data));
    for port in 0..(MAX_PORTS - 3) as u16 {
        d.set(1000 + port, PortDecoder::Vxlan).expect("room");
    }
    assert_eq!(d.set(2000, PortDecoder::Vxlan), Err("too many port mappings"));
    assert_eq!(d.apply("4789"), Err("expected PORT=DECODER, e.g. 4789=vxlan"));
    assert_eq!(d.apply("x=vxlan"), Err("the port is not a number from 0 to 65535"));
    assert_eq!(d.apply("1=gre"), Err("unknown decoder: one of vxlan, flannel-udp (or ip), data"));
    // 8472 is data now: the tunnel is not opened.
    let frame = in_vxlan(1, &eth(0x0800, &ipv4(1, &echo())));
    let mut on_8472 = frame.clone();
    on_8472[14 + 20 + 2..14 + 20 + 4].copy_from_slice(&8472u16.to_be_bytes());
    assert_eq!(decode(&on_8472, &d).layers().len(), 3);
    assert_eq!(decode(&on_8472, &Decoders::DEFAULT).layers().len(), 7);
    assert_eq!(decode(&frame, &Decoders::NONE).payload_len(), 8 + 14 + 20 + 10);
}

#[test]
fn stacked_tags_are_each_a_layer() {
    let inner = eth(0x0800, &ipv4(1, &echo()));
    // 802.1ad outer tag (id 10, priority 3), 802.1Q inner tag (id 20, DEI), then IPv4.
    let mut f = inner[..12].to_vec();
    f.extend_from_slice(&[0x88, 0xa8, 0x60, 0x0a, 0x81, 0x00, 0x10, 0x14, 0x08, 0x00]);
    f.extend_from_slice(&inner[14..]);
    let d = decode(&f, &Decoders::DEFAULT);
    let tags: Vec<_> = d
        .layers()
        .iter()
        .filter_map(|l| if let Layer::Vlan(v) = l { Some((v.tpid, v.id, v.priority, v.dei, v.etype)) } else { None })
        .collect();
    assert_eq!(tags, [(0x88a8, 10, 3, false, 0x8100), (0x8100, 20, 0, true, 0x0800)]);
    assert_eq!(
        d.to_string(),
        "02:00:00:00:00:01 > 02:00:00:00:00:02 802.1ad | vlan 10 p 3 | vlan 20 p 0 dei | ip 10.0.0.1 > 10.0.0.2 ttl 64 \
         id 1 len 30 icmp | icmp echo request id 7 seq 1 | data 2B"
    );
    assert!(!d.is_malformed() && !d.has_bad_checksum());
}

#[test]
fn tunnels_nested_past_the_layer_table_stop_at_its_end() {
    // Each VXLAN level adds 4 layers (ethernet, ip, udp, vxlan); five levels and the innermost frame need 23.
    let mut frame = eth(0x0800, &ipv4(1, &echo()));
    for vni in 1..=5 {
        frame = in_vxlan(vni, &frame);
    }
    let d = decode(&frame, &Decoders::DEFAULT);
    assert_eq!(d.layers().len(), MAX_LAYERS);
    let vnis: Vec<u32> =
        d.layers().iter().filter_map(|l| if let Layer::Vxlan(v) = l { Some(v.vni) } else { None }).collect();
    assert_eq!(vnis, [5, 4, 3, 2]);
    assert!(d.problems().is_empty());
}

#[test]
fn more_problems_than_the_table_holds_are_said_to_be_more() {
    // Bad IPv4 checksums at every level of three nested tunnels, and a bad ICMP one inside: five problems.
    let mut frame = eth(0x0800, &ipv4(1, &echo()));
    for vni in 1..=3 {
        frame = in_vxlan(vni, &frame);
    }
    for ip_at in [14, 14 + 50, 14 + 100, 14 + 150] {
        frame[ip_at + 11] ^= 0xff;
    }
    frame[14 + 150 + 20 + 2] ^= 0xff;
    let d = decode(&frame, &Decoders::DEFAULT);
    assert_eq!(d.problems().len(), MAX_PROBLEMS);
    assert!(d.more_problems() && d.has_bad_checksum() && !d.is_malformed());
    assert!(d.problems().iter().all(|p| matches!(p.fault, Fault::BadChecksum { .. })), "{:?}", d.problems());
    assert!(d.to_string().ends_with(" [more problems]"), "{d}");
}

#[test]
fn a_bare_ipv4_packet_decodes_from_its_header() {
    let packet = ipv4(1, &echo());
    let d = decode_ipv4(&packet, packet.len(), &Decoders::DEFAULT);
    assert_eq!(
        d.to_string(),
        "ip 10.0.0.1 > 10.0.0.2 ttl 64 id 1 len 30 icmp | icmp echo request id 7 seq 1 | data 2B"
    );
    assert!(matches!(d.layers()[0], Layer::Ipv4 { ip, quoted: false } if ip.check == Check::Good));
    assert_eq!(decode_ipv4(&[], 0, &Decoders::DEFAULT).to_string(), "[ip header truncated: need 20 bytes, have 0]");
    assert_eq!(decode(&[], &Decoders::DEFAULT).to_string(), "[eth header truncated: need 14 bytes, have 0]");
}

#[test]
fn every_truncation_of_a_deep_frame_is_a_problem_never_a_panic() {
    let frame = in_vxlan(9, &eth(0x0800, &ipv4(1, &echo())));
    let whole = decode(&frame, &Decoders::DEFAULT);
    assert!(whole.problems().is_empty());
    for cut in 0..frame.len() {
        let d = decode(&frame[..cut], &Decoders::DEFAULT);
        // Cut short with nothing to say it was snapped: a header is truncated or a length lies.
        assert!(d.is_malformed(), "cut {cut}: {d}");
        assert!(d.layers().len() <= whole.layers().len());
        let json = d.json().to_string();
        assert!(json.contains("\"malformed\":true"), "{json}");
    }
}
