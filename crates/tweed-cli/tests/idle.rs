//! An idle `tweed agent` sleeps (issue 14, "Timers"): left two seconds without traffic, it runs only the rounds
//! its own timers ask for, and it still forwards at once afterwards. Root and network namespaces; skipped with
//! one line elsewhere.
#![cfg(target_os = "linux")]

#[path = "../../tweed-io/tests/common/mod.rs"]
mod common;
mod world;

use std::time::{Duration, Instant};

use common::netns::{Pod, ping, ping_until_ok, underlay_pair};
use world::{TapPort, WARM_UP, agent_toml, quiet_ipv6, start_agent, wait_pods};

/// How long the agent is left alone.
const IDLE: Duration = Duration::from_secs(2);

/// The agent's check for pods whose network namespace is gone: its only timer here (the agent's `ORPHAN_CHECK`).
const ORPHAN_CHECK: Duration = Duration::from_secs(1);

/// The most rounds the idle window may hold.
///
/// Node 1's agent has one TAP pod in a namespace, a vxlan peer, no `[store]`, no `--stats` and no
/// `stats_interval_s`, so between two SIGUSR1 dumps its rounds are:
/// - the check for gone pod namespaces (pods live in namespaces): once a second, so at most 3 in a window of
///   [`IDLE`] and the few milliseconds a dump takes (2 s / 1 s = 2, and one more when the window's phase puts a
///   check at each of its edges);
/// - the node's timers (`Node::poll_at`): none, no ARP request is pending (asserted: its
///   `woken_by_timer` does not move);
/// - the control plane's news: none, there is no store; periodic counters: none;
/// - the SIGUSR1 that ends the window: 1 (the round the first one ended is counted before its dump).
///
/// So at most 3 + 1 = 4, where the old 20 ms tick ran 2 s / 20 ms = 100 rounds. That is per worker: each runs
/// its own check and is asked for its counters, and the agent's `rounds` is their sum.
const MAX_IDLE_ROUNDS: u64 = IDLE.as_secs() / ORPHAN_CHECK.as_secs() + 1 + 1;

/// The fewest: one check at least (the window is longer than the check's second), and the ending SIGUSR1. A
/// dead or stuck data path would run fewer.
const MIN_IDLE_ROUNDS: u64 = 2;

/// Node 1's agent, its pod warmed up by a ping to node 2's pod (ARP done, FDB learned), is left two seconds
/// without traffic: its rounds grow by at most [`MAX_IDLE_ROUNDS`] a worker, none woken by a node timer, none with a
/// packet read. Then one ping across still goes through it, both ways.
#[test]
fn idle_agent_wakes_only_for_its_timers() {
    skip_unless!(Root, Netns, Veth, Tun, Ping);
    let started = Instant::now();
    let nodes = underlay_pair(1500).unwrap();
    let (pod, far) = (Pod::new(1, 2).unwrap().with_mtu(1450), Pod::new(2, 2).unwrap().with_mtu(1450));
    // IPv6 would have the pods' kernels speak on their own (router solicitations, MLD), which is traffic.
    for p in [&pod, &far] {
        quiet_ipv6(&p.ns);
    }
    let mut agent1 =
        start_agent(&nodes[0], "agent1", &agent_toml(1, 2, &[TapPort::pod(&pod, Some(1450))], ""), WARM_UP);
    let agent2 = start_agent(&nodes[1], "agent2", &agent_toml(2, 1, &[TapPort::pod(&far, Some(1450))], ""), WARM_UP);
    wait_pods(&[&pod, &far]);
    ping_until_ok(&pod.ns, far.ip(), WARM_UP).unwrap_or_else(|e| panic!("warm-up ping across: {e}"));

    let window = Instant::now();
    let before = agent1.counters();
    std::thread::sleep(IDLE);
    let after = agent1.counters();
    let window = window.elapsed();
    // More than the check's spacing beyond IDLE and the bound no longer holds: the machine, not the agent, stalled.
    assert!(window < IDLE + ORPHAN_CHECK, "the idle window took {window:?}");
    let delta = |name: &str| after.get(name) - before.get(name);
    let rounds = delta("rounds");
    // An agent from before workers does not say: one.
    let workers = after.get("workers").max(1);
    let (min, max) = (MIN_IDLE_ROUNDS * workers, MAX_IDLE_ROUNDS * workers);
    eprintln!("idle agent: {rounds} rounds of {workers} workers in {window:?} (at most {max})");
    for io in ["rx_pod", "rx_underlay"] {
        assert_eq!(delta(io), 0, "{io}: the window was not idle\nbefore: {before:?}\nafter: {after:?}");
    }
    assert_eq!(delta("woken_by_timer"), 0, "the node had a timer due\nbefore: {before:?}\nafter: {after:?}");
    assert!(
        (min..=max).contains(&rounds),
        "an idle agent of {workers} workers ran {rounds} rounds in {window:?}: its timers allow {min} to {max}"
    );

    let p = ping(&pod.ns, far.ip(), 1, &[]).unwrap();
    assert_eq!(p.received, 1, "ping across after the idle window: {}", p.output);
    let last = agent1.counters();
    assert_eq!(last.get("to_peer") - after.get("to_peer"), 1, "the echo request: {last:?}");
    assert_eq!(last.get("from_peer") - after.get("from_peer"), 1, "the echo reply: {last:?}");
    agent1.stop();
    agent2.stop();
    eprintln!("done after {:?}", started.elapsed());
}
