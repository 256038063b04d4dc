//! The topology the `node` target runs in, and the frames it builds from the input's specs: right by default
//! (addresses of known pods and peers, correct lengths and checksums, the backend's encapsulation), wrong where
//! the spec says, so that the fuzzer reaches routing, ARP, ICMP and encapsulation, not only the first check.
//!
//! The node is node 1 of the kernel capture `tests/data/kernel-flannel-vxlan.pcap` (192.0.2.1, pod subnet
//! 10.244.1.0/24, VTEP 02:00:00:00:00:01) and candidate peer 0 is its node 2, so the capture's frames from node 2
//! are valid underlay input (the seeds use them).

use core::net::Ipv4Addr;

use tweed_wire::checksum;

use crate::input::{Addr, ArpSpec, IpSpec, L4, MacSel, Tunnelled, Tweak};

pub const UNDERLAY_PORT: u16 = 0;
pub const SOCKET_PORT: u16 = 100;
pub const HOST_PORT: u16 = 101;
/// Candidate peers: 10.244.{2..=7}.0/24.
pub const CANDIDATES: u8 = 6;
/// Local pod addresses (the first `pods` of them have a port).
pub const POD_ADDRS: u8 = 8;
pub const VXLAN_PORT: u16 = 8472;
pub const UDP_PORT: u16 = 8285;
pub const VNI: u32 = 1;

pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const NODE_MAC: [u8; 6] = [0xe2, 0xc6, 0xcd, 0xac, 0x0e, 0xfd];
pub const VTEP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const GW_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 1);
pub const GW_MAC: [u8; 6] = [0x0a, 0x58, 10, 244, 1, 1];
pub const UNDERLAY_GW_MAC: [u8; 6] = [2, 0, 0xc0, 0, 2, 0xfe];

/// The backend, as the frame builders need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Vxlan,
    Udp,
    HostGw,
}

/// Candidate peer `i`'s right configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cand {
    pub n: u8,
    pub node_ip: Ipv4Addr,
    pub node_mac: [u8; 6],
    pub vtep_mac: [u8; 6],
}

pub fn cand(i: u8) -> Cand {
    let i = i % CANDIDATES;
    let n = i + 2;
    // Candidate 0 is node 2 of the kernel capture.
    let node_mac = if n == 2 { [0x62, 0xf5, 0xf9, 0xf2, 0x75, 0x3e] } else { [2, 0, 0xc0, 0, 2, n] };
    Cand { n, node_ip: Ipv4Addr::new(192, 0, 2, n), node_mac, vtep_mac: [2, 0, 0, 0, 0, n] }
}

pub fn pod_ip(k: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, 1, 2 + k % POD_ADDRS)
}

pub fn pod_mac(k: u8) -> [u8; 6] {
    [0x0a, 0x58, 10, 244, 1, 2 + k % POD_ADDRS]
}

/// A peer as the node has it now (its node address and MACs may have been changed by `update_peer`).
#[derive(Clone, Copy, Debug)]
pub struct PeerNow {
    pub node_ip: Ipv4Addr,
    pub node_mac: Option<[u8; 6]>,
    pub vtep_mac: Option<[u8; 6]>,
}

/// What the builders need to know about the node.
pub struct Ctx {
    pub kind: Kind,
    /// Per candidate: the peer as the node has it, if it has it.
    pub peers: [Option<PeerNow>; CANDIDATES as usize],
}

impl Ctx {
    fn peer(&self, i: u8) -> PeerNow {
        let c = cand(i);
        self.peers[usize::from(i % CANDIDATES)].unwrap_or(PeerNow {
            node_ip: c.node_ip,
            node_mac: Some(c.node_mac),
            vtep_mac: Some(c.vtep_mac),
        })
    }

    pub fn mac(&self, sel: MacSel, right: [u8; 6]) -> [u8; 6] {
        match sel {
            MacSel::Own => right,
            MacSel::Gateway => GW_MAC,
            MacSel::Pod(k) => pod_mac(k),
            MacSel::Broadcast => [0xff; 6],
            MacSel::Multicast(x) => [0x01, 0x00, 0x5e, 0, 0, x],
            MacSel::Zero => [0; 6],
            MacSel::OurVtep => VTEP_MAC,
            MacSel::OurNode => NODE_MAC,
            MacSel::PeerVtep(i) => self.peer(i).vtep_mac.unwrap_or(cand(i).vtep_mac),
            MacSel::PeerNode(i) => self.peer(i).node_mac.unwrap_or(cand(i).node_mac),
            MacSel::Any(m) => m,
        }
    }

