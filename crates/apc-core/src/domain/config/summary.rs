//! The capture file's summary and download link (issue 10): `capture_summary_max_bytes`,
//! `download_link_hours`, `storage_blob_host`.
//!
//! Problems here never stop a capture nor hold back a notification: they turn summaries and
//! links off, say why on `/healthz`, and the notification carries the reason instead.
//!
//! Where the blobs are ([`BlobHost::endpoint`]): the account name is the last segment of the
//! record's `storage_account_id` (lower-cased; Storage names are lower-case), and the host
//! follows `storage_blob_host`:
//! - `https://*.blob.core.windows.net` (the default), `https://*.blob.core.chinacloudapi.cn`,
//!   `https://*.blob.core.usgovcloudapi.net`: that cloud's endpoint,
//!   `https://{account}.blob.{suffix}`. `spin.toml` allows the same wildcard.
//! - `https://{account}.blob.{suffix}` of one of those clouds: the same, for that account only.
//! - Any other `scheme://host[:port]` (an emulator such as Azurite): blobs are path style, at
//!   `{origin}/{account}/{container}/{blob}`.
//!
//! A cloud blob host must match the cloud of `azure_arm_endpoint` when that is one of the three
//! clouds (a China ARM endpoint with a public blob host is a mistake, and is named).

use super::{Effect, Problem, Reader};
use crate::domain::blob::{BlobCloud, BlobEndpoint, BlobUrlError};
use crate::domain::origin::Origin;
use crate::domain::resource_id::ResourceId;

/// Default of `capture_summary_max_bytes` (8 MiB).
pub const SUMMARY_MAX_BYTES_DEFAULT: u64 = 8 * 1024 * 1024;
/// Largest `capture_summary_max_bytes` (256 MiB; the time budget ends reading sooner anyway).
pub const SUMMARY_MAX_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// `download_link_hours` range: a user delegation key, and so the link, lives at most 7 days.
pub const LINK_HOURS_RANGE: (u64, u64) = (1, 168);

/// Where the configured account's blobs are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobHost {
    /// A cloud's `*.blob.{suffix}` (any account of that cloud's form).
    Cloud(BlobCloud),
    /// One account's endpoint in a cloud (`https://{account}.blob.{suffix}`).
    Account(BlobCloud, Origin),
    /// An emulator origin, path style.
    Emulator(Origin),
}

impl BlobHost {
    /// Read `storage_blob_host`.
    pub fn parse(v: &str) -> Result<BlobHost, String> {
        let v = v.trim();
        let clouds = [BlobCloud::Public, BlobCloud::China, BlobCloud::UsGovernment];
        if let Some(rest) = v.strip_prefix("https://*.blob.") {
            let rest = rest.strip_suffix('/').unwrap_or(rest).to_ascii_lowercase();
            let rest = rest.strip_suffix(":443").unwrap_or(&rest);
            return clouds.into_iter().find(|c| c.suffix() == rest).map(BlobHost::Cloud).ok_or_else(|| {
                "a wildcard must be https://*.blob.core.windows.net, https://*.blob.core.chinacloudapi.cn or https://*.blob.core.usgovcloudapi.net".to_string()
            });
        }
        if v.contains('*') {
            return Err("a wildcard is allowed only as https://*.blob.{cloud suffix}".to_string());
        }
        let origin = Origin::parse(v).map_err(|e| e.to_string())?;
        let cloud = clouds.into_iter().find(|c| origin.host().ends_with(&format!(".blob.{}", c.suffix())));
        match cloud {
            Some(c) if origin.scheme() == crate::domain::origin::Scheme::Https && origin.port() == 443 => {
                Ok(BlobHost::Account(c, origin))
            }
            Some(_) => Err("an Azure blob endpoint must be https on port 443".to_string()),
            None => Ok(BlobHost::Emulator(origin)),
        }
    }

    /// The cloud of a cloud host (`None`: an emulator).
    pub fn cloud(&self) -> Option<BlobCloud> {
        match self {
            BlobHost::Cloud(c) | BlobHost::Account(c, _) => Some(*c),
            BlobHost::Emulator(_) => None,
        }
    }

