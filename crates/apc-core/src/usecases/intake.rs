//! What `POST /alerts` does with a parsed alert (SPEC §2, §5): per target, decide duplicate /
//! coalesce / skip / start from one listing of the store, record it, and create the capture.
//!
//! Nothing here is compare-and-swapped (docs/STATE.md). What keeps one alert from becoming two
//! Azure captures is the name: every delivery of an alert, and every alert for the same VM in
//! the same window, computes the same capture name, and a `PUT` that meets an existing name
//! reads that capture back. The store only remembers and hints:
//! - `v1:al:{name}:{digest}`: the alert was accepted (a redelivery is answered from it);
//! - `v1:act:{group}:{vm}:{name}`: a capture is active on that VM (coalesce, the active limit);
//! - `v1:claim:{name}`: which of several simultaneous deliveries `PUT`s (the others leave it).
//!
//! The record and the fact are written before the answer, so an acknowledged alert is never
//! lost; a request that dies before answering is redelivered by Azure.

use crate::clients::store::facts::{self, AlertFact, FactCapture};
use crate::clients::store::records::{self, ActKey, Place};
use crate::clients::store::{Listing, StoreError};
use crate::domain::alert::Alert;
use crate::domain::policy;
use crate::domain::record::{CaptureRecord, State};
use crate::domain::resource_id::Target;
use crate::ports::UnixSeconds;
use crate::usecases::poller::{self, Ctx};

/// How long a delivery that lost the create claim leaves its queued record before a poll
/// creates the capture (the claimer normally has by then).
pub const CLAIM_WAIT: i64 = 30;

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
    /// The capture now holding this alert for this target.
    pub capture: FactCapture,
    /// Its errors, when its record was at hand.
    pub errors: Vec<String>,
    /// Its warnings, when its record was at hand.
    pub warnings: Vec<String>,
}

impl TargetOutcome {
    fn of(decision: Decision, rec: &CaptureRecord) -> Self {
        TargetOutcome { decision, capture: summary(rec), errors: rec.errors.clone(), warnings: rec.warnings.clone() }
    }
}

fn summary(rec: &CaptureRecord) -> FactCapture {
    FactCapture { id: rec.id.clone(), vm: rec.vm.clone(), state: rec.state.as_str().to_string() }
}

/// A fresh record named `name` for `target`.
fn new_record(ctx: &Ctx, alert: &Alert, target: &Target, name: String, now: UnixSeconds) -> CaptureRecord {
    let (spec, warnings) = policy::capture_spec(&ctx.cfg.capture, &alert.custom_properties);
    CaptureRecord {
        location: alert.region.clone(),
        warnings,
        alert_ids: vec![alert.identity()],
        alert_rule: alert.rule.clone(),
        ..CaptureRecord::queued(name, target.id_string(), target.key(), spec, now)
    }
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
    rec.next_check_at = Some(rec.created_at);
}

/// Record that `alert` was accepted into `capture` (write-once).
fn accept(ctx: &Ctx, digest: &str, identity: &str, capture: FactCapture) -> Result<(), StoreError> {
    let fact = AlertFact { alert_id: identity.to_string(), capture, accepted_at: ctx.now() };
    facts::save(ctx.world.kv, digest, &fact)
}

