//! A local stand-in for Entra ID and Azure Resource Manager, for what alert-packet-capture
//! calls (SPEC §4): the client-credentials token endpoint, VM GET, the network watcher list
//! and packet captures. Tests start it in-process with [`Emulator::start`] and steer it with
//! typed methods; the `azure-emulator` binary serves the same thing plus an HTTP control API
//! under `/_emulator/`.
//!
//! Answers follow the shapes of the real payloads in `testdata/azure-samples/`.

mod arm;
mod control;
mod entra;
pub mod faults;
mod http;
mod model;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use faults::{Fault, FaultKind, Trigger, routes};

use http::{Reply, Request, Response, Server};
use model::{ArmId, State, Vm, Watcher, normalize_location};

/// Errors of the control API.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The listener could not be started.
    #[error("cannot listen on {listen}: {source}")]
    Listen {
        /// The address asked for.
        listen: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A seeded resource id is not of the form
    /// `/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}` or of the wrong type.
    #[error("invalid resource id {0:?}: {1}")]
    InvalidId(String, &'static str),
}

/// Operating system of a seeded VM (`properties.storageProfile.osDisk.osType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OsType {
    /// Linux (agent extension `NetworkWatcherAgentLinux`).
    Linux,
    /// Windows (agent extension `NetworkWatcherAgentWindows`).
    Windows,
}

/// Settings fixed at start (some can be changed later through [`Emulator`] methods).
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatorConfig {
    /// Tenant accepted by the token endpoint (compared case-insensitively).
    pub tenant_id: String,
    /// Client id accepted by the token endpoint.
    pub client_id: String,
    /// Client secret accepted by the token endpoint.
    pub client_secret: String,
    /// `expires_in` of issued tokens, in seconds (Entra's usual 3599).
    pub token_lifetime_secs: u64,
    /// Emulator-clock seconds between a capture's creation and `Running`.
    pub capture_start_delay_secs: u64,
    /// Seed of the generator that decides probabilistic faults.
    pub fault_seed: u64,
    /// Start value of the emulator clock (default: the real time at start).
    pub clock_start: Option<OffsetDateTime>,
    /// `false` (tests): the clock moves only when set or advanced. `true` (the binary): it
    /// also flows with real time.
    pub flowing_clock: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            tenant_id: DEFAULT_TENANT_ID.to_string(),
            client_id: DEFAULT_CLIENT_ID.to_string(),
            client_secret: DEFAULT_CLIENT_SECRET.to_string(),
            token_lifetime_secs: 3599,
            capture_start_delay_secs: 5,
            fault_seed: 0,
            clock_start: None,
            flowing_clock: false,
        }
    }
}

/// Default tenant id accepted by the token endpoint.
pub const DEFAULT_TENANT_ID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// Default client id accepted by the token endpoint.
pub const DEFAULT_CLIENT_ID: &str = "396c2760-2fa5-4948-b9d5-9839a7440836";
/// Default client secret accepted by the token endpoint.
pub const DEFAULT_CLIENT_SECRET: &str = "emulator-secret";

/// A VM (or scale set) to seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmSpec {
    /// ARM id of a `Microsoft.Compute/virtualMachines` or `…/virtualMachineScaleSets` resource.
    pub id: String,
    /// Location, any casing/spacing (`"West US"` is stored as `westus`).
    pub location: String,
    /// OS type.
    pub os_type: OsType,
    /// Whether the Network Watcher agent extension is installed.
    pub network_watcher_extension: bool,
}

impl VmSpec {
    /// A VM with the agent extension installed.
    pub fn new(id: &str, location: &str, os_type: OsType) -> VmSpec {
        VmSpec { id: id.to_string(), location: location.to_string(), os_type, network_watcher_extension: true }
    }

    /// Sets whether the agent extension is installed.
    pub fn with_extension(mut self, installed: bool) -> VmSpec {
        self.network_watcher_extension = installed;
        self
    }
}

/// A network watcher to seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatcherSpec {
    /// ARM id of a `Microsoft.Network/networkWatchers` resource.
    pub id: String,
    /// Location, any casing/spacing.
    pub location: String,
}

