//! Shared harness of the end-to-end tests: the Azure emulator on loopback, the wasmtime host
//! serving the real release `.wasm` with `spin.toml`, and a notification sink.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_emulator::{Emulator, OsType, VmSpec, WatcherSpec};
use serde_json::{Value, json};
use test_host::{Host, HostOptions, Request, Response};

pub const SUB: &str = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
pub const KEY: &str = "e2e-key-0123456789abcdef";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn shared_samples() -> PathBuf {
    repo_root().join("testdata/azure-samples")
}

/// The release component. The end-to-end tests need it: scripts/test.sh builds it first.
pub fn wasm_path() -> PathBuf {
    let p = std::env::var_os("APC_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/wasm32-wasip2/release/alert_packet_capture.wasm"));
    assert!(
        p.exists(),
        "{} is absent: run scripts/test.sh (it builds the release .wasm first) or set APC_WASM",
        p.display()
    );
    p
}

pub fn vm_id(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/{name}")
}

pub fn storage_id() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Storage/storageAccounts/capstore")
}

/// A notification receiver on loopback that records every POST and can fail the first few.
#[derive(Clone)]
pub struct Sink {
    pub url: String,
    pub origin: String,
    received: Arc<Mutex<Vec<(u16, Value)>>>,
    fail_first: Arc<AtomicUsize>,
}

impl Sink {
    pub fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sink = Sink {
            url: format!("http://{addr}/hooks/apc"),
            origin: format!("http://{addr}"),
            received: Arc::default(),
            fail_first: Arc::default(),
        };
        let s = sink.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut len = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let failing = s.fail_first.load(Ordering::SeqCst);
                let status = if failing > 0 {
                    s.fail_first.store(failing - 1, Ordering::SeqCst);
                    503
                } else {
                    200
                };
                let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                s.received.lock().unwrap().push((status, value));
                let _ = write!(stream, "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        sink
    }

    /// Answer 503 to the next `n` deliveries.
    pub fn fail_next(&self, n: usize) {
        self.fail_first.store(n, Ordering::SeqCst);
    }

    /// Every delivery, with the status answered.
    pub fn all(&self) -> Vec<(u16, Value)> {
        self.received.lock().unwrap().clone()
    }

    /// Bodies of the deliveries answered 200.
    pub fn delivered(&self) -> Vec<Value> {
        self.all().into_iter().filter(|(s, _)| *s == 200).map(|(_, v)| v).collect()
    }
}

pub struct World {
    pub emu: Emulator,
    pub host: Host,
    pub sink: Sink,
}

