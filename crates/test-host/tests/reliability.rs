//! Nothing lost, nothing twice (issue 4), through the real release `.wasm` in the test host and
//! the Azure emulator, at CI size. `scripts/bench.sh` runs the same scenarios at full size.

mod common;

use azure_emulator::routes;
use common::scenarios::*;
use common::*;
use serde_json::Value;
use test_host::CasSemantics;

// ---- concurrency -----------------------------------------------------------------------------

fn assert_one_capture(r: &DuplicateReport) {
    eprintln!("{r:?}");
    assert!(r.other.is_empty(), "answers other than 202 / 200 duplicate: {:?}", r.other);
    // Issue 9: no compare-and-swap. Deliveries that arrive before the first one's writes are
    // visible are answered as new acceptances of the same capture (202), never as a second one.
    assert!(r.started >= 1, "{r:?}");
    assert_eq!(r.started + r.duplicates, r.deliveries, "{r:?}");
    assert_eq!(r.capture_ids.len(), 1, "every answer names the same capture: {:?}", r.capture_ids);
    assert!(r.puts <= 3, "the create claim keeps a storm to a few PUTs, all on one name: {r:?}");
    assert_eq!(r.azure_captures, 1, "one Azure capture: {r:?}");
    assert_eq!(r.records, 1);
}

/// 500 deliveries of one alert, 100 at a time, as 5 storms on fresh stores: each storm starts
/// with the race for the first index write, which is where duplicates appeared.
fn storms(semantics: CasSemantics) {
    for _ in 0..5 {
        assert_one_capture(&duplicate_storm(semantics, 100, 100));
    }
}

#[test]
fn one_alert_delivered_100_at_a_time_strict_cas() {
    storms(CasSemantics::Strict);
}

/// Spin's SQLite store upserts blindly when the swapped key was absent, and the first index
/// write of a fresh store is such a swap; the component elects the index's creator with an
/// atomic increment, so even there the counts are exact.
#[test]
fn one_alert_delivered_100_at_a_time_spin_sqlite_cas() {
    storms(CasSemantics::SpinSqlite);
}

/// Fifty different alerts for one VM on a fresh Spin-SQLite store: the VM claim is decided on
/// the index too, so one capture holds them all.
#[test]
fn fifty_alerts_for_one_vm_at_once_on_spin_sqlite() {
    let r = one_vm_many_alerts_with(50, CasSemantics::SpinSqlite);
    eprintln!("{r:?}");
    assert_one_vm_capture(&r);
}

#[test]
fn one_alert_delivered_100_at_a_time_spin_redis_cas() {
    storms(CasSemantics::SpinRedis);
}

#[test]
fn fifty_alerts_for_one_vm_at_once_make_one_capture_holding_all_of_them() {
    let r = one_vm_many_alerts(50);
    eprintln!("{r:?}");
    assert_one_vm_capture(&r);
}

/// Issue 9: 50 alerts for one VM at once share the window's capture name: one record, one
/// Azure capture, a few PUTs at most (the claim is a hint). Those answered before the record was
/// visible say `started` (of the same capture), the others `coalesced`. The record's
/// `alert_ids` are copied from the alerts' facts by the next check, so they are not counted here.
fn assert_one_vm_capture(r: &CoalesceReport) {
    assert_eq!(r.not_accepted, 0, "{r:?}");
    let answered: usize = r.answers.iter().filter(|(k, _)| *k == "started" || *k == "coalesced").map(|(_, n)| n).sum();
    assert_eq!(answered, 50, "{r:?}");
    assert_eq!((r.records, r.azure_names), (1, 1), "{r:?}");
    assert!(r.puts <= 3 && r.alert_ids_on_records >= 1, "{r:?}");
}

// ---- Azure faults ----------------------------------------------------------------------------

#[test]
fn sixty_alerts_over_fifteen_vms_with_a_fifth_of_azure_calls_failing() {
    let r = fault_run(60, 15, 0.2, 0x5eed_0004, 2);
    eprintln!("{r:#?}");
    assert!(r.settled, "polls never settled: {r:?}");
    assert_eq!(r.accepted, 60, "every delivery ends accepted (Azure retries 503s): {r:?}");
    assert!(r.lost.is_empty(), "accepted alerts on no record: {:?}", r.lost);
    assert!(r.duplicates.is_empty(), "{:?}", r.duplicates);
    assert!(r.unexplained.is_empty(), "records without outcome, reason or notification: {:?}", r.unexplained);
    assert!(r.faults_injected >= r.azure_calls / 10, "the faults really fired: {r:?}");
    assert!(r.by_state.get("succeeded").copied().unwrap_or(0) > 0, "{r:?}");
    // One request at a time works on a record (its lease): a retried create costs at most one
    // PUT per attempt, and a finished record is notified once (the sink never fails here).
    let records: usize = r.by_state.values().sum();
    assert_eq!(r.notifications, records, "each record notified exactly once: {r:?}");
    let most_puts = r.puts_per_capture.keys().max().copied().unwrap_or(0);
    assert!(most_puts <= 8, "more PUTs for one capture than max_attempts allows: {r:?}");
}

// ---- key-value faults ------------------------------------------------------------------------

