//! The in-memory key-value store, with the store behaviours the product must survive.
//!
//! [`MemKv`] is one store whose read consistency follows a [`StoreBehaviour`] chosen per test.
//! The port has no atomics (issue 9), so the strict, SQLite and Redis behaviours (whose
//! differences were all in compare-and-swap) now behave alike; they stay named so every
//! scenario keeps running once per backend:
//!
//! | behaviour | reads and listings across requests |
//! |---|---|
//! | [`Strict`](StoreBehaviour::Strict), [`SpinSqlite`](StoreBehaviour::SpinSqlite), [`SpinRedis`](StoreBehaviour::SpinRedis) | immediate |
//! | [`Eventual`](StoreBehaviour::Eventual) | stale by [`Staleness`]; a listing shows what a read would see |
//!
//! Request boundaries ([`MemKv::begin_request`], [`MemKv::end_request`]) tell the eventual store
//! which request a read or write belongs to; [`crate::TestApp`] marks them around every call.
//! Operations outside a request (a test seeding or inspecting the store) see and write the
//! latest state, and such writes are visible to every later request at once.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use apc_core::ports::{KvError, KvStore, UnixSeconds};

/// How the store behaves where real key-value backends differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreBehaviour {
    /// Immediately consistent.
    #[default]
    Strict,
    /// Spin's SQLite store: immediately consistent (its swap quirk no longer matters: the port
    /// has no compare-and-swap).
    SpinSqlite,
    /// Spin's Redis store: immediately consistent (its false `CasFailed` no longer matters).
    SpinRedis,
    /// Akamai Functions: a request reads (and lists) its own writes at once, other requests'
    /// writes only after the [`Staleness`].
    Eventual,
}

impl StoreBehaviour {
    /// All four, strongest first.
    pub const ALL: [StoreBehaviour; 4] =
        [StoreBehaviour::Strict, StoreBehaviour::SpinSqlite, StoreBehaviour::SpinRedis, StoreBehaviour::Eventual];
}

/// How far behind an [`Eventual`](StoreBehaviour::Eventual) store's reads lag other requests'
/// writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staleness {
    /// A read in request `r` sees writes of requests up to `r - 1 - n`: the `n` requests just
    /// before it are hidden. `Requests(0)` is immediately consistent across requests.
    Requests(u64),
    /// A read sees another request's write once `n` seconds have passed since that request
    /// began (by the time the reading request began). `Seconds(0)` is immediately consistent.
    Seconds(i64),
}

impl Default for Staleness {
    /// One request behind: the smallest lag that still breaks read-after-write across requests.
    fn default() -> Self {
        Staleness::Requests(1)
    }
}

/// Counts of key-value operations, for "KV operations per request" assertions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KvCounts {
    /// `get` calls.
    pub gets: u32,
    /// `set` calls.
    pub sets: u32,
    /// `delete` calls.
    pub deletes: u32,
    /// `list_keys` calls.
    pub lists: u32,
}

impl KvCounts {
    /// All operations.
    pub fn total(&self) -> u32 {
        self.gets + self.sets + self.deletes + self.lists
    }
    /// Writes (`set` and `delete`).
    pub fn writes(&self) -> u32 {
        self.sets + self.deletes
    }
}

/// One written version of a key, as the eventual store replicates it.
#[derive(Debug, Clone)]
struct Version {
    /// The request that wrote it; `None`: written outside any request (a test's seed).
    request: Option<u64>,
    /// When that request began.
    at: UnixSeconds,
    /// The value, `None` for a delete.
    value: Option<Vec<u8>>,
}

/// The request in progress.
#[derive(Debug, Clone, Copy)]
struct Current {
    seq: u64,
    at: UnixSeconds,
}

/// An in-memory [`KvStore`] (single-threaded, like one component instance) with counters,
/// fault injection and a chosen [`StoreBehaviour`].
#[derive(Default)]
pub struct MemKv {
    behaviour: StoreBehaviour,
    staleness: Staleness,
    /// The latest state (what every request would see on a strongly consistent store).
    data: RefCell<BTreeMap<String, Vec<u8>>>,
    /// Eventual store only: the versions of each key still needed to answer stale reads.
    history: RefCell<BTreeMap<String, Vec<Version>>>,
    current: Cell<Option<Current>>,
    requests: Cell<u64>,
    counts: Cell<KvCounts>,
    fail_reads: Cell<bool>,
    fail_writes: Cell<bool>,
    max_keys_seen: Cell<usize>,
}

