//! For the `plan` and `apply` subcommands (`app::plan`, `app::apply`): the plan's header from
//! a validated program, and the checks `apply` makes before anything is sent (refusals are
//! exit code 4).

use std::io::Read as _;
use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    account_fingerprint, check_target, sha256_hex, Plan, PlanHeader, PlanInput, PlanOptions,
    PlanPlaybook, Refusal, FORMAT,
};
use crate::program::Program;
use crate::secret::Redactor;

/// The base URL a plan made against the built-in sandbox names (each process's sandbox has its
/// own port; every one of them holds the same seeded account).
pub(crate) const SANDBOX_BASE_URL: &str = "sandbox:";

/// The token of the built-in sandbox.
pub(crate) const SANDBOX_TOKEN: &str = "sandbox-token";

/// Hex SHA-256 of a file, streamed.
pub(crate) fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0_u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(super::hex(&h.finalize()))
}

/// The vars as the plan rendered them, secrets as their names: what `vars_sha256` hashes.
fn vars_value(program: &Program) -> Value {
    let secrets: Vec<&String> = program.loaded.playbook.settings.secrets.iter().collect();
    let mut m = serde_json::Map::new();
    for (k, v) in &program.static_vars {
        let v = if secrets.contains(&k) {
            Value::String(format!("secret:{k}"))
        } else {
            v.clone()
        };
        m.insert(k.clone(), v);
    }
    for (k, _) in &program.template_vars {
        let declared = program
            .loaded
            .playbook
            .vars
            .get(k)
            .cloned()
            .unwrap_or(Value::Null);
        m.insert(k.clone(), declared);
    }
    Value::Object(m)
}

/// What goes into a plan's header besides the moment, the target and the read count.
pub(crate) struct HeaderParts {
    pub(crate) program_settings: Value,
    pub(crate) options: PlanOptions,
    pub(crate) ttl: std::time::Duration,
    pub(crate) base_url: String,
    pub(crate) token: String,
    pub(crate) reads: u64,
}

/// The header of a plan of `program`. The embedded playbook text has every secret value
/// replaced by `[redacted]` (a secret written in the playbook is given again at apply with
/// `--var`); `--var` values of secrets are not kept.
pub(crate) fn header(program: &Program, parts: HeaderParts) -> std::io::Result<PlanHeader> {
    let now = jiff::Timestamp::now();
    let now = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
    let ttl = jiff::SignedDuration::try_from(parts.ttl).unwrap_or(jiff::SignedDuration::MAX);
    let mut inputs = IndexMap::new();
    for (name, info) in &program.inputs {
        inputs.insert(
            name.clone(),
            PlanInput {
                path: info.spec.path.display().to_string(),
                sha256: hash_file(&info.spec.path)?,
            },
        );
    }
    let redactor = Redactor::new(program.secrets.iter());
    let secrets = program.loaded.playbook.settings.secrets.clone();
    let mut options = parts.options;
    options.secret_vars = options
        .vars
        .keys()
        .filter(|k| secrets.contains(k))
        .cloned()
        .collect();
    options.vars.retain(|k, _| !secrets.contains(k));
    // A secret written in the playbook is redacted from the plan's copy: apply needs it too.
    for (name, value) in secrets.iter().zip(&program.secrets) {
        if !program.template_vars.contains_key(name)
            && value.chars().count() >= crate::secret::MIN_SECRET_LEN
            && program.loaded.source.contains(value.as_str())
            && !options.secret_vars.contains(name)
        {
            options.secret_vars.push(name.clone());
        }
    }
    Ok(PlanHeader {
        format: FORMAT.to_owned(),
        tool: crate::report::TOOL.to_owned(),
        plan_id: uuid::Uuid::new_v4().to_string(),
        created_at: now,
        expires_at: now.checked_add(ttl).unwrap_or(now),
        playbook: PlanPlaybook {
            name: program.name().to_owned(),
            path: program.loaded.path.display().to_string(),
            sha256: program.loaded.sha256.clone(),
            source: redactor.redact(&program.loaded.source).into_owned(),
        },
        inputs,
        vars_sha256: sha256_hex(vars_value(program).to_string().as_bytes()),
        base_url: parts.base_url,
        account: account_fingerprint(&parts.token),
        routes: program.settings.routes,
        settings: parts.program_settings,
        options,
        secrets,
        reads: parts.reads,
    })
}

/// Where `apply` sends: the base URL and the token, as the plan's target is checked.
pub(crate) struct Target {
    pub(crate) base_url: String,
    pub(crate) token: String,
}

/// The checks before anything is sent: the plan intact, of a known format, not expired, for
/// this base URL and account. `target` is `None` when no token is set (a real apply needs one).
pub(crate) fn verify(path: &Path, target: &Target) -> Result<Plan, Refusal> {
    let plan = super::read(path)?;
    check_target(
        &plan,
        &path.display().to_string(),
        jiff::Timestamp::now(),
        &target.base_url,
        &account_fingerprint(&target.token),
    )?;
    Ok(plan)
}

/// Warnings when the playbook or an input on disk is not what the plan read (the plan, not the
/// disk, is what runs).
pub(crate) fn disk_changes(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    let h = &plan.header;
    match std::fs::read(&h.playbook.path) {
        Ok(bytes) if sha256_hex(&bytes) == h.playbook.sha256 => {}
        Ok(_) => out.push(format!(
            "the playbook {} has changed since the plan was made; the plan's copy is what runs",
            h.playbook.path
        )),
        Err(e) => out.push(format!(
            "the playbook {} cannot be read ({e}); the plan's copy is what runs",
            h.playbook.path
        )),
    }
    for (name, input) in &h.inputs {
        match hash_file(Path::new(&input.path)) {
            Ok(s) if s == input.sha256 => {}
            Ok(_) => out.push(format!(
                "input `{name}` ({}) has changed since the plan was made; only planned writes are sent, and those whose rows changed are drifted",
                input.path
            )),
            Err(e) => out.push(format!("input `{name}` ({}) cannot be read: {e}", input.path)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planfile::tests_support::plan;

    #[test]
    fn a_file_hashes_like_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, "id\n1\n").unwrap();
        assert_eq!(hash_file(&p).unwrap(), sha256_hex(b"id\n1\n"));
    }

    #[test]
    fn apply_refuses_a_changed_expired_or_foreign_plan_before_anything_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.plan.jsonl");
        let p = plan();
        p.write(&path).unwrap();
        let good = Target {
            base_url: "http://127.0.0.1:9".into(),
            token: "tok-1".into(),
        };
        assert!(verify(&path, &good).is_ok());
        let other = Target {
            token: "tok-2".into(),
            ..good
        };
        assert!(matches!(
            verify(&path, &other),
            Err(Refusal::OtherAccount { .. })
        ));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("/transfer", "/transfeR", 1)).unwrap();
        let good = Target {
            base_url: "http://127.0.0.1:9".into(),
            token: "tok-1".into(),
        };
        assert!(matches!(verify(&path, &good), Err(Refusal::Changed { .. })));
    }

    #[test]
    fn changes_on_disk_are_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let pb = dir.path().join("p.yaml");
        std::fs::write(&pb, "version: 1\n").unwrap();
        let mut p = plan();
        p.header.playbook.path = pb.display().to_string();
        p.header.playbook.sha256 = sha256_hex(b"version: 1\n");
        assert!(disk_changes(&p).is_empty());
        std::fs::write(&pb, "version: 2\n").unwrap();
        let w = disk_changes(&p);
        assert!(
            w[0].contains("has changed since the plan was made"),
            "{w:?}"
        );
    }
}
