//! Capture parameters, storage, limits and housekeeping: `storage_account_id`,
//! `capture_file_path`, `capture_*`, `max_active_captures`, `allowed_scopes`, `poll_batch`,
//! `max_attempts`, `capture_grace_seconds`, `delete_finished_captures`, `retention_hours`,
//! `max_records`, `coalesce_window_seconds`.

use super::Reader;
use crate::domain::resource_id::{ResourceId, Scope};

/// Hard limits of capture parameters (Network Watcher's, SPEC §9).
pub const TIME_LIMIT_RANGE: (u64, u64) = (1, 18000);
/// `bytesToCapturePerPacket` and `totalBytesPerSession` range.
pub const BYTES_RANGE: (u64, u64) = (0, 4_294_967_295);

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

/// Limits and housekeeping (spread into [`super::Config`]'s fields).
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub max_active_captures: u32,
    pub allowed_scopes: Vec<Scope>,
    pub poll_batch: u32,
    pub max_attempts: u32,
    pub capture_grace_seconds: u32,
    pub delete_finished_captures: bool,
    pub retention_hours: u32,
    pub max_records: u32,
    pub coalesce_window_seconds: u32,
}

fn storage(r: &mut Reader) -> Option<Option<ResourceId>> {
    match r.raw("storage_account_id") {
        None => Some(None),
        Some(v) => match ResourceId::parse(&v) {
            Ok(id) if id.is_type("Microsoft.Storage", &["storageAccounts"]) => Some(Some(id)),
            Ok(_) => {
                r.problem("storage_account_id", "is not a Microsoft.Storage/storageAccounts id");
                None
            }
            Err(e) => {
                r.problem("storage_account_id", format!("is not a valid ARM id: {e}"));
                None
            }
        },
    }
}

fn file_path(r: &mut Reader) -> Option<Option<String>> {
    match r.raw("capture_file_path") {
        Some(p) if !p.ends_with(".cap") || p.chars().any(char::is_control) => {
            r.problem("capture_file_path", "must be a path ending in .cap");
            None
        }
        other => Some(other),
    }
}

fn filters(r: &mut Reader) -> Option<Vec<serde_json::Value>> {
    match r.raw("capture_filters") {
        None => Some(Vec::new()),
        Some(v) => match parse_filters(&v) {
            Ok(f) => Some(f),
            Err(why) => {
                r.problem("capture_filters", why);
                None
            }
        },
    }
}

fn name_prefix(r: &mut Reader) -> Option<String> {
    let p = r.raw("capture_name_prefix").unwrap_or_default();
    let ok = !p.is_empty()
        && p.len() <= 16
        && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        && p.as_bytes()[0].is_ascii_alphanumeric();
    if !ok {
        r.problem("capture_name_prefix", "must be 1 to 16 letters, digits or '-', starting with a letter or digit");
    }
    ok.then_some(p)
}

fn scopes(r: &mut Reader) -> Option<Vec<Scope>> {
    let mut scopes = Vec::new();
    let mut ok = true;
    if let Some(v) = r.raw("allowed_scopes") {
        for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match Scope::parse(s) {
                Ok(scope) => scopes.push(scope),
                Err(e) => {
                    ok = false;
                    r.problem(
                        "allowed_scopes",
                        format!("holds an entry that is not /subscriptions/{{id}}[/resourceGroups/{{name}}]: {e}"),
                    );
                }
            }
        }
    }
    ok.then_some(scopes)
}

