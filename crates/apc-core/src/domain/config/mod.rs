//! Configuration from Spin variables (SPEC §9).
//!
//! Every value is trimmed of surrounding white space (secrets pasted from files end in a newline).
//! Each section ([`azure`], [`auth`], [`capture`], [`notify`]) reads its own variables; loading
//! never stops at the first problem: all problems are collected, by variable name, so `/healthz`
//! and the `500` problem can list them at once. Problems never carry values.
//!
//! Problems come in two kinds ([`Effect`]): those that stop captures (Azure credentials and
//! endpoints, webhook keys, capture parameters and limits) and those that only turn
//! notifications off. A configuration with only the second kind still loads, so a wrong
//! notification setting never costs a capture.

pub mod auth;
pub mod azure;
pub mod capture;
pub mod notify;
pub mod summary;

use std::fmt;

use crate::domain::resource_id::Scope;
use crate::ports::Variables;

pub use auth::{ACTION_GROUP_APP_ID, AuthMode, AuthPolicy, DEFAULT_ROLE, EntraConfig, INSECURE_NO_AUTH, WebhookAuth};
pub use azure::AzureConfig;
pub use capture::{BYTES_RANGE, CaptureDefaults, TIME_LIMIT_RANGE, parse_filters};
pub use notify::{NOTIFY_HOST_UNSET, NotifyConfig, NotifyFormat, NotifyTarget};
pub use summary::{BlobHost, SummaryConfig};

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

/// What a problem costs while it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// No capture can be started or followed (keyed routes answer `500`).
    StopsCaptures,
    /// Captures go on; notifications are not sent.
    NotificationsOnly,
    /// Captures and notifications go on; notifications carry no traffic summary or download
    /// link, and say why.
    SummariesOnly,
}

/// The section a variable belongs to, which decides the [`Effect`] of its problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Entra ID and ARM: credentials and endpoints.
    Azure,
    /// Webhook keys and Entra ID tokens: who may call.
    Auth,
    /// Capture parameters, storage, limits and housekeeping.
    Capture,
    /// Notification settings.
    Notify,
    /// The capture file's summary and download link (issue 10).
    Summary,
}

impl Section {
    /// What a problem in this section costs.
    pub fn effect(self) -> Effect {
        match self {
            Section::Notify => Effect::NotificationsOnly,
            Section::Summary => Effect::SummariesOnly,
            Section::Azure | Section::Auth | Section::Capture => Effect::StopsCaptures,
        }
    }
}

/// The default of a variable, as `spin.toml` and the README state it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// Must be set (`required = true`).
    Required,
    /// Empty (`default = ""`): the feature is off or another variable stands in.
    Empty,
    /// This value.
    Value(&'static str),
}

/// One Spin variable the component reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    /// Its name.
    pub name: &'static str,
    /// Its default.
    pub default: DefaultValue,
    /// Declared `secret = true`.
    pub secret: bool,
    /// Its section.
    pub section: Section,
}

const fn var(name: &'static str, default: DefaultValue, section: Section) -> Variable {
    Variable { name, default, secret: false, section }
}

const fn secret(name: &'static str, section: Section) -> Variable {
    Variable { name, default: DefaultValue::Required, secret: true, section }
}

