//! The behaviour every store must show, run against each store by its own tests.

use super::*;
use crate::config::BackendType;

pub(crate) fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}
pub(crate) fn attrs(last: u8) -> LeaseAttrs {
    LeaseAttrs::new(Ipv4Addr::new(192, 168, 0, last), BackendType::Vxlan)
}
pub(crate) fn net(s: &str) -> Ipv4Net {
    s.parse().expect("test literal")
}
const TTL: Duration = Duration::from_secs(100);

/// `store` is empty and keeps at least 8 events of history; `from_zero`: it keeps every event since its
/// creation (the in-process stores; an etcd store keeps those since it connected).
pub(crate) fn basic(store: &dyn LeaseStore, from_zero: bool) {
    assert_eq!(store.get_config(), Ok(None));
    let r0 = store.put_config(r#"{"Network":"10.244.0.0/16"}"#).expect("put");
    assert_eq!(store.get_config(), Ok(Some(r#"{"Network":"10.244.0.0/16"}"#.to_owned())));

    let a = store.acquire(net("10.244.1.0/24"), &attrs(1), TTL, t(0)).expect("free");
    assert_eq!(a.expiration, t(100));
    // Same key, other node: taken.
    assert_eq!(
        store.acquire(net("10.244.1.0/24"), &attrs(2), TTL, t(1)),
        Err(StoreError::Taken { subnet: net("10.244.1.0/24"), held: net("10.244.1.0/24"), holder: attrs(1).public_ip })
    );
    // Overlapping key: taken too.
    assert!(matches!(store.acquire(net("10.244.1.128/25"), &attrs(2), TTL, t(1)), Err(StoreError::Taken { .. })));
    // Another node can neither renew nor release it.
    assert!(matches!(store.renew(net("10.244.1.0/24"), &attrs(2), TTL, t(1)), Err(StoreError::Taken { .. })));
    assert!(matches!(store.release(net("10.244.1.0/24"), attrs(2).public_ip, t(1)), Err(StoreError::Taken { .. })));

    let b = store.acquire(net("10.244.2.0/24"), &attrs(2), TTL, t(10)).expect("free");
    let snap = store.leases(t(50)).expect("leases");
    assert_eq!(snap.leases, vec![a.clone(), b.clone()]);

    // Renewal moves the expiration; the holder's renewal at 90 keeps it alive past 100.
    let a2 = store.renew(net("10.244.1.0/24"), &attrs(1), TTL, t(90)).expect("own lease");
    assert_eq!(a2.expiration, t(190));
    // b's holder leaves (when leases lapse is each store's own: see their tests); a stays.
    store.release(net("10.244.2.0/24"), attrs(2).public_ip, t(110)).expect("own");
    let snap = store.leases(t(110)).expect("leases");
    assert_eq!(snap.leases, vec![a2.clone()]);
    assert!(snap.ignored.is_empty());
    // The released subnet is free for another node, a new lease (created later).
    let b3 = store.acquire(net("10.244.2.0/24"), &attrs(3), TTL, t(111)).expect("released is free");
    assert!(b3.created > a2.created && a2.created == a.created && b.created > a.created, "{a:?} {b:?} {b3:?}");

    // Release, and releasing again is fine.
    store.release(net("10.244.1.0/24"), attrs(1).public_ip, t(120)).expect("own");
    store.release(net("10.244.1.0/24"), attrs(1).public_ip, t(120)).expect("idempotent");
    assert_eq!(store.leases(t(120)).expect("leases").leases, vec![b3.clone()]);

    // The history, in order.
    let Ok(Watch::Events { events, revision, .. }) = store.watch(r0, t(120)) else {
        panic!("history kept");
    };
    let seen: Vec<(EventKind, Ipv4Net, u8)> =
        events.iter().map(|e| (e.kind, e.lease.subnet, e.lease.attrs.public_ip.octets()[3])).collect();
    assert_eq!(
        seen,
        vec![
            (EventKind::Added, net("10.244.1.0/24"), 1),
            (EventKind::Added, net("10.244.2.0/24"), 2),
            (EventKind::Added, net("10.244.1.0/24"), 1),
            (EventKind::Removed, net("10.244.2.0/24"), 2),
            (EventKind::Added, net("10.244.2.0/24"), 3),
            (EventKind::Removed, net("10.244.1.0/24"), 1),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].revision + 1 == w[1].revision));
    assert_eq!(events.last().map(|e| e.revision), Some(revision));
    assert_eq!(store.watch(revision, t(120)), Ok(Watch::Events { events: vec![], revision, ignored: vec![] }));
    // Watching from the start sees the same (the config put made no lease event, and nothing was dropped).
    if from_zero {
        assert!(matches!(store.watch(0, t(120)), Ok(Watch::Events { events: ref e, .. }) if e.len() == 6));
    }
    // A revision the store never reached (it went back): a snapshot.
    assert!(matches!(store.watch(revision + 1000, t(120)), Ok(Watch::Reset(ref s)) if s.leases == vec![b3.clone()]));
    assert_eq!(store.leases(t(120)).map(|s| s.revision), Ok(revision));
}

/// `store` has no leases, keeps exactly 2 events, and nothing else writes to it meanwhile.
pub(crate) fn compaction(store: &dyn LeaseStore) {
    // A fresh in-process store starts at revision 0, a fresh etcd at 1.
    let base = store.leases(t(0)).expect("leases").revision;
    for i in 0..4u8 {
        store.acquire(net(&format!("10.0.{i}.0/24")), &attrs(i), TTL, t(0)).expect("free");
    }
    // Revisions base+1..=base+4; events 3 and 4 kept, so watching from 2 misses nothing and from 1 misses event 2.
    assert!(matches!(
        store.watch(base + 2, t(0)),
        Ok(Watch::Events { ref events, revision, .. }) if events.len() == 2 && revision == base + 4
    ));
    match store.watch(base + 1, t(0)) {
        Ok(Watch::Reset(snap)) => {
            assert_eq!(snap.revision, base + 4);
            assert_eq!(snap.leases.len(), 4);
        }
        other => panic!("expected a reset, got {other:?}"),
    }
}
