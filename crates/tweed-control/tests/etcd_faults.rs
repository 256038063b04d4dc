//! The etcd store when things go wrong (issue 12): garbage in the store, clocks a day off, an etcd that goes back
//! in time, a member of a cluster down, a node's own lease gone; and what following the leases costs etcd.
//! Skipped with a note when there is no `etcd` binary, unless `TWEED_REQUIRE_ALL=1`.

#![cfg(feature = "etcd")]

mod etcd_common;
mod etcd_harness;

use core::time::Duration;
use std::time::{Instant, SystemTime};

use etcd_common::*;
use etcd_harness::Etcd;
use ipnet::Ipv4Net;
use tweed_control::alloc::SubnetManager;
use tweed_control::etcd_store::{EtcdOptions, EtcdStore};
use tweed_control::lease::DEFAULT_PREFIX;
use tweed_control::store::{EventKind, LeaseStore, StoreError, Watch};

/// Issue 12, finding 5: one value under `subnets/` that is not a lease (garbage, or not even UTF-8) is skipped, not
/// an error for every read: acquiring, renewing, reading and watching go on.
#[test]
fn garbage_under_the_subnets_prefix_is_skipped() {
    let Some(etcd) = Etcd::start() else { return };
    let raw = Raw::new(&etcd);
    let s = store(&etcd);
    s.put_config(FLANNEL_CONFIG).expect("put");
    let now = SystemTime::now();
    let ttl = Duration::from_secs(60);
    let r0 = s.leases(now).expect("read").revision;
    let mine = s.acquire(net("10.244.1.0/24"), &node(1), ttl, now).expect("free");
    raw.put("/coreos.com/network/subnets/10.244.9.0-24", "this is not a lease", None);
    raw.put_bytes("/coreos.com/network/subnets/10.244.8.0-24", &[0xff, 0xfe, b'{']);
    // A lease turned into garbage: its subnet is no lease any more.
    s.acquire(net("10.244.7.0/24"), &node(7), ttl, now).expect("free");
    raw.put("/coreos.com/network/subnets/10.244.7.0-24", "{\"PublicIP\":", None);

    let snap = s.leases(now).expect("garbage is skipped, not an error");
    assert_eq!(snap.leases.iter().map(|l| l.subnet).collect::<Vec<_>>(), vec![mine.subnet]);
    let renewed = s.renew(mine.subnet, &node(1), ttl, now + Duration::from_secs(1)).expect("renewal goes on");
    assert_eq!(renewed.subnet, mine.subnet);
    s.acquire(net("10.244.2.0/24"), &node(2), ttl, now).expect("acquisition goes on");
    let Watch::Events { events, .. } = watch_eventually(&s, r0, now) else { panic!("history kept") };
    let seen: Vec<(EventKind, Ipv4Net)> = events.iter().map(|e| (e.kind, e.lease.subnet)).collect();
    assert_eq!(
        seen,
        vec![
            (EventKind::Added, net("10.244.1.0/24")),
            (EventKind::Added, net("10.244.7.0/24")),
            (EventKind::Removed, net("10.244.7.0/24")),
            (EventKind::Added, net("10.244.1.0/24")),
            (EventKind::Added, net("10.244.2.0/24")),
        ]
    );
    // A second agent starting now (a full read) sees the same leases.
    let late = store(&etcd);
    let subnets: Vec<Ipv4Net> = late.leases(now).expect("read").leases.iter().map(|l| l.subnet).collect();
    assert_eq!(subnets, vec![net("10.244.1.0/24"), net("10.244.2.0/24")]);
}

/// Issue 12, finding 4: with etcd, a lease expires when etcd's lease does, whatever the clocks of the nodes say. A
/// node whose clock is 25 h ahead deletes no lease; one 25 h behind writes leases the others keep.
#[test]
fn clocks_a_day_off_delete_no_lease() {
    let Some(etcd) = Etcd::start() else { return };
    let raw = Raw::new(&etcd);
    let (honest, ahead, behind) = (store(&etcd), store(&etcd), store(&etcd));
    honest.put_config(FLANNEL_CONFIG).expect("put");
    let day = Duration::from_secs(25 * 3600);
    let ttl = Duration::from_secs(3600);
    let now = SystemTime::now();
    let a = honest.acquire(net("10.244.1.0/24"), &node(1), ttl, now).expect("free");
    let b = behind.acquire(net("10.244.2.0/24"), &node(2), ttl, now - day).expect("free");
    // The node ahead reads, watches, acquires and renews: nothing of the others goes.
    let r = ahead.leases(now + day).expect("read").revision;
    let c = ahead.acquire(net("10.244.3.0/24"), &node(3), ttl, now + day).expect("free");
    ahead.renew(c.subnet, &node(3), ttl, now + day).expect("own");
    let _ = watch_eventually(&ahead, r, now + day);
    for subnet in [a.subnet, b.subnet, c.subnet] {
        let key = format!("/coreos.com/network/subnets/{}-24", subnet.addr());
        assert!(raw.get(&key).is_some(), "{subnet} is still in etcd");
    }
    // Every node sees every lease, and nobody may take one.
    for (s, t) in [(&honest, now), (&ahead, now + day), (&behind, now - day)] {
        let subnets: Vec<Ipv4Net> = s.leases(t).expect("read").leases.iter().map(|l| l.subnet).collect();
        assert_eq!(subnets, vec![a.subnet, b.subnet, c.subnet]);
    }
    assert!(matches!(ahead.acquire(b.subnet, &node(4), ttl, now + day), Err(StoreError::Taken { .. })));
    assert!(matches!(honest.acquire(b.subnet, &node(4), ttl, now), Err(StoreError::Taken { .. })));
    // The node behind renews its lease as usual.
    behind.renew(b.subnet, &node(2), ttl, now - day).expect("own");
}

