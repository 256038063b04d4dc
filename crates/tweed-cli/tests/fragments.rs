//! MTU and fragmentation through a real `tweed agent` (root; skipped with one line elsewhere), finding 10 of
//! issue 12:
//! - a 3000-byte ping without DF crosses vxlan and is answered, from a pod whose TAP has the agent's default MTU
//!   and from one whose TAP says 1500 (more than vxlan carries, 1450: the node fragments);
//! - a pod flooding TTL=1 packets does not starve another pod of its "fragmentation needed".
#![cfg(target_os = "linux")]

#[path = "../../tweed-io/tests/common/mod.rs"]
mod common;
mod world;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::netns::raw::{self, RawSocket, Udp};
use common::netns::{self, Pod, ping, ping_until_ok, underlay_pair};
use tweed_wire::ethernet::MacAddr;
use world::{TapPort, WARM_UP, agent_toml, one_at_a_time, quiet_ipv6, start_agent, wait_pods};

/// The gateway's MAC on node 1 (the MAC-from-IP of `10.244.1.1`).
const GW_MAC: MacAddr = MacAddr::new(0x0a, 0x58, 10, 244, 1, 1);

/// Two pods on each node: `.2` with the TAP's MTU left to the agent, `.3` with a TAP of MTU 1500 (the pods keep
/// their TAP's MTU). `ping -M dont -s 3000` from each to its peer on the other node: every request answered.
#[test]
fn big_ping_without_df_crosses_vxlan() {
    skip_unless!(Root, Netns, Veth, Tun, Ping);
    let _serial = one_at_a_time();
    let nodes = underlay_pair(1500).unwrap();
    let pods: Vec<[Pod; 2]> = (1..=2).map(|i| [Pod::new(i, 2).unwrap(), Pod::new(i, 3).unwrap()]).collect();
    let agents: Vec<_> = (1..=2u8)
        .map(|i| {
            let [dflt, big] = &pods[usize::from(i - 1)];
            let ports = [TapPort::pod(dflt, None), TapPort::pod(big, Some(1500))];
            start_agent(&nodes[usize::from(i - 1)], &format!("agent{i}"), &agent_toml(i, 3 - i, &ports, ""), WARM_UP)
        })
        .collect();
    wait_pods(&pods.iter().flatten().collect::<Vec<_>>());
    let mut failed = Vec::new();
    for (k, what) in [(0, "the agent's default TAP MTU"), (1, "a TAP MTU of 1500")] {
        let (a, b) = (&pods[0][k], &pods[1][k]);
        let mtu = a.ns.run(&["cat", "/sys/class/net/eth0/mtu"]).unwrap();
        ping_until_ok(&a.ns, b.ip(), WARM_UP).unwrap_or_else(|e| panic!("{what}: small ping: {e}"));
        let p = ping(&a.ns, b.ip(), 3, &["-M", "dont", "-s", "3000", "-w", "5"]).unwrap();
        if p.received != 3 {
            failed.push(format!("{what} (eth0 MTU {}): {} of 3 answered: {}", mtu.trim(), p.received, p.output));
        }
    }
    assert!(failed.is_empty(), "ping -M dont -s 3000 across vxlan:\n{}", failed.join("\n"));
    for agent in agents {
        agent.stop();
    }
}

