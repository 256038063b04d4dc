//! Runs the built `tweed` binary and checks its output and exit codes.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output};

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

fn capture_str() -> String {
    capture().to_str().expect("utf-8 path").to_owned()
}

#[test]
fn cidr_text_is_exact() {
    let o = tweed(&["cidr", "192.168.20.125/27"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let expected = "\
address    192.168.20.125/27
network    192.168.20.96
broadcast  192.168.20.127
netmask    255.255.255.224
wildcard   0.0.0.31
first      192.168.20.97
last       192.168.20.126
hosts      30
";
    assert_eq!(stdout(&o), expected);
    assert!(o.stderr.is_empty());
}

#[test]
fn cidr_json_has_the_facts() {
    let o = tweed(&["cidr", "--json", "192.168.20.125/27"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    assert_eq!(v["address"], "192.168.20.125");
    assert_eq!(v["prefix_len"], 27);
    assert_eq!(v["network"], "192.168.20.96");
    assert_eq!(v["broadcast"], "192.168.20.127");
    assert_eq!(v["netmask"], "255.255.255.224");
    assert_eq!(v["wildcard"], "0.0.0.31");
    assert_eq!(v["first_host"], "192.168.20.97");
    assert_eq!(v["last_host"], "192.168.20.126");
    assert_eq!(v["host_count"], 30);
    assert_eq!(v.as_object().map(serde_json::Map::len), Some(9));
    // Pretty-printed: one field per line.
    assert!(stdout(&o).starts_with("{\n  \""), "{}", stdout(&o));

    // RFC 3021 edge cases come through unchanged.
    let o = tweed(&["cidr", "10.0.0.5/31", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    assert_eq!((v["first_host"].as_str(), v["last_host"].as_str()), (Some("10.0.0.4"), Some("10.0.0.5")));
    assert_eq!(v["host_count"], 2);
}

#[test]
fn bad_cidrs_exit_2_and_say_why() {
    for (arg, why) in [
        ("192.168.20.125", "expected an address and a prefix length"),
        ("192.168.20/27", "expected a dotted-quad ipv4 address"),
        ("300.1.1.1/8", "expected a dotted-quad ipv4 address"),
        ("10.0.0.0/33", "expected a number from 0 to 32"),
        ("10.0.0.0/", "expected a number from 0 to 32"),
        ("-1", "expected an address and a prefix length"),
    ] {
        let o = tweed(&["cidr", arg]);
        assert_eq!(o.status.code(), Some(2), "{arg}");
        assert!(o.stdout.is_empty(), "{arg}");
        let err = stderr(&o);
        assert!(err.starts_with("error: "), "{arg}: {err}");
        assert!(err.contains("<CIDR>") && err.contains(arg), "{arg}: {err}");
        assert!(err.contains(why) && err.contains("192.168.20.125/27"), "{arg}: {err}");
    }
    let o = tweed(&["cidr"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("<CIDR>"), "{}", stderr(&o));
}

#[test]
fn help_documents_exit_codes() {
    for args in [&["--help"][..], &["cidr", "--help"], &["pcap", "--help"], &["pcap", "dissect", "--help"]] {
        let o = tweed(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        let text = stdout(&o);
        assert!(text.contains("Exit codes:"), "{args:?}: {text}");
        assert!(text.contains("  0  success") && text.contains("  1  runtime") && text.contains("  2  bad"), "{text}");
    }
    assert_eq!(tweed(&["no-such-command"]).status.code(), Some(2));
    assert_eq!(tweed(&[]).status.code(), Some(2));
}

#[test]
fn dissect_kernel_capture() {
    let o = tweed(&["pcap", "dissect", &capture_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 40, "{text}");
    assert_eq!(
        lines[0],
        "    1   148B  e2:c6:cd:ac:0e:fd > 62:f5:f9:f2:75:3e IPv4 | ip 192.0.2.1 > 192.0.2.2 ttl 64 id 22054 len 134 udp \
         | udp 49028 > 8472 len 114 | vxlan vni 1 | 02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 \
         | ip 10.244.1.2 > 10.244.2.2 ttl 63 id 58802 len 84 [DF] icmp | icmp echo request id 16482 seq 1 | data 56B"
    );
    assert!(lines[1].contains("ip 10.244.2.2 > 10.244.1.2") && lines[1].contains("| icmp echo reply id 16482 seq 1 |"));
    // Frame 6: the inner TCP SYN-ACK of the iperf3 connection.
    assert!(
        lines[5].ends_with("| tcp 5201 > 55202 [S.] seq 1431370289 ack 1726140078 win 65160 len 0"),
        "{}",
        lines[5]
    );
    // Nothing in the kernel's capture is malformed or has a bad checksum.
    assert!(
        lines.iter().all(|l| !l.contains("bad cksum") && !l.contains(" lies") && !l.contains("truncated")),
        "{text}"
    );
    assert!(lines[39].starts_with("   40 "), "{}", lines[39]);
    // Every frame of the capture is an overlay frame on the flannel port.
    assert!(lines.iter().all(|l| l.contains(" > 8472 len ") && l.contains(" | vxlan vni 1 | ")), "{text}");
    assert!(o.stderr.is_empty());
}

#[test]
fn truncated_capture_exits_2_naming_the_record() {
    let full = std::fs::read(capture()).expect("read capture");
    // Records 1 to 4 are 148 bytes each; cut in the middle of record 3's data.
    let cut = 24 + 2 * (16 + 148) + 16 + 50;
    let mut tmp = tempfile::NamedTempFile::new().expect("tempfile");
    tmp.write_all(&full[..cut]).expect("write");
    tmp.flush().expect("flush");
    let path = tmp.path().to_str().expect("utf-8 path").to_owned();
    let o = tweed(&["pcap", "dissect", &path]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.starts_with("error: ") && err.contains(&path), "{err}");
    assert!(err.contains("record 3 at byte 352 is truncated"), "{err}");
    assert!(err.contains("declares 148 captured bytes, the file has 50 left"), "{err}");
    // The two whole records before it are still printed.
    assert_eq!(stdout(&o).lines().count(), 2);

    // Cut inside a record header.
    let mut tmp = tempfile::NamedTempFile::new().expect("tempfile");
    tmp.write_all(&full[..24 + 16 + 148 + 5]).expect("write");
    let o = tweed(&["pcap", "dissect", tmp.path().to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("record 2 at byte 188 is truncated: its header needs 16 bytes"), "{}", stderr(&o));
}

#[test]
fn hostile_record_length_exits_2() {
    let mut bytes = std::fs::read(capture()).expect("read capture");
    bytes.truncate(24 + 16 + 148);
    bytes[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut tmp = tempfile::NamedTempFile::new().expect("tempfile");
    tmp.write_all(&bytes).expect("write");
    let o = tweed(&["pcap", "dissect", tmp.path().to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("record 1 at byte 24 is truncated: it declares 4294967295"), "{}", stderr(&o));
}

#[test]
fn non_pcap_files_exit_2() {
    let mut tmp = tempfile::NamedTempFile::new().expect("tempfile");
    tmp.write_all(b"this is a text file, not a capture at all\n").expect("write");
    let path = tmp.path().to_str().expect("utf-8 path").to_owned();
    let o = tweed(&["pcap", "dissect", &path]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.starts_with("error: ") && err.contains(&path) && err.contains("not a pcap file"), "{err}");
    assert!(o.stdout.is_empty());

    let short = tempfile::NamedTempFile::new().expect("tempfile");
    let o = tweed(&["pcap", "dissect", short.path().to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("0 bytes, shorter than the 24-byte pcap file header"), "{}", stderr(&o));

    let o = tweed(&["pcap", "dissect", "/nonexistent/tweed/capture.pcap"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read /nonexistent/tweed/capture.pcap"), "{}", stderr(&o));

    let dir = tempfile::tempdir().expect("tempdir");
    let o = tweed(&["pcap", "dissect", dir.path().to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
