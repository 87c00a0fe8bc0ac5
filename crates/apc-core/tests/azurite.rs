//! Our Storage client (issue 10) against Azurite, Microsoft's Storage emulator: an independent
//! check of the user delegation key request, the user-delegation SAS we sign (version
//! `2025-01-05`) and range reads, over real HTTPS.
//!
//! Ignored by default: `scripts/azurite.sh` installs Azurite, starts it with `--oauth basic` on
//! a free loopback port with a throwaway certificate, and runs these with `APC_AZURITE_URL`
//! (`https://127.0.0.1:{port}`) and `APC_AZURITE_CA` (the PEM of the CA that signed it). Azurite
//! in that mode decodes a bearer JWT and checks its issuer, audience and lifetime but not its
//! signature, so the token request of our client is answered here with a JWT minted for
//! `https://storage.azure.com`; every other request goes to Azurite. Azurite derives a user
//! delegation key's value from its fields and checks a SAS with its own string-to-sign, so a
//! link it serves is one it found correctly signed.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apc_core::azure::storage::{
    BlobBytes, BlobClient, BlobEndpoint, BlobUrl, DownloadLink, SAS_VERSION, STORAGE_API_VERSION, StorageError,
    user_delegation_sas,
};
use apc_core::azure::{Azure, STORAGE_RESOURCE};
use apc_core::config::AzureConfig;
use apc_core::origin::Origin;
use apc_core::ports::{Clock, HttpClient, Method, OutboundRequest, OutboundResponse, TransportError, World};
use apc_core::timefmt::rfc3339;
use apc_testkit::MemKv;
use apc_testkit::azure::azure_config;
use apc_testkit::consts::{ARM, LOGIN, SECRET, TENANT, token_url};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Azurite's built-in account, addressed path-style (`/{account}/{container}/{blob}`).
const ACCOUNT: &str = "devstoreaccount1";
/// The object id our minted token names (Azurite puts it in the key as `SignedOid`).
const OID: &str = "6d2b7a1c-0f3e-4c55-9a41-0c1e2b3d4f50";
/// A blob name with a space and a non-ASCII letter: the URL carries it percent-encoded, the SAS
/// signs it decoded.
const ODD_BLOB: &str = "vm1/2026/12/01/packet%20capture%20%C3%BC.cap";
/// Largest body the transport reads.
const MAX_BODY: u64 = 16 * 1024 * 1024;

struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    }
}

/// A JWT as Entra ID would issue for Storage (v1 issuer, `aud`, `oid`, `tid`, lifetime),
/// HS256-signed under a throwaway key: Azurite's basic OAuth does not check signatures.
fn mint_storage_token(now: i64) -> String {
    let part = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let header = part(serde_json::json!({"alg": "HS256", "typ": "JWT"}));
    let claims = part(serde_json::json!({
        "aud": STORAGE_RESOURCE,
        "iss": format!("https://sts.windows.net/{TENANT}/"),
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + 3600,
        "oid": OID,
        "tid": TENANT,
        "appid": apc_testkit::consts::CLIENT_ID,
    }));
    let mut mac = Hmac::<Sha256>::new_from_slice(b"azurite-does-not-check-this").expect("any key length");
    mac.update(format!("{header}.{claims}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{claims}.{sig}")
}

/// The outbound port of these tests: the token request is answered in process; requests to
/// Azurite's origin go over HTTPS trusting only the script's CA; anything else is refused, as
/// Spin's `allowed_outbound_hosts` would.
struct Transport {
    agent: ureq::Agent,
    azurite: Origin,
    token_url: String,
    jwt: String,
    token_requests: Cell<u32>,
}

impl Transport {
    fn new(azurite: Origin, ca_pem: &[u8], now: i64) -> Transport {
        let ca = ureq::tls::Certificate::from_pem(ca_pem).expect("APC_AZURITE_CA is a PEM certificate");
        let tls =
            ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![ca]))).build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            // Loopback only: a proxy from the environment must not see these requests.
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        Transport {
            agent: ureq::Agent::new_with_config(config),
            azurite,
            token_url: token_url(LOGIN, TENANT),
            jwt: mint_storage_token(now),
            token_requests: Cell::new(0),
        }
    }

    fn answer_token_request(&self, request: &OutboundRequest) -> OutboundResponse {
        self.token_requests.set(self.token_requests.get() + 1);
        let form: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
        let scope = form.iter().find(|(k, _)| k == "scope").map(|(_, v)| v.as_str());
        let json = if request.method == Method::Post && scope == Some("https://storage.azure.com/.default") {
            serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": self.jwt})
        } else {
            serde_json::json!({"error": "invalid_scope", "error_description": format!("this test serves Storage tokens only, not {scope:?}")})
        };
        let status = if json.get("access_token").is_some() { 200 } else { 400 };
        OutboundResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: json.to_string().into_bytes(),
        }
    }
}

