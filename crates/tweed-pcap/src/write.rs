//! Writing a capture: pcapng with one interface description per capture point, or classic pcap on request.

use std::borrow::Cow;
use std::io::Write;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapWriter, RawPcapPacket};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::{DataLink, Endianness, TsResolution};

use crate::error::{self, Error};
use crate::{Interface, LinkType};

/// The snapshot length a classic pcap header announces, and a pcapng interface whose own is 0.
const SNAPLEN: u32 = 262_144;

/// Which file format a [`Writer`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// pcapng: an interface description per capture point (its name and description), nanosecond timestamps,
    /// packet comments. What Wireshark writes by default.
    #[default]
    Pcapng,
    /// Classic pcap, little-endian, microsecond timestamps: what `tcpdump -w` writes. One link type per file;
    /// the interfaces' names and the packets' comments are not kept.
    Pcap,
}

enum Inner<W: Write> {
    /// A classic pcap file writes its header with the first interface's link type: until then, the output.
    PcapPending(W),
    Pcap(PcapWriter<W>, LinkType),
    Pcapng(PcapNgWriter<W>),
    /// A header write failed; the output was consumed by the attempt.
    Failed,
}

/// Writes frames to a capture file.
pub struct Writer<W: Write> {
    inner: Inner<W>,
    /// The link type of each interface added, by number.
    interfaces: Vec<LinkType>,
    frames: u64,
}

impl<W: Write> core::fmt::Debug for Writer<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Writer").field("interfaces", &self.interfaces).field("frames", &self.frames).finish()
    }
}

impl<W: Write> Writer<W> {
    /// A writer of `format` to `out`. A pcapng section header is written at once; a classic pcap file header
    /// waits for the first interface, whose link type it names.
    ///
    /// # Errors
    /// An I/O error writing the section header.
    pub fn new(out: W, format: Format) -> Result<Self, Error> {
        let inner = match format {
            Format::Pcap => Inner::PcapPending(out),
            Format::Pcapng => {
                let section = SectionHeaderBlock {
                    endianness: Endianness::Little,
                    options: vec![SectionHeaderOption::UserApplication(Cow::Borrowed(concat!(
                        "tweed ",
                        env!("CARGO_PKG_VERSION")
                    )))],
                    ..SectionHeaderBlock::default()
                };
                Inner::Pcapng(PcapNgWriter::with_section_header(out, section).map_err(error::from_pcap)?)
            }
        };
        Ok(Self { inner, interfaces: Vec::new(), frames: 0 })
    }

    /// How many frames were written.
    #[must_use]
    pub const fn frames(&self) -> u64 {
        self.frames
    }

    /// Adds a capture point; its number is what [`write`](Self::write) takes. pcapng keeps its name, description
    /// and link type; its timestamps are written in nanoseconds whatever `ticks_per_second` says (that field
    /// tells what a file read had).
    ///
    /// # Errors
    /// An I/O error; in a classic pcap file, a link type other than the first interface's.
    pub fn add_interface(&mut self, interface: &Interface) -> Result<u32, Error> {
        let id = u32::try_from(self.interfaces.len()).map_err(|_| Error::TooLarge { what: "interface count" })?;
        match core::mem::replace(&mut self.inner, Inner::Failed) {
            Inner::PcapPending(out) => {
                let header = PcapHeader {
                    snaplen: SNAPLEN,
                    datalink: DataLink::from(u32::from(interface.link_type.0)),
                    ts_resolution: TsResolution::MicroSecond,
                    endianness: Endianness::Little,
                    ..PcapHeader::default()
                };
                self.inner =
                    Inner::Pcap(PcapWriter::with_header(out, header).map_err(error::from_pcap)?, interface.link_type);
            }
            Inner::Pcap(w, link) => {
                self.inner = Inner::Pcap(w, link);
                if link != interface.link_type {
                    return Err(Error::MixedLinkTypes);
                }
            }
            Inner::Pcapng(mut w) => {
                let result = w.write_pcapng_block(idb(interface)).map_err(error::from_pcap);
                self.inner = Inner::Pcapng(w);
                result?;
            }
            Inner::Failed => return Err(Error::Io(std::io::Error::other("an earlier header write failed"))),
        }
        self.interfaces.push(interface.link_type);
        Ok(id)
    }

