//! Alert payloads (SPEC §3): Azure Monitor action-group webhook bodies, detected by shape.
//!
//! Four shapes are accepted: the common alert schema, the non-common metric alert, the classic
//! metric alert and the non-common activity-log alert. Everything else is refused with a reason a
//! person can act on. Ids that cannot be capture targets never fail the parse: they are listed in
//! [`Alert::rejected_targets`] so that the caller can answer `422` with the reason.
//!
//! The parser never panics and its work is linear in the body: nesting is bounded before
//! `serde_json` sees the body, and the number of target ids considered is capped.

use serde_json::{Map, Value};

use crate::domain::resource_id::{ResourceId, Target};
use crate::domain::timefmt::{parse_azure_time, rfc3339};
use crate::ports::UnixSeconds;

/// Deepest JSON nesting accepted (real payloads stay below 10).
pub const MAX_DEPTH: usize = 64;
/// Most target ids looked at in one alert; the rest are reported as not considered.
pub const MAX_TARGET_IDS: usize = 100;
/// Longest id (or other payload text) echoed back in a rejection reason or error message.
const MAX_ECHO: usize = 300;
/// Longest alert id accepted: it is part of the alert's identity and so of stored keys.
const MAX_ALERT_ID: usize = 1024;

/// What an action group must send, said in every unknown-schema refusal.
const ACCEPTED: &str = "accepted: the common alert schema (schemaId \"azureMonitorCommonAlertSchema\"), \
metric alerts (\"AzureMonitorMetricAlert\"), activity log alerts (\"Microsoft.Insights/activityLogs\") \
and classic metric alerts; enable the common alert schema on the action group";

/// Which payload shape was detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// `schemaId: "azureMonitorCommonAlertSchema"`.
    Common,
    /// `schemaId: "AzureMonitorMetricAlert"` (metric alert without the common schema).
    MetricNonCommon,
    /// No `schemaId`; top-level `status` and `context` (retired classic metric alerts).
    ClassicMetric,
    /// `schemaId: "Microsoft.Insights/activityLogs"` (activity log alert without the common schema).
    ActivityLog,
}

impl Schema {
    /// A short name for answers, records and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Schema::Common => "common",
            Schema::MetricNonCommon => "metric",
            Schema::ClassicMetric => "classic",
            Schema::ActivityLog => "activity-log",
        }
    }
}

/// Whether the alert fired or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// `Fired` (common), `Activated` (non-common, classic, activity log).
    Fired,
    /// `Resolved` (common, non-common), `Resolved`/`Deactivated` (classic).
    Resolved,
}

/// One parsed alert notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The detected payload shape.
    pub schema: Schema,
    /// Fired or resolved.
    pub condition: Condition,
    /// Stable identity part 1: common `alertId`; metric non-common `data.context.id`; classic
    /// `context.id`; activity log `data.context.activityLog.eventDataId` (one per logged event).
    pub alert_id: String,
    /// Stable identity part 2: the fire time, whole Unix seconds UTC, read from any shape Azure
    /// sends ([`parse_azure_time`]) (common `firedDateTime`,
    /// non-common `data.context.timestamp`, classic `context.timestamp`, activity log
    /// `eventTimestamp`).
    pub fired_at: UnixSeconds,
    /// Alert rule name if any (common `alertRule`, non-common `data.context.name`, classic
    /// `context.name`).
    pub rule: Option<String>,
    /// VM / scale-set / scale-set-instance targets, deduplicated (case-insensitive), in payload order.
    pub targets: Vec<Target>,
    /// Ids in the payload that are not usable targets, each `(id truncated to 300 chars, reason)`.
    pub rejected_targets: Vec<(String, String)>,
    /// The region the payload names (`resourceRegion`), lower case without spaces (`westus`).
    pub region: Option<String>,
    /// The custom properties (common `data.customProperties`, non-common `data.properties`,
    /// classic top-level `properties`), or empty.
    pub custom_properties: Map<String, Value>,
}

impl Alert {
    /// `"{alert_id}|{rfc3339 fired_at}"`: identifies one firing of one alert.
    pub fn identity(&self) -> String {
        format!("{}|{}", self.alert_id, rfc3339(self.fired_at))
    }
}

/// Why a body is not an alert we can use. Every variant is a `400`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    /// Body is not JSON (or is nested deeper than [`MAX_DEPTH`]).
    #[error("body is not JSON: {0}")]
    NotJson(String),
    /// JSON, but no alert schema we know; says what was seen and what is accepted.
    #[error("not an alert schema we accept: {0}")]
    UnknownSchema(String),
    /// A known schema with a missing or invalid required field, named by its JSON pointer.
    #[error("invalid alert payload: {0}")]
    Invalid(String),
}

