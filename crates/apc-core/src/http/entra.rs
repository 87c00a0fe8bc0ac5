//! Entra ID bearer tokens on the webhook ("secure webhooks", issue 12).
//!
//! An Azure Monitor action group with a secure webhook sends `Authorization: Bearer <JWT>`, a
//! token Entra ID issued to Azure Monitor's action-group application for our app registration.
//! [`verify`] accepts it only when every check passes, in this order, so that nothing about the
//! claims is looked at before the signature holds:
//!
//! 1. the token is a compact JWS of three base64url parts with JSON header and claims;
//! 2. `alg` is `RS256` (`none`, HMAC and everything else are refused before any key look-up,
//!    so a public key can never serve as an HMAC secret) and `kid` is present;
//! 3. the key named by `kid` is one of the tenant's signing keys (JWKS from the authority's
//!    OpenID metadata, cached in the key-value store at [`JWKS_KEY`]);
//! 4. the RSASSA-PKCS1-v1_5 SHA-256 signature verifies (RustCrypto `rsa`);
//! 5. `iss` is the tenant's issuer (v1 or v2 form for the configured cloud), `aud` a configured
//!    audience, `appid`/`azp` Azure Monitor's action-group application, `roles` holds the
//!    configured role, and `exp`/`nbf` hold with at most [`MAX_SKEW`] seconds of skew.
//!
//! Failures are typed ([`Rejection`]); what a caller is told ([`Rejection::words`]) names the
//! failed check coarsely and never echoes the token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use crate::domain::config::{ACTION_GROUP_APP_ID, DEFAULT_ROLE, EntraConfig};
use crate::domain::origin::Origin;
use crate::ports::{HttpClient, KvStore, Method, OutboundRequest, UnixSeconds};

/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const MAX_SKEW: i64 = 300;
/// An unknown `kid` refetches the keys at most once per this many seconds.
pub const REFETCH_INTERVAL: i64 = 300;
/// Keys older than this are refreshed when next used (kept if the refresh fails).
pub const MAX_KEYS_AGE: i64 = 24 * 3600;
/// The key-value key of the signing-key cache.
pub const JWKS_KEY: &str = "v1:jwks";
/// Longest token accepted (Entra access tokens are a few KB).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Keys kept from one JWKS at most.
const MAX_KEYS: usize = 32;
/// Largest metadata or JWKS body read.
const MAX_DOC: usize = 256 * 1024;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not a compact JWS with JSON header and claims, or a required member is missing.
    #[error("malformed token")]
    Malformed,
    /// `alg` is not `RS256` (`none`, `HS256`, …).
    #[error("algorithm not accepted")]
    Algorithm,
    /// `kid` names no signing key of the tenant.
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// `iss` is not the configured tenant's issuer.
    #[error("wrong issuer")]
    Issuer,
    /// `aud` is not a configured audience.
    #[error("wrong audience")]
    Audience,
    /// `appid`/`azp` is not Azure Monitor's action-group application.
    #[error("wrong caller application")]
    Application,
    /// `roles` lacks the configured role.
    #[error("missing role")]
    Role,
    /// `exp` has passed (beyond the skew).
    #[error("expired")]
    Expired,
    /// `nbf` is still ahead (beyond the skew).
    #[error("not yet valid")]
    NotYetValid,
}

impl Rejection {
    /// The words a caller is told: the family of the failed check, no more. Key look-up and
    /// algorithm failures read as `signature`, so a caller learns no key ids.
    pub fn words(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed token",
            Rejection::Algorithm | Rejection::UnknownKey | Rejection::Signature => "signature",
            Rejection::Issuer => "issuer",
            Rejection::Audience => "audience",
            Rejection::Application => "caller application",
            Rejection::Role => "role",
            Rejection::Expired | Rejection::NotYetValid => "expiry",
        }
    }

    /// A short name for the log line (operators see the exact check).
    pub fn code(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::Algorithm => "algorithm",
            Rejection::UnknownKey => "unknown_kid",
            Rejection::Signature => "signature",
            Rejection::Issuer => "issuer",
            Rejection::Audience => "audience",
            Rejection::Application => "appid",
            Rejection::Role => "role",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
        }
    }
}