impl HttpClient for Transport {
    fn send(&self, request: &OutboundRequest) -> Result<OutboundResponse, TransportError> {
        if request.url == self.token_url {
            return Ok(self.answer_token_request(request));
        }
        let (origin, _) = Origin::split_url(&request.url).map_err(|e| TransportError::Other(e.to_string()))?;
        if origin != self.azurite {
            return Err(TransportError::Denied(origin.to_string()));
        }
        let mut builder = ureq::http::Request::builder().method(request.method.as_str()).uri(&request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let bad = |e: ureq::http::Error| TransportError::Other(e.to_string());
        // ureq refuses a body (even an empty one) on GET and DELETE.
        let result = if request.body.is_empty() && matches!(request.method, Method::Get | Method::Delete) {
            self.agent.run(builder.body(()).map_err(bad)?)
        } else {
            self.agent.run(builder.body(request.body.clone()).map_err(bad)?)
        };
        let mut response = result.map_err(|e| match e {
            ureq::Error::Timeout(_) => TransportError::Timeout,
            e => TransportError::Connection(e.to_string()),
        })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| TransportError::Connection(e.to_string()))?;
        Ok(OutboundResponse { status, headers, body })
    }
}

/// Azurite's address from the script, the ports, and our configuration.
struct Fixture {
    http: Transport,
    kv: MemKv,
    clock: SystemClock,
    cfg: AzureConfig,
    endpoint: BlobEndpoint,
}

impl Fixture {
    fn new() -> Fixture {
        let url = std::env::var("APC_AZURITE_URL").expect("APC_AZURITE_URL is unset: run scripts/azurite.sh");
        let ca = std::env::var("APC_AZURITE_CA").expect("APC_AZURITE_CA is unset: run scripts/azurite.sh");
        let origin = Origin::parse(&url).expect("APC_AZURITE_URL is an origin");
        let pem = std::fs::read(&ca).expect("APC_AZURITE_CA is readable");
        let clock = SystemClock;
        Fixture {
            http: Transport::new(origin.clone(), &pem, clock.now()),
            kv: MemKv::new(),
            clock,
            cfg: azure_config(SECRET, LOGIN, ARM),
            endpoint: BlobEndpoint::emulator(origin, ACCOUNT).expect("Azurite's account name is valid"),
        }
    }

    fn az(&self) -> Azure<'_> {
        Azure::new(&self.cfg, World { http: &self.http, kv: &self.kv, clock: &self.clock })
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// `{origin}/{account}`, as Azurite lays out path-style URLs.
    fn service_root(&self) -> String {
        format!("{}/{ACCOUNT}", self.endpoint.origin().as_str())
    }

    /// The URL of `blob` (percent-encoded as it is sent) in `container`.
    fn blob_url(&self, container: &str, blob: &str) -> String {
        format!("{}/{container}/{blob}", self.service_root())
    }

    /// A request with the minted bearer token (test set-up, not our client).
    fn with_token(&self, method: Method, url: &str, extra: &[(&str, &str)], body: &[u8]) -> OutboundResponse {
        let mut headers = vec![
            ("authorization".to_string(), format!("Bearer {}", self.http.jwt)),
            ("x-ms-version".to_string(), STORAGE_API_VERSION.to_string()),
        ];
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.plain(OutboundRequest { method, url: url.to_string(), headers, body: body.to_vec() })
    }

