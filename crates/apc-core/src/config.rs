//! Configuration from Spin variables (SPEC §9).
//!
//! Every value is trimmed of surrounding white space (secrets pasted from files end in a newline).
//! Loading never stops at the first problem: all problems are collected, by variable name, so
//! `/healthz` and the `500` problem can list them at once. Problems never carry values.

use std::fmt;

use crate::ports::Variables;
use crate::resource_id::{ResourceId, Scope};

/// A secret string: compared and used, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How the webhook authenticates callers.
#[derive(Debug, Clone)]
pub enum WebhookAuth {
    /// One or more keys (rotation); compared in constant time.
    Keys(Vec<Secret>),
    /// `webhook_keys = "insecure-no-auth"`: a local demo with no authentication.
    InsecureNoAuth,
}

/// Format of notifications (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyFormat {
    /// The record as JSON, with an event id.
    Json,
    /// `{"text": …}` for a Slack incoming webhook.
    Slack,
    /// An Adaptive Card message for a Teams workflow webhook.
    Teams,
}

/// One configuration problem: the variable to fix and what is wrong (never its value).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The Spin variable name.
    pub variable: &'static str,
    /// What is wrong, for a person.
    pub message: String,
}

/// Azure connection settings.
#[derive(Debug, Clone)]
pub struct AzureConfig {
    /// Entra tenant id.
    pub tenant_id: String,
    /// Service principal (application) id.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: Secret,
    /// `scheme://host[:port]` of Entra ID.
    pub authority_host: String,
    /// `scheme://host[:port]` of ARM; the token audience follows it.
    pub arm_endpoint: String,
}

/// Packet capture parameters (defaults for every capture; rules may override some, SPEC §5.3).
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureDefaults {
    /// ARM id of the storage account for `.cap` files.
    pub storage_account_id: Option<ResourceId>,
    /// Path on the VM instead of, or beside, storage.
    pub file_path: Option<String>,
    /// 1 to 18000.
    pub time_limit_seconds: u32,
    /// 0 (whole packet) to 4294967295.
    pub bytes_per_packet: u64,
    /// 0 to 4294967295.
    pub bytes_per_session: u64,
    /// Network Watcher filters, a JSON array (validated).
    pub filters: Vec<serde_json::Value>,
    /// Name prefix.
    pub name_prefix: String,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Azure connection.
    pub azure: AzureConfig,
    /// Webhook authentication.
    pub auth: WebhookAuth,
    /// Capture defaults.
    pub capture: CaptureDefaults,
    /// At most this many captures `queued` or `running`.
    pub max_active_captures: u32,
    /// Empty: any scope.
    pub allowed_scopes: Vec<Scope>,
    /// Where notifications go, if anywhere.
    pub notify_url: Option<String>,
    /// Their format.
    pub notify_format: NotifyFormat,
    /// Captures advanced per request.
    pub poll_batch: u32,
    /// Attempts for a create or a notification before giving up.
    pub max_attempts: u32,
    /// Slack after the time limit before we stop a capture ourselves.
    pub capture_grace_seconds: u32,
    /// Delete the Azure capture resource once finished.
    pub delete_finished_captures: bool,
    /// Terminal records are dropped after this.
    pub retention_hours: u32,
    /// Records kept at most.
    pub max_records: u32,
}

/// Hard limits of capture parameters (Network Watcher's, SPEC §9).
pub const TIME_LIMIT_RANGE: (u64, u64) = (1, 18000);
/// `bytesToCapturePerPacket` and `totalBytesPerSession` range.
pub const BYTES_RANGE: (u64, u64) = (0, 4_294_967_295);

/// Every variable the component reads, with its default (`None`: required or empty).
pub const VARIABLES: &[(&str, Option<&str>)] = &[
    ("azure_tenant_id", None),
    ("azure_client_id", None),
    ("azure_client_secret", None),
    ("azure_authority_host", Some("https://login.microsoftonline.com")),
    ("azure_arm_endpoint", Some("https://management.azure.com")),
    ("webhook_keys", None),
    ("storage_account_id", None),
    ("capture_file_path", None),
    ("capture_time_limit_seconds", Some("300")),
    ("capture_bytes_per_packet", Some("0")),
    ("capture_bytes_per_session", Some("1073741824")),
    ("capture_filters", None),
    ("capture_name_prefix", Some("apc")),
    ("max_active_captures", Some("10")),
    ("allowed_scopes", None),
    ("notify_url", None),
    ("notify_host", Some(NOTIFY_HOST_UNSET)),
    ("notify_format", Some("json")),
    ("poll_batch", Some("20")),
    ("max_attempts", Some("8")),
    ("capture_grace_seconds", Some("300")),
    ("delete_finished_captures", Some("true")),
    ("retention_hours", Some("72")),
    ("max_records", Some("200")),
];

