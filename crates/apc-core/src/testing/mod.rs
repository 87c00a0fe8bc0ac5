//! Test doubles for the ports: an in-memory key-value store with counters and fault injection,
//! a settable clock, and variables from a map. Used by the core's own tests and by the
//! end-to-end tests; small enough that compiling it into the component costs nothing (unused
//! code is dropped at link time).

pub mod http;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};

use crate::ports::{Clock, KvError, KvStore, UnixSeconds, Variables};

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

/// An in-memory [`KvStore`] (single-threaded, like one component instance).
#[derive(Default)]
pub struct MemKv {
    data: RefCell<BTreeMap<String, Vec<u8>>>,
    counts: Cell<KvCounts>,
    fail_reads: Cell<bool>,
    fail_writes: Cell<bool>,
    max_keys_seen: Cell<usize>,
}

impl MemKv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
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
    /// Keys currently stored.
    pub fn keys(&self) -> Vec<String> {
        self.data.borrow().keys().cloned().collect()
    }
    /// The most keys ever stored at once.
    pub fn max_keys_seen(&self) -> usize {
        self.max_keys_seen.get()
    }
    /// A value as text, for assertions.
    pub fn get_string(&self, key: &str) -> Option<String> {
        self.data.borrow().get(key).map(|v| String::from_utf8_lossy(v).into_owned())
    }
    /// Every value, for scans (e.g. "no secret stored anywhere").
    pub fn values(&self) -> Vec<Vec<u8>> {
        self.data.borrow().values().cloned().collect()
    }

    fn bump(&self, f: impl FnOnce(&mut KvCounts)) {
        let mut c = self.counts.get();
        f(&mut c);
        self.counts.set(c);
    }

    fn note_size(&self) {
        let n = self.data.borrow().len();
        if n > self.max_keys_seen.get() {
            self.max_keys_seen.set(n);
        }
    }
}

impl KvStore for MemKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.bump(|c| c.gets += 1);
        if self.fail_reads.get() {
            return Err(KvError("injected read failure".into()));
        }
        Ok(self.data.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.bump(|c| c.sets += 1);
        if self.fail_writes.get() {
            return Err(KvError("injected write failure".into()));
        }
        self.data.borrow_mut().insert(key.to_string(), value.to_vec());
        self.note_size();
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.bump(|c| c.deletes += 1);
        if self.fail_writes.get() {
            return Err(KvError("injected write failure".into()));
        }
        self.data.borrow_mut().remove(key);
        Ok(())
    }

    fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, KvError> {
        self.bump(|c| c.cas += 1);
        if self.fail_reads.get() || self.fail_writes.get() {
            return Err(KvError("injected failure".into()));
        }
        let mut data = self.data.borrow_mut();
        if data.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        data.insert(key.to_string(), new.to_vec());
        drop(data);
        self.note_size();
        Ok(true)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.bump(|c| c.increments += 1);
        if self.fail_writes.get() {
            return Err(KvError("injected write failure".into()));
        }
        let mut data = self.data.borrow_mut();
        // Stored as Spin's stores keep counters: 8 bytes, little-endian.
        let current = match data.get(key) {
            None => 0,
            Some(b) => i64::from_le_bytes(b.as_slice().try_into().map_err(|_| KvError("not a counter".into()))?),
        };
        let next = current.checked_add(delta).ok_or_else(|| KvError("counter overflow".into()))?;
        data.insert(key.to_string(), next.to_le_bytes().to_vec());
        drop(data);
        self.note_size();
        Ok(next)
    }
}

/// A clock that tests set and advance.
#[derive(Debug)]
pub struct TestClock(Cell<UnixSeconds>);

impl TestClock {
    /// A clock at `t`.
    pub fn at(t: UnixSeconds) -> Self {
        TestClock(Cell::new(t))
    }
    /// Move forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0.set(self.0.get() + secs);
    }
    /// Set the time.
    pub fn set(&self, t: UnixSeconds) {
        self.0.set(t);
    }
}

impl Clock for TestClock {
    fn now(&self) -> UnixSeconds {
        self.0.get()
    }
}

/// Variables from a map.
#[derive(Debug, Default, Clone)]
pub struct MapVars(pub HashMap<String, String>);

impl MapVars {
    /// Build from pairs.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        MapVars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }
    /// Set one variable.
    pub fn set(&mut self, name: &str, value: &str) {
        self.0.insert(name.to_string(), value.to_string());
    }
}

impl Variables for MapVars {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}
