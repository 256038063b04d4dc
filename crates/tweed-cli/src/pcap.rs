//! A reader for classic pcap files (the format `tcpdump -w` writes), over a byte slice already in memory.
//!
//! Both byte orders and both timestamp resolutions (microsecond magic `a1b2c3d4`, nanosecond magic `a1b23c4d`) are
//! read; only link type 1 (Ethernet) is accepted, because every frame goes on to the Ethernet dissector. pcapng is
//! recognised and refused by name.
//!
//! The promise: no input makes the reader panic or read out of bounds. A file that is too short, has a wrong magic,
//! version or link type, or whose record header or record data runs past the end of the file yields an [`Error`]
//! naming the record (1-based, as Wireshark numbers frames) and its byte offset in the file. The record lengths are
//! never trusted: a record claiming 4 GiB in a 1 KiB file is a [`Error::RecordData`], not an allocation.

use core::fmt;

/// Length of the global file header.
pub(crate) const FILE_HEADER_LEN: usize = 24;
/// Length of each record's header.
pub(crate) const RECORD_HEADER_LEN: usize = 16;
/// `LINKTYPE_ETHERNET`.
pub(crate) const LINKTYPE_ETHERNET: u16 = 1;

/// Byte ranges of the file header and the record header.
mod field {
    pub(super) type Field = core::ops::Range<usize>;

    pub(super) const MAGIC: Field = 0..4;
    pub(super) const VERSION_MAJOR: Field = 4..6;
    pub(super) const VERSION_MINOR: Field = 6..8;
    pub(super) const LINK_TYPE: Field = 20..24;

    pub(super) const TS_SEC: Field = 0..4;
    pub(super) const TS_FRAC: Field = 4..8;

    pub(super) const INCL_LEN: Field = 8..12;
    pub(super) const ORIG_LEN: Field = 12..16;
}

/// The byte order the file was written in, told by its magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    /// Reads the `u32` at `range` of `bytes`; the caller has checked `bytes` is long enough.
    fn u32(self, bytes: &[u8], range: field::Field) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&bytes[range]);
        match self {
            Self::Little => u32::from_le_bytes(b),
            Self::Big => u32::from_be_bytes(b),
        }
    }

    /// Reads the `u16` at `range` of `bytes`; the caller has checked `bytes` is long enough.
    fn u16(self, bytes: &[u8], range: field::Field) -> u16 {
        let mut b = [0u8; 2];
        b.copy_from_slice(&bytes[range]);
        match self {
            Self::Little => u16::from_le_bytes(b),
            Self::Big => u16::from_be_bytes(b),
        }
    }
}

/// Why a file is not a readable classic Ethernet pcap file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Error {
    /// The file is shorter than the 24-byte file header.
    ShortHeader {
        /// The file's length.
        actual: usize,
    },
    /// The file is pcapng, which this reader does not read.
    Pcapng,
    /// The magic number is none of the four classic pcap ones.
    Magic {
        /// The first four bytes of the file.
        magic: [u8; 4],
    },
    /// The major version is not 2.
    Version {
        /// Major version.
        major: u16,
        /// Minor version.
        minor: u16,
    },
    /// The link type is not Ethernet.
    LinkType {
        /// The link type in the file header.
        link_type: u16,
    },
    /// The file ends inside a record header.
    RecordHeader {
        /// The record's number, from 1.
        record: u64,
        /// Its byte offset in the file.
        offset: usize,
        /// Bytes left in the file from that offset.
        actual: usize,
    },
    /// A record's captured length runs past the end of the file.
    RecordData {
        /// The record's number, from 1.
        record: u64,
        /// The byte offset of its header in the file.
        offset: usize,
        /// The captured length its header declares.
        declared: u32,
        /// Bytes of data left in the file after its header.
        actual: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ShortHeader { actual } => {
                write!(f, "not a pcap file: {actual} bytes, shorter than the {FILE_HEADER_LEN}-byte pcap file header")
            }
            Self::Pcapng => write!(f, "pcapng file: only classic pcap is read (convert with `editcap -F pcap`)"),
            Self::Magic { magic } => write!(
                f,
                "not a pcap file: magic {:02x}{:02x}{:02x}{:02x} is not a classic pcap magic \
                 (a1b2c3d4 or a1b23c4d, either byte order)",
                magic[0], magic[1], magic[2], magic[3]
            ),
            Self::Version { major, minor } => {
                write!(f, "unsupported pcap version {major}.{minor}: expected 2.x")
            }
            Self::LinkType { link_type } => {
                write!(f, "link type {link_type} is not Ethernet ({LINKTYPE_ETHERNET})")
            }
            Self::RecordHeader { record, offset, actual } => write!(
                f,
                "record {record} at byte {offset} is truncated: its header needs {RECORD_HEADER_LEN} bytes, \
                 the file has {actual} left"
            ),
            Self::RecordData { record, offset, declared, actual } => write!(
                f,
                "record {record} at byte {offset} is truncated: it declares {declared} captured bytes, \
                 the file has {actual} left"
            ),
        }
    }
}

