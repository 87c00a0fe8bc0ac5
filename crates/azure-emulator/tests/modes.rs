//! The switches that bring the emulator closer to real ARM (ArmModes), over real HTTP.

mod common;

use std::time::Duration;

use azure_emulator::{
    AsyncBody, Emulator, EmulatorConfig, ExistingName, Fault, FaultKind, LroOutcome, OsType, RetryAfterStyle, VmssSpec,
    routes,
};
use common::*;
use serde_json::{Value, json};

const NET_API: &str = "2025-07-01";
const COMPUTE_API: &str = "2025-04-01";

fn vmss_id(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/{name}")
}

fn with_vmss() -> Emulator {
    let emu = seeded();
    emu.add_vmss(VmssSpec::new(&vmss_id("ss1"), "westus", OsType::Linux, 3)).unwrap();
    emu.add_vmss(VmssSpec::new(&vmss_id("ss2"), "westus", OsType::Windows, 1).with_extension(false)).unwrap();
    emu
}

fn vmss_body(target: &str, scope: Value) -> Value {
    let mut b = capture_body(target, 60);
    b["properties"]["targetType"] = json!("AzureVMSS");
    b["properties"]["scope"] = scope;
    b
}

/// GET of a URL the emulator handed out (absolute, on the emulator).
fn follow(emu: &Emulator, tok: &str, url: &str) -> Answer {
    let path = url.strip_prefix(&emu.base_url()).expect("on the emulator");
    send(emu, "GET", path, &[("Authorization", &format!("Bearer {tok}"))], b"").unwrap()
}

#[test]
fn scale_set_and_instance_gets_have_arm_shapes() {
    let emu = with_vmss();
    let tok = token(&emu);
    let a = arm(&emu, &tok, "GET", &vmss_id("ss1"), COMPUTE_API, None).unwrap();
    assert_eq!(a.status, 200);
    let v = a.json();
    assert_eq!(v["type"], "Microsoft.Compute/virtualMachineScaleSets");
    assert_eq!(v["location"], "westus");
    assert_eq!(v["sku"]["capacity"], 3);
    let profile = &v["properties"]["virtualMachineProfile"];
    assert_eq!(profile["storageProfile"]["osDisk"]["osType"], "Linux");
    assert!(profile["osProfile"]["linuxConfiguration"].is_object());
    let ext = &profile["extensionProfile"]["extensions"][0]["properties"];
    assert_eq!(
        (ext["publisher"].as_str(), ext["type"].as_str()),
        (Some("Microsoft.Azure.NetworkWatcher"), Some("NetworkWatcherAgentLinux"))
    );
    let bare = arm(&emu, &tok, "GET", &vmss_id("ss2"), COMPUTE_API, None).unwrap().json();
    assert_eq!(bare["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"], json!([]));
    assert_eq!(bare["properties"]["virtualMachineProfile"]["storageProfile"]["osDisk"]["osType"], "Windows");

    let inst = arm(&emu, &tok, "GET", &format!("{}/virtualMachines/2", vmss_id("ss1")), COMPUTE_API, None).unwrap();
    assert_eq!(inst.status, 200);
    let i = inst.json();
    assert_eq!(i["name"], "ss1_2");
    assert_eq!(i["instanceId"], "2");
    assert_eq!(i["type"], "Microsoft.Compute/virtualMachineScaleSets/virtualMachines");
    assert_eq!(i["properties"]["osProfile"]["computerName"], "ss1000002");
    assert!(i["properties"].get("instanceView").is_none(), "only with $expand=instanceView");
    assert_eq!(i["resources"][0]["properties"]["type"], "NetworkWatcherAgentLinux");

    let tokh = format!("Bearer {tok}");
    let path = format!("{}/virtualMachines/0?api-version={COMPUTE_API}&$expand=instanceView", vmss_id("ss1"));
    let view = send(&emu, "GET", &path, &[("Authorization", &tokh)], b"").unwrap().json();
    let iv = &view["properties"]["instanceView"];
    assert_eq!(iv["statuses"][1]["code"], "PowerState/running");
    assert_eq!(iv["computerName"], "ss1000000");
    assert!(iv["vmAgent"]["vmAgentVersion"].is_string());

    let ghost = arm(&emu, &tok, "GET", &format!("{}/virtualMachines/9", vmss_id("ss1")), COMPUTE_API, None).unwrap();
    assert_eq!((ghost.status, ghost.json()["error"]["code"].as_str()), (404, Some("ResourceNotFound")));
    let missing = arm(&emu, &tok, "GET", &vmss_id("nope"), COMPUTE_API, None).unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(emu.calls(routes::VMSS_GET), 3);
    assert_eq!(emu.calls(routes::VMSS_VM_GET), 2 + 1);
}

