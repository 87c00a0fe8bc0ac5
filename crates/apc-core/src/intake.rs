//! What `POST /alerts` does with a parsed alert (SPEC §2, §5): per target, decide
//! duplicate / coalesce / skip / start, record it, and try the create at once.
//!
//! **The index decides.** Every decision that must be made once — "is this (alert, VM) new?",
//! "is a capture already running on this VM?", "is the active limit reached?" — is taken in a
//! single compare-and-swap on the index key, which exists after the first write and is therefore
//! always swapped against a present value. That matters on Spin's SQLite store, whose swap
//! against an *absent* value is an unconditional upsert: two requests creating the same new key
//! would both "win". Records are then written by the request that won their index entry.
//!
//! A failure after the index entry is written and before the record is leaves an entry without
//! a record: a redelivered alert finds the entry and writes the missing record ("repair"), and
//! a poll drops such an entry once it is older than [`ORPHAN_GRACE`] so the VM is not held.

use crate::advance::{self, Ctx};
use crate::alert::Alert;
use crate::policy;
use crate::ports::UnixSeconds;
use crate::record::{CaptureRecord, State};
use crate::resource_id::Target;
use crate::store::{self, Change, Index, IndexEntry, StoreError, VmState};

/// How old an index entry without a record must be before a poll drops it.
pub const ORPHAN_GRACE: i64 = 120;
/// Index decisions tried per target before answering `503` (Azure then retries).
const DECIDE_ROUNDS: usize = 64;

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
        location: alert.region.clone(),
        warnings,
        alert_ids: vec![alert.identity()],
        alert_rule: alert.rule.clone(),
        ..CaptureRecord::queued(name, target.id_string(), target.key(), spec, now)
    }
}

fn read_record(ctx: &Ctx, id: &str) -> Result<Option<CaptureRecord>, StoreError> {
    store::read(ctx.world.kv, &store::record_key(id))
}

fn write_record(ctx: &Ctx, rec: &CaptureRecord) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(rec).map_err(|_| StoreError::Corrupt(rec.id.clone()))?;
    ctx.world.kv.set(&store::record_key(&rec.id), &bytes)?;
    Ok(())
}

/// Attach the alert to an active record: the record, and whether this call attached it (`false`:
/// it was attached already). `None` if the record is gone or no longer active.
fn coalesce(ctx: &Ctx, id: &str, identity: &str) -> Result<Option<(CaptureRecord, bool)>, StoreError> {
    let now = ctx.now();
    let mut still_active = false;
    let mut attached = false;
    let rec = store::update::<CaptureRecord, _>(ctx.world.kv, &store::record_key(id), |cur| {
        still_active = false;
        match cur {
            Some(mut r) if r.state.is_active() => {
                still_active = true;
                attached = r.attach_alert(identity);
                if attached {
                    r.updated_at = now;
                    Change::Put(r)
                } else {
                    Change::Keep
                }
            }
            _ => Change::Keep,
        }
    })?;
    Ok(if still_active { rec.map(|r| (r, attached)) } else { None })
}

/// Remember the alert (and the newest capture and region) on the VM's key.
fn note_on_vm(ctx: &Ctx, rec: &CaptureRecord, digest: &str, latest: bool) -> Result<(), StoreError> {
    store::update::<VmState, _>(ctx.world.kv, &store::vm_key(&rec.vm_key), |vm| {
        let mut vm = vm.unwrap_or_default();
        let before = vm.clone();
        vm.remember(digest.to_string());
        // A coalescing request may create the key first: `latest` must still name a record,
        // or eviction would never delete the key.
        if latest || vm.latest.is_none() {
            vm.latest = Some(rec.id.clone());
        }
        if vm.location.is_none() {
            vm.location = rec.location.clone();
        }
        if vm == before { Change::Keep } else { Change::Put(vm) }
    })?;
    Ok(())
}

/// The decision taken atomically on the index.
enum IndexDecision {
    /// An entry for this (alert, VM) exists.
    Exists(IndexEntry),
    /// Another capture is active on the same machine(s).
    ActiveOnVm(IndexEntry),
    /// Entered as a new active capture.
    Entered,
    /// Entered as skipped: the limit is reached.
    Limit,
    /// There is no index yet: it must be created first ([`store::ensure_index`]).
    NoIndex,
}

