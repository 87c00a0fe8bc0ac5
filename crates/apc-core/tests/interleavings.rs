//! Issue 9: the budgets of the state layer without compare-and-swap, and the interleavings it
//! must survive, on every store behaviour. Counts come from the kit's store counters and the
//! log line's outbound call count; nothing is timed.

use apc_core::ports::{Method, TransportError};
use apc_testkit::alerts::{classic_vm_alert, common_vm_alert};
use apc_testkit::app::capture_id;
use apc_testkit::consts::{
    CAPTURE_CREATE, CAPTURE_GET, CAPTURE_STATUS_STOPPED, NOTIFY, NW2, SUB, TOKEN_OK, TOKEN_URL, VM_GET, VM1_URL,
    WATCHER_LIST, WATCHERS_URL, capture_url,
};
use apc_testkit::http::{ScriptedHttp, sample_file_response, sample_response};
use apc_testkit::{Staleness, StoreBehaviour, TestApp, store_matrix};
use serde_json::{Value, json};

/// The common-schema sample with another alert id (same VM, same fired time).
fn other_alert(n: usize) -> Value {
    let mut a = common_vm_alert();
    a["data"]["essentials"]["alertId"] =
        json!(format!("/subscriptions/{SUB}/providers/Microsoft.AlertsManagement/alerts/storm-{n}"));
    a
}

fn puts(app: &TestApp) -> Vec<String> {
    app.http.requests().iter().filter(|r| r.method == Method::Put).map(|r| r.url.clone()).collect()
}

fn budgets_of_the_issue(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    // Idle poll: nothing stored.
    let (resp, _) = app.call("POST", "/poll", b"");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.log["outbound_calls"], 0);
    assert_eq!((app.counts().total(), app.counts().writes()), (1, 0), "idle poll: {:?}", app.counts());
    app.kv.reset_counts();

    // Cold alert: at most token, VM, watcher list, PUT.
    app.script_cold_path();
    let (resp, v) = app.post_alert(&common_vm_alert());
    assert_eq!(resp.status, 202, "{v}");
    assert_eq!(resp.log["outbound_calls"], 4, "{}", resp.log);
    // The Azure cache (token, region, watcher) is written once, when the request ends.
    assert_eq!((app.counts().total(), app.counts().writes()), (7, 4), "cold alert: {:?}", app.counts());
    app.settle();

    // Warm new alert (another VM, region in the payload): one PUT, ≤ 6 KV operations, ≤ 3 writes.
    app.kv.reset_counts();
    app.http.route(Method::Put, NW2, sample_response(CAPTURE_CREATE, 201));
    let (resp, v) = app.post_alert(&classic_vm_alert("vm-b", "rule-b"));
    assert_eq!(resp.status, 202, "{v}");
    assert_eq!(resp.log["outbound_calls"], 1);
    let c = app.counts();
    assert_eq!((c.total(), c.writes()), (6, 3), "warm alert: {c:?}");
    app.settle();

    // Duplicate: no call, ≤ 2 operations, no write.
    app.kv.reset_counts();
    let (resp, v) = app.post_alert(&classic_vm_alert("vm-b", "rule-b"));
    assert_eq!(resp.status, 200, "{v}");
    assert_eq!(v["duplicate"], true);
    assert_eq!(resp.log["outbound_calls"], 0);
    let c = app.counts();
    assert_eq!((c.total(), c.writes()), (2, 0), "duplicate: {c:?}");
}
store_matrix!(budgets_of_the_issue: Strict, SpinSqlite, SpinRedis, Eventual);

