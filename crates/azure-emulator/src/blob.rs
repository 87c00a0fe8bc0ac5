//! Blob storage for the captures the emulator runs, path-style like Azurite:
//! `GET {base}/{account}/{container}/{blob}` and
//! `POST {base}/{account}/?restype=service&comp=userdelegationkey`.
//!
//! - A capture whose `storageLocation.storageId` names an account has its file at
//!   `{account}/network-watcher-logs/{path}` once it has stopped (before: `404 BlobNotFound`);
//!   the file is [`crate::pcap::capture_file`] of the capture's scenario and start time, or the
//!   bytes a test set with [`crate::Emulator::set_capture_file_override`].
//! - Reads are authorised by a bearer token issued for the Storage audience
//!   (`https://storage.azure.com/.default`; an ARM token is refused) with `x-ms-version`, or by a
//!   user-delegation SAS signed with a key this emulator issued. The SAS check is this module's
//!   own reading of the 2025-01-05 string-to-sign (it shares no code with the component).
//! - `Range` / `x-ms-range` `bytes=a-b` or `bytes=a-`: `206` with `Content-Range`; a start at or
//!   past the end: `416 InvalidRange`.
//! - [`crate::ArmModes::storage_denied`]: every read and key request answers
//!   `403 AuthorizationPermissionMismatch`, as Storage does without a data-plane role.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Inner;
use crate::http::{Request, Response};
use crate::model::{DelegationKey, State};
use crate::pcap;

/// The only SAS signed version this emulator checks.
pub const SAS_VERSION: &str = "2025-01-05";
/// The container Network Watcher writes to.
pub const CONTAINER: &str = "network-watcher-logs";

/// A Storage error answer: XML body and `x-ms-error-code`.
pub(crate) fn error(inner: &Inner, status: u16, code: &str, message: &str) -> Response {
    let (request_id, now) = {
        let mut st = inner.lock();
        (st.guid(), st.now())
    };
    let time = now.format(&Rfc3339).unwrap_or_default();
    let body = format!(
        "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{}\nRequestId:{request_id}\nTime:{time}</Message></Error>",
        escape(message)
    );
    Response { status, headers: vec![("Content-Type".into(), "application/xml".into())], body: body.into_bytes() }
        .with_header("x-ms-error-code", code)
        .with_header("x-ms-request-id", request_id)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// How the request was authorised.
enum Auth {
    Bearer,
    Sas,
}

/// `POST /{account}/?restype=service&comp=userdelegationkey`.
pub(crate) fn user_delegation_key(inner: &Inner, account: &str, req: &Request) -> Response {
    match authorise(inner, req, None) {
        Ok(Auth::Bearer) => {}
        Ok(Auth::Sas) => {
            return error(inner, 403, "AuthenticationFailed", "A user delegation key needs a bearer token.");
        }
        Err(resp) => return resp,
    }
    let body = String::from_utf8_lossy(&req.body);
    let field = |name: &str| -> Option<OffsetDateTime> {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find('<')? + start;
        OffsetDateTime::parse(body[start..end].trim(), &Rfc3339).ok()
    };
    let (Some(start), Some(expiry)) = (field("Start"), field("Expiry")) else {
        return error(inner, 400, "InvalidXmlDocument", "XML specified is not syntactically valid.");
    };
    let mut st = inner.lock();
    let now = st.now();
    if expiry <= start || expiry <= now || expiry > now + time::Duration::days(7) {
        drop(st);
        return error(
            inner,
            400,
            "InvalidXmlNodeValue",
            "The value for one of the XML nodes is not in the correct format.",
        );
    }
    let mut value = [0u8; 32];
    for chunk in value.chunks_mut(8) {
        chunk.copy_from_slice(&st.ids.next_u64().to_le_bytes()[..chunk.len()]);
    }
    let key = DelegationKey {
        oid: st.settings.config.modes.principal_object_id.clone(),
        tid: st.settings.config.tenant_id.clone(),
        start: fmt(start),
        expiry: fmt(expiry),
        version: req.header("x-ms-version").unwrap_or(SAS_VERSION).to_string(),
        value: value.to_vec(),
        account: account.to_string(),
    };
    let xml = format!(
        "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><UserDelegationKey><SignedOid>{}</SignedOid><SignedTid>{}</SignedTid><SignedStart>{}</SignedStart><SignedExpiry>{}</SignedExpiry><SignedService>b</SignedService><SignedVersion>{}</SignedVersion><Value>{}</Value></UserDelegationKey>",
        key.oid,
        key.tid,
        key.start,
        key.expiry,
        escape(&key.version),
        B64.encode(&key.value)
    );
    st.delegation_keys.push(key);
    Response { status: 200, headers: vec![("Content-Type".into(), "application/xml".into())], body: xml.into_bytes() }
}

/// `2026-05-28T20:26:40Z`: whole seconds, as Storage echoes key times.
fn fmt(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0).unwrap_or(t).format(&Rfc3339).unwrap_or_default()
}

