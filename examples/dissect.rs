//! Prints every frame of a capture through all its layers, as tcpdump's one-liners: Ethernet and VLAN tags, ARP,
//! IPv4, ICMP (with the header an error quotes), UDP, TCP, VXLAN and flannel's udp backend, checksums verified.
//!
//! ```text
//! cargo run --release --example dissect -- [FILE.pcap|FILE.pcapng]
//! ```
//!
//! Without an argument it reads the kernel flannel capture shipped in `tests/data/`. Reads pcap and pcapng through
//! `tweed_pcap`; frames of a link type other than Ethernet are named and skipped.

use std::process::ExitCode;

use tweed::wire::dissect::{Decoders, decode_captured};
use tweed_pcap::{LinkType, Reader};

const DEFAULT_CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kernel-flannel-vxlan.pcap");

/// The capture's lines, one per frame.
pub(crate) fn run(path: &str) -> Result<Vec<String>, String> {
    let file = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let reader = Reader::new(&file).map_err(|e| format!("{path}: {e}"))?;
    let mut lines = Vec::new();
    for record in reader {
        let record = record.map_err(|e| format!("{path}: {e}"))?;
        let (n, len) = (record.number, record.data.len());
        if record.link_type == LinkType::ETHERNET {
            let decoded = decode_captured(record.data, record.orig_len as usize, &Decoders::DEFAULT);
            lines.push(format!("{n:>5} {len:>5}B  {decoded}"));
        } else {
            lines.push(format!("{n:>5} {len:>5}B  ({} not decoded)", record.link_type));
        }
    }
    Ok(lines)
}

fn main() -> ExitCode {
    let path = std::env::args().nth(1).unwrap_or_else(|| DEFAULT_CAPTURE.to_owned());
    match run(&path) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