/// A queued capture (its PUT throttled) with its watcher known.
fn queued_capture(app: &TestApp) -> String {
    app.script_token();
    app.http.expect(Method::Get, VM1_URL, sample_response(VM_GET, 200));
    app.http.expect(Method::Get, WATCHERS_URL, sample_response(WATCHER_LIST, 200));
    app.http.route(Method::Put, NW2, ScriptedHttp::arm_error(429, "TooManyRequests", "slow down"));
    let (resp, v) = app.post_alert(&common_vm_alert());
    assert_eq!(resp.status, 202, "{v}");
    assert_eq!(v["captures"][0]["state"], "queued");
    app.http.assert_done();
    app.http.clear_log();
    app.settle();
    capture_id(&v)
}

/// A stop racing a create: the stop PUTs nothing and ends nothing on its own; the capture a
/// create in flight made is found by name, stopped, followed to its end and cleaned up.
fn a_stop_racing_a_create_leaves_no_untracked_capture(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let id = queued_capture(&app);
    let (resp, v) = app.stop_capture(&id);
    assert_eq!(resp.status, 200, "{v}");
    assert_eq!(v["state"], "queued", "ends when Azure says so: {v}");
    assert_eq!(app.http.count(), 0, "the stop PUTs nothing");

    // The create of a request that read the record before the stop landed in Azure.
    app.http.expect(Method::Get, capture_url(&id), sample_response(CAPTURE_GET, 200));
    app.http.expect(Method::Post, format!("{NW2}/{id}/stop?api-version=2025-07-01"), ScriptedHttp::empty(200));
    app.clock.advance(61);
    app.poll();
    app.http.assert_done();
    assert_eq!(app.record(&id)["state"], "running", "followed: {}", app.record(&id));
    app.http.route(Method::Post, format!("{NW2}/{id}/queryStatus"), sample_response(CAPTURE_STATUS_STOPPED, 200));
    app.script_finish(&id);
    app.clock.advance(1);
    app.poll();
    let rec = app.record(&id);
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(rec["azure_deleted"], true, "{rec}");
    assert!(puts(&app).is_empty(), "no PUT after the stop");
}
store_matrix!(a_stop_racing_a_create_leaves_no_untracked_capture: Strict, SpinSqlite, SpinRedis, Eventual);

/// The same stop when no create happened: the lookup by name finds nothing, the record fails.
fn a_stop_before_any_create_ends_the_record_after_a_lookup(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let id = queued_capture(&app);
    assert_eq!(app.stop_capture(&id).0.status, 200);
    app.http.expect(Method::Get, capture_url(&id), ScriptedHttp::arm_error(404, "NotFound", "no such capture"));
    app.route_notifications();
    app.clock.advance(61);
    app.poll();
    let rec = app.record(&id);
    assert_eq!(rec["state"], "failed", "{rec}");
    assert!(rec["errors"].to_string().contains("stopped on request before Azure accepted it"), "{rec}");
    assert!(puts(&app).is_empty());
}
store_matrix!(a_stop_before_any_create_ends_the_record_after_a_lookup: Strict, SpinSqlite, SpinRedis, Eventual);

/// The last create attempt timed out: the capture may exist, so it is looked up by name and
/// followed — never re-created, never left untracked.
fn a_create_whose_last_attempt_timed_out_is_looked_up_and_followed(store: StoreBehaviour) {
    let app = TestApp::builder().store(store).var("max_attempts", "1").build();
    app.script_token();
    app.http.expect(Method::Get, VM1_URL, sample_response(VM_GET, 200));
    app.http.expect(Method::Get, WATCHERS_URL, sample_response(WATCHER_LIST, 200));
    app.http.route_error(Method::Put, NW2, TransportError::Timeout);
    let (resp, v) = app.post_alert(&common_vm_alert());
    assert_eq!(resp.status, 202, "{v}");
    let id = capture_id(&v);
    let rec = app.record(&id);
    assert_eq!(rec["state"], "queued", "not failed: the PUT may have worked: {rec}");
    app.http.clear_log();
    app.http.expect(Method::Get, capture_url(&id), sample_response(CAPTURE_GET, 200));
    app.clock.advance(60);
    app.poll();
    app.http.assert_done();
    let rec = app.record(&id);
    assert_eq!(rec["state"], "running", "{rec}");
    assert!(puts(&app).is_empty(), "looked up, not created again");
}
store_matrix!(a_create_whose_last_attempt_timed_out_is_looked_up_and_followed: Strict, SpinSqlite, SpinRedis, Eventual);

