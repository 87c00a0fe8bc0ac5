//! The base configuration's values and the URLs and sample files the suites share.
//!
//! Tests that scan for secrets use their own distinctive values (see `tests/security.rs`).

/// The subscription of every test resource (the placeholder GUID of the samples).
pub const SUB: &str = "00000000-0000-0000-0000-000000000000";
/// The Entra tenant (the one the samples name).
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The app registration's client id.
pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
/// The client secret of the base configuration.
pub const SECRET: &str = "client-secret-value";
/// The webhook key of the base configuration, sent by [`crate::TestApp`] on keyed routes.
pub const KEY: &str = "webhook-key-0123456789";
/// The time every [`crate::TestApp`] starts at.
pub const T0: i64 = 1_780_000_000;

/// Azure Resource Manager (public cloud).
pub const ARM: &str = "https://management.azure.com";
/// Entra ID (public cloud).
pub const LOGIN: &str = "https://login.microsoftonline.com";
/// The token endpoint of [`TENANT`].
pub const TOKEN_URL: &str = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token";
/// The notification host (`notify_host`).
pub const NOTIFY_HOST: &str = "https://hooks.example.com";
/// The notification URL (`notify_url`).
pub const NOTIFY: &str = "https://hooks.example.com/apc/events";
/// The capture storage account (`storage_account_id`).
pub const STORAGE_ID: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg2/providers/Microsoft.Storage/storageAccounts/pcstore";

/// The Microsoft.Network api-version, as a query parameter.
pub const NETWORK_API: &str = "api-version=2025-07-01";
/// The Microsoft.Compute api-version, as a query parameter.
pub const COMPUTE_API: &str = "api-version=2025-04-01";

/// The VM GET of the common-schema sample's target (`wcus-r2-gen2`).
pub const VM1_URL: &str = "https://management.azure.com/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/pipelinealertrg/providers/Microsoft.Compute/virtualMachines/wcus-r2-gen2?api-version=2025-04-01";
/// The subscription's watcher list.
pub const WATCHERS_URL: &str = "https://management.azure.com/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Network/networkWatchers?api-version=2025-07-01";
/// The packet-capture collection of watcher `nw2` (westus) of the watcher-list sample.
pub const NW2: &str = "https://management.azure.com/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/providers/Microsoft.Network/networkWatchers/nw2/packetCaptures";

/// Sample: a successful client-credentials token (Entra docs).
pub const TOKEN_OK: &str = "token/client-credentials.success.entra-docs.json";
/// Sample: Entra refusing the client secret.
pub const TOKEN_BAD_SECRET: &str = "token/error.AADSTS7000215.invalid_client.http401.real.json";
/// Sample: a VM GET (westus).
pub const VM_GET: &str = "compute/VirtualMachineGet.2025-04-01.json";
/// Sample: the subscription's watcher list (nw2 in westus).
pub const WATCHER_LIST: &str = "network-watcher/NetworkWatcherListAll.2026-07-01.json";
/// Sample: a packet capture created.
pub const CAPTURE_CREATE: &str = "network-watcher/PacketCaptureCreate.2026-07-01.json";
/// Sample: a packet capture read back.
pub const CAPTURE_GET: &str = "network-watcher/PacketCaptureGet.2026-03-01.json";
/// Sample: a stopped capture's status.
pub const CAPTURE_STATUS_STOPPED: &str = "network-watcher/PacketCaptureQueryStatus.2026-07-01.json";
/// Sample: a running capture's status (REST docs, a bare body).
pub const CAPTURE_STATUS_RUNNING: &str = "network-watcher/PacketCaptureQueryStatus.running.rest-doc-2016-12-01.json";
/// Sample: a capture stopped.
pub const CAPTURE_STOP: &str = "network-watcher/PacketCaptureStop.2026-03-01.json";
/// Sample: a capture deleted.
pub const CAPTURE_DELETE: &str = "network-watcher/PacketCaptureDelete.2026-03-01.json";

/// The URL of capture `name` on watcher [`NW2`].
pub fn capture_url(name: &str) -> String {
    format!("{NW2}/{name}?{NETWORK_API}")
}

/// The `queryStatus` URL of capture `name` on watcher [`NW2`].
pub fn status_url(name: &str) -> String {
    format!("{NW2}/{name}/queryStatus?{NETWORK_API}")
}

/// The id of VM `name` in resource group `rg` of [`SUB`].
pub fn vm_id(rg: &str, name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}")
}

/// The id of scale set `name` in resource group `rg` of [`SUB`].
pub fn scale_set_id(rg: &str, name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}")
}

/// The token endpoint of `tenant` at `authority`.
pub fn token_url(authority: &str, tenant: &str) -> String {
    format!("{authority}/{tenant}/oauth2/v2.0/token")
}

/// The base configuration: every required variable set, notifications on.
pub fn base_vars() -> crate::MapVars {
    crate::MapVars::from_pairs(&[
        ("azure_tenant_id", TENANT),
        ("azure_client_id", CLIENT_ID),
        ("azure_client_secret", SECRET),
        ("webhook_keys", KEY),
        ("storage_account_id", STORAGE_ID),
        ("notify_url", NOTIFY),
        ("notify_host", NOTIFY_HOST),
    ])
}
