//! The whole path, alert to notification, through `api::handle` with a scripted transport
//! answered by the real Azure samples (issue 2). Each test asserts the exact outbound requests.
//!
//! Every scenario runs once per store behaviour (`store_matrix!`), none ignored. Where a step
//! models time passing between requests, `app.settle()` lets an eventually consistent store
//! catch up first; what holds before it has is tested in `interleavings.rs`.

use apc_core::api::ApiRequest;
use apc_core::ports::{Method, OutboundRequest};
use apc_testkit::alerts::{classic_vm_alert, common_vm_alert};
use apc_testkit::app::capture_id;
use apc_testkit::consts::{KEY, NOTIFY, NW2, SECRET, SUB, T0, TOKEN_URL, VM1_URL, WATCHERS_URL};
use apc_testkit::http::{ScriptedHttp, sample_body, sample_file_response, sample_json, sample_response, with_header};
use apc_testkit::{MemKv, StoreBehaviour, TestApp, store_matrix};
use serde_json::{Value, json};

fn body_json(r: &OutboundRequest) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

/// First alert: token, VM, watcher list, PUT — each exact. Then caches make the second alert
/// (another VM, region in the payload) a single PUT; a duplicate and a Resolved make none.
fn first_alert_cold_then_warm_then_duplicate_and_resolved(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    app.script_cold_path();

    let (resp, v) = app.post_alert(&common_vm_alert());
    assert_eq!(resp.status, 202, "{v}");
    let id = capture_id(&v);
    // The window's start (fired 13:58:24, 300-second windows).
    assert!(id.starts_with("apc-wcus-r2-gen2-20190322T135500-"), "{id}");
    assert_eq!(v["captures"][0]["state"], "running");
    assert_eq!(v["captures"][0]["status_url"], format!("/captures/{id}"));
    assert_eq!(resp.log["outbound_calls"], 4);
    app.http.assert_done();
    let reqs = app.http.requests();
    assert_eq!(reqs.len(), 4);

    // The token request: form body with the scope that follows the ARM endpoint.
    let token = &reqs[0];
    assert_eq!(token.header("content-type"), Some("application/x-www-form-urlencoded"));
    let form: Vec<(String, String)> = form_urlencoded::parse(&token.body).into_owned().collect();
    assert!(form.contains(&("grant_type".into(), "client_credentials".into())));
    assert!(form.contains(&("scope".into(), "https://management.azure.com/.default".into())));
    assert!(form.contains(&("client_secret".into(), SECRET.into())));
    // ARM calls: bearer token from the sample, JSON accept.
    let token_value =
        sample_json("token/client-credentials.success.entra-docs.json")["access_token"].as_str().unwrap().to_string();
    for r in &reqs[1..] {
        assert_eq!(r.header("authorization"), Some(format!("Bearer {token_value}").as_str()));
        assert_eq!(r.header("accept"), Some("application/json"));
    }
    // The PUT: exact URL with api-version, exact body from the configuration.
    let put = &reqs[3];
    assert_eq!(put.method, Method::Put);
    assert_eq!(put.url, format!("{NW2}/{id}?api-version=2025-07-01"));
    assert_eq!(put.header("content-type"), Some("application/json"));
    assert_eq!(
        body_json(put),
        json!({"properties": {
            "target": format!("/subscriptions/{SUB}/resourceGroups/pipelinealertrg/providers/Microsoft.Compute/virtualMachines/wcus-r2-gen2"),
            "targetType": "AzureVM",
            "bytesToCapturePerPacket": 0,
            "totalBytesPerSession": 1073741824,
            "timeLimitInSeconds": 300,
            "storageLocation": {"storageId": format!("/subscriptions/{SUB}/resourceGroups/rg2/providers/Microsoft.Storage/storageAccounts/pcstore")},
            "filters": []
        }})
    );
    let rec = app.record(&id);
    assert_eq!(rec["state"], "running");
    assert_eq!(
        rec["watcher"],
        format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Network/networkWatchers/nw2")
    );
    assert_eq!(rec["location"], "westus");

    // Second alert, another VM, region in the payload: one PUT, nothing else (once the first
    // alert's cache writes have replicated).
    app.http.clear_log();
    app.settle();
    app.http.route(Method::Put, NW2, sample_response("network-watcher/PacketCaptureCreate.2026-07-01.json", 201));
    let (resp, v) = app.post_alert(&classic_vm_alert("vm-b", "rule-b"));
    assert_eq!(resp.status, 202, "{v}");
    assert_eq!(v["schema"], "classic");
    let reqs = app.http.requests();
    assert_eq!(reqs.len(), 1, "warm alert must be one PUT: {reqs:?}");
    assert_eq!(reqs[0].method, Method::Put);
    assert!(reqs[0].url.contains("/packetCaptures/apc-vm-b-"));

    // The same first alert again: the same answer, no call.
    app.http.clear_log();
    let (resp, v) = app.post_alert(&common_vm_alert());
    assert_eq!(resp.status, 200);
    assert_eq!(v["duplicate"], true);
    assert_eq!(capture_id(&v), id);
    assert_eq!(app.http.count(), 0);

    // The untouched Resolved sample: ignored, no call, no key written.
    let keys = app.kv.keys();
    let resolved = sample_json("alerts/common.metric.vm.resolved.alerts-common-schema.json");
    let (resp, v) = app.post_alert(&resolved);
    assert_eq!(resp.status, 200);
    assert_eq!(v["ignored"], "resolved");
    assert_eq!(app.http.count(), 0);
    assert_eq!(app.kv.keys(), keys);
}
store_matrix!(first_alert_cold_then_warm_then_duplicate_and_resolved: Strict, SpinSqlite, SpinRedis, Eventual);

