//! Entra ID as the issuer of Azure Monitor's secure-webhook tokens (issue 12): RSA signing keys
//! generated from a seed (deterministic across runs), the tenant's JWKS, action-group tokens,
//! and every malformed token a verifier must refuse ([`BadToken`]).
//!
//! Keys are RSA 2048 from a ChaCha RNG seeded per key generation; they are generated once per
//! process and seed, so many emulators in one test binary pay for key generation once.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Azure Monitor's action-group application id (the `appid` of its tokens).
pub const ACTION_GROUP_APP_ID: &str = "461e8683-5575-4561-ac7f-899cc907d62a";
/// A tenant other than the emulator's, for [`BadToken::OtherTenant`].
pub const OTHER_TENANT: &str = "99999999-8888-7777-6666-555555555555";
/// Seed of the key that signs [`BadToken::WrongSignature`] (never in the JWKS).
const IMPOSTOR_SEED: u64 = 0x1badc0de;
/// RSA modulus size of generated keys.
const BITS: usize = 2048;

/// A malformed or otherwise unacceptable action-group token (`snake_case` in the control API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadToken {
    /// Signed with a key the tenant does not publish, under a published `kid`.
    WrongSignature,
    /// `iss` of another issuer.
    WrongIssuer,
    /// `aud` of another application.
    WrongAudience,
    /// `appid` of another caller than Azure Monitor's action groups.
    WrongAppId,
    /// No `roles`.
    MissingRole,
    /// `exp` an hour ago.
    Expired,
    /// `nbf` an hour ahead.
    NotYetValid,
    /// `alg: none`, no signature.
    AlgNone,
    /// `alg: HS256`, HMAC keyed with the tenant's public key (PEM): the key-confusion attack.
    Hs256WithPublicKey,
    /// A `kid` the tenant never published (validly signed otherwise).
    UnknownKid,
    /// A valid token of another tenant (its `iss` and `tid`), signed with the same keys: Entra
    /// signs every tenant's tokens with the same keys, so only the issuer tells them apart.
    OtherTenant,
    /// Not a JWT at all.
    Garbage,
}

impl BadToken {
    /// Every kind.
    pub const ALL: [BadToken; 12] = [
        BadToken::WrongSignature,
        BadToken::WrongIssuer,
        BadToken::WrongAudience,
        BadToken::WrongAppId,
        BadToken::MissingRole,
        BadToken::Expired,
        BadToken::NotYetValid,
        BadToken::AlgNone,
        BadToken::Hs256WithPublicKey,
        BadToken::UnknownKid,
        BadToken::OtherTenant,
        BadToken::Garbage,
    ];
}

/// The emulator's signing keys: the newest first.
#[derive(Debug)]
pub(crate) struct Signing {
    seed: u64,
    generation: u64,
    keys: Vec<(String, RsaPrivateKey)>,
    pub(crate) outage: bool,
}

/// Keys generated so far in this process, by seed.
fn key_for(seed: u64) -> RsaPrivateKey {
    static KEYS: OnceLock<Mutex<HashMap<u64, RsaPrivateKey>>> = OnceLock::new();
    let map = KEYS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(seed)
        .or_insert_with(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            RsaPrivateKey::new(&mut rng, BITS).expect("RSA key generation from a seeded RNG")
        })
        .clone()
}

fn kid_of(key: &RsaPrivateKey) -> String {
    // Entra's kids are opaque; a digest of the modulus is stable and unique.
    let d = Sha256::digest(key.n().to_bytes_be());
    URL_SAFE_NO_PAD.encode(&d[..15])
}

impl Signing {
    pub(crate) fn new(seed: u64) -> Signing {
        let key = key_for(seed);
        Signing { seed, generation: 0, keys: vec![(kid_of(&key), key)], outage: false }
    }

    /// A new key signs from now on; the previous one stays published, as Entra keeps it.
    pub(crate) fn rotate(&mut self) -> String {
        self.generation += 1;
        let key = key_for(self.seed.wrapping_add(self.generation));
        let kid = kid_of(&key);
        self.keys.insert(0, (kid.clone(), key));
        self.keys.truncate(2);
        kid
    }

    pub(crate) fn kids(&self) -> Vec<String> {
        self.keys.iter().map(|(k, _)| k.clone()).collect()
    }

    fn current(&self) -> (&str, &RsaPrivateKey) {
        let (kid, key) = &self.keys[0];
        (kid, key)
    }

    /// The JWKS document.
    pub(crate) fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|(kid, key)| {
                json!({
                    "kty": "RSA",
                    "use": "sig",
                    "kid": kid,
                    "x5t": kid,
                    "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
                    "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
                    "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
                })
            })
            .collect();
        json!({ "keys": keys })
    }
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default())
}

