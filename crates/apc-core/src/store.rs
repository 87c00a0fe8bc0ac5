//! The key-value layout (SPEC §6).
//!
//! Keys start with the schema version. The separator is `:` rather than `/` because Azure
//! Cosmos DB, one of Spin's key-value backends, refuses `/` in keys.
//!
//! | key | value |
//! |---|---|
//! | `v1:cap:{id}` | a [`CaptureRecord`] |
//! | `v1:vm:{hash of the target id}` | a [`VmState`]: the latest capture, recent alerts, region |
//! | `v1:index` | the [`Index`]: one small entry per record, so no request scans keys; it is where "one capture per VM" and the active limit are decided |
//! | `v1:init` | a counter that elects the one request creating the index (see [`ensure_index`]) |
//! | `v1:token`, `v1:nw:{sub}:{region}` | the Azure client's caches |
//!
//! Bound on the key count: at most `max_records` records, one VM key per VM that has a
//! record (so at most `max_records`), the index, its election counter, the token, and one
//! watcher key per (subscription, region) in use: `2 × max_records + 3 + watchers`.
//!
//! Every read-modify-write goes through [`update`], a compare-and-swap loop, so concurrent
//! requests (Spin runs many at once over one store) never lose each other's changes.

use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::ports::{KvError, KvStore, UnixSeconds};
use crate::record::{CaptureRecord, State};

/// The index key.
pub const INDEX_KEY: &str = "v1:index";
/// The counter that elects the creator of the index.
pub const INIT_KEY: &str = "v1:init";
/// Reads a request makes while waiting for the elected creator to write the index.
const INIT_WAIT_READS: usize = 500;
/// How many times a compare-and-swap is retried before giving up on contention.
const CAS_RETRIES: usize = 32;

/// Key of a record.
pub fn record_key(id: &str) -> String {
    format!("v1:cap:{id}")
}

/// Key of a VM's state; the target id is hashed so the key stays short and free of `/`.
pub fn vm_key(target_key: &str) -> String {
    let digest = Sha256::digest(target_key.as_bytes());
    format!("v1:vm:{}", hex(&digest[..16]))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A short digest of an alert identity, as kept in [`VmState::recent_alerts`].
pub fn alert_digest(identity: &str) -> String {
    hex(&Sha256::digest(identity.as_bytes())[..8])
}

/// Make sure the index exists, so every later compare-and-swap on it compares against a
/// present value. Creating it is the one write against an absent key, which Spin's SQLite
/// store performs as an unconditional upsert; an atomic counter elects a single creator, and
/// the others wait for its write (or, if it died, create the same empty index themselves).
pub fn ensure_index(kv: &dyn KvStore) -> Result<(), StoreError> {
    if kv.get(INDEX_KEY)?.is_some() {
        return Ok(());
    }
    if kv.increment(INIT_KEY, 1)? != 1 {
        for _ in 0..INIT_WAIT_READS {
            if kv.get(INDEX_KEY)?.is_some() {
                return Ok(());
            }
        }
    }
    let empty = serde_json::to_vec(&Index::default()).map_err(|_| StoreError::Corrupt(INDEX_KEY.to_string()))?;
    kv.compare_and_swap(INDEX_KEY, None, &empty)?;
    Ok(())
}

/// Store errors as the handlers see them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store failed; the request should be retried later (`503`).
    #[error(transparent)]
    Kv(#[from] KvError),
    /// A stored value could not be read back (a bug or a foreign writer); not retryable.
    #[error("stored value at {0} is unreadable")]
    Corrupt(String),
    /// Compare-and-swap kept losing to other writers.
    #[error("too much contention on {0}")]
    Contention(String),
}

/// Read and decode a JSON value.
pub fn read<T: DeserializeOwned>(kv: &dyn KvStore, key: &str) -> Result<Option<T>, StoreError> {
    Ok(read_raw(kv, key)?.map(|(v, _)| v))
}

fn read_raw<T: DeserializeOwned>(kv: &dyn KvStore, key: &str) -> Result<Option<(T, Vec<u8>)>, StoreError> {
    match kv.get(key)? {
        None => Ok(None),
        Some(bytes) => match serde_json::from_slice(&bytes) {
            Ok(v) => Ok(Some((v, bytes))),
            Err(_) => Err(StoreError::Corrupt(key.to_string())),
        },
    }
}

/// What an [`update`] closure decides.
pub enum Change<T> {
    /// Write this value.
    Put(T),
    /// Leave the key as it is.
    Keep,
}

/// Read-modify-write `key` with compare-and-swap, retrying on contention. `f` sees the current
/// value (or `None`) and may run several times. Returns the value now stored (or `None`).
pub fn update<T, F>(kv: &dyn KvStore, key: &str, mut f: F) -> Result<Option<T>, StoreError>
where
    T: Serialize + DeserializeOwned + Clone,
    F: FnMut(Option<T>) -> Change<T>,
{
    for _ in 0..CAS_RETRIES {
        let current = read_raw::<T>(kv, key)?;
        let (value, raw) = match current {
            Some((v, raw)) => (Some(v), Some(raw)),
            None => (None, None),
        };
        match f(value.clone()) {
            Change::Keep => return Ok(value),
            Change::Put(new) => {
                let bytes = serde_json::to_vec(&new).map_err(|_| StoreError::Corrupt(key.to_string()))?;
                if kv.compare_and_swap(key, raw.as_deref(), &bytes)? {
                    return Ok(Some(new));
                }
            }
        }
    }
    Err(StoreError::Contention(key.to_string()))
}

/// What is remembered per VM (a cache: losing it costs a VM `GET`, never a duplicate).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VmState {
    /// The newest capture for this VM.
    pub latest: Option<String>,
    /// Digests of the newest alerts seen for this VM (duplicate detection after coalescing).
    pub recent_alerts: Vec<String>,
    /// The VM's region, once known (saves a VM `GET` on the next alert).
    pub location: Option<String>,
}