/// Set up a running capture on VM wcus-r2-gen2 and return its id.
fn running_capture(app: &TestApp) -> String {
    app.script_cold_path();
    let (resp, v) = app.post_alert(&common_vm_alert());
    assert_eq!(resp.status, 202, "{v}");
    app.http.clear_log();
    // A moment later: on an eventually consistent store, its writes have replicated.
    app.settle();
    capture_id(&v)
}

fn poll_sees_running_then_stopped_and_notifies_once(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let id = running_capture(&app);
    let status_url = format!("{NW2}/{id}/queryStatus?api-version=2025-07-01");

    // Not due yet: a poll does nothing.
    let (_, v) = app.poll();
    assert_eq!(v["advanced"], 0);
    assert_eq!(app.http.count(), 0);

    app.clock.advance(31);
    app.http.expect(
        Method::Post,
        &status_url,
        sample_file_response("network-watcher/PacketCaptureQueryStatus.running.rest-doc-2016-12-01.json", 200),
    );
    let (resp, v) = app.poll();
    assert_eq!(resp.status, 200);
    assert_eq!(v["advanced"], 1);
    assert_eq!(app.record(&id)["azure_status"], "Running");
    assert_eq!(app.record(&id)["state"], "running");

    app.clock.advance(300);
    app.http.clear_log();
    app.http.expect(
        Method::Post,
        &status_url,
        sample_response("network-watcher/PacketCaptureQueryStatus.2026-07-01.json", 200),
    );
    app.http.expect(
        Method::Get,
        format!("{NW2}/{id}?api-version=2025-07-01"),
        sample_response("network-watcher/PacketCaptureGet.2026-03-01.json", 200),
    );
    app.http.expect(Method::Post, NOTIFY, ScriptedHttp::empty(200));
    app.http.expect(
        Method::Delete,
        format!("{NW2}/{id}?api-version=2025-07-01"),
        sample_response("network-watcher/PacketCaptureDelete.2026-03-01.json", 204),
    );
    let (_, v) = app.poll();
    assert_eq!(v["advanced"], 1);
    app.http.assert_done();
    let rec = app.record(&id);
    assert_eq!(rec["state"], "succeeded");
    assert_eq!(rec["stop_reason"], "TimeExceeded");
    assert_eq!(rec["storage_path"], "https://mytestaccountname.blob.core.windows.net/capture/pc1.cap");
    assert_eq!(rec["notified"], true);
    assert_eq!(rec["azure_deleted"], true);
    // One more look once the store settled, for alerts attached at the last moment.
    let finished = rec["finished_at"].as_i64().unwrap();
    assert_eq!(rec["next_check_at"], json!(finished + apc_core::advance::STORE_SETTLE_SECS));

    let notes: Vec<_> = app.http.requests().into_iter().filter(|r| r.url == NOTIFY).collect();
    assert_eq!(notes.len(), 1);
    let n = body_json(&notes[0]);
    assert_eq!(n["type"], "capture.succeeded");
    assert_eq!(n["cap_location"], "https://mytestaccountname.blob.core.windows.net/capture/pc1.cap");
    assert_eq!(n["alert_rule"], "WCUS-R2-Gen2");
    assert_eq!(n["capture"]["id"], id.as_str());
    assert_eq!(n["id"].as_str().unwrap().len(), 32);

    // That look makes no call and sends nothing; then nothing is left: later polls make no
    // call and send no second notification.
    app.clock.advance(3600);
    app.http.clear_log();
    let (_, v) = app.poll();
    assert_eq!(v["advanced"], 1);
    assert_eq!(app.http.count(), 0);
    assert_eq!(app.record(&id)["next_check_at"], Value::Null);
    let (_, v) = app.poll();
    assert_eq!(v["advanced"], 0);
    assert_eq!(v["due"], 0);
    assert_eq!(app.http.count(), 0);

    // The record reads back with RFC 3339 times.
    let (resp, v) = app.get_capture(&id);
    assert_eq!(resp.status, 200);
    assert_eq!(v["state"], "succeeded");
    assert!(v["finished_at"].as_str().unwrap().ends_with('Z'));
}
store_matrix!(poll_sees_running_then_stopped_and_notifies_once: Strict, SpinSqlite, SpinRedis, Eventual);

