//! Notifications (SPEC §8): `json`, `slack` and `teams` bodies, and their delivery.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::NotifyFormat;
use crate::ports::{HttpClient, Method, OutboundRequest, TransportError};
use crate::record::{CaptureRecord, State};
use crate::store::hex;

/// The event id of a record's terminal notification: the same on every retry, so receivers can
/// de-duplicate at-least-once deliveries.
pub fn event_id(rec: &CaptureRecord) -> String {
    let mut h = Sha256::new();
    h.update(rec.id.as_bytes());
    h.update(b"\n");
    h.update(rec.state.as_str().as_bytes());
    hex(&h.finalize()[..16])
}

/// Where the `.cap` file is, for a person.
pub fn cap_location(rec: &CaptureRecord) -> Option<String> {
    rec.storage_path.clone().or_else(|| rec.file_path.clone())
}

fn headline(rec: &CaptureRecord) -> String {
    let rule = rec.alert_rule.as_deref().unwrap_or("an alert");
    match rec.state {
        State::Succeeded => match cap_location(rec) {
            Some(loc) => {
                format!("Packet capture {} on {} finished (alert {rule}). The .cap file is at {loc}", rec.name, rec.vm)
            }
            None => format!("Packet capture {} on {} finished (alert {rule}).", rec.name, rec.vm),
        },
        State::Failed => format!(
            "Packet capture {} on {} failed (alert {rule}): {}",
            rec.name,
            rec.vm,
            rec.errors.last().map(String::as_str).unwrap_or("no detail")
        ),
        State::Skipped => format!(
            "No packet capture for alert {rule} on {}: skipped ({}).",
            rec.vm,
            rec.skip_reason.as_deref().unwrap_or("no reason recorded")
        ),
        State::Queued | State::Running => {
            format!("Packet capture {} on {} is {}.", rec.name, rec.vm, rec.state.as_str())
        }
    }
}

/// The body to POST for `rec` in `format`.
pub fn body(rec: &CaptureRecord, format: NotifyFormat) -> Value {
    match format {
        NotifyFormat::Json => json!({
            "id": event_id(rec),
            "type": format!("capture.{}", rec.state.as_str()),
            "alert_rule": rec.alert_rule,
            "vm": rec.vm,
            "cap_location": cap_location(rec),
            "summary": headline(rec),
            "capture": rec.view(),
        }),
        NotifyFormat::Slack => json!({ "text": headline(rec) }),
        NotifyFormat::Teams => {
            let mut facts = vec![
                json!({"title": "VM", "value": rec.vm}),
                json!({"title": "State", "value": rec.state.as_str()}),
                json!({"title": "Capture", "value": rec.name}),
            ];
            if let Some(loc) = cap_location(rec) {
                facts.push(json!({"title": ".cap file", "value": loc}));
            }
            if let Some(rule) = &rec.alert_rule {
                facts.push(json!({"title": "Alert rule", "value": rule}));
            }
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {"type": "TextBlock", "text": headline(rec), "wrap": true, "weight": "Bolder"},
                            {"type": "FactSet", "facts": facts},
                            {"type": "TextBlock", "text": format!("Event {}", event_id(rec)), "isSubtle": true, "size": "Small"}
                        ]
                    }
                }]
            })
        }
    }
}

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// The receiver answered with a non-2xx status.
    #[error("notify_url answered HTTP {0}")]
    Status(u16),
    /// No answer.
    #[error("notify_url could not be reached: {0}")]
    Transport(TransportError),
}

/// POST the notification for `rec` to `url`.
pub fn deliver(http: &dyn HttpClient, url: &str, rec: &CaptureRecord, format: NotifyFormat) -> Result<(), NotifyError> {
    let request = OutboundRequest {
        method: Method::Post,
        url: url.to_string(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("user-agent".into(), concat!("alert-packet-capture/", env!("CARGO_PKG_VERSION")).into()),
            ("x-apc-event-id".into(), event_id(rec)),
        ],
        body: serde_json::to_vec(&body(rec, format)).unwrap_or_default(),
    };
    match http.send(&request) {
        Ok(r) if (200..300).contains(&r.status) => Ok(()),
        Ok(r) => Err(NotifyError::Status(r.status)),
        Err(e) => Err(NotifyError::Transport(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::CaptureSpec;

    fn record(state: State) -> CaptureRecord {
        let spec = CaptureSpec {
            time_limit_seconds: 300,
            bytes_per_packet: 0,
            bytes_per_session: 1,
            filters: vec![],
            storage_account_id: None,
            file_path: None,
        };
        CaptureRecord {
            state,
            location: Some("westus".into()),
            azure_status: Some("Stopped".into()),
            stop_reason: Some("TimeExceeded".into()),
            errors: vec!["ARM 400 InvalidRequest: bad".into()],
            alert_ids: vec!["a|t".into()],
            alert_rule: Some("tcp-segments-sent".into()),
            skip_reason: Some("limit".into()),
            attempts: 1,
            storage_path: Some("https://st.blob.core.windows.net/c/x.cap".into()),
            ..CaptureRecord::queued(
                "apc-vm1-20261125T020000-0a1b2c3d".into(),
                "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1".into(),
                "k".into(),
                spec,
                0,
            )
        }
    }

    #[test]
    fn event_id_is_stable_per_record_and_state() {
        let a = record(State::Succeeded);
        assert_eq!(event_id(&a), event_id(&a.clone()));
        assert_ne!(event_id(&a), event_id(&record(State::Failed)));
        assert_eq!(event_id(&a).len(), 32);
    }

    #[test]
    fn slack_and_teams_bodies_carry_the_file_location() {
        let r = record(State::Succeeded);
        let slack = body(&r, NotifyFormat::Slack);
        assert!(slack["text"].as_str().unwrap().contains("https://st.blob.core.windows.net/c/x.cap"));
        let teams = body(&r, NotifyFormat::Teams);
        assert_eq!(teams["type"], "message");
        let card = &teams["attachments"][0];
        assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert!(card["content"].to_string().contains("x.cap"));
        let failed = body(&record(State::Failed), NotifyFormat::Json);
        assert_eq!(failed["type"], "capture.failed");
        assert!(failed["summary"].as_str().unwrap().contains("InvalidRequest"));
        let skipped = body(&record(State::Skipped), NotifyFormat::Slack);
        assert!(skipped["text"].as_str().unwrap().contains("skipped (limit)"));
    }
}
