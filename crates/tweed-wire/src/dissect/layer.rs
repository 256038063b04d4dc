//! What [`decode`](super::decode) finds: one value per protocol header, the verdict of each checksum, and the
//! problems (truncations, lying lengths, bad checksums), all `Copy` and fixed-size.

use core::net::Ipv4Addr;

use crate::ethernet::MacAddr;

/// Whether a checksum was verified, and how it came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Check {
    /// The bytes sum to what the field says.
    Good,
    /// The field is wrong; `expected` is what it should be.
    Bad {
        /// The checksum the bytes call for.
        expected: u16,
    },
    /// Not verified: the bytes it covers are not all captured, the packet is a fragment or a quoted header.
    Unverified,
    /// Not present: a UDP checksum of zero.
    Absent,
}

impl Check {
    /// Wireshark's `*.checksum.status` value: 0 bad, 1 good, 2 unverified, 3 not present.
    #[must_use]
    pub const fn status(self) -> u8 {
        match self {
            Self::Bad { .. } => 0,
            Self::Good => 1,
            Self::Unverified => 2,
            Self::Absent => 3,
        }
    }
}

/// An 802.1Q (or 802.1ad) tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vlan {
    /// The tag protocol identifier that announced the tag: 0x8100 or 0x88a8.
    pub tpid: u16,
    /// Priority code point (802.1p), 0..=7.
    pub priority: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier, 0..=4095.
    pub id: u16,
    /// The EtherType after the tag.
    pub etype: u16,
}

/// An ARP packet for IPv4 over Ethernet (other hardware or protocol types keep only the fixed header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Arp {
    /// Hardware type (1: Ethernet).
    pub hw_type: u16,
    /// Protocol type (0x0800: IPv4).
    pub proto_type: u16,
    /// Operation: 1 request, 2 reply.
    pub opcode: u16,
    /// Sender and target addresses, when the types are Ethernet and IPv4 and the packet holds them.
    pub addresses: Option<ArpAddresses>,
}

/// The four addresses of an Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpAddresses {
    /// Sender hardware address.
    pub src_hw: MacAddr,
    /// Sender protocol address.
    pub src_ip: Ipv4Addr,
    /// Target hardware address.
    pub dst_hw: MacAddr,
    /// Target protocol address.
    pub dst_ip: Ipv4Addr,
}

/// The IPv4 options a header carries, by type, in order (the first eight).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Ipv4Options {
    kinds: [u8; 8],
    len: u8,
}

impl Ipv4Options {
    pub(super) fn push(&mut self, kind: u8) {
        if let Some(slot) = self.kinds.get_mut(usize::from(self.len)) {
            *slot = kind;
            self.len += 1;
        }
    }

    /// The option types found, in order.
    #[must_use]
    pub fn kinds(&self) -> &[u8] {
        self.kinds.get(..usize::from(self.len)).unwrap_or_default()
    }
}

/// An IPv4 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4 {
    /// Header length in bytes (IHL × 4).
    pub hdr_len: u8,
    /// The DS field: DSCP in the upper six bits, ECN in the lower two.
    pub dsfield: u8,
    /// Total length, as the header says.
    pub len: u16,
    /// Identification.
    pub id: u16,
    /// Don't fragment.
    pub df: bool,
    /// More fragments.
    pub mf: bool,
    /// Fragment offset in bytes (the field × 8).
    pub frag_offset: u16,
    /// Time to live.
    pub ttl: u8,
    /// Protocol of the payload.
    pub proto: u8,
    /// Header checksum field.
    pub checksum: u16,
    /// Its verdict.
    pub check: Check,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Options, by type.
    pub options: Ipv4Options,
}

/// An ICMP message's header: type, code, checksum and the type-specific word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Icmp {
    /// Type.
    pub kind: u8,
    /// Code.
    pub code: u8,
    /// Checksum field.
    pub checksum: u16,
    /// Its verdict (over the whole message).
    pub check: Check,
    /// The second 32-bit word: identifier and sequence of an echo, the next-hop MTU of a fragmentation-needed,
    /// the gateway of a redirect, the pointer of a parameter problem.
    pub rest: u32,
}

impl Icmp {
    /// Whether this type quotes the offending packet's header (unreachable, source quench, redirect, time
    /// exceeded, parameter problem).
    #[must_use]
    pub const fn is_error(&self) -> bool {
        matches!(self.kind, 3 | 4 | 5 | 11 | 12)
    }

    /// Whether this is an echo request or reply (whose second word is identifier and sequence).
    #[must_use]
    pub const fn is_echo(&self) -> bool {
        matches!(self.kind, 0 | 8)
    }
}

