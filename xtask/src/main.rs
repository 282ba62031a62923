//! Project automation, run as `cargo xtask <task>`:
//!
//! - `ci`: everything CI runs — formatting, clippy with `-D warnings`, the tests (which include `tidy`),
//!   and the docs with `-D warnings`;
//! - `tidy`: the project's mechanical rules (determinism bans, no ignored or should-panic tests, module
//!   docs, no `Default` on configs); also runs as a test under `cargo test`;
//! - `bench`: release-build benchmarks, written to `BENCHMARKS.md`;
//! - `regress`: replays every seed file in `seeds/` (`sim replay --check`); part of `ci`;
//! - `readme`: runs every command README.md shows and checks its exit code; part of `ci`;
//! - `fuzz`: `sim fuzz` over every target, longer than CI runs it;
//! - `scale`: swarm with no switch and `--determinism` over many seeds, sharded over GNU parallel;
//!   written to `bench/scale.json`, which `bench` renders;
//! - `mutants`: mutation testing of raft-core with cargo-mutants, the simulator (or the unit tests) as
//!   the oracle, in shards kept under `mutants/results/`, which `bench` renders.
//!
//! xtask is host tooling, so it may read files, spawn processes and read the clock; the simulated crates
//! may not (see `clippy.toml`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod bench_history;
mod bench_hunt;
mod bench_page;
mod bench_soak;
mod mutants;
mod readme;
mod scale;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <ci|tidy|bench|regress|readme|fuzz|scale|mutants>

  ci      fmt --check, clippy -D warnings, tests, docs -D warnings, regress, readme (what CI runs)
  tidy    mechanical project rules (also runs inside `cargo test`)
  bench   release benchmarks; writes BENCHMARKS.md
  regress replays every seed file in seeds/ and checks what each expects
  readme  runs every command README.md shows and checks each exit code
  fuzz    sim fuzz over every target for longer than CI [--cases N] [--world-cases N] [--seed S]
  scale   swarm 0..100000 with no switch and --determinism 0..10000, over GNU parallel; writes
          bench/scale.json [--swarm-seeds N] [--determinism-seeds N]
  mutants cargo-mutants on raft-core's storage and consensus, judged by the simulator alone (or raft-core's
          unit tests: --oracle unit), one shard (--shard K/N, from 0) kept in mutants/results/; --summary
          sums every shard kept, --list lists the mutants";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("tidy") => run_tidy(),
        Some("bench") => bench::run(&args[1..]),
        Some("regress") => regress(),
        Some("readme") => readme::run(),
        Some("fuzz") => scale::fuzz(&args[1..]),
        Some("scale") => scale::scale(&args[1..]),
        Some("mutants") => mutants::run(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is inside the workspace").to_path_buf()
}

/// Runs a command in the workspace root, echoing it; `Err` if it fails.
pub(crate) fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let shown = format!("{program} {}", args.join(" "));
    println!("$ {shown}");
    let mut command = Command::new(program);
    command.args(args).current_dir(workspace_root());
    for (key, value) in env {
        command.env(key, value);
    }
    let status = command.status().map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("`{shown}` failed ({status})")) }
}

fn ci() -> Result<(), String> {
    let started = std::time::Instant::now();
    run("cargo", &["fmt", "--all", "--", "--check"], &[])?;
    run("cargo", &["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"], &[])?;
    run("cargo", &["test", "--workspace", "--locked"], &[])?;
    run("cargo", &["doc", "--workspace", "--no-deps", "--locked"], &[("RUSTDOCFLAGS", "-D warnings")])?;
    regress()?;
    readme::run()?;
    println!("xtask ci: all steps passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Replays `seeds/*.json` with the release `sim`: each must find what it expects.
fn regress() -> Result<(), String> {
    let dir = workspace_root().join("seeds");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| format!("seeds/{}", p.file_name().expect("a file").to_string_lossy()))
        .collect();
    files.sort();
    if files.is_empty() {
        println!("xtask regress: no seed files");
        return Ok(());
    }
    let mut args = vec!["run", "--release", "--locked", "-q", "-p", "sim", "--", "replay", "--check"];
    args.extend(files.iter().map(String::as_str));
    run("cargo", &args, &[])
}

fn run_tidy() -> Result<(), String> {
    let problems = tidy::check_workspace(&workspace_root());
    if problems.is_empty() {
        println!("xtask tidy: clean");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("{p}");
        }
        Err(format!("{} tidy problem(s)", problems.len()))
    }
}
