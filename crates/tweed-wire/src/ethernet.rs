//! Ethernet II frames, with an optional IEEE 802.1Q VLAN tag.
//!
//! [`Frame`] is a view over the bytes; [`Repr`] is a parsed header. After [`Frame::check_len`] (or
//! [`Frame::new_checked`]) succeeded, no accessor panics. [`Repr::emit`] never panics on a buffer of
//! [`Repr::buffer_len`] bytes or more.
//!
//! One 802.1Q tag (TPID `0x8100`) is understood. A frame whose outer EtherType is `0x88a8` (802.1ad S-tag) or a
//! second `0x8100` inside the first tag is reported with that EtherType, not unwrapped: tweed's bridges are
//! single-tagged, as `cni0` and `flannel.1` are.
//!
//! The frame check sequence is not part of the buffer: devices (TAP, AF_PACKET, pcap) hand frames over without it.

use core::fmt;

use crate::field::{Field, Rest};
use crate::{Error, Layer, Result};

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Self = Self([0xff; 6]);
    /// `00:00:00:00:00:00`, which is never a valid source.
    pub const ZERO: Self = Self([0; 6]);

    /// The address from its six bytes.
    #[must_use]
    pub const fn new(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8) -> Self {
        Self([a, b, c, d, e, f])
    }

    /// The address from the first six bytes of `bytes`, or `None` when there are fewer than six.
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.get(..6).and_then(|b| b.try_into().ok()).map(Self)
    }

    /// The six bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// The address as the low 48 bits of a `u64` (first byte most significant): a cheap key for hash tables.
    #[must_use]
    pub const fn to_u64(self) -> u64 {
        let b = self.0;
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// The address from the low 48 bits of `v` (the inverse of [`MacAddr::to_u64`]).
    #[must_use]
    pub const fn from_u64(v: u64) -> Self {
        let b = v.to_be_bytes();
        Self([b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// `ff:ff:ff:ff:ff:ff`.
    #[must_use]
    pub const fn is_broadcast(&self) -> bool {
        self.to_u64() == 0xffff_ffff_ffff
    }

    /// The I/G bit is set: a group address (broadcast included).
    #[must_use]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// The I/G bit is clear: an individual address.
    #[must_use]
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// The U/L bit is set: a locally administered address (as Linux gives to veth, VXLAN and bridge devices).
    #[must_use]
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// All zero.
    #[must_use]
    pub const fn is_zero(&self) -> bool {
        self.to_u64() == 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(b: [u8; 6]) -> Self {
        Self(b)
    }
}

impl From<MacAddr> for [u8; 6] {
    fn from(m: MacAddr) -> Self {
        m.0
    }
}

/// Why a string is not a MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParseMacError;

impl fmt::Display for ParseMacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid mac address: expected six hex bytes separated by ':' or '-'")
    }
}

impl core::error::Error for ParseMacError {}

impl core::str::FromStr for MacAddr {
    type Err = ParseMacError;

    /// Parses `02:42:ac:11:00:02` or `02-42-AC-11-00-02`.
    fn from_str(s: &str) -> core::result::Result<Self, ParseMacError> {
        let sep = match s.as_bytes().get(2) {
            Some(b':') => ':',
            Some(b'-') => '-',
            _ => return Err(ParseMacError),
        };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for byte in &mut out {
            let part = parts.next().ok_or(ParseMacError)?;
            if part.len() != 2 {
                return Err(ParseMacError);
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| ParseMacError)?;
        }
        if parts.next().is_some() {
            return Err(ParseMacError);
        }
        Ok(Self(out))
    }
}

/// An EtherType. Open: every value parses; the known ones have names.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct EtherType(pub u16);

impl EtherType {
    /// IPv4.
    pub const IPV4: Self = Self(0x0800);
    /// ARP.
    pub const ARP: Self = Self(0x0806);
    /// IEEE 802.1Q VLAN tag (C-tag).
    pub const VLAN: Self = Self(0x8100);
    /// IPv6.
    pub const IPV6: Self = Self(0x86dd);
    /// IEEE 802.1ad service tag (S-tag), not unwrapped by this crate.
    pub const QINQ: Self = Self(0x88a8);

    /// Values below 0x0600 are 802.3 lengths, not EtherTypes (IEEE 802.3 §3.2.6).
    #[must_use]
    pub const fn is_length(self) -> bool {
        self.0 < 0x0600
    }
}

impl fmt::Debug for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::IPV4 => f.write_str("IPv4"),
            Self::ARP => f.write_str("ARP"),
            Self::VLAN => f.write_str("802.1Q"),
            Self::IPV6 => f.write_str("IPv6"),
            Self::QINQ => f.write_str("802.1ad"),
            Self(v) => write!(f, "0x{v:04x}"),
        }
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        Self(v)
    }
}

