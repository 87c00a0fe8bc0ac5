//! The component under the emulator's faithful-ARM switches (issue 8), end to end through the
//! real release `.wasm`, the wasmtime host and the emulator: scale-set alerts, each answer ARM
//! may give to a PUT of an existing capture name, asynchronous `queryStatus`/`stop` in both
//! answer styles, `403 AuthorizationFailed`, `ResourceGroupNotFound` and `Retry-After` dates.
//!
//! Each scenario is one function taking the mode it runs under; the tests only pick the modes.

mod common;

use azure_emulator::{
    AsyncBody, ExistingName, Fault, FaultKind, JournalEntry, LroOutcome, OsType, RetryAfterStyle, VmssSpec, routes,
};
use common::*;
use serde_json::{Value, json};
use test_host::Request;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn vmss_id(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachineScaleSets/{name}")
}

/// The calls of one route the emulator saw, in order.
fn entries(w: &World, route: &str) -> Vec<JournalEntry> {
    w.emu.journal().into_iter().filter(|e| e.route == route).collect()
}

fn statuses(entries: &[JournalEntry]) -> Vec<Option<u16>> {
    entries.iter().map(|e| e.status).collect()
}

/// Let `secs` pass, then poll.
fn after(w: &World, secs: i64) -> Value {
    w.advance(secs);
    w.poll()
}

/// Poll every 30 s until the record is terminal (at most `polls` times); returns it.
fn settle(w: &World, id: &str, polls: usize) -> Value {
    for _ in 0..polls {
        let rec = w.capture(id);
        if !matches!(rec["state"].as_str(), Some("queued" | "running")) {
            return rec;
        }
        after(w, 30);
    }
    w.capture(id)
}

/// The record succeeded for `stop_reason`, with the `.cap` file, and exactly one notification
/// says so.
fn assert_succeeded_once(w: &World, id: &str, stop_reason: &str) -> Value {
    let rec = w.capture(id);
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(rec["stop_reason"], stop_reason, "{rec}");
    let path = rec["storage_path"].as_str().unwrap_or_else(|| panic!("no storage_path: {rec}"));
    assert!(is_capstore_file(&w.emu, path), "{path}");
    let notes = w.sink.delivered();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["type"], "capture.succeeded");
    assert_eq!(notes[0]["capture"]["id"], id);
    assert_eq!(notes[0]["cap_location"], path);
    rec
}

/// Later polls call nobody and notify nobody. (The first may take the one look for alerts
/// attached at the last moment, `STORE_SETTLE_SECS` after the finish: no call.)
fn assert_quiet_afterwards(w: &World) {
    let (calls, notes) = (w.total_calls(), w.sink.all().len());
    after(w, 600);
    assert_eq!(after(w, 600)["advanced"], 0);
    assert_eq!(w.total_calls(), calls);
    assert_eq!(w.sink.all().len(), notes);
}

/// No call went anywhere but the emulator's own routes.
fn assert_no_unknown_route(w: &World) {
    let unknown = entries(w, routes::UNKNOWN);
    assert!(unknown.is_empty(), "{unknown:?}");
}

// ---- scale sets ------------------------------------------------------------------------------

