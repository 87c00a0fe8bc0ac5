//! Where `apc-serve` gets variable values, as `spin up` does: the manifest's defaults, then
//! `SPIN_VARIABLE_<NAME>` lines of `./.env`, then `SPIN_VARIABLE_<NAME>` environment variables,
//! then `--variable name=value` (lowest precedence first). This used to be shell in
//! `scripts/run.sh`; here it is tested.
//!
//! Spin's environment provider reads only the `SPIN_VARIABLE_` names, from the environment and
//! from `.env` (the environment wins). A `.env` line such as `azure_tenant_id=…` is therefore
//! ignored by Spin; we say so at start rather than silently ignore it.

use std::collections::{BTreeMap, HashMap};

use test_host::Manifest;

/// The environment variable Spin reads for application variable `name`.
pub fn env_name(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

/// Parses a `.env` file as data (never executed): `NAME=VALUE` lines, an optional `export `,
/// optional matching quotes around the value, `#` comments and blank lines. Returns the entries
/// (a later line wins) and one note per line it could not read.
pub fn parse_dotenv(text: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let mut entries = BTreeMap::new();
    let mut notes = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            notes.push(format!(".env line {}: no '=' (expected NAME=VALUE); ignored", number + 1));
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            notes.push(format!(".env line {}: {key:?} is not a variable name; ignored", number + 1));
            continue;
        }
        let value = value.trim();
        let value =
            ['"', '\''].iter().find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q))).unwrap_or(value);
        entries.insert(key.to_string(), value.to_string());
    }
    (entries, notes)
}

/// Variable values and what was noticed while gathering them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Gathered {
    /// Values for the host (declared names; flags may add undeclared ones, which the host
    /// then refuses by name).
    pub values: HashMap<String, String>,
    /// Where each value came from (`"environment"`, `".env"`, `"demo"`, `"--variable"`).
    pub sources: BTreeMap<String, &'static str>,
    /// Things a user should know: names Spin would not read.
    pub notes: Vec<String>,
}

/// Gathers the values for the variables `manifest` declares, from `.env` entries, the
/// environment (through `env`), the demo's preset and `--variable` flags, lowest precedence first.
pub fn gather(
    manifest: &Manifest,
    env: impl Fn(&str) -> Option<String>,
    dotenv: &BTreeMap<String, String>,
    preset: &[(String, String)],
    flags: &[(String, String)],
) -> Gathered {
    let mut out = Gathered::default();
    for name in manifest.variables.keys() {
        let key = env_name(name);
        if let Some(v) = env(&key) {
            out.values.insert(name.clone(), v);
            out.sources.insert(name.clone(), "environment");
        } else if let Some(v) = dotenv.get(&key) {
            out.values.insert(name.clone(), v.clone());
            out.sources.insert(name.clone(), ".env");
        }
        // A name Spin would not read: say which one it does read.
        for alias in [name.clone(), name.to_ascii_uppercase()] {
            if dotenv.contains_key(&alias) {
                out.notes.push(format!(".env sets {alias}, which Spin does not read; name it {key}"));
            }
        }
    }
    for key in dotenv.keys() {
        if let Some(rest) = key.strip_prefix("SPIN_VARIABLE_")
            && !manifest.variables.contains_key(&rest.to_ascii_lowercase())
        {
            out.notes
                .push(format!(".env sets {key}, but spin.toml declares no variable {}", rest.to_ascii_lowercase()));
        }
    }
    for (source, list) in [("demo", preset), ("--variable", flags)] {
        for (name, value) in list {
            out.values.insert(name.clone(), value.clone());
            out.sources.insert(name.clone(), source);
        }
    }
    out
}

