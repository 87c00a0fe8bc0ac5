//! Following captures across invocations (SPEC §7): the state machine.
//!
//! [`step`] is a pure-ish function of a record, the clock and the Azure client: it performs at
//! most the Azure calls one step needs and returns the new record. [`advance_due`] and
//! [`advance_one`] load records, run a step and write them back with compare-and-swap.

use crate::azure::{
    Azure, AzureError, CaptureParams, CaptureStatus, MAX_RETRY_AFTER_SECS, OperationPoll, StatusOutcome,
};
use crate::config::Config;
use crate::notify;
use crate::ports::{UnixSeconds, World};
use crate::record::{CaptureRecord, PendingStatus, State};
use crate::resource_id::{ResourceId, Target};
use crate::store::{self, Change, Index, IndexEntry, StoreError, VmState};

/// Everything a step needs.
pub struct Ctx<'a> {
    /// Configuration.
    pub cfg: &'a Config,
    /// Ports.
    pub world: World<'a>,
    /// The Azure client (its caches live in the KV store).
    pub azure: Azure<'a>,
    /// This request's id, stamped on the index versions it writes (see [`store::Index::writer`]).
    pub writer: String,
}

impl<'a> Ctx<'a> {
    /// A context over `world`.
    pub fn new(cfg: &'a Config, world: World<'a>) -> Self {
        Ctx { cfg, world, azure: Azure::new(&cfg.azure, world), writer: String::new() }
    }
    /// Now.
    pub fn now(&self) -> UnixSeconds {
        self.world.clock.now()
    }
}

/// How long one request may work on a record before another may take over (a request that
/// died mid-step). Longer than a step's worst case: four Azure calls at their time-outs.
pub const LEASE_SECS: i64 = 120;

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

