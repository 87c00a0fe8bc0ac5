//! Full-size reliability runs (issue 4) and per-request costs, through the real release `.wasm`
//! in the test host and the Azure emulator. Run by `scripts/bench.sh`; prints a table.
//!
//! Sizes come from the environment: `APC_BENCH_STORM` (deliveries of one alert, default 1000),
//! `APC_BENCH_ALERTS`/`APC_BENCH_VMS` (fault run, 200/50), `APC_BENCH_SOAK` (10000),
//! `APC_BENCH_RECORDS` (soak max_records, 200), `APC_BENCH_SEED`, `APC_BENCH_SUMMARY_RUNS` (11).
//! `APC_BENCH_ONLY=summary` runs only the capture-summary section (issue 10).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use azure_emulator::pcap::Scenario;

use common::scenarios::*;
use common::*;
use test_host::{CasSemantics, Request};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn row(what: &str, value: impl std::fmt::Display) {
    println!("| {what:<58} | {value:>28} |");
}

/// Requests/s of `n` copies of `make()`, `parallel` at a time.
fn rate(w: &World, n: usize, parallel: usize, make: impl Fn() -> Request) -> f64 {
    let rt = runtime();
    let reqs: Vec<Request> = (0..n).map(|_| make().header("x-api-key", KEY)).collect();
    let reqs = std::sync::Arc::new(reqs);
    let t = Instant::now();
    let statuses = rt.block_on(bounded(parallel, n, |i| {
        let host = w.host.clone();
        let reqs = reqs.clone();
        async move { host.request(reqs[i].clone()).await.map(|r| r.status).unwrap_or(0) }
    }));
    let secs = t.elapsed().as_secs_f64();
    assert!(statuses.iter().all(|s| (200..300).contains(s)), "non-2xx during a rate run");
    n as f64 / secs
}

fn costs() {
    println!("\n## Cost per request (one fresh world; ARM calls from the emulator's journal)\n");
    println!("| {:<58} | {:>28} |", "request", "ARM calls / KV ops / outbound");
    println!("|{}|{}|", "-".repeat(60), "-".repeat(30));
    let w = World::new(3, &[("capture_time_limit_seconds", "60")]);
    let measure = |label: &str, req: Request| {
        let before = w.total_calls();
        let r = w.send(req);
        row(
            &format!("{label} ({})", r.status),
            format!("{} / {} / {}", w.total_calls() - before, r.stats.kv.total(), r.stats.outbound),
        );
    };
    let a1 = common_alert("vm-1", "cost-1");
    measure("POST /alerts cold (token, VM, watchers, PUT)", Request::post_json("/alerts", &a1));
    measure("POST /alerts duplicate", Request::post_json("/alerts", &a1));
    measure("POST /alerts warm, other VM", Request::post_json("/alerts", &common_alert("vm-2", "cost-2")));
    measure("POST /poll, nothing due", Request::post("/poll", Vec::new()));
    w.advance(31);
    measure("POST /poll, 2 running captures due", Request::post("/poll", Vec::new()));
    poll_until_idle(&w, 60, 20);
    measure(
        "POST /alerts warm, same VM again (region known)",
        Request::post_json("/alerts", &common_alert("vm-1", "cost-3")),
    );
    measure("GET /healthz", Request::get("/healthz"));

    println!("\n## Handler vs host: requests/s side by side, 2,000 each, 50 at a time\n");
    println!("Baseline: GET /healthz reads variables only (no KV, no outbound), so its rate is the");
    println!("host's own cost (instantiate + HTTP plumbing). A duplicate POST /alerts is the warm");
    println!("webhook path (parse, KV reads, index CAS decision); the difference is the handler.\n");
    let hz = rate(&w, 2000, 50, || Request::get("/healthz"));
    let dup = rate(&w, 2000, 50, || Request::post_json("/alerts", &a1));
    let hz2 = rate(&w, 2000, 50, || Request::get("/healthz"));
    println!("| {:<58} | {:>28} |", "measure", "value");
    println!("|{}|{}|", "-".repeat(60), "-".repeat(30));
    row("GET /healthz requests/s (before, after)", format!("{hz:.0}, {hz2:.0}"));
    row("duplicate POST /alerts requests/s", format!("{dup:.0}"));
    let host_ms = 1000.0 / ((hz + hz2) / 2.0) * 50.0;
    let alert_ms = 1000.0 / dup * 50.0;
    row("per-request latency at 50 in flight, host / alert (ms)", format!("{host_ms:.2} / {alert_ms:.2}"));
    row("handler's own share of a warm alert", format!("{:.0} %", 100.0 * (alert_ms - host_ms).max(0.0) / alert_ms));
}

