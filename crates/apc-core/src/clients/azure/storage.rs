//! Azure Blob Storage for capture files (issue 10), over the [`HttpClient`](crate::ports::HttpClient)
//! port: which blob URLs may be fetched ([`BlobUrl`]), a user delegation key, a read-only
//! user-delegation SAS ([`user_delegation_sas`]), and a range read ([`BlobClient::read_range`]).
//!
//! Only the configured storage account's blob endpoint is ever called ([`BlobEndpoint`]): a
//! `storagePath` naming any other host is refused before any request, with a reason that can be
//! shown. Requests carry the service principal's own Entra token for the Storage audience
//! ([`Azure::storage_token`]); no account key is involved.
//!
//! The SAS is signed as Microsoft documents the user delegation SAS for service version
//! [`SAS_VERSION`] (fields `sp`, `st`, `se`, resource, `skoid`, `sktid`, `skt`, `ske`, `sks`, `skv`,
//! `saoid`, `suoid`, `scid`, `sip`, `spr`, `sv`, `sr`, snapshot time, `ses`, `rscc`, `rscd`, `rsce`,
//! `rscl`, `rsct`, joined by newlines), HMAC-SHA256 under the key's value. A SAS is a credential:
//! [`DownloadLink`] never shows its signature in `Debug`, and has no `Display`.

use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::Sha256;

use super::error::{AzureError, DEFAULT_RETRY_AFTER_SECS, MAX_MESSAGE_CHARS, from_transport, one_line};
use super::{Azure, USER_AGENT};
pub use crate::domain::blob::{BlobCloud, BlobEndpoint, BlobUrl, BlobUrlError};
use crate::domain::timefmt::{parse_rfc3339, rfc3339};
use crate::ports::{Method, OutboundRequest, OutboundResponse, UnixSeconds};

/// `x-ms-version` of every Storage request, and the signed version (`sv`) of every SAS. Pinned:
/// the string-to-sign depends on it (2025-07-05 added fields), and Azurite serves it.
pub const STORAGE_API_VERSION: &str = "2025-01-05";
/// The signed version of the SAS we make (same as [`STORAGE_API_VERSION`]).
pub const SAS_VERSION: &str = STORAGE_API_VERSION;
/// The data-plane role that reads capture blobs and may ask for a user delegation key.
pub const READER_ROLE: &str = "Storage Blob Data Reader";
/// Longest validity of a user delegation key that Storage grants (7 days).
pub const MAX_KEY_LIFETIME_SECS: i64 = 7 * 24 * 3600;
/// Largest user-delegation-key answer we read.
const MAX_KEY_XML: usize = 16 * 1024;

/// Query values: everything but unreserved characters is escaped (`:` in times, `+/=` in sig).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A user delegation key, as Storage answered it. `Debug` never shows the key's value.
#[derive(Clone, PartialEq, Eq)]
pub struct UserDelegationKey {
    /// `SignedOid`: the service principal's object id.
    pub signed_oid: String,
    /// `SignedTid`: its tenant.
    pub signed_tid: String,
    /// `SignedStart`, exactly as answered (it is signed as text).
    pub signed_start: String,
    /// `SignedExpiry`, exactly as answered.
    pub signed_expiry: String,
    /// `SignedService` (`b`).
    pub signed_service: String,
    /// `SignedVersion`.
    pub signed_version: String,
    /// `Value`: the base64 key.
    value: String,
}

impl fmt::Debug for UserDelegationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserDelegationKey")
            .field("signed_oid", &self.signed_oid)
            .field("signed_tid", &self.signed_tid)
            .field("signed_start", &self.signed_start)
            .field("signed_expiry", &self.signed_expiry)
            .field("signed_service", &self.signed_service)
            .field("signed_version", &self.signed_version)
            .field("value", &"<redacted>")
            .finish()
    }
}

