//! The handles another thread holds on a driver: [`Stop`] ends its [`run`](super::Driver::run), [`Waker`] ends
//! its current wait. Each is an eventfd in the driver's epoll set, so a sleeping driver sees it at once, and
//! nothing is process-wide: each driver (or group of drivers) has its own.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::sys;

/// Stops one driver or several (each [`Driver::set_stop`](super::Driver::set_stop) with a clone): once
/// [`Stop::stop`] is called, every driver that holds it wakes and its [`run`](super::Driver::run) returns after
/// the round in progress. A stop is for good: its descriptor stays readable, so that each driver sees it.
#[derive(Clone, Debug)]
pub struct Stop(Arc<StopInner>);

#[derive(Debug)]
struct StopInner {
    fd: OwnedFd,
    stopped: AtomicBool,
}

impl Stop {
    /// A new handle, not stopped.
    ///
    /// # Errors
    /// [`Error::Io`] when the kernel gives no eventfd (out of descriptors).
    pub fn new() -> Result<Self> {
        let fd = sys::eventfd().map_err(|e| Error::io("eventfd", e))?;
        Ok(Self(Arc::new(StopInner { fd, stopped: AtomicBool::new(false) })))
    }

    /// Asks every driver holding this handle to stop, and wakes them. Async-signal-safe: an atomic store and a
    /// `write(2)`.
    pub fn stop(&self) {
        // The flag before the write: a driver woken by the write sees it set.
        self.0.stopped.store(true, Ordering::SeqCst);
        sys::eventfd_signal(self.0.fd.as_fd());
    }

    /// Whether [`Stop::stop`] was called.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.0.fd.as_raw_fd()
    }
}

/// The eventfd behind the handle, for an embedder's own event loop: it reads as input once the handle is
/// stopped (and stays so).
///
/// ```
/// use std::os::fd::AsFd;
///
/// let stop = tweed_io::Stop::new()?;
/// let _fd = stop.as_fd(); // poll it beside your sockets
/// stop.stop();
/// assert!(stop.is_stopped());
/// # Ok::<(), tweed_io::Error>(())
/// ```
impl AsFd for Stop {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.fd.as_fd()
    }
}

/// Wakes one driver from its wait, so that the code between its rounds (the hook of
/// [`run`](super::Driver::run)) runs now: for another thread with work for it (a control plane's news). Wakes
/// that come before the driver waits again count once. Give each driver its own.
#[derive(Clone, Debug)]
pub struct Waker(Arc<OwnedFd>);

impl Waker {
    /// A new waker, for [`Driver::set_waker`](super::Driver::set_waker).
    ///
    /// # Errors
    /// [`Error::Io`] when the kernel gives no eventfd (out of descriptors).
    pub fn new() -> Result<Self> {
        Ok(Self(Arc::new(sys::eventfd().map_err(|e| Error::io("eventfd", e))?)))
    }

    /// Ends the driver's current wait, or its next one if it is not waiting.
    pub fn wake(&self) {
        sys::eventfd_signal(self.0.as_fd());
    }

    /// Takes the wakes so far: the descriptor no longer reads as input.
    pub(crate) fn clear(&self) {
        sys::eventfd_drain(self.0.as_fd());
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// The eventfd behind the waker, for an embedder's own event loop: it reads as input after [`Waker::wake`] until
/// the wakes are taken (a driver takes them each round).
impl AsFd for Waker {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
