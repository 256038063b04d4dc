//! `tweed pcap replay`: every frame of a capture through one node's pipeline, what leaves it written to a pcap file,
//! and the node's counters printed: what a tweed node would have done with that traffic.
//!
//! - **The node** comes from a TOML file: the agent's (`tweed agent --config`, whose `[node]` table is the node;
//!   its pods are numbered 1, 2, … as the agent numbers them) or a bare [`NodeConfig`] (told apart by whether the
//!   file has a `[node]` table). A node without pod ports gets the one `--pod-port` names.
//! - **The ingress port** of each frame: with `--ingress auto` (the default) a frame is an underlay frame when its
//!   Ethernet destination or source is the node's `underlay.node_mac` (frames to the node, and the node's own
//!   frames seen on its wire), or when it is IPv4 UDP to the backend's port (`vxlan`/`udp`); every other frame
//!   comes from the pod on `--pod-port`. `--ingress underlay` or `--ingress pod` puts every frame on that side.
//! - **Time**: each frame is one round of a `tweed_io::Worker` (the node's one event loop, over in-memory ports)
//!   at its capture timestamp (never going back), so ARP retries and timeouts, bridge ageing and the ICMP rate
//!   limit run on the capture's clock.
//! - **Pods the node knows**: a capture of the underlay holds no pod ARP, so the node would ask for the MAC of
//!   every local pod and wait. `--pod IP[=MAC]` makes that pod ARP for its gateway on `--pod-port` before the
//!   capture (MAC `0a:58` + the IP by default, the CNI bridge plugin's convention); those frames and the node's
//!   replies are neither written nor counted.
//! - **Output**: frames for a pod port and for the underlay are written whole (Ethernet link type, the input's
//!   timestamps); a packet for the host's TUN (an IP packet without link layer) is written behind an Ethernet
//!   header with zero addresses; consumed and dropped packets are counted. Frames longer than a packet buffer are
//!   counted as skipped, never truncated.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::Deserialize;
use tweed_io::{DriverConfig, DriverStats, Medium, MemPort, Worker};
use tweed_overlay::{BackendConfig, Counters, DropReason, Flannel, Instant, Node, NodeConfig};
use tweed_packet::PortId;
use tweed_wire::arp;
use tweed_wire::ethernet::MacAddr;

use crate::pcap_write::{FileFormat, PcapWriter};
use crate::{Failure, output_error, read_input};

/// `tweed pcap replay`.
#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The node's configuration: the agent's TOML file (its `[node]` table) or a bare node TOML.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The pod port that frames from pods enter on (and `--pod` pods are on).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pod_port: u16,
    /// Which side the frames enter from: auto (by address, see above), underlay or pod.
    #[arg(long, value_enum, default_value_t = Ingress::Auto)]
    ingress: Ingress,
    /// A local pod the node knows before the capture starts, as IP or IP=MAC (repeatable).
    #[arg(long = "pod", value_name = "IP[=MAC]", value_parser = parse_pod)]
    pods: Vec<(Ipv4Addr, MacAddr)>,
    /// The capture to replay (pcap or pcapng, Ethernet frames).
    #[arg(value_name = "IN")]
    input: PathBuf,
    /// Where to write the frames that leave the node, one capture point per port the node sends them by.
    #[arg(value_name = "OUT")]
    output: PathBuf,
    /// OUT's format: pcapng, or classic pcap (one interface, microsecond timestamps).
    #[arg(long, value_enum, default_value_t = FileFormat::Pcapng)]
    format: FileFormat,
}

/// Where the frames of the capture enter the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Ingress {
    /// Underlay frames by their addresses and port, the rest from the pod port.
    Auto,
    /// Every frame from the underlay.
    Underlay,
    /// Every frame from the pod port.
    Pod,
}

