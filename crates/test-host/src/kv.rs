//! The key-value store every instance shares, as Spin's default store is shared by every
//! request, with counters and fault injection for tests.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// How `wasi:keyvalue/atomics` compare-and-swap behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CasSemantics {
    /// A true compare-and-swap: `cas.new` snapshots the value (absent included), `current`
    /// re-reads and re-snapshots it, and `swap` writes only if the key still holds the
    /// snapshot, else answers `cas-failed` with a handle on the latest value.
    #[default]
    Strict,
    /// Spin's SQLite store (Spin 3.x/4.x): `cas.new` snapshots nothing; only `current` takes
    /// the snapshot. A swap with no snapshot, or whose snapshot is "absent", is an
    /// unconditional upsert that always succeeds, so two writers can both "create" a key.
    SpinSqlite,
    /// Spin's Redis store (Spin 4.0.2): the swap is applied as in `Strict`, but the answer is
    /// always `cas-failed`, even when the value was written (see docs/PLATFORM.md).
    SpinRedis,
}

/// Counts of key-value operations made by guests (not by tests through [`KvStore`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KvCounts {
    /// `open` calls (Spin `store.open`, `wasi:keyvalue/store.open`); not in [`Self::total`].
    pub opens: u64,
    /// `get` calls, and `cas.current`.
    pub gets: u64,
    /// `exists` calls.
    pub exists: u64,
    /// `get-keys` / `list-keys` calls.
    pub lists: u64,
    /// `set` calls.
    pub sets: u64,
    /// `delete` calls.
    pub deletes: u64,
    /// `increment` calls.
    pub increments: u64,
    /// `swap` calls (compare-and-swap attempts).
    pub cas: u64,
    /// `swap` calls answered `cas-failed`.
    pub cas_failed: u64,
    /// Operations answered with an injected fault.
    pub faults: u64,
}

impl KvCounts {
    /// Every data operation (reads, writes, lists, CAS), opens excluded.
    pub fn total(&self) -> u64 {
        self.gets + self.exists + self.lists + self.sets + self.deletes + self.increments + self.cas
    }

    /// Reads: gets, exists and lists.
    pub fn reads(&self) -> u64 {
        self.gets + self.exists + self.lists
    }

    /// Writes: sets, deletes, increments and CAS swaps.
    pub fn writes(&self) -> u64 {
        self.sets + self.deletes + self.increments + self.cas
    }
}

/// The kind of operation, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Open,
    Get,
    Exists,
    List,
    Set,
    Delete,
    Increment,
    Cas,
}

impl Op {
    fn is_write(self) -> bool {
        matches!(self, Op::Set | Op::Delete | Op::Increment | Op::Cas)
    }
}

/// Atomic counters, shared store-wide or per incoming request.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    opens: AtomicU64,
    gets: AtomicU64,
    exists: AtomicU64,
    lists: AtomicU64,
    sets: AtomicU64,
    deletes: AtomicU64,
    increments: AtomicU64,
    cas: AtomicU64,
    cas_failed: AtomicU64,
    faults: AtomicU64,
}

