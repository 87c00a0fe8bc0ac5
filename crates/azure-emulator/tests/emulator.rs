//! Drives the emulator over real HTTP on 127.0.0.1:0.

mod common;

use std::time::Duration;

use azure_emulator::{Emulator, Fault, FaultKind, routes};
use common::*;
use serde_json::json;

const NET_API: &str = "2025-07-01";

fn token_request(emu: &Emulator, tenant: &str, body: Vec<u8>) -> Answer {
    send(
        emu,
        "POST",
        &format!("/{tenant}/oauth2/v2.0/token"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &body,
    )
    .expect("answer")
}

#[test]
fn token_success_has_entra_shape() {
    let emu = Emulator::start("127.0.0.1:0").unwrap();
    let a = token_request(&emu, &emu.config().tenant_id, token_body(&emu));
    assert_eq!(a.status, 200);
    let v = a.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3599);
    assert_eq!(v["ext_expires_in"], 3599);
    assert!(v["access_token"].as_str().unwrap().len() > 20);
    // Public Azure's audiences are accepted too.
    let c = emu.config();
    for scope in ["https://management.azure.com/.default", "https://management.core.windows.net//.default"] {
        let body = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
            ("scope", scope),
        ]);
        assert_eq!(token_request(&emu, &c.tenant_id, body).status, 200, "{scope}");
    }
}

#[test]
fn token_errors_match_entra() {
    let emu = Emulator::start("127.0.0.1:0").unwrap();
    let c = emu.config();
    let real = sample("token/error.AADSTS7000215.invalid_client.http401.real.json");

    let unknown_tenant = token_request(&emu, "nope", token_body(&emu));
    assert_eq!(unknown_tenant.status, 400);
    assert_eq!(unknown_tenant.json()["error"], "invalid_tenant");
    assert_eq!(unknown_tenant.json()["error_codes"], json!([90002]));

    let wrong_client = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", "11111111-1111-1111-1111-111111111111"),
        ("client_secret", &c.client_secret),
        ("scope", "https://management.azure.com/.default"),
    ]);
    let a = token_request(&emu, &c.tenant_id, wrong_client);
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"], "unauthorized_client");
    assert_eq!(a.json()["error_codes"], json!([700016]));

    let wrong_secret = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &c.client_id),
        ("client_secret", "wrong"),
        ("scope", "https://management.azure.com/.default"),
    ]);
    let a = token_request(&emu, &c.tenant_id, wrong_secret);
    assert_eq!(a.status, 401);
    let v = a.json();
    assert_eq!(keys(&v), keys(&real), "same fields as the real AADSTS7000215 answer");
    assert_eq!(v["error"], "invalid_client");
    assert!(v["error_description"].as_str().unwrap().starts_with("AADSTS7000215: "));

    let bad_scope = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &c.client_id),
        ("client_secret", &c.client_secret),
        ("scope", "https://foo.microsoft.com/.default"),
    ]);
    let a = token_request(&emu, &c.tenant_id, bad_scope);
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"], "invalid_scope");
    assert_eq!(a.json()["error_codes"], json!([70011]));
}

#[test]
fn arm_requires_a_valid_unexpired_token_and_api_version() {
    let emu = seeded();
    let path = format!("{}?api-version=2025-04-01", vm_id("vm1"));
    let none = send(&emu, "GET", &path, &[], b"").unwrap();
    assert_eq!(none.status, 401);
    assert_eq!(none.json()["error"]["code"], "AuthenticationFailed");
    assert!(none.header("WWW-Authenticate").is_some());

    let forged = send(&emu, "GET", &path, &[("Authorization", "Bearer forged")], b"").unwrap();
    assert_eq!(forged.status, 401);
    assert_eq!(forged.json()["error"]["code"], "InvalidAuthenticationToken");

    let tok = token(&emu);
    assert_eq!(arm(&emu, &tok, "GET", &vm_id("vm1"), "2025-04-01", None).unwrap().status, 200);
    let missing = send(&emu, "GET", &vm_id("vm1"), &[("Authorization", &format!("Bearer {tok}"))], b"").unwrap();
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["error"]["code"], "MissingApiVersionParameter");
    // 2024-03-01 is a published Compute version; 2024-03-02 is not.
    assert_eq!(arm(&emu, &tok, "GET", &vm_id("vm1"), "2024-03-01", None).unwrap().status, 200);
    let unknown = arm(&emu, &tok, "GET", &vm_id("vm1"), "2024-03-02", None).unwrap();
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["error"]["code"], "NoRegisteredProviderFound");

    // Expiry by clock, then by revocation.
    emu.set_token_lifetime(60);
    let short = token(&emu);
    emu.advance_clock(Duration::from_secs(61));
    let expired = arm(&emu, &short, "GET", &vm_id("vm1"), "2025-04-01", None).unwrap();
    assert_eq!(expired.status, 401);
    assert_eq!(expired.json()["error"]["code"], "ExpiredAuthenticationToken");
    assert_eq!(arm(&emu, &tok, "GET", &vm_id("vm1"), "2025-04-01", None).unwrap().status, 200);
    emu.revoke_tokens();
    let revoked = arm(&emu, &tok, "GET", &vm_id("vm1"), "2025-04-01", None).unwrap();
    assert_eq!(revoked.json()["error"]["code"], "ExpiredAuthenticationToken");
}

