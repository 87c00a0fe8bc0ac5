//! Issue 5: the component refuses what it should before any side effect, never calls a host it
//! was not configured with, and never lets a secret out. Everything goes through `api::handle`
//! with counting fakes, so "nothing happened" is asserted, not assumed.
//!
//! Every scenario that sends a request runs once per store behaviour (`store_matrix!`), none
//! ignored.

use std::collections::BTreeSet;
use std::path::PathBuf;

use apc_core::api::{self, ApiRequest, ApiResponse};
use apc_core::ports::{Method, OutboundRequest, OutboundResponse, find_header};
use apc_testkit::alerts::{Firing, common_alert};
use apc_testkit::app::request;
use apc_testkit::consts::{
    ARM, COMPUTE_API, LOGIN, NETWORK_API, NOTIFY, NOTIFY_HOST, NW2, STORAGE_ID, SUB, TENANT, TOKEN_URL, WATCHERS_URL,
    vm_id,
};
use apc_testkit::http::{ScriptedHttp, sample_file_response, sample_json, sample_response, sample_text};
use apc_testkit::{StoreBehaviour, TestApp, store_matrix};
use serde_json::{Value, json};

// The shared values (subscription, tenant, hosts) come from the kit; the secrets are this
// file's own, distinctive, so a scan for them cannot match anything by accident.
const OTHER_SUB: &str = "9b2c7d4e-1a3f-4c5b-8d6e-0f1a2b3c4d5e";
const SECRET: &str = "cs~Q7vZ-client-SECRET-41d9e";
const KEY: &str = "whk-ALPHA-key-5b1c9e73";
const KEY_B: &str = "whk-BRAVO-key-93d0a7f1";
const KEY_C: &str = "whk-CHARLIE-key-0c4e2b8d";
const TOKEN: &str = "eyJ0-BEARER-token-8f6e4d2c0b";

/// An app on `store` with this file's distinctive secrets and `overrides` applied (an empty value
/// unsets a variable).
fn new_app(store: StoreBehaviour, overrides: &[(&str, &str)]) -> TestApp {
    TestApp::builder().store(store).var("azure_client_secret", SECRET).api_key(KEY).vars(overrides).build()
}

/// A keyed request without a body.
fn call(app: &TestApp, method: &str, path: &str) -> ApiResponse {
    app.send(&keyed(request(method, path)))
}

fn post_alert(app: &TestApp, alert: &Value) -> ApiResponse {
    app.send(&keyed(json_post("/alerts", serde_json::to_vec(alert).unwrap())))
}

fn token_always(app: &TestApp) {
    app.http.route_always(Method::Post, TOKEN_URL, token_response());
}

/// Nothing went out and nothing was stored.
fn assert_untouched(app: &TestApp, what: &str) {
    assert_eq!(app.http.count(), 0, "{what}: outbound calls {:?}", app.http.requests());
    assert!(app.kv.keys().is_empty(), "{what}: keys written {:?}", app.kv.keys());
}

fn json_post(path: &str, body: Vec<u8>) -> ApiRequest {
    let mut r = request("POST", path);
    r.headers.push(("content-type".into(), "application/json".into()));
    r.body = body;
    r
}

fn keyed(mut r: ApiRequest) -> ApiRequest {
    r.headers.push(("x-api-key".into(), KEY.into()));
    r
}

fn token_response() -> OutboundResponse {
    ScriptedHttp::json(200, &json!({"token_type": "Bearer", "expires_in": 3599, "access_token": TOKEN}).to_string())
}

fn body_of(resp: &ApiResponse) -> Value {
    serde_json::from_slice(&resp.body).unwrap_or_else(|e| panic!("answer is not JSON ({e})"))
}

/// The answer is an RFC 9457 problem with this status; returns its body.
fn assert_problem(resp: &ApiResponse, status: u16, what: &str) -> Value {
    let text = String::from_utf8_lossy(&resp.body);
    assert_eq!(resp.status, status, "{what}: {text}");
    assert_eq!(find_header(&resp.headers, "content-type"), Some("application/problem+json"), "{what}");
    let v = body_of(resp);
    assert_eq!(v["status"], status, "{what}");
    assert!(v["type"].as_str().is_some_and(|t| t.starts_with("tag:alert-packet-capture")), "{what}: {v}");
    assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()), "{what}: {v}");
    assert_eq!(resp.log["outbound_calls"], 0, "{what}");
    v
}

/// The common-schema sample as a fired alert with the given `alertTargetIDs`.
fn fired_alert(targets: Value) -> Value {
    common_alert(targets, Firing::Fired)
}

// ---------------------------------------------------------------------------------------------
// Authentication

const KEYED_ROUTES: [(&str, &str); 5] = [
    ("POST", "/alerts"),
    ("POST", "/poll"),
    ("GET", "/captures"),
    ("GET", "/captures/apc-vm-20260101T000000-0a1b2c3d"),
    ("POST", "/captures/apc-vm-20260101T000000-0a1b2c3d/stop"),
];

/// A request to `route` carrying a real alert, with the given credentials.
fn attempt(route: (&str, &str), headers: &[(&str, &str)], query: &str) -> ApiRequest {
    let mut r = request(route.0, route.1);
    r.query = query.to_string();
    r.headers.push(("content-type".into(), "application/json".into()));
    r.headers.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    r.body = serde_json::to_vec(&fired_alert(json!([vm_id("rg1", "vm1")]))).unwrap();
    r
}

/// A refused attempt: what it tries, its headers, its query string.
type Attempt<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

fn one_char_off(key: &str) -> String {
    let mut k = key.to_string();
    let last = k.pop().unwrap();
    k.push(if last == '0' { '1' } else { '0' });
    k
}

fn missing_or_wrong_key_is_401_with_zero_kv_operations_and_zero_calls(store: StoreBehaviour) {
    let off = one_char_off(KEY);
    let upper = KEY.to_ascii_uppercase();
    let lower = KEY.to_ascii_lowercase();
    let shorter = &KEY[..KEY.len() - 1];
    let longer = format!("{KEY}x");
    let code_off = format!("code={off}");
    let bearer = format!("Bearer {KEY}");
    let other_param = format!("key={KEY}");
    let cases: Vec<Attempt> = vec![
        ("no key at all", vec![], ""),
        ("wrong header", vec![("x-api-key", "not-the-key-at-all-123")], ""),
        ("one character off", vec![("x-api-key", &off)], ""),
        ("upper case", vec![("x-api-key", &upper)], ""),
        ("lower case", vec![("x-api-key", &lower)], ""),
        ("a prefix of the key", vec![("x-api-key", shorter)], ""),
        ("the key and more", vec![("x-api-key", &longer)], ""),
        ("empty header", vec![("x-api-key", "")], ""),
        ("empty code=", vec![], "code="),
        ("wrong code", vec![], &code_off),
        ("both places wrong", vec![("x-api-key", &upper)], &code_off),
        ("key as a bearer token", vec![("authorization", &bearer)], ""),
        ("key in another parameter", vec![], &other_param),
    ];
    for route in KEYED_ROUTES {
        for (what, headers, query) in &cases {
            let app = new_app(store, &[]);
            let resp = app.send(&attempt(route, headers, query));
            let what = format!("{} {} / {what}", route.0, route.1);
            let v = assert_problem(&resp, 401, &what);
            assert!(v["detail"].as_str().unwrap().contains("x-api-key"), "{what}: {v}");
            assert_eq!(app.kv.counts().total(), 0, "{what}: KV operations {:?}", app.kv.counts());
            assert_untouched(&app, &what);
        }
    }
    // The same requests with the right key get past authentication (so the cases above can fail).
    let app = new_app(store, &[]);
    let ok_header = app.send(&attempt(("GET", "/captures"), &[("x-api-key", KEY)], ""));
    assert_eq!(ok_header.status, 200);
    let ok_code = app.send(&attempt(("GET", "/captures"), &[], &format!("code={KEY}")));
    assert_eq!(ok_code.status, 200);
}
store_matrix!(missing_or_wrong_key_is_401_with_zero_kv_operations_and_zero_calls: Strict, SpinSqlite, SpinRedis, Eventual);

