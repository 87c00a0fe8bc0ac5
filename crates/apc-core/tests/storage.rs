//! Azure Blob Storage for capture files (issue 10): the blob-host check, the user delegation
//! key, the SAS signer (known answers from Microsoft's Python SDK, `scripts/sas-vector.py`) and
//! range reads, against the scripted transport.

use apc_core::azure::storage::{
    BlobClient, BlobCloud, BlobEndpoint, BlobUrl, BlobUrlError, READER_ROLE, SAS_VERSION, STORAGE_API_VERSION,
    StorageError, UserDelegationKey, user_delegation_sas,
};
use apc_core::azure::{AzureError, STORAGE_TOKEN_KEY, TOKEN_KEY};
use apc_core::origin::Origin;
use apc_core::ports::{KvStore, Method, OutboundRequest, OutboundResponse};
use apc_core::timefmt::parse_rfc3339;
use apc_testkit::azure::{AzureEnv, azure_config};
use apc_testkit::consts::{ARM, LOGIN, SECRET, T0, TENANT, TOKEN_OK, token_url};
use apc_testkit::http::{sample_file_response, with_header};
use proptest::prelude::*;

const ACCOUNT: &str = "pcstore";
const BLOB: &str = "https://pcstore.blob.core.windows.net/network-watcher-logs/vm1/2026/05/28/capture.cap";
const SERVICE_KEY_URL: &str = "https://pcstore.blob.core.windows.net/?restype=service&comp=userdelegationkey";
/// The access token of the Entra docs sample the kit answers token requests with.
const SAMPLE_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6Ik1uQ19WWmNBVGZNNXBP...";

fn public() -> BlobEndpoint {
    BlobEndpoint::cloud(ACCOUNT, BlobCloud::Public).unwrap()
}

fn env() -> AzureEnv {
    AzureEnv::new(azure_config(SECRET, LOGIN, ARM), T0)
}

/// The key of `scripts/sas-vector.py`.
fn vector_key() -> UserDelegationKey {
    UserDelegationKey::new(
        "6d2b7a1c-0f3e-4c55-9a41-0c1e2b3d4f50",
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "2026-05-28T20:26:40Z",
        "2026-05-29T20:31:40Z",
        "b",
        "2025-01-05",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    )
}

fn query(link: &str) -> Vec<(String, String)> {
    let q = link.split_once('?').unwrap().1;
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn param(link: &str, name: &str) -> Option<String> {
    query(link).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn key_xml(value: &str) -> String {
    format!(
        "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<UserDelegationKey>\n  <SignedOid>6d2b7a1c-0f3e-4c55-9a41-0c1e2b3d4f50</SignedOid>\n  <SignedTid>{TENANT}</SignedTid>\n  <SignedStart>2026-05-28T20:26:40Z</SignedStart>\n  <SignedExpiry>2026-05-29T20:31:40Z</SignedExpiry>\n  <SignedService>b</SignedService>\n  <SignedVersion>2025-01-05</SignedVersion>\n  <Value>{value}</Value>\n</UserDelegationKey>"
    )
}

fn xml_response(status: u16, body: &str) -> OutboundResponse {
    OutboundResponse {
        status,
        headers: vec![("content-type".into(), "application/xml".into())],
        body: body.as_bytes().to_vec(),
    }
}

fn storage_error(status: u16, code: &str, message: &str) -> OutboundResponse {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}\nRequestId:0f1e\nTime:2026-05-28T20:26:40.0000000Z</Message></Error>"
    );
    with_header(xml_response(status, &body), "x-ms-error-code", code)
}

fn bytes_response(status: u16, body: &[u8], content_range: Option<&str>) -> OutboundResponse {
    let mut r = OutboundResponse { status, headers: Vec::new(), body: body.to_vec() };
    if let Some(cr) = content_range {
        r.headers.push(("Content-Range".into(), cr.into()));
    }
    r
}

fn form(req: &OutboundRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(&req.body).into_owned().collect()
}

fn assert_storage_headers(req: &OutboundRequest, token: &str) {
    assert_eq!(req.header("authorization"), Some(format!("Bearer {token}").as_str()));
    assert_eq!(req.header("x-ms-version"), Some(STORAGE_API_VERSION));
    assert_eq!(
        req.header("x-ms-date"),
        Some(httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(T0 as u64)).as_str())
    );
}

// ---------------------------------------------------------------- the blob host check

