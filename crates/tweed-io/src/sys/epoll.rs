//! `epoll(7)`, level-triggered: a driver registers each port once and is told which have input, for any
//! number of ports (`poll(2)` over a fixed array capped how many could be watched).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::cvt;

/// An epoll instance and room for the events of every descriptor registered in it.
#[derive(Debug)]
pub(crate) struct Epoll {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
    registered: usize,
}

impl Epoll {
    /// A new, empty instance.
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: plain epoll_create1(2); the result is checked.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: a descriptor we just created and own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd, events: Vec::new(), registered: 0 })
    }

    /// Watches `fd` for input (level-triggered: reported at every wait while input is left), reported as `token`.
    /// The event array grows here, never in [`Epoll::wait`].
    pub(crate) fn add(&mut self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: token };
        // SAFETY: EPOLL_CTL_ADD reads one `epoll_event`, alive for the call.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &raw mut ev) })?;
        self.registered += 1;
        if self.events.len() < self.registered {
            self.events.resize(self.registered, libc::epoll_event { events: 0, u64: 0 });
        }
        Ok(())
    }

    /// Stops watching `fd` (which must still be open).
    pub(crate) fn remove(&mut self, fd: RawFd) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: EPOLL_CTL_DEL ignores the event (kernels before 2.6.9 want it non-null); `ev` lives for the call.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &raw mut ev) })?;
        self.registered = self.registered.saturating_sub(1);
        Ok(())
    }

    /// Waits up to `timeout_ms` and calls `ready(token)` for each descriptor with input or an error to report.
    /// Returns how many; 0 on timeout or when a signal interrupted the wait.
    pub(crate) fn wait(&mut self, timeout_ms: i32, mut ready: impl FnMut(u64)) -> io::Result<usize> {
        let max = self.events.len().max(1).min(i32::MAX as usize);
        if self.events.is_empty() {
            self.events.push(libc::epoll_event { events: 0, u64: 0 });
        }
        // SAFETY: `events` holds `max` initialised `epoll_event`s the kernel may overwrite, alive for the call.
        let r = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), self.events.as_mut_ptr(), max as i32, timeout_ms) };
        match cvt(r) {
            Ok(n) => {
                let n = n as usize;
                for ev in &self.events[..n] {
                    ready(ev.u64);
                }
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    /// 300 sockets watched, input on the last one only: it is the one reported; removed, it is not.
    #[test]
    fn many_descriptors_input_on_the_last() {
        let socks: Vec<UdpSocket> = (0..300).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        let mut ep = Epoll::new().unwrap();
        for (i, s) in socks.iter().enumerate() {
            ep.add(s.as_raw_fd(), i as u64).unwrap();
        }
        let mut seen = Vec::new();
        assert_eq!(ep.wait(0, |t| seen.push(t)).unwrap(), 0);
        let last = socks.last().unwrap();
        last.send_to(b"x", last.local_addr().unwrap()).unwrap();
        assert_eq!(ep.wait(2000, |t| seen.push(t)).unwrap(), 1);
        assert_eq!(seen, [299]);
        // Level-triggered: still there until read.
        assert_eq!(ep.wait(0, |_| {}).unwrap(), 1);
        ep.remove(last.as_raw_fd()).unwrap();
        assert_eq!(ep.wait(0, |_| {}).unwrap(), 0);
    }
}