/// The literal that disables webhook authentication for a local demo.
pub const INSECURE_NO_AUTH: &str = "insecure-no-auth";

/// Default of `notify_host`. `allowed_outbound_hosts` cannot hold an empty template nor a URL
/// with a path, so `spin.toml` allows `{{ notify_host }}` (the origin of `notify_url`), and this
/// reserved, unroutable name stands in while notifications are off.
pub const NOTIFY_HOST_UNSET: &str = "https://notify.invalid";

struct Reader<'a> {
    vars: &'a dyn Variables,
    problems: Vec<Problem>,
}

impl Reader<'_> {
    fn raw(&self, name: &'static str) -> Option<String> {
        let default = VARIABLES.iter().find(|(n, _)| *n == name).and_then(|(_, d)| *d);
        let v = self.vars.get(name).map(|v| v.trim().to_string());
        match v {
            Some(v) if !v.is_empty() => Some(v),
            _ => default.map(str::to_string),
        }
    }

    fn problem(&mut self, variable: &'static str, message: impl Into<String>) {
        self.problems.push(Problem { variable, message: message.into() });
    }

    fn required(&mut self, name: &'static str) -> String {
        match self.raw(name) {
            Some(v) => v,
            None => {
                self.problem(name, "is required but not set");
                String::new()
            }
        }
    }

    fn number(&mut self, name: &'static str, min: u64, max: u64) -> u64 {
        let raw = self.raw(name).unwrap_or_default();
        match raw.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.problem(name, format!("must be a whole number from {min} to {max}"));
                min
            }
        }
    }

    fn host(&mut self, name: &'static str) -> String {
        let v = self.raw(name).unwrap_or_default();
        match check_origin(&v) {
            Ok(()) => v.trim_end_matches('/').to_string(),
            Err(why) => {
                self.problem(name, why);
                String::new()
            }
        }
    }
}

/// `scheme://host[:port]`, http or https, no path, query or credentials.
pub fn check_origin(v: &str) -> Result<(), String> {
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
        .ok_or_else(|| "must start with https:// (or http:// for a local emulator)".to_string())?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let ok = !rest.is_empty()
        && rest.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'[' | b']'));
    if ok { Ok(()) } else { Err("must be scheme://host[:port] with no path".to_string()) }
}

impl Config {
    /// Read and validate every variable; `Err` lists every problem found.
    pub fn load(vars: &dyn Variables) -> Result<Config, Vec<Problem>> {
        let mut r = Reader { vars, problems: Vec::new() };

        let tenant_id = r.required("azure_tenant_id");
        if !tenant_id.is_empty() && !tenant_id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.') {
            r.problem("azure_tenant_id", "must be a tenant GUID or domain name");
        }
        let client_id = r.required("azure_client_id");
        let client_secret = Secret::new(r.required("azure_client_secret"));
        let authority_host = r.host("azure_authority_host");
        let arm_endpoint = r.host("azure_arm_endpoint");

        let auth = match r.raw("webhook_keys") {
            None => {
                r.problem(
                    "webhook_keys",
                    "is required: set one or more comma-separated keys (or insecure-no-auth for a local demo)",
                );
                WebhookAuth::Keys(Vec::new())
            }
            Some(v) if v == INSECURE_NO_AUTH => WebhookAuth::InsecureNoAuth,
            Some(v) => {
                let keys: Vec<Secret> =
                    v.split(',').map(str::trim).filter(|k| !k.is_empty()).map(Secret::new).collect();
                if keys.is_empty() {
                    r.problem("webhook_keys", "holds no key");
                }
                if keys.iter().any(|k| k.expose().len() < 16) {
                    r.problem("webhook_keys", "every key must be at least 16 characters");
                }
                // The switch's name is public: as a key in a list it would open the routes to anyone.
                if keys.iter().any(|k| k.expose() == INSECURE_NO_AUTH) {
                    r.problem("webhook_keys", "insecure-no-auth must stand alone; it is not a key");
                }
                WebhookAuth::Keys(keys)
            }
        };

