//! `spin.toml` (manifest version 2): the parts a Spin HTTP application uses, checked the way
//! Spin checks them when it loads an app, so that a manifest Spin would refuse fails the tests.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a manifest, or the variables given for it, cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {path}: {source}")]
    Read {
        /// The manifest path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not have the manifest's shape.
    #[error("manifest {path} is malformed: {message}")]
    Syntax {
        /// The manifest path.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// The manifest parses, but Spin would refuse to load it.
    #[error("invalid manifest: {0}")]
    Invalid(String),
    /// A `{{ name }}` template names no application variable.
    #[error("{context}: template refers to unknown variable {name:?}")]
    UnknownVariable {
        /// Where the template is.
        context: String,
        /// The unknown name.
        name: String,
    },
    /// A template is not well formed (`{{` without `}}`, a bad name).
    #[error("{context}: malformed template {template:?}: {reason}")]
    BadTemplate {
        /// Where the template is.
        context: String,
        /// The template text.
        template: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A required variable has neither an override nor a default.
    #[error("variable {0:?} is required but has no value")]
    MissingRequired(String),
    /// A variable has no default, is not required, and no value was given.
    #[error("variable {0:?} has no default and no value was given")]
    NoValue(String),
    /// A value was given for a variable the manifest does not declare.
    #[error("a value was given for variable {0:?}, which the manifest does not declare")]
    UndeclaredOverride(String),
    /// An `allowed_outbound_hosts` entry is not `scheme://host[:port]` after substitution.
    #[error("allowed_outbound_hosts entry {entry:?} (from {template:?}) is invalid: {reason}")]
    BadAllowedHost {
        /// The template as written in the manifest.
        template: String,
        /// The value after substitution.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One application variable from `[variables]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// The default value, if any.
    #[serde(default)]
    pub default: Option<String>,
    /// Whether a value must be supplied.
    #[serde(default)]
    pub required: bool,
    /// Whether the value is a secret (only recorded; Spin hides it from logs).
    #[serde(default)]
    pub secret: bool,
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTrigger {
    /// The route, e.g. `/...` or `/api/...` or `/exact`.
    pub route: String,
    /// The component id it runs.
    pub component: String,
    /// Trigger executor options (unused here).
    #[serde(default)]
    pub executor: Option<toml::Value>,
}

impl HttpTrigger {
    /// Whether `path` (without query) is served by this trigger, as Spin's router matches
    /// a route: `/prefix/...` matches the prefix and everything below it, otherwise exact.
    pub fn matches(&self, path: &str) -> bool {
        match self.route.strip_suffix("/...") {
            Some(prefix) => {
                path == prefix
                    || prefix.is_empty()
                    || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
            }
            None => path == self.route.trim_end_matches('/') || path == self.route,
        }
    }
}

/// One `[component.<id>]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentSpec {
    /// The `.wasm` path, relative to the manifest's folder.
    pub source: String,
    /// A description.
    #[serde(default)]
    pub description: Option<String>,
    /// The raw `allowed_outbound_hosts` entries (templates not yet substituted).
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Key-value store labels the component may open.
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    /// Component variables: name → template over application variables.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Environment variables given to the component.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// `spin build` settings (unused here).
    #[serde(default)]
    pub build: Option<toml::Value>,
    /// Files to mount (unsupported by this host; must be empty).
    #[serde(default)]
    pub files: Option<toml::Value>,
    /// SQLite databases (unsupported by this host; must be empty).
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    /// AI models (unsupported by this host; must be empty).
    #[serde(default)]
    pub ai_models: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    spin_manifest_version: i64,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, Variable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, ComponentSpec>,
}

#[derive(Debug, Deserialize)]
struct RawApplication {
    name: String,
    #[serde(default)]
    version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<HttpTrigger>,
}

/// A parsed, statically checked `spin.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The manifest's folder: component sources are relative to it.
    pub dir: PathBuf,
    /// `application.name`.
    pub name: String,
    /// `application.version`.
    pub version: Option<String>,
    /// `[variables]`.
    pub variables: BTreeMap<String, Variable>,
    /// `[[trigger.http]]`.
    pub http_triggers: Vec<HttpTrigger>,
    /// `[component.*]`, by id.
    pub components: BTreeMap<String, ComponentSpec>,
}

impl Manifest {
    /// Reads and checks a manifest file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ManifestError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| ManifestError::Read { path: path.to_path_buf(), source })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        Self::parse(&text, dir).map_err(|e| match e {
            ManifestError::Syntax { message, .. } => ManifestError::Syntax { path: path.to_path_buf(), message },
            other => other,
        })
    }

    /// Parses and checks manifest text; `dir` is where component sources are relative to.
    pub fn parse(text: &str, dir: impl Into<PathBuf>) -> Result<Self, ManifestError> {
        let raw: RawManifest =
            toml::from_str(text).map_err(|e| ManifestError::Syntax { path: PathBuf::new(), message: e.to_string() })?;
        if raw.spin_manifest_version != 2 {
            return Err(ManifestError::Invalid(format!(
                "spin_manifest_version must be 2, found {}",
                raw.spin_manifest_version
            )));
        }
        let manifest = Manifest {
            dir: dir.into(),
            name: raw.application.name,
            version: raw.application.version,
            variables: raw.variables,
            http_triggers: raw.trigger.http,
            components: raw.component,
        };
        manifest.check()?;
        Ok(manifest)
    }

    /// The checks Spin makes before any variable value is known.
    fn check(&self) -> Result<(), ManifestError> {
        for (name, var) in &self.variables {
            check_variable_name(name)?;
            if var.required && var.default.is_some() {
                return Err(ManifestError::Invalid(format!(
                    "variable {name:?} cannot be both required and have a default"
                )));
            }
        }
        for trigger in &self.http_triggers {
            if !self.components.contains_key(&trigger.component) {
                return Err(ManifestError::Invalid(format!(
                    "trigger route {:?} names unknown component {:?}",
                    trigger.route, trigger.component
                )));
            }
            if !trigger.route.starts_with('/') {
                return Err(ManifestError::Invalid(format!("trigger route {:?} must start with '/'", trigger.route)));
            }
        }
        for (id, component) in &self.components {
            for (name, template) in &component.variables {
                check_variable_name(name)?;
                let context = format!("component {id:?} variable {name:?}");
                parse_template(template, &context, &self.variables)?;
            }
            for template in &component.allowed_outbound_hosts {
                let context = format!("component {id:?} allowed_outbound_hosts");
                parse_template(template, &context, &self.variables)?;
            }
            for label in &component.key_value_stores {
                // Without a runtime config file, Spin only knows the default store.
                if label != "default" {
                    return Err(ManifestError::Invalid(format!(
                        "component {id:?} uses key-value store {label:?}, which needs a runtime \
                         config this host does not have"
                    )));
                }
            }
            if !component.sqlite_databases.is_empty() || !component.ai_models.is_empty() {
                return Err(ManifestError::Invalid(format!(
                    "component {id:?} uses SQLite or AI models, which this host does not provide"
                )));
            }
        }
        Ok(())
    }

    /// The component to serve: `id` if given, else the only component.
    pub fn component(&self, id: Option<&str>) -> Result<(&str, &ComponentSpec), ManifestError> {
        match id {
            Some(id) => self
                .components
                .get_key_value(id)
                .map(|(k, v)| (k.as_str(), v))
                .ok_or_else(|| ManifestError::Invalid(format!("no component {id:?}"))),
            None => {
                let mut all = self.components.iter();
                match (all.next(), all.next()) {
                    (Some((k, v)), None) => Ok((k.as_str(), v)),
                    (None, _) => Err(ManifestError::Invalid("no component".into())),
                    _ => {
                        Err(ManifestError::Invalid("several components: choose one with HostOptions::component".into()))
                    }
                }
            }
        }
    }

    /// Resolves every application variable: `overrides` (as `SPIN_VARIABLE_*` or
    /// `--variable` would give) win over defaults; a required variable without a value is
    /// an error, as is an override for an undeclared variable (a typo in a test).
    pub fn resolve_variables(
        &self,
        overrides: &HashMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ManifestError> {
        if let Some(unknown) = overrides.keys().filter(|k| !self.variables.contains_key(*k)).min() {
            return Err(ManifestError::UndeclaredOverride(unknown.clone()));
        }
        let mut values = BTreeMap::new();
        for (name, var) in &self.variables {
            let value = match (overrides.get(name), &var.default) {
                (Some(v), _) => v.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) if var.required => {
                    return Err(ManifestError::MissingRequired(name.clone()));
                }
                (None, None) => return Err(ManifestError::NoValue(name.clone())),
            };
            values.insert(name.clone(), value);
        }
        Ok(values)
    }

    /// Renders a component's variables with resolved application variables.
    pub fn component_variables(
        &self,
        component_id: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ManifestError> {
        let (_, component) = self.component(Some(component_id))?;
        component
            .variables
            .iter()
            .map(|(name, template)| {
                let context = format!("component {component_id:?} variable {name:?}");
                Ok((name.clone(), render(template, &context, &self.variables, values)?))
            })
            .collect()
    }

    /// Substitutes and parses a component's `allowed_outbound_hosts`, once, as Spin does at
    /// load. An empty value after substitution is refused, as Spin refuses it.
    pub fn allowed_hosts(
        &self,
        component_id: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<Vec<AllowedHost>, ManifestError> {
        let (_, component) = self.component(Some(component_id))?;
        component
            .allowed_outbound_hosts
            .iter()
            .map(|template| {
                let context = format!("component {component_id:?} allowed_outbound_hosts");
                let entry = render(template, &context, &self.variables, values)?;
                AllowedHost::parse(&entry).map_err(|reason| ManifestError::BadAllowedHost {
                    template: template.clone(),
                    entry,
                    reason,
                })
            })
            .collect()
    }
}

/// Spin's variable names: lowercase ASCII letters, digits and `_`, starting with a letter.
fn check_variable_name(name: &str) -> Result<(), ManifestError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ManifestError::Invalid(format!(
            "variable name {name:?} must be lowercase letters, digits and '_', starting with a letter"
        )))
    }
}

