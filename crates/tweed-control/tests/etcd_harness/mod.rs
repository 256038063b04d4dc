//! A throwaway etcd server for tests: Debian's `etcd` binary on loopback ports with a temporary data dir, killed and
//! deleted on drop (also when the test panics).
//!
//! Tests run in parallel, each with its own etcd, so a port chosen free can be taken before etcd binds it (by
//! another test choosing its ports, or by another etcd). An etcd that finds its port taken is started again on fresh
//! ports, and an etcd only counts as up when the process this harness started is the one listening on the port.
//!
//! Shared by `tests/etcd.rs` and the crate's own conformance test (`src/etcd_store.rs`, through `#[path]`).

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How many times an etcd whose port was taken is started again.
const ATTEMPTS: usize = 5;

/// A running etcd (or a stopped one that can be started again on the same port and data dir).
pub struct Etcd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    /// The member's name, and etcd's `--initial-cluster` (this member alone, or every member of a [`Cluster`]).
    name: String,
    initial_cluster: String,
}

/// Why an etcd did not come up.
enum Failure {
    /// Its port was taken, or it never answered: worth another try. Holds etcd's log.
    Retry(String),
    /// It exited for another reason. Holds etcd's log.
    Fatal(String),
}

/// Two distinct free loopback ports. Both listeners live until both ports are chosen, so the kernel cannot hand out
/// the same port twice.
fn free_ports() -> (u16, u16) {
    let bind = || TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let port = |l: &TcpListener| l.local_addr().expect("a bound socket has an address").port();
    let (a, b) = (bind(), bind());
    (port(&a), port(&b))
}

/// The process `pid` holds the socket listening on 127.0.0.1:`port`: what answers there is that process, not
/// another test's etcd that took the port. Read from `/proc/net/tcp` (the socket's inode) and `/proc/<pid>/fd`.
fn listens(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else { return false };
    // The kernel prints the address as the 32-bit word in host order, the port in hex; 0A is TCP_LISTEN.
    let local = format!("{:08X}:{port:04X}", u32::from_ne_bytes(Ipv4Addr::LOCALHOST.octets()));
    let inode = table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A")).then(|| fields.get(9).copied())?
    });
    let Some(inode) = inode else { return false };
    let socket = format!("socket:[{inode}]");
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == socket.as_str()))
}

