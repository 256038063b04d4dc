//! `tweed agent`: a node on real devices (pod TAPs, the underlay's UDP socket or interface), from a TOML file.

use std::path::PathBuf;

use clap::Args;

use crate::Failure;

/// `tweed agent`.
#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The node's configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

/// Runs the agent until SIGINT or SIGTERM.
pub(crate) fn run(args: &AgentArgs) -> Result<(), Failure> {
    Err(Failure::Runtime(format!("{}: the agent is being built (tweed-io)", args.config.display())))
}
