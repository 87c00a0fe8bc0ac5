//! Following captures across invocations (SPEC §7): the state machine.
//!
//! [`step`] is a pure-ish function of a record, the clock and the Azure client: it performs at
//! most the Azure calls one step needs and returns the new record. [`advance_due`] and
//! [`advance_record`] load records, run a step and write the result back with a plain `set`:
//! statuses come from Azure, so a concurrent writer's lost update is re-derived at the next check.

use crate::clients::azure::{
    AzureError, CaptureParams, CaptureStatus, MAX_RETRY_AFTER_SECS, OperationPoll, StatusOutcome,
};
use crate::clients::notify;
use crate::clients::store::records::{self, Place};
use crate::clients::store::{self, Listing, StoreError, facts};
use crate::domain::config::Config;
use crate::domain::record::{CaptureRecord, PendingStatus, State};
use crate::domain::resource_id::{ResourceId, Target};
use crate::ports::UnixSeconds;

pub use super::ctx::{Ctx, REQUEST_WORK_SECS};
pub use crate::domain::policy::backoff;

/// A stop asked while the record is `queued` is checked against Azure no sooner than this: a
/// create already in flight in another request has landed (or failed) by then.
pub const STOP_SETTLE_SECS: i64 = 60;

/// Captures `POST /alerts` may advance besides its own (none: its budget is the alert's).
pub const ALERT_ADVANCE_MAX: usize = 0;

/// Housekeeping deletions per request at most (bounded time per request).
pub const MAX_DELETES_PER_REQUEST: usize = 50;

/// Least time past the watchdog before a capture Azure cannot report on is given up.
pub const ABANDON_AFTER: i64 = 3600;

/// Longest wait between two status checks of a running capture.
pub const CHECK_INTERVAL: i64 = 30;

/// A status operation Azure has not answered within this long after accepting it is dropped,
/// and the next check issues a fresh `queryStatus` (Azure may have lost it).
pub const MAX_PENDING_STATUS_SECS: i64 = 600;

/// Wait before asking a pending status operation again when Azure gave no `Retry-After`.
pub const PENDING_STATUS_WAIT: i64 = 10;

/// How long a finished record whose notification was held back by wrong notification settings
/// waits before it looks at the settings again. No delivery attempt is counted while they are
/// wrong, so the notification goes out once they are fixed (within the retention).
pub const NOTIFY_RECHECK_SECS: i64 = 15 * 60;

/// How long other requests' writes are given to become visible before a decision that they
/// could change is final. A store that shows them late (Akamai's replicated store) can hand a
/// check an old copy of a record whose capture another request already finished and deleted,
/// or hide an alert another request attached just before the record finished. So a capture
/// Azure reports missing must stay missing this long before its record fails (by then the
/// finished record is visible and wins: no second, `failed` record, no wrong notification), and
/// a finished record is checked once more this long after it finished, to list alerts attached
/// at the last moment (docs/STATE.md).
pub const STORE_SETTLE_SECS: i64 = 60;

/// Azure holds no capture of the record's name. `true`: confirmed (missing since at least
/// [`STORE_SETTLE_SECS`]): the caller ends the record. `false`: first seen, or too early to
/// tell; the record is due again when the settle time is over.
fn confirm_missing(rec: &mut CaptureRecord, now: UnixSeconds) -> bool {
    let since = *rec.missing_since.get_or_insert(now);
    if now >= since.saturating_add(STORE_SETTLE_SECS) {
        return true;
    }
    rec.next_check_at = Some(since.saturating_add(STORE_SETTLE_SECS));
    false
}

fn target_of(rec: &CaptureRecord) -> Option<Target> {
    ResourceId::parse(&rec.vm).ok().as_ref().and_then(Target::from_id)
}

fn params(rec: &CaptureRecord, target: Target) -> Result<CaptureParams, String> {
    let storage_account_id = match &rec.spec.storage_account_id {
        Some(s) => Some(ResourceId::parse(s).map_err(|e| e.to_string())?),
        None => None,
    };
    Ok(CaptureParams {
        target,
        time_limit_seconds: rec.spec.time_limit_seconds,
        bytes_per_packet: rec.spec.bytes_per_packet,
        bytes_per_session: rec.spec.bytes_per_session,
        filters: rec.spec.filters.clone(),
        storage_account_id,
        file_path: rec.spec.file_path.clone(),
    })
}

