//! The emulator's state: clock, tokens, resources, captures, faults, journal.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use time::{Duration, OffsetDateTime};

use crate::faults::{Faults, Prng};
use crate::{EmulatorConfig, JournalEntry, OsType};

/// The emulator's own clock: either frozen (moves only when told) or flowing with real time
/// from the last point it was set to.
#[derive(Debug)]
pub(crate) struct Clock {
    base: OffsetDateTime,
    since: Instant,
    flowing: bool,
}

impl Clock {
    pub fn new(start: OffsetDateTime, flowing: bool) -> Clock {
        Clock { base: start, since: Instant::now(), flowing }
    }

    pub fn now(&self) -> OffsetDateTime {
        if self.flowing {
            let elapsed = Duration::try_from(self.since.elapsed()).unwrap_or(Duration::ZERO);
            self.base.saturating_add(elapsed)
        } else {
            self.base
        }
    }

    pub fn set(&mut self, t: OffsetDateTime) {
        self.base = t;
        self.since = Instant::now();
    }

    pub fn advance(&mut self, d: Duration) {
        let now = self.now();
        self.set(now.saturating_add(d));
    }
}

/// Parts of an ARM resource id `/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ArmId {
    pub subscription: String,
    pub resource_group: String,
    pub namespace: String,
    pub kind: String,
    pub name: String,
}

impl ArmId {
    pub fn parse(id: &str) -> Option<ArmId> {
        let segs: Vec<&str> = id.strip_prefix('/')?.split('/').collect();
        if segs.len() != 8
            || !segs[0].eq_ignore_ascii_case("subscriptions")
            || !segs[2].eq_ignore_ascii_case("resourceGroups")
            || !segs[4].eq_ignore_ascii_case("providers")
            || segs.iter().any(|s| s.is_empty())
        {
            return None;
        }
        Some(ArmId {
            subscription: segs[1].to_string(),
            resource_group: segs[3].to_string(),
            namespace: segs[5].to_string(),
            kind: segs[6].to_string(),
            name: segs[7].to_string(),
        })
    }

    /// The case-insensitive key ARM uses to find the resource.
    pub fn key(&self) -> String {
        format!(
            "/subscriptions/{}/resourcegroups/{}/providers/{}/{}/{}",
            self.subscription, self.resource_group, self.namespace, self.kind, self.name
        )
        .to_ascii_lowercase()
    }

    pub fn canonical(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{}/{}/{}",
            self.subscription, self.resource_group, self.namespace, self.kind, self.name
        )
    }
}

/// ARM's normalised location: `"West US"` → `westus`.
pub(crate) fn normalize_location(loc: &str) -> String {
    loc.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase()
}

#[derive(Debug, Clone)]
pub(crate) struct Vm {
    pub id: ArmId,
    pub location: String,
    pub os_type: OsType,
    pub agent: bool,
    pub scale_set: bool,
    pub vm_uuid: String,
    /// Instance ids of a scale set (empty for a VM).
    pub instances: Vec<String>,
    /// Size (`hardwareProfile.vmSize` / `sku.name`).
    pub size: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Watcher {
    pub id: ArmId,
    pub location: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Capture {
    /// Canonical id as first created.
    pub id: String,
    pub name: String,
    pub subscription: String,
    pub location: String,
    /// `properties` exactly as the creating PUT sent them (for the idempotency check).
    pub request_props: serde_json::Value,
    /// `properties` as answered (defaults and `storagePath` filled in).
    pub props: serde_json::Value,
    pub etag: String,
    pub created_at: OffsetDateTime,
    pub start_at: OffsetDateTime,
    pub time_limit_secs: i64,
    pub stopped: Option<OffsetDateTime>,
    pub error: bool,
    /// Stays `Running` past its time limit until stopped (a stuck capture, for watchdog tests).
    pub hang: bool,
    /// Reads (GET, list) that still see `provisioningState: Updating`.
    pub updating_reads: u32,
    /// Emulator time before which reads see `Updating`.
    pub provisioned_at: OffsetDateTime,
    /// `{account}/{container}/{blob}` (decoded) of the capture file, when stored in an account.
    pub blob: Option<String>,
}

/// A user delegation key the Blob service issued.
#[derive(Debug, Clone)]
pub(crate) struct DelegationKey {
    pub oid: String,
    pub tid: String,
    /// `SignedStart` / `SignedExpiry` exactly as answered.
    pub start: String,
    pub expiry: String,
    pub version: String,
    pub value: Vec<u8>,
    pub account: String,
}

/// What a long-running operation is about.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OpKind {
    /// A capture PUT (key of the capture).
    Put(String),
    /// `queryStatus` of a capture (key).
    QueryStatus(String),
    /// `stop` of a capture (key).
    Stop(String),
    /// `DELETE` of a capture.
    Delete,
}

/// A long-running operation behind `Azure-AsyncOperation` / `Location` URLs.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub kind: OpKind,
    pub started: OffsetDateTime,
    /// Polls that still answer `InProgress`.
    pub polls_left: u32,
    /// Emulator time before which polls answer `InProgress`.
    pub ready_at: OffsetDateTime,
    /// `None` = succeeds; `Some((code, message))` = fails.
    pub failure: Option<(String, String)>,
    /// Set when a poll first saw it finished.
    pub ended: Option<OffsetDateTime>,
    /// The `Location` URL handed out (for the `202` of an in-progress poll).
    pub location_url: String,
}

