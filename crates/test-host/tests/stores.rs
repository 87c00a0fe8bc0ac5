//! The platforms' stores (issue 9): a real Redis server with Spin's Redis semantics, the
//! Akamai-like replicated store without `wasi:keyvalue/atomics`, and several replicas over one
//! store; first each store alone, then the real release `.wasm` on each.

mod common;
mod fleet;

use std::collections::BTreeSet;
use std::time::Duration;

use azure_emulator::routes;
use common::*;
use fleet::{Fleet, Platform};
use serde_json::Value;
use test_host::{CasSemantics, HostOptions, KvStore, RedisServer, Replicas, Request, Staleness, StoreKind, SwapResult};

fn redis_store() -> (RedisServer, KvStore) {
    let server = RedisServer::start_for_tests();
    let store = KvStore::redis(&server.url()).expect("connects to the test's redis-server");
    (server, store)
}

// ---- Redis, unit level -----------------------------------------------------------------------

#[test]
fn redis_store_gets_sets_deletes_and_lists_every_key_on_the_real_server() {
    let (server, kv) = redis_store();
    assert_eq!(kv.kind(), StoreKind::Redis);
    assert!(kv.offers_atomics());
    let s = kv.session();
    assert_eq!(s.get("v1:a"), Ok(None));
    assert_eq!(s.exists("v1:a"), Ok(false));
    // More keys than one SCAN page (COUNT 200), so listing has to follow the cursor.
    for i in 0..450 {
        s.set(&format!("v1:k{i:03}"), format!("value {i}").as_bytes()).unwrap();
    }
    s.set("v1:a", b"\x00binary\xff").unwrap();
    assert_eq!(s.get("v1:a"), Ok(Some(b"\x00binary\xff".to_vec())));
    assert_eq!(s.exists("v1:a"), Ok(true));
    s.delete("v1:k007").unwrap();
    s.delete("v1:never-there").unwrap();
    assert_eq!(s.get("v1:k007"), Ok(None));

    let keys = s.get_keys().unwrap();
    assert_eq!(keys.len(), 450, "449 counters and v1:a");
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
    assert!(!keys.contains(&"v1:k007".to_string()));

    // It is on the server: a second store on the same URL (its own connections) sees it.
    let other = KvStore::redis(&server.url()).unwrap();
    assert_eq!(other.get_text("v1:k449").as_deref(), Some("value 449"));
    assert_eq!(other.len(), 450);
    let counts = s.counts();
    assert_eq!((counts.sets, counts.deletes, counts.lists), (451, 2, 1));
    assert_eq!(counts.gets, 3);
    assert_eq!(counts.exists, 2);
}

#[test]
fn redis_swap_writes_but_answers_cas_failed_as_spin_does() {
    let (_server, kv) = redis_store();
    assert_eq!(kv.cas_semantics(), CasSemantics::SpinRedis);
    let s = kv.session();
    let first = s.cas("v1:index").unwrap();
    let rival = s.cas("v1:index").unwrap();

    // The first "create" writes, yet Spin's Redis store answers cas-failed.
    let fresh = match s.swap(first, b"one").unwrap() {
        SwapResult::CasFailed(fresh) => fresh,
        SwapResult::Swapped => panic!("Spin's Redis store never answers success"),
    };
    assert_eq!(kv.get_text("v1:index").as_deref(), Some("one"));

    // A swap from a stale snapshot (absent) is refused by the server: nothing written.
    assert!(matches!(s.swap(rival, b"two").unwrap(), SwapResult::CasFailed(_)));
    assert_eq!(kv.get_text("v1:index").as_deref(), Some("one"));

    // The handle given back with cas-failed carries the latest value: swapping on it writes
    // (and is reported as failed again).
    assert!(matches!(s.swap(fresh, b"three").unwrap(), SwapResult::CasFailed(_)));
    assert_eq!(kv.get_text("v1:index").as_deref(), Some("three"));

    // A writer between `current` and `swap` makes the server abort the swap.
    let mut handle = s.cas("v1:index").unwrap();
    assert_eq!(s.cas_current(&mut handle).unwrap().as_deref(), Some(&b"three"[..]));
    kv.set("v1:index", "someone else");
    assert!(matches!(s.swap(handle, b"four").unwrap(), SwapResult::CasFailed(_)));
    assert_eq!(kv.get_text("v1:index").as_deref(), Some("someone else"));

    assert_eq!((kv.counts().cas, kv.counts().cas_failed), (4, 4));

    // With a truthful report (not Spin's), the same store answers success when it wrote.
    kv.set_cas_semantics(CasSemantics::Strict);
    let mut handle = s.cas("v1:index").unwrap();
    s.cas_current(&mut handle).unwrap();
    assert_eq!(s.swap(handle, b"five").unwrap(), SwapResult::Swapped);
    assert_eq!(kv.get_text("v1:index").as_deref(), Some("five"));
}

