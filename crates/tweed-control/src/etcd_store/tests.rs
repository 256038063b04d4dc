//! The etcd store against a real etcd: the conformance suite and the edges.

/// The etcd server the tests start (shared with `tests/etcd.rs`).
#[path = "../../tests/etcd_harness/mod.rs"]
mod test_harness;

use super::*;
use crate::store::conformance::{basic, compaction};
use test_harness as harness;

/// The contract every store meets (`store::conformance`), against a real etcd. One server per run, used in turn
/// under two prefixes: the suite expects consecutive revisions, so nothing else may write meanwhile.
#[test]
fn etcd_store_conformance() {
    let Some(etcd) = harness::Etcd::start() else { return };
    let basic_store =
        EtcdStore::connect(&etcd.endpoints(), "/tweed-test/basic", EtcdOptions::default()).expect("connects");
    basic(&basic_store, false);
    let two = EtcdOptions { history: 2, ..EtcdOptions::default() };
    let compaction_store = EtcdStore::connect(&etcd.endpoints(), "/tweed-test/compaction", two).expect("connects");
    compaction(&compaction_store);
}

#[test]
fn prefix_end_is_the_next_key() {
    assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
    assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
    assert_eq!(prefix_end(""), vec![0]);
}

#[test]
fn unreachable_etcd_is_a_clear_error_in_bounded_time() {
    // A port nothing listens on: bound, so no test running beside this one can start a server there, but not
    // listening, so a connection is refused as on a free port.
    let held = tokio::net::TcpSocket::new_v4().expect("a socket");
    held.bind((std::net::Ipv4Addr::LOCALHOST, 0).into()).expect("a free loopback port");
    let port = held.local_addr().expect("bound").port();
    let options = EtcdOptions {
        connect_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(500),
        ..EtcdOptions::default()
    };
    let started = std::time::Instant::now();
    let err = EtcdStore::connect(&[format!("http://127.0.0.1:{port}")], "/x", options).expect_err("nobody there");
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(err.to_string().starts_with("lease store unavailable: "), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    drop(held);
}
