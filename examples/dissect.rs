//! Prints every frame of a pcap file through all its layers, VXLAN included.
//!
//! ```text
//! cargo run --release --example dissect -- [FILE.pcap]
//! ```
//!
//! Without an argument it reads the kernel flannel capture shipped in `tests/data/`. Only classic pcap files with
//! Ethernet link type are read (the format `tcpdump -w` writes).

use std::process::ExitCode;

use tweed::wire::dissect::dissect;

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
        println!("{:>5} {:>5}B  {}", i + 1, frame.len(), dissect(frame));
    }
    ExitCode::SUCCESS
}
