//! `--accounts FILE`: one playbook over a fleet of accounts (README, "Many accounts").
//!
//! In: the accounts CSV and the environment. Out: a validated [`Fleet`] (each [`Account`] with
//! its token, base URL, vars and per-account input files), the `--shard I/N` selection
//! ([`Shard`], [`shard_of`]) and the check of an input split by an `account` column
//! ([`check_split`]). Every problem is a [`Diagnostic`] with file, line and column; a token is
//! never part of one.
//!
//! The file's columns:
//! - `name` (required): the account's name, `[A-Za-z0-9_.-]`, at most 64 characters, unique;
//!   it names the account in the report and its part file (`REPORT.accounts/NAME.json`);
//! - `token_env`: the environment variable holding the token, or `token_file`: a file (relative
//!   to the accounts file) whose content, trimmed, is the token. One of them per row;
//! - `base_url` (optional): the account's API address (else `WTS_BASE_URL`, else the API's);
//! - `input.NAME` (optional): the account's own file for the playbook's input `NAME`;
//! - any other column is a var, read by templates as `account.COLUMN` (`account.name` too).
//!
//! Sharding: `shard_of(name, N)` is `1 + (u64::from_be_bytes(SHA-256(name)[0..8]) mod N)`, the
//! same on every machine and every version, so `--shard I/N` on N machines runs every account
//! exactly once with no coordination.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use sha2::{Digest, Sha256};

use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::inputs::{self, InputSpec};
use crate::secret::Secret;

/// The column naming an account.
pub(crate) const NAME: &str = "name";
/// The column naming the environment variable that holds an account's token.
pub(crate) const TOKEN_ENV: &str = "token_env";
/// The column naming a file that holds an account's token.
pub(crate) const TOKEN_FILE: &str = "token_file";
/// The column of an account's base URL.
pub(crate) const BASE_URL: &str = "base_url";
/// The prefix of the columns giving an account's own input files (`input.stale`).
pub(crate) const INPUT_PREFIX: &str = "input.";
/// The column of an input that splits its rows per account.
pub(crate) const SPLIT_COLUMN: &str = "account";
/// The longest account name.
const MAX_NAME: usize = 64;
/// The largest accounts file read (bytes).
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// One account of the fleet.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub(crate) name: String,
    pub(crate) token: Secret,
    pub(crate) base_url: Option<String>,
    /// The var columns' values, in file order (`account.COLUMN`).
    pub(crate) vars: IndexMap<String, String>,
    /// The account's own input files (`input.NAME` columns), resolved against the file's
    /// directory; an empty cell leaves the playbook's file.
    pub(crate) inputs: IndexMap<String, PathBuf>,
}

impl Account {
    /// What templates see as `account`: `name` and the vars.
    pub(crate) fn template_value(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert(NAME.to_owned(), self.name.clone().into());
        for (k, v) in &self.vars {
            m.insert(k.clone(), v.clone().into());
        }
        serde_json::Value::Object(m)
    }
}

/// The accounts of a run, as the file lists them (less those of other shards).
#[derive(Debug, Clone)]
pub(crate) struct Fleet {
    pub(crate) accounts: Vec<Account>,
    /// Every account name of the file, whatever the shard (a split input's rows may name any).
    pub(crate) all_names: Vec<String>,
    /// The environment variables that hold tokens (templates may not read them).
    pub(crate) token_envs: Vec<String>,
}

