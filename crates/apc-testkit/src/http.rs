//! A scripted fake transport for tests: [`ScriptedHttp`] answers outbound requests from a script
//! and records every request it receives, so tests can assert the exact method, URL (api-version
//! included), headers and body, and that no unexpected call was made.
//!
//! Two kinds of script entries:
//! - **Expectations** (`expect*`): an ordered queue; the next request must have exactly this
//!   method and URL. They model "this exact sequence of calls".
//! - **Routes** (`route*`): answers matched by method and URL prefix, in the order they were added
//!   for that prefix, used when the order does not matter. `route_always` answers repeatedly.
//!
//! A request that matches neither is recorded, listed by [`ScriptedHttp::unscripted`], and answered
//! with `TransportError::Other("unscripted …")`, so the code under test sees a clear failure and
//! the test can assert "no call".
//!
//! The sample helpers read the x-ms-examples samples of `testdata/azure-samples`, located relative
//! to this crate's manifest directory, never by absolute path.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::PathBuf;

use apc_core::ports::{HttpClient, Method, OutboundRequest, OutboundResponse, TransportError};

/// What a script entry answers with.
#[derive(Debug, Clone)]
enum Answer {
    Response(OutboundResponse),
    Error(TransportError),
}

impl Answer {
    fn produce(&self) -> Result<OutboundResponse, TransportError> {
        match self {
            Answer::Response(r) => Ok(r.clone()),
            Answer::Error(e) => Err(e.clone()),
        }
    }
}

struct Expectation {
    method: Method,
    url: String,
    answer: Answer,
}

struct Route {
    method: Method,
    prefix: String,
    answer: Answer,
    always: bool,
    used: bool,
}

/// A scripted [`HttpClient`]. Single-threaded, like one component instance.
#[derive(Default)]
pub struct ScriptedHttp {
    expected: RefCell<VecDeque<Expectation>>,
    routes: RefCell<Vec<Route>>,
    log: RefCell<Vec<OutboundRequest>>,
    unscripted: RefCell<Vec<String>>,
}

impl ScriptedHttp {
    /// An empty script: every request fails as unscripted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Expect, next in order, `method url` exactly, and answer `response`.
    pub fn expect(&self, method: Method, url: impl Into<String>, response: OutboundResponse) -> &Self {
        self.push_expectation(method, url.into(), Answer::Response(response))
    }

    /// Expect, next in order, `method url` exactly, and fail it with `error`.
    pub fn expect_error(&self, method: Method, url: impl Into<String>, error: TransportError) -> &Self {
        self.push_expectation(method, url.into(), Answer::Error(error))
    }

    fn push_expectation(&self, method: Method, url: String, answer: Answer) -> &Self {
        self.expected.borrow_mut().push_back(Expectation { method, url, answer });
        self
    }

    /// Answer one request whose method is `method` and whose URL starts with `prefix`.
    pub fn route(&self, method: Method, prefix: impl Into<String>, response: OutboundResponse) -> &Self {
        self.push_route(method, prefix.into(), Answer::Response(response), false)
    }

    /// Answer every request whose method is `method` and whose URL starts with `prefix`.
    pub fn route_always(&self, method: Method, prefix: impl Into<String>, response: OutboundResponse) -> &Self {
        self.push_route(method, prefix.into(), Answer::Response(response), true)
    }

    /// Fail one request matching `method` and `prefix` with `error`.
    pub fn route_error(&self, method: Method, prefix: impl Into<String>, error: TransportError) -> &Self {
        self.push_route(method, prefix.into(), Answer::Error(error), false)
    }

    fn push_route(&self, method: Method, prefix: String, answer: Answer, always: bool) -> &Self {
        self.routes.borrow_mut().push(Route { method, prefix, answer, always, used: false });
        self
    }

    /// Every request received so far, in order (unscripted ones included).
    pub fn requests(&self) -> Vec<OutboundRequest> {
        self.log.borrow().clone()
    }

    /// Every request received so far as `"METHOD url"`, in order.
    pub fn calls(&self) -> Vec<String> {
        self.log.borrow().iter().map(|r| format!("{} {}", r.method, r.url)).collect()
    }

    /// How many requests were received.
    pub fn count(&self) -> usize {
        self.log.borrow().len()
    }

    /// The `i`-th request received, if any.
    pub fn request(&self, i: usize) -> Option<OutboundRequest> {
        self.log.borrow().get(i).cloned()
    }

    /// Requests that matched no script entry, as `"METHOD url"`.
    pub fn unscripted(&self) -> Vec<String> {
        self.unscripted.borrow().clone()
    }

    /// Ordered expectations not yet consumed, as `"METHOD url"`.
    pub fn pending(&self) -> Vec<String> {
        self.expected.borrow().iter().map(|e| format!("{} {}", e.method, e.url)).collect()
    }

    /// Forget the recorded requests (the script stays).
    pub fn clear_log(&self) {
        self.log.borrow_mut().clear();
        self.unscripted.borrow_mut().clear();
    }

