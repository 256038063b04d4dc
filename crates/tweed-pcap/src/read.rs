//! Reading a capture: the format is told by the first four bytes, the records borrow their bytes from the file.

use std::borrow::Cow;

use pcap_file::pcap::{PcapHeader, PcapParser};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::blocks::packet::PacketOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{Endianness, TsResolution};

use crate::error::{self, Error};
use crate::{Interface, LinkType};

/// The pcapng section header block type, the same in both byte orders.
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
/// A classic pcap file header.
const PCAP_HEADER_LEN: usize = 24;
/// A classic pcap record header.
const PCAP_RECORD_LEN: usize = 16;

/// One frame of the capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The frame's number, from 1, as Wireshark numbers them.
    pub number: u64,
    /// The interface it was captured on, an index into [`Reader::interfaces`] (0 in a classic pcap file).
    pub interface: u32,
    /// The interface's link type: what the frame starts with.
    pub link_type: LinkType,
    /// When it was captured, in nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The frame's length on the wire, more than `data.len()` when the capture was snapped.
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
    /// The packet's comment (pcapng `opt_comment`), if any.
    pub comment: Option<&'a str>,
}

enum Kind {
    Pcap { parser: PcapParser, header: PcapHeader },
    Pcapng { parser: PcapNgParser },
}

/// The records of a pcap or pcapng file, in order. After the first error it yields nothing more.
pub struct Reader<'a> {
    /// The parser; taken out while a record is read, so that `self` can be borrowed beside it.
    kind: Option<Kind>,
    /// What is left of the file.
    rest: &'a [u8],
    /// The whole file's length, to tell a record's offset.
    file_len: usize,
    interfaces: Vec<Interface>,
    /// The next frame's number.
    frame: u64,
    /// The next record's (pcap) or block's (pcapng) number.
    record: u64,
    done: bool,
}

