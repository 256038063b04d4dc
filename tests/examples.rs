//! Every example runs here, not only builds: each example's work is a `run` function that its `main` prints and
//! that these tests call (the example files are compiled into this test crate as modules) and check.
#![allow(dead_code)] // the examples' `main`s

#[path = "../examples/dissect.rs"]
mod dissect;
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
fn dissect_prints_a_line_per_frame_through_every_layer() {
    let lines = dissect::run(CAPTURE).expect("the capture dissects");
    assert_eq!(lines.len(), 40);
    assert_eq!(
        lines[0],
        "    1   148B  e2:c6:cd:ac:0e:fd > 62:f5:f9:f2:75:3e IPv4 | ip 192.0.2.1 > 192.0.2.2 ttl 64 id 22054 len 134 udp \
         | udp 49028 > 8472 len 114 | vxlan vni 1 | 02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 \
         | ip 10.244.1.2 > 10.244.2.2 ttl 63 id 58802 len 84 [DF] icmp | icmp echo request id 16482 seq 1 | data 56B"
    );
    assert!(dissect::run("/no/such.pcap").is_err_and(|e| e.contains("cannot read /no/such.pcap")));
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

/// Says that a test is skipped, in a line that shows (straight to the stderr descriptor, in one write: libtest
/// hides `eprintln!` of passing tests), or fails it under `TWEED_REQUIRE_ALL=1` (CI, which runs as root).
#[track_caller]
fn skip(test: &str, reason: &str) {
    use std::io::Write;
    assert!(
        std::env::var_os("TWEED_REQUIRE_ALL").is_none_or(|v| v != "1"),
        "{test}: {reason} (TWEED_REQUIRE_ALL=1 makes this a failure)"
    );
    let _ = std::io::stderr().write_all(format!("skipped {test}: {reason}\n").as_bytes());
}

/// A network namespace of its own for the switch's TAPs, without IPv6 (otherwise the kernel's router
/// solicitations and MLD reports on the TAPs join the frames counted), deleted when dropped.
#[cfg(target_os = "linux")]
struct Netns(String);

#[cfg(target_os = "linux")]
impl Netns {
    /// `Err` when iproute2's `ip` is not installed; panics when it fails.
    fn new() -> Result<Self, String> {
        let ip = |args: &[&str]| std::process::Command::new("ip").args(args).output();
        let name = format!("tws-ex-{}", std::process::id());
        // A namespace of that name is left over from a process of this pid that was killed.
        let _ = ip(&["netns", "del", &name]);
        let o = ip(&["netns", "add", &name]).map_err(|e| format!("cannot run iproute2's ip: {e}"))?;
        assert!(o.status.success(), "ip netns add {name}: {}", String::from_utf8_lossy(&o.stderr));
        let ns = Self(name);
        let off = "[ -d /proc/sys/net/ipv6 ] || exit 0; for c in all default; do \
                   echo 1 > /proc/sys/net/ipv6/conf/$c/disable_ipv6 || exit 1; done";
        let o = ip(&["netns", "exec", &ns.0, "sh", "-c", off]).expect("ip netns exec");
        assert!(o.status.success(), "turning IPv6 off in {}: {}", ns.0, String::from_utf8_lossy(&o.stderr));
        Ok(ns)
    }

    fn path(&self) -> std::path::PathBuf {
        tweed::io::netns_path(std::path::Path::new(&self.0))
    }
}

#[cfg(target_os = "linux")]
impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// A 60-byte frame from `src` to `dst`, of a local experimental EtherType, that says it is frame `n`.
fn frame(dst: [u8; 6], src: [u8; 6], n: u8) -> Vec<u8> {
    let mut f = [&dst[..], &src[..], &[0x88, 0xb5], b"tweed tap_switch frame ", &[n]].concat();
    f.resize(60, n);
    f
}

/// The number of a [`frame`].
fn number(frame: &[u8]) -> Option<u8> {
    frame.get(37).copied()
}

/// The switch between three TAPs, with frames written on each TAP (AF_PACKET sockets: what the kernel sends on
/// a TAP is what the switch reads from it) and read back where the switch sent them: every fate, learning and a
/// move, exact counters, and each port receives exactly its frames, in order. Without `CAP_NET_ADMIN` the
/// example says it cannot (and the test says it skipped).
#[cfg(target_os = "linux")]
#[test]
fn tap_switch_runs_or_says_it_cannot() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    use tweed::io::PacketSocket;
    use tweed::packet::PacketBuf;

    const TEST: &str = "tap_switch_runs_or_says_it_cannot";
    if !tweed::io::has_net_admin() {
        assert!(matches!(tap_switch::run(0.3), Ok(None)), "without the privilege it creates nothing");
        return skip(TEST, "creating TAPs needs CAP_NET_ADMIN (run as root)");
    }
    let ns = match Netns::new() {
        Ok(ns) => ns,
        Err(reason) => return skip(TEST, &reason),
    };
    let path = ns.path();
    let mac = |x: u8| [2, 0, 0, 0, 0, x];
    let (a, b, c, d, e) = (mac(0xa), mac(0xb), mac(0xc), mac(0xd), mac(0xe));
    // (ingress port, frame, the ports it must come out of). A frame that goes nowhere is followed by one on the
    // same port that goes somewhere: each TAP is read in order, so once that one is out, the drop has happened.
    let steps: Vec<(usize, Vec<u8>, &[usize])> = vec![
        (0, frame([0xff; 6], a, 1), &[1, 2]),                // broadcast, learns A on 0
        (1, frame(a, b, 2), &[0]),                           // forwarded, learns B on 1
        (2, frame(d, c, 3), &[0, 1]),                        // unknown unicast, learns C on 2
        (0, frame([1, 0, 0x5e, 0, 0, 0xfb], a, 4), &[1, 2]), // multicast
        (1, frame(a, [1, 0, 0x5e, 0, 0, 1], 5), &[]),        // multicast source: dropped
        (1, frame(b, e, 6), &[]),                            // to its own port: filtered, learns E on 1
        (1, frame(c, b, 7), &[2]),
        (2, frame(b, c, 8), &[1]),
        (0, frame(e, a, 9), &[1]), // E was learnt from the filtered frame
        (0, frame(a, b, 10), &[]), // B moves to 0; A is on 0: filtered
        (0, frame(c, a, 11), &[2]),
        (2, frame(b, c, 12), &[0]), // to B's new port
    ];
    let ready = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let (switched, injected) = std::thread::scope(|s| {
        let switch = s.spawn(|| {
            tap_switch::run_until(Some(&path), |t| {
                ready.store(true, Ordering::Release);
                stop.load(Ordering::Acquire) || t > Duration::from_secs(30)
            })
            .map_err(|e| e.to_string())
        });
        let inject = || -> Result<_, String> {
            let wait = |what: &str, until: &mut dyn FnMut() -> bool| {
                let deadline = Instant::now() + Duration::from_secs(10);
                while !until() {
                    if switch.is_finished() {
                        return Err(format!("the switch stopped before {what}"));
                    }
                    if Instant::now() > deadline {
                        return Err(format!("no {what} within 10 s"));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(())
            };
            wait("TAPs", &mut || ready.load(Ordering::Acquire))?;
            let sockets: Vec<PacketSocket> = (0..3)
                .map(|i| PacketSocket::attach(&tap_switch::tap_name(i), Some(&path)).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?;
            let mut buf = PacketBuf::new(2048, 0).map_err(|e| e.to_string())?;
            let mut read = |got: &mut [Vec<Vec<u8>>; 3]| {
                for (i, socket) in sockets.iter().enumerate() {
                    while socket.recv(&mut buf).map_err(|e| format!("reading port {i}: {e}"))? {
                        got[i].push(buf.data().to_vec());
                    }
                }
                Ok::<_, String>(())
            };
            let mut got: [Vec<Vec<u8>>; 3] = Default::default();
            let mut want = [0; 3];
            for (port, f, to) in &steps {
                if !sockets[*port].send(f).map_err(|e| e.to_string())? {
                    return Err(format!("frame {:?} on port {port}: the TAP's queue is full", number(f)));
                }
                for &t in *to {
                    want[t] += 1;
                }
                let mut error = Ok(());
                wait(&format!("frame {:?} out of ports {to:?}", number(f)), &mut || {
                    error = read(&mut got);
                    error.is_err() || (0..3).all(|i| got[i].len() >= want[i])
                })?;
                error?;
            }
            // Nothing more comes out (what the switch writes is delivered within its write; it reads each TAP
            // once a millisecond when idle). Read before it stops: its TAPs go with it.
            std::thread::sleep(Duration::from_millis(20));
            let mut extra: [Vec<Vec<u8>>; 3] = Default::default();
            read(&mut extra)?;
            Ok((got, extra))
        };
        let injected = inject();
        stop.store(true, Ordering::Release);
        (switch.join().expect("the switch thread"), injected)
    });
    drop(ns);
    let counters = switched.expect("the switch runs").expect("with the privilege, it switches");
    let (got, extra) = injected.unwrap_or_else(|e| panic!("{e}; the switch's counters: {counters}"));
    for (port, got) in got.iter().enumerate() {
        let want: Vec<&Vec<u8>> = steps.iter().filter(|(_, _, to)| to.contains(&port)).map(|(_, f, _)| f).collect();
        let numbers = |frames: &[&Vec<u8>]| frames.iter().map(|f| number(f)).collect::<Vec<_>>();
        assert_eq!(numbers(&got.iter().collect::<Vec<_>>()), numbers(&want), "port {port}: which frames came out");
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "port {port}: the frames came out unchanged");
    }
    assert_eq!(extra, <[Vec<Vec<u8>>; 3]>::default(), "frames that no step sends, by port");
    // Every frame received once and given exactly one fate, and learning as the steps say.
    assert_eq!(
        counters.to_string(),
        "rx 12, forwarded 6, flooded_broadcast 1, flooded_multicast 1, flooded_unknown 1, drop_invalid_source 1, \
         drop_filtered 2, learned 4, moved 1"
    );
}
