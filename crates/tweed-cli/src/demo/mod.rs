//! `tweed demo`: a cluster in one process, no root and no devices. Nodes are tweed pipelines joined by an
//! in-memory underlay; pods are real userspace TCP/IP stacks (smoltcp); time is simulated, so a run is
//! deterministic and takes a moment.
//!
//! For each backend the demo checks, and prints, that a pod resolves its gateway by ARP, that pings cross the
//! overlay (and stay on the bridge between pods of one node), and that a TCP transfer arrives intact; then it
//! walks one echo request hop by hop, and ends with a table of what crossed the links. Any failed step fails the
//! demo (exit code 1) with a message naming the backend and the step.

mod pod;
mod report;
mod walk;
mod world;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use tweed_overlay::BackendKind;
use tweed_wire::arp;

use crate::Failure;
use crate::pcap_write::{FileFormat, PcapWriter};
use report::Row;
use walk::kind_name;
use world::{Link, World, gateway_ip, pod_ip};

/// How many bytes the TCP transfer carries.
const TCP_BYTES: usize = 1 << 20;
/// The TCP port the receiving pod listens on (iperf3's).
const TCP_PORT: u16 = 5201;
/// The sending pod's TCP port.
const TCP_CLIENT_PORT: u16 = 49_152;
/// Simulated time a ping may take before the demo gives up, in microseconds (per ping of a round).
const PING_LIMIT_US: u64 = 5_000_000;
/// Simulated time the TCP transfer may take, in microseconds.
const TCP_LIMIT_US: u64 = 60_000_000;

/// `tweed demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// The backend to run, or all three in turn.
    #[arg(long, value_enum, default_value_t = BackendChoice::All)]
    backend: BackendChoice,
    /// How many nodes (2 to 8); node i owns 10.244.i.0/24 and is 192.168.0.i on the underlay.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=8))]
    nodes: u8,
    /// How many pods each node has (1 to 16); pod p of node i is 10.244.i.(p+1).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=16))]
    pods: u8,
    /// Write every frame on every link (pod eth0s and the underlay) to this capture file, one pcapng interface per
    /// capture point (node1-pod1, node1-underlay, ...). tshark decodes flannel's ports with
    /// `-d udp.port==8472,vxlan -d udp.port==8285,ip`.
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// The capture file's format: pcapng, or classic pcap (one interface, microsecond timestamps).
    #[arg(long, value_enum, default_value_t = FileFormat::Pcapng, requires = "pcap")]
    format: FileFormat,
}

/// `--backend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    /// flannel's vxlan: Ethernet in UDP port 8472, VNI 1.
    Vxlan,
    /// flannel's udp: IP in UDP port 8285.
    Udp,
    /// flannel's host-gw: routed to the peer node, no encapsulation.
    HostGw,
    /// vxlan, udp and host-gw in turn.
    All,
}

impl BackendChoice {
    fn kinds(self) -> &'static [BackendKind] {
        match self {
            Self::Vxlan => &[BackendKind::Vxlan],
            Self::Udp => &[BackendKind::Udp],
            Self::HostGw => &[BackendKind::HostGw],
            Self::All => &[BackendKind::Vxlan, BackendKind::Udp, BackendKind::HostGw],
        }
    }
}

