//! One-line summaries of the frames the demo sees, and the walk of one packet hop by hop: pod `eth0` → bridge →
//! route → encapsulation → underlay → decapsulation → route and bridge → pod.
//!
//! The frames of a walk are the ones recorded on the links (what the pod sent, what went on the underlay, what the
//! pod received); the hops inside a node (bridge, route, decapsulation) are shown with the headers each one
//! reads, from those frames and the node's configuration.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use tweed_overlay::BackendKind;
use tweed_wire::dissect::{Stop, dissect};
use tweed_wire::ethernet::{self, EtherType, MacAddr};
use tweed_wire::ipv4::{self, Protocol};
use tweed_wire::{arp, icmpv4, udp};

use super::pod::PING_IDENT;
use super::world::{Link, World, node_ip};

/// flannel's `udp` backend port, whose payload is an IPv4 packet.
const FLANNEL_UDP_PORT: u16 = 8285;

/// One line for any frame: every layer down to the transport. VXLAN frames use the dissector's line
/// (`tweed pcap dissect`'s); others are read layer by layer here, TCP included.
pub(crate) fn frame_line(frame: &[u8]) -> String {
    let d = dissect(frame);
    if d.stop() == Stop::Complete {
        return d.to_string();
    }
    let Ok(eth) = ethernet::Frame::new_checked(frame) else { return d.to_string() };
    let mut line = format!("{} > {}", eth.src_addr(), eth.dst_addr());
    match eth.ethertype() {
        EtherType::ARP => line.push_str(&arp_line(eth.payload())),
        EtherType::IPV4 => line.push_str(&ip_line(eth.payload())),
        other => {
            let _ = write!(line, " | ethertype {:#06x}", other.0);
        }
    }
    line
}

/// [`ip_line`] without its leading separator.
fn ip_text(bytes: &[u8]) -> String {
    let line = ip_line(bytes);
    line.strip_prefix(" | ").map_or_else(|| line.clone(), str::to_owned)
}

/// ` | arp who-has 10.244.1.1 tell 10.244.1.2` or ` | arp 10.244.1.1 is-at …`.
fn arp_line(bytes: &[u8]) -> String {
    match arp::Packet::new_checked(bytes).and_then(|p| arp::Repr::parse(&p)) {
        Ok(a) if a.is_request() => format!(" | arp who-has {} tell {}", a.target_protocol_addr, a.source_protocol_addr),
        Ok(a) => format!(" | arp {} is-at {}", a.source_protocol_addr, a.source_hardware_addr),
        Err(e) => format!(" | {e}"),
    }
}

/// ` | 10.244.1.2 > 10.244.2.2 ttl 64 ICMP | icmp echo request id 0x7477 seq 2`, through a flannel `udp`
/// payload when there is one.
pub(crate) fn ip_line(bytes: &[u8]) -> String {
    let ip = match ipv4::Packet::new_checked(bytes) {
        Ok(ip) => ip,
        Err(e) => return format!(" | {e}"),
    };
    let mut line = format!(" | {} > {} ttl {} {}", ip.src_addr(), ip.dst_addr(), ip.ttl(), ip.protocol());
    let payload = ip.payload();
    match ip.protocol() {
        Protocol::ICMP => match icmpv4::Packet::new_checked(payload) {
            Ok(m) if m.msg_type() == icmpv4::Message::ECHO_REQUEST => {
                let _ = write!(line, " | icmp echo request id {:#06x} seq {}", m.echo_ident(), m.echo_seq_no());
            }
            Ok(m) if m.msg_type() == icmpv4::Message::ECHO_REPLY => {
                let _ = write!(line, " | icmp echo reply id {:#06x} seq {}", m.echo_ident(), m.echo_seq_no());
            }
            Ok(m) => {
                let _ = write!(line, " | icmp type {} code {}", m.msg_type().0, m.msg_code());
            }
            Err(e) => {
                let _ = write!(line, " | {e}");
            }
        },
        Protocol::UDP => match udp::Packet::new_checked(payload) {
            Ok(u) => {
                let _ = write!(line, " | udp {} > {}", u.src_port(), u.dst_port());
                if u.dst_port() == FLANNEL_UDP_PORT {
                    line.push_str(&ip_line(u.payload()));
                }
            }
            Err(e) => {
                let _ = write!(line, " | {e}");
            }
        },
        Protocol::TCP => line.push_str(&tcp_line(payload)),
        _ => {}
    }
    line
}