/// Alerts remembered per VM for duplicate detection.
pub const RECENT_ALERTS: usize = 64;

impl VmState {
    /// Remember an alert digest.
    pub fn remember(&mut self, digest: String) {
        if !self.recent_alerts.contains(&digest) {
            self.recent_alerts.push(digest);
            if self.recent_alerts.len() > RECENT_ALERTS {
                self.recent_alerts.remove(0);
            }
        }
    }
}

/// One record's summary in the index.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IndexEntry {
    /// Record id.
    pub id: String,
    /// Its state.
    pub state: State,
    /// Creation time (for newest-first listing and oldest-first eviction).
    pub created_at: UnixSeconds,
    /// When it next needs work; `None`: nothing left to do.
    pub due_at: Option<UnixSeconds>,
    /// When it became terminal.
    pub finished_at: Option<UnixSeconds>,
    /// Its VM key (to release the VM key on eviction).
    pub vm_key: String,
    /// For a scale set or one of its instances: the scale set's VM key, so that a capture on
    /// the whole scale set and one on an instance of it are never active together.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
}

impl IndexEntry {
    /// The summary of a record.
    pub fn of(r: &CaptureRecord) -> Self {
        IndexEntry {
            id: r.id.clone(),
            state: r.state,
            created_at: r.created_at,
            due_at: r.next_check_at,
            finished_at: r.finished_at,
            vm_key: vm_key(&r.vm_key),
            group: scale_set_of(&r.vm_key).map(vm_key).unwrap_or_default(),
        }
    }

    /// Would an active capture for `self` and one for `other` capture the same machine?
    pub fn overlaps(&self, other: &IndexEntry) -> bool {
        if self.vm_key == other.vm_key {
            return true;
        }
        // Within one scale set, instances are distinct machines; the whole set covers them all.
        !self.group.is_empty()
            && self.group == other.group
            && (self.vm_key == self.group || other.vm_key == other.group)
    }
}