impl Fleet {
    /// Reads and checks an accounts file; `env` looks up an environment variable.
    pub(crate) fn load(
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Fleet, Vec<Diagnostic>> {
        let text = read_file(path).map_err(|d| vec![d])?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut records = reader.byte_records();
        let Some(header) = records.next() else {
            return Err(vec![Diagnostic::file(path, "the accounts file is empty")
                .with_hint(
                "its first line names the columns: name,token_env (and base_url, input.NAME, vars)",
            )]);
        };
        let header = header.map_err(|e| vec![csv_error(path, &text, &e)])?;
        let file = Layout::of(path, &text, &header)?;
        let mut diags = Vec::new();
        let mut accounts: Vec<Account> = Vec::new();
        let mut names: HashMap<String, u64> = HashMap::new();
        let mut token_envs = Vec::new();
        for record in records {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    diags.push(csv_error(path, &text, &e));
                    break;
                }
            };
            let line = record.position().map_or(0, csv::Position::line);
            if record.iter().all(<[u8]>::is_empty) {
                continue;
            }
            let values = match file.values(line, &record) {
                Ok(v) => v,
                Err(d) => {
                    diags.extend(d);
                    continue;
                }
            };
            let name = values[file.name].clone();
            if let Some(first) = names.get(&name) {
                diags.push(
                    file.at(line, file.name)(format!(
                        "account `{name}` on line {line} was already listed on line {first}"
                    ))
                    .with_hint("each account is listed once"),
                );
                continue;
            }
            names.insert(name, line);
            match file.account(line, &values, &env, &mut token_envs) {
                Ok(a) => accounts.push(a),
                Err(d) => diags.push(d),
            }
        }
        if accounts.is_empty() && diags.is_empty() {
            diags.push(Diagnostic::file(path, "the accounts file lists no account"));
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        Ok(Fleet {
            all_names: accounts.iter().map(|a| a.name.clone()).collect(),
            accounts,
            token_envs,
        })
    }

    /// Only the accounts of this shard (every name is kept in `all_names`).
    #[must_use]
    pub(crate) fn only_shard(mut self, shard: Shard) -> Fleet {
        self.accounts
            .retain(|a| shard_of(&a.name, shard.count) == shard.index);
        self
    }

    /// Every token of the file (all shards), for the redactor.
    pub(crate) fn tokens(&self) -> Vec<String> {
        self.accounts
            .iter()
            .map(|a| a.token.expose().to_owned())
            .collect()
    }
}

/// The accounts file's columns, and where its rows' problems point.
struct Layout<'a> {
    path: &'a Path,
    text: &'a str,
    dir: PathBuf,
    columns: Vec<String>,
    name: usize,
    token_env: Option<usize>,
    token_file: Option<usize>,
    base_url: Option<usize>,
    vars: Vec<String>,
}

impl<'a> Layout<'a> {
    /// The header's columns, checked: every problem of the header line.
    fn of(
        path: &'a Path,
        text: &'a str,
        header: &csv::ByteRecord,
    ) -> Result<Self, Vec<Diagnostic>> {
        let columns: Vec<String> = header
            .iter()
            .map(|f| String::from_utf8_lossy(f).trim().to_owned())
            .collect();
        let at = |field: usize| pointer(path, text, 1, field);
        let mut diags = Vec::new();
        let mut seen = HashSet::new();
        let reserved = [NAME, TOKEN_ENV, TOKEN_FILE, BASE_URL];
        for (i, c) in columns.iter().enumerate() {
            if !seen.insert(c.as_str()) {
                diags.push(at(i)(format!("column `{c}` appears twice")));
            } else if let Some(input) = c.strip_prefix(INPUT_PREFIX) {
                if input.is_empty() {
                    diags.push(at(i)("`input.` names no input".to_owned()).with_hint("`input.NAME` gives each account its own file for the playbook's input NAME"));
                }
            } else if !reserved.contains(&c.as_str()) && !is_identifier(c) {
                diags.push(
                    at(i)(format!(
                        "column `{c}` cannot be a var: templates read it as `account.{c}`"
                    ))
                    .with_hint(
                        "name a var with letters, digits and `_` (not starting with a digit)",
                    ),
                );
            }
        }
        let col = |name: &str| columns.iter().position(|c| c == name);
        let Some(name) = col(NAME) else {
            let hint = did_you_mean(NAME, columns.iter().map(String::as_str))
                .unwrap_or_else(|| format!("columns: {}", columns.join(", ")));
            diags.push(at(0)("the accounts file has no `name` column".to_owned()).with_hint(hint));
            return Err(diags);
        };
        let (token_env, token_file) = (col(TOKEN_ENV), col(TOKEN_FILE));
        if token_env.is_none() && token_file.is_none() {
            diags.push(
                at(0)("the accounts file has no `token_env` (or `token_file`) column".to_owned())
                    .with_hint("each account's token is read from the environment variable `token_env` names (or the file `token_file` names), never from this file"),
            );
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        let vars = columns
            .iter()
            .filter(|c| !reserved.contains(&c.as_str()) && !c.starts_with(INPUT_PREFIX))
            .cloned()
            .collect();
        Ok(Layout {
            path,
            text,
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            base_url: col(BASE_URL),
            columns,
            name,
            token_env,
            token_file,
            vars,
        })
    }

    fn at(&self, line: u64, field: usize) -> impl Fn(String) -> Diagnostic + '_ {
        pointer(self.path, self.text, line, field)
    }

