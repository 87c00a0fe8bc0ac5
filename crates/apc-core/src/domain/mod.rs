//! The domain: what an alert, a target, a capture record and its lifecycle, a capture file's
//! summary and the capture policy are. Plain data and pure functions; nothing here calls out or
//! imports the layers above (use cases, HTTP) or the clients below (Azure, store, notify).

pub mod alert;
pub mod blob;
pub mod capture_file;
pub mod config;
pub mod digest;
pub mod operation;
pub mod origin;
pub mod policy;
pub mod record;
pub mod resource_id;
pub mod summary;
pub mod timefmt;
