//! ARP for Ethernet and IPv4 (RFC 826), the only kind an overlay's bridges and pods speak.
//!
//! [`Packet`] is a view over an ARP packet laid out for 6-byte hardware and 4-byte protocol addresses; [`Repr`] is a
//! parsed Ethernet/IPv4 request or reply. After [`Packet::check_len`] (or [`Packet::new_checked`]) succeeded, no
//! accessor panics. [`Repr::emit`] never panics on a buffer of [`Repr::buffer_len`] bytes or more.
//!
//! # Who judges what
//! The accessors read fixed offsets, which are right only when the address lengths are 6 and 4, so
//! [`Packet::check_len`] judges exactly what the layout depends on, in this order: fewer than 8 bytes (the fixed
//! part) is [`Error::Truncated`] with `required: 8`; a hardware length other than 6 or a protocol length other
//! than 4 is [`Error::Unsupported`] (`"hardware length"`, `"protocol length"`); then fewer than 28 bytes is
//! [`Error::Truncated`] with `required: 28`. [`Repr::parse`] judges the meaning: a hardware type other than
//! Ethernet (1), a protocol type other than IPv4 (0x0800), or an operation other than request (1) and reply (2)
//! is [`Error::Unsupported`] (`"hardware type"`, `"protocol type"`, `"operation"`).
//!
//! Bytes after the 28 (the padding that brings an Ethernet frame to its 60-byte minimum) are allowed and ignored.
//!
//! ```
//! use core::net::Ipv4Addr;
//! use tweed_wire::arp::{Operation, Packet, Repr};
//! use tweed_wire::ethernet::MacAddr;
//!
//! let pod = MacAddr::new(0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02);
//! let gateway = MacAddr::new(0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x01);
//! let request = Repr::request(pod, Ipv4Addr::new(10, 244, 1, 2), Ipv4Addr::new(10, 244, 1, 1));
//!
//! let mut buf = [0u8; 28];
//! request.emit(&mut Packet::new_unchecked(&mut buf[..]));
//! let parsed = Repr::parse(&Packet::new_checked(&buf[..])?)?;
//! assert!(parsed.is_request());
//!
//! // The gateway answers.
//! let reply = Repr::reply_to(&parsed, gateway);
//! assert_eq!(reply.operation, Operation::REPLY);
//! assert_eq!(reply.target_hardware_addr, pod);
//! assert_eq!(reply.source_protocol_addr, Ipv4Addr::new(10, 244, 1, 1));
//! # Ok::<(), tweed_wire::Error>(())
//! ```

use core::fmt;
use core::net::Ipv4Addr;

use crate::ethernet::MacAddr;
use crate::field::Field;
use crate::{Error, Layer, Result};

/// The ARP hardware type of Ethernet.
pub const HARDWARE_ETHERNET: u16 = 1;
/// The ARP protocol type of IPv4 (its EtherType).
pub const PROTOCOL_IPV4: u16 = 0x0800;

/// An ARP operation code. Open: every value can be read from a packet; the two of RFC 826 have names.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Operation(pub u16);

impl Operation {
    /// `ares_op$REQUEST`: who has this protocol address?
    pub const REQUEST: Self = Self(1);
    /// `ares_op$REPLY`: this protocol address is at this hardware address.
    pub const REPLY: Self = Self(2);
}

impl fmt::Debug for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::REQUEST => f.write_str("request"),
            Self::REPLY => f.write_str("reply"),
            Self(v) => write!(f, "operation {v}"),
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<u16> for Operation {
    fn from(v: u16) -> Self {
        Self(v)
    }
}

impl From<Operation> for u16 {
    fn from(v: Operation) -> Self {
        v.0
    }
}

mod field {
    use super::Field;

    pub(super) const HTYPE: Field = 0..2;
    pub(super) const PTYPE: Field = 2..4;
    pub(super) const HLEN: usize = 4;
    pub(super) const PLEN: usize = 5;
    pub(super) const OPER: Field = 6..8;
    pub(super) const SHA: Field = 8..14;
    pub(super) const SPA: Field = 14..18;
    pub(super) const THA: Field = 18..24;
    pub(super) const TPA: Field = 24..28;
}