    /// Appends a whole frame captured on `interface` at `time_ns` nanoseconds since the Unix epoch.
    ///
    /// # Errors
    /// An I/O error, an interface never added, a frame over 4 GiB or (classic pcap) a time after 2106.
    pub fn write(&mut self, interface: u32, time_ns: u64, frame: &[u8]) -> Result<(), Error> {
        self.write_with(interface, time_ns, frame, None, None)
    }

    /// Appends a frame with its length on the wire (when it was snapped to `frame`) and a comment (pcapng only).
    ///
    /// # Errors
    /// As [`write`](Self::write).
    pub fn write_with(
        &mut self,
        interface: u32,
        time_ns: u64,
        frame: &[u8],
        orig_len: Option<u32>,
        comment: Option<&str>,
    ) -> Result<(), Error> {
        if interface as usize >= self.interfaces.len() {
            return Err(Error::NoInterface { interface });
        }
        let len = u32::try_from(frame.len()).map_err(|_| Error::TooLarge { what: "frame length" })?;
        let orig_len = orig_len.unwrap_or(len).max(len);
        match &mut self.inner {
            Inner::Pcap(w, _) => {
                let ts_sec = u32::try_from(time_ns / 1_000_000_000)
                    .map_err(|_| Error::TooLarge { what: "timestamp (after 2106)" })?;
                // Below 1_000_000: it fits.
                let ts_frac = ((time_ns % 1_000_000_000) / 1000) as u32;
                let raw = RawPcapPacket { ts_sec, ts_frac, incl_len: len, orig_len, data: Cow::Borrowed(frame) };
                w.write_raw_packet(&raw).map_err(error::from_pcap)?;
            }
            Inner::Pcapng(w) => {
                let options = comment.map(|c| EnhancedPacketOption::Comment(Cow::Borrowed(c))).into_iter().collect();
                let epb = EnhancedPacketBlock {
                    interface_id: interface,
                    // Written as nanosecond ticks, the resolution every interface here announces.
                    timestamp: Duration::from_nanos(time_ns),
                    original_len: orig_len,
                    data: Cow::Borrowed(frame),
                    options,
                };
                w.write_pcapng_block(epb).map_err(error::from_pcap)?;
            }
            Inner::PcapPending(_) | Inner::Failed => return Err(Error::NoInterface { interface }),
        }
        self.frames += 1;
        Ok(())
    }

    /// Flushes the output and hands it back; a classic pcap file with no interface gets its header (Ethernet).
    ///
    /// # Errors
    /// An I/O error.
    pub fn finish(mut self) -> Result<W, Error> {
        if matches!(self.inner, Inner::PcapPending(_)) {
            let _ = self.add_interface(&Interface::ethernet(""))?;
        }
        let mut out = match self.inner {
            Inner::Pcap(w, _) => w.into_writer(),
            Inner::Pcapng(w) => w.into_inner(),
            Inner::PcapPending(_) | Inner::Failed => {
                return Err(Error::Io(std::io::Error::other("an earlier header write failed")));
            }
        };
        out.flush()?;
        Ok(out)
    }
}

/// The interface description block of `interface`: its name, description, link type and nanosecond resolution.
fn idb(interface: &Interface) -> InterfaceDescriptionBlock<'_> {
    let mut options = Vec::new();
    if let Some(name) = &interface.name {
        options.push(InterfaceDescriptionOption::IfName(Cow::Borrowed(name)));
    }
    if let Some(description) = &interface.description {
        options.push(InterfaceDescriptionOption::IfDescription(Cow::Borrowed(description)));
    }
    options.push(InterfaceDescriptionOption::IfTsResol(9));
    InterfaceDescriptionBlock {
        linktype: DataLink::from(u32::from(interface.link_type.0)),
        snaplen: if interface.snaplen == 0 { SNAPLEN } else { interface.snaplen },
        options,
    }
}
