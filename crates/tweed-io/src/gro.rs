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

/// Bytes of the virtio-net header a TAP with `IFF_VNET_HDR` reads and writes in front of each frame
/// (`virtio_net_hdr_v1`: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers).
pub const VNET_HDR_LEN: usize = 12;
/// The largest coalesced frame: an IPv4 packet's limit, behind its Ethernet header.
const MAX_FRAME: usize = 14 + 65_535;
/// The most segments in one frame (the kernel's GSO limit).
const MAX_SEGMENTS: usize = 64;

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

/// Writes the train `frames` (as [`train_len`] found it, at least two) into `out` as one frame behind a virtio-net
/// header asking the kernel to cut it into TCP segments of the first one's size; returns the length written.
///
/// # Panics
/// Never for a train [`train_len`] accepted and an `out` of [`VNET_HDR_LEN`] + 65,549 bytes.
pub fn coalesce<B: AsRef<[u8]>>(frames: &[B], out: &mut [u8]) -> usize {
    let first = frames[0].as_ref();
    let Some(s0) = segment(first) else { return 0 };
    let mut at = VNET_HDR_LEN;
    out[at..at + first.len()].copy_from_slice(first);
    at += first.len();
    let mut psh = 0;
    for f in &frames[1..] {
        let f = f.as_ref();
        let hdr = ETH + 20 + usize::from(f[ETH + 32] >> 4) * 4;
        out[at..at + f.len() - hdr].copy_from_slice(&f[hdr..]);
        at += f.len() - hdr;
        psh |= f[ETH + 33] & FLAG_PSH;
    }
    let frame = &mut out[VNET_HDR_LEN..at];
    let ip_total = (frame.len() - ETH) as u16;
    frame[ETH + 2..ETH + 4].copy_from_slice(&ip_total.to_be_bytes());
    frame[ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
    let ip_sum = checksum::checksum(&frame[ETH..ETH + 20]);
    frame[ETH + 10..ETH + 12].copy_from_slice(&ip_sum.to_be_bytes());
    frame[ETH + 33] |= psh;
    // CHECKSUM_PARTIAL: the field holds the pseudo-header sum, the kernel adds the segment's own.
    let tcp_len = (frame.len() - ETH - 20) as u16;
    let (src, dst) = (addr(&frame[ETH + 12..]), addr(&frame[ETH + 16..]));
    let pseudo = checksum::pseudo_header_ipv4(src, dst, 6, tcp_len);
    frame[ETH + 36..ETH + 38].copy_from_slice(&pseudo.to_be_bytes());
    let hdr = &mut out[..VNET_HDR_LEN];
    hdr[0] = 1; // VIRTIO_NET_HDR_F_NEEDS_CSUM
    hdr[1] = 1; // VIRTIO_NET_HDR_GSO_TCPV4
    hdr[2..4].copy_from_slice(&(s0.hdr_len as u16).to_ne_bytes());
    hdr[4..6].copy_from_slice(&(s0.payload as u16).to_ne_bytes());
    hdr[6..8].copy_from_slice(&((ETH + 20) as u16).to_ne_bytes());
    hdr[8..10].copy_from_slice(&16u16.to_ne_bytes());
    hdr[10..12].copy_from_slice(&[0, 0]);
    at
}

/// Why a frame a TAP gave with a virtio-net header cannot be handed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffloadError {
    /// The header asks for something this code does not do (a GSO type other than TCPv4, ECN).
    Unsupported,
    /// The header or the frame lies (offsets or sizes outside the frame, not IPv4/TCP where it says so).
    Malformed,
    /// A segment would not fit a buffer.
    TooLarge,
    /// The frame would be cut into more segments than one read may give (a tiny `gso_size`).
    TooManySegments,
}

