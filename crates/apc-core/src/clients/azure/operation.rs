//! Long-running `queryStatus` answers: what asking the operation URL ([`OperationUrl`], a domain
//! type kept on the record) tells us.

use super::model::CaptureStatus;
pub(crate) use crate::domain::operation::on_origin;
pub use crate::domain::operation::{OperationKind, OperationUrl};

/// What `queryStatus` told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusOutcome {
    /// The capture's status.
    Known(CaptureStatus),
    /// Azure accepted the question and will answer at `operation`; ask it there, no sooner than
    /// `retry_after_secs` (when given) from now. Not an error: the capture is unaffected.
    Pending {
        /// Where to ask.
        operation: OperationUrl,
        /// How to read its answer.
        kind: OperationKind,
        /// Azure's `Retry-After`, in seconds from now (capped like every `Retry-After`).
        retry_after_secs: Option<u64>,
    },
}

/// What one `GET` of a stored operation URL told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationPoll {
    /// The capture's status, from the operation's result.
    Known(CaptureStatus),
    /// Still running: ask again, no sooner than `retry_after_secs` from now.
    Running {
        /// Azure's `Retry-After`, when given.
        retry_after_secs: Option<u64>,
    },
    /// The operation succeeded without carrying the status: `queryStatus` again.
    Done,
    /// The operation is gone (`404`/`410`), `Failed`, `Canceled`, or answered with an error:
    /// drop it and `queryStatus` again. `why` is one line for a person.
    Ended {
        /// What happened.
        why: String,
    },
}
