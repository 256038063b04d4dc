//! The etcd store against a real etcd server (Debian's `etcd`, started per test on loopback ports with a temporary
//! data dir). Skipped with a note when there is no `etcd` binary, unless `TWEED_REQUIRE_ALL=1`.
//!
//! The raw `etcd_client` is used beside the store to see exactly what lands in etcd, and to write what flannel
//! would.

#![cfg(feature = "etcd")]

mod etcd_common;
mod etcd_harness;

use core::net::Ipv4Addr;
use core::time::Duration;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use etcd_common::*;
use etcd_harness::Etcd;
use ipnet::Ipv4Net;
use tweed_control::alloc::SubnetManager;
use tweed_control::config::{BackendType, NetworkConfig};
use tweed_control::lease::{LeaseAttrs, VxlanData};
use tweed_control::store::{Event, EventKind, LeaseStore, StoreError, Watch};

#[test]
fn config_round_trip_and_a_hand_written_flannel_config() {
    let Some(etcd) = Etcd::start() else { return };
    let s = Arc::new(store(&etcd));
    let raw = Raw::new(&etcd);
    assert_eq!(s.get_config(), Ok(None));
    // Written by hand, as an operator does for flannel (`etcdctl put /coreos.com/network/config '…'`).
    raw.put("/coreos.com/network/config", FLANNEL_CONFIG, None);
    assert_eq!(s.get_config(), Ok(Some(FLANNEL_CONFIG.to_owned())));
    let m = SubnetManager::from_store(Arc::clone(&s)).expect("flannel's config reads");
    // Read as flannel reads it: SubnetLen 24, SubnetMin .1.0, SubnetMax .255.0, vxlan with VNI 1 and port 8472.
    assert_eq!(m.config().network, net("10.244.0.0/16"));
    assert_eq!(m.config().subnet_len, 24);
    assert_eq!(m.config().subnet_min, Ipv4Addr::new(10, 244, 1, 0));
    assert_eq!(m.config().subnet_max, Ipv4Addr::new(10, 244, 255, 0));
    assert_eq!(m.config().backend.backend_type, BackendType::Vxlan);
    assert_eq!(m.config().backend.vni_or_default(), 1);
    assert_eq!(m.config().backend.port_or_default(), Some(8472));

    // Written through the store, read back byte for byte, by the store and by etcd.
    let text = r#"{"Network":"10.9.0.0/16","SubnetLen":26,"Backend":{"Type":"host-gw"}}"#;
    let r = s.put_config(text).expect("put");
    assert!(r > 1);
    assert_eq!(s.get_config(), Ok(Some(text.to_owned())));
    assert_eq!(raw.get("/coreos.com/network/config").map(|v| v.0), Some(text.to_owned()));
    assert_eq!(NetworkConfig::from_json(text).map(|c| c.subnet_len), Ok(26));
}