/// A piece of a template: literal text or a variable reference.
enum Part<'a> {
    Literal(&'a str),
    Var(&'a str),
}

/// Splits `template` into parts and checks that every reference names a declared variable.
fn parse_template<'a>(
    template: &'a str,
    context: &str,
    declared: &BTreeMap<String, Variable>,
) -> Result<Vec<Part<'a>>, ManifestError> {
    let bad = |reason: &str| ManifestError::BadTemplate {
        context: context.to_string(),
        template: template.to_string(),
        reason: reason.to_string(),
    };
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(Part::Literal(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| bad("'{{' without '}}'"))?;
        let name = after[..end].trim();
        if name.is_empty() {
            return Err(bad("empty '{{ }}'"));
        }
        if !declared.contains_key(name) {
            return Err(ManifestError::UnknownVariable { context: context.to_string(), name: name.to_string() });
        }
        parts.push(Part::Var(name));
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return Err(bad("'}}' without '{{'"));
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest));
    }
    Ok(parts)
}

fn render(
    template: &str,
    context: &str,
    declared: &BTreeMap<String, Variable>,
    values: &BTreeMap<String, String>,
) -> Result<String, ManifestError> {
    let mut out = String::new();
    for part in parse_template(template, context, declared)? {
        match part {
            Part::Literal(text) => out.push_str(text),
            Part::Var(name) => out.push_str(values.get(name).ok_or_else(|| ManifestError::NoValue(name.to_string()))?),
        }
    }
    Ok(out)
}

