//! The example between two sites: two namespaces joined by a veth (the underlay, `192.168.0.1` and `.2`), each
//! running `psk_tunnel` with a TUN `psk0` for its site (`10.1.0.1/24` and `10.2.0.1/24`) and a route to the other
//! site into it. IPv6 is off in both, so that nothing but the test's own traffic crosses the TUNs and the counters
//! can be asserted exactly. Needs root (skipped with one line otherwise, a failure under `TWEED_REQUIRE_ALL=1`).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::common::netns::raw::{self, RawSocket, Udp};
use crate::common::netns::{
    Need, NetNs, Process, STOP_GRACE, node_ip, node_mac, ping, require, tcp_blob, underlay_pair, wait_for,
};

const PORT: u16 = 51820;
const KEY: &str = "4b1d0c2e9a8f7e6d5c4b3a29180716253443526170f1e2d3c4b5a69788796a5b";
const OTHER_KEY: &str = "4b1d0c2e9a8f7e6d5c4b3a29180716253443526170f1e2d3c4b5a69788796a5c";
const TUN: &str = "psk0";
/// How long a counters line may take to show what happened.
const SETTLE: Duration = Duration::from_secs(10);

/// Builds the example (the same profile as this test) once; its path, or why it cannot be had.
fn example() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            // This test runs as target/<profile dir>/deps/psk_tunnel-<hash>.
            let profile_dir = exe.parent().and_then(|d| d.parent()).ok_or("no profile directory")?;
            let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") | None => "dev",
                Some(other) => other,
            };
            let out = Command::new(cargo)
                .args(["build", "--quiet", "--example", "psk_tunnel", "--message-format=json", "--profile", profile])
                .args(["--manifest-path", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")])
                .output()
                .map_err(|e| format!("cannot run cargo: {e}"))?;
            if !out.status.success() {
                return Err(format!("cargo build --example psk_tunnel: {}", String::from_utf8_lossy(&out.stderr)));
            }
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "psk_tunnel")
                .and_then(|m| m["executable"].as_str().map(PathBuf::from))
                .ok_or_else(|| "cargo built no psk_tunnel executable".to_owned())
        })
        .clone()
}

/// Site `i` (1 or 2): its TUN address.
fn site_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, i, 0, 1)
}

/// The two sites' namespaces, IPv6 off, or `None` after saying why the test is skipped.
fn sites() -> Option<[NetNs; 2]> {
    if !require(&[Need::Root, Need::Netns, Need::Veth, Need::Tun, Need::Ping]) {
        return None;
    }
    let nodes = underlay_pair(1500).expect("the underlay");
    let off = "[ -d /proc/sys/net/ipv6 ] || exit 0; for c in all default; do \
               echo 1 > /proc/sys/net/ipv6/conf/$c/disable_ipv6 || exit 1; done";
    for ns in &nodes {
        ns.run(&["sh", "-c", off]).expect("IPv6 off");
    }
    Some(nodes)
}

/// Starts the example for site `i` of `nodes` with `key`, and waits until it is up.
fn start(nodes: &[NetNs; 2], i: u8, key: &str) -> Process {
    let exe = match example() {
        Ok(exe) => exe,
        Err(e) => panic!("{e}"),
    };
    let j = 3 - i;
    let argv = [
        exe.to_str().expect("a UTF-8 path").to_owned(),
        "--tun".into(),
        TUN.into(),
        "--address".into(),
        format!("{}/24", site_ip(i)),
        "--peer-site".into(),
        format!("10.{j}.0.0/24"),
        "--underlay".into(),
        node_ip(i).to_string(),
        "--peer".into(),
        node_ip(j).to_string(),
        "--port".into(),
        PORT.to_string(),
        "--id".into(),
        i.to_string(),
        "--peer-id".into(),
        j.to_string(),
        "--key".into(),
        key.into(),
    ];
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut p = nodes[usize::from(i - 1)].spawn(&format!("psk_tunnel-{i}"), &argv).expect("the example starts");
    p.wait_for_log("ready:", SETTLE).expect("the example is ready");
    p
}

/// The counters line of this many packets sent to the peer and delivered to the TUN, and datagrams refused as
/// replayed or unauthenticated, nothing else.
fn line(sent: u64, delivered: u64, replayed: u64, unauthenticated: u64) -> String {
    format!(
        "counters sent={sent} delivered={delivered} unauthenticated={unauthenticated} replayed={replayed} \
         other_drops=0 tx_dropped=0 rx_dropped=0"
    )
}

/// The last counters line a node printed.
fn last_counters(p: &Process) -> String {
    p.log().lines().rev().find(|l| l.starts_with("counters ")).unwrap_or_default().to_owned()
}