impl Counters {
    pub(crate) fn count(&self, op: Op) {
        let c = match op {
            Op::Open => &self.opens,
            Op::Get => &self.gets,
            Op::Exists => &self.exists,
            Op::List => &self.lists,
            Op::Set => &self.sets,
            Op::Delete => &self.deletes,
            Op::Increment => &self.increments,
            Op::Cas => &self.cas,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn fault(&self) {
        self.faults.fetch_add(1, Ordering::Relaxed);
    }

    fn cas_failed(&self) {
        self.cas_failed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> KvCounts {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        KvCounts {
            opens: g(&self.opens),
            gets: g(&self.gets),
            exists: g(&self.exists),
            lists: g(&self.lists),
            sets: g(&self.sets),
            deletes: g(&self.deletes),
            increments: g(&self.increments),
            cas: g(&self.cas),
            cas_failed: g(&self.cas_failed),
            faults: g(&self.faults),
        }
    }
}

/// A failed key-value operation, as the guest sees it (`error::other`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KvFailure(pub String);

/// Which kind of store a [`KvStore`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// In memory, strongly consistent (Spin's SQLite store under `spin up`, by default with a
    /// strict compare-and-swap; see [`CasSemantics`]).
    Memory,
    /// A real Redis server, with Spin's Redis store semantics (SpinKube's usual store).
    Redis,
    /// Akamai Functions-like: replicated with cross-request staleness, and no
    /// `wasi:keyvalue/atomics`.
    AkamaiLike,
}

/// Where the data lives.
#[derive(Debug)]
enum Backend {
    Memory(Mutex<BTreeMap<String, Vec<u8>>>),
    Redis(crate::redis_store::RedisBackend),
    Replicated(crate::replicated::Replicated),
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    counters: Counters,
    fail_reads: AtomicBool,
    fail_writes: AtomicBool,
    max_keys: AtomicU64,
    cas_semantics: Mutex<CasSemantics>,
    /// Requests begun on this store, over every host that shares it.
    requests: AtomicU64,
}

impl Inner {
    fn new(backend: Backend, cas: CasSemantics) -> Self {
        Self {
            backend,
            counters: Counters::default(),
            fail_reads: AtomicBool::new(false),
            fail_writes: AtomicBool::new(false),
            max_keys: AtomicU64::new(0),
            cas_semantics: Mutex::new(cas),
            requests: AtomicU64::new(0),
        }
    }
}

/// The store shared by every instance (and by every [`crate::Host`] given it). Cloning gives
/// another handle on the same store.
#[derive(Debug, Clone)]
pub struct KvStore {
    inner: Arc<Inner>,
}

impl Default for KvStore {
    fn default() -> Self {
        Self::new()
    }
}

/// What a CAS handle remembers of the key when it was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Snapshot {
    /// No snapshot taken (Spin SQLite before `current`).
    None,
    /// The key held this value (`None`: absent).
    Value(Option<Vec<u8>>),
}

/// A `wasi:keyvalue/atomics` compare-and-swap handle: the key and what was seen of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasHandle {
    key: String,
    snapshot: Snapshot,
}

impl CasHandle {
    /// The key the handle is on.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// The answer to a swap, as the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapResult {
    /// The store reported success.
    Swapped,
    /// The store reported `cas-failed`, with a fresh handle on the key (on Spin's Redis store
    /// this is also the answer to a swap that wrote).
    CasFailed(CasHandle),
}

/// Whether a swap with `snapshot` may write, given the key's `current` value.
pub(crate) fn swap_allowed(semantics: CasSemantics, snapshot: &Snapshot, current: Option<&[u8]>) -> bool {
    match (semantics, snapshot) {
        (CasSemantics::SpinSqlite, Snapshot::None | Snapshot::Value(None)) => true,
        (_, Snapshot::Value(expected)) => current == expected.as_deref(),
        (_, Snapshot::None) => current.is_none(),
    }
}

/// The snapshot handed back with `cas-failed`.
fn fresh_snapshot(semantics: CasSemantics, current: Option<Vec<u8>>) -> Snapshot {
    match semantics {
        CasSemantics::SpinSqlite => Snapshot::None,
        _ => Snapshot::Value(current),
    }
}

impl KvStore {
    /// An empty in-memory store with a strict compare-and-swap.
    pub fn new() -> Self {
        Self { inner: Arc::new(Inner::new(Backend::Memory(Mutex::default()), CasSemantics::Strict)) }
    }

    /// A store on the Redis server at `url` (`redis://127.0.0.1:PORT`), with Spin's Redis
    /// semantics ([`CasSemantics::SpinRedis`]: a swap that writes still answers `cas-failed`;
    /// `increment` is `INCRBY`, so counters are stored as decimal text). The data already on
    /// the server is kept. Fails if the server does not answer `PING`.
    pub fn redis(url: &str) -> Result<Self, KvFailure> {
        let backend = crate::redis_store::RedisBackend::connect(url)?;
        Ok(Self { inner: Arc::new(Inner::new(Backend::Redis(backend), CasSemantics::SpinRedis)) })
    }

    /// An Akamai Functions-like store: no `wasi:keyvalue/atomics` (a component that imports it
    /// cannot be instantiated on a host using this store), and replicated: a request reads its
    /// own writes at once, other requests' writes only once `staleness` has passed.
    pub fn akamai_like(staleness: Staleness) -> Self {
        let backend = Backend::Replicated(crate::replicated::Replicated::new(staleness));
        Self { inner: Arc::new(Inner::new(backend, CasSemantics::Strict)) }
    }

