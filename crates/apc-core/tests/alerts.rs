//! The alert parser against every real Azure sample in `testdata/azure-samples/alerts/`, derived
//! variants built from them in memory (the sample files are never edited), and refusals.

use std::collections::BTreeSet;
use std::path::PathBuf;

use apc_core::alert::{Alert, AlertError, Condition, Schema, parse};
use apc_core::resource_id::Target;
use apc_core::timefmt::rfc3339;
use serde_json::{Value, json};

const SUB: &str = "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e";
const REAL_SUB: &str = "6f3c2b1a-9d8e-4f70-a1b2-c3d4e5f60718";

/// The alert samples (copies of the public samples live in the repository, see
/// testdata/azure-samples/SOURCES.md; the kit locates them).
fn samples_dir() -> PathBuf {
    apc_testkit::http::samples_dir().join("alerts")
}

fn load(name: &str) -> Vec<u8> {
    let path = samples_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn load_value(name: &str) -> Value {
    serde_json::from_slice(&load(name)).expect("sample is JSON")
}

fn parse_value(v: &Value) -> Result<Alert, AlertError> {
    parse(&serde_json::to_vec(v).expect("serialises"))
}

fn ok(v: &Value) -> Alert {
    parse_value(v).unwrap_or_else(|e| panic!("refused: {e}"))
}

fn ids(a: &Alert) -> Vec<String> {
    a.targets.iter().map(Target::id_string).collect()
}

/// What one sample must parse to.
struct Expect {
    schema: Schema,
    condition: Condition,
    alert_id: &'static str,
    fired_at: &'static str,
    rule: Option<&'static str>,
    targets: Vec<String>,
    /// (id, a part of the reason)
    rejected: Vec<(&'static str, &'static str)>,
    region: Option<&'static str>,
    custom_keys: &'static [&'static str],
}

