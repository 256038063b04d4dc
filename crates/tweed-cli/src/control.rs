//! The agent's control plane: a subnet lease from a store (memory, file, etcd) kept alive, and the other nodes'
//! leases followed as the node's peers, between rounds of the driver.
//!
//! The store is read from the driver's thread every `poll_ms`; a store that does not answer is retried with a
//! growing pause (up to 30 s, and at most a quarter of the time the lease has left) so that an outage costs the
//! data path at most one request timeout per pause. The etcd store is given short timeouts for that reason.

use std::time::{Duration, Instant, SystemTime};

use tweed_control::sync::backend_type;
use tweed_control::{LeaseStore, Membership, NetworkConfig, PeerSync, SubnetEnv, SubnetManager, lease_attrs};
use tweed_io::agent::{AgentConfig, StoreKind, StoreSpec};
use tweed_overlay::Node;

use crate::Failure;

/// A lease held and peers followed.
pub(crate) struct Control {
    membership: Membership<Box<dyn LeaseStore>>,
    sync: PeerSync,
    every: Duration,
    next: Instant,
    backoff: Duration,
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
    /// Opens the store, writes the network config if it has none, checks that its backend is the node's, and
    /// acquires a lease (the same subnet as before when this node held one): `config.node.pod_subnet` becomes it.
    pub(crate) fn start(spec: &StoreSpec, config: &mut AgentConfig) -> Result<Self, Failure> {
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
        let mut membership = Membership::new(manager, lease_attrs(&config.node)).with_previous(previous);
        let lease = membership.acquire(SystemTime::now()).map_err(|e| Failure::Runtime(format!("store: {e}")))?;
        config.node.pod_subnet = lease.subnet;
        tracing::info!(subnet = %lease.subnet, "lease acquired");
        if let Some(path) = &spec.subnet_file {
            let mtu = u32::from(config.node.underlay.mtu.saturating_sub(config.node.backend.overhead()));
            let env = SubnetEnv { network, subnet: lease.subnet, mtu, ip_masq: false };
            env.write(path).map_err(|e| Failure::Runtime(format!("store.subnet_file: {}: {e}", path.display())))?;
        }
        let sync = PeerSync::new(lease.subnet);
        let every = Duration::from_millis(spec.poll_ms.max(10));
        Ok(Self { membership, sync, every, next: Instant::now(), backoff: Duration::ZERO })
    }

    /// Renews the lease when it is due, and applies the store's changes to the node's peers; at most every
    /// `poll_ms`, and less often while the store fails.
    ///
    /// # Errors
    /// The lease ran out (the store was away longer than the TTL) and another node took the subnet: this node's
    /// pods are numbered in a subnet it no longer owns, so the agent must stop (flannel exits too) and be restarted,
    /// which leases another.
    pub(crate) fn tick(&mut self, node: &mut Node) -> Result<(), Failure> {
        if Instant::now() < self.next {
            return Ok(());
        }
        let now = SystemTime::now();
        let mut failed = false;
        if self.membership.due(now) {
            let held = self.membership.subnet();
            let renewed = self.membership.renew(now).map(|l| l.subnet);
            match renewed {
                Ok(subnet) => tracing::info!(%subnet, "lease renewed"),
                Err(e) if self.membership.lease().is_none() => {
                    let subnet = held.map_or_else(String::new, |s| s.to_string());
                    tracing::error!(subnet, error = %e, "lease lost to another node");
                    return Err(Failure::Runtime(format!(
                        "the lease on {subnet} ran out and another node took the subnet ({e}); restart the agent to \
                         lease another"
                    )));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lease renewal failed; retrying");
                    failed = true;
                }
            }
        }
        match self.sync.poll(self.membership.manager().store(), node, now) {
            Ok(report) if !report.is_quiet() => tracing::info!(%report, "peers"),
            Ok(_) => {}
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
        let pause = left.map_or(self.backoff, |left| self.backoff.min(left / 4));
        self.next = Instant::now() + self.every.max(pause);
        Ok(())
    }
}
