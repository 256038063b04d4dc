//! `tweed agent` on real devices, in network namespaces built by the test (root; skipped with one line elsewhere,
//! a failure under `TWEED_REQUIRE_ALL=1`):
//! 1. two tweed nodes, two pods each (a TAP the agent creates in the pod, and a veth whose host end it attaches
//!    to): ping and iperf3 TCP both ways between pods on different nodes, for vxlan, udp and host-gw;
//! 2. interop: a tweed node and a kernel node set up as flannel sets up `flannel.1`, ping and TCP both ways;
//! 3. MTU: an underlay of 1400, `ping -M do -s 1400` gets "fragmentation needed" with the inner MTU, TCP completes;
//! 4. a pod sending garbage (random bytes, truncated headers, a MAC flood) does not stop the others' traffic;
//! 5. the README's example world and configs run, and stopping leaves no device behind.
#![cfg(target_os = "linux")]

#[path = "../../tweed-io/tests/common/mod.rs"]
mod common;
mod world;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::netns::{
    self, Iperf3Server, KernelFlannel, NetNs, Pod, Process, disable_offloads, iperf3_tcp, node_ip, node_mac, ping,
    ping_until_ok, subnet, tcp_blob, underlay_pair, vtep_mac,
};

const TWEED: &str = env!("CARGO_BIN_EXE_tweed");
const WARM_UP: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Vxlan,
    Udp,
    HostGw,
}

impl Backend {
    const fn overhead(self) -> u32 {
        match self {
            Self::Vxlan => 50,
            Self::Udp => 28,
            Self::HostGw => 0,
        }
    }
}