    /// A row's values, trimmed; its field count, UTF-8 and account name checked.
    fn values(&self, line: u64, record: &csv::ByteRecord) -> Result<Vec<String>, Vec<Diagnostic>> {
        if record.len() != self.columns.len() {
            return Err(vec![self.at(line, 0)(format!(
                "line {line} has {} field(s), the header has {}",
                record.len(),
                self.columns.len()
            ))]);
        }
        let mut values = Vec::with_capacity(record.len());
        let mut diags = Vec::new();
        for (i, f) in record.iter().enumerate() {
            if let Ok(s) = std::str::from_utf8(f) {
                values.push(s.trim().to_owned());
            } else {
                diags.push(
                    self.at(line, i)(format!("line {line} is not valid UTF-8"))
                        .with_hint("save the file as UTF-8"),
                );
                values.push(String::new());
            }
        }
        if let Err(why) = check_name(&values[self.name]) {
            diags.push(self.at(line, self.name)(why));
        }
        if diags.is_empty() {
            Ok(values)
        } else {
            Err(diags)
        }
    }

    /// The account of a row: its token (from the environment or its file), base URL, vars
    /// and input files.
    fn account(
        &self,
        line: u64,
        values: &[String],
        env: &impl Fn(&str) -> Option<String>,
        token_envs: &mut Vec<String>,
    ) -> Result<Account, Diagnostic> {
        let name = values[self.name].clone();
        let token = self.token(line, &name, values, env, token_envs)?;
        let base_url = self
            .base_url
            .map(|c| values[c].clone())
            .filter(|v| !v.is_empty());
        if let Some(url) = &base_url {
            if let Err(why) = check_url(url) {
                return Err(self.at(line, self.base_url.unwrap_or(0))(format!(
                    "account `{name}`: base_url `{url}` {why}"
                )));
            }
        }
        let mut vars = IndexMap::new();
        let mut inputs = IndexMap::new();
        for (c, v) in self.columns.iter().zip(values) {
            if let Some(input) = c.strip_prefix(INPUT_PREFIX) {
                if !v.is_empty() {
                    inputs.insert(input.to_owned(), self.dir.join(v));
                }
            } else if self.vars.contains(c) {
                vars.insert(c.clone(), v.clone());
            }
        }
        Ok(Account {
            name,
            token,
            base_url,
            vars,
            inputs,
        })
    }

