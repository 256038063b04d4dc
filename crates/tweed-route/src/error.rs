//! The error type of the route table.

use core::fmt;
use core::net::Ipv4Addr;

use crate::NextHopId;

/// Why a prefix could not be built or parsed, or a table operation was refused.
///
/// Errors carry structure, not prose: match on the variant and its fields; `Display` gives a lowercase message
/// with no trailing period. No operation of this crate panics on bad input: it returns one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// A prefix length above 32.
    PrefixLen {
        /// The length asked for.
        len: u8,
    },
    /// An address with bits set past the prefix length (`10.0.0.1/8`); see [`crate::Ipv4Prefix::new_masked`].
    HostBits {
        /// The address given.
        addr: Ipv4Addr,
        /// The prefix length given.
        len: u8,
    },
    /// Text that is not `a.b.c.d/len`.
    Syntax,
    /// A next-hop id above [`NextHopId::MAX`].
    NextHopOutOfRange {
        /// The id given.
        id: NextHopId,
    },
    /// A next-hop id that names no next hop in the table.
    UnknownNextHop {
        /// The id given.
        id: NextHopId,
    },
    /// A next hop that routes still point to cannot be removed.
    NextHopInUse {
        /// The next hop.
        id: NextHopId,
        /// How many routes point to it.
        routes: usize,
    },
    /// Every one of the [`NextHopId::MAX`]` + 1` next-hop ids is taken.
    NextHopsFull,
    /// Every tbl8 group (the second level, one group per /24 holding a prefix longer than /24) is taken; raise
    /// [`crate::Config::max_tbl8_groups`].
    Tbl8Exhausted {
        /// The configured number of groups.
        max_groups: u32,
    },
    /// A [`crate::Config`] value out of range.
    Config {
        /// The field that is out of range.
        field: &'static str,
        /// Its value.
        value: u32,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::PrefixLen { len } => write!(f, "prefix length {len} is over 32"),
            Self::HostBits { addr, len } => write!(f, "{addr}/{len} has host bits set"),
            Self::Syntax => f.write_str("not an ipv4 prefix (a.b.c.d/len)"),
            Self::NextHopOutOfRange { id } => {
                write!(f, "next-hop id {} is over the maximum {}", id.0, NextHopId::MAX.0)
            }
            Self::UnknownNextHop { id } => write!(f, "no next hop with id {}", id.0),
            Self::NextHopInUse { id, routes } => write!(f, "next hop {} is used by {routes} routes", id.0),
            Self::NextHopsFull => f.write_str("every next-hop id is taken"),
            Self::Tbl8Exhausted { max_groups } => write!(f, "all {max_groups} tbl8 groups are in use"),
            Self::Config { field, value } => write!(f, "config {field} = {value} is out of range"),
        }
    }
}

impl core::error::Error for Error {}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
