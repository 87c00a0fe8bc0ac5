//! The capture record and its states (SPEC §6).
//!
//! A record is stored as JSON with Unix times; [`CaptureRecord::view`] renders the public shape
//! (`GET /captures/{id}`, notifications) with RFC 3339 times.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::capture_file::{DownloadUrl, FileSummary};
use crate::domain::operation::{OperationKind, OperationUrl};
use crate::domain::timefmt::rfc3339;
use crate::ports::UnixSeconds;

/// Where a capture is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Recorded, not yet accepted by Azure.
    Queued,
    /// Accepted by Azure; not yet stopped.
    Running,
    /// Azure says `Stopped` with no error.
    Succeeded,
    /// Azure refused it, it ended in `Error`, or we gave up.
    Failed,
    /// Not started, with a reason (e.g. the active-capture limit).
    Skipped,
}

impl State {
    /// `queued` or `running`: counts against `max_active_captures` and holds the VM.
    pub fn is_active(self) -> bool {
        matches!(self, State::Queued | State::Running)
    }
    /// `succeeded`, `failed` or `skipped`.
    pub fn is_terminal(self) -> bool {
        !self.is_active()
    }
    /// The name as users script against it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Skipped => "skipped",
        }
    }
    /// Parse a `?state=` filter.
    pub fn parse(s: &str) -> Option<State> {
        [State::Queued, State::Running, State::Succeeded, State::Failed, State::Skipped]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// The capture parameters decided at intake, kept so a retried create sends the same body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureSpec {
    /// `timeLimitInSeconds`.
    pub time_limit_seconds: u32,
    /// `bytesToCapturePerPacket`.
    pub bytes_per_packet: u64,
    /// `totalBytesPerSession`.
    pub bytes_per_session: u64,
    /// `filters`.
    pub filters: Vec<Value>,
    /// `storageLocation.storageId`.
    pub storage_account_id: Option<String>,
    /// `storageLocation.filePath`.
    pub file_path: Option<String>,
}

/// A `queryStatus` that Azure accepted (`202`) but has not answered yet: where to ask next
/// (SPEC §4.4, §7). Only a validated [`OperationUrl`] can be stored; the stored text is parsed
/// again, against the configured ARM origin, before it is used ([`PendingStatus::operation`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingStatus {
    /// The operation URL as text (serialised [`OperationUrl`]).
    url: String,
    /// Which header it came from.
    kind: OperationKind,
    /// When Azure accepted the `queryStatus`.
    since: UnixSeconds,
}

impl PendingStatus {
    /// Keep `operation`, accepted at `since`.
    pub fn new(operation: &OperationUrl, kind: OperationKind, since: UnixSeconds) -> Self {
        PendingStatus { url: operation.as_str().to_string(), kind, since }
    }
    /// The operation URL, if the stored text is still an [`OperationUrl`] on `arm_endpoint`
    /// (a record from another configuration, or tampered with, gives `None`).
    pub fn operation(&self, arm_endpoint: &crate::domain::origin::Origin) -> Option<OperationUrl> {
        OperationUrl::parse(&self.url, arm_endpoint)
    }
    /// Which header the URL came from.
    pub fn kind(&self) -> OperationKind {
        self.kind
    }
    /// When Azure accepted the `queryStatus`.
    pub fn since(&self) -> UnixSeconds {
        self.since
    }
}

/// Most alert ids kept on one record; further coalesced alerts are counted, not listed.
pub const MAX_ALERT_IDS: usize = 100;