#[test]
fn a_blob_on_the_configured_account_is_accepted_and_split() {
    let url = BlobUrl::parse(BLOB, &public()).unwrap();
    assert_eq!(url.as_str(), BLOB);
    assert_eq!(url.container(), "network-watcher-logs");
    assert_eq!(url.blob(), "vm1/2026/05/28/capture.cap");
    // Host case and an explicit default port are the same origin.
    let url = BlobUrl::parse("HTTPS://PCSTORE.Blob.Core.Windows.Net:443/c0ntainer/a%20b.cap", &public()).unwrap();
    assert_eq!(url.as_str(), "https://pcstore.blob.core.windows.net/c0ntainer/a%20b.cap");
    assert_eq!(url.blob(), "a b.cap");
}

#[test]
fn each_cloud_accepts_only_its_own_suffix() {
    let cases = [
        (BlobCloud::Public, "core.windows.net"),
        (BlobCloud::China, "core.chinacloudapi.cn"),
        (BlobCloud::UsGovernment, "core.usgovcloudapi.net"),
    ];
    for (cloud, suffix) in cases {
        let ep = BlobEndpoint::cloud(ACCOUNT, cloud).unwrap();
        assert_eq!(ep.origin().as_str(), format!("https://pcstore.blob.{suffix}"));
        for (_, other) in cases {
            let url = format!("https://pcstore.blob.{other}/network-watcher-logs/x.cap");
            assert_eq!(BlobUrl::parse(&url, &ep).is_ok(), other == suffix, "{cloud:?} {url}");
        }
    }
    let cloud = |host: &str| BlobCloud::from_arm_endpoint(&Origin::parse(host).unwrap());
    assert_eq!(cloud("https://management.azure.com"), Some(BlobCloud::Public));
    assert_eq!(cloud("https://management.chinacloudapi.cn"), Some(BlobCloud::China));
    assert_eq!(cloud("https://management.usgovcloudapi.net"), Some(BlobCloud::UsGovernment));
    assert_eq!(cloud("http://127.0.0.1:8089"), None);
    assert_eq!(cloud("https://management.azure.com:8443"), None);
}

#[test]
fn any_other_host_is_refused_with_a_reason_naming_both() {
    let ep = public();
    let foreign = [
        "https://evil.blob.core.windows.net/network-watcher-logs/x.cap",
        "https://pcstore.blob.core.windows.net.evil.example/network-watcher-logs/x.cap",
        "https://pcstore.file.core.windows.net/network-watcher-logs/x.cap",
        "http://pcstore.blob.core.windows.net/network-watcher-logs/x.cap",
        "https://pcstore.blob.core.windows.net:8443/network-watcher-logs/x.cap",
        "https://127.0.0.1/network-watcher-logs/x.cap",
    ];
    for url in foreign {
        let err = BlobUrl::parse(url, &ep).unwrap_err();
        assert!(matches!(err, BlobUrlError::ForeignHost { .. }), "{url}: {err:?}");
        let text = err.to_string();
        assert!(text.contains("https://pcstore.blob.core.windows.net"), "{text}");
        assert!(text.contains("not fetched"), "{text}");
    }
}

#[test]
fn malformed_paths_and_queries_are_refused() {
    let ep = public();
    let bad = [
        ("https://user:pw@pcstore.blob.core.windows.net/c0n/x.cap", "NotAUrl"),
        ("ftp://pcstore.blob.core.windows.net/c0n/x.cap", "NotAUrl"),
        ("https://pcstore.blob.core.windows.net/c0n/x.cap#frag", "NotAUrl"),
        ("https://pcstore.blob.core.windows.net/c0n/x.cap?sig=abc", "Query"),
        ("https://pcstore.blob.core.windows.net/c0n", "Path"),
        ("https://pcstore.blob.core.windows.net/c0n/", "Path"),
        ("https://pcstore.blob.core.windows.net/Upper/x.cap", "Path"),
        ("https://pcstore.blob.core.windows.net/ab/x.cap", "Path"),
        ("https://pcstore.blob.core.windows.net/a--b/x.cap", "Path"),
        ("https://pcstore.blob.core.windows.net/$logs/x.cap", "Path"),
        ("https://pcstore.blob.core.windows.net/c0n/%ff.cap", "Path"),
        ("https://pcstore.blob.core.windows.net/c0n/a%0Ab.cap", "Path"),
    ];
    for (url, kind) in bad {
        let err = BlobUrl::parse(url, &ep).unwrap_err();
        assert!(format!("{err:?}").starts_with(kind), "{url}: {err:?}");
    }
    assert_eq!(BlobEndpoint::cloud("PCStore", BlobCloud::Public).unwrap_err(), BlobUrlError::Account);
    assert_eq!(BlobEndpoint::cloud("ab", BlobCloud::Public).unwrap_err(), BlobUrlError::Account);
    assert_eq!(BlobEndpoint::cloud("pc.store", BlobCloud::Public).unwrap_err(), BlobUrlError::Account);
}

