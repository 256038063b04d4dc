//! [`Agent`]: the control side (the shared `tweed_overlay::Control`, the lease and its store) and the workers, run
//! until a [`Stop`] fires.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tweed_control::PeerSync;
use tweed_io::{DriverStats, Stop};
use tweed_overlay::{Control, Counters};

use crate::AgentError;
use crate::config::{AgentConfig, Host};
use crate::file::AgentFile;
use crate::lease::Keeper;
use crate::worker::{Bell, StatsTrigger, WorkerHandle, build_drivers, spawn};

/// How long the control thread waits for the workers' counters when asked for them.
const REPORT_WAIT: Duration = Duration::from_secs(1);

/// The counters of a whole agent: its workers' drivers merged, their nodes summed.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct AgentStats {
    /// The drivers' counters, merged ([`DriverStats::merge`]).
    pub driver: DriverStats,
    /// The nodes' counters, summed by the control ([`Control::counters`]).
    pub node: Counters,
    /// MACs learnt in the fullest of the workers' bridges (each worker has its own, which tell each other what they
    /// learn on pod ports: a sum would count a MAC once per worker).
    pub fdb_learned: usize,
    /// Entries of the fullest of the workers' ARP tables.
    pub arp_entries: usize,
    /// Workers that answered.
    pub workers: usize,
}

/// The lease held and the peers followed: the control side's store end.
struct Leasing {
    keeper: Keeper,
    sync: PeerSync,
    next: Instant,
}

/// A running agent: the control side, which alone writes the node's tables and talks to the store, and its
/// workers, each a thread with a driver over its own node and queues. Dropping it (or [`Agent::run`] ending) stops
/// the workers and deletes every device they created.
pub struct Agent {
    control: Control,
    leasing: Option<Leasing>,
    workers: Vec<WorkerHandle>,
    config: AgentConfig,
    stop: Stop,
    bell: Arc<Bell>,
    generation: u64,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("workers", &self.workers.len()).finish_non_exhaustive()
    }
}

impl Agent {
    /// Starts the agent of `file` on `host`: with a `[store]`, acquires the lease (before the node is built: its
    /// subnet is the node's) and reads the other leases as peers; resolves the file ([`AgentConfig::resolve`]);
    /// creates every worker's devices and starts the workers. `stop` ends them (one handle for all); `stats` asks
    /// for the counters (SIGUSR1's handler holds a clone). Start signal handling before this: the threads it
    /// starts inherit the blocked signals.
    ///
    /// # Errors
    /// [`AgentError::Input`]: the file, the store's network config or a device refused; [`AgentError::Runtime`]:
    /// the store unavailable, a thread or handle not made.
    pub fn start(file: &AgentFile, host: &impl Host, stop: Stop, stats: &StatsTrigger) -> Result<Self, AgentError> {
        let (leased, leasing, first) = match &file.store {
            Some(spec) => {
                let a = Keeper::acquire(spec, file, host)?;
                // Leases outside the network, or of another length than its SubnetLen, never become routes.
                let sync = PeerSync::new(a.leased.subnet).with_network(&a.network);
                let next = Instant::now() + a.keeper.every();
                (Some(a.leased), Some(Leasing { keeper: a.keeper, sync, next }), a.first)
            }
            None => (None, None, None),
        };
        let config = AgentConfig::resolve(file, host, leased.as_ref())?;
        let mut control = Control::new(config.node.clone()).map_err(|e| AgentError::Input(format!("node: {e}")))?;
        let mut leasing = leasing;
        if let (Some(l), Some(snapshot)) = (leasing.as_mut(), first) {
            log_report(&l.sync.start_with(snapshot, &mut control));
            control.publish();
        }
        let drivers = build_drivers(&config, &control)?;
        let bell = stats.0.clone();
        let mut workers = Vec::with_capacity(drivers.len());
        for (i, driver) in drivers.into_iter().enumerate() {
            match spawn(i, driver, &stop, &bell) {
                Ok(w) => workers.push(w),
                Err(e) => {
                    stop.stop();
                    join(&mut workers);
                    return Err(e);
                }
            }
        }
        Ok(Self { control, leasing, workers, config, stop, bell, generation: 0 })
    }

