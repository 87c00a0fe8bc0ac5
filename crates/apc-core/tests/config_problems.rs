//! Configuration problems through `api::handle` (issue 8 §4): a wrong notification setting
//! never blocks a capture; problems are shown to authenticated callers (and, by name, on
//! `/healthz`) only; answers are the same bytes they always were.

use apc_core::api::{self, ApiRequest, ApiResponse};
use apc_core::ports::{Method, World};
use apc_core::store;
use apc_testkit::http::{ScriptedHttp, sample_json};
use apc_testkit::{MapVars, MemKv, TestClock};
use serde_json::{Value, json};

const SUB: &str = "00000000-0000-0000-0000-000000000000";
const KEY: &str = "webhook-key-0123456789";
const HOOKS: &str = "https://hooks.example.com";
const NOTIFY: &str = "https://hooks.example.com/apc/events-t0ken";
const T0: i64 = 1_780_000_000;

struct Env {
    http: ScriptedHttp,
    kv: MemKv,
    clock: TestClock,
    vars: MapVars,
}

impl Env {
    /// A valid configuration (one active capture at most) with `overrides`.
    fn with(overrides: &[(&str, &str)]) -> Self {
        let mut vars = MapVars::from_pairs(&[
            ("azure_tenant_id", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("azure_client_id", "11111111-2222-3333-4444-555555555555"),
            ("azure_client_secret", "client-secret-value"),
            ("webhook_keys", KEY),
            (
                "storage_account_id",
                "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg2/providers/Microsoft.Storage/storageAccounts/pcstore",
            ),
            ("notify_url", NOTIFY),
            ("notify_host", HOOKS),
            ("max_active_captures", "1"),
            ("max_records", "10"),
        ]);
        for (k, v) in overrides {
            vars.set(k, v);
        }
        let http = ScriptedHttp::new();
        // The receiver takes every notification; Azure is left unscripted (unreachable), so
        // accepted alerts stay queued.
        http.route_always(Method::Post, HOOKS, ScriptedHttp::empty(200));
        Env { http, kv: MemKv::new(), clock: TestClock::at(T0), vars }
    }

    fn send(&self, method: &str, path: &str, key: Option<&str>, body: &[u8]) -> (ApiResponse, Value) {
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(k) = key {
            headers.push(("x-api-key".to_string(), k.to_string()));
        }
        let req = ApiRequest {
            method: method.into(),
            path: path.into(),
            headers,
            body: body.to_vec(),
            request_id: "t".into(),
            ..Default::default()
        };
        let world = World { http: &self.http, kv: &self.kv, clock: &self.clock };
        let resp = api::handle(&req, &self.vars, world);
        let v = serde_json::from_slice(&resp.body).expect("JSON body");
        (resp, v)
    }

    fn call(&self, method: &str, path: &str) -> (ApiResponse, Value) {
        self.send(method, path, Some(KEY), b"")
    }

    fn alert(&self, vm: &str) -> (ApiResponse, Value) {
        self.send("POST", "/alerts", Some(KEY), &serde_json::to_vec(&vm_alert(vm)).unwrap())
    }

    fn record(&self, id: &str) -> Value {
        serde_json::from_str(&self.kv.get_string(&store::record_key(id)).expect("record stored")).unwrap()
    }

    fn notifications(&self) -> usize {
        self.http.requests().iter().filter(|r| r.url.starts_with(HOOKS)).count()
    }
}

/// The classic sample, made an alert on `vm` (region in the payload, so no VM read is needed).
fn vm_alert(vm: &str) -> Value {
    let mut v = sample_json("alerts/classic.metric.website.alerts-webhooks.json");
    let rid = format!("/subscriptions/{SUB}/resourceGroups/rg2/providers/Microsoft.Compute/virtualMachines/{vm}");
    v["context"]["resourceId"] = json!(rid);
    v["context"]["resourceType"] = json!("Microsoft.Compute/virtualMachines");
    v["context"]["resourceRegion"] = json!("westus");
    v["context"]["subscriptionId"] = json!(SUB);
    v["context"]["id"] =
        json!(format!("/subscriptions/{SUB}/resourceGroups/rg2/providers/microsoft.insights/alertrules/rule-{vm}"));
    v
}

/// Variables to set, for one case.
type Overrides<'a> = &'a [(&'a str, &'a str)];

fn problem_names(v: &Value) -> Vec<String> {
    v["problems"].as_array().expect("problems").iter().map(|p| p["variable"].as_str().unwrap().to_string()).collect()
}

/// Two alerts with one active slot: the first is queued, the second skipped, which is
/// terminal and due for a notification at once. Returns both answers.
fn two_alerts(env: &Env) -> (Value, Value) {
    let (first, a) = env.alert("vm-a");
    assert_eq!(first.status, 202, "{a}");
    let (second, b) = env.alert("vm-b");
    assert_eq!(second.status, 200, "{b}");
    assert_eq!(b["skipped"], "limit", "{b}");
    (a, b)
}

#[test]
fn with_correct_settings_the_skipped_alert_is_notified() {
    // The control for the test below: the same steps do send a notification.
    let env = Env::with(&[]);
    let (_, b) = two_alerts(&env);
    let rec = env.record(b["captures"][0]["id"].as_str().unwrap());
    assert_eq!(rec["notified"], true, "{rec}");
    assert_eq!(env.notifications(), 1);
    assert!(rec["notify_error"].is_null(), "{rec}");
    let errors = rec["errors"].as_array().unwrap();
    assert!(!errors.iter().any(|e| e.as_str().unwrap().starts_with("notifications are off")), "{rec}");
}

#[test]
fn wrong_notification_settings_never_block_a_capture() {
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
        let env = Env::with(overrides);
        let (a, b) = two_alerts(&env);

        // The capture was recorded and is on its way (Azure is unreachable here, so it waits).
        assert_eq!(a["captures"][0]["state"], "queued", "{what}: {a}");
        let queued = env.record(a["captures"][0]["id"].as_str().unwrap());
        assert_eq!(queued["state"], "queued", "{what}");

        // Both records, and the answers, say that notifications are off and which settings to fix.
        for (answer, rec) in [(&a, &queued), (&b, &env.record(b["captures"][0]["id"].as_str().unwrap()))] {
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
        let skipped = env.record(b["captures"][0]["id"].as_str().unwrap());
        assert_eq!(skipped["state"], "skipped", "{what}");
        assert_eq!(skipped["notified"], false, "{what}");
        assert_eq!(skipped["notify_attempts"], 0, "{what}");
        let why = skipped["notify_error"].as_str().unwrap_or_else(|| panic!("{what}: no notify_error"));
        assert!(why.starts_with("not sent"), "{what}: {why}");
        for name in *names {
            assert!(why.contains(name), "{what}: {why}");
        }
        assert_eq!(env.notifications(), 0, "{what}");

        // Keyed routes work; /healthz is degraded and names the settings, never their values.
        assert_eq!(env.call("POST", "/poll").0.status, 200, "{what}");
        assert_eq!(env.call("GET", "/captures").0.status, 200, "{what}");
        let (resp, h) = env.send("GET", "/healthz", None, b"");
        assert_eq!((resp.status, h["status"].as_str()), (200, Some("degraded")), "{what}");
        assert_eq!(problem_names(&h), *names, "{what}");
        let text = String::from_utf8_lossy(&resp.body);
        for secret in ["t0ken", "pw@", "s3cret", "pager", "other.example.com", "/path"] {
            assert!(!text.contains(secret), "{what}: healthz shows {secret}: {text}");
        }
    }
}

#[test]
fn an_unauthenticated_caller_learns_nothing_about_the_configuration() {
    let env = Env::with(&[("capture_time_limit_seconds", "0"), ("azure_client_secret", "")]);
    for key in [None, Some("wrong-key-0123456789")] {
        for (method, path) in [("POST", "/alerts"), ("POST", "/poll"), ("GET", "/captures"), ("GET", "/captures/x")] {
            let (resp, v) = env.send(method, path, key, b"{}");
            assert_eq!(resp.status, 401, "{method} {path} {key:?}: {v}");
            let text = String::from_utf8_lossy(&resp.body);
            assert!(!text.contains("capture_time_limit_seconds") && !text.contains("azure_client_secret"), "{text}");
        }
    }
    // With the key, the problem is shown, by name.
    let (resp, v) = env.call("POST", "/poll");
    assert_eq!(resp.status, 500, "{v}");
    assert_eq!(problem_names(&v), ["azure_client_secret", "capture_time_limit_seconds"]);
    assert_eq!(env.kv.counts().total(), 0);
    assert_eq!(env.http.count(), 0);
}

#[test]
fn without_a_usable_key_keyed_routes_still_fail_closed() {
    let env = Env::with(&[("webhook_keys", "short"), ("capture_time_limit_seconds", "0")]);
    for key in [None, Some(KEY), Some("short")] {
        let (resp, v) = env.send("POST", "/poll", key, b"");
        assert_eq!(resp.status, 500, "{key:?}: {v}");
        assert_eq!(v["title"], "Configuration error");
        assert_eq!(problem_names(&v), ["webhook_keys", "capture_time_limit_seconds"]);
    }
    assert_eq!(env.kv.counts().total(), 0);
}

#[test]
fn a_notification_only_problem_is_not_a_500_even_with_others_fixed_later() {
    // Broken notification settings plus a broken capture setting: 500 names both; fixing the
    // capture setting alone brings the routes back.
    let mut env = Env::with(&[("notify_format", "pager"), ("poll_batch", "0")]);
    let (resp, v) = env.call("POST", "/poll");
    assert_eq!(resp.status, 500);
    assert_eq!(problem_names(&v), ["poll_batch", "notify_format"]);
    env.vars.set("poll_batch", "20");
    let (resp, v) = env.call("POST", "/poll");
    assert_eq!(resp.status, 200, "{v}");
}

/// The answers are typed now; their bytes are what they were (keys in sorted order).
#[test]
fn answers_keep_their_exact_bytes() {
    let env = Env::with(&[]);
    let (resp, _) = env.send("GET", "/healthz", None, b"");
    assert_eq!(
        String::from_utf8(resp.body).unwrap(),
        format!(r#"{{"problems":[],"status":"ok","version":"{}"}}"#, env!("CARGO_PKG_VERSION"))
    );
    let (resp, _) = env.call("POST", "/poll");
    assert_eq!(String::from_utf8(resp.body).unwrap(), r#"{"advanced":0,"due":0,"next_check_at":null}"#);
    let (resp, _) = env.call("GET", "/captures");
    assert_eq!(String::from_utf8(resp.body).unwrap(), r#"{"captures":[],"total":0}"#);
    let (resp, _) = env.call("GET", "/nowhere");
    assert_eq!(
        String::from_utf8(resp.body).unwrap(),
        r#"{"detail":"No such route. Routes: POST /alerts, POST /poll, GET /captures, GET /captures/{id}, POST /captures/{id}/stop, GET /healthz.","status":404,"title":"Not found","type":"tag:alert-packet-capture,2026:problem/not-found"}"#
    );
    let broken = Env::with(&[("poll_batch", "0")]);
    let (resp, _) = broken.call("POST", "/poll");
    assert_eq!(
        String::from_utf8(resp.body).unwrap(),
        r#"{"detail":"The component is not configured correctly; fix these Spin variables: poll_batch","problems":[{"message":"must be a whole number from 1 to 1000","variable":"poll_batch"}],"status":500,"title":"Configuration error","type":"tag:alert-packet-capture,2026:problem/configuration"}"#
    );
    let (resp, _) = broken.send("GET", "/healthz", None, b"");
    assert_eq!(
        String::from_utf8(resp.body).unwrap(),
        format!(
            r#"{{"problems":[{{"message":"must be a whole number from 1 to 1000","variable":"poll_batch"}}],"status":"degraded","version":"{}"}}"#,
            env!("CARGO_PKG_VERSION")
        )
    );
    // An alert answer: sorted keys at every level, optional members only when set.
    let (_, a) = env.alert("vm-a");
    let (resp, _) = env.alert("vm-a");
    let text = String::from_utf8(resp.body).unwrap();
    let id = a["captures"][0]["id"].as_str().unwrap();
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
