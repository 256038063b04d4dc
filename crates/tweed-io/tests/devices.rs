//! TAP, TUN and AF_PACKET ports against the real kernel, in network namespaces (root; skipped with one line
//! elsewhere, a failure under `TWEED_REQUIRE_ALL=1`).
#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use common::netns::{End, NetNs, ping, veth};
use tweed_io::{Device, DeviceKind, DeviceOptions, Error, PacketSocket, netns_path};
use tweed_packet::PacketBuf;
use tweed_wire::{checksum, icmpv4, ipv4};

fn path(ns: &NetNs) -> std::path::PathBuf {
    netns_path(std::path::Path::new(ns.name()))
}

/// Receives one packet within `timeout`.
fn recv_within(recv: impl Fn(&mut PacketBuf) -> std::io::Result<bool>, timeout: Duration) -> Option<PacketBuf> {
    let start = Instant::now();
    let mut buf = PacketBuf::default();
    while start.elapsed() < timeout {
        if recv(&mut buf).expect("recv") {
            return Some(buf);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

/// A TAP made in a namespace is there, with its MTU and MAC, up; a second one of the same name is refused with
/// `Exists`; dropping the device deletes it.
#[test]
fn tap_in_a_namespace_lives_as_long_as_its_descriptor() {
    skip_unless!(Root, Netns, Tun);
    let ns = NetNs::new("tap").unwrap();
    let mac = tweed_wire::ethernet::MacAddr::new(0x02, 0, 0, 0, 0x42, 1);
    let tap = Device::create(&DeviceOptions::new("eth0", DeviceKind::Tap).netns(path(&ns)).mtu(1400).mac(mac)).unwrap();
    let show = ns.ip(&["-o", "link", "show", "dev", "eth0"]).unwrap();
    assert!(show.contains("mtu 1400") && show.contains("02:00:00:00:42:01") && show.contains(",UP"), "{show}");
    let again = Device::create(&DeviceOptions::new("eth0", DeviceKind::Tap).netns(path(&ns))).unwrap_err();
    assert!(matches!(again, Error::Exists { ref name, .. } if name == "eth0"), "{again}");
    assert!(again.to_string().contains("exists already"), "{again}");
    drop(tap);
    // A process forked by a parallel test holds a copy of the descriptor until its exec: allow for that moment.
    let gone = common::netns::wait_for("eth0 to go", Duration::from_secs(2), || (!ns.has_link("eth0")).then_some(()));
    assert!(gone.is_ok(), "the TAP outlived its descriptor");
    let missing =
        Device::create(&DeviceOptions::new("eth0", DeviceKind::Tap).netns("tweed-no-such-netns")).unwrap_err();
    assert!(matches!(missing, Error::NoSuchNetns(_)), "{missing}");
}

/// The kernel's ping through a TUN: we read the echo request as an IP packet and write the reply back.
#[test]
fn tun_carries_ip_packets_both_ways() {
    skip_unless!(Root, Netns, Tun, Ping);
    let ns = NetNs::new("tun").unwrap();
    let tun = Device::create(&DeviceOptions::new("tun0", DeviceKind::Tun).netns(path(&ns))).unwrap();
    ns.ip(&["addr", "add", "10.9.0.1/24", "dev", "tun0"]).unwrap();
    let answer = std::thread::scope(|s| {
        let pinger = s.spawn(|| ping(&ns, "10.9.0.2".parse().unwrap(), 1, &["-W", "3"]).unwrap());
        // The kernel may send IPv6 router solicitations first: wait for the IPv4 echo request.
        let start = Instant::now();
        let mut req = loop {
            assert!(start.elapsed() < Duration::from_secs(5), "no echo request on tun0");
            let Some(p) = recv_within(|b| tun.recv(b), Duration::from_secs(5)) else { continue };
            if p.data().first().is_some_and(|b| b >> 4 == 4) {
                break p;
            }
        };
        let data = req.data_mut();
        let mut ip = ipv4::Packet::new_checked(&mut data[..]).expect("an IPv4 packet");
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        assert_eq!((src.to_string().as_str(), dst.to_string().as_str()), ("10.9.0.1", "10.9.0.2"));
        ip.set_src_addr(dst);
        ip.set_dst_addr(src);
        let hl = ip.header_len();
        let mut icmp = icmpv4::Packet::new_checked(&mut data[hl..]).expect("ICMP");
        assert_eq!(icmp.msg_type(), icmpv4::Message::ECHO_REQUEST);
        icmp.set_msg_type(icmpv4::Message::ECHO_REPLY);
        let c = checksum::update16(icmp.checksum(), 0x0800, 0x0000);
        icmp.set_checksum(c);
        assert!(tun.send(req.data()).unwrap());
        pinger.join().unwrap()
    });
    assert!(answer.all_received(), "{}", answer.output);
}

/// An AF_PACKET port on a veth's end sees what the other end sends, and what it writes comes out there.
#[test]
fn packet_socket_on_a_veth() {
    skip_unless!(Root, Netns, Veth);
    let a = NetNs::new("pa").unwrap();
    let b = NetNs::new("pb").unwrap();
    let _veth = veth(End::new(&a, "va"), End::new(&b, "vb")).unwrap();
    let sa = PacketSocket::attach("va", Some(&path(&a))).unwrap();
    let sb = PacketSocket::attach("vb", Some(&path(&b))).unwrap();
    let mut frame = Vec::new();
    frame.extend_from_slice(sb.mac().as_bytes());
    frame.extend_from_slice(sa.mac().as_bytes());
    frame.extend_from_slice(&[0x88, 0xb5]);
    frame.extend_from_slice(b"tweed packet socket test, padded to sixty bytes ..");
    // Until the kernel's link watch has started the new veth's queue, what is sent on it is dropped: send again
    // every 100 ms. The socket sees all that comes in (IPv6 neighbour discovery, MLD, …): skip what is not ours.
    let start = Instant::now();
    let mut sent_at = None::<Instant>;
    let mut buf = PacketBuf::default();
    loop {
        assert!(start.elapsed() < Duration::from_secs(3), "the frame did not come out at the other end");
        if sent_at.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
            assert!(sa.send(&frame).unwrap());
            sent_at = Some(Instant::now());
        }
        if !sb.recv(&mut buf).unwrap() {
            std::thread::sleep(Duration::from_millis(2));
        } else if buf.data().get(12..14) == Some(&[0x88, 0xb5][..]) {
            // Ours, whole; a copy sent again before this one arrived is never looked at.
            assert_eq!(buf.data(), &frame[..]);
            break;
        }
    }
    let missing = PacketSocket::attach("nosuch0", Some(&path(&a))).unwrap_err();
    assert!(matches!(missing, Error::NoSuchInterface { .. }), "{missing}");
}

/// A multi-queue TAP takes one descriptor per worker; the device goes when the last one closes.
#[test]
fn multi_queue_tap() {
    skip_unless!(Root, Netns, Tun);
    let ns = NetNs::new("mq").unwrap();
    let q0 = Device::create(&DeviceOptions::new("mq0", DeviceKind::Tap).netns(path(&ns)).multi_queue(true)).unwrap();
    let q1 = q0.add_queue().unwrap();
    drop(q0);
    assert!(ns.has_link("mq0"), "one queue is still open");
    drop(q1);
    // As above: a parallel test's fork may hold the last descriptor until its exec.
    let gone = common::netns::wait_for("mq0 to go", Duration::from_secs(2), || (!ns.has_link("mq0")).then_some(()));
    assert!(gone.is_ok(), "the TAP outlived its last queue");
}

/// Finding 13 (veth offloads): a veth pod with the kernel's default offloads hands its TCP segments over with a
/// partial checksum (and large ones unsegmented); the pod port finishes them: the SYN read has a valid checksum.
#[test]
fn veth_pod_partial_checksums_are_finished() {
    skip_unless!(Root, Netns, Veth);
    let ns = NetNs::new("csum").unwrap();
    let mac = tweed_wire::ethernet::MacAddr::new(0x02, 0, 0, 0, 0x43, 1);
    let _veth =
        veth(End::new(&ns, "host0").mac(mac), End::new(&ns, "pod0").addr("10.9.0.2/24".parse().unwrap())).unwrap();
    ns.ip(&["neigh", "replace", "10.9.0.1", "lladdr", "02:00:00:00:43:01", "dev", "pod0"]).unwrap();
    let sock = attach_pod("host0", &path(&ns));
    common::netns::wait_for("veth queues", Duration::from_secs(5), || {
        let show = ns.ip(&["-o", "link", "show", "dev", "pod0"]).ok()?;
        (!show.contains("qdisc noop") && show.contains("LOWER_UP")).then_some(())
    })
    .unwrap();
    // A TCP SYN from the pod (nobody answers; the connect times out).
    let name = ns.name().to_owned();
    let syn = std::thread::spawn(move || {
        let _ = common::netns::run_timeout(
            &["ip", "netns", "exec", &name, "timeout", "1", "bash", "-c", "exec 3<>/dev/tcp/10.9.0.1/80"],
            Duration::from_secs(3),
        );
    });
    let start = Instant::now();
    let mut seen = None;
    while seen.is_none() && start.elapsed() < Duration::from_secs(3) {
        let Some(p) = recv_within(|b| sock.recv(b), Duration::from_millis(100)) else { continue };
        let d = p.data();
        if d.len() >= 54 && d[12..14] == [0x08, 0x00] && d[23] == 6 {
            seen = Some(d.to_vec());
        }
    }
    syn.join().unwrap();
    let f = seen.expect("no TCP segment from the pod");
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
    let tcp = &f[14 + ihl..14 + total];
    let (src, dst) = ([f[26], f[27], f[28], f[29]], [f[30], f[31], f[32], f[33]]);
    let pseudo = checksum::pseudo_header_ipv4(src, dst, 6, tcp.len() as u16);
    assert_eq!(checksum::sum_with(pseudo, tcp), 0xffff, "the pod's SYN has an unfinished checksum");
}

fn attach_pod(name: &str, ns: &std::path::Path) -> PacketSocket {
    PacketSocket::attach_offloaded(name, Some(ns)).unwrap()
}

/// Finding 13 (`PACKET_IGNORE_OUTGOING`): what a pod port sends is never read back by it (the option is set, and
/// a kernel that refuses it makes `attach` fail with a clear error rather than loop our frames back in).
#[test]
fn packet_socket_does_not_read_back_what_it_sends() {
    skip_unless!(Root, Netns, Veth);
    let a = NetNs::new("echo").unwrap();
    a.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    a.sysctl("net.ipv6.conf.default.disable_ipv6", "1").unwrap();
    let _veth = veth(End::new(&a, "va"), End::new(&a, "vb")).unwrap();
    for attach in [PacketSocket::attach, PacketSocket::attach_offloaded] {
        let sa = attach("va", Some(&path(&a))).unwrap();
        let sb = PacketSocket::attach("vb", Some(&path(&a))).unwrap();
        let mut frame = Vec::new();
        frame.extend_from_slice(sb.mac().as_bytes());
        frame.extend_from_slice(sa.mac().as_bytes());
        frame.extend_from_slice(&[0x88, 0xb5]);
        frame.extend_from_slice(&[7; 46]);
        let start = Instant::now();
        let mut buf = PacketBuf::default();
        // Until the veth's queue runs, what is sent is lost: send until the far end has it.
        let arrived = loop {
            assert!(start.elapsed() < Duration::from_secs(3), "the frame never came out at the other end");
            assert!(sa.send(&frame).unwrap());
            if let Some(p) = recv_within(|b| sb.recv(b), Duration::from_millis(100)) {
                break p.data().get(12..14) == Some(&[0x88, 0xb5][..]);
            }
        };
        assert!(arrived);
        while sa.recv(&mut buf).unwrap() {
            assert_ne!(buf.data().get(12..14), Some(&[0x88, 0xb5][..]), "our own frame came back");
        }
    }
}

/// An Ethernet/IPv4/TCP segment (ACK, 1000 bytes of data from `seq`) from 10.9.0.1 to 10.9.0.2, checksums right.
fn tcp_segment(dst_mac: [u8; 6], seq: u32) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0x44, 1, 0x08, 0x00]);
    let total = 20u16 + 20 + 1000;
    f.extend_from_slice(&[0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 9, 0, 1, 10, 9, 0, 2]);
    f[16..18].copy_from_slice(&total.to_be_bytes());
    let c = checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&[0x9c, 0x40, 0x1f, 0x90]);
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&1u32.to_be_bytes());
    f.extend_from_slice(&[0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend((0..1000).map(|i| (i % 251) as u8));
    let pseudo = checksum::pseudo_header_ipv4([10, 9, 0, 1], [10, 9, 0, 2], 6, 1020);
    let c = !checksum::sum_with(pseudo, &f[34..]);
    f[50..52].copy_from_slice(&c.to_be_bytes());
    f
}

/// The pod kernel's count of TCP segments with a bad checksum (`Tcp: InCsumErrors`).
fn tcp_csum_errors(ns: &NetNs) -> u64 {
    let snmp = ns.run(&["cat", "/proc/net/snmp"]).unwrap();
    let tcp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Tcp:")).collect();
    let names = tcp[0].split_whitespace();
    let values = tcp[1].split_whitespace();
    names.zip(values).find(|(n, _)| *n == "InCsumErrors").map_or(0, |(_, v)| v.parse().unwrap())
}

/// Finding 9: a train of TCP segments for a TAP pod with one flipped byte in one segment: the good ones are
/// merged around it, the bad one is written alone without any checksum promise, and the pod's kernel counts its
/// bad checksum (merged, it would have been trusted).
#[test]
fn a_corrupt_segment_reaches_the_pods_tcp_as_bad() {
    skip_unless!(Root, Netns, Tun);
    let ns = NetNs::new("gro").unwrap();
    let tap = Device::create(&DeviceOptions::new("eth0", DeviceKind::Tap).netns(path(&ns)).vnet_hdr(true)).unwrap();
    ns.ip(&["addr", "add", "10.9.0.2/24", "dev", "eth0"]).unwrap();
    let mac = *tweed_io::interface_mac("eth0", Some(&path(&ns))).unwrap().as_bytes();
    let mut frames: Vec<Vec<u8>> = (0..5).map(|i| tcp_segment(mac, 1000 + 1000 * i)).collect();
    frames[2][100] ^= 0x40;
    let before = tcp_csum_errors(&ns);
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let mut scratch = vec![0u8; 70_000];
    let mut writes = Vec::new();
    let mut j = 0;
    while j < refs.len() {
        let took = tap.send_coalesced(&refs[j..], &mut scratch).unwrap();
        assert!(took > 0, "the TAP's queue is full");
        writes.push(took);
        j += took;
    }
    assert_eq!(writes, [2, 1, 2], "the bad segment is written alone");
    let errors = common::netns::wait_for("the checksum error", Duration::from_secs(2), || {
        (tcp_csum_errors(&ns) > before).then(|| tcp_csum_errors(&ns) - before)
    });
    assert_eq!(errors.ok(), Some(1), "the pod's kernel did not see the bad checksum");
}

/// An Ethernet/IPv4/UDP datagram from 10.9.0.1:40000 to 10.9.0.2:5201 with IPv4 identification `id` and
/// `payload`, checksums right.
fn udp_datagram(dst_mac: [u8; 6], id: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0x44, 1, 0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 9, 0, 1, 10, 9, 0, 2]);
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f[18..20].copy_from_slice(&id.to_be_bytes());
    let c = checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&5201u16.to_be_bytes());
    f.extend_from_slice(&(total - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    let pseudo = checksum::pseudo_header_ipv4([10, 9, 0, 1], [10, 9, 0, 2], 17, total - 20);
    let c = match !checksum::sum_with(pseudo, &f[34..]) {
        0 => 0xffff,
        c => c,
    };
    f[40..42].copy_from_slice(&c.to_be_bytes());
    f
}

/// A UDP counter of the pod kernel (`Udp: <name>` in /proc/net/snmp).
fn udp_counter(ns: &NetNs, name: &str) -> u64 {
    let snmp = ns.run(&["cat", "/proc/net/snmp"]).unwrap();
    let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    udp[0]
        .split_whitespace()
        .zip(udp[1].split_whitespace())
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, v)| v.parse().unwrap())
}