        let storage_account_id = match r.raw("storage_account_id") {
            None => None,
            Some(v) => match ResourceId::parse(&v) {
                Ok(id) if id.is_type("Microsoft.Storage", &["storageAccounts"]) => Some(id),
                Ok(_) => {
                    r.problem("storage_account_id", "is not a Microsoft.Storage/storageAccounts id");
                    None
                }
                Err(e) => {
                    r.problem("storage_account_id", format!("is not a valid ARM id: {e}"));
                    None
                }
            },
        };
        let file_path = r.raw("capture_file_path");
        if let Some(p) = &file_path
            && (!p.ends_with(".cap") || p.chars().any(|c| c.is_control()))
        {
            r.problem("capture_file_path", "must be a path ending in .cap");
        }
        if storage_account_id.is_none()
            && file_path.is_none()
            && !r.problems.iter().any(|p| p.variable == "storage_account_id")
        {
            r.problem("storage_account_id", "is required unless capture_file_path is set");
        }
        let time_limit_seconds = r.number("capture_time_limit_seconds", TIME_LIMIT_RANGE.0, TIME_LIMIT_RANGE.1) as u32;
        let bytes_per_packet = r.number("capture_bytes_per_packet", BYTES_RANGE.0, BYTES_RANGE.1);
        let bytes_per_session = r.number("capture_bytes_per_session", BYTES_RANGE.0, BYTES_RANGE.1);
        let filters = match r.raw("capture_filters") {
            None => Vec::new(),
            Some(v) => match parse_filters(&v) {
                Ok(f) => f,
                Err(why) => {
                    r.problem("capture_filters", why);
                    Vec::new()
                }
            },
        };
        let name_prefix = r.raw("capture_name_prefix").unwrap_or_default();
        if name_prefix.is_empty()
            || name_prefix.len() > 16
            || !name_prefix.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            || !name_prefix.as_bytes()[0].is_ascii_alphanumeric()
        {
            r.problem("capture_name_prefix", "must be 1 to 16 letters, digits or '-', starting with a letter or digit");
        }

        let max_active_captures = r.number("max_active_captures", 1, 10_000) as u32;
        let mut allowed_scopes = Vec::new();
        if let Some(v) = r.raw("allowed_scopes") {
            for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match Scope::parse(s) {
                    Ok(scope) => allowed_scopes.push(scope),
                    Err(e) => r.problem(
                        "allowed_scopes",
                        format!("holds an entry that is not /subscriptions/{{id}}[/resourceGroups/{{name}}]: {e}"),
                    ),
                }
            }
        }
        let notify_host = r.raw("notify_host").unwrap_or_default();
        let notify_url = match r.raw("notify_url") {
            None => None,
            Some(v) => {
                if !check_notify_url(&v) {
                    r.problem("notify_url", "must be an http(s) URL without credentials");
                    None
                } else if !origin_of(&v).eq_ignore_ascii_case(notify_host.trim_end_matches('/')) {
                    r.problem(
                        "notify_host",
                        "must be the scheme://host[:port] of notify_url, so that spin.toml allows the destination",
                    );
                    None
                } else {
                    Some(v)
                }
            }
        };
        let notify_format = match r.raw("notify_format").as_deref() {
            Some("json") | None => NotifyFormat::Json,
            Some("slack") => NotifyFormat::Slack,
            Some("teams") => NotifyFormat::Teams,
            Some(_) => {
                r.problem("notify_format", "must be json, slack or teams");
                NotifyFormat::Json
            }
        };
        let poll_batch = r.number("poll_batch", 1, 1000) as u32;
        let max_attempts = r.number("max_attempts", 1, 100) as u32;
        let capture_grace_seconds = r.number("capture_grace_seconds", 0, 86_400) as u32;
        let delete_finished_captures = match r.raw("delete_finished_captures").as_deref() {
            Some("true") | None => true,
            Some("false") => false,
            Some(_) => {
                r.problem("delete_finished_captures", "must be true or false");
                true
            }
        };
        let retention_hours = r.number("retention_hours", 1, 24 * 365) as u32;
        let max_records = r.number("max_records", 10, 400) as u32;
        if max_records < max_active_captures {
            r.problem("max_records", "must be at least max_active_captures");
        }

        if !r.problems.is_empty() {
            return Err(r.problems);
        }
        Ok(Config {
            azure: AzureConfig { tenant_id, client_id, client_secret, authority_host, arm_endpoint },
            auth,
            capture: CaptureDefaults {
                storage_account_id,
                file_path,
                time_limit_seconds,
                bytes_per_packet,
                bytes_per_session,
                filters,
                name_prefix,
            },
            max_active_captures,
            allowed_scopes,
            notify_url,
            notify_format,
            poll_batch,
            max_attempts,
            capture_grace_seconds,
            delete_finished_captures,
            retention_hours,
            max_records,
        })
    }
}

/// `scheme://authority` of an http(s) URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..].find(['/', '?', '#']).map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

fn check_notify_url(v: &str) -> bool {
    let Some(rest) = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://")) else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    !authority.is_empty() && !authority.contains('@') && !v.chars().any(|c| c.is_control() || c == ' ')
}

