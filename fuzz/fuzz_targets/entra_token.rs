//! Entra ID bearer tokens (issue 12) on arbitrary input: `entra::parse`, the claim checks and
//! the signature check never panic; a token `parse` accepts is three parts with a `kid`, and no
//! arbitrary input ever verifies against any key.
//!
//! The first byte picks what the rest is: even, a token (checked against a fixed configuration
//! at a time taken from the input); odd, a JWKS document whose keys must refuse a fixed,
//! well-formed token signed by nobody.

#![no_main]

use apc_core::entra::{self, EntraConfig};
use apc_core::origin::Origin;
use libfuzzer_sys::fuzz_target;

/// Header `{"alg":"RS256","kid":"k"}`, claims `{}`, a 256-byte "signature" (255 zeros, then 1).
const UNSIGNED: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let cfg = EntraConfig {
        tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
        authority: Origin::parse("https://login.microsoftonline.com").expect("a constant origin"),
        audiences: vec!["api://apc".into()],
        role: entra::DEFAULT_ROLE.into(),
    };
    if mode % 2 == 0 {
        let _ = entra::bearer(&text);
        if let Ok(token) = entra::parse(&text) {
            assert_eq!(text.trim().split('.').count(), 3, "{text:?}");
            assert!(!token.kid.is_empty());
            // Any time, including the extremes: no overflow.
            let now = i64::from_le_bytes(rest.iter().copied().chain([0; 8]).take(8).collect::<Vec<_>>().try_into().unwrap());
            let _ = entra::check_claims(&token.claims, &cfg, now);
            let _ = entra::check_claims(&token.claims, &cfg, i64::MAX);
            let _ = entra::check_claims(&token.claims, &cfg, i64::MIN);
        }
    } else if let Ok(jwks) = serde_json::from_str::<serde_json::Value>(&text) {
        let token = entra::parse(UNSIGNED).expect("the fixed token parses");
        for key in entra::keys_of(&jwks) {
            assert!(entra::check_signature(&token, &key).is_err(), "an unsigned token verified");
        }
    }
});