/// Issue 12, finding 13: an etcd that comes back with older revisions (restored from a backup; here wiped) makes
/// every watcher resynchronise from a snapshot instead of waiting for revisions that will not come.
#[test]
fn an_etcd_whose_revision_goes_back_resets_its_watchers() {
    let Some(mut etcd) = Etcd::start() else { return };
    let s = store(&etcd);
    let now = SystemTime::now();
    let ttl = Duration::from_secs(60);
    for i in 1..=5u8 {
        s.acquire(net(&format!("10.244.{i}.0/24")), &node(i), ttl, now).expect("free");
    }
    let before = s.leases(now).expect("read").revision;
    let Watch::Events { revision: since, .. } = watch_eventually(&s, before, now) else { panic!("history kept") };
    etcd.wipe_and_restart();
    let fresh = eventually(Duration::from_secs(10), || s.acquire(net("10.244.9.0/24"), &node(9), ttl, now).is_ok());
    assert!(fresh, "the store reconnects to the new etcd");
    let mut last = None;
    let reset = eventually(Duration::from_secs(10), || {
        last = Some(s.watch(since, now));
        matches!(last, Some(Ok(Watch::Reset(_))))
    });
    assert!(reset, "a watcher from revision {since} is told to resynchronise: {last:?}");
    let Some(Ok(Watch::Reset(snap))) = last else { unreachable!() };
    assert_eq!(snap.leases.iter().map(|l| l.subnet).collect::<Vec<_>>(), vec![net("10.244.9.0/24")]);
    // From the snapshot on, events flow again.
    s.acquire(net("10.244.10.0/24"), &node(10), ttl, now).expect("free");
    let Watch::Events { events, .. } = watch_eventually(&s, snap.revision, now) else { panic!("after the reset") };
    assert_eq!(events.iter().map(|e| e.lease.subnet).collect::<Vec<_>>(), vec![net("10.244.10.0/24")]);
}

/// Issue 12, finding 14: an idle watcher costs etcd nothing: no read of the leases and no TTL lookup per call,
/// however many leases (here 50 written by flannel, 50 by tweed).
#[test]
fn an_idle_watch_reads_nothing_from_etcd() {
    let Some(etcd) = Etcd::start() else { return };
    let raw = Raw::new(&etcd);
    let s = store(&etcd);
    let now = SystemTime::now();
    let ttl = Duration::from_secs(600);
    for i in 1..=50u8 {
        raw.put(&format!("/coreos.com/network/subnets/10.244.{i}.0-24"), &node(i).to_json(), Some(600));
        s.acquire(net(&format!("10.244.{}.0/24", 100 + i)), &node(100 + i), ttl, now).expect("free");
    }
    let snap = s.leases(now).expect("read");
    assert_eq!(snap.leases.len(), 100);
    let Watch::Events { revision, .. } = watch_eventually(&s, snap.revision, now) else { panic!("history kept") };
    let (ranges, ttls) = (etcd.rpc_count("Range"), etcd.rpc_count("LeaseTimeToLive"));
    let mut since = revision;
    for _ in 0..20 {
        match s.watch(since, now).expect("watch") {
            Watch::Events { events, revision, .. } => {
                assert!(events.is_empty(), "{events:?}");
                since = revision;
            }
            Watch::Reset(_) => panic!("no reason to reset"),
        }
    }
    assert_eq!(etcd.rpc_count("Range") - ranges, 0, "ranges read by 20 idle watches");
    assert_eq!(etcd.rpc_count("LeaseTimeToLive") - ttls, 0, "TTLs read by 20 idle watches");
    // And a lease another node adds is seen within a second.
    let other = store(&etcd);
    let began = Instant::now();
    other.acquire(net("10.244.200.0/24"), &node(200), ttl, now).expect("free");
    let seen = eventually(Duration::from_secs(1), || match s.watch(since, now) {
        Ok(Watch::Events { events, .. }) => events.iter().any(|e| e.lease.subnet == net("10.244.200.0/24")),
        _ => false,
    });
    assert!(seen, "not seen within {:?}", began.elapsed());
}

