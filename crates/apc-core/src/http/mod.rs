//! The HTTP interface (SPEC §2): routing, authentication, answers and problem+json errors.
//!
//! [`handle`] is a function from a plain request and the ports to a plain response plus the
//! request's log line; the Spin adapter only converts types around it.

pub mod entra;

use std::cell::Cell;

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::domain::alert::{self, Condition};
use crate::domain::config::{self, AuthMode, AuthPolicy, Config, Problem, Secret, WebhookAuth};
use crate::domain::record::{CaptureRecord, State};
use crate::domain::resource_id::Target;
use crate::domain::timefmt::rfc3339;
use crate::ports::{HttpClient, OutboundRequest, OutboundResponse, TransportError, Variables, World, find_header};
use crate::usecases::StoreError;
use crate::usecases::captures;
use crate::usecases::ctx::Ctx;
use crate::usecases::intake::{self, Decision, TargetOutcome};
use crate::usecases::poller;
use entra::AuthError;

/// Largest accepted request body (SPEC §2).
pub const MAX_BODY: usize = 1024 * 1024;

/// An incoming request, already read by the adapter (the body at most [`MAX_BODY`] bytes).
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path below the component's route, starting with `/`.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Headers; names compared case-insensitively.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The body was longer than [`MAX_BODY`] and was not read whole.
    pub body_too_large: bool,
    /// An id for the log line.
    pub request_id: String,
}

/// The answer, and the log line that describes the request (SPEC §11).
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: Vec<u8>,
    /// Log fields (the adapter adds the duration and prints one JSON line).
    pub log: Value,
}

/// Counts outbound calls for the log line and the §12 budgets.
struct CountingHttp<'a> {
    inner: &'a dyn HttpClient,
    calls: Cell<u32>,
}

impl HttpClient for CountingHttp<'_> {
    fn send(&self, request: &OutboundRequest) -> Result<OutboundResponse, TransportError> {
        self.calls.set(self.calls.get() + 1);
        self.inner.send(request)
    }
}

/// Facts gathered while handling, for the log line.
#[derive(Default)]
struct LogFacts {
    /// How the caller authenticated (`key`, `entra`), or which token check failed.
    auth: Option<&'static str>,
    alert_id: Option<String>,
    capture_ids: Vec<String>,
    vms: Vec<String>,
}

const PROBLEM_BASE: &str = "tag:alert-packet-capture,2026:problem/";

// Answer bodies. serde_json (without `preserve_order`) wrote the `json!` objects these replace
// with their keys sorted, so the fields are declared in that order: answers stay byte for byte.

/// An RFC 9457 problem, with the extra members some problems carry.
#[derive(Debug, Serialize)]
pub struct ProblemBody<'a> {
    /// For a person.
    pub detail: String,
    /// Configuration problems (`configuration`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<&'a [Problem]>,
    /// Targets the alert named that are not VMs (`no-vm-target`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_targets: Option<Vec<Rejected<'a>>>,
    /// The HTTP status.
    pub status: u16,
    /// Targets outside `allowed_scopes` (`outside-allowed-scopes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<String>>,
    /// Short title.
    pub title: &'a str,
    /// `tag:` URI of the problem type.
    #[serde(rename = "type")]
    pub kind: String,
}

impl<'a> ProblemBody<'a> {
    fn new(status: u16, slug: &str, title: &'a str, detail: String) -> Self {
        ProblemBody {
            detail,
            problems: None,
            rejected_targets: None,
            status,
            targets: None,
            title,
            kind: format!("{PROBLEM_BASE}{slug}"),
        }
    }

    fn answer(&self) -> ApiResponse {
        let mut r = json_response(self.status, self);
        r.headers[0].1 = "application/problem+json".into();
        r
    }
}

/// A target the alert named that cannot be captured on, and why.
#[derive(Debug, Serialize)]
pub struct Rejected<'a> {
    /// The id as the alert gave it.
    pub id: &'a str,
    /// Why.
    pub reason: &'a str,
}

/// `GET /healthz`.
#[derive(Debug, Serialize)]
struct Health {
    problems: Vec<Problem>,
    status: &'static str,
    version: &'static str,
}

/// One capture in a `POST /alerts` answer.
#[derive(Debug, Serialize)]
struct CaptureSummary<'a> {
    id: &'a str,
    state: &'static str,
    status_url: String,
    vm: &'a str,
}

