//! The test host itself: manifest checks, and the real component served through it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use test_host::{Host, HostError, HostOptions, Manifest, ManifestError, OutboundOutcome, Request};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn spin_toml() -> PathBuf {
    repo_root().join("spin.toml")
}

/// The release component: `APC_WASM`, else the workspace's release build.
fn wasm_path() -> PathBuf {
    std::env::var_os("APC_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/wasm32-wasip2/release/alert_packet_capture.wasm"))
}

/// The variables every test gives (the manifest's required ones).
fn base_variables() -> HashMap<String, String> {
    [
        ("azure_tenant_id", "00000000-0000-0000-0000-000000000001"),
        ("azure_client_id", "00000000-0000-0000-0000-000000000002"),
        ("azure_client_secret", "test-secret"),
        ("webhook_keys", "test-key-0123456789abcdef"),
        (
            "storage_account_id",
            "/subscriptions/00000000-0000-0000-0000-000000000003/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/captures",
        ),
        ("azure_authority_host", "http://127.0.0.1:9"),
        ("azure_arm_endpoint", "http://127.0.0.1:9"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn host_with(manifest: PathBuf, variables: HashMap<String, String>) -> Option<Host> {
    let wasm = wasm_path();
    if !wasm.exists() {
        eprintln!(
            "SKIPPED: {} is absent; build it with `cargo build --target wasm32-wasip2 --release` \
             or point APC_WASM at it",
            wasm.display()
        );
        return None;
    }
    let host = Host::new(HostOptions { wasm, manifest, variables, ..Default::default() });
    Some(host.unwrap_or_else(|e| panic!("host failed to start: {e}")))
}

/// A copy of spin.toml with `edit` applied, in a fresh temp folder.
fn edited_manifest(name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("test-host-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(spin_toml()).unwrap();
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit for {name} changed nothing");
    let path = dir.join("spin.toml");
    std::fs::write(&path, edited).unwrap();
    path
}

fn load_with(path: &Path, variables: &HashMap<String, String>) -> Result<(), ManifestError> {
    let manifest = Manifest::load(path)?;
    let (id, _) = manifest.component(None)?;
    let values = manifest.resolve_variables(variables)?;
    manifest.component_variables(id, &values)?;
    manifest.allowed_hosts(id, &values)?;
    Ok(())
}

#[test]
fn the_real_manifest_loads() {
    let manifest = Manifest::load(spin_toml()).unwrap();
    assert_eq!(manifest.name, "alert-packet-capture");
    let (id, component) = manifest.component(None).unwrap();
    assert_eq!(id, "alert-packet-capture");
    assert_eq!(component.key_value_stores, ["default"]);
    assert!(manifest.http_triggers.iter().any(|t| t.component == id));
    assert!(manifest.variables["azure_client_secret"].secret);
    assert!(manifest.variables["webhook_keys"].required);

    let mut vars = base_variables();
    vars.remove("azure_arm_endpoint");
    let values = manifest.resolve_variables(&vars).unwrap();
    // Override beats default, default applies otherwise.
    assert_eq!(values["azure_authority_host"], "http://127.0.0.1:9");
    assert_eq!(values["azure_arm_endpoint"], "https://management.azure.com");
    let rendered = manifest.component_variables(id, &values).unwrap();
    assert_eq!(rendered["webhook_keys"], "test-key-0123456789abcdef");
    let allowed = manifest.allowed_hosts(id, &values).unwrap();
    assert!(allowed.iter().any(|a| a.allows("http", "127.0.0.1", Some(9))));
    assert!(allowed.iter().any(|a| a.allows("https", "management.azure.com", None)));
    assert!(!allowed.iter().any(|a| a.allows("https", "example.com", None)));
}

#[test]
fn a_required_variable_without_value_is_refused() {
    let mut vars = base_variables();
    vars.remove("webhook_keys");
    let err = load_with(&spin_toml(), &vars).unwrap_err();
    assert!(matches!(&err, ManifestError::MissingRequired(name) if name == "webhook_keys"), "{err}");
}

#[test]
fn an_override_for_an_undeclared_variable_is_refused() {
    let mut vars = base_variables();
    vars.insert("webhook_key".into(), "typo".into());
    let err = load_with(&spin_toml(), &vars).unwrap_err();
    assert!(matches!(err, ManifestError::UndeclaredOverride(_)), "{err}");
}

#[test]
fn an_unknown_template_variable_is_refused() {
    let path = edited_manifest("unknown-var", |t| {
        t.replace("webhook_keys = \"{{ webhook_keys }}\"", "webhook_keys = \"{{ webhook_kyes }}\"")
    });
    let err = load_with(&path, &base_variables()).unwrap_err();
    assert!(matches!(&err, ManifestError::UnknownVariable { name, .. } if name == "webhook_kyes"), "{err}");
    assert!(err.to_string().contains("webhook_kyes"), "{err}");
}

#[test]
fn an_allowed_host_with_a_path_is_refused() {
    // Written in the manifest...
    let path = edited_manifest("host-path", |t| {
        t.replace("  \"{{ notify_host }}\",\n", "  \"{{ notify_host }}\",\n  \"https://example.com/api\",\n")
    });
    let err = load_with(&path, &base_variables()).unwrap_err();
    assert!(matches!(err, ManifestError::BadAllowedHost { .. }), "{err}");
    assert!(err.to_string().contains("path"), "{err}");
    // ...or coming from a variable's value.
    let mut vars = base_variables();
    vars.insert("azure_arm_endpoint".into(), "https://management.azure.com/subscriptions".into());
    let err = load_with(&spin_toml(), &vars).unwrap_err();
    assert!(
        matches!(&err, ManifestError::BadAllowedHost { template, .. } if template == "{{ azure_arm_endpoint }}"),
        "{err}"
    );
}

#[test]
fn an_empty_allowed_host_is_refused() {
    let mut vars = base_variables();
    vars.insert("notify_host".into(), String::new());
    let err = load_with(&spin_toml(), &vars).unwrap_err();
    assert!(matches!(&err, ManifestError::BadAllowedHost { entry, .. } if entry.is_empty()), "{err}");
    assert!(err.to_string().contains("empty"), "{err}");
}

#[test]
fn a_malformed_manifest_is_refused() {
    let path = edited_manifest("typo-field", |t| t.replace("key_value_stores = ", "key_value_store = "));
    let err = Manifest::load(&path).unwrap_err();
    assert!(matches!(err, ManifestError::Syntax { .. }), "{err}");
    let path = edited_manifest("other-store", |t| {
        t.replace("key_value_stores = [\"default\"]", "key_value_stores = [\"default\", \"cache\"]")
    });
    let err = Manifest::load(&path).unwrap_err();
    assert!(err.to_string().contains("cache"), "{err}");
}

#[test]
fn the_host_refuses_a_broken_manifest_at_start() {
    let mut vars = base_variables();
    vars.insert("notify_host".into(), String::new());
    // Refused before the component is even read.
    let err = Host::new(HostOptions {
        wasm: PathBuf::from("/nonexistent.wasm"),
        manifest: spin_toml(),
        variables: vars,
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, HostError::Manifest(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_json_from_a_fresh_instance_each_time() {
    let Some(host) = host_with(spin_toml(), base_variables()) else {
        return;
    };
    let first = host.request(Request::get("/healthz")).await.unwrap();
    assert_eq!(first.status, 200, "{}", first.text());
    let body = first.json().unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    assert!(first.header("content-type").is_some_and(|ct| ct.contains("json")));
    assert_eq!(first.stats.outbound, 0);
    // One JSON log line per request, attributed to it.
    let lines = host.logs().lines_for(first.stats.request_id);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let log: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(log["status"], 200);

    let second = host.request(Request::get("/healthz")).await.unwrap();
    assert_eq!(second.status, 200);
    assert_ne!(second.stats.request_id, first.stats.request_id);
}

#[test]
fn request_blocking_serves_without_a_runtime() {
    let Some(host) = host_with(spin_toml(), base_variables()) else {
        return;
    };
    let response = host.request_blocking(Request::get("/healthz")).unwrap();
    assert_eq!(response.status, 200);
    let missing = host.request_blocking(Request::get("/no-such-route")).unwrap();
    assert_eq!(missing.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_requests_share_one_host() {
    let Some(host) = host_with(spin_toml(), base_variables()) else {
        return;
    };
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let host = host.clone();
            tokio::spawn(async move { host.request(Request::get("/healthz")).await })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        let response = task.await.unwrap().unwrap();
        assert_eq!(response.status, 200);
        ids.push(response.stats.request_id);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 100);
    assert_eq!(host.requests_started(), 100);
    assert_eq!(host.logs().lines().len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_request_touches_nothing() {
    let Some(host) = host_with(spin_toml(), base_variables()) else {
        return;
    };
    let response = host.request(Request::post("/poll", Vec::new()).header("x-api-key", "wrong")).await.unwrap();
    assert_eq!(response.status, 401, "{}", response.text());
    assert_eq!(response.stats.kv.total(), 0);
    assert_eq!(response.stats.outbound, 0);
    assert_eq!(host.outbound().count(), 0);
}

fn alert_sample(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/azure-samples/alerts").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_call_outside_allowed_hosts_is_denied() {
    // A manifest that forgot the token endpoint: the component's first call must be refused.
    let manifest = edited_manifest("no-authority", |t| t.replace("  \"{{ azure_authority_host }}\",\n", ""));
    let mut vars = base_variables();
    vars.insert("azure_authority_host".into(), "http://127.0.0.1:1".into());
    let Some(host) = host_with(manifest, vars) else {
        return;
    };
    let response = host
        .request(
            Request::post("/alerts", alert_sample("common.testaction.activitylog-admin.vm-restart.json"))
                .header("content-type", "application/json")
                .header("x-api-key", "test-key-0123456789abcdef"),
        )
        .await
        .unwrap();
    let journal = host.outbound().records();
    assert!(response.stats.outbound >= 1, "{journal:?}");
    let first = &journal[0];
    assert_eq!(first.request_id, response.stats.request_id);
    assert_eq!(first.outcome, OutboundOutcome::Denied);
    assert!(first.url.starts_with("http://127.0.0.1:1/"), "{}", first.url);
    // The component reports it as a configuration problem.
    assert!(response.text().contains("allowed_outbound_hosts"), "{}", response.text());
    assert!(host.logs().entries().iter().any(|l| l.stream == test_host::Stream::Host && l.text.contains("denied")));
}
