//! A world of Linux network namespaces for integration tests: namespaces, veth pairs, pods, kernel flannel nodes,
//! spawned processes, `ping` and `iperf3`, and frames crafted and captured inside a namespace ([`raw`]).
//!
//! What it promises:
//! - Everything it creates is owned by a guard that deletes it on drop, also when the test panics: a [`NetNs`]
//!   kills what still runs inside it and deletes itself (its links go with it), a [`Process`] is stopped with
//!   SIGTERM then SIGKILL, a [`Veth`] deletes the ends it put in the root namespace.
//! - Every command and every wait has a timeout, so a broken dataplane fails a test in bounded time, never hangs it.
//! - Names cannot collide between tests or test processes: namespaces are `tw<pid>-<n>-<label>`, links are created
//!   directly inside their namespace (`ip link add … netns …`), and a link a test puts in the root namespace takes
//!   a name from [`unique_ifname`]. Namespaces left by a test process that died (SIGKILL) are deleted by the next
//!   one.
//!
//! A test starts with [`require`] (or the [`skip_unless!`](crate::skip_unless) macro): when a capability is
//! missing it prints one line of reason and the test returns early, unless `TWEED_REQUIRE_ALL=1` (CI), which
//! turns the skip into a failure.
//!
//! Addresses follow the seeds' topology: node `i` is `192.168.0.i` on its underlay `eth0`, owns `10.244.i.0/24`,
//! its VTEP MAC is `02:00:00:00:00:0i`; pod `m` of node `i` is `10.244.i.m` with MAC `0a:58:0a:f4:i:m` (the
//! Kubernetes bridge plugin's MAC-from-IP) and gateway `10.244.i.1`.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::net::Ipv4Addr;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Once, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use tweed_wire::ethernet::MacAddr;

mod blob;
mod links;
mod process;
pub mod raw;
mod traffic;

// Each test file uses a part of the harness; the rest of these re-exports is unused there.
#[allow(unused_imports)]
pub use blob::{Blob, tcp_blob};
#[allow(unused_imports)]
pub use links::{End, KernelFlannel, Pod, RootLink, Veth, disable_offloads, kernel_flannel_pair, underlay_pair, veth};
#[allow(unused_imports)]
pub use process::Process;
#[allow(unused_imports)]
pub use traffic::{Iperf3Server, Ping, TcpRun, UdpRun, iperf3_tcp, iperf3_udp, ping, ping_until_ok};

/// How long a plain command (`ip`, `sysctl`, `ss`) may take.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a [`Process`] gets between SIGTERM and SIGKILL when it is dropped.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------------------------------------
// Errors

/// What went wrong in the harness; `Debug` prints the same text as `Display`, so `expect` shows a readable reason.
pub enum Error {
    /// A program could not be started.
    Spawn {
        /// The command line.
        cmd: String,
        /// Why `exec` failed.
        source: std::io::Error,
    },
    /// A program exited with a failure status (or, for `iperf3 -J`, reported an error).
    Failed {
        /// The command line.
        cmd: String,
        /// Its exit status.
        status: ExitStatus,
        /// What it printed on stdout.
        stdout: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A program or a condition did not finish in time.
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        after: Duration,
        /// The last output seen, if any.
        detail: String,
    },
    /// Output the harness could not understand.
    Parse {
        /// What was being parsed.
        what: String,
        /// The text.
        text: String,
    },
}

