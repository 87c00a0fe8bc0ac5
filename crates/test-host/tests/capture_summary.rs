//! Issue 10 through the real release `.wasm`: the wasmtime host serves it with `spin.toml`
//! (whose `allowed_outbound_hosts` takes the blob endpoint from `storage_blob_host`), the
//! emulator runs the capture and serves its file from its own Blob storage, a local sink takes
//! the notification. For each traffic scenario the notification's summary is the one the
//! scenario generated, and its link downloads the exact file (the emulator checks the SAS with
//! its own code) until it expires or is altered. Every damaged or missing file, a foreign blob
//! host and a missing role still notify, with the reason. The link never reaches a log line.
//!
//! What a summary must equal is computed natively by the same summariser
//! (`apc_core::summary::Summarizer`) over the bytes the emulator serves, and what each scenario
//! holds comes from the emulator's own table (`Scenario::facts`).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use apc_core::timefmt::parse_rfc3339;
use apc_testkit::capture_files::{assert_same, expected_file, native_summary};
use azure_emulator::pcap::{Scenario, capture_file, scaled_capture_file, to_pcapng};
use azure_emulator::routes;
use common::*;
use serde_json::{Value, json};

/// `download_link_hours` of these tests (not the default, so the variable is seen to work).
const LINK_HOURS: i64 = 2;

/// Any fixed time for files set by hand (their bytes need not match the capture's start).
const FILE_START: i64 = 1_700_000_000;

/// The storage account of these tests (the emulator serves any account it is told about).
fn pcstore_id() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Storage/storageAccounts/pcstore")
}

/// The emulator with `vm-1`, the host on `spin.toml` with the blob endpoint on the emulator
/// (path style, as Azurite), and the emulator's `storagePath`s on itself.
fn world(extra: &[(&str, &str)]) -> World {
    let extra: Vec<(String, String)> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let w = World::build(1, repo_root().join("spin.toml"), |base| {
        let mut vars = vec![
            ("storage_blob_host".to_string(), base.to_string()),
            ("storage_account_id".to_string(), pcstore_id()),
            ("download_link_hours".to_string(), LINK_HOURS.to_string()),
        ];
        vars.extend(extra.iter().cloned());
        vars
    });
    w.emu.set_emulator_storage_paths(true);
    w
}

/// Alert on `vm-1`, let `file` give the capture its file (it gets the capture id), then let the
/// capture run past its time limit. Returns the capture id.
fn alert_and_run(w: &World, file: impl FnOnce(&World, &str)) -> String {
    let (resp, v) = w.alert(&classic_alert("vm-1", "tcp-segments"));
    assert_eq!(resp.status, 202, "{v}");
    let id = first_capture(&v);
    file(w, &id);
    w.advance(400);
    id
}

/// The one notification delivered so far: about capture `id`, which succeeded.
fn the_notification(w: &World, id: &str) -> Value {
    let notes = w.sink.delivered();
    assert_eq!(notes.len(), 1, "one notification: {notes:?}");
    let n = notes.into_iter().next().unwrap_or_default();
    if n.get("capture").is_some() {
        assert_eq!(n["type"], "capture.succeeded", "{n}");
        assert_eq!(n["capture"]["id"], id, "{n}");
    }
    n
}

/// Alert, run, and one poll: the poll that finishes the capture notifies it (JSON).
fn notified_in_one_poll(w: &World, file: impl FnOnce(&World, &str)) -> (String, Value) {
    let id = alert_and_run(w, file);
    let p = w.poll();
    assert_eq!(p["advanced"], 1, "{p}");
    let n = the_notification(w, &id);
    (id, n)
}

/// GET `url` with nothing but what it carries, as a browser follows a download link: the
/// status and the body.
fn download(url: &str) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| panic!("{url} is not a link to the emulator"));
    let (authority, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(authority).expect("the emulator listens");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(stream, "GET {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n").expect("request sent");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
    (status, raw[split + 4..].to_vec())
}