/// Why a token could not be checked or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The token was refused (`401`).
    #[error("token refused: {0}")]
    Rejected(Rejection),
    /// The signing keys could not be fetched (`503`, retry later).
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
}

impl From<Rejection> for AuthError {
    fn from(r: Rejection) -> Self {
        AuthError::Rejected(r)
    }
}

/// The JOSE header members we read.
#[derive(Debug, Clone, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// The claims we check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Claims {
    /// Issuer.
    #[serde(default)]
    pub iss: Option<String>,
    /// Audience: a string, or (in general JWTs) a list.
    #[serde(default)]
    pub aud: Option<Audience>,
    /// v1 tokens: the caller's application id.
    #[serde(default)]
    pub appid: Option<String>,
    /// v2 tokens: the caller's application id.
    #[serde(default)]
    pub azp: Option<String>,
    /// App roles granted to the caller.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default)]
    pub exp: Option<i64>,
    /// Not before, seconds since the epoch.
    #[serde(default)]
    pub nbf: Option<i64>,
}

/// `aud` as tokens carry it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// A parsed token, not yet verified.
#[derive(Debug, Clone)]
pub struct Token<'a> {
    /// `kid`.
    pub kid: String,
    /// The claims (unverified until [`verify`] says so).
    pub claims: Claims,
    /// `header.payload`, the signed bytes.
    signing_input: &'a [u8],
    /// The signature bytes.
    signature: Vec<u8>,
}

fn b64(part: &str) -> Result<Vec<u8>, Rejection> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| Rejection::Malformed)
}

/// Parse a compact JWS and check its header: three base64url parts (no padding), JSON header and
/// claims, `alg` `RS256`, a `kid`. Looks nothing up; never panics on any input.
pub fn parse(token: &str) -> Result<Token<'_>, Rejection> {
    let token = token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(Rejection::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Rejection::Malformed);
    };
    let header: Header = serde_json::from_slice(&b64(h)?).map_err(|_| Rejection::Malformed)?;
    // Only RS256: `none` and HMAC (the classic public-key-as-secret confusion) never reach a key.
    if header.alg != "RS256" {
        return Err(Rejection::Algorithm);
    }
    let kid = header.kid.filter(|k| !k.is_empty() && k.len() <= 256).ok_or(Rejection::Malformed)?;
    let claims: Claims = serde_json::from_slice(&b64(p)?).map_err(|_| Rejection::Malformed)?;
    let signature = b64(s)?;
    if signature.is_empty() {
        return Err(Rejection::Signature);
    }
    let signing_input = &token.as_bytes()[..h.len() + 1 + p.len()];
    Ok(Token { kid, claims, signing_input, signature })
}

/// One RSA signing key of the tenant, as cached (base64url `n` and `e`, as the JWKS gives them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKey {
    /// Key id.
    pub kid: String,
    /// Modulus, base64url.
    pub n: String,
    /// Exponent, base64url.
    pub e: String,
}

impl SigningKey {
    /// The public key, when it is a usable RSA key of at least [`MIN_RSA_BITS`] bits.
    fn public_key(&self) -> Option<RsaPublicKey> {
        let n = URL_SAFE_NO_PAD.decode(self.n.trim_end_matches('=')).ok()?;
        let e = URL_SAFE_NO_PAD.decode(self.e.trim_end_matches('=')).ok()?;
        let n = BigUint::from_bytes_be(&n);
        if n.bits() < MIN_RSA_BITS {
            return None;
        }
        RsaPublicKey::new(n, BigUint::from_bytes_be(&e)).ok()
    }
}

/// Check the RS256 signature of `token` with `key`.
pub fn check_signature(token: &Token<'_>, key: &SigningKey) -> Result<(), Rejection> {
    let public = key.public_key().ok_or(Rejection::Signature)?;
    let digest = Sha256::digest(token.signing_input);
    public.verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &token.signature).map_err(|_| Rejection::Signature)
}