impl AlertError {
    /// The HTTP status the webhook answers with.
    pub fn status(&self) -> u16 {
        400
    }
}

/// Parse a webhook body. Never panics; work is linear in the body's length.
pub fn parse(body: &[u8]) -> Result<Alert, AlertError> {
    // Some tools prepend a UTF-8 byte order mark; serde_json refuses it.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    check_depth(body)?;
    let root: Value = serde_json::from_slice(body).map_err(|e| AlertError::NotJson(echo(&e.to_string())))?;
    let Value::Object(root) = root else {
        return Err(AlertError::UnknownSchema(format!("the body is {}, not an object; {ACCEPTED}", kind(&root))));
    };
    match detect(&root)? {
        Schema::Common => common(&root),
        Schema::MetricNonCommon => metric(&root),
        Schema::ClassicMetric => classic(&root),
        Schema::ActivityLog => activity_log(&root),
    }
}

/// Refuse nesting deeper than [`MAX_DEPTH`] by scanning the bytes, so that `serde_json` never
/// recurses far. Brackets inside strings do not count.
fn check_depth(body: &[u8]) -> Result<(), AlertError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(AlertError::NotJson(format!("nested deeper than {MAX_DEPTH} levels")));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn detect(root: &Map<String, Value>) -> Result<Schema, AlertError> {
    if let Some(id) = get(root, "schemaId") {
        let Some(id) = id.as_str() else {
            return Err(AlertError::UnknownSchema(format!("schemaId is {}, not a string; {ACCEPTED}", kind(id))));
        };
        return match id.trim().to_ascii_lowercase().as_str() {
            "azuremonitorcommonalertschema" => Ok(Schema::Common),
            "azuremonitormetricalert" => Ok(Schema::MetricNonCommon),
            "microsoft.insights/activitylogs" => Ok(Schema::ActivityLog),
            "microsoft.insights/logalert" => Err(AlertError::UnknownSchema(format!(
                "schemaId \"Microsoft.Insights/LogAlert\" is a log alert without the common schema; {ACCEPTED}"
            ))),
            _ => Err(AlertError::UnknownSchema(format!("schemaId {} is unknown; {ACCEPTED}", quoted(id)))),
        };
    }
    if get(root, "status").is_some() && get(root, "context").is_some_and(Value::is_object) {
        return Ok(Schema::ClassicMetric);
    }
    // The common schema's shape without its schemaId (some relays drop it): accept by shape.
    if get(root, "data").and_then(|d| d.get("essentials")).is_some_and(Value::is_object) {
        return Ok(Schema::Common);
    }
    const LOG_V1_KEYS: [&str; 4] = ["AlertRuleName", "SearchQuery", "SearchResult", "LinkToSearchResults"];
    if LOG_V1_KEYS.iter().any(|k| root.contains_key(*k)) {
        return Err(AlertError::UnknownSchema(format!(
            "this is a Log Alerts V1 payload (AlertRuleName, SearchQuery, ...), which names no alert \
             instance or fire time we can use; {ACCEPTED}, or move the rule to Log Alerts V2"
        )));
    }
    if root.is_empty() {
        return Err(AlertError::UnknownSchema(format!("the body is an empty object; {ACCEPTED}")));
    }
    let keys: Vec<String> = root.keys().take(8).map(|k| quoted(k)).collect();
    let more = if root.len() > 8 { ", ..." } else { "" };
    Err(AlertError::UnknownSchema(format!(
        "no schemaId, and the keys ({}{more}) match no alert shape; {ACCEPTED}",
        keys.join(", ")
    )))
}

fn common(root: &Map<String, Value>) -> Result<Alert, AlertError> {
    let data = object(root, "data", "/data")?;
    let ess = object(data, "essentials", "/data/essentials")?;
    let condition = match string(ess, "monitorCondition", "/data/essentials/monitorCondition")?.trim() {
        c if c.eq_ignore_ascii_case("fired") => Condition::Fired,
        c if c.eq_ignore_ascii_case("resolved") => Condition::Resolved,
        other => {
            return Err(AlertError::Invalid(format!(
                "/data/essentials/monitorCondition is {}, expected \"Fired\" or \"Resolved\"",
                quoted(other)
            )));
        }
    };
    let mut targets = Targets::default();
    match get(ess, "alertTargetIDs") {
        None | Some(Value::Null) => {}
        Some(Value::Array(ids)) => {
            for (i, id) in ids.iter().enumerate() {
                if i == MAX_TARGET_IDS {
                    targets.rejected.push((
                        format!("({} more ids)", ids.len() - MAX_TARGET_IDS),
                        format!("only the first {MAX_TARGET_IDS} alertTargetIDs are considered"),
                    ));
                    break;
                }
                match id {
                    Value::String(s) => targets.add(s),
                    other => targets.rejected.push((echo(&other.to_string()), "not a string".to_string())),
                }
            }
        }
        // A lone string is read as one id rather than refusing the whole alert.
        Some(Value::String(s)) => targets.add(s),
        Some(other) => {
            return Err(AlertError::Invalid(format!(
                "/data/essentials/alertTargetIDs is {}, expected an array of resource ids",
                kind(other)
            )));
        }
    }
    Ok(Alert {
        schema: Schema::Common,
        condition,
        alert_id: alert_id(ess, "alertId", "/data/essentials/alertId")?,
        fired_at: time(ess, "firedDateTime", "/data/essentials/firedDateTime")?,
        rule: text(ess, "alertRule"),
        targets: targets.targets,
        rejected_targets: targets.rejected,
        region: get(ess, "resourceRegion").and_then(region),
        custom_properties: properties(get(data, "customProperties")),
    })
}