/// A pod port in an agent's file.
enum PodPort<'a> {
    Tap(&'a Pod),
    Attach(&'a str),
}

/// Node `i`'s agent file, peered with node `j`.
fn agent_toml(i: u8, j: u8, backend: Backend, mtu: u32, pods: &[PodPort<'_>], pod_mtu: u32) -> String {
    let mut t = format!(
        "[node]\npod_subnet = \"{}\"\n[node.underlay]\nnode_ip = \"{}\"\nmtu = {mtu}\n[node.backend]\n",
        subnet(i),
        node_ip(i)
    );
    match backend {
        Backend::Vxlan => writeln!(t, "type = \"vxlan\"\nvtep_mac = \"{}\"", vtep_mac(i)),
        Backend::Udp => writeln!(t, "type = \"udp\""),
        Backend::HostGw => writeln!(t, "type = \"host-gw\""),
    }
    .unwrap();
    writeln!(t, "[[node.peers]]\nsubnet = \"{}\"\nnode_ip = \"{}\"", subnet(j), node_ip(j)).unwrap();
    match backend {
        Backend::Vxlan => writeln!(t, "vtep_mac = \"{}\"", vtep_mac(j)),
        Backend::HostGw => writeln!(t, "node_mac = \"{}\"", node_mac(j)),
        Backend::Udp => Ok(()),
    }
    .unwrap();
    t.push_str("[underlay]\ninterface = \"eth0\"\n");
    for pod in pods {
        match pod {
            PodPort::Tap(p) => {
                writeln!(t, "[[pods]]\ntap = \"eth0\"\nnetns = \"{}\"\nmtu = {pod_mtu}", p.ns.name()).unwrap();
            }
            PodPort::Attach(name) => writeln!(t, "[[pods]]\ninterface = \"{name}\"").unwrap(),
        }
    }
    world::with_test_workers(t)
}

/// Starts `tweed agent` with `toml` inside `node`, and waits until it runs.
fn start_agent(node: &NetNs, label: &str, toml: &str) -> (Process, tempfile::TempPath) {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::io::Write::write_all(&mut file, toml.as_bytes()).unwrap();
    let path = file.into_temp_path();
    let config = path.to_str().unwrap().to_owned();
    let mut agent = node.spawn(label, &[TWEED, "agent", "--config", &config]).unwrap();
    agent.wait_for_log("agent running", Duration::from_secs(10)).unwrap_or_else(|e| panic!("{label}: {e}"));
    (agent, path)
}

/// Stops an agent with SIGTERM: it must exit 0, having deleted its TAPs.
fn stop_agent(mut agent: Process, taps_in: &[&Pod]) {
    let status = agent.stop(Duration::from_secs(5));
    assert!(status.success(), "agent exited with {status}: {}", agent.log());
    assert!(agent.log().contains("agent stopped"), "{}", agent.log());
    for pod in taps_in {
        assert!(!pod.ns.has_link("eth0"), "the agent left eth0 in {}", pod.ns.name());
    }
}

/// Bytes of each known blob: a few MiB, many windows' worth of segments (and of coalesced writes to a TAP).
const BLOB: usize = 4 << 20;

/// A known blob each way between `a` and `b` (one TCP connection each): what arrived is what was sent, byte for
/// byte (iperf3 only counts bytes).
fn blob_both_ways(a: (&NetNs, std::net::Ipv4Addr), b: (&NetNs, std::net::Ipv4Addr), what: &str) {
    for (seed, (from, _), (to, to_ip)) in [(1, a, b), (2, b, a)] {
        let blob = tcp_blob(from, to, to_ip, BLOB, seed).unwrap_or_else(|e| panic!("{what}: blob to {to_ip}: {e}"));
        assert_eq!(blob.sent.0, BLOB as u64, "{what}: blob to {to_ip}");
        assert_eq!(blob.received, blob.sent, "{what}: the blob to {to_ip} arrived changed");
    }
}

/// A known blob both ways (integrity), then iperf3 both ways (its rates).
fn tcp_both_ways(client: &Pod, server: &Pod, what: &str) -> (f64, f64) {
    blob_both_ways((&client.ns, client.ip()), (&server.ns, server.ip()), what);
    iperf_both_ways(client, server, what)
}

/// iperf3 both ways: more than 1 MiB each way, and the rates.
fn iperf_both_ways(client: &Pod, server: &Pod, what: &str) -> (f64, f64) {
    let srv = Iperf3Server::start(&server.ns, server.ip()).unwrap();
    let fwd = iperf3_tcp(&client.ns, &srv, 2, false).unwrap_or_else(|e| panic!("{what}: iperf3: {e}"));
    let rev = iperf3_tcp(&client.ns, &srv, 2, true).unwrap_or_else(|e| panic!("{what}: iperf3 -R: {e}"));
    for (dir, run) in [("forward", &fwd), ("reverse", &rev)] {
        assert!(run.received_bytes > 1 << 20, "{what} {dir}: only {} bytes arrived", run.received_bytes);
    }
    eprintln!("{what}: TCP {:.2} Gbit/s forward, {:.2} Gbit/s reverse", fwd.received_gbps, rev.received_gbps);
    (fwd.received_gbps, rev.received_gbps)
}

/// Two tweed nodes, each with a TAP pod (.2) and a veth pod (.3); pings and TCP across nodes, a ping on one node.
fn two_nodes(backend: Backend) {
    skip_unless!(Root, Netns, Veth, Tun, Ping, Iperf3, Ethtool);
    let pod_mtu = 1500 - backend.overhead();
    let [n1, n2] = underlay_pair(1500).unwrap();
    let nodes = [&n1, &n2];
    let mut taps = Vec::new();
    let mut veths = Vec::new();
    // Without IPv6 the nodes' and pods' kernels send nothing of their own (router solicitations, MLD reports),
    // which the agents would count as drops: a clean run then drops nothing at all.
    for n in nodes {
        world::quiet_ipv6(n);
    }
    for i in 1..=2u8 {
        let t = Pod::new(i, 2).unwrap().with_mtu(pod_mtu);
        world::quiet_ipv6(&t.ns);
        taps.push(t);
        let v = Pod::new(i, 3).unwrap().with_mtu(pod_mtu);
        world::quiet_ipv6(&v.ns);
        v.veth_to(nodes[usize::from(i - 1)], "vpod3").unwrap();
        // A packet socket sees what the pod sends as is: no segmentation or checksum offloads.
        disable_offloads(&v.ns, "eth0").unwrap();
        veths.push(v);
    }
    let agents: Vec<_> = (1..=2u8)
        .map(|i| {
            let k = usize::from(i - 1);
            let toml =
                agent_toml(i, 3 - i, backend, 1500, &[PodPort::Tap(&taps[k]), PodPort::Attach("vpod3")], pod_mtu);
            start_agent(nodes[k], &format!("agent{i}"), &toml)
        })
        .collect();
    for p in &taps {
        p.wait_eth0(Duration::from_secs(5)).unwrap();
    }
    let what = format!("{backend:?}");
    for (a, b) in [(&taps[0], &taps[1]), (&veths[0], &veths[1]), (&taps[0], &veths[1]), (&veths[1], &taps[0])] {
        ping_until_ok(&a.ns, b.ip(), WARM_UP).unwrap_or_else(|e| panic!("{what}: {} -> {}: {e}", a.ip(), b.ip()));
        let p = ping(&a.ns, b.ip(), 3, &["-i", "0.2", "-w", "4"]).unwrap();
        assert_eq!(p.received, 3, "{what}: {} -> {}: {}", a.ip(), b.ip(), p.output);
    }
    let same = ping(&taps[0].ns, veths[0].ip(), 3, &["-i", "0.2", "-w", "4"]).unwrap();
    assert_eq!(same.received, 3, "{what}: same node: {}", same.output);
    // The blobs between TAP pods go through the coalescing path (TCP segments for a TAP pod written coalesced,
    // behind a virtio-net header with GSO and a partial checksum the pod's kernel trusts): both agents wrote some
    // that way while they passed, and the bytes are the bytes sent.
    let mut agents = agents;
    let before: Vec<_> = agents.iter_mut().map(|(a, _)| world::counters(a)).collect();
    blob_both_ways((&taps[0].ns, taps[0].ip()), (&taps[1].ns, taps[1].ip()), &format!("{what} tap-tap"));
    for (k, (agent, _)) in agents.iter_mut().enumerate() {
        let coalesced = world::counters(agent).get("coalesced_writes") - before[k].get("coalesced_writes");
        assert!(coalesced > 0, "{what}: agent {} wrote no coalesced TAP write for the blobs", k + 1);
    }
    iperf_both_ways(&taps[0], &taps[1], &format!("{what} tap-tap"));
    tcp_both_ways(&veths[0], &taps[1], &format!("{what} veth-tap"));
    // A clean run drops nothing, anywhere.
    for (k, (agent, _)) in agents.iter_mut().enumerate() {
        assert_clean(&world::counters(agent), &format!("{what}: agent {}", k + 1));
    }
    for ((agent, _file), tap) in agents.into_iter().zip(&taps) {
        stop_agent(agent, &[tap]);
    }
}

/// Asserts that an agent's counters show no drop: no drop reason, no device write dropped, no read error.
fn assert_clean(c: &world::Counters, what: &str) {
    let dropped = [("tx_dropped", c.get("tx_dropped")), ("rx_errors", c.get("rx_errors"))];
    assert!(c.drops.is_empty() && dropped.iter().all(|&(_, n)| n == 0), "{what}: drops {:?}, {dropped:?}", c.drops);
}

/// `toml` with `[agent] workers = n`, whatever `TWEED_TEST_WORKERS` says.
fn with_workers(toml: &str, n: usize) -> String {
    match toml.find("\nworkers = ") {
        Some(at) => {
            let end = toml[at + 1..].find('\n').map_or(toml.len(), |e| at + 1 + e);
            format!("{}\nworkers = {n}{}", &toml[..at], &toml[end..])
        }
        None => format!("{toml}[agent]\nworkers = {n}\n"),
    }
}

/// Two agents of two workers each (a TAP queue per pod and an underlay socket per worker, port security on):
/// pings and TCP (known blobs and iperf3) between two pods on each node, across nodes and on one node; a clean
/// run drops nothing, and each agent says it runs two workers.
fn two_workers_each(backend: Backend) {
    skip_unless!(Root, Netns, Veth, Tun, Ping, Iperf3);
    let pod_mtu = 1500 - backend.overhead();
    let [n1, n2] = underlay_pair(1500).unwrap();
    let nodes = [&n1, &n2];
    for n in nodes {
        world::quiet_ipv6(n);
    }
    let pods: Vec<[Pod; 2]> = (1..=2u8)
        .map(|i| {
            let p = [Pod::new(i, 2).unwrap().with_mtu(pod_mtu), Pod::new(i, 3).unwrap().with_mtu(pod_mtu)];
            p.iter().for_each(|p| world::quiet_ipv6(&p.ns));
            p
        })
        .collect();
    let mut agents: Vec<_> = (1..=2u8)
        .map(|i| {
            let k = usize::from(i - 1);
            let toml =
                agent_toml(i, 3 - i, backend, 1500, &[PodPort::Tap(&pods[k][0]), PodPort::Tap(&pods[k][1])], pod_mtu);
            start_agent(nodes[k], &format!("agent{i}"), &with_workers(&toml, 2))
        })
        .collect();
    for p in pods.iter().flatten() {
        p.wait_eth0(Duration::from_secs(5)).unwrap();
    }
    let what = format!("{backend:?}, 2 workers");
    let pairs = [
        (&pods[0][0], &pods[1][0]),
        (&pods[0][1], &pods[1][1]),
        (&pods[1][0], &pods[0][1]),
        (&pods[0][0], &pods[0][1]),
    ];
    for (a, b) in pairs {
        ping_until_ok(&a.ns, b.ip(), WARM_UP).unwrap_or_else(|e| panic!("{what}: {} -> {}: {e}", a.ip(), b.ip()));
        let p = ping(&a.ns, b.ip(), 5, &["-i", "0.2", "-w", "4"]).unwrap();
        assert_eq!(p.received, 5, "{what}: {} -> {}: {}", a.ip(), b.ip(), p.output);
    }
    for (a, b) in pairs {
        tcp_both_ways(a, b, &format!("{what}: {} <-> {}", a.ip(), b.ip()));
    }
    for (k, (agent, _)) in agents.iter_mut().enumerate() {
        let c = world::counters(agent);
        assert_eq!(c.get("workers"), 2, "agent {}: {c:?}", k + 1);
        assert_clean(&c, &format!("{what}: agent {}", k + 1));
    }
    for ((agent, _file), p) in agents.into_iter().zip(&pods) {
        stop_agent(agent, &[&p[0], &p[1]]);
    }
}

#[test]
fn vxlan_two_workers_each() {
    two_workers_each(Backend::Vxlan);
}

#[test]
fn udp_two_workers_each() {
    two_workers_each(Backend::Udp);
}

#[test]
fn vxlan_between_two_tweed_nodes() {
    two_nodes(Backend::Vxlan);
}

#[test]
fn udp_between_two_tweed_nodes() {
    two_nodes(Backend::Udp);
}

#[test]
fn host_gw_between_two_tweed_nodes() {
    two_nodes(Backend::HostGw);
}

/// A tweed node and a kernel node configured as flannel configures `flannel.1`: ping and TCP both ways.
#[test]
fn interop_with_kernel_flannel_vxlan() {
    skip_unless!(Root, Netns, Veth, Bridge, Vxlan, Tun, Ping, Iperf3, Ethtool);
    let [n1, n2] = underlay_pair(1500).unwrap();
    // A veth hands the kernel's packets over with the inner TCP checksum unfinished (CHECKSUM_PARTIAL: only
    // another kernel on the same host may trust that); a NIC finishes it on the way to the wire, and so does the
    // kernel when the underlay has no checksum offload. The wire then carries what a real network would.
    disable_offloads(&n2, "eth0").unwrap();
    let kernel = KernelFlannel::new(n2, 2, "eth0", 1500).unwrap();
    kernel.add_peer(1, vtep_mac(1), node_ip(1)).unwrap();
    let kpod = kernel.add_pod(2).unwrap();
    let tpod = Pod::new(1, 2).unwrap().with_mtu(1450);
    let (agent, _file) =
        start_agent(&n1, "agent1", &agent_toml(1, 2, Backend::Vxlan, 1500, &[PodPort::Tap(&tpod)], 1450));
    tpod.wait_eth0(Duration::from_secs(5)).unwrap();
    for (a, b, dir) in [(&tpod, &kpod, "tweed -> kernel"), (&kpod, &tpod, "kernel -> tweed")] {
        ping_until_ok(&a.ns, b.ip(), WARM_UP).unwrap_or_else(|e| panic!("{dir}: {e}"));
        let p = ping(&a.ns, b.ip(), 3, &["-i", "0.2", "-w", "4"]).unwrap();
        assert_eq!(p.received, 3, "{dir}: {}", p.output);
        assert!(p.output.contains("ttl=62"), "{dir}: two routers on the path: {}", p.output);
    }
    tcp_both_ways(&tpod, &kpod, "interop tweed client");
    tcp_both_ways(&kpod, &tpod, "interop kernel client");
    stop_agent(agent, &[&tpod]);
}

/// The host of node 1 reaches its own pod and node 2's through the agent's `[host]` TUN (the gateway address,
/// routes to the pod subnets): ping both (the far pod's answer routed once, by node 2), and TCP both ways with the
/// far pod. The TUN goes with the agent.
#[test]
fn the_host_reaches_pods_through_its_tun() {
    skip_unless!(Root, Netns, Veth, Tun, Ping, Iperf3);
    let [n1, n2] = underlay_pair(1500).unwrap();
    let near = Pod::new(1, 2).unwrap().with_mtu(1450);
    let far = Pod::new(2, 2).unwrap().with_mtu(1450);
    let host = "[host]\ntun = \"tweed0\"\n";
    let toml1 = agent_toml(1, 2, Backend::Vxlan, 1500, &[PodPort::Tap(&near)], 1450) + host;
    let (a1, _f1) = start_agent(&n1, "agent1", &toml1);
    let (a2, _f2) = start_agent(&n2, "agent2", &agent_toml(2, 1, Backend::Vxlan, 1500, &[PodPort::Tap(&far)], 1450));
    for p in [&near, &far] {
        p.wait_eth0(Duration::from_secs(5)).unwrap();
    }
    let routes = n1.run(&["ip", "-4", "route", "show", "dev", "tweed0"]).unwrap();
    assert!(routes.contains("10.244.1.0/24") && routes.contains("10.244.2.0/24"), "{routes}");
    for (pod, ttl) in [(&near, "ttl=64"), (&far, "ttl=63")] {
        ping_until_ok(&n1, pod.ip(), WARM_UP).unwrap_or_else(|e| panic!("host -> {}: {e}", pod.ip()));
        let p = ping(&n1, pod.ip(), 3, &["-i", "0.2", "-w", "4"]).unwrap();
        assert_eq!(p.received, 3, "host -> {}: {}", pod.ip(), p.output);
        assert!(p.output.contains(ttl), "host -> {}: {}", pod.ip(), p.output);
    }
    blob_both_ways((&n1, near.gateway()), (&far.ns, far.ip()), "host <-> far pod");
    let srv = Iperf3Server::start(&far.ns, far.ip()).unwrap();
    for reverse in [false, true] {
        let run = iperf3_tcp(&n1, &srv, 2, reverse).unwrap_or_else(|e| panic!("host iperf3 (-R {reverse}): {e}"));
        assert!(run.received_bytes > 1 << 20, "host TCP (-R {reverse}): only {} bytes", run.received_bytes);
        eprintln!("host <-> far pod (-R {reverse}): TCP {:.2} Gbit/s", run.received_gbps);
    }
    drop(srv);
    stop_agent(a1, &[&near]);
    assert!(!n1.has_link("tweed0"), "the agent left its TUN");
    stop_agent(a2, &[&far]);
}

/// An underlay MTU of 1400: a pod (MTU 1500) that pings with DF and 1400 bytes is told "fragmentation needed" with
/// the inner MTU (1400 − 50), and TCP still gets through (the pod learns the path MTU).
#[test]
fn mtu_fragmentation_needed_and_pmtu() {
    skip_unless!(Root, Netns, Veth, Tun, Ping, Iperf3);
    let [n1, n2] = underlay_pair(1400).unwrap();
    let pods = [Pod::new(1, 2).unwrap().with_mtu(1500), Pod::new(2, 2).unwrap().with_mtu(1500)];
    let agents: Vec<_> = [&n1, &n2]
        .iter()
        .zip(1..=2u8)
        .map(|(n, i)| {
            let toml = agent_toml(i, 3 - i, Backend::Vxlan, 1400, &[PodPort::Tap(&pods[usize::from(i - 1)])], 1500);
            start_agent(n, &format!("agent{i}"), &toml)
        })
        .collect();
    for p in &pods {
        p.wait_eth0(Duration::from_secs(5)).unwrap();
    }
    ping_until_ok(&pods[0].ns, pods[1].ip(), WARM_UP).unwrap();
    let big = ping(&pods[0].ns, pods[1].ip(), 2, &["-M", "do", "-s", "1400", "-i", "0.3"]).unwrap();
    assert_eq!(big.received, 0, "{}", big.output);
    assert_eq!(big.frag_needed_mtu(), Some(1350), "{}", big.output);
    let fits = ping(&pods[0].ns, pods[1].ip(), 2, &["-M", "do", "-s", "1322", "-i", "0.3", "-w", "4"]).unwrap();
    assert_eq!(fits.received, 2, "1322 + 28 = 1350 fits: {}", fits.output);
    tcp_both_ways(&pods[0], &pods[1], "pmtu");
    for ((agent, _), pod) in agents.into_iter().zip(&pods) {
        stop_agent(agent, &[pod]);
    }
}

/// SplitMix64: the garbage is random but the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// The transmit counters of `eth0` in the namespace of process `pid` (`/proc/<pid>/net/dev`): packets and drops.
fn tap_tx(pid: u32) -> (u64, u64) {
    let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap();
    let line = dev.lines().find_map(|l| l.trim_start().strip_prefix("eth0:")).unwrap_or_else(|| panic!("{dev}"));
    // Receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets errs drop …
    let f: Vec<u64> = line.split_whitespace().map(|v| v.parse().unwrap()).collect();
    (f[9], f[11])
}

/// One frame of garbage: random bytes, a header that lies about its length, a truncated ARP, or a frame from a
/// new random source MAC (a MAC flood).
fn garbage(rng: &mut Rng, gw: [u8; 6]) -> Vec<u8> {
    let kind = rng.next() % 4;
    let mut src = rng.bytes(6);
    src[0] &= 0xfe; // unicast, so the bridge would learn it
    match kind {
        0 => {
            let n = 14 + (rng.next() % 1500) as usize;
            rng.bytes(n)
        }
        1 => {
            // IPv4 to the gateway whose IHL and total length lie.
            let mut f = gw.to_vec();
            f.extend_from_slice(&src);
            f.extend_from_slice(&[0x08, 0x00, 0x4f, 0, 0xff, 0xff]);
            let extra = (rng.next() % 40) as usize;
            f.extend(rng.bytes(extra));
            f
        }
        2 => {
            let mut f = vec![0xff; 6];
            f.extend_from_slice(&src);
            f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4]);
            f
        }
        _ => {
            let mut f = vec![0xff; 6];
            f.extend_from_slice(&src);
            f.extend_from_slice(&[0x88, 0xb5]);
            f.extend(rng.bytes(46));
            f
        }
    }
}

