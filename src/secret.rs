//! Secrets as a type, and redaction of secret values from any text the program emits.
//!
//! In: the API token and the values named by `settings.secrets`.
//! Out: [`Secret`], a string that never prints itself (its `Debug`, `Display` and `Serialize`
//! all give `[redacted]`; [`Secret::expose`] is the one explicit way to read it), and
//! [`Redactor`], which replaces every occurrence of any secret in a string or a JSON value
//! (keys included) with `[redacted]` before it reaches a log line, the terminal or the report.
//!
//! Choice: secrets shorter than [`MIN_SECRET_LEN`] characters are not redacted. Redacting a
//! one-character secret would replace every `a` in every message and make all output unreadable,
//! while such a value protects nothing anyway. [`Redactor::ignored`] counts them so the caller can
//! warn ("secret `pin` is too short to be redacted").
//!
//! Besides the raw value, the redactor also matches the forms a secret takes after encoding:
//! inside a JSON string (`"` and `\` escaped) and percent-encoded in a URL path or query.

use std::borrow::Cow;
use std::fmt;

use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::Value;

/// What a secret prints as, everywhere.
pub(crate) const REDACTED: &str = "[redacted]";

/// Secrets shorter than this many characters are not redacted (see the module doc).
pub(crate) const MIN_SECRET_LEN: usize = 4;

/// A secret string: the token or a `settings.secrets` value. It prints as `[redacted]`.
#[derive(Clone, PartialEq, Eq, Default)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value itself: call this only where it is sent (the `Authorization` header)
    /// or handed to a [`Redactor`].
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// Replaces every occurrence of a set of secrets with `[redacted]`. Build it once per run;
/// cloning is cheap (the automaton is reference-counted).
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    /// `None` when there is nothing to redact.
    matcher: Option<AhoCorasick>,
    ignored: usize,
    /// The secrets it was built from (for [`Redactor::with`]).
    secrets: std::sync::Arc<[String]>,
}

