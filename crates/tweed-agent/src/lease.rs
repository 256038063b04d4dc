//! The agent's lease: a subnet from a store (memory, file, etcd) acquired before the node is built, kept alive, and
//! the other nodes' leases read as the node's peers.
//!
//! Only the control thread talks to the store. It renews the lease when due, or at once when the store shows it
//! gone (etcd expired it while the store was away, someone deleted it), and reads the store's changes every
//! `poll_ms`, retrying with a growing pause (up to 30 s, and at most a quarter of the time the lease has left)
//! while the store does not answer. Reading the changes is cheap: the etcd store answers from its watch stream and
//! the file store from memory while the file is unchanged; the whole store is read only at start and after a
//! reset. What it reads is applied to the shared `tweed_overlay::Control` and published; the workers see it at
//! their next batch, so a slow or absent store never holds up a packet and an idle store never wakes the data path.

use std::time::{Duration, SystemTime};

use tweed_control::store::{Snapshot, Watch};
use tweed_control::sync::backend_type;
use tweed_control::{LeaseStore, Membership, NetworkConfig, SubnetEnv, SubnetManager};

use crate::config::{Host, Leased};
use crate::file::{AgentFile, StoreKind, StoreSpec};
use crate::{AgentError, ConfigError};

/// A lease held: renewed and the store's changes read, a round at a time.
pub(crate) struct Keeper {
    membership: Membership<Box<dyn LeaseStore>>,
    /// The revision to read changes from; `None` until a snapshot was read.
    since: Option<u64>,
    every: Duration,
    backoff: Duration,
}

/// What acquiring the lease gave.
pub(crate) struct Acquired {
    pub(crate) keeper: Keeper,
    pub(crate) leased: Leased,
    pub(crate) network: NetworkConfig,
    /// The leases read at start, if the store answered.
    pub(crate) first: Option<Snapshot>,
}

fn open(spec: &StoreSpec) -> Result<Box<dyn LeaseStore>, AgentError> {
    match spec.kind {
        StoreKind::File => {
            let path = spec.path.clone().ok_or_else(|| AgentError::Input("store.path: missing".into()))?;
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
                .map_err(|e| AgentError::Runtime(format!("store: {e}")))?;
            Ok(Box::new(store))
        }
        #[cfg(not(feature = "etcd"))]
        StoreKind::Etcd => Err(AgentError::Input(
            "store.kind = \"etcd\": this tweed was built without etcd (cargo build --features etcd; needs protoc)"
                .into(),
        )),
    }
}

impl From<ConfigError> for AgentError {
    fn from(e: ConfigError) -> Self {
        Self::Input(e.0)
    }
}

