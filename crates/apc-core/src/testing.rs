//! A strict in-memory key-value store for the core's own unit tests. The shared test doubles
//! live in the `apc-testkit` crate; unit tests cannot use them (they would see another copy of
//! this crate's types), hence this small copy.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::ports::{KvError, KvStore};

/// An in-memory, immediately consistent [`KvStore`].
#[derive(Default)]
pub struct MemKv {
    data: RefCell<BTreeMap<String, Vec<u8>>>,
}

impl MemKv {
    pub fn new() -> Self {
        Self::default()
    }
    /// A value as text, for assertions.
    pub fn get_string(&self, key: &str) -> Option<String> {
        self.data.borrow().get(key).map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

impl KvStore for MemKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.data.borrow().get(key).cloned())
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.data.borrow_mut().insert(key.to_string(), value.to_vec());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.data.borrow_mut().remove(key);
        Ok(())
    }
    fn list_keys(&self) -> Result<Vec<String>, KvError> {
        Ok(self.data.borrow().keys().cloned().collect())
    }
}

/// A clock that always says the same second.
pub struct FixedClock(pub crate::ports::UnixSeconds);

impl crate::ports::Clock for FixedClock {
    fn now(&self) -> crate::ports::UnixSeconds {
        self.0
    }
}

/// Outbound HTTP that counts calls and answers none of them: for unit tests that must not reach
/// the network.
#[derive(Default)]
pub struct NoHttp {
    calls: std::cell::Cell<usize>,
}

impl NoHttp {
    /// How many requests were attempted.
    pub fn count(&self) -> usize {
        self.calls.get()
    }
}

impl crate::ports::HttpClient for NoHttp {
    fn send(
        &self,
        _request: &crate::ports::OutboundRequest,
    ) -> Result<crate::ports::OutboundResponse, crate::ports::TransportError> {
        self.calls.set(self.calls.get() + 1);
        Err(crate::ports::TransportError::Other("unit tests make no outbound calls".into()))
    }
}
