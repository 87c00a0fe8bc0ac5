//! [`Origin`]: an http(s) `scheme://host[:port]`, parsed once on construction.
//!
//! Configured hosts (`azure_authority_host`, `azure_arm_endpoint`, `notify_host`) are origins,
//! and so is the front of every URL we send or follow. Holding a parsed `Origin` instead of a
//! string means two spellings of one place compare equal (`HTTPS://Host:443/` is
//! `https://host`), and that a URL with credentials, a path, a query or a fragment can never
//! pass for a host. Errors say what is wrong and never repeat the text, which may hold a secret
//! (a webhook URL's token, a password).

use std::fmt;
use std::ops::Deref;

/// The two schemes we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http`: only for local emulators.
    Http,
    /// `https`.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Why a text is not an origin (or not a URL we send). Never holds the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// Not `http://` or `https://`.
    #[error("must start with https:// (or http:// for a local emulator)")]
    Scheme,
    /// `user:password@host`.
    #[error("must not hold credentials (user:password@ before the host)")]
    Credentials,
    /// A path where only an origin is allowed.
    #[error("must be scheme://host[:port] with no path")]
    Path,
    /// A query where only an origin is allowed.
    #[error("must be scheme://host[:port] with no query (?…)")]
    Query,
    /// A `#fragment`: never sent to a server, so it cannot mean what was intended.
    #[error("must not have a fragment (#…)")]
    Fragment,
    /// Non-ASCII host: Spin's `allowed_outbound_hosts` and HTTP want the ASCII form.
    #[error("host must be ASCII: write an international domain name in its xn-- (punycode) form")]
    NonAsciiHost,
    /// Empty or malformed host.
    #[error("has no valid host name (letters, digits, '-' and '.', or an [IPv6] address)")]
    Host,
    /// Port not a number in 1..=65535.
    #[error("port must be a number from 1 to 65535")]
    Port,
    /// Spaces, control characters, backslashes or non-ASCII characters after the host.
    #[error("must not contain spaces, control characters, backslashes or non-ASCII characters")]
    Character,
}

/// An http(s) origin: scheme, lower-case ASCII host and port, with its canonical text
/// (`scheme://host`, plus `:port` only when it is not the scheme's default).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: Scheme,
    host: String,
    port: u16,
    text: String,
}

impl Origin {
    /// Parse `scheme://host[:port]`, with at most a trailing `/`.
    pub fn parse(s: &str) -> Result<Origin, OriginError> {
        let (origin, rest) = Self::parse_front(s)?;
        match rest {
            "" | "/" => Ok(origin),
            _ if rest.contains('#') => Err(OriginError::Fragment),
            _ if rest.strip_prefix('/').unwrap_or(rest).starts_with('?') => Err(OriginError::Query),
            _ => Err(OriginError::Path),
        }
    }

    /// Split an absolute http(s) URL into its origin and its path with query (always starting
    /// with `/`: `https://h?x=1` gives `/?x=1`). Refuses credentials, fragments and characters
    /// that have no place in a request line.
    pub fn split_url(url: &str) -> Result<(Origin, String), OriginError> {
        let (origin, rest) = Self::parse_front(url)?;
        if rest.contains('#') {
            return Err(OriginError::Fragment);
        }
        if rest.bytes().any(|c| !c.is_ascii_graphic() || c == b'\\') {
            return Err(OriginError::Character);
        }
        let path = if rest.starts_with('/') { rest.to_string() } else { format!("/{rest}") };
        Ok((origin, path))
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The lower-case host (an IPv6 address keeps its brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host[:port]` as an HTTP request's authority (the port only when not the default).
    pub fn authority(&self) -> &str {
        &self.text[self.scheme.as_str().len() + 3..]
    }

    /// The canonical text, `scheme://host[:port]`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// This origin followed by `path` (which should start with `/`).
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.text)
    }

    /// Scheme and authority, and the rest of the text after them (untouched).
    fn parse_front(s: &str) -> Result<(Origin, &str), OriginError> {
        let (scheme_text, rest) = s.split_once("://").ok_or(OriginError::Scheme)?;
        let scheme = if scheme_text.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else if scheme_text.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else {
            return Err(OriginError::Scheme);
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        if authority.contains('@') {
            return Err(OriginError::Credentials);
        }
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            None => scheme.default_port(),
            Some(p) => parse_port(p)?,
        };
        let text = if port == scheme.default_port() {
            format!("{}://{host}", scheme.as_str())
        } else {
            format!("{}://{host}:{port}", scheme.as_str())
        };
        Ok((Origin { scheme, host, port, text }, rest))
    }
}

