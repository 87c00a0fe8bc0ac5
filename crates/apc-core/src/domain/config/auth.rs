//! Webhook authentication: `webhook_keys`, the mode of each route (`alerts_auth`,
//! `routes_auth`) and, for Entra ID bearer tokens (issue 12), `entra_audience`,
//! `entra_tenant_id` and `entra_required_role`.

use super::{Reader, Secret};
use crate::domain::origin::Origin;
use crate::ports::Variables;

/// The literal that disables webhook authentication for a local demo.
pub const INSECURE_NO_AUTH: &str = "insecure-no-auth";

/// Shortest key accepted.
pub const MIN_KEY_LEN: usize = 16;

/// How the webhook authenticates callers.
#[derive(Debug, Clone)]
pub enum WebhookAuth {
    /// One or more keys (rotation); compared in constant time.
    Keys(Vec<Secret>),
    /// `webhook_keys = "insecure-no-auth"`: a local demo with no authentication.
    InsecureNoAuth,
}

impl WebhookAuth {
    /// Only the webhook keys, for authenticating a caller before anything else about the
    /// configuration is revealed. `Err` holds the problems of `webhook_keys` alone.
    pub fn load(vars: &dyn Variables) -> Result<WebhookAuth, Vec<super::Problem>> {
        let mut r = Reader::new(vars);
        load_keys(&mut r).ok_or(r.problems)
    }
}

/// Which credentials a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// `keys`: a webhook key (`x-api-key` or `code`).
    Keys,
    /// `entra`: an Entra ID bearer token.
    Entra,
    /// `keys+entra`: either (a migration from keys to tokens).
    KeysOrEntra,
}

impl AuthMode {
    fn parse(s: &str) -> Option<AuthMode> {
        match s {
            "keys" => Some(AuthMode::Keys),
            "entra" => Some(AuthMode::Entra),
            "keys+entra" | "entra+keys" => Some(AuthMode::KeysOrEntra),
            _ => None,
        }
    }

    /// Webhook keys are accepted.
    pub fn keys(self) -> bool {
        matches!(self, AuthMode::Keys | AuthMode::KeysOrEntra)
    }

    /// Entra ID bearer tokens are accepted.
    pub fn entra(self) -> bool {
        matches!(self, AuthMode::Entra | AuthMode::KeysOrEntra)
    }
}

/// Who may call which route.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    /// The webhook keys (always configured: a scheduler calling `/poll` has no Entra token).
    pub keys: WebhookAuth,
    /// `POST /alerts` (`alerts_auth`).
    pub alerts: AuthMode,
    /// `POST /poll` and the `/captures` routes (`routes_auth`).
    pub routes: AuthMode,
    /// Set when a mode accepts Entra ID tokens.
    pub entra: Option<EntraConfig>,
}

impl AuthPolicy {
    /// The authentication variables alone (plus the tenant and authority host they default to),
    /// for authenticating a caller before anything else about the configuration is revealed.
    pub fn load(vars: &dyn Variables) -> Result<AuthPolicy, Vec<super::Problem>> {
        let mut r = Reader::new(vars);
        match load(&mut r) {
            Some(p) => Ok(p),
            None => Err(r.problems),
        }
    }
}

/// Read the section; `None` when one of its variables has a problem (reported on `r`).
pub(crate) fn load(r: &mut Reader) -> Option<AuthPolicy> {
    let keys = load_keys(r);
    let mut mode = |name: &'static str| {
        let m = AuthMode::parse(&r.raw(name).unwrap_or_default());
        if m.is_none() {
            r.problem(name, "must be keys, entra or keys+entra");
        }
        m
    };
    let (alerts, routes) = (mode("alerts_auth"), mode("routes_auth"));
    let entra = if alerts.is_some_and(AuthMode::entra) || routes.is_some_and(AuthMode::entra) {
        Some(load_entra(r)?)
    } else {
        None
    };
    Some(AuthPolicy { keys: keys?, alerts: alerts?, routes: routes?, entra })
}

