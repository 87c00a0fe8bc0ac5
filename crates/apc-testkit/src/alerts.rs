//! Alert payloads built from the real samples of `testdata/azure-samples/alerts` (the files are
//! never edited; derived variants are built in memory).

use serde_json::{Value, json};

use crate::consts::SUB;
use crate::http::{sample_json, sample_text};

/// The common-schema sample (a metric alert on VM `wcus-r2-gen2`).
pub const COMMON_SAMPLE: &str = "alerts/common.metric.vm.resolved.alerts-common-schema.json";
/// The classic-schema sample (a metric alert on a website).
pub const CLASSIC_SAMPLE: &str = "alerts/classic.metric.website.alerts-webhooks.json";
/// The non-common metric-alert sample (on a storage account).
pub const METRIC_SAMPLE: &str = "alerts/noncommon.metric-static.storage.json";

/// Whether an alert fires or resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firing {
    /// `Fired` (common schema) / `Activated` (classic and metric schemas).
    Fired,
    /// `Resolved`.
    Resolved,
}

/// The common-schema sample with [`SUB`] for its placeholder subscription, as `condition`,
/// its target(s) unchanged (`wcus-r2-gen2` in `pipelinealertrg`).
pub fn common_sample(condition: Firing) -> Value {
    let text = sample_text(COMMON_SAMPLE).replace("<subscription ID>", SUB);
    let mut v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{COMMON_SAMPLE}: {e}"));
    v["data"]["essentials"]["monitorCondition"] = json!(match condition {
        Firing::Fired => "Fired",
        Firing::Resolved => "Resolved",
    });
    v
}

/// The common-schema sample as a fired alert on its own VM.
pub fn common_vm_alert() -> Value {
    common_sample(Firing::Fired)
}

/// The common-schema sample as `condition` with `alertTargetIDs` set to `targets` (usually an
/// array of ids; anything else to test refusals).
pub fn common_alert(targets: Value, condition: Firing) -> Value {
    let mut v = common_sample(condition);
    v["data"]["essentials"]["alertTargetIDs"] = targets;
    v
}

/// The classic sample as `condition` on `target` (a VM or scale set id), rule `rule`, with the
/// region `westus` in the payload.
pub fn classic_alert(target: &str, rule: &str, condition: Firing) -> Value {
    let mut v = sample_json(CLASSIC_SAMPLE);
    v["status"] = json!(match condition {
        Firing::Fired => "Activated",
        Firing::Resolved => "Resolved",
    });
    let kind = if target.to_ascii_lowercase().contains("/virtualmachinescalesets/") {
        "Microsoft.Compute/virtualMachineScaleSets"
    } else {
        "Microsoft.Compute/virtualMachines"
    };
    v["context"]["resourceId"] = json!(target);
    v["context"]["resourceType"] = json!(kind);
    v["context"]["resourceRegion"] = json!("westus");
    v["context"]["subscriptionId"] = json!(SUB);
    v["context"]["id"] =
        json!(format!("/subscriptions/{SUB}/resourceGroups/rg2/providers/microsoft.insights/alertrules/{rule}"));
    v
}

/// A fired classic alert on VM `vm` of resource group `rg2`, rule `rule`, region `westus`.
pub fn classic_vm_alert(vm: &str, rule: &str) -> Value {
    classic_alert(&crate::consts::vm_id("rg2", vm), rule, Firing::Fired)
}

/// The non-common metric-alert sample as `condition` on `target`, rule `rule`.
pub fn metric_alert(target: &str, rule: &str, condition: Firing) -> Value {
    let mut v = sample_json(METRIC_SAMPLE);
    v["data"]["status"] = json!(match condition {
        Firing::Fired => "Activated",
        Firing::Resolved => "Resolved",
    });
    let ctx = &mut v["data"]["context"];
    ctx["resourceId"] = json!(target);
    ctx["subscriptionId"] = json!(SUB);
    ctx["id"] =
        json!(format!("/subscriptions/{SUB}/resourceGroups/rg2/providers/microsoft.insights/metricAlerts/{rule}"));
    ctx["name"] = json!(rule);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::{scale_set_id, vm_id};
    use apc_core::alert::{Condition, Schema, parse};
    use apc_core::resource_id::Target;

    fn parsed(v: &Value) -> apc_core::alert::Alert {
        parse(&serde_json::to_vec(v).unwrap()).unwrap_or_else(|e| panic!("refused: {e}"))
    }

    #[test]
    fn builders_parse_to_the_target_and_condition_asked_for() {
        let vm = vm_id("rg2", "vm-b");
        let set = scale_set_id("rg2", "ss");
        for firing in [Firing::Fired, Firing::Resolved] {
            let want = if firing == Firing::Fired { Condition::Fired } else { Condition::Resolved };
            for target in [&vm, &set] {
                let cases = [
                    (Schema::Common, common_alert(json!([target]), firing)),
                    (Schema::ClassicMetric, classic_alert(target, "r", firing)),
                    (Schema::MetricNonCommon, metric_alert(target, "r", firing)),
                ];
                for (schema, alert) in cases {
                    let a = parsed(&alert);
                    assert_eq!(a.schema, schema);
                    assert_eq!(a.condition, want, "{schema:?} {firing:?}");
                    let ids: Vec<String> = a.targets.iter().map(Target::id_string).collect();
                    assert_eq!(ids, [target.to_string()], "{schema:?}");
                }
            }
        }
        let a = parsed(&common_vm_alert());
        assert_eq!(a.condition, Condition::Fired);
        assert!(a.targets[0].id_string().ends_with("/virtualMachines/wcus-r2-gen2"));
    }
}
