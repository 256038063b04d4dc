//! The agent's signals without a handler or a process-wide flag: blocked, and read from a signalfd by a thread of
//! their own, which turns them into calls: a stop through a [`Stop`] handle, anything else through a callback.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::thread::JoinHandle;

use crate::driver::Stop;
use crate::error::{Error, Result};
use crate::sys;

/// The thread that reads SIGINT, SIGTERM and SIGUSR1; stopped and joined when dropped.
#[derive(Debug)]
pub struct Signals {
    /// Signalled to end the thread.
    quit: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

const TOKEN_SIGNAL: u64 = 0;
const TOKEN_QUIT: u64 = 1;

impl Signals {
    /// Blocks SIGINT, SIGTERM and SIGUSR1 in the calling thread and starts a thread that reads them from a
    /// signalfd: SIGINT and SIGTERM call `stop.stop()`, SIGUSR1 calls `on_usr1`.
    ///
    /// Threads inherit the calling thread's signal mask when they start: call this on the main thread before
    /// starting any other, so that no thread is left where such a signal would take its default action (ending
    /// the process). The signals stay blocked after the drop: a process that still runs then ignores them.
    ///
    /// # Errors
    /// [`Error::Io`] when the signals cannot be blocked, the signalfd, eventfd or epoll set cannot be made, or
    /// the thread cannot be started.
    pub fn start(stop: Stop, mut on_usr1: impl FnMut() + Send + 'static) -> Result<Self> {
        let signals = sys::signalfd(&[libc::SIGINT, libc::SIGTERM, libc::SIGUSR1])
            .map_err(|e| Error::io("blocking SIGINT, SIGTERM and SIGUSR1 for a signalfd", e))?;
        let quit = sys::eventfd().map_err(|e| Error::io("eventfd", e))?;
        let mut epoll = sys::Epoll::new().map_err(|e| Error::io("epoll_create", e))?;
        epoll.add(signals.as_raw_fd(), TOKEN_SIGNAL).map_err(|e| Error::io("watching the signalfd", e))?;
        epoll.add(quit.as_raw_fd(), TOKEN_QUIT).map_err(|e| Error::io("watching the eventfd", e))?;
        let thread = std::thread::Builder::new()
            .name("tweed-signals".into())
            .spawn(move || {
                loop {
                    let mut quit = false;
                    let mut got = false;
                    // An error of the wait itself (a bug): the thread ends rather than spin.
                    if epoll
                        .wait(-1, |t| match t {
                            TOKEN_QUIT => quit = true,
                            _ => got = true,
                        })
                        .is_err()
                        || quit
                    {
                        return;
                    }
                    while got && let Ok(Some(sig)) = sys::read_signal(signals.as_fd()) {
                        if sig == libc::SIGUSR1 {
                            on_usr1();
                        } else {
                            stop.stop();
                        }
                    }
                }
            })
            .map_err(|e| Error::io("starting the signal thread", e))?;
        Ok(Self { quit, thread: Some(thread) })
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        sys::eventfd_signal(self.quit.as_fd());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use super::*;

    /// The signal thread's id, found by its name (which the thread sets itself, once it runs).
    fn signal_thread() -> libc::pid_t {
        let find = || {
            std::fs::read_dir("/proc/self/task").ok()?.find_map(|e| {
                let e = e.ok()?;
                let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
                (comm.trim() == "tweed-signals").then(|| e.file_name().to_str()?.parse().ok())?
            })
        };
        let start = Instant::now();
        loop {
            if let Some(tid) = find() {
                return tid;
            }
            assert!(start.elapsed() < Duration::from_secs(2), "no tweed-signals thread");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGUSR1 calls the callback and does not stop; SIGTERM stops through the handle; the drop ends the thread.
    /// The signals go to the signal thread alone (libtest's other threads do not block them).
    #[test]
    fn signals_become_calls() {
        let stop = Stop::new().unwrap();
        let (tx, rx) = mpsc::channel();
        let signals = Signals::start(stop.clone(), move || {
            let _ = tx.send(());
        })
        .unwrap();
        let tid = signal_thread();
        sys::tgkill(tid, libc::SIGUSR1).unwrap();
        rx.recv_timeout(Duration::from_secs(2)).expect("SIGUSR1 did not call back");
        assert!(!stop.is_stopped());
        sys::tgkill(tid, libc::SIGTERM).unwrap();
        let start = Instant::now();
        while !stop.is_stopped() && start.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(stop.is_stopped(), "SIGTERM did not stop");
        assert!(rx.try_recv().is_err(), "SIGTERM is not SIGUSR1");
        drop(signals);
        assert!(std::fs::read_dir("/proc/self/task").unwrap().all(|e| {
            let comm = std::fs::read_to_string(e.unwrap().path().join("comm")).unwrap_or_default();
            comm.trim() != "tweed-signals"
        }));
    }
}
