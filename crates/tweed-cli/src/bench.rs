//! `tweed bench`: a quick look at the pipeline's throughput on this machine, in this process, without devices.
//!
//! Four workloads, each run for `--seconds` after a short warm-up, in batches of `--batch` packets:
//! - **encap vxlan**: frames from a pod to pods behind `--peers` peers (one flow each), through bridge, route
//!   lookup and VXLAN encapsulation, as the overlay's `pipeline` criterion bench does;
//! - **decap vxlan**: what a peer sends for its pod's traffic to ours, through the underlay checks,
//!   decapsulation and the route to the local pod;
//! - **switch**: frames between two pods of one node, through the learning bridge;
//! - **route lookup**: LPM lookups in batches, of addresses inside a synthetic Internet-shaped table of
//!   `--routes` prefixes (`tweed_route::synth`).
//!
//! Each iteration is one round of a `tweed_io::Worker` (the node's one event loop) whose ports are the bench's
//! own: the ingress port copies the workload's frames into pool buffers (what a receive call does), the node
//! processes them, and each port counts what it is sent. Before timing, each workload's outputs are checked once
//! (every frame on the port it should leave by, to the peer it should go to), and after it, that the node dropped
//! nothing: a bench that measured drops would flatter. The figures are a
//! quick look, not the project's claims: those come from the criterion benches (`cargo bench`).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant as WallClock};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tweed_io::{DriverConfig, Medium, Msg, Port, Rx, Sent, Worker};
use tweed_overlay::{Flannel, Instant, Limits, Node, NodeBuilder, PeerConfig, VxlanConfig};
use tweed_packet::PortId;
use tweed_route::{Lpm, NextHopId, synth};
use tweed_wire::ethernet::MacAddr;
use tweed_wire::{arp, checksum};

use crate::{Failure, output_error};

/// `tweed bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// How long each workload runs, in seconds (after a warm-up of a tenth of that).
    #[arg(long, value_name = "S", default_value_t = 1.0, value_parser = parse_seconds)]
    seconds: f64,
    /// Packets per call of the pipeline (and addresses per batched lookup), 1 to 256.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=256))]
    batch: u16,
    /// Frame size in bytes, 64 to 1400.
    #[arg(long, value_name = "BYTES", default_value_t = 64, value_parser = clap::value_parser!(u16).range(64..=1400))]
    size: u16,
    /// Peers of the encapsulating node (routes in its table), 1 to 60000.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=60_000))]
    peers: u32,
    /// Prefixes of the synthetic table the route lookup row searches, 1 to 2000000.
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=2_000_000))]
    routes: u32,
}

/// Parses `--seconds`: a positive number up to an hour.
fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds between 0 and 3600 (e.g. 0.5)")),
    }
}

/// The `k`th peer's pod subnet: 10.0.0.0/24, 10.0.1.0/24, … up to 10.234.95.0/24 for the most peers (60,000),
/// below the nodes' own 10.244.{1,2}.0/24.
fn peer_subnet(k: u32) -> ipnet::Ipv4Net {
    // The prefix length is 24: always valid.
    ipnet::Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (k << 8)), 24).unwrap_or_default()
}

/// Pod `pod` (1 or 2) of node `node`: 10.244.`node`.2 and .3 (.1 is the gateway).
fn pod_ip(node: u8, pod: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, node, 1 + pod)
}

/// A pod's MAC: `0a:58` and its address, the CNI bridge plugin's convention.
fn pod_mac(node: u8, pod: u8) -> MacAddr {
    let [a, b, c, d] = pod_ip(node, pod).octets();
    MacAddr::new(0x0a, 0x58, a, b, c, d)
}

/// The gateway MAC of node `node` (the node's default).
fn gateway_mac(node: u8) -> MacAddr {
    MacAddr::new(0x0a, 0x58, 10, 244, node, 1)
}