/// A failed Azure call on a capture: retry later when safe and attempts remain, else fail.
fn on_error(ctx: &Ctx, rec: &mut CaptureRecord, what: &str, e: &AzureError, count_attempt: bool) {
    let now = ctx.now();
    rec.push_error(format!("{what}: {}", e.summary()));
    let retry = e.is_retryable() || matches!(e, AzureError::Config { .. });
    if retry && (!count_attempt || rec.attempts < ctx.cfg.max_attempts) {
        rec.next_check_at = Some(now + backoff(rec.attempts.max(1), e.retry_after()));
    } else {
        if retry {
            rec.push_error(format!("gave up after {} attempts", rec.attempts));
        }
        rec.finish(State::Failed, now);
    }
}

/// The Network Watcher of a record's VM: the recorded one, else found through the VM's region
/// (payload, cache, or a VM `GET`). Records what it learns.
fn resolve_watcher(ctx: &Ctx, rec: &mut CaptureRecord, target: &Target) -> Result<ResourceId, (String, AzureError)> {
    if let Some(w) = rec.watcher.as_deref().and_then(|w| ResourceId::parse(w).ok()) {
        return Ok(w);
    }
    let location = match rec.location.clone().or_else(|| ctx.azure.cached_region(&rec.vm_key)) {
        Some(l) => l,
        None => match ctx.azure.get_vm(target.capture_target()) {
            Ok(vm) => {
                if !vm.has_watcher_agent {
                    // Azure refuses the capture without the agent; say what to do, and still try
                    // (the extension list may lag behind an install in progress).
                    rec.warnings.push(
                        "the Network Watcher agent extension (Microsoft.Azure.NetworkWatcher) is not installed on the VM; \
                         install it (az vm extension set --publisher Microsoft.Azure.NetworkWatcher --name NetworkWatcherAgentLinux or NetworkWatcherAgentWindows)"
                            .to_string(),
                    );
                }
                ctx.azure.remember_region(&rec.vm_key, &vm.location);
                vm.location
            }
            Err(e) => return Err(("reading the VM".to_string(), e)),
        },
    };
    rec.location = Some(location.clone());
    let sub = target.capture_target().subscription().to_string();
    let watcher =
        ctx.azure.find_watcher(&sub, &location).map_err(|e| ("finding the Network Watcher".to_string(), e))?;
    rec.watcher = Some(watcher.to_string());
    Ok(watcher)
}

/// The capture exists in Azure (created by us, perhaps by a request whose answer was lost):
/// follow it from now on.
fn adopt(rec: &mut CaptureRecord, now: UnixSeconds, storage_path: Option<String>) {
    rec.state = State::Running;
    rec.create_unknown = false;
    rec.missing_since = None;
    rec.started_at = Some(now);
    rec.azure_status = Some("NotStarted".to_string());
    if storage_path.is_some() {
        rec.storage_path = storage_path;
    }
    rec.next_check_at = Some(now + CHECK_INTERVAL.min(i64::from(rec.spec.time_limit_seconds)));
}

/// A queued record whose create may have happened (its last attempt's outcome is unknown, or a
/// stop was asked meanwhile): look the capture up by name instead of creating it.
fn verify_queued(ctx: &Ctx, rec: &mut CaptureRecord, watcher: &ResourceId) {
    let now = ctx.now();
    match ctx.azure.get_capture(watcher, &rec.name) {
        Ok(info) => {
            adopt(rec, now, info.storage_path.clone());
            if rec.stop_requested {
                // Created by a request the stop raced with: stop it; the next check records the
                // outcome and the file like any stopped capture.
                rec.stop_requested = false;
                if let Err(e) = ctx.azure.stop_capture(watcher, &rec.name)
                    && !matches!(e, AzureError::NotFound { .. })
                {
                    rec.push_error(format!("stopping the capture on request: {}", e.summary()));
                }
                rec.next_check_at = Some(now);
            }
        }
        Err(AzureError::NotFound { .. }) => {
            // A stop already waited STOP_SETTLE_SECS (as long as the settle) before this lookup.
            if !rec.stop_requested && !confirm_missing(rec, now) {
                return;
            }
            if rec.stop_requested {
                rec.push_error("stopped on request before Azure accepted it");
            } else {
                rec.push_error(format!("gave up after {} attempts; Azure has no capture of that name", rec.attempts));
            }
            rec.finish(State::Failed, now);
        }
        Err(e) => {
            rec.push_error(format!("looking up the capture: {}", e.summary()));
            rec.attempts += 1;
            if rec.attempts >= ctx.cfg.max_attempts.saturating_mul(2) {
                rec.push_error("gave up: could not learn whether the capture exists; check the portal");
                rec.finish(State::Failed, now);
            } else {
                rec.next_check_at = Some(now + backoff(rec.attempts, e.retry_after()));
            }
        }
    }
}

