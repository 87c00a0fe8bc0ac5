//! [`AzureEnv`]: the ports and configuration for suites that drive
//! [`apc_core::azure::Azure`] directly, without `api::handle`.

use apc_core::azure::Azure;
use apc_core::config::{AzureConfig, Secret};
use apc_core::origin::Origin;
use apc_core::ports::{Method, World};

use crate::consts::{CLIENT_ID, LOGIN, TENANT, TOKEN_OK, token_url};
use crate::http::{ScriptedHttp, sample_file_response};
use crate::{MemKv, TestClock};

/// The Azure settings of the base configuration with `secret`, `authority` and `arm` (origins;
/// panics when one is not).
pub fn azure_config(secret: &str, authority: &str, arm: &str) -> AzureConfig {
    let origin = |o: &str| Origin::parse(o).unwrap_or_else(|e| panic!("{o} is not an origin: {e}"));
    AzureConfig {
        tenant_id: TENANT.to_string(),
        client_id: CLIENT_ID.to_string(),
        client_secret: Secret::new(secret),
        authority_host: origin(authority),
        arm_endpoint: origin(arm),
    }
}

/// A scripted transport, a strict store and a clock, with the Azure settings a client is built
/// from; all public so a test can script, inspect and change them.
pub struct AzureEnv {
    /// The outbound transport.
    pub http: ScriptedHttp,
    /// The store (token and VM caches).
    pub kv: MemKv,
    /// The clock.
    pub clock: TestClock,
    /// The settings [`az`](Self::az) builds a client from.
    pub cfg: AzureConfig,
}

impl AzureEnv {
    /// Nothing scripted, the clock at `t0`.
    pub fn new(cfg: AzureConfig, t0: i64) -> Self {
        AzureEnv { http: ScriptedHttp::new(), kv: MemKv::new(), clock: TestClock::at(t0), cfg }
    }

    /// [`new`](Self::new), with the first token request scripted ([`token_once`](Self::token_once)).
    pub fn ready(cfg: AzureConfig, t0: i64) -> Self {
        let env = Self::new(cfg, t0);
        env.token_once();
        env
    }

    /// A client, as a new request would build it.
    pub fn az(&self) -> Azure<'_> {
        Azure::new(&self.cfg, self.world())
    }

    /// The ports.
    pub fn world(&self) -> World<'_> {
        World { http: &self.http, kv: &self.kv, clock: &self.clock }
    }

    /// Expect, next in order, one successful token request at the public cloud's authority for
    /// [`TENANT`] (the Entra docs sample).
    pub fn token_once(&self) {
        self.http.expect(Method::Post, token_url(LOGIN, TENANT), sample_file_response(TOKEN_OK, 200));
    }

    /// Token requests received so far.
    pub fn token_requests(&self) -> usize {
        self.http.requests().iter().filter(|r| r.url.contains("/oauth2/v2.0/token")).count()
    }
}