impl UserDelegationKey {
    /// A key from its parts (`value` base64).
    pub fn new(
        signed_oid: &str,
        signed_tid: &str,
        signed_start: &str,
        signed_expiry: &str,
        signed_service: &str,
        signed_version: &str,
        value: &str,
    ) -> UserDelegationKey {
        UserDelegationKey {
            signed_oid: signed_oid.to_string(),
            signed_tid: signed_tid.to_string(),
            signed_start: signed_start.to_string(),
            signed_expiry: signed_expiry.to_string(),
            signed_service: signed_service.to_string(),
            signed_version: signed_version.to_string(),
            value: value.to_string(),
        }
    }

    /// Read Storage's `<UserDelegationKey>` answer. Strict: one root element holding only simple
    /// text elements (unknown ones skipped, duplicates refused), the five XML entities, at most
    /// 16 KiB; every field we sign present, one line, and the value valid base64.
    pub fn from_xml(body: &[u8]) -> Result<UserDelegationKey, String> {
        if body.len() > MAX_KEY_XML {
            return Err("user delegation key answer is too large".into());
        }
        let text = std::str::from_utf8(body).map_err(|_| "user delegation key answer is not UTF-8".to_string())?;
        let fields = xml_fields(text.trim_start_matches('\u{feff}'), "UserDelegationKey")?;
        let get = |name: &str| -> Result<String, String> {
            let v = fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).unwrap_or("");
            if v.is_empty() || v.len() > 256 || v.chars().any(char::is_control) {
                return Err(format!("user delegation key answer has no usable {name}"));
            }
            Ok(v.to_string())
        };
        let key = UserDelegationKey {
            signed_oid: get("SignedOid")?,
            signed_tid: get("SignedTid")?,
            signed_start: get("SignedStart")?,
            signed_expiry: get("SignedExpiry")?,
            signed_service: get("SignedService")?,
            signed_version: get("SignedVersion")?,
            value: get("Value")?,
        };
        if B64.decode(&key.value).map(|k| k.is_empty()).unwrap_or(true) {
            return Err("user delegation key value is not base64".into());
        }
        if parse_rfc3339(&key.signed_expiry).is_none() {
            return Err("user delegation key SignedExpiry is not a time".into());
        }
        Ok(key)
    }

    /// `SignedExpiry` as Unix seconds.
    pub fn expires_at(&self) -> Option<UnixSeconds> {
        parse_rfc3339(&self.signed_expiry)
    }
}

/// The children of the single root element `root`, as (name, unescaped text).
fn xml_fields(text: &str, root: &str) -> Result<Vec<(String, String)>, String> {
    let bad = |what: &str| format!("user delegation key answer is not the expected XML ({what})");
    let mut s = text.trim_start();
    if let Some(rest) = s.strip_prefix("<?xml") {
        let end = rest.find("?>").ok_or_else(|| bad("declaration"))?;
        s = rest[end + 2..].trim_start();
    }
    let open = format!("<{root}");
    s = s.strip_prefix(open.as_str()).ok_or_else(|| bad("root element"))?;
    // Attributes on the root (namespaces) are allowed and ignored.
    let end = s.find('>').ok_or_else(|| bad("root element"))?;
    if !(s[..end].is_empty() || s[..end].starts_with(char::is_whitespace)) || s[..end].ends_with('/') {
        return Err(bad("root element"));
    }
    s = &s[end + 1..];
    let close_root = format!("</{root}>");
    let mut fields: Vec<(String, String)> = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix(close_root.as_str()) {
            if !rest.trim().is_empty() {
                return Err(bad("text after the root element"));
            }
            return Ok(fields);
        }
        let rest = s.strip_prefix('<').ok_or_else(|| bad("text between elements"))?;
        let end = rest.find('>').ok_or_else(|| bad("unterminated element"))?;
        let tag = &rest[..end];
        let (name, self_closing) = match tag.strip_suffix('/') {
            Some(n) => (n.trim_end(), true),
            None => (tag, false),
        };
        if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad("element name"));
        }
        s = &rest[end + 1..];
        let value = if self_closing {
            String::new()
        } else {
            let stop = s.find('<').ok_or_else(|| bad("unterminated element"))?;
            let value = unescape(&s[..stop]).ok_or_else(|| bad("entity"))?;
            let close = format!("</{name}>");
            s = s[stop..].strip_prefix(close.as_str()).ok_or_else(|| bad("nested or unclosed element"))?;
            value
        };
        if fields.iter().any(|(k, _)| k == name) {
            return Err(bad("repeated element"));
        }
        if fields.len() >= 32 {
            return Err(bad("too many elements"));
        }
        fields.push((name.to_string(), value));
    }
}