fn every_rotated_key_works_in_both_places_and_a_retired_one_does_not(store: StoreBehaviour) {
    let keys = format!("{KEY}, {KEY_B} ,{KEY_C}");
    let app = new_app(store, &[("webhook_keys", &keys)]);
    for k in [KEY, KEY_B, KEY_C] {
        assert_eq!(app.send(&attempt(("GET", "/captures"), &[("x-api-key", k)], "")).status, 200, "header {k}");
        assert_eq!(app.send(&attempt(("GET", "/captures"), &[], &format!("code={k}"))).status, 200, "code {k}");
    }
    let retired = new_app(store, &[("webhook_keys", &format!("{KEY_B},{KEY_C}"))]);
    let resp = retired.send(&attempt(("POST", "/alerts"), &[("x-api-key", KEY)], ""));
    assert_problem(&resp, 401, "retired key");
    assert_eq!(retired.kv.counts().total(), 0);
}
store_matrix!(every_rotated_key_works_in_both_places_and_a_retired_one_does_not: Strict, SpinSqlite, SpinRedis, Eventual);

fn insecure_no_auth_opens_the_routes_only_when_written_literally(store: StoreBehaviour) {
    let open = new_app(store, &[("webhook_keys", "insecure-no-auth")]);
    assert_eq!(open.send(&attempt(("GET", "/captures"), &[], "")).status, 200);

    let near_misses = [
        "INSECURE-NO-AUTH".to_string(),
        "Insecure-No-Auth".to_string(),
        "insecure_no_auth".to_string(),
        "insecure-no-auth-please".to_string(),
        format!("insecure-no-auth,{KEY}"),
        format!("{KEY}, insecure-no-auth"),
    ];
    for value in &near_misses {
        for (headers, query) in
            [(vec![], ""), (vec![], "code=insecure-no-auth"), (vec![("x-api-key", "insecure-no-auth")], "")]
        {
            let app = new_app(store, &[("webhook_keys", value)]);
            let resp = app.send(&attempt(("POST", "/alerts"), &headers, query));
            assert!(resp.status == 401 || resp.status == 500, "{value:?} {query}: {}", resp.status);
            assert_problem(&resp, resp.status, value);
            assert_eq!(app.kv.counts().total(), 0, "{value:?}");
            assert_untouched(&app, value);
        }
    }
}
store_matrix!(insecure_no_auth_opens_the_routes_only_when_written_literally: Strict, SpinSqlite, SpinRedis, Eventual);

fn no_usable_key_configured_fails_closed_and_healthz_names_only_the_variable(store: StoreBehaviour) {
    for value in ["", "   ", " , ,\n", "tiny-K3y"] {
        let app = new_app(store, &[("webhook_keys", value)]);
        for route in KEYED_ROUTES {
            for headers in [vec![], vec![("x-api-key", KEY)], vec![("x-api-key", value)]] {
                let what = format!("webhook_keys={value:?} {} {}", route.0, route.1);
                let resp = app.send(&attempt(route, &headers, ""));
                let v = assert_problem(&resp, 500, &what);
                assert!(v["detail"].as_str().unwrap().contains("webhook_keys"), "{what}: {v}");
                assert_eq!(app.kv.counts().total(), 0, "{what}");
                assert_untouched(&app, &what);
            }
        }
        let resp = app.send(&request("GET", "/healthz"));
        assert_eq!(resp.status, 200);
        let v = body_of(&resp);
        assert_eq!(v["status"], "degraded");
        let names: Vec<&str> =
            v["problems"].as_array().unwrap().iter().filter_map(|p| p["variable"].as_str()).collect();
        assert_eq!(names, ["webhook_keys"], "{v}");
        let text = String::from_utf8_lossy(&resp.body);
        for needle in [SECRET, "tiny-K3y", TENANT, "pcstore"] {
            assert!(!text.contains(needle), "healthz shows {needle}: {text}");
        }
    }
}
store_matrix!(no_usable_key_configured_fails_closed_and_healthz_names_only_the_variable: Strict, SpinSqlite, SpinRedis, Eventual);

// ---------------------------------------------------------------------------------------------
// Input limits

