//! What can go wrong at the edges, said so that a person can act on it.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a device, socket or driver could not be set up, or failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The process lacks `CAP_NET_ADMIN` (or `CAP_NET_RAW`) for `what`.
    Privilege {
        /// What was refused, e.g. "creating TAP device eth0".
        what: String,
    },
    /// A device of that name exists already.
    Exists {
        /// The device's name.
        name: String,
        /// The namespace it is in (`None`: the process's own).
        netns: Option<PathBuf>,
    },
    /// No interface has that name.
    NoSuchInterface {
        /// The name.
        name: String,
        /// The namespace looked in (`None`: the process's own).
        netns: Option<PathBuf>,
    },
    /// The network namespace does not exist (no such file under `/var/run/netns`).
    NoSuchNetns(PathBuf),
    /// The address cannot be bound (in use, or not an address of this host).
    Bind {
        /// The address.
        addr: std::net::SocketAddrV4,
        /// The kernel's reason.
        source: io::Error,
    },
    /// Any other system call failure, with what was being done.
    Io {
        /// What was being done.
        what: String,
        /// The kernel's reason.
        source: io::Error,
    },
}

impl Error {
    /// Wraps an `io::Error` with what was being done; a permission error becomes [`Error::Privilege`].
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        let what = what.into();
        if source.kind() == io::ErrorKind::PermissionDenied {
            Self::Privilege { what }
        } else {
            Self::Io { what, source }
        }
    }
}

fn ns(netns: Option<&PathBuf>) -> String {
    netns.map_or_else(String::new, |p| format!(" in network namespace {}", p.display()))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Privilege { what } => {
                write!(f, "{what}: operation not permitted (needs CAP_NET_ADMIN: run as root, or grant it with setcap)")
            }
            Self::Exists { name, netns } => {
                write!(
                    f,
                    "device {name} exists already{}: pick another name or delete it (ip link del {name})",
                    ns(netns.as_ref())
                )
            }
            Self::NoSuchInterface { name, netns } => write!(f, "no interface named {name}{}", ns(netns.as_ref())),
            Self::NoSuchNetns(p) => write!(f, "network namespace {} does not exist (ip netns add)", p.display()),
            Self::Bind { addr, source } => write!(f, "cannot bind {addr}: {source}"),
            Self::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Bind { source, .. } | Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
