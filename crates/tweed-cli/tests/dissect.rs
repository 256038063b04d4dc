//! `tweed pcap dissect` on the corpus of `corpus/`: the exact line of every frame (each layer, each flag, each
//! problem), and every prefix of every frame, snapped by a capture, as one JSON object per frame that says
//! "malformed" only when the whole frame is.

mod corpus;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn tweed(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tweed")).args(args).output().expect("run the tweed binary")
}

/// Writes `frames` (captured bytes, length on the wire) as a pcapng file.
fn write(path: &Path, frames: &[(Vec<u8>, usize)]) {
    let mut w = tweed_pcap::Writer::new(Vec::new(), tweed_pcap::Format::Pcapng).expect("section");
    let port = w.add_interface(&tweed_pcap::Interface::ethernet("corpus")).expect("interface");
    for (i, (data, wire)) in frames.iter().enumerate() {
        let wire = u32::try_from(*wire).expect("small");
        w.write_with(port, 1_000_000_000 + i as u64, data, Some(wire), None).expect("frame");
    }
    std::fs::write(path, w.finish().expect("flush")).expect("write");
}

/// The line of each corpus frame, after its number and length.
const LINES: &[&str] = &[
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 41 [DF] udp | udp 40000 > 50000 len 21 | data 13B",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 41 [DF] udp | udp 40000 > 50000 len 21, no cksum | data 13B",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 41 [DF] udp | udp 40000 > 50000 len 21, bad cksum | data 13B [udp bad cksum 0xe2a2 (-> 0xe2f8)]",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 29 [DF] udp | udp 40000 > 50000 len 9 | data 1B",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 41 [DF] udp, bad cksum | udp 40000 > 50000 len 21 | data 13B [ip bad cksum 0x0f97 (-> 0x0fa4)]",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 48 [DF] tcp | tcp 41000 > 5201 [S] seq 1000 win 64240 len 0",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 48 [DF] tcp | tcp 5201 > 41000 [S.] seq 7000 ack 1001 win 64240 len 0",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 56 [DF] tcp | tcp 41000 > 5201 [P.] seq 1001 ack 7001 win 64240 len 16 | data 16B",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 40 [DF] tcp | tcp 41000 > 5201 [F.] seq 1017 ack 7001 win 64240 len 0",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 40 [DF] tcp | tcp 41000 > 5201 [R] seq 1018 win 64240 len 0",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 43 [DF] tcp | tcp 41000 > 5201 [P.] seq 1001 ack 7001 win 64240 len 3, bad cksum | data 3B [tcp bad cksum 0x01ce (-> 0x01cf)]",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 52 [DF] icmp | icmp echo request id 66 seq 1 | data 24B",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.2.3 > 10.244.1.2 ttl 64 id 4660 len 52 [DF] icmp | icmp echo reply id 66 seq 1 | data 24B",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 52 [DF] icmp | icmp echo request id 66 seq 1, bad cksum | data 24B [icmp bad cksum 0xeba0 (-> 0xebb0)]",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.2.1 > 10.244.1.2 ttl 255 id 4660 len 56 icmp | icmp destination unreachable (port unreachable) | quoted ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 41 [DF] udp | quoted udp 40000 > 50000 len 21",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.2.1 > 10.244.1.2 ttl 255 id 4660 len 56 icmp | icmp destination unreachable (fragmentation needed) mtu 1400 | quoted ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 1440 [DF] tcp | quoted tcp 41000 > 5201 seq 1001",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.2.1 > 10.244.1.2 ttl 255 id 4660 len 56 icmp | icmp time exceeded (ttl exceeded in transit) | quoted ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 52 [DF] icmp | quoted icmp echo request id 66 seq 1",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.2.1 > 10.244.1.2 ttl 255 id 4660 len 56 icmp | icmp redirect (for host) gw 10.244.1.254 | quoted ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 41 [DF] udp | quoted udp 40000 > 50000 len 21",
    "02:00:00:00:00:0a > ff:ff:ff:ff:ff:ff ARP | arp who-has 10.244.1.1 tell 10.244.1.2",
    "02:00:00:00:00:0b > 02:00:00:00:00:0a ARP | arp reply 10.244.1.1 is-at 02:00:00:00:00:0b",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b 802.1Q | vlan 100 p 5 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 41 [DF] udp | udp 40000 > 50000 len 21 | data 13B",
    "02:00:00:00:00:0a > ff:ff:ff:ff:ff:ff 802.1Q | vlan 4094 p 0 dei | arp who-has 10.244.2.3 tell 10.244.1.2",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b 802.1ad | vlan 10 p 3 | vlan 20 p 1 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 41 [DF] udp | udp 40000 > 50000 len 21 | data 13B",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 30583 len 820 [+] frag off 0 udp | udp 40000 > 50000 len 1400 | data 792B",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 30583 len 620 frag off 800 udp | data 600B",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 57 [DF] tos 0xb8 opts [ra,nop,rr,eol] udp | udp 40000 > 50000 len 21 | data 13B",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 192.168.0.1 > 192.168.0.2 ttl 64 id 4660 len 102 udp | udp 50123 > 4789 len 82 | vxlan vni 42 | 02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 52 [DF] icmp | icmp echo request id 66 seq 1 | data 24B",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 192.168.0.1 > 192.168.0.2 ttl 64 id 4660 len 95 udp | udp 50124 > 8472 len 75 | vxlan vni 1 | 02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 45 [DF] tcp | tcp 41000 > 5201 [P.] seq 1001 ack 7001 win 64240 len 5 | data 5B",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 192.168.0.1 > 192.168.0.2 ttl 64 id 4660 len 102 udp | udp 50125 > 8472 len 82 | vxlan vni 1 | 02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 52 [DF] icmp, bad cksum | icmp echo request id 66 seq 1 | data 24B [ip bad cksum 0xf0a9 (-> 0x0fa9)]",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 192.168.0.1 > 192.168.0.2 ttl 64 id 4660 len 80 udp | udp 8285 > 8285 len 60 | flannel-udp | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 52 [DF] icmp | icmp echo request id 66 seq 1 | data 24B",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 192.168.0.1 > 192.168.0.2 ttl 64 id 4660 len 69 udp | udp 8285 > 8285 len 49 | flannel-udp | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 41 [DF] udp | udp 40000 > 50000 len 21 | data 13B",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 200 [DF] udp | udp 40000 > 50000 len 21 | data 13B [ip total length 200 lies: only 41 bytes follow]",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 12 [DF] udp [ip total length 12 is bogus: less than 20]",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 [ip header length 16 is bogus: less than 20]",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 41 [DF] udp | udp 40000 > 50000 len 100 | data 13B [udp length 100 lies: only 21 bytes follow]",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 41 [DF] udp | udp 40000 > 50000 len 4 [udp length 4 is bogus: less than 8]",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 40 [DF] tcp | tcp 41000 > 5201 [.] seq 1001 ack 7001 win 64240 len 8 [tcp header length 12 is bogus: less than 20]",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 [ip header truncated: need 20 bytes, have 10]",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 41 [DF] udp [ip total length 41 lies: only 24 bytes follow] [udp header truncated: need 8 bytes, have 4]",
    "[eth header truncated: need 14 bytes, have 10]",
    "02:00:00:00:00:0a > ff:ff:ff:ff:ff:ff ARP | arp op 1 hw 1 proto 0x0800 [arp header truncated: need 28 bytes, have 20]",
    "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 | ip 10.244.1.2 > 10.244.2.3 ttl 64 id 4660 len 41 [DF] udp [ip total length snapped: 41 bytes, 26 captured] [udp header snapped: 8 bytes, 6 captured]",
];

