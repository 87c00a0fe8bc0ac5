//! Long-running `queryStatus` answers across requests (issue 8): real ARM answers `202` with
//! an empty body, a `Location` and `Retry-After: 10`. The operation is kept on the record and
//! asked when Azure allows, instead of a new `queryStatus` on every poll. Everything goes
//! through `api::handle` (POST /alerts, POST /poll, POST /captures/{id}/stop) with a scripted
//! transport and a clock the tests move.

use apc_core::ports::{Method, OutboundResponse};
use apc_core::timefmt::rfc3339;
use apc_testkit::alerts::common_vm_alert;
use apc_testkit::app::capture_id;
use apc_testkit::consts::{ARM, CAPTURE_GET, NOTIFY, NW2, SUB, T0, capture_url, status_url};
use apc_testkit::http::{ScriptedHttp, sample_json, with_header};
use apc_testkit::{StoreBehaviour, TestApp, store_matrix};
use serde_json::{Value, json};

const RUNNING: &str = r#"{"packetCaptureStatus":"Running","packetCaptureError":[]}"#;
const STOPPED: &str = r#"{"packetCaptureStatus":"Stopped","stopReason":"TimeExceeded","packetCaptureError":[]}"#;

/// `POST /poll`, which must answer 200; its body.
fn poll(app: &TestApp) -> Value {
    let (resp, v) = app.poll();
    assert_eq!(resp.status, 200, "{v}");
    v
}

/// A running capture on VM wcus-r2-gen2, created at T0; the log is cleared.
fn running_capture(app: &TestApp) -> String {
    app.script_cold_path();
    let (resp, v) = app.post_alert(&common_vm_alert());
    assert_eq!(resp.status, 202, "{v}");
    app.http.assert_done();
    app.http.clear_log();
    let id = capture_id(&v);
    assert_eq!(app.record(&id)["next_check_at"], json!(T0 + 30));
    id
}

fn op_url(n: u32) -> String {
    format!(
        "{ARM}/subscriptions/{SUB}/providers/Microsoft.Network/locations/westus/operationResults/op{n}?api-version=2025-07-01"
    )
}

fn async_url(n: u32) -> String {
    format!(
        "{ARM}/subscriptions/{SUB}/providers/Microsoft.Network/locations/westus/operations/op{n}?api-version=2025-07-01"
    )
}

/// What real ARM answers to queryStatus: `202`, no body, `Location`, `Azure-AsyncOperation`
/// and `Retry-After`.
fn accepted(n: u32, retry_after: &str) -> OutboundResponse {
    let r = with_header(ScriptedHttp::empty(202), "Location", &op_url(n));
    let r = with_header(r, "Azure-AsyncOperation", &async_url(n));
    with_header(r, "Retry-After", retry_after)
}

/// Poll once at T0 + 31 with queryStatus answering like real ARM; the operation is stored.
fn pending_capture(app: &TestApp) -> String {
    let id = running_capture(app);
    app.clock.set(T0 + 31);
    app.http.expect(Method::Post, status_url(&id), accepted(1, "10"));
    let v = poll(app);
    assert_eq!(v["advanced"], 1, "{v}");
    app.http.assert_done();
    app.http.clear_log();
    id
}

