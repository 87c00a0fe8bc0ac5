//! Configuration problems through `api::handle` (issue 8 §4): a wrong notification setting
//! never blocks a capture; problems are shown to authenticated callers (and, by name, on
//! `/healthz`) only; answers are the same bytes they always were.

use apc_core::advance::{NOTIFY_RECHECK_SECS, STORE_SETTLE_SECS};
use apc_core::api::ApiResponse;
use apc_core::ports::Method;
use apc_testkit::alerts::{classic_vm_alert, common_vm_alert};
use apc_testkit::app::capture_id;
use apc_testkit::consts::{
    CAPTURE_DELETE, CAPTURE_GET, CAPTURE_STATUS_STOPPED, KEY, NOTIFY_HOST, T0, capture_url, status_url,
};
use apc_testkit::http::{ScriptedHttp, sample_response};
use apc_testkit::{StoreBehaviour, TestApp, store_matrix};
use serde_json::{Value, json};

/// The notification URL, with a path part that must never be shown (`t0ken`).
const NOTIFY_SECRET_PATH: &str = "https://hooks.example.com/apc/events-t0ken";

/// The base configuration with one active capture at most, on `store`, with `overrides`. The
/// receiver takes every notification; Azure is left unscripted (unreachable), so accepted
/// alerts stay queued.
fn new_app(store: StoreBehaviour, overrides: Overrides) -> TestApp {
    let app = TestApp::builder()
        .store(store)
        .vars(&[("notify_url", NOTIFY_SECRET_PATH), ("max_active_captures", "1"), ("max_records", "10")])
        .vars(overrides)
        .build();
    app.route_notifications();
    app
}

/// A fired classic alert on `vm` (region in the payload, so no VM read is needed).
fn alert(app: &TestApp, vm: &str) -> (ApiResponse, Value) {
    app.post_alert(&classic_vm_alert(vm, &format!("rule-{vm}")))
}

/// Variables to set, for one case.
type Overrides<'a> = &'a [(&'a str, &'a str)];

fn problem_names(v: &Value) -> Vec<String> {
    v["problems"].as_array().expect("problems").iter().map(|p| p["variable"].as_str().unwrap().to_string()).collect()
}

/// Two alerts with one active slot: the first is queued, the second skipped, which is
/// terminal and due for a notification at once. Returns both answers.
fn two_alerts(app: &TestApp) -> (Value, Value) {
    let (first, a) = alert(app, "vm-a");
    assert_eq!(first.status, 202, "{a}");
    // A moment later: on an eventually consistent store, the first alert's writes have
    // replicated (the limit is best effort while they have not: docs/STATE.md).
    app.settle();
    let (second, b) = alert(app, "vm-b");
    assert_eq!(second.status, 200, "{b}");
    assert_eq!(b["skipped"], "limit", "{b}");
    (a, b)
}

fn with_correct_settings_the_skipped_alert_is_notified(store: StoreBehaviour) {
    // The control for the test below: the same steps do send a notification.
    let app = new_app(store, &[]);
    let (_, b) = two_alerts(&app);
    let rec = app.record(&capture_id(&b));
    assert_eq!(rec["notified"], true, "{rec}");
    assert_eq!(app.notifications().len(), 1);
    assert!(rec["notify_error"].is_null(), "{rec}");
    let errors = rec["errors"].as_array().unwrap();
    assert!(!errors.iter().any(|e| e.as_str().unwrap().starts_with("notifications are off")), "{rec}");
}
store_matrix!(with_correct_settings_the_skipped_alert_is_notified: Strict, SpinSqlite, SpinRedis, Eventual);