pub fn variables(emu: &Emulator, sink: &Sink, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let base = emu.base_url();
    let mut vars: HashMap<String, String> = [
        ("azure_tenant_id", azure_emulator::DEFAULT_TENANT_ID.to_string()),
        ("azure_client_id", azure_emulator::DEFAULT_CLIENT_ID.to_string()),
        ("azure_client_secret", azure_emulator::DEFAULT_CLIENT_SECRET.to_string()),
        ("azure_authority_host", base.clone()),
        ("azure_arm_endpoint", base.clone()),
        // The emulator's Blob service (path style) holds the capture files (issue 10).
        ("storage_blob_host", base),
        ("webhook_keys", KEY.to_string()),
        ("storage_account_id", storage_id()),
        ("notify_url", sink.url.clone()),
        ("notify_host", sink.origin.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    vars
}

/// The emulator on loopback with VMs `vm-1` … `vm-{vms}` (Linux, `westus`) and the region's
/// Network Watcher.
pub fn seeded_emulator(vms: usize) -> Emulator {
    let emu = Emulator::start("127.0.0.1:0").expect("emulator starts");
    // Captures write their files to the emulator's own Blob service, never to a real account.
    emu.set_emulator_storage_paths(true);
    for i in 1..=vms {
        emu.add_vm(VmSpec::new(&vm_id(&format!("vm-{i}")), "westus", OsType::Linux)).unwrap();
    }
    emu.add_watcher(WatcherSpec::new(
        &format!("/subscriptions/{SUB}/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/NetworkWatcher_westus"),
        "westus",
    ))
    .unwrap();
    emu
}

/// What a test does with the running app, whether it is one host ([`World`]) or several
/// replicas over one store (`fleet::Fleet`): authenticated requests, and Azure's side of them.
pub trait App {
    /// An authenticated request (to the next replica, where there are several).
    fn send(&self, req: Request) -> Response;
    /// The Azure emulator the app talks to.
    fn emulator(&self) -> &Emulator;

    fn alert(&self, body: &Value) -> (Response, Value) {
        let r = self.send(Request::post_json("/alerts", body));
        let v = r.json().unwrap_or(Value::Null);
        (r, v)
    }

    fn poll(&self) -> Value {
        let r = self.send(Request::post("/poll", Vec::new()));
        assert_eq!(r.status, 200, "{}", r.text());
        r.json().unwrap()
    }

    fn capture(&self, id: &str) -> Value {
        let r = self.send(Request::get(format!("/captures/{id}")));
        assert_eq!(r.status, 200, "{}", r.text());
        r.json().unwrap()
    }

    /// Calls the emulator saw, by route.
    fn calls(&self, route: &str) -> u64 {
        self.emulator().calls(route)
    }

    /// All calls the emulator saw.
    fn total_calls(&self) -> usize {
        self.emulator().journal().len()
    }
}

impl App for World {
    fn send(&self, req: Request) -> Response {
        self.host.request_blocking(req.header("x-api-key", KEY)).expect("the component answers")
    }

    fn emulator(&self) -> &Emulator {
        &self.emu
    }
}

impl World {
    /// The emulator with VMs `vm-1` … `vm-{vms}` and a watcher in `westus`, and the host.
    pub fn new(vms: usize, extra: &[(&str, &str)]) -> World {
        let extra: Vec<(String, String)> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self::build(vms, repo_root().join("spin.toml"), |_| extra.clone())
    }

    /// Like [`World::new`] with another manifest, and variables that may depend on the
    /// emulator's base URL.
    pub fn build(vms: usize, manifest: PathBuf, extra: impl Fn(&str) -> Vec<(String, String)>) -> World {
        let emu = seeded_emulator(vms);
        let sink = Sink::start();
        let host = Host::new(HostOptions {
            wasm: wasm_path(),
            manifest,
            variables: {
                let mut vars = variables(&emu, &sink, &[]);
                vars.extend(extra(&emu.base_url()));
                vars
            },
            ..Default::default()
        })
        .expect("the host loads spin.toml and the component");
        World { emu, host, sink }
    }

    /// Let `secs` pass for the component and for Azure.
    pub fn advance(&self, secs: i64) {
        self.host.clock().advance(secs);
        self.emu.advance_clock(Duration::from_secs(secs as u64));
    }
}

fn sample(rel: &str) -> Value {
    let text = std::fs::read_to_string(shared_samples().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// The common-schema sample made a fired alert on `vm` (no region in the payload).
pub fn common_alert(vm: &str, alert: &str) -> Value {
    common_alert_on(&vm_id(vm), alert)
}

/// The common-schema sample made a fired alert on any resource id (a VM, a scale set, one of
/// its instances), lower-cased as Azure Monitor sends `alertTargetIDs`.
pub fn common_alert_on(target_id: &str, alert: &str) -> Value {
    let mut v = sample("alerts/common.metric.vm.resolved.alerts-common-schema.json");
    let e = &mut v["data"]["essentials"];
    e["monitorCondition"] = json!("Fired");
    e["alertId"] = json!(format!("/subscriptions/{SUB}/providers/Microsoft.AlertsManagement/alerts/{alert}"));
    e["alertTargetIDs"] = json!([target_id.to_ascii_lowercase()]);
    e["alertRule"] = json!("tcp-segments-sent");
    v
}

/// The classic sample made an alert on `vm` in `westus` (region in the payload).
pub fn classic_alert(vm: &str, rule: &str) -> Value {
    let mut v = sample("alerts/classic.metric.website.alerts-webhooks.json");
    let c = &mut v["context"];
    c["resourceId"] = json!(vm_id(vm));
    c["resourceType"] = json!("Microsoft.Compute/virtualMachines");
    c["resourceRegion"] = json!("westus");
    c["subscriptionId"] = json!(SUB);
    c["id"] =
        json!(format!("/subscriptions/{SUB}/resourceGroups/rg-app/providers/microsoft.insights/alertrules/{rule}"));
    c["name"] = json!(rule);
    v
}

/// The non-common metric sample (a storage alert) made an alert on `vm`.
pub fn metric_alert(vm: &str, alert: &str) -> Value {
    let mut v = sample("alerts/noncommon.metric-static.storage.json");
    let c = &mut v["data"]["context"];
    c["resourceId"] = json!(vm_id(vm));
    c["resourceType"] = json!("Microsoft.Compute/virtualMachines");
    c["resourceName"] = json!(vm);
    c["resourceGroupName"] = json!("rg-app");
    c["subscriptionId"] = json!(SUB);
    c["id"] =
        json!(format!("/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Insights/metricAlerts/{alert}"));
    v
}

pub fn first_capture(v: &Value) -> String {
    v["captures"][0]["id"].as_str().unwrap_or_else(|| panic!("no capture in {v}")).to_string()
}

/// Reliability scenarios (issue 4), shared by tests/reliability.rs and examples/apc-bench.rs.
pub mod scenarios;

/// Is `path` a `.cap` file in the test storage account (`capstore`) on the emulator's Blob
/// service?
pub fn is_capstore_file(emu: &Emulator, path: &str) -> bool {
    path.starts_with(&format!("{}/capstore/", emu.base_url())) && path.ends_with(".cap")
}

/// Most `PUT`s a storm of deliveries of one alert may send on a store that shows writes at once
/// (memory, Redis). The create claim is a hint, not a lock (docs/STATE.md): measured 1 `PUT`
/// for 1,000 deliveries at full size on an idle machine (`APC_BENCH_ONLY=platforms
/// scripts/bench.sh`), but with the two cores busy a fourth request has got past it. Every
/// extra `PUT` meets the same name, so there is still one capture (asserted separately).
pub const STORM_PUTS_AT_MOST: u64 = 5;
