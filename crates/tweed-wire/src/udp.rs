//! UDP datagrams (RFC 768) over IPv4.
//!
//! [`Packet`] is a view over a datagram; [`Repr`] is a parsed header. After [`Packet::check_len`] (or
//! [`Packet::new_checked`]) succeeded, no accessor panics: the buffer holds the 8-byte header and at least as many
//! bytes as the length field says, and the length field is at least 8. Bytes beyond the length field (Ethernet
//! padding, for instance) are outside the datagram: [`Packet::payload`] and the checksum ignore them.
//! [`Repr::emit`] never panics on a buffer of `HEADER_LEN + payload_len` bytes or more when
//! `payload_len <= MAX_PAYLOAD_LEN`.
//!
//! # Checksums
//! The checksum covers the IPv4 pseudo-header, the header and the payload. A checksum field of zero means "no
//! checksum" (RFC 768) and always verifies; a computed checksum of zero is therefore sent as `0xffff`, its other
//! one's-complement spelling. [`ChecksumMode`] says whether to compute one: VXLAN senders commonly send zero
//! (RFC 7348 §5: "SHOULD be transmitted as zero"), the Linux kernel fills it by default, and a receiver must take
//! both.
//!
//! ```
//! use core::net::Ipv4Addr;
//! use tweed_wire::udp::{ChecksumMode, Packet, Repr};
//!
//! let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
//! let repr = Repr { src_port: 49028, dst_port: 8472 };
//! let mut buf = [0u8; 12];
//! buf[8..].copy_from_slice(b"ping"); // the payload is in place before the header is written
//! repr.emit(&mut Packet::new_unchecked(&mut buf[..]), src, dst, 4, ChecksumMode::Compute);
//!
//! let packet = Packet::new_checked(&buf[..])?;
//! assert_eq!(packet.len(), 12);
//! assert!(packet.verify_checksum(src, dst));
//! assert_eq!(Repr::parse(&packet, src, dst, ChecksumMode::Compute)?, repr);
//! assert_eq!(packet.payload(), b"ping");
//! # Ok::<(), tweed_wire::Error>(())
//! ```

use core::fmt;
use core::net::Ipv4Addr;

use crate::checksum;
use crate::field::Field;
use crate::{Error, Layer, Result};

mod field {
    use super::Field;

    pub(super) const SRC_PORT: Field = 0..2;
    pub(super) const DST_PORT: Field = 2..4;
    pub(super) const LENGTH: Field = 4..6;
    pub(super) const CHECKSUM: Field = 6..8;

    /// The payload of a datagram whose length field is `length`.
    pub(super) const fn payload(length: usize) -> Field {
        CHECKSUM.end..length
    }
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;
/// The largest payload a length field can describe: 65535 − 8 bytes.
pub const MAX_PAYLOAD_LEN: usize = u16::MAX as usize - HEADER_LEN;
/// The IPv4 protocol number of UDP, as the pseudo-header carries it.
const PROTOCOL: u8 = 17;

/// Whether to compute checksums: verify on receive and fill on transmit, or neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ChecksumMode {
    /// Receive: verify a non-zero checksum (zero still means "none" and passes). Transmit: fill the checksum.
    #[default]
    Compute,
    /// Receive: do not look at the checksum. Transmit: write zero ("no checksum").
    None,
}