#[test]
fn vm_get_and_watcher_list_have_arm_shapes() {
    let emu = seeded();
    let tok = token(&emu);
    // Keywords are case-insensitive, like ARM.
    let lower =
        vm_id("vm1").replace("resourceGroups", "resourcegroups").replace("Microsoft.Compute", "microsoft.compute");
    let vm = arm(&emu, &tok, "GET", &lower, "2025-04-01", None).unwrap();
    assert_eq!(vm.status, 200);
    let v = vm.json();
    let sample_vm = &sample("compute/VirtualMachineGet.2025-04-01.json")["responses"]["200"]["body"];
    for k in ["name", "id", "type", "location", "properties", "resources"] {
        assert!(sample_vm.get(k).is_some() && v.get(k).is_some(), "{k}");
    }
    assert_eq!(v["location"], "westus");
    assert_eq!(v["properties"]["storageProfile"]["osDisk"]["osType"], "Linux");
    assert_eq!(v["resources"][0]["properties"]["publisher"], "Microsoft.Azure.NetworkWatcher");
    assert_eq!(v["resources"][0]["properties"]["type"], "NetworkWatcherAgentLinux");

    let no_agent = arm(&emu, &tok, "GET", &vm_id("vm2"), "2025-04-01", None).unwrap().json();
    assert!(no_agent.get("resources").is_none());
    let windows = arm(&emu, &tok, "GET", &vm_id("vm3"), "2025-04-01", None).unwrap().json();
    assert_eq!(windows["resources"][0]["properties"]["type"], "NetworkWatcherAgentWindows");

    let missing = arm(&emu, &tok, "GET", &vm_id("ghost"), "2025-04-01", None).unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], "ResourceNotFound");

    let list = arm(
        &emu,
        &tok,
        "GET",
        &format!("/subscriptions/{SUB}/providers/Microsoft.Network/networkWatchers"),
        NET_API,
        None,
    )
    .unwrap();
    assert_eq!(list.status, 200);
    let l = list.json();
    let sample_list = sample("network-watcher/NetworkWatcherListAll.2026-07-01.json");
    let sample_item = &sample_list["responses"]["200"]["body"]["value"][0];
    assert_eq!(l["value"].as_array().unwrap().len(), 2);
    assert_eq!(keys(&l["value"][0]), keys(sample_item));
    let locations: Vec<&str> = l["value"].as_array().unwrap().iter().map(|w| w["location"].as_str().unwrap()).collect();
    assert!(locations.contains(&"eastus") && locations.contains(&"westus"));
}