/// The scale set part of a lower-case target id, for scale sets and their instances.
pub fn scale_set_of(target_key: &str) -> Option<&str> {
    const MARK: &str = "/providers/microsoft.compute/virtualmachinescalesets/";
    let at = target_key.find(MARK)? + MARK.len();
    let end = target_key[at..].find('/').map_or(target_key.len(), |i| at + i);
    Some(&target_key[..end])
}

/// The index of all records (bounded by `max_records`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Index {
    /// Entries, oldest first.
    pub entries: Vec<IndexEntry>,
    /// Who wrote this version (a per-request id). Two requests taking the same decision in the
    /// same second would otherwise write identical bytes, and a loser whose swap was refused
    /// would take the winner's value, re-read after a `cas-failed` (Spin's Redis work-around in
    /// the adapter), for its own write: both would think they won.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub writer: String,
    /// Evicted entries whose keys are still to be deleted. Kept in the index until the deletes
    /// succeed, so a request that dies between the eviction and the deletes leaks no key: the
    /// next commit finishes the job.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purge: Vec<IndexEntry>,
}

impl Index {
    /// Read the index (empty when absent).
    pub fn load(kv: &dyn KvStore) -> Result<Index, StoreError> {
        Ok(read(kv, INDEX_KEY)?.unwrap_or_default())
    }
    /// Captures `queued` or `running`.
    pub fn active_count(&self) -> usize {
        self.entries.iter().filter(|e| e.state.is_active()).count()
    }
    /// Entries due at `now`, earliest first, at most `limit`.
    pub fn due_entries(&self, now: UnixSeconds, limit: usize) -> Vec<IndexEntry> {
        let mut due: Vec<&IndexEntry> = self.entries.iter().filter(|e| e.due_at.is_some_and(|t| t <= now)).collect();
        due.sort_by_key(|e| e.due_at);
        due.into_iter().take(limit).cloned().collect()
    }
    /// Number due at `now`, and the earliest future due time.
    pub fn due_summary(&self, now: UnixSeconds) -> (usize, Option<UnixSeconds>) {
        let due = self.entries.iter().filter(|e| e.due_at.is_some_and(|t| t <= now)).count();
        let next = self.entries.iter().filter_map(|e| e.due_at).filter(|t| *t > now).min();
        (due, next)
    }
    /// Insert or replace the entry of a record.
    pub fn upsert(&mut self, entry: IndexEntry) {
        match self.entries.iter_mut().find(|e| e.id == entry.id) {
            Some(e) => *e = entry,
            None => self.entries.push(entry),
        }
    }
}

/// Records to remove: beyond `max_records` (oldest finished first, never active ones) and
/// finished ones older than the retention. Returns the removed entries.
pub fn evict(index: &mut Index, now: UnixSeconds, max_records: usize, retention_secs: i64) -> Vec<IndexEntry> {
    let mut removed = Vec::new();
    // Expired: terminal with nothing left to do, finished before the retention horizon.
    index.entries.retain(|e| {
        let expired =
            e.state.is_terminal() && e.due_at.is_none() && e.finished_at.is_some_and(|f| f + retention_secs <= now);
        if expired {
            removed.push(e.clone());
        }
        !expired
    });
    // Over the bound: finished-and-done first, then finished with pending work; oldest first.
    for pass in [true, false] {
        while index.entries.len() > max_records {
            let victim = index
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.state.is_terminal() && (!pass || e.due_at.is_none()))
                .min_by_key(|(_, e)| e.created_at)
                .map(|(i, _)| i);
            match victim {
                Some(i) => removed.push(index.entries.remove(i)),
                None => break,
            }
        }
    }
    removed
}

/// Move what `evict` removes into the index's purge list; returns the whole list to delete.
pub fn evict_to_purge(index: &mut Index, now: UnixSeconds, max_records: usize, retention_secs: i64) -> Vec<IndexEntry> {
    let evicted = evict(index, now, max_records, retention_secs);
    index.purge.extend(evicted);
    index.purge.clone()
}