    pub fn addr(&self, sel: Addr, right: Ipv4Addr) -> Ipv4Addr {
        match sel {
            Addr::Own => right,
            Addr::Gateway => GW_IP,
            Addr::NodeIp => NODE_IP,
            Addr::Pod(k) => pod_ip(k),
            Addr::Remote { peer, host } => Ipv4Addr::new(10, 244, cand(peer).n, host),
            Addr::PeerNode(i) => self.peer(i).node_ip,
            Addr::Martian(n) => match n % 5 {
                0 => Ipv4Addr::new(0, 1, 2, 3),
                1 => Ipv4Addr::new(127, 0, 0, 1),
                2 => Ipv4Addr::new(224, 0, 0, 1),
                3 => Ipv4Addr::new(240, 0, 0, 1),
                _ => Ipv4Addr::BROADCAST,
            },
            Addr::SubnetBroadcast => Ipv4Addr::new(10, 244, 1, 255),
            Addr::Any(a) => Ipv4Addr::from(a),
        }
    }

    /// An IPv4 packet from `spec`, with `src`/`dst` for the spec's `Own`.
    pub fn ip(&self, spec: &IpSpec, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let src = self.addr(spec.src, src);
        let dst = self.addr(spec.dst, dst);
        let opts = if spec.flags & 8 != 0 { 4 } else { 0 };
        let hl = 20 + opts;
        let payload = usize::from(spec.len % 1700);
        let mut p = vec![0u8; hl];
        let (proto, l4) = match spec.l4 {
            L4::EchoRequest { ident, seq } => (1, icmp(8, 0, [ident.to_be_bytes(), seq.to_be_bytes()], payload)),
            L4::EchoReply => (1, icmp(0, 0, [[0x40, 0x62], [0, 1]], payload)),
            L4::Udp { sport, dport } => (17, transport(17, src, dst, sport, dport, 0, payload)),
            L4::Tcp { sport, dport, flags } => (6, transport(6, src, dst, sport, dport, flags, payload)),
            L4::IcmpError { msg_type, code, quoted_proto } => {
                // The quoted packet went from `dst` to `src`: its header and 8 bytes.
                let mut q = vec![0u8; 28];
                q[..20].copy_from_slice(&header(20, 28, 0, 64, quoted_proto, dst, src));
                q.extend(core::iter::repeat_n(0x5a, payload.min(64)));
                let mut m = vec![msg_type, code, 0, 0, 0, 0, 0x05, 0x7a];
                m.extend_from_slice(&q);
                let c = checksum::checksum(&m);
                m[2..4].copy_from_slice(&c.to_be_bytes());
                (1, m)
            }
            L4::Other(proto) => (proto, pattern(payload)),
        };
        let total = hl + l4.len();
        let mut frag = 0u16;
        if spec.flags & 1 != 0 {
            frag |= 0x4000;
        }
        if spec.flags & 2 != 0 {
            frag |= 0x2000;
        }
        if spec.flags & 4 != 0 {
            frag |= 185;
        }
        let claimed = if spec.flags & 32 != 0 { total + 8 } else { total };
        p[..20].copy_from_slice(&header(hl, claimed, frag, spec.ttl, proto, src, dst));
        if opts != 0 {
            // NOP NOP NOP EOL.
            p[20..24].copy_from_slice(&[1, 1, 1, 0]);
        }
        let mut c = checksum::checksum(&p[..hl]);
        if spec.flags & 16 != 0 {
            c ^= 0x0101;
        }
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(&l4);
        if spec.flags & 64 != 0 {
            p.extend_from_slice(&[0; 6]);
        }
        tweak(&mut p, spec.tweak);
        p
    }

    /// An ARP frame from pod `k`.
    pub fn arp(&self, k: u8, a: &ArpSpec) -> Vec<u8> {
        let request = a.op != 2;
        let own = pod_mac(k);
        let eth_dst = self.mac(a.eth_dst, if request { [0xff; 6] } else { GW_MAC });
        let mut f = eth(eth_dst, own, 0x0806);
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
        f.extend_from_slice(&a.op.to_be_bytes());
        f.extend_from_slice(&self.mac(a.sender_mac, own));
        f.extend_from_slice(&self.addr(a.sender_ip, pod_ip(k)).octets());
        f.extend_from_slice(&self.mac(a.target_mac, if request { [0; 6] } else { GW_MAC }));
        f.extend_from_slice(&self.addr(a.target_ip, GW_IP).octets());
        tweak(&mut f, a.tweak);
        f
    }

