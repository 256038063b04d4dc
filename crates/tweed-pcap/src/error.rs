//! What can be wrong with a capture file, or with writing one.

use std::io;

/// A capture that cannot be read, or a record that cannot be written.
#[derive(Debug)]
pub enum Error {
    /// The file is shorter than its format's header (24 bytes for pcap, 28 for pcapng).
    ShortHeader {
        /// The file's length.
        actual: usize,
    },
    /// The first four bytes are neither a pcap magic number nor a pcapng section header.
    Magic {
        /// The first four bytes.
        magic: [u8; 4],
    },
    /// The file header is there but does not parse (a version, a section header's fields).
    Header {
        /// What the parser said.
        reason: String,
    },
    /// A record (a pcap record, a pcapng block) does not parse: the file ends inside it, or a length lies.
    Record {
        /// The record's number from 1 (pcapng: the block's number, the section header being block 1).
        record: u64,
        /// The byte offset where the record starts.
        offset: usize,
        /// What is wrong, as a phrase after "is": `truncated: …` or `invalid: …`.
        reason: String,
    },
    /// A pcapng packet names an interface its section has not described.
    UnknownInterface {
        /// The record's number from 1.
        record: u64,
        /// The interface number the packet gives.
        interface: u32,
    },
    /// A classic pcap file holds one link type; an interface of another was added.
    MixedLinkTypes,
    /// A packet was written for an interface that was never added.
    NoInterface {
        /// The interface number given.
        interface: u32,
    },
    /// A frame longer than 4 GiB, or a timestamp a classic pcap file cannot hold (after 2106).
    TooLarge {
        /// Which value.
        what: &'static str,
    },
    /// Writing to the output failed.
    Io(io::Error),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::ShortHeader { actual } => write!(
                f,
                "not a pcap file: {actual} bytes, shorter than the 24-byte pcap file header (pcapng: 28 bytes)"
            ),
            Self::Magic { magic } => write!(
                f,
                "not a pcap file: magic {:02x}{:02x}{:02x}{:02x} is neither pcap (a1b2c3d4 or a1b23c4d, either byte \
                 order) nor pcapng (0a0d0d0a)",
                magic[0], magic[1], magic[2], magic[3]
            ),
            Self::Header { reason } => write!(f, "bad capture header: {reason}"),
            Self::Record { record, offset, reason } => write!(f, "record {record} at byte {offset} is {reason}"),
            Self::UnknownInterface { record, interface } => {
                write!(f, "record {record}: interface {interface} is not described in its section")
            }
            Self::MixedLinkTypes => f.write_str("a classic pcap file holds frames of one link type only"),
            Self::NoInterface { interface } => write!(f, "interface {interface} was never added to the capture"),
            Self::TooLarge { what } => write!(f, "{what} does not fit in the capture format"),
            Self::Io(e) => write!(f, "cannot write the capture: {e}"),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// The pcap-file error as text; an I/O error inside it (only from a writer) stays one.
pub(crate) fn from_pcap(e: pcap_file::PcapError) -> Error {
    match e {
        pcap_file::PcapError::IoError(e) => Error::Io(e),
        pcap_file::PcapError::IncompleteBuffer => {
            Error::Header { reason: "the file ends inside the header".to_owned() }
        }
        other => Error::Header { reason: other.to_string() },
    }
}

/// What is wrong with a record, in words.
pub(crate) fn record_reason(e: &pcap_file::PcapError) -> String {
    match e {
        pcap_file::PcapError::IncompleteBuffer => "truncated: the file ends inside it".to_owned(),
        other => format!("invalid: {other}"),
    }
}