#[test]
fn redis_increment_is_incrby_on_decimal_text() {
    let (_server, kv) = redis_store();
    let s = kv.session();
    assert_eq!(s.increment("v1:init", 1), Ok(1));
    assert_eq!(s.increment("v1:init", 41), Ok(42));
    assert_eq!(s.increment("v1:init", -50), Ok(-8));
    // INCRBY keeps the counter as text, not as Spin SQLite's 8 little-endian bytes.
    assert_eq!(kv.get_text("v1:init").as_deref(), Some("-8"));
    s.set("v1:text", b"not a number").unwrap();
    let err = s.increment("v1:text", 1).unwrap_err();
    assert!(err.0.contains("redis"), "{err}");
    assert_eq!(kv.get_text("v1:text").as_deref(), Some("not a number"));
}

#[test]
fn redis_faults_are_injected_before_the_server_is_asked() {
    let (_server, kv) = redis_store();
    let s = kv.session();
    kv.fail_writes(true);
    assert_eq!(s.set("v1:a", b"x").unwrap_err().0, "injected");
    kv.fail_writes(false);
    assert!(kv.keys().is_empty(), "a faulted write reaches nothing");
    kv.fail_reads(true);
    s.set("v1:a", b"x").unwrap();
    assert_eq!(s.get("v1:a").unwrap_err().0, "injected");
    assert_eq!(kv.counts().faults, 2);
}

// ---- Akamai-like, unit level -----------------------------------------------------------------

#[test]
fn akamai_like_store_shows_a_request_its_own_writes_and_others_only_after_the_delay() {
    let kv = KvStore::akamai_like(Staleness::Requests(2));
    assert_eq!(kv.kind(), StoreKind::AkamaiLike);
    let writer = kv.session();
    writer.set("v1:rec", b"new").unwrap();
    // Read-your-writes inside the request.
    assert_eq!(writer.get("v1:rec"), Ok(Some(b"new".to_vec())));
    assert_eq!(writer.get_keys(), Ok(vec!["v1:rec".to_string()]));

    // The next request (one begun since the write) does not see it yet.
    let second = kv.session();
    assert_eq!(second.get("v1:rec"), Ok(None));
    assert_eq!(second.exists("v1:rec"), Ok(false));
    assert_eq!(second.get_keys(), Ok(vec![]));
    // …and its own write to the same key wins for itself only.
    second.set("v1:rec", b"second's").unwrap();
    assert_eq!(second.get("v1:rec"), Ok(Some(b"second's".to_vec())));
    assert_eq!(writer.get("v1:rec"), Ok(Some(b"new".to_vec())));

    // Two requests after the write, it has reached every reader (the second's write, made one
    // request later, has not).
    let third = kv.session();
    assert_eq!(third.get("v1:rec"), Ok(Some(b"new".to_vec())));
    let fourth = kv.session();
    assert_eq!(fourth.get("v1:rec"), Ok(Some(b"second's".to_vec())));

    // A delete is a write like any other: hidden from others for the same delay.
    fourth.delete("v1:rec").unwrap();
    assert_eq!(fourth.get("v1:rec"), Ok(None));
    let fifth = kv.session();
    assert_eq!(fifth.get("v1:rec"), Ok(Some(b"second's".to_vec())));
    let _sixth = kv.session();
    assert_eq!(fifth.get("v1:rec"), Ok(None));

    // The tests' own view is the settled data.
    assert!(kv.keys().is_empty());
}

