//! One CSV data row: its values, key and line, and its view in templates (`row.column`,
//! `row["a column"]`, `row | items`) as a minijinja map object.

use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use serde_json::Map;

use super::header::Header;

/// A data row of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 0-based position among the data rows (the item index in a fan-out).
    pub index: usize,
    /// 1-based physical line where the record starts (the header is line 1).
    pub line: u64,
    /// The key column's value, or the 1-based row number when the input has no key column.
    pub key: String,
    /// One value per header column.
    pub values: Vec<String>,
    pub header: Arc<Header>,
}

impl Row {
    /// The value of a column by name.
    pub fn get(&self, column: &str) -> Option<&str> {
        self.header
            .position(column)
            .and_then(|i| self.values.get(i))
            .map(String::as_str)
    }

    /// The row as a JSON object, columns in header order, every value a string.
    pub fn to_json(&self) -> Map<String, serde_json::Value> {
        self.header
            .columns
            .iter()
            .zip(&self.values)
            .map(|(c, v)| (c.clone(), serde_json::Value::String(v.clone())))
            .collect()
    }

    /// The row as a template value (a map of column → string).
    pub fn into_value(self: Arc<Self>) -> Value {
        Value::from_dyn_object(self)
    }
}

impl Object for Row {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        key.as_str().and_then(|k| self.get(k)).map(Value::from)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.header
                .columns
                .iter()
                .map(|c| Value::from(c.as_str()))
                .collect(),
        )
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.header.columns.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::{context, Environment, UndefinedBehavior};

    fn row() -> Arc<Row> {
        let header = Arc::new(Header {
            columns: vec!["session_id".into(), "ticket no".into()],
            key_index: Some(0),
        });
        Arc::new(Row {
            index: 0,
            line: 2,
            key: "s1".into(),
            values: vec!["s1".into(), "T-9".into()],
            header,
        })
    }

    fn render(src: &str) -> Result<String, minijinja::Error> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.render_str(src, context! { row => row().into_value() })
    }

    #[test]
    fn renders_columns_by_attribute_and_subscript() {
        assert_eq!(render("{{ row.session_id }}").unwrap(), "s1");
        assert_eq!(render(r#"{{ row["ticket no"] }}"#).unwrap(), "T-9");
    }

    #[test]
    fn iterates_columns_and_items() {
        assert_eq!(
            render("{% for c in row %}{{ c }};{% endfor %}").unwrap(),
            "session_id;ticket no;"
        );
        assert_eq!(
            render("{% for k, v in row | items %}{{ k }}={{ v }};{% endfor %}").unwrap(),
            "session_id=s1;ticket no=T-9;"
        );
        assert_eq!(render("{{ row | length }}").unwrap(), "2");
    }

    #[test]
    fn unknown_column_is_strictly_undefined() {
        let err = render("{{ row.sesion_id }}").unwrap_err();
        assert_eq!(err.kind(), minijinja::ErrorKind::UndefinedError);
    }

    #[test]
    fn json_keeps_header_order() {
        let json = serde_json::Value::Object(row().to_json());
        assert_eq!(json.to_string(), r#"{"session_id":"s1","ticket no":"T-9"}"#);
    }
}