/// One capture whose file is `file`, summarised by the `.wasm` in the poll that finishes it:
/// (bytes the summary read, wall time of that poll, its instance's peak linear memory, a note
/// when reading stopped early).
fn summary_poll(file: &[u8]) -> (u64, Duration, u64, Option<String>) {
    let w = World::build(1, repo_root().join("spin.toml"), |base| {
        vec![
            ("storage_blob_host".to_string(), base.to_string()),
            (
                "storage_account_id".to_string(),
                format!(
                    "/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Storage/storageAccounts/pcstore"
                ),
            ),
        ]
    });
    w.emu.set_emulator_storage_paths(true);
    let (r, v) = w.alert(&classic_alert("vm-1", "bench-summary"));
    assert_eq!(r.status, 202, "{v}");
    w.emu.set_capture_file_override(&first_capture(&v), Some(file.to_vec()));
    w.advance(400);
    let t = Instant::now();
    let poll = w.send(Request::post("/poll", Vec::new()));
    let elapsed = t.elapsed();
    assert_eq!(poll.status, 200, "{}", poll.text());
    let n = w.sink.delivered().pop().expect("the poll that finished the capture notified it");
    let s = &n["traffic_summary"];
    let seen = s["file"]["bytes_seen"].as_u64().unwrap_or_else(|| panic!("no summary: {n}"));
    let note = n["capture"]["summary_note"].as_str().map(str::to_string);
    (seen, elapsed, poll.stats.peak_memory_bytes, note)
}

/// Summary throughput and memory (issue 10): an 8 MiB capture against a tiny one, each
/// summarised in the poll that finishes it, `APC_BENCH_SUMMARY_RUNS` times (median).
fn summary() {
    let runs = env("APC_BENCH_SUMMARY_RUNS", 11).max(1);
    let big = azure_emulator::pcap::scaled_capture_file(Scenario::HeavyTalker, 1_700_000_000, 8 * 1024 * 1024);
    // The same traffic, one round of it (297 KiB).
    let tiny = azure_emulator::pcap::capture_file(Scenario::HeavyTalker, 1_700_000_000);
    println!(
        "\n## Capture summary: the poll that finishes a capture reads and summarises its file ({runs} runs, median)\n"
    );
    println!("| {:<58} | {:>28} |", "measure", "value");
    println!("|{}|{}|", "-".repeat(60), "-".repeat(30));
    let mib = |b: u64| b as f64 / 1048576.0;
    let mut measured = Vec::new();
    for file in [&big, &tiny] {
        let label = format!("{} KiB", file.len() / 1024);
        let mut polls: Vec<(u64, Duration, u64, Option<String>)> = (0..runs).map(|_| summary_poll(file)).collect();
        polls.sort_by_key(|p| p.1);
        let (seen, time, memory, note) = polls[polls.len() / 2].clone();
        let peak = polls.iter().map(|p| p.2).max().unwrap_or(0);
        row(&format!("{label} file: bytes read of file size"), format!("{seen} of {}", file.len()));
        row(&format!("{label} file: poll wall time (ms)"), format!("{:.1}", time.as_secs_f64() * 1000.0));
        row(
            &format!("{label} file: MiB/s (bytes read / poll wall time)"),
            format!("{:.1}", mib(seen) / time.as_secs_f64()),
        );
        row(
            &format!("{label} file: peak linear memory (MiB, median / max)"),
            format!("{:.2} / {:.2}", mib(memory), mib(peak)),
        );
        if let Some(note) = note {
            row(&format!("{label} file: reading stopped early"), note);
        }
        measured.push((seen, time));
    }
    let ((big_seen, big_t), (tiny_seen, tiny_t)) = (measured[0], measured[1]);
    let extra = big_t.saturating_sub(tiny_t).as_secs_f64();
    if extra > 0.0 {
        row(
            "summary work alone: MiB/s (extra bytes / extra poll time)",
            format!("{:.1}", mib(big_seen - tiny_seen) / extra),
        );
    }
    let wasm = wasm_path();
    let size = std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
    row(".wasm size (bytes, MiB)", format!("{size}, {:.3}", size as f64 / 1048576.0));
}

