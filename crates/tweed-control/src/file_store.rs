//! A lease store in one JSON file: for a single machine or a static cluster sharing a file system, and the default.
//!
//! The file holds the config, the leases (flannel's key names and values, with an expiration), the revision and the
//! recent events. Every operation runs under an exclusive lock (`File::lock`, `flock(2)` on Unix) on a sibling file
//! `<path>.lock`, reads the file, changes it and writes it back through a temporary file and a rename, so a reader
//! never sees half a file and a crash leaves the old or the new state. The lock file is never replaced: locking the
//! data file itself would not work, since the rename swaps the inode a waiting process is locking. An operation
//! waits for the lock a bounded time ([`DEFAULT_LOCK_WAIT`], [`FileStore::with_lock_wait`]), then fails as
//! [`StoreError::Unavailable`]: a process stopped or hung while holding it holds nobody else up for good (an agent
//! starting then exits with that error, as with an etcd that does not answer; a running one retries later). The
//! wait polls: a process blocked in `flock` on the same file may go first. The file system's own calls (open,
//! read, write, fsync) are not bounded: a hung network file system still hangs them.
//!
//! Two threads or two processes opening the same path never hand out one subnet twice. Operations that find
//! nothing to change (a read, a renewal refused) do not rewrite the file.
//!
//! Reads ([`LeaseStore::leases`], [`LeaseStore::watch`]) take no lock and parse the file only when it changed: a
//! handle keeps the state it read last with the file's identity (device, inode, size, modification and change
//! times), and a `stat` that shows the same file answers from memory. Every write replaces the file (a new inode),
//! so a change is never missed. An idle agent polling the store costs one `stat` a poll.
//!
//! An entry under `leases` that does not read as a lease (the file edited by hand) is skipped and reported
//! ([`Snapshot::ignored`]) and written back unchanged; a file that is not JSON at all is [`StoreError::Corrupt`].
//!
//! Clocks: the nodes sharing a file must agree on the time within the lease TTL (see [`crate::store`]'s "Whose
//! clock"); a lease lapses a whole TTL after its expiration, and is removed by the first operation that sees it so.
//! A file deleted or replaced by an older copy makes the revisions go back; a watcher ahead of the file is then
//! given a snapshot ([`Watch::Reset`]).

use core::net::Ipv4Addr;
use core::time::Duration;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Instant, SystemTime};

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
    /// How long an operation waits for the lock.
    lock_wait: Duration,
    /// The file as last read or written by this handle (shared by its clones).
    cache: Arc<Mutex<Option<Cached>>>,
    /// How many times the file was parsed (tests count them).
    parses: Arc<AtomicU64>,
}

/// What identifies one version of the file: every write makes a new file, so a new inode and times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    #[cfg(unix)]
    fn of(m: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        }
    }

    #[cfg(not(unix))]
    fn of(m: &fs::Metadata) -> Self {
        let ns = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX));
        Self { dev: 0, ino: 0, size: m.len(), mtime_ns: ns, ctime_ns: ns }
    }
}

#[derive(Debug)]
struct Cached {
    /// `None`: there was no file.
    stamp: Option<Stamp>,
    state: State,
}

fn io_err(context: &str, path: &Path, e: &io::Error) -> StoreError {
    StoreError::Io { context: format!("{context} {}", path.display()), message: e.to_string() }
}

/// How long an operation waits for the store's lock before it fails as [`StoreError::Unavailable`], unless
/// [`FileStore::with_lock_wait`] says otherwise. Operations hold the lock for one read and one write of the file:
/// a lock held this long means a process froze or hangs inside one, or the disk is very slow.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(2);