    fn plain(&self, request: OutboundRequest) -> OutboundResponse {
        self.http.send(&request).unwrap_or_else(|e| panic!("{} {}: {e}", request.method, request.url))
    }

    /// A request with no credentials but what the URL carries (a SAS).
    fn anonymous(&self, method: Method, url: &str, body: &[u8]) -> OutboundResponse {
        let headers = if method == Method::Put {
            vec![("x-ms-blob-type".to_string(), "BlockBlob".to_string())]
        } else {
            Vec::new()
        };
        self.plain(OutboundRequest { method, url: url.to_string(), headers, body: body.to_vec() })
    }

    /// A new container named after `label` (unique per run, so reruns on one Azurite agree).
    fn container(&self, label: &str) -> String {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let name = format!("{label}-{}-{nanos}", self.now());
        let resp = self.with_token(Method::Put, &format!("{}/{name}?restype=container", self.service_root()), &[], b"");
        assert_eq!(resp.status, 201, "create container {name}: {}", text(&resp));
        name
    }

    /// Upload `bytes` as a block blob; its URL.
    fn put_blob(&self, container: &str, blob: &str, bytes: &[u8]) -> String {
        let url = self.blob_url(container, blob);
        let resp = self.with_token(
            Method::Put,
            &url,
            &[("x-ms-blob-type", "BlockBlob"), ("content-type", "application/octet-stream")],
            bytes,
        );
        assert_eq!(resp.status, 201, "upload {url}: {}", text(&resp));
        url
    }

    /// A user delegation key from our client, valid from a minute ago for an hour.
    fn key(&self) -> apc_core::azure::storage::UserDelegationKey {
        let az = self.az();
        let now = self.now();
        BlobClient::new(&az, &self.endpoint)
            .get_user_delegation_key(now - 60, now + 3600)
            .expect("a user delegation key")
    }

    /// Our SAS link for `url`, valid until `expiry`.
    fn link(&self, url: &str, expiry: i64) -> DownloadLink {
        let blob = BlobUrl::parse(url, &self.endpoint).expect("Azurite's blob URL passes our host check");
        user_delegation_sas(&self.key(), &blob, expiry).expect("a SAS")
    }

    fn read_range(&self, url: &str, max: u64) -> Result<BlobBytes, StorageError> {
        let az = self.az();
        let blob = BlobUrl::parse(url, &self.endpoint).expect("Azurite's blob URL passes our host check");
        BlobClient::new(&az, &self.endpoint).read_range(&blob, max)
    }
}

/// Status, error code and body of an answer, for assertion messages.
fn text(resp: &OutboundResponse) -> String {
    format!(
        "{} {} {}",
        resp.status,
        resp.header("x-ms-error-code").unwrap_or("-"),
        String::from_utf8_lossy(&resp.body).chars().take(400).collect::<String>()
    )
}

/// Azurite's code for a SAS it does not accept (signature, times, resource); Azure Storage
/// itself says `AuthenticationFailed` there.
const SAS_REFUSED: &str = "AuthorizationFailure";
/// The code for a SAS whose signature holds but whose permissions do not cover the operation.
const NOT_PERMITTED: &str = "AuthorizationPermissionMismatch";

/// A 403 with `code`.
fn assert_refused(resp: &OutboundResponse, code: &str, what: &str) {
    assert_eq!((resp.status, resp.header("x-ms-error-code")), (403, Some(code)), "{what}: {}", text(resp));
}

/// `n` bytes that are not all alike, so a wrong offset shows.
fn capture_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i.wrapping_mul(7919) % 251) as u8).collect()
}

/// The link's query parameters, decoded.
fn params(link: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(link.split_once('?').expect("a query").1.as_bytes()).into_owned().collect()
}

