//! An in-memory cluster: nodes of the seeds' topology, pods with a tiny IP stack (ARP, ICMP echo, UDP echo), and
//! a wire that carries each output to where its verdict sends it, hop by hop.
#![allow(dead_code, unreachable_pub)]

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

use tweed_overlay::{BackendConfig, Node, NodeBuilder, Outputs, PeerConfig, UdpConfig, Verdict, VxlanConfig};
use tweed_packet::{Batch, PacketBuf, Pool, PoolConfig, PortId};
use tweed_switch::Instant;
use tweed_wire::ethernet::MacAddr;
use tweed_wire::{arp, checksum, icmpv4, ipv4, udp};

pub const UNDERLAY: PortId = PortId(0);
/// The port of UDP payloads when the cluster runs as a UDP-socket driver would ([`Cluster::over_sockets`]).
pub const SOCKET: PortId = PortId(100);

pub fn node_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 0, i)
}
pub fn node_mac(i: u8) -> MacAddr {
    MacAddr::new(0x02, 0x00, 0xc0, 0xa8, 0x00, i)
}
pub fn vtep_mac(i: u8) -> MacAddr {
    MacAddr::new(0x02, 0x00, 0x00, 0x00, 0x00, i)
}
pub fn pod_ip(node: u8, n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, node, 1 + n)
}
pub fn pod_mac(node: u8, n: u8) -> MacAddr {
    MacAddr::new(0x0a, 0x58, 10, 244, node, 1 + n)
}
pub fn subnet(i: u8) -> ipnet::Ipv4Net {
    format!("10.244.{i}.0/24").parse().unwrap()
}

pub fn backend(kind: &str, i: u8) -> BackendConfig {
    match kind {
        "vxlan" => BackendConfig::Vxlan(VxlanConfig::new(vtep_mac(i))),
        "udp" => BackendConfig::Udp(UdpConfig::default()),
        _ => BackendConfig::HostGw,
    }
}

pub fn peer(i: u8) -> PeerConfig {
    PeerConfig::new(subnet(i), node_ip(i)).with_vtep_mac(vtep_mac(i)).with_node_mac(node_mac(i))
}

/// Node `i` (1-based) of a cluster of `n`, pods on ports 1 and 2.
pub fn node(kind: &str, i: u8, n: u8) -> Node {
    let mut b = NodeBuilder::new(subnet(i), node_ip(i), node_mac(i)).backend(backend(kind, i)).pod_ports([1, 2]);
    for j in (1..=n).filter(|&j| j != i) {
        b = b.peer(peer(j));
    }
    b.build().unwrap()
}

pub fn eth(dst: MacAddr, src: MacAddr, ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(dst.as_bytes());
    f.extend_from_slice(src.as_bytes());
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

pub fn arp_frame(dst: MacAddr, repr: &arp::Repr) -> Vec<u8> {
    let mut f = eth(dst, repr.source_hardware_addr, 0x0806);
    let start = f.len();
    f.resize(start + arp::HEADER_LEN, 0);
    repr.emit(&mut arp::Packet::new_unchecked(&mut f[start..]));
    f
}

/// An IPv4 packet (header + payload) with a correct header checksum.
pub fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, proto: ipv4::Protocol, ttl: u8, df: bool, payload: &[u8]) -> Vec<u8> {
    let repr = ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: proto,
        payload_len: payload.len(),
        ttl,
        dscp: 0,
        ecn: 0,
        ident: 0x1234,
        dont_frag: df,
        more_frags: false,
        frag_offset: 0,
    };
    let mut p = vec![0u8; 20 + payload.len()];
    repr.emit(&mut ipv4::Packet::new_unchecked(&mut p[..]));
    p[20..].copy_from_slice(payload);
    p
}

pub fn icmp_echo(msg: icmpv4::Message, ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8; 8 + data.len()];
    m[0] = msg.0;
    m[4..6].copy_from_slice(&ident.to_be_bytes());
    m[6..8].copy_from_slice(&seq.to_be_bytes());
    m[8..].copy_from_slice(data);
    let c = checksum::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

pub fn udp_datagram(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = vec![0u8; 8 + data.len()];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    let len = u.len() as u16;
    u[4..6].copy_from_slice(&len.to_be_bytes());
    u[8..].copy_from_slice(data);
    udp::Packet::new_unchecked(&mut u[..]).fill_checksum(src, dst);
    u
}

/// What a pod received at the IP level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    EchoReply {
        from: Ipv4Addr,
        seq: u16,
        ttl: u8,
    },
    EchoRequest {
        from: Ipv4Addr,
        seq: u16,
        ttl: u8,
    },
    Udp {
        from: Ipv4Addr,
        sport: u16,
        dport: u16,
        data: Vec<u8>,
        ttl: u8,
    },
    Icmp {
        from: Ipv4Addr,
        msg_type: u8,
        code: u8,
        mtu: u16,
    },
    /// A fragment (the pod does not reassemble): where its data starts and how long it is.
    Fragment {
        from: Ipv4Addr,
        offset: u16,
        len: usize,
        more: bool,
    },
}

