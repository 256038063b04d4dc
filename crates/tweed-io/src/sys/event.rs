//! Wake-ups by descriptor: an `eventfd(2)` that another thread writes to end a driver's wait, and a
//! `signalfd(2)` that turns signals into input, so that neither needs a signal handler or a process-wide flag.
#![allow(unsafe_code)]

use std::io;
use std::mem::{MaybeUninit, size_of};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::cvt;

/// A new eventfd (counter 0, non-blocking).
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain eventfd(2); the result is checked.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    // SAFETY: a descriptor we just created and own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds 1 to an eventfd's counter: it reads as input until drained. Never blocks: a counter at its maximum
/// (`EAGAIN`) is readable already.
pub(crate) fn eventfd_signal(fd: BorrowedFd<'_>) {
    let one: u64 = 1;
    // SAFETY: writes the 8 bytes of `one`, alive for the call. A failure leaves the counter as it was: readable
    // (EAGAIN, at its maximum) or a bug (EBADF) that the owner's own wait reports.
    let _ = unsafe { libc::write(fd.as_raw_fd(), (&raw const one).cast(), size_of::<u64>()) };
}

/// Sets an eventfd's counter back to 0 (it stops reading as input).
pub(crate) fn eventfd_drain(fd: BorrowedFd<'_>) {
    let mut v: u64 = 0;
    // SAFETY: reads at most 8 bytes into `v`, alive for the call. EAGAIN: it was 0 already.
    let _ = unsafe { libc::read(fd.as_raw_fd(), (&raw mut v).cast(), size_of::<u64>()) };
}

/// A signal set of `signals`.
fn sigset(signals: &[libc::c_int]) -> io::Result<libc::sigset_t> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set it is given.
    cvt(unsafe { libc::sigemptyset(set.as_mut_ptr()) })?;
    // SAFETY: initialised just above.
    let mut set = unsafe { set.assume_init() };
    for &s in signals {
        // SAFETY: `set` is an initialised set; `s` is checked by the call.
        cvt(unsafe { libc::sigaddset(&raw mut set, s) })?;
    }
    Ok(set)
}

/// Blocks `signals` in the calling thread (threads it starts afterwards inherit that) and returns a signalfd
/// that reads them instead (non-blocking).
pub(crate) fn signalfd(signals: &[libc::c_int]) -> io::Result<OwnedFd> {
    let set = sigset(signals)?;
    // SAFETY: `set` is initialised; the old mask is not asked for. pthread_sigmask returns the error number.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    // SAFETY: -1 asks for a new descriptor; `set` is alive for the call.
    let fd = cvt(unsafe { libc::signalfd(-1, &raw const set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) })?;
    // SAFETY: a descriptor we just created and own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The next signal a signalfd holds, or `None` when it holds none.
pub(crate) fn read_signal(fd: BorrowedFd<'_>) -> io::Result<Option<libc::c_int>> {
    let mut info = MaybeUninit::<libc::signalfd_siginfo>::zeroed();
    let want = size_of::<libc::signalfd_siginfo>();
    // SAFETY: reads at most one `signalfd_siginfo` into `info`, alive for the call.
    let r = unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), want) };
    match super::cvt_size(r) {
        // SAFETY: zero-initialised, then written whole by the kernel.
        Ok(n) if n == want => Ok(Some(unsafe { info.assume_init_ref() }.ssi_signo as libc::c_int)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sends `sig` to thread `tid` of this process (a test's way to signal one thread, the others being libtest's).
#[cfg(test)]
pub(crate) fn tgkill(tid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: tgkill(2) takes plain integers; the result is checked.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, sig) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;
    use crate::sys::Epoll;

    /// An eventfd reads as input once signalled, as long as it is not drained, and not after.
    #[test]
    fn eventfd_wakes_until_drained() {
        let fd = eventfd().unwrap();
        let mut ep = Epoll::new().unwrap();
        ep.add(fd.as_raw_fd(), 7).unwrap();
        assert_eq!(ep.wait(0, |_| {}).unwrap(), 0);
        eventfd_signal(fd.as_fd());
        eventfd_signal(fd.as_fd());
        let mut seen = Vec::new();
        assert_eq!(ep.wait(1000, |t| seen.push(t)).unwrap(), 1);
        assert_eq!(ep.wait(0, |t| seen.push(t)).unwrap(), 1, "level-triggered: still there");
        assert_eq!(seen, [7, 7]);
        eventfd_drain(fd.as_fd());
        assert_eq!(ep.wait(0, |_| {}).unwrap(), 0);
    }
}
