//! RFC 3339 UTC times, as records and answers show them (SPEC §6).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ports::UnixSeconds;

/// `2026-11-25T09:55:13Z` for a Unix time; out-of-range times clamp to the epoch.
pub fn rfc3339(t: UnixSeconds) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// Parse an RFC 3339 time (any fraction of a second, any offset) to whole Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<UnixSeconds> {
    OffsetDateTime::parse(s.trim(), &Rfc3339).ok().map(|t| t.unix_timestamp())
}

/// `yyyymmddThhmmss` in UTC, the time part of capture names (SPEC §5.2).
pub fn compact(t: UnixSeconds) -> String {
    let d = OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{:04}{:02}{:02}T{:02}{:02}{:02}", d.year(), u8::from(d.month()), d.day(), d.hour(), d.minute(), d.second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_fractions() {
        let t = parse_rfc3339("2019-03-22T13:58:24.3713213Z").unwrap();
        assert_eq!(rfc3339(t), "2019-03-22T13:58:24Z");
        assert_eq!(compact(t), "20190322T135824");
        assert_eq!(parse_rfc3339("2019-03-22T14:58:24+01:00"), Some(t));
        assert_eq!(parse_rfc3339("9/7/2016 12:35:24PM"), None);
    }
}