/// A pod with a tiny stack: ARP (asks, answers, caches), answers echo requests, echoes UDP to port 7.
pub struct Pod {
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
    pub gateway: Ipv4Addr,
    pub neigh: HashMap<Ipv4Addr, MacAddr>,
    waiting: Vec<(Ipv4Addr, Vec<u8>)>,
    pub received: Vec<Received>,
    pub frames_seen: usize,
}

impl Pod {
    pub fn new(ip: Ipv4Addr, mac: MacAddr, gateway: Ipv4Addr) -> Self {
        Self { ip, mac, gateway, neigh: HashMap::new(), waiting: Vec::new(), received: Vec::new(), frames_seen: 0 }
    }

    fn on_link(&self, dst: Ipv4Addr) -> bool {
        u32::from(dst) >> 8 == u32::from(self.ip) >> 8
    }

    /// Sends an IP packet: frames to put on the wire now.
    pub fn send_ip(&mut self, packet: Vec<u8>) -> Vec<Vec<u8>> {
        let dst = ipv4::Packet::new_unchecked(&packet[..]).dst_addr();
        let hop = if self.on_link(dst) { dst } else { self.gateway };
        if let Some(mac) = self.neigh.get(&hop) {
            let mut f = eth(*mac, self.mac, 0x0800);
            f.extend_from_slice(&packet);
            return vec![f];
        }
        self.waiting.push((hop, packet));
        vec![arp_frame(MacAddr::BROADCAST, &arp::Repr::request(self.mac, self.ip, hop))]
    }

    pub fn ping(&mut self, dst: Ipv4Addr, seq: u16, ttl: u8) -> Vec<Vec<u8>> {
        let icmp = icmp_echo(icmpv4::Message::ECHO_REQUEST, 0x4062, seq, &[0x5a; 56]);
        self.send_ip(ipv4_packet(self.ip, dst, ipv4::Protocol::ICMP, ttl, true, &icmp))
    }

    pub fn send_udp(&mut self, dst: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<Vec<u8>> {
        let u = udp_datagram(self.ip, dst, sport, dport, data);
        self.send_ip(ipv4_packet(self.ip, dst, ipv4::Protocol::UDP, 64, true, &u))
    }

    /// Receives a frame; returns the frames it sends in answer.
    pub fn receive(&mut self, frame: &[u8]) -> Vec<Vec<u8>> {
        self.frames_seen += 1;
        let dst = MacAddr::from_bytes(&frame[0..6]).unwrap();
        assert!(dst == self.mac || dst.is_broadcast(), "pod {} got a frame for {dst}", self.ip);
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        if ethertype == 0x0806 {
            let a = arp::Repr::parse(&arp::Packet::new_checked(&frame[14..]).unwrap()).unwrap();
            self.neigh.insert(a.source_protocol_addr, a.source_hardware_addr);
            let mut out = Vec::new();
            if a.operation == arp::Operation::REQUEST && a.target_protocol_addr == self.ip {
                out.push(arp_frame(a.source_hardware_addr, &arp::Repr::reply_to(&a, self.mac)));
            }
            let (ready, wait): (Vec<_>, Vec<_>) =
                std::mem::take(&mut self.waiting).into_iter().partition(|(hop, _)| self.neigh.contains_key(hop));
            self.waiting = wait;
            for (_, p) in ready {
                out.extend(self.send_ip(p));
            }
            return out;
        }
        assert_eq!(ethertype, 0x0800);
        let ip = ipv4::Packet::new_checked(&frame[14..]).unwrap();
        assert!(ip.verify_checksum(), "bad IPv4 checksum at pod {}", self.ip);
        assert_eq!(ip.dst_addr(), self.ip);
        let (src, ttl) = (ip.src_addr(), ip.ttl());
        let payload = ip.payload();
        if ip.is_fragment() {
            let (offset, len, more) = (ip.frag_offset(), payload.len(), ip.more_frags());
            self.received.push(Received::Fragment { from: src, offset, len, more });
            return vec![];
        }
        match ip.protocol() {
            ipv4::Protocol::ICMP => {
                assert!(checksum::verify(payload), "bad ICMP checksum");
                let icmp = icmpv4::Packet::new_checked(payload).unwrap();
                let seq = icmp.echo_seq_no();
                match icmp.msg_type() {
                    icmpv4::Message::ECHO_REQUEST => {
                        self.received.push(Received::EchoRequest { from: src, seq, ttl });
                        let reply = icmp_echo(icmpv4::Message::ECHO_REPLY, icmp.echo_ident(), seq, icmp.data());
                        self.send_ip(ipv4_packet(self.ip, src, ipv4::Protocol::ICMP, 64, false, &reply))
                    }
                    icmpv4::Message::ECHO_REPLY => {
                        self.received.push(Received::EchoReply { from: src, seq, ttl });
                        vec![]
                    }
                    t => {
                        self.received.push(Received::Icmp {
                            from: src,
                            msg_type: t.0,
                            code: icmp.msg_code(),
                            mtu: icmp.next_hop_mtu(),
                        });
                        vec![]
                    }
                }
            }
            ipv4::Protocol::UDP => {
                let u = udp::Packet::new_checked(payload).unwrap();
                assert!(u.verify_checksum(src, self.ip), "bad UDP checksum");
                let (sport, dport, data) = (u.src_port(), u.dst_port(), u.payload().to_vec());
                self.received.push(Received::Udp { from: src, sport, dport, data: data.clone(), ttl });
                if dport == 7 { self.send_udp(src, 7, sport, &data) } else { vec![] }
            }
            p => panic!("unexpected protocol {p:?}"),
        }
    }
}

/// Nodes, their pods (two per node, on ports 1 and 2) and the wire between them.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub pools: Vec<Pool>,
    pub pods: Vec<[Pod; 2]>,
    inbox: Vec<VecDeque<(PortId, Vec<u8>, Ipv4Addr)>>,
    /// Underlay traffic goes as UDP payloads with the sender in `meta.remote()`, as from a UDP socket.
    sockets: bool,
    pub now: Instant,
    /// Every frame a node sent on the underlay: (from node index, verdict, bytes).
    pub underlay_log: Vec<(usize, Verdict, Vec<u8>)>,
    pub tun_log: Vec<(usize, Vec<u8>)>,
    pub drops: Vec<(usize, Verdict)>,
}

