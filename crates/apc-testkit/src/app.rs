//! [`TestApp`]: one component instance over [`apc_core::api::handle`], with the fakes behind its
//! ports, the base configuration and helpers for the routes.
//!
//! ```text
//! let app = TestApp::new();
//! app.script_cold_path();
//! let (resp, v) = app.post_alert(&alerts::common_vm_alert());
//! assert_eq!(resp.status, 202);
//! app.clock.advance(31);
//! let (_, v) = app.poll();
//! ```

use std::cell::Cell;

use apc_core::api::{self, ApiRequest, ApiResponse};
use apc_core::ports::{KvStore, Method, OutboundRequest, World};
use apc_core::store::{Listing, records};
use serde_json::Value;

use crate::consts::{
    self, CAPTURE_CREATE, CAPTURE_DELETE, CAPTURE_GET, KEY, NOTIFY, NOTIFY_HOST, NW2, T0, TOKEN_OK, TOKEN_URL, VM_GET,
    VM1_URL, WATCHER_LIST, WATCHERS_URL, capture_url,
};
use crate::http::{ScriptedHttp, sample_file_response, sample_response};
use crate::kv::{KvCounts, MemKv, Staleness, StoreBehaviour};
use crate::{MapVars, TestClock};

/// One component instance: the scripted transport, the store, the clock and the variables, all
/// public so a test can script, inspect and change them between requests.
pub struct TestApp {
    /// The outbound transport; script it before a request, inspect it after.
    pub http: ScriptedHttp,
    /// The key-value store (its inherent methods see the latest state, whatever the behaviour).
    pub kv: MemKv,
    /// The clock, at [`T0`] unless the builder said otherwise.
    pub clock: TestClock,
    /// The Spin variables.
    pub vars: MapVars,
    key: String,
    requests: Cell<u64>,
}

impl Default for TestApp {
    fn default() -> Self {
        Self::new()
    }
}

impl TestApp {
    /// The base configuration ([`consts::base_vars`]) on a strict store at [`T0`].
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// The base configuration on a store with `behaviour`.
    pub fn with_store(behaviour: StoreBehaviour) -> Self {
        Self::builder().store(behaviour).build()
    }

