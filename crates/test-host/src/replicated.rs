//! The Akamai-like replicated store: every write is kept as a version stamped with its writer
//! and when it was made; a reader sees its own writes at once and other requests' writes only
//! once the configured staleness has passed, as on a replicated store read from another
//! region.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::kv::Staleness;

/// One write: `value` `None` is a delete.
#[derive(Debug, Clone)]
struct Version {
    /// The writing request's ordinal; `None` for a test fixture (visible to all at once).
    writer: Option<u64>,
    /// Requests begun on the store when it was written.
    at_requests: u64,
    /// Store time when it was written.
    at_ms: u64,
    value: Option<Vec<u8>>,
}

#[derive(Debug)]
pub(crate) struct Replicated {
    staleness: Staleness,
    /// Per key, versions oldest first.
    versions: Mutex<BTreeMap<String, Vec<Version>>>,
    epoch: Instant,
    offset_ms: AtomicU64,
}

impl Replicated {
    pub(crate) fn new(staleness: Staleness) -> Self {
        Self { staleness, versions: Mutex::default(), epoch: Instant::now(), offset_ms: AtomicU64::new(0) }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + self.offset_ms.load(Ordering::SeqCst)
    }

    pub(crate) fn advance(&self, by: Duration) {
        self.offset_ms.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<Version>>> {
        // Every update is one push or drain on one key's list: a poisoned lock is still whole.
        self.versions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether every reader sees `v` by now.
    fn replicated(&self, v: &Version, requests: u64, now_ms: u64) -> bool {
        v.writer.is_none()
            || match self.staleness {
                Staleness::Requests(n) => requests >= v.at_requests.saturating_add(n),
                Staleness::Millis(ms) => now_ms >= v.at_ms.saturating_add(ms),
            }
    }

    /// The value `reader` sees (`None`: the settled value, every write counted).
    fn visible(&self, versions: &[Version], reader: Option<u64>, requests: u64, now_ms: u64) -> Option<Vec<u8>> {
        versions
            .iter()
            .rev()
            .find(|v| match reader {
                None => true,
                Some(r) => v.writer == Some(r) || self.replicated(v, requests, now_ms),
            })
            .and_then(|v| v.value.clone())
    }

    /// A write by `writer` (`None`: fixture), made when `requests` had begun.
    pub(crate) fn write(&self, key: String, value: Option<Vec<u8>>, writer: Option<u64>, requests: u64) {
        let now_ms = self.now_ms();
        let mut map = self.lock();
        let list = map.entry(key).or_default();
        list.push(Version { writer, at_requests: requests, at_ms: now_ms, value });
        // Versions older than the newest one every reader sees can never be read again.
        if let Some(i) = list.iter().rposition(|v| self.replicated(v, requests, now_ms))
            && i > 0
        {
            list.drain(..i);
        }
    }

    /// What `reader` reads of `key` when `requests` have begun; `reader` `None`: settled.
    pub(crate) fn read_at(&self, key: &str, reader: Option<u64>, requests: u64) -> Option<Vec<u8>> {
        let now_ms = self.now_ms();
        self.lock().get(key).and_then(|list| self.visible(list, reader, requests, now_ms))
    }

    /// The keys `reader` sees, sorted.
    pub(crate) fn keys_at(&self, reader: u64, requests: u64) -> Vec<String> {
        let now_ms = self.now_ms();
        self.lock()
            .iter()
            .filter(|(_, list)| self.visible(list, Some(reader), requests, now_ms).is_some())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Every key with its settled value.
    pub(crate) fn settled(&self) -> BTreeMap<String, Vec<u8>> {
        self.lock().iter().filter_map(|(k, list)| self.visible(list, None, 0, 0).map(|v| (k.clone(), v))).collect()
    }
}
