//! Issue 10, the capture file step (`capture_file::prepare`) against a scripted Storage: files the
//! emulator does not make (several range chunks, not a capture, empty, header only, damaged) and
//! a blob not yet written. Each ends with the record ready to notify, or due again for a bounded
//! number of checks.

use apc_core::advance::Ctx;
use apc_core::capture_file::{FileSummary, MAX_READ_ATTEMPTS, Prepared, READ_CHUNK, Unavailable, prepare};
use apc_core::config::Config;
use apc_core::ports::{Method, OutboundResponse, World};
use apc_core::record::{CaptureRecord, CaptureSpec, State};
use apc_core::summary::Summarizer;
use apc_testkit::consts::{STORAGE_ID, T0, TOKEN_OK, TOKEN_URL, base_vars, vm_id};
use apc_testkit::http::{ScriptedHttp, sample_file_response, with_header};
use apc_testkit::{MemKv, TestClock};

const BLOB: &str = "https://pcstore.blob.core.windows.net/network-watcher-logs/vm1/capture.cap";
const KEY_URL: &str = "https://pcstore.blob.core.windows.net/?restype=service&comp=userdelegationkey";

struct Env {
    http: ScriptedHttp,
    kv: MemKv,
    clock: TestClock,
    cfg: Config,
}

impl Env {
    fn new(extra: &[(&str, &str)]) -> Env {
        let mut vars = base_vars();
        for (k, v) in extra {
            vars.set(k, v);
        }
        let cfg = Config::load(&vars).expect("the configuration loads");
        let http = ScriptedHttp::new();
        http.route_always(Method::Post, TOKEN_URL, sample_file_response(TOKEN_OK, 200));
        http.route_always(Method::Post, KEY_URL, key_answer());
        Env { http, kv: MemKv::new(), clock: TestClock::at(T0), cfg }
    }

    fn prepare(&self, rec: &mut CaptureRecord) -> Prepared {
        let world = World { http: &self.http, kv: &self.kv, clock: &self.clock };
        let ctx = Ctx::new(&self.cfg, world);
        prepare(&ctx, rec)
    }

    fn reads(&self) -> Vec<String> {
        self.http
            .requests()
            .iter()
            .filter(|r| r.url == BLOB)
            .map(|r| r.header("range").unwrap_or("").to_string())
            .collect()
    }

    fn key_requests(&self) -> usize {
        self.http.requests().iter().filter(|r| r.url == KEY_URL).count()
    }
}

fn key_answer() -> OutboundResponse {
    let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><UserDelegationKey><SignedOid>6d2b7a1c-0f3e-4c55-9a41-0c1e2b3d4f50</SignedOid><SignedTid>72f988bf-86f1-41af-91ab-2d7cd011db47</SignedTid><SignedStart>2026-05-28T20:21:40Z</SignedStart><SignedExpiry>2026-06-04T00:00:00Z</SignedExpiry><SignedService>b</SignedService><SignedVersion>2025-01-05</SignedVersion><Value>AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=</Value></UserDelegationKey>";
    OutboundResponse { status: 200, headers: vec![], body: xml.as_bytes().to_vec() }
}

fn succeeded() -> CaptureRecord {
    let spec = CaptureSpec {
        time_limit_seconds: 60,
        bytes_per_packet: 0,
        bytes_per_session: 0,
        filters: vec![],
        storage_account_id: Some(STORAGE_ID.to_string()),
        file_path: None,
    };
    let mut rec = CaptureRecord::queued("apc-vm1".into(), vm_id("rg2", "vm1"), "k".into(), spec, T0);
    rec.state = State::Succeeded;
    rec.storage_path = Some(BLOB.to_string());
    rec
}

