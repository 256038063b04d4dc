//! IPv4 headers (RFC 791), with the in-place helpers a router needs (RFC 1812 §5.3.1, RFC 1624).
//!
//! [`Packet`] is a view over the bytes; [`Repr`] is a parsed header. After [`Packet::check_len`] (or
//! [`Packet::new_checked`]) succeeded, no accessor panics. [`Repr::emit`] never panics on a buffer of
//! [`Repr::buffer_len`] bytes or more.
//!
//! # What `check_len` promises
//! In this order: the buffer holds the 20-byte fixed header; the version is 4 (checked here rather than in
//! [`Repr::parse`], as smoltcp does, because every other length below is read from an IPv4-shaped header: an IPv6
//! packet behind an IPv4 EtherType is rejected before its traffic class is taken for a header length); the IHL is
//! at least 5; the buffer holds the whole header with its options; the total length covers the header; the buffer
//! holds the total length. Bytes after the total length (Ethernet padding of short frames) are allowed and are not
//! part of [`Packet::payload`]. A setter that changes a length field (IHL, total length) may break what
//! `check_len` proved: [`Packet::payload`] and [`Packet::payload_mut`] stay in bounds whatever the lengths say, but
//! run `check_len` again before trusting the other accessors.
//!
//! # Decisions
//! - The reserved flag bit (RFC 791: "must be zero"; RFC 3514's "evil bit") is not judged: [`Repr::parse`] accepts
//!   and drops it, [`Repr::emit`] writes zero, and the view reads and writes it ([`Packet::reserved_flag`]). A router
//!   forwarding in place leaves it as it came, as Linux does. smoltcp and etherparse also ignore it on parse.
//! - Options are skipped, not interpreted: [`Repr::parse`] accepts an IHL of 5 to 15, [`Packet::options`] shows the
//!   bytes, and [`Repr`] always emits a 20-byte header.
//! - Fragments are parsed like any packet (a router forwards them as they are); [`Repr`] keeps the fragment fields.
//!
//! ```
//! use core::net::Ipv4Addr;
//! use tweed_wire::ipv4::{ChecksumCheck, Packet, Protocol, Repr};
//!
//! // An ICMP echo request header from a pod (10.244.1.2) to a pod on another node, as captured, 64 bytes of ICMP.
//! let mut bytes = [0u8; 84];
//! bytes[..20].copy_from_slice(&[
//!     0x45, 0x00, 0x00, 0x54, 0xe5, 0xb2, 0x40, 0x00, 0x40, 0x01, 0x3c, 0x0b, //
//!     10, 244, 1, 2, 10, 244, 2, 2,
//! ]);
//! let mut packet = Packet::new_checked(&mut bytes[..])?;
//! assert_eq!(packet.protocol(), Protocol::ICMP);
//! // Forwarding: TTL 64 -> 63, checksum patched, not recomputed.
//! assert_eq!(packet.decrement_ttl(), Some(63));
//! let repr = Repr::parse(&Packet::new_checked(&bytes[..])?, ChecksumCheck::Verify)?;
//! assert_eq!(repr.dst_addr, Ipv4Addr::new(10, 244, 2, 2));
//! assert_eq!((repr.ttl, repr.payload_len), (63, 64));
//! # Ok::<(), tweed_wire::Error>(())
//! ```

use core::fmt;
use core::net::Ipv4Addr;

use crate::checksum;
use crate::field::Field;
use crate::{Error, Layer, Result};

/// An IP protocol number (the IANA "Assigned Internet Protocol Numbers"). Open: every value parses.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Protocol(pub u8);

impl Protocol {
    /// ICMP (RFC 792).
    pub const ICMP: Self = Self(1);
    /// IGMP (RFC 1112).
    pub const IGMP: Self = Self(2);
    /// IPv4 in IPv4 (RFC 2003).
    pub const IPIP: Self = Self(4);
    /// TCP (RFC 9293).
    pub const TCP: Self = Self(6);
    /// UDP (RFC 768).
    pub const UDP: Self = Self(17);
    /// IPv6 in IPv4 (RFC 4213).
    pub const IPV6: Self = Self(41);
    /// GRE (RFC 2784).
    pub const GRE: Self = Self(47);
    /// ESP (RFC 4303).
    pub const ESP: Self = Self(50);
    /// SCTP (RFC 9260).
    pub const SCTP: Self = Self(132);
}

impl fmt::Debug for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ICMP => f.write_str("ICMP"),
            Self::IGMP => f.write_str("IGMP"),
            Self::IPIP => f.write_str("IPIP"),
            Self::TCP => f.write_str("TCP"),
            Self::UDP => f.write_str("UDP"),
            Self::IPV6 => f.write_str("IPv6"),
            Self::GRE => f.write_str("GRE"),
            Self::ESP => f.write_str("ESP"),
            Self::SCTP => f.write_str("SCTP"),
            Self(v) => write!(f, "{v}"),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<u8> for Protocol {
    fn from(v: u8) -> Self {
        Self(v)
    }
}

impl From<Protocol> for u8 {
    fn from(v: Protocol) -> Self {
        v.0
    }
}

/// Whether [`Repr::parse`] verifies the header checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ChecksumCheck {
    /// Verify it and fail with [`Error::Checksum`] when it is wrong: the default.
    #[default]
    Verify,
    /// Do not look at it (the device verified it, or it is a header quoted in an ICMP error).
    Ignore,
}

mod field {
    use super::Field;

