//! Use cases: what each request does, over the domain and the clients. `intake` takes an
//! alert in (`POST /alerts`); `poller` follows captures across invocations (`POST /poll`, and
//! one record for `GET /captures/{id}`); `captures` lists and stops them; `capture_file` reads,
//! summarises and links a finished capture's file. `ctx` is what a request carries.

pub mod capture_file;
pub mod captures;
pub mod ctx;
pub mod intake;
pub mod poller;

/// The error every use case may meet: the key-value store failed (or held something unreadable).
pub use crate::clients::store::StoreError;