/// Check the claims of a token whose signature holds.
pub fn check_claims(claims: &Claims, cfg: &EntraConfig, now: UnixSeconds) -> Result<(), Rejection> {
    let iss = claims.iss.as_deref().ok_or(Rejection::Issuer)?;
    if !cfg.issuers().iter().any(|i| i == iss) {
        return Err(Rejection::Issuer);
    }
    let audience_ok = |a: &str| cfg.audiences.iter().any(|c| c == a);
    let aud_ok = match &claims.aud {
        Some(Audience::One(a)) => audience_ok(a),
        Some(Audience::Many(list)) => list.iter().any(|a| audience_ok(a)),
        None => false,
    };
    if !aud_ok {
        return Err(Rejection::Audience);
    }
    // v1 tokens name the caller in `appid`, v2 in `azp`; whichever is present must be it.
    let caller = claims.appid.as_deref().or(claims.azp.as_deref());
    if !caller.is_some_and(|c| c.eq_ignore_ascii_case(ACTION_GROUP_APP_ID))
        || claims.azp.as_deref().is_some_and(|c| !c.eq_ignore_ascii_case(ACTION_GROUP_APP_ID))
    {
        return Err(Rejection::Application);
    }
    if !claims.roles.contains(&cfg.role) {
        return Err(Rejection::Role);
    }
    let exp = claims.exp.ok_or(Rejection::Expired)?;
    if now > exp.saturating_add(MAX_SKEW) {
        return Err(Rejection::Expired);
    }
    if let Some(nbf) = claims.nbf
        && now.saturating_add(MAX_SKEW) < nbf
    {
        return Err(Rejection::NotYetValid);
    }
    Ok(())
}

/// The signing-key cache at [`JWKS_KEY`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCache {
    /// When the keys were fetched.
    pub fetched_at: UnixSeconds,
    /// Where they came from (so a refetch skips the metadata document).
    pub jwks_uri: String,
    /// The tenant's RSA signing keys.
    pub keys: Vec<SigningKey>,
}

impl KeyCache {
    /// The cached keys; anything unreadable is no cache.
    pub fn load(kv: &dyn KvStore) -> Option<KeyCache> {
        kv.get(JWKS_KEY).ok().flatten().and_then(|b| serde_json::from_slice(&b).ok())
    }

    fn save(&self, kv: &dyn KvStore) {
        // A failed write costs a fetch later, nothing more.
        if let Ok(bytes) = serde_json::to_vec(self) {
            let _ = kv.set(JWKS_KEY, &bytes);
        }
    }

    fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

fn get_json(http: &dyn HttpClient, url: &str) -> Result<Value, AuthError> {
    let req = OutboundRequest {
        method: Method::Get,
        url: url.to_string(),
        headers: vec![("accept".into(), "application/json".into())],
        body: Vec::new(),
    };
    let resp = http.send(&req).map_err(|e| AuthError::KeysUnavailable(e.to_string()))?;
    if resp.status != 200 {
        return Err(AuthError::KeysUnavailable(format!("HTTP {}", resp.status)));
    }
    if resp.body.len() > MAX_DOC {
        return Err(AuthError::KeysUnavailable("document too large".into()));
    }
    serde_json::from_slice(&resp.body).map_err(|_| AuthError::KeysUnavailable("not JSON".into()))
}

/// The RSA signing keys of a JWKS document (others, and unusable entries, are skipped).
pub fn keys_of(jwks: &Value) -> Vec<SigningKey> {
    let Some(list) = jwks.get("keys").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter(|k| k.get("kty").and_then(Value::as_str) == Some("RSA"))
        .filter(|k| k.get("use").and_then(Value::as_str).is_none_or(|u| u == "sig"))
        .filter_map(|k| {
            let s = |name: &str| k.get(name).and_then(Value::as_str).map(str::to_string);
            Some(SigningKey { kid: s("kid")?, n: s("n")?, e: s("e")? })
        })
        .take(MAX_KEYS)
        .collect()
}

/// Fetch the keys: the metadata document (unless its `jwks_uri` is known), then the JWKS. The
/// `jwks_uri` must lie on the authority's origin, the one host the component may call for it.
fn fetch(
    http: &dyn HttpClient,
    cfg: &EntraConfig,
    known_uri: Option<&str>,
    now: UnixSeconds,
) -> Result<KeyCache, AuthError> {
    let jwks_uri = match known_uri {
        Some(u) => u.to_string(),
        None => {
            let meta = get_json(http, &cfg.metadata_url())?;
            meta.get("jwks_uri")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| AuthError::KeysUnavailable("metadata without jwks_uri".into()))?
        }
    };
    match Origin::split_url(&jwks_uri) {
        Ok((origin, _)) if origin == cfg.authority => {}
        _ => return Err(AuthError::KeysUnavailable("jwks_uri is not on the authority host".into())),
    }
    let keys = keys_of(&get_json(http, &jwks_uri)?);
    if keys.is_empty() {
        return Err(AuthError::KeysUnavailable("no RSA signing key in the JWKS".into()));
    }
    Ok(KeyCache { fetched_at: now, jwks_uri, keys })
}