/// Node `i` (1 or 2) with two pod ports, the other node as a peer, and `peers` more.
fn node(i: u8, peers: u32) -> Result<Node, String> {
    let mut b = NodeBuilder::new(
        ipnet::Ipv4Net::new(Ipv4Addr::new(10, 244, i, 0), 24).map_err(|e| e.to_string())?,
        Ipv4Addr::new(192, 168, 0, i),
        MacAddr::new(2, 0, 0xc0, 0xa8, 0, i),
    )
    .vxlan(VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, i)))
    .pod_ports([1, 2])
    .limits(Limits { max_peers: peers + 16, max_outputs: 1024, ..Limits::default() });
    let other = 3 - i;
    b = b.peer(
        PeerConfig::new(
            ipnet::Ipv4Net::new(Ipv4Addr::new(10, 244, other, 0), 24).map_err(|e| e.to_string())?,
            Ipv4Addr::new(192, 168, 0, other),
        )
        .with_vtep_mac(MacAddr::new(2, 0, 0, 0, 0, other))
        .with_node_mac(MacAddr::new(2, 0, 0xc0, 0xa8, 0, other)),
    );
    for k in 0..peers {
        b = b.peer(
            PeerConfig::new(peer_subnet(k), Ipv4Addr::from(0xac10_0000 + k))
                .with_vtep_mac(MacAddr::from_u64(0x0200_0001_0000 + u64::from(k)))
                .with_node_mac(MacAddr::from_u64(0x0200_0002_0000 + u64::from(k))),
        );
    }
    b.build().map_err(|e| e.to_string())
}

/// A frame of `len` bytes from pod `pod` of node `node` to `dst_mac`/`dst` (UDP in IPv4, source port `sport`).
fn pod_frame(node: u8, pod: u8, dst_mac: MacAddr, dst: Ipv4Addr, len: usize, sport: u16) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(dst_mac.as_bytes());
    f[6..12].copy_from_slice(pod_mac(node, pod).as_bytes());
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    // `len` is at most 1400.
    let ip_len = (len - 14) as u16;
    f[14..26].copy_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0]);
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[26..30].copy_from_slice(&pod_ip(node, pod).octets());
    f[30..34].copy_from_slice(&dst.octets());
    let c = checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    f
}