fn param(link: &str, name: &str) -> Option<String> {
    params(link).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// `link` with `sig` replaced by a valid-looking signature one bit off.
fn with_flipped_signature(link: &str) -> String {
    let (base, _) = link.split_once("&sig=").expect("sig is last");
    let mut sig = STANDARD.decode(param(link, "sig").expect("a sig")).expect("sig is base64");
    sig[0] ^= 1;
    let enc = form_urlencoded::byte_serialize(STANDARD.encode(sig).as_bytes()).collect::<String>();
    format!("{base}&sig={enc}")
}

#[test]
#[ignore = "needs Azurite: run scripts/azurite.sh"]
fn azurite_grants_a_user_delegation_key_to_our_request() {
    let f = Fixture::new();
    let az = f.az();
    let now = f.now();
    let key = BlobClient::new(&az, &f.endpoint).get_user_delegation_key(now - 60, now + 3600).unwrap();
    // Azurite echoes the token's identity and the times we asked for: our KeyInfo body and the
    // answer's XML were both understood.
    assert_eq!(key.signed_oid, OID);
    assert_eq!(key.signed_tid, TENANT);
    assert_eq!(key.signed_start, rfc3339(now - 60));
    assert_eq!(key.signed_expiry, rfc3339(now + 3600));
    assert_eq!(key.expires_at(), Some(now + 3600));
    assert_eq!(key.signed_service, "b");
    assert!(!key.signed_version.is_empty());
    assert_eq!(f.http.token_requests.get(), 1, "one Storage token, from the token endpoint");

    // Without a token Azurite refuses the key (so the grant above was the token's doing).
    let url = format!("{}/?restype=service&comp=userdelegationkey", f.service_root());
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><KeyInfo><Start>{}</Start><Expiry>{}</Expiry></KeyInfo>",
        rfc3339(now - 60),
        rfc3339(now + 3600)
    );
    let refused = f.anonymous(Method::Post, &url, body.as_bytes());
    assert_refused(&refused, SAS_REFUSED, "a key request without a token");
}

#[test]
#[ignore = "needs Azurite: run scripts/azurite.sh"]
fn our_sas_downloads_the_blob_without_a_token() {
    let f = Fixture::new();
    let c = f.container("download");
    for (name, size) in [("vm1/2026/12/01/capture.cap", 5000), (ODD_BLOB, 777)] {
        let bytes = capture_bytes(size);
        let url = f.put_blob(&c, name, &bytes);
        let link = f.link(&url, f.now() + 900);
        let exposed = link.expose();
        assert!(exposed.starts_with(&format!("{url}?")), "the link is the blob URL plus a SAS");
        assert_eq!(param(exposed, "sv").as_deref(), Some(SAS_VERSION));
        assert_eq!(param(exposed, "sp").as_deref(), Some("r"));
        assert_eq!(param(exposed, "sr").as_deref(), Some("b"));
        assert_eq!(param(exposed, "spr").as_deref(), Some("https"));

        let got = f.anonymous(Method::Get, exposed, b"");
        assert_eq!(got.status, 200, "{name}: Azurite refused our SAS: {}", text(&got));
        assert_eq!(got.body, bytes, "{name}: the link serves the uploaded bytes");
    }
}

#[test]
#[ignore = "needs Azurite: run scripts/azurite.sh"]
fn a_changed_link_is_refused() {
    let f = Fixture::new();
    let c = f.container("changed");
    let url = f.put_blob(&c, "a.cap", &capture_bytes(300));
    let other = f.put_blob(&c, "b.cap", &capture_bytes(400));
    let link = f.link(&url, f.now() + 900);
    let good = f.anonymous(Method::Get, link.expose(), b"");
    assert_eq!(good.status, 200, "the unchanged link works: {}", text(&good));

    let flipped = f.anonymous(Method::Get, &with_flipped_signature(link.expose()), b"");
    assert_refused(&flipped, SAS_REFUSED, "a signature one bit off");

    // The permissions are signed: widening them without re-signing fails.
    let widened = link.expose().replacen("?sp=r&", "?sp=rw&", 1);
    assert_ne!(widened, link.expose());
    let resp = f.anonymous(Method::Get, &widened, b"");
    assert_refused(&resp, SAS_REFUSED, "sp=rw with the sp=r signature");

    // The blob is signed: the same query on another blob of the container fails.
    let query = link.expose().split_once('?').unwrap().1;
    let moved = f.anonymous(Method::Get, &format!("{other}?{query}"), b"");
    assert_refused(&moved, SAS_REFUSED, "a.cap's SAS on b.cap");
}