#[test]
fn capture_lifecycle_follows_the_clock() {
    let emu = seeded();
    let tok = token(&emu);
    let path = capture_path("pc1");
    let put = arm(&emu, &tok, "PUT", &path, NET_API, Some(&capture_body(&vm_id("vm1"), 100))).unwrap();
    assert_eq!(put.status, 201);
    let async_url = put.header("Azure-AsyncOperation").unwrap().to_string();
    assert!(async_url.starts_with(&emu.base_url()), "{async_url}");
    assert!(put.header("Retry-After").is_some());
    let body = put.json();
    assert_eq!(body["properties"]["provisioningState"], "Updating");
    let storage_path = body["properties"]["storageLocation"]["storagePath"].as_str().unwrap();
    assert!(storage_path.starts_with(&format!(
        "https://pcstore.blob.core.windows.net/network-watcher-logs/subscriptions/{SUB}/resourcegroups/rg1/providers/microsoft.compute/virtualmachines/vm1/"
    )));
    assert!(storage_path.contains("/packetcapture_") && storage_path.ends_with(".cap"));

    let op_path = async_url.trim_start_matches(&emu.base_url()).to_string();
    let op = send(&emu, "GET", &op_path, &[("Authorization", &format!("Bearer {tok}"))], b"").unwrap();
    assert_eq!(op.json()["status"], "Succeeded");

    let get = arm(&emu, &tok, "GET", &path, NET_API, None).unwrap().json();
    assert_eq!(get["properties"]["provisioningState"], "Succeeded");

    let status = |emu: &Emulator| arm(emu, &tok, "POST", &format!("{path}/queryStatus"), NET_API, None).unwrap().json();
    let s = status(&emu);
    assert_eq!(s["packetCaptureStatus"], "NotStarted");
    let sample_status = sample("network-watcher/PacketCaptureQueryStatus.2026-07-01.json");
    emu.advance_clock(Duration::from_secs(5));
    let s = status(&emu);
    assert_eq!(s["packetCaptureStatus"], "Running");
    assert!(s.get("stopReason").is_none());
    emu.advance_clock(Duration::from_secs(100));
    let s = status(&emu);
    assert_eq!(keys(&s), keys(&sample_status["responses"]["200"]["body"]));
    assert_eq!(s["packetCaptureStatus"], "Stopped");
    assert_eq!(s["stopReason"], "TimeExceeded");
    assert_eq!(s["packetCaptureError"], json!([]));

    let list =
        arm(&emu, &tok, "GET", &format!("{}/packetCaptures", watcher_path("NetworkWatcher_westus")), NET_API, None)
            .unwrap()
            .json();
    assert_eq!(list["value"].as_array().unwrap().len(), 1);

    let del = arm(&emu, &tok, "DELETE", &path, NET_API, None).unwrap();
    assert_eq!(del.status, 202);
    assert!(del.header("Location").unwrap().starts_with(&emu.base_url()));
    assert_eq!(arm(&emu, &tok, "DELETE", &path, NET_API, None).unwrap().status, 204);
    assert_eq!(arm(&emu, &tok, "GET", &path, NET_API, None).unwrap().status, 404);
}

#[test]
fn stop_and_forced_error() {
    let emu = seeded();
    let tok = token(&emu);
    let p1 = capture_path("stopme");
    assert_eq!(arm(&emu, &tok, "PUT", &p1, NET_API, Some(&capture_body(&vm_id("vm1"), 600))).unwrap().status, 201);
    emu.advance_clock(Duration::from_secs(10));
    assert_eq!(arm(&emu, &tok, "POST", &format!("{p1}/stop"), NET_API, None).unwrap().status, 200);
    let s = arm(&emu, &tok, "POST", &format!("{p1}/queryStatus"), NET_API, None).unwrap().json();
    assert_eq!((s["packetCaptureStatus"].as_str(), s["stopReason"].as_str()), (Some("Stopped"), Some("Manual")));

    emu.fail_next_capture();
    let p2 = capture_path("failing");
    assert_eq!(arm(&emu, &tok, "PUT", &p2, NET_API, Some(&capture_body(&vm_id("vm1"), 600))).unwrap().status, 201);
    let s = arm(&emu, &tok, "POST", &format!("{p2}/queryStatus"), NET_API, None).unwrap().json();
    assert_eq!(s["packetCaptureStatus"], "Error");
    assert_eq!(s["packetCaptureError"], json!(["CaptureFailed"]));

    let p3 = capture_path("later");
    assert_eq!(arm(&emu, &tok, "PUT", &p3, NET_API, Some(&capture_body(&vm_id("vm1"), 600))).unwrap().status, 201);
    emu.fail_capture("LATER");
    let s = arm(&emu, &tok, "POST", &format!("{p3}/queryStatus"), NET_API, None).unwrap().json();
    assert_eq!(s["packetCaptureStatus"], "Error");
}

