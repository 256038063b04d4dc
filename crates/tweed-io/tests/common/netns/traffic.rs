//! Traffic between namespaces: iputils `ping` ([`ping`], [`Ping`]) and `iperf3` ([`Iperf3Server`], [`iperf3_tcp`],
//! [`iperf3_udp`]), each run bounded in time and its report parsed.

use std::net::Ipv4Addr;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU16, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{Error, NetNs, Process, Result, wait_for};

/// What iputils `ping` reported.
#[derive(Clone, Debug, PartialEq)]
pub struct Ping {
    /// Echo requests sent.
    pub transmitted: u32,
    /// Echo replies received.
    pub received: u32,
    /// ICMP errors received instead (`+N errors`): unreachable, fragmentation needed, …
    pub errors: u32,
    /// Average round trip in milliseconds, when there was a reply.
    pub rtt_avg_ms: Option<f64>,
    /// Longest round trip in milliseconds, when there was a reply.
    pub rtt_max_ms: Option<f64>,
    /// The whole output.
    pub output: String,
}

impl Ping {
    /// Parses iputils output (the `N packets transmitted, M received, …` and `rtt …` lines).
    pub fn parse(output: &str) -> Result<Self> {
        let err = || Error::Parse { what: "ping statistics".to_owned(), text: output.to_owned() };
        let stats = output.lines().find(|l| l.contains("packets transmitted")).ok_or_else(err)?;
        let (mut transmitted, mut received, mut errors) = (None, None, 0);
        for part in stats.split(',') {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else { continue };
            match what {
                "packets" => transmitted = n.parse().ok(),
                "received" => received = n.parse().ok(),
                "errors" => errors = n.trim_start_matches('+').parse().map_err(|_| err())?,
                _ => {}
            }
        }
        // `rtt min/avg/max/mdev = 0.045/0.061/0.080/0.012 ms`
        let rtt = |i: usize| {
            output
                .lines()
                .find_map(|l| l.strip_prefix("rtt min/avg/max/mdev = "))
                .and_then(|v| v.split('/').nth(i))
                .and_then(|v| v.parse().ok())
        };
        Ok(Self {
            transmitted: transmitted.ok_or_else(err)?,
            received: received.ok_or_else(err)?,
            errors,
            rtt_avg_ms: rtt(1),
            rtt_max_ms: rtt(2),
            output: output.to_owned(),
        })
    }

    /// Each reply's round trip in milliseconds (the `time=0.061 ms` of its line), in the order they came.
    pub fn rtts_ms(&self) -> Vec<f64> {
        self.output
            .lines()
            .filter(|l| l.contains("bytes from"))
            .filter_map(|l| l.split("time=").nth(1)?.split_whitespace().next()?.parse().ok())
            .collect()
    }

    /// True when every request got its reply.
    pub fn all_received(&self) -> bool {
        self.transmitted > 0 && self.received == self.transmitted
    }

    /// The MTU of a "fragmentation needed" report (`Frag needed and DF set (mtu = N)` from a router, or
    /// `local error: message too long, mtu=N` from the sender's own route).
    pub fn frag_needed_mtu(&self) -> Option<u32> {
        self.output.lines().find_map(|l| {
            let rest = l.split("mtu = ").nth(1).or_else(|| l.split("mtu=").nth(1))?;
            rest.trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
        })
    }
}

