//! Every example runs here, not only builds: each example's work is a `run` function that its `main` prints and
//! that these tests call (the example files are compiled into this test crate as modules) and check.
#![allow(dead_code)] // the examples' `main`s

#[path = "../examples/event_loop.rs"]
mod event_loop;
#[path = "../examples/pcap_print.rs"]
mod pcap_print;
#[path = "../examples/tap_switch.rs"]
mod tap_switch;
#[path = "../examples/vxlan_tunnel.rs"]
mod vxlan_tunnel;

const CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kernel-flannel-vxlan.pcap");

#[test]
fn vxlan_tunnel_carries_a_ping_and_its_reply() {
    let frames = vxlan_tunnel::run().expect("the tunnel runs");
    assert_eq!(frames.len(), 2);
    // The request at pod B: from B's gateway MAC to the pod's, routed twice (TTL 64 - 2), ICMP echo request.
    let (req, reply) = (&frames[0], &frames[1]);
    assert_eq!(&req[..12], &[2, 0, 0, 0, 0xbb, 2, 0x0a, 0x58, 10, 244, 2, 1]);
    assert_eq!(
        (&req[26..30], &req[30..34], req[22], req[23], req[34]),
        (&[10, 244, 1, 2][..], &[10, 244, 2, 2][..], 62, 1, 8)
    );
    assert_eq!(&reply[..12], &[2, 0, 0, 0, 0xaa, 1, 0x0a, 0x58, 10, 244, 1, 1]);
    assert_eq!(
        (&reply[26..30], &reply[30..34], reply[22], reply[34]),
        (&[10, 244, 2, 2][..], &[10, 244, 1, 2][..], 62, 0)
    );
    // The payload crossed intact.
    assert!(req.ends_with(b"hello through the tunnel") && reply.ends_with(b"hello through the tunnel"));
}

#[test]
fn pcap_print_counts_the_inner_flows() {
    let flows = pcap_print::run(CAPTURE).expect("the capture prints");
    let flows: Vec<(&str, usize)> = flows.iter().map(|(f, n)| (f.as_str(), *n)).collect();
    assert_eq!(
        flows,
        [
            ("10.244.1.2 > 10.244.2.2 ICMP", 2),
            ("10.244.1.2 > 10.244.2.2 TCP", 24),
            ("10.244.2.2 > 10.244.1.2 ICMP", 2),
            ("10.244.2.2 > 10.244.1.2 TCP", 12),
        ]
    );
    assert!(pcap_print::run("/no/such.pcap").is_err_and(|e| e.to_string().contains("cannot read /no/such.pcap")));
}

#[test]
fn event_loop_answers_arp_and_ping_and_switches() {
    let [pod1, pod2] = event_loop::run().expect("the loop runs");
    // Pod 1: its ARP reply and the gateway's echo reply; pod 2: its ARP reply and pod 1's frame (in either order).
    assert_eq!(pod1.len(), 2, "{pod1:?}");
    assert!(pod1.iter().any(|f| f.starts_with("0a:58:0a:f4:01:01 > 02:00:00:00:aa:01 | (no outer ipv4)")), "{pod1:?}");
    assert!(pod1.iter().any(|f| f.contains("| 10.244.1.1 > 10.244.1.2 ttl 64 |")), "{pod1:?}");
    assert_eq!(pod2.len(), 2, "{pod2:?}");
    assert!(pod2.iter().any(|f| f.starts_with("0a:58:0a:f4:01:01 > 02:00:00:00:aa:02")), "{pod2:?}");
    assert!(pod2.iter().any(|f| f.starts_with("02:00:00:00:aa:01 > 02:00:00:00:aa:02")), "{pod2:?}");
}

#[cfg(target_os = "linux")]
#[test]
fn tap_switch_runs_or_says_it_cannot() {
    match tap_switch::run(0.3).expect("the switch runs") {
        // Without CAP_NET_ADMIN: nothing created, nothing to check.
        None => assert!(!tweed::io::has_net_admin()),
        Some(c) => {
            // Every frame received has exactly one fate.
            let fates = c.forwarded
                + c.flooded_broadcast
                + c.flooded_multicast
                + c.flooded_unknown
                + c.to_local
                + c.arp_answered
                + c.drop_unknown_port
                + c.drop_truncated
                + c.drop_invalid_source
                + c.drop_filtered
                + c.drop_arp_malformed;
            assert_eq!(c.rx, fates, "{c}");
        }
    }
}