fn capture_in_error_fails_and_is_notified(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let id = running_capture(&app);
    app.clock.advance(31);
    let mut status =
        sample_json("network-watcher/PacketCaptureQueryStatus.2026-07-01.json")["responses"]["200"]["body"].clone();
    status["packetCaptureStatus"] = json!("Error");
    status["packetCaptureError"] = json!(["CaptureFailed"]);
    status.as_object_mut().unwrap().remove("stopReason");
    app.http.expect(
        Method::Post,
        format!("{NW2}/{id}/queryStatus?api-version=2025-07-01"),
        ScriptedHttp::json(200, &status.to_string()),
    );
    app.http.expect(Method::Post, NOTIFY, ScriptedHttp::empty(202));
    app.http.expect(
        Method::Delete,
        format!("{NW2}/{id}?api-version=2025-07-01"),
        sample_response("network-watcher/PacketCaptureDelete.2026-03-01.json", 204),
    );
    app.poll();
    app.http.assert_done();
    let rec = app.record(&id);
    assert_eq!(rec["state"], "failed");
    assert!(rec["errors"].to_string().contains("CaptureFailed"), "{rec}");
    assert_eq!(rec["notified"], true);
    let note = body_json(&app.http.requests()[1]);
    assert_eq!(note["type"], "capture.failed");
}
store_matrix!(capture_in_error_fails_and_is_notified: Strict, SpinSqlite, SpinRedis, Eventual);