/// Longest `Retry-After` a create waits out within its request ([`inline_wait`]).
pub const INLINE_RETRY_MAX_SECS: u64 = 3;

/// How long to wait before trying a throttled (or briefly unavailable) create again in this
/// request: its `Retry-After`, when it is at most [`INLINE_RETRY_MAX_SECS`] and the retry would
/// still start a second before the request's deadline. `None`: leave it to a later check.
fn inline_wait(ctx: &Ctx, e: &AzureError) -> Option<u64> {
    let wait = match e {
        AzureError::Throttled { retry_after_secs, .. } => *retry_after_secs,
        AzureError::Transient { retry_after_secs: Some(s), .. } => *s,
        _ => return None,
    };
    let fits = ctx.now().saturating_add(i64::try_from(wait).ok()?).saturating_add(1) < ctx.deadline;
    (wait <= INLINE_RETRY_MAX_SECS && fits).then_some(wait)
}

/// Try (again) to create the capture in Azure.
fn step_queued(ctx: &Ctx, rec: &mut CaptureRecord) {
    let now = ctx.now();
    let Some(target) = target_of(rec) else {
        rec.push_error("the stored target id is not a VM or scale set");
        rec.finish(State::Failed, now);
        return;
    };
    let verifying = rec.create_unknown || rec.stop_requested;
    if !verifying {
        rec.attempts += 1;
    }
    let watcher = match resolve_watcher(ctx, rec, &target) {
        Ok(w) => w,
        Err((what, e)) => {
            if rec.stop_requested && !e.is_retryable() {
                // Without a watcher no create can have happened either.
                rec.push_error("stopped on request before Azure accepted it");
                return rec.finish(State::Failed, now);
            }
            return on_error(ctx, rec, &what, &e, !verifying);
        }
    };
    if verifying {
        return verify_queued(ctx, rec, &watcher);
    }
    let subscription = target.capture_target().subscription().to_string();
    let p = match params(rec, target) {
        Ok(p) => p,
        Err(why) => {
            rec.push_error(format!("stored parameters are invalid: {why}"));
            return rec.finish(State::Failed, now);
        }
    };
    let mut created = ctx.azure.create_capture(&watcher, &rec.name, &p);
    // A short `Retry-After` is waited out in this request when its deadline allows, so a
    // throttled first create does not cost the capture a whole poll period.
    if let Err(e) = &created
        && let Some(wait) = inline_wait(ctx, e)
        && ctx.world.clock.sleep(wait)
    {
        created = ctx.azure.create_capture(&watcher, &rec.name, &p);
    }
    let now = ctx.now();
    match created {
        Ok(created) => adopt(rec, now, created.storage_path),
        Err(e) => {
            if matches!(e, AzureError::NotFound { .. }) {
                // The cached watcher may be gone: look it up again next time.
                if let Some(location) = rec.location.clone() {
                    ctx.azure.forget_watcher(&subscription, &location);
                }
                rec.watcher = None;
                rec.push_error(format!("creating the capture: {}", e.summary()));
                if rec.attempts < ctx.cfg.max_attempts {
                    rec.next_check_at = Some(now + backoff(rec.attempts, None));
                } else {
                    rec.finish(State::Failed, now);
                }
                return;
            }
            if e.is_retryable() && rec.attempts >= ctx.cfg.max_attempts {
                // The last PUT may have created it (a time-out, a lost answer): never leave a
                // capture untracked — look it up by name from now on instead of giving up.
                rec.push_error(format!("creating the capture: {}", e.summary()));
                rec.create_unknown = true;
                rec.next_check_at = Some(now + backoff(rec.attempts, e.retry_after()));
                return;
            }
            on_error(ctx, rec, "creating the capture", &e, true)
        }
    }
}

