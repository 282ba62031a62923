//! `sim replay`: seed files run again from their stored worlds; `--check` (what CI runs) also runs a
//! switch's file with the switches off, which must pass.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde_json::json;
use sim::seedfile::{ExpectedOutcome, SeedFile};
use sim::{Outcome, WorldConfig};

use sim::run_page::PageSource;

use super::page::{page_path, seed_file_title, write_page};
use super::{Finished, Plan, Usage, run_world, scenario_named};

#[derive(Args)]
pub(crate) struct ReplayArgs {
    /// Seed files.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// Prints each run's rendered trace.
    #[arg(long)]
    pub(crate) trace: bool,
    /// With --trace: a MSG line per message delivered or dropped.
    #[arg(long)]
    pub(crate) messages: bool,
    /// With --trace: an FS line per filesystem call that changes or syncs a disk.
    #[arg(long)]
    pub(crate) fs: bool,
    /// Prints each result as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
    /// Exit 0 exactly when every file's outcome and checker are what it expects and, for a file that
    /// expects a bug switch to be found, the same world passes with the switches off (drift is reported
    /// only).
    #[arg(long)]
    pub(crate) check: bool,
    /// Writes a self-contained page drawing each run (as `sim run --html`); with several files, OUT is a
    /// directory and each page is named after its file.
    #[arg(long, value_name = "OUT")]
    pub(crate) html: Option<PathBuf>,
}

pub(crate) fn replay(args: &ReplayArgs) -> Result<u8, Usage> {
    let mut files = Vec::new();
    for path in &args.files {
        let text = std::fs::read_to_string(path).map_err(|e| Usage(format!("{}: {e}", path.display())))?;
        let file = SeedFile::parse(&text).map_err(|e| Usage(format!("{}: {e}", path.display())))?;
        files.push((path, file));
    }
    let several = files.len() > 1;
    let mut code = 0;
    let mut mismatches = 0;
    for (path, file) in files {
        let scenario = scenario_named(&file.scenario)?;
        let plan = Plan { scenario, overrides: file.overrides.clone(), bugs: file.bugs.clone() };
        let mut config = file.config().map_err(|e| Usage(format!("{}: {e}", path.display())))?;
        config.trace_messages = args.messages;
        config.trace_fs = args.fs;
        config.record_timeline = args.html.is_some();
        // On stderr: with `--json`, stdout holds one JSON object per file and nothing else.
        if plan.spec(file.seed).as_ref() != Ok(&file.world) {
            eprintln!(
                "{}: note: the scenario's world for seed {} has changed since the file was written; replaying the stored world",
                path.display(),
                file.seed
            );
        }
        let started = Instant::now();
        let f = Finished {
            seed: file.seed,
            result: run_world(config),
            diverged: None,
            wall_ms: started.elapsed().as_millis(),
        };
        if let (Some(out), Ok(r)) = (&args.html, &f.result) {
            let page = page_path(out, several, path)?;
            let (title, reproduce) = seed_file_title(path);
            let source = PageSource { title: &title, reproduce: &reproduce, bugs: &file.bugs };
            write_page(&page, &source, r).map_err(Usage)?;
        }
        if args.trace
            && let Ok(r) = &f.result
        {
            println!("{}\n", sim::trace::LEGEND);
            for line in &r.trace {
                println!("{line}");
            }
        }
        let got = match &f.result {
            Ok(r) => match &r.outcome {
                Outcome::Pass => (ExpectedOutcome::Pass, None),
                Outcome::Violation(v) => (ExpectedOutcome::Violation, Some(v.checker.clone())),
            },
            Err(_) => (ExpectedOutcome::Panic, None),
        };
        let mut matches =
            got.0 == file.expect.outcome && (file.expect.checker.is_none() || got.1 == file.expect.checker);
        // `--check` of a file that expects a switch to be found: the same world with every switch off must
        // pass, or the finding is not the switch's.
        let mut without = String::new();
        if args.check && !file.bugs.is_empty() && file.expect.outcome != ExpectedOutcome::Pass {
            let fixed = WorldConfig::new(file.world.clone(), raft_core::Bugs::none());
            let passes = matches!(run_world(fixed), Ok(r) if r.outcome == Outcome::Pass);
            without =
                if passes { ", passes with the switches off".into() } else { ", FAILS WITH THE SWITCHES OFF".into() };
            matches &= passes;
        }
        let drift = match &f.result {
            Ok(r) if format!("{:016x}", r.trace_hash) != file.trace_hash => {
                format!(", trace hash drifted ({} → {:016x})", file.trace_hash, r.trace_hash)
            }
            _ => String::new(),
        };
        if args.json {
            let mut v = f.json(&plan);
            v["file"] = json!(path.display().to_string());
            v["as_expected"] = json!(matches);
            println!("{v}");
        } else {
            let verdict = if matches { "as expected" } else { "NOT AS EXPECTED" };
            println!("{}: seed {}: {} — {verdict}{without}{drift}", path.display(), f.seed, f.summary());
            for line in f.diagnosis() {
                println!("  {line}");
            }
        }
        if !matches {
            mismatches += 1;
        }
        if code == 0 {
            code = f.exit_code();
        }
    }
    if args.check {
        return Ok(u8::from(mismatches > 0));
    }
    Ok(code)
}