/// Waits until the node's last counters line is `expected`; fails with the last one seen.
#[track_caller]
fn expect_counters(p: &Process, expected: &str) {
    if wait_for(expected, SETTLE, || (last_counters(p) == expected).then_some(())).is_err() {
        panic!("counters: expected\n  {expected}\nlast printed\n  {}\nlog:\n{}", last_counters(p), p.log());
    }
}

/// Stops the node (SIGTERM), which must exit cleanly; the line of its drops by reason (`drops name=n ...`).
#[track_caller]
fn stop(p: &mut Process) -> String {
    let status = p.stop(STOP_GRACE);
    let log = p.log();
    assert!(status.success(), "{status}: {log}");
    let mut tail = log.lines().rev();
    assert_eq!(tail.next(), Some("stopped"), "{log}");
    tail.next().unwrap_or_default().to_owned()
}

/// Packets the example wrote into its TUN (the kernel counts them as received on it).
fn written_to_tun(ns: &NetNs) -> u64 {
    ns.link_stat(TUN, "rx_packets").expect("the TUN's counters")
}

#[test]
fn psk_tunnel_carries_ping_and_tcp_both_ways() {
    let Some(nodes) = sites() else { return };
    let (mut a, mut b) = (start(&nodes, 1, KEY), start(&nodes, 2, KEY));
    let p = ping(&nodes[0], site_ip(2), 5, &[]).expect("ping from site 1");
    assert_eq!((p.transmitted, p.received), (5, 5), "{}", p.output);
    expect_counters(&a, &line(5, 5, 0, 0));
    expect_counters(&b, &line(5, 5, 0, 0));
    let p = ping(&nodes[1], site_ip(1), 5, &[]).expect("ping from site 2");
    assert_eq!((p.transmitted, p.received), (5, 5), "{}", p.output);
    expect_counters(&a, &line(10, 10, 0, 0));
    expect_counters(&b, &line(10, 10, 0, 0));
    assert_eq!((written_to_tun(&nodes[0]), written_to_tun(&nodes[1])), (10, 10));

    // TCP, one connection each way, every byte checked at both ends.
    const BYTES: usize = 4 << 20;
    for (from, to, seed) in [(0u8, 1u8, 1), (1, 0, 2)] {
        let blob =
            tcp_blob(&nodes[usize::from(from)], &nodes[usize::from(to)], site_ip(to + 1), BYTES, seed).expect("TCP");
        assert_eq!(blob.sent.0, BYTES as u64);
        assert_eq!(blob.received, blob.sent, "site {} to site {}", from + 1, to + 1);
    }
    // Every datagram sealed on one side was opened on the other: none refused, none lost.
    let parse = |p: &Process| -> Vec<(String, u64)> {
        let l = last_counters(p);
        l.split_whitespace()
            .skip(1)
            .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.parse().unwrap_or(u64::MAX))))
            .collect()
    };
    let get = |c: &[(String, u64)], k: &str| c.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    let balanced = wait_for("both directions to balance", SETTLE, || {
        let (ca, cb) = (parse(&a), parse(&b));
        (get(&ca, "sent") == get(&cb, "delivered") && get(&cb, "sent") == get(&ca, "delivered")).then_some((ca, cb))
    });
    let (ca, cb) = balanced.unwrap_or_else(|e| panic!("{e}: {} / {}", last_counters(&a), last_counters(&b)));
    for c in [&ca, &cb] {
        for k in ["unauthenticated", "replayed", "other_drops", "tx_dropped", "rx_dropped"] {
            assert_eq!(get(c, k), Some(0), "{k} in {c:?}");
        }
    }
    // Each side sent 4 MiB in segments of at most 1,404 bytes (the TUN's MTU of 1,444 less 40 bytes of headers),
    // so 2,988 datagrams at least, and the acknowledgements of what the other side sent.
    for c in [&ca, &cb] {
        assert!(get(c, "sent").is_some_and(|n| n > BYTES.div_ceil(1404) as u64), "{c:?}");
    }
    // A clean stop, with a last counters line and no drop of any reason.
    for p in [&mut a, &mut b] {
        assert_eq!(stop(p), "drops");
    }
}

#[test]
fn psk_tunnel_with_another_key_delivers_nothing_and_counts_it() {
    let Some(nodes) = sites() else { return };
    let (mut a, mut b) = (start(&nodes, 1, KEY), start(&nodes, 2, OTHER_KEY));
    let p = ping(&nodes[0], site_ip(2), 3, &[]).expect("ping from site 1");
    assert_eq!((p.transmitted, p.received), (3, 0), "{}", p.output);
    expect_counters(&a, &line(3, 0, 0, 0));
    expect_counters(&b, &line(0, 0, 0, 3));
    let p = ping(&nodes[1], site_ip(1), 3, &[]).expect("ping from site 2");
    assert_eq!((p.transmitted, p.received), (3, 0), "{}", p.output);
    expect_counters(&a, &line(3, 0, 0, 3));
    expect_counters(&b, &line(3, 0, 0, 3));
    assert_eq!((written_to_tun(&nodes[0]), written_to_tun(&nodes[1])), (0, 0));
    for p in [&mut a, &mut b] {
        assert_eq!(stop(p), "drops unauthenticated=3");
    }
}

