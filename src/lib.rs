//! The Spin component: a thin adapter from Spin's HTTP trigger, outbound HTTP, key-value store
//! and variables to the pure core in `apc-core`. On the host this crate is empty.

#[cfg(target_arch = "wasm32")]
mod spin_adapter;
