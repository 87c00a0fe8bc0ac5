//! The test kit of alert-packet-capture (development only, never published).
//!
//! What the core's test suites share, in one place:
//! - [`kv`]: [`MemKv`], the in-memory key-value store, with the [`StoreBehaviour`]s the product
//!   must survive (strict, Spin's SQLite and Redis quirks, an eventually consistent store).
//! - [`http`]: [`http::ScriptedHttp`], the scripted transport, and the Azure sample loaders.
//! - [`TestClock`] and [`MapVars`]: the clock and variables ports.
//! - [`consts`]: the base configuration's values (subscription, tenant, keys, URLs, sample files).
//! - [`alerts`]: alert payloads built from the real samples, for a given VM or scale set.
//! - [`app`]: [`TestApp`], one component instance over [`apc_core::api::handle`].
//! - [`azure`]: [`azure::AzureEnv`], the ports for driving the Azure client directly.
//! - [`capture_files`]: what a capture-file test expects (issue 10), also used through the `.wasm`.
//! - [`emulated`]: [`emulated::EmulatedApp`], a component against the in-process Azure emulator.
//! - [`store_matrix!`]: run one scenario once per store behaviour.

pub mod alerts;
pub mod app;
pub mod azure;
pub mod capture_files;
pub mod consts;
pub mod emulated;
pub mod http;
pub mod kv;

use std::cell::Cell;
use std::collections::HashMap;

use apc_core::ports::{Clock, UnixSeconds, Variables};

pub use app::{TestApp, TestAppBuilder};
pub use kv::{KvCounts, MemKv, Staleness, StoreBehaviour};

/// A clock that tests set and advance.
#[derive(Debug)]
pub struct TestClock(Cell<UnixSeconds>);

impl TestClock {
    /// A clock at `t`.
    pub fn at(t: UnixSeconds) -> Self {
        TestClock(Cell::new(t))
    }
    /// Move forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0.set(self.0.get() + secs);
    }
    /// Set the time.
    pub fn set(&self, t: UnixSeconds) {
        self.0.set(t);
    }
}

impl Clock for TestClock {
    fn now(&self) -> UnixSeconds {
        self.0.get()
    }
    /// A wait moves the test clock on (nothing really waits).
    fn sleep(&self, secs: u64) -> bool {
        self.advance(i64::try_from(secs).unwrap_or(i64::MAX));
        true
    }
}

/// Variables from a map.
#[derive(Debug, Default, Clone)]
pub struct MapVars(pub HashMap<String, String>);

impl MapVars {
    /// Build from pairs.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        MapVars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }
    /// Set one variable.
    pub fn set(&mut self, name: &str, value: &str) {
        self.0.insert(name.to_string(), value.to_string());
    }
}

impl Variables for MapVars {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// Run a scenario `fn name(store: StoreBehaviour)` once per store behaviour, each as its own
/// test, so a failure names the behaviour (`name::SpinRedis`). All four behaviours must be
/// listed, in order; each may carry attributes. Every scenario is expected to hold on every
/// behaviour: where an eventually consistent store cannot give an exact answer, the scenario
/// asserts what the design promises there instead (docs/STATE.md), never an `ignore`.
///
/// ```text
/// fn first_alert(store: StoreBehaviour) { let app = TestApp::with_store(store); /* … */ }
/// store_matrix!(first_alert: Strict, SpinSqlite, #[ignore = "why"] SpinRedis, #[ignore = "why"] Eventual);
/// ```
#[macro_export]
macro_rules! store_matrix {
    ($scenario:ident :
        $(#[$strict:meta])* Strict,
        $(#[$sqlite:meta])* SpinSqlite,
        $(#[$redis:meta])* SpinRedis,
        $(#[$eventual:meta])* Eventual $(,)?
    ) => {
        #[allow(non_snake_case)]
        mod $scenario {
            #[test]
            $(#[$strict])*
            fn Strict() {
                super::$scenario($crate::StoreBehaviour::Strict);
            }
            #[test]
            $(#[$sqlite])*
            fn SpinSqlite() {
                super::$scenario($crate::StoreBehaviour::SpinSqlite);
            }
            #[test]
            $(#[$redis])*
            fn SpinRedis() {
                super::$scenario($crate::StoreBehaviour::SpinRedis);
            }
            #[test]
            $(#[$eventual])*
            fn Eventual() {
                super::$scenario($crate::StoreBehaviour::Eventual);
            }
        }
    };
}
