//! The Azure client where real ARM and Entra ID differ from the happy path: the sealed token
//! cache, Retry-After dates, long-running `queryStatus` answers, and a capture name that is
//! already taken. Everything goes through the scripted transport.

use apc_core::azure::{
    Azure, AzureError, CaptureParams, CaptureStatus, MAX_LRO_GETS, MAX_RETRY_AFTER_SECS, NETWORK_API_VERSION,
    OperationKind, StatusOutcome, TOKEN_KEY,
};
use apc_core::config::{AzureConfig, Secret};
use apc_core::ports::{KvStore, Method, OutboundResponse, World};
use apc_core::resource_id::{ResourceId, Target};
use apc_testkit::azure::{AzureEnv, azure_config};
use apc_testkit::consts::{ARM, LOGIN, STORAGE_ID, SUB, TENANT, scale_set_id, token_url, vm_id};
use apc_testkit::http::{ScriptedHttp, sample_token, with_header};
use serde_json::{Value, json};

// A secret with every character form encoding must escape (the kit's base one has none).
const SECRET: &str = "s3cr3t~Value+with/odd=chars&more";
/// Sun, 06 Nov 1994 08:49:37 GMT: the instant of RFC 9110's HTTP-date example, which the
/// Retry-After date tests read against.
const T0: i64 = 784_111_777;

fn cfg() -> AzureConfig {
    azure_config(SECRET, LOGIN, ARM)
}

/// The ports at T0 with this file's configuration, the first token request scripted.
fn ready_env() -> AzureEnv {
    AzureEnv::ready(cfg(), T0)
}

fn id(s: &str) -> ResourceId {
    ResourceId::parse(s).unwrap()
}

fn vm(name: &str) -> ResourceId {
    id(&vm_id("rg2", name))
}

fn vmss() -> ResourceId {
    id(&scale_set_id("rg2", "ss"))
}