/// XML's five predefined entities; anything else after `&` is refused.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let semi = after.find(';')?;
        out.push(match &after[..=semi] {
            "&amp;" => '&',
            "&lt;" => '<',
            "&gt;" => '>',
            "&quot;" => '"',
            "&apos;" => '\'',
            _ => return None,
        });
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// A read-only download link (blob URL + SAS). A credential: `Debug` hides the signature and
/// there is no `Display`; [`expose`](Self::expose) is the only way to the full text.
#[derive(Clone, PartialEq, Eq)]
pub struct DownloadLink {
    url: String,
    sig_at: usize,
    expires_at: UnixSeconds,
}

impl DownloadLink {
    /// The whole link, signature included. Never log it.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// When the link stops working.
    pub fn expires_at(&self) -> UnixSeconds {
        self.expires_at
    }
}

impl fmt::Debug for DownloadLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.url.get(..self.sig_at).unwrap_or("");
        f.debug_struct("DownloadLink")
            .field("url", &format!("{shown}sig=<redacted>"))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The string-to-sign of a read-only, blob-scoped user-delegation SAS at [`SAS_VERSION`].
/// `st`, `saoid`, `suoid`, `scid`, `sip`, the snapshot time, `ses` and the five response
/// headers are not used by us and sign as empty lines.
fn string_to_sign(key: &UserDelegationKey, blob: &BlobUrl, expiry: &str, protocol: &str) -> String {
    let fields: [&str; 24] = [
        "r",                        // sp
        "",                         // st
        expiry,                     // se
        &blob.canonical_resource(), // canonicalizedResource
        &key.signed_oid,            // skoid
        &key.signed_tid,            // sktid
        &key.signed_start,          // skt
        &key.signed_expiry,         // ske
        &key.signed_service,        // sks
        &key.signed_version,        // skv
        "",                         // saoid
        "",                         // suoid
        "",                         // scid
        "",                         // sip
        protocol,                   // spr
        SAS_VERSION,                // sv
        "b",                        // sr
        "",                         // signedSnapshotTime
        "",                         // ses
        "",                         // rscc
        "",                         // rscd
        "",                         // rsce
        "",                         // rscl
        "",                         // rsct
    ];
    fields.join("\n")
}

/// Why a SAS cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SasError {
    /// The key's value is not base64.
    #[error("the user delegation key's value is not base64")]
    KeyValue,
    /// The link would outlive the key (Storage refuses such a SAS).
    #[error("the link would expire after the user delegation key; ask for a longer-lived key")]
    OutlivesKey,
}

