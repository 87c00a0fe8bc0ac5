//! Several hosts over one store, as SpinKube's replicas of one app share their Redis store:
//! each host has its own wasmtime engine, its own instances and its own request counter; the
//! store and the guests' clock are shared. Deliveries are spread round-robin.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use crate::clock::TestClock;
use crate::host::{Host, HostError, HostOptions, Request, Response};
use crate::kv::KvStore;

/// `N` replicas of one app on one store, and a bounded pool of threads to drive them.
pub struct Replicas {
    hosts: Vec<Host>,
    store: KvStore,
    clock: TestClock,
    next: AtomicUsize,
    threads: usize,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicas")
            .field("replicas", &self.hosts.len())
            .field("store", &self.store.kind())
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl Replicas {
    /// Starts `replicas` hosts (at least one) from `options`, all on `options.store` (a new
    /// in-memory store when `None`) and one clock, each with its own engine; deliveries run on
    /// `threads` worker threads (at least one), at most `threads` at a time.
    pub fn start(options: HostOptions, replicas: usize, threads: usize) -> Result<Self, HostError> {
        let store = options.store.clone().unwrap_or_default();
        let clock = options.clock.clone().unwrap_or_default();
        let hosts = (0..replicas.max(1))
            .map(|_| {
                Host::new(HostOptions {
                    store: Some(store.clone()),
                    clock: Some(clock.clone()),
                    own_engine: true,
                    ..options.clone()
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let threads = threads.max(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .map_err(|e| HostError::Load(format!("cannot start a tokio runtime: {e}")))?;
        Ok(Self { hosts, store, clock, next: AtomicUsize::new(0), threads, runtime })
    }

    /// The hosts, in round-robin order.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The store they share.
    pub fn store(&self) -> &KvStore {
        &self.store
    }

    /// The guests' clock they share.
    pub fn clock(&self) -> &TestClock {
        &self.clock
    }

    /// The host the next delivery goes to, and its index; moves the round-robin on.
    pub fn next_host(&self) -> (usize, &Host) {
        let i = self.next.fetch_add(1, Ordering::SeqCst) % self.hosts.len();
        (i, &self.hosts[i])
    }

    /// Delivers one request to the next replica (from async code).
    pub async fn request(&self, request: Request) -> Result<Response, HostError> {
        self.next_host().1.request(request).await
    }

    /// Delivers one request to the next replica and waits for the answer (from sync code).
    pub fn request_blocking(&self, request: Request) -> Result<Response, HostError> {
        let host = self.next_host().1.clone();
        self.runtime.block_on(async move { host.request(request).await })
    }

    /// Delivers every request concurrently, round-robin over the replicas, at most as many at a
    /// time as the pool has threads. Answers in request order, each with the index of the
    /// replica that served it.
    pub fn deliver(&self, requests: Vec<Request>) -> Vec<(usize, Result<Response, HostError>)> {
        self.deliver_in_flight(requests, self.threads)
    }

    /// [`Self::deliver`] with at most `in_flight` requests at a time (at least one), on the
    /// same threads.
    pub fn deliver_in_flight(
        &self,
        requests: Vec<Request>,
        in_flight: usize,
    ) -> Vec<(usize, Result<Response, HostError>)> {
        let limit = Arc::new(Semaphore::new(in_flight.max(1)));
        let jobs: Vec<_> = requests
            .into_iter()
            .map(|request| {
                let (i, host) = self.next_host();
                (i, host.clone(), request)
            })
            .collect();
        self.runtime.block_on(async move {
            let mut handles = Vec::with_capacity(jobs.len());
            for (i, host, request) in jobs {
                let limit = limit.clone();
                handles.push(tokio::spawn(async move {
                    // The semaphore is never closed, so a permit always comes.
                    let _permit = limit.acquire_owned().await.ok();
                    (i, host.request(request).await)
                }));
            }
            let mut out = Vec::with_capacity(handles.len());
            for h in handles {
                out.push(match h.await {
                    Ok(answer) => answer,
                    Err(e) => (usize::MAX, Err(HostError::Guest(format!("delivery task failed: {e}")))),
                });
            }
            out
        })
    }
}