/// Runs the demo, printing to `out`.
pub(crate) fn run(args: &DemoArgs, out: &mut impl Write) -> Result<(), Failure> {
    let mut pcap = match &args.pcap {
        Some(path) => {
            let file = File::create(path).map_err(|e| {
                Failure::Input(format!(
                    "--pcap {}: cannot create the file: {e} (choose a writable path)",
                    path.display()
                ))
            })?;
            let writer = PcapWriter::new(Box::new(BufWriter::new(file)), args.format)
                .map_err(|e| Failure::Runtime(format!("--pcap {}: {e}", path.display())))?;
            Some(writer)
        }
        None => None,
    };
    let print = |out: &mut dyn Write, text: &str| -> Result<(), Failure> {
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .or_else(|e| crate::output_error(&e).map_or(Ok(()), Err))
    };
    print(
        out,
        &format!(
            "tweed demo: {} nodes x {} pods, pod subnets 10.244.1.0/24 .. 10.244.{}.0/24, underlay 192.168.0.0/24\n\
             pods are smoltcp TCP/IP stacks on the nodes' pod ports; nodes are tweed pipelines; time is simulated\n",
            args.nodes, args.pods, args.nodes
        ),
    )?;
    let mut rows = Vec::new();
    let mut start_us = 1_000_000;
    for &kind in args.backend.kinds() {
        let mut world = World::new(kind, args.nodes, args.pods, start_us, pcap.take()).map_err(Failure::Runtime)?;
        let mtu = world.node(1).map_or(0, tweed_overlay::Node::inner_mtu);
        print(out, &format!("\n{} (pod MTU {mtu})\n", kind_name(kind)))?;
        let result = run_backend(&mut world, args.pods, &mut |text| print(out, text));
        match result {
            Ok(()) => {}
            Err(Step::Failed(message)) => {
                return Err(Failure::Runtime(format!("demo failed: {}: {message}", kind_name(kind))));
            }
            Err(Step::Output(failure)) => return Err(failure),
        }
        rows.push(Row::new(kind_name(kind), world.traffic(), &world.counters()));
        start_us = world.now_us() + 1_000_000;
        pcap = world.into_pcap();
    }
    print(out, "\nsummary (pipeline pps: packets through Node::process per second of its wall time)\n")?;
    print(out, &report::table(&rows))?;
    if let (Some(writer), Some(path)) = (pcap, &args.pcap) {
        let frames = writer.finish().map_err(|e| Failure::Runtime(format!("--pcap {}: {e}", path.display())))?;
        print(
            out,
            &format!(
                "\npcap: {frames} frames in {} (tshark -r {} -d udp.port==8472,vxlan -d udp.port==8285,ip)\n",
                path.display(),
                path.display()
            ),
        )?;
    }
    Ok(())
}

/// Why a backend's run stopped.
enum Step {
    /// A step of the demo failed: what and why.
    Failed(String),
    /// The output could not be written.
    Output(Failure),
}

impl From<String> for Step {
    fn from(message: String) -> Self {
        Self::Failed(message)
    }
}

type Print<'a> = dyn FnMut(&str) -> Result<(), Failure> + 'a;

fn say(print: &mut Print<'_>, text: &str) -> Result<(), Step> {
    print(text).map_err(Step::Output)
}

