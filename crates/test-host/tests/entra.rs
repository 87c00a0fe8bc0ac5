//! Issue 12 through the real release `.wasm`: `POST /alerts` with Entra ID bearer tokens
//! ("secure webhooks") minted by the emulator, which also serves the tenant's OpenID metadata
//! and JWKS. A valid token starts a capture; every spoiled one is a `401` with no ARM call and
//! no record; a key rotation costs one JWKS fetch; a JWKS outage is a `503` Azure retries.

mod common;

use azure_emulator::routes;
use azure_emulator::tokens::BadToken;
use common::*;
use serde_json::Value;
use test_host::{Request, Response};

const AUDIENCE: &str = "api://alert-packet-capture-e2e";
const ROLE: &str = "ActionGroupsSecureWebhook";
const JWKS_KEY: &str = "v1:jwks";

fn world() -> World {
    World::new(2, &[("alerts_auth", "entra"), ("entra_audience", AUDIENCE)])
}

fn post_token(w: &World, token: &str, rule: &str) -> (Response, Value) {
    let req =
        Request::post_json("/alerts", &classic_alert("vm-1", rule)).header("authorization", format!("Bearer {token}"));
    let r = w.host.request_blocking(req).expect("the component answers");
    let v = r.json().unwrap_or(Value::Null);
    (r, v)
}

/// Emulator routes called other than the signing-key ones.
fn azure_routes(w: &World) -> Vec<String> {
    w.emu
        .journal()
        .into_iter()
        .map(|e| e.route)
        .filter(|r| r != routes::OPENID_CONFIGURATION && r != routes::JWKS)
        .collect()
}

#[test]
fn a_valid_action_group_token_gets_202_and_a_capture() {
    let w = world();
    let (r, v) = post_token(&w, &w.emu.action_group_token(AUDIENCE, ROLE), "cpu");
    assert_eq!(r.status, 202, "{v}");
    assert_eq!(v["captures"][0]["state"], "running", "{v}");
    assert_eq!((w.calls(routes::OPENID_CONFIGURATION), w.calls(routes::JWKS)), (1, 1));
    assert_eq!(w.calls(routes::CAPTURE_PUT), 1);
    assert!(w.host.kv().get(JWKS_KEY).is_some());
    // A key alone no longer opens POST /alerts; /poll keeps its key.
    let r =
        w.host.request_blocking(Request::post_json("/alerts", &classic_alert("vm-2", "k")).header("x-api-key", KEY));
    assert_eq!(r.expect("answers").status, 401);
    assert!(w.poll()["advanced"].is_number());
}

#[test]
fn every_spoiled_token_gets_401_with_no_arm_call_and_no_record() {
    let w = world();
    for kind in BadToken::ALL {
        let token = w.emu.bad_action_group_token(kind, AUDIENCE, ROLE);
        let (r, v) = post_token(&w, &token, "cpu");
        assert_eq!(r.status, 401, "{kind:?}: {v}");
        assert_eq!(r.header("content-type"), Some("application/problem+json"), "{kind:?}");
        assert!(!r.text().contains(&token[..token.len().min(24)]), "{kind:?}: the token is echoed");
        assert!(azure_routes(&w).is_empty(), "{kind:?}: {:?}", azure_routes(&w));
        let keys: Vec<String> = w.host.kv().keys().into_iter().filter(|k| k != JWKS_KEY).collect();
        assert!(keys.is_empty(), "{kind:?}: stored {keys:?}");
    }
    // The keys were fetched once (the unknown kid came within five minutes of it).
    assert_eq!(w.calls(routes::JWKS), 1);
    let list = w.host.request_blocking(Request::get("/captures").header("x-api-key", KEY)).unwrap();
    assert_eq!(list.json().unwrap()["total"], 0);
}

#[test]
fn a_key_rotation_is_picked_up_with_one_jwks_fetch() {
    let w = world();
    assert_eq!(post_token(&w, &w.emu.action_group_token(AUDIENCE, ROLE), "before").0.status, 202);
    assert_eq!(w.calls(routes::JWKS), 1);
    w.advance(600);
    w.emu.rotate_signing_keys();
    let (r, v) = post_token(&w, &w.emu.action_group_token(AUDIENCE, ROLE), "after");
    assert!(r.status == 202 || r.status == 200, "{v}");
    assert_eq!(w.calls(routes::JWKS), 2, "exactly one more JWKS fetch");
    assert_eq!(w.calls(routes::OPENID_CONFIGURATION), 1, "the jwks_uri was cached");
}

#[test]
fn a_jwks_outage_gets_503_with_retry_after() {
    let w = world();
    w.emu.set_jwks_outage(true);
    let token = w.emu.action_group_token(AUDIENCE, ROLE);
    let (r, v) = post_token(&w, &token, "cpu");
    assert_eq!(r.status, 503, "{v}");
    assert!(r.header("retry-after").is_some_and(|s| s.parse::<u32>().is_ok()), "{:?}", r.headers);
    assert!(azure_routes(&w).is_empty(), "{:?}", azure_routes(&w));
    assert!(w.host.kv().keys().is_empty(), "{:?}", w.host.kv().keys());
    w.emu.set_jwks_outage(false);
    assert_eq!(post_token(&w, &token, "cpu").0.status, 202);
}
