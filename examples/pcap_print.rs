//! Parses a pcap file and prints each frame as a tree of its layers, checksums verified, then the inner flows.
//!
//! ```text
//! cargo run --example pcap_print -- [FILE.pcap|FILE.pcapng]
//! ```
//!
//! Without an argument it reads the kernel flannel capture in `tests/data/`. Where the `dissect` example prints
//! one line per frame, this one walks the views `tweed::wire::dissect` hands out: the time of each frame, every
//! layer's fields on its own line, whether the IPv4 and UDP checksums hold, and at the end how many frames each
//! inner flow (source, destination, protocol) had. The file is read by `tweed_pcap` (pcap or pcapng).

use std::collections::BTreeMap;
use std::error::Error;

use tweed::wire::dissect::{Config, Dissection, Stop, dissect_with};

const DEFAULT_CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kernel-flannel-vxlan.pcap");

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
    let records = tweed_pcap::Reader::new(&file)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| format!("{path}: {e}"))?;
    let start = records.first().map_or(0, |r| r.time_ns);
    let config = Config { verify_checksums: true, ..Config::DEFAULT };
    let mut flows = BTreeMap::new();
    for record in &records {
        let (t, frame) = (record.time_ns.saturating_sub(start) / 1000, record.data);
        println!("frame {}  +{}.{:06} s  {} bytes", record.number, t / 1_000_000, t % 1_000_000, frame.len());
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
