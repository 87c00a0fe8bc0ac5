//! Capture status and stop (`GET /captures`, `GET /captures/{id}`, `POST /captures/{id}/stop`):
//! the records as they are, one record brought up to date, and a stop asked by a person.

use super::ctx::Ctx;
use super::poller;
use crate::clients::azure::AzureError;
use crate::clients::store::records;
use crate::clients::store::{self, Listing, StoreError};
use crate::domain::record::{CaptureRecord, State};
use crate::domain::resource_id::ResourceId;

/// The warning a stopped capture carries.
pub const STOPPED_EARLY: &str = "stopped early on request";

/// Records in `state` (all when `None`), newest first, at most `limit`; and how many matched.
/// Active records are queued or running, finished ones terminal: only the side the filter can
/// match is read.
pub fn list(ctx: &Ctx, state: Option<State>, limit: usize) -> Result<(Vec<CaptureRecord>, usize), StoreError> {
    let listing = Listing::load(ctx.world.kv)?;
    let mut recs = Vec::new();
    if state.is_none_or(State::is_active) {
        for a in &listing.active {
            if let Some(r) = records::load_active(ctx.world.kv, a)? {
                recs.push(r);
            }
        }
    }
    if state.is_none_or(State::is_terminal) {
        for (n, t) in &listing.finished {
            if let Some(r) = store::read::<CaptureRecord>(ctx.world.kv, &records::cap_key(n, *t))? {
                recs.push(r);
            }
        }
    }
    recs.retain(|r| state.is_none_or(|s| r.state == s));
    recs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    let total = recs.len();
    recs.truncate(limit);
    Ok((recs, total))
}

/// Record `id`, brought up to date (a due step is run): `None` when there is none.
pub fn get(ctx: &Ctx, id: &str) -> Result<Option<CaptureRecord>, StoreError> {
    poller::advance_record(ctx, id)
}

/// What a stop did.
#[derive(Debug)]
pub enum Stop {
    /// No such record.
    NotFound,
    /// The record had already ended.
    AlreadyEnded(Box<CaptureRecord>),
    /// Asked, and recorded (a queued record is stopped by name at a later check).
    Stopped(Box<CaptureRecord>),
    /// Azure did not stop it; the record is unchanged.
    AzureRefused(Box<CaptureRecord>, AzureError),
}

/// Stop capture `id` on a person's request.
pub fn stop(ctx: &Ctx, id: &str) -> Result<Stop, StoreError> {
    let Some((mut rec, place)) = records::load(ctx.world.kv, id, None)? else {
        return Ok(Stop::NotFound);
    };
    if rec.state.is_terminal() {
        return Ok(Stop::AlreadyEnded(Box::new(rec)));
    }
    if rec.state == State::Queued {
        // A create may be in flight in another request: PUT nothing, and let a later check stop
        // the capture by name if it exists, or end the record if Azure never made it.
        if !rec.warnings.iter().any(|w| w == STOPPED_EARLY) {
            rec.warnings.push(STOPPED_EARLY.to_string());
        }
        rec.stop_requested = true;
        rec.next_check_at = Some(ctx.now() + poller::STOP_SETTLE_SECS);
        rec.updated_at = ctx.now();
        records::save(ctx.world.kv, &rec, place)?;
        return Ok(Stop::Stopped(Box::new(rec)));
    }
    let watcher = rec.watcher.as_deref().and_then(|w| ResourceId::parse(w).ok());
    if let Some(w) = &watcher
        && let Err(e) = ctx.azure.stop_capture(w, &rec.name)
        && !matches!(e, AzureError::NotFound { .. })
    {
        return Ok(Stop::AzureRefused(Box::new(rec), e));
    }
    rec.warnings.push(STOPPED_EARLY.to_string());
    // Azure has stopped it: check now, with a fresh queryStatus (a pending one may answer with
    // the status from before the stop), and record the outcome and the file.
    rec.status_operation = None;
    rec.next_check_at = Some(ctx.now());
    if ctx.now() < ctx.deadline {
        poller::step(ctx, &mut rec);
    }
    records::save(ctx.world.kv, &rec, place)?;
    Ok(Stop::Stopped(Box::new(rec)))
}
