//! `apc-serve` as a user runs it: a child process on an ephemeral port, spoken to over real
//! HTTP/1.1 sockets, serving the real release component.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The release component: `APC_WASM`, else the workspace's release build.
fn wasm_path() -> PathBuf {
    std::env::var_os("APC_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/wasm32-wasip2/release/alert_packet_capture.wasm"))
}

/// A hang guard only: no assertion depends on how fast anything is.
const HANG_GUARD: Duration = Duration::from_secs(120);

const ENV_KEY: &str = "env-key-0123456789abcdef";
const FLAG_KEY: &str = "flag-key-0123456789abcdef";

/// A running `apc-serve`, killed on drop; its stdout lines arrive on `lines`.
struct Server {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command() -> Command {
    // APC_SERVE_BIN: when several checkouts share one target folder, target/debug/apc-serve is
    // whichever was built last; the checkout's own binary is under target/debug/deps.
    let bin = std::env::var_os("APC_SERVE_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_apc-serve").into());
    let mut command = Command::new(bin);
    // Only what each test sets: no SPIN_VARIABLE_* leaking in from the developer's shell.
    for (name, _) in std::env::vars() {
        if name.starts_with("SPIN_VARIABLE_") {
            command.env_remove(name);
        }
    }
    command
}

/// Starts `apc-serve` on 127.0.0.1:0 with the required variables from the environment, and
/// `webhook_keys` both from the environment and (winning) from `--variable`.
fn start(wasm: &Path) -> Server {
    let mut child = command()
        .args(["--listen", "127.0.0.1:0", "--manifest"])
        .arg(repo_root().join("spin.toml"))
        .arg("--wasm")
        .arg(wasm)
        .args(["--variable", &format!("webhook_keys={FLAG_KEY}")])
        .env("SPIN_VARIABLE_AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000001")
        .env("SPIN_VARIABLE_AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000002")
        .env("SPIN_VARIABLE_AZURE_CLIENT_SECRET", "test-secret")
        .env("SPIN_VARIABLE_WEBHOOK_KEYS", ENV_KEY)
        .env(
            "SPIN_VARIABLE_STORAGE_ACCOUNT_ID",
            "/subscriptions/00000000-0000-0000-0000-000000000003/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/captures",
        )
        // Nothing listens on port 9: no test here may reach Azure.
        .env("SPIN_VARIABLE_AZURE_AUTHORITY_HOST", "http://127.0.0.1:9")
        .env("SPIN_VARIABLE_AZURE_ARM_ENDPOINT", "http://127.0.0.1:9")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("apc-serve starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, lines) = mpsc::channel();
    // Keep reading so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let first = lines.recv_timeout(HANG_GUARD).expect("apc-serve printed its address (see its stderr above)");
    let addr = first
        .strip_prefix("apc-serve listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("bad address in {first:?}: {e}"));
    Server { child, addr, lines }
}

/// A parsed HTTP/1.1 answer.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Sends one request on a fresh connection and reads the answer to its end.
fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    let raw = String::from_utf8(raw).expect("a UTF-8 answer");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no end of head in {raw:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {head:?}"));
    Answer { status, head: head.to_ascii_lowercase(), body: body.to_string() }
}

#[test]
fn serves_the_component_over_real_http() {
    let wasm = wasm_path();
    if !wasm.exists() {
        eprintln!(
            "SKIPPED: {} is absent; build it with `cargo build --target wasm32-wasip2 --release` \
             or point APC_WASM at it",
            wasm.display()
        );
        return;
    }
    let server = start(&wasm);
    assert!(server.addr.ip().is_loopback());
    assert_ne!(server.addr.port(), 0, "the printed address is the bound one");

    let health = http(server.addr, "GET", "/healthz", &[], b"");
    assert_eq!(health.status, 200, "{}", health.body);
    assert!(health.head.contains("content-type: application/json"), "{}", health.head);
    let body: serde_json::Value = serde_json::from_str(&health.body).expect("JSON health");
    assert_eq!(body["status"], "ok", "{body}");

    // The component's JSON log line for that request is echoed on stdout.
    let log = loop {
        let line = server.lines.recv_timeout(HANG_GUARD).expect("a log line for /healthz");
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) {
            break value;
        }
    };
    assert_eq!(log["status"], 200, "{log}");
    assert_eq!(log["method"], "GET", "{log}");

    // --variable wins over SPIN_VARIABLE_*.
    let flag = http(server.addr, "GET", &format!("/captures?code={FLAG_KEY}"), &[], b"");
    assert_eq!(flag.status, 200, "{}", flag.body);
    let env = http(server.addr, "GET", "/captures", &[("x-api-key", ENV_KEY)], b"");
    assert_eq!(env.status, 401, "{}", env.body);

    // A request body reaches the component intact: a Resolved alert is read and ignored.
    let alert = std::fs::read_to_string(repo_root().join("scripts/demo-alert.json")).unwrap();
    let resolved = alert.replace("\"Fired\"", "\"Resolved\"");
    assert_ne!(resolved, alert);
    let answer = http(
        server.addr,
        "POST",
        &format!("/alerts?code={FLAG_KEY}"),
        &[("content-type", "application/json")],
        resolved.as_bytes(),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["ignored"], "resolved", "{body}");
}

#[test]
fn a_missing_required_variable_stops_it_with_the_name() {
    // The variables are resolved before the component is read, so no .wasm is needed.
    let output = command()
        .args(["--listen", "127.0.0.1:0", "--manifest"])
        .arg(repo_root().join("spin.toml"))
        .args(["--wasm", "/nonexistent.wasm", "--variable", "webhook_keys=k"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("azure_"), "{stderr}");
    assert!(output.stdout.is_empty(), "it must not claim to listen");
}

#[test]
fn a_bad_option_is_a_usage_error() {
    let output = command().arg("--port").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown option --port") && stderr.contains("usage:"), "{stderr}");
}

/// `apc-serve --demo` (what `scripts/run.sh --demo` runs) against an emulator: a child process
/// whose stdout lines arrive on `lines`, killed on drop.
fn start_demo(emulator: &str, store: &Path, wasm: &Path) -> Server {
    let mut child = command()
        .current_dir(repo_root())
        .args(["--listen", "127.0.0.1:0", "--demo", emulator, "--poll-every", "1", "--store-file"])
        .arg(store)
        .arg("--wasm")
        .arg(wasm)
        // No developer's .env may change the demo.
        .args(["--env-file", "/dev/null"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("apc-serve starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let (sender, lines) = mpsc::channel();
    let err_sender = sender.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    // Startup messages (store, configuration problems) come on stderr: read them too.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if err_sender.send(format!("stderr: {line}")).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let addr = loop {
        let line = lines.recv_timeout(HANG_GUARD).unwrap_or_else(|_| panic!("no address; saw {seen:#?}"));
        if let Some(addr) = line.strip_prefix("apc-serve listening on http://") {
            break addr.parse().expect("an address");
        }
        seen.push(line);
    };
    // The lines before the address stay readable through `lines` order: keep them in front.
    let (resend, rest) = mpsc::channel();
    std::thread::spawn(move || {
        for line in seen {
            let _ = resend.send(line);
        }
        while let Ok(line) = lines.recv() {
            if resend.send(line).is_err() {
                break;
            }
        }
    });
    Server { child, addr, lines: rest }
}

/// Reads lines until one satisfies `want`, returning every line read.
fn read_until(server: &Server, want: impl Fn(&str) -> bool) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let line = server.lines.recv_timeout(HANG_GUARD).unwrap_or_else(|_| panic!("not seen; saw {seen:#?}"));
        let done = want(&line);
        seen.push(line);
        if done {
            return seen;
        }
    }
}

#[test]
fn the_demo_tells_the_whole_story_and_keeps_records_across_a_restart() {
    let wasm = wasm_path();
    if !wasm.exists() {
        eprintln!("SKIPPED: {} is absent; build it first", wasm.display());
        return;
    }
    let emulator = azure_emulator::Emulator::start_with(
        "127.0.0.1:0",
        azure_emulator::EmulatorConfig { flowing_clock: true, capture_start_delay_secs: 0, ..Default::default() },
    )
    .expect("emulator");
    emulator.seed_demo();
    emulator.set_emulator_storage_paths(true);
    let store = std::env::temp_dir().join(format!("apc-demo-test-{}/store.json", std::process::id()));
    let _ = std::fs::remove_dir_all(store.parent().unwrap());

    let server = start_demo(&emulator.base_url(), &store, &wasm);
    // The alert is sent without anyone asking, and answered 202 with a running capture.
    let lines = read_until(&server, |l| l.starts_with("== demo alert sent"));
    assert!(lines.last().unwrap().ends_with("POST /alerts -> 202"), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("configuration problem")), "{lines:#?}");
    let answer: serde_json::Value = serde_json::from_str(&server.lines.recv_timeout(HANG_GUARD).unwrap()).unwrap();
    assert_eq!(answer["captures"][0]["state"], "running", "{answer}");
    let id = answer["captures"][0]["id"].as_str().unwrap().to_string();
    // Azure finishes the capture before the component looks (its clock jumps past the limit).
    emulator.advance_clock(Duration::from_secs(120));

    // Without another command: the first poll that finds the capture due sees it succeed, and
    // the receiver prints the notification.
    let story = read_until(&server, |l| l.starts_with(&format!("== capture {id}: running -> succeeded")));
    let done = story.last().unwrap();
    assert!(done.ends_with("advancing poll 1)"), "{story:#?}");
    // The notification goes out during that poll, before its change of state is printed.
    assert!(story.iter().any(|l| l.starts_with("== notification received, event ")), "{story:#?}");
    assert!(
        story.iter().any(|l| l.starts_with(&format!("Packet capture {id} on ")) && l.contains("finished")),
        "no notification text in {story:#?}"
    );
    assert!(story.iter().any(|l| l.starts_with("*Traffic:*")), "the summary is in the text: {story:#?}");
    drop(server);

    // Restarted on the same file: the first run's record is still there, succeeded.
    let saved = std::fs::read_to_string(&store).expect("the store file");
    assert!(saved.contains(&id), "the store file holds the capture");
    let server = start_demo(&emulator.base_url(), &store, &wasm);
    let lines = read_until(&server, |l| l.starts_with("== demo alert sent"));
    assert!(lines.iter().any(|l| l.contains("keys loaded") && !l.contains("(0 keys")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("capture records kept from earlier runs")), "{lines:#?}");
    let listing = http(server.addr, "GET", &format!("/captures/{id}?code=demo-key-0123456789abcdef"), &[], b"");
    assert_eq!(listing.status, 200, "{}", listing.body);
    let record: serde_json::Value = serde_json::from_str(&listing.body).unwrap();
    assert_eq!(record["state"], "succeeded", "{record}");
    let _ = std::fs::remove_dir_all(store.parent().unwrap());
}

#[test]
fn the_demo_credentials_are_the_emulators() {
    // apc-serve's demo preset repeats these (test-host's binary cannot see the dev-dependency).
    let help = command().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--demo EMULATOR"));
    let source = std::fs::read_to_string(repo_root().join("crates/test-host/src/bin/apc-serve/demo.rs")).unwrap();
    for value in
        [azure_emulator::DEFAULT_TENANT_ID, azure_emulator::DEFAULT_CLIENT_ID, azure_emulator::DEFAULT_CLIENT_SECRET]
    {
        assert!(source.contains(&format!("\"{value}\"")), "demo.rs lacks the emulator's {value}");
    }
}

#[test]
fn configuration_problems_and_unread_dotenv_names_are_printed_at_start() {
    let wasm = wasm_path();
    if !wasm.exists() {
        eprintln!("SKIPPED: {} is absent; build it first", wasm.display());
        return;
    }
    let dir = std::env::temp_dir().join(format!("apc-serve-dotenv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dotenv = dir.join(".env");
    // One name Spin would not read (no prefix), one bad value Spin would read.
    std::fs::write(&dotenv, "notify_format=slack\nSPIN_VARIABLE_NOTIFY_FORMAT=bogus\n").unwrap();
    let mut child = command()
        .args(["--listen", "127.0.0.1:0", "--manifest"])
        .arg(repo_root().join("spin.toml"))
        .arg("--wasm")
        .arg(&wasm)
        .arg("--env-file")
        .arg(&dotenv)
        .env("SPIN_VARIABLE_AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000001")
        .env("SPIN_VARIABLE_AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000002")
        .env("SPIN_VARIABLE_AZURE_CLIENT_SECRET", "test-secret")
        .env("SPIN_VARIABLE_WEBHOOK_KEYS", ENV_KEY)
        .env("SPIN_VARIABLE_AZURE_AUTHORITY_HOST", "http://127.0.0.1:9")
        .env("SPIN_VARIABLE_AZURE_ARM_ENDPOINT", "http://127.0.0.1:9")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("apc-serve starts");
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let first = BufReader::new(stdout).lines().next().and_then(Result::ok);
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    // It still serves (a notification setting never stops captures), and says what is wrong.
    assert!(first.is_some_and(|l| l.starts_with("apc-serve listening on")), "{err}");
    assert!(err.contains("configuration problem: notify_format:"), "{err}");
    assert!(
        err.contains(".env sets notify_format, which Spin does not read; name it SPIN_VARIABLE_NOTIFY_FORMAT"),
        "{err}"
    );
    assert!(!err.contains("test-secret"), "a secret was printed: {err}");
}