/// A view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking its length: accessors may panic until [`Packet::check_len`] passed.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` and checks the header and the length field against it.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the header ([`Error::Truncated`] with `required: 8`), that the length field
    /// is at least 8 ([`Error::Invalid`], field `"length"`), and that the buffer holds the whole datagram the
    /// length field describes ([`Error::Truncated`] with `required` = the length field). After `Ok`, no accessor
    /// panics.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let actual = self.buffer.as_ref().len();
        Error::need(Layer::Udp, HEADER_LEN, actual)?;
        let length = usize::from(self.len());
        if length < HEADER_LEN {
            return Err(Error::Invalid { layer: Layer::Udp, field: "length", value: u32::from(self.len()) });
        }
        Error::need(Layer::Udp, length, actual)
    }

    /// The buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::SRC_PORT];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::DST_PORT];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The length field: header plus payload, in bytes.
    #[inline]
    #[allow(clippy::len_without_is_empty)] // a datagram is never empty: the field counts the header
    pub fn len(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The checksum field (zero: no checksum).
    #[inline]
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The folded sum of the pseudo-header and the datagram (as far as the length field reaches). Kept out of
    /// line: it is a loop over the whole datagram, and inlining it into `Repr::parse` makes the no-checksum path
    /// (a few loads) pay for a large function's prologue.
    #[inline(never)]
    fn sum(&self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) -> u16 {
        let length = self.len();
        let pseudo = checksum::pseudo_header_ipv4(src_addr.octets(), dst_addr.octets(), PROTOCOL, length);
        checksum::sum_with(pseudo, &self.buffer.as_ref()[..usize::from(length)])
    }

    /// Whether the checksum is right for a datagram from `src_addr` to `dst_addr`. A zero checksum field means
    /// the sender sent none, and verifies.
    #[inline]
    pub fn verify_checksum(&self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) -> bool {
        self.checksum() == 0 || self.sum(src_addr, dst_addr) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload, up to the length field (bytes beyond it are not part of the datagram), borrowed for the
    /// buffer's lifetime.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::payload(usize::from(self.len()))]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&port.to_be_bytes());
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&port.to_be_bytes());
    }

    /// Sets the length field. Accessors trust it: run [`Packet::check_len`] again before reading through a view
    /// whose length field was set to something the buffer does not hold.
    #[inline]
    pub fn set_len(&mut self, length: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&length.to_be_bytes());
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, checksum: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&checksum.to_be_bytes());
    }

    /// Computes and writes the checksum for a datagram from `src_addr` to `dst_addr`, over the header and the
    /// payload as far as the length field reaches. A computed zero is written as `0xffff`, since zero on the wire
    /// means "no checksum".
    pub fn fill_checksum(&mut self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) {
        self.set_checksum(0);
        let checksum = !self.sum(src_addr, dst_addr);
        self.set_checksum(if checksum == 0 { 0xffff } else { checksum });
    }

    /// The payload, up to the length field, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = field::payload(usize::from(self.len()));
        &mut self.buffer.as_mut()[range]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A parsed UDP header. The length and the checksum are not kept: the length is the payload's, given to