/// Parses `IP` or `IP=MAC`.
fn parse_pod(s: &str) -> Result<(Ipv4Addr, MacAddr), String> {
    let (ip, mac) = s.split_once('=').map_or((s, None), |(ip, mac)| (ip, Some(mac)));
    let ip: Ipv4Addr = ip.parse().map_err(|_| format!("{ip:?} is not an IPv4 address (e.g. 10.244.2.2)"))?;
    let mac = match mac {
        Some(mac) => mac.parse().map_err(|_| format!("{mac:?} is not a MAC address (e.g. 0a:58:0a:f4:02:02)"))?,
        None => {
            let [a, b, c, d] = ip.octets();
            MacAddr::new(0x0a, 0x58, a, b, c, d)
        }
    };
    if !mac.is_unicast() || mac.is_zero() {
        return Err(format!("{mac} is not a unicast MAC address"));
    }
    Ok((ip, mac))
}

/// The agent's file, as far as replay needs it: the node and how many pods the agent would number.
#[derive(Deserialize)]
struct AgentFile {
    node: NodeConfig,
    #[serde(default)]
    pods: Vec<toml::Table>,
}

/// Reads the node's configuration from the text of `path`; the error names the file and the field.
fn read_config(path: &Path, pod_port: u16) -> Result<NodeConfig, Failure> {
    let name = path.display();
    let bytes = read_input(path)?;
    let text = String::from_utf8(bytes).map_err(|e| Failure::Input(format!("{name}: not UTF-8 text: {e}")))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| Failure::Input(format!("{name}: not a TOML file: {e}")))?;
    let mut config = if table.contains_key("node") {
        let file: AgentFile = toml::from_str(&text).map_err(|e| Failure::Input(format!("{name}: [node]: {e}")))?;
        let mut node = file.node;
        if node.pod_ports.is_empty() {
            let pods = u16::try_from(file.pods.len())
                .map_err(|_| Failure::Input(format!("{name}: pods: more than {} [[pods]]", u16::MAX)))?;
            node.pod_ports = (1..=pods).collect();
        }
        node
    } else {
        NodeConfig::from_toml_str(&text).map_err(|e| Failure::Input(format!("{name}: {e}")))?
    };
    if config.pod_ports.is_empty() {
        config.pod_ports.push(pod_port);
    } else if !config.pod_ports.contains(&pod_port) {
        return Err(Failure::Input(format!(
            "--pod-port {pod_port}: the node in {name} has pod ports {:?}; name one of them",
            config.pod_ports
        )));
    }
    config.validate().map_err(|e| Failure::Input(format!("{name}: {e}")))?;
    Ok(config)
}

/// Whether a frame is the underlay's by its addresses: to or from the node's MAC, or IPv4 UDP to `backend_port`.
fn is_underlay(frame: &[u8], node_mac: MacAddr, backend_port: Option<u16>) -> bool {
    let mac = |range: core::ops::Range<usize>| frame.get(range).and_then(MacAddr::from_bytes);
    if mac(0..6) == Some(node_mac) || mac(6..12) == Some(node_mac) {
        return true;
    }
    let Some(port) = backend_port else { return false };
    let (Some(&[0x08, 0x00]), Some(&vihl), Some(&proto)) = (frame.get(12..14), frame.get(14), frame.get(23)) else {
        return false;
    };
    let udp = 14 + usize::from(vihl & 0x0f) * 4;
    vihl >> 4 == 4 && proto == 17 && frame.get(udp + 2..udp + 4) == Some(&port.to_be_bytes()[..])
}

/// What came out of the node, by kind.
#[derive(Debug, Default)]
struct Tally {
    frames: u64,
    from_underlay: u64,
    from_pod: u64,
    skipped_too_long: u64,
    skipped_no_buffer: u64,
    to_pod: u64,
    to_underlay: u64,
    to_tun: u64,
    consumed: u64,
    dropped: u64,
    written: u64,
}

/// The replay: a node's worker, a MemPort on each of its ports.
struct Replay {
    worker: Worker<Flannel, MemPort>,
    /// The ports, in the order their outputs are written: pods and IP ports, the host's TUN, the underlay.
    ports: Vec<PortId>,
    /// The clock: the capture's timestamps, never going back.
    now: Instant,
    tally: Tally,
    /// The node's counters before the capture (after `--pod` priming): the summary counts from here.
    base: Counters,
    /// The worker's, likewise.
    base_stats: DriverStats,
}