impl Operation {
    /// Counts one poll and tells whether the operation is over.
    pub fn poll(&mut self, now: OffsetDateTime) -> bool {
        if self.ended.is_some() {
            return true;
        }
        if self.polls_left > 0 {
            self.polls_left -= 1;
            return false;
        }
        if now < self.ready_at {
            return false;
        }
        self.ended = Some(now);
        true
    }
}

/// Status of a capture at a given time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CaptureStatus {
    pub status: &'static str,
    pub stop_reason: Option<&'static str>,
    pub errors: Vec<&'static str>,
}

impl Capture {
    pub fn status_at(&self, now: OffsetDateTime) -> CaptureStatus {
        if self.error {
            return CaptureStatus { status: "Error", stop_reason: None, errors: vec!["CaptureFailed"] };
        }
        let time_end = self.start_at + Duration::seconds(self.time_limit_secs);
        if self.hang {
            // A stuck capture ignores its time limit: only a stop ends it.
            let status = match self.stopped {
                Some(_) => "Stopped",
                None if now < self.start_at => "NotStarted",
                None => "Running",
            };
            return CaptureStatus { status, stop_reason: self.stopped.map(|_| "Manual"), errors: vec![] };
        }
        // A manual stop only counts if it came before the time limit ran out.
        if let Some(stopped) = self.stopped
            && stopped < time_end
        {
            return CaptureStatus { status: "Stopped", stop_reason: Some("Manual"), errors: vec![] };
        }
        if now < self.start_at {
            return CaptureStatus { status: "NotStarted", stop_reason: None, errors: vec![] };
        }
        if now >= time_end {
            return CaptureStatus { status: "Stopped", stop_reason: Some("TimeExceeded"), errors: vec![] };
        }
        CaptureStatus { status: "Running", stop_reason: None, errors: vec![] }
    }
}

/// Runtime settings (the config, mutable by tests).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub config: EmulatorConfig,
    pub hostile_base: Option<String>,
    /// Where clients reach the emulator when that is not its own address (a TLS front).
    pub public_base: Option<String>,
}