/// A redelivery after the record was evicted (`max_records`): the alert's fact outlives the
/// record, so it is still a duplicate — no Azure call, no second notification.
fn a_redelivery_after_eviction_is_still_a_duplicate(store: StoreBehaviour) {
    let app = TestApp::builder().store(store).vars(&[("max_records", "10"), ("max_active_captures", "1")]).build();
    app.script_cold_path();
    assert_eq!(app.post_alert(&common_vm_alert()).0.status, 202);
    app.settle();
    app.route_notifications();
    let first = app.post_alert(&classic_vm_alert("vm-0", "r-0")).1;
    assert_eq!(first["skipped"], "limit", "{first}");
    let first_id = capture_id(&first);
    for i in 1..15 {
        app.settle();
        assert_eq!(app.post_alert(&classic_vm_alert(&format!("vm-{i}"), &format!("r-{i}"))).1["skipped"], "limit");
    }
    app.poll();
    assert!(!app.has_record(&first_id), "evicted (oldest finished first)");
    app.http.clear_log();
    app.settle();
    let (resp, v) = app.post_alert(&classic_vm_alert("vm-0", "r-0"));
    assert_eq!(resp.status, 200, "{v}");
    assert_eq!(v["duplicate"], true, "{v}");
    assert_eq!(capture_id(&v), first_id);
    assert_eq!(app.http.count(), 0, "no call, no second notification");
}
store_matrix!(a_redelivery_after_eviction_is_still_a_duplicate: Strict, SpinSqlite, SpinRedis, Eventual);

/// 50 distinct alerts for one VM in one window, each answered before any of the others is
/// visible (an eventually consistent store far behind): they all meet one Azure capture name,
/// and once replicated one record lists all 50.
#[test]
fn fifty_alerts_for_one_vm_before_any_is_visible_share_one_capture() {
    let app = TestApp::builder().store(StoreBehaviour::Eventual).staleness(Staleness::Requests(1000)).build();
    app.http.route_always(Method::Post, TOKEN_URL, sample_file_response(TOKEN_OK, 200));
    app.http.route_always(Method::Get, VM1_URL, sample_response(VM_GET, 200));
    app.http.route_always(Method::Get, WATCHERS_URL, sample_response(WATCHER_LIST, 200));
    app.http.route_always(Method::Put, NW2, sample_response(CAPTURE_CREATE, 201));
    let mut ids = Vec::new();
    for n in 0..50 {
        let (resp, v) = app.post_alert(&other_alert(n));
        // Nothing is visible yet: each is answered as a new acceptance of the same capture.
        assert_eq!(resp.status, 202, "{v}");
        ids.push(capture_id(&v));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one capture name for the VM and window: {ids:?}");
    let id = &ids[0];
    let urls = puts(&app);
    assert!(!urls.is_empty() && urls.iter().all(|u| *u == capture_url(id)), "one Azure capture: {urls:?}");
    app.poll();
    let rec = app.record(id);
    let listed = rec["alert_ids"].as_array().unwrap();
    assert_eq!(listed.len(), 50, "{rec}");
    for n in 0..50 {
        assert!(listed.iter().any(|a| a.as_str().unwrap().contains(&format!("storm-{n}|"))), "storm-{n}");
    }
}

/// A storm of distinct alerts for distinct VMs never answers 503 (nothing is contended).
fn a_storm_of_distinct_alerts_never_answers_503(store: StoreBehaviour) {
    let app = TestApp::builder().store(store).var("max_active_captures", "100").build();
    app.http.route_always(Method::Post, TOKEN_URL, sample_file_response(TOKEN_OK, 200));
    app.http.route_always(Method::Get, WATCHERS_URL, sample_response(WATCHER_LIST, 200));
    app.http.route_always(Method::Put, NW2, sample_response(CAPTURE_CREATE, 201));
    app.http.route_always(Method::Post, NOTIFY, ScriptedHttp::empty(200));
    for i in 0..200 {
        let (resp, v) = app.post_alert(&classic_vm_alert(&format!("vm-{i}"), &format!("r-{i}")));
        assert!(resp.status == 202 || resp.status == 200, "alert {i}: {v}");
    }
}
store_matrix!(a_storm_of_distinct_alerts_never_answers_503: Strict, SpinSqlite, SpinRedis, Eventual);

/// What a request on a replicated store (Akamai's) may see: the store as it was at an earlier
/// moment, plus its own writes, which do reach the real store.
struct StaleView<'a> {
    inner: &'a apc_testkit::MemKv,
    seen: std::cell::RefCell<std::collections::BTreeMap<String, Option<Vec<u8>>>>,
}

