//! The agent's control plane: a subnet lease from a store (memory, file, etcd) kept alive, and the other nodes'
//! leases followed as the node's peers.
//!
//! The lease is acquired before the node is built (its subnet is the node's). After that the store is only talked
//! to from a control thread: it renews the lease when due, or at once when the store shows it gone (etcd expired it
//! while the store was away, someone deleted it), and reads the store's changes every `poll_ms`, retrying with a
//! growing pause (up to 30 s, and at most a quarter of the time the lease has left) while the store does not
//! answer. Reading the changes is cheap: the etcd store answers from its watch stream and the file store from
//! memory while the file is unchanged; the whole store is read only at start and after a reset. What it reads goes
//! to the data path through a channel, and the driver's thread applies it to the node between rounds
//! ([`Control::tick`], a channel read when nothing changed), so a slow or absent store never holds up a packet.
//! The thread wakes the driver ([`tweed_io::Waker`]) only when it sent something: its own rounds (renewals,
//! reads that found nothing new) never wake the data path.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use tweed_control::store::{Snapshot, Watch};
use tweed_control::sync::backend_type;
use tweed_control::{LeaseStore, Membership, NetworkConfig, PeerSync, SubnetEnv, SubnetManager, lease_attrs};
use tweed_io::agent::{AgentConfig, StoreKind, StoreSpec};
use tweed_overlay::Node;

use crate::Failure;

/// What the control thread tells the data path.
enum Update {
    /// The store's changes, in the order read.
    Watch(Watch),
    /// The lease ran out and another node took the subnet: the agent must stop.
    Lost(String),
}

/// A lease held and peers followed: the data path's end.
pub(crate) struct Control {
    sync: PeerSync,
    /// The snapshot read at start, applied at the first tick.
    first: Option<Snapshot>,
    updates: Receiver<Update>,
    /// Dropped to stop the thread.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The control thread's state.
struct Worker {
    membership: Membership<Box<dyn LeaseStore>>,
    /// The revision to read changes from; `None` until a snapshot was read.
    since: Option<u64>,
    every: Duration,
    backoff: Duration,
    updates: Sender<Update>,
    /// Wakes the driver when `updates` has something for it.
    waker: tweed_io::Waker,
}

fn open(spec: &StoreSpec) -> Result<Box<dyn LeaseStore>, Failure> {
    match spec.kind {
        StoreKind::File => {
            let path = spec.path.clone().ok_or_else(|| Failure::Input("store.path: missing".into()))?;
            Ok(Box::new(tweed_control::FileStore::new(path)))
        }
        #[cfg(feature = "etcd")]
        StoreKind::Etcd => {
            let options = tweed_control::EtcdOptions {
                connect_timeout: Duration::from_millis(500),
                request_timeout: Duration::from_millis(500),
                ..tweed_control::EtcdOptions::default()
            };
            let store = tweed_control::EtcdStore::connect(&spec.endpoints, &spec.prefix, options)
                .map_err(|e| Failure::Runtime(format!("store: {e}")))?;
            Ok(Box::new(store))
        }
        #[cfg(not(feature = "etcd"))]
        StoreKind::Etcd => Err(Failure::Input(
            "store.kind = \"etcd\": this tweed was built without etcd (cargo build --features etcd; needs protoc)"
                .into(),
        )),
    }
}

impl Control {
    /// Opens the store, writes the network config if it has none, checks that its backend is the node's, acquires
    /// a lease (the same subnet as before when this node held one; `config.node.pod_subnet` becomes it), reads the
    /// other leases, and starts the control thread, which wakes the driver through `waker` when it has news.
    pub(crate) fn start(spec: &StoreSpec, config: &mut AgentConfig, waker: tweed_io::Waker) -> Result<Self, Failure> {
        if !config.pod_subnet_from_store {
            return Err(Failure::Input("node.pod_subnet: leave it out with a [store], which leases one".into()));
        }
        let store = open(spec)?;
        let unavailable = |e: tweed_control::StoreError| Failure::Runtime(format!("store: {e}"));
        if store.get_config().map_err(unavailable)?.is_none() {
            let text = spec.network.as_deref().ok_or_else(|| {
                Failure::Input(format!(
                    "the store holds no network config at {}/config: put flannel's JSON there, or give store.network",
                    spec.prefix
                ))
            })?;
            NetworkConfig::from_json(text).map_err(|e| Failure::Input(format!("store.network: {e}")))?;
            store.put_config(text).map_err(unavailable)?;
        }
        let manager = SubnetManager::from_store(store)
            .map_err(|e| Failure::Input(format!("store: {e}")))?
            .with_ttl(Duration::from_secs(spec.ttl_s.max(1)));
        let theirs = manager.config().backend.backend_type;
        let ours = backend_type(config.node.backend.kind());
        if theirs != ours {
            return Err(Failure::Input(format!(
                "node.backend: the network config in the store says {theirs}, this node is {ours}"
            )));
        }
        let previous = spec.subnet_file.as_deref().and_then(|path| match SubnetEnv::read(path) {
            Ok(env) => env.map(|e| e.subnet),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "subnet file unreadable; not asking for its subnet");
                None
            }
        });
        let network = manager.config().network;
        if let Some(host) = &mut config.host
            && host.routes.is_empty()
        {
            host.routes.push(network);
        }
        let network_config = manager.config().clone();
        let mut membership = Membership::new(manager, lease_attrs(&config.node)).with_previous(previous);
        let lease = membership.acquire(SystemTime::now()).map_err(|e| Failure::Runtime(format!("store: {e}")))?.clone();
        config.node.pod_subnet = Some(lease.subnet);
        tracing::info!(subnet = %lease.subnet, "lease acquired");
        if let Some(path) = &spec.subnet_file {
            let mtu = u32::from(config.node.inner_mtu());
            let env = SubnetEnv { network, subnet: lease.subnet, mtu, ip_masq: false };
            env.write(path).map_err(|e| Failure::Runtime(format!("store.subnet_file: {}: {e}", path.display())))?;
        }
        let now = SystemTime::now();
        let first = match membership.manager().store().leases(now) {
            Ok(snapshot) => Some(snapshot),
            Err(e) => {
                tracing::warn!(error = %e, "lease store unavailable; peers follow when it answers");
                None
            }
        };
        let (updates_tx, updates) = mpsc::channel();
        let (stop, stop_rx) = mpsc::channel();
        let worker = Worker {
            membership,
            since: first.as_ref().map(|s| s.revision),
            every: Duration::from_millis(spec.poll_ms.max(10)),
            backoff: Duration::ZERO,
            updates: updates_tx,
            waker,
        };
        let thread = std::thread::Builder::new()
            .name("tweed-control".into())
            .spawn(move || worker.run(&stop_rx))
            .map_err(|e| Failure::Runtime(format!("cannot start the control thread: {e}")))?;
        // Leases outside the network, or of another length than its SubnetLen, never become routes.
        let sync = PeerSync::new(lease.subnet).with_network(&network_config);
        Ok(Self { sync, first, updates, stop: Some(stop), thread: Some(thread) })
    }

    /// Applies what the control thread read since the last call to the node's peers; never waits.
    ///
    /// # Errors
    /// The lease ran out (the store was away longer than the TTL) and another node took the subnet: this node's
    /// pods are numbered in a subnet it no longer owns, so the agent must stop (flannel exits too) and be restarted,
    /// which leases another.
    pub(crate) fn tick(&mut self, node: &mut Node) -> Result<(), Failure> {
        if let Some(snapshot) = self.first.take() {
            log_report(&self.sync.start_with(snapshot, node));
        }
        loop {
            match self.updates.try_recv() {
                Ok(Update::Watch(watch)) => log_report(&self.sync.apply_watch(watch, node)),
                Ok(Update::Lost(message)) => return Err(Failure::Runtime(message)),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return Ok(()),
            }
        }
    }
}