#[test]
fn akamai_like_store_with_a_delay_in_time_shows_others_writes_once_it_has_passed() {
    let kv = KvStore::akamai_like(Staleness::Millis(60_000));
    let writer = kv.session();
    writer.set("v1:a", b"1").unwrap();
    let reader = kv.session();
    assert_eq!(reader.get("v1:a"), Ok(None));
    kv.advance_replication(Duration::from_secs(59));
    assert_eq!(reader.get("v1:a"), Ok(None));
    kv.advance_replication(Duration::from_secs(2));
    assert_eq!(reader.get("v1:a"), Ok(Some(b"1".to_vec())));
    // Fixtures set by the test are there for everyone at once.
    kv.set("v1:fixture", "f");
    assert_eq!(reader.get_text_for_test("v1:fixture"), Some("f".into()));
}

/// A little sugar for the test above.
trait GetText {
    fn get_text_for_test(&self, key: &str) -> Option<String>;
}

impl GetText for test_host::KvSession {
    fn get_text_for_test(&self, key: &str) -> Option<String> {
        self.get(key).unwrap().map(|v| String::from_utf8_lossy(&v).into_owned())
    }
}

#[test]
fn akamai_like_store_offers_no_atomics() {
    let kv = KvStore::akamai_like(Staleness::Requests(0));
    assert!(!kv.offers_atomics());
    let s = kv.session();
    assert!(s.increment("v1:init", 1).unwrap_err().0.contains("no wasi:keyvalue/atomics"));
    assert!(s.cas("v1:index").unwrap_err().0.contains("no wasi:keyvalue/atomics"));
    // The key-value interface itself works, with no delay at Requests(0).
    s.set("v1:a", b"x").unwrap();
    assert_eq!(kv.session().get("v1:a"), Ok(Some(b"x".to_vec())));
}

// ---- the component on each store -------------------------------------------------------------

/// Akamai Functions offers no `wasi:keyvalue/atomics`, and a component importing it cannot even
/// be instantiated there. The component imports no `wasi:keyvalue` interface at all, and so
/// loads on the Akamai-like store, whose host leaves atomics out.
#[test]
fn the_component_imports_no_keyvalue_interface_and_loads_without_atomics() {
    let wasm = std::fs::read(wasm_path()).expect("the release .wasm");
    for interface in [&b"wasi:keyvalue/atomics"[..], b"wasi:keyvalue/store", b"wasi:keyvalue/batch"] {
        assert!(
            !wasm.windows(interface.len()).any(|w| w == interface),
            "the component imports {}",
            String::from_utf8_lossy(interface)
        );
    }
    assert!(wasm.windows(24).any(|w| w == b"fermyon:spin/key-value@2"), "the Spin key-value import is there");
    assert!(Fleet::start(&Platform::AkamaiLike(1), 1, 0).is_ok());
}

/// One alert, start to notification, on the Akamai-like store with three replicas. The steps
/// follow each other, so a delay of one request makes each step see the one before (Azure's
/// retry arrives after the first answer); races inside the delay are another scenario.
#[test]
fn akamai_like_store_runs_one_alert_end_to_end() {
    one_alert_end_to_end(&Platform::AkamaiLike(1));
}

/// One alert, start to notification, on a real Redis server shared by three replicas.
#[test]
fn real_redis_with_three_replicas_runs_one_alert_end_to_end() {
    let f = one_alert_end_to_end(&Platform::Redis);
    // The state is on the server, not in any host: a fresh client on the URL sees it.
    let url = f.redis.as_ref().expect("a Redis platform").url();
    let seen = KvStore::redis(&url).unwrap().keys();
    assert!(seen.iter().any(|k| k.starts_with("v1:")), "{seen:?}");
}

