//! `sim sweep`: every crash point of one run in every crash image, threads by crash point, a seed file
//! for the first failure of each checker (replayed once before it is written).
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use sim::seedfile::{self};
use sim::{Outcome, WorldConfig};

use super::{
    Plan, Usage, WorldArgs, expectation, first_line, run_world, scenario_named, seed_file, store_seed_file,
    terminal_bar,
};

#[derive(Args)]
pub(crate) struct SweepArgs {
    /// The scenario whose world is swept (its crash faults are taken out: the sweep makes its own).
    #[arg(long)]
    pub(crate) scenario: String,
    /// The seed of the scenario's world.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    #[command(flatten)]
    pub(crate) world: WorldArgs,
    /// The node whose calls are cut (repeatable; default: every node).
    #[arg(long = "node", value_name = "N")]
    pub(crate) nodes: Vec<usize>,
    /// The crash model whose images are explored: `pessimistic` (none, all, each prefix, each omit-one,
    /// each torn last write) or `corrupting` (and torn writes with a garbage sector), or a stricter one.
    #[arg(long, default_value = "pessimistic")]
    pub(crate) crash_model: String,
    /// Seed files written: the first failure of each checker, up to this many.
    #[arg(long, default_value_t = 5)]
    pub(crate) max_seed_files: usize,
    /// After each cut, heal this many simulated ms after the node's reboot (if before the world's own
    /// heal); `0` keeps the world's heal.
    #[arg(long, default_value_t = 3_000)]
    pub(crate) horizon_ms: u64,
    /// Cuts only calls made at or after this simulated ms of the base run.
    #[arg(long, default_value_t = 0)]
    pub(crate) from_ms: u64,
    /// Cuts only calls made before this simulated ms (default: the end of the safety phase).
    #[arg(long)]
    pub(crate) to_ms: Option<u64>,
    /// Adds this many crash images per crash point, drawn at random from the crash model (per-sector
    /// choices the enumeration never makes), seeded by the world's seed, the node and the call.
    #[arg(long, default_value_t = 0)]
    pub(crate) random_images: u64,
    /// Keeps the world's planned crashes in the base run and cuts on top of them: a second cut in the
    /// recovery a planned cut leads to (by default the sweep's cut is the run's only crash).
    #[arg(long)]
    pub(crate) keep_planned_crashes: bool,
    /// Threads, each sweeping every `jobs`-th crash point (each runs the base world itself); default:
    /// the machine's cores.
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
}

