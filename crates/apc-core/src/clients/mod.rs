//! Clients of the outside world, over the [`ports`](crate::ports): Azure (Entra ID, ARM,
//! Storage), the key-value store's layout, and notifications. They know domain types (records
//! are kept typed through persistence) but nothing of the use cases or HTTP above them.

pub mod azure;
pub mod notify;
pub mod store;