fn throttled_put_stays_queued_and_is_retried_on_a_later_poll(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    app.script_token();
    app.http.route(Method::Get, VM1_URL, sample_response("compute/VirtualMachineGet.2025-04-01.json", 200));
    app.http.route(
        Method::Get,
        WATCHERS_URL,
        sample_response("network-watcher/NetworkWatcherListAll.2026-07-01.json", 200),
    );
    app.http.route(
        Method::Put,
        NW2,
        with_header(ScriptedHttp::arm_error(429, "TooManyRequests", "Too many requests"), "Retry-After", "120"),
    );
    let (resp, v) = app.post_alert(&common_vm_alert());
    // Recorded and queued: still a 202, never a 5xx (Azure would retry and duplicate).
    assert_eq!(resp.status, 202, "{v}");
    let id = capture_id(&v);
    let rec = app.record(&id);
    assert_eq!(rec["state"], "queued");
    assert_eq!(rec["attempts"], 1);
    assert_eq!(rec["next_check_at"], T0 + 120);
    assert!(rec["errors"][0].as_str().unwrap().contains("TooManyRequests"));

    // Before Retry-After: nothing happens.
    app.clock.advance(60);
    app.http.clear_log();
    app.poll();
    assert_eq!(app.http.count(), 0);

    // After it: one PUT (token, region and watcher are cached), now running.
    app.clock.advance(61);
    app.http.route(Method::Put, NW2, sample_response("network-watcher/PacketCaptureCreate.2026-07-01.json", 201));
    let (_, v) = app.poll();
    assert_eq!(v["advanced"], 1);
    let reqs = app.http.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].url, format!("{NW2}/{id}?api-version=2025-07-01"));
    let rec = app.record(&id);
    assert_eq!(rec["state"], "running");
    assert_eq!(rec["attempts"], 2);
}
store_matrix!(throttled_put_stays_queued_and_is_retried_on_a_later_poll: Strict, SpinSqlite, SpinRedis, Eventual);

fn wrong_client_secret_is_a_configuration_problem_naming_the_variable(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    app.http.expect(
        Method::Post,
        TOKEN_URL,
        sample_file_response("token/error.AADSTS7000215.invalid_client.http401.real.json", 401),
    );
    let (resp, v) = app.post_alert(&common_vm_alert());
    assert_eq!(resp.status, 202, "{v}");
    let id = capture_id(&v);
    let rec = app.record(&id);
    assert_eq!(rec["state"], "queued", "kept for a retry once the secret is fixed");
    let errors = rec["errors"].to_string();
    assert!(errors.contains("azure_client_secret"), "{errors}");
    assert!(!errors.contains(SECRET));
    assert!(v["results"][0]["errors"].to_string().contains("azure_client_secret"), "{v}");
    assert!(!String::from_utf8_lossy(&resp.body).contains(SECRET));
    assert!(!resp.log.to_string().contains(SECRET));
}
store_matrix!(wrong_client_secret_is_a_configuration_problem_naming_the_variable: Strict, SpinSqlite, SpinRedis, Eventual);

fn kv_key_count_stays_bounded_over_1000_alerts(store: StoreBehaviour) {
    let app = TestApp::builder()
        .store(store)
        .vars(&[
            ("max_records", "50"),
            ("notify_url", ""),
            ("capture_time_limit_seconds", "60"),
            ("max_active_captures", "50"),
            ("retention_hours", "1"),
        ])
        .build();
    app.http.route_always(
        Method::Post,
        TOKEN_URL,
        sample_file_response("token/client-credentials.success.entra-docs.json", 200),
    );
    app.http.route_always(
        Method::Get,
        WATCHERS_URL,
        sample_response("network-watcher/NetworkWatcherListAll.2026-07-01.json", 200),
    );
    app.http.route_always(
        Method::Put,
        NW2,
        sample_response("network-watcher/PacketCaptureCreate.2026-07-01.json", 201),
    );
    app.http.route_always(
        Method::Post,
        NW2,
        ScriptedHttp::json(200, &sample_body("network-watcher/PacketCaptureQueryStatus.2026-07-01.json", 200)),
    );
    app.http.route_always(Method::Get, NW2, sample_response("network-watcher/PacketCaptureGet.2026-03-01.json", 200));
    app.http.route_always(Method::Delete, NW2, ScriptedHttp::empty(204));
    // The documented bound (docs/STATE.md): terminal records ≤ max_records (+ one poll's worth
    // not yet evicted), active records (and their claims and due markers) ≤ the active limit,
    // one fact per alert accepted within the retention (+ its window), one cache key.
    let bounded = |app: &TestApp, accepted_recently: usize| {
        let l = apc_core::store::Listing::from_keys(app.kv.keys());
        assert!(l.finished.len() <= 50 + 5, "{} finished records", l.finished.len());
        assert!(l.active.len() + l.stale_active.len() <= 50, "{} active records", l.active.len());
        assert!(l.claims.len() <= 50 && l.due.len() <= 50, "{} claims, {} due", l.claims.len(), l.due.len());
        assert!(l.facts.len() <= accepted_recently, "{} facts, {accepted_recently} accepted recently", l.facts.len());
        let ours = |k: &String| k.starts_with("v1:");
        assert!(app.kv.keys().iter().all(ours));
    };
    let mut worst_kv_ops = 0;
    for i in 0..1000 {
        let (resp, v) = app.post_alert(&classic_vm_alert(&format!("vm-{}", i % 300), &format!("rule-{i}")));
        assert!(resp.status == 202 || resp.status == 200, "{v}");
        worst_kv_ops = worst_kv_ops.max(app.kv.counts().total());
        app.kv.reset_counts();
        app.clock.advance(30);
        if i % 5 == 0 {
            app.poll();
            app.kv.reset_counts();
        }
        // Alerts come every 30 s; a fact goes once its window is past the 1-hour retention and a
        // poll (every 5 alerts) has run.
        bounded(&app, (3600 + 300) / 30 + 2 * 5 + 1);
    }
    // A constant number of KV operations per alert, independent of the records stored.
    assert!(worst_kv_ops <= 8, "worst KV operations for one alert: {worst_kv_ops}");
}
store_matrix!(kv_key_count_stays_bounded_over_1000_alerts: Strict, SpinSqlite, SpinRedis, Eventual);