/// Handle one target of a fired alert, against `listing` (kept up to date with this request's
/// own records, so several targets of one alert see each other).
pub fn handle_target(
    ctx: &Ctx,
    alert: &Alert,
    target: &Target,
    listing: &mut Listing,
) -> Result<TargetOutcome, StoreError> {
    let kv = ctx.world.kv;
    let now = ctx.now();
    let identity = alert.identity();
    let target_key = target.key();
    let digest = facts::digest(&identity, &target_key);

    // Seen before: answer as the first time (no call, no write).
    if let Some(name) = listing.fact_for(&digest).map(str::to_string)
        && let Some(fact) = facts::load(kv, &name, &digest)?
    {
        return Ok(TargetOutcome {
            decision: Decision::Duplicate,
            capture: fact.capture,
            errors: vec![],
            warnings: vec![],
        });
    }

    // A capture active on the same machine(s): attach to it.
    let mine = ActKey::of(&target_key, "");
    let mut finishing = Vec::new();
    for act in listing.active.iter().filter(|a| a.overlaps(&mine)) {
        match records::load_active(kv, act)? {
            // This very alert made it (its fact is not listed yet): a redelivery.
            Some(rec) if rec.state.is_active() && rec.alert_ids.contains(&identity) => {
                return Ok(TargetOutcome::of(Decision::Duplicate, &rec));
            }
            Some(mut rec) if rec.state.is_active() => {
                accept(ctx, &digest, &identity, summary(&rec))?;
                rec.attach_alert(&identity);
                return Ok(TargetOutcome::of(Decision::Coalesced, &rec));
            }
            // Finished (or finishing) since the listing: not a capture to join.
            _ => finishing.push(act.name.clone()),
        }
    }

    // The window's own name, unless the window's capture has already finished: then a name of
    // this alert's own, so a new alert after an early stop still gets a capture.
    let prefix = &ctx.cfg.capture.name_prefix;
    let window = ctx.cfg.coalesce_window_seconds;
    let window_name = policy::capture_name(prefix, target, alert.fired_at, window, None);
    let taken = listing.is_finished(&window_name) || finishing.contains(&window_name);
    let own_name = || policy::capture_name(prefix, target, alert.fired_at, window, Some(&identity));

    if listing.active.len() >= ctx.cfg.max_active_captures as usize {
        let mut rec = new_record(ctx, alert, target, own_name(), now);
        rec.seen_facts.push(digest.clone());
        skip_for_limit(ctx, &mut rec);
        poller::step(ctx, &mut rec);
        records::save(kv, &rec, Place::New)?;
        accept(ctx, &digest, &identity, summary(&rec))?;
        listing.finished.push((rec.id.clone(), now));
        return Ok(TargetOutcome::of(Decision::SkippedLimit, &rec));
    }

    let name = if taken { own_name() } else { window_name };
    let mut rec = new_record(ctx, alert, target, name, now);
    rec.seen_facts.push(digest.clone());
    // Several deliveries at once: each writes its id, reads the Azure cache, and reads the
    // claim back; only one that still sees its own id creates now. The claim is a hint: the
    // name keeps a second PUT harmless, and a lost claimer's record is created by a poll.
    // A claim already listed: another request is creating this very capture (or died doing so;
    // then the next poll creates it). No claim: write ours, and only a request that still sees
    // it after its other reads creates now.
    let claim = records::claim_key(&rec.id);
    let taken_by_other = listing.claims.contains(&rec.id);
    // A store that refuses this write would refuse the record too: answer 503 before any Azure
    // call, so no capture is made that nothing records.
    if !taken_by_other {
        kv.set(&claim, ctx.writer.as_bytes())?;
    }
    let claimed = !taken_by_other;
    ctx.azure.preload();
    let mine = claimed && kv.get(&claim).ok().flatten().is_none_or(|v| v == ctx.writer.as_bytes());
    if mine {
        poller::step(ctx, &mut rec);
    } else {
        rec.next_check_at = Some(now + CLAIM_WAIT);
    }
    if let Err(e) = records::save(kv, &rec, Place::New) {
        // Not recorded: answered 503, so Azure redelivers; leave the create to that delivery.
        if claimed {
            let _ = kv.delete(&claim);
        }
        return Err(e);
    }
    if rec.state.is_terminal() && claimed {
        // Failed at once: no create will follow.
        let _ = kv.delete(&claim);
    }
    accept(ctx, &digest, &identity, summary(&rec))?;
    if rec.state.is_active() {
        listing.active.push(ActKey::of_record(&rec));
    } else {
        listing.finished.push((rec.id.clone(), now));
    }
    let decision = if rec.state == State::Skipped { Decision::SkippedLimit } else { Decision::Started };
    Ok(TargetOutcome::of(decision, &rec))
}

/// Handle every target from one listing of the store.
pub fn handle_alert(ctx: &Ctx, alert: &Alert, targets: &[Target]) -> Result<Vec<TargetOutcome>, StoreError> {
    let mut listing = Listing::load(ctx.world.kv)?;
    targets.iter().map(|t| handle_target(ctx, alert, t, &mut listing)).collect()
}
