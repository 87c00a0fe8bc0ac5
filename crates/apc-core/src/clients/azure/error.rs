//! What can go wrong talking to Entra ID and ARM, sorted by what the caller should do about it.

use std::time::UNIX_EPOCH;

use crate::ports::{OutboundResponse, TransportError, UnixSeconds};

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
    /// (Retry-After header, seconds or HTTP-date; 30 when absent or unreadable; at most 3600).
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

/// Seconds from a Retry-After header, relative to `now` (Unix seconds, from the World's clock).
///
/// Both forms of RFC 9110 section 10.2.3 are read: delta-seconds, and an HTTP-date (IMF-fixdate, or
/// the obsolete RFC 850 and asctime forms). A date in the past means "now" (0). A huge value,
/// in either form, is capped at [`MAX_RETRY_AFTER_SECS`]; only an unreadable value gives
/// [`DEFAULT_RETRY_AFTER_SECS`].
pub(crate) fn retry_after_header(resp: &OutboundResponse, now: UnixSeconds) -> Option<u64> {
    resp.header("retry-after").map(|v| parse_retry_after(v, now))
}

/// One Retry-After value; see [`retry_after_header`].
pub(crate) fn parse_retry_after(value: &str, now: UnixSeconds) -> u64 {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: too many for a u64 is still "a very long time", not garbage.
        return v.parse::<u64>().unwrap_or(u64::MAX).min(MAX_RETRY_AFTER_SECS);
    }
    let Ok(date) = httpdate::parse_http_date(v) else {
        return DEFAULT_RETRY_AFTER_SECS;
    };
    // A date before 1970 is in the past too.
    let at = date.duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0);
    let wait = at.saturating_sub(now);
    if wait <= 0 { 0 } else { (wait as u64).min(MAX_RETRY_AFTER_SECS) }
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

/// Sort a non-success ARM answer; `now` turns a Retry-After date into seconds.
pub(crate) fn from_arm_response(resp: &OutboundResponse, now: UnixSeconds) -> AzureError {
    let (code, message) = arm_code_and_message(resp);
    let status = resp.status;
    if status == 429 || (status == 409 && code.eq_ignore_ascii_case("RetryableErrorDueToAnotherOperation")) {
        return AzureError::Throttled {
            retry_after_secs: retry_after_header(resp, now).unwrap_or(DEFAULT_RETRY_AFTER_SECS),
            code,
            message,
        };
    }
    if status >= 500 || status == 408 {
        return AzureError::Transient {
            detail: format!("ARM {status} {code}: {message}"),
            retry_after_secs: retry_after_header(resp, now),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Sun, 06 Nov 1994 08:49:37 GMT, the example date of RFC 9110.
    const RFC_DATE: i64 = 784_111_777;

    fn throttled(retry_after: &str, now: UnixSeconds) -> AzureError {
        let resp = OutboundResponse {
            status: 429,
            headers: vec![("Retry-After".into(), retry_after.into())],
            body: br#"{"error":{"code":"TooManyRequests","message":"slow"}}"#.to_vec(),
        };
        from_arm_response(&resp, now)
    }

    #[test]
    fn delta_seconds_are_read_and_capped() {
        assert_eq!(parse_retry_after("0", RFC_DATE), 0);
        assert_eq!(parse_retry_after(" 17 ", RFC_DATE), 17);
        assert_eq!(parse_retry_after("3600", RFC_DATE), 3600);
        assert_eq!(parse_retry_after("3601", RFC_DATE), MAX_RETRY_AFTER_SECS);
        assert_eq!(parse_retry_after("999999", RFC_DATE), MAX_RETRY_AFTER_SECS);
        // Beyond u64: still "wait the longest", not the default.
        assert_eq!(parse_retry_after("99999999999999999999999999", RFC_DATE), MAX_RETRY_AFTER_SECS);
    }

    #[test]
    fn every_http_date_form_is_relative_to_now() {
        for form in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(parse_retry_after(form, RFC_DATE - 120), 120, "{form}");
            assert_eq!(parse_retry_after(form, RFC_DATE - 1), 1, "{form}");
            // Now or past: retry now.
            assert_eq!(parse_retry_after(form, RFC_DATE), 0, "{form}");
            assert_eq!(parse_retry_after(form, RFC_DATE + 86_400), 0, "{form}");
            // Far ahead: capped, not the default.
            assert_eq!(parse_retry_after(form, RFC_DATE - 86_400), MAX_RETRY_AFTER_SECS, "{form}");
        }
        assert_eq!(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", 0), MAX_RETRY_AFTER_SECS);
    }

    #[test]
    fn garbage_gives_the_default() {
        for v in ["", "soon", "-5", "1.5", "12s", "Sun, 06 Nov 1994 08:49:37 PST", "Sun, 32 Nov 1994 08:49:37 GMT"] {
            assert_eq!(parse_retry_after(v, RFC_DATE), DEFAULT_RETRY_AFTER_SECS, "{v:?}");
        }
    }

    #[test]
    fn arm_errors_carry_the_date_form_as_seconds() {
        let e = throttled("Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE - 45);
        assert_eq!(
            e,
            AzureError::Throttled { retry_after_secs: 45, code: "TooManyRequests".into(), message: "slow".into() }
        );
        assert_eq!(throttled("Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE + 5).retry_after(), Some(0));
        assert_eq!(throttled("Sat, 06 Nov 2094 08:49:37 GMT", RFC_DATE).retry_after(), Some(MAX_RETRY_AFTER_SECS));

        let resp = OutboundResponse {
            status: 503,
            headers: vec![("retry-after".into(), "Sun, 06 Nov 1994 08:50:37 GMT".into())],
            body: Vec::new(),
        };
        assert_eq!(from_arm_response(&resp, RFC_DATE).retry_after(), Some(60));
    }
}