impl FileStore {
    /// The same store, waiting at most `wait` for its lock (see [`DEFAULT_LOCK_WAIT`]).
    #[must_use]
    pub const fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

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
        Self {
            path,
            lock_path: lock_path.into(),
            history,
            lock_wait: DEFAULT_LOCK_WAIT,
            cache: Arc::new(Mutex::new(None)),
            parses: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The data file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the file's current state, parsing the file only when it is not the version this handle saw
    /// last.
    fn view<R>(&self, f: impl FnOnce(&mut State) -> R) -> Result<R, StoreError> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        // The identity and the bytes come from one open file: a rename meanwhile cannot pair one with the other.
        let stamp = match File::open(&self.path) {
            Ok(mut file) => {
                let stamp = Stamp::of(&file.metadata().map_err(|e| io_err("reading", &self.path, &e))?);
                if cache.as_ref().is_none_or(|c| c.stamp != Some(stamp)) {
                    let mut bytes = Vec::new();
                    io::Read::read_to_end(&mut file, &mut bytes).map_err(|e| io_err("reading", &self.path, &e))?;
                    *cache = Some(Cached { stamp: Some(stamp), state: self.parse(&bytes)? });
                }
                Some(stamp)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("reading", &self.path, &e)),
        };
        if stamp.is_none() && cache.as_ref().is_none_or(|c| c.stamp.is_some()) {
            *cache = Some(Cached { stamp: None, state: State::new(self.history) });
        }
        // Filled by one of the two branches above.
        let cached = cache.get_or_insert_with(|| Cached { stamp: None, state: State::new(self.history) });
        Ok(f(&mut cached.state))
    }

    fn parse(&self, bytes: &[u8]) -> Result<State, StoreError> {
        self.parses.fetch_add(1, Ordering::Relaxed);
        let mut state = serde_json::from_slice::<State>(bytes)
            .map_err(|e| StoreError::Corrupt { context: self.path.display().to_string(), message: e.to_string() })?;
        state.set_history(self.history);
        Ok(state)
    }

    /// The state to change, under the lock: the cached one when the file is still the version it came from.
    fn read(&self) -> Result<State, StoreError> {
        self.view(|s| s.clone())
    }

    /// Remembers what this handle just wrote, so reading it back costs nothing.
    fn wrote(&self, state: State) {
        let stamp = fs::metadata(&self.path).ok().map(|m| Stamp::of(&m));
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        *cache = stamp.map(|stamp| Cached { stamp: Some(stamp), state });
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
        self.wait_for(&lock, exclusive)?;
        let mut state = self.read()?;
        let (result, dirty) = f(&mut state);
        if dirty {
            self.write(&state)?;
            self.wrote(state);
        }
        // Closing `lock` releases the lock.
        drop(lock);
        Ok(result)
    }

