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
//! Each iteration copies the frames into pool buffers (what a receive call does), runs [`Node::process`] and gives
//! the outputs back. Before timing, each workload's verdicts are checked once (every frame where it should go),
//! and after it, that the node dropped nothing: a bench that measured drops would flatter. The figures are a
//! quick look, not the project's claims: those come from the criterion benches (`cargo bench`).

use std::fmt::Write as _;
use std::io::Write;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant as WallClock};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tweed_overlay::{Instant, Limits, Node, NodeBuilder, Outputs, PeerConfig, Verdict, VxlanConfig};
use tweed_packet::{Batch, Pool, PoolConfig, PortId};
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

/// The buffers every workload shares.
struct Rig {
    pool: Pool,
    batch: Batch,
    out: Outputs,
}

impl Rig {
    /// Copies `frames` into buffers on `port` and runs them through `node`; the outputs stay in `self.out`.
    fn run(&mut self, node: &mut Node, frames: &[Vec<u8>], port: PortId) -> Result<(), String> {
        for f in frames {
            let mut buf = self.pool.get().ok_or("the pool ran out of buffers")?;
            buf.extend_from_slice(f).map_err(|e| e.to_string())?;
            buf.meta_mut().ingress = port;
            self.batch.push(buf).map_err(|_| "the batch is full")?;
        }
        node.process(Instant::from_secs(1), &mut self.pool, &mut self.batch, &mut self.out);
        Ok(())
    }

    /// Runs `frames` once and checks that every output has the verdict `expect` says, then recycles.
    fn check(
        &mut self,
        node: &mut Node,
        frames: &[Vec<u8>],
        port: PortId,
        name: &str,
        expect: impl Fn(usize, &Verdict) -> bool,
    ) -> Result<(), String> {
        self.run(node, frames, port)?;
        let ok =
            self.out.len() == frames.len() && self.out.as_slice().iter().enumerate().all(|(i, (_, v))| expect(i, v));
        let got: Vec<Verdict> = self.out.as_slice().iter().map(|(_, v)| *v).take(3).collect();
        self.out.recycle(&mut self.pool);
        if ok { Ok(()) } else { Err(format!("{name}: unexpected verdicts (first: {got:?}); this is a bug")) }
    }
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
    let mut n1 = node(1, args.peers)?;
    let mut n2 = node(2, 0)?;
    let mut rig = Rig {
        pool: Pool::new(PoolConfig { buffers: 4096, ..PoolConfig::default() }).map_err(|e| e.to_string())?,
        batch: Batch::new(256),
        out: Outputs::new(1024),
    };
    // The nodes learn their pods from their ARP requests for the gateway.
    for (n, node) in [(1, &mut n1), (2, &mut n2)] {
        for pod in [1, 2] {
            rig.check(node, &[arp_from_pod(n, pod)], PortId(u16::from(pod)), "arp", |_, v| {
                *v == Verdict::Port(PortId(u16::from(pod)))
            })?;
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
    rig.check(
        &mut n1,
        &encap,
        PortId(1),
        "encap vxlan",
        |i, v| matches!(v, Verdict::Underlay { dst, .. } if dst.ip() == Ipv4Addr::from(0xac10_0000 + peer_of(i))),
    )?;
    // Decap: what node 2 sends for its pod's traffic to node 1's pod 1.
    let to_n1: Vec<Vec<u8>> =
        (0..batch).map(|i| pod_frame(2, 1, gateway_mac(2), pod_ip(1, 1), size, i as u16)).collect();
    rig.run(&mut n2, &to_n1, PortId(1))?;
    let mut decap = Vec::with_capacity(batch);
    for (buf, v) in rig.out.drain() {
        if matches!(v, Verdict::Underlay { .. }) {
            decap.push(buf.data().to_vec());
        }
        rig.pool.put(buf);
    }
    rig.check(&mut n1, &decap, PortId(0), "decap vxlan", |_, v| *v == Verdict::Port(PortId(1)))?;
    // Switch: node 1's pod 1 to its pod 2, on the bridge.
    let switch: Vec<Vec<u8>> =
        (0..batch).map(|i| pod_frame(1, 1, pod_mac(1, 2), pod_ip(1, 2), size, i as u16)).collect();
    rig.check(&mut n1, &switch, PortId(1), "switch", |_, v| *v == Verdict::Port(PortId(2)))?;

    let drops_before = n1.counters().total_drops();
    let seconds = args.seconds;
    let mut rows = Vec::with_capacity(4);
    for (name, frames, port) in
        [("encap vxlan", &encap, PortId(1)), ("decap vxlan", &decap, PortId(0)), ("switch", &switch, PortId(1))]
    {
        rows.push(time(bar, name, seconds, frames.len(), || {
            rig.run(&mut n1, frames, port)?;
            std::hint::black_box(rig.out.len());
            rig.out.recycle(&mut rig.pool);
            Ok(())
        })?);
    }
    if n1.counters().total_drops() != drops_before {
        let drops: Vec<_> = n1.counters().nonzero_drops().collect();
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
