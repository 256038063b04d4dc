//! The encapsulation in two tweed nodes, in process (no root, no I/O): what site 1's node sends is what site 2's
//! node delivers, and what it refuses it counts under the node's own drop reasons.

use std::net::Ipv4Addr;

use tweed::overlay::encap::Encapsulation;
use tweed::overlay::{DropReason, Instant, Node, Outputs, Verdict};
use tweed::packet::{Batch, Pool, PoolConfig, PortId};
use tweed::wire::ipv4;

use crate::encap::{PEER_ID, Psk, SOCKET, TUN, peer_config, site_node};
use crate::seal::{HEADER_LEN, Key, Sender};

pub(crate) const KEY: &str = "4b1d0c2e9a8f7e6d5c4b3a29180716253443526170f1e2d3c4b5a69788796a5b";
const PORT: u16 = 51820;

pub(crate) fn underlay(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 0, i)
}

fn site(i: u8) -> ipnet::Ipv4Net {
    format!("10.{i}.0.0/24").parse().unwrap()
}

pub(crate) fn host(i: u8, h: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, i, 0, h)
}

/// Site `i`'s node (1 or 2), sealing as `i` under `key`, its peer the other site.
pub(crate) fn node(i: u8, key: &str) -> Node<Psk> {
    let j = 3 - i;
    let psk = Psk::new(u32::from(i), Key::from_hex(key).unwrap(), PORT);
    site_node(psk, underlay(i), site(i), peer_config(site(j), underlay(j), u32::from(j))).unwrap()
}

/// An ICMP echo request from `src` to `dst`, TTL 64, checksums filled.
pub(crate) fn echo(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    icmp.extend_from_slice(b"through the tunnel");
    let sum = checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let len = u16::try_from(20 + icmp.len()).unwrap();
    let mut p = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 1, 0, 0];
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    ipv4::Packet::new_unchecked(&mut p[..]).fill_checksum();
    p.extend_from_slice(&icmp);
    p
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap()
}

/// Runs `bytes` into `node` on `port` (from site `from`'s node, for the socket); the outputs.
fn run(node: &mut Node<Psk>, port: PortId, from: u8, bytes: &[u8]) -> Vec<(Vec<u8>, Verdict)> {
    let mut pool = Pool::new(PoolConfig { buffers: 16, ..PoolConfig::default() }).unwrap();
    let (mut batch, mut out) = (Batch::new(1), Outputs::new(16));
    let mut b = pool.get().unwrap();
    b.extend_from_slice(bytes).unwrap();
    b.meta_mut().ingress = port;
    b.meta_mut().set_remote((underlay(from), PORT).into());
    batch.push(b).unwrap();
    node.process(Instant::from_secs(1), &mut pool, &mut batch, &mut out);
    let v = out.as_slice().iter().map(|(b, v)| (b.data().to_vec(), *v)).collect();
    out.recycle(&mut pool);
    v
}

/// What site 1's node sends for a packet from its TUN: the UDP payload, after checking the verdict.
fn sealed_by_site_1(a: &mut Node<Psk>, packet: &[u8]) -> Vec<u8> {
    let out = run(a, TUN, 1, packet);
    let [(frame, Verdict::Underlay { dst, payload_offset })] = &out[..] else { panic!("{out:?}") };
    assert_eq!((*dst, *payload_offset), ((underlay(2), PORT).into(), 42));
    frame[42..].to_vec()
}

#[test]
fn the_overhead_is_the_transport_the_header_and_the_tag() {
    let psk = Psk::new(1, Key::from_hex(KEY).unwrap(), PORT);
    assert_eq!((psk.header_len(), psk.trailer_len(), psk.overhead()), (12, 16, 56));
    assert_eq!(node(1, KEY).inner_mtu(), 1500 - 56);
}

