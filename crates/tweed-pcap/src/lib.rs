//! Capture files for tweed: classic pcap and pcapng, read and written through the maintained `pcap-file` crate.
//!
//! Every program of the code base that reads or writes a capture (the `tweed` command, the demo, `pcap replay`,
//! the tests, the examples and the benches) goes through this crate, so the format's corner cases are handled
//! once: both byte orders, microsecond and nanosecond timestamps, pcapng with several sections and interfaces,
//! each with its own link type and timestamp resolution, and packet comments.
//!
//! # Why a crate of its own
//! `tweed-wire` is `no_std` and allocation-free, and a file format with interface tables and comments is neither.
//! `tweed-packet` is the data path's buffer crate; a file format is not part of the data path. A small crate that
//! depends on no other tweed crate sits beside `tweed-wire` at the bottom of the layering, so any crate (or its
//! tests) may use it without pulling a file format into the data path.
//!
//! # Reading
//! [`Reader`] takes the whole file as a byte slice and yields [`Record`]s that borrow their bytes from it: no copy
//! per frame. A file that ends inside a record, a length that points past the end of the file or an unknown
//! interface is an [`Error`] naming the record and its byte offset; after an error the reader yields nothing more.
//!
//! ```
//! use tweed_pcap::{Format, Interface, LinkType, Reader, Writer};
//!
//! let mut file = Vec::new();
//! let mut w = Writer::new(&mut file, Format::Pcapng)?;
//! let port = w.add_interface(&Interface::ethernet("pod-a"))?;
//! w.write(port, 1_500_000_000, &[0u8; 60])?;
//! w.finish()?;
//!
//! let mut r = Reader::new(&file)?;
//! let record = r.next().expect("one record")?;
//! assert_eq!((record.number, record.time_ns, record.data.len()), (1, 1_500_000_000, 60));
//! assert_eq!(record.link_type, LinkType::ETHERNET);
//! assert_eq!(r.interfaces()[0].name.as_deref(), Some("pod-a"));
//! # Ok::<(), tweed_pcap::Error>(())
//! ```

mod error;
mod read;
mod write;

pub use error::Error;
pub use read::{Reader, Record};
pub use write::{Format, Writer};

/// A link-layer header type (the `LINKTYPE_*` numbers of the pcap and pcapng specifications).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u16);

impl LinkType {
    /// `LINKTYPE_ETHERNET`: Ethernet II frames, with or without 802.1Q tags.
    pub const ETHERNET: Self = Self(1);
    /// `LINKTYPE_RAW`: bare IPv4 or IPv6 packets (a TUN device's).
    pub const RAW: Self = Self(101);
    /// `LINKTYPE_LINUX_SLL`: Linux "cooked" captures (`tcpdump -i any`).
    pub const LINUX_SLL: Self = Self(113);
}

impl core::fmt::Display for LinkType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::ETHERNET => f.write_str("ethernet"),
            Self::RAW => f.write_str("raw ip"),
            Self::LINUX_SLL => f.write_str("linux cooked"),
            Self(n) => write!(f, "link type {n}"),
        }
    }
}

/// One capture point: a pcapng interface description, or the one implicit interface of a classic pcap file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// What the interface's frames start with.
    pub link_type: LinkType,
    /// The longest frame the capture kept (0: no limit was set).
    pub snaplen: u32,
    /// The interface's name (`if_name`), e.g. a port or device name.
    pub name: Option<String>,
    /// A longer description (`if_description`), e.g. which node and which side of it.
    pub description: Option<String>,
    /// Timestamp units per second (`if_tsresol`): 1 000 000 for microseconds, 1 000 000 000 for nanoseconds.
    pub ticks_per_second: u64,
}

impl Interface {
    /// An Ethernet capture point named `name`, no snap length, nanosecond timestamps.
    #[must_use]
    pub fn ethernet(name: &str) -> Self {
        Self {
            link_type: LinkType::ETHERNET,
            snaplen: 0,
            name: Some(name.to_owned()),
            description: None,
            ticks_per_second: 1_000_000_000,
        }
    }

    /// The same interface with a description.
    #[must_use]
    pub fn with_description(mut self, description: &str) -> Self {
        self.description = Some(description.to_owned());
        self
    }
}
