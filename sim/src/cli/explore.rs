//! `sim explore`: a range (or shard) of seeds of a scenario or of swarm on threads, each run
//! single-threaded; results and JSON lines in seed order, a seed file per failure, coverage and the
//! determinism check on request, Ctrl-C and a time budget ending it with the summary so far.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use super::{
    Finished, Plan, Recording, Usage, WorldArgs, parse_seeds, parse_shard, peak_memory_mib, report_failure, run_seed,
    run_seed_twice, scenario_named, shard_len, terminal_bar,
};

#[derive(Args)]
pub(crate) struct ExploreArgs {
    /// The scenario (`sim list scenarios`).
    #[arg(long, conflicts_with = "swarm", required_unless_present = "swarm")]
    pub(crate) scenario: Option<String>,
    /// Swarm: a random world per seed (the same as `--scenario swarm`).
    #[arg(long)]
    pub(crate) swarm: bool,
    /// The seeds, `A..B` (B excluded).
    #[arg(long)]
    pub(crate) seeds: String,
    /// Runs only shard I of N (0 <= I < N) of the seeds: seed s is in shard (s - A) mod N, so the N shards
    /// are disjoint and together exactly A..B. `sim merge` combines the shards' --out files.
    #[arg(long, value_name = "I/N")]
    pub(crate) shard: Option<String>,
    #[command(flatten)]
    pub(crate) world: WorldArgs,
    /// Runs at once (each run is single-threaded); default: the machine's cores.
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Writes one JSON object per seed to this file (in seed order); each names its exploration (scenario,
    /// bugs, overrides, seeds, shard), which `sim merge` checks.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Prints one JSON object per seed to stdout (in seed order).
    #[arg(long)]
    pub(crate) json: bool,
    /// Stops at the first failure.
    #[arg(long)]
    pub(crate) stop_on_failure: bool,
    /// Starts no new seed after this many wall-clock seconds.
    #[arg(long, value_name = "SECS")]
    pub(crate) time_budget: Option<u64>,
    /// Prints the coverage counts summed over the seeds (and in how many seeds each happened), and the
    /// coverage marks no seed hit.
    #[arg(long)]
    pub(crate) coverage: bool,
    /// Runs every seed twice more and fails it (exit 14) if the two runs differ anywhere.
    #[arg(long)]
    pub(crate) determinism: bool,
}

pub(crate) fn explore(args: &ExploreArgs) -> Result<u8, Usage> {
    let name = if args.swarm { "swarm" } else { args.scenario.as_deref().expect("clap requires one") };
    let plan = Plan::new(scenario_named(name)?, &args.world)?;
    let (first, end) = parse_seeds(&args.seeds)?;
    let (shard, shards) = match &args.shard {
        Some(text) => parse_shard(text)?,
        None => (0, 1),
    };
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        return Err(Usage("--jobs 0: at least one job".into()));
    }
    let mut out = match &args.out {
        Some(path) => Some(
            std::fs::File::create(path).map_err(|e| Usage(format!("--out {}: cannot create: {e}", path.display())))?,
        ),
        None => None,
    };
    let shard_arg = if shards > 1 { format!(" --shard {shard}/{shards}") } else { String::new() };
    let found_by = format!("sim explore --scenario {name} --seeds {first}..{end}{shard_arg}{}", plan.flags());
    // A JSON line names its exploration and shard, so that `sim merge` can check files belong together.
    let line_of = |f: &Finished| {
        let mut v = f.json(&plan);
        v["seeds"] = json!(format!("{first}..{end}"));
        v["shard"] = json!(format!("{shard}/{shards}"));
        v.to_string()
    };

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupted);
        // Without a handler (another one is installed, or the platform refuses) Ctrl-C just ends the
        // process; the summary is then lost, not the results already written.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let stop = Arc::new(AtomicBool::new(false));
    // The next seed to start, as its index within the shard: seed = first + shard + index × shards.
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let budget = args.time_budget.map(Duration::from_secs);
    let total = shard_len(first, end, shard, shards);
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal_bar(total, "{elapsed_precise} [{bar:30}] {pos}/{len} seeds, {per_sec}, {msg}");
    bar.set_message("0 failures");

    let (tx, rx) = mpsc::channel::<Finished>();
    let mut finished: BTreeMap<u64, Finished> = BTreeMap::new();
    let mut failures: Vec<(u64, u8)> = Vec::new();
    let mut done = 0u64;
    let mut emitted = first.saturating_add(shard);
    let mut coverage: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(total as usize) {
            let (tx, plan, next, stop, interrupted) = (tx.clone(), plan.clone(), &next, &stop, &interrupted);
            let determinism = args.determinism;
            scope.spawn(move || {
                loop {
                    if stop.load(Ordering::SeqCst)
                        || interrupted.load(Ordering::SeqCst)
                        || budget.is_some_and(|b| started.elapsed() >= b)
                    {
                        return;
                    }
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    if index >= total {
                        return;
                    }
                    let seed = first + shard + index * shards;
                    let f = if determinism {
                        run_seed_twice(&plan, seed)
                    } else {
                        run_seed(&plan, seed, Recording::NOTABLE)
                    };
                    if tx.send(f).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        for f in rx {
            done += 1;
            bar.inc(1);
            if let Ok(r) = &f.result {
                for (k, n) in &r.coverage {
                    let e = coverage.entry(k).or_default();
                    e.0 += n;
                    e.1 += u64::from(*n > 0);
                }
            }
            if f.failed() {
                failures.push((f.seed, f.exit_code()));
                bar.set_message(format!("{} failures", failures.len()));
                bar.suspend(|| report_failure(&plan, &f, &args.world, &found_by));
                if args.stop_on_failure {
                    stop.store(true, Ordering::SeqCst);
                }
            }
            if !terminal && done.is_multiple_of((total / 10).max(1)) {
                eprintln!(
                    "explored {done}/{total} seeds, {} failures, {:.1} seeds/s",
                    failures.len(),
                    done as f64 / started.elapsed().as_secs_f64().max(1e-9)
                );
            }
            finished.insert(f.seed, f);
            // JSON lines in seed order: emit the contiguous prefix.
            while let Some(f) = finished.remove(&emitted) {
                let line = line_of(&f);
                if args.json {
                    println!("{line}");
                }
                if let Some(file) = out.as_mut()
                    && let Err(e) = writeln!(file, "{line}")
                {
                    eprintln!("sim: warning: --out: {e}");
                }
                emitted += shards;
            }
        }
    });
    bar.finish_and_clear();
    // Seeds after a gap (stop-on-failure with several jobs) are still written, in order.
    for f in std::mem::take(&mut finished).into_values() {
        let line = line_of(&f);
        if args.json {
            println!("{line}");
        }
        if let Some(file) = out.as_mut() {
            let _ = writeln!(file, "{line}");
        }
    }
    let wall = started.elapsed().as_secs_f64();
    failures.sort_unstable();
    if args.coverage {
        println!("coverage (total, seeds where it happened):");
        for (k, (n, seeds)) in &coverage {
            println!("  {k}: {n} in {seeds} seeds");
        }
        println!("fault classes (`sim list faults`): fired, seeds where it fired");
        for c in sim::fault_classes::FAULT_CLASSES.iter().filter(|c| !c.fired.is_empty()) {
            let (n, seeds) = coverage.get(c.fired).copied().unwrap_or((0, 0));
            println!("  {}: {n} in {seeds} seeds", c.name);
        }
        let summed = coverage.iter().map(|(k, (n, _))| (*k, *n)).collect();
        println!("coverage marks missed: {:?}", sim::missed_marks(&summed));
        println!("fault classes never fired: {:?}", sim::fault_classes::unfired(&summed));
    }
    let why_stopped = if interrupted.load(Ordering::SeqCst) {
        " (interrupted)"
    } else if args.stop_on_failure && !failures.is_empty() {
        " (stopped at the first failure)"
    } else if done < total {
        " (time budget reached)"
    } else {
        ""
    };
    let peak = peak_memory_mib().map(|m| format!(", peak memory {m} MiB")).unwrap_or_default();
    let of_shard = if shards > 1 { format!(" shard {shard}/{shards}") } else { String::new() };
    println!(
        "{name}{of_shard}: {done} of {total} seeds run{why_stopped}, {} failed, in {wall:.1} s ({:.1} seeds/s, {jobs} jobs{peak})",
        failures.len(),
        done as f64 / wall.max(1e-9)
    );
    if let Some(&(seed, _)) = failures.first() {
        println!("failing seeds: {}", failures.iter().map(|(s, _)| s.to_string()).collect::<Vec<_>>().join(" "));
        println!("first failure: seed {seed}");
    }
    Ok(match failures.first() {
        Some(&(_, code)) => code,
        None if interrupted.load(Ordering::SeqCst) => 130,
        None => 0,
    })
}
