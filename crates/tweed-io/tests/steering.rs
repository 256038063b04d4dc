//! Flow steering against the real kernel, in network namespaces (root; skipped with one line elsewhere, a failure
//! under `TWEED_REQUIRE_ALL=1`): a reuseport group with the inner-flow program, an AF_PACKET fanout group, and the
//! multi-queue TAP's flow table.
#![cfg(target_os = "linux")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::netns::raw::{RawSocket, Udp, arp, checksum, ethernet, ipv4_udp};
use common::netns::{End, NetNs, veth};
use tweed_io::{Device, DeviceKind, DeviceOptions, PacketSocket, Steering, UdpOptions, UdpPort, netns_path};
use tweed_packet::PacketBuf;
use tweed_wire::ethernet::MacAddr;

/// Marks the datagrams and frames of these tests among whatever else a namespace sends.
const MAGIC: [u8; 4] = *b"STR1";

fn path(ns: &NetNs) -> PathBuf {
    netns_path(Path::new(ns.name()))
}

/// One direction of an inner flow: a TCP packet from `src:sport` to `dst:dport`, tagged with `(flow, seq)`.
#[derive(Clone, Copy, Debug)]
struct Inner {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
}

impl Inner {
    fn reversed(self) -> Self {
        Self { src: self.dst, dst: self.src, sport: self.dport, dport: self.sport }
    }

    /// The IPv4 packet (TCP header without checksum: nothing parses it beyond the ports), its tag after the
    /// TCP header.
    fn ipv4(self, flow: u16, seq: u16) -> Vec<u8> {
        let mut ip = vec![0u8; 20 + 20 + 8];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&48u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&self.src.octets());
        ip[16..20].copy_from_slice(&self.dst.octets());
        let sum = checksum(&ip[..20]);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        ip[20..22].copy_from_slice(&self.sport.to_be_bytes());
        ip[22..24].copy_from_slice(&self.dport.to_be_bytes());
        ip[32] = 0x50;
        ip[40..44].copy_from_slice(&MAGIC);
        ip[44..46].copy_from_slice(&flow.to_be_bytes());
        ip[46..48].copy_from_slice(&seq.to_be_bytes());
        ip
    }

    /// The VXLAN datagram's payload carrying it (VNI 1, inner MACs made up).
    fn vxlan(self, flow: u16, seq: u16) -> Vec<u8> {
        let mut p = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        p.extend(ethernet(mac(2), mac(1), 0x0800, &self.ipv4(flow, seq)));
        p
    }
}

fn mac(i: u8) -> MacAddr {
    MacAddr::from([0x02, 0x5e, 0, 0, 0, i])
}

/// The tag `(flow, seq)` of a packet or frame of these tests.
fn tag(bytes: &[u8]) -> Option<(u16, u16)> {
    let at = bytes.windows(4).position(|w| w == MAGIC)?;
    let t = bytes.get(at + 4..at + 8)?;
    Some((u16::from_be_bytes([t[0], t[1]]), u16::from_be_bytes([t[2], t[3]])))
}

/// 16 inner TCP flows between two pods, consecutive source ports as `iperf3 -P` opens them.
fn flows() -> Vec<Inner> {
    (0..16)
        .map(|i| Inner {
            src: Ipv4Addr::new(10, 244, 1, 2),
            dst: Ipv4Addr::new(10, 244, 2, 3),
            sport: 40000 + i,
            dport: 5201,
        })
        .collect()
}

