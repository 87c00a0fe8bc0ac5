//! Reliability scenarios (issue 4), sized by their callers: `tests/reliability.rs` runs them at
//! CI size, `examples/apc-bench.rs` at full size. Each returns a report of what it measured; the
//! callers assert on it (tests) or print it (bench).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_emulator::{Emulator, Fault, FaultKind, JournalEntry, routes};
use serde_json::Value;
use test_host::{CasSemantics, Host, HostError, Request, Response};
use tokio::sync::Semaphore;

use super::{App, KEY, World, common_alert};

/// A runtime with more worker threads than cores, so guests interleave at arbitrary points (the
/// OS preempts them), not only where they wait for the network.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(8).enable_all().build().expect("tokio runtime")
}

/// Statuses on which Azure Monitor retries a webhook (plus time-outs).
pub const AZURE_RETRY_STATUSES: [u16; 4] = [408, 429, 503, 504];
/// Retries Azure Monitor makes after the first delivery.
pub const AZURE_RETRIES: usize = 5;

/// One alert delivered the way Azure Monitor delivers it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Requests made (1 + retries).
    pub attempts: usize,
    /// The last answer's status; `None` when the last attempt timed out.
    pub status: Option<u16>,
    /// The last answer's body.
    pub body: Value,
    /// Statuses of the attempts that were retried.
    pub retried: Vec<Option<u16>>,
}

impl Delivery {
    /// Azure took the last answer as success.
    pub fn accepted(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// An authenticated `POST /alerts`.
pub async fn post_alert(host: &Host, body: &Value) -> Result<Response, HostError> {
    host.request(Request::post_json("/alerts", body).header("x-api-key", KEY)).await
}

/// Deliver like Azure Monitor: retry on 408/429/503/504 and time-outs, [`AZURE_RETRIES`] times.
/// (Azure waits between retries; the component's answers must not depend on that, so we don't.)
pub async fn deliver_like_azure(host: &Host, body: &Value) -> Delivery {
    let mut retried = Vec::new();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (status, value) = match post_alert(host, body).await {
            Ok(r) => (Some(r.status), r.json().unwrap_or(Value::Null)),
            Err(HostError::Timeout(_)) => (None, Value::Null),
            Err(e) => panic!("the host failed, not the component: {e}"),
        };
        let retry = status.is_none_or(|s| AZURE_RETRY_STATUSES.contains(&s));
        if !retry || attempts > AZURE_RETRIES {
            return Delivery { attempts, status, body: value, retried };
        }
        retried.push(status);
    }
}

/// Run `jobs` with at most `parallel` in flight; results in job order.
pub async fn bounded<T, F, Fut>(parallel: usize, jobs: usize, make: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let sem = Arc::new(Semaphore::new(parallel.max(1)));
    let mut handles = Vec::with_capacity(jobs);
    for i in 0..jobs {
        let permit = sem.clone().acquire_owned().await.expect("semaphore open");
        let fut = make(i);
        handles.push(tokio::spawn(async move {
            let out = fut.await;
            drop(permit);
            out
        }));
    }
    let mut out = Vec::with_capacity(jobs);
    for h in handles {
        out.push(h.await.expect("a delivery task panicked"));
    }
    out
}

/// The capture name a `PUT` journal entry created (last path segment).
pub fn put_name(e: &JournalEntry) -> String {
    e.path.rsplit('/').next().unwrap_or_default().to_ascii_lowercase()
}

/// `PUT`s per capture name, from the emulator's journal.
pub fn puts_by_name(w: &World) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for e in w.emu.journal().iter().filter(|e| e.route == routes::CAPTURE_PUT) {
        *m.entry(put_name(e)).or_insert(0) += 1;
    }
    m
}

/// Injected faults seen in the journal: answers that were not 2xx, and calls never answered.
pub fn faults_seen(w: &World) -> usize {
    w.emu.journal().iter().filter(|e| !e.delivered || e.status.is_none_or(|s| !(200..300).contains(&s))).count()
}

/// Every record, newest first, through `GET /captures` (pages of at most 500).
pub fn all_records(w: &World) -> Vec<Value> {
    let r = w.send(Request::get("/captures?limit=500"));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json().expect("JSON list");
    v["captures"].as_array().cloned().unwrap_or_default()
}

