//! `tweed pcap dissect`: every frame of a pcap or pcapng capture through `tweed_wire::dissect::decode`, one line
//! or one JSON object per frame.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;
use tweed_pcap::{LinkType, Reader, Record};
use tweed_wire::dissect::{Decoded, Decoders, decode_captured, decode_ipv4};

use crate::{Failure, output_error, read_input};

/// `tweed pcap dissect`.
#[derive(Debug, Args)]
pub(crate) struct DissectArgs {
    /// The capture file to read (pcap or pcapng).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Print one JSON object per frame (every field of every layer, the problems found) instead of a line.
    #[arg(long)]
    json: bool,
    /// Decode a UDP port as a protocol: PORT=vxlan, PORT=flannel-udp (or PORT=ip) or PORT=data; repeatable.
    /// The defaults are 4789=vxlan, 8472=vxlan and 8285=flannel-udp.
    #[arg(long = "decode", value_name = "PORT=PROTO", value_parser = parse_mapping)]
    decode: Vec<(u16, tweed_wire::dissect::PortDecoder)>,
}

/// Parses one `--decode` mapping.
fn parse_mapping(s: &str) -> Result<(u16, tweed_wire::dissect::PortDecoder), String> {
    let mut one = Decoders::NONE;
    one.apply(s).map_err(|e| format!("{e} (e.g. --decode 4789=vxlan)"))?;
    let port = s.split_once('=').and_then(|(p, _)| p.trim().parse().ok()).unwrap_or(0);
    one.get(port).map(|d| (port, d)).ok_or_else(|| "expected PORT=PROTO".to_owned())
}

/// The decoders `args` ask for: the defaults, then each `--decode` in order.
fn decoders(args: &DissectArgs) -> Result<Decoders, Failure> {
    let mut d = Decoders::DEFAULT;
    for &(port, decoder) in &args.decode {
        d.set(port, decoder).map_err(|e| Failure::Input(format!("--decode: {e}")))?;
    }
    Ok(d)
}

/// Decodes one record by its link type; `None` for a link type the dissector does not read.
pub(crate) fn decode_record<'a>(record: &Record<'a>, decoders: &Decoders) -> Option<Decoded<'a>> {
    let wire = record.orig_len as usize;
    match record.link_type {
        LinkType::ETHERNET => Some(decode_captured(record.data, wire, decoders)),
        LinkType::RAW => Some(decode_ipv4(record.data, wire, decoders)),
        _ => None,
    }
}

fn write_text(out: &mut dyn Write, record: &Record<'_>, decoded: Option<&Decoded<'_>>) -> io::Result<()> {
    let len = record.data.len();
    write!(out, "{:>5} {len:>5}B", record.number)?;
    if u64::from(record.orig_len) > len as u64 {
        // Snapped: say how long the frame was on the wire.
        write!(out, " of {}", record.orig_len)?;
    }
    match decoded {
        Some(d) => writeln!(out, "  {d}"),
        None => writeln!(out, "  ({} not decoded)", record.link_type),
    }
}

fn write_json(out: &mut dyn Write, record: &Record<'_>, decoded: Option<&Decoded<'_>>) -> io::Result<()> {
    write!(
        out,
        "{{\"frame\":{},\"interface\":{},\"link_type\":{},\"time_ns\":{},\"caplen\":{},\"len\":{}",
        record.number,
        record.interface,
        record.link_type.0,
        record.time_ns,
        record.data.len(),
        record.orig_len
    )?;
    if let Some(comment) = record.comment {
        write!(out, ",\"comment\":{}", serde_json::Value::from(comment))?;
    }
    match decoded {
        Some(d) => writeln!(out, ",\"decoded\":{}}}", d.json()),
        None => writeln!(out, ",\"decoded\":null}}"),
    }
}

/// Runs `tweed pcap dissect`.
pub(crate) fn run(args: &DissectArgs, out: &mut impl Write) -> Result<(), Failure> {
    let decoders = decoders(args)?;
    let file = read_input(&args.file)?;
    let name = args.file.display();
    let reader = Reader::new(&file).map_err(|e| Failure::Input(format!("{name}: {e}")))?;
    for record in reader {
        // The frames before a bad record are printed; the error comes after them, as tcpdump does.
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let _ = out.flush();
                return Err(Failure::Input(format!("{name}: {e}")));
            }
        };
        let decoded = decode_record(&record, &decoders);
        let written = if args.json {
            write_json(out, &record, decoded.as_ref())
        } else {
            write_text(out, &record, decoded.as_ref())
        };
        if let Err(e) = written {
            return output_error(&e).map_or(Ok(()), Err);
        }
    }
    out.flush().or_else(|e| output_error(&e).map_or(Ok(()), Err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_mappings_parse_or_say_what_is_expected() {
        use tweed_wire::dissect::PortDecoder;
        assert_eq!(parse_mapping("4789=vxlan"), Ok((4789, PortDecoder::Vxlan)));
        assert_eq!(parse_mapping("8285=ip"), Ok((8285, PortDecoder::FlannelUdp)));
        assert_eq!(parse_mapping("8472=data"), Ok((8472, PortDecoder::Data)));
        assert_eq!(
            parse_mapping("4789").unwrap_err(),
            "expected PORT=DECODER, e.g. 4789=vxlan (e.g. --decode 4789=vxlan)"
        );
        assert!(parse_mapping("70000=vxlan").unwrap_err().contains("not a number from 0 to 65535"));
        assert!(parse_mapping("1=gre").unwrap_err().contains("unknown decoder"));
    }
}