impl WatcherSpec {
    /// A watcher.
    pub fn new(id: &str, location: &str) -> WatcherSpec {
        WatcherSpec { id: id.to_string(), location: location.to_string() }
    }
}

/// Ids seeded by [`Emulator::seed_demo`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoIds {
    /// The demo VM (Linux, `westus`, agent installed).
    pub vm_id: String,
    /// The demo watcher (`westus`).
    pub watcher_id: String,
    /// A storage account id to put in `storage_account_id`.
    pub storage_account_id: String,
}

/// One call as the emulator saw it. Secrets are redacted: the `Authorization` header value,
/// and `client_secret`/`client_assertion` in bodies and queries, read `<redacted>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Order of completion, from 1.
    pub seq: u64,
    /// Emulator-clock time (RFC 3339).
    pub time: String,
    /// Route name (see [`routes`]).
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// Path as received (percent-encoded).
    pub path: String,
    /// Query string as received, without `?`.
    pub query: String,
    /// Headers, secrets redacted.
    pub headers: Vec<(String, String)>,
    /// Body as text (lossy UTF-8), secrets redacted.
    pub body: String,
    /// Status the emulator produced; `None` when a `Drop` fault closed the connection first.
    pub status: Option<u16>,
    /// Whether the answer was written to the client (`false` for `Drop` and `LoseResponse`).
    pub delivered: bool,
}

/// A capture as the emulator holds it now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaptureInfo {
    /// ARM id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `packetCaptureStatus` at the current emulator time.
    pub status: String,
    /// `stopReason`, if any.
    pub stop_reason: Option<String>,
    /// The `properties` answered by GET.
    pub properties: serde_json::Value,
}

pub(crate) struct Inner {
    state: Mutex<State>,
    base: OnceLock<String>,
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not wedge every later test call.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn base(&self) -> &str {
        self.base.get().map(String::as_str).unwrap_or("")
    }
}

/// A running emulator. Stops listening when dropped. `Send + Sync`: share it by reference
/// or in an `Arc` across threads.
pub struct Emulator {
    inner: Arc<Inner>,
    server: Server,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator").field("base_url", &self.base_url()).finish()
    }
}

impl Emulator {
    /// Starts with [`EmulatorConfig::default`] on `listen` (e.g. `"127.0.0.1:0"`).
    pub fn start(listen: &str) -> Result<Emulator, EmulatorError> {
        Emulator::start_with(listen, EmulatorConfig::default())
    }