/// A UDP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Udp {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length field (header and payload).
    pub len: u16,
    /// Checksum field.
    pub checksum: u16,
    /// Its verdict.
    pub check: Check,
}

/// A TCP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tcp {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Header length in bytes (data offset × 4).
    pub hdr_len: u8,
    /// The 12 flag bits (CWR … FIN in the low byte; the nonce and reserved bits above).
    pub flags: u16,
    /// Window (unscaled).
    pub window: u16,
    /// Checksum field.
    pub checksum: u16,
    /// Its verdict.
    pub check: Check,
    /// Urgent pointer.
    pub urgent: u16,
    /// Payload length: the IPv4 payload less the TCP header, when the IPv4 header was read.
    pub payload_len: u16,
}

/// A VXLAN header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vxlan {
    /// The first 16 bits: the flags (0x0800: the VNI is valid) and, with group-based policy, more flags.
    pub flags: u16,
    /// The VXLAN network identifier.
    pub vni: u32,
}

/// One protocol header of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Ethernet II: addresses and the first EtherType (0x8100 when a tag follows).
    Ethernet {
        /// Destination.
        dst: MacAddr,
        /// Source.
        src: MacAddr,
        /// EtherType.
        etype: u16,
    },
    /// An 802.1Q tag.
    Vlan(Vlan),
    /// ARP.
    Arp(Arp),
    /// IPv4; `quoted` inside an ICMP error.
    Ipv4 {
        /// The header.
        ip: Ipv4,
        /// Whether this is the header an ICMP error quotes.
        quoted: bool,
    },
    /// ICMP.
    Icmp(Icmp),
    /// UDP; `quoted` inside an ICMP error (its length and checksum are the original's and not verified).
    Udp {
        /// The header.
        udp: Udp,
        /// Whether this is the header an ICMP error quotes.
        quoted: bool,
    },
    /// TCP; `quoted` inside an ICMP error (only its first 8 bytes are sure to be there).
    Tcp {
        /// The header.
        tcp: Tcp,
        /// Whether this is the header an ICMP error quotes.
        quoted: bool,
    },
    /// VXLAN; an Ethernet frame follows.
    Vxlan(Vxlan),
    /// flannel's udp backend: the UDP payload is an IPv4 packet, which follows.
    FlannelUdp,
}

impl Layer {
    /// Wireshark's name for the protocol (`eth`, `vlan` or `ieee8021ad` for a service tag, `arp`, `ip`, `icmp`,
    /// `udp`, `tcp`, `vxlan`, `flannel-udp`), which is also the JSON's `layer`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Ethernet { .. } => "eth",
            Self::Vlan(v) if v.tpid == 0x88a8 => "ieee8021ad",
            Self::Vlan(_) => "vlan",
            Self::Arp(_) => "arp",
            Self::Ipv4 { .. } => "ip",
            Self::Icmp(_) => "icmp",
            Self::Udp { .. } => "udp",
            Self::Tcp { .. } => "tcp",
            Self::Vxlan(_) => "vxlan",
            Self::FlannelUdp => "flannel-udp",
        }
    }
}

/// What is wrong with a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The header needs more bytes than are there.
    Truncated {
        /// Bytes the header needs.
        need: u32,
        /// Bytes there are.
        have: u32,
    },
    /// The header or the bytes a length covers go past what was captured, but not past the frame's length on the
    /// wire: the capture's snap length cut it, nothing lies.
    Snapped {
        /// Bytes needed.
        need: u32,
        /// Bytes captured.
        have: u32,
    },
    /// A length field says more than there is: the frame was cut after capture, or the field lies.
    TooLong {
        /// What the field says.
        declared: u32,
        /// What there is.
        available: u32,
    },
    /// A length field says less than its own header.
    TooShort {
        /// What the field says.
        declared: u32,
        /// The least it may say.
        min: u32,
    },
    /// The checksum field is wrong.
    BadChecksum {
        /// What the field says.
        found: u16,
        /// What the bytes call for.
        expected: u16,
    },
    /// A field holds a value the protocol does not allow (an IPv4 version other than 4, a VXLAN header without
    /// its I flag).
    Invalid {
        /// The value.
        value: u32,
    },
}

/// One problem found in a frame: which layer, which field, what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Problem {
    /// The layer's name, as [`Layer::name`].
    pub layer: &'static str,
    /// The field: `header`, `length`, `total length`, `checksum`, `version`, `flags`, `options`…
    pub field: &'static str,
    /// What is wrong.
    pub fault: Fault,
}

impl Problem {
    /// Whether the problem makes the frame malformed (everything but a bad checksum and a snapped capture).
    #[must_use]
    pub const fn is_malformed(&self) -> bool {
        !matches!(self.fault, Fault::BadChecksum { .. } | Fault::Snapped { .. })
    }
}