/// Parse and validate a Network Watcher filter list (a JSON array of objects).
pub fn parse_filters(v: &str) -> Result<Vec<serde_json::Value>, String> {
    let parsed: serde_json::Value =
        serde_json::from_str(v).map_err(|_| "must be a JSON array of filters".to_string())?;
    let serde_json::Value::Array(items) = parsed else {
        return Err("must be a JSON array of filters".to_string());
    };
    if items.len() > 10 {
        return Err("holds more than 10 filters".to_string());
    }
    for item in &items {
        let serde_json::Value::Object(map) = item else {
            return Err("every filter must be a JSON object".to_string());
        };
        for (k, val) in map {
            match k.as_str() {
                "protocol" => {
                    if !matches!(val.as_str(), Some("TCP" | "UDP" | "Any")) {
                        return Err("filter protocol must be TCP, UDP or Any".to_string());
                    }
                }
                "localIPAddress" | "remoteIPAddress" | "localPort" | "remotePort" => {
                    let ok = val.as_str().is_some_and(|s| {
                        !s.is_empty()
                            && s.len() <= 256
                            && s.bytes().all(|c| c.is_ascii_hexdigit() || matches!(c, b'.' | b':' | b'-' | b';'))
                    });
                    if !ok {
                        return Err(format!("filter {k} must be an address or port, a range a-b, or a list a;b;"));
                    }
                }
                _ => return Err(format!("filter field {k} is not a Network Watcher filter field")),
            }
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Vars(HashMap<&'static str, &'static str>);
    impl Variables for Vars {
        fn get(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|s| s.to_string())
        }
    }

    fn minimal() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("azure_tenant_id", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("azure_client_id", "11111111-2222-3333-4444-555555555555"),
            ("azure_client_secret", "  s3cret-value\n"),
            ("webhook_keys", "0123456789abcdef, fedcba9876543210"),
            (
                "storage_account_id",
                "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st",
            ),
        ])
    }

    #[test]
    fn defaults_and_trimming() {
        let c = Config::load(&Vars(minimal())).unwrap();
        assert_eq!(c.azure.client_secret.expose(), "s3cret-value");
        assert_eq!(c.azure.arm_endpoint, "https://management.azure.com");
        assert_eq!(c.capture.time_limit_seconds, 300);
        assert_eq!(c.capture.bytes_per_session, 1_073_741_824);
        assert_eq!(c.max_records, 200);
        assert!(matches!(&c.auth, WebhookAuth::Keys(k) if k.len() == 2));
        assert!(c.notify_url.is_none());
    }

    #[test]
    fn all_problems_at_once_without_values() {
        let mut v = minimal();
        v.remove("azure_client_secret");
        v.insert("capture_time_limit_seconds", "99999");
        v.insert("notify_format", "pager");
        v.insert("azure_arm_endpoint", "ftp://x/y");
        let problems = Config::load(&Vars(v)).unwrap_err();
        let names: Vec<_> = problems.iter().map(|p| p.variable).collect();
        assert_eq!(names, ["azure_client_secret", "azure_arm_endpoint", "capture_time_limit_seconds", "notify_format"]);
        assert!(problems.iter().all(|p| !p.message.contains("99999") && !p.message.contains("pager")));
    }

    #[test]
    fn insecure_no_auth_only_literally() {
        let mut v = minimal();
        v.insert("webhook_keys", "insecure-no-auth");
        assert!(matches!(Config::load(&Vars(v.clone())).unwrap().auth, WebhookAuth::InsecureNoAuth));
        // Any other spelling is an ordinary key, so authentication stays on.
        v.insert("webhook_keys", "Insecure-No-Auth");
        assert!(matches!(Config::load(&Vars(v)).unwrap().auth, WebhookAuth::Keys(k) if k.len() == 1));
    }

    #[test]
    fn notify_url_must_match_notify_host() {
        let mut v = minimal();
        v.insert("notify_url", "https://hooks.example.com/services/T0/B0/x");
        let problems = Config::load(&Vars(v.clone())).unwrap_err();
        assert_eq!(problems[0].variable, "notify_host");
        v.insert("notify_host", "https://hooks.example.com");
        let c = Config::load(&Vars(v)).unwrap();
        assert_eq!(c.notify_url.as_deref(), Some("https://hooks.example.com/services/T0/B0/x"));
    }

    #[test]
    fn filters_are_validated() {
        assert!(parse_filters(r#"[{"protocol":"TCP","localPort":"80;443;"}]"#).is_ok());
        assert!(parse_filters(r#"[{"protocol":"ICMP"}]"#).is_err());
        assert!(parse_filters(r#"{"protocol":"TCP"}"#).is_err());
        assert!(parse_filters(r#"[{"evil":"x"}]"#).is_err());
    }
}