#[test]
fn scale_set_captures_check_scope_against_the_seeded_instances() {
    let emu = with_vmss();
    let tok = token(&emu);
    let put = |name: &str, body: &Value| {
        let a = arm(&emu, &tok, "PUT", &capture_path(name), NET_API, Some(body)).unwrap();
        let code =
            if a.status >= 400 { a.json()["error"]["code"].as_str().unwrap_or("").to_string() } else { String::new() };
        (a.status, code)
    };
    assert_eq!(put("all", &vmss_body(&vmss_id("ss1"), json!({"include": [], "exclude": []}))).0, 201);
    assert_eq!(put("one", &vmss_body(&vmss_id("ss1"), json!({"include": ["1"]}))).0, 201);
    assert_eq!(put("byname", &vmss_body(&vmss_id("ss1"), json!({"include": ["ss1_2"], "exclude": ["0"]}))).0, 201);
    assert_eq!(
        put("ghost", &vmss_body(&vmss_id("ss1"), json!({"include": ["7"]}))),
        (400, "InvalidPacketCaptureScope".into())
    );
    assert_eq!(
        put("both", &vmss_body(&vmss_id("ss1"), json!({"include": ["1"], "exclude": ["1"]}))),
        (400, "InvalidPacketCaptureScope".into())
    );
    assert_eq!(
        put("shape", &vmss_body(&vmss_id("ss1"), json!({"include": "1"}))),
        (400, "InvalidRequestFormat".into())
    );
    // A VM target takes no instance scope; a scale set needs targetType AzureVMSS.
    let mut vm_scoped = capture_body(&vm_id("vm1"), 60);
    vm_scoped["properties"]["scope"] = json!({"include": ["0"]});
    assert_eq!(put("vmscope", &vm_scoped), (400, "InvalidPacketCaptureScope".into()));
    assert_eq!(put("wrongtype", &capture_body(&vmss_id("ss1"), 60)).0, 400);
    assert_eq!(
        put("noagent", &vmss_body(&vmss_id("ss2"), json!({}))),
        (400, "NetworkWatcherExtensionNotInstalled".into())
    );
    let path =
        emu.captures().into_iter().find(|c| c.name == "one").unwrap().properties["storageLocation"]["storagePath"]
            .clone();
    assert!(path.as_str().unwrap().contains("/virtualmachinescalesets/ss1/"), "{path}");
    assert_eq!(emu.captures().len(), 3);
}

