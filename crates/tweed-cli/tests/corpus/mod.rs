//! A corpus of frames built here, byte by byte, for the differential test against tshark: valid, truncated,
//! snapped, lying-length, bad-checksum, VLAN-tagged, fragmented, ARP, ICMP-error, TCP, VXLAN and flannel udp
//! backend frames. Each is named, so a disagreement says which frame it is.

/// One frame of the corpus: its name, its captured bytes and its length on the wire.
pub(crate) struct Frame {
    pub(crate) name: &'static str,
    pub(crate) data: Vec<u8>,
    pub(crate) wire_len: usize,
}

const A_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const B_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const A_IP: [u8; 4] = [10, 244, 1, 2];
const B_IP: [u8; 4] = [10, 244, 2, 3];
const NODE_A: [u8; 4] = [192, 168, 0, 1];
const NODE_B: [u8; 4] = [192, 168, 0, 2];

fn sum(data: &[u8], initial: u32) -> u16 {
    let mut s = initial;
    for c in data.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn pseudo(src: [u8; 4], dst: [u8; 4], proto: u8, len: usize) -> u32 {
    let w = |b: [u8; 4]| u32::from(u16::from_be_bytes([b[0], b[1]])) + u32::from(u16::from_be_bytes([b[2], b[3]]));
    w(src) + w(dst) + u32::from(proto) + len as u32
}

fn eth(dst: [u8; 6], src: [u8; 6], etype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = [&dst[..], &src[..], &etype.to_be_bytes()].concat();
    f.extend_from_slice(payload);
    f
}

fn vlan(tpid: u16, pcp: u8, dei: bool, vid: u16, etype: u16) -> Vec<u8> {
    let tci = (u16::from(pcp) << 13) | (u16::from(dei) << 12) | vid;
    [tpid.to_be_bytes(), tci.to_be_bytes(), etype.to_be_bytes()].concat()
}

/// An IPv4 header with options and a right checksum, then the payload.
struct Ip {
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    ttl: u8,
    id: u16,
    frag: u16,
    tos: u8,
    options: Vec<u8>,
}

impl Ip {
    fn new(src: [u8; 4], dst: [u8; 4], proto: u8) -> Self {
        Self { src, dst, proto, ttl: 64, id: 0x1234, frag: 0x4000, tos: 0, options: vec![] }
    }

    fn packet(&self, payload: &[u8]) -> Vec<u8> {
        let hl = 20 + self.options.len();
        let total = (hl + payload.len()) as u16;
        let mut h = vec![0x40 | (hl / 4) as u8, self.tos];
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&self.id.to_be_bytes());
        h.extend_from_slice(&self.frag.to_be_bytes());
        h.extend_from_slice(&[self.ttl, self.proto, 0, 0]);
        h.extend_from_slice(&self.src);
        h.extend_from_slice(&self.dst);
        h.extend_from_slice(&self.options);
        let c = sum(&h, 0);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }
}

fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut u = [sport.to_be_bytes(), dport.to_be_bytes(), (len as u16).to_be_bytes(), [0, 0]].concat();
    u.extend_from_slice(payload);
    let c = match sum(&u, pseudo(src, dst, 17, len)) {
        0 => 0xffff,
        c => c,
    };
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

