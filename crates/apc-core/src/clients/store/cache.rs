//! The Azure client's cache, one key `v1:azure`: the sealed Entra ID token, the Network
//! Watcher of each (subscription, region) seen, and the regions of VMs seen. A hint only: last
//! writer wins, and a lost or unreadable entry costs one Azure call. One key, so a warm request
//! reads its whole Azure context with one `get`, and a cold one writes it with few `set`s.

use std::collections::BTreeMap;

use serde_json::Value;

use super::hash16;
use crate::ports::KvStore;

/// The cache key.
pub const CACHE_KEY: &str = "v1:azure";
/// VM regions remembered at most (oldest dropped first).
pub const MAX_REGIONS: usize = 256;
/// Watchers remembered at most.
pub const MAX_WATCHERS: usize = 512;

/// What is cached.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AzureCache {
    /// The sealed token (see `azure::token`); never the token in clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Value>,
    /// `{subscription}:{region}` → Network Watcher id.
    #[serde(default)]
    pub watchers: BTreeMap<String, String>,
    /// Digest of a lower-case target id → its region, with the time it was learnt.
    #[serde(default)]
    pub regions: BTreeMap<String, (String, i64)>,
}

impl AzureCache {
    /// Read the cache; anything unreadable is an empty cache.
    pub fn load(kv: &dyn KvStore) -> AzureCache {
        kv.get(CACHE_KEY).ok().flatten().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Write the cache; a failure only costs Azure calls later.
    pub fn save(&self, kv: &dyn KvStore) {
        if let Ok(bytes) = serde_json::to_vec(self) {
            let _ = kv.set(CACHE_KEY, &bytes);
        }
    }

    /// The watcher of (subscription, region), both already normalised.
    pub fn watcher(&self, subscription: &str, region: &str) -> Option<&str> {
        self.watchers.get(&format!("{subscription}:{region}")).map(String::as_str)
    }

    /// Remember a watcher.
    pub fn set_watcher(&mut self, subscription: &str, region: &str, id: String) {
        if self.watchers.len() < MAX_WATCHERS || self.watcher(subscription, region).is_some() {
            self.watchers.insert(format!("{subscription}:{region}"), id);
        }
    }

    /// Forget a watcher; `true` when there was one.
    pub fn forget_watcher(&mut self, subscription: &str, region: &str) -> bool {
        self.watchers.remove(&format!("{subscription}:{region}")).is_some()
    }

    /// The region of a target (lower-case id), if known.
    pub fn region(&self, target_key: &str) -> Option<&str> {
        self.regions.get(&hash16(target_key)).map(|(r, _)| r.as_str())
    }

    /// Remember a target's region; `true` when that changed the cache.
    pub fn set_region(&mut self, target_key: &str, region: &str, now: i64) -> bool {
        let k = hash16(target_key);
        if self.regions.get(&k).is_some_and(|(r, _)| r == region) {
            return false;
        }
        self.regions.insert(k, (region.to_string(), now));
        while self.regions.len() > MAX_REGIONS {
            let oldest = self.regions.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.regions.remove(&k),
                None => break,
            };
        }
        true
    }
}