#[test]
fn every_corpus_frame_has_its_exact_line() {
    let corpus = corpus::frames();
    assert_eq!(corpus.len(), LINES.len());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("corpus.pcapng");
    write(&path, &corpus.iter().map(|f| (f.data.clone(), f.wire_len)).collect::<Vec<_>>());
    let o = tweed(&["pcap", "dissect", path.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).expect("utf-8");
    for (i, ((line, expected), frame)) in text.lines().zip(LINES).zip(&corpus).enumerate() {
        let (n, len) = (i + 1, frame.data.len());
        let snapped = if frame.wire_len > len { format!(" of {}", frame.wire_len) } else { String::new() };
        assert_eq!(line, format!("{n:>5} {len:>5}B{snapped}  {expected}"), "frame {n} ({})", frame.name);
    }
    assert_eq!(text.lines().count(), LINES.len());
}

#[test]
fn every_snapped_prefix_is_json_and_malformed_only_if_the_frame_is() {
    let corpus = corpus::frames();
    let mut frames = vec![];
    for frame in &corpus {
        // The 1400-byte fragments add nothing past their headers: their prefixes stop at 80 bytes.
        for cut in 0..=frame.data.len().min(80) {
            frames.push((frame.data[..cut].to_vec(), frame.wire_len));
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("prefixes.pcapng");
    write(&path, &frames);
    let o = tweed(&["pcap", "dissect", "--json", path.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<Value> = String::from_utf8(o.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), frames.len());
    // The whole frames' verdicts, then each prefix against its frame's.
    let mut at = 0;
    let mut snapped_problems = 0;
    for frame in &corpus {
        let whole_malformed = frame_malformed(frame);
        for cut in 0..=frame.data.len().min(80) {
            let v = &lines[at]["decoded"];
            at += 1;
            let problems = v["problems"].as_array().expect("problems");
            snapped_problems += problems.iter().filter(|p| p["fault"] == "snapped").count();
            if !whole_malformed && cut < frame.wire_len {
                assert_eq!(v["malformed"], false, "{} cut at {cut}: {v}", frame.name);
            }
            assert!(v["layers"].as_array().expect("layers").len() <= tweed_wire::dissect::MAX_LAYERS);
        }
    }
    assert!(snapped_problems > 1000, "{snapped_problems}");
}

/// Whether the whole frame is malformed, by the library itself.
fn frame_malformed(frame: &corpus::Frame) -> bool {
    tweed_wire::dissect::decode_captured(&frame.data, frame.wire_len, &tweed_wire::dissect::Decoders::DEFAULT)
        .is_malformed()
}

/// Writes the corpus as seeds of the `dissect` fuzz target (fuzz/seeds/dissect/corpus-*); run by hand when the
/// corpus changes.
#[test]
#[ignore = "writes into the source tree"]
fn write_dissect_fuzz_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/dissect");
    for frame in corpus::frames() {
        let name: String = frame.name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        std::fs::write(dir.join(format!("corpus-{name}")), &frame.data).expect("write a seed");
    }
}