/// `GET /{account}/{container}/{blob}`.
pub(crate) fn get_blob(inner: &Inner, account: &str, container: &str, blob: &str, req: &Request) -> Response {
    let resource = format!("/blob/{account}/{container}/{blob}");
    if let Err(resp) = authorise(inner, req, Some((account, &resource))) {
        return resp;
    }
    let file = {
        let st = inner.lock();
        let now = st.now();
        let key = format!("{account}/{container}/{blob}");
        // Two captures writing the same name in the same millisecond: the later one wins, as
        // an upload over an existing blob does.
        st.captures
            .values()
            .filter(|c| c.blob.as_deref() == Some(key.as_str()))
            .max_by_key(|c| c.created_at)
            .and_then(|c| {
                // Network Watcher uploads the file when the capture has stopped.
                (c.status_at(now).status == "Stopped").then(|| file_of(&st, &c.name, c.start_at))
            })
            // A deleted capture's file stays in storage.
            .or_else(|| st.kept_files.get(&key).map(|(name, start)| file_of(&st, name, *start)))
    };
    let Some(file) = file else {
        return error(inner, 404, "BlobNotFound", "The specified blob does not exist.");
    };
    let total = file.len() as u64;
    let range = req.header("x-ms-range").or_else(|| req.header("range"));
    let base = |status: u16, body: Vec<u8>| {
        Response { status, headers: vec![("Content-Type".into(), "application/octet-stream".into())], body }
            .with_header("Accept-Ranges", "bytes")
            .with_header("x-ms-blob-type", "BlockBlob")
            .with_header("x-ms-version", SAS_VERSION)
    };
    let Some(range) = range else {
        return base(200, file.to_vec());
    };
    let Some((start, end)) = parse_range(range) else {
        // Storage ignores a range it cannot read and answers the whole blob.
        return base(200, file.to_vec());
    };
    if start >= total {
        return error(
            inner,
            416,
            "InvalidRange",
            "The range specified is invalid for the current size of the resource.",
        )
        .with_header("Content-Range", format!("bytes */{total}"));
    }
    let end = end.unwrap_or(u64::MAX).min(total - 1);
    let body = file[start as usize..=end as usize].to_vec();
    base(206, body).with_header("Content-Range", format!("bytes {start}-{end}/{total}"))
}

/// Capture `name`'s file: its override if a test set one, else its scenario's file.
fn file_of(st: &State, name: &str, start: OffsetDateTime) -> Arc<Vec<u8>> {
    let name = name.to_ascii_lowercase();
    if let Some(bytes) = st.file_overrides.get(&name) {
        return bytes.clone();
    }
    let scenario = st.scenarios.get(&name).copied().unwrap_or_default();
    Arc::new(pcap::capture_file(scenario, start.unix_timestamp()))
}

/// `bytes=a-b` or `bytes=a-` (one range; `b` below `a` is not a range).
fn parse_range(v: &str) -> Option<(u64, Option<u64>)> {
    let (a, b) = v.trim().strip_prefix("bytes=")?.split_once('-')?;
    let a = a.trim().parse::<u64>().ok()?;
    let b = match b.trim() {
        "" => None,
        b => Some(b.parse::<u64>().ok().filter(|b| *b >= a)?),
    };
    Some((a, b))
}

/// Check the bearer token (Storage audience) or the SAS; then the role switch. `resource`:
/// the account and canonical resource a SAS must be signed for (`None`: no SAS accepted).
fn authorise(inner: &Inner, req: &Request, resource: Option<(&str, &str)>) -> Result<Auth, Response> {
    let auth = if req.query_param("sig").is_some() {
        let Some((account, resource)) = resource else {
            return Err(error(inner, 403, "AuthenticationFailed", "A SAS is not accepted for this operation."));
        };
        check_sas(inner, req, account, resource).map_err(|why| {
            error(inner, 403, "AuthenticationFailed", &format!("Server failed to authenticate the request. {why}"))
        })?;
        Auth::Sas
    } else {
        let token = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim);
        let Some(token) = token else {
            return Err(error(inner, 401, "NoAuthenticationInformation", "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.")
                .with_header("WWW-Authenticate", "Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize resource_id=https://storage.azure.com"));
        };
        let (expiry, now) = {
            let st = inner.lock();
            (st.storage_tokens.get(token).copied(), st.now())
        };
        match expiry {
            Some(exp) if now < exp => {}
            Some(_) => {
                return Err(error(
                    inner,
                    401,
                    "InvalidAuthenticationInfo",
                    "Lifetime validation failed. The token is expired.",
                ));
            }
            // An unknown token, or one issued for ARM: Storage refuses the audience.
            None => {
                return Err(error(
                    inner,
                    401,
                    "InvalidAuthenticationInfo",
                    "Audience validation failed. Audience did not match.",
                ));
            }
        }
        if req.header("x-ms-version").is_none() {
            return Err(error(
                inner,
                400,
                "MissingRequiredHeader",
                "An HTTP header that's mandatory for this request is not specified: x-ms-version.",
            ));
        }
        Auth::Bearer
    };
    if inner.lock().settings.config.modes.storage_denied {
        return Err(error(
            inner,
            403,
            "AuthorizationPermissionMismatch",
            "This request is not authorized to perform this operation using this permission.",
        ));
    }
    Ok(auth)
}

