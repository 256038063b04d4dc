//! The sync against real nodes: three (or more) `tweed_overlay::Node`s sharing one store, in memory, with
//! simulated time.

use core::time::Duration;

use tweed_overlay::{DropReason, Instant, NodeBuilder, Outputs, UdpConfig, Verdict, VxlanConfig};
use tweed_packet::{Batch, Pool, PoolConfig, PortId};
use tweed_wire::{arp, checksum, icmpv4, ipv4};

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use tweed_overlay::Node;

use super::*;
use crate::alloc::{AllocError, SubnetManager};
use crate::config::NetworkConfig;
use crate::file_store::FileStore;
use crate::lease::VxlanData;
use crate::store::MemoryStore;
use crate::store::conformance::{net, t};
use crate::store::{LeaseStore, StoreError, Watch};

const TTL: Duration = Duration::from_secs(100);
const SOCKET: PortId = PortId(100);
const POD: PortId = PortId(1);

fn ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 0, i)
}
fn node_mac(i: u8) -> MacAddr {
    MacAddr::new(0x02, 0x00, 0xc0, 0xa8, 0x00, i)
}
fn vtep(i: u8) -> MacAddr {
    MacAddr::new(0x02, 0x00, 0x00, 0x00, 0x00, i)
}
fn new_vtep(i: u8) -> MacAddr {
    MacAddr::new(0x02, 0x00, 0x00, 0x00, 0x01, i)
}