impl core::error::Error for Error {}

/// One record of the file: the captured bytes of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    /// The record's number, from 1.
    pub(crate) number: u64,
    /// The frame's length on the wire, which is more than `data.len()` when the capture was snapped.
    pub(crate) orig_len: u32,
    /// When the frame was captured, in nanoseconds since the Unix epoch (microsecond files are scaled up).
    pub(crate) time_ns: u64,
    /// The captured bytes.
    pub(crate) data: &'a [u8],
}

/// The records of a classic pcap file, in order. After the first error it yields nothing more.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    endian: Endian,
    /// The timestamps' fractional part is in nanoseconds (magic `a1b23c4d`), not microseconds.
    nanos: bool,
    file: &'a [u8],
    offset: usize,
    next_record: u64,
    done: bool,
}

impl<'a> Reader<'a> {
    /// Checks the file header; the records are read lazily by iterating.
    pub(crate) fn new(file: &'a [u8]) -> Result<Self, Error> {
        let Some(header) = file.get(..FILE_HEADER_LEN) else {
            return Err(Error::ShortHeader { actual: file.len() });
        };
        let mut magic = [0u8; 4];
        magic.copy_from_slice(&header[field::MAGIC]);
        let (endian, nanos) = match magic {
            // Microsecond and nanosecond timestamps; the frames read the same either way.
            [0xd4, 0xc3, 0xb2, 0xa1] => (Endian::Little, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (Endian::Little, true),
            [0xa1, 0xb2, 0xc3, 0xd4] => (Endian::Big, false),
            [0xa1, 0xb2, 0x3c, 0x4d] => (Endian::Big, true),
            // The section header block type, the same in both byte orders.
            [0x0a, 0x0d, 0x0d, 0x0a] => return Err(Error::Pcapng),
            _ => return Err(Error::Magic { magic }),
        };
        let major = endian.u16(header, field::VERSION_MAJOR);
        let minor = endian.u16(header, field::VERSION_MINOR);
        if major != 2 {
            return Err(Error::Version { major, minor });
        }
        // The upper 16 bits may carry FCS information (draft-ietf-opsawg-pcap); the link type is the lower 16.
        let link_type = (endian.u32(header, field::LINK_TYPE) & 0xffff) as u16;
        if link_type != LINKTYPE_ETHERNET {
            return Err(Error::LinkType { link_type });
        }
        Ok(Self { endian, nanos, file, offset: FILE_HEADER_LEN, next_record: 1, done: false })
    }

    /// Reads the record at `self.offset`.
    fn read_record(&mut self) -> Result<Record<'a>, Error> {
        let record = self.next_record;
        let offset = self.offset;
        let rest = self.file.get(offset..).unwrap_or_default();
        let Some(header) = rest.get(..RECORD_HEADER_LEN) else {
            return Err(Error::RecordHeader { record, offset, actual: rest.len() });
        };
        let declared = self.endian.u32(header, field::INCL_LEN);
        let orig_len = self.endian.u32(header, field::ORIG_LEN);
        let frac = u64::from(self.endian.u32(header, field::TS_FRAC));
        let frac_ns = if self.nanos { frac } else { frac * 1000 };
        let time_ns = u64::from(self.endian.u32(header, field::TS_SEC)) * 1_000_000_000 + frac_ns;
        let body = &rest[RECORD_HEADER_LEN..];
        let data = usize::try_from(declared).ok().and_then(|len| body.get(..len));
        let Some(data) = data else {
            return Err(Error::RecordData { record, offset, declared, actual: body.len() });
        };
        self.offset = offset + RECORD_HEADER_LEN + data.len();
        self.next_record += 1;
        Ok(Record { number: record, orig_len, time_ns, data })
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Record<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.offset >= self.file.len() {
            return None;
        }
        let result = self.read_record();
        self.done = result.is_err();
        Some(result)
    }
}

