//! What the record keeps of a finished capture's file (issue 10): its traffic summary or why
//! there is none, and the download link. Made by `usecases::capture_file`.

use serde::{Deserialize, Serialize};

use super::summary::Summary;
use crate::ports::UnixSeconds;

/// Why a capture has no summary. Stable names (the JSON contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unavailable {
    /// The file is only on the VM (`capture_file_path`): nothing we can read.
    VmOnly,
    /// Azure reported no file location.
    NoFile,
    /// The storage settings have problems, or the capture names no storage account.
    NotConfigured,
    /// `capture_summary_max_bytes` is 0.
    Disabled,
    /// The blob URL is not on the configured account's blob endpoint (not fetched).
    ForeignHost,
    /// The blob URL cannot be read as a container and blob.
    BadPath,
    /// The service principal lacks the data-plane role.
    MissingRole,
    /// The blob was still not written after the retries.
    NotYetWritten,
    /// The file is empty or ends inside its header.
    Empty,
    /// The file is not pcap or pcapng.
    NotACapture,
    /// The file holds no packets.
    NoPackets,
    /// Storage refused or failed otherwise.
    StorageError,
}

/// The traffic summary of the capture file, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum FileSummary {
    /// The file was read (perhaps only its start; `summary.file` says how much of how much).
    Summarised {
        /// The figures.
        summary: Box<Summary>,
        /// Why reading stopped early, when not at the end or the size limit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// No summary.
    Unavailable {
        /// Which case.
        code: Unavailable,
        /// Why, for a person (never a credential).
        reason: String,
    },
}

impl FileSummary {
    pub(crate) fn missing(code: Unavailable, reason: impl Into<String>) -> FileSummary {
        FileSummary::Unavailable { code, reason: reason.into() }
    }

    /// The summary, when there is one.
    pub fn summary(&self) -> Option<&Summary> {
        match self {
            FileSummary::Summarised { summary, .. } => Some(summary),
            FileSummary::Unavailable { .. } => None,
        }
    }
}

/// A read-only download link to the capture file. A credential: on the record and in the
/// notification only; `Debug` shows no query string.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadUrl {
    /// The whole link (blob URL and SAS).
    pub url: String,
    /// When it stops working.
    pub expires_at: UnixSeconds,
}

impl std::fmt::Debug for DownloadUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.url.split('?').next().unwrap_or("");
        f.debug_struct("DownloadUrl")
            .field("url", &format!("{shown}?<redacted>"))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}
