//! The capture files the CLI writes (`demo --pcap`, `pcap replay`): pcapng with one interface per capture point
//! (a pod's port, a node's underlay), or classic pcap on request, through `tweed_pcap`.

use std::collections::HashMap;
use std::io::{self, Write};

use clap::ValueEnum;
use tweed_pcap::{Format, Interface, Writer};

/// `--format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum FileFormat {
    /// pcapng: an interface description per port or capture point, nanosecond timestamps (Wireshark's default).
    #[default]
    Pcapng,
    /// Classic pcap, microsecond timestamps, one interface (what `tcpdump -w` writes).
    Pcap,
}

/// Writes frames to a capture, each on a named capture point.
pub(crate) struct PcapWriter {
    out: Writer<Box<dyn Write>>,
    /// Interface number of each capture point, by name.
    points: HashMap<String, u32>,
    /// The timestamp of the last frame, in microseconds: frames never go back in time.
    last_us: Option<u64>,
}

impl core::fmt::Debug for PcapWriter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PcapWriter").field("out", &self.out).finish_non_exhaustive()
    }
}

fn io_error(e: tweed_pcap::Error) -> io::Error {
    match e {
        tweed_pcap::Error::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidInput, other.to_string()),
    }
}

impl PcapWriter {
    /// A capture in `format` on `out` (a pcapng section header is written at once).
    pub(crate) fn new(out: Box<dyn Write>, format: FileFormat) -> io::Result<Self> {
        let format = match format {
            FileFormat::Pcapng => Format::Pcapng,
            FileFormat::Pcap => Format::Pcap,
        };
        Ok(Self { out: Writer::new(out, format).map_err(io_error)?, points: HashMap::new(), last_us: None })
    }

    /// Appends one Ethernet frame seen at `time_us` microseconds on the capture point `name` (described by
    /// `description` when it is first used). Frames recorded at the same instant get timestamps one microsecond
    /// apart, so a reader sorting by time keeps their order.
    pub(crate) fn write(&mut self, name: &str, description: &str, time_us: u64, frame: &[u8]) -> io::Result<()> {
        let time_us = match self.last_us {
            Some(last) if time_us <= last => last + 1,
            _ => time_us,
        };
        self.last_us = Some(time_us);
        let interface = match self.points.get(name) {
            Some(&id) => id,
            None => {
                let id = self
                    .out
                    .add_interface(&Interface::ethernet(name).with_description(description))
                    .map_err(io_error)?;
                self.points.insert(name.to_owned(), id);
                id
            }
        };
        let time_ns = time_us
            .checked_mul(1000)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "timestamp past 2554"))?;
        self.out.write(interface, time_ns, frame).map_err(io_error)
    }

    /// Flushes the file; how many frames it holds.
    pub(crate) fn finish(self) -> io::Result<u64> {
        let frames = self.out.frames();
        self.out.finish().map_err(io_error)?;
        Ok(frames)
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

    #[test]
    fn pcapng_has_one_interface_per_capture_point_and_monotonic_time() {
        let buf = Shared::default();
        let mut w = PcapWriter::new(Box::new(buf.clone()), FileFormat::Pcapng).expect("section");
        w.write("node1-pod1", "node 1, pod 1's port", 3_000_007, &[0xaa, 0xbb, 0xcc]).expect("first");
        // Same instant again, then an earlier one: both pushed one microsecond after the last.
        w.write("node1-underlay", "node 1's underlay", 3_000_007, &[0x01]).expect("second");
        w.write("node1-pod1", "unused: the point exists", 5, &[]).expect("third");
        assert_eq!(w.finish().expect("flush"), 3);
        let bytes = buf.0.borrow().clone();
        let mut r = tweed_pcap::Reader::new(&bytes).expect("section");
        let got: Vec<_> = r
            .by_ref()
            .map(|r| r.map(|r| (r.interface, r.time_ns, r.data.to_vec())))
            .collect::<Result<_, _>>()
            .expect("records");
        assert_eq!(
            got,
            [(0, 3_000_007_000, vec![0xaa, 0xbb, 0xcc]), (1, 3_000_008_000, vec![0x01]), (0, 3_000_009_000, vec![])]
        );
        let points: Vec<_> = r.interfaces().iter().map(|i| (i.name.clone(), i.description.clone())).collect();
        assert_eq!(
            points,
            [
                (Some("node1-pod1".into()), Some("node 1, pod 1's port".into())),
                (Some("node1-underlay".into()), Some("node 1's underlay".into()))
            ]
        );
    }

    #[test]
    fn classic_pcap_on_request() {
        let buf = Shared::default();
        let mut w = PcapWriter::new(Box::new(buf.clone()), FileFormat::Pcap).expect("pcap");
        w.write("a", "", 3_000_007, &[0xaa]).expect("first");
        w.write("b", "", 1, &[0xbb]).expect("second");
        assert_eq!(w.finish().expect("flush"), 2);
        let bytes = buf.0.borrow().clone();
        assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian microsecond pcap");
        let times: Vec<_> = tweed_pcap::Reader::new(&bytes)
            .expect("header")
            .map(|r| r.map(|r| r.time_ns))
            .collect::<Result<_, _>>()
            .expect("records");
        assert_eq!(times, [3_000_007_000, 3_000_008_000]);
    }
}