/// A harness result.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// The last `max` bytes of `s` (on a char boundary), for error messages.
fn tail(s: &str, max: usize) -> &str {
    let s = s.trim();
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spawn { cmd, source } => write!(f, "cannot run `{cmd}`: {source}"),
            Self::Failed { cmd, status, stdout, stderr } => {
                write!(f, "`{cmd}` failed ({status}): {}", tail(stderr, 2000))?;
                if !stdout.trim().is_empty() {
                    write!(f, "\n  stdout: {}", tail(stdout, 2000))?;
                }
                Ok(())
            }
            Self::Timeout { what, after, detail } => {
                write!(f, "{what}: no result after {after:?}")?;
                if !detail.trim().is_empty() {
                    write!(f, "\n  last output: {}", tail(detail, 2000))?;
                }
                Ok(())
            }
            Self::Parse { what, text } => write!(f, "cannot parse {what} from: {}", tail(text, 2000)),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

// ---------------------------------------------------------------------------------------------------------------
// The two system calls the harness needs; `libc` comes with tweed-io.

mod sys {
    /// Sends `sig` to `pid`; false when there is no such process.
    #[allow(unsafe_code)]
    pub(super) fn kill(pid: u32, sig: i32) -> bool {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
        // SAFETY: kill(2) takes no pointers; any pid and signal number is defined behaviour (at worst an error).
        unsafe { libc::kill(pid, sig) == 0 }
    }

    /// The effective user id of this process.
    #[allow(unsafe_code)]
    pub(super) fn euid() -> u32 {
        // SAFETY: geteuid(2) takes no arguments and always succeeds.
        unsafe { libc::geteuid() }
    }
}

/// Signals for [`Process::signal`] and exit statuses.
#[allow(unused_imports)]
pub use libc::{SIGINT, SIGKILL, SIGTERM, SIGUSR1};

// ---------------------------------------------------------------------------------------------------------------
// Commands with a timeout

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

fn read_all(mut f: &File) -> String {
    let mut bytes = Vec::new();
    // Reading back our own temporary file; a failure leaves the text empty, which the caller reports.
    if f.rewind().is_ok() {
        let _ = f.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Waits for `child` until `timeout`; `None` if it is still running then.
fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    let mut nap = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            // ECHILD: someone else reaped it; report it as killed rather than waiting forever.
            Err(_) => return Some(ExitStatus::from_raw(SIGKILL)),
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::sleep(nap.min(deadline - now));
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// Runs `argv` in the root namespace, whatever its exit status; errors only when it cannot start or times out
/// (then it is killed).
pub fn exec(argv: &[&str], timeout: Duration) -> Result<Output> {
    let cmd = argv.join(" ");
    let spawn_err = |source| Error::Spawn { cmd: cmd.clone(), source };
    let Some((program, args)) = argv.split_first() else {
        return Err(spawn_err(std::io::Error::other("empty command")));
    };
    // Output goes to files, not pipes: nothing can block on a full pipe, and a background child that keeps the
    // descriptor open cannot make us wait.
    let out = tempfile::tempfile().map_err(spawn_err)?;
    let err = tempfile::tempfile().map_err(spawn_err)?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(spawn_err)?)
        .stderr(err.try_clone().map_err(spawn_err)?)
        .spawn()
        .map_err(spawn_err)?;
    match wait_timeout(&mut child, timeout) {
        Some(status) => Ok(Output { status, stdout: read_all(&out), stderr: read_all(&err) }),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(Error::Timeout {
                what: format!("`{cmd}`"),
                after: timeout,
                detail: format!("{}{}", read_all(&out), read_all(&err)),
            })
        }
    }
}

/// Runs `argv` in the root namespace with [`CMD_TIMEOUT`]; its stdout, or an error with its stderr.
pub fn run(argv: &[&str]) -> Result<String> {
    run_timeout(argv, CMD_TIMEOUT)
}

/// [`run`] with a chosen timeout.
pub fn run_timeout(argv: &[&str], timeout: Duration) -> Result<String> {
    let out = exec(argv, timeout)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(Error::Failed { cmd: argv.join(" "), status: out.status, stdout: out.stdout, stderr: out.stderr })
    }
}