/// [`Repr::emit`], and the checksum is a function of everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl Repr {
    /// Parses the header of a datagram from `src_addr` to `dst_addr`. With [`ChecksumMode::Compute`], a non-zero
    /// checksum that does not verify is [`Error::Checksum`]; a zero one means "none" and is accepted. Every port
    /// is accepted, zero included: judging them is the socket's job.
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        checksum: ChecksumMode,
    ) -> Result<Self> {
        packet.check_len()?;
        if checksum == ChecksumMode::Compute && !packet.verify_checksum(src_addr, dst_addr) {
            return Err(Error::Checksum { layer: Layer::Udp });
        }
        Ok(Self { src_port: packet.src_port(), dst_port: packet.dst_port() })
    }

    /// The header's length on the wire (the payload's is the caller's).
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// The length field for a payload of `payload_len` bytes, or [`Error::Invalid`] (field `"length"`, value the
    /// would-be length, saturated) when it does not fit 16 bits. Encapsulation code calls this on a frame whose
    /// size it does not control before [`Repr::emit`].
    pub fn length_for(payload_len: usize) -> Result<u16> {
        payload_len.checked_add(HEADER_LEN).and_then(|len| u16::try_from(len).ok()).ok_or(Error::Invalid {
            layer: Layer::Udp,
            field: "length",
            value: u32::try_from(payload_len.saturating_add(HEADER_LEN)).unwrap_or(u32::MAX),
        })
    }

    /// Writes the 8 header bytes (ports, length, a zero checksum) to the front of `buf`: the fast path for
    /// encapsulation, which fills or leaves out the checksum itself.
    ///
    /// # Panics
    /// When `buf` is shorter than 8 bytes or `payload_len > MAX_PAYLOAD_LEN` (check with [`Repr::length_for`]
    /// first when the payload's size comes from outside).
    pub fn emit_header(&self, buf: &mut [u8], payload_len: usize) {
        let Ok(length) = Self::length_for(payload_len) else {
            panic!("udp: payload of {payload_len} bytes exceeds MAX_PAYLOAD_LEN ({MAX_PAYLOAD_LEN})")
        };
        let header = &mut buf[..HEADER_LEN];
        header[field::SRC_PORT].copy_from_slice(&self.src_port.to_be_bytes());
        header[field::DST_PORT].copy_from_slice(&self.dst_port.to_be_bytes());
        header[field::LENGTH].copy_from_slice(&length.to_be_bytes());
        header[field::CHECKSUM].copy_from_slice(&[0, 0]);
    }

    /// Writes the header of a datagram with `payload_len` bytes of payload from `src_addr` to `dst_addr` to the
    /// front of `packet`'s buffer. With [`ChecksumMode::Compute`] the payload must already be in place behind the
    /// header: the checksum is computed over it; with [`ChecksumMode::None`] the checksum field is zero.
    ///
    /// # Panics
    /// When `payload_len > MAX_PAYLOAD_LEN` (the length field cannot say it; check with [`Repr::length_for`]
    /// first when the payload's size comes from outside), or when the buffer is shorter than
    /// `HEADER_LEN + payload_len`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        payload_len: usize,
        checksum: ChecksumMode,
    ) {
        let buf = packet.buffer.as_mut();
        assert!(
            buf.len() >= HEADER_LEN.saturating_add(payload_len),
            "udp: buffer of {} bytes is shorter than the datagram ({payload_len} + 8)",
            buf.len()
        );
        self.emit_header(buf, payload_len);
        if checksum == ChecksumMode::Compute {
            packet.fill_checksum(src_addr, dst_addr);
        }
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UDP {} > {}", self.src_port, self.dst_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    const NODE1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const NODE2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    /// Frame 0 of `kernel-flannel-vxlan.pcap` from the outer UDP header on (192.0.2.1 → 192.0.2.2): the kernel's
    /// VXLAN datagram carrying a pod's ICMP echo request, checksum filled (0x8566).
    static KERNEL_ECHO: [u8; 114] = [
        0xbf, 0x84, 0x21, 0x18, 0x00, 0x72, 0x85, 0x66, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00,
        0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45, 0x00, 0x00, 0x54, 0xe5, 0xb2,
        0x40, 0x00, 0x3f, 0x01, 0x3d, 0x0b, 0x0a, 0xf4, 0x01, 0x02, 0x0a, 0xf4, 0x02, 0x02, 0x08, 0x00, 0x61, 0xbf,
        0x40, 0x62, 0x00, 0x01, 0x02, 0xf2, 0x02, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x8f, 0xad, 0x02, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31,
        0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];

    /// Frame 9 of the same capture (192.0.2.2 → 192.0.2.1): an odd length (83), so the checksum pads a byte.
    static KERNEL_ODD: [u8; 83] = [
        0xad, 0xfd, 0x21, 0x18, 0x00, 0x53, 0xb0, 0x3e, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00,
        0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x45, 0x00, 0x00, 0x35, 0xe6, 0xf8,
        0x40, 0x00, 0x3f, 0x06, 0x3b, 0xdf, 0x0a, 0xf4, 0x02, 0x02, 0x0a, 0xf4, 0x01, 0x02, 0x14, 0x51, 0xd7, 0xa2,
        0x55, 0x50, 0xfa, 0x32, 0x66, 0xe2, 0xce, 0xd3, 0x80, 0x18, 0x00, 0x40, 0x0a, 0x44, 0x00, 0x00, 0x01, 0x01,
        0x08, 0x0a, 0x05, 0x6b, 0x97, 0xf1, 0x07, 0x4c, 0x34, 0x6f, 0x09,
    ];

    /// A datagram built so that its checksum computes to zero: 10.244.1.2:4242 → 10.244.2.2:8285 (flannel's udp
    /// backend port), payload `b5 ff` (the complement of the sum of everything else). It must go out as 0xffff.
    static COMPUTES_TO_ZERO: [u8; 10] = [0x10, 0x92, 0x20, 0x5d, 0x00, 0x0a, 0xff, 0xff, 0xb5, 0xff];
    const POD1: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 2);
    const POD2: Ipv4Addr = Ipv4Addr::new(10, 244, 2, 2);

    #[test]
    fn test_parse_kernel() {
        let packet = Packet::new_checked(&KERNEL_ECHO[..]).unwrap();
        assert_eq!(packet.src_port(), 49028);
        assert_eq!(packet.dst_port(), 8472);
        assert_eq!(packet.len(), 114);
        assert_eq!(packet.checksum(), 0x8566);
        assert!(packet.verify_checksum(NODE1, NODE2));
        // The pseudo-header's sum does not depend on the order of the addresses, so the reverse direction agrees.
        assert!(packet.verify_checksum(NODE2, NODE1));
        assert!(!packet.verify_checksum(NODE1, Ipv4Addr::new(192, 0, 2, 3)));
        assert_eq!(packet.payload(), &KERNEL_ECHO[8..]);
        assert_eq!(
            Repr::parse(&packet, NODE1, NODE2, ChecksumMode::Compute),
            Ok(Repr { src_port: 49028, dst_port: 8472 })
        );

        let odd = Packet::new_checked(&KERNEL_ODD[..]).unwrap();
        assert_eq!((odd.src_port(), odd.dst_port(), odd.len()), (44541, 8472, 83));
        assert!(odd.verify_checksum(NODE2, NODE1));
        assert_eq!(odd.payload().len(), 75);
    }

    #[test]
    fn bad_checksum_is_an_error_unless_ignored() {
        let mut bytes = KERNEL_ECHO;
        bytes[60] ^= 0x01; // a bit of the inner ICMP payload
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(!packet.verify_checksum(NODE1, NODE2));
        assert_eq!(
            Repr::parse(&packet, NODE1, NODE2, ChecksumMode::Compute),
            Err(Error::Checksum { layer: Layer::Udp })
        );
        assert_eq!(
            Repr::parse(&packet, NODE1, NODE2, ChecksumMode::None),
            Ok(Repr { src_port: 49028, dst_port: 8472 })
        );
    }

    #[test]
    fn zero_checksum_means_none() {
        let mut bytes = KERNEL_ECHO;
        bytes[6..8].copy_from_slice(&[0, 0]);
        bytes[60] ^= 0xff; // the payload is wrong too, and nobody can tell
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(packet.verify_checksum(NODE1, NODE2));
        assert!(Repr::parse(&packet, NODE1, NODE2, ChecksumMode::Compute).is_ok());
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        let mut buf = COMPUTES_TO_ZERO;
        buf[6..8].copy_from_slice(&[0x12, 0x34]); // whatever was there before
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.fill_checksum(POD1, POD2);
        assert_eq!(packet.checksum(), 0xffff);
        assert_eq!(buf, COMPUTES_TO_ZERO);
        assert!(Packet::new_checked(&buf[..]).unwrap().verify_checksum(POD1, POD2));

        let mut out = [0u8; 10];
        out[8..].copy_from_slice(&COMPUTES_TO_ZERO[8..]);
        Repr { src_port: 4242, dst_port: 8285 }.emit(
            &mut Packet::new_unchecked(&mut out[..]),
            POD1,
            POD2,
            2,
            ChecksumMode::Compute,
        );
        assert_eq!(out, COMPUTES_TO_ZERO);

        // The peers agree.
        let eth = etherparse::UdpHeader { source_port: 4242, destination_port: 8285, length: 10, checksum: 0 };
        assert_eq!(eth.calc_checksum_ipv4_raw(POD1.octets(), POD2.octets(), &COMPUTES_TO_ZERO[8..]), Ok(0xffff));
    }

    #[test]
    fn test_emit_kernel() {
        let repr = Repr { src_port: 49028, dst_port: 8472 };
        let mut buf = KERNEL_ECHO;
        buf[..8].fill(0xee);
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]), NODE1, NODE2, 106, ChecksumMode::Compute);
        assert_eq!(buf, KERNEL_ECHO);

        repr.emit(&mut Packet::new_unchecked(&mut buf[..]), NODE1, NODE2, 106, ChecksumMode::None);
        assert_eq!(&buf[..8], &[0xbf, 0x84, 0x21, 0x18, 0x00, 0x72, 0x00, 0x00]);
        assert_eq!(&buf[8..], &KERNEL_ECHO[8..]);

        let mut header = [0xeeu8; 8];
        repr.emit_header(&mut header, 106);
        assert_eq!(header, [0xbf, 0x84, 0x21, 0x18, 0x00, 0x72, 0x00, 0x00]);
    }

    #[test]
    fn trailing_bytes_are_not_part_of_the_datagram() {
        let mut bytes = Vec::from(&KERNEL_ODD[..]);
        bytes.extend_from_slice(&[0xde, 0xad, 0xbe]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.payload(), &KERNEL_ODD[8..]);
        assert!(packet.verify_checksum(NODE2, NODE1));
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        assert_eq!(packet.payload_mut().len(), 75);
        packet.fill_checksum(NODE2, NODE1);
        assert_eq!(&bytes[..83], &KERNEL_ODD[..]);
    }

    #[test]
    fn every_truncation_is_an_exact_length_error() {
        for len in 0..KERNEL_ECHO.len() {
            let required = if len < HEADER_LEN { HEADER_LEN } else { KERNEL_ECHO.len() };
            let err = Error::Truncated { layer: Layer::Udp, required, actual: len };
            assert_eq!(Packet::new_checked(&KERNEL_ECHO[..len]), Err(err));
            assert_eq!(
                Repr::parse(&Packet::new_unchecked(&KERNEL_ECHO[..len]), NODE1, NODE2, ChecksumMode::None),
                Err(err)
            );
        }
    }

    #[test]
    fn length_below_header_is_invalid() {
        for length in 0..8u16 {
            let mut bytes = KERNEL_ECHO;
            bytes[4..6].copy_from_slice(&length.to_be_bytes());
            assert_eq!(
                Packet::new_checked(&bytes[..]),
                Err(Error::Invalid { layer: Layer::Udp, field: "length", value: u32::from(length) })
            );
        }
        // Exactly 8: a datagram with an empty payload.
        let bytes = [0x00, 0x35, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00];
        assert_eq!(Packet::new_checked(&bytes[..]).unwrap().payload(), &[] as &[u8]);
    }

    #[test]
    fn payload_length_limit() {
        assert_eq!(Repr::length_for(0), Ok(8));
        assert_eq!(Repr::length_for(MAX_PAYLOAD_LEN), Ok(0xffff));
        assert_eq!(
            Repr::length_for(MAX_PAYLOAD_LEN + 1),
            Err(Error::Invalid { layer: Layer::Udp, field: "length", value: 0x1_0000 })
        );
        assert_eq!(
            Repr::length_for(usize::MAX),
            Err(Error::Invalid { layer: Layer::Udp, field: "length", value: u32::MAX })
        );
        let mut buf = std::vec![0u8; 0xffff];
        let repr = Repr { src_port: 1, dst_port: 2 };
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]), NODE1, NODE2, MAX_PAYLOAD_LEN, ChecksumMode::Compute);
        let packet = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.len(), 0xffff);
        assert!(packet.verify_checksum(NODE1, NODE2));
    }

    #[test]
    #[should_panic(expected = "exceeds MAX_PAYLOAD_LEN")]
    fn emit_refuses_to_wrap_the_length() {
        let mut buf = std::vec![0u8; 0x1_0000];
        Repr { src_port: 1, dst_port: 2 }.emit(
            &mut Packet::new_unchecked(&mut buf[..]),
            NODE1,
            NODE2,
            MAX_PAYLOAD_LEN + 1,
            ChecksumMode::None,
        );
    }

    #[test]
    fn setters() {
        let mut buf = [0u8; 11];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_src_port(0x1234);
        packet.set_dst_port(0x5678);
        packet.set_len(10);
        packet.set_checksum(0xabcd);
        packet.payload_mut().copy_from_slice(&[1, 2]);
        assert_eq!(buf, [0x12, 0x34, 0x56, 0x78, 0x00, 0x0a, 0xab, 0xcd, 1, 2, 0]);
        assert_eq!(std::format!("{}", Repr { src_port: 49028, dst_port: 8472 }), "UDP 49028 > 8472");
    }

    proptest! {
        #[test]
        fn repr_round_trip_and_checksum_agrees_with_etherparse_and_smoltcp(
            src_port in any::<u16>(),
            dst_port in any::<u16>(),
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            payload in proptest::collection::vec(any::<u8>(), 0..80),
            compute in any::<bool>(),
        ) {
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let mode = if compute { ChecksumMode::Compute } else { ChecksumMode::None };
            let repr = Repr { src_port, dst_port };
            let mut buf = std::vec![0u8; HEADER_LEN + payload.len()];
            buf[HEADER_LEN..].copy_from_slice(&payload);
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]), src, dst, payload.len(), mode);

            let packet = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Repr::parse(&packet, src, dst, ChecksumMode::Compute), Ok(repr));
            prop_assert_eq!(packet.payload(), &payload[..]);
            prop_assert_eq!(usize::from(packet.len()), buf.len());
            if compute {
                let length = u16::try_from(buf.len()).unwrap();
                let eth = etherparse::UdpHeader { source_port: src_port, destination_port: dst_port, length, checksum: 0 };
                prop_assert_eq!(Ok(packet.checksum()), eth.calc_checksum_ipv4_raw(src.octets(), dst.octets(), &payload));
                let smol = smoltcp::wire::UdpPacket::new_checked(&buf[..]).unwrap();
                prop_assert!(smol.verify_checksum(&src.into(), &dst.into()));
            } else {
                prop_assert_eq!(packet.checksum(), 0);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40), src in any::<[u8; 4]>()) {
            let src = Ipv4Addr::from(src);
            match Packet::new_checked(&bytes[..]) {
                Ok(packet) => {
                    let _ = Repr::parse(&packet, src, NODE2, ChecksumMode::Compute);
                    let _ = (packet.payload(), packet.verify_checksum(src, NODE2));
                    prop_assert!(usize::from(packet.len()) <= bytes.len());
                    let mut copy = bytes.clone();
                    let mut packet = Packet::new_unchecked(&mut copy[..]);
                    packet.fill_checksum(src, NODE2);
                    let _ = packet.payload_mut();
                    prop_assert!(Packet::new_checked(&copy[..]).unwrap().verify_checksum(src, NODE2));
                }
                Err(Error::Truncated { layer: Layer::Udp, .. } | Error::Invalid { layer: Layer::Udp, field: "length", .. }) => {}
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }
    }
}