/// A pod floods its node with garbage while two other pods ping and run TCP (a known blob, then iperf3) through
/// the same node, the flood lasting until those measurements end. The node read most of the garbage (its
/// counters against what the flooding pod's kernel handed over), counted it under the drop reasons its kinds
/// earn, and learned no more of its random source MACs than a port may hold.
#[test]
fn garbage_from_a_pod_does_not_stop_the_others() {
    skip_unless!(Root, Netns, Veth, Tun, Ping, Iperf3);
    let [n1, n2] = underlay_pair(1500).unwrap();
    let bad = Pod::new(1, 2).unwrap().with_mtu(1450);
    let good = Pod::new(1, 3).unwrap().with_mtu(1450);
    let far = Pod::new(2, 2).unwrap().with_mtu(1450);
    // Only the flood and the measurements: no IPv6 chatter of the pods' kernels in the counters.
    for p in [&bad, &good, &far] {
        world::quiet_ipv6(&p.ns);
    }
    let (mut a1, _f1) = start_agent(
        &n1,
        "agent1",
        &agent_toml(1, 2, Backend::Vxlan, 1500, &[PodPort::Tap(&bad), PodPort::Tap(&good)], 1450),
    );
    let (a2, _f2) = start_agent(&n2, "agent2", &agent_toml(2, 1, Backend::Vxlan, 1500, &[PodPort::Tap(&far)], 1450));
    for p in [&bad, &good, &far] {
        p.wait_eth0(Duration::from_secs(5)).unwrap();
    }
    ping_until_ok(&good.ns, far.ip(), WARM_UP).unwrap();

    // What the TAPs handed to the agent: a TAP counts a frame as transmitted when the agent reads it, as dropped
    // when its queue is full. Read from /proc/<pid>/net/dev of a process inside each pod, cheap enough to pace
    // the flood by.
    let sleeper = |p: &Pod| {
        let process = p.ns.spawn("sleeper", &["sleep", "300"]).unwrap();
        // In the pod's namespace once `ip netns exec` has entered it (before, /proc/<pid>/net is the root's).
        let ns =
            std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(format!("/run/netns/{}", p.ns.name())).unwrap());
        let (link, want) = (format!("/proc/{}/ns/net", process.pid()), PathBuf::from(format!("net:[{ns}]")));
        netns::wait_for("a process in the pod", Duration::from_secs(5), || {
            (std::fs::read_link(&link).ok()? == want).then_some(())
        })
        .unwrap();
        process
    };
    let (bad_in, good_in) = (sleeper(&bad), sleeper(&good));
    let tap = |sleeper: &Process| tap_tx(sleeper.pid());
    let before = world::counters(&mut a1);
    let ((bad_read0, bad_lost0), (good_read0, _)) = (tap(&bad_in), tap(&good_in));
    let netns = PathBuf::from("/var/run/netns").join(bad.ns.name());
    let stop = AtomicBool::new(false);
    let (sent, during, fwd) = std::thread::scope(|s| {
        let flood = s.spawn(|| {
            let sock = tweed_io::PacketSocket::attach("eth0", Some(&netns)).expect("packet socket in the bad pod");
            let gw = [0x0a, 0x58, 10, 244, 1, 1];
            let mut rng = Rng(0x7eed);
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..64 {
                    let f = garbage(&mut rng, gw);
                    sent += u64::from(matches!(sock.send(&f), Ok(true)));
                }
                // As fast as the agent reads: a few hundred frames ahead of it, short of the TAP's queue (500),
                // so that what is sent is what reaches the node (one writer outruns a debug build's reader).
                while !stop.load(Ordering::Relaxed) {
                    let (read, lost) = tap(&bad_in);
                    if sent < (read - bad_read0) + (lost - bad_lost0) + 256 {
                        break;
                    }
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            sent
        });
        // The flood is under way once the agent has read a thousand frames of it.
        let started = netns::wait_for("the flood at the agent", Duration::from_secs(10), || {
            (tap(&bad_in).0 > bad_read0 + 1000).then_some(())
        });
        let measured = started.map(|()| {
            // Up to 4 s for 4 replies: one lost or late reply is not a stopped pod.
            let during = ping(&good.ns, far.ip(), 4, &["-i", "0.2", "-w", "4"]).unwrap();
            let (fwd, _) = tcp_both_ways(&good, &far, "during the flood");
            (during, fwd)
        });
        stop.store(true, Ordering::Relaxed);
        let sent = flood.join().unwrap();
        let (during, fwd) = measured.unwrap();
        (sent, during, fwd)
    });
    let after = world::counters(&mut a1);
    let ((bad_read, bad_lost), (good_read, _)) = (tap(&bad_in), tap(&good_in));
    let (bad_read, bad_lost, good_read) = (bad_read - bad_read0, bad_lost - bad_lost0, good_read - good_read0);
    let grew = after.drops_since(&before);
    let dropped: u64 = grew.values().sum();
    let switched = after.get("switched") - before.get("switched");
    eprintln!(
        "garbage: {sent} frames sent, {bad_read} read from the TAP by the agent, {bad_lost} lost at the TAP; \
         {switched} switched, drops {grew:?}; {good_read} frames read from the good pod"
    );
    assert!(during.received >= 4, "pings during the flood: {}", during.output);
    assert!(fwd > 0.01, "TCP during the flood: {fwd} Gbit/s");
    // The flood reached the node: what the socket took, its TAP handed to the agent (or shed, queue full); the
    // agent read nearly all of it.
    assert!(sent > 10_000, "the flood sent only {sent} frames");
    assert!((sent..sent + 10).contains(&(bad_read + bad_lost)), "{sent} sent, the TAP saw {bad_read} + {bad_lost}");
    assert!(bad_read * 10 > sent * 9, "the agent read {bad_read} of {sent} frames of garbage ({bad_lost} shed)");
    // Every frame of garbage it read met a fate in its counters: dropped (under a reason) or switched (flooded
    // to the good pod, as a bridge does); of the good pod's frames, a broadcast may be switched too.
    assert!(
        (bad_read..=bad_read + good_read).contains(&(dropped + switched)),
        "{bad_read} frames of garbage read, {dropped} dropped + {switched} switched ({good_read} from the good pod)"
    );
    // Each kind met its drop reasons: an IPv4 header that lies about its length (malformed, or, when it is long
    // enough to hold addresses, from a source address not the pod's: port security looks first), a truncated
    // ARP (a quarter of the frames each), a multicast source MAC (half of the random frames).
    let kinds: [(&[&str], u64); 3] =
        [(&["ipv4_malformed", "pod_source_spoofed"], 8), (&["arp_malformed"], 8), (&["bridge_invalid_source"], 16)];
    for (reasons, share) in kinds {
        let n: u64 = reasons.iter().map(|r| grew.get(*r).copied().unwrap_or(0)).sum();
        assert!(n * share > bad_read, "{reasons:?} grew by {n} of {bad_read} frames of garbage read: {grew:?}");
    }
    assert!(grew.get("ipv4_malformed").is_some_and(|&n| n > 0), "no ipv4_malformed: {grew:?}");
    // The random source MACs filled the bad pod's port to its limit of learned entries and no further: the
    // bridge holds those and the good pod's MAC.
    match after.fields.get("fdb_learned") {
        Some(&learned) => {
            // tweed_switch::PortConfig::DEFAULT_MAX_LEARNED, as documented.
            let limit = 64;
            assert!(learned == limit + 1, "{learned} learned MACs after the flood; the port limit is {limit}");
        }
        None => netns::skip("the FDB bound: the agent's counters do not show fdb_learned"),
    }
    let after_ping = ping(&good.ns, far.ip(), 3, &["-i", "0.2", "-w", "4"]).unwrap();
    assert_eq!(after_ping.received, 3, "after the flood: {}", after_ping.output);
    assert!(a1.exited().is_none(), "the agent died: {}", a1.log());
    stop_agent(a1, &[&bad, &good]);
    stop_agent(a2, &[&far]);
}