fn load_entra(r: &mut Reader) -> Option<EntraConfig> {
    let audiences: Vec<String> = r
        .raw("entra_audience")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    if audiences.is_empty() {
        r.problem(
            "entra_audience",
            "is required when a route accepts Entra ID tokens: the application id URI or client id of the app registration",
        );
    }
    let tenant = match r.raw("entra_tenant_id") {
        Some(t) if !t.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.') => {
            r.problem("entra_tenant_id", "must be a tenant GUID or domain name");
            None
        }
        Some(t) => Some(t),
        // The component's own tenant (its problems are `azure_tenant_id`'s).
        None => r.required("azure_tenant_id"),
    };
    let role = r.raw("entra_required_role");
    if role.is_none() {
        r.problem("entra_required_role", "must name the app role Azure Monitor's action groups hold");
    }
    let authority = r.origin("azure_authority_host");
    if audiences.is_empty() {
        return None;
    }
    Some(EntraConfig { tenant_id: tenant?, authority: authority?, audiences, role: role? })
}

/// `webhook_keys`; `None` when it has a problem (reported on `r`).
fn load_keys(r: &mut Reader) -> Option<WebhookAuth> {
    match r.raw("webhook_keys") {
        None => {
            r.problem(
                "webhook_keys",
                "is required: set one or more comma-separated keys (or insecure-no-auth for a local demo)",
            );
            None
        }
        Some(v) if v == INSECURE_NO_AUTH => Some(WebhookAuth::InsecureNoAuth),
        Some(v) => {
            let keys: Vec<Secret> = v.split(',').map(str::trim).filter(|k| !k.is_empty()).map(Secret::new).collect();
            let before = r.problems.len();
            if keys.is_empty() {
                r.problem("webhook_keys", "holds no key");
            }
            if keys.iter().any(|k| k.expose().len() < MIN_KEY_LEN) {
                r.problem("webhook_keys", "every key must be at least 16 characters");
            }
            // The switch's name is public: as a key in a list it would open the routes to anyone.
            if keys.iter().any(|k| k.expose() == INSECURE_NO_AUTH) {
                r.problem("webhook_keys", "insecure-no-auth must stand alone; it is not a key");
            }
            (r.problems.len() == before).then_some(WebhookAuth::Keys(keys))
        }
    }
}

/// The application id of Azure Monitor's action groups ("AzNS AAD Webhook"), the caller of every
/// secure webhook (Microsoft's action-group documentation).
pub const ACTION_GROUP_APP_ID: &str = "461e8683-5575-4561-ac7f-899cc907d62a";
/// The app role Microsoft's set-up script creates for action groups.
pub const DEFAULT_ROLE: &str = "ActionGroupsSecureWebhook";

/// What the verifier needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraConfig {
    /// The tenant whose tokens are accepted.
    pub tenant_id: String,
    /// Entra ID's authority host (`azure_authority_host`).
    pub authority: Origin,
    /// Accepted `aud` values: the application id URI and/or the client id.
    pub audiences: Vec<String>,
    /// The app role the caller must hold.
    pub role: String,
}

impl EntraConfig {
    /// The `iss` values accepted: v2 `{authority}/{tenant}/v2.0` and v1 `https://{sts}/{tenant}/`
    /// where the v1 host follows the cloud: `sts.chinacloudapi.cn` for China (21Vianet),
    /// `sts.windows.net` for the global and US Government clouds; any other authority (an
    /// emulator, a private cloud) issues v1 tokens under its own origin.
    pub fn issuers(&self) -> [String; 2] {
        let host = self.authority.host();
        let v1 = match host {
            "login.chinacloudapi.cn" | "login.partner.microsoftonline.cn" => "https://sts.chinacloudapi.cn".to_string(),
            "login.microsoftonline.com" | "login.microsoftonline.us" | "login.windows.net" => {
                "https://sts.windows.net".to_string()
            }
            _ => self.authority.as_str().to_string(),
        };
        [format!("{}/{}/v2.0", self.authority.as_str(), self.tenant_id), format!("{v1}/{}/", self.tenant_id)]
    }

    /// The tenant's OpenID metadata document.
    pub fn metadata_url(&self) -> String {
        self.authority.join(&format!("/{}/v2.0/.well-known/openid-configuration", self.tenant_id))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Vars, minimal};
    use super::*;

