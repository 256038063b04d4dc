//! The in-memory store's own tests, and the in-process stores' expiry.

use super::conformance::*;
use super::*;

/// Issue 12, finding 4: nodes whose clocks are 25 h off (more than a 24 h TTL) share one in-process store. The
/// one ahead removes no fresh lease of the others; the leases of the one behind are kept by the others.
pub(crate) fn skewed_clocks(store: &dyn LeaseStore) {
    let ttl = crate::lease::DEFAULT_TTL;
    let day = Duration::from_secs(25 * 3600);
    let now = t(1_000_000);
    let (ahead, behind) = (now + day, now - day);
    // A node a day ahead reads, watches and writes beside a fresh lease of a node on time: it stays.
    let a = store.acquire(net("10.244.1.0/24"), &attrs(1), ttl, now).expect("free");
    let r = store.leases(now).expect("read").revision;
    assert_eq!(store.leases(ahead).expect("read").leases, vec![a.clone()]);
    let c = store.acquire(net("10.244.3.0/24"), &attrs(3), ttl, ahead).expect("free");
    store.renew(c.subnet, &attrs(3), ttl, ahead).expect("own");
    assert!(matches!(store.acquire(a.subnet, &attrs(4), ttl, ahead), Err(StoreError::Taken { .. })));
    let Ok(Watch::Events { events, .. }) = store.watch(r, ahead) else { panic!("history kept") };
    assert!(events.iter().all(|e| e.kind == EventKind::Added), "{events:?}");
    // A node a day behind writes a lease the node on time keeps, and may not take.
    let b = store.acquire(net("10.244.2.0/24"), &attrs(2), ttl, behind).expect("free");
    let subnets: Vec<Ipv4Net> = store.leases(now).expect("read").leases.iter().map(|l| l.subnet).collect();
    assert_eq!(subnets, vec![a.subnet, b.subnet, c.subnet]);
    assert!(matches!(store.acquire(b.subnet, &attrs(4), ttl, now), Err(StoreError::Taken { .. })));
    let Ok(Watch::Events { events, .. }) = store.watch(r, now) else { panic!("history kept") };
    assert!(events.iter().all(|e| e.kind == EventKind::Added), "{events:?}");
    // Its renewal a day later by its clock keeps it for the node on time.
    store.renew(b.subnet, &attrs(2), ttl, behind + Duration::from_secs(23 * 3600)).expect("own");
    assert!(
        store.leases(now + Duration::from_secs(23 * 3600)).expect("read").leases.iter().any(|l| l.subnet == b.subnet)
    );
}

#[test]
fn memory_store_tolerates_skewed_clocks() {
    skewed_clocks(&MemoryStore::new());
    lapse_after_a_ttl_of_grace(&MemoryStore::new());
}

/// A lease expiring at `e` with TTL `ttl` lapses at `e + ttl` by the caller's clock, not before.
pub(crate) fn lapse_after_a_ttl_of_grace(store: &dyn LeaseStore) {
    let ttl = Duration::from_secs(100);
    let a = store.acquire(net("10.1.1.0/24"), &attrs(1), ttl, t(0)).expect("free");
    assert_eq!(a.expiration, t(100));
    let r = store.leases(t(199)).expect("read");
    assert_eq!(r.leases, vec![a.clone()]);
    assert!(matches!(store.acquire(a.subnet, &attrs(2), ttl, t(199)), Err(StoreError::Taken { .. })));
    assert!(store.leases(t(200)).expect("read").leases.is_empty());
    let Ok(Watch::Events { events, .. }) = store.watch(r.revision, t(200)) else { panic!("history kept") };
    assert_eq!(events.iter().map(|e| (e.kind, e.lease.subnet)).collect::<Vec<_>>(), [(EventKind::Removed, a.subnet)]);
    store.acquire(a.subnet, &attrs(2), ttl, t(200)).expect("lapsed is free");
}

#[test]
fn memory_store_conformance() {
    basic(&MemoryStore::new(), true);
    compaction(&MemoryStore::with_history(2));
}

#[test]
fn racing_threads_never_share_a_subnet() {
    let store = MemoryStore::new();
    let subnets: Vec<Ipv4Net> = (0..8u8).map(|i| net(&format!("10.1.{i}.0/24"))).collect();
    let winners: Vec<Vec<Ipv4Net>> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=6u8)
            .map(|node| {
                let store = store.clone();
                let subnets = subnets.clone();
                s.spawn(move || {
                    subnets
                        .iter()
                        .filter(|sn| store.acquire(**sn, &attrs(node), Duration::from_secs(60), t(0)).is_ok())
                        .copied()
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("no panic")).collect()
    });
    let mut all: Vec<Ipv4Net> = winners.into_iter().flatten().collect();
    all.sort();
    assert_eq!(all, subnets, "each subnet won exactly once");
}
