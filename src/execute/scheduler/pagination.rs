//! Pagination: `paginate: all` (or a page count) follows `hasMorePages` page by page, same
//! size and filters on each, merging `items`, within `max_pages` and `max_items`; every page
//! is read before the step ends. A page that is not a page envelope fails the step.

use std::time::Instant;

use indexmap::IndexMap;
use minijinja::Value as JValue;
use serde_json::Value;

use super::{Done, Sender, Shared};
use crate::catalog::ActionSpec;
use crate::plan;
use crate::program::PageBound;
use crate::report::ItemStatus;
use crate::template;
/// `paginate`: every page before the step ends, same size and filters on each, within the
/// bound. A `paginate: all` listing cut by `max_pages` / `max_items` while the server still has
/// more fails the step, unless `partial_listing: accept`.
pub(super) async fn read_pages(
    shared: &Shared,
    sender: &Sender<'_>,
    spec: &'static ActionSpec,
    mut params: IndexMap<String, Value>,
    bound: PageBound,
    started: Instant,
) -> Done {
    let mut merged: Vec<Value> = Vec::new();
    let mut first: Option<Done> = None;
    let mut attempts = 0;
    let mut page = params
        .get("page_number")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let mut last = Value::Null;
    let mut pages_read = 0u32;
    let mut more = false;
    while pages_read < bound.pages {
        params.insert("page_number".into(), Value::from(page));
        let req = match plan::request(spec, &params, false) {
            Ok(r) => r,
            Err(e) => return Done::failed(e.0, started),
        };
        let done = sender.send(req).await;
        attempts += done.attempts;
        if done.status != ItemStatus::Succeeded {
            return Done {
                attempts,
                error: done.error.map(|e| format!("page {page}: {e}")),
                ..done
            };
        }
        let body = template::to_json(&done.output);
        if let Some(e) = not_a_page(&body) {
            return Done {
                attempts,
                status: ItemStatus::Failed,
                error: Some(format!("page {page}: {e}")),
                output: JValue::from(()),
                ..done
            };
        }
        pages_read += 1;
        // The page envelope; some legacy routes answer a bare array (one page; api-notes "Two route families").
        let items = match &body {
            Value::Array(items) => items.clone(),
            _ => body
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        };
        more = body
            .get("hasMorePages")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let empty = items.is_empty();
        merged.extend(items);
        last = body;
        if first.is_none() {
            first = Some(done);
        }
        if empty {
            more = false;
        }
        if !more || bound.items.is_some_and(|max| merged.len() as u64 >= max) {
            break;
        }
        page += 1;
    }
    let cut = cut_listing(shared, &mut merged, bound, pages_read, more);
    let out = merged_page(&last, more, page, cut.is_some(), merged);
    let mut done = first.unwrap_or_else(|| Done::new(ItemStatus::Succeeded, started));
    done.attempts = attempts;
    if let Some(cut) = cut {
        if shared.program.settings.accept_partial {
            tracing::warn!(step = %sender.step.id, "{cut}; accepted (partial_listing: accept)");
            done.reason = Some(format!("{cut}; accepted (partial_listing: accept)"));
        } else {
            done.status = ItemStatus::Failed;
            done.error = Some(format!(
                "{cut}; raise the bounds, or set `partial_listing: accept` to use what was read"
            ));
            done.output = JValue::from(());
            return done;
        }
    }
    done.output = template::from_json(&out);
    done
}

/// Cut: `paginate: all` stopped by a bound while the server had more. Keeps at most the bound's
/// items; says how the listing was cut.
fn cut_listing(
    shared: &Shared,
    merged: &mut Vec<Value>,
    bound: PageBound,
    pages_read: u32,
    more: bool,
) -> Option<String> {
    let max_items = bound.items?;
    let too_many = merged.len() as u64 > max_items;
    if too_many {
        merged.truncate(usize::try_from(max_items).unwrap_or(usize::MAX));
    }
    if !(more || too_many) {
        return None;
    }
    let s = &shared.program.settings;
    Some(format!(
        "listing cut at {pages_read} pages and {} items by the bounds of `paginate: all` \
         (settings.max_pages {}, settings.max_items {}) while the server had more",
        merged.len(),
        s.max_pages,
        s.max_items
    ))
}

/// The pages read as one page envelope: the last page's totals, every item.
fn merged_page(last: &Value, more: bool, page: u64, partial: bool, merged: Vec<Value>) -> Value {
    let mut out = serde_json::Map::new();
    out.insert(
        "totalItems".into(),
        last.get("totalItems").cloned().unwrap_or(Value::Null),
    );
    out.insert(
        "totalPages".into(),
        last.get("totalPages").cloned().unwrap_or(Value::Null),
    );
    out.insert("hasMorePages".into(), Value::Bool(more));
    out.insert(
        "pageSize".into(),
        last.get("pageSize").cloned().unwrap_or(Value::Null),
    );
    out.insert("pages".into(), Value::from(page));
    out.insert("partial".into(), Value::Bool(partial));
    out.insert("items".into(), Value::Array(merged));
    Value::Object(out)
}

/// Why a list answer is not a page: neither a bare array nor an object with an `items` array.
pub(super) fn not_a_page(body: &Value) -> Option<String> {
    match body {
        Value::Array(_) => None,
        Value::Object(o) if o.get("items").is_some_and(Value::is_array) => None,
        other => Some(format!(
            "the answer is not a page of items (no `items` list): {}",
            crate::api_error::truncate(&other.to_string(), 80)
        )),
    }
}
