//! Subnet allocation on top of a [`LeaseStore`]: which subnet a node gets, keeps, renews and loses.
//!
//! [`SubnetManager::acquire`] follows flannel's `LocalManager.tryAcquireLease` (`pkg/subnet/etcd/local_manager.go`):
//!
//! 1. a live lease whose `PublicIP` is this node's is the node's own from before a restart: if the config still
//!    allows it (length `SubnetLen`, between `SubnetMin` and `SubnetMax`) it is renewed and kept, otherwise
//!    released;
//! 2. otherwise, when the caller knows the node's previous subnet (flannel's `--subnet-file`; see
//!    [`SubnetManager::acquire_preferring`]) and it is still free and allowed, the node takes it again;
//! 3. otherwise the node takes a free subnet: walking from `SubnetMin` to `SubnetMax`, the first 100 subnets that
//!    overlap no live lease are candidates, and one of them is picked. flannel picks at random; tweed ranks the
//!    candidates by a hash of the node's public IP, the subnet and the attempt number (rendezvous hashing) and takes
//!    the highest. Racing nodes mostly try different subnets, every run is reproducible, and a node whose lease ran
//!    out gets the same subnet back as long as nobody took it, whatever happened to the other leases meanwhile;
//! 4. the store's atomic create-if-absent decides races: the loser reads the leases again and retries.
//!
//! When no subnet is free the answer is [`AllocError::Exhausted`]. A lease lives for the TTL (24 hours by default,
//! settable for tests); [`SubnetManager::renew_at`] says when to renew, and a node that stops renewing loses the
//! subnet once the TTL has passed: it is free for any node after that.
//!
//! Not carried over from flannel: reservations (leases written by hand without a TTL).

use core::fmt;
use core::time::Duration;
use std::time::SystemTime;

use ipnet::Ipv4Net;

use crate::cidr::Ipv4Cidr;
use crate::config::{ConfigError, NetworkConfig};
use crate::lease::{DEFAULT_TTL, Lease, LeaseAttrs};
use crate::store::{LeaseStore, Snapshot, StoreError};

/// How many free subnets are candidates for a random pick (flannel's limit).
pub const CANDIDATES: usize = 100;

/// How many times a node retries after losing a race for a subnet before giving up.
pub const DEFAULT_ATTEMPTS: usize = 64;

/// flannel's default `--subnet-lease-renew-margin`: renew an hour before expiration.
pub const DEFAULT_RENEW_MARGIN: Duration = Duration::from_secs(60 * 60);

