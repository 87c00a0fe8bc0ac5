//! The operation URL ARM hands back with a `202` for a long-running `queryStatus`, kept on the
//! record between checks. An [`OperationUrl`] can only be made from a link on the configured ARM
//! origin, so nothing else can ever be sent our token.

use serde::{Deserialize, Serialize};

use super::origin::Origin;

/// Longest link we follow (ARM's are a few hundred characters; 4 KB is the documented floor).
pub(crate) const MAX_LINK: usize = 8192;

/// True when `link` is on `origin` (the configured ARM endpoint: scheme, host and port, compared
/// as [`Origin`]s), is followed there by a path, and is plain visible ASCII within [`MAX_LINK`].
pub(crate) fn on_origin(link: &str, origin: &Origin) -> bool {
    link.len() <= MAX_LINK
        // Visible ASCII only: no controls (header injection), spaces, or non-ASCII look-alikes.
        && link.bytes().all(|c| c.is_ascii_graphic() && c != b'\\')
        // A path must follow the authority: a bare origin or `origin?query` names no operation.
        && link
            .split_once("://")
            .is_some_and(|(_, rest)| rest.find(['/', '?']).is_some_and(|i| rest.as_bytes()[i] == b'/'))
        && Origin::split_url(link).is_ok_and(|(o, _)| o == *origin)
}

/// An absolute URL on the configured ARM origin (same scheme, host and port), as given in a
/// `Location` or `Azure-AsyncOperation` header. Validated when made; never holds anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationUrl(String);

impl OperationUrl {
    /// `raw` (trimmed) when it is on `arm_endpoint`'s origin (see the module docs), else `None`.
    pub fn parse(raw: &str, arm_endpoint: &Origin) -> Option<Self> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const ARM_TEXT: &str = "https://management.azure.com";

    fn origin(s: &str) -> Origin {
        Origin::parse(s).unwrap()
    }

    #[test]
    fn only_links_on_the_configured_origin_make_an_operation_url() {
        let good = "https://management.azure.com/subscriptions/x/providers/Microsoft.Network/locations/westus/operationResults/1?api-version=2025-07-01";
        assert_eq!(OperationUrl::parse(good, &origin(ARM_TEXT)).unwrap().as_str(), good);
        // Header values may carry surrounding blanks; the origin compares without case; a
        // configured trailing slash changes nothing.
        assert_eq!(OperationUrl::parse(&format!(" {good}\t"), &origin(ARM_TEXT)).unwrap().as_str(), good);
        assert!(OperationUrl::parse("HTTPS://Management.Azure.com/op", &origin(ARM_TEXT)).is_some());
        assert!(OperationUrl::parse(good, &origin("https://management.azure.com/")).is_some());
        // The emulator: plain http on a port is fine when that is what is configured.
        assert!(OperationUrl::parse("http://127.0.0.1:8443/op/1", &origin("http://127.0.0.1:8443")).is_some());
        assert!(OperationUrl::parse("http://127.0.0.1:8444/op/1", &origin("http://127.0.0.1:8443")).is_none());

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
            assert_eq!(OperationUrl::parse(bad, &origin(ARM_TEXT)), None, "{bad:?}");
        }
        let long = format!("{ARM_TEXT}/{}", "a".repeat(MAX_LINK));
        assert_eq!(OperationUrl::parse(&long, &origin(ARM_TEXT)), None);
        // Only an http(s) origin can be configured at all (the type refuses the rest).
        assert!(Origin::parse("ftp://x").is_err());
    }
}