    #[test]
    fn insecure_no_auth_only_literally() {
        let mut v = minimal();
        v.insert("webhook_keys", "insecure-no-auth");
        assert!(matches!(WebhookAuth::load(&Vars(v.clone())), Ok(WebhookAuth::InsecureNoAuth)));
        // Any other spelling is an ordinary key, so authentication stays on.
        v.insert("webhook_keys", "Insecure-No-Auth");
        assert!(matches!(WebhookAuth::load(&Vars(v)), Ok(WebhookAuth::Keys(k)) if k.len() == 1));
    }

    #[test]
    fn unusable_keys_are_named_without_values() {
        for value in ["", " , ", "short-key", "insecure-no-auth,0123456789abcdef"] {
            let mut v = minimal();
            v.insert("webhook_keys", value);
            let problems = WebhookAuth::load(&Vars(v)).unwrap_err();
            assert!(!problems.is_empty() && problems.iter().all(|p| p.variable == "webhook_keys"), "{value:?}");
            assert!(problems.iter().all(|p| !p.message.contains("short-key") && !p.message.contains("0123")));
        }
    }

    #[test]
    fn keys_load_even_when_the_rest_is_broken() {
        let mut v = minimal();
        v.remove("azure_client_secret");
        v.insert("capture_time_limit_seconds", "0");
        assert!(matches!(WebhookAuth::load(&Vars(v)), Ok(WebhookAuth::Keys(k)) if k.len() == 2));
    }

    #[test]
    fn modes_default_to_keys_and_need_no_entra_settings() {
        let p = AuthPolicy::load(&Vars(minimal())).unwrap();
        assert_eq!((p.alerts, p.routes), (AuthMode::Keys, AuthMode::Keys));
        assert!(p.entra.is_none());
        let mut v = minimal();
        v.insert("alerts_auth", "Entra");
        let problems = AuthPolicy::load(&Vars(v)).unwrap_err();
        assert_eq!(problems.iter().map(|p| p.variable).collect::<Vec<_>>(), ["alerts_auth"]);
    }

    #[test]
    fn entra_needs_an_audience_and_defaults_tenant_and_role() {
        let mut v = minimal();
        v.insert("alerts_auth", "keys+entra");
        let problems = AuthPolicy::load(&Vars(v.clone())).unwrap_err();
        assert_eq!(problems.iter().map(|p| p.variable).collect::<Vec<_>>(), ["entra_audience"]);
        v.insert("entra_audience", " api://apc , 99999999-2222-3333-4444-555555555555 ");
        let p = AuthPolicy::load(&Vars(v.clone())).unwrap();
        assert_eq!(p.alerts, AuthMode::KeysOrEntra);
        assert_eq!(p.routes, AuthMode::Keys);
        let e = p.entra.unwrap();
        assert_eq!(e.audiences, ["api://apc", "99999999-2222-3333-4444-555555555555"]);
        assert_eq!(e.tenant_id, "72f988bf-86f1-41af-91ab-2d7cd011db47");
        assert_eq!(e.role, DEFAULT_ROLE);
        assert_eq!(e.authority.as_str(), "https://login.microsoftonline.com");
        v.insert("entra_tenant_id", "contoso.onmicrosoft.com");
        v.insert("entra_required_role", "Alerts.Send");
        let e = AuthPolicy::load(&Vars(v.clone())).unwrap().entra.unwrap();
        assert_eq!((e.tenant_id.as_str(), e.role.as_str()), ("contoso.onmicrosoft.com", "Alerts.Send"));
        v.insert("entra_tenant_id", "../x");
        let problems = AuthPolicy::load(&Vars(v)).unwrap_err();
        assert_eq!(problems.iter().map(|p| p.variable).collect::<Vec<_>>(), ["entra_tenant_id"]);
    }

    #[test]
    fn a_shared_variable_is_named_once() {
        let mut v = minimal();
        v.insert("routes_auth", "entra");
        v.insert("entra_audience", "api://apc");
        v.insert("azure_authority_host", "ftp://x");
        let problems = super::super::problems(&Vars(v));
        let hosts = problems.iter().filter(|p| p.variable == "azure_authority_host").count();
        assert_eq!(hosts, 1, "{problems:?}");
    }
}