/// The words of a command line (arguments never contain spaces here): `ns.ip(&words("link set dev eth0 up"))`.
pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Polls `probe` every 10 ms until it returns `Some`, for at most `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout { what: what.to_owned(), after: timeout, detail: String::new() });
        }
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Capabilities

/// Something a test needs from the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Need {
    /// Effective uid 0.
    Root,
    /// `ip netns add` works.
    Netns,
    /// veth pairs can be created.
    Veth,
    /// Linux bridges can be created.
    Bridge,
    /// The kernel's VXLAN devices can be created.
    Vxlan,
    /// `/dev/net/tun` opens read-write.
    Tun,
    /// iputils `ping`.
    Ping,
    /// `iperf3`.
    Iperf3,
    /// `ethtool` (to switch off offloads).
    Ethtool,
    /// `tcpdump`.
    Tcpdump,
}

impl Need {
    const ALL: [Self; 10] = [
        Self::Root,
        Self::Netns,
        Self::Veth,
        Self::Bridge,
        Self::Vxlan,
        Self::Tun,
        Self::Ping,
        Self::Iperf3,
        Self::Ethtool,
        Self::Tcpdump,
    ];

    /// Every capability a two-node dataplane test with traffic needs.
    pub const DATAPLANE: &'static [Self] =
        &[Self::Root, Self::Netns, Self::Veth, Self::Bridge, Self::Tun, Self::Ping, Self::Iperf3];

    fn needs_root(self) -> bool {
        matches!(self, Self::Netns | Self::Veth | Self::Bridge | Self::Vxlan | Self::Tun)
    }
}

fn program_runs(argv: &[&str], package: &str) -> Result<(), String> {
    match exec(argv, CMD_TIMEOUT) {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("`{}` failed: {}", argv.join(" "), out.stderr.trim())),
        Err(e) => Err(format!("{e} (install the `{package}` package)")),
    }
}

/// Creates a link of the given `ip link add` arguments in a scratch namespace.
fn link_kind_works(kind: &str, args: &[&str]) -> Result<(), String> {
    let ns = NetNs::new("probe").map_err(|e| format!("cannot create a network namespace: {e}"))?;
    ns.ip(args).map(drop).map_err(|e| format!("cannot create a {kind} link: {e}"))
}

fn probe(need: Need) -> Result<(), String> {
    if need.needs_root() || need == Need::Root {
        let euid = sys::euid();
        if euid != 0 {
            return Err(format!("needs root (euid is {euid})"));
        }
    }
    match need {
        Need::Root => Ok(()),
        Need::Netns => NetNs::new("probe").map(drop).map_err(|e| format!("cannot create a network namespace: {e}")),
        Need::Veth => link_kind_works("veth", &["link", "add", "p0", "type", "veth", "peer", "name", "p1"]),
        Need::Bridge => link_kind_works("bridge", &["link", "add", "b0", "type", "bridge"]),
        Need::Vxlan => link_kind_works(
            "vxlan",
            &["link", "add", "vx0", "type", "vxlan", "id", "1", "dstport", "8472", "nolearning"],
        ),
        Need::Tun => OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map(drop)
            .map_err(|e| format!("cannot open /dev/net/tun: {e}")),
        Need::Ping => program_runs(&["ping", "-V"], "iputils-ping"),
        Need::Iperf3 => program_runs(&["iperf3", "--version"], "iperf3"),
        Need::Ethtool => program_runs(&["ethtool", "--version"], "ethtool"),
        Need::Tcpdump => program_runs(&["tcpdump", "--version"], "tcpdump"),
    }
}

/// The cached result of probing `need` (each capability is probed once per test process).
pub fn check(need: Need) -> Result<(), String> {
    static CACHE: [OnceLock<Result<(), String>>; Need::ALL.len()] = [const { OnceLock::new() }; Need::ALL.len()];
    CACHE[need as usize].get_or_init(|| probe(need)).clone()
}

/// True when every capability in `needs` is there. Otherwise prints one line (`skipped <test>: <reason>`) to
/// stderr and returns false so the test can return early; with `TWEED_REQUIRE_ALL=1` it panics with the reason.
#[track_caller]
pub fn require(needs: &[Need]) -> bool {
    let Some(reason) = needs.iter().find_map(|&n| check(n).err()) else { return true };
    skip(&reason);
    false
}

/// Says that the current test (or a part of it, as `reason` tells) is skipped, in one line to stderr
/// (`skipped <test>: <reason>`); with `TWEED_REQUIRE_ALL=1` it panics with the reason instead.
#[track_caller]
pub fn skip(reason: &str) {
    let current = thread::current();
    let test = current.name().unwrap_or("test");
    if std::env::var_os("TWEED_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("{test}: {reason} (TWEED_REQUIRE_ALL=1 makes this a failure)");
    }
    // Straight to the file descriptor: libtest captures `eprintln!` of passing tests, and a skip should show.
    // One write, so that lines of tests running in parallel do not interleave.
    let _ = std::io::stderr().write_all(format!("skipped {test}: {reason}\n").as_bytes());
}

/// `skip_unless!(Root, Netns, Ping)`: returns from the test (after one line of reason) unless every named
/// [`Need`] is met. Expects the harness at `crate::common::netns`.
#[macro_export]
macro_rules! skip_unless {
    ($($need:ident),+ $(,)?) => {
        if !$crate::common::netns::require(&[$($crate::common::netns::Need::$need),+]) {
            return;
        }
    };
}

// ---------------------------------------------------------------------------------------------------------------
// Names

static SEQ: AtomicU32 = AtomicU32::new(0);

fn base36(mut n: u32) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(char::from_digit(n % 36, 36).unwrap_or('0'));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().collect()
}

/// An interface name no other test or test process uses, for links in the root namespace: `prefix` (at most 4
/// bytes), this process's pid and a counter, in at most 15 bytes (`IFNAMSIZ` − 1).
pub fn unique_ifname(prefix: &str) -> String {
    assert!(prefix.len() <= 4, "interface name prefix {prefix:?} is longer than 4 bytes");
    let name = format!("{prefix}{}-{}", base36(std::process::id()), base36(SEQ.fetch_add(1, Ordering::Relaxed)));
    assert!(name.len() <= 15, "interface name {name} is longer than 15 bytes");
    name
}

/// Underlay address of node `i`: `192.168.0.i`.
pub fn node_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 0, i)
}
/// Underlay MAC of node `i`: `02:00:c0:a8:00:i`.
pub fn node_mac(i: u8) -> MacAddr {
    MacAddr::new(0x02, 0x00, 0xc0, 0xa8, 0x00, i)
}
/// VTEP MAC (flannel's `VtepMAC`) of node `i`: `02:00:00:00:00:i`.
pub fn vtep_mac(i: u8) -> MacAddr {
    MacAddr::new(0x02, 0x00, 0x00, 0x00, 0x00, i)
}
/// Pod subnet of node `i`: `10.244.i.0/24`.
pub fn subnet(i: u8) -> Ipv4Net {
    // A /24 is always a valid prefix length.
    Ipv4Net::new(Ipv4Addr::new(10, 244, i, 0), 24).unwrap()
}
/// Pods' gateway on node `i`: `10.244.i.1`.
pub fn gateway(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, i, 1)
}
/// Pod `m` of node `i`: `10.244.i.m`.
pub fn pod_ip(i: u8, m: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, i, m)
}
/// MAC of pod `m` of node `i`: `0a:58:0a:f4:i:m`.
pub fn pod_mac(i: u8, m: u8) -> MacAddr {
    MacAddr::new(0x0a, 0x58, 10, 244, i, m)
}

// ---------------------------------------------------------------------------------------------------------------
// Namespaces

const NETNS_DIR: &str = "/run/netns";

/// Deletes namespaces whose creating test process is gone (it was killed before its guards ran). Once per process.
fn sweep_stale() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(dir) = fs::read_dir(NETNS_DIR) else { return };
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix("tw").and_then(|r| r.split('-').next()) else { continue };
            let Ok(pid) = pid.parse::<u32>() else { continue };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                kill_all_in(&name);
                let _ = run(&["ip", "netns", "del", &name]);
            }
        }
    });
}

fn pids_in(name: &str) -> Vec<u32> {
    run(&["ip", "netns", "pids", name])
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// SIGKILLs every process in namespace `name`, until none is left (at most a second).
fn kill_all_in(name: &str) {
    for _ in 0..50 {
        let pids = pids_in(name);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            sys::kill(pid, SIGKILL);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A network namespace with `lo` up; on drop, what still runs in it is killed and it is deleted, with its links.
#[must_use = "the namespace is deleted when this guard is dropped"]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `tw<pid>-<n>-<label>`.
    pub fn new(label: &str) -> Result<Self> {
        sweep_stale();
        let name = format!("tw{}-{}-{label}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        if Self::exists(&name) {
            // Only a dead process with our pid can have made it (pid reuse).
            kill_all_in(&name);
            let _ = run(&["ip", "netns", "del", &name]);
        }
        run(&["ip", "netns", "add", &name])?;
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Its name, for `ip netns exec` and `ip -n`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `f` on a thread that entered the namespace: sockets it opens stay in it.
    ///
    /// # Panics
    /// When the namespace cannot be entered, or `f` panics.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        use std::os::fd::AsRawFd;
        let file = File::open(Path::new(NETNS_DIR).join(&self.name)).expect("open the namespace");
        thread::scope(|s| {
            s.spawn(move || {
                // SAFETY: setns(2) on a descriptor we hold open; it moves only this thread into the namespace.
                #[allow(unsafe_code)]
                let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("the thread in the namespace panicked")
        })
    }

    /// True when a namespace of that name exists.
    pub fn exists(name: &str) -> bool {
        Path::new(NETNS_DIR).join(name).exists()
    }

    /// The `ip netns exec <name>` prefix followed by `argv`.
    fn exec_argv<'a>(&'a self, argv: &[&'a str]) -> Vec<&'a str> {
        let mut full = vec!["ip", "netns", "exec", self.name.as_str()];
        full.extend_from_slice(argv);
        full
    }

    /// Runs `argv` inside the namespace with [`CMD_TIMEOUT`]: its stdout, or an error with its stderr.
    pub fn run(&self, argv: &[&str]) -> Result<String> {
        run_timeout(&self.exec_argv(argv), CMD_TIMEOUT)
    }

    /// [`run`](Self::run) with a chosen timeout.
    pub fn run_timeout(&self, argv: &[&str], timeout: Duration) -> Result<String> {
        run_timeout(&self.exec_argv(argv), timeout)
    }

    /// Runs `argv` inside the namespace whatever its exit status (errors only on spawn failure or timeout).
    pub fn exec(&self, argv: &[&str], timeout: Duration) -> Result<Output> {
        exec(&self.exec_argv(argv), timeout)
    }

    /// `ip -n <name> args…` (faster than `run`: no mount namespace).
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["ip", "-n", self.name.as_str()];
        full.extend_from_slice(args);
        run(&full)
    }

    /// `sysctl -w key=value` inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.run(&["sysctl", "-q", "-w", &format!("{key}={value}")]).map(drop)
    }

    /// Starts `argv` inside the namespace as a [`Process`] named `label` (for its log).
    pub fn spawn(&self, label: &str, argv: &[&str]) -> Result<Process> {
        Process::spawn(label, &self.exec_argv(argv))
    }

    /// True when the namespace has a link called `ifname`.
    pub fn has_link(&self, ifname: &str) -> bool {
        self.ip(&["link", "show", "dev", ifname]).is_ok()
    }

    /// Waits until a link called `ifname` exists (made by another process), for at most `timeout`.
    pub fn wait_for_link(&self, ifname: &str, timeout: Duration) -> Result<()> {
        wait_for(&format!("link {ifname} in {}", self.name), timeout, || self.has_link(ifname).then_some(()))
    }

    /// A counter of `/sys/class/net/<ifname>/statistics/` (`rx_packets`, `tx_bytes`, `rx_dropped`, …).
    pub fn link_stat(&self, ifname: &str, stat: &str) -> Result<u64> {
        let text = self.run(&["cat", &format!("/sys/class/net/{ifname}/statistics/{stat}")])?;
        text.trim().parse().map_err(|_| Error::Parse { what: format!("{ifname} {stat}"), text })
    }

    /// Processes running inside the namespace.
    pub fn pids(&self) -> Vec<u32> {
        pids_in(&self.name)
    }
}

impl fmt::Debug for NetNs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetNs({})", self.name)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // A namespace lives on while a process is inside it, whatever `ip netns del` says.
        kill_all_in(&self.name);
        if let Err(e) = run(&["ip", "netns", "del", &self.name]) {
            eprintln!("netns harness: cannot delete namespace {}: {e}", self.name);
        }
    }
}
