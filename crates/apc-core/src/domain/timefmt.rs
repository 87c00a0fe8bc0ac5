//! RFC 3339 UTC times, as records and answers show them (SPEC §6), and the time shapes Azure
//! sends, read to UTC.

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

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

/// Longest time text looked at; real ones are under 40 characters.
const MAX_TIME_LEN: usize = 64;

/// Parse a time in any shape Azure is known to send, to whole Unix seconds UTC (the fraction of
/// a second is dropped). `None` for anything else: the caller names the field.
///
/// Read (see the table in this module's tests for where each was seen):
/// - ISO 8601 / RFC 3339 `YYYY-MM-DDThh:mm:ss`, with `T`, `t` or a space between date and time,
///   an optional fraction of any length (`.` or `,`), and a zone `Z`, `z`, `±hh:mm`, `±hhmm` or
///   `±hh`, or no zone at all, which is read as UTC (Azure's services keep UTC; a .NET
///   `DateTime` of unspecified kind prints without a zone).
/// - US-style `M/D/YYYY h:mm:ss AM` / `PM` (space before the marker optional, either case), and
///   `MM/DD/YYYY HH:mm:ss` in 24-hour time, read as UTC.
///
/// Refused: other separators, two-digit years, missing seconds, impossible dates (`02-30`),
/// hours over 23 (or 0/13+ with AM/PM), offsets of 24 hours or more, trailing text.
pub fn parse_azure_time(s: &str) -> Option<UnixSeconds> {
    let s = s.trim();
    if s.is_empty() || s.len() > MAX_TIME_LEN || !s.is_ascii() {
        return None;
    }
    let mut c = Cursor { b: s.as_bytes(), i: 0 };
    let t = if s.contains('/') { us_time(&mut c)? } else { iso_time(&mut c)? };
    c.at_end().then_some(t)
}

/// A byte cursor over ASCII time text.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, want: u8) -> bool {
        let hit = self.peek() == Some(want);
        self.i += usize::from(hit);
        hit
    }
    fn expect(&mut self, want: u8) -> Option<()> {
        self.eat(want).then_some(())
    }
    /// Between `min` and `max` digits, as a number.
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        let mut n: u32 = 0;
        while self.i - start < max {
            match self.peek() {
                Some(d) if d.is_ascii_digit() => {
                    n = n * 10 + u32::from(d - b'0');
                    self.i += 1;
                }
                _ => break,
            }
        }
        (self.i - start >= min).then_some(n)
    }
    fn at_end(&self) -> bool {
        self.i == self.b.len()
    }
}

fn iso_time(c: &mut Cursor) -> Option<UnixSeconds> {
    let year = c.digits(4, 4)?;
    c.expect(b'-')?;
    let month = c.digits(2, 2)?;
    c.expect(b'-')?;
    let day = c.digits(2, 2)?;
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return None;
    }
    let hour = c.digits(2, 2)?;
    c.expect(b':')?;
    let minute = c.digits(2, 2)?;
    c.expect(b':')?;
    let second = c.digits(2, 2)?;
    if c.eat(b'.') || c.eat(b',') {
        // Any precision (.NET prints 7 digits); only whole seconds are kept.
        c.digits(1, 32)?;
    }
    let offset = match c.peek() {
        None => 0,
        Some(b'Z' | b'z') => {
            c.i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let hh = c.digits(2, 2)?;
            // `±hh:mm`, `±hhmm` or `±hh`.
            let mm = if c.eat(b':') || c.peek().is_some_and(|b| b.is_ascii_digit()) { c.digits(2, 2)? } else { 0 };
            if hh > 23 || mm > 59 {
                return None;
            }
            let secs = i64::from(hh * 3600 + mm * 60);
            if sign == b'+' { secs } else { -secs }
        }
        Some(_) => return None,
    };
    to_unix(year, month, day, hour, minute, second, offset)
}