#[test]
fn an_emulator_origin_is_path_style_and_checks_the_account() {
    let ep = BlobEndpoint::emulator(Origin::parse("http://127.0.0.1:10000").unwrap(), "devstoreaccount1").unwrap();
    let url = BlobUrl::parse("http://127.0.0.1:10000/devstoreaccount1/network-watcher-logs/vm1/c.cap", &ep).unwrap();
    assert_eq!(url.container(), "network-watcher-logs");
    assert_eq!(url.blob(), "vm1/c.cap");
    let other = BlobUrl::parse("http://127.0.0.1:10000/otheraccount/network-watcher-logs/c.cap", &ep).unwrap_err();
    assert!(matches!(other, BlobUrlError::ForeignHost { .. }), "{other:?}");
    let port = BlobUrl::parse("http://127.0.0.1:10001/devstoreaccount1/network-watcher-logs/c.cap", &ep).unwrap_err();
    assert!(matches!(port, BlobUrlError::ForeignHost { .. }), "{port:?}");
    assert!(BlobUrl::parse("http://127.0.0.1:10000/devstoreaccount1", &ep).is_err());
    assert_eq!(ep.sas_protocol(), "https,http");
    assert_eq!(public().sas_protocol(), "https");
}

proptest! {
    #[test]
    fn the_host_check_never_panics_and_accepts_only_the_exact_origin(s in "\\PC{0,120}") {
        let ep = public();
        if let Ok(url) = BlobUrl::parse(&s, &ep) {
            prop_assert!(url.as_str().starts_with("https://pcstore.blob.core.windows.net/"));
        }
        let with_prefix = format!("https://pcstore.blob.core.windows.net{s}");
        if let Ok(url) = BlobUrl::parse(&with_prefix, &ep) {
            prop_assert!(url.as_str().starts_with("https://pcstore.blob.core.windows.net/"));
            prop_assert!(!url.as_str().contains('?'));
        }
    }
}

// ---------------------------------------------------------------- the SAS (known answers)