/// The host part of an allowed-host entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any host.
    Any,
    /// `*.example.com`: any host ending in `.example.com`.
    Subdomain(String),
    /// One host name or IP literal (compared case-insensitively).
    Exact(String),
}

/// The port part of an allowed-host entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortPattern {
    /// `*`: any port.
    Any,
    /// One port (the scheme's default when none is written).
    Port(u16),
    /// `a..b`: ports from `a` up to, not including, `b`, as Spin reads a range.
    Range(u16, u16),
}

/// One parsed `allowed_outbound_hosts` entry: `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// The entry as written after substitution.
    pub original: String,
    /// The scheme, or `None` for `*`.
    pub scheme: Option<String>,
    /// The host pattern.
    pub host: HostPattern,
    /// The port pattern.
    pub port: PortPattern,
}

/// The port a scheme uses when a URL names none.
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "mysql" => Some(3306),
        "postgres" => Some(5432),
        _ => None,
    }
}

impl AllowedHost {
    /// Parses `scheme://host[:port]` (a single trailing `/` is tolerated, any other path is
    /// not), with `*` wildcards for scheme, host (or a `*.` prefix) and port, and `a..b` ranges.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let trimmed = entry.trim();
        if trimmed.is_empty() {
            return Err("empty entry (Spin fails to load an empty allowed host)".into());
        }
        let (scheme, rest) = trimmed.split_once("://").ok_or("no scheme (expected e.g. 'https://' or '*://')")?;
        let scheme = match scheme {
            "*" => None,
            s if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic()) => Some(s.to_ascii_lowercase()),
            s => return Err(format!("scheme {s:?} is not alphabetic")),
        };
        let authority = match rest.split_once('/') {
            Some((authority, "")) => authority,
            Some(_) => return Err("has a path, which is not allowed".into()),
            None => rest,
        };
        if authority.contains(['?', '#', '@']) {
            return Err("has a query, fragment or user info, which is not allowed".into());
        }
        let (host, port) = split_host_port(authority)?;
        if host.is_empty() {
            return Err("has no host".into());
        }
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            if domain.is_empty() || domain.contains('*') {
                return Err("wildcards are allowed only as a leading '*.'".into());
            }
            HostPattern::Subdomain(format!(".{}", domain.to_ascii_lowercase()))
        } else if host.contains('*') {
            return Err("wildcards are allowed only as a leading '*.'".into());
        } else {
            HostPattern::Exact(host.to_ascii_lowercase())
        };
        let port = match port {
            None => {
                let scheme = scheme.as_deref().ok_or("a '*' scheme needs an explicit port")?;
                PortPattern::Port(default_port(scheme).ok_or_else(|| format!("scheme {scheme:?} has no default port"))?)
            }
            Some("*") => PortPattern::Any,
            Some(p) => match p.split_once("..") {
                Some((a, b)) => PortPattern::Range(parse_port(a)?, parse_port(b)?),
                None => PortPattern::Port(parse_port(p)?),
            },
        };
        Ok(Self { original: trimmed.to_string(), scheme, host, port })
    }

    /// Whether a request to `scheme://host[:port]` is allowed by this entry.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme = scheme.to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Subdomain(suffix) => host.ends_with(suffix.as_str()),
            HostPattern::Exact(h) => h.trim_start_matches('[').trim_end_matches(']') == host,
        };
        let port_ok = match (&self.port, port.or_else(|| default_port(&scheme))) {
            (PortPattern::Any, _) => true,
            (_, None) => false,
            (PortPattern::Port(p), Some(q)) => *p == q,
            (PortPattern::Range(a, b), Some(q)) => (*a..*b).contains(&q),
        };
        scheme_ok && host_ok && port_ok
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    text.parse().map_err(|_| format!("port {text:?} is not a number from 0 to 65535"))
}