    /// Starts with the given configuration.
    pub fn start_with(listen: &str, config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        let inner = Arc::new(Inner { state: Mutex::new(State::new(config)), base: OnceLock::new() });
        let handler_inner = Arc::clone(&inner);
        let server = Server::start(listen, Arc::new(move |req: Request| dispatch(&handler_inner, req)))
            .map_err(|source| EmulatorError::Listen { listen: listen.to_string(), source })?;
        let _ = inner.base.set(format!("http://{}", server.addr()));
        Ok(Emulator { inner, server })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash. Use it as both the authority host and the
    /// ARM endpoint.
    pub fn base_url(&self) -> String {
        self.inner.base().to_string()
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The configuration in force (with changes made through the setters).
    pub fn config(&self) -> EmulatorConfig {
        self.inner.lock().settings.config.clone()
    }

    /// Seeds (or replaces) a VM or scale set.
    pub fn add_vm(&self, vm: VmSpec) -> Result<(), EmulatorError> {
        add_vm(&self.inner, vm)
    }

    /// Seeds (or replaces) a network watcher.
    pub fn add_watcher(&self, watcher: WatcherSpec) -> Result<(), EmulatorError> {
        add_watcher(&self.inner, watcher)
    }

    /// Seeds a Linux VM with the agent in `westus` and the `westus` watcher, the way the
    /// portal names them.
    pub fn seed_demo(&self) -> DemoIds {
        seed_demo(&self.inner)
    }

    /// Current emulator time.
    pub fn now(&self) -> OffsetDateTime {
        self.inner.lock().now()
    }

    /// Sets the emulator clock.
    pub fn set_clock(&self, t: OffsetDateTime) {
        self.inner.lock().clock.set(t);
    }

    /// Moves the emulator clock forward.
    pub fn advance_clock(&self, by: std::time::Duration) {
        let by = time::Duration::try_from(by).unwrap_or(time::Duration::MAX);
        self.inner.lock().clock.advance(by);
    }

    /// Lifetime (`expires_in`) of tokens issued from now on.
    pub fn set_token_lifetime(&self, secs: u64) {
        self.inner.lock().settings.config.token_lifetime_secs = secs;
    }

    /// Delay between creation and `Running` for captures created from now on.
    pub fn set_capture_start_delay(&self, secs: u64) {
        self.inner.lock().settings.config.capture_start_delay_secs = secs;
    }

    /// Every bearer token issued so far, so tests can check that none leaks anywhere.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.inner.lock().tokens.keys().cloned().collect()
    }

    /// Makes every token issued so far expire now (ARM then answers
    /// `ExpiredAuthenticationToken`).
    pub fn revoke_tokens(&self) {
        revoke_tokens(&self.inner);
    }

    /// Adds a fault rule.
    pub fn add_fault(&self, fault: Fault) {
        self.inner.lock().faults.add(fault);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.inner.lock().faults.clear();
    }

    /// Restarts the fault generator from `seed`.
    pub fn set_fault_seed(&self, seed: u64) {
        self.inner.lock().faults.reseed(seed);
    }

    /// Puts every capture named `name` (case-insensitive) into `Error` with
    /// `packetCaptureError: ["CaptureFailed"]`, now, and any capture later created with it.
    pub fn fail_capture(&self, name: &str) {
        fail_capture(&self.inner, name);
    }

    /// The next capture created (whatever its name) ends in `Error`.
    pub fn fail_next_capture(&self) {
        self.inner.lock().fail_next += 1;
    }

    /// Every capture named `name` (case-insensitive), existing or created later, stays
    /// `Running` past its time limit until it is stopped (then `Stopped`, reason `Manual`):
    /// a capture stuck in Azure, for watchdog tests.
    pub fn hang_capture(&self, name: &str) {
        let mut st = self.inner.lock();
        for c in st.captures.values_mut() {
            if c.name.eq_ignore_ascii_case(name) {
                c.hang = true;
            }
        }
        st.hang_names.insert(name.to_ascii_lowercase());
    }

    /// The next capture created (whatever its name) hangs as with [`Emulator::hang_capture`].
    pub fn hang_next_capture(&self) {
        self.inner.lock().hang_next += 1;
    }

    /// When `Some(base)` (e.g. `"http://evil.example:9"`), `Location` and
    /// `Azure-AsyncOperation` headers and list `nextLink`s point at that host instead of the
    /// emulator (for SSRF tests). `None` restores honest answers.
    pub fn set_hostile_base(&self, base: Option<&str>) {
        self.inner.lock().settings.hostile_base = base.map(|b| b.trim_end_matches('/').to_string());
    }

    /// Every call so far, in completion order (control calls excluded).
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.inner.lock().journal.clone()
    }

    /// Empties the journal and the call counts.
    pub fn clear_journal(&self) {
        let mut st = self.inner.lock();
        st.journal.clear();
        st.counts.clear();
    }

    /// Number of calls of `route` (faulted ones included) since start or the last
    /// [`Emulator::clear_journal`].
    pub fn calls(&self, route: &str) -> u64 {
        self.inner.lock().counts.get(route).copied().unwrap_or(0)
    }

    /// Calls per route.
    pub fn call_counts(&self) -> BTreeMap<String, u64> {
        self.inner.lock().counts.clone()
    }

    /// Every capture, with its status at the current emulator time.
    pub fn captures(&self) -> Vec<CaptureInfo> {
        captures(&self.inner)
    }
}

