//! Long-running `queryStatus` answers across requests (issue 8): real ARM answers `202` with
//! an empty body, a `Location` and `Retry-After: 10`. The operation is kept on the record and
//! asked when Azure allows, instead of a new `queryStatus` on every poll. Everything goes
//! through `api::handle` (POST /alerts, POST /poll, POST /captures/{id}/stop) with a scripted
//! transport and a clock the tests move.

use apc_core::api::{self, ApiRequest, ApiResponse};
use apc_core::ports::{KvStore, Method, OutboundResponse, World};
use apc_core::store;
use apc_core::timefmt::rfc3339;
use apc_testkit::http::{ScriptedHttp, sample_file_response, sample_json, sample_response, with_header};
use apc_testkit::{MapVars, MemKv, TestClock};
use serde_json::{Value, json};

const SUB: &str = "00000000-0000-0000-0000-000000000000";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const KEY: &str = "webhook-key-0123456789";
const ARM: &str = "https://management.azure.com";
const TOKEN_URL: &str = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token";
const NOTIFY: &str = "https://hooks.example.com/apc/events";
const T0: i64 = 1_780_000_000;

const VM1_URL: &str = "https://management.azure.com/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/pipelinealertrg/providers/Microsoft.Compute/virtualMachines/wcus-r2-gen2?api-version=2025-04-01";
const WATCHERS_URL: &str = "https://management.azure.com/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Network/networkWatchers?api-version=2025-07-01";
const NW2: &str = "https://management.azure.com/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/providers/Microsoft.Network/networkWatchers/nw2/packetCaptures";

const RUNNING: &str = r#"{"packetCaptureStatus":"Running","packetCaptureError":[]}"#;
const STOPPED: &str = r#"{"packetCaptureStatus":"Stopped","stopReason":"TimeExceeded","packetCaptureError":[]}"#;

struct Env {
    http: ScriptedHttp,
    kv: MemKv,
    clock: TestClock,
    vars: MapVars,
}

impl Env {
    fn new() -> Self {
        let vars = MapVars::from_pairs(&[
            ("azure_tenant_id", TENANT),
            ("azure_client_id", "11111111-2222-3333-4444-555555555555"),
            ("azure_client_secret", "client-secret-value"),
            ("webhook_keys", KEY),
            (
                "storage_account_id",
                "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg2/providers/Microsoft.Storage/storageAccounts/pcstore",
            ),
            ("notify_url", NOTIFY),
            ("notify_host", "https://hooks.example.com"),
        ]);
        Env { http: ScriptedHttp::new(), kv: MemKv::new(), clock: TestClock::at(T0), vars }
    }

    fn call(&self, method: &str, path: &str) -> (ApiResponse, Value) {
        let (body, path) = if method == "POST" && path == "/alerts" {
            (serde_json::to_vec(&common_vm_alert()).unwrap(), path)
        } else {
            (Vec::new(), path)
        };
        let req = ApiRequest {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: vec![("content-type".into(), "application/json".into()), ("x-api-key".into(), KEY.into())],
            body,
            body_too_large: false,
            request_id: "t".into(),
        };
        let world = World { http: &self.http, kv: &self.kv, clock: &self.clock };
        let resp = api::handle(&req, &self.vars, world);
        let v: Value = serde_json::from_slice(&resp.body).expect("JSON body");
        (resp, v)
    }

    fn poll(&self) -> Value {
        let (resp, v) = self.call("POST", "/poll");
        assert_eq!(resp.status, 200, "{v}");
        v
    }

    fn record(&self, id: &str) -> Value {
        let raw = self.kv.get_string(&store::record_key(id)).expect("record stored");
        serde_json::from_str(&raw).unwrap()
    }

    fn put_record(&self, id: &str, rec: &Value) {
        self.kv.set(&store::record_key(id), &serde_json::to_vec(rec).unwrap()).unwrap();
    }

    /// `METHOD url` of every request since the log was cleared.
    fn sent(&self) -> Vec<String> {
        self.http.requests().iter().map(|r| format!("{} {}", r.method, r.url)).collect()
    }