/// What a scale-set alert names.
#[derive(Debug, Clone, Copy)]
enum ScaleTarget {
    /// `…/virtualMachineScaleSets/{n}`.
    WholeSet,
    /// `…/virtualMachineScaleSets/{n}/virtualMachines/{i}`.
    Instance(&'static str),
}

/// An alert on a scale set (or one instance): 202, one `AzureVMSS` PUT with the right scope,
/// followed to `succeeded` with polls, one notification.
fn scale_set_scenario(target: ScaleTarget) {
    let w = World::new(0, &[]);
    let set = vmss_id("ss-web");
    w.emu.add_vmss(VmssSpec::new(&set, "westus", OsType::Linux, 3)).unwrap();
    let alerted = match target {
        ScaleTarget::WholeSet => set.clone(),
        ScaleTarget::Instance(i) => format!("{set}/virtualMachines/{i}"),
    };
    let (resp, v) = w.alert(&common_alert_on(&alerted, "ss-alert"));
    assert_eq!(resp.status, 202, "{v}");
    let id = first_capture(&v);
    assert_eq!(v["captures"][0]["state"], "running", "{v}");

    // The scale set is read for its region and agent, never a VM; one PUT.
    assert_eq!(w.calls(routes::VMSS_GET), 1);
    assert_eq!(w.calls(routes::VM_GET), 0);
    let puts = entries(&w, routes::CAPTURE_PUT);
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].status, Some(201));
    assert!(puts[0].path.ends_with(&format!("/packetCaptures/{id}")), "{}", puts[0].path);
    assert!(puts[0].query.contains("api-version=2025-07-01"), "{}", puts[0].query);
    let body: Value = serde_json::from_str(&puts[0].body).unwrap();
    let p = &body["properties"];
    assert!(p["target"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(&set)), "{p}");
    assert_eq!(p["targetType"], "AzureVMSS", "{p}");
    assert_eq!(p["storageLocation"]["storageId"], storage_id());
    let included: Vec<&str> =
        p["scope"]["include"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    match target {
        ScaleTarget::WholeSet => assert!(included.is_empty(), "the whole set includes no instance list: {p}"),
        ScaleTarget::Instance(i) => assert_eq!(included, [i], "{p}"),
    }
    let caps = w.emu.captures();
    assert_eq!(caps.len(), 1);
    assert_eq!(caps[0].name, id);

    // Running once started, then stopped at its limit: succeeded with the file of the set.
    assert_eq!(after(&w, 31)["advanced"], 1);
    assert_eq!(w.capture(&id)["azure_status"], "Running");
    assert!(w.sink.all().is_empty());
    assert_eq!(after(&w, 300)["advanced"], 1);
    let rec = assert_succeeded_once(&w, &id, "TimeExceeded");
    assert!(rec["vm"].as_str().is_some_and(|vm| vm.eq_ignore_ascii_case(&alerted)), "{rec}");
    let path = rec["storage_path"].as_str().unwrap_or_default();
    assert!(path.contains("/virtualmachinescalesets/ss-web/"), "{path}");
    assert_eq!(w.calls(routes::CAPTURE_PUT), 1);
    assert_eq!(statuses(&entries(&w, routes::CAPTURE_DELETE)), [Some(202)]);
    assert!(w.emu.captures().is_empty());
    assert_quiet_afterwards(&w);
    assert_no_unknown_route(&w);
}

#[test]
fn scale_set_alert_for_the_whole_set() {
    scale_set_scenario(ScaleTarget::WholeSet);
}

#[test]
fn scale_set_alert_for_one_instance() {
    scale_set_scenario(ScaleTarget::Instance("1"));
}

// ---- existing capture names ------------------------------------------------------------------

/// How the component comes to PUT a capture name that already exists in Azure.
#[derive(Debug, Clone, Copy)]
enum SecondPut {
    /// The component's store is lost after the capture started (an evicted record, a wiped
    /// store), and Azure Monitor delivers the alert again: the same alert names the same capture.
    LostRecord,
    /// The first PUT's answer never arrives though Azure created the capture; the next poll
    /// tries the PUT again.
    LostAnswer,
}

