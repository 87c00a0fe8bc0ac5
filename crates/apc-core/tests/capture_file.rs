//! Issue 10 end to end, natively: a capture run by the in-process Azure emulator is read,
//! summarised and linked, and the notification carries it; every failure still notifies, with
//! its reason. Each flow runs once per store behaviour (`store_matrix!`).

use apc_core::ports::Method;
use apc_core::summary::Summarizer;
use apc_core::timefmt::parse_rfc3339;
use apc_testkit::alerts::{Firing, classic_alert};
use apc_testkit::app::capture_id;
use apc_testkit::capture_files::{assert_same, expected_file, native_summary};
use apc_testkit::emulated::{EmulatedApp, emulated_vm};
use apc_testkit::{StoreBehaviour, store_matrix};
use azure_emulator::pcap::Scenario;
use serde_json::{Value, json};

/// Alert, let the capture run to its end, poll: the capture id and the notification (the only one).
fn run_to_notification(app: &EmulatedApp, scenario: Option<Scenario>) -> (String, Value) {
    let (resp, v) = app.post_alert(&classic_alert(&emulated_vm(), "tcp-segments", Firing::Fired));
    assert_eq!(resp.status, 202, "{v}");
    let id = capture_id(&v);
    if let Some(s) = scenario {
        app.emu.set_scenario(&id, s);
    }
    app.advance(400);
    let (resp, v) = app.poll();
    assert_eq!(resp.status, 200, "{v}");
    // The link is a credential: never in the log line.
    let log = resp.log.to_string();
    assert!(!log.contains("sig=") && !log.contains("blob"), "{log}");
    let notes = app.notifications();
    assert_eq!(notes.len(), 1, "one notification: {notes:?}");
    let n = notes.into_iter().next().unwrap();
    if n.get("attachments").is_none() && n.get("text").is_none() {
        assert_eq!(n["type"], "capture.succeeded", "{n}");
    }
    (id, n)
}

fn end(address: &Value, port: &Value) -> String {
    format!("{}:{}", address.as_str().unwrap(), port)
}

fn each_scenario_is_summarised_and_linked(store: StoreBehaviour) {
    for scenario in Scenario::ALL {
        let app = EmulatedApp::new(store);
        let (id, n) = run_to_notification(&app, Some(scenario));
        let what = scenario.name();
        let s = &n["traffic_summary"];
        assert!(s.is_object(), "{what}: {n}");
        assert_eq!(n["traffic_summary_unavailable"], Value::Null, "{what}");

        // The link downloads exactly the file the scenario generated, with the emulator's own
        // signature check.
        let url = n["download_url"].as_str().unwrap_or_else(|| panic!("{what}: no link: {n}")).to_string();
        let file = expected_file(&n, scenario);
        let got = app.download(&url);
        assert_eq!(got.status, 200, "{what}: {}", String::from_utf8_lossy(&got.body));
        assert!(got.body == file, "{what}: the link gives other bytes ({} vs {})", got.body.len(), file.len());

        // The summary is the Summarizer's over the whole file (read in range chunks), and says
        // what the scenario generated.
        assert_same(s, &native_summary(&file, 8 * 1024 * 1024), what);
        assert_eq!(s["file"]["bytes_total"], file.len(), "{what}");
        assert_eq!(s["file"]["stopped_at_limit"], false, "{what}");
        // What the scenario generated, by hand from its definition (`azure_emulator::pcap`).
        let e = scenario.facts();
        assert_eq!(s["top_talkers"][0]["address"], e.top_talker, "{what}: {s}");
        let c = &s["top_conversations"][0];
        assert_eq!(end(&c["a_address"], &c["a_port"]), e.conversation.0, "{what}: {c}");
        assert!(end(&c["b_address"], &c["b_port"]).starts_with(e.conversation.1), "{what}: {c}");
        assert!(c["community_id"].as_str().unwrap().starts_with("1:"), "{what}");
        let port = s["top_destination_ports"][0]["port"].as_u64().unwrap() as u16;
        assert!(e.top_port.contains(&port), "{what}: {s}");
        if scenario == Scenario::PortScan {
            assert_eq!(c["b_port"], port, "{what}: the top conversation is to the top port");
        }
        assert_eq!(
            (&s["tcp"]["syn"], &s["tcp"]["syn_ack"], &s["tcp"]["rst"]),
            (&json!(e.syn), &json!(e.syn_ack), &json!(e.rst)),
            "{what}"
        );
        assert!(s["headline"].as_str().unwrap().contains(e.headline), "{what}: {}", s["headline"]);
        if let Some((retransmissions, zero_window)) = e.retransmissions_and_zero_windows {
            let got = (&s["tcp"]["retransmissions"], &s["tcp"]["zero_window"]);
            assert_eq!(got, (&json!(retransmissions), &json!(zero_window)), "{what}");
        }
        if let Some(n) = e.syn_unanswered {
            assert_eq!(s["tcp"]["syn_unanswered"], n, "{what}");
        }
        if scenario == Scenario::Ipv6 {
            assert_eq!(s["protocols"]["ipv4"], 0);
            assert_eq!(s["protocols"]["udp"], 5);
        }

        // Storage was asked only what the file role allows (deploy/role-alert-packet-capture-files.json).
        let storage = format!("{}/pcstore/", app.emu.base_url());
        for r in app.http.requests().iter().filter(|r| r.url.starts_with(&storage)) {
            let key = r.url.ends_with("/?restype=service&comp=userdelegationkey") && r.method == Method::Post;
            let read = r.url.starts_with(&format!("{storage}network-watcher-logs/")) && r.method == Method::Get;
            assert!(key || read, "{what}: {} {} is not in the file role", r.method, r.url);
            assert!(r.header("authorization").is_some_and(|a| a.starts_with("Bearer ")), "{what}");
        }
        // The record shows the same, once.
        let rec = app.get_capture(&id);
        assert_same(&rec["summary"], s, what);
        assert_eq!(rec["download_url"], url.as_str(), "{what}");
        assert_eq!(rec["notified"], true);

        // An altered link is refused; so is the link once it has expired (24 hours).
        let altered = url.replacen("sp=r", "sp=rw", 1);
        assert_eq!(app.download(&altered).status, 403, "{what}");
        let (head, sig) = url.split_once("&sig=").unwrap();
        let flipped = format!("{head}&sig={}{}", if sig.starts_with('A') { "B" } else { "A" }, &sig[1..]);
        assert_eq!(app.download(&flipped).status, 403, "{what}");
        let expires = parse_rfc3339(rec["download_url_expires_at"].as_str().unwrap()).unwrap();
        assert_eq!(expires, apc_testkit::consts::T0 + 400 + 24 * 3600, "{what}");
        app.advance(24 * 3600);
        assert_eq!(app.download(&url).status, 403, "{what}: an expired link still works");
    }
}
store_matrix!(each_scenario_is_summarised_and_linked: Strict, SpinSqlite, SpinRedis, Eventual);

