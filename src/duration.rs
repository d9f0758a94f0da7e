//! Human durations as written in playbooks and on the command line (`timeout: 30s`,
//! `backoff: 1.5s`, `--rate-limit 900/5m`).
//!
//! In: text such as `500ms`, `1s`, `1.5s`, `5m`, `5min`, `1h`, `1m30s` or a bare number.
//! Out: a [`std::time::Duration`], and back to text with [`format_duration`].
//!
//! Rules:
//! * Units: `ns`, `us`/`µs`, `ms`, `s`/`sec`/`secs`/`second(s)`, `m`/`min`/`mins`/`minute(s)`,
//!   `h`/`hr`/`hour(s)`, `d`/`day(s)`; case-insensitive. `m` is minutes (there is no month unit).
//! * Each component may have a decimal fraction (`1.5s`, `0.25h`); components may be chained
//!   (`1h30m`, `1m 30s`). Arithmetic is exact (integer nanoseconds, no floating point); a fraction
//!   finer than a nanosecond is an error rather than silently rounded.
//! * A bare number (`30`, `2.5`) means **seconds**: that is what `timeout: 30` most plausibly
//!   means, and it matches HTTP's `Retry-After` and most CLI tools (`sleep 30`, `curl -m 30`).
//! * Negative values are rejected; zero (`0`, `0s`) is accepted: callers that need a positive
//!   duration check it themselves.
//!
//! [`format_duration`] prints the shortest exact form, so `parse_duration(&format_duration(d))`
//! is `d` for every `d` (tested): `5m`, `1h`, `90s`, `1.5s`, `500ms`, `250us`, `7ns`.

use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Nanoseconds per unit, or `None` for an unknown unit.
fn unit_nanos(unit: &str) -> Option<u128> {
    let nanos = match unit.to_ascii_lowercase().as_str() {
        "ns" | "nsec" | "nanosecond" | "nanoseconds" => 1,
        "us" | "µs" | "usec" | "microsecond" | "microseconds" => 1_000,
        "ms" | "msec" | "millisecond" | "milliseconds" => 1_000_000,
        "s" | "sec" | "secs" | "second" | "seconds" => NANOS_PER_SEC,
        "m" | "min" | "mins" | "minute" | "minutes" => 60 * NANOS_PER_SEC,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600 * NANOS_PER_SEC,
        "d" | "day" | "days" => 86_400 * NANOS_PER_SEC,
        _ => return None,
    };
    Some(nanos)
}

/// Parse a duration such as `500ms`, `1.5s`, `5min`, `1h30m` or `30` (bare = seconds).
///
/// The error is a short sentence naming the problem, suitable after "invalid duration: ".
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("empty duration; expected e.g. `30s`, `500ms`, `5m`".to_owned());
    }
    if text.starts_with('-') {
        return Err(format!("`{text}`: a duration cannot be negative"));
    }
    let mut rest = text;
    let mut total: u128 = 0;
    let mut components = 0;
    while !rest.is_empty() {
        // Number: digits with at most one '.'.
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..num_len];
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        if number.is_empty() {
            return Err(format!(
                "`{text}`: expected a number before `{unit}` (e.g. `1{unit}`)"
            ));
        }
        let unit_nanos = if unit.is_empty() {
            if components > 0 || !rest.is_empty() {
                return Err(format!(
                    "`{text}`: every number needs a unit when several are combined (e.g. `1m30s`)"
                ));
            }
            NANOS_PER_SEC
        } else {
            unit_nanos(unit).ok_or_else(|| {
                format!("`{text}`: unknown unit `{unit}`; use ms, s, m (or min), h or d")
            })?
        };
        total = total
            .checked_add(component_nanos(text, number, unit_nanos)?)
            .ok_or_else(|| format!("`{text}`: duration too large"))?;
        components += 1;
    }
    let secs = u64::try_from(total / NANOS_PER_SEC)
        .map_err(|_| format!("`{text}`: duration too large"))?;
    let nanos = u32::try_from(total % NANOS_PER_SEC).expect("remainder below 1e9");
    Ok(Duration::new(secs, nanos))
}

