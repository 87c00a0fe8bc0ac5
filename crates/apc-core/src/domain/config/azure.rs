//! Azure credentials and endpoints: `azure_tenant_id`, `azure_client_id`,
//! `azure_client_secret`, `azure_authority_host`, `azure_arm_endpoint`.

use super::{Reader, Secret};
use crate::domain::origin::Origin;

/// Azure connection settings.
#[derive(Debug, Clone)]
pub struct AzureConfig {
    /// Entra tenant id.
    pub tenant_id: String,
    /// Service principal (application) id.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: Secret,
    /// Entra ID.
    pub authority_host: Origin,
    /// ARM; the token audience follows it.
    pub arm_endpoint: Origin,
}

/// Read the section; `None` when any of its variables has a problem (reported on `r`).
pub(crate) fn load(r: &mut Reader) -> Option<AzureConfig> {
    let tenant_id = r.required("azure_tenant_id");
    let tenant_id = match tenant_id {
        Some(t) if !t.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.') => {
            r.problem("azure_tenant_id", "must be a tenant GUID or domain name");
            None
        }
        other => other,
    };
    let client_id = r.required("azure_client_id");
    let client_secret = r.required("azure_client_secret").map(Secret::new);
    let authority_host = r.origin("azure_authority_host");
    let arm_endpoint = r.origin("azure_arm_endpoint");
    Some(AzureConfig {
        tenant_id: tenant_id?,
        client_id: client_id?,
        client_secret: client_secret?,
        authority_host: authority_host?,
        arm_endpoint: arm_endpoint?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Vars, minimal};
    use super::*;

    fn load_with(pairs: &[(&'static str, &'static str)]) -> (Option<AzureConfig>, Vec<(&'static str, String)>) {
        let mut v = minimal();
        v.extend(pairs.iter().copied());
        let vars = Vars(v);
        let mut r = Reader::new(&vars);
        let c = load(&mut r);
        (c, r.problems.into_iter().map(|p| (p.variable, p.message)).collect())
    }

    #[test]
    fn endpoints_are_origins_in_canonical_form() {
        let (c, problems) = load_with(&[
            ("azure_authority_host", "HTTPS://Login.ChinaCloudAPI.cn:443/"),
            ("azure_arm_endpoint", "http://127.0.0.1:8089"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        let c = c.unwrap();
        assert_eq!(c.authority_host.as_str(), "https://login.chinacloudapi.cn");
        assert_eq!(c.arm_endpoint.as_str(), "http://127.0.0.1:8089");
    }

    #[test]
    fn each_bad_endpoint_is_named_without_its_value() {
        let cases: &[(&str, &str)] = &[
            ("https://user:pa55word@login.microsoftonline.com", "credentials"),
            ("https://management.azure.com/pa55word", "no path"),
            ("https://management.azure.com?pa55word", "no query"),
            ("https://management.azure.com#pa55word", "fragment"),
            ("ftp://pa55word", "https://"),
            ("https://pa55wörd.example", "punycode"),
        ];
        for (value, expect) in cases {
            for name in ["azure_authority_host", "azure_arm_endpoint"] {
                let (c, problems) = load_with(&[(name, value)]);
                assert!(c.is_none());
                assert_eq!(problems.len(), 1, "{name}={value}: {problems:?}");
                assert_eq!(problems[0].0, name);
                assert!(problems[0].1.contains(expect), "{value}: {}", problems[0].1);
                assert!(!problems[0].1.contains("pa55"), "{value}: {}", problems[0].1);
            }
        }
    }

    #[test]
    fn tenant_must_look_like_a_tenant() {
        let (c, problems) = load_with(&[("azure_tenant_id", "../evil")]);
        assert!(c.is_none());
        assert_eq!(problems[0].0, "azure_tenant_id");
        let (c, problems) = load_with(&[("azure_tenant_id", "contoso.onmicrosoft.com")]);
        assert!(c.is_some() && problems.is_empty());
    }
}