/// Read the section; `None` when any of its variables has a problem (reported on `r`).
pub(crate) fn load(r: &mut Reader) -> Option<(CaptureDefaults, Limits)> {
    let storage_account_id = storage(r);
    let file_path = file_path(r);
    let storage_missing = matches!((&storage_account_id, &file_path), (Some(None), Some(None)));
    if storage_missing {
        r.problem("storage_account_id", "is required unless capture_file_path is set");
    }
    let time_limit_seconds = r.number("capture_time_limit_seconds", TIME_LIMIT_RANGE.0, TIME_LIMIT_RANGE.1);
    let bytes_per_packet = r.number("capture_bytes_per_packet", BYTES_RANGE.0, BYTES_RANGE.1);
    let bytes_per_session = r.number("capture_bytes_per_session", BYTES_RANGE.0, BYTES_RANGE.1);
    let filters = filters(r);
    let name_prefix = name_prefix(r);
    let max_active_captures = r.small("max_active_captures", 1, 10_000);
    let allowed_scopes = scopes(r);
    let poll_batch = r.small("poll_batch", 1, 1000);
    let max_attempts = r.small("max_attempts", 1, 100);
    let capture_grace_seconds = r.small("capture_grace_seconds", 0, 86_400);
    let delete_finished_captures = r.flag("delete_finished_captures");
    let retention_hours = r.small("retention_hours", 1, 24 * 365);
    let max_records = r.small("max_records", 10, 400);
    let coalesce_window_seconds = r.small("coalesce_window_seconds", 60, 86_400);
    if let (Some(records), Some(active)) = (max_records, max_active_captures)
        && records < active
    {
        r.problem("max_records", "must be at least max_active_captures");
        return None;
    }
    if storage_missing {
        return None;
    }
    let defaults = CaptureDefaults {
        storage_account_id: storage_account_id?,
        file_path: file_path?,
        time_limit_seconds: u32::try_from(time_limit_seconds?).ok()?,
        bytes_per_packet: bytes_per_packet?,
        bytes_per_session: bytes_per_session?,
        filters: filters?,
        name_prefix: name_prefix?,
    };
    let limits = Limits {
        max_active_captures: max_active_captures?,
        allowed_scopes: allowed_scopes?,
        poll_batch: poll_batch?,
        max_attempts: max_attempts?,
        capture_grace_seconds: capture_grace_seconds?,
        delete_finished_captures: delete_finished_captures?,
        retention_hours: retention_hours?,
        max_records: max_records?,
        coalesce_window_seconds: coalesce_window_seconds?,
    };
    Some((defaults, limits))
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
    use super::super::tests::{Vars, minimal};
    use super::*;

    fn names(pairs: &[(&'static str, &'static str)], remove: &[&str]) -> Vec<&'static str> {
        let mut v = minimal();
        v.retain(|name, _| !remove.contains(name));
        v.extend(pairs.iter().copied());
        let vars = Vars(v);
        let mut r = Reader::new(&vars);
        let loaded = load(&mut r);
        assert_eq!(loaded.is_some(), r.problems.is_empty(), "a section loads exactly when it has no problem");
        r.problems.iter().map(|p| p.variable).collect()
    }

    #[test]
    fn filters_are_validated() {
        assert!(parse_filters(r#"[{"protocol":"TCP","localPort":"80;443;"}]"#).is_ok());
        assert!(parse_filters(r#"[{"protocol":"ICMP"}]"#).is_err());
        assert!(parse_filters(r#"{"protocol":"TCP"}"#).is_err());
        assert!(parse_filters(r#"[{"evil":"x"}]"#).is_err());
    }

    #[test]
    fn storage_location_is_required_one_way_or_another() {
        assert_eq!(names(&[], &["storage_account_id"]), ["storage_account_id"]);
        assert!(names(&[("capture_file_path", "/var/captures/x.cap")], &["storage_account_id"]).is_empty());
        assert_eq!(
            names(&[("capture_file_path", "/var/captures/x.txt")], &["storage_account_id"]),
            ["capture_file_path"]
        );
        assert_eq!(
            names(
                &[(
                    "storage_account_id",
                    "/subscriptions/x/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v"
                )],
                &[]
            ),
            ["storage_account_id"]
        );
    }

    #[test]
    fn limits_are_checked_by_name() {
        assert_eq!(names(&[("max_records", "20"), ("max_active_captures", "50")], &[]), ["max_records"]);
        assert_eq!(names(&[("delete_finished_captures", "yes")], &[]), ["delete_finished_captures"]);
        assert_eq!(
            names(&[("poll_batch", "-1"), ("retention_hours", "x"), ("capture_bytes_per_packet", "4294967296")], &[]),
            ["capture_bytes_per_packet", "poll_batch", "retention_hours"]
        );
        assert_eq!(
            names(&[("allowed_scopes", "/subscriptions/00000000-0000-0000-0000-000000000000, /nope")], &[]),
            ["allowed_scopes"]
        );
        assert_eq!(names(&[("capture_name_prefix", "-bad")], &[]), ["capture_name_prefix"]);
    }
}