enum Outcome {
    Parsed(Box<Expect>),
    /// (variant name, parts of the message)
    Refused(&'static str, &'static [&'static str]),
}

const NOT_VM: &str = "not a VM or scale set";

fn vm(sub: &str, rg: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}")
}

/// The expectation of every sample file. A new sample without one fails `every_sample_parses_as_expected`.
fn expectation(file: &str) -> Option<Outcome> {
    let common = |alert_id, fired_at, rule, targets, rejected, custom_keys| {
        Outcome::Parsed(Box::new(Expect {
            schema: Schema::Common,
            condition: Condition::Fired,
            alert_id,
            fired_at,
            rule,
            targets,
            rejected,
            region: None,
            custom_keys,
        }))
    };
    let alerts_mgmt = "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/providers/Microsoft.AlertsManagement/alerts/eeeeeeee-4444-5555-6666-ffffffffffff";
    let app_insights = "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-RG/providers/microsoft.insights/components/test-applicationInsights";
    let custom: &'static [&'static str] = &["customKey1", "customKey2"];
    Some(match file {
        "classic.metric.website.alerts-webhooks.json" => Outcome::Parsed(Box::new(Expect {
            schema: Schema::ClassicMetric,
            condition: Condition::Fired,
            alert_id: "/subscriptions/s1/resourceGroups/useast/providers/microsoft.insights/alertrules/ruleName1",
            fired_at: "2015-08-14T22:26:41Z",
            rule: Some("ruleName1"),
            targets: vec![],
            rejected: vec![(
                "/subscriptions/s1/resourceGroups/useast/providers/microsoft.foo/sites/mysite1",
                "not a valid ARM id: resource id has the wrong shape: subscription id is not a GUID",
            )],
            region: Some("centralus"),
            custom_keys: &["key1", "key2"],
        })),
        "common.metric.vm.resolved.alerts-common-schema.json" => Outcome::Parsed(Box::new(Expect {
            schema: Schema::Common,
            condition: Condition::Resolved,
            alert_id: "/subscriptions/<subscription ID>/providers/Microsoft.AlertsManagement/alerts/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e",
            fired_at: "2019-03-22T13:58:24Z",
            rule: Some("WCUS-R2-Gen2"),
            targets: vec![],
            rejected: vec![(
                "/subscriptions/<subscription ID>/resourcegroups/pipelinealertrg/providers/microsoft.compute/virtualmachines/wcus-r2-gen2",
                "not a valid ARM id: resource id is malformed: non-ASCII, control or space characters",
            )],
            region: None,
            custom_keys: &["Key1", "Key2"],
        })),
        "common.testaction.activitylog-admin.vm-restart.json" => common(
            "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG/providers/microsoft.insights/activityLogAlerts/Test_Alert",
            "2025-04-15T11:26:21Z",
            Some("test-activityLogAlertRule"),
            vec![vm(SUB, "test-RG", "test-VM")],
            vec![],
            &[],
        ),
        "common.testaction.availability.appinsights.json" => common(
            alerts_mgmt,
            "2025-04-15T17:42:34Z",
            Some("test-availabilityTest-test-applicationInsights"),
            vec![],
            vec![(app_insights, NOT_VM)],
            custom,
        ),
        "common.testaction.cost-budget.json" => common(
            "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/providers/Microsoft.CostManagement/alerts/Test_Alert",
            "2025-04-15T17:53:32Z",
            None,
            vec![],
            vec![],
            &[],
        ),
        "common.testaction.logv2.workspace.json" => common(
            alerts_mgmt,
            "2025-04-15T18:08:03Z",
            Some("test-logAlertRule-v2"),
            vec![],
            vec![(
                "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-RG/providers/microsoft.operationalinsights/workspaces/test-logAnalyticsWorkspace",
                "(a microsoft.operationalinsights/workspaces)",
            )],
            // Its custom properties sit in alertContext.properties only, not data.customProperties.
            &[],
        ),
        "common.testaction.metric-dynamic.storage.json" => common(
            alerts_mgmt,
            "2025-04-15T18:15:16Z",
            Some("test-dynamicMetricAlertRule"),
            vec![],
            vec![(
                "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-RG/providers/Microsoft.Storage/storageAccounts/test-storageAccount",
                "(a Microsoft.Storage/storageAccounts)",
            )],
            custom,
        ),
        "common.testaction.metric-static.storage.json" => common(
            alerts_mgmt,
            "2025-04-15T18:17:12Z",
            Some("test-metricAlertRule"),
            vec![],
            vec![(
                "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-RG/providers/microsoft.storage/storageaccounts/test-storageAccount",
                NOT_VM,
            )],
            custom,
        ),
        "common.testaction.resourcehealth.vm.json" => common(
            alerts_mgmt,
            "2025-04-15T18:19:45Z",
            Some("test-ResourceHealthAlertRule"),
            vec![vm(SUB, "test-RG", "test-VM")],
            vec![],
            &[],
        ),
        "common.testaction.smart-alert.appinsights.json" => common(
            alerts_mgmt,
            "2021-10-28T19:09:09Z",
            Some("test-SmartAlertRule"),
            vec![],
            vec![(app_insights, NOT_VM)],
            &[],
        ),
        "noncommon.activitylog-admin.vm-restart.json" => Outcome::Parsed(Box::new(Expect {
            schema: Schema::ActivityLog,
            condition: Condition::Fired,
            alert_id: "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb",
            fired_at: "2021-11-16T08:27:36Z",
            rule: None,
            targets: vec![vm(SUB, "test-RG", "test-VM")],
            rejected: vec![],
            region: None,
            custom_keys: custom,
        })),
        "noncommon.activitylog.servicehealth.json" => Outcome::Parsed(Box::new(Expect {
            schema: Schema::ActivityLog,
            condition: Condition::Fired,
            alert_id: "6fa98c0f-334a-b066-1934-1a4b3d929856",
            fired_at: "2017-10-18T23:49:25Z",
            rule: None,
            // A subscription-level event: nothing to capture on, so the handler answers 422.
            targets: vec![],
            rejected: vec![],
            region: None,
            custom_keys: &[],
        })),
        "noncommon.logv1-numresults.workspace.json" => {
            Outcome::Refused("UnknownSchema", &["Log Alerts V1", "enable the common alert schema on the action group"])
        }
        "noncommon.metric-dynamic.storage.json" | "noncommon.metric-static.storage.json" => {
            let dynamic = file.contains("dynamic");
            Outcome::Parsed(Box::new(Expect {
                schema: Schema::MetricNonCommon,
                condition: Condition::Fired,
                alert_id: if dynamic {
                    "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-RG/providers/microsoft.insights/metricalerts/test-metricAlertRule"
                } else {
                    "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG/providers/microsoft.insights/metricAlerts/test-metricAlertRule"
                },
                fired_at: if dynamic { "2021-11-15T09:35:24Z" } else { "2021-11-15T09:35:12Z" },
                rule: Some("test-metricAlertRule"),
                targets: vec![],
                rejected: vec![(
                    "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG/providers/Microsoft.Storage/storageAccounts/test-storageAccount",
                    NOT_VM,
                )],
                region: None,
                custom_keys: custom,
            }))
        }
        "noncommon.metric.storage.near-real-time-2018.json" => Outcome::Parsed(Box::new(Expect {
            schema: Schema::MetricNonCommon,
            condition: Condition::Fired,
            alert_id: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/Contoso/providers/microsoft.insights/metricAlerts/StorageCheck",
            fired_at: "2018-02-28T10:44:10Z",
            rule: Some("StorageCheck"),
            targets: vec![],
            rejected: vec![(
                "/subscriptions/1e3ff1c0-771a-4119-a03b-be82a51e232d/resourceGroups/Contoso/providers/Microsoft.Storage/storageAccounts/diag500",
                NOT_VM,
            )],
            region: None,
            custom_keys: &["key1", "key2"],
        })),
        _ => return None,
    })
}

