//! A local stand-in for Entra ID and Azure Resource Manager, for what alert-packet-capture
//! calls (SPEC §4): the client-credentials token endpoint, VM GET, the network watcher list
//! and packet captures. Tests start it in-process with [`Emulator::start`] and steer it with
//! typed methods; the `azure-emulator` binary serves the same thing plus an HTTP control API
//! under `/_emulator/`.
//!
//! Answers follow the shapes of the real payloads in `testdata/azure-samples/`.

mod arm;
mod blob;
mod control;
mod entra;
pub mod faults;
mod http;
mod model;
pub mod pcap;
pub mod tokens;
pub mod versions;

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
    /// How faithfully ARM's optional behaviours are played (defaults keep the simple answers).
    pub modes: ArmModes,
    /// Seed of the RSA keys that sign action-group tokens (key generation `n` uses seed + `n`).
    pub signing_seed: u64,
}

/// What a capture PUT does when a capture of that name already exists. Real ARM's answer is
/// undocumented: the Network RP specs list only `201` for `PacketCaptures_Create`, and
/// azure-cli issue #7748 only reports that re-creating an existing capture fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExistingName {
    /// The same body again is `201` with the existing capture; another body is
    /// `409 PacketCaptureAlreadyExists` (the emulator's historical answer).
    #[default]
    SameBodyIdempotent,
    /// Always `201` with the existing capture, whatever the body.
    Idempotent,
    /// Always `409 PacketCaptureAlreadyExists`.
    Conflict,
}

/// How throttling answers (429, and the 409/503 faults) carry `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryAfterStyle {
    /// Delta seconds (`Retry-After: 7`).
    #[default]
    Seconds,
    /// An HTTP date (`Retry-After: Wed, 01 Jan 2025 00:00:07 GMT`), from the emulator clock.
    HttpDate,
    /// No `Retry-After` header.
    Absent,
}

/// What the `202` of an asynchronous `queryStatus` carries (with [`ArmModes::async_actions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AsyncBody {
    /// The status fields, as in answers recorded from the Network RP (the historical answer).
    #[default]
    Status,
    /// No body at all, the usual ARM long-running answer: the status is only had from a GET of
    /// the `Location` URL once the operation has finished (`202` with an empty body before).
    Empty,
}

/// The end of a long-running operation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LroOutcome {
    /// `{"status":"Succeeded"}`.
    #[default]
    Succeeded,
    /// `{"status":"Failed","error":{code,message}}`; the `Location` URL answers 500 with it.
    Failed {
        /// `error.code`.
        code: String,
        /// `error.message`.
        message: String,
    },
}

/// Switches that bring the emulator closer to real ARM. The defaults keep the answers the
/// existing tests rely on. Settable with [`Emulator::set_modes`] and friends, or over HTTP
/// with `POST /_emulator/modes` (a partial JSON object of these fields, snake_case).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArmModes {
    /// `queryStatus` and `stop` answer `202` with `Location` and `Azure-AsyncOperation`
    /// (real ARM has been recorded answering both ways). Default `false`: `200`.
    pub async_actions: bool,
    /// What an asynchronous `queryStatus` `202` carries (default: the status fields).
    pub async_body: AsyncBody,
    /// GETs of an operation URL that answer `InProgress` before the end (default 0).
    pub lro_polls: u32,
    /// Emulator-clock seconds an operation stays `InProgress` (default 0).
    pub lro_secs: u64,
    /// How operations end (default `Succeeded`).
    pub lro_outcome: LroOutcome,
    /// `Retry-After` seconds on long-running answers and in-progress polls (default 10).
    pub lro_retry_after_secs: u32,
    /// A PUT of an existing capture name.
    pub existing_name: ExistingName,
    /// `Retry-After` on throttling answers.
    pub retry_after: RetryAfterStyle,
    /// Reads (GET, list) of a new capture that still see `provisioningState: Updating`
    /// (default 0: the first GET sees `Succeeded`).
    pub updating_reads: u32,
    /// Emulator-clock seconds a new capture stays `Updating` (default 0).
    pub updating_secs: u64,
    /// Answer `SubscriptionNotFound` / `ResourceGroupNotFound` (404) for a subscription or
    /// resource group holding no seeded resource, as ARM does (default `true`; `false` answers
    /// `ResourceNotFound` instead).
    pub scope_errors: bool,
    /// Actions (e.g. `Microsoft.Network/networkWatchers/packetCaptures/write`, compared
    /// case-insensitively) answered `403 AuthorizationFailed`.
    pub denied_actions: Vec<String>,
    /// Object id named in `AuthorizationFailed` messages (and `SignedOid` of delegation keys).
    pub principal_object_id: String,
    /// `storagePath` on the emulator's own Blob service, path style
    /// (`{base}/{account}/network-watcher-logs/…`), instead of Azure's
    /// `https://{account}.blob.core.windows.net/…` (default `false`). The file is served at the
    /// path-style address either way.
    pub emulator_storage_paths: bool,
    /// Blob reads and user delegation keys answer `403 AuthorizationPermissionMismatch`, as
    /// for a service principal without a data-plane role (default `false`).
    pub storage_denied: bool,
}

