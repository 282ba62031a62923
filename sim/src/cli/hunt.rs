//! `sim hunt`: the coverage-guided search (`sim::hunt`) run in batches on threads, with a progress
//! line, JSON lines, a time or run budget, and each finding confirmed (with bug switches: the same
//! world passes with them off) and written as a seed file with an explicit plan.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use raft_core::Bugs;
use serde_json::json;
use sim::hunt::{Candidate, Hunt, HuntOptions, Origin};
use sim::seedfile;
use sim::{RunResult, WorldConfig};

use super::{
    Finished, Plan, Usage, WorldArgs, peak_memory_mib, run_world, scenario_named, seed_file, store_seed_file,
    terminal_bar,
};

#[derive(Args)]
pub(crate) struct HuntArgs {
    /// The scenario whose worlds the hunt starts from (`sim list scenarios`).
    #[arg(long, conflicts_with = "swarm", required_unless_present = "swarm")]
    pub(crate) scenario: Option<String>,
    /// Start from swarm's random worlds (the same as `--scenario swarm`).
    #[arg(long)]
    pub(crate) swarm: bool,
    #[command(flatten)]
    pub(crate) world: WorldArgs,
    /// Decides the whole hunt: which worlds run, in which order, and what each does.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Starts no new batch of runs after this many wall-clock seconds.
    #[arg(long, value_name = "SECS", required_unless_present = "runs")]
    pub(crate) time_budget: Option<u64>,
    /// Stops after this many runs (a budget that does not depend on the machine).
    #[arg(long)]
    pub(crate) runs: Option<u64>,
    /// Runs at once (each run is single-threaded); default: the machine's cores. It changes how fast the
    /// hunt goes, never what it runs.
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Goes on after a finding (default: stops at the first).
    #[arg(long)]
    pub(crate) keep_going: bool,
    /// No guidance: every run a fresh world, as swarm samples (the baseline the hunt is measured against).
    #[arg(long)]
    pub(crate) blind: bool,
    /// Prints one JSON object per run (in run order) and a summary object at the end.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn hunt(args: &HuntArgs) -> Result<u8, Usage> {
    let name = if args.swarm { "swarm" } else { args.scenario.as_deref().expect("clap requires one") };
    let plan = Plan::new(scenario_named(name)?, &args.world)?;
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        return Err(Usage("--jobs 0: at least one job".into()));
    }
    if args.time_budget == Some(0) || args.runs == Some(0) {
        return Err(Usage("a budget of 0: the hunt would run nothing".into()));
    }
    let bugs = seedfile::bugs_named(&plan.bugs).map_err(Usage)?;
    let options = HuntOptions {
        scenario: plan.scenario,
        overrides: plan.overrides.clone(),
        bugs,
        seed: args.seed,
        blind: args.blind,
    };
    let mut hunt = Hunt::new(options);
    // The budget as the reproduce line spells it, and the progress bar's length (seconds or runs).
    let (budget_arg, bar_len) = match (args.time_budget, args.runs) {
        (Some(s), _) => (format!(" --time-budget {s}"), s),
        (None, Some(r)) => (format!(" --runs {r}"), r),
        (None, None) => unreachable!("clap requires one"),
    };
    let found_by = format!(
        "sim hunt --scenario {name} --seed {}{}{}{budget_arg}",
        args.seed,
        if args.blind { " --blind" } else { "" },
        plan.flags()
    );

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupted);
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let started = Instant::now();
    let budget = args.time_budget.map(Duration::from_secs);
    let bar = terminal_bar(bar_len, "{elapsed_precise} [{bar:30}] {msg}");
    let mut findings: Vec<(u64, u8, String)> = Vec::new();
    'hunt: loop {
        if interrupted.load(Ordering::SeqCst) || budget.is_some_and(|b| started.elapsed() >= b) {
            break;
        }
        let mut batch = hunt.next_batch();
        if let Some(limit) = args.runs {
            batch.retain(|c| c.run < limit);
            if batch.is_empty() {
                break;
            }
        }
        let results = run_batch(&batch, jobs);
        for (candidate, (result, wall_ms)) in batch.iter().zip(results) {
            let absorbed = hunt.absorb(candidate, &result);
            let stats = hunt.stats();
            let elapsed_ms = started.elapsed().as_millis();
            if args.json {
                let (outcome, checker) = match &result {
                    Ok(r) => (if r.outcome.checker().is_some() { "violation" } else { "pass" }, r.outcome.checker()),
                    Err(_) => ("panic", None),
                };
                println!(
                    "{}",
                    json!({
                        "run": candidate.run,
                        "origin": candidate.origin.describe(),
                        "seed": candidate.config.spec.seed,
                        "outcome": outcome,
                        "checker": checker,
                        "new_points": absorbed.new_points,
                        "points": stats.points,
                        "corpus": stats.corpus,
                        "call_classes": stats.call_classes,
                        "events": result.as_ref().ok().map(|r| r.events),
                        "wall_ms": wall_ms,
                        "elapsed_ms": elapsed_ms,
                    })
                );
            }
            if absorbed.failed {
                let (code, line) = bar.suspend(|| confirm(&plan, args, candidate, &result, &found_by));
                findings.push((candidate.run, code, line));
                if !args.keep_going {
                    break 'hunt;
                }
            }
        }
        let stats = hunt.stats();
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        bar.set_position(if args.time_budget.is_some() { started.elapsed().as_secs() } else { stats.runs });
        bar.set_message(format!(
            "{} runs, {:.0} runs/s, corpus {}, {} coverage points, {} findings",
            stats.runs,
            stats.runs as f64 / secs,
            stats.corpus,
            stats.points,
            findings.len()
        ));
    }
    bar.finish_and_clear();
    let stats = hunt.stats();
    let wall = started.elapsed().as_secs_f64();
    let why = if interrupted.load(Ordering::SeqCst) {
        "interrupted"
    } else if !findings.is_empty() && !args.keep_going {
        "stopped at the first finding"
    } else if args.runs.is_some_and(|r| stats.runs >= r) {
        "run budget spent"
    } else {
        "time budget spent"
    };
    let peak = peak_memory_mib();
    if args.json {
        println!(
            "{}",
            json!({
                "summary": {
                    "scenario": name, "seed": args.seed, "bugs": plan.bugs, "blind": args.blind,
                    "runs": stats.runs, "corpus": stats.corpus, "points": stats.points,
                    "call_classes": stats.call_classes, "findings": findings.len(),
                    "first_finding_run": findings.first().map(|f| f.0), "wall_s": wall,
                    "stopped": why, "jobs": jobs, "peak_memory_mib": peak,
                }
            })
        );
    } else {
        println!(
            "hunt {name} seed {}: {} runs ({why}), corpus {}, {} coverage points, {} kinds of call seen, {} findings, in {wall:.1} s ({:.1} runs/s, {jobs} jobs{})",
            args.seed,
            stats.runs,
            stats.corpus,
            stats.points,
            stats.call_classes,
            findings.len(),
            stats.runs as f64 / wall.max(1e-9),
            peak.map(|m| format!(", peak memory {m} MiB")).unwrap_or_default()
        );
    }
    Ok(match findings.first() {
        Some(&(_, code, _)) => code,
        None if interrupted.load(Ordering::SeqCst) => 130,
        None => 0,
    })
}

