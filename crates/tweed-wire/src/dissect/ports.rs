//! Which UDP ports carry what, for [`decode`](super::decode): Wireshark's "Decode As" in a fixed-size table.

use super::layer::Udp;
use crate::vxlan;

/// The most port mappings a [`Decoders`] holds.
pub const MAX_PORTS: usize = 8;

/// What a UDP port carries, for [`Decoders`] (as Wireshark's "Decode As").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortDecoder {
    /// VXLAN, then an Ethernet frame.
    Vxlan,
    /// flannel's udp backend: the payload is a bare IPv4 packet.
    FlannelUdp,
    /// Data: the payload is not decoded (to switch a default mapping off).
    Data,
}

impl PortDecoder {
    /// The name `--decode` takes: `vxlan`, `flannel-udp` or `data`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Vxlan => "vxlan",
            Self::FlannelUdp => "flannel-udp",
            Self::Data => "data",
        }
    }
}

impl core::str::FromStr for PortDecoder {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "vxlan" => Ok(Self::Vxlan),
            // Wireshark's `-d udp.port==8285,ip` says the same.
            "flannel-udp" | "udp-backend" | "ip" => Ok(Self::FlannelUdp),
            "data" | "none" => Ok(Self::Data),
            _ => Err("unknown decoder: one of vxlan, flannel-udp (or ip), data"),
        }
    }
}

/// Which UDP ports carry what: VXLAN on 4789 and 8472, flannel's udp backend on 8285 by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decoders {
    ports: [(u16, PortDecoder); MAX_PORTS],
    len: u8,
}

impl Decoders {
    /// VXLAN on IANA's 4789 and Linux's and flannel's 8472; flannel's udp backend on 8285.
    pub const DEFAULT: Self = Self {
        ports: [
            (vxlan::IANA_PORT, PortDecoder::Vxlan),
            (vxlan::LINUX_PORT, PortDecoder::Vxlan),
            (8285, PortDecoder::FlannelUdp),
            (0, PortDecoder::Data),
            (0, PortDecoder::Data),
            (0, PortDecoder::Data),
            (0, PortDecoder::Data),
            (0, PortDecoder::Data),
        ],
        len: 3,
    };

    /// No port decoded: UDP payloads are data.
    pub const NONE: Self = Self { ports: [(0, PortDecoder::Data); MAX_PORTS], len: 0 };

    /// Maps `port` to `decoder`, replacing its mapping if it had one.
    ///
    /// # Errors
    /// The table already holds [`MAX_PORTS`] other ports.
    pub fn set(&mut self, port: u16, decoder: PortDecoder) -> Result<(), &'static str> {
        let len = usize::from(self.len);
        if let Some(slot) = self.ports.iter_mut().take(len).find(|(p, _)| *p == port) {
            slot.1 = decoder;
            return Ok(());
        }
        let slot = self.ports.get_mut(len).ok_or("too many port mappings")?;
        *slot = (port, decoder);
        self.len += 1;
        Ok(())
    }

    /// Parses and applies `4789=vxlan`.
    ///
    /// # Errors
    /// Text that is not `PORT=DECODER`, or a full table.
    pub fn apply(&mut self, mapping: &str) -> Result<(), &'static str> {
        let (port, decoder) = mapping.split_once('=').ok_or("expected PORT=DECODER, e.g. 4789=vxlan")?;
        let port = port.trim().parse().map_err(|_| "the port is not a number from 0 to 65535")?;
        self.set(port, decoder.trim().parse()?)
    }

    /// What `port` carries.
    #[must_use]
    pub fn get(&self, port: u16) -> Option<PortDecoder> {
        self.ports.iter().take(usize::from(self.len)).find(|(p, _)| *p == port).map(|&(_, d)| d)
    }

    /// A UDP datagram's decoder: by destination port, then by source port.
    pub(super) fn of(&self, udp: &Udp) -> PortDecoder {
        self.get(udp.dst_port).or_else(|| self.get(udp.src_port)).unwrap_or(PortDecoder::Data)
    }
}

impl Default for Decoders {
    fn default() -> Self {
        Self::DEFAULT
    }
}
