//! Leases that must not become peers as they are: foreign, malformed, hostile; and our own lease gone.

use super::*;

#[test]
fn foreign_and_malformed_leases_are_skipped_and_reported() {
    let store = MemoryStore::new();
    let put = |subnet: &str, json: &str| {
        let attrs = LeaseAttrs::from_json(json).expect("test lease");
        store.acquire(net(subnet), &attrs, TTL, t(0)).expect("free");
    };
    put("10.244.101.0/24", r#"{"PublicIP":"10.0.0.101","BackendType":"udp"}"#);
    put("10.244.102.0/24", r#"{"PublicIP":"10.0.0.102","BackendType":"vxlan","BackendData":{"VNI":1}}"#);
    put("10.244.103.0/24", r#"{"PublicIP":"10.0.0.103","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"zz"}}"#);
    put(
        "10.244.104.0/24",
        r#"{"PublicIP":"10.0.0.104","BackendType":"vxlan","BackendData":{"VNI":2,"VtepMAC":"0e:00:00:00:00:04"}}"#,
    );
    put(
        "10.244.105.0/24",
        r#"{"PublicIP":"10.0.0.105","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"01:00:5e:00:00:05"}}"#,
    );
    put("10.244.106.0/24", r#"{"PublicIP":"10.0.0.106"}"#);
    // Two good leases on one public IP: the node takes the first and refuses the second.
    let good =
        r#"{"PublicIP":"10.0.0.107","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:07"}}"#;
    put("10.244.107.0/24", good);
    put("10.244.108.0/24", &good.replace(":07\"", ":08\""));

    let (mut a, r) = Member::join(store.clone(), "vxlan", 1, t(1));
    assert_eq!(r.added, vec![net("10.244.107.0/24")]);
    let reasons: Vec<(Ipv4Net, SkipReason)> = r.skipped.iter().map(|s| (s.subnet, s.reason.clone())).collect();
    assert_eq!(
        reasons,
        vec![
            (net("10.244.101.0/24"), SkipReason::Backend { ours: BackendType::Vxlan, theirs: "udp".into() }),
            (net("10.244.102.0/24"), SkipReason::MissingData { field: "VtepMAC" }),
            (net("10.244.103.0/24"), SkipReason::InvalidData { field: "VtepMAC", value: "\"zz\"".into() }),
            (net("10.244.104.0/24"), SkipReason::Vni { ours: 1, theirs: 2 }),
            (
                net("10.244.105.0/24"),
                SkipReason::InvalidData { field: "VtepMAC", value: "\"01:00:5e:00:00:05\"".into() }
            ),
            (net("10.244.106.0/24"), SkipReason::Backend { ours: BackendType::Vxlan, theirs: String::new() }),
            (
                net("10.244.108.0/24"),
                SkipReason::DuplicateAddress { ip: Ipv4Addr::new(10, 0, 0, 107), holder: net("10.244.107.0/24") }
            ),
        ]
    );
    assert_eq!(
        r.to_string(),
        format!(
            "revision {}: added 10.244.107.0/24; skipped 10.244.101.0/24 (a \"udp\" lease, this node runs vxlan), \
             10.244.102.0/24 (no VtepMAC in its BackendData), 10.244.103.0/24 (VtepMAC \"zz\" in its BackendData \
             does not read), 10.244.104.0/24 (VNI 2, this node's is 1), 10.244.105.0/24 (VtepMAC \
             \"01:00:5e:00:00:05\" in its BackendData does not read), 10.244.106.0/24 (the lease names no \
             BackendType, this node runs vxlan), 10.244.108.0/24 (PublicIP 10.0.0.107 belongs to the older lease \
             10.244.107.0/24)",
            r.revision
        )
    );
    assert_eq!(a.peers().len(), 1);
    assert_eq!(a.sync.leases().count(), 8, "every lease is known, skipped or not");

    // A stale lease naming node 1's own address under another subnet is not a peer.
    put("10.244.109.0/24", &good.replace("10.0.0.107", "192.168.0.1").replace(":07\"", ":09\""));
    let r = a.poll(t(1));
    assert_eq!(r.skipped, vec![Skipped { subnet: net("10.244.109.0/24"), reason: SkipReason::OwnAddress(ip(1)) }]);
    assert!(r.is_unchanged());

    // A renewal of a skipped lease is reported again, and still changes nothing.
    let attrs = LeaseAttrs::from_json(r#"{"PublicIP":"10.0.0.101","BackendType":"udp"}"#).expect("lease");
    store.renew(net("10.244.101.0/24"), &attrs, TTL, t(2)).expect("own");
    let r = a.poll(t(2));
    assert!(r.is_unchanged());
    assert_eq!(r.skipped.len(), 1);

    // The first holder of 10.0.0.107 goes: the refused lease is tried again and now fits.
    store.release(net("10.244.107.0/24"), Ipv4Addr::new(10, 0, 0, 107), t(3)).expect("own");
    let r = a.poll(t(3));
    assert!(r.skipped.is_empty(), "{r}");
    assert_eq!((r.removed, r.added), (vec![net("10.244.107.0/24")], vec![net("10.244.108.0/24")]));
    assert_eq!(
        a.peers().get(&net("10.244.108.0/24")).and_then(|p| p.vtep_mac),
        Some(MacAddr::new(0x0e, 0, 0, 0, 0, 8))
    );

    // A peer whose lease turns into one the node cannot use goes.
    put("10.244.110.0/24", &good.replace("10.0.0.107", "10.0.0.110"));
    assert_eq!(a.poll(t(4)).added, vec![net("10.244.110.0/24")]);
    let bad = LeaseAttrs::from_json(r#"{"PublicIP":"10.0.0.110","BackendType":"udp"}"#).expect("lease");
    store.renew(net("10.244.110.0/24"), &bad, TTL, t(5)).expect("own");
    let r = a.poll(t(5));
    assert_eq!(r.removed, vec![net("10.244.110.0/24")]);
    assert_eq!(r.skipped.len(), 1);
}

/// Issue 12, finding 11: leases are checked before they become peers. A subnet outside the Network or of another
/// length than SubnetLen, a PublicIP that is no unicast host address, and a younger lease claiming another node's
/// PublicIP under a lower key are refused and reported; the real peer keeps its place.
#[test]
fn hostile_leases_are_refused_and_the_older_lease_keeps_its_place() {
    let store = MemoryStore::new();
    let (a, _) = Member::join(store.clone(), "vxlan", 1, t(0));
    let (b, _) = Member::join(store.clone(), "vxlan", 2, t(0));
    let hostile = |subnet: &str, ip: Ipv4Addr, k: u8| {
        let attrs = LeaseAttrs::vxlan(ip, VxlanData { vni: 1, vtep_mac: new_vtep(k) });
        store.acquire(net(subnet), &attrs, TTL, t(1)).expect("the store takes it");
    };
    // Below SubnetMin but inside the Network, lower than any subnet handed out: a younger claim on b's address.
    hostile("10.244.0.0/24", ip(2), 1);
    hostile("10.99.0.0/24", ip(50), 2);
    hostile("10.244.250.0/25", ip(51), 3);
    hostile("10.244.251.0/24", Ipv4Addr::new(0, 1, 2, 3), 4);
    hostile("10.244.252.0/24", Ipv4Addr::LOCALHOST, 5);
    hostile("10.244.253.0/24", Ipv4Addr::new(224, 0, 0, 5), 6);
    hostile("10.244.254.0/24", Ipv4Addr::BROADCAST, 7);

    let (c, r) = Member::join(store.clone(), "vxlan", 3, t(2));
    let mut want = vec![a.subnet(), b.subnet()];
    want.sort();
    assert_eq!(r.added, want, "{r}");
    assert_eq!(c.peers().get(&b.subnet()), Some(&vxlan_peer(b.subnet(), 2, vtep(2))));
    let reasons: Vec<(Ipv4Net, SkipReason)> = r.skipped.iter().map(|s| (s.subnet, s.reason.clone())).collect();
    assert_eq!(
        reasons,
        vec![
            (net("10.99.0.0/24"), SkipReason::OutsideNetwork { network: net("10.244.0.0/16") }),
            (net("10.244.0.0/24"), SkipReason::DuplicateAddress { ip: ip(2), holder: b.subnet() }),
            (net("10.244.250.0/25"), SkipReason::SubnetLen { expected: 24 }),
            (net("10.244.251.0/24"), SkipReason::PublicIp(Ipv4Addr::new(0, 1, 2, 3))),
            (net("10.244.252.0/24"), SkipReason::PublicIp(Ipv4Addr::LOCALHOST)),
            (net("10.244.253.0/24"), SkipReason::PublicIp(Ipv4Addr::new(224, 0, 0, 5))),
            (net("10.244.254.0/24"), SkipReason::PublicIp(Ipv4Addr::BROADCAST)),
        ]
    );
    // b's lease is released and taken again (younger now): the hostile one is the older and takes the address; when it
    // goes, b's lease is a peer again at once.
    let mut c = c;
    store.release(b.subnet(), ip(2), t(3)).expect("the holder");
    let _ = c.poll(t(3));
    store.acquire(b.subnet(), b.me.attrs(), TTL, t(4)).expect("free");
    let r = c.poll(t(4));
    assert!(r.skipped.iter().any(|s| s.subnet == b.subnet()), "{r}");
    assert_eq!(c.peers().get(&net("10.244.0.0/24")).map(|p| p.node_ip), Some(ip(2).into()));
    store.release(net("10.244.0.0/24"), ip(2), t(5)).expect("the holder");
    let r = c.poll(t(5));
    assert_eq!((r.removed.clone(), r.added.clone()), (vec![net("10.244.0.0/24")], vec![b.subnet()]), "{r}");
}

/// Issue 12, finding 4: a node sees in the store's changes that its own lease is gone (etcd expired it while the
/// node could not renew, someone deleted it) and writes it again at once instead of carrying on without one.
#[test]
fn a_node_whose_lease_leaves_the_store_sees_it_and_writes_it_again() {
    let store = MemoryStore::new();
    let (mut a, _) = Member::join(store.clone(), "vxlan", 1, t(0));
    let since = store.leases(t(1)).expect("read").revision;
    let quiet = store.watch(since, t(1)).expect("watch");
    assert!(!a.me.lost_in(&quiet));
    store.release(a.subnet(), ip(1), t(1)).expect("deleted behind its back");
    let gone = store.watch(since, t(2)).expect("watch");
    assert!(a.me.lost_in(&gone), "{gone:?}");
    assert!(a.me.lost_in(&Watch::Reset(store.leases(t(2)).expect("read"))));
    let again = a.me.renew(t(2)).expect("free, so written again").clone();
    assert_eq!(again.subnet, a.subnet());
    assert_eq!(store.leases(t(3)).expect("read").leases, vec![again]);
    // Removed and written again within one read: nothing is lost.
    assert!(!a.me.lost_in(&store.watch(since, t(3)).expect("watch")));
    // Taken over by another address: lost.
    store.release(a.subnet(), ip(1), t(4)).expect("deleted");
    store.acquire(a.subnet(), &LeaseAttrs::new(ip(7), BackendType::Vxlan), TTL, t(4)).expect("free");
    let taken = store.watch(since, t(5)).expect("watch");
    assert!(a.me.lost_in(&taken));
    assert!(matches!(a.me.renew(t(5)), Err(AllocError::Store(StoreError::Taken { .. }))));
    assert_eq!(a.me.lease(), None);
}
