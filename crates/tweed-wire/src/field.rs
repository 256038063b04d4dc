//! Byte-range types shared by the `field` modules of each protocol.

/// A fixed range of bytes inside a header.
pub(crate) type Field = core::ops::Range<usize>;
/// Everything from an offset to the end of the buffer.
pub(crate) type Rest = core::ops::RangeFrom<usize>;
