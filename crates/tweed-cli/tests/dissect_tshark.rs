//! `tweed pcap dissect --json` against tshark, field by field: a corpus built in `corpus/` (valid, truncated,
//! snapped, lying-length, bad-checksum, VLAN-tagged, fragmented, ARP, ICMP-error, TCP, VXLAN and flannel udp
//! frames) and the kernel's flannel capture. For every frame, every field both report has the same values (all
//! occurrences, outer to inner, quoted headers included), and both say the same about "malformed" and "bad
//! checksum". Also: `tweed pcap dissect` reads the pcapng `editcap -F pcapng` writes.

mod corpus;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// How a field's values are compared.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Numbers: tshark prints some in hex (`0x0800`), some in decimal, booleans as `1`/`0` or `True`/`False`.
    Num,
    /// Text (addresses), compared as printed.
    Text,
}

/// tweed's (layer, key) and tshark's field for every field the two report.
const FIELDS: &[(&str, &str, &str, Kind)] = &[
    ("eth", "dst", "eth.dst", Kind::Text),
    ("eth", "src", "eth.src", Kind::Text),
    ("eth", "type", "eth.type", Kind::Num),
    ("vlan", "priority", "vlan.priority", Kind::Num),
    ("vlan", "dei", "vlan.dei", Kind::Num),
    ("vlan", "id", "vlan.id", Kind::Num),
    ("vlan", "etype", "vlan.etype", Kind::Num),
    ("ieee8021ad", "priority", "ieee8021ad.priority", Kind::Num),
    ("ieee8021ad", "dei", "ieee8021ad.dei", Kind::Num),
    ("ieee8021ad", "id", "ieee8021ad.id", Kind::Num),
    ("arp", "hw_type", "arp.hw.type", Kind::Num),
    ("arp", "proto_type", "arp.proto.type", Kind::Num),
    ("arp", "opcode", "arp.opcode", Kind::Num),
    ("arp", "src_hw_mac", "arp.src.hw_mac", Kind::Text),
    ("arp", "src_proto_ipv4", "arp.src.proto_ipv4", Kind::Text),
    ("arp", "dst_hw_mac", "arp.dst.hw_mac", Kind::Text),
    ("arp", "dst_proto_ipv4", "arp.dst.proto_ipv4", Kind::Text),
    ("ip", "version", "ip.version", Kind::Num),
    ("ip", "hdr_len", "ip.hdr_len", Kind::Num),
    ("ip", "dsfield", "ip.dsfield", Kind::Num),
    ("ip", "len", "ip.len", Kind::Num),
    ("ip", "id", "ip.id", Kind::Num),
    ("ip", "flags_df", "ip.flags.df", Kind::Num),
    ("ip", "flags_mf", "ip.flags.mf", Kind::Num),
    ("ip", "frag_offset", "ip.frag_offset", Kind::Num),
    ("ip", "ttl", "ip.ttl", Kind::Num),
    ("ip", "proto", "ip.proto", Kind::Num),
    ("ip", "checksum", "ip.checksum", Kind::Num),
    ("ip", "checksum_status", "ip.checksum.status", Kind::Num),
    ("ip", "src", "ip.src", Kind::Text),
    ("ip", "dst", "ip.dst", Kind::Text),
    ("ip", "options", "ip.opt.type", Kind::Num),
    ("icmp", "type", "icmp.type", Kind::Num),
    ("icmp", "code", "icmp.code", Kind::Num),
    ("icmp", "checksum", "icmp.checksum", Kind::Num),
    ("icmp", "checksum_status", "icmp.checksum.status", Kind::Num),
    ("icmp", "ident", "icmp.ident", Kind::Num),
    ("icmp", "seq", "icmp.seq", Kind::Num),
    ("icmp", "mtu", "icmp.mtu", Kind::Num),
    ("icmp", "redir_gw", "icmp.redir_gw", Kind::Text),
    ("udp", "srcport", "udp.srcport", Kind::Num),
    ("udp", "dstport", "udp.dstport", Kind::Num),
    ("udp", "length", "udp.length", Kind::Num),
    ("udp", "checksum", "udp.checksum", Kind::Num),
    ("udp", "checksum_status", "udp.checksum.status", Kind::Num),
    ("tcp", "srcport", "tcp.srcport", Kind::Num),
    ("tcp", "dstport", "tcp.dstport", Kind::Num),
    ("tcp", "seq_raw", "tcp.seq_raw", Kind::Num),
    ("tcp", "ack_raw", "tcp.ack_raw", Kind::Num),
    ("tcp", "hdr_len", "tcp.hdr_len", Kind::Num),
    ("tcp", "flags", "tcp.flags", Kind::Num),
    ("tcp", "window_size_value", "tcp.window_size_value", Kind::Num),
    ("tcp", "checksum", "tcp.checksum", Kind::Num),
    ("tcp", "checksum_status", "tcp.checksum.status", Kind::Num),
    ("tcp", "urgent_pointer", "tcp.urgent_pointer", Kind::Num),
    ("tcp", "len", "tcp.len", Kind::Num),
    ("vxlan", "flags", "vxlan.flags", Kind::Num),
    ("vxlan", "vni", "vxlan.vni", Kind::Num),
];