    /// Takes the lock on `lock` (shared when `exclusive` is false), waiting at most [`FileStore::with_lock_wait`]:
    /// a process stopped or hung while holding it must not hold up every other node's agent for good.
    fn wait_for(&self, lock: &File, exclusive: bool) -> Result<(), StoreError> {
        // A wait too long to add to the clock (`Duration::MAX`) waits for good.
        let deadline = Instant::now().checked_add(self.lock_wait);
        let mut pause = Duration::from_millis(1);
        loop {
            match if exclusive { lock.try_lock() } else { lock.try_lock_shared() } {
                Ok(()) => return Ok(()),
                Err(TryLockError::Error(e)) => return Err(io_err("locking", &self.lock_path, &e)),
                Err(TryLockError::WouldBlock) => {}
            }
            let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Err(StoreError::Unavailable {
                    context: format!("locking {}", self.lock_path.display()),
                    message: format!(
                        "the lock stayed taken for {:?} (a process holding it stopped or hangs?)",
                        self.lock_wait
                    ),
                });
            }
            thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(10));
        }
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
        match self.view(|s| (!s.any_lapsed(now)).then(|| s.snapshot()))? {
            Some(snapshot) => Ok(snapshot),
            None => self.mutate(now, |s| Ok((s.snapshot(), false))),
        }
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
        match self.view(|s| (!s.any_lapsed(now)).then(|| s.watch(since)))? {
            Some(watch) => Ok(watch),
            // Something lapsed: removed under the lock first, so that every watcher sees the same events.
            None => self.mutate(now, |s| Ok((s.watch(since), false))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::*;

    #[test]
    fn file_store_conformance() {
        let dir = tempfile::tempdir().expect("tempdir");
        basic(&FileStore::new(dir.path().join("a.json")), true);
        compaction(&FileStore::with_history(dir.path().join("b.json"), 2));
    }

    #[test]
    fn file_store_tolerates_skewed_clocks() {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::store::tests::skewed_clocks(&FileStore::new(dir.path().join("a.json")));
        crate::store::tests::lapse_after_a_ttl_of_grace(&FileStore::new(dir.path().join("b.json")));
    }

    /// A process that froze (or hangs) while holding the store's lock blocks nobody for good: an operation waits
    /// for the lock a bounded time, then fails as unavailable (the keeper retries later), and works again once
    /// the lock is free.
    #[test]
    fn a_lock_held_for_good_makes_the_store_unavailable_not_hung() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("leases.json");
        let store = FileStore::new(&path);
        let holder = File::create(dir.path().join("leases.json.lock")).expect("the lock file");
        holder.lock().expect("lock");
        let (tx, rx) = std::sync::mpsc::channel();
        let (mine, started) = (store.clone(), std::time::Instant::now());
        let worker = std::thread::spawn(move || {
            let _ = tx
                .send((mine.acquire(net("10.1.1.0/24"), &attrs(1), Duration::from_secs(60), t(0)), started.elapsed()));
        });
        let answer = rx.recv_timeout(DEFAULT_LOCK_WAIT + Duration::from_secs(5));
        holder.unlock().expect("unlock");
        worker.join().expect("the operation's thread");
        let (result, waited) = answer.expect("an operation on a locked store never returned");
        let Err(StoreError::Unavailable { context, message }) = result else { panic!("{result:?}") };
        assert!(context.contains("leases.json.lock") && message.contains("stayed taken"), "{context}: {message}");
        assert!(waited >= DEFAULT_LOCK_WAIT, "gave up after {waited:?}");
        store.acquire(net("10.1.1.0/24"), &attrs(1), Duration::from_secs(60), t(0)).expect("free again");
        let short = FileStore::new(&path).with_lock_wait(Duration::from_millis(50));
        holder.lock().expect("lock");
        let started = std::time::Instant::now();
        assert!(short.leases(t(1)).is_ok(), "reads take no lock");
        assert!(matches!(short.get_config(), Err(StoreError::Unavailable { .. })), "a shared lock waits too");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        holder.unlock().expect("unlock");
        let forever = FileStore::new(&path).with_lock_wait(Duration::MAX);
        assert!(forever.get_config().is_ok(), "a wait too long for the clock is no deadline, not a panic");
    }

    /// Issue 12, finding 14: an idle watcher parses nothing; a change by another handle (another process) is read
    /// once, and seen.
    #[test]
    fn an_unchanged_file_is_not_read_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("leases.json");
        let (me, other) = (FileStore::new(&path), FileStore::new(&path));
        let ttl = Duration::from_secs(60);
        for i in 1..=50u8 {
            other.acquire(net(&format!("10.1.{i}.0/24")), &attrs(i), ttl, t(0)).expect("free");
        }
        let snap = me.leases(t(1)).expect("read");
        assert_eq!(snap.leases.len(), 50);
        let parsed = me.parses.load(Ordering::Relaxed);
        for _ in 0..100 {
            assert!(matches!(me.watch(snap.revision, t(1)), Ok(Watch::Events { ref events, .. }) if events.is_empty()));
        }
        assert_eq!(me.parses.load(Ordering::Relaxed), parsed, "an unchanged file is parsed again");
        other.acquire(net("10.1.99.0/24"), &attrs(99), ttl, t(2)).expect("free");
        let Ok(Watch::Events { events, .. }) = me.watch(snap.revision, t(2)) else { panic!("history kept") };
        assert_eq!(events.iter().map(|e| e.lease.subnet).collect::<Vec<_>>(), vec![net("10.1.99.0/24")]);
        assert_eq!(me.parses.load(Ordering::Relaxed), parsed + 1);
        // Its own writes are not read back.
        me.acquire(net("10.1.100.0/24"), &attrs(100), ttl, t(3)).expect("free");
        let _ = me.watch(snap.revision, t(3)).expect("watch");
        assert_eq!(me.parses.load(Ordering::Relaxed), parsed + 1);
    }

    /// Issue 12, finding 13: a file recreated under a watcher (its revisions start again) makes the watcher
    /// resynchronise from a snapshot.
    #[test]
    fn a_recreated_file_resets_its_watchers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("leases.json");
        let store = FileStore::new(&path);
        for i in 1..=3u8 {
            store.acquire(net(&format!("10.1.{i}.0/24")), &attrs(i), Duration::from_secs(60), t(0)).expect("free");
        }
        let since = store.leases(t(0)).expect("read").revision;
        fs::remove_file(&path).expect("remove");
        store.acquire(net("10.1.9.0/24"), &attrs(9), Duration::from_secs(60), t(1)).expect("free");
        match store.watch(since, t(1)) {
            Ok(Watch::Reset(snap)) => {
                assert_eq!(snap.leases.iter().map(|l| l.subnet).collect::<Vec<_>>(), vec![net("10.1.9.0/24")]);
            }
            other => panic!("expected a reset, got {other:?}"),
        }
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
        // A file that is not there reads as an empty store; writing it where no directory is fails clearly.
        let missing_dir = FileStore::new(dir.path().join("no/such/dir/leases.json"));
        assert_eq!(missing_dir.leases(t(0)).map(|s| s.leases.len()), Ok(0));
        let err =
            missing_dir.acquire(net("10.1.0.0/24"), &attrs(1), Duration::from_secs(60), t(0)).expect_err("no dir");
        assert!(matches!(err, StoreError::Io { .. }), "{err}");
    }

    /// Issue 12, finding 5: one entry that is not a lease (a file edited by hand) is skipped and reported; the
    /// others are read, written and watched as usual, and the entry is kept as it was.
    #[test]
    fn a_bad_lease_in_the_file_is_skipped_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("leases.json");
        let store = FileStore::new(&path);
        let ttl = Duration::from_secs(60);
        store.acquire(net("10.1.1.0/24"), &attrs(1), ttl, t(0)).expect("free");
        let mut doc: serde_json::Value = serde_json::from_slice(&fs::read(&path).expect("written")).expect("json");
        doc["leases"]["10.1.9.0-24"] = serde_json::json!({"value": "garbage"});
        fs::write(&path, serde_json::to_vec(&doc).expect("json")).expect("write");

        let other = FileStore::new(&path);
        let snap = other.leases(t(1)).expect("a bad entry is no error");
        assert_eq!(snap.leases.iter().map(|l| l.subnet).collect::<Vec<_>>(), vec![net("10.1.1.0/24")]);
        assert_eq!(snap.ignored.len(), 1);
        assert_eq!(snap.ignored[0].key, "10.1.9.0-24");
        other.acquire(net("10.1.2.0/24"), &attrs(2), ttl, t(1)).expect("acquisition goes on");
        other.renew(net("10.1.1.0/24"), &attrs(1), ttl, t(1)).expect("renewal goes on");
        let Ok(Watch::Events { events, .. }) = other.watch(snap.revision, t(2)) else { panic!("history kept") };
        assert_eq!(events.len(), 2);
        let doc: serde_json::Value = serde_json::from_slice(&fs::read(&path).expect("written")).expect("json");
        assert_eq!(doc["leases"]["10.1.9.0-24"], serde_json::json!({"value": "garbage"}), "kept as it was");
        // A lease taken on that subnet replaces the entry.
        other.acquire(net("10.1.9.0/24"), &attrs(9), ttl, t(3)).expect("not a lease, so free");
        assert!(other.leases(t(3)).expect("read").ignored.is_empty());
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