/// The README's example: `examples/agent/world.sh up`, the two agents on `examples/agent/node{1,2}.toml`,
/// `world.sh pods`, a ping across; SIGTERM stops both cleanly and no device is left in the pods; `world.sh down`
/// leaves no namespace.
#[test]
fn readme_example_world() {
    skip_unless!(Root, Netns, Veth, Tun, Ping);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let world = root.join("examples/agent/world.sh");
    let world = world.to_str().unwrap();
    /// Deletes the example's fixed-name namespaces, also when the test fails.
    struct Down<'a>(&'a str);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = netns::run(&[self.0, "down"]);
        }
    }
    let _ = netns::run(&[world, "down"]);
    let down = Down(world);
    netns::run(&[world, "up"]).unwrap();
    let mut agents = Vec::new();
    for i in 1..=2 {
        let config = root.join(format!("examples/agent/node{i}.toml"));
        let argv =
            ["ip", "netns", "exec", &format!("tweed-node{i}"), TWEED, "agent", "--config", config.to_str().unwrap()];
        let mut agent = Process::spawn(&format!("readme-agent{i}"), &argv).unwrap();
        agent.wait_for_log("agent running", Duration::from_secs(10)).unwrap();
        agents.push(agent);
    }
    netns::run(&[world, "pods"]).unwrap();
    let pod11 = netns::run(&["ip", "netns", "exec", "tweed-pod11", "ping", "-c", "1", "-W", "1", "10.244.2.3"]);
    let mut ok = pod11.is_ok();
    let start = Instant::now();
    while !ok && start.elapsed() < WARM_UP {
        ok = netns::run(&["ip", "netns", "exec", "tweed-pod11", "ping", "-c", "1", "-W", "1", "10.244.2.3"]).is_ok();
    }
    assert!(ok, "pod11 cannot reach 10.244.2.3");
    for mut agent in agents {
        let status = agent.stop(Duration::from_secs(5));
        assert!(status.success(), "{}", agent.log());
    }
    for pod in ["tweed-pod11", "tweed-pod12", "tweed-pod21", "tweed-pod22"] {
        let links = netns::run(&["ip", "-n", pod, "-o", "link"]).unwrap();
        assert!(!links.contains("eth0"), "{pod} still has eth0: {links}");
    }
    drop(down);
    let left = netns::run(&["ip", "netns", "list"]).unwrap();
    assert!(!left.contains("tweed-"), "namespaces left behind: {left}");
}