/// Read the final file location, then mark the record succeeded — or failed, when the capture
/// resource itself says its provisioning failed (Azure shows a capture in `Error` that way).
fn succeed(ctx: &Ctx, rec: &mut CaptureRecord, watcher: &ResourceId) {
    match ctx.azure.get_capture(watcher, &rec.name) {
        Ok(info) => {
            if info.storage_path.is_some() {
                rec.storage_path = info.storage_path.clone();
            }
            if info.file_path.is_some() {
                rec.file_path = info.file_path.clone();
            }
            if info.provisioning_failed() {
                let why = info.error.as_deref().unwrap_or("no detail");
                rec.push_error(format!("Azure reported the capture's provisioningState as Failed ({why})"));
                return rec.finish(State::Failed, ctx.now());
            }
        }
        // The capture stopped; not knowing the path is worth a line, not a failure.
        Err(e) => rec.push_error(format!("reading the capture's file location: {}", e.summary())),
    }
    rec.finish(State::Succeeded, ctx.now());
}

/// The status of a capture now, or that Azure is still working out the answer.
enum Check {
    Known(CaptureStatus),
    /// Asked; Azure answers later (wait at least this many seconds, when it said).
    Pending(Option<u64>),
}

/// Ask Azure for the capture's status: at a pending status operation when the record holds one
/// still valid and young enough, else (or when that operation ended) with one fresh
/// `queryStatus`. Leaves `rec.status_operation` as what to ask next time.
fn check_status(ctx: &Ctx, rec: &mut CaptureRecord, watcher: &ResourceId) -> Result<Check, AzureError> {
    let now = ctx.now();
    if let Some(pending) = rec.status_operation.take()
        && now.saturating_sub(pending.since()) < MAX_PENDING_STATUS_SECS
        // A stored URL that no longer validates (other configuration, tampering) is dropped.
        && let Some(operation) = pending.operation(&ctx.cfg.azure.arm_endpoint)
    {
        match ctx.azure.poll_status_operation(&operation, pending.kind()) {
            Ok(OperationPoll::Known(status)) => return Ok(Check::Known(status)),
            Ok(OperationPoll::Running { retry_after_secs }) => {
                rec.status_operation = Some(pending);
                return Ok(Check::Pending(retry_after_secs));
            }
            // Gone, failed or finished without the status: ask afresh below, once.
            Ok(OperationPoll::Done | OperationPoll::Ended { .. }) => {}
            // Throttled or unreachable: the operation may still answer later.
            Err(e) => {
                rec.status_operation = Some(pending);
                return Err(e);
            }
        }
    }
    match ctx.azure.query_status(watcher, &rec.name)? {
        StatusOutcome::Known(status) => Ok(Check::Known(status)),
        StatusOutcome::Pending { operation, kind, retry_after_secs } => {
            rec.status_operation = Some(PendingStatus::new(&operation, kind, now));
            Ok(Check::Pending(retry_after_secs))
        }
    }
}

/// When to ask a pending status operation again: no sooner than Azure's `Retry-After`.
fn pending_wait(retry_after: Option<u64>) -> i64 {
    let secs = retry_after.map_or(PENDING_STATUS_WAIT, |r| r.min(MAX_RETRY_AFTER_SECS) as i64);
    secs.max(1)
}