fn second_alert_for_a_running_vm_is_coalesced_and_limit_skips_with_notification(store: StoreBehaviour) {
    let app = TestApp::builder().store(store).var("max_active_captures", "2").build();
    let first = running_capture(&app);
    // Another alert (other rule, same VM): attached, no Azure call.
    let mut other = common_vm_alert();
    other["data"]["essentials"]["alertId"] =
        json!(format!("/subscriptions/{SUB}/providers/Microsoft.AlertsManagement/alerts/other"));
    let (resp, v) = app.post_alert(&other);
    assert_eq!(resp.status, 200, "{v}");
    assert_eq!(v["coalesced"], true);
    assert_eq!(capture_id(&v), first);
    assert_eq!(app.http.count(), 0);
    // The coalescing request writes only the alert's fact; the next check copies it in.
    app.poll();
    assert_eq!(app.http.count(), 0, "not due yet: the poll only reconciles");
    assert_eq!(app.record(&first)["alert_ids"].as_array().unwrap().len(), 2);

    // Fill the second slot, then a third VM is skipped (limit), recorded and notified.
    app.http.route(Method::Put, NW2, sample_response("network-watcher/PacketCaptureCreate.2026-07-01.json", 201));
    assert_eq!(app.post_alert(&classic_vm_alert("vm-b", "b")).0.status, 202);
    // The limit needs the other alerts' records visible (best effort while they are not).
    app.settle();
    app.http.clear_log();
    app.http.expect(Method::Post, NOTIFY, ScriptedHttp::empty(200));
    let (resp, v) = app.post_alert(&classic_vm_alert("vm-c", "c"));
    assert_eq!(resp.status, 200, "{v}");
    assert_eq!(v["skipped"], "limit");
    app.http.assert_done();
    let rec = app.record(&capture_id(&v));
    assert_eq!(rec["state"], "skipped");
    assert_eq!(rec["skip_reason"], "limit");
    assert_eq!(rec["notified"], true);
    let note = body_json(&app.http.requests()[0]);
    assert_eq!(note["type"], "capture.skipped");
}
store_matrix!(second_alert_for_a_running_vm_is_coalesced_and_limit_skips_with_notification: Strict, SpinSqlite, SpinRedis, Eventual);

fn refusals_are_problem_json_with_no_call_and_no_write(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let storage = sample_json("alerts/common.testaction.metric-static.storage.json");
    let (resp, v) = app.post_alert(&storage);
    assert_eq!(resp.status, 422);
    assert_eq!(resp.headers[0].1, "application/problem+json");
    assert_eq!(v["status"], 422);
    assert!(v["rejected_targets"][0]["reason"].as_str().unwrap().contains("not a VM"), "{v}");
    let (resp, v) = app.call("POST", "/alerts", b"not json");
    assert_eq!(resp.status, 400);
    assert!(v["detail"].as_str().unwrap().contains("JSON"));
    let (resp, _) = app.post_alert(&sample_json("alerts/noncommon.logv1-numresults.workspace.json"));
    assert_eq!(resp.status, 400);
    assert_eq!(app.http.count(), 0);
    assert!(app.kv.keys().is_empty());
}
store_matrix!(refusals_are_problem_json_with_no_call_and_no_write: Strict, SpinSqlite, SpinRedis, Eventual);

