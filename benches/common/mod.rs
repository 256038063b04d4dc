//! What the root package's benches share: the kernel capture's frames, a deterministic generator, and the two
//! vxlan nodes (with `peers` more peers each) and the pod frames of the pipeline workloads.
#![allow(dead_code)] // each bench uses a part

static CAPTURE: &[u8] = include_bytes!("../../tests/data/kernel-flannel-vxlan.pcap");

/// The frames of the kernel capture, read by tweed-pcap.
pub(crate) fn capture_frames() -> Vec<&'static [u8]> {
    let reader = tweed_pcap::Reader::new(CAPTURE).expect("the kernel capture has a pcap header");
    reader.map(|r| r.expect("the kernel capture's records are whole").data).collect()
}

/// SplitMix64: the same inputs on every run, so that benches compare like with like.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The subnet of extra peer `k`: 10.0.0.0/24 … 10.39.15.0/24 for 10,000 of them, clear of the nodes' own
/// 10.244.{1,2}.0/24.
pub(crate) fn peer_subnet(k: u32) -> ipnet::Ipv4Net {
    ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(0x0a00_0000 + (k << 8)), 24).unwrap()
}

/// Vxlan node `i` (1 or 2) with pod ports 1 and 2, the other node as a peer, and `peers` more peers.
pub(crate) fn node_builder(i: u8, peers: u32) -> tweed::overlay::NodeBuilder {
    use std::net::Ipv4Addr;
    use tweed::overlay::{Limits, NodeBuilder, PeerConfig, VxlanConfig};
    use tweed::wire::ethernet::MacAddr;

    let other = 3 - i;
    let mut b = NodeBuilder::new(
        format!("10.244.{i}.0/24").parse().unwrap(),
        Ipv4Addr::new(192, 168, 0, i),
        MacAddr::new(2, 0, 0xc0, 0xa8, 0, i),
    )
    .vxlan(VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, i)))
    .pod_ports([1, 2])
    .limits(Limits { max_peers: peers + 16, max_outputs: 1024, ..Limits::default() })
    .peer(
        PeerConfig::new(format!("10.244.{other}.0/24").parse().unwrap(), Ipv4Addr::new(192, 168, 0, other))
            .with_vtep_mac(MacAddr::new(2, 0, 0, 0, 0, other))
            .with_node_mac(MacAddr::new(2, 0, 0xc0, 0xa8, 0, other)),
    );
    for k in 0..peers {
        b = b.peer(
            PeerConfig::new(peer_subnet(k), Ipv4Addr::from(0xac10_0000 + k))
                .with_vtep_mac(MacAddr::from_u64(0x0200_0001_0000 + u64::from(k)))
                .with_node_mac(MacAddr::from_u64(0x0200_0002_0000 + u64::from(k))),
        );
    }
    b
}

/// The MAC of node `node`'s pod 10.244.`node`.2.
pub(crate) fn pod_mac(node: u8) -> tweed::wire::ethernet::MacAddr {
    tweed::wire::ethernet::MacAddr::new(0x0a, 0x58, 10, 244, node, 2)
}

/// A pod frame of `len` bytes (UDP inside IPv4, DF) from 10.244.`node`.2 to `dst`, to its gateway's MAC.
pub(crate) fn pod_frame(node: u8, dst: std::net::Ipv4Addr, len: usize, sport: u16) -> Vec<u8> {
    let gw = tweed::wire::ethernet::MacAddr::new(0x0a, 0x58, 10, 244, node, 1);
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(gw.as_bytes());
    f[6..12].copy_from_slice(pod_mac(node).as_bytes());
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip_len = (len - 14) as u16;
    f[14..34].copy_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 244, node, 2, 0, 0, 0, 0]);
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[30..34].copy_from_slice(&dst.octets());
    let c = tweed::wire::checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    f
}

/// Pod 10.244.`node`.2 asking for its gateway's MAC (a broadcast ARP request).
pub(crate) fn arp_from_pod(node: u8) -> Vec<u8> {
    use std::net::Ipv4Addr;
    use tweed::wire::arp;

    let mut f = vec![0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(pod_mac(node).as_bytes());
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    arp::Repr::request(pod_mac(node), Ipv4Addr::new(10, 244, node, 2), Ipv4Addr::new(10, 244, node, 1))
        .emit(&mut arp::Packet::new_unchecked(&mut f[14..]));
    f
}
