//! Agents for the end-to-end tests of hostile and busy pods: their files, starting and stopping them, their
//! counters (printed on SIGUSR1).
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::common::netns::{self, NetNs, Pod, Process, node_ip, subnet, vtep_mac};

/// The `tweed` binary under test.
pub const TWEED: &str = env!("CARGO_BIN_EXE_tweed");

/// How long ARP, FDB learning and an agent's start may take before a first ping gets through.
pub const WARM_UP: Duration = Duration::from_secs(10);

/// A TAP pod port in an agent's file: the TAP `tap` the agent creates in `ns`, with MTU `mtu` (left out: the
/// agent's default).
pub struct TapPort<'a> {
    /// The namespace the TAP goes to.
    pub ns: &'a NetNs,
    /// The TAP's name there.
    pub tap: String,
    /// Its MTU.
    pub mtu: Option<u32>,
    /// The pod's own addresses (`addresses = […]`, for port security); left out of the file when empty.
    pub addresses: Vec<std::net::Ipv4Addr>,
}

impl<'a> TapPort<'a> {
    /// `eth0` of a pod, MTU `mtu`.
    pub fn pod(pod: &'a Pod, mtu: Option<u32>) -> Self {
        Self { ns: &pod.ns, tap: "eth0".to_owned(), mtu, addresses: Vec::new() }
    }
}

/// Node `i`'s vxlan agent file, peered with node `j` (underlay MTU 1500); `extra` is appended (a `[host]`).
pub fn agent_toml(i: u8, j: u8, pods: &[TapPort<'_>], extra: &str) -> String {
    let mut t = format!(
        "[node]\npod_subnet = \"{}\"\n[node.underlay]\nnode_ip = \"{}\"\nmtu = 1500\n[node.backend]\n\
         type = \"vxlan\"\nvtep_mac = \"{}\"\n[[node.peers]]\nsubnet = \"{}\"\nnode_ip = \"{}\"\nvtep_mac = \"{}\"\n\
         [underlay]\ninterface = \"eth0\"\n",
        subnet(i),
        node_ip(i),
        vtep_mac(i),
        subnet(j),
        node_ip(j),
        vtep_mac(j),
    );
    for p in pods {
        writeln!(t, "[[pods]]\ntap = \"{}\"\nnetns = \"{}\"", p.tap, p.ns.name()).unwrap();
        if let Some(mtu) = p.mtu {
            writeln!(t, "mtu = {mtu}").unwrap();
        }
        if !p.addresses.is_empty() {
            let list: Vec<String> = p.addresses.iter().map(|a| format!("\"{a}\"")).collect();
            writeln!(t, "addresses = [{}]", list.join(", ")).unwrap();
        }
    }
    t.push_str(extra);
    with_test_workers(t)
}

/// `toml` with `[agent] workers = N` when the environment says `TWEED_TEST_WORKERS=N` (the suites run again so
/// in CI), else as it is.
pub fn with_test_workers(mut toml: String) -> String {
    let Ok(n) = std::env::var("TWEED_TEST_WORKERS") else { return toml };
    let n: usize = n.parse().unwrap_or_else(|e| panic!("TWEED_TEST_WORKERS={n}: {e}"));
    match toml.find("[agent]\n").filter(|&at| at == 0 || toml[..at].ends_with('\n')) {
        Some(at) => toml.insert_str(at + "[agent]\n".len(), &format!("workers = {n}\n")),
        None => toml.push_str(&format!("\n[agent]\nworkers = {n}\n")),
    }
    toml
}

/// A running agent and its file (deleted with it).
pub struct Agent {
    /// The process.
    pub process: Process,
    _file: tempfile::TempPath,
}

/// Starts `tweed agent` with `toml` inside `node`, and waits until it runs (`within`: many pods take longer).
pub fn start_agent(node: &NetNs, label: &str, toml: &str, within: Duration) -> Agent {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::io::Write::write_all(&mut file, toml.as_bytes()).unwrap();
    let path = file.into_temp_path();
    let config = path.to_str().unwrap().to_owned();
    let mut process = node.spawn(label, &[TWEED, "agent", "--config", &config]).unwrap();
    process.wait_for_log("agent running", within).unwrap_or_else(|e| panic!("{label}: {e}"));
    Agent { process, _file: path }
}

impl Agent {
    /// Stops it with SIGTERM: it must exit 0 within 5 s.
    pub fn stop(self) {
        self.stop_within(Duration::from_secs(5));
    }

    /// Stops it with SIGTERM: it must exit 0 within `grace` (deleting a TAP takes the kernel some 20 ms).
    pub fn stop_within(mut self, grace: Duration) {
        let status = self.process.stop(grace);
        assert!(status.success(), "agent exited with {status}: {}", self.process.log());
    }

    /// Asserts that it still runs.
    pub fn assert_alive(&mut self) {
        assert!(self.process.exited().is_none(), "the agent died: {}", self.process.log());
    }

    /// Its counters now (SIGUSR1, then the new `counters` line of its log): the driver's (`rx_pod`, …), the
    /// node's (`to_peer`, …) and every non-zero drop reason by name.
    pub fn counters(&mut self) -> Counters {
        counters(&mut self.process)
    }
}

/// The counters of the agent `process` now (SIGUSR1, then the new `counters` line of its log); see
/// [`Agent::counters`].
pub fn counters(process: &mut Process) -> Counters {
    let lines = |log: &str| log.lines().filter(|l| l.contains(" counters")).count();
    let before = lines(&process.log());
    assert!(process.signal(libc::SIGUSR1), "the agent is gone: {}", process.log());
    let log = netns::wait_for("the agent's counters", Duration::from_secs(5), || {
        let log = process.log();
        (lines(&log) > before).then_some(log)
    })
    .unwrap_or_else(|e| panic!("{e}: {}", process.log()));
    let line = log.lines().filter(|l| l.contains(" counters")).nth(before).unwrap();
    Counters::parse(line)
}

/// An agent's counters, by name: the driver's and the node's (`rx_pod`, `to_peer`, …), and apart, the non-zero
/// drop reasons (the log line's last field, `drops=a=1 b=2`).
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// The counters before `drops=`.
    pub fields: BTreeMap<String, u64>,
    /// The drop reasons.
    pub drops: BTreeMap<String, u64>,
}