/// One capture (or one skipped alert), as stored under `v1:cap:{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureRecord {
    /// Record id; equals the capture name.
    pub id: String,
    /// The packet capture name in Azure.
    pub name: String,
    /// The target id (VM, scale set, or scale-set instance).
    pub vm: String,
    /// Lower-case target id: the identity of "one capture per VM".
    pub vm_key: String,
    /// The Network Watcher id, once known.
    pub watcher: Option<String>,
    /// The VM's region, once known.
    pub location: Option<String>,
    /// Our state.
    pub state: State,
    /// Azure's last `packetCaptureStatus`, as Azure spelled it.
    pub azure_status: Option<String>,
    /// Azure's `stopReason`, or `TimedOutByResponder` when we stopped it.
    pub stop_reason: Option<String>,
    /// Errors, newest last, each one line for a person.
    pub errors: Vec<String>,
    /// Warnings such as a bad per-rule override (defaults were used).
    pub warnings: Vec<String>,
    /// Alert identities attached to this capture.
    pub alert_ids: Vec<String>,
    /// Alerts attached beyond [`MAX_ALERT_IDS`].
    pub alert_ids_dropped: u32,
    /// The alert rule that started it.
    pub alert_rule: Option<String>,
    /// Why it was skipped (`limit`).
    pub skip_reason: Option<String>,
    /// Parameters sent to Azure.
    pub spec: CaptureSpec,
    /// Creation time.
    pub created_at: UnixSeconds,
    /// Last change.
    pub updated_at: UnixSeconds,
    /// When Azure accepted it.
    pub started_at: Option<UnixSeconds>,
    /// When it reached a terminal state.
    pub finished_at: Option<UnixSeconds>,
    /// When it next needs work; `None` once nothing is left to do.
    pub next_check_at: Option<UnixSeconds>,
    /// Create attempts made.
    pub attempts: u32,
    /// Blob URL of the `.cap` file.
    pub storage_path: Option<String>,
    /// Path of the `.cap` file on the VM.
    pub file_path: Option<String>,
    /// A notification was delivered.
    pub notified: bool,
    /// Notification deliveries tried.
    pub notify_attempts: u32,
    /// Why the last delivery failed.
    pub notify_error: Option<String>,
    /// The Azure capture resource was deleted (the `.cap` file stays).
    pub azure_deleted: bool,
    /// Azure reported it `Running` (or `Stopped`) at least once: only then can a capture we
    /// stop ourselves have written a file.
    #[serde(default)]
    pub seen_running: bool,
    /// Deletions of the finished Azure capture resource tried.
    #[serde(default)]
    pub cleanup_attempts: u32,
    /// `POST /captures/{id}/stop` came while the record was `queued`: no new `PUT`; the next
    /// check stops the Azure capture by name if a create made it, or ends the record if not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stop_requested: bool,
    /// The last create's outcome is unknown (a time-out on the last attempt): the next checks
    /// look the capture up by name instead of creating it, so it is followed if it exists.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_unknown: bool,
    /// Digests of the alert facts (`v1:al:{id}:{digest}`) already copied into `alert_ids`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen_facts: Vec<String>,
    /// A status question Azure has not answered yet; the next check asks there instead of
    /// issuing a new `queryStatus`. Cleared by a stop and by every terminal state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_operation: Option<PendingStatus>,
    /// Azure's `captureStartTime`: RFC 3339 when it could be read, else Azure's text as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_start_time: Option<String>,
    /// When Azure first answered that it holds no capture of this name while we expected one.
    /// On a store that shows other requests' writes late, that is what a check of an old copy
    /// of a record sees after another request finished and deleted the capture; the record is
    /// failed only when a check at least `poller::STORE_SETTLE_SECS` later still finds it
    /// missing (by then the finished record, if any, is visible and wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_since: Option<UnixSeconds>,
    /// The capture file's traffic summary, or why there is none (issue 10); `None` until a
    /// `succeeded` capture's file has been looked at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<FileSummary>,
    /// Checks that found the file not readable yet.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub summary_attempts: u32,
    /// A read-only link to the file. A credential: on the record and in the notification,
    /// never in a log line or an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<DownloadUrl>,
    /// Why there is no download link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_error: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl CaptureRecord {
    /// A new `queued` record for capture `name` on the target `vm` (its id as shown, and its
    /// lower-case key), due now; everything else empty.
    pub fn queued(name: String, vm: String, vm_key: String, spec: CaptureSpec, now: UnixSeconds) -> Self {
        CaptureRecord {
            id: name.clone(),
            name,
            vm,
            vm_key,
            watcher: None,
            location: None,
            state: State::Queued,
            azure_status: None,
            stop_reason: None,
            errors: Vec::new(),
            warnings: Vec::new(),
            alert_ids: Vec::new(),
            alert_ids_dropped: 0,
            alert_rule: None,
            skip_reason: None,
            spec,
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
            next_check_at: Some(now),
            attempts: 0,
            storage_path: None,
            file_path: None,
            notified: false,
            notify_attempts: 0,
            notify_error: None,
            azure_deleted: false,
            seen_running: false,
            cleanup_attempts: 0,
            stop_requested: false,
            create_unknown: false,
            seen_facts: Vec::new(),
            status_operation: None,
            capture_start_time: None,
            missing_since: None,
            summary: None,
            summary_attempts: 0,
            download: None,
            download_error: None,
        }
    }

    /// The public JSON shape, times in RFC 3339 UTC.
    pub fn view(&self) -> Value {
        let t = |v: Option<UnixSeconds>| v.map(rfc3339);
        json!({
            "id": self.id,
            "name": self.name,
            "vm": self.vm,
            "watcher": self.watcher,
            "state": self.state.as_str(),
            "azure_status": self.azure_status,
            "stop_reason": self.stop_reason,
            "skip_reason": self.skip_reason,
            "errors": self.errors,
            "warnings": self.warnings,
            "alert_ids": self.alert_ids,
            "alert_ids_dropped": self.alert_ids_dropped,
            "alert_rule": self.alert_rule,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "started_at": t(self.started_at),
            "capture_start_time": self.capture_start_time,
            "finished_at": t(self.finished_at),
            "next_check_at": t(self.next_check_at),
            "attempts": self.attempts,
            "storage_path": self.storage_path,
            "file_path": self.file_path,
            "notified": self.notified,
            "notify_attempts": self.notify_attempts,
            "notify_error": self.notify_error,
            "azure_deleted": self.azure_deleted,
            "time_limit_seconds": self.spec.time_limit_seconds,
            "summary": self.summary.as_ref().and_then(FileSummary::summary),
            "summary_note": match &self.summary {
                Some(FileSummary::Summarised { note, .. }) => note.as_deref(),
                _ => None,
            },
            "summary_unavailable": match &self.summary {
                Some(FileSummary::Unavailable { code, reason }) => json!({"code": code, "reason": reason}),
                _ => Value::Null,
            },
            "download_url": self.download.as_ref().map(|d| d.url.as_str()),
            "download_url_expires_at": self.download.as_ref().map(|d| rfc3339(d.expires_at)),
            "download_unavailable": self.download_error,
        })
    }

    /// Attach an alert; `false` when it was already attached.
    pub fn attach_alert(&mut self, identity: &str) -> bool {
        if self.alert_ids.iter().any(|a| a == identity) {
            return false;
        }
        if self.alert_ids.len() >= MAX_ALERT_IDS {
            self.alert_ids_dropped += 1;
        } else {
            self.alert_ids.push(identity.to_string());
        }
        true
    }

    /// Move to a terminal state now; work remains (notify, delete), so it stays due. A pending
    /// status question is dropped: nothing asks it any more.
    pub fn finish(&mut self, state: State, now: UnixSeconds) {
        self.state = state;
        self.status_operation = None;
        self.finished_at = Some(now);
        self.next_check_at = Some(now);
    }

    /// Add an error line, keeping the newest 20.
    pub fn push_error(&mut self, e: impl Into<String>) {
        self.errors.push(e.into());
        if self.errors.len() > 20 {
            self.errors.remove(0);
        }
    }
}