/// Every variable the component reads: the one list `spin.toml` and the README must agree with
/// (a test checks).
pub const VARIABLES: &[Variable] = &[
    var("azure_tenant_id", DefaultValue::Required, Section::Azure),
    var("azure_client_id", DefaultValue::Required, Section::Azure),
    secret("azure_client_secret", Section::Azure),
    var("azure_authority_host", DefaultValue::Value("https://login.microsoftonline.com"), Section::Azure),
    var("azure_arm_endpoint", DefaultValue::Value("https://management.azure.com"), Section::Azure),
    secret("webhook_keys", Section::Auth),
    var("alerts_auth", DefaultValue::Value("keys"), Section::Auth),
    var("routes_auth", DefaultValue::Value("keys"), Section::Auth),
    var("entra_audience", DefaultValue::Empty, Section::Auth),
    var("entra_tenant_id", DefaultValue::Empty, Section::Auth),
    var("entra_required_role", DefaultValue::Value(auth::DEFAULT_ROLE), Section::Auth),
    var("storage_account_id", DefaultValue::Empty, Section::Capture),
    var("capture_file_path", DefaultValue::Empty, Section::Capture),
    var("capture_time_limit_seconds", DefaultValue::Value("300"), Section::Capture),
    var("capture_bytes_per_packet", DefaultValue::Value("0"), Section::Capture),
    var("capture_bytes_per_session", DefaultValue::Value("1073741824"), Section::Capture),
    var("capture_filters", DefaultValue::Empty, Section::Capture),
    var("capture_name_prefix", DefaultValue::Value("apc"), Section::Capture),
    var("max_active_captures", DefaultValue::Value("10"), Section::Capture),
    var("allowed_scopes", DefaultValue::Empty, Section::Capture),
    var("notify_url", DefaultValue::Empty, Section::Notify),
    var("notify_host", DefaultValue::Value(NOTIFY_HOST_UNSET), Section::Notify),
    var("notify_format", DefaultValue::Value("json"), Section::Notify),
    var("poll_batch", DefaultValue::Value("20"), Section::Capture),
    var("max_attempts", DefaultValue::Value("8"), Section::Capture),
    var("capture_grace_seconds", DefaultValue::Value("300"), Section::Capture),
    var("delete_finished_captures", DefaultValue::Value("true"), Section::Capture),
    var("retention_hours", DefaultValue::Value("72"), Section::Capture),
    var("max_records", DefaultValue::Value("200"), Section::Capture),
    var("coalesce_window_seconds", DefaultValue::Value("300"), Section::Capture),
    var("capture_summary_max_bytes", DefaultValue::Value("8388608"), Section::Summary),
    var("download_link_hours", DefaultValue::Value("24"), Section::Summary),
    var("storage_blob_host", DefaultValue::Value("https://*.blob.core.windows.net"), Section::Summary),
];

/// The declaration of `name`, if the component reads it.
pub fn declared(name: &str) -> Option<&'static Variable> {
    VARIABLES.iter().find(|v| v.name == name)
}

/// One configuration problem: the variable to fix and what is wrong (never its value).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    // `message` before `variable`: the order answers have always had (sorted keys).
    /// What is wrong, for a person.
    pub message: String,
    /// The Spin variable name.
    pub variable: &'static str,
    /// What it costs (not shown: answers keep `variable` and `message`).
    #[serde(skip)]
    pub effect: Effect,
}

impl Problem {
    /// A problem in `variable` (its effect follows the variable's section).
    pub fn new(variable: &'static str, message: impl Into<String>) -> Self {
        let effect = declared(variable).map_or(Effect::StopsCaptures, |v| v.section.effect());
        Problem { variable, message: message.into(), effect }
    }
}