/// The storage calls the component made (from the host's outbound journal): `(method, url)`.
fn storage_calls(w: &World) -> Vec<(String, String)> {
    let prefix = format!("{}/pcstore/", w.emu.base_url());
    w.host.outbound().records().into_iter().filter(|r| r.url.starts_with(&prefix)).map(|r| (r.method, r.url)).collect()
}

/// Range reads of the capture's blob the component made.
fn blob_reads(w: &World) -> usize {
    w.emu.journal().iter().filter(|e| e.route == routes::BLOB_GET).count()
}

/// No log line (the component's or the host's) holds the link or any part of a SAS.
fn assert_link_never_logged(w: &World, url: &str) {
    let sig = url.split("&sig=").nth(1).expect("a signature");
    // Every line: the component's (stdout, stderr) and the host's own.
    let lines: Vec<String> = w.host.logs().entries().into_iter().map(|l| l.text).collect();
    assert!(!lines.is_empty(), "the requests were logged");
    for l in &lines {
        assert!(!l.contains(sig) && !l.contains("sig=") && !l.contains("skoid=") && !l.contains(url), "{l}");
    }
}

/// The summary is missing with `code`, the notification went out all the same.
fn assert_unavailable(n: &Value, code: &str) -> String {
    assert_eq!(n["traffic_summary"], Value::Null, "{n}");
    assert_eq!(n["traffic_summary_unavailable"]["code"], code, "{n}");
    assert_eq!(n["capture"]["summary_unavailable"]["code"], code, "{n}");
    n["traffic_summary_unavailable"]["reason"].as_str().expect("a reason").to_string()
}

fn end(address: &Value, port: &Value) -> String {
    format!("{}:{}", address.as_str().unwrap_or_default(), port)
}

// ---- the traffic scenarios -------------------------------------------------------------------

