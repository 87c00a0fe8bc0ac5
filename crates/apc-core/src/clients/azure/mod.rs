//! Entra ID and ARM (SPEC §4), over the [`HttpClient`](crate::ports::HttpClient) port.
//!
//! [`Azure`] holds the configuration and the world for one request. Every URL is built by
//! [`arm_url`](crate::domain::resource_id::arm_url) from parsed ids; only the two configured hosts are
//! ever called. A `Location` / `Azure-AsyncOperation` URL is followed only for `queryStatus`,
//! only on the configured ARM origin (scheme, host and port, checked by [`OperationUrl`]), and
//! a bounded number of times per request; one that asks to wait is handed back to the caller
//! ([`StatusOutcome::Pending`]) to be asked by a later request.

mod arm;
mod error;
mod model;
mod operation;
pub mod storage;
mod token;

use std::cell::Cell;

pub use arm::{LRO_INLINE_WAIT_SECS, MAX_LRO_GETS};
pub(crate) use error::one_line;
pub use error::{AzureError, DEFAULT_RETRY_AFTER_SECS, MAX_MESSAGE_CHARS, MAX_RETRY_AFTER_SECS};
pub use model::{CaptureCreated, CaptureInfo, CaptureParams, CaptureStatus, VmInfo, normalize_location};
pub use operation::{OperationKind, OperationPoll, OperationUrl, StatusOutcome};
pub use token::{STORAGE_RESOURCE, STORAGE_TOKEN_KEY, TOKEN_KEY, TOKEN_MARGIN_SECS};

use std::cell::RefCell;

use crate::clients::store::cache::AzureCache;
use crate::domain::config::AzureConfig;
use crate::ports::{OutboundRequest, OutboundResponse, TransportError, World};

/// Compute api-version for VM and scale-set GETs.
pub const COMPUTE_API_VERSION: &str = "2025-04-01";
/// Network api-version for watchers and packet captures (schema unchanged up to 2026-07-01).
pub const NETWORK_API_VERSION: &str = "2025-07-01";
/// Our `user-agent`.
pub const USER_AGENT: &str = concat!("alert-packet-capture/", env!("CARGO_PKG_VERSION"));

/// The Azure client for one request: configuration, world, and a count of outbound calls.
pub struct Azure<'a> {
    cfg: &'a AzureConfig,
    world: World<'a>,
    calls: Cell<u32>,
    /// The `v1:azure` cache, read once per request on first use.
    cache: RefCell<Option<AzureCache>>,
    /// The cache changed in this request: written once, when the client is dropped at the end
    /// of the request (a token, a region and a watcher learnt by one cold alert are one write,
    /// not three; Akamai allows 50 writes per second).
    dirty: Cell<bool>,
}

impl Drop for Azure<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

impl<'a> Azure<'a> {
    /// A client over `world`'s HTTP, key-value store and clock.
    pub fn new(cfg: &'a AzureConfig, world: World<'a>) -> Self {
        Azure { cfg, world, calls: Cell::new(0), cache: RefCell::new(None), dirty: Cell::new(false) }
    }

    /// Read the cache now (one `get`), unless this request already has.
    pub fn preload(&self) {
        self.with_cache(|_| ());
    }

    /// Run `f` on the cache, reading it on first use.
    fn with_cache<T>(&self, f: impl FnOnce(&mut AzureCache) -> T) -> T {
        let mut slot = self.cache.borrow_mut();
        f(slot.get_or_insert_with(|| AzureCache::load(self.world.kv)))
    }

    /// Change the cache with `f`; written back at the end of the request when `f` says it
    /// changed something.
    fn update_cache(&self, f: impl FnOnce(&mut AzureCache) -> bool) {
        if self.with_cache(f) {
            self.dirty.set(true);
        }
    }

    /// Write the cache now if this request changed it (once; later changes mark it again).
    pub fn flush(&self) {
        if self.dirty.replace(false)
            && let Some(c) = self.cache.borrow().as_ref()
        {
            c.save(self.world.kv);
        }
    }

    /// The cached region of a target (lower-case id).
    pub fn cached_region(&self, target_key: &str) -> Option<String> {
        self.with_cache(|c| c.region(target_key).map(str::to_string))
    }

    /// Remember a target's region (saves a VM `GET` on its next alert).
    pub fn remember_region(&self, target_key: &str, region: &str) {
        let now = self.world.clock.now();
        self.update_cache(|c| c.set_region(target_key, region, now));
    }

    /// Outbound HTTP requests made through this client so far (token requests included).
    pub fn calls(&self) -> u32 {
        self.calls.get()
    }

    /// Send one request, counting it.
    fn send(&self, request: &OutboundRequest) -> Result<OutboundResponse, TransportError> {
        self.calls.set(self.calls.get().saturating_add(1));
        self.world.http.send(request)
    }
}