/// The seed scenario with a second PUT of the same name under `mode`: one Azure capture
/// throughout, followed to `succeeded`, one notification.
fn existing_name_scenario(mode: ExistingName, second: SecondPut) {
    let w = World::new(1, &[]);
    w.emu.set_existing_name(mode);
    if let SecondPut::LostAnswer = second {
        w.emu.add_fault(Fault::count(routes::CAPTURE_PUT, FaultKind::LoseResponse, 1));
    }
    let alert = common_alert("vm-1", "seed");
    let (resp, v) = w.alert(&alert);
    assert_eq!(resp.status, 202, "{v}");
    let id = first_capture(&v);
    let first_state = match second {
        SecondPut::LostRecord => "running",
        // The component cannot know Azure took it: it tries again later.
        SecondPut::LostAnswer => "queued",
    };
    assert_eq!(v["captures"][0]["state"], first_state, "{v}");

    // A duplicate delivery: the same capture, no Azure call.
    let (resp, dup) = w.alert(&alert);
    assert_eq!((resp.status, dup["duplicate"].as_bool()), (200, Some(true)), "{dup}");
    assert_eq!(first_capture(&dup), id);
    assert_eq!(resp.stats.outbound, 0);
    assert_eq!(w.calls(routes::CAPTURE_PUT), 1);
    assert_eq!(w.emu.captures().len(), 1, "Azure created the capture");

    match second {
        SecondPut::LostRecord => {
            assert_eq!(after(&w, 31)["advanced"], 1);
            let kv = w.host.kv();
            for key in kv.keys() {
                kv.remove(&key);
            }
            let (resp, again) = w.alert(&alert);
            assert_eq!(resp.status, 202, "a lost record is a new alert to the component: {again}");
            assert_eq!(first_capture(&again), id, "the same alert names the same capture");
            assert_eq!(again["captures"][0]["state"], "running", "{again}");
        }
        SecondPut::LostAnswer => {
            assert_eq!(after(&w, 31)["advanced"], 1);
            assert_eq!(w.capture(&id)["state"], "running", "{}", w.capture(&id));
        }
    }

    // The second PUT met the existing capture (no DELETE in between), and Azure still holds one.
    let puts = entries(&w, routes::CAPTURE_PUT);
    assert_eq!(puts.len(), 2, "{puts:?}");
    assert!(puts.iter().all(|e| e.path == puts[0].path && e.path.ends_with(&format!("/packetCaptures/{id}"))));
    assert_eq!(w.calls(routes::CAPTURE_DELETE), 0);
    let second_status = match mode {
        ExistingName::SameBodyIdempotent | ExistingName::Idempotent => 201,
        ExistingName::Conflict => 409,
    };
    assert_eq!(statuses(&puts), [Some(201), Some(second_status)]);
    assert_eq!(w.emu.captures().len(), 1);
    if mode == ExistingName::Conflict {
        // The refused name is read back before it is adopted.
        let reads = entries(&w, routes::CAPTURE_GET);
        assert!(reads.iter().any(|g| g.seq > puts[1].seq && g.path == puts[1].path), "{reads:?}");
    }

    // Then as always: running, stopped at its limit, one notification with the file.
    let rec = settle(&w, &id, 1);
    assert_eq!(rec["state"], "running", "{rec}");
    assert_eq!(after(&w, 300)["advanced"], 1);
    assert_succeeded_once(&w, &id, "TimeExceeded");
    assert_eq!(w.calls(routes::CAPTURE_PUT), 2);
    assert_eq!(w.calls(routes::CAPTURE_DELETE), 1);
    assert!(w.emu.captures().is_empty());
    let (resp, dup) = w.alert(&alert);
    assert_eq!((resp.status, dup["duplicate"].as_bool()), (200, Some(true)), "{dup}");
    assert_quiet_afterwards(&w);
}

#[test]
fn existing_name_same_body_idempotent_lost_record() {
    existing_name_scenario(ExistingName::SameBodyIdempotent, SecondPut::LostRecord);
}

#[test]
fn existing_name_idempotent_lost_record() {
    existing_name_scenario(ExistingName::Idempotent, SecondPut::LostRecord);
}

#[test]
fn existing_name_idempotent_lost_answer() {
    existing_name_scenario(ExistingName::Idempotent, SecondPut::LostAnswer);
}

#[test]
fn existing_name_conflict_lost_record() {
    existing_name_scenario(ExistingName::Conflict, SecondPut::LostRecord);
}

#[test]
fn existing_name_conflict_lost_answer() {
    existing_name_scenario(ExistingName::Conflict, SecondPut::LostAnswer);
}

// ---- asynchronous queryStatus / stop ---------------------------------------------------------

/// How ARM answers `queryStatus` and `stop`.
#[derive(Debug, Clone, Copy)]
struct AsyncMode {
    /// What a `queryStatus` `202` carries.
    body: AsyncBody,
    /// `Location` GETs answered `202` before the result.
    lro_polls: u32,
    /// `Retry-After` on the `202`s.
    retry_after_secs: u32,
}

const WITH_BODY: AsyncMode = AsyncMode { body: AsyncBody::Status, lro_polls: 0, retry_after_secs: 10 };
/// Empty `202`s whose result may be fetched at once (`Retry-After: 0`), after one more `202`.
const EMPTY_NO_WAIT: AsyncMode = AsyncMode { body: AsyncBody::Empty, lro_polls: 1, retry_after_secs: 0 };
/// Empty `202`s with the `Retry-After` real ARM usually sends.
const EMPTY_REAL_WAIT: AsyncMode = AsyncMode { body: AsyncBody::Empty, lro_polls: 0, retry_after_secs: 10 };

/// How the capture ends.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// Azure stops it at its time limit.
    TimeLimit,
    /// `POST /captures/{id}/stop` while it runs.
    EarlyStop,
    /// It hangs in Azure; the component stops it after limit + grace.
    Watchdog,
}

