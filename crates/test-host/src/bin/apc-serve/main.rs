//! `apc-serve`: serves the component over real HTTP with the test host, for machines without
//! Spin (`scripts/run.sh` uses it when `spin` is not on PATH, and always for `--demo`).
//!
//! Like `spin up`: every request gets a fresh instance; variables come from the manifest's
//! defaults, `SPIN_VARIABLE_<NAME>` lines of `./.env`, `SPIN_VARIABLE_<NAME>` environment
//! variables and `--variable name=value` (in that order of precedence, lowest first; see
//! `vars.rs`); the component's stdout/stderr lines are echoed; configuration problems are
//! printed at start. The key-value store lives in memory, and with `--store-file` also in a file
//! that is reloaded on the next start (as `spin up` keeps its SQLite file). `--demo` adds a
//! notification receiver, a poller and the demo alert (`demo.rs`).

mod demo;
mod store_file;
mod vars;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use test_host::{Host, HostError, HostOptions, KvStore, Manifest, ManifestError, Request, Stream};
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
  --variable NAME=VALUE    an application variable (repeatable); wins over everything else
  --env-file PATH          the .env file to read (default .env, if present)
  --store-file PATH        keep the key-value store in this file across restarts
                           (default: in memory only)
  --poll-every SECS        call POST /poll every SECS seconds (default: off; 5 with --demo)
  --demo EMULATOR          the local demo against the Azure emulator at EMULATOR (an origin,
                           e.g. http://127.0.0.1:8089): demo credentials and key, a local
                           notification receiver that prints each notification, polling, and
                           the demo alert sent once the server listens
  --demo-alert PATH        the alert the demo sends (default scripts/demo-alert.json beside
                           the manifest); its fired time is set to now
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
    env_file: Option<PathBuf>,
    store_file: Option<PathBuf>,
    poll_every: Option<u64>,
    demo: Option<String>,
    demo_alert: Option<PathBuf>,
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
    #[error(transparent)]
    Store(#[from] store_file::StoreFileError),
    #[error("{0}")]
    Other(String),
}

/// Parses the arguments (without the program name); `Ok(None)` means `--help`.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        listen: "127.0.0.1:3000".to_string(),
        manifest: PathBuf::from("spin.toml"),
        wasm: None,
        variables: Vec::new(),
        env_file: None,
        store_file: None,
        poll_every: None,
        demo: None,
        demo_alert: None,
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
            "--env-file" => options.env_file = Some(PathBuf::from(value()?)),
            "--store-file" => options.store_file = Some(PathBuf::from(value()?)),
            "--demo" => options.demo = Some(value()?),
            "--demo-alert" => options.demo_alert = Some(PathBuf::from(value()?)),
            "--poll-every" => {
                let v = value()?;
                match v.parse::<u64>() {
                    Ok(n) if n > 0 => options.poll_every = Some(n),
                    _ => return Err(format!("--poll-every {v:?}: expected a whole number of seconds, at least 1")),
                }
            }
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
/// Lines of requests in `quiet` (the demo poller's own) are dropped.
fn print_logs(host: &Host, quiet: &demo::Quiet) {
    let mut lines = host.logs().drain();
    {
        let mut quiet = quiet.lock().unwrap_or_else(|p| p.into_inner());
        lines.retain(|line| !quiet.contains(&line.request_id));
        // Those requests' lines are gone now: keep the set from growing with every poll.
        quiet.clear();
    }
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
async fn handle(app: &App, request: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let host = &app.host;
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return plain(400, &format!("cannot read the request body: {e}")),
    };
    let result = host.request(host_request(&parts, body)).await;
    app.after_request();
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

/// What every request shares.
#[derive(Clone)]
struct App {
    host: Host,
    store_file: Option<Arc<store_file::StoreFile>>,
    quiet: demo::Quiet,
}

impl App {
    /// Echoes the guests' lines and keeps the store file up to date.
    fn after_request(&self) {
        print_logs(&self.host, &self.quiet);
        if let Some(file) = &self.store_file
            && let Err(e) = file.save_if_changed(self.host.kv())
        {
            // The answer already went out; the next write tries again.
            eprintln!("apc-serve: {e}");
        }
    }
}

/// Accepts connections until the process ends.
async fn serve(listener: TcpListener, app: App) {
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
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(handle(&app, request).await) }
            });
            // A client that hangs up mid-request is not worth a log line.
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// The `.env` entries: `--env-file`, else `./.env` when it exists (as Spin reads it).
fn read_dotenv(explicit: Option<&Path>) -> Result<BTreeMap<String, String>, StartError> {
    let path = explicit.unwrap_or(Path::new(".env"));
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let (entries, notes) = vars::parse_dotenv(&text);
            for note in notes {
                eprintln!("apc-serve: {}: {note}", path.display());
            }
            Ok(entries)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => Ok(BTreeMap::new()),
        Err(e) => Err(StartError::Other(format!("cannot read {}: {e}", path.display()))),
    }
}