/// Why a node could not get or keep a subnet.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AllocError {
    /// Every subnet between `SubnetMin` and `SubnetMax` is leased.
    Exhausted {
        /// `SubnetMin`, as a subnet.
        first: Ipv4Net,
        /// `SubnetMax`, as a subnet.
        last: Ipv4Net,
        /// How many subnets that range holds, all taken.
        count: u64,
    },
    /// Other nodes won the race for a subnet this many times in a row.
    Contention {
        /// Attempts made.
        attempts: usize,
    },
    /// The store holds no network config.
    NoConfig,
    /// The stored network config is invalid.
    Config(ConfigError),
    /// The store failed.
    Store(StoreError),
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exhausted { first, last, count } => write!(
                f,
                "out of subnets: all {count} subnets from {first} to {last} are leased; widen SubnetMin..SubnetMax or \
                 the Network, use a longer SubnetLen, or release leases of nodes that are gone"
            ),
            Self::Contention { attempts } => {
                write!(f, "lost the race for a subnet {attempts} times in a row; try again")
            }
            Self::NoConfig => f.write_str("the lease store holds no network config: put one first"),
            Self::Config(e) => write!(f, "stored network config: {e}"),
            Self::Store(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for AllocError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for AllocError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<ConfigError> for AllocError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

/// splitmix64: a well-mixed hash of one word, enough to spread racing nodes over the candidates.
const fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The candidate `attrs`' node tries on `attempt`: the one with the highest hash of (public IP, attempt, subnet).
/// A node's first choice depends only on which candidates are free, not on their positions, so it stays the same
/// when other subnets come and go.
fn rank(attrs: &LeaseAttrs, attempt: usize, free: &[Ipv4Net]) -> Option<Ipv4Net> {
    let seed = mix((u64::from(attrs.public_ip.to_bits()) << 32) | attempt as u64);
    free.iter()
        .copied()
        .max_by_key(|n| mix(seed ^ u64::from(n.network().to_bits()) ^ (u64::from(n.prefix_len()) << 32)))
}

/// Hands out the subnets of one network config from one store.
///
/// ```
/// use core::time::Duration;
/// use std::time::SystemTime;
/// use tweed_control::alloc::SubnetManager;
/// use tweed_control::config::{BackendType, NetworkConfig};
/// use tweed_control::lease::LeaseAttrs;
/// use tweed_control::store::MemoryStore;
///
/// let config = NetworkConfig::from_json(r#"{"Network": "10.244.0.0/16", "Backend": {"Type": "host-gw"}}"#)?;
/// let manager = SubnetManager::new(MemoryStore::new(), config);
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
/// let node = LeaseAttrs::new("192.168.0.1".parse()?, BackendType::HostGw);
/// let lease = manager.acquire(&node, now)?;
/// assert!(manager.config().is_compatible(&lease.subnet));
/// // After a restart the node gets the same subnet back.
/// assert_eq!(manager.acquire(&node, now + Duration::from_secs(5))?.subnet, lease.subnet);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct SubnetManager<S> {
    store: S,
    config: NetworkConfig,
    ttl: Duration,
    renew_margin: Duration,
    attempts: usize,
}

impl<S: LeaseStore> SubnetManager<S> {
    /// A manager handing out `config`'s subnets from `store`, with a 24-hour TTL.
    #[must_use]
    pub fn new(store: S, config: NetworkConfig) -> Self {
        Self { store, config, ttl: DEFAULT_TTL, renew_margin: DEFAULT_RENEW_MARGIN, attempts: DEFAULT_ATTEMPTS }
    }

    /// A manager for the network config held in `store` (the etcd way: the config lives beside the leases).
    pub fn from_store(store: S) -> Result<Self, AllocError> {
        let text = store.get_config()?.ok_or(AllocError::NoConfig)?;
        let config = NetworkConfig::from_json(&text)?;
        Ok(Self::new(store, config))
    }

    /// The same manager with leases living `ttl` (tests use seconds).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The same manager renewing `margin` before expiration (see [`SubnetManager::renew_at`]).
    #[must_use]
    pub fn with_renew_margin(mut self, margin: Duration) -> Self {
        self.renew_margin = margin;
        self
    }

    /// The same manager giving up after `attempts` lost races (at least 1).
    #[must_use]
    pub fn with_attempts(mut self, attempts: usize) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The network config.
    #[must_use]
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The lease TTL.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// When to renew `lease`: the renew margin (an hour) before it expires, or half the TTL before when that is
    /// shorter (so a short test TTL still renews in time).
    #[must_use]
    pub fn renew_at(&self, lease: &Lease) -> SystemTime {
        lease.renew_at(self.renew_margin.min(self.ttl / 2))
    }

    /// Up to `limit` free subnets of the config, lowest first, given the live leases in `snapshot`.
    #[must_use]
    pub fn free_subnets(&self, snapshot: &Snapshot, limit: usize) -> Vec<Ipv4Net> {
        free_subnets(&self.config, snapshot.leases.iter().map(|l| l.subnet), limit)
    }

    /// Gets this node (`attrs.public_ip`) a subnet: its own live lease if it has one the config still allows, else
    /// a free one.
    pub fn acquire(&self, attrs: &LeaseAttrs, now: SystemTime) -> Result<Lease, AllocError> {
        self.acquire_preferring(attrs, None, now)
    }