/// The required variables (no default) that `values` leaves without a value, by name.
pub fn missing_required(manifest: &Manifest, values: &HashMap<String, String>) -> Vec<String> {
    manifest
        .variables
        .iter()
        .filter(|(name, var)| var.required && var.default.is_none() && !values.contains_key(*name))
        .map(|(name, _)| name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
webhook_keys = { required = true }
notify_format = { default = "json" }
azure_tenant_id = { required = true }
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "target/c.wasm"
"#;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn dotenv_lines_are_data() {
        let (entries, notes) = parse_dotenv(
            "# comment\n\nexport SPIN_VARIABLE_A=\"quoted value\"\r\nSPIN_VARIABLE_B='x=y'\n  SPIN_VARIABLE_C = plain  \n\
             just words\nbad-name=1\nSPIN_VARIABLE_A=later $(rm -rf /)\n",
        );
        assert_eq!(entries.get("SPIN_VARIABLE_A").map(String::as_str), Some("later $(rm -rf /)"));
        assert_eq!(entries.get("SPIN_VARIABLE_B").map(String::as_str), Some("x=y"));
        assert_eq!(entries.get("SPIN_VARIABLE_C").map(String::as_str), Some("plain"));
        assert_eq!(entries.len(), 3);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].starts_with(".env line 6:"), "{notes:?}");
        assert!(notes[1].contains("\"bad-name\""), "{notes:?}");
    }

    #[test]
    fn unmatched_quotes_are_kept() {
        let (entries, _) = parse_dotenv("K=\"open\nL='\n");
        assert_eq!(entries["K"], "\"open");
        assert_eq!(entries["L"], "'");
    }

    #[test]
    fn environment_beats_dotenv_beats_default_and_flags_beat_all() {
        let manifest = Manifest::parse(MANIFEST, "app").unwrap();
        let (dotenv, _) = parse_dotenv(
            "SPIN_VARIABLE_WEBHOOK_KEYS=from-dotenv\nSPIN_VARIABLE_AZURE_TENANT_ID=tenant-dotenv\n\
             SPIN_VARIABLE_NOTIFY_FORMAT=teams\n",
        );
        let env = |k: &str| (k == "SPIN_VARIABLE_WEBHOOK_KEYS").then(|| "from-env".to_string());
        let g = gather(&manifest, env, &dotenv, &[], &[]);
        assert_eq!(g.values["webhook_keys"], "from-env");
        assert_eq!(g.sources["webhook_keys"], "environment");
        assert_eq!(g.values["azure_tenant_id"], "tenant-dotenv");
        assert_eq!(g.sources["azure_tenant_id"], ".env");
        assert_eq!(g.values["notify_format"], "teams");
        assert!(g.notes.is_empty(), "{:?}", g.notes);

        // The demo preset wins over both; a flag wins over the preset.
        let g = gather(
            &manifest,
            env,
            &dotenv,
            &pairs(&[("webhook_keys", "demo"), ("notify_format", "slack")]),
            &pairs(&[("notify_format", "json")]),
        );
        assert_eq!(g.values["webhook_keys"], "demo");
        assert_eq!(g.sources["webhook_keys"], "demo");
        assert_eq!(g.values["notify_format"], "json");
        assert_eq!(g.sources["notify_format"], "--variable");

        // Nothing set: the manifest's defaults apply later, in the host.
        let g = gather(&manifest, |_| None, &BTreeMap::new(), &[], &[]);
        assert!(g.values.is_empty());
        let resolved = manifest
            .resolve_variables(&pairs(&[("webhook_keys", "k"), ("azure_tenant_id", "t")]).into_iter().collect());
        assert_eq!(resolved.unwrap()["notify_format"], "json");
    }

    #[test]
    fn names_spin_would_not_read_are_reported() {
        let manifest = Manifest::parse(MANIFEST, "app").unwrap();
        let (dotenv, _) = parse_dotenv("webhook_keys=a\nAZURE_TENANT_ID=b\nSPIN_VARIABLE_TYPO=c\n");
        let g = gather(&manifest, |_| None, &dotenv, &[], &[]);
        // Not taken: Spin would not take them either.
        assert!(g.values.is_empty(), "{:?}", g.values);
        assert_eq!(g.notes.len(), 3, "{:?}", g.notes);
        assert!(g.notes.iter().any(|n| n.contains("webhook_keys") && n.contains("SPIN_VARIABLE_WEBHOOK_KEYS")));
        assert!(g.notes.iter().any(|n| n.contains("AZURE_TENANT_ID") && n.contains("SPIN_VARIABLE_AZURE_TENANT_ID")));
        assert!(g.notes.iter().any(|n| n.contains("SPIN_VARIABLE_TYPO") && n.contains("typo")));
    }

    #[test]
    fn every_missing_required_variable_is_named() {
        let manifest = Manifest::parse(MANIFEST, "app").unwrap();
        assert_eq!(missing_required(&manifest, &HashMap::new()), vec!["azure_tenant_id", "webhook_keys"]);
        let values: HashMap<String, String> = pairs(&[("webhook_keys", "k")]).into_iter().collect();
        assert_eq!(missing_required(&manifest, &values), vec!["azure_tenant_id"]);
    }

    #[test]
    fn undeclared_environment_names_are_not_read() {
        let manifest = Manifest::parse(MANIFEST, "app").unwrap();
        let env = |k: &str| (k == "SPIN_VARIABLE_OTHER").then(|| "x".to_string());
        assert!(gather(&manifest, env, &BTreeMap::new(), &[], &[]).values.is_empty());
    }
}
