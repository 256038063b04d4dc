//! What the etcd tests share: a store on a test etcd, lease attributes, and a raw client to see and write what
//! etcdctl or flannel would.

#![allow(dead_code, unreachable_pub)]

use core::net::Ipv4Addr;
use core::time::Duration;
use std::time::{Instant, SystemTime};

use etcd_client::{Client, GetOptions, PutOptions};
use ipnet::Ipv4Net;
use tweed_control::etcd_store::{EtcdOptions, EtcdStore};
use tweed_control::lease::{DEFAULT_PREFIX, LeaseAttrs, VxlanData};
use tweed_control::store::{LeaseStore, Watch};

use crate::etcd_harness::Etcd;

pub const FLANNEL_CONFIG: &str = r#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#;
/// What flannel writes for a vxlan node (its `LeaseAttrs`, as Go's encoding/json renders it).
pub const FLANNEL_LEASE: &str =
    r#"{"PublicIP":"192.168.0.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:2a:5b:7c:11:01"}}"#;

pub fn options() -> EtcdOptions {
    EtcdOptions {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
        ..EtcdOptions::default()
    }
}

pub fn store(etcd: &Etcd) -> EtcdStore {
    EtcdStore::connect(&etcd.endpoints(), DEFAULT_PREFIX, options()).expect("etcd answers")
}

pub fn node(last: u8) -> LeaseAttrs {
    LeaseAttrs::vxlan(
        Ipv4Addr::new(192, 168, 0, last),
        VxlanData { vni: 1, vtep_mac: format!("0e:2a:5b:7c:11:{last:02x}").parse().expect("mac literal") },
    )
}

pub fn net(s: &str) -> Ipv4Net {
    s.parse().expect("test literal")
}

/// A raw etcd client on its own runtime, to look at and write keys the way etcdctl or flannel would.
pub struct Raw {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl Raw {
    pub fn new(etcd: &Etcd) -> Self {
        Self::at(&etcd.endpoint())
    }

    pub fn at(endpoint: &str) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let client = rt.block_on(Client::connect([endpoint], None)).expect("raw client");
        Self { rt, client }
    }

    pub fn delete(&self, key: &str) {
        let mut c = self.client.clone();
        self.rt.block_on(c.delete(key, None)).expect("delete");
    }

    pub fn put_bytes(&self, key: &str, value: &[u8]) {
        let mut c = self.client.clone();
        self.rt.block_on(c.put(key, value, None)).expect("put");
    }

    /// The value and the etcd lease id of `key`.
    pub fn get(&self, key: &str) -> Option<(String, i64)> {
        let mut c = self.client.clone();
        let resp = self.rt.block_on(c.get(key, None)).expect("get");
        resp.kvs().first().map(|kv| (kv.value_str().expect("utf-8").to_owned(), kv.lease()))
    }

    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut c = self.client.clone();
        let resp =
            self.rt.block_on(c.get(prefix, Some(GetOptions::new().with_prefix().with_keys_only()))).expect("get");
        resp.kvs().iter().map(|kv| kv.key_str().expect("utf-8").to_owned()).collect()
    }

    pub fn put(&self, key: &str, value: &str, ttl_secs: Option<i64>) {
        let mut c = self.client.clone();
        let lease = ttl_secs.map(|s| self.rt.block_on(c.lease_grant(s, None)).expect("grant").id());
        self.rt.block_on(c.put(key, value, lease.map(|id| PutOptions::new().with_lease(id)))).expect("put");
    }

    pub fn ttl(&self, lease: i64) -> i64 {
        let mut c = self.client.clone();
        self.rt.block_on(c.lease_time_to_live(lease, None)).expect("ttl").ttl()
    }

    pub fn compact_now(&self) -> i64 {
        let mut c = self.client.clone();
        let rev = self.rt.block_on(c.get("x", None)).expect("get").header().expect("header").revision();
        self.rt.block_on(c.compact(rev, None)).expect("compact");
        rev
    }
}

/// The wall clock to the millisecond, the precision the stores keep expirations in.
pub fn now_ms() -> SystemTime {
    let since = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("after 1970");
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(since.as_millis()).expect("fits"))
}

/// Polls `cond` every 100 ms until it holds or `limit` passes.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

/// `s.watch(since, now)`, asked again while it fails for up to 10 s: a store's watch task may be reconnecting (after
/// an etcd restart, or a compaction that cancelled its stream), and until it has caught up, `watch` gives up after
/// the request timeout.
pub fn watch_eventually(s: &EtcdStore, since: u64, now: SystemTime) -> Watch {
    let mut last = None;
    let caught_up = eventually(Duration::from_secs(10), || match s.watch(since, now) {
        Ok(w) => {
            last = Some(Ok(w));
            true
        }
        Err(e) => {
            last = Some(Err(e));
            false
        }
    });
    match last {
        Some(Ok(w)) if caught_up => w,
        other => panic!("the watch did not catch up within 10 s: {other:?}"),
    }
}
