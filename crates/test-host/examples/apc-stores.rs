//! Per-store costs (issue 9): Azure calls and key-value operations (and of them writes) per
//! request, each beside the budget for the path, and
//! requests/s, for the real release `.wasm` on each platform's store: in memory with a strict
//! compare-and-swap (Spin's SQLite store as `spin up` runs it), a real `redis-server` shared by
//! 3 replicas (SpinKube), and the Akamai-like replicated store without atomics (3 replicas).
//! Run by `scripts/bench.sh` (or `cargo run --release -p test-host --example apc-stores`).
//!
//! The baseline is a trivial component (`crates/trivial-component`: answers `200 ok`, touches no
//! variable, store or outbound host) served by as many replicas on the same store in the same
//! run, and `GET /healthz` of this component (variables only). The trivial `.wasm` is
//! `APC_TRIVIAL_WASM`, by default `trivial_component.wasm` beside `APC_WASM` (scripts/bench.sh
//! builds both). Sizes: `APC_STORES_DUPLICATES` (default 1000), `APC_STORES_NEW` (new alerts
//! on distinct VMs per kind, region in the payload and looked up, default 150 each, at most 195;
//! `max_active_captures` and `max_records` are raised so each can start a capture),
//! `APC_STORES_PARALLEL` (in flight, default 50).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/fleet/mod.rs"]
mod fleet;

use std::collections::BTreeMap;
use std::time::Instant;

use common::*;
use fleet::{Fleet, Platform};
use test_host::{HostOptions, Replicas, Request, Response};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn row(what: &str, value: impl std::fmt::Display) {
    println!("| {what:<56} | {value:>34} |");
}

fn header(what: &str, value: &str) {
    println!("| {what:<56} | {value:>34} |");
    println!("|{}|{}|", "-".repeat(58), "-".repeat(36));
}

/// One request's cost as a row: Azure calls (which ones), KV operations, of them writes, and
/// issue 9's budget for the path.
fn cost(f: &Fleet, label: &str, budget: &str, req: Request) -> Response {
    let c = f.cost(req);
    let calls = if c.calls.is_empty() { "-".to_string() } else { c.calls.join(", ") };
    println!(
        "| {:<56} | {:>5} | {:>6} | {:>6} | {:<26} | {}",
        format!("{label} ({})", c.response.status),
        c.calls.len(),
        c.kv.total(),
        c.kv.writes(),
        budget,
        calls
    );
    if c.response.status >= 300 {
        println!("|   answer: {}", c.response.text().chars().take(300).collect::<String>());
    }
    c.response
}

