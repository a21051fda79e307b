//! Durations and times as people write and read them: `20m`, `1h 30m`, `500ms` in the
//! configuration and on the command line, and `2026-12-01 19:20:05 UTC` on the status page.
//!
//! A few dozen lines over `std` rather than two crates (humantime, humantime-serde) in the
//! dependency tree a SecureDrop reviewer has to vouch for. The grammar is humantime's, less the
//! calendar units nobody sets here (months and years, whose length is a convention): a sequence of
//! `<integer><unit>` parts, spaces allowed between them, units `ns`, `us`/`µs`, `ms`,
//! `s`/`sec`/`secs`/`second`/`seconds`, `m`/`min`/`mins`/`minute`/`minutes`,
//! `h`/`hr`/`hrs`/`hour`/`hours`, `d`/`day`/`days`, `w`/`week`/`weeks`.

use std::fmt;
use std::time::Duration;

/// Why a text is not a duration; says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration; expected e.g. 30s, 20m or 1h 30m")]
    Empty,
    #[error("expected a number before `{0}` (e.g. 30s, 20m or 1h 30m)")]
    NoNumber(String),
    #[error("no unit after {0}; expected one of ns, us, ms, s, m, h, d, w (e.g. {0}s)")]
    NoUnit(String),
    #[error("unknown unit `{0}`; expected one of ns, us, ms, s, m, h, d, w")]
    UnknownUnit(String),
    #[error("duration too long")]
    Overflow,
}

/// Parses `20m`, `1h 30m`, `1h30m`, `500ms`, `0s`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(DurationError::NoNumber(rest.to_owned()));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::Overflow)?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(DurationError::NoUnit(number.to_string()));
        }
        let nanos_per: u64 = match unit {
            "ns" | "nsec" => 1,
            "us" | "µs" | "usec" => 1_000,
            "ms" | "msec" => 1_000_000,
            "s" | "sec" | "secs" | "second" | "seconds" => 1_000_000_000,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000_000_000,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000_000_000,
            "d" | "day" | "days" => 86_400_000_000_000,
            "w" | "week" | "weeks" => 604_800_000_000_000,
            other => return Err(DurationError::UnknownUnit(other.to_owned())),
        };
        let nanos = u128::from(number) * u128::from(nanos_per);
        let part = Duration::new(
            u64::try_from(nanos / 1_000_000_000).map_err(|_| DurationError::Overflow)?,
            (nanos % 1_000_000_000) as u32,
        );
        total = total.checked_add(part).ok_or(DurationError::Overflow)?;
        rest = rest[unit_len..].trim_start();
    }
    Ok(total)
}

/// Prints a duration the way [`parse`] reads it back: `1h 30m`, `500ms`, `0s`.
pub struct FormattedDuration(pub Duration);

impl fmt::Display for FormattedDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        let secs = d.as_secs();
        let nanos = d.subsec_nanos();
        let parts = [
            (secs / 86_400, "d"),
            (secs / 3_600 % 24, "h"),
            (secs / 60 % 60, "m"),
            (secs % 60, "s"),
            (u64::from(nanos / 1_000_000), "ms"),
            (u64::from(nanos / 1_000 % 1_000), "us"),
            (u64::from(nanos % 1_000), "ns"),
        ];
        let mut first = true;
        for (n, unit) in parts {
            if n > 0 {
                if !first {
                    f.write_str(" ")?;
                }
                write!(f, "{n}{unit}")?;
                first = false;
            }
        }
        Ok(())
    }
}

/// `serde(with = "crate::duration_text::serde_text")`: a duration as its text in configuration
/// files and environment variables; serde's own wording for a bad value ("invalid value: string
/// \"forever\", expected a duration"), which config errors then place by key and source.
pub mod serde_text {
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&crate::duration_text::FormattedDuration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = Duration;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                crate::duration_text::parse(v)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_str(Text)
    }
}

/// `2026-12-01T19:20:05Z` for whole Unix seconds (RFC 3339, UTC), by the civil-from-days
/// algorithm (proleptic Gregorian calendar).
pub fn rfc3339_seconds(unix: u64) -> String {
    let days = unix / 86_400;
    let rem = unix % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_docs_and_defaults_write() {
        let s = Duration::from_secs;
        for (text, want) in [
            ("0s", Duration::ZERO),
            ("30s", s(30)),
            ("20m", s(1_200)),
            ("1h", s(3_600)),
            ("1h 30m", s(5_400)),
            ("1h30m", s(5_400)),
            ("2 hours", s(7_200)),
            ("3d", s(259_200)),
            ("1w", s(604_800)),
            ("500ms", Duration::from_millis(500)),
            ("1s 500ms", Duration::from_millis(1_500)),
            ("250us", Duration::from_micros(250)),
            ("7ns", Duration::from_nanos(7)),
            (" 5min ", s(300)),
        ] {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_with_a_reason() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(
            parse("forever"),
            Err(DurationError::NoNumber("forever".into()))
        );
        assert_eq!(parse("20"), Err(DurationError::NoUnit("20".into())));
        assert_eq!(parse("5x"), Err(DurationError::UnknownUnit("x".into())));
        assert_eq!(
            parse("1month"),
            Err(DurationError::UnknownUnit("month".into()))
        );
        assert_eq!(parse("-5s"), Err(DurationError::NoNumber("-5s".into())));
        assert_eq!(parse("99999999999999999999s"), Err(DurationError::Overflow));
        assert_eq!(parse("18446744073709551615w"), Err(DurationError::Overflow));
    }

    #[test]
    fn formats_what_parse_reads_back() {
        for d in [
            Duration::ZERO,
            Duration::from_secs(5),
            Duration::from_secs(5_400),
            Duration::from_secs(90_061),
            Duration::from_millis(1_500),
            Duration::from_nanos(1_000_001),
        ] {
            let text = FormattedDuration(d).to_string();
            assert_eq!(parse(&text), Ok(d), "{text}");
        }
        assert_eq!(
            FormattedDuration(Duration::from_secs(5_400)).to_string(),
            "1h 30m"
        );
        assert_eq!(
            FormattedDuration(Duration::from_secs(86_400)).to_string(),
            "1d"
        );
        assert_eq!(
            FormattedDuration(Duration::from_millis(500)).to_string(),
            "500ms"
        );
    }

    #[test]
    fn utc_times() {
        assert_eq!(rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_seconds(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_seconds(1_764_616_805), "2025-12-01T19:20:05Z");
        assert_eq!(rfc3339_seconds(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(rfc3339_seconds(4_107_542_400), "2100-03-01T00:00:00Z");
    }
}