#[test]
#[ignore = "needs Azurite: run scripts/azurite.sh"]
fn an_expired_link_is_refused() {
    let f = Fixture::new();
    let c = f.container("expired");
    let url = f.put_blob(&c, "old.cap", &capture_bytes(100));
    let expired = f.link(&url, f.now() - 120);
    let resp = f.anonymous(Method::Get, expired.expose(), b"");
    assert_refused(&resp, SAS_REFUSED, "a link that expired two minutes ago");
    // The same key and blob with a future expiry work: it was the expiry that was refused.
    let live = f.link(&url, f.now() + 900);
    assert_eq!(f.anonymous(Method::Get, live.expose(), b"").status, 200);
}

#[test]
#[ignore = "needs Azurite: run scripts/azurite.sh"]
fn a_read_only_link_cannot_write_or_delete() {
    let f = Fixture::new();
    let c = f.container("readonly");
    let bytes = capture_bytes(1000);
    let url = f.put_blob(&c, "keep.cap", &bytes);
    let link = f.link(&url, f.now() + 900);

    let put = f.anonymous(Method::Put, link.expose(), b"overwritten");
    // The signature is accepted; the permission `r` is what refuses these.
    assert_refused(&put, NOT_PERMITTED, "PUT with a read-only SAS");
    let delete = f.anonymous(Method::Delete, link.expose(), b"");
    assert_refused(&delete, NOT_PERMITTED, "DELETE with a read-only SAS");
    // A new blob next to it cannot be made with this link's query either.
    let query = link.expose().split_once('?').unwrap().1;
    let create = f.anonymous(Method::Put, &format!("{}?{query}", f.blob_url(&c, "new.cap")), b"new");
    assert_refused(&create, SAS_REFUSED, "PUT of another blob with the SAS");

    let after = f.anonymous(Method::Get, link.expose(), b"");
    assert_eq!(after.status, 200, "{}", text(&after));
    assert_eq!(after.body, bytes, "the blob is unchanged");
}

#[test]
#[ignore = "needs Azurite: run scripts/azurite.sh"]
fn read_range_gives_the_head_and_the_total() {
    let f = Fixture::new();
    let c = f.container("range");
    let bytes = capture_bytes(10_000);
    let url = f.put_blob(&c, "big.cap", &bytes);

    let head = f.read_range(&url, 100).unwrap();
    assert_eq!(head.bytes, bytes[..100], "the first 100 bytes");
    assert_eq!(head.total_size, Some(10_000), "the total from Content-Range");
    assert!(!head.is_complete());

    let one = f.read_range(&url, 0).unwrap();
    assert_eq!(one.bytes, bytes[..1], "a limit of 0 reads one byte");
    assert_eq!(one.total_size, Some(10_000));

    let exact = f.read_range(&url, 10_000).unwrap();
    assert_eq!(exact.bytes, bytes);
    assert!(exact.is_complete());

    // A range past the end: Storage answers the bytes there are (206, `bytes 0-9999/10000`).
    let beyond = f.read_range(&url, 1_000_000).unwrap();
    assert_eq!(beyond.bytes, bytes);
    assert_eq!(beyond.total_size, Some(10_000));
    assert!(beyond.is_complete());

    // The odd name is read through our percent-encoded URL too.
    let odd = f.put_blob(&c, ODD_BLOB, &bytes[..50]);
    let got = f.read_range(&odd, 20).unwrap();
    assert_eq!((got.bytes.as_slice(), got.total_size), (&bytes[..20], Some(50)));
}

#[test]
#[ignore = "needs Azurite: run scripts/azurite.sh"]
fn read_range_of_an_empty_or_missing_blob() {
    let f = Fixture::new();
    let c = f.container("empty");
    let url = f.put_blob(&c, "empty.cap", b"");
    // No byte 0 to serve: Storage answers 416, which we read as an empty, complete blob.
    let empty = f.read_range(&url, 100).unwrap();
    assert_eq!(empty, BlobBytes { bytes: Vec::new(), total_size: Some(0) });
    assert!(empty.is_complete());

    let missing = f.read_range(&f.blob_url(&c, "not-yet.cap"), 100).unwrap_err();
    assert_eq!(missing, StorageError::NotYetWritten);
    assert!(missing.is_retryable(), "Network Watcher may still upload it");
}
