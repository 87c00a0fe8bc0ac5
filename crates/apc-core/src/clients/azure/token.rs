//! Entra ID client-credentials token, cached sealed in the key-value store.
//!
//! The cache value never holds the token in clear. It is sealed with ChaCha20-Poly1305 under a
//! key derived by HKDF-SHA256 from the client secret (salt: tenant, client id, authority and ARM
//! endpoint; `info`: a fixed, versioned label), with a fresh random 96-bit nonce per seal. The
//! KV key, the format version and the expiry are authenticated as associated data. A rotated
//! secret, another tenant, client or ARM endpoint, a tampered or garbled value, or a value in an
//! older format fails to open and simply costs one new token request. The store is not trusted
//! with bearer tokens because other tools (and our own `/captures` dumps) can read it.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use hkdf::Hkdf;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use sha2::Sha256;

use super::Azure;
use super::error::{AzureError, MAX_MESSAGE_CHARS, from_transport, one_line, retry_after_header};
use crate::domain::config::{AzureConfig, Secret};
use crate::ports::{Method, OutboundRequest};

/// KV key holding the cached ARM token (in the `token` field of the Azure cache).
pub const TOKEN_KEY: &str = crate::clients::store::cache::CACHE_KEY;
/// The label the sealed ARM token is bound to (associated data): the cache key and its field.
const TOKEN_LABEL: &str = "v1:azure#token";
/// KV key of the cached Azure Storage token: a slot of its own, so the two never replace each
/// other and a value moved between them does not open (the key is in the associated data).
pub const STORAGE_TOKEN_KEY: &str = "v1:token:storage";
/// The Azure Storage audience. It is the same in every cloud (public, China, US Government).
pub const STORAGE_RESOURCE: &str = "https://storage.azure.com";
/// A cached token is used only while it has at least this many seconds left.
pub const TOKEN_MARGIN_SECS: i64 = 60;

/// Version of the sealed format; part of the associated data, so a value claiming another
/// version never opens.
const SEAL_VERSION: u32 = 2;
/// HKDF `info`: what the derived key is for. A new format gets a new label, hence a new key.
const HKDF_INFO: &[u8] = b"alert-packet-capture/token-cache/v2/chacha20poly1305";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Longest ciphertext we try to open (Entra tokens are a few kilobytes).
const MAX_SEALED_TOKEN: usize = 32 * 1024;

/// The tenant is one path segment: encode everything but unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Which token: where it is cached (`kv_key`: its own key, or `None` for the `token` field of the
/// Azure cache), the label its sealed value is bound to, for which resource, and the variable
/// that fixes a refused scope (none for Storage, whose audience is fixed).
#[derive(Clone, Copy)]
pub(crate) struct Slot<'s> {
    kv_key: Option<&'static str>,
    label: &'static str,
    resource: &'s str,
    scope_variable: Option<&'static str>,
}

impl<'s> Slot<'s> {
    fn arm(cfg: &'s AzureConfig) -> Self {
        Slot {
            kv_key: None,
            label: TOKEN_LABEL,
            resource: cfg.arm_endpoint.as_str(),
            scope_variable: Some("azure_arm_endpoint"),
        }
    }

