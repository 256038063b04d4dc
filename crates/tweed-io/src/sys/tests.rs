//! The system calls against the real kernel (loopback; no privilege needed).
use super::*;
use std::net::UdpSocket;
use std::os::fd::AsFd;

/// Skips the rest of a test with a line that shows (straight to the stderr descriptor, in one write: libtest
/// hides `eprintln!` of passing tests), or fails it under `TWEED_REQUIRE_ALL=1` (CI, whose kernel has it all).
#[track_caller]
fn skip(reason: &str) {
    let current = std::thread::current();
    let test = current.name().unwrap_or("test");
    assert!(
        std::env::var_os("TWEED_REQUIRE_ALL").is_none_or(|v| v != "1"),
        "{test}: {reason} (TWEED_REQUIRE_ALL=1 makes this a failure)"
    );
    let _ = io::Write::write_all(&mut io::stderr(), format!("skipped {test}: {reason}\n").as_bytes());
}

/// Waits (at most 2 s) until `fd` has a datagram: loopback delivers in the sender's system call only when the
/// kernel does not defer its softirq work.
fn wait_readable(fd: BorrowedFd<'_>) {
    let mut ready = [false];
    assert_eq!(poll_in(&[fd.as_raw_fd()], &mut ready, 2000).unwrap(), 1, "nothing arrived in 2 s");
}

#[test]
fn ifreq_refuses_bad_names() {
    for bad in ["", "a/b", "with space", "sixteen-chars-xx"] {
        assert_eq!(ifreq(bad).err().map(|e| e.kind()), Some(io::ErrorKind::InvalidInput), "{bad:?}");
    }
    assert!(ifreq("fifteen-chars-x").is_ok());
}

#[test]
fn loopback_index_and_missing_interface() {
    assert!(if_index("lo").unwrap().is_some());
    assert_eq!(if_index("tweed-nosuch0").unwrap(), None);
}

/// recvmmsg/sendmmsg on loopback: every datagram arrives whole with its sender; a short buffer says truncated.
#[test]
fn mmsg_on_loopback() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let std::net::SocketAddr::V4(to) = b.local_addr().unwrap() else { unreachable!("bound to IPv4") };
    let std::net::SocketAddr::V4(from) = a.local_addr().unwrap() else { unreachable!("bound to IPv4") };
    let payloads: Vec<Vec<u8>> = (0u8..5).map(|i| vec![i; 100 + usize::from(i)]).collect();
    let parts: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let msgs: Vec<Gather> = (0..5).map(|first| Gather { first, count: 1, dst: to, seg: 0 }).collect();
    assert_eq!(sendmmsg(a.as_fd(), &parts, &msgs).unwrap(), 5);
    let mut storage = vec![[0u8; 2048]; 3];
    let mut short = [0u8; 50];
    let mut bufs: Vec<&mut [u8]> = storage.iter_mut().map(|b| &mut b[..]).collect();
    bufs.push(&mut short[..]);
    let mut meta = [Received::default(); 4];
    // Usually one call: all five are there. Each call fills the buffers left, in order, whatever has arrived.
    let mut got = 0;
    while got < 4 {
        wait_readable(b.as_fd());
        got += recvmmsg(b.as_fd(), &mut bufs[got..], &mut meta[got..]).unwrap();
    }
    for i in 0..3 {
        assert_eq!(meta[i], Received { len: 100 + i, from, truncated: false, segment: 0 });
        assert!(bufs[i][..100 + i].iter().all(|&x| x == i as u8));
    }
    assert_eq!(meta[3], Received { len: 50, from, truncated: true, segment: 0 });
    let mut one = [0u8; 2048];
    wait_readable(b.as_fd());
    assert_eq!(recvfrom(b.as_fd(), &mut one).unwrap(), Some(Received { len: 104, from, truncated: false, segment: 0 }));
    assert_eq!(recvfrom(b.as_fd(), &mut one).unwrap(), None);
    assert_eq!(recvmmsg(b.as_fd(), &mut bufs, &mut meta).unwrap(), 0);
    assert!(sendto(a.as_fd(), b"x", to).unwrap());
    wait_readable(b.as_fd());
    assert_eq!(recvfrom(b.as_fd(), &mut one).unwrap().map(|r| r.len), Some(1));
}

/// One message with UDP_SEGMENT arrives as separate datagrams of that size (the last one shorter), whatever the
/// pieces it is gathered from: here cut at other places than the datagrams' boundaries.
#[test]
fn gso_train_arrives_as_datagrams() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let std::net::SocketAddr::V4(to) = b.local_addr().unwrap() else { unreachable!("bound to IPv4") };
    let train: Vec<u8> = (0..(3 * 1000 + 400)).map(|i| (i / 1000) as u8).collect();
    let parts = [&train[..700], &train[700..2100], &train[2100..2101], &train[2101..]];
    match sendmmsg(a.as_fd(), &parts, &[Gather { first: 0, count: 4, dst: to, seg: 1000 }]) {
        Ok(n) => assert_eq!(n, 1),
        // A kernel without UDP GSO (before 4.18): the caller falls back; nothing to check here.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOPROTOOPT | libc::EIO)) => {
            return skip(&format!("this kernel refuses UDP GSO ({e})"));
        }
        Err(e) => panic!("{e}"),
    }
    let mut one = [0u8; 2048];
    for (i, len) in [1000, 1000, 1000, 400].into_iter().enumerate() {
        wait_readable(b.as_fd());
        let r = recvfrom(b.as_fd(), &mut one).unwrap().expect("a datagram");
        assert_eq!(r.len, len);
        assert!(one[..len].iter().all(|&x| x == i as u8));
    }
    assert_eq!(recvfrom(b.as_fd(), &mut one).unwrap(), None);
}

#[test]
fn poll_times_out_and_sees_input() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut ready = [true];
    assert_eq!(poll_in(&[a.as_raw_fd()], &mut ready, 0).unwrap(), 0);
    assert_eq!(ready, [false]);
    a.send_to(b"x", a.local_addr().unwrap()).unwrap();
    assert_eq!(poll_in(&[a.as_raw_fd()], &mut ready, 1000).unwrap(), 1);
    assert_eq!(ready, [true]);
}
