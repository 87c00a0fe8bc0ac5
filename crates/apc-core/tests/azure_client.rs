//! The Azure client against the scripted transport, answered with the real Azure samples of
//! `testdata/azure-samples` (derived variants are built in the tests; the files stay unchanged).

use apc_core::azure::{Azure, AzureError, CaptureParams, NETWORK_API_VERSION, StatusOutcome, TOKEN_KEY};
use apc_core::config::{AzureConfig, Secret};
use apc_core::ports::{Method, OutboundRequest, TransportError};
use apc_core::resource_id::{ResourceId, Target};
use apc_testkit::azure::{AzureEnv, azure_config};
use apc_testkit::consts::{ARM, CLIENT_ID, LOGIN, SUB, T0, TENANT, TOKEN_OK, token_url};
use apc_testkit::http::{
    ScriptedHttp, sample_body, sample_file_response, sample_response, sample_text, sample_token, with_header,
};
use serde_json::{Value, json};

// A secret with every character form encoding must escape (the kit's base one has none).
const SECRET: &str = "s3cr3t~Value+with/odd=chars&more";

const NW: &str = "network-watcher/";

fn cfg_for(authority: &str, arm: &str) -> AzureConfig {
    azure_config(SECRET, authority, arm)
}

fn cfg() -> AzureConfig {
    cfg_for(LOGIN, ARM)
}

/// The ports at T0 with this file's configuration.
fn new_env() -> AzureEnv {
    AzureEnv::new(cfg(), T0)
}

/// [`new_env`], with the first token request scripted.
fn ready_env() -> AzureEnv {
    AzureEnv::ready(cfg(), T0)
}

fn form(req: &OutboundRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(&req.body).into_owned().collect()
}

fn body_json(req: &OutboundRequest) -> Value {
    serde_json::from_slice(&req.body).expect("request body is JSON")
}

fn id(s: &str) -> ResourceId {
    ResourceId::parse(s).unwrap()
}

fn vm_id() -> ResourceId {
    id(&format!("/subscriptions/{SUB}/resourceGroups/rg2/providers/Microsoft.Compute/virtualMachines/vm1"))
}