/// A device that exists already, and a missing privilege, are refused with a message that says what to do; a
/// bad field is named.
#[test]
fn agent_errors_say_what_to_do() {
    let bad = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(bad.path(), "[node]\npod_subnet = \"10.244.1.0/24\"\n[node.underlay]\nnode_ip = \"192.168.0.1\"\nnode_mac = \"02:00:00:00:00:01\"\n[node.backend]\ntype = \"vxlan\"\nvtep_mac = \"01:00:00:00:00:01\"\n").unwrap();
    let out = std::process::Command::new(TWEED).args(["agent", "--config"]).arg(bad.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("backend.vtep_mac") && err.contains(bad.path().to_str().unwrap()), "{err}");

    skip_unless!(Root, Netns, Tun);
    let [n1, _n2] = underlay_pair(1500).unwrap();
    let pod = Pod::new(1, 2).unwrap();
    pod.ns.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"]).unwrap();
    let toml = agent_toml(1, 2, Backend::Vxlan, 1500, &[PodPort::Tap(&pod)], 1450);
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), &toml).unwrap();
    // Readable by the unprivileged user below.
    std::fs::set_permissions(file.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let config = file.path().to_str().unwrap();
    let out = n1.exec(&[TWEED, "agent", "--config", config], Duration::from_secs(10)).unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("device eth0 exists already") && out.stderr.contains(pod.ns.name()), "{}", out.stderr);

    if netns::run(&["which", "setpriv"]).is_err() {
        return netns::skip("the missing-privilege check: no setpriv (Debian: util-linux)");
    }
    let argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", TWEED, "agent", "--config", config];
    let out = netns::exec(&argv, Duration::from_secs(10)).unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("needs CAP_NET_ADMIN"), "{}", out.stderr);
}