fn main() {
    if std::env::var("APC_BENCH_ONLY").is_ok_and(|v| v == "summary") {
        summary();
        return;
    }
    let storm = env("APC_BENCH_STORM", 1000);
    let alerts = env("APC_BENCH_ALERTS", 200);
    let vms = env("APC_BENCH_VMS", 50);
    let soak_n = env("APC_BENCH_SOAK", 10_000);
    let records = env("APC_BENCH_RECORDS", 200);
    let seed = env("APC_BENCH_SEED", 4) as u64;
    let wasm = wasm_path();
    let size = std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
    println!("# alert-packet-capture reliability bench\n");
    println!("component: {} ({} bytes, {:.2} MiB)", wasm.display(), size, size as f64 / 1048576.0);

    println!("\n## Deliveries of one alert, 100 at a time ({storm} per store behaviour)\n");
    println!("| {:<58} | {:>28} |", "store CAS behaviour", "202 / dup 200 / other / PUTs / Azure captures / req/s");
    println!("|{}|{}|", "-".repeat(60), "-".repeat(30));
    for sem in [CasSemantics::Strict, CasSemantics::SpinSqlite, CasSemantics::SpinRedis] {
        let r = duplicate_storm(sem, storm, 100);
        row(
            &format!("{sem:?}"),
            format!(
                "{} / {} / {} / {} / {} / {:.0}",
                r.started,
                r.duplicates,
                r.other.len(),
                r.puts,
                r.azure_captures,
                r.rps()
            ),
        );
    }
    let mut extra_starts = 0;
    let rounds = 20;
    for _ in 0..rounds {
        let r = duplicate_storm(CasSemantics::SpinSqlite, 100, 100);
        extra_starts += r.started.saturating_sub(1);
    }
    row(&format!("SpinSqlite: extra 202s over {rounds} fresh-store storms of 100"), extra_starts);

    let c = one_vm_many_alerts(50);
    println!("\n## 50 different alerts for one VM at once\n");
    row("answers", format!("{:?}", c.answers));
    row("503s resent (as Azure would)", c.resent);
    row(
        "records / alert ids on them / PUTs / capture names",
        format!("{} / {} / {} / {}", c.records, c.alert_ids_on_records, c.puts, c.azure_names),
    );

    println!("\n## {alerts} alerts over {vms} VMs, 20 % Azure faults on every route (seed {seed})\n");
    let t = Instant::now();
    let f = fault_run(alerts, vms, 0.2, seed, 4);
    println!("| {:<58} | {:>28} |", "measure", "value");
    println!("|{}|{}|", "-".repeat(60), "-".repeat(30));
    row("webhook deliveries (retries included)", f.deliveries);
    row("alerts accepted", format!("{} of {}", f.accepted, f.alerts));
    row("Azure calls / faults injected (non-2xx + unanswered)", format!("{} / {}", f.azure_calls, f.faults_injected));
    row("duplicates created (goal 0)", f.duplicates.len());
    row("alerts lost (goal 0)", f.lost.len());
    row("records without reason or notification (goal 0)", f.unexplained.len());
    row("records by state", format!("{:?}", f.by_state));
    row("PUTs per capture (PUTs: captures)", format!("{:?}", f.puts_per_capture));
    row("polls until idle (settled)", format!("{} ({})", f.polls, f.settled));
    row("notifications delivered", f.notifications);
    row("wall time (s)", format!("{:.1}", t.elapsed().as_secs_f64()));
    for d in f.duplicates.iter().chain(&f.lost).chain(&f.unexplained).take(10) {
        println!("  ! {d}");
    }

    println!("\n## Soak: {soak_n} alerts over an accelerated day, max_records = {records}\n");
    let s = soak(soak_n, 100, records);
    println!("| {:<58} | {:>28} |", "measure", "value");
    println!("|{}|{}|", "-".repeat(60), "-".repeat(30));
    row("answers by status", format!("{:?}", s.statuses));
    row("max keys / documented bound", format!("{} / {}", s.max_keys, s.bound));
    row(
        "captures seen active / evicted while active (goal 0)",
        format!("{} / {}", s.captures_seen, s.evicted_active.len()),
    );
    row("KV ops per poll, first / last tenth", format!("{:.1} / {:.1}", s.poll_kv_first, s.poll_kv_last));
    row("outbound calls per poll, first / last tenth", format!("{:.2} / {:.2}", s.poll_out_first, s.poll_out_last));
    row("KV ops per alert, first / last tenth", format!("{:.1} / {:.1}", s.alert_kv_first, s.alert_kv_last));
    row("index size at the end (bytes)", s.index_bytes);
    row("wall time (s)", format!("{:.1}", s.elapsed.as_secs_f64()));

    costs();
    summary();
}
