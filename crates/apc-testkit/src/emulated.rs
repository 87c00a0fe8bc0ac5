//! [`EmulatedApp`]: one component instance over [`apc_core::api::handle`] whose Azure is the
//! in-process `azure-emulator` (Entra ID, ARM and Blob storage, over loopback TCP), for flows
//! that need Azure to behave rather than be scripted (issue 10: capture files, user delegation
//! keys, SAS checks).
//!
//! Every outbound request is logged. Requests to the emulator's origin go to it; requests to
//! [`NOTIFY_HOST`] are notifications, answered `200` and kept; any other host is refused as
//! Spin's `allowed_outbound_hosts` would refuse it, and stays in the log so a test can assert
//! that no request went there.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use apc_core::api::{self, ApiRequest, ApiResponse};
use apc_core::ports::{Clock, HttpClient, Method, OutboundRequest, OutboundResponse, TransportError, World};
use azure_emulator::{Emulator, EmulatorConfig, OsType, VmSpec, WatcherSpec};
use serde_json::Value;

use crate::consts::{CLIENT_ID, KEY, NOTIFY_HOST, SECRET, SUB, T0, TENANT, vm_id};
use crate::kv::{MemKv, Staleness, StoreBehaviour};
use crate::{MapVars, TestClock};

/// The VM the emulator knows (`vm1` in `rg2`, `westus`, agent installed).
pub fn emulated_vm() -> String {
    vm_id("rg2", "vm1")
}

/// The transport: the emulator over TCP, a notification receiver, nothing else.
pub struct EmuHttp {
    base: String,
    addr: std::net::SocketAddr,
    log: RefCell<Vec<OutboundRequest>>,
}

impl EmuHttp {
    /// Every request sent so far.
    pub fn requests(&self) -> Vec<OutboundRequest> {
        self.log.borrow().clone()
    }
}

impl HttpClient for EmuHttp {
    fn send(&self, request: &OutboundRequest) -> Result<OutboundResponse, TransportError> {
        self.log.borrow_mut().push(request.clone());
        if request.url.starts_with(NOTIFY_HOST) {
            return Ok(OutboundResponse { status: 200, headers: Vec::new(), body: Vec::new() });
        }
        let Some(target) = request.url.strip_prefix(&self.base).filter(|t| t.starts_with('/')) else {
            return Err(TransportError::Denied(request.url.split('/').take(3).collect::<Vec<_>>().join("/")));
        };
        let headers: Vec<(&str, &str)> = request.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        raw_send(self.addr, request.method.as_str(), target, &headers, &request.body)
            .ok_or_else(|| TransportError::Connection("the emulator closed without answering".into()))
    }
}

