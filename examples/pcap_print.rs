//! Parses a pcap file and prints each frame as a tree of its layers, checksums verified, then the inner flows.
//!
//! ```text
//! cargo run --example pcap_print -- [FILE.pcap]
//! ```
//!
//! Without an argument it reads the kernel flannel capture in `tests/data/`. Where the `dissect` example prints
//! one line per frame, this one walks the views `tweed::wire::dissect` hands out: the time of each frame, every
//! layer's fields on its own line, whether the IPv4 and UDP checksums hold, and at the end how many frames each
//! inner flow (source, destination, protocol) had. The pcap reader is a dozen lines inline: classic pcap,
//! little-endian or big-endian, microsecond timestamps, Ethernet.

use std::collections::BTreeMap;
use std::error::Error;

use tweed::wire::dissect::{Config, Dissection, Stop, dissect_with};

const DEFAULT_CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kernel-flannel-vxlan.pcap");

/// One record: seconds, microseconds, the frame.
type Record<'a> = (u32, u32, &'a [u8]);

/// The records of a classic pcap file.
fn records(file: &[u8]) -> Result<Vec<Record<'_>>, String> {
    let u32_at = |le: bool, b: &[u8], at: usize| -> Option<u32> {
        let b: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    };
    let le = match file.get(..4) {
        Some([0xd4, 0xc3, 0xb2, 0xa1]) => true,
        Some([0xa1, 0xb2, 0xc3, 0xd4]) => false,
        _ => return Err("not a classic microsecond pcap file".into()),
    };
    if u32_at(le, file, 20).map(|l| l & 0xffff) != Some(1) {
        return Err("the link type is not Ethernet".into());
    }
    let (mut out, mut at) = (vec![], 24);
    while at < file.len() {
        let field = |i: usize| u32_at(le, file, at + 4 * i).ok_or(format!("record {} truncated", out.len() + 1));
        let (secs, micros, len) = (field(0)?, field(1)?, field(2)? as usize);
        let data = file.get(at + 16..at + 16 + len).ok_or(format!("record {} truncated", out.len() + 1))?;
        out.push((secs, micros, data));
        at += 16 + len;
    }
    Ok(out)
}

/// The frame's layers, one per line.
fn tree(d: &Dissection<'_>) -> Vec<String> {
    let mut lines = vec![];
    if let Some(e) = d.outer_ethernet() {
        lines.push(format!("ethernet    {} > {}  type {:04x}", e.src_addr(), e.dst_addr(), e.ethertype().0));
    }
    for (name, ip) in [("ipv4", d.outer_ipv4()), ("  inner ipv4", d.inner_ipv4())] {
        if let Some(ip) = ip {
            let ok = if ip.verify_checksum() { "ok" } else { "BAD" };
            let (src, dst, ttl, proto) = (ip.src_addr(), ip.dst_addr(), ip.ttl(), ip.protocol());
            lines.push(format!("{name:<10}  {src} > {dst}  ttl {ttl}  {proto}  checksum {ok}"));
        }
        if name == "ipv4" {
            if let Some(u) = d.outer_udp() {
                // With `verify_checksums`, a UDP view is only handed out when a non-zero checksum holds.
                let sum = if u.checksum() == 0 { "none".to_owned() } else { format!("{:#06x} ok", u.checksum()) };
                lines.push(format!(
                    "udp         {} > {}  length {}  checksum {sum}",
                    u.src_port(),
                    u.dst_port(),
                    u.len()
                ));
            }
            if let Some(v) = d.vxlan() {
                lines.push(format!("vxlan       vni {}", v.vni().get()));
            }
            if let Some(e) = d.inner_ethernet() {
                lines.push(format!("  inner ethernet  {} > {}", e.src_addr(), e.dst_addr()));
            }
        }
    }
    if let Some(i) = d.inner_icmp() {
        lines.push(format!("  inner icmp  {} seq {}", i.msg_type(), i.echo_seq_no()));
    }
    if let Some(u) = d.inner_udp() {
        lines.push(format!("  inner udp   {} > {}", u.src_port(), u.dst_port()));
    }
    match d.stop() {
        Stop::Complete => {}
        Stop::Absent(stage) => lines.push(format!("(no {stage})")),
        Stop::Invalid(stage, e) => lines.push(format!("(invalid {stage}: {e})")),
    }
    lines
}

/// Prints the file's frames; returns the number of frames of each inner flow.
pub(crate) fn run(path: &str) -> Result<BTreeMap<String, usize>, Box<dyn Error>> {
    let file = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let records = records(&file).map_err(|e| format!("{path}: {e}"))?;
    let start = records.first().map_or(0, |&(s, us, _)| u64::from(s) * 1_000_000 + u64::from(us));
    let config = Config { verify_checksums: true, ..Config::DEFAULT };
    let mut flows = BTreeMap::new();
    for (i, &(secs, micros, frame)) in records.iter().enumerate() {
        let t = (u64::from(secs) * 1_000_000 + u64::from(micros)).saturating_sub(start);
        println!("frame {}  +{}.{:06} s  {} bytes", i + 1, t / 1_000_000, t % 1_000_000, frame.len());
        let d = dissect_with(frame, &config);
        for line in tree(&d) {
            println!("  {line}");
        }
        if let Some(ip) = d.inner_ipv4() {
            *flows.entry(format!("{} > {} {}", ip.src_addr(), ip.dst_addr(), ip.protocol())).or_insert(0) += 1;
        }
    }
    println!("inner flows:");
    for (flow, n) in &flows {
        println!("  {n:>5}  {flow}");
    }
    Ok(flows)
}

fn main() -> Result<(), Box<dyn Error>> {
    run(&std::env::args().nth(1).unwrap_or_else(|| DEFAULT_CAPTURE.to_owned()))?;
    Ok(())
}