fn variant_name(e: &AlertError) -> &'static str {
    match e {
        AlertError::NotJson(_) => "NotJson",
        AlertError::UnknownSchema(_) => "UnknownSchema",
        AlertError::Invalid(_) => "Invalid",
    }
}

#[test]
fn every_sample_parses_as_expected() {
    let mut names: Vec<String> = std::fs::read_dir(samples_dir())
        .expect("testdata/azure-samples/alerts is in the repository")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 16, "expected the 16 samples, found {names:?}");
    let missing: Vec<&String> = names.iter().filter(|n| expectation(n).is_none()).collect();
    assert!(missing.is_empty(), "samples without an expectation in this test: {missing:?}");

    for name in &names {
        let got = parse(&load(name));
        match expectation(name).expect("checked above") {
            Outcome::Refused(variant, parts) => {
                let e = got.expect_err(name);
                assert_eq!(variant_name(&e), variant, "{name}: {e}");
                for p in parts {
                    assert!(e.to_string().contains(p), "{name}: {e:?} lacks {p:?}");
                }
                assert_eq!(e.status(), 400);
            }
            Outcome::Parsed(x) => {
                let a = got.unwrap_or_else(|e| panic!("{name} refused: {e}"));
                assert_eq!(a.schema, x.schema, "{name}");
                assert_eq!(a.condition, x.condition, "{name}");
                assert_eq!(a.alert_id, x.alert_id, "{name}");
                assert_eq!(rfc3339(a.fired_at), x.fired_at, "{name}");
                assert_eq!(a.identity(), format!("{}|{}", x.alert_id, x.fired_at), "{name}");
                assert_eq!(a.rule.as_deref(), x.rule, "{name}");
                assert_eq!(ids(&a), x.targets, "{name}");
                assert_eq!(a.rejected_targets.len(), x.rejected.len(), "{name}: {:?}", a.rejected_targets);
                for ((id, reason), (want_id, want_reason)) in a.rejected_targets.iter().zip(&x.rejected) {
                    assert_eq!(id, want_id, "{name}");
                    assert!(reason.contains(want_reason), "{name}: {reason:?} lacks {want_reason:?}");
                }
                assert_eq!(a.region.as_deref(), x.region, "{name}");
                let keys: Vec<&str> = a.custom_properties.keys().map(String::as_str).collect();
                assert_eq!(keys, x.custom_keys, "{name}");
            }
        }
    }
}

#[test]
fn schema_names() {
    assert_eq!(Schema::Common.as_str(), "common");
    assert_eq!(Schema::MetricNonCommon.as_str(), "metric");
    assert_eq!(Schema::ClassicMetric.as_str(), "classic");
    assert_eq!(Schema::ActivityLog.as_str(), "activity-log");
}

