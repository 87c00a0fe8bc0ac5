//! Issue 12 natively: Entra ID bearer tokens ("secure webhooks") on `POST /alerts`, verified
//! against the in-process emulator's OpenID metadata and JWKS. Every token the emulator can
//! spoil is refused with `401`, no Azure call and nothing stored but the key cache; keys are
//! fetched once, refetched for an unknown `kid` at most once per five minutes, and an
//! unreachable key endpoint is a `503` Azure retries.

use apc_core::api::ApiResponse;
use apc_core::entra::{JWKS_KEY, KeyCache};
use apc_testkit::StoreBehaviour;
use apc_testkit::alerts::{Firing, classic_alert};
use apc_testkit::consts::{KEY, TENANT};
use apc_testkit::emulated::{EmulatedApp, emulated_vm};
use azure_emulator::routes;
use azure_emulator::tokens::BadToken;
use serde_json::{Value, json};

const AUDIENCE: &str = "api://alert-packet-capture-tests";
const ROLE: &str = "ActionGroupsSecureWebhook";

/// An emulated component whose `POST /alerts` takes Entra ID tokens (`mode`).
fn app(mode: &str) -> EmulatedApp {
    let mut app = EmulatedApp::new(StoreBehaviour::Strict);
    app.vars.set("alerts_auth", mode);
    app.vars.set("entra_audience", &format!("{AUDIENCE}, 0f0e0d0c-0000-4000-8000-00000000000a"));
    app
}

fn alert_body() -> Vec<u8> {
    serde_json::to_vec(&classic_alert(&emulated_vm(), "cpu", Firing::Fired)).unwrap()
}

fn post_with(app: &EmulatedApp, headers: &[(&str, &str)]) -> (ApiResponse, Value) {
    app.call_with("POST", "/alerts", headers, &alert_body())
}

fn post_token(app: &EmulatedApp, token: &str) -> (ApiResponse, Value) {
    let auth = format!("Bearer {token}");
    post_with(app, &[("authorization", &auth)])
}

/// Requests the component sent other than for the signing keys.
fn azure_calls(app: &EmulatedApp) -> Vec<String> {
    app.http
        .requests()
        .into_iter()
        .map(|r| r.url)
        .filter(|u| !u.contains("/.well-known/openid-configuration") && !u.contains("/discovery/v2.0/keys"))
        .collect()
}

/// Nothing in the store but (perhaps) the key cache.
fn assert_nothing_stored(app: &EmulatedApp) {
    let keys: Vec<String> = app.kv.keys().into_iter().filter(|k| k != JWKS_KEY).collect();
    assert!(keys.is_empty(), "stored: {keys:?}");
}

fn header<'a>(resp: &'a ApiResponse, name: &str) -> Option<&'a str> {
    resp.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

#[test]
fn a_valid_action_group_token_starts_a_capture_and_caches_the_keys() {
    let app = app("entra");
    let token = app.emu.action_group_token(AUDIENCE, ROLE);
    let (resp, v) = post_token(&app, &token);
    assert_eq!(resp.status, 202, "{v}");
    assert_eq!(resp.log["auth"], "entra");
    assert_eq!(app.emu.calls(routes::OPENID_CONFIGURATION), 1);
    assert_eq!(app.emu.calls(routes::JWKS), 1);
    let cache: KeyCache = serde_json::from_str(&app.kv.get_string(JWKS_KEY).expect("keys cached")).unwrap();
    assert_eq!(cache.keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>(), app.emu.signing_kids());
    assert!(cache.jwks_uri.starts_with(&app.emu.base_url()), "{}", cache.jwks_uri);
    // The token is a credential: never in the answer or the log.
    assert!(!resp.log.to_string().contains(&token[..40]));

    // A second alert uses the cached keys: no fetch.
    app.advance(3600);
    let token = app.emu.action_group_token(AUDIENCE, ROLE);
    let body = serde_json::to_vec(&classic_alert(&emulated_vm(), "disk", Firing::Fired)).unwrap();
    let auth = format!("Bearer {token}");
    let (resp, v) = app.call_with("POST", "/alerts", &[("authorization", &auth)], &body);
    assert!(resp.status == 202 || resp.status == 200, "{v}");
    assert_eq!((app.emu.calls(routes::OPENID_CONFIGURATION), app.emu.calls(routes::JWKS)), (1, 1));
}