/// The problems `/healthz` names (variable and message), asked in process before serving.
async fn configuration_problems(host: &Host) -> Vec<String> {
    let Ok(answer) = host.request(Request::get("/healthz")).await else {
        return vec!["GET /healthz failed".to_string()];
    };
    let _ = host.logs().drain();
    let Ok(body) = answer.json() else {
        return vec![format!("GET /healthz answered {} without JSON", answer.status)];
    };
    body["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| format!("{}: {}", p["variable"].as_str().unwrap_or("?"), p["message"].as_str().unwrap_or("?")))
        .collect()
}

async fn start(options: Options) -> Result<(), StartError> {
    let manifest = Manifest::load(&options.manifest)?;
    let dotenv = read_dotenv(options.env_file.as_deref())?;
    // The demo's receiver must exist before the host resolves `notify_host`, once, at load.
    let preset = match &options.demo {
        Some(emulator) => {
            let receiver = demo::start_receiver()
                .await
                .map_err(|e| StartError::Other(format!("cannot start the notification receiver: {e}")))?;
            eprintln!("apc-serve: demo notification receiver on {receiver}/notify");
            demo::preset(emulator, &receiver)
        }
        None => Vec::new(),
    };
    let gathered = vars::gather(&manifest, |name| std::env::var(name).ok(), &dotenv, &preset, &options.variables);
    for note in &gathered.notes {
        eprintln!("apc-serve: configuration: {note}");
    }
    let missing = vars::missing_required(&manifest, &gathered.values);
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|n| format!("{n} ({})", vars::env_name(n))).collect();
        return Err(StartError::Other(format!(
            "required variables without a value: {}. Set them in the environment or in .env (as \
             SPIN_VARIABLE_<NAME>=...), or with --variable name=value; or run the local demo: \
             scripts/run.sh --demo",
            names.join(", ")
        )));
    }
    let wasm = wasm_path(&manifest, options.wasm)?;

    let store = KvStore::new();
    let store_file = match &options.store_file {
        Some(path) => {
            let (file, loaded) = store_file::StoreFile::open(path, &store)?;
            eprintln!("apc-serve: key-value store kept in {} ({loaded} keys loaded)", path.display());
            Some(Arc::new(file))
        }
        None => None,
    };
    let host_options = HostOptions {
        wasm: wasm.clone(),
        manifest: options.manifest.clone(),
        variables: gathered.values,
        store: Some(store),
        ..Default::default()
    };
    eprintln!("apc-serve: compiling {} (tens of seconds on two cores)", wasm.display());
    // Compiling takes seconds; keep the runtime's workers free meanwhile.
    let host = tokio::task::spawn_blocking(move || Host::new(host_options))
        .await
        .map_err(|e| HostError::Load(format!("compile task failed: {e}")))??;
    let problems = configuration_problems(&host).await;
    for problem in &problems {
        eprintln!("apc-serve: configuration problem: {problem}");
    }
    let listener = TcpListener::bind(&options.listen)
        .await
        .map_err(|source| StartError::Listen { addr: options.listen.clone(), source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen { addr: options.listen.clone(), source })?;
    demo::say(&format!("apc-serve listening on http://{addr}"));

    let app = App { host: host.clone(), store_file, quiet: demo::Quiet::default() };
    // Before the poller starts, so that its first listing already holds the new capture.
    if options.demo.is_some() {
        let path = options.demo_alert.clone().unwrap_or_else(|| manifest.dir.join("scripts/demo-alert.json"));
        send_demo_alert(&app, &path).await?;
    }
    let poll_every = options.poll_every.or(options.demo.as_ref().map(|_| 5));
    if let Some(every) = poll_every {
        // The first key polls (as a scheduler would be configured with one key).
        let key =
            host.app_variables().get("webhook_keys").and_then(|k| k.split(',').next()).unwrap_or("").trim().to_string();
        let poller = app.clone();
        let quiet = app.quiet.clone();
        demo::say(&format!("== polling POST /poll every {every} s"));
        tokio::spawn(async move {
            let saver = poller.clone();
            demo::poll_forever(poller.host.clone(), key, Duration::from_secs(every), quiet, move || {
                saver.after_request()
            })
            .await;
        });
    }
    serve(listener, app).await;
    Ok(())
}