pub(crate) fn add_vm(inner: &Inner, vm: VmSpec) -> Result<(), EmulatorError> {
    let id = ArmId::parse(&vm.id).ok_or_else(|| EmulatorError::InvalidId(vm.id.clone(), "not an ARM resource id"))?;
    let compute = id.namespace.eq_ignore_ascii_case("Microsoft.Compute");
    let scale_set = match id.kind.to_ascii_lowercase().as_str() {
        "virtualmachines" if compute => false,
        "virtualmachinescalesets" if compute => true,
        _ => {
            return Err(EmulatorError::InvalidId(
                vm.id,
                "not a Microsoft.Compute/virtualMachines or virtualMachineScaleSets id",
            ));
        }
    };
    let mut st = inner.lock();
    let vm_uuid = st.guid();
    st.vms.insert(
        id.key(),
        Vm {
            id,
            location: normalize_location(&vm.location),
            os_type: vm.os_type,
            agent: vm.network_watcher_extension,
            scale_set,
            vm_uuid,
        },
    );
    Ok(())
}

pub(crate) fn add_watcher(inner: &Inner, watcher: WatcherSpec) -> Result<(), EmulatorError> {
    let id = ArmId::parse(&watcher.id)
        .ok_or_else(|| EmulatorError::InvalidId(watcher.id.clone(), "not an ARM resource id"))?;
    if !(id.namespace.eq_ignore_ascii_case("Microsoft.Network") && id.kind.eq_ignore_ascii_case("networkWatchers")) {
        return Err(EmulatorError::InvalidId(watcher.id, "not a Microsoft.Network/networkWatchers id"));
    }
    inner.lock().watchers.insert(id.key(), Watcher { id, location: normalize_location(&watcher.location) });
    Ok(())
}

pub(crate) fn revoke_tokens(inner: &Inner) {
    let mut st = inner.lock();
    let now = st.now();
    st.tokens.values_mut().for_each(|e| *e = now);
}

pub(crate) fn fail_capture(inner: &Inner, name: &str) {
    let mut st = inner.lock();
    for c in st.captures.values_mut() {
        if c.name.eq_ignore_ascii_case(name) {
            c.error = true;
        }
    }
    st.fail_names.insert(name.to_ascii_lowercase());
}

pub(crate) fn seed_demo(inner: &Inner) -> DemoIds {
    let sub = "00000000-0000-0000-0000-000000000000";
    let vm_id =
        format!("/subscriptions/{sub}/resourceGroups/demo-rg/providers/Microsoft.Compute/virtualMachines/demo-vm");
    let watcher_id = format!(
        "/subscriptions/{sub}/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/NetworkWatcher_westus"
    );
    let storage_account_id =
        format!("/subscriptions/{sub}/resourceGroups/demo-rg/providers/Microsoft.Storage/storageAccounts/demostorage");
    let mut st = inner.lock();
    let vm_uuid = st.guid();
    // These ids are constants known to parse.
    if let (Some(vm), Some(w)) = (ArmId::parse(&vm_id), ArmId::parse(&watcher_id)) {
        st.vms.insert(
            vm.key(),
            Vm { id: vm, location: "westus".into(), os_type: OsType::Linux, agent: true, scale_set: false, vm_uuid },
        );
        st.watchers.insert(w.key(), Watcher { id: w, location: "westus".into() });
    }
    DemoIds { vm_id, watcher_id, storage_account_id }
}

pub(crate) fn captures(inner: &Inner) -> Vec<CaptureInfo> {
    let st = inner.lock();
    let now = st.now();
    st.captures
        .values()
        .map(|c| {
            let s = c.status_at(now);
            CaptureInfo {
                id: c.id.clone(),
                name: c.name.clone(),
                status: s.status.to_string(),
                stop_reason: s.stop_reason.map(str::to_string),
                properties: arm::props_for_get(c),
            }
        })
        .collect()
}