/// Check a running capture's status; stop it when it overstays its limit.
fn step_running(ctx: &Ctx, rec: &mut CaptureRecord) {
    let now = ctx.now();
    let Some(watcher) = rec.watcher.as_deref().and_then(|w| ResourceId::parse(w).ok()) else {
        rec.push_error("no Network Watcher recorded for a running capture");
        return rec.finish(State::Failed, now);
    };
    let started = rec.started_at.unwrap_or(rec.created_at);
    let deadline = started + i64::from(rec.spec.time_limit_seconds);
    let watchdog = deadline + i64::from(ctx.cfg.capture_grace_seconds);
    // Past this, a capture Azure keeps failing to report on is given up, so it cannot hold
    // the VM and an active slot forever.
    let abandon = watchdog + i64::from(ctx.cfg.capture_grace_seconds).max(ABANDON_AFTER);
    let status = match check_status(ctx, rec, &watcher) {
        Ok(Check::Known(s)) => s,
        // Not an error: Azure is working out the answer; ask it again when it said.
        Ok(Check::Pending(retry_after)) => {
            if now >= abandon {
                rec.push_error("gave up: Azure could not report on the capture long after its time limit");
                return rec.finish(State::Failed, now);
            }
            rec.next_check_at = Some(now + pending_wait(retry_after));
            return;
        }
        Err(AzureError::NotFound { code, message }) => {
            if !confirm_missing(rec, now) {
                return;
            }
            rec.push_error(format!("the capture disappeared from Azure ({code}: {message})"));
            return rec.finish(State::Failed, now);
        }
        Err(e) if e.is_retryable() || matches!(e, AzureError::Config { .. }) => {
            rec.push_error(format!("checking status: {}", e.summary()));
            if now >= abandon {
                rec.push_error("gave up: Azure could not report on the capture long after its time limit");
                return rec.finish(State::Failed, now);
            }
            rec.next_check_at = Some(now + backoff(1, e.retry_after()));
            return;
        }
        Err(e) => {
            rec.push_error(format!("checking status: {}", e.summary()));
            return rec.finish(State::Failed, now);
        }
    };
    rec.missing_since = None;
    rec.azure_status = Some(status.status.clone());
    if let Some(raw) = &status.capture_start_time {
        // Kept readable for people; Azure's own text when it is in a shape we do not know.
        rec.capture_start_time = Some(match status.capture_start() {
            Some(t) => crate::domain::timefmt::rfc3339(t),
            None => crate::clients::azure::one_line(raw, 64),
        });
    }
    rec.seen_running |= matches!(status.status.as_str(), "Running" | "Stopped");
    if status.stop_reason.is_some() {
        rec.stop_reason = status.stop_reason.clone();
    }
    match status.status.as_str() {
        "Stopped" if status.errors.is_empty() => succeed(ctx, rec, &watcher),
        "Stopped" | "Error" => {
            let errs = if status.errors.is_empty() { "no detail".to_string() } else { status.errors.join(", ") };
            rec.push_error(format!("Azure reported the capture as {} ({errs})", status.status));
            rec.finish(State::Failed, now);
        }
        _ if now >= watchdog => match ctx.azure.stop_capture(&watcher, &rec.name) {
            Ok(()) => {
                rec.stop_reason = Some("TimedOutByResponder".to_string());
                if rec.seen_running {
                    succeed(ctx, rec, &watcher);
                } else {
                    // Never ran: there is no file to point at.
                    rec.push_error(format!(
                        "the capture never started (Azure status {}); is the Network Watcher agent installed and running on the VM?",
                        status.status
                    ));
                    rec.finish(State::Failed, now);
                }
            }
            Err(e) => {
                rec.push_error(format!("stopping the overdue capture: {}", e.summary()));
                if now >= abandon {
                    rec.push_error("gave up: the overdue capture could not be stopped; stop it in the portal");
                    rec.finish(State::Failed, now);
                } else {
                    rec.next_check_at = Some(now + backoff(1, e.retry_after()));
                }
            }
        },
        // Still going: look again soon, and no later than the moment it should stop.
        _ => {
            let next = if now < deadline {
                (now + CHECK_INTERVAL).min(deadline)
            } else {
                (now + CHECK_INTERVAL).min(watchdog)
            };
            rec.next_check_at = Some(next.max(now + 1));
        }
    }
}