#[test]
fn stored_value_is_flannels_byte_for_byte_and_flannels_lease_is_read() {
    let Some(etcd) = Etcd::start() else { return };
    let s = store(&etcd);
    let raw = Raw::new(&etcd);
    let attrs = LeaseAttrs::vxlan(
        Ipv4Addr::new(192, 168, 0, 1),
        VxlanData { vni: 1, vtep_mac: "0e:2a:5b:7c:11:01".parse().expect("mac literal") },
    );
    let now = now_ms();
    let lease = s.acquire(net("10.244.1.0/24"), &attrs, Duration::from_secs(60), now).expect("free");
    assert_eq!(lease.expiration, now + Duration::from_secs(60));
    // flannel's key, flannel's value, an etcd lease of the TTL.
    let (value, id) = raw.get("/coreos.com/network/subnets/10.244.1.0-24").expect("written");
    assert_eq!(value, FLANNEL_LEASE);
    assert!(id != 0, "attached to an etcd lease");
    // Counted down from the grant, a little earlier: a slow machine may take a few seconds to get here.
    assert!((50..=60).contains(&raw.ttl(id)), "ttl {}", raw.ttl(id));
    // The only other key is tweed's expiration, outside flannel's subnets directory.
    assert_eq!(
        raw.keys("/coreos.com/network/"),
        vec!["/coreos.com/network/subnets/10.244.1.0-24", "/coreos.com/network/tweed/expirations/10.244.1.0-24"]
    );

    // A lease written the way flannel writes it (no expiration key), with a 30 s etcd lease: the store sees it,
    // with an expiration from etcd's TTL, and refuses the subnet to others.
    let flannel_node = r#"{"PublicIP":"10.0.0.7","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:2a:5b:7c:11:07"}}"#;
    raw.put("/coreos.com/network/subnets/10.244.7.0-24", flannel_node, Some(30));
    let now = SystemTime::now();
    let snap = s.leases(now).expect("read");
    assert_eq!(snap.leases.len(), 2);
    let theirs = &snap.leases[1];
    assert_eq!(theirs.subnet, net("10.244.7.0/24"));
    assert_eq!(theirs.attrs.public_ip, Ipv4Addr::new(10, 0, 0, 7));
    assert_eq!(theirs.attrs.vxlan_data().map(|d| d.vtep_mac.to_string()), Some("0e:2a:5b:7c:11:07".to_owned()));
    let left = theirs.expiration.duration_since(now).expect("in the future");
    // The TTL counts down from the put, before `now`; a slow machine may take a few seconds in between.
    assert!((Duration::from_secs(25)..=Duration::from_secs(30)).contains(&left), "{left:?}");
    assert_eq!(
        s.acquire(net("10.244.7.0/24"), &node(2), Duration::from_secs(60), now),
        Err(StoreError::Taken {
            subnet: net("10.244.7.0/24"),
            held: net("10.244.7.0/24"),
            holder: Ipv4Addr::new(10, 0, 0, 7)
        })
    );
}