fn an_accepted_status_is_asked_at_its_location_when_retry_after_allows(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let id = running_capture(&app);

    // The first check: real ARM's answer. No error line, the operation kept, the next check
    // exactly when Retry-After allows, and the poll counts nothing as still due.
    app.clock.set(T0 + 31);
    app.http.expect(Method::Post, status_url(&id), accepted(1, "10"));
    let v = poll(&app);
    assert_eq!((v["advanced"].clone(), v["due"].clone()), (json!(1), json!(0)), "{v}");
    assert_eq!(v["next_check_at"], rfc3339(T0 + 41));
    app.http.assert_done();
    let rec = app.record(&id);
    assert_eq!(rec["errors"], json!([]), "{rec}");
    assert_eq!(rec["state"], "running");
    assert_eq!(rec["next_check_at"], json!(T0 + 41));
    assert_eq!(rec["status_operation"]["url"], op_url(1));
    assert_eq!(rec["status_operation"]["kind"], "location");
    assert_eq!(rec["status_operation"]["since"], json!(T0 + 31));

    // Before the 10 s are up a poll does nothing for it.
    app.http.clear_log();
    app.clock.set(T0 + 40);
    let v = poll(&app);
    assert_eq!((v["advanced"].clone(), v["due"].clone()), (json!(0), json!(0)), "{v}");
    assert_eq!(app.http.count(), 0);

    // At 10 s: a GET of the stored Location, no new queryStatus. Still 202: still pending.
    app.clock.set(T0 + 41);
    app.http.expect(Method::Get, op_url(1), with_header(ScriptedHttp::empty(202), "Retry-After", "10"));
    let v = poll(&app);
    assert_eq!(v["advanced"], 1);
    assert_eq!(app.http.calls(), [format!("GET {}", op_url(1))]);
    let get = app.http.request(0).unwrap();
    assert!(get.header("authorization").is_some_and(|a| a.starts_with("Bearer ")));
    let rec = app.record(&id);
    assert_eq!(rec["errors"], json!([]), "{rec}");
    assert_eq!(rec["status_operation"]["url"], op_url(1));
    assert_eq!(rec["status_operation"]["since"], json!(T0 + 31), "kept from the first 202");
    assert_eq!(rec["next_check_at"], json!(T0 + 51));

    // Then 200 with the status: succeeded, one notification, and no queryStatus at all.
    app.http.clear_log();
    app.clock.set(T0 + 51);
    app.http.expect(Method::Get, op_url(1), ScriptedHttp::json(200, STOPPED));
    app.script_finish(&id);
    poll(&app);
    app.http.assert_done();
    assert_eq!(
        app.http.calls(),
        [
            format!("GET {}", op_url(1)),
            format!("GET {}", capture_url(&id)),
            format!("POST {NOTIFY}"),
            format!("DELETE {}", capture_url(&id)),
        ]
    );
    let rec = app.record(&id);
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(rec["stop_reason"], "TimeExceeded");
    assert_eq!(rec["errors"], json!([]));
    assert!(rec.get("status_operation").is_none(), "cleared when terminal: {rec}");
    let note: Value = serde_json::from_slice(&app.http.request(2).unwrap().body).unwrap();
    assert_eq!(note["type"], "capture.succeeded");

    // Nothing left but the look at late-attached alerts, which calls nothing; no second
    // notification.
    app.http.clear_log();
    app.clock.advance(3600);
    let v = poll(&app);
    assert_eq!((v["advanced"].clone(), v["due"].clone()), (json!(1), json!(0)));
    let v = poll(&app);
    assert_eq!((v["advanced"].clone(), v["due"].clone()), (json!(0), json!(0)));
    assert_eq!(app.http.count(), 0);
}
store_matrix!(an_accepted_status_is_asked_at_its_location_when_retry_after_allows: Strict, SpinSqlite, SpinRedis, Eventual);

/// A scheduler that polls every minute: each poll asks the stored operation once (the wait has
/// passed), and no poll issues a queryStatus while the operation is alive.
fn a_once_a_minute_scheduler_asks_the_operation_not_query_status(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let id = running_capture(&app);
    app.http.route_always(Method::Post, status_url(&id), accepted(1, "10"));
    app.http.route_always(Method::Get, op_url(1), with_header(ScriptedHttp::empty(202), "Retry-After", "10"));
    for minute in 1..=5 {
        app.clock.set(T0 + 60 * minute);
        let v = poll(&app);
        assert_eq!(v["advanced"], 1, "minute {minute}: {v}");
        assert_eq!(v["due"], 0, "minute {minute}: {v}");
        assert_eq!(v["next_check_at"], rfc3339(T0 + 60 * minute + 10));
    }
    let sent = app.http.calls();
    assert_eq!(sent.iter().filter(|r| r.starts_with("POST")).count(), 1, "{sent:?}");
    assert_eq!(sent.iter().filter(|r| **r == format!("GET {}", op_url(1))).count(), 4, "{sent:?}");
    let rec = app.record(&id);
    assert_eq!(rec["errors"], json!([]), "{rec}");
    assert_eq!(rec["state"], "running");
}
store_matrix!(a_once_a_minute_scheduler_asks_the_operation_not_query_status: Strict, SpinSqlite, SpinRedis, Eventual);