fn metric(root: &Map<String, Value>) -> Result<Alert, AlertError> {
    let data = object(root, "data", "/data")?;
    let ctx = object(data, "context", "/data/context")?;
    metric_like(Schema::MetricNonCommon, data, ctx, "/data", get(data, "properties"))
}

fn classic(root: &Map<String, Value>) -> Result<Alert, AlertError> {
    let ctx = object(root, "context", "/context")?;
    metric_like(Schema::ClassicMetric, root, ctx, "", get(root, "properties"))
}

/// The non-common metric and classic shapes differ only in where `status` and `context` sit.
fn metric_like(
    schema: Schema,
    parent: &Map<String, Value>,
    ctx: &Map<String, Value>,
    base: &str,
    props: Option<&Value>,
) -> Result<Alert, AlertError> {
    let condition = status(parent, "status", &format!("{base}/status"), &["activated"], &["resolved", "deactivated"])?;
    let mut targets = Targets::default();
    target_field(&mut targets, ctx, "resourceId", &format!("{base}/context/resourceId"))?;
    Ok(Alert {
        schema,
        condition,
        alert_id: alert_id(ctx, "id", &format!("{base}/context/id"))?,
        fired_at: time(ctx, "timestamp", &format!("{base}/context/timestamp"))?,
        rule: text(ctx, "name"),
        targets: targets.targets,
        rejected_targets: targets.rejected,
        region: get(ctx, "resourceRegion").and_then(region),
        custom_properties: properties(props),
    })
}

fn activity_log(root: &Map<String, Value>) -> Result<Alert, AlertError> {
    let data = object(root, "data", "/data")?;
    let ctx = object(data, "context", "/data/context")?;
    let log = object(ctx, "activityLog", "/data/context/activityLog")?;
    let condition =
        status(data, "status", "/data/status", &["activated", "succeeded", "fired"], &["resolved", "deactivated"])?;
    let mut targets = Targets::default();
    target_field(&mut targets, log, "resourceId", "/data/context/activityLog/resourceId")?;
    // eventDataId is unique per logged event and repeated verbatim on redelivery; the others
    // are fallbacks for trimmed-down relays.
    let Some(id_key) = ["eventDataId", "operationId", "correlationId"].into_iter().find(|k| text(log, k).is_some())
    else {
        return Err(AlertError::Invalid("/data/context/activityLog/eventDataId is missing".to_string()));
    };
    let alert_id = alert_id(log, id_key, &format!("/data/context/activityLog/{id_key}"))?;
    // The event's own time; the submission time only when a relay dropped it.
    let time_key = ["eventTimestamp", "submissionTimestamp"]
        .into_iter()
        .find(|k| get(log, k).is_some_and(Value::is_string))
        .unwrap_or("eventTimestamp");
    let fired_at = time(log, time_key, &format!("/data/context/activityLog/{time_key}"))?;
    Ok(Alert {
        schema: Schema::ActivityLog,
        condition,
        alert_id,
        fired_at,
        rule: None,
        targets: targets.targets,
        rejected_targets: targets.rejected,
        // Service-health events carry an incident region, not the resource's: not used.
        region: None,
        custom_properties: properties(get(data, "properties")),
    })
}

/// Targets being collected, deduplicated by their case-insensitive key.
#[derive(Default)]
struct Targets {
    targets: Vec<Target>,
    rejected: Vec<(String, String)>,
}

impl Targets {
    fn add(&mut self, raw: &str) {
        let shown = echo(raw);
        match ResourceId::parse(raw.trim()) {
            Ok(id) => match Target::from_id(&id) {
                Some(t) => {
                    if !self.targets.iter().any(|o| o.key() == t.key()) {
                        self.targets.push(t);
                    }
                }
                None => {
                    let types: Vec<&str> = id.resources().iter().map(|(t, _)| t.as_str()).collect();
                    let reason = format!(
                        "not a VM or scale set (a {}/{}); packet captures run on \
                         Microsoft.Compute/virtualMachines or virtualMachineScaleSets",
                        id.namespace(),
                        types.join("/")
                    );
                    self.reject(shown, reason);
                }
            },
            Err(e) => self.reject(shown, format!("not a valid ARM id: {e}")),
        }
    }