/// The common-schema VM sample with a real subscription GUID and the given targets and condition.
fn common_vm(targets: Value, condition: &str) -> Value {
    let mut v = load_value("common.metric.vm.resolved.alerts-common-schema.json");
    let ess = &mut v["data"]["essentials"];
    ess["alertTargetIDs"] = targets;
    ess["monitorCondition"] = json!(condition);
    ess["alertId"] = json!(format!("/subscriptions/{REAL_SUB}/providers/Microsoft.AlertsManagement/alerts/0d9f0c1e"));
    v
}

fn lower_vm(name: &str) -> String {
    format!(
        "/subscriptions/{REAL_SUB}/resourcegroups/pipelinealertrg/providers/microsoft.compute/virtualmachines/{name}"
    )
}

#[test]
fn common_vm_alert_fired() {
    let a = ok(&common_vm(json!([lower_vm("wcus-r2-gen2")]), "Fired"));
    assert_eq!(a.schema, Schema::Common);
    assert_eq!(a.condition, Condition::Fired);
    assert_eq!(ids(&a), vec![vm(REAL_SUB, "pipelinealertrg", "wcus-r2-gen2")]);
    assert!(matches!(&a.targets[0], Target::Vm(id) if id.name() == "wcus-r2-gen2"));
    assert!(a.rejected_targets.is_empty());
    assert_eq!(
        a.identity(),
        format!("/subscriptions/{REAL_SUB}/providers/Microsoft.AlertsManagement/alerts/0d9f0c1e|2019-03-22T13:58:24Z")
    );
    assert_eq!(a.custom_properties["Key1"], json!("Value1"));
}

#[test]
fn common_vm_alert_resolved() {
    let a = ok(&common_vm(json!([lower_vm("wcus-r2-gen2")]), "Resolved"));
    assert_eq!(a.condition, Condition::Resolved);
    assert_eq!(a.targets.len(), 1);
    // The same firing resolved keeps its identity (fire time, not resolve time).
    assert_eq!(rfc3339(a.fired_at), "2019-03-22T13:58:24Z");
}

#[test]
fn two_targets_vm_and_scale_set_instance() {
    let inst = format!(
        "/subscriptions/{REAL_SUB}/resourceGroups/rg2/providers/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/7"
    );
    let a = ok(&common_vm(json!([lower_vm("vm-a"), inst]), "Fired"));
    assert_eq!(ids(&a), vec![vm(REAL_SUB, "pipelinealertrg", "vm-a"), inst.clone()]);
    match &a.targets[1] {
        Target::VmssInstance { vmss, instance } => {
            assert_eq!(vmss.name(), "web");
            assert_eq!(instance, "7");
        }
        other => panic!("not an instance: {other:?}"),
    }
}

#[test]
fn scale_set_target() {
    let ss =
        format!("/subscriptions/{REAL_SUB}/resourcegroups/rg2/providers/microsoft.compute/virtualmachinescalesets/web");
    let a = ok(&common_vm(json!([ss]), "Fired"));
    assert_eq!(a.targets.len(), 1);
    assert!(matches!(&a.targets[0], Target::Vmss(id) if id.name() == "web"));
    assert_eq!(
        a.targets[0].id_string(),
        format!("/subscriptions/{REAL_SUB}/resourceGroups/rg2/providers/Microsoft.Compute/virtualMachineScaleSets/web")
    );
}

#[test]
fn duplicate_targets_differing_in_case_are_one() {
    let upper = lower_vm("VM-A").replace("resourcegroups/pipelinealertrg", "resourceGroups/PipelineAlertRG");
    let a = ok(&common_vm(json!([lower_vm("vm-a"), upper, lower_vm("vm-b"), lower_vm("vm-a")]), "Fired"));
    assert_eq!(ids(&a), vec![vm(REAL_SUB, "pipelinealertrg", "vm-a"), vm(REAL_SUB, "pipelinealertrg", "vm-b")]);
}

#[test]
fn rejected_ids_keep_payload_order_and_valid_targets_survive() {
    let storage =
        format!("/subscriptions/{REAL_SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st1");
    let a = ok(&common_vm(json!([storage, 42, lower_vm("vm-a"), "/subscriptions/x/../y", null]), "Fired"));
    assert_eq!(ids(&a), vec![vm(REAL_SUB, "pipelinealertrg", "vm-a")]);
    let reasons: Vec<(&str, &str)> = a.rejected_targets.iter().map(|(i, r)| (i.as_str(), r.as_str())).collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert_eq!(reasons[0].0, storage);
    assert!(reasons[0].1.contains("(a Microsoft.Storage/storageAccounts)"));
    assert_eq!(reasons[1], ("42", "not a string"));
    assert!(reasons[2].1.starts_with("not a valid ARM id: "));
    assert_eq!(reasons[3], ("null", "not a string"));
}