impl Replay {
    fn new(config: NodeConfig) -> Result<Self, String> {
        let (underlay, host) = (PortId(config.underlay.port), config.host_port.map(PortId));
        let mut ports: Vec<PortId> = config.pod_ports.iter().chain(&config.ip_ports).map(|&p| PortId(p)).collect();
        ports.extend(host);
        ports.push(underlay);
        let node = Node::new(config).map_err(|e| e.to_string())?;
        let mut worker = Worker::new(node, DriverConfig::default()).map_err(|e| e.to_string())?;
        for &id in &ports {
            let medium = if id == underlay || !ports_ip(worker.node(), id) { Medium::Ethernet } else { Medium::Ip };
            worker.add_port(id, MemPort::new(format!("port{}", id.0), medium)).map_err(|e| e.to_string())?;
        }
        Ok(Self {
            worker,
            ports,
            now: Instant::ZERO,
            tally: Tally::default(),
            base: Counters::default(),
            base_stats: DriverStats::default(),
        })
    }

    /// Runs one frame through the node at `now` (or the last time, if earlier).
    fn push(&mut self, now: Instant, frame: &[u8], ingress: PortId) {
        self.now = self.now.max(now);
        let before = self.worker.stats();
        let Some(port) = self.worker.port_mut(ingress) else { return };
        port.inject(frame, None);
        self.worker.round(self.now);
        let after = self.worker.stats();
        self.tally.skipped_too_long +=
            after.rx_offload_dropped + after.rx_dropped - before.rx_offload_dropped - before.rx_dropped;
        // Not read: no free buffer.
        let left = self.worker.port_mut(ingress).map_or(0, MemPort::discard_input);
        self.tally.skipped_no_buffer += left as u64;
    }

    /// Makes each pod ARP for its gateway, so that the node learns its address, MAC and port; forgets the replies.
    fn prime(&mut self, now: Instant, pods: &[(Ipv4Addr, MacAddr)], port: PortId) {
        let gateway = self.worker.node().config().gateway_ip();
        for &(ip, mac) in pods {
            let mut frame = [0u8; 42];
            frame[..6].copy_from_slice(MacAddr::BROADCAST.as_bytes());
            frame[6..12].copy_from_slice(mac.as_bytes());
            frame[12..14].copy_from_slice(&[0x08, 0x06]);
            arp::Repr::request(mac, ip, gateway).emit(&mut arp::Packet::new_unchecked(&mut frame[14..]));
            self.push(now, &frame, port);
            for &id in &self.ports {
                if let Some(p) = self.worker.port_mut(id) {
                    p.drain_sent(|_, _| {});
                }
            }
        }
        self.tally = Tally::default();
        self.base = self.worker.node().counters().clone();
        self.base_stats = self.worker.stats();
    }

    /// Writes what the node sent on each port, counted by where it went.
    fn drain(&mut self, time_us: u64, pcap: &mut PcapWriter) -> io::Result<()> {
        let host = self.worker.node().config().host_port.map(PortId);
        let underlay = PortId(self.worker.node().config().underlay.port);
        let mut framed = Vec::new();
        for &id in &self.ports {
            let Some(port) = self.worker.port_mut(id) else { continue };
            while let Some((bytes, _)) = port.take_sent() {
                // The capture point each output is written on: the pod port it leaves by, the underlay, the TUN.
                let (frame, name, description) = if Some(id) == host {
                    self.tally.to_tun += 1;
                    framed.clear();
                    framed.extend_from_slice(&[0; 12]);
                    framed.extend_from_slice(&[0x08, 0x00]);
                    framed.extend_from_slice(&bytes);
                    let description = "the host's TUN (an Ethernet header with zero addresses added)";
                    (framed.as_slice(), "tun".to_owned(), description)
                } else if id == underlay {
                    self.tally.to_underlay += 1;
                    (bytes.as_slice(), "underlay".to_owned(), "the node's underlay")
                } else {
                    self.tally.to_pod += 1;
                    (bytes.as_slice(), format!("port{}", id.0), "a pod port of the node")
                };
                pcap.write(&name, description, time_us, frame)?;
                self.tally.written += 1;
                port.recycle(bytes);
            }
        }
        let s = self.worker.stats();
        (self.tally.consumed, self.tally.dropped) =
            (s.consumed - self.base_stats.consumed, s.dropped - self.base_stats.dropped);
        Ok(())
    }
}