#[test]
fn three_racing_managers_get_distinct_subnets() {
    let Some(etcd) = Etcd::start() else { return };
    store(&etcd)
        .put_config(r#"{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.0","SubnetMax":"10.244.3.0"}"#)
        .expect("put");
    let now = SystemTime::now();
    // Three nodes (one store each, as three processes), a range of exactly three subnets, all at once.
    let barrier = std::sync::Barrier::new(3);
    let mut got: Vec<Ipv4Net> = std::thread::scope(|sc| {
        let handles: Vec<_> = (1..=3u8)
            .map(|i| {
                let m = SubnetManager::from_store(store(&etcd)).expect("config");
                let barrier = &barrier;
                sc.spawn(move || {
                    barrier.wait();
                    m.acquire(&node(i), now).expect("room for three").subnet
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("no panic")).collect()
    });
    got.sort();
    assert_eq!(got, vec![net("10.244.1.0/24"), net("10.244.2.0/24"), net("10.244.3.0/24")]);
    // A fourth finds the range full.
    let m = SubnetManager::from_store(store(&etcd)).expect("config");
    assert!(matches!(m.acquire(&node(4), now), Err(tweed_control::AllocError::Exhausted { count: 3, .. })));
    assert_eq!(store(&etcd).leases(now).expect("read").leases.len(), 3);
}

#[test]
fn unrenewed_lease_expires_in_etcd_renewed_one_stays_and_a_watcher_sees_it() {
    let Some(etcd) = Etcd::start() else { return };
    let raw = Raw::new(&etcd);
    let watcher = store(&etcd);
    watcher.put_config(FLANNEL_CONFIG).expect("put");
    let ttl = Duration::from_secs(2);
    let keeper = SubnetManager::from_store(store(&etcd)).expect("config").with_ttl(ttl);
    let quitter = SubnetManager::from_store(store(&etcd)).expect("config").with_ttl(ttl);
    let start = watcher.leases(SystemTime::now()).expect("read").revision;
    let mut kept = keeper.acquire(&node(1), SystemTime::now()).expect("room");
    // Before the quitter's etcd lease is granted: its TTL runs from after this.
    let began = Instant::now();
    let gone = quitter.acquire(&node(2), SystemTime::now()).expect("room");
    let gone_key = format!("/coreos.com/network/subnets/{}-24", gone.subnet.addr());
    let kept_key = format!("/coreos.com/network/subnets/{}-24", kept.subnet.addr());

    // The keeper renews every 500 ms; nobody reads through a store meanwhile, so only etcd can remove the other. The
    // loop goes on until etcd has removed it (looked at before a renewal, so that removal comes before the last
    // renewal) and the keeper has renewed at least 4 times, however slow the machine.
    let mut renews = 0;
    let mut renewed_at = SystemTime::now();
    let mut expired_after = None;
    while expired_after.is_none() || renews < 4 {
        assert!(began.elapsed() < Duration::from_secs(30), "etcd did not remove the unrenewed lease within 30 s");
        std::thread::sleep(Duration::from_millis(500));
        if expired_after.is_none() && raw.get(&gone_key).is_none() {
            expired_after = Some(began.elapsed());
        }
        renewed_at = SystemTime::now();
        kept = keeper.renew(&kept, renewed_at).expect("own lease");
        renews += 1;
    }
    let expired_after = expired_after.expect("the loop ends only then");
    assert!(expired_after >= ttl, "not before its TTL: {expired_after:?}");
    assert!(raw.get(&kept_key).is_some(), "the renewed lease is still there");
    assert!(raw.keys("/coreos.com/network/tweed/").iter().all(|k| !k.ends_with(&format!("{}-24", gone.subnet.addr()))));
    // At the last renewal's time: later, the kept lease lapses too.
    assert_eq!(watcher.leases(renewed_at).expect("read").leases, vec![kept.clone()]);

    // The watcher sees both adds, every renewal, and the expiry of the quitter's lease. etcd's deletion reaches the
    // watcher's buffer when etcd delivers it: asked until it is there.
    let is_gone = |e: &Event| e.kind == EventKind::Removed && e.lease.subnet == gone.subnet;
    let mut events = Vec::new();
    let delivered = eventually(Duration::from_secs(10), || {
        let Watch::Events { events: now_seen, .. } = watch_eventually(&watcher, start, renewed_at) else {
            panic!("history kept")
        };
        events = now_seen;
        events.iter().any(is_gone)
    });
    assert!(delivered, "the expiry reached the watcher: {events:?}");
    let adds_of_kept: Vec<_> =
        events.iter().filter(|e| e.kind == EventKind::Added && e.lease.subnet == kept.subnet).collect();
    // The acquisition and each renewal, no more, no less.
    assert_eq!(adds_of_kept.len(), renews + 1, "{events:?}");
    // Nothing but the quitter's expiry removed a lease while the keeper renewed (once it stops, its lease goes too).
    let last_renewal = adds_of_kept.last().expect("at least one").revision;
    let removed: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Removed && e.revision < last_renewal)
        .map(|e| e.lease.subnet)
        .collect();
    assert_eq!(removed, vec![gone.subnet]);
    let removal = events.iter().find(|e| is_gone(e)).expect("one");
    assert_eq!(removal.lease.attrs, node(2), "the removed lease as it was");
}

#[test]
fn restarted_manager_gets_its_subnet_back() {
    let Some(etcd) = Etcd::start() else { return };
    store(&etcd).put_config(FLANNEL_CONFIG).expect("put");
    let now = now_ms();
    let (first, other) = {
        let m = SubnetManager::from_store(store(&etcd)).expect("config");
        let first = m.acquire(&node(1), now).expect("room");
        let other = m.acquire(&node(2), now).expect("room");
        (first, other)
        // The process ends: its store and runtime go.
    };
    assert_ne!(first.subnet, other.subnet);
    let m = SubnetManager::from_store(store(&etcd)).expect("config");
    let again = m.acquire(&node(1), now + Duration::from_secs(5)).expect("own lease");
    assert_eq!(again.subnet, first.subnet);
    assert_eq!(again.expiration, now + Duration::from_secs(5) + m.ttl());
    assert_eq!(m.acquire(&node(2), now + Duration::from_secs(6)).expect("own lease").subnet, other.subnet);
    assert_eq!(m.store().leases(now + Duration::from_secs(6)).expect("read").leases.len(), 2);
}

#[test]
fn etcd_restart_loses_nothing_and_the_same_store_works_again() {
    let Some(mut etcd) = Etcd::start() else { return };
    let s = Arc::new(store(&etcd));
    s.put_config(FLANNEL_CONFIG).expect("put");
    let m = SubnetManager::from_store(Arc::clone(&s)).expect("config");
    let now = SystemTime::now();
    let a = m.acquire(&node(1), now).expect("room");
    let b = m.acquire(&node(2), now).expect("room");
    let before = s.leases(now).expect("read");

    etcd.kill();
    // During the outage: a clear error, in bounded time.
    let began = Instant::now();
    let err = s.leases(now).expect_err("etcd is down");
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains(&etcd.endpoint()), "{err}");
    assert!(began.elapsed() < Duration::from_secs(5), "took {:?}", began.elapsed());
    assert!(matches!(m.acquire(&node(3), now), Err(tweed_control::AllocError::Store(StoreError::Unavailable { .. }))));

    etcd.restart();
    // The same store, not rebuilt: everything is there, with the same expirations, and it works.
    let after = eventually(Duration::from_secs(10), || s.leases(now).is_ok());
    assert!(after, "the store reconnects");
    let snap = s.leases(now).expect("read");
    assert_eq!(snap.leases, before.leases);
    assert_eq!(snap.revision, before.revision);
    assert_eq!(s.get_config(), Ok(Some(FLANNEL_CONFIG.to_owned())));
    let c = m.acquire(&node(3), now).expect("room");
    assert!(c.subnet != a.subnet && c.subnet != b.subnet);
    assert_eq!(m.renew(&a, now + Duration::from_secs(1)).expect("own").subnet, a.subnet);
    // The watch task reconnects (with a backoff of up to 1 s) and resumes: the changes after the restart follow the
    // ones before.
    let Watch::Events { events, .. } = watch_eventually(&s, before.revision, now) else { panic!("history kept") };
    let seen: Vec<(EventKind, Ipv4Net)> = events.iter().map(|e| (e.kind, e.lease.subnet)).collect();
    assert_eq!(seen, vec![(EventKind::Added, c.subnet), (EventKind::Added, a.subnet)]);
    // A new store keeps the history from when it connected: asked from before, it gives every lease instead.
    let Watch::Reset(snap) = watch_eventually(&store(&etcd), 0, now) else { panic!("older than the store") };
    assert_eq!(snap.leases.len(), 3);
}

#[test]
fn watch_from_a_compacted_revision_resets() {
    let Some(etcd) = Etcd::start() else { return };
    let raw = Raw::new(&etcd);
    let s = store(&etcd);
    let now = SystemTime::now();
    let ttl = Duration::from_secs(60);
    let r0 = s.leases(now).expect("read").revision;
    s.acquire(net("10.244.1.0/24"), &node(1), ttl, now).expect("free");
    s.acquire(net("10.244.2.0/24"), &node(2), ttl, now).expect("free");
    s.release(net("10.244.1.0/24"), node(1).public_ip, now).expect("own");
    // Once `s` has answered a watch, its watch task is past the history, so a compaction no longer concerns it.
    assert!(matches!(s.watch(r0, now), Ok(Watch::Events { ref events, .. }) if events.len() == 3));
    let compacted = raw.compact_now();
    s.acquire(net("10.244.3.0/24"), &node(3), ttl, now).expect("free");

    // The store that watched all along still has the history.
    let Ok(Watch::Events { events, .. }) = s.watch(r0, now) else { panic!("kept in the buffer") };
    assert_eq!(events.len(), 4);
    // A store started after the compaction cannot have it: a reset with every live lease.
    let late = store(&etcd);
    // Its watch task finds its start compacted and reconnects after the compaction.
    match watch_eventually(&late, r0, now) {
        Watch::Reset(snap) => {
            let subnets: Vec<Ipv4Net> = snap.leases.iter().map(|l| l.subnet).collect();
            assert_eq!(subnets, vec![net("10.244.2.0/24"), net("10.244.3.0/24")]);
            // From the snapshot's revision on, events flow again.
            late.release(net("10.244.2.0/24"), node(2).public_ip, now).expect("own");
            let Ok(Watch::Events { events, .. }) = late.watch(snap.revision, now) else { panic!("after the reset") };
            assert_eq!(events.len(), 1);
            assert_eq!((events[0].kind, events[0].lease.subnet), (EventKind::Removed, net("10.244.2.0/24")));
        }
        other => panic!("expected a reset, got {other:?}"),
    }
    // The store that watched all along misses nothing from the compaction revision on either.
    let compacted = u64::try_from(compacted).expect("positive");
    assert!(matches!(watch_eventually(&s, compacted, now), Watch::Events { ref events, .. } if events.len() == 2));
}