#[test]
fn null_or_absent_targets_are_no_targets() {
    let a = ok(&common_vm(Value::Null, "Fired"));
    assert!(a.targets.is_empty() && a.rejected_targets.is_empty());
    let mut v = common_vm(Value::Null, "Fired");
    v["data"]["essentials"].as_object_mut().unwrap().remove("alertTargetIDs");
    let a = ok(&v);
    assert!(a.targets.is_empty() && a.rejected_targets.is_empty());
    // A lone string is one id, not a refusal.
    let a = ok(&common_vm(json!(lower_vm("solo")), "Fired"));
    assert_eq!(ids(&a), vec![vm(REAL_SUB, "pipelinealertrg", "solo")]);
    // Anything else there is not a list of ids.
    let e = parse_value(&common_vm(json!({"a": 1}), "Fired")).unwrap_err();
    assert!(matches!(&e, AlertError::Invalid(m) if m.contains("/data/essentials/alertTargetIDs")), "{e}");
}

#[test]
fn target_ids_are_capped() {
    let many: Vec<String> = (0..150).map(|i| lower_vm(&format!("vm{i}"))).collect();
    let a = ok(&common_vm(json!(many), "Fired"));
    assert_eq!(a.targets.len(), 100);
    assert_eq!(a.rejected_targets.len(), 1);
    assert_eq!(a.rejected_targets[0].0, "(50 more ids)");
}

#[test]
fn classic_alert_on_a_vm_with_display_region() {
    let mut v = load_value("classic.metric.website.alerts-webhooks.json");
    v["context"]["resourceId"] = json!(vm(REAL_SUB, "useast", "vm1"));
    v["context"]["resourceRegion"] = json!("West US");
    let a = ok(&v);
    assert_eq!(a.schema, Schema::ClassicMetric);
    assert_eq!(a.condition, Condition::Fired);
    assert_eq!(a.region.as_deref(), Some("westus"));
    assert_eq!(ids(&a), vec![vm(REAL_SUB, "useast", "vm1")]);
    assert_eq!(a.custom_properties["key1"], json!("value1"));
    for (status, want) in [("Resolved", Condition::Resolved), ("Deactivated", Condition::Resolved)] {
        v["status"] = json!(status);
        assert_eq!(ok(&v).condition, want, "{status}");
    }
    for garbage in [json!("west/../us"), json!(""), json!(3), Value::Null, json!("x".repeat(65))] {
        v["context"]["resourceRegion"] = garbage.clone();
        assert_eq!(ok(&v).region, None, "{garbage}");
    }
    v["context"]["name"] = json!("rule\u{0}with\nnewline");
    assert_eq!(ok(&v).rule.as_deref(), Some("rule?with?newline"));
    v["status"] = json!("Exploded");
    let e = parse_value(&v).unwrap_err();
    assert!(matches!(&e, AlertError::Invalid(m) if m.contains("/status")), "{e}");
}

#[test]
fn non_common_metric_alert_on_a_vm() {
    let mut v = load_value("noncommon.metric-static.storage.json");
    v["data"]["context"]["resourceId"] = json!(vm(SUB, "test-RG", "web-1"));
    v["data"]["context"]["resourceRegion"] = json!("eastus");
    let a = ok(&v);
    assert_eq!(a.schema, Schema::MetricNonCommon);
    assert_eq!(a.condition, Condition::Fired);
    assert_eq!(ids(&a), vec![vm(SUB, "test-RG", "web-1")]);
    assert_eq!(a.region.as_deref(), Some("eastus"));
    v["data"]["status"] = json!("Resolved");
    assert_eq!(ok(&v).condition, Condition::Resolved);
}