impl<'a> StaleView<'a> {
    /// The store as it is now, for a request made later.
    fn of(kv: &'a apc_testkit::MemKv) -> Self {
        let seen = kv.keys().into_iter().map(|k| (k.clone(), kv.get_string(&k).map(String::into_bytes))).collect();
        StaleView { inner: kv, seen: std::cell::RefCell::new(seen) }
    }
}

impl apc_core::ports::KvStore for StaleView<'_> {
    fn get(&self, k: &str) -> Result<Option<Vec<u8>>, apc_core::ports::KvError> {
        Ok(self.seen.borrow().get(k).cloned().flatten())
    }
    fn set(&self, k: &str, v: &[u8]) -> Result<(), apc_core::ports::KvError> {
        self.seen.borrow_mut().insert(k.to_string(), Some(v.to_vec()));
        self.inner.set(k, v)
    }
    fn delete(&self, k: &str) -> Result<(), apc_core::ports::KvError> {
        self.seen.borrow_mut().insert(k.to_string(), None);
        self.inner.delete(k)
    }
    fn list_keys(&self) -> Result<Vec<String>, apc_core::ports::KvError> {
        Ok(self.seen.borrow().iter().filter(|(_, v)| v.is_some()).map(|(k, _)| k.clone()).collect())
    }
}

/// `POST /poll` through `kv`.
fn poll_through(app: &TestApp, kv: &dyn apc_core::ports::KvStore) -> apc_core::api::ApiResponse {
    app.send_with_kv(&app.request("POST", "/poll", b""), kv)
}

fn keys_of(app: &TestApp, id: &str) -> Vec<String> {
    app.kv
        .keys()
        .into_iter()
        .filter(|k| (k.starts_with("v1:act:") || k.starts_with("v1:cap:")) && k.contains(id))
        .collect()
}

/// A running capture on the sample VM, and a view of the store as it was then.
fn running_capture(app: &TestApp) -> String {
    app.script_cold_path();
    let (resp, v) = app.post_alert(&common_vm_alert());
    assert_eq!(resp.status, 202, "{v}");
    assert_eq!(v["captures"][0]["state"], "running", "{v}");
    app.http.assert_done();
    app.settle();
    capture_id(&v)
}

/// Finish capture `id`: Azure says it stopped; the file is read, the notification sent and the
/// capture deleted.
fn finish(app: &TestApp, id: &str) {
    app.http.expect(
        Method::Post,
        format!("{NW2}/{id}/queryStatus?api-version=2025-07-01"),
        sample_response(CAPTURE_STATUS_STOPPED, 200),
    );
    app.script_finish(id);
    app.clock.advance(301);
    app.poll();
    app.http.assert_done();
    let rec = app.record(id);
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(rec["azure_deleted"], true, "{rec}");
}