impl From<EtherType> for u16 {
    fn from(v: EtherType) -> Self {
        v.0
    }
}

/// An IEEE 802.1Q tag control information: priority, drop eligibility and VLAN id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct VlanTag {
    /// Priority code point, 0..=7.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier, 0..=4095 (0: priority tag only; 4095: reserved).
    pub vid: u16,
}

impl VlanTag {
    /// The tag from its 16-bit TCI; every value is a valid tag.
    #[must_use]
    pub const fn from_tci(tci: u16) -> Self {
        #[allow(clippy::cast_possible_truncation)] // three bits
        let pcp = (tci >> 13) as u8;
        Self { pcp, dei: tci & 0x1000 != 0, vid: tci & 0x0fff }
    }

    /// The 16-bit TCI. Out-of-range `pcp` and `vid` bits are masked off.
    #[must_use]
    pub const fn to_tci(self) -> u16 {
        ((self.pcp as u16 & 0x7) << 13) | ((self.dei as u16) << 12) | (self.vid & 0x0fff)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for VlanTag {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self::from_tci(u.arbitrary()?))
    }
}

mod field {
    #![allow(clippy::reversed_empty_ranges)]
    use super::{Field, Rest};

    pub(super) const DESTINATION: Field = 0..6;
    pub(super) const SOURCE: Field = 6..12;
    pub(super) const ETHERTYPE: Field = 12..14;
    pub(super) const PAYLOAD: Rest = 14..;

    /// The tag follows the outer EtherType (which is the TPID then).
    pub(super) const VLAN_TCI: Field = 14..16;
    pub(super) const VLAN_ETHERTYPE: Field = 16..18;
    pub(super) const VLAN_PAYLOAD: Rest = 18..;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;
/// Length of an Ethernet II header with one 802.1Q tag.
pub const VLAN_HEADER_LEN: usize = field::VLAN_PAYLOAD.start;

/// A view of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` without checking its length: accessors may panic until [`Frame::check_len`] passed.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` and checks that the header (with its VLAN tag, if the EtherType says there is one) fits.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the whole header fits in the buffer; after `Ok`, no accessor panics.
    #[inline(always)]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        Error::need(Layer::Ethernet, HEADER_LEN, len)?;
        if self.outer_ethertype() == EtherType::VLAN {
            Error::need(Layer::Vlan, VLAN_HEADER_LEN, len)?;
        }
        Ok(())
    }

    /// The buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        let b = &self.buffer.as_ref()[field::DESTINATION];
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        let b = &self.buffer.as_ref()[field::SOURCE];
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// The EtherType at offset 12: the TPID `0x8100` when the frame is tagged.
    #[inline(always)]
    pub fn outer_ethertype(&self) -> EtherType {
        let b = &self.buffer.as_ref()[field::ETHERTYPE];
        EtherType(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Whether an 802.1Q tag follows the addresses.
    #[inline(always)]
    pub fn is_tagged(&self) -> bool {
        self.outer_ethertype() == EtherType::VLAN
    }

    /// The 802.1Q tag, if any.
    #[inline]
    pub fn vlan(&self) -> Option<VlanTag> {
        if self.is_tagged() {
            let b = &self.buffer.as_ref()[field::VLAN_TCI];
            Some(VlanTag::from_tci(u16::from_be_bytes([b[0], b[1]])))
        } else {
            None
        }
    }

    /// The EtherType of the payload: behind the tag when the frame is tagged.
    #[inline(always)]
    pub fn ethertype(&self) -> EtherType {
        if self.is_tagged() {
            let b = &self.buffer.as_ref()[field::VLAN_ETHERTYPE];
            EtherType(u16::from_be_bytes([b[0], b[1]]))
        } else {
            self.outer_ethertype()
        }
    }

    /// The header length: 14, or 18 with a tag.
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        if self.is_tagged() { VLAN_HEADER_LEN } else { HEADER_LEN }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Frame<&'a T> {
    /// The payload, behind the header (and tag), borrowed for the buffer's lifetime.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let start = self.header_len();
        &self.buffer.as_ref()[start..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    /// Sets the EtherType at offset 12 (the TPID slot of a tagged frame).
    #[inline]
    pub fn set_outer_ethertype(&mut self, ethertype: EtherType) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&ethertype.0.to_be_bytes());
    }

    /// Sets the payload's EtherType: behind the tag when the frame is tagged.
    #[inline]
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        let at = if self.is_tagged() { field::VLAN_ETHERTYPE } else { field::ETHERTYPE };
        self.buffer.as_mut()[at].copy_from_slice(&ethertype.0.to_be_bytes());
    }

    /// The payload, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Frame<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A parsed Ethernet II header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Repr {
    /// Source address.
    pub src_addr: MacAddr,
    /// Destination address.
    pub dst_addr: MacAddr,
    /// The 802.1Q tag, if any.
    pub vlan: Option<VlanTag>,
    /// The payload's EtherType.
    pub ethertype: EtherType,
}