/// Delete the keys of evicted records (the record, and the VM key whose newest record it
/// was), then strike them from the index's purge list. A failure leaves the rest listed for
/// the next commit.
pub fn purge(kv: &dyn KvStore, evicted: &[IndexEntry]) -> Result<(), StoreError> {
    if evicted.is_empty() {
        return Ok(());
    }
    let mut done = Vec::new();
    let mut failure = None;
    for e in evicted {
        let result = (|| -> Result<(), StoreError> {
            kv.delete(&record_key(&e.id))?;
            // The VM key goes with the VM's newest record, so VM keys never outnumber records.
            if !e.vm_key.is_empty()
                && read::<VmState>(kv, &e.vm_key)?.is_some_and(|vm| vm.latest.as_deref() == Some(e.id.as_str()))
            {
                kv.delete(&e.vm_key)?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => done.push(e.id.clone()),
            Err(err) => {
                failure = Some(err);
                break;
            }
        }
    }
    if !done.is_empty() {
        update::<Index, _>(kv, INDEX_KEY, |cur| {
            let mut index = cur.unwrap_or_default();
            let before = index.purge.len();
            index.purge.retain(|p| !done.contains(&p.id));
            if index.purge.len() == before { Change::Keep } else { Change::Put(index) }
        })?;
    }
    failure.map_or(Ok(()), Err)
}

/// Apply changed entries to the index in one compare-and-swap, evict what must go, and delete
/// the evicted records (and VM keys that pointed at them). Returns the index as written.
pub fn commit_index(
    kv: &dyn KvStore,
    changed: &[IndexEntry],
    now: UnixSeconds,
    max_records: usize,
    retention_secs: i64,
) -> Result<Index, StoreError> {
    let mut to_purge = Vec::new();
    let written = update::<Index, _>(kv, INDEX_KEY, |current| {
        let mut index = current.unwrap_or_default();
        for e in changed {
            index.upsert(e.clone());
        }
        to_purge = evict_to_purge(&mut index, now, max_records, retention_secs);
        Change::Put(index)
    })?;
    purge(kv, &to_purge)?;
    Ok(written.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemKv;

    fn entry(id: &str, state: State, created: i64, due: Option<i64>, finished: Option<i64>) -> IndexEntry {
        IndexEntry {
            id: id.into(),
            state,
            created_at: created,
            due_at: due,
            finished_at: finished,
            vm_key: vm_key(id),
            group: String::new(),
        }
    }

    #[test]
    fn a_scale_set_overlaps_its_instances_but_instances_do_not_overlap() {
        let set = "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachinescalesets/ss";
        let of = |key: &str| IndexEntry {
            id: key.into(),
            state: State::Running,
            created_at: 0,
            due_at: None,
            finished_at: None,
            vm_key: vm_key(key),
            group: scale_set_of(key).map(vm_key).unwrap_or_default(),
        };
        let whole = of(set);
        let i0 = of(&format!("{set}/virtualmachines/0"));
        let i1 = of(&format!("{set}/virtualmachines/1"));
        let vm = of("/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/ss");
        assert!(whole.overlaps(&i0) && i0.overlaps(&whole));
        assert!(!i0.overlaps(&i1));
        assert!(i0.overlaps(&i0.clone()));
        assert!(!vm.overlaps(&whole) && !whole.overlaps(&vm));
    }

    #[test]
    fn eviction_spares_active_and_prefers_done() {
        let mut idx = Index {
            writer: String::new(),
            purge: Vec::new(),
            entries: vec![
                entry("a", State::Running, 1, Some(5), None),
                entry("b", State::Succeeded, 2, Some(5), Some(3)),
                entry("c", State::Succeeded, 3, None, Some(4)),
                entry("d", State::Queued, 4, Some(5), None),
            ],
        };
        let gone = evict(&mut idx, 10, 2, 1000);
        let ids: Vec<_> = gone.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["c", "b"]);
        let left: Vec<_> = idx.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(left, ["a", "d"]);
    }

    #[test]
    fn retention_drops_only_finished_and_done() {
        let mut idx = Index {
            writer: String::new(),
            purge: Vec::new(),
            entries: vec![
                entry("old", State::Failed, 1, None, Some(1)),
                entry("pending", State::Failed, 1, Some(1), Some(1)),
            ],
        };
        let gone = evict(&mut idx, 10_000, 100, 3600);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].id, "old");
    }

    /// Deletes that fail stay listed in the index, and the next commit finishes them.
    #[test]
    fn a_failed_purge_is_finished_by_the_next_commit() {
        struct FailDeletes {
            inner: MemKv,
            fail: std::cell::Cell<bool>,
        }
        impl KvStore for FailDeletes {
            fn get(&self, k: &str) -> Result<Option<Vec<u8>>, KvError> {
                self.inner.get(k)
            }
            fn set(&self, k: &str, v: &[u8]) -> Result<(), KvError> {
                self.inner.set(k, v)
            }
            fn delete(&self, k: &str) -> Result<(), KvError> {
                if self.fail.get() { Err(KvError("injected".into())) } else { self.inner.delete(k) }
            }
            fn compare_and_swap(&self, k: &str, e: Option<&[u8]>, n: &[u8]) -> Result<bool, KvError> {
                self.inner.compare_and_swap(k, e, n)
            }
            fn increment(&self, k: &str, d: i64) -> Result<i64, KvError> {
                self.inner.increment(k, d)
            }
        }
        let kv = FailDeletes { inner: MemKv::new(), fail: Default::default() };
        let done = |id: &str, t: i64| entry(id, State::Succeeded, t, None, Some(t));
        kv.set(&record_key("old"), b"{}").unwrap();
        commit_index(&kv, &[done("old", 1)], 2, 10, 1_000_000).unwrap();
        // Retention expires "old"; the index swap works, the delete does not.
        kv.fail.set(true);
        assert!(commit_index(&kv, &[], 2_000_000, 10, 10).is_err());
        kv.fail.set(false);
        assert!(kv.inner.get_string(&record_key("old")).is_some());
        let index: Index = read(&kv, INDEX_KEY).unwrap().unwrap();
        assert!(index.entries.is_empty());
        assert_eq!(index.purge.len(), 1, "still listed for deletion");
        // Any later commit finishes the job.
        commit_index(&kv, &[], 2_000_001, 10, 10).unwrap();
        assert!(kv.inner.get_string(&record_key("old")).is_none(), "the leaked record is deleted");
        let index: Index = read(&kv, INDEX_KEY).unwrap().unwrap();
        assert!(index.purge.is_empty());
    }

    #[test]
    fn update_retries_on_a_lost_race() {
        struct Racy {
            inner: MemKv,
            raced: std::cell::Cell<bool>,
        }
        impl KvStore for Racy {
            fn get(&self, k: &str) -> Result<Option<Vec<u8>>, KvError> {
                self.inner.get(k)
            }
            fn set(&self, k: &str, v: &[u8]) -> Result<(), KvError> {
                self.inner.set(k, v)
            }
            fn delete(&self, k: &str) -> Result<(), KvError> {
                self.inner.delete(k)
            }
            fn compare_and_swap(&self, k: &str, e: Option<&[u8]>, n: &[u8]) -> Result<bool, KvError> {
                if !self.raced.replace(true) {
                    // Another writer slips in first.
                    self.inner.set(k, b"[1]")?;
                }
                self.inner.compare_and_swap(k, e, n)
            }
            fn increment(&self, k: &str, d: i64) -> Result<i64, KvError> {
                self.inner.increment(k, d)
            }
        }
        let kv = Racy { inner: MemKv::new(), raced: Default::default() };
        let out = update::<Vec<u32>, _>(&kv, "k", |cur| {
            let mut v = cur.unwrap_or_default();
            v.push(2);
            Change::Put(v)
        })
        .unwrap();
        assert_eq!(out, Some(vec![1, 2]), "the other writer's value is kept");
    }
}
