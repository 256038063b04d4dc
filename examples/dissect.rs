//! Prints every frame of a pcap file through all its layers, VXLAN included.
//!
//! ```text
//! cargo run --release --example dissect -- [FILE.pcap]
//! ```
//!
//! Without an argument it reads the kernel flannel capture shipped in `tests/data/`. Only classic pcap files with
//! Ethernet link type are read (the format `tcpdump -w` writes).

use std::fmt::Write as _;
use std::process::ExitCode;

use tweed::wire::dissect::{Stop, dissect};

const DEFAULT_CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kernel-flannel-vxlan.pcap");

/// Splits a classic pcap file into its frames.
fn frames(file: &[u8]) -> Result<Vec<&[u8]>, String> {
    let header = file.get(..24).ok_or("not a pcap file: shorter than its 24-byte header")?;
    let magic = [header[0], header[1], header[2], header[3]];
    let read_u32: fn([u8; 4]) -> u32 = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => u32::from_le_bytes,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => u32::from_be_bytes,
        _ => return Err(format!("not a classic pcap file (magic {magic:02x?}); pcapng is not read by this example")),
    };
    let link_type = read_u32([header[20], header[21], header[22], header[23]]);
    if link_type != 1 {
        return Err(format!("link type {link_type} is not Ethernet (1)"));
    }
    let mut out = Vec::new();
    let mut rest = &file[24..];
    while !rest.is_empty() {
        let record = rest.get(..16).ok_or("truncated record header at the end of the file")?;
        let len = read_u32([record[8], record[9], record[10], record[11]]) as usize;
        let frame =
            rest.get(16..16 + len).ok_or(format!("record {} says {len} bytes, file ends first", out.len() + 1))?;
        out.push(frame);
        rest = &rest[16 + len..];
    }
    Ok(out)
}

/// One line for one frame: each layer found, then why the walk stopped if it did not reach the inner transport.
fn describe(frame: &[u8]) -> String {
    let d = dissect(frame);
    let mut line = String::new();
    if let Some(eth) = d.outer_ethernet() {
        let _ = write!(line, "{} > {}", eth.src_addr(), eth.dst_addr());
    }
    if let Some(ip) = d.outer_ipv4() {
        let _ = write!(line, " | {} > {} ttl {}", ip.src_addr(), ip.dst_addr(), ip.ttl());
    }
    if let Some(udp) = d.outer_udp() {
        let _ = write!(line, " | udp {} > {}", udp.src_port(), udp.dst_port());
    }
    if let Some(vx) = d.vxlan() {
        let _ = write!(line, " | vxlan vni {}", vx.vni());
    }
    if let Some(eth) = d.inner_ethernet() {
        let _ = write!(line, " | {} > {}", eth.src_addr(), eth.dst_addr());
    }
    if let Some(ip) = d.inner_ipv4() {
        let _ = write!(line, " | {} > {} ttl {} {}", ip.src_addr(), ip.dst_addr(), ip.ttl(), ip.protocol());
    }
    if let Some(icmp) = d.inner_icmp() {
        let _ = write!(line, " | icmp type {} code {}", icmp.msg_type().0, icmp.msg_code());
    }
    if let Some(udp) = d.inner_udp() {
        let _ = write!(line, " | udp {} > {}", udp.src_port(), udp.dst_port());
    }
    match d.stop() {
        Stop::Complete => {}
        Stop::Absent(stage) => {
            let _ = write!(line, " | (no {stage})");
        }
        Stop::Invalid(stage, error) => {
            let _ = write!(line, " | {stage} invalid: {error}");
        }
    }
    line
}

fn main() -> ExitCode {
    let path = std::env::args().nth(1).unwrap_or_else(|| DEFAULT_CAPTURE.to_owned());
    let file = match std::fs::read(&path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("error: cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let frames = match frames(&file) {
        Ok(frames) => frames,
        Err(e) => {
            eprintln!("error: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    for (i, frame) in frames.iter().enumerate() {
        println!("{:>5} {:>5}B  {}", i + 1, frame.len(), describe(frame));
    }
    ExitCode::SUCCESS
}