impl MemKv {
    /// An empty store with a strict compare-and-swap.
    pub fn new() -> Self {
        Self::default()
    }
    /// An empty store with `behaviour` (and, for the eventual store, the default [`Staleness`]).
    pub fn with_behaviour(behaviour: StoreBehaviour) -> Self {
        MemKv { behaviour, ..Self::default() }
    }
    /// Set how far the eventual store lags (ignored by the other behaviours).
    pub fn with_staleness(mut self, staleness: Staleness) -> Self {
        self.staleness = staleness;
        self
    }
    /// The behaviour of this store.
    pub fn behaviour(&self) -> StoreBehaviour {
        self.behaviour
    }
    /// The staleness of this store (meaningful for [`StoreBehaviour::Eventual`]).
    pub fn staleness(&self) -> Staleness {
        self.staleness
    }

    /// Mark the start of a request that began at `now`; until [`end_request`](Self::end_request),
    /// reads and writes belong to it.
    pub fn begin_request(&self, now: UnixSeconds) {
        let seq = self.requests.get() + 1;
        self.requests.set(seq);
        self.current.set(Some(Current { seq, at: now }));
    }
    /// Mark the end of the request in progress.
    pub fn end_request(&self) {
        self.current.set(None);
    }
    /// Requests begun so far.
    pub fn requests_seen(&self) -> u64 {
        self.requests.get()
    }

    /// Operations counted so far.
    pub fn counts(&self) -> KvCounts {
        self.counts.get()
    }
    /// Reset the counters.
    pub fn reset_counts(&self) {
        self.counts.set(KvCounts::default());
    }
    /// Make reads (`get`, `list_keys`) fail until turned off.
    pub fn fail_reads(&self, on: bool) {
        self.fail_reads.set(on);
    }
    /// Make writes (`set`, `delete`) fail until turned off.
    pub fn fail_writes(&self, on: bool) {
        self.fail_writes.set(on);
    }
    /// Keys currently stored (latest state).
    pub fn keys(&self) -> Vec<String> {
        self.data.borrow().keys().cloned().collect()
    }
    /// The most keys ever stored at once.
    pub fn max_keys_seen(&self) -> usize {
        self.max_keys_seen.get()
    }
    /// A value as text (latest state), for assertions.
    pub fn get_string(&self, key: &str) -> Option<String> {
        self.data.borrow().get(key).map(|v| String::from_utf8_lossy(v).into_owned())
    }
    /// Every value (latest state), for scans (e.g. "no secret stored anywhere").
    pub fn values(&self) -> Vec<Vec<u8>> {
        self.data.borrow().values().cloned().collect()
    }

    fn bump(&self, f: impl FnOnce(&mut KvCounts)) {
        let mut c = self.counts.get();
        f(&mut c);
        self.counts.set(c);
    }

    /// Is a version written by another request visible to the request `cur`?
    fn visible(&self, v: &Version, cur: Current) -> bool {
        let Some(writer) = v.request else { return true };
        if writer == cur.seq {
            return true;
        }
        match self.staleness {
            Staleness::Requests(n) => writer.saturating_add(n) < cur.seq,
            Staleness::Seconds(n) => v.at.saturating_add(n) <= cur.at,
        }
    }

    /// What a read of `key` sees now.
    fn read(&self, key: &str) -> Option<Vec<u8>> {
        match (self.behaviour, self.current.get()) {
            (StoreBehaviour::Eventual, Some(cur)) => {
                let history = self.history.borrow();
                let versions = history.get(key)?;
                // Own writes first (newest wins), then the newest version replicated so far.
                versions
                    .iter()
                    .rev()
                    .find(|v| v.request == Some(cur.seq))
                    .or_else(|| versions.iter().rev().find(|v| self.visible(v, cur)))
                    .and_then(|v| v.value.clone())
            }
            _ => self.data.borrow().get(key).cloned(),
        }
    }