    /// A running capture on VM wcus-r2-gen2, created at T0; the log is cleared.
    fn running_capture(&self) -> String {
        self.http.expect(
            Method::Post,
            TOKEN_URL,
            sample_file_response("token/client-credentials.success.entra-docs.json", 200),
        );
        self.http.expect(Method::Get, VM1_URL, sample_response("compute/VirtualMachineGet.2025-04-01.json", 200));
        self.http.expect(
            Method::Get,
            WATCHERS_URL,
            sample_response("network-watcher/NetworkWatcherListAll.2026-07-01.json", 200),
        );
        self.http.route(Method::Put, NW2, sample_response("network-watcher/PacketCaptureCreate.2026-07-01.json", 201));
        let (resp, v) = self.call("POST", "/alerts");
        assert_eq!(resp.status, 202, "{v}");
        self.http.assert_done();
        self.http.clear_log();
        let id = v["captures"][0]["id"].as_str().expect("a capture id").to_string();
        assert_eq!(self.record(&id)["next_check_at"], json!(T0 + 30));
        id
    }
}

/// The common-schema sample, made a fired alert on a VM with a real subscription id.
fn common_vm_alert() -> Value {
    let mut v = sample_json("alerts/common.metric.vm.resolved.alerts-common-schema.json");
    let text = v.to_string().replace("<subscription ID>", SUB);
    v = serde_json::from_str(&text).unwrap();
    v["data"]["essentials"]["monitorCondition"] = json!("Fired");
    v
}

fn status_url(id: &str) -> String {
    format!("{NW2}/{id}/queryStatus?api-version=2025-07-01")
}

