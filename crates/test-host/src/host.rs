//! The host: compiles the component once, then serves each request with a fresh instance,
//! as Spin does for WASI 0.2 HTTP components.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::kv::{Counters, KvCounts, KvStore, StoreKind};
use crate::logs::{LogBuffer, Stream};
use crate::manifest::{AllowedHost, Manifest, ManifestError};
use crate::outbound::{OutboundHooks, OutboundJournal};
use crate::spin::{SpinCtx, SpinState, SpinView};

/// Why the host could not start or could not serve a request.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The manifest or the variables are wrong.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The `.wasm` file could not be read.
    #[error("cannot read component {path}: {message}")]
    Wasm {
        /// Its path.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Compiling or linking the component failed (e.g. an import the host lacks).
    #[error("cannot load component: {0}")]
    Load(String),
    /// The request could not be built (bad method, path or header).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The guest trapped or never answered.
    #[error("guest failed: {0}")]
    Guest(String),
    /// The request took longer than [`HostOptions::request_timeout`].
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// The component imports an interface the platform (the store given) does not offer, so
    /// it cannot be instantiated there.
    #[error("cannot instantiate the component: it imports `{interface}`, which the {platform} does not offer")]
    MissingImport {
        /// The interface, e.g. `wasi:keyvalue/atomics@0.2.0-draft2`.
        interface: String,
        /// The platform, e.g. "Akamai-like store (as on Akamai Functions)".
        platform: String,
    },
}

fn load_err(e: impl std::fmt::Display) -> HostError {
    HostError::Load(format!("{e:#}"))
}

/// How to start a [`Host`].
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// The component's `.wasm` file.
    pub wasm: PathBuf,
    /// The `spin.toml` to read.
    pub manifest: PathBuf,
    /// Application variable values, as `SPIN_VARIABLE_<NAME>` would give them.
    pub variables: HashMap<String, String>,
    /// The component id to serve; `None` when the manifest has exactly one.
    pub component: Option<String>,
    /// Print every guest log line to stderr (also on when `TEST_HOST_ECHO=1`).
    pub echo_logs: bool,
    /// Give up on a request after this long (default 60 s).
    pub request_timeout: Option<Duration>,
    /// The store to serve from (default: a new in-memory store). Hosts given the same store
    /// share it, as replicas of one app share their platform's store.
    pub store: Option<KvStore>,
    /// The guests' wall clock (default: a new one). Replicas share one.
    pub clock: Option<crate::clock::TestClock>,
    /// Give this host its own wasmtime engine (a replica's own process), loaded from the
    /// compiled artifact the process already has, instead of the process-wide shared one.
    pub own_engine: bool,
}

/// An incoming request to deliver to the component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: http::Method,
    /// Path and query, e.g. `/webhook?code=k`.
    pub path_and_query: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: http::Method, path_and_query: impl Into<String>) -> Self {
        Self { method, path_and_query: path_and_query.into(), headers: Vec::new(), body: Vec::new() }
    }

    /// `GET path_and_query`.
    pub fn get(path_and_query: impl Into<String>) -> Self {
        Self::new(http::Method::GET, path_and_query)
    }

    /// `POST path_and_query` with a body.
    pub fn post(path_and_query: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self::new(http::Method::POST, path_and_query).body(body)
    }

    /// `POST` with a JSON body and `content-type: application/json`.
    pub fn post_json(path_and_query: impl Into<String>, json: &serde_json::Value) -> Self {
        Self::post(path_and_query, json.to_string()).header("content-type", "application/json")
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// What one request cost, counted by the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestStats {
    /// The request's id: its order over the host's life, from 0 (see logs and journal).
    pub request_id: u64,
    /// Key-value operations its instance made.
    pub kv: KvCounts,
    /// Outbound HTTP calls its instance attempted (denied ones included).
    pub outbound: u64,
    /// The instance's linear memory at its end, in bytes: every memory's initial size plus its
    /// growth. Linear memory never shrinks, so this is the request's peak.
    pub peak_memory_bytes: u64,
}

/// The component's answer, body collected whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers, in order (names lowercase).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// What the request cost.
    pub stats: RequestStats,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// The store data of one instance.
struct InstanceState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: OutboundHooks,
    spin: SpinState,
    memory: MemoryMeter,
}