/// At T0 + 41 the stored operation at `op` answers `answer`: it is dropped, and one fresh
/// queryStatus (answering Running) is sent in the same check. Returns the record.
fn dropped_and_asked_afresh(app: &TestApp, id: &str, op: &str, answer: OutboundResponse) -> Value {
    app.clock.set(T0 + 41);
    app.http.expect(Method::Get, op, answer);
    app.http.expect(Method::Post, status_url(id), ScriptedHttp::json(200, RUNNING));
    poll(app);
    app.http.assert_done();
    assert_eq!(app.http.calls(), [format!("GET {op}"), format!("POST {}", status_url(id))]);
    let rec = app.record(id);
    assert_eq!(rec["azure_status"], "Running", "{rec}");
    assert!(rec.get("status_operation").is_none(), "{rec}");
    rec
}

fn a_gone_or_failed_operation_is_dropped_and_query_status_asked_afresh_once(store: StoreBehaviour) {
    // 404 from the Location: one fresh queryStatus in the same check, which answers.
    let app = TestApp::with_store(store);
    let id = pending_capture(&app);
    let not_found = ScriptedHttp::arm_error(404, "OperationNotFound", "expired");
    let rec = dropped_and_asked_afresh(&app, &id, &op_url(1), not_found);
    assert_eq!(rec["errors"], json!([]), "{rec}");

    // 410, and the fresh queryStatus is accepted again: the new operation replaces the old.
    let app = TestApp::with_store(store);
    let id = pending_capture(&app);
    app.clock.set(T0 + 41);
    app.http.expect(Method::Get, op_url(1), ScriptedHttp::empty(410));
    app.http.expect(Method::Post, status_url(&id), accepted(2, "20"));
    poll(&app);
    app.http.assert_done();
    let rec = app.record(&id);
    assert_eq!(rec["status_operation"]["url"], op_url(2));
    assert_eq!(rec["status_operation"]["since"], json!(T0 + 41));
    assert_eq!(rec["next_check_at"], json!(T0 + 61));
    assert_eq!(rec["errors"], json!([]));

    // An Azure-AsyncOperation that ended Failed, then Canceled: dropped, one fresh queryStatus.
    for ended in ["Failed", "Canceled"] {
        let app = TestApp::with_store(store);
        let id = running_capture(&app);
        app.clock.set(T0 + 31);
        let only_async = with_header(
            with_header(ScriptedHttp::empty(202), "Azure-AsyncOperation", &async_url(1)),
            "Retry-After",
            "10",
        );
        app.http.expect(Method::Post, status_url(&id), only_async);
        poll(&app);
        assert_eq!(app.record(&id)["status_operation"]["kind"], "async-operation");
        app.http.clear_log();
        let body = json!({"status": ended, "error": {"code": "InternalServerError", "message": "lost"}});
        dropped_and_asked_afresh(&app, &id, &async_url(1), ScriptedHttp::json(200, &body.to_string()));
    }

    // A Location whose operation failed answers with its error status: dropped the same way.
    let app = TestApp::with_store(store);
    let id = pending_capture(&app);
    let failed = ScriptedHttp::arm_error(500, "PacketCaptureFailed", "failed");
    dropped_and_asked_afresh(&app, &id, &op_url(1), failed);
}
store_matrix!(a_gone_or_failed_operation_is_dropped_and_query_status_asked_afresh_once: Strict, SpinSqlite, SpinRedis, Eventual);