#[test]
fn a_packet_crosses_from_one_site_to_the_other_and_only_once() {
    let (mut a, mut b) = (node(1, KEY), node(2, KEY));
    let packet = echo(host(1, 1), host(2, 1));
    let sealed = sealed_by_site_1(&mut a, &packet);
    // Sender 1, counter 0, the packet (its TTL decremented by site 1's node) encrypted, the tag.
    assert_eq!(&sealed[..HEADER_LEN], &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(sealed.len(), packet.len() + 28);
    assert_ne!(&sealed[HEADER_LEN..HEADER_LEN + packet.len()], &packet[..]);

    let out = run(&mut b, SOCKET, 1, &sealed);
    let [(delivered, Verdict::Port(TUN))] = &out[..] else { panic!("{out:?}") };
    // Routed twice: TTL 62, the header checksum updated, everything else as it left the host.
    let ip = ipv4::Packet::new_checked(&delivered[..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.ttl()), (host(1, 1), host(2, 1), 62));
    assert!(ip.verify_checksum());
    assert_eq!(ip.payload(), &packet[20..]);
    assert_eq!((&delivered[..8], &delivered[9..10]), (&packet[..8], &packet[9..10]));

    // The same datagram again: a replay, counted by the node.
    let out = run(&mut b, SOCKET, 1, &sealed);
    assert_eq!(out.iter().map(|(_, v)| *v).collect::<Vec<_>>(), [Verdict::Drop(DropReason::Replayed)]);
    let c = b.counters();
    assert_eq!((c.from_peer, c.to_port, c.drop_count(DropReason::Replayed), c.total_drops()), (1, 1, 1, 1));
}

#[test]
fn what_is_not_the_peers_own_is_refused_and_counted() {
    let (mut a, mut b, mut other) = (node(1, KEY), node(2, KEY), node(2, &KEY.replace("5b", "5c")));
    let sealed = sealed_by_site_1(&mut a, &echo(host(1, 1), host(2, 1)));
    let verdict = |n: &mut Node<Psk>, bytes: &[u8]| {
        let out = run(n, SOCKET, 1, bytes);
        assert_eq!(out.len(), 1, "{out:?}");
        out[0].1
    };
    let unauthenticated = Verdict::Drop(DropReason::Unauthenticated);
    // Under another key.
    assert_eq!(verdict(&mut other, &sealed), unauthenticated);
    // Any byte changed: the header, the ciphertext, the tag.
    for i in [0, 4, 11, 12, 40, sealed.len() - 1] {
        let mut d = sealed.clone();
        d[i] ^= 0x80;
        // A changed sender id names no peer; anything else fails authentication.
        let expected = if i < 4 { Verdict::Drop(DropReason::UnknownPeer) } else { unauthenticated };
        assert_eq!(verdict(&mut b, &d), expected, "byte {i}");
    }
    // Sealed under the key by a sender that is not a peer, or reflected back to its own sealer.
    let stranger = Sender::new(3);
    let mut d = sealed.clone();
    stranger.seal(&Key::from_hex(KEY).unwrap(), &mut d).unwrap();
    assert_eq!(verdict(&mut b, &d), Verdict::Drop(DropReason::UnknownPeer));
    assert_eq!(verdict(&mut a, &sealed), Verdict::Drop(DropReason::UnknownPeer));
    // Too short to be sealed.
    assert_eq!(verdict(&mut b, &sealed[..27]), Verdict::Drop(DropReason::UnderlayMalformed));
    // None of that moved the window: the genuine datagram is still new.
    assert_eq!(verdict(&mut b, &sealed), Verdict::Port(TUN));
    let c = b.counters();
    assert_eq!(
        (c.drop_count(DropReason::Unauthenticated), c.drop_count(DropReason::UnknownPeer), c.to_port),
        (5, 2, 1)
    );
    // The peer speaks for its own site only: sealed and authentic, but from a third site's address.
    let spoofed = sealed_by_site_1(&mut a, &echo(host(3, 1), host(2, 1)));
    assert_eq!(verdict(&mut b, &spoofed), Verdict::Drop(DropReason::SpoofedSource));
}

#[test]
fn a_peer_needs_its_own_sender_id() {
    let psk = || Psk::new(1, Key::from_hex(KEY).unwrap(), PORT);
    let build = |peer| site_node(psk(), underlay(1), site(1), peer).map(drop).unwrap_err().to_string();
    let peer = tweed::overlay::PeerConfig::new(site(2), underlay(2));
    assert_eq!(build(peer.clone()), "config does not parse: peer 10.2.0.0/24: psk_id is required");
    assert_eq!(
        build(peer.clone().with_param(PEER_ID, "two")),
        "config does not parse: peer 10.2.0.0/24: psk_id is not a 32-bit number: \"two\""
    );
    assert_eq!(
        build(peer.with_param(PEER_ID, "1")),
        "config does not parse: peer 10.2.0.0/24: psk_id is this node's own id (1)"
    );
    assert!(site_node(psk(), underlay(1), site(1), peer_config(site(2), underlay(2), 2)).is_ok());
}