/// The lower-cased, checked host, and the port text if any.
fn split_host_port(authority: &str) -> Result<(String, Option<&str>), OriginError> {
    if let Some(inner) = authority.strip_prefix('[') {
        let (address, after) = inner.split_once(']').ok_or(OriginError::Host)?;
        let ok = address.contains(':') && address.bytes().all(|c| c.is_ascii_hexdigit() || matches!(c, b':' | b'.'));
        if !ok {
            return Err(OriginError::Host);
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(OriginError::Host)?),
        };
        return Ok((format!("[{}]", address.to_ascii_lowercase()), port));
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if !host.is_ascii() {
        return Err(OriginError::NonAsciiHost);
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(OriginError::Host);
    }
    Ok((host.to_ascii_lowercase(), port))
}

fn parse_port(p: &str) -> Result<u16, OriginError> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()) {
        return Err(OriginError::Port);
    }
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(OriginError::Port),
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Origin {
    type Err = OriginError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Origin::parse(s)
    }
}

impl AsRef<str> for Origin {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// An origin reads as its canonical text, so code that builds URLs from it as a string
/// (`arm_url`, the token URL) keeps working unchanged.
impl Deref for Origin {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn err(s: &str) -> OriginError {
        Origin::parse(s).unwrap_err()
    }

    #[test]
    fn canonical_forms_are_equal() {
        let a = Origin::parse("https://management.azure.com").unwrap();
        for same in [
            "https://management.azure.com/",
            "https://management.azure.com:443",
            "https://MANAGEMENT.Azure.COM:443/",
            "HTTPS://management.azure.com",
        ] {
            assert_eq!(Origin::parse(same).unwrap(), a, "{same}");
            assert_eq!(Origin::parse(same).unwrap().as_str(), "https://management.azure.com", "{same}");
        }
        assert_ne!(Origin::parse("http://management.azure.com").unwrap(), a);
        assert_ne!(Origin::parse("https://management.azure.com:8443").unwrap(), a);
        let local = Origin::parse("http://127.0.0.1:8089").unwrap();
        assert_eq!((local.host(), local.port(), local.authority()), ("127.0.0.1", 8089, "127.0.0.1:8089"));
        assert_eq!(Origin::parse("http://h:80").unwrap().as_str(), "http://h");
        assert_eq!(Origin::parse("http://h:443").unwrap().as_str(), "http://h:443");
        let v6 = Origin::parse("http://[::1]:8089").unwrap();
        assert_eq!((v6.host(), v6.authority()), ("[::1]", "[::1]:8089"));
    }

    #[test]
    fn refuses_what_is_not_an_origin_by_kind() {
        assert_eq!(err("ftp://host"), OriginError::Scheme);
        assert_eq!(err("host.example.com"), OriginError::Scheme);
        assert_eq!(err("javascript://host"), OriginError::Scheme);
        assert_eq!(err("https://user:pw@host"), OriginError::Credentials);
        assert_eq!(err("https://host/path"), OriginError::Path);
        assert_eq!(err("https://hooks.example.com?token=abc"), OriginError::Query);
        assert_eq!(err("https://hooks.example.com/?token=abc"), OriginError::Query);
        assert_eq!(err("https://host/#frag"), OriginError::Fragment);
        assert_eq!(err("https://host#frag"), OriginError::Fragment);
        assert_eq!(err("https://bücher.example"), OriginError::NonAsciiHost);
        assert_eq!(err("https://"), OriginError::Host);
        assert_eq!(err("https://a..b"), OriginError::Host);
        assert_eq!(err("https://host."), OriginError::Host);
        assert_eq!(err("https://-host"), OriginError::Host);
        assert_eq!(err("https://ho st"), OriginError::Host);
        assert_eq!(err("https://host:"), OriginError::Port);
        assert_eq!(err("https://host:0"), OriginError::Port);
        assert_eq!(err("https://host:65536"), OriginError::Port);
        assert_eq!(err("https://host:+1"), OriginError::Port);
        assert_eq!(err("https://[zz]"), OriginError::Host);
        // Punycode is the accepted spelling of an international name.
        assert_eq!(Origin::parse("https://xn--bcher-kva.example").unwrap().host(), "xn--bcher-kva.example");
    }