/// `number` (digits, optional `.fraction`) times `unit_nanos`, exactly.
fn component_nanos(text: &str, number: &str, unit_nanos: u128) -> Result<u128, String> {
    let too_large = || format!("`{text}`: duration too large");
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if frac_part.contains('.') || (int_part.is_empty() && frac_part.is_empty()) {
        return Err(format!("`{text}`: `{number}` is not a number"));
    }
    let int: u128 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().map_err(|_| too_large())?
    };
    let mut nanos = int.checked_mul(unit_nanos).ok_or_else(too_large)?;
    let frac_digits = frac_part.trim_end_matches('0');
    if !frac_digits.is_empty() {
        let digits = u32::try_from(frac_digits.len()).map_err(|_| too_large())?;
        let scale = 10u128.checked_pow(digits).ok_or_else(too_large)?;
        let frac: u128 = frac_digits.parse().map_err(|_| too_large())?;
        let scaled = frac.checked_mul(unit_nanos).ok_or_else(too_large)?;
        if scaled % scale != 0 {
            return Err(format!(
                "`{text}`: `{number}` is finer than a nanosecond in that unit"
            ));
        }
        nanos = nanos.checked_add(scaled / scale).ok_or_else(too_large)?;
    }
    Ok(nanos)
}

/// The shortest exact text for `d`, which [`parse_duration`] reads back to the same value:
/// whole hours `2h`, whole minutes `5m`, whole seconds `90s`, other values of a second or
/// more as decimal seconds `1.5s`, and below a second `500ms`, `250us` or `7ns`. Zero is `0s`.
pub(crate) fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let sub = d.subsec_nanos();
    if sub == 0 {
        return match secs {
            0 => "0s".to_owned(),
            s if s % 3600 == 0 => format!("{}h", s / 3600),
            s if s % 60 == 0 => format!("{}m", s / 60),
            s => format!("{s}s"),
        };
    }
    if secs > 0 {
        let frac = format!("{sub:09}");
        return format!("{secs}.{}s", frac.trim_end_matches('0'));
    }
    if sub.is_multiple_of(1_000_000) {
        format!("{}ms", sub / 1_000_000)
    } else if sub.is_multiple_of(1_000) {
        format!("{}us", sub / 1_000)
    } else {
        format!("{sub}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1s"), Duration::from_secs(1));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("5min"), Duration::from_secs(300));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("30"), Duration::from_secs(30));
        assert_eq!(ok("2.5"), Duration::from_millis(2500));
        assert_eq!(ok(" 60S "), Duration::from_secs(60));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("2d"), Duration::from_secs(172_800));
        assert_eq!(ok("250us"), Duration::from_micros(250));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("0.25h"), Duration::from_secs(900));
        assert_eq!(ok("10 seconds"), Duration::from_secs(10));
    }

    #[test]
    fn parses_compound_forms() {
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1h 30m"), Duration::from_secs(5400));
        assert_eq!(ok("1s500ms"), Duration::from_millis(1500));
    }

    #[test]
    fn rejects_bad_input_with_clear_errors() {
        let err = |s: &str| parse_duration(s).expect_err(s);
        assert!(err("").contains("empty"));
        assert!(err("   ").contains("empty"));
        assert!(err("-1s").contains("negative"));
        assert!(err("5x").contains("unknown unit `x`"));
        assert!(err("5 parsecs").contains("unknown unit `parsecs`"));
        assert!(err("s").contains("expected a number"));
        assert!(err("1.2.3s").contains("not a number"));
        assert!(err(".s").contains("not a number"));
        assert!(err("1m30").contains("needs a unit"));
        assert!(err("1.0000000001s").contains("finer than a nanosecond"));
        assert!(err("99999999999999999999999999h").contains("too large"));
        assert!(err("999999999999999999999s").contains("too large"));
    }

    #[test]
    fn formats_the_shortest_exact_form() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(1)), "1s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_micros(250)), "250us");
        assert_eq!(format_duration(Duration::from_nanos(7)), "7ns");
        assert_eq!(format_duration(Duration::new(1, 1)), "1.000000001s");
    }

    #[test]
    fn format_then_parse_round_trips() {
        let samples = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(999_999_999),
            Duration::from_micros(1500),
            Duration::from_millis(1),
            Duration::from_millis(61_001),
            Duration::from_secs(59),
            Duration::from_secs(61),
            Duration::from_secs(86_400),
            Duration::new(12_345, 678_900_000),
            Duration::new(u64::MAX, 999_999_999),
            Duration::from_secs(u64::MAX),
        ];
        for d in samples {
            assert_eq!(ok(&format_duration(d)), d, "{}", format_duration(d));
        }
    }
}