fn wrong_notification_settings_never_block_a_capture(store: StoreBehaviour) {
    let cases: &[(Overrides, &[&str])] = &[
        (&[("notify_host", "https://other.example.com")], &["notify_host"]),
        (&[("notify_host", "https://hooks.example.com/path")], &["notify_host"]),
        (&[("notify_url", "https://user:pw@hooks.example.com/x")], &["notify_url"]),
        (&[("notify_url", "https://hooks.example.com/x#s3cret")], &["notify_url"]),
        (&[("notify_format", "pager")], &["notify_format"]),
        (&[("notify_format", "pager"), ("notify_host", "ftp://hooks.example.com")], &["notify_host", "notify_format"]),
    ];
    for (overrides, names) in cases {
        let what = format!("{overrides:?}");
        let app = new_app(store, overrides);
        let (a, b) = two_alerts(&app);

        // The capture was recorded and is on its way (Azure is unreachable here, so it waits).
        assert_eq!(a["captures"][0]["state"], "queued", "{what}: {a}");
        let queued = app.record(&capture_id(&a));
        assert_eq!(queued["state"], "queued", "{what}");

        // Both records, and the answers, say that notifications are off and which settings to fix.
        for (answer, rec) in [(&a, &queued), (&b, &app.record(&capture_id(&b)))] {
            let errors: Vec<&str> = rec["errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
            let note = errors.iter().find(|e| e.starts_with("notifications are off")).unwrap_or_else(|| {
                panic!("{what}: no note in {errors:?}");
            });
            for name in *names {
                assert!(note.contains(name), "{what}: {note}");
            }
            assert_eq!(answer["results"][0]["errors"], rec["errors"], "{what}");
        }

        // The skipped record was due for a notification: it was not sent, and says why.
        let skipped = app.record(&capture_id(&b));
        assert_eq!(skipped["state"], "skipped", "{what}");
        assert_eq!(skipped["notified"], false, "{what}");
        assert_eq!(skipped["notify_attempts"], 0, "{what}");
        let why = skipped["notify_error"].as_str().unwrap_or_else(|| panic!("{what}: no notify_error"));
        assert!(why.starts_with("not sent"), "{what}: {why}");
        for name in *names {
            assert!(why.contains(name), "{what}: {why}");
        }
        assert_eq!(app.notifications().len(), 0, "{what}");

        // Keyed routes work; /healthz is degraded and names the settings, never their values.
        assert_eq!(app.poll().0.status, 200, "{what}");
        assert_eq!(app.call("GET", "/captures", b"").0.status, 200, "{what}");
        let (resp, h) = app.call_with_key("GET", "/healthz", None, b"");
        assert_eq!((resp.status, h["status"].as_str()), (200, Some("degraded")), "{what}");
        assert_eq!(problem_names(&h), *names, "{what}");
        let text = String::from_utf8_lossy(&resp.body);
        for secret in ["t0ken", "pw@", "s3cret", "pager", "other.example.com", "/path"] {
            assert!(!text.contains(secret), "{what}: healthz shows {secret}: {text}");
        }
    }
}
store_matrix!(wrong_notification_settings_never_block_a_capture: Strict, SpinSqlite, SpinRedis, Eventual);

fn an_unauthenticated_caller_learns_nothing_about_the_configuration(store: StoreBehaviour) {
    let app = new_app(store, &[("capture_time_limit_seconds", "0"), ("azure_client_secret", "")]);
    for key in [None, Some("wrong-key-0123456789")] {
        for (method, path) in [("POST", "/alerts"), ("POST", "/poll"), ("GET", "/captures"), ("GET", "/captures/x")] {
            let (resp, v) = app.call_with_key(method, path, key, b"{}");
            assert_eq!(resp.status, 401, "{method} {path} {key:?}: {v}");
            let text = String::from_utf8_lossy(&resp.body);
            assert!(!text.contains("capture_time_limit_seconds") && !text.contains("azure_client_secret"), "{text}");
        }
    }
    // With the key, the problem is shown, by name.
    let (resp, v) = app.poll();
    assert_eq!(resp.status, 500, "{v}");
    assert_eq!(problem_names(&v), ["azure_client_secret", "capture_time_limit_seconds"]);
    assert_eq!(app.counts().total(), 0);
    assert_eq!(app.http.count(), 0);
}
store_matrix!(an_unauthenticated_caller_learns_nothing_about_the_configuration: Strict, SpinSqlite, SpinRedis, Eventual);

fn without_a_usable_key_keyed_routes_still_fail_closed(store: StoreBehaviour) {
    let app = new_app(store, &[("webhook_keys", "short"), ("capture_time_limit_seconds", "0")]);
    for key in [None, Some(KEY), Some("short")] {
        let (resp, v) = app.call_with_key("POST", "/poll", key, b"");
        assert_eq!(resp.status, 500, "{key:?}: {v}");
        assert_eq!(v["title"], "Configuration error");
        assert_eq!(problem_names(&v), ["webhook_keys", "capture_time_limit_seconds"]);
    }
    assert_eq!(app.counts().total(), 0);
}
store_matrix!(without_a_usable_key_keyed_routes_still_fail_closed: Strict, SpinSqlite, SpinRedis, Eventual);

fn a_notification_only_problem_is_not_a_500_even_with_others_fixed_later(store: StoreBehaviour) {
    // Broken notification settings plus a broken capture setting: 500 names both; fixing the
    // capture setting alone brings the routes back.
    let mut app = new_app(store, &[("notify_format", "pager"), ("poll_batch", "0")]);
    let (resp, v) = app.poll();
    assert_eq!(resp.status, 500);
    assert_eq!(problem_names(&v), ["poll_batch", "notify_format"]);
    app.set_var("poll_batch", "20");
    let (resp, v) = app.poll();
    assert_eq!(resp.status, 200, "{v}");
}
store_matrix!(a_notification_only_problem_is_not_a_500_even_with_others_fixed_later: Strict, SpinSqlite, SpinRedis, Eventual);

/// The answers are typed now; their bytes are what they were (keys in sorted order).
fn answers_keep_their_exact_bytes(store: StoreBehaviour) {
    let app = new_app(store, &[]);
    let (resp, _) = app.call_with_key("GET", "/healthz", None, b"");
    assert_eq!(
        String::from_utf8(resp.body).unwrap(),
        format!(r#"{{"problems":[],"status":"ok","version":"{}"}}"#, env!("CARGO_PKG_VERSION"))
    );
    let (resp, _) = app.poll();
    assert_eq!(String::from_utf8(resp.body).unwrap(), r#"{"advanced":0,"due":0,"next_check_at":null}"#);
    let (resp, _) = app.call("GET", "/captures", b"");
    assert_eq!(String::from_utf8(resp.body).unwrap(), r#"{"captures":[],"total":0}"#);
    let (resp, _) = app.call("GET", "/nowhere", b"");
    assert_eq!(
        String::from_utf8(resp.body).unwrap(),
        r#"{"detail":"No such route. Routes: POST /alerts, POST /poll, GET /captures, GET /captures/{id}, POST /captures/{id}/stop, GET /healthz.","status":404,"title":"Not found","type":"tag:alert-packet-capture,2026:problem/not-found"}"#
    );
    let broken = new_app(store, &[("poll_batch", "0")]);
    let (resp, _) = broken.poll();
    assert_eq!(
        String::from_utf8(resp.body).unwrap(),
        r#"{"detail":"The component is not configured correctly; fix these Spin variables: poll_batch","problems":[{"message":"must be a whole number from 1 to 1000","variable":"poll_batch"}],"status":500,"title":"Configuration error","type":"tag:alert-packet-capture,2026:problem/configuration"}"#
    );
    let (resp, _) = broken.call_with_key("GET", "/healthz", None, b"");
    assert_eq!(
        String::from_utf8(resp.body).unwrap(),
        format!(
            r#"{{"problems":[{{"message":"must be a whole number from 1 to 1000","variable":"poll_batch"}}],"status":"degraded","version":"{}"}}"#,
            env!("CARGO_PKG_VERSION")
        )
    );
    // An alert answer: sorted keys at every level, optional members only when set.
    let (_, a) = alert(&app, "vm-a");
    app.settle();
    let (resp, _) = alert(&app, "vm-a");
    let text = String::from_utf8(resp.body).unwrap();
    let id = capture_id(&a);
    let prefix = format!(
        r#"{{"alert_id":"{}","captures":[{{"id":"{id}","state":"queued","status_url":"/captures/{id}","vm":"#,
        a["alert_id"].as_str().unwrap()
    );
    assert!(text.starts_with(&prefix), "{text}");
    let keys: Vec<String> =
        serde_json::from_str::<serde_json::Map<String, Value>>(&text).unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "alert_id",
            "captures",
            "duplicate",
            "outside_allowed_scopes",
            "rejected_targets",
            "results",
            "schema",
            "warnings"
        ]
    );
    let positions: Vec<usize> = keys.iter().map(|k| text.find(&format!("\"{k}\":")).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "keys out of order: {text}");
}
store_matrix!(answers_keep_their_exact_bytes: Strict, SpinSqlite, SpinRedis, Eventual);

/// A record that finished while `notify_host` was wrong stays due: the settings are looked at
/// again every `NOTIFY_RECHECK_SECS` without counting an attempt, and once they are fixed the
/// next re-check sends the notification, once.
fn a_notification_held_back_by_a_wrong_setting_is_sent_once_it_is_fixed(store: StoreBehaviour) {
    let mut app = new_app(store, &[("notify_host", "https://other.example.com")]);
    let (_, b) = two_alerts(&app);
    let id = capture_id(&b);
    let rec = app.record(&id);
    assert_eq!(rec["state"], "skipped", "{rec}");
    assert_eq!(rec["notified"], false, "{rec}");
    assert!(rec["notify_error"].as_str().is_some_and(|e| e.starts_with("not sent")), "{rec}");
    assert_eq!(rec["next_check_at"], json!(T0 + NOTIFY_RECHECK_SECS), "kept due: {rec}");
    assert_eq!(app.notifications().len(), 0);

    // Before the re-check: the record is not due, nothing is sent.
    app.clock.set(T0 + NOTIFY_RECHECK_SECS - 1);
    assert_eq!(app.poll().0.status, 200);
    assert_eq!(app.record(&id), rec, "untouched before its re-check");
    assert_eq!(app.notifications().len(), 0);

    // At the re-check, still wrong: nothing sent, no attempt counted, due again later.
    app.clock.set(T0 + NOTIFY_RECHECK_SECS);
    let (resp, v) = app.poll();
    assert_eq!(resp.status, 200, "{v}");
    assert!(v["advanced_ids"].is_null(), "the answer keeps its shape: {v}");
    let rec = app.record(&id);
    assert_eq!(rec["notified"], false, "{rec}");
    assert_eq!(rec["notify_attempts"], 0, "{rec}");
    assert!(rec["notify_error"].as_str().is_some_and(|e| e.starts_with("not sent")), "{rec}");
    assert_eq!(rec["next_check_at"], json!(T0 + 2 * NOTIFY_RECHECK_SECS), "{rec}");
    assert_eq!(app.notifications().len(), 0);

    // Fixed, but before the next re-check: still nothing.
    app.set_var("notify_host", NOTIFY_HOST);
    app.clock.set(T0 + 2 * NOTIFY_RECHECK_SECS - 1);
    assert_eq!(app.poll().0.status, 200);
    assert_eq!(app.notifications().len(), 0);
    assert_eq!(app.record(&id)["notified"], false);

    // After the re-check time: exactly one notification, for the skipped record.
    app.clock.set(T0 + 2 * NOTIFY_RECHECK_SECS);
    assert_eq!(app.poll().0.status, 200);
    let sent = app.notifications();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].url, NOTIFY_SECRET_PATH);
    let note: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(note["type"], "capture.skipped");
    assert_eq!(note["capture"]["id"], id.as_str());
    let rec = app.record(&id);
    assert_eq!(rec["notified"], true, "{rec}");
    assert!(rec["notify_error"].is_null(), "cleared: {rec}");
    assert_eq!(rec["notify_attempts"], 1, "{rec}");
    assert_eq!(rec["next_check_at"], Value::Null, "nothing left to do: {rec}");

    // Later polls send nothing more.
    app.clock.advance(10 * NOTIFY_RECHECK_SECS);
    assert_eq!(app.poll().0.status, 200);
    assert_eq!(app.notifications().len(), 1);
}
store_matrix!(a_notification_held_back_by_a_wrong_setting_is_sent_once_it_is_fixed: Strict, SpinSqlite, SpinRedis, Eventual);