/// ARP, pings, TCP and the walk, on one backend.
fn run_backend(world: &mut World, pods: u8, print: &mut Print<'_>) -> Result<(), Step> {
    // ARP, with the first echo request across nodes.
    world.start_trace();
    ping_all(world, &[(2, 1)], 1).map_err(|e| format!("ping {} -> {}: {e}", pod_ip(1, 1), pod_ip(2, 1)))?;
    let trace = world.take_trace();
    say(print, &arp_step(world, &trace)?)?;

    // The walk of the second echo request, now that every neighbour is known.
    world.start_trace();
    ping_all(world, &[(2, 1)], 2).map_err(|e| format!("ping {} -> {}: {e}", pod_ip(1, 1), pod_ip(2, 1)))?;
    let trace = world.take_trace();
    let hops = walk::walk(world, &trace, 2, 1, 2).map_err(|e| format!("walk of an echo request: {e}"))?;

    // Pings from the first pod to every other pod.
    let nodes = (1..=u8::MAX).take_while(|&i| world.node(i).is_some()).last().unwrap_or(1);
    let targets: Vec<(u8, u8)> =
        (1..=nodes).flat_map(|i| (1..=pods).map(move |p| (i, p))).filter(|&t| t != (1, 1)).collect();
    let before = world.traffic().underlay_frames;
    ping_all(world, &targets, 100).map_err(|e| format!("ping from {}: {e}", pod_ip(1, 1)))?;
    let same = targets.iter().filter(|(i, _)| *i == 1).count();
    let across = targets.len() - same;
    // Each ping to another node crosses the underlay twice (request, reply); one on node 1 never does.
    let underlay = world.traffic().underlay_frames - before;
    if underlay != 2 * across as u64 {
        return Err(Step::Failed(format!(
            "ping from {}: {underlay} frames crossed the underlay, expected {} (a request and a reply for each of \
             the {across} pods on other nodes)",
            pod_ip(1, 1),
            2 * across
        )));
    }
    let same_text = if same == 0 {
        "no other pod on node1 (--pods 1)".to_owned()
    } else {
        format!("{same} on node1 through the bridge")
    };
    say(
        print,
        &format!(
            "  ping  ok  {} -> {} other pod{}: {across} on other nodes through the overlay, {same_text}\n",
            pod_ip(1, 1),
            targets.len(),
            if targets.len() == 1 { "" } else { "s" }
        ),
    )?;

    // TCP across nodes.
    let summary =
        tcp_transfer(world).map_err(|e| format!("tcp {} -> {}:{TCP_PORT}: {e}", pod_ip(1, 1), pod_ip(2, 1)))?;
    say(print, &summary)?;

    say(print, &format!("  walk  one echo request {} -> {}, hop by hop:\n", pod_ip(1, 1), pod_ip(2, 1)))?;
    say(print, &walk::render(&hops))?;
    Ok(())
}

/// Pod 1 of node 1 pings each (node, pod) of `targets`, sequence numbers from `first_seq`; every reply must
/// come back. Requests are queued as the pod's socket has room: a pod, like Linux, asks ARP for one new neighbour
/// at a time (smoltcp waits a second between requests), so pings to many pods of its own node take a while of
/// simulated time.
fn ping_all(world: &mut World, targets: &[(u8, u8)], first_seq: u16) -> Result<(), String> {
    let mut to_send: VecDeque<(Ipv4Addr, u16)> = targets
        .iter()
        .enumerate()
        .map(|(k, &(i, p))| (pod_ip(i, p), first_seq.wrapping_add(u16::try_from(k).unwrap_or(u16::MAX))))
        .collect();
    let mut waiting = Vec::with_capacity(targets.len());
    let limit = PING_LIMIT_US * (1 + targets.len() as u64);
    let done = world.run_until(limit, |w| {
        let pod = w.pod(1, 1).ok_or("no pod 1 on node 1")?;
        for reply in pod.take_echo_replies()? {
            let Some(at) = waiting.iter().position(|&r| r == reply) else {
                return Err(format!("an unexpected echo reply from {} seq {}", reply.0, reply.1));
            };
            waiting.swap_remove(at);
        }
        while let Some(&(dst, seq)) = to_send.front() {
            if !pod.ping(dst, seq)? {
                break;
            }
            waiting.push((dst, seq));
            to_send.pop_front();
        }
        Ok(waiting.is_empty() && to_send.is_empty())
    })?;
    if done {
        Ok(())
    } else {
        let missing: Vec<_> = waiting.iter().chain(&to_send).map(|(ip, seq)| format!("{ip} seq {seq}")).collect();
        Err(format!("no echo reply within {} s (simulated) from {}", limit / 1_000_000, missing.join(", ")))
    }
}