/// Exponential back-off: 30 s, 60 s, 120 s … capped at an hour; `Retry-After` wins when longer.
pub fn backoff(attempts: u32, retry_after: Option<u64>) -> i64 {
    let exp = 30i64.saturating_mul(1i64 << attempts.saturating_sub(1).min(10)).min(3600);
    exp.max(retry_after.unwrap_or(0).min(3600) as i64)
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

/// Try (again) to create the capture in Azure.
fn step_queued(ctx: &Ctx, rec: &mut CaptureRecord, known_location: Option<String>) {
    let now = ctx.now();
    let Some(target) = target_of(rec) else {
        rec.push_error("the stored target id is not a VM or scale set");
        rec.finish(State::Failed, now);
        return;
    };
    rec.attempts += 1;
    let location = match rec.location.clone().or(known_location) {
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
                vm.location
            }
            Err(e) => return on_error(ctx, rec, "reading the VM", &e, true),
        },
    };
    rec.location = Some(location.clone());
    let sub = target.capture_target().subscription().to_string();
    let watcher = match ctx.azure.find_watcher(&sub, &location) {
        Ok(w) => w,
        Err(e) => return on_error(ctx, rec, "finding the Network Watcher", &e, true),
    };
    rec.watcher = Some(watcher.to_string());
    let p = match params(rec, target) {
        Ok(p) => p,
        Err(why) => {
            rec.push_error(format!("stored parameters are invalid: {why}"));
            return rec.finish(State::Failed, now);
        }
    };
    match ctx.azure.create_capture(&watcher, &rec.name, &p) {
        Ok(created) => {
            rec.state = State::Running;
            rec.started_at = Some(now);
            rec.azure_status = Some("NotStarted".to_string());
            if created.storage_path.is_some() {
                rec.storage_path = created.storage_path;
            }
            rec.next_check_at = Some(now + CHECK_INTERVAL.min(i64::from(rec.spec.time_limit_seconds)));
        }
        Err(e) => {
            if matches!(e, AzureError::NotFound { .. }) {
                // The cached watcher may be gone: look it up again next time.
                ctx.azure.forget_watcher(&sub, &location);
                rec.watcher = None;
                rec.push_error(format!("creating the capture: {}", e.summary()));
                if rec.attempts < ctx.cfg.max_attempts {
                    rec.next_check_at = Some(now + backoff(rec.attempts, None));
                } else {
                    rec.finish(State::Failed, now);
                }
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
    rec.azure_status = Some(status.status.clone());
    if let Some(raw) = &status.capture_start_time {
        // Kept readable for people; Azure's own text when it is in a shape we do not know.
        rec.capture_start_time = Some(match status.capture_start() {
            Some(t) => crate::timefmt::rfc3339(t),
            None => crate::azure::one_line(raw, 64),
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
    // The earlier of the two: a clean-up retry soon, the settings looked at again later.
    rec.next_check_at = match (retry_at, recheck_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
}

/// One step of the state machine. A record that becomes terminal is notified in the same step.
pub fn step(ctx: &Ctx, rec: &mut CaptureRecord, known_location: Option<String>) {
    // Notification settings with problems never stop a capture; the record says why none is sent.
    if let Some(note) = ctx.cfg.notify.problem_note()
        && !rec.errors.contains(&note)
    {
        rec.push_error(note);
    }
    match rec.state {
        State::Queued => step_queued(ctx, rec, known_location),
        State::Running => step_running(ctx, rec),
        _ => {}
    }
    if rec.state.is_terminal() && rec.next_check_at.is_some() {
        step_terminal(ctx, rec);
    }
    rec.updated_at = ctx.now();
}

/// Write an advanced record back. If another request changed it meanwhile: keep alerts it
/// attached, and give way when it advanced the record itself.
pub fn write_back(
    ctx: &Ctx,
    original: &CaptureRecord,
    advanced: &CaptureRecord,
) -> Result<Option<CaptureRecord>, StoreError> {
    store::update::<CaptureRecord, _>(ctx.world.kv, &store::record_key(&original.id), |cur| match cur {
        None => Change::Keep,
        Some(fresh) if fresh == *original => Change::Put(advanced.clone()),
        Some(fresh)
            if fresh.state == original.state
                && fresh.attempts == original.attempts
                && fresh.notify_attempts == original.notify_attempts =>
        {
            let mut merged = advanced.clone();
            for a in &fresh.alert_ids {
                merged.attach_alert(a);
            }
            merged.alert_ids_dropped = merged.alert_ids_dropped.max(fresh.alert_ids_dropped);
            Change::Put(merged)
        }
        Some(_) => Change::Keep,
    })
}

/// Remember the VM's region once a step learned it (saves the VM `GET` on the next alert).
/// The VM is released by the record's index entry turning terminal, not here.
pub fn remember_location(ctx: &Ctx, rec: &CaptureRecord) -> Result<(), StoreError> {
    let key = store::vm_key(&rec.vm_key);
    store::update::<VmState, _>(ctx.world.kv, &key, |vm| match vm {
        Some(mut vm) if rec.location.is_some() && vm.location != rec.location => {
            vm.location = rec.location.clone();
            Change::Put(vm)
        }
        _ => Change::Keep,
    })?;
    Ok(())
}

/// Advance one record by id if it is due (or `force`). Returns the record as stored, the
/// index entry to commit, and whether a step ran.
pub fn advance_one(ctx: &Ctx, id: &str, force: bool) -> Result<Option<(CaptureRecord, bool)>, StoreError> {
    let now = ctx.now();
    // Decide and take the lease on one read: a record that is due (or forced) and not held by
    // another request is leased, so concurrent requests (every webhook delivery also advances
    // what is due) do not repeat the same Azure calls and notifications.
    let mut leased = None;
    let current = store::update::<CaptureRecord, _>(ctx.world.kv, &store::record_key(id), |cur| {
        leased = None;
        match cur {
            Some(r)
                if (force || r.next_check_at.is_some_and(|t| t <= now)) && r.lease_until.is_none_or(|t| t <= now) =>
            {
                let mut l = r;
                l.lease_until = Some(now + LEASE_SECS);
                l.lease_holder.clone_from(&ctx.writer);
                leased = Some(l.clone());
                Change::Put(l)
            }
            _ => Change::Keep,
        }
    })?;
    let Some(leased) = leased else {
        return Ok(current.map(|r| (r, false)));
    };
    let known_location = if leased.state == State::Queued && leased.location.is_none() {
        store::read::<VmState>(ctx.world.kv, &store::vm_key(&leased.vm_key))?.and_then(|v| v.location)
    } else {
        None
    };
    let mut rec = leased.clone();
    step(ctx, &mut rec, known_location);
    rec.lease_until = None;
    rec.lease_holder.clear();
    let stored = write_back(ctx, &leased, &rec)?.unwrap_or(rec);
    if stored.location != leased.location {
        remember_location(ctx, &stored)?;
    }
    Ok(Some((stored, true)))
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

/// Advance up to `poll_batch` due records (except `skip`), then commit the index once.
pub fn advance_due(ctx: &Ctx, skip: &[String]) -> Result<PollReport, StoreError> {
    let now = ctx.now();
    let index = Index::load(ctx.world.kv)?;
    let mut changed: Vec<IndexEntry> = Vec::new();
    let mut advanced = 0;
    let mut advanced_ids = Vec::new();
    for entry in index.due_entries(now, ctx.cfg.poll_batch as usize + skip.len()) {
        if skip.contains(&entry.id) || advanced >= ctx.cfg.poll_batch as usize {
            continue;
        }
        let outcome = match advance_one(ctx, &entry.id, false) {
            // One unreadable record must not stop every poll: retire its entry and go on.
            Err(StoreError::Corrupt(_)) => {
                changed.push(IndexEntry {
                    state: State::Failed,
                    due_at: None,
                    finished_at: Some(now),
                    ..entry.clone()
                });
                continue;
            }
            other => other?,
        };
        match outcome {
            Some((rec, ran)) => {
                if ran {
                    advanced += 1;
                    advanced_ids.push(rec.id.clone());
                }
                changed.push(IndexEntry::of(&rec));
            }
            // Indexed but no record: a delivery died between the two writes. Once it is
            // clearly not in flight, drop the entry so the VM is not held (retention removes it).
            None if entry.created_at + crate::intake::ORPHAN_GRACE <= now => changed.push(IndexEntry {
                state: State::Failed,
                due_at: None,
                finished_at: Some(0),
                vm_key: String::new(),
                group: String::new(),
                ..entry.clone()
            }),
            None => {}
        }
    }
    let index = if changed.is_empty() {
        index
    } else {
        store::commit_index(ctx.world.kv, &changed, now, ctx.cfg.max_records as usize, retention(ctx.cfg))?
    };
    let (due, next_check_at) = index.due_summary(ctx.now());
    Ok(PollReport { advanced, advanced_ids, due, next_check_at })
}

/// The retention horizon in seconds.
pub fn retention(cfg: &Config) -> i64 {
    i64::from(cfg.retention_hours) * 3600
}
