//! `summary::Summarizer` on arbitrary bytes: it must never panic, must give the same answer
//! whichever way the bytes are chunked, and must never claim more bytes than it was given.

#![no_main]

use apc_core::summary::Summarizer;
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8], chunk: usize) -> Option<apc_core::summary::Summary> {
    let mut s = Summarizer::new(u64::MAX);
    for c in data.chunks(chunk) {
        s.feed(c);
    }
    s.finish().ok()
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks a chunk size, so odd splits of records are explored too.
    let chunk = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let whole = run(data, data.len().max(1));
    let split = run(data, chunk);
    assert_eq!(whole, split, "chunking changed the summary");
    if let Some(s) = whole {
        assert!(s.file.bytes_seen <= data.len() as u64);
        assert!(s.captured_bytes <= data.len() as u64);
        assert!(s.top_talkers.len() <= 5 && s.top_conversations.len() <= 5);
    }
});