/// Reads every datagram waiting on each socket of `group` until `want` arrived or 2 s passed: per socket, the
/// payloads.
fn drain(group: &[UdpSocket], want: usize) -> Vec<Vec<Vec<u8>>> {
    let mut got: Vec<Vec<Vec<u8>>> = vec![Vec::new(); group.len()];
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 2048];
    while got.iter().map(Vec::len).sum::<usize>() < want && Instant::now() < deadline {
        let mut any = false;
        for (i, s) in group.iter().enumerate() {
            while let Ok((n, _)) = s.recv_from(&mut buf) {
                got[i].push(buf[..n].to_vec());
                any = true;
            }
        }
        if !any {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    got
}

/// The group's sockets as plain `UdpSocket`s (duplicated descriptors), non-blocking.
fn plain(group: &[UdpPort]) -> Vec<UdpSocket> {
    group
        .iter()
        .map(|p| {
            let s = UdpSocket::from(p.as_fd().try_clone_to_owned().expect("dup"));
            s.set_nonblocking(true).expect("non-blocking");
            s
        })
        .collect()
}

/// With the program, every datagram of an inner flow, both directions, from any outer source port, reaches the
/// socket [`Steering::index`] predicts, and the flows spread over both; without it (the kernel's outer-tuple
/// hash), everything one peer socket sends lands on a single socket whatever the inner flow.
#[test]
fn reuseport_follows_inner_flow() {
    skip_unless!(Root, Netns);
    let ns = NetNs::new("steer").unwrap();
    let options = UdpOptions { gro: false, gso: false, ..UdpOptions::default() };
    ns.enter(|| {
        let any = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        let steered = UdpPort::bind_group(any, 2, options, Steering::VXLAN).unwrap();
        let kernel = UdpPort::bind_group(any, 2, options, Steering::Kernel).unwrap();
        assert_eq!(steered[0].local_addr(), steered[1].local_addr());
        // Four peers' sockets (four outer source ports).
        let peers: Vec<UdpSocket> = (0..4).map(|_| UdpSocket::bind(any).unwrap()).collect();

        let flows = flows();
        let mut predicted = [0usize; 2];
        let mut sent = 0;
        for (f, flow) in flows.iter().enumerate() {
            for seq in 0..8u16 {
                let dir = if seq % 2 == 0 { *flow } else { flow.reversed() };
                let payload = dir.vxlan(f as u16, seq);
                predicted[Steering::VXLAN.index(&payload, 2)] += 1;
                let peer = &peers[(f + usize::from(seq)) % peers.len()];
                peer.send_to(&payload, steered[0].local_addr()).unwrap();
                sent += 1;
            }
        }
        // ARP in VXLAN: the program reads no flow, socket 0.
        let mut arp = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        arp.extend(ethernet(MacAddr::BROADCAST, mac(1), 0x0806, &[0u8; 28]));
        peers[1].send_to(&arp, steered[0].local_addr()).unwrap();
        let got = drain(&plain(&steered), sent + 1);

        let mut socket_of: BTreeMap<u16, BTreeSet<usize>> = BTreeMap::new();
        for (i, datagrams) in got.iter().enumerate() {
            for d in datagrams {
                assert_eq!(Steering::VXLAN.index(d, 2), i, "a datagram on socket {i} predicted elsewhere");
                if let Some((flow, _)) = tag(d) {
                    socket_of.entry(flow).or_default().insert(i);
                }
            }
        }
        let counts: Vec<usize> = got.iter().map(Vec::len).collect();
        assert_eq!(counts, vec![predicted[0] + 1, predicted[1]], "per socket, with the ARP frame on 0");
        assert!(predicted[0] >= 4 && predicted[1] >= 4, "the 16 flows spread: {predicted:?}");
        assert_eq!(socket_of.len(), flows.len());
        assert!(socket_of.values().all(|s| s.len() == 1), "each flow, both directions, on one socket: {socket_of:?}");

        // The kernel's hash: one peer socket's datagrams all land on one socket, whatever their inner flows.
        for peer in &peers {
            for (f, flow) in flows.iter().enumerate() {
                peer.send_to(&flow.vxlan(f as u16, 0), kernel[0].local_addr()).unwrap();
            }
            let got = drain(&plain(&kernel), flows.len());
            let counts: Vec<usize> = got.iter().map(Vec::len).collect();
            assert!(counts == [16, 0] || counts == [0, 16], "one outer tuple, one socket: {counts:?}");
        }
        let line = format!("reuseport: inner-flow program {counts:?} over 2 sockets; kernel hash: 16/0 per peer\n");
        let _ = io::Write::write_all(&mut io::stderr(), line.as_bytes());
    });
}

/// An AF_PACKET fanout group: all frames of one flow, both directions, reach one socket; 32 flows use both
/// sockets (the kernel's hash is seeded at boot: all 32 on one socket has a chance of 2^-31).
#[test]
fn fanout_keeps_flow_on_one_socket() {
    skip_unless!(Root, Netns);
    let ns = NetNs::new("fanout").unwrap();
    let _pair = veth(End::new(&ns, "fa").mac(mac(1)), End::new(&ns, "fb").mac(mac(2))).unwrap();
    let p = path(&ns);
    let group = PacketSocket::attach_group("fb", Some(&p), 2, false).unwrap();
    assert_eq!(group.len(), 2);
    let inject = RawSocket::open(&ns, "fa").unwrap();
    let mut sent = 0usize;
    for f in 0..32u16 {
        let flow = Inner {
            src: Ipv4Addr::new(10, 244, 1, 2),
            dst: Ipv4Addr::new(10, 244, 2, 3),
            sport: 40000 + f,
            dport: 5201,
        };
        for seq in 0..6u16 {
            let dir = if seq % 2 == 0 { flow } else { flow.reversed() };
            assert!(inject.send(&ethernet(mac(2), mac(1), 0x0800, &dir.ipv4(f, seq))).unwrap());
            sent += 1;
        }
    }
    let mut socket_of: BTreeMap<u16, BTreeSet<usize>> = BTreeMap::new();
    let mut frames = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut buf = PacketBuf::default();
    while frames < sent && Instant::now() < deadline {
        let mut any = false;
        for (i, s) in group.iter().enumerate() {
            while s.recv(&mut buf).unwrap() {
                any = true;
                if let Some((flow, _)) = tag(buf.data()) {
                    socket_of.entry(flow).or_default().insert(i);
                    frames += 1;
                }
            }
        }
        if !any {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert_eq!(frames, sent, "every frame reached exactly one socket of the group");
    assert_eq!(socket_of.len(), 32);
    assert!(socket_of.values().all(|s| s.len() == 1), "each flow, both directions, on one socket: {socket_of:?}");
    let on: BTreeSet<usize> = socket_of.values().flatten().copied().collect();
    assert_eq!(on.len(), 2, "32 flows over both sockets");

    // What leaves the interface (sent by the group, or by anyone else there: the host's stack, another packet
    // socket) goes out, and is not read by the group as input, as with one socket (PACKET_IGNORE_OUTGOING).
    let out = Inner { src: Ipv4Addr::new(10, 244, 2, 3), dst: Ipv4Addr::new(10, 244, 1, 2), sport: 5201, dport: 1 };
    for (i, s) in group.iter().enumerate() {
        assert!(s.send(&ethernet(mac(1), mac(2), 0x0800, &out.ipv4(1000 + i as u16, 0))).unwrap());
    }
    let other = RawSocket::open(&ns, "fb").unwrap();
    assert!(other.send(&ethernet(mac(1), mac(2), 0x0800, &out.ipv4(1002, 0))).unwrap());
    let mut seen = BTreeSet::new();
    inject.drain(Duration::from_millis(200), Duration::from_secs(2), |f| {
        seen.extend(tag(f).map(|(flow, _)| flow));
    });
    assert_eq!(seen, BTreeSet::from([1000, 1001, 1002]), "the other end sees what left");
    std::thread::sleep(Duration::from_millis(50));
    for (i, s) in group.iter().enumerate() {
        while s.recv(&mut buf).unwrap() {
            assert_eq!(tag(buf.data()), None, "socket {i} read a frame that left the interface");
        }
    }
}

/// The kernel steers an `skb`: a UDP GSO train carrying two inner flows that the program puts on different
/// sockets arrives whole on the socket of its first datagram. A sender that wants each flow kept on its worker at
/// the far end puts one flow in a train.
#[test]
fn gso_train_follows_its_first_datagram() {
    skip_unless!(Root, Netns);
    let ns = NetNs::new("train").unwrap();
    let options = UdpOptions { gro: false, gso: false, ..UdpOptions::default() };
    ns.enter(|| {
        let any = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        let group = UdpPort::bind_group(any, 2, options, Steering::VXLAN).unwrap();
        let flows = flows();
        let payloads: Vec<Vec<u8>> = flows.iter().enumerate().map(|(f, flow)| flow.vxlan(f as u16, 0)).collect();
        let first = &payloads[0];
        let other = payloads
            .iter()
            .find(|p| Steering::VXLAN.index(p, 2) != Steering::VXLAN.index(first, 2))
            .expect("16 flows over 2 sockets: one lands elsewhere");
        let sender = UdpSocket::bind(any).unwrap();
        let seg = libc::c_int::try_from(first.len()).unwrap();
        // SAFETY: UDP_SEGMENT takes an int; `seg` lives for the call.
        #[allow(unsafe_code)]
        let r = unsafe {
            libc::setsockopt(
                sender.as_raw_fd(),
                libc::SOL_UDP,
                103, // UDP_SEGMENT
                (&raw const seg).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "UDP_SEGMENT: {}", io::Error::last_os_error());
        let train = [first.as_slice(), other.as_slice()].concat();
        sender.send_to(&train, group[0].local_addr()).unwrap();
        let got = drain(&plain(&group), 2);
        let on = Steering::VXLAN.index(first, 2);
        assert_eq!(got[on].len(), 2, "both datagrams on the first's socket {on}");
        assert_eq!(got[1 - on].len(), 0);
        assert_eq!((tag(&got[on][0]), tag(&got[on][1])), (tag(first), tag(other)));
    });
}

/// The TAP's queue a pod's frame comes out of, among `queues`, within 1 s: the frame and the queue's index.
fn read_any(queues: &[&Device], want: impl Fn(&[u8]) -> bool) -> Option<(usize, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut buf = PacketBuf::default();
    while Instant::now() < deadline {
        for (i, q) in queues.iter().enumerate() {
            while q.recv(&mut buf).unwrap() {
                if want(buf.data()) {
                    return Some((i, buf.data().to_vec()));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

/// A multi-queue TAP: the pod's replies of a flow come out of the queue its packets were last written to (tun's
/// flow table), and follow the flow when it is written through another queue. ARP requests the pod sends are
/// reported (stderr) with the queue they came out of.
#[test]
fn tap_replies_follow_the_written_queue() {
    skip_unless!(Root, Netns, Tun);
    let ns = NetNs::new("mq").unwrap();
    ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1").unwrap();
    let (tap, peer) = (mac(10), mac(20));
    let options = DeviceOptions::new("mq0", DeviceKind::Tap).netns(path(&ns)).multi_queue(true).mac(tap);
    let q0 = Device::create(&options).unwrap();
    let q1 = q0.add_queue().unwrap();
    q0.set_ipv4("10.9.0.1/24".parse().unwrap()).unwrap();
    ns.ip(&["neigh", "replace", "10.9.0.2", "lladdr", &peer.to_string(), "dev", "mq0", "nud", "permanent"]).unwrap();
    let queues = [&q0, &q1];
    let mut log = String::new();
    ns.enter(|| {
        let pod = UdpSocket::bind("10.9.0.1:7001").unwrap();
        pod.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut buf = [0u8; 256];
        for f in 0..8u16 {
            let sport = 7100 + f;
            let reply_of =
                |frame: &[u8]| frame.len() >= 38 && frame[12..14] == [8, 0] && frame[36..38] == sport.to_be_bytes();
            // Written through queue f % 2, then through the other one: the reply follows each time.
            for q in [usize::from(f % 2), usize::from(1 - f % 2)] {
                let udp =
                    Udp { sport, dport: 7001, ..Udp::new(Ipv4Addr::new(10, 9, 0, 2), Ipv4Addr::new(10, 9, 0, 1)) };
                assert!(queues[q].send(&ipv4_udp(tap, peer, udp, &MAGIC)).unwrap());
                let (n, from) = pod.recv_from(&mut buf).unwrap();
                assert_eq!(
                    (&buf[..n], from),
                    (&MAGIC[..], std::net::SocketAddr::from((Ipv4Addr::new(10, 9, 0, 2), sport)))
                );
                pod.send_to(b"reply", from).unwrap();
                let (out, _) = read_any(&queues, reply_of).expect("the pod's reply");
                assert_eq!(out, q, "flow {f}: the reply comes out of the queue its packet went in by");
            }
        }
        // ARP: the pod asks for a neighbour it does not know, before and after an ARP frame written to each queue.
        let is_request = |frame: &[u8]| frame.len() >= 22 && frame[12..14] == [8, 6] && frame[20..22] == [0, 1];
        let ask = |log: &mut String, what: &str, to: u8| {
            pod.send_to(b"who", SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, to), 9)).unwrap();
            let (q, _) = read_any(&queues, is_request).expect("the pod's ARP request");
            log.push_str(&format!("{what}: queue {q}; "));
            q
        };
        // Every ARP frame has one symmetric hash (the dissector reads no ARP address for it), so ARP shares one
        // entry of the flow table; the entry is updated after the written frame went up the pod's stack, so the
        // reply the pod sends at once (in the same softirq) still follows the entry as it was before.
        let mut before = ask(&mut log, "ARP request, no ARP written yet", 30);
        for (i, q) in [0usize, 1, 0, 1].into_iter().enumerate() {
            let request = arp(
                MacAddr::BROADCAST,
                peer,
                1,
                peer,
                Ipv4Addr::new(10, 9, 0, 2),
                MacAddr::from([0; 6]),
                Ipv4Addr::new(10, 9, 0, 1),
            );
            assert!(queues[q].send(&request).unwrap());
            let is_reply = |frame: &[u8]| frame.len() >= 22 && frame[12..14] == [8, 6] && frame[20..22] == [0, 2];
            let (r, _) = read_any(&queues, is_reply).expect("the pod's ARP reply");
            log.push_str(&format!("ARP written to queue {q}: the pod's ARP reply on queue {r}, "));
            assert_eq!(r, before, "the pod's immediate ARP reply follows the ARP frame written before this one");
            let asked = ask(&mut log, "its next ARP request", 31 + i as u8);
            assert_eq!(asked, q, "the pod's later ARP requests follow the last ARP frame written");
            before = q;
        }
    });
    let _ = io::Write::write_all(&mut io::stderr(), format!("multi-queue TAP: {log}\n").as_bytes());
}