    /// Write (or delete, `None`) `key`, keeping the eventual store's history.
    fn write(&self, key: &str, value: Option<&[u8]>) {
        {
            let mut data = self.data.borrow_mut();
            match value {
                Some(v) => data.insert(key.to_string(), v.to_vec()),
                None => data.remove(key),
            };
        }
        let n = self.data.borrow().len();
        if n > self.max_keys_seen.get() {
            self.max_keys_seen.set(n);
        }
        if self.behaviour != StoreBehaviour::Eventual {
            return;
        }
        let cur = self.current.get();
        let version = Version {
            request: cur.map(|c| c.seq),
            at: cur.map_or(UnixSeconds::MIN, |c| c.at),
            value: value.map(<[u8]>::to_vec),
        };
        let mut history = self.history.borrow_mut();
        let versions = history.entry(key.to_string()).or_default();
        versions.push(version);
        // Versions older than the newest one every later request can see are never read again
        // (requests and their start times only move forward).
        let settled = match cur {
            Some(c) => versions.iter().rposition(|v| v.request != Some(c.seq) && self.visible(v, c)),
            None => Some(versions.len() - 1),
        };
        if let Some(i) = settled {
            versions.drain(..i);
        }
    }

    /// Every key a read in the current request would find (the latest state outside one).
    fn listed(&self) -> Vec<String> {
        match (self.behaviour, self.current.get()) {
            (StoreBehaviour::Eventual, Some(_)) => {
                let keys: Vec<String> = self.history.borrow().keys().cloned().collect();
                keys.into_iter().filter(|k| self.read(k).is_some()).collect()
            }
            _ => self.keys(),
        }
    }
}