fn capture_url(id: &str) -> String {
    format!("{NW2}/{id}?api-version=2025-07-01")
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

/// Script the end of a capture that stopped: GET for the file, notification, delete.
fn script_finish(env: &Env, id: &str) {
    env.http.expect(
        Method::Get,
        capture_url(id),
        sample_response("network-watcher/PacketCaptureGet.2026-03-01.json", 200),
    );
    env.http.expect(Method::Post, NOTIFY, ScriptedHttp::empty(200));
    env.http.expect(
        Method::Delete,
        capture_url(id),
        sample_response("network-watcher/PacketCaptureDelete.2026-03-01.json", 204),
    );
}

/// Poll once at T0 + 31 with queryStatus answering like real ARM; the operation is stored.
fn pending_capture(env: &Env) -> String {
    let id = env.running_capture();
    env.clock.set(T0 + 31);
    env.http.expect(Method::Post, status_url(&id), accepted(1, "10"));
    let v = env.poll();
    assert_eq!(v["advanced"], 1, "{v}");
    env.http.assert_done();
    env.http.clear_log();
    id
}

#[test]
fn an_accepted_status_is_asked_at_its_location_when_retry_after_allows() {
    let env = Env::new();
    let id = env.running_capture();

    // The first check: real ARM's answer. No error line, the operation kept, the next check
    // exactly when Retry-After allows, and the poll counts nothing as still due.
    env.clock.set(T0 + 31);
    env.http.expect(Method::Post, status_url(&id), accepted(1, "10"));
    let v = env.poll();
    assert_eq!((v["advanced"].clone(), v["due"].clone()), (json!(1), json!(0)), "{v}");
    assert_eq!(v["next_check_at"], rfc3339(T0 + 41));
    env.http.assert_done();
    let rec = env.record(&id);
    assert_eq!(rec["errors"], json!([]), "{rec}");
    assert_eq!(rec["state"], "running");
    assert_eq!(rec["next_check_at"], json!(T0 + 41));
    assert_eq!(rec["status_operation"]["url"], op_url(1));
    assert_eq!(rec["status_operation"]["kind"], "location");
    assert_eq!(rec["status_operation"]["since"], json!(T0 + 31));

    // Before the 10 s are up a poll does nothing for it.
    env.http.clear_log();
    env.clock.set(T0 + 40);
    let v = env.poll();
    assert_eq!((v["advanced"].clone(), v["due"].clone()), (json!(0), json!(0)), "{v}");
    assert_eq!(env.http.count(), 0);

    // At 10 s: a GET of the stored Location, no new queryStatus. Still 202: still pending.
    env.clock.set(T0 + 41);
    env.http.expect(Method::Get, op_url(1), with_header(ScriptedHttp::empty(202), "Retry-After", "10"));
    let v = env.poll();
    assert_eq!(v["advanced"], 1);
    assert_eq!(env.sent(), [format!("GET {}", op_url(1))]);
    let get = env.http.request(0).unwrap();
    assert!(get.header("authorization").is_some_and(|a| a.starts_with("Bearer ")));
    let rec = env.record(&id);
    assert_eq!(rec["errors"], json!([]), "{rec}");
    assert_eq!(rec["status_operation"]["url"], op_url(1));
    assert_eq!(rec["status_operation"]["since"], json!(T0 + 31), "kept from the first 202");
    assert_eq!(rec["next_check_at"], json!(T0 + 51));

    // Then 200 with the status: succeeded, one notification, and no queryStatus at all.
    env.http.clear_log();
    env.clock.set(T0 + 51);
    env.http.expect(Method::Get, op_url(1), ScriptedHttp::json(200, STOPPED));
    script_finish(&env, &id);
    env.poll();
    env.http.assert_done();
    assert_eq!(
        env.sent(),
        [
            format!("GET {}", op_url(1)),
            format!("GET {}", capture_url(&id)),
            format!("POST {NOTIFY}"),
            format!("DELETE {}", capture_url(&id)),
        ]
    );
    let rec = env.record(&id);
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(rec["stop_reason"], "TimeExceeded");
    assert_eq!(rec["errors"], json!([]));
    assert!(rec.get("status_operation").is_none(), "cleared when terminal: {rec}");
    let note: Value = serde_json::from_slice(&env.http.request(2).unwrap().body).unwrap();
    assert_eq!(note["type"], "capture.succeeded");

    // Nothing left: no second notification.
    env.http.clear_log();
    env.clock.advance(3600);
    let v = env.poll();
    assert_eq!((v["advanced"].clone(), v["due"].clone()), (json!(0), json!(0)));
    assert_eq!(env.http.count(), 0);
}

/// A scheduler that polls every minute: each poll asks the stored operation once (the wait has
/// passed), and no poll issues a queryStatus while the operation is alive.
#[test]
fn a_once_a_minute_scheduler_asks_the_operation_not_query_status() {
    let env = Env::new();
    let id = env.running_capture();
    env.http.route_always(Method::Post, status_url(&id), accepted(1, "10"));
    env.http.route_always(Method::Get, op_url(1), with_header(ScriptedHttp::empty(202), "Retry-After", "10"));
    for minute in 1..=5 {
        env.clock.set(T0 + 60 * minute);
        let v = env.poll();
        assert_eq!(v["advanced"], 1, "minute {minute}: {v}");
        assert_eq!(v["due"], 0, "minute {minute}: {v}");
        assert_eq!(v["next_check_at"], rfc3339(T0 + 60 * minute + 10));
    }
    let sent = env.sent();
    assert_eq!(sent.iter().filter(|r| r.starts_with("POST")).count(), 1, "{sent:?}");
    assert_eq!(sent.iter().filter(|r| **r == format!("GET {}", op_url(1))).count(), 4, "{sent:?}");
    let rec = env.record(&id);
    assert_eq!(rec["errors"], json!([]), "{rec}");
    assert_eq!(rec["state"], "running");
}

#[test]
fn a_gone_or_failed_operation_is_dropped_and_query_status_asked_afresh_once() {
    // 404 from the Location: one fresh queryStatus in the same check, which answers.
    let env = Env::new();
    let id = pending_capture(&env);
    env.clock.set(T0 + 41);
    env.http.expect(Method::Get, op_url(1), ScriptedHttp::arm_error(404, "OperationNotFound", "expired"));
    env.http.expect(Method::Post, status_url(&id), ScriptedHttp::json(200, RUNNING));
    env.poll();
    env.http.assert_done();
    assert_eq!(env.sent(), [format!("GET {}", op_url(1)), format!("POST {}", status_url(&id))]);
    let rec = env.record(&id);
    assert_eq!(rec["azure_status"], "Running");
    assert!(rec.get("status_operation").is_none(), "{rec}");
    assert_eq!(rec["errors"], json!([]), "{rec}");

    // 410, and the fresh queryStatus is accepted again: the new operation replaces the old.
    let env = Env::new();
    let id = pending_capture(&env);
    env.clock.set(T0 + 41);
    env.http.expect(Method::Get, op_url(1), ScriptedHttp::empty(410));
    env.http.expect(Method::Post, status_url(&id), accepted(2, "20"));
    env.poll();
    env.http.assert_done();
    let rec = env.record(&id);
    assert_eq!(rec["status_operation"]["url"], op_url(2));
    assert_eq!(rec["status_operation"]["since"], json!(T0 + 41));
    assert_eq!(rec["next_check_at"], json!(T0 + 61));
    assert_eq!(rec["errors"], json!([]));

    // An Azure-AsyncOperation that ended Failed, then Canceled: dropped, one fresh queryStatus.
    for ended in ["Failed", "Canceled"] {
        let env = Env::new();
        let id = env.running_capture();
        env.clock.set(T0 + 31);
        let only_async = with_header(
            with_header(ScriptedHttp::empty(202), "Azure-AsyncOperation", &async_url(1)),
            "Retry-After",
            "10",
        );
        env.http.expect(Method::Post, status_url(&id), only_async);
        env.poll();
        assert_eq!(env.record(&id)["status_operation"]["kind"], "async-operation");
        env.http.clear_log();
        env.clock.set(T0 + 41);
        let body = json!({"status": ended, "error": {"code": "InternalServerError", "message": "lost"}});
        env.http.expect(Method::Get, async_url(1), ScriptedHttp::json(200, &body.to_string()));
        env.http.expect(Method::Post, status_url(&id), ScriptedHttp::json(200, RUNNING));
        env.poll();
        env.http.assert_done();
        assert_eq!(env.sent(), [format!("GET {}", async_url(1)), format!("POST {}", status_url(&id))], "{ended}");
        let rec = env.record(&id);
        assert_eq!(rec["azure_status"], "Running", "{ended}");
        assert!(rec.get("status_operation").is_none(), "{ended}: {rec}");
    }

    // A Location whose operation failed answers with its error status: dropped the same way.
    let env = Env::new();
    let id = pending_capture(&env);
    env.clock.set(T0 + 41);
    env.http.expect(Method::Get, op_url(1), ScriptedHttp::arm_error(500, "PacketCaptureFailed", "failed"));
    env.http.expect(Method::Post, status_url(&id), ScriptedHttp::json(200, RUNNING));
    env.poll();
    env.http.assert_done();
    assert!(env.record(&id).get("status_operation").is_none());
}

#[test]
fn a_throttled_operation_is_kept_and_the_wait_honoured() {
    let env = Env::new();
    let id = pending_capture(&env);
    env.clock.set(T0 + 41);
    env.http.expect(
        Method::Get,
        op_url(1),
        with_header(ScriptedHttp::arm_error(429, "TooManyRequests", "slow down"), "Retry-After", "90"),
    );
    env.poll();
    env.http.assert_done();
    assert_eq!(env.sent(), [format!("GET {}", op_url(1))], "no fresh queryStatus on a throttle");
    let rec = env.record(&id);
    assert_eq!(rec["status_operation"]["url"], op_url(1));
    assert_eq!(rec["next_check_at"], json!(T0 + 41 + 90));
    // A throttle is a real failure of the call, so it is recorded.
    assert_eq!(rec["errors"].as_array().unwrap().len(), 1, "{rec}");
}

#[test]
fn a_stored_operation_that_no_longer_validates_is_dropped_not_followed() {
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
        let env = Env::new();
        let id = pending_capture(&env);
        let mut rec = env.record(&id);
        rec["status_operation"]["url"] = json!(url);
        env.put_record(&id, &rec);
        env.clock.set(T0 + 41);
        env.http.route_always(Method::Get, "", ScriptedHttp::json(200, STOPPED));
        env.http.expect(Method::Post, status_url(&id), ScriptedHttp::json(200, RUNNING));
        env.poll();
        assert_eq!(env.sent(), [format!("POST {}", status_url(&id))], "{url:?} was followed");
        let rec = env.record(&id);
        assert!(rec.get("status_operation").is_none(), "{url:?}: {rec}");
        assert_eq!(rec["azure_status"], "Running");
        assert!(!rec.to_string().contains("evil"), "{rec}");
    }
}