impl Drop for Control {
    /// Stops the control thread (it is between two store calls within a request timeout) and waits for it.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn log_report(report: &tweed_control::SyncReport) {
    if !report.is_quiet() {
        tracing::info!(%report, "peers");
    }
}

impl Worker {
    /// Renews and reads until `stop` says so (or its sender is gone), or the lease is lost.
    fn run(mut self, stop: &Receiver<()>) {
        let mut pause = self.every;
        loop {
            match stop.recv_timeout(pause) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
            match self.round() {
                Ok(next) => pause = next,
                Err(message) => {
                    let _ = self.updates.send(Update::Lost(message));
                    self.waker.wake();
                    return;
                }
            }
        }
    }

    /// Renews the lease (when it is due, or when the store shows it gone) and reads the store's changes; the pause
    /// before the next round, or why the lease is lost.
    fn round(&mut self) -> Result<Duration, String> {
        let now = SystemTime::now();
        let mut failed = false;
        if self.membership.due(now) {
            failed |= self.renew(now)?;
        }
        let store = self.membership.manager().store();
        let read = match self.since {
            Some(since) => store.watch(since, now),
            None => store.leases(now).map(Watch::Reset),
        };
        match read {
            Ok(watch) => {
                let (revision, news) = match &watch {
                    Watch::Events { events, revision, ignored } => {
                        (*revision, !events.is_empty() || !ignored.is_empty())
                    }
                    Watch::Reset(snapshot) => (snapshot.revision, true),
                };
                self.since = Some(revision);
                let lost = self.membership.lost_in(&watch);
                if news {
                    if self.updates.send(Update::Watch(watch)).is_err() {
                        // The data path is gone; the stop signal follows.
                        return Ok(self.every);
                    }
                    self.waker.wake();
                }
                if lost {
                    // Our own lease left the store (etcd expired it while it could not be renewed, or it was deleted):
                    // written again now, before another node takes the subnet.
                    tracing::warn!(subnet = ?self.membership.subnet(), "our lease is gone from the store; renewing");
                    failed |= self.renew(now)?;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "lease store unavailable; peers unchanged");
                failed = true;
            }
        }
        self.backoff = if failed {
            (self.backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(30))
        } else {
            Duration::ZERO
        };
        // While the store is away, the lease is retried at least four times before it would run out.
        let left = self.membership.lease().and_then(|l| l.expiration.duration_since(SystemTime::now()).ok());
        Ok(self.every.max(left.map_or(self.backoff, |left| self.backoff.min(left / 4))))
    }