impl Cluster {
    pub fn new(kind: &str, n: u8) -> Self {
        let nodes: Vec<_> = (1..=n).map(|i| node(kind, i, n)).collect();
        let pools = (0..n).map(|_| Pool::new(PoolConfig { buffers: 512, ..PoolConfig::default() }).unwrap()).collect();
        let pods = (1..=n)
            .map(|i| {
                let gw = Ipv4Addr::new(10, 244, i, 1);
                [Pod::new(pod_ip(i, 1), pod_mac(i, 1), gw), Pod::new(pod_ip(i, 2), pod_mac(i, 2), gw)]
            })
            .collect();
        Self {
            nodes,
            pools,
            pods,
            inbox: (0..n).map(|_| VecDeque::new()).collect(),
            now: Instant::from_secs(1),
            underlay_log: Vec::new(),
            tun_log: Vec::new(),
            drops: Vec::new(),
            sockets: false,
        }
    }

    /// A cluster whose nodes take the underlay's traffic as a UDP-socket driver gives it: the UDP payload, with
    /// the sender's address in `meta.remote()`, on port [`SOCKET`].
    pub fn over_sockets(kind: &str, n: u8) -> Self {
        let mut c = Self::new(kind, n);
        for (i, node) in c.nodes.iter_mut().enumerate() {
            let mut config = node.to_config();
            config.underlay.socket_port = Some(SOCKET.0);
            *node = Node::new(config).unwrap_or_else(|e| panic!("node {}: {e}", i + 1));
        }
        c.sockets = true;
        c
    }

    /// Pod `p` (1 or 2) of node `n` (1-based) puts frames on its port.
    pub fn send_from_pod(&mut self, n: u8, frames: Vec<Vec<u8>>, p: u8) {
        for f in frames {
            self.inbox[usize::from(n - 1)].push_back((PortId(u16::from(p)), f, Ipv4Addr::UNSPECIFIED));
        }
    }

    pub fn pod(&mut self, n: u8, p: u8) -> &mut Pod {
        &mut self.pods[usize::from(n - 1)][usize::from(p - 1)]
    }

    pub fn inject(&mut self, node: usize, port: PortId, frame: Vec<u8>) {
        self.inbox[node].push_back((port, frame, Ipv4Addr::UNSPECIFIED));
    }