    /// Version (high nibble) and IHL (low nibble, in 32-bit words).
    pub(super) const VER_IHL: usize = 0;
    /// DSCP (high six bits) and ECN (low two bits).
    pub(super) const DSCP_ECN: usize = 1;
    pub(super) const LENGTH: Field = 2..4;
    pub(super) const IDENT: Field = 4..6;
    /// Flags (high three bits) and fragment offset (low 13 bits, in 8-byte units).
    pub(super) const FLG_OFF: Field = 6..8;
    pub(super) const TTL: usize = 8;
    pub(super) const PROTOCOL: usize = 9;
    /// TTL and protocol as one 16-bit word of the checksum.
    pub(super) const TTL_PROTOCOL: Field = 8..10;
    pub(super) const CHECKSUM: Field = 10..12;
    pub(super) const SRC_ADDR: Field = 12..16;
    pub(super) const DST_ADDR: Field = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// Length of a header with the most options an IHL of 15 allows.
pub const MAX_HEADER_LEN: usize = 15 * 4;
/// The largest payload behind a 20-byte header (total length 65535).
pub const MAX_PAYLOAD_LEN: usize = u16::MAX as usize - HEADER_LEN;

const FLAG_RESERVED: u16 = 0x8000;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it: accessors may panic until [`Packet::check_len`] passed.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` and runs [`Packet::check_len`].
    ///
    /// ```
    /// use tweed_wire::{ipv4::Packet, Error, Layer};
    ///
    /// let short = [0x45, 0x00, 0x00, 0x14];
    /// assert_eq!(
    ///     Packet::new_checked(&short[..]),
    ///     Err(Error::Truncated { layer: Layer::Ipv4, required: 20, actual: 4 })
    /// );
    /// ```
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the header and the lengths it states against the buffer (see the module doc for the order); after
    /// `Ok`, no accessor panics.
    ///
    /// # Errors
    /// [`Error::Truncated`] with `required` 20, the header length, or the total length; [`Error::Invalid`] for
    /// `"version"`, `"ihl"` or `"total length"`.
    #[inline(always)]
    pub fn check_len(&self) -> Result<()> {
        self.check_header_len()?;
        Error::need(Layer::Ipv4, usize::from(self.total_len()), self.buffer.as_ref().len())
    }

