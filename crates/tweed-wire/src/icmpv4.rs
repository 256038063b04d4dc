//! ICMPv4 messages (RFC 792): echo, destination unreachable (with RFC 1191's next-hop MTU) and time exceeded,
//! and the error replies a router sends (RFC 1812 §4.3.2).
//!
//! [`Packet`] is a view over an ICMP message (the payload of an IPv4 packet); [`Repr`] is a parsed message. After
//! [`Packet::check_len`] (or [`Packet::new_checked`]) succeeded, no accessor panics. [`Repr::emit`] never panics on
//! a buffer of [`Repr::buffer_len`] bytes or more. [`emit_error`] and [`may_send_error`] never panic on any bytes.
//!
//! # Decisions
//! - The checksum covers the whole buffer: hand the view exactly the ICMP message ([`crate::ipv4::Packet::payload`]
//!   does), not an Ethernet-padded frame.
//! - Echo messages must have code 0 ([`Error::Invalid`] otherwise); other message types than echo, destination
//!   unreachable and time exceeded parse in the view but not into a [`Repr`] ([`Error::Unsupported`]).
//! - In an error message, the quoted IPv4 header is checked for shape ([`ipv4::Packet::check_header_len`]: a quote
//!   holds the header and only the first bytes of its payload, so its total length is not checked against the
//!   buffer) but its checksum is not verified: the quote is what the sender saw, and NATs rewrite quotes without
//!   always fixing them. Errors about the quote carry [`Layer::Ipv4`]. `data` is every byte after the quoted header:
//!   8 as RFC 792 asks, more from routers following RFC 1812 §4.3.2.3, fewer when the original payload was shorter.
//!
//! ```
//! use tweed_wire::icmpv4::{Message, Packet, Repr};
//! use tweed_wire::ipv4::ChecksumCheck;
//!
//! // An echo request's ICMP header (ident 0x4062, sequence 1) and 4 bytes of data.
//! let bytes = [0x08, 0x00, 0x19, 0xff, 0x40, 0x62, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef];
//! let packet = Packet::new_checked(&bytes[..])?;
//! assert_eq!(packet.msg_type(), Message::ECHO_REQUEST);
//! let repr = Repr::parse(&packet, ChecksumCheck::Verify)?;
//! assert_eq!(repr, Repr::EchoRequest { ident: 0x4062, seq_no: 1, data: &[0xde, 0xad, 0xbe, 0xef] });
//! # Ok::<(), tweed_wire::Error>(())
//! ```

use core::fmt;
use core::net::Ipv4Addr;

use crate::checksum;
use crate::field::{Field, Rest};
use crate::ipv4::{self, ChecksumCheck, Protocol};
use crate::{Error, Layer, Result};

/// An ICMP message type. Open: every value parses; the known ones have names.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Message(pub u8);

impl Message {
    /// Echo reply (RFC 792).
    pub const ECHO_REPLY: Self = Self(0);
    /// Destination unreachable (RFC 792).
    pub const DST_UNREACHABLE: Self = Self(3);
    /// Source quench (RFC 792, deprecated by RFC 6633).
    pub const SOURCE_QUENCH: Self = Self(4);
    /// Redirect (RFC 792).
    pub const REDIRECT: Self = Self(5);
    /// Echo request (RFC 792).
    pub const ECHO_REQUEST: Self = Self(8);
    /// Router advertisement (RFC 1256).
    pub const ROUTER_ADVERT: Self = Self(9);
    /// Router solicitation (RFC 1256).
    pub const ROUTER_SOLICIT: Self = Self(10);
    /// Time exceeded (RFC 792).
    pub const TIME_EXCEEDED: Self = Self(11);
    /// Parameter problem (RFC 792).
    pub const PARAM_PROBLEM: Self = Self(12);
    /// Timestamp request (RFC 792).
    pub const TIMESTAMP: Self = Self(13);
    /// Timestamp reply (RFC 792).
    pub const TIMESTAMP_REPLY: Self = Self(14);
    /// Address mask request (RFC 950).
    pub const ADDRESS_MASK_REQUEST: Self = Self(17);
    /// Address mask reply (RFC 950).
    pub const ADDRESS_MASK_REPLY: Self = Self(18);

    /// An error message (RFC 1122 §3.2.2): destination unreachable, source quench, redirect, time exceeded or
    /// parameter problem.
    #[must_use]
    pub const fn is_error(self) -> bool {
        matches!(self.0, 3 | 4 | 5 | 11 | 12)
    }

    /// A query or reply of RFC 792, 950 or 1256 (types 0 and 8 to 18 but the errors, 15 and 16 included).
    #[must_use]
    pub const fn is_query(self) -> bool {
        matches!(self.0, 0 | 8 | 9 | 10 | 13..=18)
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Self::ECHO_REPLY => "echo reply",
            Self::DST_UNREACHABLE => "destination unreachable",
            Self::SOURCE_QUENCH => "source quench",
            Self::REDIRECT => "redirect",
            Self::ECHO_REQUEST => "echo request",
            Self::ROUTER_ADVERT => "router advertisement",
            Self::ROUTER_SOLICIT => "router solicitation",
            Self::TIME_EXCEEDED => "time exceeded",
            Self::PARAM_PROBLEM => "parameter problem",
            Self::TIMESTAMP => "timestamp",
            Self::TIMESTAMP_REPLY => "timestamp reply",
            Self::ADDRESS_MASK_REQUEST => "address mask request",
            Self::ADDRESS_MASK_REPLY => "address mask reply",
            Self(v) => return write!(f, "type {v}"),
        };
        f.write_str(name)
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The code of a destination unreachable message (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1). Open: codes
/// without a name are `Unknown`; [`DstUnreachable::from`] never makes `Unknown` of a named code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DstUnreachable {
    /// 0: network unreachable.
    NetUnreachable,
    /// 1: host unreachable.
    HostUnreachable,
    /// 2: protocol unreachable.
    ProtoUnreachable,
    /// 3: port unreachable.
    PortUnreachable,
    /// 4: fragmentation needed and DF set; the next-hop MTU is in bytes 6..8 (RFC 1191).
    FragRequired,
    /// 5: source route failed.
    SrcRouteFailed,
    /// 6: destination network unknown.
    DstNetUnknown,
    /// 7: destination host unknown.
    DstHostUnknown,
    /// 8: source host isolated.
    SrcHostIsolated,
    /// 9: network administratively prohibited.
    NetProhibited,
    /// 10: host administratively prohibited.
    HostProhibited,
    /// 11: network unreachable for type of service.
    NetUnreachToS,
    /// 12: host unreachable for type of service.
    HostUnreachToS,
    /// 13: communication administratively prohibited (RFC 1812).
    CommProhibited,
    /// 14: host precedence violation (RFC 1812).
    HostPrecedenceViolation,
    /// 15: precedence cutoff in effect (RFC 1812).
    PrecedenceCutoff,
    /// Any other code.
    Unknown(u8),
}

impl From<u8> for DstUnreachable {
    fn from(code: u8) -> Self {
        match code {
            0 => Self::NetUnreachable,
            1 => Self::HostUnreachable,
            2 => Self::ProtoUnreachable,
            3 => Self::PortUnreachable,
            4 => Self::FragRequired,
            5 => Self::SrcRouteFailed,
            6 => Self::DstNetUnknown,
            7 => Self::DstHostUnknown,
            8 => Self::SrcHostIsolated,
            9 => Self::NetProhibited,
            10 => Self::HostProhibited,
            11 => Self::NetUnreachToS,
            12 => Self::HostUnreachToS,
            13 => Self::CommProhibited,
            14 => Self::HostPrecedenceViolation,
            15 => Self::PrecedenceCutoff,
            other => Self::Unknown(other),
        }
    }
}

impl From<DstUnreachable> for u8 {
    fn from(code: DstUnreachable) -> Self {
        dst_unreachable_code(code)
    }
}