    /// Which kind of store this is.
    pub fn kind(&self) -> StoreKind {
        match self.inner.backend {
            Backend::Memory(_) => StoreKind::Memory,
            Backend::Redis(_) => StoreKind::Redis,
            Backend::Replicated(_) => StoreKind::AkamaiLike,
        }
    }

    /// Whether hosts on this store offer `wasi:keyvalue/atomics`.
    pub fn offers_atomics(&self) -> bool {
        self.kind() != StoreKind::AkamaiLike
    }

    /// Whether two handles are on the same store.
    pub fn same_store(&self, other: &KvStore) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    fn lock(map: &Mutex<BTreeMap<String, Vec<u8>>>) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic while holding the lock cannot leave the map half-updated (every update is
        // one insert or remove), so a poisoned lock is still safe to use.
        map.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    fn note_len(&self, len: usize) {
        self.inner.max_keys.fetch_max(len as u64, Ordering::Relaxed);
    }

    /// Test-facing access to Redis: a failure there is the test environment's, so it panics
    /// with the reason (never reached from a guest).
    fn redis_or_panic<R>(result: Result<R, KvFailure>) -> R {
        result.unwrap_or_else(|e| panic!("the test's Redis server failed: {e}"))
    }

    // ---- test-facing API: not counted, never faulted ----
    // On the Akamai-like store these see the settled data: every write, whatever its delay.

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        match &self.inner.backend {
            Backend::Memory(m) => Self::lock(m).keys().cloned().collect(),
            Backend::Redis(r) => Self::redis_or_panic(r.keys()),
            Backend::Replicated(r) => r.settled().into_keys().collect(),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        match &self.inner.backend {
            Backend::Memory(m) => Self::lock(m).get(key).cloned(),
            Backend::Redis(r) => Self::redis_or_panic(r.get(key)),
            Backend::Replicated(r) => r.read_at(key, None, 0),
        }
    }

    /// The value of `key` as UTF-8 text (lossy).
    pub fn get_text(&self, key: &str) -> Option<String> {
        self.get(key).map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    /// Sets `key`, as a test fixture (on the Akamai-like store, visible to every request at
    /// once).
    pub fn set(&self, key: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.write(key.into(), Some(value.into()), None).unwrap_or_else(|e| panic!("test store write failed: {e}"));
    }

    /// Removes `key`, answering its value before.
    pub fn remove(&self, key: &str) -> Option<Vec<u8>> {
        let before = self.get(key);
        self.write(key.to_string(), None, None).unwrap_or_else(|e| panic!("test store write failed: {e}"));
        before
    }

    /// A copy of the whole store.
    pub fn values(&self) -> BTreeMap<String, Vec<u8>> {
        match &self.inner.backend {
            Backend::Memory(m) => Self::lock(m).clone(),
            Backend::Redis(r) => {
                let keys = Self::redis_or_panic(r.keys());
                keys.into_iter().filter_map(|k| Self::redis_or_panic(r.get(&k)).map(|v| (k, v))).collect()
            }
            Backend::Replicated(r) => r.settled(),
        }
    }

    /// How many keys the store holds now.
    pub fn len(&self) -> usize {
        let len = match &self.inner.backend {
            Backend::Memory(m) => Self::lock(m).len(),
            Backend::Redis(r) => Self::redis_or_panic(r.len()),
            Backend::Replicated(r) => r.settled().len(),
        };
        self.note_len(len);
        len
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The largest number of keys the store held at once. On Redis, only what was seen by
    /// [`Self::len`] calls (counting the keys on every write would cost a round trip).
    pub fn max_keys(&self) -> u64 {
        self.inner.max_keys.load(Ordering::Relaxed)
    }

    /// Makes every guest read (get, exists, list, `cas.new`/`current`) fail with
    /// `error::other("injected")` while `on`.
    pub fn fail_reads(&self, on: bool) {
        self.inner.fail_reads.store(on, Ordering::SeqCst);
    }

    /// Makes every guest write (set, delete, increment, swap) fail with
    /// `error::other("injected")` while `on`.
    pub fn fail_writes(&self, on: bool) {
        self.inner.fail_writes.store(on, Ordering::SeqCst);
    }

    /// Chooses how compare-and-swap behaves (default [`CasSemantics::Strict`] in memory,
    /// [`CasSemantics::SpinRedis`] on Redis).
    pub fn set_cas_semantics(&self, semantics: CasSemantics) {
        *self.inner.cas_semantics.lock().unwrap_or_else(|p| p.into_inner()) = semantics;
    }

    /// The compare-and-swap behaviour in force.
    pub fn cas_semantics(&self) -> CasSemantics {
        *self.inner.cas_semantics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Operations counted since the store was made, over every request and every host.
    pub fn counts(&self) -> KvCounts {
        self.inner.counters.snapshot()
    }

    /// Requests begun on this store so far, over every host that shares it.
    pub fn requests_begun(&self) -> u64 {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// On the Akamai-like store with a delay in milliseconds: lets `by` pass for replication
    /// (so tests need not sleep). No effect on other stores.
    pub fn advance_replication(&self, by: std::time::Duration) {
        if let Backend::Replicated(r) = &self.inner.backend {
            r.advance(by);
        }
    }

    /// A new request's view of the store: what a guest instance's imports go through. Each
    /// call begins a request (on the Akamai-like store, a new reader with its own writes).
    pub fn session(&self) -> KvSession {
        self.session_with(Arc::new(Counters::default()))
    }

    pub(crate) fn session_with(&self, counters: Arc<Counters>) -> KvSession {
        // Ordinals start at 1: 0 is the test-facing writer (fixtures).
        let ordinal = self.inner.requests.fetch_add(1, Ordering::SeqCst) + 1;
        KvSession { store: self.clone(), ordinal, counters }
    }

    /// A write by `writer` (`None`: a test fixture); `value` `None` deletes.
    fn write(&self, key: String, value: Option<Vec<u8>>, writer: Option<u64>) -> Result<(), KvFailure> {
        match &self.inner.backend {
            Backend::Memory(m) => {
                let mut data = Self::lock(m);
                match value {
                    Some(v) => {
                        data.insert(key, v);
                    }
                    None => {
                        data.remove(&key);
                    }
                }
                self.note_len(data.len());
                Ok(())
            }
            Backend::Redis(r) => match value {
                Some(v) => r.set(&key, &v),
                None => r.delete(&key),
            },
            Backend::Replicated(r) => {
                r.write(key, value, writer, self.requests_begun());
                Ok(())
            }
        }
    }

    fn read(&self, key: &str, reader: u64) -> Result<Option<Vec<u8>>, KvFailure> {
        match &self.inner.backend {
            Backend::Memory(m) => Ok(Self::lock(m).get(key).cloned()),
            Backend::Redis(r) => r.get(key),
            Backend::Replicated(r) => Ok(r.read_at(key, Some(reader), self.requests_begun())),
        }
    }

    fn list(&self, reader: u64) -> Result<Vec<String>, KvFailure> {
        match &self.inner.backend {
            Backend::Memory(m) => Ok(Self::lock(m).keys().cloned().collect()),
            Backend::Redis(r) => r.keys(),
            Backend::Replicated(r) => Ok(r.keys_at(reader, self.requests_begun())),
        }
    }

    /// Counts `op` and answers the injected fault, if any.
    fn begin(&self, op: Op, request: &Counters) -> Result<(), KvFailure> {
        self.inner.counters.count(op);
        request.count(op);
        let fail = match op {
            Op::Open => false,
            op if op.is_write() => self.inner.fail_writes.load(Ordering::SeqCst),
            _ => self.inner.fail_reads.load(Ordering::SeqCst),
        };
        if fail {
            self.inner.counters.fault();
            request.fault();
            Err(KvFailure("injected".into()))
        } else {
            Ok(())
        }
    }
}

/// How long other requests' writes stay hidden on the Akamai-like store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staleness {
    /// A write becomes visible to other requests once this many further requests have begun
    /// on the store (0: at once). Deterministic.
    Requests(u64),
    /// A write becomes visible to other requests this long after it was made (store time:
    /// real time plus [`KvStore::advance_replication`]).
    Millis(u64),
}

/// One request's view of a [`KvStore`]: every operation is counted (store-wide and for the
/// request) and subject to injected faults, exactly as a guest's imports are. Tests use it to
/// drive a store as a request would.
#[derive(Debug)]
pub struct KvSession {
    store: KvStore,
    ordinal: u64,
    counters: Arc<Counters>,
}

impl KvSession {
    /// The request's ordinal on its store (from 1, in the order requests began).
    pub fn ordinal(&self) -> u64 {
        self.ordinal
    }

    /// The store.
    pub fn store(&self) -> &KvStore {
        &self.store
    }

    /// What this request's operations counted.
    pub fn counts(&self) -> KvCounts {
        self.counters.snapshot()
    }

    pub(crate) fn open(&self) -> Result<(), KvFailure> {
        self.store.begin(Op::Open, &self.counters)
    }

    /// `get`.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvFailure> {
        self.store.begin(Op::Get, &self.counters)?;
        self.store.read(key, self.ordinal)
    }

    /// `exists`.
    pub fn exists(&self, key: &str) -> Result<bool, KvFailure> {
        self.store.begin(Op::Exists, &self.counters)?;
        match &self.store.inner.backend {
            Backend::Redis(r) => r.exists(key),
            _ => Ok(self.store.read(key, self.ordinal)?.is_some()),
        }
    }

    /// `get-keys` / `list-keys` (every key, sorted).
    pub fn get_keys(&self) -> Result<Vec<String>, KvFailure> {
        self.store.begin(Op::List, &self.counters)?;
        self.store.list(self.ordinal)
    }

    /// `set`.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), KvFailure> {
        self.store.begin(Op::Set, &self.counters)?;
        self.store.write(key.to_string(), Some(value.to_vec()), Some(self.ordinal))
    }

    /// `delete`.
    pub fn delete(&self, key: &str) -> Result<(), KvFailure> {
        self.store.begin(Op::Delete, &self.counters)?;
        self.store.write(key.to_string(), None, Some(self.ordinal))
    }

    /// `atomics.increment`: in memory, the little-endian `i64` under `key` (absent: 0), as
    /// Spin's SQLite store keeps it; on Redis, `INCRBY` (decimal text).
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, KvFailure> {
        self.store.begin(Op::Increment, &self.counters)?;
        match &self.store.inner.backend {
            Backend::Memory(m) => {
                let mut data = KvStore::lock(m);
                let current = match data.get(key) {
                    None => 0,
                    Some(bytes) => {
                        let raw: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
                            KvFailure(format!("value of {key:?} is not an 8-byte little-endian integer"))
                        })?;
                        i64::from_le_bytes(raw)
                    }
                };
                let next =
                    current.checked_add(delta).ok_or_else(|| KvFailure(format!("increment of {key:?} overflows")))?;
                data.insert(key.to_string(), next.to_le_bytes().to_vec());
                self.store.note_len(data.len());
                Ok(next)
            }
            Backend::Redis(r) => r.incr_by(key, delta),
            Backend::Replicated(_) => Err(KvFailure("this store offers no wasi:keyvalue/atomics".into())),
        }
    }

