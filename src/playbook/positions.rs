//! Where every key and value of a YAML document stands (line, column), by path.
//!
//! `serde_yaml` gives no spans for values, so the loader also walks the document's events with
//! yaml-rust2's marked parser and records, for each path such as `steps.0.with.session_id`, the
//! position of the key and of the value. Every diagnostic about a playbook uses this index.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column, and the width to underline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
    pub width: usize,
}

/// The positions of one path's key and value.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Entry {
    pub key: Option<Pos>,
    pub value: Pos,
}

/// Path → positions, for a whole document.
#[derive(Debug, Default)]
pub struct Positions {
    map: HashMap<String, Entry>,
}

impl Positions {
    /// Builds the index; a document that does not parse gives an empty index (the syntax error
    /// itself is reported from `serde_yaml`).
    pub fn index(source: &str) -> Positions {
        let mut rx = Receiver::default();
        let mut parser = Parser::new_from_str(source);
        if parser.load(&mut rx, false).is_err() {
            return Positions::default();
        }
        Positions { map: rx.map }
    }

    /// The key's position if the path is a mapping entry, else the value's.
    pub fn key(&self, path: &str) -> Option<Pos> {
        self.map.get(path).map(|e| e.key.unwrap_or(e.value))
    }

    pub fn value(&self, path: &str) -> Option<Pos> {
        self.map.get(path).map(|e| e.value)
    }

    /// Where to point for a problem with the key of `path` (its value, or the nearest parent,
    /// when it has no key or is not in the index).
    pub fn key_or_nearest(&self, path: &str) -> Pos {
        self.key(path).unwrap_or_else(|| self.nearest(path))
    }

    /// Where to point for a problem with the value of `path` (or the nearest parent).
    pub fn value_or_nearest(&self, path: &str) -> Pos {
        self.value(path).unwrap_or_else(|| self.nearest(path))
    }

    /// The value position of the longest existing prefix of `path` (so a problem deep in a value
    /// that is not in the index still points somewhere close).
    pub fn nearest(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if let Some(e) = self.map.get(p) {
                return e.value;
            }
            match p.rfind('.') {
                Some(i) => p = &p[..i],
                None => return self.map.get("").map(|e| e.value).unwrap_or_default(),
            }
        }
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

#[derive(Default)]
struct Receiver {
    stack: Vec<Frame>,
    map: HashMap<String, Entry>,
    pending_key: Option<Pos>,
}

/// `parent.seg`, or `seg` at the root: the path syntax of this index (`steps.0.with.id`).
pub(crate) fn join(parent: &str, seg: &str) -> String {
    if parent.is_empty() {
        seg.to_owned()
    } else {
        format!("{parent}.{seg}")
    }
}

fn pos(mark: Marker, width: usize) -> Pos {
    Pos {
        line: mark.line(),
        column: mark.col() + 1,
        width: width.max(1),
    }
}

impl Receiver {
    /// Path of the value about to start (advances sequence indices); None when a key is expected.
    fn value_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map { path, key }) => key.take().map(|k| join(path, &k)),
            Some(Frame::Seq { path, next }) => {
                let p = join(path, &next.to_string());
                *next += 1;
                Some(p)
            }
        }
    }

    fn record(&mut self, path: &str, value: Pos) {
        let key = self.pending_key.take();
        self.map.insert(path.to_owned(), Entry { key, value });
    }
}

impl MarkedEventReceiver for Receiver {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, style, _, _) => {
                // A quoted scalar's marker is at the quote.
                let quoted = !matches!(style, yaml_rust2::scanner::TScalarStyle::Plain);
                let width = text.chars().count() + if quoted { 2 } else { 0 };
                if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                    if key.is_none() {
                        *key = Some(text);
                        self.pending_key = Some(pos(mark, width));
                        return;
                    }
                }
                if let Some(path) = self.value_path() {
                    self.record(&path, pos(mark, width));
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = self.value_path().unwrap_or_default();
                self.record(&path, pos(mark, 1));
                self.stack.push(if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map { path, key: None }
                } else {
                    Frame::Seq { path, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(_) => {
                if let Some(path) = self.value_path() {
                    self.record(&path, pos(mark, 1));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_keys_and_values() {
        let src =
            "version: 1\nsteps:\n  - id: close\n    with:\n      session_id: \"{{ row.id }}\"\n";
        let p = Positions::index(src);
        assert_eq!(
            p.key("version"),
            Some(Pos {
                line: 1,
                column: 1,
                width: 7
            })
        );
        assert_eq!(p.value("version").unwrap().column, 10);
        assert_eq!(p.key("steps.0.id").unwrap().line, 3);
        assert_eq!(p.key("steps.0.id").unwrap().column, 5);
        let v = p.value("steps.0.with.session_id").unwrap();
        assert_eq!((v.line, v.column, v.width), (5, 19, 14));
        assert_eq!(p.nearest("steps.0.with.nope").line, 5);
    }
}