/// Three nodes on one L2 underlay (a bridge in its own namespace), 192.168.0.1–3.
fn three_node_underlay() -> (NetNs, Vec<NetNs>, Vec<netns::Veth>) {
    let sw = NetNs::new("sw").unwrap();
    sw.ip(&["link", "add", "br0", "type", "bridge"]).unwrap();
    sw.ip(&["addr", "add", "192.168.0.254/24", "dev", "br0"]).unwrap();
    sw.ip(&["link", "set", "br0", "up"]).unwrap();
    let nodes: Vec<NetNs> = (1..=3).map(|i| NetNs::new(&format!("node{i}")).unwrap()).collect();
    let links = nodes
        .iter()
        .zip(1..=3u8)
        .map(|(n, i)| {
            let addr = format!("{}/24", node_ip(i)).parse().unwrap();
            netns::veth(
                netns::End::new(n, "eth0").mac(node_mac(i)).addr(addr),
                netns::End::new(&sw, &format!("p{i}")).master("br0"),
            )
            .unwrap()
        })
        .collect();
    (sw, nodes, links)
}

/// The subnet an agent's log says it leased.
fn leased_subnet(agent: &mut Process) -> ipnet::Ipv4Net {
    agent.wait_for_log("lease acquired", Duration::from_secs(10)).unwrap();
    let log = agent.log();
    let line = log.lines().find(|l| l.contains("lease acquired")).unwrap();
    let at = line.find("subnet=").unwrap() + "subnet=".len();
    let text: String = line[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '/').collect();
    text.parse().unwrap_or_else(|e| panic!("{text:?} in {line:?}: {e}"))
}

/// Every peer subnet an agent's log says it removed (`peers report=revision 7: removed 10.244.3.0/24, …; …`).
fn removed_peers(log: &str) -> Vec<ipnet::Ipv4Net> {
    let subnet = |t: &str| -> ipnet::Ipv4Net {
        let t: String = t.trim().chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '/').collect();
        t.parse().unwrap_or_else(|e| panic!("{t:?} in {log}: {e}"))
    };
    log.lines()
        .filter_map(|l| l.split("removed ").nth(1))
        .flat_map(|rest| rest.split(';').next().unwrap_or_default().split(", ").map(subnet).collect::<Vec<_>>())
        .collect()
}

/// Gives a pod's eth0 (a TAP the agent made) the second address of `subnet` and a default route via the first.
fn address_pod(ns: &NetNs, subnet: ipnet::Ipv4Net) -> std::net::Ipv4Addr {
    ns.wait_for_link("eth0", Duration::from_secs(5)).unwrap();
    let net = u32::from(subnet.network());
    let (gw, ip) = (std::net::Ipv4Addr::from(net + 1), std::net::Ipv4Addr::from(net + 2));
    ns.ip(&["addr", "add", &format!("{ip}/{}", subnet.prefix_len()), "dev", "eth0"]).unwrap();
    ns.ip(&["link", "set", "eth0", "up"]).unwrap();
    ns.ip(&["route", "add", "default", "via", &gw.to_string()]).unwrap();
    ip
}

/// Node `i`'s agent file with a lease store (leases living `ttl_s`), a subnet file in `dir`, and no pod subnet.
fn store_toml(i: u8, pod: &NetNs, store: &str, ttl_s: u64, dir: &std::path::Path) -> String {
    world::with_test_workers(format!(
        "[node]\n[node.underlay]\nnode_ip = \"{}\"\n[node.backend]\ntype = \"vxlan\"\nvtep_mac = \"{}\"\n\
         [underlay]\ninterface = \"eth0\"\n[[pods]]\ntap = \"eth0\"\nnetns = \"{}\"\nmtu = 1450\n\
         [store]\n{store}\nttl_s = {ttl_s}\npoll_ms = 200\nsubnet_file = \"{}\"\n\
         network = '{{\"Network\": \"10.244.0.0/16\", \"SubnetLen\": 24, \"Backend\": {{\"Type\": \"vxlan\"}}}}'\n",
        node_ip(i),
        vtep_mac(i),
        pod.name(),
        subnet_file(dir, i).display()
    ))
}

/// Where node `i` writes flannel's subnet.env.
fn subnet_file(dir: &std::path::Path, i: u8) -> std::path::PathBuf {
    dir.join(format!("node{i}/subnet.env"))
}