    fn storage() -> Slot<'static> {
        Slot {
            kv_key: Some(STORAGE_TOKEN_KEY),
            label: STORAGE_TOKEN_KEY,
            resource: STORAGE_RESOURCE,
            scope_variable: None,
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed {
    v: u32,
    expires_at: i64,
    nonce: String,
    ciphertext: String,
    tag: String,
}

/// The sealing key: HKDF-SHA256 over the client secret, salted with everything that decides
/// which token is the right one (each part length-prefixed, so no two configurations collide).
#[cfg(test)]
fn cache_key(cfg: &AzureConfig) -> Option<Key> {
    cache_key_for(cfg, Slot::arm(cfg))
}

/// [`cache_key`] for any slot: the slot's resource takes the ARM endpoint's place in the salt.
fn cache_key_for(cfg: &AzureConfig, slot: Slot) -> Option<Key> {
    let mut salt = Vec::new();
    for part in [cfg.tenant_id.as_str(), cfg.client_id.as_str(), &cfg.authority_host, slot.resource] {
        salt.extend_from_slice(&(part.len() as u64).to_be_bytes());
        salt.extend_from_slice(part.as_bytes());
    }
    let hk = Hkdf::<Sha256>::new(Some(&salt), cfg.client_secret.expose().as_bytes());
    let mut key = [0u8; 32];
    hk.expand(HKDF_INFO, &mut key).ok()?;
    Some(key.into())
}

/// Associated data: the slot's label, the format version and the expiry, so a sealed value moved
/// to another slot, relabelled or given a later expiry does not open.
fn associated_data(label: &str, expires_at: i64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(label.len() + 16);
    aad.extend_from_slice(&(label.len() as u64).to_be_bytes());
    aad.extend_from_slice(label.as_bytes());
    aad.extend_from_slice(&SEAL_VERSION.to_be_bytes());
    aad.extend_from_slice(&expires_at.to_be_bytes());
    aad
}

/// Seal `token` with the given nonce (fresh and random in [`Azure::store_token`]).
#[cfg(test)]
fn seal(cfg: &AzureConfig, token: &str, expires_at: i64, nonce: [u8; NONCE_LEN]) -> Option<Vec<u8>> {
    seal_in(cfg, Slot::arm(cfg), token, expires_at, nonce)
}

fn seal_in(cfg: &AzureConfig, slot: Slot, token: &str, expires_at: i64, nonce: [u8; NONCE_LEN]) -> Option<Vec<u8>> {
    let cipher = ChaCha20Poly1305::new(&cache_key_for(cfg, slot)?);
    let mut buf = token.as_bytes().to_vec();
    let aad = associated_data(slot.label, expires_at);
    let tag = cipher.encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, &mut buf).ok()?;
    let sealed =
        Sealed { v: SEAL_VERSION, expires_at, nonce: to_hex(&nonce), ciphertext: to_hex(&buf), tag: to_hex(&tag) };
    serde_json::to_vec(&sealed).ok()
}

/// Open a cached value: the token and its expiry, or `None` for anything that does not open
/// (old format, garbage, another secret or configuration, tampering).
#[cfg(test)]
fn open(cfg: &AzureConfig, raw: &[u8]) -> Option<(String, i64)> {
    open_in(cfg, Slot::arm(cfg), raw)
}

fn open_in(cfg: &AzureConfig, slot: Slot, raw: &[u8]) -> Option<(String, i64)> {
    let sealed: Sealed = serde_json::from_slice(raw).ok()?;
    if sealed.v != SEAL_VERSION || sealed.ciphertext.len() > 2 * MAX_SEALED_TOKEN {
        return None;
    }
    let nonce = from_hex(&sealed.nonce).filter(|n| n.len() == NONCE_LEN)?;
    let tag = from_hex(&sealed.tag).filter(|t| t.len() == TAG_LEN)?;
    let mut buf = from_hex(&sealed.ciphertext)?;
    let cipher = ChaCha20Poly1305::new(&cache_key_for(cfg, slot)?);
    cipher
        .decrypt_in_place_detached(
            Nonce::from_slice(&nonce),
            &associated_data(slot.label, sealed.expires_at),
            &mut buf,
            Tag::from_slice(&tag),
        )
        .ok()?;
    let token = String::from_utf8(buf).ok().filter(|t| !t.is_empty())?;
    Some((token, sealed.expires_at))
}

impl Azure<'_> {
    /// A bearer token: from the KV cache if it is valid for at least 60 more seconds, else from
    /// Entra ID (then cached).
    pub fn token(&self) -> Result<Secret, AzureError> {
        self.token_in(Slot::arm(self.cfg))
    }

    /// A bearer token for Azure Storage (audience [`STORAGE_RESOURCE`]), cached like the ARM
    /// token but in its own slot ([`STORAGE_TOKEN_KEY`]).
    pub fn storage_token(&self) -> Result<Secret, AzureError> {
        self.token_in(Slot::storage())
    }

    fn token_in(&self, slot: Slot) -> Result<Secret, AzureError> {
        if let Some(token) = self.cached_token(slot) {
            return Ok(token);
        }
        self.fetch_token_in(slot)
    }

    /// Drop the cached token (after ARM refused it).
    pub(crate) fn drop_token(&self) {
        // A failed write only means the next request tries the stale token once more.
        self.update_cache(|c| c.token.take().is_some());
    }

    /// Drop the cached Storage token and fetch a new one (after Storage refused it).
    pub(crate) fn refresh_storage_token(&self) -> Result<Secret, AzureError> {
        let _ = self.world.kv.delete(STORAGE_TOKEN_KEY);
        self.fetch_token_in(Slot::storage())
    }