impl core::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reader")
            .field("interfaces", &self.interfaces)
            .field("next_frame", &self.frame)
            .field("left", &self.rest.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Reader<'a> {
    /// Reads the file header (pcap) or the first section header (pcapng); records are read by iterating.
    ///
    /// # Errors
    /// A file too short for a header, a magic number of neither format, or a header that does not parse.
    pub fn new(file: &'a [u8]) -> Result<Self, Error> {
        let Some(magic) = file.get(..4) else {
            return Err(Error::ShortHeader { actual: file.len() });
        };
        let mut reader = Self {
            kind: None,
            rest: file,
            file_len: file.len(),
            interfaces: Vec::new(),
            frame: 1,
            record: 1,
            done: false,
        };
        if magic == PCAPNG_MAGIC {
            let (rest, parser) = PcapNgParser::new(file).map_err(|e| match e {
                pcap_file::PcapError::IncompleteBuffer => Error::ShortHeader { actual: file.len() },
                other => error::from_pcap(other),
            })?;
            reader.rest = rest;
            reader.record = 2;
            reader.kind = Some(Kind::Pcapng { parser });
            return Ok(reader);
        }
        if file.len() < PCAP_HEADER_LEN {
            let known = [[0xa1, 0xb2, 0xc3, 0xd4], [0xd4, 0xc3, 0xb2, 0xa1], [0xa1, 0xb2, 0x3c, 0x4d]];
            let magic4 = [magic[0], magic[1], magic[2], magic[3]];
            if known.contains(&magic4) || magic4 == [0x4d, 0x3c, 0xb2, 0xa1] {
                return Err(Error::ShortHeader { actual: file.len() });
            }
        }
        let (rest, parser) = PcapParser::new(file).map_err(|e| match e {
            pcap_file::PcapError::InvalidField(_) => Error::Magic { magic: [magic[0], magic[1], magic[2], magic[3]] },
            pcap_file::PcapError::IncompleteBuffer => Error::ShortHeader { actual: file.len() },
            other => error::from_pcap(other),
        })?;
        let header = parser.header();
        if header.version_major != 2 {
            let reason = format!("pcap version {}.{} (only 2.x exists)", header.version_major, header.version_minor);
            return Err(Error::Header { reason });
        }
        let ticks = match header.ts_resolution {
            TsResolution::MicroSecond => 1_000_000,
            TsResolution::NanoSecond => 1_000_000_000,
        };
        reader.interfaces.push(Interface {
            link_type: link_type(u32::from(header.datalink)),
            snaplen: header.snaplen,
            name: None,
            description: None,
            ticks_per_second: ticks,
        });
        reader.rest = rest;
        reader.kind = Some(Kind::Pcap { parser, header });
        Ok(reader)
    }

    /// The capture points known so far: the one of a classic pcap file, or those the current pcapng section has
    /// described up to the last record read.
    #[must_use]
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Whether the file is pcapng.
    #[must_use]
    pub const fn is_pcapng(&self) -> bool {
        matches!(self.kind, Some(Kind::Pcapng { .. }))
    }

    fn offset(&self) -> usize {
        self.file_len - self.rest.len()
    }

    fn next_pcap(&mut self, parser: &PcapParser, header: &PcapHeader) -> Result<Record<'a>, Error> {
        let (record, offset) = (self.record, self.offset());
        let (rest, raw) = parser.next_raw_packet(self.rest).map_err(|e| {
            let left = self.rest.len();
            let reason = if left < PCAP_RECORD_LEN {
                format!("truncated: its header needs {PCAP_RECORD_LEN} bytes, the file has {left} left")
            } else {
                let incl = self.rest.get(8..12).map_or(0, |b| match header.endianness {
                    Endianness::Big => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                    Endianness::Little => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                });
                let body = left - PCAP_RECORD_LEN;
                if matches!(e, pcap_file::PcapError::IncompleteBuffer) {
                    format!("truncated: it declares {incl} captured bytes, the file has {body} left")
                } else {
                    error::record_reason(&e)
                }
            };
            Error::Record { record, offset, reason }
        })?;
        let frac = u64::from(raw.ts_frac);
        let frac_ns = match header.ts_resolution {
            TsResolution::MicroSecond => frac * 1000,
            TsResolution::NanoSecond => frac,
        };
        let data = borrowed(raw.data, record, offset)?;
        self.rest = rest;
        self.record += 1;
        let number = self.frame;
        self.frame += 1;
        Ok(Record {
            number,
            interface: 0,
            link_type: link_type(u32::from(header.datalink)),
            time_ns: u64::from(raw.ts_sec) * 1_000_000_000 + frac_ns,
            orig_len: raw.orig_len,
            data,
            comment: None,
        })
    }

    /// The next packet block of a pcapng file; other blocks update the interface table or are skipped.
    fn next_pcapng(&mut self, parser: &mut PcapNgParser) -> Option<Result<Record<'a>, Error>> {
        while !self.rest.is_empty() {
            let (record, offset) = (self.record, self.offset());
            let (rest, block) = match parser.next_block(self.rest) {
                Ok(parsed) => parsed,
                Err(e) => return Some(Err(Error::Record { record, offset, reason: error::record_reason(&e) })),
            };
            self.rest = rest;
            self.record += 1;
            // (interface, ticks as read, orig_len, data, comment)
            let (interface, ticks, orig_len, data, comment) = match block {
                Block::SectionHeader(_) => {
                    self.interfaces.clear();
                    continue;
                }
                Block::InterfaceDescription(idb) => {
                    self.interfaces.push(interface(&idb));
                    continue;
                }
                Block::EnhancedPacket(epb) => {
                    // pcap-file hands the raw 64-bit timestamp over as nanoseconds whatever the resolution; it is
                    // scaled by the interface's own resolution below.
                    let comment = epb.options.iter().find_map(|o| match o {
                        EnhancedPacketOption::Comment(Cow::Borrowed(c)) => Some(*c),
                        _ => None,
                    });
                    let ticks = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
                    (epb.interface_id, ticks, epb.original_len, epb.data, comment)
                }
                Block::SimplePacket(spb) => (0, 0, spb.original_len, spb.data, None),
                Block::Packet(pb) => {
                    let comment = pb.options.iter().find_map(|o| match o {
                        PacketOption::Comment(Cow::Borrowed(c)) => Some(*c),
                        _ => None,
                    });
                    (u32::from(pb.interface_id), pb.timestamp, pb.original_len, pb.data, comment)
                }
                _ => continue,
            };
            let Some(iface) = self.interfaces.get(interface as usize) else {
                return Some(Err(Error::UnknownInterface { record, interface }));
            };
            let time_ns = to_ns(ticks, iface.ticks_per_second);
            let link_type = iface.link_type;
            let data = match borrowed(data, record, offset) {
                Ok(data) => data,
                Err(e) => return Some(Err(e)),
            };
            let number = self.frame;
            self.frame += 1;
            return Some(Ok(Record { number, interface, link_type, time_ns, orig_len, data, comment }));
        }
        None
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Record<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let mut kind = self.kind.take()?;
        let result = match &mut kind {
            Kind::Pcap { parser, header } => Some(self.next_pcap(parser, header)),
            Kind::Pcapng { parser } => self.next_pcapng(parser),
        };
        self.kind = Some(kind);
        self.done = !matches!(result, Some(Ok(_)));
        result
    }
}

