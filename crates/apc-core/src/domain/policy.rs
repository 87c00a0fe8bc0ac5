//! Capture policy (SPEC §5): deterministic names, parameters and per-rule overrides.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::config::{BYTES_RANGE, CaptureDefaults, TIME_LIMIT_RANGE, parse_filters};
use crate::domain::digest::hex;
use crate::domain::record::CaptureSpec;
use crate::domain::resource_id::Target;
use crate::domain::timefmt::compact;
use crate::ports::UnixSeconds;

/// Longest capture name we produce (ARM allows 80).
pub const MAX_NAME: usize = 80;

/// The start of the window of `window_secs` that `fired_at` falls in.
pub fn window_start(fired_at: UnixSeconds, window_secs: u32) -> UnixSeconds {
    let w = i64::from(window_secs.max(1));
    fired_at.div_euclid(w) * w
}

/// `{prefix}-{vm, shortened}-{window start yyyymmddThhmmss}-{hash}`, hash over the target key
/// and the window: every delivery of an alert, and every other alert for the same VM fired in
/// the same window, get the same name, so they meet the same Azure capture even when no store
/// has seen any of them yet. `alert`: a name of this alert's own (a capture after the window's
/// own one finished, or a skipped alert), still deterministic per (alert, VM, window).
pub fn capture_name(
    prefix: &str,
    target: &Target,
    fired_at: UnixSeconds,
    window_secs: u32,
    alert: Option<&str>,
) -> String {
    let start = window_start(fired_at, window_secs);
    let mut h = Sha256::new();
    h.update(target.key().as_bytes());
    h.update(b"\n");
    h.update(start.to_string().as_bytes());
    if let Some(identity) = alert {
        h.update(b"\n");
        h.update(identity.as_bytes());
    }
    let hash = hex(&h.finalize()[..4]);
    let time = compact(start);
    let mut vm: String = target
        .display_name()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let room = MAX_NAME - prefix.len() - time.len() - hash.len() - 3;
    vm.truncate(room);
    let vm = vm.trim_matches('-');
    let vm = if vm.is_empty() { "vm" } else { vm };
    format!("{prefix}-{vm}-{time}-{hash}")
}

/// The parameters for one capture: the defaults, with valid overrides from the alert rule's
/// custom properties applied. Bad overrides are returned as warnings and ignored.
pub fn capture_spec(defaults: &CaptureDefaults, custom: &Map<String, Value>) -> (CaptureSpec, Vec<String>) {
    let mut spec = CaptureSpec {
        time_limit_seconds: defaults.time_limit_seconds,
        bytes_per_packet: defaults.bytes_per_packet,
        bytes_per_session: defaults.bytes_per_session,
        filters: defaults.filters.clone(),
        storage_account_id: defaults.storage_account_id.as_ref().map(ToString::to_string),
        file_path: defaults.file_path.clone(),
    };
    let mut warnings = Vec::new();
    if let Some(v) = custom.get("captureTimeLimitSeconds") {
        match number(v).filter(|n| (TIME_LIMIT_RANGE.0..=TIME_LIMIT_RANGE.1).contains(n)) {
            Some(n) => spec.time_limit_seconds = n as u32,
            None => warnings.push(format!(
                "customProperties.captureTimeLimitSeconds must be a whole number from {} to {}; the default {} was used",
                TIME_LIMIT_RANGE.0, TIME_LIMIT_RANGE.1, defaults.time_limit_seconds
            )),
        }
    }
    if let Some(v) = custom.get("captureBytesPerSession") {
        match number(v).filter(|n| (BYTES_RANGE.0..=BYTES_RANGE.1).contains(n)) {
            Some(n) => spec.bytes_per_session = n,
            None => warnings.push(format!(
                "customProperties.captureBytesPerSession must be a whole number from {} to {}; the default {} was used",
                BYTES_RANGE.0, BYTES_RANGE.1, defaults.bytes_per_session
            )),
        }
    }
    if let Some(v) = custom.get("captureFilters") {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match parse_filters(&text) {
            Ok(f) => spec.filters = f,
            Err(why) => warnings.push(format!("customProperties.captureFilters {why}; the default filters were used")),
        }
    }
    (spec, warnings)
}

/// A whole number given as a JSON number or a string (Azure sends numbers as strings often).
fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Exponential back-off: 30 s, 60 s, 120 s … capped at an hour; `Retry-After` wins when longer.
pub fn backoff(attempts: u32, retry_after: Option<u64>) -> i64 {
    let exp = 30i64.saturating_mul(1i64 << attempts.saturating_sub(1).min(10)).min(3600);
    exp.max(retry_after.unwrap_or(0).min(3600) as i64)
}

/// The start of a capture name's window, read back from the name (`…-{yyyymmddThhmmss}-{hash}`):
/// how old a name's keys are, without reading them.
pub fn name_time(name: &str) -> Option<UnixSeconds> {
    let mut parts = name.rsplit('-');
    parts.next()?;
    crate::domain::timefmt::parse_compact(parts.next()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::resource_id::ResourceId;

    fn vm(name: &str) -> Target {
        let id = ResourceId::parse(&format!(
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/{name}"
        ))
        .unwrap();
        Target::from_id(&id).unwrap()
    }

    #[test]
    fn names_are_deterministic_per_vm_and_window_unique_and_short() {
        let a = capture_name("apc", &vm("web-01"), 1_553_263_104, 300, None);
        assert!(a.starts_with("apc-web-01-20190322T135500-"), "{a}");
        // Anything fired in the same window on the same VM: the same name.
        assert_eq!(a, capture_name("apc", &vm("web-01"), 1_553_262_900, 300, None));
        assert_eq!(a, capture_name("apc", &vm("web-01"), 1_553_263_199, 300, None));
        assert_ne!(a, capture_name("apc", &vm("web-01"), 1_553_263_200, 300, None), "next window");
        assert_ne!(a, capture_name("apc", &vm("web-02"), 1_553_263_104, 300, None));
        let own = capture_name("apc", &vm("web-01"), 1_553_263_104, 300, Some("alert-1|t"));
        assert_ne!(a, own);
        assert_eq!(own, capture_name("apc", &vm("web-01"), 1_553_263_104, 300, Some("alert-1|t")));
        assert_eq!(name_time(&a), Some(1_553_262_900));
        let long = capture_name("prefix-sixteen-c", &vm(&"x".repeat(64)), 0, 300, Some("a"));
        assert!(long.len() <= MAX_NAME, "{} chars", long.len());
        assert!(long.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
    }

    #[test]
    fn overrides_apply_within_limits_and_warn_otherwise() {
        let d = CaptureDefaults {
            storage_account_id: None,
            file_path: Some("/var/captures/x.cap".into()),
            time_limit_seconds: 300,
            bytes_per_packet: 0,
            bytes_per_session: 1 << 30,
            filters: vec![],
            name_prefix: "apc".into(),
        };
        let custom: Map<String, Value> = serde_json::from_str(
            r#"{"captureTimeLimitSeconds":"600","captureBytesPerSession":99999999999,"captureFilters":"[{\"protocol\":\"TCP\"}]"}"#,
        )
        .unwrap();
        let (spec, warnings) = capture_spec(&d, &custom);
        assert_eq!(spec.time_limit_seconds, 600);
        assert_eq!(spec.bytes_per_session, 1 << 30);
        assert_eq!(spec.filters.len(), 1);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("captureBytesPerSession"));
    }
}