    /// A builder for variables, store behaviour, key and start time.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            vars: consts::base_vars(),
            key: KEY.to_string(),
            store: StoreBehaviour::Strict,
            staleness: None,
            start: T0,
        }
    }

    /// The store behaviour in force.
    pub fn store_behaviour(&self) -> StoreBehaviour {
        self.kv.behaviour()
    }

    /// The webhook key the keyed helpers send.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The ports as a request sees them.
    pub fn world(&self) -> World<'_> {
        World { http: &self.http, kv: &self.kv, clock: &self.clock }
    }

    /// Operations on the store so far.
    pub fn counts(&self) -> KvCounts {
        self.kv.counts()
    }

    /// Handle one request as the component would (a request boundary for the store). An empty
    /// `request_id` gets a fresh one, as the adapter gives every request its own.
    pub fn send(&self, req: &ApiRequest) -> ApiResponse {
        self.send_with_kv(req, &self.kv)
    }

    /// [`send`](Self::send) with another store in front of [`TestApp::kv`] (e.g. a wrapper that
    /// injects failures); the request boundary is still marked on [`TestApp::kv`].
    pub fn send_with_kv(&self, req: &ApiRequest, kv: &dyn KvStore) -> ApiResponse {
        let n = self.requests.get() + 1;
        self.requests.set(n);
        let mut req = req.clone();
        if req.request_id.is_empty() {
            req.request_id = format!("t-{n}");
        }
        self.kv.begin_request(self.clock_now());
        let world = World { http: &self.http, kv, clock: &self.clock };
        let resp = api::handle(&req, &self.vars, world);
        self.kv.end_request();
        resp
    }

    fn clock_now(&self) -> i64 {
        apc_core::ports::Clock::now(&self.clock)
    }

    /// A request carrying this app's key (`x-api-key`) and a JSON content type.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> ApiRequest {
        self.request_with_key(method, path, Some(&self.key), body)
    }

    /// A request with a JSON content type and `key` as `x-api-key` (`None`: no key at all).
    pub fn request_with_key(&self, method: &str, path: &str, key: Option<&str>, body: &[u8]) -> ApiRequest {
        let mut r = request(method, path);
        r.headers.push(("content-type".into(), "application/json".into()));
        if let Some(key) = key {
            r.headers.push(("x-api-key".into(), key.to_string()));
        }
        r.body = body.to_vec();
        r
    }

    /// A keyed request; returns the answer and its body parsed as JSON (panics when it is not).
    pub fn call(&self, method: &str, path: &str, body: &[u8]) -> (ApiResponse, Value) {
        self.call_with_key(method, path, Some(self.key.as_str()), body)
    }

    /// [`call`](Self::call) with `key` instead of this app's (`None`: an unauthenticated caller).
    pub fn call_with_key(&self, method: &str, path: &str, key: Option<&str>, body: &[u8]) -> (ApiResponse, Value) {
        let resp = self.send(&self.request_with_key(method, path, key, body));
        let v = body_json(&resp);
        (resp, v)
    }

    /// Change a variable between requests (the next request reads it; an empty value unsets it
    /// as Spin does).
    pub fn set_var(&mut self, name: &str, value: &str) {
        self.vars.set(name, value);
    }

    /// `POST /alerts` with `alert`.
    pub fn post_alert(&self, alert: &Value) -> (ApiResponse, Value) {
        let body = serde_json::to_vec(alert).unwrap_or_else(|e| panic!("alert does not serialise: {e}"));
        self.call("POST", "/alerts", &body)
    }

    /// `POST /poll` as the scheduler sends it, about a minute after the last one: on an
    /// eventually consistent store, replication has caught up first ([`settle`](Self::settle)).
    /// A poll racing other requests' writes is `call("POST", "/poll", b"")`.
    pub fn poll(&self) -> (ApiResponse, Value) {
        self.settle();
        self.call("POST", "/poll", b"")
    }

    /// Let an eventually consistent store catch up: every write so far becomes visible to the
    /// next request (request boundaries that touch nothing, as time passing between requests
    /// would). Other behaviours are consistent already.
    pub fn settle(&self) {
        if self.kv.behaviour() != StoreBehaviour::Eventual {
            return;
        }
        let rounds = match self.kv.staleness() {
            Staleness::Requests(n) => n,
            Staleness::Seconds(_) => 0,
        };
        let now = self.clock_now();
        for _ in 0..rounds {
            self.kv.begin_request(now);
            self.kv.end_request();
        }
    }

    /// `GET /captures/{id}`.
    pub fn get_capture(&self, id: &str) -> (ApiResponse, Value) {
        self.call("GET", &format!("/captures/{id}"), b"")
    }

    /// `POST /captures/{id}/stop`.
    pub fn stop_capture(&self, id: &str) -> (ApiResponse, Value) {
        self.call("POST", &format!("/captures/{id}/stop"), b"")
    }

    /// The store key holding record `id` now (latest state): its terminal key, else its active
    /// one (panics when there is none).
    pub fn record_key(&self, id: &str) -> String {
        let listing = Listing::from_keys(self.kv.keys());
        if let Some(t) = listing.finished_at(id) {
            return records::cap_key(id, t);
        }
        listing
            .active
            .iter()
            .find(|a| a.name == id)
            .map(records::ActKey::key)
            .unwrap_or_else(|| panic!("no record stored for {id}"))
    }

    /// Is there a record `id` (latest state)?
    pub fn has_record(&self, id: &str) -> bool {
        Listing::from_keys(self.kv.keys()).knows(id)
    }

    /// The stored record of capture `id` (latest state; panics when there is none).
    pub fn record(&self, id: &str) -> Value {
        let raw = self.kv.get_string(&self.record_key(id)).unwrap_or_else(|| panic!("no record stored for {id}"));
        serde_json::from_str(&raw).unwrap_or_else(|e| panic!("record {id} is not JSON: {e}"))
    }

    /// Write the stored record of capture `id` where it is stored now, as a test would tamper
    /// with it (outside any request: every later request sees it).
    pub fn put_record(&self, id: &str, rec: &Value) {
        let bytes = serde_json::to_vec(rec).unwrap_or_else(|e| panic!("record {id} does not serialise: {e}"));
        let key = self.record_key(id);
        self.kv.set(&key, &bytes).unwrap_or_else(|e| panic!("cannot store record {id}: {e}"));
    }

    /// A notification receiver at [`NOTIFY_HOST`] that takes every notification (`200`).
    pub fn route_notifications(&self) {
        self.http.route_always(Method::Post, NOTIFY_HOST, ScriptedHttp::empty(200));
    }

    /// The requests sent to [`NOTIFY_HOST`] so far (since the log was last cleared).
    pub fn notifications(&self) -> Vec<OutboundRequest> {
        self.http.requests().into_iter().filter(|r| r.url.starts_with(NOTIFY_HOST)).collect()
    }

    /// Expect, next in order, the end of a stopped capture `id` on watcher `nw2`: the `GET` for
    /// its file, the notification (`200`) and the `DELETE` of the capture resource.
    pub fn script_finish(&self, id: &str) {
        self.http.expect(Method::Get, capture_url(id), sample_response(CAPTURE_GET, 200));
        self.http.expect(Method::Post, NOTIFY, ScriptedHttp::empty(200));
        self.http.expect(Method::Delete, capture_url(id), sample_response(CAPTURE_DELETE, 204));
    }

    /// Expect, next in order, one successful token request (the Entra docs sample).
    pub fn script_token(&self) {
        self.http.expect(Method::Post, TOKEN_URL, sample_file_response(TOKEN_OK, 200));
    }

    /// The cold path of a first alert on the common-schema sample's VM, in order: token, VM
    /// GET, watcher list; then the PUT on watcher `nw2` (routed once).
    pub fn script_cold_path(&self) {
        self.script_token();
        self.http.expect(Method::Get, VM1_URL, sample_response(VM_GET, 200));
        self.http.expect(Method::Get, WATCHERS_URL, sample_response(WATCHER_LIST, 200));
        self.http.route(Method::Put, NW2, sample_response(CAPTURE_CREATE, 201));
    }
}