#[test]
fn async_actions_answer_202_and_operations_have_state() {
    let emu = seeded();
    let tok = token(&emu);
    let p = capture_path("pc");
    assert_eq!(arm(&emu, &tok, "PUT", &p, NET_API, Some(&capture_body(&vm_id("vm1"), 600))).unwrap().status, 201);
    emu.advance_clock(Duration::from_secs(10));
    // Default: synchronous.
    assert_eq!(arm(&emu, &tok, "POST", &format!("{p}/queryStatus"), NET_API, None).unwrap().status, 200);

    emu.set_async_actions(true);
    emu.set_lro(2, 0, LroOutcome::Succeeded);
    let q = arm(&emu, &tok, "POST", &format!("{p}/queryStatus"), NET_API, None).unwrap();
    assert_eq!(q.status, 202);
    assert_eq!(q.json()["packetCaptureStatus"], "Running");
    let op = q.header("Azure-AsyncOperation").unwrap().to_string();
    let loc = q.header("Location").unwrap().to_string();
    assert!(op.contains("/operations/") && loc.contains("/operationResults/"), "{op} {loc}");
    assert!(q.header("Retry-After").is_some());
    // Two polls in progress (one on each URL), then done on both.
    assert_eq!(follow(&emu, &tok, &op).json()["status"], "InProgress");
    let pending = follow(&emu, &tok, &loc);
    assert_eq!(pending.status, 202);
    assert_eq!(pending.header("Location"), Some(loc.as_str()));
    let done = follow(&emu, &tok, &op).json();
    assert_eq!(done["status"], "Succeeded");
    assert!(done["endTime"].is_string());
    let result = follow(&emu, &tok, &loc);
    assert_eq!(result.status, 200);
    assert_eq!(result.json()["packetCaptureStatus"], "Running");

    // Seconds instead of polls, and a stop that fails.
    emu.set_lro(0, 30, LroOutcome::Failed { code: "InternalServerError".into(), message: "boom".into() });
    let s = arm(&emu, &tok, "POST", &format!("{p}/stop"), NET_API, None).unwrap();
    assert_eq!(s.status, 202);
    let op = s.header("Azure-AsyncOperation").unwrap().to_string();
    let loc = s.header("Location").unwrap().to_string();
    assert_eq!(follow(&emu, &tok, &op).json()["status"], "InProgress");
    assert_eq!(follow(&emu, &tok, &loc).status, 202);
    emu.advance_clock(Duration::from_secs(30));
    let failed = follow(&emu, &tok, &op).json();
    assert_eq!(
        (failed["status"].as_str(), failed["error"]["code"].as_str()),
        (Some("Failed"), Some("InternalServerError"))
    );
    let r = follow(&emu, &tok, &loc);
    assert_eq!((r.status, r.json()["error"]["message"].as_str()), (500, Some("boom")));

    // DELETE: 202 with both headers, then 204 once gone.
    emu.set_lro(1, 0, LroOutcome::Succeeded);
    let tok = token(&emu);
    let d = arm(&emu, &tok, "DELETE", &p, NET_API, None).unwrap();
    assert_eq!(d.status, 202);
    let (op, loc) = (d.header("Azure-AsyncOperation").unwrap().to_string(), d.header("Location").unwrap().to_string());
    assert_eq!(follow(&emu, &tok, &loc).status, 202);
    assert_eq!(follow(&emu, &tok, &op).json()["status"], "Succeeded");
    assert_eq!(follow(&emu, &tok, &loc).status, 204);
    assert_eq!(arm(&emu, &tok, "DELETE", &p, NET_API, None).unwrap().status, 204);
    let unknown = follow(
        &emu,
        &tok,
        &format!(
            "{}/subscriptions/{SUB}/providers/Microsoft.Network/locations/westus/operations/nope?api-version={NET_API}",
            emu.base_url()
        ),
    );
    assert_eq!(unknown.status, 404);
}