/// An entry a poll marked as never recorded (see `advance::advance_due`): it holds nothing.
fn is_orphan_marker(e: &IndexEntry) -> bool {
    e.vm_key.is_empty()
}

fn decide(ctx: &Ctx, rec: &CaptureRecord) -> Result<IndexDecision, StoreError> {
    let now = ctx.now();
    let mine = IndexEntry::of(rec);
    let max = ctx.cfg.max_active_captures as usize;
    let mut decision = IndexDecision::Entered;
    let mut evicted = Vec::new();
    store::update::<Index, _>(ctx.world.kv, store::INDEX_KEY, |cur| {
        evicted.clear();
        let Some(mut index) = cur else {
            decision = IndexDecision::NoIndex;
            return Change::Keep;
        };
        // A marker left by a delivery that died before recording: this delivery starts over.
        index.entries.retain(|e| !(e.id == rec.id && is_orphan_marker(e)));
        if let Some(e) = index.entries.iter().find(|e| e.id == rec.id) {
            decision = IndexDecision::Exists(e.clone());
            return Change::Keep;
        }
        if let Some(e) = index.entries.iter().find(|e| e.state.is_active() && e.overlaps(&mine)) {
            decision = IndexDecision::ActiveOnVm(e.clone());
            return Change::Keep;
        }
        let mut entry = mine.clone();
        if index.active_count() >= max {
            entry.state = State::Skipped;
            entry.finished_at = Some(now);
            decision = IndexDecision::Limit;
        } else {
            decision = IndexDecision::Entered;
        }
        index.upsert(entry);
        index.writer.clone_from(&ctx.writer);
        // Leave one slot free: a new record exists for a moment before its entry is
        // committed elsewhere, and the key count must stay within its bound even then.
        let keep = (ctx.cfg.max_records as usize).saturating_sub(1);
        evicted = store::evict_to_purge(&mut index, now, keep, advance::retention(ctx.cfg));
        Change::Put(index)
    })?;
    store::purge(ctx.world.kv, &evicted)?;
    Ok(decision)
}

/// The record an index entry stands for, when the request that made the entry died before
/// writing it: written now, unless someone else wrote it meanwhile. Its state follows the
/// entry (a `skipped` entry stays skipped).
fn repair(ctx: &Ctx, rec: &CaptureRecord, entry: &IndexEntry, digest: &str) -> Result<CaptureRecord, StoreError> {
    let mut repaired = rec.clone();
    if entry.state == State::Skipped {
        skip_for_limit(ctx, &mut repaired);
    }
    let bytes = serde_json::to_vec(&repaired).map_err(|_| StoreError::Corrupt(rec.id.clone()))?;
    if ctx.world.kv.compare_and_swap(&store::record_key(&rec.id), None, &bytes)? {
        let _ = note_on_vm(ctx, &repaired, digest, true);
        return Ok(repaired);
    }
    Ok(read_record(ctx, &rec.id)?.unwrap_or(repaired))
}

/// Turn a fresh record into one skipped because of the active-capture limit.
fn skip_for_limit(ctx: &Ctx, rec: &mut CaptureRecord) {
    rec.state = State::Skipped;
    rec.skip_reason = Some("limit".to_string());
    rec.push_error(format!(
        "max_active_captures ({}) captures were already queued or running",
        ctx.cfg.max_active_captures
    ));
    rec.finished_at = Some(rec.created_at);
}

/// An entry says a capture is active on the VM, but coalescing found its record finished or
/// missing: bring the entry up to date (or drop it once clearly orphaned) before deciding again.
fn refresh_stale_entry(ctx: &Ctx, entry: &IndexEntry) -> Result<(), StoreError> {
    match read_record(ctx, &entry.id)? {
        Some(r) if r.state.is_terminal() => {
            store::commit_index(
                ctx.world.kv,
                &[IndexEntry::of(&r)],
                ctx.now(),
                ctx.cfg.max_records as usize,
                advance::retention(ctx.cfg),
            )?;
        }
        None if entry.created_at + ORPHAN_GRACE <= ctx.now() => drop_entry(ctx, &entry.id)?,
        // Active, or still being written by the request that won it a moment ago.
        _ => {}
    }
    Ok(())
}