fn oversized_wrongly_typed_or_malformed_bodies_are_refused_without_a_trace(store: StoreBehaviour) {
    let alert = serde_json::to_vec(&fired_alert(json!([vm_id("rg1", "vm1")]))).unwrap();
    let with_type = |ct: Option<&str>, body: Vec<u8>| {
        let mut r = keyed(request("POST", "/alerts"));
        if let Some(ct) = ct {
            r.headers.push(("content-type".into(), ct.into()));
        }
        r.body = body;
        r
    };
    let mut too_large = with_type(Some("application/json"), alert[..1000].to_vec());
    too_large.body_too_large = true;

    let mut invalid_utf8 = alert.clone();
    let at = invalid_utf8.windows(12).position(|w| w == b"WCUS-R2-Gen2").unwrap();
    invalid_utf8[at + 2] = 0xff;
    let mut huge_array = b"[".to_vec();
    while huge_array.len() < api::MAX_BODY - 16 {
        huge_array.extend_from_slice(b"0,");
    }
    huge_array.extend_from_slice(b"0]");
    let huge_string =
        format!("{{\"schemaId\":\"azureMonitorCommonAlertSchema\",\"data\":\"{}\"}}", "x".repeat(api::MAX_BODY - 100));

    let cases: Vec<(&str, ApiRequest, u16)> = vec![
        ("body over 1 MiB", too_large, 413),
        ("text/plain", with_type(Some("text/plain"), alert.clone()), 415),
        ("no content type", with_type(None, alert.clone()), 415),
        ("form", with_type(Some("application/x-www-form-urlencoded"), alert.clone()), 415),
        ("multipart", with_type(Some("multipart/form-data; boundary=x"), alert.clone()), 415),
        ("text/json", with_type(Some("text/json"), alert.clone()), 415),
        ("json look-alike", with_type(Some("application/jsonp"), alert.clone()), 415),
        ("100k [", with_type(Some("application/json"), vec![b'['; 100_000]), 400),
        ("100k nested objects", with_type(Some("application/json"), "{\"a\":".repeat(100_000).into_bytes()), 400),
        ("huge array", with_type(Some("application/json"), huge_array), 400),
        ("huge string", with_type(Some("application/json"), huge_string.into_bytes()), 400),
        ("invalid UTF-8", with_type(Some("application/json"), invalid_utf8), 400),
        ("lone surrogate", with_type(Some("application/json"), br#"{"schemaId":"\ud800"}"#.to_vec()), 400),
        ("NUL bytes", with_type(Some("application/json"), vec![0; 64]), 400),
        ("empty body", with_type(Some("application/json"), Vec::new()), 400),
        ("null", with_type(Some("application/json"), b"null".to_vec()), 400),
        ("truncated alert", with_type(Some("application/json"), alert[..alert.len() / 2].to_vec()), 400),
    ];
    for (what, req, status) in cases {
        let app = new_app(store, &[]);
        assert_problem(&app.send(&req), status, what);
        assert_eq!(app.kv.counts().total(), 0, "{what}");
        assert_untouched(&app, what);
    }
}
store_matrix!(oversized_wrongly_typed_or_malformed_bodies_are_refused_without_a_trace: Strict, SpinSqlite, SpinRedis, Eventual);

fn json_content_types_with_parameters_or_suffixes_are_accepted(store: StoreBehaviour) {
    let resolved = sample_text("alerts/common.metric.vm.resolved.alerts-common-schema.json").into_bytes();
    for ct in [
        "application/json; charset=utf-8",
        "application/vnd.x+json",
        "Application/JSON",
        "application/json;charset=UTF-8",
    ] {
        let app = new_app(store, &[]);
        let mut r = keyed(request("POST", "/alerts"));
        r.headers.push(("content-type".into(), ct.into()));
        r.body = resolved.clone();
        let resp = app.send(&r);
        assert_eq!(resp.status, 200, "{ct}: {}", String::from_utf8_lossy(&resp.body));
        assert_eq!(body_of(&resp)["ignored"], "resolved", "{ct}");
        assert_untouched(&app, ct);
    }
}
store_matrix!(json_content_types_with_parameters_or_suffixes_are_accepted: Strict, SpinSqlite, SpinRedis, Eventual);

// ---------------------------------------------------------------------------------------------
// Resource-id injection

/// Crafted ids that must never become a capture target, each with what it tries.
fn crafted_ids() -> Vec<(String, String)> {
    let vm = vm_id("rg1", "vm1");
    let base = format!("/subscriptions/{SUB}/resourceGroups/rg1/providers");
    let in_vms = |name: &str| format!("{base}/Microsoft.Compute/virtualMachines/{name}");
    let mut v: Vec<(&str, String)> = vec![
        // Path traversal.
        ("traversal after the name", format!("{vm}/../../virtualMachines/vm2")),
        ("name is ..", in_vms("..")),
        ("trailing ..", format!("{vm}/..")),
        (
            "group is ..",
            format!("/subscriptions/{SUB}/resourceGroups/../providers/Microsoft.Compute/virtualMachines/vm1"),
        ),
        ("encoded dots", in_vms("%2e%2e")),
        ("encoded dots, upper", in_vms("%2E%2E/x")),
        (
            "dot segment",
            format!("/subscriptions/{SUB}/./resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1"),
        ),
        ("name is .", in_vms(".")),
        ("name with ..", in_vms("vm..1")),
        ("name starting with .", in_vms(".vm1")),
        ("backslash traversal", in_vms("vm1\\..\\..\\x")),
        // Encoded slashes.
        ("encoded slash", in_vms("vm1%2Fextensions%2Fx")),
        ("encoded slash, lower", in_vms("vm1%2f..%2fvm2")),
        ("double-encoded slash", in_vms("vm1%252F")),
        // Query and fragment smuggling.
        ("query", format!("{vm}?api-version=2015-01-01")),
        ("fragment", format!("{vm}#/../../x")),
        ("query before the name", format!("{base}/Microsoft.Compute/virtualMachines?x=/vm1")),
        ("encoded query", format!("{vm}%3Fapi-version=1")),
        ("encoded fragment", format!("{vm}%23x")),
        // Host smuggling.
        ("userinfo in a name", in_vms("vm1@evil.example")),
        ("leading @", format!("@evil.example{vm}")),
        ("absolute URL", format!("https://evil.example{vm}")),
        ("scheme-relative", format!("//evil.example{vm}")),
        ("ARM URL", format!("{ARM}{vm}")),
        // Empty segments.
        (
            "double slash after subscriptions",
            format!("/subscriptions//{SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1"),
        ),
        ("double slash before the name", in_vms("/vm1")),
        ("two trailing slashes", format!("{vm}//")),
        // Control characters and spaces.
        ("newline inside", in_vms("vm\n1")),
        ("header injection", format!("{vm}\r\nX-Injected: 1")),
        ("NUL", format!("{vm}\u{0}")),
        ("tab inside", in_vms("vm\t1")),
        ("DEL", format!("{vm}\u{7f}x")),
        ("space inside", in_vms("vm 1")),
        // Non-ASCII and look-alikes.
        ("Cyrillic a in the name", in_vms("vm\u{0430}1")),
        ("Cyrillic o in the namespace", format!("{base}/Microsoft.C\u{043e}mpute/virtualMachines/vm1")),
        ("Cyrillic e in the type", format!("{base}/Microsoft.Compute/virtualMachin\u{0435}s/vm1")),
        ("fullwidth solidus", format!("{base}/Microsoft.Compute/virtualMachines\u{ff0f}vm1")),
        ("zero-width space", in_vms("vm\u{200b}1")),
        ("accented name", in_vms("vé1")),
        ("right-to-left override", in_vms("vm\u{202e}1")),
        // Overlong.
        ("name of 261 characters", format!("{base}/Microsoft.Compute/virtualMachines/{}", "a".repeat(261))),
        ("group of 91 characters", vm_id(&"g".repeat(91), "vm1")),
        (
            "id over 1024 characters",
            format!("{base}/Microsoft.Compute/virtualMachines/vm1{}", "/extensions/e".repeat(80)),
        ),
        ("namespace over 64 characters", format!("{base}/Microsoft.{}/virtualMachines/vm1", "C".repeat(64))),
        // Wrong provider.
        ("Microsoft.Compute2", format!("{base}/Microsoft.Compute2/virtualMachines/vm1")),
        ("Microsoft.Network VMs", format!("{base}/Microsoft.Network/virtualMachines/vm1")),
        ("classic compute", format!("{base}/Microsoft.ClassicCompute/virtualMachines/vm1")),
        ("namespace without a dot", format!("{base}/Compute/virtualMachines/vm1")),
        // Wrong types.
        ("disk", format!("{base}/Microsoft.Compute/disks/vm1-osdisk")),
        ("availability set", format!("{base}/Microsoft.Compute/availabilitySets/as1")),
        ("VM extension", format!("{vm}/extensions/NetworkWatcherAgentLinux")),
        ("scale-set extension", format!("{base}/Microsoft.Compute/virtualMachineScaleSets/ss/extensions/x")),
        (
            "scale-set instance NIC",
            format!("{base}/Microsoft.Compute/virtualMachineScaleSets/ss/virtualMachines/0/networkInterfaces/nic"),
        ),
        ("storage account", STORAGE_ID.to_string()),
        ("network watcher", format!("{base}/Microsoft.Network/networkWatchers/nw2")),
        // Wrong segment counts.
        ("type without a name", format!("{base}/Microsoft.Compute/virtualMachines")),
        ("subscription only", format!("/subscriptions/{SUB}")),
        ("resource group only", format!("/subscriptions/{SUB}/resourceGroups/rg1")),
        ("providers without a type", format!("{base}/Microsoft.Compute")),
        ("no leading slash", vm.trim_start_matches('/').to_string()),
        ("no resource group", format!("/subscriptions/{SUB}/providers/Microsoft.Compute/virtualMachines/vm1")),
        (
            "resourceGroup singular",
            format!("/subscriptions/{SUB}/resourceGroup/rg1/providers/Microsoft.Compute/virtualMachines/vm1"),
        ),
        (
            "providers misspelt",
            format!("/subscriptions/{SUB}/resourceGroups/rg1/provider/Microsoft.Compute/virtualMachines/vm1"),
        ),
        // Subscriptions that are not GUIDs.
        ("placeholder subscription", vm.replace(SUB, "<subscription ID>")),
        ("named subscription", vm.replace(SUB, "production")),
        ("GUID without dashes", vm.replace(SUB, &SUB.replace('-', ""))),
        ("GUID in braces", vm.replace(SUB, &format!("{{{SUB}}}"))),
        ("GUID with a g", vm.replace(SUB, "g0000000-0000-0000-0000-000000000000")),
        ("GUID one too long", vm.replace(SUB, &format!("{SUB}0"))),
        // Empty.
        ("empty", String::new()),
        ("only spaces", "   ".to_string()),
    ];
    v.sort_by(|a, b| a.0.cmp(b.0));
    v.into_iter().map(|(w, id)| (w.to_string(), id)).collect()
}

fn crafted_ids_get_422_with_no_call_and_no_record(store: StoreBehaviour) {
    let ids = crafted_ids();
    assert!(ids.len() >= 50, "only {} crafted ids", ids.len());
    for (what, id) in &ids {
        let app = new_app(store, &[]);
        let resp = post_alert(&app, &fired_alert(json!([id])));
        let v = assert_problem(&resp, 422, what);
        assert_eq!(v["rejected_targets"].as_array().map(Vec::len), Some(1), "{what}: {v}");
        assert_eq!(app.kv.counts().total(), 0, "{what}");
        assert_untouched(&app, what);
    }
}
store_matrix!(crafted_ids_get_422_with_no_call_and_no_record: Strict, SpinSqlite, SpinRedis, Eventual);

fn crafted_ids_are_refused_in_every_schema_field_that_names_a_target(store: StoreBehaviour) {
    let classic = sample_json("alerts/classic.metric.website.alerts-webhooks.json");
    let metric = sample_json("alerts/noncommon.metric-static.storage.json");
    for (what, id) in crafted_ids() {
        let mut c = classic.clone();
        c["context"]["resourceId"] = json!(id);
        let mut m = metric.clone();
        m["data"]["context"]["resourceId"] = json!(id);
        for (schema, alert) in [("classic", c), ("metric", m)] {
            let app = new_app(store, &[]);
            let what = format!("{schema}: {what}");
            assert_problem(&post_alert(&app, &alert), 422, &what);
            assert_untouched(&app, &what);
        }
    }
}
store_matrix!(crafted_ids_are_refused_in_every_schema_field_that_names_a_target: Strict, SpinSqlite, SpinRedis, Eventual);

fn a_vm_id_hidden_in_another_field_is_not_a_target(store: StoreBehaviour) {
    let vm = vm_id("rg1", "vm1");
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut a = fired_alert(json!([STORAGE_ID]));
    a["data"]["essentials"]["configurationItems"] = json!([vm]);
    cases.push(("configurationItems", a));
    let mut a = fired_alert(json!([STORAGE_ID]));
    a["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"][0]["value"] = json!(vm);
    a["data"]["alertContext"]["resourceId"] = json!(vm);
    cases.push(("alertContext", a));
    let mut a = fired_alert(json!([STORAGE_ID]));
    a["data"]["customProperties"] = json!({"target": vm, "alertTargetIDs": [vm]});
    cases.push(("customProperties", a));
    let mut a = fired_alert(json!([STORAGE_ID]));
    a["data"]["essentials"]["alertRuleId"] = json!(vm);
    a["data"]["essentials"]["originAlertId"] = json!(vm);
    a["alertTargetIDs"] = json!([vm]);
    cases.push(("alertRuleId, originAlertId and a top-level alertTargetIDs", a));
    let mut a = fired_alert(json!([STORAGE_ID]));
    a["data"]["essentials"]["ALERTTARGETIDS"] = json!([vm]);
    cases.push(("a second alertTargetIDs in another case", a));
    cases.push(("an object instead of an id", fired_alert(json!([{"id": vm}]))));
    let mut many: Vec<Value> = (0..100).map(|i| json!(STORAGE_ID.replace("pcstore", &format!("s{i}")))).collect();
    many.push(json!(vm));
    cases.push(("the VM after the first 100 ids", fired_alert(Value::Array(many))));
    for (what, alert) in cases {
        let app = new_app(store, &[]);
        assert_problem(&post_alert(&app, &alert), 422, what);
        assert_untouched(&app, what);
    }
}
store_matrix!(a_vm_id_hidden_in_another_field_is_not_a_target: Strict, SpinSqlite, SpinRedis, Eventual);

/// Routes for a cold first alert on any VM: token, the exact VM GET, the watcher list, the PUT.
fn script_cold_start(app: &TestApp, vm_get_url: &str) {
    token_always(app);
    app.http.route(Method::Get, vm_get_url, sample_response("compute/VirtualMachineGet.2025-04-01.json", 200));
    app.http.route(
        Method::Get,
        WATCHERS_URL,
        sample_response("network-watcher/NetworkWatcherListAll.2026-07-01.json", 200),
    );
    app.http.route(Method::Put, NW2, sample_response("network-watcher/PacketCaptureCreate.2026-07-01.json", 201));
}

fn valid_case_and_spelling_variants_are_accepted_canonical_and_encoded(store: StoreBehaviour) {
    let p = format!("/subscriptions/{SUB}/resourcegroups");
    // (as sent, canonical id, the VM GET path as it must go on the wire)
    let variants = [
        (
            format!("{p}/rg-Web/providers/microsoft.compute/virtualmachines/Vm-01"),
            vm_id("rg-Web", "Vm-01"),
            format!("/subscriptions/{SUB}/resourceGroups/rg-Web/providers/Microsoft.Compute/virtualMachines/Vm-01"),
        ),
        (
            format!("/SUBSCRIPTIONS/{SUB}/RESOURCEGROUPS/RG1/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES/VM1"),
            vm_id("RG1", "VM1"),
            format!("/subscriptions/{SUB}/resourceGroups/RG1/providers/Microsoft.Compute/virtualMachines/VM1"),
        ),
        (format!("{}/", vm_id("rg1", "vm1")), vm_id("rg1", "vm1"), vm_id("rg1", "vm1")),
        (format!("  {}\n", vm_id("rg1", "vm1")), vm_id("rg1", "vm1"), vm_id("rg1", "vm1")),
        (
            vm_id("rg(prod)", "web_(blue).v2"),
            vm_id("rg(prod)", "web_(blue).v2"),
            format!(
                "/subscriptions/{SUB}/resourceGroups/rg%28prod%29/providers/Microsoft.Compute/virtualMachines/web_%28blue%29.v2"
            ),
        ),
    ];
    for (sent, canonical, wire_path) in variants {
        let app = new_app(store, &[]);
        let vm_get = format!("{ARM}{wire_path}?{COMPUTE_API}");
        script_cold_start(&app, &vm_get);
        let resp = post_alert(&app, &fired_alert(json!([sent])));
        let v = body_of(&resp);
        assert_eq!(resp.status, 202, "{sent:?}: {v}");
        assert!(app.http.unscripted().is_empty(), "{sent:?}: {:?}", app.http.unscripted());
        let reqs = app.http.requests();
        assert_eq!(reqs.iter().filter(|r| r.url == vm_get).count(), 1, "{sent:?}");
        let put = reqs.iter().find(|r| r.method == Method::Put).expect("a PUT");
        let id = v["captures"][0]["id"].as_str().unwrap();
        assert!(id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'), "{id}");
        assert_eq!(put.url, format!("{NW2}/{id}?{NETWORK_API}"));
        let body: Value = serde_json::from_slice(&put.body).unwrap();
        assert_eq!(body["properties"]["target"], canonical.as_str(), "{sent:?}");
        assert_eq!(v["captures"][0]["vm"], canonical.as_str());
    }
}
store_matrix!(valid_case_and_spelling_variants_are_accepted_canonical_and_encoded: Strict, SpinSqlite, SpinRedis, Eventual);

// ---------------------------------------------------------------------------------------------
// SSRF: only the configured hosts are ever called

/// `scheme://authority` of an absolute URL, lower case.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    format!("{}://{}", scheme.to_ascii_lowercase(), rest[..end].to_ascii_lowercase())
}

fn assert_only_configured_hosts(reqs: &[OutboundRequest], what: &str) {
    assert!(!reqs.is_empty(), "{what}: no request at all");
    for r in reqs {
        let o = origin(&r.url);
        assert!([ARM, LOGIN, NOTIFY_HOST].contains(&o.as_str()), "{what}: {} went to {o}", r.url);
    }
}

const EVIL: [&str; 4] = [
    "https://evil.example/operationresults/1",
    "http://management.azure.com:8080/subscriptions/x",
    "https://management.azure.com.evil.example/subscriptions/x",
    "https://management.azure.com@evil.example/subscriptions/x",
];

/// An answer that points its `Location` and `Azure-AsyncOperation` at other hosts.
fn redirecting(mut resp: OutboundResponse, n: usize) -> OutboundResponse {
    resp.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("location"));
    resp.headers.push(("Location".into(), EVIL[n % EVIL.len()].into()));
    resp.headers.push(("Azure-AsyncOperation".into(), EVIL[(n + 1) % EVIL.len()].into()));
    resp.headers.push(("Retry-After".into(), "1".into()));
    resp
}

/// Alert → poll (still running) → stop → stopped, notified, deleted → read back. Every Azure
/// answer that may carry a `Location` points it elsewhere. Returns every answer.
fn whole_flow(app: &TestApp) -> Vec<ApiResponse> {
    let vm_get = format!("{ARM}{}?{COMPUTE_API}", vm_id("rg1", "vm1"));
    script_cold_start(app, &vm_get);
    app.http.route(
        Method::Put,
        NW2,
        redirecting(sample_response("network-watcher/PacketCaptureCreate.2026-07-01.json", 201), 0),
    );
    let mut out = Vec::new();
    let resp = post_alert(app, &fired_alert(json!([vm_id("rg1", "vm1")])));
    assert_eq!(resp.status, 202, "{}", String::from_utf8_lossy(&resp.body));
    let id = body_of(&resp)["captures"][0]["id"].as_str().unwrap().to_string();
    out.push(resp);

    let capture = format!("{NW2}/{id}");
    let status_url = format!("{capture}/queryStatus?{NETWORK_API}");
    app.http.route(
        Method::Post,
        &status_url,
        redirecting(
            sample_file_response("network-watcher/PacketCaptureQueryStatus.running.rest-doc-2016-12-01.json", 202),
            1,
        ),
    );
    app.clock.advance(31);
    app.settle();
    let resp = call(app, "POST", "/poll");
    assert_eq!(body_of(&resp)["advanced"], 1);
    out.push(resp);
    // On an eventually consistent store a read right after the poll may see the record as it
    // was and check it again: harmless, but not this scenario's exact call list.
    app.settle();
    out.push(call(app, "GET", &format!("/captures/{id}")));
    assert_eq!(body_of(out.last().unwrap())["state"], "running");

    app.http.route(
        Method::Post,
        format!("{capture}/stop?{NETWORK_API}"),
        redirecting(sample_response("network-watcher/PacketCaptureStop.2026-03-01.json", 202), 2),
    );
    app.http.route(
        Method::Post,
        &status_url,
        redirecting(sample_response("network-watcher/PacketCaptureQueryStatus.2026-07-01.json", 200), 3),
    );
    app.http.route(
        Method::Get,
        format!("{capture}?{NETWORK_API}"),
        sample_response("network-watcher/PacketCaptureGet.2026-03-01.json", 200),
    );
    app.http.route(Method::Post, NOTIFY, ScriptedHttp::empty(200));
    app.http.route(
        Method::Delete,
        format!("{capture}?{NETWORK_API}"),
        redirecting(sample_response("network-watcher/PacketCaptureDelete.2026-03-01.json", 202), 0),
    );
    app.clock.advance(5);
    app.settle();
    let resp = call(app, "POST", &format!("/captures/{id}/stop"));
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    out.push(resp);
    app.clock.advance(3600);
    app.settle();
    out.push(call(app, "POST", "/poll"));
    app.settle();
    out.push(call(app, "GET", &format!("/captures/{id}")));
    let rec = body_of(out.last().unwrap());
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(rec["notified"], true, "{rec}");
    assert_eq!(rec["azure_deleted"], true, "{rec}");
    out.push(call(app, "GET", "/captures"));
    out
}

fn location_and_async_operation_headers_are_never_followed(store: StoreBehaviour) {
    let app = new_app(store, &[]);
    whole_flow(&app);
    assert!(app.http.unscripted().is_empty(), "{:?}", app.http.unscripted());
    let reqs = app.http.requests();
    assert_only_configured_hosts(&reqs, "whole flow");
    let methods: Vec<String> = reqs.iter().map(|r| format!("{} {}", r.method, origin(&r.url))).collect();
    assert_eq!(
        methods,
        [
            format!("POST {LOGIN}"),
            format!("GET {ARM}"),
            format!("GET {ARM}"),
            format!("PUT {ARM}"),
            format!("POST {ARM}"),
            format!("POST {ARM}"),
            format!("POST {ARM}"),
            format!("GET {ARM}"),
            format!("POST {NOTIFY_HOST}"),
            format!("DELETE {ARM}"),
        ]
    );
    assert!(reqs.iter().all(|r| !r.url.contains("operationresults")), "an operation URL was followed");
}
store_matrix!(location_and_async_operation_headers_are_never_followed: Strict, SpinSqlite, SpinRedis, Eventual);

fn a_watcher_list_next_link_elsewhere_is_never_followed(store: StoreBehaviour) {
    let next_path =
        format!("/subscriptions/{SUB}/providers/Microsoft.Network/networkWatchers?{NETWORK_API}&$skiptoken=2");
    let first_page = |next: &str| {
        let list = sample_json("network-watcher/NetworkWatcherListAll.2026-07-01.json");
        let eastus_only: Vec<Value> = list["responses"]["200"]["body"]["value"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["location"] == "eastus")
            .cloned()
            .collect();
        ScriptedHttp::json(200, &json!({"value": eastus_only, "nextLink": next}).to_string())
    };
    let vm_get = format!("{ARM}{}?{COMPUTE_API}", vm_id("rg1", "vm1"));
    let elsewhere = [
        format!("https://evil.example{next_path}"),
        format!("http://management.azure.com{next_path}"),
        format!("https://management.azure.com:8443{next_path}"),
        format!("https://management.azure.com.evil.example{next_path}"),
        format!("https://management.azure.com@evil.example{next_path}"),
        format!("https://management.azure.com\\@evil.example{next_path}"),
        format!("//evil.example{next_path}"),
        next_path.clone(),
        "file:///etc/passwd".to_string(),
        format!("https://management.azure.com{}\r\nHost: evil.example", next_path),
    ];
    for next in &elsewhere {
        let app = new_app(store, &[]);
        token_always(&app);
        app.http.route(Method::Get, &vm_get, sample_response("compute/VirtualMachineGet.2025-04-01.json", 200));
        app.http.route(Method::Get, WATCHERS_URL, first_page(next));
        app.http.route_always(Method::Post, NOTIFY, ScriptedHttp::empty(200));
        let resp = post_alert(&app, &fired_alert(json!([vm_id("rg1", "vm1")])));
        assert!(resp.status < 500, "{next}: {}", resp.status);
        let reqs = app.http.requests();
        assert_only_configured_hosts(&reqs, next);
        assert!(app.http.unscripted().is_empty(), "{next}: {:?}", app.http.unscripted());
        assert_eq!(reqs.iter().filter(|r| r.url.contains("networkWatchers?")).count(), 1, "{next}");
        let id = body_of(&resp)["captures"][0]["id"].as_str().unwrap().to_string();
        let rec: Value = serde_json::from_str(&app.kv.get_string(&app.record_key(&id)).unwrap()).unwrap();
        assert!(rec["errors"].to_string().contains("NetworkWatcherNotFound"), "{next}: {rec}");
    }
    // Control: a nextLink on the ARM host is followed, so the cases above could have failed.
    let app = new_app(store, &[]);
    let next = format!("{ARM}{next_path}");
    token_always(&app);
    app.http.route(Method::Get, &vm_get, sample_response("compute/VirtualMachineGet.2025-04-01.json", 200));
    app.http.route(Method::Get, WATCHERS_URL, first_page(&next));
    app.http.route(Method::Get, &next, sample_response("network-watcher/NetworkWatcherListAll.2026-07-01.json", 200));
    app.http.route(Method::Put, NW2, sample_response("network-watcher/PacketCaptureCreate.2026-07-01.json", 201));
    let resp = post_alert(&app, &fired_alert(json!([vm_id("rg1", "vm1")])));
    assert_eq!(resp.status, 202);
    assert!(app.http.requests().iter().any(|r| r.url == next));
    assert_eq!(body_of(&resp)["captures"][0]["state"], "running");
}
store_matrix!(a_watcher_list_next_link_elsewhere_is_never_followed: Strict, SpinSqlite, SpinRedis, Eventual);

// ---------------------------------------------------------------------------------------------
// allowed_scopes

fn targets_outside_allowed_scopes_are_422_before_any_azure_call(store: StoreBehaviour) {
    let scopes = format!("/subscriptions/{SUB}/resourceGroups/allowed-rg");
    let outside = [
        vm_id("other-rg", "vm1"),
        vm_id("allowed-rg2", "vm1"),
        vm_id("allowed", "vm1"),
        vm_id("allowed-rg", "vm1").replace(SUB, OTHER_SUB),
        format!("/subscriptions/{SUB}/resourceGroups/other-rg/providers/Microsoft.Compute/virtualMachineScaleSets/ss"),
    ];
    for id in &outside {
        let app = new_app(store, &[("allowed_scopes", &scopes)]);
        let v = assert_problem(&post_alert(&app, &fired_alert(json!([id]))), 422, id);
        assert!(v["type"].as_str().unwrap().ends_with("outside-allowed-scopes"), "{v}");
        assert_eq!(app.kv.counts().total(), 0, "{id}");
        assert_untouched(&app, id);
    }
}
store_matrix!(targets_outside_allowed_scopes_are_422_before_any_azure_call: Strict, SpinSqlite, SpinRedis, Eventual);

fn a_mixed_alert_starts_only_the_target_inside_and_reports_the_other(store: StoreBehaviour) {
    let app = new_app(store, &[("allowed_scopes", &format!("/subscriptions/{SUB}/resourceGroups/allowed-rg"))]);
    let inside = vm_id("allowed-rg", "inside-vm");
    let outside = vm_id("other-rg", "outside-vm");
    script_cold_start(&app, &format!("{ARM}{inside}?{COMPUTE_API}"));
    let resp = post_alert(&app, &fired_alert(json!([outside, inside])));
    let v = body_of(&resp);
    assert_eq!(resp.status, 202, "{v}");
    assert_eq!(v["captures"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["captures"][0]["vm"], inside.as_str());
    assert_eq!(v["outside_allowed_scopes"], json!([outside]));
    assert!(app.http.unscripted().is_empty(), "{:?}", app.http.unscripted());
    for r in app.http.requests() {
        assert!(!r.url.contains("other-rg") && !r.url.contains("outside-vm"), "{}", r.url);
        assert!(!String::from_utf8_lossy(&r.body).contains("outside-vm"), "{}", r.url);
    }
}
store_matrix!(a_mixed_alert_starts_only_the_target_inside_and_reports_the_other: Strict, SpinSqlite, SpinRedis, Eventual);

// ---------------------------------------------------------------------------------------------
// Secrets

/// Everything an outsider or an operator can see: answers (body and headers), log lines,
/// every stored value, every notification.
fn visible_text(app: &TestApp, responses: &[ApiResponse]) -> Vec<String> {
    let mut out = Vec::new();
    for r in responses {
        out.push(String::from_utf8_lossy(&r.body).into_owned());
        out.push(format!("{:?}", r.headers));
        out.push(r.log.to_string());
    }
    out.extend(app.kv.values().iter().map(|v| String::from_utf8_lossy(v).into_owned()));
    for r in app.http.requests().iter().filter(|r| r.url.starts_with(NOTIFY_HOST)) {
        out.push(String::from_utf8_lossy(&r.body).into_owned());
        out.push(format!("{:?}", r.headers));
    }
    out
}

fn assert_no_secret(texts: &[String]) {
    assert!(texts.len() > 20, "too little was scanned");
    for t in texts {
        for needle in [SECRET, KEY, KEY_B, TOKEN] {
            assert!(!t.contains(needle), "{needle} leaked in: {t}");
        }
    }
}

fn no_secret_key_or_token_appears_in_answers_logs_store_or_notifications(store: StoreBehaviour) {
    let keys = format!("{KEY},{KEY_B}");
    // A whole flow, with the two keys configured.
    let app = new_app(store, &[("webhook_keys", &keys)]);
    let mut responses = whole_flow(&app);
    // The bearer token really was used, so its absence below means something.
    assert!(app.http.requests().iter().any(|r| r.header("authorization") == Some(format!("Bearer {TOKEN}").as_str())));
    let mut wrong = attempt(("POST", "/alerts"), &[("x-api-key", &one_char_off(KEY_B))], "");
    wrong.query = format!("code={}", one_char_off(KEY));
    responses.push(app.send(&wrong));
    responses.push(app.send(&request("GET", "/healthz")));
    let mut texts = visible_text(&app, &responses);

    // A configuration error while every secret is set.
    let broken = new_app(store, &[("webhook_keys", &keys), ("capture_time_limit_seconds", "0")]);
    let answers = vec![
        call(&broken, "POST", "/poll"),
        broken.send(&attempt(("POST", "/alerts"), &[("x-api-key", KEY_B)], "")),
        broken.send(&request("GET", "/healthz")),
    ];
    assert_eq!(answers[0].status, 500);
    texts.extend(visible_text(&broken, &answers));

    // Entra refuses the secret and echoes it back in its description.
    let refused = new_app(store, &[("webhook_keys", &keys)]);
    let mut entra = sample_json("token/error.AADSTS7000215.invalid_client.http401.real.json");
    entra["error_description"] =
        json!(format!("AADSTS7000215: Invalid client secret provided: '{SECRET}'.\r\nTrace ID: 3ce379e4"));
    refused.http.route_always(Method::Post, TOKEN_URL, ScriptedHttp::json(401, &entra.to_string()));
    let resp = post_alert(&refused, &fired_alert(json!([vm_id("rg1", "vm1")])));
    assert_eq!(resp.status, 202);
    let id = body_of(&resp)["captures"][0]["id"].as_str().unwrap().to_string();
    refused.settle();
    let answers = vec![resp, call(&refused, "GET", &format!("/captures/{id}")), call(&refused, "GET", "/captures")];
    assert!(String::from_utf8_lossy(&answers[1].body).contains("azure_client_secret"));
    texts.extend(visible_text(&refused, &answers));

    assert_no_secret(&texts);
}
store_matrix!(no_secret_key_or_token_appears_in_answers_logs_store_or_notifications: Strict, SpinSqlite, SpinRedis, Eventual);

fn secrets_pasted_with_newlines_or_spaces_still_work(store: StoreBehaviour) {
    let app = new_app(
        store,
        &[
            ("azure_client_secret", &format!("  {SECRET}\n")),
            ("webhook_keys", &format!(" {KEY}\n,\t{KEY_B} \r\n")),
            ("azure_tenant_id", &format!("{TENANT}\n")),
        ],
    );
    assert_eq!(app.send(&attempt(("GET", "/captures"), &[("x-api-key", KEY)], "")).status, 200);
    assert_eq!(app.send(&attempt(("GET", "/captures"), &[], &format!("code={KEY_B}"))).status, 200);
    script_cold_start(&app, &format!("{ARM}{}?{COMPUTE_API}", vm_id("rg1", "vm1")));
    let resp = post_alert(&app, &fired_alert(json!([vm_id("rg1", "vm1")])));
    assert_eq!(resp.status, 202, "{}", String::from_utf8_lossy(&resp.body));
    let token = app.http.request(0).unwrap();
    assert_eq!(token.url, TOKEN_URL);
    let form: Vec<(String, String)> = form_urlencoded::parse(&token.body).into_owned().collect();
    let secret: Vec<&str> = form.iter().filter(|(k, _)| k == "client_secret").map(|(_, v)| v.as_str()).collect();
    assert_eq!(secret, [SECRET]);
}
store_matrix!(secrets_pasted_with_newlines_or_spaces_still_work: Strict, SpinSqlite, SpinRedis, Eventual);

// ---------------------------------------------------------------------------------------------
// Least privilege: deploy/role-alert-packet-capture.json

/// The actions the component needs (REFERENCE.md "Permissions"), and nothing else.
const ROLE_ACTIONS: [&str; 16] = [
    "Microsoft.Compute/virtualMachines/read",
    "Microsoft.Compute/virtualMachines/extensions/read",
    "Microsoft.Compute/virtualMachines/extensions/write",
    "Microsoft.Compute/virtualMachineScaleSets/read",
    "Microsoft.Compute/virtualMachineScaleSets/extensions/read",
    "Microsoft.Compute/virtualMachineScaleSets/extensions/write",
    "Microsoft.Network/networkWatchers/read",
    "Microsoft.Network/networkWatchers/packetCaptures/read",
    "Microsoft.Network/networkWatchers/packetCaptures/write",
    "Microsoft.Network/networkWatchers/packetCaptures/delete",
    "Microsoft.Network/networkWatchers/packetCaptures/queryStatus/action",
    "Microsoft.Network/networkWatchers/packetCaptures/stop/action",
    "Microsoft.Storage/storageAccounts/read",
    "Microsoft.Storage/storageAccounts/listKeys/action",
    "Microsoft.Storage/storageAccounts/listServiceSas/action",
    "Microsoft.Storage/storageAccounts/listAccountSas/action",
];

/// The actions of the second, subscription-scoped role: reading the status of the component's
/// own asynchronous Network calls (operation URLs live at subscription scope).
const OPERATION_ROLE_ACTIONS: [&str; 2] =
    ["Microsoft.Network/locations/operations/read", "Microsoft.Network/locations/operationResults/read"];

fn role() -> Value {
    role_file("role-alert-packet-capture.json")
}

fn operation_role() -> Value {
    role_file("role-alert-packet-capture-operations.json")
}

fn role_file(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("the role definition is JSON")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().expect("an array").iter().map(|s| s.as_str().expect("a string").to_string()).collect()
}

#[test]
fn the_custom_role_grants_exactly_the_documented_actions() {
    let role = role();
    let actions = strings(&role["Actions"]);
    let set: BTreeSet<&str> = actions.iter().map(String::as_str).collect();
    assert_eq!(set.len(), actions.len(), "duplicate actions");
    assert_eq!(set, ROLE_ACTIONS.into_iter().collect::<BTreeSet<_>>());
    assert!(actions.iter().all(|a| !a.contains('*')), "no wildcards");
    assert_eq!(role["IsCustom"], true);
    assert!(role["Name"].as_str().is_some_and(|n| !n.is_empty()));
    assert!(role["Description"].as_str().is_some_and(|d| d.len() > 40));
    assert!(strings(&role["NotActions"]).is_empty());
    for key in ["DataActions", "NotDataActions"] {
        assert!(role.get(key).is_none_or(|v| strings(v).is_empty()), "{key}");
    }
    assert_eq!(
        strings(&role["AssignableScopes"]),
        ["/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/REPLACE_ME"]
    );
}

#[test]
fn the_operation_role_grants_exactly_the_two_operation_reads_at_subscription_scope() {
    let role = operation_role();
    let actions = strings(&role["Actions"]);
    assert_eq!(
        actions.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        OPERATION_ROLE_ACTIONS.into_iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(actions.len(), 2, "duplicate actions");
    assert_eq!(role["IsCustom"], true);
    assert!(strings(&role["NotActions"]).is_empty());
    assert_eq!(strings(&role["AssignableScopes"]), ["/subscriptions/00000000-0000-0000-0000-000000000000"]);
}

/// The data-plane role of the capture files (issue 10): a user delegation key and blob reads,
/// on the storage account only.
#[test]
fn the_file_role_grants_exactly_the_key_and_blob_read_on_the_account() {
    let role = role_file("role-alert-packet-capture-files.json");
    assert_eq!(
        strings(&role["Actions"]),
        ["Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"]
    );
    assert_eq!(strings(&role["DataActions"]), ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"]);
    assert!(strings(&role["NotActions"]).is_empty() && strings(&role["NotDataActions"]).is_empty());
    assert_eq!(role["IsCustom"], true);
    let scopes = strings(&role["AssignableScopes"]);
    assert_eq!(scopes.len(), 1);
    assert!(scopes[0].contains("/providers/Microsoft.Storage/storageAccounts/"), "{scopes:?}");
}

/// The RBAC action an ARM request needs, from its method and path.
fn action_for(r: &OutboundRequest) -> Option<&'static str> {
    let path = r.url.strip_prefix(ARM)?.split('?').next()?.to_ascii_lowercase();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let n = segs.len();
    let ends =
        |tail: &[&str]| n >= tail.len() && segs[n - tail.len()..].iter().zip(tail).all(|(a, b)| b.is_empty() || a == b);
    Some(match r.method {
        Method::Get if ends(&["microsoft.compute", "virtualmachines", ""]) => "Microsoft.Compute/virtualMachines/read",
        Method::Get if ends(&["microsoft.compute", "virtualmachinescalesets", ""]) => {
            "Microsoft.Compute/virtualMachineScaleSets/read"
        }
        Method::Get if ends(&["providers", "microsoft.network", "networkwatchers"]) => {
            "Microsoft.Network/networkWatchers/read"
        }
        Method::Get if ends(&["packetcaptures", ""]) => "Microsoft.Network/networkWatchers/packetCaptures/read",
        Method::Put if ends(&["packetcaptures", ""]) => "Microsoft.Network/networkWatchers/packetCaptures/write",
        Method::Delete if ends(&["packetcaptures", ""]) => "Microsoft.Network/networkWatchers/packetCaptures/delete",
        Method::Post if ends(&["packetcaptures", "", "querystatus"]) => {
            "Microsoft.Network/networkWatchers/packetCaptures/queryStatus/action"
        }
        Method::Post if ends(&["packetcaptures", "", "stop"]) => {
            "Microsoft.Network/networkWatchers/packetCaptures/stop/action"
        }
        Method::Get if ends(&["microsoft.network", "locations", "", "operations", ""]) => {
            "Microsoft.Network/locations/operations/read"
        }
        Method::Get if ends(&["microsoft.network", "locations", "", "operationresults", ""]) => {
            "Microsoft.Network/locations/operationResults/read"
        }
        _ => return None,
    })
}

fn every_arm_call_of_a_whole_flow_is_allowed_by_the_role(store: StoreBehaviour) {
    let app = new_app(store, &[]);
    whole_flow(&app);
    let granted: BTreeSet<String> =
        strings(&role()["Actions"]).into_iter().chain(strings(&operation_role()["Actions"])).collect();
    let mut used = BTreeSet::new();
    for r in app.http.requests().iter().filter(|r| r.url.starts_with(ARM)) {
        let action = action_for(r).unwrap_or_else(|| panic!("no known action for {} {}", r.method, r.url));
        assert!(granted.contains(action), "{action} is not in the role");
        used.insert(action);
    }
    assert_eq!(used.len(), 7, "{used:?}");
}
store_matrix!(every_arm_call_of_a_whole_flow_is_allowed_by_the_role: Strict, SpinSqlite, SpinRedis, Eventual);

#[test]
fn following_an_operation_url_needs_only_the_operation_role() {
    let granted: BTreeSet<String> = strings(&operation_role()["Actions"]).into_iter().collect();
    for (kind, action) in [
        ("operations", "Microsoft.Network/locations/operations/read"),
        ("operationResults", "Microsoft.Network/locations/operationResults/read"),
    ] {
        let request = OutboundRequest {
            method: Method::Get,
            url: format!(
                "{ARM}/subscriptions/{SUB}/providers/Microsoft.Network/locations/westus/{kind}/op-1?{NETWORK_API}"
            ),
            headers: Vec::new(),
            body: Vec::new(),
        };
        assert_eq!(action_for(&request), Some(action));
        assert!(granted.contains(action), "{action}");
    }
}
