//! `tweed`: the command-line face of the tweed overlay dataplane.
//!
//! Each subcommand is a thin layer over a library crate: `tweed cidr` prints what
//! `tweed_control::cidr::report` computes, `tweed pcap dissect` runs `tweed_wire::dissect::decode` over each frame
//! of a capture that `tweed_pcap` reads. Subcommands return a [`Failure`] rather than exiting, so `main` is the one place that maps outcomes to
//! exit codes: 0 success, 1 runtime failure, 2 bad usage or bad input (clap's own usage errors are 2 as well).

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tweed_control::cidr::{Ipv4Cidr, report, report_json};

mod agent;
mod bench;
mod demo;
mod pcap;
mod pcap_write;
mod replay;

/// The exit code table, shown at the end of every `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  runtime failure (an I/O error while reading input or writing output)
  2  bad usage or bad input (an invalid argument, a missing, unreadable or malformed file)";

/// A userspace overlay dataplane: flannel-compatible VXLAN, a learning bridge and an LPM route table.
#[derive(Debug, Parser)]
#[command(name = "tweed", version, after_help = EXIT_CODES, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The top-level subcommands; each carries its own arguments struct, so a new one is one variant and one module.
#[derive(Debug, Subcommand)]
enum Command {
    /// Print the facts of an IPv4 CIDR block: network, broadcast, netmask, usable hosts.
    #[command(after_help = EXIT_CODES)]
    Cidr(CidrArgs),
    /// Read and replay capture files (pcap and pcapng).
    #[command(subcommand, after_help = EXIT_CODES)]
    Pcap(PcapCommand),
    /// Run a node on real devices: pod TAPs, the underlay's UDP socket or interface, from a TOML config (root).
    #[command(after_help = EXIT_CODES)]
    Agent(agent::AgentArgs),
    /// Run a cluster in this process (no root): smoltcp pods ping and send TCP across tweed nodes, per backend.
    ///
    /// Three nodes (10.244.{1,2,3}.0/24, underlay 192.168.0.0/24) with two pods each by default. For each backend
    /// it checks ARP, pings and a 1 MiB TCP transfer, walks one packet hop by hop, and prints a table of the
    /// traffic; a failed step exits with code 1 and says which.
    #[command(after_help = EXIT_CODES)]
    Demo(demo::DemoArgs),
    /// Measure the pipeline in this process: encapsulation, decapsulation, switching and route lookups.
    ///
    /// Each workload runs for `--seconds` in batches of `--batch` packets, with a progress bar on a terminal, then
    /// a table of packets, millions of packets per second and nanoseconds per packet. A quick look on one's own
    /// machine (build with --release); the project's figures come from its criterion benches.
    #[command(after_help = EXIT_CODES)]
    Bench(bench::BenchArgs),
}

/// `tweed cidr`.
#[derive(Debug, Args)]
struct CidrArgs {
    /// An IPv4 address with a prefix length, host bits allowed (e.g. 192.168.20.125/27).
    #[arg(value_name = "CIDR", value_parser = parse_cidr, allow_hyphen_values = true)]
    cidr: Ipv4Cidr,
    /// Print the facts as a JSON object instead of aligned text.
    #[arg(long)]
    json: bool,
}

/// `tweed pcap …`.
#[derive(Debug, Subcommand)]
enum PcapCommand {
    /// Print one line (or JSON object) per frame through every layer, as tcpdump's one-liners.
    ///
    /// Reads pcap (either byte order, microsecond or nanosecond timestamps) and pcapng (several interfaces,
    /// Ethernet or raw IP). Decodes Ethernet and 802.1Q tags, ARP, IPv4 (options named), ICMP (with the header an
    /// error quotes), UDP, TCP, VXLAN and the frame inside it, and flannel's udp backend with its IPv4 packet.
    /// Every checksum is verified; a bad one, a header cut short or a length that lies is flagged at the end of
    /// the line in brackets, naming the layer and the field.
    #[command(after_help = EXIT_CODES)]
    Dissect(pcap::DissectArgs),
    /// Run every frame of a capture through a node's pipeline; write what leaves it, print the drop counters.
    ///
    /// The node comes from `--config`: the agent's file (its `[node]` table) or a bare node TOML. Underlay
    /// frames (to or from the node's underlay MAC, or UDP to the backend's port) enter on the underlay, the rest
    /// on `--pod-port`; each frame is processed at its capture timestamp. Frames to pods and to the underlay are
    /// written whole to OUT; packets for the host's TUN get an Ethernet header with zero addresses.
    #[command(after_help = EXIT_CODES)]
    Replay(replay::ReplayArgs),
}

/// Why a subcommand did not succeed, which decides the exit code.
#[derive(Debug)]
enum Failure {
    /// Bad usage or bad input: exit code 2.
    Input(String),
    /// The input was fine but the work failed (an I/O error): exit code 1.
    Runtime(String),
}

impl Failure {
    const fn exit_code(&self) -> u8 {
        match self {
            Self::Input(_) => 2,
            Self::Runtime(_) => 1,
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::Input(m) | Self::Runtime(m) => m,
        }
    }
}

/// A failed write to the output. A closed pipe (`tweed pcap dissect big.pcap | head`) is not worth a message.
fn output_error(e: &io::Error) -> Option<Failure> {
    (e.kind() != io::ErrorKind::BrokenPipe).then(|| Failure::Runtime(format!("cannot write output: {e}")))
}

/// Parses the `<CIDR>` argument; the message says what a valid one looks like.
fn parse_cidr(s: &str) -> Result<Ipv4Cidr, String> {
    s.parse().map_err(|e| format!("{e} (a valid CIDR looks like 192.168.20.125/27)"))
}

fn run_cidr(args: &CidrArgs, out: &mut impl Write) -> io::Result<()> {
    if args.json {
        let text = serde_json::to_string_pretty(&report_json(&args.cidr)).map_err(io::Error::other)?;
        writeln!(out, "{text}")?;
    } else {
        out.write_all(report(&args.cidr).as_bytes())?;
    }
    out.flush()
}

/// Reads a whole input file; a file that is missing, unreadable or a directory is bad input, anything else (a disk
/// error) a runtime failure.
fn read_input(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| {
        let message = format!("cannot read {}: {e}", path.display());
        match e.kind() {
            io::ErrorKind::NotFound
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::IsADirectory
            | io::ErrorKind::InvalidInput
            | io::ErrorKind::InvalidData => Failure::Input(message),
            _ => Failure::Runtime(message),
        }
    })
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match &cli.command {
        Command::Cidr(args) => run_cidr(args, &mut out).or_else(|e| output_error(&e).map_or(Ok(()), Err)),
        Command::Pcap(PcapCommand::Dissect(args)) => pcap::run(args, &mut out),
        Command::Pcap(PcapCommand::Replay(args)) => replay::run(args, &mut out),
        Command::Agent(args) => agent::run(args),
        Command::Demo(args) => demo::run(args, &mut out),
        Command::Bench(args) => bench::run(args, &mut out),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message());
            ExitCode::from(failure.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cidr_parse_error_says_what_valid_looks_like() {
        let e = parse_cidr("10.0.0.0/33").expect_err("prefix too long");
        assert!(e.contains("\"33\"") && e.contains("192.168.20.125/27"), "{e}");
    }
}
