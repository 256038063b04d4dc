//! Many pods and busy pods on a real `tweed agent` (root; skipped with one line elsewhere), findings 2 and 3 of
//! issue 12:
//! - an agent with 200 pods: its last pod reaches a pod on the other node, and is reached from it;
//! - four pods blasting UDP as fast as they can do not starve a fifth: its pings and TCP both ways to the other
//!   node keep working.
#![cfg(target_os = "linux")]

#[path = "../../tweed-io/tests/common/mod.rs"]
mod common;
mod world;

use std::time::{Duration, Instant};

use common::netns::{self, Iperf3Server, NetNs, Pod, iperf3_tcp, iperf3_udp, ping, ping_until_ok, underlay_pair};
use world::{TapPort, WARM_UP, agent_toml, one_at_a_time, quiet_ipv6, start_agent, wait_pods};

/// Node 1's agent has 200 pods: 199 TAPs in one crowded namespace (up, no address: they say nothing), then a
/// real pod, the 200th port. It and the pod of node 2 ping each other.
#[test]
fn two_hundred_pods_the_last_pings_across_nodes() {
    skip_unless!(Root, Netns, Veth, Tun, Ping);
    let _serial = one_at_a_time();
    let started = Instant::now();
    let nodes = underlay_pair(1500).unwrap();
    let crowd = NetNs::new("crowd").unwrap();
    quiet_ipv6(&crowd);
    let last = Pod::new(1, 2).unwrap().with_mtu(1450);
    let far = Pod::new(2, 2).unwrap().with_mtu(1450);
    for p in [&last, &far] {
        quiet_ipv6(&p.ns);
    }
    let mut ports: Vec<TapPort<'_>> = (1..200)
        .map(|i| TapPort { ns: &crowd, tap: format!("t{i}"), mtu: Some(1450), addresses: Vec::new() })
        .collect();
    ports.push(TapPort::pod(&last, Some(1450)));
    let toml1 = agent_toml(1, 2, &ports, "");
    let agent1 = start_agent(&nodes[0], "agent1", &toml1, Duration::from_secs(60));
    let agent2 = start_agent(&nodes[1], "agent2", &agent_toml(2, 1, &[TapPort::pod(&far, Some(1450))], ""), WARM_UP);
    assert!(agent1.process.log().contains("\"200=eth0\""), "{}", agent1.process.log());
    wait_pods(&[&last, &far]);
    let links = crowd.ip(&["-o", "link", "show", "up"]).unwrap();
    assert_eq!(links.lines().filter(|l| l.contains(": t")).count(), 199, "{links}");
    eprintln!("200 pods up after {:?}", started.elapsed());
    for (a, b, what) in [(&last, &far, "the 200th pod -> node 2"), (&far, &last, "node 2 -> the 200th pod")] {
        ping_until_ok(&a.ns, b.ip(), WARM_UP).unwrap_or_else(|e| panic!("{what}: {e}"));
        let p = ping(&a.ns, b.ip(), 3, &["-w", "4"]).unwrap();
        assert_eq!(p.received, 3, "{what}: {}", p.output);
    }
    agent1.stop_within(Duration::from_secs(30));
    agent2.stop();
    eprintln!("done after {:?}", started.elapsed());
}

/// Node 1 has four pods that blast UDP (iperf3 `-b 0`, 1400-byte datagrams) at a sink pod of the same node, on
/// the ports before a fifth pod's; once the blast is under way, the fifth pod pings the pod of node 2 (eight of
/// ten answered) and runs TCP both ways with it (more than 1 MiB each way in 2 s; a fair agent gives it several).
#[test]
fn busy_pods_leave_room_for_a_fifth() {
    skip_unless!(Root, Netns, Veth, Tun, Ping, Iperf3);
    let _serial = one_at_a_time();
    let nodes = underlay_pair(1500).unwrap();
    let blasters: Vec<Pod> = (2..=5).map(|h| Pod::new(1, h).unwrap().with_mtu(1450)).collect();
    let victim = Pod::new(1, 6).unwrap().with_mtu(1450);
    let sink = Pod::new(1, 7).unwrap().with_mtu(1450);
    let far = Pod::new(2, 2).unwrap().with_mtu(1450);
    let all1: Vec<&Pod> = blasters.iter().chain([&victim, &sink]).collect();
    for p in all1.iter().chain([&&far]) {
        quiet_ipv6(&p.ns);
    }
    let ports: Vec<TapPort<'_>> = all1.iter().map(|p| TapPort::pod(p, Some(1450))).collect();
    let mut agent1 = start_agent(&nodes[0], "agent1", &agent_toml(1, 2, &ports, ""), WARM_UP);
    let agent2 = start_agent(&nodes[1], "agent2", &agent_toml(2, 1, &[TapPort::pod(&far, Some(1450))], ""), WARM_UP);
    wait_pods(&all1);
    wait_pods(&[&far]);
    ping_until_ok(&victim.ns, far.ip(), WARM_UP).unwrap();
    for b in &blasters {
        ping_until_ok(&b.ns, sink.ip(), WARM_UP).unwrap();
    }
    let servers: Vec<Iperf3Server> =
        blasters.iter().map(|_| Iperf3Server::start(&sink.ns, sink.ip()).unwrap()).collect();
    let far_server = Iperf3Server::start(&far.ns, far.ip()).unwrap();
    let before = agent1.counters();
    let (blasts, p, tcp) = std::thread::scope(|s| {
        let blasts: Vec<_> = blasters
            .iter()
            .zip(&servers)
            .map(|(b, srv)| s.spawn(move || iperf3_udp(&b.ns, srv, 15, 1400, "0", false)))
            .collect();
        let under_way = netns::wait_for("the blast at the node", Duration::from_secs(10), || {
            let c = agent1.counters();
            (c.get("rx_pod") > before.get("rx_pod") + 20_000).then_some(())
        });
        let p = under_way.map(|()| ping(&victim.ns, far.ip(), 10, &[]));
        let tcp: Vec<_> =
            [false, true].iter().map(|&reverse| iperf3_tcp(&victim.ns, &far_server, 2, reverse)).collect();
        let blasts: Vec<_> = blasts.into_iter().map(|h| h.join().unwrap()).collect();
        (blasts, p, tcp)
    });
    let after = agent1.counters();
    for (i, b) in blasts.iter().enumerate() {
        match b {
            Ok(run) => {
                eprintln!("blaster {i}: {:.0} datagrams/s sent, {:.0} received", run.sent_pps(), run.received_pps())
            }
            Err(e) => eprintln!("blaster {i}: {e}"),
        }
    }
    eprintln!(
        "agent 1 read {} pod frames during the blast; drops {:?}",
        after.get("rx_pod") - before.get("rx_pod"),
        after.drops_since(&before)
    );
    let p = p.unwrap_or_else(|e| panic!("{e}: the blast did not reach the node")).unwrap();
    assert!(p.received >= 8, "the fifth pod's pings during the blast: {}", p.output);
    for (run, dir) in tcp.into_iter().zip(["forward", "reverse"]) {
        let run = run.unwrap_or_else(|e| panic!("the fifth pod's TCP {dir} during the blast: {e}"));
        eprintln!("TCP {dir} during the blast: {:.3} Gbit/s", run.received_gbps);
        assert!(run.received_bytes > 1 << 20, "TCP {dir} during the blast: only {} bytes", run.received_bytes);
    }
    agent1.stop();
    agent2.stop();
}