fn watcher() -> ResourceId {
    id(&format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Network/networkWatchers/nw1"))
}

fn capture_url(name: &str, action: Option<&str>) -> String {
    let action = action.map(|a| format!("/{a}")).unwrap_or_default();
    format!(
        "{ARM}/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Network/networkWatchers/nw1/packetCaptures/{name}{action}?api-version={NETWORK_API_VERSION}"
    )
}

fn list_url() -> String {
    format!("{ARM}/subscriptions/{SUB}/providers/Microsoft.Network/networkWatchers?api-version=2025-07-01")
}

fn assert_arm_headers(req: &OutboundRequest, token: &str, with_body: bool) {
    assert_eq!(req.header("authorization"), Some(format!("Bearer {token}").as_str()));
    assert_eq!(req.header("accept"), Some("application/json"));
    assert!(req.header("user-agent").unwrap().starts_with("alert-packet-capture/"));
    assert_eq!(req.header("content-type"), if with_body { Some("application/json") } else { None });
}

// ---------------------------------------------------------------- token

#[test]
fn token_request_is_exact_and_the_second_call_does_not_reach_the_network() {
    let env = ready_env();
    let az = env.az();

    let token = az.token().unwrap();
    assert_eq!(token.expose(), sample_token());
    let req = env.http.request(0).unwrap();
    assert_eq!(req.method, Method::Post);
    assert_eq!(req.url, format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(req.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(
        form(&req),
        vec![
            ("client_id".to_string(), CLIENT_ID.to_string()),
            ("scope".to_string(), "https://management.azure.com/.default".to_string()),
            ("client_secret".to_string(), SECRET.to_string()),
            ("grant_type".to_string(), "client_credentials".to_string()),
        ]
    );
    // The secret's reserved characters are encoded, not sent raw.
    assert!(!String::from_utf8_lossy(&req.body).contains(SECRET));

    // The second call must not reach the network.
    let again = az.token().unwrap();
    assert_eq!(again.expose(), sample_token());
    assert_eq!(env.http.count(), 1);
    assert_eq!(az.calls(), 1);
    env.http.assert_done();
}

#[test]
fn scope_follows_the_arm_endpoint_in_the_china_cloud() {
    let mut env = new_env();
    env.cfg = cfg_for("https://login.chinacloudapi.cn", "https://management.chinacloudapi.cn");
    env.http.expect(
        Method::Post,
        token_url("https://login.chinacloudapi.cn", TENANT),
        sample_file_response(TOKEN_OK, 200),
    );
    env.az().token().unwrap();
    let req = env.http.request(0).unwrap();
    let scope = form(&req).into_iter().find(|(k, _)| k == "scope").unwrap().1;
    assert_eq!(scope, "https://management.chinacloudapi.cn/.default");
    env.http.assert_done();
}

#[test]
fn tenant_is_percent_encoded_as_one_path_segment() {
    let mut env = new_env();
    env.cfg.tenant_id = "contoso/../x?y".to_string();
    env.http.expect(
        Method::Post,
        format!("{LOGIN}/contoso%2F..%2Fx%3Fy/oauth2/v2.0/token"),
        sample_file_response(TOKEN_OK, 200),
    );
    env.az().token().unwrap();
    env.http.assert_done();
}

#[test]
fn cached_token_is_used_until_a_minute_before_expiry_then_refreshed() {
    let env = ready_env();
    env.az().token().unwrap();

    // expires_in is 3599: 100 s left is still good (a new client, as in a new request).
    env.clock.advance(3499);
    env.az().token().unwrap();
    assert_eq!(env.http.count(), 1);

    // 59 s left: refreshed.
    env.clock.advance(41);
    let fresh = r#"{"token_type":"Bearer","expires_in":3599,"access_token":"second-token-value"}"#;
    env.http.expect(Method::Post, token_url(LOGIN, TENANT), ScriptedHttp::json(200, fresh));
    let az = env.az();
    assert_eq!(az.token().unwrap().expose(), "second-token-value");
    assert_eq!(az.calls(), 1);
    assert_eq!(env.http.count(), 2);
    env.http.assert_done();
}

#[test]
fn kv_never_holds_the_token_in_clear_and_a_rotated_secret_or_tampering_refetches() {
    let env = ready_env();
    env.az().token().unwrap();

    let token = sample_token();
    let stored = env.kv.get_string(TOKEN_KEY).expect("token cached");
    for value in env.kv.values() {
        let text = String::from_utf8_lossy(&value);
        assert!(!text.contains(&token) && !text.contains("eyJ0eXAi") && !text.contains(SECRET), "{text}");
    }
    // The token lives sealed in the Azure cache key's `token` field.
    let sealed: Value = serde_json::from_str::<Value>(&stored).unwrap()["token"].clone();
    assert_eq!(sealed["expires_at"], json!(T0 + 3599));
    for k in ["nonce", "ciphertext", "tag"] {
        assert!(sealed[k].as_str().unwrap().bytes().all(|c| c.is_ascii_hexdigit()), "{k}");
    }

    // Rotated secret: the sealed value does not open; a new token is fetched.
    let mut rotated = cfg();
    rotated.client_secret = Secret::new("another-secret");
    env.token_once();
    Azure::new(&rotated, env.world()).token().unwrap();
    assert_eq!(env.token_requests(), 2);

    // Tampered expiry: the tag no longer matches.
    let mut v: Value = serde_json::from_str(&env.kv.get_string(TOKEN_KEY).unwrap()).unwrap();
    v["token"]["expires_at"] = json!(T0 + 999_999);
    apc_core::ports::KvStore::set(&env.kv, TOKEN_KEY, v.to_string().as_bytes()).unwrap();
    env.token_once();
    Azure::new(&rotated, env.world()).token().unwrap();
    assert_eq!(env.token_requests(), 3);

    // Garbage in the cache is a miss, never a panic.
    apc_core::ports::KvStore::set(&env.kv, TOKEN_KEY, b"\xff{not json").unwrap();
    env.token_once();
    assert_eq!(Azure::new(&rotated, env.world()).token().unwrap().expose(), token);
    env.http.assert_done();
}

fn entra_failure(status: u16, body: &str) -> AzureError {
    let env = new_env();
    env.http.expect(Method::Post, token_url(LOGIN, TENANT), ScriptedHttp::json(status, body));
    let err = env.az().token().unwrap_err();
    assert!(env.kv.get_string(TOKEN_KEY).is_none(), "a failure is not cached");
    err
}

fn config_variable(err: &AzureError) -> &'static str {
    match err {
        AzureError::Config { variable, detail } => {
            assert!(!detail.contains(SECRET), "detail leaks the secret: {detail}");
            assert!(!detail.contains('\n') && !detail.contains('\r'));
            variable
        }
        other => panic!("expected a configuration problem, got {other:?}"),
    }
}

#[test]
fn entra_error_samples_name_the_variable_to_fix() {
    let cases = [
        ("token/error.AADSTS7000215.invalid_client.http401.real.json", 401, "azure_client_secret"),
        ("token/error.AADSTS90002.invalid_tenant.real.json", 400, "azure_tenant_id"),
        ("token/client-credentials.error.invalid_scope.entra-docs.json", 400, "azure_arm_endpoint"),
        ("token/error.AADSTS70011.invalid_scope.with-error_uri.reference-error-codes.json", 400, "azure_arm_endpoint"),
    ];
    for (file, status, variable) in cases {
        let err = entra_failure(status, &sample_text(file));
        assert_eq!(config_variable(&err), variable, "{file}");
        assert!(!err.is_retryable());
    }
}

#[test]
fn synthetic_entra_errors_branch_on_codes_not_text() {
    let unknown_app = r#"{"error":"unauthorized_client","error_description":"AADSTS700016: Application with identifier 'x' was not found in the directory 'y'.\r\nTrace ID: 1","error_codes":[700016]}"#;
    assert_eq!(config_variable(&entra_failure(400, unknown_app)), "azure_client_id");

    let expired = r#"{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys are expired.","error_codes":[7000222]}"#;
    assert_eq!(config_variable(&entra_failure(401, expired)), "azure_client_secret");

    // The code decides, whatever the text says; an echoed secret is scrubbed from the detail.
    let misleading = format!(
        r#"{{"error":"invalid_request","error_description":"Tenant not found, secret was {SECRET}","error_codes":[7000215]}}"#
    );
    assert_eq!(config_variable(&entra_failure(401, &misleading)), "azure_client_secret");

    // An unknown Entra error is permanent, not a configuration guess.
    let other =
        r#"{"error":"invalid_request","error_description":"AADSTS900144: missing grant_type","error_codes":[900144]}"#;
    assert!(matches!(entra_failure(400, other), AzureError::Permanent { status: 400, .. }));

    // Entra's own outages are transient.
    assert!(entra_failure(503, "<html>busy</html>").is_retryable());
    // A 200 without a token is not a success.
    assert!(matches!(entra_failure(200, r#"{"token_type":"Bearer"}"#), AzureError::Transient { .. }));
}

// ---------------------------------------------------------------- VM

#[test]
fn vm_get_reads_location_os_and_no_agent_from_the_compute_sample() {
    let env = ready_env();
    let vm = id(&format!(
        "/subscriptions/{SUB}/resourceGroups/myResourceGroup/providers/Microsoft.Compute/virtualMachines/myVM"
    ));
    let url = format!(
        "{ARM}/subscriptions/{SUB}/resourceGroups/myResourceGroup/providers/Microsoft.Compute/virtualMachines/myVM?api-version=2025-04-01"
    );
    env.http.expect(Method::Get, &url, sample_response("compute/VirtualMachineGet.2025-04-01.json", 200));

    let az = env.az();
    let info = az.get_vm(&vm).unwrap();
    assert_eq!(info.location, "westus");
    assert_eq!(info.os_type.as_deref(), Some("Windows"));
    assert!(!info.has_watcher_agent, "the sample only has CustomScriptExtension");
    assert_arm_headers(&env.http.request(1).unwrap(), &sample_token(), false);
    assert_eq!(az.calls(), 2);
    env.http.assert_done();
}

#[test]
fn watcher_agent_is_found_by_publisher_and_type_whatever_its_name() {
    let mut body: Value = serde_json::from_str(&sample_body("compute/VirtualMachineGet.2025-04-01.json", 200)).unwrap();
    body["resources"].as_array_mut().unwrap().push(json!({
        "name": "my-own-name",
        "properties": {"publisher": "microsoft.azure.networkwatcher", "type": "networkwatcheragentlinux", "typeHandlerVersion": "1.4"}
    }));
    let env = ready_env();
    env.http.route(Method::Get, ARM, ScriptedHttp::json(200, &body.to_string()));
    assert!(env.az().get_vm(&vm_id()).unwrap().has_watcher_agent);

    // A look-alike from another publisher does not count.
    let fake = json!({"location": "East US", "resources": [{"properties": {"publisher": "Contoso", "type": "NetworkWatcherAgentLinux"}}]});
    env.http.route(Method::Get, ARM, ScriptedHttp::json(200, &fake.to_string()));
    let info = env.az().get_vm(&vm_id()).unwrap();
    assert!(!info.has_watcher_agent);
    assert_eq!(info.location, "eastus");
    assert_eq!(info.os_type, None);
}

#[test]
fn scale_set_and_instance_ids_get_the_scale_set() {
    let vmss_body = json!({
        "location": "North Europe",
        "properties": {"virtualMachineProfile": {
            "storageProfile": {"osDisk": {"osType": "Linux"}},
            "extensionProfile": {"extensions": [{"name": "nw", "properties": {"publisher": "Microsoft.Azure.NetworkWatcher", "type": "NetworkWatcherAgentLinux"}}]}
        }}
    });
    let url = format!(
        "{ARM}/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/ss?api-version=2025-04-01"
    );
    for target in [
        format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/ss"),
        format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/microsoft.compute/virtualmachinescalesets/ss/virtualmachines/3"
        ),
    ] {
        let env = ready_env();
        env.http.expect(Method::Get, &url, ScriptedHttp::json(200, &vmss_body.to_string()));
        let info = env.az().get_vm(&id(&target)).unwrap();
        assert_eq!(info.location, "northeurope");
        assert_eq!(info.os_type.as_deref(), Some("Linux"));
        assert!(info.has_watcher_agent);
        env.http.assert_done();
    }
}

#[test]
fn a_vm_answer_without_location_or_json_is_transient() {
    for body in ["{}", "<html>gateway</html>"] {
        let env = ready_env();
        env.http.route(Method::Get, ARM, ScriptedHttp::json(200, body));
        let err = env.az().get_vm(&vm_id()).unwrap_err();
        assert!(matches!(err, AzureError::Transient { .. }), "{body}: {err:?}");
    }
}

// ---------------------------------------------------------------- watchers

#[test]
fn watcher_list_is_matched_on_location_and_every_region_is_cached() {
    let env = ready_env();
    env.http.expect(
        Method::Get,
        list_url(),
        sample_response(&format!("{NW}NetworkWatcherListAll.2026-07-01.json"), 200),
    );

    let az = env.az();
    let nw = az.find_watcher(SUB, "East US").unwrap();
    assert_eq!(nw, watcher());
    assert_arm_headers(&env.http.request(1).unwrap(), &sample_token(), false);
    // Every listed region, in the one cache key (one write, not one per region), written when
    // the request ends (here: on demand).
    az.flush();
    let cache: Value = serde_json::from_str(&env.kv.get_string(TOKEN_KEY).unwrap()).unwrap();
    assert!(cache["watchers"][format!("{SUB}:eastus")].as_str().unwrap().contains("networkWatchers/nw1"));
    assert!(cache["watchers"][format!("{SUB}:westus")].as_str().unwrap().contains("networkWatchers/nw2"));
    assert_eq!(env.kv.keys(), [TOKEN_KEY]);

    // Same region again, and the other listed region: no call at all.
    let before = env.http.count();
    assert_eq!(az.find_watcher(SUB, "eastus").unwrap(), nw);
    assert_eq!(az.find_watcher(&SUB.to_uppercase(), "West US").unwrap().name(), "nw2");
    assert_eq!(env.http.count(), before);
    env.http.assert_done();

    // After forgetting, the list is asked again.
    az.forget_watcher(SUB, "East US");
    env.http.expect(
        Method::Get,
        list_url(),
        sample_response(&format!("{NW}NetworkWatcherListAll.2026-07-01.json"), 200),
    );
    assert_eq!(az.find_watcher(SUB, "eastus").unwrap(), nw);
    env.http.assert_done();
}

#[test]
fn region_without_watcher_is_an_actionable_permanent_error() {
    let env = ready_env();
    env.http.expect(
        Method::Get,
        list_url(),
        sample_response(&format!("{NW}NetworkWatcherListAll.2026-07-01.json"), 200),
    );
    let err = env.az().find_watcher(SUB, "Japan East").unwrap_err();
    match &err {
        AzureError::Permanent { code, message, .. } => {
            assert_eq!(code, "NetworkWatcherNotFound");
            assert!(message.contains("japaneast") && message.contains("az network watcher configure"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
    env.http.assert_done();
}

#[test]
fn watcher_list_2025_sample_ids_are_refused_and_a_derived_variant_matches() {
    // The 2025-07-01 example's subscription is the literal "subid": not a valid id, so skipped.
    let file = format!("{NW}NetworkWatcherListAll.2025-07-01.json");
    let env = ready_env();
    env.http.expect(Method::Get, list_url(), sample_response(&file, 200));
    let err = env.az().find_watcher(SUB, "westus").unwrap_err();
    assert_eq!(err.code(), Some("NetworkWatcherNotFound"));
    let cache: Value = serde_json::from_str(&env.kv.get_string(TOKEN_KEY).unwrap()).unwrap();
    assert_eq!(cache["watchers"], json!({}), "nothing cached from ids that do not parse");

    // The same answer with a real subscription id matches.
    let derived = sample_body(&file, 200).replace("/subscriptions/subid/", &format!("/subscriptions/{SUB}/"));
    let env = ready_env();
    env.http.expect(Method::Get, list_url(), ScriptedHttp::json(200, &derived));
    assert_eq!(env.az().find_watcher(SUB, "westus").unwrap().name(), "nw2");
    env.http.assert_done();
}

fn page(watchers: &[(&str, &str)], next: Option<&str>) -> String {
    let value: Vec<Value> = watchers
        .iter()
        .map(|(name, loc)| {
            json!({"id": format!("/subscriptions/{SUB}/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/{name}"), "location": loc})
        })
        .collect();
    let mut v = json!({ "value": value });
    if let Some(n) = next {
        v["nextLink"] = json!(n);
    }
    v.to_string()
}

#[test]
fn next_link_is_followed_only_on_the_arm_host() {
    let good_next = format!(
        "{ARM}/subscriptions/{SUB}/providers/Microsoft.Network/networkWatchers?api-version=2025-07-01&$skiptoken=abc"
    );
    let env = ready_env();
    env.http.expect(
        Method::Get,
        list_url(),
        ScriptedHttp::json(200, &page(&[("NetworkWatcher_eastus", "eastus")], Some(&good_next))),
    );
    env.http.expect(
        Method::Get,
        &good_next,
        ScriptedHttp::json(200, &page(&[("NetworkWatcher_uksouth", "UK South")], None)),
    );
    let nw = env.az().find_watcher(SUB, "uksouth").unwrap();
    assert_eq!(nw.name(), "NetworkWatcher_uksouth");
    assert_eq!(
        env.http.request(2).unwrap().header("authorization"),
        Some(format!("Bearer {}", sample_token()).as_str())
    );
    env.http.assert_done();

    for hostile in [
        "https://evil.example.com/subscriptions/x?api-version=1",
        "https://management.azure.com.evil.example.com/x",
        "https://management.azure.com@evil.example.com/x",
        "http://management.azure.com/x",
        "https://management.azure.com:8443/x",
    ] {
        let env = ready_env();
        env.http.expect(Method::Get, list_url(), ScriptedHttp::json(200, &page(&[("nw", "eastus")], Some(hostile))));
        let err = env.az().find_watcher(SUB, "uksouth").unwrap_err();
        assert_eq!(err.code(), Some("NetworkWatcherNotFound"), "{hostile}");
        assert_eq!(env.http.count(), 2, "{hostile} must not be followed");
        env.http.assert_done();
    }
}

#[test]
fn watcher_pages_are_bounded() {
    let env = ready_env();
    let next = format!("{ARM}/next?api-version=2025-07-01");
    env.http.route_always(Method::Get, ARM, ScriptedHttp::json(200, &page(&[("nw", "eastus")], Some(&next))));
    let err = env.az().find_watcher(SUB, "westus").unwrap_err();
    assert_eq!(err.code(), Some("NetworkWatcherNotFound"));
    assert_eq!(env.http.count(), 1 + 10);
}

// ---------------------------------------------------------------- captures

fn params(target: Target) -> CaptureParams {
    CaptureParams {
        target,
        time_limit_seconds: 100,
        bytes_per_packet: 10000,
        bytes_per_session: 100000,
        filters: vec![json!({"protocol": "TCP", "localIPAddress": "10.0.0.4", "localPort": "80"})],
        storage_account_id: Some(id(&format!(
            "/subscriptions/{SUB}/resourceGroups/rg2/providers/Microsoft.Storage/storageAccounts/pcstore"
        ))),
        file_path: None,
    }
}

fn create_sample() -> apc_core::ports::OutboundResponse {
    sample_response(&format!("{NW}PacketCaptureCreate.2026-07-01.json"), 201)
}

#[test]
fn create_capture_for_a_vm_with_a_storage_account() {
    let env = ready_env();
    env.http.expect(Method::Put, capture_url("pc1", None), create_sample());
    let created = env.az().create_capture(&watcher(), "pc1", &params(Target::Vm(vm_id()))).unwrap();
    assert_eq!(created.provisioning_state.as_deref(), Some("Updating"));
    assert_eq!(
        created.storage_path.as_deref(),
        Some("https://mytestaccountname.blob.core.windows.net/capture/pc1.cap")
    );
    assert!(!created.already_existed);

    let req = env.http.request(1).unwrap();
    assert_arm_headers(&req, &sample_token(), true);
    assert_eq!(
        body_json(&req),
        json!({"properties": {
            "target": format!("/subscriptions/{SUB}/resourceGroups/rg2/providers/Microsoft.Compute/virtualMachines/vm1"),
            "targetType": "AzureVM",
            "bytesToCapturePerPacket": 10000,
            "totalBytesPerSession": 100000,
            "timeLimitInSeconds": 100,
            "storageLocation": {"storageId": format!("/subscriptions/{SUB}/resourceGroups/rg2/providers/Microsoft.Storage/storageAccounts/pcstore")},
            "filters": [{"protocol": "TCP", "localIPAddress": "10.0.0.4", "localPort": "80"}]
        }})
    );
    env.http.assert_done();
}

#[test]
fn create_capture_with_a_file_path_only() {
    let env = ready_env();
    env.http.expect(Method::Put, capture_url("apc-1", None), create_sample());
    let mut p = params(Target::Vm(vm_id()));
    p.storage_account_id = None;
    p.file_path = Some("/var/captures/apc-1.cap".to_string());
    p.filters.clear();
    env.az().create_capture(&watcher(), "apc-1", &p).unwrap();
    let body = body_json(&env.http.request(1).unwrap());
    assert_eq!(body["properties"]["storageLocation"], json!({"filePath": "/var/captures/apc-1.cap"}));
    assert_eq!(body["properties"]["filters"], json!([]));
    assert!(body["properties"].get("scope").is_none());
    env.http.assert_done();
}

#[test]
fn create_capture_for_a_scale_set_instance_scopes_the_instance_id() {
    let env = ready_env();
    env.http.expect(Method::Put, capture_url("pc1", None), create_sample());
    let instance = id(&format!(
        "/subscriptions/{SUB}/resourceGroups/rg2/providers/Microsoft.Compute/virtualMachineScaleSets/ss/virtualMachines/3"
    ));
    let target = Target::from_id(&instance).unwrap();
    env.az().create_capture(&watcher(), "pc1", &params(target)).unwrap();
    let props = body_json(&env.http.request(1).unwrap())["properties"].clone();
    assert_eq!(
        props["target"],
        json!(format!(
            "/subscriptions/{SUB}/resourceGroups/rg2/providers/Microsoft.Compute/virtualMachineScaleSets/ss"
        ))
    );
    assert_eq!(props["targetType"], json!("AzureVMSS"));
    assert_eq!(props["scope"], json!({"include": ["3"], "exclude": []}));

    // A whole scale set: no scope (both lists empty means every instance).
    let env = ready_env();
    env.http.expect(Method::Put, capture_url("pc1", None), create_sample());
    let vmss =
        id(&format!("/subscriptions/{SUB}/resourceGroups/rg2/providers/Microsoft.Compute/virtualMachineScaleSets/ss"));
    env.az().create_capture(&watcher(), "pc1", &params(Target::from_id(&vmss).unwrap())).unwrap();
    let props = body_json(&env.http.request(1).unwrap())["properties"].clone();
    assert_eq!(props["targetType"], json!("AzureVMSS"));
    assert!(props.get("scope").is_none());
}

#[test]
fn create_of_an_existing_capture_reads_it_back() {
    let env = ready_env();
    env.http.expect(
        Method::Put,
        capture_url("pc1", None),
        ScriptedHttp::arm_error(409, "PacketCaptureAlreadyExists", "Packet capture pc1 already exists."),
    );
    env.http.expect(
        Method::Get,
        capture_url("pc1", None),
        sample_response(&format!("{NW}PacketCaptureGet.2026-03-01.json"), 200),
    );
    let az = env.az();
    let created = az.create_capture(&watcher(), "pc1", &params(Target::Vm(vm_id()))).unwrap();
    assert!(created.already_existed);
    assert_eq!(created.provisioning_state.as_deref(), Some("Updating"));
    assert_eq!(
        created.storage_path.as_deref(),
        Some("https://mytestaccountname.blob.core.windows.net/capture/pc1.cap")
    );
    assert_eq!(az.calls(), 3);
    env.http.assert_done();

    // A 409 for something else (the capture is not there) stays an error with ARM's words.
    let env = ready_env();
    env.http.expect(Method::Put, capture_url("pc1", None), ScriptedHttp::arm_error(409, "Conflict", "another thing"));
    env.http.expect(
        Method::Get,
        capture_url("pc1", None),
        ScriptedHttp::arm_error(404, "ResourceNotFound", "not found"),
    );
    let err = env.az().create_capture(&watcher(), "pc1", &params(Target::Vm(vm_id()))).unwrap_err();
    assert_eq!(err, AzureError::Permanent { status: 409, code: "Conflict".into(), message: "another thing".into() });

    // 409 RetryableErrorDueToAnotherOperation: wait, no read-back.
    let env = ready_env();
    env.http.expect(
        Method::Put,
        capture_url("pc1", None),
        with_header(ScriptedHttp::arm_error(409, "RetryableErrorDueToAnotherOperation", "busy"), "Retry-After", "12"),
    );
    let err = env.az().create_capture(&watcher(), "pc1", &params(Target::Vm(vm_id()))).unwrap_err();
    assert!(matches!(err, AzureError::Throttled { retry_after_secs: 12, .. }), "{err:?}");
    env.http.assert_done();
}

fn status_from(response: apc_core::ports::OutboundResponse) -> (apc_core::azure::CaptureStatus, AzureEnv) {
    let env = ready_env();
    env.http.expect(Method::Post, capture_url("pc1", Some("queryStatus")), response);
    let status = match env.az().query_status(&watcher(), "pc1").unwrap() {
        StatusOutcome::Known(status) => status,
        other => panic!("expected a status, got {other:?}"),
    };
    let req = env.http.request(1).unwrap();
    assert_arm_headers(&req, &sample_token(), false);
    assert!(req.body.is_empty());
    env.http.assert_done();
    (status, env)
}

#[test]
fn query_status_reads_every_sample() {
    let (s, _) = status_from(sample_file_response(
        &format!("{NW}PacketCaptureQueryStatus.running.rest-doc-2016-12-01.json"),
        200,
    ));
    assert_eq!(s.status, "Running");
    assert_eq!(s.stop_reason, None);
    assert!(s.errors.is_empty());
    assert_eq!(s.capture_start_time.as_deref(), Some("2016-12-06T17:20:01.5671279Z"));
    assert_eq!(s.capture_start(), Some(1_481_044_801));

    let (s, _) = status_from(sample_file_response(
        &format!("{NW}PacketCaptureQueryStatus.stopped-timeexceeded.rest-doc-2016-12-01.json"),
        200,
    ));
    assert_eq!((s.status.as_str(), s.stop_reason.as_deref()), ("Stopped", Some("TimeExceeded")));

    let (s, _) = status_from(sample_file_response(
        &format!("{NW}PacketCaptureQueryStatus.stopped-nonISO-date.rest-doc.json"),
        200,
    ));
    assert_eq!(s.status, "Stopped");
    assert_eq!(s.capture_start_time.as_deref(), Some("9/7/2016 12:35:24PM"));
    // The US-style date of the Network Watcher docs reads as 2016-09-07T12:35:24Z.
    assert_eq!(s.capture_start(), Some(1_473_251_724));

    let (s, _) = status_from(sample_response(&format!("{NW}PacketCaptureQueryStatus.2026-07-01.json"), 200));
    assert_eq!((s.status.as_str(), s.stop_reason.as_deref()), ("Stopped", Some("TimeExceeded")));

    // 202 carries the same fields and a Location (a broken one, in the sample) that is not followed.
    let accepted = sample_response(&format!("{NW}PacketCaptureQueryStatus.2026-07-01.json"), 202);
    assert!(accepted.header("location").is_some());
    let (s, env) = status_from(accepted);
    assert_eq!(s.status, "Stopped");
    assert_eq!(env.http.count(), 2);
}

#[test]
fn query_status_keeps_unknown_values_and_errors() {
    let body = r#"{"packetCaptureStatus":"Paused","packetCaptureError":["StorageFailed","SomethingNew",7],"captureStartTime":null}"#;
    let (s, _) = status_from(ScriptedHttp::json(200, body));
    assert_eq!(s.status, "Paused");
    assert_eq!(s.errors, vec!["StorageFailed", "SomethingNew", "7"]);
    assert_eq!(s.capture_start_time, None);
    assert_eq!(s.capture_start(), None);

    // A 202 without a body is "ask again later", never a guess.
    let env = ready_env();
    env.http.expect(
        Method::Post,
        capture_url("pc1", Some("queryStatus")),
        with_header(ScriptedHttp::empty(202), "Retry-After", "10"),
    );
    let err = env.az().query_status(&watcher(), "pc1").unwrap_err();
    assert_eq!(err.retry_after(), Some(10));
    assert!(matches!(err, AzureError::Transient { .. }));
}

#[test]
fn get_capture_reads_the_sample() {
    let env = ready_env();
    env.http.expect(
        Method::Get,
        capture_url("pc1", None),
        sample_response(&format!("{NW}PacketCaptureGet.2026-03-01.json"), 200),
    );
    let info = env.az().get_capture(&watcher(), "pc1").unwrap();
    assert_eq!(info.provisioning_state.as_deref(), Some("Updating"));
    assert_eq!(info.storage_path.as_deref(), Some("https://mytestaccountname.blob.core.windows.net/capture/pc1.cap"));
    assert_eq!(info.file_path.as_deref(), Some("D:\\capture\\pc1.cap"));
    env.http.assert_done();
}

#[test]
fn stop_and_delete_accept_their_sample_answers_without_following_location() {
    let stop = format!("{NW}PacketCaptureStop.2026-03-01.json");
    let delete = format!("{NW}PacketCaptureDelete.2026-03-01.json");
    let cases: Vec<(Method, Option<&str>, apc_core::ports::OutboundResponse)> = vec![
        (Method::Post, Some("stop"), sample_response(&stop, 200)),
        (Method::Post, Some("stop"), sample_response(&stop, 202)),
        (Method::Delete, None, sample_response(&delete, 202)),
        (Method::Delete, None, sample_response(&delete, 204)),
        (Method::Delete, None, ScriptedHttp::arm_error(404, "NotFound", "gone")),
    ];
    for (method, action, response) in cases {
        let env = ready_env();
        let status = response.status;
        env.http.expect(method, capture_url("pc1", action), response);
        let az = env.az();
        let result = if method == Method::Post {
            az.stop_capture(&watcher(), "pc1")
        } else {
            az.delete_capture(&watcher(), "pc1")
        };
        assert_eq!(result, Ok(()), "{method} {status}");
        assert_eq!(env.http.count(), 2, "{method} {status}: Location must not be followed");
        env.http.assert_done();
    }
    // Stopping a capture that is gone is reported.
    let env = ready_env();
    env.http.expect(
        Method::Post,
        capture_url("pc1", Some("stop")),
        ScriptedHttp::arm_error(404, "NotFound", "no such capture"),
    );
    let err = env.az().stop_capture(&watcher(), "pc1").unwrap_err();
    assert!(matches!(err, AzureError::NotFound { .. }));
}

// ---------------------------------------------------------------- ARM errors

fn get_capture_with(response: Result<apc_core::ports::OutboundResponse, TransportError>) -> AzureError {
    let env = ready_env();
    match response {
        Ok(r) => env.http.expect(Method::Get, capture_url("pc1", None), r),
        Err(e) => env.http.expect_error(Method::Get, capture_url("pc1", None), e),
    };
    let err = env.az().get_capture(&watcher(), "pc1").unwrap_err();
    env.http.assert_done();
    err
}

#[test]
fn arm_errors_are_sorted_by_what_to_do() {
    let throttled = get_capture_with(Ok(with_header(
        ScriptedHttp::arm_error(429, "TooManyRequests", "slow down"),
        "Retry-After",
        "17",
    )));
    assert_eq!(
        throttled,
        AzureError::Throttled { retry_after_secs: 17, code: "TooManyRequests".into(), message: "slow down".into() }
    );
    assert!(throttled.is_retryable());
    assert_eq!(throttled.retry_after(), Some(17));

    let no_header = get_capture_with(Ok(ScriptedHttp::arm_error(429, "TooManyRequests", "")));
    assert_eq!(no_header.retry_after(), Some(30));
    let huge =
        get_capture_with(Ok(with_header(ScriptedHttp::arm_error(429, "TooManyRequests", ""), "retry-after", "999999")));
    assert_eq!(huge.retry_after(), Some(3600));

    let busy = get_capture_with(Ok(ScriptedHttp::arm_error(
        409,
        "RetryableErrorDueToAnotherOperation",
        "Operation is in progress",
    )));
    assert!(matches!(busy, AzureError::Throttled { retry_after_secs: 30, .. }));

    let e500 = get_capture_with(Ok(ScriptedHttp::arm_error(500, "InternalServerError", "oops")));
    assert!(matches!(e500, AzureError::Transient { retry_after_secs: None, .. }));
    let e503 =
        get_capture_with(Ok(with_header(ScriptedHttp::json(503, "<html>unavailable</html>"), "Retry-After", "5")));
    assert_eq!(e503, AzureError::Transient { detail: "ARM 503 HTTP503: ".into(), retry_after_secs: Some(5) });
    let timeout = get_capture_with(Err(TransportError::Timeout));
    assert!(matches!(timeout, AzureError::Transient { .. }) && timeout.is_retryable());
    let broken = get_capture_with(Err(TransportError::Connection("reset".into())));
    assert!(broken.is_retryable());

    let forbidden = get_capture_with(Ok(ScriptedHttp::arm_error(
        403,
        "AuthorizationFailed",
        "The client 'x' with object id 'y' does not have authorization to perform action 'Microsoft.Network/networkWatchers/packetCaptures/read' over scope '/subscriptions/z' or the scope is invalid.",
    )));
    match &forbidden {
        AzureError::Permanent { status: 403, code, message } => {
            assert_eq!(code, "AuthorizationFailed");
            assert!(message.starts_with(
                "the service principal lacks the role action Microsoft.Network/networkWatchers/packetCaptures/read"
            ));
        }
        other => panic!("{other:?}"),
    }
    assert!(!forbidden.is_retryable());
    assert!(forbidden.summary().starts_with("ARM 403 AuthorizationFailed: "));

    let missing = get_capture_with(Ok(ScriptedHttp::arm_error(404, "ResourceNotFound", "no capture")));
    assert_eq!(missing, AzureError::NotFound { code: "ResourceNotFound".into(), message: "no capture".into() });

    let bad = get_capture_with(Ok(ScriptedHttp::arm_error(400, "InvalidRequestFormat", &"x\n".repeat(2000))));
    let summary = bad.summary();
    assert!(summary.starts_with("ARM 400 InvalidRequestFormat: x x"));
    assert!(!summary.contains('\n') && summary.chars().count() < 700, "{}", summary.len());

    let unreadable = get_capture_with(Ok(ScriptedHttp::json(200, "not json")));
    assert!(matches!(unreadable, AzureError::Transient { .. }));
}

#[test]
fn a_401_refreshes_the_token_once_and_retries() {
    let env = ready_env();
    env.http.expect(
        Method::Get,
        capture_url("pc1", None),
        ScriptedHttp::arm_error(401, "ExpiredAuthenticationToken", "expired"),
    );
    env.http.expect(
        Method::Post,
        token_url(LOGIN, TENANT),
        ScriptedHttp::json(200, r#"{"token_type":"Bearer","expires_in":3599,"access_token":"fresh"}"#),
    );
    env.http.expect(
        Method::Get,
        capture_url("pc1", None),
        sample_response(&format!("{NW}PacketCaptureGet.2026-03-01.json"), 200),
    );
    let az = env.az();
    az.get_capture(&watcher(), "pc1").unwrap();
    assert_eq!(env.token_requests(), 2);
    assert_eq!(az.calls(), 4);
    assert_eq!(env.http.request(3).unwrap().header("authorization"), Some("Bearer fresh"));
    env.http.assert_done();

    // A second 401 is not retried again.
    let env = ready_env();
    env.http.route_always(Method::Get, ARM, ScriptedHttp::arm_error(401, "InvalidAuthenticationToken", "no"));
    env.http.route(Method::Post, LOGIN, sample_file_response(TOKEN_OK, 200));
    let err = env.az().get_capture(&watcher(), "pc1").unwrap_err();
    assert!(matches!(err, AzureError::Permanent { status: 401, .. }));
    assert_eq!(env.token_requests(), 2);
    assert_eq!(env.http.count(), 4);
}

#[test]
fn denied_hosts_name_the_variable() {
    let env = ready_env();
    env.http.expect_error(Method::Get, capture_url("pc1", None), TransportError::Denied("management.azure.com".into()));
    let err = env.az().get_capture(&watcher(), "pc1").unwrap_err();
    assert!(matches!(err, AzureError::Config { variable: "azure_arm_endpoint", .. }), "{err:?}");
    assert!(!err.is_retryable());

    let env = new_env();
    env.http.expect_error(
        Method::Post,
        token_url(LOGIN, TENANT),
        TransportError::Denied("login.microsoftonline.com".into()),
    );
    let err = env.az().token().unwrap_err();
    assert_eq!(config_variable(&err), "azure_authority_host");
}

#[test]
fn unscripted_calls_fail_clearly_and_are_recorded() {
    let env = new_env();
    let err = env.az().token().unwrap_err();
    assert!(matches!(&err, AzureError::Transient { detail, .. } if detail.contains("unscripted POST")), "{err:?}");
    assert_eq!(env.http.unscripted(), vec![format!("POST {}", token_url(LOGIN, TENANT))]);
}