/// Whether `id` is the node's host port or one of its IP ports (IP packets, no Ethernet).
fn ports_ip(node: &Node, id: PortId) -> bool {
    node.config().host_port == Some(id.0) || node.config().ip_ports.contains(&id.0)
}

/// Runs `tweed pcap replay`.
pub(crate) fn run(args: &ReplayArgs, out: &mut impl Write) -> Result<(), Failure> {
    let config = read_config(&args.config, args.pod_port)?;
    let node_mac = config.underlay.node_mac;
    let backend_port = match &config.backend {
        BackendConfig::Vxlan(v) => Some(v.port),
        BackendConfig::Udp(u) => Some(u.port),
        BackendConfig::HostGw => None,
    };
    let underlay = PortId(config.underlay.port);
    let pod = PortId(args.pod_port);
    let summary_head = format!(
        "node {} ({}, underlay {} {node_mac}), pod port {}",
        config.pod_subnet.map_or_else(|| "without pods".to_owned(), |s| s.to_string()),
        format!("{:?}", config.backend.kind()).to_lowercase(),
        config.underlay.node_ip,
        args.pod_port
    );
    let mut replay = Replay::new(config).map_err(|e| Failure::Input(format!("{}: {e}", args.config.display())))?;

    let file = read_input(&args.input)?;
    let in_name = args.input.display();
    let reader = tweed_pcap::Reader::new(&file).map_err(|e| Failure::Input(format!("{in_name}: {e}")))?;
    let out_name = args.output.display();
    let out_file = std::fs::File::create(&args.output).map_err(|e| {
        let message = format!("cannot create {out_name}: {e}");
        match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::IsADirectory => {
                Failure::Input(message)
            }
            _ => Failure::Runtime(message),
        }
    })?;
    let write_error = |e: io::Error| Failure::Runtime(format!("cannot write {out_name}: {e}"));
    let mut pcap = PcapWriter::new(Box::new(io::BufWriter::new(out_file)), args.format).map_err(write_error)?;

    let mut primed = false;
    for record in reader {
        let record = record.map_err(|e| Failure::Input(format!("{in_name}: {e}")))?;
        if record.link_type != tweed_pcap::LinkType::ETHERNET {
            let what = format!("{in_name}: frame {} is {}, not Ethernet", record.number, record.link_type);
            return Err(Failure::Input(what));
        }
        let now = Instant::from_nanos(record.time_ns);
        if !primed {
            replay.prime(now, &args.pods, pod);
            primed = true;
        }
        let from_underlay = match args.ingress {
            Ingress::Underlay => true,
            Ingress::Pod => false,
            Ingress::Auto => is_underlay(record.data, node_mac, backend_port),
        };
        replay.tally.frames += 1;
        if from_underlay {
            replay.tally.from_underlay += 1;
        } else {
            replay.tally.from_pod += 1;
        }
        replay.push(now, record.data, if from_underlay { underlay } else { pod });
        replay.drain(record.time_ns / 1000, &mut pcap).map_err(write_error)?;
    }
    pcap.finish().map_err(write_error)?;

    let report = summary(&replay, &summary_head, &args.input, &args.output);
    out.write_all(report.as_bytes()).and_then(|()| out.flush()).or_else(|e| output_error(&e).map_or(Ok(()), Err))
}