/// ` | tcp 49152 > 5201 [S.] len 0`, with tcpdump's flag letters.
fn tcp_line(bytes: &[u8]) -> String {
    let Ok(tcp) = smoltcp::wire::TcpPacket::new_checked(bytes) else {
        return format!(" | tcp truncated ({} bytes)", bytes.len());
    };
    let mut flags = String::new();
    for (set, c) in [(tcp.syn(), 'S'), (tcp.fin(), 'F'), (tcp.rst(), 'R'), (tcp.psh(), 'P'), (tcp.ack(), '.')] {
        if set {
            flags.push(c);
        }
    }
    let len = bytes.len().saturating_sub(usize::from(tcp.header_len()));
    format!(" | tcp {} > {} [{flags}] len {len}", tcp.src_port(), tcp.dst_port())
}

/// The headers a backend puts in front of the pod's IP packet (the frame up to where the inner part starts), as
/// one line, and where the inner part starts: the inner Ethernet frame (vxlan) or IPv4 packet (udp, host-gw).
fn outer_part(kind: BackendKind, frame: &[u8]) -> (String, usize) {
    match kind {
        BackendKind::Vxlan => {
            let d = dissect(frame);
            let mut line = String::new();
            if let (Some(e), Some(ip), Some(u), Some(v)) =
                (d.outer_ethernet(), d.outer_ipv4(), d.outer_udp(), d.vxlan())
            {
                let _ = write!(
                    line,
                    "{} > {} | {} > {} ttl {} | udp {} > {} | vxlan vni {}",
                    e.src_addr(),
                    e.dst_addr(),
                    ip.src_addr(),
                    ip.dst_addr(),
                    ip.ttl(),
                    u.src_port(),
                    u.dst_port(),
                    v.vni()
                );
            } else {
                line = d.to_string();
            }
            (line, 50)
        }
        BackendKind::Udp => {
            let line = ethernet::Frame::new_checked(frame).map_or_else(
                |e| e.to_string(),
                |eth| {
                    let ip = ipv4::Packet::new_checked(eth.payload()).ok();
                    let u = ip.as_ref().and_then(|ip| udp::Packet::new_checked(ip.payload()).ok());
                    match (ip, u) {
                        (Some(ip), Some(u)) => format!(
                            "{} > {} | {} > {} ttl {} | udp {} > {}",
                            eth.src_addr(),
                            eth.dst_addr(),
                            ip.src_addr(),
                            ip.dst_addr(),
                            ip.ttl(),
                            u.src_port(),
                            u.dst_port()
                        ),
                        _ => frame_line(frame),
                    }
                },
            );
            (line, 42)
        }
        BackendKind::HostGw => {
            let line = ethernet::Frame::new_checked(frame)
                .map_or_else(|e| e.to_string(), |eth| format!("{} > {}", eth.src_addr(), eth.dst_addr()));
            (line, 14)
        }
    }
}

/// The IPv4 packet a frame on `link` carries, through the backend's encapsulation on the underlay.
fn inner_ip(kind: BackendKind, link: Link, frame: &[u8]) -> Option<&[u8]> {
    let offset = match (link, kind) {
        (Link::Underlay { .. }, BackendKind::Vxlan) => 64,
        (Link::Underlay { .. }, BackendKind::Udp) => 42,
        _ => 14,
    };
    if !matches!(link, Link::Underlay { .. }) && frame.get(12..14) != Some(&[0x08, 0x00][..]) {
        return None;
    }
    frame.get(offset..)
}

/// Whether `ip` is the echo request with sequence number `seq` (from a demo pod).
fn is_echo_request(ip: &[u8], seq: u16) -> bool {
    let Ok(p) = ipv4::Packet::new_checked(ip) else { return false };
    if p.protocol() != Protocol::ICMP {
        return false;
    }
    icmpv4::Packet::new_checked(p.payload()).is_ok_and(|m| {
        m.msg_type() == icmpv4::Message::ECHO_REQUEST && m.echo_ident() == PING_IDENT && m.echo_seq_no() == seq
    })
}

fn ttl(ip: &[u8]) -> u8 {
    ipv4::Packet::new_checked(ip).map_or(0, |p| p.ttl())
}

/// One hop of a walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hop {
    /// Where: `node1 bridge`, `underlay`, …
    pub(crate) place: String,
    /// The length of the frame at this hop, when the hop is a link.
    pub(crate) len: Option<usize>,
    /// What the hop saw or did.
    pub(crate) text: String,
}

fn hop(place: impl Into<String>, len: Option<usize>, text: impl Into<String>) -> Hop {
    Hop { place: place.into(), len, text: text.into() }
}