/// Routes a request: control calls go to the control API; everything else is journaled,
/// counted, and may be hit by faults.
fn dispatch(inner: &Inner, req: Request) -> Reply {
    if req.path == "/_emulator" || req.path.starts_with("/_emulator/") {
        return Reply::Send(control::handle(inner, &req));
    }
    let route = classify(&req);
    let decision = {
        let mut st = inner.lock();
        *st.counts.entry(route.name().to_string()).or_insert(0) += 1;
        st.faults.decide(route.name())
    };
    if decision.latency_ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(decision.latency_ms));
    }
    let (status, delivered, reply) = match decision.action {
        Some((FaultKind::Drop, _)) => (None, false, Reply::Drop),
        Some((FaultKind::LoseResponse, _)) => {
            let resp = handle(inner, &route, &req);
            (Some(resp.status), false, Reply::Drop)
        }
        Some((FaultKind::Status(code), retry_after)) => {
            let resp = fault_response(inner, &route, code, retry_after);
            (Some(resp.status), true, Reply::Send(resp))
        }
        // Latency is folded into the decision above and never terminates a call.
        Some((FaultKind::LatencyMs(_), _)) | None => {
            let resp = handle(inner, &route, &req);
            (Some(resp.status), true, Reply::Send(resp))
        }
    };
    record(inner, &route, &req, status, delivered);
    reply
}

fn handle(inner: &Inner, route: &Route, req: &Request) -> Response {
    match route {
        Route::Token { tenant } => entra::token(inner, tenant, req),
        Route::Unknown => arm::not_found_route(req),
        other => arm::handle(inner, other, req),
    }
}

fn fault_response(inner: &Inner, route: &Route, code: u16, retry_after: u32) -> Response {
    if let Route::Token { .. } = route {
        return entra::fault(inner, code, retry_after);
    }
    let (err, msg) = match code {
        429 => (
            "SubscriptionRequestsThrottled",
            "Number of requests for subscription exceeded the limit. Please try again later.",
        ),
        409 => (
            "RetryableErrorDueToAnotherOperation",
            "Operation is not allowed because another operation is in progress on the resource. Retry after some time.",
        ),
        500 => ("InternalServerError", "An error occurred while processing the request."),
        503 => ("ServiceUnavailable", "The service is temporarily unavailable. Please retry."),
        _ => ("InjectedFault", "The emulator injected this error."),
    };
    let resp = arm::error(code, err, msg);
    if matches!(code, 429 | 409 | 503) { resp.with_header("Retry-After", retry_after.to_string()) } else { resp }
}