    fn reject(&mut self, id: String, reason: String) {
        if !self.rejected.iter().any(|(o, _)| o.eq_ignore_ascii_case(&id)) {
            self.rejected.push((id, reason));
        }
    }
}

/// Read an optional resource-id field: absent or null adds nothing, a string is a candidate.
fn target_field(targets: &mut Targets, obj: &Map<String, Value>, key: &str, pointer: &str) -> Result<(), AlertError> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) => {
            targets.add(s);
            Ok(())
        }
        Some(other) => Err(AlertError::Invalid(format!("{pointer} is {}, expected a resource id", kind(other)))),
    }
}

/// Map a `status` field to a condition.
fn status(
    obj: &Map<String, Value>,
    key: &str,
    pointer: &str,
    fired: &[&str],
    resolved: &[&str],
) -> Result<Condition, AlertError> {
    let s = string(obj, key, pointer)?.trim().to_ascii_lowercase();
    if fired.contains(&s.as_str()) {
        Ok(Condition::Fired)
    } else if resolved.contains(&s.as_str()) {
        Ok(Condition::Resolved)
    } else {
        Err(AlertError::Invalid(format!(
            "{pointer} is {}, expected \"Activated\", \"Resolved\" or \"Deactivated\"",
            quoted(&s)
        )))
    }
}

/// Look a key up exactly, then case-insensitively (tolerates `alertTargetIds` and the like).
fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

fn object<'a>(obj: &'a Map<String, Value>, key: &str, pointer: &str) -> Result<&'a Map<String, Value>, AlertError> {
    match get(obj, key) {
        Some(Value::Object(m)) => Ok(m),
        None => Err(AlertError::Invalid(format!("{pointer} is missing"))),
        Some(other) => Err(AlertError::Invalid(format!("{pointer} is {}, expected an object", kind(other)))),
    }
}

fn string<'a>(obj: &'a Map<String, Value>, key: &str, pointer: &str) -> Result<&'a str, AlertError> {
    match get(obj, key) {
        Some(Value::String(s)) => Ok(s),
        None => Err(AlertError::Invalid(format!("{pointer} is missing"))),
        Some(other) => Err(AlertError::Invalid(format!("{pointer} is {}, expected a string", kind(other)))),
    }
}

fn alert_id(obj: &Map<String, Value>, key: &str, pointer: &str) -> Result<String, AlertError> {
    let s = string(obj, key, pointer)?.trim();
    if s.is_empty() {
        return Err(AlertError::Invalid(format!("{pointer} is empty")));
    }
    if s.len() > MAX_ALERT_ID {
        return Err(AlertError::Invalid(format!("{pointer} is longer than {MAX_ALERT_ID} bytes")));
    }
    Ok(s.to_string())
}

/// A required time field, in any shape Azure sends ([`parse_azure_time`]), as UTC seconds. One
/// that cannot be read refuses the alert (`400`) naming the field: the fire time is half of the
/// alert's identity, so guessing one would break de-duplication.
fn time(obj: &Map<String, Value>, key: &str, pointer: &str) -> Result<UnixSeconds, AlertError> {
    let s = string(obj, key, pointer)?;
    parse_azure_time(s).ok_or_else(|| {
        AlertError::Invalid(format!(
            "{pointer} is {}, not a time we can read (RFC 3339 / ISO 8601 such as \
             \"2019-03-22T13:58:24.3713213Z\", or \"9/7/2016 12:35:24 PM\")",
            quoted(s)
        ))
    })
}

/// An optional text field: a non-empty string, truncated, control characters replaced (it reaches
/// answers, logs and notifications); anything else is `None`.
fn text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    match get(obj, key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(echo(s.trim())),
        _ => None,
    }
}

/// `"West US"` → `westus`. Anything that is not a plausible region name is no region, so the
/// caller falls back to the VM's own location.
fn region(v: &Value) -> Option<String> {
    let r: String = v.as_str()?.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
    let plausible = !r.is_empty() && r.len() <= 64 && r.bytes().all(|c| c.is_ascii_alphanumeric());
    plausible.then_some(r)
}

fn properties(v: Option<&Value>) -> Map<String, Value> {
    match v {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// At most `max` bytes of `s`, cut on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Payload text made safe to echo: truncated, control characters replaced.
fn echo(s: &str) -> String {
    truncate(s, MAX_ECHO).chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", echo(s))
}