impl Default for ArmModes {
    fn default() -> Self {
        ArmModes {
            async_actions: false,
            async_body: AsyncBody::Status,
            lro_polls: 0,
            lro_secs: 0,
            lro_outcome: LroOutcome::Succeeded,
            lro_retry_after_secs: 10,
            existing_name: ExistingName::SameBodyIdempotent,
            retry_after: RetryAfterStyle::Seconds,
            updating_reads: 0,
            updating_secs: 0,
            scope_errors: true,
            denied_actions: Vec::new(),
            principal_object_id: DEFAULT_PRINCIPAL_OBJECT_ID.to_string(),
            emulator_storage_paths: false,
            storage_denied: false,
        }
    }
}

/// Default object id of the service principal, as named in `AuthorizationFailed` messages.
pub const DEFAULT_PRINCIPAL_OBJECT_ID: &str = "5b2c1e4a-7d3f-4e8b-9a61-0c2d3e4f5a6b";

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
            modes: ArmModes::default(),
            signing_seed: 12,
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

/// A virtual machine scale set (Uniform orchestration) to seed, with its instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmssSpec {
    /// ARM id of a `Microsoft.Compute/virtualMachineScaleSets` resource.
    pub id: String,
    /// Location, any casing/spacing.
    pub location: String,
    /// OS type of the instances.
    pub os_type: OsType,
    /// Whether the Network Watcher agent extension is in the scale set's extension profile.
    pub network_watcher_extension: bool,
    /// Instance ids (`"0"`, `"1"`, …).
    pub instance_ids: Vec<String>,
}

impl VmssSpec {
    /// A scale set with the agent extension and instances `0..count`.
    pub fn new(id: &str, location: &str, os_type: OsType, count: u32) -> VmssSpec {
        VmssSpec {
            id: id.to_string(),
            location: location.to_string(),
            os_type,
            network_watcher_extension: true,
            instance_ids: (0..count).map(|i| i.to_string()).collect(),
        }
    }

    /// Sets whether the agent extension is installed.
    pub fn with_extension(mut self, installed: bool) -> VmssSpec {
        self.network_watcher_extension = installed;
        self
    }

