//! TCP segment coalescing for TAP writes (generic receive offload in userspace): consecutive Ethernet/IPv4/TCP
//! segments of one flow, in order, become one large frame that the TAP takes with a virtio-net header saying how
//! the kernel may cut it again (`gso_type` TCPv4, `gso_size` = the segment size). The pod's TCP stack then handles
//! one frame instead of dozens: on the write side, as the kernel's GRO does for a NIC.
//!
//! The rules are Linux's `tcp_gro_receive`, made stricter where that is simpler: IPv4 without options, not a
//! fragment, same addresses, TOS, TTL and DF; same ports, acknowledgement, window and TCP options; each segment
//! starts where the previous one ended; every segment but the last is exactly the first one's size; only the last
//! may carry PSH; none carries SYN, FIN, RST, URG, ECE or CWR. Anything else is written as it is.

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
    /// Ethernet + IPv4 + TCP header length.
    hdr_len: usize,
    /// TCP header length.
    tcp_len: usize,
    seq: u32,
    payload: usize,
    flags: u8,
}

/// Reads the parts of a frame coalescing needs; `None` when it is not a plain IPv4/TCP segment with data.
fn segment(frame: &[u8]) -> Option<Segment> {
    if frame.len() < ETH + 20 + 20 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[ETH..];
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    // IPv4, no options, TCP, not a fragment, a total length that matches the frame exactly.
    if ip[0] != 0x45 || ip[9] != 6 || u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 || ETH + total != frame.len() {
        return None;
    }
    let tcp = &ip[20..];
    let tcp_len = usize::from(tcp[12] >> 4) * 4;
    if tcp_len < 20 || 20 + tcp_len > total {
        return None;
    }
    let payload = total - 20 - tcp_len;
    let flags = tcp[13];
    if payload == 0 || flags & !(FLAG_ACK | FLAG_PSH) != 0 || flags & FLAG_ACK == 0 {
        return None;
    }
    Some(Segment {
        hdr_len: ETH + 20 + tcp_len,
        tcp_len,
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        payload,
        flags,
    })
}

/// Whether `b` (described by `sb`) continues the train that `a` (described by `sa`) ends, whose segments are
/// `mss` bytes.
fn continues(a: &[u8], sa: &Segment, b: &[u8], sb: &Segment, mss: usize) -> bool {
    sa.flags & FLAG_PSH == 0
        && sa.payload == mss
        && sb.payload <= mss
        && sb.tcp_len == sa.tcp_len
        && sb.seq == sa.seq.wrapping_add(sa.payload as u32)
        // MACs and EtherType; IPv4 version/IHL, TOS; flags/DF; TTL, protocol; addresses.
        && a[..14] == b[..14]
        && a[14..16] == b[14..16]
        && a[20..21] == b[20..21]
        && a[22..24] == b[22..24]
        && a[26..34] == b[26..34]
        // Ports; then acknowledgement, data offset, window; then the options (the checksum and urgent pointer,
        // bytes 16–19 of the TCP header, may differ).
        && a[34..38] == b[34..38]
        && a[42..47] == b[42..47]
        && a[48..50] == b[48..50]
        && a[54..sa.hdr_len] == b[54..sb.hdr_len]
}

/// Whether the TCP checksum of `frame` (a plain IPv4/TCP segment, as [`segment`] read it) verifies.
fn checksum_ok(frame: &[u8]) -> bool {
    let tcp = &frame[ETH + 20..];
    let pseudo = checksum::pseudo_header_ipv4(addr(&frame[ETH + 12..]), addr(&frame[ETH + 16..]), 6, tcp.len() as u16);
    checksum::sum_with(pseudo, tcp) == 0xffff
}

/// How many frames from the start of `frames` form one train (at least 1).
pub fn train_len<B: AsRef<[u8]>>(frames: &[B]) -> usize {
    let Some(first) = frames.first() else { return 0 };
    let first = first.as_ref();
    if frames.len() < 2 {
        return 1;
    }
    let Some(s0) = segment(first) else { return 1 };
    if !checksum_ok(first) {
        return 1;
    }
    let (mut prev, mut sp, mut n, mut bytes) = (first, s0, 1, first.len());
    for f in &frames[1..] {
        let f = f.as_ref();
        let Some(sf) = segment(f) else { break };
        if n == MAX_SEGMENTS
            || bytes + sf.payload > MAX_FRAME
            || !continues(prev, &sp, f, &sf, s0.payload)
            || !checksum_ok(f)
        {
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
/// found it, at least two): a virtio-net header asking the kernel to cut it into TCP segments of the first one's
/// size, then the first segment's headers with the whole frame's lengths, IPv4 checksum, PSH and partial TCP
/// checksum. The frame is these bytes followed by each segment's TCP payload, in order; returns how many bytes
/// of `head` are used (0 when `frames` is not a train).
pub fn coalesced_head<B: AsRef<[u8]>>(frames: &[B], head: &mut [u8; HEAD_ROOM]) -> usize {
    let Some(first) = frames.first().map(AsRef::as_ref) else { return 0 };
    let Some(s0) = segment(first) else { return 0 };
    let payload: usize = frames.iter().map(|f| payload(f.as_ref()).len()).sum();
    let len = VNET_HDR_LEN + s0.hdr_len;
    let (hdr, frame) = head[..len].split_at_mut(VNET_HDR_LEN);
    frame.copy_from_slice(&first[..s0.hdr_len]);
    let psh = frames.iter().fold(0, |p, f| p | f.as_ref()[ETH + 33] & FLAG_PSH);
    let ip_total = (s0.hdr_len - ETH + payload) as u16;
    frame[ETH + 2..ETH + 4].copy_from_slice(&ip_total.to_be_bytes());
    frame[ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
    let ip_sum = checksum::checksum(&frame[ETH..ETH + 20]);
    frame[ETH + 10..ETH + 12].copy_from_slice(&ip_sum.to_be_bytes());
    frame[ETH + 33] |= psh;
    // CHECKSUM_PARTIAL: the field holds the pseudo-header sum, the kernel adds the segment's own.
    let tcp_len = (s0.tcp_len + payload) as u16;
    let (src, dst) = (addr(&frame[ETH + 12..]), addr(&frame[ETH + 16..]));
    let pseudo = checksum::pseudo_header_ipv4(src, dst, 6, tcp_len);
    frame[ETH + 36..ETH + 38].copy_from_slice(&pseudo.to_be_bytes());
    hdr[0] = 1; // VIRTIO_NET_HDR_F_NEEDS_CSUM
    hdr[1] = 1; // VIRTIO_NET_HDR_GSO_TCPV4
    hdr[2..4].copy_from_slice(&(s0.hdr_len as u16).to_ne_bytes());
    hdr[4..6].copy_from_slice(&(s0.payload as u16).to_ne_bytes());
    hdr[6..8].copy_from_slice(&((ETH + 20) as u16).to_ne_bytes());
    hdr[8..10].copy_from_slice(&16u16.to_ne_bytes());
    hdr[10..12].copy_from_slice(&[0, 0]);
    len
}

/// The TCP payload of a segment of a train (empty for a frame too short to have one).
#[must_use]
pub(crate) fn payload(frame: &[u8]) -> &[u8] {
    let Some(&doff) = frame.get(ETH + 32) else { return &[] };
    frame.get(ETH + 20 + usize::from(doff >> 4) * 4..).unwrap_or(&[])
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