    /// `atomics.cas.new`: a handle with the snapshot the store's semantics take (none on
    /// Spin's SQLite store). Not counted, as Spin does not read for it on SQLite.
    pub fn cas(&self, key: &str) -> Result<CasHandle, KvFailure> {
        if self.store.inner.fail_reads.load(Ordering::SeqCst) {
            return Err(KvFailure("injected".into()));
        }
        if !self.store.offers_atomics() {
            return Err(KvFailure("this store offers no wasi:keyvalue/atomics".into()));
        }
        let snapshot = match self.store.cas_semantics() {
            CasSemantics::SpinSqlite => Snapshot::None,
            CasSemantics::Strict | CasSemantics::SpinRedis => Snapshot::Value(self.store.read(key, self.ordinal)?),
        };
        Ok(CasHandle { key: key.to_string(), snapshot })
    }

    /// `atomics.cas.current`: reads the key (counted as a get) and makes that value the one
    /// the swap must find unchanged.
    pub fn cas_current(&self, handle: &mut CasHandle) -> Result<Option<Vec<u8>>, KvFailure> {
        let value = self.get(&handle.key)?;
        handle.snapshot = Snapshot::Value(value.clone());
        Ok(value)
    }

    /// `atomics.swap`: writes `value` if the key still holds the handle's snapshot (under the
    /// store's semantics), and answers as the platform would.
    pub fn swap(&self, handle: CasHandle, value: &[u8]) -> Result<SwapResult, KvFailure> {
        self.store.begin(Op::Cas, &self.counters)?;
        let semantics = self.store.cas_semantics();
        let (wrote, current) = match &self.store.inner.backend {
            Backend::Memory(m) => {
                let mut data = KvStore::lock(m);
                if swap_allowed(semantics, &handle.snapshot, data.get(&handle.key).map(Vec::as_slice)) {
                    data.insert(handle.key.clone(), value.to_vec());
                    self.store.note_len(data.len());
                    (true, Some(value.to_vec()))
                } else {
                    (false, data.get(&handle.key).cloned())
                }
            }
            Backend::Redis(r) => r.compare_and_swap(&handle.key, semantics, &handle.snapshot, value)?,
            Backend::Replicated(_) => return Err(KvFailure("this store offers no wasi:keyvalue/atomics".into())),
        };
        let report_swapped = wrote && semantics != CasSemantics::SpinRedis;
        if report_swapped {
            return Ok(SwapResult::Swapped);
        }
        self.store.inner.counters.cas_failed();
        self.counters.cas_failed();
        Ok(SwapResult::CasFailed(CasHandle { key: handle.key, snapshot: fresh_snapshot(semantics, current) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swapped(s: &KvSession, h: CasHandle, v: &str) -> bool {
        s.swap(h, v.as_bytes()).unwrap() == SwapResult::Swapped
    }

    #[test]
    fn strict_cas_refuses_a_stale_snapshot_and_hands_back_the_latest() {
        let kv = KvStore::new();
        let s = kv.session();
        let absent = s.cas("k").unwrap();
        assert_eq!(absent.snapshot, Snapshot::Value(None));
        let also_absent = s.cas("k").unwrap();
        assert!(swapped(&s, absent, "a"));
        // A second "create" from the same starting point loses.
        match s.swap(also_absent, b"b").unwrap() {
            SwapResult::CasFailed(fresh) => {
                assert_eq!(fresh.snapshot, Snapshot::Value(Some(b"a".to_vec())));
                assert!(swapped(&s, fresh, "c"));
            }
            SwapResult::Swapped => panic!("second create must fail"),
        }
        assert_eq!(kv.get_text("k").as_deref(), Some("c"));
        assert_eq!(kv.counts().cas_failed, 1);
    }

    #[test]
    fn spin_sqlite_cas_upserts_without_a_snapshot() {
        let kv = KvStore::new();
        kv.set_cas_semantics(CasSemantics::SpinSqlite);
        let s = kv.session();
        let a = s.cas("k").unwrap();
        let b = s.cas("k").unwrap();
        assert_eq!(a.snapshot, Snapshot::None);
        // Both "creates" succeed, as on Spin's SQLite store.
        assert!(swapped(&s, a, "a"));
        assert!(swapped(&s, b, "b"));
        // With a snapshot taken by `current`, a stale swap fails.
        let mut stale = s.cas("k").unwrap();
        assert_eq!(s.cas_current(&mut stale).unwrap(), Some(b"b".to_vec()));
        kv.set("k", "x");
        assert!(!swapped(&s, stale, "c"));
        assert_eq!(kv.get_text("k").as_deref(), Some("x"));
    }

    #[test]
    fn spin_redis_cas_writes_but_reports_failure() {
        let kv = KvStore::new();
        kv.set_cas_semantics(CasSemantics::SpinRedis);
        let s = kv.session();
        let h = s.cas("k").unwrap();
        assert!(!swapped(&s, h, "a"));
        assert_eq!(kv.get_text("k").as_deref(), Some("a"));
    }

    #[test]
    fn faults_counts_and_increment() {
        let kv = KvStore::new();
        let s = kv.session();
        s.set("a", b"1").unwrap();
        assert_eq!(s.increment("n", 5), Ok(5));
        assert_eq!(s.increment("n", -7), Ok(-2));
        assert_eq!(kv.get("n"), Some((-2i64).to_le_bytes().to_vec()));
        assert!(s.increment("a", 1).is_err());
        kv.fail_reads(true);
        assert!(s.get("a").is_err());
        assert!(s.set("b", b"2").is_ok());
        kv.fail_reads(false);
        kv.fail_writes(true);
        assert!(s.delete("a").is_err());
        assert_eq!(s.get("a"), Ok(Some(b"1".to_vec())));
        let counts = s.counts();
        assert_eq!((counts.gets, counts.sets, counts.deletes, counts.increments), (2, 2, 1, 3));
        assert_eq!(counts.faults, 2);
        assert_eq!(kv.counts(), counts);
        assert_eq!(kv.max_keys(), 3);
        kv.fail_writes(false);
        kv.remove("a");
        assert_eq!(kv.len(), 2);
        assert_eq!(kv.max_keys(), 3);
    }
}