    /// Sets the instance ids.
    pub fn with_instances(mut self, ids: &[&str]) -> VmssSpec {
        self.instance_ids = ids.iter().map(|s| s.to_string()).collect();
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
    /// Token-signing keys (separate from `state`: signing takes a while and needs no ARM state).
    signing: Mutex<tokens::Signing>,
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not wedge every later test call.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn base(&self) -> &str {
        self.base.get().map(String::as_str).unwrap_or("")
    }

    pub(crate) fn signing(&self) -> MutexGuard<'_, tokens::Signing> {
        self.signing.lock().unwrap_or_else(|e| e.into_inner())
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
        let signing = Mutex::new(tokens::Signing::new(config.signing_seed));
        let inner = Arc::new(Inner { state: Mutex::new(State::new(config)), base: OnceLock::new(), signing });
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

    /// Seeds (or replaces) a scale set and its instances.
    pub fn add_vmss(&self, vmss: VmssSpec) -> Result<(), EmulatorError> {
        add_vmss(&self.inner, vmss)
    }

    /// The ARM modes in force.
    pub fn modes(&self) -> ArmModes {
        self.inner.lock().settings.config.modes.clone()
    }

    /// Replaces every ARM mode.
    pub fn set_modes(&self, modes: ArmModes) {
        self.inner.lock().settings.config.modes = modes;
    }

    /// Changes the ARM modes in place.
    pub fn update_modes(&self, f: impl FnOnce(&mut ArmModes)) {
        f(&mut self.inner.lock().settings.config.modes);
    }

    /// `queryStatus` and `stop` answer `202` + `Location` + `Azure-AsyncOperation` (`true`)
    /// or `200` (`false`, the default).
    pub fn set_async_actions(&self, on: bool) {
        self.update_modes(|m| m.async_actions = on);
    }

    /// What an asynchronous `queryStatus` `202` carries: the status fields, or nothing (then
    /// only the `Location` GET answers the status, once the operation has finished).
    pub fn set_async_body(&self, body: AsyncBody) {
        self.update_modes(|m| m.async_body = body);
    }

    /// Long-running operations answer `InProgress` for `polls` GETs and `secs` emulator
    /// seconds, then end with `outcome`.
    pub fn set_lro(&self, polls: u32, secs: u64, outcome: LroOutcome) {
        self.update_modes(|m| {
            m.lro_polls = polls;
            m.lro_secs = secs;
            m.lro_outcome = outcome;
        });
    }

    /// What a PUT of an existing capture name answers.
    pub fn set_existing_name(&self, mode: ExistingName) {
        self.update_modes(|m| m.existing_name = mode);
    }

    /// How throttling answers carry `Retry-After`.
    pub fn set_retry_after_style(&self, style: RetryAfterStyle) {
        self.update_modes(|m| m.retry_after = style);
    }

    /// New captures read `Updating` for `reads` GET/list reads and `secs` emulator seconds.
    pub fn set_updating(&self, reads: u32, secs: u64) {
        self.update_modes(|m| {
            m.updating_reads = reads;
            m.updating_secs = secs;
        });
    }

    /// Answers `action` with `403 AuthorizationFailed` (`denied`) or lets it through.
    pub fn deny_action(&self, action: &str, denied: bool) {
        self.update_modes(|m| {
            m.denied_actions.retain(|a| !a.eq_ignore_ascii_case(action));
            if denied {
                m.denied_actions.push(action.to_string());
            }
        });
    }

    /// `SubscriptionNotFound` / `ResourceGroupNotFound` for unknown scopes (`true`).
    pub fn set_scope_errors(&self, on: bool) {
        self.update_modes(|m| m.scope_errors = on);
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

    /// The traffic scenario of capture `name`'s file (default [`pcap::Scenario::HeavyTalker`]).
    pub fn set_scenario(&self, name: &str, scenario: pcap::Scenario) {
        self.inner.lock().scenarios.insert(name.to_ascii_lowercase(), scenario);
    }

    /// Serve exactly `bytes` as capture `name`'s file (once it has stopped), instead of its
    /// scenario's: a corrupt, truncated, empty or pcapng file, or a large one. `None` restores
    /// the scenario's file.
    pub fn set_capture_file_override(&self, name: &str, bytes: Option<Vec<u8>>) {
        let mut st = self.inner.lock();
        let key = name.to_ascii_lowercase();
        match bytes {
            Some(b) => st.file_overrides.insert(key, std::sync::Arc::new(b)),
            None => st.file_overrides.remove(&key),
        };
    }

    /// Answer Blob reads and user delegation keys `403 AuthorizationPermissionMismatch`.
    pub fn set_storage_denied(&self, denied: bool) {
        self.update_modes(|m| m.storage_denied = denied);
    }

    /// Report `storagePath` on the emulator's own Blob service ([`ArmModes::emulator_storage_paths`]).
    pub fn set_emulator_storage_paths(&self, on: bool) {
        self.update_modes(|m| m.emulator_storage_paths = on);
    }

    /// Every bearer token issued so far, so tests can check that none leaks anywhere.
    pub fn issued_tokens(&self) -> Vec<String> {
        let st = self.inner.lock();
        st.tokens.keys().chain(st.storage_tokens.keys()).cloned().collect()
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

    /// The base URL clients reach the emulator at when it is not [`Emulator::base_url`]
    /// (e.g. `https://127.0.0.1:PORT` of a TLS front): used in the OpenID configuration and in
    /// `Location`/`Azure-AsyncOperation` URLs. `None` restores the emulator's own.
    pub fn set_public_base(&self, base: Option<&str>) {
        self.inner.lock().settings.public_base = base.map(|b| b.trim_end_matches('/').to_string());
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

    /// A token Azure Monitor's action group would send to a secure webhook of the app
    /// registration `audience` whose app role `role` it holds: a v1 token of the emulator's
    /// tenant (`iss` `{base}/{tenant}/`), valid for an hour of emulator time, signed RS256 with
    /// the current key.
    pub fn action_group_token(&self, audience: &str, role: &str) -> String {
        self.action_group_token_with(audience, role, &serde_json::Value::Null, &serde_json::Value::Null)
    }

    /// [`Emulator::action_group_token`] with claims and header members overridden (a `null`
    /// member removes it), still signed with the current key: e.g. a v2 token with
    /// `{"iss": "{base}/{tenant}/v2.0", "azp": "…", "appid": null}`.
    pub fn action_group_token_with(
        &self,
        audience: &str,
        role: &str,
        claims: &serde_json::Value,
        header: &serde_json::Value,
    ) -> String {
        tokens::action_group_token(&self.inner, audience, role, claims, header)
    }

    /// An action-group token that must be refused, of the given kind.
    pub fn bad_action_group_token(&self, kind: tokens::BadToken, audience: &str, role: &str) -> String {
        tokens::bad_action_group_token(&self.inner, kind, audience, role)
    }

    /// Rotate the signing keys: a new key signs from now on and is published first; the previous
    /// one stays published. Returns the new `kid`.
    pub fn rotate_signing_keys(&self) -> String {
        self.inner.signing().rotate()
    }

    /// The published `kid`s, the signing one first.
    pub fn signing_kids(&self) -> Vec<String> {
        self.inner.signing().kids()
    }

    /// While on, the OpenID metadata and JWKS endpoints close connections without answering.
    pub fn set_jwks_outage(&self, on: bool) {
        self.inner.signing().outage = on;
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
            // A scale set seeded as a VmSpec gets two instances.
            instances: if scale_set { vec!["0".into(), "1".into()] } else { Vec::new() },
            size: "Standard_D2s_v3".into(),
        },
    );
    Ok(())
}

pub(crate) fn add_vmss(inner: &Inner, vmss: VmssSpec) -> Result<(), EmulatorError> {
    let id =
        ArmId::parse(&vmss.id).ok_or_else(|| EmulatorError::InvalidId(vmss.id.clone(), "not an ARM resource id"))?;
    if !(id.namespace.eq_ignore_ascii_case("Microsoft.Compute")
        && id.kind.eq_ignore_ascii_case("virtualMachineScaleSets"))
    {
        return Err(EmulatorError::InvalidId(vmss.id, "not a Microsoft.Compute/virtualMachineScaleSets id"));
    }
    if vmss.instance_ids.iter().any(|i| i.is_empty() || !i.bytes().all(|b| b.is_ascii_digit())) {
        return Err(EmulatorError::InvalidId(vmss.id, "instance ids are decimal numbers"));
    }
    let mut st = inner.lock();
    let vm_uuid = st.guid();
    st.vms.insert(
        id.key(),
        Vm {
            id,
            location: normalize_location(&vmss.location),
            os_type: vmss.os_type,
            agent: vmss.network_watcher_extension,
            scale_set: true,
            vm_uuid,
            instances: vmss.instance_ids,
            size: "Standard_D2s_v3".into(),
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
    st.storage_tokens.values_mut().for_each(|e| *e = now);
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
            Vm {
                id: vm,
                location: "westus".into(),
                os_type: OsType::Linux,
                agent: true,
                scale_set: false,
                vm_uuid,
                instances: Vec::new(),
                size: "Standard_D2s_v3".into(),
            },
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
                properties: arm::props_for_get(c, now),
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
    if matches!(route, Route::OpenIdConfig { .. } | Route::Jwks { .. }) && inner.signing().outage {
        *inner.lock().counts.entry(route.name().to_string()).or_insert(0) += 1;
        record(inner, &route, &req, None, false);
        return Reply::Drop;
    }
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
            let resp = with_request_ids(inner, &route, &req, fault_response(inner, &route, code, retry_after));
            (Some(resp.status), true, Reply::Send(resp))
        }
        // Latency is folded into the decision above and never terminates a call.
        Some((FaultKind::LatencyMs(_), _)) | None => {
            let resp = with_request_ids(inner, &route, &req, handle(inner, &route, &req));
            (Some(resp.status), true, Reply::Send(resp))
        }
    };
    record(inner, &route, &req, status, delivered);
    reply
}

fn handle(inner: &Inner, route: &Route, req: &Request) -> Response {
    match route {
        Route::Token { tenant } => entra::token(inner, tenant, req),
        Route::OpenIdConfig { tenant } => entra::openid_configuration(inner, tenant),
        Route::Jwks { tenant } => entra::jwks(inner, tenant),
        Route::Blob { account, container, blob } => blob::get_blob(inner, account, container, blob, req),
        Route::UserDelegationKey { account } => blob::user_delegation_key(inner, account, req),
        Route::Unknown => arm::not_found_route(req),
        other => arm::handle(inner, other, req),
    }
}

/// ARM's tracing headers on every ARM answer: a fresh `x-ms-request-id`, the client's
/// `x-ms-correlation-request-id` (or a fresh one), and the client's `x-ms-client-request-id`
/// echoed when sent.
fn with_request_ids(inner: &Inner, route: &Route, req: &Request, resp: Response) -> Response {
    if let Route::Token { .. }
    | Route::OpenIdConfig { .. }
    | Route::Jwks { .. }
    | Route::Blob { .. }
    | Route::UserDelegationKey { .. } = route
    {
        return resp;
    }
    let (request_id, fresh_correlation) = {
        let mut st = inner.lock();
        (st.guid(), st.guid())
    };
    let correlation = req
        .header("x-ms-correlation-request-id")
        .map(str::to_string)
        .filter(|v| !v.is_empty())
        .unwrap_or(fresh_correlation);
    let mut resp =
        resp.with_header("x-ms-request-id", request_id).with_header("x-ms-correlation-request-id", correlation);
    if let Some(client) = req.header("x-ms-client-request-id") {
        resp = resp.with_header("x-ms-client-request-id", client);
    }
    resp
}

/// `Retry-After` in the configured style (`None`: leave it out).
pub(crate) fn retry_after_value(inner: &Inner, secs: u32) -> Option<String> {
    let st = inner.lock();
    match st.settings.config.modes.retry_after {
        RetryAfterStyle::Seconds => Some(secs.to_string()),
        RetryAfterStyle::Absent => None,
        RetryAfterStyle::HttpDate => {
            let at = st.now().saturating_add(time::Duration::seconds(i64::from(secs)));
            Some(http_date(at))
        }
    }
}

/// RFC 9110 IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn http_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    ))
    .unwrap_or_default()
}

fn fault_response(inner: &Inner, route: &Route, code: u16, retry_after: u32) -> Response {
    if let Route::Token { .. } = route {
        return entra::fault(inner, code, retry_after);
    }
    if let Route::Blob { .. } | Route::UserDelegationKey { .. } = route {
        let resp = blob::error(
            inner,
            code,
            if code == 503 { "ServerBusy" } else { "InternalError" },
            "The emulator injected this error.",
        );
        return match retry_after_value(inner, retry_after) {
            Some(v) if matches!(code, 429 | 503) => resp.with_header("Retry-After", v),
            _ => resp,
        };
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
    match retry_after_value(inner, retry_after) {
        Some(v) if matches!(code, 429 | 409 | 503) => resp.with_header("Retry-After", v),
        _ => resp,
    }
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
    Token {
        tenant: String,
    },
    OpenIdConfig {
        tenant: String,
    },
    Jwks {
        tenant: String,
    },
    VmGet {
        sub: String,
        rg: String,
        vm: String,
    },
    VmssGet {
        sub: String,
        rg: String,
        vmss: String,
    },
    VmssVmGet {
        sub: String,
        rg: String,
        vmss: String,
        instance: String,
    },
    WatchersList {
        sub: String,
    },
    CaptureList {
        sub: String,
        rg: String,
        nw: String,
    },
    Capture {
        op: &'static str,
        sub: String,
        rg: String,
        nw: String,
        name: String,
    },
    AsyncOperation {
        sub: String,
        id: String,
    },
    OperationResult {
        sub: String,
        id: String,
    },
    /// A blob, path style; names decoded.
    Blob {
        account: String,
        container: String,
        blob: String,
    },
    UserDelegationKey {
        account: String,
    },
    Unknown,
}

impl Route {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Route::Token { .. } => routes::TOKEN,
            Route::OpenIdConfig { .. } => routes::OPENID_CONFIGURATION,
            Route::Jwks { .. } => routes::JWKS,
            Route::VmGet { .. } => routes::VM_GET,
            Route::VmssGet { .. } => routes::VMSS_GET,
            Route::VmssVmGet { .. } => routes::VMSS_VM_GET,
            Route::WatchersList { .. } => routes::WATCHERS_LIST,
            Route::CaptureList { .. } => routes::CAPTURE_LIST,
            Route::Capture { op, .. } => op,
            Route::AsyncOperation { .. } => routes::ASYNC_OPERATION,
            Route::OperationResult { .. } => routes::OPERATION_RESULT,
            Route::Blob { .. } => routes::BLOB_GET,
            Route::UserDelegationKey { .. } => routes::USER_DELEGATION_KEY,
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
        [tenant, "v2.0", ".well-known", "openid-configuration"] if m == "GET" && !tenant.is_empty() => {
            Route::OpenIdConfig { tenant: tenant.to_string() }
        }
        [tenant, "discovery", "v2.0", "keys"] if m == "GET" && !tenant.is_empty() => {
            Route::Jwks { tenant: tenant.to_string() }
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
        [a, sub, b, rg, c, ns, t, vmss, rest @ ..]
            if m == "GET"
                && eq(a, "subscriptions")
                && eq(b, "resourceGroups")
                && eq(c, "providers")
                && eq(ns, "Microsoft.Compute")
                && eq(t, "virtualMachineScaleSets") =>
        {
            let (sub, rg, vmss) = (sub.to_string(), rg.to_string(), vmss.to_string());
            match rest {
                [] => Route::VmssGet { sub, rg, vmss },
                [v, instance] if eq(v, "virtualMachines") => {
                    Route::VmssVmGet { sub, rg, vmss, instance: instance.to_string() }
                }
                _ => Route::Unknown,
            }
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
        [a, sub, c, ns, l, _loc, o, id]
            if m == "GET"
                && eq(a, "subscriptions")
                && eq(c, "providers")
                && eq(ns, "Microsoft.Network")
                && eq(l, "locations") =>
        {
            if eq(o, "operations") {
                Route::AsyncOperation { sub: sub.to_string(), id: id.to_string() }
            } else if eq(o, "operationResults") {
                Route::OperationResult { sub: sub.to_string(), id: id.to_string() }
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
        _ => classify_blob(req, &s),
    }
}

/// Blob service routes (path style), for what no ARM route took.
fn classify_blob(req: &Request, s: &[&str]) -> Route {
    let account_ok =
        |a: &str| (3..=24).contains(&a.len()) && a.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    match (req.method.as_str(), s) {
        ("POST", [account, ""] | [account])
            if account_ok(account)
                && req.query_param("restype").as_deref() == Some("service")
                && req.query_param("comp").as_deref() == Some("userdelegationkey") =>
        {
            Route::UserDelegationKey { account: account.to_string() }
        }
        ("GET", [account, container, blob @ ..])
            if account_ok(account)
                && !container.is_empty()
                && !blob.is_empty()
                && blob.iter().all(|p| !p.is_empty()) =>
        {
            Route::Blob { account: account.to_string(), container: container.to_string(), blob: blob.join("/") }
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
