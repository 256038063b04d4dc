//! What an idle agent costs etcd and itself (issue 12, finding 14), measured by hand:
//!
//! ```text
//! cargo run --release -p tweed-control --features etcd --example idle_cost [-- LEASES [SECONDS]]
//! ```
//!
//! For each way of writing leases (flannel's: an etcd lease and the value; tweed's: the same plus tweed's expiration
//! key) a fresh etcd (Debian's `etcd`, on loopback) gets `LEASES` leases (5,000 by default). Then one agent joins as
//! the agent does: acquires its own lease, takes a snapshot into a node's peers, and every 500 ms (the agent's
//! `poll_ms`) renews when due and applies the store's changes. After 2 s of settling, the CPU time of this process
//! and of etcd is read from `/proc` over `SECONDS` idle seconds (10 by default), as a share of one CPU. Last, another
//! node acquires a lease and the time until the agent has it as a peer is printed.

#[path = "../tests/etcd_harness/mod.rs"]
#[allow(missing_docs)]
mod etcd_harness;

use core::net::Ipv4Addr;
use core::time::Duration;
use std::time::{Instant, SystemTime};

use etcd_client::{Client, PutOptions, Txn, TxnOp};
use ipnet::Ipv4Net;
use tweed_control::config::NetworkConfig;
use tweed_control::etcd_store::{EtcdOptions, EtcdStore};
use tweed_control::lease::{DEFAULT_PREFIX, LeaseAttrs, VxlanData};
use tweed_control::store::LeaseStore;
use tweed_control::sync::{Membership, PeerSync, lease_attrs};
use tweed_control::{SubnetManager, alloc};
use tweed_overlay::{Limits, NodeBuilder, VxlanConfig};
use tweed_wire::ethernet::MacAddr;

const CONFIG: &str = r#"{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}}"#;
const POLL: Duration = Duration::from_millis(500);

/// utime + stime of process `pid` (`self` for this one), in clock ticks (USER_HZ, 100 on Linux).
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

fn subnet(i: u32) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from_bits(0x0a00_0000 | (i << 8)), 24).expect("a /24")
}

fn attrs(i: u32) -> LeaseAttrs {
    let [_, _, a, b] = i.to_be_bytes();
    LeaseAttrs::vxlan(Ipv4Addr::new(172, 16, a, b), VxlanData { vni: 1, vtep_mac: MacAddr::new(0x0e, 0, 0, 0, a, b) })
}

/// Writes `n` leases the way flannel does (`tweed_way`: also tweed's expiration key), one etcd lease each.
fn populate(endpoint: &str, n: u32, tweed_way: bool) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut c = Client::connect([endpoint], None).await.expect("etcd");
        c.put(format!("{DEFAULT_PREFIX}/config"), CONFIG, None).await.expect("config");
        let expires = SystemTime::now() + Duration::from_secs(3600);
        let expires_ms = expires.duration_since(SystemTime::UNIX_EPOCH).expect("after 1970").as_millis();
        for i in 1..=n {
            let id = c.lease_grant(3600, None).await.expect("grant").id();
            let name = format!("{}-24", subnet(i).addr());
            let mut ops = vec![TxnOp::put(
                format!("{DEFAULT_PREFIX}/subnets/{name}"),
                attrs(i).to_json(),
                Some(PutOptions::new().with_lease(id)),
            )];
            if tweed_way {
                ops.push(TxnOp::put(
                    format!("{DEFAULT_PREFIX}/tweed/expirations/{name}"),
                    expires_ms.to_string(),
                    Some(PutOptions::new().with_lease(id)),
                ));
            }
            c.txn(Txn::new().and_then(ops)).await.expect("put");
        }
    });
}