/// `ping -c count` from `from` to `dst`, 0.2 s apart, each reply awaited at most 1 s (`-W 1`), `extra` arguments
/// before the destination (`-M do -s 1400`, …). Exactly `count` requests are sent (unlike `-w`, which keeps sending
/// until `count` replies); the run is killed if it outlasts that by 5 s. An error only when ping cannot run or
/// prints no statistics (e.g. `Network is unreachable` before sending).
pub fn ping(from: &NetNs, dst: Ipv4Addr, count: u32, extra: &[&str]) -> Result<Ping> {
    let (count_s, dst_s) = (count.to_string(), dst.to_string());
    let mut argv = vec!["ping", "-n", "-c", &count_s, "-i", "0.2", "-W", "1"];
    argv.extend_from_slice(extra);
    argv.push(&dst_s);
    let timeout = Duration::from_millis(200 * u64::from(count)) + Duration::from_secs(5);
    let out = from.exec(&argv, timeout)?;
    Ping::parse(&format!("{}{}", out.stdout, out.stderr)).map_err(|_| Error::Failed {
        cmd: format!("ip netns exec {} {}", from.name(), argv.join(" ")),
        status: out.status,
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

/// Pings `dst` once at a time until a reply comes (ARP, FDB learning and agent start-up warm up), for at most
/// `within`; the successful ping.
pub fn ping_until_ok(from: &NetNs, dst: Ipv4Addr, within: Duration) -> Result<Ping> {
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        match ping(from, dst, 1, &[]) {
            Ok(p) if p.all_received() => return Ok(p),
            Ok(p) => last = p.output,
            Err(e) => {
                last = e.to_string();
                // Fails at once (no route yet): do not spin.
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Err(Error::Timeout { what: format!("ping {dst} from {}", from.name()), after: within, detail: last })
}

// ---------------------------------------------------------------------------------------------------------------
// iperf3

/// Ports for iperf3 servers: unique within this process, which is enough because a server listens inside a
/// namespace of its own test.
static NEXT_PORT: AtomicU16 = AtomicU16::new(5201);

/// An `iperf3 -s` listening on one address inside a namespace; stopped on drop.
#[must_use = "the server is stopped when this guard is dropped"]
#[derive(Debug)]
pub struct Iperf3Server {
    process: Process,
    addr: Ipv4Addr,
    port: u16,
}

impl Iperf3Server {
    /// Starts a server on `addr` inside `ns` and waits (at most 15 s: a loaded machine can be slow to start it)
    /// until it listens.
    pub fn start(ns: &NetNs, addr: Ipv4Addr) -> Result<Self> {
        let port = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
        let (addr_s, port_s) = (addr.to_string(), port.to_string());
        let mut process =
            ns.spawn(&format!("iperf3-server-{port}"), &["iperf3", "-s", "-B", &addr_s, "-p", &port_s])?;
        let filter = format!("sport = :{port}");
        let what = format!("iperf3 server on {addr}:{port} in {}", ns.name());
        let mut exited = None;
        wait_for(&what, Duration::from_secs(15), || {
            exited = process.exited();
            let listening = ns.run(&["ss", "-Htln", &filter]).is_ok_and(|s| !s.trim().is_empty());
            (listening || exited.is_some()).then_some(())
        })?;
        if let Some(status) = exited {
            return Err(Error::Failed { cmd: what, status, stdout: String::new(), stderr: process.log() });
        }
        Ok(Self { process, addr, port })
    }

    /// Its address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// An iperf3 TCP run, as the client's `-J` report tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct TcpRun {
    /// Sender's rate, Gbit/s.
    pub sent_gbps: f64,
    /// Receiver's rate, Gbit/s.
    pub received_gbps: f64,
    /// Bytes the receiver got.
    pub received_bytes: u64,
    /// TCP retransmissions of the sender.
    pub retransmits: u64,
    /// Duration of the run, seconds.
    pub seconds: f64,
}

/// An iperf3 UDP run, as the client's `-J` report tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct UdpRun {
    /// Datagrams sent.
    pub packets: u64,
    /// Datagrams the receiver missed.
    pub lost: u64,
    /// Duration of the run, seconds.
    pub seconds: f64,
    /// Receiver's payload rate, Gbit/s.
    pub received_gbps: f64,
}

impl UdpRun {
    /// Datagrams sent per second.
    pub fn sent_pps(&self) -> f64 {
        self.packets as f64 / self.seconds
    }
    /// Datagrams received per second.
    pub fn received_pps(&self) -> f64 {
        self.packets.saturating_sub(self.lost) as f64 / self.seconds
    }
}

fn json(text: &str) -> Result<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| Error::Parse { what: "iperf3 JSON".to_owned(), text: text.to_owned() })?;
    match v.get("error").and_then(|e| e.as_str()) {
        Some(e) => Err(Error::Failed {
            cmd: "iperf3".to_owned(),
            status: ExitStatus::from_raw(1 << 8),
            stdout: String::new(),
            stderr: e.to_owned(),
        }),
        None => Ok(v),
    }
}

fn field<'v>(v: &'v serde_json::Value, path: &str, text: &str) -> Result<&'v serde_json::Value> {
    path.split('.')
        .try_fold(v, |v, key| v.get(key))
        .ok_or_else(|| Error::Parse { what: format!("iperf3 `{path}`"), text: text.to_owned() })
}

fn number(v: &serde_json::Value, path: &str, text: &str) -> Result<f64> {
    field(v, path, text)?
        .as_f64()
        .ok_or_else(|| Error::Parse { what: format!("iperf3 `{path}`"), text: text.to_owned() })
}

