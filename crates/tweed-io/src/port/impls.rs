//! [`Port`] for tweed's own devices and sockets: TAP and TUN ([`Device`]), AF_PACKET ([`PacketSocket`]), the
//! batched UDP socket ([`UdpPort`]), and the enums the driver's older constructor takes ([`PodPort`],
//! [`Underlay`]).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use super::{MAX_TSO_SEGMENTS, Medium, Msg, Port, Rx, Sent};
use crate::device::{Device, DeviceKind, PacketSocket};
use crate::driver::{PodPort, Underlay};
use crate::gro::OffloadError;
use crate::sys::MAX_BATCH;
use crate::udp::UdpPort;

/// The most frames for one TAP looked at together for coalescing (the kernel's GSO limit).
const RUN: usize = 64;

/// Reads offloaded trains (a TAP with TSO, an offloaded AF_PACKET socket) with `read`, cutting each into pool
/// buffers, while the batch has room for a whole train; a train that does not fit is dropped and counted.
fn recv_trains(
    rx: &mut Rx<'_>,
    mut read: impl FnMut(&mut [u8], usize, usize, &mut dyn FnMut(&[u8])) -> io::Result<Option<Result<usize, OffloadError>>>,
) -> io::Result<()> {
    let max_frame = rx.pool.config().capacity.saturating_sub(rx.pool.config().headroom);
    while rx.taken < rx.max && rx.batch.remaining() >= MAX_TSO_SEGMENTS {
        let Rx { pool, batch, scratch, ingress, now, taken, dropped, .. } = &mut *rx;
        let mut emit = |frame: &[u8]| {
            let Some(mut buf) = pool.get() else {
                *dropped += 1;
                return;
            };
            let area = buf.recv_area_mut();
            area[..frame.len()].copy_from_slice(frame);
            // `frame` is at most `max_frame`, the receive area's size.
            let _ = buf.commit_recv(frame.len());
            let meta = buf.meta_mut();
            meta.ingress = *ingress;
            meta.timestamp = *now;
            if let Err(buf) = batch.push(buf) {
                pool.put(buf);
                *dropped += 1;
            } else {
                *taken += 1;
            }
        };
        match read(scratch, max_frame, MAX_TSO_SEGMENTS, &mut emit)? {
            Some(Ok(_)) => {}
            Some(Err(_)) => *dropped += 1,
            None => break,
        }
    }
    Ok(())
}

