//! Segment coalescing for TAP writes (generic receive offload in userspace): consecutive Ethernet/IPv4 TCP
//! segments of one flow, in order, become one large frame that the TAP takes with a virtio-net header saying how
//! the kernel may cut it again (`gso_type` TCPv4, `gso_size` = the segment size). The pod's TCP stack then handles
//! one frame instead of dozens: on the write side, as the kernel's GRO does for a NIC. Consecutive UDP datagrams
//! of one flow become one frame the same way (`gso_type` UDP_L4, on kernels that take it: Linux 6.2), which the
//! pod's kernel cuts back into the same datagrams at its socket (or hands whole to a socket with `UDP_GRO`).
//!
//! The rules are Linux's `tcp_gro_receive` and `udp_gro_receive_segment`, made stricter where that is simpler:
//! IPv4 without options, not a fragment, its header checksum right, same addresses, TOS, TTL and DF, same ports;
//! every segment but the last is exactly the first one's size, the last may be shorter; every segment's own
//! checksum verifies (a UDP datagram without one, checksum 0, is not merged: the kernel would give its pieces
//! one). TCP: same acknowledgement, window and TCP options; each segment starts where the previous one ended;
//! only the last may carry PSH; none carries SYN, FIN, RST, URG, ECE or CWR. UDP: the IPv4 identification goes up
//! by one from datagram to datagram, as the kernel numbers the pieces it cuts (so the pieces are the datagrams,
//! byte for byte). Anything else is written as it is.
//!
//! Inside the pod, what sees packets before the socket (netfilter and conntrack, tc, `tcpdump` on its `eth0`, an
//! ICMP "port unreachable") sees one packet per coalesced frame, as it does behind a NIC with GRO.

use tweed_wire::checksum;

mod cut;

pub use cut::{Cut, cut_offloaded};
pub use cut::{OffloadError, segment_offloaded};

/// Bytes of the virtio-net header a TAP with `IFF_VNET_HDR` reads and writes in front of each frame
/// (`virtio_net_hdr_v1`: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers).
pub const VNET_HDR_LEN: usize = 12;
/// The largest coalesced frame: an IPv4 packet's limit, behind its Ethernet header.
const MAX_FRAME: usize = 14 + 65_535;
/// The most segments in one frame (the kernel's GSO limit).
pub(crate) const MAX_SEGMENTS: usize = 64;

const ETH: usize = 14;
const FLAG_PSH: u8 = 0x08;
const FLAG_ACK: u8 = 0x10;

/// A virtio-net header with no offload: the frame is complete.
pub(crate) const PLAIN: [u8; VNET_HDR_LEN] = [0; VNET_HDR_LEN];

/// What identifies a segment's flow and what must stay equal along a train.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    /// [`TCP`] or [`UDP`].
    proto: u8,
    /// Ethernet + IPv4 + TCP or UDP header length.
    hdr_len: usize,
    /// TCP or UDP header length.
    l4_len: usize,
    /// TCP: the sequence number (UDP: 0).
    seq: u32,
    /// The IPv4 identification.
    id: u16,
    payload: usize,
    /// TCP: the flags (UDP: 0).
    flags: u8,
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const UDP_HDR: usize = 8;

/// Reads the parts of a frame coalescing needs; `None` when it is not a plain IPv4 TCP segment with data or (with
/// `udp`) a UDP datagram with data and a checksum.
fn segment(frame: &[u8], udp: bool) -> Option<Segment> {
    if frame.len() < ETH + 20 + UDP_HDR || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[ETH..];
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    // IPv4, no options, not a fragment, a total length that matches the frame exactly, a header checksum that
    // verifies (the merged frame gets a new one: it must not vouch for a header nobody checked).
    if ip[0] != 0x45
        || u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0
        || ETH + total != frame.len()
        || !checksum::verify(&ip[..20])
    {
        return None;
    }
    let id = u16::from_be_bytes([ip[4], ip[5]]);
    let l4 = &ip[20..];
    match ip[9] {
        TCP if l4.len() >= 20 => {
            let tcp_len = usize::from(l4[12] >> 4) * 4;
            if tcp_len < 20 || 20 + tcp_len > total {
                return None;
            }
            let payload = total - 20 - tcp_len;
            let flags = l4[13];
            if payload == 0 || flags & !(FLAG_ACK | FLAG_PSH) != 0 || flags & FLAG_ACK == 0 {
                return None;
            }
            let seq = u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]);
            Some(Segment { proto: TCP, hdr_len: ETH + 20 + tcp_len, l4_len: tcp_len, seq, id, payload, flags })
        }
        UDP if udp => {
            let len = usize::from(u16::from_be_bytes([l4[4], l4[5]]));
            let payload = len.checked_sub(UDP_HDR)?;
            if len != total - 20 || payload == 0 || l4[6..8] == [0, 0] {
                return None;
            }
            Some(Segment { proto: UDP, hdr_len: ETH + 20 + UDP_HDR, l4_len: UDP_HDR, seq: 0, id, payload, flags: 0 })
        }
        _ => None,
    }
}

