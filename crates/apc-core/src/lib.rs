//! The pure core of alert-packet-capture.
//!
//! No Spin types live here: the core talks to the world through the traits of [`ports`]
//! (outbound HTTP, key-value store, clock, variables). The Spin component is a thin adapter that
//! implements those traits and hands each request to [`http::handle`].
//!
//! Data flows one way, and the tree shows it:
//! - [`http`]: routes, authentication (webhook keys; Entra ID tokens in [`http::entra`]),
//!   answers, problem+json (SPEC §2, §11) →
//! - [`usecases`]: intake of an alert (SPEC §2, §5), the poller that follows captures (SPEC §7),
//!   listing and stopping captures, the capture file's summary and link (SPEC §8.1) →
//! - [`domain`]: alerts (SPEC §3), ARM ids (SPEC §10), capture records and their lifecycle
//!   (SPEC §6), the capture policy (SPEC §5) and the settings it reads from Spin variables
//!   (SPEC §9), the traffic summary →
//! - [`clients`] over the [`ports`]: Azure (Entra ID, ARM, Storage; SPEC §4), the key-value
//!   store's layout (SPEC §6, docs/STATE.md), notifications (SPEC §8).
//!
//! A layer imports only the layers after it. The re-exports below keep the crate's public paths
//! short (`apc_core::record`, `apc_core::advance`, …) for the adapter and the tests.

pub mod clients;
pub mod domain;
pub mod http;
pub mod ports;
#[cfg(test)]
mod testing;
pub mod usecases;

pub use clients::{azure, notify, store};
pub use domain::{alert, config, origin, policy, record, resource_id, summary, timefmt};
pub use http as api;
pub use http::entra;
pub use usecases::poller as advance;
pub use usecases::{capture_file, intake};
