//! A known blob over TCP between namespaces, its SHA-256 taken at both ends: iperf3 counts bytes and never looks
//! at them, so a dataplane that reorders, duplicates or corrupts payload (which a partial checksum handed to the
//! receiving kernel would let through) passes iperf3 and fails here. Both ends are small python3 programs (the
//! sender's bytes come from a seeded generator, so every run sends the same blob).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use super::{Error, NetNs, Result, wait_for};

/// Accepts one connection on argv[1]:argv[2], reads it to the end, prints `<bytes> <sha256>`.
const RECEIVER: &str = r#"
import hashlib, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
s.settimeout(30)
c, _ = s.accept()
c.settimeout(30)
h, n = hashlib.sha256(), 0
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    h.update(b)
    n += len(b)
print(n, h.hexdigest(), flush=True)
"#;

/// Connects to argv[1]:argv[2], sends argv[3] bytes of `random.Random(argv[4])`, prints `<bytes> <sha256>`.
const SENDER: &str = r#"
import hashlib, random, socket, sys
data = random.Random(int(sys.argv[4])).randbytes(int(sys.argv[3]))
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
c.sendall(data)
c.shutdown(socket.SHUT_WR)
c.recv(1)
print(len(data), hashlib.sha256(data).hexdigest(), flush=True)
"#;

/// Ports for blob receivers, apart from iperf3's.
static NEXT_PORT: AtomicU16 = AtomicU16::new(6201);

/// What one transfer did: bytes and digest at each end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// Bytes the sender wrote and the SHA-256 of what it wrote.
    pub sent: (u64, String),
    /// Bytes the receiver read and the SHA-256 of what it read.
    pub received: (u64, String),
}

impl Blob {
    /// True when the receiver read exactly what the sender wrote.
    pub fn intact(&self) -> bool {
        self.sent == self.received
    }
}

fn parse(what: &str, text: &str) -> Result<(u64, String)> {
    let err = || Error::Parse { what: what.to_owned(), text: text.to_owned() };
    let line = text.lines().rev().find(|l| !l.trim().is_empty()).ok_or_else(err)?;
    let mut words = line.split_whitespace();
    let n = words.next().and_then(|w| w.parse().ok()).ok_or_else(err)?;
    let digest = words.next().filter(|d| d.len() == 64).ok_or_else(err)?;
    Ok((n, digest.to_owned()))
}

/// Sends `bytes` pseudo-random bytes (seeded by `seed`) over one TCP connection from `from` to `to_ip`, on which
/// a receiver listens inside `to`; bounded to 60 s in all.
pub fn tcp_blob(from: &NetNs, to: &NetNs, to_ip: Ipv4Addr, bytes: usize, seed: u64) -> Result<Blob> {
    let port = NEXT_PORT.fetch_add(1, Ordering::Relaxed).to_string();
    let ip = to_ip.to_string();
    let mut receiver = to.spawn(&format!("blob-receiver-{port}"), &["python3", "-c", RECEIVER, &ip, &port])?;
    let filter = format!("sport = :{port}");
    wait_for(&format!("blob receiver on {ip}:{port}"), Duration::from_secs(15), || {
        let listening = to.run(&["ss", "-Htln", &filter]).is_ok_and(|s| !s.trim().is_empty());
        (listening || receiver.exited().is_some()).then_some(())
    })?;
    let sent = from.run_timeout(
        &["python3", "-c", SENDER, &ip, &port, &bytes.to_string(), &seed.to_string()],
        Duration::from_secs(30),
    )?;
    let status = wait_for("the blob receiver's end", Duration::from_secs(30), || receiver.exited())?;
    let log = receiver.log();
    if !status.success() {
        return Err(Error::Failed { cmd: "blob receiver".to_owned(), status, stdout: String::new(), stderr: log });
    }
    Ok(Blob { sent: parse("the blob sender's digest", &sent)?, received: parse("the blob receiver's digest", &log)? })
}