#[test]
fn custom_properties_carry_capture_overrides() {
    let mut v = common_vm(json!([lower_vm("vm-a")]), "Fired");
    v["data"]["customProperties"] = json!({
        "captureTimeLimitSeconds": "600",
        "captureFilters": "[{\"protocol\":\"TCP\"}]",
    });
    let a = ok(&v);
    assert_eq!(a.custom_properties["captureTimeLimitSeconds"], json!("600"));
    assert_eq!(a.custom_properties.len(), 2);
    // null where an object is expected is simply no properties.
    v["data"]["customProperties"] = Value::Null;
    assert!(ok(&v).custom_properties.is_empty());
}

#[test]
fn schema_id_is_compared_case_insensitively() {
    let mut v = common_vm(json!([lower_vm("vm-a")]), "fired");
    v["schemaId"] = json!("AZUREMONITORCOMMONALERTSCHEMA");
    assert_eq!(ok(&v).schema, Schema::Common);
}

#[test]
fn activity_log_variants() {
    let mut v = load_value("noncommon.activitylog-admin.vm-restart.json");
    v["data"]["context"]["activityLog"]["resourceId"] = json!(format!(
        "/subscriptions/{SUB}/resourceGroups/test-RG/providers/Microsoft.Compute/virtualMachineScaleSets/ss"
    ));
    let a = ok(&v);
    assert!(matches!(&a.targets[0], Target::Vmss(_)));
    assert_eq!(a.identity(), "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb|2021-11-16T08:27:36Z");
    let log = v["data"]["context"]["activityLog"].as_object_mut().unwrap();
    log.remove("eventTimestamp");
    assert_eq!(rfc3339(ok(&v).fired_at), "2021-11-16T08:29:00Z", "falls back to submissionTimestamp");
    let log = v["data"]["context"]["activityLog"].as_object_mut().unwrap();
    log.remove("submissionTimestamp");
    let e = parse_value(&v).unwrap_err();
    assert!(matches!(&e, AlertError::Invalid(m) if m.contains("/data/context/activityLog/eventTimestamp")), "{e}");
}

