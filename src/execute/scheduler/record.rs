//! What a finished item leaves behind: its report line (secrets redacted, outputs kept for
//! `--resume`), the step's counts and kept results, the `--failed-csv` row, and the failure
//! budget; and the dry run's per-step preview.

use super::{
    inputs, plan, template, Arc, Done, HashMap, HashSet, ItemRecord, ItemStatus, Ordering, Path,
    PathBuf, Program, RequestRecord, ResponseRecord, Shared, SourceItem, StepKind, StepPlan,
    StepState,
};

/// The `--failed-csv` output: one file per input (the given path for the first input).
pub(super) struct FailedRows {
    path: Option<PathBuf>,
    writers: HashMap<Arc<str>, inputs::FailedCsvWriter>,
    seen: HashSet<(Arc<str>, u64)>,
    error: Option<String>,
}

impl FailedRows {
    /// Rows go to `path` (nothing is written without one).
    pub(super) fn new(path: Option<PathBuf>) -> Self {
        FailedRows {
            path,
            writers: HashMap::new(),
            seen: HashSet::new(),
            error: None,
        }
    }

    /// Closes the files; returns the first error met. An input none of whose rows failed still
    /// gets its file, with the header only, so no earlier run's rows are left behind in it.
    pub(super) fn finish(mut self, program: &Program) -> Option<String> {
        if let Some(base) = self.path.clone() {
            for (name, info) in &program.inputs {
                if self.writers.contains_key(name.as_str()) {
                    continue;
                }
                let path = failed_path(&base, name, program.inputs.len() > 1);
                match inputs::FailedCsvWriter::create(&path, &info.header, info.spec.delimiter) {
                    Ok(w) => {
                        self.writers.insert(Arc::from(name.as_str()), w);
                    }
                    Err(d) => {
                        self.error.get_or_insert(d.message);
                    }
                }
            }
        }
        let mut error = self.error;
        for (_, w) in self.writers {
            if let Err(d) = w.finish() {
                error.get_or_insert(d.message);
            }
        }
        error
    }

    pub(super) fn write(&mut self, program: &Program, si: &SourceItem, status: &str, error: &str) {
        let (Some(base), Some(input)) = (&self.path, &si.input) else {
            return;
        };
        let Some(row) = si.row.downcast_object_ref::<inputs::Row>() else {
            return;
        };
        if !self.seen.insert((input.clone(), si.index)) {
            return; // one line per row, even if several of its steps failed
        }
        if !self.writers.contains_key(input) {
            let path = failed_path(base, input, program.inputs.len() > 1);
            let delimiter = program
                .inputs
                .get(&**input)
                .map_or(b',', |i| i.spec.delimiter);
            match inputs::FailedCsvWriter::create(&path, &row.header, delimiter) {
                Ok(w) => {
                    self.writers.insert(input.clone(), w);
                }
                Err(d) => {
                    self.error = Some(d.message);
                    self.path = None;
                    return;
                }
            }
        }
        if let Some(w) = self.writers.get_mut(input) {
            if let Err(d) = w.write(row, status, error) {
                self.error = Some(d.message);
            }
        }
    }
}

