//! Writing seed files: a failure of `run`/`explore`/`sweep` as the file that replays it, written
//! atomically (a temporary file renamed into place), and the reproduce lines printed beside it. Every
//! subcommand that finds failures writes them through here, so a seed file always has the same shape.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::PathBuf;

use scenarios::WorldSpec;
use sim::seedfile::{self, Expect, ExpectedOutcome, SeedFile};
use sim::{Outcome, RunResult};

use super::{Finished, Plan, WorldArgs, first_line};

/// What a failing run's seed file expects, and one line saying what it found; `None` for a pass.
pub(crate) fn expectation(result: &Result<RunResult, String>) -> Option<(Expect, String)> {
    match result {
        Ok(r) => match &r.outcome {
            Outcome::Pass => None,
            Outcome::Violation(v) => Some((
                Expect { outcome: ExpectedOutcome::Violation, checker: Some(v.checker.clone()) },
                format!("{} on {}: {}", v.checker, v.node, first_line(&v.detail)),
            )),
        },
        Err(panic) => {
            Some((Expect { outcome: ExpectedOutcome::Panic, checker: None }, format!("panic: {}", first_line(panic))))
        }
    }
}

/// The seed file of a failing run of `world` (seed `seed`, derived from `plan`'s scenario by `overrides`),
/// noting what found it and what it found.
pub(crate) fn seed_file(
    plan: &Plan,
    seed: u64,
    overrides: serde_json::Map<String, serde_json::Value>,
    world: WorldSpec,
    result: &Result<RunResult, String>,
    note: &str,
) -> Result<SeedFile, String> {
    let (expect, found) = expectation(result).ok_or("a passing run has no seed file")?;
    Ok(SeedFile {
        format_version: seedfile::FORMAT_VERSION,
        scenario: plan.scenario.name.into(),
        seed,
        bugs: plan.bugs.clone(),
        overrides,
        expect,
        note: format!("{note}: {found}"),
        trace_hash: result.as_ref().map(|r| format!("{:016x}", r.trace_hash)).unwrap_or_default(),
        world,
    })
}

/// Writes the seed file of a failure found by `found_by` (a command line); its path.
pub(crate) fn write_seed_file(plan: &Plan, f: &Finished, out: &WorldArgs, found_by: &str) -> Result<PathBuf, String> {
    if f.diverged.is_some() {
        return Err("a nondeterministic run has no seed file (it would not replay)".into());
    }
    let world = plan.spec(f.seed)?;
    let note = format!("found by `{found_by}`");
    let file = seed_file(plan, f.seed, plan.overrides.clone(), world, &f.result, &note)?;
    let name = format!("{}-{}", plan.scenario.name.replace('/', "_"), f.seed);
    store_seed_file(&file, out, &name, &plan.bugs)
}

/// Writes `file` as `DIR/NAME-BUG….json` (`DIR`: `--seed-dir`), atomically (a temporary file renamed into
/// place), and with `--pages` its run's page beside it; its path.
pub(crate) fn store_seed_file(
    file: &SeedFile,
    out: &WorldArgs,
    name: &str,
    bugs: &[String],
) -> Result<PathBuf, String> {
    let dir = out.seed_dir.as_path();
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name: String = std::iter::once(name.to_owned()).chain(bugs.iter().map(|b| format!("-{b}"))).collect();
    let path = dir.join(format!("{name}.json"));
    let tmp = dir.join(format!(".{name}.json.tmp"));
    std::fs::write(&tmp, file.render()).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if out.pages {
        super::page::page_beside(file, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(path)
}

/// Prints a failure's reproduce line and writes its seed file.
pub(crate) fn report_failure(plan: &Plan, f: &Finished, out: &WorldArgs, found_by: &str) {
    let file = match write_seed_file(plan, f, out, found_by) {
        Ok(path) => format!("sim replay {}", path.display()),
        Err(e) => format!("(no seed file: {e})"),
    };
    println!("seed {}: {}\n  reproduce: {}   or   {file}", f.seed, f.summary(), plan.reproduce(f.seed));
    for line in f.diagnosis() {
        println!("  {line}");
    }
}