/// A run's result (or the panic of the system under test) and its wall time in ms.
type Timed = (Result<RunResult, String>, u128);

/// Runs a batch on `jobs` threads; the results in batch order.
fn run_batch(batch: &[Candidate], jobs: usize) -> Vec<Timed> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Timed>>> = batch.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(batch.len()) {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    let Some(c) = batch.get(k) else { return };
                    let started = Instant::now();
                    let result = run_world(c.config.clone());
                    *slots[k].lock().expect("no thread panics holding it") =
                        Some((result, started.elapsed().as_millis()));
                }
            });
        }
    });
    slots.into_iter().map(|s| s.into_inner().expect("not poisoned").expect("every slot was run")).collect()
}

/// Confirms a failing run and writes its seed file: with switches on, the same world must pass with
/// them off (else the failure is not the switches', and its file names no switch). Prints the finding;
/// returns its exit code and line.
fn confirm(
    plan: &Plan,
    args: &HuntArgs,
    candidate: &Candidate,
    result: &Result<RunResult, String>,
    found_by: &str,
) -> (u8, String) {
    // The run as a seed file replays it: without the FS lines a traced run recorded.
    let plain = WorldConfig { trace_fs: false, ..candidate.config.clone() };
    let result = if candidate.config.trace_fs { run_world(plain.clone()) } else { result.clone() };
    let switch_off_fails = !plan.bugs.is_empty()
        && run_world(WorldConfig { bugs: Bugs::none(), ..plain.clone() })
            .map_or(true, |r| r.outcome.checker().is_some());
    let file_plan = if switch_off_fails { Plan { bugs: Vec::new(), ..plan.clone() } } else { plan.clone() };
    let seed = plain.spec.seed;
    let finished = Finished { seed, result: result.clone(), diverged: None, wall_ms: 0 };
    let overrides = seedfile::overrides_between(&plan.scenario.world(seed), &plain.spec);
    let note = format!("found by `{found_by}` at run {} ({})", candidate.run, candidate.origin.describe());
    let stored = seed_file(&file_plan, seed, overrides, plain.spec.clone(), &result, &note).and_then(|file| {
        store_seed_file(&file, &args.world, &format!("hunt-{}-{}", args.seed, candidate.run), &file_plan.bugs)
    });
    let file = match stored {
        Ok(path) => format!("sim replay {}", path.display()),
        Err(e) => format!("(no seed file: {e})"),
    };
    let warning = if switch_off_fails {
        "\n  THE SAME WORLD FAILS WITH THE SWITCHES OFF: this is not the switches' finding (its seed file names none)"
    } else {
        ""
    };
    let origin = match &candidate.origin {
        Origin::Fresh { .. } => "a fresh world".to_owned(),
        Origin::Mutant { parent, .. } => format!("a mutant of run {parent}"),
    };
    let line = format!("run {} ({origin}): {}\n  reproduce: {file}{warning}", candidate.run, finished.summary());
    println!("{line}");
    (finished.exit_code(), line)
}
