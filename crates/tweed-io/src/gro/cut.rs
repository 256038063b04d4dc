//! Cutting what a TAP with offloads hands over (a TCPv4 TSO frame of up to 64 KiB, or a frame whose checksum is
//! left unfinished) into complete frames: the direction the kernel's GSO takes on a NIC.
//!
//! One [`Plan`] reads and checks the frame and the virtio-net header once; then each segment's headers are built
//! from the first one's and its TCP checksum finished over its payload. Two ways out of it, sharing that plan:
//! [`segment_offloaded`] builds the segments in place in the read buffer, and [`cut_offloaded`] hands out
//! [`Cut`]s that a caller copies into its own buffers with [`Cut::copy_to`], which finishes the checksum in the
//! same pass as the copy (`checksum::copy_sum`): one read of the payload instead of two.

use core::ops::Range;

use tweed_wire::checksum;

use super::{ETH, FLAG_PSH, VNET_HDR_LEN, addr};

/// The most header bytes a segment has: Ethernet, IPv4 and TCP with all their options.
const MAX_HEAD: usize = ETH + 60 + 60;

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

/// A checksum to finish: over the frame's bytes from `from` on, added to `partial`, into the field at `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Finish {
    /// Where the summed bytes start in the frame (the TCP header's start; a partial checksum's `csum_start`).
    from: usize,
    /// Where the 16-bit checksum field is in the frame (among the summed bytes, which hold zero there).
    at: usize,
    /// The folded sum of what the checksum covers before `from` (the pseudo-header).
    partial: u16,
    /// A result of zero goes out as all ones (UDP, where zero means "no checksum").
    udp: bool,
}

impl Finish {
    /// The checksum, given the sum of the bytes from `from` on.
    const fn value(self, rest: u16) -> u16 {
        let c = !checksum::add(self.partial, rest);
        if c == 0 && self.udp { 0xffff } else { c }
    }
}

/// One complete frame cut out of an offloaded one, not yet laid out: its headers (built for it) and its payload
/// (a slice of the read buffer). [`Cut::copy_to`] writes it into a buffer of the caller's.
#[derive(Clone, Copy, Debug)]
pub struct Cut<'a> {
    head: &'a [u8],
    payload: &'a [u8],
    finish: Option<Finish>,
}

impl Cut<'_> {
    /// The frame's length.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.head.len() + self.payload.len()
    }

    /// Whether the frame is empty (never, for a cut [`cut_offloaded`] gave).
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the frame at the start of `dst`, its checksum finished in the same pass as the payload's copy;
    /// returns its length, or 0 (nothing written) when `dst` is shorter than [`Cut::len`].
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        let len = self.len();
        let Some(dst) = dst.get_mut(..len) else { return 0 };
        let (head, body) = dst.split_at_mut(self.head.len());
        head.copy_from_slice(self.head);
        let Some(f) = self.finish else {
            body.copy_from_slice(self.payload);
            return len;
        };
        // The summed bytes start in the headers (a TSO segment's TCP header, a multiple of 4 bytes long: its sum
        // and the payload's add up) or in the payload (a partial checksum's start); clamped, so nothing panics.
        let (head_sum, split) = match self.head.get(f.from..) {
            Some(head) => (checksum::sum(head), 0),
            None => (0, (f.from - self.head.len()).min(body.len())),
        };
        let (plain, summed) = body.split_at_mut(split);
        plain.copy_from_slice(&self.payload[..split]);
        let rest = checksum::add(head_sum, checksum::copy_sum(summed, &self.payload[split..]));
        if let Some(field) = dst.get_mut(f.at..f.at + 2) {
            field.copy_from_slice(&f.value(rest).to_be_bytes());
        }
        len
    }
}

/// A TCPv4 TSO frame, read and checked: what every segment's headers are made from.
#[derive(Clone, Copy, Debug)]
struct Tso {
    /// The first segment's headers as the frame has them.
    template: [u8; MAX_HEAD],
    hdr_len: usize,
    tcp_at: usize,
    gso_size: usize,
    count: usize,
    /// The frame's length.
    len: usize,
    /// The first segment's IPv4 identification and TCP sequence number, and the addresses.
    id0: u16,
    seq0: u32,
    src: [u8; 4],
    dst: [u8; 4],
}

impl Tso {
    /// The range of segment `i`'s payload in the frame.
    #[inline(always)]
    fn payload(&self, i: usize) -> Range<usize> {
        let from = self.hdr_len + i * self.gso_size;
        from..from + self.gso_size.min(self.len - from)
    }