/// `failed.csv` for a single input; `failed-NAME.csv` beside it when the playbook has several.
pub(super) fn failed_path(base: &Path, input: &str, several: bool) -> PathBuf {
    if !several {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map_or_else(|| "failed".into(), |s| s.to_string_lossy().into_owned());
    let ext = base
        .extension()
        .map_or_else(|| "csv".into(), |e| e.to_string_lossy().into_owned());
    base.with_file_name(format!("{stem}-{input}.{ext}"))
}

/// Writes a finished item to the report and the step's state; applies the failure budget.
pub(super) fn record(
    shared: &Shared,
    step: &StepPlan,
    si: &SourceItem,
    done: Done,
    parent: Option<&str>,
) {
    // The run's secrets, and this item's values rendered from one.
    let item_secrets;
    let redactor = if done.secret_values.is_empty() {
        &shared.redactor
    } else {
        item_secrets = shared.redactor.with(&done.secret_values);
        &item_secrets
    };
    let request = done.request.as_ref().map(|r| {
        let mut rec = RequestRecord::from(r);
        if !redactor.is_empty() {
            rec.path = redactor.redact(&rec.path).into_owned();
            if let Some(b) = &mut rec.body {
                redactor.redact_json(b);
            }
        }
        rec
    });
    let response = done.response.map(|(status, body)| ResponseRecord {
        status,
        body: body.map(|mut b| {
            redactor.redact_json(&mut b);
            b
        }),
    });
    let error = done.error.as_ref().map(|e| redactor.redact(e).into_owned());
    // The key is already redacted of the run's secrets (`run_step`); never of an item's
    // rendered values, so records, in-flight markers and `--resume` agree on it.
    let mut item = ItemRecord::new(step.id.clone(), si.index, si.key.clone(), done.status);
    item.attempts = done.attempts;
    let elapsed = done.started.elapsed();
    item.duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    let ended_at = jiff::Timestamp::now();
    let started_at = ended_at
        .checked_sub(jiff::SignedDuration::try_from(elapsed).unwrap_or_default())
        .unwrap_or(ended_at);
    if !shared.dry && done.status != ItemStatus::Skipped {
        item.started_at = Some(started_at);
    }
    item.request = request;
    item.response = response;
    item.error.clone_from(&error);
    item.reason = done.reason.map(|r| redactor.redact(&r).into_owned());
    item.line = si.line;
    if let Some(super::PlanMode::Apply(ix)) = &shared.options.plan_mode {
        item.seq = ix.seq_of(&step.id, &si.key);
    }
    item.parent = parent.map(|p| crate::report::ItemRef {
        step: p.to_owned(),
        index: si.index,
    });
    item.evidence = done.evidence.clone().map(|mut e| {
        redactor.redact_json(&mut e);
        e
    });
    // What later steps read is recorded, so that `--resume` can hand it on.
    let read_later = step.keep_results || parent.is_some() || !step.fans_out();
    if read_later
        && !shared.dry
        && matches!(done.status, ItemStatus::Succeeded | ItemStatus::Unchanged)
    {
        let mut out = template::to_json(&done.output);
        if !out.is_null() {
            redactor.redact_json(&mut out);
            let size = serde_json::to_vec(&out).map_or(usize::MAX, |v| v.len());
            if size <= crate::report::OUTPUT_CAP {
                item.output = Some(out);
            } else {
                item.output_omitted = true;
            }
        }
    }

    if !done.carried {
        let written = shared
            .report
            .lock()
            .expect("report")
            .as_mut()
            .map_or(Ok(()), |r| r.write_item(&item));
        if let Err(e) = written {
            shared.abort(format!("cannot write the report: {e}"));
        }
    }
    let failed = matches!(done.status, ItemStatus::Failed | ItemStatus::Unknown);
    let (fails, planned) = {
        let mut states = shared.states.lock().expect("states");
        let st = states.get_mut(&step.id).expect("state exists");
        st.totals.add(done.status);
        if done.carried && failed {
            st.carried_fails += 1;
        }
        if item.started_at.is_some() {
            st.first_start = Some(st.first_start.map_or(started_at, |t| t.min(started_at)));
            st.last_end = Some(st.last_end.map_or(ended_at, |t| t.max(ended_at)));
        }
        st.requests += u64::from(done.attempts);
        if shared.dry && st.preview.len() < shared.options.preview {
            if let Some(r) = &item.request {
                let body = r.body.as_ref().map(|b| format!(" {b}")).unwrap_or_default();
                st.preview
                    .push(format!("[{}] {} {}{body}", item.key, r.method, r.path));
            }
        }
        if failed && st.first_errors.len() < 3 {
            if let Some(e) = &error {
                st.first_errors.push(format!("[{}] {e}", item.key));
            }
        }
        if step.keep_results || !step.fans_out() {
            let label = done.status.as_str();
            if !step.fans_out() && parent.is_none() {
                st.output = Some(done.output.clone());
            }
            if step.keep_results {
                let result = plan::result_value(si, label, &done.output, error.as_deref());
                st.results.push((si.index, label.to_owned(), result));
            }
        }
        (
            (st.totals.failed + st.totals.unknown).saturating_sub(st.carried_fails),
            st.planned_items.max(st.totals.total()),
        )
    };
    if failed {
        shared.failed_rows.lock().expect("failed rows").write(
            &shared.program,
            si,
            done.status.as_str(),
            error.as_deref().unwrap_or(""),
        );
        shared.progress.failure(&step.id);
        if done.carried {
            // An earlier run's unresolved item: listed, not this run's failure.
            return;
        }
        if step.settings.on_error == crate::playbook::OnError::Stop && !shared.dry {
            shared.stopped.store(true, Ordering::SeqCst);
            shared.halt();
        }
        if let Some(budget) = step.settings.max_failures {
            if !shared.dry && budget.exceeded(fails, planned) {
                shared
                    .budget_stop
                    .lock()
                    .expect("budget")
                    .get_or_insert_with(|| (step.id.clone(), budget));
                shared.abort(format!(
                    "failure budget exceeded: {fails} of {planned} items of step `{}` failed (max_failures {budget})",
                    step.id
                ));
            }
        }
    }
}

pub(super) fn preview_step(step: &StepPlan, st: &StepState) -> String {
    let what = match &step.kind {
        StepKind::Action { spec, .. } => format!("{} {} {}", spec.name, spec.method, spec.path),
        StepKind::Pipeline(c) => format!("pipeline of {} steps", c.len()),
    };
    let t = &st.totals;
    let mut s = format!(
        "step {} — {what}\n  {} planned, {} skipped (when: {}), {} failed\n",
        step.id, t.planned, t.skipped, st.skipped_when, t.failed
    );
    for p in &st.preview {
        s.push_str(&format!("    {p}\n"));
    }
    let shown = st.preview.len() as u64;
    if t.planned > shown && shown > 0 {
        s.push_str(&format!("    … and {} more\n", t.planned - shown));
    }
    for e in &st.first_errors {
        s.push_str(&format!("  ! {e}\n"));
    }
    s
}
