//! `tweed agent`: a node on real devices (pod TAPs, the underlay's UDP socket or interface), from a TOML file.
//!
//! The file's format and the agent are [`tweed_agent`]'s; this module reads the arguments, sets up logging,
//! answers `--check`, turns SIGINT and SIGTERM into the agent's stop and SIGUSR1 into a request for its counters
//! ([`tweed_io::Signals`]), and runs the agent until it stops, which deletes every device it created.

use std::path::PathBuf;

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

/// Reads and checks the file: the file, its warnings.
fn read(args: &AgentArgs) -> Result<(tweed_agent::AgentFile, Vec<String>), Failure> {
    let name = args.config.display();
    let text = std::fs::read_to_string(&args.config).map_err(|e| Failure::Input(format!("cannot read {name}: {e}")))?;
    let input = |e: tweed_agent::ConfigError| Failure::Input(format!("{name}: {e}"));
    let file = tweed_agent::AgentFile::from_toml_str(&text).map_err(input)?;
    let warnings = file.check().map_err(input)?;
    if let Some(s) = args.stats
        && !(1..=MAX_STATS_S).contains(&s)
    {
        return Err(Failure::Input(format!("--stats: {s} is out of range 1 to {MAX_STATS_S} (seconds)")));
    }
    Ok((file, warnings))
}

/// Runs the agent until SIGINT or SIGTERM.
#[cfg(target_os = "linux")]
pub(crate) fn run(args: &AgentArgs) -> Result<(), Failure> {
    use std::time::Duration;

    use tweed_agent::{Agent, AgentError, StatsTrigger, System};

    init_logging();
    let (file, warnings) = read(args)?;
    let name = args.config.display();
    if args.check {
        for w in &warnings {
            println!("{name}: warning: {w}");
        }
        let peers = file.node.as_ref().map_or(0, |n| n.peers.len());
        println!("{name}: ok ({} pods, {peers} peers)", file.pods.len());
        return Ok(());
    }
    if !tweed_io::has_net_admin() {
        return Err(Failure::Input(
            "tweed agent creates TAP devices and raw sockets: it needs CAP_NET_ADMIN (run it as root)".into(),
        ));
    }
    let runtime = |e: tweed_io::Error| Failure::Runtime(e.to_string());
    let failure = |e: AgentError| match e {
        AgentError::Input(m) => Failure::Input(format!("{name}: {m}")),
        AgentError::Runtime(m) => Failure::Runtime(m),
    };
    let stop = tweed_io::Stop::new().map_err(runtime)?;
    let trigger = StatsTrigger::new();
    // Before any other thread starts (the workers, etcd's): they inherit the blocked signals.
    let _signals = tweed_io::Signals::start(stop.clone(), {
        let trigger = trigger.clone();
        move || trigger.request()
    })
    .map_err(runtime)?;
    let agent = Agent::start(&file, &System, stop, &trigger).map_err(failure)?;
    let config = agent.config();
    for w in &config.warnings {
        tracing::warn!("{name}: {w}");
    }
    let backend = format!("{:?}", config.node.backend.kind()).to_lowercase();
    tracing::info!(
        pod_subnet = ?config.node.pod_subnet,
        node_ip = %config.node.underlay.node_ip,
        backend,
        workers = config.workers,
        pods = ?config.ports.pods().zip(&config.pods).map(|(id, p)| {
            format!("{}={}", id.0, p.tap.as_deref().or(p.interface.as_deref()).unwrap_or_default())
        }).collect::<Vec<_>>(),
        peers = config.node.peers.len(),
        "agent running"
    );
    agent.run(args.stats.map(Duration::from_secs)).map_err(failure)?;
    Ok(())
}

#[cfg(target_os = "linux")]
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: logs written to files stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// The agent drives Linux devices only; `--check` works everywhere.
#[cfg(not(target_os = "linux"))]
pub(crate) fn run(args: &AgentArgs) -> Result<(), Failure> {
    let (file, warnings) = read(args)?;
    if args.check {
        let name = args.config.display();
        for w in &warnings {
            println!("{name}: warning: {w}");
        }
        println!("{name}: ok ({} pods)", file.pods.len());
        return Ok(());
    }
    Err(Failure::Input("tweed agent runs on Linux only".into()))
}
