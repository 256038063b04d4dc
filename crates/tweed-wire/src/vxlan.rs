//! VXLAN headers (RFC 7348 §5): the 8 bytes between the outer UDP header and the inner Ethernet frame.
//!
//! [`Packet`] is a view over the header and the frame behind it; [`Repr`] is a parsed header. After
//! [`Packet::check_len`] (or [`Packet::new_checked`]) succeeded, no accessor panics. [`Repr::emit`] never panics on
//! a buffer of [`Repr::buffer_len`] bytes or more.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |R|R|R|R|I|R|R|R|            Reserved                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! RFC 7348 rules, as this module applies them: the I flag must be set for a header to be valid
//! ([`Repr::parse`] rejects a header without it); every other bit outside the VNI is reserved, *ignored on receive*
//! and *zero on transmit* ([`Repr::emit`] writes all of them). Extensions that give reserved bits a meaning (GBP,
//! GPE) are therefore read as plain VXLAN, as a receiver that knows only RFC 7348 must.
//!
//! ```
//! use tweed_wire::vxlan::{Packet, Repr, Vni};
//!
//! // The header the Linux kernel puts in front of every frame of flannel's `flannel.1` (VNI 1).
//! let bytes = [0x08, 0, 0, 0, 0, 0, 0x01, 0, 0xaa, 0xbb];
//! let packet = Packet::new_checked(&bytes[..])?;
//! let repr = Repr::parse(&packet)?;
//! assert_eq!(repr.vni, Vni::FLANNEL);
//! assert_eq!(packet.payload(), &[0xaa, 0xbb]);
//! # Ok::<(), tweed_wire::Error>(())
//! ```

use core::fmt;

use crate::field::{Field, Rest};
use crate::{Error, Layer, Result};

/// The IANA-assigned VXLAN destination port (RFC 7348 §5).
pub const IANA_PORT: u16 = 4789;
/// The port the Linux kernel uses when `ip link add … type vxlan` is given no `dstport`, and the one flannel's
/// vxlan backend configures.
pub const LINUX_PORT: u16 = 8472;

/// A 24-bit VXLAN Network Identifier. The constructor refuses values above `0xff_ffff`, so every `Vni` fits the
/// header.
///
/// ```
/// use tweed_wire::vxlan::Vni;
///
/// assert_eq!(Vni::new(1), Some(Vni::FLANNEL));
/// assert_eq!(Vni::new(0x100_0000), None);
/// assert_eq!(Vni::try_from(42u32).map(Vni::get), Ok(42));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vni(u32);

impl Vni {
    /// The largest VNI, `0xff_ffff`.
    pub const MAX: Self = Self(0xff_ffff);
    /// VNI 1, the one flannel gives `flannel.1` by default.
    pub const FLANNEL: Self = Self(1);

    /// The VNI `value`, or `None` when it does not fit 24 bits.
    #[must_use]
    pub const fn new(value: u32) -> Option<Self> {
        if value <= Self::MAX.0 { Some(Self(value)) } else { None }
    }

    /// The VNI as a number, `0..=0xff_ffff`.
    #[must_use]
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The VNI from its three bytes in network order.
    #[must_use]
    pub const fn from_be_bytes(bytes: [u8; 3]) -> Self {
        Self(u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]))
    }

    /// The three bytes of the VNI in network order.
    #[must_use]
    pub const fn to_be_bytes(self) -> [u8; 3] {
        let b = self.0.to_be_bytes();
        [b[1], b[2], b[3]]
    }
}

impl TryFrom<u32> for Vni {
    type Error = Error;

    /// The VNI `value`, or [`Error::Invalid`] (layer VXLAN, field `"vni"`) when it does not fit 24 bits.
    fn try_from(value: u32) -> Result<Self> {
        Self::new(value).ok_or(Error::Invalid { layer: Layer::Vxlan, field: "vni", value })
    }
}

impl From<Vni> for u32 {
    fn from(vni: Vni) -> Self {
        vni.0
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vni({})", self.0)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Vni {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self(u.int_in_range(0..=Self::MAX.0)?))
    }

    fn size_hint(depth: usize) -> (usize, Option<usize>) {
        <u32 as arbitrary::Arbitrary<'a>>::size_hint(depth)
    }
}

mod field {
    #![allow(clippy::reversed_empty_ranges)]
    use super::{Field, Rest};

    pub(super) const FLAGS: usize = 0;
    pub(super) const RESERVED1: Field = 1..4;
    pub(super) const VNI: Field = 4..7;
    pub(super) const RESERVED2: usize = 7;
    pub(super) const PAYLOAD: Rest = 8..;
}