fn wrong_or_missing_key_is_401_before_any_read(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    for headers in [vec![], vec![("x-api-key".to_string(), "wrong-key-0123456789".to_string())]] {
        let req = ApiRequest {
            method: "POST".into(),
            path: "/alerts".into(),
            headers,
            body: serde_json::to_vec(&common_vm_alert()).unwrap(),
            ..Default::default()
        };
        let resp = app.send(&req);
        assert_eq!(resp.status, 401);
        assert_eq!(app.kv.counts().total(), 0);
        assert_eq!(app.http.count(), 0);
    }
    // The key also works as the `code` query parameter (what an action group URL carries).
    let req = ApiRequest {
        method: "GET".into(),
        path: "/captures".into(),
        query: format!("code={KEY}"),
        ..Default::default()
    };
    assert_eq!(app.send(&req).status, 200);
}
store_matrix!(wrong_or_missing_key_is_401_before_any_read: Strict, SpinSqlite, SpinRedis, Eventual);

fn healthz_names_problems_without_values(store: StoreBehaviour) {
    let app = TestApp::builder()
        .store(store)
        .var("capture_time_limit_seconds", "987654")
        .var("azure_client_secret", "")
        .build();
    let (resp, v) = app.call("GET", "/healthz", b"");
    assert_eq!(resp.status, 200);
    assert_eq!(v["status"], "degraded");
    let names: Vec<&str> = v["problems"].as_array().unwrap().iter().map(|p| p["variable"].as_str().unwrap()).collect();
    assert_eq!(names, ["azure_client_secret", "capture_time_limit_seconds"]);
    assert!(!String::from_utf8_lossy(&resp.body).contains("987654"));
    // Keyed routes fail closed with a 500 naming the variables.
    let (resp, v) = app.poll();
    assert_eq!(resp.status, 500);
    assert!(v["detail"].as_str().unwrap().contains("azure_client_secret"));
}
store_matrix!(healthz_names_problems_without_values: Strict, SpinSqlite, SpinRedis, Eventual);

/// Every real alert sample through the API, unchanged: the status each one gets. Azure is
/// unreachable here (unscripted), so an accepted alert is recorded and queued (`202`).
fn every_alert_sample_gets_its_answer(store: StoreBehaviour) {
    let expected: &[(&str, u16, &str)] = &[
        ("classic.metric.website.alerts-webhooks.json", 422, "no-vm-target"),
        ("common.metric.vm.resolved.alerts-common-schema.json", 200, "resolved"),
        ("common.testaction.activitylog-admin.vm-restart.json", 202, "queued"),
        ("common.testaction.availability.appinsights.json", 422, "no-vm-target"),
        ("common.testaction.cost-budget.json", 422, "no-vm-target"),
        ("common.testaction.logv2.workspace.json", 422, "no-vm-target"),
        ("common.testaction.metric-dynamic.storage.json", 422, "no-vm-target"),
        ("common.testaction.metric-static.storage.json", 422, "no-vm-target"),
        ("common.testaction.resourcehealth.vm.json", 202, "queued"),
        ("common.testaction.smart-alert.appinsights.json", 422, "no-vm-target"),
        ("noncommon.activitylog-admin.vm-restart.json", 202, "queued"),
        ("noncommon.activitylog.servicehealth.json", 422, "no-vm-target"),
        ("noncommon.logv1-numresults.workspace.json", 400, "bad-alert"),
        ("noncommon.metric-dynamic.storage.json", 422, "no-vm-target"),
        ("noncommon.metric-static.storage.json", 422, "no-vm-target"),
        ("noncommon.metric.storage.near-real-time-2018.json", 422, "no-vm-target"),
    ];
    let dir = apc_testkit::http::samples_dir().join("alerts");
    let mut files: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    let listed: Vec<&str> = expected.iter().map(|(f, _, _)| *f).collect();
    assert_eq!(files, listed, "every sample needs an expected answer");
    for (file, status, what) in expected {
        let app = TestApp::with_store(store);
        let body = std::fs::read(dir.join(file)).unwrap();
        let (resp, v) = app.call("POST", "/alerts", &body);
        assert_eq!(resp.status, *status, "{file}: {v}");
        match *status {
            202 => assert_eq!(v["captures"][0]["state"], *what, "{file}: {v}"),
            200 => assert_eq!(v["ignored"], *what, "{file}"),
            _ => assert!(v["type"].as_str().unwrap().ends_with(what), "{file}: {v}"),
        }
    }
}
store_matrix!(every_alert_sample_gets_its_answer: Strict, SpinSqlite, SpinRedis, Eventual);