/// Three agents on one lease store (leases living `ttl_s`): distinct subnets, every pod reaches every other, and
/// each agent writes flannel's subnet.env; `extra` runs next (an etcd restart), after which every pod still reaches
/// the others and no lease was lost. Then a stopped agent's lease expires and the others drop its route (their
/// gateway answers "net unreachable"); restarted, it gets its old subnet back (from its subnet file) and is
/// reachable again.
fn agents_follow_the_store(
    world: (NetNs, Vec<NetNs>, Vec<netns::Veth>),
    store: &str,
    ttl_s: u64,
    extra: impl FnOnce(&[NetNs], &[std::net::Ipv4Addr]),
) {
    let (_sw, nodes, _links) = world;
    let dir = tempfile::tempdir().unwrap();
    let pods: Vec<NetNs> = (1..=3).map(|i| NetNs::new(&format!("pod{i}")).unwrap()).collect();
    let mut agents = Vec::new();
    let mut files = Vec::new();
    let mut ips = Vec::new();
    let mut subnets = Vec::new();
    for (k, (node, pod)) in nodes.iter().zip(&pods).enumerate() {
        let i = k as u8 + 1;
        let (mut agent, file) = start_agent(node, &format!("agent{i}"), &store_toml(i, pod, store, ttl_s, dir.path()));
        let subnet = leased_subnet(&mut agent);
        let env = std::fs::read_to_string(subnet_file(dir.path(), i)).unwrap();
        let gateway = std::net::Ipv4Addr::from(u32::from(subnet.network()) + 1);
        assert_eq!(
            env,
            format!(
                "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET={gateway}/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"
            )
        );
        ips.push(address_pod(pod, subnet));
        subnets.push(subnet);
        agents.push(agent);
        files.push(file);
    }
    let mut distinct = subnets.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "subnets {subnets:?}");
    let all_reach_all = |pods: &[NetNs], ips: &[std::net::Ipv4Addr]| {
        for (a, pod) in pods.iter().enumerate() {
            for (b, ip) in ips.iter().enumerate().filter(|&(b, _)| b != a) {
                ping_until_ok(pod, *ip, WARM_UP).unwrap_or_else(|e| panic!("pod {a} -> pod {b}: {e}"));
            }
        }
    };
    all_reach_all(&pods, &ips);
    extra(&pods, &ips);
    all_reach_all(&pods, &ips);
    for agent in &agents {
        let log = agent.log();
        assert!(!log.contains("removed") && !log.contains("lost"), "a lease was lost: {log}");
    }
    // Node 3 stops without releasing: its lease runs out, the others remove its route.
    let third = agents.pop().unwrap();
    stop_agent(third, &[]);
    let start = Instant::now();
    loop {
        let p = ping(&pods[0], ips[2], 1, &["-W", "1"]).unwrap();
        if p.output.contains("Unreachable") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(ttl_s + 12), "node 3's route outlived its lease: {}", p.output);
        std::thread::sleep(Duration::from_millis(300));
    }
    // Both others removed node 3's subnet, and only that.
    for (k, agent) in agents.iter().enumerate() {
        let removed = netns::wait_for("the removal in the log", Duration::from_secs(5), || {
            let removed = removed_peers(&agent.log());
            (!removed.is_empty()).then_some(removed)
        });
        let removed = removed.unwrap_or_else(|e| panic!("agent {}: {e}: {}", k + 1, agent.log()));
        assert_eq!(removed, [subnets[2]], "agent {} removed these peers: {}", k + 1, agent.log());
    }
    // Restarted, it gets the same subnet (its lease is gone, its subnet file names it), and the others take it back
    // as a peer.
    let (mut again, _file) = start_agent(&nodes[2], "agent3-again", &store_toml(3, &pods[2], store, ttl_s, dir.path()));
    assert_eq!(leased_subnet(&mut again), subnets[2]);
    pods[2].wait_for_link("eth0", Duration::from_secs(5)).unwrap();
    address_pod(&pods[2], subnets[2]);
    ping_until_ok(&pods[0], ips[2], WARM_UP).unwrap();
    stop_agent(again, &[]);
    for agent in agents {
        stop_agent(agent, &[]);
    }
}

#[test]
fn agents_follow_a_file_store() {
    skip_unless!(Root, Netns, Veth, Bridge, Tun, Ping);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("kind = \"file\"\npath = \"{}\"", dir.path().join("leases.json").display());
    agents_follow_the_store(three_node_underlay(), &store, 3, |_, _| {});
}

/// A network with room for one subnet. Node 1's agent is frozen (SIGSTOP) until its lease runs out and node 2
/// takes the subnet; node 3 finds none and says so; thawed, node 1 finds its subnet taken and stops with an error
/// (exit code 1) rather than carry on with pods numbered in another node's subnet, deleting its TAP.
#[test]
fn an_agent_whose_subnet_was_taken_stops() {
    skip_unless!(Root, Netns, Veth, Bridge, Tun, Ping);
    let (_sw, nodes, _links) = three_node_underlay();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("kind = \"file\"\npath = \"{}\"", dir.path().join("leases.json").display());
    let pods: Vec<NetNs> = (1..=3).map(|i| NetNs::new(&format!("pod{i}")).unwrap()).collect();
    let toml = |i: u8| {
        store_toml(i, &pods[usize::from(i) - 1], &store, 2, dir.path()).replace(
            "\"SubnetLen\": 24",
            "\"SubnetLen\": 24, \"SubnetMin\": \"10.244.5.0\", \"SubnetMax\": \"10.244.5.0\"",
        )
    };
    let (mut first, _f1) = start_agent(&nodes[0], "agent1", &toml(1));
    let subnet = leased_subnet(&mut first);
    assert_eq!(subnet, "10.244.5.0/24".parse().unwrap());
    // Agent 1 is frozen outside the file store's lock: stopped inside a locked write (a renewal) it would make
    // every other agent's request wait the store's lock timeout and fail as unavailable. Holding the lock ourselves (the store's sibling file, which
    // it never replaces), we wait out a write in progress and keep the next one from starting.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.path().join("leases.json.lock"))
        .unwrap();
    lock.lock().unwrap();
    assert!(first.signal(libc::SIGSTOP));
    lock.unlock().unwrap();
    // Node 2 is refused ("out of subnets") until the frozen node's lease has run out: its TTL, and with a store
    // that tolerates clock skew, up to a TTL more. It is started again until then.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut second, _f2) = loop {
        let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(file.path(), toml(2)).unwrap();
        let path = file.into_temp_path();
        let mut agent = nodes[1].spawn("agent2", &[TWEED, "agent", "--config", path.to_str().unwrap()]).unwrap();
        match agent.wait_for_log("agent running", Duration::from_secs(10)) {
            Ok(()) => break (agent, path),
            Err(_) if agent.log().contains("out of subnets") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(300));
            }
            Err(e) => panic!("agent2: {e}"),
        }
    };
    assert_eq!(leased_subnet(&mut second), subnet);
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), toml(3)).unwrap();
    let third = nodes[2].exec(&[TWEED, "agent", "--config", file.path().to_str().unwrap()], Duration::from_secs(15));
    let third = third.unwrap();
    assert_eq!(third.status.code(), Some(1), "{}", third.stderr);
    assert!(third.stderr.contains("out of subnets: all 1 subnets from 10.244.5.0/24"), "{}", third.stderr);
    assert!(first.signal(libc::SIGCONT));
    first.wait_for_log("lease lost to another node", Duration::from_secs(10)).unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = first.exited() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "agent 1 runs on: {}", first.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(1), "{}", first.log());
    assert!(first.log().contains("restart the agent to lease another"), "{}", first.log());
    assert!(!pods[0].has_link("eth0"), "agent 1 left its TAP");
    stop_agent(second, &[]);
}

