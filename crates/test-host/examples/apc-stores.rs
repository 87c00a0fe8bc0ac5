//! Per-store costs (issue 9): Azure calls and key-value reads/writes per request, and
//! requests/s, for the real release `.wasm` on each platform's store: in memory with a strict
//! compare-and-swap (Spin's SQLite store as `spin up` runs it), a real `redis-server` shared by
//! 3 replicas (SpinKube), and the Akamai-like replicated store without atomics (3 replicas).
//! Run by `scripts/bench.sh` (or `cargo run --release -p test-host --example apc-stores`).
//!
//! The baseline is `GET /healthz` on the same hosts in the same run (it reads variables only:
//! no KV, no outbound), standing in for a trivial component: building a second component
//! would add a crate and a wasm build for a number that differs from it only by the handler's
//! variable reads. Sizes: `APC_STORES_DUPLICATES` (default 1000), `APC_STORES_NEW` (new alerts
//! on distinct VMs, default 200; `max_active_captures` and `max_records` are raised so each
//! can start a capture), `APC_STORES_PARALLEL` (in flight, default 50).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/fleet/mod.rs"]
mod fleet;

use std::collections::BTreeMap;
use std::time::Instant;

use common::*;
use fleet::{Fleet, Platform};
use test_host::{Request, Response};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn row(what: &str, value: impl std::fmt::Display) {
    println!("| {what:<44} | {value:>34} |");
}

fn header(what: &str, value: &str) {
    println!("| {what:<44} | {value:>34} |");
    println!("|{}|{}|", "-".repeat(46), "-".repeat(36));
}

/// One request's cost: status, Azure calls (emulator journal), KV reads / writes.
fn cost(f: &Fleet, label: &str, req: Request) -> Response {
    let before = f.total_calls();
    let r = f.send(req);
    row(
        &format!("{label} ({})", r.status),
        format!("{} / {} / {}", f.total_calls() - before, r.stats.kv.reads(), r.stats.kv.writes()),
    );
    r
}

/// Requests/s of `requests`, spread round-robin over the replicas, and the answers by status
/// and decision (or skip reason).
fn rate(f: &Fleet, requests: Vec<Request>, in_flight: usize) -> (f64, BTreeMap<String, usize>) {
    let n = requests.len();
    let requests = requests.into_iter().map(|r| r.header("x-api-key", KEY)).collect();
    let t = Instant::now();
    let answers = f.replicas.deliver_in_flight(requests, in_flight);
    let secs = t.elapsed().as_secs_f64();
    let mut statuses = BTreeMap::new();
    for (_, r) in &answers {
        let key = match r {
            Ok(r) => {
                let v = r.json().unwrap_or_default();
                let why = v["results"][0]["skip_reason"].as_str().or(v["results"][0]["decision"].as_str());
                format!("{} {}", r.status, why.unwrap_or(""))
            }
            Err(_) => "host failed".to_string(),
        };
        *statuses.entry(key).or_insert(0) += 1;
    }
    (n as f64 / secs, statuses)
}

/// The rate, with the answers (status and decision or skip reason) when they differ (then the
/// rate is not only the path it names).
fn show_rate(label: &str, (rate, statuses): (f64, BTreeMap<String, usize>)) {
    if statuses.len() == 1 {
        row(label, format!("{rate:.0}"));
    } else {
        row(label, format!("{rate:.0}, statuses {statuses:?}"));
    }
}

fn bench(name: &str, platform: Platform, replicas: usize) {
    let duplicates = env("APC_STORES_DUPLICATES", 1000);
    let new_alerts = env("APC_STORES_NEW", 200);
    let parallel = env("APC_STORES_PARALLEL", 50);
    println!("\n## {name}, {replicas} replica(s)\n");
    let (store, redis) = platform.store();
    // Room for every new alert to start a capture, so the new-alert rate is that path's.
    let room = (new_alerts + 10).to_string();
    let extra = [("max_active_captures", room.as_str()), ("max_records", room.as_str())];
    let f = match Fleet::on_store(store, redis, replicas, new_alerts + 3, &extra) {
        Ok(f) => f,
        Err(e) => {
            println!("not run: {e}");
            return;
        }
    };
    header("request", "Azure calls / KV reads / KV writes");
    let first = common_alert("vm-1", "stores-cold");
    cost(&f, "POST /alerts cold (fresh store)", Request::post_json("/alerts", &first));
    cost(&f, "POST /alerts warm new alert (other VM)", Request::post_json("/alerts", &common_alert("vm-2", "w")));
    cost(&f, "POST /alerts duplicate", Request::post_json("/alerts", &first));
    cost(&f, "POST /poll idle (nothing due)", Request::post("/poll", Vec::new()));
    cost(&f, "GET /healthz", Request::get("/healthz"));

    println!();
    header(&format!("requests/s, {parallel} in flight"), "value");
    let healthz = rate(&f, (0..duplicates).map(|_| Request::get("/healthz")).collect(), parallel);
    let dup = rate(&f, (0..duplicates).map(|_| Request::post_json("/alerts", &first)).collect(), parallel);
    let fresh = rate(
        &f,
        (0..new_alerts)
            .map(|i| Request::post_json("/alerts", &common_alert(&format!("vm-{}", i + 3), &format!("new-{i}"))))
            .collect(),
        parallel,
    );
    let healthz_after = rate(&f, (0..duplicates).map(|_| Request::get("/healthz")).collect(), parallel);
    show_rate(&format!("GET /healthz (baseline, {duplicates})"), healthz);
    show_rate(&format!("POST /alerts duplicate ({duplicates})"), dup);
    show_rate(&format!("POST /alerts new alert, own VM ({new_alerts})"), fresh);
    show_rate("GET /healthz again (baseline drift)", healthz_after);
    let counts = f.replicas.store().counts();
    row("store: cas / answered cas-failed", format!("{} / {}", counts.cas, counts.cas_failed));
}

fn main() {
    let wasm = wasm_path();
    let size = std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
    println!("# alert-packet-capture per-store bench\n");
    println!("component: {} ({size} bytes)", wasm.display());
    println!("Azure calls from the emulator's journal; KV operations counted by the host for the request.");
    bench("In memory, strict CAS (Spin SQLite-like)", Platform::Memory, 1);
    bench("Real redis-server, Spin's Redis semantics (SpinKube)", Platform::Redis, 3);
    bench("Akamai-like: replicated (others' writes 1 request late), no atomics", Platform::AkamaiLike(1), 3);
}