    /// [`SubnetManager::acquire`], trying `previous` (the subnet the node held before, as flannel reads it from its
    /// `--subnet-file`) before the other free subnets when the node has no live lease: a node whose lease expired
    /// while it was down gets its subnet back unless another node took it. A `previous` the config does not allow
    /// any more is ignored.
    pub fn acquire_preferring(
        &self,
        attrs: &LeaseAttrs,
        previous: Option<Ipv4Net>,
        now: SystemTime,
    ) -> Result<Lease, AllocError> {
        let previous = previous.filter(|p| self.config.is_compatible(p));
        for attempt in 0..self.attempts {
            let mut snapshot = self.store.leases(now)?;
            if let Some(own) = snapshot.leases.iter().find(|l| l.attrs.public_ip == attrs.public_ip).cloned() {
                if self.config.is_compatible(&own.subnet) {
                    match self.store.renew(own.subnet, attrs, self.ttl, now) {
                        Ok(lease) => return Ok(lease),
                        // Lapsed and taken between the read and the renewal: pick another below.
                        Err(StoreError::Taken { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                self.store.release(own.subnet, attrs.public_ip, now)?;
                snapshot.leases.retain(|l| l.subnet != own.subnet);
            }
            if let Some(prev) = previous
                .filter(|p| !snapshot.leases.iter().any(|l| Ipv4Cidr::from(l.subnet).overlaps(&Ipv4Cidr::from(*p))))
            {
                match self.store.acquire(prev, attrs, self.ttl, now) {
                    Ok(lease) => return Ok(lease),
                    Err(StoreError::Taken { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let free = self.free_subnets(&snapshot, CANDIDATES);
            let Some(pick) = rank(attrs, attempt, &free) else { return Err(self.exhausted()) };
            match self.store.acquire(pick, attrs, self.ttl, now) {
                Ok(lease) => return Ok(lease),
                Err(StoreError::Taken { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(AllocError::Contention { attempts: self.attempts })
    }

    /// Extends `lease` by the TTL from `now`. Fails with [`StoreError::Taken`] (inside [`AllocError::Store`]) when
    /// the lease lapsed and another node has taken the subnet: the node has lost it and must [`acquire`] again.
    ///
    /// [`acquire`]: SubnetManager::acquire
    pub fn renew(&self, lease: &Lease, now: SystemTime) -> Result<Lease, AllocError> {
        Ok(self.store.renew(lease.subnet, &lease.attrs, self.ttl, now)?)
    }

    /// Gives `lease` back.
    pub fn release(&self, lease: &Lease, now: SystemTime) -> Result<(), AllocError> {
        Ok(self.store.release(lease.subnet, lease.attrs.public_ip, now)?)
    }

    fn exhausted(&self) -> AllocError {
        let len = self.config.subnet_len;
        AllocError::Exhausted {
            first: Ipv4Net::new(self.config.subnet_min, len).unwrap_or_default(),
            last: Ipv4Net::new(self.config.subnet_max, len).unwrap_or_default(),
            count: self.config.subnet_count(),
        }
    }
}

/// Up to `limit` subnets of `config` (length `SubnetLen`, from `SubnetMin` to `SubnetMax`) overlapping none of
/// `taken`, lowest first. Runs in time linear in the number of leases plus the subnets visited, skipping over big
/// leases instead of walking through them.
#[must_use]
pub fn free_subnets(config: &NetworkConfig, taken: impl IntoIterator<Item = Ipv4Net>, limit: usize) -> Vec<Ipv4Net> {
    let size = 1u64 << (32 - u32::from(config.subnet_len));
    let mut spans: Vec<(u64, u64)> =
        taken.into_iter().map(|n| (u64::from(n.network().to_bits()), u64::from(n.broadcast().to_bits()))).collect();
    spans.sort_unstable();
    let last = u64::from(config.subnet_max.to_bits());
    let mut start = u64::from(config.subnet_min.to_bits());
    let mut j = 0;
    let mut free = Vec::new();
    while start <= last && free.len() < limit {
        let end = start + size - 1;
        // Spans ending before `start` cannot touch this or any later candidate.
        while spans.get(j).is_some_and(|s| s.1 < start) {
            j += 1;
        }
        match spans.get(j) {
            Some(&(s, e)) if s <= end => {
                // Skip to the first aligned candidate after the span.
                start = (start + size).max((e + 1).div_ceil(size) * size);
            }
            _ => {
                // `start` is at most `subnet_max`, a u32, so the conversion is lossless.
                let addr = core::net::Ipv4Addr::from_bits(start as u32);
                if let Ok(n) = Ipv4Net::new(addr, config.subnet_len) {
                    free.push(n);
                }
                start += size;
            }
        }
    }
    free
}

#[cfg(test)]
mod tests {
    use core::net::Ipv4Addr;

    use proptest::prelude::*;

    use super::*;
    use crate::config::BackendType;
    use crate::file_store::FileStore;
    use crate::store::MemoryStore;
    use crate::store::conformance::{net, t};

    fn node(i: u8) -> LeaseAttrs {
        LeaseAttrs::new(Ipv4Addr::new(192, 168, 1, i), BackendType::Vxlan)
    }

    fn cfg(text: &str) -> NetworkConfig {
        NetworkConfig::from_json(text).expect("valid test config")
    }

    /// A /26 cut in /29s: SubnetMin .8, SubnetMax .56, seven subnets.
    fn small() -> NetworkConfig {
        cfg(r#"{"Network":"10.9.0.0/26","SubnetLen":29}"#)
    }

    /// Every subnet of [`small`], written out.
    fn all_small() -> Vec<Ipv4Net> {
        ["10.9.0.8/29", "10.9.0.16/29", "10.9.0.24/29", "10.9.0.32/29", "10.9.0.40/29", "10.9.0.48/29", "10.9.0.56/29"]
            .into_iter()
            .map(net)
            .collect()
    }

    #[test]
    fn free_subnets_skips_leases() {
        let c = small();
        let all = free_subnets(&c, [], 100);
        assert_eq!(all, all_small());
        // A /27 lease covers .0-.31 (four candidates, one below SubnetMin); a /30 lease spoils .40/29.
        let free = free_subnets(&c, [net("10.9.0.0/27"), net("10.9.0.44/30")], 100);
        assert_eq!(free, vec![net("10.9.0.32/29"), net("10.9.0.48/29"), net("10.9.0.56/29")]);
        assert_eq!(free_subnets(&c, [], 2), vec![net("10.9.0.8/29"), net("10.9.0.16/29")]);
        // The very top of the address space does not overflow.
        let top = cfg(r#"{"Network":"255.255.255.0/24","SubnetLen":30}"#);
        assert_eq!(free_subnets(&top, [], 100).last(), Some(&net("255.255.255.252/30")));
    }

    #[test]
    fn restart_keeps_the_subnet_and_exhaustion_is_clear() {
        let m = SubnetManager::new(MemoryStore::new(), small()).with_ttl(Duration::from_secs(100));
        let mut held = Vec::new();
        for i in 1..=7 {
            held.push(m.acquire(&node(i), t(0)).expect("room").subnet);
        }
        held.sort();
        assert_eq!(held, all_small());
        let err = m.acquire(&node(8), t(1)).expect_err("full");
        assert_eq!(err, AllocError::Exhausted { first: net("10.9.0.8/29"), last: net("10.9.0.56/29"), count: 7 });
        assert!(err.to_string().starts_with("out of subnets: all 7 subnets from 10.9.0.8/29 to 10.9.0.56/29"));
        // Node 3 restarts: same subnet, later expiration, even though the network is full.
        let before = m.store().leases(t(2)).expect("read");
        let mine = before.leases.iter().find(|l| l.attrs.public_ip == node(3).public_ip).expect("held").clone();
        let again = m.acquire(&node(3), t(50)).expect("own lease");
        assert_eq!(again.subnet, mine.subnet);
        assert_eq!(again.expiration, t(150));
    }

    #[test]
    fn stops_renewing_loses_it() {
        let c = cfg(r#"{"Network":"10.9.0.0/26","SubnetLen":29,"SubnetMin":"10.9.0.16","SubnetMax":"10.9.0.16"}"#);
        let m = SubnetManager::new(MemoryStore::new(), c).with_ttl(Duration::from_secs(10));
        let a = m.acquire(&node(1), t(0)).expect("room");
        assert_eq!(a.subnet, net("10.9.0.16/29"));
        assert_eq!(m.renew_at(&a), t(5));
        // Renewed in time, it stays.
        let a = m.renew(&a, t(5)).expect("renew");
        assert!(matches!(m.acquire(&node(2), t(24)), Err(AllocError::Exhausted { count: 1, .. })));
        // Not renewed, it expired at 15 and lapses a TTL later (the grace for clock skew): node 2 gets it and node 1's late renewal fails.
        let b = m.acquire(&node(2), t(25)).expect("lapsed is free");
        assert_eq!(b.subnet, a.subnet);
        assert!(matches!(m.renew(&a, t(26)), Err(AllocError::Store(StoreError::Taken { .. }))));
        // Released, it is free at once.
        m.release(&b, t(27)).expect("own");
        assert_eq!(m.acquire(&node(1), t(27)).expect("free").subnet, a.subnet);
    }

    /// A node whose lease lapsed while it was down gets the same subnet back whatever happened to the other leases
    /// meanwhile (its first choice depends on which subnets are free, not on where they sit in the list), and gets
    /// its previous subnet (its subnet file) when that is free, even when it is not its first choice.
    ///
    /// The subnets expected are literals, worked out apart from `rank` (the same splitmix64 formula in a few lines
    /// of Python): the choices a deployed node makes must not change unnoticed, since a node upgraded to a new
    /// ranking would come back on another subnet than the one its pods are numbered in.
    #[test]
    fn a_lapsed_node_gets_its_subnet_back() {
        let c = cfg(r#"{"Network":"10.244.0.0/16","SubnetLen":24}"#);
        let m = SubnetManager::new(MemoryStore::new(), c).with_ttl(Duration::from_secs(10));
        let first: Vec<Ipv4Net> = (1..=3).map(|i| m.acquire(&node(i), t(0)).expect("room").subnet).collect();
        assert_eq!(first, [net("10.244.56.0/24"), net("10.244.90.0/24"), net("10.244.65.0/24")]);
        // Node 3 is down; node 2's lease lapses too and node 2 comes back later. Node 4 arrives meanwhile.
        let _ = m.acquire(&node(1), t(25)).expect("renewed");
        let fourth = m.acquire(&node(4), t(26)).expect("room").subnet;
        assert_eq!(fourth, net("10.244.12.0/24"));
        assert_eq!(m.acquire(&node(3), t(27)).expect("room").subnet, first[2], "node 3 came back elsewhere");
        assert_eq!(m.acquire(&node(2), t(28)).expect("room").subnet, first[1], "node 2 came back elsewhere");
        // The previous subnet wins over the first choice when free, is ignored when taken or not allowed.
        let m = SubnetManager::new(MemoryStore::new(), small());
        let choice = m.acquire(&node(9), t(0)).expect("room").subnet;
        assert_eq!(choice, net("10.9.0.32/29"));
        let other = net("10.9.0.8/29");
        let m = SubnetManager::new(MemoryStore::new(), small());
        assert_eq!(m.acquire_preferring(&node(9), Some(other), t(0)).expect("room").subnet, other);
        assert_eq!(m.acquire_preferring(&node(8), Some(other), t(0)).expect("room").subnet, net("10.9.0.24/29"));
        for outside in [net("10.9.0.0/29"), net("10.9.0.8/30"), net("10.10.0.8/29")] {
            let m = SubnetManager::new(MemoryStore::new(), small());
            assert_eq!(m.acquire_preferring(&node(9), Some(outside), t(0)).expect("room").subnet, choice);
        }
        // A live lease of its own wins over the previous subnet.
        let m = SubnetManager::new(MemoryStore::new(), small());
        let own = m.acquire(&node(9), t(0)).expect("room").subnet;
        assert_eq!(m.acquire_preferring(&node(9), Some(other), t(1)).expect("own").subnet, own);
    }

    #[test]
    fn incompatible_old_lease_is_replaced() {
        let store = MemoryStore::new();
        let old = SubnetManager::new(store.clone(), cfg(r#"{"Network":"10.9.0.0/16","SubnetLen":24}"#));
        let a = old.acquire(&node(1), t(0)).expect("room");
        assert_eq!(a.subnet.prefix_len(), 24);
        let new = SubnetManager::new(store, cfg(r#"{"Network":"10.9.0.0/16","SubnetLen":25}"#));
        let b = new.acquire(&node(1), t(1)).expect("room");
        assert_eq!(b.subnet.prefix_len(), 25);
        let live = new.store().leases(t(1)).expect("read").leases;
        assert_eq!(live, vec![b], "the /24 was released");
    }

    #[test]
    fn from_store_reads_the_config() {
        let store = MemoryStore::new();
        assert!(matches!(SubnetManager::from_store(store.clone()), Err(AllocError::NoConfig)));
        store.put_config(r#"{"Network":"10.9.0.0/16","Backend":{"Type":"nope"}}"#).expect("put");
        assert!(matches!(SubnetManager::from_store(store.clone()), Err(AllocError::Config(_))));
        store.put_config(r#"{"Network":"10.9.0.0/16"}"#).expect("put");
        let m = SubnetManager::from_store(store).expect("valid");
        assert_eq!(m.config().subnet_len, 24);
    }

    fn race(store: &(impl LeaseStore + Clone), open: impl Fn() -> Box<dyn LeaseStore>) {
        let c = small();
        let won: Vec<Result<Lease, AllocError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (1..=10u8)
                .map(|i| {
                    let m = SubnetManager::new(open(), c.clone());
                    s.spawn(move || m.acquire(&node(i), t(0)))
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("no panic")).collect()
        });
        let mut subnets: Vec<Ipv4Net> = won.iter().filter_map(|r| r.as_ref().ok()).map(|l| l.subnet).collect();
        let exhausted = won.iter().filter(|r| matches!(r, Err(AllocError::Exhausted { .. }))).count();
        subnets.sort();
        assert_eq!(subnets, all_small(), "every subnet handed out once");
        assert_eq!(exhausted, 3, "{won:?}");
        assert_eq!(store.leases(t(0)).expect("read").leases.len(), 7);
    }

    #[test]
    fn racing_nodes_memory() {
        let store = MemoryStore::new();
        race(&store, || Box::new(store.clone()));
    }

    #[test]
    fn racing_nodes_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("leases.json");
        race(&FileStore::new(&path), || Box::new(FileStore::new(&path)));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Acquire(u8),
        Renew(u8),
        Release(u8),
        Wait(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..9).prop_map(Op::Acquire),
            2 => (0u8..9).prop_map(Op::Renew),
            1 => (0u8..9).prop_map(Op::Release),
            2 => (1u64..8).prop_map(Op::Wait),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Any interleaving of acquire, renew, release and expiry across nine nodes competing for seven subnets:
        /// leases never overlap, stay in range, one per node; acquisition fails exactly when the range is full.
        #[test]
        fn no_overlap_under_any_interleaving(ops in proptest::collection::vec(op(), 1..60)) {
            let m = SubnetManager::new(MemoryStore::new(), small()).with_ttl(Duration::from_secs(10));
            let mut now = 0u64;
            let mut held: [Option<Lease>; 9] = Default::default();
            for op in ops {
                let before = m.store().leases(t(now)).expect("read").leases;
                match op {
                    Op::Acquire(i) => {
                        let has_own = before.iter().any(|l| l.attrs.public_ip == node(i).public_ip);
                        match m.acquire(&node(i), t(now)) {
                            Ok(l) => {
                                if let Some(old) = before.iter().find(|l| l.attrs.public_ip == node(i).public_ip) {
                                    prop_assert_eq!(old.subnet, l.subnet, "a restart keeps the subnet");
                                }
                                prop_assert_eq!(l.expiration, t(now + 10));
                                held[usize::from(i)] = Some(l);
                            }
                            Err(AllocError::Exhausted { count, .. }) => {
                                prop_assert!(!has_own && before.len() as u64 == count, "exhausted only when full");
                            }
                            Err(e) => prop_assert!(false, "unexpected {e}"),
                        }
                    }
                    Op::Renew(i) => {
                        if let Some(l) = &held[usize::from(i)] {
                            let stolen = before.iter().any(|o| o.subnet == l.subnet && o.attrs != l.attrs);
                            match m.renew(l, t(now)) {
                                Ok(r) => { prop_assert!(!stolen); held[usize::from(i)] = Some(r); }
                                Err(AllocError::Store(StoreError::Taken { .. })) => {
                                    prop_assert!(stolen);
                                    held[usize::from(i)] = None;
                                }
                                Err(e) => prop_assert!(false, "unexpected {e}"),
                            }
                        }
                    }
                    Op::Release(i) => {
                        if let Some(l) = held[usize::from(i)].take() {
                            let stolen = before.iter().any(|o| o.subnet == l.subnet && o.attrs != l.attrs);
                            prop_assert_eq!(m.release(&l, t(now)).is_err(), stolen);
                        }
                    }
                    Op::Wait(s) => now += s,
                }
                let live = m.store().leases(t(now)).expect("read").leases;
                for (k, a) in live.iter().enumerate() {
                    prop_assert!(m.config().is_compatible(&a.subnet), "{} in range", a.subnet);
                    for b in &live[k + 1..] {
                        prop_assert!(!a.subnet.contains(&b.subnet) && !b.subnet.contains(&a.subnet));
                        prop_assert_ne!(a.attrs.public_ip, b.attrs.public_ip);
                    }
                }
            }
        }

        /// For any network, SubnetLen and SubnetMin..SubnetMax, nodes get exactly the subnets of the range, each
        /// once, then the clear exhaustion error.
        #[test]
        fn ranges_honoured(base: u32, net_len in 8u8..=26, extra in 2u8..=4, a: u16, b: u16) {
            let subnet_len = (net_len + extra).min(30);
            let network = Ipv4Net::new(Ipv4Addr::from_bits(base), net_len).expect("len ok").trunc();
            let size = 1u32 << (32 - u32::from(subnet_len));
            let n = 1u32 << (subnet_len - net_len);
            // A range of at most 40 subnets, so the test stays quick.
            let lo = u32::from(a) % n;
            let hi = (lo + u32::from(b) % 40).min(n - 1);
            let min = Ipv4Addr::from_bits(network.network().to_bits() + lo * size);
            let max = Ipv4Addr::from_bits(network.network().to_bits() + hi * size);
            let text = format!(
                r#"{{"Network":"{network}","SubnetLen":{subnet_len},"SubnetMin":"{min}","SubnetMax":"{max}"}}"#
            );
            // SubnetMin 0.0.0.0 means "default" in flannel: skip the one base that makes it so.
            prop_assume!(!min.is_unspecified());
            let c = cfg(&text);
            prop_assert_eq!(c.subnet_count(), u64::from(hi - lo + 1));
            let m = SubnetManager::new(MemoryStore::new(), c);
            let mut got = Vec::new();
            let mut k = 0u32;
            let err = loop {
                k += 1;
                let ip = LeaseAttrs::new(Ipv4Addr::from_bits(0x0a00_0000 + k), BackendType::Udp);
                match m.acquire(&ip, t(0)) {
                    Ok(l) => got.push(l.subnet),
                    Err(e) => break e,
                }
            };
            let exhausted = matches!(err, AllocError::Exhausted { count, .. } if count == u64::from(hi - lo + 1));
            prop_assert!(exhausted, "{}", err);
            got.sort();
            let expected: Vec<Ipv4Net> = (lo..=hi)
                .map(|i| Ipv4Net::new(Ipv4Addr::from_bits(network.network().to_bits() + i * size), subnet_len).expect("ok"))
                .collect();
            prop_assert_eq!(got, expected);
        }
    }
}