/// A request that reads an old copy of a running record after another request finished it and
/// deleted its capture (Akamai's store shows writes late) finds the capture gone. It must not
/// fail the record or notify "failed": it notes the absence and comes back later; by then the
/// finished record is visible, Azure is asked once more, and the left-over key goes.
fn a_stale_copy_of_a_finished_capture_neither_fails_it_nor_notifies(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let id = running_capture(&app);
    let stale = StaleView::of(&app.kv);
    finish(&app, &id);
    app.http.clear_log();

    app.http.expect(
        Method::Post,
        format!("{NW2}/{id}/queryStatus?api-version=2025-07-01"),
        ScriptedHttp::arm_error(404, "NotFound", "no such capture"),
    );
    app.clock.advance(30);
    assert_eq!(poll_through(&app, &stale).status, 200);
    app.http.assert_done();
    assert!(app.notifications().is_empty(), "no second notification");
    assert_eq!(keys_of(&app, &id).len(), 2, "the old copy wrote its act key back: {:?}", keys_of(&app, &id));
    let rec = app.record(&id);
    assert_eq!(rec["state"], "succeeded", "the finished record wins: {rec}");

    // The next poll sees both keys: asks Azure (gone), deletes the act key, sends nothing.
    app.http.expect(Method::Get, capture_url(&id), ScriptedHttp::arm_error(404, "NotFound", "no such capture"));
    app.clock.advance(60);
    app.poll();
    app.http.assert_done();
    app.settle();
    only_the_finished_record(&app, &id);
}

/// Capture `id` has its one finished record (`succeeded`) and no other key, and no second
/// notification went out since the log was cleared.
fn only_the_finished_record(app: &TestApp, id: &str) {
    assert!(app.notifications().is_empty(), "the alert was notified once, before");
    let keys = keys_of(app, id);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("v1:cap:"), "{keys:?}");
    assert_eq!(app.record(id)["state"], "succeeded");
}
store_matrix!(a_stale_copy_of_a_finished_capture_neither_fails_it_nor_notifies: Strict, SpinSqlite, SpinRedis, Eventual);

/// A request that reads an old copy of a queued record (its first PUT throttled) after other
/// requests created, finished and deleted the capture `PUT`s it again: Azure makes a new
/// capture of the same name. The next poll finds it under the finished record's name, stops and
/// deletes it: nothing Azure runs is left untracked.
fn a_stale_queued_copy_that_creates_again_is_cleaned_up(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let id = queued_capture(&app);
    let stale = StaleView::of(&app.kv);
    app.http.route(Method::Put, NW2, sample_response(CAPTURE_CREATE, 201));
    app.clock.advance(31);
    app.poll();
    assert_eq!(app.record(&id)["state"], "running", "{}", app.record(&id));
    finish(&app, &id);
    app.http.clear_log();

    app.http.route(Method::Put, NW2, sample_response(CAPTURE_CREATE, 201));
    app.clock.advance(30);
    assert_eq!(poll_through(&app, &stale).status, 200);
    assert_eq!(puts(&app).len(), 1, "the old copy created the capture again");
    assert!(keys_of(&app, &id).iter().any(|k| k.starts_with("v1:act:")), "{:?}", keys_of(&app, &id));

    app.http.clear_log();
    app.http.expect(Method::Get, capture_url(&id), sample_response(CAPTURE_GET, 200));
    app.http.expect(Method::Post, format!("{NW2}/{id}/stop?api-version=2025-07-01"), ScriptedHttp::empty(200));
    app.http.expect(Method::Delete, capture_url(&id), sample_response(apc_testkit::consts::CAPTURE_DELETE, 204));
    app.clock.advance(60);
    app.poll();
    app.http.assert_done();
    app.settle();
    only_the_finished_record(&app, &id);
}
store_matrix!(a_stale_queued_copy_that_creates_again_is_cleaned_up: Strict, SpinSqlite, SpinRedis, Eventual);