fn a_throttled_operation_is_kept_and_the_wait_honoured(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let id = pending_capture(&app);
    app.clock.set(T0 + 41);
    app.http.expect(
        Method::Get,
        op_url(1),
        with_header(ScriptedHttp::arm_error(429, "TooManyRequests", "slow down"), "Retry-After", "90"),
    );
    poll(&app);
    app.http.assert_done();
    assert_eq!(app.http.calls(), [format!("GET {}", op_url(1))], "no fresh queryStatus on a throttle");
    let rec = app.record(&id);
    assert_eq!(rec["status_operation"]["url"], op_url(1));
    assert_eq!(rec["next_check_at"], json!(T0 + 41 + 90));
    // A throttle is a real failure of the call, so it is recorded.
    assert_eq!(rec["errors"].as_array().unwrap().len(), 1, "{rec}");
}
store_matrix!(a_throttled_operation_is_kept_and_the_wait_honoured: Strict, SpinSqlite, SpinRedis, Eventual);

fn a_stored_operation_that_no_longer_validates_is_dropped_not_followed(store: StoreBehaviour) {
    let hostile = [
        "https://evil.example/subscriptions/x/operationResults/1",
        "https://management.azure.com.evil.example/op",
        "https://management.azure.com@evil.example/op",
        "http://management.azure.com/op",
        "https://management.azure.com:8443/op",
        "//management.azure.com/op",
        "https://management.azure.com/op\r\nx-injected: 1",
        "not a url",
    ];
    for url in hostile {
        let app = TestApp::with_store(store);
        let id = pending_capture(&app);
        let mut rec = app.record(&id);
        rec["status_operation"]["url"] = json!(url);
        app.put_record(&id, &rec);
        app.clock.set(T0 + 41);
        app.http.route_always(Method::Get, "", ScriptedHttp::json(200, STOPPED));
        app.http.expect(Method::Post, status_url(&id), ScriptedHttp::json(200, RUNNING));
        poll(&app);
        assert_eq!(app.http.calls(), [format!("POST {}", status_url(&id))], "{url:?} was followed");
        let rec = app.record(&id);
        assert!(rec.get("status_operation").is_none(), "{url:?}: {rec}");
        assert_eq!(rec["azure_status"], "Running");
        assert!(!rec.to_string().contains("evil"), "{rec}");
    }
}
store_matrix!(a_stored_operation_that_no_longer_validates_is_dropped_not_followed: Strict, SpinSqlite, SpinRedis, Eventual);

fn an_operation_unanswered_for_ten_minutes_is_dropped(store: StoreBehaviour) {
    // A long capture, so the ten minutes end before its watchdog.
    let app = TestApp::builder().store(store).var("capture_time_limit_seconds", "1800").build();
    let id = pending_capture(&app);
    app.http.route_always(Method::Get, op_url(1), with_header(ScriptedHttp::empty(202), "Retry-After", "60"));
    // Asked at +41 (10 s after), then every 60 s while younger than 600 s.
    let mut t = T0 + 41;
    while t < T0 + 31 + 600 {
        app.clock.set(t);
        poll(&app);
        t += 60;
    }
    assert!(app.http.calls().iter().all(|r| r.starts_with("GET ")), "{:?}", app.http.calls());
    let gets = app.http.count();
    assert_eq!(gets, 10);
    app.http.clear_log();
    app.clock.set(t);
    app.http.expect(Method::Post, status_url(&id), ScriptedHttp::json(200, RUNNING));
    poll(&app);
    app.http.assert_done();
    assert_eq!(app.http.calls(), [format!("POST {}", status_url(&id))]);
    assert!(app.record(&id).get("status_operation").is_none());
    assert_eq!(app.record(&id)["errors"], json!([]));
}
store_matrix!(an_operation_unanswered_for_ten_minutes_is_dropped: Strict, SpinSqlite, SpinRedis, Eventual);

