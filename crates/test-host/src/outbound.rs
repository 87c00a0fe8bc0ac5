//! Outbound HTTP: `allowed_outbound_hosts` enforced as Spin does, every call journaled.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::logs::{LogBuffer, LogLine, Stream};
use crate::manifest::AllowedHost;

/// How an outbound call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundOutcome {
    /// Refused by the host: the destination is not in `allowed_outbound_hosts`.
    Denied,
    /// The response head arrived with this status.
    Status(u16),
    /// The call failed (connection refused, time-out, ...).
    Failed(String),
}

/// One outbound call a guest made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRecord {
    /// Order of the call over the host's life, from 0.
    pub seq: u64,
    /// The incoming request whose instance made the call.
    pub request_id: u64,
    /// The method, e.g. `PUT`.
    pub method: String,
    /// The full URL.
    pub url: String,
    /// How it ended.
    pub outcome: OutboundOutcome,
}

#[derive(Debug, Default)]
struct Inner {
    records: Mutex<Vec<OutboundRecord>>,
    next_seq: AtomicU64,
}

/// The journal of outbound calls, shared by every instance. Cloning gives another handle.
#[derive(Debug, Clone, Default)]
pub struct OutboundJournal {
    inner: Arc<Inner>,
}

impl OutboundJournal {
    /// Every call so far, in the order they ended (a denied call ends at once).
    pub fn records(&self) -> Vec<OutboundRecord> {
        self.inner.records.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many calls were attempted (denied ones included), including calls still running.
    pub fn count(&self) -> u64 {
        self.inner.next_seq.load(Ordering::SeqCst)
    }

    /// The calls one incoming request's instance made.
    pub fn for_request(&self, request_id: u64) -> Vec<OutboundRecord> {
        self.records().into_iter().filter(|r| r.request_id == request_id).collect()
    }

    fn start(&self) -> u64 {
        self.inner.next_seq.fetch_add(1, Ordering::SeqCst)
    }

    fn finish(&self, record: OutboundRecord) {
        self.inner.records.lock().unwrap_or_else(|p| p.into_inner()).push(record);
    }
}

/// The `WasiHttpHooks` of one instance.
pub(crate) struct OutboundHooks {
    pub(crate) allowed: Arc<Vec<AllowedHost>>,
    pub(crate) journal: OutboundJournal,
    pub(crate) logs: LogBuffer,
    pub(crate) request_id: u64,
    /// Outbound calls made by this instance.
    pub(crate) count: Arc<AtomicU64>,
}

impl OutboundHooks {
    fn allowed(&self, uri: &http::Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return false;
        };
        self.allowed.iter().any(|a| a.allows(scheme, host, uri.port_u16()))
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let seq = self.journal.start();
        self.count.fetch_add(1, Ordering::SeqCst);
        let mut record = OutboundRecord {
            seq,
            request_id: self.request_id,
            method: request.method().to_string(),
            url: request.uri().to_string(),
            outcome: OutboundOutcome::Denied,
        };
        if !self.allowed(request.uri()) {
            // Spin logs a warning naming the destination; do the same so tests can see why.
            self.logs.push(LogLine {
                request_id: self.request_id,
                stream: Stream::Host,
                text: format!("outbound request to {} denied: not in allowed_outbound_hosts", record.url),
            });
            self.journal.finish(record);
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let journal = self.journal.clone();
        Box::new(async move {
            use http_body_util::BodyExt;
            match wasmtime_wasi_http::default_send_request(request, options).await {
                Ok((response, io)) => {
                    record.outcome = OutboundOutcome::Status(response.status().as_u16());
                    journal.finish(record);
                    Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
                }
                Err(e) => {
                    record.outcome = OutboundOutcome::Failed(e.to_string());
                    journal.finish(record);
                    Err(e)
                }
            }
        })
    }
}