/// Small UDP datagrams of one flow for a TAP pod go in few writes (UDP segmentation offload), and the pod's
/// socket still gets every datagram whole, in order; one with a flipped byte is written alone and the pod's
/// kernel counts its bad checksum. The writes go through a queue added to the device (another worker's), which
/// takes the device's answer.
#[test]
fn udp_datagrams_reach_the_pods_socket_whole_from_a_coalesced_write() {
    skip_unless!(Root, Netns, Tun);
    let ns = NetNs::new("uso").unwrap();
    let options = DeviceOptions::new("eth0", DeviceKind::Tap).netns(path(&ns)).vnet_hdr(true).multi_queue(true);
    let first = Device::create(&options).unwrap();
    let tap = first.add_queue().unwrap();
    assert_eq!(tap.coalesces_udp(), first.coalesces_udp());
    if !tap.coalesces_udp() {
        common::netns::skip("this kernel does not take UDP segmentation offload on a TAP (Linux 6.2)");
        return;
    }
    ns.ip(&["addr", "add", "10.9.0.2/24", "dev", "eth0"]).unwrap();
    let socket = ns.enter(|| std::net::UdpSocket::bind("10.9.0.2:5201").unwrap());
    socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mac = *tweed_io::interface_mac("eth0", Some(&path(&ns))).unwrap().as_bytes();
    let payloads: Vec<Vec<u8>> =
        (0..40u8).map(|i| (0..if i == 39 { 17 } else { 64 }).map(|k| i ^ k).collect()).collect();
    let mut frames: Vec<Vec<u8>> = payloads.iter().zip(100u16..).map(|(p, id)| udp_datagram(mac, id, p)).collect();
    frames[30][50] ^= 0x01;
    let (errors_before, rx_before) = (udp_counter(&ns, "InCsumErrors"), ns.link_stat("eth0", "rx_packets").unwrap());
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let mut writes = Vec::new();
    let mut j = 0;
    while j < refs.len() {
        let took = tap.send_coalesced(&refs[j..], &mut []).unwrap();
        assert!(took > 0, "the TAP's queue is full");
        writes.push(took);
        j += took;
    }
    assert_eq!(writes, [30, 1, 9], "the bad datagram is written alone");
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while got.len() < 39 {
        let n = socket.recv(&mut buf).expect("a datagram within 2 s");
        got.push(buf[..n].to_vec());
    }
    let want: Vec<Vec<u8>> = payloads.iter().enumerate().filter(|(i, _)| *i != 30).map(|(_, p)| p.clone()).collect();
    assert_eq!(got, want, "every good datagram, whole, in order");
    let rx = ns.link_stat("eth0", "rx_packets").unwrap() - rx_before;
    assert_eq!(rx, 3, "the kernel took three frames");
    assert_eq!(udp_counter(&ns, "InCsumErrors") - errors_before, 1, "the pod's kernel saw the bad checksum");
}