/// A pending capture about to be stopped at T0 + 35: the stop answers `stop`, and the check
/// right after it (a fresh queryStatus) answers `status`.
fn stop_scripted(store: StoreBehaviour, stop: OutboundResponse, status: OutboundResponse) -> (TestApp, String) {
    let app = TestApp::with_store(store);
    let id = pending_capture(&app);
    app.clock.set(T0 + 35);
    app.http.expect(Method::Post, format!("{NW2}/{id}/stop?api-version=2025-07-01"), stop);
    app.http.expect(Method::Post, status_url(&id), status);
    (app, id)
}

fn a_stop_clears_the_pending_operation(store: StoreBehaviour) {
    // The check right after the stop asks afresh: the stored operation might tell the status
    // from before the stop.
    let (app, id) = stop_scripted(store, ScriptedHttp::empty(200), ScriptedHttp::json(200, STOPPED));
    app.script_finish(&id);
    let (resp, v) = app.stop_capture(&id);
    assert_eq!(resp.status, 200, "{v}");
    app.http.assert_done();
    assert!(!app.http.calls().iter().any(|r| r.contains("operationResults")), "{:?}", app.http.calls());
    let rec = app.record(&id);
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert!(rec.get("status_operation").is_none(), "{rec}");
}
store_matrix!(a_stop_clears_the_pending_operation: Strict, SpinSqlite, SpinRedis, Eventual);

fn a_stop_whose_check_is_pending_keeps_only_the_new_operation(store: StoreBehaviour) {
    let (app, id) = stop_scripted(store, ScriptedHttp::empty(202), accepted(7, "10"));
    let (resp, v) = app.stop_capture(&id);
    assert_eq!(resp.status, 200, "{v}");
    app.http.assert_done();
    let rec = app.record(&id);
    assert_eq!(rec["state"], "running");
    assert_eq!(rec["status_operation"]["url"], op_url(7));
    assert_eq!(rec["next_check_at"], json!(T0 + 45));
    assert_eq!(rec["errors"], json!([]));
}
store_matrix!(a_stop_whose_check_is_pending_keeps_only_the_new_operation: Strict, SpinSqlite, SpinRedis, Eventual);

/// The watchdog stop of a capture whose status came through a stored operation: the
/// operation is consumed by the answer and nothing is kept after the stop.
fn the_watchdog_stop_leaves_no_operation(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let id = pending_capture(&app);
    // Time limit 300 s and grace 300 s: the watchdog is at T0 + 600.
    app.clock.set(T0 + 600);
    app.http.expect(Method::Get, op_url(1), ScriptedHttp::json(200, RUNNING));
    app.http.expect(Method::Post, format!("{NW2}/{id}/stop?api-version=2025-07-01"), ScriptedHttp::empty(200));
    app.script_finish(&id);
    poll(&app);
    app.http.assert_done();
    let rec = app.record(&id);
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(rec["stop_reason"], "TimedOutByResponder");
    assert!(rec.get("status_operation").is_none(), "{rec}");
}
store_matrix!(the_watchdog_stop_leaves_no_operation: Strict, SpinSqlite, SpinRedis, Eventual);