impl KvStore for MemKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.bump(|c| c.gets += 1);
        if self.fail_reads.get() {
            return Err(KvError("injected read failure".into()));
        }
        Ok(self.read(key))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.bump(|c| c.sets += 1);
        if self.fail_writes.get() {
            return Err(KvError("injected write failure".into()));
        }
        self.write(key, Some(value));
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.bump(|c| c.deletes += 1);
        if self.fail_writes.get() {
            return Err(KvError("injected write failure".into()));
        }
        self.write(key, None);
        Ok(())
    }

    fn list_keys(&self) -> Result<Vec<String>, KvError> {
        self.bump(|c| c.lists += 1);
        if self.fail_reads.get() {
            return Err(KvError("injected read failure".into()));
        }
        Ok(self.listed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(b: StoreBehaviour) -> MemKv {
        MemKv::with_behaviour(b)
    }

    #[test]
    fn consistent_behaviours_list_every_key_at_once() {
        for b in [StoreBehaviour::Strict, StoreBehaviour::SpinSqlite, StoreBehaviour::SpinRedis] {
            let s = kv(b);
            s.begin_request(0);
            s.set("a", b"1").unwrap();
            s.set("b", b"2").unwrap();
            s.end_request();
            s.begin_request(0);
            assert_eq!(s.list_keys(), Ok(vec!["a".to_string(), "b".to_string()]), "{b:?}");
            s.delete("a").unwrap();
            assert_eq!(s.list_keys(), Ok(vec!["b".to_string()]), "{b:?}");
            s.end_request();
            assert_eq!(s.counts().lists, 2);
        }
    }

    #[test]
    fn eventual_lists_own_writes_and_the_stale_view() {
        let s = kv(StoreBehaviour::Eventual).with_staleness(Staleness::Requests(1));
        s.set("seed", b"s").unwrap();
        s.begin_request(0); // 1
        s.set("k1", b"1").unwrap();
        assert_eq!(s.list_keys(), Ok(vec!["k1".to_string(), "seed".to_string()]), "own write listed");
        s.end_request();
        s.begin_request(0); // 2: request 1 hidden
        assert_eq!(s.list_keys(), Ok(vec!["seed".to_string()]));
        s.delete("seed").unwrap();
        assert_eq!(s.list_keys(), Ok(vec![]), "own delete applies at once");
        s.end_request();
        s.begin_request(0); // 3: request 1 visible, request 2's delete not yet
        assert_eq!(s.list_keys(), Ok(vec!["k1".to_string(), "seed".to_string()]));
        s.end_request();
    }

    #[test]
    fn eventual_shows_own_writes_at_once_and_hides_others_until_the_staleness_passes() {
        let s = kv(StoreBehaviour::Eventual).with_staleness(Staleness::Requests(2));
        s.begin_request(0); // request 1
        assert_eq!(s.get("k"), Ok(None));
        s.set("k", b"a").unwrap();
        assert_eq!(s.get("k"), Ok(Some(b"a".to_vec())), "own write, same request");
        s.set("k", b"b").unwrap();
        assert_eq!(s.get("k"), Ok(Some(b"b".to_vec())), "own newest write");
        s.end_request();
        s.begin_request(0); // request 2: request 1 is one behind, hidden
        assert_eq!(s.get("k"), Ok(None));
        s.end_request();
        s.begin_request(0); // request 3: two behind, still hidden
        assert_eq!(s.get("k"), Ok(None));
        s.end_request();
        s.begin_request(0); // request 4: three behind, visible
        assert_eq!(s.get("k"), Ok(Some(b"b".to_vec())));
        s.delete("k").unwrap();
        assert_eq!(s.get("k"), Ok(None), "own delete seen at once");
        s.end_request();
        s.begin_request(0); // request 5: the delete is hidden, the old value is what it sees
        assert_eq!(s.get("k"), Ok(Some(b"b".to_vec())));
        s.end_request();
        // Outside a request a test sees the latest state.
        assert_eq!(s.get_string("k"), None);
        assert_eq!(s.get("k"), Ok(None));
    }

    #[test]
    fn eventual_staleness_in_seconds_follows_the_request_start_times() {
        let s = kv(StoreBehaviour::Eventual).with_staleness(Staleness::Seconds(10));
        s.begin_request(100);
        s.set("k", b"v").unwrap();
        s.end_request();
        s.begin_request(109);
        assert_eq!(s.get("k"), Ok(None), "9 s later: not yet replicated");
        s.end_request();
        s.begin_request(110);
        assert_eq!(s.get("k"), Ok(Some(b"v".to_vec())), "10 s later: visible");
        s.end_request();
    }

    #[test]
    fn eventual_with_zero_staleness_is_consistent_across_requests_and_seeds_are_visible() {
        let s = kv(StoreBehaviour::Eventual).with_staleness(Staleness::Requests(0));
        s.set("seed", b"s").unwrap(); // outside any request
        s.begin_request(0);
        assert_eq!(s.get("seed"), Ok(Some(b"s".to_vec())));
        s.set("k", b"1").unwrap();
        s.end_request();
        s.begin_request(0);
        assert_eq!(s.get("k"), Ok(Some(b"1".to_vec())), "the previous request's write");
        s.end_request();
    }

    #[test]
    fn eventual_history_is_pruned_once_settled() {
        let s = kv(StoreBehaviour::Eventual).with_staleness(Staleness::Requests(1));
        for i in 0..100u8 {
            s.begin_request(0);
            s.set("k", &[i]).unwrap();
            s.end_request();
        }
        let kept = s.history.borrow()["k"].len();
        assert!(kept <= 3, "{kept} versions kept");
        s.begin_request(0);
        assert_eq!(s.get("k"), Ok(Some(vec![98])), "one request behind");
        s.end_request();
    }

    #[test]
    fn injected_failures_and_counts() {
        let s = MemKv::new();
        s.fail_writes(true);
        assert!(s.set("k", b"v").is_err());
        assert!(s.delete("k").is_err());
        s.fail_writes(false);
        s.fail_reads(true);
        assert!(s.get("k").is_err());
        assert!(s.list_keys().is_err());
        s.fail_reads(false);
        s.set("k", b"v").unwrap();
        s.set("j", b"v").unwrap();
        s.delete("k").unwrap();
        assert_eq!(s.keys(), ["j"]);
        assert_eq!(s.max_keys_seen(), 2);
        assert_eq!(s.counts(), KvCounts { gets: 1, sets: 3, deletes: 2, lists: 1 });
        s.reset_counts();
        assert_eq!(s.counts().total(), 0);
    }
}