/// Verify a bearer token: parse, find its key (fetching the tenant's keys when needed, at most
/// once per [`REFETCH_INTERVAL`] for an unknown `kid`), check the signature, then the claims.
/// The only store write is the key cache.
pub fn verify(
    token: &str,
    cfg: &EntraConfig,
    http: &dyn HttpClient,
    kv: &dyn KvStore,
    now: UnixSeconds,
) -> Result<Claims, AuthError> {
    let token = parse(token)?;
    let cached = KeyCache::load(kv);
    // A cache from the future (a clock set back) counts as old.
    let age = cached.as_ref().map(|c| now.saturating_sub(c.fetched_at)).filter(|a| *a >= 0);
    let key = match cached.as_ref().and_then(|c| c.find(&token.kid)) {
        Some(k) if age.is_some_and(|a| a < MAX_KEYS_AGE) => k.clone(),
        Some(k) => {
            // Old keys: refresh, and keep trusting the cached key if the refresh fails.
            let uri = cached.as_ref().map(|c| c.jwks_uri.as_str());
            match fetch(http, cfg, uri, now) {
                Ok(fresh) => {
                    fresh.save(kv);
                    fresh.find(&token.kid).cloned().ok_or(Rejection::UnknownKey)?
                }
                Err(_) => k.clone(),
            }
        }
        None => {
            if age.is_some_and(|a| a < REFETCH_INTERVAL) {
                return Err(Rejection::UnknownKey.into());
            }
            let uri = cached.as_ref().map(|c| c.jwks_uri.as_str()).filter(|u| !u.is_empty());
            let fresh = fetch(http, cfg, uri, now)?;
            fresh.save(kv);
            fresh.find(&token.kid).cloned().ok_or(Rejection::UnknownKey)?
        }
    };
    check_signature(&token, &key)?;
    check_claims(&token.claims, cfg, now)?;
    Ok(token.claims)
}