/// A user-delegation SAS: every field the emulator does not support must be absent, the key must
/// be one it issued (for that account), the times current, the signature right.
fn check_sas(inner: &Inner, req: &Request, account: &str, resource: &str) -> Result<(), String> {
    let q = |name: &str| req.query_param(name).unwrap_or_default();
    if q("sv") != SAS_VERSION {
        return Err(format!("Only signed version {SAS_VERSION} is emulated."));
    }
    if q("sr") != "b" {
        return Err("Signed resource must be b.".into());
    }
    if !q("sp").contains('r') {
        return Err("Signed permissions do not allow a read.".into());
    }
    let st = inner.lock();
    let now = st.now();
    let keys = find_keys(&st, &q("skoid"), &q("sktid"), &q("skt"), &q("ske"), &q("skv"), account);
    let Some(key) = keys.first() else {
        return Err("The user delegation key is not known.".into());
    };
    let ok_time = |s: &str| OffsetDateTime::parse(s, &Rfc3339).ok();
    let se = ok_time(&q("se")).ok_or("Signed expiry is missing or not a time.")?;
    if now >= se {
        return Err("Signed expiry time has passed.".into());
    }
    if !q("st").is_empty() && ok_time(&q("st")).is_none_or(|st| now < st) {
        return Err("Signed start time is not valid yet.".into());
    }
    if ok_time(&key.expiry).is_none_or(|ke| now >= ke) {
        return Err("The user delegation key has expired.".into());
    }
    // The emulator serves plain http: an https-only SAS is only good behind a TLS front.
    let https_front = st.settings.public_base.as_deref().is_some_and(|b| b.starts_with("https://"));
    match q("spr").as_str() {
        "https,http" => {}
        "https" if https_front => {}
        "https" => return Err("This request is not authorized to perform this operation using this protocol.".into()),
        _ => return Err("Signed protocol must be https or https,http.".into()),
    }
    let signed = [
        q("sp"),
        q("st"),
        q("se"),
        resource.to_string(),
        q("skoid"),
        q("sktid"),
        q("skt"),
        q("ske"),
        q("sks"),
        q("skv"),
        q("saoid"),
        q("suoid"),
        q("scid"),
        q("sip"),
        q("spr"),
        q("sv"),
        q("sr"),
        String::new(), // snapshot time: never in the query of a blob SAS
        q("ses"),
        q("rscc"),
        q("rscd"),
        q("rsce"),
        q("rscl"),
        q("rsct"),
    ];
    let string_to_sign = signed.join("\n");
    let given = B64.decode(q("sig")).map_err(|_| "Signature is not base64.")?;
    // Two keys may share every signed field (same times asked twice): any of them may have signed.
    let verified = keys.iter().any(|k| {
        Hmac::<Sha256>::new_from_slice(&k.value)
            .map(|mut mac| {
                mac.update(string_to_sign.as_bytes());
                mac.verify_slice(&given).is_ok()
            })
            .unwrap_or(false)
    });
    if verified { Ok(()) } else { Err("Signature did not match.".into()) }
}

fn find_keys<'a>(
    st: &'a State,
    oid: &str,
    tid: &str,
    start: &str,
    expiry: &str,
    version: &str,
    account: &str,
) -> Vec<&'a DelegationKey> {
    st.delegation_keys
        .iter()
        .filter(|k| {
            k.oid == oid
                && k.tid == tid
                && k.start == start
                && k.expiry == expiry
                && k.version == version
                && k.account == account
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99"), Some((0, Some(99))));
        assert_eq!(parse_range("bytes=10-"), Some((10, None)));
        assert_eq!(parse_range("bytes=10-5"), None);
        assert_eq!(parse_range("bytes=-5"), None);
        assert_eq!(parse_range("items=0-5"), None);
    }
}