/// The `q` quantile (0 to 1) of `values` (the nearest rank); 0 for none.
#[cfg(feature = "etcd")]
fn percentile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len().max(1));
    v.get(rank - 1).copied().unwrap_or(0.0)
}

/// The node (1 to 3) whose agent has a request waiting at etcd (in namespace `sw`): a connection from its
/// address with unread bytes at etcd's end, which only a stopped etcd leaves there.
#[cfg(feature = "etcd")]
fn waiting_on_etcd(sw: &str) -> Option<u8> {
    let argv = ["ip", "netns", "exec", sw, "ss", "-Htn", "state", "established", "( sport = :2379 )"];
    let out = netns::run(&argv).ok()?;
    // `Recv-Q Send-Q Local:Port Peer:Port`
    out.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let unread: u64 = f.first()?.parse().ok()?;
        let peer: std::net::Ipv4Addr = f.get(3)?.rsplit_once(':')?.0.parse().ok()?;
        let node = peer.octets()[3];
        (unread > 0 && (1..=3).contains(&node) && peer == node_ip(node)).then_some(node)
    })
}

/// etcd on the underlay's switch, at 192.168.0.254:2379, its data in `dir`.
#[cfg(feature = "etcd")]
fn etcd(sw: &str, dir: &std::path::Path) -> Process {
    let data = dir.to_str().unwrap();
    let argv = [
        "ip",
        "netns",
        "exec",
        sw,
        "etcd",
        "--name",
        "tweed-test",
        "--data-dir",
        data,
        "--listen-client-urls",
        "http://192.168.0.254:2379",
        "--advertise-client-urls",
        "http://192.168.0.254:2379",
        "--listen-peer-urls",
        "http://127.0.0.1:2380",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:2380",
        "--initial-cluster",
        "tweed-test=http://127.0.0.1:2380",
    ];
    let mut p = Process::spawn("etcd", &argv).unwrap();
    p.wait_for_log("ready to serve client requests", Duration::from_secs(15)).unwrap();
    p
}

/// The same with etcd (flannel's key layout), and etcd restarted while the agents run: nothing is lost, and the
/// lease expiry and the restart that follow go through the restarted etcd. Frozen for two seconds, etcd delays no
/// packet.
#[cfg(feature = "etcd")]
#[test]
fn agents_follow_etcd_across_its_restart() {
    skip_unless!(Root, Netns, Veth, Bridge, Tun, Ping);
    if netns::run(&["which", "etcd"]).is_err() {
        return netns::skip("no etcd binary (Debian: etcd-server)");
    }
    let world = three_node_underlay();
    let dir = tempfile::tempdir().unwrap();
    let sw = world.0.name().to_owned();
    let server = std::cell::RefCell::new(Some(etcd(&sw, dir.path())));
    let store = "kind = \"etcd\"\nendpoints = [\"http://192.168.0.254:2379\"]";
    // Leases live 10 s here, so that they outlast the restart (etcd takes about 3 s to be back).
    agents_follow_the_store(world, store, 10, |pods, ips| {
        let mut old = server.borrow_mut().take().unwrap();
        old.stop(Duration::from_secs(3));
        std::thread::sleep(Duration::from_secs(1));
        let mut etcd = etcd(&sw, dir.path());
        // A store that hangs (etcd frozen: connections open, no answers) holds up no packet: the agents' control
        // threads wait for it, their data paths do not. The agents read the store from a watch stream and call it
        // only to renew (every 5 s), so the pings go while a request of an agent on their path sits unanswered in
        // the frozen etcd's socket, and they are compared with pings on the same path while etcd answered, just
        // before: a ping held up by the store waits for it (hundreds of milliseconds, seconds), one delayed by a
        // busy machine is a stray.
        let answering: Vec<_> = ips[1..]
            .iter()
            .map(|&ip| {
                let p = ping(&pods[0], ip, 20, &["-i", "0.05", "-w", "8"]).unwrap();
                assert_eq!(p.received, 20, "pings while etcd answers: {}", p.output);
                p
            })
            .collect();
        assert!(etcd.signal(libc::SIGSTOP));
        let waiting =
            netns::wait_for("a request held by the frozen etcd", Duration::from_secs(8), || waiting_on_etcd(&sw));
        // Node 1's agent is on every path from pod 1; node k's on the path to pod k.
        let to = waiting.as_ref().map_or(1, |&node| usize::from(node.max(2)) - 1);
        let hanging = ping(&pods[0], ips[to], 20, &["-i", "0.1", "-w", "8"]);
        assert!(etcd.signal(libc::SIGCONT));
        let node = waiting.unwrap();
        let hanging = hanging.unwrap();
        assert_eq!(hanging.received, 20, "pings while etcd hangs: {}", hanging.output);
        let answering = &answering[to - 1];
        let (calm, busy) = (answering.rtts_ms(), hanging.rtts_ms());
        eprintln!("ping ms to pod {} (node {node}'s request held): etcd hanging {busy:?}; answering {calm:?}", to + 1);
        let slow = 50.0 + 3.0 * percentile(&calm, 0.9);
        let late: Vec<f64> = busy.iter().copied().filter(|&ms| ms > slow).collect();
        assert!(
            late.len() <= 3,
            "{} of 20 pings over {slow:.1} ms while etcd hung with node {node}'s request ({late:?}):\n{}\n{}",
            late.len(),
            hanging.output,
            answering.output
        );
        // Nor does any ping wait for the store's rounds when it answers: a round trip is well under a poll.
        let median = percentile(&calm, 0.5);
        assert!(median < 50.0, "pings take {median} ms while etcd answers: {}", answering.output);
        *server.borrow_mut() = Some(etcd);
    });
}
