//! The control API over HTTP under `/_emulator/` (for the binary; tests in-process use the
//! typed methods of [`crate::Emulator`]). Control calls are neither journaled nor faulted.
//!
//! | call | body | effect |
//! |---|---|---|
//! | `POST /_emulator/vms` | [`crate::VmSpec`] (camelCase) | seed a VM |
//! | `POST /_emulator/watchers` | [`crate::WatcherSpec`] | seed a watcher |
//! | `POST /_emulator/demo` | – | seed the demo VM and watcher, answer their ids |
//! | `GET /_emulator/clock` | – | `{"now": rfc3339}` |
//! | `POST /_emulator/clock/set` | `{"now": rfc3339}` | set the clock |
//! | `POST /_emulator/clock/advance` | `{"seconds": n}` | advance the clock |
//! | `POST /_emulator/faults` | [`crate::Fault`] | add a fault |
//! | `DELETE /_emulator/faults` | – | clear faults |
//! | `POST /_emulator/faults/seed` | `{"seed": n}` | reseed the fault generator |
//! | `GET /_emulator/journal` | – | the journal (JSON array) |
//! | `DELETE /_emulator/journal` | – | clear journal and counts |
//! | `GET /_emulator/counts` | – | `{route: n}` |
//! | `POST /_emulator/tokens/revoke` | – | expire all tokens now |
//! | `POST /_emulator/tokens/lifetime` | `{"seconds": n}` | lifetime of new tokens |
//! | `POST /_emulator/captures/fail` | `{"name": s}` or `{"next": true}` | force `Error` |
//! | `GET /_emulator/captures` | – | captures and their status |
//! | `POST /_emulator/hostile` | `{"base": url or null}` | hostile redirect host |
//! | `POST /_emulator/vmss` | [`crate::VmssSpec`] (camelCase) | seed a scale set and its instances |
//! | `POST /_emulator/public_base` | `{"base": url or null}` | URL clients see (a TLS front) |
//! | `GET /_emulator/modes` | – | the [`crate::ArmModes`] in force |
//! | `POST /_emulator/modes` | some [`crate::ArmModes`] fields | change those fields, answer all |
//! | `POST /_emulator/entra/token` | `{"audience", "role", "claims"?, "header"?, "bad"?}` | `{"token"}`: an action-group token (issue 12), members overridden, or a spoiled one ([`crate::tokens::BadToken`], e.g. `"expired"`) |
//! | `POST /_emulator/entra/rotate` | – | rotate the signing keys, answer `{"kid", "kids"}` |
//! | `POST /_emulator/entra/outage` | `{"on": bool}` | OpenID metadata and JWKS close connections unanswered |
//! | `POST /_emulator/storage/scenario` | `{"capture": name, "scenario": "syn_flood"}` | traffic in that capture's file ([`crate::pcap::Scenario`]; default `heavy_talker`) |

use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::http::{Request, Response};
use crate::{ArmModes, Fault, Inner, VmSpec, VmssSpec, WatcherSpec};

fn ok(value: Value) -> Response {
    Response::json(200, &value)
}

fn bad(message: impl std::fmt::Display) -> Response {
    Response::json(400, &json!({"error": {"code": "BadControlRequest", "message": message.to_string()}}))
}

fn parse<T: for<'de> Deserialize<'de>>(req: &Request) -> Result<T, Response> {
    serde_json::from_slice(&req.body).map_err(bad)
}

#[derive(Deserialize)]
struct SetScenario {
    capture: String,
    scenario: crate::pcap::Scenario,
}

#[derive(Deserialize)]
struct Seconds {
    seconds: u64,
}

#[derive(Deserialize)]
struct SetClock {
    now: String,
}

#[derive(Deserialize)]
struct Seed {
    seed: u64,
}

#[derive(Deserialize)]
struct FailCapture {
    name: Option<String>,
    #[serde(default)]
    next: bool,
}

#[derive(Deserialize)]
struct TokenAsk {
    audience: String,
    role: String,
    #[serde(default)]
    claims: Value,
    #[serde(default)]
    header: Value,
    #[serde(default)]
    bad: Option<crate::tokens::BadToken>,
}

#[derive(Deserialize)]
struct Outage {
    on: bool,
}

#[derive(Deserialize)]
struct Hostile {
    base: Option<String>,
}