/// The `etcd` binary is installed; when not, says why on stderr and returns false, unless `TWEED_REQUIRE_ALL=1`,
/// which makes a missing etcd a failure.
#[track_caller]
pub fn available() -> bool {
    let found = Command::new("etcd").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !found {
        assert!(
            std::env::var("TWEED_REQUIRE_ALL").as_deref() != Ok("1"),
            "TWEED_REQUIRE_ALL=1 but the etcd binary is missing (Debian: apt-get install etcd-server)"
        );
        // Straight to the file descriptor in one write: libtest hides `eprintln!` of passing tests, and a skip
        // should show.
        let current = std::thread::current();
        let line = format!(
            "skipped {}: no etcd binary on PATH (Debian: apt-get install etcd-server)\n",
            current.name().unwrap_or("test")
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
    found
}

impl Etcd {
    /// Starts a fresh etcd and waits until it answers; `None` (after a note) when there is no etcd binary.
    #[track_caller]
    pub fn start() -> Option<Self> {
        if !available() {
            return None;
        }
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let (client_port, peer_port) = free_ports();
            // A fresh data dir too: a half-started etcd may have written its old ports into the last one.
            let mut etcd = Self::member("tweed-test", client_port, peer_port);
            etcd.initial_cluster = format!("tweed-test=http://127.0.0.1:{peer_port}");
            match etcd.spawn() {
                Ok(()) => return Some(etcd),
                // Dropping `etcd` kills it and deletes its dir.
                Err(Failure::Retry(log)) => last = log,
                Err(Failure::Fatal(log)) => panic!("etcd did not start:\n{log}"),
            }
        }
        panic!("etcd did not start in {ATTEMPTS} tries on fresh ports; the last one's log:\n{last}");
    }

    fn member(name: &str, client_port: u16, peer_port: u16) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self { child: None, dir, client_port, peer_port, name: name.to_owned(), initial_cluster: String::new() }
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

    /// Starts the server (again) on the same ports and data dir, and waits until it answers. Clients know the
    /// ports, so they cannot change: a port taken meanwhile is waited for a little (another test may hold it for a
    /// moment while choosing its own).
    pub fn restart(&mut self) {
        self.kill();
        for attempt in 1..=ATTEMPTS {
            match self.spawn() {
                Ok(()) => return,
                Err(Failure::Retry(_)) if attempt < ATTEMPTS => {
                    self.kill();
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(Failure::Retry(log) | Failure::Fatal(log)) => panic!("etcd did not start again:\n{log}"),
            }
        }
    }

    /// Kills the server and deletes its data: started again, it is a new etcd on the same ports, its revisions
    /// from 1 (an etcd restored from an old backup, as far as a client can tell).
    pub fn wipe_and_restart(&mut self) {
        self.kill();
        std::fs::remove_dir_all(self.dir.path().join("data")).expect("remove the data dir");
        self.restart();
    }

    /// Runs etcd on this harness's ports and data dir, and waits until it answers.
    fn spawn(&mut self) -> Result<(), Failure> {
        self.launch();
        self.wait_healthy()
    }

    /// Runs etcd on this harness's ports and data dir.
    fn launch(&mut self) {
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::File::create(self.log_path()).expect("log file");
        let child = Command::new("etcd")
            .arg(format!("--name={}", self.name))
            .arg(format!("--data-dir={}", self.dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={}", self.endpoint()))
            .arg(format!("--advertise-client-urls={}", self.endpoint()))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster={}", self.initial_cluster))
            // Short elections, so a cluster that lost its leader settles within a second or two.
            .arg("--heartbeat-interval=100")
            .arg("--election-timeout=1000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning etcd");
        self.child = Some(child);
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.dir.path().join("etcd.log")
    }

    fn wait_healthy(&mut self) -> Result<(), Failure> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                let log = format!("etcd exited with {status}:\n{log}");
                return Err(if log.contains("address already in use") {
                    Failure::Retry(log)
                } else {
                    Failure::Fatal(log)
                });
            }
            if self.healthy() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        self.kill();
        Err(Failure::Retry(format!("etcd did not become healthy within 15 s:\n{log}")))
    }

    /// How many calls of gRPC method `method` (`Range`, `LeaseTimeToLive`, …) this member has answered, from its
    /// `/metrics`.
    pub fn rpc_count(&self, method: &str) -> u64 {
        let body = self.http_get("/metrics");
        let needle = format!("grpc_method=\"{method}\"");
        body.lines()
            .filter(|l| l.starts_with("grpc_server_handled_total{") && l.contains(&needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    }

    fn http_get(&self, path: &str) -> String {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.client_port)) else { return String::new() };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n", self.client_port);
        if s.write_all(req.as_bytes()).is_err() {
            return String::new();
        }
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body
    }

    /// The process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// This harness's etcd listens on the client port, and its `/health` says true.
    fn healthy(&self) -> bool {
        let Some(child) = self.child.as_ref() else { return false };
        if !listens(child.id(), self.client_port) {
            return false;
        }
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

/// Three etcd members on loopback forming one cluster.
pub struct Cluster {
    pub members: Vec<Etcd>,
}

impl Cluster {
    /// Starts a fresh three-member cluster and waits until every member answers; `None` without an etcd binary.
    #[track_caller]
    pub fn start() -> Option<Self> {
        if !available() {
            return None;
        }
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let ports: Vec<(u16, u16)> = {
                // Every listener lives until all six ports are chosen.
                let bind = || TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
                let held: Vec<TcpListener> = (0..6).map(|_| bind()).collect();
                let port = |i: usize| held[i].local_addr().expect("bound").port();
                (0..3).map(|i| (port(2 * i), port(2 * i + 1))).collect()
            };
            let initial = ports
                .iter()
                .enumerate()
                .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
                .collect::<Vec<_>>()
                .join(",");
            let mut members: Vec<Etcd> = ports
                .iter()
                .enumerate()
                .map(|(i, &(client, peer))| {
                    let mut m = Etcd::member(&format!("m{i}"), client, peer);
                    m.initial_cluster.clone_from(&initial);
                    m
                })
                .collect();
            // All at once: a member is healthy only once a quorum is up.
            members.iter_mut().for_each(Etcd::launch);
            let mut failed = None;
            for m in &mut members {
                match m.wait_healthy() {
                    Ok(()) => {}
                    Err(Failure::Retry(log)) => failed = Some(log),
                    Err(Failure::Fatal(log)) => panic!("etcd member did not start:\n{log}"),
                }
            }
            match failed {
                None => return Some(Self { members }),
                // Dropping `members` kills them and deletes their dirs.
                Some(log) => last = log,
            }
        }
        panic!("the etcd cluster did not start in {ATTEMPTS} tries; the last log:\n{last}");
    }

    /// Every member's endpoint.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Etcd::endpoint).collect()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        // `dir` is deleted when it drops, after this.
    }
}