fn network(backend: &str) -> NetworkConfig {
    NetworkConfig::from_json(&format!(r#"{{"Network":"10.244.0.0/16","Backend":{{"Type":"{backend}"}}}}"#))
        .expect("valid test config")
}

/// Node `i`'s config on `subnet`: one pod port, its underlay through a UDP socket (the agent's way for vxlan and
/// udp, so peers need no underlay MAC), or whole frames for host-gw.
fn node_config(backend: &str, i: u8, subnet: Ipv4Net) -> NodeConfig {
    let b = NodeBuilder::new(subnet, ip(i), node_mac(i)).pod_ports([POD.0]);
    match backend {
        "vxlan" => b.vxlan(VxlanConfig::new(vtep(i))).socket_port(SOCKET),
        "udp" => b.udp(UdpConfig::default()).socket_port(SOCKET),
        _ => b.host_gw(),
    }
    .into_config()
}

/// One agent: its lease, its node and its sync.
struct Member<S> {
    i: u8,
    me: Membership<S>,
    node: Node,
    sync: PeerSync,
}

impl<S: LeaseStore> Member<S> {
    /// Node `i` joins: acquires a subnet, builds its node on it, installs the peers the store has.
    fn join(store: S, backend: &str, i: u8, now: SystemTime) -> (Self, SyncReport) {
        let mut config = node_config(backend, i, net("10.0.0.0/24"));
        let manager = SubnetManager::new(store, network(backend)).with_ttl(TTL);
        let mut me = Membership::new(manager, lease_attrs(&config));
        config.pod_subnet = Some(me.acquire(now).expect("room").subnet);
        let mut node = Node::new(config).expect("valid node");
        let mut sync = PeerSync::new(node.config().pod_subnet.expect("a pod subnet")).with_network(&network(backend));
        let report = sync.start(me.manager().store(), &mut node, now).expect("store");
        (Self { i, me, node, sync }, report)
    }

    fn subnet(&self) -> Ipv4Net {
        self.node.config().pod_subnet.expect("a pod subnet")
    }

    fn poll(&mut self, now: SystemTime) -> SyncReport {
        self.sync.poll(self.me.manager().store(), &mut self.node, now).expect("store")
    }

    /// The node's peers, by subnet.
    fn peers(&self) -> BTreeMap<Ipv4Net, PeerConfig> {
        self.node.peers().map(|p| (p.subnet, p.clone())).collect()
    }
}

fn cluster(store: &MemoryStore, backend: &str, n: u8) -> Vec<Member<MemoryStore>> {
    let mut members: Vec<_> = (1..=n).map(|i| Member::join(store.clone(), backend, i, t(0)).0).collect();
    for m in &mut members {
        let _ = m.poll(t(1));
    }
    members
}

/// The peer a vxlan member `m` should have for member `j` holding `subnet`.
fn vxlan_peer(subnet: Ipv4Net, j: u8, mac: MacAddr) -> PeerConfig {
    PeerConfig::new(subnet, ip(j)).with_vtep_mac(mac)
}

#[test]
fn three_nodes_find_each_other() {
    let store = MemoryStore::new();
    let (mut a, ra) = Member::join(store.clone(), "vxlan", 1, t(0));
    assert!(ra.is_unchanged() && ra.skipped.is_empty(), "{ra}");
    let (mut b, rb) = Member::join(store.clone(), "vxlan", 2, t(0));
    assert_eq!(rb.added, vec![a.subnet()]);
    let (mut c, rc) = Member::join(store.clone(), "vxlan", 3, t(0));
    let mut ab = vec![a.subnet(), b.subnet()];
    ab.sort();
    assert_eq!(rc.added, ab);
    let subnets: BTreeSet<Ipv4Net> = [a.subnet(), b.subnet(), c.subnet()].into();
    assert_eq!(subnets.len(), 3, "distinct subnets");

    let ra = a.poll(t(1));
    let mut bc = vec![b.subnet(), c.subnet()];
    bc.sort();
    assert_eq!((ra.added, ra.updated, ra.removed, ra.skipped, ra.reset), (bc, vec![], vec![], vec![], false));
    assert_eq!(b.poll(t(1)).added, vec![c.subnet()]);
    assert!(c.poll(t(1)).is_quiet(), "c saw everything at start");

    for m in [&a, &b, &c] {
        let expected: BTreeMap<Ipv4Net, PeerConfig> = [&a, &b, &c]
            .into_iter()
            .filter(|o| o.i != m.i)
            .map(|o| (o.subnet(), vxlan_peer(o.subnet(), o.i, vtep(o.i))))
            .collect();
        assert_eq!(m.peers(), expected, "node {}", m.i);
        assert_eq!(m.sync.installed().collect::<Vec<_>>(), expected.keys().copied().collect::<Vec<_>>());
    }
    // Quiet polls stay quiet, and keep the revision.
    let before = a.sync.revision();
    assert!(a.poll(t(2)).is_quiet());
    assert_eq!(a.sync.revision(), before);
}

#[test]
fn vtep_mac_and_public_ip_changes_are_updates() {
    let store = MemoryStore::new();
    let mut m = cluster(&store, "vxlan", 3);
    let (s3, s2) = (m[2].subnet(), m[1].subnet());

    // Node 3's VTEP MAC changes: a renewal with the new value.
    let mut cfg = m[2].node.to_config();
    cfg.backend = BackendConfig::Vxlan(VxlanConfig::new(new_vtep(3)));
    let lease = m[2].me.set_attrs(lease_attrs(&cfg), t(5)).expect("renew").cloned().expect("held");
    assert_eq!(lease.subnet, s3);
    for x in &mut m[..2] {
        let r = x.poll(t(6));
        assert_eq!((r.added.len(), r.updated.clone(), r.removed.len()), (0, vec![s3], 0), "{r}");
        assert_eq!(x.peers().get(&s3), Some(&vxlan_peer(s3, 3, new_vtep(3))));
    }
    // The untouched peer is as it was.
    assert_eq!(m[0].peers().get(&s2), Some(&vxlan_peer(s2, 2, vtep(2))));

    // Node 3 moves to another public IP: released and retaken under the new address in one go, which a poll
    // folds into one update.
    cfg.underlay.node_ip = ip(33);
    let lease = m[2].me.set_attrs(lease_attrs(&cfg), t(7)).expect("move").cloned().expect("held");
    assert_eq!((lease.subnet, lease.attrs.public_ip), (s3, ip(33)));
    let r = m[0].poll(t(8));
    assert_eq!((r.added.len(), r.updated, r.removed.len()), (0, vec![s3], 0));
    assert_eq!(m[0].peers().get(&s3), Some(&PeerConfig::new(s3, ip(33)).with_vtep_mac(new_vtep(3))));

    // A renewal with identical attributes is no change at all.
    let _ = m[2].me.renew(t(9)).expect("renew");
    let r = m[0].poll(t(10));
    assert!(r.is_quiet(), "{r}");
    assert_eq!(Some(r.revision), store.leases(t(10)).ok().map(|s| s.revision), "the renewal was seen");
}

#[test]
fn expired_lease_is_removed_from_the_others() {
    let store = MemoryStore::new();
    let mut m = cluster(&store, "vxlan", 3);
    let (s1, s2, s3) = (m[0].subnet(), m[1].subnet(), m[2].subnet());
    // Renewals are due at half the 100 s TTL; nodes 1 and 2 renew at 60, node 3 has stopped.
    assert!(!m[0].me.due(t(49)));
    for x in &mut m[..2] {
        assert!(x.me.due(t(60)));
        let _ = x.me.renew(t(60)).expect("renew");
    }
    // The renewals change nothing for the others.
    assert!(m[0].poll(t(61)).is_unchanged());
    assert!(m[1].poll(t(61)).is_unchanged());
    // Node 3's lease (from 0) expired at 100 and lapses a TTL later, at 200 (the grace for clock skew).
    assert!(m[0].poll(t(199)).is_unchanged());
    let r = m[0].poll(t(200));
    assert_eq!((r.removed, r.added.len(), r.updated.len()), (vec![s3], 0, 0));
    assert_eq!(m[0].peers().keys().copied().collect::<Vec<_>>(), vec![s2]);
    assert_eq!(m[1].poll(t(201)).removed, vec![s3]);
    assert_eq!(m[1].peers().keys().copied().collect::<Vec<_>>(), vec![s1]);
}

#[test]
fn restart_gets_the_subnet_back_without_churn() {
    let store = MemoryStore::new();
    let mut m = cluster(&store, "vxlan", 3);
    let s2 = m[1].subnet();
    let peers_before = m[0].peers();

    // Node 2 restarts at 30 with the same attributes: same subnet, and the others see no change at all.
    let old = m.remove(1);
    drop(old);
    let (again, report) = Member::join(store.clone(), "vxlan", 2, t(30));
    assert_eq!(again.subnet(), s2);
    assert_eq!(report.added.len(), 2, "the restarted node finds both others: {report}");
    let r = m[0].poll(t(31));
    assert!(r.is_unchanged(), "{r}");
    assert_eq!(m[0].peers(), peers_before);

    // It restarts again with a new VTEP MAC: the others see one update, no removal.
    drop(again);
    let mut cfg = node_config("vxlan", 2, s2);
    cfg.backend = BackendConfig::Vxlan(VxlanConfig::new(new_vtep(2)));
    let manager = SubnetManager::new(store.clone(), network("vxlan")).with_ttl(TTL);
    let mut me = Membership::new(manager, lease_attrs(&cfg));
    assert_eq!(me.acquire(t(40)).expect("own lease").subnet, s2);
    let r = m[0].poll(t(41));
    assert_eq!((r.updated, r.removed.len(), r.added.len()), (vec![s2], 0, 0));
    assert_eq!(m[0].peers().get(&s2), Some(&vxlan_peer(s2, 2, new_vtep(2))));
}

/// Every live lease other than `own`'s, as the peer `backend` makes of it.
fn expected_peers(store: &dyn LeaseStore, own: Ipv4Net, now: SystemTime) -> BTreeMap<Ipv4Net, PeerConfig> {
    let backend = BackendConfig::Vxlan(VxlanConfig::new(vtep(99)));
    store
        .leases(now)
        .expect("read")
        .leases
        .iter()
        .filter(|l| l.subnet != own)
        .map(|l| (l.subnet, peer_from_lease(l, &backend).expect("a vxlan lease")))
        .collect()
}

#[test]
fn reset_resynchronises_exactly() {
    // Two events of history: any poll after three changes must start over from a snapshot.
    let store = MemoryStore::with_history(2);
    let mut m: Vec<_> = (1..=4).map(|i| Member::join(store.clone(), "vxlan", i, t(0)).0).collect();
    let r = m[0].poll(t(1));
    assert!(r.reset, "node 1 missed three joins: {r}");
    assert_eq!(m[0].peers(), expected_peers(&store, m[0].subnet(), t(1)));

    let (s2, s3, s4) = (m[1].subnet(), m[2].subnet(), m[3].subnet());
    m[2].me.release(t(2)).expect("leave");
    let mut cfg = m[3].node.to_config();
    cfg.backend = BackendConfig::Vxlan(VxlanConfig::new(new_vtep(4)));
    let _ = m[3].me.set_attrs(lease_attrs(&cfg), t(2)).expect("renew");
    let (five, _) = Member::join(store.clone(), "vxlan", 5, t(2));
    let r = m[0].poll(t(3));
    assert!(r.reset, "{r}");
    assert_eq!((r.added, r.updated, r.removed), (vec![five.subnet()], vec![s4], vec![s3]));
    assert!(r.skipped.is_empty());
    assert_eq!(m[0].peers(), expected_peers(&store, m[0].subnet(), t(3)));
    assert_eq!(m[0].peers().get(&s2), Some(&vxlan_peer(s2, 2, vtep(2))));
    // And from the snapshot's revision on, plain events again.
    m[1].me.release(t(4)).expect("leave");
    let r = m[0].poll(t(5));
    assert!(!r.reset);
    assert_eq!(r.removed, vec![s2]);
    assert_eq!(m[0].peers(), expected_peers(&store, m[0].subnet(), t(5)));
}

#[test]
fn two_peers_swapping_addresses_end_swapped() {
    let store = MemoryStore::new();
    let (s101, s102) = (net("10.244.101.0/24"), net("10.244.102.0/24"));
    let attrs = |j: u8| lease_attrs(&node_config("vxlan", j, net("10.0.0.0/24")));
    store.acquire(s101, &attrs(101), TTL, t(0)).expect("free");
    store.acquire(s102, &attrs(102), TTL, t(0)).expect("free");
    let (mut a, r) = Member::join(store.clone(), "vxlan", 1, t(0));
    assert_eq!(r.added, vec![s101, s102]);

    // Both leave and come back under each other's address before node 1 polls: the update of the first collides
    // with the second's address, so the first goes, the second is updated, and the first comes back.
    store.release(s101, ip(101), t(1)).expect("own");
    store.release(s102, ip(102), t(1)).expect("own");
    store.acquire(s101, &attrs(102), TTL, t(1)).expect("free");
    store.acquire(s102, &attrs(101), TTL, t(1)).expect("free");
    let r = a.poll(t(2));
    assert!(r.skipped.is_empty(), "{r}");
    assert_eq!((r.removed, r.updated, r.added), (vec![s101], vec![s102], vec![s101]));
    let expected: BTreeMap<Ipv4Net, PeerConfig> =
        [(s101, vxlan_peer(s101, 102, vtep(102))), (s102, vxlan_peer(s102, 101, vtep(101)))].into();
    assert_eq!(a.peers(), expected);
    assert!(a.poll(t(3)).is_quiet());
}

#[test]
fn static_peers_stay_unless_a_lease_takes_them_over() {
    let store = MemoryStore::new();
    let (s200, s201) = (net("10.244.200.0/24"), net("10.244.201.0/24"));
    let static_a = vxlan_peer(s200, 200, vtep(200));
    let static_b = vxlan_peer(s201, 201, vtep(201));
    let mut cfg = node_config("vxlan", 1, net("10.244.1.0/24"));
    cfg.peers = vec![static_a.clone(), static_b.clone()];
    let mut node = Node::new(cfg).expect("valid");
    let mut sync = PeerSync::new(node.config().pod_subnet.expect("a pod subnet"));
    assert!(sync.start(&store, &mut node, t(0)).expect("store").is_quiet(), "static peers stay");
    assert_eq!(node.peers().count(), 2);

    // A lease for 10.244.201.0/24 takes over that static peer (an update), one inside 10.244.200.0/24 is refused.
    let b_cfg = node_config("vxlan", 201, s201);
    let mut b_cfg2 = b_cfg.clone();
    b_cfg2.backend = BackendConfig::Vxlan(VxlanConfig::new(new_vtep(201)));
    store.acquire(s201, &lease_attrs(&b_cfg2), TTL, t(1)).expect("free");
    store.acquire(net("10.244.200.128/25"), &lease_attrs(&node_config("vxlan", 77, s200)), TTL, t(1)).expect("free");
    let r = sync.poll(&store, &mut node, t(1)).expect("store");
    assert_eq!(r.updated, vec![s201]);
    assert_eq!(
        r.skipped,
        vec![Skipped {
            subnet: net("10.244.200.128/25"),
            reason: SkipReason::Node(tweed_overlay::ConfigError::Overlap(net("10.244.200.128/25")))
        }]
    );
    let peers: Vec<PeerConfig> = node.peers().cloned().collect();
    assert_eq!(peers, vec![static_a.clone(), vxlan_peer(s201, 201, new_vtep(201))]);
    assert_eq!(sync.installed().collect::<Vec<_>>(), vec![s201]);

    // The taken-over peer now follows its lease; the untouched static one stays through a full resync too.
    store.release(s201, ip(201), t(2)).expect("own");
    assert_eq!(sync.poll(&store, &mut node, t(2)).expect("store").removed, vec![s201]);
    let r = sync.start(&store, &mut node, t(3)).expect("store");
    assert!(r.is_unchanged());
    assert_eq!(node.peers().cloned().collect::<Vec<_>>(), vec![static_a]);
}

#[test]
fn udp_and_host_gw_leases() {
    let store = MemoryStore::new();
    let m = cluster(&store, "udp", 3);
    for k in 0..3 {
        let expected: BTreeMap<Ipv4Net, PeerConfig> =
            m.iter().filter(|o| o.i != m[k].i).map(|o| (o.subnet(), PeerConfig::new(o.subnet(), ip(o.i)))).collect();
        assert_eq!(m[k].peers(), expected);
    }

    let store = MemoryStore::new();
    // A host-gw lease written by flannel carries no NodeMAC: skipped.
    let flannel = LeaseAttrs::from_json(r#"{"PublicIP":"192.168.0.50","BackendType":"host-gw"}"#).expect("lease");
    store.acquire(net("10.244.250.0/24"), &flannel, TTL, t(0)).expect("free");
    let mut m = cluster(&store, "host-gw", 2);
    for k in 0..2 {
        let o = &m[1 - k];
        let expected = PeerConfig::new(o.subnet(), ip(o.i)).with_node_mac(node_mac(o.i));
        assert_eq!(m[k].peers().into_values().collect::<Vec<_>>(), vec![expected]);
    }
    let a = &mut m[0];
    let r = a.sync.start(&store, &mut a.node, t(2)).expect("store");
    assert!(r.is_unchanged());
    assert_eq!(
        r.skipped,
        vec![Skipped { subnet: net("10.244.250.0/24"), reason: SkipReason::MissingData { field: "NodeMAC" } }]
    );
}

#[test]
fn lease_attrs_of_each_backend() {
    let s = net("10.244.1.0/24");
    assert_eq!(
        lease_attrs(&node_config("vxlan", 1, s)).to_json(),
        r#"{"PublicIP":"192.168.0.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:01"}}"#
    );
    assert_eq!(lease_attrs(&node_config("udp", 1, s)).to_json(), r#"{"PublicIP":"192.168.0.1","BackendType":"udp"}"#);
    assert_eq!(
        lease_attrs(&node_config("host-gw", 1, s)).to_json(),
        r#"{"PublicIP":"192.168.0.1","BackendType":"host-gw","BackendData":{"NodeMAC":"02:00:c0:a8:00:01"}}"#
    );
    // What a node publishes is what its peers install, for every backend.
    for backend in ["vxlan", "udp", "host-gw"] {
        let cfg = node_config(backend, 1, s);
        let lease = Lease { subnet: s, attrs: lease_attrs(&cfg), expiration: t(100), created: 1 };
        let peer = peer_from_lease(&lease, &node_config(backend, 2, net("10.244.2.0/24")).backend).expect("fits");
        let vtep_mac = matches!(cfg.backend, BackendConfig::Vxlan(_)).then_some(vtep(1));
        let node_mac = (backend == "host-gw").then_some(node_mac(1));
        let mut expected = PeerConfig::new(s, ip(1));
        (expected.vtep_mac, expected.node_mac) = (vtep_mac, node_mac);
        assert_eq!(peer, expected, "{backend}");
    }
}

#[test]
fn membership_keeps_the_lease() {
    let store = MemoryStore::new();
    let manager = SubnetManager::new(store.clone(), network("vxlan")).with_ttl(TTL);
    let mut me = Membership::new(manager, lease_attrs(&node_config("vxlan", 1, net("10.0.0.0/24"))));
    assert!(me.due(t(0)), "no lease: due at once");
    // Renewing without a lease acquires one.
    let lease = me.renew(t(0)).expect("room").clone();
    assert_eq!(lease.expiration, t(100));
    assert_eq!(me.renew_at(), Some(t(50)));
    assert!(!me.due(t(49)) && me.due(t(50)));
    assert_eq!(me.renew(t(50)).expect("renew").expiration, t(150));

    // Node 1 stops renewing; after expiry and a TTL of grace node 2 takes the subnet; node 1's renewal then fails and drops it.
    let other = LeaseAttrs::new(ip(2), BackendType::Vxlan);
    store.acquire(lease.subnet, &other, TTL, t(250)).expect("lapsed, free");
    let err = me.renew(t(251)).expect_err("taken");
    assert!(matches!(err, AllocError::Store(StoreError::Taken { holder, .. }) if holder == ip(2)), "{err}");
    assert_eq!(me.lease(), None);
    assert!(me.due(t(251)));
    let again = me.renew(t(252)).expect("another subnet").subnet;
    assert_ne!(again, lease.subnet);

    // Release gives it back; releasing twice is fine.
    me.release(t(253)).expect("release");
    me.release(t(254)).expect("nothing held");
    assert_eq!(store.leases(t(255)).expect("read").leases.len(), 1);
    // A move to another address while the subnet lapsed and was taken: the node ends on a free subnet.
    let held = me.acquire(t(260)).expect("own").subnet;
    store.acquire(held, &LeaseAttrs::new(ip(3), BackendType::Vxlan), TTL, t(460)).expect("lapsed, free");
    let moved = me.set_attrs(LeaseAttrs::new(ip(4), BackendType::Vxlan), t(461)).expect("moved").cloned();
    let moved = moved.expect("a lease");
    assert_ne!(moved.subnet, held);
    assert_eq!(moved.attrs.public_ip, ip(4));
    // Node 2's lease from 250 has lapsed meanwhile; ip(1) holds nothing.
    let holders: BTreeMap<Ipv4Net, Ipv4Addr> =
        store.leases(t(462)).expect("read").leases.iter().map(|l| (l.subnet, l.attrs.public_ip)).collect();
    assert_eq!(holders, [(held, ip(3)), (moved.subnet, ip(4))].into());
    me.release(t(463)).expect("release");

    // Attributes set without a lease wait for the next acquisition.
    assert_eq!(me.set_attrs(LeaseAttrs::new(ip(9), BackendType::Vxlan), t(464)), Ok(None));
    assert_eq!(me.acquire(t(465)).expect("room").attrs.public_ip, ip(9));
}

#[test]
fn sync_over_a_file_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("leases.json");
    let mut m: Vec<_> = (1..=3).map(|i| Member::join(FileStore::new(&path), "vxlan", i, t(0)).0).collect();
    for x in &mut m {
        let _ = x.poll(t(1));
    }
    for x in &m {
        let expected: BTreeMap<Ipv4Net, PeerConfig> =
            m.iter().filter(|o| o.i != x.i).map(|o| (o.subnet(), vxlan_peer(o.subnet(), o.i, vtep(o.i)))).collect();
        assert_eq!(x.peers(), expected, "node {}", x.i);
    }
    // Node 3 stops renewing; 1 and 2 renew; node 3's peer lapses at 200 (expired at 100, plus the TTL) on both.
    for x in &mut m[..2] {
        let _ = x.me.renew(t(60)).expect("renew");
    }
    let s3 = m[2].subnet();
    for x in &mut m[..2] {
        let r = x.poll(t(200));
        assert_eq!((r.removed, r.updated.len(), r.added.len()), (vec![s3], 0, 0));
    }
    // A second process on the same file sees the same thing from scratch.
    let mut node = Node::new(node_config("vxlan", 9, net("10.244.0.0/24"))).expect("valid");
    let mut sync = PeerSync::new(node.config().pod_subnet.expect("a pod subnet"));
    assert_eq!(sync.start(&FileStore::new(&path), &mut node, t(201)).expect("store").added.len(), 2);
}

// --- traffic across a sync ---

/// Runs `frame` into `node` on `port` (from `remote` when it is the socket port); returns what came out.
fn run(node: &mut Node, pool: &mut Pool, port: PortId, remote: Ipv4Addr, frame: &[u8]) -> Vec<(Vec<u8>, Verdict)> {
    let mut batch = Batch::new(8);
    let mut buf = pool.get().expect("pool");
    buf.extend_from_slice(frame).expect("fits");
    buf.meta_mut().ingress = port;
    buf.meta_mut().set_remote((remote, 8472).into());
    batch.push(buf).expect("room");
    let mut out = Outputs::new(64);
    node.process(Instant::from_secs(1), pool, &mut batch, &mut out);
    let items: Vec<(Vec<u8>, Verdict)> = out.as_slice().iter().map(|(b, v)| (b.data().to_vec(), *v)).collect();
    out.recycle(pool);
    items
}

fn eth(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(dst.as_bytes());
    f.extend_from_slice(src.as_bytes());
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ICMP echo (request: type 8, reply: type 0) with a correct checksum, in an IPv4 packet.
fn echo(src: Ipv4Addr, dst: Ipv4Addr, msg: u8, seq: u16) -> Vec<u8> {
    let mut icmp = vec![0u8; 8 + 32];
    icmp[0] = msg;
    icmp[4..6].copy_from_slice(&0x7eed_u16.to_be_bytes());
    icmp[6..8].copy_from_slice(&seq.to_be_bytes());
    icmp[8..].fill(0xa5);
    let c = checksum::checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let repr = ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: ipv4::Protocol::ICMP,
        payload_len: icmp.len(),
        ttl: 64,
        dscp: 0,
        ecn: 0,
        ident: seq,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let mut p = vec![0u8; 20 + icmp.len()];
    repr.emit(&mut ipv4::Packet::new_unchecked(&mut p[..]));
    p[20..].copy_from_slice(&icmp);
    p
}

/// A pod of member `m`: its address and MAC.
fn pod<S: LeaseStore>(m: &Member<S>) -> (Ipv4Addr, MacAddr) {
    let base = u32::from(m.subnet().network());
    (Ipv4Addr::from(base + 2), MacAddr::new(0x0a, 0x58, 0, 0, 0, m.i))
}

/// The pod of `m` asks for its gateway; the node answers (and learns the pod's address).
fn arp_gateway<S: LeaseStore>(m: &mut Member<S>, pool: &mut Pool) {
    let (pod_ip, pod_mac) = pod(m);
    let gw = m.node.config().gateway_ip();
    let mut req = vec![0u8; arp::HEADER_LEN];
    arp::Repr::request(pod_mac, pod_ip, gw).emit(&mut arp::Packet::new_unchecked(&mut req[..]));
    let out = run(&mut m.node, pool, POD, Ipv4Addr::UNSPECIFIED, &eth(MacAddr::BROADCAST, pod_mac, 0x0806, &req));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, Verdict::Port(POD));
}

/// One echo from the pod of `from` to the pod of `to`: exactly one frame leaves `from` for `to`'s underlay
/// address with `to`'s VTEP MAC inside, and exactly one frame reaches `to`'s pod (no ARP, nothing queued).
fn one_way<S: LeaseStore>(
    from: &mut Member<S>,
    to: &mut Member<S>,
    pool: &mut Pool,
    msg: u8,
    seq: u16,
    to_vtep: MacAddr,
) {
    let ((src_ip, src_mac), (dst_ip, dst_mac)) = (pod(from), pod(to));
    let gw_mac = from.node.config().gateway_mac();
    let frame = eth(gw_mac, src_mac, 0x0800, &echo(src_ip, dst_ip, msg, seq));
    let out = run(&mut from.node, pool, POD, Ipv4Addr::UNSPECIFIED, &frame);
    assert_eq!(out.len(), 1, "node {} -> {}: {:?}", from.i, to.i, out.iter().map(|o| o.1).collect::<Vec<_>>());
    let (bytes, verdict) = &out[0];
    let Verdict::Underlay { dst, payload_offset } = *verdict else { panic!("not to the underlay: {verdict:?}") };
    assert_eq!(dst, (ip(to.i), 8472).into());
    let payload = &bytes[usize::from(payload_offset)..];
    assert_eq!(&payload[8..14], to_vtep.as_bytes(), "inner destination: the peer's VTEP MAC");

    let out = run(&mut to.node, pool, SOCKET, ip(from.i), payload);
    assert_eq!(out.len(), 1, "node {} from {}: {:?}", to.i, from.i, out.iter().map(|o| o.1).collect::<Vec<_>>());
    let (bytes, verdict) = &out[0];
    assert_eq!(*verdict, Verdict::Port(POD));
    assert_eq!(&bytes[0..6], dst_mac.as_bytes());
    let ip4 = ipv4::Packet::new_checked(&bytes[14..]).expect("ipv4");
    assert_eq!((ip4.src_addr(), ip4.dst_addr(), ip4.ttl()), (src_ip, dst_ip, 62), "two routers on the way");
    let icmp = icmpv4::Packet::new_checked(ip4.payload()).expect("icmp");
    assert_eq!((icmp.msg_type().0, icmp.echo_seq_no()), (msg, seq));
}

#[test]
fn traffic_to_an_untouched_peer_flows_across_a_sync() {
    let store = MemoryStore::new();
    let mut m = cluster(&store, "vxlan", 3);
    let mut pool = Pool::new(PoolConfig::default()).expect("pool");
    let [a, b, c] = &mut m[..] else { unreachable!("three members") };
    for x in [&mut *a, &mut *b, &mut *c] {
        arp_gateway(x, &mut pool);
    }
    let ping = |a: &mut Member<MemoryStore>, b: &mut Member<MemoryStore>, pool: &mut Pool, seq: u16| {
        one_way(a, b, pool, 8, seq, vtep(b.i));
        one_way(b, a, pool, 0, seq, vtep(a.i));
    };
    ping(a, b, &mut pool, 1);
    one_way(a, c, &mut pool, 8, 1, vtep(3));

    // Node 3 changes its VTEP MAC: node 1 updates that peer; its traffic with node 2 goes on as before, its
    // ARP and FDB state intact (the same single frame each way), and traffic to node 3 uses the new MAC.
    let mut cfg = c.node.to_config();
    cfg.backend = BackendConfig::Vxlan(VxlanConfig::new(new_vtep(3)));
    let _ = c.me.set_attrs(lease_attrs(&cfg), t(5)).expect("renew");
    c.node = Node::new(cfg).expect("valid");
    let _ = c.sync.start(&store, &mut c.node, t(5)).expect("store");
    arp_gateway(c, &mut pool);
    let r = a.poll(t(5));
    assert_eq!((r.updated, r.removed.len()), (vec![c.subnet()], 0));
    ping(a, b, &mut pool, 2);
    one_way(a, c, &mut pool, 8, 2, new_vtep(3));

    // Node 3 leaves: node 1 drops its route, and node 2 is still reached.
    c.me.release(t(6)).expect("leave");
    assert_eq!(a.poll(t(6)).removed, vec![c.subnet()]);
    ping(a, b, &mut pool, 3);
    let (src_ip, src_mac) = pod(a);
    let frame = eth(a.node.config().gateway_mac(), src_mac, 0x0800, &echo(src_ip, pod(c).0, 8, 4));
    let out = run(&mut a.node, &mut pool, POD, Ipv4Addr::UNSPECIFIED, &frame);
    let verdicts: Vec<Verdict> = out.iter().map(|o| o.1).collect();
    assert!(verdicts.contains(&Verdict::Drop(DropReason::NoRoute)), "{verdicts:?}");
    assert!(verdicts.iter().all(|v| !matches!(v, Verdict::Underlay { .. })));
}

#[test]
fn report_display() {
    let mut r = SyncReport { revision: 7, ..SyncReport::default() };
    assert_eq!(r.to_string(), "revision 7: no change");
    assert!(r.is_quiet());
    r.reset = true;
    assert_eq!(r.to_string(), "revision 7 (reset): no change");
    assert!(r.is_unchanged() && !r.is_quiet());
    r.updated = vec![net("10.244.2.0/24")];
    r.removed = vec![net("10.244.3.0/24"), net("10.244.4.0/24")];
    r.skipped = vec![Skipped { subnet: net("10.244.9.0/24"), reason: SkipReason::MissingData { field: "VtepMAC" } }];
    assert_eq!(
        r.to_string(),
        "revision 7 (reset): updated 10.244.2.0/24; removed 10.244.3.0/24, 10.244.4.0/24; skipped 10.244.9.0/24 (no \
         VtepMAC in its BackendData)"
    );
}

mod leases;