/// The ARP line: the first pod asked for its gateway and node 1's bridge answered; node 2 asked for its pod.
fn arp_step(world: &World, trace: &[(Link, Vec<u8>)]) -> Result<String, String> {
    let arp_of = |frame: &[u8]| -> Option<arp::Repr> {
        if frame.get(12..14) != Some(&[0x08, 0x06][..]) {
            return None;
        }
        arp::Packet::new_checked(frame.get(14..)?).and_then(|p| arp::Repr::parse(&p)).ok()
    };
    let gw_mac = world.node(1).ok_or("no node 1")?.config().gateway_mac();
    let asked = trace.iter().any(|(link, f)| {
        *link == Link::PodToNode { node: 1, pod: 1 }
            && arp_of(f).is_some_and(|a| a.is_request() && a.target_protocol_addr == gateway_ip(1))
    });
    let answered = trace.iter().any(|(link, f)| {
        *link == Link::NodeToPod { node: 1, pod: 1 }
            && arp_of(f).is_some_and(|a| {
                !a.is_request() && a.source_protocol_addr == gateway_ip(1) && a.source_hardware_addr == gw_mac
            })
    });
    let node2_resolved = trace.iter().any(|(link, f)| {
        *link == Link::PodToNode { node: 2, pod: 1 }
            && arp_of(f).is_some_and(|a| !a.is_request() && a.source_protocol_addr == pod_ip(2, 1))
    });
    if !(asked && answered) {
        return Err(format!(
            "arp: {} {} its gateway {}; node1's bridge {} with {gw_mac}",
            pod_ip(1, 1),
            if asked { "asked for" } else { "never asked for" },
            gateway_ip(1),
            if answered { "answered" } else { "did not answer" }
        ));
    }
    if !node2_resolved {
        return Err(format!("arp: node2 never learnt the MAC of {} from the pod", pod_ip(2, 1)));
    }
    Ok(format!(
        "  arp   ok  {} who-has {} -> node1's bridge: is-at {gw_mac}; node2 asked for {}, the pod answered\n",
        pod_ip(1, 1),
        gateway_ip(1),
        pod_ip(2, 1)
    ))
}