#[test]
fn v2_tokens_and_the_client_id_audience_are_accepted() {
    let app = app("entra");
    let base = app.emu.base_url();
    let v2 = json!({
        "iss": format!("{base}/{TENANT}/v2.0"),
        "ver": "2.0",
        "appid": null,
        "azp": apc_core::entra::ACTION_GROUP_APP_ID,
        "aud": "0f0e0d0c-0000-4000-8000-00000000000a",
    });
    let token = app.emu.action_group_token_with(AUDIENCE, ROLE, &v2, &Value::Null);
    let (resp, v) = post_token(&app, &token);
    assert_eq!(resp.status, 202, "{v}");
}

/// What the caller is told for each spoiled token (coarse on purpose).
fn words(kind: BadToken) -> &'static str {
    match kind {
        BadToken::WrongSignature | BadToken::AlgNone | BadToken::Hs256WithPublicKey | BadToken::UnknownKid => {
            "signature"
        }
        BadToken::WrongIssuer | BadToken::OtherTenant => "issuer",
        BadToken::WrongAudience => "audience",
        BadToken::WrongAppId => "caller application",
        BadToken::MissingRole => "role",
        BadToken::Expired | BadToken::NotYetValid => "expiry",
        BadToken::Garbage => "malformed token",
    }
}

#[test]
fn every_spoiled_token_is_refused_without_azure_or_records() {
    for kind in BadToken::ALL {
        let app = app("entra");
        let token = app.emu.bad_action_group_token(kind, AUDIENCE, ROLE);
        let (resp, v) = post_token(&app, &token);
        assert_eq!(resp.status, 401, "{kind:?}: {v}");
        assert_eq!(header(&resp, "content-type"), Some("application/problem+json"));
        assert!(header(&resp, "www-authenticate").is_some_and(|h| h.starts_with("Bearer")), "{kind:?}");
        let detail = v["detail"].as_str().unwrap_or_default();
        assert!(detail.ends_with(&format!("{}.", words(kind))), "{kind:?}: {detail}");
        assert!(!resp.body.windows(20).any(|w| token.as_bytes().windows(20).any(|t| t == w)), "{kind:?} echoed");
        assert!(azure_calls(&app).is_empty(), "{kind:?}: {:?}", azure_calls(&app));
        assert_eq!(app.emu.calls(routes::TOKEN), 0, "{kind:?}");
        assert_nothing_stored(&app);
        // Algorithms are refused before any key look-up; garbage never gets that far either.
        let fetched = app.emu.calls(routes::JWKS);
        match kind {
            BadToken::AlgNone | BadToken::Hs256WithPublicKey | BadToken::Garbage => assert_eq!(fetched, 0, "{kind:?}"),
            _ => assert_eq!(fetched, 1, "{kind:?}"),
        }
        // The log line says exactly which check failed, for the operator.
        assert!(resp.log["auth"].is_string(), "{kind:?}: {}", resp.log);
    }
}