impl Redactor {
    /// A redactor for these secrets. Empty strings are skipped silently; non-empty ones shorter
    /// than [`MIN_SECRET_LEN`] characters are skipped and counted in [`Redactor::ignored`].
    pub(crate) fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut patterns: Vec<String> = Vec::new();
        let mut ignored = 0;
        let secrets: Vec<String> = secrets.into_iter().map(|s| s.as_ref().to_owned()).collect();
        for secret in &secrets {
            let secret = secret.as_str();
            if secret.is_empty() {
                continue;
            }
            if secret.chars().count() < MIN_SECRET_LEN {
                ignored += 1;
                continue;
            }
            let json = serde_json::to_string(secret).expect("a string always serializes");
            let json_inner = &json[1..json.len() - 1];
            let percent =
                percent_encoding::utf8_percent_encode(secret, crate::catalog::QUERY).to_string();
            for form in [secret, json_inner, percent.as_str()] {
                if !patterns.iter().any(|p| p == form) {
                    patterns.push(form.to_owned());
                }
            }
        }
        let matcher = if patterns.is_empty() {
            None
        } else {
            // Leftmost-longest: when one secret contains another, the longer one wins and
            // nothing of it is left over.
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&patterns)
                    .expect("plain string patterns of bounded size always build"),
            )
        };
        Redactor {
            matcher,
            ignored,
            secrets: secrets.into(),
        }
    }

    /// This redactor's secrets plus `more` (values derived from a secret, for one item).
    #[must_use]
    pub(crate) fn with(&self, more: &[String]) -> Redactor {
        Redactor::new(self.secrets.iter().chain(more))
    }

    /// How many non-empty secrets were too short to redact.
    #[cfg(test)]
    pub(crate) fn ignored(&self) -> usize {
        self.ignored
    }

    /// True when nothing would ever be redacted.
    pub(crate) fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// `s` with every secret replaced by `[redacted]`; borrowed when nothing matched.
    pub(crate) fn redact<'a>(&self, s: &'a str) -> Cow<'a, str> {
        match &self.matcher {
            Some(m) if m.is_match(s) => {
                let mut out = String::with_capacity(s.len());
                m.replace_all_with(s, &mut out, |_, _, dst| {
                    dst.push_str(REDACTED);
                    true
                });
                Cow::Owned(out)
            }
            _ => Cow::Borrowed(s),
        }
    }

    /// Redact every string in `v` in place, object keys included. Key order is kept; if two keys
    /// become equal after redaction, the later one's value wins.
    pub(crate) fn redact_json(&self, v: &mut Value) {
        if self.matcher.is_none() {
            return;
        }
        match v {
            Value::String(s) => {
                if let Cow::Owned(r) = self.redact(s) {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact_json(item)),
            Value::Object(map) => {
                let keys_need_it = map.keys().any(|k| matches!(self.redact(k), Cow::Owned(_)));
                if keys_need_it {
                    let old = std::mem::take(map);
                    for (k, mut value) in old {
                        self.redact_json(&mut value);
                        map.insert(self.redact(&k).into_owned(), value);
                    }
                } else {
                    map.values_mut().for_each(|value| self.redact_json(value));
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field(
                "patterns",
                &self.matcher.as_ref().map_or(0, AhoCorasick::patterns_len),
            )
            .field("ignored", &self.ignored)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_never_prints_itself() {
        #[derive(Debug)]
        #[expect(dead_code, reason = "only printed through Debug")]
        struct Holder {
            token: Secret,
        }
        let s = Secret::new("pn_supersecret");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s:#?}"), "[redacted]");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"[redacted]\"");
        let printed = format!("{:?}", Holder { token: s.clone() });
        assert!(!printed.contains("supersecret"), "{printed}");
        assert_eq!(s.expose(), "pn_supersecret");
        assert!(!s.is_empty());
        assert!(Secret::default().is_empty());
    }

    #[test]
    fn redacts_every_occurrence() {
        let r = Redactor::new(["pn_abc123", "hunter22"]);
        assert_eq!(
            r.redact("token pn_abc123 and pn_abc123, pw=hunter22!"),
            "token [redacted] and [redacted], pw=[redacted]!"
        );
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn longer_overlapping_secret_wins() {
        let r = Redactor::new(["abcd", "abcdefgh"]);
        assert_eq!(r.redact("xabcdefghx abcdx"), "x[redacted]x [redacted]x");
    }

    #[test]
    fn short_and_empty_secrets_are_skipped_and_counted() {
        let r = Redactor::new(["", "a", "abc", "abcd"]);
        assert_eq!(r.ignored(), 2);
        assert_eq!(r.redact("a abc abcd"), "a abc [redacted]");
        let none = Redactor::new(Vec::<String>::new());
        assert!(none.is_empty());
        assert_eq!(none.redact("anything"), "anything");
    }

    #[test]
    fn redacts_json_escaped_and_percent_encoded_forms() {
        let r = Redactor::new(["p\"w/x y"]);
        // As it appears inside serialized JSON.
        assert_eq!(r.redact(r#"{"pw":"p\"w/x y"}"#), r#"{"pw":"[redacted]"}"#);
        // As it appears in a URL query.
        assert_eq!(r.redact("/x?pw=p%22w%2Fx%20y"), "/x?pw=[redacted]");
    }

    #[test]
    fn redact_json_walks_values_and_keys_keeping_order() {
        let r = Redactor::new(["s3cr3t"]);
        let mut v = json!({
            "first": 1,
            "key_s3cr3t": "v",
            "nested": {"list": ["a s3cr3t b", 2, null, true]},
            "last": "s3cr3t"
        });
        r.redact_json(&mut v);
        assert_eq!(
            v,
            json!({
                "first": 1,
                "key_[redacted]": "v",
                "nested": {"list": ["a [redacted] b", 2, null, true]},
                "last": "[redacted]"
            })
        );
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["first", "key_[redacted]", "nested", "last"]);
        assert!(!v.to_string().contains("s3cr3t"));
    }

    #[test]
    fn debug_of_redactor_does_not_leak() {
        let r = Redactor::new(["pn_abc123"]);
        let printed = format!("{r:?}");
        assert!(!printed.contains("abc123"), "{printed}");
    }
}