/// Reads variables for the sections and collects their problems.
pub(crate) struct Reader<'a> {
    vars: &'a dyn Variables,
    problems: Vec<Problem>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(vars: &'a dyn Variables) -> Self {
        Reader { vars, problems: Vec::new() }
    }

    /// The trimmed value, or the default when unset or blank; `None` when neither.
    pub(crate) fn raw(&self, name: &'static str) -> Option<String> {
        let v = self.vars.get(name).map(|v| v.trim().to_string());
        match v {
            Some(v) if !v.is_empty() => Some(v),
            _ => match declared(name).map(|v| v.default) {
                Some(DefaultValue::Value(d)) => Some(d.to_string()),
                _ => None,
            },
        }
    }

    pub(crate) fn problem(&mut self, variable: &'static str, message: impl Into<String>) {
        // Sections share some variables (the tenant, the authority host): name each problem once.
        let p = Problem::new(variable, message);
        if !self.problems.contains(&p) {
            self.problems.push(p);
        }
    }

    pub(crate) fn required(&mut self, name: &'static str) -> Option<String> {
        let v = self.raw(name);
        if v.is_none() {
            self.problem(name, "is required but not set");
        }
        v
    }

    pub(crate) fn number(&mut self, name: &'static str, min: u64, max: u64) -> Option<u64> {
        let raw = self.raw(name).unwrap_or_default();
        match raw.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.problem(name, format!("must be a whole number from {min} to {max}"));
                None
            }
        }
    }

    /// A `u32` setting in `min..=max` (both within `u32`).
    pub(crate) fn small(&mut self, name: &'static str, min: u32, max: u32) -> Option<u32> {
        self.number(name, min.into(), max.into()).and_then(|n| u32::try_from(n).ok())
    }

    pub(crate) fn flag(&mut self, name: &'static str) -> Option<bool> {
        match self.raw(name).as_deref() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => {
                self.problem(name, "must be true or false");
                None
            }
        }
    }

    pub(crate) fn origin(&mut self, name: &'static str) -> Option<crate::domain::origin::Origin> {
        let v = self.raw(name).unwrap_or_default();
        match crate::domain::origin::Origin::parse(&v) {
            Ok(o) => Some(o),
            Err(why) => {
                self.problem(name, why.to_string());
                None
            }
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Azure connection.
    pub azure: AzureConfig,
    /// Webhook authentication: keys, modes, Entra ID.
    pub auth: AuthPolicy,
    /// Capture defaults.
    pub capture: CaptureDefaults,
    /// At most this many captures `queued` or `running`.
    pub max_active_captures: u32,
    /// Empty: any scope.
    pub allowed_scopes: Vec<Scope>,
    /// Notifications: where, how, or why not.
    pub notify: NotifyConfig,
    /// The capture file's summary and download link.
    pub summary: SummaryConfig,
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
    /// Alerts for one VM fired in the same window of this many seconds share one capture name
    /// (SPEC §5.2), so concurrent deliveries meet the same Azure capture without any lock.
    pub coalesce_window_seconds: u32,
    /// The problems that do not stop captures (notification, summary settings).
    problems: Vec<Problem>,
}

impl Config {
    /// Read and validate every variable. `Err` lists every problem found, when at least one
    /// stops captures; problems that only turn notifications off leave a loaded configuration
    /// (see [`Config::problems`]).
    pub fn load(vars: &dyn Variables) -> Result<Config, Vec<Problem>> {
        let mut r = Reader::new(vars);
        let azure = azure::load(&mut r);
        let auth = auth::load(&mut r);
        let capture = capture::load(&mut r);
        let notify = notify::load(&mut r);
        let summary = summary::load(&mut r, azure.as_ref().map(|a| &a.arm_endpoint));
        let stops = r.problems.iter().any(|p| p.effect == Effect::StopsCaptures);
        match (azure, auth, capture) {
            (Some(azure), Some(auth), Some((capture, limits))) if !stops => Ok(Config {
                problems: r.problems.clone(),
                summary,
                azure,
                auth,
                capture,
                max_active_captures: limits.max_active_captures,
                allowed_scopes: limits.allowed_scopes,
                notify,
                poll_batch: limits.poll_batch,
                max_attempts: limits.max_attempts,
                capture_grace_seconds: limits.capture_grace_seconds,
                delete_finished_captures: limits.delete_finished_captures,
                retention_hours: limits.retention_hours,
                max_records: limits.max_records,
                coalesce_window_seconds: limits.coalesce_window_seconds,
            }),
            _ => Err(r.problems),
        }
    }

    /// The problems of a loaded configuration: only ones that turn notifications, or summaries
    /// and download links, off.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

/// Every problem of the configuration in `vars`, of both kinds (for `/healthz`).
pub fn problems(vars: &dyn Variables) -> Vec<Problem> {
    match Config::load(vars) {
        Ok(c) => c.problems().to_vec(),
        Err(p) => p,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(crate) struct Vars(pub HashMap<&'static str, &'static str>);
    impl Variables for Vars {
        fn get(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|s| s.to_string())
        }
    }

    pub(crate) fn minimal() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("azure_tenant_id", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("azure_client_id", "11111111-2222-3333-4444-555555555555"),
            ("azure_client_secret", "  s3cret-value\n"),
            ("webhook_keys", "0123456789abcdef, fedcba9876543210"),
            (
                "storage_account_id",
                "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/pcstore",
            ),
        ])
    }

    #[test]
    fn defaults_and_trimming() {
        let c = Config::load(&Vars(minimal())).unwrap();
        assert_eq!(c.azure.client_secret.expose(), "s3cret-value");
        assert_eq!(c.azure.arm_endpoint.as_str(), "https://management.azure.com");
        assert_eq!(c.azure.authority_host.as_str(), "https://login.microsoftonline.com");
        assert_eq!(c.capture.time_limit_seconds, 300);
        assert_eq!(c.capture.bytes_per_session, 1_073_741_824);
        assert_eq!(c.max_records, 200);
        assert!(matches!(&c.auth.keys, WebhookAuth::Keys(k) if k.len() == 2));
        assert_eq!((c.auth.alerts, c.auth.routes), (AuthMode::Keys, AuthMode::Keys));
        assert!(c.auth.entra.is_none());
        assert!(c.notify.target().is_none());
        assert!(c.problems().is_empty());
    }

    #[test]
    fn all_problems_at_once_without_values() {
        let mut v = minimal();
        v.remove("azure_client_secret");
        v.insert("capture_time_limit_seconds", "99999");
        v.insert("notify_format", "pager");
        v.insert("azure_arm_endpoint", "ftp://x/y");
        v.insert("poll_batch", "0");
        let problems = Config::load(&Vars(v)).unwrap_err();
        let names: Vec<_> = problems.iter().map(|p| p.variable).collect();
        assert_eq!(
            names,
            ["azure_client_secret", "azure_arm_endpoint", "capture_time_limit_seconds", "poll_batch", "notify_format"]
        );
        assert!(problems.iter().all(|p| !p.message.contains("99999") && !p.message.contains("pager")));
        let effects: Vec<_> = problems.iter().map(|p| p.effect).collect();
        assert_eq!(effects[..4], [Effect::StopsCaptures; 4]);
        assert_eq!(effects[4], Effect::NotificationsOnly);
    }

    #[test]
    fn notification_problems_alone_leave_a_loaded_configuration() {
        let mut v = minimal();
        v.insert("notify_format", "pager");
        v.insert("notify_url", "https://hooks.example.com/x");
        let c = Config::load(&Vars(v)).unwrap();
        let names: Vec<_> = c.problems().iter().map(|p| p.variable).collect();
        assert_eq!(names, ["notify_host", "notify_format"]);
        assert!(c.problems().iter().all(|p| p.effect == Effect::NotificationsOnly));
        assert!(c.notify.target().is_none());
        assert_eq!(c.notify.blocked(), Some(vec!["notify_host", "notify_format"]));
    }

    #[test]
    fn every_section_owns_its_variables() {
        // Each variable belongs to exactly one place in the list, and the list has no duplicates.
        let mut names: Vec<_> = VARIABLES.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), VARIABLES.len());
        let secrets: Vec<_> = VARIABLES.iter().filter(|v| v.secret).map(|v| v.name).collect();
        assert_eq!(secrets, ["azure_client_secret", "webhook_keys"]);
        // Setting every variable to garbage names only known variables.
        let junk: HashMap<&'static str, &'static str> = VARIABLES.iter().map(|v| (v.name, "\u{7f}junk")).collect();
        let problems = problems(&Vars(junk));
        assert!(problems.iter().all(|p| declared(p.variable).is_some()), "{problems:?}");
        assert!(problems.iter().all(|p| !p.message.contains("junk")), "{problems:?}");
    }
}