#[test]
fn a_hung_capture_runs_past_its_limit_until_stopped() {
    let emu = seeded();
    // Fresh tokens each call: the clock moves past a token's lifetime here.
    let status = |p: &str| {
        let tok = token(&emu);
        let s = arm(&emu, &tok, "POST", &format!("{p}/queryStatus"), NET_API, None).unwrap().json();
        (s["packetCaptureStatus"].as_str().map(str::to_string), s["stopReason"].as_str().map(str::to_string))
    };
    let put =
        |p: &str| arm(&emu, &token(&emu), "PUT", p, NET_API, Some(&capture_body(&vm_id("vm1"), 60))).unwrap().status;
    // By name (before it exists), and "the next one" whatever its name.
    emu.hang_capture("Stuck");
    let stuck = capture_path("stuck");
    assert_eq!(put(&stuck), 201);
    emu.hang_next_capture();
    let next = capture_path("next");
    assert_eq!(put(&next), 201);
    let normal = capture_path("normal");
    assert_eq!(put(&normal), 201);
    emu.advance_clock(Duration::from_secs(3600));
    assert_eq!(status(&stuck), (Some("Running".into()), None));
    assert_eq!(status(&next), (Some("Running".into()), None));
    assert_eq!(status(&normal), (Some("Stopped".into()), Some("TimeExceeded".into())));
    // Only a stop ends it.
    assert_eq!(arm(&emu, &token(&emu), "POST", &format!("{stuck}/stop"), NET_API, None).unwrap().status, 200);
    assert_eq!(status(&stuck), (Some("Stopped".into()), Some("Manual".into())));
    assert_eq!(status(&next), (Some("Running".into()), None));
}

#[test]
fn capture_put_validation_errors() {
    let emu = seeded();
    let tok = token(&emu);
    let put = |name: &str, body: serde_json::Value| {
        let a = arm(&emu, &tok, "PUT", &capture_path(name), NET_API, Some(&body)).unwrap();
        let code =
            if a.status >= 400 { a.json()["error"]["code"].as_str().unwrap_or("").to_string() } else { String::new() };
        (a.status, code)
    };
    let good = capture_body(&vm_id("vm1"), 60);
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut b = good.clone();
        f(&mut b);
        b
    };
    assert_eq!(put("bad%21name", good.clone()), (400, "InvalidResourceName".into()));
    assert_eq!(put(&"a".repeat(81), good.clone()), (400, "InvalidResourceName".into()));
    let (s, _) = put(
        "x1",
        with(&|b| {
            b["properties"].as_object_mut().unwrap().remove("target");
        }),
    );
    assert_eq!(s, 400);
    let (s, _) = put(
        "x2",
        with(&|b| {
            b["properties"].as_object_mut().unwrap().remove("storageLocation");
        }),
    );
    assert_eq!(s, 400);
    let (s, _) = put("x3", with(&|b| b["properties"]["storageLocation"] = json!({})));
    assert_eq!(s, 400);
    let (s, _) = put("x4", with(&|b| b["properties"]["timeLimitInSeconds"] = json!(18001)));
    assert_eq!(s, 400);
    let (s, _) = put("x5", with(&|b| b["properties"]["totalBytesPerSession"] = json!(4294967296u64)));
    assert_eq!(s, 400);
    let (s, _) = put("x6", with(&|b| b["properties"]["bytesToCapturePerPacket"] = json!(-1)));
    assert_eq!(s, 400);
    assert_eq!(put("x7", with(&|b| b["properties"]["filters"] = json!([{"protocol": "ICMP"}]))).0, 400);
    assert_eq!(put("x8", with(&|b| b["properties"]["target"] = json!(vm_id("ghost")))).0, 400);
    // vm3 is in eastus; the westus watcher cannot capture it.
    assert_eq!(
        put("x9", with(&|b| b["properties"]["target"] = json!(vm_id("vm3")))),
        (400, "NetworkWatcherAndTargetLocationMismatch".into())
    );
    assert_eq!(put("x10", with(&|b| b["properties"]["target"] = json!(vm_id("vm2")))).0, 400);
    let missing_watcher =
        arm(&emu, &tok, "PUT", &format!("{}/packetCaptures/x11", watcher_path("nw_none")), NET_API, Some(&good))
            .unwrap();
    assert_eq!(missing_watcher.status, 404);
    // A local file path alone is enough (no storageId).
    assert_eq!(
        put("x12", with(&|b| b["properties"]["storageLocation"] = json!({"filePath": "/var/captures/x12.cap"}))).0,
        201
    );
    assert_eq!(emu.captures().len(), 1, "no invalid PUT created anything");

    // Same name: same body is idempotent, another body conflicts.
    assert_eq!(put("dup", good.clone()).0, 201);
    assert_eq!(put("dup", good.clone()).0, 201);
    assert_eq!(
        put("dup", with(&|b| b["properties"]["timeLimitInSeconds"] = json!(61))),
        (409, "PacketCaptureAlreadyExists".into())
    );
}

