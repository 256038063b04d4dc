//! Batched TAP reads with io_uring: N reads stay in the ring, each into a buffer of its own, and one
//! `io_uring_enter` hands on every frame they took since the last one, where a `read` loop makes one system call
//! per frame (a TAP has no `recvmmsg`).
//!
//! A read the TAP cannot serve at once waits in the ring (the kernel arms a poll for it) and takes a frame as
//! soon as one is queued, so the reads are not re-submitted for nothing; frames are handed on in the order the
//! kernel completed the reads, which is the order they took the TAP's frames. Every buffer has a read in the
//! ring or a frame not handed on yet, so the ring's descriptor, readable when completions wait, is the one a
//! driver polls for this port.
//!
//! Not wired into the driver yet: the port trait's TAP receive takes it (see the helper's report).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use io_uring::{IoUring, opcode, types};

/// What a buffer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// Nothing: a read may be submitted into it.
    Free,
    /// A read in the ring writes into it.
    Reading,
    /// A frame of this length, not handed on yet.
    Ready(usize),
}

/// N reads on one TAP queue, N buffers of `buf_len` bytes.
pub(crate) struct TapReader {
    ring: IoUring,
    /// A duplicate of the TAP queue's descriptor: the reads in the ring never name a descriptor closed under them.
    fd: OwnedFd,
    bufs: Box<[u8]>,
    buf_len: usize,
    slots: Box<[Slot]>,
    /// Buffers holding frames, in the order the reads completed: `ready[head..head + count]` (mod depth).
    ready: Box<[u16]>,
    head: usize,
    count: usize,
    /// `io_uring_enter` calls made (for the benchmark's system calls per packet).
    enters: u64,
}

impl std::fmt::Debug for TapReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapReader").field("depth", &self.slots.len()).field("buf_len", &self.buf_len).finish()
    }
}