/// tshark's own verdicts: a malformed-packet exception, and any bad checksum.
const VERDICT_FIELDS: &[&str] = &["_ws.malformed", "_ws.expert.group", "_ws.expert.severity"];

fn tweed(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tweed")).args(args).output().expect("run the tweed binary")
}

/// Whether tshark is here; without it the test says why it is skipped, unless `TWEED_REQUIRE_ALL=1`.
fn have_tshark(test: &str) -> bool {
    if Command::new("tshark").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    assert!(std::env::var("TWEED_REQUIRE_ALL").as_deref() != Ok("1"), "{test}: tshark is required but not installed");
    eprintln!("skipped {test}: tshark is not installed (Debian: apt-get install tshark)");
    false
}

/// The corpus as a pcapng file.
fn write_corpus(path: &Path) -> Vec<&'static str> {
    let mut w = tweed_pcap::Writer::new(Vec::new(), tweed_pcap::Format::Pcapng).expect("section");
    let port = w.add_interface(&tweed_pcap::Interface::ethernet("corpus")).expect("interface");
    let mut names = vec![];
    for (i, frame) in corpus::frames().into_iter().enumerate() {
        let wire = u32::try_from(frame.wire_len).expect("small");
        w.write_with(port, 1_000_000_000 + i as u64 * 1000, &frame.data, Some(wire), Some(frame.name)).expect("frame");
        names.push(frame.name);
    }
    let bytes = w.finish().expect("flush");
    // To look at the corpus in Wireshark: TWEED_CORPUS_OUT=/tmp/corpus.pcapng cargo test ... dissect_tshark
    if let Some(keep) = std::env::var_os("TWEED_CORPUS_OUT") {
        std::fs::write(keep, &bytes).expect("write the corpus copy");
    }
    std::fs::write(path, bytes).expect("write the corpus");
    names
}

/// tshark's fields for each frame: field name to its occurrences, outer to inner.
fn tshark_fields(file: &Path) -> Vec<BTreeMap<String, Vec<String>>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file).args(["-n", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=;"]);
    for pref in [
        "ip.check_checksum:TRUE",
        "udp.check_checksum:TRUE",
        "tcp.check_checksum:TRUE",
        "ip.defragment:FALSE",
        "tcp.analyze_sequence_numbers:FALSE",
        "tcp.relative_sequence_numbers:FALSE",
        "udp.try_heuristic_first:FALSE",
    ] {
        cmd.args(["-o", pref]);
    }
    cmd.args(["-d", "udp.port==8472,vxlan", "-d", "udp.port==8285,ip"]);
    let names: Vec<&str> = FIELDS.iter().map(|f| f.2).chain(VERDICT_FIELDS.iter().copied()).collect();
    for name in &names {
        cmd.args(["-e", name]);
    }
    let o = cmd.output().expect("run tshark");
    assert!(o.status.success(), "tshark failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| {
            names
                .iter()
                .zip(line.split('\t'))
                .filter(|(_, v)| !v.is_empty())
                .map(|(n, v)| ((*n).to_owned(), v.split(';').map(str::to_owned).collect()))
                .collect()
        })
        .collect()
}

