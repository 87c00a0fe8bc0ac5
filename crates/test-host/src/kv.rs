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
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KvFailure(pub(crate) String);

#[derive(Debug, Default)]
struct Inner {
    data: Mutex<BTreeMap<String, Vec<u8>>>,
    counters: Counters,
    fail_reads: AtomicBool,
    fail_writes: AtomicBool,
    max_keys: AtomicU64,
    cas_semantics: Mutex<CasSemantics>,
}

/// The shared in-memory store. Cloning gives another handle on the same store.
#[derive(Debug, Clone, Default)]
pub struct KvStore {
    inner: Arc<Inner>,
}

/// What a CAS handle remembers of the key when it was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Snapshot {
    /// No snapshot taken (Spin SQLite before `current`).
    None,
    /// The key held this value (`None`: absent).
    Value(Option<Vec<u8>>),
}

/// The answer to a swap.
pub(crate) enum SwapOutcome {
    Swapped,
    /// Refused; the fresh snapshot for the handle given back to the guest.
    Failed(Snapshot),
}

impl KvStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic while holding the lock cannot leave the map half-updated (every update is
        // one insert or remove), so a poisoned lock is still safe to use.
        self.inner.data.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    fn note_len(&self, len: usize) {
        self.inner.max_keys.fetch_max(len as u64, Ordering::Relaxed);
    }

    // ---- test-facing API: not counted, never faulted ----

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().get(key).cloned()
    }

    /// The value of `key` as UTF-8 text (lossy).
    pub fn get_text(&self, key: &str) -> Option<String> {
        self.get(key).map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    /// Sets `key`, as a test fixture.
    pub fn set(&self, key: impl Into<String>, value: impl Into<Vec<u8>>) {
        let mut data = self.lock();
        data.insert(key.into(), value.into());
        self.note_len(data.len());
    }

    /// Removes `key`.
    pub fn remove(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().remove(key)
    }

    /// A copy of the whole store.
    pub fn values(&self) -> BTreeMap<String, Vec<u8>> {
        self.lock().clone()
    }

    /// How many keys the store holds now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The largest number of keys the store ever held at once.
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

    /// Chooses how compare-and-swap behaves (default [`CasSemantics::Strict`]).
    pub fn set_cas_semantics(&self, semantics: CasSemantics) {
        *self.inner.cas_semantics.lock().unwrap_or_else(|p| p.into_inner()) = semantics;
    }

    /// The compare-and-swap behaviour in force.
    pub fn cas_semantics(&self) -> CasSemantics {
        *self.inner.cas_semantics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Operations counted since the store was made, over every request.
    pub fn counts(&self) -> KvCounts {
        self.inner.counters.snapshot()
    }

    // ---- guest-facing operations: counted store-wide and per request, faultable ----

    /// Counts `op` and answers the injected fault, if any.
    pub(crate) fn begin(&self, op: Op, request: &Counters) -> Result<(), KvFailure> {
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

    /// Whether guest reads are failing now (for CAS snapshots, which are not counted ops).
    pub(crate) fn reads_failing(&self) -> bool {
        self.inner.fail_reads.load(Ordering::SeqCst)
    }

    pub(crate) fn op_get(&self, key: &str) -> Option<Vec<u8>> {
        self.get(key)
    }

    pub(crate) fn op_exists(&self, key: &str) -> bool {
        self.lock().contains_key(key)
    }

    pub(crate) fn op_set(&self, key: String, value: Vec<u8>) {
        self.set(key, value);
    }

    pub(crate) fn op_delete(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Adds `delta` to the little-endian `i64` under `key` (absent: 0), as Spin stores it.
    pub(crate) fn op_increment(&self, key: &str, delta: i64) -> Result<i64, KvFailure> {
        let mut data = self.lock();
        let current = match data.get(key) {
            None => 0,
            Some(bytes) => {
                let raw: [u8; 8] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| KvFailure(format!("value of {key:?} is not an 8-byte little-endian integer")))?;
                i64::from_le_bytes(raw)
            }
        };
        let next = current.checked_add(delta).ok_or_else(|| KvFailure(format!("increment of {key:?} overflows")))?;
        data.insert(key.to_string(), next.to_le_bytes().to_vec());
        self.note_len(data.len());
        Ok(next)
    }

    /// The snapshot `cas.new` takes under the current semantics.
    pub(crate) fn cas_new_snapshot(&self, key: &str) -> Snapshot {
        match self.cas_semantics() {
            CasSemantics::SpinSqlite => Snapshot::None,
            CasSemantics::Strict | CasSemantics::SpinRedis => Snapshot::Value(self.get(key)),
        }
    }

    /// The compare-and-swap itself, under the store's lock.
    pub(crate) fn op_swap(&self, key: &str, snapshot: &Snapshot, value: Vec<u8>, request: &Counters) -> SwapOutcome {
        let semantics = self.cas_semantics();
        let mut data = self.lock();
        let fresh = |data: &BTreeMap<String, Vec<u8>>| match semantics {
            CasSemantics::SpinSqlite => Snapshot::None,
            _ => Snapshot::Value(data.get(key).cloned()),
        };
        let matches = match (semantics, snapshot) {
            (CasSemantics::SpinSqlite, Snapshot::None | Snapshot::Value(None)) => true,
            (_, Snapshot::Value(expected)) => data.get(key) == expected.as_ref(),
            (_, Snapshot::None) => !data.contains_key(key),
        };
        let outcome = if matches {
            data.insert(key.to_string(), value);
            self.note_len(data.len());
            if semantics == CasSemantics::SpinRedis { SwapOutcome::Failed(fresh(&data)) } else { SwapOutcome::Swapped }
        } else {
            SwapOutcome::Failed(fresh(&data))
        };
        if matches!(outcome, SwapOutcome::Failed(_)) {
            self.inner.counters.cas_failed();
            request.cas_failed();
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swap(kv: &KvStore, snap: &Snapshot, v: &str) -> bool {
        matches!(kv.op_swap("k", snap, v.into(), &Counters::default()), SwapOutcome::Swapped)
    }

    #[test]
    fn strict_cas_refuses_a_stale_snapshot_and_hands_back_the_latest() {
        let kv = KvStore::new();
        let absent = kv.cas_new_snapshot("k");
        assert_eq!(absent, Snapshot::Value(None));
        let also_absent = kv.cas_new_snapshot("k");
        assert!(swap(&kv, &absent, "a"));
        // A second "create" from the same starting point loses.
        match kv.op_swap("k", &also_absent, b"b".to_vec(), &Counters::default()) {
            SwapOutcome::Failed(fresh) => {
                assert_eq!(fresh, Snapshot::Value(Some(b"a".to_vec())));
                assert!(swap(&kv, &fresh, "c"));
            }
            SwapOutcome::Swapped => panic!("second create must fail"),
        }
        assert_eq!(kv.get_text("k").as_deref(), Some("c"));
        assert_eq!(kv.counts().cas_failed, 1);
    }

    #[test]
    fn spin_sqlite_cas_upserts_without_a_snapshot() {
        let kv = KvStore::new();
        kv.set_cas_semantics(CasSemantics::SpinSqlite);
        let a = kv.cas_new_snapshot("k");
        let b = kv.cas_new_snapshot("k");
        assert_eq!(a, Snapshot::None);
        // Both "creates" succeed, as on Spin's SQLite store.
        assert!(swap(&kv, &a, "a"));
        assert!(swap(&kv, &b, "b"));
        // With a snapshot taken by `current`, a stale swap fails.
        let stale = Snapshot::Value(Some(b"a".to_vec()));
        assert!(!swap(&kv, &stale, "c"));
        assert_eq!(kv.get_text("k").as_deref(), Some("b"));
    }

    #[test]
    fn spin_redis_cas_writes_but_reports_failure() {
        let kv = KvStore::new();
        kv.set_cas_semantics(CasSemantics::SpinRedis);
        let snap = kv.cas_new_snapshot("k");
        assert!(!swap(&kv, &snap, "a"));
        assert_eq!(kv.get_text("k").as_deref(), Some("a"));
    }

    #[test]
    fn faults_counts_and_increment() {
        let kv = KvStore::new();
        let req = Counters::default();
        kv.begin(Op::Set, &req).unwrap();
        kv.op_set("a".into(), b"1".to_vec());
        assert_eq!(kv.op_increment("n", 5), Ok(5));
        assert_eq!(kv.op_increment("n", -7), Ok(-2));
        assert_eq!(kv.get("n"), Some((-2i64).to_le_bytes().to_vec()));
        assert!(kv.op_increment("a", 1).is_err());
        kv.fail_reads(true);
        assert!(kv.begin(Op::Get, &req).is_err());
        assert!(kv.begin(Op::Set, &req).is_ok());
        kv.fail_reads(false);
        kv.fail_writes(true);
        assert!(kv.begin(Op::Delete, &req).is_err());
        assert!(kv.begin(Op::Get, &req).is_ok());
        let counts = req.snapshot();
        assert_eq!((counts.gets, counts.sets, counts.deletes), (2, 2, 1));
        assert_eq!(counts.faults, 2);
        assert_eq!(kv.counts(), counts);
        assert_eq!(kv.max_keys(), 2);
        kv.remove("a");
        assert_eq!(kv.len(), 1);
        assert_eq!(kv.max_keys(), 2);
    }
}
