//! What can go wrong talking to Entra ID and ARM, sorted by what the caller should do about it.

use crate::ports::{OutboundResponse, TransportError};

/// Retry-After when ARM throttles without saying how long to wait.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 30;
/// Longest wait we accept from a Retry-After header.
pub const MAX_RETRY_AFTER_SECS: u64 = 3600;
/// ARM messages are cut to this many characters in errors and summaries.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// An Azure call that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AzureError {
    /// 429, or 409 with code `RetryableErrorDueToAnotherOperation`: wait `retry_after_secs`
    /// (Retry-After header; 30 when absent; at most 3600).
    #[error("Azure throttled the call ({code}), retry after {retry_after_secs}s: {message}")]
    Throttled {
        /// Seconds to wait before trying again.
        retry_after_secs: u64,
        /// ARM's (or Entra's) error code.
        code: String,
        /// ARM's message, truncated.
        message: String,
    },
    /// 5xx, time-out, broken connection, unreadable 2xx body: safe to retry later.
    #[error("Azure call failed transiently: {detail}")]
    Transient {
        /// What happened, for a person.
        detail: String,
        /// Retry-After, when the answer carried one.
        retry_after_secs: Option<u64>,
    },
    /// A configuration problem, naming the Spin variable to fix. Never holds the secret or a token.
    #[error("configuration problem in {variable}: {detail}")]
    Config {
        /// The variable to fix.
        variable: &'static str,
        /// What is wrong, for a person.
        detail: String,
    },
    /// 404 from ARM.
    #[error("ARM 404 {code}: {message}")]
    NotFound {
        /// ARM's error code.
        code: String,
        /// ARM's message, truncated.
        message: String,
    },
    /// Any other 4xx: permanent, shown to the user with ARM's code and message.
    #[error("ARM {status} {code}: {message}")]
    Permanent {
        /// HTTP status.
        status: u16,
        /// ARM's error code.
        code: String,
        /// ARM's message, truncated.
        message: String,
    },
}

impl AzureError {
    /// True when trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AzureError::Throttled { .. } | AzureError::Transient { .. })
    }

    /// Seconds to wait before retrying, when Azure said.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AzureError::Throttled { retry_after_secs, .. } => Some(*retry_after_secs),
            AzureError::Transient { retry_after_secs, .. } => *retry_after_secs,
            _ => None,
        }
    }

    /// One line for records and answers, e.g. `ARM 400 InvalidRequestFormat: …`.
    pub fn summary(&self) -> String {
        one_line(&self.to_string(), MAX_MESSAGE_CHARS + 120)
    }

    /// The ARM (or Entra) error code, when there is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            AzureError::Throttled { code, .. }
            | AzureError::NotFound { code, .. }
            | AzureError::Permanent { code, .. } => Some(code),
            _ => None,
        }
    }

    pub(crate) fn transient(detail: impl Into<String>) -> Self {
        AzureError::Transient { detail: detail.into(), retry_after_secs: None }
    }
}

/// Text on one line (control characters become spaces), cut to `max` characters.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let mut out: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(max).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// Seconds from a Retry-After header (delta-seconds form). An HTTP date or garbage gives the
/// default; the value is capped.
pub(crate) fn retry_after_header(resp: &OutboundResponse) -> Option<u64> {
    resp.header("retry-after")
        .map(|v| v.trim().parse::<u64>().unwrap_or(DEFAULT_RETRY_AFTER_SECS).min(MAX_RETRY_AFTER_SECS))
}

/// ARM's `{"error":{"code","message"}}` (or a bare `{"code","message"}`), leniently.
pub(crate) fn arm_code_and_message(resp: &OutboundResponse) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or(serde_json::Value::Null);
    let err = v.get("error").filter(|e| e.is_object()).unwrap_or(&v);
    let text = |k: &str| err.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let code = text("code").filter(|c| !c.is_empty()).unwrap_or_else(|| format!("HTTP{}", resp.status));
    let message = text("message").unwrap_or_default();
    (one_line(&code, 100), one_line(&message, MAX_MESSAGE_CHARS))
}

/// Sort a non-success ARM answer.
pub(crate) fn from_arm_response(resp: &OutboundResponse) -> AzureError {
    let (code, message) = arm_code_and_message(resp);
    let status = resp.status;
    if status == 429 || (status == 409 && code.eq_ignore_ascii_case("RetryableErrorDueToAnotherOperation")) {
        return AzureError::Throttled {
            retry_after_secs: retry_after_header(resp).unwrap_or(DEFAULT_RETRY_AFTER_SECS),
            code,
            message,
        };
    }
    if status >= 500 || status == 408 {
        return AzureError::Transient {
            detail: format!("ARM {status} {code}: {message}"),
            retry_after_secs: retry_after_header(resp),
        };
    }
    if status == 404 {
        return AzureError::NotFound { code, message };
    }
    let message = if code.eq_ignore_ascii_case("AuthorizationFailed") {
        match missing_action(&message) {
            Some(action) => {
                one_line(&format!("the service principal lacks the role action {action}. {message}"), MAX_MESSAGE_CHARS)
            }
            None => message,
        }
    } else {
        message
    };
    AzureError::Permanent { status, code, message }
}

/// The action named in ARM's AuthorizationFailed message ("… perform action 'X' over scope …").
fn missing_action(message: &str) -> Option<&str> {
    let start = message.find("action '")? + "action '".len();
    let rest = &message[start..];
    let end = rest.find('\'')?;
    let action = &rest[..end];
    (!action.is_empty() && action.len() < 200).then_some(action)
}

/// A transport failure, naming the variable when the host refused the destination.
pub(crate) fn from_transport(err: &TransportError, variable_if_denied: &'static str) -> AzureError {
    match err {
        TransportError::Denied(host) => AzureError::Config {
            variable: variable_if_denied,
            detail: one_line(
                &format!(
                    "the host refused the outbound request to {host}; allow it in allowed_outbound_hosts \
                     (it is templated from {variable_if_denied}) or correct {variable_if_denied}"
                ),
                MAX_MESSAGE_CHARS,
            ),
        },
        TransportError::Timeout => AzureError::transient("outbound request timed out"),
        TransportError::Connection(why) => {
            AzureError::transient(one_line(&format!("connection failed: {why}"), MAX_MESSAGE_CHARS))
        }
        TransportError::Other(why) => {
            AzureError::transient(one_line(&format!("transport error: {why}"), MAX_MESSAGE_CHARS))
        }
    }
}
