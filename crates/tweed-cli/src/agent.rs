//! `tweed agent`: a node on real devices (pod TAPs, the underlay's UDP socket or interface), from a TOML file.
//!
//! The file's format is [`tweed_io::agent`]'s; this module reads it, builds the driver, logs with `tracing`,
//! prints the counters on SIGUSR1, every `--stats` seconds and at exit, and stops on SIGINT or SIGTERM, which
//! deletes every device the agent created.
//!
//! The data path sleeps until input, the node's next timer, or one of its handles: the signal thread
//! ([`tweed_io::Signals`]) stops it or asks for the counters, the control thread wakes it when the store changed.
//! The agent's own timers between rounds are the periodic counters and, when a pod is in a network namespace,
//! the check for namespaces that are gone (every second).

use std::path::PathBuf;
#[cfg(target_os = "linux")]
use std::sync::Arc;
#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;

use crate::Failure;

/// `tweed agent`.
#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The node's configuration file (TOML; see the README's "Running the agent").
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Also print the counters every this many seconds.
    #[arg(long, value_name = "SECONDS")]
    stats: Option<u64>,
    /// Check the file and exit without creating anything.
    #[arg(long)]
    check: bool,
}

/// The largest `--stats` interval (a day), as `[agent].stats_interval_s`'s.
const MAX_STATS_S: u64 = 86_400;

/// How often the agent looks for pods whose network namespace is gone (a `stat` per pod).
#[cfg(target_os = "linux")]
const ORPHAN_CHECK: Duration = Duration::from_secs(1);

/// Runs the agent until SIGINT or SIGTERM.
#[cfg(target_os = "linux")]
pub(crate) fn run(args: &AgentArgs) -> Result<(), Failure> {
    use tweed_io::agent::{AgentConfig, build_driver};

    init_logging();
    let name = args.config.display();
    let text = std::fs::read_to_string(&args.config).map_err(|e| Failure::Input(format!("cannot read {name}: {e}")))?;
    let mut config = AgentConfig::from_toml_str(&text).map_err(|e| Failure::Input(format!("{name}: {e}")))?;
    if let Some(s) = args.stats
        && !(1..=MAX_STATS_S).contains(&s)
    {
        return Err(Failure::Input(format!("--stats: {s} is out of range 1 to {MAX_STATS_S} (seconds)")));
    }
    if args.check {
        for w in &config.warnings {
            println!("{name}: warning: {w}");
        }
        println!("{name}: ok ({} pods, {} peers)", config.pods.len(), config.node.peers.len());
        return Ok(());
    }
    for w in &config.warnings {
        tracing::warn!("{name}: {w}");
    }
    if !tweed_io::has_net_admin() {
        return Err(Failure::Input(
            "tweed agent creates TAP devices and raw sockets: it needs CAP_NET_ADMIN (run it as root)".into(),
        ));
    }
    config.resolve().map_err(|e| Failure::Input(format!("{name}: {e}")))?;
    let runtime = |e: tweed_io::Error| Failure::Runtime(e.to_string());
    let (stop, waker) = (tweed_io::Stop::new().map_err(runtime)?, tweed_io::Waker::new().map_err(runtime)?);
    let stats_asked = Arc::new(AtomicBool::new(false));
    // Before any other thread starts (the control thread, etcd's): they inherit the blocked signals.
    let _signals = tweed_io::Signals::start(stop.clone(), {
        let (asked, waker) = (stats_asked.clone(), waker.clone());
        move || {
            asked.store(true, Ordering::Relaxed);
            waker.wake();
        }
    })
    .map_err(runtime)?;
    let mut control = match config.store.clone() {
        Some(spec) => Some(crate::control::Control::start(&spec, &mut config, waker.clone())?),
        None => None,
    };
    let mut driver = build_driver(&config).map_err(|e| Failure::Input(format!("{name}: {e}")))?;
    driver.set_stop(stop.clone()).map_err(runtime)?;
    driver.set_waker(waker).map_err(runtime)?;
    if let Some(c) = &mut control {
        c.tick(driver.node_mut())?;
    }
    let backend = format!("{:?}", config.node.backend.kind()).to_lowercase();
    tracing::info!(
        pod_subnet = ?config.node.pod_subnet,
        node_ip = %config.node.underlay.node_ip,
        backend,
        pods = ?driver.pods().iter().map(|(id, p)| format!("{}={}", id.0, p.name())).collect::<Vec<_>>(),
        peers = config.node.peers.len(),
        "agent running"
    );
    let interval = args.stats.or((config.agent.stats_interval_s > 0).then_some(config.agent.stats_interval_s));
    let mut next = interval.map(|s| Instant::now() + Duration::from_secs(s.max(1)));
    let mut lost = None;
    // Only pods in a network namespace can lose it under the driver.
    let orphans = driver.pods().iter().any(|(_, p)| p.netns().is_some());
    let mut next_orphan_check = orphans.then(|| Instant::now() + ORPHAN_CHECK);
    let result = driver.run(|d| {
        if let Some(t) = next_orphan_check.as_mut()
            && Instant::now() >= *t
        {
            d.close_orphaned();
            *t = Instant::now() + ORPHAN_CHECK;
        }
        for c in d.take_closed() {
            tracing::warn!(port = c.port.0, name = %c.name, error = %c.error, "port closed: its device is gone");
        }
        if let Some(c) = &mut control
            && let Err(e) = c.tick(d.node_mut())
        {
            lost = Some(e);
            stop.stop();
            return None;
        }
        let due = next.is_some_and(|t| Instant::now() >= t);
        if stats_asked.swap(false, Ordering::Relaxed) || due {
            log_stats(d);
            if let (Some(t), Some(s)) = (next.as_mut(), interval) {
                *t = Instant::now() + Duration::from_secs(s.max(1));
            }
        }
        // The next wait ends by the agent's own next timer at the latest.
        [next, next_orphan_check].into_iter().flatten().min().map(|t| t.saturating_duration_since(Instant::now()))
    });
    log_stats(&driver);
    drop(driver);
    tracing::info!("agent stopped; its devices are deleted");
    result.map_err(|e| Failure::Runtime(e.to_string()))?;
    lost.map_or(Ok(()), Err)
}

#[cfg(target_os = "linux")]
fn log_stats(d: &tweed_io::Driver) {
    let s = d.stats();
    let c = d.node().counters();
    let drops: Vec<String> = c.nonzero_drops().map(|(n, k)| format!("{n}={k}")).collect();
    tracing::info!(
        rounds = s.rounds,
        woken_by_timer = s.wake_timer,
        rx_pod = s.rx_pod,
        tx_pod = s.tx_pod,
        rx_underlay = s.rx_underlay,
        tx_underlay = s.tx_underlay,
        tx_dropped = s.tx_pod_dropped + s.tx_underlay_dropped + s.tx_tun_dropped,
        rx_errors = s.rx_errors,
        unprocessed = s.unprocessed,
        ports_closed = s.ports_closed,
        coalesced_writes = s.tx_pod_coalesced,
        to_peer = c.to_peer,
        from_peer = c.from_peer,
        switched = c.switched,
        fdb_learned = d.node().bridge().fdb().learned_len(),
        arp_entries = d.node().bridge().arp().len(),
        drops = %drops.join(" "),
        "counters"
    );
}

#[cfg(target_os = "linux")]
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: logs written to files stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// The agent drives Linux devices only.
#[cfg(not(target_os = "linux"))]
pub(crate) fn run(_args: &AgentArgs) -> Result<(), Failure> {
    Err(Failure::Input("tweed agent runs on Linux only".into()))
}