    /// A packet from candidate peer `t.peer % 8` (6 and 7 are strangers): a whole underlay frame, or (`datagram`)
    /// the payload a UDP socket gives, with the sender's address.
    pub fn tunnelled(&self, t: &Tunnelled, datagram: bool) -> (Vec<u8>, Ipv4Addr) {
        let i = t.peer % 8;
        let (peer_ip, peer_node_mac, peer_vtep, n) = if i < CANDIDATES {
            let p = self.peer(i);
            let c = cand(i);
            (p.node_ip, p.node_mac.unwrap_or(c.node_mac), p.vtep_mac.unwrap_or(c.vtep_mac), c.n)
        } else {
            (Ipv4Addr::new(192, 0, 2, 200 + i), [2, 0, 0xc0, 0, 2, 200 + i], [2, 0, 0, 0, 0, 200 + i], 200 + i)
        };
        let inner = self.ip(&t.inner, Ipv4Addr::new(10, 244, n, 2), pod_ip(0));
        // The UDP payload: VXLAN and the inner Ethernet frame, or the IP packet.
        let mut payload = Vec::with_capacity(inner.len() + 22);
        if self.kind == Kind::Vxlan {
            let flags = if t.outer & 32 != 0 { 0x0c } else { 0x08 };
            let vni = if t.outer & 16 != 0 { if t.vni & 0xff_ffff == VNI { VNI + 1 } else { t.vni } } else { VNI };
            payload.extend_from_slice(&[flags, 0, 0, 0]);
            payload.extend_from_slice(&(vni << 8).to_be_bytes());
            let dst = if t.inner_eth & 2 != 0 { GW_MAC } else { VTEP_MAC };
            let src = if t.inner_eth & 1 != 0 { [2, 0, 0, 0, 0, 0x77] } else { peer_vtep };
            let ethertype = if t.inner_eth & 4 != 0 { 0x86dd } else { 0x0800 };
            payload.extend_from_slice(&eth(dst, src, ethertype));
        }
        payload.extend_from_slice(&inner);
        if datagram {
            tweak(&mut payload, t.tweak);
            return (payload, peer_ip);
        }
        let dst_mac = if t.outer & 1 != 0 { [2, 0, 0, 0, 0x99, 0x99] } else { NODE_MAC };
        let mut f = eth(dst_mac, peer_node_mac, 0x0800);
        if self.kind == Kind::HostGw {
            f.extend_from_slice(&payload);
            tweak(&mut f, t.tweak);
            return (f, peer_ip);
        }
        let dst_ip = if t.outer & 2 != 0 { Ipv4Addr::new(192, 0, 2, 99) } else { NODE_IP };
        let port = if self.kind == Kind::Vxlan { VXLAN_PORT } else { UDP_PORT };
        let dport = if t.outer & 8 != 0 { 4789 } else { port };
        let proto = if t.outer & 128 != 0 { 6 } else { 17 };
        let frag = if t.outer & 4 != 0 { 0x2000 } else { 0 };
        let udp_len = 8 + payload.len();
        let mut ip = header(20, 20 + udp_len, frag, 64, proto, peer_ip, dst_ip).to_vec();
        let c = checksum::checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        let mut udp = Vec::with_capacity(udp_len);
        udp.extend_from_slice(&40000u16.to_be_bytes());
        udp.extend_from_slice(&dport.to_be_bytes());
        udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(&payload);
        if t.outer & 64 != 0 || t.inner_eth & 8 != 0 {
            let pseudo = checksum::pseudo_header_ipv4(peer_ip.octets(), dst_ip.octets(), 17, udp_len as u16);
            let mut c = !checksum::sum_with(pseudo, &udp);
            if c == 0 {
                c = 0xffff;
            }
            if t.inner_eth & 8 != 0 {
                c ^= 0x8000;
            }
            udp[6..8].copy_from_slice(&c.to_be_bytes());
        }
        f.extend_from_slice(&udp);
        tweak(&mut f, t.tweak);
        (f, peer_ip)
    }
}

pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(1600);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// An IPv4 header without options, checksum zero.
fn header(hl: usize, total: usize, frag: u16, ttl: u8, proto: u8, src: Ipv4Addr, dst: Ipv4Addr) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = 0x40 | (hl / 4) as u8;
    h[2..4].copy_from_slice(&(total.min(0xffff) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[8] = ttl;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    h
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| i as u8).collect()
}

fn icmp(msg_type: u8, code: u8, rest: [[u8; 2]; 2], payload: usize) -> Vec<u8> {
    let mut m = vec![msg_type, code, 0, 0, rest[0][0], rest[0][1], rest[1][0], rest[1][1]];
    m.extend(pattern(payload));
    let c = checksum::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// A UDP datagram or a TCP segment (no options) with a right checksum.
fn transport(proto: u8, src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, flags: u8, payload: usize) -> Vec<u8> {
    let hl = if proto == 6 { 20 } else { 8 };
    let mut m = vec![0u8; hl];
    m[0..2].copy_from_slice(&sport.to_be_bytes());
    m[2..4].copy_from_slice(&dport.to_be_bytes());
    m.extend(pattern(payload));
    let len = m.len() as u16;
    let csum_at = if proto == 6 {
        m[12] = 5 << 4;
        m[13] = flags;
        m[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
        16
    } else {
        m[4..6].copy_from_slice(&len.to_be_bytes());
        6
    };
    let c = !checksum::sum_with(checksum::pseudo_header_ipv4(src.octets(), dst.octets(), proto, len), &m);
    m[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    m
}

pub fn tweak(bytes: &mut Vec<u8>, t: Tweak) {
    match t {
        Tweak::None => {}
        Tweak::Xor { at, val } => {
            if !bytes.is_empty() {
                let i = usize::from(at) % bytes.len();
                bytes[i] ^= val;
            }
        }
        Tweak::Truncate(n) => bytes.truncate(usize::from(n) % (bytes.len() + 1)),
        Tweak::Extend(n) => bytes.extend(core::iter::repeat_n(0xa5, usize::from(n))),
    }
}