/// Notify and clean up a finished record; `next_check_at` becomes `None` when all is done.
fn step_terminal(ctx: &Ctx, rec: &mut CaptureRecord) {
    let now = ctx.now();
    let mut pending = false;
    // When to look at the notification settings again, if they hold a notification back.
    let mut recheck_at = None;
    if let Some(why) = ctx.cfg.notify.skip_reason()
        && !rec.notified
    {
        // A wrong notification setting: say so on the record instead of sending, and stay due
        // so that the notification goes out once the setting is fixed. Not past the retention:
        // a record nobody fixed the settings for is then removed like any other.
        rec.notify_error = Some(why);
        if rec.finished_at.is_none_or(|f| now < f.saturating_add(retention(ctx.cfg))) {
            recheck_at = Some(now + NOTIFY_RECHECK_SECS);
        }
    } else if let Some(target) = ctx.cfg.notify.target()
        && !rec.notified
        && rec.notify_attempts < ctx.cfg.max_attempts
    {
        rec.notify_attempts += 1;
        match notify::deliver(ctx.world.http, &target.url, rec, target.format) {
            Ok(()) => {
                rec.notified = true;
                rec.notify_error = None;
            }
            Err(e) => {
                rec.notify_error = Some(if rec.notify_attempts >= ctx.cfg.max_attempts {
                    format!("{e}; gave up after {} attempts", rec.notify_attempts)
                } else {
                    e.to_string()
                });
                pending = rec.notify_attempts < ctx.cfg.max_attempts;
            }
        }
    }
    if ctx.cfg.delete_finished_captures
        && !rec.azure_deleted
        && rec.started_at.is_some()
        && rec.cleanup_attempts < ctx.cfg.max_attempts
        && let Some(watcher) = rec.watcher.as_deref().and_then(|w| ResourceId::parse(w).ok())
    {
        rec.cleanup_attempts += 1;
        match ctx.azure.delete_capture(&watcher, &rec.name) {
            Ok(()) => rec.azure_deleted = true,
            Err(e) => {
                rec.push_error(format!("deleting the finished capture resource: {}", e.summary()));
                // Retried on later polls, but not forever: the .cap file is safe either way.
                pending |= e.is_retryable() && rec.cleanup_attempts < ctx.cfg.max_attempts;
            }
        }
    }
    // Back off by whichever of the two has been tried more (a failing DELETE must slow down even
    // when no notification is being retried).
    let tries = rec.notify_attempts.max(rec.cleanup_attempts).max(1);
    let retry_at = pending.then(|| now + backoff(tries, None));
    // Once more after the store settled, for alerts attached just before the finish.
    // (A skipped record was never active: nothing was attached to it.)
    let settled_at = rec
        .finished_at
        .filter(|_| rec.state != State::Skipped)
        .map(|f| f.saturating_add(STORE_SETTLE_SECS))
        .filter(|t| *t > now);
    // The earliest: a clean-up retry soon, the settings looked at again later.
    rec.next_check_at = [retry_at, recheck_at, settled_at].into_iter().flatten().min();
}

/// One step of the state machine. A record that becomes terminal is notified in the same step.
pub fn step(ctx: &Ctx, rec: &mut CaptureRecord) {
    // Notification settings with problems never stop a capture; the record says why none is sent.
    if let Some(note) = ctx.cfg.notify.problem_note()
        && !rec.errors.contains(&note)
    {
        rec.push_error(note);
    }
    match rec.state {
        State::Queued => step_queued(ctx, rec),
        State::Running => step_running(ctx, rec),
        _ => {}
    }
    if rec.state.is_terminal() && rec.next_check_at.is_some() {
        // Issue 10: the file's summary and download link go into the notification; a file not
        // readable yet delays it (a bounded number of checks), nothing else holds it back.
        if crate::usecases::capture_file::prepare(ctx, rec) == crate::usecases::capture_file::Prepared::Ready {
            step_terminal(ctx, rec);
        }
    }
    rec.updated_at = ctx.now();
}

/// Is the record due at `now`?
fn is_due(rec: &CaptureRecord, now: UnixSeconds) -> bool {
    rec.next_check_at.is_some_and(|t| t <= now)
}

/// Copy into the record the alerts accepted into it that it does not list yet (a coalescing
/// request writes only the fact; a concurrent record write may have lost an id). Reads only the
/// facts not seen before. `true` when the record changed.
fn reconcile_alerts(ctx: &Ctx, rec: &mut CaptureRecord, listing: &Listing) -> Result<bool, StoreError> {
    let mut changed = false;
    let unseen: Vec<String> =
        listing.facts_of(&rec.id).filter(|d| !rec.seen_facts.iter().any(|s| s == d)).map(str::to_string).collect();
    for d in unseen {
        if let Some(fact) = facts::load(ctx.world.kv, &rec.id, &d)? {
            rec.attach_alert(&fact.alert_id);
        }
        rec.seen_facts.push(d);
        changed = true;
    }
    Ok(changed)
}

/// Read record `id` (one listing, one read), copy in the alerts attached to it, advance it if
/// it is due, and store the result. `None`: no such record.
pub fn advance_record(ctx: &Ctx, id: &str) -> Result<Option<CaptureRecord>, StoreError> {
    let listing = Listing::load(ctx.world.kv)?;
    let Some((mut rec, place)) = records::load(ctx.world.kv, id, Some(&listing))? else {
        return Ok(None);
    };
    // Alerts attached since the last check show at once (an active record only: a finished one
    // was written once, with what it had).
    let mut changed = place == Place::Active && reconcile_alerts(ctx, &mut rec, &listing)?;
    if is_due(&rec, ctx.now()) && ctx.now() < ctx.deadline {
        step(ctx, &mut rec);
        changed = true;
    }
    if changed {
        records::save(ctx.world.kv, &rec, place)?;
    }
    Ok(Some(rec))
}