/// A read-only (`sp=r`), blob-scoped (`sr=b`) user-delegation SAS for `blob`, valid until
/// `expiry`, HTTPS-only unless the configured endpoint is a plain-http emulator.
pub fn user_delegation_sas(
    key: &UserDelegationKey,
    blob: &BlobUrl,
    expiry: UnixSeconds,
) -> Result<DownloadLink, SasError> {
    if key.expires_at().is_none_or(|k| expiry > k) {
        return Err(SasError::OutlivesKey);
    }
    let secret = B64.decode(&key.value).map_err(|_| SasError::KeyValue)?;
    let se = rfc3339(expiry);
    let protocol = blob.protocol;
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).map_err(|_| SasError::KeyValue)?;
    mac.update(string_to_sign(key, blob, &se, protocol).as_bytes());
    let sig = B64.encode(mac.finalize().into_bytes());

    let enc = |v: &str| utf8_percent_encode(v, QUERY_VALUE).to_string();
    let mut url = format!(
        "{}?sp=r&se={}&skoid={}&sktid={}&skt={}&ske={}&sks={}&skv={}&spr={}&sv={}&sr=b&",
        blob.as_str(),
        enc(&se),
        enc(&key.signed_oid),
        enc(&key.signed_tid),
        enc(&key.signed_start),
        enc(&key.signed_expiry),
        enc(&key.signed_service),
        enc(&key.signed_version),
        enc(protocol),
        SAS_VERSION,
    );
    let sig_at = url.len();
    url.push_str("sig=");
    url.push_str(&enc(&sig));
    Ok(DownloadLink { url, sig_at, expires_at: expiry })
}

/// A Storage call that did not give what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// 403 for want of a data-plane role (`AuthorizationPermissionMismatch`, …).
    #[error(
        "the service principal lacks the {role} role on the storage account ({code}); assign it to read capture files"
    )]
    MissingRole {
        /// The role to assign.
        role: &'static str,
        /// Storage's error code.
        code: String,
    },
    /// 404: the capture file is not (yet) written. Network Watcher uploads after the stop;
    /// asking later may succeed.
    #[error("the capture file is not in storage (yet)")]
    NotYetWritten,
    /// Token, transport, throttling, 5xx: as [`AzureError`] sorts them.
    #[error(transparent)]
    Azure(#[from] AzureError),
    /// Any other refusal.
    #[error("Storage {status} {code}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Storage's error code (`x-ms-error-code`).
        code: String,
        /// Its message, cut.
        message: String,
    },
    /// A 2xx answer we cannot read.
    #[error("unreadable Storage answer: {0}")]
    BadAnswer(String),
    /// A request we will not make.
    #[error("{0}")]
    Invalid(&'static str),
}

impl StorageError {
    /// True when asking again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            StorageError::NotYetWritten | StorageError::BadAnswer(_) => true,
            StorageError::Azure(e) => e.is_retryable(),
            StorageError::MissingRole { .. } | StorageError::Refused { .. } | StorageError::Invalid(_) => false,
        }
    }
}

/// The beginning of a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobBytes {
    /// The bytes read, from offset 0, at most the limit asked for.
    pub bytes: Vec<u8>,
    /// The blob's whole size, when the answer said (`Content-Range` total, or the body of a
    /// `200`); `Some(0)` for an empty blob.
    pub total_size: Option<u64>,
}

impl BlobBytes {
    /// True when `bytes` is the whole blob.
    pub fn is_complete(&self) -> bool {
        self.total_size == Some(self.bytes.len() as u64)
    }
}

/// Storage calls for one configured account.
pub struct BlobClient<'a, 'w> {
    az: &'a Azure<'w>,
    endpoint: &'a BlobEndpoint,
}

impl<'a, 'w> BlobClient<'a, 'w> {
    /// A client over `az`'s world and credentials, for `endpoint` only.
    pub fn new(az: &'a Azure<'w>, endpoint: &'a BlobEndpoint) -> Self {
        BlobClient { az, endpoint }
    }