/// A key-value store whose record writes fail a given number of times (the index and the rest
/// work), as when a store hiccups between the index entry and the record.
struct RecordWritesFail<'a> {
    inner: &'a MemKv,
    left: std::cell::Cell<u32>,
}

impl apc_core::ports::KvStore for RecordWritesFail<'_> {
    fn get(&self, k: &str) -> Result<Option<Vec<u8>>, apc_core::ports::KvError> {
        self.inner.get(k)
    }
    fn set(&self, k: &str, v: &[u8]) -> Result<(), apc_core::ports::KvError> {
        if (k.starts_with("v1:cap:") || k.starts_with("v1:act:")) && self.left.get() > 0 {
            self.left.set(self.left.get() - 1);
            return Err(apc_core::ports::KvError("injected".into()));
        }
        self.inner.set(k, v)
    }
    fn delete(&self, k: &str) -> Result<(), apc_core::ports::KvError> {
        self.inner.delete(k)
    }
    fn list_keys(&self) -> Result<Vec<String>, apc_core::ports::KvError> {
        self.inner.list_keys()
    }
}

/// The first delivery creates the capture, then fails to write the record (503). The
/// redelivery Azure sends must not be answered "duplicate" of nothing: the alert ends on a
/// record that follows the capture the first delivery created (same name: no second capture).
fn an_alert_whose_record_write_failed_is_not_lost_on_redelivery(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let flaky = RecordWritesFail { inner: &app.kv, left: std::cell::Cell::new(1) };
    let req = ApiRequest {
        method: "POST".into(),
        path: "/alerts".into(),
        headers: vec![("content-type".into(), "application/json".into()), ("x-api-key".into(), KEY.into())],
        body: serde_json::to_vec(&common_vm_alert()).unwrap(),
        ..Default::default()
    };
    app.script_cold_path();
    let resp = app.send_with_kv(&req, &flaky);
    assert_eq!(resp.status, 503);
    assert!(app.kv.keys().iter().all(|k| !k.starts_with("v1:al:")), "not acknowledged, not recorded as accepted");

    app.clock.advance(10);
    app.settle();
    app.http.route(Method::Put, NW2, sample_response("network-watcher/PacketCaptureCreate.2026-07-01.json", 201));
    let (resp, v) = app.post_alert(&common_vm_alert());
    assert!(resp.status == 200 || resp.status == 202, "{v}");
    let id = capture_id(&v);
    app.clock.advance(1);
    app.poll();
    let rec = app.record(&id);
    assert_eq!(rec["state"], "running", "the capture is followed: {rec}");
    assert_eq!(rec["alert_ids"].as_array().unwrap().len(), 1, "{rec}");
    let puts: Vec<String> =
        app.http.requests().iter().filter(|r| r.method == Method::Put).map(|r| r.url.clone()).collect();
    assert_eq!(puts.len(), 2, "the redelivery PUTs again: {puts:?}");
    assert!(
        puts.iter().all(|u| *u == format!("{NW2}/{id}?api-version=2025-07-01")),
        "one Azure capture name: {puts:?}"
    );
}
store_matrix!(an_alert_whose_record_write_failed_is_not_lost_on_redelivery: Strict, SpinSqlite, SpinRedis, Eventual);