pub(crate) fn handle(inner: &Inner, req: &Request) -> Response {
    let rest = req.path.trim_start_matches("/_emulator").trim_matches('/');
    let result = match (req.method.as_str(), rest) {
        ("POST", "vms") => parse::<VmSpec>(req).and_then(|vm| seeded(crate::add_vm(inner, vm))),
        ("POST", "public_base") => parse::<Hostile>(req).map(|h| {
            inner.lock().settings.public_base = h.base.map(|b| b.trim_end_matches('/').to_string());
            ok(json!({}))
        }),
        ("POST", "vmss") => parse::<VmssSpec>(req).and_then(|v| seeded(crate::add_vmss(inner, v))),
        ("GET", "modes") => Ok(ok(json!(inner.lock().settings.config.modes))),
        ("POST", "modes") => parse::<Value>(req).and_then(|patch| {
            let mut st = inner.lock();
            let mut current = json!(st.settings.config.modes);
            let (Some(cur), Some(patch)) = (current.as_object_mut(), patch.as_object()) else {
                return Err(bad("give a JSON object of mode fields"));
            };
            for (k, v) in patch {
                if !cur.contains_key(k) {
                    return Err(bad(format!("unknown mode {k:?}")));
                }
                cur.insert(k.clone(), v.clone());
            }
            let modes: ArmModes = serde_json::from_value(current).map_err(bad)?;
            st.settings.config.modes = modes.clone();
            Ok(ok(json!(modes)))
        }),
        ("POST", "watchers") => parse::<WatcherSpec>(req).and_then(|w| seeded(crate::add_watcher(inner, w))),
        ("POST", "demo") => Ok(ok(json!(crate::seed_demo(inner)))),
        ("GET", "clock") => Ok(clock(inner)),
        ("POST", "clock/set") => parse::<SetClock>(req).and_then(|s| {
            let t = OffsetDateTime::parse(&s.now, &Rfc3339).map_err(bad)?;
            inner.lock().clock.set(t);
            Ok(clock(inner))
        }),
        ("POST", "clock/advance") => parse::<Seconds>(req).map(|s| {
            let d = time::Duration::seconds(i64::try_from(s.seconds).unwrap_or(i64::MAX));
            inner.lock().clock.advance(d);
            clock(inner)
        }),
        ("POST", "faults") => parse::<Fault>(req).map(|f| {
            inner.lock().faults.add(f);
            ok(json!({}))
        }),
        ("DELETE", "faults") => {
            inner.lock().faults.clear();
            Ok(ok(json!({})))
        }
        ("POST", "faults/seed") => parse::<Seed>(req).map(|s| {
            inner.lock().faults.reseed(s.seed);
            ok(json!({}))
        }),
        ("GET", "journal") => Ok(ok(json!(inner.lock().journal))),
        ("DELETE", "journal") => {
            let mut st = inner.lock();
            st.journal.clear();
            st.counts.clear();
            Ok(ok(json!({})))
        }
        ("GET", "counts") => Ok(ok(json!(inner.lock().counts))),
        ("POST", "tokens/revoke") => {
            crate::revoke_tokens(inner);
            Ok(ok(json!({})))
        }
        ("POST", "tokens/lifetime") => parse::<Seconds>(req).map(|s| {
            inner.lock().settings.config.token_lifetime_secs = s.seconds;
            ok(json!({}))
        }),
        ("POST", "captures/fail") => parse::<FailCapture>(req).and_then(|f| {
            let mut st = inner.lock();
            if f.next {
                st.fail_next += 1;
            }
            drop(st);
            match f.name {
                Some(name) => crate::fail_capture(inner, &name),
                None if !f.next => return Err(bad("give \"name\" or \"next\": true")),
                None => {}
            }
            Ok(ok(json!({})))
        }),
        ("GET", "captures") => Ok(ok(json!(crate::captures(inner)))),
        ("POST", "storage/scenario") => parse::<SetScenario>(req).map(|s| {
            inner.lock().scenarios.insert(s.capture.to_ascii_lowercase(), s.scenario);
            ok(json!({}))
        }),
        ("POST", "entra/token") => parse::<TokenAsk>(req).map(|t| {
            let token = match t.bad {
                Some(kind) => crate::tokens::bad_action_group_token(inner, kind, &t.audience, &t.role),
                None => crate::tokens::action_group_token(inner, &t.audience, &t.role, &t.claims, &t.header),
            };
            ok(json!({ "token": token }))
        }),
        ("POST", "entra/rotate") => {
            let kid = inner.signing().rotate();
            Ok(ok(json!({ "kid": kid, "kids": inner.signing().kids() })))
        }
        ("POST", "entra/outage") => parse::<Outage>(req).map(|o| {
            inner.signing().outage = o.on;
            ok(json!({}))
        }),
        ("POST", "hostile") => parse::<Hostile>(req).map(|h| {
            inner.lock().settings.hostile_base = h.base.map(|b| b.trim_end_matches('/').to_string());
            ok(json!({}))
        }),
        _ => Err(Response::json(
            404,
            &json!({"error": {"code": "UnknownControlCall", "message": format!("{} {}", req.method, req.path)}}),
        )),
    };
    result.unwrap_or_else(|e| e)
}

fn clock(inner: &Inner) -> Response {
    let now = inner.lock().now();
    ok(json!({"now": now.format(&Rfc3339).unwrap_or_default()}))
}

fn seeded(result: Result<(), crate::EmulatorError>) -> Result<Response, Response> {
    result.map(|()| ok(json!({}))).map_err(bad)
}
