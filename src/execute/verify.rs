//! Verification of unknown outcomes: for a non-idempotent write whose answer was lost (a 5xx,
//! a timeout, a dropped connection after sending), a read that tells whether it happened.
//! Which read is the catalog's data ([`catalog::Verify`]); the reads are sent by the caller
//! (under the rate limit, retried like any read).
//!
//! - `SessionMessage` (session sends): the session's messages, newest pages included, for one
//!   created since `since` whose text, template id, file id and file URL equal the ones sent.
//! - `SequenceContact` (`sequence.add_contact`): the sequence's contacts, for the contact (by
//!   id, or by the digits of its phone number) with `lastAddedAt` (or `createdAt`) since
//!   `since`.
//!
//! A listing is read for at most [`MAX_PAGES`] pages of 100.
//!
//! Telling our write from an identical one: the read looks only at objects created since the
//! item's first attempt (less [`CLOCK_SKEW`] for the server's clock), and the caller passes how
//! many matching objects this run already accounts for (`claimed`: other items' sends with the
//! same session and content that succeeded): only a match beyond those counts as ours. An
//! identical message sent by someone else to the same session within that window, or another
//! item's identical send still in flight, can still be taken for ours.

use std::future::Future;

use jiff::Timestamp;
use serde_json::Value;

use crate::catalog::{self, HttpRequest, Method};

/// The most pages a verification reads.
pub(crate) const MAX_PAGES: u64 = 50;

/// How far before an attempt's start a matching object may be dated (the server's clock may be
/// behind ours).
pub(crate) const CLOCK_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_secs(30);

/// The claim key of a write recorded in a report (`request` of a `succeeded` item), for a
/// resumed run: the messages earlier runs sent count as accounted for.
pub(crate) fn claim_key_of_record(
    how: catalog::Verify,
    rec: &crate::report::RequestRecord,
    routes: catalog::Routes,
) -> Option<String> {
    let req = HttpRequest {
        method: rec.method,
        path: rec.path.split('?').next().unwrap_or_default().to_owned(),
        query: Vec::new(),
        body: rec.body.clone(),
    };
    claim_key(how, &req, routes)
}