/// The seed scenario with `queryStatus`/`stop` answered `202` in `mode`, ending as `ending`.
fn async_scenario(mode: AsyncMode, ending: Ending) {
    let w = World::new(1, &[("capture_time_limit_seconds", "300"), ("capture_grace_seconds", "120")]);
    w.emu.set_async_actions(true);
    w.emu.set_async_body(mode.body);
    w.emu.set_lro(mode.lro_polls, 0, LroOutcome::Succeeded);
    w.emu.update_modes(|m| m.lro_retry_after_secs = mode.retry_after_secs);
    if let Ending::Watchdog = ending {
        w.emu.hang_next_capture();
    }
    let alert = common_alert("vm-1", "async");
    let (resp, v) = w.alert(&alert);
    assert_eq!(resp.status, 202, "{v}");
    let id = first_capture(&v);
    assert_eq!(v["captures"][0]["state"], "running", "{v}");
    let (resp, dup) = w.alert(&alert);
    assert_eq!((resp.status, dup["duplicate"].as_bool()), (200, Some(true)), "{dup}");
    assert_eq!(resp.stats.outbound, 0);

    // Running, learned through a 202 (and its Location, when the 202 has no body). An operation
    // answers with the status as it was when the operation ended, which may still be
    // `NotStarted`: a later poll asks again. A minute-by-minute scheduler sees it within 3 polls.
    let mut rec = Value::Null;
    for _ in 0..3 {
        assert_eq!(after(&w, 31)["advanced"], 1);
        rec = w.capture(&id);
        if rec["azure_status"] == "Running" {
            break;
        }
        assert_eq!(rec["azure_status"], "NotStarted", "{rec}");
        assert_eq!(rec["errors"], json!([]), "waiting is not an error: {rec}");
    }
    assert_eq!(rec["azure_status"], "Running", "{rec}");
    assert_eq!(rec["state"], "running", "{rec}");
    let asked = entries(&w, routes::CAPTURE_STATUS);
    assert!(!asked.is_empty() && asked.iter().all(|e| e.status == Some(202)), "{:?}", statuses(&asked));
    if mode.body == AsyncBody::Empty {
        let results = entries(&w, routes::OPERATION_RESULT);
        assert!(!results.is_empty(), "the Location was followed");
        assert!(results.iter().all(|e| e.query.contains("api-version=")), "{results:?}");
    }

    let stop_reason = match ending {
        Ending::TimeLimit => {
            assert_eq!(after(&w, 300)["advanced"], 1);
            // With a real Retry-After the answer may come on a later poll.
            settle(&w, &id, 3);
            assert_eq!(w.calls(routes::CAPTURE_STOP), 0);
            "TimeExceeded"
        }
        Ending::EarlyStop => {
            let r = w.send(Request::post(format!("/captures/{id}/stop"), Vec::new()));
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(statuses(&entries(&w, routes::CAPTURE_STOP)), [Some(202)]);
            let rec = settle(&w, &id, 3);
            assert!(rec["warnings"].to_string().contains("stopped early on request"), "{rec}");
            "Manual"
        }
        Ending::Watchdog => {
            // Past its limit but within the grace: still running, not stopped.
            assert_eq!(after(&w, 300)["advanced"], 1);
            assert_eq!(w.capture(&id)["state"], "running");
            assert_eq!(w.calls(routes::CAPTURE_STOP), 0);
            // Past limit + grace: stopped by the component.
            after(&w, 120);
            assert_eq!(statuses(&entries(&w, routes::CAPTURE_STOP)), [Some(202)]);
            "TimedOutByResponder"
        }
    };
    let rec = assert_succeeded_once(&w, &id, stop_reason);
    // The DELETE of the finished capture is answered 202 and counts as done.
    assert_eq!(rec["azure_deleted"], true, "{rec}");
    assert_eq!(statuses(&entries(&w, routes::CAPTURE_DELETE)), [Some(202)]);
    assert!(w.emu.captures().is_empty());
    assert_eq!(w.calls(routes::CAPTURE_PUT), 1);
    assert_quiet_afterwards(&w);
    assert_no_unknown_route(&w);
}

#[test]
fn async_202_with_body_to_the_time_limit() {
    async_scenario(WITH_BODY, Ending::TimeLimit);
}

#[test]
fn async_202_with_body_early_stop() {
    async_scenario(WITH_BODY, Ending::EarlyStop);
}

#[test]
fn async_202_with_body_watchdog_stop() {
    async_scenario(WITH_BODY, Ending::Watchdog);
}

#[test]
fn async_202_empty_to_the_time_limit() {
    async_scenario(EMPTY_NO_WAIT, Ending::TimeLimit);
}

#[test]
fn async_202_empty_early_stop() {
    async_scenario(EMPTY_NO_WAIT, Ending::EarlyStop);
}

#[test]
fn async_202_empty_watchdog_stop() {
    async_scenario(EMPTY_NO_WAIT, Ending::Watchdog);
}