/// `header.claims` signed RS256 with `key`.
fn sign_rs256(header: &Value, claims: &Value, key: &RsaPrivateKey) -> String {
    let input = format!("{}.{}", b64json(header), b64json(claims));
    let digest = Sha256::digest(input.as_bytes());
    let sig = key.sign(Pkcs1v15Sign::new::<Sha256>(), &digest).expect("RSA signing");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Merge `over` into `base`: a `null` member removes the member.
fn merge(base: &mut Map<String, Value>, over: &Value) {
    if let Some(o) = over.as_object() {
        for (k, v) in o {
            if v.is_null() {
                base.remove(k);
            } else {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// What an action-group token says by default: a v1 token, as Azure Monitor's are, valid for an
/// hour from `now`.
pub(crate) fn default_claims(base: &str, tenant: &str, audience: &str, role: &str, now: i64) -> Map<String, Value> {
    let v = json!({
        "aud": audience,
        "iss": format!("{base}/{tenant}/"),
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + 3600,
        "aio": "E2ZgYJh4emulator",
        "appid": ACTION_GROUP_APP_ID,
        "appidacr": "2",
        "idp": format!("{base}/{tenant}/"),
        "oid": "a1b2c3d4-0000-4000-8000-000000000001",
        "rh": "0.emulator.",
        "roles": [role],
        "sub": "a1b2c3d4-0000-4000-8000-000000000001",
        "tid": tenant,
        "uti": "emulator",
        "ver": "1.0",
    });
    v.as_object().cloned().unwrap_or_default()
}

/// A token: default claims with `claims` merged in, header `{alg: RS256, typ: JWT, kid, x5t}`
/// with `header` merged in, signed with the current key.
pub(crate) fn mint(
    signing: &Signing,
    mut claims: Map<String, Value>,
    over_claims: &Value,
    over_header: &Value,
) -> String {
    merge(&mut claims, over_claims);
    let (kid, key) = signing.current();
    let mut header =
        json!({"typ": "JWT", "alg": "RS256", "x5t": kid, "kid": kid}).as_object().cloned().unwrap_or_default();
    merge(&mut header, over_header);
    sign_rs256(&Value::Object(header), &Value::Object(claims), key)
}

/// A token of `kind`, built from `claims` (the valid defaults).
pub(crate) fn bad(signing: &Signing, claims: Map<String, Value>, kind: BadToken, base: &str, now: i64) -> String {
    let (kid, key) = signing.current();
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": kid});
    let with = |over: Value| mint(signing, claims.clone(), &over, &Value::Null);
    match kind {
        BadToken::WrongSignature => sign_rs256(&header, &Value::Object(claims), &key_for(IMPOSTOR_SEED)),
        BadToken::WrongIssuer => {
            let tid = claims.get("tid").and_then(Value::as_str).unwrap_or("").to_string();
            with(json!({"iss": format!("https://sts.example.net/{tid}/")}))
        }
        BadToken::WrongAudience => with(json!({"aud": "api://another-application"})),
        BadToken::WrongAppId => with(json!({"appid": "00000000-1111-2222-3333-444444444444"})),
        BadToken::MissingRole => with(json!({"roles": null})),
        BadToken::Expired => with(json!({"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600})),
        BadToken::NotYetValid => with(json!({"iat": now, "nbf": now + 3600, "exp": now + 7200})),
        BadToken::AlgNone => {
            format!(
                "{}.{}.",
                b64json(&json!({"typ": "JWT", "alg": "none", "kid": kid})),
                b64json(&Value::Object(claims))
            )
        }
        BadToken::Hs256WithPublicKey => {
            let pem = key.to_public_key().to_public_key_pem(LineEnding::LF).unwrap_or_default();
            let input = format!(
                "{}.{}",
                b64json(&json!({"typ": "JWT", "alg": "HS256", "kid": kid})),
                b64json(&Value::Object(claims))
            );
            let mut mac = Hmac::<Sha256>::new_from_slice(pem.as_bytes()).expect("HMAC takes any key length");
            mac.update(input.as_bytes());
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
        }
        BadToken::UnknownKid => mint(signing, claims, &Value::Null, &json!({"kid": "never-published", "x5t": null})),
        BadToken::OtherTenant => with(json!({
            "iss": format!("{base}/{OTHER_TENANT}/"),
            "idp": format!("{base}/{OTHER_TENANT}/"),
            "tid": OTHER_TENANT,
        })),
        BadToken::Garbage => "this-is.not-a.jwt!".to_string(),
    }
}

/// The URL clients see, the tenant and the emulator time, for a token.
fn basics(inner: &crate::Inner) -> (String, String, i64) {
    let st = inner.lock();
    let base = st.settings.public_base.clone().unwrap_or_else(|| inner.base().to_string());
    (base, st.settings.config.tenant_id.clone(), st.now().unix_timestamp())
}

/// See [`crate::Emulator::action_group_token_with`].
pub(crate) fn action_group_token(
    inner: &crate::Inner,
    audience: &str,
    role: &str,
    claims: &Value,
    header: &Value,
) -> String {
    let (base, tenant, now) = basics(inner);
    mint(&inner.signing(), default_claims(&base, &tenant, audience, role, now), claims, header)
}

/// See [`crate::Emulator::bad_action_group_token`].
pub(crate) fn bad_action_group_token(inner: &crate::Inner, kind: BadToken, audience: &str, role: &str) -> String {
    let (base, tenant, now) = basics(inner);
    bad(&inner.signing(), default_claims(&base, &tenant, audience, role, now), kind, &base, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_and_rotation_keeps_the_previous_key() {
        let a = Signing::new(7);
        let b = Signing::new(7);
        assert_eq!(a.kids(), b.kids());
        let mut c = Signing::new(7);
        let first = c.kids()[0].clone();
        let new = c.rotate();
        assert_ne!(new, first);
        assert_eq!(c.kids(), [new, first]);
        assert_eq!(c.jwks()["keys"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn every_bad_token_differs_from_the_good_one() {
        let s = Signing::new(7);
        let claims = default_claims("http://e", "t", "api://x", "R", 1000);
        let good = mint(&s, claims.clone(), &Value::Null, &Value::Null);
        assert_eq!(good.split('.').count(), 3);
        for kind in BadToken::ALL {
            assert_ne!(bad(&s, claims.clone(), kind, "http://e", 1000), good, "{kind:?}");
        }
    }
}