fn measure(n: u32, seconds: u64, tweed_way: bool) {
    let way = if tweed_way { "tweed" } else { "flannel" };
    let Some(etcd) = etcd_harness::Etcd::start() else { return };
    let etcd_pid = etcd.pid().expect("running").to_string();
    let began = Instant::now();
    populate(&etcd.endpoint(), n, tweed_way);
    println!("{n} leases written the {way} way in {:.1} s", began.elapsed().as_secs_f64());

    // The agent: its lease, its node, its sync.
    let store = EtcdStore::connect(&etcd.endpoints(), DEFAULT_PREFIX, EtcdOptions::default()).expect("etcd");
    let network = NetworkConfig::from_json(CONFIG).expect("valid");
    let manager = SubnetManager::from_store(store).expect("config").with_ttl(alloc::DEFAULT_RENEW_MARGIN * 24);
    let me = NodeBuilder::new(subnet(0), Ipv4Addr::new(192, 168, 0, 1), MacAddr::new(2, 0, 0, 0, 0, 1))
        .vxlan(VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 1, 1)))
        .underlay_gateway_mac(MacAddr::new(2, 0, 0, 0, 9, 9));
    let mut membership = Membership::new(manager, lease_attrs(&me.clone().into_config()));
    let joined = Instant::now();
    let own = membership.acquire(SystemTime::now()).expect("room").subnet;
    let limits = Limits { max_peers: n + 16, ..Limits::default() };
    let mut node = NodeBuilder::new(own, Ipv4Addr::new(192, 168, 0, 1), MacAddr::new(2, 0, 0, 0, 0, 1))
        .vxlan(VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 1, 1)))
        .underlay_gateway_mac(MacAddr::new(2, 0, 0, 0, 9, 9))
        .limits(limits)
        .build()
        .expect("node");
    let mut sync = PeerSync::new(own).with_network(&network);
    let report = sync.start(membership.manager().store(), &mut node, SystemTime::now()).expect("snapshot");
    println!(
        "joined: {} peers, {} skipped, in {:.2} s",
        report.added.len(),
        report.skipped.len(),
        joined.elapsed().as_secs_f64()
    );

    // The agent's rounds: renew when due, apply the changes.
    let mut round = |membership: &mut Membership<EtcdStore>| {
        let now = SystemTime::now();
        if membership.due(now) {
            membership.renew(now).expect("renewal");
        }
        sync.poll(membership.manager().store(), &mut node, now).expect("watch")
    };
    let settle = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle {
        let _ = round(&mut membership);
        std::thread::sleep(POLL);
    }
    let (ours, theirs, wall) = (cpu_ticks("self"), cpu_ticks(&etcd_pid), Instant::now());
    let end = wall + Duration::from_secs(seconds);
    while Instant::now() < end {
        let _ = round(&mut membership);
        std::thread::sleep(POLL);
    }
    let elapsed = wall.elapsed().as_secs_f64();
    // Clock ticks are 1/100 s.
    let share = |ticks: u64| ticks as f64 / 100.0 / elapsed * 100.0;
    println!(
        "{way} way, {n} leases, idle for {elapsed:.1} s: agent {:.2}% of a CPU, etcd {:.2}% of a CPU",
        share(cpu_ticks("self") - ours),
        share(cpu_ticks(&etcd_pid) - theirs)
    );

    // Another node joins: how long until this agent has it as a peer.
    let other = EtcdStore::connect(&etcd.endpoints(), DEFAULT_PREFIX, EtcdOptions::default()).expect("etcd");
    let newcomer = subnet(n + 1);
    let written = Instant::now();
    other.acquire(newcomer, &attrs(n + 1), Duration::from_secs(3600), SystemTime::now()).expect("free");
    loop {
        let report = round(&mut membership);
        if report.added.contains(&newcomer) {
            println!(
                "a new node's lease became a peer {:.0} ms after it was written",
                written.elapsed().as_secs_f64() * 1e3
            );
            break;
        }
        assert!(written.elapsed() < Duration::from_secs(10), "the new lease did not arrive within 10 s");
        std::thread::sleep(POLL);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5_000);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    for tweed_way in [false, true] {
        measure(n, seconds, tweed_way);
    }
}