    /// Checks everything [`Packet::check_len`] does except that the buffer holds the total length: what a header
    /// quoted in an ICMP error, followed by only the first bytes of its payload, can promise. After `Ok`, every
    /// header accessor and [`Packet::options`] are safe; [`Packet::payload`] is cut short at the buffer's end.
    ///
    /// # Errors
    /// As [`Packet::check_len`], without the truncation to the total length.
    #[inline(always)]
    pub fn check_header_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        Error::need(Layer::Ipv4, HEADER_LEN, len)?;
        let version = self.version();
        if version != 4 {
            return Err(Error::Invalid { layer: Layer::Ipv4, field: "version", value: version.into() });
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            #[allow(clippy::cast_possible_truncation)] // at most 60
            let ihl = (header_len / 4) as u32;
            return Err(Error::Invalid { layer: Layer::Ipv4, field: "ihl", value: ihl });
        }
        Error::need(Layer::Ipv4, header_len, len)?;
        let total_len = self.total_len();
        if usize::from(total_len) < header_len {
            return Err(Error::Invalid { layer: Layer::Ipv4, field: "total length", value: total_len.into() });
        }
        Ok(())
    }

    /// The buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field (4, once [`Packet::check_len`] passed).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes: IHL × 4, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The Differentiated Services Code Point (RFC 2474), 0..=63.
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// The Explicit Congestion Notification bits (RFC 3168), 0..=3.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// The total length in bytes: header, options and payload.
    #[inline]
    pub fn total_len(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The identification field.
    #[inline]
    pub fn ident(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::IDENT];
        u16::from_be_bytes([b[0], b[1]])
    }

    #[inline]
    fn flags_offset(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::FLG_OFF];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The reserved flag bit (RFC 791: must be zero).
    #[inline]
    pub fn reserved_flag(&self) -> bool {
        self.flags_offset() & FLAG_RESERVED != 0
    }

    /// The Don't Fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    /// The More Fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }

    /// The fragment offset in bytes (the field × 8), 0..=65528.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & OFFSET_MASK) << 3
    }

    /// Whether this is a fragment: More Fragments set, or a non-zero offset.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_offset() & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// Whether this is a fragment other than the first (non-zero offset): it carries no transport header.
    #[inline]
    pub fn is_later_fragment(&self) -> bool {
        self.flags_offset() & OFFSET_MASK != 0
    }

    /// The time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The payload's protocol.
    #[inline]
    pub fn protocol(&self) -> Protocol {
        Protocol(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// The header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Whether the header checksum is right: the header, options included, sums to `0xffff`.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(&self.buffer.as_ref()[..self.header_len()])
    }

    /// The payload's range in the buffer: header length to total length, cut short at the buffer's end (which
    /// only happens before [`Packet::check_len`] or after a setter grew a length).
    #[inline]
    fn payload_range(&self) -> core::ops::Range<usize> {
        let len = self.buffer.as_ref().len();
        let end = usize::from(self.total_len()).min(len);
        let start = self.header_len().min(end);
        start..end
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The options: the header bytes after the first 20, borrowed for the buffer's lifetime.
    #[inline]
    pub fn options(&self) -> &'a [u8] {
        let header_len = self.header_len().max(HEADER_LEN);
        &self.buffer.as_ref()[HEADER_LEN..header_len]
    }

    /// The payload: from the header's end to the total length. Bytes beyond the total length (Ethernet padding)
    /// are not included.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let range = self.payload_range();
        &self.buffer.as_ref()[range]
    }

    /// The header and payload up to the total length, without trailing padding.
    #[inline]
    pub fn packet_bytes(&self) -> &'a [u8] {
        let end = self.payload_range().end;
        &self.buffer.as_ref()[..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version field.
    #[inline]
    pub fn set_version(&mut self, version: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (version << 4);
    }

    /// Sets the IHL from a header length in bytes (rounded down to a multiple of 4, at most 60).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        #[allow(clippy::cast_possible_truncation)] // at most 15
        let ihl = (len.min(MAX_HEADER_LEN) / 4) as u8;
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ihl;
    }

    /// Sets the DSCP (the low six bits of `dscp`).
    #[inline]
    pub fn set_dscp(&mut self, dscp: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (dscp << 2);
    }

    /// Sets the ECN bits (the low two bits of `ecn`).
    #[inline]
    pub fn set_ecn(&mut self, ecn: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (ecn & 0x03);
    }

    /// Sets the total length.
    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }

    /// Sets the identification field.
    #[inline]
    pub fn set_ident(&mut self, ident: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&ident.to_be_bytes());
    }

    #[inline]
    fn set_flags_offset(&mut self, value: u16) {
        self.buffer.as_mut()[field::FLG_OFF].copy_from_slice(&value.to_be_bytes());
    }

    #[inline]
    fn set_flag(&mut self, flag: u16, on: bool) {
        let v = self.flags_offset();
        self.set_flags_offset(if on { v | flag } else { v & !flag });
    }

    /// Sets the reserved flag bit.
    #[inline]
    pub fn set_reserved_flag(&mut self, on: bool) {
        self.set_flag(FLAG_RESERVED, on);
    }

    /// Sets the Don't Fragment flag.
    #[inline]
    pub fn set_dont_frag(&mut self, on: bool) {
        self.set_flag(FLAG_DF, on);
    }

    /// Sets the More Fragments flag.
    #[inline]
    pub fn set_more_frags(&mut self, on: bool) {
        self.set_flag(FLAG_MF, on);
    }

    /// Sets the fragment offset from bytes (rounded down to a multiple of 8).
    #[inline]
    pub fn set_frag_offset(&mut self, offset: u16) {
        let v = self.flags_offset();
        self.set_flags_offset((v & !OFFSET_MASK) | (offset >> 3));
    }

    /// Sets the time to live, leaving the checksum alone (see [`Packet::decrement_ttl`]).
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol.
    #[inline]
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol.0;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, checksum: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&checksum.to_be_bytes());
    }

    /// Sets the source address, leaving the checksum alone.
    #[inline]
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address, leaving the checksum alone.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Computes the header checksum (options included) and writes it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(c);
    }

    /// Decrements the TTL as a router does before forwarding (RFC 1812 §5.3.1) and patches the checksum
    /// incrementally (RFC 1624 on the TTL/protocol word): a wrong checksum stays exactly as wrong, a right one
    /// stays right.
    ///
    /// Returns the new TTL, or `None`, touching nothing, when the TTL is 0 or 1: the packet must not be forwarded
    /// and the caller sends an ICMP time exceeded (see [`crate::icmpv4::emit_error`]). A packet addressed to the
    /// router itself is delivered whatever its TTL: check that before calling this.
    ///
    /// ```
    /// use tweed_wire::ipv4::Packet;
    ///
    /// let mut header = [0x45, 0, 0, 20, 0, 0, 0, 0, 1, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
    /// let mut packet = Packet::new_checked(&mut header[..])?;
    /// packet.fill_checksum();
    /// assert_eq!(packet.decrement_ttl(), None); // TTL 1: send time exceeded
    /// packet.set_ttl(2);
    /// packet.fill_checksum();
    /// assert_eq!(packet.decrement_ttl(), Some(1));
    /// assert!(packet.verify_checksum());
    /// # Ok::<(), tweed_wire::Error>(())
    /// ```
    #[inline]
    #[must_use = "a TTL of 0 or 1 means the packet must be dropped and an ICMP time exceeded sent"]
    pub fn decrement_ttl(&mut self) -> Option<u8> {
        let ttl = self.ttl();
        if ttl <= 1 {
            return None;
        }
        let protocol = self.protocol().0;
        let old = u16::from_be_bytes([ttl, protocol]);
        let new = u16::from_be_bytes([ttl - 1, protocol]);
        let c = checksum::update16(self.checksum(), old, new);
        let buf = self.buffer.as_mut();
        buf[field::TTL] = ttl - 1;
        buf[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        Some(ttl - 1)
    }

    /// Sets the source address and patches the header checksum incrementally (RFC 1624), as a NAT does.
    ///
    /// A transport checksum over the pseudo-header (UDP, TCP) is not in this header: patch it separately.
    #[inline]
    pub fn set_src_addr_incremental(&mut self, addr: Ipv4Addr) {
        let old = self.src_addr().to_bits();
        let c = checksum::update32(self.checksum(), old, addr.to_bits());
        self.set_src_addr(addr);
        self.set_checksum(c);
    }

    /// Sets the destination address and patches the header checksum incrementally (RFC 1624).
    ///
    /// A transport checksum over the pseudo-header (UDP, TCP) is not in this header: patch it separately.
    #[inline]
    pub fn set_dst_addr_incremental(&mut self, addr: Ipv4Addr) {
        let old = self.dst_addr().to_bits();
        let c = checksum::update32(self.checksum(), old, addr.to_bits());
        self.set_dst_addr(addr);
        self.set_checksum(c);
    }

    /// The options, mutable.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len().max(HEADER_LEN);
        &mut self.buffer.as_mut()[HEADER_LEN..header_len]
    }

    /// The payload, mutable: header length to total length, cut short at the buffer's end.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.payload_range();
        &mut self.buffer.as_mut()[range]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A parsed IPv4 header (options are not kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// The payload's protocol.
    pub protocol: Protocol,
    /// Payload length in bytes: total length minus header length (so the options' length is not in it). At most
    /// [`MAX_PAYLOAD_LEN`] for the header to be emitted as is.
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// DSCP, 0..=63 (higher bits are dropped on emit).
    pub dscp: u8,
    /// ECN, 0..=3 (higher bits are dropped on emit).
    pub ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
    /// More Fragments.
    pub more_frags: bool,
    /// Fragment offset in bytes: a multiple of 8, at most 65528 (the low three bits are dropped on emit).
    pub frag_offset: u16,
}

