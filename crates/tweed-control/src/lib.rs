//! tweed's control plane: who owns which subnet of the overlay, and how the nodes agree on it.
//!
//! - [`cidr`]: IPv4 CIDR arithmetic and the report `tweed cidr` prints.
//! - [`config`]: the network configuration in flannel's JSON form, validated with flannel's defaults.
//! - [`lease`]: subnet leases, their attributes and key names, byte-compatible with what flannel writes to etcd.
//! - [`store`]: the [`LeaseStore`] trait (atomic acquisition, TTLs, a watch stream) and the in-memory store.
//! - [`alloc`]: the [`SubnetManager`] that gives each node a subnet, keeps it across restarts and renews it.
//! - [`file_store`]: the default store, one JSON file under a file lock.
//! - [`subnet_env`]: flannel's subnet file (`subnet.env`), written for the pods' plumbing and read back on restart.
//! - [`sync`]: the agent's side: our own lease kept ([`Membership`]), the others' followed as peers of a running
//!   node ([`PeerSync`]).
//! - `etcd_store` (cargo feature `etcd`, off by default): the store in etcd, in flannel's key layout, so a cluster
//!   outgrows one machine. Turn it on with `cargo build --features etcd` (or `tweed-control = { features = ["etcd"] }`);
//!   the `etcd-client` crate it uses needs `protoc` at build time (Debian: `apt-get install protobuf-compiler`).
//!
//! The core reads no clock: every operation that depends on time takes `now` as an argument, so tests are
//! deterministic and a driver decides when to renew.

#![forbid(unsafe_code)]

pub mod alloc;
pub mod cidr;
pub mod config;
#[cfg(feature = "etcd")]
pub mod etcd_store;
pub mod file_store;
pub mod lease;
pub mod store;
pub mod subnet_env;
pub mod sync;

pub use alloc::{AllocError, SubnetManager};
pub use cidr::Ipv4Cidr;
pub use config::{BackendType, ConfigError, NetworkConfig};
#[cfg(feature = "etcd")]
pub use etcd_store::{EtcdOptions, EtcdStore};
pub use file_store::FileStore;
pub use lease::{Lease, LeaseAttrs, VxlanData};
pub use store::{LeaseStore, MemoryStore, StoreError};
pub use subnet_env::SubnetEnv;
pub use sync::{Membership, PeerSync, SkipReason, Skipped, SyncReport, lease_attrs, peer_from_lease};