/// tweed's JSON for each frame.
fn tweed_json(file: &Path) -> Vec<Value> {
    let o = tweed(&["pcap", "dissect", "--json", file.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A number as tshark prints it (decimal, `0x` hex, `True`/`False`), or as tweed's JSON has it.
fn number(text: &str) -> Option<u64> {
    match text {
        "True" | "true" => Some(1),
        "False" | "false" => Some(0),
        _ => text.strip_prefix("0x").map_or_else(|| text.parse().ok(), |hex| u64::from_str_radix(hex, 16).ok()),
    }
}

/// tweed's values of `key` over the layers named `layer`, outer to inner, as text.
fn tweed_values(frame: &Value, layer: &str, key: &str) -> Vec<String> {
    let layers = frame["decoded"]["layers"].as_array().cloned().unwrap_or_default();
    let mut out = vec![];
    for l in layers.iter().filter(|l| l["layer"] == layer) {
        match &l[key] {
            Value::Null => {}
            Value::Array(items) => out.extend(items.iter().map(ToString::to_string)),
            Value::String(s) => out.push(s.clone()),
            other => out.push(other.to_string()),
        }
    }
    out
}

/// The disagreements of one frame, each a line of text.
fn compare(
    number_: usize,
    name: &str,
    ours: &Value,
    theirs: &BTreeMap<String, Vec<String>>,
    fields: &mut usize,
) -> Vec<String> {
    let mut bad = vec![];
    for &(layer, key, field, kind) in FIELDS {
        let mine = tweed_values(ours, layer, key);
        let Some(shark) = theirs.get(field) else { continue };
        if mine.is_empty() {
            continue;
        }
        *fields += mine.len().min(shark.len());
        let same = mine.len() == shark.len()
            && mine.iter().zip(shark).all(|(a, b)| match kind {
                Kind::Num => number(a).is_some() && number(a) == number(b),
                Kind::Text => a == b,
            });
        if !same {
            bad.push(format!("frame {number_} ({name}): {field}: tweed {mine:?}, tshark {shark:?}"));
        }
    }
    // tshark's verdict "malformed": a malformed-packet exception, or an expert error in the malformed or the
    // protocol group (a bogus or lying length is a protocol error there).
    let groups = theirs.get("_ws.expert.group").cloned().unwrap_or_default();
    let severities = theirs.get("_ws.expert.severity").cloned().unwrap_or_default();
    let shark_malformed = theirs.contains_key("_ws.malformed")
        || groups
            .iter()
            .zip(&severities)
            .any(|(g, s)| matches!(number(g), Some(0x0700_0000 | 0x0900_0000)) && number(s) == Some(0x0080_0000));
    let shark_bad_checksum = FIELDS
        .iter()
        .filter(|f| f.1 == "checksum_status")
        .any(|f| theirs.get(f.2).is_some_and(|v| v.iter().any(|s| s == "0")));
    let (my_malformed, my_bad) = (ours["decoded"]["malformed"] == true, ours["decoded"]["bad_checksum"] == true);
    if (my_malformed, my_bad) != (shark_malformed, shark_bad_checksum) {
        bad.push(format!(
            "frame {number_} ({name}): malformed/bad checksum: tweed {my_malformed}/{my_bad}, tshark \
             {shark_malformed}/{shark_bad_checksum} (expert groups {groups:?}, severities {severities:?})"
        ));
    }
    bad
}

fn run_differential(file: &Path, names: &[&str]) -> (usize, usize) {
    let ours = tweed_json(file);
    let theirs = tshark_fields(file);
    assert_eq!(ours.len(), theirs.len(), "both read every frame");
    let mut fields = 0;
    let mut bad = vec![];
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        let name = names.get(i).copied().unwrap_or("kernel capture");
        bad.extend(compare(i + 1, name, o, t, &mut fields));
    }
    assert!(bad.is_empty(), "{} disagreements:\n{}", bad.len(), bad.join("\n"));
    (ours.len(), fields)
}

#[test]
fn tweed_and_tshark_agree_on_every_field_of_the_corpus() {
    if !have_tshark("tweed_and_tshark_agree_on_every_field_of_the_corpus") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("corpus.pcapng");
    let names = write_corpus(&path);
    let (frames, fields) = run_differential(&path, &names);
    assert_eq!(frames, names.len());
    eprintln!("corpus: {frames} frames, {fields} field values compared");
    assert!(fields > 800, "{fields}");
}

#[test]
fn tweed_and_tshark_agree_on_every_field_of_the_kernel_capture() {
    if !have_tshark("tweed_and_tshark_agree_on_every_field_of_the_kernel_capture") {
        return;
    }
    let capture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/kernel-flannel-vxlan.pcap");
    let (frames, fields) = run_differential(&capture, &[]);
    assert_eq!(frames, 40);
    eprintln!("kernel capture: {frames} frames, {fields} field values compared");
    assert!(fields > 2000, "{fields}");
}

#[test]
fn dissect_reads_the_pcapng_editcap_writes() {
    if !have_tshark("dissect_reads_the_pcapng_editcap_writes") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let ng = dir.path().join("k.pcapng");
    let capture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/kernel-flannel-vxlan.pcap");
    let o = Command::new("editcap").arg("-F").arg("pcapng").arg(&capture).arg(&ng).output().expect("run editcap");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&ng).expect("read")[..4], [0x0a, 0x0d, 0x0d, 0x0a]);
    let text = |p: &Path| tweed(&["pcap", "dissect", p.to_str().expect("utf-8")]);
    let (a, b) = (text(&capture), text(&ng));
    assert_eq!((a.status.code(), b.status.code()), (Some(0), Some(0)));
    assert_eq!(a.stdout.iter().filter(|&&c| c == b'\n').count(), 40);
    assert_eq!(a.stdout, b.stdout, "the same lines from pcap and pcapng");
}