    /// Renews the lease: `Ok(true)` when the store failed (try again later), or why the lease is lost for good.
    fn renew(&mut self, now: SystemTime) -> Result<bool, String> {
        let held = self.membership.subnet();
        let renewed = self.membership.renew(now).map(|l| l.subnet);
        match renewed {
            Ok(subnet) => {
                tracing::info!(%subnet, "lease renewed");
                Ok(false)
            }
            Err(e) if self.membership.lease().is_none() => {
                let subnet = held.map_or_else(String::new, |s| s.to_string());
                tracing::error!(subnet, error = %e, "lease lost to another node");
                Err(format!(
                    "the lease on {subnet} ran out and another node took the subnet ({e}); restart the agent to lease \
                     another"
                ))
            }
            Err(e) => {
                tracing::warn!(error = %e, "lease renewal failed; retrying");
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use core::net::Ipv4Addr;

    use tweed_control::config::BackendType;
    use tweed_control::{LeaseAttrs, MemoryStore};

    use super::*;

    /// A driver (no ports but a loopback underlay) whose waker is `waker`.
    fn driver_woken_by(waker: &tweed_io::Waker) -> tweed_io::Driver {
        use tweed_packet::PortId;
        use tweed_wire::ethernet::MacAddr;
        let node = tweed_overlay::NodeBuilder::new(
            "10.244.1.0/24".parse().expect("subnet"),
            Ipv4Addr::LOCALHOST,
            MacAddr::new(2, 0, 0, 0, 1, 1),
        )
        .vxlan(tweed_overlay::VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, 1)))
        .socket_port(PortId(65000))
        .build()
        .expect("node");
        let addr = core::net::SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        let underlay =
            tweed_io::Underlay::Udp(tweed_io::UdpPort::bind(addr, tweed_io::UdpOptions::default()).expect("bind"));
        let mut d =
            tweed_io::Driver::new(node, Vec::new(), underlay, None, tweed_io::DriverConfig::default()).expect("driver");
        d.set_waker(waker.clone()).expect("waker");
        d
    }

    /// Whether the driver was woken since the last call (a round that does not wait says).
    fn woken(d: &mut tweed_io::Driver) -> bool {
        let before = d.stats().wake_handle;
        d.round(Some(Duration::ZERO)).expect("round");
        d.stats().wake_handle > before
    }

    /// Issue 12, finding 4: the control thread sees its own lease gone from the store (etcd expired it while the
    /// node was cut off, someone deleted it) and writes it again in the same round, long before it was due.
    /// Issue 14: its rounds wake the data path only when they send it something.
    #[test]
    fn a_round_writes_back_our_lease_when_it_left_the_store() {
        let store = MemoryStore::new();
        store.put_config(r#"{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}"#).expect("put");
        let boxed: Box<dyn LeaseStore> = Box::new(store.clone());
        let manager = SubnetManager::from_store(boxed).expect("config").with_ttl(Duration::from_secs(3600));
        let ip = Ipv4Addr::new(192, 168, 0, 1);
        let mut membership = Membership::new(manager, LeaseAttrs::new(ip, BackendType::Udp));
        let subnet = membership.acquire(SystemTime::now()).expect("room").subnet;
        let since = store.leases(SystemTime::now()).expect("read").revision;
        let (updates, read) = mpsc::channel();
        let mut worker = Worker {
            membership,
            since: Some(since),
            every: Duration::from_millis(10),
            backoff: Duration::ZERO,
            updates,
            waker: tweed_io::Waker::new().expect("eventfd"),
        };
        let mut driver = driver_woken_by(&worker.waker);
        worker.round().expect("nothing changed");
        assert!(read.try_recv().is_err(), "nothing to send");
        assert!(!woken(&mut driver), "a round with no news does not wake the data path");
        store.release(subnet, ip, SystemTime::now()).expect("deleted behind its back");
        worker.round().expect("the subnet is free: not lost");
        assert!(woken(&mut driver), "news wake the data path");
        assert!(!woken(&mut driver), "once");
        let holders: Vec<_> = store
            .leases(SystemTime::now())
            .expect("read")
            .leases
            .iter()
            .map(|l| (l.subnet, l.attrs.public_ip))
            .collect();
        assert_eq!(holders, vec![(subnet, ip)], "written again");
        assert!(matches!(read.try_recv(), Ok(Update::Watch(_))), "the removal still reaches the data path");
    }
}
