//! Fault injection: which calls of which route fail, and how.

use serde::{Deserialize, Serialize};

/// Route names used by faults, the journal and the call counts.
pub mod routes {
    /// `POST /{tenant}/oauth2/v2.0/token`
    pub const TOKEN: &str = "token";
    /// `GET /{tenant}/v2.0/.well-known/openid-configuration`
    pub const OPENID_CONFIGURATION: &str = "openid_configuration";
    /// `GET /{tenant}/discovery/v2.0/keys` (the JWKS)
    pub const JWKS: &str = "jwks";
    /// `GET …/Microsoft.Compute/virtualMachines/{vm}`
    pub const VM_GET: &str = "vm_get";
    /// `GET …/Microsoft.Compute/virtualMachineScaleSets/{vmss}`
    pub const VMSS_GET: &str = "vmss_get";
    /// `GET …/Microsoft.Compute/virtualMachineScaleSets/{vmss}/virtualMachines/{instanceId}`
    pub const VMSS_VM_GET: &str = "vmss_vm_get";
    /// `GET /subscriptions/{s}/providers/Microsoft.Network/networkWatchers`
    pub const WATCHERS_LIST: &str = "watchers_list";
    /// `PUT …/packetCaptures/{name}`
    pub const CAPTURE_PUT: &str = "capture_put";
    /// `GET …/packetCaptures/{name}`
    pub const CAPTURE_GET: &str = "capture_get";
    /// `POST …/packetCaptures/{name}/queryStatus`
    pub const CAPTURE_STATUS: &str = "capture_status";
    /// `POST …/packetCaptures/{name}/stop`
    pub const CAPTURE_STOP: &str = "capture_stop";
    /// `DELETE …/packetCaptures/{name}`
    pub const CAPTURE_DELETE: &str = "capture_delete";
    /// `GET …/packetCaptures`
    pub const CAPTURE_LIST: &str = "capture_list";
    /// `GET` of an `Azure-AsyncOperation` URL.
    pub const ASYNC_OPERATION: &str = "async_operation";
    /// `GET` of a `Location` URL (operation results).
    pub const OPERATION_RESULT: &str = "operation_result";
    /// `GET` of a capture blob (path style).
    pub const BLOB_GET: &str = "blob_get";
    /// `POST /{account}/?restype=service&comp=userdelegationkey`.
    pub const USER_DELEGATION_KEY: &str = "user_delegation_key";
    /// Anything else.
    pub const UNKNOWN: &str = "unknown";
    /// Matches every route in a [`crate::Fault`].
    pub const ANY: &str = "*";
}

/// What a fault does to a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer this status instead of handling the call: 429 (with `Retry-After`),
    /// 409 (`RetryableErrorDueToAnotherOperation`, with `Retry-After`), 500, 503, or any other.
    Status(u16),
    /// Wait this many milliseconds, then handle the call normally.
    LatencyMs(u64),
    /// Close the connection without answering; the call has no effect.
    Drop,
    /// Handle the call (a PUT is applied in "Azure"), then close the connection without
    /// sending the answer.
    LoseResponse,
}

/// When a fault fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The next N matching calls.
    Count(u32),
    /// Each matching call with this probability (0.0..=1.0), drawn from the seeded generator.
    Probability(f64),
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// A route name from [`routes`], or `"*"` for all routes.
    pub route: String,
    /// What happens.
    pub kind: FaultKind,
    /// When it happens.
    pub trigger: Trigger,
    /// `Retry-After` seconds sent with 429/409/503 answers (default 1).
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u32,
}

fn default_retry_after() -> u32 {
    1
}

impl Fault {
    /// A fault for the next `n` calls of `route`.
    pub fn count(route: &str, kind: FaultKind, n: u32) -> Fault {
        Fault { route: route.to_string(), kind, trigger: Trigger::Count(n), retry_after_secs: 1 }
    }

    /// A fault that hits each call of `route` with probability `p`.
    pub fn probability(route: &str, kind: FaultKind, p: f64) -> Fault {
        Fault { route: route.to_string(), kind, trigger: Trigger::Probability(p), retry_after_secs: 1 }
    }

    /// Sets the `Retry-After` seconds.
    pub fn retry_after(mut self, secs: u32) -> Fault {
        self.retry_after_secs = secs;
        self
    }
}

/// splitmix64: tiny, seedable, good enough to decide faults repeatably.
#[derive(Debug, Clone)]
pub(crate) struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Prng {
        Prng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The active fault rules and the generator that decides probabilities.
#[derive(Debug)]
pub(crate) struct Faults {
    rules: Vec<Fault>,
    rng: Prng,
}

/// What the faults decided for one call.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    pub latency_ms: u64,
    /// The first terminating fault that fired, with its `Retry-After`.
    pub action: Option<(FaultKind, u32)>,
}

impl Faults {
    pub fn new(seed: u64) -> Faults {
        Faults { rules: Vec::new(), rng: Prng::new(seed) }
    }

    pub fn reseed(&mut self, seed: u64) {
        self.rng = Prng::new(seed);
    }

    pub fn add(&mut self, fault: Fault) {
        self.rules.push(fault);
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// Decides the faults for one call of `route`, rules in the order added: latency rules
    /// add up; the first terminating rule that fires decides the call. The outcomes depend
    /// only on the seed and the sequence of calls.
    pub fn decide(&mut self, route: &str) -> Decision {
        let mut decision = Decision::default();
        for rule in &mut self.rules {
            if rule.route != route && rule.route != routes::ANY {
                continue;
            }
            // Once a call is decided, later terminating rules keep their counts for later calls.
            let terminating = !matches!(rule.kind, FaultKind::LatencyMs(_));
            if terminating && decision.action.is_some() {
                continue;
            }
            let fires = match &mut rule.trigger {
                Trigger::Count(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                Trigger::Count(_) => false,
                Trigger::Probability(p) => self.rng.next_f64() < *p,
            };
            if !fires {
                continue;
            }
            match &rule.kind {
                FaultKind::LatencyMs(ms) => decision.latency_ms += ms,
                other => decision.action = Some((other.clone(), rule.retry_after_secs)),
            }
        }
        self.rules.retain(|r| !matches!(r.trigger, Trigger::Count(0)));
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_fires_exactly_n_times() {
        let mut f = Faults::new(1);
        f.add(Fault::count("token", FaultKind::Status(500), 2));
        let fired: Vec<bool> = (0..4).map(|_| f.decide("token").action.is_some()).collect();
        assert_eq!(fired, vec![true, true, false, false]);
        assert!(f.decide("vm_get").action.is_none());
    }

    #[test]
    fn probability_is_repeatable_for_a_seed() {
        let run = |seed| {
            let mut f = Faults::new(seed);
            f.add(Fault::probability("*", FaultKind::Drop, 0.5));
            (0..64).map(|_| f.decide("vm_get").action.is_some()).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let hits = run(7).iter().filter(|b| **b).count();
        assert!(hits > 10 && hits < 54, "{hits}");
    }
}
