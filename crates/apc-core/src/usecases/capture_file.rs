//! What a finished capture's file says, and a link to it (issue 10): read, summarise, sign.
//!
//! [`prepare`] runs once a capture has `succeeded`, before its notification: it checks the
//! blob URL against the configured storage account's endpoint, signs a read-only download link
//! (user-delegation SAS, `download_link_hours`), and reads at most `capture_summary_max_bytes`
//! of the file in [`READ_CHUNK`] range reads fed to a [`Summarizer`], so the file is never held
//! whole. Its outcome goes on the record that is written anyway (no extra store write).
//!
//! Failures never cost the notification: a missing role, a foreign host, a file that is not a
//! capture or holds no packets, a storage that keeps failing — each becomes the reason shown
//! instead of the summary. Only a blob not written yet (or a retryable Storage answer) delays
//! the notification, for at most [`MAX_READ_ATTEMPTS`] later checks.

use crate::clients::azure::storage::{BlobClient, BlobUrl, BlobUrlError, StorageError, user_delegation_sas};
pub use crate::domain::capture_file::{DownloadUrl, FileSummary, Unavailable};
use crate::domain::policy::backoff;
use crate::domain::record::{CaptureRecord, State};
use crate::domain::summary::{Summarizer, SummaryError};
use crate::ports::UnixSeconds;
use crate::usecases::ctx::Ctx;

/// Bytes per range read (1 MiB): one chunk in memory at a time.
pub const READ_CHUNK: u64 = 1024 * 1024;
/// Seconds of its own clock the summary work may take (inside the request's
/// [`REQUEST_WORK_SECS`](crate::usecases::poller::REQUEST_WORK_SECS) budget for starting steps); past it,
/// what was read so far is summarised and the summary says so.
pub const SUMMARY_WORK_SECS: i64 = 4;
/// Checks that may find the blob not yet written (or Storage failing in a way worth another
/// try) before the notification goes out without a summary.
pub const MAX_READ_ATTEMPTS: u32 = 4;
/// The user delegation key starts this long before now (clock skew between us and Storage).
const KEY_SKEW_SECS: i64 = 300;

/// What [`prepare`] left for the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    /// Go on and notify (the record says what there is).
    Ready,
    /// The file is not readable yet: the record is due again later; do not notify now.
    Later,
}

/// For a `succeeded` record not yet notified whose file was not looked at yet: sign a download
/// link, read and summarise the file, and put both (or the reasons) on the record.
pub fn prepare(ctx: &Ctx, rec: &mut CaptureRecord) -> Prepared {
    if rec.state != State::Succeeded || rec.notified || rec.summary.is_some() {
        return Prepared::Ready;
    }
    let now = ctx.now();
    let Some(path) = rec.storage_path.clone() else {
        rec.summary = Some(match &rec.file_path {
            Some(_) => FileSummary::missing(
                Unavailable::VmOnly,
                "the capture file is stored only on the VM (capture_file_path); no summary or download link is possible without a storage account",
            ),
            None => FileSummary::missing(Unavailable::NoFile, "Azure reported no file location for the capture"),
        });
        return Prepared::Ready;
    };
    let cfg = &ctx.cfg.summary;
    let endpoint = match (cfg.unusable(), &cfg.blob_host, &rec.spec.storage_account_id) {
        (Some(why), _, _) => Err(why),
        (None, Some(host), Some(id)) => host.endpoint(id).map_err(|e| format!("the capture's storage account: {e}")),
        (None, _, None) => Err("the capture names no storage account".to_string()),
        (None, None, _) => Err("storage_blob_host is not usable".to_string()),
    };
    let endpoint = match endpoint {
        Ok(e) => e,
        Err(why) => {
            rec.summary = Some(FileSummary::missing(Unavailable::NotConfigured, why));
            rec.download_error = Some("no download link: the storage settings are not usable".to_string());
            return Prepared::Ready;
        }
    };
    // Never a request to another host than the configured account's.
    let blob = match BlobUrl::parse(&path, &endpoint) {
        Ok(b) => b,
        Err(e) => {
            let code = match e {
                BlobUrlError::ForeignHost { .. } | BlobUrlError::NotAUrl(_) => Unavailable::ForeignHost,
                _ => Unavailable::BadPath,
            };
            rec.download_error = Some(format!("no download link: {e}"));
            rec.summary = Some(FileSummary::missing(code, e.to_string()));
            return Prepared::Ready;
        }
    };
    let client = BlobClient::new(&ctx.azure, &endpoint);
    if rec.download.is_none() {
        sign_link(ctx, rec, &client, &blob, now);
    }
    if cfg.max_bytes == 0 {
        rec.summary =
            Some(FileSummary::missing(Unavailable::Disabled, "summaries are off (capture_summary_max_bytes is 0)"));
        return Prepared::Ready;
    }
    match read_and_summarise(ctx, &client, &blob, cfg.max_bytes, now + SUMMARY_WORK_SECS) {
        Read::Done(summary) => {
            rec.summary = Some(summary);
            Prepared::Ready
        }
        Read::Retry { code, reason, retry_after } => {
            if rec.summary_attempts < MAX_READ_ATTEMPTS {
                rec.summary_attempts += 1;
                rec.next_check_at = Some(now + backoff(rec.summary_attempts, retry_after));
                Prepared::Later
            } else {
                rec.summary = Some(FileSummary::missing(
                    code,
                    format!("{reason} (gave up after {} checks)", rec.summary_attempts + 1),
                ));
                Prepared::Ready
            }
        }
    }
}