/// Real ARM sends `Retry-After` on these 202s. The component keeps the operation on the record
/// and asks it (not a fresh `queryStatus`) once the wait has passed.
#[test]
fn async_202_empty_with_retry_after_to_the_time_limit() {
    async_scenario(EMPTY_REAL_WAIT, Ending::TimeLimit);
}

#[test]
fn async_202_empty_with_retry_after_early_stop() {
    async_scenario(EMPTY_REAL_WAIT, Ending::EarlyStop);
}

#[test]
fn async_202_empty_with_retry_after_watchdog_stop() {
    async_scenario(EMPTY_REAL_WAIT, Ending::Watchdog);
}

// ---- errors ----------------------------------------------------------------------------------

#[test]
fn authorization_failed_on_the_put_fails_the_record_naming_the_missing_action() {
    let w = World::new(1, &[]);
    let action = "Microsoft.Network/networkWatchers/packetCaptures/write";
    w.emu.deny_action(action, true);
    let (resp, v) = w.alert(&common_alert("vm-1", "denied"));
    assert!(matches!(resp.status, 200 | 202), "{v}");
    let id = first_capture(&v);
    let rec = w.capture(&id);
    // A missing role is permanent: retrying cannot help, so the record fails at once.
    assert_eq!(rec["state"], "failed", "{rec}");
    let errors = rec["errors"].to_string();
    assert!(errors.contains("AuthorizationFailed") && errors.contains(action), "{errors}");
    assert_eq!(statuses(&entries(&w, routes::CAPTURE_PUT)), [Some(403)]);
    let notes = w.sink.delivered();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["type"], "capture.failed");
    assert!(notes[0]["summary"].as_str().is_some_and(|s| s.contains(action)), "{}", notes[0]);
    assert!(w.emu.captures().is_empty());
    assert_quiet_afterwards(&w);
    assert_eq!(w.calls(routes::CAPTURE_PUT), 1, "never retried");
}

#[test]
fn a_vm_in_a_missing_resource_group_fails_with_resource_group_not_found() {
    let w = World::new(1, &[]);
    w.emu.set_scope_errors(true);
    let gone = format!("/subscriptions/{SUB}/resourceGroups/rg-gone/providers/Microsoft.Compute/virtualMachines/vm-9");
    let (resp, v) = w.alert(&common_alert_on(&gone, "gone"));
    assert!(matches!(resp.status, 200 | 202), "{v}");
    let id = first_capture(&v);
    let rec = w.capture(&id);
    assert_eq!(rec["state"], "failed", "{rec}");
    let errors = rec["errors"].to_string();
    assert!(errors.contains("ResourceGroupNotFound") && errors.contains("rg-gone"), "{errors}");
    assert_eq!(statuses(&entries(&w, routes::VM_GET)), [Some(404)]);
    assert_eq!(w.calls(routes::WATCHERS_LIST) + w.calls(routes::CAPTURE_PUT), 0);
    let notes = w.sink.delivered();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["type"], "capture.failed");
    assert_quiet_afterwards(&w);
}

#[test]
fn a_throttled_put_with_an_http_date_retry_after_waits_until_that_date() {
    let w = World::new(1, &[]);
    // One clock for both: the emulator writes the date from its clock, the component reads it
    // with its own.
    let now = w.host.clock().now_unix();
    w.emu.set_clock(OffsetDateTime::from_unix_timestamp(now).unwrap());
    w.emu.set_retry_after_style(RetryAfterStyle::HttpDate);
    w.emu.add_fault(Fault::count(routes::CAPTURE_PUT, FaultKind::Status(429), 1).retry_after(600));
    let (resp, v) = w.alert(&common_alert("vm-1", "throttled"));
    assert_eq!(resp.status, 202, "{v}");
    let id = first_capture(&v);
    let rec = w.capture(&id);
    assert_eq!(rec["state"], "queued", "{rec}");
    assert_eq!(statuses(&entries(&w, routes::CAPTURE_PUT)), [Some(429)]);
    let next = rec["next_check_at"].as_str().and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
    let wait = next.map(|t| t.unix_timestamp() - now);
    assert!(wait.is_some_and(|s| (595..=605).contains(&s)), "next check in {wait:?} s, Retry-After said 600: {rec}");

    // Not before the date …
    after(&w, 300);
    after(&w, 280);
    assert_eq!(w.calls(routes::CAPTURE_PUT), 1, "retried before the Retry-After date");
    // … and soon after it.
    after(&w, 25);
    assert_eq!(statuses(&entries(&w, routes::CAPTURE_PUT)), [Some(429), Some(201)]);
    assert_eq!(w.capture(&id)["state"], "running");
}