#[test]
fn the_sas_matches_microsofts_sdk_for_a_plain_blob_name() {
    let blob = BlobUrl::parse(BLOB, &public()).unwrap();
    let link = user_delegation_sas(&vector_key(), &blob, parse_rfc3339("2026-05-29T20:26:40Z").unwrap()).unwrap();
    let text = link.expose();
    assert!(text.starts_with(&format!("{BLOB}?")), "{text}");
    assert_eq!(param(text, "sig").as_deref(), Some("Ks7TWXK8m32pHrN7R2/WOM+LKghzfSg9QL4RRyGR4Aw="));
    let expected = [
        ("sp", "r"),
        ("se", "2026-05-29T20:26:40Z"),
        ("skoid", "6d2b7a1c-0f3e-4c55-9a41-0c1e2b3d4f50"),
        ("sktid", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
        ("skt", "2026-05-28T20:26:40Z"),
        ("ske", "2026-05-29T20:31:40Z"),
        ("sks", "b"),
        ("skv", "2025-01-05"),
        ("spr", "https"),
        ("sv", SAS_VERSION),
        ("sr", "b"),
    ];
    for (k, v) in expected {
        assert_eq!(param(text, k).as_deref(), Some(v), "{k}");
    }
    // Exactly those fields and the signature: nothing unsigned rides along.
    assert_eq!(query(text).len(), expected.len() + 1);
    // The query is fully escaped (no raw `:`, `+`, `/` or `=` inside a value).
    let q = text.split_once('?').unwrap().1;
    assert!(!q.contains(':') && !q.contains('+') && !q.contains('/'), "{q}");
    assert_eq!(link.expires_at(), parse_rfc3339("2026-05-29T20:26:40Z").unwrap());
}

#[test]
fn the_sas_signs_the_decoded_blob_name() {
    let url = "https://pcstore.blob.core.windows.net/network-watcher-logs/dir%20with%20space/%C3%BCn%C3%AF%2Bcode.cap";
    let blob = BlobUrl::parse(url, &public()).unwrap();
    assert_eq!(blob.blob(), "dir with space/ünï+code.cap");
    let link = user_delegation_sas(&vector_key(), &blob, parse_rfc3339("2026-05-29T20:26:40Z").unwrap()).unwrap();
    assert!(link.expose().starts_with(&format!("{url}?")));
    assert_eq!(param(link.expose(), "sig").as_deref(), Some("9ptwl7a0fQabKM+ypIDkG4KJ78r6fPVRjsS9iIH95Mc="));
}

#[test]
fn an_http_emulator_gets_https_or_http_and_its_own_vector() {
    let ep = BlobEndpoint::emulator(Origin::parse("http://127.0.0.1:10000").unwrap(), "devstoreaccount1").unwrap();
    let blob =
        BlobUrl::parse("http://127.0.0.1:10000/devstoreaccount1/network-watcher-logs/vm1/capture.cap", &ep).unwrap();
    let link = user_delegation_sas(&vector_key(), &blob, parse_rfc3339("2026-05-29T00:00:00Z").unwrap()).unwrap();
    assert_eq!(param(link.expose(), "spr").as_deref(), Some("https,http"));
    assert_eq!(param(link.expose(), "sig").as_deref(), Some("D76Yz+fJQhiCHoBNfw29OVP94vkLpfU0j3kBwzR2dOA="));
    // An https emulator origin stays https-only.
    let tls = BlobEndpoint::emulator(Origin::parse("https://127.0.0.1:10000").unwrap(), "devstoreaccount1").unwrap();
    assert_eq!(tls.sas_protocol(), "https");
}

#[test]
fn any_change_to_a_signed_field_changes_the_signature() {
    let blob = BlobUrl::parse(BLOB, &public()).unwrap();
    let se = parse_rfc3339("2026-05-29T20:26:40Z").unwrap();
    let base = param(user_delegation_sas(&vector_key(), &blob, se).unwrap().expose(), "sig");
    let later = param(user_delegation_sas(&vector_key(), &blob, se - 1).unwrap().expose(), "sig");
    assert_ne!(base, later);
    let mut key = vector_key();
    key.signed_oid = "6d2b7a1c-0f3e-4c55-9a41-0c1e2b3d4f51".into();
    assert_ne!(base, param(user_delegation_sas(&key, &blob, se).unwrap().expose(), "sig"));
    let other = BlobUrl::parse(&BLOB.replace("capture", "capturf"), &public()).unwrap();
    assert_ne!(base, param(user_delegation_sas(&vector_key(), &other, se).unwrap().expose(), "sig"));
}

#[test]
fn a_link_may_not_outlive_its_key_and_a_bad_key_is_refused() {
    let blob = BlobUrl::parse(BLOB, &public()).unwrap();
    let key_end = parse_rfc3339("2026-05-29T20:31:40Z").unwrap();
    assert!(user_delegation_sas(&vector_key(), &blob, key_end).is_ok());
    assert!(user_delegation_sas(&vector_key(), &blob, key_end + 1).is_err());
    let bad = UserDelegationKey::new("o", "t", "s", "2026-05-29T20:31:40Z", "b", "v", "not base64!");
    assert!(user_delegation_sas(&bad, &blob, key_end).is_err());
}

#[test]
fn debug_never_shows_the_signature_or_the_key() {
    let blob = BlobUrl::parse(BLOB, &public()).unwrap();
    let link = user_delegation_sas(&vector_key(), &blob, parse_rfc3339("2026-05-29T20:26:40Z").unwrap()).unwrap();
    let sig = param(link.expose(), "sig").unwrap();
    let shown = format!("{link:?}");
    assert!(!shown.contains(&sig) && !shown.contains("Ks7TWXK8"), "{shown}");
    assert!(shown.contains("sig=<redacted>") && shown.contains("skoid="), "{shown}");
    let key = format!("{:?}", vector_key());
    assert!(!key.contains("AAECAwQF"), "{key}");
    assert!(key.contains("<redacted>"));
}

// ---------------------------------------------------------------- the user delegation key

#[test]
fn the_key_request_is_exact_and_uses_a_storage_token_of_its_own() {
    let env = env();
    env.token_once();
    env.http.expect(
        Method::Post,
        SERVICE_KEY_URL,
        xml_response(200, &key_xml("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")),
    );
    let az = env.az();
    let ep = public();
    let client = BlobClient::new(&az, &ep);
    let key = client.get_user_delegation_key(T0 - 300, T0 + 86_400).unwrap();
    assert_eq!(key, vector_key_with_tenant());
    env.http.assert_done();

    let token_req = env.http.request(0).unwrap();
    let f = form(&token_req);
    let scope = f.iter().find(|(k, _)| k == "scope").map(|(_, v)| v.as_str());
    assert_eq!(scope, Some("https://storage.azure.com/.default"));
    let req = env.http.request(1).unwrap();
    assert_storage_headers(&req, SAMPLE_TOKEN);
    let body = String::from_utf8(req.body.clone()).unwrap();
    assert_eq!(
        body,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><KeyInfo><Start>2026-05-28T20:21:40Z</Start><Expiry>2026-05-29T20:26:40Z</Expiry></KeyInfo>"
    );

    // The Storage token is cached in its own slot; the ARM slot is untouched, so an ARM call
    // still asks Entra for an ARM token.
    assert!(env.kv.get(STORAGE_TOKEN_KEY).unwrap().is_some());
    assert!(env.kv.get(TOKEN_KEY).unwrap().is_none());
    env.http.expect(Method::Post, SERVICE_KEY_URL, xml_response(200, &key_xml("AAAA")));
    client.get_user_delegation_key(T0, T0 + 3600).unwrap();
    assert_eq!(env.token_requests(), 1, "second Storage call uses the cached token");
    env.token_once();
    az.token().unwrap();
    assert_eq!(env.token_requests(), 2);
    let arm_scope =
        form(&env.http.requests().last().unwrap().clone()).into_iter().find(|(k, _)| k == "scope").map(|(_, v)| v);
    assert_eq!(arm_scope.as_deref(), Some("https://management.azure.com/.default"));
}

fn vector_key_with_tenant() -> UserDelegationKey {
    let mut k = vector_key();
    k.signed_tid = TENANT.to_string();
    k
}

#[test]
fn an_emulator_key_request_goes_to_the_account_path() {
    let env = env();
    env.token_once();
    let ep = BlobEndpoint::emulator(Origin::parse("http://127.0.0.1:10000").unwrap(), "devstoreaccount1").unwrap();
    env.http.expect(
        Method::Post,
        "http://127.0.0.1:10000/devstoreaccount1/?restype=service&comp=userdelegationkey",
        xml_response(200, &key_xml("AAAA")),
    );
    let az = env.az();
    BlobClient::new(&az, &ep).get_user_delegation_key(T0, T0 + 3600).unwrap();
    env.http.assert_done();
}

#[test]
fn key_lifetimes_beyond_seven_days_are_not_asked_for() {
    let env = env();
    let az = env.az();
    let ep = public();
    let client = BlobClient::new(&az, &ep);
    assert!(matches!(client.get_user_delegation_key(T0, T0 + 7 * 86_400 + 1), Err(StorageError::Invalid(_))));
    assert!(matches!(client.get_user_delegation_key(T0, T0), Err(StorageError::Invalid(_))));
    assert_eq!(env.http.count(), 0);
}

#[test]
fn a_refused_key_names_the_role() {
    let env = env();
    env.token_once();
    env.http.expect(
        Method::Post,
        SERVICE_KEY_URL,
        storage_error(
            403,
            "AuthorizationPermissionMismatch",
            "This request is not authorized to perform this operation using this permission.",
        ),
    );
    let az = env.az();
    let ep = public();
    let err = BlobClient::new(&az, &ep).get_user_delegation_key(T0, T0 + 3600).unwrap_err();
    assert_eq!(err, StorageError::MissingRole { role: READER_ROLE, code: "AuthorizationPermissionMismatch".into() });
    assert!(err.to_string().contains("Storage Blob Data Reader"));
    assert!(!err.is_retryable());
}

#[test]
fn key_answers_are_read_strictly() {
    let good = key_xml("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
    assert!(UserDelegationKey::from_xml(good.as_bytes()).is_ok());
    // Unknown elements (newer versions add some) are skipped; attributes on the root allowed.
    let extra = good.replace("<Value>", "<SignedDelegatedUserTid/><Value>");
    assert!(UserDelegationKey::from_xml(extra.as_bytes()).is_ok());
    let ns = good.replace("<UserDelegationKey>", "<UserDelegationKey xmlns=\"urn:x\">");
    assert!(UserDelegationKey::from_xml(ns.as_bytes()).is_ok());
    let escaped = good.replace("<SignedService>b", "<SignedService>b&amp;");
    assert_eq!(UserDelegationKey::from_xml(escaped.as_bytes()).unwrap().signed_service, "b&");

    let bad = [
        good.replace("<Value>AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=</Value>", ""),
        good.replace("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "***"),
        good.replace("<SignedService>b", "<SignedService>b</SignedService><SignedService>b"),
        good.replace("<SignedService>b", "<SignedService><x>b</x>"),
        good.replace("<SignedService>b", "<SignedService>&#98;"),
        good.replace("2026-05-29T20:31:40Z", "tomorrow"),
        good.replace("</UserDelegationKey>", ""),
        good.replace("</UserDelegationKey>", "</UserDelegationKey><More/>"),
        good.replace("UserDelegationKey", "Error"),
        good.replace("<SignedOid>", "<SignedOid>a\u{7}"),
        String::new(),
        "<UserDelegationKey/>".into(),
        format!("{good}{}", " ".repeat(20_000)),
    ];
    for (i, body) in bad.iter().enumerate() {
        assert!(UserDelegationKey::from_xml(body.as_bytes()).is_err(), "case {i}: {body}");
    }
    assert!(UserDelegationKey::from_xml(b"\xff\xfe<UserDelegationKey>").is_err());
}

proptest! {
    #[test]
    fn key_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = UserDelegationKey::from_xml(&bytes);
    }

    #[test]
    fn key_parsing_never_panics_on_mangled_answers(cut in 0usize..700, junk in "[<>/&;a-zA-Z ]{0,8}") {
        let good = key_xml("AAAA");
        let cut = cut.min(good.len());
        let mut s: String = good.chars().take(cut).collect();
        s.push_str(&junk);
        s.extend(good.chars().skip(cut));
        let _ = UserDelegationKey::from_xml(s.as_bytes());
    }
}

// ---------------------------------------------------------------- range reads

fn read(
    env: &AzureEnv,
    response: OutboundResponse,
    max: u64,
) -> Result<apc_core::azure::storage::BlobBytes, StorageError> {
    env.token_once();
    env.http.expect(Method::Get, BLOB, response);
    let az = env.az();
    let ep = public();
    let blob = BlobUrl::parse(BLOB, &ep).unwrap();
    BlobClient::new(&az, &ep).read_range(&blob, max)
}

#[test]
fn a_partial_answer_tells_the_total_size() {
    let env = env();
    let got = read(&env, bytes_response(206, b"0123456789", Some("bytes 0-9/5000")), 10).unwrap();
    assert_eq!(got.bytes, b"0123456789");
    assert_eq!(got.total_size, Some(5000));
    assert!(!got.is_complete());
    let req = env.http.request(1).unwrap();
    assert_eq!(req.header("range"), Some("bytes=0-9"));
    assert_storage_headers(&req, SAMPLE_TOKEN);
    env.http.assert_done();

    // A blob smaller than the limit: 206 with the whole of it.
    let env = self::env();
    let got = read(&env, bytes_response(206, b"abc", Some("bytes 0-2/3")), 8 * 1024 * 1024).unwrap();
    assert!(got.is_complete());
    assert_eq!(env.http.request(1).unwrap().header("range"), Some("bytes=0-8388607"));
}

#[test]
fn a_whole_answer_is_cut_to_the_limit() {
    let env = env();
    let got = read(&env, bytes_response(200, b"0123456789", None), 4).unwrap();
    assert_eq!(got.bytes, b"0123");
    assert_eq!(got.total_size, Some(10));
    let env = self::env();
    // A server sending more than asked in a 206 is cut too.
    let got = read(&env, bytes_response(206, b"0123456789", Some("bytes 0-9/10")), 4).unwrap();
    assert_eq!(got.bytes, b"0123");
}

#[test]
fn range_not_satisfiable_is_an_empty_blob() {
    let env = env();
    let got = read(
        &env,
        storage_error(416, "InvalidRange", "The range specified is invalid for the current size of the resource."),
        10,
    )
    .unwrap();
    assert!(got.bytes.is_empty());
    assert_eq!(got.total_size, Some(0));
    assert!(got.is_complete());
}

#[test]
fn a_206_without_a_usable_content_range_is_a_bad_answer() {
    for cr in [None, Some("bytes 5-9/10"), Some("items 0-9/10")] {
        let env = env();
        let err = read(&env, bytes_response(206, b"0123456789", cr), 10).unwrap_err();
        assert!(matches!(err, StorageError::BadAnswer(_)), "{cr:?}: {err:?}");
    }
    let env = env();
    let got = read(&env, bytes_response(206, b"0123456789", Some("bytes 0-9/*")), 10).unwrap();
    assert_eq!(got.total_size, None);
}

#[test]
fn failures_are_typed_and_say_whether_to_retry() {
    let env = env();
    let err = read(&env, storage_error(403, "AuthorizationPermissionMismatch", "not authorized"), 10).unwrap_err();
    assert!(matches!(err, StorageError::MissingRole { role: "Storage Blob Data Reader", .. }), "{err:?}");
    assert!(!err.is_retryable());

    let env = self::env();
    let err = read(&env, storage_error(404, "BlobNotFound", "The specified blob does not exist."), 10).unwrap_err();
    assert_eq!(err, StorageError::NotYetWritten);
    assert!(err.is_retryable());

    let env = self::env();
    let busy = with_header(storage_error(503, "ServerBusy", "The server is busy."), "Retry-After", "7");
    let err = read(&env, busy, 10).unwrap_err();
    assert_eq!(
        err.clone(),
        StorageError::Azure(AzureError::Throttled {
            retry_after_secs: 7,
            code: "ServerBusy".into(),
            message: "The server is busy.".into(),
        })
    );
    assert!(err.is_retryable());

    let env = self::env();
    let err = read(&env, storage_error(500, "InternalError", "oops"), 10).unwrap_err();
    assert!(err.is_retryable(), "{err:?}");

    let env = self::env();
    let err = read(&env, storage_error(400, "InvalidHeaderValue", "bad"), 10).unwrap_err();
    assert_eq!(err, StorageError::Refused { status: 400, code: "InvalidHeaderValue".into(), message: "bad".into() });
    assert!(!err.is_retryable());

    // A 403 that is about the token, not the role.
    let env = self::env();
    let err = read(&env, storage_error(403, "AuthenticationFailed", "Server failed to authenticate"), 10).unwrap_err();
    assert!(matches!(err, StorageError::Refused { status: 403, .. }), "{err:?}");
}

#[test]
fn a_refused_token_is_replaced_once() {
    let env = env();
    env.token_once();
    env.http.expect(Method::Get, BLOB, storage_error(401, "InvalidAuthenticationInfo", "expired"));
    env.token_once();
    env.http.expect(Method::Get, BLOB, bytes_response(206, b"ab", Some("bytes 0-1/2")));
    let az = env.az();
    let ep = public();
    let blob = BlobUrl::parse(BLOB, &ep).unwrap();
    let got = BlobClient::new(&az, &ep).read_range(&blob, 2).unwrap();
    assert!(got.is_complete());
    assert_eq!(env.token_requests(), 2);
    env.http.assert_done();

    // Twice refused: the second 401 is answered, not retried for ever.
    let env = self::env();
    env.token_once();
    env.http.expect(Method::Get, BLOB, storage_error(401, "InvalidAuthenticationInfo", "expired"));
    env.token_once();
    env.http.expect(Method::Get, BLOB, storage_error(401, "InvalidAuthenticationInfo", "expired"));
    let az = env.az();
    let err = BlobClient::new(&az, &ep).read_range(&blob, 2).unwrap_err();
    assert!(matches!(err, StorageError::Refused { status: 401, .. }), "{err:?}");
    env.http.assert_done();
}

#[test]
fn a_token_failure_costs_no_storage_call() {
    let env = env();
    env.http.expect(Method::Post, token_url(LOGIN, TENANT), sample_file_response(TOKEN_OK, 503));
    let az = env.az();
    let ep = public();
    let blob = BlobUrl::parse(BLOB, &ep).unwrap();
    let err = BlobClient::new(&az, &ep).read_range(&blob, 10).unwrap_err();
    assert!(matches!(err, StorageError::Azure(AzureError::Transient { .. })), "{err:?}");
    assert_eq!(env.http.count(), 1);
}
