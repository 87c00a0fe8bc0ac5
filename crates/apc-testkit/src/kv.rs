//! The in-memory key-value store, with the store behaviours the product must survive.
//!
//! [`MemKv`] is one store whose compare-and-swap, increment and read consistency follow a
//! [`StoreBehaviour`] chosen per test:
//!
//! | behaviour | compare-and-swap | increment | reads across requests |
//! |---|---|---|---|
//! | [`Strict`](StoreBehaviour::Strict) | exact | yes | immediate |
//! | [`SpinSqlite`](StoreBehaviour::SpinSqlite) | expected "absent" is a blind upsert | yes | immediate |
//! | [`SpinRedis`](StoreBehaviour::SpinRedis) | a swap that writes reports `Ok(false)` | yes | immediate |
//! | [`Eventual`](StoreBehaviour::Eventual) | `KvError` (no atomics) | `KvError` | stale by [`Staleness`] |
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
    /// A correct compare-and-swap: writes and reports success only when the current value is
    /// the expected one.
    #[default]
    Strict,
    /// Spin's SQLite store: a swap whose expected value is "absent" is an unconditional upsert
    /// (it writes and reports success even when the key exists); other swaps are exact.
    SpinSqlite,
    /// Spin's Redis store (SPIN-NOTES): a swap that should succeed writes but reports failure
    /// (`Ok(false)`); a swap that should fail reports failure and does not write. `increment`
    /// works.
    SpinRedis,
    /// Akamai Functions: no atomics at all (`compare_and_swap` and `increment` fail); a request
    /// reads its own writes at once, other requests' writes only after the [`Staleness`].
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
    /// `compare_and_swap` calls.
    pub cas: u32,
    /// `increment` calls.
    pub increments: u32,
}

