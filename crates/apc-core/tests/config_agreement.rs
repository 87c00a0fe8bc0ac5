//! `spin.toml`, the README's configuration table and the component's list of variables
//! (`config::VARIABLES`) say the same thing: the same names, the same defaults, the same
//! secrets. A variable added in one place and forgotten in another fails here, by name.

use std::collections::BTreeMap;

use apc_core::config::{DefaultValue, VARIABLES, Variable};
use apc_core::origin::Origin;

const MANIFEST: &str = include_str!("../../../spin.toml");
const README: &str = include_str!("../../../README.md");
const COMPONENT: &str = "alert-packet-capture";

/// A default as any source states it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Def {
    Required,
    Empty,
    Value(String),
}

/// What one source says about a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Declared {
    default: Def,
    secret: bool,
}

impl From<&Variable> for Declared {
    fn from(v: &Variable) -> Self {
        let default = match v.default {
            DefaultValue::Required => Def::Required,
            DefaultValue::Empty => Def::Empty,
            DefaultValue::Value(d) => Def::Value(d.to_string()),
        };
        Declared { default, secret: v.secret }
    }
}

fn manifest() -> toml::Table {
    MANIFEST.parse::<toml::Table>().expect("spin.toml parses")
}

/// `[variables]`: `{ required = true }`, `{ default = "…" }`, and `secret = true`.
fn manifest_variables(m: &toml::Table) -> Result<BTreeMap<String, Declared>, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut bad = Vec::new();
    let vars = m.get("variables").and_then(toml::Value::as_table).expect("spin.toml has [variables]");
    for (name, decl) in vars {
        let Some(decl) = decl.as_table() else {
            bad.push(format!("{name}: not a table"));
            continue;
        };
        let required = decl.get("required").and_then(toml::Value::as_bool).unwrap_or(false);
        let secret = decl.get("secret").and_then(toml::Value::as_bool).unwrap_or(false);
        let default = match (required, decl.get("default").and_then(toml::Value::as_str)) {
            (true, None) => Def::Required,
            (false, Some("")) => Def::Empty,
            (false, Some(d)) => Def::Value(d.to_string()),
            _ => {
                bad.push(format!("{name}: must be either required or have a default"));
                continue;
            }
        };
        out.insert(name.clone(), Declared { default, secret });
    }
    if bad.is_empty() { Ok(out) } else { Err(bad) }
}