    fn token(
        &self,
        line: u64,
        name: &str,
        values: &[String],
        env: &impl Fn(&str) -> Option<String>,
        token_envs: &mut Vec<String>,
    ) -> Result<Secret, Diagnostic> {
        let cell = |c: Option<usize>| c.map(|c| values[c].clone()).filter(|v| !v.is_empty());
        let env_at = self.at(line, self.token_env.or(self.token_file).unwrap_or(0));
        match (cell(self.token_env), cell(self.token_file)) {
            (Some(_), Some(_)) => Err(env_at(format!(
                "account `{name}` names both a `token_env` and a `token_file`"
            ))
            .with_hint("give one of them")),
            (None, None) => Err(env_at(format!(
                "account `{name}` names no token (`token_env` or `token_file`)"
            ))),
            (Some(var), None) => {
                token_envs.push(var.clone());
                match env(&var).filter(|t| !t.trim().is_empty()) {
                    Some(t) => Ok(Secret::new(t.trim())),
                    None => Err(env_at(format!(
                        "account `{name}`: the environment variable `{var}` is not set"
                    ))
                    .with_hint(format!("export {var}=pn_… (its token)"))),
                }
            }
            (None, Some(file)) => {
                let p = self.dir.join(&file);
                read_token(&p).map_err(|why| {
                    self.at(line, self.token_file.unwrap_or(0))(format!(
                        "account `{name}`: token file {}: {why}",
                        p.display()
                    ))
                })
            }
        }
    }
}

/// `--shard I/N`: run the accounts whose name hashes to shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) index: u32,
    pub(crate) count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a shard: expected I/N with 1 ≤ I ≤ N (`--shard 2/4`)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard (1-based) of `count` an account name belongs to: the first 8 bytes of the
/// SHA-256 of its UTF-8 bytes, big-endian, modulo `count`, plus one.
pub(crate) fn shard_of(name: &str, count: u32) -> u32 {
    let digest = Sha256::digest(name.as_bytes());
    let mut first = [0_u8; 8];
    first.copy_from_slice(&digest[..8]);
    let n = u64::from_be_bytes(first) % u64::from(count.max(1));
    u32::try_from(n).unwrap_or(0) + 1
}

/// The problems of an input split by its `account` column: a row naming an account the
/// accounts file does not list (at most `max` of them). `Ok(false)`: the input has no such
/// column (it is not split).
pub(crate) fn check_split(
    spec: &InputSpec,
    names: &[String],
    max: usize,
) -> Result<bool, Vec<Diagnostic>> {
    let header = inputs::read_header(spec).map_err(|d| vec![d])?;
    let Some(col) = header.position(SPLIT_COLUMN) else {
        return Ok(false);
    };
    let known: HashSet<&str> = names.iter().map(String::as_str).collect();
    let mut diags = Vec::new();
    for row in inputs::open(spec).map_err(|d| vec![d])?.already_checked() {
        let Ok(row) = row else { continue }; // the input's own check reports it
        let value = row.values.get(col).map_or("", String::as_str);
        if !known.contains(value) {
            let text = line_text(&spec.path, row.line);
            let column = text
                .as_deref()
                .and_then(|t| {
                    inputs::field_start(t.as_bytes(), spec.delimiter, col)
                        .map(|b| inputs::char_column(t.as_bytes(), b))
                })
                .unwrap_or(0);
            let mut d = Diagnostic::at(
                &spec.path,
                None,
                usize::try_from(row.line).unwrap_or(usize::MAX),
                column,
                format!(
                    "input `{}`: line {} is for account `{value}`, which the accounts file does not list",
                    spec.name, row.line
                ),
            )
            .with_width(value.chars().count());
            if let Some(t) = text {
                d = d.with_line_text(t);
            }
            let hint = did_you_mean(value, names.iter().map(String::as_str)).unwrap_or_else(|| {
                "add the account to the accounts file, or remove the row".into()
            });
            diags.push(d.with_hint(hint));
            if diags.len() >= max {
                break;
            }
        }
    }
    if diags.is_empty() {
        Ok(true)
    } else {
        Err(diags)
    }
}

/// The text of a 1-based line of a file (for a diagnostic's diagram).
fn line_text(path: &Path, line: u64) -> Option<String> {
    use std::io::BufRead as _;
    let file = std::fs::File::open(path).ok()?;
    let n = usize::try_from(line).ok()?.checked_sub(1)?;
    std::io::BufReader::new(file).lines().nth(n)?.ok()
}