fn record(inner: &Inner, route: &Route, req: &Request, status: Option<u16>, delivered: bool) {
    let headers = req
        .headers
        .iter()
        .map(|(k, v)| {
            if k.eq_ignore_ascii_case("authorization") || k.eq_ignore_ascii_case("cookie") {
                (k.clone(), REDACTED.to_string())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    let body = redact_secrets(&String::from_utf8_lossy(&req.body));
    let query = redact_secrets(&req.query);
    let mut st = inner.lock();
    st.seq += 1;
    let time = model_time(&st);
    let entry = JournalEntry {
        seq: st.seq,
        time,
        route: route.name().to_string(),
        method: req.method.clone(),
        path: req.path.clone(),
        query,
        headers,
        body,
        status,
        delivered,
    };
    st.journal.push(entry);
}

fn model_time(st: &State) -> String {
    st.now().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

const REDACTED: &str = "<redacted>";

/// Replaces the values of secret form fields in a form-encoded string; other text is kept.
fn redact_secrets(text: &str) -> String {
    const SECRET_FIELDS: [&str; 2] = ["client_secret", "client_assertion"];
    let is_form = text.split('&').any(|p| SECRET_FIELDS.iter().any(|f| p.starts_with(&format!("{f}="))));
    if !is_form {
        return text.to_string();
    }
    text.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET_FIELDS.contains(&k) => format!("{k}={REDACTED}"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A classified request. Path segments are percent-decoded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Route {
    Token { tenant: String },
    VmGet { sub: String, rg: String, vm: String },
    WatchersList { sub: String },
    CaptureList { sub: String, rg: String, nw: String },
    Capture { op: &'static str, sub: String, rg: String, nw: String, name: String },
    AsyncOperation { sub: String },
    OperationResult { sub: String },
    Unknown,
}

impl Route {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Route::Token { .. } => routes::TOKEN,
            Route::VmGet { .. } => routes::VM_GET,
            Route::WatchersList { .. } => routes::WATCHERS_LIST,
            Route::CaptureList { .. } => routes::CAPTURE_LIST,
            Route::Capture { op, .. } => op,
            Route::AsyncOperation { .. } => routes::ASYNC_OPERATION,
            Route::OperationResult { .. } => routes::OPERATION_RESULT,
            Route::Unknown => routes::UNKNOWN,
        }
    }
}

fn classify(req: &Request) -> Route {
    let segs: Vec<String> = req
        .path
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let m = req.method.as_str();
    match s.as_slice() {
        [tenant, "oauth2", "v2.0", "token"] if m == "POST" && !tenant.is_empty() => {
            Route::Token { tenant: tenant.to_string() }
        }
        [a, sub, b, rg, c, ns, t, vm]
            if m == "GET"
                && eq(a, "subscriptions")
                && eq(b, "resourceGroups")
                && eq(c, "providers")
                && eq(ns, "Microsoft.Compute")
                && eq(t, "virtualMachines") =>
        {
            Route::VmGet { sub: sub.to_string(), rg: rg.to_string(), vm: vm.to_string() }
        }
        [a, sub, c, ns, t]
            if m == "GET"
                && eq(a, "subscriptions")
                && eq(c, "providers")
                && eq(ns, "Microsoft.Network")
                && eq(t, "networkWatchers") =>
        {
            Route::WatchersList { sub: sub.to_string() }
        }
        [a, sub, c, ns, l, _loc, o, _id]
            if m == "GET"
                && eq(a, "subscriptions")
                && eq(c, "providers")
                && eq(ns, "Microsoft.Network")
                && eq(l, "locations") =>
        {
            if eq(o, "operations") {
                Route::AsyncOperation { sub: sub.to_string() }
            } else if eq(o, "operationResults") {
                Route::OperationResult { sub: sub.to_string() }
            } else {
                Route::Unknown
            }
        }
        [a, sub, b, rg, c, ns, w, nw, pc, rest @ ..]
            if eq(a, "subscriptions")
                && eq(b, "resourceGroups")
                && eq(c, "providers")
                && eq(ns, "Microsoft.Network")
                && eq(w, "networkWatchers")
                && eq(pc, "packetCaptures") =>
        {
            let (sub, rg, nw) = (sub.to_string(), rg.to_string(), nw.to_string());
            let op = match (m, rest) {
                ("GET", []) => return Route::CaptureList { sub, rg, nw },
                ("PUT", [_]) => routes::CAPTURE_PUT,
                ("GET", [_]) => routes::CAPTURE_GET,
                ("DELETE", [_]) => routes::CAPTURE_DELETE,
                ("POST", [_, action]) if eq(action, "queryStatus") => routes::CAPTURE_STATUS,
                ("POST", [_, action]) if eq(action, "stop") => routes::CAPTURE_STOP,
                _ => return Route::Unknown,
            };
            Route::Capture { op, sub, rg, nw, name: rest[0].to_string() }
        }
        _ => Route::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_secret_fields_only() {
        let r = redact_secrets("client_id=a&client_secret=s%3Dx&scope=b");
        assert_eq!(r, "client_id=a&client_secret=<redacted>&scope=b");
        assert_eq!(redact_secrets("{\"a\":1}"), "{\"a\":1}");
    }

    #[test]
    fn classify_is_case_insensitive_on_keywords() {
        let req = Request {
            method: "POST".into(),
            path: "/SUBSCRIPTIONS/s/resourcegroups/rg/providers/microsoft.network/NETWORKWATCHERS/nw/packetcaptures/pc%2D1/QueryStatus".into(),
            query: String::new(),
            headers: vec![],
            body: vec![],
        };
        assert_eq!(
            classify(&req),
            Route::Capture {
                op: routes::CAPTURE_STATUS,
                sub: "s".into(),
                rg: "rg".into(),
                nw: "nw".into(),
                name: "pc-1".into()
            }
        );
    }
}