/// Builds a [`TestApp`].
#[must_use]
pub struct TestAppBuilder {
    vars: MapVars,
    key: String,
    store: StoreBehaviour,
    staleness: Option<Staleness>,
    start: i64,
}

impl TestAppBuilder {
    /// Set a variable (an empty value is how a test unsets one: Spin gives `""` for a variable
    /// without a value).
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.set(name, value);
        self
    }

    /// Set several variables.
    pub fn vars(mut self, pairs: &[(&str, &str)]) -> Self {
        for (k, v) in pairs {
            self.vars.set(k, v);
        }
        self
    }

    /// Remove a variable altogether (as if the component did not map it).
    pub fn without_var(mut self, name: &str) -> Self {
        self.vars.0.remove(name);
        self
    }

    /// Use `key` as the only webhook key, and send it on keyed requests.
    pub fn api_key(mut self, key: &str) -> Self {
        self.vars.set("webhook_keys", key);
        self.key = key.to_string();
        self
    }

    /// The store behaviour.
    pub fn store(mut self, behaviour: StoreBehaviour) -> Self {
        self.store = behaviour;
        self
    }

    /// How far an eventual store lags (default: [`Staleness::default`]).
    pub fn staleness(mut self, staleness: Staleness) -> Self {
        self.staleness = Some(staleness);
        self
    }

    /// Start the clock at `t` instead of [`T0`].
    pub fn at(mut self, t: i64) -> Self {
        self.start = t;
        self
    }

    /// The app.
    pub fn build(self) -> TestApp {
        let kv = MemKv::with_behaviour(self.store).with_staleness(self.staleness.unwrap_or_default());
        TestApp {
            http: ScriptedHttp::new(),
            kv,
            clock: TestClock::at(self.start),
            vars: self.vars,
            key: self.key,
            requests: Cell::new(0),
        }
    }
}

/// A request without a key, body or headers; `path` may carry a `?query`.
pub fn request(method: &str, path: &str) -> ApiRequest {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    ApiRequest { method: method.into(), path: path.into(), query: query.into(), ..Default::default() }
}

/// An answer's body as JSON (panics when it is not JSON).
pub fn body_json(resp: &ApiResponse) -> Value {
    serde_json::from_slice(&resp.body)
        .unwrap_or_else(|e| panic!("answer {} is not JSON ({e}): {}", resp.status, String::from_utf8_lossy(&resp.body)))
}

/// The id of the first capture in an answer (panics when there is none).
pub fn capture_id(v: &Value) -> String {
    v["captures"][0]["id"].as_str().unwrap_or_else(|| panic!("no capture id in {v}")).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_is_a_store_boundary_with_its_own_id() {
        let app = TestApp::builder().store(StoreBehaviour::Eventual).staleness(Staleness::Requests(0)).build();
        assert_eq!(app.kv.requests_seen(), 0);
        let (resp, v) = app.call("GET", "/captures", b"");
        assert_eq!(resp.status, 200, "{v}");
        assert_eq!(resp.log["request_id"], "t-1");
        app.poll();
        assert_eq!(app.kv.requests_seen(), 2);
        let (_, v) = app.call("GET", "/healthz", b"");
        assert_eq!(v["status"], "ok", "the base configuration is complete: {v}");
    }

    #[test]
    fn the_key_is_sent_and_a_wrong_one_is_refused() {
        let app = TestApp::builder().api_key("another-key-0123456789").build();
        assert_eq!(app.call("GET", "/captures", b"").0.status, 200);
        let other = TestApp::new();
        let mut r = other.request("GET", "/captures", b"");
        r.headers.retain(|(k, _)| k != "x-api-key");
        r.headers.push(("x-api-key".into(), "another-key-0123456789".into()));
        assert_eq!(other.send(&r).status, 401);
    }
}
