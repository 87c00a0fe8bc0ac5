//! The demo's moving parts, so that `scripts/run.sh --demo` tells the whole story by itself: a
//! notification receiver that prints what it gets, a poller that calls `POST /poll` on a short
//! schedule (as a CronJob or `spin aka cron` would), the demo alert sent once the server is up,
//! and a line each time a capture changes state.

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use serde_json::Value;
use test_host::{Host, Request};
use tokio::net::TcpListener;
use wasmtime_wasi_http::io::TokioIo;

/// The demo's webhook key (also printed, and in the README's curl lines).
pub const DEMO_KEY: &str = "demo-key-0123456789abcdef";
/// The emulator's default credentials (`azure_emulator::DEFAULT_*`; a test keeps them equal).
pub const DEMO_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// See [`DEMO_TENANT`].
pub const DEMO_CLIENT: &str = "396c2760-2fa5-4948-b9d5-9839a7440836";
/// See [`DEMO_TENANT`].
pub const DEMO_SECRET: &str = "emulator-secret";
/// The storage account the emulator's `--demo` seeds.
pub const DEMO_STORAGE: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/demo-rg/providers/Microsoft.Storage/storageAccounts/demostorage";

/// The demo's variables: the emulator for Azure, the local receiver for notifications.
pub fn preset(emulator: &str, receiver: &str) -> Vec<(String, String)> {
    let emulator = emulator.trim_end_matches('/');
    [
        ("azure_authority_host", emulator.to_string()),
        ("azure_arm_endpoint", emulator.to_string()),
        ("storage_blob_host", emulator.to_string()),
        ("azure_tenant_id", DEMO_TENANT.to_string()),
        ("azure_client_id", DEMO_CLIENT.to_string()),
        ("azure_client_secret", DEMO_SECRET.to_string()),
        ("storage_account_id", DEMO_STORAGE.to_string()),
        ("webhook_keys", DEMO_KEY.to_string()),
        ("notify_url", format!("{receiver}/notify")),
        ("notify_host", receiver.to_string()),
        // Slack's body is one readable text, which is what the console shows.
        ("notify_format", "slack".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Writes one line to stdout at once (several tasks print).
pub fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// What a notification body shows on the console: Slack's `text`, else the JSON's type, VM,
/// file and summary, else the body as it came.
pub fn notification_text(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return String::from_utf8_lossy(body).into_owned();
    };
    if let Some(text) = value["text"].as_str() {
        return text.to_string();
    }
    if let Some(kind) = value["type"].as_str() {
        let mut text = format!("{kind} on {}: {}", value["vm"].as_str().unwrap_or("?"), value["cap_location"]);
        if !value["summary"].is_null() {
            text.push_str(&format!("\nsummary: {}", value["summary"]));
        }
        return text;
    }
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// Starts the notification receiver on `127.0.0.1:0`; returns its origin (`http://127.0.0.1:PORT`).
/// Every POST is printed and answered `204`.
pub async fn start_receiver() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let origin = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            tokio::spawn(async move {
                let service = service_fn(|request: hyper::Request<hyper::body::Incoming>| async move {
                    let event = request
                        .headers()
                        .get("x-apc-event-id")
                        .and_then(|v| v.to_str().ok())
                        .map(|v| format!(", event {v}"))
                        .unwrap_or_default();
                    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    say(&format!("== notification received{event}:\n{}", notification_text(&body)));
                    let mut answer = hyper::Response::new(Full::new(Bytes::new()));
                    *answer.status_mut() = http::StatusCode::NO_CONTENT;
                    Ok::<_, Infallible>(answer)
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(origin)
}

/// Capture id → state, from `GET /captures`.
pub fn states(listing: &Value) -> BTreeMap<String, String> {
    let records = listing["captures"].as_array().or_else(|| listing.as_array());
    records
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r["id"].as_str()?.to_string(), r["state"].as_str()?.to_string())))
        .collect()
}

/// The lines to print for what changed between two listings.
/// `when` ends each change's first line (e.g. which poll saw it).
pub fn changes(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    listing: &Value,
    when: &str,
) -> Vec<String> {
    let records: Vec<&Value> =
        listing["captures"].as_array().or_else(|| listing.as_array()).map(|a| a.iter().collect()).unwrap_or_default();
    let mut out = Vec::new();
    for (id, state) in after {
        let old = before.get(id);
        if old == Some(state) {
            continue;
        }
        let mut line = format!("== capture {id}: {} -> {state}{when}", old.map(String::as_str).unwrap_or("new"));
        if let Some(rec) = records.iter().find(|r| r["id"].as_str() == Some(id)) {
            for field in ["stop_reason", "storage_path", "file_path"] {
                if let Some(v) = rec[field].as_str() {
                    line.push_str(&format!("\n   {field}: {v}"));
                }
            }
        }
        out.push(line);
    }
    out
}

/// Request ids of the poller's own requests, whose log lines are not echoed.
pub type Quiet = Arc<Mutex<HashSet<u64>>>;

/// Lists the captures in process (no log line echoed).
async fn list(host: &Host, quiet: &Quiet) -> Option<Value> {
    let answer = host.request(Request::get(format!("/captures?code={DEMO_KEY}&limit=200"))).await.ok()?;
    quiet.lock().unwrap_or_else(|p| p.into_inner()).insert(answer.stats.request_id);
    answer.json().ok()
}

/// Polls every `every`, printing each capture's change of state; `after_each` runs after every
/// poll (e.g. saving the store). The count of polls is printed with each change, so a run's
/// output says how many polls the story took.
pub async fn poll_forever(host: Host, key: String, every: Duration, quiet: Quiet, after_each: impl Fn() + Send) {
    let mut known = match list(&host, &quiet).await {
        Some(listing) => states(&listing),
        None => BTreeMap::new(),
    };
    let mut polls: u64 = 0;
    // Polls that advanced a capture: the steps the story took, whatever the schedule.
    let mut advancing: u64 = 0;
    loop {
        tokio::time::sleep(every).await;
        polls += 1;
        let answer = match host.request(Request::post(format!("/poll?code={key}"), Vec::new())).await {
            Ok(answer) => answer,
            Err(e) => {
                say(&format!("== poll {polls} failed: {e}"));
                continue;
            }
        };
        quiet.lock().unwrap_or_else(|p| p.into_inner()).insert(answer.stats.request_id);
        after_each();
        if answer.status != 200 {
            say(&format!("== poll {polls}: {} {}", answer.status, answer.text()));
            continue;
        }
        let advanced = answer.json().ok().and_then(|v| v["advanced"].as_u64()).unwrap_or(0);
        if advanced == 0 {
            continue;
        }
        advancing += 1;
        if let Some(listing) = list(&host, &quiet).await {
            let now = states(&listing);
            for line in changes(&known, &now, &listing, &format!(" (poll {polls}, advancing poll {advancing})")) {
                say(&line);
            }
            known = now;
        }
    }
}

/// `unix` seconds as `YYYY-MM-DDTHH:MM:SSZ` (`None` outside the years 1 to 9999).
pub fn rfc3339(unix: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).ok()?;
    t.format(&time::format_description::well_known::Rfc3339).ok()
}

/// The demo alert fired at `unix`: a new alert (and so a new capture) on every run, while the
/// records of earlier runs stay in the store.
pub fn fresh_alert(template: &str, unix: i64) -> Result<Value, String> {
    let mut alert: Value = serde_json::from_str(template).map_err(|e| format!("the demo alert is not JSON: {e}"))?;
    let essentials = alert
        .pointer_mut("/data/essentials")
        .and_then(Value::as_object_mut)
        .ok_or("the demo alert has no data.essentials")?;
    let fired = rfc3339(unix).ok_or("the clock is out of range")?;
    essentials.insert("firedDateTime".into(), Value::String(fired));
    if let Some(id) = essentials.get("alertId").and_then(Value::as_str) {
        let id = format!("{id}-{unix}");
        essentials.insert("alertId".into(), Value::String(id));
    }
    Ok(alert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339(951_782_400).as_deref(), Some("2000-02-29T00:00:00Z"));
        assert_eq!(rfc3339(1_795_572_000).as_deref(), Some("2026-11-25T02:00:00Z"));
        assert_eq!(rfc3339(4_107_542_399).as_deref(), Some("2100-02-28T23:59:59Z"));
    }

    #[test]
    fn the_alert_is_fired_now_with_its_own_id() {
        let template =
            r#"{"data":{"essentials":{"alertId":"/x/alerts/d3m0-0000-1","firedDateTime":"2026-11-25T02:00:00Z"}}}"#;
        let a = fresh_alert(template, 1_795_572_060).unwrap();
        assert_eq!(a["data"]["essentials"]["firedDateTime"], "2026-11-25T02:01:00Z");
        assert_eq!(a["data"]["essentials"]["alertId"], "/x/alerts/d3m0-0000-1-1795572060");
        let b = fresh_alert(template, 1_795_572_061).unwrap();
        assert_ne!(a["data"]["essentials"]["alertId"], b["data"]["essentials"]["alertId"]);
        assert!(fresh_alert("{}", 0).unwrap_err().contains("essentials"));
        assert!(fresh_alert("nope", 0).is_err());
    }

    #[test]
    fn the_repository_demo_alert_is_refreshed() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/demo-alert.json")).unwrap();
        let a = fresh_alert(&text, 1_795_572_060).unwrap();
        assert_eq!(a["data"]["essentials"]["firedDateTime"], "2026-11-25T02:01:00Z");
        assert_eq!(a["data"]["essentials"]["monitorCondition"], "Fired");
    }

    #[test]
    fn state_changes_are_reported_once_with_the_file() {
        let first = json!([{"id": "a", "state": "running"}]);
        let second = json!([{"id": "a", "state": "succeeded", "stop_reason": "TimeExceeded", "storage_path": "https://s/x.cap"}, {"id": "b", "state": "queued"}]);
        let s1 = states(&first);
        let s2 = states(&second);
        let lines = changes(&s1, &s2, &second, " (poll 3)");
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("== capture a: running -> succeeded (poll 3)\n"), "{lines:?}");
        assert!(lines[0].contains("stop_reason: TimeExceeded") && lines[0].contains("storage_path: https://s/x.cap"));
        assert!(lines[1].starts_with("== capture b: new -> queued (poll 3)"), "{lines:?}");
        assert!(changes(&s2, &s2, &second, "").is_empty());
        // The object form ({"captures": [...]}) reads the same.
        assert_eq!(states(&json!({"captures": second})), s2);
    }

    #[test]
    fn notification_bodies_read_on_the_console() {
        assert_eq!(notification_text(br#"{"text":"Packet capture finished"}"#), "Packet capture finished");
        let json_body =
            br#"{"type":"capture.succeeded","vm":"demo-vm","cap_location":"https://s/x.cap","summary":null}"#;
        assert_eq!(notification_text(json_body), "capture.succeeded on demo-vm: \"https://s/x.cap\"");
        assert_eq!(notification_text(b"plain"), "plain");
    }

    #[test]
    fn the_preset_points_everything_at_the_emulator_and_the_receiver() {
        let p: BTreeMap<_, _> = preset("http://127.0.0.1:8089/", "http://127.0.0.1:5000").into_iter().collect();
        assert_eq!(p["azure_arm_endpoint"], "http://127.0.0.1:8089");
        assert_eq!(p["azure_authority_host"], "http://127.0.0.1:8089");
        assert_eq!(p["notify_url"], "http://127.0.0.1:5000/notify");
        assert_eq!(p["notify_host"], "http://127.0.0.1:5000");
        assert_eq!(p["webhook_keys"], DEMO_KEY);
    }
}