    /// Segment `i`'s headers into `head` (`hdr_len` bytes: the segment's own place in the read buffer, or a
    /// buffer of the caller's): lengths, identification, IPv4 checksum, sequence number and flags its own, the
    /// TCP checksum zero; and how to finish that checksum (from the TCP header on, after the pseudo-header).
    #[inline(always)]
    fn head(&self, i: usize, head: &mut [u8]) -> Finish {
        let (hdr_len, tcp_at) = (self.hdr_len, self.tcp_at);
        let len = self.payload(i).len();
        let t = &self.template;
        head.copy_from_slice(&t[..hdr_len]);
        let total = (hdr_len - ETH + len) as u16;
        head[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
        head[ETH + 4..ETH + 6].copy_from_slice(&self.id0.wrapping_add(i as u16).to_be_bytes());
        head[ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&head[ETH..tcp_at]);
        head[ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
        let seq = self.seq0.wrapping_add((i * self.gso_size) as u32);
        head[tcp_at + 4..tcp_at + 8].copy_from_slice(&seq.to_be_bytes());
        let mut f = t[tcp_at + 13];
        if i + 1 < self.count {
            f &= !(0x01 | FLAG_PSH); // FIN and PSH only on the last
        }
        if i > 0 {
            f &= !0x80; // CWR only on the first
        }
        head[tcp_at + 13] = f;
        head[tcp_at + 16..tcp_at + 18].copy_from_slice(&[0, 0]);
        let pseudo = checksum::pseudo_header_ipv4(self.src, self.dst, 6, (hdr_len - tcp_at + len) as u16);
        Finish { from: tcp_at, at: tcp_at + 16, partial: pseudo, udp: false }
    }
}

/// What a frame read with a virtio-net header becomes.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// One frame as it is, with its checksum to finish or not.
    Whole(Option<Finish>),
    /// TCPv4 segments.
    Tso(Tso),
}

impl Plan {
    /// Reads the header and the frame; zeroes an unfinished checksum's field (of a frame that is not GSO), the
    /// one change made to `frame` before anything is handed on.
    fn new(
        hdr: &[u8; VNET_HDR_LEN],
        frame: &mut [u8],
        max_frame: usize,
        max_segments: usize,
    ) -> Result<Self, OffloadError> {
        let flags = hdr[0];
        let gso_type = hdr[1];
        let field = |i: usize| usize::from(u16::from_ne_bytes([hdr[i], hdr[i + 1]]));
        let (gso_size, csum_start, csum_offset) = (field(4), field(6), field(8));
        if gso_type == 0 {
            let finish = if flags & 1 != 0 {
                // NEEDS_CSUM: the field holds the pseudo-header sum; the rest is summed from csum_start on.
                let at = csum_start + csum_offset;
                if csum_start >= frame.len() || at + 2 > frame.len() {
                    return Err(OffloadError::Malformed);
                }
                Some(Finish { from: csum_start, at, partial: 0, udp: csum_offset == 6 })
            } else {
                None
            };
            if frame.len() > max_frame {
                return Err(OffloadError::TooLarge);
            }
            let finish = finish.map(|f| {
                let partial = u16::from_be_bytes([frame[f.at], frame[f.at + 1]]);
                frame[f.at..f.at + 2].copy_from_slice(&[0, 0]);
                Finish { partial, ..f }
            });
            return Ok(Self::Whole(finish));
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
        let count = (frame.len() - hdr_len).div_ceil(gso_size).max(1);
        if count > max_segments {
            return Err(OffloadError::TooManySegments);
        }
        let mut template = [0u8; MAX_HEAD];
        template[..hdr_len].copy_from_slice(&frame[..hdr_len]);
        let id0 = u16::from_be_bytes([frame[ETH + 4], frame[ETH + 5]]);
        let seq0 = u32::from_be_bytes([frame[tcp_at + 4], frame[tcp_at + 5], frame[tcp_at + 6], frame[tcp_at + 7]]);
        let (src, dst) = (addr(&frame[ETH + 12..]), addr(&frame[ETH + 16..]));
        Ok(Self::Tso(Tso { template, hdr_len, tcp_at, gso_size, count, len: frame.len(), id0, seq0, src, dst }))
    }
}

/// Cuts a frame read from a TAP with offloads on into complete frames, in place: a TCPv4 GSO frame into segments
/// of the header's `gso_size` (headers copied, IPv4 length, identification and checksum, TCP sequence number,
/// flags and checksum redone), any other frame as it is with its partial checksum completed. Each frame is handed
/// to `emit` in order; returns how many. A frame that would make more than `max_segments` segments is refused
/// whole. A caller that copies each frame into a buffer of its own does better with [`cut_offloaded`].
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
    match Plan::new(hdr, frame, max_frame, max_segments)? {
        Plan::Whole(finish) => {
            if let Some(f) = finish {
                let c = f.value(checksum::sum(&frame[f.from..]));
                frame[f.at..f.at + 2].copy_from_slice(&c.to_be_bytes());
            }
            emit(frame);
            Ok(1)
        }
        Plan::Tso(tso) => {
            // Segment i's headers go right in front of its payload, over the tail of segment i − 1's payload,
            // which has been handed on by then (the plan holds the first headers). Only headers are copied.
            for i in 0..tso.count {
                let payload = tso.payload(i);
                let start = payload.start - tso.hdr_len;
                let f = tso.head(i, &mut frame[start..payload.start]);
                let c = f.value(checksum::sum(&frame[start + f.from..payload.end]));
                frame[start + f.at..start + f.at + 2].copy_from_slice(&c.to_be_bytes());
                emit(&frame[start..payload.end]);
            }
            Ok(tso.count)
        }
    }
}

/// Cuts a frame as [`segment_offloaded`] does, but leaves the read buffer as it is (but for a partial
/// checksum's field, zeroed) and hands each frame to `emit` as a [`Cut`], to be copied into the caller's buffer
/// with its checksum finished in the same pass ([`Cut::copy_to`]); a cut the caller has no room for costs
/// nothing more.
///
/// # Errors
/// [`OffloadError`]; nothing was emitted then.
pub fn cut_offloaded(
    hdr: &[u8; VNET_HDR_LEN],
    frame: &mut [u8],
    max_frame: usize,
    max_segments: usize,
    mut emit: impl FnMut(&Cut<'_>),
) -> Result<usize, OffloadError> {
    match Plan::new(hdr, frame, max_frame, max_segments)? {
        Plan::Whole(finish) => {
            emit(&Cut { head: &[], payload: frame, finish });
            Ok(1)
        }
        Plan::Tso(tso) => {
            let mut head = [0u8; MAX_HEAD];
            for i in 0..tso.count {
                let f = tso.head(i, &mut head[..tso.hdr_len]);
                emit(&Cut { head: &head[..tso.hdr_len], payload: &frame[tso.payload(i)], finish: Some(f) });
            }
            Ok(tso.count)
        }
    }
}
