//! Entra ID's client-credentials token endpoint, with its error bodies
//! (shapes from `testdata/azure-samples/token/`).

use serde_json::json;
use time::Duration;

use crate::Inner;
use crate::http::{Request, Response};

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) fn token(inner: &Inner, tenant: &str, req: &Request) -> Response {
    let form: Vec<(String, String)> =
        form_urlencoded::parse(&req.body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let config = inner.lock().settings.config.clone();

    if !tenant.eq_ignore_ascii_case(&config.tenant_id) {
        return error(
            inner,
            400,
            "invalid_tenant",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        );
    }
    match field("grant_type") {
        None | Some("") => {
            return error(
                inner,
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            );
        }
        Some("client_credentials") => {}
        Some(other) => {
            return error(
                inner,
                400,
                "unsupported_grant_type",
                70003,
                &format!("The app requested an unsupported grant type '{other}'."),
            );
        }
    }
    let client_id = field("client_id").unwrap_or("");
    if client_id.is_empty() {
        return error(
            inner,
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    }
    if !client_id.eq_ignore_ascii_case(&config.client_id) {
        return error(
            inner,
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        );
    }
    // Entra compares the secret exactly; a constant-time compare is not needed in an emulator.
    if field("client_secret") != Some(config.client_secret.as_str()) {
        return error(
            inner,
            401,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                config.client_id
            ),
        );
    }
    let scope = field("scope").unwrap_or("");
    let storage = is_storage_scope(scope);
    if !storage && !scope_ok(scope, inner.base()) {
        return error(
            inner,
            400,
            "invalid_scope",
            70011,
            &format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        );
    }

    let mut st = inner.lock();
    let token = format!("emu.{}", st.random_hex(4));
    let lifetime = config.token_lifetime_secs;
    let expires = st.now().saturating_add(Duration::seconds(i64::try_from(lifetime).unwrap_or(i64::MAX)));
    if storage {
        st.storage_tokens.insert(token.clone(), expires);
    } else {
        st.tokens.insert(token.clone(), expires);
    }
    Response::json(
        200,
        &json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }),
    )
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`: the discovery document MSAL
/// (azure-identity) reads before asking for a token. URLs use the public base when one is set.
pub(crate) fn openid_configuration(inner: &Inner, tenant: &str) -> Response {
    let (configured, public) = {
        let st = inner.lock();
        (st.settings.config.tenant_id.clone(), st.settings.public_base.clone())
    };
    if !tenant.eq_ignore_ascii_case(&configured) {
        return error(inner, 400, "invalid_tenant", 90002, &format!("Tenant '{tenant}' not found."));
    }
    let base = public.unwrap_or_else(|| inner.base().to_string());
    Response::json(
        200,
        &json!({
            "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{base}/{tenant}/v2.0"),
            "request_uri_parameter_supported": false,
            "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/devicecode"),
            "end_session_endpoint": format!("{base}/{tenant}/oauth2/v2.0/logout"),
            "tenant_region_scope": null,
            "cloud_instance_name": "microsoftonline.com"
        }),
    )
}

/// `GET /{tenant}/discovery/v2.0/keys`: the tenant's signing keys.
pub(crate) fn jwks(inner: &Inner, tenant: &str) -> Response {
    let configured = inner.lock().settings.config.tenant_id.clone();
    if !tenant.eq_ignore_ascii_case(&configured) {
        return error(inner, 400, "invalid_tenant", 90002, &format!("Tenant '{tenant}' not found."));
    }
    Response::json(200, &inner.signing().jwks())
}

/// The Azure Storage audience (the same in every cloud).
fn is_storage_scope(scope: &str) -> bool {
    scope
        .strip_suffix("/.default")
        .is_some_and(|r| r.trim_end_matches('/').eq_ignore_ascii_case("https://storage.azure.com"))
}

/// The audiences the emulated ARM accepts: its own base URL and public Azure's.
fn scope_ok(scope: &str, base: &str) -> bool {
    let Some(resource) = scope.strip_suffix("/.default") else {
        return false;
    };
    let resource = resource.trim_end_matches('/');
    resource.eq_ignore_ascii_case(base)
        || resource.eq_ignore_ascii_case("https://management.azure.com")
        || resource.eq_ignore_ascii_case("https://management.core.windows.net")
}

/// An Entra error body: `error`, `error_description` (with trace/correlation/timestamp lines),
/// `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`.
fn error(inner: &Inner, status: u16, err: &str, code: u32, text: &str) -> Response {
    let (trace, correlation, stamp) = {
        let mut st = inner.lock();
        let stamp = st
            .now()
            .format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z"))
            .unwrap_or_default();
        (st.guid(), st.guid(), stamp)
    };
    Response::json(
        status,
        &json!({
            "error": err,
            "error_description": format!(
                "AADSTS{code}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {stamp}"
            ),
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("{}/error?code={code}", inner.base()),
        }),
    )
}

/// An injected fault on the token endpoint.
pub(crate) fn fault(inner: &Inner, status: u16, retry_after: u32) -> Response {
    let (err, code, text) = match status {
        429 => ("temporarily_unavailable", 50196, "The server is throttling requests."),
        s if s >= 500 => ("temporarily_unavailable", 90033, "A transient error has occurred. Please try again."),
        _ => ("invalid_request", 90000, "The emulator injected this error."),
    };
    let resp = error(inner, status, err, code, text);
    if matches!(status, 429 | 503) { resp.with_header("Retry-After", retry_after.to_string()) } else { resp }
}
