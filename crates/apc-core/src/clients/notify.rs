//! Notifications (SPEC §8): `json`, `slack` and `teams` bodies, and their delivery.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::domain::capture_file::FileSummary;
use crate::domain::config::NotifyFormat;
use crate::domain::digest::hex;
use crate::domain::record::{CaptureRecord, State};
use crate::domain::summary::Summary;
use crate::domain::summary::thousands;
use crate::domain::timefmt::rfc3339;
use crate::ports::{HttpClient, Method, OutboundRequest, TransportError};

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

/// How text is marked up in a notification format. Everything we did not write ourselves (alert
/// rule names, VM and capture names, ARM error messages, skip and stop reasons) goes through
/// [`Markup::text`]; only our own `.cap` link goes through [`Markup::link`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Markup {
    /// JSON: values are data, not markup; sent as they are.
    Plain,
    /// Slack `mrkdwn`: Slack documents that only `&`, `<` and `>` need escaping, as `&amp;`,
    /// `&lt;` and `&gt;`; that alone disarms `<!channel>`, `<!here>`, `<@U123>` and
    /// `<https://evil|click>`. Slack has no escape for `*`, `_`, `~` or `` ` ``: those may still
    /// style foreign text, but cannot link or mention.
    Slack,
    /// Adaptive Card markdown (TextBlock, Fact.Title, Fact.Value): bold, italic, lists and
    /// `[text](url)` links; HTML is not rendered and mentions need `msteams.entities`. Markdown
    /// punctuation is escaped with a backslash, as CommonMark allows for any ASCII punctuation.
    Teams,
}

/// Characters that start or end Adaptive Card markdown (emphasis, links, lists, code, the
/// `{{DATE(…)}}` substitution) and the backslash itself.
const TEAMS_SPECIAL: &[char] = &['\\', '*', '_', '[', ']', '(', ')', '~', '`', '#', '<', '>', '{', '}', '!', '|'];

impl Markup {
    /// Foreign text, made inert: line breaks become spaces (a new line could start a list), URLs
    /// lose their `://` so that no client turns them into links (a word joiner, U+2060, is put
    /// after the colon: the text reads the same), and the format's own markup is escaped.
    fn text(self, s: &str) -> String {
        if self == Markup::Plain {
            return s.to_string();
        }
        let one_line: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let unlinked = one_line.trim_start().replace("://", ":\u{2060}//");
        let mut out = String::with_capacity(unlinked.len() + 8);
        // Still in a leading run of digits (`1.` would start a numbered list).
        let mut leading_digits = true;
        for (i, c) in unlinked.chars().enumerate() {
            match (self, c) {
                (Markup::Slack, '&') => out.push_str("&amp;"),
                (Markup::Slack, '<') => out.push_str("&lt;"),
                (Markup::Slack, '>') => out.push_str("&gt;"),
                (Markup::Teams, c) if TEAMS_SPECIAL.contains(&c) => {
                    out.push('\\');
                    out.push(c);
                }
                // A leading `-` or `+`, or `.` after leading digits, would make a list item.
                (Markup::Teams, '-' | '+') if i == 0 => out.push_str(&format!("\\{c}")),
                (Markup::Teams, '.') if leading_digits && i > 0 => out.push_str("\\."),
                _ => out.push(c),
            }
            leading_digits &= c.is_ascii_digit();
        }
        out
    }

    /// Our own link (the `.cap` file's URL): clickable when it is a plain `https://` URL of
    /// characters that need no escaping in either format; anything else is shown as text.
    fn link(self, url: &str) -> String {
        let safe = url.strip_prefix("https://").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/:%".contains(&b))
        });
        match self {
            Markup::Plain => url.to_string(),
            Markup::Slack if safe => format!("<{url}>"),
            Markup::Teams if safe => format!("[{}]({url})", url.replace('_', "\\_").replace('~', "\\~")),
            _ => self.text(url),
        }
    }
}

