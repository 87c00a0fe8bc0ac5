//! What a capture file says, for a person on a phone (issue 10): capture-file bytes in, a traffic
//! summary out.
//!
//! [`Summarizer`] is fed the file in chunks as a range read delivers them and never holds more
//! than one record of it; it reads at most `max_bytes`, and a file cut short ends the summary
//! cleanly. Memory stays bounded: every table has a cap, and what overflowed is counted.
//!
//! Formats: classic pcap (either byte order, micro- or nanosecond timestamps) and pcapng (with
//! each interface's `if_tsresol`), detected by their magic bytes. Link types: Ethernet, raw IP,
//! BSD loopback and Linux cooked capture (v1, v2).

mod community_id;
mod container;
mod packet;
mod services;
mod stats;
pub(crate) use stats::thousands;
#[cfg(test)]
pub(crate) mod testcap;
#[cfg(test)]
mod tests;

pub use community_id::community_id_v1;
pub use container::{ByteOrder, CaptureFormat};
pub use stats::{Conversation, FileCoverage, PortUse, ProtocolMix, Summary, TableUsage, Talker, TcpHealth};

use container::{Framer, Step};

/// Why there is no summary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SummaryError {
    /// No byte at all was read (the blob may not be written yet).
    #[error("the capture file is empty")]
    Empty,
    /// The file begins like a capture file but ends inside its file header.
    #[error("the capture file ends inside its header")]
    HeaderTruncated,
    /// The magic bytes are not those of pcap or pcapng.
    #[error("not a capture file (neither pcap nor pcapng)")]
    NotACapture,
}

impl SummaryError {
    /// Whether reading the file again later could succeed: an empty or half-written file may
    /// still be being uploaded; a file that is not a capture will stay one.
    pub fn retry_may_help(&self) -> bool {
        matches!(self, SummaryError::Empty | SummaryError::HeaderTruncated)
    }
}

/// Incremental capture-file summariser: `new`, `feed` chunks in file order, `finish`.
pub struct Summarizer {
    max_bytes: u64,
    total_bytes: Option<u64>,
    seen: u64,
    /// Bytes were offered past `max_bytes`.
    over_limit: bool,
    framer: Framer,
    /// The start of a record whose end has not arrived yet (never more than one record).
    pending: Vec<u8>,
    not_a_capture: bool,
    corrupt: Option<(&'static str, u64)>,
    /// Offset of the first byte of `pending` (or of the next record) in the file.
    offset: u64,
    stats: stats::Stats,
}

impl Summarizer {
    /// A summariser that reads at most `max_bytes` of the file.
    pub fn new(max_bytes: u64) -> Self {
        Summarizer {
            max_bytes,
            total_bytes: None,
            seen: 0,
            over_limit: false,
            framer: Framer::new(),
            pending: Vec::new(),
            not_a_capture: false,
            corrupt: None,
            offset: 0,
            stats: stats::Stats::default(),
        }
    }

    /// The file's full size, when the reader knows it (a range answer's `Content-Range`), so
    /// the summary can say how much of how much it saw.
    pub fn set_total_bytes(&mut self, total: u64) {
        self.total_bytes = Some(total);
    }

    /// Whether more bytes would change the summary (false after the limit, garbage or damage).
    pub fn wants_more(&self) -> bool {
        !self.not_a_capture && self.corrupt.is_none() && self.seen < self.max_bytes
    }

    /// Feeds the next chunk of the file. Returns [`Summarizer::wants_more`].
    pub fn feed(&mut self, chunk: &[u8]) -> bool {
        if !self.wants_more() {
            if !chunk.is_empty() && self.seen >= self.max_bytes {
                self.over_limit = true;
            }
            return false;
        }
        let room = usize::try_from(self.max_bytes - self.seen).unwrap_or(usize::MAX);
        let mut data = if chunk.len() > room {
            self.over_limit = true;
            &chunk[..room]
        } else {
            chunk
        };
        self.seen += data.len() as u64;
        while self.wants_more_parsing() {
            if self.pending.is_empty() {
                // Records wholly inside the chunk are read in place, without a copy.
                match self.framer.step(data) {
                    Step::Record { consumed, packet } => {
                        if let Some(p) = packet {
                            self.stats.add(&p);
                        }
                        data = &data[consumed..];
                        self.offset += consumed as u64;
                    }
                    Step::NeedMore(_) => {
                        self.pending.extend_from_slice(data);
                        break;
                    }
                    Step::NotACapture => self.not_a_capture = true,
                    Step::Corrupt(why) => self.corrupt = Some((why, self.offset)),
                }
                if data.is_empty() {
                    break;
                }
            } else {
                let pending = std::mem::take(&mut self.pending);
                match self.framer.step(&pending) {
                    Step::Record { consumed, packet } => {
                        if let Some(p) = packet {
                            self.stats.add(&p);
                        }
                        self.offset += consumed as u64;
                        self.pending = pending;
                        self.pending.drain(..consumed);
                        if self.pending.is_empty() && data.is_empty() {
                            break;
                        }
                    }
                    Step::NeedMore(need) => {
                        // Top up only to what the record needs, so `pending` stays one record.
                        let take = need.saturating_sub(pending.len()).min(data.len());
                        self.pending = pending;
                        if take == 0 {
                            break;
                        }
                        self.pending.extend_from_slice(&data[..take]);
                        data = &data[take..];
                    }
                    Step::NotACapture => self.not_a_capture = true,
                    Step::Corrupt(why) => self.corrupt = Some((why, self.offset)),
                }
            }
        }
        self.wants_more()
    }

    fn wants_more_parsing(&self) -> bool {
        !self.not_a_capture && self.corrupt.is_none()
    }

    /// The summary of what was fed.
    pub fn finish(self) -> Result<Summary, SummaryError> {
        if self.not_a_capture {
            return Err(SummaryError::NotACapture);
        }
        if self.offset == 0 {
            // Not one whole record: a header cut short, or a first block that makes no sense.
            return Err(if self.corrupt.is_some() {
                SummaryError::NotACapture
            } else if self.seen == 0 {
                SummaryError::Empty
            } else {
                SummaryError::HeaderTruncated
            });
        }
        let Some((format, byte_order)) = self.framer.format() else {
            return Err(SummaryError::HeaderTruncated);
        };
        // Damage ends reading wherever the chunk boundaries fell, so what a damaged file reports
        // is fixed by the damage alone: the bytes before it, and neither limit nor truncation
        // (how many bytes had been fed past it depends only on the reader's chunk sizes).
        let bytes_seen = self.corrupt.map_or(self.seen, |(_, at)| at);
        // A reader stops feeding once `feed` says no, so reaching `max_bytes` is stopping at the
        // limit even if no byte past it was offered; only a known total can say the file ended
        // right there.
        let stopped_at_limit = self.corrupt.is_none()
            && (self.over_limit
                || match self.total_bytes {
                    Some(total) => total > self.seen,
                    None => self.seen >= self.max_bytes,
                });
        let coverage = FileCoverage {
            bytes_seen,
            bytes_total: self.total_bytes,
            stopped_at_limit,
            // A record cut short by the end of the file, not by our own limit.
            truncated: !self.pending.is_empty() && !stopped_at_limit,
            damaged: self.corrupt.map(|(why, at)| format!("{why} (at byte {at})")),
        };
        Ok(self.stats.finish(format, byte_order, coverage))
    }
}
