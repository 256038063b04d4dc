//! A classic pcap writer (the format `tcpdump -w` writes): microsecond timestamps, little-endian, Ethernet link
//! type, every frame whole.

use std::io::{self, Write};

/// The classic pcap magic number for microsecond timestamps.
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// `LINKTYPE_ETHERNET`.
const LINKTYPE_ETHERNET: u32 = 1;
/// The snapshot length the header announces: no frame the demo or a replay writes is longer.
pub(crate) const SNAPLEN: u32 = 65_535;

/// Writes frames to a pcap stream.
pub(crate) struct PcapWriter {
    out: Box<dyn Write>,
    /// The timestamp of the last record, in microseconds: records never go back in time.
    last_us: Option<u64>,
    frames: u64,
}

impl core::fmt::Debug for PcapWriter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PcapWriter").field("frames", &self.frames).finish_non_exhaustive()
    }
}

impl PcapWriter {
    /// Writes the file header to `out`.
    pub(crate) fn new(mut out: Box<dyn Write>) -> io::Result<Self> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&MAGIC_MICROS.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs (8..16) are zero.
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        Ok(Self { out, last_us: None, frames: 0 })
    }

    /// Appends one frame seen at `time_us` microseconds. Frames recorded at the same instant get timestamps one
    /// microsecond apart, so a reader sorting by time keeps their order.
    pub(crate) fn write(&mut self, time_us: u64, frame: &[u8]) -> io::Result<()> {
        let time_us = match self.last_us {
            Some(last) if time_us <= last => last + 1,
            _ => time_us,
        };
        self.last_us = Some(time_us);
        let len = u32::try_from(frame.len())
            .ok()
            .filter(|&n| n <= SNAPLEN)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame longer than the snapshot length"))?;
        let secs = u32::try_from(time_us / 1_000_000)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "timestamp past 2106"))?;
        // The remainder is below 1_000_000: it fits.
        let micros = (time_us % 1_000_000) as u32;
        let mut record = [0u8; 16];
        record[0..4].copy_from_slice(&secs.to_le_bytes());
        record[4..8].copy_from_slice(&micros.to_le_bytes());
        record[8..12].copy_from_slice(&len.to_le_bytes());
        record[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&record)?;
        self.out.write_all(frame)?;
        self.frames += 1;
        Ok(())
    }

    /// Flushes the stream.
    pub(crate) fn finish(mut self) -> io::Result<u64> {
        self.out.flush()?;
        Ok(self.frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A `Write` whose bytes the test can still read after the writer took it.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The header `tcpdump -w` writes on a little-endian machine for an Ethernet capture with snaplen 65535.
    static HEADER: [u8; 24] = [
        0xd4, 0xc3, 0xb2, 0xa1, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
        0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn test_header_bytes() {
        let buf = Shared::default();
        let w = PcapWriter::new(Box::new(buf.clone())).expect("header");
        assert_eq!(w.finish().expect("flush"), 0);
        assert_eq!(buf.0.borrow().as_slice(), &HEADER);
    }

    #[test]
    fn test_record_bytes_and_monotonic_time() {
        let buf = Shared::default();
        let mut w = PcapWriter::new(Box::new(buf.clone())).expect("header");
        w.write(3_000_007, &[0xaa, 0xbb, 0xcc]).expect("first");
        // Same instant again, then an earlier one: both pushed one microsecond after the last.
        w.write(3_000_007, &[0x01]).expect("second");
        w.write(5, &[]).expect("third");
        assert_eq!(w.finish().expect("flush"), 3);
        let bytes = buf.0.borrow().clone();
        assert_eq!(&bytes[24..24 + 19], &[3, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0, 0xaa, 0xbb, 0xcc]);
        assert_eq!(&bytes[43..43 + 17], &[3, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0x01]);
        assert_eq!(&bytes[60..], &[3, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

        // The CLI's own reader reads it back.
        let records: Vec<_> = crate::pcap::Reader::new(&bytes)
            .expect("header parses")
            .map(|r| r.map(|r| r.data.to_vec()))
            .collect::<Result<_, _>>()
            .expect("records parse");
        assert_eq!(records, [vec![0xaa, 0xbb, 0xcc], vec![0x01], vec![]]);
    }

    #[test]
    fn test_oversized_frame_refused() {
        let mut w = PcapWriter::new(Box::new(io::sink())).expect("header");
        let e = w.write(0, &vec![0; SNAPLEN as usize + 1]).expect_err("too long");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(w.finish().expect("flush"), 0);
    }
}
