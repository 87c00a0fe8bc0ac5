//! Spin's world mapped onto the core's ports. No decisions are made here.
//!
//! - Incoming: `wasi:http/incoming-handler`, body read up to 1 MiB + 1 byte (never whole).
//! - Outbound: `wasi:http/outgoing-handler` with time-outs, blocking on its pollable.
//! - Key-value: `fermyon:spin/key-value` for get/set/delete/get-keys (no atomics: issue 9).
//! - Variables: `fermyon:spin/variables`; clock: WASI wall clock.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use apc_core::api::{self, ApiRequest, MAX_BODY};
use apc_core::origin::Origin;
use apc_core::ports::{
    Clock, HttpClient, KvError, KvStore, Method, OutboundRequest, OutboundResponse, TransportError, UnixSeconds,
    Variables, World,
};
use futures::StreamExt;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types as wasi_http;

/// Outbound time-outs: an unanswered ARM call must not eat the whole request budget
/// (Akamai allows 30 s per request).
const CONNECT_TIMEOUT_NS: u64 = 5_000_000_000;
const FIRST_BYTE_TIMEOUT_NS: u64 = 10_000_000_000;
const BETWEEN_BYTES_TIMEOUT_NS: u64 = 10_000_000_000;
/// Largest outbound response we read (ARM lists are far smaller).
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

struct SpinHttp;

fn transport_error(e: wasi_http::ErrorCode) -> TransportError {
    use wasi_http::ErrorCode as E;
    match e {
        E::HttpRequestDenied => TransportError::Denied("the destination".to_string()),
        E::ConnectionTimeout | E::ConnectionReadTimeout | E::ConnectionWriteTimeout | E::HttpResponseTimeout => {
            TransportError::Timeout
        }
        E::DnsTimeout
        | E::DnsError(_)
        | E::DestinationNotFound
        | E::DestinationUnavailable
        | E::ConnectionRefused
        | E::ConnectionTerminated
        | E::ConnectionLimitReached => TransportError::Connection(format!("{e:?}")),
        other => TransportError::Other(format!("{other:?}")),
    }
}

/// Scheme, authority and path-with-query of an outbound URL, through the core's [`Origin`]:
/// a URL that is not plain http(s) (credentials, a fragment, stray characters) is not sent.
fn split_url(url: &str) -> Result<(wasi_http::Scheme, String, String), TransportError> {
    let (origin, path) = Origin::split_url(url).map_err(|e| TransportError::Other(format!("the URL {e}")))?;
    let scheme = match origin.scheme() {
        apc_core::origin::Scheme::Https => wasi_http::Scheme::Https,
        apc_core::origin::Scheme::Http => wasi_http::Scheme::Http,
    };
    Ok((scheme, origin.authority().to_string(), path))
}

/// Writes an outgoing request's body in chunks the stream accepts.
fn write_body(body: &wasi_http::OutgoingBody, bytes: &[u8]) -> Result<(), TransportError> {
    let out = body.write().map_err(|_| TransportError::Other("invalid body stream".into()))?;
    for chunk in bytes.chunks(4096) {
        out.blocking_write_and_flush(chunk)
            .map_err(|_| TransportError::Connection("request body could not be written".into()))?;
    }
    Ok(())
}

fn read_incoming_body(body: wasi_http::IncomingBody, limit: usize) -> Result<Vec<u8>, TransportError> {
    let stream = body.stream().map_err(|_| TransportError::Other("response body unavailable".into()))?;
    let mut out = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                out.extend_from_slice(&chunk);
                if out.len() > limit {
                    return Err(TransportError::Other("response body too large".into()));
                }
            }
            Err(wasi::io::streams::StreamError::Closed) => break,
            Err(_) => return Err(TransportError::Connection("response body broke off".into())),
        }
    }
    drop(stream);
    let _ = wasi_http::IncomingBody::finish(body);
    Ok(out)
}

impl HttpClient for SpinHttp {
    fn send(&self, r: &OutboundRequest) -> Result<OutboundResponse, TransportError> {
        let (scheme, authority, path) = split_url(&r.url)?;
        let headers = wasi_http::Fields::new();
        // A declared length rather than chunked encoding: some webhook receivers refuse chunks.
        if !r.body.is_empty() && r.header("content-length").is_none() {
            let _ = headers.append("content-length", r.body.len().to_string().as_bytes());
        }
        for (k, v) in &r.headers {
            headers.append(k, v.as_bytes()).map_err(|_| TransportError::Other(format!("header {k} refused")))?;
        }
        let req = wasi_http::OutgoingRequest::new(headers);
        let method = match r.method {
            Method::Get => wasi_http::Method::Get,
            Method::Post => wasi_http::Method::Post,
            Method::Put => wasi_http::Method::Put,
            Method::Delete => wasi_http::Method::Delete,
        };
        let bad = |what: &str| TransportError::Other(format!("invalid {what}"));
        req.set_method(&method).map_err(|_| bad("method"))?;
        req.set_scheme(Some(&scheme)).map_err(|_| bad("scheme"))?;
        req.set_authority(Some(&authority)).map_err(|_| bad("authority"))?;
        req.set_path_with_query(Some(&path)).map_err(|_| bad("path"))?;
        let body = req.body().map_err(|_| bad("body"))?;
        let options = wasi_http::RequestOptions::new();
        let _ = options.set_connect_timeout(Some(CONNECT_TIMEOUT_NS));
        let _ = options.set_first_byte_timeout(Some(FIRST_BYTE_TIMEOUT_NS));
        let _ = options.set_between_bytes_timeout(Some(BETWEEN_BYTES_TIMEOUT_NS));
        // The request goes to the handler before its body is written: until then the body
        // stream has no reader, and a body larger than its buffer would block forever.
        let future = outgoing_handler::handle(req, Some(options)).map_err(transport_error)?;
        let written = write_body(&body, &r.body);
        // A body that could not be written is dropped unfinished, which fails the request; the
        // handler's own error (e.g. a host the manifest does not allow) says more, so it wins.
        let finished = match written {
            Ok(()) => wasi_http::OutgoingBody::finish(body, None).map_err(transport_error),
            Err(_) => {
                drop(body);
                Ok(())
            }
        };
        let response = loop {
            match future.get() {
                Some(result) => break result,
                None => future.subscribe().block(),
            }
        };
        let response =
            response.map_err(|_| TransportError::Other("response already taken".into()))?.map_err(transport_error)?;
        written?;
        finished?;
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let body = response.consume().map_err(|_| TransportError::Other("response body unavailable".into()))?;
        let body = read_incoming_body(body, MAX_RESPONSE)?;
        Ok(OutboundResponse { status, headers, body })
    }
}