pub(crate) fn sweep(args: &SweepArgs) -> Result<u8, Usage> {
    let plan = Plan::new(scenario_named(&args.scenario)?, &args.world)?;
    let mut config = plan.config(args.seed).map_err(Usage)?;
    config.spec = sim::sweep::base_spec(&config.spec, args.keep_planned_crashes);
    let model = scenarios::CrashModel::from_name(&args.crash_model).map(sim::crash_model).ok_or_else(|| {
        let names: Vec<&str> = scenarios::CrashModel::ALL.iter().map(|m| m.name()).collect();
        Usage(format!("--crash-model {:?}: one of {}", args.crash_model, names.join(", ")))
    })?;
    let nodes = if args.nodes.is_empty() { (0..config.spec.nodes).collect() } else { args.nodes.clone() };
    if let Some(bad) = nodes.iter().find(|&&n| n >= config.spec.nodes) {
        return Err(Usage(format!(
            "--node {bad}: the world has {} nodes (0..{})",
            config.spec.nodes, config.spec.nodes
        )));
    }
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        return Err(Usage("--jobs 0: at least one job".into()));
    }
    let horizon_ms = (args.horizon_ms > 0).then_some(args.horizon_ms);
    let started = Instant::now();
    let bar = terminal_bar(config.spec.safety_ms, "{elapsed_precise} [{bar:30}] {pos}/{len} simulated ms, {msg}");
    // Each thread runs the base world itself (a `World` holds `Rc`s and never crosses threads) and
    // cuts its share of the crash points; the bar shows the slowest thread's position.
    let progress: Vec<std::sync::Mutex<sim::sweep::SweepProgress>> = (0..jobs)
        .map(|_| {
            std::sync::Mutex::new(sim::sweep::SweepProgress {
                now_ns: 0,
                safety_end_ns: 1,
                crash_points: 0,
                images: 0,
                failures: 0,
            })
        })
        .collect();
    let reports: Vec<sim::sweep::SweepReport> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs)
            .map(|j| {
                let (config, nodes, progress, bar) = (&config, &nodes, &progress, &bar);
                scope.spawn(move || {
                    let shard = (j as u64, jobs as u64);
                    let window_ms = (args.from_ms, args.to_ms.unwrap_or(u64::MAX));
                    let options = sim::sweep::SweepOptions {
                        nodes: nodes.clone(),
                        model,
                        horizon_ms,
                        shard,
                        window_ms,
                        random_images: args.random_images,
                    };
                    sim::sweep::sweep(config, &options, |p| {
                        *progress[j].lock().expect("not poisoned") = *p;
                        let all: Vec<sim::sweep::SweepProgress> =
                            progress.iter().map(|m| *m.lock().expect("not poisoned")).collect();
                        let slowest = all.iter().map(|p| p.now_ns.min(p.safety_end_ns)).min().unwrap_or(0);
                        bar.set_position(slowest / 1_000_000);
                        bar.set_message(format!(
                            "{} crash points, {} images, {} failures",
                            all.iter().map(|p| p.crash_points).sum::<u64>(),
                            all.iter().map(|p| p.images).sum::<u64>(),
                            all.iter().map(|p| p.failures).sum::<u64>()
                        ));
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a sweep thread catches the runs' panics")).collect()
    });
    bar.finish_and_clear();
    let report = sim::sweep::merge(reports);
    let nodes_text: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
    let mut found_by = format!(
        "sim sweep --scenario {} --seed {}{} --crash-model {}",
        args.scenario,
        args.seed,
        plan.flags(),
        args.crash_model,
    );
    if args.keep_planned_crashes {
        found_by.push_str(" --keep-planned-crashes");
    }
    if args.random_images > 0 {
        found_by.push_str(&format!(" --random-images {}", args.random_images));
    }
    println!(
        "swept {} (seed {}, nodes {}): {} crash points, {} crash images, {} distinct images run, {} failures, {:.1} s",
        args.scenario,
        args.seed,
        nodes_text.join(","),
        report.crash_points,
        report.images_enumerated,
        report.images_run,
        report.failures.len(),
        started.elapsed().as_secs_f64()
    );
    if let Outcome::Violation(v) = &report.base {
        println!("the base run (no cut) itself fails: {} on {}: {}", v.checker, v.node, first_line(&v.detail));
    }
    let mut by_checker: BTreeMap<&str, Vec<&sim::sweep::SweepFailure>> = BTreeMap::new();
    for f in &report.failures {
        by_checker.entry(f.failure.checker()).or_default().push(f);
    }
    let mut code = report.base.exit_code();
    let mut written = 0;
    for (checker, failures) in &by_checker {
        let first = failures[0];
        println!(
            "  {checker}: {} images, first at node {} after call {} ({})",
            failures.len(),
            first.node,
            first.after_call,
            first.call
        );
        code = code.max(match &first.failure {
            sim::sweep::ImageFailure::Violation(v) => Outcome::Violation(v.clone()).exit_code(),
            sim::sweep::ImageFailure::Panic(_) => 13,
        });
        if written >= args.max_seed_files {
            continue;
        }
        written += 1;
        match write_sweep_seed_file(&plan, args, first, &found_by) {
            Ok((path, detail)) => println!("    {detail}\n    reproduce: sim replay {}", path.display()),
            Err(e) => println!("    (no seed file: {e})"),
        }
    }
    Ok(code)
}

/// Writes the seed file of a sweep failure: the base world with the cut as its plan. The file is replayed
/// once first, so that what it says it finds is what it finds.
pub(crate) fn write_sweep_seed_file(
    plan: &Plan,
    args: &SweepArgs,
    f: &sim::sweep::SweepFailure,
    found_by: &str,
) -> Result<(PathBuf, String), String> {
    let bugs = seedfile::bugs_named(&plan.bugs)?;
    let result = run_world(WorldConfig::new(f.spec.clone(), bugs));
    let what =
        format!("power cut on node {} after call {} ({}), image {}", f.node, f.after_call, f.call, f.image_label);
    let overrides = seedfile::overrides_between(&plan.scenario.world(args.seed), &f.spec);
    let note = format!("found by `{found_by}`: {what}");
    let (_, found) = expectation(&result)
        .ok_or_else(|| format!("{what}: the replayed seed file passes (a sweep/replay mismatch)"))?;
    let file = seed_file(plan, args.seed, overrides, f.spec.clone(), &result, &note)?;
    let name = format!("sweep_{}-{}-n{}-c{}", plan.scenario.name.replace('/', "_"), args.seed, f.node, f.after_call);
    let path = store_seed_file(&file, &args.world, &name, &plan.bugs)?;
    Ok((path, format!("{what}: {found}")))
}
