//! The `sim` command: `list`, `run`, `explore`, `replay` — the CLI contract of `harness.md`.
//!
//! Why a thin layer: everything a run is (world, switches, checkers, trace, seed files) lives in the
//! library, so that tests and `cargo xtask regress` see exactly what a user sees. This file only parses
//! arguments, runs seeds (in parallel for `explore`; each run stays single-threaded and deterministic),
//! prints, and writes result and seed files atomically. It is host-facing: it may print, read the clock
//! for progress and budgets, spawn threads and touch the filesystem.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use raft_core::Bug;
use scenarios::{Scenario, WorldSpec};
use serde_json::{Map, Value, json};
use sim::seedfile::{self, Expect, ExpectedOutcome, SeedFile};
use sim::{Outcome, RunResult, WorldConfig};

const EXIT_CODES: &str = "\
Exit codes:
  0   every run passed
  10  a safety or correctness violation (election-safety, log-matching, linearizability, commit-durability, …)
  11  a liveness violation (converges, lagging-follower-caught-up)
  12  a node failed to boot or recover (node-boots, registered-implies-config)
  13  the system under test panicked
  14  `explore --determinism`: a seed ran twice gave two different runs
  2   a usage error (unknown scenario or bug, bad --seeds or --shard, unreadable seed file, `merge` of files
      that are not the shards of one exploration, …)
  130 interrupted (Ctrl-C) before any failure
  1   `replay --check`: a file's outcome or checker differs from what it expects
`merge` exits with the code of the first failing seed of its files (0 if none failed), as `explore` over the
whole range would have.";