/// The rows of the README table under `## Configuration`: every back-quoted name in the first
/// column, with the default column read as `required[, secret]`, `empty …` or `` `value` …``.
fn readme_variables() -> Result<BTreeMap<String, Declared>, Vec<String>> {
    let section = README.split("\n## Configuration").nth(1).expect("README has a Configuration section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut out = BTreeMap::new();
    let mut bad = Vec::new();
    let rows =
        section.lines().skip_while(|l| !l.starts_with("| Variable |")).skip(2).take_while(|l| l.starts_with('|'));
    for row in rows {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let [names, default, ..] = cells.as_slice() else {
            bad.push(format!("row without columns: {row}"));
            continue;
        };
        let names: Vec<&str> = names.split('`').skip(1).step_by(2).collect();
        let secret = default.split([',', ' ']).any(|w| w == "secret");
        let parsed = if default.starts_with("required") {
            Some(Def::Required)
        } else if default.starts_with("empty") {
            Some(Def::Empty)
        } else if let Some(rest) = default.strip_prefix('`') {
            rest.split('`').next().map(|v| Def::Value(v.to_string()))
        } else {
            None
        };
        for name in names {
            match parsed.clone() {
                Some(default) => {
                    out.insert(name.to_string(), Declared { default, secret });
                }
                None => bad.push(format!("{name}: README default {default:?} is not required/empty/`value`")),
            }
        }
    }
    if bad.is_empty() { Ok(out) } else { Err(bad) }
}

/// Every name where `theirs` disagrees with the component's list.
fn disagreements(source: &str, theirs: &BTreeMap<String, Declared>) -> Vec<String> {
    let ours: BTreeMap<String, Declared> = VARIABLES.iter().map(|v| (v.name.to_string(), Declared::from(v))).collect();
    let mut out = Vec::new();
    for (name, mine) in &ours {
        match theirs.get(name) {
            None => out.push(format!("{name}: missing from {source}")),
            Some(d) if d != mine => out.push(format!("{name}: {source} says {d:?}, the component {mine:?}")),
            Some(_) => {}
        }
    }
    for name in theirs.keys().filter(|n| !ours.contains_key(*n)) {
        out.push(format!("{name}: in {source} but the component does not read it"));
    }
    out
}

#[test]
fn spin_toml_declares_exactly_the_variables_the_component_reads() {
    let m = manifest();
    let vars = manifest_variables(&m).unwrap_or_else(|bad| panic!("spin.toml [variables]: {}", bad.join("; ")));
    let problems = disagreements("spin.toml [variables]", &vars);
    assert!(problems.is_empty(), "spin.toml disagrees:\n{}", problems.join("\n"));
}

#[test]
fn the_component_maps_every_variable_to_itself() {
    let m = manifest();
    let map = m["component"][COMPONENT]["variables"].as_table().expect("the component has a variables map");
    let mut problems = Vec::new();
    for v in VARIABLES {
        let expected = format!("{{{{ {} }}}}", v.name);
        match map.get(v.name).and_then(toml::Value::as_str) {
            None => problems.push(format!("{}: not in [component.{COMPONENT}.variables]", v.name)),
            Some(t) if t != expected => problems.push(format!("{}: mapped to {t:?}, not {expected:?}", v.name)),
            Some(_) => {}
        }
    }
    for name in map.keys().filter(|n| !VARIABLES.iter().any(|v| v.name == n.as_str())) {
        problems.push(format!("{name}: mapped but the component does not read it"));
    }
    assert!(problems.is_empty(), "component variables disagree:\n{}", problems.join("\n"));
}

#[test]
fn the_readme_table_lists_the_same_variables_defaults_and_secrets() {
    let vars = readme_variables().unwrap_or_else(|bad| panic!("README table: {}", bad.join("; ")));
    let problems = disagreements("the README table", &vars);
    assert!(problems.is_empty(), "README disagrees:\n{}", problems.join("\n"));
}

#[test]
fn every_host_the_component_calls_is_allowed_and_its_default_is_canonical() {
    let m = manifest();
    let allowed: Vec<&str> = m["component"][COMPONENT]["allowed_outbound_hosts"]
        .as_array()
        .expect("allowed_outbound_hosts")
        .iter()
        .filter_map(toml::Value::as_str)
        .collect();
    for name in ["azure_authority_host", "azure_arm_endpoint", "notify_host"] {
        assert!(allowed.contains(&format!("{{{{ {name} }}}}").as_str()), "{name} is not in allowed_outbound_hosts");
        let v = VARIABLES.iter().find(|v| v.name == name).expect("declared");
        let DefaultValue::Value(d) = v.default else { panic!("{name} has no default") };
        assert_eq!(Origin::parse(d).map(|o| o.to_string()).as_deref(), Ok(d), "{name}'s default");
    }
    // The blob endpoint is allowed by a wildcard of the cloud, which the component reads the
    // same way (issue 10).
    assert!(allowed.contains(&"{{ storage_blob_host }}"), "storage_blob_host is not in allowed_outbound_hosts");
    let v = VARIABLES.iter().find(|v| v.name == "storage_blob_host").expect("declared");
    let DefaultValue::Value(d) = v.default else { panic!("storage_blob_host has no default") };
    assert_eq!(
        apc_core::config::BlobHost::parse(d),
        Ok(apc_core::config::BlobHost::Cloud(apc_core::azure::storage::BlobCloud::Public))
    );
}

/// The checks above are only worth something if they notice a difference.
#[test]
fn a_disagreement_is_reported_by_name() {
    let m = manifest();
    let mut vars = manifest_variables(&m).unwrap();
    vars.remove("poll_batch");
    vars.insert("retention_hours".into(), Declared { default: Def::Value("24".into()), secret: false });
    vars.insert("webhook_keys".into(), Declared { default: Def::Required, secret: false });
    vars.insert("notify_token".into(), Declared { default: Def::Empty, secret: true });
    let problems = disagreements("edited", &vars);
    let names: Vec<&str> = problems.iter().map(|p| p.split(':').next().unwrap()).collect();
    assert_eq!(names, ["poll_batch", "retention_hours", "webhook_keys", "notify_token"], "{problems:?}");
}

/// The test kit's base configuration sets every required variable and only variables the
/// component reads, so the suites built on it test the configuration a deployment has.
#[test]
fn the_test_kits_base_configuration_is_a_complete_one() {
    let base = apc_testkit::consts::base_vars();
    let mut problems: Vec<String> = base
        .0
        .keys()
        .filter(|n| !VARIABLES.iter().any(|v| v.name == n.as_str()))
        .map(|n| format!("{n}: set by the kit but the component does not read it"))
        .collect();
    for v in VARIABLES.iter().filter(|v| v.default == DefaultValue::Required) {
        if base.0.get(v.name).is_none_or(String::is_empty) {
            problems.push(format!("{}: required but not set by the kit", v.name));
        }
    }
    problems.sort();
    assert!(problems.is_empty(), "the kit's base configuration:\n{}", problems.join("\n"));
}
