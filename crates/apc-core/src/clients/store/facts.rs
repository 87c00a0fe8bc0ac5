//! Accepted alerts: `v1:al:{name}:{digest}`, written once when an alert (for one target) is
//! accepted into capture `name`. A redelivery finds it in the listing and is answered from it
//! (no Azure call, no write); a poll copies the alert ids into the record from these facts, so
//! an id lost to a concurrent record write comes back.

use super::{StoreError, hash16, read, write};
use crate::ports::{KvStore, UnixSeconds};

/// Prefix of alert facts.
pub const FACT_PREFIX: &str = "v1:al:";

/// Key of the fact of alert `digest` in capture `name`.
pub fn fact_key(name: &str, digest: &str) -> String {
    format!("{FACT_PREFIX}{name}:{digest}")
}

/// The digest of an alert identity on one target.
pub fn digest(identity: &str, target_key: &str) -> String {
    hash16(&format!("{identity}\n{target_key}"))
}

/// The capture as first answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FactCapture {
    /// Record id (the capture name).
    pub id: String,
    /// The target id as shown.
    pub vm: String,
    /// State when the alert was answered.
    pub state: String,
}

/// One accepted alert.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlertFact {
    /// The alert identity (as kept in the record's `alert_ids`).
    pub alert_id: String,
    /// The capture it was accepted into.
    pub capture: FactCapture,
    /// When it was accepted.
    pub accepted_at: UnixSeconds,
}

/// Read a fact.
pub fn load(kv: &dyn KvStore, name: &str, digest: &str) -> Result<Option<AlertFact>, StoreError> {
    read(kv, &fact_key(name, digest))
}

/// Write a fact.
pub fn save(kv: &dyn KvStore, digest: &str, fact: &AlertFact) -> Result<(), StoreError> {
    write(kv, &fact_key(&fact.capture.id, digest), fact)
}

/// Delete a fact.
pub fn remove(kv: &dyn KvStore, name: &str, digest: &str) -> Result<(), StoreError> {
    kv.delete(&fact_key(name, digest))?;
    Ok(())
}