/// Sign the link; on failure, say why on the record (the summary is attempted regardless).
fn sign_link(ctx: &Ctx, rec: &mut CaptureRecord, client: &BlobClient, blob: &BlobUrl, now: UnixSeconds) {
    let expiry = now + i64::from(ctx.cfg.summary.link_hours) * 3600;
    let link = client
        .get_user_delegation_key(now - KEY_SKEW_SECS, expiry)
        .map_err(|e| e.to_string())
        .and_then(|key| user_delegation_sas(&key, blob, expiry).map_err(|e| e.to_string()));
    match link {
        Ok(link) => {
            rec.download = Some(DownloadUrl { url: link.expose().to_string(), expires_at: link.expires_at() });
            rec.download_error = None;
        }
        Err(why) => rec.download_error = Some(format!("no download link: {why}")),
    }
}

enum Read {
    Done(FileSummary),
    Retry { code: Unavailable, reason: String, retry_after: Option<u64> },
}

/// Read chunks until the summariser has enough, the file ends, or `until` passes.
fn read_and_summarise(ctx: &Ctx, client: &BlobClient, blob: &BlobUrl, max: u64, until: UnixSeconds) -> Read {
    let mut s = Summarizer::new(max);
    let mut offset = 0u64;
    let mut note = None;
    loop {
        if offset > 0 && ctx.now() >= until {
            note = Some(format!("reading stopped after {offset} bytes: the summary's time budget ran out"));
            break;
        }
        let want = READ_CHUNK.min(max - offset).max(1);
        match client.read_chunk(blob, offset, want) {
            Ok(chunk) => {
                if let Some(total) = chunk.total_size {
                    s.set_total_bytes(total);
                }
                let n = chunk.bytes.len() as u64;
                offset += n;
                let more = s.feed(&chunk.bytes);
                if !more || n == 0 || chunk.total_size.is_some_and(|t| offset >= t) || offset >= max {
                    break;
                }
            }
            Err(e) if offset == 0 => return storage_failure(e),
            // Part of the file was read: summarise that, and say why the rest was not.
            Err(e) => {
                note = Some(format!("reading stopped after {offset} bytes: {e}"));
                break;
            }
        }
    }
    match s.finish() {
        Ok(summary) if summary.packets == 0 => {
            Read::Done(FileSummary::missing(Unavailable::NoPackets, "the capture file holds no packets"))
        }
        Ok(summary) => Read::Done(FileSummary::Summarised { summary: Box::new(summary), note }),
        Err(e) if e.retry_may_help() => {
            Read::Retry { code: Unavailable::Empty, reason: e.to_string(), retry_after: None }
        }
        Err(e @ SummaryError::NotACapture) => Read::Done(FileSummary::missing(Unavailable::NotACapture, e.to_string())),
        Err(e) => Read::Done(FileSummary::missing(Unavailable::Empty, e.to_string())),
    }
}

fn storage_failure(e: StorageError) -> Read {
    match e {
        StorageError::MissingRole { .. } => Read::Done(FileSummary::missing(Unavailable::MissingRole, e.to_string())),
        StorageError::NotYetWritten => {
            Read::Retry { code: Unavailable::NotYetWritten, reason: e.to_string(), retry_after: None }
        }
        StorageError::Azure(ref a) if e.is_retryable() => {
            Read::Retry { code: Unavailable::StorageError, reason: e.to_string(), retry_after: a.retry_after() }
        }
        e if e.is_retryable() => {
            Read::Retry { code: Unavailable::StorageError, reason: e.to_string(), retry_after: None }
        }
        e => Read::Done(FileSummary::missing(Unavailable::StorageError, e.to_string())),
    }
}