fn watcher() -> ResourceId {
    id(&format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Network/networkWatchers/nw1"))
}

fn capture_url(action: Option<&str>) -> String {
    let action = action.map(|a| format!("/{a}")).unwrap_or_default();
    format!(
        "{ARM}/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Network/networkWatchers/nw1/packetCaptures/pc1{action}?api-version={NETWORK_API_VERSION}"
    )
}

// ---------------------------------------------------------------- token cache

#[test]
fn a_cached_token_serves_later_requests_without_the_network() {
    let env = ready_env();
    assert_eq!(env.az().token().unwrap().expose(), sample_token());
    let cache: Value = serde_json::from_str(&env.kv.get_string(TOKEN_KEY).unwrap()).unwrap();
    let sealed = &cache["token"];
    assert_eq!(sealed["v"], json!(2));
    assert_eq!(sealed["nonce"].as_str().unwrap().len(), 24, "a 96-bit nonce");
    assert_eq!(sealed["tag"].as_str().unwrap().len(), 32, "a Poly1305 tag");

    // New clients, as new requests build them, within the token's life: no network.
    for _ in 0..3 {
        env.clock.advance(600);
        let az = env.az();
        assert_eq!(az.token().unwrap().expose(), sample_token());
        assert_eq!(az.calls(), 0);
    }
    assert_eq!(env.http.count(), 1);
    env.http.assert_done();
}

/// The v1 format, as the previous release wrote it (SHA-256 keystream, secret-prefix tag).
fn v1_value(token: &str, expires_at: i64) -> Vec<u8> {
    json!({
        "expires_at": expires_at,
        "nonce": "0f".repeat(16),
        "ciphertext": token.bytes().map(|b| format!("{:02x}", b ^ 0x5a)).collect::<String>(),
        "tag": "ab".repeat(32),
    })
    .to_string()
    .into_bytes()
}

/// Puts something other than a token sealed for `cfg()` into the cache.
type Prepare = Box<dyn Fn(&AzureEnv)>;

#[test]
fn old_format_garbled_or_foreign_values_are_a_miss_and_the_token_is_refetched() {
    let cases: Vec<(&str, Prepare)> = vec![
        ("v1 format", Box::new(|env: &AzureEnv| env.kv.set(TOKEN_KEY, &v1_value("old-token", T0 + 3000)).unwrap())),
        ("garbled", Box::new(|env: &AzureEnv| env.kv.set(TOKEN_KEY, b"\x00\xff{\"v\":2,").unwrap())),
        (
            "another secret",
            Box::new(|env: &AzureEnv| {
                let mut other = cfg();
                other.client_secret = Secret::new("the-previous-secret");
                let http = ScriptedHttp::new();
                http.expect(
                    Method::Post,
                    token_url(LOGIN, TENANT),
                    ScriptedHttp::json(200, r#"{"expires_in":3599,"access_token":"sealed-under-another-secret"}"#),
                );
                let world = World { http: &http, kv: &env.kv, clock: &env.clock };
                Azure::new(&other, world).token().unwrap();
                http.assert_done();
            }),
        ),
        (
            "another tenant",
            Box::new(|env: &AzureEnv| {
                let mut other = cfg();
                other.tenant_id = "another-tenant".into();
                let http = ScriptedHttp::new();
                http.route(
                    Method::Post,
                    LOGIN,
                    ScriptedHttp::json(200, r#"{"expires_in":3599,"access_token":"token-of-another-tenant"}"#),
                );
                Azure::new(&other, World { http: &http, kv: &env.kv, clock: &env.clock }).token().unwrap();
            }),
        ),
    ];
    for (what, prepare) in cases {
        let env = ready_env();
        prepare(&env);
        assert!(env.kv.get_string(TOKEN_KEY).is_some(), "{what}: something is cached");
        let token = env.az().token().unwrap();
        assert_eq!(token.expose(), sample_token(), "{what}");
        assert_eq!(env.token_requests(), 1, "{what}: refetched once");
        // The refetched token is sealed anew and serves the next request.
        assert_eq!(env.az().token().unwrap().expose(), sample_token(), "{what}");
        assert_eq!(env.http.count(), 1, "{what}");
        env.http.assert_done();
    }
}

// ---------------------------------------------------------------- Retry-After

#[test]
fn retry_after_dates_are_read_against_the_worlds_clock() {
    let cases = [
        ("Sun, 06 Nov 1994 08:50:37 GMT", 60),
        ("Sunday, 06-Nov-94 08:50:37 GMT", 60),
        ("Sun Nov  6 08:50:37 1994", 60),
        ("Sun, 06 Nov 1994 08:00:00 GMT", 0),
        ("Sat, 06 Nov 2094 08:49:37 GMT", MAX_RETRY_AFTER_SECS),
        ("86400000", MAX_RETRY_AFTER_SECS),
        ("not a date", 30),
    ];
    for (header, secs) in cases {
        let env = ready_env();
        env.http.expect(
            Method::Get,
            capture_url(None),
            with_header(ScriptedHttp::arm_error(429, "TooManyRequests", "slow down"), "Retry-After", header),
        );
        let err = env.az().get_capture(&watcher(), "pc1").unwrap_err();
        assert_eq!(err.retry_after(), Some(secs), "{header}");
        assert!(matches!(err, AzureError::Throttled { .. }));
    }
    // The clock moves: the same date is a shorter wait later on.
    let env = ready_env();
    env.clock.advance(50);
    env.http.expect(
        Method::Get,
        capture_url(None),
        with_header(ScriptedHttp::empty(503), "Retry-After", "Sun, 06 Nov 1994 08:50:37 GMT"),
    );
    assert_eq!(env.az().get_capture(&watcher(), "pc1").unwrap_err().retry_after(), Some(10));
}

// ---------------------------------------------------------------- long-running queryStatus

const STOPPED: &str =
    r#"{"name":"pc1","packetCaptureStatus":"Stopped","stopReason":"TimeExceeded","packetCaptureError":[]}"#;
const RUNNING: &str = r#"{"name":"pc1","packetCaptureStatus":"Running","packetCaptureError":[]}"#;

fn op_url() -> String {
    format!(
        "{ARM}/subscriptions/{SUB}/providers/Microsoft.Network/locations/westus/operationResults/op1?api-version={NETWORK_API_VERSION}"
    )
}

fn async_url() -> String {
    format!(
        "{ARM}/subscriptions/{SUB}/providers/Microsoft.Network/locations/westus/operations/op1?api-version={NETWORK_API_VERSION}"
    )
}

/// The status of a `queryStatus` that answered one.
fn known(outcome: StatusOutcome) -> CaptureStatus {
    match outcome {
        StatusOutcome::Known(status) => status,
        other => panic!("expected a status, got {other:?}"),
    }
}

/// The operation and wait of a `queryStatus` that is still pending.
fn pending(outcome: StatusOutcome) -> (String, OperationKind, Option<u64>) {
    match outcome {
        StatusOutcome::Pending { operation, kind, retry_after_secs } => {
            (operation.as_str().to_string(), kind, retry_after_secs)
        }
        other => panic!("expected pending, got {other:?}"),
    }
}

fn accepted(headers: &[(&str, &str)]) -> OutboundResponse {
    headers.iter().fold(ScriptedHttp::empty(202), |r, (k, v)| with_header(r, k, v))
}

#[test]
fn an_empty_202_is_followed_to_its_location_on_the_arm_origin() {
    let env = ready_env();
    env.http.expect(
        Method::Post,
        capture_url(Some("queryStatus")),
        accepted(&[("Location", &op_url()), ("Azure-AsyncOperation", &async_url())]),
    );
    env.http.expect(Method::Get, op_url(), ScriptedHttp::json(200, RUNNING));
    let az = env.az();
    let status = known(az.query_status(&watcher(), "pc1").unwrap());
    assert_eq!(status.status, "Running");
    assert_eq!(az.calls(), 3);
    let get = env.http.request(2).unwrap();
    assert_eq!(get.header("authorization"), Some(format!("Bearer {}", sample_token()).as_str()));
    assert!(get.body.is_empty());
    env.http.assert_done();

    // Retry-After: 0 still allows the GET; a 202 from the Location is asked once more.
    let env = ready_env();
    env.http.expect(
        Method::Post,
        capture_url(Some("queryStatus")),
        accepted(&[("Location", &op_url()), ("Retry-After", "0")]),
    );
    env.http.expect(Method::Get, op_url(), accepted(&[("Location", &op_url())]));
    env.http.expect(Method::Get, op_url(), ScriptedHttp::json(200, STOPPED));
    let status = known(env.az().query_status(&watcher(), "pc1").unwrap());
    assert_eq!((status.status.as_str(), status.stop_reason.as_deref()), ("Stopped", Some("TimeExceeded")));
    env.http.assert_done();
}

#[test]
fn following_is_bounded_and_leaves_the_answer_to_the_next_poll() {
    let env = ready_env();
    env.http.expect(Method::Post, capture_url(Some("queryStatus")), accepted(&[("Location", &op_url())]));
    env.http.route_always(Method::Get, op_url(), accepted(&[("Retry-After", "0")]));
    // Still running after the GETs one request allows: handed back, not an error.
    let outcome = env.az().query_status(&watcher(), "pc1").unwrap();
    assert_eq!(pending(outcome), (op_url(), OperationKind::Location, Some(0)));
    let gets = env.http.requests().iter().filter(|r| r.method == Method::Get).count();
    assert_eq!(gets, MAX_LRO_GETS as usize);
    assert_eq!(env.http.count(), 2 + MAX_LRO_GETS as usize);
    env.http.assert_done();

    // The next poll issues a fresh queryStatus, which may then answer directly.
    env.http.expect(Method::Post, capture_url(Some("queryStatus")), ScriptedHttp::json(200, RUNNING));
    assert_eq!(known(env.az().query_status(&watcher(), "pc1").unwrap()).status, "Running");
    env.http.assert_done();
}

#[test]
fn a_retry_after_longer_than_the_request_can_wait_is_honoured_by_not_following() {
    let env = ready_env();
    env.http.expect(
        Method::Post,
        capture_url(Some("queryStatus")),
        accepted(&[("Location", &op_url()), ("Retry-After", "10")]),
    );
    let outcome = env.az().query_status(&watcher(), "pc1").unwrap();
    assert_eq!(pending(outcome), (op_url(), OperationKind::Location, Some(10)));
    assert_eq!(env.http.count(), 2);

    // Likewise a Location answer asking to wait stops the following, passing the wait on.
    let env = ready_env();
    env.http.expect(Method::Post, capture_url(Some("queryStatus")), accepted(&[("Location", &op_url())]));
    env.http.expect(Method::Get, op_url(), accepted(&[("Retry-After", "Sun, 06 Nov 1994 08:50:02 GMT")]));
    let outcome = env.az().query_status(&watcher(), "pc1").unwrap();
    assert_eq!(pending(outcome), (op_url(), OperationKind::Location, Some(25)));
    assert_eq!(env.http.count(), 3);
    env.http.assert_done();
}

#[test]
fn a_location_off_the_arm_origin_or_malformed_is_never_followed() {
    let hostile = [
        "https://evil.example/subscriptions/x/operationResults/1".to_string(),
        "https://management.azure.com.evil.example/op".to_string(),
        "https://management.azure.com@evil.example/op".to_string(),
        "https://management.azure.com:8443/op".to_string(),
        "http://management.azure.com/op".to_string(),
        "https:/management.azure.com/op".to_string(),
        "//management.azure.com/op".to_string(),
        "/subscriptions/x/operationResults/1".to_string(),
        "not a url".to_string(),
        format!("{ARM}/op\r\nx-injected: 1"),
        format!("{ARM}/{}", "a".repeat(9000)),
        String::new(),
    ];
    for location in hostile {
        for header in ["Location", "Azure-AsyncOperation"] {
            let env = ready_env();
            env.http.route_always(Method::Get, "", ScriptedHttp::json(200, STOPPED));
            env.http.expect(Method::Post, capture_url(Some("queryStatus")), accepted(&[(header, &location)]));
            let err = env.az().query_status(&watcher(), "pc1").unwrap_err();
            assert!(matches!(err, AzureError::Transient { .. }), "{header} {location:?}: {err:?}");
            assert_eq!(env.http.count(), 2, "{header} {location:?}: followed");
            assert!(!err.summary().contains("evil"), "{}", err.summary());
        }
    }
}

#[test]
fn a_bodiless_202_without_location_is_ask_again_later() {
    let env = ready_env();
    env.http.expect(Method::Post, capture_url(Some("queryStatus")), ScriptedHttp::empty(202));
    let err = env.az().query_status(&watcher(), "pc1").unwrap_err();
    assert_eq!(
        err,
        AzureError::Transient {
            detail: "queryStatus accepted (202) but not answered yet: no Location to follow".into(),
            retry_after_secs: None
        }
    );
    assert_eq!(env.http.count(), 2);

    // An unreadable body is the same as none.
    let env = ready_env();
    env.http.expect(Method::Post, capture_url(Some("queryStatus")), ScriptedHttp::json(202, "<html>"));
    assert!(env.az().query_status(&watcher(), "pc1").unwrap_err().is_retryable());
    assert_eq!(env.http.count(), 2);
}

#[test]
fn azure_async_operation_is_used_only_without_location() {
    // InProgress, then Succeeded without a result: one fresh queryStatus.
    let env = ready_env();
    env.http.expect(
        Method::Post,
        capture_url(Some("queryStatus")),
        accepted(&[("Azure-AsyncOperation", &async_url())]),
    );
    env.http.expect(Method::Get, async_url(), ScriptedHttp::json(200, r#"{"status":"InProgress"}"#));
    env.http.expect(Method::Get, async_url(), ScriptedHttp::json(200, r#"{"status":"Succeeded"}"#));
    env.http.expect(Method::Post, capture_url(Some("queryStatus")), ScriptedHttp::json(200, STOPPED));
    assert_eq!(known(env.az().query_status(&watcher(), "pc1").unwrap()).status, "Stopped");
    env.http.assert_done();

    // Succeeded with the result in `properties`: no second queryStatus.
    let env = ready_env();
    env.http.expect(
        Method::Post,
        capture_url(Some("queryStatus")),
        accepted(&[("Azure-AsyncOperation", &async_url())]),
    );
    env.http.expect(
        Method::Get,
        async_url(),
        ScriptedHttp::json(
            200,
            &json!({"status": "Succeeded", "properties": serde_json::from_str::<Value>(RUNNING).unwrap()}).to_string(),
        ),
    );
    assert_eq!(known(env.az().query_status(&watcher(), "pc1").unwrap()).status, "Running");
    assert_eq!(env.http.count(), 3);
    env.http.assert_done();

    // Failed and Canceled carry the operation's error, and are safe to ask again.
    for (status, code) in [("Failed", "InternalServerError"), ("Canceled", "Canceled")] {
        let env = ready_env();
        env.http.expect(
            Method::Post,
            capture_url(Some("queryStatus")),
            accepted(&[("Azure-AsyncOperation", &async_url())]),
        );
        let body = json!({"status": status, "error": {"code": code, "message": "it went wrong"}});
        env.http.expect(Method::Get, async_url(), ScriptedHttp::json(200, &body.to_string()));
        let err = env.az().query_status(&watcher(), "pc1").unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        let summary = err.summary();
        assert!(summary.contains(status) && summary.contains(code) && summary.contains("it went wrong"), "{summary}");
        env.http.assert_done();
    }

    // Succeeded every time and queryStatus always 202: bounded (two POSTs, two GETs).
    let env = ready_env();
    env.http.route_always(
        Method::Post,
        capture_url(Some("queryStatus")),
        accepted(&[("Azure-AsyncOperation", &async_url())]),
    );
    env.http.route_always(Method::Get, async_url(), ScriptedHttp::json(200, r#"{"status":"Succeeded"}"#));
    let err = env.az().query_status(&watcher(), "pc1").unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(env.http.calls().iter().filter(|u| u.starts_with("POST https://management")).count(), 2);
    assert_eq!(env.http.calls().iter().filter(|u| u.starts_with("GET")).count(), 2);
}

#[test]
fn a_gone_operation_url_is_not_a_gone_capture() {
    let env = ready_env();
    env.http.expect(Method::Post, capture_url(Some("queryStatus")), accepted(&[("Location", &op_url())]));
    env.http.expect(Method::Get, op_url(), ScriptedHttp::arm_error(404, "NotFound", "operation expired"));
    let err = env.az().query_status(&watcher(), "pc1").unwrap_err();
    assert!(matches!(err, AzureError::Transient { .. }), "{err:?}");

    // A throttled Location keeps its Retry-After.
    let env = ready_env();
    env.http.expect(Method::Post, capture_url(Some("queryStatus")), accepted(&[("Location", &op_url())]));
    env.http.expect(
        Method::Get,
        op_url(),
        with_header(ScriptedHttp::arm_error(429, "TooManyRequests", "slow"), "Retry-After", "40"),
    );
    assert_eq!(env.az().query_status(&watcher(), "pc1").unwrap_err().retry_after(), Some(40));
    env.http.assert_done();
}

#[test]
fn stop_and_delete_202s_are_accepted_without_following() {
    let headers = [("Location", op_url()), ("Azure-AsyncOperation", async_url())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let env = ready_env();
    env.http.expect(Method::Post, capture_url(Some("stop")), accepted(&headers));
    env.az().stop_capture(&watcher(), "pc1").unwrap();
    env.http.expect(Method::Delete, capture_url(None), accepted(&headers));
    env.az().delete_capture(&watcher(), "pc1").unwrap();
    assert_eq!(env.http.count(), 3);
    env.http.assert_done();
}

// ---------------------------------------------------------------- a name already taken

fn params(target: Target) -> CaptureParams {
    CaptureParams {
        target,
        time_limit_seconds: 300,
        bytes_per_packet: 0,
        bytes_per_session: 1_073_741_824,
        filters: Vec::new(),
        storage_account_id: Some(id(STORAGE_ID)),
        file_path: None,
    }
}

/// A capture resource as ARM shows it, for `target` (and `scope` when given).
fn existing(target: &ResourceId, target_type: &str, scope: Option<Value>, time_limit: u32) -> OutboundResponse {
    let mut props = json!({
        "provisioningState": "Succeeded",
        "target": target.to_string().to_ascii_lowercase(),
        "targetType": target_type,
        "bytesToCapturePerPacket": 0,
        "totalBytesPerSession": 1_073_741_824u64,
        "timeLimitInSeconds": time_limit,
        "storageLocation": {
            "storageId": format!("/subscriptions/{SUB}/resourceGroups/rg2/providers/Microsoft.Storage/storageAccounts/PCSTORE"),
            "storagePath": "https://pcstore.blob.core.windows.net/network-watcher-logs/pc1.cap"
        },
        "filters": []
    });
    if let Some(scope) = scope {
        props["scope"] = scope;
    }
    ScriptedHttp::json(200, &json!({"name": "pc1", "properties": props}).to_string())
}

#[test]
fn an_idempotent_201_is_adopted_without_a_read() {
    let env = ready_env();
    let body = existing(&vm("vm1"), "AzureVM", None, 300);
    env.http.expect(Method::Put, capture_url(None), OutboundResponse { status: 201, ..body });
    let az = env.az();
    let created = az.create_capture(&watcher(), "pc1", &params(Target::Vm(vm("vm1")))).unwrap();
    assert_eq!(created.provisioning_state.as_deref(), Some("Succeeded"));
    assert_eq!(
        created.storage_path.as_deref(),
        Some("https://pcstore.blob.core.windows.net/network-watcher-logs/pc1.cap")
    );
    assert_eq!(az.calls(), 2, "token and PUT only");
    env.http.assert_done();
}

#[test]
fn a_409_or_400_already_exists_reads_the_capture_back_and_adopts_ours() {
    let refusals = [
        ScriptedHttp::arm_error(409, "PacketCaptureAlreadyExists", "Packet capture pc1 already exists."),
        ScriptedHttp::arm_error(409, "Conflict", "conflict"),
        ScriptedHttp::arm_error(400, "PacketCaptureAlreadyExists", "exists"),
        ScriptedHttp::arm_error(400, "ResourceAlreadyExists", "exists"),
        ScriptedHttp::arm_error(400, "Conflict", "exists"),
    ];
    for refusal in refusals {
        let what = String::from_utf8_lossy(&refusal.body).into_owned();
        let env = ready_env();
        env.http.expect(Method::Put, capture_url(None), refusal);
        env.http.expect(Method::Get, capture_url(None), existing(&vm("vm1"), "AzureVM", None, 300));
        let created = env.az().create_capture(&watcher(), "pc1", &params(Target::Vm(vm("vm1")))).expect(&what);
        assert!(created.already_existed, "{what}");
        assert_eq!(created.provisioning_state.as_deref(), Some("Succeeded"));
        env.http.assert_done();
    }

    // Scale sets: the whole set, and one instance, are ours when the scope says so.
    let env = ready_env();
    env.http.expect(Method::Put, capture_url(None), ScriptedHttp::arm_error(409, "Conflict", "exists"));
    env.http.expect(
        Method::Get,
        capture_url(None),
        existing(&vmss(), "AzureVMSS", Some(json!({"include": [], "exclude": []})), 300),
    );
    assert!(env.az().create_capture(&watcher(), "pc1", &params(Target::Vmss(vmss()))).unwrap().already_existed);
    let instance = Target::from_id(&id(&format!("{vmss}/virtualMachines/3", vmss = vmss()))).unwrap();
    let env = ready_env();
    env.http.expect(Method::Put, capture_url(None), ScriptedHttp::arm_error(409, "Conflict", "exists"));
    env.http.expect(
        Method::Get,
        capture_url(None),
        existing(&vmss(), "AzureVMSS", Some(json!({"include": ["3"], "exclude": []})), 300),
    );
    assert!(env.az().create_capture(&watcher(), "pc1", &params(instance)).unwrap().already_existed);
}

#[test]
fn a_same_name_capture_on_another_target_is_a_permanent_error_naming_it() {
    let instance = |i: &str| Target::from_id(&id(&format!("{}/virtualMachines/{i}", vmss()))).unwrap();
    let cases: Vec<(Target, OutboundResponse, &str)> = vec![
        (Target::Vm(vm("vm1")), existing(&vm("other-vm"), "AzureVM", None, 300), "other-vm"),
        (Target::Vm(vm("vm1")), existing(&vmss(), "AzureVMSS", None, 300), "virtualmachinescalesets/ss"),
        (Target::Vm(vm("vm1")), existing(&vm("vm1"), "AzureVM", None, 60), "timeLimitInSeconds"),
        (instance("3"), existing(&vmss(), "AzureVMSS", Some(json!({"include": ["4"]})), 300), "[\"4\"]"),
        (Target::Vmss(vmss()), existing(&vmss(), "AzureVMSS", Some(json!({"include": ["3"]})), 300), "[\"3\"]"),
        (instance("3"), existing(&vmss(), "AzureVMSS", Some(json!({})), 300), "whole scale set"),
    ];
    for (target, found, names) in cases {
        let env = ready_env();
        env.http.expect(
            Method::Put,
            capture_url(None),
            ScriptedHttp::arm_error(409, "PacketCaptureAlreadyExists", "exists"),
        );
        env.http.expect(Method::Get, capture_url(None), found);
        let err = env.az().create_capture(&watcher(), "pc1", &params(target)).unwrap_err();
        assert!(!err.is_retryable(), "{err:?}");
        let AzureError::Permanent { code, message, .. } = &err else { panic!("{err:?}") };
        assert_eq!(code, "PacketCaptureNameTaken");
        assert!(message.contains("pc1") && message.contains(names), "{message}");
        env.http.assert_done();
    }
}

#[test]
fn other_400s_are_not_read_back_and_a_missing_capture_keeps_arms_words() {
    let env = ready_env();
    env.http.expect(Method::Put, capture_url(None), ScriptedHttp::arm_error(400, "InvalidRequestFormat", "bad filter"));
    let err = env.az().create_capture(&watcher(), "pc1", &params(Target::Vm(vm("vm1")))).unwrap_err();
    assert_eq!(
        err,
        AzureError::Permanent { status: 400, code: "InvalidRequestFormat".into(), message: "bad filter".into() }
    );
    assert_eq!(env.http.count(), 2);

    let env = ready_env();
    env.http.expect(Method::Put, capture_url(None), ScriptedHttp::arm_error(400, "ResourceAlreadyExists", "exists"));
    env.http.expect(Method::Get, capture_url(None), ScriptedHttp::arm_error(404, "NotFound", "no"));
    let err = env.az().create_capture(&watcher(), "pc1", &params(Target::Vm(vm("vm1")))).unwrap_err();
    assert_eq!(
        err,
        AzureError::Permanent { status: 400, code: "ResourceAlreadyExists".into(), message: "exists".into() }
    );
    env.http.assert_done();
}