#[test]
fn an_operation_unanswered_for_ten_minutes_is_dropped() {
    let mut env = Env::new();
    // A long capture, so the ten minutes end before its watchdog.
    env.vars.set("capture_time_limit_seconds", "1800");
    let id = pending_capture(&env);
    env.http.route_always(Method::Get, op_url(1), with_header(ScriptedHttp::empty(202), "Retry-After", "60"));
    // Asked at +41 (10 s after), then every 60 s while younger than 600 s.
    let mut t = T0 + 41;
    while t < T0 + 31 + 600 {
        env.clock.set(t);
        env.poll();
        t += 60;
    }
    assert!(env.sent().iter().all(|r| r.starts_with("GET ")), "{:?}", env.sent());
    let gets = env.http.count();
    assert_eq!(gets, 10);
    env.http.clear_log();
    env.clock.set(t);
    env.http.expect(Method::Post, status_url(&id), ScriptedHttp::json(200, RUNNING));
    env.poll();
    env.http.assert_done();
    assert_eq!(env.sent(), [format!("POST {}", status_url(&id))]);
    assert!(env.record(&id).get("status_operation").is_none());
    assert_eq!(env.record(&id)["errors"], json!([]));
}

#[test]
fn a_stop_clears_the_pending_operation() {
    let env = Env::new();
    let id = pending_capture(&env);
    env.clock.set(T0 + 35);
    env.http.expect(Method::Post, format!("{NW2}/{id}/stop?api-version=2025-07-01"), ScriptedHttp::empty(200));
    // The check right after the stop asks afresh: the stored operation might tell the status
    // from before the stop.
    env.http.expect(Method::Post, status_url(&id), ScriptedHttp::json(200, STOPPED));
    script_finish(&env, &id);
    let (resp, v) = env.call("POST", &format!("/captures/{id}/stop"));
    assert_eq!(resp.status, 200, "{v}");
    env.http.assert_done();
    assert!(!env.sent().iter().any(|r| r.contains("operationResults")), "{:?}", env.sent());
    let rec = env.record(&id);
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert!(rec.get("status_operation").is_none(), "{rec}");
}