/// What happened to one target of an alert.
#[derive(Debug, Serialize)]
struct TargetResult<'a> {
    capture: CaptureSummary<'a>,
    decision: &'static str,
    errors: &'a [String],
    vm: &'a str,
}

/// `POST /alerts` when captures were considered.
#[derive(Debug, Serialize)]
struct AlertAnswer<'a> {
    alert_id: &'a str,
    captures: Vec<CaptureSummary<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    coalesced: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate: Option<bool>,
    outside_allowed_scopes: Vec<String>,
    rejected_targets: Vec<Rejected<'a>>,
    results: Vec<TargetResult<'a>>,
    schema: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<&'static str>,
    warnings: Vec<&'a str>,
}

/// `POST /alerts` for a resolved alert.
#[derive(Debug, Serialize)]
struct Ignored<'a> {
    alert_id: &'a str,
    ignored: &'static str,
    schema: &'static str,
}

/// `POST /poll`.
#[derive(Debug, Serialize)]
struct PollAnswer {
    advanced: usize,
    due: usize,
    next_check_at: Option<String>,
}

/// `GET /captures`.
#[derive(Debug, Serialize)]
struct ListAnswer {
    captures: Vec<Value>,
    total: usize,
}

fn json_response(status: u16, body: &impl Serialize) -> ApiResponse {
    ApiResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(body).unwrap_or_default(),
        log: Value::Null,
    }
}

/// An RFC 9457 problem answer.
pub fn problem(status: u16, slug: &str, title: &str, detail: impl Into<String>) -> ApiResponse {
    ProblemBody::new(status, slug, title, detail.into()).answer()
}

fn config_problem(problems: &[Problem]) -> ApiResponse {
    let names: Vec<&str> = problems.iter().map(|p| p.variable).collect();
    ProblemBody {
        problems: Some(problems),
        ..ProblemBody::new(
            500,
            "configuration",
            "Configuration error",
            format!("The component is not configured correctly; fix these Spin variables: {}", names.join(", ")),
        )
    }
    .answer()
}

fn store_problem(e: &StoreError) -> ApiResponse {
    match e {
        StoreError::Corrupt(_) => problem(500, "store-corrupt", "Stored data unreadable", e.to_string()),
        _ => {
            let mut r = problem(
                503,
                "store-unavailable",
                "Key-value store unavailable",
                "The key-value store could not be used; nothing was left half done. Retry later.",
            );
            r.headers.push(("retry-after".into(), "10".into()));
            r
        }
    }
}

/// Constant-time check of `candidate` against every key (hashing first equalises lengths).
pub fn key_matches(candidate: &str, keys: &[Secret]) -> bool {
    let c = Sha256::digest(candidate.trim().as_bytes());
    let mut ok = Choice::from(0);
    for k in keys {
        ok |= Sha256::digest(k.expose().as_bytes()).ct_eq(&c);
    }
    ok.into()
}

fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn key_authenticated(req: &ApiRequest, auth: &WebhookAuth) -> bool {
    match auth {
        WebhookAuth::InsecureNoAuth => true,
        WebhookAuth::Keys(keys) => {
            let candidate =
                find_header(&req.headers, "x-api-key").map(str::to_string).or_else(|| query_param(&req.query, "code"));
            candidate.is_some_and(|c| key_matches(&c, keys))
        }
    }
}

/// Let the caller in, or say why not: a key when the route takes keys (checked first: no I/O),
/// else an Entra ID bearer token when it takes tokens. A token is verified before anything else
/// is read or written; the signing-key cache is the only store key it may touch.
fn authorize(
    req: &ApiRequest,
    policy: &AuthPolicy,
    mode: AuthMode,
    world: World,
    facts: &mut LogFacts,
) -> Result<(), ApiResponse> {
    if mode.keys() && key_authenticated(req, &policy.keys) {
        facts.auth = Some("key");
        return Ok(());
    }
    let token = find_header(&req.headers, "authorization").and_then(entra::bearer);
    if mode.entra()
        && let (Some(cfg), Some(token)) = (&policy.entra, token)
    {
        return match entra::verify(token, cfg, world.http, world.kv, world.clock.now()) {
            Ok(_) => {
                facts.auth = Some("entra");
                Ok(())
            }
            Err(AuthError::Rejected(why)) => {
                facts.auth = Some(why.code());
                let mut r = problem(
                    401,
                    "unauthorized",
                    "Unauthorized",
                    format!("The bearer token was refused: {}.", why.words()),
                );
                r.headers.push(("www-authenticate".into(), "Bearer error=\"invalid_token\"".into()));
                Err(r)
            }
            Err(AuthError::KeysUnavailable(_)) => {
                facts.auth = Some("keys_unavailable");
                let mut r = problem(
                    503,
                    "signing-keys-unavailable",
                    "Signing keys unavailable",
                    "Entra ID's signing keys could not be fetched to check the bearer token; nothing was done. Retry later.",
                );
                r.headers.push(("retry-after".into(), "30".into()));
                Err(r)
            }
        };
    }
    let detail = match mode {
        AuthMode::Keys => "A valid key is required: pass it as the `code` query parameter or the `x-api-key` header.",
        AuthMode::Entra => "A valid Entra ID bearer token is required (Authorization: Bearer).",
        AuthMode::KeysOrEntra => {
            "A valid key (`code` query parameter or `x-api-key` header) or Entra ID bearer token (Authorization: Bearer) is required."
        }
    };
    let mut r = problem(401, "unauthorized", "Unauthorized", detail);
    if mode.entra() {
        r.headers.push(("www-authenticate".into(), "Bearer".into()));
    }
    Err(r)
}