/// The walk of the echo request with sequence number `seq` from pod 1 of node `src` to pod 1 of node `dst`
/// (other nodes), from the frames `trace` recorded.
///
/// # Errors
/// A frame of the walk is missing from the trace (it was dropped): which one.
pub(crate) fn walk(world: &World, trace: &[(Link, Vec<u8>)], seq: u16, src: u8, dst: u8) -> Result<Vec<Hop>, String> {
    let kind = world.kind();
    let find = |want: Link| {
        trace
            .iter()
            .find(|(link, frame)| {
                *link == want && inner_ip(kind, *link, frame).is_some_and(|ip| is_echo_request(ip, seq))
            })
            .map(|(_, frame)| frame.as_slice())
    };
    let sent = find(Link::PodToNode { node: src, pod: 1 }).ok_or("the pod's echo request is not on its eth0")?;
    let wire = find(Link::Underlay { from: src, to: dst })
        .ok_or_else(|| format!("node {src} sent no echo request on the underlay to node {dst}"))?;
    let got = find(Link::NodeToPod { node: dst, pod: 1 })
        .ok_or_else(|| format!("node {dst} delivered no echo request to its pod"))?;
    let (Some(src_node), Some(dst_node)) = (world.node(src), world.node(dst)) else {
        return Err("no such node".to_owned());
    };
    let sent_ip = sent.get(14..).unwrap_or_default();
    let wire_ip = inner_ip(kind, Link::Underlay { from: src, to: dst }, wire).unwrap_or_default();
    let got_ip = got.get(14..).unwrap_or_default();
    let dst_ip = ipv4::Packet::new_checked(sent_ip).map_or(Ipv4Addr::UNSPECIFIED, |p| p.dst_addr());
    let src_ip = ipv4::Packet::new_checked(sent_ip).map_or(Ipv4Addr::UNSPECIFIED, |p| p.src_addr());
    let eth_dst = |f: &[u8]| f.get(..6).and_then(MacAddr::from_bytes).map_or_else(String::new, |m| m.to_string());

    let gw = src_node.config().gateway_mac();
    let to_router =
        if eth_dst(sent) == gw.to_string() { "the gateway's (cni0): up to the router" } else { "not the gateway's" };
    let peer = src_node.peers().find(|p| p.subnet.contains(&dst_ip));
    let route = peer.map_or_else(
        || format!("{dst_ip}: no peer route"),
        |p| format!("{dst_ip} in {} via node {}; ttl {} -> {}", p.subnet, p.node_ip, ttl(sent_ip), ttl(wire_ip)),
    );
    let (outer, inner_at) = outer_part(kind, wire);
    let added = wire.len().saturating_sub(sent.len());
    let name = kind_name(kind);
    let encap = match kind {
        BackendKind::HostGw => format!("no header: MACs rewritten for the next hop: {outer}"),
        _ => format!("+{added} B: {outer}"),
    };
    let inner = wire.get(inner_at..).unwrap_or_default();
    let decap = match kind {
        BackendKind::Vxlan => format!("-{added} B, inner frame: {}", frame_line(inner)),
        BackendKind::Udp => format!("-{inner_at} B, inner packet: {}", ip_text(inner)),
        BackendKind::HostGw => format!("nothing to strip, Ethernet off: {}", ip_text(inner)),
    };
    let local = format!(
        "{dst_ip} in {} (local); ttl {} -> {}; MAC {} from ARP -> port 1",
        dst_node.config().pod_subnet.map_or_else(String::new, |s| s.to_string()),
        ttl(wire_ip),
        ttl(got_ip),
        eth_dst(got)
    );
    let sent_len = Some(sent.len());
    Ok(vec![
        hop(format!("pod {src_ip} eth0"), sent_len, frame_line(sent)),
        hop(format!("node{src} bridge"), None, format!("dst MAC {} is {to_router}", eth_dst(sent))),
        hop(format!("node{src} route"), None, route),
        hop(format!("node{src} {name} encap"), Some(wire.len()), encap),
        hop(
            "underlay",
            Some(wire.len()),
            format!("{} -> {}: into node{dst}'s underlay port", node_ip(src), node_ip(dst)),
        ),
        hop(
            format!("node{dst} {name} decap"),
            Some(inner.len() + if kind == BackendKind::Vxlan { 0 } else { 14 }),
            decap,
        ),
        hop(format!("node{dst} route+bridge"), None, local),
        hop(format!("pod {dst_ip} eth0"), Some(got.len()), frame_line(got)),
    ])
}

/// The backend's name as flannel spells it.
pub(crate) const fn kind_name(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Vxlan => "vxlan",
        BackendKind::Udp => "udp",
        BackendKind::HostGw => "host-gw",
    }
}