fn slack_and_teams_show_the_summary_and_link(store: StoreBehaviour) {
    for format in ["slack", "teams"] {
        let mut app = EmulatedApp::new(store);
        app.vars.set("notify_format", format);
        let (_, n) = run_to_notification(&app, Some(Scenario::SynFlood));
        let text = n.to_string();
        assert!(text.contains("Download the .cap file"), "{format}: {text}");
        assert!(text.contains("ssh"), "{format}: {text}");
        if format == "slack" {
            let t = n["text"].as_str().unwrap();
            assert!(t.contains("• *TCP:* SYN 300 (290 unanswered), SYN-ACK 10, RST 0"), "{t}");
            let table = t.split("```").nth(1).expect("a talker table");
            assert!(table.lines().nth(1).unwrap().starts_with("10.0.0.4 "), "{table}");
            // The link as Slack reads it, and once unescaped, one the emulator accepts.
            let link = t.split('<').find(|p| p.contains("|Download")).unwrap().split('|').next().unwrap();
            assert_eq!(app.download(&link.replace("&amp;", "&")).status, 200);
        } else {
            let items = n["attachments"][0]["content"]["body"].as_array().unwrap();
            let facts = items.iter().filter(|i| i["type"] == "FactSet").nth(1).expect("the summary's fact set");
            let tcp = facts["facts"].as_array().unwrap().iter().find(|f| f["title"] == "TCP").unwrap();
            assert!(tcp["value"].as_str().unwrap().starts_with("SYN 300 \\(290 unanswered\\), SYN-ACK 10"), "{tcp}");
            let table = items.iter().find(|i| i["type"] == "ColumnSet").expect("a talker table");
            assert_eq!(table["columns"][0]["items"][1]["text"], "10\\.0.0.4");
        }
    }
}
store_matrix!(slack_and_teams_show_the_summary_and_link: Strict, SpinSqlite, SpinRedis, Eventual);

fn a_missing_role_still_notifies_with_the_reason(store: StoreBehaviour) {
    let app = EmulatedApp::new(store);
    app.emu.set_storage_denied(true);
    let (id, n) = run_to_notification(&app, None);
    assert_eq!(n["traffic_summary"], Value::Null);
    assert_eq!(n["traffic_summary_unavailable"]["code"], "missing_role", "{n}");
    assert!(n["traffic_summary_unavailable"]["reason"].as_str().unwrap().contains("Storage Blob Data Reader"));
    assert_eq!(n["download_url"], Value::Null);
    assert!(n["capture"]["download_unavailable"].as_str().unwrap().contains("Storage Blob Data Reader"), "{n}");
    // Nothing is retried later: after the one look for late-attached alerts (no Storage call),
    // the record is done.
    let calls = app.http.requests().len();
    app.advance(apc_core::advance::STORE_SETTLE_SECS as u64);
    app.poll();
    assert_eq!(app.get_capture(&id)["next_check_at"], Value::Null);
    assert_eq!(app.http.requests().len(), calls, "no call: {:?}", &app.http.requests()[calls..]);
}
store_matrix!(a_missing_role_still_notifies_with_the_reason: Strict, SpinSqlite, SpinRedis, Eventual);