impl fmt::Display for DstUnreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match *self {
            Self::NetUnreachable => "network unreachable",
            Self::HostUnreachable => "host unreachable",
            Self::ProtoUnreachable => "protocol unreachable",
            Self::PortUnreachable => "port unreachable",
            Self::FragRequired => "fragmentation needed",
            Self::SrcRouteFailed => "source route failed",
            Self::DstNetUnknown => "destination network unknown",
            Self::DstHostUnknown => "destination host unknown",
            Self::SrcHostIsolated => "source host isolated",
            Self::NetProhibited => "network prohibited",
            Self::HostProhibited => "host prohibited",
            Self::NetUnreachToS => "network unreachable for tos",
            Self::HostUnreachToS => "host unreachable for tos",
            Self::CommProhibited => "communication prohibited",
            Self::HostPrecedenceViolation => "host precedence violation",
            Self::PrecedenceCutoff => "precedence cutoff",
            Self::Unknown(code) => return write!(f, "code {code}"),
        };
        f.write_str(text)
    }
}

/// The code of a time exceeded message (RFC 792). Open: other codes are `Unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeExceeded {
    /// 0: TTL reached zero in transit.
    TtlExpired,
    /// 1: fragment reassembly time exceeded.
    FragReassembly,
    /// Any other code.
    Unknown(u8),
}

impl From<u8> for TimeExceeded {
    fn from(code: u8) -> Self {
        match code {
            0 => Self::TtlExpired,
            1 => Self::FragReassembly,
            other => Self::Unknown(other),
        }
    }
}

impl From<TimeExceeded> for u8 {
    fn from(code: TimeExceeded) -> Self {
        time_exceeded_code(code)
    }
}

impl fmt::Display for TimeExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TtlExpired => f.write_str("ttl expired in transit"),
            Self::FragReassembly => f.write_str("fragment reassembly time exceeded"),
            Self::Unknown(code) => write!(f, "code {code}"),
        }
    }
}

mod field {
    #![allow(clippy::reversed_empty_ranges)]
    use super::{Field, Rest};

    pub(super) const TYPE: usize = 0;
    pub(super) const CODE: usize = 1;
    pub(super) const CHECKSUM: Field = 2..4;
    /// Bytes 4..8, whose meaning depends on the type.
    pub(super) const REST_OF_HEADER: Field = 4..8;
    pub(super) const ECHO_IDENT: Field = 4..6;
    pub(super) const ECHO_SEQ_NO: Field = 6..8;
    /// Parameter problem: the offending byte's offset.
    pub(super) const POINTER: usize = 4;
    /// Destination unreachable, fragmentation needed (RFC 1191).
    pub(super) const NEXT_HOP_MTU: Field = 6..8;
    pub(super) const DATA: Rest = 8..;
}

/// Length of the ICMP header: type, code, checksum and the four type-dependent bytes.
pub const HEADER_LEN: usize = field::DATA.start;
/// Bytes of the original payload quoted by [`emit_error`] after the original header (RFC 792).
pub const QUOTED_PAYLOAD_LEN: usize = 8;
/// TTL of the IPv4 header [`emit_error`] writes.
pub const ERROR_TTL: u8 = 64;
/// DSCP of the IPv4 header [`emit_error`] writes: CS6, the "internetwork control" precedence RFC 1812 §4.3.2.5
/// asks for (Linux sends TOS `0xc0` too).
pub const ERROR_DSCP: u8 = 48;

/// A view of an ICMP message.
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

    /// Wraps `buffer` and checks that the 8-byte header fits.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the 8-byte header fits; after `Ok`, no accessor panics.
    ///
    /// # Errors
    /// [`Error::Truncated`] with `required` 8.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        Error::need(Layer::Icmpv4, HEADER_LEN, self.buffer.as_ref().len())
    }

    /// The buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The message type.
    #[inline]
    pub fn msg_type(&self) -> Message {
        Message(self.buffer.as_ref()[field::TYPE])
    }

    /// The message code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    #[inline]
    fn u16_at(&self, at: Field) -> u16 {
        let b = &self.buffer.as_ref()[at];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Bytes 4..8 as one big-endian word, whatever the type.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::REST_OF_HEADER];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The identifier of an echo request or reply (bytes 4..6).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        self.u16_at(field::ECHO_IDENT)
    }

    /// The sequence number of an echo request or reply (bytes 6..8).
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        self.u16_at(field::ECHO_SEQ_NO)
    }

    /// The next-hop MTU of a "fragmentation needed" message (bytes 6..8, RFC 1191); 0 from routers older than
    /// RFC 1191.
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        self.u16_at(field::NEXT_HOP_MTU)
    }

    /// The pointer of a parameter problem message (byte 4): the offset of the offending byte in the quote.
    #[inline]
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }

    /// Whether the checksum over the whole buffer is right.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buffer.as_ref())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The bytes after the 8-byte header (echo data, or the quoted original packet of an error), borrowed for the
    /// buffer's lifetime.
    #[inline]
    pub fn data(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::DATA]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the message type.
    #[inline]
    pub fn set_msg_type(&mut self, msg_type: Message) {
        self.buffer.as_mut()[field::TYPE] = msg_type.0;
    }

    /// Sets the message code.
    #[inline]
    pub fn set_msg_code(&mut self, code: u8) {
        self.buffer.as_mut()[field::CODE] = code;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, checksum: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&checksum.to_be_bytes());
    }

    /// Sets bytes 4..8 from one big-endian word.
    #[inline]
    pub fn set_rest_of_header(&mut self, value: u32) {
        self.buffer.as_mut()[field::REST_OF_HEADER].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the echo identifier.
    #[inline]
    pub fn set_echo_ident(&mut self, ident: u16) {
        self.buffer.as_mut()[field::ECHO_IDENT].copy_from_slice(&ident.to_be_bytes());
    }

    /// Sets the echo sequence number.
    #[inline]
    pub fn set_echo_seq_no(&mut self, seq_no: u16) {
        self.buffer.as_mut()[field::ECHO_SEQ_NO].copy_from_slice(&seq_no.to_be_bytes());
    }

    /// Sets the next-hop MTU (bytes 6..8).
    #[inline]
    pub fn set_next_hop_mtu(&mut self, mtu: u16) {
        self.buffer.as_mut()[field::NEXT_HOP_MTU].copy_from_slice(&mtu.to_be_bytes());
    }

    /// Sets the parameter problem pointer (byte 4).
    #[inline]
    pub fn set_pointer(&mut self, pointer: u8) {
        self.buffer.as_mut()[field::POINTER] = pointer;
    }

    /// Computes the checksum over the whole buffer and writes it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// The bytes after the header, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A parsed ICMP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Repr<'a> {
    /// Echo request (type 8).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data, echoed back by the reply.
        data: &'a [u8],
    },
    /// Echo reply (type 0).
    EchoReply {
        /// Identifier of the request.
        ident: u16,
        /// Sequence number of the request.
        seq_no: u16,
        /// The request's data.
        data: &'a [u8],
    },
    /// Destination unreachable (type 3).
    DstUnreachable {
        /// The code.
        reason: DstUnreachable,
        /// Bytes 6..8: the next-hop MTU of [`DstUnreachable::FragRequired`] (RFC 1191), zero for other codes.
        next_hop_mtu: u16,
        /// The quoted IPv4 header of the original packet (its options are not kept).
        header: ipv4::Repr,
        /// The quoted bytes that followed the original header.
        data: &'a [u8],
    },
    /// Time exceeded (type 11).
    TimeExceeded {
        /// The code.
        reason: TimeExceeded,
        /// The quoted IPv4 header of the original packet (its options are not kept).
        header: ipv4::Repr,
        /// The quoted bytes that followed the original header.
        data: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Parses a message and, unless told not to, verifies its checksum.
    ///
    /// # Errors
    /// [`Error::Truncated`] under 8 bytes; [`Error::Checksum`]; [`Error::Invalid`] for an echo code other than 0;
    /// [`Error::Unsupported`] (`"type"`) for types other than echo, destination unreachable and time exceeded; the
    /// errors of [`ipv4::Packet::check_header_len`] (layer [`Layer::Ipv4`]) for a bad quoted header.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>, checksum: ChecksumCheck) -> Result<Self> {
        packet.check_len()?;
        if checksum == ChecksumCheck::Verify && !packet.verify_checksum() {
            return Err(Error::Checksum { layer: Layer::Icmpv4 });
        }
        let msg_type = packet.msg_type();
        let code = packet.msg_code();
        let echo_code = || {
            if code == 0 {
                Ok(())
            } else {
                Err(Error::Invalid { layer: Layer::Icmpv4, field: "code", value: code.into() })
            }
        };
        match msg_type {
            Message::ECHO_REQUEST => {
                echo_code()?;
                Ok(Self::EchoRequest { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data: packet.data() })
            }
            Message::ECHO_REPLY => {
                echo_code()?;
                Ok(Self::EchoReply { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data: packet.data() })
            }
            Message::DST_UNREACHABLE => {
                let (header, data) = parse_quote(packet.data())?;
                Ok(Self::DstUnreachable { reason: code.into(), next_hop_mtu: packet.next_hop_mtu(), header, data })
            }
            Message::TIME_EXCEEDED => {
                let (header, data) = parse_quote(packet.data())?;
                Ok(Self::TimeExceeded { reason: code.into(), header, data })
            }
            Message(other) => Err(Error::Unsupported { layer: Layer::Icmpv4, field: "type", value: other.into() }),
        }
    }

    /// The message's length on the wire: header, then data or the quoted 20-byte header and data.
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        match *self {
            Self::EchoRequest { data, .. } | Self::EchoReply { data, .. } => HEADER_LEN + data.len(),
            Self::DstUnreachable { data, .. } | Self::TimeExceeded { data, .. } => {
                HEADER_LEN + ipv4::HEADER_LEN + data.len()
            }
        }
    }

    /// Writes the message to the front of `packet`'s buffer and fills the checksum, computed over the whole
    /// buffer: give it exactly [`Repr::buffer_len`] bytes (a longer buffer's tail would be summed too).
    ///
    /// # Panics
    /// When the buffer is shorter than [`Repr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        match *self {
            Self::EchoRequest { ident, seq_no, data } | Self::EchoReply { ident, seq_no, data } => {
                let msg_type =
                    if matches!(self, Self::EchoRequest { .. }) { Message::ECHO_REQUEST } else { Message::ECHO_REPLY };
                packet.set_msg_type(msg_type);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                packet.data_mut()[..data.len()].copy_from_slice(data);
            }
            Self::DstUnreachable { reason, next_hop_mtu, header, data } => {
                packet.set_msg_type(Message::DST_UNREACHABLE);
                packet.set_msg_code(reason.into());
                packet.set_rest_of_header(u32::from(next_hop_mtu));
                emit_quote(&header, data, packet.data_mut());
            }
            Self::TimeExceeded { reason, header, data } => {
                packet.set_msg_type(Message::TIME_EXCEEDED);
                packet.set_msg_code(reason.into());
                packet.set_rest_of_header(0);
                emit_quote(&header, data, packet.data_mut());
            }
        }
        packet.fill_checksum();
    }
}