/// Splits `host[:port]`, keeping a bracketed IPv6 literal whole.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if authority.starts_with('[') {
        let end = authority.find(']').ok_or("unclosed '[' in host")?;
        let (host, rest) = authority.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if rest.is_empty() => Ok((host, None)),
            None => Err("unexpected text after ']'".into()),
        };
    }
    Ok(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_host_forms() {
        let h = AllowedHost::parse("http://127.0.0.1:8089").unwrap();
        assert!(h.allows("http", "127.0.0.1", Some(8089)));
        assert!(!h.allows("http", "127.0.0.1", Some(8090)));
        assert!(!h.allows("https", "127.0.0.1", Some(8089)));
        let h = AllowedHost::parse("https://management.azure.com").unwrap();
        assert!(h.allows("https", "management.azure.com", None));
        assert!(h.allows("https", "Management.Azure.com", Some(443)));
        assert!(!h.allows("https", "management.azure.com", Some(8443)));
        assert!(!h.allows("http", "management.azure.com", None));
        let h = AllowedHost::parse("https://*.example.com:*").unwrap();
        assert!(h.allows("https", "a.example.com", Some(1)));
        assert!(!h.allows("https", "example.com", None));
        let h = AllowedHost::parse("*://localhost:3000..3002").unwrap();
        assert!(h.allows("http", "localhost", Some(3001)));
        assert!(!h.allows("http", "localhost", Some(3002)));
        assert!(AllowedHost::parse("https://a.example/").is_ok());
        for bad in [
            "",
            "   ",
            "a.example",
            "https://a.example/path",
            "https://",
            "https://a.example:x",
            "https://a*.example",
            "*://a.example",
            "ht1p://a.example",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn routes() {
        let t = |route: &str| HttpTrigger { route: route.into(), component: "c".into(), executor: None };
        assert!(t("/...").matches("/"));
        assert!(t("/...").matches("/healthz"));
        assert!(t("/api/...").matches("/api"));
        assert!(t("/api/...").matches("/api/x/y"));
        assert!(!t("/api/...").matches("/apix"));
        assert!(t("/exact").matches("/exact"));
        assert!(!t("/exact").matches("/exact/more"));
    }

    #[test]
    fn templates() {
        let declared: BTreeMap<String, Variable> =
            [("a".to_string(), Variable { default: Some("x".into()), required: false, secret: false })].into();
        let values: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
        assert_eq!(render("p{{ a }}q{{a}}", "t", &declared, &values).unwrap(), "p1q1");
        assert!(matches!(render("{{ b }}", "t", &declared, &values), Err(ManifestError::UnknownVariable { .. })));
        assert!(matches!(render("{{ a", "t", &declared, &values), Err(ManifestError::BadTemplate { .. })));
    }
}
