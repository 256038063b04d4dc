//! The system calls of flow steering: a classic BPF program for a `SO_REUSEPORT` group, and AF_PACKET fanout.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::cvt;
use crate::steer::Insn;

/// Attaches `prog` to the reuseport group of `fd` (`SO_ATTACH_REUSEPORT_CBPF`): from then on it picks the socket
/// of every datagram the group receives.
pub(crate) fn attach_reuseport_cbpf(fd: BorrowedFd<'_>, prog: &[Insn]) -> io::Result<()> {
    let mut filter: Vec<libc::sock_filter> =
        prog.iter().map(|i| libc::sock_filter { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect();
    let len = u16::try_from(filter.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let fprog = libc::sock_fprog { len, filter: filter.as_mut_ptr() };
    // SAFETY: `fprog` points at `len` valid `sock_filter`s in `filter`, alive for the call; the kernel copies the
    // program and keeps no pointer to it.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&raw const fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Puts the bound AF_PACKET socket `fd` in fanout group `id` spreading by the kernel's flow hash
/// (`PACKET_FANOUT_HASH`); `id` `None`: a new group with an id the kernel picks (`PACKET_FANOUT_FLAG_UNIQUEID`).
/// Returns the group's id.
///
/// The group receives through its own hook, which ignores the sockets' `PACKET_IGNORE_OUTGOING`: without
/// `PACKET_FANOUT_FLAG_IGNORE_OUTGOING` (Linux 6.2) it would read every frame others send on the interface (the
/// host's stack, other packet sockets) as input. Every member must give the same flags.
pub(crate) fn join_fanout_hash(fd: BorrowedFd<'_>, id: Option<u16>) -> io::Result<u16> {
    let unique = if id.is_some() { 0 } else { libc::PACKET_FANOUT_FLAG_UNIQUEID };
    let type_flags = libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_IGNORE_OUTGOING | unique;
    let arg: libc::c_int = (u32::from(id.unwrap_or(0)) | (type_flags << 16)) as libc::c_int;
    // SAFETY: PACKET_FANOUT takes an int; `arg` lives for the call.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_FANOUT,
            (&raw const arg).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map_err(|e| {
        io::Error::new(e.kind(), format!("PACKET_FANOUT refused ({e}; ignoring outgoing frames needs Linux 6.2)"))
    })?;
    if let Some(id) = id {
        return Ok(id);
    }
    let mut got: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: PACKET_FANOUT reads back an int into `got`, whose size `len` says.
    cvt(unsafe {
        libc::getsockopt(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_FANOUT, (&raw mut got).cast(), &raw mut len)
    })?;
    // The low 16 bits are the id; type and flags above.
    Ok((got & 0xffff) as u16)
}