#[test]
fn faults_by_count_then_success() {
    let emu = seeded();
    let tok = token(&emu);
    emu.add_fault(Fault::count(routes::VM_GET, FaultKind::Status(429), 1).retry_after(7));
    emu.add_fault(Fault::count(routes::VM_GET, FaultKind::Status(409), 1));
    let a = arm(&emu, &tok, "GET", &vm_id("vm1"), "2025-04-01", None).unwrap();
    assert_eq!(a.status, 429);
    assert_eq!(a.header("Retry-After"), Some("7"));
    let b = arm(&emu, &tok, "GET", &vm_id("vm1"), "2025-04-01", None).unwrap();
    assert_eq!(b.status, 409);
    assert_eq!(b.json()["error"]["code"], "RetryableErrorDueToAnotherOperation");
    assert_eq!(arm(&emu, &tok, "GET", &vm_id("vm1"), "2025-04-01", None).unwrap().status, 200);
    assert_eq!(emu.calls(routes::VM_GET), 3);

    emu.add_fault(Fault::count("*", FaultKind::Drop, 1));
    assert!(arm(&emu, &tok, "GET", &vm_id("vm1"), "2025-04-01", None).is_none());
    let last = emu.journal().pop().unwrap();
    assert_eq!((last.status, last.delivered), (None, false));

    // The PUT is applied, but the answer never arrives.
    emu.add_fault(Fault::count(routes::CAPTURE_PUT, FaultKind::LoseResponse, 1));
    let body = capture_body(&vm_id("vm1"), 60);
    assert!(arm(&emu, &tok, "PUT", &capture_path("lost"), NET_API, Some(&body)).is_none());
    assert_eq!(emu.captures().len(), 1);
    assert_eq!(arm(&emu, &tok, "PUT", &capture_path("lost"), NET_API, Some(&body)).unwrap().status, 201);

    emu.add_fault(Fault::count(routes::TOKEN, FaultKind::Status(503), 1));
    let t = token_request(&emu, &emu.config().tenant_id, token_body(&emu));
    assert_eq!(t.status, 503);
}

#[test]
fn probabilistic_faults_repeat_for_a_seed() {
    let outcomes = |seed: u64| {
        let emu = seeded();
        let tok = token(&emu);
        emu.set_fault_seed(seed);
        emu.add_fault(Fault::probability(routes::VM_GET, FaultKind::Status(500), 0.5));
        (0..24).map(|_| arm(&emu, &tok, "GET", &vm_id("vm1"), "2025-04-01", None).unwrap().status).collect::<Vec<u16>>()
    };
    let a = outcomes(42);
    assert_eq!(a, outcomes(42));
    assert!(a.contains(&500) && a.contains(&200), "{a:?}");
    assert_ne!(a, outcomes(43));
}

#[test]
fn journal_redacts_secrets() {
    let emu = seeded();
    let tok = token(&emu);
    arm(&emu, &tok, "GET", &vm_id("vm1"), "2025-04-01", None).unwrap();
    let journal = emu.journal();
    let text = serde_json::to_string(&journal).unwrap();
    assert!(!text.contains(&emu.config().client_secret));
    assert!(!text.contains(&tok));
    assert_eq!(journal[0].route, "token");
    assert!(journal[0].body.contains("client_secret=<redacted>"));
    assert!(journal[0].body.contains(&emu.config().client_id));
    assert_eq!(journal[1].route, "vm_get");
    assert_eq!(journal[1].status, Some(200));
    assert_eq!(journal[1].query, "api-version=2025-04-01");
    let auth = journal[1].headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization")).unwrap();
    assert_eq!(auth.1, "<redacted>");
    assert_eq!(emu.call_counts().get("token"), Some(&1));
}

