//! What the client hands back, and the lenient readers of ARM bodies. Unknown fields are
//! ignored and enum values are kept as strings (Network RP enums are extensible).

use serde_json::Value;

use crate::domain::resource_id::{ResourceId, Target};
use crate::domain::timefmt::parse_azure_time;
use crate::ports::UnixSeconds;

/// What we need to know about a VM (or scale set) before capturing on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmInfo {
    /// Normalised location: lower case, no spaces (`"West US"` → `westus`).
    pub location: String,
    /// `Linux` or `Windows` as ARM gives it, when it does.
    pub os_type: Option<String>,
    /// The Network Watcher agent extension is installed.
    pub has_watcher_agent: bool,
}

/// The parameters of one packet capture.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureParams {
    /// What to capture on.
    pub target: Target,
    /// `timeLimitInSeconds`.
    pub time_limit_seconds: u32,
    /// `bytesToCapturePerPacket` (0: whole packet).
    pub bytes_per_packet: u64,
    /// `totalBytesPerSession`.
    pub bytes_per_session: u64,
    /// Network Watcher filters, sent as given.
    pub filters: Vec<Value>,
    /// `storageLocation.storageId`.
    pub storage_account_id: Option<ResourceId>,
    /// `storageLocation.filePath`.
    pub file_path: Option<String>,
}

/// The answer to a create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureCreated {
    /// `provisioningState` (`Updating` right after a create).
    pub provisioning_state: Option<String>,
    /// `storageLocation.storagePath`, the blob URL of the `.cap` file.
    pub storage_path: Option<String>,
    /// The capture already existed (an earlier attempt created it); read back with a GET.
    pub already_existed: bool,
}

/// The answer to `queryStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureStatus {
    /// `NotStarted|Running|Stopped|Error|Unknown`, or any other value as given.
    pub status: String,
    /// `stopReason` (absent while running), e.g. `TimeExceeded`.
    pub stop_reason: Option<String>,
    /// `packetCaptureError[]`.
    pub errors: Vec<String>,
    /// `captureStartTime` as text: older answers use non-ISO dates such as `9/7/2016 12:35:24PM`.
    /// Read it with [`CaptureStatus::capture_start`].
    pub capture_start_time: Option<String>,
}

impl CaptureStatus {
    /// `captureStartTime` as UTC seconds, in any shape Azure sends
    /// ([`parse_azure_time`](crate::domain::timefmt::parse_azure_time)); `None` when absent or unreadable.
    pub fn capture_start(&self) -> Option<UnixSeconds> {
        self.capture_start_time.as_deref().and_then(parse_azure_time)
    }
}

/// The answer to a GET of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureInfo {
    /// `provisioningState`.
    pub provisioning_state: Option<String>,
    /// `storageLocation.storagePath`.
    pub storage_path: Option<String>,
    /// `storageLocation.filePath`.
    pub file_path: Option<String>,
    /// What the body says went wrong, when anything: `packetCaptureError[]`, or an
    /// `error`/`statusDetails` object (shown with a `provisioningState` of `Failed`).
    pub error: Option<String>,
}

impl CaptureInfo {
    /// `provisioningState` is `Failed` (any case): the capture ended in error.
    pub fn provisioning_failed(&self) -> bool {
        self.provisioning_state.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("Failed"))
    }
}

/// `"West US"` → `westus`: ARM locations compared without case or white space.
pub fn normalize_location(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

/// A string at a JSON path, if it is one and not empty.
pub(crate) fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

fn string_at(v: &Value, path: &[&str]) -> Option<String> {
    str_at(v, path).map(str::to_string)
}

/// True for the Network Watcher agent extension (any instance name).
fn is_watcher_agent(ext: &Value) -> bool {
    let props = ext.get("properties").unwrap_or(ext);
    let publisher = str_at(props, &["publisher"]).unwrap_or("");
    let kind = str_at(props, &["type"]).unwrap_or("");
    publisher.eq_ignore_ascii_case("Microsoft.Azure.NetworkWatcher")
        && (kind.eq_ignore_ascii_case("NetworkWatcherAgentLinux")
            || kind.eq_ignore_ascii_case("NetworkWatcherAgentWindows"))
}

/// Read a VM or scale-set GET body. `None` when there is no location (an unusable answer).
pub(crate) fn parse_vm(body: &Value, scale_set: bool) -> Option<VmInfo> {
    let location = normalize_location(str_at(body, &["location"])?);
    if location.is_empty() {
        return None;
    }
    let (os_type, extensions): (Option<String>, Vec<&Value>) = if scale_set {
        let profile = &["properties", "virtualMachineProfile"];
        let os = string_at(body, &[profile[0], profile[1], "storageProfile", "osDisk", "osType"]);
        let exts = body
            .pointer("/properties/virtualMachineProfile/extensionProfile/extensions")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        (os, exts)
    } else {
        let os = string_at(body, &["properties", "storageProfile", "osDisk", "osType"]);
        // A VM GET lists its extensions in `resources[]`; newer answers may also carry them in
        // `properties.instanceView` only when asked, so `resources` is what we read.
        let exts = body.get("resources").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
        (os, exts)
    };
    Some(VmInfo { location, os_type, has_watcher_agent: extensions.into_iter().any(is_watcher_agent) })
}

/// Read a capture resource body (PUT or GET answer).
pub(crate) fn parse_capture(body: &Value) -> CaptureInfo {
    CaptureInfo {
        provisioning_state: string_at(body, &["properties", "provisioningState"]),
        storage_path: string_at(body, &["properties", "storageLocation", "storagePath"]),
        file_path: string_at(body, &["properties", "storageLocation", "filePath"]),
        error: capture_error(body),
    }
}

/// The error a capture body reports, on one line (see [`CaptureInfo::error`]).
fn capture_error(body: &Value) -> Option<String> {
    let props = body.get("properties")?;
    let listed: Vec<String> = props
        .get("packetCaptureError")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|e| e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string())).collect())
        .unwrap_or_default();
    if !listed.is_empty() {
        return Some(super::error::one_line(&listed.join(", "), super::error::MAX_MESSAGE_CHARS));
    }
    let err = props.get("error").or_else(|| props.get("statusDetails")).filter(|e| e.is_object())?;
    let text = match (str_at(err, &["code"]), str_at(err, &["message"])) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(t), None) | (None, Some(t)) => t.to_string(),
        (None, None) => return None,
    };
    Some(super::error::one_line(&text, super::error::MAX_MESSAGE_CHARS))
}

/// Read a `queryStatus` body. `None` when it carries no status at all.
pub(crate) fn parse_status(body: &Value) -> Option<CaptureStatus> {
    let status = string_at(body, &["packetCaptureStatus"])?;
    let errors = body
        .get("packetCaptureError")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|e| e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string())).collect())
        .unwrap_or_default();
    let capture_start_time = match body.get("captureStartTime") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(Value::String(_)) => None,
        Some(other) => Some(other.to_string()),
    };
    Some(CaptureStatus { status, stop_reason: string_at(body, &["stopReason"]), errors, capture_start_time })
}
