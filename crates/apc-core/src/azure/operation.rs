//! Long-running `queryStatus` answers: the operation URL ARM hands back with a `202`, and what
//! asking it tells us. An [`OperationUrl`] can only be made from a link on the configured ARM
//! origin, so nothing else can ever be sent our token.

use serde::{Deserialize, Serialize};

use super::model::CaptureStatus;

/// Longest link we follow (ARM's are a few hundred characters; 4 KB is the documented floor).
pub(crate) const MAX_LINK: usize = 8192;

/// True when `link` is on `origin` (the configured ARM endpoint: scheme, host and port), is
/// followed there by a path, and is plain visible ASCII within [`MAX_LINK`].
pub(crate) fn on_origin(link: &str, origin: &str) -> bool {
    let origin = origin.trim_end_matches('/');
    let scheme_ok = origin.len() > "https://".len()
        && (origin.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"))
            || origin.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://")));
    scheme_ok
        && link.len() <= MAX_LINK
        // Visible ASCII only: no controls (header injection), spaces, or non-ASCII look-alikes.
        && link.bytes().all(|c| c.is_ascii_graphic() && c != b'\\')
        && link.get(..origin.len()).is_some_and(|p| p.eq_ignore_ascii_case(origin))
        // The next character must start the path: `…azure.com@evil`, `…azure.com.evil`,
        // `…azure.com:8443` all stop here.
        && link.as_bytes().get(origin.len()) == Some(&b'/')
}

/// An absolute URL on the configured ARM origin (same scheme, host and port), as given in a
/// `Location` or `Azure-AsyncOperation` header. Validated when made; never holds anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationUrl(String);

impl OperationUrl {
    /// `raw` (trimmed) when it is on `arm_endpoint`'s origin (see the module docs), else `None`.
    pub fn parse(raw: &str, arm_endpoint: &str) -> Option<Self> {
        let raw = raw.trim();
        on_origin(raw, arm_endpoint).then(|| OperationUrl(raw.to_string()))
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for OperationUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which header the operation URL came from: they answer differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OperationKind {
    /// `Location`: `202` while running, then the operation's result (the status body).
    Location,
    /// `Azure-AsyncOperation`: `200` with `{"status": "InProgress|Succeeded|Failed|Canceled"}`.
    AsyncOperation,
}

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

#[cfg(test)]
mod tests {
    use super::*;

    const ARM: &str = "https://management.azure.com";

    #[test]
    fn only_links_on_the_configured_origin_make_an_operation_url() {
        let good = "https://management.azure.com/subscriptions/x/providers/Microsoft.Network/locations/westus/operationResults/1?api-version=2025-07-01";
        assert_eq!(OperationUrl::parse(good, ARM).unwrap().as_str(), good);
        // Header values may carry surrounding blanks; the origin compares without case; a
        // configured trailing slash changes nothing.
        assert_eq!(OperationUrl::parse(&format!(" {good}\t"), ARM).unwrap().as_str(), good);
        assert!(OperationUrl::parse("HTTPS://Management.Azure.com/op", ARM).is_some());
        assert!(OperationUrl::parse(good, "https://management.azure.com/").is_some());
        // The emulator: plain http on a port is fine when that is what is configured.
        assert!(OperationUrl::parse("http://127.0.0.1:8443/op/1", "http://127.0.0.1:8443").is_some());
        assert!(OperationUrl::parse("http://127.0.0.1:8444/op/1", "http://127.0.0.1:8443").is_none());

        for bad in [
            "https://evil.example/op",
            "https://management.azure.com.evil.example/op",
            "https://management.azure.com@evil.example/op",
            "https://management.azure.com:8443/op",
            "http://management.azure.com/op",
            "https://management.azure.com",
            "https:/management.azure.com/op",
            "//management.azure.com/op",
            "/subscriptions/x/operationResults/1",
            "https://management.azure.com/op\r\nx-injected: 1",
            "https://management.azure.com/a b",
            "https://management.azure.com/a\\b",
            "https://management.azure.com/é",
            "",
        ] {
            assert_eq!(OperationUrl::parse(bad, ARM), None, "{bad:?}");
        }
        let long = format!("{ARM}/{}", "a".repeat(MAX_LINK));
        assert_eq!(OperationUrl::parse(&long, ARM), None);
        // A configured endpoint that is not an http(s) origin accepts nothing.
        assert_eq!(OperationUrl::parse("ftp://x/op", "ftp://x"), None);
    }
}