/// The seed scenario spread round-robin over three replicas: each step lands on another host.
fn one_alert_end_to_end(platform: &Platform) -> Fleet {
    let f = Fleet::start(platform, 3, 1).expect("the replicas load the component");
    let alert = common_alert("vm-1", "stores-e2e");
    let (r, v) = f.alert(&alert);
    assert_eq!(r.status, 202, "{v}");
    let id = first_capture(&v);
    assert_eq!(f.calls(routes::CAPTURE_PUT), 1);

    // Another replica receives Azure Monitor's retry.
    let (r, dup) = f.alert(&alert);
    assert_eq!(r.status, 200, "{dup}");
    assert_eq!(dup["duplicate"], true, "{dup}");
    assert_eq!(first_capture(&dup), id);

    f.advance(31);
    assert_eq!(f.poll()["advanced"], 1);
    f.advance(300);
    let p = f.poll();
    assert_eq!(p["advanced"], 1, "{p}");
    let rec = f.capture(&id);
    assert_eq!(rec["state"], "succeeded", "{rec}");
    let notes = f.sink.delivered();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["type"], "capture.succeeded");
    assert_eq!(f.calls(routes::CAPTURE_PUT), 1);
    assert_eq!(f.calls(routes::CAPTURE_DELETE), 1);

    // Every replica served part of it, each counting its own requests.
    let served: Vec<u64> = f.replicas.hosts().iter().map(|h| h.requests_started()).collect();
    assert_eq!(served, vec![2, 2, 1], "round-robin over 5 requests");
    assert_eq!(f.replicas.store().requests_begun(), 5);
    f
}

/// Azure Monitor's retries arriving at once on three replicas over real Redis: one Azure
/// capture, every answer 2xx and about the same capture. Deliveries that run before the first
/// one's record is visible are answered as a start of that same capture, not as duplicates
/// (docs/STATE.md); the create claim keeps them from all sending the PUT.
#[test]
fn real_redis_with_three_replicas_makes_one_capture_from_a_storm_of_one_alert() {
    let f = Fleet::start(&Platform::Redis, 3, 1).expect("the replicas load the component");
    let alert = common_alert("vm-1", "stores-storm");
    let requests = (0..30).map(|_| Request::post_json("/alerts", &alert).header("x-api-key", KEY)).collect::<Vec<_>>();
    let answers = f.replicas.deliver(requests);
    let mut per_replica = [0usize; 3];
    let mut started = 0;
    let mut duplicates = 0;
    let mut ids = BTreeSet::new();
    for (replica, answer) in answers {
        per_replica[replica] += 1;
        let r = answer.expect("the component answers");
        let v: Value = r.json().unwrap_or(Value::Null);
        match r.status {
            202 => started += 1,
            200 if v["duplicate"] == true => duplicates += 1,
            s => panic!("unexpected answer {s}: {v}"),
        }
        ids.insert(first_capture(&v));
    }
    assert_eq!(per_replica, [10, 10, 10]);
    assert_eq!(started + duplicates, 30);
    assert!(started >= 1, "({started}, {duplicates})");
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!((1..=STORM_PUTS_AT_MOST).contains(&f.calls(routes::CAPTURE_PUT)), "{} PUTs", f.calls(routes::CAPTURE_PUT));
    assert_eq!(f.emu.captures().len(), 1);
}

#[test]
fn replicas_each_have_their_own_engine_and_counter_over_one_store() {
    let store = KvStore::new();
    let emu = azure_emulator::Emulator::start("127.0.0.1:0").unwrap();
    let replicas = Replicas::start(
        HostOptions {
            wasm: wasm_path(),
            manifest: repo_root().join("spin.toml"),
            variables: variables(&emu, &Sink::start(), &[]),
            store: Some(store.clone()),
            ..Default::default()
        },
        3,
        2,
    )
    .unwrap();
    assert!(replicas.hosts().iter().all(|h| h.kv().same_store(&store)));
    let answers = replicas.deliver((0..7).map(|_| Request::get("/healthz")).collect());
    assert!(answers.iter().all(|(_, r)| r.as_ref().is_ok_and(|r| r.status == 200)));
    let order: Vec<usize> = answers.iter().map(|(i, _)| *i).collect();
    assert_eq!(order, vec![0, 1, 2, 0, 1, 2, 0]);
    let served: Vec<u64> = replicas.hosts().iter().map(|h| h.requests_started()).collect();
    assert_eq!(served, vec![3, 2, 2]);
    assert_eq!(store.requests_begun(), 7);
}

// ---- issue 9's budgets, per request, through the .wasm ----------------------------------------