#[test]
fn an_unknown_kid_refetches_at_most_once_per_five_minutes() {
    let app = app("entra");
    assert_eq!(post_token(&app, &app.emu.action_group_token(AUDIENCE, ROLE)).0.status, 202);
    assert_eq!(app.emu.calls(routes::JWKS), 1);
    for _ in 0..3 {
        let (resp, _) = post_token(&app, &app.emu.bad_action_group_token(BadToken::UnknownKid, AUDIENCE, ROLE));
        assert_eq!(resp.status, 401);
        assert_eq!(resp.log["auth"], "unknown_kid");
    }
    assert_eq!(app.emu.calls(routes::JWKS), 1, "no refetch within five minutes");
    app.advance(300);
    let (resp, _) = post_token(&app, &app.emu.bad_action_group_token(BadToken::UnknownKid, AUDIENCE, ROLE));
    assert_eq!(resp.status, 401);
    assert_eq!(app.emu.calls(routes::JWKS), 2, "one refetch after five minutes");
    // The refetch used the cached jwks_uri: the metadata was read once.
    assert_eq!(app.emu.calls(routes::OPENID_CONFIGURATION), 1);
}

#[test]
fn a_key_rotation_is_picked_up_with_one_jwks_fetch() {
    let app = app("entra");
    assert_eq!(post_token(&app, &app.emu.action_group_token(AUDIENCE, ROLE)).0.status, 202);
    app.advance(600);
    let new_kid = app.emu.rotate_signing_keys();
    let token = app.emu.action_group_token(AUDIENCE, ROLE);
    let body = serde_json::to_vec(&classic_alert(&emulated_vm(), "rotated", Firing::Fired)).unwrap();
    let auth = format!("Bearer {token}");
    let (resp, v) = app.call_with("POST", "/alerts", &[("authorization", &auth)], &body);
    assert!(resp.status == 202 || resp.status == 200, "{v}");
    assert_eq!(resp.log["auth"], "entra");
    assert_eq!((app.emu.calls(routes::OPENID_CONFIGURATION), app.emu.calls(routes::JWKS)), (1, 2));
    let cache: KeyCache = serde_json::from_str(&app.kv.get_string(JWKS_KEY).unwrap()).unwrap();
    assert_eq!(cache.keys[0].kid, new_kid);
}

#[test]
fn an_unreachable_key_endpoint_is_a_503_azure_retries() {
    let app = app("entra");
    app.emu.set_jwks_outage(true);
    let token = app.emu.action_group_token(AUDIENCE, ROLE);
    let (resp, v) = post_token(&app, &token);
    assert_eq!(resp.status, 503, "{v}");
    assert!(header(&resp, "retry-after").is_some_and(|s| s.parse::<u32>().is_ok()));
    assert_eq!(v["type"], "tag:alert-packet-capture,2026:problem/signing-keys-unavailable");
    assert!(azure_calls(&app).is_empty());
    assert!(app.kv.keys().is_empty(), "{:?}", app.kv.keys());
    // Azure's retry, once the endpoint is back, goes through.
    app.emu.set_jwks_outage(false);
    let (resp, v) = post_token(&app, &token);
    assert_eq!(resp.status, 202, "{v}");
}

#[test]
fn modes_decide_which_credential_each_route_takes() {
    // keys+entra: either credential, for a migration.
    let app = app("keys+entra");
    assert_eq!(post_with(&app, &[("x-api-key", KEY)]).0.status, 202);
    assert_eq!(app.emu.calls(routes::JWKS), 0, "a key needs no token check");
    let app = self::app("keys+entra");
    assert_eq!(post_token(&app, &app.emu.action_group_token(AUDIENCE, ROLE)).0.status, 202);
    let app = self::app("keys+entra");
    let (resp, _) = post_token(&app, &app.emu.bad_action_group_token(BadToken::Expired, AUDIENCE, ROLE));
    assert_eq!(resp.status, 401);
    assert_eq!(post_with(&app, &[]).0.status, 401);

    // entra: a key is not enough on /alerts, but /poll keeps its key (routes_auth = keys).
    let app = self::app("entra");
    let (resp, v) = post_with(&app, &[("x-api-key", KEY)]);
    assert_eq!(resp.status, 401, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("bearer token"), "{v}");
    assert_nothing_stored(&app);
    assert_eq!(app.poll().0.status, 200);
    let auth = format!("Bearer {}", app.emu.action_group_token(AUDIENCE, ROLE));
    assert_eq!(app.call_with("POST", "/poll", &[("authorization", &auth)], b"").0.status, 401);

    // routes_auth = entra moves the other routes to tokens as well.
    let mut app = self::app("entra");
    app.vars.set("routes_auth", "entra");
    assert_eq!(app.call_with("GET", "/captures", &[("x-api-key", KEY)], b"").0.status, 401);
    let auth = format!("Bearer {}", app.emu.action_group_token(AUDIENCE, ROLE));
    assert_eq!(app.call_with("GET", "/captures", &[("authorization", &auth)], b"").0.status, 200);
}