    /// `POST {service}/?restype=service&comp=userdelegationkey`: a key valid from `start` to
    /// `expiry` (at most 7 days after now).
    pub fn get_user_delegation_key(
        &self,
        start: UnixSeconds,
        expiry: UnixSeconds,
    ) -> Result<UserDelegationKey, StorageError> {
        let now = self.az.world.clock.now();
        if expiry <= start || expiry > now.saturating_add(MAX_KEY_LIFETIME_SECS) {
            return Err(StorageError::Invalid("a user delegation key must expire after its start and within 7 days"));
        }
        let url = format!("{}/?restype=service&comp=userdelegationkey", self.endpoint.service_root());
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><KeyInfo><Start>{}</Start><Expiry>{}</Expiry></KeyInfo>",
            rfc3339(start),
            rfc3339(expiry)
        );
        let resp = self.send(Method::Post, &url, None, body.into_bytes())?;
        match resp.status {
            200 => UserDelegationKey::from_xml(&resp.body).map_err(StorageError::BadAnswer),
            _ => Err(self.sort(&resp)),
        }
    }

    /// GET the first `max_bytes` (at least 1) of `blob` with a range request. `200` (no range
    /// support) is cut to `max_bytes`; `206` tells the total size; `416` is an empty blob.
    pub fn read_range(&self, blob: &BlobUrl, max_bytes: u64) -> Result<BlobBytes, StorageError> {
        self.read_chunk(blob, 0, max_bytes)
    }

    /// GET bytes `start .. start + len` (`len` at least 1) of `blob` with a range request, so a
    /// file is read in chunks and never held whole. `206` must answer from `start` and tells the
    /// total size; a `200` (range ignored) is cut to the chunk; `416` past the end is an empty
    /// chunk (at `start` 0: an empty blob).
    pub fn read_chunk(&self, blob: &BlobUrl, start: u64, len: u64) -> Result<BlobBytes, StorageError> {
        let len = len.max(1);
        let range = format!("bytes={start}-{}", start.saturating_add(len - 1));
        let resp = self.send(Method::Get, blob.as_str(), Some(&range), Vec::new())?;
        let limit = usize::try_from(len).unwrap_or(usize::MAX);
        match resp.status {
            200 => {
                let total = resp.body.len() as u64;
                let from = usize::try_from(start).unwrap_or(usize::MAX).min(resp.body.len());
                let bytes = resp.body[from..].iter().take(limit).copied().collect();
                Ok(BlobBytes { bytes, total_size: Some(total) })
            }
            206 => {
                let total =
                    resp.header("content-range").and_then(|v| content_range_from(v, start)).ok_or_else(|| {
                        StorageError::BadAnswer(format!("206 without a Content-Range from {start}, the offset asked"))
                    })?;
                let mut bytes = resp.body;
                bytes.truncate(limit);
                Ok(BlobBytes { bytes, total_size: total })
            }
            416 => Ok(BlobBytes {
                bytes: Vec::new(),
                total_size: if start == 0 {
                    Some(0)
                } else {
                    resp.header("content-range").and_then(|v| v.trim().strip_prefix("bytes */")?.parse().ok())
                },
            }),
            _ => Err(self.sort(&resp)),
        }
    }

    /// One request with the Storage token; on a 401 one fresh token and one retry.
    fn send(
        &self,
        method: Method,
        url: &str,
        range: Option<&str>,
        body: Vec<u8>,
    ) -> Result<OutboundResponse, StorageError> {
        let mut token = self.az.storage_token()?;
        let mut refreshed = false;
        loop {
            let date = httpdate::fmt_http_date(
                UNIX_EPOCH + Duration::from_secs(u64::try_from(self.az.world.clock.now()).unwrap_or(0)),
            );
            let mut headers = vec![
                ("authorization".to_string(), format!("Bearer {}", token.expose())),
                ("x-ms-version".to_string(), STORAGE_API_VERSION.to_string()),
                ("x-ms-date".to_string(), date),
                ("user-agent".to_string(), USER_AGENT.to_string()),
            ];
            if let Some(range) = range {
                headers.push(("range".to_string(), range.to_string()));
            }
            if !body.is_empty() {
                headers.push(("content-type".to_string(), "application/xml".to_string()));
            }
            let request = OutboundRequest { method, url: url.to_string(), headers, body: body.clone() };
            // A refused host: spin.toml allows the blob endpoint through storage_blob_host.
            let resp = self.az.send(&request).map_err(|e| from_transport(&e, "storage_blob_host"))?;
            if resp.status == 401 && !refreshed {
                token = self.az.refresh_storage_token()?;
                refreshed = true;
                continue;
            }
            return Ok(resp);
        }
    }

    /// Sort a non-success answer by status and `x-ms-error-code`.
    fn sort(&self, resp: &OutboundResponse) -> StorageError {
        let code = resp
            .header("x-ms-error-code")
            .map(|c| one_line(c, 100))
            .or_else(|| xml_error_part(&resp.body, "Code"))
            .unwrap_or_else(|| format!("HTTP{}", resp.status));
        let message = xml_error_part(&resp.body, "Message").unwrap_or_default();
        let retry_after = super::error::retry_after_header(resp, self.az.world.clock.now());
        match resp.status {
            403 if code != "AuthenticationFailed" => StorageError::MissingRole { role: READER_ROLE, code },
            404 => StorageError::NotYetWritten,
            429 | 503 => StorageError::Azure(AzureError::Throttled {
                retry_after_secs: retry_after.unwrap_or(DEFAULT_RETRY_AFTER_SECS),
                code,
                message,
            }),
            s if s >= 500 || s == 408 => StorageError::Azure(AzureError::Transient {
                detail: format!("Storage {s} {code}: {message}"),
                retry_after_secs: retry_after,
            }),
            status => StorageError::Refused { status, code, message },
        }
    }
}