fn is_json_content_type(req: &ApiRequest) -> bool {
    find_header(&req.headers, "content-type").is_some_and(|ct| {
        let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
    })
}

fn healthz(vars: &dyn Variables) -> ApiResponse {
    // Every problem, notification-only ones included: names and messages, never values.
    let problems = config::problems(vars);
    let status = if problems.is_empty() { "ok" } else { "degraded" };
    json_response(200, &Health { problems, status, version: env!("CARGO_PKG_VERSION") })
}

/// Handle one request.
pub fn handle(req: &ApiRequest, vars: &dyn Variables, world: World) -> ApiResponse {
    let counting = CountingHttp { inner: world.http, calls: Cell::new(0) };
    let world = World { http: &counting, ..world };
    let mut facts = LogFacts::default();
    let route = route_name(&req.method, &req.path);
    let resp = dispatch(req, vars, world, &mut facts);
    let level = if resp.status >= 500 {
        "error"
    } else if resp.status >= 400 {
        "warn"
    } else {
        "info"
    };
    let log = json!({
        "time": rfc3339(world.clock.now()),
        "level": level,
        "route": route,
        "method": req.method,
        "status": resp.status,
        "request_id": req.request_id,
        "alert_id": facts.alert_id,
        "capture_ids": facts.capture_ids,
        "vm": facts.vms,
        "outbound_calls": counting.calls.get(),
        "auth": facts.auth,
    });
    ApiResponse { log, ..resp }
}

/// The routes of SPEC §2, parsed once from the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    Healthz,
    Alerts,
    Poll,
    List,
    Get(&'a str),
    Stop(&'a str),
}

impl<'a> Route<'a> {
    fn parse(path: &'a str) -> Option<Route<'a>> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        Some(match segs.as_slice() {
            ["healthz"] => Route::Healthz,
            ["alerts"] => Route::Alerts,
            ["poll"] => Route::Poll,
            ["captures"] => Route::List,
            ["captures", id] => Route::Get(id),
            ["captures", id, "stop"] => Route::Stop(id),
            _ => return None,
        })
    }

    /// The one method the route answers.
    fn method(self) -> &'static str {
        match self {
            Route::Healthz | Route::List | Route::Get(_) => "GET",
            Route::Alerts | Route::Poll | Route::Stop(_) => "POST",
        }
    }

    /// The route's name for logs (ids replaced by a placeholder).
    fn name(self) -> &'static str {
        match self {
            Route::Healthz => "/healthz",
            Route::Alerts => "/alerts",
            Route::Poll => "/poll",
            Route::List => "/captures",
            Route::Get(_) => "/captures/{id}",
            Route::Stop(_) => "/captures/{id}/stop",
        }
    }
}

fn route_name(method: &str, path: &str) -> String {
    match Route::parse(path) {
        Some(r) => format!("{method} {}", r.name()),
        None => format!("{method} (unknown)"),
    }
}

