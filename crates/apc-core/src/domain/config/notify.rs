//! Notification settings: `notify_url`, `notify_host`, `notify_format`.
//!
//! Problems here never stop a capture: they turn notifications off, and say why on
//! `/healthz` and on the records that are advanced meanwhile.

use super::{Problem, Reader};
use crate::domain::origin::Origin;

/// Default of `notify_host`. `allowed_outbound_hosts` cannot hold an empty template nor a URL
/// with a path, so `spin.toml` allows `{{ notify_host }}` (the origin of `notify_url`), and this
/// reserved, unroutable name stands in while notifications are off.
pub const NOTIFY_HOST_UNSET: &str = "https://notify.invalid";

/// Format of notifications (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyFormat {
    /// The record as JSON, with an event id.
    Json,
    /// `{"text": …}` for a Slack incoming webhook.
    Slack,
    /// An Adaptive Card message for a Teams workflow webhook.
    Teams,
}

/// Where notifications go, checked against `notify_host`.
#[derive(Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    /// The URL, its origin in canonical form. It may hold a token: never shown or logged.
    pub url: String,
    /// Its format.
    pub format: NotifyFormat,
}

// The URL of a Slack or Teams webhook is a credential.
impl std::fmt::Debug for NotifyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyTarget").field("url", &"<redacted>").field("format", &self.format).finish()
    }
}

/// The notification settings: a target, nothing (off), or problems that hold notifications back.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    target: Option<NotifyTarget>,
    /// `notify_url` is set: notifications are wanted.
    wanted: bool,
    problems: Vec<Problem>,
}

impl NotifyConfig {
    /// Where to send, when notifications are on and every setting is right.
    pub fn target(&self) -> Option<&NotifyTarget> {
        self.target.as_ref()
    }

    /// The problems of the notification settings.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The variables whose problems hold back notifications that are wanted (`notify_url` set);
    /// `None` when nothing is held back.
    pub fn blocked(&self) -> Option<Vec<&'static str>> {
        (self.wanted && !self.problems.is_empty()).then(|| self.names())
    }

    /// A line for a record's `errors` while notification settings have problems (names only).
    pub fn problem_note(&self) -> Option<String> {
        (!self.problems.is_empty()).then(|| {
            format!(
                "notifications are off until these settings are fixed: {}; captures are not affected",
                self.names().join(", ")
            )
        })
    }

    /// Why a wanted notification was not sent, for the record's `notify_error`.
    pub fn skip_reason(&self) -> Option<String> {
        self.blocked().map(|names| format!("not sent: the notification settings have problems ({})", names.join(", ")))
    }

    fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for p in &self.problems {
            if !names.contains(&p.variable) {
                names.push(p.variable);
            }
        }
        names
    }
}

