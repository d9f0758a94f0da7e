//! The items of a step's fan-out: rows streamed from an input, the list an expression gives
//! (an earlier step's results, each with its row), or the one item of a step without fan-out.

use std::sync::Arc;

use minijinja::Value as JValue;

use super::{list_context, Base, SourceItem};
use crate::inputs;
use crate::program::{Program, Source, StepPlan};
use crate::template::{self, Placeholder};

/// The items of a step's fan-out.
pub(crate) enum Items {
    Single(Option<SourceItem>),
    Rows(Box<inputs::Rows>, Arc<str>),
    List(std::vec::IntoIter<SourceItem>),
}

impl Iterator for Items {
    type Item = Result<SourceItem, String>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Items::Single(s) => s.take().map(Ok),
            Items::Rows(rows, input) => rows.next().map(|r| {
                r.map(|row| {
                    let row = Arc::new(row);
                    let value = row.clone().into_value();
                    SourceItem {
                        input: Some(input.clone()),
                        index: row.index as u64,
                        key: row.key.clone(),
                        line: Some(row.line),
                        item: value.clone(),
                        row: value,
                    }
                })
                .map_err(|d| d.render())
            }),
            Items::List(it) => it.next().map(Ok),
        }
    }
}

/// A step's fan-out: its items, how many there are, and whether the list is a placeholder (a
/// dry run cannot know it: one representative item stands for it).
pub(crate) struct Fanout {
    pub(crate) items: Items,
    pub(crate) total: u64,
    pub(crate) open_list: bool,
}

impl Fanout {
    fn known(items: Items, total: u64) -> Fanout {
        Fanout {
            items,
            total,
            open_list: false,
        }
    }
}

/// The items of `step`'s fan-out, given the finished steps (`steps`).
pub(crate) fn items_of(
    program: &Program,
    base: &Base,
    step: &StepPlan,
    steps: &JValue,
) -> Result<Fanout, String> {
    match &step.source {
        Source::Single => Ok(Fanout::known(Items::Single(Some(SourceItem::single())), 1)),
        Source::Input(name) => {
            let info = &program.inputs[name];
            // Validation has just checked every row (keys included): stream without keeping keys.
            let rows = inputs::open(&info.spec)
                .map_err(|d| d.render())?
                .already_checked();
            Ok(Fanout::known(
                Items::Rows(Box::new(rows), Arc::from(name.as_str())),
                info.rows,
            ))
        }
        Source::Expr { expr, row_input } => {
            let input: Option<Arc<str>> = row_input.as_deref().map(Arc::from);
            let ctx = list_context(base, steps);
            let list = expr.eval(&ctx).map_err(|e| {
                format!(
                    "for_each `{}`: {}",
                    expr.source,
                    template::describe_in(&e, &expr.variables(), &ctx)
                )
            })?;
            if list.downcast_object_ref::<Placeholder>().is_some() {
                // A dry run cannot know the list: show one representative item.
                let p = Placeholder::value(format!("{}[*]", expr.source));
                let si = SourceItem {
                    input: None,
                    index: 0,
                    key: "<each>".into(),
                    line: None,
                    item: p.clone(),
                    row: JValue::UNDEFINED,
                };
                return Ok(Fanout {
                    items: Items::List(vec![si].into_iter()),
                    total: 1,
                    open_list: true,
                });
            }
            if list.is_undefined() || list.is_none() {
                // An earlier step that failed has no output: nothing to do here.
                return Ok(Fanout::known(Items::List(Vec::new().into_iter()), 0));
            }
            if !matches!(
                list.kind(),
                minijinja::value::ValueKind::Seq | minijinja::value::ValueKind::Iterable
            ) {
                let shown = list.to_string();
                return Err(format!(
                    "step `{}`: for_each `{}` must give a list, got {} `{}`",
                    step.id,
                    expr.source,
                    kind_name(&list),
                    crate::api_error::truncate(&shown, 60)
                ));
            }
            let iter = list.try_iter().map_err(|e| {
                format!(
                    "for_each `{}` is not a list: {}",
                    expr.source,
                    template::describe(&e)
                )
            })?;
            let mut out = Vec::new();
            for (i, item) in iter.enumerate() {
                let row = item
                    .get_attr("row")
                    .ok()
                    .filter(|r| !r.is_undefined() && !r.is_none())
                    .unwrap_or(JValue::UNDEFINED);
                let key = ["key", "id"]
                    .iter()
                    .find_map(|k| {
                        item.get_attr(k)
                            .ok()
                            .filter(|v| !v.is_undefined() && !v.is_none())
                            .map(|v| v.to_string())
                    })
                    .unwrap_or_else(|| (i + 1).to_string());
                // An earlier step's result carries its row's `line`; a CSV row itself has one.
                let line = item
                    .get_attr("line")
                    .ok()
                    .and_then(|v| u64::try_from(v).ok())
                    .or_else(|| {
                        [&item, &row]
                            .into_iter()
                            .find_map(|v| v.downcast_object_ref::<inputs::Row>().map(|r| r.line))
                    });
                out.push(SourceItem {
                    input: input.clone(),
                    index: i as u64,
                    key,
                    line,
                    item,
                    row,
                });
            }
            let n = out.len() as u64;
            Ok(Fanout::known(Items::List(out.into_iter()), n))
        }
    }
}

/// "a string", "a map", … for messages.
pub(crate) fn kind_name(v: &JValue) -> &'static str {
    use minijinja::value::ValueKind;
    match v.kind() {
        ValueKind::Undefined => "an undefined value",
        ValueKind::None => "none",
        ValueKind::Bool => "a boolean",
        ValueKind::Number => "a number",
        ValueKind::String => "a string",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq | ValueKind::Iterable => "a list",
        ValueKind::Map => "a map",
        ValueKind::Plain => "an object",
        ValueKind::Invalid => "an invalid value",
        _ => "a value",
    }
}