impl Repr {
    /// Parses a whole packet ([`Packet::check_len`]) and, unless told not to, verifies its header checksum.
    ///
    /// # Errors
    /// Those of [`Packet::check_len`], and [`Error::Checksum`] with [`ChecksumCheck::Verify`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>, checksum: ChecksumCheck) -> Result<Self> {
        packet.check_len()?;
        Self::parse_checked_header(packet, checksum)
    }

    /// Parses a header whose payload may be cut short ([`Packet::check_header_len`]): a header quoted in an ICMP
    /// error. `payload_len` is what the header says, not what the buffer holds.
    ///
    /// # Errors
    /// Those of [`Packet::check_header_len`], and [`Error::Checksum`] with [`ChecksumCheck::Verify`].
    pub fn parse_header<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>, checksum: ChecksumCheck) -> Result<Self> {
        packet.check_header_len()?;
        Self::parse_checked_header(packet, checksum)
    }

    fn parse_checked_header<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>, checksum: ChecksumCheck) -> Result<Self> {
        if checksum == ChecksumCheck::Verify && !packet.verify_checksum() {
            return Err(Error::Checksum { layer: Layer::Ipv4 });
        }
        Ok(Self {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            // check_header_len proved total length >= header length.
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            ttl: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
        })
    }

    /// The header's length on the wire: always [`HEADER_LEN`], as options are never emitted.
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// The total length the header states: header plus payload.
    #[must_use]
    pub const fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the 20-byte header, checksum filled, to the front of `packet`'s buffer, which must hold at least
    /// [`Repr::buffer_len`] bytes. The payload is left as it is. A `payload_len` above [`MAX_PAYLOAD_LEN`] is
    /// written as total length 65535.
    ///
    /// # Panics
    /// When the buffer is shorter than [`Repr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let total = u16::try_from(self.total_len()).unwrap_or(u16::MAX);
        let flags = if self.dont_frag { FLAG_DF } else { 0 } | if self.more_frags { FLAG_MF } else { 0 };
        let buf = &mut packet.buffer.as_mut()[..HEADER_LEN];
        buf[field::VER_IHL] = 0x45;
        buf[field::DSCP_ECN] = (self.dscp << 2) | (self.ecn & 0x03);
        buf[field::LENGTH].copy_from_slice(&total.to_be_bytes());
        buf[field::IDENT].copy_from_slice(&self.ident.to_be_bytes());
        buf[field::FLG_OFF].copy_from_slice(&(flags | (self.frag_offset >> 3)).to_be_bytes());
        buf[field::TTL_PROTOCOL].copy_from_slice(&[self.ttl, self.protocol.0]);
        buf[field::CHECKSUM].copy_from_slice(&[0, 0]);
        buf[field::SRC_ADDR].copy_from_slice(&self.src_addr.octets());
        buf[field::DST_ADDR].copy_from_slice(&self.dst_addr.octets());
        let c = checksum::checksum(buf);
        buf[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IPv4 {} > {} proto {} ttl {} len {}",
            self.src_addr, self.dst_addr, self.protocol, self.ttl, self.payload_len
        )?;
        if self.dont_frag {
            f.write_str(" DF")?;
        }
        if self.more_frags || self.frag_offset != 0 {
            write!(f, " frag id {} off {}{}", self.ident, self.frag_offset, if self.more_frags { " MF" } else { "" })?;
        }
        Ok(())
    }
}