/// The quoted header and the bytes after it.
fn parse_quote(quote: &[u8]) -> Result<(ipv4::Repr, &[u8])> {
    let original = ipv4::Packet::new_unchecked(quote);
    let header = ipv4::Repr::parse_header(&original, ChecksumCheck::Ignore)?;
    // parse_header proved the buffer holds header_len bytes.
    Ok((header, &quote[original.header_len()..]))
}

fn emit_quote(header: &ipv4::Repr, data: &[u8], out: &mut [u8]) {
    header.emit(&mut ipv4::Packet::new_unchecked(&mut out[..ipv4::HEADER_LEN]));
    out[ipv4::HEADER_LEN..ipv4::HEADER_LEN + data.len()].copy_from_slice(data);
}

impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::EchoRequest { ident, seq_no, data } => {
                write!(f, "ICMP echo request id {ident} seq {seq_no} len {}", data.len())
            }
            Self::EchoReply { ident, seq_no, data } => {
                write!(f, "ICMP echo reply id {ident} seq {seq_no} len {}", data.len())
            }
            Self::DstUnreachable { reason: DstUnreachable::FragRequired, next_hop_mtu, header, .. } => {
                write!(f, "ICMP fragmentation needed mtu {next_hop_mtu} for {} > {}", header.src_addr, header.dst_addr)
            }
            Self::DstUnreachable { reason, header, .. } => {
                write!(f, "ICMP {reason} for {} > {}", header.src_addr, header.dst_addr)
            }
            Self::TimeExceeded { reason, header, .. } => {
                write!(f, "ICMP {reason} for {} > {}", header.src_addr, header.dst_addr)
            }
        }
    }
}

/// Only emittable messages: named codes are never `Unknown`, and the quoted header is emittable.
#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Repr<'a> {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0..=3u8)? {
            0 => Self::EchoRequest { ident: u.arbitrary()?, seq_no: u.arbitrary()?, data: u.arbitrary()? },
            1 => Self::EchoReply { ident: u.arbitrary()?, seq_no: u.arbitrary()?, data: u.arbitrary()? },
            2 => Self::DstUnreachable {
                reason: DstUnreachable::from(u.arbitrary::<u8>()?),
                next_hop_mtu: u.arbitrary()?,
                header: u.arbitrary()?,
                data: u.arbitrary()?,
            },
            _ => Self::TimeExceeded {
                reason: TimeExceeded::from(u.arbitrary::<u8>()?),
                header: u.arbitrary()?,
                data: u.arbitrary()?,
            },
        })
    }
}

/// The error a router sends with [`emit_error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Destination unreachable with this code (bytes 4..8 zero; use [`ErrorKind::FragRequired`] to give an MTU).
    DstUnreachable(DstUnreachable),
    /// Destination unreachable, fragmentation needed and DF set, with the next-hop MTU (RFC 1191).
    FragRequired {
        /// The MTU of the next hop, in bytes.
        next_hop_mtu: u16,
    },
    /// Time exceeded with this code.
    TimeExceeded(TimeExceeded),
}

impl ErrorKind {
    /// TTL expired in transit: what [`ipv4::Packet::decrement_ttl`] refusing means.
    pub const TTL_EXPIRED: Self = Self::TimeExceeded(TimeExceeded::TtlExpired);

    const fn type_code_rest(self) -> (Message, u8, u32) {
        match self {
            Self::DstUnreachable(reason) => (Message::DST_UNREACHABLE, dst_unreachable_code(reason), 0),
            Self::FragRequired { next_hop_mtu } => (Message::DST_UNREACHABLE, 4, next_hop_mtu as u32),
            Self::TimeExceeded(reason) => (Message::TIME_EXCEEDED, time_exceeded_code(reason), 0),
        }
    }
}

const fn dst_unreachable_code(reason: DstUnreachable) -> u8 {
    match reason {
        DstUnreachable::NetUnreachable => 0,
        DstUnreachable::HostUnreachable => 1,
        DstUnreachable::ProtoUnreachable => 2,
        DstUnreachable::PortUnreachable => 3,
        DstUnreachable::FragRequired => 4,
        DstUnreachable::SrcRouteFailed => 5,
        DstUnreachable::DstNetUnknown => 6,
        DstUnreachable::DstHostUnknown => 7,
        DstUnreachable::SrcHostIsolated => 8,
        DstUnreachable::NetProhibited => 9,
        DstUnreachable::HostProhibited => 10,
        DstUnreachable::NetUnreachToS => 11,
        DstUnreachable::HostUnreachToS => 12,
        DstUnreachable::CommProhibited => 13,
        DstUnreachable::HostPrecedenceViolation => 14,
        DstUnreachable::PrecedenceCutoff => 15,
        DstUnreachable::Unknown(other) => other,
    }
}

const fn time_exceeded_code(reason: TimeExceeded) -> u8 {
    match reason {
        TimeExceeded::TtlExpired => 0,
        TimeExceeded::FragReassembly => 1,
        TimeExceeded::Unknown(other) => other,
    }
}