fn a_foreign_blob_host_is_never_called(store: StoreBehaviour) {
    let app = EmulatedApp::new(store);
    // Azure's own storagePath (https://pcstore.blob.core.windows.net/…), not the configured emulator.
    app.emu.set_emulator_storage_paths(false);
    let (_, n) = run_to_notification(&app, None);
    assert_eq!(n["traffic_summary_unavailable"]["code"], "foreign_host", "{n}");
    let reason = n["traffic_summary_unavailable"]["reason"].as_str().unwrap();
    assert!(reason.contains("https://pcstore.blob.core.windows.net") && reason.contains("not fetched"), "{reason}");
    assert_eq!(n["download_url"], Value::Null);
    let foreign: Vec<String> =
        app.http.requests().iter().filter(|r| r.url.contains("blob.core.windows.net")).map(|r| r.url.clone()).collect();
    assert!(foreign.is_empty(), "requests to the foreign host: {foreign:?}");
}
store_matrix!(a_foreign_blob_host_is_never_called: Strict, SpinSqlite, SpinRedis, Eventual);

fn an_over_limit_file_is_summarised_from_its_start(store: StoreBehaviour) {
    let mut app = EmulatedApp::new(store);
    app.vars.set("capture_summary_max_bytes", "4096");
    let (_, n) = run_to_notification(&app, Some(Scenario::HeavyTalker));
    let file = expected_file(&n, Scenario::HeavyTalker);
    let s = &n["traffic_summary"];
    assert_eq!(s["file"]["bytes_seen"], 4096, "{n}");
    assert_eq!(s["file"]["bytes_total"], file.len());
    assert_eq!(s["file"]["stopped_at_limit"], true);
    // Exactly what the first 4 KiB hold.
    let mut start = Summarizer::new(4096);
    start.set_total_bytes(file.len() as u64);
    start.feed(&file);
    assert_same(s, &serde_json::to_value(start.finish().unwrap()).unwrap(), "over limit");
    // The link is for the whole file all the same.
    assert_eq!(app.download(n["download_url"].as_str().unwrap()).body, file);
    // Slack says how much of how much.
    let mut app = EmulatedApp::new(store);
    app.vars.set("capture_summary_max_bytes", "4096");
    app.vars.set("notify_format", "slack");
    let (_, n) = run_to_notification(&app, Some(Scenario::HeavyTalker));
    assert!(n["text"].as_str().unwrap().contains("summarised the first 4.0 KiB of"), "{n}");
}
store_matrix!(an_over_limit_file_is_summarised_from_its_start: Strict, SpinSqlite, SpinRedis, Eventual);

fn a_capture_only_on_the_vm_says_why_there_is_no_summary(store: StoreBehaviour) {
    let mut app = EmulatedApp::new(store);
    app.vars.set("storage_account_id", "");
    app.vars.set("capture_file_path", "/var/captures/apc.cap");
    let (_, n) = run_to_notification(&app, None);
    assert_eq!(n["traffic_summary_unavailable"]["code"], "vm_only", "{n}");
    assert!(n["traffic_summary_unavailable"]["reason"].as_str().unwrap().contains("only on the VM"));
    let storage_calls = app.http.requests().iter().filter(|r| r.url.contains("/pcstore/")).count();
    assert_eq!(storage_calls, 0);
}
store_matrix!(a_capture_only_on_the_vm_says_why_there_is_no_summary: Strict, SpinSqlite, SpinRedis, Eventual);

fn a_bad_storage_setting_is_named_and_costs_only_the_summary(store: StoreBehaviour) {
    let mut app = EmulatedApp::new(store);
    app.vars.set("storage_blob_host", "https://*.blob.example.com");
    let (resp, h) = app.call("GET", "/healthz", b"");
    assert_eq!((resp.status, h["status"].as_str()), (200, Some("degraded")), "{h}");
    assert_eq!(h["problems"][0]["variable"], "storage_blob_host", "{h}");
    // The capture and its notification go on.
    let (_, n) = run_to_notification(&app, None);
    assert_eq!(n["traffic_summary_unavailable"]["code"], "not_configured", "{n}");
    assert!(n["traffic_summary_unavailable"]["reason"].as_str().unwrap().contains("storage_blob_host"), "{n}");
}
store_matrix!(a_bad_storage_setting_is_named_and_costs_only_the_summary: Strict, SpinSqlite, SpinRedis, Eventual);