/// Counts the linear memory an instance has: wasmtime asks the limiter before it creates a
/// memory (from 0 to its initial size) and before every `memory.grow`. Allows everything.
struct MemoryMeter {
    bytes: Arc<AtomicU64>,
}

impl wasmtime::ResourceLimiter for MemoryMeter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.bytes.fetch_add(desired.saturating_sub(current) as u64, Ordering::SeqCst);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

impl SpinView for InstanceState {
    fn spin_ctx(&mut self) -> SpinCtx<'_> {
        SpinCtx { state: &mut self.spin, table: &mut self.table }
    }
}

struct Shared {
    pre: ProxyPre<InstanceState>,
    manifest: Manifest,
    component_id: String,
    app_variables: BTreeMap<String, String>,
    component_variables: Arc<BTreeMap<String, String>>,
    allowed: Arc<Vec<AllowedHost>>,
    kv_labels: Arc<Vec<String>>,
    environment: Vec<(String, String)>,
    kv: KvStore,
    clock: crate::clock::TestClock,
    journal: OutboundJournal,
    logs: LogBuffer,
    next_request: AtomicU64,
    timeout: Duration,
    blocking_runtime: OnceLock<Result<tokio::runtime::Runtime, String>>,
}

/// A Spin stand-in serving one component. Cheap to clone (one `Arc`); `Send + Sync`.
#[derive(Clone)]
pub struct Host {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("component", &self.shared.component_id).finish_non_exhaustive()
    }
}