impl Keeper {
    /// Opens the store, writes the network config if it has none, checks that its backend is the node's, acquires
    /// a lease (the same subnet as before when this node held one), writes the subnet file, and reads the other
    /// leases.
    pub(crate) fn acquire(spec: &StoreSpec, file: &AgentFile, host: &impl Host) -> Result<Acquired, AgentError> {
        if file.node.as_ref().is_some_and(|n| n.pod_subnet.is_some()) {
            return Err(AgentError::Input("node.pod_subnet: leave it out with a [store], which leases one".into()));
        }
        let attrs = file.lease_attrs(host)?;
        let inner_mtu = file.inner_mtu()?;
        let store = open(spec)?;
        let unavailable = |e: tweed_control::StoreError| AgentError::Runtime(format!("store: {e}"));
        if store.get_config().map_err(unavailable)?.is_none() {
            let text = spec.network.as_deref().ok_or_else(|| {
                AgentError::Input(format!(
                    "the store holds no network config at {}/config: put flannel's JSON there, or give store.network",
                    spec.prefix
                ))
            })?;
            NetworkConfig::from_json(text).map_err(|e| AgentError::Input(format!("store.network: {e}")))?;
            store.put_config(text).map_err(unavailable)?;
        }
        let manager = SubnetManager::from_store(store)
            .map_err(|e| AgentError::Input(format!("store: {e}")))?
            .with_ttl(Duration::from_secs(spec.ttl_s.max(1)));
        let theirs = manager.config().backend.backend_type;
        let ours = backend_type(file.parts()?.backend.kind());
        if theirs != ours {
            return Err(AgentError::Input(format!(
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
        let network = manager.config().clone();
        let mut membership = Membership::new(manager, attrs).with_previous(previous);
        let lease =
            membership.acquire(SystemTime::now()).map_err(|e| AgentError::Runtime(format!("store: {e}")))?.clone();
        tracing::info!(subnet = %lease.subnet, "lease acquired");
        if let Some(path) = &spec.subnet_file {
            let env =
                SubnetEnv { network: network.network, subnet: lease.subnet, mtu: u32::from(inner_mtu), ip_masq: false };
            env.write(path).map_err(|e| AgentError::Runtime(format!("store.subnet_file: {}: {e}", path.display())))?;
        }
        let first = match membership.manager().store().leases(SystemTime::now()) {
            Ok(snapshot) => Some(snapshot),
            Err(e) => {
                tracing::warn!(error = %e, "lease store unavailable; peers follow when it answers");
                None
            }
        };
        let keeper = Self {
            membership,
            since: first.as_ref().map(|s| s.revision),
            every: Duration::from_millis(spec.poll_ms.max(10)),
            backoff: Duration::ZERO,
        };
        let leased = Leased { subnet: lease.subnet, network: network.network };
        Ok(Acquired { keeper, leased, network, first })
    }

    /// Renews the lease (when it is due, or when the store shows it gone) and reads the store's changes: what
    /// changed (`None`: nothing), and the pause before the next round; or why the lease is lost.
    pub(crate) fn round(&mut self) -> Result<(Option<Watch>, Duration), String> {
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
        let mut news = None;
        match read {
            Ok(watch) => {
                let (revision, changed) = match &watch {
                    Watch::Events { events, revision, ignored } => {
                        (*revision, !events.is_empty() || !ignored.is_empty())
                    }
                    Watch::Reset(snapshot) => (snapshot.revision, true),
                };
                self.since = Some(revision);
                let lost = self.membership.lost_in(&watch);
                if changed {
                    news = Some(watch);
                }
                if lost {
                    // Our own lease left the store (etcd expired it while it could not be renewed, or it was
                    // deleted): written again now, before another node takes the subnet.
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
        Ok((news, self.every.max(left.map_or(self.backoff, |left| self.backoff.min(left / 4)))))
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

    /// The pause between rounds when the store answers.
    pub(crate) const fn every(&self) -> Duration {
        self.every
    }
}

#[cfg(test)]
mod tests {
    use core::net::Ipv4Addr;

    use tweed_control::config::BackendType;
    use tweed_control::{LeaseAttrs, MemoryStore};

    use super::*;

    /// Issue 12, finding 4: the control thread sees its own lease gone from the store (etcd expired it while the
    /// node was cut off, someone deleted it) and writes it again in the same round, long before it was due.
    /// Issue 14: a round hands the data path something only when the store changed.
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
        let mut keeper =
            Keeper { membership, since: Some(since), every: Duration::from_millis(10), backoff: Duration::ZERO };
        let (news, pause) = keeper.round().expect("nothing changed");
        assert!(news.is_none(), "nothing to apply");
        assert_eq!(pause, Duration::from_millis(10));
        store.release(subnet, ip, SystemTime::now()).expect("deleted behind its back");
        let (news, _) = keeper.round().expect("the subnet is free: not lost");
        let holders: Vec<_> = store
            .leases(SystemTime::now())
            .expect("read")
            .leases
            .iter()
            .map(|l| (l.subnet, l.attrs.public_ip))
            .collect();
        assert_eq!(holders, vec![(subnet, ip)], "written again");
        assert!(matches!(news, Some(Watch::Events { .. })), "the removal still reaches the data path");
        assert!(keeper.round().expect("quiet").0.is_some(), "our own write back is news too");
        assert!(keeper.round().expect("quiet").0.is_none(), "then nothing");
    }
}