/// How many bytes of `original` an error about it quotes: its header with options and up to
/// [`QUOTED_PAYLOAD_LEN`] bytes of its payload (fewer when the payload, bounded by the total length and by the
/// buffer, is shorter).
fn quote_len(original: &[u8]) -> Result<usize> {
    let packet = ipv4::Packet::new_unchecked(original);
    packet.check_header_len()?;
    let header_len = packet.header_len();
    let end = usize::from(packet.total_len()).min(original.len());
    Ok(header_len + (end - header_len).min(QUOTED_PAYLOAD_LEN))
}

/// The length of the ICMP message [`emit_error_message`] writes about `original`.
///
/// # Errors
/// Those of [`ipv4::Packet::check_header_len`] on `original`.
pub fn error_message_len(original: &[u8]) -> Result<usize> {
    Ok(HEADER_LEN + quote_len(original)?)
}

/// The length of the whole IPv4 packet [`emit_error`] writes about `original`: at most 20 + 8 + 60 + 8 = 96.
///
/// # Errors
/// Those of [`ipv4::Packet::check_header_len`] on `original`.
pub fn error_len(original: &[u8]) -> Result<usize> {
    Ok(ipv4::HEADER_LEN + error_message_len(original)?)
}

/// Writes an ICMP error message (no IPv4 header) about `original` to the front of `out` and returns its length:
/// the quote is `original`'s IPv4 header, options included, exactly as given, and the first
/// [`QUOTED_PAYLOAD_LEN`] bytes of its payload (RFC 792). Use [`emit_error`] for a whole packet.
///
/// # Errors
/// Those of [`ipv4::Packet::check_header_len`] (layer [`Layer::Ipv4`]) when `original` does not start with a valid
/// IPv4 header; [`Error::Truncated`] (layer [`Layer::Icmpv4`]) when `out` is shorter than [`error_message_len`].
pub fn emit_error_message(kind: ErrorKind, original: &[u8], out: &mut [u8]) -> Result<usize> {
    let quote = quote_len(original)?;
    let len = HEADER_LEN + quote;
    Error::need(Layer::Icmpv4, len, out.len())?;
    let (msg_type, code, rest) = kind.type_code_rest();
    let mut packet = Packet::new_unchecked(&mut out[..len]);
    packet.set_msg_type(msg_type);
    packet.set_msg_code(code);
    packet.set_rest_of_header(rest);
    packet.data_mut().copy_from_slice(&original[..quote]);
    packet.fill_checksum();
    Ok(len)
}

/// Writes a whole ICMP error packet about `original` (the offending packet's bytes, from its IPv4 header on, as
/// received: before its TTL was decremented) to the front of `out` and returns the number of bytes written.
///
/// The IPv4 header goes from `src_addr` (the router's address on the interface the packet came in by) to
/// `original`'s source, TTL [`ERROR_TTL`], DSCP [`ERROR_DSCP`], protocol ICMP, identification 0 with DF set (an
/// atomic datagram, whose identification RFC 6864 §4.1 leaves free: at most 96 bytes, it never needs fragmenting).
/// The message quotes `original` as [`emit_error_message`] does.
///
/// This does not judge whether an error may be sent at all: ask [`may_send_error`] first, and rate-limit
/// (RFC 1812 §4.3.2.8).
///
/// ```
/// use core::net::Ipv4Addr;
/// use tweed_wire::icmpv4::{self, ErrorKind};
///
/// // A UDP datagram with TTL 1 from 10.244.1.2 to 10.244.2.2 reaches the router 10.244.1.1.
/// let mut original = [0u8; 36];
/// original[..20].copy_from_slice(&[0x45, 0, 0, 36, 0, 0, 0x40, 0, 1, 17, 0, 0, 10, 244, 1, 2, 10, 244, 2, 2]);
/// let mut packet = tweed_wire::ipv4::Packet::new_checked(&mut original[..])?;
/// packet.fill_checksum();
/// assert_eq!(packet.decrement_ttl(), None);
/// assert!(icmpv4::may_send_error(&packet));
///
/// let mut out = [0u8; 96];
/// let len = icmpv4::emit_error(ErrorKind::TTL_EXPIRED, Ipv4Addr::new(10, 244, 1, 1), &original, &mut out)?;
/// assert_eq!(len, 20 + 8 + 20 + 8);
/// assert_eq!(&out[16..20], &[10, 244, 1, 2]); // back to the sender
/// # Ok::<(), tweed_wire::Error>(())
/// ```
///
/// # Errors
/// Those of [`ipv4::Packet::check_header_len`] (layer [`Layer::Ipv4`]) when `original` does not start with a valid
/// IPv4 header; [`Error::Truncated`] (layer [`Layer::Icmpv4`]) when `out` is shorter than [`error_len`].
pub fn emit_error(kind: ErrorKind, src_addr: Ipv4Addr, original: &[u8], out: &mut [u8]) -> Result<usize> {
    let len = error_len(original)?;
    Error::need(Layer::Icmpv4, len, out.len())?;
    let (header, message) = out[..len].split_at_mut(ipv4::HEADER_LEN);
    let message_len = emit_error_message(kind, original, message)?;
    let ip = ipv4::Repr {
        src_addr,
        // check_header_len passed in error_len: the source address is there.
        dst_addr: ipv4::Packet::new_unchecked(original).src_addr(),
        protocol: Protocol::ICMP,
        payload_len: message_len,
        ttl: ERROR_TTL,
        dscp: ERROR_DSCP,
        ecn: 0,
        ident: 0,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    ip.emit(&mut ipv4::Packet::new_unchecked(header));
    Ok(len)
}

/// Why no ICMP error may be sent about a packet (RFC 1812 §4.3.2.7). Each is a drop counter's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Suppression {
    /// The original does not start with a valid IPv4 header, or is ICMP without a type byte to judge.
    Malformed,
    /// The original is an ICMP error (or an ICMP type unknown to us, taken as one, as Linux does).
    IcmpError,
    /// The original is a fragment other than the first.
    LaterFragment,
    /// The original was sent to the limited broadcast address 255.255.255.255.
    BroadcastDst,
    /// The original was sent to a multicast address (224.0.0.0/4).
    MulticastDst,
    /// The original's source does not name one host: 0.0.0.0/8, 127.0.0.0/8, multicast, or class E (240.0.0.0/4,
    /// broadcast included).
    NonUnicastSrc,
}

impl Suppression {
    /// A short lowercase name, for counters.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed original",
            Self::IcmpError => "original is an icmp error",
            Self::LaterFragment => "original is a later fragment",
            Self::BroadcastDst => "original to broadcast",
            Self::MulticastDst => "original to multicast",
            Self::NonUnicastSrc => "original from a non-unicast source",
        }
    }
}

impl fmt::Display for Suppression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why RFC 1812 §4.3.2.7 forbids an ICMP error about `original`, or `None` when one may be sent. The first rule
/// that applies is reported, in the order of [`Suppression`]'s variants.
///
/// Two rules need more than the IPv4 bytes and are the caller's: no error about a packet that came as a link-layer
/// broadcast or multicast (look at the Ethernet destination), nor about one sent to a subnet's directed broadcast
/// address (look at the route).
#[must_use]
pub fn suppression<T: AsRef<[u8]>>(original: &ipv4::Packet<T>) -> Option<Suppression> {
    let bytes = original.as_ref();
    let packet = ipv4::Packet::new_unchecked(bytes);
    if packet.check_header_len().is_err() {
        return Some(Suppression::Malformed);
    }
    let src = packet.src_addr();
    let dst = packet.dst_addr();
    let src_first = src.octets()[0];
    if packet.protocol() == Protocol::ICMP && !packet.is_later_fragment() {
        match bytes.get(packet.header_len()) {
            None => return Some(Suppression::Malformed),
            Some(&t) if !Message(t).is_query() => return Some(Suppression::IcmpError),
            Some(_) => {}
        }
    }
    if packet.is_later_fragment() {
        Some(Suppression::LaterFragment)
    } else if dst.is_broadcast() {
        Some(Suppression::BroadcastDst)
    } else if dst.is_multicast() {
        Some(Suppression::MulticastDst)
    } else if src_first == 0 || src_first == 127 || src_first >= 224 {
        Some(Suppression::NonUnicastSrc)
    } else {
        None
    }
}

