//! A wall clock the tests can move: real time plus an offset shared by every instance, so a
//! test can let "five minutes pass" for the component (and the emulator) without waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime_wasi::HostWallClock;

/// The guest's wall clock: real time shifted by an offset tests control. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct TestClock {
    offset_secs: Arc<AtomicI64>,
}

impl TestClock {
    /// Move the guest's clock forward by `secs` (negative moves it back).
    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::SeqCst);
    }
    /// The current offset from real time, in seconds.
    pub fn offset(&self) -> i64 {
        self.offset_secs.load(Ordering::SeqCst)
    }
    /// The guest's "now", in seconds since the Unix epoch.
    pub fn now_unix(&self) -> i64 {
        self.now_duration().as_secs() as i64
    }
    fn now_duration(&self) -> Duration {
        let real = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let offset = self.offset();
        if offset >= 0 {
            real + Duration::from_secs(offset as u64)
        } else {
            real.saturating_sub(Duration::from_secs(offset.unsigned_abs()))
        }
    }
}

impl HostWallClock for TestClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        self.now_duration()
    }
}