/// The bearer token of an `Authorization` header value, if it is one.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    fn cfg(authority: &str) -> EntraConfig {
        EntraConfig {
            tenant_id: "tid".into(),
            authority: Origin::parse(authority).unwrap(),
            audiences: vec!["api://apc".into()],
            role: DEFAULT_ROLE.into(),
        }
    }

    #[test]
    fn parse_refuses_every_algorithm_but_rs256_before_any_key() {
        let body = enc(&serde_json::json!({"iss": "x"}));
        for alg in ["none", "HS256", "HS512", "RS384", "PS256", "ES256", "rs256", ""] {
            let t = format!("{}.{body}.c2ln", enc(&serde_json::json!({"alg": alg, "kid": "k"})));
            assert_eq!(parse(&t).unwrap_err(), Rejection::Algorithm, "{alg}");
        }
        // Unsigned `none` tokens often end in a bare dot.
        let t = format!("{}.{body}.", enc(&serde_json::json!({"alg": "none"})));
        assert_eq!(parse(&t).unwrap_err(), Rejection::Algorithm);
    }

    #[test]
    fn parse_needs_three_parts_json_and_a_kid() {
        let h = enc(&serde_json::json!({"alg": "RS256", "kid": "k"}));
        let body = enc(&serde_json::json!({"iss": "x"}));
        assert!(parse(&format!("{h}.{body}.c2ln")).is_ok());
        for bad in [
            String::new(),
            "a.b".into(),
            format!("{h}.{body}.c2ln.x"),
            format!("{h}.{body}.c2ln="),
            format!("{h}.bm90IGpzb24.c2ln"),
            format!("{}.{body}.c2ln", enc(&serde_json::json!({"alg": "RS256"}))),
            format!("{}.{body}.c2ln", enc(&serde_json::json!({"alg": "RS256", "kid": ""}))),
            "x".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(parse(&bad).is_err(), "{bad:.40}");
        }
        assert_eq!(parse(&format!("{h}.{body}.")).unwrap_err(), Rejection::Signature);
    }

    #[test]
    fn issuers_follow_the_cloud() {
        assert_eq!(
            cfg("https://login.microsoftonline.com").issuers(),
            ["https://login.microsoftonline.com/tid/v2.0".to_string(), "https://sts.windows.net/tid/".to_string()]
        );
        assert_eq!(cfg("https://login.microsoftonline.us").issuers()[1], "https://sts.windows.net/tid/");
        assert_eq!(cfg("https://login.chinacloudapi.cn").issuers()[1], "https://sts.chinacloudapi.cn/tid/");
        assert_eq!(cfg("http://127.0.0.1:8089").issuers()[1], "http://127.0.0.1:8089/tid/");
    }

    #[test]
    fn claims_are_checked_one_by_one() {
        let c = cfg("https://login.microsoftonline.com");
        let good = Claims {
            iss: Some("https://sts.windows.net/tid/".into()),
            aud: Some(Audience::One("api://apc".into())),
            appid: Some(ACTION_GROUP_APP_ID.into()),
            azp: None,
            roles: vec!["Other".into(), DEFAULT_ROLE.into()],
            exp: Some(1000),
            nbf: Some(500),
        };
        assert_eq!(check_claims(&good, &c, 900), Ok(()));
        // Skew of at most five minutes on both ends.
        assert_eq!(check_claims(&good, &c, 1300), Ok(()));
        assert_eq!(check_claims(&good, &c, 1301), Err(Rejection::Expired));
        assert_eq!(check_claims(&good, &c, 200), Ok(()));
        assert_eq!(check_claims(&good, &c, 199), Err(Rejection::NotYetValid));
        let cases: Vec<(Claims, Rejection)> = vec![
            (Claims { iss: Some("https://sts.windows.net/other/".into()), ..good.clone() }, Rejection::Issuer),
            (Claims { iss: None, ..good.clone() }, Rejection::Issuer),
            (Claims { aud: Some(Audience::One("api://other".into())), ..good.clone() }, Rejection::Audience),
            (
                Claims { appid: Some("11111111-2222-3333-4444-555555555555".into()), ..good.clone() },
                Rejection::Application,
            ),
            (Claims { appid: None, azp: Some("x".into()), ..good.clone() }, Rejection::Application),
            (Claims { appid: None, ..good.clone() }, Rejection::Application),
            (Claims { roles: vec![], ..good.clone() }, Rejection::Role),
            (Claims { exp: None, ..good.clone() }, Rejection::Expired),
        ];
        for (claims, want) in cases {
            assert_eq!(check_claims(&claims, &c, 900), Err(want), "{claims:?}");
        }
        let v2 = Claims {
            iss: Some("https://login.microsoftonline.com/tid/v2.0".into()),
            aud: Some(Audience::Many(vec!["x".into(), "api://apc".into()])),
            appid: None,
            azp: Some(ACTION_GROUP_APP_ID.into()),
            ..good
        };
        assert_eq!(check_claims(&v2, &c, 900), Ok(()));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }

    #[test]
    fn jwks_keeps_rsa_signing_keys_only() {
        let jwks = serde_json::json!({"keys": [
            {"kty": "RSA", "use": "sig", "kid": "a", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "b", "x": "1", "y": "2"},
            {"kty": "RSA", "use": "enc", "kid": "c", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "d", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "e"},
        ]});
        let kids: Vec<_> = keys_of(&jwks).into_iter().map(|k| k.kid).collect();
        assert_eq!(kids, ["a", "d"]);
        // A key too small to trust verifies nothing.
        assert!(keys_of(&jwks)[0].public_key().is_none());
    }
}
