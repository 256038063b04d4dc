//! A learning switch between TAP devices: `tweed::switch::Bridge` over `tweed::io::Device`s (Linux, root).
//!
//! ```text
//! sudo cargo run --example tap_switch -- [SECONDS]     # 5 by default; --check runs for 0.2 s
//! ```
//!
//! It creates three TAPs (`tws<pid>-0` … `-2`, up, deleted again when the program ends), reads the frames the
//! kernel sends on them, and switches them as a bridge does: learn the source, forward to the port the
//! destination was learnt on, flood broadcast, multicast and unknown unicast to the other ports. Put the TAPs in
//! network namespaces with addresses of one subnet (`ip link set tws123-0 netns a` …) and the namespaces ping each
//! other through it; left alone, the kernel's own IPv6 router solicitations and MLD reports get flooded. At the
//! end it prints the bridge's counters. Without `CAP_NET_ADMIN` it says so in one line and exits successfully.

use std::error::Error;

/// Runs the switch for `seconds`; `None` without the privilege to create TAPs.
#[cfg(target_os = "linux")]
pub(crate) fn run(seconds: f64) -> Result<Option<tweed::switch::Counters>, Box<dyn Error>> {
    run_until(None, |switching| switching.as_secs_f64() >= seconds)
}

/// The name of TAP `i` (0, 1 or 2).
#[cfg(target_os = "linux")]
pub(crate) fn tap_name(i: u16) -> String {
    format!("tws{}-{i}", std::process::id() % 10_000_000)
}

/// Runs the switch with its TAPs in `netns` (a name under `/var/run/netns` or a path; `None`: this process's)
/// until `done(time since the TAPs came up)` says so (asked between rounds); `None` without the privilege to
/// create TAPs.
#[cfg(target_os = "linux")]
pub(crate) fn run_until(
    netns: Option<&std::path::Path>,
    mut done: impl FnMut(std::time::Duration) -> bool,
) -> Result<Option<tweed::switch::Counters>, Box<dyn Error>> {
    use std::time::{Duration, Instant as Clock};
    use tweed::io::{Device, DeviceKind, DeviceOptions, has_net_admin};
    use tweed::packet::{Pool, PoolConfig};
    use tweed::switch::{Bridge, BridgeConfig, BridgeDomain, Decision, Instant, PortConfig, PortId};

    if !has_net_admin() {
        return Ok(None);
    }
    let mut bridge = Bridge::new(&BridgeConfig::default());
    let mut taps = vec![];
    for i in 0..3u16 {
        let mut options = DeviceOptions::new(tap_name(i), DeviceKind::Tap);
        if let Some(ns) = netns {
            options = options.netns(ns);
        }
        taps.push((PortId(i), Device::create(&options)?));
        bridge.add_port(PortId(i), PortConfig::new(BridgeDomain(0)))?;
    }
    println!("switching between {}", taps.iter().map(|(_, t)| t.name()).collect::<Vec<_>>().join(", "));
    let mut pool = Pool::new(PoolConfig::default())?;
    let mut buf = pool.get().ok_or("pool empty")?;
    let start = Clock::now();
    while !done(start.elapsed()) {
        let mut idle = true;
        let now = Instant::from_nanos(u64::try_from(start.elapsed().as_nanos())?);
        for (port, tap) in &taps {
            buf.clear();
            if !tap.recv(&mut buf)? {
                continue;
            }
            idle = false;
            let send = |to: PortId| taps.iter().find(|(p, _)| *p == to).map(|(_, t)| t.send(buf.data()));
            match bridge.process_one(now, *port, buf.data()) {
                Decision::Forward(to) => drop(send(to).transpose()?),
                Decision::Flood { .. } => {
                    for to in bridge.flood_ports(*port) {
                        send(to).transpose()?;
                    }
                }
                // No host port, no ARP table here: the rest is for the host or dropped (and counted).
                _ => {}
            }
        }
        if idle {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    pool.put(buf);
    Ok(Some(bridge.counters()))
}

#[cfg(target_os = "linux")]
fn main() -> Result<(), Box<dyn Error>> {
    let arg = std::env::args().nth(1);
    let seconds = match arg.as_deref() {
        Some("--check") => 0.2,
        Some(s) => s.parse().map_err(|_| format!("{s:?}: expected a number of seconds or --check"))?,
        None => 5.0,
    };
    match run(seconds)? {
        Some(counters) => println!("bridge counters: {counters}"),
        None => println!("tap_switch creates TAP devices: it needs CAP_NET_ADMIN (run it as root); nothing done"),
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("tap_switch uses Linux TAP devices; nothing done on this system");
}