/// Poll, moving the clocks `step` seconds before each poll, until nothing is due or scheduled
/// (at most `max_polls`). Returns the polls made and whether it settled.
pub fn poll_until_idle(w: &World, step: i64, max_polls: usize) -> (usize, bool) {
    for n in 1..=max_polls {
        w.advance(step);
        let p = w.poll();
        if p["due"] == 0 && p["next_check_at"].is_null() {
            return (n, true);
        }
    }
    (max_polls, false)
}

fn alert_ids(rec: &Value) -> Vec<String> {
    rec["alert_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// One alert, many deliveries at once.

/// What many concurrent deliveries of one alert produced.
#[derive(Debug, Clone)]
pub struct DuplicateReport {
    /// The store's compare-and-swap behaviour.
    pub semantics: CasSemantics,
    /// Deliveries made.
    pub deliveries: usize,
    /// Answers `202`.
    pub started: usize,
    /// Answers `200` with `"duplicate": true`.
    pub duplicates: usize,
    /// Other answers (status, body), at most a few kept.
    pub other: Vec<(u16, String)>,
    /// Distinct capture ids in all answers.
    pub capture_ids: BTreeSet<String>,
    /// Capture `PUT`s in the emulator's journal.
    pub puts: u64,
    /// Captures the emulator holds.
    pub azure_captures: usize,
    /// Records the component holds.
    pub records: usize,
    /// Wall time of the deliveries.
    pub elapsed: Duration,
}

impl DuplicateReport {
    /// Requests per second held.
    pub fn rps(&self) -> f64 {
        self.deliveries as f64 / self.elapsed.as_secs_f64()
    }
}

/// Deliver one alert `deliveries` times, `parallel` at a time, on a fresh world.
pub fn duplicate_storm(semantics: CasSemantics, deliveries: usize, parallel: usize) -> DuplicateReport {
    let w = World::new(1, &[]);
    w.host.kv().set_cas_semantics(semantics);
    let alert = Arc::new(common_alert("vm-1", "storm"));
    let rt = runtime();
    let started_at = Instant::now();
    let answers = rt.block_on(bounded(parallel, deliveries, |_| {
        let host = w.host.clone();
        let alert = alert.clone();
        async move {
            let r = post_alert(&host, &alert).await.expect("the component answers");
            (r.status, r.json().unwrap_or(Value::Null), r.text())
        }
    }));
    let elapsed = started_at.elapsed();
    let mut report = DuplicateReport {
        semantics,
        deliveries,
        started: 0,
        duplicates: 0,
        other: Vec::new(),
        capture_ids: BTreeSet::new(),
        puts: w.calls(routes::CAPTURE_PUT),
        azure_captures: w.emu.captures().len(),
        records: 0,
        elapsed,
    };
    for (status, v, text) in answers {
        if let Some(id) = v["captures"][0]["id"].as_str() {
            report.capture_ids.insert(id.to_string());
        }
        match status {
            202 => report.started += 1,
            200 if v["duplicate"] == true => report.duplicates += 1,
            s => {
                if report.other.len() < 5 {
                    report.other.push((s, text));
                }
            }
        }
    }
    report.records = all_records(&w).len();
    report
}

// ---------------------------------------------------------------------------------------------
// Many different alerts for one VM at once.

/// What `n` different alerts on one VM at once produced.
#[derive(Debug, Clone)]
pub struct CoalesceReport {
    /// Alerts sent.
    pub alerts: usize,
    /// Answers by decision (`started`, `coalesced`, `duplicate`, `skipped`, or a status).
    pub answers: BTreeMap<String, usize>,
    /// `503` answers that were resent, as Azure does.
    pub resent: usize,
    /// Alerts Azure would have given up on.
    pub not_accepted: usize,
    /// Records the component holds.
    pub records: usize,
    /// Alert ids on the records (all records together, distinct).
    pub alert_ids_on_records: usize,
    /// Capture `PUT`s in the journal, and distinct names they created.
    pub puts: u64,
    /// Distinct capture names `PUT`.
    pub azure_names: usize,
    /// Wall time.
    pub elapsed: Duration,
}

/// Send `n` different alerts for `vm-1` at once (each delivered as Azure would).
pub fn one_vm_many_alerts(n: usize) -> CoalesceReport {
    one_vm_many_alerts_with(n, CasSemantics::Strict)
}

/// [`one_vm_many_alerts`] on a store with the given compare-and-swap behaviour.
pub fn one_vm_many_alerts_with(n: usize, semantics: CasSemantics) -> CoalesceReport {
    let w = World::new(1, &[]);
    w.host.kv().set_cas_semantics(semantics);
    let rt = runtime();
    let t = Instant::now();
    let deliveries = rt.block_on(bounded(n, n, |i| {
        let host = w.host.clone();
        let alert = common_alert("vm-1", &format!("burst-{i}"));
        async move { deliver_like_azure(&host, &alert).await }
    }));
    let elapsed = t.elapsed();
    let mut answers = BTreeMap::new();
    let mut resent = 0;
    let mut not_accepted = 0;
    for d in &deliveries {
        resent += d.retried.len();
        not_accepted += usize::from(!d.accepted());
        let key = d.body["results"][0]["decision"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("status {:?}", d.status));
        *answers.entry(key).or_insert(0) += 1;
    }
    let records = all_records(&w);
    let ids: BTreeSet<String> = records.iter().flat_map(alert_ids).collect();
    let puts = puts_by_name(&w);
    CoalesceReport {
        alerts: n,
        answers,
        resent,
        not_accepted,
        records: records.len(),
        alert_ids_on_records: ids.len(),
        puts: puts.values().sum(),
        azure_names: puts.len(),
        elapsed,
    }
}

// ---------------------------------------------------------------------------------------------
// Alerts over many VMs under injected Azure faults.

/// What an alert run under faults produced.
#[derive(Debug, Clone, Default)]
pub struct FaultReport {
    /// Alerts sent, and VMs.
    pub alerts: usize,
    /// VMs.
    pub vms: usize,
    /// Webhook requests made (retries included).
    pub deliveries: usize,
    /// Alerts whose delivery Azure took as a success.
    pub accepted: usize,
    /// Calls to the emulator in all.
    pub azure_calls: usize,
    /// Injected faults seen (non-2xx answers and unanswered calls in the journal).
    pub faults_injected: usize,
    /// Polls until nothing was due.
    pub polls: usize,
    /// Whether the polls settled within their bound.
    pub settled: bool,
    /// Records by final state.
    pub by_state: BTreeMap<String, usize>,
    /// Histogram: number of `PUT`s for a capture → captures with that many.
    pub puts_per_capture: BTreeMap<u64, usize>,
    /// Accepted alerts found on no record (goal 0).
    pub lost: Vec<String>,
    /// (alert, VM) pairs on more than one record, or capture names `PUT` without a record (goal 0).
    pub duplicates: Vec<String>,
    /// Records that ended without a reason or a notification.
    pub unexplained: Vec<String>,
    /// Notifications delivered.
    pub notifications: usize,
}

/// Fault rules: about `rate` of the calls of every Azure route fail, spread over 429, 500, 503,
/// 409 (RetryableErrorDueToAnotherOperation), dropped connections and, on `PUT`, lost answers;
/// plus `slow` calls (by count) slower than the adapter's 10 s first-byte time-out.
pub fn add_azure_faults(emu: &Emulator, rate: f64, seed: u64, slow: u32) {
    emu.set_fault_seed(seed);
    let all = [
        routes::TOKEN,
        routes::VM_GET,
        routes::WATCHERS_LIST,
        routes::CAPTURE_PUT,
        routes::CAPTURE_GET,
        routes::CAPTURE_STATUS,
        routes::CAPTURE_STOP,
        routes::CAPTURE_DELETE,
    ];
    for route in all {
        let kinds: &[FaultKind] = if route == routes::CAPTURE_PUT {
            &[
                FaultKind::Status(429),
                FaultKind::Status(500),
                FaultKind::Status(503),
                FaultKind::Status(409),
                FaultKind::Drop,
                FaultKind::LoseResponse,
            ]
        } else {
            &[
                FaultKind::Status(429),
                FaultKind::Status(500),
                FaultKind::Status(503),
                FaultKind::Status(409),
                FaultKind::Drop,
            ]
        };
        // Independent draws per rule: 1 - (1 - p)^k = rate.
        let p = 1.0 - (1.0 - rate).powf(1.0 / kinds.len() as f64);
        for k in kinds {
            emu.add_fault(Fault::probability(route, k.clone(), p).retry_after(2));
        }
    }
    if slow > 0 {
        emu.add_fault(Fault::count(routes::CAPTURE_PUT, FaultKind::LatencyMs(11_000), slow.div_ceil(2)));
        emu.add_fault(Fault::count(routes::CAPTURE_STATUS, FaultKind::LatencyMs(11_000), slow / 2));
    }
}

/// `alerts` alerts over `vms` VMs (in waves of one alert per VM, a few minutes apart) with
/// `rate` of every Azure call failing, then polls until nothing is due; checks every outcome.
pub fn fault_run(alerts: usize, vms: usize, rate: f64, seed: u64, slow: u32) -> FaultReport {
    let vms_s = vms.to_string();
    let w = World::new(vms, &[("max_active_captures", &vms_s), ("capture_time_limit_seconds", "60")]);
    add_azure_faults(&w.emu, rate, seed, slow);
    let rt = runtime();
    let mut report = FaultReport { alerts, vms, ..Default::default() };
    let mut accepted = Vec::new();
    for wave in 0..alerts.div_ceil(vms) {
        let first = wave * vms;
        let count = vms.min(alerts - first);
        let deliveries = rt.block_on(bounded(vms, count, |j| {
            let host = w.host.clone();
            let i = first + j;
            let alert = common_alert(&format!("vm-{}", j + 1), &format!("fault-{i}"));
            async move { (i, deliver_like_azure(&host, &alert).await) }
        }));
        for (i, d) in deliveries {
            report.deliveries += d.attempts;
            if d.accepted() {
                accepted.push(format!("alerts/fault-{i}|"));
            }
        }
        // Some minutes pass between waves, with polls: some captures finish, others coalesce.
        for _ in 0..3 {
            w.advance(45);
            w.poll();
        }
    }
    report.accepted = accepted.len();
    let (polls, settled) = poll_until_idle(&w, 60, 400);
    report.polls = polls;
    report.settled = settled;

    let records = all_records(&w);
    let notes = w.sink.delivered();
    report.notifications = notes.len();
    let notified: BTreeSet<String> =
        notes.iter().filter_map(|n| n["capture"]["id"].as_str().map(str::to_string)).collect();
    let record_ids: BTreeSet<String> = records.iter().filter_map(|r| r["id"].as_str().map(str::to_string)).collect();
    for r in &records {
        let state = r["state"].as_str().unwrap_or("?").to_string();
        *report.by_state.entry(state.clone()).or_insert(0) += 1;
        let id = r["id"].as_str().unwrap_or("?");
        let has_reason = match state.as_str() {
            "succeeded" => true,
            "failed" => r["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "skipped" => r["skip_reason"].is_string(),
            _ => false,
        };
        if !has_reason || r["notified"] != true || !notified.contains(id) {
            report.unexplained.push(format!("{id}: {state}, notified {}, errors {}", r["notified"], r["errors"]));
        }
    }
    for a in &accepted {
        let holders: Vec<&Value> =
            records.iter().filter(|r| alert_ids(r).iter().any(|id| id.contains(a.as_str()))).collect();
        match holders.len() {
            0 => report.lost.push(a.clone()),
            1 => {}
            n => report.duplicates.push(format!("{a} is on {n} records")),
        }
    }
    let puts = puts_by_name(&w);
    for (name, n) in &puts {
        *report.puts_per_capture.entry(*n).or_insert(0) += 1;
        if !record_ids.iter().any(|id| id.eq_ignore_ascii_case(name)) {
            report.duplicates.push(format!("capture {name} was PUT but has no record"));
        }
    }
    report.azure_calls = w.total_calls();
    report.faults_injected = faults_seen(&w);
    report
}

// ---------------------------------------------------------------------------------------------
// Soak: many alerts over an accelerated day.

/// What a soak run measured.
#[derive(Debug, Clone, Default)]
pub struct SoakReport {
    /// Alerts sent.
    pub alerts: usize,
    /// `max_records`.
    pub max_records: usize,
    /// Largest key count the store held.
    pub max_keys: u64,
    /// The documented bound (docs/STATE.md, "Bounds").
    pub bound: u64,
    /// Records that left the store while their last seen state was active and that were never
    /// notified as finished (goal: none).
    pub evicted_active: Vec<String>,
    /// Captures ever seen active.
    pub captures_seen: usize,
    /// KV operations per poll: mean over the first and the last tenth.
    pub poll_kv_first: f64,
    /// See `poll_kv_first`.
    pub poll_kv_last: f64,
    /// Outbound calls per poll: mean over the first and the last tenth.
    pub poll_out_first: f64,
    /// See `poll_out_first`.
    pub poll_out_last: f64,
    /// KV operations per alert: first and last tenth.
    pub alert_kv_first: f64,
    /// See `alert_kv_first`.
    pub alert_kv_last: f64,
    /// Size of the index value in bytes at the end.
    pub index_bytes: usize,
    /// Answers by status.
    pub statuses: BTreeMap<u16, usize>,
    /// Wall time.
    pub elapsed: Duration,
}

fn mean(xs: &[u64]) -> f64 {
    if xs.is_empty() { 0.0 } else { xs.iter().sum::<u64>() as f64 / xs.len() as f64 }
}

/// `alerts` alerts spread over 24 h on `vms` VMs (one every 86400/alerts s), one poll after each,
/// with `max_records`; watches the key count and evictions after every request.
pub fn soak(alerts: usize, vms: usize, max_records: usize) -> SoakReport {
    let max_s = max_records.to_string();
    let w = World::new(vms, &[("max_records", &max_s), ("capture_time_limit_seconds", "60")]);
    let step = (86_400 / alerts.max(1)).max(1) as i64;
    let started = Instant::now();
    // Issue 9's bound (docs/STATE.md): finished records and their work markers ≤ 2 ×
    // max_records, active records and their claims ≤ 2 × max_active_captures (10), one fact per
    // alert accepted within retention_hours (72 h: all of this day's), and the Azure cache.
    let bound = 2 * max_records as u64 + 2 * 10 + alerts as u64 + 1;
    let mut report = SoakReport { alerts, max_records, bound, ..Default::default() };
    let mut last_state: BTreeMap<String, String> = BTreeMap::new();
    let mut seen_active: BTreeSet<String> = BTreeSet::new();
    let mut gone_while_active: Vec<String> = Vec::new();
    let (mut poll_kv, mut poll_out, mut alert_kv) = (Vec::new(), Vec::new(), Vec::new());
    let observe = |last: &mut BTreeMap<String, String>, seen: &mut BTreeSet<String>, gone: &mut Vec<String>| {
        let values = w.host.kv().values();
        let mut now: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in &values {
            // Issue 9's keys: `v1:act:{group}:{vm}:{name}` while active, `v1:cap:{name}:{finished}`.
            let id = match (k.strip_prefix("v1:act:"), k.strip_prefix("v1:cap:")) {
                (Some(rest), _) => rest.rsplit(':').next(),
                (None, Some(rest)) => rest.rsplit_once(':').map(|(name, _)| name),
                _ => None,
            };
            if let Some(id) = id {
                let rec: Value = serde_json::from_slice(v).unwrap_or(Value::Null);
                let state = rec["state"].as_str().unwrap_or("?").to_string();
                if state == "queued" || state == "running" {
                    seen.insert(id.to_string());
                }
                now.insert(id.to_string(), state);
            }
        }
        for (id, state) in last.iter() {
            if !now.contains_key(id) && (state == "queued" || state == "running") {
                gone.push(id.clone());
            }
        }
        *last = now;
    };
    for i in 0..alerts {
        let vm = format!("vm-{}", i % vms + 1);
        let (r, _) = w.alert(&common_alert(&vm, &format!("soak-{i}")));
        *report.statuses.entry(r.status).or_insert(0) += 1;
        alert_kv.push(r.stats.kv.total());
        observe(&mut last_state, &mut seen_active, &mut gone_while_active);
        w.advance(step);
        let p = w.send(Request::post("/poll", Vec::new()));
        assert_eq!(p.status, 200, "{}", p.text());
        poll_kv.push(p.stats.kv.total());
        poll_out.push(p.stats.outbound);
        observe(&mut last_state, &mut seen_active, &mut gone_while_active);
    }
    poll_until_idle(&w, 60, 50);
    observe(&mut last_state, &mut seen_active, &mut gone_while_active);
    // A record may finish and be evicted between two looks: its notification proves it finished.
    let notified: BTreeSet<String> =
        w.sink.delivered().iter().filter_map(|n| n["capture"]["id"].as_str().map(str::to_string)).collect();
    report.evicted_active = gone_while_active.into_iter().filter(|id| !notified.contains(id)).collect();
    report.captures_seen = seen_active.len();
    let tenth = (alerts / 10).max(1);
    report.poll_kv_first = mean(&poll_kv[..tenth]);
    report.poll_kv_last = mean(&poll_kv[poll_kv.len() - tenth..]);
    report.poll_out_first = mean(&poll_out[..tenth]);
    report.poll_out_last = mean(&poll_out[poll_out.len() - tenth..]);
    report.alert_kv_first = mean(&alert_kv[..tenth]);
    report.alert_kv_last = mean(&alert_kv[alert_kv.len() - tenth..]);
    report.index_bytes = w.host.kv().get("v1:index").map(|v| v.len()).unwrap_or(0);
    report.max_keys = w.host.kv().max_keys();
    report.elapsed = started.elapsed();
    report
}