/// Was this alert already attached to a capture of this VM (coalesced earlier)?
fn coalesced_before(
    ctx: &Ctx,
    vm: &VmState,
    active: Option<&str>,
    identity: &str,
) -> Result<Option<CaptureRecord>, StoreError> {
    if !vm.recent_alerts.contains(&store::alert_digest(identity)) {
        return Ok(None);
    }
    for id in [active, vm.latest.as_deref()].into_iter().flatten() {
        if let Some(r) = read_record(ctx, id)?
            && r.alert_ids.iter().any(|a| a == identity)
        {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

/// Handle one target of a fired alert.
pub fn handle_target(ctx: &Ctx, alert: &Alert, target: &Target) -> Result<TargetOutcome, StoreError> {
    let now = ctx.now();
    let identity = alert.identity();
    let digest = store::alert_digest(&identity);
    let mut rec = new_record(ctx, alert, target, now);
    let vm = store::read::<VmState>(ctx.world.kv, &store::vm_key(&rec.vm_key))?.unwrap_or_default();
    if rec.location.is_none() {
        rec.location = vm.location.clone();
    }
    // Several rounds: the capture we coalesce into may finish in between, or its record may
    // not be written yet by the request that won its index entry a moment ago.
    for _ in 0..DECIDE_ROUNDS {
        match decide(ctx, &rec)? {
            IndexDecision::Exists(entry) => {
                let existing = match read_record(ctx, &rec.id)? {
                    Some(r) => r,
                    // Never recorded (the first delivery died, or is writing it right now):
                    // write it, so an acknowledged alert is never lost.
                    None => repair(ctx, &rec, &entry, &digest)?,
                };
                return Ok(TargetOutcome { decision: Decision::Duplicate, record: existing });
            }
            IndexDecision::ActiveOnVm(other) => {
                if let Some(r) = coalesced_before(ctx, &vm, Some(&other.id), &identity)? {
                    return Ok(TargetOutcome { decision: Decision::Duplicate, record: r });
                }
                if let Some((r, attached)) = coalesce(ctx, &other.id, &identity)? {
                    let _ = note_on_vm(ctx, &r, &digest, false);
                    let decision = if attached { Decision::Coalesced } else { Decision::Duplicate };
                    return Ok(TargetOutcome { decision, record: r });
                }
                refresh_stale_entry(ctx, &other)?;
            }
            IndexDecision::Entered => {
                if let Some(r) = coalesced_before(ctx, &vm, None, &identity)? {
                    // Coalesced earlier into a capture that has finished since: undo the entry.
                    drop_entry(ctx, &rec.id)?;
                    return Ok(TargetOutcome { decision: Decision::Duplicate, record: r });
                }
                record_entered(ctx, &rec)?;
                // The VM key is a cache: failing to update it loses nothing.
                let _ = note_on_vm(ctx, &rec, &digest, true);
                return Ok(TargetOutcome { decision: Decision::Started, record: rec });
            }
            IndexDecision::NoIndex => store::ensure_index(ctx.world.kv)?,
            IndexDecision::Limit => {
                skip_for_limit(ctx, &mut rec);
                record_entered(ctx, &rec)?;
                let _ = note_on_vm(ctx, &rec, &digest, true);
                return Ok(TargetOutcome { decision: Decision::SkippedLimit, record: rec });
            }
        }
    }
    Err(StoreError::Contention(store::INDEX_KEY.to_string()))
}

/// Write the record of an entry this request just made. If that fails, take the entry back
/// (best effort) so the redelivery Azure sends after our `503` starts cleanly; if even that
/// fails, the redelivery finds the entry and writes the record ([`repair`]).
fn record_entered(ctx: &Ctx, rec: &CaptureRecord) -> Result<(), StoreError> {
    if let Err(e) = write_record(ctx, rec) {
        let _ = drop_entry(ctx, &rec.id);
        return Err(e);
    }
    Ok(())
}

/// Remove an index entry that should not have been made.
fn drop_entry(ctx: &Ctx, id: &str) -> Result<(), StoreError> {
    store::update::<Index, _>(ctx.world.kv, store::INDEX_KEY, |cur| {
        let mut index = cur.unwrap_or_default();
        let before = index.entries.len();
        index.entries.retain(|e| e.id != id);
        if index.entries.len() == before { Change::Keep } else { Change::Put(index) }
    })?;
    Ok(())
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