/// Cuts a frame read from a TAP with offloads on into complete frames: a TCPv4 GSO frame into segments of the
/// header's `gso_size` (headers copied, IPv4 length, identification and checksum, TCP sequence number, flags and
/// checksum redone), any other frame as it is with its partial checksum completed. Each frame is handed to `emit`
/// in order; returns how many. A frame that would make more than `max_segments` segments is refused whole.
///
/// # Errors
/// [`OffloadError`]; nothing was emitted then.
pub fn segment_offloaded(
    hdr: &[u8; VNET_HDR_LEN],
    frame: &mut [u8],
    max_frame: usize,
    max_segments: usize,
    mut emit: impl FnMut(&[u8]),
) -> Result<usize, OffloadError> {
    let flags = hdr[0];
    let gso_type = hdr[1];
    let field = |i: usize| usize::from(u16::from_ne_bytes([hdr[i], hdr[i + 1]]));
    let (gso_size, csum_start, csum_offset) = (field(4), field(6), field(8));
    if gso_type == 0 {
        if flags & 1 != 0 {
            // NEEDS_CSUM: the field holds the pseudo-header sum; add the rest from csum_start on.
            let at = csum_start.checked_add(csum_offset).filter(|&a| a + 2 <= frame.len());
            let Some(at) = at.filter(|_| csum_start < frame.len()) else { return Err(OffloadError::Malformed) };
            let partial = u16::from_be_bytes([frame[at], frame[at + 1]]);
            frame[at..at + 2].copy_from_slice(&[0, 0]);
            let mut c = !checksum::sum_with(partial, &frame[csum_start..]);
            // A UDP checksum that computes to zero is sent as all ones (zero means "none").
            if c == 0 && csum_offset == 6 {
                c = 0xffff;
            }
            frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        if frame.len() > max_frame {
            return Err(OffloadError::TooLarge);
        }
        emit(frame);
        return Ok(1);
    }
    if gso_type & 0x7f != 1 || gso_type & 0x80 != 0 {
        return Err(OffloadError::Unsupported);
    }
    // TCPv4: our own reading of the headers, not the header's hdr_len.
    if frame.len() < ETH + 20 + 20 || frame[12..14] != [0x08, 0x00] || frame[ETH] >> 4 != 4 || frame[ETH + 9] != 6 {
        return Err(OffloadError::Malformed);
    }
    let ihl = usize::from(frame[ETH] & 0x0f) * 4;
    let tcp_at = ETH + ihl;
    if ihl < 20 || tcp_at + 20 > frame.len() {
        return Err(OffloadError::Malformed);
    }
    let doff = usize::from(frame[tcp_at + 12] >> 4) * 4;
    let hdr_len = tcp_at + doff;
    if doff < 20 || hdr_len > frame.len() || gso_size == 0 {
        return Err(OffloadError::Malformed);
    }
    if hdr_len + gso_size > max_frame {
        return Err(OffloadError::TooLarge);
    }
    let payload = frame.len() - hdr_len;
    let (src, dst) = (addr(&frame[ETH + 12..]), addr(&frame[ETH + 16..]));
    let id0 = u16::from_be_bytes([frame[ETH + 4], frame[ETH + 5]]);
    let seq0 = u32::from_be_bytes([frame[tcp_at + 4], frame[tcp_at + 5], frame[tcp_at + 6], frame[tcp_at + 7]]);
    let flags0 = frame[tcp_at + 13];
    // Segments are built in place: segment i's headers go right in front of its payload, over the tail of
    // segment i − 1's payload, which has been handed on by then. Only the headers are copied.
    let mut headers = [0u8; ETH + 60 + 60];
    headers[..hdr_len].copy_from_slice(&frame[..hdr_len]);
    let count = payload.div_ceil(gso_size).max(1);
    if count > max_segments {
        return Err(OffloadError::TooManySegments);
    }
    for i in 0..count {
        let from = hdr_len + i * gso_size;
        let len = gso_size.min(frame.len() - from);
        let out = &mut frame[from - hdr_len..from + len];
        out[..hdr_len].copy_from_slice(&headers[..hdr_len]);
        let total = (ihl + doff + len) as u16;
        out[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
        out[ETH + 4..ETH + 6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
        out[ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&out[ETH..tcp_at]);
        out[ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
        let seq = seq0.wrapping_add((i * gso_size) as u32);
        out[tcp_at + 4..tcp_at + 8].copy_from_slice(&seq.to_be_bytes());
        let mut f = flags0;
        if i + 1 < count {
            f &= !(0x01 | FLAG_PSH); // FIN and PSH only on the last
        }
        if i > 0 {
            f &= !0x80; // CWR only on the first
        }
        out[tcp_at + 13] = f;
        out[tcp_at + 16..tcp_at + 18].copy_from_slice(&[0, 0]);
        let pseudo = checksum::pseudo_header_ipv4(src, dst, 6, (doff + len) as u16);
        let c = !checksum::sum_with(pseudo, &out[tcp_at..]);
        out[tcp_at + 16..tcp_at + 18].copy_from_slice(&c.to_be_bytes());
        emit(out);
    }
    Ok(count)
}

fn addr(b: &[u8]) -> [u8; 4] {
    [b[0], b[1], b[2], b[3]]
}

/// The room [`coalesce`] needs.
pub const COALESCE_ROOM: usize = VNET_HDR_LEN + MAX_FRAME;

#[cfg(test)]
mod tests {
    use super::*;

    const FLAG_FIN: u8 = 0x01;

    /// An Ethernet/IPv4/TCP segment with full, correct checksums.
    fn seg(seq: u32, payload: &[u8], flags: u8, ts: u32) -> Vec<u8> {
        let mut f = vec![0x0a, 0x58, 10, 244, 2, 2, 0x0a, 0x58, 10, 244, 2, 1, 0x08, 0x00];
        let tcp_len = 32; // with a timestamps option
        let total = (20 + tcp_len + payload.len()) as u16;
        f.extend_from_slice(&[0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 62, 6, 0, 0, 10, 244, 1, 2, 10, 244, 2, 2]);
        f[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
        let c = checksum::checksum(&f[ETH..ETH + 20]);
        f[ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&[0xc0, 0x01, 0x14, 0x51]);
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&7u32.to_be_bytes());
        f.extend_from_slice(&[0x80, flags, 0x01, 0xf5, 0, 0, 0, 0]);
        f.extend_from_slice(&[1, 1, 8, 10]);
        f.extend_from_slice(&ts.to_be_bytes());
        f.extend_from_slice(&99u32.to_be_bytes());
        f.extend_from_slice(payload);
        let tcp = &f[ETH + 20..];
        let pseudo = checksum::pseudo_header_ipv4(addr(&f[ETH + 12..]), addr(&f[ETH + 16..]), 6, tcp.len() as u16);
        let c = !checksum::sum_with(pseudo, tcp);
        f[ETH + 36..ETH + 38].copy_from_slice(&c.to_be_bytes());
        f
    }

    fn train(n: usize, mss: usize, last: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let len = if i + 1 == n { last } else { mss };
                let data: Vec<u8> = (0..len).map(|k| ((i * mss + k) % 251) as u8).collect();
                seg(1000 + (i * mss) as u32, &data, FLAG_ACK | if i + 1 == n { FLAG_PSH } else { 0 }, 5)
            })
            .collect()
    }

    /// A train coalesces into one frame whose payload is the segments' in order, with lengths and the IPv4
    /// checksum right, the pseudo-header sum in the TCP checksum, PSH kept, and the virtio-net header set.
    #[test]
    fn a_train_becomes_one_frame() {
        let frames = train(5, 1398, 700);
        assert_eq!(train_len(&frames), 5);
        let mut out = vec![0u8; COALESCE_ROOM];
        let n = coalesce(&frames, &mut out);
        let frame = &out[VNET_HDR_LEN..n];
        let payload: Vec<u8> = frames.iter().flat_map(|f| f[ETH + 52..].to_vec()).collect();
        assert_eq!(&frame[ETH + 52..], &payload[..]);
        let f0 = &frames[0];
        assert_eq!(frame[..16], f0[..16], "MACs, version, TOS");
        assert_eq!(frame[18..24], f0[18..24], "id, flags, TTL, protocol");
        assert_eq!(frame[26..ETH + 33], f0[26..ETH + 33], "addresses, ports, sequence, acknowledgement");
        assert_eq!(frame[ETH + 34..ETH + 36], f0[ETH + 34..ETH + 36], "window");
        assert_eq!(frame[ETH + 40..ETH + 52], f0[ETH + 40..ETH + 52], "options");
        assert_eq!(usize::from(u16::from_be_bytes([frame[16], frame[17]])), frame.len() - ETH);
        assert!(checksum::verify(&frame[ETH..ETH + 20]), "IPv4 checksum verifies");
        assert_eq!(frame[ETH + 33], FLAG_ACK | FLAG_PSH);
        // Completing the partial checksum as the kernel does gives a valid segment checksum.
        let mut full = frame.to_vec();
        let partial = u16::from_be_bytes([full[ETH + 36], full[ETH + 37]]);
        full[ETH + 36..ETH + 38].copy_from_slice(&[0, 0]);
        let c = !checksum::sum_with(partial, &full[ETH + 20..]);
        full[ETH + 36..ETH + 38].copy_from_slice(&c.to_be_bytes());
        let len = (full.len() - ETH - 20) as u16;
        let pseudo = checksum::pseudo_header_ipv4(addr(&full[ETH + 12..]), addr(&full[ETH + 16..]), 6, len);
        assert_eq!(checksum::sum_with(pseudo, &full[ETH + 20..]), 0xffff, "the completed checksum verifies");
        let hdr = &out[..VNET_HDR_LEN];
        assert_eq!((hdr[0], hdr[1]), (1, 1));
        assert_eq!(u16::from_ne_bytes([hdr[2], hdr[3]]), 66);
        assert_eq!(u16::from_ne_bytes([hdr[4], hdr[5]]), 1398);
        assert_eq!(u16::from_ne_bytes([hdr[6], hdr[7]]), 34);
        assert_eq!(u16::from_ne_bytes([hdr[8], hdr[9]]), 16);
    }

    /// What the TAP hands over with TSO on (a large frame and a GSO header) comes out as the segments it was
    /// made of: coalescing a train and cutting it again gives the train back.
    #[test]
    fn segmenting_undoes_coalescing() {
        let frames = train(5, 1398, 700);
        let mut out = vec![0u8; COALESCE_ROOM];
        let n = coalesce(&frames, &mut out);
        let hdr: [u8; VNET_HDR_LEN] = out[..VNET_HDR_LEN].try_into().unwrap();
        let mut got = Vec::new();
        let count = segment_offloaded(&hdr, &mut out[VNET_HDR_LEN..n], 1600, 128, |f| got.push(f.to_vec())).unwrap();
        assert_eq!(count, 5);
        for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
            // Identification counts up from the first segment's, as the kernel's TSO does.
            let mut want = f.clone();
            want[ETH + 4..ETH + 6].copy_from_slice(&(0x1234u16 + i as u16).to_be_bytes());
            want[ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
            let c = checksum::checksum(&want[ETH..ETH + 20]);
            want[ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
            assert_eq!(g, &want, "segment {i}");
        }
        assert_eq!(segment_offloaded(&hdr, &mut out[VNET_HDR_LEN..n], 1000, 128, |_| {}), Err(OffloadError::TooLarge));
    }

    /// A partial checksum (NEEDS_CSUM without GSO) is completed; lying offsets and unknown GSO types are refused.
    #[test]
    fn partial_checksums_and_lies() {
        let mut f = seg(1, b"hello", FLAG_ACK, 5);
        let want = f.clone();
        let len = (f.len() - ETH - 20) as u16;
        let pseudo = checksum::pseudo_header_ipv4(addr(&f[ETH + 12..]), addr(&f[ETH + 16..]), 6, len);
        f[ETH + 36..ETH + 38].copy_from_slice(&pseudo.to_be_bytes());
        let mut hdr = [0u8; VNET_HDR_LEN];
        hdr[0] = 1;
        hdr[6..8].copy_from_slice(&34u16.to_ne_bytes());
        hdr[8..10].copy_from_slice(&16u16.to_ne_bytes());
        let mut got = Vec::new();
        assert_eq!(segment_offloaded(&hdr, &mut f.clone(), 1600, 128, |x| got.push(x.to_vec())), Ok(1));
        assert_eq!(got, [want]);
        hdr[8..10].copy_from_slice(&4000u16.to_ne_bytes());
        assert_eq!(segment_offloaded(&hdr, &mut f.clone(), 1600, 128, |_| {}), Err(OffloadError::Malformed));
        let mut gso = [0u8; VNET_HDR_LEN];
        gso[1] = 4; // UDP
        assert_eq!(segment_offloaded(&gso, &mut f.clone(), 1600, 128, |_| {}), Err(OffloadError::Unsupported));
        gso[1] = 1;
        assert_eq!(
            segment_offloaded(&gso, &mut f.clone(), 1600, 128, |_| {}),
            Err(OffloadError::Malformed),
            "gso_size 0"
        );
        gso[4..6].copy_from_slice(&1000u16.to_ne_bytes());
        assert_eq!(segment_offloaded(&gso, &mut f[..30].to_vec(), 1600, 128, |_| {}), Err(OffloadError::Malformed));
    }

    /// Random headers over random and real frames never panic, and what comes out is never longer than asked.
    #[test]
    fn hostile_offload_headers_never_panic() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let real = {
            let frames = train(3, 1000, 10);
            let mut out = vec![0u8; COALESCE_ROOM];
            let n = coalesce(&frames, &mut out);
            out[VNET_HDR_LEN..n].to_vec()
        };
        for round in 0..20_000 {
            let mut hdr = [0u8; VNET_HDR_LEN];
            for b in &mut hdr {
                *b = next() as u8;
            }
            hdr[1] = [0, 1, 0x81, 3, next() as u8][round % 5];
            let mut frame = if round % 2 == 0 {
                let mut f = real.clone();
                let i = (next() as usize) % f.len();
                f[i] = next() as u8;
                f.truncate(1 + (next() as usize) % f.len());
                f
            } else {
                (0..(next() % 3000) as usize).map(|_| next() as u8).collect()
            };
            let _ = segment_offloaded(&hdr, &mut frame, 1600, 128, |f| assert!(f.len() <= 1600));
            let frames = [frame.clone(), frame];
            if train_len(&frames) == 2 {
                let mut out = vec![0u8; COALESCE_ROOM];
                let _ = coalesce(&frames, &mut out);
            }
        }
    }

    /// Finding 9: a segment whose TCP checksum does not verify (one flipped payload byte) is never merged: the
    /// train ends before it, it goes alone (written with the plain header: no DATA_VALID, the pod's kernel checks
    /// it and drops it), and the segments after it form their own train.
    #[test]
    fn a_segment_with_a_bad_checksum_is_not_merged() {
        let mut t = train(5, 1000, 1000);
        t[2][ETH + 60] ^= 0x40;
        assert_eq!(train_len(&t), 2, "the train stops before the bad segment");
        assert_eq!(train_len(&t[2..]), 1, "the bad segment goes alone");
        assert_eq!(train_len(&t[3..]), 2, "the good ones after it still merge");
        let mut first = train(3, 1000, 1000);
        first[0][ETH + 60] ^= 1;
        assert_eq!(train_len(&first), 1, "a bad first segment is not merged either");
        // What a lone segment is written with vouches for nothing.
        assert_eq!(PLAIN[0] & 2, 0, "no VIRTIO_NET_HDR_F_DATA_VALID");
        assert_eq!(PLAIN[0] & 1, 0, "no NEEDS_CSUM");
    }

    /// Finding 13: a pod-chosen tiny `gso_size` cannot make one read cost unbounded work: a frame that would
    /// cut into more segments than allowed is refused whole, nothing emitted.
    #[test]
    fn a_tiny_gso_size_is_refused_whole() {
        let big = train(1, 60_000, 60_000).remove(0);
        let mut hdr = [0u8; VNET_HDR_LEN];
        hdr[1] = 1;
        hdr[4..6].copy_from_slice(&1u16.to_ne_bytes());
        let mut emitted = 0;
        let r = segment_offloaded(&hdr, &mut big.clone(), 1600, 128, |_| emitted += 1);
        assert_eq!((r, emitted), (Err(OffloadError::TooManySegments), 0));
        hdr[4..6].copy_from_slice(&1000u16.to_ne_bytes());
        let r = segment_offloaded(&hdr, &mut big.clone(), 1600, 60, |_| emitted += 1);
        assert_eq!((r, emitted), (Ok(60), 60), "60 segments of 1000 bytes are fine");
    }

    /// Everything that must stop a train does.
    #[test]
    fn trains_stop_where_linux_would() {
        let t = train(4, 1000, 1000);
        let mut gap = t.clone();
        gap[2] = seg(1000 + 2 * 1000 + 1, &[1; 1000], FLAG_ACK, 5);
        assert_eq!(train_len(&gap), 2, "a sequence gap");
        let mut short = t.clone();
        short[1] = seg(2000, &[1; 500], FLAG_ACK, 5);
        assert_eq!(train_len(&short), 2, "a short segment ends the train");
        let mut psh = t.clone();
        psh[1] = seg(2000, &[1; 1000], FLAG_ACK | FLAG_PSH, 5);
        assert_eq!(train_len(&psh), 2, "PSH ends the train");
        let mut ts = t.clone();
        ts[2] = seg(3000, &[1; 1000], FLAG_ACK, 6);
        assert_eq!(train_len(&ts), 2, "different TCP options");
        let mut fin = t.clone();
        fin[1] = seg(2000, &[1; 1000], FLAG_ACK | FLAG_FIN, 5);
        assert_eq!(train_len(&fin), 1, "FIN");
        let mut other = t.clone();
        other[1][ETH + 15] = 3; // another destination address
        assert_eq!(train_len(&other), 1, "another flow");
        let ack_only = seg(2000, &[], FLAG_ACK, 5);
        assert_eq!(train_len(&[t[0].clone(), ack_only]), 1, "no data");
        assert_eq!(train_len(&[vec![0u8; 10]]), 1, "garbage is written as it is");
        assert_eq!(train_len::<Vec<u8>>(&[]), 0);
        let long = train(70, 1000, 1000);
        assert_eq!(train_len(&long), MAX_SEGMENTS);
        let mut lying = t.clone();
        lying[1][ETH + 3] ^= 1; // total length no longer matches the frame
        assert_eq!(train_len(&lying), 1);
    }
}