/// The total of `bytes {from}-{end}/{total}` (`None` for `*`); `None` overall when the header is
/// not a range from `from`.
fn content_range_from(v: &str, from: u64) -> Option<Option<u64>> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    if start.trim().parse::<u64>().ok()? != from || end.trim().parse::<u64>().is_err() {
        return None;
    }
    match total.trim() {
        "*" => Some(None),
        t => t.parse::<u64>().ok().map(Some),
    }
}

/// `<Error><Code>…</Code><Message>…</Message></Error>`, one part, cut; leniently.
fn xml_error_part(body: &[u8], part: &str) -> Option<String> {
    let text = std::str::from_utf8(body.get(..body.len().min(8192))?).ok()?;
    let open = format!("<{part}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find('<')? + start;
    let v = unescape(&text[start..end]).unwrap_or_default();
    // The first line only: Storage appends RequestId and Time lines.
    let first = v.split(['\r', '\n']).next().unwrap_or("").trim();
    (!first.is_empty()).then(|| one_line(first, MAX_MESSAGE_CHARS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_is_read_from_zero_only() {
        assert_eq!(content_range_from("bytes 0-99/1234", 0), Some(Some(1234)));
        assert_eq!(content_range_from("bytes 0-99/*", 0), Some(None));
        assert_eq!(content_range_from("bytes 5-99/1234", 0), None);
        assert_eq!(content_range_from("bytes 0-x/1234", 0), None);
        assert_eq!(content_range_from("0-99/1234", 0), None);
        assert_eq!(content_range_from("bytes 0-99/12a", 0), None);
        assert_eq!(content_range_from("bytes 100-199/1234", 100), Some(Some(1234)));
        assert_eq!(content_range_from("bytes 100-199/1234", 0), None);
        assert_eq!(content_range_from("bytes 99-199/1234", 100), None);
    }

    #[test]
    fn entities_are_the_five_only() {
        assert_eq!(unescape("a&amp;b&lt;&gt;&quot;&apos;").as_deref(), Some("a&b<>\"'"));
        assert_eq!(unescape("&#65;"), None);
        assert_eq!(unescape("&amp"), None);
    }

    #[test]
    fn error_parts_take_the_first_line() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>BlobNotFound</Code><Message>The specified blob does not exist.\nRequestId:1\nTime:2</Message></Error>";
        assert_eq!(xml_error_part(body, "Code").as_deref(), Some("BlobNotFound"));
        assert_eq!(xml_error_part(body, "Message").as_deref(), Some("The specified blob does not exist."));
        assert_eq!(xml_error_part(b"\xff\xfe", "Code"), None);
    }
}
