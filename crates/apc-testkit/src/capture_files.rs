//! What a capture-file test expects (issue 10), shared by the native suite
//! (`apc-core/tests/capture_file.rs`) and the one through the `.wasm`
//! (`test-host/tests/capture_summary.rs`): the file the emulator generated for a notified
//! capture, the summariser's own answer for a file, and JSON equality that allows for floats
//! read back from JSON.

use apc_core::summary::Summarizer;
use apc_core::timefmt::parse_rfc3339;
use azure_emulator::pcap::{Scenario, capture_file};
use serde_json::Value;

/// The file the emulator generated under `scenario` for the capture of notification `n` (from
/// the capture's start time, which the notification carries).
pub fn expected_file(n: &Value, scenario: Scenario) -> Vec<u8> {
    let start = n["capture"]["capture_start_time"].as_str().and_then(parse_rfc3339).expect("capture_start_time");
    capture_file(scenario, start)
}

/// The summariser's answer for `file` read up to `max` bytes, natively, as JSON.
pub fn native_summary(file: &[u8], max: u64) -> Value {
    let mut s = Summarizer::new(max);
    s.set_total_bytes(file.len() as u64);
    s.feed(file);
    serde_json::to_value(s.finish().expect("a summary")).expect("JSON")
}

/// Equal JSON, floats within a relative 1e-12: a rate stored on the record and parsed back by
/// serde_json's default (not correctly rounded) parser may differ in its last bit.
pub fn assert_same(got: &Value, want: &Value, what: &str) {
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
                let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
                (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
            }
            (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w)),
            _ => a == b,
        }
    }
    assert!(same(got, want), "{what}:\n got {got}\nwant {want}");
}