/// A finished capture whose clean-up failed is tried again on the back-off, not at the later
/// settings re-check; once the clean-up is done, the re-check is what keeps it due.
fn a_cleanup_retry_comes_before_the_settings_recheck(store: StoreBehaviour) {
    let app = TestApp::builder().store(store).var("notify_host", "https://other.example.com").build();
    app.script_cold_path();
    let (resp, v) = app.post_alert(&common_vm_alert());
    assert_eq!(resp.status, 202, "{v}");
    let id = capture_id(&v);
    app.http.clear_log();

    // It stops; the clean-up DELETE is throttled.
    app.clock.set(T0 + 31);
    app.http.expect(Method::Post, status_url(&id), sample_response(CAPTURE_STATUS_STOPPED, 200));
    app.http.expect(Method::Get, capture_url(&id), sample_response(CAPTURE_GET, 200));
    app.http.expect(Method::Delete, capture_url(&id), ScriptedHttp::arm_error(503, "ServiceUnavailable", "busy"));
    assert_eq!(app.poll().0.status, 200);
    app.http.assert_done();
    let rec = app.record(&id);
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(rec["azure_deleted"], false, "{rec}");
    assert!(rec["notify_error"].as_str().is_some_and(|e| e.starts_with("not sent")), "{rec}");
    assert_eq!(rec["next_check_at"], json!(T0 + 31 + 30), "the clean-up back-off, the earlier: {rec}");

    // The retry deletes it; the record stays due for the look at late-attached alerts once the
    // store settled, then for the settings re-check only.
    app.clock.set(T0 + 61);
    app.http.expect(Method::Delete, capture_url(&id), sample_response(CAPTURE_DELETE, 204));
    assert_eq!(app.poll().0.status, 200);
    app.http.assert_done();
    let rec = app.record(&id);
    assert_eq!(rec["azure_deleted"], true, "{rec}");
    assert_eq!(rec["next_check_at"], json!(T0 + 31 + STORE_SETTLE_SECS), "{rec}");
    app.clock.set(T0 + 31 + STORE_SETTLE_SECS);
    assert_eq!(app.poll().0.status, 200);
    app.http.assert_done();
    let rec = app.record(&id);
    assert_eq!(rec["next_check_at"], json!(T0 + 31 + STORE_SETTLE_SECS + NOTIFY_RECHECK_SECS), "{rec}");
    assert_eq!(rec["notify_attempts"], 0, "{rec}");
    assert!(app.notifications().is_empty());
}
store_matrix!(a_cleanup_retry_comes_before_the_settings_recheck: Strict, SpinSqlite, SpinRedis, Eventual);

/// Nobody fixes the settings: the re-checks end at the retention, and the record is removed
/// like any other finished one.
fn an_unfixed_setting_keeps_a_record_no_longer_than_the_retention(store: StoreBehaviour) {
    let app = new_app(store, &[("notify_host", "https://other.example.com"), ("retention_hours", "1")]);
    let (_, b) = two_alerts(&app);
    let id = capture_id(&b);
    let mut t = T0;
    while app.has_record(&id) {
        assert!(t <= T0 + 3600 + NOTIFY_RECHECK_SECS, "still kept at {t}: {}", app.record(&id));
        t += NOTIFY_RECHECK_SECS;
        app.clock.set(t);
        assert_eq!(app.poll().0.status, 200);
    }
    assert!(t >= T0 + 3600, "removed at {t}, before the retention");
    assert!(app.notifications().is_empty());
}
store_matrix!(an_unfixed_setting_keeps_a_record_no_longer_than_the_retention: Strict, SpinSqlite, SpinRedis, Eventual);