/// One scenario end to end: summary, link, record, refusals, logs.
fn scenario_is_summarised_and_linked(scenario: Scenario) {
    let what = scenario.name();
    let w = world(&[]);
    let (id, n) = notified_in_one_poll(&w, |w, id| w.emu.set_scenario(id, scenario));
    let s = &n["traffic_summary"];
    assert!(s.is_object(), "{what}: {n}");
    assert_eq!(n["traffic_summary_unavailable"], Value::Null, "{what}");

    // The summary is the summariser's over the whole file the scenario generated.
    let file = expected_file(&n, scenario);
    assert_same(s, &native_summary(&file, 8 * 1024 * 1024), what);
    assert_eq!(s["format"], "pcap_microseconds", "{what}");
    assert_eq!(s["file"]["bytes_total"], file.len(), "{what}");
    assert_eq!(s["file"]["stopped_at_limit"], false, "{what}");

    // And it says what the scenario is made of (the emulator's table, by hand from its definition).
    let e = scenario.facts();
    assert_eq!(s["top_talkers"][0]["address"], e.top_talker, "{what}: {s}");
    let c = &s["top_conversations"][0];
    assert_eq!(end(&c["a_address"], &c["a_port"]), e.conversation.0, "{what}: {c}");
    assert!(end(&c["b_address"], &c["b_port"]).starts_with(e.conversation.1), "{what}: {c}");
    assert!(c["community_id"].as_str().is_some_and(|id| id.starts_with("1:")), "{what}: {c}");
    let port = s["top_destination_ports"][0]["port"].as_u64().unwrap_or_default();
    assert!(e.top_port.iter().any(|p| u64::from(*p) == port), "{what}: {s}");
    let tcp = &s["tcp"];
    assert_eq!(
        (&tcp["syn"], &tcp["syn_ack"], &tcp["rst"]),
        (&json!(e.syn), &json!(e.syn_ack), &json!(e.rst)),
        "{what}"
    );
    if let Some(n) = e.syn_unanswered {
        assert_eq!(tcp["syn_unanswered"], n, "{what}");
    }
    if let Some((retransmissions, zero_window)) = e.retransmissions_and_zero_windows {
        assert_eq!((&tcp["retransmissions"], &tcp["zero_window"]), (&json!(retransmissions), &json!(zero_window)));
    }
    assert!(s["headline"].as_str().is_some_and(|h| h.contains(e.headline)), "{what}: {}", s["headline"]);

    // The link: a plain GET gives exactly the file; the emulator checked the signature.
    let url = n["download_url"].as_str().unwrap_or_else(|| panic!("{what}: no link: {n}")).to_string();
    assert!(url.contains("sp=r&") && url.contains("sr=b") && url.contains("sv=2025-01-05"), "{url}");
    let (status, body) = download(&url);
    assert_eq!(status, 200, "{what}: {}", String::from_utf8_lossy(&body));
    assert!(body == file, "{what}: the link gives other bytes ({} vs {})", body.len(), file.len());

    // Storage was asked only what the file role allows: one delegation key, one range read
    // (every scenario's file is under the 1 MiB chunk).
    let calls = storage_calls(&w);
    let key = format!("{}/pcstore/?restype=service&comp=userdelegationkey", w.emu.base_url());
    let reads = format!("{}/pcstore/network-watcher-logs/", w.emu.base_url());
    assert!(
        calls.iter().all(|(m, u)| (m == "POST" && *u == key) || (m == "GET" && u.starts_with(&reads))),
        "{calls:?}"
    );
    assert_eq!(calls.len(), 2, "{what}: {calls:?}");

    // The record shows the same.
    let rec = w.capture(&id);
    assert_same(&rec["summary"], s, what);
    assert_eq!(rec["download_url"], url.as_str(), "{what}");
    assert_eq!(rec["notified"], true, "{what}");
    assert_link_never_logged(&w, &url);

    // Altered links are refused: more permissions, another signature.
    let (head, sig) = url.split_once("&sig=").expect("a signature");
    assert_eq!(download(&url.replacen("sp=r&", "sp=rw&", 1)).0, 403, "{what}");
    let flipped = format!("{head}&sig={}{}", if sig.starts_with('A') { 'B' } else { 'A' }, &sig[1..]);
    assert_eq!(download(&flipped).0, 403, "{what}");

    // It lives `download_link_hours`, not a minute more.
    let expires = rec["download_url_expires_at"].as_str().and_then(parse_rfc3339).expect("an expiry");
    let now = w.host.clock().now_unix();
    assert!((expires - now - LINK_HOURS * 3600).abs() <= 60, "{what}: expires {expires}, now {now}");
    w.advance(expires - now - 120);
    assert_eq!(download(&url).0, 200, "{what}: two minutes before it expires");
    w.advance(240);
    assert_eq!(download(&url).0, 403, "{what}: an expired link still works");
}

#[test]
fn heavy_talker_is_summarised_and_linked() {
    scenario_is_summarised_and_linked(Scenario::HeavyTalker);
}

#[test]
fn syn_flood_is_summarised_and_linked() {
    scenario_is_summarised_and_linked(Scenario::SynFlood);
}

#[test]
fn port_scan_is_summarised_and_linked() {
    scenario_is_summarised_and_linked(Scenario::PortScan);
}

#[test]
fn retransmissions_are_summarised_and_linked() {
    scenario_is_summarised_and_linked(Scenario::Retransmissions);
}

#[test]
fn ipv6_is_summarised_and_linked() {
    scenario_is_summarised_and_linked(Scenario::Ipv6);
}

/// Spin allows the blob endpoint through `{{ storage_blob_host }}`: a cloud's wildcard allows
/// that cloud's blob hosts and no other.
#[test]
fn spin_toml_allows_the_blob_endpoint_of_storage_blob_host() {
    let w = World::new(0, &[("storage_blob_host", "https://*.blob.core.chinacloudapi.cn")]);
    let allows = |host: &str| w.host.allowed_hosts().iter().any(|a| a.allows("https", host, Some(443)));
    assert!(allows("pcstore.blob.core.chinacloudapi.cn"));
    assert!(!allows("pcstore.blob.core.windows.net"));
    assert!(!allows("pcstore.blob.core.usgovcloudapi.net"));
}

