//! What `POST /alerts` does with a parsed alert (SPEC §2, §5): per target, decide
//! duplicate / coalesce / skip / start, record it, and try the create at once.
//!
//! Order of writes, chosen so that a failure at any point leaves nothing half done for a
//! retried delivery: (1) create the record under its deterministic name with
//! compare-and-swap (a second writer sees it and answers "duplicate"); (2) claim the VM;
//! (3) add it to the index, where the active-capture limit is checked atomically. A redelivery
//! that finds the record repeats (2) and (3), which are idempotent.

use crate::advance::{self, Ctx};
use crate::alert::Alert;
use crate::policy;
use crate::ports::UnixSeconds;
use crate::record::{CaptureRecord, State};
use crate::resource_id::Target;
use crate::store::{self, Change, Index, IndexEntry, StoreError, VmState};

/// What happened to one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A new capture was recorded (and perhaps already created in Azure).
    Started,
    /// The same alert was seen before; nothing new.
    Duplicate,
    /// Attached to the capture already running for this VM.
    Coalesced,
    /// Recorded as skipped: too many active captures.
    SkippedLimit,
}

/// The outcome for one target.
#[derive(Debug, Clone)]
pub struct TargetOutcome {
    /// What was decided.
    pub decision: Decision,
    /// The record now holding this alert for this target.
    pub record: CaptureRecord,
}

/// A fresh record for `target`.
fn new_record(ctx: &Ctx, alert: &Alert, target: &Target, now: UnixSeconds) -> CaptureRecord {
    let name = policy::capture_name(&ctx.cfg.capture.name_prefix, target, alert.fired_at, &alert.identity());
    let (spec, warnings) = policy::capture_spec(&ctx.cfg.capture, &alert.custom_properties);
    CaptureRecord {
        id: name.clone(),
        name,
        vm: target.id_string(),
        vm_key: target.key(),
        watcher: None,
        location: alert.region.clone(),
        state: State::Queued,
        azure_status: None,
        stop_reason: None,
        errors: Vec::new(),
        warnings,
        alert_ids: vec![alert.identity()],
        alert_ids_dropped: 0,
        alert_rule: alert.rule.clone(),
        skip_reason: None,
        spec,
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
        next_check_at: Some(now),
        attempts: 0,
        storage_path: None,
        file_path: None,
        notified: false,
        notify_attempts: 0,
        notify_error: None,
        azure_deleted: false,
    }
}

fn read_record(ctx: &Ctx, id: &str) -> Result<Option<CaptureRecord>, StoreError> {
    store::read(ctx.world.kv, &store::record_key(id))
}

/// Attach the alert to an active record; `None` if the record is gone or no longer active.
fn coalesce(ctx: &Ctx, id: &str, identity: &str) -> Result<Option<CaptureRecord>, StoreError> {
    let now = ctx.now();
    let mut still_active = false;
    let rec = store::update::<CaptureRecord, _>(ctx.world.kv, &store::record_key(id), |cur| match cur {
        Some(mut r) if r.state.is_active() => {
            still_active = true;
            if r.attach_alert(identity) {
                r.updated_at = now;
                Change::Put(r)
            } else {
                Change::Keep
            }
        }
        _ => {
            still_active = false;
            Change::Keep
        }
    })?;
    Ok(if still_active { rec } else { None })
}

fn remember_alert(ctx: &Ctx, vm_key: &str, digest: &str) -> Result<(), StoreError> {
    store::update::<VmState, _>(ctx.world.kv, vm_key, |vm| {
        let mut vm = vm.unwrap_or_default();
        if vm.recent_alerts.iter().any(|d| d == digest) {
            return Change::Keep;
        }
        vm.remember(digest.to_string());
        Change::Put(vm)
    })?;
    Ok(())
}

/// Claim the VM for `rec`. Returns the id of another active capture holding it, if any.
fn claim_vm(ctx: &Ctx, rec: &CaptureRecord, digest: &str) -> Result<Option<String>, StoreError> {
    let key = store::vm_key(&rec.vm_key);
    let mut holder = None;
    store::update::<VmState, _>(ctx.world.kv, &key, |vm| {
        let mut vm = vm.unwrap_or_default();
        holder = None;
        if let Some(other) = vm.active.clone().filter(|a| *a != rec.id) {
            // A claim by a record that is gone or finished is stale and may be taken over.
            let other_active = matches!(read_record(ctx, &other), Ok(Some(r)) if r.state.is_active());
            if other_active {
                holder = Some(other);
                return Change::Keep;
            }
        }
        if vm.active.as_deref() == Some(rec.id.as_str()) && vm.recent_alerts.iter().any(|d| d == digest) {
            return Change::Keep;
        }
        vm.active = Some(rec.id.clone());
        vm.latest = Some(rec.id.clone());
        vm.remember(digest.to_string());
        if vm.location.is_none() {
            vm.location = rec.location.clone();
        }
        Change::Put(vm)
    })?;
    Ok(holder)
}