    /// The configuration it runs.
    #[must_use]
    pub const fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// Runs the control side until the stop handle fires (or a worker ends, or the lease is lost): renews the
    /// lease and applies the store's changes to the shared control (published once per round that changed
    /// something), logs the counters when asked and every `stats_interval`. Then stops and joins the workers,
    /// which deletes their devices, and returns the final counters.
    ///
    /// # Errors
    /// [`AgentError::Runtime`]: the lease was lost to another node (the agent must be restarted, as flannel is),
    /// or a worker failed.
    pub fn run(mut self, stats_every: Option<Duration>) -> Result<AgentStats, AgentError> {
        let every = stats_every.or(self.config.stats_interval);
        let mut next_stats = every.map(|d| Instant::now() + d);
        let mut lost = None;
        loop {
            let until = [next_stats, self.leasing.as_ref().map(|l| l.next)].into_iter().flatten().min();
            let rung = self.bell.wait(until);
            if rung.exited > 0 || self.stop.is_stopped() {
                break;
            }
            let now = Instant::now();
            if rung.stats_asked || next_stats.is_some_and(|t| now >= t) {
                self.log_stats();
                next_stats = every.map(|d| Instant::now() + d);
            }
            if let Some(l) = self.leasing.as_mut()
                && Instant::now() >= l.next
            {
                match l.keeper.round() {
                    Ok((news, pause)) => {
                        if let Some(watch) = news {
                            log_report(&l.sync.apply_watch(watch, &mut self.control));
                            self.control.publish();
                        }
                        l.next = Instant::now() + pause;
                    }
                    Err(message) => {
                        lost = Some(AgentError::Runtime(message));
                        break;
                    }
                }
            }
        }
        self.stop.stop();
        let failed = join(&mut self.workers);
        let stats = self.stats_now();
        log_stats(&stats);
        tracing::info!("agent stopped; its devices are deleted");
        match (lost, failed) {
            (Some(e), _) | (None, Some(e)) => Err(e),
            (None, None) => Ok(stats),
        }
    }

    /// The workers' counters as they last published them, summed.
    fn stats_now(&self) -> AgentStats {
        let mut s = AgentStats { node: self.control.counters(), ..AgentStats::default() };
        for w in &self.workers {
            let r = w.report();
            s.driver.merge(&r.stats);
            s.fdb_learned = s.fdb_learned.max(r.fdb_learned);
            s.arp_entries = s.arp_entries.max(r.arp_entries);
            s.workers += 1;
        }
        s
    }

    /// Asks every worker for its counters, waits for their answers (a second at most), logs the sum.
    fn log_stats(&mut self) {
        self.generation += 1;
        for w in &self.workers {
            w.ask(self.generation);
        }
        let deadline = Instant::now() + REPORT_WAIT;
        while Instant::now() < deadline && self.workers.iter().any(|w| w.report().generation < self.generation) {
            // A request meanwhile is served by this answer; a worker's end ends the wait.
            if self.bell.wait(Some(deadline)).exited > 0 {
                break;
            }
        }
        log_stats(&self.stats_now());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.stop();
        join(&mut self.workers);
    }
}

/// Joins the workers' threads; the first failure.
fn join(workers: &mut [WorkerHandle]) -> Option<AgentError> {
    let mut first = None;
    for w in workers {
        let Some(thread) = w.thread.take() else { continue };
        let e = match thread.join() {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => AgentError::Runtime(format!("a worker failed: {e}")),
            Err(_) => AgentError::Runtime("a worker panicked".into()),
        };
        tracing::error!(error = %e, "worker ended");
        first.get_or_insert(e);
    }
    first
}

fn log_report(report: &tweed_control::SyncReport) {
    if !report.is_quiet() {
        tracing::info!(%report, "peers");
    }
}

fn log_stats(stats: &AgentStats) {
    let (s, c) = (&stats.driver, &stats.node);
    let drops: Vec<String> = c.nonzero_drops().map(|(n, k)| format!("{n}={k}")).collect();
    tracing::info!(
        workers = stats.workers,
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
        fdb_learned = stats.fdb_learned,
        arp_entries = stats.arp_entries,
        drops = %drops.join(" "),
        "counters"
    );
}