    /// Panic with a readable list if an expectation was not consumed or a request was unscripted.
    pub fn assert_done(&self) {
        let pending = self.pending();
        let unscripted = self.unscripted();
        assert!(
            pending.is_empty() && unscripted.is_empty(),
            "scripted HTTP not satisfied: pending {pending:?}, unscripted {unscripted:?}"
        );
    }

    /// A response with a JSON body.
    pub fn json(status: u16, body: &str) -> OutboundResponse {
        OutboundResponse {
            status,
            headers: vec![("content-type".to_string(), "application/json; charset=utf-8".to_string())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// A response without a body.
    pub fn empty(status: u16) -> OutboundResponse {
        OutboundResponse { status, headers: Vec::new(), body: Vec::new() }
    }

    /// An ARM error response `{"error":{"code","message"}}`.
    pub fn arm_error(status: u16, code: &str, message: &str) -> OutboundResponse {
        let body = serde_json::json!({ "error": { "code": code, "message": message } });
        Self::json(status, &body.to_string())
    }
}

/// Add a header to a response (builder style).
pub fn with_header(mut response: OutboundResponse, name: &str, value: &str) -> OutboundResponse {
    response.headers.push((name.to_string(), value.to_string()));
    response
}

impl HttpClient for ScriptedHttp {
    fn send(&self, request: &OutboundRequest) -> Result<OutboundResponse, TransportError> {
        self.log.borrow_mut().push(request.clone());

        let head_matches =
            self.expected.borrow().front().is_some_and(|e| e.method == request.method && e.url == request.url);
        if head_matches {
            let e = self.expected.borrow_mut().pop_front();
            if let Some(e) = e {
                return e.answer.produce();
            }
        }

        let mut routes = self.routes.borrow_mut();
        let hit = routes
            .iter_mut()
            .find(|r| r.method == request.method && request.url.starts_with(&r.prefix) && (r.always || !r.used));
        if let Some(route) = hit {
            route.used = true;
            return route.answer.produce();
        }
        drop(routes);

        let what = format!("{} {}", request.method, request.url);
        let next = self.expected.borrow().front().map(|e| format!("{} {}", e.method, e.url));
        self.unscripted.borrow_mut().push(what.clone());
        Err(TransportError::Other(match next {
            Some(n) => format!("unscripted {what} (next expected: {n})"),
            None => format!("unscripted {what}"),
        }))
    }
}

/// The `testdata/azure-samples` directory, located from this crate's manifest directory
/// (`crates/apc-testkit/../../testdata/azure-samples`), so it works in any clone location and
/// never reads outside the repository.
pub fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/azure-samples")
}

/// The text of a sample file, `rel` relative to [`samples_dir`]. Panics (test support only)
/// when the file is missing, naming it.
pub fn sample_text(rel: &str) -> String {
    let path = samples_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read sample {}: {e}", path.display()))
}

/// A sample file parsed as JSON.
pub fn sample_json(rel: &str) -> serde_json::Value {
    serde_json::from_str(&sample_text(rel)).unwrap_or_else(|e| panic!("sample {rel} is not JSON: {e}"))
}

/// `responses.<status>.body` of an x-ms-examples sample, serialised (empty when the example has
/// no body for that status). Panics when the example has no such status.
pub fn sample_body(rel: &str, status: u16) -> String {
    let doc = sample_json(rel);
    let entry = doc
        .get("responses")
        .and_then(|r| r.get(status.to_string()))
        .unwrap_or_else(|| panic!("sample {rel} has no response {status}"));
    match entry.get("body") {
        Some(body) => body.to_string(),
        None => String::new(),
    }
}

/// A response built from `responses.<status>` of an x-ms-examples sample: its body (JSON) and its
/// headers as the example gives them.
pub fn sample_response(rel: &str, status: u16) -> OutboundResponse {
    let doc = sample_json(rel);
    let entry = doc
        .get("responses")
        .and_then(|r| r.get(status.to_string()))
        .unwrap_or_else(|| panic!("sample {rel} has no response {status}"))
        .clone();
    let mut response = match entry.get("body") {
        Some(body) => ScriptedHttp::json(status, &body.to_string()),
        None => ScriptedHttp::empty(status),
    };
    if let Some(serde_json::Value::Object(headers)) = entry.get("headers") {
        for (k, v) in headers {
            let v = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            response.headers.push((k.clone(), v));
        }
    }
    response
}

/// A response whose body is a whole sample file as stored (for samples that are a bare body,
/// such as the token and REST-doc samples).
pub fn sample_file_response(rel: &str, status: u16) -> OutboundResponse {
    ScriptedHttp::json(status, &sample_text(rel))
}

/// The access token of the successful token sample ([`crate::consts::TOKEN_OK`]).
pub fn sample_token() -> String {
    let doc = sample_json(crate::consts::TOKEN_OK);
    doc["access_token"].as_str().unwrap_or_else(|| panic!("no access_token in the token sample")).to_string()
}
