//! `tweed pcap replay`: the kernel flannel capture through a node configured as the capture's node 2, whose frames
//! come out decapsulated exactly as the router would deliver them; bad configs and inputs exit 2 naming what is
//! wrong; garbage frames are counted drops.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Node 2 of the capture (`tests/data/kernel-flannel-vxlan.pcap`): underlay 192.0.2.2 with the MAC its frames are sent to, VTEP
/// 02:00:00:00:00:02, pods 10.244.2.0/24; its peer is node 1.
const NODE2: &str = r#"
pod_subnet = "10.244.2.0/24"

[underlay]
node_ip = "192.0.2.2"
node_mac = "62:f5:f9:f2:75:3e"

[backend]
type = "vxlan"
vtep_mac = "02:00:00:00:00:02"

[[peers]]
subnet = "10.244.1.0/24"
node_ip = "192.0.2.1"
vtep_mac = "02:00:00:00:00:01"
node_mac = "e2:c6:cd:ac:0e:fd"
"#;

/// The same node in the agent's file format, with two pods (ports 1 and 2).
const AGENT: &str = r#"
[node]
pod_subnet = "10.244.2.0/24"
[node.underlay]
node_ip = "192.0.2.2"
node_mac = "62:f5:f9:f2:75:3e"
[node.backend]
type = "vxlan"
vtep_mac = "02:00:00:00:00:02"
[[node.peers]]
subnet = "10.244.1.0/24"
node_ip = "192.0.2.1"
vtep_mac = "02:00:00:00:00:01"
node_mac = "e2:c6:cd:ac:0e:fd"

[underlay]
interface = "eth0"

[[pods]]
tap = "eth0"
netns = "pod1"
[[pods]]
tap = "eth0"
netns = "pod2"
"#;

const NODE2_MAC: [u8; 6] = [0x62, 0xf5, 0xf9, 0xf2, 0x75, 0x3e];
const POD_MAC: [u8; 6] = [0x0a, 0x58, 10, 244, 2, 2];
const GATEWAY_MAC: [u8; 6] = [0x0a, 0x58, 10, 244, 2, 1];

fn tweed(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tweed")).args(args).output().expect("run the tweed binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

fn capture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/kernel-flannel-vxlan.pcap")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The frames of a capture file (pcap or pcapng), read by tweed-pcap.
fn frames(file: &[u8]) -> Vec<Vec<u8>> {
    let reader = tweed_pcap::Reader::new(file).expect("a capture header");
    reader.map(|r| r.expect("a whole record").data.to_vec()).collect()
}

/// The names of the capture points of a pcapng file, in the order they were described.
fn capture_points(file: &[u8]) -> Vec<String> {
    let mut reader = tweed_pcap::Reader::new(file).expect("a capture header");
    reader.by_ref().for_each(drop);
    reader.interfaces().iter().map(|i| i.name.clone().unwrap_or_default()).collect()
}

/// A classic pcap file of these frames, one millisecond apart.
fn pcap_of(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut w = tweed_pcap::Writer::new(Vec::new(), tweed_pcap::Format::Pcap).expect("pcap");
    let port = w.add_interface(&tweed_pcap::Interface::ethernet("in")).expect("interface");
    for (i, frame) in frames.iter().enumerate() {
        w.write(port, 1_000_000_000 + i as u64 * 1_000_000, frame).expect("frame");
    }
    w.finish().expect("flush")
}

/// The RFC 1071 checksum of an IPv4 header (its checksum field included, so zero it first).
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// What node 2's router delivers to its pod for a VXLAN frame of the capture, computed independently: the inner
/// frame (after 14 + 20 + 8 + 8 outer bytes) with the gateway's MAC to the pod's, TTL one less, checksum redone.
fn expected_delivery(outer: &[u8]) -> Vec<u8> {
    let mut f = outer[50..].to_vec();
    f[..6].copy_from_slice(&POD_MAC);
    f[6..12].copy_from_slice(&GATEWAY_MAC);
    f[14 + 8] -= 1;
    f[24..26].fill(0);
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let c = ipv4_checksum(&f[14..14 + ihl]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

#[test]
fn kernel_capture_decapsulates_to_the_pod() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("node2.toml");
    std::fs::write(&config, NODE2).expect("write config");
    let out = dir.path().join("out.pcap");
    let o = tweed(&["pcap", "replay", "--config", s(&config), "--pod", "10.244.2.2", s(&capture()), s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[1], "in        40 frames: 40 from the underlay, 0 from pods", "{text}");
    assert!(
        lines[2].starts_with("out       26 frames: 26 to pods, 0 to the underlay, 0 to the host (tun) -> "),
        "{text}"
    );
    assert_eq!(lines[3], "node  decapsulated 26, encapsulated 0, switched 0, arp requests 0, consumed 0", "{text}");
    // Node 2's own 14 frames to node 1 are on its wire but not for it.
    assert_eq!(&lines[4..], ["drops     14", "  underlay_not_for_us         14"], "{text}");

    let input = frames(&std::fs::read(capture()).expect("read capture"));
    let to_node2: Vec<&Vec<u8>> = input.iter().filter(|f| f[..6] == NODE2_MAC).collect();
    assert_eq!(to_node2.len(), 26);
    let written = frames(&std::fs::read(&out).expect("read output"));
    assert_eq!(written.len(), 26);
    for (i, (got, outer)) in written.iter().zip(&to_node2).enumerate() {
        assert_eq!(*got, expected_delivery(outer), "frame {i}");
    }
}

#[test]
fn agent_file_gives_the_same_node_and_numbers_its_pods() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bare, agent) = (dir.path().join("node2.toml"), dir.path().join("agent.toml"));
    std::fs::write(&bare, NODE2).expect("write config");
    std::fs::write(&agent, AGENT).expect("write config");
    let (out1, out2) = (dir.path().join("1.pcap"), dir.path().join("2.pcap"));
    let args = |config: &Path, out: &Path, port: &str| {
        tweed(&[
            "pcap",
            "replay",
            "--config",
            s(config),
            "--pod-port",
            port,
            "--pod",
            "10.244.2.2",
            s(&capture()),
            s(out),
        ])
    };
    let o = args(&bare, &out1, "1");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = args(&agent, &out2, "2");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("pod port 2"), "{}", stdout(&o));
    let (file1, file2) = (std::fs::read(&out1).expect("read"), std::fs::read(&out2).expect("read"));
    assert_eq!(frames(&file1), frames(&file2));
    // The same frames, each written on the pod port it left by.
    assert_eq!((capture_points(&file1), capture_points(&file2)), (vec!["port1".to_owned()], vec!["port2".to_owned()]));
    // The agent's two pods are ports 1 and 2: port 3 is refused, naming the flag.
    let o = args(&agent, &out2, "3");
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("--pod-port 3") && err.contains("[1, 2]") && err.contains("agent.toml"), "{err}");
}