impl Markup {
    /// Our own signed download link (a credential for its reader): clickable when it is an
    /// http(s) URL of characters that need no escaping (a SAS is percent-encoded), else text.
    fn download(self, url: &str, label: &str) -> String {
        let safe = (url.starts_with("https://") || url.starts_with("http://"))
            && url.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/:%?=&".contains(&b));
        match self {
            Markup::Plain => url.to_string(),
            // Slack reads `&` inside a link as `&amp;`, like anywhere else.
            Markup::Slack if safe => format!("<{}|{label}>", url.replace('&', "&amp;")),
            Markup::Teams if safe => format!("[{label}]({url})"),
            _ => self.text(url),
        }
    }
}

/// `512 B`, `1.5 KiB`, `8.0 MiB`, `1.2 GiB`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// How much of the file the summary saw, when not all of it.
fn coverage(s: &Summary) -> Option<String> {
    let f = &s.file;
    let mut parts = Vec::new();
    if f.stopped_at_limit {
        parts.push(match f.bytes_total {
            Some(t) => format!(
                "summarised the first {} of {} (capture_summary_max_bytes)",
                human_bytes(f.bytes_seen),
                human_bytes(t)
            ),
            None => format!("summarised the first {} (capture_summary_max_bytes)", human_bytes(f.bytes_seen)),
        });
    }
    if f.truncated {
        parts.push("the file ends inside its last packet".to_string());
    }
    if let Some(d) = &f.damaged {
        parts.push(format!("the file is damaged: {d}"));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The key figures as (title, value) pairs, values not yet marked up.
fn key_figures(s: &Summary) -> Vec<(&'static str, String)> {
    let p = &s.protocols;
    let mut out = vec![
        (
            "Packets",
            format!(
                "{} ({} in {:.1} s{})",
                thousands(s.packets),
                human_bytes(s.bytes),
                s.duration_seconds,
                s.bytes_per_second.map(|b| format!(", {}/s", human_bytes(b as u64))).unwrap_or_default()
            ),
        ),
        (
            "Protocols",
            format!(
                "IPv4 {}, IPv6 {}, TCP {}, UDP {}, ICMP {}, other {}",
                thousands(p.ipv4),
                thousands(p.ipv6),
                thousands(p.tcp),
                thousands(p.udp),
                thousands(p.icmp + p.icmpv6),
                thousands(p.other_transport + p.non_ip)
            ),
        ),
        (
            "TCP",
            format!(
                "SYN {} ({} unanswered), SYN-ACK {}, RST {}, FIN {}, retransmissions ~{}, zero windows {}",
                thousands(s.tcp.syn),
                thousands(s.tcp.syn_unanswered),
                thousands(s.tcp.syn_ack),
                thousands(s.tcp.rst),
                thousands(s.tcp.fin),
                thousands(s.tcp.retransmissions),
                thousands(s.tcp.zero_window)
            ),
        ),
    ];
    if let Some(c) = s.top_conversations.first() {
        let port = |p: Option<u16>| p.map(|p| format!(":{p}")).unwrap_or_default();
        out.push((
            "Top conversation",
            format!(
                "{} {}{} → {}{} ({}, community id {})",
                c.protocol,
                c.a_address,
                port(c.a_port),
                c.b_address,
                port(c.b_port),
                human_bytes(c.bytes_a_to_b + c.bytes_b_to_a),
                c.community_id
            ),
        ));
    }
    if !s.top_destination_ports.is_empty() {
        let ports: Vec<String> = s
            .top_destination_ports
            .iter()
            .map(|p| match &p.service {
                Some(name) => format!("{}/{} ({name})", p.port, p.protocol),
                None => format!("{}/{}", p.port, p.protocol),
            })
            .collect();
        out.push(("Top ports", ports.join(", ")));
    }
    if let Some(c) = coverage(s) {
        out.push(("Coverage", c));
    }
    out
}

/// The top talkers as rows of (address, bytes, packets).
fn talker_rows(s: &Summary) -> Vec<[String; 3]> {
    s.top_talkers.iter().map(|t| [t.address.clone(), human_bytes(t.bytes), thousands(t.packets)]).collect()
}

/// The reason there is no summary, for people.
fn summary_missing(rec: &CaptureRecord) -> Option<&str> {
    match &rec.summary {
        Some(FileSummary::Unavailable { reason, .. }) => Some(reason),
        _ => None,
    }
}

/// Slack: the summary as a few lines and a code-block table, the link, or the reasons.
fn slack_summary(rec: &CaptureRecord) -> String {
    let m = Markup::Slack;
    let mut out = String::new();
    if let Some(s) = rec.summary.as_ref().and_then(FileSummary::summary) {
        out.push_str(&format!("\n*Traffic:* {}", m.text(&s.headline)));
        for (title, value) in key_figures(s) {
            out.push_str(&format!("\n• *{title}:* {}", m.text(&value)));
        }
        let rows = talker_rows(s);
        if !rows.is_empty() {
            let width = rows.iter().map(|r| r[0].len()).max().unwrap_or(0).max("Top talker".len());
            out.push_str(&format!("\n```{:<width$}  {:>10}  {:>8}", "Top talker", "Bytes", "Packets"));
            for [addr, bytes, packets] in rows {
                out.push_str(&format!("\n{:<width$}  {:>10}  {:>8}", m.text(&addr), bytes, packets));
            }
            out.push_str("```");
        }
    } else if let Some(why) = summary_missing(rec) {
        out.push_str(&format!("\n_No traffic summary:_ {}", m.text(why)));
    }
    match (&rec.download, &rec.download_error) {
        (Some(d), _) => out.push_str(&format!(
            "\n{} (expires {})",
            m.download(&d.url, "Download the .cap file"),
            rfc3339(d.expires_at)
        )),
        (None, Some(why)) if rec.state == State::Succeeded => out.push_str(&format!("\n_{}_", m.text(why))),
        _ => {}
    }
    out
}

/// Teams: Adaptive Card elements for the summary (a fact set and a three-column table), the
/// link, or the reasons.
fn teams_summary(rec: &CaptureRecord) -> Vec<Value> {
    let m = Markup::Teams;
    let mut out = Vec::new();
    if let Some(s) = rec.summary.as_ref().and_then(FileSummary::summary) {
        out.push(json!({"type": "TextBlock", "text": format!("Traffic: {}", m.text(&s.headline)), "wrap": true, "weight": "Bolder"}));
        let facts: Vec<Value> =
            key_figures(s).into_iter().map(|(t, v)| json!({"title": t, "value": m.text(&v)})).collect();
        out.push(json!({"type": "FactSet", "facts": facts}));
        let rows = talker_rows(s);
        if !rows.is_empty() {
            let column = |i: usize, title: &str, align: &str| {
                let mut items =
                    vec![json!({"type": "TextBlock", "text": title, "weight": "Bolder", "horizontalAlignment": align})];
                items.extend(rows.iter().map(|r| json!({"type": "TextBlock", "text": m.text(&r[i]), "horizontalAlignment": align, "spacing": "None"})));
                json!({"type": "Column", "width": if i == 0 { "stretch" } else { "auto" }, "items": items})
            };
            out.push(json!({
                "type": "ColumnSet",
                "columns": [column(0, "Top talker", "Left"), column(1, "Bytes", "Right"), column(2, "Packets", "Right")]
            }));
        }
    } else if let Some(why) = summary_missing(rec) {
        out.push(json!({"type": "TextBlock", "text": format!("No traffic summary: {}", m.text(why)), "wrap": true}));
    }
    match (&rec.download, &rec.download_error) {
        (Some(d), _) => out.push(json!({
            "type": "TextBlock",
            "text": format!("{} (expires {})", m.download(&d.url, "Download the .cap file"), m.text(&rfc3339(d.expires_at))),
            "wrap": true
        })),
        (None, Some(why)) if rec.state == State::Succeeded => {
            out.push(json!({"type": "TextBlock", "text": m.text(why), "wrap": true, "isSubtle": true}))
        }
        _ => {}
    }
    out
}

fn headline(rec: &CaptureRecord, m: Markup) -> String {
    let rule = match rec.alert_rule.as_deref() {
        Some(r) => m.text(r),
        None => "an alert".to_string(),
    };
    let (name, vm) = (m.text(&rec.name), m.text(&rec.vm));
    match rec.state {
        State::Succeeded => match (&rec.storage_path, &rec.file_path) {
            (Some(url), _) => {
                format!("Packet capture {name} on {vm} finished (alert {rule}). The .cap file is at {}", m.link(url))
            }
            (None, Some(path)) => {
                format!("Packet capture {name} on {vm} finished (alert {rule}). The .cap file is at {}", m.text(path))
            }
            (None, None) => format!("Packet capture {name} on {vm} finished (alert {rule})."),
        },
        State::Failed => format!(
            "Packet capture {name} on {vm} failed (alert {rule}): {}",
            rec.errors.last().map(|e| m.text(e)).unwrap_or_else(|| "no detail".to_string())
        ),
        State::Skipped => format!(
            "No packet capture for alert {rule} on {vm}: skipped ({}).",
            rec.skip_reason.as_deref().map(|r| m.text(r)).unwrap_or_else(|| "no reason recorded".to_string())
        ),
        State::Queued | State::Running => {
            format!("Packet capture {name} on {vm} is {}.", rec.state.as_str())
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
            "summary": headline(rec, Markup::Plain),
            "traffic_summary": rec.summary.as_ref().and_then(FileSummary::summary),
            "traffic_summary_unavailable": match &rec.summary {
                Some(FileSummary::Unavailable { code, reason }) => json!({"code": code, "reason": reason}),
                _ => Value::Null,
            },
            "download_url": rec.download.as_ref().map(|d| d.url.as_str()),
            "capture": rec.view(),
        }),
        NotifyFormat::Slack => json!({ "text": format!("{}{}", headline(rec, Markup::Slack), slack_summary(rec)) }),
        NotifyFormat::Teams => {
            let m = Markup::Teams;
            let mut facts = vec![
                json!({"title": "VM", "value": m.text(&rec.vm)}),
                json!({"title": "State", "value": rec.state.as_str()}),
                json!({"title": "Capture", "value": m.text(&rec.name)}),
            ];
            match (&rec.storage_path, &rec.file_path) {
                (Some(url), _) => facts.push(json!({"title": ".cap file", "value": m.link(url)})),
                (None, Some(path)) => facts.push(json!({"title": ".cap file", "value": m.text(path)})),
                (None, None) => {}
            }
            if let Some(rule) = &rec.alert_rule {
                facts.push(json!({"title": "Alert rule", "value": m.text(rule)}));
            }
            if let Some(reason) = &rec.stop_reason {
                facts.push(json!({"title": "Stop reason", "value": m.text(reason)}));
            }
            let mut card_body = vec![
                json!({"type": "TextBlock", "text": headline(rec, m), "wrap": true, "weight": "Bolder"}),
                json!({"type": "FactSet", "facts": facts}),
            ];
            card_body.extend(teams_summary(rec));
            card_body.push(
                json!({"type": "TextBlock", "text": format!("Event {}", event_id(rec)), "isSubtle": true, "size": "Small"}),
            );
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": card_body
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
    use crate::domain::record::CaptureSpec;

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

    /// The word joiner put after `://` in foreign URLs.
    const WJ: &str = "\u{2060}";

    #[test]
    fn slack_escapes_control_sequences_exactly() {
        let m = Markup::Slack;
        assert_eq!(m.text("<!channel> & <!here>"), "&lt;!channel&gt; &amp; &lt;!here&gt;");
        assert_eq!(m.text("ping <@U123>"), "ping &lt;@U123&gt;");
        assert_eq!(m.text("<https://evil|click>"), format!("&lt;https:{WJ}//evil|click&gt;"));
        assert_eq!(m.text("a &amp; b"), "a &amp;amp; b");
        assert_eq!(m.text("line1\n<!everyone>"), "line1 &lt;!everyone&gt;");
        assert_eq!(m.text("see http://evil.example/x"), format!("see http:{WJ}//evil.example/x"));
        assert_eq!(m.text("rg-été 资源组"), "rg-été 资源组");
        // Our own link stays a link; a URL that is not plainly safe does not.
        assert_eq!(m.link("https://st.blob.core.windows.net/c/x.cap"), "<https://st.blob.core.windows.net/c/x.cap>");
        assert_eq!(m.link("https://evil|click"), format!("https:{WJ}//evil|click"));
        assert_eq!(m.link("http://st.example/x.cap"), format!("http:{WJ}//st.example/x.cap"));
        assert_eq!(m.link("https://a/b>c"), format!("https:{WJ}//a/b&gt;c"));
    }

    #[test]
    fn teams_escapes_markdown_exactly() {
        let m = Markup::Teams;
        assert_eq!(m.text("[click](https://evil)"), format!("\\[click\\]\\(https:{WJ}//evil\\)"));
        assert_eq!(m.text("**bold** _it_ ~s~ `c`"), "\\*\\*bold\\*\\* \\_it\\_ \\~s\\~ \\`c\\`");
        assert_eq!(m.text("<at>Boss</at>"), "\\<at\\>Boss\\</at\\>");
        assert_eq!(
            m.text("{{DATE(2017-02-14T06:08:39Z, SHORT)}}"),
            "\\{\\{DATE\\(2017-02-14T06:08:39Z, SHORT\\)\\}\\}"
        );
        assert_eq!(m.text("- item"), "\\- item");
        assert_eq!(m.text("  + item"), "\\+ item");
        assert_eq!(m.text("1. first"), "1\\. first");
        assert_eq!(m.text("10.0.0.1 down"), "10\\.0.0.1 down");
        assert_eq!(m.text("vm-1 a-b 2.5"), "vm-1 a-b 2.5");
        assert_eq!(m.text("C:\\x ![img](u)"), "C:\\\\x \\!\\[img\\]\\(u\\)");
        assert_eq!(m.text("a\r\n- b"), "a  - b");
        assert_eq!(
            m.link("https://st.blob.core.windows.net/c/apc_vm1.cap"),
            "[https://st.blob.core.windows.net/c/apc\\_vm1.cap](https://st.blob.core.windows.net/c/apc_vm1.cap)"
        );
        assert_eq!(m.link("https://evil)[x](https://y"), format!("https:{WJ}//evil\\)\\[x\\]\\(https:{WJ}//y"));
    }

    fn hostile(state: State) -> CaptureRecord {
        CaptureRecord {
            alert_rule: Some("<!channel> [click](https://evil) *now*".into()),
            errors: vec!["ARM 400: <@U123> said **no** & left".into()],
            skip_reason: Some("<https://evil|limit>".into()),
            stop_reason: Some("_Time_Exceeded_".into()),
            ..record(state)
        }
    }

    #[test]
    fn hostile_payload_text_is_inert_in_slack() {
        let b = body(&hostile(State::Failed), NotifyFormat::Slack);
        assert_eq!(
            b["text"],
            format!(
                "Packet capture apc-vm1-20261125T020000-0a1b2c3d on /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1 \
                 failed (alert &lt;!channel&gt; [click](https:{WJ}//evil) *now*): ARM 400: &lt;@U123&gt; said **no** &amp; left"
            )
        );
        let b = body(&hostile(State::Skipped), NotifyFormat::Slack);
        assert!(b["text"].as_str().unwrap().ends_with(&format!("skipped (&lt;https:{WJ}//evil|limit&gt;).")), "{b}");
        let b = body(&hostile(State::Succeeded), NotifyFormat::Slack);
        assert!(
            b["text"].as_str().unwrap().ends_with("The .cap file is at <https://st.blob.core.windows.net/c/x.cap>")
        );
    }

    #[test]
    fn hostile_payload_text_is_inert_in_teams() {
        let b = body(&hostile(State::Succeeded), NotifyFormat::Teams);
        let content = &b["attachments"][0]["content"];
        assert_eq!(
            content["body"][0]["text"],
            format!(
                "Packet capture apc-vm1-20261125T020000-0a1b2c3d on /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1 \
                 finished (alert \\<\\!channel\\> \\[click\\]\\(https:{WJ}//evil\\) \\*now\\*). \
                 The .cap file is at [https://st.blob.core.windows.net/c/x.cap](https://st.blob.core.windows.net/c/x.cap)"
            )
        );
        let facts = content["body"][1]["facts"].as_array().unwrap();
        let fact = |t: &str| facts.iter().find(|f| f["title"] == t).map(|f| f["value"].clone());
        assert_eq!(
            fact("Alert rule").unwrap(),
            format!("\\<\\!channel\\> \\[click\\]\\(https:{WJ}//evil\\) \\*now\\*")
        );
        assert_eq!(fact("Stop reason").unwrap(), "\\_Time\\_Exceeded\\_");
        assert_eq!(fact("State").unwrap(), "succeeded");
        assert_eq!(
            fact(".cap file").unwrap(),
            "[https://st.blob.core.windows.net/c/x.cap](https://st.blob.core.windows.net/c/x.cap)"
        );
    }

    #[test]
    fn json_format_is_unchanged_by_escaping() {
        let r = hostile(State::Failed);
        let b = body(&r, NotifyFormat::Json);
        assert_eq!(b["alert_rule"], "<!channel> [click](https://evil) *now*");
        assert_eq!(b["vm"], r.vm.as_str());
        assert_eq!(
            b["summary"],
            format!(
                "Packet capture {} on {} failed (alert <!channel> [click](https://evil) *now*): ARM 400: <@U123> said **no** & left",
                r.name, r.vm
            )
        );
        assert_eq!(b["cap_location"], "https://st.blob.core.windows.net/c/x.cap");
        let keys: Vec<&String> = b.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "alert_rule",
                "cap_location",
                "capture",
                "download_url",
                "id",
                "summary",
                "traffic_summary",
                "traffic_summary_unavailable",
                "type",
                "vm"
            ]
        );
    }
    fn summarised() -> CaptureRecord {
        use crate::domain::capture_file::{DownloadUrl, FileSummary};
        use crate::domain::summary::testcap::{ACK, Format, SYN, tcp, write};
        let mut packets = vec![(1_000_000_000, tcp("10.0.0.4", 50000, "203.0.113.9", 443, SYN, 1, 0))];
        for i in 0..20 {
            packets.push((2_000_000_000 + i, tcp("203.0.113.9", 443, "10.0.0.4", 50000, ACK, 100 + i as u32, 1400)));
        }
        let file = write(Format::Pcap { big_endian: false, nanos: false }, &packets);
        let mut s = crate::domain::summary::Summarizer::new(1 << 20);
        s.feed(&file);
        let summary = s.finish().unwrap();
        CaptureRecord {
            summary: Some(FileSummary::Summarised { summary: Box::new(summary), note: None }),
            download: Some(DownloadUrl {
                url: "https://st.blob.core.windows.net/c/x.cap?sp=r&se=2026-11-26T02%3A00%3A00Z&sig=ab%2Bc%3D".into(),
                expires_at: 1_795_658_400,
            }),
            ..record(State::Succeeded)
        }
    }

    #[test]
    fn slack_carries_figures_a_talker_table_and_the_link() {
        let r = summarised();
        let text = body(&r, NotifyFormat::Slack)["text"].as_str().unwrap().to_string();
        let headline = &r.summary.as_ref().unwrap().summary().unwrap().headline;
        assert!(text.contains(&format!("*Traffic:* {headline}")), "{text}");
        assert!(text.contains("• *Packets:* 21 ("), "{text}");
        assert!(text.contains("SYN 1 (1 unanswered)"), "{text}");
        // The table: a header and the two hosts, busiest first.
        let table = text.split("```").nth(1).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("Top talker"), "{table}");
        assert!(lines[1].starts_with("10.0.0.4") || lines[1].starts_with("203.0.113.9"), "{table}");
        assert_eq!(lines.len(), 3, "{table}");
        // The link: clickable, `&` escaped as Slack reads it.
        assert!(
            text.contains("<https://st.blob.core.windows.net/c/x.cap?sp=r&amp;se=2026-11-26T02%3A00%3A00Z&amp;sig=ab%2Bc%3D|Download the .cap file>"),
            "{text}"
        );
    }

    #[test]
    fn teams_carries_a_fact_set_a_column_table_and_the_link() {
        let r = summarised();
        let b = body(&r, NotifyFormat::Teams);
        let items = b["attachments"][0]["content"]["body"].as_array().unwrap();
        let facts = items.iter().filter(|i| i["type"] == "FactSet").nth(1).expect("a summary fact set");
        let titles: Vec<&str> =
            facts["facts"].as_array().unwrap().iter().map(|f| f["title"].as_str().unwrap()).collect();
        assert_eq!(titles[..3], ["Packets", "Protocols", "TCP"]);
        let table = items.iter().find(|i| i["type"] == "ColumnSet").expect("a talker table");
        let cols = table["columns"].as_array().unwrap();
        assert_eq!(cols.len(), 3);
        assert_eq!(cols[0]["items"].as_array().unwrap().len(), 3, "header and two hosts");
        let all = b.to_string();
        assert!(all.contains("[Download the .cap file](https://st.blob.core.windows.net/c/x.cap?sp=r&se="), "{all}");
        assert_eq!(items.last().unwrap()["text"], format!("Event {}", event_id(&r)));
    }

    #[test]
    fn json_carries_the_structured_summary_and_link() {
        let r = summarised();
        let b = body(&r, NotifyFormat::Json);
        assert_eq!(b["traffic_summary"]["packets"], 21);
        assert_eq!(b["traffic_summary"]["tcp"]["syn"], 1);
        assert_eq!(b["traffic_summary_unavailable"], Value::Null);
        assert_eq!(b["download_url"], r.download.as_ref().unwrap().url.as_str());
        assert_eq!(b["capture"]["summary"], b["traffic_summary"]);
        assert_eq!(b["capture"]["download_url"], b["download_url"]);
    }

    #[test]
    fn a_missing_summary_says_why_and_foreign_text_stays_inert() {
        use crate::domain::capture_file::{FileSummary, Unavailable};
        let r = CaptureRecord {
            summary: Some(FileSummary::Unavailable {
                code: Unavailable::StorageError,
                reason: "Storage 400 X: <!channel> [click](https://evil)".into(),
            }),
            download_error: Some("no download link: <@U1>".into()),
            ..record(State::Succeeded)
        };
        let text = body(&r, NotifyFormat::Slack)["text"].as_str().unwrap().to_string();
        assert!(
            text.contains(&format!("_No traffic summary:_ Storage 400 X: &lt;!channel&gt; [click](https:{WJ}//evil)")),
            "{text}"
        );
        assert!(text.contains("_no download link: &lt;@U1&gt;_"), "{text}");
        let teams = body(&r, NotifyFormat::Teams).to_string();
        assert!(teams.contains("No traffic summary: Storage 400 X: \\\\<\\\\!channel\\\\>"), "{teams}");
        let json = body(&r, NotifyFormat::Json);
        assert_eq!(json["traffic_summary"], Value::Null);
        assert_eq!(json["traffic_summary_unavailable"]["code"], "storage_error");
        assert_eq!(json["traffic_summary_unavailable"]["reason"], "Storage 400 X: <!channel> [click](https://evil)");
    }
}