    #[test]
    fn split_url_keeps_path_and_query_and_refuses_tricks() {
        let (o, p) = Origin::split_url("https://hooks.example.com?token=abc").unwrap();
        assert_eq!((o.as_str(), p.as_str()), ("https://hooks.example.com", "/?token=abc"));
        let (o, p) = Origin::split_url("https://Management.azure.com:443/subscriptions/x?a=1&b=2").unwrap();
        assert_eq!((o.as_str(), p.as_str()), ("https://management.azure.com", "/subscriptions/x?a=1&b=2"));
        assert_eq!(Origin::split_url("https://h").unwrap().1, "/");
        // The host is what comes before the first '/', '?' or '#', so nothing can hide behind '@'.
        assert_eq!(
            Origin::split_url("https://management.azure.com@evil.example/x").unwrap_err(),
            OriginError::Credentials
        );
        let (o, _) = Origin::split_url("https://evil.example/@management.azure.com").unwrap();
        assert_eq!(o.host(), "evil.example");
        let (o, _) = Origin::split_url("https://management.azure.com.evil.example/x").unwrap();
        assert_eq!(o.host(), "management.azure.com.evil.example");
        assert_eq!(Origin::split_url("https://h/a#b").unwrap_err(), OriginError::Fragment);
        assert_eq!(Origin::split_url("https://h/a b").unwrap_err(), OriginError::Character);
        assert_eq!(Origin::split_url("https://h/a\\b").unwrap_err(), OriginError::Character);
        assert_eq!(Origin::split_url("https://h/a\r\nb").unwrap_err(), OriginError::Character);
        assert_eq!(Origin::split_url("https://h/é").unwrap_err(), OriginError::Character);
    }

    #[test]
    fn errors_never_repeat_the_text() {
        for s in [
            "https://user:hunter2-secret@host",
            "https://hooks.example.com?token=hunter2-secret",
            "https://host/hunter2-secret",
            "https://host#hunter2-secret",
            "hunter2-secret://host",
            "https://hunter2-secret:99999",
        ] {
            let e = Origin::parse(s).unwrap_err();
            assert!(!e.to_string().contains("hunter2"), "{s}: {e}");
            assert!(!format!("{e:?}").contains("hunter2"), "{s}: {e:?}");
        }
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?"
    }

    fn host() -> impl Strategy<Value = String> {
        prop::collection::vec(label(), 1..4).prop_map(|l| l.join("."))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any spelling of an origin (case, default port written out, trailing slash) parses to
        /// the same value, whose text parses back to itself.
        #[test]
        fn spellings_agree(https in any::<bool>(), host in host(), port in prop::option::of(1u16..), upper in any::<bool>(), slash in any::<bool>()) {
            let scheme = if https { "https" } else { "http" };
            let default = if https { 443 } else { 80 };
            let mut text = format!("{scheme}://{host}");
            if let Some(p) = port { text.push_str(&format!(":{p}")); }
            if slash { text.push('/'); }
            let spelled = if upper { text.to_ascii_uppercase() } else { text.clone() };
            let o = Origin::parse(&spelled).unwrap();
            prop_assert_eq!(o.host(), host.as_str());
            prop_assert_eq!(o.port(), port.unwrap_or(default));
            prop_assert_eq!(Origin::parse(o.as_str()).unwrap(), o.clone());
            prop_assert_eq!(o.as_str().ends_with(&format!(":{default}")), false);
            let explicit = Origin::parse(&format!("{scheme}://{host}:{}", port.unwrap_or(default))).unwrap();
            prop_assert_eq!(explicit, o.clone());
            let (same, path) = Origin::split_url(&format!("{spelled}/a/b?c=d")).unwrap();
            prop_assert_eq!(same, o);
            prop_assert!(path.ends_with("/a/b?c=d"));
        }

        /// Arbitrary text never panics; what parses is exactly an origin.
        #[test]
        fn arbitrary_text(s in "\\PC{0,40}", t in "[a-zA-Z:/?#@\\[\\]%.0-9-]{0,30}") {
            for input in [s.as_str(), t.as_str(), &format!("https://{t}"), &format!("http://{s}")] {
                if let Ok(o) = Origin::parse(input) {
                    let text = o.as_str();
                    prop_assert!(text.starts_with("http://") || text.starts_with("https://"));
                    prop_assert!(!o.authority().contains(['@', '/', '?', '#']));
                    prop_assert_eq!(Origin::parse(text).unwrap(), o.clone());
                }
                if let Ok((o, path)) = Origin::split_url(input) {
                    prop_assert!(path.starts_with('/') && !path.contains('#'));
                    prop_assert_eq!(Origin::split_url(&o.join(&path)).unwrap(), (o, path));
                }
            }
        }
    }
}