/// Whether an ICMP error may be sent about `original` (RFC 1812 §4.3.2.7): see [`suppression`] for the rules and
/// the two that are the caller's.
#[must_use]
pub fn may_send_error<T: AsRef<[u8]>>(original: &ipv4::Packet<T>) -> bool {
    suppression(original).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// ICMP part of frame 0 of `tests/data/kernel-flannel-vxlan.pcap`: ping from 10.244.1.2, ident 0x4062,
    /// sequence 1, 56 bytes of data (a timestamp then 0x10..0x37).
    static ECHO_REQUEST: [u8; 64] = [
        0x08, 0x00, 0x61, 0xbf, 0x40, 0x62, 0x00, 0x01, 0x02, 0xf2, 0x02, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x8f, 0xad,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b,
        0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d,
        0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];
    /// Frame 1: the kernel's reply from 10.244.2.2.
    static ECHO_REPLY: [u8; 64] = [
        0x00, 0x00, 0x69, 0xbf, 0x40, 0x62, 0x00, 0x01, 0x02, 0xf2, 0x02, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x8f, 0xad,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b,
        0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d,
        0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];
    /// The whole inner IPv4 packet of frame 0 (the echo request above behind its header, TTL 63, DF).
    fn echo_request_ip() -> [u8; 84] {
        let mut ip = [0u8; 84];
        ip[..20].copy_from_slice(&[
            0x45, 0x00, 0x00, 0x54, 0xe5, 0xb2, 0x40, 0x00, 0x3f, 0x01, 0x3d, 0x0b, 0x0a, 0xf4, 0x01, 0x02, 0x0a, 0xf4,
            0x02, 0x02,
        ]);
        ip[20..].copy_from_slice(&ECHO_REQUEST);
        ip
    }

    // The replies below were derived by hand from RFC 792's layouts (script: type, code, checksum, rest, quote;
    // IPv4 header 45 c0 len 0000 4000 40 01 csum src dst) independently of this module's code.

    /// The router 10.244.1.1 tells 10.244.1.2 that the echo request above ran out of TTL: quote = its 20-byte
    /// header and the first 8 ICMP bytes.
    static TIME_EXCEEDED_REPLY: [u8; 56] = [
        0x45, 0xc0, 0x00, 0x38, 0x00, 0x00, 0x40, 0x00, 0x40, 0x01, 0x22, 0x1b, 0x0a, 0xf4, 0x01, 0x01, 0x0a, 0xf4,
        0x01, 0x02, 0x0b, 0x00, 0x4a, 0xdd, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x54, 0xe5, 0xb2, 0x40, 0x00,
        0x3f, 0x01, 0x3d, 0x0b, 0x0a, 0xf4, 0x01, 0x02, 0x0a, 0xf4, 0x02, 0x02, 0x08, 0x00, 0x61, 0xbf, 0x40, 0x62,
        0x00, 0x01,
    ];
    /// The first 48 bytes of frame 23's inner packet: a 1450-byte TCP segment with DF from 10.244.1.2.
    static BIG_ORIGINAL_HEAD: [u8; 48] = [
        0x45, 0x00, 0x05, 0xaa, 0xea, 0xbd, 0x40, 0x00, 0x3f, 0x06, 0x32, 0xa5, 0x0a, 0xf4, 0x01, 0x02, 0x0a, 0xf4,
        0x02, 0x02, 0xd7, 0xb0, 0x14, 0x51, 0x60, 0x1d, 0xe2, 0x22, 0x75, 0xae, 0x25, 0x1c, 0x80, 0x10, 0x00, 0x40,
        0xbd, 0x9d, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0xf3, 0xa9, 0xd3, 0x27,
    ];
    /// 10.244.1.1 refuses it for a 1400-byte next hop: code 4, MTU 0x0578 in bytes 6..8 (RFC 1191).
    static FRAG_REQUIRED_REPLY: [u8; 56] = [
        0x45, 0xc0, 0x00, 0x38, 0x00, 0x00, 0x40, 0x00, 0x40, 0x01, 0x22, 0x1b, 0x0a, 0xf4, 0x01, 0x01, 0x0a, 0xf4,
        0x01, 0x02, 0x03, 0x04, 0xc9, 0x41, 0x00, 0x00, 0x05, 0x78, 0x45, 0x00, 0x05, 0xaa, 0xea, 0xbd, 0x40, 0x00,
        0x3f, 0x06, 0x32, 0xa5, 0x0a, 0xf4, 0x01, 0x02, 0x0a, 0xf4, 0x02, 0x02, 0xd7, 0xb0, 0x14, 0x51, 0x60, 0x1d,
        0xe2, 0x22,
    ];
    /// A UDP datagram to port 53 with a 4-byte option (NOP NOP NOP EOL), IHL 6, and 4 bytes of data.
    static UDP_WITH_OPTIONS: [u8; 36] = [
        0x46, 0x00, 0x00, 0x24, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11, 0x02, 0x96, 0x0a, 0xf4, 0x01, 0x02, 0x0a, 0xf4,
        0x02, 0x03, 0x01, 0x01, 0x01, 0x00, 0xd4, 0x31, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef,
    ];
    /// 10.244.2.3's port unreachable: the quote keeps the options (24 bytes) and the 8-byte UDP header only.
    static PORT_UNREACHABLE_REPLY: [u8; 60] = [
        0x45, 0xc0, 0x00, 0x3c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x01, 0x21, 0x15, 0x0a, 0xf4, 0x02, 0x03, 0x0a, 0xf4,
        0x01, 0x02, 0x03, 0x03, 0x28, 0x8a, 0x00, 0x00, 0x00, 0x00, 0x46, 0x00, 0x00, 0x24, 0x1c, 0x46, 0x40, 0x00,
        0x40, 0x11, 0x02, 0x96, 0x0a, 0xf4, 0x01, 0x02, 0x0a, 0xf4, 0x02, 0x03, 0x01, 0x01, 0x01, 0x00, 0xd4, 0x31,
        0x00, 0x35, 0x00, 0x0c, 0x00, 0x00,
    ];

    const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 1);
    const POD: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 2);

    fn parse(bytes: &[u8]) -> Result<Repr<'_>> {
        Repr::parse(&Packet::new_checked(bytes)?, ChecksumCheck::Verify)
    }

    #[test]
    fn test_deconstruct() {
        let packet = Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::ECHO_REQUEST);
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(packet.checksum(), 0x61bf);
        assert_eq!((packet.echo_ident(), packet.echo_seq_no()), (0x4062, 1));
        assert_eq!(packet.rest_of_header(), 0x4062_0001);
        assert_eq!(packet.data(), &ECHO_REQUEST[8..]);
        assert!(packet.verify_checksum());

        let reply = Packet::new_checked(&FRAG_REQUIRED_REPLY[20..]).unwrap();
        assert_eq!((reply.msg_type(), reply.msg_code(), reply.next_hop_mtu()), (Message::DST_UNREACHABLE, 4, 1400));
        assert!(reply.verify_checksum());
    }

    #[test]
    fn test_parse_echo() {
        let data = &ECHO_REQUEST[8..];
        assert_eq!(parse(&ECHO_REQUEST), Ok(Repr::EchoRequest { ident: 0x4062, seq_no: 1, data }));
        assert_eq!(parse(&ECHO_REPLY), Ok(Repr::EchoReply { ident: 0x4062, seq_no: 1, data }));
    }

    #[test]
    fn test_emit_echo() {
        for bytes in [&ECHO_REQUEST, &ECHO_REPLY] {
            let repr = parse(bytes).unwrap();
            assert_eq!(repr.buffer_len(), 64);
            let mut out = [0xa5u8; 64];
            repr.emit(&mut Packet::new_unchecked(&mut out[..]));
            assert_eq!(&out, bytes);
        }
    }

    #[test]
    fn test_construct_echo_reply_in_place() {
        // A responder turns the request around: type 0, checksum patched incrementally (RFC 1624).
        let mut buf = ECHO_REQUEST;
        let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
        packet.set_msg_type(Message::ECHO_REPLY);
        let c = checksum::update16(packet.checksum(), 0x0800, 0x0000);
        packet.set_checksum(c);
        assert_eq!(buf, ECHO_REPLY);
        let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
        packet.set_echo_ident(1);
        packet.set_echo_seq_no(2);
        packet.data_mut()[0] = 0;
        packet.fill_checksum();
        assert!(packet.verify_checksum());
        assert_eq!(&buf[4..8], &[0, 1, 0, 2]);
    }

    #[test]
    fn smoltcp_agrees_on_echo() {
        let caps = smoltcp::phy::ChecksumCapabilities::default();
        let theirs = smoltcp::wire::Icmpv4Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        let theirs = smoltcp::wire::Icmpv4Repr::parse(&theirs, &caps).unwrap();
        let smoltcp::wire::Icmpv4Repr::EchoRequest { ident, seq_no, data } = theirs else { panic!("{theirs:?}") };
        assert_eq!(parse(&ECHO_REQUEST), Ok(Repr::EchoRequest { ident, seq_no, data }));
    }

    #[test]
    fn time_exceeded_byte_by_byte() {
        let original = echo_request_ip();
        assert!(may_send_error(&ipv4::Packet::new_checked(&original[..]).unwrap()));
        let mut out = [0u8; 96];
        assert_eq!(error_len(&original), Ok(56));
        let len = emit_error(ErrorKind::TTL_EXPIRED, ROUTER, &original, &mut out).unwrap();
        assert_eq!(&out[..len], &TIME_EXCEEDED_REPLY[..]);
        // Exactly the length is enough.
        let mut exact = [0u8; 56];
        assert_eq!(emit_error(ErrorKind::TTL_EXPIRED, ROUTER, &original, &mut exact), Ok(56));
        assert_eq!(exact, TIME_EXCEEDED_REPLY);

        // Re-parsed: IPv4 from the router to the pod, carrying the quote of the request.
        let ip = ipv4::Packet::new_checked(&out[..len]).unwrap();
        let ip_repr = ipv4::Repr::parse(&ip, ChecksumCheck::Verify).unwrap();
        assert_eq!((ip_repr.src_addr, ip_repr.dst_addr, ip_repr.protocol), (ROUTER, POD, Protocol::ICMP));
        assert_eq!((ip_repr.ttl, ip_repr.dscp, ip_repr.payload_len), (64, 48, 36));
        let repr = parse(ip.payload()).unwrap();
        let quoted = ipv4::Repr::parse(&ipv4::Packet::new_checked(&original[..]).unwrap(), ChecksumCheck::Verify);
        assert_eq!(
            repr,
            Repr::TimeExceeded { reason: TimeExceeded::TtlExpired, header: quoted.unwrap(), data: &ECHO_REQUEST[..8] }
        );
        // The Repr re-emits the same message (no options in the quote).
        let mut again = [0u8; 36];
        repr.emit(&mut Packet::new_unchecked(&mut again[..]));
        assert_eq!(&again[..], &TIME_EXCEEDED_REPLY[20..]);
        assert_eq!(std::format!("{repr}"), "ICMP ttl expired in transit for 10.244.1.2 > 10.244.2.2");
    }

    #[test]
    fn frag_required_byte_by_byte() {
        let mut out = [0u8; 56];
        let kind = ErrorKind::FragRequired { next_hop_mtu: 1400 };
        assert_eq!(emit_error(kind, ROUTER, &BIG_ORIGINAL_HEAD, &mut out), Ok(56));
        assert_eq!(out, FRAG_REQUIRED_REPLY);
        let repr = parse(&out[20..]).unwrap();
        let Repr::DstUnreachable { reason, next_hop_mtu, header, data } = repr else { panic!("{repr:?}") };
        assert_eq!((reason, next_hop_mtu), (DstUnreachable::FragRequired, 1400));
        // The quoted header tells the original's full length, not the quote's.
        assert_eq!((header.payload_len, header.protocol, header.dont_frag), (1430, Protocol::TCP, true));
        assert_eq!(data, &BIG_ORIGINAL_HEAD[20..28]);
        assert_eq!(std::format!("{repr}"), "ICMP fragmentation needed mtu 1400 for 10.244.1.2 > 10.244.2.2");

        // etherparse reads the same message.
        let theirs = etherparse::Icmpv4Slice::from_slice(&out[20..]).unwrap();
        assert_eq!(
            theirs.icmp_type(),
            etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 }
            )
        );
        assert_eq!(theirs.payload(), &BIG_ORIGINAL_HEAD[..28]);
    }

    #[test]
    fn port_unreachable_quotes_options() {
        let mut out = [0u8; 96];
        let kind = ErrorKind::DstUnreachable(DstUnreachable::PortUnreachable);
        let len = emit_error(kind, Ipv4Addr::new(10, 244, 2, 3), &UDP_WITH_OPTIONS, &mut out).unwrap();
        assert_eq!(&out[..len], &PORT_UNREACHABLE_REPLY[..]);
        let repr = parse(&out[20..len]).unwrap();
        let Repr::DstUnreachable { reason, next_hop_mtu, header, data } = repr else { panic!("{repr:?}") };
        assert_eq!((reason, next_hop_mtu), (DstUnreachable::PortUnreachable, 0));
        assert_eq!((header.src_addr, header.payload_len), (POD, 12));
        assert_eq!(data, &UDP_WITH_OPTIONS[24..32], "data is the UDP header, after the options");
        let theirs = etherparse::Icmpv4Slice::from_slice(&out[20..len]).unwrap();
        assert_eq!(
            theirs.icmp_type(),
            etherparse::Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port)
        );
        // Only the message, for a caller with its own IPv4 header.
        let mut message = [0u8; 40];
        assert_eq!(error_message_len(&UDP_WITH_OPTIONS), Ok(40));
        assert_eq!(emit_error_message(kind, &UDP_WITH_OPTIONS, &mut message), Ok(40));
        assert_eq!(&message[..], &PORT_UNREACHABLE_REPLY[20..]);
    }

    #[test]
    fn error_quotes_less_when_the_payload_is_short() {
        // A 24-byte datagram (4 bytes of payload) in an Ethernet-padded buffer: the padding is not quoted.
        let mut original = [0xeeu8; 46];
        let repr = ipv4::Repr { payload_len: 4, ..ipv4_repr() };
        repr.emit(&mut ipv4::Packet::new_unchecked(&mut original[..]));
        original[20..24].copy_from_slice(&[1, 2, 3, 4]);
        let mut out = [0u8; 96];
        let len = emit_error(ErrorKind::TTL_EXPIRED, ROUTER, &original, &mut out).unwrap();
        assert_eq!(len, 20 + 8 + 24);
        assert_eq!(
            parse(&out[20..len]).unwrap(),
            Repr::TimeExceeded { reason: TimeExceeded::TtlExpired, header: repr, data: &[1, 2, 3, 4] }
        );
        // A buffer cut short of the total length quotes what there is.
        let len = emit_error(ErrorKind::TTL_EXPIRED, ROUTER, &original[..22], &mut out).unwrap();
        assert_eq!(len, 20 + 8 + 22);
    }

    #[test]
    fn error_builder_errors() {
        let original = echo_request_ip();
        for short in 0..56 {
            let mut out = [0u8; 56];
            assert_eq!(
                emit_error(ErrorKind::TTL_EXPIRED, ROUTER, &original, &mut out[..short]),
                Err(Error::Truncated { layer: Layer::Icmpv4, required: 56, actual: short })
            );
            if short < 36 {
                assert_eq!(
                    emit_error_message(ErrorKind::TTL_EXPIRED, &original, &mut out[..short]),
                    Err(Error::Truncated { layer: Layer::Icmpv4, required: 36, actual: short })
                );
            }
        }
        let mut out = [0u8; 96];
        for len in 0..20 {
            assert_eq!(
                emit_error(ErrorKind::TTL_EXPIRED, ROUTER, &original[..len], &mut out),
                Err(Error::Truncated { layer: Layer::Ipv4, required: 20, actual: len })
            );
        }
        let mut v6 = original;
        v6[0] = 0x60;
        assert_eq!(
            emit_error(ErrorKind::TTL_EXPIRED, ROUTER, &v6, &mut out),
            Err(Error::Invalid { layer: Layer::Ipv4, field: "version", value: 6 })
        );
    }

    fn ipv4_repr() -> ipv4::Repr {
        ipv4::Repr {
            src_addr: POD,
            dst_addr: Ipv4Addr::new(10, 244, 2, 2),
            protocol: Protocol::UDP,
            payload_len: 8,
            ttl: 1,
            dscp: 0,
            ecn: 0,
            ident: 7,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
        }
    }

    /// A valid IPv4 packet of `repr`'s shape whose payload starts with `payload`.
    fn packet_of(repr: ipv4::Repr, payload: &[u8]) -> Vec<u8> {
        let mut buf = std::vec![0u8; repr.total_len()];
        repr.emit(&mut ipv4::Packet::new_unchecked(&mut buf[..]));
        buf[20..20 + payload.len()].copy_from_slice(payload);
        buf
    }

    fn suppressed(repr: ipv4::Repr, payload: &[u8]) -> Option<Suppression> {
        let buf = packet_of(repr, payload);
        let packet = ipv4::Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(may_send_error(&packet), suppression(&packet).is_none());
        suppression(&packet)
    }

    #[test]
    fn may_send_error_rules() {
        let udp = ipv4_repr();
        assert_eq!(suppressed(udp, &[]), None);
        // RFC 1812 4.3.2.7: not about an ICMP error...
        let icmp = ipv4::Repr { protocol: Protocol::ICMP, ..udp };
        for t in [3u8, 4, 5, 11, 12] {
            assert_eq!(suppressed(icmp, &[t, 0]), Some(Suppression::IcmpError), "type {t}");
        }
        // ...nor an unknown type, taken as an error (as Linux does); queries are fine.
        for t in [19u8, 42, 255] {
            assert_eq!(suppressed(icmp, &[t, 0]), Some(Suppression::IcmpError), "type {t}");
        }
        for t in [0u8, 8, 9, 10, 13, 14, 15, 16, 17, 18] {
            assert_eq!(suppressed(icmp, &[t, 0]), None, "type {t}");
        }
        // ICMP without a type byte cannot be judged.
        assert_eq!(suppressed(ipv4::Repr { payload_len: 0, ..icmp }, &[]), Some(Suppression::Malformed));
        // ...not about a fragment other than the first (whose ICMP type byte is not a type byte at all)...
        let later = ipv4::Repr { more_frags: true, frag_offset: 1480, ..icmp };
        assert_eq!(suppressed(later, &[3]), Some(Suppression::LaterFragment));
        assert_eq!(suppressed(ipv4::Repr { frag_offset: 8, ..udp }, &[]), Some(Suppression::LaterFragment));
        // ...but about a first fragment, yes.
        assert_eq!(suppressed(ipv4::Repr { more_frags: true, ..icmp }, &[8]), None);
        // ...not about a packet to broadcast or multicast...
        let to = |a, b, c, d| ipv4::Repr { dst_addr: Ipv4Addr::new(a, b, c, d), ..udp };
        assert_eq!(suppressed(to(255, 255, 255, 255), &[]), Some(Suppression::BroadcastDst));
        assert_eq!(suppressed(to(224, 0, 0, 251), &[]), Some(Suppression::MulticastDst));
        assert_eq!(suppressed(to(239, 255, 255, 250), &[]), Some(Suppression::MulticastDst));
        assert_eq!(suppressed(to(223, 255, 255, 255), &[]), None);
        // ...nor from a source that is not one host.
        let from = |a, b, c, d| ipv4::Repr { src_addr: Ipv4Addr::new(a, b, c, d), ..udp };
        for src in [[0, 0, 0, 0], [0, 1, 2, 3], [127, 0, 0, 1], [224, 0, 0, 1], [240, 0, 0, 1], [255, 255, 255, 255]] {
            assert_eq!(suppressed(from(src[0], src[1], src[2], src[3]), &[]), Some(Suppression::NonUnicastSrc));
        }
        for src in [[1, 0, 0, 0], [126, 255, 255, 255], [128, 0, 0, 1], [223, 1, 2, 3], [10, 244, 1, 255]] {
            assert_eq!(suppressed(from(src[0], src[1], src[2], src[3]), &[]), None, "{src:?}");
        }
        // Garbage is not answered.
        assert_eq!(suppression(&ipv4::Packet::new_unchecked(&[0x45u8, 0][..])), Some(Suppression::Malformed));
        assert_eq!(std::format!("{}", Suppression::LaterFragment), "original is a later fragment");
    }

    #[test]
    fn every_truncation_is_an_exact_error() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&ECHO_REQUEST[..len]),
                Err(Error::Truncated { layer: Layer::Icmpv4, required: 8, actual: len })
            );
            assert_eq!(
                Repr::parse(&Packet::new_unchecked(&ECHO_REQUEST[..len]), ChecksumCheck::Ignore),
                Err(Error::Truncated { layer: Layer::Icmpv4, required: 8, actual: len })
            );
        }
        // Echo has no length of its own: a shorter one is a shorter echo (and a checksum error when verified).
        for len in HEADER_LEN..ECHO_REQUEST.len() {
            let packet = Packet::new_checked(&ECHO_REQUEST[..len]).unwrap();
            assert_eq!(Repr::parse(&packet, ChecksumCheck::Verify), Err(Error::Checksum { layer: Layer::Icmpv4 }));
            let data = &ECHO_REQUEST[8..len];
            assert_eq!(
                Repr::parse(&packet, ChecksumCheck::Ignore),
                Ok(Repr::EchoRequest { ident: 0x4062, seq_no: 1, data })
            );
        }
        // An error: the quoted header must be whole (with its options); the quoted payload may be short.
        let message = &PORT_UNREACHABLE_REPLY[20..];
        for len in HEADER_LEN..message.len() {
            let result = Repr::parse(&Packet::new_checked(&message[..len]).unwrap(), ChecksumCheck::Ignore);
            let quote = len - HEADER_LEN;
            match quote {
                0..20 => assert_eq!(result, Err(Error::Truncated { layer: Layer::Ipv4, required: 20, actual: quote })),
                20..24 => assert_eq!(result, Err(Error::Truncated { layer: Layer::Ipv4, required: 24, actual: quote })),
                _ => {
                    let Ok(Repr::DstUnreachable { data, .. }) = result else { panic!("{len}: {result:?}") };
                    assert_eq!(data, &message[HEADER_LEN + 24..len]);
                }
            }
        }
    }

    #[test]
    fn bad_messages() {
        let mut bad = ECHO_REQUEST;
        bad[60] ^= 0x40;
        assert_eq!(parse(&bad), Err(Error::Checksum { layer: Layer::Icmpv4 }));
        let mut coded = ECHO_REQUEST;
        coded[1] = 1;
        Packet::new_unchecked(&mut coded[..]).fill_checksum();
        assert_eq!(parse(&coded), Err(Error::Invalid { layer: Layer::Icmpv4, field: "code", value: 1 }));
        let mut redirect = TIME_EXCEEDED_REPLY;
        redirect[20] = 5;
        Packet::new_unchecked(&mut redirect[20..]).fill_checksum();
        assert_eq!(parse(&redirect[20..]), Err(Error::Unsupported { layer: Layer::Icmpv4, field: "type", value: 5 }));
        assert_eq!(Packet::new_checked(&redirect[20..]).unwrap().msg_type(), Message::REDIRECT);
        // A quote that is not IPv4.
        let mut v6 = TIME_EXCEEDED_REPLY;
        v6[28] = 0x60;
        Packet::new_unchecked(&mut v6[20..]).fill_checksum();
        assert_eq!(parse(&v6[20..]), Err(Error::Invalid { layer: Layer::Ipv4, field: "version", value: 6 }));
        // A quoted header with a wrong checksum (bytes 10..12 of the quote) is still read, field for field as the
        // intact one.
        let mut quoted = TIME_EXCEEDED_REPLY;
        quoted[38] ^= 0xff;
        Packet::new_unchecked(&mut quoted[20..]).fill_checksum();
        let intact = parse(&TIME_EXCEEDED_REPLY[20..]).unwrap();
        assert_eq!(parse(&quoted[20..]), Ok(intact));
        let Repr::TimeExceeded { header, data, .. } = intact else { panic!("{intact:?}") };
        // The quote: 10.244.1.2 → 10.244.2.2, ICMP, 84 bytes, ident 0xe5b2, DF, TTL 63; then 8 bytes of the echo.
        assert_eq!(
            (header.src_addr, header.dst_addr, header.protocol, header.payload_len),
            (Ipv4Addr::new(10, 244, 1, 2), Ipv4Addr::new(10, 244, 2, 2), ipv4::Protocol::ICMP, 64)
        );
        assert_eq!((header.ident, header.dont_frag, header.more_frags, header.ttl), (0xe5b2, true, false, 63));
        assert_eq!(data, &[0x08, 0x00, 0x61, 0xbf, 0x40, 0x62, 0x00, 0x01]);
    }

    #[test]
    fn codes_round_trip() {
        for code in 0..=255u8 {
            assert_eq!(u8::from(DstUnreachable::from(code)), code);
            assert_eq!(u8::from(TimeExceeded::from(code)), code);
            assert_eq!(matches!(DstUnreachable::from(code), DstUnreachable::Unknown(_)), code > 15);
            assert_eq!(matches!(TimeExceeded::from(code), TimeExceeded::Unknown(_)), code > 1);
            let m = Message(code);
            assert!(!(m.is_error() && m.is_query()));
        }
        assert_eq!(std::format!("{}", Message::TIME_EXCEEDED), "time exceeded");
        assert_eq!(std::format!("{:?}", Message(42)), "type 42");
        assert_eq!(std::format!("{}", DstUnreachable::Unknown(99)), "code 99");
        assert_eq!(std::format!("{}", DstUnreachable::PortUnreachable), "port unreachable");
    }

    fn arb_ipv4_repr() -> impl Strategy<Value = ipv4::Repr> {
        (
            any::<[u32; 2]>(),
            any::<u8>(),
            0..=ipv4::MAX_PAYLOAD_LEN,
            any::<u8>(),
            0..64u8,
            0..4u8,
            any::<u16>(),
            any::<[bool; 2]>(),
            0..0x2000u16,
        )
            .prop_map(|(a, p, len, ttl, dscp, ecn, ident, f, off)| ipv4::Repr {
                src_addr: Ipv4Addr::from_bits(a[0]),
                dst_addr: Ipv4Addr::from_bits(a[1]),
                protocol: Protocol(p),
                payload_len: len,
                ttl,
                dscp,
                ecn,
                ident,
                dont_frag: f[0],
                more_frags: f[1],
                frag_offset: off << 3,
            })
    }

    #[cfg(feature = "arbitrary")]
    proptest! {
        #[test]
        fn arbitrary_reprs_are_emittable(seed in proptest::collection::vec(any::<u8>(), 0..128)) {
            use arbitrary::Arbitrary;
            if let Ok(repr) = Repr::arbitrary(&mut arbitrary::Unstructured::new(&seed)) {
                let mut buf = std::vec![0u8; repr.buffer_len()];
                repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
                prop_assert_eq!(parse(&buf), Ok(repr));
            }
        }
    }

    proptest! {
        #[test]
        fn repr_round_trip(
            kind in 0..4u8,
            a in any::<u16>(),
            b in any::<u16>(),
            code in any::<u8>(),
            header in arb_ipv4_repr(),
            data in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let repr = match kind {
                0 => Repr::EchoRequest { ident: a, seq_no: b, data: &data },
                1 => Repr::EchoReply { ident: a, seq_no: b, data: &data },
                2 => Repr::DstUnreachable { reason: code.into(), next_hop_mtu: a, header, data: &data },
                _ => Repr::TimeExceeded { reason: code.into(), header, data: &data },
            };
            let mut buf = std::vec![0u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
            prop_assert_eq!(parse(&buf), Ok(repr));
            // etherparse reads the same type, code and bytes 4..8.
            let theirs = etherparse::Icmpv4Slice::from_slice(&buf).unwrap();
            prop_assert_eq!(theirs.type_u8(), buf[0]);
            prop_assert_eq!(theirs.code_u8(), buf[1]);
            prop_assert_eq!(theirs.checksum(), Packet::new_unchecked(&buf[..]).checksum());
        }

        #[test]
        fn error_builder_output_reparses(
            repr in arb_ipv4_repr(),
            words in 0..=10usize,
            payload in proptest::collection::vec(any::<u8>(), 0..24),
            mtu in any::<u16>(),
            src in any::<u32>(),
        ) {
            // An original with options and a payload of 0..24 bytes, in a buffer that may stop before its end.
            let header_len = 20 + words * 4;
            let mut original = std::vec![0u8; header_len + payload.len()];
            repr.emit(&mut ipv4::Packet::new_unchecked(&mut original[..]));
            original[header_len..].copy_from_slice(&payload);
            let mut view = ipv4::Packet::new_unchecked(&mut original[..]);
            view.set_header_len(header_len);
            view.set_total_len(u16::try_from(header_len + payload.len().min(repr.payload_len)).unwrap());
            view.fill_checksum();
            let mut out = [0u8; 96];
            let kind = ErrorKind::FragRequired { next_hop_mtu: mtu };
            let len = emit_error(kind, Ipv4Addr::from_bits(src), &original, &mut out).unwrap();
            prop_assert_eq!(Ok(len), error_len(&original));
            let quoted = payload.len().min(repr.payload_len).min(8);
            prop_assert_eq!(len, 28 + header_len + quoted);
            let ip = ipv4::Packet::new_checked(&out[..len]).unwrap();
            let ip_repr = ipv4::Repr::parse(&ip, ChecksumCheck::Verify).unwrap();
            prop_assert_eq!(ip_repr.dst_addr, repr.src_addr);
            prop_assert_eq!(ip_repr.src_addr, Ipv4Addr::from_bits(src));
            let parsed = parse(ip.payload()).unwrap();
            let Repr::DstUnreachable { reason, next_hop_mtu, header, data } = parsed else {
                return Err(TestCaseError::fail("not a dst unreachable"));
            };
            prop_assert_eq!((reason, next_hop_mtu), (DstUnreachable::FragRequired, mtu));
            prop_assert_eq!(header.src_addr, repr.src_addr);
            prop_assert_eq!(data, &payload[..quoted]);
            prop_assert_eq!(&out[28..28 + header_len], &original[..header_len]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..96), pick in any::<u8>()) {
            // Steer some inputs into the error paths.
            if bytes.len() > 8 && pick % 2 == 0 {
                bytes[0] = [0u8, 3, 8, 11][usize::from(pick / 2 % 4)];
                bytes[8] = 0x40 | (bytes[8] & 0x0f);
            }
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let _ = (packet.msg_type(), packet.msg_code(), packet.echo_ident(), packet.echo_seq_no());
                let _ = (packet.next_hop_mtu(), packet.pointer(), packet.rest_of_header(), packet.verify_checksum());
                if let Ok(repr) = Repr::parse(&packet, ChecksumCheck::Ignore) {
                    prop_assert!(repr.buffer_len() <= bytes.len());
                    let mut out = std::vec![0u8; repr.buffer_len()];
                    repr.emit(&mut Packet::new_unchecked(&mut out[..]));
                    prop_assert_eq!(parse(&out), Ok(repr));
                }
            }
            // Any bytes as an original: a verdict, and either an error or a parseable reply.
            let original = ipv4::Packet::new_unchecked(&bytes[..]);
            let _ = suppression(&original);
            let mut out = [0u8; 96];
            match emit_error(ErrorKind::TTL_EXPIRED, ROUTER, &bytes, &mut out) {
                Ok(len) => {
                    let ip = ipv4::Packet::new_checked(&out[..len]).unwrap();
                    prop_assert!(parse(ip.payload()).is_ok());
                }
                Err(e) => prop_assert_eq!(e.layer(), Layer::Ipv4),
            }
        }
    }
}