/// The hops as aligned lines, numbered.
pub(crate) fn render(hops: &[Hop]) -> String {
    let width = hops.iter().map(|h| h.place.chars().count()).max().unwrap_or(0);
    let mut s = String::new();
    for (i, h) in hops.iter().enumerate() {
        let len = h.len.map_or_else(String::new, |n| format!("{n} B"));
        let _ = writeln!(s, "    {} {:<width$} {len:>6}  {}", i + 1, h.place, h.text);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo request as a demo pod sends it: 0a:58:0a:f4:01:02 → the gateway, 10.244.1.2 → 10.244.2.2.
    fn echo_frame(ttl: u8) -> Vec<u8> {
        let mut f = vec![0x0a, 0x58, 10, 244, 1, 1, 0x0a, 0x58, 10, 244, 1, 2, 0x08, 0x00];
        let icmp_len = 8 + 4;
        let repr = ipv4::Repr {
            src_addr: Ipv4Addr::new(10, 244, 1, 2),
            dst_addr: Ipv4Addr::new(10, 244, 2, 2),
            protocol: Protocol::ICMP,
            payload_len: icmp_len,
            ttl,
            dscp: 0,
            ecn: 0,
            ident: 1,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        };
        let start = f.len();
        f.resize(start + 20 + icmp_len, 0);
        repr.emit(&mut ipv4::Packet::new_unchecked(&mut f[start..]));
        let m = &mut f[start + 20..];
        m[0] = 8;
        m[4..6].copy_from_slice(&PING_IDENT.to_be_bytes());
        m[6..8].copy_from_slice(&7u16.to_be_bytes());
        f
    }

    #[test]
    fn test_frame_line_echo_and_arp() {
        assert_eq!(
            frame_line(&echo_frame(64)),
            "0a:58:0a:f4:01:02 > 0a:58:0a:f4:01:01 | 10.244.1.2 > 10.244.2.2 ttl 64 ICMP \
             | icmp echo request id 0x7477 seq 7"
        );
        let pod = MacAddr::new(0x0a, 0x58, 10, 244, 1, 2);
        let mut arp_frame = vec![0xff; 6];
        arp_frame.extend_from_slice(pod.as_bytes());
        arp_frame.extend_from_slice(&[0x08, 0x06]);
        arp_frame.resize(42, 0);
        arp::Repr::request(pod, Ipv4Addr::new(10, 244, 1, 2), Ipv4Addr::new(10, 244, 1, 1))
            .emit(&mut arp::Packet::new_unchecked(&mut arp_frame[14..]));
        assert_eq!(
            frame_line(&arp_frame),
            "0a:58:0a:f4:01:02 > ff:ff:ff:ff:ff:ff | arp who-has 10.244.1.1 tell 10.244.1.2"
        );
        // A truncated frame says what is wrong instead of panicking.
        assert!(frame_line(&echo_frame(64)[..20]).contains("truncated"), "{}", frame_line(&echo_frame(64)[..20]));
    }

    #[test]
    fn test_tcp_flags() {
        let mut seg = [0u8; 20];
        seg[0..2].copy_from_slice(&49152u16.to_be_bytes());
        seg[2..4].copy_from_slice(&5201u16.to_be_bytes());
        seg[12] = 5 << 4;
        seg[13] = 0x12; // SYN + ACK
        assert_eq!(tcp_line(&seg), " | tcp 49152 > 5201 [S.] len 0");
        assert_eq!(tcp_line(&seg[..10]), " | tcp truncated (10 bytes)");
    }

    #[test]
    fn test_echo_request_is_found_through_each_encapsulation() {
        let frame = echo_frame(63);
        let ip = &frame[14..];
        assert!(is_echo_request(ip, 7));
        assert!(!is_echo_request(ip, 8));
        // VXLAN: 50 bytes of outer headers in front of the pod frame.
        let mut vx = vec![0u8; 50];
        vx.extend_from_slice(&frame);
        let under = Link::Underlay { from: 1, to: 2 };
        assert_eq!(inner_ip(BackendKind::Vxlan, under, &vx), Some(ip));
        let mut udp_frame = vec![0u8; 42];
        udp_frame.extend_from_slice(ip);
        assert_eq!(inner_ip(BackendKind::Udp, under, &udp_frame), Some(ip));
        assert_eq!(inner_ip(BackendKind::HostGw, under, &frame), Some(ip));
        // A pod-side ARP frame carries no IP packet.
        let mut not_ip = frame.clone();
        not_ip[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(inner_ip(BackendKind::Vxlan, Link::PodToNode { node: 1, pod: 1 }, &not_ip), None);
    }
}