#[test]
fn async_query_status_with_an_empty_body_answers_only_through_location() {
    let emu = seeded();
    let tok = token(&emu);
    let p = capture_path("quiet");
    assert_eq!(arm(&emu, &tok, "PUT", &p, NET_API, Some(&capture_body(&vm_id("vm1"), 60))).unwrap().status, 201);
    emu.advance_clock(Duration::from_secs(10));
    emu.set_async_actions(true);
    assert_eq!(emu.modes().async_body, AsyncBody::Status, "the historical answer stays the default");
    emu.set_async_body(AsyncBody::Empty);
    emu.update_modes(|m| m.lro_retry_after_secs = 7);

    // Finished at once: 202 without a body, the status only from the Location GET.
    emu.set_lro(0, 0, LroOutcome::Succeeded);
    let q = arm(&emu, &tok, "POST", &format!("{p}/queryStatus"), NET_API, None).unwrap();
    assert_eq!(q.status, 202);
    assert!(q.body.is_empty(), "{:?}", String::from_utf8_lossy(&q.body));
    assert_eq!(q.header("Retry-After"), Some("7"));
    let loc = q.header("Location").unwrap().to_string();
    let op = q.header("Azure-AsyncOperation").unwrap().to_string();
    assert!(loc.contains("/operationResults/") && op.contains("/operations/"), "{loc} {op}");
    let result = follow(&emu, &tok, &loc);
    assert_eq!(result.status, 200);
    assert_eq!(result.json()["packetCaptureStatus"], "Running");
    // The operation URL says only that it is done.
    let status = follow(&emu, &tok, &op).json();
    assert_eq!(status["status"], "Succeeded");
    assert!(status.get("packetCaptureStatus").is_none(), "{status}");

    // Still running for 30 s: the Location answers an empty 202 until then, and the result is
    // the capture's status when the operation ends (here past its time limit).
    emu.set_lro(0, 30, LroOutcome::Succeeded);
    let q = arm(&emu, &tok, "POST", &format!("{p}/queryStatus"), NET_API, None).unwrap();
    assert!(q.status == 202 && q.body.is_empty());
    let loc = q.header("Location").unwrap().to_string();
    let pending = follow(&emu, &tok, &loc);
    assert_eq!((pending.status, pending.body.is_empty()), (202, true));
    assert_eq!(pending.header("Location"), Some(loc.as_str()));
    assert_eq!(pending.header("Retry-After"), Some("7"));
    emu.advance_clock(Duration::from_secs(60));
    let done = follow(&emu, &tok, &loc);
    assert_eq!(done.status, 200);
    let v = done.json();
    assert_eq!((v["packetCaptureStatus"].as_str(), v["stopReason"].as_str()), (Some("Stopped"), Some("TimeExceeded")));

    // A stop is an empty 202 in both styles; the body style does not touch synchronous answers.
    let s = arm(&emu, &tok, "POST", &format!("{p}/stop"), NET_API, None).unwrap();
    assert_eq!((s.status, s.body.is_empty()), (202, true));
    emu.set_async_actions(false);
    let sync = arm(&emu, &tok, "POST", &format!("{p}/queryStatus"), NET_API, None).unwrap();
    assert_eq!((sync.status, sync.json()["packetCaptureStatus"].as_str()), (200, Some("Stopped")));

    // Over the control API.
    let set = send(&emu, "POST", "/_emulator/modes", &[], br#"{"async_body":"status"}"#).unwrap();
    assert_eq!((set.status, set.json()["async_body"].as_str()), (200, Some("status")));
    assert_eq!(emu.modes().async_body, AsyncBody::Status);
    assert_eq!(send(&emu, "POST", "/_emulator/modes", &[], br#"{"async_body":"nope"}"#).unwrap().status, 400);
}

#[test]
fn provisioning_goes_through_updating_and_error_is_consistent() {
    let emu = seeded();
    let tok = token(&emu);
    emu.set_updating(2, 0);
    let p = capture_path("slow");
    let put = arm(&emu, &tok, "PUT", &p, NET_API, Some(&capture_body(&vm_id("vm1"), 60))).unwrap();
    assert_eq!(put.json()["properties"]["provisioningState"], "Updating");
    let op = put.header("Azure-AsyncOperation").unwrap().to_string();
    let get = || arm(&emu, &tok, "GET", &p, NET_API, None).unwrap().json()["properties"]["provisioningState"].clone();
    assert_eq!(get(), "Updating");
    assert_eq!(follow(&emu, &tok, &op).json()["status"], "InProgress");
    assert_eq!(get(), "Succeeded");
    assert_eq!(follow(&emu, &tok, &op).json()["status"], "Succeeded");

    // By seconds.
    emu.set_updating(0, 20);
    let p2 = capture_path("slow2");
    arm(&emu, &tok, "PUT", &p2, NET_API, Some(&capture_body(&vm_id("vm1"), 60))).unwrap();
    let state =
        |p: &str| arm(&emu, &tok, "GET", p, NET_API, None).unwrap().json()["properties"]["provisioningState"].clone();
    assert_eq!(state(&p2), "Updating");
    emu.advance_clock(Duration::from_secs(20));
    assert_eq!(state(&p2), "Succeeded");

    // A capture in Error: queryStatus, GET and list agree.
    emu.fail_capture("slow2");
    let qs = arm(&emu, &tok, "POST", &format!("{p2}/queryStatus"), NET_API, None).unwrap().json();
    assert_eq!(qs["packetCaptureStatus"], "Error");
    assert_eq!(state(&p2), "Failed");
    let list =
        arm(&emu, &tok, "GET", &format!("{}/packetCaptures", watcher_path("NetworkWatcher_westus")), NET_API, None)
            .unwrap()
            .json();
    let item = list["value"].as_array().unwrap().iter().find(|c| c["name"] == "slow2").unwrap().clone();
    assert_eq!(item["properties"]["provisioningState"], "Failed");
    assert_eq!(state(&p), "Succeeded");
}

#[test]
fn existing_name_modes() {
    let emu = seeded();
    let tok = token(&emu);
    let p = capture_path("dup");
    let body = capture_body(&vm_id("vm1"), 60);
    let mut other = body.clone();
    other["properties"]["timeLimitInSeconds"] = json!(61);
    assert_eq!(arm(&emu, &tok, "PUT", &p, NET_API, Some(&body)).unwrap().status, 201);
    emu.set_existing_name(ExistingName::Idempotent);
    let again = arm(&emu, &tok, "PUT", &p, NET_API, Some(&other)).unwrap();
    assert_eq!(again.status, 201);
    assert_eq!(again.json()["properties"]["timeLimitInSeconds"], 60, "the existing capture is returned");
    emu.set_existing_name(ExistingName::Conflict);
    let same = arm(&emu, &tok, "PUT", &p, NET_API, Some(&body)).unwrap();
    assert_eq!((same.status, same.json()["error"]["code"].as_str()), (409, Some("PacketCaptureAlreadyExists")));
    assert_eq!(emu.captures().len(), 1);
}

#[test]
fn api_versions_are_the_published_ones() {
    let emu = seeded();
    let tok = token(&emu);
    for v in ["2016-09-01", "2024-10-01", "2025-07-01", "2026-03-01"] {
        let a = arm(
            &emu,
            &tok,
            "GET",
            &format!("/subscriptions/{SUB}/providers/Microsoft.Network/networkWatchers"),
            v,
            None,
        )
        .unwrap();
        assert_eq!(a.status, 200, "{v}");
    }
    let a = arm(&emu, &tok, "GET", &capture_path("x"), "2025-08-01", None).unwrap();
    assert_eq!(a.status, 400);
    let e = a.json();
    assert_eq!(e["error"]["code"], "NoRegisteredProviderFound");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("No registered resource provider found for location 'eastus' and API version '2025-08-01' for type 'networkWatchers/packetCaptures'. The supported api-versions are '2016-09-01, "), "{msg}");
    assert!(msg.contains("2025-07-01, 2025-09-01"), "{msg}");
    let bad = arm(&emu, &tok, "GET", &vm_id("vm1"), "latest", None).unwrap().json();
    assert_eq!(bad["error"]["code"], "InvalidApiVersionParameter");
    assert!(bad["error"]["message"].as_str().unwrap().contains("'2015-06-15,"));
    assert_eq!(arm(&emu, &tok, "GET", &vm_id("vm1"), "2026-04-01", None).unwrap().status, 200);
    assert_eq!(
        arm(&emu, &tok, "GET", &vm_id("vm1"), "2025-07-01", None).unwrap().status,
        400,
        "a Network version is not a Compute one"
    );
}

#[test]
fn authorization_and_scope_errors() {
    let emu = seeded();
    let tok = token(&emu);
    emu.deny_action("Microsoft.Network/networkWatchers/packetCaptures/write", true);
    let a = arm(&emu, &tok, "PUT", &capture_path("pc"), NET_API, Some(&capture_body(&vm_id("vm1"), 60))).unwrap();
    assert_eq!(a.status, 403);
    let m = a.json()["error"]["message"].as_str().unwrap().to_string();
    assert_eq!(a.json()["error"]["code"], "AuthorizationFailed");
    assert_eq!(
        m,
        format!(
            "The client '{}' with object id '{}' does not have authorization to perform action 'Microsoft.Network/networkWatchers/packetCaptures/write' over scope '{}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
            emu.config().client_id,
            emu.modes().principal_object_id,
            capture_path("pc")
        )
    );
    // Other actions pass; allowing again lifts the denial.
    assert_eq!(arm(&emu, &tok, "GET", &vm_id("vm1"), COMPUTE_API, None).unwrap().status, 200);
    emu.deny_action("Microsoft.Network/networkWatchers/packetCaptures/write", false);
    assert_eq!(
        arm(&emu, &tok, "PUT", &capture_path("pc"), NET_API, Some(&capture_body(&vm_id("vm1"), 60))).unwrap().status,
        201
    );

    // Scope errors: on by default, as ARM answers; switched off, a plain ResourceNotFound.
    let other_sub = vm_id("vm1").replace(SUB, "99999999-0000-0000-0000-000000000000");
    let other_rg = vm_id("vm1").replace("rg1", "rg-none");
    emu.set_scope_errors(false);
    assert_eq!(
        arm(&emu, &tok, "GET", &other_rg, COMPUTE_API, None).unwrap().json()["error"]["code"],
        "ResourceNotFound"
    );
    emu.set_scope_errors(true);
    assert!(EmulatorConfig::default().modes.scope_errors);
    let s = arm(&emu, &tok, "GET", &other_sub, COMPUTE_API, None).unwrap();
    assert_eq!((s.status, s.json()["error"]["code"].as_str()), (404, Some("SubscriptionNotFound")));
    let r = arm(&emu, &tok, "GET", &other_rg, COMPUTE_API, None).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("ResourceGroupNotFound")));
    assert_eq!(r.json()["error"]["message"], "Resource group 'rg-none' could not be found.");
    assert_eq!(
        arm(&emu, &tok, "GET", &vm_id("ghost"), COMPUTE_API, None).unwrap().json()["error"]["code"],
        "ResourceNotFound"
    );
}

