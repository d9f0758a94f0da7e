//! The values settings are written in: ranges of the numbers, durations (text, or a number of
//! seconds in the serde form) and sizes (`8MB`). Pure functions: each returns the value or the
//! message saying what is wrong; [`super::resolve`] puts the messages at their positions.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::{format_duration, parse_duration};

/// A message and an optional hint (how to write the value).
pub(super) type Failure = (String, Option<String>);

/// A duration written as text (`1.5s`, `500ms`, `2m`) or a number of seconds.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub(super) enum DurationText {
    Text(String),
    Seconds(f64),
}

/// `n` if it is within `(min, max)`, else the message saying the range.
pub(super) fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    n: T,
    (min, max): (T, T),
) -> Result<T, String> {
    if n < min || n > max {
        Err(format!(
            "{n} is out of range: it must be between {min} and {max}"
        ))
    } else {
        Ok(n)
    }
}

/// A duration setting called `name` within `(min, max)`: `default` when absent; a value that
/// does not parse, or is out of range, is the message (the caller keeps `default`).
pub(super) fn ranged_duration(
    name: &str,
    value: Option<&DurationText>,
    default: Duration,
    (min, max): (Duration, Duration),
) -> Result<Duration, Failure> {
    let d = match value {
        None => return Ok(default),
        Some(DurationText::Text(t)) => parse_duration(t).map_err(|e| {
            (
                format!("invalid `{name}`: {e}"),
                Some("e.g. `500ms`, `30s`, `5m`".to_owned()),
            )
        })?,
        Some(DurationText::Seconds(secs)) => Duration::try_from_secs_f64(*secs).map_err(|_| {
            (
                format!("invalid `{name}`: {secs} is not a valid number of seconds"),
                Some("e.g. `500ms`, `30s`, `5m`".to_owned()),
            )
        })?,
    };
    if (min..=max).contains(&d) {
        return Ok(d);
    }
    let f = format_duration;
    let message = format!(
        "{name} {} is out of range: it must be between {} and {}",
        f(d),
        f(min),
        f(max)
    );
    let hint = (d.is_zero() && name == "timeout")
        .then(|| "a zero timeout would fail every request".into());
    Err((message, hint))
}

/// `8MB`, `512 KB`, `1GB`, `1000` (bytes); KB = 1024 bytes.
pub(crate) fn parse_size(m: &crate::playbook::MaxSize) -> Result<u64, String> {
    let t = match m {
        crate::playbook::MaxSize::Bytes(n) => return Ok(*n),
        crate::playbook::MaxSize::Text(t) => t.trim(),
    };
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (t[..split].trim(), t[split..].trim());
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "kib" | "k" => 1 << 10,
        "mb" | "mib" | "m" => 1 << 20,
        "gb" | "gib" | "g" => 1 << 30,
        _ => {
            return Err(format!(
                "`{t}`: unknown size unit `{unit}`; use B, KB, MB or GB"
            ))
        }
    };
    let x: f64 = num.parse().map_err(|_| format!("`{t}` is not a size"))?;
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "finite, non-negative and checked against u64::MAX first"
    )]
    if x.is_finite() && x >= 0.0 && x * (mult as f64) < u64::MAX as f64 {
        Ok((x * mult as f64) as u64)
    } else {
        Err(format!("`{t}` is not a size"))
    }
}
