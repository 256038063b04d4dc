//! The error type of every fallible buffer operation.

use core::fmt;

/// Why a buffer operation could not be done.
///
/// An operation that returns an `Error` has left the buffer as it was. Errors carry structure, not prose: match on
/// the variant and its fields; `Display` gives a lowercase message with no trailing period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// A push at the front asked for more bytes than the headroom holds.
    NoHeadroom {
        /// Bytes asked for.
        required: usize,
        /// Bytes of headroom there are.
        available: usize,
    },
    /// A push at the back asked for more bytes than the tailroom holds.
    NoTailroom {
        /// Bytes asked for.
        required: usize,
        /// Bytes of tailroom there are.
        available: usize,
    },
    /// A pull asked for more bytes than the data holds.
    ShortData {
        /// Bytes asked for.
        required: usize,
        /// Bytes of data there are.
        available: usize,
    },
    /// A headroom, or a received length, does not fit in the buffer: `available` is what the buffer (for a headroom)
    /// or its receive area (for a received length) can hold.
    TooLarge {
        /// Bytes asked for.
        required: usize,
        /// Bytes that fit.
        available: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, required, available) = match *self {
            Self::NoHeadroom { required, available } => ("not enough headroom", required, available),
            Self::NoTailroom { required, available } => ("not enough tailroom", required, available),
            Self::ShortData { required, available } => ("not enough data", required, available),
            Self::TooLarge { required, available } => ("does not fit in the buffer", required, available),
        };
        write!(f, "{what}: need {required} bytes, have {available}")
    }
}

impl std::error::Error for Error {}

/// `Result` with this crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_display() {
        let cases = [
            (Error::NoHeadroom { required: 50, available: 10 }, "not enough headroom: need 50 bytes, have 10"),
            (Error::NoTailroom { required: 4, available: 0 }, "not enough tailroom: need 4 bytes, have 0"),
            (Error::ShortData { required: 28, available: 27 }, "not enough data: need 28 bytes, have 27"),
            (
                Error::TooLarge { required: 4096, available: 2048 },
                "does not fit in the buffer: need 4096 bytes, have 2048",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn test_is_std_error() {
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Error::ShortData { required: 1, available: 0 });
        assert_eq!(boxed.to_string(), "not enough data: need 1 bytes, have 0");
    }
}