/// Whether `b` (described by `sb`) continues the train that `a` (described by `sa`) ends, whose segments are
/// `mss` bytes.
fn continues(a: &[u8], sa: &Segment, b: &[u8], sb: &Segment, mss: usize) -> bool {
    let same = sb.proto == sa.proto
        && sa.payload == mss
        && sb.payload <= mss
        && sb.l4_len == sa.l4_len
        // MACs and EtherType; IPv4 version/IHL, TOS; flags/DF; TTL, protocol; addresses; ports.
        && a[..14] == b[..14]
        && a[14..16] == b[14..16]
        && a[20..21] == b[20..21]
        && a[22..24] == b[22..24]
        && a[26..38] == b[26..38];
    if !same {
        return false;
    }
    if sa.proto == UDP {
        return sb.id == sa.id.wrapping_add(1);
    }
    sa.flags & FLAG_PSH == 0
        && sb.seq == sa.seq.wrapping_add(sa.payload as u32)
        // The acknowledgement, data offset, window; then the options (the checksum and urgent pointer, bytes
        // 16–19 of the TCP header, may differ).
        && a[42..47] == b[42..47]
        && a[48..50] == b[48..50]
        && a[54..sa.hdr_len] == b[54..sb.hdr_len]
}

/// Whether the TCP or UDP checksum of `frame` (as [`segment`] read it) verifies.
fn checksum_ok(frame: &[u8], s: &Segment) -> bool {
    let l4 = &frame[ETH + 20..];
    let pseudo =
        checksum::pseudo_header_ipv4(addr(&frame[ETH + 12..]), addr(&frame[ETH + 16..]), s.proto, l4.len() as u16);
    checksum::sum_with(pseudo, l4) == 0xffff
}

/// How many frames from the start of `frames` form one train (at least 1): TCP segments, and UDP datagrams when
/// `udp` (the TAP takes UDP segmentation offload).
pub fn train_len<B: AsRef<[u8]>>(frames: &[B], udp: bool) -> usize {
    let Some(first) = frames.first() else { return 0 };
    let first = first.as_ref();
    if frames.len() < 2 {
        return 1;
    }
    let Some(s0) = segment(first, udp) else { return 1 };
    let (mut prev, mut sp, mut n, mut bytes) = (first, s0, 1, first.len());
    for f in &frames[1..] {
        let f = f.as_ref();
        let Some(sf) = segment(f, udp) else { break };
        if n == MAX_SEGMENTS || bytes + sf.payload > MAX_FRAME || !continues(prev, &sp, f, &sf, s0.payload) {
            break;
        }
        // Payloads are summed only once two frames could merge: a frame that goes alone is not read again.
        if n == 1 && !checksum_ok(first, &s0) {
            return 1;
        }
        if !checksum_ok(f, &sf) {
            break;
        }
        bytes += sf.payload;
        n += 1;
        (prev, sp) = (f, sf);
    }
    n
}

/// The most headers in front of a coalesced frame: the virtio-net header, Ethernet, IPv4 and TCP with all its
/// options.
pub const HEAD_ROOM: usize = VNET_HDR_LEN + ETH + 20 + 60;