/// Add the record to the index; if it is a new active capture and the limit is reached, it is
/// entered as skipped instead. Returns the state it was entered with.
fn enter_in_index(ctx: &Ctx, rec: &CaptureRecord) -> Result<State, StoreError> {
    let now = ctx.now();
    let max = ctx.cfg.max_active_captures as usize;
    let mut entered = rec.state;
    let mut evicted = Vec::new();
    store::update::<Index, _>(ctx.world.kv, store::INDEX_KEY, |cur| {
        let mut index = cur.unwrap_or_default();
        if index.entries.iter().any(|e| e.id == rec.id) {
            entered = index.entries.iter().find(|e| e.id == rec.id).map_or(rec.state, |e| e.state);
            return Change::Keep;
        }
        let mut entry = IndexEntry::of(rec);
        if rec.state.is_active() && index.active_count() >= max {
            entry.state = State::Skipped;
            entry.finished_at = Some(now);
        }
        entered = entry.state;
        index.upsert(entry);
        // Leave one slot free: the next new record exists for a moment before it is indexed,
        // and the key count must stay within its bound even then.
        let keep = (ctx.cfg.max_records as usize).saturating_sub(1);
        evicted = store::evict(&mut index, now, keep, advance::retention(ctx.cfg));
        Change::Put(index)
    })?;
    store::purge(ctx.world.kv, &evicted)?;
    Ok(entered)
}

/// Handle one target of a fired alert.
pub fn handle_target(ctx: &Ctx, alert: &Alert, target: &Target) -> Result<TargetOutcome, StoreError> {
    let now = ctx.now();
    let identity = alert.identity();
    let digest = store::alert_digest(&identity);
    let fresh = new_record(ctx, alert, target, now);
    let vm_key = store::vm_key(&fresh.vm_key);

    // Same alert, same VM, seen before: answer as before (and finish what a failed first
    // delivery may have left undone).
    if let Some(existing) = read_record(ctx, &fresh.id)? {
        if existing.state.is_active() {
            claim_vm(ctx, &existing, &digest)?;
        }
        enter_in_index(ctx, &existing)?;
        return Ok(TargetOutcome { decision: Decision::Duplicate, record: existing });
    }
    let vm = store::read::<VmState>(ctx.world.kv, &vm_key)?.unwrap_or_default();
    // Seen before and attached to another capture (coalesced earlier).
    if vm.recent_alerts.contains(&digest) {
        for id in [vm.active.as_deref(), vm.latest.as_deref()].into_iter().flatten() {
            if let Some(r) = read_record(ctx, id)?
                && r.alert_ids.contains(&identity)
            {
                return Ok(TargetOutcome { decision: Decision::Duplicate, record: r });
            }
        }
    }
    // A capture is already running for this VM: attach to it.
    if let Some(active) = &vm.active
        && let Some(r) = coalesce(ctx, active, &identity)?
    {
        remember_alert(ctx, &vm_key, &digest)?;
        return Ok(TargetOutcome { decision: Decision::Coalesced, record: r });
    }
    let mut rec = fresh;
    if rec.location.is_none() {
        rec.location = vm.location.clone();
    }
    // (1) Record it; losing the race means the same alert is being handled right now.
    let bytes = serde_json::to_vec(&rec).map_err(|_| StoreError::Corrupt(rec.id.clone()))?;
    if !ctx.world.kv.compare_and_swap(&store::record_key(&rec.id), None, &bytes)? {
        let existing = read_record(ctx, &rec.id)?.unwrap_or(rec);
        return Ok(TargetOutcome { decision: Decision::Duplicate, record: existing });
    }
    // (2) Claim the VM; if another alert won it meanwhile, attach to that capture instead.
    if let Some(holder) = claim_vm(ctx, &rec, &digest)?
        && let Some(r) = coalesce(ctx, &holder, &identity)?
    {
        ctx.world.kv.delete(&store::record_key(&rec.id))?;
        return Ok(TargetOutcome { decision: Decision::Coalesced, record: r });
    }
    // (3) Index it, checking the active-capture limit atomically.
    if enter_in_index(ctx, &rec)? == State::Skipped {
        rec.state = State::Skipped;
        rec.skip_reason = Some("limit".to_string());
        rec.push_error(format!(
            "max_active_captures ({}) captures were already queued or running",
            ctx.cfg.max_active_captures
        ));
        rec.finished_at = Some(now);
        let original = read_record(ctx, &rec.id)?;
        if let Some(original) = original {
            advance::write_back(ctx, &original, &rec)?;
        }
        advance::release_vm(ctx, &rec)?;
        return Ok(TargetOutcome { decision: Decision::SkippedLimit, record: rec });
    }
    Ok(TargetOutcome { decision: Decision::Started, record: rec })
}

/// Handle every target, then take the first step of what was recorded (create in Azure,
/// or notify a skip) and commit the index once.
pub fn handle_alert(ctx: &Ctx, alert: &Alert, targets: &[Target]) -> Result<Vec<TargetOutcome>, StoreError> {
    let mut outcomes = Vec::with_capacity(targets.len());
    for t in targets {
        outcomes.push(handle_target(ctx, alert, t)?);
    }
    let mut changed = Vec::new();
    for o in &mut outcomes {
        if matches!(o.decision, Decision::Started | Decision::SkippedLimit)
            && let Some((rec, _)) = advance::advance_one(ctx, &o.record.id, false)?
        {
            changed.push(IndexEntry::of(&rec));
            o.record = rec;
        }
    }
    if !changed.is_empty() {
        store::commit_index(
            ctx.world.kv,
            &changed,
            ctx.now(),
            ctx.cfg.max_records as usize,
            advance::retention(ctx.cfg),
        )?;
    }
    Ok(outcomes)
}