/// Deterministic simulation of Ra-style Raft clusters on a filesystem that loses what a power cut loses.
#[derive(Parser)]
#[command(name = "sim", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lists the named scenarios, the bug switches or the checkers.
    List {
        /// What to list.
        what: ListWhat,
    },
    /// Runs one scenario with one seed.
    Run(RunArgs),
    /// Runs a range of seeds of a scenario (or of swarm), in parallel; writes a seed file per failure.
    Explore(ExploreArgs),
    /// Cuts power after every call of one run that changes or syncs a node's disk, in every crash image
    /// the disk admits there, and runs each to the end under every checker.
    Sweep(SweepArgs),
    /// Combines the `--out` files of an exploration's shards: its failures and summary, and the exit code
    /// `explore` over the whole range would have given.
    Merge(MergeArgs),
    /// Replays seed files and says whether each still finds what it expects.
    Replay(ReplayArgs),
    /// Shrinks a failing seed file: fewer faults, smaller crash images, a shorter and smaller world that
    /// still fails with the same checker; writes the result as a seed file with an explicit fault plan.
    Shrink(ShrinkArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum ListWhat {
    Scenarios,
    Bugs,
    Checkers,
}

#[derive(Args)]
struct WorldArgs {
    /// A pre-fix behaviour to switch on (repeatable); `sim list bugs` names them.
    #[arg(long = "bug", value_name = "NAME")]
    bugs: Vec<String>,
    /// Sets a knob of the scenario's world (repeatable), e.g. `--set groups=2`.
    #[arg(long = "set", value_name = "KNOB=VALUE")]
    sets: Vec<String>,
    /// Where a failure's seed file is written.
    #[arg(long, value_name = "DIR", default_value = "seeds/found")]
    seed_dir: PathBuf,
}

#[derive(Args)]
struct RunArgs {
    /// The scenario (`sim list scenarios`).
    #[arg(long)]
    scenario: String,
    /// The seed.
    #[arg(long)]
    seed: u64,
    #[command(flatten)]
    world: WorldArgs,
    /// Prints the rendered trace (with its legend) before the result.
    #[arg(long)]
    trace: bool,
    /// With --trace: a MSG line per message delivered or dropped.
    #[arg(long)]
    messages: bool,
    /// With --trace: an FS line per filesystem call that changes or syncs a disk.
    #[arg(long)]
    fs: bool,
    /// Prints the result as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ExploreArgs {
    /// The scenario (`sim list scenarios`).
    #[arg(long, conflicts_with = "swarm", required_unless_present = "swarm")]
    scenario: Option<String>,
    /// Swarm: a random world per seed (the same as `--scenario swarm`).
    #[arg(long)]
    swarm: bool,
    /// The seeds, `A..B` (B excluded).
    #[arg(long)]
    seeds: String,
    /// Runs only shard I of N (0 <= I < N) of the seeds: seed s is in shard (s - A) mod N, so the N shards
    /// are disjoint and together exactly A..B. `sim merge` combines the shards' --out files.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    #[command(flatten)]
    world: WorldArgs,
    /// Runs at once (each run is single-threaded); default: the machine's cores.
    #[arg(long)]
    jobs: Option<usize>,
    /// Writes one JSON object per seed to this file (in seed order); each names its exploration (scenario,
    /// bugs, overrides, seeds, shard), which `sim merge` checks.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Prints one JSON object per seed to stdout (in seed order).
    #[arg(long)]
    json: bool,
    /// Stops at the first failure.
    #[arg(long)]
    stop_on_failure: bool,
    /// Starts no new seed after this many wall-clock seconds.
    #[arg(long, value_name = "SECS")]
    time_budget: Option<u64>,
    /// Prints the coverage counts summed over the seeds (and in how many seeds each happened), and the
    /// coverage marks no seed hit.
    #[arg(long)]
    coverage: bool,
    /// Runs every seed twice more and fails it (exit 14) if the two runs differ anywhere.
    #[arg(long)]
    determinism: bool,
}

#[derive(Args)]
struct SweepArgs {
    /// The scenario whose world is swept (its crash faults are taken out: the sweep makes its own).
    #[arg(long)]
    scenario: String,
    /// The seed of the scenario's world.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    world: WorldArgs,
    /// The node whose calls are cut (repeatable; default: every node).
    #[arg(long = "node", value_name = "N")]
    nodes: Vec<usize>,
    /// The crash model whose images are explored: `pessimistic` (none, all, each prefix, each omit-one,
    /// each torn last write) or `corrupting` (and torn writes with a garbage sector), or a stricter one.
    #[arg(long, default_value = "pessimistic")]
    crash_model: String,
    /// Seed files written: the first failure of each checker, up to this many.
    #[arg(long, default_value_t = 5)]
    max_seed_files: usize,
    /// After each cut, heal this many simulated ms after the node's reboot (if before the world's own
    /// heal); `0` keeps the world's heal.
    #[arg(long, default_value_t = 3_000)]
    horizon_ms: u64,
    /// Cuts only calls made at or after this simulated ms of the base run.
    #[arg(long, default_value_t = 0)]
    from_ms: u64,
    /// Cuts only calls made before this simulated ms (default: the end of the safety phase).
    #[arg(long)]
    to_ms: Option<u64>,
    /// Adds this many crash images per crash point, drawn at random from the crash model (per-sector
    /// choices the enumeration never makes), seeded by the world's seed, the node and the call.
    #[arg(long, default_value_t = 0)]
    random_images: u64,
    /// Keeps the world's planned crashes in the base run and cuts on top of them: a second cut in the
    /// recovery a planned cut leads to (by default the sweep's cut is the run's only crash).
    #[arg(long)]
    keep_planned_crashes: bool,
    /// Threads, each sweeping every `jobs`-th crash point (each runs the base world itself); default:
    /// the machine's cores.
    #[arg(long)]
    jobs: Option<usize>,
}

#[derive(Args)]
struct MergeArgs {
    /// `explore --out` files (or `merge --json` output), one or more per shard of one exploration, in any order.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Prints the merged JSON lines on stdout (in seed order, as the files have them: mergeable again)
    /// and the report on stderr.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ReplayArgs {
    /// Seed files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Prints each run's rendered trace.
    #[arg(long)]
    trace: bool,
    /// Prints each result as one JSON object.
    #[arg(long)]
    json: bool,
    /// Exit 0 exactly when every file's outcome and checker are what it expects and, for a file that
    /// expects a bug switch to be found, the same world passes with the switches off (drift is reported
    /// only).
    #[arg(long)]
    check: bool,
}

#[derive(Args)]
struct ShrinkArgs {
    /// The seed file (it must expect a violation, and find it).
    file: PathBuf,
    /// Where the shrunk seed file is written.
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    out: PathBuf,
    /// Candidate runs to spend at most (each a whole run of the world).
    #[arg(long, value_name = "N", default_value_t = sim::shrink::DEFAULT_MAX_RUNS)]
    max_runs: usize,
}

/// A usage error: one line, exit 2.
struct Usage(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::List { what } => Ok(list(what)),
        Command::Run(args) => run(&args),
        Command::Explore(args) => explore(&args),
        Command::Sweep(args) => sweep(&args),
        Command::Merge(args) => merge(&args),
        Command::Replay(args) => replay(&args),
        Command::Shrink(args) => shrink(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Usage(message)) => {
            eprintln!("sim: error: {message}");
            ExitCode::from(2)
        }
    }
}

fn list(what: ListWhat) -> u8 {
    match what {
        ListWhat::Scenarios => {
            for s in scenarios::catalogue() {
                println!("{}", s.name);
                for line in s.why.lines() {
                    println!("    {}", line.trim());
                }
                if !s.targets.is_empty() {
                    println!("    targets: {}", s.targets.join(", "));
                }
            }
        }
        ListWhat::Bugs => {
            for b in Bug::ALL {
                println!("{}", b.name());
            }
        }
        ListWhat::Checkers => {
            for c in sim::checkers::CHECKERS {
                println!("{c}");
            }
        }
    }
    0
}