/// The byte at offset `i` of the TCP transfer: not periodic in any small power of two, so a lost, repeated or
/// reordered segment shows.
fn pattern(i: usize) -> u8 {
    // Wrapping arithmetic on purpose: only the low byte matters.
    (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ (i as u8)
}

/// FNV-1a over bytes, 64 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fnv(u64);

impl Fnv {
    const fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Pod 1 of node 1 sends [`TCP_BYTES`] to pod 1 of node 2, closes, and the receiver checks every byte.
fn tcp_transfer(world: &mut World) -> Result<String, String> {
    let (client, server) = (pod_ip(1, 1), pod_ip(2, 1));
    world.pod(2, 1).ok_or("no pod 1 on node 2")?.tcp_listen(TCP_PORT)?;
    world.pod(1, 1).ok_or("no pod 1 on node 1")?.tcp_connect(server, TCP_PORT, TCP_CLIENT_PORT)?;
    let data: Vec<u8> = (0..TCP_BYTES).map(pattern).collect();
    let mut sent_hash = Fnv::new();
    sent_hash.update(&data);
    let start_us = world.now_us();
    let frames_before = world.traffic().pod_frames;
    let (mut sent, mut received, mut closed) = (0usize, 0usize, false);
    let mut recv_hash = Fnv::new();
    let mut buf = vec![0u8; 64 * 1024];
    let done = world.run_until(TCP_LIMIT_US, |w| {
        let sender = w.pod(1, 1).ok_or("no pod 1 on node 1")?;
        if sent < data.len() {
            sent += sender.tcp_send(&data[sent..]);
        } else if !closed && sender.tcp_send_done() {
            sender.tcp_close();
            closed = true;
        }
        let receiver = w.pod(2, 1).ok_or("no pod 1 on node 2")?;
        loop {
            let n = receiver.tcp_recv(&mut buf);
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            let expected = data.get(received..received + n).ok_or("more bytes arrived than were sent")?;
            if chunk != expected {
                let at = chunk.iter().zip(expected).position(|(a, b)| a != b).unwrap_or(0) + received;
                return Err(format!("byte {at} arrived corrupted"));
            }
            recv_hash.update(chunk);
            received += n;
        }
        Ok(received == data.len() && receiver.tcp_peer_closed())
    })?;
    if !done {
        let state = world.pod(1, 1).map(|p| p.tcp_state()).unwrap_or_default();
        return Err(format!(
            "{received} of {} bytes arrived within {} s (simulated); the sender is {state}",
            data.len(),
            TCP_LIMIT_US / 1_000_000
        ));
    }
    if recv_hash != sent_hash {
        return Err(format!("checksums differ: sent fnv1a {:#018x}, received {:#018x}", sent_hash.0, recv_hash.0));
    }
    let frames = world.traffic().pod_frames - frames_before;
    let elapsed_ms = (world.now_us() - start_us) / 1000;
    Ok(format!(
        "  tcp   ok  {} {client}:{TCP_CLIENT_PORT} -> {server}:{TCP_PORT} intact (fnv1a {:#018x}), {frames} frames \
         from pods, {elapsed_ms} ms simulated\n",
        report::bytes(TCP_BYTES as u64),
        recv_hash.0
    ))
}

impl Link {
    /// The capture point a frame on this link is recorded on: the pod's port (both directions), or the sending
    /// node's underlay; its name and description.
    pub(crate) fn capture_point(&self) -> (String, String) {
        match *self {
            Self::PodToNode { node, pod } | Self::NodeToPod { node, pod } => {
                (format!("node{node}-pod{pod}"), format!("node {node}, pod {pod}'s port (the pod's eth0)"))
            }
            Self::Underlay { from, .. } => (format!("node{from}-underlay"), format!("node {from}'s underlay")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_fnv1a_reference_values() {
        // The FNV-1a test vectors of draft-eastlake-fnv: "" and "a".
        let mut h = Fnv::new();
        assert_eq!(h.0, 0xcbf2_9ce4_8422_2325);
        h.update(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
        let mut h = Fnv::new();
        h.update(b"foobar");
        assert_eq!(h.0, 0x8594_4171_f739_67e8);
    }

    #[test]
    fn test_pattern_shows_reordering() {
        // Two 1410-byte segments swapped, or one repeated, change the data: no period that divides a segment.
        let data: Vec<u8> = (0..4 * 1410).map(pattern).collect();
        assert_ne!(data[..1410], data[1410..2 * 1410]);
        for period in [256, 512, 1024, 1410, 1448, 4096] {
            assert!((0..1000).any(|i| pattern(i) != pattern(i + period)), "period {period}");
        }
    }

    #[test]
    fn test_a_lost_underlay_fails_the_ping_step_by_name() {
        let mut world = World::new(BackendKind::Vxlan, 2, 1, 1_000_000, None).expect("world");
        world.cut_underlay();
        let mut printed = String::new();
        let result = run_backend(&mut world, 1, &mut |t| {
            printed.push_str(t);
            Ok(())
        });
        let Err(Step::Failed(message)) = result else { panic!("the demo did not fail: {printed}") };
        assert_eq!(
            message,
            "ping 10.244.1.2 -> 10.244.2.2: no echo reply within 10 s (simulated) from 10.244.2.2 seq 1"
        );
        assert!(printed.is_empty(), "{printed}");
    }

    #[test]
    fn test_one_backend_runs_every_step() {
        let mut world = World::new(BackendKind::Udp, 2, 2, 1_000_000, None).expect("world");
        let mut printed = String::new();
        let result = run_backend(&mut world, 2, &mut |t| {
            printed.push_str(t);
            Ok(())
        });
        assert!(result.is_ok(), "{printed}");
        let steps: Vec<_> = printed.lines().filter_map(|l| l.get(2..8)).collect();
        assert_eq!(steps[..4], ["arp   ", "ping  ", "tcp   ", "walk  "]);
        assert_eq!(world.counters().total_drops(), 0);
        assert_eq!(world.counters().to_tun, 0);
    }

    #[test]
    fn test_backend_choice_all_runs_three() {
        assert_eq!(BackendChoice::All.kinds(), &[BackendKind::Vxlan, BackendKind::Udp, BackendKind::HostGw]);
        assert_eq!(BackendChoice::HostGw.kinds(), &[BackendKind::HostGw]);
    }
}