impl Host {
    /// Loads the manifest, resolves variables and allowed hosts (once, as Spin does at load),
    /// and compiles the component.
    pub fn new(options: HostOptions) -> Result<Self, HostError> {
        let manifest = Manifest::load(&options.manifest)?;
        let (component_id, spec) = manifest.component(options.component.as_deref())?;
        let component_id = component_id.to_string();
        let app_variables = manifest.resolve_variables(&options.variables)?;
        let component_variables = manifest.component_variables(&component_id, &app_variables)?;
        let allowed = manifest.allowed_hosts(&component_id, &app_variables)?;
        let kv_labels = spec.key_value_stores.clone();
        let environment = spec.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect();

        let kv = options.store.clone().unwrap_or_default();
        let (engine, component) = compile(&options.wasm, options.own_engine)?;
        if !kv.offers_atomics() {
            refuse_import(&engine, &component, crate::spin::ATOMICS_INTERFACE, kv.kind())?;
        }
        let mut linker = Linker::<InstanceState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(load_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(load_err)?;
        crate::spin::add_to_linker(&mut linker, kv.offers_atomics()).map_err(load_err)?;
        let pre = linker.instantiate_pre(&component).map_err(load_err)?;
        let pre = ProxyPre::new(pre).map_err(load_err)?;

        let echo = options.echo_logs || std::env::var("TEST_HOST_ECHO").is_ok_and(|v| v == "1");
        Ok(Self {
            shared: Arc::new(Shared {
                pre,
                manifest,
                component_id,
                app_variables,
                component_variables: Arc::new(component_variables),
                allowed: Arc::new(allowed),
                kv_labels: Arc::new(kv_labels),
                environment,
                kv,
                clock: options.clock.clone().unwrap_or_default(),
                journal: OutboundJournal::default(),
                logs: LogBuffer::new(echo),
                next_request: AtomicU64::new(0),
                timeout: options.request_timeout.unwrap_or(Duration::from_secs(60)),
                blocking_runtime: OnceLock::new(),
            }),
        })
    }

    /// The guests' wall clock, which tests can move forward.
    pub fn clock(&self) -> &crate::clock::TestClock {
        &self.shared.clock
    }

    /// The shared key-value store.
    pub fn kv(&self) -> &KvStore {
        &self.shared.kv
    }

    /// The journal of outbound calls.
    pub fn outbound(&self) -> &OutboundJournal {
        &self.shared.journal
    }

    /// The guests' log lines.
    pub fn logs(&self) -> &LogBuffer {
        &self.shared.logs
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.shared.manifest
    }

    /// The resolved application variables.
    pub fn app_variables(&self) -> &BTreeMap<String, String> {
        &self.shared.app_variables
    }

    /// The component's variables as the guest sees them.
    pub fn component_variables(&self) -> &BTreeMap<String, String> {
        &self.shared.component_variables
    }

    /// The allowed outbound hosts, resolved at load.
    pub fn allowed_hosts(&self) -> &[AllowedHost] {
        &self.shared.allowed
    }

    /// How many requests were started so far.
    pub fn requests_started(&self) -> u64 {
        self.shared.next_request.load(Ordering::SeqCst)
    }

    /// Delivers one request to a fresh instance and collects the answer. Must run inside a
    /// multi-threaded tokio runtime (or a current-thread one: nothing blocks a worker).
    pub async fn request(&self, request: Request) -> Result<Response, HostError> {
        let timeout = self.shared.timeout;
        match tokio::time::timeout(timeout, self.serve(request)).await {
            Ok(result) => result,
            Err(_) => Err(HostError::Timeout(timeout)),
        }
    }

    /// [`Self::request`] for tests without a runtime: runs on a runtime the host owns.
    /// Panics if called from inside an async context (tokio forbids nesting `block_on`).
    pub fn request_blocking(&self, request: Request) -> Result<Response, HostError> {
        let runtime = self.shared.blocking_runtime.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        });
        match runtime {
            Ok(rt) => rt.block_on(self.request(request)),
            Err(e) => Err(HostError::Load(format!("cannot start a tokio runtime: {e}"))),
        }
    }

    fn route_matches(&self, path: &str) -> Option<String> {
        self.shared
            .manifest
            .http_triggers
            .iter()
            .find(|t| t.component == self.shared.component_id && t.matches(path))
            .map(|t| t.route.clone())
    }

    async fn serve(&self, request: Request) -> Result<Response, HostError> {
        let shared = &self.shared;
        let request_id = shared.next_request.fetch_add(1, Ordering::SeqCst);
        let counters = Arc::new(Counters::default());
        let outbound = Arc::new(AtomicU64::new(0));
        let memory = Arc::new(AtomicU64::new(0));
        let stats = |counters: &Counters, outbound: &AtomicU64| RequestStats {
            request_id,
            kv: counters.snapshot(),
            outbound: outbound.load(Ordering::SeqCst),
            peak_memory_bytes: memory.load(Ordering::SeqCst),
        };

        let path = request.path_and_query.split('?').next().unwrap_or_default().to_string();
        let Some(route) = self.route_matches(&path) else {
            // Spin's router answers 404 without running any component.
            return Ok(Response {
                status: 404,
                headers: Vec::new(),
                body: b"Not Found".to_vec(),
                stats: stats(&counters, &outbound),
            });
        };
        let hyper_request = build_request(&request, &route, &path)?;

        let mut wasi = WasiCtx::builder();
        wasi.stdout(shared.logs.stream(request_id, Stream::Stdout))
            .stderr(shared.logs.stream(request_id, Stream::Stderr))
            .envs(&shared.environment)
            .wall_clock(shared.clock.clone());
        let state = InstanceState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHooks {
                allowed: shared.allowed.clone(),
                journal: shared.journal.clone(),
                logs: shared.logs.clone(),
                request_id,
                count: outbound.clone(),
            },
            spin: SpinState {
                kv: shared.kv.session_with(counters.clone()),
                kv_labels: shared.kv_labels.clone(),
                variables: shared.component_variables.clone(),
            },
            memory: MemoryMeter { bytes: memory.clone() },
        };
        let mut store = Store::new(shared.pre.engine(), state);
        store.limiter(|s| &mut s.memory);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, hyper_request)
            .map_err(|e| HostError::BadRequest(format!("{e:#}")))?;
        let out =
            store.data_mut().http().new_response_outparam(sender).map_err(|e| HostError::Guest(format!("{e:#}")))?;
        let pre = shared.pre.clone();

        // The guest runs in its own task: it may go on writing the body (or working) after
        // it has set the response head.
        let task = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
        });

        let head = receiver.await;
        let (status, headers, body) = match head {
            Ok(Ok(response)) => {
                let (parts, body) = response.into_parts();
                let body = body
                    .collect()
                    .await
                    .map_err(|e| HostError::Guest(format!("response body failed: {e:?}")))?
                    .to_bytes();
                let headers = parts
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                    .collect();
                (parts.status.as_u16(), headers, body.to_vec())
            }
            Ok(Err(code)) => {
                return Err(HostError::Guest(format!("guest answered with an error code: {code:?}")));
            }
            Err(_) => {
                // The outparam was dropped unset: the task says why.
                let why = match task.await {
                    Ok(Ok(())) => "guest returned without setting a response".to_string(),
                    Ok(Err(e)) => format!("{e:?}"),
                    Err(e) => format!("guest task failed: {e}"),
                };
                return Err(HostError::Guest(why));
            }
        };
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(HostError::Guest(format!("{e:?}"))),
            Err(e) => return Err(HostError::Guest(format!("guest task failed: {e}"))),
        }
        Ok(Response { status, headers, body, stats: stats(&counters, &outbound) })
    }
}