    /// Runs until no frame is in flight; returns how many rounds it took.
    pub fn run(&mut self) -> usize {
        let mut rounds = 0;
        let mut out = Outputs::new(1024);
        while self.inbox.iter().any(|q| !q.is_empty()) {
            rounds += 1;
            assert!(rounds < 100, "the cluster does not settle");
            for i in 0..self.nodes.len() {
                let mut batch = Batch::new(256);
                while let Some((port, frame, remote)) = self.inbox[i].pop_front() {
                    let mut buf = self.pools[i].get().expect("pool");
                    buf.extend_from_slice(&frame).unwrap();
                    buf.meta_mut().ingress = port;
                    buf.meta_mut().set_remote(core::net::SocketAddr::from((remote, 8472)));
                    batch.push(buf).unwrap();
                }
                self.nodes[i].process(self.now, &mut self.pools[i], &mut batch, &mut out);
                assert!(batch.is_empty());
                let n = &self.nodes[i];
                assert_eq!(n.counters().held(), n.arp_pending() as u64, "node {}: a packet unaccounted for", i + 1);
                let items: Vec<(PacketBuf, Verdict)> = out.drain().collect();
                for (buf, verdict) in items {
                    self.deliver(i, buf.data().to_vec(), verdict);
                    self.pools[i].put(buf);
                }
            }
        }
        rounds
    }

    fn deliver(&mut self, from: usize, bytes: Vec<u8>, verdict: Verdict) {
        match verdict {
            Verdict::Port(port) if Some(port.0) == self.nodes[from].config().host_port => {
                self.tun_log.push((from, bytes));
            }
            Verdict::Port(port) => {
                let answers = self.pods[from][usize::from(port.0 - 1)].receive(&bytes);
                for a in answers {
                    self.inbox[from].push_back((port, a, Ipv4Addr::UNSPECIFIED));
                }
            }
            Verdict::Underlay { dst, payload_offset } => {
                let IpAddr::V4(dst) = dst.ip() else { panic!("an IPv6 underlay: {dst}") };
                self.underlay_log.push((from, verdict, bytes.clone()));
                let to = self.nodes.iter().position(|n| n.config().underlay.node_ip == dst).expect("no such node");
                if self.sockets {
                    let payload = bytes[usize::from(payload_offset)..].to_vec();
                    let remote = self.nodes[from].config().underlay.node_ip;
                    self.inbox[to].push_back((SOCKET, payload, remote));
                } else {
                    self.inbox[to].push_back((UNDERLAY, bytes, Ipv4Addr::UNSPECIFIED));
                }
            }
            Verdict::Drop(_) => self.drops.push((from, verdict)),
            Verdict::Consumed => {}
            _ => panic!("a verdict this cluster does not know: {verdict:?}"),
        }
    }
}

pub fn drop_named(node: &Node, name: &str) -> u64 {
    node.counters().nonzero_drops().find(|(n, _)| *n == name).map_or(0, |(_, c)| c)
}

/// A UDP packet from `src` to `dst` in a frame from pod `n` of node 1 to its gateway.
pub fn pod_udp(node: &Node, n: u8, src: Ipv4Addr, dst: Ipv4Addr, len: usize, df: bool) -> Vec<u8> {
    let u = udp_datagram(src, dst, 5000, 9, &vec![0x5a; len]);
    let mut f = eth(node.config().gateway_mac(), pod_mac(1, n), 0x0800);
    f.extend(ipv4_packet(src, dst, ipv4::Protocol::UDP, 64, df, &u));
    f
}

pub fn arp_request(from_mac: MacAddr, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    arp_frame(MacAddr::BROADCAST, &arp::Repr::request(from_mac, sender, target))
}

pub fn run(node: &mut Node, pool: &mut Pool, frames: &[(PortId, Vec<u8>)]) -> Vec<Verdict> {
    run_at(node, pool, Instant::from_secs(1), frames)
}

/// The frames (ingress, bytes) through `node` at `now`, every input taken: the verdicts, the buffers given back.
pub fn run_at(node: &mut Node, pool: &mut Pool, now: Instant, frames: &[(PortId, Vec<u8>)]) -> Vec<Verdict> {
    let mut batch = Batch::new(16);
    for (port, frame) in frames {
        let mut b = pool.get().unwrap();
        b.extend_from_slice(frame).unwrap();
        b.meta_mut().ingress = *port;
        batch.push(b).unwrap();
    }
    let mut out = Outputs::new(64);
    node.process(now, pool, &mut batch, &mut out);
    assert!(batch.is_empty());
    let v = out.as_slice().iter().map(|(_, v)| *v).collect();
    out.recycle(pool);
    v
}

/// The frames through `node` on `port` at 1 s: each output's bytes and verdict.
pub fn run_bytes(node: &mut Node, pool: &mut Pool, port: PortId, frames: Vec<Vec<u8>>) -> Vec<(Vec<u8>, Verdict)> {
    let mut batch = Batch::new(64);
    for f in frames {
        let mut b = pool.get().unwrap();
        b.extend_from_slice(&f).unwrap();
        b.meta_mut().ingress = port;
        batch.push(b).unwrap();
    }
    let mut out = Outputs::new(64);
    node.process(Instant::from_secs(1), pool, &mut batch, &mut out);
    let v = out.as_slice().iter().map(|(b, v)| (b.data().to_vec(), *v)).collect();
    out.recycle(pool);
    v
}