/// An alert coalesced into a capture just before another request finishes it, its fact not yet
/// visible to that request (Akamai's store): the finished record is looked at once more after
/// the store settled and lists it then. No alert is left on no record.
fn an_alert_attached_at_the_last_moment_is_listed_after_the_settle(store: StoreBehaviour) {
    let app = TestApp::with_store(store);
    let id = running_capture(&app);
    let stale = StaleView::of(&app.kv);
    let (resp, v) = app.post_alert(&other_alert(1));
    assert_eq!(resp.status, 200, "{v}");
    assert_eq!(v["coalesced"], true, "{v}");
    assert_eq!(capture_id(&v), id, "{v}");

    app.http.expect(
        Method::Post,
        format!("{NW2}/{id}/queryStatus?api-version=2025-07-01"),
        sample_response(CAPTURE_STATUS_STOPPED, 200),
    );
    app.script_finish(&id);
    app.clock.advance(301);
    assert_eq!(poll_through(&app, &stale).status, 200);
    app.http.assert_done();
    app.settle();
    let rec = app.record(&id);
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(rec["alert_ids"].as_array().map(Vec::len), Some(1), "the finisher did not see it: {rec}");

    app.clock.advance(apc_core::advance::STORE_SETTLE_SECS);
    app.poll();
    app.settle();
    let rec = app.record(&id);
    assert_eq!(rec["alert_ids"].as_array().map(Vec::len), Some(2), "{rec}");
    assert_eq!(rec["next_check_at"], Value::Null, "{rec}");
    app.http.assert_done();
}
store_matrix!(an_alert_attached_at_the_last_moment_is_listed_after_the_settle: Strict, SpinSqlite, SpinRedis, Eventual);

/// A first create throttled with a short `Retry-After` is tried again in the same request once
/// that wait has passed (the request's deadline allows it): the capture runs at once instead of
/// a poll period later. A long `Retry-After` is left to a later check.
fn a_short_retry_after_on_a_create_is_waited_out_in_the_request(store: StoreBehaviour) {
    use apc_testkit::http::with_header;
    let app = TestApp::with_store(store);
    app.script_token();
    app.http.expect(Method::Get, VM1_URL, sample_response(VM_GET, 200));
    app.http.expect(Method::Get, WATCHERS_URL, sample_response(WATCHER_LIST, 200));
    let throttled =
        |secs: &str| with_header(ScriptedHttp::arm_error(429, "TooManyRequests", "slow down"), "retry-after", secs);
    app.http.route(Method::Put, NW2, throttled("2"));
    app.http.route(Method::Put, NW2, sample_response(CAPTURE_CREATE, 201));
    let before = apc_core::ports::Clock::now(&app.clock);
    let (resp, v) = app.post_alert(&common_vm_alert());
    assert_eq!(resp.status, 202, "{v}");
    assert_eq!(v["captures"][0]["state"], "running", "{v}");
    assert_eq!(puts(&app).len(), 2);
    assert_eq!(apc_core::ports::Clock::now(&app.clock) - before, 2, "the wait was the Retry-After");

    // Another VM, throttled for 30 s: queued, one PUT, no wait.
    app.settle();
    app.http.clear_log();
    app.http.route(Method::Put, NW2, throttled("30"));
    let before = apc_core::ports::Clock::now(&app.clock);
    let (resp, v) = app.post_alert(&classic_vm_alert("vm-b", "rule-b"));
    assert_eq!(resp.status, 202, "{v}");
    assert_eq!(v["captures"][0]["state"], "queued", "{v}");
    assert_eq!(puts(&app).len(), 1);
    assert_eq!(apc_core::ports::Clock::now(&app.clock), before);
}
store_matrix!(a_short_retry_after_on_a_create_is_waited_out_in_the_request: Strict, SpinSqlite, SpinRedis, Eventual);