#[test]
fn without_pods_the_node_asks_by_arp_and_waits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("node2.toml");
    std::fs::write(&config, NODE2).expect("write config");
    let out = dir.path().join("out.pcap");
    let o = tweed(&["pcap", "replay", "--config", s(&config), s(&capture()), s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("decapsulated 26, encapsulated 0, switched 0, arp requests 1,"), "{text}");
    assert!(text.contains("waiting for ARP at the end: 26 packets"), "{text}");
    // The one frame out: who has 10.244.2.2, tell 10.244.2.1, broadcast from the gateway.
    let written = frames(&std::fs::read(&out).expect("read output"));
    assert_eq!(written.len(), 1);
    let arp = &written[0];
    assert_eq!(&arp[..12], &[[0xff; 6], GATEWAY_MAC].concat()[..]);
    assert_eq!(&arp[12..22], &[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    assert_eq!(&arp[28..32], &[10, 244, 2, 1]);
    assert_eq!(&arp[38..42], &[10, 244, 2, 2]);
}

#[test]
fn bad_config_exits_2_naming_file_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.pcap");
    let cases = [
        (NODE2.replace("62:f5:f9:f2:75:3e", "62:f5:zz"), "node_mac = \"62:f5:zz\""),
        (NODE2.replace("node_ip = \"192.0.2.2\"\n", ""), "missing field `node_ip`"),
        (NODE2.replace("vtep_mac = \"02:00:00:00:00:01\"\n", ""), "peer 10.244.1.0/24 needs a vtep_mac"),
        (NODE2.replace("[underlay]\n", "[underlay]\nmtu = \"big\"\n"), "mtu = \"big\""),
        (AGENT.replace("type = \"vxlan\"", "type = \"gre\""), "[node]"),
        ("pod_subnet = [".to_owned(), "not a TOML file"),
    ];
    for (text, why) in cases {
        let config = dir.path().join("bad.toml");
        std::fs::write(&config, &text).expect("write config");
        let o = tweed(&["pcap", "replay", "--config", s(&config), s(&capture()), s(&out)]);
        assert_eq!(o.status.code(), Some(2), "{text}");
        let err = stderr(&o);
        assert!(err.starts_with("error: ") && err.contains(s(&config)), "{err}");
        assert!(err.contains(why), "{why}: {err}");
    }
    let o = tweed(&["pcap", "replay", "--config", "/no/such/node.toml", s(&capture()), s(&out)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read /no/such/node.toml"), "{}", stderr(&o));
}

#[test]
fn missing_input_or_output_directory_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("node2.toml");
    std::fs::write(&config, NODE2).expect("write config");
    let missing = dir.path().join("missing.pcap");
    let o = tweed(&["pcap", "replay", "--config", s(&config), s(&missing), s(&dir.path().join("o.pcap"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(&format!("cannot read {}", s(&missing))), "{}", stderr(&o));
    let o = tweed(&["pcap", "replay", "--config", s(&config), s(&capture()), s(&dir.path().join("no/o.pcap"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot create"), "{}", stderr(&o));
    // Not a capture at all.
    let o = tweed(&["pcap", "replay", "--config", s(&config), s(&config), s(&dir.path().join("o.pcap"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a pcap file"), "{}", stderr(&o));
}

#[test]
fn garbage_frames_are_counted_drops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("node2.toml");
    std::fs::write(&config, NODE2).expect("write config");
    let capture = frames(&std::fs::read(capture()).expect("read capture"));
    let mut wrong_vni = capture[0].clone();
    wrong_vni[40..42].fill(0); // outer UDP checksum: none
    wrong_vni[48] = 2; // VNI 1 → 2 (bytes 46..49 of the frame)
    let mut bad_outer = capture[0].clone();
    bad_outer[24] ^= 0xff; // outer IPv4 checksum
    let mut lcg = 0x2545_f491_u32;
    let noise: Vec<u8> = (0..64)
        .map(|_| {
            lcg = lcg.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (lcg >> 16) as u8
        })
        .collect();
    let mut from_pod_noise = noise.clone();
    from_pod_noise[..6].copy_from_slice(&[2, 0, 0, 0, 0xee, 1]); // unicast to nobody
    from_pod_noise[6..12].copy_from_slice(&POD_MAC);
    let mut multicast_source = noise.clone();
    multicast_source[6] = 0x01;
    let to_node = [&NODE2_MAC[..], &noise[6..]].concat();
    let garbage = vec![
        vec![],             // pod: bridge_truncated
        vec![0xff; 5],      // pod: bridge_truncated
        vec![0x55; 3000],   // longer than a packet buffer: skipped
        wrong_vni,          // underlay: wrong_vni
        bad_outer,          // underlay: underlay_malformed
        from_pod_noise,     // pod: flood_no_port (one pod port, unknown unicast)
        multicast_source,   // pod: bridge_invalid_source
        to_node,            // underlay (to our MAC): underlay_not_for_us (not IPv4)
        capture[1].clone(), // underlay, node 2's own: underlay_not_for_us
    ];
    let input = dir.path().join("garbage.pcap");
    std::fs::write(&input, pcap_of(&garbage)).expect("write capture");
    let out = dir.path().join("out.pcap");
    let o = tweed(&["pcap", "replay", "--config", s(&config), s(&input), s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[1], "in         9 frames: 4 from the underlay, 5 from pods", "{text}");
    assert_eq!(lines[2], "skip       1 frames: 1 longer than a packet buffer, 0 with no free buffer", "{text}");
    assert!(
        lines[3].starts_with("out        0 frames: 0 to pods, 0 to the underlay, 0 to the host (tun) -> "),
        "{text}"
    );
    assert_eq!(
        &lines[5..],
        [
            "drops      8",
            "  bridge_truncated             2",
            "  bridge_invalid_source        1",
            "  flood_no_port                1",
            "  underlay_not_for_us          2",
            "  underlay_malformed           1",
            "  wrong_vni                    1",
        ],
        "{text}"
    );
    assert!(frames(&std::fs::read(&out).expect("read output")).is_empty());
}

#[test]
fn reads_a_pcapng_from_editcap_and_writes_pcap_on_request() {
    if std::process::Command::new("editcap").arg("-h").output().is_err() {
        assert!(std::env::var("TWEED_REQUIRE_ALL").as_deref() != Ok("1"), "editcap is required but not installed");
        eprintln!(
            "skipped reads_a_pcapng_from_editcap_and_writes_pcap_on_request: editcap is not installed (Debian: apt-get install tshark)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("node2.toml");
    std::fs::write(&config, NODE2).expect("write config");
    let ng = dir.path().join("in.pcapng");
    let o = Command::new("editcap").args(["-F", "pcapng", s(&capture()), s(&ng)]).output().expect("run editcap");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&ng).expect("read")[..4], [0x0a, 0x0d, 0x0d, 0x0a], "editcap wrote pcapng");
    let (from_pcap, from_ng) = (dir.path().join("a.pcap"), dir.path().join("b.pcap"));
    for (input, out) in [(capture(), &from_pcap), (ng.clone(), &from_ng)] {
        let args =
            ["pcap", "replay", "--config", s(&config), "--pod", "10.244.2.2", "--format", "pcap", s(&input), s(out)];
        let o = tweed(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let (a, b) = (std::fs::read(&from_pcap).expect("read"), std::fs::read(&from_ng).expect("read"));
    assert_eq!(a[..4], [0xd4, 0xc3, 0xb2, 0xa1], "--format pcap");
    // The same 26 deliveries at the same microseconds, whichever format the input was.
    assert_eq!(frames(&a).len(), 26);
    assert_eq!(a, b);
}
