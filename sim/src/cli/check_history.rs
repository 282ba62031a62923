//! `sim check-history`: the linearizability checker on histories recorded anywhere (Jepsen's log lines,
//! Knossos's EDN, the engine's JSON lines); a verdict, an explanation and optionally a page per file.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use sim::history::{self, Format};
use sim::linearizability::{self, Budget, Model, Verdict};

use super::Usage;

#[derive(Args)]
pub(crate) struct CheckHistoryArgs {
    /// History files.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// register (read, write), cas-register (and cas) or kv (get, put, append, cas per key); default: the
    /// smallest that admits every operation.
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,
    /// auto, jepsen-log, edn or jsonl.
    #[arg(long, value_name = "FORMAT", default_value = "auto")]
    format: String,
    /// Wall-clock seconds of search per file before answering undecided.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    time_budget: f64,
    /// One JSON object per file.
    #[arg(long)]
    json: bool,
    /// Writes a page drawing the history and the verdict (one FILE: the page; several: a folder of pages).
    #[arg(long, value_name = "OUT")]
    html: Option<PathBuf>,
    /// Also writes each history as read, in the engine's JSON lines (one FILE: the file; several: a
    /// folder): a converter from Jepsen's and Knossos's formats.
    #[arg(long, value_name = "OUT")]
    write_jsonl: Option<PathBuf>,
}

/// Exit codes of `check-history`.
const LINEARIZABLE: u8 = 0;
const NOT_LINEARIZABLE: u8 = 10;
const UNDECIDED: u8 = 3;

pub(crate) fn check_history(args: &CheckHistoryArgs) -> Result<u8, Usage> {
    let model = match &args.model {
        None => None,
        Some(name) => Some(Model::named(name).ok_or_else(|| {
            let valid: Vec<&str> = Model::ALL.iter().map(|m| m.name()).collect();
            Usage(format!("unknown model {name:?}; valid: {}", valid.join(", ")))
        })?),
    };
    let format = match args.format.as_str() {
        "auto" => None,
        name => Some(Format::named(name).ok_or_else(|| {
            let valid: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
            Usage(format!("unknown format {name:?}; valid: auto, {}", valid.join(", ")))
        })?),
    };
    if !(args.time_budget.is_finite() && args.time_budget > 0.0 && args.time_budget <= 86_400.0) {
        return Err(Usage(format!("--time-budget {} is not in 0..=86400 seconds", args.time_budget)));
    }
    // Read every file first: bad input anywhere is a usage error before any search.
    let mut read = Vec::with_capacity(args.files.len());
    for file in &args.files {
        let text = std::fs::read_to_string(file).map_err(|e| Usage(format!("{}: {e}", file.display())))?;
        let (h, m) = history::read(&text, format, model).map_err(|e| Usage(format!("{}: {e}", file.display())))?;
        read.push((file, h, m));
    }
    // Where each file's page and JSON lines go: never onto an input, never two onto one path.
    let mut outputs: Vec<PathBuf> = Vec::new();
    for (out, extension) in [(&args.html, "html"), (&args.write_jsonl, "jsonl")] {
        let Some(out) = out else { continue };
        if read.len() > 1 {
            std::fs::create_dir_all(out).map_err(|e| Usage(format!("{}: {e}", out.display())))?;
        }
        for (file, _, _) in &read {
            let path = if read.len() > 1 { file_in(out, file, extension) } else { out.clone() };
            if outputs.contains(&path) || args.files.contains(&path) {
                return Err(Usage(format!(
                    "{}: would be written twice or over an input (files with one name in several folders?)",
                    path.display()
                )));
            }
            outputs.push(path);
        }
    }
    let mut code = LINEARIZABLE;
    for (file, h, model) in &read {
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(args.time_budget);
        let mut keep_going = || Instant::now() < deadline;
        let mut budget =
            Budget { steps_per_key: u64::MAX, keep_going: Some(&mut keep_going), stop_at_violation: false };
        let report = linearizability::check(&h.ops, *model, &mut budget);
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let why = history::explain(&h.ops, Some(&h.lines), &report);
        code = code.max(match report.verdict {
            Verdict::Linearizable => LINEARIZABLE,
            Verdict::Undecided => UNDECIDED,
            Verdict::NotLinearizable => NOT_LINEARIZABLE,
        });
        if args.json {
            let worst = report.worst().filter(|_| report.verdict == Verdict::NotLinearizable);
            println!(
                "{}",
                json!({
                    "file": file.display().to_string(),
                    "verdict": history::page::verdict_name(report.verdict),
                    "model": model.name(),
                    "operations": h.ops.len(),
                    "keys": report.keys.len(),
                    "ms": (ms * 1e3).round() / 1e3,
                    "steps": report.keys.iter().map(|k| k.steps).sum::<u64>(),
                    "slowest_key": report.keys.iter().max_by_key(|k| k.steps).map(|k| json!({"key": k.key, "steps": k.steps, "operations": k.ops.len(), "verdict": history::page::verdict_name(k.verdict)})),
                    "explanation": why,
                    "failing": worst.map(|k| json!({
                        "key": k.key,
                        "line": k.failing.map(|f| h.lines[f]),
                        "linearized": k.linearized.len(),
                        "could_have_seen": k.could_have_seen.iter().map(history::show).collect::<Vec<_>>(),
                    })),
                })
            );
        } else {
            println!("{}: {why} ({} operations, {} model, {ms:.1} ms)", file.display(), h.ops.len(), model.name());
        }
        if let Some(out) = &args.write_jsonl {
            let path = if read.len() > 1 { file_in(out, file, "jsonl") } else { out.clone() };
            std::fs::write(&path, history::to_jsonl(&h.ops, *model))
                .map_err(|e| Usage(format!("{}: {e}", path.display())))?;
        }
        if let Some(out) = &args.html {
            let path = if read.len() > 1 { file_in(out, file, "html") } else { out.clone() };
            let title = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into());
            let page =
                history::page::render(&history::page::data(&title, *model, &h.ops, &report, &why, h.timed_by_lines));
            std::fs::write(&path, page).map_err(|e| Usage(format!("{}: {e}", path.display())))?;
            if !args.json {
                println!("  page: {}", path.display());
            }
        }
    }
    Ok(code)
}

/// `OUT/<file's stem>.<extension>`.
pub(crate) fn file_in(out: &Path, file: &Path, extension: &str) -> PathBuf {
    let stem = file.file_stem().map_or_else(|| "history".into(), |s| s.to_string_lossy().into_owned());
    out.join(format!("{stem}.{extension}"))
}