/// What identifies "the same write" for [`verify`]'s `claimed` count: the listing and the
/// compared content; `None` when the action's verification does not count (an enrolment is one
/// object however often it is added).
pub(crate) fn claim_key(
    how: catalog::Verify,
    req: &HttpRequest,
    routes: catalog::Routes,
) -> Option<String> {
    let target = Target::of(how, req, routes)?;
    (how == catalog::Verify::SessionMessage)
        .then(|| format!("{} {}", target.list_path, serde_json::json!(target.equal)))
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verified {
    /// The write took effect: the object found (the message, the enrolment).
    Happened(Value),
    /// The read shows no trace of it: safe to send again.
    NotHappened,
    /// The read could not be made or understood.
    Cannot(String),
}

/// Verifies `req` with the read `how`; `read` sends one GET and returns its JSON body.
pub(crate) async fn verify<F, Fut>(
    how: catalog::Verify,
    req: &HttpRequest,
    since: Option<Timestamp>,
    routes: catalog::Routes,
    claimed: u32,
    read: F,
) -> Verified
where
    F: Fn(HttpRequest) -> Fut,
    Fut: Future<Output = Result<Value, String>>,
{
    let Some(target) = Target::of(how, req, routes) else {
        return Verified::Cannot(format!(
            "cannot tell what to look for in {} {}",
            req.method, req.path
        ));
    };
    let mut seen = 0u32;
    for page in 1..=MAX_PAGES {
        let list = HttpRequest {
            method: Method::Get,
            path: target.list_path.clone(),
            query: vec![
                ("PageNumber".into(), page.to_string()),
                ("PageSize".into(), "100".into()),
            ],
            body: None,
        };
        let body = match read(list).await {
            Ok(b) => b,
            Err(e) => return Verified::Cannot(format!("the verification read failed: {e}")),
        };
        let (items, more) = match &body {
            Value::Array(items) => (items.as_slice(), false),
            Value::Object(o) => match o.get("items").and_then(Value::as_array) {
                Some(items) => (
                    items.as_slice(),
                    o.get("hasMorePages").and_then(Value::as_bool) == Some(true),
                ),
                None => {
                    return Verified::Cannot("the verification read's answer is not a page".into())
                }
            },
            _ => return Verified::Cannot("the verification read's answer is not a page".into()),
        };
        for found in items.iter().filter(|m| target.matches(m, since)) {
            seen += 1;
            if seen > claimed {
                return Verified::Happened(found.clone());
            }
        }
        if !more || items.is_empty() {
            return Verified::NotHappened;
        }
    }
    Verified::Cannot(format!(
        "the listing has more than {MAX_PAGES} pages; not read to the end"
    ))
}

/// What to look for, and where.
struct Target {
    how: catalog::Verify,
    list_path: String,
    /// Fields of the found object that must equal these (JSON values).
    equal: Vec<(&'static str, Value)>,
    /// `SequenceContact`: the contact id, or phone digits.
    contact: Option<String>,
    phone: Option<String>,
}

impl Target {
    fn of(how: catalog::Verify, req: &HttpRequest, routes: catalog::Routes) -> Option<Target> {
        let segments: Vec<&str> = req.path.split('/').collect();
        let body = req.body.as_ref();
        let field = |name: &str| body.and_then(|b| b.get(name)).filter(|v| !v.is_null());
        match how {
            catalog::Verify::SessionMessage => {
                // /chat/v1/session/{id}/message[/sync]
                let id = segments
                    .get(4)
                    .filter(|_| segments.get(3) == Some(&"session"))?;
                let mut equal = Vec::new();
                for (sent, stored) in [
                    ("text", "text"),
                    ("templateId", "templateId"),
                    ("fileId", "fileId"),
                    ("fileUrl", "fileUrl"),
                ] {
                    if let Some(v) = field(sent) {
                        equal.push((stored, v.clone()));
                    }
                }
                Some(Target {
                    how,
                    list_path: format!("/chat/v1/session/{id}/message"),
                    equal,
                    contact: None,
                    phone: None,
                })
            }
            catalog::Verify::SequenceContact => {
                // /chat/v1/sequence/{id}/contact
                let id = segments
                    .get(4)
                    .filter(|_| segments.get(3) == Some(&"sequence"))?;
                let contact = field("contactId")
                    .and_then(Value::as_str)
                    .map(str::to_ascii_lowercase);
                let phone = field("phoneNumber").and_then(Value::as_str).map(digits);
                if contact.is_none() && phone.is_none() {
                    return None;
                }
                // `sequence.list_contacts` of the step's route family (v2 when documented).
                let list = catalog::lookup_for("sequence.list_contacts", routes)?;
                Some(Target {
                    how,
                    list_path: list.path.replace("{sequence_id}", id),
                    equal: Vec::new(),
                    contact,
                    phone,
                })
            }
        }
    }

    fn matches(&self, obj: &Value, since: Option<Timestamp>) -> bool {
        let recent = |names: &[&str]| {
            let Some(since) = since else { return true };
            names
                .iter()
                .find_map(|n| obj.get(*n).and_then(Value::as_str))
                .and_then(|t| t.parse::<Timestamp>().ok())
                .is_none_or(|t| t >= since)
        };
        match self.how {
            catalog::Verify::SessionMessage => {
                self.equal
                    .iter()
                    .all(|(name, want)| obj.get(*name) == Some(want))
                    && recent(&["createdAt", "timestamp"])
            }
            catalog::Verify::SequenceContact => {
                let by_id = self.contact.as_ref().is_some_and(|c| {
                    obj.get("contactId")
                        .and_then(Value::as_str)
                        .is_some_and(|x| x.eq_ignore_ascii_case(c))
                });
                let by_phone = self.phone.as_ref().is_some_and(|p| {
                    ["phonenumber", "phoneNumber"].iter().any(|n| {
                        obj.get("contactDetails")
                            .and_then(|d| d.get(*n))
                            .and_then(Value::as_str)
                            .is_some_and(|x| digits(x) == *p)
                    })
                });
                (by_id || by_phone) && recent(&["lastAddedAt", "createdAt"])
            }
        }
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::RefCell;

    fn send(text: &str) -> HttpRequest {
        HttpRequest {
            method: Method::Post,
            path: "/chat/v1/session/abc/message".into(),
            query: Vec::new(),
            body: Some(json!({"text": text})),
        }
    }

    fn run(how: catalog::Verify, req: &HttpRequest, pages: &[Value]) -> (Verified, usize) {
        run_claimed(how, req, pages, 0)
    }

    fn run_claimed(
        how: catalog::Verify,
        req: &HttpRequest,
        pages: &[Value],
        claimed: u32,
    ) -> (Verified, usize) {
        let calls = RefCell::new(0usize);
        let since: Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
        let out = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(verify(
                how,
                req,
                Some(since),
                catalog::Routes::Documented,
                claimed,
                |r| {
                    let n = *calls.borrow();
                    *calls.borrow_mut() += 1;
                    assert_eq!(r.method, Method::Get);
                    let page = pages.get(n).cloned();
                    async move { page.ok_or_else(|| "no such page".to_owned()) }
                },
            ));
        let n = *calls.borrow();
        (out, n)
    }

    #[test]
    fn a_message_with_the_same_text_since_the_start_is_found_on_a_later_page() {
        let p1 = json!({"items": [{"text": "bye", "createdAt": "2026-11-25T09:00:00Z"}, {"text": "other", "createdAt": "2026-11-25T10:01:00Z"}], "hasMorePages": true});
        let p2 = json!({"items": [{"id": "m9", "text": "bye", "createdAt": "2026-11-25T10:02:00Z"}], "hasMorePages": false});
        let (v, calls) = run(catalog::Verify::SessionMessage, &send("bye"), &[p1, p2]);
        assert_eq!(calls, 2);
        assert!(matches!(v, Verified::Happened(m) if m["id"] == "m9"));
    }

    #[test]
    fn no_matching_message_means_not_happened_and_a_failed_read_means_cannot() {
        let p1 = json!({"items": [{"text": "bye", "createdAt": "2026-11-25T09:00:00Z"}], "hasMorePages": false});
        let (v, _) = run(catalog::Verify::SessionMessage, &send("bye"), &[p1]);
        assert_eq!(v, Verified::NotHappened);
        let (v, _) = run(catalog::Verify::SessionMessage, &send("bye"), &[]);
        assert!(matches!(v, Verified::Cannot(e) if e.contains("no such page")));
        let (v, _) = run(
            catalog::Verify::SessionMessage,
            &send("bye"),
            &[json!("<html>")],
        );
        assert!(matches!(v, Verified::Cannot(_)));
    }

    #[test]
    fn a_match_another_item_accounts_for_is_not_ours() {
        let p = json!({"items": [{"id": "m1", "text": "bye", "createdAt": "2026-11-25T10:01:00Z"}, {"id": "m2", "text": "bye", "createdAt": "2026-11-25T10:02:00Z"}]});
        let req = send("bye");
        let (v, _) = run_claimed(
            catalog::Verify::SessionMessage,
            &req,
            std::slice::from_ref(&p),
            1,
        );
        assert!(matches!(v, Verified::Happened(m) if m["id"] == "m2"));
        let (v, _) = run_claimed(catalog::Verify::SessionMessage, &req, &[p], 2);
        assert_eq!(v, Verified::NotHappened);
        let key = claim_key(
            catalog::Verify::SessionMessage,
            &req,
            catalog::Routes::Documented,
        );
        assert_eq!(
            key.as_deref(),
            Some(r#"/chat/v1/session/abc/message [["text","bye"]]"#)
        );
    }

    #[test]
    fn an_enrolment_is_found_by_contact_id_or_phone_digits() {
        let req = HttpRequest {
            method: Method::Post,
            path: "/chat/v1/sequence/s1/contact".into(),
            query: Vec::new(),
            body: Some(json!({"phoneNumber": "+55 (11) 99999-0000"})),
        };
        let page = json!({"items": [{"contactId": "c1", "lastAddedAt": "2026-11-25T10:05:00Z", "contactDetails": {"phonenumber": "5511999990000"}}]});
        let (v, _) = run(catalog::Verify::SequenceContact, &req, &[page]);
        assert!(matches!(v, Verified::Happened(_)));
        let req = HttpRequest {
            body: Some(json!({"contactId": "C2"})),
            ..req
        };
        let page = json!({"items": [{"contactId": "c2", "lastAddedAt": "2026-11-24T10:05:00Z"}]});
        let (v, _) = run(catalog::Verify::SequenceContact, &req, &[page]);
        assert_eq!(v, Verified::NotHappened, "enrolled before the run started");
    }
}
