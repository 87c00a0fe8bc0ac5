//! The pure core of alert-packet-capture.
//!
//! No Spin types live here: the core talks to the world through the traits of [`ports`]
//! (outbound HTTP, key-value store, clock, variables). The Spin component is a thin adapter that
//! implements those traits and hands each request to [`api::handle`].
//!
//! Where things are:
//! - [`alert`]: Azure Monitor webhook payloads (SPEC §3).
//! - [`resource_id`]: ARM ids and URL building (SPEC §10).
//! - [`config`]: Spin variables (SPEC §9), one module per section.
//! - [`origin`]: `scheme://host[:port]`, parsed once (configured hosts, URLs sent or followed).
//! - [`azure`]: Entra ID token and ARM calls (SPEC §4).
//! - [`policy`]: capture names, parameters, overrides (SPEC §5).
//! - [`record`]: the capture record and its states (SPEC §6).
//! - [`store`]: key-value layout, index, per-VM claims (SPEC §6; design in docs/STATE.md).
//! - [`intake`]: what `POST /alerts` does with an alert (SPEC §2, §5).
//! - [`advance`]: following captures across invocations (SPEC §7).
//! - [`notify`]: notifications (SPEC §8).
//! - [`api`]: routes, authentication, problem+json answers (SPEC §2, §11).
//! - [`entra`]: Entra ID bearer tokens on the webhook ("secure webhooks", issue 12).
//! - [`summary`]: what a capture file says: a traffic summary (issue 10).
//! - [`capture_file`]: read, summarise and sign a finished capture's file (issue 10).

pub mod advance;
pub mod alert;
pub mod api;
pub mod azure;
pub mod capture_file;
pub mod config;
pub mod entra;
pub mod intake;
pub mod notify;
pub mod origin;
pub mod policy;
pub mod ports;
pub mod record;
pub mod resource_id;
pub mod store;
pub mod summary;
#[cfg(test)]
mod testing;
pub mod timefmt;