#[test]
fn psk_tunnel_refuses_a_replayed_datagram_and_counts_it() {
    let Some(nodes) = sites() else { return };
    let (mut a, mut b) = (start(&nodes, 1, KEY), start(&nodes, 2, KEY));
    // What reaches site 2's underlay from site 1's node.
    let tap = RawSocket::open(&nodes[1], "eth0").expect("a packet socket on site 2's eth0");
    let p = ping(&nodes[0], site_ip(2), 1, &[]).expect("ping from site 1");
    assert_eq!((p.transmitted, p.received), (1, 1), "{}", p.output);
    expect_counters(&b, &line(1, 1, 0, 0));
    let mut sealed = Vec::new();
    tap.drain(Duration::from_millis(200), Duration::from_secs(2), |f| {
        let to_tunnel = f.len() > 42
            && f[12..14] == [0x08, 0x00]
            && f[23] == 17
            && f[26..30] == node_ip(1).octets()
            && f[36..38] == PORT.to_be_bytes();
        if to_tunnel {
            sealed.push((u16::from_be_bytes([f[34], f[35]]), f[42..].to_vec()));
        }
    });
    // The echo request, sealed by sender 1 with its first counter, 28 bytes longer than the 84-byte packet.
    assert_eq!(sealed.len(), 1, "{sealed:?}");
    let (sport, datagram) = &sealed[0];
    assert_eq!((&datagram[..12], datagram.len()), (&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0][..], 84 + 28));

    // The same datagram, twice more, from site 1's underlay address.
    let udp = Udp { sport: *sport, dport: PORT, ..Udp::new(node_ip(1), node_ip(2)) };
    let frame = raw::ipv4_udp(node_mac(2), node_mac(1), udp, datagram);
    let inject = RawSocket::open(&nodes[0], "eth0").expect("a packet socket on site 1's eth0");
    for _ in 0..2 {
        assert!(inject.send(&frame).expect("the replay is sent"));
    }
    expect_counters(&b, &line(1, 1, 2, 0));
    // Nothing reached site 2's TUN, so nothing was answered.
    assert_eq!(written_to_tun(&nodes[1]), 1);
    expect_counters(&a, &line(1, 1, 0, 0));
    // The tunnel still works.
    let p = ping(&nodes[0], site_ip(2), 1, &[]).expect("ping from site 1");
    assert_eq!((p.transmitted, p.received), (1, 1), "{}", p.output);
    expect_counters(&b, &line(2, 2, 2, 0));
    assert_eq!(written_to_tun(&nodes[1]), 2);
    assert_eq!((stop(&mut a), stop(&mut b)), ("drops".to_owned(), "drops replayed=2".to_owned()));
}

#[test]
fn psk_tunnel_refuses_bad_arguments_with_a_reason() {
    let exe = example().unwrap_or_else(|e| panic!("{e}"));
    let run = |args: &[&str]| {
        let out = Command::new(&exe).args(args).output().expect("the example runs");
        assert!(!out.status.success(), "{args:?} accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let base = ["--tun", "psk0", "--address", "10.1.0.1/24", "--peer-site", "10.2.0.0/24"];
    let with = |more: &[&'static str]| [&base[..], &["--underlay", "127.0.0.1", "--peer", "127.0.0.2"], more].concat();
    let err = run(&with(&["--id", "1", "--peer-id", "1", "--key", KEY]));
    assert!(err.contains("--id and --peer-id must differ (both are 1)"), "{err}");
    let err = run(&with(&["--id", "1", "--peer-id", "2", "--key", "abc"]));
    assert!(err.contains("a key is 64 hex digits, not 3 characters"), "{err}");
    let err = run(&with(&["--id", "1", "--peer-id", "2"]));
    assert!(err.contains("--key or --key-file is required"), "{err}");
    let err = run(&with(&["--id", "1", "--peer-id", "2", "--key-file", "/no/such/key"]));
    assert!(err.contains("cannot read the key file /no/such/key"), "{err}");
    let err = run(&[&base[..], &["--id", "1", "--peer-id", "2", "--key", KEY]].concat());
    assert!(err.contains("--underlay is required"), "{err}");
    let err = run(&["--tun"]);
    assert!(err.contains("--tun needs a value"), "{err}");
}