/// The `default` store, through Spin's key-value interface.
/// Opened on first use, so requests that never touch state (`/healthz`, a refused key) work
/// even while the store is down.
#[derive(Default)]
struct SpinKv {
    opened: std::cell::OnceCell<spin_sdk::key_value::Store>,
}

fn kv_err(e: impl std::fmt::Debug) -> KvError {
    KvError(format!("{e:?}"))
}

impl SpinKv {
    fn store(&self) -> Result<&spin_sdk::key_value::Store, KvError> {
        if let Some(s) = self.opened.get() {
            return Ok(s);
        }
        let store = spin_sdk::key_value::Store::open_default().map_err(kv_err)?;
        Ok(self.opened.get_or_init(|| store))
    }
}

impl KvStore for SpinKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.store()?.get(key).map_err(kv_err)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.store()?.set(key, value).map_err(kv_err)
    }
    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.store()?.delete(key).map_err(kv_err)
    }
    fn list_keys(&self) -> Result<Vec<String>, KvError> {
        self.store()?.get_keys().map_err(kv_err)
    }
}

struct SpinVars;

impl Variables for SpinVars {
    fn get(&self, name: &str) -> Option<String> {
        spin_sdk::variables::get(name).ok()
    }
}

struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> UnixSeconds {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    }
    /// `wasi:clocks` monotonic sleep; the core only asks for a few seconds within its deadline.
    fn sleep(&self, secs: u64) -> bool {
        std::thread::sleep(std::time::Duration::from_secs(secs));
        true
    }
}

/// A request id for log lines and for create claims (`v1:claim:*`): the time plus 64
/// random bits (std seeds `RandomState` from `wasi:random`), so two requests in the same
/// nanosecond still differ.
fn request_id(start: SystemTime) -> String {
    use std::hash::{BuildHasher, Hasher};
    let n = start.duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    format!("{:012x}{random:016x}", (n as u64) & 0xffff_ffff_ffff)
}

async fn read_body(req: IncomingRequest) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => {
                if body.len() + c.len() > MAX_BODY {
                    return (Vec::new(), true);
                }
                body.extend_from_slice(&c);
            }
            Err(_) => break,
        }
    }
    (body, false)
}

fn respond(out: ResponseOutparam, status: u16, headers: &[(String, String)], body: &[u8]) {
    let fields = Fields::new();
    for (k, v) in headers {
        let _ = fields.append(k, v.as_bytes());
    }
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(status);
    let Ok(out_body) = response.body() else { return };
    ResponseOutparam::set(out, response);
    if let Ok(stream) = out_body.write() {
        for chunk in body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
    let _ = spin_sdk::http::OutgoingBody::finish(out_body, None);
}

fn method_name(m: &spin_sdk::http::Method) -> String {
    use spin_sdk::http::Method as M;
    match m {
        M::Get => "GET",
        M::Head => "HEAD",
        M::Post => "POST",
        M::Put => "PUT",
        M::Delete => "DELETE",
        M::Connect => "CONNECT",
        M::Options => "OPTIONS",
        M::Trace => "TRACE",
        M::Patch => "PATCH",
        M::Other(s) => return s.to_ascii_uppercase(),
    }
    .to_string()
}

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let started = Instant::now();
    let wall = SystemTime::now();
    let headers: Vec<(String, String)> =
        req.headers().entries().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned())).collect();
    let method = method_name(&req.method());
    let path_with_query = req.path_with_query().unwrap_or_else(|| "/".to_string());
    let (full_path, query) = match path_with_query.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (path_with_query.clone(), String::new()),
    };
    // Spin passes the part of the path below the component's route in `spin-path-info`.
    let path = apc_core::ports::find_header(&headers, "spin-path-info").map(str::to_string).unwrap_or(full_path);
    let declared_len =
        apc_core::ports::find_header(&headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let (body, too_large) =
        if declared_len.is_some_and(|n| n > MAX_BODY as u64) { (Vec::new(), true) } else { read_body(req).await };
    let api_req =
        ApiRequest { method, path, query, headers, body, body_too_large: too_large, request_id: request_id(wall) };

    let kv = SpinKv::default();
    let world = World { http: &SpinHttp, kv: &kv, clock: &WallClock };
    let resp = api::handle(&api_req, &SpinVars, world);
    let mut log = resp.log;
    log["duration_ms"] = serde_json::json!(started.elapsed().as_millis() as u64);
    println!("{log}");
    respond(out, resp.status, &resp.headers, &resp.body);
}
