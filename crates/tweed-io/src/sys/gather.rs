//! Gathering writes: one frame made of several slices, for a TAP that takes a coalesced train as its headers
//! followed by each segment's payload where it lies, with no copy in userspace.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd};

use super::cvt_size;

/// One `writev(2)` of `parts` (at most `IOV_MAX` of them).
pub(crate) fn writev(fd: BorrowedFd<'_>, parts: &[IoSlice<'_>]) -> io::Result<usize> {
    let count = libc::c_int::try_from(parts.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `IoSlice` is ABI-compatible with `struct iovec` on Unix (std guarantees it); each points at a slice
    // the caller lends for the call, valid for reads of its length; `count` is the array's length.
    cvt_size(unsafe { libc::writev(fd.as_raw_fd(), parts.as_ptr().cast(), count) })
}
