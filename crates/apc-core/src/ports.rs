//! The small traits through which the core talks to the world.
//!
//! The Spin adapter implements them over Spin's outbound HTTP, key-value store, variables and
//! the WASI clock; native tests implement them with scripted fakes. Nothing here knows Spin.

use std::fmt;

/// An HTTP method the core uses for outbound calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The method as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An outbound HTTP request, fully built by the core (absolute URL, headers, body).
#[derive(Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    /// The method.
    pub method: Method,
    /// Absolute URL, `scheme://host[:port]/path?query`.
    pub url: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body; empty for none.
    pub body: Vec<u8>,
}

impl OutboundRequest {
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

// Requests carry bearer tokens and client secrets: never print them.
impl fmt::Debug for OutboundRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &"<redacted>")
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// An HTTP response to an outbound request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    /// Status code.
    pub status: u16,
    /// Headers; names compared case-insensitively.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl OutboundResponse {
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// Case-insensitive header look-up shared by requests and responses.
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Why an outbound request produced no HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The host refused the destination (not in `allowed_outbound_hosts`). A configuration
    /// problem: retrying does not help.
    #[error("outbound request to {0} was denied by the host (allowed_outbound_hosts)")]
    Denied(String),
    /// No answer within the client's time-out. The request may or may not have taken effect.
    #[error("outbound request timed out")]
    Timeout,
    /// The connection failed or broke (DNS, refused, reset).
    #[error("connection failed: {0}")]
    Connection(String),
    /// Anything else the transport reports.
    #[error("transport error: {0}")]
    Other(String),
}

/// Outbound HTTP.
pub trait HttpClient {
    /// Send one request and wait for the whole response.
    fn send(&self, request: &OutboundRequest) -> Result<OutboundResponse, TransportError>;
}

/// A key-value store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key-value store error: {0}")]
pub struct KvError(pub String);

/// The key-value store (Spin's `default` store). Only what every Spin backend gives (SQLite,
/// Redis, Azure Cosmos DB, Akamai's eventually consistent store): no compare-and-swap, no
/// atomic increment. A store may show other requests' writes late; a request reads its own.
pub trait KvStore {
    /// The value at `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Store `value` at `key`.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError>;
    /// Remove `key`; removing a missing key is not an error.
    fn delete(&self, key: &str) -> Result<(), KvError>;
    /// Every key of the store, in any order (one operation: Spin's `get-keys`).
    fn list_keys(&self) -> Result<Vec<String>, KvError>;
}

/// Seconds since the Unix epoch, UTC.
pub type UnixSeconds = i64;

/// The wall clock.
pub trait Clock {
    /// Now, in whole seconds since the Unix epoch.
    fn now(&self) -> UnixSeconds;
    /// Wait `secs` seconds within the request, when the clock can; `false` (the default): it
    /// cannot, and the caller leaves the wait to a later request instead.
    fn sleep(&self, secs: u64) -> bool {
        let _ = secs;
        false
    }
}

/// Application variables (Spin variables).
pub trait Variables {
    /// The value of `name`, or `None` when it is not defined for the component.
    fn get(&self, name: &str) -> Option<String>;
}

/// Everything the core needs from the world for one request.
#[derive(Clone, Copy)]
pub struct World<'a> {
    /// Outbound HTTP.
    pub http: &'a dyn HttpClient,
    /// The key-value store.
    pub kv: &'a dyn KvStore,
    /// The clock.
    pub clock: &'a dyn Clock,
}
