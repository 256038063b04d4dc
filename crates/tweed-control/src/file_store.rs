//! A lease store in one JSON file: for a single machine or a static cluster sharing a file system, and the default.
//!
//! The file holds the config, the leases (flannel's key names and values, with an expiration), the revision and the
//! recent events. Every operation runs under an exclusive lock (`File::lock`, `flock(2)` on Unix) on a sibling file
//! `<path>.lock`, reads the file, changes it and writes it back through a temporary file and a rename, so a reader
//! never sees half a file and a crash leaves the old or the new state. The lock file is never replaced: locking the
//! data file itself would not work, since the rename swaps the inode a waiting process is locking.
//!
//! Two threads or two processes opening the same path never hand out one subnet twice. Operations that find
//! nothing to change (a read, a renewal refused) do not rewrite the file.

use core::net::Ipv4Addr;
use core::time::Duration;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ipnet::Ipv4Net;

use crate::lease::{Lease, LeaseAttrs};
use crate::store::{DEFAULT_HISTORY, LeaseStore, Snapshot, State, StoreError, Watch};

/// A lease store in a JSON file. Cheap to open; holds no file open between operations.
///
/// ```
/// use core::time::Duration;
/// use std::time::SystemTime;
/// use tweed_control::config::BackendType;
/// use tweed_control::file_store::FileStore;
/// use tweed_control::lease::LeaseAttrs;
/// use tweed_control::store::LeaseStore;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("leases.json");
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
/// let attrs = LeaseAttrs::new("192.168.0.1".parse()?, BackendType::HostGw);
/// FileStore::new(&path).acquire("10.244.1.0/24".parse()?, &attrs, Duration::from_secs(60), now)?;
/// // Another handle (another process) sees it.
/// assert_eq!(FileStore::new(&path).leases(now)?.leases.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
    history: usize,
}

fn io_err(context: &str, path: &Path, e: &io::Error) -> StoreError {
    StoreError::Io { context: format!("{context} {}", path.display()), message: e.to_string() }
}

impl FileStore {
    /// The store in the file at `path` (created on the first change), keeping [`DEFAULT_HISTORY`] events.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_history(path, DEFAULT_HISTORY)
    }

    /// The store at `path`, keeping `history` events for watchers.
    #[must_use]
    pub fn with_history(path: impl Into<PathBuf>, history: usize) -> Self {
        let path = path.into();
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        Self { path, lock_path: lock_path.into(), history }
    }

    /// The data file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<State, StoreError> {
        let mut state = match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice::<State>(&bytes).map_err(|e| StoreError::Corrupt {
                context: self.path.display().to_string(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => State::new(self.history),
            Err(e) => return Err(io_err("reading", &self.path, &e)),
        };
        state.set_history(self.history);
        Ok(state)
    }

    fn write(&self, state: &State) -> Result<(), StoreError> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut bytes = serde_json::to_vec_pretty(state)
            .map_err(|e| StoreError::Corrupt { context: "encoding the state".into(), message: e.to_string() })?;
        bytes.push(b'\n');
        let mut file = File::create(&tmp).map_err(|e| io_err("creating", &tmp, &e))?;
        file.write_all(&bytes).map_err(|e| io_err("writing", &tmp, &e))?;
        file.sync_all().map_err(|e| io_err("syncing", &tmp, &e))?;
        fs::rename(&tmp, &self.path).map_err(|e| io_err("renaming over", &self.path, &e))
    }

    /// Runs `f` on the state under the lock (shared when `exclusive` is false), writing the state back when `f`
    /// says it changed it.
    fn locked<R>(&self, exclusive: bool, f: impl FnOnce(&mut State) -> (R, bool)) -> Result<R, StoreError> {
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.lock_path)
            .map_err(|e| io_err("opening", &self.lock_path, &e))?;
        if exclusive { lock.lock() } else { lock.lock_shared() }.map_err(|e| io_err("locking", &self.lock_path, &e))?;
        let mut state = self.read()?;
        let (result, dirty) = f(&mut state);
        if dirty {
            self.write(&state)?;
        }
        // Closing `lock` releases the lock.
        drop(lock);
        Ok(result)
    }

    /// A mutation that first reaps lapsed leases; the file is rewritten when either changed anything.
    fn mutate<R>(
        &self,
        now: SystemTime,
        f: impl FnOnce(&mut State) -> Result<(R, bool), StoreError>,
    ) -> Result<R, StoreError> {
        self.locked(true, |s| {
            let reaped = s.expire(now);
            match f(s) {
                Ok((r, changed)) => (Ok(r), reaped || changed),
                Err(e) => (Err(e), reaped),
            }
        })?
    }
}