    fn cached_token(&self, slot: Slot) -> Option<Secret> {
        let raw = match slot.kv_key {
            Some(key) => self.world.kv.get(key).ok()??,
            None => self.with_cache(|c| c.token.as_ref().and_then(|v| serde_json::to_vec(v).ok()))?,
        };
        let (token, expires_at) = open_in(self.cfg, slot, &raw)?;
        if expires_at.saturating_sub(self.world.clock.now()) < TOKEN_MARGIN_SECS {
            return None;
        }
        Some(Secret::new(token))
    }

    /// Ask Entra ID for a new token and cache it.
    pub(crate) fn fetch_token(&self) -> Result<Secret, AzureError> {
        self.fetch_token_in(Slot::arm(self.cfg))
    }

    fn fetch_token_in(&self, slot: Slot) -> Result<Secret, AzureError> {
        let cfg = self.cfg;
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            cfg.authority_host.trim_end_matches('/'),
            utf8_percent_encode(&cfg.tenant_id, SEGMENT)
        );
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &cfg.client_id)
            .append_pair("scope", &format!("{}/.default", slot.resource.trim_end_matches('/')))
            .append_pair("client_secret", cfg.client_secret.expose())
            .append_pair("grant_type", "client_credentials")
            .finish();
        let request = OutboundRequest {
            method: Method::Post,
            url,
            headers: vec![
                ("content-type".to_string(), "application/x-www-form-urlencoded".to_string()),
                ("accept".to_string(), "application/json".to_string()),
                ("user-agent".to_string(), super::USER_AGENT.to_string()),
            ],
            body: body.into_bytes(),
        };
        let resp = self.send(&request).map_err(|e| from_transport(&e, "azure_authority_host"))?;
        let json: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);

        if (200..300).contains(&resp.status) {
            let token = json.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty());
            let Some(token) = token else {
                return Err(AzureError::transient("Entra ID answered without an access_token"));
            };
            // `expires_in` is a number in v2.0 answers and a string in some older ones.
            let expires_in = match json.get("expires_in") {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
            .unwrap_or(0);
            if expires_in > TOKEN_MARGIN_SECS {
                self.store_token(slot, token, self.world.clock.now().saturating_add(expires_in));
            }
            return Ok(Secret::new(token));
        }
        Err(self.entra_error(slot, resp.status, &json, retry_after_header(&resp, self.world.clock.now())))
    }

    /// Sort an Entra ID error: configuration problems name the variable to fix. Branches on
    /// `error` and `error_codes` only, never on the description text.
    fn entra_error(&self, slot: Slot, status: u16, json: &Value, retry_after: Option<u64>) -> AzureError {
        let error = json.get("error").and_then(Value::as_str).unwrap_or("").to_string();
        let codes: Vec<i64> = json
            .get("error_codes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        let has = |c: i64| codes.contains(&c);

        if status == 429 {
            return AzureError::Throttled {
                retry_after_secs: retry_after.unwrap_or(super::error::DEFAULT_RETRY_AFTER_SECS),
                code: if error.is_empty() { "HTTP429".to_string() } else { error },
                message: "Entra ID throttled the token request".to_string(),
            };
        }
        if status >= 500 {
            return AzureError::Transient {
                detail: format!("Entra ID answered {status}"),
                retry_after_secs: retry_after,
            };
        }

        let variable = if has(7_000_215) || has(7_000_222) {
            Some("azure_client_secret")
        } else if has(700_016) {
            Some("azure_client_id")
        } else if has(90_002) {
            Some("azure_tenant_id")
        } else {
            match error.as_str() {
                "invalid_scope" => slot.scope_variable,
                "invalid_tenant" => Some("azure_tenant_id"),
                "unauthorized_client" => Some("azure_client_id"),
                "invalid_client" => Some("azure_client_secret"),
                _ => None,
            }
        };
        let codes_text = codes.iter().map(|c| format!("AADSTS{c}")).collect::<Vec<_>>().join(",");
        let what = match variable {
            Some("azure_client_secret") => {
                "the client secret is wrong or expired; create a new one and set azure_client_secret"
            }
            Some("azure_client_id") => {
                "the application was not found in the tenant; check azure_client_id (and azure_tenant_id)"
            }
            Some("azure_tenant_id") => {
                "the tenant was not found; check azure_tenant_id and the cloud (azure_authority_host)"
            }
            Some(_) => "the token scope is not valid; azure_arm_endpoint must be the ARM endpoint of the cloud",
            None => "Entra ID refused the token request",
        };
        let description = json.get("error_description").and_then(Value::as_str).unwrap_or("");
        // The first line of the description is for a person; later lines are trace ids.
        let first = description.split(['\r', '\n']).next().unwrap_or("");
        let detail = self.scrub(&format!("{what} (Entra {status} {error} {codes_text}): {first}"));
        match variable {
            Some(variable) => AzureError::Config { variable, detail },
            None => AzureError::Permanent {
                status,
                code: if error.is_empty() { format!("HTTP{status}") } else { one_line(&error, 100) },
                message: detail,
            },
        }
    }

    /// One line, cut, with the client secret removed should any answer echo it.
    fn scrub(&self, s: &str) -> String {
        let secret = self.cfg.client_secret.expose();
        let s = if secret.is_empty() { s.to_string() } else { s.replace(secret, "<redacted>") };
        one_line(&s, MAX_MESSAGE_CHARS)
    }

    fn store_token(&self, slot: Slot, token: &str, expires_at: i64) {
        let mut nonce = [0u8; NONCE_LEN];
        // Without randomness there is no safe nonce: skip the cache, costing a token request.
        if getrandom::fill(&mut nonce).is_err() {
            return;
        }
        if let Some(value) = seal_in(self.cfg, slot, token, expires_at, nonce) {
            // A KV failure only costs a token request next time.
            match slot.kv_key {
                Some(key) => {
                    let _ = self.world.kv.set(key, &value);
                }
                None => {
                    if let Ok(sealed) = serde_json::from_slice(&value) {
                        self.update_cache(|c| {
                            c.token = Some(sealed);
                            true
                        });
                    }
                }
            }
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    s
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 64 * 1024 {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes().chunks(2).map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::origin::Origin;
    use serde_json::json;

    fn cfg() -> AzureConfig {
        AzureConfig {
            tenant_id: "tenant-a".into(),
            client_id: "client-a".into(),
            client_secret: Secret::new("secret-a"),
            authority_host: Origin::parse("https://login.microsoftonline.com").unwrap(),
            arm_endpoint: Origin::parse("https://management.azure.com").unwrap(),
        }
    }

    const NONCE: [u8; NONCE_LEN] = [7; NONCE_LEN];

    #[test]
    fn hex_round_trip_and_rejects_garbage() {
        let bytes = [0u8, 1, 0x7f, 0x80, 0xff];
        assert_eq!(to_hex(&bytes), "00017f80ff");
        assert_eq!(from_hex("00017f80ff").unwrap(), bytes);
        assert!(from_hex("0").is_none());
        assert!(from_hex("zz").is_none());
        assert!(from_hex("é1").is_none());
    }

    #[test]
    fn sealed_value_opens_with_the_same_configuration_only() {
        let sealed = seal(&cfg(), "tok-123", 5000, NONCE).unwrap();
        assert_eq!(open(&cfg(), &sealed), Some(("tok-123".to_string(), 5000)));
        assert!(!String::from_utf8_lossy(&sealed).contains("tok-123"));

        let mut other = cfg();
        other.client_secret = Secret::new("secret-b");
        assert_eq!(open(&other, &sealed), None, "another secret");
        let mut other = cfg();
        other.tenant_id = "tenant-b".into();
        assert_eq!(open(&other, &sealed), None, "another tenant");
        let mut other = cfg();
        other.client_id = "client-b".into();
        assert_eq!(open(&other, &sealed), None, "another client");
        let mut other = cfg();
        other.arm_endpoint = Origin::parse("https://management.chinacloudapi.cn").unwrap();
        assert_eq!(open(&other, &sealed), None, "another cloud");
        // The length prefixes keep `tenant-a`+`client-a` apart from `tenant-ac`+`lient-a`.
        let mut other = cfg();
        other.tenant_id = "tenant-ac".into();
        other.client_id = "lient-a".into();
        assert_eq!(open(&other, &sealed), None, "shifted boundary");
    }

    #[test]
    fn the_key_is_hkdf_sha256_of_the_secret_with_the_documented_salt_and_info() {
        // The salt spelled out by hand (8-byte big-endian length, then the bytes, for tenant,
        // client, authority and ARM endpoint), so a change to the derivation's inputs shows here.
        let mut salt = Vec::new();
        for part in ["tenant-a", "client-a", "https://login.microsoftonline.com", "https://management.azure.com"] {
            salt.extend_from_slice(&(part.len() as u64).to_be_bytes());
            salt.extend_from_slice(part.as_bytes());
        }
        let mut okm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&salt), b"secret-a").expand(HKDF_INFO, &mut okm).unwrap();
        assert_eq!(cache_key(&cfg()).unwrap().as_slice(), &okm);
        // Any other secret gives another key.
        let mut other = cfg();
        other.client_secret = Secret::new("secret-b");
        assert_ne!(cache_key(&other).unwrap().as_slice(), &okm);
    }

    #[test]
    fn the_arm_and_storage_slots_never_open_each_other() {
        let c = cfg();
        let arm = seal_in(&c, Slot::arm(&c), "tok-arm", 5000, NONCE).unwrap();
        let storage = seal_in(&c, Slot::storage(), "tok-storage", 5000, NONCE).unwrap();
        assert_eq!(open_in(&c, Slot::arm(&c), &arm), Some(("tok-arm".to_string(), 5000)));
        assert_eq!(open_in(&c, Slot::storage(), &storage), Some(("tok-storage".to_string(), 5000)));
        assert_eq!(open_in(&c, Slot::storage(), &arm), None);
        assert_eq!(open_in(&c, Slot::arm(&c), &storage), None);
    }

    #[test]
    fn tampering_relabelling_and_old_formats_do_not_open() {
        let sealed = seal(&cfg(), "tok-123", 5000, NONCE).unwrap();
        let v: Value = serde_json::from_slice(&sealed).unwrap();
        assert_eq!(v["v"], json!(2));
        assert_eq!(v["nonce"].as_str().unwrap().len(), 2 * NONCE_LEN);
        assert_eq!(v["tag"].as_str().unwrap().len(), 2 * TAG_LEN);

        let edited = |f: &dyn Fn(&mut Value)| {
            let mut v = v.clone();
            f(&mut v);
            open(&cfg(), v.to_string().as_bytes())
        };
        assert_eq!(edited(&|v| v["expires_at"] = json!(9_999_999)), None, "later expiry");
        assert_eq!(edited(&|v| v["v"] = json!(3)), None, "another version");
        assert_eq!(edited(&|v| v["v"] = json!(1)), None, "old version label");
        assert_eq!(edited(&|v| v["nonce"] = json!("00".repeat(NONCE_LEN))), None, "another nonce");
        assert_eq!(edited(&|v| v["nonce"] = json!("00".repeat(16))), None, "nonce of the wrong size");
        assert_eq!(edited(&|v| v["tag"] = json!("00".repeat(32))), None, "tag of the wrong size");
        assert_eq!(edited(&|v| v["tag"] = json!("zz")), None, "tag not hex");
        let flipped = {
            let mut c = v["ciphertext"].as_str().unwrap().to_string();
            let first = if c.starts_with('0') { "1" } else { "0" };
            c.replace_range(0..1, first);
            c
        };
        assert_eq!(edited(&|v| v["ciphertext"] = json!(flipped.clone())), None, "flipped ciphertext");
        assert_eq!(edited(&|v| v["ciphertext"] = json!("ab".repeat(MAX_SEALED_TOKEN + 1))), None, "oversized");
        // The v1 shape (no version, 16-byte nonce, 32-byte SHA-256 tag) is a miss.
        let v1 =
            json!({"expires_at": 5000, "nonce": "11".repeat(16), "ciphertext": "22".repeat(7), "tag": "33".repeat(32)});
        assert_eq!(open(&cfg(), v1.to_string().as_bytes()), None);
        for garbage in [&b""[..], b"null", b"\xff{", b"{}", b"[1,2]"] {
            assert_eq!(open(&cfg(), garbage), None);
        }
    }

    #[test]
    fn every_seal_draws_a_fresh_nonce() {
        use crate::ports::World;
        use crate::testing::{FixedClock, MemKv, NoHttp};
        let (http, kv, clock) = (NoHttp::default(), MemKv::new(), FixedClock(1000));
        let c = cfg();
        let az = Azure::new(&c, World { http: &http, kv: &kv, clock: &clock });
        let sealed = || -> Value {
            let cache: Value = serde_json::from_str(&kv.get_string(TOKEN_KEY).unwrap()).unwrap();
            cache["token"].clone()
        };
        az.store_token(Slot::arm(&c), "tok-123", 9000);
        az.flush();
        let first = sealed();
        az.store_token(Slot::arm(&c), "tok-123", 9000);
        az.flush();
        let second = sealed();
        assert_ne!(first["nonce"], second["nonce"]);
        assert_ne!(first["ciphertext"], second["ciphertext"]);
        assert_eq!(az.cached_token(Slot::arm(&c)).map(|t| t.expose().to_string()).as_deref(), Some("tok-123"));
        assert_eq!(http.count(), 0);
    }
}