/// Pod `.2` of node 1 sends UDP with TTL 1 to the other node as fast as it can (each an ICMP time exceeded the
/// node owes it); meanwhile pod `.3` sends ten datagrams with DF and 1488 bytes, more than vxlan carries, 100 ms
/// apart (crafted: its kernel would remember the path MTU after the first answer): at least nine are answered by
/// "fragmentation needed" with MTU 1450.
#[test]
fn ttl_flood_leaves_frag_needed_to_others() {
    skip_unless!(Root, Netns, Veth, Tun, Ping);
    let _serial = one_at_a_time();
    let nodes = underlay_pair(1500).unwrap();
    let flooder = Pod::new(1, 2).unwrap().with_mtu(1500);
    let prober = Pod::new(1, 3).unwrap().with_mtu(1500);
    let far = Pod::new(2, 2).unwrap().with_mtu(1450);
    for p in [&flooder, &prober, &far] {
        quiet_ipv6(&p.ns);
    }
    let ports1 = [TapPort::pod(&flooder, Some(1500)), TapPort::pod(&prober, Some(1500))];
    let mut agent1 = start_agent(&nodes[0], "agent1", &agent_toml(1, 2, &ports1, ""), WARM_UP);
    let agent2 = start_agent(&nodes[1], "agent2", &agent_toml(2, 1, &[TapPort::pod(&far, Some(1450))], ""), WARM_UP);
    wait_pods(&[&flooder, &prober, &far]);
    for p in [&flooder, &prober] {
        ping_until_ok(&p.ns, far.ip(), WARM_UP).unwrap();
    }
    let before = agent1.counters();
    let sock = RawSocket::open(&flooder.ns, "eth0").unwrap();
    let frame = raw::ipv4_udp(GW_MAC, flooder.mac(), Udp { ttl: 1, ..Udp::new(flooder.ip(), far.ip()) }, &[0; 32]);
    let stop = AtomicBool::new(false);
    let (probe, sent, during) = std::thread::scope(|s| {
        let flood = s.spawn(|| {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..64 {
                    sent += u64::from(sock.send(&frame).unwrap());
                }
            }
            sent
        });
        // The flood is under way once the node has expired a thousand of its packets.
        let during = netns::wait_for("the TTL flood at the node", Duration::from_secs(10), || {
            let c = agent1.counters();
            (c.get("ttl_expired") > before.get("ttl_expired") + 1000).then_some(c)
        });
        let probe = probe_frag_needed(&prober, far.ip(), 10);
        stop.store(true, Ordering::Relaxed);
        (probe, flood.join().unwrap(), during)
    });
    let during = during.unwrap_or_else(|e| panic!("{e}: the flood did not reach the node: {:?}", agent1.counters()));
    let after = agent1.counters();
    eprintln!(
        "TTL flood: {sent} sent; {} expired by the first check; drops {:?}",
        during.get("ttl_expired") - before.get("ttl_expired"),
        after.drops_since(&before)
    );
    assert_eq!(probe.iter().filter(|m| m.is_some_and(|m| m != 1450)).count(), 0, "wrong MTUs: {probe:?}");
    let answered = probe.iter().filter(|m| m.is_some()).count();
    assert!(answered >= 9, "{answered} of 10 too-big datagrams got a fragmentation needed during a TTL flood");
    let fits = ping(&prober.ns, far.ip(), 2, &["-M", "do", "-s", "1422", "-w", "4"]).unwrap();
    assert_eq!(fits.received, 2, "1422 + 28 = 1450 fits: {}", fits.output);
    agent1.stop();
    agent2.stop();
}

/// Sends `count` UDP datagrams of 1488 bytes with DF from `pod` to `dst`, 100 ms apart; for each, the next-hop
/// MTU of the "fragmentation needed" that came back within those 100 ms.
fn probe_frag_needed(pod: &Pod, dst: std::net::Ipv4Addr, count: usize) -> Vec<Option<u16>> {
    let sock = RawSocket::open(&pod.ns, "eth0").unwrap();
    let frame = raw::ipv4_udp(GW_MAC, pod.mac(), Udp::new(pod.ip(), dst), &[0; 1460]);
    let mut buf = vec![0u8; 65536];
    (0..count)
        .map(|_| {
            assert!(sock.send(&frame).unwrap());
            let end = Instant::now() + Duration::from_millis(100);
            let mut mtu = None;
            while let Some(n) = sock.recv(&mut buf, end.saturating_duration_since(Instant::now())) {
                let f = &buf[..n];
                // IPv4 (IHL 5) carrying ICMP destination unreachable, fragmentation needed, about our datagram.
                let icmp = f.get(12..14) == Some(&[8, 0]) && f.get(23) == Some(&1) && f.get(34..36) == Some(&[3, 4]);
                if icmp && f.get(58..62) == Some(&dst.octets()) {
                    mtu = mtu.or(Some(u16::from_be_bytes([f[40], f[41]])));
                }
            }
            mtu
        })
        .collect()
}