/// A capture on a whole scale set holds its instances too: an alert on one instance while
/// the set is captured is attached, not started.
fn a_scale_set_capture_holds_its_instances(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let set = format!("/subscriptions/{SUB}/resourceGroups/rg2/providers/Microsoft.Compute/virtualMachineScaleSets/ss");
    let mut a = classic_vm_alert("x", "on-set");
    a["context"]["resourceId"] = json!(set);
    app.script_token();
    app.http.route(
        Method::Get,
        WATCHERS_URL,
        sample_response("network-watcher/NetworkWatcherListAll.2026-07-01.json", 200),
    );
    app.http.route(Method::Put, NW2, sample_response("network-watcher/PacketCaptureCreate.2026-07-01.json", 201));
    let (resp, v) = app.post_alert(&a);
    assert_eq!(resp.status, 202, "{v}");
    app.settle();
    let mut b = classic_vm_alert("x", "on-instance");
    b["context"]["resourceId"] = json!(format!("{set}/virtualMachines/3"));
    let (resp, v) = app.post_alert(&b);
    assert_eq!(resp.status, 200, "{v}");
    assert_eq!(v["coalesced"], true);
    assert_eq!(app.http.requests().iter().filter(|r| r.method == Method::Put).count(), 1);
}
store_matrix!(a_scale_set_capture_holds_its_instances: Strict, SpinSqlite, SpinRedis, Eventual);

/// A capture Azure never reports as running is stopped at the watchdog and recorded as
/// failed (there is no file to point at), not as succeeded.
fn a_capture_that_never_ran_fails_at_the_watchdog(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let id = running_capture(&app);
    let mut status =
        sample_json("network-watcher/PacketCaptureQueryStatus.2026-07-01.json")["responses"]["200"]["body"].clone();
    status["packetCaptureStatus"] = json!("NotStarted");
    status.as_object_mut().unwrap().remove("stopReason");
    app.http.route_always(
        Method::Post,
        format!("{NW2}/{id}/queryStatus"),
        ScriptedHttp::json(200, &status.to_string()),
    );
    app.http.route(Method::Post, format!("{NW2}/{id}/stop"), ScriptedHttp::empty(200));
    app.http.route_always(Method::Post, NOTIFY, ScriptedHttp::empty(200));
    app.http.route_always(Method::Delete, NW2, ScriptedHttp::empty(204));
    for _ in 0..30 {
        app.clock.advance(30);
        app.poll();
    }
    let rec = app.record(&id);
    assert_eq!(rec["state"], "failed", "{rec}");
    assert_eq!(rec["stop_reason"], "TimedOutByResponder");
    assert!(rec["errors"].to_string().contains("never started"), "{rec}");
    assert_eq!(app.http.requests().iter().filter(|r| r.url.contains("/stop")).count(), 1);
}
store_matrix!(a_capture_that_never_ran_fails_at_the_watchdog: Strict, SpinSqlite, SpinRedis, Eventual);

/// Azure failing every status check does not hold the VM forever: past the time limit, the
/// grace and an hour, the capture is given up as failed and notified.
fn a_capture_azure_cannot_report_on_is_given_up(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let id = running_capture(&app);
    app.http.route_always(
        Method::Post,
        format!("{NW2}/{id}/queryStatus"),
        ScriptedHttp::arm_error(503, "ServiceUnavailable", "down"),
    );
    app.http.route_always(Method::Post, NOTIFY, ScriptedHttp::empty(200));
    app.http.route_always(Method::Delete, NW2, ScriptedHttp::empty(204));
    let mut polls = 0;
    while app.record(&id)["state"] == "running" && polls < 400 {
        app.clock.advance(60);
        app.poll();
        polls += 1;
    }
    let rec = app.record(&id);
    assert_eq!(rec["state"], "failed", "{rec}");
    assert!(rec["errors"].to_string().contains("gave up"), "{rec}");
    assert!(polls * 60 >= 300 + 300 + 3600, "not given up before limit + grace + an hour ({polls} polls)");
    assert_eq!(rec["notified"], true);
}
store_matrix!(a_capture_azure_cannot_report_on_is_given_up: Strict, SpinSqlite, SpinRedis, Eventual);