/// The host enforces the manifest: with ARM and Entra ID on `127.0.0.1` and Storage on
/// `localhost` (two origins of one emulator, whose `storagePath`s then name `localhost`),
/// Storage is reachable only because `spin.toml` lists `{{ storage_blob_host }}`. Without that
/// entry every Storage call is refused by the host, and the capture is notified all the same,
/// with the reason.
fn storage_through_the_manifest(listed: bool) {
    let text = std::fs::read_to_string(repo_root().join("spin.toml")).expect("spin.toml");
    let manifest = if listed {
        repo_root().join("spin.toml")
    } else {
        let edited = text.replace("  \"{{ storage_blob_host }}\",\n", "");
        assert_ne!(edited, text, "spin.toml lists {{{{ storage_blob_host }}}}");
        let dir = std::env::temp_dir().join(format!("apc-capture-summary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let path = dir.join("spin.toml");
        std::fs::write(&path, edited).expect("the edited manifest");
        path
    };
    let w = World::build(1, manifest, |base| {
        vec![
            ("storage_blob_host".to_string(), base.replace("127.0.0.1", "localhost")),
            ("storage_account_id".to_string(), pcstore_id()),
        ]
    });
    let blob_base = w.emu.base_url().replace("127.0.0.1", "localhost");
    w.emu.set_public_base(Some(&blob_base));
    w.emu.set_emulator_storage_paths(true);
    let id = alert_and_run(&w, |w, id| w.emu.set_scenario(id, Scenario::SynFlood));
    let mut polls = 0;
    while w.sink.delivered().is_empty() && polls < 10 {
        w.poll();
        polls += 1;
        w.advance(600);
    }
    let n = the_notification(&w, &id);
    let prefix = format!("{blob_base}/pcstore/");
    let storage: Vec<_> = w.host.outbound().records().into_iter().filter(|r| r.url.starts_with(&prefix)).collect();
    assert!(!storage.is_empty(), "the component asked Storage");
    let denied = storage.iter().filter(|r| matches!(r.outcome, test_host::OutboundOutcome::Denied)).count();
    assert_eq!(polls, 1, "notified in the poll that finished it");
    if listed {
        assert_eq!(denied, 0, "{storage:?}");
        assert_eq!(n["traffic_summary"]["tcp"]["syn"], 300, "{n}");
        assert!(n["download_url"].as_str().is_some_and(|u| u.starts_with(&prefix)), "{n}");
    } else {
        assert_eq!(denied, storage.len(), "{storage:?}");
        assert_eq!(blob_reads(&w) + w.emu.calls(routes::USER_DELEGATION_KEY) as usize, 0);
        assert_eq!(n["download_url"], Value::Null, "{n}");
        let host_lines = w.host.logs().entries().into_iter().filter(|l| l.stream == test_host::Stream::Host);
        assert!(host_lines.filter(|l| l.text.contains("denied")).count() >= 1, "the host says why");
        let reason = assert_unavailable(&n, "storage_error");
        assert!(reason.contains("storage_blob_host") && reason.contains("allowed_outbound_hosts"), "{reason}");
    }
}

#[test]
fn storage_is_reachable_through_storage_blob_host_in_spin_toml() {
    storage_through_the_manifest(true);
}

#[test]
fn storage_is_refused_by_the_host_without_storage_blob_host_in_spin_toml() {
    storage_through_the_manifest(false);
}

// ---- Slack and Teams ---------------------------------------------------------------------------

#[test]
fn slack_shows_the_summary_and_a_working_link() {
    let w = world(&[("notify_format", "slack")]);
    let (id, n) = notified_in_one_poll(&w, |w, id| w.emu.set_scenario(id, Scenario::SynFlood));
    let t = n["text"].as_str().unwrap_or_else(|| panic!("a Slack message: {n}"));
    assert!(t.contains("• *TCP:* SYN 300 (290 unanswered), SYN-ACK 10, RST 0"), "{t}");
    assert!(t.contains("ssh"), "{t}");
    let table = t.split("```").nth(1).expect("a talker table");
    assert!(table.lines().nth(1).is_some_and(|l| l.starts_with("10.0.0.4 ")), "{table}");
    // The link as Slack reads it (`<url|Download …>`, `&` escaped); unescaped, it downloads.
    let link = t.split('<').find(|p| p.contains("|Download the .cap file")).and_then(|p| p.split('|').next());
    let link = link.unwrap_or_else(|| panic!("a link: {t}")).replace("&amp;", "&");
    let (status, body) = download(&link);
    assert_eq!(status, 200);
    assert_eq!(body, expected_file(&json!({"capture": w.capture(&id)}), Scenario::SynFlood));
    assert_link_never_logged(&w, &link);
}

#[test]
fn teams_shows_the_summary_and_a_working_link() {
    let w = world(&[("notify_format", "teams")]);
    let (id, n) = notified_in_one_poll(&w, |w, id| w.emu.set_scenario(id, Scenario::SynFlood));
    let items = n["attachments"][0]["content"]["body"].as_array().unwrap_or_else(|| panic!("an Adaptive Card: {n}"));
    let facts = items.iter().filter(|i| i["type"] == "FactSet").nth(1).expect("the summary's fact set");
    let tcp = facts["facts"].as_array().and_then(|f| f.iter().find(|f| f["title"] == "TCP")).expect("a TCP fact");
    assert!(tcp["value"].as_str().is_some_and(|v| v.starts_with("SYN 300 \\(290 unanswered\\), SYN-ACK 10")), "{tcp}");
    let table = items.iter().find(|i| i["type"] == "ColumnSet").expect("a talker table");
    assert_eq!(table["columns"][0]["items"][1]["text"], "10\\.0.0.4");
    assert!(n.to_string().contains("Download the .cap file"), "{n}");
    // The card's Markdown link (`[Download the .cap file](url)`) downloads the file.
    let text = n.to_string();
    let label = "[Download the .cap file](";
    let at = text.find(label).unwrap_or_else(|| panic!("a link in the card: {text}")) + label.len();
    let link: String = text[at..].chars().take_while(|c| *c != ')').collect();
    let (status, body) = download(&link);
    assert_eq!(status, 200);
    assert_eq!(body, expected_file(&json!({"capture": w.capture(&id)}), Scenario::SynFlood));
    assert_link_never_logged(&w, &link);
}

// ---- files that cannot be summarised whole, and files that cannot be read ------------------

/// A file that is not a capture at all: no summary (`not_a_capture`), the link all the same.
#[test]
fn a_file_that_is_not_a_capture_still_notifies() {
    let junk = b"<html><body>Not a capture: an upload went wrong</body></html>".repeat(20);
    let w = world(&[]);
    let bytes = junk.clone();
    let (_, n) = notified_in_one_poll(&w, move |w, id| w.emu.set_capture_file_override(id, Some(bytes)));
    assert_unavailable(&n, "not_a_capture");
    let url = n["download_url"].as_str().expect("a link to the file all the same");
    assert_eq!(download(url), (200, junk));
    assert_link_never_logged(&w, url);
}

/// A capture damaged in the middle: the packets before the damage are summarised, and the
/// summary says where it stopped making sense.
#[test]
fn a_corrupt_file_is_summarised_up_to_the_damage() {
    let mut file = capture_file(Scenario::HeavyTalker, FILE_START);
    // The 51st record header claims a 4 GiB packet (records before it: 24-byte file header,
    // then each 16 bytes + the frame).
    let mut at = 24;
    for _ in 0..50 {
        let caplen = u32::from_le_bytes(file[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
        at += 16 + caplen;
    }
    file[at + 8..at + 12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let w = world(&[]);
    let bytes = file.clone();
    let (_, n) = notified_in_one_poll(&w, move |w, id| w.emu.set_capture_file_override(id, Some(bytes)));
    let s = &n["traffic_summary"];
    assert_same(s, &native_summary(&file, 8 * 1024 * 1024), "corrupt");
    assert_eq!(s["packets"], 50, "{s}");
    assert!(s["file"]["damaged"].as_str().is_some_and(|d| !d.is_empty()), "{s}");
    assert_eq!(s["file"]["bytes_total"], file.len());
    assert_eq!(download(n["download_url"].as_str().expect("a link")).1, file);
}

/// A file whose last packet was cut short: summarised cleanly without it.
#[test]
fn a_truncated_file_is_summarised_without_its_last_packet() {
    let whole = capture_file(Scenario::SynFlood, FILE_START);
    let file = whole[..whole.len() - 20].to_vec();
    let w = world(&[]);
    let bytes = file.clone();
    let (_, n) = notified_in_one_poll(&w, move |w, id| w.emu.set_capture_file_override(id, Some(bytes)));
    let s = &n["traffic_summary"];
    assert_same(s, &native_summary(&file, 8 * 1024 * 1024), "truncated");
    assert_eq!(s["packets"], 309, "{s}");
    assert_eq!(s["file"]["truncated"], true, "{s}");
    assert_eq!(s["file"]["damaged"], Value::Null, "{s}");
}

/// An empty blob (Storage answers a range read of it `416`) may be one still being written:
/// it is looked at again with back-off, 4 more times, then notified with the reason.
#[test]
fn an_empty_file_is_retried_then_notified_with_the_reason() {
    let w = world(&[]);
    let id = alert_and_run(&w, |w, id| w.emu.set_capture_file_override(id, Some(Vec::new())));
    let mut polls = 0;
    while w.sink.delivered().is_empty() && polls < 10 {
        w.poll();
        polls += 1;
        w.advance(600);
    }
    let n = the_notification(&w, &id);
    let reason = assert_unavailable(&n, "empty");
    assert!(reason.contains("gave up after 5 checks"), "{reason}");
    assert_eq!(polls, 5, "notified at the fifth look");
    assert_eq!(blob_reads(&w), 5);
    // The link was signed once, at the first look, and is in the notification.
    let url = n["download_url"].as_str().expect("a link");
    assert_eq!(download(url), (200, Vec::new()));
    assert_eq!(w.emu.calls(routes::USER_DELEGATION_KEY), 1);
}

/// A pcapng file of the same packets says the same as the classic one.
#[test]
fn a_pcapng_file_is_summarised_like_the_classic_one() {
    let classic = capture_file(Scenario::PortScan, FILE_START);
    let file = to_pcapng(&classic);
    let w = world(&[]);
    let bytes = file.clone();
    let (_, n) = notified_in_one_poll(&w, move |w, id| w.emu.set_capture_file_override(id, Some(bytes)));
    let s = &n["traffic_summary"];
    assert_same(s, &native_summary(&file, 8 * 1024 * 1024), "pcapng");
    assert_eq!(s["format"], "pcapng", "{s}");
    // Everything about the traffic is the classic file's.
    let classic_summary = native_summary(&classic, 8 * 1024 * 1024);
    for field in ["packets", "bytes", "protocols", "top_talkers", "top_conversations", "tcp", "headline"] {
        assert_same(&s[field], &classic_summary[field], field);
    }
    let e = Scenario::PortScan.facts();
    assert_eq!((&s["tcp"]["syn"], &s["tcp"]["rst"]), (&json!(e.syn), &json!(e.rst)));
    assert_eq!(download(n["download_url"].as_str().expect("a link")).1, file);
}

/// A file larger than `capture_summary_max_bytes`: read in 1 MiB ranges up to the limit and
/// summarised from its start; the summary says how much of how much; the link is for the whole.
#[test]
fn an_over_limit_file_is_summarised_from_its_start() {
    let file = scaled_capture_file(Scenario::HeavyTalker, FILE_START, 3 * 1024 * 1024);
    let max = 2 * 1024 * 1024 + 12_345;
    let w = world(&[("capture_summary_max_bytes", &max.to_string())]);
    let bytes = file.clone();
    let id = alert_and_run(&w, move |w, id| w.emu.set_capture_file_override(id, Some(bytes)));
    let poll = w.send(test_host::Request::post("/poll", Vec::new()));
    assert_eq!(poll.status, 200, "{}", poll.text());
    let n = the_notification(&w, &id);
    let s = &n["traffic_summary"];
    assert_same(s, &native_summary(&file, max as u64), "over limit");
    // The host measured the instance's linear memory: whole 64 KiB pages, and at least the
    // 1 MiB range answer it held (the file itself, 3 MiB, never was whole).
    let memory = poll.stats.peak_memory_bytes;
    assert!(memory.is_multiple_of(65_536) && memory >= 1024 * 1024, "{memory}");
    let idle = w.send(test_host::Request::get("/healthz")).stats.peak_memory_bytes;
    assert!(idle > 0 && idle < memory, "{idle} vs {memory}");
    assert_eq!(s["file"]["bytes_seen"], max, "{s}");
    assert_eq!(s["file"]["bytes_total"], file.len(), "{s}");
    assert_eq!(s["file"]["stopped_at_limit"], true, "{s}");
    assert_eq!(s["top_talkers"][0]["address"], Scenario::HeavyTalker.facts().top_talker);
    assert_eq!(blob_reads(&w), 3, "three range reads: 1 MiB, 1 MiB, the rest up to the limit");
    assert_eq!(download(n["download_url"].as_str().expect("a link")).1, file);
}

/// `storagePath` on another host than the configured blob endpoint (Azure's own, here): never
/// called, and the reason names it.
#[test]
fn a_foreign_blob_host_is_never_called() {
    let w = world(&[]);
    w.emu.set_emulator_storage_paths(false);
    let (_, n) = notified_in_one_poll(&w, |_, _| {});
    let reason = assert_unavailable(&n, "foreign_host");
    assert!(reason.contains("https://pcstore.blob.core.windows.net") && reason.contains("not fetched"), "{reason}");
    assert_eq!(n["download_url"], Value::Null);
    let foreign: Vec<String> = w
        .host
        .outbound()
        .records()
        .into_iter()
        .map(|r| r.url)
        .filter(|u| u.contains("blob.core.windows.net"))
        .collect();
    assert!(foreign.is_empty(), "requests to the foreign host: {foreign:?}");
    assert!(storage_calls(&w).is_empty());
}

/// Storage answers 403 (no data-plane role): no summary, no link, both say which role; later
/// polls do not try again.
#[test]
fn a_missing_role_still_notifies_with_the_reason() {
    let w = world(&[]);
    w.emu.set_storage_denied(true);
    let (id, n) = notified_in_one_poll(&w, |_, _| {});
    let reason = assert_unavailable(&n, "missing_role");
    assert!(reason.contains("Storage Blob Data Reader"), "{reason}");
    assert_eq!(n["download_url"], Value::Null);
    let why = n["capture"]["download_unavailable"].as_str().unwrap_or_default();
    assert!(why.contains("Storage Blob Data Reader"), "{n}");
    let calls = storage_calls(&w).len();
    assert!(calls >= 1, "Storage was asked");
    for _ in 0..3 {
        w.advance(600);
        w.poll();
    }
    assert_eq!(w.capture(&id)["next_check_at"], Value::Null);
    assert_eq!(storage_calls(&w).len(), calls, "no second try");
    assert_eq!(w.sink.all().len(), 1);
}