/// One request's calls and key-value operations against the budgets of issue 9, counted by the
/// emulator's journal and the host's per-request store counters, on `replicas` hosts over one
/// store. The figures are exact: a change in them is a change in the design (docs/STATE.md,
/// "Flows"), to be made on purpose.
fn budgets_per_request(platform: &Platform, replicas: usize) {
    let f = Fleet::start(platform, replicas, 3).expect("the replicas load the component");
    let ops =
        |c: &fleet::Cost| (c.kv.lists, c.kv.gets, c.kv.sets, c.kv.deletes, c.kv.exists + c.kv.increments + c.kv.cas);

    // Idle poll, nothing stored: one listing, nothing else.
    let c = f.cost(Request::post("/poll", Vec::new()));
    assert_eq!(c.response.status, 200, "{}", c.json());
    assert_eq!(c.json()["advanced"], 0);
    assert_eq!(c.calls, Vec::<String>::new());
    assert_eq!((c.kv.total(), c.kv.writes()), (1, 0), "idle poll: {:?}", c.kv);

    // Cold alert (no token, no watcher, region not in the payload): token, VM, watcher list,
    // PUT: the budget's 4 calls.
    let c = f.cost(Request::post_json("/alerts", &common_alert("vm-1", "budget-cold")));
    assert_eq!(c.response.status, 202, "{}", c.json());
    assert_eq!(c.calls, [routes::TOKEN, routes::VM_GET, routes::WATCHERS_LIST, routes::CAPTURE_PUT]);
    // The warm path's 6 operations and 3 writes, and the Azure cache (token, region, watcher)
    // written once at the end of the request.
    assert_eq!((c.kv.total(), c.kv.writes()), (7, 4), "cold alert: {:?}", c.kv);

    // Warm new alert, region in the payload (the classic schema's resourceRegion): the PUT only;
    // list, set claim, get cache, get claim, set record, set fact: 6 operations, 3 writes.
    let c = f.cost(Request::post_json("/alerts", &classic_alert("vm-2", "budget-warm")));
    assert_eq!(c.response.status, 202, "{}", c.json());
    assert_eq!(c.calls, [routes::CAPTURE_PUT]);
    assert_eq!(ops(&c), (1, 2, 3, 0, 0), "warm alert, region known: {:?}", c.kv);
    assert_eq!((c.kv.total(), c.kv.writes()), (6, 3));

    // Warm new alert whose region must be looked up (the common schema has none): the VM's
    // GET as well, and one more write to cache the region learnt.
    let c = f.cost(Request::post_json("/alerts", &common_alert("vm-3", "budget-lookup")));
    assert_eq!(c.response.status, 202, "{}", c.json());
    assert_eq!(c.calls, [routes::VM_GET, routes::CAPTURE_PUT]);
    assert_eq!(ops(&c), (1, 2, 4, 0, 0), "warm alert, region looked up: {:?}", c.kv);

    // Duplicate (Azure Monitor's retry of the warm alert): list + the fact's get, no call, no write.
    let c = f.cost(Request::post_json("/alerts", &classic_alert("vm-2", "budget-warm")));
    assert_eq!(c.response.status, 200, "{}", c.json());
    assert_eq!(c.json()["duplicate"], true, "{}", c.json());
    assert_eq!(c.calls, Vec::<String>::new());
    assert_eq!(ops(&c), (1, 1, 0, 0, 0), "duplicate: {:?}", c.kv);

    // A poll with nothing due but three captures running: the listing, and one read of each
    // active record (SPEC §7: a poll reads the active records; whether one is due is in the
    // record, not in its key). No call, no write.
    let c = f.cost(Request::post("/poll", Vec::new()));
    assert_eq!(c.response.status, 200, "{}", c.json());
    assert_eq!(c.json()["advanced"], 0, "{}", c.json());
    assert_eq!(c.calls, Vec::<String>::new());
    assert_eq!(ops(&c), (1, 3, 0, 0, 0), "poll, nothing due, 3 active: {:?}", c.kv);
}

#[test]
fn budgets_per_request_in_memory() {
    budgets_per_request(&Platform::Memory, 1);
}

#[test]
fn budgets_per_request_on_real_redis_with_three_replicas() {
    budgets_per_request(&Platform::Redis, 3);
}

#[test]
fn budgets_per_request_on_akamai_like_with_three_replicas() {
    budgets_per_request(&Platform::AkamaiLike(1), 3);
}
