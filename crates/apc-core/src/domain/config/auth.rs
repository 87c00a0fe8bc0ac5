//! Webhook keys: `webhook_keys`.

use super::{Reader, Secret};
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
        load(&mut r).ok_or(r.problems)
    }
}

/// Read the section; `None` when `webhook_keys` has a problem (reported on `r`).
pub(crate) fn load(r: &mut Reader) -> Option<WebhookAuth> {
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
}
