//! The key-value layout (SPEC §6, docs/STATE.md).
//!
//! Correctness rests only on what every store gives — `get`, `set`, `delete` and a listing of
//! its keys, possibly eventually consistent across requests and read-your-writes within one —
//! and on Azure's deterministic capture names. No key is ever compared-and-swapped.
//!
//! | key | value | owner |
//! |---|---|---|
//! | `v1:act:{group}:{vm}:{name}` | the record of a capture while it is `queued` or `running` | [`records`] |
//! | `v1:cap:{name}` | the record once terminal | [`records`] |
//! | `v1:due:{name}` | empty: a terminal record still has work (a notification, a clean-up) | [`records`] |
//! | `v1:al:{name}:{digest}` | an accepted alert ([`facts::AlertFact`]) | [`facts`] |
//! | `v1:claim:{name}` | the request that will `PUT` capture `name` (a hint) | [`records`] |
//! | `v1:azure` | the Azure client's cache: sealed token, watchers, VM regions | [`cache`] |
//!
//! Keys are at most 256 bytes and hold no `/ \ ? #` (Azure Cosmos DB refuses `/`).

pub mod cache;
pub mod facts;
pub mod records;

use serde::{Serialize, de::DeserializeOwned};

pub use crate::domain::digest::{hash16, hex};
pub use crate::domain::policy::name_time;
use crate::ports::{KvError, KvStore, UnixSeconds};

/// Store errors as the handlers see them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store failed; the request should be retried later (`503`).
    #[error(transparent)]
    Kv(#[from] KvError),
    /// A stored value could not be read back (a bug or a foreign writer); not retryable.
    #[error("stored value at {0} is unreadable")]
    Corrupt(String),
}

/// Read and decode a JSON value.
pub fn read<T: DeserializeOwned>(kv: &dyn KvStore, key: &str) -> Result<Option<T>, StoreError> {
    match kv.get(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|_| StoreError::Corrupt(key.to_string())),
    }
}

/// Encode and write a JSON value (a plain `set`: last writer wins).
pub fn write<T: Serialize>(kv: &dyn KvStore, key: &str, value: &T) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|_| StoreError::Corrupt(key.to_string()))?;
    kv.set(key, &bytes)?;
    Ok(())
}

/// One listing of the store (one `list_keys`), sorted by what the keys mean.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Active records.
    pub active: Vec<records::ActKey>,
    /// Terminal records: (name, finish time).
    pub finished: Vec<(String, UnixSeconds)>,
    /// Names of terminal records with work left.
    pub due: Vec<String>,
    /// Accepted alerts: (capture name, alert digest).
    pub facts: Vec<(String, String)>,
    /// Names with a create claim.
    pub claims: Vec<String>,
    /// `act` keys of captures that also have a `cap` record: left over (or written by a check
    /// of an old copy of the record), to reconcile with Azure if need be and delete.
    pub stale_active: Vec<records::ActKey>,
    /// Further `cap` keys of a name that has an earlier one (name, finish time): written by a
    /// check of an old copy of an active record after another request had finished it. The
    /// earliest one is the record (`finished`); these are deleted.
    pub duplicate_finished: Vec<(String, UnixSeconds)>,
}

impl Listing {
    /// List the store.
    pub fn load(kv: &dyn KvStore) -> Result<Listing, StoreError> {
        Ok(Listing::from_keys(kv.list_keys()?))
    }

    /// Sort raw keys; keys that are not ours are ignored.
    pub fn from_keys(keys: Vec<String>) -> Listing {
        let mut l = Listing::default();
        for k in keys {
            if let Some(a) = records::ActKey::parse(&k) {
                l.active.push(a);
            } else if let Some(f) = records::parse_cap_key(&k) {
                l.finished.push(f);
            } else if let Some(n) = k.strip_prefix(records::DUE_PREFIX) {
                l.due.push(n.to_string());
            } else if let Some(rest) = k.strip_prefix(facts::FACT_PREFIX)
                && let Some((name, digest)) = rest.rsplit_once(':')
            {
                l.facts.push((name.to_string(), digest.to_string()));
            } else if let Some(n) = k.strip_prefix(records::CLAIM_PREFIX) {
                l.claims.push(n.to_string());
            }
        }
        // One terminal record per name: the first to finish. A later one can only come from a
        // request that stepped an old copy of the record (a store showing writes late).
        l.finished.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut kept: Vec<(String, UnixSeconds)> = Vec::with_capacity(l.finished.len());
        for f in l.finished.drain(..) {
            if kept.last().is_some_and(|k| k.0 == f.0) {
                l.duplicate_finished.push(f);
            } else {
                kept.push(f);
            }
        }
        l.finished = kept;
        // A capture both active and finished is finished (docs/STATE.md: `cap` wins).
        l.active.sort_by(|a, b| a.name.cmp(&b.name));
        l.active.dedup_by(|a, b| a.name == b.name);
        let (stale, active) = l.active.drain(..).partition(|a| l.finished.iter().any(|(n, _)| *n == a.name));
        (l.stale_active, l.active) = (stale, active);
        l
    }

    /// The fact of an alert digest, under whichever capture it was accepted into.
    pub fn fact_for(&self, digest: &str) -> Option<&str> {
        self.facts.iter().find(|(_, d)| d == digest).map(|(n, _)| n.as_str())
    }

    /// Digests of the alerts accepted into capture `name`.
    pub fn facts_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.facts.iter().filter(move |(n, _)| n == name).map(|(_, d)| d.as_str())
    }

    /// Is `name` known at all (active or finished)?
    pub fn knows(&self, name: &str) -> bool {
        self.is_finished(name) || self.active.iter().any(|a| a.name == name)
    }

    /// Is there a terminal record `name`?
    pub fn is_finished(&self, name: &str) -> bool {
        self.finished.iter().any(|(n, _)| n == name)
    }

    /// The finish time of terminal record `name`.
    pub fn finished_at(&self, name: &str) -> Option<UnixSeconds> {
        self.finished.iter().find(|(n, _)| n == name).map(|(_, t)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_has_one_terminal_record_the_first_to_finish() {
        let keys = vec![
            "v1:cap:apc-a-20260101T000000-00000000:20260101T000900".to_string(),
            "v1:cap:apc-a-20260101T000000-00000000:20260101T000500".to_string(),
            "v1:cap:apc-b-20260101T000000-11111111:20260101T000700".to_string(),
            "v1:act:0123456789abcdef:0123456789abcdef:apc-a-20260101T000000-00000000".to_string(),
        ];
        let l = Listing::from_keys(keys);
        let t = |s: &str| crate::domain::timefmt::parse_compact(s).unwrap();
        assert_eq!(l.finished.len(), 2);
        assert_eq!(l.finished_at("apc-a-20260101T000000-00000000"), Some(t("20260101T000500")));
        assert_eq!(l.duplicate_finished, vec![("apc-a-20260101T000000-00000000".to_string(), t("20260101T000900"))]);
        assert_eq!(l.stale_active.len(), 1, "the act key of a finished name is left over");
        assert!(l.active.is_empty());
    }
}
