//! An agent in this process, on real devices in a network namespace (root; skipped with one line elsewhere, a
//! failure under `TWEED_REQUIRE_ALL=1`): what embedders and tests get without the command line.
#![cfg(target_os = "linux")]

#[path = "../../tweed-io/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::netns::NetNs;
use tweed_agent::{Agent, AgentFile, StatsTrigger, System};

/// The file of an agent with one TAP pod in `ns`, vxlan on the loopback at a port of its own, `workers` workers.
fn file(ns: &NetNs, workers: usize) -> AgentFile {
    let port = 40_000 + (std::process::id() % 20_000) + u32::try_from(workers).unwrap();
    let text = format!(
        r#"
[node]
pod_subnet = "10.244.1.0/24"
[node.underlay]
node_ip = "127.0.0.1"
node_mac = "02:00:c0:a8:00:01"
[node.backend]
type = "vxlan"
vtep_mac = "02:00:00:00:00:01"
port = {port}

[[pods]]
tap = "eth0"
netns = "{}"

[agent]
workers = {workers}
"#,
        ns.name()
    );
    AgentFile::from_toml_str(&text).unwrap()
}

/// Finding 10: the agent's pod TAP takes the node's inner MTU (1450 under vxlan over a 1500-byte underlay) when
/// the file gives none, not the kernel's 1500. With two workers the TAP has a queue each; the agent runs on a
/// thread of its own until its stop handle fires, returns its counters, and its devices are gone after.
#[test]
fn an_agent_of_two_workers_runs_in_process_and_cleans_up() {
    skip_unless!(Root, Netns, Tun);
    let ns = NetNs::new("agent").unwrap();
    let stop = tweed_io::Stop::new().unwrap();
    let trigger = StatsTrigger::new();
    let agent = Agent::start(&file(&ns, 2), &System, stop.clone(), &trigger).unwrap();
    assert_eq!(agent.config().workers, 2);
    let show = ns.ip(&["-d", "-o", "link", "show", "dev", "eth0"]).unwrap();
    assert!(show.contains("mtu 1450"), "{show}");
    assert!(show.contains("multi_queue numqueues 2"), "{show}");
    let running = std::thread::spawn(move || agent.run(None));
    trigger.request();
    std::thread::sleep(Duration::from_millis(200));
    stop.stop();
    let stats = running.join().unwrap().unwrap();
    assert_eq!(stats.workers, 2);
    assert_eq!(stats.driver.ports_closed, 0);
    let show = ns.ip(&["-o", "link", "show"]).unwrap();
    assert!(!show.contains("eth0"), "deleted with the agent: {show}");
}

/// One worker: the TAP is single-queue, as before workers.
#[test]
fn one_worker_keeps_a_single_queue_tap() {
    skip_unless!(Root, Netns, Tun);
    let ns = NetNs::new("agent1").unwrap();
    let stop = tweed_io::Stop::new().unwrap();
    let agent = Agent::start(&file(&ns, 1), &System, stop.clone(), &StatsTrigger::new()).unwrap();
    let show = ns.ip(&["-d", "-o", "link", "show", "dev", "eth0"]).unwrap();
    assert!(show.contains("mtu 1450") && !show.contains("multi_queue"), "{show}");
    stop.stop();
    assert_eq!(agent.run(None).unwrap().workers, 1);
}