#[test]
fn healthz_names_missing_entra_settings_and_keyed_routes_fail_closed() {
    let mut app = EmulatedApp::new(StoreBehaviour::Strict);
    app.vars.set("alerts_auth", "entra");
    let (resp, v) = app.call_with("GET", "/healthz", &[], b"");
    assert_eq!(resp.status, 200);
    let names: Vec<&str> = v["problems"].as_array().unwrap().iter().filter_map(|p| p["variable"].as_str()).collect();
    assert_eq!(names, ["entra_audience"], "{v}");
    let (resp, v) = post_token(&app, &app.emu.action_group_token(AUDIENCE, ROLE));
    assert_eq!(resp.status, 500, "{v}");
    assert_eq!(app.emu.calls(routes::JWKS), 0);
}

#[test]
fn another_tenants_configuration_refuses_the_emulators_tokens() {
    // entra_tenant_id names the tenant whose tokens count; here one the emulator does not serve.
    let mut app = app("entra");
    app.vars.set("entra_tenant_id", "contoso.onmicrosoft.com");
    let (resp, v) = post_token(&app, &app.emu.action_group_token(AUDIENCE, ROLE));
    // The emulator knows no such tenant: no keys, so Azure is asked to retry.
    assert_eq!(resp.status, 503, "{v}");
    assert!(azure_calls(&app).is_empty());
}

#[test]
fn day_old_keys_are_refreshed_on_use_and_still_serve_when_the_refresh_fails() {
    let app = app("entra");
    assert_eq!(post_token(&app, &app.emu.action_group_token(AUDIENCE, ROLE)).0.status, 202);
    // A day later the endpoint is down: the cached key still verifies (one attempt made).
    app.advance(24 * 3600 + 1);
    app.emu.set_jwks_outage(true);
    let body = serde_json::to_vec(&classic_alert(&emulated_vm(), "day-two", Firing::Fired)).unwrap();
    let auth = format!("Bearer {}", app.emu.action_group_token(AUDIENCE, ROLE));
    let (resp, v) = app.call_with("POST", "/alerts", &[("authorization", &auth)], &body);
    assert!(resp.status == 202 || resp.status == 200, "{v}");
    assert_eq!(app.emu.calls(routes::JWKS), 2, "one refresh attempted");
    // Back up: the next request refreshes the keys and stores the new fetch time.
    app.emu.set_jwks_outage(false);
    let auth = format!("Bearer {}", app.emu.action_group_token(AUDIENCE, ROLE));
    let (resp, v) = app.call_with("POST", "/alerts", &[("authorization", &auth)], &body);
    assert!(resp.status == 200 || resp.status == 202, "{v}");
    assert_eq!(app.emu.calls(routes::JWKS), 3);
    let cache: KeyCache = serde_json::from_str(&app.kv.get_string(JWKS_KEY).unwrap()).unwrap();
    assert_eq!(cache.fetched_at, apc_testkit::consts::T0 + 24 * 3600 + 1);
    // Fresh again: no fetch.
    let auth = format!("Bearer {}", app.emu.action_group_token(AUDIENCE, ROLE));
    app.call_with("POST", "/alerts", &[("authorization", &auth)], &body);
    assert_eq!(app.emu.calls(routes::JWKS), 3);
}
