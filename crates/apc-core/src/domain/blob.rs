//! Blob URLs of capture files (issue 10): which cloud's blob endpoint, the configured storage
//! account's endpoint, and a blob URL that passed the host check. Parsed once; the Storage
//! client (`clients::azure::storage`) only ever calls a [`BlobUrl`].

use percent_encoding::percent_decode_str;

use super::origin::{Origin, Scheme};

/// The sovereign clouds and the DNS suffix of their blob endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobCloud {
    /// Public Azure: `{account}.blob.core.windows.net`.
    Public,
    /// Azure operated by 21Vianet: `{account}.blob.core.chinacloudapi.cn`.
    China,
    /// Azure US Government: `{account}.blob.core.usgovcloudapi.net`.
    UsGovernment,
}

impl BlobCloud {
    /// The suffix after `{account}.blob.`.
    pub fn suffix(self) -> &'static str {
        match self {
            BlobCloud::Public => "core.windows.net",
            BlobCloud::China => "core.chinacloudapi.cn",
            BlobCloud::UsGovernment => "core.usgovcloudapi.net",
        }
    }

    /// The cloud whose ARM endpoint this is (`management.azure.com`, `management.chinacloudapi.cn`,
    /// `management.usgovcloudapi.net`); `None` for any other (an emulator).
    pub fn from_arm_endpoint(arm: &Origin) -> Option<BlobCloud> {
        if arm.scheme() != Scheme::Https || arm.port() != 443 {
            return None;
        }
        match arm.host() {
            "management.azure.com" => Some(BlobCloud::Public),
            "management.chinacloudapi.cn" => Some(BlobCloud::China),
            "management.usgovcloudapi.net" => Some(BlobCloud::UsGovernment),
            _ => None,
        }
    }
}

/// Why a blob URL (or a storage account name) is not one we fetch. Shown to the on-call person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobUrlError {
    /// The account name is not 3–24 lower-case letters and digits.
    #[error("storage account name must be 3 to 24 lower-case letters and digits")]
    Account,
    /// Not an absolute http(s) URL we can send.
    #[error("the capture's storagePath is not a URL we can fetch: {0}")]
    NotAUrl(crate::domain::origin::OriginError),
    /// Another host than the configured account's blob endpoint.
    #[error(
        "the capture's blob is on {found}, not on the configured storage account's blob endpoint {expected}; it is not fetched"
    )]
    ForeignHost {
        /// The origin the URL names.
        found: String,
        /// The only origin we fetch from.
        expected: String,
    },
    /// A query string (a SAS or anything else) in the stored path.
    #[error("the capture's storagePath carries a query string; it is not fetched")]
    Query,
    /// The path does not name the account (emulator), a container and a blob.
    #[error("the capture's storagePath does not name a container and a blob: {0}")]
    Path(&'static str),
}

/// Where the configured storage account's blobs are: a cloud endpoint, or an emulator origin
/// with the account as the first path segment (Azurite's path style).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEndpoint {
    account: String,
    origin: Origin,
    path_style: bool,
}

fn valid_account(account: &str) -> bool {
    (3..=24).contains(&account.len()) && account.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl BlobEndpoint {
    /// `https://{account}.blob.{suffix}` of `cloud`.
    pub fn cloud(account: &str, cloud: BlobCloud) -> Result<BlobEndpoint, BlobUrlError> {
        if !valid_account(account) {
            return Err(BlobUrlError::Account);
        }
        let origin =
            Origin::parse(&format!("https://{account}.blob.{}", cloud.suffix())).map_err(|_| BlobUrlError::Account)?;
        Ok(BlobEndpoint { account: account.to_string(), origin, path_style: false })
    }

    /// An emulator at `origin` (e.g. `http://127.0.0.1:10000`), blobs at `{origin}/{account}/…`.
    pub fn emulator(origin: Origin, account: &str) -> Result<BlobEndpoint, BlobUrlError> {
        if !valid_account(account) {
            return Err(BlobUrlError::Account);
        }
        Ok(BlobEndpoint { account: account.to_string(), origin, path_style: true })
    }

    /// The storage account name.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The origin every request goes to (for `allowed_outbound_hosts`).
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The service root: the origin, plus `/{account}` in path style; no trailing slash.
    pub(crate) fn service_root(&self) -> String {
        if self.path_style { format!("{}/{}", self.origin.as_str(), self.account) } else { self.origin.to_string() }
    }

    /// `spr` of our SAS: `https` only, unless the configured origin itself is plain http (a
    /// local emulator), where `https,http` lets the link work at all.
    pub fn sas_protocol(&self) -> &'static str {
        match self.origin.scheme() {
            Scheme::Https => "https",
            Scheme::Http => "https,http",
        }
    }
}

/// A blob URL that passed the host check: on the configured account's blob endpoint, with a
/// container and a blob name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobUrl {
    /// Origin + path as sent (percent-encoding kept), no query.
    url: String,
    account: String,
    container: String,
    /// The decoded blob name (as signed in the canonical resource).
    blob: String,
    /// `spr` of a SAS for it ([`BlobEndpoint::sas_protocol`]).
    pub(crate) protocol: &'static str,
}

impl BlobUrl {
    /// Accept `raw` (Azure's `storagePath`) only when it is on `endpoint`'s exact origin
    /// (scheme, host and port) and names a container and a blob.
    pub fn parse(raw: &str, endpoint: &BlobEndpoint) -> Result<BlobUrl, BlobUrlError> {
        let (origin, path) = Origin::split_url(raw.trim()).map_err(BlobUrlError::NotAUrl)?;
        if origin != endpoint.origin {
            return Err(BlobUrlError::ForeignHost { found: origin.to_string(), expected: endpoint.origin.to_string() });
        }
        if path.contains('?') {
            return Err(BlobUrlError::Query);
        }
        let mut rest = path.strip_prefix('/').unwrap_or(&path);
        if endpoint.path_style {
            let (account, after) = rest.split_once('/').ok_or(BlobUrlError::Path("no account segment"))?;
            if account != endpoint.account {
                return Err(BlobUrlError::ForeignHost {
                    found: format!("{origin}/{account}"),
                    expected: endpoint.service_root(),
                });
            }
            rest = after;
        }
        let (container, blob_raw) = rest.split_once('/').ok_or(BlobUrlError::Path("no blob name"))?;
        // Container names: 3-63 lower-case letters, digits and single hyphens ($root/$logs are not ours).
        if !(3..=63).contains(&container.len())
            || !container.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || container.starts_with('-')
            || container.ends_with('-')
            || container.contains("--")
        {
            return Err(BlobUrlError::Path("invalid container name"));
        }
        let blob = percent_decode_str(blob_raw)
            .decode_utf8()
            .map_err(|_| BlobUrlError::Path("blob name is not UTF-8"))?
            .into_owned();
        if blob.is_empty() || blob.chars().count() > 1024 || blob.chars().any(char::is_control) {
            return Err(BlobUrlError::Path("invalid blob name"));
        }
        Ok(BlobUrl {
            url: format!("{}{}", origin.as_str(), path),
            account: endpoint.account.clone(),
            container: container.to_string(),
            blob,
            protocol: endpoint.sas_protocol(),
        })
    }

    /// The URL (no query).
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The container.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// The blob name, decoded.
    pub fn blob(&self) -> &str {
        &self.blob
    }

    /// `/blob/{account}/{container}/{blob}`, as the SAS signs it.
    pub(crate) fn canonical_resource(&self) -> String {
        format!("/blob/{}/{}/{}", self.account, self.container, self.blob)
    }
}