/// The text `tweed pcap replay` prints.
fn summary(replay: &Replay, head: &str, input: &Path, output: &Path) -> String {
    let t = &replay.tally;
    let (c, b) = (replay.worker.node().counters(), &replay.base);
    let mut s = String::new();
    let _ = writeln!(s, "replayed {} through {head}", input.display());
    let _ =
        writeln!(s, "in    {:>6} frames: {} from the underlay, {} from pods", t.frames, t.from_underlay, t.from_pod);
    if t.skipped_too_long + t.skipped_no_buffer > 0 {
        let _ = writeln!(
            s,
            "skip  {:>6} frames: {} longer than a packet buffer, {} with no free buffer",
            t.skipped_too_long + t.skipped_no_buffer,
            t.skipped_too_long,
            t.skipped_no_buffer
        );
    }
    let _ = writeln!(
        s,
        "out   {:>6} frames: {} to pods, {} to the underlay, {} to the host (tun) -> {}",
        t.written,
        t.to_pod,
        t.to_underlay,
        t.to_tun,
        output.display()
    );
    let _ = writeln!(
        s,
        "node  decapsulated {}, encapsulated {}, switched {}, arp requests {}, consumed {}",
        c.from_peer - b.from_peer,
        c.to_peer - b.to_peer,
        c.switched - b.switched,
        c.arp_requests - b.arp_requests,
        t.consumed
    );
    let _ = writeln!(s, "drops {:>6}", t.dropped);
    for reason in DropReason::ALL {
        let n = c.drop_count(*reason) - b.drop_count(*reason);
        if n > 0 {
            let _ = writeln!(s, "  {:<24}{n:>6}", reason.as_str());
        }
    }
    let pending = replay.worker.node().arp_pending();
    if pending > 0 {
        let _ = writeln!(
            s,
            "waiting for ARP at the end: {pending} packets (name the pods with --pod IP[=MAC] to deliver them)"
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_argument_parses_ip_and_optional_mac() {
        assert_eq!(
            parse_pod("10.244.2.2"),
            Ok((Ipv4Addr::new(10, 244, 2, 2), MacAddr::new(0x0a, 0x58, 10, 244, 2, 2)))
        );
        assert_eq!(
            parse_pod("10.244.2.3=02:00:00:00:aa:01"),
            Ok((Ipv4Addr::new(10, 244, 2, 3), MacAddr::new(2, 0, 0, 0, 0xaa, 1)))
        );
        assert!(parse_pod("10.244.2").is_err_and(|e| e.contains("not an IPv4 address")));
        assert!(parse_pod("10.244.2.2=zz").is_err_and(|e| e.contains("not a MAC address")));
        assert!(parse_pod("10.244.2.2=ff:ff:ff:ff:ff:ff").is_err_and(|e| e.contains("unicast")));
    }

    #[test]
    fn underlay_frames_by_mac_or_port() {
        let node_mac = MacAddr::new(2, 0, 0, 0, 1, 2);
        // IPv4 UDP to 8472 from and to other MACs: the backend's port makes it underlay.
        let mut f = [0u8; 42];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = 17;
        f[36..38].copy_from_slice(&8472u16.to_be_bytes());
        assert!(is_underlay(&f, node_mac, Some(8472)));
        assert!(!is_underlay(&f, node_mac, Some(4789)));
        assert!(!is_underlay(&f, node_mac, None));
        let udp = f;
        // TCP to the same port is not.
        f[23] = 6;
        assert!(!is_underlay(&f, node_mac, Some(8472)));
        // To or from the node's MAC is, whatever it carries.
        f[..6].copy_from_slice(node_mac.as_bytes());
        assert!(is_underlay(&f, node_mac, None));
        f[..6].fill(0);
        f[6..12].copy_from_slice(node_mac.as_bytes());
        assert!(is_underlay(&f, node_mac, None));
        // Every truncation of the UDP frame before the end of its destination port is a pod frame, never a panic.
        for len in 0..38 {
            assert!(!is_underlay(&udp[..len], node_mac, Some(8472)), "{len}");
        }
    }
}