impl Repr {
    /// Parses the header. Every EtherType and every address is accepted: judging them is the bridge's job.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &Frame<&T>) -> Result<Self> {
        frame.check_len()?;
        Ok(Self {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            vlan: frame.vlan(),
            ethertype: frame.ethertype(),
        })
    }

    /// The header's length on the wire.
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        if self.vlan.is_some() { VLAN_HEADER_LEN } else { HEADER_LEN }
    }

    /// Writes the header to the front of `frame`'s buffer, which must hold at least [`Repr::buffer_len`] bytes.
    ///
    /// # Panics
    /// When the buffer is shorter than [`Repr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        let buf = frame.buffer.as_mut();
        buf[field::DESTINATION].copy_from_slice(&self.dst_addr.0);
        buf[field::SOURCE].copy_from_slice(&self.src_addr.0);
        match self.vlan {
            Some(tag) => {
                buf[field::ETHERTYPE].copy_from_slice(&EtherType::VLAN.0.to_be_bytes());
                buf[field::VLAN_TCI].copy_from_slice(&tag.to_tci().to_be_bytes());
                buf[field::VLAN_ETHERTYPE].copy_from_slice(&self.ethertype.0.to_be_bytes());
            }
            None => buf[field::ETHERTYPE].copy_from_slice(&self.ethertype.0.to_be_bytes()),
        }
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ethernet {} > {}", self.src_addr, self.dst_addr)?;
        if let Some(tag) = self.vlan {
            write!(f, " vlan {}", tag.vid)?;
        }
        write!(f, " type {}", self.ethertype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The header of an ARP request as a pod's veth broadcasts it (CNI's `0a:58` locally administered source),
    /// with four payload bytes.
    static UNTAGGED: [u8; 18] =
        [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02, 0x08, 0x06, 0xde, 0xad, 0xbe, 0xef];
    /// A tagged frame: VLAN 100, PCP 5, IPv4 inside.
    static TAGGED: [u8; 20] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x81, 0x00, 0xa0, 0x64, 0x08, 0x00,
        0x45, 0x00,
    ];

    #[test]
    fn test_parse_untagged() {
        let frame = Frame::new_checked(&UNTAGGED[..]).unwrap();
        let repr = Repr::parse(&frame).unwrap();
        assert_eq!(repr.dst_addr, MacAddr::BROADCAST);
        assert_eq!(repr.src_addr, MacAddr::new(0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02));
        assert_eq!(repr.ethertype, EtherType::ARP);
        assert_eq!(repr.vlan, None);
        assert_eq!(frame.payload(), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn test_parse_tagged() {
        let frame = Frame::new_checked(&TAGGED[..]).unwrap();
        let repr = Repr::parse(&frame).unwrap();
        assert_eq!(repr.vlan, Some(VlanTag { pcp: 5, dei: false, vid: 100 }));
        assert_eq!(repr.ethertype, EtherType::IPV4);
        assert_eq!(frame.outer_ethertype(), EtherType::VLAN);
        assert_eq!(frame.header_len(), 18);
        assert_eq!(frame.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn test_emit() {
        for bytes in [&UNTAGGED[..], &TAGGED[..]] {
            let repr = Repr::parse(&Frame::new_checked(bytes).unwrap()).unwrap();
            let mut out = [0u8; 32];
            let len = repr.buffer_len();
            repr.emit(&mut Frame::new_unchecked(&mut out[..len]));
            assert_eq!(&out[..len], &bytes[..len]);
        }
    }

    #[test]
    fn every_truncation_is_an_exact_length_error() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Frame::new_checked(&UNTAGGED[..len]),
                Err(Error::Truncated { layer: Layer::Ethernet, required: 14, actual: len })
            );
        }
        for len in 0..VLAN_HEADER_LEN {
            let layer = if len < HEADER_LEN { Layer::Ethernet } else { Layer::Vlan };
            let required = if len < HEADER_LEN { 14 } else { 18 };
            assert_eq!(Frame::new_checked(&TAGGED[..len]), Err(Error::Truncated { layer, required, actual: len }));
        }
    }

    #[test]
    fn mac_predicates() {
        assert!(MacAddr::BROADCAST.is_broadcast() && MacAddr::BROADCAST.is_multicast());
        let mcast = MacAddr::new(0x01, 0x00, 0x5e, 0, 0, 1);
        assert!(mcast.is_multicast() && !mcast.is_broadcast() && !mcast.is_unicast());
        let local = MacAddr::new(0x02, 0x42, 0xac, 0x11, 0, 2);
        assert!(local.is_unicast() && local.is_local() && !local.is_zero());
        assert!(MacAddr::ZERO.is_zero() && MacAddr::ZERO.is_unicast());
        assert_eq!(MacAddr::from_u64(local.to_u64()), local);
    }

    #[test]
    fn mac_text() {
        let mac: MacAddr = "02:42:ac:11:00:02".parse().unwrap();
        assert_eq!(mac, MacAddr::new(0x02, 0x42, 0xac, 0x11, 0, 2));
        assert_eq!(std::format!("{mac}"), "02:42:ac:11:00:02");
        assert_eq!("02-42-AC-11-00-02".parse::<MacAddr>(), Ok(mac));
        for bad in
            ["", "02:42:ac:11:00", "02:42:ac:11:00:02:03", "02:42:ac:11:00:2", "0242ac110002", "02:42-ac:11:00:02"]
        {
            assert_eq!(bad.parse::<MacAddr>(), Err(ParseMacError), "{bad}");
        }
    }

    fn arb_repr() -> impl Strategy<Value = Repr> {
        (any::<[u8; 6]>(), any::<[u8; 6]>(), proptest::option::of(any::<u16>()), any::<u16>()).prop_map(
            |(s, d, tci, et)| Repr {
                src_addr: MacAddr(s),
                dst_addr: MacAddr(d),
                vlan: tci.map(VlanTag::from_tci),
                // A payload EtherType of 0x8100 inside an untagged repr would be read back as a tag.
                ethertype: if et == 0x8100 { EtherType(0x0800) } else { EtherType(et) },
            },
        )
    }

    proptest! {
        #[test]
        fn repr_round_trip(repr in arb_repr()) {
            let mut buf = [0u8; VLAN_HEADER_LEN];
            repr.emit(&mut Frame::new_unchecked(&mut buf[..repr.buffer_len()]));
            let parsed = Repr::parse(&Frame::new_checked(&buf[..repr.buffer_len()]).unwrap()).unwrap();
            prop_assert_eq!(parsed, repr);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(frame) = Frame::new_checked(&bytes[..]) {
                let repr = Repr::parse(&frame).unwrap();
                let _ = (frame.payload(), frame.vlan(), repr.buffer_len());
                prop_assert!(frame.header_len() <= bytes.len());
            }
        }
    }
}