/// Sends the demo alert (fired now) and prints the answer and the commands to look further.
async fn send_demo_alert(app: &App, path: &Path) -> Result<(), StartError> {
    let template =
        std::fs::read_to_string(path).map_err(|e| StartError::Other(format!("cannot read {}: {e}", path.display())))?;
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let alert = demo::fresh_alert(&template, i64::try_from(unix).unwrap_or(0)).map_err(StartError::Other)?;
    let key = demo::DEMO_KEY;
    if let Ok(listing) = app.host.request(Request::get(format!("/captures?code={key}&limit=200"))).await {
        let _ = app.host.logs().drain();
        let kept = listing.json().map(|v| demo::states(&v).len()).unwrap_or(0);
        if kept > 0 {
            demo::say(&format!("== {kept} capture records kept from earlier runs (GET /captures lists them)"));
        }
    }
    let answer = app.host.request(Request::post_json(format!("/alerts?code={key}"), &alert)).await?;
    app.after_request();
    demo::say(&format!(
        "== demo alert sent ({}, fired now): POST /alerts -> {}\n{}",
        path.display(),
        answer.status,
        answer.text()
    ));
    demo::say(&format!(
        "== webhook key {key}; look further with\n   curl -s 'http://127.0.0.1:3000/captures?code={key}'\n   \
         curl -s -X POST 'http://127.0.0.1:3000/alerts?code={key}' -H 'content-type: application/json' --data @scripts/demo-alert.json"
    ));
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
            "--env-file",
            "my.env",
            "--store-file=target/s.json",
            "--poll-every",
            "7",
            "--demo=http://127.0.0.1:8089",
            "--demo-alert",
            "a.json",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(options.listen, "127.0.0.1:0");
        assert_eq!(options.manifest, PathBuf::from("app/spin.toml"));
        assert_eq!(options.wasm, Some(PathBuf::from("x.wasm")));
        assert_eq!(options.env_file, Some(PathBuf::from("my.env")));
        assert_eq!(options.store_file, Some(PathBuf::from("target/s.json")));
        assert_eq!(options.poll_every, Some(7));
        assert_eq!(options.demo.as_deref(), Some("http://127.0.0.1:8089"));
        assert_eq!(options.demo_alert, Some(PathBuf::from("a.json")));
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
        assert!(parse_args(args(&["--poll-every", "0"])).unwrap_err().contains("at least 1"));
        assert!(parse_args(args(&["--poll-every=x"])).unwrap_err().contains("whole number"));
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
        let values =
            vars::gather(&manifest, env, &BTreeMap::new(), &[], &[("notify_format".into(), "slack".into())]).values;
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
