//! A throwaway etcd server for tests: Debian's `etcd` binary on loopback ports with a temporary data dir, killed and
//! deleted on drop (also when the test panics).
//!
//! Shared by `tests/etcd.rs` and the crate's own conformance test (`src/etcd_store.rs`, through `#[path]`).

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running etcd (or a stopped one that can be started again on the same port and data dir).
pub struct Etcd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

/// The `etcd` binary is installed; when not, says why on stderr and returns false, unless `TWEED_REQUIRE_ALL=1`,
/// which makes a missing etcd a failure.
pub fn available() -> bool {
    let found = Command::new("etcd").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !found {
        assert!(
            std::env::var("TWEED_REQUIRE_ALL").as_deref() != Ok("1"),
            "TWEED_REQUIRE_ALL=1 but the etcd binary is missing (Debian: apt-get install etcd-server)"
        );
        eprintln!("skipped: no etcd binary on PATH (Debian: apt-get install etcd-server)");
    }
    found
}

impl Etcd {
    /// Starts a fresh etcd and waits until it answers; `None` (after a note) when there is no etcd binary.
    pub fn start() -> Option<Self> {
        if !available() {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut etcd = Self { child: None, dir, client_port: free_port(), peer_port: free_port() };
        etcd.restart();
        Some(etcd)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The endpoint as a list, for `EtcdStore::connect`.
    pub fn endpoints(&self) -> Vec<String> {
        vec![self.endpoint()]
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server (SIGKILL: a crash, not a clean shutdown) and waits for it to go.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on the same ports and data dir, and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::File::create(self.dir.path().join("etcd.log")).expect("log file");
        let child = Command::new("etcd")
            .arg("--name=tweed-test")
            .arg(format!("--data-dir={}", self.dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={}", self.endpoint()))
            .arg(format!("--advertise-client-urls={}", self.endpoint()))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=tweed-test={peer}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning etcd");
        self.child = Some(child);
        self.wait_healthy();
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
                panic!("etcd exited with {status}:\n{log}");
            }
            if self.healthy() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("etcd did not become healthy within 15 s");
    }

    /// etcd's `/health` says true.
    fn healthy(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.client_port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let req = format!("GET /health HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n", self.client_port);
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.contains("\"health\":\"true\"")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        // `dir` is deleted when it drops, after this.
    }
}