#[test]
fn a_stop_whose_check_is_pending_keeps_only_the_new_operation() {
    let env = Env::new();
    let id = pending_capture(&env);
    env.clock.set(T0 + 35);
    env.http.expect(Method::Post, format!("{NW2}/{id}/stop?api-version=2025-07-01"), ScriptedHttp::empty(202));
    env.http.expect(Method::Post, status_url(&id), accepted(7, "10"));
    let (resp, v) = env.call("POST", &format!("/captures/{id}/stop"));
    assert_eq!(resp.status, 200, "{v}");
    env.http.assert_done();
    let rec = env.record(&id);
    assert_eq!(rec["state"], "running");
    assert_eq!(rec["status_operation"]["url"], op_url(7));
    assert_eq!(rec["next_check_at"], json!(T0 + 45));
    assert_eq!(rec["errors"], json!([]));
}

/// The watchdog stop of a capture whose status came through a stored operation: the
/// operation is consumed by the answer and nothing is kept after the stop.
#[test]
fn the_watchdog_stop_leaves_no_operation() {
    let env = Env::new();
    let id = pending_capture(&env);
    // Time limit 300 s and grace 300 s: the watchdog is at T0 + 600.
    env.clock.set(T0 + 600);
    env.http.expect(Method::Get, op_url(1), ScriptedHttp::json(200, RUNNING));
    env.http.expect(Method::Post, format!("{NW2}/{id}/stop?api-version=2025-07-01"), ScriptedHttp::empty(200));
    script_finish(&env, &id);
    env.poll();
    env.http.assert_done();
    let rec = env.record(&id);
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(rec["stop_reason"], "TimedOutByResponder");
    assert!(rec.get("status_operation").is_none(), "{rec}");
}