/// Requests/s of `requests`, spread round-robin over the replicas, and the answers by status
/// and decision (or skip reason).
fn rate(replicas: &Replicas, requests: Vec<Request>, in_flight: usize) -> (f64, BTreeMap<String, usize>) {
    let n = requests.len();
    let requests = requests.into_iter().map(|r| r.header("x-api-key", KEY)).collect();
    let t = Instant::now();
    let answers = replicas.deliver_in_flight(requests, in_flight);
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

/// The rate, with the answers (status and decision or skip reason) when they differ or are not
/// 2xx (then the rate is not the path it names).
fn show_rate(label: &str, (rate, statuses): (f64, BTreeMap<String, usize>)) {
    if statuses.len() == 1 && statuses.keys().all(|k| k.starts_with('2')) {
        row(label, format!("{rate:.0}"));
    } else {
        row(label, format!("{rate:.0}, statuses {statuses:?}"));
    }
}

/// The most new alerts of each kind that fit in `max_records`' upper bound of 400.
const MAX_NEW: usize = (400 - 10) / 2;

fn bench(name: &str, platform: Platform, replicas: usize) {
    let duplicates = env("APC_STORES_DUPLICATES", 1000);
    // Both kinds of new alert, and the 3 of the cost table, must fit in `max_records` (at most
    // 400), or the later ones are skipped and the rate is not the start path's.
    let new_alerts = env("APC_STORES_NEW", 150).min(MAX_NEW);
    let parallel = env("APC_STORES_PARALLEL", 50);
    println!("\n## {name}, {replicas} replica(s)\n");
    let (store, redis) = platform.store();
    // Room for every new alert to start a capture, so the new-alert rate is that path's.
    let room = (2 * new_alerts + 10).to_string();
    let extra = [("max_active_captures", room.as_str()), ("max_records", room.as_str())];
    let f = match Fleet::on_store(store, redis, replicas, 2 * new_alerts + 3, &extra) {
        Ok(f) => f,
        Err(e) => {
            println!("not run: {e}");
            return;
        }
    };
    println!(
        "| {:<56} | {:>5} | {:>6} | {:>6} | {:<26} | Azure routes called",
        "request (status)", "calls", "KV ops", "writes", "issue 9 budget"
    );
    println!("|{}|-------|--------|--------|{}|", "-".repeat(58), "-".repeat(28));
    cost(&f, "POST /poll, empty store (idle)", "0 calls, <= 2 ops", Request::post("/poll", Vec::new()));
    let first = common_alert("vm-1", "stores-cold");
    cost(&f, "POST /alerts cold (fresh store, region looked up)", "<= 4 calls", Request::post_json("/alerts", &first));
    // The classic schema carries resourceRegion: the budget's warm alert. The common schema
    // does not, so a VM seen for the first time costs its GET as well.
    let warm = classic_alert("vm-2", "stores-warm");
    cost(
        &f,
        "POST /alerts warm, region in the payload",
        "1 call, <= 6 ops, <= 3 w",
        Request::post_json("/alerts", &warm),
    );
    cost(
        &f,
        "POST /alerts warm, region looked up (VM GET)",
        "none (2 calls by design)",
        Request::post_json("/alerts", &common_alert("vm-3", "stores-lookup")),
    );
    cost(&f, "POST /alerts duplicate", "0 calls, <= 2 ops, 0 w", Request::post_json("/alerts", &warm));
    cost(
        &f,
        "POST /poll, nothing due, 3 captures active",
        "none (1 + 1 read/active)",
        Request::post("/poll", Vec::new()),
    );
    cost(&f, "GET /healthz", "", Request::get("/healthz"));

    // The trivial component on as many replicas, the same store and the same variables.
    let trivial_wasm = std::env::var_os("APC_TRIVIAL_WASM")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| wasm_path().with_file_name("trivial_component.wasm"));
    let trivial = Replicas::start(
        HostOptions {
            wasm: trivial_wasm.clone(),
            manifest: repo_root().join("spin.toml"),
            variables: variables(&f.emu, &f.sink, &[]),
            store: Some(f.replicas.store().clone()),
            ..Default::default()
        },
        replicas,
        8,
    );

    println!();
    header(&format!("requests/s, {parallel} in flight"), "value");
    let floor = match &trivial {
        Ok(t) => Some(rate(t, (0..duplicates).map(|_| Request::get("/")).collect(), parallel)),
        Err(e) => {
            row("trivial component", format!("not run ({}): {e}", trivial_wasm.display()));
            None
        }
    };
    let healthz = rate(&f.replicas, (0..duplicates).map(|_| Request::get("/healthz")).collect(), parallel);
    let dup = rate(&f.replicas, (0..duplicates).map(|_| Request::post_json("/alerts", &first)).collect(), parallel);
    // New alerts on VMs not seen before: vm-4 … with the region in the payload (the budget's
    // warm path, 1 call), then others whose region is looked up (2 calls).
    let vm = |i: usize| format!("vm-{}", i + 4);
    let known = rate(
        &f.replicas,
        (0..new_alerts).map(|i| Request::post_json("/alerts", &classic_alert(&vm(i), &format!("known-{i}")))).collect(),
        parallel,
    );
    let lookup = rate(
        &f.replicas,
        (new_alerts..2 * new_alerts)
            .map(|i| Request::post_json("/alerts", &common_alert(&vm(i), &format!("lookup-{i}"))))
            .collect(),
        parallel,
    );
    let healthz_after = rate(&f.replicas, (0..duplicates).map(|_| Request::get("/healthz")).collect(), parallel);
    if let Some(floor) = floor {
        show_rate(&format!("trivial component, GET / ({duplicates} requests)"), floor);
    }
    show_rate(&format!("GET /healthz of this component ({duplicates} requests)"), healthz);
    show_rate(&format!("POST /alerts duplicate ({duplicates} requests)"), dup);
    show_rate(&format!("POST /alerts new alert, region in payload ({new_alerts} VMs)"), known);
    show_rate(&format!("POST /alerts new alert, region looked up ({new_alerts} VMs)"), lookup);
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