fn us_time(c: &mut Cursor) -> Option<UnixSeconds> {
    let month = c.digits(1, 2)?;
    c.expect(b'/')?;
    let day = c.digits(1, 2)?;
    c.expect(b'/')?;
    let year = c.digits(4, 4)?;
    c.expect(b' ')?;
    let hour = c.digits(1, 2)?;
    c.expect(b':')?;
    let minute = c.digits(2, 2)?;
    c.expect(b':')?;
    let second = c.digits(2, 2)?;
    c.eat(b' ');
    let hour = match c.peek().map(|b| b.to_ascii_uppercase()) {
        Some(m @ (b'A' | b'P')) => {
            c.i += 1;
            if !(c.eat(b'M') || c.eat(b'm')) || !(1..=12).contains(&hour) {
                return None;
            }
            (hour % 12) + if m == b'P' { 12 } else { 0 }
        }
        // No marker: 24-hour time (`06/25/2017 19:59:39`).
        None => hour,
        _ => return None,
    };
    to_unix(year, month, day, hour, minute, second, 0)
}

/// Validate the calendar fields and convert; `offset_secs` east of UTC. A leap second (`:60`)
/// counts as `:59`.
fn to_unix(year: u32, month: u32, day: u32, hour: u32, minute: u32, second: u32, offset_secs: i64) -> Option<i64> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    let second = if second == 60 { 59 } else { second };
    let time = Time::from_hms(u8::try_from(hour).ok()?, u8::try_from(minute).ok()?, u8::try_from(second).ok()?).ok()?;
    let local = PrimitiveDateTime::new(date, time).assume_offset(UtcOffset::UTC).unix_timestamp();
    Some(local - offset_secs)
}

/// `yyyymmddThhmmss` in UTC, the time part of capture names (SPEC §5.2).
pub fn compact(t: UnixSeconds) -> String {
    let d = OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{:04}{:02}{:02}T{:02}{:02}{:02}", d.year(), u8::from(d.month()), d.day(), d.hour(), d.minute(), d.second())
}

