//! A small HTTP/1.1 server on std threads: one thread per connection, keep-alive, request
//! bodies with `Content-Length` or chunked encoding. Enough for the clients that talk to the
//! emulator, and it lets a handler close a connection without answering.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted (the component sends far less).
const MAX_BODY: usize = 8 * 1024 * 1024;
/// How long an idle keep-alive connection is kept open.
const IDLE_POLLS: u32 = 60;
const POLL: Duration = Duration::from_millis(500);

/// One parsed request.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: String,
    /// The raw path, before `?`, still percent-encoded.
    pub path: String,
    /// The raw query string without `?` (empty when absent).
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// First header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Value of a query parameter, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json; charset=utf-8".into())],
            body: value.to_string().into_bytes(),
        }
    }

    pub fn empty(status: u16) -> Self {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// What the handler wants done with a request.
pub(crate) enum Reply {
    Send(Response),
    /// Close the connection without writing anything.
    Drop,
}

pub(crate) type Handler = dyn Fn(Request) -> Reply + Send + Sync;

/// A running server; stops accepting when dropped.
pub(crate) struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(listen: &str, handler: Arc<Handler>) -> io::Result<Server> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_accept = Arc::clone(&stop);
        let accept = std::thread::Builder::new()
            .name("azure-emulator-accept".into())
            .spawn(move || accept_loop(listener, handler, stop_accept))?;
        Ok(Server { addr, stop, accept: Some(accept) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
    }
}

fn accept_loop(listener: TcpListener, handler: Arc<Handler>, stop: Arc<AtomicBool>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let handler = Arc::clone(&handler);
        let stop = Arc::clone(&stop);
        let _ = std::thread::Builder::new()
            .name("azure-emulator-conn".into())
            .spawn(move || serve_connection(stream, handler, stop));
    }
}

fn serve_connection(mut stream: TcpStream, handler: Arc<Handler>, stop: Arc<AtomicBool>) {
    let _ = stream.set_read_timeout(Some(POLL));
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let request = match read_request(&mut stream, &mut buf, &stop) {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(status) => {
                let resp = Response::json(
                    status,
                    &serde_json::json!({"error":{"code":"BadRequest","message":"Malformed HTTP request."}}),
                );
                let _ = write_response(&mut stream, &resp, true);
                break;
            }
        };
        let close = wants_close(&request);
        match handler(request) {
            Reply::Send(resp) => {
                if write_response(&mut stream, &resp, close).is_err() || close {
                    break;
                }
            }
            Reply::Drop => break,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

fn wants_close(req: &Request) -> bool {
    req.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads more bytes into `buf`. `Ok(false)` on EOF; timeouts count idle polls.
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, stop: &AtomicBool, idle: &mut u32) -> Result<bool, u16> {
    let mut chunk = [0u8; 8192];
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                *idle = 0;
                return Ok(true);
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                *idle += 1;
                if *idle >= IDLE_POLLS {
                    return Ok(false);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Ok(false),
        }
    }
}

/// Reads one request. `Ok(None)` when the peer closed (or idled out) between requests;
/// `Err(status)` for a malformed request.
fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>, stop: &AtomicBool) -> Result<Option<Request>, u16> {
    let mut idle = 0;
    let head_end = loop {
        if let Some(pos) = find(buf, b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD {
            return Err(431);
        }
        if !fill(stream, buf, stop, &mut idle)? {
            return Ok(None);
        }
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| 400u16)?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().ok_or(400u16)?;
    let mut parts = request_line.split(' ');
    let method = parts.next().filter(|m| !m.is_empty()).ok_or(400u16)?;
    let target = parts.next().ok_or(400u16)?;
    let version = parts.next().ok_or(400u16)?;
    if !version.starts_with("HTTP/1.") {
        return Err(400);
    }
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line.split_once(':').ok_or(400u16)?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    };
    let mut request = Request { method: method.to_string(), path, query, headers, body: Vec::new() };
    if version == "HTTP/1.0" && request.header("connection").is_none() {
        request.headers.push(("Connection".to_string(), "close".to_string()));
    }
    buf.drain(..head_end + 4);

    let chunked = request.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        request.body = read_chunked(stream, buf, stop)?;
    } else if let Some(len) = request.header("content-length") {
        let len: usize = len.parse().map_err(|_| 400u16)?;
        if len > MAX_BODY {
            return Err(413);
        }
        let mut idle = 0;
        while buf.len() < len {
            if !fill(stream, buf, stop, &mut idle)? {
                return Err(400);
            }
        }
        request.body = buf.drain(..len).collect();
    }
    Ok(Some(request))
}

fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>, stop: &AtomicBool) -> Result<Vec<u8>, u16> {
    let mut body = Vec::new();
    let mut idle = 0;
    loop {
        let line_end = loop {
            if let Some(pos) = find(buf, b"\r\n") {
                break pos;
            }
            if buf.len() > MAX_HEAD || !fill(stream, buf, stop, &mut idle)? {
                return Err(400);
            }
        };
        let size_text = std::str::from_utf8(&buf[..line_end]).map_err(|_| 400u16)?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| 400u16)?;
        buf.drain(..line_end + 2);
        if size == 0 {
            // Skip trailers up to the blank line.
            loop {
                if let Some(pos) = find(buf, b"\r\n") {
                    let blank = pos == 0;
                    buf.drain(..pos + 2);
                    if blank {
                        return Ok(body);
                    }
                } else if !fill(stream, buf, stop, &mut idle)? {
                    return Err(400);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(413);
        }
        while buf.len() < size + 2 {
            if !fill(stream, buf, stop, &mut idle)? {
                return Err(400);
            }
        }
        body.extend(buf.drain(..size));
        buf.drain(..2);
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn write_response(stream: &mut TcpStream, resp: &Response, close: bool) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        // Header values come from our own code, but never let a newline split the head.
        let v: String = v.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    out.push_str(if close { "Connection: close\r\n\r\n" } else { "Connection: keep-alive\r\n\r\n" });
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&resp.body);
    stream.write_all(&bytes)?;
    stream.flush()
}
