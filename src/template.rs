//! Templates: the minijinja environment (strict undefined), compilation of `with:` values into
//! render trees, the typed-value rule, and placeholders for values a dry run cannot know.
//!
//! In: YAML values from the playbook. Out: [`Tree`]s that render, per item, into JSON values.
//! A string that is exactly one `{{ expression }}` keeps the expression's type; any other string
//! containing template syntax renders as a string; other scalars are literals.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value as JValue};
use minijinja::{Environment, Expression, Template, UndefinedBehavior};
use serde_json::Value;

use crate::playbook::join;

/// The run's template environment. It lives for the whole process (templates borrow it).
#[derive(Clone, Copy)]
pub struct Env {
    env: &'static Environment<'static>,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Env")
    }
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

impl Env {
    pub fn new() -> Env {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        Env {
            env: Box::leak(Box::new(env)),
        }
    }

    /// Compiles a `with:` value (or a `vars` value) into a render tree.
    pub fn compile(self, value: &Value) -> Result<Tree, CompileError> {
        self.compile_at(value, String::new())
    }

    fn compile_at(self, value: &Value, at: String) -> Result<Tree, CompileError> {
        Ok(match value {
            Value::String(s) => self
                .compile_str(s)
                .map_err(|e| CompileError { at, message: e })?,
            Value::Array(items) => Tree::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.compile_at(v, join(&at, &i.to_string())))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Tree::Map(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.compile_at(v, join(&at, k))?)))
                    .collect::<Result<_, CompileError>>()?,
            ),
            other => Tree::Lit(other.clone()),
        })
    }

    fn compile_str(self, s: &str) -> Result<Tree, String> {
        if !(s.contains("{{") || s.contains("{%") || s.contains("{#")) {
            return Ok(Tree::Lit(Value::String(s.to_owned())));
        }
        let source: &'static str = Box::leak(s.to_owned().into_boxed_str());
        if let Some(inner) = single_expression(source) {
            return self.expression(inner).map(|e| Tree::Expr(Arc::new(e)));
        }
        self.env
            .template_from_str(source)
            .map(|t| Tree::Text(Arc::new(t)))
            .map_err(|e| describe(&e))
    }

    /// Compiles a bare expression (`when`, `for_each`).
    pub fn expression(self, source: &str) -> Result<Expr, String> {
        let source: &'static str = Box::leak(source.to_owned().into_boxed_str());
        self.env
            .compile_expression(source)
            .map(|e| Expr { expr: e, source })
            .map_err(|e| describe(&e))
    }
}

/// `{{ expr }}` with nothing around it and no other tag inside.
fn single_expression(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") || inner.contains("{#")
    {
        return None;
    }
    let inner = inner.trim_start_matches('-').trim_end_matches('-');
    Some(inner.trim())
}

/// A one-line description of a minijinja error (with the detail, not the whole debug dump, nor
/// minijinja's "(in <string>:1)": the caller names the field).
pub(crate) fn describe(e: &minijinja::Error) -> String {
    let mut s = match e.detail() {
        Some(d) => format!("{}: {d}", kind_text(e)),
        None => kind_text(e),
    };
    if let Some(src) = std::error::Error::source(e) {
        s.push_str(&format!(" ({src})"));
    }
    s
}

/// [`describe`], but an undefined value is named, with what is available where it was looked
/// up: "`item.item` is undefined: `item` has id, name". `variables` are the paths the template
/// reads, `ctx` the context it was rendered in.
pub(crate) fn describe_in(
    e: &minijinja::Error,
    variables: &BTreeSet<String>,
    ctx: &JValue,
) -> String {
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        if let Some(why) = variables.iter().find_map(|v| first_undefined(v, ctx)) {
            return why;
        }
    }
    describe(e)
}

/// Walks `path` (`a.b.c`) in `ctx`; at the first part that is undefined, says so and lists the
/// names the value before it has.
fn first_undefined(path: &str, ctx: &JValue) -> Option<String> {
    let mut value = ctx.clone();
    let mut seen = String::new();
    for part in path.split('.') {
        let next = value.get_attr(part).unwrap_or(JValue::UNDEFINED);
        let here = if seen.is_empty() {
            part.to_owned()
        } else {
            format!("{seen}.{part}")
        };
        if next.is_undefined() {
            let available = names_of(&value);
            let what = if seen.is_empty() {
                "the context".to_owned()
            } else {
                format!("`{seen}`")
            };
            return Some(if value.is_none() {
                format!("`{here}` is undefined: `{seen}` is none")
            } else if available.is_empty() {
                format!("`{here}` is undefined: {what} has no fields")
            } else {
                let hint =
                    crate::diagnostic::did_you_mean(part, available.iter().map(String::as_str))
                        .map_or_else(String::new, |h| format!(" ({h})"));
                format!(
                    "`{here}` is undefined{hint}: {what} has {}",
                    available.join(", ")
                )
            });
        }
        value = next;
        seen = here;
    }
    None
}

