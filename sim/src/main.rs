//! The `sim` command: `list`, `run`, `explore`, `sweep`, `hunt`, `merge`, `replay`, `shrink`, `check-history`.
//!
//! Why a thin layer: everything a run is (world, switches, checkers, trace, seed files) lives in the
//! library, so that tests and `cargo xtask regress` see exactly what a user sees. This file only parses
//! the command line and dispatches to its subcommand's module in `cli/`.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

use cli::Usage;
use cli::check_history::CheckHistoryArgs;
use cli::explore::ExploreArgs;
use cli::fuzz::FuzzArgs;
use cli::hunt::HuntArgs;
use cli::list::ListWhat;
use cli::merge::MergeArgs;
use cli::replay::ReplayArgs;
use cli::run::RunArgs;
use cli::shrink::ShrinkArgs;
use cli::sweep::SweepArgs;

const EXIT_CODES: &str = "\
Exit codes:
  0   every run passed
  1   `replay --check`: a file's outcome or checker differs from what it expects; `fuzz`: a case failed
  2   a usage error (unknown scenario or bug, bad --seeds or --shard, unreadable seed file, `merge` of files
      that are not the shards of one exploration, …)
  3   `check-history`: undecided within its time budget
  10  a safety or correctness violation (election-safety, log-matching, linearizability, commit-durability, …)
  11  a liveness violation (converges, lagging-follower-caught-up)
  12  a node failed to boot or recover (node-boots, registered-implies-config)
  13  the system under test panicked
  14  `explore --determinism`: a seed ran twice gave two different runs
  130 interrupted (Ctrl-C) before any failure
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
    /// Lists the named scenarios, the bug switches, the checkers, the fault classes or the knobs of a world.
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
    /// Hunts for failures: a coverage-guided search over worlds and fault plans that keeps every run
    /// reaching a state no earlier run had and mutates its faults (a cut moved a few calls, another crash
    /// image, a cut into the recovery, a slow disk around it, another knob); writes a seed file per finding.
    Hunt(HuntArgs),
    /// Combines the `--out` files of an exploration's shards: its failures and summary, and the exit code
    /// `explore` over the whole range would have given.
    Merge(MergeArgs),
    /// Replays seed files and says whether each still finds what it expects.
    Replay(ReplayArgs),
    /// Shrinks a failing seed file: fewer faults, smaller crash images, a shorter and smaller world that
    /// still fails with the same checker; writes the result as a seed file with an explicit fault plan.
    Shrink(ShrinkArgs),
    /// Checks client histories recorded anywhere (Jepsen's log, Knossos's EDN, the engine's JSON lines)
    /// for linearizability: exit 0 linearizable, 10 not, 3 undecided within the budget, 2 bad input.
    CheckHistory(CheckHistoryArgs),
    /// Fuzzes sim's own inputs — seed files, `--set`, `explore --out` lines — and whole worlds drawn inside
    /// every knob's range: a bad input must be refused in one line, a world must end in a verdict, nothing
    /// may panic. Exit 0 if every case did, 1 if one did not (printed with the command that replays it).
    Fuzz(FuzzArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::List { what } => Ok(cli::list::list(what)),
        Command::Run(args) => cli::run::run(&args),
        Command::Explore(args) => cli::explore::explore(&args),
        Command::Fuzz(args) => cli::fuzz::fuzz(&args),
        Command::Sweep(args) => cli::sweep::sweep(&args),
        Command::Hunt(args) => cli::hunt::hunt(&args),
        Command::Merge(args) => cli::merge::merge(&args),
        Command::Replay(args) => cli::replay::replay(&args),
        Command::Shrink(args) => cli::shrink::shrink(&args),
        Command::CheckHistory(args) => cli::check_history::check_history(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Usage(message)) => {
            eprintln!("sim: error: {}", sim::seedfile::one_line(&message));
            ExitCode::from(2)
        }
    }
}
