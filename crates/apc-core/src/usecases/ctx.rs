//! What a request carries through its use cases: the settings, the ports, the Azure client,
//! its id and its deadline.

use crate::clients::azure::Azure;
use crate::domain::config::Config;
use crate::ports::{UnixSeconds, World};

/// Everything a step needs.
pub struct Ctx<'a> {
    /// Configuration.
    pub cfg: &'a Config,
    /// Ports.
    pub world: World<'a>,
    /// The Azure client (its caches live in the KV store).
    pub azure: Azure<'a>,
    /// This request's id (the value of the create claims it writes).
    pub writer: String,
    /// Past this time the request starts no new Azure work and leaves it to later requests.
    pub deadline: UnixSeconds,
}

impl<'a> Ctx<'a> {
    /// A context over `world`.
    pub fn new(cfg: &'a Config, world: World<'a>) -> Self {
        let deadline = world.clock.now().saturating_add(REQUEST_WORK_SECS);
        Ctx { cfg, world, azure: Azure::new(&cfg.azure, world), writer: String::new(), deadline }
    }
    /// Now.
    pub fn now(&self) -> UnixSeconds {
        self.world.clock.now()
    }
}

/// After this many seconds of its own clock a request starts no new step (Akamai allows 30 s
/// per request; one step makes at most four Azure calls).
pub const REQUEST_WORK_SECS: i64 = 8;