fn kv_fault_leaves_nothing_half_done(reads: bool) {
    let w = World::new(2, &[]);
    // Some state first, so reads have something to fail on.
    let (r, _) = w.alert(&common_alert("vm-2", "before"));
    assert_eq!(r.status, 202);
    let store_before = w.host.kv().values();
    let calls_before = w.total_calls();
    let alert = common_alert("vm-1", "kv-fault");
    if reads {
        w.host.kv().fail_reads(true);
    } else {
        w.host.kv().fail_writes(true);
    }
    let (r, v) = w.alert(&alert);
    w.host.kv().fail_reads(false);
    w.host.kv().fail_writes(false);
    assert_eq!(r.status, 503, "{v}");
    let retry_after: u64 = r.header("retry-after").and_then(|s| s.parse().ok()).expect("Retry-After seconds");
    assert!(retry_after > 0);
    assert!(r.stats.kv.faults > 0, "the fault was hit");
    assert_eq!(w.host.kv().values(), store_before, "no record, no index change, no VM note");
    assert_eq!(w.total_calls(), calls_before, "no Azure call");

    // Azure retries the delivery: it now succeeds, once.
    let (r, v) = w.alert(&alert);
    assert_eq!(r.status, 202, "{v}");
    let (r, v) = w.alert(&alert);
    assert_eq!((r.status, &v["duplicate"]), (200, &Value::Bool(true)), "{v}");
    assert_eq!(w.calls(routes::CAPTURE_PUT), 2);
}

#[test]
fn failing_kv_writes_answer_503_and_leave_nothing_half_done() {
    kv_fault_leaves_nothing_half_done(false);
}

#[test]
fn failing_kv_reads_answer_503_and_leave_nothing_half_done() {
    kv_fault_leaves_nothing_half_done(true);
}

// ---- token expiry, watchdog, notifications ---------------------------------------------------

fn record_state(w: &World, id: &str) -> Value {
    w.capture(id)
}

#[test]
fn a_token_revoked_mid_run_costs_one_refresh_and_no_capture() {
    let w = World::new(1, &[("capture_time_limit_seconds", "120")]);
    let (r, v) = w.alert(&common_alert("vm-1", "token"));
    assert_eq!(r.status, 202, "{v}");
    let id = first_capture(&v);
    assert_eq!(v["captures"][0]["state"], "running");
    assert_eq!(w.calls(routes::TOKEN), 1);
    w.emu.revoke_tokens();
    w.advance(31);
    assert_eq!(w.poll()["advanced"], 1);
    assert_eq!(w.calls(routes::TOKEN), 2, "exactly one new token");
    assert_eq!(record_state(&w, &id)["state"], "running");
    let (_, settled) = poll_until_idle(&w, 60, 20);
    assert!(settled);
    let rec = record_state(&w, &id);
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(w.calls(routes::TOKEN), 3, "the new ARM token served the rest; the file summary took one Storage token");
    assert_eq!(w.calls(routes::CAPTURE_PUT), 1);
}

#[test]
fn a_capture_stuck_running_is_stopped_after_limit_plus_grace() {
    let w = World::new(1, &[("capture_time_limit_seconds", "60"), ("capture_grace_seconds", "120")]);
    w.emu.hang_next_capture();
    let (r, v) = w.alert(&common_alert("vm-1", "stuck"));
    assert_eq!(r.status, 202, "{v}");
    let id = first_capture(&v);
    // Through the limit and most of the grace: still running, never stopped.
    for _ in 0..5 {
        w.advance(30);
        w.poll();
    }
    assert_eq!(record_state(&w, &id)["state"], "running");
    assert_eq!(w.calls(routes::CAPTURE_STOP), 0, "not stopped before limit + grace");
    let (_, settled) = poll_until_idle(&w, 30, 20);
    assert!(settled);
    let rec = record_state(&w, &id);
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(rec["stop_reason"], "TimedOutByResponder", "{rec}");
    assert_eq!(w.calls(routes::CAPTURE_STOP), 1);
    assert!(rec["storage_path"].is_string(), "{rec}");
    let notes = w.sink.delivered();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["type"], "capture.succeeded");
}

#[test]
fn notifications_that_fail_three_times_arrive_later_with_one_event_id() {
    let w = World::new(1, &[("capture_time_limit_seconds", "60")]);
    w.sink.fail_next(3);
    let (r, v) = w.alert(&common_alert("vm-1", "notify"));
    assert_eq!(r.status, 202, "{v}");
    let id = first_capture(&v);
    let (_, settled) = poll_until_idle(&w, 60, 40);
    assert!(settled);
    let all = w.sink.all();
    let statuses: Vec<u16> = all.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [503, 503, 503, 200], "three failures, then one delivery, nothing more");
    let ids: Vec<&Value> = all.iter().map(|(_, b)| &b["id"]).collect();
    assert!(ids[0].is_string() && ids.iter().all(|i| *i == ids[0]), "one event id: {ids:?}");
    let rec = record_state(&w, &id);
    assert_eq!((rec["notified"].as_bool(), rec["notify_attempts"].as_u64()), (Some(true), Some(4)), "{rec}");
    assert!(rec["notify_error"].is_null(), "{rec}");
}

// ---- soak ------------------------------------------------------------------------------------

#[test]
fn soak_1000_alerts_over_a_day_keeps_keys_bounded_and_polls_flat() {
    let r = soak(1000, 40, 50);
    eprintln!("{r:#?}");
    assert_eq!(r.statuses.values().sum::<usize>(), 1000);
    assert!(r.statuses.keys().all(|s| [200, 202].contains(s)), "{:?}", r.statuses);
    assert!(r.max_keys <= r.bound, "key count {} over the documented bound {}", r.max_keys, r.bound);
    assert!(r.evicted_active.is_empty(), "records evicted while active: {:?}", r.evicted_active);
    assert!(r.captures_seen > 100, "{r:?}");
    // Flat: the last tenth costs no more KV operations or calls than the first, within noise.
    assert!(r.poll_kv_last <= r.poll_kv_first * 1.5 + 2.0, "{r:?}");
    assert!(r.poll_out_last <= r.poll_out_first * 1.5 + 1.0, "{r:?}");
    assert!(r.alert_kv_last <= r.alert_kv_first * 1.5 + 2.0, "{r:?}");
}