impl Counters {
    /// Reads a `counters` log line.
    pub fn parse(line: &str) -> Self {
        let mut c = Self::default();
        let mut in_drops = false;
        for word in line.split_whitespace() {
            let word = match word.strip_prefix("drops=") {
                Some(rest) => {
                    in_drops = true;
                    rest
                }
                None => word,
            };
            if let Some((k, v)) = word.trim_matches('"').split_once('=')
                && let Ok(v) = v.parse()
            {
                let map = if in_drops { &mut c.drops } else { &mut c.fields };
                map.insert(k.to_owned(), v);
            }
        }
        c
    }

    /// One counter or drop reason (0 when absent).
    pub fn get(&self, name: &str) -> u64 {
        self.fields.get(name).or_else(|| self.drops.get(name)).copied().unwrap_or(0)
    }

    /// Every drop reason's count summed.
    pub fn total_drops(&self) -> u64 {
        self.drops.values().sum()
    }

    /// The drop reasons that grew since `before`, with how much.
    pub fn drops_since(&self, before: &Self) -> BTreeMap<String, u64> {
        self.drops.iter().map(|(k, v)| (k.clone(), v.saturating_sub(before.get(k)))).filter(|(_, v)| *v > 0).collect()
    }
}

/// Sets up `eth0` of a pod whose TAP the agent made: waits for it, configures it.
pub fn wait_pods(pods: &[&Pod]) {
    for p in pods {
        p.wait_eth0(Duration::from_secs(10)).unwrap_or_else(|e| panic!("{}: {e}", p.ns.name()));
    }
}

/// Switches IPv6 off in `ns` (before its links come up), so that its pods send nothing of their own.
pub fn quiet_ipv6(ns: &NetNs) {
    for scope in ["all", "default"] {
        ns.sysctl(&format!("net.ipv6.conf.{scope}.disable_ipv6"), "1").unwrap();
    }
}

/// Held by each test of a file for its whole run: floods and blasts take both CPUs of a small machine, and a
/// test beside one would measure the machine rather than the agent.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether the agent takes a pod's own addresses (`[[pods]] addresses = […]`, which port security needs): asked
/// once of `tweed agent --check`. An agent from before port security refuses the field.
pub fn agent_takes_pod_addresses() -> bool {
    static KNOWN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *KNOWN.get_or_init(|| {
        let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        let toml = "[node]\npod_subnet = \"10.244.1.0/24\"\n[node.underlay]\nnode_ip = \"192.168.0.1\"\n\
                    node_mac = \"02:00:00:00:00:09\"\n[node.backend]\ntype = \"vxlan\"\nvtep_mac = \"02:00:00:00:00:01\"\n\
                    [[pods]]\ntap = \"eth0\"\naddresses = [\"10.244.1.2\"]\n";
        std::fs::write(file.path(), toml).unwrap();
        let out = std::process::Command::new(TWEED).args(["agent", "--check", "--config"]).arg(file.path()).output();
        out.is_ok_and(|o| o.status.success())
    })
}