fn read_file(path: &Path) -> Result<String, Diagnostic> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Diagnostic::file(path, format!("cannot read the accounts file: {e}")))?;
    if let Some(kind) = inputs::special_file_kind(&meta) {
        return Err(Diagnostic::file(
            path,
            format!("the accounts file is {kind}, not a regular file"),
        ));
    }
    if meta.is_dir() {
        return Err(Diagnostic::file(path, "the accounts file is a directory"));
    }
    if meta.len() > MAX_FILE {
        return Err(Diagnostic::file(path, "the accounts file is over 16 MiB"));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::file(path, format!("cannot read the accounts file: {e}")))?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Diagnostic::file(path, "the accounts file is not valid UTF-8"))
}

fn read_token(path: &Path) -> Result<Secret, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > 64 * 1024 {
        return Err("over 64 KiB: not a token".into());
    }
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let token = text.trim();
    if token.is_empty() {
        return Err("empty".into());
    }
    Ok(Secret::new(token))
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an account needs a name".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "account name `{name}` is longer than {MAX_NAME} characters"
        ));
    }
    if name.starts_with('.')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(format!(
            "account name `{name}` may use only letters, digits, `_`, `-` and `.` (not first)"
        ));
    }
    Ok(())
}

fn check_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(_) => Err("is not an http(s)://host URL".into()),
        Err(e) => Err(format!("is not a URL: {e}")),
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A diagnostic maker at `line`, pointing at field `field` of that line.
fn pointer<'a>(
    path: &'a Path,
    text: &'a str,
    line: u64,
    field: usize,
) -> impl Fn(String) -> Diagnostic + 'a {
    move |message| {
        let n = usize::try_from(line).unwrap_or(usize::MAX);
        let source = text.lines().nth(n.saturating_sub(1)).unwrap_or("");
        let column = inputs::field_start(source.as_bytes(), b',', field)
            .map_or(0, |b| inputs::char_column(source.as_bytes(), b));
        Diagnostic::at(path, None, n, column, message).with_line_text(source)
    }
}

