//! `apc-serve`: serves the component over real HTTP with the test host, for machines without
//! Spin (`scripts/run.sh` uses it when `spin` is not on PATH).
//!
//! Like `spin up`: every request gets a fresh instance, variables come from the manifest's
//! defaults, `SPIN_VARIABLE_<NAME>` environment variables and `--variable name=value` (in that
//! order of precedence, lowest first), and the component's stdout/stderr lines are echoed.
//! The key-value store lives in memory and is lost when the process ends.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use test_host::{Host, HostError, HostOptions, Manifest, ManifestError, Request, Stream};
use tokio::net::TcpListener;
use wasmtime_wasi_http::io::TokioIo;

const USAGE: &str = "\
usage: apc-serve [options]

Serves a Spin HTTP component on plain HTTP with a wasmtime host (a stand-in for `spin up`).

options:
  --listen ADDR            address to listen on (default 127.0.0.1:3000; port 0 picks one)
  --manifest PATH          the spin.toml to read (default spin.toml)
  --wasm PATH              the component (default: the manifest component's `source`,
                           relative to the manifest's folder)
  --variable NAME=VALUE    an application variable (repeatable); wins over SPIN_VARIABLE_<NAME>
  -h, --help               this text

The first line on stdout is `apc-serve listening on http://ADDR` (the bound address).";

/// The command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    listen: String,
    manifest: PathBuf,
    wasm: Option<PathBuf>,
    /// `--variable` values in the order given (a later one wins).
    variables: Vec<(String, String)>,
}

/// Why `apc-serve` could not start.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
}

/// Parses the arguments (without the program name); `Ok(None)` means `--help`.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        listen: "127.0.0.1:3000".to_string(),
        manifest: PathBuf::from("spin.toml"),
        wasm: None,
        variables: Vec::new(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Both `--name value` and `--name=value`.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{name} needs a value"));
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => options.listen = value()?,
            "--manifest" => options.manifest = PathBuf::from(value()?),
            "--wasm" => options.wasm = Some(PathBuf::from(value()?)),
            "--variable" => {
                let pair = value()?;
                let Some((k, v)) = pair.split_once('=') else {
                    return Err(format!("--variable {pair:?}: expected NAME=VALUE"));
                };
                if k.is_empty() {
                    return Err(format!("--variable {pair:?}: the name is empty"));
                }
                options.variables.push((k.to_string(), v.to_string()));
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(Some(options))
}

/// The variable values to give the host: `SPIN_VARIABLE_<NAME>` (looked up through `env`) for
/// each variable the manifest declares, then `--variable` flags on top. Undeclared flags are
/// kept, so the host refuses them by name rather than silently ignoring a typo.
fn variable_values(
    manifest: &Manifest,
    env: impl Fn(&str) -> Option<String>,
    flags: &[(String, String)],
) -> HashMap<String, String> {
    let mut values: HashMap<String, String> = manifest
        .variables
        .keys()
        .filter_map(|name| env(&format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())).map(|v| (name.clone(), v)))
        .collect();
    values.extend(flags.iter().cloned());
    values
}

/// `--wasm`, else the component's `source` relative to the manifest's folder.
fn wasm_path(manifest: &Manifest, explicit: Option<PathBuf>) -> Result<PathBuf, ManifestError> {
    match explicit {
        Some(path) => Ok(path),
        None => {
            let (_, spec) = manifest.component(None)?;
            Ok(manifest.dir.join(&spec.source))
        }
    }
}

/// Prints what the guests wrote since the last call: stdout lines (the component's JSON log
/// lines) to stdout, stderr and host messages to stderr.
fn print_logs(host: &Host) {
    let lines = host.logs().drain();
    if lines.is_empty() {
        return;
    }
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for line in lines {
        // A closed stdout must not take the server down: the answer still goes out.
        let _ = match line.stream {
            Stream::Stdout => writeln!(out, "{}", line.text),
            Stream::Stderr => writeln!(err, "{}", line.text),
            Stream::Host => writeln!(err, "apc-serve: {}", line.text),
        };
    }
    let _ = out.flush();
}

/// Request headers that describe this hop, not the request: the host sets its own `host`, and
/// the body is handed over whole, so a `transfer-encoding` would lie.
fn is_hop_header(name: &str) -> bool {
    matches!(name, "host" | "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "te" | "upgrade")
}

/// The incoming request in the host's terms.
fn host_request(parts: &http::request::Parts, body: Bytes) -> Request {
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).filter(|p| p.starts_with('/')).unwrap_or("/");
    let mut request = Request::new(parts.method.clone(), path_and_query).body(body.to_vec());
    for (name, value) in &parts.headers {
        if !is_hop_header(name.as_str()) {
            request = request.header(name.as_str(), String::from_utf8_lossy(value.as_bytes()));
        }
    }
    request
}

fn plain(status: u16, text: &str) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    response
}

/// Serves one request with a fresh instance and turns the host's answer into an HTTP answer.
async fn handle(host: &Host, request: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return plain(400, &format!("cannot read the request body: {e}")),
    };
    let result = host.request(host_request(&parts, body)).await;
    print_logs(host);
    match result {
        Ok(answer) => {
            let mut response = hyper::Response::new(Full::new(Bytes::from(answer.body)));
            *response.status_mut() =
                http::StatusCode::from_u16(answer.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
            for (name, value) in answer.headers {
                // The host collected the body whole; hyper sets the framing for it.
                if is_hop_header(&name) {
                    continue;
                }
                if let (Ok(name), Ok(value)) =
                    (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_str(&value))
                {
                    response.headers_mut().append(name, value);
                }
            }
            response
        }
        Err(e) => {
            eprintln!("apc-serve: {} {}: {e}", parts.method, parts.uri.path());
            // Spin answers a trapped or failed guest with a bare 500.
            match e {
                HostError::BadRequest(why) => plain(400, &why),
                _ => plain(500, "Internal Server Error"),
            }
        }
    }
}