/// Refuses a component that imports `interface` (or any version of it) when the platform
/// lacks it, naming both, before linking would fail with a less direct message.
fn refuse_import(engine: &Engine, component: &Component, interface: &str, kind: StoreKind) -> Result<(), HostError> {
    let unversioned = interface.split('@').next().unwrap_or(interface);
    let imported = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .find(|name| name.split('@').next() == Some(unversioned));
    match imported {
        Some(name) => Err(HostError::MissingImport {
            interface: name,
            platform: match kind {
                StoreKind::AkamaiLike => "Akamai-like store (as on Akamai Functions)",
                StoreKind::Memory | StoreKind::Redis => "store",
            }
            .to_string(),
        }),
        None => Ok(()),
    }
}

/// The process-wide engine, and the latest compiled component with its serialized artifact.
type Compiled = (Engine, HashMap<Vec<u8>, (Component, Vec<u8>)>);

fn engine_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config
}

/// Compiled components, by file contents: tests start many hosts on the same `.wasm`, and
/// compiling it (seconds in a debug build) once per process is enough. With `own_engine`, a
/// new engine loads the artifact already compiled (milliseconds), as another process would.
fn compile(path: &std::path::Path, own_engine: bool) -> Result<(Engine, Component), HostError> {
    static CACHE: Mutex<Option<Compiled>> = Mutex::new(None);
    let bytes =
        std::fs::read(path).map_err(|e| HostError::Wasm { path: path.to_path_buf(), message: e.to_string() })?;
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let (engine, components) = match &mut *cache {
        Some(entry) => entry,
        empty => empty.insert((Engine::new(&engine_config()).map_err(load_err)?, HashMap::new())),
    };
    let (component, artifact) = match components.get(&bytes) {
        Some(found) => found.clone(),
        None => {
            let component = Component::new(engine, &bytes).map_err(load_err)?;
            let artifact = component.serialize().map_err(load_err)?;
            // Keep only the latest build: a rebuilt .wasm replaces the old one.
            components.clear();
            components.insert(bytes, (component.clone(), artifact.clone()));
            (component, artifact)
        }
    };
    if !own_engine {
        return Ok((engine.clone(), component));
    }
    drop(cache);
    let own = Engine::new(&engine_config()).map_err(load_err)?;
    // SAFETY: `artifact` was produced just above by `Component::serialize` in this process,
    // with the same engine configuration, and is not changed in between.
    let component = unsafe { Component::deserialize(&own, &artifact) }.map_err(load_err)?;
    Ok((own, component))
}

/// The request as Spin hands it to a component: an absolute URI on the listener's address,
/// plus Spin's informational headers.
fn build_request(request: &Request, route: &str, path: &str) -> Result<http::Request<Full<Bytes>>, HostError> {
    const AUTHORITY: &str = "127.0.0.1:3000";
    let bad = |e: &dyn std::fmt::Display| HostError::BadRequest(e.to_string());
    if !request.path_and_query.starts_with('/') {
        return Err(HostError::BadRequest(format!("path {:?} must start with '/'", request.path_and_query)));
    }
    let full_url = format!("http://{AUTHORITY}{}", request.path_and_query);
    let base = route.strip_suffix("/...").unwrap_or(route);
    let path_info = path.strip_prefix(base).unwrap_or("");
    let mut builder =
        http::Request::builder().method(request.method.clone()).uri(full_url.as_str()).header("host", AUTHORITY);
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder = builder
        .header("spin-full-url", full_url.as_str())
        .header("spin-path-info", path_info)
        .header("spin-matched-route", route)
        .header("spin-raw-component-route", route)
        .header("spin-component-route", base)
        .header("spin-base-path", "/")
        .header("spin-client-addr", "127.0.0.1:49152");
    builder.body(Full::new(Bytes::from(request.body.clone()))).map_err(|e| bad(&e))
}