fn dispatch(req: &ApiRequest, vars: &dyn Variables, world: World, facts: &mut LogFacts) -> ApiResponse {
    let Some(route) = Route::parse(&req.path) else {
        return problem(
            404,
            "not-found",
            "Not found",
            "No such route. Routes: POST /alerts, POST /poll, GET /captures, GET /captures/{id}, POST /captures/{id}/stop, GET /healthz.",
        );
    };
    let allowed = route.method();
    if req.method != allowed {
        let mut r = problem(405, "method-not-allowed", "Method not allowed", format!("Use {allowed} on this route."));
        r.headers.push(("allow".into(), allowed.into()));
        return r;
    }
    if route == Route::Healthz {
        return healthz(vars);
    }
    // Authentication first, alone: a caller who cannot authenticate learns nothing about the
    // rest of the configuration. With no usable key, fail closed (names, never values).
    let policy = match AuthPolicy::load(vars) {
        Ok(a) => a,
        Err(_) => return config_problem(&config::problems(vars)),
    };
    let mode = if route == Route::Alerts { policy.alerts } else { policy.routes };
    if let Err(refused) = authorize(req, &policy, mode, world, facts) {
        return refused;
    }
    // Problems that only concern notifications leave a loaded configuration: captures go on.
    let cfg = match Config::load(vars) {
        Ok(c) => c,
        Err(problems) => return config_problem(&problems),
    };
    let ctx = Ctx { writer: req.request_id.clone(), ..Ctx::new(&cfg, world) };
    // A request without an id still writes distinct claims.
    let ctx = if ctx.writer.is_empty() { Ctx { writer: format!("r{}", world.clock.now()), ..ctx } } else { ctx };
    let result = match route {
        Route::Alerts => post_alerts(&ctx, req, facts),
        Route::Poll => poll(&ctx, facts),
        Route::List => list(&ctx, req),
        Route::Get(id) => get_one(&ctx, id, facts),
        Route::Stop(id) => stop(&ctx, id, facts),
        Route::Healthz => Ok(healthz(vars)),
    };
    result.unwrap_or_else(|e| store_problem(&e))
}

fn capture_summary(o: &TargetOutcome) -> CaptureSummary<'_> {
    let c = &o.capture;
    let state = State::parse(&c.state).map_or("queued", State::as_str);
    CaptureSummary { id: &c.id, state, status_url: format!("/captures/{}", c.id), vm: &c.vm }
}

fn post_alerts(ctx: &Ctx, req: &ApiRequest, facts: &mut LogFacts) -> Result<ApiResponse, StoreError> {
    if req.body_too_large {
        return Ok(problem(413, "too-large", "Body too large", "Alert payloads are at most 1 MiB."));
    }
    if !is_json_content_type(req) {
        return Ok(problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "Send the alert as application/json (Azure Monitor action groups do).",
        ));
    }
    let alert = match alert::parse(&req.body) {
        Ok(a) => a,
        Err(e) => return Ok(problem(e.status(), "bad-alert", "Not an alert we understand", e.to_string())),
    };
    facts.alert_id = Some(alert.alert_id.clone());
    let rejected = || -> Vec<Rejected<'_>> {
        alert.rejected_targets.iter().map(|(id, why)| Rejected { id, reason: why }).collect()
    };
    if alert.condition == Condition::Resolved {
        let body = Ignored { alert_id: &alert.alert_id, ignored: "resolved", schema: alert.schema.as_str() };
        return Ok(json_response(200, &body));
    }
    if alert.targets.is_empty() {
        return Ok(ProblemBody {
            rejected_targets: Some(rejected()),
            ..ProblemBody::new(
                422,
                "no-vm-target",
                "No VM target",
                "The alert fired on no virtual machine or scale set, so there is nothing to capture on.".into(),
            )
        }
        .answer());
    }
    let (targets, outside): (Vec<Target>, Vec<Target>) = alert.targets.iter().cloned().partition(|t| {
        ctx.cfg.allowed_scopes.is_empty() || ctx.cfg.allowed_scopes.iter().any(|s| t.capture_target().is_within(s))
    });
    if targets.is_empty() {
        return Ok(ProblemBody {
            targets: Some(outside.iter().map(Target::id_string).collect()),
            ..ProblemBody::new(
                422,
                "outside-allowed-scopes",
                "Target outside allowed scopes",
                "Every target of the alert lies outside allowed_scopes; no capture was started.".into(),
            )
        }
        .answer());
    }
    let outcomes = intake::handle_alert(ctx, &alert, &targets)?;
    let mut captures = Vec::new();
    let mut results = Vec::new();
    let mut warnings = Vec::new();
    for o in &outcomes {
        facts.capture_ids.push(o.capture.id.clone());
        facts.vms.push(o.capture.vm.clone());
        let decision = match o.decision {
            Decision::Started => "started",
            Decision::Duplicate => "duplicate",
            Decision::Coalesced => "coalesced",
            Decision::SkippedLimit => "skipped",
        };
        results.push(TargetResult { capture: capture_summary(o), decision, errors: &o.errors, vm: &o.capture.vm });
        captures.push(capture_summary(o));
        warnings.extend(o.warnings.iter().map(String::as_str));
    }
    // A webhook advances no other capture: its store budget is the alert's (docs/STATE.md);
    // POST /poll keeps captures moving.
    let started = outcomes.iter().any(|o| o.decision == Decision::Started);
    let any = |d: Decision| outcomes.iter().any(|o| o.decision == d);
    let body = AlertAnswer {
        alert_id: &alert.alert_id,
        captures,
        coalesced: any(Decision::Coalesced).then_some(true),
        duplicate: outcomes.iter().all(|o| o.decision == Decision::Duplicate).then_some(true),
        outside_allowed_scopes: outside.iter().map(Target::id_string).collect(),
        rejected_targets: rejected(),
        results,
        schema: alert.schema.as_str(),
        skipped: any(Decision::SkippedLimit).then_some("limit"),
        warnings,
    };
    Ok(json_response(if started { 202 } else { 200 }, &body))
}

