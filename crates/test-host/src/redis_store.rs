//! The Redis-backed store: a real `redis-server` reached with the `redis` crate's sync client,
//! with Spin's Redis store semantics (docs/PLATFORM.md), and [`RedisServer`], a throwaway
//! server for tests.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::{Connection, Value};

use crate::kv::{CasSemantics, KvFailure, Snapshot, swap_allowed};

/// How long one Redis command may take before the guest sees an error.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

fn failure(e: redis::RedisError) -> KvFailure {
    KvFailure(format!("redis: {e}"))
}

/// Connections to one Redis server, reused across operations.
pub(crate) struct RedisBackend {
    client: redis::Client,
    pool: Mutex<Vec<Connection>>,
    url: String,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend").field("url", &self.url).finish_non_exhaustive()
    }
}

impl RedisBackend {
    pub(crate) fn connect(url: &str) -> Result<Self, KvFailure> {
        let client = redis::Client::open(url).map_err(failure)?;
        let backend = Self { client, pool: Mutex::default(), url: url.to_string() };
        backend.with(|c| redis::cmd("PING").query::<String>(c))?;
        Ok(backend)
    }

    /// Runs `f` on a pooled connection; a connection that failed is dropped, not reused.
    fn with<R>(&self, f: impl FnOnce(&mut Connection) -> redis::RedisResult<R>) -> Result<R, KvFailure> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => {
                let c = self.client.get_connection_with_timeout(IO_TIMEOUT).map_err(failure)?;
                c.set_read_timeout(Some(IO_TIMEOUT)).map_err(failure)?;
                c.set_write_timeout(Some(IO_TIMEOUT)).map_err(failure)?;
                c
            }
        };
        let result = f(&mut conn).map_err(failure);
        if result.is_ok() {
            self.pool.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
        }
        result
    }

    pub(crate) fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvFailure> {
        self.with(|c| redis::cmd("GET").arg(key).query(c))
    }

    pub(crate) fn set(&self, key: &str, value: &[u8]) -> Result<(), KvFailure> {
        self.with(|c| redis::cmd("SET").arg(key).arg(value).query(c))
    }

    pub(crate) fn delete(&self, key: &str) -> Result<(), KvFailure> {
        self.with(|c| redis::cmd("DEL").arg(key).query::<i64>(c)).map(drop)
    }

    pub(crate) fn exists(&self, key: &str) -> Result<bool, KvFailure> {
        self.with(|c| redis::cmd("EXISTS").arg(key).query::<i64>(c)).map(|n| n > 0)
    }

    pub(crate) fn len(&self) -> Result<usize, KvFailure> {
        self.with(|c| redis::cmd("DBSIZE").query(c))
    }

    /// Every key, by `SCAN` (never `KEYS`, which blocks the server), sorted and deduplicated
    /// (`SCAN` may return a key twice).
    pub(crate) fn keys(&self) -> Result<Vec<String>, KvFailure> {
        self.with(|c| {
            let mut keys = std::collections::BTreeSet::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, page): (u64, Vec<String>) = redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(200).query(c)?;
                keys.extend(page);
                if next == 0 {
                    return Ok(keys.into_iter().collect());
                }
                cursor = next;
            }
        })
    }

    /// `INCRBY`, as Spin's Redis store does: the counter is kept as decimal text.
    pub(crate) fn incr_by(&self, key: &str, delta: i64) -> Result<i64, KvFailure> {
        self.with(|c| redis::cmd("INCRBY").arg(key).arg(delta).query(c))
    }

    /// A real compare-and-swap on the server: `WATCH`, compare, `MULTI`/`SET`/`EXEC` (which the
    /// server aborts if the key changed after `WATCH`). Answers whether it wrote and the key's
    /// value afterwards; the caller turns that into the platform's answer.
    pub(crate) fn compare_and_swap(
        &self,
        key: &str,
        semantics: CasSemantics,
        snapshot: &Snapshot,
        value: &[u8],
    ) -> Result<(bool, Option<Vec<u8>>), KvFailure> {
        self.with(|c| {
            redis::cmd("WATCH").arg(key).query::<()>(c)?;
            let current: Option<Vec<u8>> = redis::cmd("GET").arg(key).query(c)?;
            if !swap_allowed(semantics, snapshot, current.as_deref()) {
                redis::cmd("UNWATCH").query::<()>(c)?;
                return Ok((false, current));
            }
            redis::cmd("MULTI").query::<()>(c)?;
            redis::cmd("SET").arg(key).arg(value).query::<Value>(c)?;
            match redis::cmd("EXEC").query::<Value>(c)? {
                Value::Nil => {
                    let now: Option<Vec<u8>> = redis::cmd("GET").arg(key).query(c)?;
                    Ok((false, now))
                }
                _ => Ok((true, Some(value.to_vec()))),
            }
        })
    }
}

/// Why a [`RedisServer`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum RedisServerError {
    /// `redis-server` is not installed.
    #[error(
        "redis-server is not installed (looked for `redis-server` on PATH): the Redis store tests need a real \
         server; .ci/run and scripts/test.sh install it with `apt-get install -y redis-server`"
    )]
    Missing,
    /// It started but did not answer.
    #[error("redis-server did not start: {0}")]
    Start(String),
}

/// A throwaway `redis-server` on a free loopback port, with no persistence (`--save ''
/// --appendonly no`) and its working folder in a temp dir; stopped and removed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING` (a few tries: another process may
    /// take the free port between the probe and the server's bind).
    pub fn start() -> Result<Self, RedisServerError> {
        let mut last = None;
        for _ in 0..5 {
            match Self::start_once() {
                Ok(server) => return Ok(server),
                Err(RedisServerError::Missing) => return Err(RedisServerError::Missing),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| RedisServerError::Start("no attempt made".into())))
    }

    fn start_once() -> Result<Self, RedisServerError> {
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").map_err(|e| RedisServerError::Start(e.to_string()))?;
            probe.local_addr().map_err(|e| RedisServerError::Start(e.to_string()))?.port()
        };
        let dir = std::env::temp_dir().join(format!("test-host-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| RedisServerError::Start(format!("{}: {e}", dir.display())))?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => RedisServerError::Missing,
                _ => RedisServerError::Start(e.to_string()),
            })?;
        let mut server = Self { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ping = redis::Client::open(server.url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            match ping {
                Ok(_) => return Ok(server),
                Err(e) if Instant::now() > deadline => return Err(RedisServerError::Start(e.to_string())),
                Err(_) => {}
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(RedisServerError::Start(format!("exited with {status} (port {port} taken?)")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a server, or panics with what to do: for tests.
    pub fn start_for_tests() -> Self {
        Self::start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // Only the child this value started.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