/// A classic pcap (little-endian, microseconds, Ethernet) of `n` UDP datagrams of `payload`
/// bytes from 10.0.0.4:5000 to 10.0.0.9:53.
fn pcap(n: usize, payload: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for i in 0..n {
        let mut frame = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00];
        let total = (20 + 8 + payload) as u16;
        frame.extend_from_slice(&[0x45, 0]);
        frame.extend_from_slice(&total.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 4, 10, 0, 0, 9]);
        frame.extend_from_slice(&5000u16.to_be_bytes());
        frame.extend_from_slice(&53u16.to_be_bytes());
        frame.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend(std::iter::repeat_n(0x61u8, payload));
        out.extend_from_slice(&(1_780_000_000u32 + i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

/// Script the range reads of `file` in chunks of [`READ_CHUNK`], as Storage answers them.
fn serve_in_chunks(http: &ScriptedHttp, file: &[u8], limit: u64) {
    let total = file.len() as u64;
    let mut at = 0u64;
    while at < total.min(limit) {
        let end = (at + READ_CHUNK).min(limit).min(total) - 1;
        let body = file[at as usize..=end as usize].to_vec();
        let resp = OutboundResponse { status: 206, headers: vec![], body };
        http.expect(Method::Get, BLOB, with_header(resp, "Content-Range", &format!("bytes {at}-{end}/{total}")));
        at = end + 1;
    }
}

fn summary(rec: &CaptureRecord) -> &apc_core::summary::Summary {
    rec.summary.as_ref().and_then(FileSummary::summary).unwrap_or_else(|| panic!("no summary: {:?}", rec.summary))
}

fn unavailable(rec: &CaptureRecord) -> (Unavailable, String) {
    match &rec.summary {
        Some(FileSummary::Unavailable { code, reason }) => (*code, reason.clone()),
        other => panic!("expected no summary, got {other:?}"),
    }
}

#[test]
fn a_file_of_several_chunks_is_read_in_range_requests_and_summarised_whole() {
    let env = Env::new(&[]);
    let file = pcap(1800, 1400);
    assert!(file.len() as u64 > 2 * READ_CHUNK);
    serve_in_chunks(&env.http, &file, u64::MAX);
    let mut rec = succeeded();
    assert_eq!(env.prepare(&mut rec), Prepared::Ready);
    env.http.assert_done();
    let total = file.len();
    assert_eq!(
        env.reads(),
        [
            "bytes=0-1048575".to_string(),
            "bytes=1048576-2097151".to_string(),
            format!("bytes=2097152-{}", 2097152 + READ_CHUNK - 1)
        ]
    );
    let mut whole = Summarizer::new(8 << 20);
    whole.set_total_bytes(total as u64);
    whole.feed(&file);
    assert_eq!(*summary(&rec), whole.finish().unwrap());
    assert_eq!(summary(&rec).packets, 1800);
    assert!(rec.download.as_ref().unwrap().url.starts_with(&format!("{BLOB}?sp=r&se=2026-05-29T20%3A26%3A40Z&")));
    // The link's Debug form hides the signature.
    assert!(!format!("{:?}", rec).contains("sig="));
}

#[test]
fn the_limit_stops_reading_between_chunks() {
    let env = Env::new(&[("capture_summary_max_bytes", "1500000")]);
    let file = pcap(1800, 1400);
    serve_in_chunks(&env.http, &file, 1_500_000);
    let mut rec = succeeded();
    assert_eq!(env.prepare(&mut rec), Prepared::Ready);
    env.http.assert_done();
    assert_eq!(env.reads(), ["bytes=0-1048575", "bytes=1048576-1499999"]);
    let f = &summary(&rec).file;
    assert_eq!((f.bytes_seen, f.bytes_total, f.stopped_at_limit), (1_500_000, Some(file.len() as u64), true));
}

#[test]
fn a_file_that_is_not_a_capture_or_holds_no_packets_is_said_so_at_once() {
    let cases: [(&[u8], Unavailable); 2] =
        [(b"<html>not a capture</html>", Unavailable::NotACapture), (&pcap(0, 0), Unavailable::NoPackets)];
    for (body, code) in cases {
        let env = Env::new(&[]);
        serve_in_chunks(&env.http, body, u64::MAX);
        let mut rec = succeeded();
        assert_eq!(env.prepare(&mut rec), Prepared::Ready, "{code:?}");
        assert_eq!(unavailable(&rec).0, code);
        // The link is made all the same: the file is there.
        assert!(rec.download.is_some());
    }
}

#[test]
fn a_damaged_or_cut_file_is_summarised_up_to_the_damage() {
    let mut file = pcap(10, 100);
    let good = file.len();
    // A record claiming 200 MiB: the file stops making sense there.
    file.extend_from_slice(&[0; 8]);
    file.extend_from_slice(&(200u32 << 20).to_le_bytes());
    file.extend_from_slice(&(200u32 << 20).to_le_bytes());
    file.extend_from_slice(&[0; 64]);
    let env = Env::new(&[]);
    serve_in_chunks(&env.http, &file, u64::MAX);
    let mut rec = succeeded();
    assert_eq!(env.prepare(&mut rec), Prepared::Ready);
    let s = summary(&rec);
    assert_eq!(s.packets, 10);
    assert!(s.file.damaged.as_deref().is_some_and(|d| d.contains(&format!("at byte {good}"))), "{:?}", s.file);

    let mut cut = pcap(10, 100);
    cut.truncate(cut.len() - 20);
    let env = Env::new(&[]);
    serve_in_chunks(&env.http, &cut, u64::MAX);
    let mut rec = succeeded();
    assert_eq!(env.prepare(&mut rec), Prepared::Ready);
    assert_eq!((summary(&rec).packets, summary(&rec).file.truncated), (9, true));
}

#[test]
fn a_blob_not_yet_written_delays_the_notification_a_bounded_number_of_checks() {
    let env = Env::new(&[]);
    let not_found = with_header(
        OutboundResponse { status: 404, headers: vec![], body: b"<Error><Code>BlobNotFound</Code></Error>".to_vec() },
        "x-ms-error-code",
        "BlobNotFound",
    );
    env.http.route_always(Method::Get, BLOB, not_found);
    let mut rec = succeeded();
    for attempt in 1..=MAX_READ_ATTEMPTS {
        assert_eq!(env.prepare(&mut rec), Prepared::Later, "check {attempt}");
        assert!(rec.summary.is_none());
        let due = rec.next_check_at.expect("due again");
        assert!(due > T0, "check {attempt}: {due}");
        env.clock.set(due);
    }
    assert_eq!(env.prepare(&mut rec), Prepared::Ready);
    let (code, reason) = unavailable(&rec);
    assert_eq!(code, Unavailable::NotYetWritten);
    assert!(reason.contains("gave up after 5 checks"), "{reason}");
    assert_eq!(env.reads().len() as u32, MAX_READ_ATTEMPTS + 1);
    // One link, made at the first check.
    assert_eq!(env.key_requests(), 1);
    assert!(rec.download.is_some());
}

#[test]
fn an_empty_blob_is_waited_for_then_reported() {
    let env = Env::new(&[]);
    let empty =
        with_header(OutboundResponse { status: 416, headers: vec![], body: vec![] }, "Content-Range", "bytes */0");
    env.http.route_always(Method::Get, BLOB, empty);
    let mut rec = succeeded();
    let mut checks = 0;
    while env.prepare(&mut rec) == Prepared::Later {
        checks += 1;
        env.clock.set(rec.next_check_at.unwrap());
        assert!(checks <= MAX_READ_ATTEMPTS, "unbounded");
    }
    assert_eq!(checks, MAX_READ_ATTEMPTS);
    assert_eq!(unavailable(&rec).0, Unavailable::Empty);
}

#[test]
fn a_record_that_needs_no_file_work_is_left_alone() {
    let env = Env::new(&[]);
    for state in [State::Failed, State::Skipped] {
        let mut rec = CaptureRecord { state, ..succeeded() };
        assert_eq!(env.prepare(&mut rec), Prepared::Ready);
        assert!(rec.summary.is_none());
    }
    let mut rec = CaptureRecord { notified: true, ..succeeded() };
    assert_eq!(env.prepare(&mut rec), Prepared::Ready);
    assert!(rec.summary.is_none());
    assert_eq!(env.http.count(), 0);
}