/// Issue 12, finding 15: a store given all three members of a cluster keeps working while any one of them is down:
/// its lease (TTL 3 s) is renewed every 500 ms and a peer's lease written through another member keeps being seen,
/// across one member killed, restarted, and another killed (4 s each).
#[test]
fn one_member_down_keeps_the_lease_and_the_peers() {
    let Some(mut cluster) = etcd_harness::Cluster::start() else { return };
    let quick = EtcdOptions {
        connect_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(500),
        ..EtcdOptions::default()
    };
    let s = EtcdStore::connect(&cluster.endpoints(), DEFAULT_PREFIX, quick.clone()).expect("cluster answers");
    s.put_config(FLANNEL_CONFIG).expect("put");
    let ttl = Duration::from_secs(3);
    let m = SubnetManager::from_store(s).expect("config").with_ttl(ttl);
    let mut mine = m.acquire(&node(1), SystemTime::now()).expect("room");
    let mine_key = format!("/coreos.com/network/subnets/{}-24", mine.subnet.addr());
    let mut since = m.store().leases(SystemTime::now()).expect("read").revision;
    let mut peers: std::collections::BTreeSet<Ipv4Net> = std::collections::BTreeSet::new();
    let follow = |since: &mut u64, peers: &mut std::collections::BTreeSet<Ipv4Net>| match m
        .store()
        .watch(*since, SystemTime::now())
    {
        Ok(Watch::Events { events, revision, .. }) => {
            *since = revision;
            peers.extend(events.iter().filter(|e| e.kind == EventKind::Added).map(|e| e.lease.subnet));
            true
        }
        Ok(Watch::Reset(snap)) => {
            *since = snap.revision;
            peers.extend(snap.leases.iter().map(|l| l.subnet));
            true
        }
        Err(_) => false,
    };
    let mut peer_n = 0u8;
    for (kill, revive) in [(0usize, None), (1, Some(0usize))] {
        if let Some(r) = revive {
            cluster.members[r].restart();
        }
        cluster.members[kill].kill();
        let live = (kill + 1) % 3;
        // A peer writing through one live member only (an election may be under way: it retries).
        let mut writer = None;
        assert!(eventually(Duration::from_secs(5), || {
            writer = EtcdStore::connect(&[cluster.members[live].endpoint()], DEFAULT_PREFIX, quick.clone()).ok();
            writer.is_some()
        }));
        let writer = writer.expect("connected");
        let began = Instant::now();
        let (mut failed_in_a_row, mut worst, mut renewals, mut watches) = (0, 0, 0, 0);
        while began.elapsed() < Duration::from_secs(4) {
            std::thread::sleep(Duration::from_millis(500));
            match m.renew(&mine, SystemTime::now()) {
                Ok(l) => {
                    mine = l;
                    renewals += 1;
                    failed_in_a_row = 0;
                }
                Err(_) => failed_in_a_row += 1,
            }
            worst = worst.max(failed_in_a_row);
            peer_n += 1;
            let subnet = net(&format!("10.244.{}.0/24", 100 + peer_n));
            let wrote = eventually(Duration::from_secs(2), || {
                writer.acquire(subnet, &node(100 + peer_n), Duration::from_secs(60), SystemTime::now()).is_ok()
            });
            assert!(wrote, "the peer writes through member {live}");
            watches += usize::from(follow(&mut since, &mut peers));
        }
        // The lease was renewed well within its TTL all along (an election may cost one renewal), and is there.
        assert!(worst <= 2, "member {kill} down: {worst} renewals failed in a row");
        assert!(renewals >= 5 && watches >= 5, "member {kill} down: {renewals} renewals, {watches} watches");
        let expected: std::collections::BTreeSet<Ipv4Net> =
            (1..=peer_n).map(|i| net(&format!("10.244.{}.0/24", 100 + i))).collect();
        let caught_up = eventually(Duration::from_secs(2), || {
            follow(&mut since, &mut peers);
            expected.is_subset(&peers)
        });
        assert!(caught_up, "member {kill} down: peers seen {peers:?}");
        assert!(Raw::at(&cluster.members[live].endpoint()).get(&mine_key).is_some(), "the lease is there");
    }
}

/// Issue 12, finding 4: a lease etcd dropped while its holder was cut off (here: deleted by hand) shows in the
/// holder's watch as its own lease gone; renewing writes it again, with the same subnet.
#[test]
fn a_lease_gone_from_etcd_is_seen_by_its_holder_and_written_again() {
    let Some(etcd) = Etcd::start() else { return };
    let raw = Raw::new(&etcd);
    let s = store(&etcd);
    s.put_config(FLANNEL_CONFIG).expect("put");
    let m = SubnetManager::from_store(s).expect("config");
    let mut me = tweed_control::Membership::new(m, node(1));
    let subnet = me.acquire(SystemTime::now()).expect("room").subnet;
    let since = me.manager().store().leases(SystemTime::now()).expect("read").revision;
    let key = format!("/coreos.com/network/subnets/{}-24", subnet.addr());
    raw.delete(&key);
    let mut last = None;
    let seen = eventually(Duration::from_secs(5), || {
        last = me.manager().store().watch(since, SystemTime::now()).ok();
        last.as_ref().is_some_and(|w| me.lost_in(w))
    });
    assert!(seen, "{last:?}");
    assert_eq!(me.renew(SystemTime::now()).expect("written again").subnet, subnet);
    assert_eq!(raw.get(&key).map(|v| v.0), Some(node(1).to_json()));
}