/// The emulator (like ARM) shows a capture in `Error` as `provisioningState: Failed` on GET:
/// that is a failed capture with Azure's reason, not a success.
#[test]
fn a_capture_get_saying_provisioning_failed_is_a_failure_with_the_reason() {
    let env = Env::new();
    let id = env.running_capture();
    env.clock.set(T0 + 31);
    env.http.expect(Method::Post, status_url(&id), ScriptedHttp::json(200, STOPPED));
    let mut got = sample_json("network-watcher/PacketCaptureGet.2026-03-01.json")["responses"]["200"]["body"].clone();
    got["properties"]["provisioningState"] = json!("Failed");
    got["properties"]["packetCaptureError"] = json!(["CaptureFailed"]);
    env.http.expect(Method::Get, capture_url(&id), ScriptedHttp::json(200, &got.to_string()));
    env.http.expect(Method::Post, NOTIFY, ScriptedHttp::empty(200));
    env.http.expect(Method::Delete, capture_url(&id), ScriptedHttp::empty(204));
    env.poll();
    env.http.assert_done();
    let rec = env.record(&id);
    assert_eq!(rec["state"], "failed", "{rec}");
    let errors = rec["errors"].to_string();
    assert!(errors.contains("Failed") && errors.contains("CaptureFailed"), "{errors}");
    let note: Value = serde_json::from_slice(&env.http.request(2).unwrap().body).unwrap();
    assert_eq!(note["type"], "capture.failed");

    // With `error` instead of a list, its code and message are the reason.
    let env = Env::new();
    let id = env.running_capture();
    env.clock.set(T0 + 31);
    env.http.expect(Method::Post, status_url(&id), ScriptedHttp::json(200, STOPPED));
    got["properties"].as_object_mut().unwrap().remove("packetCaptureError");
    got["properties"]["error"] = json!({"code": "AgentUnreachable", "message": "no agent"});
    env.http.expect(Method::Get, capture_url(&id), ScriptedHttp::json(200, &got.to_string()));
    env.http.route_always(Method::Post, NOTIFY, ScriptedHttp::empty(200));
    env.http.route_always(Method::Delete, NW2, ScriptedHttp::empty(204));
    env.poll();
    let rec = env.record(&id);
    assert_eq!(rec["state"], "failed", "{rec}");
    assert!(rec["errors"].to_string().contains("AgentUnreachable: no agent"), "{rec}");
}

#[test]
fn capture_start_time_is_read_in_azure_shapes_and_kept_raw_when_unreadable() {
    for (given, shown) in [
        ("9/7/2016 12:35:24PM", "2016-09-07T12:35:24Z"),
        ("2016-12-06T17:20:01.5671279Z", "2016-12-06T17:20:01Z"),
        ("soon-ish", "soon-ish"),
    ] {
        let env = Env::new();
        let id = env.running_capture();
        env.clock.set(T0 + 31);
        let body = json!({"packetCaptureStatus": "Running", "captureStartTime": given});
        env.http.expect(Method::Post, status_url(&id), ScriptedHttp::json(200, &body.to_string()));
        env.poll();
        env.http.assert_done();
        assert_eq!(env.record(&id)["capture_start_time"], shown, "{given}");
        let (_, v) = env.call("GET", &format!("/captures/{id}"));
        assert_eq!(v["capture_start_time"], shown, "{given}");
    }
}

/// A refusal to read the operation is a real failure, recorded with the role action it
/// names, not silently replaced by a fresh queryStatus.
#[test]
fn a_refused_operation_read_is_recorded() {
    let env = Env::new();
    let id = pending_capture(&env);
    env.clock.set(T0 + 41);
    let refusal = "The client 'x' with object id 'y' does not have authorization to perform action \
                   'Microsoft.Network/locations/operationResults/read' over scope '/subscriptions/z'.";
    env.http.expect(Method::Get, op_url(1), ScriptedHttp::arm_error(403, "AuthorizationFailed", refusal));
    env.http.route_always(Method::Post, NOTIFY, ScriptedHttp::empty(200));
    env.http.route_always(Method::Delete, NW2, ScriptedHttp::empty(204));
    env.poll();
    assert!(!env.sent().iter().any(|r| r.contains("/queryStatus")), "{:?}", env.sent());
    let rec = env.record(&id);
    let errors = rec["errors"].to_string();
    assert!(errors.contains("Microsoft.Network/locations/operationResults/read"), "{rec}");
    // As for any AuthorizationFailed (and as the same refusal did when followed inline).
    assert_eq!(rec["state"], "failed", "{rec}");
    assert!(rec.get("status_operation").is_none(), "terminal: {rec}");
}