/// Length of the VXLAN header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// The I flag: "the VNI is valid", the one flag RFC 7348 defines.
pub const FLAG_VNI: u8 = 0x08;

/// A view of a VXLAN header and the inner frame behind it.
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

    /// Checks that the header fits in the buffer; after `Ok`, no accessor panics. The flags are not judged here
    /// ([`Repr::parse`] does that).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        Error::need(Layer::Vxlan, HEADER_LEN, self.buffer.as_ref().len())
    }

    /// The buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The flags byte, reserved bits included.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Whether the I flag (`0x08`, "VNI valid") is set.
    #[inline]
    pub fn has_vni_flag(&self) -> bool {
        self.flags() & FLAG_VNI != 0
    }

    /// The VNI field, whatever the I flag says.
    #[inline]
    pub fn vni(&self) -> Vni {
        let b = &self.buffer.as_ref()[field::VNI];
        Vni::from_be_bytes([b[0], b[1], b[2]])
    }

    /// Whether any reserved bit (the seven other flag bits, the 24 bits after the flags and the last byte) is set.
    /// Receivers ignore them; a tweed sender never sets them.
    #[inline]
    pub fn has_reserved_bits(&self) -> bool {
        let b = self.buffer.as_ref();
        b[field::FLAGS] & !FLAG_VNI != 0 || b[field::RESERVED1] != [0, 0, 0] || b[field::RESERVED2] != 0
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The inner Ethernet frame, borrowed for the buffer's lifetime.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the whole flags byte, reserved bits included.
    #[inline]
    pub fn set_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[field::FLAGS] = flags;
    }

    /// Sets the VNI field (not the I flag).
    #[inline]
    pub fn set_vni(&mut self, vni: Vni) {
        self.buffer.as_mut()[field::VNI].copy_from_slice(&vni.to_be_bytes());
    }

    /// Zeroes every reserved bit, keeping the I flag and the VNI.
    #[inline]
    pub fn clear_reserved(&mut self) {
        let b = self.buffer.as_mut();
        b[field::FLAGS] &= FLAG_VNI;
        b[field::RESERVED1].fill(0);
        b[field::RESERVED2] = 0;
    }

    /// The inner frame, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A parsed VXLAN header: all RFC 7348 gives meaning to is the VNI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Repr {
    /// The VXLAN Network Identifier.
    pub vni: Vni,
}

impl Repr {
    /// Parses the header: the I flag must be set (else [`Error::Invalid`] with field `"flags"` and the flags byte
    /// as value); reserved bits are ignored.
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Self> {
        packet.check_len()?;
        if !packet.has_vni_flag() {
            return Err(Error::Invalid { layer: Layer::Vxlan, field: "flags", value: u32::from(packet.flags()) });
        }
        Ok(Self { vni: packet.vni() })
    }