fn scenario_named(name: &str) -> Result<Scenario, Usage> {
    scenarios::find(name).ok_or_else(|| {
        let valid: Vec<&str> = scenarios::catalogue().iter().map(|s| s.name).collect();
        Usage(format!("unknown scenario {name:?}; valid: {}", valid.join(", ")))
    })
}

/// Everything a seed needs besides the seed: the scenario, the overrides, the switches.
#[derive(Clone)]
struct Plan {
    scenario: Scenario,
    overrides: Map<String, Value>,
    bugs: Vec<String>,
}

impl Plan {
    fn new(scenario: Scenario, world: &WorldArgs) -> Result<Plan, Usage> {
        let mut overrides = Map::new();
        for set in &world.sets {
            seedfile::parse_override(set, &mut overrides).map_err(Usage)?;
        }
        seedfile::bugs_named(&world.bugs).map_err(Usage)?;
        let plan = Plan { scenario, overrides, bugs: world.bugs.clone() };
        // Checked once here so that a bad knob is a usage error, not a failure of every seed.
        plan.config(0).map_err(Usage)?;
        Ok(plan)
    }

    fn spec(&self, seed: u64) -> Result<WorldSpec, String> {
        seedfile::apply_overrides(&self.scenario.world(seed), &self.overrides)
    }

    fn config(&self, seed: u64) -> Result<WorldConfig, String> {
        let config = WorldConfig::new(self.spec(seed)?, seedfile::bugs_named(&self.bugs)?);
        config.validate()?;
        Ok(config)
    }

    /// The command that runs `seed` again.
    fn reproduce(&self, seed: u64) -> String {
        let mut cmd = format!("sim run --scenario {} --seed {seed}", self.scenario.name);
        for b in &self.bugs {
            cmd.push_str(&format!(" --bug {b}"));
        }
        for (k, v) in &self.overrides {
            cmd.push_str(&format!(" --set {k}={v}"));
        }
        cmd
    }
}

/// One finished seed.
struct Finished {
    seed: u64,
    /// The run, or the panic message of the system under test.
    result: Result<RunResult, String>,
    /// With `--determinism`: where a second run of the seed first differed.
    diverged: Option<String>,
    wall_ms: u128,
}

impl Finished {
    fn exit_code(&self) -> u8 {
        if self.diverged.is_some() {
            return 14;
        }
        match &self.result {
            Ok(r) => r.outcome.exit_code(),
            Err(_) => 13,
        }
    }

    fn failed(&self) -> bool {
        self.exit_code() != 0
    }

    /// One line: outcome, checker, node, detail.
    fn summary(&self) -> String {
        if let Some(d) = &self.diverged {
            return format!("NOT DETERMINISTIC: {d}");
        }
        match &self.result {
            Ok(r) => match &r.outcome {
                Outcome::Pass => format!(
                    "PASS ({:.1} s simulated, {} events, trace {:016x})",
                    r.sim_time_ns as f64 / 1e9,
                    r.events,
                    r.trace_hash
                ),
                Outcome::Violation(v) => format!(
                    "VIOLATION {} on {} at {:.3} s: {}",
                    v.checker,
                    v.node,
                    v.time_ns as f64 / 1e9,
                    first_line(&v.detail)
                ),
            },
            Err(panic) => format!("PANIC in the system under test: {}", first_line(panic)),
        }
    }