impl core::iter::FusedIterator for Reader<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    static CAPTURE: &[u8] = include_bytes!("../../../tests/data/kernel-flannel-vxlan.pcap");

    /// The capture rewritten in big-endian byte order (and, optionally, with the nanosecond magic): every header
    /// field swapped, the frames untouched.
    fn to_big_endian(file: &[u8], nano: bool) -> Vec<u8> {
        let mut out = file.to_vec();
        let magic: u32 = if nano { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        out[0..4].copy_from_slice(&magic.to_be_bytes());
        out[4..6].reverse();
        out[6..8].reverse();
        for f in [8..12, 12..16, 16..20, 20..24] {
            out[f].reverse();
        }
        let mut offset = FILE_HEADER_LEN;
        while offset < out.len() {
            let len = u32::from_le_bytes(out[offset + 8..offset + 12].try_into().expect("4 bytes")) as usize;
            for f in 0..4 {
                out[offset + 4 * f..offset + 4 * f + 4].reverse();
            }
            offset += RECORD_HEADER_LEN + len;
        }
        out
    }

    fn frames(file: &[u8]) -> Result<Vec<&[u8]>, Error> {
        Reader::new(file)?.map(|r| r.map(|r| r.data)).collect()
    }

    #[test]
    fn reads_the_kernel_capture() {
        let records: Vec<Record<'_>> =
            Reader::new(CAPTURE).expect("header").collect::<Result<_, _>>().expect("records");
        assert_eq!(records.len(), 40);
        assert_eq!(records[0].number, 1);
        assert_eq!(records[0].data.len(), 0x94);
        assert_eq!(records[0].orig_len, 0x94);
        // Frame 1 starts with the outer destination MAC of the flannel.1 peer.
        assert_eq!(&records[0].data[..6], &[0x62, 0xf5, 0xf9, 0xf2, 0x75, 0x3e]);
        assert_eq!(records.last().map(|r| r.number), Some(40));
        // Timestamps: seconds 1795355138, microseconds 175568 (first) and 893585 (last), in nanoseconds.
        assert_eq!(records[0].time_ns, 1_795_355_138_175_568_000);
        assert_eq!(records.last().map(|r| r.time_ns), Some(1_795_355_138_893_585_000));
        let total: usize = records.iter().map(|r| RECORD_HEADER_LEN + r.data.len()).sum();
        assert_eq!(FILE_HEADER_LEN + total, CAPTURE.len());
    }

    #[test]
    fn both_byte_orders_and_resolutions_read_the_same_frames() {
        let little = frames(CAPTURE).expect("little-endian");
        let mut nano_le = CAPTURE.to_vec();
        nano_le[0..4].copy_from_slice(&0xa1b2_3c4d_u32.to_le_bytes());
        assert_eq!(frames(&nano_le).expect("little-endian nanosecond"), little);
        assert_eq!(frames(&to_big_endian(CAPTURE, false)).expect("big-endian"), little);
        assert_eq!(frames(&to_big_endian(CAPTURE, true)).expect("big-endian nanosecond"), little);
        // The nanosecond magic reads the fraction as nanoseconds: 175568 ns after the second.
        let first_ns =
            |file: &[u8]| Reader::new(file).ok().and_then(|mut r| r.next()).and_then(Result::ok).map(|r| r.time_ns);
        assert_eq!(first_ns(&nano_le), Some(1_795_355_138_000_175_568));
        assert_eq!(first_ns(&to_big_endian(CAPTURE, true)), Some(1_795_355_138_000_175_568));
        assert_eq!(first_ns(&to_big_endian(CAPTURE, false)), Some(1_795_355_138_175_568_000));
    }

    #[test]
    fn header_errors() {
        assert_eq!(Reader::new(&CAPTURE[..23]).err(), Some(Error::ShortHeader { actual: 23 }));
        assert_eq!(Reader::new(&[]).err(), Some(Error::ShortHeader { actual: 0 }));

        let mut ng = CAPTURE[..24].to_vec();
        ng[0..4].copy_from_slice(&[0x0a, 0x0d, 0x0d, 0x0a]);
        assert_eq!(Reader::new(&ng).err(), Some(Error::Pcapng));

        let text = b"this is a text file, not a capture at all\n";
        assert_eq!(Reader::new(text).err(), Some(Error::Magic { magic: *b"this" }));

        let mut v = CAPTURE[..24].to_vec();
        v[4] = 1;
        assert_eq!(Reader::new(&v).err(), Some(Error::Version { major: 1, minor: 4 }));

        let mut raw_ip = CAPTURE[..24].to_vec();
        raw_ip[20] = 101;
        assert_eq!(Reader::new(&raw_ip).err(), Some(Error::LinkType { link_type: 101 }));

        // FCS bits above the link type do not change it.
        let mut fcs = CAPTURE.to_vec();
        fcs[23] = 0x10;
        assert_eq!(frames(&fcs).map(|f| f.len()), Ok(40));

        // A header alone is an empty capture.
        assert_eq!(frames(&CAPTURE[..24]), Ok(vec![]));
    }

    #[test]
    fn every_truncation_is_an_exact_error_or_a_record_boundary() {
        let full = frames(CAPTURE).expect("capture");
        // Record offsets: where each record's header starts.
        let mut starts = vec![];
        let mut at = FILE_HEADER_LEN;
        for f in &full {
            starts.push(at);
            at += RECORD_HEADER_LEN + f.len();
        }
        starts.push(at);
        for cut in FILE_HEADER_LEN..CAPTURE.len() {
            let got = frames(&CAPTURE[..cut]);
            // The record the cut falls in, from 1.
            let i = starts.iter().rposition(|&s| s <= cut).expect("cut after the file header");
            if starts[i] == cut {
                assert_eq!(got, Ok(full[..i].to_vec()), "cut {cut} at a record boundary");
                continue;
            }
            let record = i as u64 + 1;
            let offset = starts[i];
            let left = cut - offset;
            let expected = if left < RECORD_HEADER_LEN {
                Error::RecordHeader { record, offset, actual: left }
            } else {
                Error::RecordData { record, offset, declared: full[i].len() as u32, actual: left - RECORD_HEADER_LEN }
            };
            assert_eq!(got, Err(expected), "cut {cut}");
        }
    }

    #[test]
    fn lying_lengths_are_errors_not_allocations() {
        let mut huge = CAPTURE[..24 + 16 + 0x94].to_vec();
        huge[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut r = Reader::new(&huge).expect("header");
        assert_eq!(r.next(), Some(Err(Error::RecordData { record: 1, offset: 24, declared: u32::MAX, actual: 0x94 })));
        assert_eq!(r.next(), None, "fused after an error");
    }

    #[test]
    fn corrupt_header_bytes_never_panic() {
        // Every byte of the file header and of the first two record headers set to each of a few hostile values:
        // the reader returns frames or an error, and the frames it returns lie inside the file.
        let file = &CAPTURE[..FILE_HEADER_LEN + 2 * (RECORD_HEADER_LEN + 0x94)];
        let positions = (0..FILE_HEADER_LEN + RECORD_HEADER_LEN)
            .chain(FILE_HEADER_LEN + RECORD_HEADER_LEN + 0x94..FILE_HEADER_LEN + 2 * RECORD_HEADER_LEN + 0x94);
        let mut errors = 0;
        for at in positions {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut bad = file.to_vec();
                bad[at] = value;
                match Reader::new(&bad).map(|r| r.collect::<Result<Vec<_>, _>>()) {
                    Ok(Ok(records)) => {
                        let total: usize = records.iter().map(|r| RECORD_HEADER_LEN + r.data.len()).sum();
                        assert!(FILE_HEADER_LEN + total <= bad.len(), "byte {at} = {value:#x}");
                    }
                    Ok(Err(_)) | Err(_) => errors += 1,
                }
            }
        }
        // Magic, version, link type and record lengths are checked, so many of these corruptions are caught.
        assert!(errors > 20, "{errors}");
    }

    #[test]
    fn messages_name_the_record_and_what_is_wrong() {
        let e = Error::RecordData { record: 7, offset: 1000, declared: 148, actual: 20 };
        assert_eq!(
            e.to_string(),
            "record 7 at byte 1000 is truncated: it declares 148 captured bytes, the file has 20 left"
        );
        assert!(Error::Magic { magic: *b"this" }.to_string().contains("74686973"));
    }
}