pub(crate) struct State {
    pub settings: Settings,
    pub clock: Clock,
    /// token → expiry on the emulator clock.
    pub tokens: HashMap<String, OffsetDateTime>,
    /// Tokens issued for the Storage audience (only Blob storage takes them; ARM does not).
    pub storage_tokens: HashMap<String, OffsetDateTime>,
    /// User delegation keys issued.
    pub delegation_keys: Vec<DelegationKey>,
    /// Traffic scenario per capture name (lower-case); others get the default.
    pub scenarios: HashMap<String, crate::pcap::Scenario>,
    /// Exact file bytes per capture name (lower-case), served instead of its scenario's file:
    /// corrupt, truncated, empty or pcapng files, or a large one.
    pub file_overrides: HashMap<String, std::sync::Arc<Vec<u8>>>,
    /// Files of deleted captures: blob key → (capture name, capture start). Deleting a capture
    /// resource leaves its uploaded file in storage, as in Azure.
    pub kept_files: HashMap<String, (String, OffsetDateTime)>,
    pub vms: BTreeMap<String, Vm>,
    pub watchers: BTreeMap<String, Watcher>,
    pub captures: BTreeMap<String, Capture>,
    /// Long-running operations by id.
    pub operations: BTreeMap<String, Operation>,
    pub fail_names: HashSet<String>,
    pub fail_next: u32,
    /// Names (lower-case) of captures that hang in `Running`, and how many next captures do.
    pub hang_names: HashSet<String>,
    pub hang_next: u32,
    pub faults: Faults,
    pub journal: Vec<JournalEntry>,
    pub counts: BTreeMap<String, u64>,
    pub ids: Prng,
    pub seq: u64,
}

impl State {
    pub fn new(config: EmulatorConfig) -> State {
        let start = config.clock_start.unwrap_or_else(OffsetDateTime::now_utc);
        let entropy =
            OffsetDateTime::now_utc().unix_timestamp_nanos() as u64 ^ (std::process::id() as u64).rotate_left(32);
        State {
            clock: Clock::new(start, config.flowing_clock),
            faults: Faults::new(config.fault_seed),
            settings: Settings { config, hostile_base: None, public_base: None },
            tokens: HashMap::new(),
            storage_tokens: HashMap::new(),
            delegation_keys: Vec::new(),
            scenarios: HashMap::new(),
            file_overrides: HashMap::new(),
            kept_files: HashMap::new(),
            vms: BTreeMap::new(),
            watchers: BTreeMap::new(),
            captures: BTreeMap::new(),
            operations: BTreeMap::new(),
            fail_names: HashSet::new(),
            fail_next: 0,
            hang_names: HashSet::new(),
            hang_next: 0,
            journal: Vec::new(),
            counts: BTreeMap::new(),
            ids: Prng::new(entropy),
            seq: 0,
        }
    }

    /// A random lowercase hex string of `n` 64-bit words.
    pub fn random_hex(&mut self, words: usize) -> String {
        (0..words).map(|_| format!("{:016x}", self.ids.next_u64())).collect()
    }

    /// A random GUID-shaped string (for trace ids, etags, operation ids).
    pub fn guid(&mut self) -> String {
        let h = self.random_hex(2);
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(start_delay: i64, limit: i64) -> Capture {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        Capture {
            id: String::new(),
            name: "pc".into(),
            subscription: "s".into(),
            location: "westus".into(),
            request_props: serde_json::Value::Null,
            props: serde_json::Value::Null,
            etag: String::new(),
            created_at: t0,
            start_at: t0 + Duration::seconds(start_delay),
            time_limit_secs: limit,
            stopped: None,
            error: false,
            hang: false,
            updating_reads: 0,
            provisioned_at: t0,
            blob: None,
        }
    }

    #[test]
    fn status_follows_the_clock() {
        let c = capture(5, 60);
        let t0 = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(c.status_at(t0).status, "NotStarted");
        assert_eq!(c.status_at(t0 + Duration::seconds(5)).status, "Running");
        let end = c.status_at(t0 + Duration::seconds(65));
        assert_eq!((end.status, end.stop_reason), ("Stopped", Some("TimeExceeded")));
    }

    #[test]
    fn arm_id_parse_rejects_wrong_shapes() {
        assert!(
            ArmId::parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm").is_some()
        );
        assert!(
            ArmId::parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines").is_none()
        );
        assert!(ArmId::parse("subscriptions/s/resourceGroups/rg/providers/a/b/c").is_none());
        assert!(ArmId::parse("/subscriptions//resourceGroups/rg/providers/a/b/c").is_none());
    }

    #[test]
    fn locations_normalise() {
        assert_eq!(normalize_location("West US"), "westus");
    }
}