    /// The header's length on the wire.
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// The 8 header bytes: the I flag, three zero bytes, the VNI, a zero byte. Encapsulation code can keep these
    /// in a per-peer template and copy them in front of each frame.
    #[must_use]
    pub const fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let v = self.vni.to_be_bytes();
        [FLAG_VNI, 0, 0, 0, v[0], v[1], v[2], 0]
    }

    /// Writes the header to the front of `packet`'s buffer, which must hold at least [`Repr::buffer_len`] bytes.
    /// Every reserved bit is written as zero.
    ///
    /// # Panics
    /// When the buffer is shorter than [`Repr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.buffer.as_mut()[..HEADER_LEN].copy_from_slice(&self.to_bytes());
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VXLAN vni {}", self.vni)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::format;

    /// Frame 0 of `kernel-flannel-vxlan.pcap` from the VXLAN header on: the kernel's header for VNI 1, then the
    /// inner Ethernet header (VTEP MAC 02:00:00:00:00:01 to 02:00:00:00:00:02, IPv4) and the first bytes of the
    /// inner IPv4 header.
    static KERNEL_HEADER: [u8; 26] = [
        0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, // VXLAN
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, // inner Ethernet
        0x45, 0x00, 0x00, 0x54, // inner IPv4
    ];

    /// RFC 7348 §5's example range: a VNI using all 24 bits, with every reserved bit set as a sender that
    /// ignores the RFC might write them.
    static RESERVED_SET: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0xab, 0xcd, 0xef, 0xff];

    #[test]
    fn test_parse_kernel() {
        let packet = Packet::new_checked(&KERNEL_HEADER[..]).unwrap();
        assert_eq!(packet.flags(), 0x08);
        assert!(packet.has_vni_flag());
        assert!(!packet.has_reserved_bits());
        assert_eq!(packet.vni(), Vni::FLANNEL);
        assert_eq!(Repr::parse(&packet), Ok(Repr { vni: Vni::FLANNEL }));
        assert_eq!(packet.payload(), &KERNEL_HEADER[8..]);
        assert_eq!(&packet.payload()[12..14], &[0x08, 0x00]);
    }

    #[test]
    fn test_emit_kernel() {
        let mut buf = [0xffu8; 8];
        Repr { vni: Vni::FLANNEL }.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, KERNEL_HEADER[..8]);
    }

    #[test]
    fn reserved_bits_ignored_on_receive_and_zero_on_transmit() {
        let packet = Packet::new_checked(&RESERVED_SET[..]).unwrap();
        assert!(packet.has_reserved_bits());
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr.vni.get(), 0xab_cdef);
        let mut buf = [0xffu8; 8];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, [0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0]);

        let mut buf = RESERVED_SET;
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.clear_reserved();
        assert_eq!(buf, [0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0]);
    }

    #[test]
    fn missing_i_flag_is_invalid() {
        let mut buf = KERNEL_HEADER;
        buf[0] = 0x00;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Err(Error::Invalid { layer: Layer::Vxlan, field: "flags", value: 0 })
        );
        // Every other flag set, the I flag clear (a VXLAN-GPE header with its P bit, say): still invalid.
        buf[0] = 0xf7;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Err(Error::Invalid { layer: Layer::Vxlan, field: "flags", value: 0xf7 })
        );
    }

    #[test]
    fn every_truncation_is_an_exact_length_error() {
        for len in 0..HEADER_LEN {
            let err = Error::Truncated { layer: Layer::Vxlan, required: 8, actual: len };
            assert_eq!(Packet::new_checked(&KERNEL_HEADER[..len]), Err(err));
            assert_eq!(Repr::parse(&Packet::new_unchecked(&KERNEL_HEADER[..len])), Err(err));
        }
        // The header alone, with an empty frame behind it, is a valid header.
        assert_eq!(Packet::new_checked(&KERNEL_HEADER[..8]).unwrap().payload(), &[] as &[u8]);
    }

    #[test]
    fn setters() {
        let mut buf = [0u8; 10];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_flags(FLAG_VNI);
        packet.set_vni(Vni::MAX);
        packet.payload_mut().copy_from_slice(&[1, 2]);
        assert_eq!(buf, [0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0, 1, 2]);
    }

    #[test]
    fn vni_bounds_and_text() {
        assert_eq!(Vni::new(0xff_ffff), Some(Vni::MAX));
        assert_eq!(Vni::new(0x100_0000), None);
        assert_eq!(Vni::new(u32::MAX), None);
        assert_eq!(
            Vni::try_from(0x100_0000),
            Err(Error::Invalid { layer: Layer::Vxlan, field: "vni", value: 0x100_0000 })
        );
        assert_eq!(u32::from(Vni::FLANNEL), 1);
        assert_eq!(Vni::from_be_bytes([0x12, 0x34, 0x56]).get(), 0x12_3456);
        assert_eq!(format!("{}", Vni::MAX), "16777215");
        assert_eq!(format!("{:?}", Vni::FLANNEL), "Vni(1)");
        assert_eq!(format!("{}", Repr { vni: Vni::FLANNEL }), "VXLAN vni 1");
        assert_eq!(LINUX_PORT, 8472);
        assert_eq!(IANA_PORT, 4789);
    }

    proptest! {
        #[test]
        fn repr_round_trip(vni in 0u32..=0xff_ffff, payload in proptest::collection::vec(any::<u8>(), 0..16)) {
            let repr = Repr { vni: Vni::new(vni).unwrap() };
            let mut buf = std::vec![0u8; repr.buffer_len() + payload.len()];
            buf[HEADER_LEN..].copy_from_slice(&payload);
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
            let packet = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Repr::parse(&packet), Ok(repr));
            prop_assert_eq!(packet.payload(), &payload[..]);
            prop_assert!(!packet.has_reserved_bits());
            prop_assert_eq!(&buf[..8], &repr.to_bytes()[..]);
        }

        #[test]
        fn vni_new_is_exactly_24_bits(v in any::<u32>()) {
            prop_assert_eq!(Vni::new(v).is_some(), v <= 0xff_ffff);
            if let Some(vni) = Vni::new(v) {
                prop_assert_eq!(Vni::from_be_bytes(vni.to_be_bytes()), vni);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let parsed = Repr::parse(&packet);
                prop_assert_eq!(parsed.is_ok(), bytes[0] & 0x08 != 0);
                let _ = (packet.payload(), packet.has_reserved_bits(), packet.vni());
            } else {
                prop_assert!(bytes.len() < HEADER_LEN);
            }
        }
    }
}