#[test]
fn request_ids_and_retry_after_styles() {
    let emu = seeded();
    let tok = token(&emu);
    let auth = format!("Bearer {tok}");
    let path = format!("{}?api-version={COMPUTE_API}", vm_id("vm1"));
    let a = send(
        &emu,
        "GET",
        &path,
        &[("Authorization", &auth), ("x-ms-client-request-id", "cli-1"), ("x-ms-correlation-request-id", "corr-1")],
        b"",
    )
    .unwrap();
    assert_eq!(a.header("x-ms-client-request-id"), Some("cli-1"));
    assert_eq!(a.header("x-ms-correlation-request-id"), Some("corr-1"));
    let rid = a.header("x-ms-request-id").unwrap().to_string();
    assert_eq!(rid.len(), 36);
    let b = send(&emu, "GET", &path, &[("Authorization", &auth)], b"").unwrap();
    assert!(b.header("x-ms-correlation-request-id").is_some());
    assert_ne!(b.header("x-ms-request-id").unwrap(), rid);
    assert!(b.header("x-ms-client-request-id").is_none());
    // Errors carry them too.
    assert!(send(&emu, "GET", &path, &[], b"").unwrap().header("x-ms-request-id").is_some());

    emu.set_clock(time::macros::datetime!(2025-01-01 00:00:00 UTC));
    let tok = token(&emu);
    let throttled = |emu: &Emulator| {
        emu.add_fault(Fault::count(routes::VM_GET, FaultKind::Status(429), 1).retry_after(7));
        let a = arm(emu, &tok, "GET", &vm_id("vm1"), COMPUTE_API, None).unwrap();
        assert_eq!(a.status, 429);
        assert!(a.header("x-ms-request-id").is_some());
        a.header("Retry-After").map(str::to_string)
    };
    assert_eq!(throttled(&emu).as_deref(), Some("7"));
    emu.set_retry_after_style(RetryAfterStyle::HttpDate);
    assert_eq!(throttled(&emu).as_deref(), Some("Wed, 01 Jan 2025 00:00:07 GMT"));
    emu.set_retry_after_style(RetryAfterStyle::Absent);
    assert_eq!(throttled(&emu), None);
}