/// The fixed part, before the addresses: types, lengths and operation.
const FIXED_LEN: usize = field::OPER.end;
/// Length of an ARP packet for Ethernet and IPv4.
pub const HEADER_LEN: usize = field::TPA.end;

/// A view of an ARP packet with 6-byte hardware and 4-byte protocol addresses.
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

    /// Wraps `buffer` and checks it as [`Packet::check_len`] does.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the fixed part's length, the two address lengths (6 and 4: the layout the accessors read) and the
    /// whole packet's length, in that order (see the [module documentation](self)). After `Ok`, no accessor
    /// panics.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        Error::need(Layer::Arp, FIXED_LEN, len)?;
        if self.hardware_len() != 6 {
            return Err(Error::Unsupported {
                layer: Layer::Arp,
                field: "hardware length",
                value: u32::from(self.hardware_len()),
            });
        }
        if self.protocol_len() != 4 {
            return Err(Error::Unsupported {
                layer: Layer::Arp,
                field: "protocol length",
                value: u32::from(self.protocol_len()),
            });
        }
        Error::need(Layer::Arp, HEADER_LEN, len)
    }

    /// The buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, at: Field) -> u16 {
        let b = &self.buffer.as_ref()[at];
        u16::from_be_bytes([b[0], b[1]])
    }

    fn mac_at(&self, at: Field) -> MacAddr {
        let b = &self.buffer.as_ref()[at];
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    fn ipv4_at(&self, at: Field) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[at];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The hardware type (`ar$hrd`): 1 for Ethernet.
    #[inline]
    pub fn hardware_type(&self) -> u16 {
        self.u16_at(field::HTYPE)
    }

    /// The protocol type (`ar$pro`): 0x0800 for IPv4.
    #[inline]
    pub fn protocol_type(&self) -> u16 {
        self.u16_at(field::PTYPE)
    }

    /// The hardware address length (`ar$hln`).
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// The protocol address length (`ar$pln`).
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// The operation (`ar$op`).
    #[inline]
    pub fn operation(&self) -> Operation {
        Operation(self.u16_at(field::OPER))
    }

    /// The sender's hardware address (`ar$sha`).
    #[inline]
    pub fn source_hardware_addr(&self) -> MacAddr {
        self.mac_at(field::SHA)
    }

    /// The sender's protocol address (`ar$spa`).
    #[inline]
    pub fn source_protocol_addr(&self) -> Ipv4Addr {
        self.ipv4_at(field::SPA)
    }

    /// The target's hardware address (`ar$tha`): unknown, and conventionally zero, in a request.
    #[inline]
    pub fn target_hardware_addr(&self) -> MacAddr {
        self.mac_at(field::THA)
    }

    /// The target's protocol address (`ar$tpa`).
    #[inline]
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        self.ipv4_at(field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the hardware type.
    #[inline]
    pub fn set_hardware_type(&mut self, value: u16) {
        self.buffer.as_mut()[field::HTYPE].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the protocol type.
    #[inline]
    pub fn set_protocol_type(&mut self, value: u16) {
        self.buffer.as_mut()[field::PTYPE].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the hardware address length. Accessors assume 6: run [`Packet::check_len`] again after changing it.
    #[inline]
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }

    /// Sets the protocol address length. Accessors assume 4: run [`Packet::check_len`] again after changing it.
    #[inline]
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }

    /// Sets the operation.
    #[inline]
    pub fn set_operation(&mut self, value: Operation) {
        self.buffer.as_mut()[field::OPER].copy_from_slice(&value.0.to_be_bytes());
    }

    /// Sets the sender's hardware address.
    #[inline]
    pub fn set_source_hardware_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&addr.0);
    }

    /// Sets the sender's protocol address.
    #[inline]
    pub fn set_source_protocol_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&addr.octets());
    }

    /// Sets the target's hardware address.
    #[inline]
    pub fn set_target_hardware_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&addr.0);
    }

    /// Sets the target's protocol address.
    #[inline]
    pub fn set_target_protocol_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&addr.octets());
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A parsed ARP request or reply for Ethernet and IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Request or reply ([`Repr::parse`] gives nothing else; [`Repr::emit`] writes whatever is here).
    pub operation: Operation,
    /// The sender's MAC address.
    pub source_hardware_addr: MacAddr,
    /// The sender's IPv4 address (0.0.0.0 in an RFC 5227 probe).
    pub source_protocol_addr: Ipv4Addr,
    /// The target's MAC address (zero in a request).
    pub target_hardware_addr: MacAddr,
    /// The target's IPv4 address: the one asked about in a request.
    pub target_protocol_addr: Ipv4Addr,
}

