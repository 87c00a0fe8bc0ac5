//! Entra ID client-credentials token, cached sealed in the key-value store.
//!
//! The cache value never holds the token in clear: it is XORed with a keystream derived from the
//! client secret (SHA-256 in counter mode) and authenticated with a SHA-256 tag over the same key
//! material, checked in constant time. A rotated secret, another tenant, client or ARM endpoint, or
//! a tampered value fails the check and simply costs one new token request. The store is not
//! trusted with bearer tokens because other tools (and our own `/captures` dumps) can read it.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Azure;
use super::error::{AzureError, MAX_MESSAGE_CHARS, from_transport, one_line, retry_after_header};
use crate::config::Secret;
use crate::ports::{Method, OutboundRequest};

/// KV key of the cached token.
pub const TOKEN_KEY: &str = "v1:token";
/// A cached token is used only while it has at least this many seconds left.
pub const TOKEN_MARGIN_SECS: i64 = 60;

const KEYSTREAM_TAG: &[u8] = b"apc/v1/token-keystream";
const MAC_TAG: &[u8] = b"apc/v1/token-mac";
const NONCE_TAG: &[u8] = b"apc/v1/token-nonce";

/// The tenant is one path segment: encode everything but unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed {
    expires_at: i64,
    nonce: String,
    ciphertext: String,
    tag: String,
}

impl Azure<'_> {
    /// A bearer token: from the KV cache if it is valid for at least 60 more seconds, else from
    /// Entra ID (then cached).
    pub fn token(&self) -> Result<Secret, AzureError> {
        if let Some(token) = self.cached_token() {
            return Ok(token);
        }
        self.fetch_token()
    }

    /// Drop the cached token (after ARM refused it).
    pub(crate) fn drop_token(&self) {
        // A failed delete only means the next request tries the stale token once more.
        let _ = self.world.kv.delete(TOKEN_KEY);
    }

    fn cached_token(&self) -> Option<Secret> {
        let raw = self.world.kv.get(TOKEN_KEY).ok()??;
        let sealed: Sealed = serde_json::from_slice(&raw).ok()?;
        if sealed.expires_at.saturating_sub(self.world.clock.now()) < TOKEN_MARGIN_SECS {
            return None;
        }
        let nonce = from_hex(&sealed.nonce)?;
        let ciphertext = from_hex(&sealed.ciphertext)?;
        let tag = from_hex(&sealed.tag)?;
        let expected = self.mac(&nonce, sealed.expires_at, &ciphertext);
        if !bool::from(expected.as_slice().ct_eq(&tag)) {
            return None;
        }
        let plain = self.keystream_xor(&nonce, &ciphertext);
        String::from_utf8(plain).ok().filter(|t| !t.is_empty()).map(Secret::new)
    }

    /// Ask Entra ID for a new token and cache it.
    pub(crate) fn fetch_token(&self) -> Result<Secret, AzureError> {
        let cfg = self.cfg;
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            cfg.authority_host.trim_end_matches('/'),
            utf8_percent_encode(&cfg.tenant_id, SEGMENT)
        );
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &cfg.client_id)
            .append_pair("scope", &format!("{}/.default", cfg.arm_endpoint.trim_end_matches('/')))
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
                self.store_token(token, self.world.clock.now().saturating_add(expires_in));
            }
            return Ok(Secret::new(token));
        }
        Err(self.entra_error(resp.status, &json, retry_after_header(&resp)))
    }

    /// Sort an Entra ID error: configuration problems name the variable to fix. Branches on
    /// `error` and `error_codes` only, never on the description text.
    fn entra_error(&self, status: u16, json: &Value, retry_after: Option<u64>) -> AzureError {
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
                "invalid_scope" => Some("azure_arm_endpoint"),
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

    fn store_token(&self, token: &str, expires_at: i64) {
        let mut h = Sha256::new();
        h.update(NONCE_TAG);
        h.update(self.world.clock.now().to_be_bytes());
        h.update(token.as_bytes());
        let nonce = h.finalize()[..16].to_vec();
        let ciphertext = self.keystream_xor(&nonce, token.as_bytes());
        let tag = self.mac(&nonce, expires_at, &ciphertext);
        let sealed = Sealed { expires_at, nonce: to_hex(&nonce), ciphertext: to_hex(&ciphertext), tag: to_hex(&tag) };
        if let Ok(value) = serde_json::to_vec(&sealed) {
            // A KV failure only costs a token request next time.
            let _ = self.world.kv.set(TOKEN_KEY, &value);
        }
    }

    /// Hash the key material: the secret and everything that decides which token is right.
    fn key_material(&self, h: &mut Sha256) {
        for part in [
            self.cfg.client_secret.expose(),
            &self.cfg.tenant_id,
            &self.cfg.client_id,
            &self.cfg.authority_host,
            &self.cfg.arm_endpoint,
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
    }

    fn keystream_xor(&self, nonce: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        for (counter, chunk) in data.chunks(32).enumerate() {
            let mut h = Sha256::new();
            h.update(KEYSTREAM_TAG);
            self.key_material(&mut h);
            h.update(nonce);
            h.update((counter as u64).to_be_bytes());
            let block = h.finalize();
            out.extend(chunk.iter().zip(block.iter()).map(|(a, b)| a ^ b));
        }
        out
    }

    fn mac(&self, nonce: &[u8], expires_at: i64, ciphertext: &[u8]) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(MAC_TAG);
        self.key_material(&mut h);
        h.update(nonce);
        h.update(expires_at.to_be_bytes());
        h.update(ciphertext);
        h.finalize().to_vec()
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

    #[test]
    fn hex_round_trip_and_rejects_garbage() {
        let bytes = [0u8, 1, 0x7f, 0x80, 0xff];
        assert_eq!(to_hex(&bytes), "00017f80ff");
        assert_eq!(from_hex("00017f80ff").unwrap(), bytes);
        assert!(from_hex("0").is_none());
        assert!(from_hex("zz").is_none());
        assert!(from_hex("é1").is_none());
    }
}