/// The emulator (like ARM) shows a capture in `Error` as `provisioningState: Failed` on GET:
/// that is a failed capture with Azure's reason, not a success.
fn a_capture_get_saying_provisioning_failed_is_a_failure_with_the_reason(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let id = running_capture(&app);
    app.clock.set(T0 + 31);
    app.http.expect(Method::Post, status_url(&id), ScriptedHttp::json(200, STOPPED));
    let mut got = sample_json(CAPTURE_GET)["responses"]["200"]["body"].clone();
    got["properties"]["provisioningState"] = json!("Failed");
    got["properties"]["packetCaptureError"] = json!(["CaptureFailed"]);
    app.http.expect(Method::Get, capture_url(&id), ScriptedHttp::json(200, &got.to_string()));
    app.http.expect(Method::Post, NOTIFY, ScriptedHttp::empty(200));
    app.http.expect(Method::Delete, capture_url(&id), ScriptedHttp::empty(204));
    poll(&app);
    app.http.assert_done();
    let rec = app.record(&id);
    assert_eq!(rec["state"], "failed", "{rec}");
    let errors = rec["errors"].to_string();
    assert!(errors.contains("Failed") && errors.contains("CaptureFailed"), "{errors}");
    let note: Value = serde_json::from_slice(&app.http.request(2).unwrap().body).unwrap();
    assert_eq!(note["type"], "capture.failed");

    // With `error` instead of a list, its code and message are the reason.
    let app = TestApp::with_store(store);
    let id = running_capture(&app);
    app.clock.set(T0 + 31);
    app.http.expect(Method::Post, status_url(&id), ScriptedHttp::json(200, STOPPED));
    got["properties"].as_object_mut().unwrap().remove("packetCaptureError");
    got["properties"]["error"] = json!({"code": "AgentUnreachable", "message": "no agent"});
    app.http.expect(Method::Get, capture_url(&id), ScriptedHttp::json(200, &got.to_string()));
    app.http.route_always(Method::Post, NOTIFY, ScriptedHttp::empty(200));
    app.http.route_always(Method::Delete, NW2, ScriptedHttp::empty(204));
    poll(&app);
    let rec = app.record(&id);
    assert_eq!(rec["state"], "failed", "{rec}");
    assert!(rec["errors"].to_string().contains("AgentUnreachable: no agent"), "{rec}");
}
store_matrix!(a_capture_get_saying_provisioning_failed_is_a_failure_with_the_reason: Strict, SpinSqlite, SpinRedis, Eventual);

fn capture_start_time_is_read_in_azure_shapes_and_kept_raw_when_unreadable(store: StoreBehaviour) {
    for (given, shown) in [
        ("9/7/2016 12:35:24PM", "2016-09-07T12:35:24Z"),
        ("2016-12-06T17:20:01.5671279Z", "2016-12-06T17:20:01Z"),
        ("soon-ish", "soon-ish"),
    ] {
        let app = TestApp::with_store(store);
        let id = running_capture(&app);
        app.clock.set(T0 + 31);
        let body = json!({"packetCaptureStatus": "Running", "captureStartTime": given});
        app.http.expect(Method::Post, status_url(&id), ScriptedHttp::json(200, &body.to_string()));
        poll(&app);
        app.http.assert_done();
        assert_eq!(app.record(&id)["capture_start_time"], shown, "{given}");
        app.settle();
        let (_, v) = app.get_capture(&id);
        assert_eq!(v["capture_start_time"], shown, "{given}");
    }
}
store_matrix!(capture_start_time_is_read_in_azure_shapes_and_kept_raw_when_unreadable: Strict, SpinSqlite, SpinRedis, Eventual);

/// A refusal to read the operation is a real failure, recorded with the role action it
/// names, not silently replaced by a fresh queryStatus.
fn a_refused_operation_read_is_recorded(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let id = pending_capture(&app);
    app.clock.set(T0 + 41);
    let refusal = "The client 'x' with object id 'y' does not have authorization to perform action \
                   'Microsoft.Network/locations/operationResults/read' over scope '/subscriptions/z'.";
    app.http.expect(Method::Get, op_url(1), ScriptedHttp::arm_error(403, "AuthorizationFailed", refusal));
    app.http.route_always(Method::Post, NOTIFY, ScriptedHttp::empty(200));
    app.http.route_always(Method::Delete, NW2, ScriptedHttp::empty(204));
    poll(&app);
    assert!(!app.http.calls().iter().any(|r| r.contains("/queryStatus")), "{:?}", app.http.calls());
    let rec = app.record(&id);
    let errors = rec["errors"].to_string();
    assert!(errors.contains("Microsoft.Network/locations/operationResults/read"), "{rec}");
    // As for any AuthorizationFailed (and as the same refusal did when followed inline).
    assert_eq!(rec["state"], "failed", "{rec}");
    assert!(rec.get("status_operation").is_none(), "terminal: {rec}");
}
store_matrix!(a_refused_operation_read_is_recorded: Strict, SpinSqlite, SpinRedis, Eventual);