/// Only emittable headers: DSCP, ECN and offset in range, payload length within [`MAX_PAYLOAD_LEN`].
#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Repr {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self {
            src_addr: Ipv4Addr::from_bits(u.arbitrary()?),
            dst_addr: Ipv4Addr::from_bits(u.arbitrary()?),
            protocol: Protocol(u.arbitrary()?),
            payload_len: u.int_in_range(0..=MAX_PAYLOAD_LEN)?,
            ttl: u.arbitrary()?,
            dscp: u.int_in_range(0..=63)?,
            ecn: u.int_in_range(0..=3)?,
            ident: u.arbitrary()?,
            dont_frag: u.arbitrary()?,
            more_frags: u.arbitrary()?,
            frag_offset: u.int_in_range(0..=OFFSET_MASK)? << 3,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Inner IPv4 packet of frame 0 of `tests/data/kernel-flannel-vxlan.pcap`: a pod's ICMP echo request
    /// 10.244.1.2 -> 10.244.2.2 after the node's router (TTL 63), DF set, 64 bytes of ICMP.
    static ECHO_REQUEST: [u8; 84] = [
        0x45, 0x00, 0x00, 0x54, 0xe5, 0xb2, 0x40, 0x00, 0x3f, 0x01, 0x3d, 0x0b, 0x0a, 0xf4, 0x01, 0x02, 0x0a, 0xf4,
        0x02, 0x02, 0x08, 0x00, 0x61, 0xbf, 0x40, 0x62, 0x00, 0x01, 0x02, 0xf2, 0x02, 0x6b, 0x00, 0x00, 0x00, 0x00,
        0x8f, 0xad, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19,
        0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b,
        0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];

    /// Outer IPv4 header of the same frame: node 192.0.2.1 -> 192.0.2.2, UDP (VXLAN), TTL 64, no DF, total 134.
    static OUTER_HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x86, 0x56, 0x26, 0x00, 0x00, 0x40, 0x11, 0xa0, 0x3d, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00,
        0x02, 0x02,
    ];

    /// An IGMPv2 membership report for 224.0.0.251 as Linux sends it: IHL 6 with the Router Alert option
    /// (RFC 2113: `94 04 00 00`), TOS 0xc0, TTL 1, DF. Checksums derived by hand (and checked by etherparse below).
    static WITH_OPTIONS: [u8; 32] = [
        0x46, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x40, 0x00, 0x01, 0x02, 0xf7, 0x26, 0x0a, 0xf4, 0x01, 0x02, 0xe0, 0x00,
        0x00, 0xfb, 0x94, 0x04, 0x00, 0x00, 0x16, 0x00, 0x09, 0x04, 0xe0, 0x00, 0x00, 0xfb,
    ];

    fn echo_request_repr() -> Repr {
        Repr {
            src_addr: Ipv4Addr::new(10, 244, 1, 2),
            dst_addr: Ipv4Addr::new(10, 244, 2, 2),
            protocol: Protocol::ICMP,
            payload_len: 64,
            ttl: 63,
            dscp: 0,
            ecn: 0,
            ident: 0xe5b2,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
    }

    #[test]
    fn test_deconstruct() {
        let packet = Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!((packet.dscp(), packet.ecn()), (0, 0));
        assert_eq!(packet.total_len(), 84);
        assert_eq!(packet.ident(), 0xe5b2);
        assert!(packet.dont_frag() && !packet.more_frags() && !packet.reserved_flag());
        assert_eq!(packet.frag_offset(), 0);
        assert!(!packet.is_fragment() && !packet.is_later_fragment());
        assert_eq!(packet.ttl(), 63);
        assert_eq!(packet.protocol(), Protocol::ICMP);
        assert_eq!(packet.checksum(), 0x3d0b);
        assert_eq!(packet.src_addr(), Ipv4Addr::new(10, 244, 1, 2));
        assert_eq!(packet.dst_addr(), Ipv4Addr::new(10, 244, 2, 2));
        assert_eq!(packet.options(), &[] as &[u8]);
        assert_eq!(packet.payload(), &ECHO_REQUEST[20..]);
        assert!(packet.verify_checksum());
    }

    #[test]
    fn test_parse() {
        let packet = Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(Repr::parse(&packet, ChecksumCheck::Verify), Ok(echo_request_repr()));

        let outer = Repr::parse(&Packet::new_unchecked(&OUTER_HEADER[..]), ChecksumCheck::Verify);
        // The outer header alone is truncated: its total length says 134.
        assert_eq!(outer, Err(Error::Truncated { layer: Layer::Ipv4, required: 134, actual: 20 }));
        let outer = Repr::parse_header(&Packet::new_unchecked(&OUTER_HEADER[..]), ChecksumCheck::Verify).unwrap();
        assert_eq!(outer.protocol, Protocol::UDP);
        assert_eq!((outer.ttl, outer.ident, outer.dont_frag, outer.payload_len), (64, 0x5626, false, 114));
        assert_eq!(outer.src_addr, Ipv4Addr::new(192, 0, 2, 1));
    }

    #[test]
    fn test_emit() {
        let repr = echo_request_repr();
        let mut buf = ECHO_REQUEST;
        buf[..20].fill(0xaa);
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, ECHO_REQUEST);

        let outer = Repr::parse_header(&Packet::new_unchecked(&OUTER_HEADER[..]), ChecksumCheck::Verify).unwrap();
        let mut buf = [0u8; 20];
        outer.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, OUTER_HEADER);
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 84];
        buf[20..].copy_from_slice(&ECHO_REQUEST[20..]);
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_version(4);
        packet.set_header_len(20);
        packet.set_dscp(0);
        packet.set_ecn(0);
        packet.set_total_len(84);
        packet.set_ident(0xe5b2);
        packet.set_reserved_flag(false);
        packet.set_dont_frag(true);
        packet.set_more_frags(false);
        packet.set_frag_offset(0);
        packet.set_ttl(63);
        packet.set_protocol(Protocol::ICMP);
        packet.set_src_addr(Ipv4Addr::new(10, 244, 1, 2));
        packet.set_dst_addr(Ipv4Addr::new(10, 244, 2, 2));
        packet.fill_checksum();
        assert_eq!(packet.payload_mut(), &ECHO_REQUEST[20..]);
        assert_eq!(buf, ECHO_REQUEST);
    }

    #[test]
    fn setters_mask_and_keep_neighbours() {
        let mut buf = ECHO_REQUEST;
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_dscp(46); // EF
        packet.set_ecn(0b11);
        assert_eq!((packet.dscp(), packet.ecn()), (46, 3));
        packet.set_ecn(0b101); // only two bits
        assert_eq!((packet.dscp(), packet.ecn()), (46, 1));
        packet.set_reserved_flag(true);
        packet.set_more_frags(true);
        packet.set_frag_offset(1480);
        assert!(packet.reserved_flag() && packet.dont_frag() && packet.more_frags());
        assert_eq!(packet.frag_offset(), 1480);
        assert!(packet.is_fragment() && packet.is_later_fragment());
        packet.set_dont_frag(false);
        assert!(packet.reserved_flag() && !packet.dont_frag() && packet.more_frags());
        assert_eq!(&buf[6..8], &[0xa0, 0xb9]); // RF | MF | 185
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_header_len(24);
        assert_eq!((packet.version(), packet.header_len()), (4, 24));
        packet.set_header_len(100);
        assert_eq!(packet.header_len(), 60);
    }

    #[test]
    fn options_are_skipped() {
        let packet = Packet::new_checked(&WITH_OPTIONS[..]).unwrap();
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(packet.payload(), &WITH_OPTIONS[24..]);
        assert!(packet.verify_checksum());
        let repr = Repr::parse(&packet, ChecksumCheck::Verify).unwrap();
        assert_eq!(repr.payload_len, 8);
        assert_eq!((repr.dscp, repr.ttl, repr.protocol), (48, 1, Protocol::IGMP));
        assert_eq!(repr.dst_addr, Ipv4Addr::new(224, 0, 0, 251));
        // Emitting drops the options: the same datagram with a 20-byte header.
        let mut out = [0u8; 28];
        out[20..].copy_from_slice(packet.payload());
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        let reparsed = Repr::parse(&Packet::new_checked(&out[..]).unwrap(), ChecksumCheck::Verify).unwrap();
        assert_eq!(reparsed, repr);

        let mut buf = WITH_OPTIONS;
        let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
        packet.options_mut().copy_from_slice(&[1, 1, 1, 0]);
        packet.fill_checksum();
        assert!(packet.verify_checksum());
        assert_eq!(&buf[20..24], &[1, 1, 1, 0]);
    }

    #[test]
    fn etherparse_agrees_on_the_vectors() {
        for bytes in [&ECHO_REQUEST[..], &OUTER_HEADER[..], &WITH_OPTIONS[..]] {
            let theirs = etherparse::Ipv4HeaderSlice::from_slice(bytes).unwrap();
            let ours = Packet::new_unchecked(bytes);
            ours.check_header_len().unwrap();
            let h = theirs.to_header();
            assert_eq!(h.calc_header_checksum(), ours.checksum());
            assert_eq!(theirs.options(), &bytes[20..ours.header_len()]);
        }
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        // A 40-byte TCP ACK in a minimum Ethernet frame: 6 bytes of padding follow the total length.
        let mut buf = [0u8; 46];
        let repr = Repr { protocol: Protocol::TCP, payload_len: 20, ..echo_request_repr() };
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        buf[20..40].fill(0x11);
        buf[40..].fill(0xee);
        let packet = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.payload(), &[0x11; 20]);
        assert_eq!(packet.packet_bytes().len(), 40);
        assert_eq!(Repr::parse(&packet, ChecksumCheck::Verify), Ok(repr));
        let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
        assert_eq!(packet.payload_mut().len(), 20);
    }

    #[test]
    fn every_truncation_is_an_exact_length_error() {
        for len in 0..ECHO_REQUEST.len() {
            let required = if len < HEADER_LEN { HEADER_LEN } else { ECHO_REQUEST.len() };
            assert_eq!(
                Packet::new_checked(&ECHO_REQUEST[..len]),
                Err(Error::Truncated { layer: Layer::Ipv4, required, actual: len })
            );
        }
        for len in 0..WITH_OPTIONS.len() {
            let required = match len {
                0..20 => 20,
                20..24 => 24,
                _ => 32,
            };
            let err = Error::Truncated { layer: Layer::Ipv4, required, actual: len };
            assert_eq!(Packet::new_checked(&WITH_OPTIONS[..len]), Err(err));
            assert_eq!(Repr::parse(&Packet::new_unchecked(&WITH_OPTIONS[..len]), ChecksumCheck::Verify), Err(err));
            let header_only = Packet::new_unchecked(&WITH_OPTIONS[..len]).check_header_len();
            assert_eq!(header_only, if len < 24 { Err(err) } else { Ok(()) });
        }
    }

    #[test]
    fn invalid_fields() {
        let invalid = |field, value| Err(Error::Invalid { layer: Layer::Ipv4, field, value });
        let mut v6 = ECHO_REQUEST;
        v6[0] = 0x60;
        assert_eq!(Packet::new_checked(&v6[..]), invalid("version", 6));
        // An IPv6 header is rejected on its version even when its buffer is shorter than its "IHL" asks.
        v6[0] = 0x6f;
        assert_eq!(Packet::new_checked(&v6[..20]), invalid("version", 6));
        for ihl in 0..5u8 {
            let mut short = ECHO_REQUEST;
            short[0] = 0x40 | ihl;
            assert_eq!(Packet::new_checked(&short[..]), invalid("ihl", u32::from(ihl)));
        }
        let mut bad_total = WITH_OPTIONS;
        bad_total[3] = 23; // shorter than the 24-byte header
        assert_eq!(Packet::new_checked(&bad_total[..]), invalid("total length", 23));
        bad_total[3] = 24; // header only: valid, empty payload
        assert_eq!(Packet::new_checked(&bad_total[..]).unwrap().payload(), &[] as &[u8]);
    }

    #[test]
    fn checksum_is_verified_unless_ignored() {
        let mut bad = ECHO_REQUEST;
        bad[11] ^= 1;
        let packet = Packet::new_checked(&bad[..]).unwrap();
        assert!(!packet.verify_checksum());
        assert_eq!(Repr::parse(&packet, ChecksumCheck::Verify), Err(Error::Checksum { layer: Layer::Ipv4 }));
        assert_eq!(Repr::parse(&packet, ChecksumCheck::default()), Err(Error::Checksum { layer: Layer::Ipv4 }));
        assert_eq!(Repr::parse(&packet, ChecksumCheck::Ignore), Ok(echo_request_repr()));
        // An options byte is covered too.
        let mut bad = WITH_OPTIONS;
        bad[22] = 1;
        assert!(!Packet::new_checked(&bad[..]).unwrap().verify_checksum());
    }

    #[test]
    fn evil_bit_is_accepted_and_kept_in_place() {
        let mut buf = ECHO_REQUEST;
        let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
        packet.set_reserved_flag(true);
        packet.fill_checksum();
        assert_eq!(packet.decrement_ttl(), Some(62));
        assert!(packet.reserved_flag() && packet.verify_checksum());
        let repr = Repr::parse(&Packet::new_checked(&buf[..]).unwrap(), ChecksumCheck::Verify).unwrap();
        assert_eq!(repr, Repr { ttl: 62, ..echo_request_repr() });
        let mut out = [0u8; 20];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out[6], 0x40, "emit writes the reserved bit as zero");
    }

    #[test]
    fn decrement_ttl_refuses_zero_and_one() {
        for ttl in [0u8, 1] {
            let mut buf = ECHO_REQUEST;
            let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
            packet.set_ttl(ttl);
            packet.fill_checksum();
            let before = buf;
            assert_eq!(Packet::new_unchecked(&mut buf[..]).decrement_ttl(), None);
            assert_eq!(buf, before, "a refused decrement touches nothing");
        }
    }

    #[test]
    fn decrement_ttl_equals_recompute_for_every_ttl_and_protocol() {
        for ttl in 2..=255u8 {
            for protocol in 0..=255u8 {
                let mut buf = ECHO_REQUEST;
                let mut packet = Packet::new_unchecked(&mut buf[..]);
                packet.set_ttl(ttl);
                packet.set_protocol(Protocol(protocol));
                packet.fill_checksum();
                assert_eq!(packet.decrement_ttl(), Some(ttl - 1));
                let incremental = packet.checksum();
                packet.fill_checksum();
                assert_eq!(incremental, packet.checksum(), "ttl {ttl} protocol {protocol}");
            }
        }
    }

    #[test]
    fn incremental_address_rewrite() {
        let mut buf = ECHO_REQUEST;
        let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
        packet.set_src_addr_incremental(Ipv4Addr::new(192, 0, 2, 1));
        packet.set_dst_addr_incremental(Ipv4Addr::new(198, 51, 100, 7));
        assert!(packet.verify_checksum());
        let incremental = packet.checksum();
        packet.fill_checksum();
        assert_eq!(incremental, packet.checksum());
        assert_eq!(packet.src_addr(), Ipv4Addr::new(192, 0, 2, 1));
    }

    #[test]
    fn display() {
        let repr = echo_request_repr();
        assert_eq!(std::format!("{repr}"), "IPv4 10.244.1.2 > 10.244.2.2 proto ICMP ttl 63 len 64 DF");
        let frag = Repr { more_frags: true, frag_offset: 1480, dont_frag: false, ..repr };
        assert_eq!(
            std::format!("{frag}"),
            "IPv4 10.244.1.2 > 10.244.2.2 proto ICMP ttl 63 len 64 frag id 58802 off 1480 MF"
        );
        assert_eq!(std::format!("{}", Protocol(253)), "253");
        assert_eq!(std::format!("{:?}", Protocol::UDP), "UDP");
    }

    pub(crate) fn arb_repr() -> impl Strategy<Value = Repr> {
        (
            (any::<u32>(), any::<u32>(), any::<u8>(), 0..=MAX_PAYLOAD_LEN, any::<u8>()),
            (0..64u8, 0..4u8, any::<u16>(), any::<bool>(), any::<bool>(), 0..=OFFSET_MASK),
        )
            .prop_map(|((s, d, p, len, ttl), (dscp, ecn, ident, df, mf, off))| Repr {
                src_addr: Ipv4Addr::from_bits(s),
                dst_addr: Ipv4Addr::from_bits(d),
                protocol: Protocol(p),
                payload_len: len,
                ttl,
                dscp,
                ecn,
                ident,
                dont_frag: df,
                more_frags: mf,
                frag_offset: off << 3,
            })
    }

    /// A valid header of random fields (options of random bytes) with a right or a wrong checksum.
    fn arb_header() -> impl Strategy<Value = Vec<u8>> {
        (arb_repr(), 0..=10usize, proptest::collection::vec(any::<u8>(), 40), any::<u8>(), any::<Option<u16>>())
            .prop_map(|(repr, words, opts, flags, wrong)| {
                let header_len = HEADER_LEN + words * 4;
                let mut buf = std::vec![0u8; header_len];
                let repr = Repr { payload_len: repr.payload_len.min(usize::from(u16::MAX) - header_len), ..repr };
                repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
                buf[HEADER_LEN..].copy_from_slice(&opts[..words * 4]);
                let mut packet = Packet::new_unchecked(&mut buf[..]);
                packet.set_header_len(header_len);
                packet.set_total_len(u16::try_from(repr.payload_len + header_len).unwrap());
                packet.set_reserved_flag(flags & 1 != 0);
                packet.fill_checksum();
                if let Some(c) = wrong {
                    packet.set_checksum(c);
                }
                buf
            })
    }

    #[cfg(feature = "arbitrary")]
    proptest! {
        #[test]
        fn arbitrary_reprs_are_emittable(seed in proptest::collection::vec(any::<u8>(), 0..64)) {
            use arbitrary::Arbitrary;
            if let Ok(repr) = Repr::arbitrary(&mut arbitrary::Unstructured::new(&seed)) {
                let mut buf = std::vec![0u8; repr.total_len()];
                repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
                prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap(), ChecksumCheck::Verify), Ok(repr));
            }
        }
    }

    proptest! {
        #[test]
        fn repr_round_trip(repr in arb_repr()) {
            let mut buf = std::vec![0u8; repr.total_len()];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
            let packet = Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(packet.verify_checksum());
            prop_assert_eq!(Repr::parse(&packet, ChecksumCheck::Verify), Ok(repr));
            // smoltcp, as a second reader of our bytes.
            let theirs = smoltcp::wire::Ipv4Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(theirs.verify_checksum());
            prop_assert_eq!(theirs.total_len(), u16::try_from(repr.total_len()).unwrap());
            prop_assert_eq!(theirs.frag_offset(), repr.frag_offset);
            prop_assert_eq!(theirs.dscp(), repr.dscp);
            prop_assert_eq!(theirs.src_addr(), repr.src_addr);
        }

        #[test]
        fn decrement_ttl_keeps_checksum_status(mut buf in arb_header()) {
            let before_ok = Packet::new_unchecked(&buf[..]).verify_checksum();
            let before = buf.clone();
            let mut packet = Packet::new_unchecked(&mut buf[..]);
            let ttl = packet.ttl();
            let result = packet.decrement_ttl();
            if ttl <= 1 {
                prop_assert_eq!(result, None);
                prop_assert_eq!(&buf, &before);
            } else {
                prop_assert_eq!(result, Some(ttl - 1));
                prop_assert_eq!(packet.verify_checksum(), before_ok);
                if before_ok {
                    let incremental = packet.checksum();
                    packet.fill_checksum();
                    prop_assert_eq!(incremental, packet.checksum());
                }
                // Nothing but TTL and checksum changed.
                for (i, (a, b)) in buf.iter().zip(&before).enumerate() {
                    prop_assert!(a == b || i == 8 || i == 10 || i == 11);
                }
            }
        }

        #[test]
        fn address_rewrite_keeps_checksum_status(mut buf in arb_header(), src in any::<u32>(), dst in any::<u32>()) {
            let before_ok = Packet::new_unchecked(&buf[..]).verify_checksum();
            let mut packet = Packet::new_unchecked(&mut buf[..]);
            packet.set_src_addr_incremental(Ipv4Addr::from_bits(src));
            packet.set_dst_addr_incremental(Ipv4Addr::from_bits(dst));
            prop_assert_eq!(packet.verify_checksum(), before_ok);
            if before_ok {
                let incremental = packet.checksum();
                packet.fill_checksum();
                prop_assert_eq!(incremental, packet.checksum());
            }
        }

        #[test]
        fn etherparse_reads_the_same_fields(buf in arb_header()) {
            let ours = Packet::new_unchecked(&buf[..]);
            prop_assert_eq!(ours.check_header_len(), Ok(()));
            let theirs = etherparse::Ipv4HeaderSlice::from_slice(&buf).unwrap();
            prop_assert_eq!(usize::from(theirs.ihl()) * 4, ours.header_len());
            prop_assert_eq!(theirs.dcp().value(), ours.dscp());
            prop_assert_eq!(theirs.ecn().value(), ours.ecn());
            prop_assert_eq!(theirs.total_len(), ours.total_len());
            prop_assert_eq!(theirs.identification(), ours.ident());
            prop_assert_eq!(theirs.dont_fragment(), ours.dont_frag());
            prop_assert_eq!(theirs.more_fragments(), ours.more_frags());
            prop_assert_eq!(theirs.fragments_offset().value() * 8, ours.frag_offset());
            prop_assert_eq!(theirs.ttl(), ours.ttl());
            prop_assert_eq!(theirs.protocol().0, ours.protocol().0);
            prop_assert_eq!(theirs.header_checksum(), ours.checksum());
            prop_assert_eq!(theirs.source_addr(), ours.src_addr());
            prop_assert_eq!(theirs.destination_addr(), ours.dst_addr());
            prop_assert_eq!(theirs.options(), ours.options());
            // etherparse's Ipv4Header has no reserved flag: its recomputed checksum only matches ours without it.
            if !ours.reserved_flag() {
                prop_assert_eq!(theirs.to_header().calc_header_checksum() == ours.checksum(), ours.verify_checksum());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96), first in any::<u8>()) {
            let mut bytes = bytes;
            // Make a version-4 first byte likely, so that the deeper checks run too.
            if let Some(b) = bytes.first_mut() {
                *b = if first & 1 == 0 { 0x40 | (first >> 4) } else { first };
            }
            let packet = Packet::new_unchecked(&bytes[..]);
            let theirs = etherparse::Ipv4HeaderSlice::from_slice(&bytes);
            match packet.check_header_len() {
                Ok(()) => prop_assert!(theirs.is_ok()),
                Err(Error::Invalid { field: "total length", .. }) => prop_assert!(theirs.is_ok()),
                Err(_) => prop_assert!(theirs.is_err()),
            }
            if packet.check_header_len().is_ok() {
                let _ = Repr::parse_header(&packet, ChecksumCheck::Verify);
                let _ = (packet.options(), packet.payload(), packet.packet_bytes(), packet.verify_checksum());
                prop_assert!(packet.payload().len() <= usize::from(packet.total_len()));
            }
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let repr = Repr::parse(&packet, ChecksumCheck::Ignore).unwrap();
                prop_assert_eq!(repr.payload_len, packet.payload().len());
                prop_assert_eq!(packet.packet_bytes().len(), repr.payload_len + packet.header_len());
                let mut copy = bytes.clone();
                let mut packet = Packet::new_checked(&mut copy[..]).unwrap();
                let _ = packet.decrement_ttl();
                let _ = (packet.payload_mut().len(), packet.options_mut().len());
            }
        }
    }
}