/// The first [`VNET_HDR_LEN`] + header bytes of the frame that coalesces the train `frames` (as [`train_len`]
/// found it, at least two): a virtio-net header asking the kernel to cut it into TCP segments (or UDP datagrams)
/// of the first one's size, then the first segment's headers with the whole frame's lengths, IPv4 checksum, PSH
/// (TCP) and partial TCP or UDP checksum. The frame is these bytes followed by each segment's payload, in order;
/// returns how many bytes of `head` are used (0 when `frames` is not a train).
pub fn coalesced_head<B: AsRef<[u8]>>(frames: &[B], head: &mut [u8; HEAD_ROOM]) -> usize {
    let Some(first) = frames.first().map(AsRef::as_ref) else { return 0 };
    let Some(s0) = segment(first, true) else { return 0 };
    let payload: usize = frames.iter().map(|f| payload(f.as_ref()).len()).sum();
    let len = VNET_HDR_LEN + s0.hdr_len;
    let (hdr, frame) = head[..len].split_at_mut(VNET_HDR_LEN);
    frame.copy_from_slice(&first[..s0.hdr_len]);
    let ip_total = (s0.hdr_len - ETH + payload) as u16;
    frame[ETH + 2..ETH + 4].copy_from_slice(&ip_total.to_be_bytes());
    frame[ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
    let ip_sum = checksum::checksum(&frame[ETH..ETH + 20]);
    frame[ETH + 10..ETH + 12].copy_from_slice(&ip_sum.to_be_bytes());
    // CHECKSUM_PARTIAL: the field holds the pseudo-header sum, the kernel adds the segment's own.
    let l4_total = (s0.l4_len + payload) as u16;
    let (src, dst) = (addr(&frame[ETH + 12..]), addr(&frame[ETH + 16..]));
    let pseudo = checksum::pseudo_header_ipv4(src, dst, s0.proto, l4_total);
    let (gso_type, csum_at) = if s0.proto == TCP {
        frame[ETH + 33] |= frames.iter().fold(0, |p, f| p | f.as_ref()[ETH + 33] & FLAG_PSH);
        (GSO_TCPV4, 16)
    } else {
        // The UDP length of the whole: the kernel takes it out of the pseudo-header sum for each datagram.
        frame[ETH + 24..ETH + 26].copy_from_slice(&l4_total.to_be_bytes());
        (GSO_UDP_L4, 6)
    };
    frame[ETH + 20 + csum_at..ETH + 22 + csum_at].copy_from_slice(&pseudo.to_be_bytes());
    hdr[0] = 1; // VIRTIO_NET_HDR_F_NEEDS_CSUM
    hdr[1] = gso_type;
    hdr[2..4].copy_from_slice(&(s0.hdr_len as u16).to_ne_bytes());
    hdr[4..6].copy_from_slice(&(s0.payload as u16).to_ne_bytes());
    hdr[6..8].copy_from_slice(&((ETH + 20) as u16).to_ne_bytes());
    hdr[8..10].copy_from_slice(&(csum_at as u16).to_ne_bytes());
    hdr[10..12].copy_from_slice(&[0, 0]);
    len
}

/// `VIRTIO_NET_HDR_GSO_TCPV4`.
const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_UDP_L4`.
pub(crate) const GSO_UDP_L4: u8 = 5;

/// The TCP or UDP payload of a segment of a train (empty for a frame too short to have one).
#[must_use]
pub(crate) fn payload(frame: &[u8]) -> &[u8] {
    let l4_len = match frame.get(ETH + 9) {
        Some(&UDP) => UDP_HDR,
        _ => {
            let Some(&doff) = frame.get(ETH + 32) else { return &[] };
            usize::from(doff >> 4) * 4
        }
    };
    frame.get(ETH + 20 + l4_len..).unwrap_or(&[])
}

/// Writes the train `frames` (as [`train_len`] found it, at least two) into `out` as one frame behind a virtio-net
/// header: [`coalesced_head`], then the payloads. Returns the length written (0: not a train, or `out` is
/// shorter than [`COALESCE_ROOM`]). A TAP write does better gathering the same parts (`writev`) than copying them.
pub fn coalesce<B: AsRef<[u8]>>(frames: &[B], out: &mut [u8]) -> usize {
    let mut head = [0u8; HEAD_ROOM];
    let head_len = coalesced_head(frames, &mut head);
    if head_len == 0 || out.len() < COALESCE_ROOM {
        return 0;
    }
    out[..head_len].copy_from_slice(&head[..head_len]);
    let mut at = head_len;
    for f in frames {
        let p = payload(f.as_ref());
        out[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    at
}

fn addr(b: &[u8]) -> [u8; 4] {
    [b[0], b[1], b[2], b[3]]
}

/// The room [`coalesce`] needs.
pub const COALESCE_ROOM: usize = VNET_HDR_LEN + MAX_FRAME;

#[cfg(test)]
mod bench;
#[cfg(test)]
mod tests;