/// Sends each message alone with `send` (`Ok(true)`: sent).
fn send_each(msgs: &[Msg<'_>], mut send: impl FnMut(&[u8]) -> io::Result<bool>) -> Sent {
    let sent = msgs.iter().filter(|m| matches!(send(m.data), Ok(true))).count();
    Sent { sent, coalesced: 0 }
}

/// A TAP (Ethernet frames; with TSO, trains cut into segments; out, runs of TCP segments coalesced) or a TUN (IP
/// packets).
impl Port for Device {
    fn name(&self) -> &str {
        Self::name(self)
    }

    fn medium(&self) -> Medium {
        match self.options().kind {
            DeviceKind::Tap => Medium::Ethernet,
            DeviceKind::Tun => Medium::Ip,
        }
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }

    fn rx_segments(&self) -> usize {
        if self.is_tso() { MAX_TSO_SEGMENTS } else { 1 }
    }

    fn recv(&mut self, rx: &mut Rx<'_>) -> io::Result<()> {
        if self.is_tso() {
            return recv_trains(rx, |s, f, m, emit| self.recv_offloaded(s, f, m, emit));
        }
        rx.recv_each(|buf| Self::recv(self, buf))
    }

    fn send(&mut self, msgs: &[Msg<'_>], scratch: &mut [u8]) -> Sent {
        if self.options().kind == DeviceKind::Tun {
            return send_each(msgs, |b| Self::send(self, b));
        }
        let mut done = Sent::default();
        for chunk in msgs.chunks(RUN) {
            let mut frames: [&[u8]; RUN] = [&[]; RUN];
            for (f, m) in frames.iter_mut().zip(chunk) {
                *f = m.data;
            }
            let frames = &frames[..chunk.len()];
            let mut j = 0;
            while j < frames.len() {
                match self.send_coalesced(&frames[j..], scratch).unwrap_or(0) {
                    // Queue full or an error: this frame is dropped, the next one is tried.
                    0 => j += 1,
                    took => {
                        done.sent += took;
                        done.coalesced += usize::from(took > 1);
                        j += took;
                    }
                }
            }
        }
        done
    }

    fn netns(&self) -> Option<&Path> {
        self.options().netns.as_deref()
    }
}

/// An AF_PACKET socket: Ethernet frames, offloaded ones cut or finished.
impl Port for PacketSocket {
    fn name(&self) -> &str {
        Self::name(self)
    }

    fn medium(&self) -> Medium {
        Medium::Ethernet
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }

    fn rx_segments(&self) -> usize {
        if self.is_offloaded() { MAX_TSO_SEGMENTS } else { 1 }
    }

    fn recv(&mut self, rx: &mut Rx<'_>) -> io::Result<()> {
        if self.is_offloaded() {
            return recv_trains(rx, |s, f, m, emit| self.recv_offloaded(s, f, m, emit));
        }
        rx.recv_each(|buf| Self::recv(self, buf))
    }

    fn send(&mut self, msgs: &[Msg<'_>], _scratch: &mut [u8]) -> Sent {
        send_each(msgs, |b| Self::send(self, b))
    }

    fn netns(&self) -> Option<&Path> {
        Self::netns(self)
    }
}

/// The underlay's UDP socket: datagrams in with their senders (`recvmmsg`, GRO trains cut), out to their
/// destinations (`sendmmsg`, GSO trains). An IPv6 destination cannot be reached from it and is dropped.
impl Port for UdpPort {
    fn name(&self) -> &str {
        "udp"
    }

    fn medium(&self) -> Medium {
        Medium::Datagram
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }

    fn recv(&mut self, rx: &mut Rx<'_>) -> io::Result<()> {
        let max = rx.room();
        let n = self.recv_batch(rx.pool, rx.batch, max, rx.ingress, rx.now)?;
        rx.taken += n;
        Ok(())
    }

    fn send(&mut self, msgs: &[Msg<'_>], _scratch: &mut [u8]) -> Sent {
        let none = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
        let mut sent = 0;
        for chunk in msgs.chunks(MAX_BATCH) {
            let mut batch: [(&[u8], SocketAddrV4); MAX_BATCH] = [(&[][..], none); MAX_BATCH];
            let mut m = 0;
            for msg in chunk {
                if let Some(SocketAddr::V4(dst)) = msg.dst {
                    batch[m] = (msg.data, dst);
                    m += 1;
                }
            }
            sent += self.send_batch(&batch[..m]);
        }
        Sent { sent, coalesced: 0 }
    }
}

macro_rules! delegate {
    ($ty:ty { $($variant:ident),* }) => {
        impl Port for $ty {
            fn name(&self) -> &str {
                match self { $(Self::$variant(p) => Port::name(p),)* }
            }
            fn medium(&self) -> Medium {
                match self { $(Self::$variant(p) => p.medium(),)* }
            }
            fn fd(&self) -> Option<BorrowedFd<'_>> {
                match self { $(Self::$variant(p) => Port::fd(p),)* }
            }
            fn rx_segments(&self) -> usize {
                match self { $(Self::$variant(p) => p.rx_segments(),)* }
            }
            fn recv(&mut self, rx: &mut Rx<'_>) -> io::Result<()> {
                match self { $(Self::$variant(p) => Port::recv(p, rx),)* }
            }
            fn send(&mut self, msgs: &[Msg<'_>], scratch: &mut [u8]) -> Sent {
                match self { $(Self::$variant(p) => Port::send(p, msgs, scratch),)* }
            }
            fn netns(&self) -> Option<&Path> {
                match self { $(Self::$variant(p) => Port::netns(p),)* }
            }
        }
    };
}

delegate!(PodPort { Tap, Packet });
delegate!(Underlay { Udp, Packet });