/// Accepts connections until the process ends.
async fn serve(listener: TcpListener, host: Host) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // E.g. out of file descriptors: wait a little rather than spin.
                eprintln!("apc-serve: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let host = host.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let host = host.clone();
                async move { Ok::<_, Infallible>(handle(&host, request).await) }
            });
            // A client that hangs up mid-request is not worth a log line.
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn start(options: Options) -> Result<(), StartError> {
    let manifest = Manifest::load(&options.manifest)?;
    let variables = variable_values(&manifest, |name| std::env::var(name).ok(), &options.variables);
    let wasm = wasm_path(&manifest, options.wasm)?;
    let host_options = HostOptions { wasm, manifest: options.manifest, variables, ..Default::default() };
    // Compiling takes seconds; keep the runtime's workers free meanwhile.
    let host = tokio::task::spawn_blocking(move || Host::new(host_options))
        .await
        .map_err(|e| HostError::Load(format!("compile task failed: {e}")))??;
    let listener = TcpListener::bind(&options.listen)
        .await
        .map_err(|source| StartError::Listen { addr: options.listen.clone(), source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen { addr: options.listen.clone(), source })?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "apc-serve listening on http://{addr}");
        let _ = out.flush();
    }
    serve(listener, host).await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("apc-serve: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match start(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("apc-serve: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
webhook_keys = { required = true }
notify_format = { default = "json" }
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "target/c.wasm"
"#;

    #[test]
    fn defaults_when_no_arguments() {
        let options = parse_args(args(&[])).unwrap().unwrap();
        assert_eq!(options.listen, "127.0.0.1:3000");
        assert_eq!(options.manifest, PathBuf::from("spin.toml"));
        assert_eq!(options.wasm, None);
        assert!(options.variables.is_empty());
    }

    #[test]
    fn every_option_in_both_spellings() {
        let options = parse_args(args(&[
            "--listen",
            "127.0.0.1:0",
            "--manifest=app/spin.toml",
            "--wasm",
            "x.wasm",
            "--variable",
            "webhook_keys=a=b",
            "--variable=notify_format=slack",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(options.listen, "127.0.0.1:0");
        assert_eq!(options.manifest, PathBuf::from("app/spin.toml"));
        assert_eq!(options.wasm, Some(PathBuf::from("x.wasm")));
        assert_eq!(
            options.variables,
            vec![("webhook_keys".into(), "a=b".into()), ("notify_format".into(), "slack".into())]
        );
    }

    #[test]
    fn bad_arguments_are_refused_by_name() {
        assert_eq!(parse_args(args(&["--listen"])).unwrap_err(), "--listen needs a value");
        assert!(parse_args(args(&["--variable", "novalue"])).unwrap_err().contains("NAME=VALUE"));
        assert!(parse_args(args(&["--variable", "=v"])).unwrap_err().contains("name is empty"));
        assert_eq!(parse_args(args(&["--port", "1"])).unwrap_err(), "unknown option --port");
        assert_eq!(parse_args(args(&["-h"])).unwrap(), None);
    }

    #[test]
    fn flags_win_over_environment_and_only_declared_names_are_read() {
        let manifest = Manifest::parse(MANIFEST, "app").unwrap();
        let env = |name: &str| match name {
            "SPIN_VARIABLE_WEBHOOK_KEYS" => Some("from-env".to_string()),
            "SPIN_VARIABLE_NOTIFY_FORMAT" => Some("teams".to_string()),
            "SPIN_VARIABLE_UNDECLARED" => Some("ignored".to_string()),
            _ => None,
        };
        let values = variable_values(&manifest, env, &[("notify_format".into(), "slack".into())]);
        assert_eq!(values.get("webhook_keys").map(String::as_str), Some("from-env"));
        assert_eq!(values.get("notify_format").map(String::as_str), Some("slack"));
        assert_eq!(values.len(), 2);
    }

    #[test]
    fn wasm_defaults_to_the_source_beside_the_manifest() {
        let manifest = Manifest::parse(MANIFEST, "app").unwrap();
        assert_eq!(wasm_path(&manifest, None).unwrap(), PathBuf::from("app/target/c.wasm"));
        assert_eq!(wasm_path(&manifest, Some("y.wasm".into())).unwrap(), PathBuf::from("y.wasm"));
    }

    #[test]
    fn hop_headers_are_dropped_and_the_rest_kept() {
        let (parts, ()) = http::Request::builder()
            .method("POST")
            .uri("/alerts?code=k")
            .header("host", "127.0.0.1:3000")
            .header("transfer-encoding", "chunked")
            .header("content-type", "application/json")
            .body(())
            .unwrap()
            .into_parts();
        let request = host_request(&parts, Bytes::from_static(b"{}"));
        assert_eq!(request.method, http::Method::POST);
        assert_eq!(request.path_and_query, "/alerts?code=k");
        assert_eq!(request.headers, vec![("content-type".to_string(), "application/json".to_string())]);
        assert_eq!(request.body, b"{}");
    }
}