impl core::iter::FusedIterator for Reader<'_> {}

/// The byte slice a parser borrowed from the file. pcap-file's slice parsers always borrow; an owned copy would
/// mean a change in that crate, reported rather than hidden.
fn borrowed<'a>(data: Cow<'a, [u8]>, record: u64, offset: usize) -> Result<&'a [u8], Error> {
    match data {
        Cow::Borrowed(data) => Ok(data),
        Cow::Owned(_) => {
            Err(Error::Record { record, offset, reason: "invalid: the parser copied the frame".to_owned() })
        }
    }
}

/// The link type in the lower 16 bits; the upper ones may carry FCS information (draft-ietf-opsawg-pcap).
fn link_type(raw: u32) -> LinkType {
    LinkType((raw & 0xffff) as u16)
}

/// An interface description block's facts.
fn interface(idb: &InterfaceDescriptionBlock<'_>) -> Interface {
    let mut iface = Interface {
        link_type: link_type(u32::from(idb.linktype)),
        snaplen: idb.snaplen,
        name: None,
        description: None,
        ticks_per_second: 1_000_000,
    };
    for option in &idb.options {
        match option {
            InterfaceDescriptionOption::IfName(n) => iface.name = Some(n.to_string()),
            InterfaceDescriptionOption::IfDescription(d) => iface.description = Some(d.to_string()),
            InterfaceDescriptionOption::IfTsResol(r) => iface.ticks_per_second = ticks_per_second(*r),
            _ => {}
        }
    }
    iface
}

/// `if_tsresol`: the high bit chooses a power of two, the rest is the negative exponent. A resolution finer than
/// a nanosecond's powers that overflow is clamped, so a hostile option cannot make a division by zero.
fn ticks_per_second(resol: u8) -> u64 {
    let exp = u32::from(resol & 0x7f);
    let ticks = if resol & 0x80 == 0 { 10u64.checked_pow(exp) } else { 1u64.checked_shl(exp) };
    ticks.unwrap_or(u64::MAX).max(1)
}

/// Ticks of `ticks_per_second` to nanoseconds, saturating.
fn to_ns(ticks: u64, ticks_per_second: u64) -> u64 {
    let ns = u128::from(ticks) * 1_000_000_000 / u128::from(ticks_per_second.max(1));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_resolutions() {
        assert_eq!(ticks_per_second(6), 1_000_000);
        assert_eq!(ticks_per_second(9), 1_000_000_000);
        assert_eq!(ticks_per_second(0x80 | 10), 1024);
        assert_eq!(ticks_per_second(0xff), u64::MAX);
        assert_eq!(ticks_per_second(0x7f), u64::MAX);
        assert_eq!(to_ns(1_500_000, 1_000_000), 1_500_000_000);
        assert_eq!(to_ns(u64::MAX, 1), u64::MAX);
    }
}