    fn json(&self, plan: &Plan) -> Value {
        let (outcome, checker, node, detail) = match &self.result {
            _ if self.diverged.is_some() => ("nondeterministic", None, None, self.diverged.clone()),
            Ok(r) => match &r.outcome {
                Outcome::Pass => ("pass", None, None, None),
                Outcome::Violation(v) => {
                    ("violation", Some(v.checker.clone()), Some(v.node.clone()), Some(v.detail.clone()))
                }
            },
            Err(panic) => ("panic", None, None, Some(panic.clone())),
        };
        let run = self.result.as_ref().ok();
        json!({
            "seed": self.seed,
            "scenario": plan.scenario.name,
            "bugs": plan.bugs,
            "overrides": plan.overrides,
            "outcome": outcome,
            "checker": checker,
            "node": node,
            "detail": detail,
            "sim_time_ns": run.map(|r| r.sim_time_ns),
            "events": run.map(|r| r.events),
            "trace_hash": run.map(|r| format!("{:016x}", r.trace_hash)),
            "wall_ms": self.wall_ms,
            "exit_code": self.exit_code(),
            "reproduce": plan.reproduce(self.seed),
        })
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// Runs one world, catching a panic of the system under test.
fn run_world(config: WorldConfig) -> Result<RunResult, String> {
    catch_unwind(AssertUnwindSafe(|| sim::run(config))).map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

fn run_seed(plan: &Plan, seed: u64, trace_messages: bool, trace_fs: bool) -> Finished {
    let started = Instant::now();
    let mut config = plan.config(seed).expect("checked when the plan was made");
    config.trace_messages = trace_messages;
    config.trace_fs = trace_fs;
    let result = run_world(config);
    Finished { seed, result, diverged: None, wall_ms: started.elapsed().as_millis() }
}

/// Runs `seed` twice (`explore --determinism`): a divergence is a failure of its own.
fn run_seed_twice(plan: &Plan, seed: u64) -> Finished {
    let started = Instant::now();
    let config = plan.config(seed).expect("checked when the plan was made");
    let diverged = match catch_unwind(AssertUnwindSafe(|| sim::check_determinism(&config))) {
        Ok(Ok(_)) | Err(_) => None, // a panic is reported by the run below
        Ok(Err(d)) => {
            Some(format!("first divergence at step {}: {:?} / {:?}", d.event, d.last_lines.0, d.last_lines.1))
        }
    };
    let result = run_world(config);
    Finished { seed, result, diverged, wall_ms: started.elapsed().as_millis() }
}

/// Writes the seed file of a failure (atomically: a temporary file renamed into place); its path.
fn write_seed_file(plan: &Plan, f: &Finished, dir: &Path, found_by: &str) -> Result<PathBuf, String> {
    if f.diverged.is_some() {
        return Err("a nondeterministic run has no seed file (it would not replay)".into());
    }
    let (outcome, checker, note) = match &f.result {
        Ok(r) => match &r.outcome {
            Outcome::Pass => return Err("a passing run has no seed file".into()),
            Outcome::Violation(v) => (
                ExpectedOutcome::Violation,
                Some(v.checker.clone()),
                format!("found by `{found_by}`: {} on {}: {}", v.checker, v.node, first_line(&v.detail)),
            ),
        },
        Err(panic) => (ExpectedOutcome::Panic, None, format!("found by `{found_by}`: panic: {}", first_line(panic))),
    };
    let file = SeedFile {
        format_version: seedfile::FORMAT_VERSION,
        scenario: plan.scenario.name.into(),
        seed: f.seed,
        bugs: plan.bugs.clone(),
        overrides: plan.overrides.clone(),
        expect: Expect { outcome, checker },
        note,
        trace_hash: f.result.as_ref().map(|r| format!("{:016x}", r.trace_hash)).unwrap_or_default(),
        world: plan.spec(f.seed)?,
    };
    let name = format!("{}-{}", plan.scenario.name.replace('/', "_"), f.seed);
    store_seed_file(&file, dir, &name, &plan.bugs)
}

/// Writes `file` as `DIR/NAME-BUG….json`, atomically (a temporary file renamed into place); its path.
fn store_seed_file(file: &SeedFile, dir: &Path, name: &str, bugs: &[String]) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name: String = std::iter::once(name.to_owned()).chain(bugs.iter().map(|b| format!("-{b}"))).collect();
    let path = dir.join(format!("{name}.json"));
    let tmp = dir.join(format!(".{name}.json.tmp"));
    std::fs::write(&tmp, file.render()).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Prints a failure's reproduce line and writes its seed file.
fn report_failure(plan: &Plan, f: &Finished, seed_dir: &Path, found_by: &str) {
    let file = match write_seed_file(plan, f, seed_dir, found_by) {
        Ok(path) => format!("sim replay {}", path.display()),
        Err(e) => format!("(no seed file: {e})"),
    };
    println!("seed {}: {}\n  reproduce: {}   or   {file}", f.seed, f.summary(), plan.reproduce(f.seed));
}

fn run(args: &RunArgs) -> Result<u8, Usage> {
    let plan = Plan::new(scenario_named(&args.scenario)?, &args.world)?;
    let f = run_seed(&plan, args.seed, args.messages, args.fs);
    if args.trace
        && let Ok(r) = &f.result
    {
        println!("{}\n", sim::trace::LEGEND);
        for line in &r.trace {
            println!("{line}");
        }
        println!();
    }
    if args.json {
        println!("{}", f.json(&plan));
    } else if f.failed() {
        report_failure(&plan, &f, &args.world.seed_dir, &plan.reproduce(args.seed));
    } else {
        println!("seed {}: {}", f.seed, f.summary());
    }
    Ok(f.exit_code())
}

fn parse_seeds(text: &str) -> Result<(u64, u64), Usage> {
    let bad = || Usage(format!("--seeds {text:?}: expected A..B with A < B (B excluded), e.g. 0..1000"));
    let (a, b) = text.split_once("..").ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
    if a >= b {
        return Err(Usage(format!("--seeds {text:?} is empty: A must be below B")));
    }
    Ok((a, b))
}

/// `--shard I/N`: shard I of N, 0 <= I < N.
fn parse_shard(text: &str) -> Result<(u64, u64), Usage> {
    let bad = || Usage(format!("--shard {text:?}: expected I/N with 0 <= I < N, e.g. 0/4"));
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// How many seeds of `first..end` shard `shard` of `shards` has: those `s` with `(s - first) % shards == shard`.
fn shard_len(first: u64, end: u64, shard: u64, shards: u64) -> u64 {
    (end - first).saturating_sub(shard).div_ceil(shards)
}

fn explore(args: &ExploreArgs) -> Result<u8, Usage> {
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
    let found_by = format!(
        "sim explore --scenario {name} --seeds {first}..{end}{shard_arg}{}",
        plan.bugs.iter().map(|b| format!(" --bug {b}")).collect::<String>()
    );
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
    let bar = if terminal {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} seeds, {per_sec}, {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_message("0 failures");
        bar
    } else {
        ProgressBar::hidden()
    };

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
                    let f = if determinism { run_seed_twice(&plan, seed) } else { run_seed(&plan, seed, false, false) };
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
                bar.suspend(|| report_failure(&plan, &f, &args.world.seed_dir, &found_by));
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
        let summed = coverage.iter().map(|(k, (n, _))| (*k, *n)).collect();
        println!("coverage marks missed: {:?}", sim::missed_marks(&summed));
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

/// This process's peak resident set (Linux: `VmHWM` in `/proc/self/status`), in MiB.
fn peak_memory_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib.div_ceil(1024))
}

fn sweep(args: &SweepArgs) -> Result<u8, Usage> {
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
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(config.spec.safety_ms);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} simulated ms, {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
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
        "sim sweep --scenario {} --seed {}{}{} --crash-model {}",
        args.scenario,
        args.seed,
        plan.bugs.iter().map(|b| format!(" --bug {b}")).collect::<String>(),
        plan.overrides.iter().map(|(k, v)| format!(" --set {k}={v}")).collect::<String>(),
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
fn write_sweep_seed_file(
    plan: &Plan,
    args: &SweepArgs,
    f: &sim::sweep::SweepFailure,
    found_by: &str,
) -> Result<(PathBuf, String), String> {
    let bugs = seedfile::bugs_named(&plan.bugs)?;
    let result = run_world(WorldConfig::new(f.spec.clone(), bugs));
    let what =
        format!("power cut on node {} after call {} ({}), image {}", f.node, f.after_call, f.call, f.image_label);
    let (outcome, checker, detail) = match &result {
        Ok(r) => match &r.outcome {
            Outcome::Pass => return Err(format!("{what}: the replayed seed file passes (a sweep/replay mismatch)")),
            Outcome::Violation(v) => (
                ExpectedOutcome::Violation,
                Some(v.checker.clone()),
                format!("{} on {}: {}", v.checker, v.node, first_line(&v.detail)),
            ),
        },
        Err(panic) => (ExpectedOutcome::Panic, None, format!("panic: {}", first_line(panic))),
    };
    let file = SeedFile {
        format_version: seedfile::FORMAT_VERSION,
        scenario: plan.scenario.name.into(),
        seed: args.seed,
        bugs: plan.bugs.clone(),
        overrides: seedfile::overrides_between(&plan.scenario.world(args.seed), &f.spec),
        expect: Expect { outcome, checker },
        note: format!("found by `{found_by}`: {what}: {detail}"),
        trace_hash: result.as_ref().map(|r| format!("{:016x}", r.trace_hash)).unwrap_or_default(),
        world: f.spec.clone(),
    };
    let name = format!("sweep_{}-{}-n{}-c{}", plan.scenario.name.replace('/', "_"), args.seed, f.node, f.after_call);
    let path = store_seed_file(&file, &args.world.seed_dir, &name, &plan.bugs)?;
    Ok((path, format!("{what}: {detail}")))
}

/// What every line of one exploration's `--out` files shares; `merge` refuses lines that differ.
#[derive(PartialEq)]
struct Exploration {
    scenario: String,
    /// Sorted: `--bug a --bug b` and `--bug b --bug a` are one exploration.
    bugs: Vec<String>,
    overrides: Value,
    first: u64,
    end: u64,
    shards: u64,
}

impl Exploration {
    /// The first way `self` differs from `other`, for the error message.
    fn difference(&self, other: &Exploration) -> String {
        if self.scenario != other.scenario {
            format!("scenario {} (not {})", self.scenario, other.scenario)
        } else if self.bugs != other.bugs {
            format!("bugs {:?} (not {:?})", self.bugs, other.bugs)
        } else if self.overrides != other.overrides {
            format!("overrides {} (not {})", self.overrides, other.overrides)
        } else {
            format!(
                "seeds {}..{} in {} shards (not {}..{} in {})",
                self.first, self.end, self.shards, other.first, other.end, other.shards
            )
        }
    }
}

/// One seed's line of an `explore --out` file.
struct SeedLine {
    seed: u64,
    shard: u64,
    outcome: String,
    checker: String,
    node: String,
    detail: String,
    exit_code: u8,
    wall_ms: u64,
    reproduce: String,
    /// The line as the file has it (what `merge --json` prints).
    text: String,
    /// `FILE:LINE`, for messages.
    at: String,
}

impl SeedLine {
    /// One line, as `explore` reports a failure (without the violation's time, which the JSON lacks).
    fn summary(&self) -> String {
        match self.outcome.as_str() {
            "violation" => format!("VIOLATION {} on {}: {}", self.checker, self.node, first_line(&self.detail)),
            "panic" => format!("PANIC in the system under test: {}", first_line(&self.detail)),
            "nondeterministic" => format!("NOT DETERMINISTIC: {}", self.detail),
            other => other.to_uppercase(),
        }
    }
}

/// Parses one line of an `explore --out` file; a one-line error.
fn parse_seed_line(text: &str, at: String) -> Result<(Exploration, SeedLine), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let field = |name: &str| {
        v.get(name).ok_or_else(|| format!("no {name:?} field: not a line of `sim explore --out` (or of an older sim)"))
    };
    let string =
        |name: &str| field(name)?.as_str().map(str::to_owned).ok_or_else(|| format!("{name:?} is not a string"));
    let number = |name: &str| field(name)?.as_u64().ok_or_else(|| format!("{name:?} is not a whole number"));
    let optional = |name: &str| v.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
    let seeds = string("seeds")?;
    let (first, end) = parse_seeds(&seeds).map_err(|Usage(m)| format!("\"seeds\": {m}"))?;
    let (shard, shards) = parse_shard(&string("shard")?).map_err(|Usage(m)| format!("\"shard\": {m}"))?;
    let mut bugs: Vec<String> = field("bugs")?
        .as_array()
        .and_then(|a| a.iter().map(|b| b.as_str().map(str::to_owned)).collect())
        .ok_or("\"bugs\" is not a list of names")?;
    bugs.sort();
    let overrides = field("overrides")?.clone();
    if !overrides.is_object() {
        return Err("\"overrides\" is not an object".into());
    }
    let seed = number("seed")?;
    if seed < first || seed >= end || (seed - first) % shards != shard {
        return Err(format!("seed {seed} is not in shard {shard}/{shards} of {seeds}"));
    }
    let exit_code = u8::try_from(number("exit_code")?).map_err(|_| "\"exit_code\" is above 255".to_string())?;
    let exploration = Exploration { scenario: string("scenario")?, bugs, overrides, first, end, shards };
    let line = SeedLine {
        seed,
        shard,
        outcome: string("outcome")?,
        checker: optional("checker"),
        node: optional("node"),
        detail: optional("detail"),
        exit_code,
        wall_ms: v.get("wall_ms").and_then(Value::as_u64).unwrap_or(0),
        reproduce: string("reproduce")?,
        text: text.trim().to_owned(),
        at,
    };
    Ok((exploration, line))
}

fn merge(args: &MergeArgs) -> Result<u8, Usage> {
    let mut exploration: Option<(Exploration, String)> = None;
    let mut lines: BTreeMap<u64, SeedLine> = BTreeMap::new();
    for path in &args.files {
        let text = std::fs::read_to_string(path).map_err(|e| Usage(format!("{}: {e}", path.display())))?;
        for (index, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let at = format!("{}:{}", path.display(), index + 1);
            let (e, line) = parse_seed_line(raw, at.clone()).map_err(|m| Usage(format!("{at}: {m}")))?;
            match &exploration {
                None => exploration = Some((e, at.clone())),
                Some((known, first_at)) if *known != e => {
                    return Err(Usage(format!("{at}: another exploration than {first_at}'s: {}", e.difference(known))));
                }
                Some(_) => {}
            }
            if let Some(other) = lines.get(&line.seed) {
                return Err(Usage(format!("{at}: seed {} again (already in {})", line.seed, other.at)));
            }
            lines.insert(line.seed, line);
        }
    }
    // With --json, stdout carries only the merged lines (mergeable again, readable by jq).
    let report = |text: String| if args.json { eprintln!("{text}") } else { println!("{text}") };
    let Some((e, _)) = exploration else {
        report(format!("no seeds in the {} file(s)", args.files.len()));
        return Ok(0);
    };
    if args.json {
        for line in lines.values() {
            println!("{}", line.text);
        }
    }
    let failures: Vec<&SeedLine> = lines.values().filter(|l| l.exit_code != 0).collect();
    for f in &failures {
        report(format!("seed {}: {}\n  reproduce: {}", f.seed, f.summary(), f.reproduce));
    }
    // Seeds of the range not in the files: a shard stopped early (time budget, Ctrl-C, a failure with
    // --stop-on-failure, killed) or not given. Reported, as `explore` reports a budget it reached.
    let mut per_shard: BTreeMap<u64, u64> = BTreeMap::new();
    for l in lines.values() {
        *per_shard.entry(l.shard).or_default() += 1;
    }
    let mut missing: Vec<String> = per_shard
        .iter()
        .filter_map(|(&i, &got)| {
            let want = shard_len(e.first, e.end, i, e.shards);
            (got < want).then(|| format!("{got} of the {want} seeds of shard {i}/{}", e.shards))
        })
        .collect();
    let non_empty = e.shards.min(e.end - e.first);
    let absent = non_empty - per_shard.len() as u64;
    if absent > 0 {
        let named: Vec<String> = (0..non_empty)
            .filter(|i| !per_shard.contains_key(i))
            .take(8)
            .map(|i| format!("{i}/{}", e.shards))
            .collect();
        let more = if absent > 8 { ", …" } else { "" };
        let shards = if absent == 1 { "shard" } else { "shards" };
        missing.push(format!("no seed of {shards} {}{more}", named.join(", ")));
    }
    let why = if missing.is_empty() { String::new() } else { format!(" ({})", missing.join("; ")) };
    let run_s = lines.values().map(|l| l.wall_ms).sum::<u64>() as f64 / 1000.0;
    report(format!(
        "{}: {} of {} seeds run{why}, {} failed, merged from {} file(s) ({} of {} shards, {run_s:.1} s of runs)",
        e.scenario,
        lines.len(),
        e.end - e.first,
        failures.len(),
        args.files.len(),
        per_shard.len(),
        e.shards,
    ));
    if let Some(first) = failures.first() {
        report(format!("failing seeds: {}", failures.iter().map(|f| f.seed.to_string()).collect::<Vec<_>>().join(" ")));
        report(format!("first failure: seed {}", first.seed));
    }
    Ok(failures.first().map_or(0, |f| f.exit_code))
}

fn replay(args: &ReplayArgs) -> Result<u8, Usage> {
    let mut files = Vec::new();
    for path in &args.files {
        let text = std::fs::read_to_string(path).map_err(|e| Usage(format!("{}: {e}", path.display())))?;
        let file = SeedFile::parse(&text).map_err(|e| Usage(format!("{}: {e}", path.display())))?;
        files.push((path, file));
    }
    let mut code = 0;
    let mut mismatches = 0;
    for (path, file) in files {
        let scenario = scenario_named(&file.scenario)?;
        let plan = Plan { scenario, overrides: file.overrides.clone(), bugs: file.bugs.clone() };
        let config = file.config().map_err(|e| Usage(format!("{}: {e}", path.display())))?;
        if plan.spec(file.seed).as_ref() != Ok(&file.world) {
            println!(
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

fn shrink(args: &ShrinkArgs) -> Result<u8, Usage> {
    let path = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).map_err(|e| Usage(format!("{path}: {e}")))?;
    let file = SeedFile::parse(&text).map_err(|e| Usage(format!("{path}: {e}")))?;
    let checker = match (&file.expect.outcome, &file.expect.checker) {
        (ExpectedOutcome::Violation, Some(c)) => c.clone(),
        _ => return Err(Usage(format!("{path}: it expects no violation of a named checker: nothing to shrink"))),
    };
    let scenario = scenario_named(&file.scenario)?;
    let config = file.config().map_err(|e| Usage(format!("{path}: {e}")))?;
    let started = Instant::now();
    // A candidate world may panic the system under test; it is then simply not the same failure.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let msg = info.payload().downcast_ref::<String>().map(String::as_str);
        let msg = msg.or_else(|| info.payload().downcast_ref::<&str>().copied()).unwrap_or("");
        eprintln!("sim: a candidate panicked (not the same failure): {}", first_line(msg));
    }));
    let shrunk = sim::shrink::shrink(&config, &checker, args.max_runs);
    std::panic::set_hook(hook);
    let shrunk = shrunk.map_err(|e| Usage(format!("{path}: {e}")))?;
    let wall = started.elapsed().as_secs_f64();

    let (b, a) = (&shrunk.before, &shrunk.after);
    println!(
        "{path}: {checker}, shrunk in {} runs, {wall:.1} s{}",
        shrunk.runs,
        if shrunk.budget_exhausted { " (run budget spent)" } else { "" }
    );
    println!("  {:<34} {:>12} {:>12}", "", "before", "after");
    let secs = |ns: u64| format!("{:.3} s", ns as f64 / 1e9);
    let rows = [
        ("faults (plan entries)", b.faults.to_string(), a.faults.to_string()),
        ("  of which carry a reboot cut", b.reboot_cuts.to_string(), a.reboot_cuts.to_string()),
        ("unsynced pieces the images keep", b.kept_pieces.to_string(), a.kept_pieces.to_string()),
        ("events", b.events.to_string(), a.events.to_string()),
        ("simulated time", secs(b.sim_time_ns), secs(a.sim_time_ns)),
    ];
    for (what, before, after) in rows {
        println!("  {what:<34} {before:>12} {after:>12}");
    }
    let changed = changed_knobs(&file.world, &shrunk.config.spec);
    if !changed.is_empty() {
        println!("  knobs: {}", changed.join(", "));
    }
    println!("steps:");
    for step in &shrunk.steps {
        println!("  {step}");
    }
    println!("shrunk plan:");
    for line in sim::shrink::describe_plan(&shrunk.config.spec.fault_plan, &shrunk.result.fired_cuts) {
        println!("  {line}");
    }
    if shrunk.config.spec.fault_plan.is_empty() {
        let w = &shrunk.config.spec;
        let net = [
            ("message loss", w.message_loss_percent),
            ("duplication", w.message_duplicate_percent),
            ("overtaking", w.message_reorder_percent),
        ];
        let net: Vec<String> = net.iter().filter(|(_, p)| *p > 0).map(|(what, p)| format!("{what} {p}%")).collect();
        if net.is_empty() {
            println!("  (no fault: the failure needs only an interleaving)");
        } else {
            println!("  (no planned fault; the safety phase keeps {})", net.join(", "));
        }
    }
    println!("what happens (the shrunk run's crash, disk, failure and violation lines):");
    let notable =
        |l: &&String| l.split_whitespace().nth(2).is_some_and(|k| ["CRASH", "DISK", "FAIL", "VIOLATION"].contains(&k));
    for line in shrunk.result.trace.iter().filter(notable).take(40) {
        println!("  {line}");
    }

    let v = match &shrunk.result.outcome {
        Outcome::Violation(v) => v,
        Outcome::Pass => unreachable!("a shrunk world fails"),
    };
    // Every knob that differs from the scenario's world, so that replay finds the world it derives.
    let overrides = seedfile::overrides_between(&scenario.world(file.seed), &shrunk.config.spec);
    let out = SeedFile {
        format_version: seedfile::FORMAT_VERSION,
        scenario: file.scenario.clone(),
        seed: file.seed,
        bugs: file.bugs.clone(),
        overrides,
        expect: file.expect.clone(),
        note: format!(
            "shrunk by `sim shrink` from {} ({} → {} faults, {} → {} kept unsynced pieces, {} → {} events): {} on {}: {}",
            args.file.file_name().map_or(path.clone(), |n| n.to_string_lossy().into_owned()),
            b.faults,
            a.faults,
            b.kept_pieces,
            a.kept_pieces,
            b.events,
            a.events,
            v.checker,
            v.node,
            first_line(&v.detail)
        ),
        trace_hash: format!("{:016x}", shrunk.result.trace_hash),
        world: shrunk.config.spec.clone(),
    };
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Usage(format!("cannot create {}: {e}", dir.display())))?;
    }
    let tmp = args.out.with_extension("json.tmp");
    std::fs::write(&tmp, out.render()).map_err(|e| Usage(format!("cannot write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, &args.out).map_err(|e| Usage(format!("cannot write {}: {e}", args.out.display())))?;
    println!("wrote {} (check it: sim replay --check {})", args.out.display(), args.out.display());
    Ok(0)
}

/// `knob a → b` for every knob but the plan that shrinking changed.
fn changed_knobs(from: &WorldSpec, to: &WorldSpec) -> Vec<String> {
    let before = match serde_json::to_value(from).expect("a world serialises") {
        Value::Object(m) => m,
        _ => unreachable!("a world is an object"),
    };
    seedfile::overrides_between(from, to)
        .into_iter()
        .filter(|(k, _)| k != "fault_plan")
        .map(|(k, v)| format!("{k} {} → {v}", before.get(&k).map_or(String::new(), Value::to_string)))
        .collect()
}