/// One HTTP/1.1 request, one connection, read to EOF; `None` when nothing came back.
fn raw_send(
    addr: std::net::SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<OutboundResponse> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8(raw[..split].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    Some(OutboundResponse { status, headers, body: raw[split + 4..].to_vec() })
}

/// A component instance against the emulator: the emulator's clock and the component's move
/// together ([`EmulatedApp::advance`]).
pub struct EmulatedApp {
    /// The emulator (its control methods: scenarios, storage denial, …).
    pub emu: Emulator,
    /// The transport and its log.
    pub http: EmuHttp,
    /// The store.
    pub kv: MemKv,
    /// The component's clock, at [`T0`] to start with, like the emulator's.
    pub clock: TestClock,
    /// The variables: the base configuration with every Azure endpoint and the blob host on the
    /// emulator, whose `storagePath`s are path style on itself.
    pub vars: MapVars,
    requests: Cell<u64>,
}

impl EmulatedApp {
    /// A new emulator (the kit's tenant and credentials, clock at [`T0`], the VM of
    /// [`emulated_vm`] and the `westus` watcher) and a component on a store with `behaviour`.
    pub fn new(behaviour: StoreBehaviour) -> EmulatedApp {
        let config = EmulatorConfig {
            tenant_id: TENANT.to_string(),
            client_id: CLIENT_ID.to_string(),
            client_secret: SECRET.to_string(),
            clock_start: time::OffsetDateTime::from_unix_timestamp(T0).ok(),
            ..EmulatorConfig::default()
        };
        let emu = Emulator::start_with("127.0.0.1:0", config).expect("the emulator starts");
        emu.add_vm(VmSpec::new(&emulated_vm(), "westus", OsType::Linux)).expect("VM seeded");
        emu.add_watcher(WatcherSpec::new(
            &format!("/subscriptions/{SUB}/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/NetworkWatcher_westus"),
            "westus",
        ))
        .expect("watcher seeded");
        emu.set_emulator_storage_paths(true);
        let base = emu.base_url();
        let mut vars = crate::consts::base_vars();
        for name in ["azure_authority_host", "azure_arm_endpoint", "storage_blob_host"] {
            vars.set(name, &base);
        }
        let kv = match behaviour {
            // Replication catches up at each request boundary (the flows here wait between requests).
            StoreBehaviour::Eventual => MemKv::with_behaviour(behaviour).with_staleness(Staleness::Requests(1)),
            b => MemKv::with_behaviour(b),
        };
        let http = EmuHttp { addr: emu.local_addr(), base, log: RefCell::new(Vec::new()) };
        EmulatedApp { emu, http, kv, clock: TestClock::at(T0), vars, requests: Cell::new(0) }
    }

    /// Move both clocks forward by `secs`.
    pub fn advance(&self, secs: u64) {
        self.clock.advance(secs as i64);
        self.emu.advance_clock(Duration::from_secs(secs));
    }

    /// Handle one keyed request as the component would.
    pub fn call(&self, method: &str, path: &str, body: &[u8]) -> (ApiResponse, Value) {
        self.call_with(method, path, &[("x-api-key", KEY)], body)
    }

    /// Handle one request with a JSON content type and these headers (no key unless given):
    /// e.g. `[("authorization", "Bearer …")]` for an Entra ID token.
    pub fn call_with(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (ApiResponse, Value) {
        self.requests.set(self.requests.get() + 1);
        let mut all = vec![("content-type".to_string(), "application/json".to_string())];
        all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let req = ApiRequest {
            headers: all,
            body: body.to_vec(),
            request_id: format!("e-{}", self.requests.get()),
            ..crate::app::request(method, path)
        };
        self.kv.begin_request(self.clock.now());
        let world = World { http: &self.http, kv: &self.kv, clock: &self.clock };
        let resp = api::handle(&req, &self.vars, world);
        self.kv.end_request();
        // One request boundary more: an eventually consistent store has caught up by the next one.
        if self.kv.behaviour() == StoreBehaviour::Eventual {
            self.kv.begin_request(self.clock.now());
            self.kv.end_request();
        }
        let v = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        (resp, v)
    }

    /// `POST /alerts`.
    pub fn post_alert(&self, alert: &Value) -> (ApiResponse, Value) {
        self.call("POST", "/alerts", &serde_json::to_vec(alert).unwrap_or_default())
    }

    /// `POST /poll`.
    pub fn poll(&self) -> (ApiResponse, Value) {
        self.call("POST", "/poll", b"")
    }

    /// `GET /captures/{id}`.
    pub fn get_capture(&self, id: &str) -> Value {
        self.call("GET", &format!("/captures/{id}"), b"").1
    }

    /// The notifications sent so far, as JSON.
    pub fn notifications(&self) -> Vec<Value> {
        self.http
            .requests()
            .iter()
            .filter(|r| r.url.starts_with(NOTIFY_HOST) && r.method == Method::Post)
            .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
            .collect()
    }

    /// GET `url` (on the emulator) with no credentials but what it carries, as a person's
    /// browser would follow a download link.
    pub fn download(&self, url: &str) -> OutboundResponse {
        let target = url.strip_prefix(&self.emu.base_url()).unwrap_or_else(|| panic!("{url} is not on the emulator"));
        raw_send(self.emu.local_addr(), "GET", target, &[], &[]).expect("the emulator answers")
    }
}