    /// The blob endpoint of the storage account `storage_account_id` (an ARM id).
    pub fn endpoint(&self, storage_account_id: &str) -> Result<BlobEndpoint, BlobUrlError> {
        let id = ResourceId::parse(storage_account_id).map_err(|_| BlobUrlError::Account)?;
        if !id.is_type("Microsoft.Storage", &["storageAccounts"]) {
            return Err(BlobUrlError::Account);
        }
        let account = id.name().to_ascii_lowercase();
        match self {
            BlobHost::Cloud(c) => BlobEndpoint::cloud(&account, *c),
            BlobHost::Account(c, origin) => {
                let ep = BlobEndpoint::cloud(&account, *c)?;
                if ep.origin() != origin {
                    return Err(BlobUrlError::ForeignHost {
                        found: ep.origin().to_string(),
                        expected: origin.to_string(),
                    });
                }
                Ok(ep)
            }
            BlobHost::Emulator(origin) => BlobEndpoint::emulator(origin.clone(), &account),
        }
    }
}

/// The summary and link settings.
#[derive(Debug, Clone)]
pub struct SummaryConfig {
    /// Read at most this many bytes of a capture file (0: no summaries).
    pub max_bytes: u64,
    /// Download links expire after this many hours.
    pub link_hours: u32,
    /// Where blobs are; `None` when `storage_blob_host` has a problem.
    pub blob_host: Option<BlobHost>,
    problems: Vec<Problem>,
}

impl SummaryConfig {
    /// The problems of these settings (they turn summaries and links off, nothing else).
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Why no summary or link can be made with these settings, naming the variables.
    pub fn unusable(&self) -> Option<String> {
        if self.problems.is_empty() {
            return None;
        }
        let mut names: Vec<&str> = self.problems.iter().map(|p| p.variable).collect();
        names.dedup();
        Some(format!("the storage settings have problems ({}); see /healthz", names.join(", ")))
    }
}

fn summary_problem(r: &mut Reader, variable: &'static str, message: impl Into<String>) {
    r.problems.push(Problem { variable, message: message.into(), effect: Effect::SummariesOnly });
}

