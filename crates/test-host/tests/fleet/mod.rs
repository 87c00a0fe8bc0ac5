//! Replicas of the app on one store (in memory, real Redis, or Akamai-like), with the Azure
//! emulator and a notification sink: the platform worlds of tests/stores.rs and of
//! examples/apc-stores.rs. Uses `crate::common`, which both include.

#![allow(dead_code)]

use std::time::Duration;

use azure_emulator::Emulator;
use test_host::{HostError, HostOptions, KvCounts, KvStore, RedisServer, Replicas, Request, Response, Staleness};

use crate::common::{App, KEY, Sink, repo_root, seeded_emulator, variables, wasm_path};

/// A platform's store, as the tests and the bench set it up.
pub enum Platform {
    /// In memory with a strict compare-and-swap (Spin's SQLite store as `spin up` runs it).
    Memory,
    /// A real `redis-server` started for the run (SpinKube with a Redis store).
    Redis,
    /// Akamai-like: replicated, other requests' writes hidden for this many requests, no atomics.
    AkamaiLike(u64),
}

impl Platform {
    /// The store, and the Redis server it needs (kept alive as long as the store is used).
    pub fn store(&self) -> (KvStore, Option<RedisServer>) {
        match self {
            Platform::Memory => (KvStore::new(), None),
            Platform::Redis => {
                let server = RedisServer::start_for_tests();
                let store = KvStore::redis(&server.url()).expect("the store connects to the test's redis-server");
                (store, Some(server))
            }
            Platform::AkamaiLike(n) => (KvStore::akamai_like(Staleness::Requests(*n)), None),
        }
    }
}

/// What one request cost (issue 9's budgets): its answer, the Azure routes it called in order
/// (from the emulator's journal), and the key-value operations the host counted for it.
pub struct Cost {
    pub response: Response,
    pub calls: Vec<String>,
    pub kv: KvCounts,
}

impl Cost {
    /// The answer's body as JSON (`Null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        self.response.json().unwrap_or(serde_json::Value::Null)
    }
}

/// `replicas` hosts on one store, the emulator with VMs `vm-1` … `vm-{vms}` and a watcher in
/// `westus`, and a sink. Fields drop in order: hosts before the Redis server.
pub struct Fleet {
    pub replicas: Replicas,
    pub emu: Emulator,
    pub sink: Sink,
    pub redis: Option<RedisServer>,
}

impl App for Fleet {
    fn send(&self, req: Request) -> Response {
        self.replicas.request_blocking(req.header("x-api-key", KEY)).expect("the component answers")
    }

    fn emulator(&self) -> &Emulator {
        &self.emu
    }
}

impl Fleet {
    /// Starts everything; `Err` when the hosts refuse the component (e.g. a missing import).
    pub fn start(platform: &Platform, replicas: usize, vms: usize) -> Result<Fleet, HostError> {
        let (store, redis) = platform.store();
        Self::on_store(store, redis, replicas, vms, &[])
    }

    /// Like [`Fleet::start`] on a store already made, with `extra` application variables.
    pub fn on_store(
        store: KvStore,
        redis: Option<RedisServer>,
        replicas: usize,
        vms: usize,
        extra: &[(&str, &str)],
    ) -> Result<Fleet, HostError> {
        let emu = seeded_emulator(vms);
        let sink = Sink::start();
        let options = HostOptions {
            wasm: wasm_path(),
            manifest: repo_root().join("spin.toml"),
            variables: variables(&emu, &sink, extra),
            store: Some(store),
            ..Default::default()
        };
        let replicas = Replicas::start(options, replicas, 8)?;
        Ok(Fleet { replicas, emu, sink, redis })
    }

    /// Sends one authenticated request and measures it. Requests must not overlap it: the
    /// journal's new entries are taken as its calls.
    pub fn cost(&self, req: Request) -> Cost {
        let before = self.emu.journal().len();
        let response = self.send(req);
        let calls = self.emu.journal().into_iter().skip(before).map(|e| e.route).collect();
        let kv = response.stats.kv;
        Cost { response, calls, kv }
    }

    /// Let `secs` pass for every replica and for Azure.
    pub fn advance(&self, secs: i64) {
        self.replicas.clock().advance(secs);
        self.emu.advance_clock(Duration::from_secs(secs as u64));
    }
}
