//! A deliberately tiny HTTP/1.1 client for the tests: one request per connection, read to
//! EOF, so a connection the emulator drops shows up as `None` (no client-side retries).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use azure_emulator::{Emulator, OsType, VmSpec, WatcherSpec};
use serde_json::Value;

pub const SUB: &str = "00000000-0000-0000-0000-000000000001";

pub fn vm_id(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/{name}")
}

pub fn watcher_path(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/{name}")
}

pub fn storage_id() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/pcstore")
}

pub fn capture_path(name: &str) -> String {
    format!("{}/packetCaptures/{name}", watcher_path("NetworkWatcher_westus"))
}

/// A parsed answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// Sends one request; `None` when the server closed without answering.
pub fn send(emu: &Emulator, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Option<Answer> {
    let mut stream = TcpStream::connect(emu.local_addr()).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        emu.local_addr(),
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(body).expect("write body");
    let mut raw = Vec::new();
    // A reset counts as "no answer", like EOF before any byte.
    let _ = stream.read_to_end(&mut raw);
    if raw.is_empty() {
        return None;
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head end");
    let head = String::from_utf8(raw[..split].to_vec()).expect("utf8 head");
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    Some(Answer { status, headers, body: raw[split + 4..].to_vec() })
}

pub fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish().into_bytes()
}

/// The standard good token request.
pub fn token_body(emu: &Emulator) -> Vec<u8> {
    let c = emu.config();
    form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &c.client_id),
        ("client_secret", &c.client_secret),
        ("scope", &format!("{}/.default", emu.base_url())),
    ])
}

pub fn token(emu: &Emulator) -> String {
    let path = format!("/{}/oauth2/v2.0/token", emu.config().tenant_id);
    let a = send(emu, "POST", &path, &[("Content-Type", "application/x-www-form-urlencoded")], &token_body(emu))
        .expect("answer");
    assert_eq!(a.status, 200);
    a.json()["access_token"].as_str().expect("token").to_string()
}

pub fn arm(emu: &Emulator, tok: &str, method: &str, path: &str, api: &str, body: Option<&Value>) -> Option<Answer> {
    let auth = format!("Bearer {tok}");
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    send(
        emu,
        method,
        &format!("{path}?api-version={api}"),
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        &body,
    )
}

/// An emulator with a Linux VM `vm1` (agent) and `vm2` (no agent) in westus, a Windows VM
/// `vm3` in eastus, and watchers in westus and eastus.
pub fn seeded() -> Emulator {
    let emu = Emulator::start("127.0.0.1:0").expect("start");
    emu.add_vm(VmSpec::new(&vm_id("vm1"), "West US", OsType::Linux)).expect("vm1");
    emu.add_vm(VmSpec::new(&vm_id("vm2"), "westus", OsType::Linux).with_extension(false)).expect("vm2");
    emu.add_vm(VmSpec::new(&vm_id("vm3"), "eastus", OsType::Windows)).expect("vm3");
    emu.add_watcher(WatcherSpec::new(&watcher_path("NetworkWatcher_westus"), "westus")).expect("w1");
    emu.add_watcher(WatcherSpec::new(&watcher_path("NetworkWatcher_eastus"), "East US")).expect("w2");
    emu
}

pub fn capture_body(target: &str, time_limit: u64) -> Value {
    serde_json::json!({
        "properties": {
            "target": target,
            "targetType": "AzureVM",
            "bytesToCapturePerPacket": 0,
            "totalBytesPerSession": 1073741824u64,
            "timeLimitInSeconds": time_limit,
            "storageLocation": {"storageId": storage_id()},
            "filters": [{"protocol": "TCP", "localPort": "443"}]
        }
    })
}

/// Reads a sample from `testdata/azure-samples`, located relative to this crate.
pub fn sample(rel: &str) -> Value {
    let path = format!("{}/../../testdata/azure-samples/{rel}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("sample JSON")
}

pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}