impl TcpRun {
    /// Parses `iperf3 -c … -J` output (an `"error"` member becomes [`Error::Failed`]).
    pub fn from_json(text: &str) -> Result<Self> {
        let v = json(text)?;
        Ok(Self {
            sent_gbps: number(&v, "end.sum_sent.bits_per_second", text)? / 1e9,
            received_gbps: number(&v, "end.sum_received.bits_per_second", text)? / 1e9,
            received_bytes: number(&v, "end.sum_received.bytes", text)? as u64,
            // Absent when the sender's kernel does not report it.
            retransmits: number(&v, "end.sum_sent.retransmits", text).unwrap_or(0.0) as u64,
            seconds: number(&v, "end.sum_received.seconds", text)?,
        })
    }
}

impl UdpRun {
    /// Parses `iperf3 -c … -u -J` output (the receiver's `end.sum_received`, or `end.sum` on older versions).
    pub fn from_json(text: &str) -> Result<Self> {
        let v = json(text)?;
        let sum = if field(&v, "end.sum_received", text).is_ok() { "end.sum_received" } else { "end.sum" };
        Ok(Self {
            packets: number(&v, &format!("{sum}.packets"), text)? as u64,
            lost: number(&v, &format!("{sum}.lost_packets"), text)? as u64,
            seconds: number(&v, &format!("{sum}.seconds"), text)?,
            received_gbps: number(&v, &format!("{sum}.bits_per_second"), text)? / 1e9,
        })
    }
}

/// How often a client is started again when the server turned it away for a moment, and how long apart.
const IPERF3_RETRIES: u32 = 5;
const IPERF3_RETRY_GAP: Duration = Duration::from_millis(300);

/// True when a client failed because the server could not take it just then: right after a run ends, a
/// persistent `iperf3 -s` still says it is busy, or refuses or resets the next connection. A connection that
/// times out is not one of these: nothing answered, which is what a dead dataplane looks like.
fn iperf3_turned_away(stdout: &str, stderr: &str) -> bool {
    let error = serde_json::from_str::<serde_json::Value>(stdout)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_default();
    [error.as_str(), stderr].iter().any(|text| {
        let text = text.to_ascii_lowercase();
        !text.contains("timed out")
            && ["busy", "refused", "reset", "unable to connect", "unable to receive control message"]
                .iter()
                .any(|m| text.contains(m))
    })
}

fn iperf3_client(from: &NetNs, server: &Iperf3Server, seconds: u32, reverse: bool, extra: &[&str]) -> Result<String> {
    let (addr, port, secs) = (server.addr.to_string(), server.port.to_string(), seconds.to_string());
    let mut argv = vec!["iperf3", "-c", &addr, "-p", &port, "-t", &secs, "-J", "--connect-timeout", "3000"];
    if reverse {
        argv.push("-R");
    }
    argv.extend_from_slice(extra);
    let cmd = || format!("ip netns exec {} {}", from.name(), argv.join(" "));
    let mut retries = 0;
    loop {
        // Start, the run, the final exchange: a dataplane that dies mid-run is cut off here, not after TCP's
        // minutes.
        let out = from.exec(&argv, Duration::from_secs(u64::from(seconds) + 10))?;
        if retries < IPERF3_RETRIES && iperf3_turned_away(&out.stdout, &out.stderr) {
            retries += 1;
            eprintln!("netns harness: `{}` turned away, try {} of {}", cmd(), retries + 1, IPERF3_RETRIES + 1);
            thread::sleep(IPERF3_RETRY_GAP);
            continue;
        }
        if out.stdout.trim().is_empty() {
            return Err(Error::Failed { cmd: cmd(), status: out.status, stdout: out.stdout, stderr: out.stderr });
        }
        return Ok(out.stdout);
    }
}

/// An iperf3 TCP run of `seconds` from `from` to `server`; `reverse` makes the server send (`-R`).
pub fn iperf3_tcp(from: &NetNs, server: &Iperf3Server, seconds: u32, reverse: bool) -> Result<TcpRun> {
    TcpRun::from_json(&iperf3_client(from, server, seconds, reverse, &[])?)
}

/// An iperf3 UDP run of `seconds` with `len`-byte datagrams at `bitrate` (`"0"`: as fast as the sender can,
/// `"100M"`, …); `reverse` makes the server send.
pub fn iperf3_udp(
    from: &NetNs,
    server: &Iperf3Server,
    seconds: u32,
    len: u32,
    bitrate: &str,
    reverse: bool,
) -> Result<UdpRun> {
    let len = len.to_string();
    UdpRun::from_json(&iperf3_client(from, server, seconds, reverse, &["-u", "-l", &len, "-b", bitrate])?)
}