impl TapReader {
    /// A reader of `depth` buffers of `buf_len` bytes (the largest frame, virtio-net header included) on the TAP
    /// queue `fd`, which must be non-blocking (a tweed `Device` is; a blocking one is refused).
    ///
    /// # Errors
    /// The kernel's (`ENOSYS` or `EPERM` where io_uring is not there or not allowed), `InvalidInput` for a
    /// blocking descriptor, a `depth` of 0 or above 4096, or a `buf_len` of 0 or above `u32::MAX`.
    pub(crate) fn new(fd: BorrowedFd<'_>, depth: usize, buf_len: usize) -> io::Result<Self> {
        if depth == 0 || depth > 4096 || buf_len == 0 || u32::try_from(buf_len).is_err() {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: F_GETFL on a descriptor the caller lends for the call; no memory is passed.
        let flags = super::cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
        if flags & libc::O_NONBLOCK == 0 {
            // A blocking read would run on a kernel worker, holding it until a frame comes.
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // Room for every read and the cancellation on drop.
        let ring = IoUring::new((depth as u32 + 1).next_power_of_two())?;
        let mut reader = Self {
            ring,
            fd: fd.try_clone_to_owned()?,
            bufs: vec![0u8; depth * buf_len].into_boxed_slice(),
            buf_len,
            slots: vec![Slot::Free; depth].into_boxed_slice(),
            ready: vec![0u16; depth].into_boxed_slice(),
            head: 0,
            count: 0,
            enters: 0,
        };
        // Every buffer gets its read now: the ring's descriptor tells of frames from the start.
        reader.submit_free()?;
        Ok(reader)
    }

    /// The `io_uring_enter` calls made so far.
    pub(crate) const fn enters(&self) -> u64 {
        self.enters
    }

    /// The descriptor to poll: readable when reads have completed.
    pub(crate) fn ring_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the ring's descriptor lives as long as the ring, a field of self, which the borrow outlives not.
        unsafe { BorrowedFd::borrow_raw(self.ring.as_raw_fd()) }
    }

    /// Hands on at most `max` frames the TAP gave, oldest first, to `frame` (mutable: a caller may finish a
    /// checksum in place), and puts a read back into the ring for every buffer handed on, in as many system calls
    /// as rounds of reads found frames (one when the TAP is drained). Returns how many; 0 when none was
    /// waiting. When it returns `max`, more frames may wait in their buffers: call again before waiting for
    /// [`TapReader::ring_fd`], which tells only of reads completed after this call.
    ///
    /// # Errors
    /// The kernel's, from the submission or from a read (when no frame was handed on).
    pub(crate) fn read_batch(&mut self, max: usize, mut frame: impl FnMut(&mut [u8])) -> io::Result<usize> {
        let mut got = 0;
        let mut error = None;
        loop {
            error = error.or(self.reap());
            got += self.deliver(max - got, &mut frame);
            // A read that failed is not put back at once: a descriptor that fails every read would spin here.
            if error.is_some() || !self.submit_free()? || self.ring.completion().is_empty() {
                break;
            }
        }
        match error {
            Some(e) if got == 0 => Err(e),
            _ => Ok(got),
        }
    }

    /// Submits a read into every free buffer, in one system call (which also runs the kernel's pending work of
    /// the ring, posting the completions of reads that found frames). `Ok(false)`: no buffer was free.
    fn submit_free(&mut self) -> io::Result<bool> {
        let fd = types::Fd(self.fd.as_raw_fd());
        let len = self.buf_len as u32;
        let base = self.bufs.as_mut_ptr();
        let mut pushed = 0;
        {
            let mut sq = self.ring.submission();
            for (i, slot) in self.slots.iter_mut().enumerate().filter(|(_, s)| **s == Slot::Free) {
                // SAFETY: buffer i lies inside `bufs` (i < depth, depth * buf_len bytes).
                let ptr = unsafe { base.add(i * self.buf_len) };
                let read = opcode::Read::new(fd, ptr, len).build().user_data(i as u64);
                // SAFETY: the read names our own descriptor and buffer i, which nothing reads or writes until its
                // completion is reaped (the slot stays `Reading` until then) and which outlives the read (Drop
                // cancels the reads and waits for them, or leaks the buffers); the ring has room for all.
                if unsafe { sq.push(&read) }.is_err() {
                    break;
                }
                *slot = Slot::Reading;
                pushed += 1;
            }
        }
        if pushed == 0 {
            return Ok(false);
        }
        self.ring.submit()?;
        self.enters += 1;
        Ok(true)
    }

    /// Takes the completions posted so far: frames into the ready queue, failed reads' buffers freed. Returns
    /// the first error other than `EAGAIN`.
    fn reap(&mut self) -> Option<io::Error> {
        let depth = self.slots.len();
        let mut error = None;
        for cqe in self.ring.completion() {
            let Some(i) = usize::try_from(cqe.user_data()).ok().filter(|&i| i < depth) else { continue };
            match usize::try_from(cqe.result()) {
                Ok(n) => {
                    self.slots[i] = Slot::Ready(n.min(self.buf_len));
                    // At most depth buffers are ready at once: the queue cannot overflow.
                    self.ready[(self.head + self.count) % depth] = i as u16;
                    self.count += 1;
                }
                Err(_) => {
                    self.slots[i] = Slot::Free;
                    if -cqe.result() != libc::EAGAIN {
                        error = error.or(Some(io::Error::from_raw_os_error(-cqe.result())));
                    }
                }
            }
        }
        error
    }

    /// Hands on at most `max` ready frames, oldest first, freeing their buffers.
    fn deliver(&mut self, max: usize, frame: &mut impl FnMut(&mut [u8])) -> usize {
        let depth = self.slots.len();
        let mut got = 0;
        while got < max && self.count > 0 {
            let i = usize::from(self.ready[self.head]);
            self.head = (self.head + 1) % depth;
            self.count -= 1;
            if let Slot::Ready(n) = self.slots[i] {
                let start = i * self.buf_len;
                frame(&mut self.bufs[start..start + n]);
                got += 1;
            }
            self.slots[i] = Slot::Free;
        }
        got
    }
}

impl Drop for TapReader {
    fn drop(&mut self) {
        let reading = self.slots.iter().filter(|&&s| s == Slot::Reading).count();
        if reading == 0 {
            return;
        }
        // The reads waiting in the ring are cancelled, and their completions (and the cancellation's) awaited,
        // before the buffers are freed: a read must never write into freed memory.
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any()).build().user_data(u64::MAX);
        // SAFETY: a cancellation names no memory of ours.
        let pushed = unsafe { self.ring.submission().push(&cancel) }.is_ok();
        let mut left = reading;
        if pushed && self.ring.submit().is_ok() {
            while left > 0 {
                if self.ring.submit_and_wait(1).is_err() {
                    break;
                }
                left -= self.ring.completion().filter(|c| c.user_data() != u64::MAX).count().min(left);
            }
        }
        if left > 0 {
            // Could not see every read end (an old kernel without cancel-any): leak rather than free under them.
            std::mem::forget(std::mem::take(&mut self.bufs));
        }
    }
}

impl AsFd for TapReader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
#[path = "uring_tests.rs"]
mod tests;
