//! Typed conversion of one parameter value ([`convert`]): a CSV string `"true"` becomes a bool,
//! `"3"` an int, a UUID is checked and lower-cased, a datetime normalised to UTC. Part of the
//! request building of [`super::request`] (rendered parameters → catalog types → request), also
//! called by validation for literal values.

use serde_json::Value;

use super::model::{ParamSpec, ParamType, Scalar};
use crate::diagnostic::did_you_mean;

/// A message and an optional hint.
pub(super) type Failure = (String, Option<String>);

/// Converts one value to the parameter's catalog type (a CSV string `"true"` becomes a bool, `"3"` an int). `null` converts to
/// `null`, meaning "omit". The error is the message, with the hint appended in parentheses.
pub fn convert(param: &ParamSpec, value: &Value) -> Result<Value, String> {
    convert_detailed(param, value).map_err(|(m, h)| match h {
        Some(h) => format!("{m} ({h})"),
        None => m,
    })
}

pub(super) fn convert_detailed(param: &ParamSpec, value: &Value) -> Result<Value, Failure> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match param.ty {
        ParamType::One(s) => convert_scalar(s, value),
        ParamType::List(s) => convert_list(s, value),
        ParamType::Map => convert_map(value),
        ParamType::Any => Ok(value.clone()),
    }
}

/// A short rendering of a value for error messages.
pub(super) fn shown(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn convert_list(s: Scalar, value: &Value) -> Result<Value, Failure> {
    let items: Vec<Value> = match value {
        Value::Array(items) => items.clone(),
        Value::String(text) => {
            let t = text.trim();
            if t.starts_with('[') {
                match serde_json::from_str::<Value>(t) {
                    Ok(Value::Array(items)) => items,
                    _ => {
                        return Err((
                            format!(
                                "expected a list, got {} which is not a JSON array",
                                shown(value)
                            ),
                            Some("give a JSON array or comma-separated values".into()),
                        ))
                    }
                }
            } else {
                t.split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(|e| Value::String(e.to_owned()))
                    .collect()
            }
        }
        Value::Object(_) => {
            return Err((format!("expected a list, got a map {}", shown(value)), None));
        }
        other => vec![other.clone()],
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if item.is_null() {
            return Err((format!("list element {} is null", i + 1), None));
        }
        let v = convert_scalar(s, item)
            .map_err(|(m, h)| (format!("list element {}: {m}", i + 1), h))?;
        out.push(v);
    }
    Ok(Value::Array(out))
}

fn convert_map(value: &Value) -> Result<Value, Failure> {
    match value {
        Value::Object(_) => Ok(value.clone()),
        Value::String(text) => match serde_json::from_str::<Value>(text.trim()) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err((
                format!("expected a map (JSON object), got {}", shown(value)),
                Some("a string must hold a JSON object, e.g. {\"key\": \"value\"}".into()),
            )),
        },
        other => Err((
            format!("expected a map (JSON object), got {}", kind(other)),
            None,
        )),
    }
}

fn convert_scalar(s: Scalar, value: &Value) -> Result<Value, Failure> {
    match s {
        Scalar::String => match value {
            Value::String(_) => Ok(value.clone()),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            other => Err((format!("expected a string, got {}", kind(other)), None)),
        },
        Scalar::Uuid => to_uuid(value),
        Scalar::Bool => to_bool(value),
        Scalar::Int => to_int(value),
        Scalar::Number => to_number(value),
        Scalar::DateTime => to_datetime(value),
        Scalar::Enum(values) => to_enum(values, value),
    }
}

pub(super) fn to_bool(value: &Value) -> Result<Value, Failure> {
    let bad = || {
        Err((
            format!(
                "expected a bool (true/false/yes/no/1/0), got {}",
                shown(value)
            ),
            None,
        ))
    };
    match value {
        Value::Bool(_) => Ok(value.clone()),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Ok(Value::Bool(true)),
            Some(0) => Ok(Value::Bool(false)),
            _ => bad(),
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "0" => Ok(Value::Bool(false)),
            _ => bad(),
        },
        _ => bad(),
    }
}

/// Integers beyond ±2^53 cannot come from a float exactly.
const MAX_EXACT_FLOAT_INT: f64 = 9_007_199_254_740_992.0;

fn to_int(value: &Value) -> Result<Value, Failure> {
    let not_int = || Err((format!("expected an integer, got {}", shown(value)), None));
    let out_of_range = || {
        Err((
            format!("integer {} is out of range", shown(value)),
            Some("the range is that of a signed 64-bit integer".into()),
        ))
    };
    let from_float = |x: f64| {
        if !x.is_finite() || x.fract() != 0.0 {
            not_int()
        } else if x.abs() > MAX_EXACT_FLOAT_INT {
            out_of_range()
        } else {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "integral and within ±2^53, checked above"
            )]
            Ok(Value::from(x as i64))
        }
    };
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(Value::from(i))
            } else if n.is_u64() {
                out_of_range()
            } else {
                from_float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                Ok(Value::from(i))
            } else if !t.is_empty()
                && t.trim_start_matches(['-', '+'])
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            {
                out_of_range()
            } else {
                match t.parse::<f64>() {
                    Ok(x) => from_float(x),
                    Err(_) => not_int(),
                }
            }
        }
        _ => not_int(),
    }
}