impl LeaseStore for FileStore {
    fn get_config(&self) -> Result<Option<String>, StoreError> {
        self.locked(false, |s| (s.config(), false))
    }

    fn put_config(&self, config: &str) -> Result<u64, StoreError> {
        self.locked(true, |s| (s.put_config(config), true))
    }

    fn leases(&self, now: SystemTime) -> Result<Snapshot, StoreError> {
        self.mutate(now, |s| Ok((s.snapshot(), false)))
    }

    fn acquire(
        &self,
        subnet: Ipv4Net,
        attrs: &LeaseAttrs,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Lease, StoreError> {
        self.mutate(now, |s| s.acquire(subnet, attrs, ttl, now).map(|l| (l, true)))
    }

    fn renew(&self, subnet: Ipv4Net, attrs: &LeaseAttrs, ttl: Duration, now: SystemTime) -> Result<Lease, StoreError> {
        self.mutate(now, |s| s.renew(subnet, attrs, ttl, now).map(|l| (l, true)))
    }

    fn release(&self, subnet: Ipv4Net, public_ip: Ipv4Addr, now: SystemTime) -> Result<(), StoreError> {
        self.mutate(now, |s| s.release(subnet, public_ip).map(|removed| ((), removed)))
    }

    fn watch(&self, since: u64, now: SystemTime) -> Result<Watch, StoreError> {
        self.mutate(now, |s| Ok((s.watch(since), false)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::*;

    #[test]
    fn file_store_conformance() {
        let dir = tempfile::tempdir().expect("tempdir");
        basic(&FileStore::new(dir.path().join("a.json")));
        compaction(&FileStore::with_history(dir.path().join("b.json"), 2));
    }

    #[test]
    fn survives_reopen_and_is_readable_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("leases.json");
        let lease = FileStore::new(&path)
            .acquire(net("10.244.7.0/24"), &attrs(7), Duration::from_secs(60), t(5))
            .expect("free");
        let again = FileStore::new(&path);
        assert_eq!(again.leases(t(6)).expect("read").leases, vec![lease]);
        // The lease is stored under flannel's key name with flannel's value.
        let text = fs::read_to_string(&path).expect("written");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            doc["leases"]["10.244.7.0-24"]["value"],
            serde_json::json!({"PublicIP": "192.168.0.7", "BackendType": "vxlan"})
        );
        assert_eq!(doc["leases"]["10.244.7.0-24"]["expires_ms"], serde_json::json!(65_000));
    }

    #[test]
    fn corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("leases.json");
        fs::write(&path, b"{\"revision\": ").expect("write");
        let err = FileStore::new(&path).leases(t(0)).expect_err("corrupt");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        let missing_dir = FileStore::new(dir.path().join("no/such/dir/leases.json"));
        assert!(matches!(missing_dir.leases(t(0)), Err(StoreError::Io { .. })));
    }

    #[test]
    fn racing_handles_never_share_a_subnet() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("leases.json");
        let subnets: Vec<Ipv4Net> = (0..6u8).map(|i| net(&format!("10.1.{i}.0/24"))).collect();
        let mut all: Vec<Ipv4Net> = std::thread::scope(|s| {
            let handles: Vec<_> = (1..=4u8)
                .map(|node| {
                    // Each thread opens its own store, as a separate process would.
                    let store = FileStore::new(&path);
                    let subnets = &subnets;
                    s.spawn(move || {
                        subnets
                            .iter()
                            .filter(|sn| store.acquire(**sn, &attrs(node), Duration::from_secs(60), t(0)).is_ok())
                            .copied()
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("no panic")).collect()
        });
        all.sort();
        assert_eq!(all, subnets, "each subnet won exactly once");
        assert_eq!(FileStore::new(&path).leases(t(1)).expect("read").leases.len(), subnets.len());
    }
}