fn csv_error(path: &Path, text: &str, e: &csv::Error) -> Diagnostic {
    let line = e.position().map_or(0, csv::Position::line);
    pointer(path, text, line, 0)(format!("the accounts file cannot be read as CSV: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN_A" => Some("tok-aaaaaaaaaaaa".into()),
            "TOKEN_B" => Some("tok-bbbbbbbbbbbb".into()),
            _ => None,
        }
    }

    #[test]
    fn reads_accounts_vars_inputs_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "c.token", "tok-cccccccccccc\n");
        let p = write(
            dir.path(),
            "accounts.csv",
            "name,token_env,token_file,base_url,input.stale,region\n\
             a,TOKEN_A,,,a.csv,south\n\
             b,TOKEN_B,,http://127.0.0.1:9,,north\n\
             c,,c.token,,,east\n",
        );
        let f = Fleet::load(&p, env).unwrap();
        assert_eq!(f.all_names, ["a", "b", "c"]);
        assert_eq!(f.token_envs, ["TOKEN_A", "TOKEN_B"]);
        assert_eq!(f.accounts[0].token.expose(), "tok-aaaaaaaaaaaa");
        assert_eq!(f.accounts[2].token.expose(), "tok-cccccccccccc");
        assert_eq!(f.accounts[0].inputs["stale"], dir.path().join("a.csv"));
        assert!(f.accounts[1].inputs.is_empty());
        assert_eq!(
            f.accounts[1].base_url.as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(
            f.accounts[0].template_value(),
            serde_json::json!({"name": "a", "region": "south"})
        );
        // A token never shows in a debug print.
        assert!(!format!("{f:?}").contains("tok-"));
    }

    #[test]
    fn every_problem_has_its_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "accounts.csv",
            "name,token_env,base_url\n\
             a,TOKEN_A,\n\
             a,TOKEN_B,\n\
             b,MISSING,\n\
             c d,TOKEN_A,\n\
             e,TOKEN_B,ftp://x\n",
        );
        let diags = Fleet::load(&p, env).unwrap_err();
        let got: Vec<(usize, usize, &str)> = diags
            .iter()
            .map(|d| (d.line, d.column, d.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (3, 1, "account `a` on line 3 was already listed on line 2"),
                (
                    4,
                    3,
                    "account `b`: the environment variable `MISSING` is not set"
                ),
                (
                    5,
                    1,
                    "account name `c d` may use only letters, digits, `_`, `-` and `.` (not first)"
                ),
                (
                    6,
                    11,
                    "account `e`: base_url `ftp://x` is not an http(s)://host URL"
                ),
            ]
        );
        // The message never holds a token.
        let rendered = crate::diagnostic::render_all(&diags);
        assert!(!rendered.contains("tok-"), "{rendered}");
    }

    #[test]
    fn a_file_without_name_or_token_columns_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.csv", "nmae,token_env\na,TOKEN_A\n");
        let d = Fleet::load(&p, env).unwrap_err();
        assert_eq!(d[0].message, "the accounts file has no `name` column");
        assert!(d[0].hint.as_deref().unwrap().contains("nmae"));
        let p = write(dir.path(), "b.csv", "name,token\na,TOKEN_A\n");
        let d = Fleet::load(&p, env).unwrap_err();
        assert!(d[0].message.contains("no `token_env`"), "{}", d[0].message);
        let p = write(dir.path(), "c.csv", "name,token_env,my-var\na,TOKEN_A,1\n");
        let d = Fleet::load(&p, env).unwrap_err();
        assert_eq!((d[0].line, d[0].column), (1, 16));
        let p = write(dir.path(), "d.csv", "name,token_env\n");
        let d = Fleet::load(&p, env).unwrap_err();
        assert_eq!(d[0].message, "the accounts file lists no account");
    }

    #[test]
    fn shards_are_stable_and_cover_every_account_once() {
        // The documented algorithm, pinned: these values must never change.
        assert_eq!(shard_of("clinic-001", 1), 1);
        let pinned: Vec<u32> = ["alpha", "beta", "gamma", "delta"]
            .iter()
            .map(|n| shard_of(n, 4))
            .collect();
        assert_eq!(pinned, PINNED_4);
        let names: Vec<String> = (0..1000).map(|i| format!("acct-{i}")).collect();
        for n in [1_u32, 2, 3, 7, 16] {
            let mut counts = vec![0_u32; n as usize];
            for name in &names {
                let s = shard_of(name, n);
                assert!((1..=n).contains(&s));
                counts[(s - 1) as usize] += 1;
            }
            assert_eq!(counts.iter().sum::<u32>(), 1000);
            // Roughly even: no shard under half its share.
            assert!(counts.iter().all(|&c| c * n * 2 >= 1000), "{counts:?}");
        }
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "1/0", "x", "1/", "/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    /// `1 + (first 8 bytes of SHA-256, big-endian) mod 4` of alpha, beta, gamma, delta (checked
    /// with Python's hashlib).
    const PINNED_4: [u32; 4] = [3, 2, 1, 2];

    #[test]
    fn a_split_row_must_name_a_listed_account() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "rows.csv",
            "session_id,account\ns1,a\ns2,b\ns3,zz\n",
        );
        let spec = InputSpec::new("stale", &p).with_key("session_id");
        let names = vec!["a".to_owned(), "b".to_owned()];
        let d = check_split(&spec, &names, 10).unwrap_err();
        assert_eq!((d[0].line, d[0].column), (4, 4));
        assert!(d[0].message.contains("account `zz`"), "{}", d[0].message);
        let p = write(dir.path(), "plain.csv", "session_id\ns1\n");
        let spec = InputSpec::new("stale", &p);
        assert!(!check_split(&spec, &names, 10).unwrap());
    }
}
