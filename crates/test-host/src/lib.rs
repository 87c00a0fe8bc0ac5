//! A wasmtime host that stands in for Spin in alert-packet-capture's component tests.
//!
//! It reads `spin.toml` itself (so a manifest Spin would refuse fails the tests), compiles the
//! release `.wasm` once, and serves every request with a fresh instance, as Spin does for
//! WASI 0.2 components. The instances share one key-value store, a journal of outbound HTTP
//! calls (refused unless `allowed_outbound_hosts` allows them) and a log buffer.
//!
//! The store is one of the platforms' ([`KvStore`]): in memory (Spin's SQLite store, with a
//! choice of [`CasSemantics`]), a real Redis server with Spin's Redis semantics
//! ([`KvStore::redis`], [`RedisServer`] for a throwaway one), or Akamai-like
//! ([`KvStore::akamai_like`]: replicated with [`Staleness`], and no `wasi:keyvalue/atomics`, so
//! a component importing it is refused with [`HostError::MissingImport`]). [`Replicas`] runs
//! several hosts, each with its own engine, over one store.
//!
//! ```no_run
//! # async fn demo() -> Result<(), test_host::HostError> {
//! use test_host::{Host, HostOptions, Request};
//! let host = Host::new(HostOptions {
//!     wasm: "target/wasm32-wasip2/release/alert_packet_capture.wasm".into(),
//!     manifest: "spin.toml".into(),
//!     variables: [("webhook_keys".to_string(), "k".to_string())].into(),
//!     ..Default::default()
//! })?;
//! let response = host.request(Request::get("/healthz")).await?;
//! assert_eq!(response.status, 200);
//! # Ok(()) }
//! ```

mod clock;
mod host;
mod kv;
mod logs;
mod manifest;
mod outbound;
mod redis_store;
mod replicas;
mod replicated;
mod spin;

pub use clock::TestClock;
pub use host::{Host, HostError, HostOptions, Request, RequestStats, Response};
pub use kv::{CasHandle, CasSemantics, KvCounts, KvFailure, KvSession, KvStore, Staleness, StoreKind, SwapResult};
pub use logs::{LogBuffer, LogLine, Stream};
pub use manifest::{
    AllowedHost, ComponentSpec, HostPattern, HttpTrigger, Manifest, ManifestError, PortPattern, Variable, default_port,
};
pub use outbound::{OutboundJournal, OutboundOutcome, OutboundRecord};
pub use redis_store::{RedisServer, RedisServerError};
pub use replicas::Replicas;