impl KvCounts {
    /// All operations.
    pub fn total(&self) -> u32 {
        self.gets + self.sets + self.deletes + self.cas + self.increments
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
    /// Make reads (`get`, and the read half of CAS) fail until turned off.
    pub fn fail_reads(&self, on: bool) {
        self.fail_reads.set(on);
    }
    /// Make writes (`set`, `delete`, CAS) fail until turned off.
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

    fn no_atomics(op: &str) -> KvError {
        KvError(format!("atomics are not supported on this store ({op}): eventually consistent key-value store"))
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

    fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, KvError> {
        self.bump(|c| c.cas += 1);
        if self.behaviour == StoreBehaviour::Eventual {
            return Err(Self::no_atomics("compare_and_swap"));
        }
        if self.fail_reads.get() || self.fail_writes.get() {
            return Err(KvError("injected failure".into()));
        }
        let matches = self.read(key).as_deref() == expected;
        match self.behaviour {
            StoreBehaviour::SpinSqlite if expected.is_none() => {
                // INSERT … ON CONFLICT DO UPDATE: whatever is there is overwritten.
                self.write(key, Some(new));
                Ok(true)
            }
            StoreBehaviour::SpinRedis => {
                // The write happens; the reply is lost to a failing UNWATCH (SPIN-NOTES).
                if matches {
                    self.write(key, Some(new));
                }
                Ok(false)
            }
            _ => {
                if matches {
                    self.write(key, Some(new));
                }
                Ok(matches)
            }
        }
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.bump(|c| c.increments += 1);
        if self.behaviour == StoreBehaviour::Eventual {
            return Err(Self::no_atomics("increment"));
        }
        if self.fail_writes.get() {
            return Err(KvError("injected write failure".into()));
        }
        // Stored as Spin's stores keep counters: 8 bytes, little-endian.
        let current = match self.read(key) {
            None => 0,
            Some(b) => i64::from_le_bytes(b.as_slice().try_into().map_err(|_| KvError("not a counter".into()))?),
        };
        let next = current.checked_add(delta).ok_or_else(|| KvError("counter overflow".into()))?;
        self.write(key, Some(&next.to_le_bytes()));
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(b: StoreBehaviour) -> MemKv {
        MemKv::with_behaviour(b)
    }

    #[test]
    fn strict_swaps_only_on_the_expected_value() {
        let s = kv(StoreBehaviour::Strict);
        assert_eq!(s.compare_and_swap("k", None, b"1"), Ok(true));
        assert_eq!(s.compare_and_swap("k", None, b"2"), Ok(false), "absent expected, present found");
        assert_eq!(s.get_string("k").as_deref(), Some("1"));
        assert_eq!(s.compare_and_swap("k", Some(b"x"), b"3"), Ok(false));
        assert_eq!(s.get_string("k").as_deref(), Some("1"));
        assert_eq!(s.compare_and_swap("k", Some(b"1"), b"4"), Ok(true));
        assert_eq!(s.get_string("k").as_deref(), Some("4"));
        assert_eq!(s.increment("n", 2), Ok(2));
        assert_eq!(s.increment("n", 3), Ok(5));
        assert_eq!(s.counts().cas, 4);
        assert_eq!(s.counts().increments, 2);
    }

    #[test]
    fn sqlite_upserts_over_an_existing_value_when_absent_is_expected() {
        let s = kv(StoreBehaviour::SpinSqlite);
        s.set("k", b"old").unwrap();
        assert_eq!(s.compare_and_swap("k", None, b"new"), Ok(true), "reports success");
        assert_eq!(s.get_string("k").as_deref(), Some("new"), "and overwrote the existing value");
        // Swaps from a present value stay exact.
        assert_eq!(s.compare_and_swap("k", Some(b"old"), b"x"), Ok(false));
        assert_eq!(s.get_string("k").as_deref(), Some("new"));
        assert_eq!(s.compare_and_swap("k", Some(b"new"), b"y"), Ok(true));
        assert_eq!(s.get_string("k").as_deref(), Some("y"));
        assert_eq!(s.increment("n", 1), Ok(1));
    }

    #[test]
    fn redis_reports_failure_after_writing_and_does_not_write_on_a_real_mismatch() {
        let s = kv(StoreBehaviour::SpinRedis);
        assert_eq!(s.compare_and_swap("k", None, b"1"), Ok(false), "reports failure");
        assert_eq!(s.get_string("k").as_deref(), Some("1"), "but really wrote");
        assert_eq!(s.compare_and_swap("k", Some(b"1"), b"2"), Ok(false));
        assert_eq!(s.get_string("k").as_deref(), Some("2"), "wrote again");
        assert_eq!(s.compare_and_swap("k", Some(b"1"), b"3"), Ok(false));
        assert_eq!(s.get_string("k").as_deref(), Some("2"), "a swap that should fail does not write");
        assert_eq!(s.compare_and_swap("k", None, b"4"), Ok(false));
        assert_eq!(s.get_string("k").as_deref(), Some("2"));
        assert_eq!(s.increment("n", 5), Ok(5));
        assert_eq!(s.increment("n", -2), Ok(3));
    }

    #[test]
    fn eventual_has_no_atomics() {
        let s = kv(StoreBehaviour::Eventual);
        s.begin_request(0);
        let e = s.compare_and_swap("k", None, b"1").unwrap_err();
        assert!(e.0.contains("atomics are not supported"), "{e}");
        let e = s.increment("n", 1).unwrap_err();
        assert!(e.0.contains("atomics are not supported"), "{e}");
        assert!(s.keys().is_empty(), "nothing written");
        assert_eq!(s.counts().cas + s.counts().increments, 2, "still counted");
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
        assert!(s.compare_and_swap("k", None, b"v").is_err());
        s.fail_writes(false);
        s.fail_reads(true);
        assert!(s.get("k").is_err());
        s.fail_reads(false);
        s.set("k", b"v").unwrap();
        s.set("j", b"v").unwrap();
        s.delete("k").unwrap();
        assert_eq!(s.keys(), ["j"]);
        assert_eq!(s.max_keys_seen(), 2);
        assert_eq!(s.counts(), KvCounts { gets: 1, sets: 3, deletes: 1, cas: 1, increments: 0 });
        s.reset_counts();
        assert_eq!(s.counts().total(), 0);
    }
}