/// Read the section. Always yields settings: its problems (reported on `r`) only turn summaries
/// and links off. `arm_endpoint`: the configured ARM origin, when valid.
pub(crate) fn load(r: &mut Reader, arm_endpoint: Option<&Origin>) -> SummaryConfig {
    let before = r.problems.len();
    let max_bytes = r.number("capture_summary_max_bytes", 0, SUMMARY_MAX_BYTES_MAX);
    let link_hours = r.small("download_link_hours", LINK_HOURS_RANGE.0 as u32, LINK_HOURS_RANGE.1 as u32);
    let raw_host = r.raw("storage_blob_host").unwrap_or_default();
    let mut blob_host = match BlobHost::parse(&raw_host) {
        Ok(h) => Some(h),
        Err(why) => {
            summary_problem(r, "storage_blob_host", why);
            None
        }
    };
    if let (Some(host), Some(arm)) = (&blob_host, arm_endpoint)
        && let (Some(blob_cloud), Some(arm_cloud)) = (host.cloud(), BlobCloud::from_arm_endpoint(arm))
        && blob_cloud != arm_cloud
    {
        summary_problem(r, "storage_blob_host", "is in another cloud than azure_arm_endpoint");
        blob_host = None;
    }
    // The account must make a blob endpoint (the capture section checks the id itself).
    if let (Some(host), Some(id)) = (&blob_host, r.raw("storage_account_id"))
        && ResourceId::parse(&id).is_ok_and(|i| i.is_type("Microsoft.Storage", &["storageAccounts"]))
        && let Err(e) = host.endpoint(&id)
    {
        let message = match e {
            BlobUrlError::ForeignHost { .. } => "names another storage account's endpoint than storage_account_id",
            _ => "names a storage account whose name is not 3 to 24 lower-case letters and digits",
        };
        let variable =
            if matches!(e, BlobUrlError::ForeignHost { .. }) { "storage_blob_host" } else { "storage_account_id" };
        summary_problem(r, variable, message);
        blob_host = None;
    }
    SummaryConfig {
        max_bytes: max_bytes.unwrap_or(SUMMARY_MAX_BYTES_DEFAULT),
        link_hours: link_hours.unwrap_or(24),
        blob_host,
        problems: r.problems[before..].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Vars, minimal};
    use super::super::{Config, Effect};
    use super::*;

    fn load_with(pairs: &[(&'static str, &'static str)]) -> Config {
        let mut v = minimal();
        v.extend(pairs.iter().copied());
        Config::load(&Vars(v)).expect("summary problems never stop captures")
    }

    fn names(c: &Config) -> Vec<&'static str> {
        c.summary.problems().iter().map(|p| p.variable).collect()
    }

    #[test]
    fn defaults() {
        let c = load_with(&[]);
        assert_eq!(c.summary.max_bytes, 8_388_608);
        assert_eq!(c.summary.link_hours, 24);
        assert_eq!(c.summary.blob_host, Some(BlobHost::Cloud(BlobCloud::Public)));
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        let ep = c.summary.blob_host.as_ref().unwrap().endpoint(minimal()["storage_account_id"]).unwrap();
        assert_eq!(ep.origin().as_str(), "https://pcstore.blob.core.windows.net");
        // An account name Storage cannot have is named, and costs only summaries.
        let c = load_with(&[(
            "storage_account_id",
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st",
        )]);
        assert_eq!(names(&c), ["storage_account_id"]);
        assert!(c.problems().iter().all(|p| p.effect == Effect::SummariesOnly));
    }

    const PCSTORE: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/PcStore";

    #[test]
    fn each_cloud_and_the_emulator_give_their_endpoint() {
        let cases = [
            (
                "https://*.blob.core.windows.net",
                "https://pcstore.blob.core.windows.net",
                "https://management.azure.com",
            ),
            (
                "https://*.blob.core.chinacloudapi.cn",
                "https://pcstore.blob.core.chinacloudapi.cn",
                "https://management.chinacloudapi.cn",
            ),
            (
                "https://*.blob.core.usgovcloudapi.net",
                "https://pcstore.blob.core.usgovcloudapi.net",
                "https://management.usgovcloudapi.net",
            ),
            (
                "https://pcstore.blob.core.windows.net",
                "https://pcstore.blob.core.windows.net",
                "https://management.azure.com",
            ),
            ("http://127.0.0.1:10000", "http://127.0.0.1:10000", "http://127.0.0.1:8089"),
        ];
        for (host, origin, arm) in cases {
            let c =
                load_with(&[("storage_blob_host", host), ("storage_account_id", PCSTORE), ("azure_arm_endpoint", arm)]);
            assert!(c.problems().is_empty(), "{host}: {:?}", c.problems());
            let ep = c.summary.blob_host.as_ref().unwrap().endpoint(PCSTORE).unwrap();
            assert_eq!(ep.origin().as_str(), origin, "{host}");
            assert_eq!(ep.account(), "pcstore");
        }
    }

    #[test]
    fn bad_settings_are_named_and_turn_only_summaries_off() {
        let cases: &[(&[(&'static str, &'static str)], &str)] = &[
            (&[("storage_blob_host", "https://*.example.com")], "storage_blob_host"),
            (&[("storage_blob_host", "https://a*.blob.core.windows.net")], "storage_blob_host"),
            (&[("storage_blob_host", "ftp://x")], "storage_blob_host"),
            (&[("storage_blob_host", "http://pcstore.blob.core.windows.net")], "storage_blob_host"),
            (&[("storage_blob_host", "https://other.blob.core.windows.net")], "storage_blob_host"),
            (&[("storage_blob_host", "https://*.blob.core.chinacloudapi.cn")], "storage_blob_host"),
            (&[("download_link_hours", "169")], "download_link_hours"),
            (&[("download_link_hours", "0")], "download_link_hours"),
            (&[("capture_summary_max_bytes", "-1")], "capture_summary_max_bytes"),
            (&[("capture_summary_max_bytes", "268435457")], "capture_summary_max_bytes"),
        ];
        for (pairs, name) in cases {
            let mut all = vec![("storage_account_id", PCSTORE)];
            all.extend_from_slice(pairs);
            let c = load_with(&all);
            assert_eq!(names(&c), [*name], "{pairs:?}");
            assert!(c.problems().iter().all(|p| p.effect == Effect::SummariesOnly));
            assert!(c.summary.unusable().unwrap().contains(name));
        }
        // The boundaries themselves are fine.
        let c = load_with(&[
            ("storage_account_id", PCSTORE),
            ("download_link_hours", "168"),
            ("capture_summary_max_bytes", "0"),
        ]);
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert_eq!((c.summary.link_hours, c.summary.max_bytes), (168, 0));
    }
}