/// Read back a [`compact`] time (`None` for anything else).
pub fn parse_compact(s: &str) -> Option<UnixSeconds> {
    let b = s.as_bytes();
    if b.len() != 15 || b[8] != b'T' || !b.iter().enumerate().all(|(i, c)| i == 8 || c.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
    let month = Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?;
    let date = Date::from_calendar_date(i32::try_from(n(0..4)?).ok()?, month, u8::try_from(n(6..8)?).ok()?).ok()?;
    let hms = |r| n(r).and_then(|v| u8::try_from(v).ok());
    let time = Time::from_hms(hms(9..11)?, hms(11..13)?, hms(13..15)?).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_offset(UtcOffset::UTC).unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_times_read_back() {
        for t in [0, 1_553_263_104, 4_102_444_799] {
            assert_eq!(parse_compact(&compact(t)), Some(t));
        }
        for bad in ["", "20190322 135824", "20191322T135824", "2019032T1358245", "20190322T136024x"] {
            assert_eq!(parse_compact(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trip_and_fractions() {
        let t = parse_rfc3339("2019-03-22T13:58:24.3713213Z").unwrap();
        assert_eq!(rfc3339(t), "2019-03-22T13:58:24Z");
        assert_eq!(compact(t), "20190322T135824");
        assert_eq!(parse_rfc3339("2019-03-22T14:58:24+01:00"), Some(t));
        assert_eq!(parse_rfc3339("9/7/2016 12:35:24PM"), None);
    }

    /// Every time shape Azure is known to send, where it was seen, and the UTC time it means.
    /// amd = MicrosoftDocs/azure-monitor-docs, azd = MicrosoftDocs/azure-docs,
    /// samples = testdata/azure-samples (SOURCES.md says where each came from).
    const SHAPES: &[(&str, &str, &str)] = &[
        // 7 fractional digits, Z: .NET's round-trip format.
        (
            "2019-03-22T13:58:24.3713213Z",
            "2019-03-22T13:58:24Z",
            "firedDateTime, common schema sample (amd alerts-common-schema.md)",
        ),
        (
            "2015-08-14T22:26:41.9975398Z",
            "2015-08-14T22:26:41Z",
            "context.timestamp, classic metric (samples/alerts/classic…)",
        ),
        ("2019-03-22T14:03:16.2246313Z", "2019-03-22T14:03:16Z", "resolvedDateTime (amd alerts-common-schema.md)"),
        (
            "2017-10-18T02:48:00.0000000Z",
            "2017-10-18T02:48:00Z",
            "impactStartTime, service health (amd activity-log-alerts-webhook.md)",
        ),
        // 3 fractional digits, Z.
        (
            "2025-04-15T18:19:45.304Z",
            "2025-04-15T18:19:45Z",
            "firedDateTime/eventTimestamp, test actions (amd alerts-payload-samples.md)",
        ),
        (
            "2025-04-15T18:17:12.851Z",
            "2025-04-15T18:17:12Z",
            "windowStartTime/windowEndTime, test actions (amd alerts-payload-samples.md)",
        ),
        // No fraction.
        (
            "2016-09-07T12:35:24Z",
            "2016-09-07T12:35:24Z",
            "captureStartTime (azd network-watcher-packet-capture-manage-rest.md)",
        ),
        (
            "2021-11-15T15:15:24Z",
            "2021-11-15T15:15:24Z",
            "SearchIntervalStartTimeUtc, log alert V1 (amd non-common schema)",
        ),
        // +00:00 offsets, 7, 6 and 3 digits.
        (
            "2017-03-29T15:43:08.0019532+00:00",
            "2017-03-29T15:43:08Z",
            "eventTimestamp, activity log (amd activity-log-alerts-webhook.md)",
        ),
        (
            "2021-11-16T08:29:00.141807+00:00",
            "2021-11-16T08:29:00Z",
            "submissionTimestamp (samples/alerts/noncommon.activitylog-admin…)",
        ),
        (
            "2017-06-25T19:00:32.607+00:00",
            "2017-06-25T19:00:32Z",
            "eventTimestamp, Security event (amd activity-log-alerts-webhook.md)",
        ),
        (
            "2021-06-27T01:02:38.3138469+00:00",
            "2021-06-27T01:02:38Z",
            "timeCreated, VM GET (samples/compute/VirtualMachineGet…)",
        ),
        // Other offsets, as RFC 3339 allows them and relays produce them.
        ("2019-03-22T14:58:24.3713213+01:00", "2019-03-22T13:58:24Z", "RFC 3339 offset"),
        ("2019-03-22T08:28:24-05:30", "2019-03-22T13:58:24Z", "RFC 3339 negative offset"),
        ("2019-03-22T14:58:24+0100", "2019-03-22T13:58:24Z", "ISO 8601 basic offset"),
        ("2019-03-22T14:58:24+01", "2019-03-22T13:58:24Z", "ISO 8601 hour-only offset"),
        // No zone at all: .NET DateTime of unspecified kind; Azure keeps UTC.
        ("2018-08-23T19:06:35.999", "2018-08-23T19:06:35Z", "no zone (issue 8's list)"),
        ("2018-08-23T19:06:35", "2018-08-23T19:06:35Z", "no zone, no fraction"),
        // Lower case t and z (RFC 3339 section 5.6 allows them).
        ("2019-03-22t13:58:24.3713213z", "2019-03-22T13:58:24Z", "lower-case t and z (RFC 3339 section 5.6)"),
        // A space for the T.
        ("2023-06-07 08:06:56Z", "2023-06-07T08:06:56Z", "Entra ID error timestamp (samples/token/error.AADSTS90002…)"),
        // US-style, from Windows' culture.
        (
            "9/7/2016 12:35:24PM",
            "2016-09-07T12:35:24Z",
            "captureStartTime (samples/network-watcher/…stopped-nonISO-date…)",
        ),
        (
            "3/22/2019 1:36:33 PM",
            "2019-03-22T13:36:33Z",
            "SearchIntervalStartTimeUtc, common schema log alert V1 (amd)",
        ),
        ("3/22/2019 12:05:00 am", "2019-03-22T00:05:00Z", "12 AM is midnight"),
        (
            "06/25/2017 19:59:39",
            "2017-06-25T19:59:39Z",
            "endTimeUTC, Security event properties (amd activity-log-alerts-webhook.md)",
        ),
        // A leap second counts as :59.
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59Z", "leap second (RFC 3339)"),
    ];

    #[test]
    fn reads_every_known_shape() {
        for (text, utc, seen) in SHAPES {
            let t = parse_azure_time(text).unwrap_or_else(|| panic!("{text:?} ({seen}) not read"));
            assert_eq!(rfc3339(t), *utc, "{text:?} ({seen})");
            // With surrounding white space too.
            assert_eq!(parse_azure_time(&format!(" {text}\n")), Some(t), "{text:?}");
        }
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            "   ",
            "yesterday",
            "YYYY-MM-DD HH:MM:SSZ",
            "2019-03-22",
            "2019-03-22T13:58Z",
            "2019-03-22T13:58:24ZZ",
            "2019-03-22T13:58:24.Z",
            "2019-03-22T13:58:24.123 Z",
            "2019-03-22T13:58:24+1",
            "2019-03-22T13:58:24+01:",
            "2019-03-22T13:58:24+011",
            "2019-03-22T13:58:24+24:00",
            "2019-03-22T13:58:24+01:60",
            "2019-03-22T24:00:00Z",
            "2019-03-22T13:60:00Z",
            "2019-02-30T13:58:24Z",
            "2019-13-01T13:58:24Z",
            "2019-00-01T13:58:24Z",
            "19-03-22T13:58:24Z",
            "2019/03/22 13:58:24",
            "2019-3-22T13:58:24Z",
            "2019-03-22X13:58:24Z",
            "2019-03-22T13:58:24Z trailing",
            "2019-03-22T13:58:24 UTC",
            "１９９９-03-22T13:58:24Z",
            "13/7/2016 12:35:24PM",
            "9/32/2016 12:35:24PM",
            "9/7/16 12:35:24PM",
            "9/7/2016 13:35:24PM",
            "9/7/2016 0:35:24AM",
            "9/7/2016 12:35PM",
            "9/7/2016 12:35:24XM",
            "9/7/2016 12:35:24P",
            "9/7/2016 24:00:00",
            "9/7/2016",
            "9/7/2016T12:35:24",
            "1553263104",
        ] {
            assert_eq!(parse_azure_time(bad), None, "read {bad:?}");
        }
        assert_eq!(parse_azure_time(&"9".repeat(100)), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in proptest::prelude::any::<String>()) {
            let _ = parse_azure_time(&s);
        }

        #[test]
        fn never_panics_on_time_like_text(s in "[0-9TtZz:./+ ,APMapm-]{0,40}") {
            if let Some(t) = parse_azure_time(&s) {
                // Whatever is read is a real time that prints and reads back the same.
                proptest::prop_assert_eq!(parse_azure_time(&rfc3339(t)), Some(t));
            }
        }

        #[test]
        fn rfc3339_round_trips(t in 0i64..253_402_300_799, frac in "[0-9]{0,9}", upper in proptest::prelude::any::<bool>()) {
            let base = rfc3339(t);
            let text = if frac.is_empty() { base.clone() } else { base.replace('Z', &format!(".{frac}Z")) };
            let text = if upper { text } else { text.to_ascii_lowercase() };
            proptest::prop_assert_eq!(parse_azure_time(&text), Some(t));
        }
    }
}