fn poll(ctx: &Ctx, facts: &mut LogFacts) -> Result<ApiResponse, StoreError> {
    let report = poller::advance_due(ctx)?;
    facts.capture_ids.clone_from(&report.advanced_ids);
    let body =
        PollAnswer { advanced: report.advanced, due: report.due, next_check_at: report.next_check_at.map(rfc3339) };
    Ok(json_response(200, &body))
}

fn list(ctx: &Ctx, req: &ApiRequest) -> Result<ApiResponse, StoreError> {
    let state = match query_param(&req.query, "state") {
        None => None,
        Some(s) => match State::parse(&s) {
            Some(st) => Some(st),
            None => {
                return Ok(problem(
                    400,
                    "bad-query",
                    "Bad query",
                    "state must be queued, running, succeeded, failed or skipped.",
                ));
            }
        },
    };
    let limit = match query_param(&req.query, "limit") {
        None => 50,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=500).contains(&n) => n,
            _ => return Ok(problem(400, "bad-query", "Bad query", "limit must be a whole number from 1 to 500.")),
        },
    };
    let (recs, total) = captures::list(ctx, state, limit)?;
    let captures = recs.iter().map(CaptureRecord::view).collect();
    Ok(json_response(200, &ListAnswer { captures, total }))
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 80 && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

fn not_found(id: &str) -> ApiResponse {
    let shown: String = id.chars().take(80).filter(|c| c.is_ascii_graphic()).collect();
    problem(
        404,
        "capture-not-found",
        "Capture not found",
        format!("No capture record named {shown}; it may have been removed after retention_hours."),
    )
}

fn get_one(ctx: &Ctx, id: &str, facts: &mut LogFacts) -> Result<ApiResponse, StoreError> {
    if !valid_id(id) {
        return Ok(not_found(id));
    }
    match captures::get(ctx, id)? {
        None => Ok(not_found(id)),
        Some(rec) => {
            facts.capture_ids.push(rec.id.clone());
            facts.vms.push(rec.vm.clone());
            Ok(json_response(200, &rec.view()))
        }
    }
}

fn stop(ctx: &Ctx, id: &str, facts: &mut LogFacts) -> Result<ApiResponse, StoreError> {
    if !valid_id(id) {
        return Ok(not_found(id));
    }
    let mut seen = |rec: &CaptureRecord| {
        facts.capture_ids.push(rec.id.clone());
        facts.vms.push(rec.vm.clone());
    };
    Ok(match captures::stop(ctx, id)? {
        captures::Stop::NotFound => not_found(id),
        captures::Stop::AlreadyEnded(rec) => {
            seen(&rec);
            problem(
                409,
                "not-running",
                "Capture not running",
                format!("Capture {} is already {}.", rec.id, rec.state.as_str()),
            )
        }
        captures::Stop::AzureRefused(rec, e) => {
            seen(&rec);
            problem(
                502,
                "azure-stop-failed",
                "Azure did not stop the capture",
                format!("{}. Try again; the capture is still {}.", e.summary(), rec.state.as_str()),
            )
        }
        captures::Stop::Stopped(rec) => {
            seen(&rec);
            json_response(200, &rec.view())
        }
    })
}