fn tcp(
    src: [u8; 4],
    dst: [u8; 4],
    ports: (u16, u16),
    (seq, ack): (u32, u32),
    flags: u8,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let hl = 20 + options.len();
    let mut t = [&ports.0.to_be_bytes()[..], &ports.1.to_be_bytes(), &seq.to_be_bytes(), &ack.to_be_bytes()].concat();
    t.extend_from_slice(&[((hl / 4) as u8) << 4, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
    t.extend_from_slice(options);
    t.extend_from_slice(payload);
    let c = sum(&t, pseudo(src, dst, 6, t.len()));
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

fn icmp(kind: u8, code: u8, rest: u32, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, code, 0, 0];
    m.extend_from_slice(&rest.to_be_bytes());
    m.extend_from_slice(body);
    let c = sum(&m, 0);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn arp(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    for part in [&sha[..], &spa, &tha, &tpa] {
        a.extend_from_slice(part);
    }
    a
}

fn ip_frame(ip: &Ip, payload: &[u8]) -> Vec<u8> {
    eth(B_MAC, A_MAC, 0x0800, &ip.packet(payload))
}

fn pad60(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// An underlay frame from node A to node B carrying `payload` in UDP to `port`.
fn underlay(sport: u16, port: u16, payload: &[u8]) -> Vec<u8> {
    let mut ip = Ip::new(NODE_A, NODE_B, 17);
    ip.frag = 0;
    ip_frame(&ip, &udp(NODE_A, NODE_B, sport, port, payload))
}

/// The corpus.
pub(crate) fn frames() -> Vec<Frame> {
    let mut out = vec![];
    let mut add = |name: &'static str, data: Vec<u8>| {
        let wire_len = data.len();
        out.push(Frame { name, data, wire_len });
    };
    let hello = b"hello, tshark";
    let udp_ip = Ip::new(A_IP, B_IP, 17);
    let udp_ok = udp(A_IP, B_IP, 40000, 50000, hello);
    add("udp", ip_frame(&udp_ip, &udp_ok));
    let mut u0 = udp_ok.clone();
    u0[6..8].copy_from_slice(&[0, 0]);
    add("udp without checksum", ip_frame(&udp_ip, &u0));
    let mut ub = udp_ok.clone();
    ub[7] ^= 0x5a;
    add("udp bad checksum", ip_frame(&udp_ip, &ub));
    add("udp padded", pad60(ip_frame(&udp_ip, &udp(A_IP, B_IP, 40000, 50000, b"x"))));
    let mut ip_bad = ip_frame(&udp_ip, &udp_ok);
    ip_bad[14 + 11] ^= 0x33;
    add("ipv4 bad checksum", ip_bad);

    let tcp_ip = Ip::new(A_IP, B_IP, 6);
    let syn_opts = [2, 4, 0x05, 0xb4, 1, 1, 4, 2];
    add("tcp syn", ip_frame(&tcp_ip, &tcp(A_IP, B_IP, (41000, 5201), (1000, 0), 0x02, &syn_opts, &[])));
    add("tcp syn-ack", ip_frame(&tcp_ip, &tcp(B_IP, A_IP, (5201, 41000), (7000, 1001), 0x12, &syn_opts, &[])));
    add(
        "tcp psh data",
        ip_frame(&tcp_ip, &tcp(A_IP, B_IP, (41000, 5201), (1001, 7001), 0x18, &[], b"GET / HTTP/1.0\r\n")),
    );
    add("tcp fin", ip_frame(&tcp_ip, &tcp(A_IP, B_IP, (41000, 5201), (1017, 7001), 0x11, &[], &[])));
    add("tcp rst", ip_frame(&tcp_ip, &tcp(A_IP, B_IP, (41000, 5201), (1018, 0), 0x04, &[], &[])));
    let mut tb = tcp(A_IP, B_IP, (41000, 5201), (1001, 7001), 0x18, &[], b"bad");
    tb[17] ^= 0x01;
    add("tcp bad checksum", ip_frame(&tcp_ip, &tb));

    let icmp_ip = Ip::new(A_IP, B_IP, 1);
    let echo = icmp(8, 0, 0x0042_0001, &[0xab; 24]);
    add("icmp echo request", ip_frame(&icmp_ip, &echo));
    add("icmp echo reply", ip_frame(&Ip::new(B_IP, A_IP, 1), &icmp(0, 0, 0x0042_0001, &[0xab; 24])));
    let mut eb = echo.clone();
    eb[3] ^= 0x10;
    add("icmp bad checksum", ip_frame(&icmp_ip, &eb));
    // Errors quote the offending header and the first 8 bytes of its payload.
    let offending_udp = udp_ip.packet(&udp_ok);
    let mut router = Ip::new([10, 244, 2, 1], A_IP, 1);
    router.frag = 0;
    router.ttl = 255;
    add("icmp port unreachable", ip_frame(&router, &icmp(3, 3, 0, &offending_udp[..28])));
    let offending_tcp = tcp_ip.packet(&tcp(A_IP, B_IP, (41000, 5201), (1001, 7001), 0x10, &[], &[0; 1400]));
    add("icmp fragmentation needed", ip_frame(&router, &icmp(3, 4, 1400, &offending_tcp[..28])));
    let offending_echo = icmp_ip.packet(&echo);
    add("icmp ttl exceeded", ip_frame(&router, &icmp(11, 0, 0, &offending_echo[..28])));
    add("icmp redirect", ip_frame(&router, &icmp(5, 1, u32::from_be_bytes([10, 244, 1, 254]), &offending_udp[..28])));

    add("arp request", pad60(eth([0xff; 6], A_MAC, 0x0806, &arp(1, A_MAC, A_IP, [0; 6], [10, 244, 1, 1]))));
    add("arp reply", eth(A_MAC, B_MAC, 0x0806, &arp(2, B_MAC, [10, 244, 1, 1], A_MAC, A_IP)));

    let tagged = [vlan(0x8100, 5, false, 100, 0x0800), udp_ip.packet(&udp_ok)].concat();
    add("vlan udp", eth(B_MAC, A_MAC, 0x8100, &tagged[2..]));
    let tagged_arp = [vlan(0x8100, 0, true, 4094, 0x0806), arp(1, A_MAC, A_IP, [0; 6], B_IP)].concat();
    add("vlan arp dei", eth([0xff; 6], A_MAC, 0x8100, &tagged_arp[2..]));
    // A service tag (802.1ad) around a customer tag (802.1Q): each tag's TCI, then the EtherType after it.
    let qinq = [&vlan(0x88a8, 3, false, 10, 0x8100)[2..], &vlan(0x8100, 1, false, 20, 0x0800)[2..]].concat();
    add("802.1ad and 802.1q udp", eth(B_MAC, A_MAC, 0x88a8, &[qinq, udp_ip.packet(&udp_ok)].concat()));

    // A 1400-byte UDP datagram in two fragments, the first carrying the UDP header.
    let big = udp(A_IP, B_IP, 40000, 50000, &[0x5a; 1392]);
    let mut first = Ip::new(A_IP, B_IP, 17);
    first.frag = 0x2000;
    first.id = 0x7777;
    add("fragment first", ip_frame(&first, &big[..800]));
    let mut second = Ip::new(A_IP, B_IP, 17);
    second.frag = 100;
    second.id = 0x7777;
    add("fragment second", ip_frame(&second, &big[800..]));

    let mut opts = Ip::new(A_IP, B_IP, 17);
    opts.options = vec![148, 4, 0, 0, 1, 7, 7, 4, 0, 0, 0, 0, 0, 0];
    opts.options.resize(16, 0);
    opts.tos = 0xb8;
    add("ipv4 options ra rr", ip_frame(&opts, &udp(A_IP, B_IP, 40000, 50000, hello)));

    let vxlan_hdr = |vni: u32| [[0x08, 0, 0, 0], (vni << 8).to_be_bytes()].concat();
    let inner_echo = ip_frame(&icmp_ip, &echo);
    add("vxlan 4789 icmp", underlay(50123, 4789, &[vxlan_hdr(42), inner_echo.clone()].concat()));
    let inner_tcp = ip_frame(&tcp_ip, &tcp(A_IP, B_IP, (41000, 5201), (1001, 7001), 0x18, &[], b"inner"));
    add("vxlan 8472 tcp", underlay(50124, 8472, &[vxlan_hdr(1), inner_tcp].concat()));
    let mut inner_bad = inner_echo.clone();
    inner_bad[14 + 10] ^= 0xff;
    add("vxlan inner ipv4 bad checksum", underlay(50125, 8472, &[vxlan_hdr(1), inner_bad].concat()));
    add("flannel udp icmp", underlay(8285, 8285, &icmp_ip.packet(&echo)));
    add("flannel udp udp", underlay(8285, 8285, &udp_ip.packet(&udp_ok)));

    // Lengths that lie.
    let mut long_total = ip_frame(&udp_ip, &udp_ok);
    long_total[16..18].copy_from_slice(&200u16.to_be_bytes());
    fix_ip_checksum(&mut long_total, 14);
    add("ipv4 total length past the frame", long_total);
    let mut short_total = ip_frame(&udp_ip, &udp_ok);
    short_total[16..18].copy_from_slice(&12u16.to_be_bytes());
    fix_ip_checksum(&mut short_total, 14);
    add("ipv4 total length below its header", short_total);
    let mut ihl = ip_frame(&udp_ip, &udp_ok);
    ihl[14] = 0x44;
    add("ipv4 header length 16", ihl);
    let mut udp_long = udp_ok.clone();
    udp_long[4..6].copy_from_slice(&100u16.to_be_bytes());
    add("udp length past the packet", ip_frame(&udp_ip, &udp_long));
    let mut udp_short = udp_ok.clone();
    udp_short[4..6].copy_from_slice(&4u16.to_be_bytes());
    add("udp length below its header", ip_frame(&udp_ip, &udp_short));
    let mut tcp_off = tcp(A_IP, B_IP, (41000, 5201), (1001, 7001), 0x10, &[], &[]);
    tcp_off[12] = 0x30;
    add("tcp data offset 12", ip_frame(&tcp_ip, &tcp_off));

    // Cut short: the frame ends inside a header (captured whole: the packet itself is short).
    let whole = ip_frame(&udp_ip, &udp_ok);
    add("cut inside the ipv4 header", whole[..24].to_vec());
    add("cut inside the udp header", whole[..38].to_vec());
    add("cut inside the ethernet header", whole[..10].to_vec());
    add("cut inside the arp packet", eth([0xff; 6], A_MAC, 0x0806, &arp(1, A_MAC, A_IP, [0; 6], B_IP)[..20]));
    // Snapped by the capture: the wire had the whole frame.
    let mut snapped = Frame { name: "snapped at 40 bytes", data: whole[..40].to_vec(), wire_len: whole.len() };
    snapped.data.truncate(40);
    out.push(snapped);
    out
}

fn fix_ip_checksum(frame: &mut [u8], at: usize) {
    let hl = usize::from(frame[at] & 0x0f) * 4;
    frame[at + 10..at + 12].copy_from_slice(&[0, 0]);
    let c = sum(&frame[at..at + hl], 0);
    frame[at + 10..at + 12].copy_from_slice(&c.to_be_bytes());
}