/// The keys of a map-like value (at most 20), sorted.
fn names_of(v: &JValue) -> Vec<String> {
    if v.kind() != minijinja::value::ValueKind::Map {
        return Vec::new();
    }
    let mut names: Vec<String> = v
        .try_iter()
        .map(|it| it.take(21).map(|k| k.to_string()).collect())
        .unwrap_or_default();
    names.sort();
    if names.len() > 20 {
        names.truncate(20);
        names.push("…".into());
    }
    names
}

fn kind_text(e: &minijinja::Error) -> String {
    let s = e.kind().to_string();
    s.trim_end_matches('.').to_owned()
}

/// A compile error, with the path inside the value (`a.b.0`) where it happened.
#[derive(Debug, Clone)]
pub struct CompileError {
    pub at: String,
    pub message: String,
}

/// A compiled expression.
pub struct Expr {
    expr: Expression<'static, 'static>,
    pub source: &'static str,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

impl Expr {
    pub fn eval(&self, ctx: &JValue) -> Result<JValue, minijinja::Error> {
        self.expr.eval(ctx)
    }

    /// Every variable path the expression reads (`row.id`, `steps.a.output`).
    pub fn variables(&self) -> BTreeSet<String> {
        self.expr.undeclared_variables(true).into_iter().collect()
    }
}

/// A compiled value: literal, template, typed expression, or a structure of them.
#[derive(Clone)]
pub enum Tree {
    Lit(Value),
    Text(Arc<Template<'static, 'static>>),
    Expr(Arc<Expr>),
    Map(Vec<(String, Tree)>),
    List(Vec<Tree>),
}

impl fmt::Debug for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tree::Lit(v) => write!(f, "Lit({v})"),
            Tree::Text(t) => write!(f, "Text({:?})", t.source()),
            Tree::Expr(e) => write!(f, "{e:?}"),
            Tree::Map(m) => f
                .debug_map()
                .entries(m.iter().map(|(k, v)| (k, v)))
                .finish(),
            Tree::List(l) => f.debug_list().entries(l).finish(),
        }
    }
}

impl Tree {
    /// Renders into JSON. Errors carry the path inside the value.
    pub fn render(&self, ctx: &JValue) -> Result<Value, (String, minijinja::Error)> {
        self.render_at(ctx, "")
    }

    fn render_at(&self, ctx: &JValue, at: &str) -> Result<Value, (String, minijinja::Error)> {
        match self {
            Tree::Lit(v) => Ok(v.clone()),
            Tree::Text(t) => t
                .render(ctx)
                .map(Value::String)
                .map_err(|e| (at.to_owned(), e)),
            Tree::Expr(e) => {
                let v = e.eval(ctx).map_err(|e| (at.to_owned(), e))?;
                Ok(to_json(&v))
            }
            Tree::Map(m) => {
                let mut out = serde_json::Map::with_capacity(m.len());
                for (k, t) in m {
                    out.insert(k.clone(), t.render_at(ctx, &join(at, k))?);
                }
                Ok(Value::Object(out))
            }
            Tree::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, t)| t.render_at(ctx, &join(at, &i.to_string())))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
        }
    }

    /// Every variable path the tree's templates read.
    pub fn variables(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut BTreeSet<String>) {
        match self {
            Tree::Lit(_) => {}
            Tree::Text(t) => out.extend(t.undeclared_variables(true)),
            Tree::Expr(e) => out.extend(e.variables()),
            Tree::Map(m) => m.iter().for_each(|(_, t)| t.collect(out)),
            Tree::List(l) => l.iter().for_each(|t| t.collect(out)),
        }
    }

    /// True when the tree is a literal (no template anywhere).
    pub fn is_literal(&self) -> bool {
        match self {
            Tree::Lit(_) => true,
            Tree::Text(_) | Tree::Expr(_) => false,
            Tree::Map(m) => m.iter().all(|(_, t)| t.is_literal()),
            Tree::List(l) => l.iter().all(Tree::is_literal),
        }
    }
}

/// minijinja value → JSON (placeholders become their `<path>` text).
pub(crate) fn to_json(v: &JValue) -> Value {
    if let Some(p) = v.downcast_object_ref::<Placeholder>() {
        return Value::String(p.to_string());
    }
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// JSON → minijinja value.
pub(crate) fn from_json(v: &Value) -> JValue {
    JValue::from_serialize(v)
}

/// Whether a (rendered) value contains a placeholder (a dry run's unknown).
pub(crate) fn has_placeholder(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("<steps."),
        Value::Array(a) => a.iter().any(has_placeholder),
        Value::Object(m) => m.values().any(has_placeholder),
        _ => false,
    }
}

