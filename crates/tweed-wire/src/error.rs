//! The error type of every parser in this crate.

use core::fmt;

/// The protocol layer an [`Error`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Layer {
    /// Ethernet II header.
    Ethernet,
    /// IEEE 802.1Q VLAN tag.
    Vlan,
    /// ARP for Ethernet/IPv4.
    Arp,
    /// IPv4 header.
    Ipv4,
    /// ICMPv4 message.
    Icmpv4,
    /// UDP header.
    Udp,
    /// VXLAN header (RFC 7348).
    Vxlan,
}

impl Layer {
    /// The layer's name, lowercase, as used in error messages.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ethernet => "ethernet",
            Self::Vlan => "vlan",
            Self::Arp => "arp",
            Self::Ipv4 => "ipv4",
            Self::Icmpv4 => "icmpv4",
            Self::Udp => "udp",
            Self::Vxlan => "vxlan",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a buffer could not be parsed (or a header could not be emitted).
///
/// Errors carry structure, not prose: match on the variant and its fields; `Display` gives a lowercase message
/// with no trailing period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The buffer holds fewer bytes than the layer needs: `required` is what the fixed header, or a length field
    /// of the header itself (IPv4 total length, UDP length), asks for; `actual` is what the buffer has.
    Truncated {
        /// The layer that ran out of bytes.
        layer: Layer,
        /// Bytes needed.
        required: usize,
        /// Bytes present.
        actual: usize,
    },
    /// A field holds a value the protocol forbids (IPv4 version 6, an IHL below 5, a UDP length below 8, a VXLAN
    /// header without the I flag, a total length shorter than the header, …).
    Invalid {
        /// The layer of the field.
        layer: Layer,
        /// The field's name, as the RFC calls it.
        field: &'static str,
        /// The value found.
        value: u32,
    },
    /// A field holds a legal value that this crate does not handle (ARP for a hardware type other than Ethernet,
    /// an ICMP message type without a `Repr`, …).
    Unsupported {
        /// The layer of the field.
        layer: Layer,
        /// The field's name, as the RFC calls it.
        field: &'static str,
        /// The value found.
        value: u32,
    },
    /// The checksum does not match the bytes.
    Checksum {
        /// The layer whose checksum failed.
        layer: Layer,
    },
}

impl Error {
    /// The layer the error is about.
    #[must_use]
    pub const fn layer(&self) -> Layer {
        match *self {
            Self::Truncated { layer, .. }
            | Self::Invalid { layer, .. }
            | Self::Unsupported { layer, .. }
            | Self::Checksum { layer } => layer,
        }
    }

    /// A [`Error::Truncated`] error, or `Ok` when `actual >= required`.
    pub(crate) const fn need(layer: Layer, required: usize, actual: usize) -> Result<()> {
        if actual < required { Err(Self::Truncated { layer, required, actual }) } else { Ok(()) }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { layer, required, actual } => {
                write!(f, "{layer}: truncated: need {required} bytes, have {actual}")
            }
            Self::Invalid { layer, field, value } => write!(f, "{layer}: invalid {field} {value}"),
            Self::Unsupported { layer, field, value } => write!(f, "{layer}: unsupported {field} {value}"),
            Self::Checksum { layer } => write!(f, "{layer}: bad checksum"),
        }
    }
}

impl core::error::Error for Error {}

/// `Result` with this crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;