#[test]
fn modes_and_scale_sets_over_the_control_api() {
    let emu = Emulator::start("127.0.0.1:0").unwrap();
    let set = |body: &str| send(&emu, "POST", "/_emulator/modes", &[], body.as_bytes()).unwrap();
    let a = set(
        r#"{"async_actions":true,"lro_polls":3,"existing_name":"conflict","retry_after":"http_date","denied_actions":["Microsoft.Compute/virtualMachines/read"],"lro_outcome":{"failed":{"code":"X","message":"y"}}}"#,
    );
    assert_eq!(a.status, 200);
    let m = emu.modes();
    assert!(m.async_actions);
    assert_eq!(m.lro_polls, 3);
    assert_eq!(m.existing_name, ExistingName::Conflict);
    assert_eq!(m.retry_after, RetryAfterStyle::HttpDate);
    assert_eq!(m.lro_outcome, LroOutcome::Failed { code: "X".into(), message: "y".into() });
    assert_eq!(m.updating_reads, 0, "fields not given keep their value");
    assert_eq!(set(r#"{"no_such_mode":1}"#).status, 400);
    let got = send(&emu, "GET", "/_emulator/modes", &[], b"").unwrap().json();
    assert_eq!(got["lro_polls"], 3);

    let spec = format!(
        r#"{{"id":"{}","location":"westus","osType":"Linux","networkWatcherExtension":true,"instanceIds":["0","5"]}}"#,
        vmss_id("cs")
    );
    assert_eq!(send(&emu, "POST", "/_emulator/vmss", &[], spec.as_bytes()).unwrap().status, 200);
    set(r#"{"denied_actions":[]}"#);
    let tok = token(&emu);
    assert_eq!(
        arm(&emu, &tok, "GET", &format!("{}/virtualMachines/5", vmss_id("cs")), COMPUTE_API, None).unwrap().status,
        200
    );
    let bad = format!(
        r#"{{"id":"{}","location":"westus","osType":"Linux","networkWatcherExtension":true,"instanceIds":["a"]}}"#,
        vmss_id("cs")
    );
    assert_eq!(send(&emu, "POST", "/_emulator/vmss", &[], bad.as_bytes()).unwrap().status, 400);
}

#[test]
fn openid_discovery_and_public_base() {
    let emu = seeded();
    let tenant = emu.config().tenant_id;
    let doc = send(&emu, "GET", &format!("/{tenant}/v2.0/.well-known/openid-configuration"), &[], b"").unwrap();
    assert_eq!(doc.status, 200);
    assert_eq!(doc.json()["token_endpoint"], format!("{}/{tenant}/oauth2/v2.0/token", emu.base_url()));
    assert_eq!(send(&emu, "GET", "/other/v2.0/.well-known/openid-configuration", &[], b"").unwrap().status, 400);

    emu.set_public_base(Some("https://127.0.0.1:9443/"));
    let doc = send(&emu, "GET", &format!("/{tenant}/v2.0/.well-known/openid-configuration"), &[], b"").unwrap().json();
    assert_eq!(doc["issuer"], format!("https://127.0.0.1:9443/{tenant}/v2.0"));
    let tok = token(&emu);
    let put = arm(&emu, &tok, "PUT", &capture_path("pb"), NET_API, Some(&capture_body(&vm_id("vm1"), 60))).unwrap();
    assert!(put.header("Azure-AsyncOperation").unwrap().starts_with("https://127.0.0.1:9443/subscriptions/"));
    let list = arm(
        &emu,
        &tok,
        "GET",
        &format!("/subscriptions/{SUB}/providers/Microsoft.Network/networkWatchers"),
        NET_API,
        None,
    )
    .unwrap()
    .json();
    assert!(list.get("nextLink").is_none(), "a public base is not a hostile one");
}