/// A value a dry run cannot know, such as the output of a step that did not run. Any attribute
/// of it is another placeholder; it renders as `<steps.lookup.output.id>`.
#[derive(Debug, Clone)]
pub(crate) struct Placeholder(pub String);

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.0)
    }
}

impl Object for Placeholder {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        let seg = key.as_str().map_or_else(|| key.to_string(), str::to_owned);
        Some(JValue::from_object(Placeholder(format!(
            "{}.{seg}",
            self.0
        ))))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Empty
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Placeholder {
    pub(crate) fn value(path: impl Into<String>) -> JValue {
        JValue::from_object(Placeholder(path.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;
    use serde_json::json;

    #[test]
    fn single_expression_keeps_type() {
        let env = Env::new();
        let ctx = context! { vars => context! { n => 42, flag => true, list => vec![1, 2] } };
        assert_eq!(
            env.compile(&json!("{{ vars.n }}"))
                .unwrap()
                .render(&ctx)
                .unwrap(),
            json!(42)
        );
        assert_eq!(
            env.compile(&json!(" {{ vars.flag }} "))
                .unwrap()
                .render(&ctx)
                .unwrap(),
            json!(true)
        );
        assert_eq!(
            env.compile(&json!("{{ vars.list }}"))
                .unwrap()
                .render(&ctx)
                .unwrap(),
            json!([1, 2])
        );
        assert_eq!(
            env.compile(&json!("n={{ vars.n }}"))
                .unwrap()
                .render(&ctx)
                .unwrap(),
            json!("n=42")
        );
        assert_eq!(
            env.compile(&json!(7)).unwrap().render(&ctx).unwrap(),
            json!(7)
        );
        let nested = env.compile(&json!({"a": ["{{ vars.n }}", "x"]})).unwrap();
        assert_eq!(nested.render(&ctx).unwrap(), json!({"a": [42, "x"]}));
    }

    #[test]
    fn strict_undefined_is_an_error() {
        let env = Env::new();
        let ctx = context! { vars => context! { n => 1 } };
        let t = env.compile(&json!({"x": "hello {{ vars.nope }}"})).unwrap();
        let (at, e) = t.render(&ctx).unwrap_err();
        assert_eq!(at, "x");
        assert!(describe(&e).contains("undefined"), "{}", describe(&e));
    }

    #[test]
    fn an_undefined_value_is_named_with_what_is_there() {
        let env = Env::new();
        let ctx =
            context! { item => context! { id => 7, name => "Ana" }, vars => context! { n => 1 } };
        let t = env.compile(&json!("{{ item.item.id }}")).unwrap();
        let (_, e) = t.render(&ctx).unwrap_err();
        assert_eq!(
            describe_in(&e, &t.variables(), &ctx),
            "`item.item` is undefined: `item` has id, name"
        );
        let t = env.compile(&json!("x {{ item.nmae }}")).unwrap();
        let (_, e) = t.render(&ctx).unwrap_err();
        assert_eq!(
            describe_in(&e, &t.variables(), &ctx),
            "`item.nmae` is undefined (did you mean `name`?): `item` has id, name"
        );
        let t = env.compile(&json!("hello {{ vars.nope }}")).unwrap();
        let (_, e) = t.render(&ctx).unwrap_err();
        assert_eq!(
            describe_in(&e, &t.variables(), &ctx),
            "`vars.nope` is undefined: `vars` has n"
        );
        assert!(!describe(&e).contains("<string>"), "{}", describe(&e));
    }

    #[test]
    fn variables_are_nested_paths() {
        let env = Env::new();
        let t = env
            .compile(
                &json!({"a": "{{ row.id }}", "b": "{{ steps.lookup.output.id }}-{{ vars.x }}"}),
            )
            .unwrap();
        let vars = t.variables();
        assert!(vars.contains("row.id"), "{vars:?}");
        assert!(vars.contains("steps.lookup.output.id"), "{vars:?}");
        assert!(vars.contains("vars.x"), "{vars:?}");
    }

    #[test]
    fn syntax_error_is_reported() {
        let env = Env::new();
        let e = env.compile(&json!({"a": "{{ row.id "})).unwrap_err();
        assert_eq!(e.at, "a");
        assert!(e.message.contains("syntax error"), "{}", e.message);
    }

    #[test]
    fn placeholders_render_their_path() {
        let env = Env::new();
        let ctx = context! { steps => context! { lookup => context! { output => Placeholder::value("steps.lookup.output") } } };
        let t = env.compile(&json!({"id": "{{ steps.lookup.output.id }}", "t": "x {{ steps.lookup.output.name }}"})).unwrap();
        let v = t.render(&ctx).unwrap();
        assert_eq!(
            v,
            json!({"id": "<steps.lookup.output.id>", "t": "x <steps.lookup.output.name>"})
        );
        assert!(has_placeholder(&v));
    }
}