#[test]
fn hostile_mode_points_elsewhere() {
    let emu = seeded();
    let tok = token(&emu);
    emu.set_hostile_base(Some("http://169.254.169.254"));
    let put = arm(&emu, &tok, "PUT", &capture_path("h1"), NET_API, Some(&capture_body(&vm_id("vm1"), 60))).unwrap();
    assert!(put.header("Azure-AsyncOperation").unwrap().starts_with("http://169.254.169.254/"));
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
    assert!(list["nextLink"].as_str().unwrap().starts_with("http://169.254.169.254/"));
}

#[test]
fn control_api_over_http_and_concurrency() {
    let emu = Emulator::start("127.0.0.1:0").unwrap();
    let demo = send(&emu, "POST", "/_emulator/demo", &[], b"").unwrap().json();
    let tok = token(&emu);
    let vm = demo["vm_id"].as_str().unwrap().to_string();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..5 {
                    assert_eq!(arm(&emu, &tok, "GET", &vm, "2025-04-01", None).unwrap().status, 200);
                }
            });
        }
    });
    assert_eq!(emu.calls(routes::VM_GET), 40);
    let before = emu.now();
    send(&emu, "POST", "/_emulator/clock/advance", &[], br#"{"seconds":30}"#).unwrap();
    assert_eq!((emu.now() - before).whole_seconds(), 30);
    let f = br#"{"route":"vm_get","kind":{"status":503},"trigger":{"count":1}}"#;
    assert_eq!(send(&emu, "POST", "/_emulator/faults", &[], f).unwrap().status, 200);
    assert_eq!(arm(&emu, &tok, "GET", &vm, "2025-04-01", None).unwrap().status, 503);
    let counts = send(&emu, "GET", "/_emulator/counts", &[], b"").unwrap().json();
    assert_eq!(counts["vm_get"], 41);
}

#[test]
fn secure_webhook_keys_and_tokens_over_http() {
    let emu = Emulator::start("127.0.0.1:0").unwrap();
    let tenant = azure_emulator::DEFAULT_TENANT_ID;
    let meta = send(&emu, "GET", &format!("/{tenant}/v2.0/.well-known/openid-configuration"), &[], b"").unwrap();
    let jwks_uri = meta.json()["jwks_uri"].as_str().unwrap().to_string();
    assert_eq!(jwks_uri, format!("{}/{tenant}/discovery/v2.0/keys", emu.base_url()));
    let jwks = send(&emu, "GET", jwks_uri.strip_prefix(&emu.base_url()).unwrap(), &[], b"").unwrap().json();
    let kids: Vec<String> =
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().into()).collect();
    assert_eq!(kids, emu.signing_kids());
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert_eq!(jwks["keys"][0]["e"], "AQAB");
    // Another tenant's keys are not served.
    assert_eq!(send(&emu, "GET", "/other-tenant/discovery/v2.0/keys", &[], b"").unwrap().status, 400);

    // A token through the control API is the one the typed method mints (same claims, same key).
    let ask = br#"{"audience":"api://x","role":"R"}"#;
    let t = send(&emu, "POST", "/_emulator/entra/token", &[], ask).unwrap().json();
    assert_eq!(t["token"].as_str().unwrap(), emu.action_group_token("api://x", "R"));
    let ask = br#"{"audience":"api://x","role":"R","bad":"alg_none"}"#;
    let t = send(&emu, "POST", "/_emulator/entra/token", &[], ask).unwrap().json();
    assert!(t["token"].as_str().unwrap().ends_with('.'), "{t}");

    let r = send(&emu, "POST", "/_emulator/entra/rotate", &[], b"").unwrap().json();
    assert_eq!(r["kids"][0], r["kid"]);
    assert_eq!(r["kids"][1].as_str(), Some(kids[0].as_str()));

    // The outage switch: no answer at all from the metadata and key endpoints.
    send(&emu, "POST", "/_emulator/entra/outage", &[], br#"{"on":true}"#).unwrap();
    assert!(send(&emu, "GET", jwks_uri.strip_prefix(&emu.base_url()).unwrap(), &[], b"").is_none());
    assert_eq!(emu.calls(routes::JWKS), 3);
    send(&emu, "POST", "/_emulator/entra/outage", &[], br#"{"on":false}"#).unwrap();
    assert!(send(&emu, "GET", jwks_uri.strip_prefix(&emu.base_url()).unwrap(), &[], b"").is_some());
}
