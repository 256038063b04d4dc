//! Byte compatibility with the Linux kernel's `flannel.1`, against the capture in `tests/data` (node 1 192.0.2.1,
//! node 2 192.0.2.2, VTEP MACs 02:00:00:00:00:01/02, pods 10.244.1.2 and 10.244.2.2, VNI 1, port 8472, outer UDP
//! checksum filled by the kernel).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use tweed_overlay::{Instant, Node, NodeBuilder, Outputs, PeerConfig, Verdict, VxlanConfig};
use tweed_packet::{Batch, Pool, PoolConfig, PortId};
use tweed_wire::ethernet::MacAddr;
use tweed_wire::{arp, checksum, ipv4};

const PCAP: &[u8] = include_bytes!("../../../tests/data/kernel-flannel-vxlan.pcap");
const ETH_MAC: [MacAddr; 2] =
    [MacAddr::new(0xe2, 0xc6, 0xcd, 0xac, 0x0e, 0xfd), MacAddr::new(0x62, 0xf5, 0xf9, 0xf2, 0x75, 0x3e)];
const POD_MAC: [MacAddr; 2] = [MacAddr::new(0x0a, 0x58, 10, 244, 1, 2), MacAddr::new(0x0a, 0x58, 10, 244, 2, 2)];

fn frames() -> Vec<Vec<u8>> {
    let reader = tweed_pcap::Reader::new(PCAP).expect("a pcap header");
    reader.map(|r| r.expect("a whole record").data.to_vec()).collect()
}

/// Node `i` (1 or 2) as flannel configures it, with the outer UDP checksum filled as the kernel does.
fn node(i: u8) -> Node {
    let j = 3 - i;
    NodeBuilder::new(
        format!("10.244.{i}.0/24").parse().unwrap(),
        Ipv4Addr::new(192, 0, 2, i),
        ETH_MAC[usize::from(i - 1)],
    )
    .vxlan(VxlanConfig { udp_checksum: true, ..VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, i)) })
    .pod_ports([1])
    .peer(
        PeerConfig::new(format!("10.244.{j}.0/24").parse().unwrap(), Ipv4Addr::new(192, 0, 2, j))
            .with_vtep_mac(MacAddr::new(2, 0, 0, 0, 0, j))
            .with_node_mac(ETH_MAC[usize::from(j - 1)]),
    )
    .build()
    .unwrap()
}

fn run(node: &mut Node, pool: &mut Pool, frames: &[(PortId, Vec<u8>)]) -> Vec<(Vec<u8>, Verdict)> {
    let mut batch = Batch::new(64);
    let mut out = Outputs::new(256);
    for (port, f) in frames {
        let mut b = pool.get().unwrap();
        b.extend_from_slice(f).unwrap();
        b.meta_mut().ingress = *port;
        batch.push(b).unwrap();
    }
    node.process(Instant::from_secs(1), pool, &mut batch, &mut out);
    out.drain()
        .map(|(b, v)| {
            let bytes = b.data().to_vec();
            pool.put(b);
            (bytes, v)
        })
        .collect()
}

/// The node learns its pod from the pod's ARP request for the gateway.
fn learn_pod(node: &mut Node, pool: &mut Pool, i: u8) {
    let mac = POD_MAC[usize::from(i - 1)];
    let mut f = vec![0xff; 6];
    f.extend_from_slice(mac.as_bytes());
    f.extend_from_slice(&[0x08, 0x06]);
    f.resize(42, 0);
    arp::Repr::request(mac, Ipv4Addr::new(10, 244, i, 2), Ipv4Addr::new(10, 244, i, 1))
        .emit(&mut arp::Packet::new_unchecked(&mut f[14..]));
    let out = run(node, pool, &[(PortId(1), f)]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, Verdict::Port(PortId(1)));
}

/// The frame the pod sent for the inner packet of `frame`: pod MAC → gateway MAC, TTL one higher.
fn pod_frame(node: &Node, i: u8, frame: &[u8]) -> Vec<u8> {
    let mut f = node.config().gateway_mac().as_bytes().to_vec();
    f.extend_from_slice(POD_MAC[usize::from(i - 1)].as_bytes());
    f.extend_from_slice(&frame[64..]); // ethertype + inner IPv4 (outer 50 + inner MACs 12 + 2)
    f.drain(12..14);
    let mut f = [&f[..12], &[0x08, 0x00][..], &frame[64..]].concat();
    let mut ip = ipv4::Packet::new_checked(&mut f[14..]).unwrap();
    ip.set_ttl(ip.ttl() + 1);
    ip.fill_checksum();
    f
}