impl Repr {
    /// Parses an Ethernet/IPv4 request or reply; other hardware types, protocol types and operations are
    /// [`Error::Unsupported`] (see the [module documentation](self) for the order of the checks).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Self> {
        packet.check_len()?;
        if packet.hardware_type() != HARDWARE_ETHERNET {
            return Err(Error::Unsupported {
                layer: Layer::Arp,
                field: "hardware type",
                value: u32::from(packet.hardware_type()),
            });
        }
        if packet.protocol_type() != PROTOCOL_IPV4 {
            return Err(Error::Unsupported {
                layer: Layer::Arp,
                field: "protocol type",
                value: u32::from(packet.protocol_type()),
            });
        }
        let operation = packet.operation();
        if operation != Operation::REQUEST && operation != Operation::REPLY {
            return Err(Error::Unsupported { layer: Layer::Arp, field: "operation", value: u32::from(operation.0) });
        }
        Ok(Self {
            operation,
            source_hardware_addr: packet.source_hardware_addr(),
            source_protocol_addr: packet.source_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    /// The packet's length on the wire: 28 (Ethernet padding is the Ethernet layer's business).
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the packet (hardware type 1, protocol type 0x0800, lengths 6 and 4, then the fields) to the front of
    /// `packet`'s buffer, which must hold at least [`Repr::buffer_len`] bytes.
    ///
    /// # Panics
    /// When the buffer is shorter than [`Repr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_hardware_type(HARDWARE_ETHERNET);
        packet.set_protocol_type(PROTOCOL_IPV4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(self.source_hardware_addr);
        packet.set_source_protocol_addr(self.source_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
    }

    /// A request from `sender_mac`/`sender_ip` asking who has `target_ip`, with a zero target MAC as Linux sends
    /// it.
    #[must_use]
    pub const fn request(sender_mac: MacAddr, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Self {
        Self {
            operation: Operation::REQUEST,
            source_hardware_addr: sender_mac,
            source_protocol_addr: sender_ip,
            target_hardware_addr: MacAddr::ZERO,
            target_protocol_addr: target_ip,
        }
    }

    /// The reply to `request` from the owner of its target address, whose MAC is `our_mac`: "target IP is at
    /// `our_mac`", sent back to the requester. Whether to answer (is the target ours? is `request` a request?) is
    /// the caller's decision.
    #[must_use]
    pub const fn reply_to(request: &Self, our_mac: MacAddr) -> Self {
        Self {
            operation: Operation::REPLY,
            source_hardware_addr: our_mac,
            source_protocol_addr: request.target_protocol_addr,
            target_hardware_addr: request.source_hardware_addr,
            target_protocol_addr: request.source_protocol_addr,
        }
    }

    /// A gratuitous ARP (an RFC 5227 announcement) for `ip` at `mac`: a request whose sender and target addresses
    /// are both `ip`, target MAC zero, as Linux sends with `arp_notify` when a device comes up.
    #[must_use]
    pub const fn gratuitous(mac: MacAddr, ip: Ipv4Addr) -> Self {
        Self::request(mac, ip, ip)
    }

    /// Sender and target IPv4 addresses are the same: an announcement (or a gratuitous reply), not a question.
    #[must_use]
    pub fn is_gratuitous(&self) -> bool {
        self.source_protocol_addr == self.target_protocol_addr
    }

    /// A request with an unspecified (0.0.0.0) sender address: an RFC 5227 probe, which must not update caches.
    #[must_use]
    pub fn is_probe(&self) -> bool {
        self.is_request() && self.source_protocol_addr.is_unspecified()
    }

    /// The operation is [`Operation::REQUEST`].
    #[must_use]
    pub fn is_request(&self) -> bool {
        self.operation == Operation::REQUEST
    }

    /// The operation is [`Operation::REPLY`].
    #[must_use]
    pub fn is_reply(&self) -> bool {
        self.operation == Operation::REPLY
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.operation {
            Operation::REQUEST => write!(
                f,
                "ARP request who-has {} tell {} ({})",
                self.target_protocol_addr, self.source_protocol_addr, self.source_hardware_addr
            ),
            Operation::REPLY => write!(
                f,
                "ARP reply {} is-at {} to {} ({})",
                self.source_protocol_addr,
                self.source_hardware_addr,
                self.target_protocol_addr,
                self.target_hardware_addr
            ),
            op => write!(
                f,
                "ARP {op} {} ({}) > {} ({})",
                self.source_protocol_addr,
                self.source_hardware_addr,
                self.target_protocol_addr,
                self.target_hardware_addr
            ),
        }
    }
}

/// Only requests and replies: every generated `Repr` emits bytes that [`Repr::parse`] gives back.
#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Repr {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let operation = if u.arbitrary::<bool>()? { Operation::REPLY } else { Operation::REQUEST };
        Ok(Self {
            operation,
            source_hardware_addr: u.arbitrary()?,
            source_protocol_addr: Ipv4Addr::from(u.arbitrary::<[u8; 4]>()?),
            target_hardware_addr: u.arbitrary()?,
            target_protocol_addr: Ipv4Addr::from(u.arbitrary::<[u8; 4]>()?),
        })
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (21, Some(21))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ethernet::{self, EtherType, Frame};
    use proptest::prelude::*;
    use std::vec::Vec;

    // Captured with an AF_PACKET socket on a veth pair between two network namespaces (Linux 6.18), addressed as
    // a flannel node's cni0 bridge and one of its pods: 10.244.1.1 at 0a:58:0a:f4:01:01 and 10.244.1.2 at
    // 0a:58:0a:f4:01:02. Veth does not pad, so the frames are 42 bytes.

    /// The pod asks for its gateway.
    static REQUEST_FRAME: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02, 0x08, 0x06, // Ethernet
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet, IPv4, 6, 4, request
        0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02, 0x0a, 0xf4, 0x01, 0x02, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0xf4, 0x01, 0x01, // target
    ];
    /// The gateway's answer.
    static REPLY_FRAME: [u8; 42] = [
        0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02, 0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x01, 0x08, 0x06, // Ethernet
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, // Ethernet, IPv4, 6, 4, reply
        0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x01, 0x0a, 0xf4, 0x01, 0x01, // sender
        0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02, 0x0a, 0xf4, 0x01, 0x02, // target
    ];
    /// The gateway's announcement when its device came up (`net.ipv4.conf.*.arp_notify=1`).
    static GRATUITOUS_FRAME: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x01, 0x08, 0x06, // Ethernet
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet, IPv4, 6, 4, request
        0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x01, 0x0a, 0xf4, 0x01, 0x01, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0xf4, 0x01, 0x01, // target
    ];

    const GATEWAY_MAC: MacAddr = MacAddr::new(0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x01);
    const POD_MAC: MacAddr = MacAddr::new(0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02);
    const GATEWAY_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 1);
    const POD_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 2);

    /// The ARP packet of a captured frame, through the Ethernet view.
    fn arp_of(frame: &[u8]) -> &[u8] {
        let frame = Frame::new_checked(frame).unwrap();
        assert_eq!(frame.ethertype(), EtherType::ARP);
        frame.payload()
    }

    #[test]
    fn test_parse_request() {
        let packet = Packet::new_checked(arp_of(&REQUEST_FRAME)).unwrap();
        assert_eq!(packet.hardware_type(), 1);
        assert_eq!(packet.protocol_type(), 0x0800);
        assert_eq!(packet.hardware_len(), 6);
        assert_eq!(packet.protocol_len(), 4);
        assert_eq!(packet.operation(), Operation::REQUEST);
        assert_eq!(packet.source_hardware_addr(), POD_MAC);
        assert_eq!(packet.source_protocol_addr(), POD_IP);
        assert_eq!(packet.target_hardware_addr(), MacAddr::ZERO);
        assert_eq!(packet.target_protocol_addr(), GATEWAY_IP);
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr, Repr::request(POD_MAC, POD_IP, GATEWAY_IP));
        assert!(repr.is_request() && !repr.is_reply() && !repr.is_gratuitous() && !repr.is_probe());
    }

    #[test]
    fn test_parse_reply_and_gratuitous() {
        let reply = Repr::parse(&Packet::new_checked(arp_of(&REPLY_FRAME)).unwrap()).unwrap();
        assert_eq!(
            reply,
            Repr {
                operation: Operation::REPLY,
                source_hardware_addr: GATEWAY_MAC,
                source_protocol_addr: GATEWAY_IP,
                target_hardware_addr: POD_MAC,
                target_protocol_addr: POD_IP,
            }
        );
        assert!(reply.is_reply() && !reply.is_request() && !reply.is_gratuitous());

        let announce = Repr::parse(&Packet::new_checked(arp_of(&GRATUITOUS_FRAME)).unwrap()).unwrap();
        assert_eq!(announce, Repr::gratuitous(GATEWAY_MAC, GATEWAY_IP));
        assert!(announce.is_gratuitous() && announce.is_request() && !announce.is_probe());
    }

    #[test]
    fn test_construct_matches_kernel() {
        // What the kernel sent, built from the constructors: request, the answer to it, and the announcement.
        let request = Repr::request(POD_MAC, POD_IP, GATEWAY_IP);
        let reply = Repr::reply_to(&request, GATEWAY_MAC);
        let announce = Repr::gratuitous(GATEWAY_MAC, GATEWAY_IP);
        for (repr, frame) in [(request, &REQUEST_FRAME), (reply, &REPLY_FRAME), (announce, &GRATUITOUS_FRAME)] {
            let mut buf = [0xeeu8; 28];
            assert_eq!(repr.buffer_len(), 28);
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
            assert_eq!(&buf[..], &frame[ethernet::HEADER_LEN..], "{repr}");
        }
    }

    #[test]
    fn peers_agree_on_the_captures() {
        for frame in [&REQUEST_FRAME, &REPLY_FRAME, &GRATUITOUS_FRAME] {
            let ours = Repr::parse(&Packet::new_checked(arp_of(frame)).unwrap()).unwrap();
            let smol = smoltcp::wire::ArpPacket::new_checked(arp_of(frame)).unwrap();
            let smoltcp::wire::ArpRepr::EthernetIpv4 {
                operation,
                source_hardware_addr,
                source_protocol_addr,
                target_hardware_addr,
                target_protocol_addr,
            } = smoltcp::wire::ArpRepr::parse(&smol).unwrap()
            else {
                panic!("smoltcp parsed something other than Ethernet/IPv4");
            };
            assert_eq!(ours.operation.0, u16::from(operation));
            assert_eq!(ours.source_hardware_addr.0, source_hardware_addr.0);
            assert_eq!(ours.source_protocol_addr, source_protocol_addr);
            assert_eq!(ours.target_hardware_addr.0, target_hardware_addr.0);
            assert_eq!(ours.target_protocol_addr, target_protocol_addr);

            let eth = etherparse::ArpPacketSlice::from_slice(arp_of(frame)).unwrap();
            assert_eq!(eth.operation().0, ours.operation.0);
            assert_eq!(eth.hw_addr_type().0, 1);
            assert_eq!(eth.proto_addr_type().0, 0x0800);
            assert_eq!(eth.sender_hw_addr(), &ours.source_hardware_addr.0[..]);
            assert_eq!(eth.sender_protocol_addr(), &ours.source_protocol_addr.octets()[..]);
            assert_eq!(eth.target_hw_addr(), &ours.target_hardware_addr.0[..]);
            assert_eq!(eth.target_protocol_addr(), &ours.target_protocol_addr.octets()[..]);
        }
    }

    #[test]
    fn ethernet_padding_is_ignored() {
        // A NIC pads the 42-byte frame to 60 bytes: 18 bytes after the ARP packet.
        let mut padded = Vec::from(&REQUEST_FRAME[..]);
        padded.resize(60, 0);
        let packet = Packet::new_checked(arp_of(&padded)).unwrap();
        assert_eq!(packet.as_ref().len(), 46);
        assert_eq!(Repr::parse(&packet), Ok(Repr::request(POD_MAC, POD_IP, GATEWAY_IP)));
    }

    #[test]
    fn every_truncation_is_an_exact_length_error() {
        let arp = arp_of(&REQUEST_FRAME);
        for len in 0..HEADER_LEN {
            let required = if len < 8 { 8 } else { 28 };
            let err = Error::Truncated { layer: Layer::Arp, required, actual: len };
            assert_eq!(Packet::new_checked(&arp[..len]), Err(err));
            assert_eq!(Repr::parse(&Packet::new_unchecked(&arp[..len])), Err(err));
        }
    }

    #[test]
    fn other_kinds_are_unsupported() {
        let unsupported = |field, value| Error::Unsupported { layer: Layer::Arp, field, value };
        let with = |at: usize, bytes: &[u8]| {
            let mut arp = [0u8; 28];
            arp.copy_from_slice(arp_of(&REQUEST_FRAME));
            arp[at..at + bytes.len()].copy_from_slice(bytes);
            arp
        };
        // IEEE 802 hardware (same layout): the view reads it, the Repr refuses it.
        let arp = with(0, &[0x00, 0x06]);
        assert_eq!(Repr::parse(&Packet::new_checked(&arp[..]).unwrap()), Err(unsupported("hardware type", 6)));
        // ARP for IPv6's EtherType.
        let arp = with(2, &[0x86, 0xdd]);
        assert_eq!(Repr::parse(&Packet::new_checked(&arp[..]).unwrap()), Err(unsupported("protocol type", 0x86dd)));
        // RARP (RFC 903) and InARP (RFC 2390) operations.
        for op in [0u16, 3, 4, 8, 9, 0xffff] {
            let arp = with(6, &op.to_be_bytes());
            let packet = Packet::new_checked(&arp[..]).unwrap();
            assert_eq!(packet.operation(), Operation(op));
            assert_eq!(Repr::parse(&packet), Err(unsupported("operation", u32::from(op))));
        }
        // InfiniBand's 20-byte hardware addresses, and a 16-byte protocol address: the layout is not ours, so the
        // view refuses them, before it asks for 28 bytes.
        let arp = with(0, &[0x00, 0x20, 0x08, 0x00, 20, 4]);
        assert_eq!(Packet::new_checked(&arp[..8]), Err(unsupported("hardware length", 20)));
        assert_eq!(Packet::new_checked(&arp[..]), Err(unsupported("hardware length", 20)));
        let arp = with(4, &[6, 16]);
        assert_eq!(Packet::new_checked(&arp[..]), Err(unsupported("protocol length", 16)));
        assert_eq!(Repr::parse(&Packet::new_unchecked(&arp[..])), Err(unsupported("protocol length", 16)));
    }

    #[test]
    fn setters() {
        let mut buf = [0u8; 28];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_hardware_type(1);
        packet.set_protocol_type(0x0800);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(Operation::REPLY);
        packet.set_source_hardware_addr(GATEWAY_MAC);
        packet.set_source_protocol_addr(GATEWAY_IP);
        packet.set_target_hardware_addr(POD_MAC);
        packet.set_target_protocol_addr(POD_IP);
        assert_eq!(packet.into_inner(), &REPLY_FRAME[14..]);
    }

    #[test]
    fn probe_and_text() {
        let probe = Repr::request(POD_MAC, Ipv4Addr::UNSPECIFIED, POD_IP);
        assert!(probe.is_probe() && !probe.is_gratuitous());
        let request = Repr::request(POD_MAC, POD_IP, GATEWAY_IP);
        assert_eq!(std::format!("{request}"), "ARP request who-has 10.244.1.1 tell 10.244.1.2 (0a:58:0a:f4:01:02)");
        assert_eq!(
            std::format!("{}", Repr::reply_to(&request, GATEWAY_MAC)),
            "ARP reply 10.244.1.1 is-at 0a:58:0a:f4:01:01 to 10.244.1.2 (0a:58:0a:f4:01:02)"
        );
        let rarp = Repr { operation: Operation(3), ..request };
        assert_eq!(
            std::format!("{rarp}"),
            "ARP operation 3 10.244.1.2 (0a:58:0a:f4:01:02) > 10.244.1.1 (00:00:00:00:00:00)"
        );
        assert_eq!(std::format!("{:?}", Operation::REQUEST), "request");
        assert_eq!(u16::from(Operation::REPLY), 2);
        assert_eq!(Operation::from(7), Operation(7));
    }

    fn arb_repr() -> impl Strategy<Value = Repr> {
        (any::<bool>(), any::<[u8; 6]>(), any::<[u8; 4]>(), any::<[u8; 6]>(), any::<[u8; 4]>()).prop_map(
            |(reply, sha, spa, tha, tpa)| Repr {
                operation: if reply { Operation::REPLY } else { Operation::REQUEST },
                source_hardware_addr: MacAddr(sha),
                source_protocol_addr: Ipv4Addr::from(spa),
                target_hardware_addr: MacAddr(tha),
                target_protocol_addr: Ipv4Addr::from(tpa),
            },
        )
    }

    proptest! {
        #[test]
        fn repr_round_trip(repr in arb_repr(), padding in 0usize..32) {
            let mut buf = std::vec![0u8; repr.buffer_len() + padding];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()), Ok(repr));
        }

        #[test]
        fn reply_answers_request(mac in any::<[u8; 6]>(), ours in any::<[u8; 6]>(), a in any::<[u8; 4]>(), b in any::<[u8; 4]>()) {
            let request = Repr::request(MacAddr(mac), Ipv4Addr::from(a), Ipv4Addr::from(b));
            let reply = Repr::reply_to(&request, MacAddr(ours));
            prop_assert!(reply.is_reply());
            prop_assert_eq!(reply.source_protocol_addr, request.target_protocol_addr);
            prop_assert_eq!(reply.target_protocol_addr, request.source_protocol_addr);
            prop_assert_eq!(reply.target_hardware_addr, request.source_hardware_addr);
            prop_assert_eq!(reply.source_hardware_addr, MacAddr(ours));
        }

        /// Any bytes, with the fixed part biased towards Ethernet/IPv4 so that both paths get exercised; smoltcp
        /// is the oracle for what parses.
        #[test]
        fn arbitrary_bytes_never_panic_and_match_smoltcp(
            mut bytes in proptest::collection::vec(any::<u8>(), 0..48),
            fix in any::<[bool; 4]>(),
            op in 0u16..4,
        ) {
            let patches: [(usize, &[u8]); 4] = [(0, &[0, 1]), (2, &[8, 0]), (4, &[6, 4]), (6, &op.to_be_bytes())];
            for ((at, patch), fix) in patches.iter().zip(fix) {
                if fix && bytes.len() >= at + patch.len() {
                    bytes[*at..at + patch.len()].copy_from_slice(patch);
                }
            }
            let ours = Packet::new_checked(&bytes[..]).and_then(|p| Repr::parse(&p));
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let _ = (packet.source_hardware_addr(), packet.target_protocol_addr(), packet.operation());
            }
            let smol = smoltcp::wire::ArpPacket::new_checked(&bytes[..])
                .ok()
                .and_then(|p| smoltcp::wire::ArpRepr::parse(&p).ok());
            match (ours, smol) {
                (Ok(repr), Some(smoltcp::wire::ArpRepr::EthernetIpv4 { operation, source_protocol_addr, target_hardware_addr, .. })) => {
                    prop_assert_eq!(repr.operation.0, u16::from(operation));
                    prop_assert_eq!(repr.source_protocol_addr, source_protocol_addr);
                    prop_assert_eq!(repr.target_hardware_addr.0, target_hardware_addr.0);
                }
                // smoltcp takes every operation code; we refuse all but request and reply.
                (Err(Error::Unsupported { field: "operation", .. }), Some(_)) => {}
                (Err(_), None) => {}
                (ours, smol) => prop_assert!(false, "ours {:?}, smoltcp {:?}", ours, smol),
            }
        }
    }

    #[cfg(feature = "arbitrary")]
    #[test]
    fn arbitrary_reprs_round_trip() {
        use arbitrary::{Arbitrary, Unstructured};
        let noise: Vec<u8> = (0u32..4096).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let mut u = Unstructured::new(&noise);
        let mut kinds = [0usize; 2];
        while let Ok(repr) = Repr::arbitrary(&mut u) {
            let mut buf = [0u8; 28];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
            assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()), Ok(repr));
            kinds[usize::from(repr.is_reply())] += 1;
            if u.is_empty() {
                break;
            }
        }
        assert!(kinds[0] > 0 && kinds[1] > 0, "{kinds:?}");
    }
}