/// Read the section. Always yields settings: its problems (reported on `r`) only turn
/// notifications off.
pub(crate) fn load(r: &mut Reader) -> NotifyConfig {
    let before = r.problems.len();
    let host = r.origin("notify_host");
    let raw_url = r.raw("notify_url");
    let url = match &raw_url {
        None => None,
        Some(v) => match Origin::split_url(v) {
            Err(why) => {
                r.problem("notify_url", format!("is not a URL we can send to ({why})"));
                None
            }
            Ok((origin, path)) => match &host {
                Some(h) if *h == origin => Some(origin.join(&path)),
                Some(_) => {
                    r.problem(
                        "notify_host",
                        "must be the scheme://host[:port] of notify_url, so that spin.toml allows the destination",
                    );
                    None
                }
                // notify_host's own problem is reported already.
                None => None,
            },
        },
    };
    let format = match r.raw("notify_format").as_deref() {
        Some("json") | None => Some(NotifyFormat::Json),
        Some("slack") => Some(NotifyFormat::Slack),
        Some("teams") => Some(NotifyFormat::Teams),
        Some(_) => {
            r.problem("notify_format", "must be json, slack or teams");
            None
        }
    };
    let problems = r.problems[before..].to_vec();
    let target = match (url, format) {
        (Some(url), Some(format)) if problems.is_empty() => Some(NotifyTarget { url, format }),
        _ => None,
    };
    NotifyConfig { target, wanted: raw_url.is_some(), problems }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Vars, minimal};
    use super::super::{Config, Effect};
    use super::*;

    fn notify(pairs: &[(&'static str, &'static str)]) -> NotifyConfig {
        let mut v = minimal();
        v.extend(pairs.iter().copied());
        // Notification problems alone never stop the configuration from loading.
        Config::load(&Vars(v)).expect("loads").notify
    }

    fn names(n: &NotifyConfig) -> Vec<&'static str> {
        n.problems().iter().map(|p| p.variable).collect()
    }

    #[test]
    fn notify_url_must_match_notify_host() {
        let n = notify(&[("notify_url", "https://hooks.example.com/services/T0/B0/x")]);
        assert_eq!(names(&n), ["notify_host"]);
        assert!(n.target().is_none());
        assert_eq!(n.blocked(), Some(vec!["notify_host"]));
        let n = notify(&[
            ("notify_url", "https://hooks.example.com/services/T0/B0/x"),
            ("notify_host", "https://hooks.example.com"),
        ]);
        assert!(n.problems().is_empty());
        assert_eq!(n.target().unwrap().url, "https://hooks.example.com/services/T0/B0/x");
        assert_eq!(n.blocked(), None);
    }

    #[test]
    fn spellings_of_the_same_origin_match() {
        let n = notify(&[
            ("notify_url", "https://Hooks.Example.COM:443?token=abc"),
            ("notify_host", "HTTPS://hooks.example.com:443/"),
        ]);
        assert!(n.problems().is_empty(), "{:?}", n.problems());
        assert_eq!(n.target().unwrap().url, "https://hooks.example.com/?token=abc");
        // A different port is a different origin.
        let n =
            notify(&[("notify_url", "https://hooks.example.com:8443/x"), ("notify_host", "https://hooks.example.com")]);
        assert_eq!(names(&n), ["notify_host"]);
    }

    #[test]
    fn bad_urls_and_hosts_are_named_without_their_values() {
        let cases: &[(&str, &str, &str, &str)] = &[
            ("notify_host", "https://hooks.example.com?token=t0ps3cret", "https://hooks.example.com/x", "no query"),
            ("notify_host", "https://hooks.example.com/t0ps3cret", "https://hooks.example.com/x", "no path"),
            ("notify_url", "https://u:t0ps3cret@hooks.example.com/x", "", "credentials"),
            ("notify_url", "https://hooks.example.com/x#t0ps3cret", "", "fragment"),
            ("notify_url", "mailto:t0ps3cret@example.com", "", "https://"),
            ("notify_url", "https://hööks.example.com/t0ps3cret", "", "punycode"),
            ("notify_url", "https://hooks.example.com/t0ps3cret x", "", "spaces"),
        ];
        for (name, bad, other, expect) in cases {
            let pairs: Vec<(&'static str, &'static str)> = if *name == "notify_host" {
                vec![("notify_host", bad), ("notify_url", other)]
            } else {
                vec![("notify_url", bad), ("notify_host", "https://hooks.example.com")]
            };
            let n = notify(&pairs);
            assert_eq!(names(&n), [*name], "{bad}");
            let p = &n.problems()[0];
            assert_eq!(p.effect, Effect::NotificationsOnly);
            assert!(p.message.contains(expect), "{bad}: {}", p.message);
            assert!(!p.message.contains("t0ps3cret"), "{bad}: {}", p.message);
            assert!(n.target().is_none());
            assert!(n.skip_reason().unwrap().contains(name));
            assert!(!n.problem_note().unwrap().contains("t0ps3cret"));
        }
    }

    #[test]
    fn a_bad_format_without_a_url_is_reported_but_blocks_nothing() {
        let n = notify(&[("notify_format", "pager")]);
        assert_eq!(names(&n), ["notify_format"]);
        assert_eq!(n.blocked(), None);
        assert!(n.skip_reason().is_none());
        assert!(n.problem_note().unwrap().contains("notify_format"));
    }

    #[test]
    fn target_debug_hides_the_url() {
        let n =
            notify(&[("notify_url", "https://hooks.example.com/s3cr3t"), ("notify_host", "https://hooks.example.com")]);
        assert!(!format!("{n:?}").contains("s3cr3t"));
    }
}