/// Pod `pod` of node `node` asks for its gateway: the node learns its MAC, port and address.
fn arp_from_pod(node: u8, pod: u8) -> Vec<u8> {
    let mut f = vec![0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(pod_mac(node, pod).as_bytes());
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    arp::Repr::request(pod_mac(node, pod), pod_ip(node, pod), Ipv4Addr::new(10, 244, node, 1))
        .emit(&mut arp::Packet::new_unchecked(&mut f[14..]));
    f
}

/// A port of the bench: each round it gives its frames again, copied into pool buffers as a receive call would,
/// and it counts what the node sends it (keeping the bytes and destinations only while a check records them).
#[derive(Debug, Default)]
struct Loop {
    frames: Vec<Vec<u8>>,
    /// Whether the frames are to be given this round.
    armed: bool,
    /// Packets sent to it.
    sent: u64,
    recording: bool,
    recorded: Vec<(Vec<u8>, Option<SocketAddr>)>,
}

impl Port for Loop {
    fn name(&self) -> &str {
        "bench"
    }
    fn medium(&self) -> Medium {
        Medium::Ethernet
    }
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    fn has_input(&self) -> bool {
        self.armed
    }
    fn recv(&mut self, rx: &mut Rx<'_>) -> io::Result<()> {
        self.armed = false;
        for f in &self.frames {
            if !rx.push_copy(f, None) {
                return Err(io::Error::other("the pool or the batch ran out of room"));
            }
        }
        Ok(())
    }
    fn send(&mut self, msgs: &[Msg<'_>], _scratch: &mut [u8]) -> Sent {
        self.sent += msgs.len() as u64;
        if self.recording {
            self.recorded.extend(msgs.iter().map(|m| (m.data.to_vec(), m.dst)));
        }
        Sent { sent: msgs.len(), coalesced: 0 }
    }
}

/// A node's worker over the bench's ports: the underlay (0) and the pods (1, 2).
type Bench = Worker<Flannel, Loop>;

const PORTS: [PortId; 3] = [PortId(0), PortId(1), PortId(2)];

fn bench_worker(node: Node, batch: usize) -> Result<Bench, String> {
    let mut w = Worker::new(node, DriverConfig::default().batch(batch).buffers(4096)).map_err(|e| e.to_string())?;
    for id in PORTS {
        w.add_port(id, Loop::default()).map_err(|e| e.to_string())?;
    }
    Ok(w)
}

/// Gives `frames` on `port` in each round from now on.
fn feed(w: &mut Bench, port: PortId, frames: &[Vec<u8>]) {
    if let Some(p) = w.port_mut(port) {
        p.frames = frames.to_vec();
    }
}

/// One round with the frames fed to `port`.
fn round(w: &mut Bench, port: PortId) -> Result<(), String> {
    let before = w.stats().rx_errors;
    if let Some(p) = w.port_mut(port) {
        p.armed = true;
    }
    w.round(Instant::from_secs(1));
    if w.stats().rx_errors == before { Ok(()) } else { Err("the pool or the batch ran out of room".into()) }
}

/// Runs `frames` from `port` once and checks that every one left by `to`, the `i`th to a destination `dst`
/// accepts; returns what left.
fn check(
    w: &mut Bench,
    frames: &[Vec<u8>],
    port: PortId,
    name: &str,
    to: PortId,
    dst: impl Fn(usize, Option<SocketAddr>) -> bool,
) -> Result<Vec<Vec<u8>>, String> {
    feed(w, port, frames);
    for id in PORTS {
        if let Some(p) = w.port_mut(id) {
            p.recording = true;
        }
    }
    let ran = round(w, port);
    let mut out = Vec::new();
    let mut ok = ran.is_ok();
    for id in PORTS {
        let Some(p) = w.port_mut(id) else { continue };
        p.recording = false;
        let got = std::mem::take(&mut p.recorded);
        if id == to {
            ok &= got.len() == frames.len() && got.iter().enumerate().all(|(i, (_, d))| dst(i, *d));
            out = got.into_iter().map(|(f, _)| f).collect();
        } else {
            ok &= got.is_empty();
        }
    }
    if ok { Ok(out) } else { Err(format!("{name}: unexpected outputs (not all to port {}); this is a bug", to.0)) }
}

/// One row of the table.
struct Row {
    name: &'static str,
    packets: u64,
    elapsed: Duration,
}

/// Runs `step` (which handles `per_step` packets) for the warm-up and then for `seconds`, moving the bar.
fn time(
    bar: &ProgressBar,
    name: &'static str,
    seconds: f64,
    per_step: usize,
    mut step: impl FnMut() -> Result<(), String>,
) -> Result<Row, String> {
    bar.set_message(name);
    let warm = WallClock::now();
    while warm.elapsed().as_secs_f64() < seconds / 10.0 {
        step()?;
    }
    let start = WallClock::now();
    let mut packets = 0u64;
    let base = bar.position();
    loop {
        for _ in 0..16 {
            step()?;
            packets += per_step as u64;
        }
        let elapsed = start.elapsed();
        let done = (elapsed.as_secs_f64() / seconds).min(1.0);
        bar.set_position(base + (done * 100.0) as u64);
        if done >= 1.0 {
            return Ok(Row { name, packets, elapsed });
        }
    }
}

/// Runs the four workloads; the error names the workload.
fn workloads(args: &BenchArgs, bar: &ProgressBar) -> Result<Vec<Row>, String> {
    let size = usize::from(args.size);
    let batch = usize::from(args.batch);
    bar.set_message("building nodes");
    let mut n1 = bench_worker(node(1, args.peers)?, batch)?;
    let mut n2 = bench_worker(node(2, 0)?, batch)?;
    // The nodes learn their pods from their ARP requests for the gateway.
    for (n, w) in [(1, &mut n1), (2, &mut n2)] {
        for pod in [1, 2] {
            let port = PortId(u16::from(pod));
            check(w, &[arp_from_pod(n, pod)], port, "arp", port, |_, d| d.is_none())?;
        }
    }

    // Encap: node 1's pod 1 to a pod behind each of `batch` peers spread over the table.
    let peer_of = |i: usize| (i as u32).wrapping_mul(7919) % args.peers;
    let encap: Vec<Vec<u8>> = (0..batch)
        .map(|i| {
            let dst = Ipv4Addr::from(u32::from(peer_subnet(peer_of(i)).network()) + 2);
            pod_frame(1, 1, gateway_mac(1), dst, size, 1000 + i as u16)
        })
        .collect();
    check(&mut n1, &encap, PortId(1), "encap vxlan", PortId(0), |i, d| {
        d.is_some_and(|d| d.ip() == Ipv4Addr::from(0xac10_0000 + peer_of(i)))
    })?;
    // Decap: what node 2 sends for its pod's traffic to node 1's pod 1.
    let to_n1: Vec<Vec<u8>> =
        (0..batch).map(|i| pod_frame(2, 1, gateway_mac(2), pod_ip(1, 1), size, i as u16)).collect();
    let n1_addr = Ipv4Addr::new(192, 168, 0, 1);
    let decap =
        check(&mut n2, &to_n1, PortId(1), "encap to node 1", PortId(0), |_, d| d.is_some_and(|d| d.ip() == n1_addr))?;
    check(&mut n1, &decap, PortId(0), "decap vxlan", PortId(1), |_, d| d.is_none())?;
    // Switch: node 1's pod 1 to its pod 2, on the bridge.
    let switch: Vec<Vec<u8>> =
        (0..batch).map(|i| pod_frame(1, 1, pod_mac(1, 2), pod_ip(1, 2), size, i as u16)).collect();
    check(&mut n1, &switch, PortId(1), "switch", PortId(2), |_, d| d.is_none())?;

    let drops_before = n1.node().counters().total_drops();
    let seconds = args.seconds;
    let mut rows = Vec::with_capacity(4);
    for (name, frames, port) in
        [("encap vxlan", &encap, PortId(1)), ("decap vxlan", &decap, PortId(0)), ("switch", &switch, PortId(1))]
    {
        feed(&mut n1, port, frames);
        rows.push(time(bar, name, seconds, frames.len(), || round(&mut n1, port))?);
        feed(&mut n1, port, &[]);
    }
    if n1.node().counters().total_drops() != drops_before {
        let drops: Vec<_> = n1.node().counters().nonzero_drops().collect();
        return Err(format!("the node dropped packets while timed: {drops:?}; this is a bug"));
    }

    bar.set_message("building the route table");
    let prefixes = synth::internet_table(args.routes as usize, 7);
    let mut lpm = Lpm::new();
    for (i, &p) in prefixes.iter().enumerate() {
        lpm.insert(p, NextHopId((i % 512) as u32)).map_err(|e| format!("route table: {e}"))?;
    }
    let reader = lpm.reader();
    let addrs = synth::addrs_in(&prefixes, 1 << 16, 11);
    let mut results = vec![None; batch];
    let mut at = 0;
    rows.push(time(bar, "route lookup", seconds, batch, || {
        if at + batch > addrs.len() {
            at = 0;
        }
        let found = reader.lookup_batch(&addrs[at..at + batch], &mut results);
        std::hint::black_box(&results);
        at += batch;
        // Every address is inside a prefix of the table.
        if results[..found].iter().all(Option::is_some) {
            Ok(())
        } else {
            Err("route lookup: a miss; this is a bug".into())
        }
    })?);
    Ok(rows)
}

/// The summary table.
fn table(args: &BenchArgs, rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}-byte frames, batches of {}, {} peers, {} routes, {} s per workload{}",
        args.size,
        args.batch,
        args.peers,
        args.routes,
        args.seconds,
        if cfg!(debug_assertions) { " (a debug build: build with --release for real figures)" } else { "" }
    );
    let _ = writeln!(s, "{:<14}{:>14}{:>10}{:>12}", "workload", "packets", "Mpps", "ns/packet");
    for row in rows {
        let secs = row.elapsed.as_secs_f64();
        let mpps = row.packets as f64 / secs / 1e6;
        let ns = secs * 1e9 / row.packets.max(1) as f64;
        let _ = writeln!(s, "{:<14}{:>14}{mpps:>10.2}{ns:>12.1}", row.name, row.packets);
    }
    s
}

/// Runs `tweed bench`.
pub(crate) fn run(args: &BenchArgs, out: &mut impl Write) -> Result<(), Failure> {
    let bar = ProgressBar::new(400);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {percent:>3}%  {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let rows = workloads(args, &bar).map_err(Failure::Runtime);
    bar.finish_and_clear();
    let text = table(args, &rows?);
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).or_else(|e| output_error(&e).map_or(Ok(()), Err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_positive_and_bounded() {
        assert_eq!(parse_seconds("0.25"), Ok(0.25));
        for bad in ["0", "-1", "nan", "inf", "3601", "x"] {
            assert!(parse_seconds(bad).is_err_and(|e| e.contains("between 0 and 3600")), "{bad}");
        }
    }

    #[test]
    fn peer_subnets_stay_below_the_nodes_own() {
        let subnets = [peer_subnet(0), peer_subnet(1), peer_subnet(256), peer_subnet(59_999)];
        assert_eq!(subnets.map(|n| n.to_string()), ["10.0.0.0/24", "10.0.1.0/24", "10.1.0.0/24", "10.234.95.0/24"]);
    }
}
