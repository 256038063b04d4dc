use super::cbpf::run;
use super::*;

/// A deterministic stream of pseudo-random words (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// An IPv4 packet of protocol `proto` from `src:sport` to `dst:dport`, `frag` in its flags/offset field.
fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16, frag: u16) -> Vec<u8> {
    let mut p = vec![0u8; 28];
    p[0] = 0x45;
    p[6..8].copy_from_slice(&frag.to_be_bytes());
    p[9] = proto;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p
}

/// The UDP payload that carries `ip` with `steering`'s framing (VXLAN: its header and an Ethernet header).
fn payload(steering: Steering, ip: &[u8], ethertype: u16) -> Vec<u8> {
    let mut p = match steering {
        Steering::InnerFlow { offset, ethernet: true } => {
            let mut p = vec![0u8; usize::from(offset) + ETH_LEN];
            p[usize::from(offset) + 12..][..2].copy_from_slice(&ethertype.to_be_bytes());
            p
        }
        Steering::InnerFlow { offset, ethernet: false } => vec![0u8; usize::from(offset)],
        Steering::Kernel => Vec::new(),
    };
    p.extend_from_slice(ip);
    p
}

fn random_packet(rng: &mut Rng, steering: Steering) -> Vec<u8> {
    let proto = [6, 17, 1, 132][rng.below(4) as usize];
    let frag = [0, 0, 0x4000, 0x2000, 0x0010, 0x2001][rng.below(6) as usize];
    let (s, d) = (rng.next() as u32, rng.next() as u32);
    let mut ip = ipv4(s.to_be_bytes(), d.to_be_bytes(), proto, rng.next() as u16, rng.next() as u16, frag);
    match rng.below(8) {
        // Options (a longer header), or a header length field that lies (below 20, or beyond the packet).
        0 => ip[0] = 0x46,
        1 => ip[0] = 0x41,
        2 => ip[0] = 0x4f,
        3 => ip[0] = 0x65,
        _ => {}
    }
    let ethertype = if rng.below(8) == 0 { 0x86dd } else { 0x0800 };
    let mut p = payload(steering, &ip, ethertype);
    if rng.below(4) == 0 {
        let len = rng.below(p.len() as u64 + 1) as usize;
        p.truncate(len);
    }
    p
}

/// The program and its Rust twin agree on every datagram: well-formed, fragmented, with options, lying about its
/// header length, not IPv4, truncated at every length.
#[test]
fn program_matches_index() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for steering in [Steering::VXLAN, Steering::FLANNEL_UDP, Steering::InnerFlow { offset: 3, ethernet: false }] {
        for n in [2, 3, 4, 7, MAX_GROUP] {
            let prog = steering.program(n).unwrap();
            for _ in 0..2000 {
                let p = random_packet(&mut rng, steering);
                let want = steering.index(&p, n);
                assert!(want < n);
                assert_eq!(run(&prog, &p), Some(want as u32), "{steering:?} n={n} {p:02x?}");
            }
        }
    }
}

#[test]
fn no_program_without_choice() {
    assert_eq!(Steering::Kernel.program(4), None);
    assert_eq!(Steering::VXLAN.program(1), None);
    assert_eq!(Steering::VXLAN.program(0), None);
    assert_eq!(Steering::Kernel.index(&[0x45; 64], 4), 0);
}

#[test]
fn both_directions_alike() {
    let mut rng = Rng(77);
    for _ in 0..1000 {
        let (a, b) = ((rng.next() as u32).to_be_bytes(), (rng.next() as u32).to_be_bytes());
        let (pa, pb) = (rng.next() as u16, rng.next() as u16);
        let proto = [6, 17, 1][rng.below(3) as usize];
        let there = payload(Steering::VXLAN, &ipv4(a, b, proto, pa, pb, 0), 0x0800);
        let back = payload(Steering::VXLAN, &ipv4(b, a, proto, pb, pa, 0), 0x0800);
        for n in [2, 3, 8] {
            assert_eq!(Steering::VXLAN.index(&there, n), Steering::VXLAN.index(&back, n));
        }
    }
}

#[test]
fn hash_values() {
    let tcp = ipv4([10, 1, 0, 2], [10, 2, 0, 3], 6, 40000, 5201, 0);
    assert_eq!(inner_flow_hash(&tcp), Some(0x0a01_0002 ^ 0x0a02_0003 ^ 40000 ^ 5201));
    let icmp = ipv4([10, 1, 0, 2], [10, 2, 0, 3], 1, 40000, 5201, 0);
    assert_eq!(inner_flow_hash(&icmp), Some(0x0a01_0002 ^ 0x0a02_0003));
    // DF alone is not a fragment; more-fragments or an offset is, and loses the ports.
    let df = ipv4([10, 1, 0, 2], [10, 2, 0, 3], 17, 40000, 5201, 0x4000);
    assert_eq!(inner_flow_hash(&df), inner_flow_hash(&tcp));
    let first = ipv4([10, 1, 0, 2], [10, 2, 0, 3], 17, 40000, 5201, 0x2000);
    assert_eq!(inner_flow_hash(&first), Some(0x0a01_0002 ^ 0x0a02_0003));
    assert_eq!(inner_flow_hash(&tcp[..23]), None);
    assert_eq!(inner_flow_hash(&[0x60; 40]), None);
    assert_eq!(inner_flow_hash(&[]), None);
    // Socket 0 for what the program cannot read: ARP in VXLAN, a short datagram.
    assert_eq!(Steering::VXLAN.index(&payload(Steering::VXLAN, &tcp, 0x0806), 4), 0);
    assert_eq!(Steering::VXLAN.index(&[0; 10], 4), 0);
    // Pinned, so that a change of the mix is a visible change of where flows go.
    assert_eq!(
        Steering::FLANNEL_UDP.index(&tcp, 2),
        ((0x0a03_0001u32 ^ 40000 ^ 5201).wrapping_mul(MIX) >> 16) as usize % 2
    );
}

/// Consecutive source ports (as `iperf3 -P 8` opens them) spread over the group.
#[test]
fn flows_spread() {
    for n in [2usize, 3, 4] {
        let mut count = vec![0usize; n];
        for port in 40000..40256 {
            let p = payload(Steering::VXLAN, &ipv4([10, 1, 0, 2], [10, 2, 0, 3], 6, port, 5201, 0), 0x0800);
            count[Steering::VXLAN.index(&p, n)] += 1;
        }
        let fair = 256 / n;
        assert!(count.iter().all(|c| c.abs_diff(fair) <= fair / 4), "n={n}: {count:?}");
    }
}

/// The offsets match what each backend's encapsulation puts before the inner IPv4 header.
#[test]
fn backends() {
    use tweed_overlay::{BackendConfig, Encapsulation, Flannel, UdpConfig, VxlanConfig};
    let vxlan = BackendConfig::Vxlan(VxlanConfig::new([2, 0, 0, 0, 0, 1].into()));
    let udp = BackendConfig::Udp(UdpConfig::default());
    for (backend, steering) in [(vxlan, Steering::VXLAN), (udp, Steering::FLANNEL_UDP)] {
        assert_eq!(Steering::for_backend(&backend), steering);
        let encap = Flannel::from(&backend);
        assert_eq!(steering.ipv4_offset(), Some(encap.header_len()), "{backend:?}");
    }
    assert_eq!(Steering::for_backend(&BackendConfig::HostGw), Steering::Kernel);
}