#[test]
fn refuses_what_is_not_json() {
    for body in [&b"hello"[..], b"", b"{\"schemaId\":", b"\xff\xfe{}"] {
        let e = parse(body).unwrap_err();
        assert!(matches!(e, AlertError::NotJson(_)), "{body:?}: {e}");
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn refuses_json_that_is_no_alert() {
    let cases: [(&[u8], &str); 5] = [
        (b"[]", "an array"),
        (b"[{\"schemaId\":\"azureMonitorCommonAlertSchema\"}]", "an array"),
        (b"{}", "empty object"),
        (b"{\"schemaId\":\"Microsoft.Insights/LogAlert\"}", "enable the common alert schema"),
        (b"{\"hello\":1,\"world\":2}", "\"hello\", \"world\""),
    ];
    for (body, part) in cases {
        let e = parse(body).unwrap_err();
        assert!(matches!(&e, AlertError::UnknownSchema(m) if m.contains(part)), "{e}");
    }
    let e = parse(b"{\"schemaId\":\"something\\u0007else\"}").unwrap_err();
    assert!(matches!(&e, AlertError::UnknownSchema(m) if m.contains("\"something?else\"")), "{e}");
}

#[test]
fn refuses_deep_nesting_before_parsing() {
    let body = "[".repeat(10_000);
    let e = parse(body.as_bytes()).unwrap_err();
    assert!(matches!(&e, AlertError::NotJson(m) if m.contains("deeper than 64")), "{e}");
    // Brackets inside strings do not count.
    let mut v = common_vm(json!([lower_vm("vm-a")]), "Fired");
    v["data"]["customProperties"] = json!({ "k": "[".repeat(1000) });
    assert!(parse_value(&v).is_ok());
}

#[test]
fn nesting_limit_is_exactly_64() {
    // root(1) > data(2) > customProperties(3) > k arrays
    let nested = |k: usize| {
        let mut v = common_vm(json!([lower_vm("vm-a")]), "Fired");
        let inner = format!("{}{}", "[".repeat(k), "]".repeat(k));
        v["data"]["customProperties"] = json!({ "deep": serde_json::from_str::<Value>(&inner).unwrap() });
        serde_json::to_vec(&v).unwrap()
    };
    assert!(parse(&nested(61)).is_ok());
    assert!(matches!(parse(&nested(62)), Err(AlertError::NotJson(_))));
}

#[test]
fn one_mebibyte_strings() {
    let big = "x".repeat(1 << 20);
    let e = parse(serde_json::to_vec(&json!(big)).unwrap().as_slice()).unwrap_err();
    assert!(matches!(&e, AlertError::UnknownSchema(m) if m.contains("a string")), "{e}");

    let mut v = common_vm(json!([format!("/subscriptions/{big}")]), "Fired");
    v["data"]["essentials"]["alertRule"] = json!(big);
    let a = ok(&v);
    assert_eq!(a.rule.as_ref().map(String::len), Some(300));
    assert_eq!(a.rejected_targets[0].0.len(), 300);
    assert!(a.rejected_targets[0].1.contains("longer than 1024"));

    v["data"]["essentials"]["alertId"] = json!(big);
    let e = parse_value(&v).unwrap_err();
    assert!(matches!(&e, AlertError::Invalid(m) if m.contains("/data/essentials/alertId") && m.len() < 400), "{e}");
}

#[test]
fn refuses_common_alert_without_fire_time() {
    let mut v = common_vm(json!([lower_vm("vm-a")]), "Fired");
    v["data"]["essentials"].as_object_mut().unwrap().remove("firedDateTime");
    let e = parse_value(&v).unwrap_err();
    assert_eq!(e, AlertError::Invalid("/data/essentials/firedDateTime is missing".to_string()));
    assert_eq!(e.status(), 400);
    v["data"]["essentials"]["firedDateTime"] = json!("9/7/2016 25:35:24");
    let e = parse_value(&v).unwrap_err();
    assert!(
        matches!(&e, AlertError::Invalid(m) if m.contains("/data/essentials/firedDateTime") && m.contains("RFC 3339")),
        "{e}"
    );
    v["data"]["essentials"]["firedDateTime"] = json!(1_553_263_104);
    assert!(matches!(parse_value(&v), Err(AlertError::Invalid(_))));
}

#[test]
fn refuses_known_schema_with_broken_required_fields() {
    let cases: [(&str, Value, &str); 5] = [
        ("/data", Value::Null, "/data is null, expected an object"),
        ("/data/essentials", Value::Null, "/data/essentials is null"),
        ("/data/essentials/alertId", json!("  "), "/data/essentials/alertId is empty"),
        ("/data/essentials/monitorCondition", json!("Maybe"), "/data/essentials/monitorCondition is \"Maybe\""),
        ("/data/essentials/monitorCondition", Value::Null, "/data/essentials/monitorCondition is null"),
    ];
    for (pointer, value, part) in cases {
        let mut v = common_vm(json!([lower_vm("vm-a")]), "Fired");
        *v.pointer_mut(pointer).unwrap() = value;
        let e = parse_value(&v).unwrap_err();
        assert!(matches!(&e, AlertError::Invalid(m) if m.contains(part)), "{pointer}: {e}");
    }
}

#[test]
fn tolerates_bom_and_odd_values() {
    let mut body = b"\xEF\xBB\xBF".to_vec();
    body.extend(load("noncommon.metric-dynamic.storage.json"));
    assert_eq!(parse(&body).unwrap().schema, Schema::MetricNonCommon);
    let mut v = common_vm(json!([lower_vm("vm-a")]), "Fired");
    v["data"]["essentials"]["severity"] = json!("3");
    v["data"]["essentials"]["alertRule"] = Value::Null;
    v["data"]["alertContext"] = Value::Null;
    v["data"]["essentials"]["key with spaces"] = json!({"nested": [1, "2", null]});
    let a = ok(&v);
    assert_eq!(a.rule, None);
    assert_eq!(a.targets.len(), 1);
}

#[test]
fn truncated_samples_never_panic() {
    // Every prefix of every sample: parse must answer (Ok or Err), never panic.
    let mut outcomes = BTreeSet::new();
    for entry in std::fs::read_dir(samples_dir()).unwrap() {
        let body = std::fs::read(entry.unwrap().path()).unwrap();
        for end in 0..body.len() {
            outcomes.insert(match parse(&body[..end]) {
                Ok(_) => "ok",
                Err(e) => variant_name(&e),
            });
        }
    }
    assert!(outcomes.contains("NotJson"));
}
