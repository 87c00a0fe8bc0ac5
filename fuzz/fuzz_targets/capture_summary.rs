//! `summary::Summarizer` as the capture follower uses it: a file arrives in range reads of any
//! size, the reader may know the file's full size (`set_total_bytes`) and may read only the first
//! `max_bytes`, and stops feeding once `feed` says no more is wanted; then `finish`.
//!
//! The input is 4 control bytes and then the file:
//!   byte 0  flags: bit 0 the total size is known, bit 1 a small `max_bytes`, bit 2 the total is
//!           larger than what is fed (the reader did not read it all), bit 3 empty chunks too
//!   byte 1  the largest chunk (1..=256, or in steps of 64 up to 16 KiB when byte 2's top bit is set)
//!   byte 2  seed of the chunk-size sequence
//!   byte 3  `max_bytes` / 16 when bit 1 is set; the extra total size when bit 2 is set
//!
//! Checked: no panic; the chunked run, which stops at the first `false` from `feed`, gives the
//! very summary (or error) that one `feed` of the whole file gives; `feed`'s answer is
//! `wants_more` and never turns back to true; and the summary's figures agree with each other and
//! with the bytes it was given (bounded tables, coverage, protocol counts, serialisable JSON).

#![no_main]

use apc_core::summary::{Summarizer, Summary, SummaryError};
use libfuzzer_sys::fuzz_target;

/// The table caps the summary documents (stats.rs).
const MAX_TABLE: u64 = 4096;

struct Plan {
    total: Option<u64>,
    max_bytes: u64,
    largest_chunk: usize,
    seed: u8,
    empty_chunks: bool,
}

fn plan(control: [u8; 4], file_len: usize) -> Plan {
    let [flags, size, seed, extra] = control;
    let largest_chunk = if seed & 0x80 != 0 { 64 * (usize::from(size) + 1) } else { usize::from(size) + 1 };
    let max_bytes = if flags & 2 != 0 { u64::from(extra) * 16 } else { u64::MAX };
    let total = (flags & 1 != 0).then(|| file_len as u64 + if flags & 4 != 0 { u64::from(extra) + 1 } else { 0 });
    Plan { total, max_bytes, largest_chunk, seed, empty_chunks: flags & 8 != 0 }
}

fn summarizer(p: &Plan) -> Summarizer {
    let mut s = Summarizer::new(p.max_bytes);
    if let Some(t) = p.total {
        s.set_total_bytes(t);
    }
    s
}

/// The file fed in chunks of pseudo-random sizes; stops when `feed` says it wants no more.
fn chunked(p: &Plan, file: &[u8]) -> Result<Summary, SummaryError> {
    let mut s = summarizer(p);
    // xorshift32: the sizes depend only on the input, so a crash reproduces.
    let mut x = 0x9e37_79b9u32 ^ u32::from(p.seed);
    let mut rest = file;
    let mut wanted = s.wants_more();
    while !rest.is_empty() && wanted {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let n = (x as usize % p.largest_chunk + 1).min(rest.len());
        if p.empty_chunks && x & 0x300 == 0 {
            assert_eq!(s.feed(&[]), s.wants_more(), "an empty chunk changed what feed answers");
        }
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let before = s.wants_more();
        wanted = s.feed(chunk);
        assert_eq!(wanted, s.wants_more(), "feed's answer is not wants_more");
        assert!(before || !wanted, "feed turned wants_more back on");
    }
    s.finish()
}

fn whole(p: &Plan, file: &[u8]) -> Result<Summary, SummaryError> {
    let mut s = summarizer(p);
    s.feed(file);
    s.finish()
}

fn check(p: &Plan, file: &[u8], s: &Summary) {
    let fed = (file.len() as u64).min(p.max_bytes);
    let f = &s.file;
    assert!(f.bytes_seen <= fed, "saw {} of {fed} bytes", f.bytes_seen);
    assert!(s.captured_bytes <= f.bytes_seen, "captured {} > seen {}", s.captured_bytes, f.bytes_seen);
    assert!(s.bytes >= s.captured_bytes, "wire bytes below captured bytes");
    assert_eq!(f.bytes_total, p.total);
    assert!(!(f.truncated && f.stopped_at_limit), "both truncated and stopped at the limit");
    if f.damaged.is_some() {
        assert!(!f.stopped_at_limit && !f.truncated, "damage is the one reason reading stopped");
    } else if f.stopped_at_limit {
        assert!(
            f.bytes_seen >= p.max_bytes || p.total.is_some_and(|t| t > f.bytes_seen),
            "stopped at a limit it never met"
        );
    } else {
        assert_eq!(f.bytes_seen, file.len() as u64, "stopped early without saying why");
    }
    let pr = &s.protocols;
    assert_eq!(pr.ipv4 + pr.ipv6 + pr.non_ip, s.packets, "protocol counts do not add up");
    assert_eq!(pr.tcp + pr.udp + pr.icmp + pr.icmpv6 + pr.other_transport, pr.ipv4 + pr.ipv6);
    assert!(s.tcp.syn_unanswered <= s.tcp.syn);
    assert!(s.top_talkers.len() <= 5 && s.top_conversations.len() <= 5 && s.top_destination_ports.len() <= 5);
    assert!(s.tables.conversations <= MAX_TABLE && s.tables.hosts <= MAX_TABLE);
    assert!(s.tables.conversations <= s.packets && s.tables.hosts <= 2 * s.packets);
    assert!(s.duration_seconds >= 0.0 && s.duration_seconds.is_finite());
    assert_eq!(s.first_packet_time.is_some(), s.last_packet_time.is_some());
    assert!(!s.headline.is_empty());
    for c in &s.top_conversations {
        assert_eq!(c.community_id.len(), 30, "{c:?}");
        assert!(c.packets_a_to_b + c.packets_b_to_a > 0, "{c:?}");
    }
    serde_json::to_string(s).expect("the summary serialises");
}

fuzz_target!(|data: &[u8]| {
    let Some((control, file)) = data.split_first_chunk::<4>() else {
        return;
    };
    let p = plan(*control, file.len());
    let one = whole(&p, file);
    let split = chunked(&p, file);
    assert_eq!(one, split, "chunking changed the result");
    match &one {
        Ok(s) => check(&p, file, s),
        Err(SummaryError::Empty) => assert!(file.is_empty() || p.max_bytes == 0),
        Err(_) => assert!(!file.is_empty() && p.max_bytes > 0),
    }
});