fn to_number(value: &Value) -> Result<Value, Failure> {
    let bad = || Err((format!("expected a number, got {}", shown(value)), None));
    match value {
        Value::Number(_) => Ok(value.clone()),
        Value::String(s) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                return Ok(Value::from(i));
            }
            match t.parse::<f64>() {
                Ok(x) if x.is_finite() => {
                    serde_json::Number::from_f64(x).map_or_else(bad, |n| Ok(Value::Number(n)))
                }
                _ => bad(),
            }
        }
        _ => bad(),
    }
}

fn is_uuid_form(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn to_uuid(value: &Value) -> Result<Value, Failure> {
    match value {
        Value::String(s) if is_uuid_form(s.trim()) => {
            Ok(Value::String(s.trim().to_ascii_lowercase()))
        }
        _ => Err((
            format!("expected a UUID, got {}", shown(value)),
            Some(
                "the form is 8-4-4-4-12 hex digits, e.g. 3fa85f64-5717-4562-b3fc-2c963f66afa6"
                    .into(),
            ),
        )),
    }
}

fn to_datetime(value: &Value) -> Result<Value, Failure> {
    let Value::String(s) = value else {
        return Err((
            format!("expected an RFC 3339 datetime string, got {}", kind(value)),
            None,
        ));
    };
    let t = s.trim();
    match t.parse::<jiff::Timestamp>() {
        Ok(ts) => Ok(Value::String(ts.to_string())),
        Err(_) if t.parse::<jiff::civil::DateTime>().is_ok() => Err((
            format!("datetime {} has no UTC offset", shown(value)),
            Some("add `Z` or an offset such as `-03:00`, e.g. 2025-05-27T14:00:00Z".into()),
        )),
        Err(e) => Err((
            format!("expected an RFC 3339 datetime, got {}: {e}", shown(value)),
            Some("e.g. 2025-05-27T14:00:00Z".into()),
        )),
    }
}

fn to_enum(values: &'static [&'static str], value: &Value) -> Result<Value, Failure> {
    let listed = values.join("|");
    let Value::String(s) = value else {
        return Err((
            format!("expected one of {listed}, got {}", shown(value)),
            None,
        ));
    };
    let t = s.trim();
    if values.contains(&t) {
        return Ok(Value::String(t.to_owned()));
    }
    let hint = if let Some(right) = values.iter().find(|v| v.eq_ignore_ascii_case(t)) {
        Some(format!("values are case-sensitive: use `{right}`"))
    } else if t == "UNDEFINED" || t == "Undefined" {
        Some("UNDEFINED is a placeholder, not a value that can be set here".into())
    } else {
        did_you_mean(t, values.iter().copied())
    };
    Err((
        format!("expected one of {listed}, got {}", shown(value)),
        hint,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::lookup;
    use serde_json::json;

    fn param(action: &str, name: &str) -> &'static ParamSpec {
        lookup(action).unwrap().param(name).unwrap()
    }

    #[test]
    fn bool_messages_are_precise() {
        let p = param("session.complete", "reactivate_on_new_message");
        assert_eq!(
            convert(p, &json!("maybe")).unwrap_err(),
            "expected a bool (true/false/yes/no/1/0), got \"maybe\""
        );
        assert_eq!(convert(p, &json!(" YES ")).unwrap(), json!(true));
        assert_eq!(convert(p, &json!(0)).unwrap(), json!(false));
    }

    #[test]
    fn int_edges() {
        let p = param("contact.list", "page_number");
        assert_eq!(convert(p, &json!("42")).unwrap(), json!(42));
        assert_eq!(convert(p, &json!(4.0)).unwrap(), json!(4));
        assert!(convert(p, &json!("4.2"))
            .unwrap_err()
            .contains("expected an integer"));
        assert!(convert(p, &json!(4.2))
            .unwrap_err()
            .contains("expected an integer"));
        assert!(convert(p, &json!("99999999999999999999"))
            .unwrap_err()
            .contains("out of range"));
        assert!(convert(p, &json!(u64::MAX))
            .unwrap_err()
            .contains("out of range"));
    }

    #[test]
    fn datetime_normalised_to_utc() {
        let p = param("session.update", "end_at");
        assert_eq!(
            convert(p, &json!("2025-05-27T11:00:00-03:00")).unwrap(),
            json!("2025-05-27T14:00:00Z")
        );
        assert!(convert(p, &json!("2025-05-27T11:00:00"))
            .unwrap_err()
            .contains("no UTC offset"));
    }
}
