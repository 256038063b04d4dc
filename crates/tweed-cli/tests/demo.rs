//! `tweed demo`: runs the built binary, checks that every backend's pings and TCP transfer succeed, that the flags
//! change the world, that bad flags are refused with exit code 2, and that the pcap file opens in tshark with
//! every protocol dissected and nothing malformed.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

fn tweed(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tweed")).args(args).output().expect("run the tweed binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

/// The lines of the section of `backend` (from its title line to the next blank line).
fn section<'a>(stdout: &'a str, backend: &str) -> Vec<&'a str> {
    let title = format!("{backend} (pod MTU ");
    stdout.lines().skip_while(|l| !l.starts_with(&title)).take_while(|l| !l.is_empty()).collect()
}

/// The summary table's row of `backend`, split into cells.
fn summary_row<'a>(stdout: &'a str, backend: &str) -> Vec<&'a str> {
    let after = stdout.split("\nsummary").nth(1).expect("a summary");
    let row = after.lines().find(|l| l.split_whitespace().next() == Some(backend)).expect("a summary row");
    row.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect()
}

#[test]
fn demo_every_backend_pings_and_carries_tcp() {
    let o = tweed(&["demo"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "stdout:\n{out}\nstderr:\n{}", text(&o.stderr));
    assert!(out.starts_with("tweed demo: 3 nodes x 2 pods, pod subnets 10.244.1.0/24 .. 10.244.3.0/24"), "{out}");
    for (backend, mtu, overhead, encap_len) in
        [("vxlan", 1450, "50 B", 148), ("udp", 1472, "28 B", 126), ("host-gw", 1500, "0 B", 98)]
    {
        let lines = section(&out, backend);
        assert_eq!(lines.first().copied(), Some(format!("{backend} (pod MTU {mtu})").as_str()), "{out}");
        let step = |name: &str| lines.iter().find(|l| l.starts_with(&format!("  {name:<5} "))).copied().unwrap_or("");
        assert!(
            step("arp")
                .starts_with("  arp   ok  10.244.1.2 who-has 10.244.1.1 -> node1's bridge: is-at 0a:58:0a:f4:01:01;"),
            "{backend}: {lines:#?}"
        );
        assert_eq!(
            step("ping"),
            "  ping  ok  10.244.1.2 -> 5 other pods: 4 on other nodes through the overlay, 1 on node1 through the bridge",
            "{backend}"
        );
        let tcp = step("tcp");
        assert!(tcp.starts_with("  tcp   ok  1.0 MiB 10.244.1.2:49152 -> 10.244.2.2:5201 intact (fnv1a "), "{tcp}");
        // The walk: eight hops, TTL 64 at the source pod, 63 on the underlay, 62 at the destination pod.
        let walk: Vec<_> = lines.iter().skip_while(|l| !l.starts_with("  walk ")).skip(1).copied().collect();
        assert_eq!(walk.len(), 8, "{backend}: {walk:#?}");
        assert!(walk[0].contains("pod 10.244.1.2 eth0") && walk[0].contains("10.244.1.2 > 10.244.2.2 ttl 64 ICMP"));
        assert!(walk[1].contains("node1 bridge") && walk[1].contains("is the gateway's"), "{}", walk[1]);
        assert!(walk[2].contains("10.244.2.2 in 10.244.2.0/24 via node 192.168.0.2; ttl 64 -> 63"), "{}", walk[2]);
        assert!(walk[3].contains(&format!("node1 {backend} encap")) && walk[3].contains(&format!("{encap_len} B")));
        assert!(walk[4].contains("underlay") && walk[4].contains("192.168.0.1 -> 192.168.0.2"), "{}", walk[4]);
        assert!(walk[5].contains(&format!("node2 {backend} decap")) && walk[5].contains("ttl 63"), "{}", walk[5]);
        assert!(walk[6].contains("ttl 63 -> 62; MAC 0a:58:0a:f4:02:02 from ARP -> port 1"), "{}", walk[6]);
        assert!(walk[7].contains("pod 10.244.2.2 eth0") && walk[7].contains("ttl 62 ICMP | icmp echo request"));
        match backend {
            "vxlan" => assert!(walk[3].contains("> 8472 | vxlan vni 1") && walk[5].contains("-50 B")),
            "udp" => assert!(walk[3].contains("udp 8285 > 8285") && walk[5].contains("-42 B")),
            _ => assert!(walk[3].contains("no header") && walk[3].contains("02:00:c0:a8:00:01 > 02:00:c0:a8:00:02")),
        }

        let row = summary_row(&out, backend);
        assert_eq!(row.len(), 8, "{row:?}");
        assert_eq!(row[5], overhead, "{backend}: {row:?}");
        assert_eq!(row[7], "0", "{backend} dropped packets: {row:?}");
        // At least the 1 MiB transfer went over the underlay, in frames no bigger than the MTU allows.
        let underlay_pkts: u64 = row[3].parse().expect("a count");
        assert!((740..2000).contains(&underlay_pkts), "{backend}: {row:?}");
        assert!(row[6].ends_with("/s"), "{row:?}");
    }
}

#[test]
fn demo_flags_change_the_world() {
    let o = tweed(&["demo", "--backend", "vxlan", "--nodes", "2", "--pods", "1"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(out.starts_with("tweed demo: 2 nodes x 1 pods, pod subnets 10.244.1.0/24 .. 10.244.2.0/24"), "{out}");
    assert!(section(&out, "udp").is_empty() && section(&out, "host-gw").is_empty(), "{out}");
    assert!(
        out.contains(
            "  ping  ok  10.244.1.2 -> 1 other pod: 1 on other nodes through the overlay, no other pod on node1 (--pods 1)"
        ),
        "{out}"
    );
    assert!(out.contains("  tcp   ok  1.0 MiB"), "{out}");

    let o = tweed(&["demo", "--backend", "host-gw", "--nodes", "4", "--pods", "3"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(section(&out, "vxlan").is_empty(), "{out}");
    assert!(
        out.contains("  ping  ok  10.244.1.2 -> 11 other pods: 9 on other nodes through the overlay, 2 on node1 through the bridge"),
        "{out}"
    );
    assert_eq!(summary_row(&out, "host-gw")[7], "0", "{out}");

    let o = tweed(&["demo", "--backend", "udp", "--nodes", "8"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(out.contains("-> 15 other pods: 14 on other nodes"), "{out}");
}

#[test]
fn demo_bad_flags_exit_2_naming_the_flag() {
    for (args, flag) in [
        (&["demo", "--nodes", "1"][..], "--nodes"),
        (&["demo", "--nodes", "9"], "--nodes"),
        (&["demo", "--nodes", "three"], "--nodes"),
        (&["demo", "--pods", "0"], "--pods"),
        (&["demo", "--pods", "17"], "--pods"),
        (&["demo", "--backend", "geneve"], "--backend"),
        (&["demo", "--pcap"], "--pcap"),
        (&["demo", "--speed", "1"], "--speed"),
    ] {
        let o = tweed(args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    let o = tweed(&["demo", "--backend", "geneve"]);
    assert!(text(&o.stderr).contains("possible values: vxlan, udp, host-gw, all"), "{}", text(&o.stderr));
}

#[test]
fn demo_pcap_in_a_missing_directory_is_bad_input() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("no-such-dir").join("x.pcap");
    let o = tweed(&["demo", "--pcap", path.to_str().expect("utf-8 path")]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--pcap") && err.contains("no-such-dir") && err.contains("cannot create"), "{err}");
}

#[test]
fn demo_help_documents_exit_codes() {
    let o = tweed(&["demo", "--help"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0));
    for needle in ["--backend", "--nodes", "--pods", "--pcap", "Exit codes:", "host-gw"] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
}

/// Whether tshark is here; without it the test says why it is skipped, unless `TWEED_REQUIRE_ALL=1`.
fn have_tshark(test: &str) -> bool {
    if Command::new("tshark").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    assert!(std::env::var("TWEED_REQUIRE_ALL").as_deref() != Ok("1"), "{test}: tshark is required but not installed");
    // Straight to the file descriptor, in one write: libtest hides `eprintln!` of passing tests.
    let line = format!("skipped {test}: tshark is not installed (Debian: apt-get install tshark)\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    false
}

/// tshark's decoding of `file` with flannel's ports: each frame's protocol chain, and the expert errors.
fn tshark(file: &Path) -> (Vec<String>, String) {
    let decode = ["-d", "udp.port==8472,vxlan", "-d", "udp.port==8285,ip"];
    let o = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(decode)
        .args(["-T", "fields", "-e", "frame.protocols"])
        .output()
        .expect("run tshark");
    assert!(o.status.success(), "tshark failed: {}", text(&o.stderr));
    let protocols = text(&o.stdout).lines().map(str::to_owned).collect();
    let o = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(decode)
        .args(["-q", "-z", "expert,error"])
        .output()
        .expect("run tshark");
    (protocols, text(&o.stdout))
}

#[test]
fn demo_pcap_opens_in_tshark_with_nothing_malformed() {
    if !have_tshark("demo_pcap_opens_in_tshark_with_nothing_malformed") {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("x.pcap");
    let o = tweed(&["demo", "--pcap", path.to_str().expect("utf-8 path")]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    let frames: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("pcap: ")?.split_whitespace().next()?.parse().ok())
        .expect("the demo says how many frames it wrote");

    let (protocols, expert) = tshark(&path);
    assert_eq!(protocols.len(), frames, "tshark reads every frame the demo wrote");
    let malformed: Vec<_> = protocols.iter().enumerate().filter(|(_, p)| p.contains("malformed")).collect();
    assert!(malformed.is_empty(), "malformed frames (number, protocols): {malformed:?}");
    assert!(!expert.contains("Error") && !expert.contains("Malformed"), "tshark expert errors:\n{expert}");
    for (chain, what) in [
        ("eth:ethertype:arp", "ARP on the pods' links"),
        ("eth:ethertype:ip:icmp", "ICMP on the pods' links"),
        ("eth:ethertype:ip:tcp", "TCP on the pods' links (and host-gw's underlay)"),
        ("eth:ethertype:ip:udp:vxlan:eth:ethertype:ip:icmp", "ICMP inside VXLAN"),
        ("eth:ethertype:ip:udp:vxlan:eth:ethertype:ip:tcp", "TCP inside VXLAN"),
        ("eth:ethertype:ip:udp:ip:icmp", "ICMP inside flannel udp"),
        ("eth:ethertype:ip:udp:ip:tcp", "TCP inside flannel udp"),
    ] {
        assert!(protocols.iter().any(|p| p.starts_with(chain)), "no {what} ({chain}) in {:?}", &protocols[..20]);
    }

    // The check can fail: one truncated IPv4 frame in a capture of its own is malformed to tshark.
    let bad = dir.path().join("bad.pcap");
    let mut frame = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0x00, 0x00, 0x54];
    frame.resize(30, 0);
    let mut w = tweed_pcap::Writer::new(Vec::new(), tweed_pcap::Format::Pcap).expect("pcap");
    let port = w.add_interface(&tweed_pcap::Interface::ethernet("bad")).expect("interface");
    w.write(port, 0, &frame).expect("frame");
    std::fs::write(&bad, w.finish().expect("flush")).expect("write the bad capture");
    let (protocols, expert) = tshark(&bad);
    assert!(
        protocols.iter().any(|p| p.contains("malformed")) || expert.contains("Malformed"),
        "{protocols:?} {expert}"
    );
}

#[test]
fn demo_pcap_reads_back_with_tweed_pcap_dissect() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("x.pcap");
    let file = path.to_str().expect("utf-8 path");
    let o = tweed(&["demo", "--backend", "vxlan", "--nodes", "2", "--pods", "1", "--pcap", file]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = tweed(&["pcap", "dissect", file]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    // The first echo request on the underlay: outer headers, VXLAN, the pod's packet one hop older.
    assert!(
        out.lines().any(|l| l.contains("| ip 192.168.0.1 > 192.168.0.2 ttl 64 id ")
            && l.contains(" > 8472 len ")
            && l.contains("| vxlan vni 1 | 02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 | ip 10.244.1.2 > 10.244.2.2 ttl 63 id 0 len 84 [DF] icmp | icmp echo request id ")),
        "{out}"
    );
}

#[test]
fn demo_pcap_is_pcapng_with_a_capture_point_per_port_or_pcap_on_request() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (format, magic) in [("pcapng", [0x0a, 0x0d, 0x0d, 0x0a]), ("pcap", [0xd4, 0xc3, 0xb2, 0xa1])] {
        let path = dir.path().join(format!("x.{format}"));
        let file = path.to_str().expect("utf-8 path");
        let args = ["demo", "--backend", "vxlan", "--nodes", "2", "--pods", "1", "--pcap", file, "--format", format];
        let o = tweed(&args);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let bytes = std::fs::read(&path).expect("read the capture");
        assert_eq!(bytes[..4], magic, "{format}");
        let mut r = tweed_pcap::Reader::new(&bytes).expect("header");
        let frames = r.by_ref().map(|r| r.map(|r| r.interface)).collect::<Result<Vec<_>, _>>().expect("records");
        assert!(frames.len() > 100, "{format}: {} frames", frames.len());
        let names: Vec<_> = r.interfaces().iter().filter_map(|i| i.name.clone()).collect();
        if format == "pcapng" {
            // The pods' ports and the nodes' underlays, each described.
            for name in ["node1-pod1", "node2-pod1", "node1-underlay", "node2-underlay"] {
                assert!(names.iter().any(|n| n == name), "{names:?}");
            }
            assert!(r.interfaces().iter().all(|i| i.description.is_some()));
        } else {
            assert!(names.is_empty() && frames.iter().all(|&i| i == 0), "{names:?}");
        }
        // tshark reads both formats whole (the pcapng one is checked for malformed frames above).
        if have_tshark("demo_pcap_is_pcapng_with_a_capture_point_per_port_or_pcap_on_request") {
            let (protocols, expert) = tshark(&path);
            assert_eq!(protocols.len(), frames.len(), "{format}");
            assert!(!expert.contains("Malformed"), "{format}: {expert}");
        }
    }
}