/// What a poll did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollReport {
    /// Records advanced.
    pub advanced: usize,
    /// Their ids, for the log line.
    pub advanced_ids: Vec<String>,
    /// Records still due afterwards.
    pub due: usize,
    /// The earliest future check.
    pub next_check_at: Option<UnixSeconds>,
}

/// One poll: list the store (an idle store costs this one operation), advance up to
/// `poll_batch` due records, copy accepted alerts into their records, and delete what the
/// bounds say must go.
pub fn advance_due(ctx: &Ctx) -> Result<PollReport, StoreError> {
    let kv = ctx.world.kv;
    let listing = Listing::load(kv)?;
    let mut report = PollReport { advanced: 0, advanced_ids: Vec::new(), due: 0, next_check_at: None };
    // Every record that may need work: the active ones and the finished ones with work left,
    // oldest window first.
    enum Work {
        Active(records::ActKey),
        Finished(UnixSeconds),
    }
    let mut work: Vec<(String, Work)> = listing
        .active
        .iter()
        .map(|a| (a.name.clone(), Work::Active(a.clone())))
        .chain(listing.due.iter().filter_map(|n| Some((n.clone(), Work::Finished(listing.finished_at(n)?)))))
        .collect();
    work.sort_by_key(|(n, _)| (store::name_time(n), n.clone()));
    for (name, item) in work {
        let act = match &item {
            Work::Active(a) => Some(a),
            Work::Finished(_) => None,
        };
        let loaded = match &item {
            Work::Active(a) => records::load_active(kv, a).map(|r| r.map(|r| (r, Place::Active))),
            Work::Finished(t) => {
                store::read(kv, &records::cap_key(&name, *t)).map(|r| r.map(|r| (r, Place::Finished { due: true })))
            }
        };
        let (mut rec, place) = match loaded {
            Ok(Some(found)) => found,
            Ok(None) => continue,
            // One unreadable record must not stop every poll: set it aside, go on.
            Err(StoreError::Corrupt(_)) => {
                if let Some(a) = &act {
                    let _ = kv.delete(&a.key());
                } else {
                    let _ = kv.delete(&records::due_key(&name));
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut changed = reconcile_alerts(ctx, &mut rec, &listing)?;
        let now = ctx.now();
        if is_due(&rec, now) && report.advanced < ctx.cfg.poll_batch as usize && now < ctx.deadline {
            step(ctx, &mut rec);
            report.advanced += 1;
            report.advanced_ids.push(rec.id.clone());
            changed = true;
        }
        if changed {
            records::save(kv, &rec, place)?;
        } else if place == (Place::Finished { due: true }) && rec.next_check_at.is_none() {
            // A marker left by a duplicate record (now deleted) of a record with no work left.
            records::clear_due(kv, &rec.id)?;
        }
        match rec.next_check_at {
            Some(t) if t <= ctx.now() => report.due += 1,
            Some(t) => report.next_check_at = Some(report.next_check_at.map_or(t, |n| n.min(t))),
            None => {}
        }
    }
    let shadowed = reconcile_shadowed(ctx, &listing);
    // Left-over keys still to check against Azure are work due now: the next poll retries.
    report.due += listing.stale_active.len() - shadowed.len();
    housekeeping(ctx, &listing, &shadowed);
    Ok(report)
}

/// Most left-over `act` keys a request checks against Azure (each costs a call or three).
pub const MAX_SHADOWED_CHECKS_PER_REQUEST: usize = 20;

/// The left-over `act` keys (shadowed by a `cap` record of the same name) that may be deleted.
///
/// One written before the record finished is simply left over. One written at or after the
/// finish came from a request that stepped an old copy of the record (a store showing writes
/// late): it may have `PUT` the capture again after it was deleted. So Azure is asked first;
/// a capture found under the name is stopped and, with `delete_finished_captures`, deleted
/// before the key goes. Nothing Azure runs is left untracked. Failures leave the key for the
/// next poll.
fn reconcile_shadowed(ctx: &Ctx, listing: &Listing) -> Vec<records::ActKey> {
    let kv = ctx.world.kv;
    let mut droppable = Vec::new();
    let mut checks = 0usize;
    // Requests that overlap see the same keys: each starts at its own place in the list, so
    // they do not all check the same few.
    let n = listing.stale_active.len();
    let start = if n == 0 {
        0
    } else {
        store::hash16(&ctx.writer).bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize)) % n
    };
    for act in listing.stale_active.iter().cycle().skip(start).take(n) {
        let finished_at = listing.finished_at(&act.name).unwrap_or(UnixSeconds::MAX);
        let rec = match records::load_active(kv, act) {
            Ok(Some(rec)) => rec,
            // Gone already, or unreadable: nothing to follow under it.
            Ok(None) | Err(StoreError::Corrupt(_)) => {
                droppable.push(act.clone());
                continue;
            }
            Err(_) => continue,
        };
        let may_exist = rec.started_at.is_some() || rec.attempts > 0 || rec.create_unknown;
        let watcher = rec.watcher.as_deref().and_then(|w| ResourceId::parse(w).ok());
        let (true, Some(watcher)) = (rec.updated_at >= finished_at && may_exist, watcher) else {
            droppable.push(act.clone());
            continue;
        };
        if checks >= MAX_SHADOWED_CHECKS_PER_REQUEST || ctx.now() >= ctx.deadline {
            continue;
        }
        checks += 1;
        let cleaned = match ctx.azure.get_capture(&watcher, &rec.name) {
            Err(AzureError::NotFound { .. }) => true,
            Err(_) => false,
            Ok(_) => {
                let stopped = match ctx.azure.stop_capture(&watcher, &rec.name) {
                    Ok(()) | Err(AzureError::NotFound { .. }) => true,
                    Err(_) => false,
                };
                stopped
                    && (!ctx.cfg.delete_finished_captures
                        || matches!(
                            ctx.azure.delete_capture(&watcher, &rec.name),
                            Ok(()) | Err(AzureError::NotFound { .. })
                        ))
            }
        };
        if cleaned {
            droppable.push(act.clone());
        }
    }
    droppable
}

/// Delete what the bounds say must go, from the listing alone (failures are retried by the
/// next poll): left-over `act` keys of finished captures, finished records beyond
/// `max_records` (oldest first, those with work left last) or past the retention, and facts and
/// claims of captures past the retention. Retention counts from the capture's window.
fn housekeeping(ctx: &Ctx, listing: &Listing, shadowed: &[records::ActKey]) {
    let kv = ctx.world.kv;
    let now = ctx.now();
    let horizon = now - retention(ctx.cfg);
    let old = |name: &str| store::name_time(name).is_none_or(|t| t < horizon);
    let mut deletes = 0usize;
    let mut del = |key: String| {
        if deletes < MAX_DELETES_PER_REQUEST {
            deletes += 1;
            let _ = kv.delete(&key);
        }
    };
    for a in shadowed {
        del(a.key());
    }
    for (name, finished_at) in &listing.duplicate_finished {
        del(records::cap_key(name, *finished_at));
    }
    let mut finished: Vec<&(String, UnixSeconds)> = listing.finished.iter().collect();
    finished.sort_by_key(|(n, t)| (listing.due.contains(n), *t, n.clone()));
    let excess = finished.len().saturating_sub(ctx.cfg.max_records as usize);
    let mut gone: Vec<&str> = Vec::new();
    for (i, (name, finished_at)) in finished.iter().enumerate() {
        let due = listing.due.contains(name);
        let expired = *finished_at < horizon && !due;
        if i < excess || expired {
            del(records::cap_key(name, *finished_at));
            if due {
                del(records::due_key(name));
            }
            if expired {
                gone.push(name);
            }
        }
    }
    // Facts go with their capture at the retention; the facts of a capture evicted earlier
    // (by `max_records`) stay, so a late redelivery is still recognised, until their window
    // is past the retention.
    for (name, digest) in &listing.facts {
        let orphan = !listing.knows(name) && old(name);
        if gone.contains(&name.as_str()) || orphan {
            del(facts::fact_key(name, digest));
        }
    }
    for name in &listing.claims {
        if old(name) && !listing.active.iter().any(|a| a.name == *name) {
            del(records::claim_key(name));
        }
    }
}

/// The retention horizon in seconds.
pub fn retention(cfg: &Config) -> i64 {
    i64::from(cfg.retention_hours) * 3600
}