#[test]
fn test_encap_matches_kernel() {
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let mut nodes = [node(1), node(2)];
    for i in 1..=2 {
        learn_pod(&mut nodes[usize::from(i - 1)], &mut pool, i);
    }
    let mut ports: HashMap<Vec<u8>, (u16, u16)> = HashMap::new();
    let mut compared = 0;
    for frame in frames() {
        if frame.len() < 64 || frame[12..14] != [0x08, 0x00] || frame[23] != 17 || frame[36..38] != [0x21, 0x18] {
            continue;
        }
        let i = frame[29]; // outer source 192.0.2.i
        let node = &mut nodes[usize::from(i - 1)];
        let input = pod_frame(node, i, &frame);
        let out = run(node, &mut pool, &[(PortId(1), input)]);
        assert_eq!(out.len(), 1);
        let (mut ours, verdict) = out.into_iter().next().unwrap();
        assert_eq!(
            verdict,
            Verdict::Underlay { dst: (Ipv4Addr::new(192, 0, 2, 3 - i), 8472).into(), payload_offset: 42 }
        );
        assert_eq!(ours.len(), frame.len());
        // Checksums right as they are.
        assert!(checksum::verify(&ours[14..34]));
        let udp_len = u16::from_be_bytes([ours[38], ours[39]]);
        let pseudo = checksum::pseudo_header_ipv4(
            ours[26..30].try_into().unwrap(),
            ours[30..34].try_into().unwrap(),
            17,
            udp_len,
        );
        assert_eq!(checksum::sum_with(pseudo, &ours[34..]), 0xffff);
        // Ports by rule: in the kernel's range, one per inner flow (addresses, protocol, ports), as the kernel's.
        let sport = u16::from_be_bytes([ours[34], ours[35]]);
        assert!((32768..=60999).contains(&sport));
        let transport: &[u8] = if matches!(frame[73], 6 | 17) { &frame[84..88] } else { &[] };
        let flow = [&frame[76..84], &frame[73..74], transport].concat();
        let kernel_sport = u16::from_be_bytes([frame[34], frame[35]]);
        let seen = ports.entry(flow).or_insert((sport, kernel_sport));
        assert_eq!(*seen, (sport, kernel_sport), "one flow, one port");
        // Identification and source port by rule: patch the kernel's values in (checksums incrementally), then the
        // frames must be equal byte for byte.
        let (our_id, kernel_id) =
            (u16::from_be_bytes([ours[18], ours[19]]), u16::from_be_bytes([frame[18], frame[19]]));
        ours[18..20].copy_from_slice(&kernel_id.to_be_bytes());
        let c = checksum::update16(u16::from_be_bytes([ours[24], ours[25]]), our_id, kernel_id);
        ours[24..26].copy_from_slice(&c.to_be_bytes());
        ours[34..36].copy_from_slice(&kernel_sport.to_be_bytes());
        let c = checksum::update16(u16::from_be_bytes([ours[40], ours[41]]), sport, kernel_sport);
        ours[40..42].copy_from_slice(&c.to_be_bytes());
        assert_eq!(ours, frame, "frame from node {i} differs");
        compared += 1;
    }
    assert!(compared >= 20, "only {compared} frames compared");
}

#[test]
fn test_decap_accepts_kernel_frames() {
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let mut nodes = [node(1), node(2)];
    for i in 1..=2 {
        learn_pod(&mut nodes[usize::from(i - 1)], &mut pool, i);
    }
    let mut delivered = 0;
    for frame in frames() {
        if frame.len() < 64 || frame[12..14] != [0x08, 0x00] || frame[23] != 17 || frame[36..38] != [0x21, 0x18] {
            continue;
        }
        let to = frame[33]; // outer destination 192.0.2.to
        let node = &mut nodes[usize::from(to - 1)];
        let out = run(node, &mut pool, &[(PortId(0), frame.clone())]);
        assert_eq!(out.len(), 1, "{:?}", node.counters().nonzero_drops().collect::<Vec<_>>());
        let (ours, verdict) = &out[0];
        assert_eq!(*verdict, Verdict::Port(PortId(1)));
        assert_eq!(&ours[0..6], POD_MAC[usize::from(to - 1)].as_bytes());
        assert_eq!(&ours[6..12], node.config().gateway_mac().as_bytes());
        // The inner packet, TTL one lower, checksum patched.
        let mut expect = frame[64..].to_vec();
        let mut ip = ipv4::Packet::new_checked(&mut expect[..]).unwrap();
        ip.set_ttl(ip.ttl() - 1);
        ip.fill_checksum();
        assert_eq!(&ours[12..14], &[0x08, 0x00]);
        assert_eq!(&ours[14..], &expect[..]);
        delivered += 1;
    }
    assert!(delivered >= 20);
    for n in &nodes {
        assert_eq!(n.counters().total_drops(), 0);
    }
}
